#ifndef MARMOT_FRONT_PRIVATE_H
#define MARMOT_FRONT_PRIVATE_H
/* Shared between the front's files: the connection object every protocol
   handler works on, the protocol vtable, and the vault client. */

#include "lib.h"
#include "buf.h"
#include "ipc.h"
#include "pool.h"
#include "settings.h"
#include "span.h"
#include "front.h"

struct ioloop;
struct stream;
struct timeout;
struct tls_ctx;
struct front_conn;

/* One protocol: each callback works on a connection. */
struct front_protocol {
	const char *name; /* "smtp", "imap", "pop3", "http" (log events) */
	/* The connection is up (after the TLS handshake for implicit TLS):
	   send the greeting. */
	void (*greet)(struct front_conn *conn);
	/* One input line, without its CRLF (or LF). Returns 0 to go on, -1
	   when the connection is to be closed (reply already queued). */
	int (*line)(struct front_conn *conn, struct span line);
	/* Raw bytes requested with front_conn_want_raw() (IMAP literals):
	   called once with exactly that many bytes. Returns like line(). */
	int (*raw)(struct front_conn *conn, struct span data);
	/* Optional: when set, every input byte goes here instead of line()
	   and raw() (SMTP, whose lib-smtp session splits lines and reads DATA
	   and BDAT itself). Returns the bytes consumed: all of them unless
	   the protocol paused input (front_conn_pause()). It may start TLS
	   (front_conn_starttls()), which drops whatever is still buffered. */
	size_t (*input)(struct front_conn *conn, struct span data);
	/* Input exceeded max_line_length without a line end: queue an
	   error; the connection is then closed. */
	void (*line_too_long)(struct front_conn *conn);
	/* A STARTTLS handshake finished. */
	void (*tls_ready)(struct front_conn *conn);
	/* Optional: everything queued has been written (after some of it
	   could not be at once). A protocol answering in parts (an IMAP
	   FETCH of many bodies) produces the next part here. */
	void (*output_drained)(struct front_conn *conn);
	/* The server is shutting down or the connection idled out: queue a
	   goodbye (the connection is closed after it is flushed). */
	void (*goodbye)(struct front_conn *conn, bool idle);
	/* Optional: true while the connection owes its client an answer
	   about data already handed over (an SMTP message being
	   committed). A shutdown then waits (within shutdown_timeout) for
	   that answer, which comes through front_conn_resume(), before the
	   goodbye: a 421 instead of the 250 of a message that does become
	   durable makes the client send it again, a duplicate. */
	bool (*busy)(struct front_conn *conn);
	/* Frees what the protocol state holds outside the pool (optional). */
	void (*deinit)(struct front_conn *conn);
	/* Per-protocol state size, zeroed, at conn->proto_state. */
	size_t state_size;
};

extern const struct front_protocol front_protocol_smtp;
extern const struct front_protocol front_protocol_imap;
extern const struct front_protocol front_protocol_pop3;
extern const struct front_protocol front_protocol_http;

struct front_conn {
	struct front_conn *prev, *next;
	pool_t pool;
	char id[16]; /* connection id for logs */
	char ip[64];
	/* What the per-IP limit counts (net_ip_bucket(): IPv6 per /64). */
	char ip_bucket[64];
	unsigned int port;
	enum settings_port kind;
	const struct front_protocol *proto;
	void *proto_state;
	struct stream *stream;
	struct tls_ctx *tls; /* the context for STARTTLS (a reference) */
	struct timeout *idle;
	/* The last input, or the last time the output drained (a client
	   reading a long answer is not idle): for the idle timer. */
	uint64_t last_activity_ms;
	/* Runs until the connection has logged in (login_timeout). */
	struct timeout *login;
	/* An authentication request is in flight: input is paused. */
	bool auth_pending;
	/* Bytes to hand to proto->raw before lines resume (0 = lines). */
	size_t raw_wanted;
	/* A goodbye is queued; input is ignored until the close. */
	bool closing;
	/* The stream ended; the object is freed when the last reference
	   (a callback on the stack) goes. */
	bool destroyed;
	bool greeted;
	/* Shutdown came while busy(): goodbye after the pending answer. */
	bool goodbye_deferred;
	/* COMPRESS answered: compression starts once input() returns
	   (front_conn_compress_after_reply()). */
	bool compress_wanted;
	unsigned int refcount;
	/* Authenticated identity (NULL before). */
	char *user;
	uint64_t account_id;
	/* The account's data key, for services that open its store (IMAP,
	   POP3): sodium_malloc'ed, set by the vault's OK reply, wiped and
	   freed with the connection. NULL when the vault sent none (SMTP,
	   or a zero-access account whose keys are locked). */
	uint8_t *data_key;
	uint64_t quota_bytes; /* 0 = unlimited */
};

struct front {
	struct marmot_settings *set;
	struct ioloop *ioloop;
	struct tls_ctx *tls;
	struct front_conn *conns;
	unsigned int conn_count;
	bool shutting_down;
};

extern struct front *front_global;

/* front-conn.c */
void front_conn_create(struct front *front, int fd, const char *ip,
		       unsigned int port, enum settings_port kind);
/* Queues text. */
void front_conn_printf(struct front_conn *conn, const char *fmt, ...)
	ATTR_FORMAT(2, 3);
void front_conn_write(struct front_conn *conn, const void *data, size_t len);
/* The next len bytes of input go to proto->raw, not to line(). len must
   have been bounded by the protocol. */
void front_conn_want_raw(struct front_conn *conn, size_t len);
/* Bytes queued but not yet written to the socket. */
size_t front_conn_output_pending(const struct front_conn *conn);
/* proto->output_drained is called once what is queued now is written
   (output must be pending). */
void front_conn_want_drained(struct front_conn *conn);
/* Acknowledges the input read so far at once instead of after the
   delayed-ACK timer (~40 ms on Linux): for a protocol that has a
   command's literal and awaits its last bytes, which a client with
   Nagle's algorithm on holds back until that ACK. */
void front_conn_quickack(struct front_conn *conn);
/* Flushes what is queued, then closes. */
void front_conn_close(struct front_conn *conn, const char *reason);
bool front_conn_is_tls(const struct front_conn *conn);
/* RFC 4978 COMPRESS=DEFLATE, for a command handler that has just
   answered OK (through whatever it writes before proto->input returns):
   input is paused at once, so nothing after the command is parsed as
   plaintext; once proto->input returns, the stream compresses everything
   written after the OK and inflates everything after the command
   (stream_start_compress()), and input resumes. Only for authenticated
   sessions (the compression-oracle note in stream.c). */
void front_conn_compress_after_reply(struct front_conn *conn);
bool front_conn_is_compressed(const struct front_conn *conn);
/* Queues nothing itself: the protocol queued its "go ahead" reply. Starts
   the TLS handshake after it is flushed and drops buffered plaintext. */
int front_conn_starttls(struct front_conn *conn);
/* Asks the vault to verify a login; input is paused until the callback
   runs (never from within this call). The callback is not called if the
   connection is destroyed meanwhile. password is copied and wiped. */
typedef void front_auth_callback_t(struct front_conn *conn,
				   enum auth_result result, uint64_t account_id,
				   const char *address);
void front_conn_auth(struct front_conn *conn, const char *service,
		     const char *user, const uint8_t *password,
		     size_t password_len, front_auth_callback_t *callback);
/* Pauses input for a vault exchange that is not front_conn_auth() (SCRAM,
   front-sasl.c), or for a result delivered later from the ioloop. */
void front_conn_pause(struct front_conn *conn);
/* Resumes paused input: calls fn(context) with the connection referenced,
   then processes buffered input unless the connection is closing or
   gone. Call from the ioloop, never from inside proto->line. */
void front_conn_resume(struct front_conn *conn, void (*fn)(void *context),
		       void *context);
/* Asks every connection to say goodbye (shutdown). */
void front_conns_goodbye(struct front *front);
void front_conns_destroy_all(struct front *front);

/* front.c: the vault client. The callback runs through
   front_conn_auth_done(). */
void front_vault_request(struct front *front, const char *service,
			 const char *user, const uint8_t *password,
			 size_t password_len, const char *ip,
			 struct front_conn *conn,
			 front_auth_callback_t *callback);
void front_vault_forget_conn(struct front *front, struct front_conn *conn);
/* Sends the frames in out to the vault; replies of types the front does
   not route itself go to their module (front-sasl.c for SCRAM). Returns
   -1 (nothing sent) when the vault cannot be reached. */
int front_vault_send(struct front *front, const struct buf *out);
/* A committed store change (APPEND, COPY, EXPUNGE, DELETE, POP3 DELE)
   changed account_id's usage: IPC_VAULT_USAGE_STALE, so that the vault's
   RCPT quota check reads the store again. Sent for every account (its
   quota may be set after the login). Best effort: a vault that cannot be
   reached starts with an empty cache when it comes back. */
void front_vault_usage_changed(uint64_t account_id);
/* Keeps the session key fields of an OK reply (32 octets or none). */
void front_conn_set_session_key(struct front_conn *conn, struct span key,
				uint64_t quota_bytes);
void front_conn_auth_done(struct front_conn *conn,
			  front_auth_callback_t *callback,
			  enum auth_result result, uint64_t account_id,
			  const char *address);

/* front-delivery.c (front-delivery.h is the protocols' API). */
struct front_delivery_env {
	struct ioloop *ioloop;
	const char *data_dir; /* copied */
	/* The vault connection, connecting if needed; NULL if unreachable. */
	struct ipc_conn *(*vault_get)(void);
	unsigned int verdict_threads; /* 0 = 2 */
	/* How long questions wait for an unreachable vault before TEMPFAIL
	   (0 = 2 s; tests shorten it). */
	unsigned int vault_wait_msecs;
};
/* Starts the verdict and commit workers (and opens the outbound queue). */
void front_delivery_init(const struct front_delivery_env *env);
/* Runs every commit in flight to its end (callbacks included), then
   answers pending vault questions with TEMPFAIL. */
void front_delivery_deinit(void);
/* IPC_FRONT_RCPT_REPLY / IPC_FRONT_SENDER_REPLY from the vault. Returns
   -1 (close the connection) for a malformed reply or an unknown id. */
int front_delivery_vault_reply(const struct ipc_frame *frame);
/* The vault connection was lost: every question sent on it gets TEMPFAIL
   now (the others keep waiting for a new connection). */
void front_delivery_vault_lost(void);

/* imap-session.c: a store change (IPC_FRONT_CHANGED from the vault's
   merge) for the IMAP sessions of the account; IDLE ones hear at once. */
void front_imap_store_changed(uint64_t account_id, uint64_t mailbox_id);
void front_imap_deinit(void);

/* RFC 4616 PLAIN: decodes base64 "authzid NUL authcid NUL passwd".
   Returns 0 and pool-allocated user and password (with its length), or
   -1 if malformed or authzid differs from authcid. */
int front_sasl_plain_decode(pool_t pool, struct span b64, const char **user_r,
			    uint8_t **password_r, size_t *password_len_r);

#endif
