/* test-dane.c - unit tests for dane.c: TLSA rdata parsing, the RFC 7672
   usability rules (DANE-TA/DANE-EE only, digest lengths), the owner name,
   and what a TLSA lookup result means for a host (secure/insecure,
   bogus, NODATA, none usable). */

#include "dane.h"

#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static const uint8_t digest64[64] = { 1, 2, 3 };

static void test_parse(void **state ATTR_UNUSED)
{
	const uint8_t ok[] = { 3, 1, 1, 0xaa, 0xbb };
	struct dns_tlsa t;
	const char *error = NULL;

	assert_int_equal(dane_tlsa_parse(ok, sizeof(ok), &t, &error), 0);
	assert_int_equal(t.usage, 3);
	assert_int_equal(t.selector, 1);
	assert_int_equal(t.matching_type, 1);
	assert_int_equal(t.len, 2);
	assert_ptr_equal(t.data, ok + 3);
	for (size_t len = 0; len < 4; len++) {
		error = NULL;
		assert_int_equal(dane_tlsa_parse(ok, len, &t, &error), -1);
		assert_non_null(error);
	}
}

static void test_usable(void **state ATTR_UNUSED)
{
	static const struct {
		uint8_t usage, selector, mtype;
		size_t len;
		bool usable;
	} cases[] = {
		{ 3, 1, 1, 32, true },
		{ 3, 0, 1, 32, true },
		{ 2, 0, 1, 32, true },
		{ 2, 1, 2, 64, true },
		{ 3, 1, 0, 91, true },
		{ 3, 1, 0, 0, false },
		/* RFC 7672 3.1.3: PKIX usages are not for SMTP. */
		{ 0, 0, 1, 32, false },
		{ 1, 1, 1, 32, false },
		{ 4, 1, 1, 32, false },
		{ 255, 1, 1, 32, false },
		{ 3, 2, 1, 32, false },
		{ 3, 1, 3, 32, false },
		/* RFC 6698 2.1.3: digests of the wrong length. */
		{ 3, 1, 1, 31, false },
		{ 3, 1, 1, 33, false },
		{ 3, 1, 2, 32, false },
		{ 3, 1, 1, 64, false },
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct dns_tlsa t = { cases[i].usage, cases[i].selector,
				      cases[i].mtype, digest64, cases[i].len };

		if (dane_tlsa_usable(&t) != cases[i].usable)
			fail_msg("case %zu: %u %u %u len %zu", i,
				 cases[i].usage, cases[i].selector,
				 cases[i].mtype, cases[i].len);
	}
}

static void test_name(void **state ATTR_UNUSED)
{
	char *n = dane_tlsa_name("mx.example.com", 25);

	assert_string_equal(n, "_25._tcp.mx.example.com");
	i_free(n);
	n = dane_tlsa_name("mx.example.com.", 465);
	assert_string_equal(n, "_465._tcp.mx.example.com");
	i_free(n);
}

static enum dane_state state_of(enum dns_status status, bool secure, bool bogus,
				const struct dns_tlsa *tlsa, unsigned int count,
				unsigned int *usable_count)
{
	struct dns_tlsa_result r;
	unsigned int usable[DANE_TLSA_MAX];
	const char *reason = NULL;
	enum dane_state s;

	memset(&r, 0, sizeof(r));
	r.info.status = status;
	r.info.secure = secure;
	r.info.bogus = bogus;
	r.tlsa = tlsa;
	r.count = count;
	s = dane_host_state(&r, usable, usable_count, &reason);
	assert_non_null(reason);
	for (unsigned int i = 0; i < *usable_count; i++) {
		assert_true(usable[i] < count);
		assert_true(dane_tlsa_usable(&tlsa[usable[i]]));
	}
	return s;
}

static void test_host_state(void **state ATTR_UNUSED)
{
	const struct dns_tlsa mixed[] = {
		{ 1, 1, 1, digest64, 32 }, /* PKIX-EE: skipped */
		{ 3, 1, 1, digest64, 32 },
		{ 2, 0, 2, digest64, 64 },
		{ 3, 1, 1, digest64, 20 }, /* bad length: skipped */
	};
	const struct dns_tlsa unusable[] = {
		{ 0, 0, 1, digest64, 32 },
		{ 3, 1, 1, digest64, 1 },
	};
	struct dns_tlsa many[DANE_TLSA_MAX + 4];
	unsigned int n;

	assert_int_equal(state_of(DNS_STATUS_OK, true, false, mixed, 4, &n),
			 DANE_STATE_VERIFY);
	assert_int_equal(n, 2);
	/* RFC 7672 2.2: an insecure TLSA RRset is ignored. */
	assert_int_equal(state_of(DNS_STATUS_OK, false, false, mixed, 4, &n),
			 DANE_STATE_NONE);
	assert_int_equal(n, 0);
	assert_int_equal(state_of(DNS_STATUS_OK, true, false, unusable, 2, &n),
			 DANE_STATE_ENCRYPT);
	assert_int_equal(n, 0);
	assert_int_equal(state_of(DNS_STATUS_NODATA, true, false, NULL, 0, &n),
			 DANE_STATE_NONE);
	assert_int_equal(
		state_of(DNS_STATUS_NXDOMAIN, true, false, NULL, 0, &n),
		DANE_STATE_NONE);
	/* Bogus and SERVFAIL: the host is not used, the mail waits. */
	assert_int_equal(
		state_of(DNS_STATUS_TEMPFAIL, false, true, NULL, 0, &n),
		DANE_STATE_DEFER);
	assert_int_equal(
		state_of(DNS_STATUS_TEMPFAIL, false, false, NULL, 0, &n),
		DANE_STATE_DEFER);
	for (size_t i = 0; i < N_ELEMENTS(many); i++)
		many[i] = (struct dns_tlsa){ 3, 1, 1, digest64, 32 };
	assert_int_equal(state_of(DNS_STATUS_OK, true, false, many,
				  N_ELEMENTS(many), &n),
			 DANE_STATE_VERIFY);
	assert_int_equal(n, DANE_TLSA_MAX);
	assert_string_equal(dane_state_name(DANE_STATE_DEFER), "defer");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_usable),
		cmocka_unit_test(test_name),
		cmocka_unit_test(test_host_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
