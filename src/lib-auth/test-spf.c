/* test-spf.c - focused tests of the SPF evaluator (the open suite is
   test-spf-suite.c): the macro examples of RFC 7208 7.4, the record
   parser, the limits of RFC 7208 4.6.4 (10 DNS terms, 2 void lookups,
   10 MX names, 10 PTR names) with the lookups they leave unmade, the HELO
   identity, the null sender, IPv4-mapped addresses, exp= with %{c} %{r}
   %{t}, the outcome's fields, deferred callbacks and cancellation. */

#include "auth-dns-stub.h"
#include "spf-private.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/socket.h>
#include <cmocka.h>

struct seen {
	unsigned int calls;
	enum spf_result result;
	char domain[256], sender[512], explanation[1024], reason[512];
	bool has_explanation;
};

static void seen_cb(void *context, const struct spf_outcome *o)
{
	struct seen *s = context;

	s->calls++;
	s->result = o->result;
	snprintf(s->domain, sizeof(s->domain), "%s", o->domain);
	snprintf(s->sender, sizeof(s->sender), "%s", o->sender);
	snprintf(s->reason, sizeof(s->reason), "%s",
		 o->reason == NULL ? "" : o->reason);
	s->has_explanation = o->explanation != NULL;
	snprintf(s->explanation, sizeof(s->explanation), "%s",
		 o->explanation == NULL ? "" : o->explanation);
}

static void txt(struct auth_dns_stub *stub, const char *name, const char *t)
{
	auth_dns_stub_add_txt(stub, name, t, strlen(t));
}

static void request(struct spf_request *req, const char *ip, const char *sender,
		    const char *helo)
{
	memset(req, 0, sizeof(*req));
	if (inet_pton(AF_INET, ip, req->addr) == 1) {
		req->family = AF_INET;
	} else {
		assert_int_equal(inet_pton(AF_INET6, ip, req->addr), 1);
		req->family = AF_INET6;
	}
	req->identity = SPF_IDENTITY_MAILFROM;
	req->sender = sender;
	req->helo = helo;
	req->receiver = "mx.receiver.example";
}

/* Runs a check to its end; asserts the callback ran once, never inside
   spf_check_start(). */
static enum spf_result run(struct auth_dns_stub *stub,
			   const struct spf_request *req, struct seen *s)
{
	struct spf_check *check;

	memset(s, 0, sizeof(*s));
	check = spf_check_start(auth_dns_stub_dns(stub), req, seen_cb, s);
	assert_non_null(check);
	assert_int_equal(s->calls, 0);
	(void)auth_dns_stub_run(stub);
	assert_int_equal(s->calls, 1);
	assert_int_equal(auth_dns_stub_pending(stub), 0);
	return s->result;
}

static enum spf_result check1(const char *record, const char *ip)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();
	struct spf_request req;
	struct seen s;
	enum spf_result r;

	txt(stub, "example.test", record);
	request(&req, ip, "user@example.test", "mail.example.test");
	r = run(stub, &req, &s);
	auth_dns_stub_destroy(&stub);
	return r;
}

/* RFC 7208 7.4: sender strong-bad@email.example.com, IPv4 192.0.2.3. */
static void test_macro_examples(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "%{s}", "strong-bad@email.example.com" },
		{ "%{o}", "email.example.com" },
		{ "%{d}", "email.example.com" },
		{ "%{d4}", "email.example.com" },
		{ "%{d3}", "email.example.com" },
		{ "%{d2}", "example.com" },
		{ "%{d1}", "com" },
		{ "%{dr}", "com.example.email" },
		{ "%{d2r}", "example.email" },
		{ "%{l}", "strong-bad" },
		{ "%{l-}", "strong.bad" },
		{ "%{lr}", "strong-bad" },
		{ "%{lr-}", "bad.strong" },
		{ "%{l1r-}", "strong" },
		{ "%{ir}.%{v}._spf.%{d2}",
		  "3.2.0.192.in-addr._spf.example.com" },
		{ "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com" },
		{ "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
		  "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
		{ "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
		  "3.2.0.192.in-addr.strong.lp._spf.example.com" },
		{ "%{d2}.trusted-domains.example.net",
		  "example.com.trusted-domains.example.net" },
		/* RFC 7208 7.1: escapes, and URL escaping of upper case */
		{ "%%%_%-", "% %20" },
		{ "%{L}", "strong-bad" },
		{ "%{S}", "strong-bad%40email.example.com" },
		{ "%{l+-}", "strong.bad" },
		{ "%{d9r}", "com.example.email" },
	};
	struct spf_macro_vars vars = {
		.s = "strong-bad@email.example.com",
		.l = "strong-bad",
		.o = "email.example.com",
		.d = "email.example.com",
		.i = "192.0.2.3",
		.v = "in-addr",
		.h = "mx.example.org",
		.c = "192.0.2.3",
		.r = "receiver.example",
		.t = "1234",
	};
	(void)state;

	for (unsigned int i = 0; i < N_ELEMENTS(cases); i++) {
		struct buf out = BUF_INIT;

		assert_true(spf_macro_expand(cases[i].in, strlen(cases[i].in),
					     false, &vars, &out));
		if (strcmp(buf_cstr(&out), cases[i].out) != 0)
			fail_msg("%s: got %s, expected %s", cases[i].in,
				 buf_cstr(&out), cases[i].out);
		buf_free(&out);
	}
	/* c, r, t only in explanations (RFC 7208 7.3); syntax errors */
	static const char *const bad[] = { "%{c}",  "%{r}", "%{t}",
					   "%{d0}", "%{x}", "%",
					   "%{d",   "%a",   "%{d2x}" };
	for (unsigned int i = 0; i < N_ELEMENTS(bad); i++)
		assert_false(spf_macro_check(bad[i], strlen(bad[i]), false));
	assert_true(spf_macro_check("%{c} %{r} %{t}", 14, true));
	assert_false(spf_macro_check("a b", 3, false));
}

/* The IPv6 example of RFC 7208 7.4, end to end through exists:. */
static void test_macro_ipv6(void **state)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();
	struct spf_request req;
	struct seen s;
	(void)state;

	txt(stub, "email.example.com",
	    "v=spf1 exists:%{ir}.%{v}._spf.%{d2} -all");
	assert_int_equal(auth_dns_stub_add_a(
				 stub,
				 "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
				 "0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com",
				 "127.0.0.2"),
			 0);
	request(&req, "2001:db8::cb01", "strong-bad@email.example.com", "h.x");
	assert_int_equal(run(stub, &req, &s), SPF_PASS);
	request(&req, "2001:db8::cb02", "strong-bad@email.example.com", "h.x");
	assert_int_equal(run(stub, &req, &s), SPF_FAIL);
	auth_dns_stub_destroy(&stub);
}

static void test_parse(void **state)
{
	static const char *const good[] = {
		"v=spf1",
		"v=spf1 ",
		"V=SPF1 +ALL",
		"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all",
		"v=spf1 a mx a:x.example/24//64 mx//0 ptr ptr:x.example ~all",
		"v=spf1 include:_spf.example.com exists:%{i}.x.example ?all",
		"v=spf1 redirect=_spf.example.com exp=exp.%{d}",
		"v=spf1 foo=bar-%{d} -all",
	};
	static const char *const bad[] = {
		"v=spf1 ip4:192.0.2.0/33",
		"v=spf1 ip4:192.0.2",
		"v=spf1 ip4:192.0.02.1",
		"v=spf1 ip6:2001:db8::/129",
		"v=spf1 a/24/64",
		"v=spf1 a:",
		"v=spf1 include",
		"v=spf1 all:x",
		"v=spf1 a:example",
		"v=spf1 a:example.123",
		"v=spf1 redirect=a.example redirect=b.example",
		"v=spf1 exp=a.example exp=b.example",
		"v=spf1 exp=",
		"v=spf1 foo=%x",
		"v=spf1 bogus",
		"v=spf1 -all\t",
		"v=spf1 a:\x80.example",
	};
	pool_t pool = pool_create("test", 1024);
	const char *error;
	struct spf_record *rec;
	(void)state;

	for (unsigned int i = 0; i < N_ELEMENTS(good); i++) {
		assert_true(spf_is_record(good[i], strlen(good[i])));
		rec = spf_record_parse(pool, good[i], strlen(good[i]), &error);
		if (rec == NULL)
			fail_msg("%s: %s", good[i], error);
	}
	for (unsigned int i = 0; i < N_ELEMENTS(bad); i++) {
		error = NULL;
		rec = spf_record_parse(pool, bad[i], strlen(bad[i]), &error);
		if (rec != NULL)
			fail_msg("%s parsed", bad[i]);
		assert_non_null(error);
	}
	rec = spf_record_parse(pool, good[4], strlen(good[4]), &error);
	assert_int_equal(rec->count, 7);
	assert_int_equal(rec->terms[2].mech, SPF_MECH_A);
	assert_string_equal(rec->terms[2].domain_spec, "x.example");
	assert_int_equal(rec->terms[2].cidr4, 24);
	assert_int_equal(rec->terms[2].cidr6, 64);
	assert_int_equal(rec->terms[3].cidr6, 0);
	assert_int_equal(rec->terms[6].qualifier, SPF_SOFTFAIL);
	assert_false(spf_is_record("v=spf10", 7));
	assert_false(spf_is_record("v=spf1a", 7));
	pool_unref(&pool);

	/* Multiple records and syntax errors are PermErrors (RFC 7208 4.5,
	   4.6); a TXT that is not SPF is ignored. */
	assert_int_equal(check1("v=spf1 ip4:192.0.2.0/24 bogus", "192.0.2.1"),
			 SPF_PERMERROR);
	assert_int_equal(check1("v=spf1 ip4:192.0.2.0/24 -all", "192.0.2.1"),
			 SPF_PASS);
	assert_int_equal(check1("v=spf1 ip4:192.0.2.0/24 -all", "192.0.3.1"),
			 SPF_FAIL);
	assert_int_equal(check1("v=spf1 ?all", "192.0.3.1"), SPF_NEUTRAL);
	assert_int_equal(check1("v=spf1 ~all", "192.0.3.1"), SPF_SOFTFAIL);
	assert_int_equal(check1("v=spf1", "192.0.3.1"), SPF_NEUTRAL);
	assert_int_equal(check1("not spf", "192.0.3.1"), SPF_NONE);

	struct auth_dns_stub *stub = auth_dns_stub_create();
	struct spf_request req;
	struct seen s;

	txt(stub, "example.test", "v=spf1 +all");
	txt(stub, "example.test", "v=spf1 -all");
	txt(stub, "example.test", "google-site-verification=x");
	request(&req, "192.0.2.1", "u@example.test", "h.example");
	assert_int_equal(run(stub, &req, &s), SPF_PERMERROR);
	auth_dns_stub_destroy(&stub);

	assert_string_equal(spf_result_name(SPF_SOFTFAIL), "softfail");
	assert_string_equal(spf_result_name(SPF_TEMPERROR), "temperror");
}

/* 10 DNS terms pass, the 11th is a PermError and is not looked up. */
static void test_dns_limit(void **state)
{
	for (unsigned int n = 10; n <= 11; n++) {
		struct auth_dns_stub *stub = auth_dns_stub_create();
		struct spf_request req;
		struct seen s;
		char record[512] = "v=spf1";

		for (unsigned int i = 0; i < n; i++) {
			char name[64];

			snprintf(name, sizeof(name), "h%u.example.test", i);
			assert_int_equal(
				auth_dns_stub_add_a(stub, name, "10.0.0.1"), 0);
			snprintf(record + strlen(record),
				 sizeof(record) - strlen(record), " a:%s",
				 name);
		}
		strcat(record, " ip4:192.0.2.1");
		txt(stub, "example.test", record);
		request(&req, "192.0.2.1", "u@example.test", "h.example");
		assert_int_equal(run(stub, &req, &s),
				 n == 10 ? SPF_PASS : SPF_PERMERROR);
		/* the TXT, and 10 A lookups either way */
		assert_int_equal(auth_dns_stub_queries(stub), 11);
		if (n == 11)
			assert_non_null(strstr(s.reason, "10 DNS lookup"));
		auth_dns_stub_destroy(&stub);
		(void)state;
	}

	/* include: and redirect= count too; a loop ends in PermError. */
	struct auth_dns_stub *stub = auth_dns_stub_create();
	struct spf_request req;
	struct seen s;

	txt(stub, "example.test", "v=spf1 include:example.test");
	request(&req, "192.0.2.1", "u@example.test", "h.example");
	assert_int_equal(run(stub, &req, &s), SPF_PERMERROR);
	assert_int_equal(auth_dns_stub_queries(stub), 11);
	auth_dns_stub_destroy(&stub);
}

static void test_void_limit(void **state)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();
	struct spf_request req;
	struct seen s;
	(void)state;

	txt(stub, "two.test", "v=spf1 a:nx1.test mx:nx2.test ?all");
	txt(stub, "three.test",
	    "v=spf1 a:nx1.test mx:nx2.test exists:nx3.test"
	    " ip4:192.0.2.1");
	/* the exp= lookup does not count (RFC 7208 4.6.4) */
	txt(stub, "exp.test", "v=spf1 a:nx1.test a:nx2.test exp=nx3.test -all");
	/* a null or unusable MX answer is not void */
	txt(stub, "mx.test",
	    "v=spf1 mx:null.test mx:bad.test a:nx1.test "
	    "a:nx2.test ?all");
	auth_dns_stub_add_mx(stub, "null.test", 0, ".");
	auth_dns_stub_add_mx(stub, "bad.test", 0, "not a host");
	request(&req, "192.0.2.1", "u@two.test", "h.example");
	assert_int_equal(run(stub, &req, &s), SPF_NEUTRAL);
	request(&req, "192.0.2.1", "u@mx.test", "h.example");
	assert_int_equal(run(stub, &req, &s), SPF_NEUTRAL);
	request(&req, "192.0.2.1", "u@three.test", "h.example");
	assert_int_equal(run(stub, &req, &s), SPF_PERMERROR);
	assert_non_null(strstr(s.reason, "void"));
	request(&req, "192.0.2.1", "u@exp.test", "h.example");
	assert_int_equal(run(stub, &req, &s), SPF_FAIL);
	assert_false(s.has_explanation);
	auth_dns_stub_destroy(&stub);
}

/* More than 10 MX names: PermError; only the first 10 PTR names count. */
static void test_mx_ptr_limits(void **state)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();
	struct spf_request req;
	struct seen s;
	(void)state;

	txt(stub, "mx10.test", "v=spf1 mx -all");
	txt(stub, "mx11.test", "v=spf1 mx -all");
	txt(stub, "ptr.test", "v=spf1 ptr -all");
	for (unsigned int i = 0; i < 11; i++) {
		char host[64];

		snprintf(host, sizeof(host), "m%u.test", i);
		assert_int_equal(
			auth_dns_stub_add_a(stub, host,
					    i == 9 ? "192.0.2.1" : "10.0.0.1"),
			0);
		if (i < 10)
			auth_dns_stub_add_mx(stub, "mx10.test", (uint16_t)i,
					     host);
		auth_dns_stub_add_mx(stub, "mx11.test", (uint16_t)i, host);
		/* ten names elsewhere, then the one that would match */
		snprintf(host, sizeof(host), "%s%u.test", i < 10 ? "o" : "x",
			 i);
		auth_dns_stub_add_ptr(stub, "1.2.0.192.in-addr.arpa",
				      i < 10 ? host : "a.ptr.test");
	}
	assert_int_equal(auth_dns_stub_add_a(stub, "a.ptr.test", "192.0.2.1"),
			 0);
	request(&req, "192.0.2.1", "u@mx10.test", "h.example");
	assert_int_equal(run(stub, &req, &s), SPF_PASS);
	request(&req, "192.0.2.1", "u@mx11.test", "h.example");
	assert_int_equal(run(stub, &req, &s), SPF_PERMERROR);
	assert_non_null(strstr(s.reason, "10 MX"));
	request(&req, "192.0.2.1", "u@ptr.test", "h.example");
	assert_int_equal(run(stub, &req, &s), SPF_FAIL);
	auth_dns_stub_destroy(&stub);

	/* with the matching name among the first 10, ptr passes */
	stub = auth_dns_stub_create();
	txt(stub, "ptr.test", "v=spf1 ptr -all");
	auth_dns_stub_add_ptr(stub, "1.2.0.192.in-addr.arpa", "o.test");
	auth_dns_stub_add_ptr(stub, "1.2.0.192.in-addr.arpa", "a.ptr.test");
	assert_int_equal(auth_dns_stub_add_a(stub, "a.ptr.test", "192.0.2.1"),
			 0);
	request(&req, "192.0.2.1", "u@ptr.test", "h.example");
	assert_int_equal(run(stub, &req, &s), SPF_PASS);
	auth_dns_stub_destroy(&stub);
}

static void test_temperror(void **state)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();
	struct spf_request req;
	struct seen s;
	(void)state;

	txt(stub, "inc.test", "v=spf1 include:down.test -all");
	txt(stub, "a.test", "v=spf1 a:down.test -all");
	auth_dns_stub_set_status(stub, "down.test", 0, DNS_STATUS_TEMPFAIL);
	auth_dns_stub_set_status(stub, "txtdown.test", DNS_TYPE_TXT,
				 DNS_STATUS_TEMPFAIL);
	request(&req, "192.0.2.1", "u@inc.test", "h.example");
	assert_int_equal(run(stub, &req, &s), SPF_TEMPERROR);
	request(&req, "192.0.2.1", "u@a.test", "h.example");
	assert_int_equal(run(stub, &req, &s), SPF_TEMPERROR);
	request(&req, "192.0.2.1", "u@txtdown.test", "h.example");
	assert_int_equal(run(stub, &req, &s), SPF_TEMPERROR);
	auth_dns_stub_destroy(&stub);
}

/* HELO identity, null sender, IPv4-mapped IPv6, the outcome fields. */
static void test_identities(void **state)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();
	struct spf_request req;
	struct seen s;
	(void)state;

	txt(stub, "mail.example.test", "v=spf1 ip4:192.0.2.0/24 -all");
	txt(stub, "example.test", "v=spf1 -all");

	request(&req, "192.0.2.7", "user@example.test", "Mail.Example.TEST");
	req.identity = SPF_IDENTITY_HELO;
	assert_int_equal(run(stub, &req, &s), SPF_PASS);
	assert_string_equal(s.domain, "mail.example.test");
	assert_string_equal(s.sender, "postmaster@Mail.Example.TEST");
	assert_string_equal(s.reason, "ip4:192.0.2.0/24");

	request(&req, "192.0.2.7", "", "mail.example.test");
	assert_int_equal(run(stub, &req, &s), SPF_PASS);
	assert_string_equal(s.sender, "postmaster@mail.example.test");

	request(&req, "192.0.2.7", "User@Example.Test", "mail.example.test");
	assert_int_equal(run(stub, &req, &s), SPF_FAIL);
	assert_string_equal(s.domain, "example.test");
	assert_string_equal(s.sender, "User@Example.Test");
	assert_false(s.has_explanation);

	/* RFC 7208 5: ::ffff:192.0.2.7 is 192.0.2.7 */
	request(&req, "::ffff:192.0.2.7", "", "mail.example.test");
	assert_int_equal(run(stub, &req, &s), SPF_PASS);
	request(&req, "2001:db8::1", "", "mail.example.test");
	assert_int_equal(run(stub, &req, &s), SPF_FAIL);

	/* RFC 7208 4.3: not a valid multi-label domain: none (deferred) */
	request(&req, "192.0.2.7", "u@localhost", "x");
	assert_int_equal(run(stub, &req, &s), SPF_NONE);
	request(&req, "192.0.2.7", "", "[192.0.2.7]");
	assert_int_equal(run(stub, &req, &s), SPF_NONE);
	request(&req, "192.0.2.7", "u@a..example.test", "x");
	assert_int_equal(run(stub, &req, &s), SPF_NONE);
	request(&req, "192.0.2.7", "u@nothing.test", "x");
	assert_int_equal(run(stub, &req, &s), SPF_NONE);
	auth_dns_stub_destroy(&stub);
}

/* exp= with the explanation-only macros (RFC 7208 6.2, 7.3). */
static void test_exp(void **state)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();
	struct spf_request req;
	struct seen s;
	char want[256];
	(void)state;

	txt(stub, "example.test", "v=spf1 -all exp=why.%{d}");
	txt(stub, "why.example.test", "%{c} via %{r} at %{t} for %{L}@%{o}");
	request(&req, "2001:db8::1", "a b@example.test", "h.example");
	assert_int_equal(run(stub, &req, &s), SPF_FAIL);
	assert_true(s.has_explanation);
	snprintf(want, sizeof(want), "2001:db8::1 via mx.receiver.example at ");
	assert_memory_equal(s.explanation, want, strlen(want));
	assert_non_null(strstr(s.explanation, " for a%20b@example.test"));
	/* %{t} is the current time in seconds */
	long long t = strtoll(s.explanation + strlen(want), NULL, 10);
	assert_true(t > 1700000000LL);
	auth_dns_stub_destroy(&stub);
}

/* The callback never runs after cancel, also with a lookup pending
   midway; nothing leaks (ASan). */
struct cancel_ctx {
	struct spf_check *check;
	unsigned int calls;
};

static void cancel_txt_cb(void *context, const struct dns_txt_result *r)
{
	struct cancel_ctx *ctx = context;

	(void)r;
	ctx->calls++;
	spf_check_cancel(&ctx->check);
	assert_null(ctx->check);
}

static void test_cancel(void **state)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();
	struct auth_dns *dns = auth_dns_stub_dns(stub);
	struct spf_request req;
	struct seen s;
	struct cancel_ctx ctx;
	struct spf_check *check;
	(void)state;

	txt(stub, "example.test", "v=spf1 a mx include:x.example.test -all");
	assert_int_equal(auth_dns_stub_add_a(stub, "example.test", "10.0.0.1"),
			 0);
	request(&req, "192.0.2.1", "u@example.test", "h.example");
	memset(&s, 0, sizeof(s));

	/* before any answer */
	check = spf_check_start(dns, &req, seen_cb, &s);
	spf_check_cancel(&check);
	assert_null(check);
	spf_check_cancel(&check); /* NULL: no-op */
	assert_int_equal(auth_dns_stub_pending(stub), 0);
	(void)auth_dns_stub_run(stub);
	assert_int_equal(s.calls, 0);

	/* midway: the TXT is answered, the A lookup is pending */
	memset(&ctx, 0, sizeof(ctx));
	ctx.check = spf_check_start(dns, &req, seen_cb, &s);
	(void)dns->txt(dns, "other.test", cancel_txt_cb, &ctx);
	(void)auth_dns_stub_run(stub);
	assert_int_equal(ctx.calls, 1);
	assert_int_equal(s.calls, 0);
	assert_int_equal(auth_dns_stub_pending(stub), 0);
	assert_int_equal(auth_dns_stub_queries(stub), 4);

	/* a deferred NONE can be cancelled too */
	request(&req, "192.0.2.1", "u@invalid", "h.example");
	check = spf_check_start(dns, &req, seen_cb, &s);
	spf_check_cancel(&check);
	(void)auth_dns_stub_run(stub);
	assert_int_equal(s.calls, 0);
	auth_dns_stub_destroy(&stub);
}

/* %{p}: the validated name, "unknown" without one (RFC 7208 7.3). */
static void test_p_macro(void **state)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();
	struct spf_request req;
	struct seen s;
	(void)state;

	txt(stub, "example.test", "v=spf1 -all exp=e.example.test");
	txt(stub, "e.example.test", "from %{p}");
	auth_dns_stub_add_ptr(stub, "1.2.0.192.in-addr.arpa", "other.test");
	auth_dns_stub_add_ptr(stub, "1.2.0.192.in-addr.arpa",
			      "mx.example.test");
	auth_dns_stub_add_ptr(stub, "2.2.0.192.in-addr.arpa", "fake.test");
	assert_int_equal(auth_dns_stub_add_a(stub, "other.test", "192.0.2.1"),
			 0);
	assert_int_equal(
		auth_dns_stub_add_a(stub, "mx.example.test", "192.0.2.1"), 0);
	request(&req, "192.0.2.1", "u@example.test", "h.example");
	assert_int_equal(run(stub, &req, &s), SPF_FAIL);
	assert_string_equal(s.explanation, "from mx.example.test");
	request(&req, "192.0.2.2", "u@example.test", "h.example");
	assert_int_equal(run(stub, &req, &s), SPF_FAIL);
	assert_string_equal(s.explanation, "from unknown");
	auth_dns_stub_destroy(&stub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_macro_examples),
		cmocka_unit_test(test_macro_ipv6),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_dns_limit),
		cmocka_unit_test(test_void_limit),
		cmocka_unit_test(test_mx_ptr_limits),
		cmocka_unit_test(test_temperror),
		cmocka_unit_test(test_identities),
		cmocka_unit_test(test_exp),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_p_macro),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
