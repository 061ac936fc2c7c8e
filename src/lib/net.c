/* net.c - socket helpers: TCP and UNIX listeners, accept with the peer
   address as text, fd flags. It owns nothing beyond the fds it returns
   (which belong to the caller) and a per-thread buffer for error messages.
   The master calls it to bind listeners before dropping privileges and for
   its control socket; the front accepts connections with net_accept() and
   reaches the vault with net_connect_unix(). */

#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define NET_LISTEN_BACKLOG 1024

static _Thread_local char net_error_buf[512];

static const char *net_error(const char *fmt, ...) ATTR_FORMAT(1, 2);
static const char *net_error(const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(net_error_buf, sizeof(net_error_buf), fmt, args);
	va_end(args);
	return net_error_buf;
}

/* "[::1]" for IPv6 literals so that "addr:port" stays unambiguous. */
static const char *net_addr_open(const char *addr)
{
	return strchr(addr, ':') != NULL ? "[" : "";
}

static const char *net_addr_close(const char *addr)
{
	return strchr(addr, ':') != NULL ? "]" : "";
}

static int net_listen_tcp_host(const char *addr, const char *host,
			       bool dual_stack, unsigned int port, int *errno_r,
			       const char **error_r)
{
	struct addrinfo hints, *ai;
	char port_str[16];
	int fd, ret, opt;

	*errno_r = 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	snprintf(port_str, sizeof(port_str), "%u", port);
	ret = getaddrinfo(host, port_str, &hints, &ai);
	if (ret != 0) {
		*error_r = net_error("listen %s%s%s:%u: invalid address: %s",
				     net_addr_open(addr), addr,
				     net_addr_close(addr), port,
				     ret == EAI_SYSTEM ? strerror(errno)
						       : gai_strerror(ret));
		return -1;
	}

	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		goto fail;
	opt = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &opt, sizeof(opt)) < 0)
		goto fail;
	if (ai->ai_family == AF_INET6) {
		/* "*" listens on both families with one socket; any other
		   IPv6 address only on IPv6, so that "0.0.0.0" and "::"
		   can be listed side by side. */
		opt = dual_stack ? 0 : 1;
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &opt,
			       sizeof(opt)) < 0)
			goto fail;
	}
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		goto fail;
	if (listen(fd, NET_LISTEN_BACKLOG) < 0)
		goto fail;
	freeaddrinfo(ai);
	return fd;

fail:
	*errno_r = errno;
	*error_r = net_error("listen %s%s%s:%u: %s", net_addr_open(addr), addr,
			     net_addr_close(addr), port, strerror(errno));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return -1;
}

int net_listen_tcp(const char *addr, unsigned int port, const char **error_r)
{
	int fd, err;

	if (port > 65535) {
		*error_r = net_error("listen %s%s%s:%u: invalid port",
				     net_addr_open(addr), addr,
				     net_addr_close(addr), port);
		return -1;
	}
	if (strcmp(addr, "*") != 0)
		return net_listen_tcp_host(addr, addr, false, port, &err,
					   error_r);

	fd = net_listen_tcp_host(addr, "::", true, port, &err, error_r);
	if (fd < 0 && (err == EAFNOSUPPORT || err == EADDRNOTAVAIL)) {
		/* A host without IPv6: "*" is then just every IPv4
		   address. */
		fd = net_listen_tcp_host(addr, "0.0.0.0", false, port, &err,
					 error_r);
	}
	return fd;
}

/* Writes the address of sa as text; IPv4-mapped IPv6 addresses
   (::ffff:a.b.c.d, from dual-stack sockets) as plain IPv4. */
static void net_sockaddr_to_text(const struct sockaddr_storage *ss,
				 char ip_r[64], unsigned int *port_r)
{
	ip_r[0] = '\0';
	*port_r = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, ip_r, 64);
		*port_r = ntohs(sin->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)ss;

		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], ip_r,
				  64);
		} else {
			inet_ntop(AF_INET6, &sin6->sin6_addr, ip_r, 64);
		}
		*port_r = ntohs(sin6->sin6_port);
	}
}

int net_accept(int listen_fd, char ip_r[64], unsigned int *port_r)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char ip[64];
	unsigned int port;
	int fd;

	memset(&ss, 0, sizeof(ss));
	do {
		fd = accept4(listen_fd, (struct sockaddr *)&ss, &len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -1;
	net_sockaddr_to_text(&ss, ip, &port);
	if (ip_r != NULL)
		memcpy(ip_r, ip, sizeof(ip));
	if (port_r != NULL)
		*port_r = port;
	return fd;
}

unsigned int net_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char ip[64];
	unsigned int port;

	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	net_sockaddr_to_text(&ss, ip, &port);
	return port;
}

static int net_unix_addr(const char *path, struct sockaddr_un *sun_r,
			 const char *what, const char **error_r)
{
	size_t len = strlen(path);

	memset(sun_r, 0, sizeof(*sun_r));
	sun_r->sun_family = AF_UNIX;
	if (len == 0 || len >= sizeof(sun_r->sun_path)) {
		*error_r = net_error("%s %s: path %s", what, path,
				     len == 0 ? "is empty" : "too long");
		return -1;
	}
	memcpy(sun_r->sun_path, path, len + 1);
	return 0;
}

int net_listen_unix(const char *path, unsigned int mode, const char **error_r)
{
	struct sockaddr_un sun;
	struct stat st;
	const char *step;
	bool bound = false;
	int fd, err;

	if (net_unix_addr(path, &sun, "listen", error_r) < 0)
		return -1;

	/* Replace a stale socket left by a previous run, but never unlink
	   anything else that happens to be at the path. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			*error_r = net_error("listen %s: exists and is not a "
					     "socket",
					     path);
			return -1;
		}
		if (unlink(path) < 0 && errno != ENOENT) {
			*error_r = net_error("listen %s: unlink: %s", path,
					     strerror(errno));
			return -1;
		}
	} else if (errno != ENOENT) {
		*error_r = net_error("listen %s: lstat: %s", path,
				     strerror(errno));
		return -1;
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		step = "socket: ";
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		step = "bind: ";
		goto fail;
	}
	bound = true;
	/* chmod before listen(): until then every connect() is refused, so
	   no client gets in under the umask's looser mode. */
	if (chmod(sun.sun_path, (mode_t)mode) < 0) {
		step = "chmod: ";
		goto fail;
	}
	if (listen(fd, NET_LISTEN_BACKLOG) < 0) {
		step = "";
		goto fail;
	}
	return fd;

fail:
	err = errno;
	*error_r =
		net_error("listen %s: %s%s", sun.sun_path, step, strerror(err));
	if (fd >= 0)
		close(fd);
	if (bound)
		(void)unlink(sun.sun_path);
	return -1;
}

int net_connect_unix(const char *path, const char **error_r)
{
	struct sockaddr_un sun;
	int fd, ret;

	if (net_unix_addr(path, &sun, "connect", error_r) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = net_error("connect %s: socket: %s", path,
				     strerror(errno));
		return -1;
	}
	do {
		ret = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	} while (ret < 0 && errno == EINTR);
	if (ret < 0) {
		*error_r = net_error("connect %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int net_set_fd_flag(int fd, int get_cmd, int set_cmd, int flag, bool set)
{
	int flags = fcntl(fd, get_cmd);

	if (flags < 0)
		return -1;
	if (((flags & flag) != 0) == set)
		return 0;
	flags = set ? flags | flag : flags & ~flag;
	return fcntl(fd, set_cmd, flags) < 0 ? -1 : 0;
}

int net_set_nonblock(int fd, bool nonblock)
{
	return net_set_fd_flag(fd, F_GETFL, F_SETFL, O_NONBLOCK, nonblock);
}

int net_set_cloexec(int fd, bool cloexec)
{
	return net_set_fd_flag(fd, F_GETFD, F_SETFD, FD_CLOEXEC, cloexec);
}

bool net_fd_is_inet(int fd)
{
	int domain;
	socklen_t len = sizeof(domain);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
		return false;
	return domain == AF_INET || domain == AF_INET6;
}

void net_ip_bucket(const char *ip, char bucket_r[64])
{
	struct in6_addr a6;

	if (strchr(ip, ':') == NULL || inet_pton(AF_INET6, ip, &a6) != 1) {
		snprintf(bucket_r, 64, "%s", ip);
		return;
	}
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		if (inet_ntop(AF_INET, &a6.s6_addr[12], bucket_r, 64) == NULL)
			snprintf(bucket_r, 64, "%s", ip);
		return;
	}
	memset(&a6.s6_addr[8], 0, 8);
	if (inet_ntop(AF_INET6, &a6, bucket_r, 64) == NULL) {
		snprintf(bucket_r, 64, "%s", ip);
		return;
	}
	/* "2001:db8::" and "2001:db8::/64" must not be mistaken for the
	   single address: the suffix says it is a prefix. */
	strncat(bucket_r, "/64", 64 - strlen(bucket_r) - 1);
}
