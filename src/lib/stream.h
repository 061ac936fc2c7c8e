#ifndef MARMOT_STREAM_H
#define MARMOT_STREAM_H
/* A non-blocking connection: an fd, an input buffer, an output buffer, and
   optionally TLS on top (implicit, or upgraded by STARTTLS). Protocols read
   from stream_input() and write with stream_write(); the stream moves bytes
   in the event loop and tells its owner what happened through one callback.

   STARTTLS safety (RFC 3207 6, RFC 2595 3.1 and the 2011 "STARTTLS command
   injection" class of bugs): stream_start_tls_server() discards every byte
   already buffered in the input at the moment it is called, so plaintext
   pipelined after the STARTTLS command is never treated as a command after
   the handshake. The reply to STARTTLS (queued with stream_write() before
   the call) is flushed in plaintext before the handshake begins.

   Backpressure: the stream stops reading when the input buffer holds
   max_input bytes (the owner must consume or close) and tells the owner
   when the output buffer drains so it can resume producing. */

#include "lib.h"
#include "buf.h"

struct ioloop;
struct stream;
struct tls_ctx;
struct ssl_st;

enum stream_event {
	/* New bytes are in stream_input(). Also sent once when the input
	   buffer is full (stream_input_full() is true then). */
	STREAM_EVENT_INPUT,
	/* The output buffer became empty after having had data that could
	   not be written at once (never sent when stream_write() wrote
	   everything immediately). */
	STREAM_EVENT_OUTPUT_DRAINED,
	/* A TLS handshake completed. */
	STREAM_EVENT_TLS_READY,
	/* The peer closed the connection (clean EOF; input may still hold
	   unconsumed bytes). */
	STREAM_EVENT_EOF,
	/* A read/write/TLS error; stream_error() says what. The owner should
	   destroy the stream. */
	STREAM_EVENT_ERROR,
	/* stream_close_after_flush() finished writing and shut down. */
	STREAM_EVENT_CLOSED,
};

typedef void stream_callback_t(struct stream *stream, enum stream_event event,
			       void *context);

/* Takes ownership of fd (made non-blocking here; closed on destroy).
   Reading starts at once. */
struct stream *stream_create(struct ioloop *ioloop, int fd,
			     stream_callback_t *callback, void *context);
/* Closes the fd and frees everything; no callback is called afterwards,
   even from within a callback. Sets *stream to NULL. */
void stream_destroy(struct stream **stream);

/* Default 64 KiB. */
void stream_set_max_input(struct stream *stream, size_t max_input);
struct buf *stream_input(struct stream *stream);
bool stream_input_full(const struct stream *stream);
/* Pauses or resumes reading from the peer (e.g. while a command is being
   processed by a worker). Input consumed inside the callback is noticed
   when the callback returns; after consuming outside a callback, call
   stream_set_reading(stream, true) so a full stream resumes reading. */
void stream_set_reading(struct stream *stream, bool enabled);

/* Queues bytes for sending; the loop writes them when the current
   callback (or timer, or worker completion) returns, so consecutive
   writes leave together. Never blocks and never calls the callback; a
   write error is reported as STREAM_EVENT_ERROR from the loop. Ignored after an
   error or after stream_close_after_flush(). */
void stream_write(struct stream *stream, const void *data, size_t len);
void stream_write_str(struct stream *stream, const char *str);
void stream_printf(struct stream *stream, const char *fmt, ...)
	ATTR_FORMAT(2, 3);
size_t stream_output_pending(const struct stream *stream);
/* Asks for STREAM_EVENT_OUTPUT_DRAINED once the output queued now has
   been written, even if the socket takes it at the first try (writes are
   queued until the loop flushes, so "pending" is normal right after a
   write). Call only with output pending. */
void stream_want_drained(struct stream *stream);
/* Flushes queued output, then shuts the connection down and reports
   STREAM_EVENT_CLOSED. Further input is discarded. */
void stream_close_after_flush(struct stream *stream);

/* See the STARTTLS note above. Returns 0, or -1 if TLS is already active
   or the SSL object could not be created (*error_r set). */
int stream_start_tls_server(struct stream *stream, struct tls_ctx *ctx,
			    const char **error_r);
/* Client side: same discard rule for buffered input (a server that
   pipelines after its 220 reply is ignored). sni may be NULL. When the
   context verifies, sni is also the host name checked (an IP literal is
   checked as an address and not sent as SNI), and sni NULL is an error. */
int stream_start_tls_client(struct stream *stream, struct tls_ctx *ctx,
			    const char *sni, const char **error_r);
/* As stream_start_tls_client(); setup(ssl, context, error_r) runs on
   the connection's SSL object before the handshake starts (DANE: the
   TLSA records) and returns 0, or -1 with *error_r to abort. */
typedef int stream_ssl_setup_t(struct ssl_st *ssl, void *context,
			       const char **error_r);
int stream_start_tls_client_setup(struct stream *stream, struct tls_ctx *ctx,
				  const char *sni, stream_ssl_setup_t *setup,
				  void *context, const char **error_r);
bool stream_is_tls(const struct stream *stream);
/* The peer certificate's verification result (X509_V_OK, or an
   X509_V_ERR_* code, also after a failed handshake); X509_V_OK without
   TLS. */
long stream_tls_verify_result(const struct stream *stream);
/* "TLSv1.3" / cipher name, or NULL before TLS is up. */
const char *stream_tls_version(const struct stream *stream);
const char *stream_tls_cipher(const struct stream *stream);

/* RFC 4978 COMPRESS=DEFLATE from now on, in both directions: output
   already queued (the tagged OK) still goes out as it is, everything
   written afterwards is raw deflate (zlib windowBits -15), flushed with
   Z_SYNC_FLUSH at the end of each batch; input not yet consumed and all
   later input is inflated. Composes with TLS: compressed, then
   encrypted (STARTTLS after this is refused). Inflated input is bounded
   by max_input like any other: a deflate bomb fills the input buffer
   (and the owner's line limit) and no more. Invalid compressed input is
   STREAM_EVENT_ERROR. Call it only after the client authenticated (see
   the compression-oracle note in stream.c). Returns 0, or -1 with
   *error_r (already compressed, closing, TLS handshake in progress). */
int stream_start_compress(struct stream *stream, const char **error_r);
bool stream_is_compressed(const struct stream *stream);

int stream_fd(const struct stream *stream);
/* The reason for STREAM_EVENT_ERROR; NULL before an error. Valid until
   the stream is destroyed. */
const char *stream_error(const struct stream *stream);

#endif
