/* test-tlsrpt.c - unit tests for tlsrpt.c: the _smtp._tls record (RFC
   8460 3), mailto URIs, counting sessions per policy, the JSON report
   (RFC 8460 4.4, read back with jansson) and the report mail (5.3) whose
   gzipped attachment is inflated back with zlib. */

#include "tlsrpt.h"
#include "buf.h"

#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <zlib.h>

static void test_txt(void **state ATTR_UNUSED)
{
	static const struct {
		const char *text;
		int count; /* -1: invalid */
		const char *first;
	} cases[] = {
		{ "v=TLSRPTv1; rua=mailto:reports@example.com", 1,
		  "mailto:reports@example.com" },
		{ "v=TLSRPTv1;rua=mailto:a@b.test, https://r.test/x;", 2,
		  "mailto:a@b.test" },
		{ "v=TLSRPTv1 ; ext=1; rua=mailto:a@b.test ; rua=mailto:c@d", 1,
		  "mailto:a@b.test" },
		{ "v=TLSRPTv1;", -1, NULL },
		{ "v=TLSRPTv1; rua=", -1, NULL },
		{ "v=TLSRPTv1; rua=mailto:a@b,,x", -1, NULL },
		{ "v=TLSRPTv2; rua=mailto:a@b", -1, NULL },
		{ "rua=mailto:a@b; v=TLSRPTv1", -1, NULL },
		{ "", -1, NULL },
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		pool_t pool = pool_create("t", 256);
		const char *rua[TLSRPT_RUA_MAX];
		unsigned int n;
		const char *error = NULL;
		int ret = tlsrpt_txt_parse(pool, cases[i].text,
					   strlen(cases[i].text), rua, &n,
					   &error);

		if (cases[i].count < 0) {
			if (ret != -1 || error == NULL)
				fail_msg("case %zu should fail", i);
		} else {
			if (ret != 0)
				fail_msg("case %zu: %s", i, error);
			assert_int_equal(n, cases[i].count);
			assert_string_equal(rua[0], cases[i].first);
		}
		pool_unref(&pool);
	}
}

static void test_select_and_mailto(void **state ATTR_UNUSED)
{
	pool_t pool = pool_create("t", 256);
	const struct dns_txt one[] = {
		{ "v=spf1 -all", 11 },
		{ "v=TLSRPTv1; rua=mailto:r@x.test", 31 },
	};
	const struct dns_txt two[] = {
		{ "v=TLSRPTv1; rua=mailto:r@x.test", 31 },
		{ "v=TLSRPTv1; rua=mailto:s@x.test", 31 },
	};
	const char *rua[TLSRPT_RUA_MAX], *error;
	unsigned int n;

	assert_int_equal(tlsrpt_txt_select(pool, one, 2, rua, &n, &error), 1);
	assert_string_equal(rua[0], "mailto:r@x.test");
	assert_int_equal(tlsrpt_txt_select(pool, one, 1, rua, &n, &error), 0);
	assert_int_equal(tlsrpt_txt_select(pool, two, 2, rua, &n, &error), -1);

	assert_string_equal(tlsrpt_rua_mailto(pool, "mailto:r@x.test"),
			    "r@x.test");
	assert_string_equal(
		tlsrpt_rua_mailto(pool, "MAILTO:r@x.test?subject=x"),
		"r@x.test");
	assert_null(tlsrpt_rua_mailto(pool, "https://x.test/r"));
	assert_null(tlsrpt_rua_mailto(pool, "mailto:"));
	assert_null(tlsrpt_rua_mailto(pool, "mailto:nobody"));
	assert_null(tlsrpt_rua_mailto(pool, "mailto:@x.test"));
	assert_null(tlsrpt_rua_mailto(pool, "mailto:r@"));
	assert_null(tlsrpt_rua_mailto(pool, "mailto:r%40x@x.test"));
	assert_null(tlsrpt_rua_mailto(pool, "mailto:a@b@c"));
	assert_null(tlsrpt_rua_mailto(pool, "mailto:a b@c"));
	assert_null(tlsrpt_rua_mailto(pool, "mailto:a>\r\nBcc: x@c"));
	pool_unref(&pool);
}

static struct tlsrpt_store *make_store(void)
{
	static const char *const sts_lines[] = { "version: STSv1",
						 "mode: enforce",
						 "mx: *.a.test",
						 "max_age: 86400" };
	static const char *const sts_mx[] = { "*.a.test" };
	static const char *const tlsa[] = { "3 1 1 00ff" };
	const struct tlsrpt_policy sts = { "A.test",  TLSRPT_POLICY_STS,
					   sts_lines, 4,
					   sts_mx,    1 };
	const struct tlsrpt_policy dane = { "a.test", TLSRPT_POLICY_TLSA,
					    tlsa,     1,
					    NULL,     0 };
	const struct tlsrpt_policy other = { "b.test",  TLSRPT_POLICY_STS,
					     sts_lines, 4,
					     sts_mx,    1 };
	struct tlsrpt_store *store = tlsrpt_store_create();

	for (int i = 0; i < 3; i++)
		tlsrpt_add_success(store, &sts);
	tlsrpt_add_failure(store, &sts, TLSRPT_RESULT_CERTIFICATE_NOT_TRUSTED,
			   "192.0.2.1", "mx1.a.test", "198.51.100.1", NULL);
	tlsrpt_add_failure(store, &sts, TLSRPT_RESULT_CERTIFICATE_NOT_TRUSTED,
			   "192.0.2.1", "mx1.a.test", "198.51.100.1", NULL);
	tlsrpt_add_failure(store, &sts, TLSRPT_RESULT_STARTTLS_NOT_SUPPORTED,
			   NULL, "mx2.a.test", NULL, "no \"STARTTLS\"\n");
	tlsrpt_add_failure(store, &dane, TLSRPT_RESULT_TLSA_INVALID, NULL,
			   "mx.a.test", NULL, NULL);
	tlsrpt_add_success(store, &other);
	return store;
}

static void test_report_json(void **state ATTR_UNUSED)
{
	struct tlsrpt_store *store = make_store();
	pool_t pool = pool_create("t", 256);
	const char *const *domains;
	struct buf out = BUF_INIT;
	json_error_t jerr;
	json_t *root, *pols, *p0, *details;

	assert_int_equal(tlsrpt_store_domains(store, pool, &domains), 2);
	assert_string_equal(domains[0], "a.test");
	assert_string_equal(domains[1], "b.test");
	tlsrpt_report_json(store, "a.test", "Org \"X\"", "postmaster@me.test",
			   "r1", 86400, 2 * 86400, &out);
	root = json_loadb((const char *)buf_span(&out).p, out.used, 0, &jerr);
	if (root == NULL)
		fail_msg("bad JSON: %s: %s", jerr.text, buf_cstr(&out));
	assert_string_equal(
		json_string_value(json_object_get(root, "organization-name")),
		"Org \"X\"");
	assert_string_equal(
		json_string_value(json_object_get(
			json_object_get(root, "date-range"), "start-datetime")),
		"1970-01-02T00:00:00Z");
	assert_string_equal(
		json_string_value(json_object_get(
			json_object_get(root, "date-range"), "end-datetime")),
		"1970-01-02T23:59:59Z");
	pols = json_object_get(root, "policies");
	assert_int_equal(json_array_size(pols), 2);
	p0 = json_array_get(pols, 0);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(p0, "policy"),
						  "policy-type")),
		"sts");
	assert_int_equal(
		json_array_size(json_object_get(json_object_get(p0, "policy"),
						"policy-string")),
		4);
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(p0, "summary"),
				 "total-successful-session-count")),
			 3);
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(p0, "summary"),
				 "total-failure-session-count")),
			 3);
	details = json_object_get(p0, "failure-details");
	assert_int_equal(json_array_size(details), 2);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(details, 0), "result-type")),
			    "certificate-not-trusted");
	assert_int_equal(
		json_integer_value(json_object_get(json_array_get(details, 0),
						   "failed-session-count")),
		2);
	assert_string_equal(
		json_string_value(json_object_get(json_array_get(details, 1),
						  "failure-reason-code")),
		"no \"STARTTLS\"\n");
	assert_string_equal(
		json_string_value(json_object_get(
			json_object_get(json_array_get(pols, 1), "policy"),
			"policy-type")),
		"tlsa");
	json_decref(root);
	buf_free(&out);
	pool_unref(&pool);
	tlsrpt_store_destroy(&store);
	assert_null(store);
	tlsrpt_store_destroy(&store);
}

static void test_report_message(void **state ATTR_UNUSED)
{
	struct tlsrpt_store *store = make_store();
	struct buf json = BUF_INIT, msg = BUF_INIT, b64 = BUF_INIT;
	const char *error, *text, *p, *end;
	uint8_t *raw, plain[65536];
	uLongf plain_len = sizeof(plain);
	z_stream z;
	int n;

	tlsrpt_report_json(store, "b.test", "org", "c@me.test", "r2", 0, 86400,
			   &json);
	assert_int_equal(tlsrpt_report_message("tlsrpt@me.test", "r@b.test",
					       "me.test", "b.test", "r2", 0,
					       86400, &json, 0, &msg, &error),
			 0);
	text = buf_cstr(&msg);
	assert_non_null(strstr(text, "\r\nTLS-Report-Domain: b.test\r\n"));
	assert_non_null(strstr(text, "\r\nTLS-Report-Submitter: me.test\r\n"));
	assert_non_null(strstr(text, "\r\nSubject: Report Domain: b.test "
				     "Submitter: me.test Report-ID: <r2>\r\n"));
	assert_non_null(strstr(text, "report-type=\"tlsrpt\""));
	assert_non_null(
		strstr(text, "filename=\"me.test!b.test!0!86399!r2.json.gz\""));
	/* The attachment: base64 lines after the part's blank line. */
	p = strstr(text, "Content-Type: application/tlsrpt+gzip");
	assert_non_null(p);
	p = strstr(p, "\r\n\r\n") + 4;
	end = strstr(p, "\r\n--");
	assert_non_null(end);
	for (; p < end; p++) {
		if (*p != '\r' && *p != '\n')
			buf_append_c(&b64, (uint8_t)*p);
	}
	raw = i_malloc(b64.used);
	n = EVP_DecodeBlock(raw, buf_span(&b64).p, (int)b64.used);
	assert_true(n > 18);
	memset(&z, 0, sizeof(z));
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = raw;
	z.avail_in = (uInt)n;
	z.next_out = plain;
	z.avail_out = (uInt)plain_len;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	plain_len = z.total_out;
	inflateEnd(&z);
	assert_int_equal(plain_len, json.used);
	assert_memory_equal(plain, buf_span(&json).p, json.used);
	i_free(raw);
	buf_free(&b64);
	buf_free(&json);
	buf_free(&msg);
	tlsrpt_store_destroy(&store);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txt),
		cmocka_unit_test(test_select_and_mailto),
		cmocka_unit_test(test_report_json),
		cmocka_unit_test(test_report_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
