/* test-mail-address.c - unit tests for mail-address.c: a table of valid and
   invalid addresses with their normalised forms or errors, domains on their
   own (ASCII and IDN), length limits at and past the boundary, and the
   sub-address splitter. Run by meson under ASan+UBSan. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "pool.h"
#include "mail-address.h"

#include <stdlib.h>

static const struct {
	const char *input;
	const char *expected; /* normalised address, or NULL if refused */
	const char *error; /* expected error when refused */
} address_tests[] = {
	/* Valid, with normalisation. */
	{ "alice@example.org", "alice@example.org", NULL },
	{ "Alice@EXAMPLE.org", "alice@example.org", NULL },
	{ "ALICE.SMITH@Mail.Example.ORG", "alice.smith@mail.example.org",
	  NULL },
	{ "u@local", "u@local", NULL },
	{ "a+tag@example.org", "a+tag@example.org", NULL },
	{ "o'brien@example.org", "o'brien@example.org", NULL },
	{ "x#$&'*+-/=?^_`{|}~@example.org", "x#$&'*+-/=?^_`{|}~@example.org",
	  NULL },
	{ "user@xn--bcher-kva.example", "user@xn--bcher-kva.example", NULL },
	{ "user@b\xc3\xbc"
	  "cher.example",
	  "user@xn--bcher-kva.example", NULL },
	{ "user@B\xc3\x9c"
	  "CHER.example",
	  "user@xn--bcher-kva.example", NULL },
	{ "j\xc3\xb6rg@example.org", "j\xc3\xb6rg@example.org", NULL },
	{ "\xe7\x94\xa8\xe6\x88\xb7@example.org",
	  "\xe7\x94\xa8\xe6\x88\xb7@example.org", NULL },
	{ "\xf0\x9f\x98\x80@example.org", "\xf0\x9f\x98\x80@example.org",
	  NULL },
	{ "a@a-b.c0", "a@a-b.c0", NULL },
	{ "a@1.2.3.example", "a@1.2.3.example", NULL },
	{ "a@123.com4", "a@123.com4", NULL },
	/* Exactly 64 octets of local part. */
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "@example.org",
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "@example.org",
	  NULL },
	/* Exactly 63 octets of label. */
	{ "a@bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.org",
	  "a@bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.org",
	  NULL },

	/* Invalid: structure. */
	{ "", NULL, "empty address" },
	{ "alice", NULL, "missing '@'" },
	{ "@example.org", NULL, "empty local part" },
	{ "alice@", NULL, "empty domain" },
	{ "a@b@example.org", NULL, "more than one '@'" },
	{ "\"u@remote\"@local", NULL, "quoted local parts are not allowed" },
	{ "\"alice\"@example.org", NULL, "quoted local parts are not allowed" },
	{ "@local:u@remote", NULL, "source routes are not allowed" },
	{ "@a,@b:u@remote", NULL, "source routes are not allowed" },
	/* Invalid: local part. */
	{ "u%remote@local", NULL,
	  "'%' and '!' are not allowed in the local part" },
	{ "remote!u@local", NULL,
	  "'%' and '!' are not allowed in the local part" },
	{ ".alice@example.org", NULL, "local part starts with '.'" },
	{ "alice.@example.org", NULL, "local part ends with '.'" },
	{ "al..ice@example.org", NULL, "consecutive dots in local part" },
	{ "al ice@example.org", NULL, "invalid character in local part" },
	{ "al\tice@example.org", NULL, "invalid character in local part" },
	{ "al\x01ice@example.org", NULL, "invalid character in local part" },
	{ "al\x7f"
	  "ice@example.org",
	  NULL, "invalid character in local part" },
	{ "a:b@example.org", NULL, "invalid character in local part" },
	{ "a\\b@example.org", NULL, "invalid character in local part" },
	{ "<a>@example.org", NULL, "invalid character in local part" },
	{ "[a]@example.org", NULL, "invalid character in local part" },
	{ "a(b)@example.org", NULL, "invalid character in local part" },
	{ "a,b@example.org", NULL, "invalid character in local part" },
	{ "a;b@example.org", NULL, "invalid character in local part" },
	{ "a\xff@example.org", NULL, "invalid UTF-8 in local part" },
	{ "a\xc3@example.org", NULL, "invalid UTF-8 in local part" },
	{ "a\xc0\xaf@example.org", NULL, "invalid UTF-8 in local part" },
	{ "a\xe0\x80\xaf@example.org", NULL, "invalid UTF-8 in local part" },
	{ "a\xed\xa0\x80@example.org", NULL, "invalid UTF-8 in local part" },
	{ "a\xf4\x90\x80\x80@example.org", NULL,
	  "invalid UTF-8 in local part" },
	{ "a\xc2\x85@example.org", NULL, "invalid UTF-8 in local part" },
	{ "a\x80@example.org", NULL, "invalid UTF-8 in local part" },
	/* 65 octets of local part. */
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "@example.org",
	  NULL, "local part longer than 64 octets" },
	/* Invalid: domain. */
	{ "u@[192.0.2.9]", NULL, "address literals are not allowed" },
	{ "u@[IPv6:2001:db8::1]", NULL, "address literals are not allowed" },
	{ "u@192.0.2.9", NULL, "numeric top-level domain label" },
	{ "u@local.", NULL, "trailing dot in domain" },
	{ "u@example.org.", NULL, "trailing dot in domain" },
	{ "u@.example.org", NULL, "empty label in domain" },
	{ "u@example..org", NULL, "empty label in domain" },
	{ "u@-example.org", NULL, "domain label starts or ends with '-'" },
	{ "u@example-.org", NULL, "domain label starts or ends with '-'" },
	{ "u@exa_mple.org", NULL, "invalid character in domain" },
	{ "u@exa mple.org", NULL, "invalid character in domain" },
	{ "u@example.org ", NULL, "invalid character in domain" },
	{ "u@bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.org",
	  NULL, "domain label longer than 63 octets" },
	{ "u@b\xff"
	  "cher.example",
	  NULL, "invalid UTF-8 in domain" },
};

static void test_address_table(void **state)
{
	pool_t pool = pool_create("test", 1024);

	for (size_t i = 0; i < N_ELEMENTS(address_tests); i++) {
		const char *error = NULL;
		char *result;

		result = mail_address_normalize(pool, address_tests[i].input,
						NULL, NULL, &error);
		if (address_tests[i].expected != NULL) {
			if (result == NULL)
				fail_msg("case %zu '%s' refused: %s", i,
					 address_tests[i].input, error);
			assert_string_equal(result, address_tests[i].expected);
		} else {
			if (result != NULL)
				fail_msg("case %zu '%s' accepted as '%s'", i,
					 address_tests[i].input, result);
			assert_non_null(error);
			assert_string_equal(error, address_tests[i].error);
		}
	}
	pool_unref(&pool);
}

/* Every accepted address normalises to itself. */
static void test_address_idempotent(void **state)
{
	pool_t pool = pool_create("test", 1024);

	for (size_t i = 0; i < N_ELEMENTS(address_tests); i++) {
		const char *error = NULL;
		char *again;

		if (address_tests[i].expected == NULL)
			continue;
		again = mail_address_normalize(pool, address_tests[i].expected,
					       NULL, NULL, &error);
		assert_non_null(again);
		assert_string_equal(again, address_tests[i].expected);
	}
	pool_unref(&pool);
}

static void test_address_parts(void **state)
{
	pool_t pool = pool_create("test", 1024);
	char *local = NULL, *domain = NULL;
	const char *error;
	char *addr;

	addr = mail_address_normalize(pool, "Bob.Jones@Sub.Example.COM", &local,
				      &domain, &error);
	assert_string_equal(addr, "bob.jones@sub.example.com");
	assert_string_equal(local, "bob.jones");
	assert_string_equal(domain, "sub.example.com");
	assert_null(mail_address_normalize(pool, NULL, NULL, NULL, &error));
	assert_string_equal(error, "empty address");
	pool_unref(&pool);
}

static void test_address_too_long(void **state)
{
	pool_t pool = pool_create("test", 1024);
	const char *error;
	char *big = i_malloc(4096);

	memset(big, 'a', 4095);
	big[10] = '@';
	assert_null(mail_address_normalize(pool, big, NULL, NULL, &error));
	assert_string_equal(error, "address too long");
	assert_null(mail_domain_normalize(pool, big + 11, &error));
	assert_string_equal(error, "domain longer than 253 octets");
	i_free(big);
	pool_unref(&pool);
}

/* A 253-octet domain is accepted, 255 is not. */
static void test_domain_length(void **state)
{
	pool_t pool = pool_create("test", 1024);
	char domain[300];
	const char *error;
	size_t len = 0;

	/* 3 labels of 63 + 1 label of 61 + 3 dots = 253 */
	for (int l = 0; l < 4; l++) {
		size_t n = l < 3 ? 63 : 61;

		memset(domain + len, 'a' + l, n);
		len += n;
		if (l < 3)
			domain[len++] = '.';
	}
	domain[len] = '\0';
	assert_int_equal(len, 253);
	assert_non_null(mail_domain_normalize(pool, domain, &error));
	domain[len++] = 'x';
	domain[len++] = 'x';
	domain[len] = '\0';
	assert_null(mail_domain_normalize(pool, domain, &error));
	assert_string_equal(error, "domain longer than 253 octets");
	pool_unref(&pool);
}

static const struct {
	const char *input;
	const char *expected;
} domain_tests[] = {
	{ "Example.ORG", "example.org" },
	{ "localhost", "localhost" },
	{ "m\xc3\xbcnchen.de", "xn--mnchen-3ya.de" },
	{ "M\xc3\x9cNCHEN.DE", "xn--mnchen-3ya.de" },
	/* U+3002 ideographic full stop maps to '.' under UTS #46. */
	{ "b\xc3\xbc"
	  "cher\xe3\x80\x82"
	  "example",
	  "xn--bcher-kva.example" },
	/* Non-transitional: sharp s is kept, not mapped to "ss". */
	{ "fa\xc3\x9f.de", "xn--fa-hia.de" },
	{ "", NULL },
	{ "[127.0.0.1]", NULL },
	{ "example.org.", NULL },
	{ "b\xc3\xbc"
	  "cher.example.",
	  NULL },
	{ "exa@mple.org", NULL },
	{ "b\xc3\xbc"
	  "cher\xe3\x80\x82",
	  NULL },
	{ "-b\xc3\xbc"
	  "cher.example",
	  NULL },
	{ "a\xe2\x80\xa8"
	  "b.example",
	  NULL },
	{ "10.0.0.1", NULL },
};

static void test_domain_table(void **state)
{
	pool_t pool = pool_create("test", 1024);

	for (size_t i = 0; i < N_ELEMENTS(domain_tests); i++) {
		const char *error = NULL;
		char *result = mail_domain_normalize(
			pool, domain_tests[i].input, &error);

		if (domain_tests[i].expected == NULL) {
			if (result != NULL)
				fail_msg("domain case %zu accepted as '%s'", i,
					 result);
			assert_non_null(error);
		} else {
			if (result == NULL)
				fail_msg("domain case %zu refused: %s", i,
					 error);
			assert_string_equal(result, domain_tests[i].expected);
		}
	}
	assert_null(mail_domain_normalize(pool, NULL, &(const char *){ NULL }));
	pool_unref(&pool);
}

static const struct {
	const char *local;
	bool tagged;
	size_t base_len;
} tag_tests[] = {
	{ "user+tag", true, 4 },   { "user+", true, 4 },
	{ "user+a+b", true, 4 },   { "user", false, 0 },
	{ "+tag", false, 0 },      { "", false, 0 },
	{ "u.ser+t.ag", true, 5 },
};

static void test_strip_tag(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(tag_tests); i++) {
		size_t base_len = 0;

		assert_int_equal(
			mail_local_strip_tag(tag_tests[i].local, &base_len),
			tag_tests[i].tagged);
		if (tag_tests[i].tagged)
			assert_int_equal(base_len, tag_tests[i].base_len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_address_table),
		cmocka_unit_test(test_address_idempotent),
		cmocka_unit_test(test_address_parts),
		cmocka_unit_test(test_address_too_long),
		cmocka_unit_test(test_domain_length),
		cmocka_unit_test(test_domain_table),
		cmocka_unit_test(test_strip_tag),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
