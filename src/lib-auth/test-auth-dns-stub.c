/* test-auth-dns-stub.c - unit tests for the in-memory resolver the other
   lib-auth tests and fuzzers use: NXDOMAIN vs NODATA, case-insensitive
   names, invalid names, MX order / null MX / unusable, raw wire rdata for
   A, AAAA, PTR, MX and TXT, CNAME chains and loops, simulated statuses,
   deferred callbacks (never inside the starting call), lookups started by
   callbacks, cancellation and the query counter. */

#include "auth-dns-stub.h"

#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* What a callback saw, copied (results are valid during it only). */
struct seen {
	unsigned int calls;
	enum dns_status status;
	char canonical[256];
	unsigned int count;
	char text[4][512];
	size_t len[4];
	uint16_t pref[4];
	bool null_mx, unusable;
};

static void seen_info(struct seen *s, const struct dns_result_info *info)
{
	s->calls++;
	s->status = info->status;
	s->canonical[0] = '\0';
	if (info->canonical_name != NULL)
		snprintf(s->canonical, sizeof(s->canonical), "%s",
			 info->canonical_name);
}

static void txt_cb(void *context, const struct dns_txt_result *r)
{
	struct seen *s = context;

	seen_info(s, &r->info);
	s->count = r->count;
	for (unsigned int i = 0; i < r->count && i < 4; i++) {
		assert_true(r->txt[i].len < sizeof(s->text[i]));
		memcpy(s->text[i], r->txt[i].text, r->txt[i].len);
		s->len[i] = r->txt[i].len;
		assert_int_equal(r->txt[i].text[r->txt[i].len], '\0');
	}
}

static void mx_cb(void *context, const struct dns_mx_result *r)
{
	struct seen *s = context;

	seen_info(s, &r->info);
	s->count = r->count;
	s->null_mx = r->null_mx;
	s->unusable = r->unusable;
	for (unsigned int i = 0; i < r->count && i < 4; i++) {
		snprintf(s->text[i], sizeof(s->text[i]), "%s", r->mx[i].host);
		s->pref[i] = r->mx[i].preference;
	}
}

static void raw_cb(void *context, const struct dns_raw_result *r)
{
	struct seen *s = context;

	seen_info(s, &r->info);
	s->count = r->count;
	for (unsigned int i = 0; i < r->count && i < 4; i++) {
		assert_true(r->rdata[i].len <= sizeof(s->text[i]));
		memcpy(s->text[i], r->rdata[i].data, r->rdata[i].len);
		s->len[i] = r->rdata[i].len;
	}
}

static void test_txt_statuses(void **state ATTR_UNUSED)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();
	struct auth_dns *dns = auth_dns_stub_dns(stub);
	struct seen a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 }, e = { 0 };

	auth_dns_stub_add_txt(stub, "Example.COM.", "v=spf1 -all", 11);
	auth_dns_stub_add_txt(stub, "example.com", "a\0b", 3);
	assert_int_equal(
		auth_dns_stub_add_a(stub, "a.example.com", "192.0.2.1"), 0);
	assert_int_equal(auth_dns_stub_add_a(stub, "x", "no.such"), -1);

	(void)dns->txt(dns, "EXAMPLE.com", txt_cb, &a);
	(void)dns->txt(dns, "a.example.com", txt_cb, &b);
	(void)dns->txt(dns, "nowhere.example.com", txt_cb, &c);
	(void)dns->txt(dns, "bad..name", txt_cb, &d);
	(void)dns->txt(dns, "example.com.", txt_cb, &e);
	/* Nothing runs inside the starting calls. */
	assert_int_equal(a.calls + b.calls + c.calls + d.calls, 0);
	assert_int_equal(auth_dns_stub_pending(stub), 5);
	assert_int_equal(auth_dns_stub_run(stub), 5);
	assert_int_equal(auth_dns_stub_pending(stub), 0);

	assert_int_equal(a.calls, 1);
	assert_int_equal(a.status, DNS_STATUS_OK);
	assert_int_equal(a.count, 2);
	assert_int_equal(a.len[0], 11);
	assert_memory_equal(a.text[0], "v=spf1 -all", 11);
	assert_int_equal(a.len[1], 3);
	assert_memory_equal(a.text[1], "a\0b", 3);
	assert_int_equal(b.status, DNS_STATUS_NODATA);
	assert_int_equal(b.count, 0);
	assert_int_equal(c.status, DNS_STATUS_NXDOMAIN);
	assert_int_equal(d.status, DNS_STATUS_INVALID_NAME);
	assert_int_equal(e.status, DNS_STATUS_OK);
	assert_int_equal(auth_dns_stub_queries(stub), 5);
	auth_dns_stub_destroy(&stub);
	assert_null(stub);
}

static void test_mx(void **state ATTR_UNUSED)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();
	struct auth_dns *dns = auth_dns_stub_dns(stub);
	struct seen a = { 0 }, b = { 0 }, c = { 0 }, r = { 0 };

	auth_dns_stub_add_mx(stub, "m.test", 20, "mx2.m.test");
	auth_dns_stub_add_mx(stub, "m.test", 10, "mx1.m.test.");
	auth_dns_stub_add_mx(stub, "m.test", 10, "mx1b.m.test");
	auth_dns_stub_add_mx(stub, "m.test", 5, "bad name");
	auth_dns_stub_add_mx(stub, "null.test", 0, ".");
	auth_dns_stub_add_mx(stub, "unusable.test", 0, "a b");
	(void)dns->mx(dns, "m.test", mx_cb, &a);
	(void)dns->mx(dns, "null.test", mx_cb, &b);
	(void)dns->mx(dns, "unusable.test", mx_cb, &c);
	(void)dns->raw(dns, "m.test", DNS_TYPE_MX, raw_cb, &r);
	assert_int_equal(auth_dns_stub_run(stub), 4);

	assert_int_equal(a.status, DNS_STATUS_OK);
	assert_int_equal(a.count, 3);
	assert_string_equal(a.text[0], "mx1.m.test");
	assert_int_equal(a.pref[0], 10);
	assert_string_equal(a.text[1], "mx1b.m.test");
	assert_string_equal(a.text[2], "mx2.m.test");
	assert_int_equal(a.pref[2], 20);
	assert_false(a.null_mx);
	assert_true(b.null_mx);
	assert_int_equal(b.count, 0);
	assert_true(c.unusable);
	assert_false(c.null_mx);
	/* Raw answers are not filtered or sorted: a label may hold a space
	   on the wire, so all four records come back in insertion order. */
	assert_int_equal(r.count, 4);
	assert_int_equal(r.len[0], 2 + 12);
	assert_memory_equal(r.text[0], "\x00\x14\x03mx2\x01m\x04test\x00", 14);
	auth_dns_stub_destroy(&stub);
}

static void test_raw(void **state ATTR_UNUSED)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();
	struct auth_dns *dns = auth_dns_stub_dns(stub);
	struct seen a = { 0 }, aaaa = { 0 }, ptr = { 0 }, txt = { 0 },
		    spf = { 0 }, none = { 0 };
	char long_text[300];

	memset(long_text, 'x', sizeof(long_text));
	assert_int_equal(auth_dns_stub_add_a(stub, "h.test", "192.0.2.7"), 0);
	assert_int_equal(auth_dns_stub_add_aaaa(stub, "h.test", "2001:db8::1"),
			 0);
	auth_dns_stub_add_ptr(stub, "7.2.0.192.in-addr.arpa", "h.test");
	auth_dns_stub_add_txt(stub, "h.test", long_text, sizeof(long_text));
	auth_dns_stub_add_raw(stub, "h.test", 99, "\x05hello", 6);
	(void)dns->raw(dns, "h.test", DNS_TYPE_A, raw_cb, &a);
	(void)dns->raw(dns, "H.TEST", DNS_TYPE_AAAA, raw_cb, &aaaa);
	(void)dns->raw(dns, "7.2.0.192.in-addr.arpa", DNS_TYPE_PTR, raw_cb,
		       &ptr);
	(void)dns->raw(dns, "h.test", DNS_TYPE_TXT, raw_cb, &txt);
	(void)dns->raw(dns, "h.test", 99, raw_cb, &spf);
	(void)dns->raw(dns, "h.test", DNS_TYPE_TLSA, raw_cb, &none);
	assert_int_equal(auth_dns_stub_run(stub), 6);

	assert_int_equal(a.count, 1);
	assert_int_equal(a.len[0], 4);
	assert_memory_equal(a.text[0], "\xc0\x00\x02\x07", 4);
	assert_int_equal(aaaa.len[0], 16);
	assert_memory_equal(aaaa.text[0],
			    "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
	assert_int_equal(ptr.len[0], 8);
	assert_memory_equal(ptr.text[0], "\x01h\x04test\x00", 8);
	/* RFC 1035 3.3.14: 255 + 45 octets in two character-strings. */
	assert_int_equal(txt.len[0], 302);
	assert_int_equal((uint8_t)txt.text[0][0], 255);
	assert_int_equal((uint8_t)txt.text[0][256], 45);
	assert_int_equal(spf.len[0], 6);
	assert_int_equal(none.status, DNS_STATUS_NODATA);
	auth_dns_stub_destroy(&stub);
}

static void test_cname(void **state ATTR_UNUSED)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();
	struct auth_dns *dns = auth_dns_stub_dns(stub);
	struct seen a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };

	auth_dns_stub_add_cname(stub, "alias.test", "mid.test");
	auth_dns_stub_add_cname(stub, "mid.test", "Target.test.");
	auth_dns_stub_add_txt(stub, "target.test", "hi", 2);
	auth_dns_stub_add_cname(stub, "loop1.test", "loop2.test");
	auth_dns_stub_add_cname(stub, "loop2.test", "loop1.test");
	(void)dns->txt(dns, "alias.test", txt_cb, &a);
	(void)dns->txt(dns, "loop1.test", txt_cb, &b);
	(void)dns->raw(dns, "alias.test", DNS_TYPE_CNAME, raw_cb, &c);
	(void)dns->mx(dns, "alias.test", mx_cb, &d);
	assert_int_equal(auth_dns_stub_run(stub), 4);

	assert_int_equal(a.status, DNS_STATUS_OK);
	assert_string_equal(a.canonical, "Target.test");
	assert_memory_equal(a.text[0], "hi", 2);
	assert_int_equal(b.status, DNS_STATUS_TEMPFAIL);
	assert_int_equal(c.status, DNS_STATUS_OK);
	assert_memory_equal(c.text[0], "\x03mid\x04test\x00", 10);
	assert_int_equal(d.status, DNS_STATUS_NODATA);
	assert_string_equal(d.canonical, "Target.test");
	auth_dns_stub_destroy(&stub);
}

static void test_set_status(void **state ATTR_UNUSED)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();
	struct auth_dns *dns = auth_dns_stub_dns(stub);
	struct seen a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };

	auth_dns_stub_add_txt(stub, "t.test", "x", 1);
	auth_dns_stub_set_status(stub, "t.test", 0, DNS_STATUS_TEMPFAIL);
	auth_dns_stub_set_status(stub, "t.test", DNS_TYPE_MX,
				 DNS_STATUS_NXDOMAIN);
	auth_dns_stub_set_status(stub, "gone.test", DNS_TYPE_A,
				 DNS_STATUS_TEMPFAIL);
	auth_dns_stub_set_status(stub, "gone.test", DNS_TYPE_A,
				 DNS_STATUS_NXDOMAIN);
	(void)dns->txt(dns, "T.test", txt_cb, &a);
	(void)dns->mx(dns, "t.test", mx_cb, &b);
	(void)dns->raw(dns, "gone.test", DNS_TYPE_A, raw_cb, &c);
	(void)dns->raw(dns, "gone.test", DNS_TYPE_AAAA, raw_cb, &d);
	assert_int_equal(auth_dns_stub_run(stub), 4);
	assert_int_equal(a.status, DNS_STATUS_TEMPFAIL);
	assert_int_equal(a.count, 0);
	assert_int_equal(b.status, DNS_STATUS_NXDOMAIN);
	assert_int_equal(c.status, DNS_STATUS_NXDOMAIN);
	/* The name exists (it has a status) but not for AAAA. */
	assert_int_equal(d.status, DNS_STATUS_NODATA);
	auth_dns_stub_destroy(&stub);
}

/* set_any_names(): names lib-dns refuses are answered, the wire
   length limits still hold. */
static void test_any_names(void **state ATTR_UNUSED)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();
	struct auth_dns *dns = auth_dns_stub_dns(stub);
	struct seen a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };
	const char *odd = "foo:bar/baz x%.test";
	char long_label[80];

	memset(long_label, 'a', 64);
	memcpy(long_label + 64, ".test", 6);
	auth_dns_stub_add_txt(stub, odd, "x", 1);
	auth_dns_stub_add_txt(stub, long_label, "x", 1);
	auth_dns_stub_add_mx(stub, "m.test", 0, odd);
	(void)dns->txt(dns, odd, txt_cb, &a);
	assert_int_equal(auth_dns_stub_run(stub), 1);
	assert_int_equal(a.status, DNS_STATUS_INVALID_NAME);

	auth_dns_stub_set_any_names(stub, true);
	(void)dns->txt(dns, odd, txt_cb, &a);
	(void)dns->txt(dns, long_label, txt_cb, &b);
	(void)dns->txt(dns, "a..test", txt_cb, &c);
	(void)dns->mx(dns, "m.test", mx_cb, &d);
	assert_int_equal(auth_dns_stub_run(stub), 4);
	assert_int_equal(a.status, DNS_STATUS_OK);
	assert_int_equal(a.count, 1);
	assert_int_equal(b.status, DNS_STATUS_INVALID_NAME);
	assert_int_equal(c.status, DNS_STATUS_INVALID_NAME);
	assert_int_equal(d.status, DNS_STATUS_OK);
	assert_int_equal(d.count, 1);
	assert_false(d.unusable);
	auth_dns_stub_destroy(&stub);
}

/* A callback chain: each answer starts the next lookup, as an evaluator
   does; run() keeps going until the chain ends. */
struct chain {
	struct auth_dns *dns;
	unsigned int left, calls;
	bool in_start;
};

static void chain_cb(void *context, const struct dns_txt_result *r)
{
	struct chain *ch = context;

	assert_false(ch->in_start);
	assert_int_equal(r->info.status, DNS_STATUS_NXDOMAIN);
	ch->calls++;
	if (ch->left > 0) {
		ch->left--;
		ch->in_start = true;
		(void)ch->dns->txt(ch->dns, "next.test", chain_cb, ch);
		ch->in_start = false;
	}
}

static void test_chain_and_cancel(void **state ATTR_UNUSED)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();
	struct auth_dns *dns = auth_dns_stub_dns(stub);
	struct chain ch = { dns, 9, 0, false };
	struct seen a = { 0 }, b = { 0 };
	struct dns_lookup *l1, *l2, *l3;

	(void)dns->txt(dns, "start.test", chain_cb, &ch);
	assert_int_equal(auth_dns_stub_run(stub), 10);
	assert_int_equal(ch.calls, 10);
	assert_int_equal(auth_dns_stub_queries(stub), 10);

	l1 = dns->txt(dns, "a.test", txt_cb, &a);
	l2 = dns->txt(dns, "b.test", txt_cb, &b);
	l3 = dns->mx(dns, "c.test", mx_cb, &b);
	dns->cancel(dns, &l3);
	assert_null(l3);
	dns->cancel(dns, &l1);
	assert_null(l1);
	dns->cancel(dns, &l1); /* NULL: no-op */
	assert_int_equal(auth_dns_stub_pending(stub), 1);
	assert_int_equal(auth_dns_stub_run(stub), 1);
	assert_int_equal(a.calls, 0);
	assert_int_equal(b.calls, 1);
	(void)l2;

	/* Destroy with lookups pending: their callbacks never run. */
	(void)dns->txt(dns, "a.test", txt_cb, &a);
	auth_dns_stub_destroy(&stub);
	assert_int_equal(a.calls, 0);
	auth_dns_stub_destroy(&stub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txt_statuses),
		cmocka_unit_test(test_mx),
		cmocka_unit_test(test_raw),
		cmocka_unit_test(test_cname),
		cmocka_unit_test(test_set_status),
		cmocka_unit_test(test_any_names),
		cmocka_unit_test(test_chain_and_cancel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
