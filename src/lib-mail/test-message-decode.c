/* test-message-decode.c - unit tests for message-decode.c: tables of
   quoted-printable and base64 inputs with their decoded bytes (soft line
   breaks, upper- and lower-case escapes, invalid escapes kept, trailing
   white space, padding, garbage), each also fed one byte at a time and
   split at every offset; output bounds; encoding names. Run under
   ASan+UBSan. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "message-decode.h"

struct decode_case {
	const char *input;
	const char *expected;
};

static const struct decode_case qp_cases[] = {
	{ "", "" },
	{ "abc", "abc" },
	{ "a=3Db", "a=b" },
	/* RFC 2045 6.7 (1): lower case accepted. */
	{ "a=3db", "a=b" },
	{ "caf=C3=A9", "caf\xc3\xa9" },
	{ "caf=c3=a9", "caf\xc3\xa9" },
	{ "==41", "=A" },
	/* RFC 2045 6.7 (5): soft line breaks, CRLF and LF. */
	{ "ab=\r\ncd", "abcd" },
	{ "ab=\ncd", "abcd" },
	{ "=\r\n=41", "A" },
	{ "ab= \t\r\ncd", "abcd" },
	{ "ab=  \ncd", "abcd" },
	{ "ab=\rcd", "abcd" },
	{ "=\n", "" },
	/* A final "=" is a soft break before the boundary's line end. */
	{ "abc=", "abc" },
	{ "abc= ", "abc" },
	/* RFC 2045 6.7 (3): trailing white space is deleted. */
	{ "ab  \r\ncd", "ab\r\ncd" },
	{ "ab \t\ncd", "ab\ncd" },
	{ "ab  ", "ab" },
	{ "a  b", "a  b" },
	{ "a \t b\r\n", "a \t b\r\n" },
	/* Hard line breaks keep the input's form. */
	{ "a\nb", "a\nb" },
	{ "a\r\nb", "a\r\nb" },
	{ "a\rb", "a\rb" },
	{ "a \rb", "a \rb" },
	{ "a\r", "a\r" },
	/* RFC 2045 6.7 note (2): invalid escapes are kept. */
	{ "a=ZZb", "a=ZZb" },
	{ "a=4", "a=4" },
	{ "a=4Z", "a=4Z" },
	{ "a=4\r\nb", "a=4\r\nb" },
	{ "a= b", "a= b" },
	{ "= \t x", "= \t x" },
	{ "100%=", "100%" },
	{ "=G0=0G", "=G0=0G" },
	{ "=\xff", "=\xff" },
	{ "8bit \xc3\xa9 kept", "8bit \xc3\xa9 kept" },
};

static const struct decode_case b64_cases[] = {
	{ "", "" },
	{ "YWJj", "abc" },
	/* RFC 2045 6.8: padding. */
	{ "YWI=", "ab" },
	{ "YQ==", "a" },
	{ "YQ=", "a" },
	/* Missing padding. */
	{ "YWJjZA", "abcd" },
	{ "YWJjZGU", "abcde" },
	/* A lone sextet holds no octet. */
	{ "YWJjZ", "abc" },
	{ "Y", "" },
	/* RFC 2045 6.8: line breaks and white space are ignored. */
	{ "YWJj\r\nZGVm\r\n", "abcdef" },
	{ "YWJj\nZGVm\n", "abcdef" },
	{ " Y W\tJ j ", "abc" },
	{ "YW\r\nJj", "abc" },
	{ "+/+/", "\xfb\xff\xbf" },
	{ "w6k=", "\xc3\xa9" },
	/* Data ends at "=" ... */
	{ "YQ==YWJj", "a" },
	{ "YWI=\r\nYWJj", "ab" },
	/* ... and at garbage (deliberate deviation). */
	{ "YWJj!ZGVm", "abc" },
	{ "YWJjZ!GVm", "abc" },
	{ "YWJjZG!Vm", "abcd" },
	{ "-YWJj", "" },
	{ "YWJj\r\n--boundary\r\n", "abc" },
	{ "YWJj\x80ZGVm", "abc" },
};

static void check_case(enum message_decode_encoding enc,
		       const struct decode_case *c, size_t idx)
{
	struct span in = span_from_cstr(c->input);
	size_t exp_len = strlen(c->expected);
	struct buf out = BUF_INIT;
	struct message_decoder dec;

	/* All at once. */
	assert_int_equal(message_decode(enc, in, 0, &out), 0);
	if (out.used != exp_len ||
	    memcmp(buf_span(&out).p, c->expected, exp_len) != 0)
		fail_msg("case %zu '%s': got '%s'", idx, c->input,
			 buf_cstr(&out));

	/* One byte at a time. */
	buf_reset(&out);
	message_decoder_init(&dec, enc, 0);
	for (size_t i = 0; i < in.len; i++)
		assert_int_equal(message_decoder_feed(
					 &dec, span_make(in.p + i, 1), &out),
				 0);
	assert_int_equal(message_decoder_finish(&dec, &out), 0);
	if (out.used != exp_len ||
	    memcmp(buf_span(&out).p, c->expected, exp_len) != 0)
		fail_msg("case %zu '%s' bytewise: got '%s'", idx, c->input,
			 buf_cstr(&out));

	/* Split in two at every offset. */
	for (size_t split = 0; split <= in.len; split++) {
		buf_reset(&out);
		message_decoder_init(&dec, enc, 0);
		(void)message_decoder_feed(&dec, span_make(in.p, split), &out);
		(void)message_decoder_feed(
			&dec, span_make(in.p + split, in.len - split), &out);
		(void)message_decoder_finish(&dec, &out);
		if (out.used != exp_len ||
		    memcmp(buf_span(&out).p, c->expected, exp_len) != 0)
			fail_msg("case %zu '%s' split %zu: got '%s'", idx,
				 c->input, split, buf_cstr(&out));
	}
	buf_free(&out);
}

static void test_qp_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(qp_cases); i++)
		check_case(MESSAGE_DECODE_QP, &qp_cases[i], i);
}

static void test_base64_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(b64_cases); i++)
		check_case(MESSAGE_DECODE_BASE64, &b64_cases[i], i);
}

static void test_qp_nul_and_long_space(void **state)
{
	struct buf in = BUF_INIT, out = BUF_INIT;

	(void)state;
	assert_int_equal(
		message_decode(MESSAGE_DECODE_QP, SPAN_LIT("a=00b"), 0, &out),
		0);
	assert_int_equal(out.used, 3);
	assert_memory_equal(out.data, "a\0b", 3);

	/* White space runs longer than the hold-back buffer survive in the
	   middle of a line and vanish at its end. */
	buf_reset(&out);
	buf_append_c(&in, 'a');
	for (int i = 0; i < 1000; i++)
		buf_append_c(&in, i % 2 == 0 ? ' ' : '\t');
	buf_append_c(&in, 'b');
	assert_int_equal(
		message_decode(MESSAGE_DECODE_QP, buf_span(&in), 0, &out), 0);
	assert_int_equal(out.used, in.used);
	assert_memory_equal(out.data, in.data, in.used);

	buf_reset(&out);
	buf_truncate(&in, in.used - 1);
	buf_append_str(&in, "\r\nc");
	(void)message_decode(MESSAGE_DECODE_QP, buf_span(&in), 0, &out);
	/* Whatever was flushed before the line end is white space; the
	   next line is intact. */
	assert_true(out.used >= 4);
	assert_int_equal(out.data[0], 'a');
	assert_memory_equal(out.data + out.used - 3, "\r\nc", 3);
	for (size_t i = 1; i < out.used - 3; i++)
		assert_true(out.data[i] == ' ' || out.data[i] == '\t');
	buf_free(&in);
	buf_free(&out);
}

static void test_identity(void **state)
{
	static const enum message_decode_encoding encs[] = {
		MESSAGE_DECODE_7BIT, MESSAGE_DECODE_8BIT, MESSAGE_DECODE_BINARY,
		MESSAGE_DECODE_UNKNOWN
	};
	static const char data[] = "a=3D b\r\n\0\xff YWJj ";

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(encs); i++) {
		struct buf out = BUF_INIT;

		assert_int_equal(
			message_decode(encs[i],
				       span_make(data, sizeof(data) - 1), 0,
				       &out),
			0);
		assert_int_equal(out.used, sizeof(data) - 1);
		assert_memory_equal(out.data, data, sizeof(data) - 1);
		buf_free(&out);
	}
}

static void test_bounded(void **state)
{
	static const struct {
		enum message_decode_encoding enc;
		const char *input;
		size_t max;
		const char *expected;
		int ret;
	} cases[] = {
		{ MESSAGE_DECODE_QP, "abcdef", 3, "abc", 1 },
		{ MESSAGE_DECODE_QP, "abc", 3, "abc", 0 },
		{ MESSAGE_DECODE_QP, "a=41=42=43", 2, "aA", 1 },
		{ MESSAGE_DECODE_QP, "a\r\nb", 2, "a\r", 1 },
		{ MESSAGE_DECODE_QP, "ab  cd", 3, "ab ", 1 },
		{ MESSAGE_DECODE_QP, "ab=4", 3, "ab=", 1 },
		{ MESSAGE_DECODE_BASE64, "YWJjZGVm", 4, "abcd", 1 },
		{ MESSAGE_DECODE_BASE64, "YWJjZGVm", 6, "abcdef", 0 },
		{ MESSAGE_DECODE_BASE64, "YWJjZA", 3, "abc", 1 },
		{ MESSAGE_DECODE_BASE64, "YWJjZGVm", 1, "a", 1 },
		{ MESSAGE_DECODE_7BIT, "abcdef", 5, "abcde", 1 },
		{ MESSAGE_DECODE_BINARY, "abcdef", 6, "abcdef", 0 },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct buf out = BUF_INIT;
		struct message_decoder dec;
		struct span in = span_from_cstr(cases[i].input);
		int ret = 0;

		assert_int_equal(
			message_decode(cases[i].enc, in, cases[i].max, &out),
			cases[i].ret);
		if (strcmp(buf_cstr(&out), cases[i].expected) != 0)
			fail_msg("case %zu: got '%s'", i, buf_cstr(&out));

		/* Streaming stops at the bound too, and says so. */
		buf_reset(&out);
		message_decoder_init(&dec, cases[i].enc, cases[i].max);
		for (size_t j = 0; j < in.len && ret == 0; j++)
			ret = message_decoder_feed(&dec, span_make(in.p + j, 1),
						   &out);
		assert_int_equal(message_decoder_finish(&dec, &out),
				 cases[i].ret);
		if (strcmp(buf_cstr(&out), cases[i].expected) != 0)
			fail_msg("case %zu bytewise: got '%s'", i,
				 buf_cstr(&out));
		/* Input after the bound is ignored. */
		if (cases[i].ret == 1) {
			size_t used = out.used;

			assert_int_equal(message_decoder_feed(
						 &dec, SPAN_LIT("YWJj"), &out),
					 1);
			assert_int_equal(out.used, used);
		}
		buf_free(&out);
	}
}

static void test_big_base64(void **state)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	struct buf in = BUF_INIT, out = BUF_INIT;

	(void)state;
	/* 2 MB of base64 in 76-character lines. */
	while (in.used < 2 * 1024 * 1024) {
		buf_append(&in, b64, 64);
		buf_append(&in, b64, 12);
		buf_append_str(&in, "\r\n");
	}
	assert_int_equal(
		message_decode(MESSAGE_DECODE_BASE64, buf_span(&in), 0, &out),
		0);
	/* 76 characters are 57 octets; the first three are 00 10 83. */
	assert_int_equal(out.used, in.used / 78 * 57);
	assert_memory_equal(out.data, "\x00\x10\x83", 3);
	buf_reset(&out);
	assert_int_equal(message_decode(MESSAGE_DECODE_BASE64, buf_span(&in),
					1000, &out),
			 1);
	assert_int_equal(out.used, 1000);
	buf_free(&in);
	buf_free(&out);
}

static void test_encoding_parse(void **state)
{
	static const struct {
		const char *name;
		enum message_decode_encoding enc;
	} cases[] = {
		{ NULL, MESSAGE_DECODE_7BIT },
		{ "", MESSAGE_DECODE_7BIT },
		{ "  ", MESSAGE_DECODE_7BIT },
		{ "7bit", MESSAGE_DECODE_7BIT },
		{ "8BIT", MESSAGE_DECODE_8BIT },
		{ "Binary", MESSAGE_DECODE_BINARY },
		{ "quoted-printable", MESSAGE_DECODE_QP },
		{ " Quoted-Printable ", MESSAGE_DECODE_QP },
		{ "BASE64", MESSAGE_DECODE_BASE64 },
		{ "base64x", MESSAGE_DECODE_UNKNOWN },
		{ "x-uuencode", MESSAGE_DECODE_UNKNOWN },
		{ "quoted", MESSAGE_DECODE_UNKNOWN },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(cases); i++)
		assert_int_equal(message_decode_encoding_parse(cases[i].name),
				 cases[i].enc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qp_table),
		cmocka_unit_test(test_base64_table),
		cmocka_unit_test(test_qp_nul_and_long_space),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_big_base64),
		cmocka_unit_test(test_encoding_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
