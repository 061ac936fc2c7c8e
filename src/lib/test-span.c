/* test-span.c - unit tests of span.c: equality (exact and ASCII
   case-insensitive), prefixes, byte and substring search, trimming,
   splitting and span_to_u64() at its edges (empty, non-digits, overflow at
   the limit, limits below a single digit). */

#include "lib.h"
#include "span.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define S(lit) SPAN_LIT(lit)

static void test_span_macros(void **state)
{
	struct span s = SPAN_LIT("abc");

	assert_int_equal(s.len, 3);
	assert_int_equal(SPAN_EMPTY.len, 0);
	assert_non_null(SPAN_EMPTY.p);
	s = span_from_cstr("");
	assert_int_equal(s.len, 0);
	s = span_make("a\0b", 3);
	assert_int_equal(s.len, 3);
	s = span_skip(S("hello"), 2);
	assert_true(span_eq(s, S("llo")));
	s = span_skip(S("hello"), 5);
	assert_int_equal(s.len, 0);
	/* skipping past the end stops at the end */
	s = span_skip(S("hello"), 99);
	assert_int_equal(s.len, 0);
}

static void test_span_eq(void **state)
{
	const struct {
		struct span a, b;
		bool eq, eq_ci;
	} tests[] = {
		{ S(""), S(""), true, true },
		{ S("a"), S(""), false, false },
		{ S("abc"), S("abc"), true, true },
		{ S("abc"), S("ABC"), false, true },
		{ S("MAIL FROM"), S("mail from"), false, true },
		{ S("abc"), S("abd"), false, false },
		{ S("abc"), S("abcd"), false, false },
		{ S("a\0b"), S("a\0c"), false, false },
		{ S("a\0b"), S("a\0B"), false, true },
		/* only ASCII letters fold: '@' and '`' are 0x40 and 0x60 */
		{ S("@"), S("`"), false, false },
		{ S("["), S("{"), false, false },
		{ S("\xc3\xa9"), S("\xc3\x89"), false, false },
	};

	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		assert_int_equal(span_eq(tests[i].a, tests[i].b), tests[i].eq);
		assert_int_equal(span_eq(tests[i].b, tests[i].a), tests[i].eq);
		assert_int_equal(span_eq_ci(tests[i].a, tests[i].b),
				 tests[i].eq_ci);
		assert_int_equal(span_eq_ci(tests[i].b, tests[i].a),
				 tests[i].eq_ci);
	}
	/* empty spans with different pointers are equal */
	assert_true(span_eq(span_make("x", 0), span_make("y", 0)));
}

static void test_span_starts_with_ci(void **state)
{
	const struct {
		struct span s, prefix;
		bool expected;
	} tests[] = {
		{ S("MAIL FROM:<a>"), S("mail from:"), true },
		{ S("mail"), S("mail from:"), false },
		{ S("anything"), S(""), true },
		{ S(""), S(""), true },
		{ S(""), S("a"), false },
		{ S("RCPT"), S("RCPT"), true },
		{ S("RCPX"), S("rcpt"), false },
	};

	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		assert_int_equal(
			span_starts_with_ci(tests[i].s, tests[i].prefix),
			tests[i].expected);
	}
}

static void test_span_find_byte(void **state)
{
	const struct {
		struct span s;
		uint8_t c;
		ssize_t expected;
	} tests[] = {
		{ S(""), 'a', -1 },     { S("a"), 'a', 0 },
		{ S("abc"), 'c', 2 },   { S("abcabc"), 'b', 1 },
		{ S("abc"), 'x', -1 },  { S("a\0b"), '\0', 1 },
		{ S("\xff"), 0xff, 0 },
	};

	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		assert_int_equal(span_find_byte(tests[i].s, tests[i].c),
				 tests[i].expected);
	}
	/* a length limit is respected: the byte after the span is not seen */
	assert_int_equal(span_find_byte(span_make("abc", 2), 'c'), -1);
}

static void test_span_find(void **state)
{
	const struct {
		struct span s, needle;
		ssize_t expected;
	} tests[] = {
		{ S("hello world"), S("world"), 6 },
		{ S("hello world"), S("hello"), 0 },
		{ S("hello world"), S("o"), 4 },
		{ S("hello world"), S("worlds"), -1 },
		{ S("hello"), S(""), 0 },
		{ S(""), S(""), 0 },
		{ S(""), S("a"), -1 },
		{ S("ab"), S("abc"), -1 },
		{ S("\r\n.\r\n"), S("\r\n.\r\n"), 0 },
		{ S("data\r\n.\r\n"), S("\r\n.\r\n"), 4 },
		{ S("aaab"), S("aab"), 1 },
		{ S("a\0bc"), S("\0b"), 1 },
	};

	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		assert_int_equal(span_find(tests[i].s, tests[i].needle),
				 tests[i].expected);
	}
	assert_int_equal(span_find(span_make("abcd", 3), S("cd")), -1);
}

static void test_span_trim(void **state)
{
	const struct {
		struct span in, out;
	} tests[] = {
		{ S(""), S("") },
		{ S("   "), S("") },
		{ S("\t \t"), S("") },
		{ S("a"), S("a") },
		{ S("  a b  "), S("a b") },
		{ S("\ta\t"), S("a") },
		/* only SP and HTAB */
		{ S("\r\na\r\n"), S("\r\na\r\n") },
		{ S("\va\f"), S("\va\f") },
		{ S(" \xa0"), S("\xa0") },
	};

	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		struct span t = span_trim(tests[i].in);

		assert_true(span_eq(t, tests[i].out));
		/* the result is a view into the input */
		if (t.len > 0) {
			assert_true(t.p >= tests[i].in.p &&
				    t.p + t.len <=
					    tests[i].in.p + tests[i].in.len);
		}
	}
}

static void test_span_split(void **state)
{
	const struct {
		struct span s;
		uint8_t c;
		bool found;
		struct span head, tail;
	} tests[] = {
		{ S("name=value"), '=', true, S("name"), S("value") },
		{ S("=value"), '=', true, S(""), S("value") },
		{ S("name="), '=', true, S("name"), S("") },
		{ S("a=b=c"), '=', true, S("a"), S("b=c") },
		{ S("novalue"), '=', false, S("novalue"), S("") },
		{ S(""), '=', false, S(""), S("") },
		{ S("="), '=', true, S(""), S("") },
		{ S("a,b"), ',', true, S("a"), S("b") },
	};

	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		struct span head, tail;

		assert_int_equal(
			span_split(tests[i].s, tests[i].c, &head, &tail),
			tests[i].found);
		assert_true(span_eq(head, tests[i].head));
		assert_true(span_eq(tail, tests[i].tail));
	}
}

static void test_span_split_all(void **state)
{
	/* splitting in a loop visits every field, including empty ones */
	static const char *const expected[] = { "a", "", "bc", "", "" };
	struct span rest = S("a,,bc,,"), item;
	size_t n = 0;
	bool more = true;

	while (more) {
		more = span_split(rest, ',', &item, &rest);
		assert_true(n < N_ELEMENTS(expected));
		assert_true(span_eq(item, span_from_cstr(expected[n])));
		n++;
	}
	assert_int_equal(n, N_ELEMENTS(expected));
}

static void test_span_to_u64(void **state)
{
	const struct {
		struct span s;
		uint64_t max;
		int ret;
		uint64_t num;
	} tests[] = {
		{ S("0"), UINT64_MAX, 0, 0 },
		{ S("1"), UINT64_MAX, 0, 1 },
		{ S("42"), UINT64_MAX, 0, 42 },
		{ S("000123"), UINT64_MAX, 0, 123 },
		{ S("18446744073709551615"), UINT64_MAX, 0, UINT64_MAX },
		{ S("18446744073709551616"), UINT64_MAX, -1, 0 },
		{ S("18446744073709551620"), UINT64_MAX, -1, 0 },
		{ S("99999999999999999999"), UINT64_MAX, -1, 0 },
		{ S("184467440737095516150"), UINT64_MAX, -1, 0 },
		{ S("00000000000000000000000000000001"), UINT64_MAX, 0, 1 },
		/* the limit is inclusive */
		{ S("65535"), 65535, 0, 65535 },
		{ S("65536"), 65535, -1, 0 },
		{ S("65540"), 65535, -1, 0 },
		{ S("100"), 99, -1, 0 },
		{ S("99"), 99, 0, 99 },
		/* limits below one digit (max - digit must not wrap) */
		{ S("0"), 0, 0, 0 },
		{ S("1"), 0, -1, 0 },
		{ S("9"), 5, -1, 0 },
		{ S("5"), 5, 0, 5 },
		{ S("10"), 5, -1, 0 },
		/* not numbers */
		{ S(""), UINT64_MAX, -1, 0 },
		{ S(" 1"), UINT64_MAX, -1, 0 },
		{ S("1 "), UINT64_MAX, -1, 0 },
		{ S("+1"), UINT64_MAX, -1, 0 },
		{ S("-1"), UINT64_MAX, -1, 0 },
		{ S("1a"), UINT64_MAX, -1, 0 },
		{ S("0x10"), UINT64_MAX, -1, 0 },
		{ S("1.0"), UINT64_MAX, -1, 0 },
		{ S("1\0"), UINT64_MAX, -1, 0 },
		{ S("\xd9\xa1"), UINT64_MAX, -1, 0 }, /* Arabic-Indic one */
	};

	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		uint64_t num = 0xdeadbeef;
		int ret = span_to_u64(tests[i].s, tests[i].max, &num);

		if (ret != tests[i].ret)
			fail_msg("[%zu] returned %d", i, ret);
		if (ret == 0)
			assert_true(num == tests[i].num);
		else
			assert_true(num == 0xdeadbeef); /* untouched */
	}
	/* the span's length is respected: "123" limited to 2 bytes */
	uint64_t num;
	assert_int_equal(span_to_u64(span_make("123", 2), 1000, &num), 0);
	assert_true(num == 12);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_span_macros),
		cmocka_unit_test(test_span_eq),
		cmocka_unit_test(test_span_starts_with_ci),
		cmocka_unit_test(test_span_find_byte),
		cmocka_unit_test(test_span_find),
		cmocka_unit_test(test_span_trim),
		cmocka_unit_test(test_span_split),
		cmocka_unit_test(test_span_split_all),
		cmocka_unit_test(test_span_to_u64),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
