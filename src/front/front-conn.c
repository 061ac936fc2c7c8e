/* front-conn.c - one client connection of the front: its stream, line
   splitting with a length bound, the idle timer, STARTTLS, and logins
   handed to the vault. The protocol files (front-smtp.c, front-imap.c,
   front-pop3.c, front-http.c) only see lines and queue replies.

   SECURITY: all input here is hostile. Lines are bounded by
   max_line_length before anything is copied; a connection that exceeds it
   gets one error and is closed. Passwords pass through only on their way
   to the vault and are wiped right after they are framed. */

#include "lib.h"
#include "ioloop.h"
#include "log.h"
#include "net.h"
#include "stream.h"
#include "tls.h"
#include "front-private.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdio.h>
#include <unistd.h>

static void front_conn_process_input(struct front_conn *conn);
static void front_conn_destroy(struct front_conn *conn);
static void front_conn_release(struct front_conn *conn);

static const struct front_protocol *front_protocol_for(enum settings_port k)
{
	switch (k) {
	case SETTINGS_PORT_SMTP:
	case SETTINGS_PORT_SUBMISSION:
	case SETTINGS_PORT_SUBMISSIONS:
		return &front_protocol_smtp;
	case SETTINGS_PORT_IMAP:
	case SETTINGS_PORT_IMAPS:
		return &front_protocol_imap;
	case SETTINGS_PORT_POP3:
	case SETTINGS_PORT_POP3S:
		return &front_protocol_pop3;
	case SETTINGS_PORT_HTTP:
	case SETTINGS_PORT_HTTPS:
		return &front_protocol_http;
	case SETTINGS_PORT_COUNT:
		break;
	}
	i_unreached();
}

static void front_conn_unref(struct front_conn *conn)
{
	i_assert(conn->refcount > 0);
	if (--conn->refcount == 0)
		front_conn_destroy(conn);
}

/* The idle limit of the connection now: idle_timeout, except for an
   authenticated IMAP session, whose autologout timer is at least 30
   minutes (RFC 9051 5.4), IDLE included (RFC 2177 3 asks clients to
   re-issue IDLE within 29 minutes), and an authenticated POP3 one. */
static unsigned int front_conn_idle_msecs(const struct front_conn *conn)
{
	const struct marmot_settings *set = front_global->set;

	if (conn->user != NULL && conn->proto == &front_protocol_imap)
		return set->imap_idle_timeout * 1000;
	/* RFC 1939 3: a POP3 autologout timer "MUST be of at least 10
	   minutes' duration" once the session is in the TRANSACTION state. */
	if (conn->user != NULL && conn->proto == &front_protocol_pop3 &&
	    set->idle_timeout < 600)
		return 600 * 1000;
	return set->idle_timeout * 1000;
}

static void front_conn_idle(void *context);

static void front_conn_idle_arm(struct front_conn *conn, unsigned int msecs)
{
	timeout_remove(&conn->idle);
	conn->idle =
		timeout_add(front_global->ioloop, msecs, front_conn_idle, conn);
}

static void front_conn_idle(void *context)
{
	struct front_conn *conn = context;
	uint64_t idle =
		ioloop_now_ms(front_global->ioloop) - conn->last_activity_ms;
	unsigned int limit = front_conn_idle_msecs(conn);

	timeout_remove(&conn->idle);
	if (conn->closing)
		return;
	if (idle < limit) {
		/* Logged in since the timer was set: a longer limit. */
		front_conn_idle_arm(conn, limit - (unsigned int)idle);
		return;
	}
	log_info(conn->id, "front.conn.idle_timeout", "proto=%s",
		 conn->proto->name);
	conn->proto->goodbye(conn, true);
	front_conn_close(conn, "idle");
}

/* Services where a client logs in before anything else: a connection that
   has not within login_timeout is cut, however busy it keeps itself
   (a slowloris sending a byte a minute never idles out). Port 25 and HTTP
   have no login. */
static bool front_conn_wants_login(enum settings_port kind)
{
	return kind != SETTINGS_PORT_SMTP && kind != SETTINGS_PORT_HTTP &&
	       kind != SETTINGS_PORT_HTTPS;
}

static void front_conn_login_timeout(void *context)
{
	struct front_conn *conn = context;

	timeout_remove(&conn->login);
	if (conn->closing || conn->user != NULL)
		return;
	log_info(conn->id, "front.conn.login_timeout", "proto=%s",
		 conn->proto->name);
	conn->proto->goodbye(conn, true);
	front_conn_close(conn, "login timeout");
}

/* Drops the connection's own reference once: it ends when the last
   callback that holds a reference returns. */
static void front_conn_release(struct front_conn *conn)
{
	if (conn->destroyed)
		return;
	conn->destroyed = true;
	front_conn_unref(conn);
}

static void front_conn_stream_event(struct stream *stream,
				    enum stream_event event, void *context)
{
	struct front_conn *conn = context;

	conn->refcount++;
	switch (event) {
	case STREAM_EVENT_INPUT:
		conn->last_activity_ms = ioloop_now_ms(front_global->ioloop);
		front_conn_process_input(conn);
		break;
	case STREAM_EVENT_OUTPUT_DRAINED:
		conn->last_activity_ms = ioloop_now_ms(front_global->ioloop);
		if (conn->proto->output_drained != NULL && !conn->closing &&
		    !conn->destroyed)
			conn->proto->output_drained(conn);
		break;
	case STREAM_EVENT_TLS_READY:
		log_info(conn->id, "front.conn.tls", "version=%s cipher=%s",
			 stream_tls_version(stream), stream_tls_cipher(stream));
		if (!conn->greeted) {
			/* Implicit TLS: the greeting follows the handshake. */
			conn->greeted = true;
			conn->proto->greet(conn);
		} else {
			conn->proto->tls_ready(conn);
		}
		front_conn_process_input(conn);
		break;
	case STREAM_EVENT_EOF:
		log_info(conn->id, "front.conn.closed", "reason=eof");
		front_conn_release(conn);
		break;
	case STREAM_EVENT_ERROR:
		log_info(conn->id, "front.conn.closed", "reason=error error=%s",
			 log_value(0, stream_error(stream)));
		front_conn_release(conn);
		break;
	case STREAM_EVENT_CLOSED:
		front_conn_release(conn);
		break;
	}
	front_conn_unref(conn);
}

/* The OK of COMPRESS is queued and the command consumed: what follows
   in both directions is compressed. */
static void front_conn_compress_now(struct front_conn *conn)
{
	const char *error;

	conn->compress_wanted = false;
	conn->auth_pending = false;
	if (conn->closing || conn->destroyed)
		return;
	if (stream_start_compress(conn->stream, &error) < 0) {
		/* The OK is out already: the client will send compressed
		   data we cannot read. */
		log_error(conn->id, "front.conn.compress_failed", "error=%s",
			  log_value(0, error));
		front_conn_close(conn, "compress failed");
		return;
	}
	log_info(conn->id, "front.conn.compress", "proto=%s",
		 conn->proto->name);
	stream_set_reading(conn->stream, true);
}

static void front_conn_process_input(struct front_conn *conn)
{
	struct front *front = front_global;
	struct buf *in = stream_input(conn->stream);

	while (!conn->auth_pending && !conn->closing && !conn->destroyed) {
		struct span data = buf_span(in), line;
		ssize_t lf;
		size_t consumed;

		if (conn->proto->input != NULL) {
			size_t n;

			if (data.len == 0)
				return;
			n = conn->proto->input(conn, data);
			/* STARTTLS inside input() emptied the buffer. */
			if (n > in->used)
				n = in->used;
			buf_consume(in, n);
			if (conn->compress_wanted) {
				front_conn_compress_now(conn);
				continue;
			}
			if (n == 0)
				return;
			continue;
		}
		if (conn->raw_wanted > 0) {
			size_t n = conn->raw_wanted;
			char *raw;
			int ret;

			if (in->used < n)
				return;
			raw = i_strndup(data.p, n);
			buf_consume(in, n);
			conn->raw_wanted = 0;
			ret = conn->proto->raw(conn, span_make(raw, n));
			safe_memset0(raw, n);
			i_free(raw);
			if (ret < 0) {
				front_conn_close(conn, "protocol");
				return;
			}
			continue;
		}
		lf = span_find_byte(data, '\n');

		if (lf < 0) {
			if (in->used >= front->set->max_line_length ||
			    stream_input_full(conn->stream)) {
				log_info(conn->id, "front.conn.line_too_long",
					 "proto=%s bytes=%zu",
					 conn->proto->name, in->used);
				conn->proto->line_too_long(conn);
				front_conn_close(conn, "line too long");
			}
			return;
		}
		consumed = (size_t)lf + 1;
		line = span_make(data.p, (size_t)lf);
		if (line.len > 0 && line.p[line.len - 1] == '\r')
			line.len--;
		if (line.len > front->set->max_line_length) {
			conn->proto->line_too_long(conn);
			front_conn_close(conn, "line too long");
			return;
		}
		/* The protocol may start TLS from inside line(), which
		   discards the buffered input, so consume the line first and
		   keep a private copy of it. */
		{
			char *copy = i_strndup(line.p, line.len);
			int ret;

			buf_consume(in, consumed);
			ret = conn->proto->line(conn,
						span_make(copy, line.len));
			safe_memset0(copy, line.len);
			i_free(copy);
			if (ret < 0) {
				front_conn_close(conn, "protocol");
				return;
			}
		}
	}
}

void front_conn_create(struct front *front, int fd, const char *ip,
		       unsigned int port, enum settings_port kind)
{
	static uint32_t counter;
	struct front_conn *conn;
	const char *error;
	pool_t pool;

	pool = pool_create("front conn", 1024);
	conn = p_new(pool, struct front_conn, 1);
	conn->pool = pool;
	conn->refcount = 1;
	snprintf(conn->id, sizeof(conn->id), "%x%04x", (unsigned)getpid(),
		 (unsigned)(++counter & 0xffff));
	snprintf(conn->ip, sizeof(conn->ip), "%s", ip);
	net_ip_bucket(ip, conn->ip_bucket);
	conn->port = port;
	conn->kind = kind;
	conn->proto = front_protocol_for(kind);
	conn->proto_state = p_malloc(pool, conn->proto->state_size);
	conn->tls = front->tls;
	tls_ctx_ref(conn->tls);
	conn->next = front->conns;
	if (conn->next != NULL)
		conn->next->prev = conn;
	front->conns = conn;
	front->conn_count++;

	/* Replies are small and each one is awaited by the client: without
	   this, Nagle holds a reply until the previous one is acknowledged,
	   i.e. a delayed ACK (~40 ms) per pipelined SMTP reply. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 },
			 sizeof(int));
	conn->stream =
		stream_create(front->ioloop, fd, front_conn_stream_event, conn);
	stream_set_max_input(conn->stream,
			     (size_t)front->set->max_line_length + 2);
	/* The idle timer is not reset on each input (a timer operation per
	   read); it checks last_activity_ms when it fires and re-arms. */
	conn->last_activity_ms = ioloop_now_ms(front->ioloop);
	front_conn_idle_arm(conn, front_conn_idle_msecs(conn));
	if (front_conn_wants_login(kind))
		conn->login = timeout_add(front->ioloop,
					  front->set->login_timeout * 1000,
					  front_conn_login_timeout, conn);
	log_info(conn->id, "front.conn.accepted", "proto=%s listener=%s ip=%s",
		 conn->proto->name, settings_port_name(kind), conn->ip);
	if (settings_port_implicit_tls(kind)) {
		if (stream_start_tls_server(conn->stream, conn->tls, &error) <
		    0) {
			log_error(conn->id, "front.conn.tls_failed", "error=%s",
				  log_value(0, error));
			front_conn_release(conn);
			return;
		}
		/* The greeting is sent by tls_ready for implicit TLS. */
		return;
	}
	conn->greeted = true;
	conn->proto->greet(conn);
}

static void front_conn_destroy(struct front_conn *conn)
{
	struct front *front = front_global;

	if (conn->prev != NULL)
		conn->prev->next = conn->next;
	else
		front->conns = conn->next;
	if (conn->next != NULL)
		conn->next->prev = conn->prev;
	front->conn_count--;
	front_vault_forget_conn(front, conn);
	if (conn->proto->deinit != NULL)
		conn->proto->deinit(conn);
	timeout_remove(&conn->idle);
	timeout_remove(&conn->login);
	stream_destroy(&conn->stream);
	tls_ctx_unref(&conn->tls);
	if (conn->user != NULL)
		i_free(conn->user);
	if (conn->data_key != NULL)
		sodium_free(conn->data_key); /* wipes */
	pool_unref(&conn->pool);
}

void front_conn_quickack(struct front_conn *conn)
{
#ifdef TCP_QUICKACK
	/* tcp(7): setting it sends an ACK that is due now; the kernel
	   drops back to delayed ACKs by itself later. */
	(void)setsockopt(stream_fd(conn->stream), IPPROTO_TCP, TCP_QUICKACK,
			 &(int){ 1 }, sizeof(int));
#else
	(void)conn;
#endif
}

void front_conn_printf(struct front_conn *conn, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list args;

	va_start(args, fmt);
	buf_vprintf(&b, fmt, args);
	va_end(args);
	stream_write(conn->stream, b.data, b.used);
	buf_free(&b);
}

void front_conn_write(struct front_conn *conn, const void *data, size_t len)
{
	stream_write(conn->stream, data, len);
}

void front_conn_want_raw(struct front_conn *conn, size_t len)
{
	i_assert(conn->proto->raw != NULL);
	conn->raw_wanted = len;
}

void front_conn_close(struct front_conn *conn, const char *reason)
{
	if (conn->closing)
		return;
	conn->closing = true;
	log_debug(conn->id, "front.conn.closing", "reason=%s",
		  log_value(0, reason));
	stream_close_after_flush(conn->stream);
}

size_t front_conn_output_pending(const struct front_conn *conn)
{
	return conn->stream == NULL ? 0 : stream_output_pending(conn->stream);
}

void front_conn_want_drained(struct front_conn *conn)
{
	stream_want_drained(conn->stream);
}

void front_conn_compress_after_reply(struct front_conn *conn)
{
	i_assert(conn->proto->input != NULL);
	conn->compress_wanted = true;
	front_conn_pause(conn);
}

bool front_conn_is_compressed(const struct front_conn *conn)
{
	return conn->compress_wanted || stream_is_compressed(conn->stream);
}

bool front_conn_is_tls(const struct front_conn *conn)
{
	return stream_is_tls(conn->stream);
}

int front_conn_starttls(struct front_conn *conn)
{
	const char *error;

	if (stream_start_tls_server(conn->stream, conn->tls, &error) < 0) {
		log_error(conn->id, "front.conn.starttls_failed", "error=%s",
			  log_value(0, error));
		return -1;
	}
	return 0;
}

void front_conn_auth(struct front_conn *conn, const char *service,
		     const char *user, const uint8_t *password,
		     size_t password_len, front_auth_callback_t *callback)
{
	conn->auth_pending = true;
	stream_set_reading(conn->stream, false);
	front_vault_request(front_global, service, user, password, password_len,
			    conn->ip, conn, callback);
}

void front_conn_set_session_key(struct front_conn *conn, struct span key,
				uint64_t quota_bytes)
{
	if (conn->data_key != NULL)
		sodium_free(conn->data_key);
	conn->data_key = NULL;
	conn->quota_bytes = quota_bytes;
	if (key.len != 32)
		return;
	conn->data_key = sodium_malloc(32);
	if (conn->data_key == NULL)
		i_panic("sodium_malloc failed");
	memcpy(conn->data_key, key.p, 32);
}

/* Called by front.c when the vault answered (or failed). */
void front_conn_auth_done(struct front_conn *conn,
			  front_auth_callback_t *callback,
			  enum auth_result result, uint64_t account_id,
			  const char *address)
{
	conn->refcount++;
	conn->auth_pending = false;
	log_info(conn->id, "front.auth", "proto=%s result=%s",
		 conn->proto->name,
		 result == AUTH_RESULT_OK         ? "ok"
		 : result == AUTH_RESULT_DISABLED ? "disabled"
		 : result == AUTH_RESULT_FAILED   ? "failed"
						  : "tempfail");
	if (result == AUTH_RESULT_OK) {
		i_free(conn->user);
		conn->user = i_strdup(address);
		conn->account_id = account_id;
	}
	callback(conn, result, account_id, address);
	if (!conn->destroyed && !conn->closing) {
		stream_set_reading(conn->stream, true);
		front_conn_process_input(conn);
	}
	front_conn_unref(conn);
}

void front_conn_pause(struct front_conn *conn)
{
	conn->auth_pending = true;
	stream_set_reading(conn->stream, false);
}

void front_conn_resume(struct front_conn *conn, void (*fn)(void *context),
		       void *context)
{
	conn->refcount++;
	conn->auth_pending = false;
	fn(context);
	if (!conn->destroyed && !conn->closing && conn->goodbye_deferred &&
	    (conn->proto->busy == NULL || !conn->proto->busy(conn))) {
		/* The answer a shutdown waited for is out: no further
		   commands (a pipelined next transaction would only be
		   cut short). */
		conn->proto->goodbye(conn, false);
		front_conn_close(conn, "shutdown");
	} else if (!conn->destroyed && !conn->closing) {
		stream_set_reading(conn->stream, true);
		front_conn_process_input(conn);
	}
	front_conn_unref(conn);
}

void front_conns_goodbye(struct front *front)
{
	struct front_conn *conn, *next;

	for (conn = front->conns; conn != NULL; conn = next) {
		next = conn->next;
		if (conn->closing)
			continue;
		if (conn->proto->busy != NULL && conn->proto->busy(conn)) {
			conn->goodbye_deferred = true;
			continue;
		}
		conn->proto->goodbye(conn, false);
		front_conn_close(conn, "shutdown");
	}
}

void front_conns_destroy_all(struct front *front)
{
	while (front->conns != NULL) {
		struct front_conn *conn = front->conns;

		/* Only at exit: no callback is on the stack any more. */
		conn->refcount = 1;
		conn->destroyed = false;
		front_conn_release(conn);
	}
}

int front_sasl_plain_decode(pool_t pool, struct span b64, const char **user_r,
			    uint8_t **password_r, size_t *password_len_r)
{
	size_t max = b64.len / 4 * 3 + 3, len;
	uint8_t *bin;
	const uint8_t *p1, *p2, *end;

	if (b64.len == 0 || b64.len > 4096)
		return -1;
	bin = p_malloc(pool, max);
	if (sodium_base642bin(bin, max, (const char *)b64.p, b64.len, NULL,
			      &len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
		return -1;
	/* RFC 4616 2: message = [authzid] UTF8NUL authcid UTF8NUL passwd */
	end = bin + len;
	p1 = memchr(bin, '\0', len);
	if (p1 == NULL)
		return -1;
	p2 = memchr(p1 + 1, '\0', (size_t)(end - (p1 + 1)));
	if (p2 == NULL || p2 == p1 + 1 || p2 + 1 == end)
		return -1;
	if (memchr(p2 + 1, '\0', (size_t)(end - (p2 + 1))) != NULL)
		return -1;
	/* An authorization identity other than the user itself would mean
	   acting as someone else: not allowed (no admin proxy logins). */
	if (p1 != bin && ((size_t)(p1 - bin) != (size_t)(p2 - p1 - 1) ||
			  memcmp(bin, p1 + 1, (size_t)(p1 - bin)) != 0))
		return -1;
	*user_r = p_strndup(pool, p1 + 1, (size_t)(p2 - p1 - 1));
	*password_len_r = (size_t)(end - (p2 + 1));
	*password_r = p_malloc(pool, *password_len_r + 1);
	memcpy(*password_r, p2 + 1, *password_len_r);
	safe_memset0(bin, len);
	return 0;
}
