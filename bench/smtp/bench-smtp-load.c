/* bench-smtp-load.c - the SMTP load client of bench/smtp (not a test; not
   run by CI). It does what Postfix's smtp-source -d does - C sessions in
   parallel, each one TCP connection that sends messages one transaction
   after the other (EHLO once, then MAIL, RCPT, DATA, the message, "."),
   no pipelining - and in addition records the latency of every
   transaction: from writing MAIL FROM to reading the reply to the final
   "." (for Marmot that 250 means the message is durable in the sealed
   spool: RFC 5321 4.1.1.4 and issue 4). A session sends at most -n
   messages on one connection, then QUITs and connects again; -n 0 keeps
   one connection for the whole run.

   Bounded: exactly -m messages in all (a shared counter hands them out),
   every socket read and write times out after 30 s, and no transaction
   starts after the -T time limit. A failed transaction is counted and the
   session goes on (RSET, or a new connection after an I/O error or a
   421); a session gives up after 10 consecutive failures.

   The message is read from -f FILE (the same file run.sh gives to
   smtp-source -F), converted to CRLF line ends and dot-stuffed (RFC 5321
   4.5.2) once before the run. Only loopback is allowed as the target.

   Output: one line of key=value pairs on stdout (what run.sh's driver
   parses): ok, failed, elapsed_s, msgs_per_s, p50_ms, p90_ms, p99_ms,
   max_ms, start_ns and end_ns (CLOCK_REALTIME of the first connect and of
   the last reply, to compare with delivery times in a Maildir).
   Usage: bench-smtp-load -p PORT -f FILE -t RCPT [-H 127.0.0.1]
	  [-c SESSIONS] [-m MESSAGES] [-n PER_CONNECTION] [-T SECONDS]
	  [-s SENDER] [-e EHLO-NAME] */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOAD_IO_TIMEOUT_S 30
#define LOAD_MAX_SESSIONS 1024
#define LOAD_MAX_MESSAGES 1000000
#define LOAD_MAX_CONSECUTIVE_FAILURES 10
#define LOAD_MAX_MESSAGE_SIZE (64u * 1024 * 1024)
#define LOAD_REPLY_MAX 8192

struct load_config {
	struct sockaddr_in addr;
	unsigned int sessions, messages, per_connection;
	double time_limit_s;
	const char *sender, *rcpt, *ehlo;
	char *message; /* CRLF, dot-stuffed, ending in CRLF.CRLF */
	size_t message_len;
};

struct load_shared {
	pthread_mutex_t lock;
	unsigned int next; /* messages handed out */
	unsigned int ok; /* messages acknowledged with 2xx */
	unsigned int failed; /* transactions that did not end in 2xx */
	double *latency_ms; /* one per acknowledged message */
	struct timespec start, deadline;
	uint64_t last_reply_ns;
};

struct load_conn {
	int fd;
	char buf[LOAD_REPLY_MAX];
	size_t len; /* bytes in buf */
};

static struct load_config cfg;
static struct load_shared shared = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void die(const char *what)
{
	fprintf(stderr, "bench-smtp-load: %s\n", what);
	exit(2);
}

static uint64_t ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

static uint64_t now_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts_ns(&ts);
}

static bool past_deadline(void)
{
	return now_ns(CLOCK_MONOTONIC) >= ts_ns(&shared.deadline);
}

/* Takes the next message number, or false when all are handed out or
   the time is up. */
static bool take_message(void)
{
	bool ok;

	if (past_deadline())
		return false;
	pthread_mutex_lock(&shared.lock);
	ok = shared.next < cfg.messages;
	if (ok)
		shared.next++;
	pthread_mutex_unlock(&shared.lock);
	return ok;
}

static void record(bool ok, double ms)
{
	uint64_t t = now_ns(CLOCK_REALTIME);

	pthread_mutex_lock(&shared.lock);
	if (ok)
		shared.latency_ms[shared.ok++] = ms;
	else
		shared.failed++;
	if (t > shared.last_reply_ns)
		shared.last_reply_ns = t;
	pthread_mutex_unlock(&shared.lock);
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads one complete (possibly multi-line, RFC 5321 4.2.1) reply and
   returns its code, or -1 on an I/O error, a timeout or a malformed or
   overlong reply. */
static int read_reply(struct load_conn *conn)
{
	for (;;) {
		char *start = conn->buf, *end = conn->buf + conn->len, *eol;

		/* Every complete line in the buffer: the reply ends at a
		   line whose fourth character is not '-' (or that is just
		   the code). */
		while ((eol = memchr(start, '\n', (size_t)(end - start))) !=
		       NULL) {
			size_t line_len = (size_t)(eol - start);
			bool last;
			int code;

			if (line_len < 3 || start[0] < '2' || start[0] > '5')
				return -1;
			code = (start[0] - '0') * 100 + (start[1] - '0') * 10 +
			       (start[2] - '0');
			last = line_len < 4 || start[3] != '-';
			start = eol + 1;
			if (last) {
				conn->len = (size_t)(end - start);
				memmove(conn->buf, start, conn->len);
				return code;
			}
		}
		/* Drop the complete continuation lines already seen. */
		conn->len = (size_t)(end - start);
		memmove(conn->buf, start, conn->len);
		if (conn->len == sizeof(conn->buf))
			return -1;
		ssize_t n = recv(conn->fd, conn->buf + conn->len,
				 sizeof(conn->buf) - conn->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		conn->len += (size_t)n;
	}
}

static int command(struct load_conn *conn, const char *line)
{
	if (write_all(conn->fd, line, strlen(line)) < 0)
		return -1;
	return read_reply(conn);
}

static void conn_close(struct load_conn *conn)
{
	if (conn->fd >= 0)
		close(conn->fd);
	conn->fd = -1;
	conn->len = 0;
}

static int conn_open(struct load_conn *conn)
{
	struct timeval tv = { .tv_sec = LOAD_IO_TIMEOUT_S };
	char line[600];
	int one = 1;

	conn->len = 0;
	conn->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (conn->fd < 0)
		return -1;
	setsockopt(conn->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(conn->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(conn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(conn->fd, (const struct sockaddr *)&cfg.addr,
		    sizeof(cfg.addr)) < 0 ||
	    read_reply(conn) != 220) {
		conn_close(conn);
		return -1;
	}
	snprintf(line, sizeof(line), "EHLO %s\r\n", cfg.ehlo);
	if (command(conn, line) != 250) {
		conn_close(conn);
		return -1;
	}
	return 0;
}

/* One transaction; returns the final reply code or -1 on an I/O error. */
static int transaction(struct load_conn *conn)
{
	char line[600];
	int code;

	snprintf(line, sizeof(line), "MAIL FROM:<%s>\r\n", cfg.sender);
	if ((code = command(conn, line)) != 250)
		return code;
	snprintf(line, sizeof(line), "RCPT TO:<%s>\r\n", cfg.rcpt);
	if ((code = command(conn, line)) != 250 && code != 251)
		return code;
	if ((code = command(conn, "DATA\r\n")) != 354)
		return code;
	if (write_all(conn->fd, cfg.message, cfg.message_len) < 0)
		return -1;
	return read_reply(conn);
}

static void *session(void *arg)
{
	struct load_conn conn = { .fd = -1 };
	unsigned int on_conn = 0, consecutive = 0;

	(void)arg;
	while (consecutive < LOAD_MAX_CONSECUTIVE_FAILURES && take_message()) {
		struct timespec t0, t1;
		int code;

		if (conn.fd >= 0 && cfg.per_connection != 0 &&
		    on_conn >= cfg.per_connection) {
			(void)command(&conn, "QUIT\r\n");
			conn_close(&conn);
		}
		if (conn.fd < 0) {
			on_conn = 0;
			if (conn_open(&conn) < 0) {
				record(false, 0);
				consecutive++;
				continue;
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		code = transaction(&conn);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		on_conn++;
		if (code >= 200 && code < 300) {
			record(true, (double)(ts_ns(&t1) - ts_ns(&t0)) / 1e6);
			consecutive = 0;
			continue;
		}
		record(false, 0);
		consecutive++;
		if (code < 0 || code == 421 ||
		    command(&conn, "RSET\r\n") != 250)
			conn_close(&conn);
	}
	if (conn.fd >= 0)
		(void)command(&conn, "QUIT\r\n");
	conn_close(&conn);
	return NULL;
}

/* The message as it goes on the wire after DATA: lines end in CRLF (a
   bare CR or LF in the file ends a line too), a line starting with "."
   gets another (RFC 5321 4.5.2), then "." alone. */
static void load_message(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	char *raw, *out;
	size_t len, o = 0;
	bool bol = true;

	if (f == NULL || fstat(fileno(f), &st) < 0)
		die("cannot open the message file");
	if (st.st_size <= 0 || (uint64_t)st.st_size > LOAD_MAX_MESSAGE_SIZE)
		die("the message file is empty or too large");
	len = (size_t)st.st_size;
	raw = malloc(len);
	out = malloc(len * 3 + 8);
	if (raw == NULL || out == NULL || fread(raw, 1, len, f) != len)
		die("cannot read the message file");
	fclose(f);
	for (size_t i = 0; i < len; i++) {
		char c = raw[i];

		if (c == '\r' || c == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			if (c == '\r' && i + 1 < len && raw[i + 1] == '\n')
				i++;
			bol = true;
			continue;
		}
		if (bol && c == '.')
			out[o++] = '.';
		out[o++] = c;
		bol = false;
	}
	if (!bol) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	memcpy(out + o, ".\r\n", 3);
	cfg.message = out;
	cfg.message_len = o + 3;
	free(raw);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted latencies. */
static double percentile(const double *sorted, unsigned int n, double p)
{
	unsigned int rank;

	if (n == 0)
		return 0;
	rank = (unsigned int)(p / 100.0 * n + 0.999999);
	if (rank < 1)
		rank = 1;
	return sorted[(rank > n ? n : rank) - 1];
}

static unsigned int parse_uint(const char *s, unsigned int max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v > max)
		die("bad number");
	return (unsigned int)v;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *file = NULL;
	unsigned int port = 0;
	pthread_t threads[LOAD_MAX_SESSIONS];
	struct timespec end;
	double elapsed;
	int opt;

	cfg.sessions = 1;
	cfg.messages = 100;
	cfg.per_connection = 100;
	cfg.time_limit_s = 120;
	cfg.sender = "load@bench.example";
	cfg.ehlo = "load.bench.example";
	while ((opt = getopt(argc, argv, "H:p:c:m:n:T:f:s:t:e:")) != -1) {
		switch (opt) {
		case 'H':
			host = optarg;
			break;
		case 'p':
			port = parse_uint(optarg, 65535);
			break;
		case 'c':
			cfg.sessions = parse_uint(optarg, LOAD_MAX_SESSIONS);
			break;
		case 'm':
			cfg.messages = parse_uint(optarg, LOAD_MAX_MESSAGES);
			break;
		case 'n':
			cfg.per_connection =
				parse_uint(optarg, LOAD_MAX_MESSAGES);
			break;
		case 'T':
			cfg.time_limit_s = parse_uint(optarg, 3600);
			break;
		case 'f':
			file = optarg;
			break;
		case 's':
			cfg.sender = optarg;
			break;
		case 't':
			cfg.rcpt = optarg;
			break;
		case 'e':
			cfg.ehlo = optarg;
			break;
		default:
			die("usage: bench-smtp-load -p PORT -f FILE -t RCPT "
			    "[-H ADDR] [-c SESSIONS] [-m MESSAGES] "
			    "[-n PER_CONNECTION] [-T SECONDS] [-s SENDER] "
			    "[-e EHLO]");
		}
	}
	if (port == 0 || file == NULL || cfg.rcpt == NULL || cfg.sessions == 0)
		die("-p PORT, -f FILE and -t RCPT are needed (and -c >= 1)");
	if (strlen(cfg.sender) > 256 || strlen(cfg.rcpt) > 256 ||
	    strlen(cfg.ehlo) > 256)
		die("sender, recipient or EHLO name too long");
	cfg.addr.sin_family = AF_INET;
	cfg.addr.sin_port = htons((uint16_t)port);
	/* Traffic only to loopback (127.0.0.0/8). */
	if (inet_pton(AF_INET, host, &cfg.addr.sin_addr) != 1 ||
	    (ntohl(cfg.addr.sin_addr.s_addr) >> 24) != 127)
		die("-H must be an IPv4 loopback address (127.0.0.0/8)");
	load_message(file);
	shared.latency_ms = calloc(cfg.messages + 1, sizeof(double));
	if (shared.latency_ms == NULL)
		die("out of memory");

	clock_gettime(CLOCK_MONOTONIC, &shared.start);
	shared.deadline = shared.start;
	shared.deadline.tv_sec += (time_t)cfg.time_limit_s;
	uint64_t start_ns = now_ns(CLOCK_REALTIME);
	for (unsigned int i = 0; i < cfg.sessions; i++) {
		if (pthread_create(&threads[i], NULL, session, NULL) != 0)
			die("pthread_create failed");
	}
	for (unsigned int i = 0; i < cfg.sessions; i++)
		pthread_join(threads[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &end);
	elapsed = (double)(ts_ns(&end) - ts_ns(&shared.start)) / 1e9;

	qsort(shared.latency_ms, shared.ok, sizeof(double), cmp_double);
	printf("ok=%u failed=%u elapsed_s=%.3f msgs_per_s=%.1f p50_ms=%.2f "
	       "p90_ms=%.2f p99_ms=%.2f max_ms=%.2f start_ns=%llu "
	       "end_ns=%llu\n",
	       shared.ok, shared.failed, elapsed,
	       elapsed > 0 ? shared.ok / elapsed : 0,
	       percentile(shared.latency_ms, shared.ok, 50),
	       percentile(shared.latency_ms, shared.ok, 90),
	       percentile(shared.latency_ms, shared.ok, 99),
	       shared.ok ? shared.latency_ms[shared.ok - 1] : 0,
	       (unsigned long long)start_ns,
	       (unsigned long long)shared.last_reply_ns);
	free(shared.latency_ms);
	free(cfg.message);
	return shared.failed == 0 && shared.ok == cfg.messages ? 0 : 1;
}
