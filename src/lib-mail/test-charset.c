/* test-charset.c - unit tests for charset.c: a table of charsets and
   inputs with their UTF-8 forms (ICU conversions, aliases, unknown and
   hostile names, invalid sequences becoming U+FFFD), and the UTF-8
   validator. Run by meson under ASan+UBSan. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "charset.h"

static const struct {
	const char *charset;
	const char *input;
	const char *expected;
	int ret;
} conv_tests[] = {
	{ NULL, "plain", "plain", 0 },
	{ "utf-8", "gr\xc3\xbc\xc3\x9f", "gr\xc3\xbc\xc3\x9f", 0 },
	{ "UTF-8", "bad\xff", "bad\xef\xbf\xbd", 0 },
	{ "us-ascii", "caf\xc3\xa9", "caf\xc3\xa9", 0 },
	{ "iso-8859-1", "caf\xe9", "caf\xc3\xa9", 0 },
	{ "ISO_8859-1", "\xa3", "\xc2\xa3", 0 },
	{ "latin1", "\xfc", "\xc3\xbc", 0 },
	{ "iso-8859-15", "\xa4", "\xe2\x82\xac", 0 },
	{ "windows-1252", "\x80", "\xe2\x82\xac", 0 },
	{ "cp1252", "\x93q\x94", "\xe2\x80\x9cq\xe2\x80\x9d", 0 },
	{ "koi8-r", "\xf0\xd2\xc9", "\xd0\x9f\xd1\x80\xd0\xb8", 0 },
	{ "shift_jis", "\x93\xfa", "\xe6\x97\xa5", 0 },
	{ "euc-jp", "\xc6\xfc", "\xe6\x97\xa5", 0 },
	{ "iso-2022-jp", "\x1b$BF|\x1b(B", "\xe6\x97\xa5", 0 },
	{ "gb2312", "\xc8\xd5", "\xe6\x97\xa5", 0 },
	{ "big5", "\xa4\xe9", "\xe6\x97\xa5", 0 },
	{ "utf-16be",
	  "\x00"
	  "A",
	  NULL, 0 }, /* checked separately (NUL) */
	{ "x-unknown-charset",
	  "a\xe9"
	  "b",
	  "a\xef\xbf\xbd"
	  "b",
	  -1 },
	{ "", "x", "x", -1 },
	{ "../../etc/passwd", "x", "x", -1 },
	{ "utf-8\n", "x", "x", -1 },
	{ "a-name-that-is-much-too-long-to-be-any-charset-at-all-anywhere-xx",
	  "x", "x", -1 },
	{ "shift_jis", "a\x93", "a\xef\xbf\xbd", 0 }, /* truncated */
	{ "shift_jis", "\xff", "\xef\xbf\xbd", 0 }, /* invalid */
};

static void test_conversions(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(conv_tests); i++) {
		struct buf out = BUF_INIT;
		int ret;

		if (conv_tests[i].expected == NULL)
			continue;
		ret = charset_to_utf8(&out, conv_tests[i].charset,
				      span_from_cstr(conv_tests[i].input));
		if (ret != conv_tests[i].ret ||
		    strcmp(buf_cstr(&out), conv_tests[i].expected) != 0)
			fail_msg("case %zu (%s): got %d '%s'", i,
				 conv_tests[i].charset, ret, buf_cstr(&out));
		assert_true(charset_utf8_is_valid(buf_span(&out)));
		buf_free(&out);
	}
}

static void test_utf16(void **state)
{
	struct buf out = BUF_INIT;

	(void)state;
	assert_int_equal(charset_to_utf8(&out, "utf-16be",
					 span_make("\x00"
						   "A\xd8\x3d\xde\x00",
						   6)),
			 0);
	assert_string_equal(buf_cstr(&out), "A\xf0\x9f\x98\x80");
	buf_reset(&out);
	/* A lone surrogate becomes U+FFFD. */
	assert_int_equal(
		charset_to_utf8(&out, "utf-16be", span_make("\xd8\x3d", 2)), 0);
	assert_string_equal(buf_cstr(&out), "\xef\xbf\xbd");
	buf_free(&out);
}

static void test_known(void **state)
{
	(void)state;
	assert_true(charset_is_known("UTF-8"));
	assert_true(charset_is_known("iso-8859-2"));
	assert_true(charset_is_known("Windows-1251"));
	assert_false(charset_is_known("no-such-charset"));
	assert_false(charset_is_known("utf 8"));
	assert_false(charset_is_known(""));
}

static void test_utf8_validity(void **state)
{
	static const struct {
		const char *s;
		bool valid;
	} tests[] = {
		{ "", true },
		{ "abc", true },
		{ "\xc3\xa9", true },
		{ "\xf4\x8f\xbf\xbf", true },
		{ "\xc0\xaf", false }, /* overlong */
		{ "\xe0\x80\xaf", false }, /* overlong */
		{ "\xed\xa0\x80", false }, /* surrogate */
		{ "\xf4\x90\x80\x80", false }, /* > U+10FFFF */
		{ "\xc3", false }, /* truncated */
		{ "\x80", false },
	};
	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		assert_int_equal(
			charset_utf8_is_valid(span_from_cstr(tests[i].s)),
			tests[i].valid);
	}
}

static void test_sanitize(void **state)
{
	struct buf out = BUF_INIT;

	(void)state;
	charset_utf8_sanitize(&out, span_make("a\0\xc0\xaf"
					      "b",
					      5));
	assert_int_equal(out.used, 1 + 1 + 3 + 3 + 1);
	assert_memory_equal(out.data,
			    "a\0\xef\xbf\xbd\xef\xbf\xbd"
			    "b",
			    9);
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conversions),
		cmocka_unit_test(test_utf16),
		cmocka_unit_test(test_known),
		cmocka_unit_test(test_utf8_validity),
		cmocka_unit_test(test_sanitize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
