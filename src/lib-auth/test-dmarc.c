/* test-dmarc.c - unit tests for dmarc.c: record parsing (tags, defaults,
   invalid values, v= first), From: extraction (missing, duplicate,
   several addresses, groups), and the evaluation matrix over the stub
   resolver: aligned / relaxed-aligned / unaligned identifiers x SPF
   pass/fail x DKIM pass/fail x p=none/quarantine/reject x strict/relaxed,
   pct 0/100 and sampling with an injected random, sp= for subdomains,
   np= for non-existent ones, the Organizational Domain fallback, the
   RFC 9989 tree walk (psd=, 8-query bound), several records, DNS
   temperror, and invalid From: against p=reject. */

#include "dmarc.h"
#include "auth-dns-stub.h"

#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* ---- record parsing ---- */

static void test_record_parse(void **state ATTR_UNUSED)
{
	pool_t pool = pool_create("test", 1024);
	struct dmarc_record r;
	const char *error, *t;

	t = "v=DMARC1; p=reject; sp=quarantine; np=none; pct=30; adkim=s; "
	    "aspf=s; rua=mailto:a@example.com!10m, mailto:b@example.com,"
	    "https://x.example/; ruf=mailto:f@example.com; fo=1; ri=3600; "
	    "psd=n; t=y";
	assert_int_equal(dmarc_record_parse(pool, t, strlen(t), &r, &error), 0);
	assert_int_equal(r.p, DMARC_POLICY_REJECT);
	assert_true(r.p_valid);
	assert_int_equal(r.sp, DMARC_POLICY_QUARANTINE);
	assert_true(r.np_set);
	assert_int_equal(r.np, DMARC_POLICY_NONE);
	assert_int_equal(r.pct, 30);
	assert_true(r.adkim_strict);
	assert_true(r.aspf_strict);
	assert_int_equal(r.rua_count, 2);
	assert_string_equal(r.rua[0], "mailto:a@example.com!10m");
	assert_string_equal(r.rua[1], "mailto:b@example.com");
	assert_int_equal(r.ruf_count, 1);
	assert_string_equal(r.fo, "1");
	assert_int_equal(r.ri, 3600);
	assert_int_equal(r.psd, DMARC_PSD_N);
	assert_true(r.testing);

	/* Defaults; sp defaults to p; case-insensitive values. */
	t = "v=DMARC1;p=Quarantine";
	assert_int_equal(dmarc_record_parse(pool, t, strlen(t), &r, &error), 0);
	assert_int_equal(r.p, DMARC_POLICY_QUARANTINE);
	assert_int_equal(r.sp, DMARC_POLICY_QUARANTINE);
	assert_false(r.np_set);
	assert_int_equal(r.pct, 100);
	assert_false(r.adkim_strict);
	assert_false(r.aspf_strict);
	assert_int_equal(r.ri, 86400);
	assert_false(r.testing);

	/* Invalid values of other tags are ignored: defaults. */
	t = "v=DMARC1; p=none; pct=101; adkim=x; aspf=; sp=bogus; ri=-1;;";
	assert_int_equal(dmarc_record_parse(pool, t, strlen(t), &r, &error), 0);
	assert_int_equal(r.pct, 100);
	assert_false(r.adkim_strict);
	assert_int_equal(r.sp, DMARC_POLICY_NONE);
	assert_false(r.sp_set);

	/* RFC 7489 6.6.3 step 6: invalid p= with rua= is p=none. */
	t = "v=DMARC1; p=bogus; rua=mailto:x@example.com";
	assert_int_equal(dmarc_record_parse(pool, t, strlen(t), &r, &error), 0);
	assert_int_equal(r.p, DMARC_POLICY_NONE);
	assert_false(r.p_valid);

	static const char *const bad[] = {
		"",
		"p=reject; v=DMARC1",
		"v=DMARC2; p=reject",
		"v=dmarc1; p=reject",
		"v=DMARC1",
		"v=DMARC1; p=bogus",
		"v=spf1 -all",
		"v = DMARC1 ; p = bogus",
	};
	for (unsigned int i = 0; i < N_ELEMENTS(bad); i++) {
		error = NULL;
		assert_int_equal(dmarc_record_parse(pool, bad[i],
						    strlen(bad[i]), &r, &error),
				 -1);
		assert_non_null(error);
	}
	/* White space around '=' (RFC 7489 6.4 *WSP). */
	t = "v = DMARC1 ; p = reject";
	assert_int_equal(dmarc_record_parse(pool, t, strlen(t), &r, &error), 0);
	assert_int_equal(r.p, DMARC_POLICY_REJECT);
	/* NUL inside. */
	assert_int_equal(dmarc_record_parse(pool, "v=DMARC1; p=re\0ject", 19,
					    &r, &error),
			 -1);
	pool_unref(&pool);
}

/* ---- From: ---- */

static void test_from_parse(void **state ATTR_UNUSED)
{
	static const struct {
		const char *msg;
		enum dmarc_from_status status;
		unsigned int count;
		const char *d0, *d1;
	} cases[] = {
		{ "From: a@Example.COM\r\nTo: b@c.example\r\n\r\nbody",
		  DMARC_FROM_OK, 1, "example.com", NULL },
		{ "from: \"Al, B\" <a@example.com> (x)\r\n\r\n", DMARC_FROM_OK,
		  1, "example.com", NULL },
		{ "FROM : Al\r\n <a@sub.example.com>\r\n\r\n", DMARC_FROM_OK, 1,
		  "sub.example.com", NULL },
		{ "From: a@example.com\n\nFrom: b@evil.example\n",
		  DMARC_FROM_OK, 1, "example.com", NULL },
		{ "To: b@c.example\r\n\r\nFrom: a@example.com\r\n",
		  DMARC_FROM_MISSING, 0, NULL, NULL },
		{ "", DMARC_FROM_MISSING, 0, NULL, NULL },
		{ "From: a@evil.example\r\nFrom: b@bank.example\r\n\r\n",
		  DMARC_FROM_DUPLICATE, 2, "evil.example", "bank.example" },
		{ "From: a@example.com\r\nFrom: a@example.com\r\n\r\n",
		  DMARC_FROM_DUPLICATE, 1, "example.com", NULL },
		{ "From: a@evil.example, b@bank.example\r\n\r\n",
		  DMARC_FROM_MULTIPLE, 2, "evil.example", "bank.example" },
		{ "From: g: a@x.example;\r\n\r\n", DMARC_FROM_MULTIPLE, 1,
		  "x.example", NULL },
		{ "From: nobody\r\n\r\n", DMARC_FROM_INVALID, 0, NULL, NULL },
		{ "From: \r\n\r\n", DMARC_FROM_INVALID, 0, NULL, NULL },
		{ "From: a@[192.0.2.1]\r\n\r\n", DMARC_FROM_INVALID, 0, NULL,
		  NULL },
	};
	pool_t pool = pool_create("test", 1024);
	struct dmarc_from from;

	for (unsigned int i = 0; i < N_ELEMENTS(cases); i++) {
		dmarc_from_parse(pool, (const uint8_t *)cases[i].msg,
				 strlen(cases[i].msg), &from);
		if (from.status != cases[i].status ||
		    from.domain_count != cases[i].count)
			fail_msg("case %u: status %d count %u", i, from.status,
				 from.domain_count);
		if (cases[i].d0 != NULL)
			assert_string_equal(from.domains[0], cases[i].d0);
		if (cases[i].d1 != NULL)
			assert_string_equal(from.domains[1], cases[i].d1);
	}
	pool_unref(&pool);
}

/* ---- evaluation ---- */

struct result {
	unsigned int calls;
	struct dmarc_outcome out;
	char from[256], policy_domain[256], org[256];
};

static void dmarc_cb(void *context, const struct dmarc_outcome *o)
{
	struct result *r = context;

	r->calls++;
	r->out = *o;
	snprintf(r->from, sizeof(r->from), "%s",
		 o->from_domain == NULL ? "" : o->from_domain);
	snprintf(r->policy_domain, sizeof(r->policy_domain), "%s",
		 o->policy_domain == NULL ? "" : o->policy_domain);
	snprintf(r->org, sizeof(r->org), "%s",
		 o->org_domain == NULL ? "" : o->org_domain);
	r->out.from_domain = r->out.policy_domain = r->out.org_domain = NULL;
	r->out.record = NULL;
	r->out.reason = NULL;
	r->out.dkim_domain = NULL;
}

static unsigned int fixed_random(void *context)
{
	return *(unsigned int *)context;
}

static void add_txt(struct auth_dns_stub *stub, const char *name,
		    const char *text)
{
	auth_dns_stub_add_txt(stub, name, text, strlen(text));
}

static struct auth_dns_stub *zone(void)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();

	add_txt(stub, "_dmarc.reject.example", "v=DMARC1; p=reject");
	add_txt(stub, "_dmarc.quarantine.example", "v=DMARC1; p=quarantine");
	add_txt(stub, "_dmarc.none.example", "v=DMARC1; p=none");
	add_txt(stub, "_dmarc.pct0.example", "v=DMARC1; p=reject; pct=0");
	add_txt(stub, "_dmarc.pct100.example", "v=DMARC1; p=reject; pct=100");
	add_txt(stub, "_dmarc.pct50.example", "v=DMARC1; p=reject; pct=50");
	add_txt(stub, "_dmarc.pct50q.example",
		"v=DMARC1; p=quarantine; pct=50");
	add_txt(stub, "_dmarc.testing.example", "v=DMARC1; p=reject; t=y");
	add_txt(stub, "_dmarc.strict.example",
		"v=DMARC1; p=reject; adkim=s; aspf=s");
	add_txt(stub, "_dmarc.sp.example", "v=DMARC1; p=reject; sp=quarantine");
	add_txt(stub, "_dmarc.spnone.example", "v=DMARC1; p=reject; sp=none");
	add_txt(stub, "_dmarc.np.example",
		"v=DMARC1; p=none; sp=quarantine; np=reject");
	(void)auth_dns_stub_add_a(stub, "exists.np.example", "192.0.2.1");
	add_txt(stub, "np.example", "v=spf1 -all");
	/* A subdomain with its own record. */
	add_txt(stub, "_dmarc.own.sp.example", "v=DMARC1; p=none");
	/* Two records: no policy (RFC 7489 6.6.3). */
	add_txt(stub, "_dmarc.two.example", "v=DMARC1; p=reject");
	add_txt(stub, "_dmarc.two.example", "v=DMARC1; p=none");
	/* A non-DMARC TXT beside one record is fine. */
	add_txt(stub, "_dmarc.mixed.example", "hello world");
	add_txt(stub, "_dmarc.mixed.example", "v=DMARC1; p=reject");
	add_txt(stub, "_dmarc.example.co.uk", "v=DMARC1; p=reject");
	auth_dns_stub_set_status(stub, "_dmarc.tempfail.example", 0,
				 DNS_STATUS_TEMPFAIL);
	return stub;
}

struct eval {
	const char *from_domain;
	const char *spf_domain; /* NULL: no SPF */
	enum spf_result spf;
	const char *dkim_domain; /* NULL: no signature */
	enum dkim_result dkim;
	bool tree_walk;
	unsigned int random;
};

static void run_eval(struct auth_dns_stub *stub, const struct eval *ev,
		     struct result *r)
{
	struct dmarc_from from;
	struct spf_outcome spf;
	struct dkim_signature_result sig;
	struct dkim_verify_result dkim;
	struct dmarc_request req;
	struct dmarc_check *check;
	unsigned int rnd = ev->random;

	memset(&from, 0, sizeof(from));
	from.status = DMARC_FROM_OK;
	from.domains[0] = ev->from_domain;
	from.domain_count = 1;
	memset(&spf, 0, sizeof(spf));
	spf.result = ev->spf;
	spf.identity = SPF_IDENTITY_MAILFROM;
	spf.domain = ev->spf_domain;
	memset(&sig, 0, sizeof(sig));
	sig.result = ev->dkim;
	sig.domain = ev->dkim_domain;
	dkim.sigs = &sig;
	dkim.count = ev->dkim_domain == NULL ? 0 : 1;

	memset(&req, 0, sizeof(req));
	req.from = &from;
	req.spf = ev->spf_domain == NULL ? NULL : &spf;
	req.dkim = &dkim;
	req.tree_walk = ev->tree_walk;
	req.random = fixed_random;
	req.random_context = &rnd;
	memset(r, 0, sizeof(*r));
	check = dmarc_check_start(auth_dns_stub_dns(stub), &req, dmarc_cb, r);
	assert_non_null(check);
	assert_int_equal(r->calls, 0);
	(void)auth_dns_stub_run(stub);
	assert_int_equal(r->calls, 1);
}

/* The matrix: every combination against the expected outcome computed
   from RFC 7489 4.2 and 6.6.4 directly. */
static const struct {
	const char *domain;
	enum dmarc_policy p;
	bool strict;
	unsigned int pct;
} matrix_policies[] = {
	{ "none.example", DMARC_POLICY_NONE, false, 100 },
	{ "quarantine.example", DMARC_POLICY_QUARANTINE, false, 100 },
	{ "reject.example", DMARC_POLICY_REJECT, false, 100 },
	{ "pct100.example", DMARC_POLICY_REJECT, false, 100 },
	{ "pct0.example", DMARC_POLICY_REJECT, false, 0 },
	{ "strict.example", DMARC_POLICY_REJECT, true, 100 },
};
/* Identifier forms: 0 = the From domain itself, 1 = a subdomain of it
   (relaxed only), 2 = unrelated, 3 = the From domain under another public
   suffix (never). */
static const char *const matrix_forms[] = { "%s", "mail.%s", "other.example",
					    "%s.evil" };
#define MATRIX_FORMS N_ELEMENTS(matrix_forms)

static void matrix_case(struct auth_dns_stub *stub, unsigned int p,
			unsigned int sf, unsigned int df, bool spf_pass,
			bool dkim_pass, bool walk)
{
	const char *d = matrix_policies[p].domain;
	bool strict = matrix_policies[p].strict;
	char spf_dom[128], dkim_dom[128];
	struct eval ev;
	struct result r;
	bool spf_al, dkim_al, pass;
	enum dmarc_policy dis;

	snprintf(spf_dom, sizeof(spf_dom), matrix_forms[sf], d);
	snprintf(dkim_dom, sizeof(dkim_dom), matrix_forms[df], d);
	memset(&ev, 0, sizeof(ev));
	ev.from_domain = d;
	ev.spf_domain = spf_dom;
	ev.spf = spf_pass ? SPF_PASS : SPF_FAIL;
	ev.dkim_domain = dkim_dom;
	ev.dkim = dkim_pass ? DKIM_PASS : DKIM_FAIL;
	ev.tree_walk = walk;
	ev.random = 99;
	run_eval(stub, &ev, &r);

	spf_al = sf == 0 || (sf == 1 && !strict);
	dkim_al = df == 0 || (df == 1 && !strict);
	pass = (spf_pass && spf_al) || (dkim_pass && dkim_al);
	if (pass)
		dis = DMARC_POLICY_NONE;
	else if (matrix_policies[p].pct == 0)
		dis = matrix_policies[p].p == DMARC_POLICY_REJECT
			      ? DMARC_POLICY_QUARANTINE
			      : DMARC_POLICY_NONE;
	else
		dis = matrix_policies[p].p;
	if (r.out.result != (pass ? DMARC_RESULT_PASS : DMARC_RESULT_FAIL) ||
	    r.out.disposition != dis || r.out.policy != matrix_policies[p].p ||
	    r.out.spf_aligned != (spf_pass && spf_al) ||
	    r.out.dkim_aligned != (dkim_pass && dkim_al))
		fail_msg("%s spf=%s(%d) dkim=%s(%d) walk=%d: result %s dis %s",
			 d, spf_dom, spf_pass, dkim_dom, dkim_pass, walk,
			 dmarc_result_name(r.out.result),
			 dmarc_policy_name(r.out.disposition));
	assert_string_equal(r.policy_domain, d);
	assert_string_equal(r.from, d);
	assert_string_equal(r.org, d);
}

static void test_matrix(void **state ATTR_UNUSED)
{
	const unsigned int total = N_ELEMENTS(matrix_policies) * MATRIX_FORMS *
				   MATRIX_FORMS * 2 * 2 * 2;
	struct auth_dns_stub *stub = zone();
	unsigned int runs = 0;

	/* i enumerates policy x SPF form x DKIM form x SPF pass x DKIM pass
	   x tree walk. */
	for (unsigned int i = 0; i < total; i++) {
		unsigned int k = i;
		bool walk = k % 2, dkim_pass = (k /= 2) % 2,
		     spf_pass = (k /= 2) % 2;
		unsigned int df = (k /= 2) % MATRIX_FORMS;
		unsigned int sf = (k /= MATRIX_FORMS) % MATRIX_FORMS;
		unsigned int p = k / MATRIX_FORMS;

		matrix_case(stub, p, sf, df, spf_pass, dkim_pass, walk);
		runs++;
	}
	assert_int_equal(runs, 6 * 4 * 4 * 2 * 2 * 2);
	auth_dns_stub_destroy(&stub);
}

static void test_no_identifiers(void **state ATTR_UNUSED)
{
	struct auth_dns_stub *stub = zone();
	struct eval ev = { .from_domain = "reject.example", .random = 0 };
	struct result r;

	/* Neither SPF nor DKIM: fail, p=reject applies. */
	run_eval(stub, &ev, &r);
	assert_int_equal(r.out.result, DMARC_RESULT_FAIL);
	assert_int_equal(r.out.disposition, DMARC_POLICY_REJECT);
	/* SPF softfail and DKIM neutral are not pass. */
	ev.spf_domain = "reject.example";
	ev.spf = SPF_SOFTFAIL;
	ev.dkim_domain = "reject.example";
	ev.dkim = DKIM_POLICY;
	run_eval(stub, &ev, &r);
	assert_int_equal(r.out.result, DMARC_RESULT_FAIL);
	/* An aligned identifier with a temporary error: temperror, no
	   reject. */
	ev.dkim = DKIM_TEMPERROR;
	run_eval(stub, &ev, &r);
	assert_int_equal(r.out.result, DMARC_RESULT_TEMPERROR);
	assert_int_equal(r.out.disposition, DMARC_POLICY_NONE);
	assert_int_equal(r.out.policy, DMARC_POLICY_REJECT);
	auth_dns_stub_destroy(&stub);
}

static void test_pct_sampling(void **state ATTR_UNUSED)
{
	struct auth_dns_stub *stub = zone();
	struct eval ev = { .from_domain = "pct50.example",
			   .spf_domain = "other.example",
			   .spf = SPF_PASS };
	struct result r;

	/* RFC 7489 6.6.4: random < pct applies the policy, else the next
	   less strict one. */
	ev.random = 49;
	run_eval(stub, &ev, &r);
	assert_int_equal(r.out.disposition, DMARC_POLICY_REJECT);
	assert_false(r.out.sampled_out);
	ev.random = 50;
	run_eval(stub, &ev, &r);
	assert_int_equal(r.out.disposition, DMARC_POLICY_QUARANTINE);
	assert_true(r.out.sampled_out);
	ev.from_domain = "pct50q.example";
	run_eval(stub, &ev, &r);
	assert_int_equal(r.out.disposition, DMARC_POLICY_NONE);
	ev.random = 0;
	run_eval(stub, &ev, &r);
	assert_int_equal(r.out.disposition, DMARC_POLICY_QUARANTINE);
	/* RFC 9989 t=y lowers like pct=0. */
	ev.from_domain = "testing.example";
	run_eval(stub, &ev, &r);
	assert_int_equal(r.out.disposition, DMARC_POLICY_QUARANTINE);
	assert_true(r.out.sampled_out);
	/* pct=0 with the real random: always lowered. */
	auth_dns_stub_destroy(&stub);
}

static void test_subdomains(void **state ATTR_UNUSED)
{
	struct auth_dns_stub *stub = zone();
	struct eval ev = { .spf_domain = "other.example", .spf = SPF_PASS };
	struct result r;

	for (unsigned int walk = 0; walk < 2; walk++) {
		ev.tree_walk = walk != 0;
		/* sp= for a subdomain without its own record. */
		ev.from_domain = "a.b.sp.example";
		run_eval(stub, &ev, &r);
		assert_int_equal(r.out.result, DMARC_RESULT_FAIL);
		assert_string_equal(r.policy_domain, "sp.example");
		assert_string_equal(r.org, "sp.example");
		assert_int_equal(r.out.policy, DMARC_POLICY_QUARANTINE);
		assert_int_equal(r.out.disposition, DMARC_POLICY_QUARANTINE);
		/* p= at the organizational domain itself. */
		ev.from_domain = "sp.example";
		run_eval(stub, &ev, &r);
		assert_int_equal(r.out.disposition, DMARC_POLICY_REJECT);
		/* sp=none */
		ev.from_domain = "x.spnone.example";
		run_eval(stub, &ev, &r);
		assert_int_equal(r.out.disposition, DMARC_POLICY_NONE);
		assert_int_equal(r.out.result, DMARC_RESULT_FAIL);
		/* A subdomain's own record wins. */
		ev.from_domain = "own.sp.example";
		run_eval(stub, &ev, &r);
		assert_string_equal(r.policy_domain, "own.sp.example");
		assert_int_equal(r.out.disposition, DMARC_POLICY_NONE);
		/* Relaxed alignment of a subdomain From with the org
		   domain's d= passes. */
		ev.from_domain = "a.b.sp.example";
		ev.spf_domain = "sp.example";
		run_eval(stub, &ev, &r);
		assert_int_equal(r.out.result, DMARC_RESULT_PASS);
		ev.spf_domain = "other.example";
		/* np=: a non-existent subdomain gets np, an existing one
		   sp. */
		ev.from_domain = "ghost.np.example";
		run_eval(stub, &ev, &r);
		assert_int_equal(r.out.disposition, DMARC_POLICY_REJECT);
		ev.from_domain = "exists.np.example";
		run_eval(stub, &ev, &r);
		assert_int_equal(r.out.disposition, DMARC_POLICY_QUARANTINE);
		ev.from_domain = "np.example";
		run_eval(stub, &ev, &r);
		assert_int_equal(r.out.disposition, DMARC_POLICY_NONE);
	}
	/* The PSL: mail.example.co.uk falls back to example.co.uk. */
	ev.tree_walk = false;
	ev.from_domain = "mail.example.co.uk";
	ev.dkim_domain = "other.example.co.uk";
	ev.dkim = DKIM_PASS;
	run_eval(stub, &ev, &r);
	assert_string_equal(r.org, "example.co.uk");
	assert_string_equal(r.policy_domain, "example.co.uk");
	assert_int_equal(r.out.result, DMARC_RESULT_PASS);
	assert_true(r.out.dkim_aligned);
	/* co.uk is a public suffix: a.co.uk does not align with b.co.uk. */
	ev.dkim_domain = "co.uk";
	run_eval(stub, &ev, &r);
	assert_int_equal(r.out.result, DMARC_RESULT_FAIL);
	auth_dns_stub_destroy(&stub);
}

static void test_discovery_edges(void **state ATTR_UNUSED)
{
	struct auth_dns_stub *stub = zone();
	struct eval ev = { .spf_domain = "other.example", .spf = SPF_PASS };
	struct result r;
	unsigned int before;

	ev.from_domain = "two.example";
	run_eval(stub, &ev, &r);
	assert_int_equal(r.out.result, DMARC_RESULT_NONE);
	ev.from_domain = "mixed.example";
	run_eval(stub, &ev, &r);
	assert_int_equal(r.out.disposition, DMARC_POLICY_REJECT);
	ev.from_domain = "nowhere.example";
	run_eval(stub, &ev, &r);
	assert_int_equal(r.out.result, DMARC_RESULT_NONE);
	assert_int_equal(r.out.disposition, DMARC_POLICY_NONE);
	ev.from_domain = "tempfail.example";
	run_eval(stub, &ev, &r);
	assert_int_equal(r.out.result, DMARC_RESULT_TEMPERROR);
	assert_int_equal(r.out.disposition, DMARC_POLICY_NONE);

	/* RFC 9989 4.10.1: a long name takes at most 8 queries. */
	ev.tree_walk = true;
	ev.from_domain = "a.b.c.d.e.f.g.h.i.j.reject.example";
	before = auth_dns_stub_queries(stub);
	run_eval(stub, &ev, &r);
	assert_true(auth_dns_stub_queries(stub) - before <= 8);
	assert_string_equal(r.policy_domain, "reject.example");
	assert_int_equal(r.out.disposition, DMARC_POLICY_REJECT);

	/* psd=y at a parent: the org domain is one label below it. */
	add_txt(stub, "_dmarc.psd.example", "v=DMARC1; p=reject; psd=y");
	ev.from_domain = "x.org1.psd.example";
	ev.spf_domain = "mail.org1.psd.example";
	run_eval(stub, &ev, &r);
	assert_string_equal(r.org, "org1.psd.example");
	assert_string_equal(r.policy_domain, "psd.example");
	assert_int_equal(r.out.result, DMARC_RESULT_PASS);
	ev.spf_domain = "org2.psd.example";
	run_eval(stub, &ev, &r);
	assert_int_equal(r.out.result, DMARC_RESULT_FAIL);
	assert_int_equal(r.out.disposition, DMARC_POLICY_REJECT);
	/* psd=n names the org domain. */
	add_txt(stub, "_dmarc.unit.big.example",
		"v=DMARC1; p=quarantine; psd=n");
	add_txt(stub, "_dmarc.big.example", "v=DMARC1; p=none");
	ev.from_domain = "a.unit.big.example";
	ev.spf_domain = "b.big.example";
	run_eval(stub, &ev, &r);
	assert_string_equal(r.org, "unit.big.example");
	assert_int_equal(r.out.result, DMARC_RESULT_FAIL);
	assert_int_equal(r.out.disposition, DMARC_POLICY_QUARANTINE);
	/* Without psd: the highest record is the org domain. */
	ev.tree_walk = false;
	run_eval(stub, &ev, &r);
	assert_string_equal(r.org, "big.example");
	assert_string_equal(r.policy_domain, "big.example");
	auth_dns_stub_destroy(&stub);
}

static void test_invalid_from(void **state ATTR_UNUSED)
{
	static const struct {
		const char *msg;
		enum dmarc_policy dis;
	} cases[] = {
		/* A second From hides nothing: bank.example's p=reject. */
		{ "From: a@none.example\r\nFrom: b@reject.example\r\n\r\n",
		  DMARC_POLICY_REJECT },
		{ "From: a@reject.example\r\nFrom: b@none.example\r\n\r\n",
		  DMARC_POLICY_REJECT },
		{ "From: a@none.example, b@quarantine.example\r\n\r\n",
		  DMARC_POLICY_QUARANTINE },
		{ "From: a@reject.example\r\nFrom: a@reject.example\r\n\r\n",
		  DMARC_POLICY_REJECT },
		{ "From: a@none.example\r\nFrom: b@nowhere.example\r\n\r\n",
		  DMARC_POLICY_NONE },
		{ "Subject: no from\r\n\r\n", DMARC_POLICY_NONE },
		{ "From: undisclosed\r\n\r\n", DMARC_POLICY_NONE },
	};
	struct auth_dns_stub *stub = zone();
	pool_t pool = pool_create("test", 1024);

	for (unsigned int i = 0; i < N_ELEMENTS(cases); i++) {
		struct dmarc_from from;
		struct spf_outcome spf;
		struct dkim_signature_result sig;
		struct dkim_verify_result dkim = { &sig, 1 };
		struct dmarc_request req;
		struct dmarc_check *check;
		struct result r;

		dmarc_from_parse(pool, (const uint8_t *)cases[i].msg,
				 strlen(cases[i].msg), &from);
		assert_int_not_equal(from.status, DMARC_FROM_OK);
		/* Even identifiers aligned with a From domain do not
		   pass. */
		memset(&spf, 0, sizeof(spf));
		spf.result = SPF_PASS;
		spf.domain = "reject.example";
		memset(&sig, 0, sizeof(sig));
		sig.result = DKIM_PASS;
		sig.domain = "reject.example";
		memset(&req, 0, sizeof(req));
		req.from = &from;
		req.spf = &spf;
		req.dkim = &dkim;
		memset(&r, 0, sizeof(r));
		check = dmarc_check_start(auth_dns_stub_dns(stub), &req,
					  dmarc_cb, &r);
		if (from.domain_count == 0) {
			/* No lookup: the callback ran inside. */
			assert_null(check);
		}
		(void)auth_dns_stub_run(stub);
		assert_int_equal(r.calls, 1);
		assert_int_equal(r.out.result, DMARC_RESULT_PERMERROR);
		assert_false(r.out.spf_aligned || r.out.dkim_aligned);
		if (r.out.disposition != cases[i].dis)
			fail_msg("case %u: disposition %s", i,
				 dmarc_policy_name(r.out.disposition));
	}
	pool_unref(&pool);
	auth_dns_stub_destroy(&stub);
}

static void test_cancel(void **state ATTR_UNUSED)
{
	struct auth_dns_stub *stub = zone();
	struct dmarc_from from = { .status = DMARC_FROM_OK,
				   .domains = { "reject.example" },
				   .domain_count = 1 };
	struct dmarc_request req = { .from = &from };
	struct result r = { 0 };
	struct dmarc_check *check;

	check = dmarc_check_start(auth_dns_stub_dns(stub), &req, dmarc_cb, &r);
	assert_non_null(check);
	dmarc_check_cancel(&check);
	assert_null(check);
	dmarc_check_cancel(&check);
	(void)auth_dns_stub_run(stub);
	assert_int_equal(r.calls, 0);
	assert_int_equal(auth_dns_stub_pending(stub), 0);
	auth_dns_stub_destroy(&stub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_parse),
		cmocka_unit_test(test_from_parse),
		cmocka_unit_test(test_matrix),
		cmocka_unit_test(test_no_identifiers),
		cmocka_unit_test(test_pct_sampling),
		cmocka_unit_test(test_subdomains),
		cmocka_unit_test(test_discovery_edges),
		cmocka_unit_test(test_invalid_from),
		cmocka_unit_test(test_cancel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
