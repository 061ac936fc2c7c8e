/* test-arc.c - unit tests for ARC (arc.c, RFC 8617): sealing with keys
   made here (Ed25519 and RSA) and validating the result, chains of 2 and
   of 50, oldest-pass after a change between two sealers, broken chains
   (body, AAR, a missing or duplicate field, cv= rules, h= in a seal, DNS
   failures), cv=fail seals (5.1.2) and refusals, and cancellation. The
   interop with python3-dkim is in tests/integration/test_auth_dkim.py. */

#include "arc.h"
#include "dkim-private.h"
#include "dkim-test-sign.h"
#include "auth-dns-stub.h"

#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

static EVP_PKEY *ed_key, *rsa_key;
static char *ed_record, *rsa_record;

struct got {
	unsigned int calls;
	enum arc_chain cv;
	unsigned int instances, oldest_pass;
	char reason[128];
	char last_domain[64];
};

static void got_cb(void *context, const struct arc_verify_result *r)
{
	struct got *g = context;

	g->calls++;
	g->cv = r->cv;
	g->instances = r->instances;
	g->oldest_pass = r->oldest_pass;
	snprintf(g->reason, sizeof(g->reason), "%s",
		 r->reason == NULL ? "" : r->reason);
	snprintf(g->last_domain, sizeof(g->last_domain), "%s",
		 r->last_domain == NULL ? "" : r->last_domain);
}

static struct auth_dns_stub *zone(void)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();

	auth_dns_stub_add_txt(stub, "ed._domainkey.example.com", ed_record,
			      strlen(ed_record));
	auth_dns_stub_add_txt(stub, "rsa._domainkey.example.org", rsa_record,
			      strlen(rsa_record));
	return stub;
}

static void verify_in(struct auth_dns_stub *stub, const char *msg,
		      struct got *g)
{
	struct arc_verify *v;

	memset(g, 0, sizeof(*g));
	v = arc_verify_start(auth_dns_stub_dns(stub), (const uint8_t *)msg,
			     strlen(msg), got_cb, g);
	if (v != NULL) {
		assert_int_equal(g->calls, 0);
		auth_dns_stub_run(stub);
	}
	assert_int_equal(g->calls, 1);
}

static void verify(const char *msg, struct got *g)
{
	struct auth_dns_stub *stub = zone();

	verify_in(stub, msg, g);
	auth_dns_stub_destroy(&stub);
}

/* Seals msg (ed: example.com with Ed25519, else example.org with RSA).
   Returns the sealed message (malloc'd), or NULL when prepare returned
   0 (error_r says why). */
static char *seal(const char *msg, bool ed, enum arc_chain cv,
		  const char **error_r)
{
	pool_t pool = pool_create("test seal", 1024);
	struct arc_seal_params params = {
		.domain = ed ? "example.com" : "example.org",
		.selector = ed ? "ed" : "rsa",
		.algorithm = ed ? DKIM_ALG_ED25519_SHA256 : DKIM_ALG_RSA_SHA256,
		.timestamp = 1767225600,
		.authserv_id = ed ? "mx.example.com" : "lists.example.org",
		.results = "spf=pass smtp.mailfrom=example.net; dkim=pass "
			   "header.d=example.net; dmarc=pass "
			   "header.from=example.net; arc=none",
		.cv = cv,
	};
	struct arc_seal_request req;
	uint8_t sig[DKIM_SIG_MAX];
	size_t sig_len;
	const char *error = NULL;
	char *out = NULL;
	int ret;

	ret = arc_seal_prepare_ams(pool, (const uint8_t *)msg, strlen(msg),
				   &params, &req, &error);
	if (ret <= 0) {
		assert_int_equal(ret, 0);
		*error_r = error;
		pool_unref(&pool);
		return NULL;
	}
	EVP_PKEY *key = ed ? ed_key : rsa_key;
	assert_int_equal(dkim_test_sign_digest(key, req.digest, sig, &sig_len),
			 0);
	assert_int_equal(arc_seal_prepare_as(&req, sig, sig_len, &error), 0);
	assert_int_equal(dkim_test_sign_digest(key, req.digest, sig, &sig_len),
			 0);
	out = i_strdup_printf("%s%s", arc_seal_finish(pool, &req, sig, sig_len),
			      msg);
	pool_unref(&pool);
	return out;
}

static int setup(void **state ATTR_UNUSED)
{
	ed_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	if (ed_key == NULL || rsa_key == NULL)
		return -1;
	ed_record = dkim_test_key_record(ed_key, "");
	rsa_record = dkim_test_key_record(rsa_key, "");
	return 0;
}

static int teardown(void **state ATTR_UNUSED)
{
	EVP_PKEY_free(ed_key);
	EVP_PKEY_free(rsa_key);
	i_free(ed_record);
	i_free(rsa_record);
	return 0;
}

static const char base_msg[] = "From: Alice <alice@example.net>\r\n"
			       "To: list@example.org\r\n"
			       "Subject: hello\r\n"
			       "DKIM-Signature: v=1; a=rsa-sha256; d=x; s=y; "
			       "h=from; bh=AAAA; b=AAAA\r\n"
			       "\r\n"
			       "Hi list.\r\n";

/* Returns a copy of msg with the first from replaced by to. */
static char *replace(const char *msg, const char *from, const char *to)
{
	const char *p = strstr(msg, from);

	assert_non_null(p);
	return i_strdup_printf("%.*s%s%s", (int)(p - msg), msg, to,
			       p + strlen(from));
}

static void test_none(void **state ATTR_UNUSED)
{
	struct auth_dns_stub *stub = zone();
	struct got g;

	memset(&g, 0, sizeof(g));
	assert_null(arc_verify_start(auth_dns_stub_dns(stub),
				     (const uint8_t *)base_msg,
				     strlen(base_msg), got_cb, &g));
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.cv, ARC_CHAIN_NONE);
	assert_int_equal(g.instances, 0);
	assert_string_equal(g.last_domain, "");
	auth_dns_stub_destroy(&stub);
	assert_string_equal(arc_chain_name(ARC_CHAIN_NONE), "none");
	assert_string_equal(arc_chain_name(ARC_CHAIN_PASS), "pass");
	assert_string_equal(arc_chain_name(ARC_CHAIN_FAIL), "fail");
}

static void test_seal_one(void **state ATTR_UNUSED)
{
	const char *error;
	char *m = seal(base_msg, true, ARC_CHAIN_NONE, &error);
	struct got g;

	assert_non_null(m);
	/* AS, AMS, AAR in this order, instance 1, cv=none */
	assert_true(strncmp(m, "ARC-Seal: i=1; a=ed25519-sha256; cv=none;",
			    41) == 0);
	char *ams = strstr(m, "\r\nARC-Message-Signature: i=1;");
	char *aar = strstr(m, "\r\nARC-Authentication-Results: i=1; "
			      "mx.example.com;");
	assert_non_null(ams);
	assert_non_null(aar);
	assert_true(ams < aar);
	/* the AMS covers the DKIM-Signature, never ARC fields */
	assert_non_null(strstr(m, "dkim-signature;"));
	assert_null(strstr(m, "arc-"));
	verify(m, &g);
	assert_int_equal(g.cv, ARC_CHAIN_PASS);
	assert_int_equal(g.instances, 1);
	assert_int_equal(g.oldest_pass, 0);
	assert_string_equal(g.last_domain, "example.com");
	assert_string_equal(g.reason, "");
	/* every line at most 78 */
	for (const char *line = m; *line != '\0';) {
		const char *end = strstr(line, "\r\n");

		assert_non_null(end);
		assert_true(end - line <= 78);
		line = end + 2;
	}
	i_free(m);
}

static void test_chain_of_two(void **state ATTR_UNUSED)
{
	const char *error;
	char *m1 = seal(base_msg, true, ARC_CHAIN_NONE, &error);
	char *m2 = seal(m1, false, ARC_CHAIN_PASS, &error);
	struct got g;
	char *bad;

	assert_non_null(strstr(m2, "ARC-Seal: i=2; a=rsa-sha256; cv=pass;"));
	verify(m2, &g);
	assert_int_equal(g.cv, ARC_CHAIN_PASS);
	assert_int_equal(g.instances, 2);
	assert_int_equal(g.oldest_pass, 0);
	assert_string_equal(g.last_domain, "example.org");

	/* broken chains: (from, to) replaced once in m2 ("" to: prepend
	   from), and the reason's start */
	static const struct {
		const char *from, *to, *reason;
	} breaks[] = {
		/* the body changed after the last seal */
		{ "Hi list.", "Hi lost.", "AMS 2:" },
		/* an older AAR changed: the newest seal covers it */
		{ "i=1; mx.example.com;", "i=1; mx.evil.example;", "AS 2:" },
		/* instance 1 claiming cv=pass */
		{ "i=1; a=ed25519-sha256; cv=none;",
		  "i=1; a=ed25519-sha256; cv=pass;", "bad cv= in ARC-Seal" },
		{ "ARC-Authentication-Results: i=1;", "X-Gone: i=1;",
		  "incomplete ARC set" },
		{ "ARC-Authentication-Results: i=2; x; arc=none\r\n", "",
		  "duplicate ARC field" },
		{ "ARC-Seal: i=2; a=rsa-sha256; cv=pass;",
		  "ARC-Seal: i=2; a=rsa-sha256; cv=pass; h=from;",
		  "h= in ARC-Seal" },
		{ "ARC-Seal: i=2;", "ARC-Seal: i=51;", "ARC instance out of" },
		{ "ARC-Seal: i=2;", "ARC-Seal: i=x;", "ARC field without" },
	};
	for (unsigned int i = 0; i < N_ELEMENTS(breaks); i++) {
		bad = breaks[i].to[0] == '\0'
			      ? i_strdup_printf("%s%s", breaks[i].from, m2)
			      : replace(m2, breaks[i].from, breaks[i].to);
		verify(bad, &g);
		assert_int_equal(g.cv, ARC_CHAIN_FAIL);
		if (strncmp(g.reason, breaks[i].reason,
			    strlen(breaks[i].reason)) != 0)
			fail_msg("case %u: %s", i, g.reason);
		i_free(bad);
	}
	/* an older seal's signature damaged: AS 2 covers AS 1 with its b=,
	   and is checked first */
	bad = i_strdup(m2);
	char *b = strstr(strstr(bad, "ARC-Seal: i=1;"), " b=") + 8;
	*b = *b == 'A' ? 'B' : 'A';
	verify(bad, &g);
	assert_int_equal(g.cv, ARC_CHAIN_FAIL);
	assert_true(strncmp(g.reason, "AS 2:", 5) == 0);
	i_free(bad);
	/* DNS failure: permanent (RFC 8617 5.2.1) */
	struct auth_dns_stub *stub = zone();
	auth_dns_stub_set_status(stub, "ed._domainkey.example.com", 0,
				 DNS_STATUS_TEMPFAIL);
	verify_in(stub, m2, &g);
	assert_int_equal(g.cv, ARC_CHAIN_FAIL);
	auth_dns_stub_destroy(&stub);
	/* cancel: the callback never runs */
	stub = zone();
	memset(&g, 0, sizeof(g));
	struct arc_verify *v =
		arc_verify_start(auth_dns_stub_dns(stub), (const uint8_t *)m2,
				 strlen(m2), got_cb, &g);
	assert_non_null(v);
	arc_verify_cancel(&v);
	assert_null(v);
	arc_verify_cancel(&v);
	assert_int_equal(auth_dns_stub_run(stub), 0);
	assert_int_equal(g.calls, 0);
	auth_dns_stub_destroy(&stub);
	i_free(m1);
	i_free(m2);
}

static void test_oldest_pass(void **state ATTR_UNUSED)
{
	const char *error;
	char *m1 = seal(base_msg, true, ARC_CHAIN_NONE, &error);
	/* a list changes the subject, then seals with cv=pass */
	char *changed = replace(m1, "Subject: hello", "Subject: [list] hello");
	char *m2 = seal(changed, false, ARC_CHAIN_PASS, &error);
	struct got g;

	verify(m2, &g);
	assert_int_equal(g.cv, ARC_CHAIN_PASS);
	assert_int_equal(g.instances, 2);
	assert_int_equal(g.oldest_pass, 2);
	i_free(m1);
	i_free(changed);
	i_free(m2);
}

static void test_cv_fail(void **state ATTR_UNUSED)
{
	const char *error;
	char *m1 = seal(base_msg, true, ARC_CHAIN_NONE, &error);
	char *broken = replace(m1, "Hi list.", "Hi lost.");
	/* the sealer found the chain broken: its seal covers only itself */
	char *m2 = seal(broken, false, ARC_CHAIN_FAIL, &error);
	struct got g;

	assert_non_null(m2);
	assert_non_null(strstr(m2, "ARC-Seal: i=2; a=rsa-sha256; cv=fail;"));
	verify(m2, &g);
	assert_int_equal(g.cv, ARC_CHAIN_FAIL);
	assert_string_equal(g.reason, "newest ARC-Seal has cv=fail");
	/* RFC 8617 5.1 step 2: no further set */
	error = NULL;
	assert_null(seal(m2, true, ARC_CHAIN_PASS, &error));
	assert_non_null(error);

	/* the cv=fail seal's scope is its own set (5.1.2) */
	pool_t pool = pool_create("test", 1024);
	struct dkim_message m;
	dkim_message_parse(pool, (const uint8_t *)m2, strlen(m2), &m);
	uint8_t digest[32], b[DKIM_SIG_MAX];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	/* fields 0..2: the new AS, AMS, AAR */
	dkim_hash_field(md, DKIM_CANON_RELAXED, m.fields[2].raw);
	EVP_DigestUpdate(md, "\r\n", 2);
	dkim_hash_field(md, DKIM_CANON_RELAXED, m.fields[1].raw);
	EVP_DigestUpdate(md, "\r\n", 2);
	struct span nob;
	assert_int_equal(dkim_field_strip_b(pool, m.fields[0].raw, &nob), 0);
	dkim_hash_field(md, DKIM_CANON_RELAXED, nob);
	EVP_DigestFinal_ex(md, digest, NULL);
	EVP_MD_CTX_free(md);
	struct dkim_tag_list tags;
	assert_int_equal(dkim_tag_list_parse(span_skip(m.fields[0].raw, 9),
					     &tags, &error),
			 0);
	ssize_t blen =
		dkim_base64_decode(*dkim_tag_find(&tags, "b"), b, sizeof(b));
	assert_true(blen > 0);
	struct dkim_key key;
	assert_int_equal(
		dkim_key_parse(span_from_cstr(rsa_record), &key, &error), 0);
	assert_true(dkim_verify_digest(key.pkey, DKIM_KEY_RSA, digest, b,
				       (size_t)blen));
	EVP_PKEY_free(key.pkey);
	pool_unref(&pool);
	i_free(m1);
	i_free(broken);
	i_free(m2);
}

static void test_seal_refusals(void **state ATTR_UNUSED)
{
	pool_t pool = pool_create("test", 1024);
	struct arc_seal_params params = {
		.domain = "example.com",
		.selector = "ed",
		.algorithm = DKIM_ALG_ED25519_SHA256,
		.authserv_id = "mx.example.com",
		.results = "arc=none",
		.cv = ARC_CHAIN_NONE,
	};
	struct arc_seal_request req;
	const char *error;
	uint8_t sig[DKIM_SIG_MAX] = { 0 };

	/* no header end */
	assert_int_equal(arc_seal_prepare_ams(pool, (const uint8_t *)"From: a",
					      7, &params, &req, &error),
			 -1);
	/* no From */
	assert_int_equal(arc_seal_prepare_ams(pool,
					      (const uint8_t *)"To: a\r\n\r\n",
					      9, &params, &req, &error),
			 -1);
	/* a bad authserv-id */
	params.authserv_id = "a b";
	assert_int_equal(arc_seal_prepare_ams(pool, (const uint8_t *)base_msg,
					      strlen(base_msg), &params, &req,
					      &error),
			 -1);
	params.authserv_id = "mx.example.com";
	/* an empty or oversized AMS signature */
	assert_int_equal(arc_seal_prepare_ams(pool, (const uint8_t *)base_msg,
					      strlen(base_msg), &params, &req,
					      &error),
			 1);
	assert_int_equal(arc_seal_prepare_as(&req, sig, 0, &error), -1);
	assert_int_equal(
		arc_seal_prepare_as(&req, sig, DKIM_SIG_MAX + 1, &error), -1);
	pool_unref(&pool);

	/* cv=none for a message that has a chain */
	char *m1 = seal(base_msg, true, ARC_CHAIN_NONE, &error);
	pool = pool_create("test", 1024);
	assert_int_equal(arc_seal_prepare_ams(pool, (const uint8_t *)m1,
					      strlen(m1), &params, &req,
					      &error),
			 -1);
	pool_unref(&pool);
	i_free(m1);
}

static void test_chain_of_fifty(void **state ATTR_UNUSED)
{
	const char *error;
	char *m = seal(base_msg, true, ARC_CHAIN_NONE, &error);
	struct got g;

	for (unsigned int i = 2; i <= 50; i++) {
		char *next = seal(m, true, ARC_CHAIN_PASS, &error);

		i_free(m);
		m = next;
	}
	verify(m, &g);
	assert_int_equal(g.cv, ARC_CHAIN_PASS);
	assert_int_equal(g.instances, 50);
	/* RFC 8617 4.2.1: no 51st set */
	pool_t pool = pool_create("test", 1024);
	struct arc_seal_params params = {
		.domain = "example.com",
		.selector = "ed",
		.algorithm = DKIM_ALG_ED25519_SHA256,
		.authserv_id = "mx.example.com",
		.results = "arc=pass",
		.cv = ARC_CHAIN_PASS,
	};
	struct arc_seal_request req;
	assert_int_equal(arc_seal_prepare_ams(pool, (const uint8_t *)m,
					      strlen(m), &params, &req, &error),
			 -1);
	assert_string_equal(error, "the chain already has 50 sets");
	pool_unref(&pool);
	i_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_none),
		cmocka_unit_test(test_seal_one),
		cmocka_unit_test(test_chain_of_two),
		cmocka_unit_test(test_oldest_pass),
		cmocka_unit_test(test_cv_fail),
		cmocka_unit_test(test_seal_refusals),
		cmocka_unit_test(test_chain_of_fifty),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
