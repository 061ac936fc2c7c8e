/* test-authres.c - unit tests for authres.c: the resinfo list for spf
   (mailfrom, helo), dkim (header.d/s/a/b, several signatures, none),
   dmarc (header.from, policy comment) and arc; the folded field; pvalue
   quoting of hostile values (CR/LF, quotes, spaces) and comment escaping;
   the authserv-id lexer (CFWS, comments, quoted strings, version); and
   the removal of fields claiming our authserv-id, byte for byte for the
   rest of the message. */

#include "authres.h"

#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static void test_results(void **state ATTR_UNUSED)
{
	pool_t pool = pool_create("test", 1024);
	struct spf_outcome mf = { .result = SPF_PASS,
				  .identity = SPF_IDENTITY_MAILFROM,
				  .domain = "a.example",
				  .sender = "bob@a.example",
				  .reason = "ip4:192.0.2.0/24" };
	struct spf_outcome helo = { .result = SPF_NONE,
				    .identity = SPF_IDENTITY_HELO,
				    .domain = "mx.a.example",
				    .sender = "postmaster@mx.a.example",
				    .reason = "no SPF record" };
	struct dkim_signature_result sigs[2] = {
		{ .result = DKIM_PASS,
		  .domain = "a.example",
		  .selector = "ed1",
		  .algorithm = "ed25519-sha256",
		  .b_prefix = "AbCd+/12" },
		{ .result = DKIM_FAIL,
		  .domain = "a.example",
		  .selector = "rsa1",
		  .algorithm = "rsa-sha256",
		  .b_prefix = "zzzzzzzz",
		  .reason = "body hash mismatch" },
	};
	struct dkim_verify_result dkim = { sigs, 2 };
	struct dmarc_record rec = { .p = DMARC_POLICY_REJECT };
	struct dmarc_outcome dmarc = { .result = DMARC_RESULT_PASS,
				       .from_domain = "a.example",
				       .record = &rec,
				       .policy = DMARC_POLICY_REJECT,
				       .disposition = DMARC_POLICY_NONE };
	struct arc_verify_result arc = { .cv = ARC_CHAIN_NONE };
	struct authres_input in = { &mf, &helo, &dkim, &dmarc, &arc };
	const char *r, *f;

	r = authres_results(pool, &in);
	assert_string_equal(
		r, "spf=pass smtp.mailfrom=bob@a.example; "
		   "spf=none (no SPF record) smtp.helo=mx.a.example; "
		   "dkim=pass header.d=a.example header.s=ed1 "
		   "header.a=ed25519-sha256 header.b=\"AbCd+/12\"; "
		   "dkim=fail (body hash mismatch) header.d=a.example "
		   "header.s=rsa1 header.a=rsa-sha256 header.b=zzzzzzzz; "
		   "dmarc=pass (p=reject dis=none) header.from=a.example; "
		   "arc=none");
	f = authres_field(pool, "mx.b.example", r);
	assert_string_equal(
		f, "Authentication-Results: mx.b.example;\r\n"
		   "\tspf=pass smtp.mailfrom=bob@a.example;\r\n"
		   "\tspf=none (no SPF record) smtp.helo=mx.a.example;\r\n"
		   "\tdkim=pass header.d=a.example header.s=ed1 "
		   "header.a=ed25519-sha256 header.b=\"AbCd+/12\";\r\n"
		   "\tdkim=fail (body hash mismatch) header.d=a.example "
		   "header.s=rsa1 header.a=rsa-sha256 header.b=zzzzzzzz;\r\n"
		   "\tdmarc=pass (p=reject dis=none) header.from=a.example;\r\n"
		   "\tarc=none\r\n");

	/* Failing DMARC with sampling, no DKIM signature, arc pass. */
	dmarc.result = DMARC_RESULT_FAIL;
	dmarc.disposition = DMARC_POLICY_QUARANTINE;
	dmarc.sampled_out = true;
	dmarc.reason = "no aligned SPF or DKIM pass";
	dkim.count = 0;
	arc.cv = ARC_CHAIN_PASS;
	arc.instances = 2;
	mf.result = SPF_FAIL;
	mf.reason = "-all";
	in.spf_helo = NULL;
	r = authres_results(pool, &in);
	assert_string_equal(
		r, "spf=fail (-all) smtp.mailfrom=bob@a.example; dkim=none; "
		   "dmarc=fail (p=reject dis=quarantine sampled-out; no "
		   "aligned SPF or DKIM pass) header.from=a.example; "
		   "arc=pass (i=2) header.oldest-pass=0");
	/* DMARC without a record, without a From domain. */
	dmarc.result = DMARC_RESULT_PERMERROR;
	dmarc.record = NULL;
	dmarc.from_domain = NULL;
	dmarc.reason = "no From field";
	in = (struct authres_input){ .dmarc = &dmarc };
	assert_string_equal(authres_results(pool, &in),
			    "dmarc=permerror (no From field)");
	/* Nothing run. */
	in = (struct authres_input){ 0 };
	r = authres_results(pool, &in);
	assert_string_equal(r, "none");
	assert_string_equal(authres_field(pool, "mx.b.example", r),
			    "Authentication-Results: mx.b.example; none\r\n");
	pool_unref(&pool);
}

static void test_hostile_values(void **state ATTR_UNUSED)
{
	pool_t pool = pool_create("test", 1024);
	struct dkim_signature_result sig = {
		.result = DKIM_PERMERROR,
		.domain =
			"evil.example\r\nAuthentication-Results: mx.b.example; "
			"dkim=pass",
		.selector = "s \"1\"\\",
		.algorithm = "rsa-sha256",
		.reason = "bad (nested) \\ reason\r\nX: y; dkim=pass",
	};
	struct dkim_verify_result dkim = { &sig, 1 };
	struct spf_outcome mf = { .result = SPF_PASS,
				  .identity = SPF_IDENTITY_MAILFROM,
				  .domain = "a.example",
				  .sender = "\"odd local\"@a.example" };
	struct authres_input in = { .spf_mailfrom = &mf, .dkim = &dkim };
	const char *r, *f;

	r = authres_results(pool, &in);
	assert_string_equal(
		r, "spf=pass smtp.mailfrom=\"\\\"odd local\\\"@a.example\"; "
		   "dkim=permerror (bad \\(nested\\) \\\\ reason  X: y; "
		   "dkim=pass) header.d=\"evil.exampleAuthentication-"
		   "Results: mx.b.example; dkim=pass\" header.s=\"s "
		   "\\\"1\\\"\\\\\" header.a=rsa-sha256");
	f = authres_field(pool, "mx.b.example", r);
	/* The "; " inside the comment and the quoted string does not
	   fold, and no CR or LF but the folds is left. */
	assert_string_equal(
		f, "Authentication-Results: mx.b.example;\r\n"
		   "\tspf=pass smtp.mailfrom=\"\\\"odd local\\\"@a.example\";"
		   "\r\n\tdkim=permerror (bad \\(nested\\) \\\\ reason  X: y; "
		   "dkim=pass) header.d=\"evil.exampleAuthentication-"
		   "Results: mx.b.example; dkim=pass\" header.s=\"s "
		   "\\\"1\\\"\\\\\" header.a=rsa-sha256\r\n");
	/* The authserv-id itself is quoted when it is not a token. */
	assert_string_equal(authres_field(pool, "my host", "none"),
			    "Authentication-Results: \"my host\"; none\r\n");
	pool_unref(&pool);
}

static void test_parse_authserv_id(void **state ATTR_UNUSED)
{
	static const struct {
		const char *value;
		const char *id; /* NULL: none */
	} cases[] = {
		{ " mx.b.example; spf=pass", "mx.b.example" },
		{ "mx.b.example;spf=pass", "mx.b.example" },
		{ " (comment (nested)) mx.b.example ; none", "mx.b.example" },
		{ "\r\n\tmx.b.example 1; none", "mx.b.example" },
		{ " \"mx.b.example\"; none", "mx.b.example" },
		{ " \"mx.b\\.example\"; none", "mx.b.example" },
		{ " mx.b.example(c); none", "mx.b.example" },
		{ " MX.B.Example; none", "MX.B.Example" },
		{ " ; none", NULL },
		{ "", NULL },
		{ " (unterminated", NULL },
		{ " \"\"; none", NULL },
	};
	pool_t pool = pool_create("test", 1024);
	const char *id;

	for (unsigned int i = 0; i < N_ELEMENTS(cases); i++) {
		bool ok = authres_parse_authserv_id(
			pool, span_from_cstr(cases[i].value), &id);

		if (ok != (cases[i].id != NULL))
			fail_msg("case %u: %d", i, ok);
		if (ok)
			assert_string_equal(id, cases[i].id);
	}
	pool_unref(&pool);
}

static void test_remove(void **state ATTR_UNUSED)
{
	static const struct {
		const char *in, *out;
		unsigned int removed;
	} cases[] = {
		{ "Authentication-Results: mx.b.example; dkim=pass\r\n"
		  "From: a@a.example\r\n"
		  "authentication-results: (x) \"MX.B.EXAMPLE\";\r\n"
		  "\tspf=pass\r\n"
		  "Authentication-Results: mx.other.example; dkim=pass\r\n"
		  "X-Authentication-Results: mx.b.example; dkim=pass\r\n"
		  "Authentication-Results : mx.b.example; none\r\n"
		  "Authentication-Results: mx.b.example.evil; dkim=pass\r\n"
		  "\r\n"
		  "Authentication-Results: mx.b.example; in the body\r\n",
		  "From: a@a.example\r\n"
		  "Authentication-Results: mx.other.example; dkim=pass\r\n"
		  "X-Authentication-Results: mx.b.example; dkim=pass\r\n"
		  "Authentication-Results: mx.b.example.evil; dkim=pass\r\n"
		  "\r\n"
		  "Authentication-Results: mx.b.example; in the body\r\n",
		  3 },
		/* Bare LF, no body, last field without line end. */
		{ "Subject: x\nAuthentication-Results: mx.b.example; x",
		  "Subject: x\n", 1 },
		{ "", "", 0 },
		{ "\r\nbody only\r\n", "\r\nbody only\r\n", 0 },
		{ "Garbage line\r\nAuthentication-Results:mx.b.example;\r\n",
		  "Garbage line\r\n", 1 },
	};
	struct buf out;

	for (unsigned int i = 0; i < N_ELEMENTS(cases); i++) {
		unsigned int n;

		buf_init(&out, 64);
		n = authres_remove_ours((const uint8_t *)cases[i].in,
					strlen(cases[i].in), "mx.b.example",
					&out);
		assert_int_equal(n, cases[i].removed);
		assert_string_equal(buf_cstr(&out), cases[i].out);
		buf_free(&out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_results),
		cmocka_unit_test(test_hostile_values),
		cmocka_unit_test(test_parse_authserv_id),
		cmocka_unit_test(test_remove),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
