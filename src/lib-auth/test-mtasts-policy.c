/* test-mtasts-policy.c - unit tests for our MTA-STS policy text and id
   (RFC 8461 3.1, 3.2): exact text, id format and stability, id change on
   every field change, mode parsing, refused inputs. */

#include "mtasts-policy.h"
#include "settings.h"

#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <ctype.h>
#include <cmocka.h>

static const char *const two_mx[] = { "mx1.example.org", "*.example.net" };

static void test_text(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct mtasts_policy p = { MTASTS_MODE_ENFORCE, two_mx, 2, 86400 };
	const char *text, *error;

	(void)state;
	assert_int_equal(mtasts_policy_format(pool, &p, &text, &error), 0);
	assert_string_equal(text, "version: STSv1\r\n"
				  "mode: enforce\r\n"
				  "mx: mx1.example.org\r\n"
				  "mx: *.example.net\r\n"
				  "max_age: 86400\r\n");
	p.mode = MTASTS_MODE_NONE;
	p.mx_count = 0;
	assert_int_equal(mtasts_policy_format(pool, &p, &text, &error), 0);
	assert_string_equal(text, "version: STSv1\r\n"
				  "mode: none\r\n"
				  "max_age: 86400\r\n");
	pool_unref(&pool);
}

static void test_id(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct mtasts_policy p = { MTASTS_MODE_TESTING, two_mx, 1,
				   MTASTS_DEFAULT_MAX_AGE };
	const char *text, *error, *id, *id2;

	(void)state;
	assert_int_equal(mtasts_policy_format(pool, &p, &text, &error), 0);
	id = mtasts_policy_id(pool, text);
	/* RFC 8461 3.1: 1*32(ALPHA / DIGIT) */
	assert_int_equal(strlen(id), 32);
	for (const char *c = id; *c != '\0'; c++)
		assert_true(isalnum((unsigned char)*c));
	/* The same text gives the same id (sha256 of "version: STSv1\r\n
	   mode: testing\r\nmx: mx1.example.org\r\nmax_age: 604800\r\n",
	   computed with sha256sum). */
	assert_string_equal(id, mtasts_policy_id(pool, text));
	assert_string_equal(id, "e0331c72719afd8bc4a96b757769a92b");
	assert_string_equal(mtasts_txt_record(pool, id),
			    p_strdup_printf(pool, "v=STSv1; id=%s", id));

	/* Every change of the policy changes the id. */
	p.mode = MTASTS_MODE_ENFORCE;
	assert_int_equal(mtasts_policy_format(pool, &p, &text, &error), 0);
	id2 = mtasts_policy_id(pool, text);
	assert_string_not_equal(id, id2);
	id = id2;
	p.max_age++;
	assert_int_equal(mtasts_policy_format(pool, &p, &text, &error), 0);
	id2 = mtasts_policy_id(pool, text);
	assert_string_not_equal(id, id2);
	id = id2;
	p.mx_count = 2;
	assert_int_equal(mtasts_policy_format(pool, &p, &text, &error), 0);
	id2 = mtasts_policy_id(pool, text);
	assert_string_not_equal(id, id2);
	pool_unref(&pool);
}

static void test_mode(void **state)
{
	enum mtasts_mode mode;
	static const char *const names[] = { "none", "testing", "enforce" };

	(void)state;
	for (unsigned int i = 0; i < 3; i++) {
		assert_int_equal(mtasts_mode_parse(names[i], &mode), 0);
		assert_string_equal(mtasts_mode_name(mode), names[i]);
	}
	assert_int_equal(mtasts_mode_parse("Enforce", &mode), -1);
	assert_int_equal(mtasts_mode_parse("", &mode), -1);
	assert_int_equal(mtasts_mode_parse("reject", &mode), -1);
}

static void test_refused(void **state)
{
	pool_t pool = pool_create("test", 1024);
	static const char *const bad[] = {
		"",
		".",
		"mx.example.org.",
		"*",
		"*.",
		"**.example.org",
		"mx..example.org",
		"a b.example.org",
		"_x.example.org",
		"localhost",
		"mx.*.example.org",
	};
	struct mtasts_policy p = { MTASTS_MODE_TESTING, NULL, 1, 86400 };
	const char *text = NULL, *error = NULL;

	(void)state;
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p.mx = &bad[i];
		error = NULL;
		assert_int_equal(mtasts_policy_format(pool, &p, &text, &error),
				 -1);
		assert_non_null(error);
	}
	p.mx = two_mx;
	p.max_age = 0;
	assert_int_equal(mtasts_policy_format(pool, &p, &text, &error), -1);
	p.max_age = MTASTS_MAX_AGE_LIMIT + 1;
	assert_int_equal(mtasts_policy_format(pool, &p, &text, &error), -1);
	p.max_age = MTASTS_MAX_AGE_LIMIT;
	assert_int_equal(mtasts_policy_format(pool, &p, &text, &error), 0);
	p.mx_count = 0;
	assert_int_equal(mtasts_policy_format(pool, &p, &text, &error), -1);
	pool_unref(&pool);
}

static void test_ours(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct marmot_settings set = { 0 };
	const char *text, *id, *error;

	(void)state;
	set.hostname = (char *)"mx1.example.org";
	set.mta_sts_mode = (char *)"testing";
	set.mta_sts_max_age = 604800;
	assert_int_equal(mtasts_policy_ours(pool, &set, &text, &id, &error), 0);
	assert_string_equal(text, "version: STSv1\r\n"
				  "mode: testing\r\n"
				  "mx: mx1.example.org\r\n"
				  "max_age: 604800\r\n");
	assert_string_equal(id, "e0331c72719afd8bc4a96b757769a92b");
	set.mta_sts_mode = (char *)"bogus";
	assert_int_equal(mtasts_policy_ours(pool, &set, &text, &id, &error),
			 -1);
	pool_unref(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text), cmocka_unit_test(test_id),
		cmocka_unit_test(test_mode), cmocka_unit_test(test_refused),
		cmocka_unit_test(test_ours),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
