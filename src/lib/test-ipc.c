/* test-ipc.c - unit tests of ipc.c: the wire format, field round trips,
   byte-at-a-time frame parsing, header rejection (oversized, flags), reader
   strictness (ipc_end, short reads, embedded NUL), and ipc_conn on a real
   ioloop over socketpair(): batched and split frames, replies, large
   writes, peer close, protocol errors and destroying from callbacks. */

#include "lib.h"
#include "buf.h"
#include "ioloop.h"
#include "ipc.h"
#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static void build_all_fields(struct buf *out, uint32_t id)
{
	static const uint8_t binary[] = { 0x00, 0xff, 0x80, 0x0a, 0x00 };
	size_t off = ipc_msg_begin(out, IPC_VAULT_AUTH, id);

	ipc_put_u32(out, 0);
	ipc_put_u32(out, 0xdeadbeef);
	ipc_put_u32(out, UINT32_MAX);
	ipc_put_u64(out, 0);
	ipc_put_u64(out, 0x0123456789abcdefULL);
	ipc_put_u64(out, UINT64_MAX);
	ipc_put_bytes(out, "", 0);
	ipc_put_bytes(out, binary, sizeof(binary));
	ipc_put_str(out, "");
	ipc_put_str(out, "imap");
	ipc_put_str(out, "j\xc3\xbcrgen@example.com");
	ipc_msg_finish(out, off);
}

static void read_all_fields(const struct ipc_frame *frame, pool_t pool)
{
	static const uint8_t binary[] = { 0x00, 0xff, 0x80, 0x0a, 0x00 };
	struct ipc_reader r;
	struct span s;

	assert_int_equal(frame->type, IPC_VAULT_AUTH);
	ipc_reader_init(&r, frame);
	assert_int_equal(ipc_get_u32(&r), 0);
	assert_int_equal(ipc_get_u32(&r), 0xdeadbeef);
	assert_int_equal(ipc_get_u32(&r), UINT32_MAX);
	assert_true(ipc_get_u64(&r) == 0);
	assert_true(ipc_get_u64(&r) == 0x0123456789abcdefULL);
	assert_true(ipc_get_u64(&r) == UINT64_MAX);
	s = ipc_get_bytes(&r);
	assert_int_equal(s.len, 0);
	s = ipc_get_bytes(&r);
	assert_true(span_eq(s, span_make(binary, sizeof(binary))));
	assert_string_equal(ipc_get_str(&r, pool), "");
	assert_string_equal(ipc_get_str(&r, pool), "imap");
	assert_string_equal(ipc_get_str(&r, pool), "j\xc3\xbcrgen@example.com");
	assert_false(r.failed);
	assert_int_equal(ipc_end(&r), 0);
}

static void test_ipc_round_trip(void **state)
{
	pool_t pool = pool_create("test", 256);
	struct buf out = BUF_INIT;
	struct ipc_frame frame;
	const char *error;
	size_t consumed;

	build_all_fields(&out, 0x11223344);
	assert_int_equal(
		ipc_frame_parse(buf_span(&out), &frame, &consumed, &error), 1);
	assert_int_equal(consumed, out.used);
	assert_int_equal(frame.id, 0x11223344);
	assert_int_equal(frame.payload.len, out.used - IPC_HEADER_SIZE);
	read_all_fields(&frame, pool);
	buf_free(&out);
	pool_unref(&pool);
}

static void test_ipc_wire_format(void **state)
{
	static const uint8_t expected[] = {
		/* length 18, type 300 (0x012c), flags 0, id 0x0a0b0c0d */
		18,
		0,
		0,
		0,
		0x2c,
		0x01,
		0,
		0,
		0x0d,
		0x0c,
		0x0b,
		0x0a,
		/* u32 0x01020304 */
		4,
		3,
		2,
		1,
		/* u64 0x1122334455667788 */
		0x88,
		0x77,
		0x66,
		0x55,
		0x44,
		0x33,
		0x22,
		0x11,
		/* str "hi": u32 length, no NUL */
		2,
		0,
		0,
		0,
		'h',
		'i',
		/* the next frame: empty payload, type 201, id 0 */
		0,
		0,
		0,
		0,
		201,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
	};
	struct buf out = BUF_INIT;
	size_t off;

	off = ipc_msg_begin(&out, IPC_CONTROL_STATUS, 0x0a0b0c0d);
	assert_int_equal(off, 0);
	ipc_put_u32(&out, 0x01020304);
	ipc_put_u64(&out, 0x1122334455667788ULL);
	ipc_put_str(&out, "hi");
	ipc_msg_finish(&out, off);
	off = ipc_msg_begin(&out, IPC_FRONT_PONG, 0);
	assert_int_equal(off, 12 + 18);
	ipc_msg_finish(&out, off);
	assert_int_equal(out.used, sizeof(expected));
	assert_memory_equal(out.data, expected, sizeof(expected));
	buf_free(&out);
}

static void test_ipc_begin_after_consume(void **state)
{
	/* offsets are relative to the content, also with a consumed prefix */
	struct buf out = BUF_INIT;
	struct ipc_frame frame;
	const char *error;
	size_t off, consumed;
	struct ipc_reader r;

	buf_append_str(&out, "garbage-");
	buf_consume(&out, 3);
	off = ipc_msg_begin(&out, IPC_MASTER_HELLO, 7);
	assert_int_equal(off, 5);
	ipc_put_u32(&out, 42);
	ipc_msg_finish(&out, off);
	buf_consume(&out, 5);
	assert_int_equal(
		ipc_frame_parse(buf_span(&out), &frame, &consumed, &error), 1);
	assert_int_equal(frame.type, IPC_MASTER_HELLO);
	assert_int_equal(frame.id, 7);
	ipc_reader_init(&r, &frame);
	assert_int_equal(ipc_get_u32(&r), 42);
	assert_int_equal(ipc_end(&r), 0);
	buf_free(&out);
}

static void test_ipc_byte_at_a_time(void **state)
{
	pool_t pool = pool_create("test", 256);
	struct buf out = BUF_INIT, in = BUF_INIT;
	struct ipc_frame frame;
	const char *error;
	size_t consumed, frames = 0;

	build_all_fields(&out, 1);
	build_all_fields(&out, 2);
	/* feed one byte at a time into a fresh buffer: 0 until complete */
	for (size_t i = 0; i < out.used; i++) {
		int ret;

		buf_append_c(&in, out.data[i]);
		ret = ipc_frame_parse(buf_span(&in), &frame, &consumed, &error);
		assert_true(ret == 0 || ret == 1);
		if (ret == 0)
			continue;
		frames++;
		assert_int_equal(frame.id, frames);
		assert_int_equal(consumed, in.used);
		read_all_fields(&frame, pool);
		buf_consume(&in, consumed);
	}
	assert_int_equal(frames, 2);
	assert_int_equal(in.used, 0);
	buf_free(&in);
	buf_free(&out);
	pool_unref(&pool);
}

static void test_ipc_truncated_prefixes(void **state)
{
	struct buf out = BUF_INIT;
	struct ipc_frame frame;
	const char *error;
	size_t consumed;

	build_all_fields(&out, 9);
	for (size_t len = 0; len < out.used; len++) {
		assert_int_equal(ipc_frame_parse(span_make(out.data, len),
						 &frame, &consumed, &error),
				 0);
	}
	assert_int_equal(
		ipc_frame_parse(buf_span(&out), &frame, &consumed, &error), 1);
	buf_free(&out);
}

static void put_header(uint8_t *p, uint32_t len, uint16_t type, uint16_t flags,
		       uint32_t id)
{
	p[0] = (uint8_t)len;
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)(len >> 16);
	p[3] = (uint8_t)(len >> 24);
	p[4] = (uint8_t)type;
	p[5] = (uint8_t)(type >> 8);
	p[6] = (uint8_t)flags;
	p[7] = (uint8_t)(flags >> 8);
	p[8] = (uint8_t)id;
	p[9] = (uint8_t)(id >> 8);
	p[10] = (uint8_t)(id >> 16);
	p[11] = (uint8_t)(id >> 24);
}

static void test_ipc_bad_headers(void **state)
{
	static const struct {
		uint32_t len;
		uint16_t flags;
		int ret;
		const char *error;
	} tests[] = {
		{ 0, 0, 1, NULL },
		{ IPC_MAX_PAYLOAD, 0, 0, NULL }, /* valid, waits for payload */
		{ IPC_MAX_PAYLOAD + 1, 0, -1, "IPC_MAX_PAYLOAD" },
		{ 0x80000000u, 0, -1, "IPC_MAX_PAYLOAD" },
		{ UINT32_MAX, 0, -1, "IPC_MAX_PAYLOAD" },
		{ 0, 1, -1, "flags" },
		{ 0, 0x8000, -1, "flags" },
		{ 4, 0x0100, -1, "flags" },
	};
	uint8_t hdr[IPC_HEADER_SIZE];

	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		struct ipc_frame frame;
		const char *error = NULL;
		size_t consumed = 0;

		put_header(hdr, tests[i].len, IPC_VAULT_PING, tests[i].flags,
			   5);
		assert_int_equal(ipc_frame_parse(span_make(hdr, sizeof(hdr)),
						 &frame, &consumed, &error),
				 tests[i].ret);
		if (tests[i].error != NULL) {
			assert_non_null(error);
			assert_non_null(strstr(error, tests[i].error));
		}
		if (tests[i].ret == 1) {
			assert_int_equal(consumed, IPC_HEADER_SIZE);
			assert_int_equal(frame.type, IPC_VAULT_PING);
			assert_int_equal(frame.id, 5);
			assert_int_equal(frame.payload.len, 0);
		}
	}
}

static void test_ipc_end_leftover(void **state)
{
	struct buf out = BUF_INIT;
	struct ipc_frame frame;
	struct ipc_reader r;
	const char *error;
	size_t consumed, off;

	off = ipc_msg_begin(&out, IPC_MASTER_HELLO, 0);
	ipc_put_u32(&out, 1);
	ipc_put_u32(&out, 2);
	ipc_msg_finish(&out, off);
	assert_int_equal(
		ipc_frame_parse(buf_span(&out), &frame, &consumed, &error), 1);
	/* reading less than was sent */
	ipc_reader_init(&r, &frame);
	assert_int_equal(ipc_get_u32(&r), 1);
	assert_false(r.failed);
	assert_int_equal(ipc_end(&r), -1);
	/* reading nothing */
	ipc_reader_init(&r, &frame);
	assert_int_equal(ipc_end(&r), -1);
	/* reading it all, as a u64 */
	ipc_reader_init(&r, &frame);
	assert_true(ipc_get_u64(&r) == 0x0000000200000001ULL);
	assert_int_equal(ipc_end(&r), 0);
	buf_free(&out);
}

/* A frame whose payload is exactly the given bytes. */
static struct ipc_frame raw_frame(const void *payload, size_t len)
{
	struct ipc_frame frame = { IPC_VAULT_AUTH, 1, span_make(payload, len) };

	return frame;
}

static void test_ipc_short_reads(void **state)
{
	static const uint8_t bytes_len_too_big[] = { 9, 0, 0, 0, 'a', 'b' };
	static const uint8_t bytes_len_huge[] = { 0xff, 0xff, 0xff, 0xff, 'a' };
	static const uint8_t three[] = { 1, 2, 3 };
	static const uint8_t seven[] = { 1, 2, 3, 4, 5, 6, 7 };
	pool_t pool = pool_create("test", 256);
	struct ipc_frame frame;
	struct ipc_reader r;
	struct span s;

	frame = raw_frame(three, sizeof(three));
	ipc_reader_init(&r, &frame);
	assert_int_equal(ipc_get_u32(&r), 0);
	assert_true(r.failed);
	assert_int_equal(ipc_end(&r), -1);

	frame = raw_frame(seven, sizeof(seven));
	ipc_reader_init(&r, &frame);
	assert_true(ipc_get_u64(&r) == 0);
	assert_true(r.failed);
	/* once failed, everything fails, even what would fit */
	assert_int_equal(ipc_get_u32(&r), 0);
	assert_int_equal(ipc_end(&r), -1);

	frame = raw_frame(bytes_len_too_big, sizeof(bytes_len_too_big));
	ipc_reader_init(&r, &frame);
	s = ipc_get_bytes(&r);
	assert_int_equal(s.len, 0);
	assert_true(r.failed);
	assert_int_equal(ipc_end(&r), -1);

	frame = raw_frame(bytes_len_huge, sizeof(bytes_len_huge));
	ipc_reader_init(&r, &frame);
	assert_string_equal(ipc_get_str(&r, pool), "");
	assert_true(r.failed);
	assert_int_equal(ipc_end(&r), -1);

	/* an empty payload: any read fails */
	frame = raw_frame("", 0);
	ipc_reader_init(&r, &frame);
	assert_int_equal(ipc_end(&r), 0);
	assert_int_equal(ipc_get_bytes(&r).len, 0);
	assert_int_equal(ipc_end(&r), -1);
	pool_unref(&pool);
}

static void test_ipc_str_embedded_nul(void **state)
{
	static const uint8_t payload[] = { 3,   0, 0, 0, 'a', 0,
					   'b', 1, 0, 0, 0,   'c' };
	pool_t pool = pool_create("test", 256);
	struct ipc_frame frame = raw_frame(payload, sizeof(payload));
	struct ipc_reader r;

	ipc_reader_init(&r, &frame);
	assert_string_equal(ipc_get_str(&r, pool), "");
	assert_true(r.failed);
	assert_string_equal(ipc_get_str(&r, pool), "");
	assert_int_equal(ipc_end(&r), -1);

	/* the same bytes are fine as bytes */
	ipc_reader_init(&r, &frame);
	assert_int_equal(ipc_get_bytes(&r).len, 3);
	assert_int_equal(ipc_get_bytes(&r).len, 1);
	assert_int_equal(ipc_end(&r), 0);
	pool_unref(&pool);
}

static void test_ipc_max_payload(void **state)
{
	struct buf out = BUF_INIT;
	struct ipc_frame frame;
	struct ipc_reader r;
	const char *error;
	size_t off, consumed;
	uint8_t *big = i_malloc(IPC_MAX_PAYLOAD - 4);
	pid_t pid;
	int status;

	/* exactly IPC_MAX_PAYLOAD is allowed */
	off = ipc_msg_begin(&out, IPC_CONTROL_STATUS_REPLY, 3);
	ipc_put_bytes(&out, big, IPC_MAX_PAYLOAD - 4);
	ipc_msg_finish(&out, off);
	assert_int_equal(
		ipc_frame_parse(buf_span(&out), &frame, &consumed, &error), 1);
	assert_int_equal(frame.payload.len, IPC_MAX_PAYLOAD);
	ipc_reader_init(&r, &frame);
	assert_int_equal(ipc_get_bytes(&r).len, IPC_MAX_PAYLOAD - 4);
	assert_int_equal(ipc_end(&r), 0);

	/* one more byte is a bug in the sender: panic */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* keep the panic message out of the TAP output */
		int null = open("/dev/null", O_WRONLY);

		dup2(null, STDERR_FILENO);
		off = ipc_msg_begin(&out, IPC_CONTROL_STATUS_REPLY, 3);
		ipc_put_bytes(&out, big, IPC_MAX_PAYLOAD - 3);
		ipc_msg_finish(&out, off);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	i_free(big);
	buf_free(&out);
}

/* ipc_conn tests */

struct conn_test {
	struct ioloop *ioloop;
	struct ipc_conn *conn;
	int peer; /* the other end of the socketpair */
	pool_t pool;

	unsigned int frames;
	uint32_t ids[16];
	char *strs[16];
	unsigned int closed;
	char reason[128];

	int handler_ret;
	bool destroy_in_handler;
	bool destroy_in_closed;
};

static int conn_handler(struct ipc_conn *conn, const struct ipc_frame *frame,
			void *context)
{
	struct conn_test *t = context;
	struct ipc_reader r;
	char *str;

	assert_ptr_equal(conn, t->conn);
	ipc_reader_init(&r, frame);
	str = ipc_get_str(&r, t->pool);
	if (ipc_end(&r) < 0)
		return -1;
	if (t->frames < N_ELEMENTS(t->ids)) {
		t->ids[t->frames] = frame->id;
		t->strs[t->frames] = str;
	}
	t->frames++;
	if (t->destroy_in_handler) {
		ipc_conn_destroy(&t->conn);
		return 0;
	}
	return t->handler_ret;
}

static void conn_closed(struct ipc_conn *conn, const char *reason,
			void *context)
{
	struct conn_test *t = context;

	assert_ptr_equal(conn, t->conn);
	t->closed++;
	snprintf(t->reason, sizeof(t->reason), "%s", reason);
	if (t->destroy_in_closed)
		ipc_conn_destroy(&t->conn);
}

static int conn_setup(void **state)
{
	struct conn_test *t = i_new(struct conn_test, 1);
	int fds[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
		return -1;
	t->ioloop = ioloop_create();
	t->pool = pool_create("conn-test", 1024);
	t->peer = fds[1];
	t->conn = ipc_conn_create(t->ioloop, fds[0], conn_handler, conn_closed,
				  t);
	*state = t;
	return 0;
}

static int conn_teardown(void **state)
{
	struct conn_test *t = *state;

	ipc_conn_destroy(&t->conn);
	if (t->peer >= 0)
		close(t->peer);
	ioloop_destroy(&t->ioloop);
	pool_unref(&t->pool);
	i_free(t);
	return 0;
}

static void str_frame(struct buf *out, uint32_t id, const char *str)
{
	size_t off = ipc_msg_begin(out, IPC_VAULT_PING, id);

	ipc_put_str(out, str);
	ipc_msg_finish(out, off);
}

static void write_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0) {
		ssize_t ret = write(fd, p, len);

		assert_true(ret > 0);
		p += ret;
		len -= (size_t)ret;
	}
}

/* Runs the loop until *counter reaches want, at most ~5 s. */
static void run_until(struct conn_test *t, const unsigned int *counter,
		      unsigned int want)
{
	for (unsigned int i = 0; i < 500 && *counter < want; i++)
		ioloop_run_once(t->ioloop, 10);
	assert_int_equal(*counter, want);
}

static void test_conn_several_frames_one_write(void **state)
{
	struct conn_test *t = *state;
	struct buf out = BUF_INIT;

	assert_true(ipc_conn_fd(t->conn) >= 0);
	str_frame(&out, 1, "one");
	str_frame(&out, 2, "");
	str_frame(&out, 3, "three");
	write_all(t->peer, out.data, out.used);
	run_until(t, &t->frames, 3);
	assert_int_equal(t->ids[0], 1);
	assert_int_equal(t->ids[1], 2);
	assert_int_equal(t->ids[2], 3);
	assert_string_equal(t->strs[0], "one");
	assert_string_equal(t->strs[1], "");
	assert_string_equal(t->strs[2], "three");
	assert_int_equal(t->closed, 0);
	buf_free(&out);
}

static void test_conn_split_frame(void **state)
{
	struct conn_test *t = *state;
	struct buf out = BUF_INIT;

	str_frame(&out, 77, "split into many writes");
	str_frame(&out, 78, "and a second one");
	size_t first_len =
		IPC_HEADER_SIZE + 4 + strlen("split into many writes");

	for (size_t i = 0; i < out.used; i++) {
		write_all(t->peer, out.data + i, 1);
		ioloop_run_once(t->ioloop, 10);
		/* nothing is dispatched before the last byte of a frame */
		if (i + 1 < first_len)
			assert_int_equal(t->frames, 0);
		else if (i + 1 < out.used)
			assert_true(t->frames <= 1);
	}
	run_until(t, &t->frames, 2);
	assert_int_equal(t->ids[0], 77);
	assert_string_equal(t->strs[0], "split into many writes");
	assert_string_equal(t->strs[1], "and a second one");
	buf_free(&out);
}

static void test_conn_peer_close(void **state)
{
	struct conn_test *t = *state;
	struct buf out = BUF_INIT;

	str_frame(&out, 1, "last words");
	write_all(t->peer, out.data, out.used);
	close(t->peer);
	t->peer = -1;
	run_until(t, &t->closed, 1);
	/* the frame sent before the close is still delivered */
	assert_int_equal(t->frames, 1);
	assert_non_null(strstr(t->reason, "closed"));
	/* closed is called once, and the loop no longer polls the fd */
	for (unsigned int i = 0; i < 5; i++)
		ioloop_run_once(t->ioloop, 1);
	assert_int_equal(t->closed, 1);
	/* sending after close is harmless */
	ipc_conn_send_empty(t->conn, IPC_FRONT_PONG, 1);
	buf_free(&out);
}

static void test_conn_close_mid_frame(void **state)
{
	struct conn_test *t = *state;
	struct buf out = BUF_INIT;

	str_frame(&out, 1, "cut short");
	write_all(t->peer, out.data, out.used - 2);
	close(t->peer);
	t->peer = -1;
	run_until(t, &t->closed, 1);
	assert_int_equal(t->frames, 0);
	assert_non_null(strstr(t->reason, "middle of a frame"));
	buf_free(&out);
}

static void test_conn_protocol_errors(void **state)
{
	static const struct {
		uint32_t len;
		uint16_t flags;
		const char *reason;
	} tests[] = {
		{ IPC_MAX_PAYLOAD + 1, 0, "IPC_MAX_PAYLOAD" },
		{ UINT32_MAX, 0, "IPC_MAX_PAYLOAD" },
		{ 0, 2, "flags" },
	};

	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		struct conn_test *t;
		uint8_t hdr[IPC_HEADER_SIZE];
		void *st = NULL;

		assert_int_equal(conn_setup(&st), 0);
		t = st;
		put_header(hdr, tests[i].len, IPC_VAULT_PING, tests[i].flags,
			   1);
		write_all(t->peer, hdr, sizeof(hdr));
		run_until(t, &t->closed, 1);
		assert_int_equal(t->frames, 0);
		assert_non_null(strstr(t->reason, tests[i].reason));
		conn_teardown(&st);
	}
}

static void test_conn_handler_rejects(void **state)
{
	struct conn_test *t = *state;
	struct buf out = BUF_INIT;
	size_t off;

	/* a frame with a trailing byte fails ipc_end(): handler returns -1 */
	off = ipc_msg_begin(&out, IPC_VAULT_PING, 1);
	ipc_put_str(&out, "x");
	ipc_put_u32(&out, 0);
	ipc_msg_finish(&out, off);
	str_frame(&out, 2, "never seen");
	write_all(t->peer, out.data, out.used);
	run_until(t, &t->closed, 1);
	assert_int_equal(t->frames, 0);
	assert_non_null(strstr(t->reason, "handler"));
	buf_free(&out);
}

static void test_conn_destroy_in_handler(void **state)
{
	struct conn_test *t = *state;
	struct buf out = BUF_INIT;

	t->destroy_in_handler = true;
	str_frame(&out, 1, "a");
	str_frame(&out, 2, "b");
	write_all(t->peer, out.data, out.used);
	run_until(t, &t->frames, 1);
	assert_null(t->conn);
	/* the loop still runs; the second frame went with the conn */
	ioloop_run_once(t->ioloop, 1);
	assert_int_equal(t->frames, 1);
	assert_int_equal(t->closed, 0);
	buf_free(&out);
}

static void test_conn_destroy_in_closed(void **state)
{
	struct conn_test *t = *state;

	t->destroy_in_closed = true;
	close(t->peer);
	t->peer = -1;
	run_until(t, &t->closed, 1);
	assert_null(t->conn);
	ioloop_run_once(t->ioloop, 1);
	assert_int_equal(t->closed, 1);
}

static void test_conn_send(void **state)
{
	struct conn_test *t = *state;
	pool_t pool = pool_create("test", 256);
	struct buf out = BUF_INIT, in = BUF_INIT;
	struct ipc_frame frame;
	const char *error;
	size_t consumed;

	ipc_conn_send_empty(t->conn, IPC_FRONT_RELOAD, 5);
	build_all_fields(&out, 6);
	ipc_conn_send(t->conn, &out);
	/* nothing is written until the loop runs */
	uint8_t peek;
	assert_int_equal(recv(t->peer, &peek, 1, MSG_PEEK | MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	for (unsigned int i = 0; i < 100 && in.used < 12 + out.used; i++) {
		uint8_t *p = buf_reserve(&in, 4096);
		ssize_t ret;

		ioloop_run_once(t->ioloop, 10);
		ret = recv(t->peer, p, 4096, MSG_DONTWAIT);
		if (ret > 0)
			buf_commit(&in, (size_t)ret);
	}
	assert_int_equal(
		ipc_frame_parse(buf_span(&in), &frame, &consumed, &error), 1);
	assert_int_equal(frame.type, IPC_FRONT_RELOAD);
	assert_int_equal(frame.id, 5);
	assert_int_equal(frame.payload.len, 0);
	buf_consume(&in, consumed);
	assert_int_equal(
		ipc_frame_parse(buf_span(&in), &frame, &consumed, &error), 1);
	assert_int_equal(frame.id, 6);
	read_all_fields(&frame, pool);
	assert_int_equal(consumed, in.used);
	buf_free(&in);
	buf_free(&out);
	pool_unref(&pool);
}

static void test_conn_large_send(void **state)
{
	/* bigger than the socket buffer: written over many IO_WRITE calls */
	struct conn_test *t = *state;
	struct buf out = BUF_INIT, in = BUF_INIT;
	struct ipc_frame frame;
	struct ipc_reader r;
	const char *error;
	size_t off, consumed, len = IPC_MAX_PAYLOAD - 4;
	uint8_t *big = i_malloc(len);
	struct span s;

	for (size_t i = 0; i < len; i++)
		big[i] = (uint8_t)(i * 7);
	off = ipc_msg_begin(&out, IPC_CONTROL_STATUS_REPLY, 9);
	ipc_put_bytes(&out, big, len);
	ipc_msg_finish(&out, off);
	ipc_conn_send(t->conn, &out);
	for (unsigned int i = 0; i < 10000 && in.used < out.used; i++) {
		uint8_t *p = buf_reserve(&in, 65536);
		ssize_t ret;

		ioloop_run_once(t->ioloop, 10);
		ret = recv(t->peer, p, 65536, MSG_DONTWAIT);
		if (ret > 0)
			buf_commit(&in, (size_t)ret);
	}
	assert_int_equal(
		ipc_frame_parse(buf_span(&in), &frame, &consumed, &error), 1);
	ipc_reader_init(&r, &frame);
	s = ipc_get_bytes(&r);
	assert_int_equal(ipc_end(&r), 0);
	assert_true(span_eq(s, span_make(big, len)));
	i_free(big);
	buf_free(&in);
	buf_free(&out);
}

/* Two ipc_conns on one loop: requests one way, echoed replies back. */
struct pair_side {
	struct ipc_conn *conn;
	pool_t pool;
	unsigned int frames;
	char *last;
	bool echo;
};

static int pair_handler(struct ipc_conn *conn, const struct ipc_frame *frame,
			void *context)
{
	struct pair_side *side = context;
	struct ipc_reader r;
	char *str;

	ipc_reader_init(&r, frame);
	str = ipc_get_str(&r, side->pool);
	if (ipc_end(&r) < 0)
		return -1;
	side->frames++;
	side->last = str;
	if (side->echo) {
		struct buf out = BUF_INIT;
		size_t off = ipc_msg_begin(&out, IPC_FRONT_PONG, frame->id);

		ipc_put_str(&out, str);
		ipc_msg_finish(&out, off);
		ipc_conn_send(conn, &out);
		buf_free(&out);
	}
	return 0;
}

static void pair_closed(struct ipc_conn *conn, const char *reason,
			void *context)
{
	fail_msg("unexpected close: %s", reason);
}

static void test_conn_pair(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct pair_side a = { 0 }, b = { 0 };
	struct buf out = BUF_INIT;
	char text[32];
	int fds[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	a.pool = pool_create("a", 1024);
	b.pool = pool_create("b", 1024);
	b.echo = true;
	a.conn = ipc_conn_create(ioloop, fds[0], pair_handler, pair_closed, &a);
	b.conn = ipc_conn_create(ioloop, fds[1], pair_handler, pair_closed, &b);
	for (uint32_t i = 0; i < 100; i++) {
		snprintf(text, sizeof(text), "ping %u", i);
		buf_reset(&out);
		str_frame(&out, i, text);
		ipc_conn_send(a.conn, &out);
	}
	for (unsigned int i = 0; i < 1000 && a.frames < 100; i++)
		ioloop_run_once(ioloop, 10);
	assert_int_equal(b.frames, 100);
	assert_int_equal(a.frames, 100);
	assert_string_equal(a.last, "ping 99");
	ipc_conn_destroy(&a.conn);
	ipc_conn_destroy(&b.conn);
	assert_null(a.conn);
	ipc_conn_destroy(&a.conn); /* NULL is fine */
	ioloop_destroy(&ioloop);
	pool_unref(&a.pool);
	pool_unref(&b.pool);
	buf_free(&out);
}

#define CT(f) cmocka_unit_test_setup_teardown(f, conn_setup, conn_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipc_round_trip),
		cmocka_unit_test(test_ipc_wire_format),
		cmocka_unit_test(test_ipc_begin_after_consume),
		cmocka_unit_test(test_ipc_byte_at_a_time),
		cmocka_unit_test(test_ipc_truncated_prefixes),
		cmocka_unit_test(test_ipc_bad_headers),
		cmocka_unit_test(test_ipc_end_leftover),
		cmocka_unit_test(test_ipc_short_reads),
		cmocka_unit_test(test_ipc_str_embedded_nul),
		cmocka_unit_test(test_ipc_max_payload),
		CT(test_conn_several_frames_one_write),
		CT(test_conn_split_frame),
		CT(test_conn_peer_close),
		CT(test_conn_close_mid_frame),
		cmocka_unit_test(test_conn_protocol_errors),
		CT(test_conn_handler_rejects),
		CT(test_conn_destroy_in_handler),
		CT(test_conn_destroy_in_closed),
		CT(test_conn_send),
		CT(test_conn_large_send),
		cmocka_unit_test(test_conn_pair),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
