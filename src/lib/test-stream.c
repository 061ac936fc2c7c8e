/* test-stream.c - unit tests for stream.c over socketpairs in one ioloop:
   plain echo, byte-at-a-time input, input bounds, slow readers, EOF, implicit
   TLS, certificate verification failure, STARTTLS command injection on both
   sides, peers that vanish mid-handshake, truncation, clean close,
   owners that destroy the stream from inside a callback, and RFC 4978
   COMPRESS=DEFLATE: checked against zlib driven by hand on the other end
   of the socket, split input, compressed input pipelined before the
   switch, a deflate bomb that must stop at max_input, garbage, and
   compression under TLS. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "ioloop.h"
#include "stream.h"
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

struct peer;
/* Runs before the default handling; returns true to skip it. */
typedef bool peer_hook_t(struct peer *peer, enum stream_event event);

struct peer {
	struct stream *stream;
	struct buf data; /* input collected from the stream */
	unsigned int n_input, n_full, n_drained, n_tls, n_eof, n_error,
		n_closed;
	bool hold; /* leave input in the stream */
	bool echo; /* write input back */
	bool destroy_on_input, destroy_on_tls;
	peer_hook_t *hook;
	char *error;
	bool saw_noop; /* STARTTLS tests: the injection was buffered */
};

static struct ioloop *ioloop;
static struct tls_ctx *server_ctx, *client_ctx, *client_verify_ctx;
static char tmpdir[64], *cert_file, *key_file;

#define RUN_UNTIL(expr)                                      \
	do {                                                 \
		for (int _i = 0; _i < 1000 && !(expr); _i++) \
			ioloop_run_once(ioloop, 10);         \
		assert_true(expr);                           \
	} while (0)

static void run_iterations(int n)
{
	for (int i = 0; i < n; i++)
		ioloop_run_once(ioloop, 5);
}

static void peer_callback(struct stream *stream, enum stream_event event,
			  void *context)
{
	struct peer *peer = context;
	struct buf *input;

	if (event == STREAM_EVENT_INPUT) {
		peer->n_input++;
		if (stream_input_full(stream))
			peer->n_full++;
	}
	if (peer->hook != NULL && peer->hook(peer, event))
		return;

	switch (event) {
	case STREAM_EVENT_INPUT:
		if (peer->destroy_on_input) {
			stream_destroy(&peer->stream);
			return;
		}
		if (peer->hold)
			break;
		input = stream_input(stream);
		buf_append_span(&peer->data, buf_span(input));
		if (peer->echo)
			stream_write(stream, buf_span(input).p, input->used);
		buf_consume(input, input->used);
		break;
	case STREAM_EVENT_OUTPUT_DRAINED:
		peer->n_drained++;
		break;
	case STREAM_EVENT_TLS_READY:
		peer->n_tls++;
		if (peer->destroy_on_tls)
			stream_destroy(&peer->stream);
		break;
	case STREAM_EVENT_EOF:
		peer->n_eof++;
		break;
	case STREAM_EVENT_ERROR:
		peer->n_error++;
		i_free(peer->error);
		peer->error = i_strdup(stream_error(stream));
		break;
	case STREAM_EVENT_CLOSED:
		peer->n_closed++;
		break;
	}
}

/* Peers live on the heap and in a registry so that teardown can free
   what a failed test (cmocka longjmps out of it) left behind. */
static struct peer *live_peers[4];

static struct peer *peer_new(int fd)
{
	struct peer *peer = i_new(struct peer, 1);
	size_t i;

	for (i = 0; i < N_ELEMENTS(live_peers); i++) {
		if (live_peers[i] == NULL)
			break;
	}
	i_assert(i < N_ELEMENTS(live_peers));
	live_peers[i] = peer;
	buf_init(&peer->data, 64);
	peer->stream = stream_create(ioloop, fd, peer_callback, peer);
	return peer;
}

static void peer_deinit(struct peer *peer)
{
	for (size_t i = 0; i < N_ELEMENTS(live_peers); i++) {
		if (live_peers[i] == peer)
			live_peers[i] = NULL;
	}
	stream_destroy(&peer->stream);
	buf_free(&peer->data);
	i_free(peer->error);
	i_free(peer);
}

static bool peer_has(const struct peer *peer, const char *str)
{
	return peer->data.used == strlen(str) &&
	       memcmp(buf_cstr(&peer->data), str, peer->data.used) == 0;
}

static void make_pair(int fds[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
}

static void set_nonblock(int fd)
{
	assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK),
			 0);
}

static void write_all(int fd, const void *data, size_t len)
{
	assert_int_equal(write(fd, data, len), (ssize_t)len);
}

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 7 + i / 251);
}

/* Plain text */

static void test_plain_echo(void **state)
{
	struct peer *server, *client;
	int fds[2];

	make_pair(fds);
	server = peer_new(fds[0]);
	client = peer_new(fds[1]);
	server->echo = true;

	stream_write_str(client->stream, "hello\r\n");
	stream_printf(client->stream, "%s %d\r\n", "number", 42);
	RUN_UNTIL(client->data.used == 18);
	assert_true(peer_has(client, "hello\r\nnumber 42\r\n"));
	assert_true(peer_has(server, "hello\r\nnumber 42\r\n"));
	assert_false(stream_is_tls(server->stream));
	assert_null(stream_tls_version(server->stream));
	assert_null(stream_error(server->stream));
	assert_int_equal(stream_fd(server->stream), fds[0]);
	assert_int_equal(server->n_error + client->n_error, 0);
	peer_deinit(server);
	peer_deinit(client);
}

static void test_byte_at_a_time(void **state)
{
	static const char msg[] = "EHLO client->example\r\nQUIT\r\n";
	struct peer *server;
	int fds[2];

	make_pair(fds);
	server = peer_new(fds[0]);
	for (size_t i = 0; i < sizeof(msg) - 1; i++) {
		write_all(fds[1], msg + i, 1);
		RUN_UNTIL(server->data.used == i + 1);
	}
	assert_true(peer_has(server, msg));
	assert_int_equal(server->n_input, sizeof(msg) - 1);
	assert_int_equal(server->n_eof, 0);
	peer_deinit(server);
	close(fds[1]);
}

static void test_max_input_full(void **state)
{
	struct peer *server;
	char data[100];
	int fds[2];

	memset(data, 'x', sizeof(data));
	make_pair(fds);
	server = peer_new(fds[0]);
	server->hold = true;
	stream_set_max_input(server->stream, 10);
	write_all(fds[1], data, sizeof(data));

	RUN_UNTIL(server->n_full == 1);
	assert_int_equal(stream_input(server->stream)->used, 10);
	assert_true(stream_input_full(server->stream));
	/* Full: no more reads and no more events until consumed. */
	run_iterations(10);
	assert_int_equal(server->n_full, 1);
	assert_int_equal(server->n_input, 1);
	assert_int_equal(stream_input(server->stream)->used, 10);

	/* Consuming outside a callback and resuming reads the next 10. */
	buf_consume(stream_input(server->stream), 10);
	stream_set_reading(server->stream, true);
	RUN_UNTIL(server->n_full == 2);
	assert_int_equal(stream_input(server->stream)->used, 10);

	/* Paused reading stays paused even with room. */
	buf_consume(stream_input(server->stream), 10);
	stream_set_reading(server->stream, false);
	run_iterations(5);
	assert_int_equal(stream_input(server->stream)->used, 0);
	assert_int_equal(server->n_input, 2);
	peer_deinit(server);
	close(fds[1]);
}

static void test_large_output_drained(void **state)
{
	const size_t total = 4 * 1024 * 1024;
	struct peer *server;
	uint8_t *data = i_malloc(total), chunk[32768];
	size_t got = 0;
	int fds[2];
	bool ok = true;

	for (size_t i = 0; i < total; i++)
		data[i] = pattern(i);
	make_pair(fds);
	set_nonblock(fds[1]);
	server = peer_new(fds[0]);
	stream_write(server->stream, data, total);
	assert_true(stream_output_pending(server->stream) > 0);
	assert_int_equal(server->n_drained, 0);

	for (int i = 0; i < 10000 && server->n_drained == 0; i++) {
		ssize_t n = read(fds[1], chunk, sizeof(chunk));

		if (n > 0) {
			for (ssize_t j = 0; j < n; j++)
				ok = ok && chunk[j] == pattern(got + j);
			got += (size_t)n;
		}
		ioloop_run_once(ioloop, 1);
	}
	assert_int_equal(server->n_drained, 1);
	assert_int_equal(stream_output_pending(server->stream), 0);
	for (;;) {
		ssize_t n = read(fds[1], chunk, sizeof(chunk));

		if (n <= 0)
			break;
		for (ssize_t j = 0; j < n; j++)
			ok = ok && chunk[j] == pattern(got + j);
		got += (size_t)n;
	}
	assert_int_equal(got, total);
	assert_true(ok);
	peer_deinit(server);
	close(fds[1]);
	i_free(data);
}

static void test_eof(void **state)
{
	struct peer *server;
	int fds[2];

	make_pair(fds);
	server = peer_new(fds[0]);
	server->hold = true;
	write_all(fds[1], "bye", 3);
	close(fds[1]);
	RUN_UNTIL(server->n_eof == 1);
	/* unconsumed input stays */
	assert_int_equal(stream_input(server->stream)->used, 3);
	assert_memory_equal(buf_cstr(stream_input(server->stream)), "bye", 3);
	run_iterations(3);
	assert_int_equal(server->n_eof, 1);
	assert_int_equal(server->n_error, 0);
	peer_deinit(server);
}

static void test_close_after_flush_plain(void **state)
{
	struct peer *server;
	char buf[256];
	size_t got = 0;
	int fds[2];

	make_pair(fds);
	set_nonblock(fds[1]);
	server = peer_new(fds[0]);
	stream_write_str(server->stream, "221 bye\r\n");
	stream_close_after_flush(server->stream);
	/* written after close: dropped */
	stream_write_str(server->stream, "ignored");
	RUN_UNTIL(server->n_closed == 1);
	for (;;) {
		ssize_t n = read(fds[1], buf + got, sizeof(buf) - got);

		if (n <= 0) {
			assert_int_equal(n, 0); /* EOF after the reply */
			break;
		}
		got += (size_t)n;
	}
	assert_int_equal(got, 9);
	assert_memory_equal(buf, "221 bye\r\n", 9);
	/* input after close is discarded, no more events */
	write_all(fds[1], "late\r\n", 6);
	run_iterations(3);
	assert_int_equal(server->n_input, 0);
	assert_int_equal(server->n_closed, 1);
	peer_deinit(server);
	close(fds[1]);
}

static void test_destroy_in_input_callback(void **state)
{
	struct peer *server;
	int fds[2];

	make_pair(fds);
	server = peer_new(fds[0]);
	server->destroy_on_input = true;
	stream_set_max_input(server->stream, 4);
	/* enough input to tempt further reads and an EOF in one pass */
	write_all(fds[1], "QUIT\r\nMORE\r\n", 12);
	close(fds[1]);
	RUN_UNTIL(server->stream == NULL);
	run_iterations(3);
	assert_int_equal(server->n_input, 1);
	assert_int_equal(server->n_eof, 0);
	peer_deinit(server);
}

static void test_write_error_reported(void **state)
{
	struct peer *server;
	int fds[2];

	make_pair(fds);
	server = peer_new(fds[0]);
	close(fds[1]);
	stream_write_str(server->stream, "250 ok\r\n");
	/* never from inside the call */
	assert_int_equal(server->n_error, 0);
	RUN_UNTIL(server->n_error == 1);
	assert_non_null(strstr(server->error, "Broken pipe"));
	run_iterations(3);
	assert_int_equal(server->n_error, 1);
	peer_deinit(server);
}

/* TLS */

static void start_tls_pair(struct peer **server_r, struct peer **client_r,
			   struct tls_ctx *cctx, const char *sni)
{
	const char *error = NULL;
	int fds[2];

	make_pair(fds);
	*server_r = peer_new(fds[0]);
	*client_r = peer_new(fds[1]);
	assert_int_equal(stream_start_tls_server((*server_r)->stream,
						 server_ctx, &error),
			 0);
	assert_int_equal(
		stream_start_tls_client((*client_r)->stream, cctx, sni, &error),
		0);
}

static void test_tls_both_ways(void **state)
{
	struct peer *server, *client;
	const char *error = NULL;

	start_tls_pair(&server, &client, client_ctx, "localhost");
	RUN_UNTIL(server->n_tls == 1 && client->n_tls == 1);
	assert_true(stream_is_tls(server->stream));
	assert_true(stream_is_tls(client->stream));
	assert_string_equal(stream_tls_version(server->stream), "TLSv1.3");
	assert_non_null(stream_tls_cipher(client->stream));
	/* a second STARTTLS is refused */
	assert_int_equal(
		stream_start_tls_server(server->stream, server_ctx, &error),
		-1);
	assert_non_null(strstr(error, "already"));

	stream_write_str(client->stream, "ping\r\n");
	RUN_UNTIL(server->data.used == 6);
	assert_true(peer_has(server, "ping\r\n"));
	stream_write_str(server->stream, "pong\r\n");
	RUN_UNTIL(client->data.used == 6);
	assert_true(peer_has(client, "pong\r\n"));
	assert_int_equal(server->n_error + client->n_error, 0);
	peer_deinit(server);
	peer_deinit(client);
}

static void test_tls_large_small_input(void **state)
{
	/* A small max_input leaves decrypted bytes inside OpenSSL while the
	   fd is dry: they must still arrive. */
	const size_t total = 256 * 1024;
	struct peer *server, *client;
	uint8_t *data = i_malloc(total);
	bool ok = true;

	for (size_t i = 0; i < total; i++)
		data[i] = pattern(i);
	start_tls_pair(&server, &client, client_ctx, NULL);
	stream_set_max_input(server->stream, 100);
	RUN_UNTIL(client->n_tls == 1);
	stream_write(client->stream, data, total);
	RUN_UNTIL(server->data.used == total);
	for (size_t i = 0; i < total; i++)
		ok = ok && server->data.data[server->data.start + i] == data[i];
	assert_true(ok);
	assert_true(server->n_full > 0);
	RUN_UNTIL(client->n_drained == 1);

	/* Held input, consumed outside the callback, then resumed. */
	server->hold = true;
	buf_reset(&server->data);
	stream_write(client->stream, data, 1000);
	RUN_UNTIL(stream_input_full(server->stream));
	run_iterations(3);
	for (size_t n = 0; n < 1000;) {
		struct buf *input = stream_input(server->stream);

		RUN_UNTIL(input->used > 0);
		assert_memory_equal(buf_span(input).p, data + n, input->used);
		n += input->used;
		buf_consume(input, input->used);
		stream_set_reading(server->stream, true);
	}
	assert_int_equal(server->n_error + client->n_error, 0);
	peer_deinit(server);
	peer_deinit(client);
	i_free(data);
}

static void test_tls_verify_fails(void **state)
{
	struct peer *server, *client;
	const char *error = NULL;

	start_tls_pair(&server, &client, client_verify_ctx, "localhost");
	RUN_UNTIL(client->n_error == 1);
	assert_non_null(strstr(client->error, "TLS handshake failed"));
	assert_non_null(strstr(client->error, "self-signed"));
	assert_int_equal(client->n_tls, 0);
	assert_false(stream_is_tls(client->stream));
	/* the server sees the alert */
	RUN_UNTIL(server->n_error == 1);
	assert_int_equal(server->n_tls, 0);
	peer_deinit(server);
	peer_deinit(client);

	/* A verifying client without a host name is refused up front. */
	{
		int fds[2];

		make_pair(fds);
		client = peer_new(fds[0]);
		assert_int_equal(stream_start_tls_client(client->stream,
							 client_verify_ctx,
							 NULL, &error),
				 -1);
		assert_non_null(strstr(error, "host name"));
		peer_deinit(client);
		close(fds[1]);
	}
}

static void test_tls_close_after_flush(void **state)
{
	struct peer *server, *client;

	start_tls_pair(&server, &client, client_ctx, "localhost");
	RUN_UNTIL(server->n_tls == 1 && client->n_tls == 1);
	stream_write_str(server->stream, "* BYE\r\n");
	stream_close_after_flush(server->stream);
	RUN_UNTIL(server->n_closed == 1);
	/* close_notify makes it a clean EOF for the client */
	RUN_UNTIL(client->n_eof == 1);
	assert_true(peer_has(client, "* BYE\r\n"));
	assert_int_equal(client->n_error, 0);
	peer_deinit(server);
	peer_deinit(client);
}

static void test_tls_truncation_is_error(void **state)
{
	struct peer *server, *client;

	start_tls_pair(&server, &client, client_ctx, "localhost");
	RUN_UNTIL(server->n_tls == 1 && client->n_tls == 1);
	/* TCP FIN without close_notify */
	assert_int_equal(shutdown(stream_fd(server->stream), SHUT_WR), 0);
	RUN_UNTIL(client->n_error == 1);
	assert_int_equal(client->n_eof, 0);
	assert_non_null(strstr(client->error, "TLS read failed"));
	peer_deinit(server);
	peer_deinit(client);
}

static void test_destroy_in_tls_ready(void **state)
{
	struct peer *server, *client;

	start_tls_pair(&server, &client, client_ctx, "localhost");
	server->destroy_on_tls = true;
	RUN_UNTIL(server->stream == NULL);
	/* the client gets either its handshake or an error, no crash */
	RUN_UNTIL(client->n_tls + client->n_error + client->n_eof > 0);
	run_iterations(3);
	assert_int_equal(server->n_tls, 1);
	peer_deinit(server);
	peer_deinit(client);
}

/* Moves at most one byte each way between two raw fds. Returns true if a
   byte moved. */
static bool relay_one_byte(int from, int to)
{
	uint8_t c;
	ssize_t n = read(from, &c, 1);

	if (n != 1)
		return false;
	write_all(to, &c, 1);
	return true;
}

static void test_tls_byte_at_a_time(void **state)
{
	/* Handshake and data reach each side one byte per loop iteration. */
	struct peer *server, *client;
	const char *error = NULL;
	int sfds[2], cfds[2];
	unsigned int moved = 0;
	bool sent = false;

	make_pair(sfds);
	make_pair(cfds);
	set_nonblock(sfds[1]);
	set_nonblock(cfds[1]);
	server = peer_new(sfds[0]);
	client = peer_new(cfds[0]);
	assert_int_equal(
		stream_start_tls_server(server->stream, server_ctx, &error), 0);
	assert_int_equal(stream_start_tls_client(client->stream, client_ctx,
						 "localhost", &error),
			 0);
	for (int i = 0; i < 200000 && server->data.used < 7; i++) {
		if (relay_one_byte(cfds[1], sfds[1]))
			moved++;
		if (relay_one_byte(sfds[1], cfds[1]))
			moved++;
		ioloop_run_once(ioloop, 0);
		if (client->n_tls == 1 && !sent) {
			stream_write_str(client->stream, "HELLO\r\n");
			sent = true;
		}
	}
	assert_int_equal(server->n_tls, 1);
	assert_int_equal(client->n_tls, 1);
	assert_true(peer_has(server, "HELLO\r\n"));
	assert_true(moved > 500); /* it really was a trickle */
	assert_int_equal(server->n_error + client->n_error, 0);
	peer_deinit(server);
	peer_deinit(client);
	close(sfds[1]);
	close(cfds[1]);
}

/* STARTTLS injection (RFC 3207 6) */

static bool server_starttls_hook(struct peer *peer, enum stream_event event)
{
	struct buf *input = stream_input(peer->stream);
	const char *error = NULL;

	if (event != STREAM_EVENT_INPUT || stream_is_tls(peer->stream))
		return false;
	if (input->used < 10 || memcmp(buf_cstr(input), "STARTTLS\r\n", 10))
		return true;
	buf_consume(input, 10);
	peer->saw_noop = strstr(buf_cstr(input), "NOOP") != NULL;
	stream_write_str(peer->stream, "220 ready\r\n");
	assert_int_equal(
		stream_start_tls_server(peer->stream, server_ctx, &error), 0);
	assert_int_equal(input->used, 0);
	return true;
}

static bool client_starttls_hook(struct peer *peer, enum stream_event event)
{
	struct buf *input = stream_input(peer->stream);
	const char *error = NULL;

	if (event == STREAM_EVENT_TLS_READY) {
		stream_write_str(peer->stream, "HELLO\r\n");
		return false;
	}
	if (event != STREAM_EVENT_INPUT || stream_is_tls(peer->stream))
		return false;
	if (input->used < 11)
		return true;
	assert_memory_equal(buf_cstr(input), "220 ready\r\n", 11);
	peer->saw_noop = input->used > 11;
	assert_int_equal(stream_start_tls_client(peer->stream, client_ctx,
						 "localhost", &error),
			 0);
	assert_int_equal(input->used, 0);
	return true;
}

static void test_starttls_injection_server(void **state)
{
	struct peer *server, *client;
	int fds[2];

	make_pair(fds);
	server = peer_new(fds[0]);
	client = peer_new(fds[1]);
	server->hook = server_starttls_hook;
	client->hook = client_starttls_hook;

	/* one write: the command and the injected one */
	stream_write_str(client->stream, "STARTTLS\r\nNOOP\r\n");
	RUN_UNTIL(server->n_tls == 1 && client->n_tls == 1);
	assert_true(server->saw_noop); /* it was buffered, then dropped */
	RUN_UNTIL(server->data.used >= 7);
	run_iterations(3);
	assert_true(peer_has(server, "HELLO\r\n"));
	assert_int_equal(server->n_error + client->n_error, 0);
	peer_deinit(server);
	peer_deinit(client);
}

static bool server_pipelining_hook(struct peer *peer, enum stream_event event)
{
	if (event == STREAM_EVENT_TLS_READY)
		stream_write_str(peer->stream, "250 after tls\r\n");
	return false;
}

static void test_starttls_injection_client(void **state)
{
	struct peer *server, *client;
	const char *error = NULL;
	int fds[2];

	make_pair(fds);
	server = peer_new(fds[0]);
	client = peer_new(fds[1]);
	server->hook = server_pipelining_hook;
	client->hook = client_starttls_hook;

	/* A malicious server: its 220 and a forged reply in one write. */
	stream_write_str(server->stream, "220 ready\r\n250 forged\r\n");
	/* Queued, not yet written: stream_start_tls_server sends it as one
	   plaintext write before the handshake. */
	assert_int_equal(stream_output_pending(server->stream), 23);
	assert_int_equal(
		stream_start_tls_server(server->stream, server_ctx, &error), 0);
	RUN_UNTIL(server->n_tls == 1 && client->n_tls == 1);
	assert_true(client->saw_noop);
	RUN_UNTIL(client->data.used >= 15);
	run_iterations(3);
	assert_true(peer_has(client, "250 after tls\r\n"));
	assert_null(strstr(buf_cstr(&client->data), "forged"));
	RUN_UNTIL(server->data.used == 7);
	assert_true(peer_has(server, "HELLO\r\n"));
	peer_deinit(server);
	peer_deinit(client);
}

static void test_starttls_reply_flushed_first(void **state)
{
	/* The reply queued before STARTTLS goes out in plaintext even when
	   it cannot be written at once. */
	const size_t big = 1024 * 1024;
	struct peer *server;
	uint8_t *data = i_malloc(big);
	const char *error = NULL;
	size_t got = 0;
	int fds[2];

	memset(data, 'r', big);
	make_pair(fds);
	set_nonblock(fds[1]);
	server = peer_new(fds[0]);
	stream_write(server->stream, data, big);
	assert_true(stream_output_pending(server->stream) > 0);
	assert_int_equal(
		stream_start_tls_server(server->stream, server_ctx, &error), 0);
	/* written after the call: must not leak out in plaintext */
	stream_write_str(server->stream, "SECRET");
	for (int i = 0; i < 20000 && got < big; i++) {
		ssize_t n = read(fds[1], data, big);

		if (n > 0) {
			for (ssize_t j = 0; j < n; j++)
				assert_int_equal(data[j], 'r');
			got += (size_t)n;
		}
		ioloop_run_once(ioloop, 1);
	}
	assert_int_equal(got, big);
	run_iterations(3);
	assert_int_equal(read(fds[1], data, big), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(stream_output_pending(server->stream), 6);
	assert_int_equal(server->n_error, 0);
	peer_deinit(server);
	close(fds[1]);
	i_free(data);
}

/* Peers that go away during the handshake */

static void test_server_peer_closes_in_handshake(void **state)
{
	static const uint8_t partial_hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00,
						 0x01, 0x00, 0x01, 0xfc, 0x03 };
	struct peer *server;
	const char *error = NULL;
	int fds[2];

	make_pair(fds);
	server = peer_new(fds[0]);
	assert_int_equal(
		stream_start_tls_server(server->stream, server_ctx, &error), 0);
	run_iterations(2);
	write_all(fds[1], partial_hello, sizeof(partial_hello));
	run_iterations(2);
	close(fds[1]);
	RUN_UNTIL(server->n_error == 1);
	assert_non_null(strstr(server->error, "TLS handshake failed"));
	assert_int_equal(server->n_tls, 0);
	assert_int_equal(server->n_input, 0);
	run_iterations(3);
	assert_int_equal(server->n_error, 1);
	peer_deinit(server);
}

static void test_client_peer_closes_in_handshake(void **state)
{
	struct peer *client;
	const char *error = NULL;
	char buf[4096];
	int fds[2];

	make_pair(fds);
	client = peer_new(fds[0]);
	assert_int_equal(stream_start_tls_client(client->stream, client_ctx,
						 "localhost", &error),
			 0);
	run_iterations(2);
	/* the ClientHello arrived; hang up on it */
	assert_true(read(fds[1], buf, sizeof(buf)) > 0);
	assert_int_equal((uint8_t)buf[0], 0x16);
	close(fds[1]);
	RUN_UNTIL(client->n_error == 1);
	assert_non_null(strstr(client->error, "TLS handshake failed"));
	assert_int_equal(client->n_tls, 0);
	peer_deinit(client);
}

static void test_plaintext_to_tls_server(void **state)
{
	struct peer *server;
	const char *error = NULL;
	int fds[2];

	make_pair(fds);
	server = peer_new(fds[0]);
	assert_int_equal(
		stream_start_tls_server(server->stream, server_ctx, &error), 0);
	write_all(fds[1], "EHLO plain.example\r\n", 20);
	RUN_UNTIL(server->n_error == 1);
	assert_non_null(strstr(server->error, "TLS handshake failed"));
	assert_int_equal(server->n_input, 0);
	peer_deinit(server);
	close(fds[1]);
}

/* Fixtures */

/* COMPRESS=DEFLATE */

/* Raw deflate (RFC 4978) of data, ended with Z_SYNC_FLUSH, appended. */
static void zdeflate(z_stream *z, const void *data, size_t len, struct buf *out)
{
	z->next_in = (Bytef *)data;
	z->avail_in = (uInt)len;
	do {
		uint8_t *p = buf_reserve(out, 65536);

		z->next_out = p;
		z->avail_out = 65536;
		assert_true(deflate(z, Z_SYNC_FLUSH) != Z_STREAM_ERROR);
		buf_commit(out, 65536 - z->avail_out);
	} while (z->avail_out == 0);
	assert_int_equal(z->avail_in, 0);
}

static void zinflate(z_stream *z, const void *data, size_t len, struct buf *out)
{
	z->next_in = (Bytef *)data;
	z->avail_in = (uInt)len;
	do {
		uint8_t *p = buf_reserve(out, 65536);
		int ret;

		z->next_out = p;
		z->avail_out = 65536;
		ret = inflate(z, Z_SYNC_FLUSH);
		assert_true(ret == Z_OK || ret == Z_BUF_ERROR);
		buf_commit(out, 65536 - z->avail_out);
	} while (z->avail_out == 0);
}

/* Reads what is there from a non-blocking fd, running the loop. */
static void read_available(int fd, struct buf *out, size_t want)
{
	for (int i = 0; i < 2000 && out->used < want; i++) {
		uint8_t *p = buf_reserve(out, 65536);
		ssize_t n = read(fd, p, 65536);

		if (n > 0)
			buf_commit(out, (size_t)n);
		else
			ioloop_run_once(ioloop, 2);
	}
}

static void test_compress_wire(void **state)
{
	static const char ok[] = "a OK DEFLATE active\r\n";
	static const char line[] = "* 1 FETCH (FLAGS (\\Seen))\r\n";
	struct buf wire = BUF_INIT, plain = BUF_INIT, sent = BUF_INIT;
	struct buf expect = BUF_INIT;
	struct peer *server;
	const char *error = NULL;
	z_stream zd, zi;
	int fds[2];

	make_pair(fds);
	set_nonblock(fds[1]);
	server = peer_new(fds[0]);
	memset(&zd, 0, sizeof(zd));
	memset(&zi, 0, sizeof(zi));
	assert_int_equal(
		deflateInit2(&zd, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY),
		Z_OK);
	assert_int_equal(inflateInit2(&zi, -15), Z_OK);

	/* The tagged OK queued before the switch leaves uncompressed. */
	stream_write_str(server->stream, ok);
	assert_int_equal(stream_start_compress(server->stream, &error), 0);
	assert_true(stream_is_compressed(server->stream));
	assert_int_equal(stream_start_compress(server->stream, &error), -1);
	for (unsigned int i = 0; i < 2000; i++) {
		stream_write_str(server->stream, line);
		buf_append_str(&expect, line);
	}
	read_available(fds[1], &wire, sizeof(ok) - 1);
	assert_true(wire.used > sizeof(ok) - 1);
	assert_memory_equal(wire.data + wire.start, ok, sizeof(ok) - 1);
	/* The batch ended with a sync flush: all of it decodes now. */
	for (int i = 0; i < 100; i++) {
		buf_reset(&plain);
		zinflate(&zi, wire.data + wire.start + sizeof(ok) - 1,
			 wire.used - (sizeof(ok) - 1), &plain);
		if (plain.used == expect.used)
			break;
		/* Not all written yet: read on with a fresh inflater. */
		inflateEnd(&zi);
		assert_int_equal(inflateInit2(&zi, -15), Z_OK);
		read_available(fds[1], &wire, wire.used + 1);
	}
	assert_int_equal(plain.used, expect.used);
	assert_memory_equal(plain.data + plain.start,
			    expect.data + expect.start, expect.used);
	/* Repetitive IMAP output shrinks a lot. */
	assert_true(wire.used < expect.used / 10);
	/* The end of a sync flush: an empty stored block. */
	assert_memory_equal(wire.data + wire.start + wire.used - 4,
			    "\x00\x00\xff\xff", 4);

	/* Compressed input, one byte per write. */
	zdeflate(&zd, "b NOOP\r\nc LOGOUT\r\n", 18, &sent);
	for (size_t i = 0; i < sent.used; i++) {
		write_all(fds[1], sent.data + sent.start + i, 1);
		run_iterations(1);
	}
	RUN_UNTIL(server->data.used == 18);
	assert_true(peer_has(server, "b NOOP\r\nc LOGOUT\r\n"));
	/* STARTTLS cannot go under the compression. */
	assert_int_equal(
		stream_start_tls_server(server->stream, server_ctx, &error),
		-1);
	assert_int_equal(server->n_error, 0);

	deflateEnd(&zd);
	inflateEnd(&zi);
	buf_free(&wire);
	buf_free(&plain);
	buf_free(&sent);
	buf_free(&expect);
	peer_deinit(server);
	close(fds[1]);
}

/* The client compresses right after its command: bytes buffered behind
   the COMPRESS line are compressed already. */
static void test_compress_pipelined(void **state)
{
	static const char cmd[] = "a COMPRESS DEFLATE\r\n";
	struct buf out = BUF_INIT;
	struct peer *server;
	const char *error = NULL;
	z_stream zd;
	int fds[2];

	make_pair(fds);
	server = peer_new(fds[0]);
	server->hold = true;
	memset(&zd, 0, sizeof(zd));
	assert_int_equal(
		deflateInit2(&zd, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY),
		Z_OK);
	buf_append_str(&out, cmd);
	zdeflate(&zd, "b NOOP\r\n", 8, &out);
	write_all(fds[1], out.data + out.start, out.used);
	RUN_UNTIL(stream_input(server->stream)->used == out.used);
	buf_consume(stream_input(server->stream), sizeof(cmd) - 1);
	stream_write_str(server->stream, "a OK\r\n");
	assert_int_equal(stream_start_compress(server->stream, &error), 0);
	server->hold = false;
	RUN_UNTIL(server->data.used == 8);
	assert_true(peer_has(server, "b NOOP\r\n"));
	deflateEnd(&zd);
	buf_free(&out);
	peer_deinit(server);
	close(fds[1]);
}

/* 256 MiB of zeros in a few hundred KiB: inflating stops at max_input. */
static void test_compress_bomb(void **state)
{
	const size_t max_input = 64 * 1024 + 2;
	static uint8_t zeros[1024 * 1024];
	struct buf bomb = BUF_INIT;
	struct peer *server;
	const char *error = NULL;
	size_t off = 0;
	z_stream zd;
	int fds[2];

	make_pair(fds);
	set_nonblock(fds[1]);
	server = peer_new(fds[0]);
	server->hold = true;
	stream_set_max_input(server->stream, max_input);
	assert_int_equal(stream_start_compress(server->stream, &error), 0);
	memset(&zd, 0, sizeof(zd));
	assert_int_equal(
		deflateInit2(&zd, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY),
		Z_OK);
	for (unsigned int i = 0; i < 256; i++)
		zdeflate(&zd, zeros, sizeof(zeros), &bomb);
	assert_true(bomb.used < 2 * 1024 * 1024);
	for (int i = 0; i < 2000 && off < bomb.used; i++) {
		ssize_t n = write(fds[1], bomb.data + bomb.start + off,
				  bomb.used - off);

		if (n > 0)
			off += (size_t)n;
		ioloop_run_once(ioloop, 1);
	}
	RUN_UNTIL(server->n_full >= 1);
	run_iterations(20);
	/* Full, and nothing beyond: the rest waits in the socket. */
	assert_int_equal(stream_input(server->stream)->used, max_input);
	assert_int_equal(server->n_full, 1);
	assert_int_equal(server->n_error, 0);
	/* Consuming lets the next 64 KiB in, no more. */
	buf_consume(stream_input(server->stream), max_input);
	stream_set_reading(server->stream, true);
	RUN_UNTIL(server->n_full == 2);
	assert_int_equal(stream_input(server->stream)->used, max_input);
	deflateEnd(&zd);
	buf_free(&bomb);
	peer_deinit(server);
	close(fds[1]);
}

static void test_compress_garbage(void **state)
{
	struct peer *server;
	const char *error = NULL;
	int fds[2];

	make_pair(fds);
	server = peer_new(fds[0]);
	assert_int_equal(stream_start_compress(server->stream, &error), 0);
	/* BTYPE 11 is reserved (RFC 1951 3.2.3). */
	write_all(fds[1], "\xff\xff\xff\xff", 4);
	RUN_UNTIL(server->n_error == 1);
	assert_non_null(strstr(server->error, "invalid compressed input"));
	peer_deinit(server);
	close(fds[1]);
}

/* Both ends are streams, under TLS: compressed, then encrypted. */
static void test_compress_tls(void **state)
{
	const size_t total = 3 * 1024 * 1024;
	struct peer *server, *client;
	const char *error = NULL;
	uint8_t *data = i_malloc(total);
	bool ok = true;

	for (size_t i = 0; i < total; i++)
		data[i] = (uint8_t)('a' + (i % 61) % 26);
	start_tls_pair(&server, &client, client_ctx, "localhost");
	RUN_UNTIL(server->n_tls == 1 && client->n_tls == 1);
	server->echo = true;
	stream_write_str(server->stream, "a OK\r\n");
	assert_int_equal(stream_start_compress(server->stream, &error), 0);
	RUN_UNTIL(client->data.used == 6);
	assert_true(peer_has(client, "a OK\r\n"));
	buf_reset(&client->data);
	assert_int_equal(stream_start_compress(client->stream, &error), 0);
	stream_write(client->stream, data, total);
	for (int i = 0; i < 5000 && client->data.used < total; i++)
		ioloop_run_once(ioloop, 2);
	assert_int_equal(client->data.used, total);
	assert_int_equal(server->data.used, total);
	for (size_t i = 0; i < total; i++)
		ok = ok && client->data.data[client->data.start + i] == data[i];
	assert_true(ok);
	assert_true(stream_is_tls(server->stream));
	assert_int_equal(server->n_error + client->n_error, 0);
	assert_int_equal(stream_output_pending(server->stream), 0);
	i_free(data);
	peer_deinit(server);
	peer_deinit(client);
}

static int setup(void **state)
{
	ioloop = ioloop_create();
	return 0;
}

static int teardown(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(live_peers); i++) {
		if (live_peers[i] != NULL)
			peer_deinit(live_peers[i]);
	}
	ioloop_destroy(&ioloop);
	return 0;
}

static int group_setup(void **state)
{
	const char *error = NULL;

	signal(SIGPIPE, SIG_IGN);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/marmot-test-stream.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	cert_file = i_strdup_printf("%s/cert.pem", tmpdir);
	key_file = i_strdup_printf("%s/key.pem", tmpdir);
	if (tls_write_self_signed("localhost", cert_file, key_file, &error) <
	    0) {
		fprintf(stderr, "%s\n", error);
		return -1;
	}
	server_ctx = tls_ctx_server_create(cert_file, key_file, &error);
	client_ctx = tls_ctx_client_create(false, &error);
	client_verify_ctx = tls_ctx_client_create(true, &error);
	if (server_ctx == NULL || client_ctx == NULL ||
	    client_verify_ctx == NULL)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	tls_ctx_unref(&server_ctx);
	tls_ctx_unref(&client_ctx);
	tls_ctx_unref(&client_verify_ctx);
	(void)unlink(cert_file);
	(void)unlink(key_file);
	(void)rmdir(tmpdir);
	i_free(cert_file);
	i_free(key_file);
	return 0;
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_plain_echo),
		T(test_byte_at_a_time),
		T(test_max_input_full),
		T(test_large_output_drained),
		T(test_eof),
		T(test_close_after_flush_plain),
		T(test_destroy_in_input_callback),
		T(test_write_error_reported),
		T(test_tls_both_ways),
		T(test_tls_large_small_input),
		T(test_tls_verify_fails),
		T(test_tls_close_after_flush),
		T(test_tls_truncation_is_error),
		T(test_destroy_in_tls_ready),
		T(test_tls_byte_at_a_time),
		T(test_starttls_injection_server),
		T(test_starttls_injection_client),
		T(test_starttls_reply_flushed_first),
		T(test_server_peer_closes_in_handshake),
		T(test_client_peer_closes_in_handshake),
		T(test_plaintext_to_tls_server),
		T(test_compress_wire),
		T(test_compress_pipelined),
		T(test_compress_bomb),
		T(test_compress_garbage),
		T(test_compress_tls),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
