/* front-queue-smtp.c - the queue runner's destinations and SMTP client
   (front-queue-private.h): per-destination connection counting and
   reuse, MX/A/AAAA resolution through src/lib-dns or the fixed
   queue_relay_host, non-blocking connects, and one client session per
   connection on src/lib/stream.h with replies parsed by
   src/lib-smtp/smtp-reply.h: greeting, EHLO (HELO fallback), STARTTLS,
   then per job MAIL, RCPT for each recipient, DATA and the dot-stuffed
   body, the results going back through fq_job_finish. Security stance:
   see front-queue.c (the STARTTLS discard, REQUIRETLS, untrusted
   replies). */

#include "lib.h"
#include "front-queue-private.h"
#include "front-private.h"
#include "ioloop.h"
#include "log.h"
#include "stream.h"
#include "tls.h"
#ifdef MARMOT_HAVE_DNS
#include "dns.h"
#include "dane.h"
#include "mtasts.h"
#include "front-tlspolicy.h"
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

/* Idle connections kept for reuse this long. */
#define FQ_IDLE_MSECS 2000

static void fq_conn_next_addr(struct fq_conn *conn);

static const char *fq_tls_req_name(enum fq_tls_req req)
{
	switch (req) {
	case FQ_TLS_OPPORTUNISTIC:
		return "opportunistic";
	case FQ_TLS_DANE:
		return "dane";
	case FQ_TLS_DANE_ENCRYPT:
		return "dane-encrypt";
	case FQ_TLS_STS:
		return "mta-sts";
	}
	i_unreached();
}

#ifdef MARMOT_HAVE_DNS
/* TLS-RPT: counts the session (or its failure) under the host's policy:
   its DANE records, or the domain's MTA-STS policy. */
static void fq_conn_report(struct fq_conn *conn, bool ok,
			   enum tlsrpt_result result, const char *host)
{
	const struct fq_dane_records *dane =
		conn->host_tls == FQ_TLS_DANE ? conn->dane : NULL;
	const struct mtasts_policy *sts =
		conn->host_tls == FQ_TLS_DANE ||
				conn->host_tls == FQ_TLS_DANE_ENCRYPT
			? NULL
			: conn->sts;
	const char *ip =
		conn->addr_pos > 0 && conn->addr_pos <= conn->addr_count
			? conn->addrs[conn->addr_pos - 1].ip
			: NULL;

	if (ok)
		fq_tlsrpt_success(conn->dest->key, dane, sts);
	else
		fq_tlsrpt_failure(conn->dest->key, dane, sts, result, host, ip,
				  NULL);
}
#endif

#ifdef MARMOT_HAVE_DNS
static void fq_conn_free_dane(struct fq_conn *conn)
{
	if (conn->dane == NULL)
		return;
	for (unsigned int i = 0; i < conn->dane->count; i++)
		i_free(conn->dane->rec[i].data);
	i_free(conn->dane);
}
#endif

/* ---- destinations and connections ---- */

struct fq_dest *fq_dest_get(const char *key)
{
	struct fq_dest *d;

	for (d = fq->dests; d != NULL; d = d->next) {
		if (strcmp(d->key, key) == 0)
			return d;
	}
	d = i_new(struct fq_dest, 1);
	d->key = i_strdup(key);
	d->next = fq->dests;
	fq->dests = d;
	return d;
}

static void fq_dest_release(struct fq_dest *dest)
{
	struct fq_dest **p;

	i_assert(dest->active > 0);
	if (--dest->active > 0)
		return;
	for (p = &fq->dests; *p != NULL; p = &(*p)->next) {
		if (*p == dest) {
			*p = dest->next;
			break;
		}
	}
	i_free(dest->key);
	i_free(dest);
}

static const char *fq_conn_host(const struct fq_conn *conn)
{
	if (conn->addr_pos == 0 || conn->addr_pos > conn->addr_count)
		return "";
	return conn->addrs[conn->addr_pos - 1].host;
}

void fq_conn_set_error(struct fq_conn *conn, const char *fmt, ...)
{
	va_list args;

	i_free(conn->last_error);
	va_start(args, fmt);
	conn->last_error = i_strdup_vprintf(fmt, args);
	va_end(args);
}

static void fq_conn_close_stream(struct fq_conn *conn)
{
	io_remove(&conn->connect_io);
	if (conn->stream != NULL)
		stream_destroy(&conn->stream);
	else if (conn->fd >= 0)
		(void)close(conn->fd);
	conn->fd = -1;
	timeout_remove(&conn->timeout);
	conn->tls = false;
	pool_clear(conn->pool);
	memset(&conn->ehlo, 0, sizeof(conn->ehlo));
}

void fq_conn_destroy(struct fq_conn **_conn)
{
	struct fq_conn *conn = *_conn;

	*_conn = NULL;
	if (conn->job != NULL)
		fq_job_finish(conn, fq_conn_host(conn));
#ifdef MARMOT_HAVE_DNS
	dns_lookup_cancel(&conn->lookup);
	fq_sts_lookup_cancel(&conn->sts_lookup);
	fq_conn_free_dane(conn);
#endif
	fq_conn_close_stream(conn);
	for (unsigned int i = 0; i < conn->mx_count; i++)
		i_free(conn->mx_hosts[i]);
	i_free(conn->last_error);
	pool_unref(&conn->pool);
	pool_unref(&conn->reply_pool);
	if (conn->policy_pool != NULL)
		pool_unref(&conn->policy_pool);
	if (conn->prev != NULL)
		conn->prev->next = conn->next;
	else
		fq->conns = conn->next;
	if (conn->next != NULL)
		conn->next->prev = conn->prev;
	fq->conn_count--;
	fq_dest_release(conn->dest);
	i_free(conn);
}

/* The current host failed (connection, greeting, EHLO, TLS): the job
   moves on to the next address, or ends when there is none. A failure
   after a session was established on this host ends the job (the
   replies so far decide). */
static void fq_conn_host_failed(struct fq_conn *conn)
{
	log_info(
		conn->log_id, "queue.host.failed", "host=%s ip=%s error=%s",
		log_value(0, fq_conn_host(conn)),
		conn->addr_pos > 0 ? conn->addrs[conn->addr_pos - 1].ip : "",
		log_value(1, conn->last_error != NULL ? conn->last_error : ""));
	fq_conn_close_stream(conn);
	if (conn->session_ok || conn->job == NULL) {
		/* A reused connection that broke: the job is retried
		   later, the connection is done. */
		fq_conn_destroy(&conn);
		fq_dispatch();
		return;
	}
	fq_conn_next_addr(conn);
}

static void fq_conn_timeout(void *context)
{
	struct fq_conn *conn = context;

	if (conn->state == FQ_STATE_IDLE) {
		/* Reuse window over: RFC 5321 4.1.1.10 QUIT. */
		timeout_remove(&conn->timeout);
		conn->state = FQ_STATE_QUIT;
		stream_write_str(conn->stream, "QUIT\r\n");
		stream_close_after_flush(conn->stream);
		return;
	}
	fq_conn_set_error(conn,
			  "451 4.4.2 timeout waiting for the server "
			  "(%s)",
			  conn->state == FQ_STATE_CONNECTING ? "connect"
							     : "reply");
	fq_conn_host_failed(conn);
}

static void fq_conn_arm_timeout(struct fq_conn *conn, unsigned int secs)
{
	timeout_remove(&conn->timeout);
	conn->timeout = timeout_add(fq->front->ioloop, secs * 1000,
				    fq_conn_timeout, conn);
}

static void fq_conn_send(struct fq_conn *conn, enum fq_state state,
			 const char *line)
{
	conn->state = state;
	stream_write_str(conn->stream, line);
	stream_write_str(conn->stream, "\r\n");
	fq_conn_arm_timeout(conn, fq->front->set->queue_timeout);
}

/* RFC 3461 4: xtext: "+" and "=" and characters outside "!".."~" as
   "+HH". */
static void fq_append_xtext(struct buf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < '!' || c > '~' || c == '+' || c == '=')
			buf_printf(out, "+%02X", c);
		else
			buf_append_c(out, c);
	}
}

static bool fq_has_8bit(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] >= 0x80)
			return true;
	}
	return false;
}

static bool fq_str_8bit(const char *s)
{
	return fq_has_8bit((const uint8_t *)s, strlen(s));
}

/* What a reply that is not the one hoped for means: RFC 5321 4.2.1, 5yz
   is permanent, anything else (4yz, or an unexpected 2yz/3yz) is worth
   another try. */
static enum fq_result fq_failure_of_class(unsigned int cls)
{
	return cls == 5 ? FQ_RESULT_PERM : FQ_RESULT_TEMP;
}

static void fq_job_fail_all(struct fq_conn *conn, enum fq_result res,
			    const char *reply)
{
	struct fq_job *job = conn->job;

	for (unsigned int i = 0; i < job->count; i++) {
		if (job->res[i] == FQ_RESULT_NONE) {
			job->res[i] = res;
			job->reply[i] = i_strdup(reply);
		}
	}
}

/* The job is done on this connection: results are applied and the
   connection stays for reuse. */
static void fq_conn_job_done(struct fq_conn *conn)
{
	fq_job_finish(conn, fq_conn_host(conn));
	conn->state = FQ_STATE_IDLE;
	timeout_remove(&conn->timeout);
	conn->timeout = timeout_add(fq->front->ioloop, FQ_IDLE_MSECS,
				    fq_conn_timeout, conn);
	fq_dispatch();
}

static void fq_conn_send_mail(struct fq_conn *conn)
{
	struct queue_message *msg = conn->job->m->msg;
	const struct queue_envelope *env = &msg->env;
	bool utf8 = fq_str_8bit(env->sender);
	struct buf cmd = BUF_INIT;

	for (unsigned int i = 0; i < conn->job->count; i++) {
		if (fq_str_8bit(env->rcpts[conn->job->idx[i]].address))
			utf8 = true;
	}
	/* RFC 8689 4.2.1: a REQUIRETLS message goes only over TLS to a
	   server that announces REQUIRETLS. */
	if (env->requiretls &&
	    (!conn->tls || (conn->ehlo.flags & SMTP_EHLO_REQUIRETLS) == 0)) {
		fq_conn_set_error(conn,
				  "550 5.7.30 REQUIRETLS support "
				  "required but not offered by %s",
				  fq_conn_host(conn));
		conn->perm_failure = true;
		conn->session_ok = false;
		stream_write_str(conn->stream, "QUIT\r\n");
		fq_conn_host_failed(conn);
		return;
	}
	/* RFC 6531 3.2: without SMTPUTF8 at the server, a message that
	   needs it cannot be sent. */
	if (utf8 && (conn->ehlo.flags & SMTP_EHLO_SMTPUTF8) == 0) {
		fq_job_fail_all(conn, FQ_RESULT_PERM,
				"553 5.6.7 the destination does not support "
				"SMTPUTF8");
		fq_conn_job_done(conn);
		return;
	}
	/* RFC 1870 6: do not send what the server said it will refuse. */
	if ((conn->ehlo.flags & SMTP_EHLO_SIZE) != 0 &&
	    conn->ehlo.size_max != 0 && msg->body_len > conn->ehlo.size_max) {
		fq_job_fail_all(conn, FQ_RESULT_PERM,
				"552 5.3.4 message larger than the "
				"destination's SIZE limit");
		fq_conn_job_done(conn);
		return;
	}
	buf_printf(&cmd, "MAIL FROM:<%s>", env->sender);
	if ((conn->ehlo.flags & SMTP_EHLO_SIZE) != 0)
		buf_printf(&cmd, " SIZE=%zu", msg->body_len);
	/* RFC 6152 2. Deviation from RFC 6152 3: an 8-bit message goes as
	   it is to a server without 8BITMIME (as most MTAs do) rather than
	   bouncing; there is no MIME downgrade yet. */
	if ((conn->ehlo.flags & SMTP_EHLO_8BITMIME) != 0 &&
	    fq_has_8bit(msg->body, msg->body_len))
		buf_append_str(&cmd, " BODY=8BITMIME");
	if (utf8)
		buf_append_str(&cmd, " SMTPUTF8"); /* RFC 6531 3.4 */
	if ((conn->ehlo.flags & SMTP_EHLO_DSN) != 0 && env->sender[0] != '\0') {
		/* RFC 3461 4.3, 4.4: passed on as received. */
		buf_append_str(&cmd, env->ret_full ? " RET=FULL" : " RET=HDRS");
		if (env->envid != NULL) {
			buf_append_str(&cmd, " ENVID=");
			fq_append_xtext(&cmd, env->envid);
		}
	}
	if (env->requiretls)
		buf_append_str(&cmd, " REQUIRETLS"); /* RFC 8689 4.1 */
	conn->job->rcpt_pos = 0;
	conn->job->accepted = 0;
	fq_conn_send(conn, FQ_STATE_MAIL, buf_cstr(&cmd));
	buf_free(&cmd);
}

static void fq_conn_send_rcpt(struct fq_conn *conn)
{
	struct fq_job *job = conn->job;
	const struct queue_rcpt *rcpt =
		&job->m->msg->env.rcpts[job->idx[job->rcpt_pos]];
	struct buf cmd = BUF_INIT;

	buf_printf(&cmd, "RCPT TO:<%s>", rcpt->address);
	if ((conn->ehlo.flags & SMTP_EHLO_DSN) != 0 &&
	    job->m->msg->env.sender[0] != '\0') {
		unsigned int n = rcpt->notify;

		/* RFC 3461 4.1: NEVER alone, or a list of the others. */
		if ((n & QUEUE_NOTIFY_NEVER) != 0) {
			buf_append_str(&cmd, " NOTIFY=NEVER");
		} else if (n != 0) {
			const char *sep = " NOTIFY=";

			if ((n & QUEUE_NOTIFY_SUCCESS) != 0) {
				buf_printf(&cmd, "%sSUCCESS", sep);
				sep = ",";
			}
			if ((n & QUEUE_NOTIFY_FAILURE) != 0) {
				buf_printf(&cmd, "%sFAILURE", sep);
				sep = ",";
			}
			if ((n & QUEUE_NOTIFY_DELAY) != 0)
				buf_printf(&cmd, "%sDELAY", sep);
		}
		if (rcpt->orcpt != NULL) {
			/* RFC 3461 4.2: ORCPT=addr-type ";" xtext */
			const char *semi = strchr(rcpt->orcpt, ';');

			if (semi != NULL) {
				buf_printf(&cmd, " ORCPT=%.*s;",
					   (int)(semi - rcpt->orcpt),
					   rcpt->orcpt);
				fq_append_xtext(&cmd, semi + 1);
			}
		}
	}
	fq_conn_send(conn, FQ_STATE_RCPT, buf_cstr(&cmd));
	buf_free(&cmd);
}

/* RFC 5321 4.5.2: dot-stuffing; every line ends in CRLF (a bare LF
   becomes CRLF), then the terminating "." line. */
static void fq_conn_send_body(struct fq_conn *conn)
{
	const struct queue_message *msg = conn->job->m->msg;
	struct buf out = BUF_INIT;
	size_t start = 0;

	buf_init(&out, msg->body_len + msg->body_len / 32 + 16);
	while (start < msg->body_len) {
		const uint8_t *lf =
			memchr(msg->body + start, '\n', msg->body_len - start);
		size_t end =
			lf == NULL ? msg->body_len : (size_t)(lf - msg->body);
		size_t line_end = end;

		if (line_end > start && msg->body[line_end - 1] == '\r')
			line_end--;
		if (msg->body[start] == '.')
			buf_append_c(&out, '.');
		buf_append(&out, msg->body + start, line_end - start);
		buf_append_str(&out, "\r\n");
		start = lf == NULL ? msg->body_len : end + 1;
	}
	buf_append_str(&out, ".\r\n");
	stream_write(conn->stream, buf_span(&out).p, out.used);
	buf_free_secure(&out);
	conn->state = FQ_STATE_BODY;
	/* RFC 5321 4.5.3.2.6: 10 minutes for the final reply. */
	fq_conn_arm_timeout(conn, fq->front->set->queue_timeout * 2);
}

static void fq_conn_send_ehlo(struct fq_conn *conn)
{
	char *line = i_strdup_printf("EHLO %s", fq->front->set->hostname);

	fq_conn_send(conn, FQ_STATE_EHLO, line);
	i_free(line);
}

/* The session is ready (after EHLO, and TLS when there is some). */
static void fq_conn_ready(struct fq_conn *conn)
{
	conn->session_ok = true;
#ifdef MARMOT_HAVE_DNS
	fq_conn_report(conn, conn->tls, TLSRPT_RESULT_STARTTLS_NOT_SUPPORTED,
		       fq_conn_host(conn));
#endif
	log_info(conn->log_id, "queue.session", "host=%s tls=%s policy=%s",
		 log_value(0, fq_conn_host(conn)),
		 conn->tls ? stream_tls_version(conn->stream) : "no",
		 fq_tls_req_name(conn->host_tls));
	fq_conn_send_mail(conn);
}

/* Called when the session would go on without TLS: if the host's policy
   requires TLS, the host fails (QUIT) and true is returned. */
static bool fq_conn_tls_required(struct fq_conn *conn)
{
	if (conn->host_tls == FQ_TLS_OPPORTUNISTIC)
		return false;
#ifdef MARMOT_HAVE_DNS
	fq_conn_report(conn, false, TLSRPT_RESULT_STARTTLS_NOT_SUPPORTED,
		       fq_conn_host(conn));
#endif
	/* RFC 7672 2.2, RFC 8461 5: never plaintext; try another MX host
	   or later (X.7.10: encryption needed, RFC 5248). */
	fq_conn_set_error(conn,
			  "451 4.7.10 %s does not offer STARTTLS, which the "
			  "%s policy requires",
			  fq_conn_host(conn), fq_tls_req_name(conn->host_tls));
	stream_write_str(conn->stream, "QUIT\r\n");
	fq_conn_host_failed(conn);
	return true;
}

/* STARTTLS was accepted: the handshake, with the context and checks
   that the host's policy asks for. */
static int fq_conn_start_tls(struct fq_conn *conn, const char **error_r)
{
	switch (conn->host_tls) {
	case FQ_TLS_OPPORTUNISTIC:
	case FQ_TLS_DANE_ENCRYPT:
		break;
#ifdef MARMOT_HAVE_DNS
	case FQ_TLS_DANE:
		return stream_start_tls_client_setup(
			conn->stream, fq_tlspolicy_dane_ctx(),
			fq_conn_host(conn), fq_dane_ssl_setup, conn->dane,
			error_r);
	case FQ_TLS_STS:
		/* RFC 8461 4.2: a certificate valid for the MX host name
		   (SNI and the host check are the MX host name). */
		return stream_start_tls_client(conn->stream,
					       fq_tlspolicy_verify_ctx(),
					       fq_conn_host(conn), error_r);
#else
	case FQ_TLS_DANE:
	case FQ_TLS_STS:
		i_unreached();
#endif
	}
	return stream_start_tls_client(conn->stream, fq->tls_client,
				       fq_conn_host(conn), error_r);
}

/* Handles one reply. Returns 0 to go on reading, -1 when reading must
   stop (the connection is gone, or TLS starts and the rest of the
   buffer is discarded). */
static int fq_conn_reply(struct fq_conn *conn, const struct smtp_reply *reply)
{
	struct fq_job *job = conn->job;
	const char *text = smtp_reply_one_line(reply, conn->reply_pool);
	const char *error;
	unsigned int cls = reply->code / 100;

	switch (conn->state) {
	case FQ_STATE_GREETING:
		/* RFC 5321 3.1: 220 greeting; 554 means no service. */
		if (reply->code != 220) {
			fq_conn_set_error(conn, "%s", text);
			fq_conn_host_failed(conn);
			return -1;
		}
		fq_conn_send_ehlo(conn);
		return 0;
	case FQ_STATE_EHLO:
		if (cls != 2) {
			/* RFC 5321 3.2: fall back to HELO. */
			char *line = i_strdup_printf("HELO %s",
						     fq->front->set->hostname);

			fq_conn_send(conn, FQ_STATE_HELO, line);
			i_free(line);
			return 0;
		}
		(void)smtp_ehlo_parse(reply, conn->pool, &conn->ehlo);
		if (!conn->tls &&
		    (conn->ehlo.flags & SMTP_EHLO_STARTTLS) != 0) {
			fq_conn_send(conn, FQ_STATE_STARTTLS, "STARTTLS");
			return 0;
		}
		if (!conn->tls && fq_conn_tls_required(conn))
			return -1;
		fq_conn_ready(conn);
		return -1;
	case FQ_STATE_HELO:
		if (cls != 2) {
			fq_conn_set_error(conn, "%s", text);
			fq_conn_host_failed(conn);
			return -1;
		}
		memset(&conn->ehlo, 0, sizeof(conn->ehlo));
		if (fq_conn_tls_required(conn))
			return -1;
		fq_conn_ready(conn);
		return -1;
	case FQ_STATE_STARTTLS:
		if (reply->code != 220) {
			/* Opportunistic: go on in the clear (a REQUIRETLS
			   message is refused in fq_conn_send_mail). */
			if (fq_conn_tls_required(conn))
				return -1;
			fq_conn_ready(conn);
			return -1;
		}
		/* RFC 3207 6 / the STARTTLS injection class: whatever
		   the server sent after this 220 is discarded by
		   stream_start_tls_client, and we stop reading here. */
		if (fq_conn_start_tls(conn, &error) < 0) {
			fq_conn_set_error(conn, "451 4.7.0 TLS: %s", error);
			fq_conn_host_failed(conn);
			return -1;
		}
		conn->state = FQ_STATE_TLS_HANDSHAKE;
		fq_conn_arm_timeout(conn, fq->front->set->queue_timeout);
		return -1;
	case FQ_STATE_MAIL:
		if (cls != 2) {
			fq_job_fail_all(conn, fq_failure_of_class(cls), text);
			fq_conn_job_done(conn);
			return -1;
		}
		fq_conn_send_rcpt(conn);
		return 0;
	case FQ_STATE_RCPT:
		/* RFC 5321 4.2.5: 250/251 accept; 4xx/5xx per recipient. */
		if (cls == 2) {
			job->accepted++;
		} else {
			job->res[job->rcpt_pos] = fq_failure_of_class(cls);
			job->reply[job->rcpt_pos] = i_strdup(text);
		}
		job->rcpt_pos++;
		if (job->rcpt_pos < job->count) {
			fq_conn_send_rcpt(conn);
			return 0;
		}
		if (job->accepted == 0) {
			/* RFC 5321 4.1.1.5: end the transaction. */
			fq_conn_send(conn, FQ_STATE_RSET, "RSET");
			return 0;
		}
		fq_conn_send(conn, FQ_STATE_DATA, "DATA");
		return 0;
	case FQ_STATE_DATA:
		if (reply->code != 354) {
			fq_job_fail_all(conn, fq_failure_of_class(cls), text);
			fq_conn_job_done(conn);
			return -1;
		}
		fq_conn_send_body(conn);
		return 0;
	case FQ_STATE_BODY:
		/* RFC 5321 4.1.1.4: the reply after the final "." is for
		   every recipient accepted at RCPT. */
		fq_job_fail_all(conn,
				cls == 2 ? FQ_RESULT_OK
					 : fq_failure_of_class(cls),
				text);
		fq_conn_job_done(conn);
		return -1;
	case FQ_STATE_RSET:
		fq_conn_job_done(conn);
		return -1;
	case FQ_STATE_IDLE:
	case FQ_STATE_QUIT:
		/* Unsolicited (or the 221): nothing to do. */
		return 0;
	case FQ_STATE_RESOLVING:
	case FQ_STATE_CONNECTING:
	case FQ_STATE_TLS_HANDSHAKE:
		break;
	}
	/* A reply we did not ask for. */
	fq_conn_set_error(conn, "451 4.5.0 unexpected reply: %s", text);
	fq_conn_host_failed(conn);
	return -1;
}

static void fq_conn_input(struct fq_conn *conn)
{
	struct buf *input = stream_input(conn->stream);

	/* Bounded: each reply consumes bytes; at most 64 per event. */
	for (unsigned int n = 0; n < 64; n++) {
		struct smtp_reply reply;
		size_t consumed;
		const char *error;
		int ret;

		if (conn->state == FQ_STATE_IDLE ||
		    conn->state == FQ_STATE_QUIT) {
			/* Nothing is expected: drop what comes. */
			buf_consume(input, input->used);
			return;
		}
		pool_clear(conn->reply_pool);
		ret = smtp_reply_parse(buf_span(input), conn->reply_pool,
				       &reply, &consumed, &error);
		if (ret == 0)
			return;
		if (ret < 0) {
			fq_conn_set_error(conn, "451 4.5.0 bad reply: %s",
					  error);
			fq_conn_host_failed(conn);
			return;
		}
		buf_consume(input, consumed);
		if (fq_conn_reply(conn, &reply) < 0)
			return;
	}
}

static void fq_conn_stream_event(struct stream *stream, enum stream_event event,
				 void *context)
{
	struct fq_conn *conn = context;

	switch (event) {
	case STREAM_EVENT_INPUT:
		fq_conn_input(conn);
		break;
	case STREAM_EVENT_OUTPUT_DRAINED:
		break;
	case STREAM_EVENT_TLS_READY:
		conn->tls = true;
		/* RFC 3207 4.2: forget the old EHLO and ask again. */
		memset(&conn->ehlo, 0, sizeof(conn->ehlo));
		fq_conn_send_ehlo(conn);
		break;
	case STREAM_EVENT_EOF:
	case STREAM_EVENT_ERROR:
		if (conn->state == FQ_STATE_QUIT ||
		    conn->state == FQ_STATE_IDLE) {
			fq_conn_destroy(&conn);
			fq_dispatch();
			break;
		}
		if (conn->state == FQ_STATE_TLS_HANDSHAKE &&
		    conn->host_tls != FQ_TLS_OPPORTUNISTIC) {
			/* RFC 7672 2.2 / RFC 8461 5: an authentication
			   failure defers; it never falls back to plaintext. */
#ifdef MARMOT_HAVE_DNS
			fq_conn_report(conn, false,
				       fq_tlsrpt_verify_result(
					       stream_tls_verify_result(stream),
					       conn->host_tls == FQ_TLS_DANE),
				       fq_conn_host(conn));
#endif
			fq_conn_set_error(
				conn,
				"451 4.7.5 TLS with %s failed (policy %s): %s",
				fq_conn_host(conn),
				fq_tls_req_name(conn->host_tls),
				event == STREAM_EVENT_EOF
					? "closed by the server"
					: stream_error(stream));
			fq_conn_host_failed(conn);
			break;
		}
		fq_conn_set_error(conn, "451 4.4.2 connection lost (%s)",
				  event == STREAM_EVENT_EOF
					  ? "closed by the server"
					  : stream_error(stream));
		fq_conn_host_failed(conn);
		break;
	case STREAM_EVENT_CLOSED:
		fq_conn_destroy(&conn);
		fq_dispatch();
		break;
	}
}

static void fq_conn_connected(void *context)
{
	struct fq_conn *conn = context;
	int err = 0;
	socklen_t len = sizeof(err);

	io_remove(&conn->connect_io);
	if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		fq_conn_set_error(conn, "451 4.4.1 connect to %s:%u: %s",
				  conn->addrs[conn->addr_pos - 1].ip,
				  conn->addrs[conn->addr_pos - 1].port,
				  strerror(err));
		fq_conn_host_failed(conn);
		return;
	}
	conn->stream = stream_create(fq->front->ioloop, conn->fd,
				     fq_conn_stream_event, conn);
	conn->state = FQ_STATE_GREETING;
	/* RFC 5321 4.5.3.2.1: 5 minutes for the greeting. */
	fq_conn_arm_timeout(conn, fq->front->set->queue_timeout);
}

static void fq_conn_connect(struct fq_conn *conn, const struct fq_addr *addr)
{
	struct sockaddr_storage ss;
	socklen_t ss_len;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr->ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)addr->port);
		ss_len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, addr->ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)addr->port);
		ss_len = sizeof(*sin6);
	} else {
		fq_conn_set_error(conn, "451 4.4.1 bad address %s", addr->ip);
		fq_conn_host_failed(conn);
		return;
	}
	conn->state = FQ_STATE_CONNECTING;
	conn->perm_failure = false;
	conn->fd = socket(ss.ss_family,
			  SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (conn->fd < 0) {
		fq_conn_set_error(conn, "451 4.3.0 socket: %s",
				  strerror(errno));
		fq_conn_host_failed(conn);
		return;
	}
	if (connect(conn->fd, (struct sockaddr *)&ss, ss_len) < 0 &&
	    errno != EINPROGRESS) {
		fq_conn_set_error(conn, "451 4.4.1 connect to %s:%u: %s",
				  addr->ip, addr->port, strerror(errno));
		fq_conn_host_failed(conn);
		return;
	}
	conn->connect_io = io_add(fq->front->ioloop, conn->fd, IO_WRITE,
				  fq_conn_connected, conn);
	fq_conn_arm_timeout(conn, fq->front->set->queue_timeout);
}

#ifdef MARMOT_HAVE_DNS
static void fq_conn_tlsa_resolved(void *context,
				  const struct dns_tlsa_result *result)
{
	struct fq_conn *conn = context;
	const char *host = conn->mx_hosts[conn->mx_pos - 1];
	unsigned int usable[DANE_TLSA_MAX], count;
	const char *reason;
	enum dane_state state;

	conn->lookup = NULL;
	state = dane_host_state(result, usable, &count, &reason);
	log_info(conn->log_id, "queue.dane", "host=%s state=%s reason=%s",
		 log_value(0, host), dane_state_name(state),
		 log_value(1, reason));
	switch (state) {
	case DANE_STATE_NONE:
		break;
	case DANE_STATE_VERIFY:
		conn->host_tls = FQ_TLS_DANE;
		conn->dane = i_new(struct fq_dane_records, 1);
		conn->dane->host = conn->mx_hosts[conn->mx_pos - 1];
		conn->dane->domain = conn->dest->key;
		for (unsigned int i = 0;
		     i < count && i < N_ELEMENTS(conn->dane->rec); i++) {
			const struct dns_tlsa *t = &result->tlsa[usable[i]];

			conn->dane->rec[i].usage = t->usage;
			conn->dane->rec[i].selector = t->selector;
			conn->dane->rec[i].mtype = t->matching_type;
			conn->dane->rec[i].data = i_malloc(t->len);
			memcpy(conn->dane->rec[i].data, t->data, t->len);
			conn->dane->rec[i].len = t->len;
			conn->dane->count++;
		}
		break;
	case DANE_STATE_ENCRYPT:
		conn->host_tls = FQ_TLS_DANE_ENCRYPT;
		break;
	case DANE_STATE_DEFER:
		/* RFC 7672 2.2.2: not this host now; the others, or
		   later. */
		fq_conn_set_error(conn, "451 4.7.5 %s: TLSA lookup failed: %s",
				  host, reason);
		conn->addr_count = 0;
		conn->addr_pos = 0;
		break;
	}
	fq_conn_next_addr(conn);
}

static void fq_conn_host_resolved(void *context,
				  const struct dns_host_result *result)
{
	struct fq_conn *conn = context;
	const char *host = conn->mx_hosts[conn->mx_pos - 1];

	conn->lookup = NULL;
	conn->addr_count = 0;
	conn->addr_pos = 0;
	if (result->info.status != DNS_STATUS_OK) {
		fq_conn_set_error(conn, "%s 4.4.3 %s: address lookup: %s",
				  result->info.status == DNS_STATUS_TEMPFAIL
					  ? "451"
					  : "451",
				  host, dns_status_name(result->info.status));
	}
	for (unsigned int i = 0;
	     i < result->count && conn->addr_count < FQ_ADDRS_MAX; i++) {
		struct fq_addr *a = &conn->addrs[conn->addr_count++];

		snprintf(a->host, sizeof(a->host), "%s", host);
		snprintf(a->ip, sizeof(a->ip), "%s", result->addrs[i].text);
		a->port = conn->port;
	}
	fq_conn_free_dane(conn);
	conn->host_tls =
		conn->sts != NULL && conn->sts->mode == MTASTS_MODE_ENFORCE
			? FQ_TLS_STS
			: FQ_TLS_OPPORTUNISTIC;
	/* RFC 7672 2.2.1, 2.2.2: DANE only when the MX answer and the
	   host's addresses are DNSSEC-secure; then the TLSA RRset of the
	   host decides. */
	if (conn->addr_count > 0 && conn->mx_secure && result->info.secure &&
	    !fq->relay) {
		char *name = dane_tlsa_name(host, conn->port);

		conn->state = FQ_STATE_RESOLVING;
		conn->lookup = dns_lookup_tlsa(fq->dns, name,
					       fq_conn_tlsa_resolved, conn);
		i_free(name);
		return;
	}
	fq_conn_next_addr(conn);
}

static void fq_conn_mx_resolved(void *context,
				const struct dns_mx_result *result)
{
	struct fq_conn *conn = context;
	const char *domain = conn->dest->key;

	conn->lookup = NULL;
	/* RFC 7672 2.2.1: DANE needs a secure MX RRset (or a secure proof
	   that there is none, for the implicit MX). */
	conn->mx_secure = result->info.secure;
	switch (result->info.status) {
	case DNS_STATUS_OK:
		if (result->null_mx) {
			/* RFC 7505 4.1: 556 5.1.10, permanently. */
			fq_conn_set_error(conn,
					  "556 5.1.10 %s accepts no "
					  "mail (null MX)",
					  domain);
			conn->perm_failure = true;
			break;
		}
		if (result->count == 0) {
			/* RFC 5321 5.1: MX records but none usable. */
			fq_conn_set_error(conn,
					  "550 5.4.4 %s: no usable MX "
					  "host",
					  domain);
			conn->perm_failure = true;
			break;
		}
		/* RFC 5321 5.1: in preference order (the resolver has
		   sorted them and shuffled equal preferences). */
		for (unsigned int i = 0;
		     i < result->count && conn->mx_count < FQ_MX_MAX; i++)
			conn->mx_hosts[conn->mx_count++] =
				i_strdup(result->mx[i].host);
		break;
	case DNS_STATUS_NODATA:
		/* RFC 5321 5.1: no MX: the domain itself is the implicit
		   MX (its A/AAAA). */
		conn->mx_hosts[conn->mx_count++] = i_strdup(domain);
		break;
	case DNS_STATUS_NXDOMAIN:
	case DNS_STATUS_INVALID_NAME:
		fq_conn_set_error(conn, "550 5.1.2 %s: no such domain", domain);
		conn->perm_failure = true;
		break;
	case DNS_STATUS_TEMPFAIL:
		fq_conn_set_error(
			conn, "451 4.4.3 %s: MX lookup failed: %s", domain,
			result->info.error != NULL ? result->info.error
						   : "temporary DNS failure");
		break;
	}
	fq_conn_next_addr(conn);
}
#endif

#ifdef MARMOT_HAVE_DNS
static void fq_conn_sts_done(void *context, const struct mtasts_policy *policy)
{
	struct fq_conn *conn = context;

	conn->sts_lookup = NULL;
	if (policy != NULL && policy->mode != MTASTS_MODE_NONE) {
		conn->policy_pool = pool_create("queue tls policy", 1024);
		conn->sts = p_new(conn->policy_pool, struct mtasts_policy, 1);
		mtasts_policy_copy(conn->policy_pool, conn->sts, policy);
	}
	conn->lookup = dns_lookup_mx(fq->dns, conn->dest->key,
				     fq_conn_mx_resolved, conn);
}
#endif

/* Connects to the next candidate address, resolving the next MX host
   when the current one's addresses are used up; ends the job when all
   are tried. */
static void fq_conn_next_addr(struct fq_conn *conn)
{
	if (conn->addr_pos < conn->addr_count) {
		const struct fq_addr *addr = &conn->addrs[conn->addr_pos++];

		fq_conn_connect(conn, addr);
		return;
	}
#ifdef MARMOT_HAVE_DNS
	while (conn->mx_pos < conn->mx_count && !conn->perm_failure) {
		const char *host = conn->mx_hosts[conn->mx_pos++];

		if (conn->sts != NULL &&
		    !mtasts_policy_mx_allowed(conn->sts, host)) {
			log_info(conn->log_id, "queue.mta_sts.mx_mismatch",
				 "dest=%s host=%s mode=%s",
				 log_value(0, conn->dest->key),
				 log_value(1, host),
				 mtasts_mode_name(conn->sts->mode));
			/* RFC 8461 4.1, 5: in enforce mode only the
			   policy's MX hosts are used; testing only
			   reports. */
			fq_tlsrpt_failure(conn->dest->key, NULL, conn->sts,
					  TLSRPT_RESULT_VALIDATION_FAILURE,
					  host, NULL, NULL);
			if (conn->sts->mode == MTASTS_MODE_ENFORCE) {
				fq_conn_set_error(
					conn,
					"451 4.7.5 %s is not an MX host of "
					"the MTA-STS policy of %s",
					host, conn->dest->key);
				continue;
			}
		}
		conn->state = FQ_STATE_RESOLVING;
		conn->lookup = dns_lookup_host(fq->dns, host,
					       fq_conn_host_resolved, conn);
		return;
	}
#endif
	/* Every host failed: the job's recipients get the last error. */
	if (conn->last_error == NULL)
		fq_conn_set_error(conn, "451 4.4.1 no host to deliver to");
	fq_conn_destroy(&conn);
	fq_dispatch();
}

struct fq_conn *fq_conn_create(struct fq_dest *dest, struct fq_job *job)
{
	struct fq_conn *conn = i_new(struct fq_conn, 1);

	conn->dest = dest;
	dest->active++;
	conn->job = job;
	conn->fd = -1;
	conn->port = 25;
	conn->pool = pool_create("queue conn", 4096);
	conn->reply_pool = pool_create("queue reply", 1024);
	snprintf(conn->log_id, sizeof(conn->log_id), "q%u", ++fq->conn_seq);
	conn->next = fq->conns;
	if (fq->conns != NULL)
		fq->conns->prev = conn;
	fq->conns = conn;
	fq->conn_count++;
	log_info(conn->log_id, "queue.connect", "dest=%s id=%s rcpts=%u",
		 log_value(0, dest->key), job->m->id, job->count);
	if (fq->relay && !fq->relay_is_ip) {
		/* A smarthost by name: its addresses, no MX lookup. */
		conn->mx_hosts[conn->mx_count++] = i_strdup(fq->relay_host);
		conn->port = fq->relay_port;
		fq_conn_next_addr(conn);
		return conn;
	}
	if (fq->relay) {
		struct fq_addr *a = &conn->addrs[conn->addr_count++];

		snprintf(a->host, sizeof(a->host), "%s", fq->relay_host);
		/* An IP literal here (fq_parse_relay), so it fits. */
		snprintf(a->ip, sizeof(a->ip), "%.45s", fq->relay_host);
		a->port = fq->relay_port;
		fq_conn_next_addr(conn);
		return conn;
	}
#ifdef MARMOT_HAVE_DNS
	conn->state = FQ_STATE_RESOLVING;
	if (fq_tlspolicy_sts_enabled()) {
		/* RFC 8461 5: the policy first, then the MX hosts it
		   allows. */
		conn->sts_lookup =
			fq_sts_lookup(dest->key, fq_conn_sts_done, conn);
		return conn;
	}
	conn->lookup =
		dns_lookup_mx(fq->dns, dest->key, fq_conn_mx_resolved, conn);
#else
	fq_conn_set_error(conn, "451 4.3.5 no resolver in this build: set "
				"queue_relay_host");
	fq_conn_next_addr(conn);
#endif
	return conn;
}

void fq_conn_start_job(struct fq_conn *conn)
{
	timeout_remove(&conn->timeout);
	fq_conn_send_mail(conn);
}

struct fq_conn *fq_dest_idle_conn(struct fq_dest *dest)
{
	for (struct fq_conn *c = fq->conns; c != NULL; c = c->next) {
		if (c->dest == dest && c->state == FQ_STATE_IDLE)
			return c;
	}
	return NULL;
}

static struct fq_dest *fq_dest_find(const char *key)
{
	for (struct fq_dest *d = fq->dests; d != NULL; d = d->next) {
		if (strcmp(d->key, key) == 0)
			return d;
	}
	return NULL;
}

bool fq_dest_has_room(const char *key)
{
	struct fq_dest *d = fq_dest_find(key);

	if (d == NULL)
		return fq->conn_count < FQ_CONNS_MAX;
	return fq_dest_idle_conn(d) != NULL ||
	       (d->active < fq->front->set->queue_max_per_domain &&
		fq->conn_count < FQ_CONNS_MAX);
}
