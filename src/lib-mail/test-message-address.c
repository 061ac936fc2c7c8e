/* test-message-address.c - unit tests for message-address.c: a table of
   address-list header values with the entries expected, covering display
   names, quoted strings, comments, groups, obsolete routes and phrases,
   and broken input. Run under ASan+UBSan. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "pool.h"
#include "message-address.h"

/* expected: "name|route|mailbox|domain;" per entry, "-" for NULL */
static const struct {
	const char *input;
	const char *expected;
} tests[] = {
	{ "", "" },
	{ "user@example.org", "-|-|user|example.org;" },
	{ "<user@example.org>", "-|-|user|example.org;" },
	{ "John Doe <jd@example.org>", "John Doe|-|jd|example.org;" },
	{ "\"Doe, John\" <jd@example.org>, b@x.y",
	  "Doe, John|-|jd|example.org;-|-|b|x.y;" },
	{ "jd@example.org (John Doe)", "John Doe|-|jd|example.org;" },
	{ "John (middle) Doe <jd@ex.org>", "John Doe|-|jd|ex.org;" },
	{ "=?utf-8?q?J=C3=B6rg?= <j@ex.org>",
	  "=?utf-8?q?J=C3=B6rg?=|-|j|ex.org;" },
	/* RFC 5322 A.1.3: groups. */
	{ "A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
	  "-|-|A Group|-;Ed Jones|-|c|a.test;-|-|joe|where.test;"
	  "John|-|jdoe|one.test;-|-|-|-;" },
	{ "Undisclosed recipients:;", "-|-|Undisclosed recipients|-;-|-|-|-;" },
	{ "g: a@b", "-|-|g|-;-|-|a|b;-|-|-|-;" },
	/* RFC 5322 4.4: obs-route. */
	{ "<@a.test,@b.test:u@c.test>", "-|@a.test,@b.test|u|c.test;" },
	/* RFC 5322 4.4: obs-local-part and obs-phrase. */
	{ "John Q. Public <j . q @ ex . org>", "John Q. Public|-|j.q|ex.org;" },
	{ "\"quoted local\"@ex.org", "-|-|quoted local|ex.org;" },
	{ "u@[192.0.2.1]", "-|-|u|[192.0.2.1];" },
	/* Broken. */
	{ "user", "-|-|user|MISSING_DOMAIN;" },
	{ "@example.org", "-|-|MISSING_MAILBOX|example.org;" },
	{ "Name <>", "Name|-|MISSING_MAILBOX|MISSING_DOMAIN;" },
	{ "<a@b", "-|-|a|b;" },
	{ ",,, a@b ,,", "-|-|a|b;" },
	{ "a@b c@d", "-|-|a@bc|d;" }, /* the last "@" splits */
	{ "\"unterminated <a@b>", "-|-|unterminated <a@b>|MISSING_DOMAIN;" },
	{ "(only a comment)", "" },
	{ "J\xc3\xb6rg <j\xc3\xb6rg@ex.org>",
	  "J\xc3\xb6rg|-|j\xc3\xb6rg|ex.org;" },
};

static void dump(struct buf *out, const struct message_address *a)
{
	for (; a != NULL; a = a->next) {
		buf_printf(out, "%s|%s|%s|%s;", a->name ? a->name : "-",
			   a->route ? a->route : "-",
			   a->mailbox ? a->mailbox : "-",
			   a->domain ? a->domain : "-");
	}
}

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		pool_t pool = pool_create("test", 256);
		struct buf out = BUF_INIT;

		dump(&out, message_address_parse(
				   pool, span_from_cstr(tests[i].input), 100));
		if (strcmp(buf_cstr(&out), tests[i].expected) != 0)
			fail_msg("case %zu '%s': got '%s'", i, tests[i].input,
				 buf_cstr(&out));
		buf_free(&out);
		pool_unref(&pool);
	}
}

static void test_max(void **state)
{
	pool_t pool = pool_create("test", 256);
	struct buf in = BUF_INIT;
	const struct message_address *a;
	unsigned int n = 0;

	(void)state;
	for (int i = 0; i < 1000; i++)
		buf_printf(&in, "u%d@example.org, ", i);
	for (a = message_address_parse(pool, buf_span(&in), 10); a != NULL;
	     a = a->next)
		n++;
	assert_int_equal(n, 10);
	buf_free(&in);
	pool_unref(&pool);
}

static void test_prefixes(void **state)
{
	const char *s = "G: \"A, B\" (c) <@r:a@b.c>, d@e; f@g (h)";

	(void)state;
	for (size_t n = 0; n <= strlen(s); n++) {
		pool_t pool = pool_create("test", 256);
		const struct message_address *a;

		for (a = message_address_parse(pool, span_make(s, n), 100);
		     a != NULL; a = a->next) {
			/* A host without a mailbox never appears. */
			assert_true(a->mailbox != NULL || a->domain == NULL);
		}
		pool_unref(&pool);
	}
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_max),
		cmocka_unit_test(test_prefixes),
	};
	return cmocka_run_group_tests(t, NULL, NULL);
}
