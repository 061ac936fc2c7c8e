/* test-imap-write.c - unit tests for the response writer: the choice of
   atom, quoted string or literal for a table of strings (specials, CR,
   LF, NUL, 8-bit with and without UTF-8, NIL, empty), nstring and
   literal8, argument trees written back and parsed again to the same
   tree, mailbox names in modified UTF-7 (RFC 3501 5.1.3's examples) and
   UTF-8, and status responses with codes and hostile text. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "pool.h"
#include "imap-parser.h"
#include "imap-write.h"

static const struct {
	const char *input;
	unsigned int flags;
	const char *astring, *string;
} string_cases[] = {
	{ "INBOX", 0, "INBOX", "\"INBOX\"" },
	{ "a]b", 0, "a]b", "\"a]b\"" },
	{ "BODY[", 0, "\"BODY[\"", "\"BODY[\"" },
	{ "", 0, "\"\"", "\"\"" },
	{ "NIL", 0, "\"NIL\"", "\"NIL\"" },
	{ "nil", 0, "\"nil\"", "\"nil\"" },
	{ "two words", 0, "\"two words\"", "\"two words\"" },
	{ "a%b", 0, "\"a%b\"", "\"a%b\"" },
	{ "a*", 0, "\"a*\"", "\"a*\"" },
	{ "(x)", 0, "\"(x)\"", "\"(x)\"" },
	{ "{3}", 0, "\"{3}\"", "\"{3}\"" },
	{ "say \"hi\"", 0, "\"say \\\"hi\\\"\"", "\"say \\\"hi\\\"\"" },
	{ "back\\slash", 0, "\"back\\\\slash\"", "\"back\\\\slash\"" },
	{ "\"\"\\\\", 0, "\"\\\"\\\"\\\\\\\\\"", "\"\\\"\\\"\\\\\\\\\"" },
	{ "\"\"\"\\\\\"", 0, "{6}\r\n\"\"\"\\\\\"", "{6}\r\n\"\"\"\\\\\"" },
	{ "\\Seen", 0, "\"\\\\Seen\"", "\"\\\\Seen\"" },
	{ "tab\there", 0, "\"tab\there\"", "\"tab\there\"" },
	{ "line\r\nbreak", 0, "{11}\r\nline\r\nbreak",
	  "{11}\r\nline\r\nbreak" },
	{ "lf\n", 0, "{3}\r\nlf\n", "{3}\r\nlf\n" },
	{ "caf\xc3\xa9", 0, "{5}\r\ncaf\xc3\xa9", "{5}\r\ncaf\xc3\xa9" },
	{ "caf\xc3\xa9", IMAP_WRITE_FLAG_UTF8, "\"caf\xc3\xa9\"",
	  "\"caf\xc3\xa9\"" },
	{ "bad\xff", IMAP_WRITE_FLAG_UTF8, "{4}\r\nbad\xff", "{4}\r\nbad\xff" },
};

static void test_strings(void **state)
{
	struct buf out = BUF_INIT;

	for (unsigned int i = 0; i < N_ELEMENTS(string_cases); i++) {
		struct span s = span_from_cstr(string_cases[i].input);

		buf_reset(&out);
		imap_write_astring(&out, s, string_cases[i].flags);
		assert_string_equal(buf_cstr(&out), string_cases[i].astring);
		buf_reset(&out);
		imap_write_string(&out, s, string_cases[i].flags);
		assert_string_equal(buf_cstr(&out), string_cases[i].string);
	}
	buf_reset(&out);
	imap_write_string(&out, span_make("a\0b", 3), 0);
	assert_int_equal(out.used, 8);
	assert_memory_equal(out.data, "{3}\r\na\0b", 8);
	buf_reset(&out);
	imap_write_literal8(&out, span_make("a\0b", 3));
	assert_memory_equal(out.data, "~{3}\r\na\0b", 9);
	buf_reset(&out);
	imap_write_nstring(&out, NULL, 0);
	buf_append_c(&out, ' ');
	imap_write_nstring(&out, "NIL", 0);
	buf_append_c(&out, ' ');
	imap_write_nil(&out);
	assert_string_equal(buf_cstr(&out), "NIL \"NIL\" NIL");
	buf_free(&out);
}

static void test_atom_list(void **state)
{
	static const char *const atoms[] = {
		"\\Seen", "$Label1",     "\\*", "two words", "",     "\\",
		"a]",     "caf\xc3\xa9", "%",   "\\\\x",     "Junk",
	};
	struct buf out = BUF_INIT;

	assert_int_equal(imap_write_atom_list(&out, atoms, N_ELEMENTS(atoms)),
			 7);
	assert_string_equal(buf_cstr(&out), "(\\Seen $Label1 \\* Junk)");
	buf_reset(&out);
	assert_int_equal(imap_write_atom_list(&out, NULL, 0), 0);
	assert_string_equal(buf_cstr(&out), "()");
	buf_reset(&out);
	assert_int_equal(imap_write_atom_list(&out, atoms + 3, 2), 2);
	assert_string_equal(buf_cstr(&out), "()");
	buf_free(&out);
}

/* Written arguments parse back to the same tree. */
static void test_args_roundtrip(void **state)
{
	static const char *const inputs[] = {
		"a1 X atom NIL \"q \\\" \\\\\" (a (b \"c d\") ()) {4+}\r\nx\r\n"
		"z {0+}\r\n ~{3+}\r\na\0b\r\n",
		"a1 X \"caf\xc3\xa9\" BODY[HEADER.FIELDS (From)]<0.5> \\Seen\r\n",
	};

	for (unsigned int i = 0; i < N_ELEMENTS(inputs); i++) {
		unsigned int flags = IMAP_PARSER_FLAG_LITERAL_PLUS |
				     IMAP_PARSER_FLAG_BINARY |
				     IMAP_PARSER_FLAG_UTF8;
		struct imap_parser *p1 =
			imap_parser_create(&imap_parser_limits_auth, flags);
		struct imap_parser *p2 =
			imap_parser_create(&imap_parser_limits_auth, flags);
		struct imap_parser_result r1, r2;
		struct buf out = BUF_INIT, again = BUF_INIT;
		size_t len = strlen(inputs[i]), consumed;
		struct span in;

		if (i == 0)
			len += strlen(inputs[i] + len + 1) + 1;
		assert_int_equal(imap_parser_parse(p1,
						   span_make(inputs[i], len),
						   &consumed, &r1),
				 1);
		assert_int_equal(consumed, len);
		buf_append_str(&out, "a1 X ");
		imap_write_args(&out, r1.cmd.args, r1.cmd.arg_count,
				IMAP_WRITE_FLAG_UTF8);
		buf_append_str(&out, "\r\n");
		in = buf_span(&out);
		/* Our literals are synchronising: continue each. */
		for (;;) {
			assert_int_equal(
				imap_parser_parse(p2, in, &consumed, &r2), 1);
			in = span_skip(in, consumed);
			if (r2.event == IMAP_PARSER_EVENT_COMMAND)
				break;
			assert_int_equal(r2.event, IMAP_PARSER_EVENT_CONTINUE);
		}
		assert_int_equal(in.len, 0);
		buf_append_str(&again, "a1 X ");
		imap_write_args(&again, r2.cmd.args, r2.cmd.arg_count,
				IMAP_WRITE_FLAG_UTF8);
		buf_append_str(&again, "\r\n");
		assert_int_equal(again.used, out.used);
		assert_memory_equal(again.data, out.data, out.used);
		buf_free(&out);
		buf_free(&again);
		imap_parser_destroy(&p1);
		imap_parser_destroy(&p2);
	}
}

static void test_mailbox(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct buf out = BUF_INIT;

	/* RFC 3501 5.1.3's example, and "&" itself. */
	assert_int_equal(imap_write_mailbox(&out, pool,
					    "~peter/mail/\xe5\x8f\xb0\xe5\x8c"
					    "\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8"
					    "\xaa\x9e",
					    0),
			 0);
	assert_string_equal(buf_cstr(&out), "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
	buf_reset(&out);
	assert_int_equal(imap_write_mailbox(&out, pool, "Tom & Jerry", 0), 0);
	assert_string_equal(buf_cstr(&out), "\"Tom &- Jerry\"");
	buf_reset(&out);
	assert_int_equal(imap_write_mailbox(&out, pool,
					    "Entw\xc3\xbc"
					    "rfe",
					    0),
			 0);
	assert_string_equal(buf_cstr(&out), "Entw&APw-rfe");
	buf_reset(&out);
	/* RFC 6855 3: UTF-8 as it is. */
	assert_int_equal(imap_write_mailbox(&out, pool, "Entw\xc3\xbcrfe",
					    IMAP_WRITE_FLAG_UTF8),
			 0);
	assert_string_equal(buf_cstr(&out), "\"Entw\xc3\xbcrfe\"");
	buf_reset(&out);
	assert_int_equal(imap_write_mailbox(&out, pool, "bad\xff", 0), -1);
	assert_int_equal(
		imap_write_mailbox(&out, pool, "bad\xff", IMAP_WRITE_FLAG_UTF8),
		-1);
	assert_int_equal(out.used, 0);
	buf_free(&out);
	pool_unref(&pool);
}

static void test_status(void **state)
{
	struct buf out = BUF_INIT;
	struct imap_parser_error error = {
		.tag = "a1",
		.status = "BAD",
		.code = "TOOBIG",
		.msg = "Literal too large",
		.fatal = true,
	};

	imap_write_status(&out, "a1", IMAP_STATUS_OK, NULL, "LOGIN completed");
	imap_write_status(&out, NULL, IMAP_STATUS_OK, "UIDNEXT 4392",
			  "Predicted next UID");
	imap_write_status(&out, "a2", IMAP_STATUS_NO, "TRYCREATE", "");
	imap_write_status(&out, NULL, IMAP_STATUS_BYE, NULL,
			  "evil\r\na3 OK \xff");
	imap_write_status(&out, "a4", IMAP_STATUS_BAD, "X]Y", "[not a code");
	imap_write_status(&out, "a5", IMAP_STATUS_OK, NULL, "[not a code");
	imap_write_statusf(&out, NULL, IMAP_STATUS_PREAUTH, NULL, "as %s %d",
			   "fred", 7);
	imap_write_continue(&out, NULL);
	imap_write_continue(&out, "Ready");
	imap_write_parser_error(&out, &error);
	error.tag = NULL;
	error.fatal = false;
	error.code = NULL;
	error.msg = "Invalid tag";
	imap_write_parser_error(&out, &error);
	error.status = "NO";
	imap_write_parser_error(&out, &error);
	assert_string_equal(buf_cstr(&out),
			    "a1 OK LOGIN completed\r\n"
			    "* OK [UIDNEXT 4392] Predicted next UID\r\n"
			    "a2 NO [TRYCREATE] NO\r\n"
			    "* BYE evil  a3 OK ?\r\n"
			    "a4 BAD [X Y] [not a code\r\n"
			    "a5 OK  [not a code\r\n"
			    "* PREAUTH as fred 7\r\n"
			    "+ OK\r\n"
			    "+ Ready\r\n"
			    "a1 BAD [TOOBIG] Literal too large\r\n"
			    "* BYE [TOOBIG] Literal too large\r\n"
			    "* BAD Invalid tag\r\n"
			    "* NO Invalid tag\r\n");
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_atom_list),
		cmocka_unit_test(test_args_roundtrip),
		cmocka_unit_test(test_mailbox),
		cmocka_unit_test(test_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
