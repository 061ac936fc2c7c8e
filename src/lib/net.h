#ifndef MARMOT_NET_H
#define MARMOT_NET_H
/* Socket helpers: listening sockets, addresses as text, UNIX sockets. */

#include "lib.h"

#include <sys/socket.h>

/* Creates a listening TCP socket on addr ("127.0.0.1", "::1", "0.0.0.0",
   "::" or any literal address; "*" means both "0.0.0.0" and "::") and port.
   SO_REUSEADDR, IPV6_V6ONLY for IPv6, non-blocking, CLOEXEC, backlog 1024.
   Returns the fd, or -1 with *error_r naming the address, port and errno. */
int net_listen_tcp(const char *addr, unsigned int port, const char **error_r);
/* Accepts a connection (non-blocking, CLOEXEC). Returns the fd, or -1 with
   errno (EAGAIN when none is pending). ip_r receives the peer address as
   text (INET6_ADDRSTRLEN bytes), port_r its port. */
int net_accept(int listen_fd, char ip_r[64], unsigned int *port_r);
/* The local port of a bound socket, or 0. */
unsigned int net_local_port(int fd);
/* UNIX stream socket server at path (an existing socket file is replaced),
   mode applied with fchmod before bind is impossible, so chmod after. */
int net_listen_unix(const char *path, unsigned int mode, const char **error_r);
/* Blocking connect to a UNIX stream socket. */
int net_connect_unix(const char *path, const char **error_r);
int net_set_nonblock(int fd, bool nonblock);
int net_set_cloexec(int fd, bool cloexec);
/* True if the fd is an AF_INET or AF_INET6 socket. */
bool net_fd_is_inet(int fd);

#endif
