#ifndef MARMOT_NET_H
#define MARMOT_NET_H
/* Socket helpers: listening sockets, addresses as text, UNIX sockets. */

#include "lib.h"

#include <sys/socket.h>

/* Error messages (*error_r) live in a per-thread buffer: valid until the
   next net_* call in the same thread. Copy them to keep them. */

/* Creates a listening TCP socket on addr ("127.0.0.1", "::1", "0.0.0.0",
   "::" or any literal address, no host names) and port. "*" means every
   address of both families: one dual-stack socket on "::" with
   IPV6_V6ONLY=0 (IPv4 peers then appear as plain IPv4 in net_accept()),
   or "0.0.0.0" on a host without IPv6. Other IPv6 addresses get
   IPV6_V6ONLY=1, so "0.0.0.0" and "::" can be listed side by side.
   SO_REUSEADDR, non-blocking, CLOEXEC, backlog 1024. Port 0 picks a free
   port (see net_local_port()). Returns the fd, or -1 with *error_r naming
   the address, port and reason, e.g.
   "listen 127.0.0.1:25: Address already in use" or
   "listen [::1]:25: Permission denied". */
int net_listen_tcp(const char *addr, unsigned int port, const char **error_r);
/* Accepts a connection (non-blocking, CLOEXEC; EINTR is retried). Returns
   the fd, or -1 with errno (EAGAIN when none is pending). ip_r receives the
   peer address as text (IPv4-mapped IPv6 addresses as plain IPv4; "" for a
   UNIX socket peer), port_r its port (0 for UNIX). Either may be NULL. */
int net_accept(int listen_fd, char ip_r[64], unsigned int *port_r);
/* The local port of a bound socket, or 0. */
unsigned int net_local_port(int fd);
/* UNIX stream socket server at path: an existing socket there is replaced
   (anything else at path is an error, never unlinked), then bind, chmod
   to mode, listen. Non-blocking, CLOEXEC, backlog 1024. Returns the fd or
   -1 with *error_r. */
int net_listen_unix(const char *path, unsigned int mode, const char **error_r);
/* Blocking connect to a UNIX stream socket. Returns a connected fd that is
   CLOEXEC and still blocking (use net_set_nonblock()), or -1 with
   *error_r ("connect PATH: Connection refused"). */
int net_connect_unix(const char *path, const char **error_r);
/* Set or clear O_NONBLOCK / FD_CLOEXEC. Return 0, or -1 with errno. */
int net_set_nonblock(int fd, bool nonblock);
int net_set_cloexec(int fd, bool cloexec);
/* True if the fd is an AF_INET or AF_INET6 socket. */
bool net_fd_is_inet(int fd);
/* The key under which limits count a peer address (as net_accept() gives
   it): an IPv4 address as is, an IPv6 address cut to its /64 (RFC 4291
   2.5.4: a subnet's interface identifiers are 64 bits, and one host or
   household usually owns the whole /64, so counting single IPv6
   addresses would let it open 2^64 "different" peers). An IPv4-mapped
   IPv6 address counts as the IPv4 address; text that is no address is
   copied (truncated). */
void net_ip_bucket(const char *ip, char bucket_r[64]);

#endif
