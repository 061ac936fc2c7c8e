/* test-net.c - unit tests for net.c: TCP listen/connect/accept on loopback
   (IPv4, IPv6, dual-stack "*"), error texts for busy and invalid addresses,
   UNIX socket round trip with mode and replacement rules, fd predicates and
   flags. Only 127.0.0.1 and ::1 are ever contacted. */

#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static int connect_tcp(int family, const char *ip, unsigned int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
		len = sizeof(*sin6);
	}
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool fd_has_flag(int fd, int cmd, int flag)
{
	int flags = fcntl(fd, cmd);

	assert_true(flags >= 0);
	return (flags & flag) != 0;
}

/* Listens on addr port 0, connects from connect_ip and accepts; checks
   the peer address and port net_accept() reports. */
static void tcp_round_trip(const char *addr, int family, const char *connect_ip,
			   const char *expected_peer)
{
	const char *error = NULL;
	char ip[64];
	unsigned int port, peer_port = 0;
	int lfd, cfd, afd;

	lfd = net_listen_tcp(addr, 0, &error);
	assert_true(lfd >= 0);
	assert_true(fd_has_flag(lfd, F_GETFL, O_NONBLOCK));
	assert_true(fd_has_flag(lfd, F_GETFD, FD_CLOEXEC));
	port = net_local_port(lfd);
	assert_true(port > 0 && port <= 65535);

	cfd = connect_tcp(family, connect_ip, port);
	assert_true(cfd >= 0);
	memset(ip, 'x', sizeof(ip));
	afd = net_accept(lfd, ip, &peer_port);
	assert_true(afd >= 0);
	assert_string_equal(ip, expected_peer);
	/* The peer port is the client's local port. */
	assert_int_equal(peer_port, net_local_port(cfd));
	assert_int_equal(net_local_port(afd), port);
	assert_true(fd_has_flag(afd, F_GETFL, O_NONBLOCK));
	assert_true(fd_has_flag(afd, F_GETFD, FD_CLOEXEC));

	assert_int_equal(write(cfd, "ping", 4), 4);
	{
		char buf[8];
		ssize_t ret;

		do {
			ret = read(afd, buf, sizeof(buf));
		} while (ret < 0 && errno == EAGAIN);
		assert_int_equal(ret, 4);
		assert_memory_equal(buf, "ping", 4);
	}
	close(afd);
	close(cfd);
	close(lfd);
}

static void test_tcp_ipv4(void **state)
{
	tcp_round_trip("127.0.0.1", AF_INET, "127.0.0.1", "127.0.0.1");
}

static void test_tcp_ipv6(void **state)
{
	tcp_round_trip("::1", AF_INET6, "::1", "::1");
}

static void test_tcp_star_dual_stack(void **state)
{
	/* An IPv4 client of the dual-stack socket is reported as plain
	   IPv4, not ::ffff:127.0.0.1. */
	tcp_round_trip("*", AF_INET, "127.0.0.1", "127.0.0.1");
	tcp_round_trip("*", AF_INET6, "::1", "::1");
}

static void test_tcp_v6only_side_by_side(void **state)
{
	const char *error = NULL;
	unsigned int port;
	int fd6, fd4, cfd;

	/* "::" is IPv6 only: IPv4 clients are refused, and "0.0.0.0" can
	   then bind the same port. */
	fd6 = net_listen_tcp("::", 0, &error);
	assert_true(fd6 >= 0);
	port = net_local_port(fd6);
	cfd = connect_tcp(AF_INET, "127.0.0.1", port);
	assert_int_equal(cfd, -1);
	assert_int_equal(errno, ECONNREFUSED);

	fd4 = net_listen_tcp("0.0.0.0", port, &error);
	assert_true(fd4 >= 0);
	close(fd4);
	close(fd6);
}

static void test_accept_nothing_pending(void **state)
{
	const char *error = NULL;
	char ip[64];
	unsigned int port;
	int lfd;

	lfd = net_listen_tcp("127.0.0.1", 0, &error);
	assert_true(lfd >= 0);
	errno = 0;
	assert_int_equal(net_accept(lfd, ip, &port), -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	close(lfd);
}

static void test_address_in_use(void **state)
{
	const char *error = NULL;
	char expected[128];
	unsigned int port;
	int fd1, fd2;

	fd1 = net_listen_tcp("127.0.0.1", 0, &error);
	assert_true(fd1 >= 0);
	port = net_local_port(fd1);

	fd2 = net_listen_tcp("127.0.0.1", port, &error);
	assert_int_equal(fd2, -1);
	snprintf(expected, sizeof(expected),
		 "listen 127.0.0.1:%u: Address already in use", port);
	assert_string_equal(error, expected);

	/* IPv6 literals are bracketed in the message. */
	fd2 = net_listen_tcp("::1", 0, &error);
	assert_true(fd2 >= 0);
	port = net_local_port(fd2);
	assert_int_equal(net_listen_tcp("::1", port, &error), -1);
	snprintf(expected, sizeof(expected),
		 "listen [::1]:%u: Address already in use", port);
	assert_string_equal(error, expected);

	close(fd2);
	close(fd1);
}

static void test_invalid_address(void **state)
{
	static const struct {
		const char *addr;
		unsigned int port;
		const char *prefix;
	} tests[] = {
		{ "localhost", 0, "listen localhost:0: invalid address" },
		{ "256.1.1.1", 0, "listen 256.1.1.1:0: invalid address" },
		{ "1.2.3.4.5", 0, "listen 1.2.3.4.5:0: invalid address" },
		{ "::g", 0, "listen [::g]:0: invalid address" },
		{ "", 0, "listen :0: invalid address" },
		{ "127.0.0.1 ", 0, "listen 127.0.0.1 :0: invalid address" },
		{ "127.0.0.1", 65536, "listen 127.0.0.1:65536: invalid port" },
		{ "127.0.0.1", 4294967295u,
		  "listen 127.0.0.1:4294967295: invalid port" },
	};
	unsigned int i;

	for (i = 0; i < N_ELEMENTS(tests); i++) {
		const char *error = NULL;

		assert_int_equal(
			net_listen_tcp(tests[i].addr, tests[i].port, &error),
			-1);
		assert_non_null(error);
		if (strncmp(error, tests[i].prefix, strlen(tests[i].prefix)) !=
		    0)
			fail_msg("%s: got \"%s\"", tests[i].addr, error);
	}
}

struct tmpdir {
	char dir[64];
	char path[128];
};

static void tmpdir_make(struct tmpdir *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/marmot-test-net-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/s.sock", t->dir);
}

static void tmpdir_remove(struct tmpdir *t)
{
	(void)unlink(t->path);
	assert_int_equal(rmdir(t->dir), 0);
}

static void test_unix_round_trip(void **state)
{
	struct tmpdir t;
	const char *error = NULL;
	struct stat st;
	char ip[64], buf[8];
	unsigned int port = 99;
	int lfd, cfd, afd;

	tmpdir_make(&t);
	lfd = net_listen_unix(t.path, 0600, &error);
	assert_true(lfd >= 0);
	assert_int_equal(lstat(t.path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_true(fd_has_flag(lfd, F_GETFD, FD_CLOEXEC));

	cfd = net_connect_unix(t.path, &error);
	assert_true(cfd >= 0);
	assert_true(fd_has_flag(cfd, F_GETFD, FD_CLOEXEC));
	assert_false(fd_has_flag(cfd, F_GETFL, O_NONBLOCK));
	memset(ip, 'x', sizeof(ip));
	afd = net_accept(lfd, ip, &port);
	assert_true(afd >= 0);
	assert_string_equal(ip, "");
	assert_int_equal(port, 0);

	assert_int_equal(write(cfd, "hello", 5), 5);
	assert_int_equal(read(afd, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(write(afd, "back", 4), 4);
	assert_int_equal(read(cfd, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "back", 4);

	close(afd);
	close(cfd);
	close(lfd);
	tmpdir_remove(&t);
}

static void test_unix_mode_applied(void **state)
{
	struct tmpdir t;
	const char *error = NULL;
	struct stat st;
	int fd;

	tmpdir_make(&t);
	fd = net_listen_unix(t.path, 0660, &error);
	assert_true(fd >= 0);
	assert_int_equal(stat(t.path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0660);
	close(fd);
	tmpdir_remove(&t);
}

static void test_unix_replaces_stale_socket(void **state)
{
	struct tmpdir t;
	const char *error = NULL;
	int fd1, fd2, cfd;

	/* A previous run's socket file remains after close. */
	tmpdir_make(&t);
	fd1 = net_listen_unix(t.path, 0600, &error);
	assert_true(fd1 >= 0);
	close(fd1);
	assert_int_equal(access(t.path, F_OK), 0);

	fd2 = net_listen_unix(t.path, 0600, &error);
	assert_true(fd2 >= 0);
	cfd = net_connect_unix(t.path, &error);
	assert_true(cfd >= 0);
	close(cfd);
	close(fd2);
	tmpdir_remove(&t);
}

static void test_unix_refuses_non_socket(void **state)
{
	struct tmpdir t;
	const char *error = NULL;
	struct stat st;
	int fd;

	/* A regular file at the path is never unlinked. */
	tmpdir_make(&t);
	fd = open(t.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);

	assert_int_equal(net_listen_unix(t.path, 0600, &error), -1);
	assert_non_null(strstr(error, "not a socket"));
	assert_int_equal(stat(t.path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	tmpdir_remove(&t);
}

static void test_unix_errors(void **state)
{
	struct tmpdir t;
	const char *error = NULL;
	char long_path[200];
	char expected[256];

	tmpdir_make(&t);
	assert_int_equal(net_connect_unix(t.path, &error), -1);
	snprintf(expected, sizeof(expected),
		 "connect %s: No such file or directory", t.path);
	assert_string_equal(error, expected);

	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	assert_int_equal(net_listen_unix(long_path, 0600, &error), -1);
	assert_non_null(strstr(error, "too long"));
	assert_int_equal(net_connect_unix(long_path, &error), -1);
	assert_non_null(strstr(error, "too long"));
	assert_int_equal(net_listen_unix("", 0600, &error), -1);

	/* A directory that does not exist. */
	snprintf(long_path, sizeof(long_path), "%s/missing/s.sock", t.dir);
	assert_int_equal(net_listen_unix(long_path, 0600, &error), -1);
	assert_non_null(strstr(error, "No such file or directory"));
	tmpdir_remove(&t);
}

static void test_fd_is_inet(void **state)
{
	struct tmpdir t;
	const char *error = NULL;
	int fd4, fd6, ufd, pfd[2], sp[2], ffd;

	fd4 = net_listen_tcp("127.0.0.1", 0, &error);
	assert_true(fd4 >= 0);
	assert_true(net_fd_is_inet(fd4));
	fd6 = net_listen_tcp("::1", 0, &error);
	assert_true(fd6 >= 0);
	assert_true(net_fd_is_inet(fd6));

	tmpdir_make(&t);
	ufd = net_listen_unix(t.path, 0600, &error);
	assert_true(ufd >= 0);
	assert_false(net_fd_is_inet(ufd));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_false(net_fd_is_inet(sp[0]));
	assert_int_equal(pipe(pfd), 0);
	assert_false(net_fd_is_inet(pfd[0]));
	ffd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(ffd >= 0);
	assert_false(net_fd_is_inet(ffd));
	assert_false(net_fd_is_inet(-1));

	close(ffd);
	close(pfd[0]);
	close(pfd[1]);
	close(sp[0]);
	close(sp[1]);
	close(ufd);
	close(fd6);
	close(fd4);
	tmpdir_remove(&t);
}

static void test_fd_flags(void **state)
{
	int pfd[2];

	assert_int_equal(pipe(pfd), 0);
	assert_false(fd_has_flag(pfd[0], F_GETFL, O_NONBLOCK));
	assert_int_equal(net_set_nonblock(pfd[0], true), 0);
	assert_true(fd_has_flag(pfd[0], F_GETFL, O_NONBLOCK));
	assert_int_equal(net_set_nonblock(pfd[0], true), 0);
	assert_true(fd_has_flag(pfd[0], F_GETFL, O_NONBLOCK));
	assert_int_equal(net_set_nonblock(pfd[0], false), 0);
	assert_false(fd_has_flag(pfd[0], F_GETFL, O_NONBLOCK));

	assert_false(fd_has_flag(pfd[1], F_GETFD, FD_CLOEXEC));
	assert_int_equal(net_set_cloexec(pfd[1], true), 0);
	assert_true(fd_has_flag(pfd[1], F_GETFD, FD_CLOEXEC));
	assert_int_equal(net_set_cloexec(pfd[1], false), 0);
	assert_false(fd_has_flag(pfd[1], F_GETFD, FD_CLOEXEC));

	close(pfd[0]);
	close(pfd[1]);
	errno = 0;
	assert_int_equal(net_set_nonblock(pfd[0], true), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(net_set_cloexec(pfd[0], true), -1);
	assert_int_equal(net_local_port(pfd[0]), 0);
}

static void test_ip_bucket(void **state)
{
	char b[64];

	(void)state;
	net_ip_bucket("192.0.2.7", b);
	assert_string_equal(b, "192.0.2.7");
	/* Every address of one /64 is one peer; the next /64 is another. */
	net_ip_bucket("2001:db8:1:2:aaaa:bbbb:cccc:dddd", b);
	assert_string_equal(b, "2001:db8:1:2::/64");
	net_ip_bucket("2001:db8:1:2::1", b);
	assert_string_equal(b, "2001:db8:1:2::/64");
	net_ip_bucket("2001:db8:1:3::1", b);
	assert_string_equal(b, "2001:db8:1:3::/64");
	net_ip_bucket("::ffff:198.51.100.1", b);
	assert_string_equal(b, "198.51.100.1");
	net_ip_bucket("::1", b);
	assert_string_equal(b, "::/64");
	net_ip_bucket("not an address", b);
	assert_string_equal(b, "not an address");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_ipv4),
		cmocka_unit_test(test_tcp_ipv6),
		cmocka_unit_test(test_tcp_star_dual_stack),
		cmocka_unit_test(test_tcp_v6only_side_by_side),
		cmocka_unit_test(test_accept_nothing_pending),
		cmocka_unit_test(test_address_in_use),
		cmocka_unit_test(test_invalid_address),
		cmocka_unit_test(test_unix_round_trip),
		cmocka_unit_test(test_unix_mode_applied),
		cmocka_unit_test(test_unix_replaces_stale_socket),
		cmocka_unit_test(test_unix_refuses_non_socket),
		cmocka_unit_test(test_unix_errors),
		cmocka_unit_test(test_fd_is_inet),
		cmocka_unit_test(test_fd_flags),
		cmocka_unit_test(test_ip_bucket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
