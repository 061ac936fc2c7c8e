/* test-mtasts.c - unit tests for mtasts.c: the _mta-sts TXT record (RFC
   8461 3.1), policy files (3.2) with their error cases, MX pattern
   matching (4.1), the cache (max_age expiry, replacement, touch, bound)
   and its file format round trip. */

#include "mtasts.h"
#include "buf.h"

#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static void test_txt(void **state ATTR_UNUSED)
{
	static const struct {
		const char *text;
		const char *id; /* NULL: invalid */
	} cases[] = {
		{ "v=STSv1; id=20160831085700Z;", "20160831085700Z" },
		{ "v=STSv1;id=abc", "abc" },
		{ "v=STSv1 ; id=abc ; ext=1", "abc" },
		{ "v=STSv1; ext=x; id=Z9;", "Z9" },
		{ "v=STSv1; id=abc; id=def", "abc" },
		{ "v=STSv1; id=12345678901234567890123456789012",
		  "12345678901234567890123456789012" },
		{ "v=STSv1; id=123456789012345678901234567890123", NULL },
		{ "v=STSv1; id=", NULL },
		{ "v=STSv1; id=a-b", NULL },
		{ "v=STSv1;", NULL },
		{ "v=STSv1", NULL },
		{ "v=STSv2; id=abc", NULL },
		{ "v=stsv1; id=abc", NULL },
		{ "id=abc; v=STSv1", NULL },
		{ "v=STSv1; ; id=abc", NULL },
		{ "v=STSv1; junk; id=abc", NULL },
		{ "", NULL },
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		char id[MTASTS_ID_MAX + 1];
		const char *error = NULL;
		int ret = mtasts_txt_parse(cases[i].text, strlen(cases[i].text),
					   id, &error);

		if (cases[i].id == NULL) {
			if (ret != -1 || error == NULL)
				fail_msg("case %zu should fail: %s", i,
					 cases[i].text);
		} else {
			if (ret != 0)
				fail_msg("case %zu: %s: %s", i, cases[i].text,
					 error);
			assert_string_equal(id, cases[i].id);
		}
	}
}

static void test_txt_select(void **state ATTR_UNUSED)
{
	const struct dns_txt one[] = {
		{ "v=spf1 -all", 11 },
		{ "v=STSv1; id=one", 15 },
	};
	const struct dns_txt two[] = {
		{ "v=STSv1; id=one", 15 },
		{ "v=STSv1; id=two", 15 },
	};
	const struct dns_txt bad[] = { { "v=STSv1; nothing", 16 } };
	char id[MTASTS_ID_MAX + 1];
	const char *error;

	assert_int_equal(mtasts_txt_select(one, 2, id, &error), 1);
	assert_string_equal(id, "one");
	assert_int_equal(mtasts_txt_select(one, 1, id, &error), 0);
	assert_int_equal(mtasts_txt_select(NULL, 0, id, &error), 0);
	assert_int_equal(mtasts_txt_select(two, 2, id, &error), -1);
	assert_int_equal(mtasts_txt_select(bad, 1, id, &error), -1);
}

static void test_policy(void **state ATTR_UNUSED)
{
	static const struct {
		const char *text;
		int mode; /* -1: invalid */
		unsigned int max_age, mx_count;
		const char *mx0;
	} cases[] = {
		{ "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
		  "mx: *.example.net\r\nmx: backupmx.example.com\r\n"
		  "max_age: 604800\r\n",
		  MTASTS_MODE_ENFORCE, 604800, 3, "mail.example.com" },
		{ "version: STSv1\nmode: testing\nmx: MX.Example.COM.\n"
		  "max_age: 86400",
		  MTASTS_MODE_TESTING, 86400, 1, "mx.example.com" },
		{ "version:STSv1\nmode:none\nmax_age:0\n", MTASTS_MODE_NONE, 0,
		  0, NULL },
		{ "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 1\n"
		  "future: field\n\n",
		  MTASTS_MODE_ENFORCE, 1, 1, "a.test" },
		{ "version: STSv1\nmode: enforce\nmax_age: 1\n", -1, 0, 0,
		  NULL },
		{ "mode: enforce\nmx: a.test\nmax_age: 1\n", -1, 0, 0, NULL },
		{ "version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 1\n", -1,
		  0, 0, NULL },
		{ "version: STSv1\nmode: strict\nmx: a.test\nmax_age: 1\n", -1,
		  0, 0, NULL },
		{ "version: STSv1\nmode: enforce\nmx: a.test\n", -1, 0, 0,
		  NULL },
		{ "version: STSv1\nmode: enforce\nmx: a.test\n"
		  "max_age: 31557601\n",
		  -1, 0, 0, NULL },
		{ "version: STSv1\nmode: enforce\nmx: a.test\n"
		  "max_age: 99999999999\n",
		  -1, 0, 0, NULL },
		{ "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -1\n",
		  -1, 0, 0, NULL },
		{ "version: STSv1\nmode: enforce\nmx: a.*.test\nmax_age: 1\n",
		  -1, 0, 0, NULL },
		{ "version: STSv1\nmode: enforce\nmx: bad_host!\nmax_age: 1\n",
		  -1, 0, 0, NULL },
		{ "version: STSv1\nmode: enforce\nmx a.test\nmax_age: 1\n", -1,
		  0, 0, NULL },
		{ "", -1, 0, 0, NULL },
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		pool_t pool = pool_create("test", 256);
		struct mtasts_policy p;
		const char *error = NULL;
		int ret = mtasts_policy_parse(
			pool, (const uint8_t *)cases[i].text,
			strlen(cases[i].text), &p, &error);

		if (cases[i].mode < 0) {
			if (ret != -1 || error == NULL)
				fail_msg("case %zu should fail", i);
		} else {
			if (ret != 0)
				fail_msg("case %zu: %s", i, error);
			assert_int_equal(p.mode, cases[i].mode);
			assert_int_equal(p.max_age, cases[i].max_age);
			assert_int_equal(p.mx_count, cases[i].mx_count);
			if (cases[i].mx0 != NULL)
				assert_string_equal(p.mx[0], cases[i].mx0);
		}
		pool_unref(&pool);
	}
}

static void test_policy_limits(void **state ATTR_UNUSED)
{
	pool_t pool = pool_create("test", 256);
	struct buf b = BUF_INIT;
	struct mtasts_policy p;
	const char *error;
	const uint8_t nul[] = "version: STSv1\nmode: none\0x\nmax_age: 1\n";

	buf_append_str(&b, "version: STSv1\nmode: enforce\nmax_age: 5\n");
	for (unsigned int i = 0; i < MTASTS_MX_MAX + 10; i++)
		buf_printf(&b, "mx: mx%u.test\n", i);
	assert_int_equal(
		mtasts_policy_parse(pool, buf_span(&b).p, b.used, &p, &error),
		0);
	assert_int_equal(p.mx_count, MTASTS_MX_MAX);
	while (b.used <= MTASTS_POLICY_MAX_SIZE)
		buf_append_str(&b, "# padding padding padding: x\n");
	assert_int_equal(
		mtasts_policy_parse(pool, buf_span(&b).p, b.used, &p, &error),
		-1);
	assert_int_equal(
		mtasts_policy_parse(pool, nul, sizeof(nul) - 1, &p, &error),
		-1);
	buf_free(&b);
	pool_unref(&pool);
}

static void test_mx_match(void **state ATTR_UNUSED)
{
	static const struct {
		const char *pattern, *host;
		bool match;
	} cases[] = {
		{ "mail.example.com", "mail.example.com", true },
		{ "mail.example.com", "MAIL.Example.com.", true },
		{ "mail.example.com.", "mail.example.com", true },
		{ "mail.example.com", "mail.example.co", false },
		{ "mail.example.com", "xmail.example.com", false },
		{ "*.example.com", "mx.example.com", true },
		{ "*.example.com", "MX.EXAMPLE.COM.", true },
		/* RFC 8461 4.1: the wildcard is exactly one label. */
		{ "*.example.com", "a.mx.example.com", false },
		{ "*.example.com", "example.com", false },
		{ "*.example.com", ".example.com", false },
		{ "*.example.com", "mx.example.net", false },
		{ "*.example.com", "mxexample.com", false },
		{ "*.com", "example.com", true },
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		if (mtasts_mx_match(cases[i].pattern, cases[i].host) !=
		    cases[i].match)
			fail_msg("case %zu: %s vs %s", i, cases[i].pattern,
				 cases[i].host);
	}
}

static void make_policy(pool_t pool, const char *text, struct mtasts_policy *p)
{
	const char *error;

	assert_int_equal(mtasts_policy_parse(pool, (const uint8_t *)text,
					     strlen(text), p, &error),
			 0);
}

static void test_cache(void **state ATTR_UNUSED)
{
	struct mtasts_cache *cache = mtasts_cache_create();
	pool_t pool = pool_create("test", 256);
	struct mtasts_policy p1, p2;
	const struct mtasts_policy *got;
	const char *id;

	make_policy(pool,
		    "version: STSv1\nmode: enforce\nmx: *.a.test\n"
		    "max_age: 100\n",
		    &p1);
	make_policy(pool,
		    "version: STSv1\nmode: testing\nmx: mx.a.test\n"
		    "mx: mx2.a.test\nmax_age: 1000\n",
		    &p2);
	assert_null(mtasts_cache_lookup(cache, "a.test", 1000, &id));
	mtasts_cache_store(cache, "A.Test", "id1", &p1, 1000);
	/* The policy is copied: the caller's pool may go. */
	pool_clear(pool);
	got = mtasts_cache_lookup(cache, "a.TEST", 1099, &id);
	assert_non_null(got);
	assert_string_equal(id, "id1");
	assert_int_equal(got->mode, MTASTS_MODE_ENFORCE);
	assert_string_equal(got->mx[0], "*.a.test");
	assert_true(mtasts_policy_mx_allowed(got, "mx9.a.test"));
	assert_false(mtasts_policy_mx_allowed(got, "mx9.b.test"));
	/* touch extends, max_age after the touch expires it. */
	assert_true(mtasts_cache_touch(cache, "a.test", 1050));
	assert_false(mtasts_cache_touch(cache, "b.test", 1050));
	assert_non_null(mtasts_cache_lookup(cache, "a.test", 1149, &id));
	assert_null(mtasts_cache_lookup(cache, "a.test", 1150, &id));
	assert_int_equal(mtasts_cache_count(cache), 0);

	make_policy(pool,
		    "version: STSv1\nmode: testing\nmx: mx.a.test\n"
		    "mx: mx2.a.test\nmax_age: 1000\n",
		    &p2);
	mtasts_cache_store(cache, "a.test", "id1", &p2, 2000);
	make_policy(pool,
		    "version: STSv1\nmode: enforce\nmx: *.a.test\n"
		    "max_age: 100\n",
		    &p1);
	mtasts_cache_store(cache, "a.test", "id2", &p1, 2000);
	assert_int_equal(mtasts_cache_count(cache), 1);
	got = mtasts_cache_lookup(cache, "a.test", 2001, &id);
	assert_string_equal(id, "id2");
	assert_int_equal(got->mode, MTASTS_MODE_ENFORCE);

	for (unsigned int i = 0; i < MTASTS_CACHE_MAX + 5; i++) {
		char domain[32];

		snprintf(domain, sizeof(domain), "d%u.test", i);
		mtasts_cache_store(cache, domain, "x", &p1, 2000);
	}
	assert_int_equal(mtasts_cache_count(cache), MTASTS_CACHE_MAX);
	/* The oldest went first. */
	assert_null(mtasts_cache_lookup(cache, "a.test", 2001, &id));
	assert_non_null(mtasts_cache_lookup(cache, "d10004.test", 2001, &id));
	mtasts_cache_destroy(&cache);
	assert_null(cache);
	mtasts_cache_destroy(&cache);
	pool_unref(&pool);
}

static void test_cache_file(void **state ATTR_UNUSED)
{
	struct mtasts_cache *cache = mtasts_cache_create();
	struct mtasts_cache *back = mtasts_cache_create();
	pool_t pool = pool_create("test", 256);
	struct mtasts_policy p;
	const struct mtasts_policy *got;
	struct buf out = BUF_INIT;
	const char *id;
	const char *junk = "bad line\n"
			   "x.test id 10 enforce 100 -\n" /* no mx */
			   "y.test id! 10 testing 100 a.test\n" /* bad id */
			   "z.test id 10 testing 5 a.test\n" /* expired */
			   "w.test id 99999 testing 5 a.test\n" /* future */
			   "v.test id 10 testing 100 a..test\n"; /* bad mx */

	make_policy(pool,
		    "version: STSv1\nmode: enforce\nmx: *.a.test\n"
		    "mx: mx.b.test\nmax_age: 100\n",
		    &p);
	mtasts_cache_store(cache, "a.test", "id1", &p, 10);
	make_policy(pool, "version: STSv1\nmode: none\nmax_age: 100\n", &p);
	mtasts_cache_store(cache, "n.test", "id2", &p, 10);
	mtasts_cache_write(cache, &out);
	buf_append_str(&out, junk);
	assert_int_equal(mtasts_cache_read(back, buf_cstr(&out), out.used, 50),
			 2);
	got = mtasts_cache_lookup(back, "a.test", 50, &id);
	assert_non_null(got);
	assert_string_equal(id, "id1");
	assert_int_equal(got->mx_count, 2);
	assert_string_equal(got->mx[1], "mx.b.test");
	assert_int_equal(got->mode, MTASTS_MODE_ENFORCE);
	/* The fetch time is kept: expiry is the same as before. */
	assert_null(mtasts_cache_lookup(back, "a.test", 110, &id));
	got = mtasts_cache_lookup(back, "n.test", 50, &id);
	assert_non_null(got);
	assert_int_equal(got->mode, MTASTS_MODE_NONE);
	/* Expired entries are not read. */
	assert_int_equal(mtasts_cache_read(back, buf_cstr(&out), out.used, 110),
			 0);
	buf_free(&out);
	mtasts_cache_destroy(&cache);
	mtasts_cache_destroy(&back);
	pool_unref(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txt),
		cmocka_unit_test(test_txt_select),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_policy_limits),
		cmocka_unit_test(test_mx_match),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_cache_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
