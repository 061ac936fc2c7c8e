/* test-imap-envelope.c - unit tests for imap-envelope.c: nstring quoting
   and literals, ENVELOPE of hand-written headers (defaults, groups,
   routes, 8-bit), and BODYSTRUCTURE / BODY of hand-written messages
   compared with the exact strings expected (RFC 9051 7.5.2, Dovecot's
   formatting). Run under ASan+UBSan. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "pool.h"
#include "mime-parser.h"
#include "imap-envelope.h"

static void test_nstring(void **state)
{
	static const struct {
		const char *in, *out;
	} tests[] = {
		{ NULL, "NIL" },
		{ "", "\"\"" },
		{ "abc", "\"abc\"" },
		{ "a\"b\\c", "\"a\\\"b\\\\c\"" },
		{ "NIL", "\"NIL\"" },
		{ "caf\xc3\xa9", "{5}\r\ncaf\xc3\xa9" },
		{ "a\rb", "{3}\r\na\rb" },
		{ "a\nb", "{3}\r\na\nb" },
		{ "tab\there", "\"tab\there\"" },
	};
	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		struct buf out = BUF_INIT;

		imap_envelope_append_nstring(&out, tests[i].in);
		assert_string_equal(buf_cstr(&out), tests[i].out);
		buf_free(&out);
	}
}

static const struct {
	const char *msg;
	const char *envelope;
	const char *bodystructure;
	const char *body;
} tests[] = {
	{ "From: \"Doe, J\" <j@x.org>\r\nTo: a@b, G:c@d;\r\n"
	  "Subject: =?utf-8?q?h=C3=A9?= \"q\"\r\n"
	  "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <m@x>\r\n"
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	  "--b\r\nContent-Type: text/plain; format=flowed\r\n\r\nhi\r\nthere"
	  "\r\n--b\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\n"
	  "Content-Disposition: attachment; filename*=utf-8''%E2%82%AC.pdf"
	  "\r\nContent-Transfer-Encoding: base64\r\n"
	  "Content-Language: en, de\r\n\r\nAAAA\r\n--b\r\n"
	  "Content-Type: message/rfc822\r\n\r\nSubject: in\r\nFrom: x@y\r\n"
	  "\r\nbody\r\n--b--\r\n",
	  "(\"Mon, 1 Jan 2024 00:00:00 +0000\" \"=?utf-8?q?h=C3=A9?= \\\"q\\\"\" "
	  "((\"Doe, J\" NIL \"j\" \"x.org\")) ((\"Doe, J\" NIL \"j\" \"x.org\"))"
	  " ((\"Doe, J\" NIL \"j\" \"x.org\")) ((NIL NIL \"a\" \"b\")"
	  "(NIL NIL \"G\" NIL)(NIL NIL \"c\" \"d\")(NIL NIL NIL NIL)) NIL NIL "
	  "NIL \"<m@x>\")",
	  "((\"text\" \"plain\" (\"format\" \"flowed\" \"charset\" \"us-ascii\")"
	  " NIL NIL \"7bit\" 9 1 NIL NIL NIL NIL)(\"application\" \"pdf\" "
	  "(\"name\" \"r.pdf\") NIL NIL \"base64\" 4 NIL (\"attachment\" "
	  "(\"filename*\" \"utf-8''%E2%82%AC.pdf\")) (\"en\" \"de\") NIL)"
	  "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 30 (NIL \"in\" "
	  "((NIL NIL \"x\" \"y\")) ((NIL NIL \"x\" \"y\")) ((NIL NIL \"x\" "
	  "\"y\")) NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" "
	  "\"us-ascii\") NIL NIL \"7bit\" 4 0 NIL NIL NIL NIL) 3 NIL NIL NIL "
	  "NIL) \"mixed\" (\"boundary\" \"b\") NIL NIL NIL)",
	  "((\"text\" \"plain\" (\"format\" \"flowed\" \"charset\" \"us-ascii\")"
	  " NIL NIL \"7bit\" 9 1)(\"application\" \"pdf\" (\"name\" \"r.pdf\") "
	  "NIL NIL \"base64\" 4)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 30"
	  " (NIL \"in\" ((NIL NIL \"x\" \"y\")) ((NIL NIL \"x\" \"y\")) ((NIL "
	  "NIL \"x\" \"y\")) NIL NIL NIL NIL NIL) (\"text\" \"plain\" "
	  "(\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 0) 3) \"mixed\")" },
	/* No headers at all. */
	{ "\r\nx", "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
	  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0 "
	  "NIL NIL NIL NIL)",
	  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0)" },
	/* Sender, Reply-To, Cc, Bcc, In-Reply-To, route, 8-bit subject,
	   Content-ID, description, MD5, location, no-charset text/html. */
	{ "From: a@b\nSender: s@t\nReply-To: <@r:x@y>\nCc: c@d\nBcc: e@f\n"
	  "In-Reply-To: <p@q>\nSubject: gr\xc3\xbc\xc3\x9f\n"
	  "Content-Type: TEXT/HTML\nContent-ID: <cid>\n"
	  "Content-Description: a \"d\"\nContent-MD5: bWQ1\n"
	  "Content-Location: http://x/\n\n<p>\n",
	  "(NIL {6}\r\ngr\xc3\xbc\xc3\x9f ((NIL NIL \"a\" \"b\")) ((NIL NIL \"s\" "
	  "\"t\")) ((NIL \"@r\" \"x\" \"y\")) NIL ((NIL NIL \"c\" \"d\")) ((NIL "
	  "NIL \"e\" \"f\")) \"<p@q>\" NIL)",
	  "(\"TEXT\" \"HTML\" (\"charset\" \"us-ascii\") \"<cid>\" "
	  "\"a \\\"d\\\"\" \"7bit\" 4 1 \"bWQ1\" NIL NIL \"http://x/\")",
	  "(\"TEXT\" \"HTML\" (\"charset\" \"us-ascii\") \"<cid>\" "
	  "\"a \\\"d\\\"\" \"7bit\" 4 1)" },
	/* A multipart with no parts gets an empty text part. */
	{ "Content-Type: multipart/mixed; boundary=z\n\nno parts\n",
	  "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
	  "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0"
	  " NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"z\") NIL NIL NIL)",
	  "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)"
	  " \"mixed\")" },
	/* Unparsed message/rfc822 is shown as an opaque leaf. */
	{ "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n"
	  "AA==\n",
	  "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
	  "(\"application\" \"octet-stream\" NIL NIL NIL \"base64\" 5 NIL NIL "
	  "NIL NIL)",
	  "(\"application\" \"octet-stream\" NIL NIL NIL \"base64\" 5)" },
};

static void test_messages(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		pool_t pool = pool_create("test", 1024);
		struct mime_result result;
		struct buf out = BUF_INIT;

		mime_parse(pool, NULL, tests[i].msg, strlen(tests[i].msg),
			   &result);
		imap_envelope_write(&out, result.root->envelope);
		if (strcmp(buf_cstr(&out), tests[i].envelope) != 0)
			fail_msg("%zu: envelope %s", i, buf_cstr(&out));
		buf_reset(&out);
		imap_bodystructure_write(&out, result.root, true);
		if (strcmp(buf_cstr(&out), tests[i].bodystructure) != 0)
			fail_msg("%zu: bodystructure %s", i, buf_cstr(&out));
		buf_reset(&out);
		imap_bodystructure_write(&out, result.root, false);
		if (strcmp(buf_cstr(&out), tests[i].body) != 0)
			fail_msg("%zu: body %s", i, buf_cstr(&out));
		buf_free(&out);
		pool_unref(&pool);
	}
}

static void test_null_envelope(void **state)
{
	struct buf out = BUF_INIT;

	(void)state;
	imap_envelope_write(&out, NULL);
	assert_string_equal(buf_cstr(&out),
			    "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(test_nstring),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_null_envelope),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
