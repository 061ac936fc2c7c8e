/* stream.c - non-blocking connections with optional TLS (implicit or
   STARTTLS) on top of the event loop. Owns the fd, the io watching it, the
   input and output buffers and the SSL object. Protocol front-ends (SMTP,
   IMAP, POP3, HTTP) and the SMTP client create streams and get events through
   one callback. Security stance: bytes buffered before a STARTTLS upgrade are
   thrown away (RFC 3207 6), input is bounded by max_input before it is
   buffered, and a TLS connection that ends without close_notify is an error,
   not an EOF. Callbacks may destroy the stream: the dispatcher holds a
   reference and stops at once when the stream was destroyed. */

#include "lib.h"
#include "stream.h"
#include "ioloop.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <zlib.h>

#define STREAM_DEFAULT_MAX_INPUT (64 * 1024)
#define STREAM_READ_CHUNK (16 * 1024)
/* SSL_write() takes an int; with partial writes it returns per record. */
#define STREAM_TLS_WRITE_MAX (1024 * 1024)
/* COMPRESS=DEFLATE: compressed input read ahead of inflating, and the
   most plaintext deflated per step (the rest waits until the compressed
   output has gone, so that a large FETCH is not held twice). */
#define STREAM_ZIN_MAX (16 * 1024)
#define STREAM_ZOUT_STEP (256 * 1024)

enum stream_tls_state {
	STREAM_TLS_NONE,
	/* STARTTLS called; flushing the plaintext reply first. */
	STREAM_TLS_FLUSHING,
	STREAM_TLS_HANDSHAKE,
	STREAM_TLS_ACTIVE,
};

struct stream {
	struct ioloop *ioloop;
	int fd;
	struct io *io;
	struct timeout *kick;
	stream_callback_t *callback;
	void *context;

	struct buf input, output;
	/* output queued before STARTTLS, flushed in plaintext */
	struct buf plain_output;
	size_t max_input;

	SSL *ssl;
	enum stream_tls_state tls_state;
	/* COMPRESS=DEFLATE (stream_start_compress()); NULL without. */
	struct stream_zlib *z;
	enum io_condition handshake_cond;
	char *error;

	/* held by the dispatcher while callbacks run */
	int refcount;

	bool reading : 1; /* owner wants input */
	bool input_full_reported : 1;
	bool output_waited : 1; /* output had to wait for IO_WRITE */
	bool read_wants_write : 1; /* SSL_read() returned WANT_WRITE */
	bool write_wants_read : 1; /* SSL_write() returned WANT_READ */
	bool eof : 1;
	bool eof_reported : 1;
	bool failed : 1;
	bool error_reported : 1;
	bool closing : 1;
	bool closed : 1;
	bool destroyed : 1;
};

/* RFC 4978 raw deflate in both directions. Output: the owner's writes
   collect in stream->output as before; each flush deflates them into
   out (ending the batch with Z_SYNC_FLUSH, RFC 4978 4), and out is what
   goes to the socket or to TLS. Input: the socket's (or TLS's) bytes
   land in in, and are inflated into stream->input no further than
   max_input, so a deflate bomb fills the bounded input buffer (and the
   owner's line and literal limits), never memory. */
struct stream_zlib {
	z_stream def, inf;
	struct buf in, out;
	bool inf_more; /* the last inflate filled its output: may have more */
};

static void stream_update_io(struct stream *stream);

/* Bytes waiting to go out, in whatever form. */
static size_t stream_out_used(const struct stream *stream)
{
	return stream->output.used +
	       (stream->z != NULL ? stream->z->out.used : 0);
}

static void stream_fail(struct stream *stream, const char *fmt, ...)
	ATTR_FORMAT(2, 3);
static void stream_fail(struct stream *stream, const char *fmt, ...)
{
	va_list args;

	if (stream->failed)
		return;
	stream->failed = true;
	va_start(args, fmt);
	i_free(stream->error);
	stream->error = i_strdup_vprintf(fmt, args);
	va_end(args);
}

/* Calls the owner. Returns false if the owner destroyed the stream. */
static bool stream_emit(struct stream *stream, enum stream_event event)
{
	stream->callback(stream, event, stream->context);
	return !stream->destroyed;
}

static bool stream_want_input(const struct stream *stream)
{
	return stream->reading && !stream->eof && !stream->failed &&
	       !stream->closing &&
	       (stream->tls_state == STREAM_TLS_NONE ||
		stream->tls_state == STREAM_TLS_ACTIVE) &&
	       stream->input.used < stream->max_input;
}

static bool stream_can_flush(const struct stream *stream)
{
	return !stream->failed && !stream->closed &&
	       (stream->tls_state == STREAM_TLS_NONE ||
		stream->tls_state == STREAM_TLS_ACTIVE);
}

/* Reading the OpenSSL error */

static const char *stream_ssl_reason(struct stream *stream, int ret, int err)
{
	long verify;

	if (err == SSL_ERROR_SYSCALL) {
		if (ERR_peek_error() != 0)
			return tls_last_error();
		if (ret == 0 || errno == 0)
			return "connection closed by peer";
		return strerror(errno);
	}
	verify = SSL_get_verify_result(stream->ssl);
	if (stream->tls_state == STREAM_TLS_HANDSHAKE &&
	    (SSL_get_verify_mode(stream->ssl) & SSL_VERIFY_PEER) != 0 &&
	    verify != X509_V_OK) {
		ERR_clear_error();
		return X509_verify_cert_error_string(verify);
	}
	return tls_last_error();
}

/* Writing */

static void stream_flush_plain(struct stream *stream, struct buf *output)
{
	while (output->used > 0) {
		struct span s = buf_span(output);
		ssize_t n = send(stream->fd, s.p, s.len, MSG_NOSIGNAL);

		if (n < 0 && errno == ENOTSOCK)
			n = write(stream->fd, s.p, s.len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			stream_fail(stream, "write() failed: %s",
				    strerror(errno));
			return;
		}
		buf_consume(output, (size_t)n);
	}
}

static void stream_flush_tls(struct stream *stream, struct buf *output)
{
	stream->write_wants_read = false;
	while (output->used > 0) {
		struct span s = buf_span(output);
		size_t len = s.len < STREAM_TLS_WRITE_MAX
				     ? s.len
				     : STREAM_TLS_WRITE_MAX;
		int ret, err;

		ERR_clear_error();
		errno = 0;
		ret = SSL_write(stream->ssl, s.p, (int)len);
		if (ret > 0) {
			buf_consume(output, (size_t)ret);
			continue;
		}
		err = SSL_get_error(stream->ssl, ret);
		if (err == SSL_ERROR_WANT_WRITE)
			return;
		if (err == SSL_ERROR_WANT_READ) {
			stream->write_wants_read = true;
			return;
		}
		stream_fail(stream, "TLS write failed: %s",
			    stream_ssl_reason(stream, ret, err));
		return;
	}
}

/* Deflates queued plaintext into z->out while little compressed output
   waits. Returns -1 (stream failed) on a zlib error. */
static int stream_deflate_output(struct stream *stream)
{
	struct stream_zlib *z = stream->z;

	while (stream->output.used > 0 && z->out.used < STREAM_ZOUT_STEP) {
		struct span s = buf_span(&stream->output);
		size_t len =
			s.len < STREAM_ZOUT_STEP ? s.len : STREAM_ZOUT_STEP;
		/* RFC 4978 4: the end of what is queued now is flushed, so
		   that the client can decode a complete response. */
		int flush = len == s.len ? Z_SYNC_FLUSH : Z_NO_FLUSH;

		z->def.next_in = (Bytef *)s.p;
		z->def.avail_in = (uInt)len;
		do {
			size_t room = deflateBound(&z->def, len) + 64;
			uint8_t *p = buf_reserve(&z->out, room);
			int ret;

			z->def.next_out = p;
			z->def.avail_out = (uInt)room;
			ret = deflate(&z->def, flush);
			if (ret != Z_OK && ret != Z_BUF_ERROR) {
				stream_fail(stream, "deflate failed: %d", ret);
				return -1;
			}
			buf_commit(&z->out, room - z->def.avail_out);
			if (z->def.avail_out != 0)
				break;
		} while (1);
		buf_consume(&stream->output, len - z->def.avail_in);
		if (z->def.avail_in != 0) {
			stream_fail(stream, "deflate made no progress");
			return -1;
		}
	}
	return 0;
}

static void stream_flush(struct stream *stream)
{
	if (stream->z == NULL) {
		if (stream->ssl != NULL &&
		    stream->tls_state == STREAM_TLS_ACTIVE)
			stream_flush_tls(stream, &stream->output);
		else
			stream_flush_plain(stream, &stream->output);
		return;
	}
	/* A step of plaintext at a time: deflate, send; go on while the
	   socket takes it all. */
	do {
		if (stream_deflate_output(stream) < 0)
			return;
		if (stream->ssl != NULL &&
		    stream->tls_state == STREAM_TLS_ACTIVE)
			stream_flush_tls(stream, &stream->z->out);
		else
			stream_flush_plain(stream, &stream->z->out);
	} while (!stream->failed && stream->z->out.used == 0 &&
		 stream->output.used > 0);
}

/* Reading. Returns true if new bytes were buffered. */

/* Both read into dest (the input, or the compressed bytes before they
   are inflated) while the owner wants input and dest holds less than
   limit. */
static bool stream_read_plain(struct stream *stream, struct buf *dest,
			      size_t limit)
{
	bool got = false;

	while (stream_want_input(stream) && dest->used < limit) {
		size_t space = limit - dest->used;
		size_t chunk =
			space < STREAM_READ_CHUNK ? space : STREAM_READ_CHUNK;
		uint8_t *p = buf_reserve(dest, chunk);
		ssize_t n = read(stream->fd, p, chunk);

		if (n > 0) {
			buf_commit(dest, (size_t)n);
			got = true;
			if ((size_t)n < chunk)
				break;
		} else if (n == 0) {
			stream->eof = true;
		} else if (errno == EINTR) {
			continue;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			break;
		} else {
			stream_fail(stream, "read() failed: %s",
				    strerror(errno));
		}
	}
	return got;
}

static bool stream_read_tls(struct stream *stream, struct buf *dest,
			    size_t limit)
{
	bool got = false;

	stream->read_wants_write = false;
	/* Loop until WANT_READ, not until the fd runs dry: a record may
	   leave decrypted bytes inside OpenSSL (SSL_pending()) that no
	   readiness event would ever announce. */
	while (stream_want_input(stream) && dest->used < limit) {
		size_t space = limit - dest->used;
		size_t chunk =
			space < STREAM_READ_CHUNK ? space : STREAM_READ_CHUNK;
		uint8_t *p = buf_reserve(dest, chunk);
		int ret, err;

		ERR_clear_error();
		errno = 0;
		ret = SSL_read(stream->ssl, p, (int)chunk);
		if (ret > 0) {
			buf_commit(dest, (size_t)ret);
			got = true;
			continue;
		}
		err = SSL_get_error(stream->ssl, ret);
		if (err == SSL_ERROR_WANT_READ)
			break;
		if (err == SSL_ERROR_WANT_WRITE) {
			stream->read_wants_write = true;
			break;
		}
		if (err == SSL_ERROR_ZERO_RETURN) {
			/* RFC 8446 6.1: close_notify is the clean EOF. */
			stream->eof = true;
			break;
		}
		/* Without SSL_OP_IGNORE_UNEXPECTED_EOF, a TCP EOF without
		   close_notify lands here: a possible truncation attack. */
		stream_fail(stream, "TLS read failed: %s",
			    stream_ssl_reason(stream, ret, err));
	}
	return got;
}

static bool stream_read_raw(struct stream *stream, struct buf *dest,
			    size_t limit)
{
	if (stream->ssl != NULL && stream->tls_state == STREAM_TLS_ACTIVE)
		return stream_read_tls(stream, dest, limit);
	return stream_read_plain(stream, dest, limit);
}

/* Inflates z->in into the input, no further than max_input. Returns true
   if bytes were added. */
static bool stream_inflate_input(struct stream *stream)
{
	struct stream_zlib *z = stream->z;
	size_t space, consumed;
	uint8_t *p;
	int ret;

	if (stream->input.used >= stream->max_input ||
	    (z->in.used == 0 && !z->inf_more))
		return false;
	space = stream->max_input - stream->input.used;
	p = buf_reserve(&stream->input, space);
	/* A freed buffer has no data pointer: no offset from NULL. */
	z->inf.next_in = z->in.used > 0 ? z->in.data + z->in.start
					: (Bytef *)"";
	z->inf.avail_in = (uInt)z->in.used;
	z->inf.next_out = p;
	z->inf.avail_out = (uInt)space;
	ret = inflate(&z->inf, Z_SYNC_FLUSH);
	consumed = z->in.used - z->inf.avail_in;
	buf_consume(&z->in, consumed);
	buf_commit(&stream->input, space - z->inf.avail_out);
	z->inf_more = z->inf.avail_out == 0;
	if (ret == Z_STREAM_END) {
		/* RFC 4978 4: compression lasts as long as the connection;
		   a raw deflate stream has no end of its own to send. */
		stream_fail(stream, "compressed input ended");
	} else if (ret != Z_OK && ret != Z_BUF_ERROR) {
		stream_fail(stream, "invalid compressed input: %s",
			    z->inf.msg != NULL ? z->inf.msg : "inflate failed");
	}
	return space != z->inf.avail_out;
}

static bool stream_read(struct stream *stream)
{
	bool got = false;

	if (stream->z == NULL)
		return stream_read_raw(stream, &stream->input,
				       stream->max_input);
	/* Read compressed bytes a chunk at a time and inflate each, until
	   the socket has no more or the input is full. */
	for (;;) {
		bool raw =
			stream_read_raw(stream, &stream->z->in, STREAM_ZIN_MAX);

		if (stream->failed)
			break;
		if (stream_inflate_input(stream))
			got = true;
		if (stream->failed || !raw ||
		    stream->input.used >= stream->max_input)
			break;
	}
	return got;
}

/* Handshake: returns 1 done, 0 in progress, -1 failed. */
static int stream_handshake(struct stream *stream)
{
	int ret, err;

	ERR_clear_error();
	errno = 0;
	ret = SSL_do_handshake(stream->ssl);
	if (ret == 1) {
		stream->tls_state = STREAM_TLS_ACTIVE;
		stream->handshake_cond = 0;
		return 1;
	}
	err = SSL_get_error(stream->ssl, ret);
	if (err == SSL_ERROR_WANT_READ) {
		stream->handshake_cond = IO_READ;
		return 0;
	}
	if (err == SSL_ERROR_WANT_WRITE) {
		stream->handshake_cond = IO_WRITE;
		return 0;
	}
	stream_fail(stream, "TLS handshake failed: %s",
		    stream_ssl_reason(stream, ret, err));
	return -1;
}

static void stream_do_close(struct stream *stream)
{
	if (stream->ssl != NULL && stream->tls_state == STREAM_TLS_ACTIVE) {
		/* Best effort, once: send close_notify without waiting for
		   the peer's (RFC 8446 6.1 allows a half-close). */
		ERR_clear_error();
		(void)SSL_shutdown(stream->ssl);
		ERR_clear_error();
	}
	(void)shutdown(stream->fd, SHUT_WR);
	stream->closed = true;
}

/* One pass over everything the stream can do now. Emits events; returns
   as soon as the owner destroyed the stream. */
static void stream_handle(struct stream *stream)
{
	bool got;

	if (stream->failed)
		goto report_error;

	if (stream->tls_state == STREAM_TLS_FLUSHING) {
		stream_flush_plain(stream, &stream->plain_output);
		if (stream->failed)
			goto report_error;
		if (stream->plain_output.used > 0)
			return;
		buf_free(&stream->plain_output);
		stream->tls_state = STREAM_TLS_HANDSHAKE;
	}
	if (stream->tls_state == STREAM_TLS_HANDSHAKE) {
		int ret = stream_handshake(stream);

		if (ret < 0)
			goto report_error;
		if (ret == 0)
			return;
		if (!stream_emit(stream, STREAM_EVENT_TLS_READY))
			return;
		if (stream->failed)
			goto report_error;
	}

	if (stream_out_used(stream) > 0 && stream_can_flush(stream)) {
		stream_flush(stream);
		if (stream->failed)
			goto report_error;
		/* What the socket did not take waits: OUTPUT_DRAINED
		   follows once it is gone. */
		if (stream_out_used(stream) > 0)
			stream->output_waited = true;
	}
	if (stream_out_used(stream) == 0 && stream->output_waited &&
	    !stream->closing) {
		stream->output_waited = false;
		if (!stream_emit(stream, STREAM_EVENT_OUTPUT_DRAINED))
			return;
		if (stream->failed)
			goto report_error;
	}
	if (stream->closing) {
		if (stream_out_used(stream) == 0 && !stream->closed &&
		    stream->tls_state != STREAM_TLS_HANDSHAKE) {
			stream_do_close(stream);
			(void)stream_emit(stream, STREAM_EVENT_CLOSED);
		}
		return;
	}

	got = stream_read(stream);
	if (got) {
		if (stream->input.used >= stream->max_input)
			stream->input_full_reported = true;
		if (!stream_emit(stream, STREAM_EVENT_INPUT))
			return;
	} else if (stream->reading && !stream->input_full_reported &&
		   stream->input.used >= stream->max_input &&
		   !stream->closing && !stream->failed) {
		/* Full without new bytes (max_input was lowered). */
		stream->input_full_reported = true;
		if (!stream_emit(stream, STREAM_EVENT_INPUT))
			return;
	}
	if (stream->failed)
		goto report_error;
	if (stream->eof && !stream->eof_reported && !stream->closing) {
		stream->eof_reported = true;
		(void)stream_emit(stream, STREAM_EVENT_EOF);
		return;
	}
	/* An idle connection holds no buffers: the 16 KiB read chunk and
	   whatever the output grew to are given back once empty (1,000
	   IMAP IDLE connections are 1,000 idle streams). */
	if (stream->input.used == 0 && stream->input.alloc > 0)
		buf_free(&stream->input);
	if (stream->output.used == 0 && stream->output.alloc > 0)
		buf_free(&stream->output);
	if (stream->z != NULL) {
		/* The compressor's own state stays (its window is the
		   dictionary); the read-ahead and the output go. */
		if (stream->z->in.used == 0 && stream->z->in.alloc > 0 &&
		    !stream->z->inf_more)
			buf_free(&stream->z->in);
		if (stream->z->out.used == 0 && stream->z->out.alloc > 0)
			buf_free(&stream->z->out);
	}
	return;

report_error:
	if (!stream->error_reported) {
		stream->error_reported = true;
		(void)stream_emit(stream, STREAM_EVENT_ERROR);
	}
}

static void stream_free(struct stream *stream)
{
	i_assert(stream->refcount == 0);
	i_free(stream);
}

static void stream_dispatch(struct stream *stream)
{
	stream->refcount++;
	stream_handle(stream);
	if (--stream->refcount == 0 && stream->destroyed) {
		stream_free(stream);
		return;
	}
	if (!stream->destroyed)
		stream_update_io(stream);
}

static void stream_io_callback(void *context)
{
	stream_dispatch(context);
}

static void stream_kick_callback(void *context)
{
	struct stream *stream = context;

	timeout_remove(&stream->kick);
	stream_dispatch(stream);
}

/* Runs the handler on the next loop iteration without waiting for the fd:
   for events that must not be emitted from inside an API call, and for
   plaintext that OpenSSL holds after the fd was drained. */
static void stream_kick(struct stream *stream)
{
	if (stream->kick == NULL && !stream->destroyed)
		stream->kick = timeout_add(stream->ioloop, 0,
					   stream_kick_callback, stream);
}

static void stream_update_io(struct stream *stream)
{
	enum io_condition cond = 0;

	if (stream->input.used < stream->max_input)
		stream->input_full_reported = false;

	if (stream->failed) {
		if (!stream->error_reported)
			stream_kick(stream);
	} else if (stream->closed) {
		/* nothing more to do; further input is discarded */
	} else if (stream->tls_state == STREAM_TLS_FLUSHING) {
		cond = IO_WRITE;
	} else if (stream->tls_state == STREAM_TLS_HANDSHAKE) {
		cond = stream->handshake_cond;
	} else {
		if (stream_want_input(stream)) {
			cond |= stream->read_wants_write ? IO_WRITE : IO_READ;
			if (stream->ssl != NULL &&
			    stream->tls_state == STREAM_TLS_ACTIVE &&
			    SSL_pending(stream->ssl) > 0)
				stream_kick(stream);
			/* Compressed input read ahead: no readiness event
			   will announce it either. */
			if (stream->z != NULL &&
			    (stream->z->in.used > 0 || stream->z->inf_more))
				stream_kick(stream);
		}
		if (stream_out_used(stream) > 0)
			cond |= stream->write_wants_read ? IO_READ : IO_WRITE;
		if (stream->closing && stream_out_used(stream) == 0)
			stream_kick(stream);
	}
	io_set_condition(stream->io, cond);
}

struct stream *stream_create(struct ioloop *ioloop, int fd,
			     stream_callback_t *callback, void *context)
{
	struct stream *stream;
	int flags;

	flags = fcntl(fd, F_GETFL);
	if (flags >= 0 && (flags & O_NONBLOCK) == 0)
		(void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);

	stream = i_new(struct stream, 1);
	stream->ioloop = ioloop;
	stream->fd = fd;
	stream->callback = callback;
	stream->context = context;
	stream->max_input = STREAM_DEFAULT_MAX_INPUT;
	stream->reading = true;
	buf_init(&stream->input, 1024);
	buf_init(&stream->output, 1024);
	stream->io = io_add(ioloop, fd, IO_READ, stream_io_callback, stream);
	return stream;
}

void stream_destroy(struct stream **_stream)
{
	struct stream *stream = *_stream;

	if (stream == NULL)
		return;
	*_stream = NULL;
	i_assert(!stream->destroyed);
	stream->destroyed = true;

	io_remove(&stream->io);
	timeout_remove(&stream->kick);
	if (stream->ssl != NULL) {
		SSL_free(stream->ssl);
		stream->ssl = NULL;
	}
	if (stream->z != NULL) {
		(void)deflateEnd(&stream->z->def);
		(void)inflateEnd(&stream->z->inf);
		buf_free_secure(&stream->z->in);
		buf_free_secure(&stream->z->out);
		i_free(stream->z);
	}
	(void)close(stream->fd);
	stream->fd = -1;
	buf_free(&stream->input);
	buf_free(&stream->output);
	buf_free(&stream->plain_output);
	i_free(stream->error);
	/* Inside a callback the dispatcher frees the struct when it
	   unwinds. */
	if (stream->refcount == 0)
		stream_free(stream);
}

void stream_set_max_input(struct stream *stream, size_t max_input)
{
	i_assert(max_input > 0);
	stream->max_input = max_input;
	if (stream->refcount == 0)
		stream_update_io(stream);
	if (stream->input.used >= max_input)
		stream_kick(stream);
}

struct buf *stream_input(struct stream *stream)
{
	return &stream->input;
}

bool stream_input_full(const struct stream *stream)
{
	return stream->input.used >= stream->max_input;
}

void stream_set_reading(struct stream *stream, bool enabled)
{
	stream->reading = enabled;
	if (stream->refcount == 0)
		stream_update_io(stream);
}

void stream_write(struct stream *stream, const void *data, size_t len)
{
	if (len == 0 || stream->failed || stream->closing || stream->closed)
		return;
	/* Only queued here: the loop flushes once it is back from whatever
	   is running now (this stream's callback, a timer, a worker's done
	   function), so a reply produced in pieces — an SMTP code, its
	   text, CRLF; a multi-line EHLO — leaves in one segment or TLS
	   record. Written piece by piece it meets Nagle's algorithm and the
	   peer's delayed ACK and waits ~40 ms a reply. */
	buf_append(&stream->output, data, len);
	if (stream->refcount == 0)
		stream_update_io(stream);
}

void stream_write_str(struct stream *stream, const char *str)
{
	stream_write(stream, str, strlen(str));
}

void stream_printf(struct stream *stream, const char *fmt, ...)
{
	struct buf tmp = BUF_INIT;
	va_list args;

	va_start(args, fmt);
	buf_vprintf(&tmp, fmt, args);
	va_end(args);
	stream_write(stream, tmp.data + tmp.start, tmp.used);
	buf_free(&tmp);
}

void stream_want_drained(struct stream *stream)
{
	i_assert(stream_output_pending(stream) > 0);
	stream->output_waited = true;
}

size_t stream_output_pending(const struct stream *stream)
{
	return stream_out_used(stream) + stream->plain_output.used;
}

void stream_close_after_flush(struct stream *stream)
{
	if (stream->closing)
		return;
	stream->closing = true;
	buf_reset(&stream->input);
	if (stream->refcount == 0)
		stream_update_io(stream);
	stream_kick(stream);
}

static int stream_start_tls(struct stream *stream, struct tls_ctx *ctx,
			    const char **error_r)
{
	if (stream->ssl != NULL) {
		*error_r = "TLS is already active";
		return -1;
	}
	if (stream->z != NULL) {
		/* Compress first, then encrypt: never the other way. */
		*error_r = "Compression is active";
		return -1;
	}
	if (stream->failed || stream->closing || stream->closed) {
		*error_r = "Stream is closing";
		return -1;
	}
	stream->ssl = tls_ctx_new_ssl(ctx);
	if (stream->ssl == NULL) {
		*error_r = tls_last_error();
		return -1;
	}
	if (SSL_set_fd(stream->ssl, stream->fd) != 1) {
		*error_r = tls_last_error();
		SSL_free(stream->ssl);
		stream->ssl = NULL;
		return -1;
	}
	return 0;
}

static void stream_begin_handshake(struct stream *stream)
{
	/* RFC 3207 6: "the server MUST discard any knowledge obtained from
	   the client ... which was not obtained from the TLS negotiation
	   itself" -- bytes pipelined after STARTTLS are dropped, and no more
	   plaintext is read. RFC 2595 3.1 and RFC 8314 say the same. */
	buf_reset(&stream->input);
	stream->input_full_reported = false;
	stream->read_wants_write = false;
	stream->write_wants_read = false;
	/* Try both directions first; the first step then says which. */
	stream->handshake_cond = IO_READ | IO_WRITE;
	if (stream->output.used > 0) {
		/* Only what was queued before the call goes out in
		   plaintext; later writes wait for TLS. */
		stream->plain_output = stream->output;
		stream->output = BUF_INIT;
		buf_init(&stream->output, 1024);
		stream->tls_state = STREAM_TLS_FLUSHING;
	} else {
		stream->tls_state = STREAM_TLS_HANDSHAKE;
	}
	if (stream->refcount == 0)
		stream_update_io(stream);
}

int stream_start_tls_server(struct stream *stream, struct tls_ctx *ctx,
			    const char **error_r)
{
	i_assert(tls_ctx_is_server(ctx));
	if (stream_start_tls(stream, ctx, error_r) < 0)
		return -1;
	SSL_set_accept_state(stream->ssl);
	stream_begin_handshake(stream);
	return 0;
}

int stream_start_tls_client(struct stream *stream, struct tls_ctx *ctx,
			    const char *sni, const char **error_r)
{
	return stream_start_tls_client_setup(stream, ctx, sni, NULL, NULL,
					     error_r);
}

int stream_start_tls_client_setup(struct stream *stream, struct tls_ctx *ctx,
				  const char *sni, stream_ssl_setup_t *setup,
				  void *context, const char **error_r)
{
	unsigned char addr[16];
	bool is_ip;

	i_assert(!tls_ctx_is_server(ctx));
	if (tls_ctx_verifies(ctx) && sni == NULL) {
		*error_r = "A verifying TLS client needs a host name";
		return -1;
	}
	if (stream_start_tls(stream, ctx, error_r) < 0)
		return -1;
	SSL_set_connect_state(stream->ssl);
	if (sni != NULL) {
		is_ip = inet_pton(AF_INET, sni, addr) == 1 ||
			inet_pton(AF_INET6, sni, addr) == 1;
		/* RFC 6066 3: literal IP addresses are not permitted in
		   server_name. */
		if (!is_ip && SSL_set_tlsext_host_name(stream->ssl, sni) != 1) {
			*error_r = tls_last_error();
			goto fail;
		}
		if (tls_ctx_verifies(ctx)) {
			X509_VERIFY_PARAM *param = SSL_get0_param(stream->ssl);
			int ret = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param,
									sni)
					: SSL_set1_host(stream->ssl, sni);

			if (ret != 1) {
				*error_r = tls_last_error();
				goto fail;
			}
		}
	}
	if (setup != NULL && setup(stream->ssl, context, error_r) < 0)
		goto fail;
	stream_begin_handshake(stream);
	return 0;
fail:
	SSL_free(stream->ssl);
	stream->ssl = NULL;
	return -1;
}

long stream_tls_verify_result(const struct stream *stream)
{
	if (stream->ssl == NULL)
		return X509_V_OK;
	return SSL_get_verify_result(stream->ssl);
}

bool stream_is_tls(const struct stream *stream)
{
	return stream->tls_state == STREAM_TLS_ACTIVE;
}

const char *stream_tls_version(const struct stream *stream)
{
	if (stream->tls_state != STREAM_TLS_ACTIVE)
		return NULL;
	return SSL_get_version(stream->ssl);
}

const char *stream_tls_cipher(const struct stream *stream)
{
	if (stream->tls_state != STREAM_TLS_ACTIVE)
		return NULL;
	return SSL_get_cipher_name(stream->ssl);
}

int stream_fd(const struct stream *stream)
{
	return stream->fd;
}

const char *stream_error(const struct stream *stream)
{
	return stream->error;
}

/* RFC 4978 COMPRESS=DEFLATE. Security stance (compression oracles, the
   CRIME/BREACH class): compressing secrets together with text an
   attacker chooses lets an observer of the ciphertext lengths guess the
   secrets. Here:
     - the owner starts compression only after authentication (IMAP
       allows COMPRESS in the authenticated and selected states only), so
       passwords, SASL exchanges and the STARTTLS negotiation are never
       compressed;
     - the server's own secrets (session keys, the vault's answers)
       never pass through a client stream at all;
     - what remains shares one context: the user's own mail, some of
       which others sent. Learning one message's text from the lengths
       needs an on-path observer who can also place many chosen messages
       in the mailbox and have them fetched next to the secret; the
       client asked for compression and may leave it off. That residual
       risk is accepted, as in every IMAP server that offers
       COMPRESS. */
int stream_start_compress(struct stream *stream, const char **error_r)
{
	struct stream_zlib *z;

	if (stream->z != NULL) {
		*error_r = "Compression is already active";
		return -1;
	}
	if (stream->failed || stream->closing || stream->closed ||
	    (stream->tls_state != STREAM_TLS_NONE &&
	     stream->tls_state != STREAM_TLS_ACTIVE)) {
		*error_r = "Stream is not ready";
		return -1;
	}
	z = i_new(struct stream_zlib, 1);
	/* RFC 4978 4: raw deflate (RFC 1951), no zlib header: negative
	   windowBits. Level 6 and memLevel 8 (zlib's defaults): about
	   256 KiB for deflate and 44 KiB for inflate per connection. */
	if (deflateInit2(&z->def, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK) {
		i_free(z);
		*error_r = "deflateInit2 failed";
		return -1;
	}
	if (inflateInit2(&z->inf, -15) != Z_OK) {
		(void)deflateEnd(&z->def);
		i_free(z);
		*error_r = "inflateInit2 failed";
		return -1;
	}
	buf_init(&z->in, 1024);
	/* What is queued now (the tagged OK of COMPRESS) is the last
	   uncompressed output: it goes out ahead of the compressed bytes. */
	buf_init(&z->out, stream->output.used + 1024);
	if (stream->output.used > 0)
		buf_append_span(&z->out, buf_span(&stream->output));
	buf_reset(&stream->output);
	/* Input the owner has not consumed was sent after the command: the
	   client compresses from there on. */
	if (stream->input.used > 0)
		buf_append_span(&z->in, buf_span(&stream->input));
	buf_reset(&stream->input);
	stream->input_full_reported = false;
	stream->z = z;
	if (stream->refcount == 0)
		stream_update_io(stream);
	stream_kick(stream);
	return 0;
}

bool stream_is_compressed(const struct stream *stream)
{
	return stream->z != NULL;
}
