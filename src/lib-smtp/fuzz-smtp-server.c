/* fuzz-smtp-server.c - libFuzzer target for smtp-server.c. The first
   bytes choose the feeding step, the extensions and how the fake front
   answers (at once or later, accept or refuse); the rest is the client's
   byte stream. Checks: every reply line is "ddd" SP/"-" text CRLF; a
   message handed over from a non-BINARYMIME transaction has no bare CR or
   LF; input is consumed except while paused; nothing leaks. abort()
   otherwise. Replayed over tests/fuzz-corpus/fuzz-smtp-server/. */

#include "lib.h"
#include "buf.h"
#include "smtp-server.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_ctx {
	struct smtp_server *s;
	struct buf out;
	uint8_t answers; /* bit pattern deciding accept/refuse */
	unsigned int n;
	bool later; /* answer from the "ioloop", not inside the callback */
	enum { FUZZ_NONE, FUZZ_MAIL, FUZZ_RCPT, FUZZ_AUTH, FUZZ_MSG } due;
	bool binary;
	bool tls_wanted;
};

static bool fuzz_accept(struct fuzz_ctx *f)
{
	return ((f->answers >> (f->n++ % 8)) & 1) == 0;
}

static void fuzz_answer(struct fuzz_ctx *f)
{
	switch (f->due) {
	case FUZZ_NONE:
		return;
	case FUZZ_MAIL:
		f->due = FUZZ_NONE;
		if (fuzz_accept(f))
			smtp_server_mail_reply(f->s, 250, "2.1.0 OK");
		else
			smtp_server_mail_reply(f->s, 550, "5.7.1 No");
		return;
	case FUZZ_RCPT:
		f->due = FUZZ_NONE;
		if (fuzz_accept(f))
			smtp_server_rcpt_reply(f->s, 250, "2.1.5 OK");
		else
			smtp_server_rcpt_reply(f->s, 451, "4.3.0 Later");
		return;
	case FUZZ_AUTH:
		f->due = FUZZ_NONE;
		if (fuzz_accept(f))
			smtp_server_auth_challenge(f->s, "");
		else if (fuzz_accept(f))
			smtp_server_auth_reply(f->s, 235, "2.7.0 OK");
		else
			smtp_server_auth_reply(f->s, 535, "5.7.8 No");
		return;
	case FUZZ_MSG:
		f->due = FUZZ_NONE;
		smtp_server_message_reply(f->s, 250, "2.0.0 OK");
		return;
	}
}

static void fuzz_due(struct fuzz_ctx *f, int what)
{
	f->due = what;
	if (!f->later)
		fuzz_answer(f);
}

static void fuzz_output(void *context, const void *data, size_t len)
{
	struct fuzz_ctx *f = context;

	buf_append(&f->out, data, len);
}

static void fuzz_auth(void *context, const char *mech, const char *initial)
{
	fuzz_due(context, FUZZ_AUTH);
}

static void fuzz_auth_response(void *context, const char *line)
{
	fuzz_due(context, FUZZ_AUTH);
}

static void fuzz_mail(void *context, const struct smtp_mail *mail)
{
	struct fuzz_ctx *f = context;

	f->binary = mail->body == SMTP_BODY_BINARYMIME;
	fuzz_due(f, FUZZ_MAIL);
}

static void fuzz_rcpt(void *context, const struct smtp_rcpt *rcpt)
{
	fuzz_due(context, FUZZ_RCPT);
}

static void fuzz_data_begin(void *context)
{
	struct fuzz_ctx *f = context;

	smtp_server_message_prepend(f->s, "X: y\r\n", 6);
}

static void fuzz_message(void *context, const uint8_t *msg, size_t len)
{
	struct fuzz_ctx *f = context;

	if (len < 6 || memcmp(msg, "X: y\r\n", 6) != 0)
		abort();
	if (!f->binary) {
		/* RFC 5321 2.3.8: only CRLF pairs reach the front. */
		for (size_t i = 0; i < len; i++) {
			if (msg[i] == '\r' &&
			    (i + 1 >= len || msg[i + 1] != '\n'))
				abort();
			if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
				abort();
		}
	}
	fuzz_due(f, FUZZ_MSG);
}

static void fuzz_starttls(void *context)
{
	struct fuzz_ctx *f = context;

	f->tls_wanted = true;
}

static const struct smtp_server_callbacks fuzz_callbacks = {
	.output = fuzz_output,
	.starttls = fuzz_starttls,
	.auth = fuzz_auth,
	.auth_response = fuzz_auth_response,
	.mail = fuzz_mail,
	.rcpt = fuzz_rcpt,
	.data_begin = fuzz_data_begin,
	.message = fuzz_message,
};

static void fuzz_check_output(const struct buf *out)
{
	struct span s = buf_span(out);
	size_t i = 0;

	while (i < s.len) {
		ssize_t lf = span_find_byte(span_skip(s, i), '\n');

		if (lf < 5 || s.p[i + lf - 1] != '\r')
			abort();
		for (unsigned int k = 0; k < 3; k++) {
			if (s.p[i + k] < '0' || s.p[i + k] > '9')
				abort();
		}
		if (s.p[i + 3] != ' ' && s.p[i + 3] != '-')
			abort();
		for (size_t k = i; k < i + (size_t)lf - 1; k++) {
			if (s.p[k] == '\r' || s.p[k] == '\n')
				abort();
		}
		i += (size_t)lf + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct smtp_server_settings set = {
		.hostname = "mx.fuzz.example",
		.max_message_size = 4096,
		.max_recipients = 4,
		.max_errors = 30,
		.max_line_length = 512,
		.future_release_max = 86400,
	};
	struct fuzz_ctx f;
	size_t step, pos = 4;

	if (size < 4 || size > 65536)
		return 0;
	memset(&f, 0, sizeof(f));
	step = (size_t)data[0] % 16 + 1;
	if (data[0] >= 0x80)
		step = SIZE_MAX;
	f.answers = data[2];
	f.later = (data[3] & 1) != 0;
	f.s = smtp_server_create(&set, &fuzz_callbacks, &f);
	smtp_server_set_extensions(f.s, (unsigned int)data[1] << 4 | 0x0f);
	smtp_server_set_auth_mechs(f.s, "PLAIN LOGIN");
	while (pos < size) {
		size_t n = size - pos < step ? size - pos : step;
		size_t used = smtp_server_input(f.s, data + pos, n);

		if (used > n || (used < n && !smtp_server_is_paused(f.s)))
			abort();
		pos += used;
		if (smtp_server_is_paused(f.s)) {
			if (f.due == FUZZ_NONE)
				abort();
			fuzz_answer(&f);
		}
		if (smtp_server_is_closed(f.s))
			break;
		/* Pretend every STARTTLS handshake succeeds at once. */
		if (f.tls_wanted) {
			f.tls_wanted = false;
			smtp_server_tls_started(f.s);
		}
	}
	fuzz_check_output(&f.out);
	smtp_server_destroy(&f.s);
	buf_free(&f.out);
	return 0;
}
