/* test-dns-doctor.c - unit tests for the DNS doctor over the stub
   resolver: the expected records, a zone built from them checks all OK,
   and each deliberate breakage (wrong MX, two SPF records, wrong DKIM p=,
   missing DMARC, DMARC p=none, wrong MTA-STS id, missing TLS-RPT, wrong
   TLSA, SRV port, CNAME elsewhere, a SERVFAIL) gets its status and fix;
   the TLSA digest of a fixed certificate matches openssl's. */

#include "dns-doctor.h"
#include "auth-dns-stub.h"
#include "buf.h"

#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#define SPKI "3e02cca9a3beaab138c27557a71473dec57ef5b2e3d574c587fa54bcfb63f8fa"

/* openssl x509 -pubkey | openssl pkey -pubin -outform DER | sha256sum
   gives SPKI for this certificate. */
static const char cert_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBiTCCAS+gAwIBAgIUFU6OCwaElFdq7s/MDhTwA9lN1DIwCgYIKoZIzj0EAwIw\n"
	"GTEXMBUGA1UEAwwObXguZXhhbXBsZS5vcmcwIBcNMjYxMjAyMTgwNzQ2WhgPMjEy\n"
	"NjExMDgxODA3NDZaMBkxFzAVBgNVBAMMDm14LmV4YW1wbGUub3JnMFkwEwYHKoZI\n"
	"zj0CAQYIKoZIzj0DAQcDQgAELX3oei6UFx2+EJRWlfg9jbcb6wC0oWHEHf7VPCgD\n"
	"9E+rvASaumTsizoz9lyiJKgiFFB/S+KW0szpYXM7fpLzs6NTMFEwHQYDVR0OBBYE\n"
	"FOt8CobJWA/p+cgyONNS0T0IwDXpMB8GA1UdIwQYMBaAFOt8CobJWA/p+cgyONNS\n"
	"0T0IwDXpMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIhAO4nYZZa\n"
	"j04sYUYmzc0nSG7nhELHS5W/XO4i7uFwLk25AiA0VYKpNyvYU1EShvcQFdqJOFoL\n"
	"6Ciqp/bkWaZCU+JXhQ==\n"
	"-----END CERTIFICATE-----\n";

static const struct dns_doctor_dkim keys[] = {
	{ "ed1",
	  "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
	  "active" },
	{ "old", "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQ",
	  "retired" },
};
static const char *const addrs[] = { "192.0.2.1", "2001:db8::1" };

static void input(struct dns_doctor_input *in)
{
	memset(in, 0, sizeof(*in));
	in->domain = "example.org";
	in->hostname = "mx.example.org";
	in->addresses = addrs;
	in->address_count = 2;
	in->dkim = keys;
	in->dkim_count = 2;
	in->mta_sts_id = "abc123";
	in->dmarc_policy = "quarantine";
	in->tlsa_spki_sha256 = SPKI;
	in->submissions_port = 465;
	in->imaps_port = 993;
	in->pop3s_port = 0;
}

/* Publishes rec in the stub as is, unless skip names it (then replace, if
   not NULL, is published instead). */
static void publish(struct auth_dns_stub *stub,
		    const struct dns_doctor_record *rec, const char *value)
{
	uint8_t wire[300];
	size_t n = 0;

	switch (rec->rrtype) {
	case DNS_TYPE_TXT:
		auth_dns_stub_add_txt(stub, rec->name, value, strlen(value));
		break;
	case DNS_TYPE_MX:
		auth_dns_stub_add_mx(stub, rec->name, 10,
				     strchr(value, ' ') + 1);
		break;
	case DNS_TYPE_A:
		assert_int_equal(auth_dns_stub_add_a(stub, rec->name, value),
				 0);
		break;
	case DNS_TYPE_AAAA:
		assert_int_equal(auth_dns_stub_add_aaaa(stub, rec->name, value),
				 0);
		break;
	case DNS_TYPE_CNAME:
		auth_dns_stub_add_cname(stub, rec->name, value);
		break;
	case DNS_TYPE_SRV: {
		unsigned int pr, w, port;
		char target[256];
		const char *label;

		assert_int_equal(
			sscanf(value, "%u %u %u %255s", &pr, &w, &port, target),
			4);
		wire[n++] = (uint8_t)(pr >> 8);
		wire[n++] = (uint8_t)pr;
		wire[n++] = (uint8_t)(w >> 8);
		wire[n++] = (uint8_t)w;
		wire[n++] = (uint8_t)(port >> 8);
		wire[n++] = (uint8_t)port;
		label = target;
		while (*label != '\0' && strcmp(label, ".") != 0) {
			const char *dot = strchr(label, '.');
			size_t l = dot == NULL ? strlen(label)
					       : (size_t)(dot - label);

			wire[n++] = (uint8_t)l;
			memcpy(wire + n, label, l);
			n += l;
			label += l + (dot != NULL ? 1 : 0);
		}
		wire[n++] = 0;
		auth_dns_stub_add_raw(stub, rec->name, DNS_TYPE_SRV, wire, n);
		break;
	}
	case DNS_TYPE_TLSA: {
		unsigned int u, s, m, b;
		const char *hex = value + 6;

		assert_int_equal(sscanf(value, "%u %u %u", &u, &s, &m), 3);
		wire[n++] = (uint8_t)u;
		wire[n++] = (uint8_t)s;
		wire[n++] = (uint8_t)m;
		for (; hex[0] != '\0'; hex += 2) {
			assert_int_equal(sscanf(hex, "%2x", &b), 1);
			wire[n++] = (uint8_t)b;
		}
		auth_dns_stub_add_raw(stub, rec->name, DNS_TYPE_TLSA, wire, n);
		break;
	}
	default:
		fail();
	}
}

struct result {
	unsigned int calls, count;
	bool ok;
	enum dns_doctor_status status[32];
	char fix[32][600];
	char detail[32][600];
};

static void checked(void *context, const struct dns_doctor_finding *f,
		    unsigned int count)
{
	struct result *r = context;

	r->calls++;
	r->count = count;
	r->ok = dns_doctor_findings_ok(f, count);
	assert_true(count <= 32);
	for (unsigned int i = 0; i < count; i++) {
		r->status[i] = f[i].status;
		snprintf(r->fix[i], sizeof(r->fix[i]), "%s",
			 f[i].fix == NULL ? "" : f[i].fix);
		snprintf(r->detail[i], sizeof(r->detail[i]), "%s", f[i].detail);
		assert_non_null(f[i].detail);
		if (f[i].status == DNS_DOCTOR_MISSING ||
		    f[i].status == DNS_DOCTOR_WRONG)
			assert_non_null(f[i].fix);
	}
}

static int find(const struct dns_doctor_record *recs, unsigned int count,
		const char *name, uint16_t type)
{
	for (unsigned int i = 0; i < count; i++) {
		if (strcmp(recs[i].name, name) == 0 && recs[i].rrtype == type)
			return (int)i;
	}
	fail_msg("no record %s", name);
	return -1;
}

static void test_records(void **state)
{
	pool_t pool = pool_create("test", 4096);
	struct dns_doctor_input in;
	const struct dns_doctor_record *recs;
	unsigned int count;
	const char *error;
	struct buf out = BUF_INIT;

	(void)state;
	input(&in);
	assert_int_equal(dns_doctor_records(pool, &in, &recs, &count, &error),
			 0);
	for (unsigned int i = 0; i < count; i++)
		dns_doctor_record_format(&out, &recs[i]);
	assert_string_equal(
		buf_cstr(&out),
		"example.org. 3600 IN MX 10 mx.example.org.\n"
		"mx.example.org. 3600 IN A 192.0.2.1\n"
		"mx.example.org. 3600 IN AAAA 2001:db8::1\n"
		"example.org. 3600 IN TXT \"v=spf1 mx ip4:192.0.2.1 "
		"ip6:2001:db8::1 -all\"\n"
		"ed1._domainkey.example.org. 3600 IN TXT \"v=DKIM1; k=ed25519; "
		"p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"\n"
		"_dmarc.example.org. 3600 IN TXT \"v=DMARC1; p=quarantine; "
		"rua=mailto:dmarc-reports@example.org\"\n"
		"_mta-sts.example.org. 3600 IN TXT \"v=STSv1; id=abc123\"\n"
		"mta-sts.example.org. 3600 IN CNAME mx.example.org.\n"
		"_smtp._tls.example.org. 3600 IN TXT \"v=TLSRPTv1; "
		"rua=mailto:tls-reports@example.org\"\n"
		"_25._tcp.mx.example.org. 3600 IN TLSA 3 1 1 " SPKI "\n"
		"_submissions._tcp.example.org. 3600 IN SRV 0 1 465 "
		"mx.example.org.\n"
		"_imaps._tcp.example.org. 3600 IN SRV 0 1 993 mx.example.org.\n"
		"_pop3s._tcp.example.org. 3600 IN SRV 0 0 0 .\n"
		"autoconfig.example.org. 3600 IN CNAME mx.example.org.\n"
		"autodiscover.example.org. 3600 IN CNAME mx.example.org.\n");
	/* A long TXT value is split into 255-octet strings, quotes escaped. */
	struct dns_doctor_record long_rec = { DNS_DOCTOR_KIND_DKIM, "DKIM",
					      "a.example.org", DNS_TYPE_TXT,
					      NULL };
	char value[301];

	memset(value, 'x', 300);
	value[300] = '\0';
	value[0] = '"';
	long_rec.value = value;
	buf_reset(&out);
	dns_doctor_record_format(&out, &long_rec);
	assert_int_equal(out.used, strlen("a.example.org. 3600 IN TXT ") + 1 +
					   1 + 255 + 1 + 1 + 1 + 45 + 1 + 1);
	assert_non_null(strstr(buf_cstr(&out), "TXT \"\\\"xx"));
	assert_non_null(strstr(buf_cstr(&out), "x\" \"xx"));

	in.domain = "bad domain";
	assert_int_equal(dns_doctor_records(pool, &in, &recs, &count, &error),
			 -1);
	input(&in);
	in.addresses = (const char *const[]){ "999.1.1.1" };
	in.address_count = 1;
	assert_int_equal(dns_doctor_records(pool, &in, &recs, &count, &error),
			 -1);
	buf_free(&out);
	pool_unref(&pool);
}

/* Runs the check over a zone of recs with values[i] (NULL: left out). */
static void run(const struct dns_doctor_input *in,
		const struct dns_doctor_record *recs, unsigned int count,
		const char *const *values, struct auth_dns_stub *stub,
		struct result *r)
{
	for (unsigned int i = 0; i < count; i++) {
		if (values[i] != NULL)
			publish(stub, &recs[i], values[i]);
	}
	memset(r, 0, sizeof(*r));
	(void)dns_doctor_check_start(auth_dns_stub_dns(stub), in, recs, count,
				     checked, r);
	assert_int_equal(r->calls, 0);
	auth_dns_stub_run(stub);
	assert_int_equal(r->calls, 1);
	assert_int_equal(r->count, count);
}

static void test_check(void **state)
{
	pool_t pool = pool_create("test", 4096);
	struct dns_doctor_input in;
	const struct dns_doctor_record *recs;
	const char *values[32], *error;
	unsigned int count;
	struct auth_dns_stub *stub;
	struct result r;
	int mx, spf, dkim, dmarc, sts, rpt, tlsa, imaps, ac;

	(void)state;
	input(&in);
	assert_int_equal(dns_doctor_records(pool, &in, &recs, &count, &error),
			 0);
	for (unsigned int i = 0; i < count; i++)
		values[i] = recs[i].value;

	/* The zone as printed: all OK. */
	stub = auth_dns_stub_create();
	run(&in, recs, count, values, stub, &r);
	for (unsigned int i = 0; i < count; i++)
		assert_int_equal(r.status[i], DNS_DOCTOR_OK);
	assert_true(r.ok);
	auth_dns_stub_destroy(&stub);

	mx = find(recs, count, "example.org", DNS_TYPE_MX);
	spf = find(recs, count, "example.org", DNS_TYPE_TXT);
	dkim = find(recs, count, "ed1._domainkey.example.org", DNS_TYPE_TXT);
	dmarc = find(recs, count, "_dmarc.example.org", DNS_TYPE_TXT);
	sts = find(recs, count, "_mta-sts.example.org", DNS_TYPE_TXT);
	rpt = find(recs, count, "_smtp._tls.example.org", DNS_TYPE_TXT);
	tlsa = find(recs, count, "_25._tcp.mx.example.org", DNS_TYPE_TLSA);
	imaps = find(recs, count, "_imaps._tcp.example.org", DNS_TYPE_SRV);
	ac = find(recs, count, "autoconfig.example.org", DNS_TYPE_CNAME);

	/* Broken: every record named, with the fix. */
	values[mx] = "10 mx.elsewhere.net";
	values[dkim] =
		"v=DKIM1; k=ed25519; p=AAAAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
	values[dmarc] = NULL;
	values[sts] = "v=STSv1; id=old1";
	values[rpt] = NULL;
	values[tlsa] =
		"3 1 1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	values[imaps] = "0 1 143 mx.example.org.";
	values[ac] = "other.example.net";
	stub = auth_dns_stub_create();
	auth_dns_stub_add_txt(stub, "example.org", "v=spf1 a -all", 13);
	run(&in, recs, count, values, stub, &r);
	assert_false(r.ok);
	assert_int_equal(r.status[mx], DNS_DOCTOR_WRONG);
	assert_non_null(strstr(r.detail[mx], "mx.elsewhere.net"));
	assert_non_null(strstr(r.fix[mx], "IN MX 10 mx.example.org."));
	assert_int_equal(r.status[spf], DNS_DOCTOR_WRONG);
	assert_non_null(strstr(r.detail[spf], "2 SPF records"));
	assert_int_equal(r.status[dkim], DNS_DOCTOR_WRONG);
	assert_non_null(strstr(r.detail[dkim], "different public key"));
	assert_non_null(strstr(r.fix[dkim], "p=11qYAYKx"));
	assert_int_equal(r.status[dmarc], DNS_DOCTOR_MISSING);
	assert_non_null(
		strstr(r.fix[dmarc], "_dmarc.example.org. 3600 IN TXT"));
	assert_int_equal(r.status[sts], DNS_DOCTOR_WRONG);
	assert_non_null(strstr(r.fix[sts], "id=abc123"));
	assert_int_equal(r.status[rpt], DNS_DOCTOR_MISSING);
	assert_int_equal(r.status[tlsa], DNS_DOCTOR_WRONG);
	assert_int_equal(r.status[imaps], DNS_DOCTOR_WRONG);
	assert_non_null(strstr(r.fix[imaps], "0 1 993 mx.example.org."));
	assert_int_equal(r.status[ac], DNS_DOCTOR_WRONG);
	auth_dns_stub_destroy(&stub);

	/* Semantics: p=none warns; another SPF that authorizes us is OK;
	   +all is wrong; a SERVFAIL is an error; addresses of hostname
	   instead of a CNAME are OK. */
	for (unsigned int i = 0; i < count; i++)
		values[i] = recs[i].value;
	values[dmarc] = "v=DMARC1; p=none";
	values[spf] = "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all";
	values[ac] = NULL;
	values[rpt] = "v=TLSRPTv1;";
	stub = auth_dns_stub_create();
	assert_int_equal(auth_dns_stub_add_a(stub, "autoconfig.example.org",
					     "192.0.2.1"),
			 0);
	auth_dns_stub_set_status(stub, "_mta-sts.example.org", 0,
				 DNS_STATUS_TEMPFAIL);
	run(&in, recs, count, values, stub, &r);
	assert_int_equal(r.status[dmarc], DNS_DOCTOR_WARNING);
	assert_int_equal(r.status[spf], DNS_DOCTOR_OK);
	assert_int_equal(r.status[ac], DNS_DOCTOR_OK);
	assert_int_equal(r.status[sts], DNS_DOCTOR_ERROR);
	assert_int_equal(r.status[rpt], DNS_DOCTOR_WRONG);
	assert_false(r.ok);
	auth_dns_stub_destroy(&stub);

	values[spf] = "v=spf1 +all";
	values[sts] = recs[sts].value;
	values[rpt] = recs[rpt].value;
	values[ac] = recs[ac].value;
	stub = auth_dns_stub_create();
	run(&in, recs, count, values, stub, &r);
	assert_int_equal(r.status[spf], DNS_DOCTOR_WRONG);
	assert_int_equal(r.status[dmarc], DNS_DOCTOR_WARNING);
	auth_dns_stub_destroy(&stub);

	/* Cancel: the callback never runs. */
	stub = auth_dns_stub_create();
	memset(&r, 0, sizeof(r));
	struct dns_doctor_check *check = dns_doctor_check_start(
		auth_dns_stub_dns(stub), &in, recs, count, checked, &r);
	dns_doctor_check_cancel(&check);
	assert_null(check);
	auth_dns_stub_run(stub);
	assert_int_equal(r.calls, 0);
	auth_dns_stub_destroy(&stub);
	pool_unref(&pool);
}

static void test_tlsa_spki(void **state)
{
	pool_t pool = pool_create("test", 1024);
	const char *hex, *error;

	(void)state;
	assert_int_equal(dns_doctor_tlsa_spki(pool, cert_pem, strlen(cert_pem),
					      &hex, &error),
			 0);
	assert_string_equal(hex, SPKI);
	assert_int_equal(dns_doctor_tlsa_spki(pool, "junk", 4, &hex, &error),
			 -1);
	pool_unref(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_tlsa_spki),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
