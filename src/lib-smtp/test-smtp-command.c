/* test-smtp-command.c - unit tests for smtp-command.c: command line
   splitting, a table of Reverse-path/Forward-path forms (RFC 5321 4.1.2:
   dot-strings, quoted strings, address literals, source routes, null and
   Postmaster paths, SMTPUTF8) with their canonical addresses or refusal,
   the RFC 5321 4.5.3.1 length limits at and past the boundary, ESMTP
   parameter lists and xtext (RFC 3461 4). */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "smtp-command.h"

#include <stdio.h>

#define NUL_ SMTP_PATH_ALLOW_NULL
#define PM_ SMTP_PATH_ALLOW_POSTMASTER
#define U8_ SMTP_PATH_ALLOW_UTF8
#define RT_ SMTP_PATH_ALLOW_ROUTE
#define MAIL_ (NUL_ | RT_)
#define RCPT_ PM_

static const struct {
	const char *input;
	unsigned int flags;
	const char *address; /* canonical, NULL when refused */
	size_t length; /* bytes taken; 0 = strlen(input) */
} path_tests[] = {
	{ "<alice@example.org>", RCPT_, "alice@example.org", 0 },
	{ "<Alice.Smith@Example.ORG>", RCPT_, "Alice.Smith@Example.ORG", 0 },
	{ "<a+tag@example.org>", RCPT_, "a+tag@example.org", 0 },
	{ "<x#$&'*+-/=?^_`{|}~@example.org>", RCPT_,
	  "x#$&'*+-/=?^_`{|}~@example.org", 0 },
	{ "<alice@example.org> SIZE=10", RCPT_, "alice@example.org", 19 },
	/* Null path and Postmaster. */
	{ "<>", MAIL_, "", 0 },
	{ "<>", RCPT_, NULL, 0 },
	{ "<Postmaster>", RCPT_, "Postmaster", 0 },
	{ "<postMASTER>", RCPT_, "Postmaster", 0 },
	{ "<Postmaster>", MAIL_, NULL, 0 },
	{ "<postmaster@example.org>", RCPT_, "postmaster@example.org", 0 },
	/* Quoted local parts: unquoted when a Dot-string would do. */
	{ "<\"alice\"@example.org>", RCPT_, "alice@example.org", 0 },
	{ "<\"a b\"@example.org>", RCPT_, "\"a b\"@example.org", 0 },
	{ "<\"u@remote\"@local>", RCPT_, "\"u@remote\"@local", 0 },
	{ "<\"a\\\"b\"@example.org>", RCPT_, "\"a\\\"b\"@example.org", 0 },
	{ "<\"a\\\\b\"@example.org>", RCPT_, "\"a\\\\b\"@example.org", 0 },
	{ "<\"\\a\"@example.org>", RCPT_, "a@example.org", 0 },
	{ "<\"a.\"@example.org>", RCPT_, "\"a.\"@example.org", 0 },
	{ "<\"\"@example.org>", RCPT_, "\"\"@example.org", 0 },
	{ "<\"a>b\"@example.org>", RCPT_, "\"a>b\"@example.org", 0 },
	{ "<\"a\x01\"@example.org>", RCPT_, NULL, 0 },
	{ "<\"abc@example.org>", RCPT_, NULL, 0 },
	/* Relay-hack local parts are plain local parts. */
	{ "<u%remote@local>", RCPT_, "u%remote@local", 0 },
	{ "<remote!u@local>", RCPT_, "remote!u@local", 0 },
	/* Source routes: dropped on MAIL, refused on RCPT. */
	{ "<@a.example,@b.example:u@c.example>", MAIL_, "u@c.example", 0 },
	{ "<@local:u@remote>", RCPT_, NULL, 0 },
	{ "<@a,@b:u@remote>", RCPT_, NULL, 0 },
	{ "<@:u@remote>", MAIL_, NULL, 0 },
	{ "<@a.example u@c.example>", MAIL_, NULL, 0 },
	/* Address literals. */
	{ "<u@[192.0.2.9]>", RCPT_, "u@[192.0.2.9]", 0 },
	{ "<u@[IPv6:2001:db8::1]>", RCPT_, "u@[IPv6:2001:db8::1]", 0 },
	{ "<u@[ipv6:::1]>", RCPT_, "u@[ipv6:::1]", 0 },
	{ "<u@[192.0.2.256]>", RCPT_, NULL, 0 },
	{ "<u@[192.0.2]>", RCPT_, NULL, 0 },
	{ "<u@[0x7f.0.0.1]>", RCPT_, NULL, 0 },
	{ "<u@[tag:stuff]>", RCPT_, NULL, 0 },
	{ "<u@[2001:db8::1]>", RCPT_, NULL, 0 },
	{ "<u@[]>", RCPT_, NULL, 0 },
	/* Domain syntax: no trailing dot, no empty label, no underscore. */
	{ "<u@local.>", RCPT_, NULL, 0 },
	{ "<u@.local>", RCPT_, NULL, 0 },
	{ "<u@lo..cal>", RCPT_, NULL, 0 },
	{ "<u@-local>", RCPT_, NULL, 0 },
	{ "<u@local->", RCPT_, NULL, 0 },
	{ "<u@lo_cal>", RCPT_, NULL, 0 },
	{ "<u@>", RCPT_, NULL, 0 },
	{ "<u@lo cal>", RCPT_, NULL, 0 },
	{ "<u@local@remote>", RCPT_, NULL, 0 },
	{ "<u.@local>", RCPT_, NULL, 0 },
	{ "<.u@local>", RCPT_, NULL, 0 },
	{ "<u..v@local>", RCPT_, NULL, 0 },
	{ "<@local>", RCPT_, NULL, 0 },
	{ "<u>", RCPT_, NULL, 0 },
	{ "<u@local", RCPT_, NULL, 0 },
	{ "u@local", RCPT_, NULL, 0 },
	{ "", RCPT_, NULL, 0 },
	{ "<", RCPT_, NULL, 0 },
	{ "<u\x00v@local>", RCPT_, NULL, 0 },
	{ "<u v@local>", RCPT_, NULL, 0 },
	{ "<u(comment)@local>", RCPT_, NULL, 0 },
	/* SMTPUTF8 (RFC 6531 3.3) only when allowed. */
	{ "<j\xc3\xb6rg@example.org>", RCPT_, NULL, 0 },
	{ "<j\xc3\xb6rg@example.org>", RCPT_ | U8_, "j\xc3\xb6rg@example.org",
	  0 },
	{ "<u@b\xc3\xbc"
	  "cher.example>",
	  RCPT_ | U8_,
	  "u@b\xc3\xbc"
	  "cher.example",
	  0 },
	{ "<u@b\xc3\xbc"
	  "cher.example>",
	  RCPT_, NULL, 0 },
	{ "<\"j\xc3\xb6 rg\"@example.org>", RCPT_ | U8_,
	  "\"j\xc3\xb6 rg\"@example.org", 0 },
	/* Malformed UTF-8: overlong, surrogate, truncated, stray byte. */
	{ "<\xc0\xaf@example.org>", RCPT_ | U8_, NULL, 0 },
	{ "<\xed\xa0\x80@example.org>", RCPT_ | U8_, NULL, 0 },
	{ "<\xe2\x82@example.org>", RCPT_ | U8_, NULL, 0 },
	{ "<\x80@example.org>", RCPT_ | U8_, NULL, 0 },
	{ "<\xf4\x90\x80\x80@example.org>", RCPT_ | U8_, NULL, 0 },
};

static void test_path_table(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(path_tests); i++) {
		struct smtp_path path;
		const char *error = NULL;
		struct span in = span_from_cstr(path_tests[i].input);
		int ret;

		if (strcmp(path_tests[i].input, "<u\x00v@local>") == 0)
			in = span_make("<u\0v@local>", 11);
		ret = smtp_parse_path(in, path_tests[i].flags, &path, &error);
		if (path_tests[i].address == NULL) {
			if (ret == 0)
				fail_msg("accepted %s as %s",
					 path_tests[i].input, path.address);
			assert_non_null(error);
			continue;
		}
		if (ret < 0)
			fail_msg("refused %s: %s", path_tests[i].input, error);
		assert_string_equal(path.address, path_tests[i].address);
		assert_int_equal(path.length, path_tests[i].length != 0
						      ? path_tests[i].length
						      : in.len);
	}
}

static void test_path_fields(void **state)
{
	struct smtp_path path;
	const char *error;

	assert_int_equal(smtp_parse_path(SPAN_LIT("<\"a b\"@[192.0.2.1]>"),
					 RCPT_, &path, &error),
			 0);
	assert_true(path.quoted);
	assert_true(path.domain_literal);
	assert_string_equal(path.local, "a b");
	assert_string_equal(path.domain, "[192.0.2.1]");
	assert_false(path.utf8);

	assert_int_equal(smtp_parse_path(SPAN_LIT("<@r.example:u@x.example>"),
					 MAIL_, &path, &error),
			 0);
	assert_true(path.had_route);
	assert_string_equal(path.local, "u");
	assert_string_equal(path.domain, "x.example");

	assert_int_equal(smtp_parse_path(SPAN_LIT("<>"), MAIL_, &path, &error),
			 0);
	assert_true(path.null_path);
	assert_int_equal(path.length, 2);

	assert_int_equal(
		smtp_parse_path(SPAN_LIT("<Postmaster>"), RCPT_, &path, &error),
		0);
	assert_true(path.postmaster);

	assert_int_equal(smtp_parse_path(SPAN_LIT("<\xc3\xa9@x.example>"),
					 RCPT_ | U8_, &path, &error),
			 0);
	assert_true(path.utf8);
}

static void test_path_lengths(void **state)
{
	char local[80], domain[300], in[400];
	struct smtp_path path;
	const char *error;

	/* RFC 5321 4.5.3.1.1: 64 octets of local part, not 65. */
	memset(local, 'a', 64);
	local[64] = '\0';
	snprintf(in, sizeof(in), "<%s@example.org>", local);
	assert_int_equal(
		smtp_parse_path(span_from_cstr(in), RCPT_, &path, &error), 0);
	snprintf(in, sizeof(in), "<%sa@example.org>", local);
	assert_int_equal(
		smtp_parse_path(span_from_cstr(in), RCPT_, &path, &error), -1);
	/* Quoted: 64 octets including the quotes. */
	memset(local, 'a', 62);
	local[62] = '\0';
	snprintf(in, sizeof(in), "<\"%s\"@example.org>", local);
	assert_int_equal(
		smtp_parse_path(span_from_cstr(in), RCPT_, &path, &error), 0);
	snprintf(in, sizeof(in), "<\"%sa\"@example.org>", local);
	assert_int_equal(
		smtp_parse_path(span_from_cstr(in), RCPT_, &path, &error), -1);
	/* RFC 5321 4.5.3.1.3: the path is at most 256 octets with "<>":
	   local "a" + "@" + domain of 252 = 254 + 2. */
	{
		size_t o = 0;

		while (o < 252) {
			size_t n = 252 - o > 63 ? 62 : 252 - o;

			memset(domain + o, 'd', n);
			o += n;
			if (o < 252)
				domain[o++] = '.';
		}
		domain[o] = '\0';
	}
	assert_int_equal(strlen(domain), 252);
	snprintf(in, sizeof(in), "<a@%s>", domain);
	assert_int_equal(strlen(in), 256);
	assert_int_equal(
		smtp_parse_path(span_from_cstr(in), RCPT_, &path, &error), 0);
	snprintf(in, sizeof(in), "<ab@%s>", domain);
	assert_int_equal(
		smtp_parse_path(span_from_cstr(in), RCPT_, &path, &error), -1);
	/* A label of 64 octets. */
	memset(domain, 'd', 64);
	domain[64] = '\0';
	snprintf(in, sizeof(in), "<a@%s.org>", domain);
	assert_int_equal(
		smtp_parse_path(span_from_cstr(in), RCPT_, &path, &error), -1);
}

static void test_command_parse(void **state)
{
	struct smtp_command cmd;
	const char *error;

	assert_int_equal(
		smtp_command_parse(SPAN_LIT("mail FROM:<a@b> "), &cmd, &error),
		0);
	assert_true(span_eq(cmd.verb, SPAN_LIT("mail")));
	assert_true(span_eq(cmd.args, SPAN_LIT("FROM:<a@b>")));
	assert_int_equal(smtp_command_parse(SPAN_LIT("QUIT"), &cmd, &error), 0);
	assert_int_equal(cmd.args.len, 0);
	assert_int_equal(smtp_command_parse(SPAN_LIT(""), &cmd, &error), -1);
	assert_int_equal(smtp_command_parse(SPAN_LIT(" NOOP"), &cmd, &error),
			 -1);
	assert_int_equal(smtp_command_parse(SPAN_LIT("NO0P"), &cmd, &error),
			 -1);
	assert_int_equal(smtp_command_parse(SPAN_LIT("NOOP\rX"), &cmd, &error),
			 -1);
	assert_int_equal(
		smtp_command_parse(span_make("NOOP \0", 6), &cmd, &error), -1);
	assert_int_equal(smtp_command_parse(SPAN_LIT("NOOP\tx"), &cmd, &error),
			 -1);
	assert_int_equal(
		smtp_command_parse(SPAN_LIT("ABCDEFGHIJKLMNOPQ"), &cmd, &error),
		-1);
	/* 8-bit arguments pass; the path parser decides. */
	assert_int_equal(smtp_command_parse(SPAN_LIT("RCPT TO:<\xc3\xa9@x>"),
					    &cmd, &error),
			 0);
}

static void test_params(void **state)
{
	struct smtp_param p[SMTP_MAX_PARAMS];
	unsigned int count;
	const char *error;

	assert_int_equal(smtp_parse_params(SPAN_LIT(" SIZE=100  BODY=8BITMIME "
						    "SMTPUTF8"),
					   false, p, SMTP_MAX_PARAMS, &count,
					   &error),
			 0);
	assert_int_equal(count, 3);
	assert_true(span_eq(p[0].keyword, SPAN_LIT("SIZE")));
	assert_true(span_eq(p[0].value, SPAN_LIT("100")));
	assert_true(p[1].has_value);
	assert_false(p[2].has_value);
	assert_int_equal(
		smtp_parse_params(SPAN_EMPTY, false, p, 4, &count, &error), 0);
	assert_int_equal(count, 0);
	assert_int_equal(smtp_parse_params(SPAN_LIT(" SIZE=1 size=2"), false, p,
					   4, &count, &error),
			 -1);
	assert_int_equal(smtp_parse_params(SPAN_LIT(" SIZE="), false, p, 4,
					   &count, &error),
			 -1);
	assert_int_equal(smtp_parse_params(SPAN_LIT(" -X=1"), false, p, 4,
					   &count, &error),
			 -1);
	assert_int_equal(smtp_parse_params(SPAN_LIT(" X=a=b"), false, p, 4,
					   &count, &error),
			 -1);
	assert_int_equal(smtp_parse_params(SPAN_LIT(" A B C D E"), false, p, 4,
					   &count, &error),
			 -1);
	assert_int_equal(smtp_parse_params(SPAN_LIT(" X=\xc3\xa9"), false, p, 4,
					   &count, &error),
			 -1);
	assert_int_equal(smtp_parse_params(SPAN_LIT(" X=\xc3\xa9"), true, p, 4,
					   &count, &error),
			 0);
}

static void test_xtext(void **state)
{
	char out[32];

	assert_int_equal(
		smtp_xtext_decode(SPAN_LIT("rfc822;u+2Bt@x"), out, sizeof(out)),
		0);
	assert_string_equal(out, "rfc822;u+t@x");
	assert_int_equal(smtp_xtext_decode(SPAN_LIT("a+3D"), out, sizeof(out)),
			 0);
	assert_string_equal(out, "a=");
	assert_int_equal(smtp_xtext_decode(SPAN_LIT("a+2b"), out, sizeof(out)),
			 -1); /* lower-case hex is not xtext */
	assert_int_equal(smtp_xtext_decode(SPAN_LIT("a+2"), out, sizeof(out)),
			 -1);
	assert_int_equal(smtp_xtext_decode(SPAN_LIT("a+00"), out, sizeof(out)),
			 -1);
	assert_int_equal(smtp_xtext_decode(SPAN_LIT("a=b"), out, sizeof(out)),
			 -1);
	assert_int_equal(smtp_xtext_decode(SPAN_LIT("0123456789"), out, 10),
			 -1);
	assert_int_equal(smtp_xtext_decode(SPAN_LIT("012345678"), out, 10), 0);
	assert_int_equal(
		smtp_xtext_encode(SPAN_LIT("a+b=c d"), out, sizeof(out)), 0);
	assert_string_equal(out, "a+2Bb+3Dc+20d");
	assert_int_equal(smtp_xtext_decode(span_from_cstr(out), out + 16, 16),
			 0);
	assert_string_equal(out + 16, "a+b=c d");
}

static void test_domain(void **state)
{
	assert_true(smtp_domain_is_valid(SPAN_LIT("a-b.c0"), false));
	assert_true(smtp_domain_is_valid(SPAN_LIT("123.example"), false));
	assert_false(smtp_domain_is_valid(SPAN_LIT("a-.c"), false));
	assert_false(smtp_domain_is_valid(SPAN_LIT(""), false));
	assert_false(smtp_domain_is_valid(SPAN_LIT("a..b"), false));
	assert_false(smtp_domain_is_valid(SPAN_LIT("\xc3\xa9.x"), false));
	assert_true(smtp_domain_is_valid(SPAN_LIT("\xc3\xa9.x"), true));
	assert_true(smtp_utf8_is_valid(SPAN_LIT("\xf0\x9f\x98\x80")));
	assert_false(smtp_utf8_is_valid(SPAN_LIT("\xf0\x9f\x98")));
	assert_false(smtp_utf8_is_valid(SPAN_LIT("\xe0\x80\xaf")));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_table),
		cmocka_unit_test(test_path_fields),
		cmocka_unit_test(test_path_lengths),
		cmocka_unit_test(test_command_parse),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_xtext),
		cmocka_unit_test(test_domain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
