/* test-rfc2231.c - unit tests for rfc2231.c: a table of parameter lists
   with the decoded and raw values expected, covering quoting, RFC 2231
   continuations (in and out of order, with gaps), charset'lang'value,
   mixed extended sections, duplicates, RFC 2047 words in plain values and
   junk. Run under ASan+UBSan. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "pool.h"
#include "rfc2231.h"

/* expected: "name[*]=value|raw;" for each parameter */
static const struct {
	const char *input;
	const char *expected;
} tests[] = {
	{ "", "" },
	{ "; charset=us-ascii", "charset=us-ascii|us-ascii;" },
	{ ";CharSet=\"UTF-8\"", "charset=UTF-8|UTF-8;" },
	{ "; a=1; b=\"x \\\"y\\\"\" ; c=3", "a=1|1;b=x \"y\"|x \"y\";c=3|3;" },
	{ " ; a = 1 (comment) ; b=2", "a=1|1;b=2|2;" },
	/* RFC 2231 3: continuations. */
	{ "; URL*0=\"ftp://\"; URL*1=\"cs.utk.edu/pub/moore/\";"
	  " URL*2=\"bulk-mailer.tar\"",
	  "url=ftp://cs.utk.edu/pub/moore/bulk-mailer.tar|"
	  "ftp://cs.utk.edu/pub/moore/bulk-mailer.tar;" },
	{ "; n*1=b; n*0=a", "n=ab|ab;" },
	{ "; n*0=a; n*2=c", "n=a|a;" },
	/* RFC 2231 4: charset'language'value. */
	{ "; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A",
	  "title*=This is ***fun***|us-ascii'en-us'This%20is%20%2A%2A%2Afun"
	  "%2A%2A%2A;" },
	{ "; filename*=UTF-8''%E2%82%AC%20rates.pdf",
	  "filename*=\xe2\x82\xac rates.pdf|UTF-8''%E2%82%AC%20rates.pdf;" },
	{ "; filename*=iso-8859-1''caf%E9.txt",
	  "filename*=caf\xc3\xa9.txt|iso-8859-1''caf%E9.txt;" },
	/* RFC 2231 4.1: both combined, a plain section percent-encoded in
	   the raw form. */
	{ "; title*0*=us-ascii'en'This%20is%20even%20more%20;"
	  " title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"",
	  "title*=This is even more ***fun*** isn't it!|us-ascii'en'This%20is"
	  "%20even%20more%20%2A%2A%2Afun%2A%2A%2A%20isn%27t%20it!;" },
	/* Plain and extended side by side are two entries. */
	{ "; filename=\"a.txt\"; filename*=utf-8''b.txt",
	  "filename=a.txt|a.txt;filename*=b.txt|utf-8''b.txt;" },
	/* Plain duplicates are kept (as Dovecot shows them). */
	{ "; a=1; A=2", "a=1|1;a=2|2;" },
	/* RFC 2047 words in a plain value are decoded in value only. */
	{ "; name=\"=?utf-8?q?r=C3=A9sum=C3=A9?=.doc\"",
	  "name=r\xc3\xa9sum\xc3\xa9.doc|=?utf-8?q?r=C3=A9sum=C3=A9?=.doc;" },
	/* Unknown charset: bytes kept as UTF-8 with U+FFFD. */
	{ "; f*=x-bogus''a%FFb", "f*=a\xef\xbf\xbd"
				 "b|x-bogus''a%FFb;" },
	/* Junk. */
	{ "; =x; a; b=; c=\"unterminated", "c=unterminated|unterminated;" },
	{ ";;;; a=1 junk; b=2", "a=1|1;b=2|2;" },
	{ "; f*=utf-8'only-one-quote",
	  "f*=only-one-quote|utf-8'only-one-quote;" },
	{ "; f*0*=%4", "f*=%4|%4;" },
};

static void dump(struct buf *out, const struct mime_param *p,
		 unsigned int count)
{
	for (unsigned int i = 0; i < count; i++)
		buf_printf(out, "%s%s=%s|%s;", p[i].name,
			   p[i].extended ? "*" : "", p[i].value,
			   p[i].raw_value);
}

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		pool_t pool = pool_create("test", 256);
		struct mime_param *params;
		struct buf out = BUF_INIT;
		unsigned int n;

		n = rfc2231_parse(pool, span_from_cstr(tests[i].input),
				  &params);
		dump(&out, params, n);
		if (strcmp(buf_cstr(&out), tests[i].expected) != 0)
			fail_msg("case %zu: got '%s'", i, buf_cstr(&out));
		buf_free(&out);
		pool_unref(&pool);
	}
}

static void test_get(void **state)
{
	pool_t pool = pool_create("test", 256);
	struct mime_param *params;
	unsigned int n;

	(void)state;
	n = rfc2231_parse(pool,
			  SPAN_LIT("; filename=a; FILENAME*=utf-8''b;"
				   " x=1"),
			  &params);
	assert_int_equal(n, 3);
	assert_string_equal(mime_param_get(params, n, "FileName"), "b");
	assert_string_equal(mime_param_get(params, n, "x"), "1");
	assert_null(mime_param_get(params, n, "y"));
	pool_unref(&pool);
}

static void test_limits(void **state)
{
	pool_t pool = pool_create("test", 256);
	struct buf in = BUF_INIT;
	struct mime_param *params;
	unsigned int n;

	(void)state;
	for (int i = 0; i < 500; i++)
		buf_printf(&in, "; p%d=v", i);
	n = rfc2231_parse(pool, buf_span(&in), &params);
	assert_int_equal(n, RFC2231_MAX_PARAMS);
	buf_reset(&in);
	/* Sections past the bound are dropped, not looped over. */
	for (int i = 0; i < 60; i++)
		buf_printf(&in, "; n*%d=x", i);
	buf_append_str(&in, "; n*100000=y");
	n = rfc2231_parse(pool, buf_span(&in), &params);
	assert_true(n >= 1);
	assert_int_equal(strlen(params[0].value), 60);
	buf_free(&in);
	pool_unref(&pool);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_get),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
