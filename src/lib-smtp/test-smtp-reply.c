/* test-smtp-reply.c - unit tests for the SMTP client reply parser: a table
   of complete, incomplete and malformed replies (RFC 5321 4.2 codes,
   multiline consistency, line and count limits, bare LF), every reply fed
   byte by byte never completes early, two pipelined replies are taken one
   at a time, enhanced status codes (RFC 3463 2, class agreement per RFC
   2034 4), the one-line form, and EHLO keyword lists (case, SIZE values,
   AUTH mechanisms, unknown keywords). */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "pool.h"
#include "smtp-reply.h"

static const struct {
	const char *input;
	int ret; /* 1 complete, 0 incomplete, -1 error */
	unsigned int code;
	unsigned int lines;
	const char *last_text;
	size_t consumed; /* 0 = whole input */
} reply_cases[] = {
	{ "250 ok\r\n", 1, 250, 1, "ok", 0 },
	{ "250\r\n", 1, 250, 1, "", 0 },
	{ "250 \r\n", 1, 250, 1, "", 0 },
	{ "220 mx.example ESMTP\r\n", 1, 220, 1, "mx.example ESMTP", 0 },
	{ "250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n", 1, 250, 3,
	  "8BITMIME", 0 },
	{ "250-\r\n250 x\r\n", 1, 250, 2, "x", 0 },
	{ "250 ok\n", 1, 250, 1, "ok", 0 }, /* bare LF accepted */
	{ "550 5.1.1 no\tsuch\x01user\r\n", 1, 550, 1, "5.1.1 no?such?user",
	  0 },
	{ "250 ok\r\n250 second\r\n", 1, 250, 1, "ok", 8 },
	{ "250-a\r\n251 b\r\n", -1, 0, 0, NULL, 0 }, /* codes differ */
	{ "250-a\r\n550 b\r\n", -1, 0, 0, NULL, 0 },
	{ "25 ok\r\n", -1, 0, 0, NULL, 0 },
	{ "2500 ok\r\n", -1, 0, 0, NULL, 0 },
	{ "650 ok\r\n", -1, 0, 0, NULL, 0 }, /* first digit 2..5 */
	{ "160 ok\r\n", -1, 0, 0, NULL, 0 },
	{ "260 ok\r\n", -1, 0, 0, NULL, 0 }, /* second digit 0..5 */
	{ "2x0 ok\r\n", -1, 0, 0, NULL, 0 },
	{ "250_ok\r\n", -1, 0, 0, NULL, 0 },
	{ "\r\n", -1, 0, 0, NULL, 0 },
	{ "hello\r\n", -1, 0, 0, NULL, 0 },
	{ "", 0, 0, 0, NULL, 0 },
	{ "250 ok", 0, 0, 0, NULL, 0 },
	{ "250 ok\r", 0, 0, 0, NULL, 0 },
	{ "250-a\r\n", 0, 0, 0, NULL, 0 },
	{ "250-a\r\n250-b\r\n25", 0, 0, 0, NULL, 0 },
};

static void test_reply_table(void **state)
{
	pool_t pool = pool_create("test", 1024);

	for (unsigned int i = 0; i < N_ELEMENTS(reply_cases); i++) {
		struct smtp_reply reply;
		size_t consumed = 0;
		const char *error = NULL;
		struct span in = span_from_cstr(reply_cases[i].input);
		int ret = smtp_reply_parse(in, pool, &reply, &consumed, &error);

		print_message("# case %u\n", i);
		assert_int_equal(ret, reply_cases[i].ret);
		if (ret < 0)
			assert_non_null(error);
		if (ret != 1)
			continue;
		assert_int_equal(reply.code, reply_cases[i].code);
		assert_int_equal(reply.line_count, reply_cases[i].lines);
		assert_string_equal(reply.lines[reply.line_count - 1],
				    reply_cases[i].last_text);
		assert_int_equal(consumed, reply_cases[i].consumed != 0
						   ? reply_cases[i].consumed
						   : in.len);
	}
	pool_unref(&pool);
}

static void test_reply_bytewise(void **state)
{
	pool_t pool = pool_create("test", 1024);

	for (unsigned int i = 0; i < N_ELEMENTS(reply_cases); i++) {
		struct span in = span_from_cstr(reply_cases[i].input);

		if (reply_cases[i].ret != 1)
			continue;
		size_t full = reply_cases[i].consumed != 0
				      ? reply_cases[i].consumed
				      : in.len;
		for (size_t cut = 0; cut < full; cut++) {
			struct smtp_reply reply;
			size_t consumed;
			const char *error;

			assert_int_equal(smtp_reply_parse(span_make(in.p, cut),
							  pool, &reply,
							  &consumed, &error),
					 0);
		}
	}
	pool_unref(&pool);
}

static void test_reply_pipelined(void **state)
{
	pool_t pool = pool_create("test", 1024);
	const char *input = "250 2.1.0 sender ok\r\n"
			    "550-5.1.1 no such\r\n550 5.1.1 user\r\n"
			    "354 go\r\n";
	struct span in = span_from_cstr(input);
	static const unsigned int codes[] = { 250, 550, 354 };
	struct smtp_reply reply;
	size_t consumed;
	const char *error;

	for (unsigned int i = 0; i < 3; i++) {
		assert_int_equal(
			smtp_reply_parse(in, pool, &reply, &consumed, &error),
			1);
		assert_int_equal(reply.code, codes[i]);
		in = span_skip(in, consumed);
	}
	assert_int_equal(in.len, 0);
	pool_unref(&pool);
}

static void test_reply_limits(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct smtp_reply reply;
	size_t consumed;
	const char *error;
	static char line[SMTP_REPLY_MAX_LINE + 16];
	char *many;
	size_t pos = 0;

	/* A line at the limit is fine, one byte longer is not, even before
	   its end arrives. */
	memcpy(line, "250 ", 4);
	memset(line + 4, 'a', SMTP_REPLY_MAX_LINE - 6);
	memcpy(line + SMTP_REPLY_MAX_LINE - 2, "\r\n", 3);
	assert_int_equal(smtp_reply_parse(span_from_cstr(line), pool, &reply,
					  &consumed, &error),
			 1);
	memset(line + 4, 'a', SMTP_REPLY_MAX_LINE);
	line[SMTP_REPLY_MAX_LINE + 4] = '\0';
	assert_int_equal(smtp_reply_parse(span_from_cstr(line), pool, &reply,
					  &consumed, &error),
			 -1);

	many = i_malloc((SMTP_REPLY_MAX_LINES + 1) * 8 + 1);
	for (unsigned int i = 0; i < SMTP_REPLY_MAX_LINES + 1; i++) {
		memcpy(many + pos,
		       i == SMTP_REPLY_MAX_LINES ? "250 x\r\n" : "250-x\r\n",
		       7);
		pos += 7;
	}
	many[pos] = '\0';
	assert_int_equal(smtp_reply_parse(span_from_cstr(many), pool, &reply,
					  &consumed, &error),
			 -1);
	/* Exactly the maximum is accepted. */
	assert_int_equal(smtp_reply_parse(span_from_cstr(many + 7), pool,
					  &reply, &consumed, &error),
			 1);
	assert_int_equal(reply.line_count, SMTP_REPLY_MAX_LINES);
	i_free(many);
	pool_unref(&pool);
}

static const struct {
	const char *text;
	unsigned int reply_code;
	size_t len;
	unsigned int c, s, d;
} enhanced_cases[] = {
	{ "5.1.1 no such user", 550, 5, 5, 1, 1 },
	{ "2.0.0", 250, 5, 2, 0, 0 },
	{ "4.7.123 later", 451, 7, 4, 7, 123 },
	{ "5.123.456 x", 0, 9, 5, 123, 456 },
	{ "5.1.1 mismatch", 250, 0, 0, 0, 0 }, /* RFC 2034 4 */
	{ "3.1.1 x", 0, 0, 0, 0, 0 },
	{ "5.1234.1 x", 550, 0, 0, 0, 0 },
	{ "5.1.1234 x", 550, 0, 0, 0, 0 },
	{ "5..1 x", 550, 0, 0, 0, 0 },
	{ "5.1. x", 550, 0, 0, 0, 0 },
	{ "5.1.1x", 550, 0, 0, 0, 0 },
	{ "ok", 250, 0, 0, 0, 0 },
	{ "", 250, 0, 0, 0, 0 },
};

static void test_enhanced(void **state)
{
	for (unsigned int i = 0; i < N_ELEMENTS(enhanced_cases); i++) {
		struct smtp_enhanced_code code;

		assert_int_equal(smtp_enhanced_code_parse(
					 enhanced_cases[i].text,
					 enhanced_cases[i].reply_code, &code),
				 enhanced_cases[i].len);
		assert_int_equal(code.class_, enhanced_cases[i].c);
		assert_int_equal(code.subject, enhanced_cases[i].s);
		assert_int_equal(code.detail, enhanced_cases[i].d);
	}
}

static void test_one_line(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct smtp_reply reply;
	size_t consumed;
	const char *error;

	assert_int_equal(smtp_reply_parse(span_from_cstr("550-5.1.1 no such\r\n"
							 "550 5.1.1 user\r\n"),
					  pool, &reply, &consumed, &error),
			 1);
	assert_int_equal(reply.enhanced.class_, 5);
	assert_int_equal(reply.enhanced.subject, 1);
	assert_int_equal(reply.enhanced.detail, 1);
	assert_string_equal(smtp_reply_one_line(&reply, pool),
			    "550 5.1.1 no such; 5.1.1 user");
	assert_int_equal(smtp_reply_parse(span_from_cstr("221\r\n"), pool,
					  &reply, &consumed, &error),
			 1);
	assert_string_equal(smtp_reply_one_line(&reply, pool), "221");
	assert_int_equal(reply.enhanced.class_, 0);
	pool_unref(&pool);
}

static void test_ehlo(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct smtp_reply reply;
	struct smtp_ehlo ehlo;
	size_t consumed;
	const char *error;

	assert_int_equal(
		smtp_reply_parse(span_from_cstr("250-mx.example.net hello\r\n"
						"250-pipelining\r\n"
						"250-SIZE 10240000\r\n"
						"250-8BITMIME\r\n"
						"250-X-UNKNOWN foo\r\n"
						"250-AUTH PLAIN LOGIN\r\n"
						"250-Starttls\r\n"
						"250-DSN\r\n"
						"250-SMTPUTF8\r\n"
						"250-ENHANCEDSTATUSCODES\r\n"
						"250-CHUNKING\r\n"
						"250-REQUIRETLS\r\n"
						"250 BINARYMIME\r\n"),
				 pool, &reply, &consumed, &error),
		1);
	assert_int_equal(smtp_ehlo_parse(&reply, pool, &ehlo), 0);
	assert_string_equal(ehlo.domain, "mx.example.net");
	assert_int_equal(
		ehlo.flags,
		SMTP_EHLO_PIPELINING | SMTP_EHLO_SIZE | SMTP_EHLO_8BITMIME |
			SMTP_EHLO_AUTH | SMTP_EHLO_STARTTLS | SMTP_EHLO_DSN |
			SMTP_EHLO_SMTPUTF8 | SMTP_EHLO_ENHANCEDSTATUSCODES |
			SMTP_EHLO_CHUNKING | SMTP_EHLO_REQUIRETLS |
			SMTP_EHLO_BINARYMIME);
	assert_int_equal(ehlo.size_max, 10240000);
	assert_string_equal(ehlo.auth_mechs, "PLAIN LOGIN");

	/* A bare greeting line, no extensions; SIZE without a number. */
	assert_int_equal(smtp_reply_parse(span_from_cstr("250-mx\r\n"
							 "250 SIZE\r\n"),
					  pool, &reply, &consumed, &error),
			 1);
	assert_int_equal(smtp_ehlo_parse(&reply, pool, &ehlo), 0);
	assert_string_equal(ehlo.domain, "mx");
	assert_int_equal(ehlo.flags, SMTP_EHLO_SIZE);
	assert_int_equal(ehlo.size_max, 0);

	/* "STARTTLSX" is not STARTTLS. */
	assert_int_equal(smtp_reply_parse(span_from_cstr("250-mx\r\n"
							 "250 STARTTLSX\r\n"),
					  pool, &reply, &consumed, &error),
			 1);
	assert_int_equal(smtp_ehlo_parse(&reply, pool, &ehlo), 0);
	assert_int_equal(ehlo.flags, 0);

	assert_int_equal(smtp_reply_parse(span_from_cstr("502 no EHLO\r\n"),
					  pool, &reply, &consumed, &error),
			 1);
	assert_int_equal(smtp_ehlo_parse(&reply, pool, &ehlo), -1);
	pool_unref(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_table),
		cmocka_unit_test(test_reply_bytewise),
		cmocka_unit_test(test_reply_pipelined),
		cmocka_unit_test(test_reply_limits),
		cmocka_unit_test(test_enhanced),
		cmocka_unit_test(test_one_line),
		cmocka_unit_test(test_ehlo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
