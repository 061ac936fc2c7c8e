/* smtp-server.c - the I/O-free SMTP server session (smtp-server.h): the
   command table with its state rules, the MAIL/RCPT parameter checks, the
   DATA reader and the BDAT reader. Driven by src/front/front-smtp.c, the
   unit tests and the fuzzer.

   SECURITY: this is where a message's end is decided, so it is decided in
   exactly one way. DATA ends only at <CRLF>.<CRLF> (RFC 5321 4.1.1.4);
   any bare CR or bare LF marks the message bad and it is refused after its
   true end (RFC 5321 2.3.8), so a message can never be split into two by
   bytes another server reads differently. A BDAT chunk is always read to
   its exact length, even when it is refused (RFC 3030 2), so its bytes are
   never taken for commands. Every buffer is bounded before it grows:
   lines by max_line_length, messages by max_message_size. */

#include "lib.h"
#include "buf.h"
#include "smtp-server.h"

#include <stdio.h>
#include <time.h>

enum smtp_server_state {
	SMTP_STATE_GREETING, /* before HELO/EHLO */
	SMTP_STATE_READY, /* after HELO/EHLO, no transaction */
	SMTP_STATE_MAIL, /* MAIL accepted, no recipient yet */
	SMTP_STATE_RCPT, /* at least one recipient accepted */
};

enum smtp_input_mode {
	SMTP_INPUT_LINE, /* commands */
	SMTP_INPUT_AUTH_LINE, /* one line answering a 334 challenge */
	SMTP_INPUT_DATA, /* after 354 */
	SMTP_INPUT_BDAT, /* the bytes of a BDAT chunk */
	SMTP_INPUT_TLS_WAIT, /* after STARTTLS: everything is discarded */
	SMTP_INPUT_CLOSED, /* after 221/421: everything is discarded */
};

enum smtp_pending {
	SMTP_PENDING_NONE,
	SMTP_PENDING_MAIL,
	SMTP_PENDING_RCPT,
	SMTP_PENDING_AUTH,
	SMTP_PENDING_MESSAGE,
};

/* Where the DATA reader is relative to the last line break. */
enum smtp_data_state {
	SMTP_DATA_BOL, /* right after CRLF (or at the start of data) */
	SMTP_DATA_TEXT, /* inside a line */
	SMTP_DATA_CR, /* after a CR inside a line */
	SMTP_DATA_DOT, /* "." at the start of a line */
	SMTP_DATA_DOT_CR, /* ".<CR>" at the start of a line */
};

struct smtp_server {
	struct smtp_server_settings set;
	char *hostname;
	const struct smtp_server_callbacks *cb;
	void *context;
	unsigned int ext;
	char *auth_mechs;

	enum smtp_server_state state;
	enum smtp_input_mode mode;
	enum smtp_pending pending;
	bool ehlo, authenticated, tls;
	unsigned int errors;
	char helo[SMTP_MAX_DOMAIN + 1];

	struct buf line;

	/* The transaction. */
	struct smtp_mail mail;
	struct smtp_rcpt rcpt; /* the one being answered */
	unsigned int rcpt_count;
	bool data_started; /* DATA or the first BDAT was accepted */
	bool chunking; /* ... and it was BDAT */
	bool bdat_failed; /* a BDAT failed: discard chunks until LAST */
	struct buf msg; /* prefix + message */
	uint64_t body_size; /* octets of message data seen */
	bool too_big, bare_line_end;
	enum smtp_data_state dstate;

	/* The BDAT chunk being read. */
	uint64_t bdat_left;
	bool bdat_last;
	bool bdat_prev_cr; /* the previous chunk byte was a CR */
	/* The chunk is read and dropped, then refused with this reply. */
	bool bdat_discard;
	unsigned int bdat_refuse_code;
	const char *bdat_refuse_text;
};

struct smtp_server_command {
	const char *verb;
	enum {
		SMTP_CMD_ANY = 0,
		SMTP_CMD_NEEDS_HELO = 0x01,
	} flags;
	void (*handler)(struct smtp_server *s, struct span args);
};

static void smtp_server_close(struct smtp_server *s, const char *reason)
{
	if (s->mode == SMTP_INPUT_CLOSED)
		return;
	s->mode = SMTP_INPUT_CLOSED;
	s->pending = SMTP_PENDING_NONE;
	if (s->cb->close != NULL)
		s->cb->close(s->context, reason);
}

/* Appends one reply line (RFC 5321 4.2: code, SP or "-", text, CRLF). */
static void smtp_reply_line(struct buf *out, unsigned int code, char sep,
			    const char *text)
{
	i_assert(code >= 200 && code <= 599);
	i_assert(strpbrk(text, "\r\n") == NULL);
	buf_printf(out, "%u%c%s\r\n", code, sep, text);
}

/* Hands a whole reply to output in one call, so that it leaves in one
   segment rather than one per piece. */
static void smtp_server_output(struct smtp_server *s, const struct buf *out)
{
	if (s->mode == SMTP_INPUT_CLOSED)
		return;
	s->cb->output(s->context, buf_span(out).p, out->used);
}

static void smtp_server_send(struct smtp_server *s, unsigned int code, char sep,
			     const char *text)
{
	struct buf b = BUF_INIT;

	smtp_reply_line(&b, code, sep, text);
	smtp_server_output(s, &b);
	buf_free(&b);
}

static void ATTR_FORMAT(3, 4)
	smtp_server_replyf(struct smtp_server *s, unsigned int code,
			   const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list args;

	va_start(args, fmt);
	buf_vprintf(&b, fmt, args);
	va_end(args);
	smtp_server_send(s, code, ' ', buf_cstr(&b));
	buf_free(&b);
}

/* A reply that counts against max_errors (the peer did something wrong). */
static void smtp_server_error(struct smtp_server *s, unsigned int code,
			      const char *text)
{
	smtp_server_send(s, code, ' ', text);
	if (code < 500 || s->set.max_errors == 0)
		return;
	if (++s->errors >= s->set.max_errors) {
		smtp_server_replyf(s, 421,
				   "4.7.0 %s Too many errors, closing "
				   "connection",
				   s->hostname);
		smtp_server_close(s, "too many errors");
	}
}

static void ATTR_FORMAT(3, 4)
	smtp_server_errorf(struct smtp_server *s, unsigned int code,
			   const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list args;

	va_start(args, fmt);
	buf_vprintf(&b, fmt, args);
	va_end(args);
	smtp_server_error(s, code, buf_cstr(&b));
	buf_free(&b);
}

static void smtp_server_transaction_reset(struct smtp_server *s)
{
	bool had = s->state >= SMTP_STATE_MAIL || s->data_started;

	if (s->state > SMTP_STATE_READY)
		s->state = SMTP_STATE_READY;
	memset(&s->mail, 0, sizeof(s->mail));
	memset(&s->rcpt, 0, sizeof(s->rcpt));
	s->rcpt_count = 0;
	s->data_started = false;
	s->chunking = false;
	s->bdat_failed = false;
	s->bdat_prev_cr = false;
	s->body_size = 0;
	s->too_big = false;
	s->bare_line_end = false;
	/* Keep a modest buffer for the next message, not a huge one. */
	if (s->msg.alloc > 1024 * 1024)
		buf_free(&s->msg);
	else
		buf_reset(&s->msg);
	if (had && s->cb->reset != NULL)
		s->cb->reset(s->context);
}

struct smtp_server *smtp_server_create(
	const struct smtp_server_settings *settings,
	const struct smtp_server_callbacks *callbacks, void *context)
{
	struct smtp_server *s = i_new(struct smtp_server, 1);

	i_assert(callbacks->output != NULL);
	s->set = *settings;
	s->hostname = i_strdup(settings->hostname);
	s->set.hostname = s->hostname;
	if (s->set.max_line_length == 0)
		s->set.max_line_length = SMTP_MAX_LINE_EXTENDED;
	if (s->set.max_recipients == 0)
		s->set.max_recipients = 100;
	s->cb = callbacks;
	s->context = context;
	s->auth_mechs = i_strdup("");
	return s;
}

void smtp_server_destroy(struct smtp_server **_s)
{
	struct smtp_server *s = *_s;

	*_s = NULL;
	if (s == NULL)
		return;
	buf_free_secure(&s->line);
	buf_free(&s->msg);
	i_free(s->hostname);
	i_free(s->auth_mechs);
	i_free(s);
}

void smtp_server_set_extensions(struct smtp_server *s, unsigned int ext)
{
	s->ext = ext;
}

void smtp_server_set_auth_mechs(struct smtp_server *s, const char *mechs)
{
	i_free(s->auth_mechs);
	s->auth_mechs = i_strdup(mechs);
}

static int64_t smtp_server_now(const struct smtp_server *s)
{
	return s->set.now != NULL ? s->set.now() : (int64_t)time(NULL);
}

/* ---- commands ---- */

static bool smtp_cmd_ehlo_common(struct smtp_server *s, struct span args,
				 bool ehlo)
{
	struct span domain;

	span_split(args, ' ', &domain, &args);
	if (domain.len == 0) {
		smtp_server_error(s, 501,
				  ehlo ? "5.5.4 EHLO needs a domain"
				       : "5.5.4 HELO needs a domain");
		return false;
	}
	if (domain.len > SMTP_MAX_DOMAIN)
		domain.len = SMTP_MAX_DOMAIN;
	/* RFC 5321 4.1.4: EHLO/HELO in a session resets the transaction. */
	smtp_server_transaction_reset(s);
	memcpy(s->helo, domain.p, domain.len);
	s->helo[domain.len] = '\0';
	s->state = SMTP_STATE_READY;
	s->ehlo = ehlo;
	if (s->cb->helo != NULL)
		s->cb->helo(s->context, s->helo, ehlo);
	return true;
}

static void smtp_cmd_helo(struct smtp_server *s, struct span args)
{
	if (smtp_cmd_ehlo_common(s, args, false))
		smtp_server_replyf(s, 250, "%s", s->hostname);
}

static void smtp_server_format_time(int64_t t, char out[32])
{
	struct tm tm;
	time_t tt = (time_t)t;

	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void smtp_cmd_ehlo(struct smtp_server *s, struct span args)
{
	const char *ext[16];
	char size[48], auth[256], future[80], date[32];
	unsigned int n = 0;

	if (!smtp_cmd_ehlo_common(s, args, true))
		return;
	/* RFC 5321 4.1.1.1: 250-domain greeting, then one keyword a line. */
	if ((s->ext & SMTP_EXT_PIPELINING) != 0)
		ext[n++] = "PIPELINING"; /* RFC 2920 3 */
	if ((s->ext & SMTP_EXT_SIZE) != 0) {
		/* RFC 1870 4: SIZE [max]; 0 would mean no fixed limit. */
		snprintf(size, sizeof(size), "SIZE %llu",
			 (unsigned long long)s->set.max_message_size);
		ext[n++] = size;
	}
	if ((s->ext & SMTP_EXT_8BITMIME) != 0)
		ext[n++] = "8BITMIME"; /* RFC 6152 2 */
	if ((s->ext & SMTP_EXT_SMTPUTF8) != 0)
		ext[n++] = "SMTPUTF8"; /* RFC 6531 3.1 */
	if ((s->ext & SMTP_EXT_ENHANCEDSTATUSCODES) != 0)
		ext[n++] = "ENHANCEDSTATUSCODES"; /* RFC 2034 3 */
	if ((s->ext & SMTP_EXT_CHUNKING) != 0)
		ext[n++] = "CHUNKING"; /* RFC 3030 2 */
	if ((s->ext & SMTP_EXT_BINARYMIME) != 0)
		ext[n++] = "BINARYMIME"; /* RFC 3030 3 */
	if ((s->ext & SMTP_EXT_DSN) != 0)
		ext[n++] = "DSN"; /* RFC 3461 4 */
	if ((s->ext & SMTP_EXT_STARTTLS) != 0 && !s->tls)
		ext[n++] = "STARTTLS"; /* RFC 3207 4 */
	if ((s->ext & SMTP_EXT_REQUIRETLS) != 0)
		ext[n++] = "REQUIRETLS"; /* RFC 8689 3 */
	if ((s->ext & SMTP_EXT_AUTH) != 0 && s->auth_mechs[0] != '\0') {
		snprintf(auth, sizeof(auth), "AUTH %s", s->auth_mechs);
		ext[n++] = auth; /* RFC 4954 3 */
	}
	if ((s->ext & SMTP_EXT_FUTURERELEASE) != 0) {
		/* RFC 4865 3: max-future-release-interval and the latest
		   release date-time it implies. */
		smtp_server_format_time(
			smtp_server_now(s) + s->set.future_release_max, date);
		snprintf(future, sizeof(future), "FUTURERELEASE %lld %s",
			 (long long)s->set.future_release_max, date);
		ext[n++] = future;
	}
	if (n == 0) {
		smtp_server_replyf(s, 250, "%s Hello %s", s->hostname, s->helo);
		return;
	}
	{
		struct buf b = BUF_INIT, greeting = BUF_INIT;

		buf_printf(&greeting, "%s Hello %s", s->hostname, s->helo);
		smtp_reply_line(&b, 250, '-', buf_cstr(&greeting));
		for (unsigned int i = 0; i < n; i++)
			smtp_reply_line(&b, 250, i + 1 == n ? ' ' : '-',
					ext[i]);
		smtp_server_output(s, &b);
		buf_free(&greeting);
		buf_free(&b);
	}
}

/* RFC 3339 5.6 date-time, as RFC 4865 3 HOLDUNTIL uses it. */
static int smtp_parse_datetime(struct span v, int64_t *t_r)
{
	unsigned int f[6] = { 0 };
	static const unsigned int width[6] = { 4, 2, 2, 2, 2, 2 };
	static const char sep[6] = { '-', '-', 'T', ':', ':', 0 };
	size_t i = 0;
	struct tm tm;
	int64_t offset = 0;

	for (unsigned int k = 0; k < 6; k++) {
		for (unsigned int w = 0; w < width[k]; w++, i++) {
			if (i >= v.len || v.p[i] < '0' || v.p[i] > '9')
				return -1;
			f[k] = f[k] * 10 + (v.p[i] - '0');
		}
		if (sep[k] != 0) {
			if (i >= v.len || (v.p[i] != sep[k] &&
					   !(sep[k] == 'T' && v.p[i] == 't')))
				return -1;
			i++;
		}
	}
	if (i < v.len && v.p[i] == '.') {
		/* time-secfrac: ignored. */
		for (i++; i < v.len && v.p[i] >= '0' && v.p[i] <= '9'; i++)
			;
	}
	if (i < v.len && (v.p[i] == 'Z' || v.p[i] == 'z')) {
		i++;
	} else if (i + 6 == v.len && (v.p[i] == '+' || v.p[i] == '-') &&
		   v.p[i + 3] == ':') {
		int hh = 0, mm = 0;

		for (unsigned int k = 1; k <= 5; k++) {
			if (k == 3)
				continue;
			if (v.p[i + k] < '0' || v.p[i + k] > '9')
				return -1;
		}
		hh = (v.p[i + 1] - '0') * 10 + (v.p[i + 2] - '0');
		mm = (v.p[i + 4] - '0') * 10 + (v.p[i + 5] - '0');
		if (hh > 23 || mm > 59)
			return -1;
		offset = (hh * 60 + mm) * 60;
		if (v.p[i] == '-')
			offset = -offset;
		i += 6;
	} else {
		return -1;
	}
	if (i != v.len || f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 ||
	    f[3] > 23 || f[4] > 59 || f[5] > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (int)f[0] - 1900;
	tm.tm_mon = (int)f[1] - 1;
	tm.tm_mday = (int)f[2];
	tm.tm_hour = (int)f[3];
	tm.tm_min = (int)f[4];
	tm.tm_sec = (int)f[5];
	*t_r = (int64_t)timegm(&tm) - offset;
	return 0;
}

/* Checks one MAIL parameter against the enabled extensions. Returns 0, or
   -1 after replying. */
static int smtp_mail_param(struct smtp_server *s, const struct smtp_param *p)
{
	struct smtp_mail *m = &s->mail;
	struct span k = p->keyword, v = p->value;
	uint64_t num;

	if (span_eq_ci(k, SPAN_LIT("SIZE")) && (s->ext & SMTP_EXT_SIZE)) {
		/* RFC 1870 6: size-value = 1*20DIGIT */
		if (!p->has_value || v.len > 20 ||
		    span_to_u64(v, UINT64_MAX, &num) < 0) {
			smtp_server_error(s, 501, "5.5.4 Bad SIZE value");
			return -1;
		}
		m->size = num;
		return 0;
	}
	if (span_eq_ci(k, SPAN_LIT("BODY"))) {
		/* RFC 6152 2 (7BIT, 8BITMIME), RFC 3030 3 (BINARYMIME) */
		if (p->has_value && span_eq_ci(v, SPAN_LIT("7BIT")))
			m->body = SMTP_BODY_7BIT;
		else if (p->has_value && span_eq_ci(v, SPAN_LIT("8BITMIME")) &&
			 (s->ext & SMTP_EXT_8BITMIME) != 0)
			m->body = SMTP_BODY_8BITMIME;
		else if (p->has_value &&
			 span_eq_ci(v, SPAN_LIT("BINARYMIME")) &&
			 (s->ext & SMTP_EXT_BINARYMIME) != 0)
			m->body = SMTP_BODY_BINARYMIME;
		else {
			smtp_server_error(s, 555,
					  "5.5.4 Unsupported BODY value");
			return -1;
		}
		return 0;
	}
	if (span_eq_ci(k, SPAN_LIT("SMTPUTF8")) &&
	    (s->ext & SMTP_EXT_SMTPUTF8) != 0) {
		/* RFC 6531 3.4: the parameter has no value. */
		if (p->has_value) {
			smtp_server_error(s, 501,
					  "5.5.4 SMTPUTF8 takes no value");
			return -1;
		}
		m->smtputf8 = true;
		return 0;
	}
	if (span_eq_ci(k, SPAN_LIT("REQUIRETLS")) &&
	    (s->ext & SMTP_EXT_REQUIRETLS) != 0) {
		/* RFC 8689 4: no value. */
		if (p->has_value) {
			smtp_server_error(s, 501,
					  "5.5.4 REQUIRETLS takes no value");
			return -1;
		}
		m->requiretls = true;
		return 0;
	}
	if (span_eq_ci(k, SPAN_LIT("RET")) && (s->ext & SMTP_EXT_DSN) != 0) {
		/* RFC 3461 4.3: RET=FULL / RET=HDRS */
		if (p->has_value && span_eq_ci(v, SPAN_LIT("FULL")))
			m->ret = SMTP_RET_FULL;
		else if (p->has_value && span_eq_ci(v, SPAN_LIT("HDRS")))
			m->ret = SMTP_RET_HDRS;
		else {
			smtp_server_error(s, 501, "5.5.4 Bad RET value");
			return -1;
		}
		return 0;
	}
	if (span_eq_ci(k, SPAN_LIT("ENVID")) && (s->ext & SMTP_EXT_DSN) != 0) {
		/* RFC 3461 4.4: xtext, at most 100 characters. */
		if (!p->has_value || v.len > 100 ||
		    smtp_xtext_decode(v, m->envid, sizeof(m->envid)) < 0) {
			smtp_server_error(s, 501, "5.5.4 Bad ENVID value");
			return -1;
		}
		return 0;
	}
	if (span_eq_ci(k, SPAN_LIT("AUTH")) && (s->ext & SMTP_EXT_AUTH) != 0) {
		/* RFC 4954 5: AUTH=mailbox or <>; we trust only our own
		   login, so the value is checked for syntax and dropped. */
		char tmp[SMTP_MAX_PATH * 2];

		if (!p->has_value ||
		    smtp_xtext_decode(v, tmp, sizeof(tmp)) < 0) {
			smtp_server_error(s, 501, "5.5.4 Bad AUTH value");
			return -1;
		}
		return 0;
	}
	if ((span_eq_ci(k, SPAN_LIT("HOLDFOR")) ||
	     span_eq_ci(k, SPAN_LIT("HOLDUNTIL"))) &&
	    (s->ext & SMTP_EXT_FUTURERELEASE) != 0) {
		int64_t now = smtp_server_now(s), until;

		if (m->hold_until != 0) {
			/* RFC 4865 3: HOLDFOR and HOLDUNTIL exclude each
			   other. */
			smtp_server_error(s, 501,
					  "5.5.4 Only one of HOLDFOR and "
					  "HOLDUNTIL");
			return -1;
		}
		if (span_eq_ci(k, SPAN_LIT("HOLDFOR"))) {
			/* RFC 4865 3: holdfor-value = 1*9DIGIT seconds */
			if (!p->has_value || v.len > 9 ||
			    span_to_u64(v, 999999999, &num) < 0) {
				smtp_server_error(s, 501,
						  "5.5.4 Bad HOLDFOR value");
				return -1;
			}
			until = now + (int64_t)num;
		} else if (!p->has_value ||
			   smtp_parse_datetime(v, &until) < 0) {
			smtp_server_error(s, 501, "5.5.4 Bad HOLDUNTIL value");
			return -1;
		}
		if (until - now > s->set.future_release_max) {
			/* RFC 4865 5: beyond the advertised maximum. */
			smtp_server_error(s, 501,
					  "5.5.4 Release time is too far in "
					  "the future");
			return -1;
		}
		/* A time in the past releases at once (RFC 4865 3). */
		m->hold_until = until <= now ? now : until;
		return 0;
	}
	/* RFC 5321 4.1.1.11: 555 for parameters not recognised. */
	smtp_server_error(s, 555, "5.5.4 Unsupported parameter");
	return -1;
}

static bool smtp_span_has_8bit(struct span s)
{
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] >= 0x80)
			return true;
	}
	return false;
}

/* "FROM:" / "TO:" then the path; returns the path and the rest. */
static int smtp_path_arg(struct smtp_server *s, struct span args,
			 struct span prefix, enum smtp_path_flags flags,
			 bool sender, struct smtp_path *path,
			 struct span *rest_r)
{
	const char *error;
	bool utf8 = (flags & SMTP_PATH_ALLOW_UTF8) != 0;

	if (!span_starts_with_ci(args, prefix)) {
		smtp_server_error(s, 501,
				  sender ? "5.5.4 Syntax: MAIL FROM:<address>"
					 : "5.5.4 Syntax: RCPT TO:<address>");
		return -1;
	}
	args = span_skip(args, prefix.len);
	/* Deviation from RFC 5321 4.1.2 (no space after the colon): many
	   clients send one, and it cannot change which path is meant. */
	while (args.len > 0 && args.p[0] == ' ')
		args = span_skip(args, 1);
	if (smtp_parse_path(args, flags, path, &error) < 0) {
		if (!utf8 && smtp_span_has_8bit(args)) {
			/* RFC 6531 3.5: 553 5.6.7 for an address that needs
			   SMTPUTF8 in a transaction without it. */
			smtp_server_error(s, 553,
					  "5.6.7 Non-ASCII address needs "
					  "SMTPUTF8");
		} else {
			smtp_server_errorf(s, 501, "%s %s",
					   sender ? "5.1.7" : "5.1.3", error);
		}
		return -1;
	}
	*rest_r = span_skip(args, path->length);
	if (rest_r->len > 0 && rest_r->p[0] != ' ') {
		smtp_server_error(s, 501, "5.5.4 Garbage after the address");
		return -1;
	}
	return 0;
}

static void smtp_cmd_mail(struct smtp_server *s, struct span args)
{
	struct smtp_param params[SMTP_MAX_PARAMS];
	unsigned int count;
	const char *error;
	struct span rest;
	enum smtp_path_flags flags =
		SMTP_PATH_ALLOW_NULL | SMTP_PATH_ALLOW_ROUTE;

	if (s->state >= SMTP_STATE_MAIL || s->data_started) {
		smtp_server_error(s, 503, "5.5.1 Nested MAIL command");
		return;
	}
	if (s->set.auth_required && !s->authenticated) {
		/* RFC 4954 6: 530 5.7.0 Authentication required */
		smtp_server_error(s, 530, "5.7.0 Authentication required");
		return;
	}
	/* UTF-8 is parsed whenever SMTPUTF8 is offered; the parameter that
	   allows it follows the path, so it is checked after. */
	if ((s->ext & SMTP_EXT_SMTPUTF8) != 0)
		flags |= SMTP_PATH_ALLOW_UTF8;
	memset(&s->mail, 0, sizeof(s->mail));
	if (smtp_path_arg(s, args, SPAN_LIT("FROM:"), flags, true,
			  &s->mail.path, &rest) < 0)
		return;
	if (smtp_parse_params(rest, (flags & SMTP_PATH_ALLOW_UTF8) != 0, params,
			      N_ELEMENTS(params), &count, &error) < 0) {
		smtp_server_errorf(s, 501, "5.5.4 %s", error);
		return;
	}
	for (unsigned int i = 0; i < count; i++) {
		if (smtp_mail_param(s, &params[i]) < 0) {
			memset(&s->mail, 0, sizeof(s->mail));
			return;
		}
	}
	if (s->mail.path.utf8 && !s->mail.smtputf8) {
		/* RFC 6531 3.5 */
		smtp_server_error(s, 553,
				  "5.6.7 Non-ASCII address needs SMTPUTF8");
		memset(&s->mail, 0, sizeof(s->mail));
		return;
	}
	if (s->set.max_message_size > 0 &&
	    s->mail.size > s->set.max_message_size) {
		/* RFC 1870 6.1: 552 when the declared size is over the limit */
		smtp_server_error(s, 552,
				  "5.3.4 Message size exceeds fixed maximum "
				  "message size");
		memset(&s->mail, 0, sizeof(s->mail));
		return;
	}
	s->pending = SMTP_PENDING_MAIL;
	s->cb->mail(s->context, &s->mail);
}

/* RFC 3461 4.1: NOTIFY="NEVER" / 1#("SUCCESS" / "FAILURE" / "DELAY") */
static int smtp_parse_notify(struct span v, unsigned int *notify_r)
{
	unsigned int notify = 0;
	struct span item;
	bool more;

	if (span_eq_ci(v, SPAN_LIT("NEVER"))) {
		*notify_r = SMTP_NOTIFY_NEVER;
		return 0;
	}
	do {
		unsigned int bit;

		more = span_split(v, ',', &item, &v);
		if (span_eq_ci(item, SPAN_LIT("SUCCESS")))
			bit = SMTP_NOTIFY_SUCCESS;
		else if (span_eq_ci(item, SPAN_LIT("FAILURE")))
			bit = SMTP_NOTIFY_FAILURE;
		else if (span_eq_ci(item, SPAN_LIT("DELAY")))
			bit = SMTP_NOTIFY_DELAY;
		else
			return -1;
		if ((notify & bit) != 0)
			return -1;
		notify |= bit;
	} while (more);
	*notify_r = notify;
	return 0;
}

static void smtp_cmd_rcpt(struct smtp_server *s, struct span args)
{
	struct smtp_param params[SMTP_MAX_PARAMS];
	struct smtp_rcpt *r = &s->rcpt;
	unsigned int count;
	const char *error;
	struct span rest;
	enum smtp_path_flags flags = SMTP_PATH_ALLOW_POSTMASTER;

	if (s->state < SMTP_STATE_MAIL || s->data_started) {
		smtp_server_error(s, 503, "5.5.1 MAIL first");
		return;
	}
	if (s->rcpt_count >= s->set.max_recipients) {
		/* RFC 5321 4.5.3.1.10: 452 and the client sends the rest in
		   another transaction. Not an error of the peer. */
		smtp_server_send(s, 452, ' ', "4.5.3 Too many recipients");
		return;
	}
	if (s->mail.smtputf8)
		flags |= SMTP_PATH_ALLOW_UTF8;
	memset(r, 0, sizeof(*r));
	/* No SMTP_PATH_ALLOW_ROUTE: a route on a recipient is refused. */
	if (smtp_path_arg(s, args, SPAN_LIT("TO:"), flags, false, &r->path,
			  &rest) < 0)
		return;
	if (smtp_parse_params(rest, s->mail.smtputf8, params,
			      N_ELEMENTS(params), &count, &error) < 0) {
		smtp_server_errorf(s, 501, "5.5.4 %s", error);
		return;
	}
	for (unsigned int i = 0; i < count; i++) {
		struct span k = params[i].keyword, v = params[i].value;

		if ((s->ext & SMTP_EXT_DSN) != 0 &&
		    span_eq_ci(k, SPAN_LIT("NOTIFY"))) {
			if (!params[i].has_value ||
			    smtp_parse_notify(v, &r->notify) < 0) {
				smtp_server_error(s, 501,
						  "5.5.4 Bad NOTIFY value");
				return;
			}
		} else if ((s->ext & SMTP_EXT_DSN) != 0 &&
			   span_eq_ci(k, SPAN_LIT("ORCPT"))) {
			/* RFC 3461 4.2: addr-type ";" xtext, <= 500 chars */
			if (!params[i].has_value || v.len > 500 ||
			    smtp_xtext_decode(v, r->orcpt, sizeof(r->orcpt)) <
				    0 ||
			    strchr(r->orcpt, ';') == NULL ||
			    r->orcpt[0] == ';') {
				smtp_server_error(s, 501,
						  "5.5.4 Bad ORCPT value");
				return;
			}
		} else {
			smtp_server_error(s, 555,
					  "5.5.4 Unsupported parameter");
			return;
		}
	}
	s->pending = SMTP_PENDING_RCPT;
	s->cb->rcpt(s->context, r);
}

/* The reply to DATA or BDAT when the transaction cannot take data, or
   NULL when it can. */
static const char *smtp_data_refusal(struct smtp_server *s,
				     unsigned int *code_r)
{
	*code_r = 503;
	if (s->state == SMTP_STATE_READY)
		return "5.5.1 MAIL first";
	if (s->state == SMTP_STATE_MAIL) {
		/* RFC 2920 3.1: 554 when no recipient was accepted. */
		*code_r = 554;
		return "5.5.1 No valid recipients";
	}
	return NULL;
}

static void smtp_cmd_data(struct smtp_server *s, struct span args)
{
	unsigned int code;
	const char *refusal = smtp_data_refusal(s, &code);

	if (refusal != NULL) {
		smtp_server_error(s, code, refusal);
		return;
	}
	if (s->data_started) {
		/* RFC 3030 2: DATA after BDAT in one transaction is 503. */
		smtp_server_error(s, 503, "5.5.1 DATA after BDAT");
		return;
	}
	if (s->mail.body == SMTP_BODY_BINARYMIME) {
		/* RFC 3030 3: BINARYMIME data goes with BDAT only. */
		smtp_server_error(s, 503,
				  "5.5.1 BODY=BINARYMIME requires BDAT");
		return;
	}
	if (args.len > 0) {
		smtp_server_error(s, 501, "5.5.4 Syntax: DATA");
		return;
	}
	s->data_started = true;
	if (s->cb->data_begin != NULL)
		s->cb->data_begin(s->context);
	/* RFC 5321 4.1.1.4: the data starts right after the DATA line, as
	   if at the start of a line. */
	s->dstate = SMTP_DATA_BOL;
	s->mode = SMTP_INPUT_DATA;
	smtp_server_send(s, 354, ' ', "End data with <CR><LF>.<CR><LF>");
}

static void smtp_bdat_chunk_end(struct smtp_server *s);

static void smtp_cmd_bdat(struct smtp_server *s, struct span args)
{
	struct span size, last;
	uint64_t n;
	const char *refusal;
	unsigned int code;

	/* RFC 3030 2: bdat-cmd ::= "BDAT" SP chunk-size [ SP end-marker ] */
	span_split(args, ' ', &size, &last);
	if (size.len == 0 || size.len > 19 ||
	    span_to_u64(size, UINT64_MAX / 2, &n) < 0 ||
	    (last.len > 0 && !span_eq_ci(last, SPAN_LIT("LAST")))) {
		/* The chunk length is unknown: its bytes can only be read as
		   commands, which is what the client asked for. */
		smtp_server_error(s, 501, "5.5.4 Syntax: BDAT size [LAST]");
		return;
	}
	s->bdat_left = n;
	s->bdat_last = last.len > 0;
	s->bdat_discard = false;
	refusal = smtp_data_refusal(s, &code);
	if (refusal == NULL && s->data_started && !s->chunking) {
		code = 503;
		refusal = "5.5.1 BDAT after DATA";
	}
	if (refusal == NULL && s->bdat_failed) {
		/* RFC 3030 2: discard chunks already pipelined after a
		   failed BDAT. */
		code = 554;
		refusal = "5.5.0 Chunk discarded after an earlier failure";
	}
	if (refusal != NULL) {
		s->bdat_discard = true;
		s->bdat_refuse_code = code;
		s->bdat_refuse_text = refusal;
	} else if (!s->data_started) {
		s->data_started = true;
		s->chunking = true;
		if (s->cb->data_begin != NULL)
			s->cb->data_begin(s->context);
	}
	if (n == 0) {
		smtp_bdat_chunk_end(s);
		return;
	}
	s->mode = SMTP_INPUT_BDAT;
}

static void smtp_cmd_rset(struct smtp_server *s, struct span args)
{
	/* RFC 5321 4.1.1.5 */
	smtp_server_transaction_reset(s);
	smtp_server_send(s, 250, ' ', "2.0.0 OK");
}

static void smtp_cmd_noop(struct smtp_server *s, struct span args)
{
	/* RFC 5321 4.1.1.9: any argument is ignored. */
	smtp_server_send(s, 250, ' ', "2.0.0 OK");
}

static void smtp_cmd_vrfy(struct smtp_server *s, struct span args)
{
	/* RFC 5321 3.5.3: 252 when we won't verify but would accept. */
	smtp_server_send(s, 252, ' ',
			 "2.5.0 Cannot VRFY user, but will accept message "
			 "and attempt delivery");
}

static void smtp_cmd_expn(struct smtp_server *s, struct span args)
{
	/* RFC 5321 7.3: list expansion is a disclosure; not offered. */
	smtp_server_error(s, 502, "5.5.1 EXPN not available");
}

static void smtp_cmd_help(struct smtp_server *s, struct span args)
{
	smtp_server_send(s, 214, ' ',
			 "2.0.0 See https://www.rfc-editor.org/rfc/rfc5321");
}

static void smtp_cmd_quit(struct smtp_server *s, struct span args)
{
	/* RFC 5321 4.1.1.10 */
	smtp_server_replyf(s, 221, "2.0.0 %s Bye", s->hostname);
	smtp_server_close(s, "quit");
}

static void smtp_cmd_starttls(struct smtp_server *s, struct span args)
{
	if (s->tls) {
		smtp_server_error(s, 503, "5.5.1 TLS already active");
		return;
	}
	if ((s->ext & SMTP_EXT_STARTTLS) == 0 || s->cb->starttls == NULL) {
		smtp_server_error(s, 502, "5.5.1 STARTTLS not available");
		return;
	}
	if (args.len > 0) {
		/* RFC 3207 4: STARTTLS takes no parameters. */
		smtp_server_error(s, 501, "5.5.4 Syntax: STARTTLS");
		return;
	}
	smtp_server_send(s, 220, ' ', "2.0.0 Ready to start TLS");
	smtp_server_transaction_reset(s);
	s->mode = SMTP_INPUT_TLS_WAIT;
	s->cb->starttls(s->context);
}

static void smtp_cmd_auth(struct smtp_server *s, struct span args)
{
	struct span mech, initial;
	char *mech_str, *initial_str = NULL;

	if (s->cb->auth == NULL) {
		smtp_server_error(s, 502, "5.5.1 AUTH not available");
		return;
	}
	if (s->authenticated) {
		/* RFC 4954 4: no AUTH after a successful one. */
		smtp_server_error(s, 503, "5.5.1 Already authenticated");
		return;
	}
	if (s->state >= SMTP_STATE_MAIL || s->data_started) {
		/* RFC 4954 4: not permitted during a mail transaction. */
		smtp_server_error(s, 503,
				  "5.5.1 AUTH not permitted during a mail "
				  "transaction");
		return;
	}
	span_split(args, ' ', &mech, &initial);
	if (mech.len == 0 || mech.len > 20) {
		smtp_server_error(s, 501, "5.5.4 Syntax: AUTH mechanism");
		return;
	}
	mech_str = i_strndup(mech.p, mech.len);
	if (initial.len > 0)
		initial_str = i_strndup(initial.p, initial.len);
	s->pending = SMTP_PENDING_AUTH;
	s->cb->auth(s->context, mech_str, initial_str);
	i_free(mech_str);
	if (initial_str != NULL) {
		safe_memset0(initial_str, initial.len);
		i_free(initial_str);
	}
}

static const struct smtp_server_command smtp_server_commands[] = {
	{ "EHLO", SMTP_CMD_ANY, smtp_cmd_ehlo },
	{ "HELO", SMTP_CMD_ANY, smtp_cmd_helo },
	{ "MAIL", SMTP_CMD_NEEDS_HELO, smtp_cmd_mail },
	{ "RCPT", SMTP_CMD_NEEDS_HELO, smtp_cmd_rcpt },
	{ "DATA", SMTP_CMD_NEEDS_HELO, smtp_cmd_data },
	{ "BDAT", SMTP_CMD_NEEDS_HELO, smtp_cmd_bdat },
	{ "RSET", SMTP_CMD_ANY, smtp_cmd_rset },
	{ "NOOP", SMTP_CMD_ANY, smtp_cmd_noop },
	{ "QUIT", SMTP_CMD_ANY, smtp_cmd_quit },
	{ "VRFY", SMTP_CMD_ANY, smtp_cmd_vrfy },
	{ "EXPN", SMTP_CMD_ANY, smtp_cmd_expn },
	{ "HELP", SMTP_CMD_ANY, smtp_cmd_help },
	{ "STARTTLS", SMTP_CMD_NEEDS_HELO, smtp_cmd_starttls },
	{ "AUTH", SMTP_CMD_NEEDS_HELO, smtp_cmd_auth },
};

static void smtp_server_command_line(struct smtp_server *s, struct span line)
{
	struct smtp_command cmd;
	const char *error;

	if (smtp_command_parse(line, &cmd, &error) < 0) {
		smtp_server_errorf(s, 500, "5.5.2 %s", error);
		return;
	}
	for (unsigned int i = 0; i < N_ELEMENTS(smtp_server_commands); i++) {
		const struct smtp_server_command *def =
			&smtp_server_commands[i];

		if (!span_eq_ci(cmd.verb, span_from_cstr(def->verb)))
			continue;
		if ((def->flags & SMTP_CMD_NEEDS_HELO) != 0 &&
		    s->state == SMTP_STATE_GREETING) {
			/* RFC 5321 4.1.4: EHLO or HELO first. BDAT's chunk
			   cannot be skipped without a known state; the client
			   broke the sequence and gets its bytes as commands,
			   as with any unknown command. */
			smtp_server_error(s, 503, "5.5.1 Send EHLO first");
			return;
		}
		def->handler(s, cmd.args);
		return;
	}
	smtp_server_error(s, 500, "5.5.2 Syntax error, command unrecognized");
}

/* ---- input ---- */

static void smtp_server_line(struct smtp_server *s, struct span line)
{
	if (s->mode == SMTP_INPUT_AUTH_LINE) {
		char *copy = i_strndup(line.p, line.len);

		s->mode = SMTP_INPUT_LINE;
		s->pending = SMTP_PENDING_AUTH;
		s->cb->auth_response(s->context, copy);
		safe_memset0(copy, line.len);
		i_free(copy);
		return;
	}
	smtp_server_command_line(s, line);
}

static size_t smtp_input_line(struct smtp_server *s, const uint8_t *p,
			      size_t len)
{
	const uint8_t *lf = memchr(p, '\n', len);
	size_t take = lf != NULL ? (size_t)(lf - p) + 1 : len;
	size_t content = lf != NULL ? take - 1 : take;
	struct span line;

	/* +1: room for the CR of the CRLF */
	if (s->line.used + content > s->set.max_line_length + 1 ||
	    (lf != NULL && s->line.used + content > s->set.max_line_length &&
	     (content == 0 || p[content - 1] != '\r'))) {
		/* RFC 5321 4.5.3.1.4 / 4.2.2: 500 line too long. A line this
		   far past the bound (16 KiB by default, 32 times RFC 5321's
		   512) is not SMTP: the session ends rather than reading on
		   to a line end that may never come. */
		buf_free_secure(&s->line);
		smtp_server_send(s, 500, ' ', "5.5.2 Line too long");
		smtp_server_replyf(s, 421,
				   "4.7.0 %s Line too long, closing connection",
				   s->hostname);
		smtp_server_close(s, "line too long");
		return len;
	}
	buf_append(&s->line, p, content);
	if (lf == NULL)
		return take;
	line = buf_span(&s->line);
	/* RFC 5321 2.3.8: lines end in CRLF; a lone LF ending a command is
	   accepted (no data is at stake), a CR anywhere else is refused by
	   smtp_command_parse(). */
	if (line.len > 0 && line.p[line.len - 1] == '\r')
		line.len--;
	smtp_server_line(s, line);
	/* The line may have held an AUTH secret. */
	safe_memset0(s->line.data, s->line.alloc);
	buf_reset(&s->line);
	return take;
}

static void smtp_message_append(struct smtp_server *s, const uint8_t *p,
				size_t n)
{
	s->body_size += n;
	if (s->set.max_message_size > 0 &&
	    s->body_size > s->set.max_message_size) {
		/* Counted while reading (RFC 1870 6.3): stop storing, keep
		   reading to the end, refuse then. */
		if (!s->too_big) {
			s->too_big = true;
			buf_free(&s->msg);
		}
		return;
	}
	if (!s->bare_line_end)
		buf_append(&s->msg, p, n);
}

static void smtp_message_done(struct smtp_server *s)
{
	if (s->too_big) {
		/* RFC 1870 6.3 / RFC 5321 4.5.3.1.10 */
		smtp_server_error(s, 552,
				  "5.3.4 Message size exceeds fixed maximum "
				  "message size");
		smtp_server_transaction_reset(s);
		return;
	}
	if (s->bare_line_end) {
		/* RFC 5321 2.3.8: CR and LF only as CRLF. The message is
		   refused whole, after its real end: nothing of it is kept
		   and nothing after it was taken for commands. */
		smtp_server_error(s, 550,
				  "5.6.11 Bare CR or LF in message data, "
				  "lines must end with CRLF");
		smtp_server_transaction_reset(s);
		return;
	}
	s->pending = SMTP_PENDING_MESSAGE;
	s->cb->message(s->context,
		       s->msg.data == NULL ? (const uint8_t *)""
					   : buf_span(&s->msg).p,
		       s->msg.used);
}

/* The DATA reader (RFC 5321 4.1.1.4, 4.5.2). Returns the bytes taken. */
static size_t smtp_input_data(struct smtp_server *s, const uint8_t *p,
			      size_t len)
{
	static const uint8_t cr = '\r', lf = '\n';
	size_t i = 0;

	while (i < len) {
		uint8_t c = p[i];

		switch (s->dstate) {
		case SMTP_DATA_BOL:
			if (c == '.') {
				s->dstate = SMTP_DATA_DOT;
				i++;
				continue;
			}
			break;
		case SMTP_DATA_DOT:
			if (c == '\r') {
				s->dstate = SMTP_DATA_DOT_CR;
				i++;
				continue;
			}
			/* RFC 5321 4.5.2: a leading "." with more on the
			   line is removed. */
			break;
		case SMTP_DATA_DOT_CR:
			if (c == '\n') {
				/* <CRLF>.<CRLF>: the only end of data. */
				s->mode = SMTP_INPUT_LINE;
				smtp_message_done(s);
				return i + 1;
			}
			/* ".<CR>x": the CR is bare; the data goes on. */
			s->bare_line_end = true;
			smtp_message_append(s, &cr, 1);
			break;
		case SMTP_DATA_CR:
			if (c == '\n') {
				smtp_message_append(s, &lf, 1);
				s->dstate = SMTP_DATA_BOL;
				i++;
				continue;
			}
			s->bare_line_end = true;
			break;
		case SMTP_DATA_TEXT:
			break;
		}
		/* Inside a line: take the run up to the next CR or LF. */
		if (c == '\r') {
			smtp_message_append(s, &cr, 1);
			s->dstate = SMTP_DATA_CR;
			i++;
		} else if (c == '\n') {
			/* A bare LF ends nothing: we stay inside the line,
			   so "\n.\n", "\n.\r\n" etc. are just data. */
			s->bare_line_end = true;
			smtp_message_append(s, &lf, 1);
			s->dstate = SMTP_DATA_TEXT;
			i++;
		} else {
			size_t start = i;

			while (i < len && p[i] != '\r' && p[i] != '\n')
				i++;
			smtp_message_append(s, p + start, i - start);
			s->dstate = SMTP_DATA_TEXT;
		}
	}
	return len;
}

static void smtp_bdat_chunk_end(struct smtp_server *s)
{
	s->mode = SMTP_INPUT_LINE;
	if (s->bdat_discard) {
		smtp_server_error(s, s->bdat_refuse_code, s->bdat_refuse_text);
		if (s->bdat_last && s->bdat_failed)
			smtp_server_transaction_reset(s);
		return;
	}
	if (s->too_big) {
		smtp_server_error(s, 552,
				  "5.3.4 Message size exceeds fixed maximum "
				  "message size");
		if (s->bdat_last)
			smtp_server_transaction_reset(s);
		else
			s->bdat_failed = true;
		return;
	}
	if (!s->bdat_last) {
		/* RFC 3030 2: a 250 for every chunk. */
		smtp_server_replyf(s, 250, "2.0.0 %llu octets received",
				   (unsigned long long)s->body_size);
		return;
	}
	if (s->bdat_prev_cr && s->mail.body != SMTP_BODY_BINARYMIME) {
		/* The message ended in a CR with no LF. */
		s->bare_line_end = true;
	}
	smtp_message_done(s);
}

/* The BDAT reader (RFC 3030 2): exactly bdat_left octets. */
static size_t smtp_input_bdat(struct smtp_server *s, const uint8_t *p,
			      size_t len)
{
	size_t n = len;

	if (n > s->bdat_left)
		n = (size_t)s->bdat_left;
	if (!s->bdat_discard) {
		if (s->mail.body != SMTP_BODY_BINARYMIME && !s->bare_line_end) {
			/* RFC 3030 3: only BINARYMIME may hold bare CR or LF;
			   other messages follow RFC 5321 2.3.8 across chunk
			   boundaries too. */
			for (size_t i = 0; i < n; i++) {
				if (s->bdat_prev_cr != (p[i] == '\n')) {
					s->bare_line_end = true;
					break;
				}
				s->bdat_prev_cr = p[i] == '\r';
			}
		}
		smtp_message_append(s, p, n);
	}
	s->bdat_left -= n;
	if (s->bdat_left == 0)
		smtp_bdat_chunk_end(s);
	return n;
}

size_t smtp_server_input(struct smtp_server *s, const uint8_t *data, size_t len)
{
	size_t pos = 0;

	while (pos < len && s->pending == SMTP_PENDING_NONE) {
		switch (s->mode) {
		case SMTP_INPUT_LINE:
		case SMTP_INPUT_AUTH_LINE:
			pos += smtp_input_line(s, data + pos, len - pos);
			break;
		case SMTP_INPUT_DATA:
			pos += smtp_input_data(s, data + pos, len - pos);
			break;
		case SMTP_INPUT_BDAT:
			pos += smtp_input_bdat(s, data + pos, len - pos);
			break;
		case SMTP_INPUT_TLS_WAIT:
		case SMTP_INPUT_CLOSED:
			/* RFC 3207 4.2: plaintext after STARTTLS is dropped. */
			return len;
		}
	}
	return pos;
}

bool smtp_server_is_paused(const struct smtp_server *s)
{
	return s->pending != SMTP_PENDING_NONE;
}

bool smtp_server_is_closed(const struct smtp_server *s)
{
	return s->mode == SMTP_INPUT_CLOSED;
}

static void smtp_server_answer(struct smtp_server *s, enum smtp_pending what,
			       unsigned int code, const char *text)
{
	if (s->mode == SMTP_INPUT_CLOSED) {
		/* A 421 (idle, shutdown) ended the session while the answer
		   was on its way: nobody is listening any more. */
		return;
	}
	i_assert(s->pending == what);
	s->pending = SMTP_PENDING_NONE;
	if (code >= 400)
		smtp_server_error(s, code, text);
	else
		smtp_server_send(s, code, ' ', text);
}

void smtp_server_mail_reply(struct smtp_server *s, unsigned int code,
			    const char *text)
{
	smtp_server_answer(s, SMTP_PENDING_MAIL, code, text);
	if (code >= 200 && code < 300)
		s->state = SMTP_STATE_MAIL;
	else
		memset(&s->mail, 0, sizeof(s->mail));
}

void smtp_server_rcpt_reply(struct smtp_server *s, unsigned int code,
			    const char *text)
{
	smtp_server_answer(s, SMTP_PENDING_RCPT, code, text);
	if (code >= 200 && code < 300 && s->mode != SMTP_INPUT_CLOSED) {
		s->rcpt_count++;
		s->state = SMTP_STATE_RCPT;
	}
}

void smtp_server_message_reply(struct smtp_server *s, unsigned int code,
			       const char *text)
{
	smtp_server_answer(s, SMTP_PENDING_MESSAGE, code, text);
	/* RFC 5321 4.1.1.4: the transaction ends with the reply. */
	smtp_server_transaction_reset(s);
}

void smtp_server_auth_challenge(struct smtp_server *s,
				const char *challenge_b64)
{
	if (s->mode == SMTP_INPUT_CLOSED)
		return;
	i_assert(s->pending == SMTP_PENDING_AUTH);
	s->pending = SMTP_PENDING_NONE;
	/* RFC 4954 4: "334" SP [base64] */
	smtp_server_send(s, 334, ' ', challenge_b64);
	if (s->mode != SMTP_INPUT_CLOSED)
		s->mode = SMTP_INPUT_AUTH_LINE;
}

void smtp_server_auth_reply(struct smtp_server *s, unsigned int code,
			    const char *text)
{
	smtp_server_answer(s, SMTP_PENDING_AUTH, code, text);
	if (code == 235)
		s->authenticated = true;
}

void smtp_server_tls_started(struct smtp_server *s)
{
	s->tls = true;
	if (s->mode != SMTP_INPUT_TLS_WAIT) {
		/* Implicit TLS (RFC 8314 3.3): nothing to forget. */
		return;
	}
	/* RFC 3207 4.2: discard all knowledge obtained from the client. */
	s->mode = SMTP_INPUT_LINE;
	s->state = SMTP_STATE_GREETING;
	s->ehlo = false;
	s->authenticated = false;
	s->helo[0] = '\0';
	buf_free_secure(&s->line);
}

void smtp_server_message_prepend(struct smtp_server *s, const void *data,
				 size_t len)
{
	i_assert(s->data_started && s->body_size == 0);
	buf_append(&s->msg, data, len);
}

void smtp_server_reply(struct smtp_server *s, unsigned int code,
		       const char *text)
{
	smtp_server_send(s, code, ' ', text);
	if (code == 421) {
		/* RFC 5321 3.8: 421 means the channel is closing. */
		smtp_server_close(s, "421");
	}
}

bool smtp_server_is_ehlo(const struct smtp_server *s)
{
	return s->ehlo;
}

bool smtp_server_is_authenticated(const struct smtp_server *s)
{
	return s->authenticated;
}

const char *smtp_server_helo_domain(const struct smtp_server *s)
{
	return s->helo;
}

const struct smtp_mail *smtp_server_current_mail(const struct smtp_server *s)
{
	return s->state >= SMTP_STATE_MAIL ? &s->mail : NULL;
}

unsigned int smtp_server_rcpt_count(const struct smtp_server *s)
{
	return s->rcpt_count;
}

bool smtp_server_is_chunking(const struct smtp_server *s)
{
	return s->chunking;
}
