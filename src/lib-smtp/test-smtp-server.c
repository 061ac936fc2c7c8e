/* test-smtp-server.c - unit tests for smtp-server.c, driven the way the
   front drives it: bytes in (whole, in small pieces and one at a time),
   replies and events out. Covers the command sequence rules, every
   end-of-data smuggling variant over DATA and BDAT (none may end the data
   or start a second transaction), dot-unstuffing, pipelining with
   asynchronous answers, STARTTLS input discarding, size/recipient/error/
   line limits, AUTH exchanges and the MAIL/RCPT parameters. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "smtp-server.h"

#include <stdio.h>

struct t_ctx {
	struct smtp_server *s;
	struct buf in; /* what the "front" has read but not fed yet */
	struct buf out; /* replies */
	struct buf events; /* one line per callback */
	struct buf msg; /* the last message */
	unsigned int messages, mails, rcpts;
	bool auto_reply;
	bool closed, starttls;
	struct smtp_mail last_mail;
	struct smtp_rcpt last_rcpt;
};

static int64_t t_now(void)
{
	return 1800000000; /* 2027-01-15T08:00:00Z */
}

static void t_output(void *context, const void *data, size_t len)
{
	struct t_ctx *t = context;

	buf_append(&t->out, data, len);
}

static void t_event(struct t_ctx *t, const char *fmt, ...) ATTR_FORMAT(2, 3);
static void t_event(struct t_ctx *t, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	buf_vprintf(&t->events, fmt, args);
	va_end(args);
	buf_append_c(&t->events, '\n');
}

static void t_helo(void *context, const char *domain, bool ehlo)
{
	t_event(context, "%s %s", ehlo ? "EHLO" : "HELO", domain);
}

static void t_starttls(void *context)
{
	struct t_ctx *t = context;

	t->starttls = true;
	t_event(t, "STARTTLS");
}

static void t_auth(void *context, const char *mech, const char *initial)
{
	struct t_ctx *t = context;

	t_event(t, "AUTH %s %s", mech, initial == NULL ? "-" : initial);
	if (!t->auto_reply)
		return;
	if (initial == NULL)
		smtp_server_auth_challenge(t->s, "");
	else if (strcmp(initial, "good") == 0)
		smtp_server_auth_reply(t->s, 235,
				       "2.7.0 Authentication "
				       "successful");
	else
		smtp_server_auth_reply(t->s, 535,
				       "5.7.8 Authentication "
				       "credentials invalid");
}

static void t_auth_response(void *context, const char *line)
{
	struct t_ctx *t = context;

	t_event(t, "AUTHLINE %s", line);
	if (!t->auto_reply)
		return;
	if (strcmp(line, "good") == 0)
		smtp_server_auth_reply(t->s, 235, "2.7.0 OK");
	else if (strcmp(line, "*") == 0)
		smtp_server_auth_reply(t->s, 501, "5.0.0 Cancelled");
	else
		smtp_server_auth_reply(t->s, 535, "5.7.8 Bad");
}

static void t_mail(void *context, const struct smtp_mail *mail)
{
	struct t_ctx *t = context;

	t->mails++;
	t->last_mail = *mail;
	t_event(t, "MAIL %s", mail->path.address);
	if (t->auto_reply)
		smtp_server_mail_reply(t->s, 250, "2.1.0 OK");
}

static void t_rcpt(void *context, const struct smtp_rcpt *rcpt)
{
	struct t_ctx *t = context;

	t->rcpts++;
	t->last_rcpt = *rcpt;
	t_event(t, "RCPT %s", rcpt->path.address);
	if (!t->auto_reply)
		return;
	if (strncmp(rcpt->path.address, "bad", 3) == 0)
		smtp_server_rcpt_reply(t->s, 550, "5.1.1 No such user");
	else
		smtp_server_rcpt_reply(t->s, 250, "2.1.5 OK");
}

static void t_data_begin(void *context)
{
	struct t_ctx *t = context;

	t_event(t, "DATA");
	smtp_server_message_prepend(t->s, "Received: test\r\n", 16);
}

static void t_message(void *context, const uint8_t *msg, size_t len)
{
	struct t_ctx *t = context;

	t->messages++;
	buf_reset(&t->msg);
	buf_append(&t->msg, msg, len);
	t_event(t, "MESSAGE %zu", len);
	if (t->auto_reply)
		smtp_server_message_reply(t->s, 250, "2.0.0 Queued");
}

static void t_reset(void *context)
{
	t_event(context, "RESET");
}

static void t_close(void *context, const char *reason)
{
	struct t_ctx *t = context;

	t->closed = true;
	t_event(t, "CLOSE %s", reason);
}

static const struct smtp_server_callbacks t_callbacks = {
	.output = t_output,
	.helo = t_helo,
	.starttls = t_starttls,
	.auth = t_auth,
	.auth_response = t_auth_response,
	.mail = t_mail,
	.rcpt = t_rcpt,
	.data_begin = t_data_begin,
	.message = t_message,
	.reset = t_reset,
	.close = t_close,
};

static struct smtp_server_settings t_settings = {
	.hostname = "mx.test.example",
	.max_message_size = 10000,
	.max_recipients = 5,
	.max_errors = 0, /* test_limits checks the limit */
	.max_line_length = 512,
	.future_release_max = 7 * 86400,
	.now = t_now,
};

static const unsigned int t_all_ext =
	SMTP_EXT_PIPELINING | SMTP_EXT_SIZE | SMTP_EXT_8BITMIME |
	SMTP_EXT_SMTPUTF8 | SMTP_EXT_ENHANCEDSTATUSCODES | SMTP_EXT_CHUNKING |
	SMTP_EXT_BINARYMIME | SMTP_EXT_DSN | SMTP_EXT_STARTTLS;

static struct t_ctx *t_create(const struct smtp_server_settings *set)
{
	struct t_ctx *t = i_new(struct t_ctx, 1);

	t->s = smtp_server_create(set != NULL ? set : &t_settings, &t_callbacks,
				  t);
	smtp_server_set_extensions(t->s, t_all_ext);
	t->auto_reply = true;
	return t;
}

static void t_destroy(struct t_ctx **_t)
{
	struct t_ctx *t = *_t;

	smtp_server_destroy(&t->s);
	buf_free(&t->in);
	buf_free(&t->out);
	buf_free(&t->events);
	buf_free(&t->msg);
	i_free(t);
	*_t = NULL;
}

/* Feeds what is buffered in pieces of at most step bytes, like the front:
   stops when the session pauses. */
static void t_pump(struct t_ctx *t, size_t step)
{
	while (t->in.used > 0 && !smtp_server_is_paused(t->s)) {
		struct span in = buf_span(&t->in);
		size_t n = in.len < step ? in.len : step;
		size_t used = smtp_server_input(t->s, in.p, n);

		assert_true(used <= n);
		buf_consume(&t->in, used);
		if (used < n)
			assert_true(smtp_server_is_paused(t->s));
	}
}

static void t_feed_step(struct t_ctx *t, const void *data, size_t len,
			size_t step)
{
	buf_append(&t->in, data, len);
	t_pump(t, step);
}

static void t_feed(struct t_ctx *t, const char *str)
{
	t_feed_step(t, str, strlen(str), SIZE_MAX);
}

static bool t_out_has(struct t_ctx *t, const char *needle)
{
	return strstr(buf_cstr(&t->out), needle) != NULL;
}

static bool t_events_has(struct t_ctx *t, const char *needle)
{
	return strstr(buf_cstr(&t->events), needle) != NULL;
}

static unsigned int t_count(const char *hay, const char *needle)
{
	unsigned int n = 0;

	for (const char *p = strstr(hay, needle); p != NULL;
	     p = strstr(p + 1, needle))
		n++;
	return n;
}

#define assert_out(t, s)                                          \
	do {                                                      \
		if (!t_out_has(t, s))                             \
			fail_msg("expected %s in output:\n%s", s, \
				 buf_cstr(&(t)->out));            \
	} while (0)

static const char t_envelope[] = "EHLO client.example\r\n"
				 "MAIL FROM:<a@x.example>\r\n"
				 "RCPT TO:<b@y.example>\r\n";

static void test_basic_session(void **state)
{
	struct t_ctx *t = t_create(NULL);

	t_feed(t, "EHLO client.example\r\n");
	assert_out(t, "250-mx.test.example Hello client.example\r\n");
	assert_out(t, "250-PIPELINING\r\n");
	assert_out(t, "250-SIZE 10000\r\n");
	assert_out(t, "250-CHUNKING\r\n");
	assert_out(t, "250 STARTTLS\r\n");
	assert_false(t_out_has(t, "AUTH"));
	buf_reset(&t->out);
	t_feed(t, "MAIL FROM:<a@x.example> BODY=8BITMIME\r\n"
		  "RCPT TO:<b@y.example>\r\n"
		  "RCPT TO:<bad@y.example>\r\n"
		  "DATA\r\n");
	assert_string_equal(buf_cstr(&t->out),
			    "250 2.1.0 OK\r\n"
			    "250 2.1.5 OK\r\n"
			    "550 5.1.1 No such user\r\n"
			    "354 End data with <CR><LF>.<CR><LF>\r\n");
	assert_int_equal(t->last_mail.body, SMTP_BODY_8BITMIME);
	assert_int_equal(smtp_server_rcpt_count(t->s), 1);
	buf_reset(&t->out);
	t_feed(t, "Subject: hi\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n");
	assert_int_equal(t->messages, 1);
	assert_string_equal(buf_cstr(&t->msg), "Received: test\r\n"
					       "Subject: hi\r\n\r\n.dot\r\n"
					       "body\r\n");
	assert_string_equal(buf_cstr(&t->out),
			    "250 2.0.0 Queued\r\n"
			    "221 2.0.0 mx.test.example Bye\r\n");
	assert_true(t->closed);
	/* Input after QUIT is discarded. */
	t_feed(t, "NOOP\r\n");
	assert_false(t_out_has(t, "250 2.0.0 OK"));
	t_destroy(&t);
}

static void test_sequence(void **state)
{
	struct t_ctx *t = t_create(NULL);

	t_feed(t, "MAIL FROM:<a@x>\r\n");
	assert_out(t, "503 5.5.1 Send EHLO first\r\n");
	t_feed(t, "HELO c.example\r\nRCPT TO:<b@y>\r\n");
	assert_out(t, "250 mx.test.example\r\n");
	assert_out(t, "503 5.5.1 MAIL first\r\n");
	t_feed(t, "DATA\r\n");
	assert_int_equal(t_count(buf_cstr(&t->out), "503 5.5.1 MAIL first"), 2);
	t_feed(t, "MAIL FROM:<a@x>\r\nMAIL FROM:<a@x>\r\n");
	assert_out(t, "503 5.5.1 Nested MAIL command\r\n");
	buf_reset(&t->out);
	/* RFC 2920 3.1: no valid recipient, DATA gets 554. */
	t_feed(t, "RCPT TO:<bad@y>\r\nDATA\r\n");
	assert_out(t, "554 5.5.1 No valid recipients\r\n");
	t_feed(t, "RSET\r\nRCPT TO:<b@y>\r\n");
	assert_out(t, "250 2.0.0 OK\r\n503 5.5.1 MAIL first\r\n");
	buf_reset(&t->out);
	t_feed(t, "VRFY x\r\nEXPN y\r\nHELP\r\nNOOP x\r\nFOO\r\n");
	assert_string_equal(buf_cstr(&t->out),
			    "252 2.5.0 Cannot VRFY user, but will accept "
			    "message and attempt delivery\r\n"
			    "502 5.5.1 EXPN not available\r\n"
			    "214 2.0.0 See https://www.rfc-editor.org/rfc/"
			    "rfc5321\r\n"
			    "250 2.0.0 OK\r\n"
			    "500 5.5.2 Syntax error, command unrecognized\r\n");
	buf_reset(&t->out);
	t_feed(t, "ehlo\r\nmail from:<a@x>\r\n");
	assert_out(t, "501 5.5.4 EHLO needs a domain\r\n");
	assert_out(t, "250 2.1.0 OK\r\n");
	/* EHLO resets the transaction (RFC 5321 4.1.4). */
	t_feed(t, "EHLO again\r\nRCPT TO:<b@y>\r\n");
	assert_out(t, "503 5.5.1 MAIL first\r\n");
	t_destroy(&t);
}

/* Each variant sits between a message and a would-be second transaction.
   None is <CRLF>.<CRLF>, so none may end the data. */
#define V(name, lit, bare)                       \
	{                                        \
		name, lit, sizeof(lit) - 1, bare \
	}
static const struct {
	const char *name;
	const char *bytes;
	size_t len;
	bool bare; /* the message holds a bare CR/LF: refused after the end */
} smuggle_variants[] = {
	V("LF.LF", "\n.\n", true),
	V("CR.CR", "\r.\r", true),
	V("LF.CRLF", "\n.\r\n", true),
	V("CRLF.LF", "\r\n.\n", true),
	V("CR.CRLF", "\r.\r\n", true),
	V("LF.CR", "\n.\r", true),
	V("CRLF.CR", "\r\n.\r", true),
	V("CR.LF", "\r.\n", true),
	V("LFLF.LFLF", "\n\n.\n\n", true),
	V("CRLFLF.LF", "\r\n\n.\n", true),
	V("CRLF.CRCRLF", "\r\n.\r\r\n", true),
	V("CRLF..LF", "\r\n..\n", true),
	V("CRLF.LFCRLF", "\r\n.\n\r\n", true),
	V("LF.LFCR", "\n.\n\r", true),
	V("CRLF.SPCRLF", "\r\n. \r\n", false),
	V("CRLF.NULCRLF", "\r\n.\0\r\n", false),
	V("CRLFNUL.CRLF", "\r\n\0.\r\n", false),
	V("CRLF.CRLF-less", "\r\n..\r\n", false),
	V("x.CRLF", "x.\r\n", false),
};

static const char smuggle_tail[] = "MAIL FROM:<evil@attacker.example>\r\n"
				   "RCPT TO:<victim@y.example>\r\n"
				   "DATA\r\n"
				   "Subject: smuggled\r\n"
				   "\r\n"
				   "smuggled\r\n";

static void t_smuggle_one(unsigned int i, size_t step, bool bdat)
{
	struct t_ctx *t = t_create(NULL);
	struct buf data = BUF_INIT, session = BUF_INIT;
	size_t vlen = smuggle_variants[i].len;
	buf_append_str(&data, "Subject: first\r\n\r\nbody");
	buf_append(&data, smuggle_variants[i].bytes, vlen);
	buf_append_str(&data, smuggle_tail);
	buf_append_str(&session, t_envelope);
	if (bdat) {
		/* The same bytes as one chunk, then the real end. */
		buf_printf(&session, "BDAT %zu\r\n", data.used);
		buf_append(&session, data.data, data.used);
		buf_append_str(&session, "BDAT 2 LAST\r\n\r\n");
	} else {
		buf_append_str(&session, "DATA\r\n");
		buf_append(&session, data.data, data.used);
		buf_append_str(&session, "\r\n.\r\n");
	}
	buf_append_str(&session, "QUIT\r\n");
	t_feed_step(t, session.data, session.used, step);

	if (t->mails != 1 || t_events_has(t, "evil"))
		fail_msg("%s %s step %zu: smuggled a second MAIL:\n%s",
			 bdat ? "BDAT" : "DATA", smuggle_variants[i].name, step,
			 buf_cstr(&t->events));
	if (smuggle_variants[i].bare) {
		if (t->messages != 0)
			fail_msg("%s %s step %zu: accepted a message with a "
				 "bare CR/LF",
				 bdat ? "BDAT" : "DATA",
				 smuggle_variants[i].name, step);
		assert_out(t, "550 5.6.11 ");
	} else {
		/* Accepted whole: the "second transaction" is data. */
		assert_int_equal(t->messages, 1);
		assert_non_null(memmem(t->msg.data, t->msg.used,
				       "MAIL FROM:<evil", 15));
	}
	assert_out(t, "221 2.0.0");
	assert_true(t->closed);
	buf_free(&data);
	buf_free(&session);
	t_destroy(&t);
}

static void test_smuggling_data(void **state)
{
	static const size_t steps[] = { SIZE_MAX, 1, 2, 3, 7 };

	for (unsigned int i = 0; i < N_ELEMENTS(smuggle_variants); i++) {
		for (unsigned int k = 0; k < N_ELEMENTS(steps); k++)
			t_smuggle_one(i, steps[k], false);
	}
}

static void test_smuggling_bdat(void **state)
{
	static const size_t steps[] = { SIZE_MAX, 1, 5 };

	for (unsigned int i = 0; i < N_ELEMENTS(smuggle_variants); i++) {
		for (unsigned int k = 0; k < N_ELEMENTS(steps); k++)
			t_smuggle_one(i, steps[k], true);
	}
}

static void test_smuggling_control(void **state)
{
	static const size_t steps[] = { SIZE_MAX, 1 };

	/* A true <CRLF>.<CRLF> followed by a pipelined second transaction:
	   both messages are accepted. */
	for (unsigned int k = 0; k < N_ELEMENTS(steps); k++) {
		struct t_ctx *t = t_create(NULL);
		struct buf session = BUF_INIT;

		buf_append_str(&session, t_envelope);
		buf_append_str(&session, "DATA\r\nSubject: first\r\n\r\nbody"
					 "\r\n.\r\n");
		buf_append_str(&session, smuggle_tail);
		buf_append_str(&session, ".\r\nQUIT\r\n");
		t_feed_step(t, session.data, session.used, steps[k]);
		assert_int_equal(t->mails, 2);
		assert_int_equal(t->messages, 2);
		assert_string_equal(buf_cstr(&t->msg),
				    "Received: test\r\nSubject: smuggled\r\n"
				    "\r\nsmuggled\r\n");
		buf_free(&session);
		t_destroy(&t);
	}
}

static void test_data_edges(void **state)
{
	static const struct {
		const char *in; /* after DATA */
		const char *msg; /* NULL: refused */
	} cases[] = {
		{ ".\r\n", "" },
		{ "a\r\n.\r\n", "a\r\n" },
		{ "..\r\n.\r\n", ".\r\n" },
		{ "...\r\n.\r\n", "..\r\n" },
		{ ".a\r\n.b\r\n.\r\n", "a\r\nb\r\n" },
		{ "a\r\n\r\n.\r\n", "a\r\n\r\n" },
		{ "a\r\r\n.\r\n", NULL },
		{ "a\n.\r\n.\r\n", NULL },
		{ "\n.\r\n.\r\n", NULL },
		{ ".\r.\r\n.\r\n", NULL },
		{ "a\xff\x80\r\n.\r\n", "a\xff\x80\r\n" },
	};

	for (unsigned int i = 0; i < N_ELEMENTS(cases); i++) {
		for (size_t step = 1; step <= 4; step += 3) {
			struct t_ctx *t = t_create(NULL);

			t_feed(t, t_envelope);
			t_feed(t, "DATA\r\n");
			t_feed_step(t, cases[i].in, strlen(cases[i].in), step);
			t_feed(t, "NOOP\r\n");
			assert_out(t, "250 2.0.0 OK\r\n");
			if (cases[i].msg == NULL) {
				assert_int_equal(t->messages, 0);
				assert_out(t, "550 5.6.11");
			} else {
				assert_int_equal(t->messages, 1);
				assert_string_equal(buf_cstr(&t->msg) + 16,
						    cases[i].msg);
			}
			t_destroy(&t);
		}
	}
}

static void test_size_limit(void **state)
{
	struct smtp_server_settings set = t_settings;
	struct t_ctx *t;
	char big[200];

	set.max_message_size = 100;
	t = t_create(&set);
	t_feed(t, "EHLO c\r\nMAIL FROM:<a@x> SIZE=101\r\n");
	assert_out(t, "552 5.3.4 ");
	t_feed(t, "MAIL FROM:<a@x> SIZE=100\r\nRCPT TO:<b@y>\r\nDATA\r\n");
	memset(big, 'x', sizeof(big) - 3);
	memcpy(big + sizeof(big) - 3, "\r\n", 3);
	t_feed(t, big);
	t_feed(t, ".\r\n");
	assert_int_equal(t->messages, 0);
	assert_int_equal(t_count(buf_cstr(&t->out), "552 5.3.4 "), 2);
	/* Exactly at the limit is fine (100 octets of data). */
	t_feed(t, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
	memset(big, 'x', 98);
	memcpy(big + 98, "\r\n.\r\n", 6);
	t_feed(t, big);
	assert_int_equal(t->messages, 1);
	/* BDAT over the limit: 552, later chunks discarded until LAST. */
	buf_reset(&t->out);
	t_feed(t, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n");
	memset(big, 'y', 150);
	buf_append_str(&t->in, "BDAT 150\r\n");
	buf_append(&t->in, big, 150);
	buf_append_str(&t->in, "BDAT 10\r\nMAIL FROM:BDAT 3 LAST\r\nabc");
	t_pump(t, SIZE_MAX);
	assert_string_equal(buf_cstr(&t->out),
			    "250 2.1.0 OK\r\n250 2.1.5 OK\r\n"
			    "552 5.3.4 Message size exceeds fixed maximum "
			    "message size\r\n"
			    "554 5.5.0 Chunk discarded after an earlier "
			    "failure\r\n"
			    "554 5.5.0 Chunk discarded after an earlier "
			    "failure\r\n");
	assert_int_equal(t->messages, 1);
	/* The transaction ended with LAST: a new one works. */
	t_feed(t, "MAIL FROM:<a@x>\r\n");
	assert_out(t, "250 2.1.0 OK\r\n");
	t_destroy(&t);
}

static void test_bdat_rules(void **state)
{
	struct t_ctx *t = t_create(NULL);

	t_feed(t, t_envelope);
	buf_reset(&t->out);
	t_feed(t, "BDAT 4\r\nab\r\rBDAT 3 LAST\r\n\ncd");
	assert_out(t, "250 2.0.0 4 octets received\r\n");
	assert_out(t, "550 5.6.11 ");
	assert_int_equal(t->messages, 0);

	/* Clean message over three chunks, one of them empty. */
	buf_reset(&t->out);
	t_feed(t, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"
		  "BDAT 3\r\nab\rBDAT 0\r\nBDAT 5 LAST\r\n\ncd\r\n"
		  "DATA\r\n");
	assert_int_equal(t->messages, 1);
	assert_string_equal(buf_cstr(&t->msg) + 16, "ab\r\ncd\r\n");
	assert_out(t, "503 5.5.1 MAIL first\r\n");

	/* BDAT LAST ending in a CR. */
	buf_reset(&t->out);
	t_feed(t, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3 LAST\r\nab\r");
	assert_out(t, "550 5.6.11 ");
	assert_int_equal(t->messages, 1);

	/* BINARYMIME allows bare CR/LF (RFC 3030 3) and refuses DATA. */
	buf_reset(&t->out);
	t_feed(t, "MAIL FROM:<a@x> BODY=BINARYMIME\r\nRCPT TO:<b@y>\r\n"
		  "DATA\r\n");
	t_feed_step(t, "BDAT 6 LAST\r\n\n.\n\r\0x", 19, SIZE_MAX);
	assert_out(t, "503 5.5.1 BODY=BINARYMIME requires BDAT\r\n");
	assert_int_equal(t->messages, 2);
	assert_int_equal(t->msg.used, 16 + 6);
	assert_memory_equal(t->msg.data + 16, "\n.\n\r\0x", 6);

	/* BDAT without a transaction: the chunk is read and dropped, its
	   bytes are never commands. */
	buf_reset(&t->out);
	t_feed(t, "BDAT 12\r\nRSET\r\nQUIT\r\nNOOP\r\n");
	assert_string_equal(buf_cstr(&t->out), "503 5.5.1 MAIL first\r\n"
					       "250 2.0.0 OK\r\n");
	assert_false(t->closed);
	buf_reset(&t->out);
	t_feed(t, "MAIL FROM:<a@x>\r\nRCPT TO:<bad@y>\r\nBDAT 6 LAST\r\n"
		  "QUIT\r\nNOOP\r\n");
	assert_out(t, "554 5.5.1 No valid recipients\r\n250 2.0.0 OK\r\n");
	/* DATA then BDAT. */
	buf_reset(&t->out);
	t_feed(t, "RSET\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"
		  "x\r\n.\r\n");
	assert_int_equal(t->messages, 3);
	t_feed(t, "BDAT x\r\nBDAT 1 NOTLAST\r\n");
	assert_int_equal(t_count(buf_cstr(&t->out), "501 5.5.4 Syntax: BDAT"),
			 2);
	t_destroy(&t);
}

static void test_pipelining_async(void **state)
{
	struct t_ctx *t = t_create(NULL);
	static const char pipeline[] = "MAIL FROM:<a@x>\r\n"
				       "RCPT TO:<b@y>\r\n"
				       "RCPT TO:<c@y>\r\n"
				       "DATA\r\n";

	t_feed(t, "EHLO c\r\n");
	buf_reset(&t->out);
	t->auto_reply = false;
	buf_append_str(&t->in, pipeline);
	t_pump(t, SIZE_MAX);
	/* Paused on MAIL: nothing answered yet, the rest still unread. */
	assert_true(smtp_server_is_paused(t->s));
	assert_int_equal(t->out.used, 0);
	assert_int_equal(t->in.used, strlen(pipeline) - 17);
	smtp_server_mail_reply(t->s, 250, "2.1.0 OK");
	t_pump(t, SIZE_MAX);
	assert_true(smtp_server_is_paused(t->s));
	assert_int_equal(t->rcpts, 1);
	smtp_server_rcpt_reply(t->s, 451, "4.3.0 Try later");
	t_pump(t, SIZE_MAX);
	smtp_server_rcpt_reply(t->s, 250, "2.1.5 OK");
	t_pump(t, SIZE_MAX);
	assert_false(smtp_server_is_paused(t->s));
	assert_string_equal(buf_cstr(&t->out),
			    "250 2.1.0 OK\r\n"
			    "451 4.3.0 Try later\r\n"
			    "250 2.1.5 OK\r\n"
			    "354 End data with <CR><LF>.<CR><LF>\r\n");
	buf_reset(&t->out);
	t_feed(t, "hello\r\n.\r\nNOOP\r\n");
	assert_true(smtp_server_is_paused(t->s));
	assert_int_equal(t->messages, 1);
	assert_int_equal(t->out.used, 0);
	assert_string_equal(buf_cstr(&t->in), "NOOP\r\n");
	smtp_server_message_reply(t->s, 451, "4.3.0 Commit failed");
	t_pump(t, SIZE_MAX);
	assert_string_equal(buf_cstr(&t->out), "451 4.3.0 Commit failed\r\n"
					       "250 2.0.0 OK\r\n");
	/* The transaction is over after the reply. */
	t_feed(t, "RCPT TO:<b@y>\r\n");
	assert_out(t, "503 5.5.1 MAIL first\r\n");
	t_destroy(&t);
}

static void test_close_while_pending(void **state)
{
	struct t_ctx *t = t_create(NULL);

	t_feed(t, "EHLO c\r\nMAIL FROM:<a@x>\r\n");
	t->auto_reply = false;
	t_feed(t, "RCPT TO:<b@y>\r\nDATA\r\n");
	assert_true(smtp_server_is_paused(t->s));
	buf_reset(&t->out);
	/* The caller's idle timeout fires while the vault is asked. */
	smtp_server_reply(t->s, 421, "4.4.2 mx Idle timeout");
	assert_true(t->closed);
	assert_false(smtp_server_is_paused(t->s));
	/* The late answer is dropped, and so is the rest of the input. */
	smtp_server_rcpt_reply(t->s, 250, "2.1.5 OK");
	t_pump(t, SIZE_MAX);
	assert_string_equal(buf_cstr(&t->out), "421 4.4.2 mx Idle timeout\r\n");
	assert_int_equal(t->in.used, 0);
	t_destroy(&t);
}

static void test_starttls(void **state)
{
	struct t_ctx *t = t_create(NULL);

	t_feed(t, "EHLO c\r\nMAIL FROM:<a@x>\r\n");
	buf_reset(&t->out);
	t_feed(t, "STARTTLS\r\nNOOP\r\n");
	assert_string_equal(buf_cstr(&t->out), "220 2.0.0 Ready to start "
					       "TLS\r\n");
	assert_true(t->starttls);
	assert_int_equal(t->in.used, 0);
	/* Plaintext before the handshake is dropped too. */
	t_feed(t, "NOOP\r\n");
	assert_string_equal(buf_cstr(&t->out), "220 2.0.0 Ready to start "
					       "TLS\r\n");
	smtp_server_tls_started(t->s);
	/* RFC 3207 4.2: the session starts over. */
	t_feed(t, "MAIL FROM:<a@x>\r\nEHLO c\r\nSTARTTLS\r\n");
	assert_out(t, "503 5.5.1 Send EHLO first\r\n");
	assert_false(t_out_has(t, "250-STARTTLS"));
	assert_false(t_out_has(t, "250 STARTTLS"));
	assert_out(t, "503 5.5.1 TLS already active\r\n");
	t_destroy(&t);
}

static void test_limits(void **state)
{
	struct smtp_server_settings set = t_settings;
	struct t_ctx *t;
	char line[700];

	/* Recipients: 452 past the limit (RFC 5321 4.5.3.1.10). */
	t = t_create(NULL);
	t_feed(t, "EHLO c\r\nMAIL FROM:<a@x>\r\n");
	for (unsigned int i = 0; i < 6; i++)
		t_feed(t, "RCPT TO:<b@y>\r\n");
	assert_int_equal(t->rcpts, 5);
	assert_out(t, "452 4.5.3 Too many recipients\r\n");
	/* A line of exactly max_line_length is fine. */
	memset(line, 'x', sizeof(line));
	memcpy(line, "NOOP ", 5);
	buf_reset(&t->out);
	t_feed_step(t, line, 512, 3);
	t_feed(t, "\r\n");
	assert_string_equal(buf_cstr(&t->out), "250 2.0.0 OK\r\n");
	/* 513 bytes and an LF (no CR): too long. */
	t_feed_step(t, line, 513, 5);
	t_feed(t, "\n");
	assert_out(t, "500 5.5.2 Line too long\r\n");
	t_destroy(&t);
	t = t_create(NULL);
	/* Two bytes more than a line and its CR: 500 and 421 at once,
	   without waiting for a line end that may never come. */
	buf_reset(&t->out);
	t_feed_step(t, line, 514, 1);
	assert_string_equal(buf_cstr(&t->out),
			    "500 5.5.2 Line too long\r\n"
			    "421 4.7.0 mx.test.example Line too long, closing "
			    "connection\r\n");
	assert_true(t->closed);
	t_destroy(&t);

	/* Errors: 421 and close after max_errors. */
	set.max_errors = 3;
	t = t_create(&set);
	t_feed(t, "FOO\r\nBAR\r\nNOOP\r\nBAZ\r\nNOOP\r\n");
	assert_string_equal(buf_cstr(&t->out),
			    "500 5.5.2 Syntax error, command unrecognized\r\n"
			    "500 5.5.2 Syntax error, command unrecognized\r\n"
			    "250 2.0.0 OK\r\n"
			    "500 5.5.2 Syntax error, command unrecognized\r\n"
			    "421 4.7.0 mx.test.example Too many errors, "
			    "closing connection\r\n");
	assert_true(t->closed);
	assert_true(smtp_server_is_closed(t->s));
	t_destroy(&t);

	/* Control characters and NUL in commands. */
	t = t_create(NULL);
	t_feed_step(t, "NOOP \0x\r\nNO\rOP\r\nNOOP\n", 21, SIZE_MAX);
	assert_string_equal(buf_cstr(&t->out),
			    "500 5.5.2 control characters in command\r\n"
			    "500 5.5.2 control characters in command\r\n"
			    "250 2.0.0 OK\r\n");
	t_destroy(&t);
}

static void test_auth(void **state)
{
	struct smtp_server_settings set = t_settings;
	struct t_ctx *t;

	set.auth_required = true;
	t = t_create(&set);
	smtp_server_set_extensions(t->s, t_all_ext | SMTP_EXT_AUTH);
	smtp_server_set_auth_mechs(t->s, "PLAIN LOGIN");
	t_feed(t, "EHLO c\r\n");
	assert_out(t, "250 AUTH PLAIN LOGIN\r\n");
	buf_reset(&t->out);
	t_feed(t, "MAIL FROM:<a@x>\r\nAUTH PLAIN bad\r\nAUTH LOGIN\r\n*\r\n"
		  "AUTH PLAIN\r\ngood\r\nAUTH PLAIN good\r\n"
		  "MAIL FROM:<a@x> AUTH=<>\r\nAUTH PLAIN good\r\n");
	assert_string_equal(buf_cstr(&t->out),
			    "530 5.7.0 Authentication required\r\n"
			    "535 5.7.8 Authentication credentials invalid\r\n"
			    "334 \r\n"
			    "501 5.0.0 Cancelled\r\n"
			    "334 \r\n"
			    "235 2.7.0 OK\r\n"
			    "503 5.5.1 Already authenticated\r\n"
			    "250 2.1.0 OK\r\n"
			    "503 5.5.1 Already authenticated\r\n");
	assert_true(smtp_server_is_authenticated(t->s));
	assert_true(t_events_has(t, "AUTHLINE *"));
	t_destroy(&t);

	/* An over-long response line ends the session. */
	t = t_create(NULL);
	t_feed(t, "EHLO c\r\nAUTH X\r\n");
	{
		char line[600];

		memset(line, 'A', sizeof(line));
		t_feed_step(t, line, sizeof(line), SIZE_MAX);
	}
	assert_out(t, "334 \r\n500 5.5.2 Line too long\r\n421 ");
	assert_true(t->closed);
	assert_false(t_events_has(t, "AUTHLINE"));
	t_destroy(&t);
	/* No AUTH in a transaction (RFC 4954 4). */
	t = t_create(NULL);
	t_feed(t, "EHLO c\r\nMAIL FROM:<a@x>\r\nAUTH PLAIN good\r\n");
	assert_out(t, "503 5.5.1 AUTH not permitted during a mail "
		      "transaction\r\n");
	t_destroy(&t);
}

static void test_mail_params(void **state)
{
	struct t_ctx *t = t_create(NULL);

	smtp_server_set_extensions(t->s, t_all_ext | SMTP_EXT_REQUIRETLS |
						 SMTP_EXT_FUTURERELEASE);
	t_feed(t, "EHLO c\r\n");
	assert_out(t, "250-REQUIRETLS\r\n");
	assert_out(t, "250 FUTURERELEASE 604800 2027-01-22T08:00:00Z\r\n");
	buf_reset(&t->out);
	t_feed(t, "MAIL FROM:<a@x> RET=HDRS ENVID=ab+2Bc SMTPUTF8 "
		  "REQUIRETLS HOLDFOR=60\r\n");
	assert_string_equal(buf_cstr(&t->out), "250 2.1.0 OK\r\n");
	assert_int_equal(t->last_mail.ret, SMTP_RET_HDRS);
	assert_string_equal(t->last_mail.envid, "ab+c");
	assert_true(t->last_mail.smtputf8);
	assert_true(t->last_mail.requiretls);
	assert_int_equal(t->last_mail.hold_until, t_now() + 60);
	buf_reset(&t->out);
	t_feed(t, "RCPT TO:<b@y> NOTIFY=SUCCESS,FAILURE "
		  "ORCPT=rfc822;b+2Bx@y\r\n");
	assert_string_equal(buf_cstr(&t->out), "250 2.1.5 OK\r\n");
	assert_int_equal(t->last_rcpt.notify,
			 SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE);
	assert_string_equal(t->last_rcpt.orcpt, "rfc822;b+x@y");
	/* UTF-8 recipient allowed in an SMTPUTF8 transaction. */
	t_feed(t, "RCPT TO:<j\xc3\xb6rg@y.example>\r\n");
	assert_true(t_events_has(t, "RCPT j\xc3\xb6rg@y.example"));
	buf_reset(&t->out);
	t_feed(t, "RCPT TO:<b@y> NOTIFY=NEVER,SUCCESS\r\n"
		  "RCPT TO:<b@y> ORCPT=nosemicolon\r\n"
		  "RCPT TO:<b@y> FOO=1\r\n"
		  "RCPT TO:<@r:b@y>\r\n"
		  "RCPT TO:b@y\r\n"
		  "RCPT TO:<b@y>x\r\n");
	assert_string_equal(buf_cstr(&t->out),
			    "501 5.5.4 Bad NOTIFY value\r\n"
			    "501 5.5.4 Bad ORCPT value\r\n"
			    "555 5.5.4 Unsupported parameter\r\n"
			    "501 5.1.3 source routes are not accepted\r\n"
			    "501 5.1.3 path must be in angle brackets\r\n"
			    "501 5.5.4 Garbage after the address\r\n");
	buf_reset(&t->out);
	t_feed(t, "RSET\r\n"
		  "MAIL FROM:<j\xc3\xb6rg@x>\r\n"
		  "MAIL FROM:<a@x> HOLDFOR=604801\r\n"
		  "MAIL FROM:<a@x> HOLDFOR=1 HOLDUNTIL=2027-01-16T00:00:00Z\r\n"
		  "MAIL FROM:<a@x> BODY=9BIT\r\n"
		  "MAIL FROM:<a@x> XFOO\r\n"
		  "MAIL FROM:<a@x> SIZE=abc\r\n"
		  "MAIL FROM: <a@x> HOLDUNTIL=2027-01-16T00:00:00+02:00\r\n");
	assert_string_equal(buf_cstr(&t->out),
			    "250 2.0.0 OK\r\n"
			    "553 5.6.7 Non-ASCII address needs SMTPUTF8\r\n"
			    "501 5.5.4 Release time is too far in the "
			    "future\r\n"
			    "501 5.5.4 Only one of HOLDFOR and HOLDUNTIL\r\n"
			    "555 5.5.4 Unsupported BODY value\r\n"
			    "555 5.5.4 Unsupported parameter\r\n"
			    "501 5.5.4 Bad SIZE value\r\n"
			    "250 2.1.0 OK\r\n");
	assert_int_equal(t->last_mail.hold_until, t_now() + 14 * 3600);
	/* Without SMTPUTF8 in MAIL, a UTF-8 recipient is 553. */
	buf_reset(&t->out);
	t_feed(t, "RCPT TO:<j\xc3\xb6rg@y>\r\n");
	assert_string_equal(buf_cstr(&t->out),
			    "553 5.6.7 Non-ASCII address needs SMTPUTF8\r\n");
	t_destroy(&t);

	/* Parameters of extensions not offered are unknown (555). */
	t = t_create(NULL);
	smtp_server_set_extensions(t->s, SMTP_EXT_PIPELINING);
	t_feed(t, "EHLO c\r\nMAIL FROM:<a@x> SMTPUTF8\r\n"
		  "MAIL FROM:<a@x> BODY=BINARYMIME\r\n"
		  "MAIL FROM:<a@x> REQUIRETLS\r\n"
		  "MAIL FROM:<a@x> RET=FULL\r\n");
	assert_int_equal(t_count(buf_cstr(&t->out), "555 5.5.4"), 4);
	t_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_session),
		cmocka_unit_test(test_sequence),
		cmocka_unit_test(test_smuggling_data),
		cmocka_unit_test(test_smuggling_bdat),
		cmocka_unit_test(test_smuggling_control),
		cmocka_unit_test(test_data_edges),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_bdat_rules),
		cmocka_unit_test(test_pipelining_async),
		cmocka_unit_test(test_close_while_pending),
		cmocka_unit_test(test_starttls),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_mail_params),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
