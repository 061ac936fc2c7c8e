/* front-smtp.c - the SMTP (port 25, inbound MX) and submission (587 with
   STARTTLS, 465 with implicit TLS; RFC 6409, RFC 8314) listeners. The
   protocol itself is src/lib-smtp's I/O-free session; this file wires it
   to the connection and answers its questions: which extensions to offer,
   AUTH through front-sasl.h, MAIL (sender ownership and the sending rate
   on submission), RCPT through front-delivery.h, the Received: header
   (RFC 5321 4.4) and the commit of each message.

   SECURITY: port 25 never relays. A recipient is accepted there only when
   the vault resolves it to local accounts (their alias forwards are the
   only remote copies); everything else, address literals included, is
   refused with 550 5.7.1. Submission requires AUTH, which is offered only
   under TLS; the envelope sender and every From: address must belong to
   the account. A message is acknowledged with 250 only after
   front_delivery_commit() reports it durable; on submission it is first
   DKIM-signed (front-dkim.h) as its From: domain, and when the vault
   cannot sign the answer is 451, never an unsigned message (a domain
   without keys is sent unsigned, and logged). STARTTLS drops any
   pipelined plaintext (lib-smtp and stream.c) and resets the session
   (RFC 3207 4.2). */

#include "lib.h"
#include "ioloop.h"
#include "log.h"
#include "mail-address.h"
#include "message-address.h"
#include "smtp-server.h"
#include "stream.h"
#include "front-mailauth.h"
#include "arc.h"
#include "front-delivery.h"
#include "front-dkim.h"
#include "front-private.h"
#include "front-sasl.h"

#include <stdio.h>
#include <strings.h>
#include <time.h>

/* RFC 4865: how far ahead FUTURERELEASE may hold a message. */
#define SMTP_FUTURE_RELEASE_MAX (7 * 24 * 3600)
/* From: addresses checked per message (RFC 5322 3.6.2 allows a list). */
#define SMTP_MAX_FROM_ADDRESSES 8

struct smtp_rcpt_entry {
	char *address;
	bool remote; /* NOT_LOCAL on submission: to the outbound queue */
	char *orcpt;
	unsigned int notify;
	struct front_rcpt_target *locals;
	unsigned int local_count;
	char **forwards;
	unsigned int forward_count;
};

struct smtp_state {
	struct front_conn *conn;
	struct smtp_server *server;
	struct smtp_server_settings set;
	bool submission;
	bool starttls_wanted;
	uint64_t account_id; /* after a successful AUTH */

	struct front_sasl *sasl;
	bool sasl_final_sent; /* SCRAM server-final sent, awaiting "" */

	/* The transaction: cleared by the session's reset callback. */
	pool_t tpool;
	struct smtp_mail mail;
	struct smtp_rcpt rcpt; /* the one being resolved */
	/* <Postmaster>: the domain tried, a suffix of our host name. */
	const char *postmaster_domain;
	struct smtp_rcpt_entry *rcpts;
	unsigned int rcpt_count, rcpt_alloc;
	unsigned int transactions;

	/* The message being checked and committed. */
	const uint8_t *msg;
	size_t msg_len;
	size_t prefix_len;
	const char *from_addrs[SMTP_MAX_FROM_ADDRESSES];
	unsigned int from_count, from_next;
	struct front_delivery *delivery;
	/* Port 25: SPF/DKIM/DMARC and Authentication-Results
	   (front-mailauth.h); owns the message committed after it. */
	struct front_mailauth *auth;
	bool auth_junk;
	/* Submission: DKIM signing in the vault; port 25: the ARC seal of
	   a forward (smtp_arc_seal()). */
	struct front_dkim_sign *dkim;
	/* Port 25, forwarded: the ARC set for the queue's copy (in tpool). */
	const char *arc_fields, *arc_domain;

	/* From the end of the data until its answer goes out: the From:
	   checks, the port 25 checks, signing or sealing, the commit. A
	   shutdown waits for it (smtp_busy()): a 421 while it runs would
	   be followed by a message stored anyway, which the client sends
	   again. */
	bool msg_pending;
	/* A deferred answer, given from front_conn_resume(). */
	unsigned int answer_code;
	char answer_text[160];
	void (*answer)(struct smtp_server *s, unsigned int code,
		       const char *text);
};

/* ---- per-account sending rate (token bucket) ---- */

struct smtp_rate {
	struct smtp_rate *next;
	uint64_t account_id;
	double tokens;
	uint64_t last_ms;
};

static struct smtp_rate *smtp_rates;

static struct smtp_rate *smtp_rate_get(uint64_t account_id)
{
	unsigned int limit = front_global->set->submission_rate_limit;
	uint64_t now = ioloop_now_ms(front_global->ioloop);
	struct smtp_rate **p, *r;

	for (p = &smtp_rates; (r = *p) != NULL;) {
		/* Refill: limit tokens per hour, at most limit. */
		r->tokens += (double)(now - r->last_ms) * limit / 3600000.0;
		r->last_ms = now;
		if (r->tokens >= limit) {
			r->tokens = limit;
			if (r->account_id != account_id) {
				/* Full again: forget it (bounds the list). */
				*p = r->next;
				i_free(r);
				continue;
			}
		}
		if (r->account_id == account_id)
			return r;
		p = &r->next;
	}
	r = i_new(struct smtp_rate, 1);
	r->account_id = account_id;
	r->tokens = limit;
	r->last_ms = now;
	r->next = smtp_rates;
	smtp_rates = r;
	return r;
}

static bool smtp_rate_allows(uint64_t account_id)
{
	if (front_global->set->submission_rate_limit == 0)
		return true;
	return smtp_rate_get(account_id)->tokens >= 1.0;
}

static void smtp_rate_take(uint64_t account_id)
{
	if (front_global->set->submission_rate_limit == 0)
		return;
	smtp_rate_get(account_id)->tokens -= 1.0;
}

/* ---- helpers ---- */

static bool smtp_is_submission(const struct front_conn *conn)
{
	return conn->kind == SETTINGS_PORT_SUBMISSION ||
	       conn->kind == SETTINGS_PORT_SUBMISSIONS;
}

static void smtp_update_extensions(struct smtp_state *state)
{
	bool tls = front_conn_is_tls(state->conn);
	unsigned int ext = SMTP_EXT_PIPELINING | SMTP_EXT_SIZE |
			   SMTP_EXT_8BITMIME | SMTP_EXT_SMTPUTF8 |
			   SMTP_EXT_ENHANCEDSTATUSCODES | SMTP_EXT_CHUNKING |
			   SMTP_EXT_BINARYMIME | SMTP_EXT_DSN;

	if (!tls && state->conn->tls != NULL)
		ext |= SMTP_EXT_STARTTLS; /* RFC 3207 4 */
	if (tls)
		ext |= SMTP_EXT_REQUIRETLS; /* RFC 8689 3: only under TLS */
	/* RFC 4954 4 leaves policy to the server: ours is TLS first, and
	   never on port 25. */
	if (state->submission && tls)
		ext |= SMTP_EXT_AUTH;
	/* RFC 4865: holding mail is for our own users only. */
	if (state->submission && state->account_id != 0)
		ext |= SMTP_EXT_FUTURERELEASE;
	smtp_server_set_extensions(state->server, ext);
}

/* Answers later: pauses now, gives the answer from the ioloop. */
static void smtp_answer_run(void *context)
{
	struct smtp_state *state = context;
	void (*answer)(struct smtp_server *, unsigned int, const char *) =
		state->answer;

	state->answer = NULL;
	state->msg_pending = false;
	if (answer != NULL)
		answer(state->server, state->answer_code, state->answer_text);
}

static void smtp_answer_later(struct smtp_state *state,
			      void (*answer)(struct smtp_server *, unsigned int,
					     const char *),
			      unsigned int code, const char *text)
{
	state->answer = answer;
	state->answer_code = code;
	snprintf(state->answer_text, sizeof(state->answer_text), "%s", text);
	front_conn_resume(state->conn, smtp_answer_run, state);
}

/* ---- session callbacks ---- */

static void smtp_output(void *context, const void *data, size_t len)
{
	struct smtp_state *state = context;

	front_conn_write(state->conn, data, len);
}

static void smtp_helo(void *context, const char *domain, bool ehlo)
{
	struct smtp_state *state = context;

	log_debug(state->conn->id, "smtp.helo", "ehlo=%s domain=%s",
		  ehlo ? "yes" : "no", log_value(0, domain));
}

static void smtp_starttls(void *context)
{
	struct smtp_state *state = context;

	/* Started after smtp_server_input() returns (smtp_input()). */
	state->starttls_wanted = true;
}

static void smtp_sasl_send(void *context, const char *challenge_b64)
{
	struct smtp_state *state = context;

	smtp_server_auth_challenge(state->server, challenge_b64);
}

static void smtp_sasl_done(void *context, enum auth_result result,
			   uint64_t account_id, const char *address,
			   const char *final_b64)
{
	struct smtp_state *state = context;
	enum front_sasl_failure failure = front_sasl_failure(state->sasl);

	front_sasl_free(&state->sasl);
	switch (result) {
	case AUTH_RESULT_OK:
		if (final_b64 != NULL) {
			/* RFC 4954 4 / RFC 5802 5: the server-final goes in
			   a 334 that the client answers with an empty line. */
			state->sasl_final_sent = true;
			state->account_id = account_id;
			smtp_server_auth_challenge(state->server, final_b64);
			return;
		}
		state->account_id = account_id;
		smtp_server_auth_reply(state->server, 235,
				       "2.7.0 Authentication successful");
		smtp_update_extensions(state);
		log_info(state->conn->id, "smtp.auth", "result=ok user=%s",
			 log_value(0, address));
		return;
	case AUTH_RESULT_FAILED:
		if (failure == FRONT_SASL_FAILURE_CANCELLED) {
			/* RFC 4954 4 */
			smtp_server_auth_reply(state->server, 501,
					       "5.0.0 Authentication "
					       "cancelled");
		} else if (failure == FRONT_SASL_FAILURE_MALFORMED) {
			smtp_server_auth_reply(state->server, 501,
					       "5.5.2 Malformed authentication "
					       "response");
		} else {
			/* The same reply for a wrong password and an unknown
			   user: no account probing. */
			smtp_server_auth_reply(state->server, 535,
					       "5.7.8 Authentication "
					       "credentials invalid");
		}
		return;
	case AUTH_RESULT_DISABLED:
		smtp_server_auth_reply(state->server, 535,
				       "5.7.8 Account disabled");
		return;
	case AUTH_RESULT_TEMPFAIL:
		/* RFC 4954 6: 454 4.7.0 temporary authentication failure */
		smtp_server_auth_reply(state->server, 454,
				       "4.7.0 Temporary authentication "
				       "failure");
		return;
	}
	i_unreached();
}

static void smtp_auth(void *context, const char *mech, const char *initial)
{
	struct smtp_state *state = context;
	const char *error;

	if (!state->submission) {
		smtp_server_auth_reply(state->server, 503,
				       "5.5.1 AUTH is not available on this "
				       "port");
		return;
	}
	if (!front_conn_is_tls(state->conn)) {
		/* RFC 3207 4 / RFC 4954 4: TLS first. */
		smtp_server_auth_reply(state->server, 530,
				       "5.7.0 Must issue a STARTTLS command "
				       "first");
		return;
	}
	state->sasl_final_sent = false;
	state->sasl =
		front_sasl_start(state->conn, "smtp", mech, initial,
				 smtp_sasl_send, smtp_sasl_done, state, &error);
	if (state->sasl == NULL) {
		/* RFC 4954 4: 504 for an unknown mechanism. */
		smtp_server_auth_reply(state->server, 504,
				       "5.5.4 Unrecognized authentication "
				       "type");
	}
}

static void smtp_auth_response(void *context, const char *line)
{
	struct smtp_state *state = context;

	if (state->sasl_final_sent) {
		state->sasl_final_sent = false;
		if (line[0] != '\0') {
			state->account_id = 0;
			smtp_server_auth_reply(state->server, 501,
					       "5.0.0 Authentication "
					       "cancelled");
			return;
		}
		smtp_server_auth_reply(state->server, 235,
				       "2.7.0 Authentication successful");
		smtp_update_extensions(state);
		return;
	}
	i_assert(state->sasl != NULL);
	front_sasl_input(state->sasl, span_from_cstr(line));
}

static void smtp_sender_checked(void *context, bool owned, bool tempfail)
{
	struct smtp_state *state = context;

	if (tempfail) {
		smtp_answer_later(state, smtp_server_mail_reply, 451,
				  "4.3.0 Temporary failure, try again later");
	} else if (!owned) {
		log_info(state->conn->id, "smtp.sender_refused", "from=%s",
			 log_value(0, state->mail.path.address));
		smtp_answer_later(state, smtp_server_mail_reply, 550,
				  "5.7.1 Sender address not owned by the "
				  "authenticated user");
	} else {
		smtp_answer_later(state, smtp_server_mail_reply, 250,
				  "2.1.0 OK");
	}
}

static void smtp_mail(void *context, const struct smtp_mail *mail)
{
	struct smtp_state *state = context;

	state->mail = *mail;
	if (!state->submission) {
		smtp_server_mail_reply(state->server, 250, "2.1.0 OK");
		return;
	}
	if (mail->path.null_path) {
		/* RFC 6409 4.1 lets submission refuse senders it cannot
		   vouch for; bounces are the queue's job, not a client's. */
		smtp_server_mail_reply(state->server, 550,
				       "5.7.1 The null sender is not allowed "
				       "on submission");
		return;
	}
	if (!smtp_rate_allows(state->account_id)) {
		log_info(state->conn->id, "smtp.rate_limited", "account=%llu",
			 (unsigned long long)state->account_id);
		smtp_server_mail_reply(state->server, 450,
				       "4.7.0 Sending rate limit exceeded, "
				       "try again later");
		return;
	}
	front_conn_pause(state->conn);
	front_delivery_sender_owned(state->account_id, mail->path.address,
				    smtp_sender_checked, state);
}

static struct smtp_rcpt_entry *smtp_rcpt_add(struct smtp_state *state,
					     const char *address)
{
	struct smtp_rcpt_entry *e;

	if (state->rcpt_count == state->rcpt_alloc) {
		unsigned int n =
			state->rcpt_alloc == 0 ? 8 : state->rcpt_alloc * 2;
		struct smtp_rcpt_entry *grown =
			p_new(state->tpool, struct smtp_rcpt_entry, n);

		if (state->rcpt_count > 0)
			memcpy(grown, state->rcpts,
			       sizeof(*grown) * state->rcpt_count);
		state->rcpts = grown;
		state->rcpt_alloc = n;
	}
	e = &state->rcpts[state->rcpt_count++];
	memset(e, 0, sizeof(*e));
	e->address = p_strdup(state->tpool, address);
	if (state->rcpt.orcpt[0] != '\0')
		e->orcpt = p_strdup(state->tpool, state->rcpt.orcpt);
	e->notify = state->rcpt.notify;
	return e;
}

static int smtp_postmaster_next(struct smtp_state *state);

static void smtp_rcpt_resolved(void *context, const struct front_rcpt *r)
{
	struct smtp_state *state = context;
	const char *rcpt = state->rcpt.path.address;
	struct smtp_rcpt_entry *e;

	if (state->rcpt.path.postmaster && r->result != FRONT_RCPT_OK &&
	    r->result != FRONT_RCPT_TEMPFAIL &&
	    smtp_postmaster_next(state) == 0)
		return;
	switch (r->result) {
	case FRONT_RCPT_OK:
		if (state->mail.hold_until > (int64_t)time(NULL) &&
		    r->local_count > 0) {
			/* RFC 4865 holds are kept by the outbound queue;
			   local copies are sealed at once, so a held message
			   to a local mailbox would arrive early. Say so
			   rather than ignore the hold (RFC 3463 3.3: X.3.3
			   system not capable of selected features). */
			smtp_answer_later(state, smtp_server_rcpt_reply, 550,
					  "5.3.3 FUTURERELEASE is not "
					  "supported for local recipients");
			return;
		}
		e = smtp_rcpt_add(state, r->address);
		e->locals = p_new(state->tpool, struct front_rcpt_target,
				  r->local_count + 1);
		memcpy(e->locals, r->locals,
		       sizeof(*r->locals) * r->local_count);
		e->local_count = r->local_count;
		e->forwards = p_new(state->tpool, char *, r->remote_count + 1);
		for (unsigned int i = 0; i < r->remote_count; i++)
			e->forwards[i] = p_strdup(state->tpool, r->remote[i]);
		e->forward_count = r->remote_count;
		smtp_answer_later(state, smtp_server_rcpt_reply, 250,
				  "2.1.5 OK");
		return;
	case FRONT_RCPT_NOT_LOCAL:
		if (state->submission && state->account_id != 0) {
			/* RFC 6409 3.1: an authenticated user may send
			   anywhere; the queue delivers it. */
			e = smtp_rcpt_add(state, rcpt);
			e->remote = true;
			smtp_answer_later(state, smtp_server_rcpt_reply, 250,
					  "2.1.5 OK");
			return;
		}
		log_info(state->conn->id, "smtp.relay_denied", "to=%s",
			 log_value(0, rcpt));
		smtp_answer_later(state, smtp_server_rcpt_reply, 550,
				  "5.7.1 Relaying denied");
		return;
	case FRONT_RCPT_UNKNOWN:
		smtp_answer_later(state, smtp_server_rcpt_reply, 550,
				  "5.1.1 No such user here");
		return;
	case FRONT_RCPT_DISABLED:
		smtp_answer_later(state, smtp_server_rcpt_reply, 550,
				  "5.2.1 Mailbox disabled");
		return;
	case FRONT_RCPT_OVER_QUOTA:
		if (r->quota_permanent)
			smtp_answer_later(state, smtp_server_rcpt_reply, 552,
					  "5.2.2 Mailbox full");
		else
			smtp_answer_later(state, smtp_server_rcpt_reply, 452,
					  "4.2.2 Mailbox full, try again "
					  "later");
		return;
	case FRONT_RCPT_TEMPFAIL:
		smtp_answer_later(state, smtp_server_rcpt_reply, 451,
				  "4.3.0 Temporary failure, try again later");
		return;
	}
	i_unreached();
}

/* RFC 5321 4.5.1: <Postmaster> must reach someone. Tries
   postmaster@ each parent of our host name that still has a dot
   (mx.example.org, then example.org). Returns 0 when a lookup was
   started, -1 when there is no domain left. */
static int smtp_postmaster_next(struct smtp_state *state)
{
	const char *domain = state->postmaster_domain;

	if (domain == NULL) {
		domain = front_global->set->hostname;
	} else {
		domain = strchr(domain, '.');
		if (domain == NULL || strchr(domain + 1, '.') == NULL)
			return -1;
		domain++;
	}
	state->postmaster_domain = domain;
	snprintf(state->rcpt.path.address, sizeof(state->rcpt.path.address),
		 "postmaster@%s", domain);
	front_delivery_resolve(state->rcpt.path.address, state->mail.size,
			       smtp_rcpt_resolved, state);
	return 0;
}

static void smtp_rcpt(void *context, const struct smtp_rcpt *rcpt)
{
	struct smtp_state *state = context;

	state->rcpt = *rcpt;
	if (rcpt->path.domain_literal) {
		/* An address literal names a host, not one of our domains:
		   accepting it could only ever mean relaying. */
		smtp_server_rcpt_reply(state->server, 550,
				       "5.7.1 Relaying denied");
		return;
	}
	front_conn_pause(state->conn);
	if (rcpt->path.postmaster) {
		state->postmaster_domain = NULL;
		(void)smtp_postmaster_next(state);
		return;
	}
	front_delivery_resolve(rcpt->path.address, state->mail.size,
			       smtp_rcpt_resolved, state);
}

/* RFC 5322 3.3 date-time for the Received: header. */
static void smtp_format_date(char out[64])
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(out, 64, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* A HELO argument as header text: printable ASCII without the characters
   that end or open a Received: clause or comment. */
static void smtp_header_safe(struct buf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c >= 0x7f || c == '(' || c == ')' ||
		    c == ';' || c == '\\')
			buf_append_c(out, '_');
		else
			buf_append_c(out, c);
	}
}

static void smtp_data_begin(void *context)
{
	struct smtp_state *state = context;
	struct front_conn *conn = state->conn;
	bool tls = front_conn_is_tls(conn), auth = state->account_id != 0;
	char date[64];
	struct buf b = BUF_INIT;
	const char *proto;

	/* RFC 3848 2 / RFC 6531 4.3: the "with" protocol names. */
	if (!smtp_server_is_ehlo(state->server))
		proto = "SMTP";
	else if (state->mail.smtputf8)
		proto = tls && auth ? "UTF8SMTPSA"
			: tls       ? "UTF8SMTPS"
			: auth      ? "UTF8SMTPA"
				    : "UTF8SMTP";
	else
		proto = tls && auth ? "ESMTPSA"
			: tls       ? "ESMTPS"
			: auth      ? "ESMTPA"
				    : "ESMTP";
	smtp_format_date(date);
	/* RFC 5321 4.4: Received: FROM domain (TCP-info) BY domain
	   WITH protocol ID id [FOR path] ; date-time */
	buf_append_str(&b, "Received: from ");
	smtp_header_safe(&b, smtp_server_helo_domain(state->server));
	/* RFC 5321 4.1.3: an IPv6 address literal carries "IPv6:". */
	buf_printf(&b, " ([%s%s])\r\n\tby %s (Marmot) with %s id %s%u",
		   strchr(conn->ip, ':') != NULL ? "IPv6:" : "", conn->ip,
		   front_global->set->hostname, proto, conn->id,
		   ++state->transactions);
	if (tls) {
		buf_printf(&b, "\r\n\t(using %s with cipher %s)",
			   stream_tls_version(conn->stream),
			   stream_tls_cipher(conn->stream));
	}
	if (state->rcpt_count == 1 && !state->rcpts[0].remote) {
		/* Only for one recipient: more would disclose the others
		   (RFC 5321 7.6). */
		buf_printf(&b, "\r\n\tfor <%s>", state->rcpts[0].address);
	}
	buf_printf(&b, ";\r\n\t%s\r\n", date);
	state->prefix_len = b.used;
	smtp_server_message_prepend(state->server, b.data, b.used);
	buf_free(&b);
}

static void smtp_committed(void *context, enum front_commit_result result,
			   const char *reason)
{
	struct smtp_state *state = context;

	front_delivery_destroy(&state->delivery);
	switch (result) {
	case FRONT_COMMIT_OK:
		if (state->submission)
			smtp_rate_take(state->account_id);
		log_info(state->conn->id, "smtp.accepted",
			 "from=%s rcpts=%u size=%zu",
			 log_value(0, state->mail.path.address),
			 state->rcpt_count, state->msg_len - state->prefix_len);
		smtp_answer_later(state, smtp_server_message_reply, 250,
				  "2.0.0 Message accepted");
		return;
	case FRONT_COMMIT_REJECTED:
		log_info(state->conn->id, "smtp.rejected", "reason=%s",
			 log_value(0, reason));
		smtp_answer_later(state, smtp_server_message_reply, 550,
				  reason != NULL && reason[0] == '5'
					  ? reason
					  : "5.7.1 Message rejected");
		return;
	case FRONT_COMMIT_TEMPFAIL:
		smtp_answer_later(state, smtp_server_message_reply, 451,
				  "4.3.0 Temporary failure, try again later");
		return;
	case FRONT_COMMIT_TOO_BIG:
		smtp_answer_later(state, smtp_server_message_reply, 552,
				  "5.3.4 Message too big");
		return;
	}
	i_unreached();
}

static void smtp_commit(struct smtp_state *state)
{
	const struct smtp_mail *m = &state->mail;
	struct front_delivery *d;

	d = front_delivery_create(m->path.address, state->conn->ip,
				  state->submission, state->account_id);
	for (unsigned int i = 0; i < state->rcpt_count; i++) {
		const struct smtp_rcpt_entry *e = &state->rcpts[i];

		if (e->remote) {
			/* SMTP_NOTIFY_* have the QUEUE_NOTIFY_* values. */
			front_delivery_add_remote(d, e->address, e->orcpt,
						  e->notify);
			continue;
		}
		for (unsigned int k = 0; k < e->local_count; k++)
			front_delivery_add_local(d, e->address, &e->locals[k]);
		for (unsigned int k = 0; k < e->forward_count; k++)
			front_delivery_add_remote(d, e->forwards[k], NULL, 0);
	}
	front_delivery_set_dsn(d, m->ret == SMTP_RET_FULL,
			       m->envid[0] != '\0' ? m->envid : NULL);
	front_delivery_set_hold_until(d, m->hold_until);
	front_delivery_set_requiretls(d, m->requiretls);
	if (state->auth_junk)
		front_delivery_set_junk(d, "dmarc");
	front_delivery_set_remote_prefix(d, state->arc_fields);
	state->delivery = d;
	front_delivery_commit(d, state->msg, state->msg_len, smtp_committed,
			      state);
}

/* Finds the one From: field of the header (RFC 5322 3.6: exactly one)
   and unfolds nothing: message_address_parse() reads folded text. Returns
   0 with the value, -1 when there is none or more than one. */
static int smtp_find_from(struct span msg, struct span *value_r)
{
	size_t i = 0;
	int found = 0;

	while (i < msg.len) {
		size_t start = i, end;
		ssize_t lf;

		lf = span_find_byte(span_skip(msg, i), '\n');
		end = lf < 0 ? msg.len : i + (size_t)lf;
		if (end == start || (end == start + 1 && msg.p[start] == '\r'))
			break; /* the empty line ending the header */
		i = end + 1;
		/* Continuation lines (RFC 5322 2.2.3 folding). */
		while (i < msg.len && (msg.p[i] == ' ' || msg.p[i] == '\t')) {
			lf = span_find_byte(span_skip(msg, i), '\n');
			end = lf < 0 ? msg.len : i + (size_t)lf;
			i = end + 1;
		}
		if (span_starts_with_ci(span_make(msg.p + start, end - start),
					SPAN_LIT("From:"))) {
			if (found++ > 0)
				return -1;
			*value_r = span_make(msg.p + start + 5,
					     (end > msg.len ? msg.len : end) -
						     start - 5);
		}
	}
	return found == 1 ? 0 : -1;
}

static void smtp_check_next_from(struct smtp_state *state);

static void smtp_signed(void *context, enum front_dkim_result result,
			const char *fields, const char *error)
{
	struct smtp_state *state = context;
	const char *domain = strrchr(state->from_addrs[0], '@') + 1;
	size_t flen;
	uint8_t *msg;

	state->dkim = NULL;
	switch (result) {
	case FRONT_DKIM_SIGNED:
		/* RFC 6376 5.6: the fields go in front of the header, after
		   our Received: trace field (which is not signed), where
		   the verdict stage expects it first. */
		flen = strlen(fields);
		msg = p_malloc(state->tpool, state->msg_len + flen);
		memcpy(msg, state->msg, state->prefix_len);
		memcpy(msg + state->prefix_len, fields, flen);
		memcpy(msg + state->prefix_len + flen,
		       state->msg + state->prefix_len,
		       state->msg_len - state->prefix_len);
		state->msg = msg;
		state->msg_len += flen;
		state->prefix_len += flen;
		smtp_commit(state);
		return;
	case FRONT_DKIM_NO_KEYS:
		log_info(state->conn->id, "smtp.dkim_unsigned",
			 "domain=%s reason=%s", log_value(0, domain),
			 log_value(1, "no DKIM keys"));
		smtp_commit(state);
		return;
	case FRONT_DKIM_BAD_MESSAGE:
		log_info(state->conn->id, "smtp.dkim_refused", "error=%s",
			 log_value(0, error));
		smtp_answer_later(state, smtp_server_message_reply, 550,
				  "5.6.0 The message cannot be DKIM-signed");
		return;
	case FRONT_DKIM_TEMPFAIL:
		log_warning(state->conn->id, "smtp.dkim_tempfail",
			    "domain=%s error=%s", log_value(0, domain),
			    log_value(1, error));
		smtp_answer_later(state, smtp_server_message_reply, 451,
				  "4.3.0 Temporary failure, try again later");
		return;
	}
	i_unreached();
}

/* Submission: sign as the domain of the (first) From: address, whose
   ownership was checked (RFC 6376 8.15; DMARC alignment, RFC 7489 3.1). */
static void smtp_sign(struct smtp_state *state)
{
	const char *domain = strrchr(state->from_addrs[0], '@'), *norm;
	const char *error;

	i_assert(domain != NULL);
	/* d= in lower case, as the directory spells the domain. */
	norm = mail_domain_normalize(state->tpool, domain + 1, &error);
	state->dkim = front_dkim_sign_start(norm != NULL ? norm : domain + 1,
					    state->msg + state->prefix_len,
					    state->msg_len - state->prefix_len,
					    smtp_signed, state);
}

static void smtp_from_checked(void *context, bool owned, bool tempfail)
{
	struct smtp_state *state = context;

	if (tempfail) {
		smtp_answer_later(state, smtp_server_message_reply, 451,
				  "4.3.0 Temporary failure, try again later");
	} else if (!owned) {
		log_info(state->conn->id, "smtp.from_refused", "from=%s",
			 log_value(0, state->from_addrs[state->from_next - 1]));
		smtp_answer_later(state, smtp_server_message_reply, 550,
				  "5.7.1 From: address not owned by the "
				  "authenticated user");
	} else {
		smtp_check_next_from(state);
	}
}

static void smtp_check_next_from(struct smtp_state *state)
{
	while (state->from_next < state->from_count) {
		const char *addr = state->from_addrs[state->from_next++];

		if (strcasecmp(addr, state->mail.path.address) == 0)
			continue; /* the envelope sender, already checked */
		front_delivery_sender_owned(state->account_id, addr,
					    smtp_from_checked, state);
		return;
	}
	smtp_sign(state);
}

/* Submission: every From: address must belong to the account (RFC 6409
   8.1 lets the server check what it will vouch for). */
static int smtp_collect_from(struct smtp_state *state, const char **error_r)
{
	struct span msg = span_make(state->msg + state->prefix_len,
				    state->msg_len - state->prefix_len);
	struct message_address *a;
	struct span value;

	state->from_count = state->from_next = 0;
	if (smtp_find_from(msg, &value) < 0) {
		*error_r = "5.6.0 The message needs exactly one From: field";
		return -1;
	}
	a = message_address_parse(state->tpool, value,
				  SMTP_MAX_FROM_ADDRESSES * 2 + 2);
	for (; a != NULL; a = a->next) {
		if (a->domain == NULL)
			continue; /* group start/end */
		if (a->invalid || a->mailbox == NULL) {
			*error_r = "5.6.0 Unreadable From: address";
			return -1;
		}
		if (state->from_count == SMTP_MAX_FROM_ADDRESSES) {
			*error_r = "5.7.1 Too many From: addresses";
			return -1;
		}
		state->from_addrs[state->from_count++] = p_strdup_printf(
			state->tpool, "%s@%s", a->mailbox, a->domain);
	}
	if (state->from_count == 0) {
		*error_r = "5.6.0 The From: field has no address";
		return -1;
	}
	return 0;
}

static void smtp_arc_sealed(void *context, enum front_dkim_result result,
			    const char *fields, const char *error)
{
	struct smtp_state *state = context;

	state->dkim = NULL;
	if (result == FRONT_DKIM_SIGNED) {
		state->arc_fields = p_strdup(state->tpool, fields);
		log_info(state->conn->id, "smtp.arc_sealed", "domain=%s",
			 log_value(0, state->arc_domain));
	} else if (result != FRONT_DKIM_NO_KEYS || error != NULL) {
		/* A forward is never lost for its seal: ARC only helps the
		   next hop's DMARC (RFC 8617 1), so it goes out unsealed
		   (unlike submission signing, which answers 451). */
		log_info(state->conn->id, "smtp.arc_unsealed", "error=%s",
			 log_value(0, error != NULL ? error : "none"));
	}
	smtp_commit(state);
}

/* RFC 8617 5.1: a message forwarded by an alias to a remote address gets
   an ARC set from the alias's domain (the first forwarding recipient's),
   on the queue's copy only. */
static void smtp_arc_seal(struct smtp_state *state,
			  const struct front_mailauth_result *r)
{
	const char *domain = NULL, *norm, *error;

	for (unsigned int i = 0; i < state->rcpt_count && domain == NULL; i++) {
		const struct smtp_rcpt_entry *e = &state->rcpts[i];

		if (!e->remote && e->forward_count > 0)
			domain = strrchr(e->address, '@');
	}
	if (domain == NULL || r->authserv_id == NULL || r->results == NULL) {
		smtp_commit(state);
		return;
	}
	if (r->arc_cv == ARC_CHAIN_FAIL) {
		/* RFC 8617 5.1 step 2 / 5.1.2: a chain that arrived broken
		   gets no set from us (a cv=fail set would only say what our
		   Authentication-Results already says). */
		log_info(state->conn->id, "smtp.arc_unsealed", "error=%s",
			 log_value(0, "the chain arrived cv=fail"));
		smtp_commit(state);
		return;
	}
	norm = mail_domain_normalize(state->tpool, domain + 1, &error);
	state->arc_domain = norm != NULL ? norm : domain + 1;
	state->dkim = front_dkim_arc_seal_start(
		state->arc_domain, state->msg, state->msg_len, r->authserv_id,
		r->results, r->arc_cv, smtp_arc_sealed, state);
}

static void smtp_auth_done(void *context, const struct front_mailauth_result *r)
{
	struct smtp_state *state = context;

	log_info(state->conn->id, "smtp.auth", "%s action=%s", r->summary,
		 r->action == FRONT_MAILAUTH_REJECT     ? "reject"
		 : r->action == FRONT_MAILAUTH_TEMPFAIL ? "tempfail"
		 : r->action == FRONT_MAILAUTH_JUNK     ? "junk"
							: "accept");
	switch (r->action) {
	case FRONT_MAILAUTH_REJECT:
		smtp_answer_later(state, smtp_server_message_reply, 550,
				  r->reply);
		return;
	case FRONT_MAILAUTH_TEMPFAIL:
		smtp_answer_later(state, smtp_server_message_reply, 451,
				  r->reply);
		return;
	case FRONT_MAILAUTH_JUNK:
		state->auth_junk = true;
		break;
	case FRONT_MAILAUTH_ACCEPT:
		break;
	}
	/* The message with our Authentication-Results (front_auth owns it
	   until the transaction ends). */
	state->msg = r->msg;
	state->msg_len = r->len;
	smtp_arc_seal(state, r);
}

/* Port 25 (front-mailauth.h): the checks run before anything is durable. */
static void smtp_auth_begin(struct smtp_state *state)
{
	const struct front_mailauth_request req = {
		.client_ip = state->conn->ip,
		.helo = smtp_server_helo_domain(state->server),
		.sender = state->mail.path.address,
		.msg = state->msg,
		.len = state->msg_len,
		.prefix_len = state->prefix_len,
	};

	state->auth = front_mailauth_start(&req, smtp_auth_done, state);
}

static void smtp_message(void *context, const uint8_t *msg, size_t len)
{
	struct smtp_state *state = context;
	const char *error;

	state->msg = msg;
	state->msg_len = len;
	if (state->submission && smtp_collect_from(state, &error) < 0) {
		smtp_server_message_reply(state->server, 550, error);
		return;
	}
	/* Every answer from here on comes from the ioloop. */
	front_conn_pause(state->conn);
	state->msg_pending = true;
	if (state->submission)
		smtp_check_next_from(state);
	else
		smtp_auth_begin(state);
}

static void smtp_reset(void *context)
{
	struct smtp_state *state = context;

	front_dkim_sign_abort(&state->dkim);
	front_delivery_destroy(&state->delivery);
	front_mailauth_free(&state->auth);
	state->msg_pending = false;
	state->auth_junk = false;
	state->arc_fields = NULL;
	memset(&state->mail, 0, sizeof(state->mail));
	state->rcpts = NULL;
	state->rcpt_count = state->rcpt_alloc = 0;
	state->msg = NULL;
	state->msg_len = state->prefix_len = 0;
	state->from_count = state->from_next = 0;
	pool_clear(state->tpool);
}

static void smtp_close(void *context, const char *reason)
{
	struct smtp_state *state = context;

	front_conn_close(state->conn, reason);
}

static const struct smtp_server_callbacks smtp_callbacks = {
	.output = smtp_output,
	.helo = smtp_helo,
	.starttls = smtp_starttls,
	.auth = smtp_auth,
	.auth_response = smtp_auth_response,
	.mail = smtp_mail,
	.rcpt = smtp_rcpt,
	.data_begin = smtp_data_begin,
	.message = smtp_message,
	.reset = smtp_reset,
	.close = smtp_close,
};

/* ---- the front protocol ---- */

static void smtp_greet(struct front_conn *conn)
{
	struct smtp_state *state = conn->proto_state;
	const struct marmot_settings *set = front_global->set;

	state->conn = conn;
	state->submission = smtp_is_submission(conn);
	state->tpool = pool_create("smtp transaction", 4096);
	state->set.hostname = set->hostname;
	state->set.max_message_size = set->smtp_max_message_size;
	state->set.max_recipients = set->smtp_max_recipients;
	state->set.max_errors = set->smtp_max_errors;
	/* RFC 5321 4.5.3.1.4 is 512 with CRLF; 4.5.3.1.8 lets extensions
	   raise it, and RFC 4954 4 AUTH responses need up to 12288. */
	state->set.max_line_length = SMTP_MAX_LINE_EXTENDED;
	state->set.auth_required = state->submission;
	state->set.future_release_max = SMTP_FUTURE_RELEASE_MAX;
	state->server = smtp_server_create(&state->set, &smtp_callbacks, state);
	smtp_server_set_auth_mechs(state->server, front_sasl_mechs());
	if (front_conn_is_tls(conn))
		smtp_server_tls_started(state->server);
	smtp_update_extensions(state);
	/* RFC 5321 4.2 / 4.3.1: 220 <domain> greeting. */
	front_conn_printf(conn, "220 %s ESMTP Marmot\r\n", set->hostname);
}

static size_t smtp_input(struct front_conn *conn, struct span data)
{
	struct smtp_state *state = conn->proto_state;
	size_t n;

	if (state->server == NULL)
		return data.len; /* not greeted yet: nothing is read */
	n = smtp_server_input(state->server, data.p, data.len);
	if (state->starttls_wanted) {
		state->starttls_wanted = false;
		/* Drops the rest of the plaintext (RFC 3207 4.2). */
		if (front_conn_starttls(conn) < 0)
			front_conn_close(conn, "starttls");
		return data.len;
	}
	if (smtp_server_is_paused(state->server))
		front_conn_pause(conn);
	return n;
}

static int smtp_line(struct front_conn *conn, struct span line)
{
	i_unreached(); /* smtp_input() takes all input */
}

static void smtp_line_too_long(struct front_conn *conn)
{
	i_unreached();
}

static void smtp_tls_ready(struct front_conn *conn)
{
	struct smtp_state *state = conn->proto_state;

	/* RFC 3207 4.2: no greeting after the handshake; the client sends
	   EHLO again, and the session forgot everything before. */
	state->account_id = 0;
	smtp_server_tls_started(state->server);
	smtp_update_extensions(state);
}

static void smtp_goodbye(struct front_conn *conn, bool idle)
{
	struct smtp_state *state = conn->proto_state;
	char text[300];

	if (idle) {
		/* RFC 5321 4.5.3.2.7: the server may close idle sessions. */
		snprintf(text, sizeof(text),
			 "4.4.2 %s Idle timeout, closing connection",
			 front_global->set->hostname);
	} else {
		snprintf(text, sizeof(text), "4.3.2 %s Service shutting down",
			 front_global->set->hostname);
	}
	if (state->server != NULL)
		smtp_server_reply(state->server, 421, text);
	else
		front_conn_printf(conn, "421 %s\r\n", text);
}

/* A message is on its way to its answer (250 once durable): the answer
   must go out before any 421, or the client resends a stored message. */
static bool smtp_busy(struct front_conn *conn)
{
	struct smtp_state *state = conn->proto_state;

	return state->msg_pending || state->delivery != NULL ||
	       state->dkim != NULL;
}

static void smtp_deinit(struct front_conn *conn)
{
	struct smtp_state *state = conn->proto_state;

	front_delivery_cancel(state);
	front_dkim_sign_abort(&state->dkim);
	front_delivery_destroy(&state->delivery);
	front_mailauth_free(&state->auth);
	front_sasl_free(&state->sasl);
	smtp_server_destroy(&state->server);
	if (state->tpool != NULL)
		pool_unref(&state->tpool);
}

const struct front_protocol front_protocol_smtp = {
	.name = "smtp",
	.greet = smtp_greet,
	.input = smtp_input,
	.line = smtp_line,
	.line_too_long = smtp_line_too_long,
	.tls_ready = smtp_tls_ready,
	.goodbye = smtp_goodbye,
	.busy = smtp_busy,
	.deinit = smtp_deinit,
	.state_size = sizeof(struct smtp_state),
};
