/* test-dmarc-report.c - unit tests for dmarc-report.c: a report written,
   gzip'ed and read back gives the same metadata, policy and rows; text is
   XML-escaped; the attachment name follows RFC 7489 7.2.1.1; a report as
   a large receiver sends it (namespaces-free Appendix C layout, several
   auth_results) is read; DOCTYPE (entity expansion), malformed XML, a
   non-feedback root and broken gzip are refused. */

#include "dmarc-report.h"
#include "auth-report.h"

#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static void test_roundtrip(void **state ATTR_UNUSED)
{
	pool_t pool = pool_create("test", 4096);
	const struct dmarc_report_row rows[] = {
		{ .source_ip = "192.0.2.1",
		  .count = 3,
		  .disposition = DMARC_POLICY_NONE,
		  .dkim_pass = true,
		  .spf_pass = true,
		  .header_from = "a.example",
		  .dkim_domain = "a.example",
		  .dkim_result = "pass",
		  .dkim_selector = "s1",
		  .spf_domain = "a.example",
		  .spf_result = "pass" },
		{ .source_ip = "2001:db8::7",
		  .count = 1,
		  .disposition = DMARC_POLICY_REJECT,
		  .header_from = "a.example",
		  .spf_domain = "evil.example",
		  .spf_result = "fail" },
	};
	const struct dmarc_report in = {
		.org_name = "Marmot <mx.b.example> & co",
		.email = "noreply-dmarc@b.example",
		.report_id = "b.example-1764633600-a.example",
		.begin = 1764633600,
		.end = 1764719999,
		.domain = "a.example",
		.adkim_strict = true,
		.p = DMARC_POLICY_REJECT,
		.sp = DMARC_POLICY_QUARANTINE,
		.pct = 50,
		.rows = rows,
		.row_count = N_ELEMENTS(rows),
	};
	struct dmarc_report out;
	struct buf gz = BUF_INIT;
	const char *xml, *error;

	xml = dmarc_report_xml(pool, &in);
	assert_non_null(strstr(xml, "<org_name>Marmot &lt;mx.b.example&gt; "
				    "&amp; co</org_name>"));
	assert_non_null(strstr(xml, "<p>reject</p>"));
	assert_non_null(strstr(xml, "<adkim>s</adkim>"));
	assert_int_equal(auth_report_gzip(xml, strlen(xml), &gz), 0);
	assert_true(gz.used > 10);
	assert_int_equal(buf_span(&gz).p[0], 0x1f);
	assert_int_equal(buf_span(&gz).p[1], 0x8b);

	for (unsigned int pass = 0; pass < 2; pass++) {
		const void *data = pass == 0 ? (const void *)xml
					     : (const void *)buf_span(&gz).p;
		size_t len = pass == 0 ? strlen(xml) : gz.used;

		assert_int_equal(
			dmarc_report_parse(pool, data, len, &out, &error), 0);
		assert_string_equal(out.org_name, in.org_name);
		assert_string_equal(out.email, in.email);
		assert_string_equal(out.report_id, in.report_id);
		assert_int_equal(out.begin, in.begin);
		assert_int_equal(out.end, in.end);
		assert_string_equal(out.domain, "a.example");
		assert_true(out.adkim_strict);
		assert_false(out.aspf_strict);
		assert_int_equal(out.p, DMARC_POLICY_REJECT);
		assert_int_equal(out.sp, DMARC_POLICY_QUARANTINE);
		assert_int_equal(out.pct, 50);
		assert_int_equal(out.row_count, 2);
		assert_string_equal(out.rows[0].source_ip, "192.0.2.1");
		assert_int_equal(out.rows[0].count, 3);
		assert_true(out.rows[0].dkim_pass);
		assert_true(out.rows[0].spf_pass);
		assert_string_equal(out.rows[0].dkim_domain, "a.example");
		assert_string_equal(out.rows[0].dkim_selector, "s1");
		assert_string_equal(out.rows[0].dkim_result, "pass");
		assert_string_equal(out.rows[1].source_ip, "2001:db8::7");
		assert_int_equal(out.rows[1].disposition, DMARC_POLICY_REJECT);
		assert_false(out.rows[1].dkim_pass);
		assert_null(out.rows[1].dkim_domain);
		assert_string_equal(out.rows[1].spf_domain, "evil.example");
		assert_string_equal(out.rows[1].spf_result, "fail");
	}
	assert_string_equal(dmarc_report_filename(pool, "b.example", &in),
			    "b.example!a.example!1764633600!1764719999.xml.gz");
	buf_free(&gz);
	pool_unref(&pool);
}

/* The layout large receivers send (Appendix C, with version and extra
   elements we ignore, two DKIM results). */
static const char received[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n"
	"<feedback>\n"
	"  <version>1.0</version>\n"
	"  <report_metadata>\n"
	"    <org_name>google.com</org_name>\n"
	"    <email>noreply-dmarc-support@google.com</email>\n"
	"    <extra_contact_info>https://support.google.com/a/answer/2466580"
	"</extra_contact_info>\n"
	"    <report_id>1234567890123456789</report_id>\n"
	"    <date_range><begin>1764547200</begin><end>1764633599</end>"
	"</date_range>\n"
	"  </report_metadata>\n"
	"  <policy_published>\n"
	"    <domain>b.example</domain><adkim>r</adkim><aspf>r</aspf>\n"
	"    <p>quarantine</p><sp>quarantine</sp><pct>100</pct><np>none</np>\n"
	"  </policy_published>\n"
	"  <record>\n"
	"    <row><source_ip>198.51.100.5</source_ip><count>12</count>\n"
	"      <policy_evaluated><disposition>none</disposition>"
	"<dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>\n"
	"    <identifiers><header_from>b.example</header_from></identifiers>\n"
	"    <auth_results>\n"
	"      <dkim><domain>b.example</domain><result>pass</result>"
	"<selector>ed1</selector></dkim>\n"
	"      <dkim><domain>b.example</domain><result>pass</result>"
	"<selector>rsa1</selector></dkim>\n"
	"      <spf><domain>b.example</domain><result>pass</result></spf>\n"
	"    </auth_results>\n"
	"  </record>\n"
	"</feedback>\n";

static void test_received(void **state ATTR_UNUSED)
{
	pool_t pool = pool_create("test", 4096);
	struct dmarc_report r;
	const char *error;

	assert_int_equal(dmarc_report_parse(pool, received, strlen(received),
					    &r, &error),
			 0);
	assert_string_equal(r.org_name, "google.com");
	assert_string_equal(r.report_id, "1234567890123456789");
	assert_int_equal(r.begin, 1764547200);
	assert_int_equal(r.end, 1764633599);
	assert_string_equal(r.domain, "b.example");
	assert_int_equal(r.p, DMARC_POLICY_QUARANTINE);
	assert_int_equal(r.row_count, 1);
	assert_int_equal(r.rows[0].count, 12);
	assert_string_equal(r.rows[0].source_ip, "198.51.100.5");
	assert_string_equal(r.rows[0].dkim_selector, "ed1");
	assert_string_equal(r.rows[0].spf_result, "pass");
	pool_unref(&pool);
}

static void test_refused(void **state ATTR_UNUSED)
{
	static const char *const bad[] = {
		/* Billion laughs: any DOCTYPE is refused. */
		"<?xml version=\"1.0\"?>\n<!DOCTYPE feedback [<!ENTITY a "
		"\"aaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]>\n"
		"<feedback><report_metadata><org_name>&b;</org_name>"
		"</report_metadata></feedback>",
		"<feedback><report_metadata>",
		"<html><body>not a report</body></html>",
		"",
		"\x1f\x8b garbage that is not gzip",
	};
	pool_t pool = pool_create("test", 4096);
	struct dmarc_report r;
	const char *error;

	for (unsigned int i = 0; i < N_ELEMENTS(bad); i++) {
		error = NULL;
		if (dmarc_report_parse(pool, bad[i], strlen(bad[i]), &r,
				       &error) != -1)
			fail_msg("case %u accepted", i);
		assert_non_null(error);
	}
	pool_unref(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_received),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
