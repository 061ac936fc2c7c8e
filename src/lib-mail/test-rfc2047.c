/* test-rfc2047.c - unit tests for rfc2047.c: a table of header texts with
   their decoded UTF-8 forms, covering B and Q, joining of adjacent words
   (RFC 2047 6.2), characters split across words, language suffixes,
   unknown charsets and malformed words. Run under ASan+UBSan. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "charset.h"
#include "rfc2047.h"

static const struct {
	const char *input;
	const char *expected;
} tests[] = {
	{ "", "" },
	{ "plain text", "plain text" },
	{ "=?utf-8?q?caf=C3=A9?=", "caf\xc3\xa9" },
	{ "=?UTF-8?Q?a_b?=", "a b" },
	{ "=?iso-8859-1?b?Y2Fm6Q==?=", "caf\xc3\xa9" },
	{ "=?ISO-8859-1?B?Y2Fm6Q?=", "caf\xc3\xa9" }, /* no padding */
	/* RFC 2047 8: the examples. */
	{ "(=?ISO-8859-1?Q?a?=)", "(a)" },
	{ "(=?ISO-8859-1?Q?a?= b)", "(a b)" },
	{ "(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)" },
	{ "(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)" },
	{ "(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)" },
	{ "(=?ISO-8859-1?Q?a_b?=)", "(a b)" },
	{ "(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)" },
	/* A UTF-8 character split across two words. */
	{ "=?utf-8?q?=E2=82?= =?utf-8?q?=AC?=", "\xe2\x82\xac" },
	{ "=?utf-8?b?4oI=?= =?utf-8?b?rA==?=", "\xe2\x82\xac" },
	{ "Re: =?utf-8?q?x?= and =?utf-8?q?y?=", "Re: x and y" },
	/* RFC 2231 5: language suffix. */
	{ "=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore" },
	/* Lenient: inside a word. */
	{ "foo=?utf-8?q?bar?=baz", "foobarbaz" },
	/* Unknown charset: bytes kept, non-UTF-8 replaced. */
	{ "=?x-nope?q?a=E9?=", "a\xef\xbf\xbd" },
	/* Malformed: kept literally. */
	{ "=?utf-8?x?abc?=", "=?utf-8?x?abc?=" },
	{ "=?utf-8?q?abc", "=?utf-8?q?abc" },
	{ "=??q?abc?=", "=??q?abc?=" },
	{ "=?utf-8?q?a b?=", "=?utf-8?q?a b?=" },
	{ "a =?", "a =?" },
	{ "=?utf-8?q?=ZZ?=", "=ZZ" },
	{ "=?utf-8?b?!!!?=", "" },
	/* 8-bit raw text is taken as UTF-8. */
	{ "Gr\xc3\xbc\xc3\x9f"
	  "e",
	  "Gr\xc3\xbc\xc3\x9f"
	  "e" },
	{ "raw\xe9", "raw\xef\xbf\xbd" },
	{ "=?koi8-r?b?8NLJ18XU?=", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5"
				   "\xd1\x82" },
	{ "=?iso-2022-jp?B?GyRCRnxLXBsoQg==?=", "\xe6\x97\xa5\xe6\x9c\xac" },
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		struct buf out = BUF_INIT;

		rfc2047_decode(&out, span_from_cstr(tests[i].input));
		if (strcmp(buf_cstr(&out), tests[i].expected) != 0)
			fail_msg("case %zu '%s': got '%s'", i, tests[i].input,
				 buf_cstr(&out));
		assert_true(charset_utf8_is_valid(buf_span(&out)));
		buf_free(&out);
	}
}

static void test_huge(void **state)
{
	struct buf in = BUF_INIT, out = BUF_INIT;

	(void)state;
	for (int i = 0; i < 5000; i++)
		buf_append_str(&in, "=?utf-8?q?ab?= ");
	rfc2047_decode(&out, buf_span(&in));
	/* Joined words, then the trailing space that follows no word. */
	assert_int_equal(out.used, 10001);
	buf_free(&in);
	buf_free(&out);
}

static void test_truncations(void **state)
{
	const char *s = "=?utf-8?b?4oKs?= =?iso-8859-1?q?caf=E9?= x";

	(void)state;
	/* Every prefix decodes to valid UTF-8 without crashing. */
	for (size_t n = 0; n <= strlen(s); n++) {
		struct buf out = BUF_INIT;

		rfc2047_decode(&out, span_make(s, n));
		assert_true(charset_utf8_is_valid(buf_span(&out)));
		buf_free(&out);
	}
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_huge),
		cmocka_unit_test(test_truncations),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
