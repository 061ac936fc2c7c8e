/* test-dkim.c - unit tests for DKIM (dkim-canon.c, dkim-verify.c,
   dkim-sign.c): the canonicalization examples of RFC 6376 3.4.5, tag
   lists, key records, the RFC 8463 example message (Ed25519 and RSA) and
   a real Gmail message verified with their published keys through the
   DNS stub, sign/verify round trips with keys made here, the policy of
   dkim.h (l=, x=, rsa-sha1, short RSA keys, i=, From in h=, revoked and
   missing keys, DNS failures), tampering, oversigning, several
   signatures in one message, bare LF and cancellation. Signatures with
   chosen tags are made with OpenSSL directly (test_sign()). */

#include "dkim-private.h"
#include "auth-dns-stub.h"
#include "dkim-test-sign.h"

#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <cmocka.h>

#define MAX_SIGS 16

static EVP_PKEY *rsa_key, *rsa_small_key, *ed_key;
static char *rsa_record, *rsa_small_record, *ed_record;

struct got {
	unsigned int calls, count;
	enum dkim_result r[MAX_SIGS];
	char reason[MAX_SIGS][64];
	char domain[MAX_SIGS][64];
	char identity[MAX_SIGS][64];
	char b_prefix[MAX_SIGS][16];
	bool testing[MAX_SIGS];
};

static void got_cb(void *context, const struct dkim_verify_result *res)
{
	struct got *g = context;

	g->calls++;
	g->count = res->count;
	for (unsigned int i = 0; i < res->count && i < MAX_SIGS; i++) {
		const struct dkim_signature_result *s = &res->sigs[i];

		g->r[i] = s->result;
		snprintf(g->reason[i], sizeof(g->reason[i]), "%s",
			 s->reason == NULL ? "" : s->reason);
		snprintf(g->domain[i], sizeof(g->domain[i]), "%s", s->domain);
		snprintf(g->identity[i], sizeof(g->identity[i]), "%s",
			 s->identity == NULL ? "" : s->identity);
		snprintf(g->b_prefix[i], sizeof(g->b_prefix[i]), "%s",
			 s->b_prefix);
		g->testing[i] = s->testing;
	}
}

static struct auth_dns_stub *zone(void)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();

	auth_dns_stub_add_txt(stub, "rsa._domainkey.example.com", rsa_record,
			      strlen(rsa_record));
	auth_dns_stub_add_txt(stub, "ed._domainkey.example.com", ed_record,
			      strlen(ed_record));
	auth_dns_stub_add_txt(stub, "small._domainkey.example.com",
			      rsa_small_record, strlen(rsa_small_record));
	return stub;
}

static void verify(struct auth_dns_stub *stub, const char *msg, size_t len,
		   struct got *g)
{
	struct dkim_verify *v;

	memset(g, 0, sizeof(*g));
	v = dkim_verify_start(auth_dns_stub_dns(stub), (const uint8_t *)msg,
			      len, 0, got_cb, g);
	if (v != NULL) {
		assert_int_equal(g->calls, 0);
		auth_dns_stub_run(stub);
	}
	assert_int_equal(g->calls, 1);
}

/* Verifies msg against the default zone. */
static void verify_str(const char *msg, struct got *g)
{
	struct auth_dns_stub *stub = zone();

	verify(stub, msg, strlen(msg), g);
	auth_dns_stub_destroy(&stub);
}

/* Prepends a DKIM-Signature with the given tags (everything but bh= and
   b=; c=, h= and l= are honoured) signed with key. Returns a malloc'd
   message. */
static char *test_sign(const char *msg, const char *tags, EVP_PKEY *key)
{
	pool_t pool = pool_create("test sign", 1024);
	struct dkim_tag_list list;
	const struct span *c, *h, *l;
	enum dkim_canon hc = DKIM_CANON_SIMPLE, bc = DKIM_CANON_SIMPLE;
	struct dkim_message m;
	struct span names[DKIM_H_MAX];
	unsigned int n = 0;
	struct buf body = BUF_INIT, field = BUF_INIT;
	uint8_t digest[32], sig[DKIM_SIG_MAX];
	size_t sig_len, hashed;
	const char *error;
	char *out;

	assert_int_equal(
		dkim_tag_list_parse(span_from_cstr(tags), &list, &error), 0);
	c = dkim_tag_find(&list, "c");
	if (c != NULL) {
		if (span_starts_with_ci(*c, SPAN_LIT("relaxed")))
			hc = DKIM_CANON_RELAXED;
		if (c->len > 8 && memcmp(c->p + c->len - 7, "relaxed", 7) == 0)
			bc = DKIM_CANON_RELAXED;
	}
	h = dkim_tag_find(&list, "h");
	assert_non_null(h);
	struct span rest = *h, name;
	for (;;) {
		bool more = span_split(rest, ':', &name, &rest);

		names[n++] = span_trim(name);
		if (!more)
			break;
	}
	dkim_message_parse(pool, (const uint8_t *)msg, strlen(msg), &m);
	dkim_canon_body(&body, bc, m.body);
	hashed = body.used;
	l = dkim_tag_find(&list, "l");
	if (l != NULL)
		hashed = (size_t)strtoul(p_strndup(pool, l->p, l->len), NULL,
					 10);
	if (hashed > body.used)
		hashed = body.used;
	EVP_Digest(body.data == NULL ? (const uint8_t *)"" : body.data, hashed,
		   digest, NULL, EVP_sha256(), NULL);
	buf_printf(&field, "DKIM-Signature: %s; bh=", tags);
	dkim_base64_encode(&field, digest, 32);
	buf_append_str(&field, "; b=");

	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	dkim_hash_fields(md, hc, &m, names, n, NULL);
	dkim_hash_field(md, hc, buf_span(&field));
	EVP_DigestFinal_ex(md, digest, NULL);
	EVP_MD_CTX_free(md);
	assert_int_equal(dkim_test_sign_digest(key, digest, sig, &sig_len), 0);
	dkim_base64_encode(&field, sig, sig_len);
	buf_append_str(&field, "\r\n");
	buf_append_str(&field, msg);
	out = i_strdup(buf_cstr(&field));
	buf_free(&field);
	buf_free(&body);
	pool_unref(&pool);
	return out;
}

/* Signs with dkim_sign_prepare() / dkim_sign_finish(). */
static char *our_sign(const char *msg, enum dkim_algorithm alg,
		      const char *selector)
{
	pool_t pool = pool_create("our sign", 1024);
	struct dkim_sign_params params = {
		.domain = "example.com",
		.selector = selector,
		.algorithm = alg,
		.timestamp = 1700000000,
	};
	struct dkim_sign_request req;
	uint8_t sig[DKIM_SIG_MAX];
	size_t sig_len;
	const char *error, *field;
	char *out;

	assert_int_equal(dkim_sign_prepare(pool, (const uint8_t *)msg,
					   strlen(msg), &params, &req, &error),
			 0);
	assert_int_equal(dkim_test_sign_digest(
				 alg == DKIM_ALG_RSA_SHA256 ? rsa_key : ed_key,
				 req.digest, sig, &sig_len),
			 0);
	field = dkim_sign_finish(pool, &req, sig, sig_len);
	out = i_strdup_printf("%s%s", field, msg);
	pool_unref(&pool);
	return out;
}

static int setup(void **state ATTR_UNUSED)
{
	rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	rsa_small_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)768);
	ed_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (rsa_key == NULL || rsa_small_key == NULL || ed_key == NULL)
		return -1;
	rsa_record = dkim_test_key_record(rsa_key, "");
	rsa_small_record = dkim_test_key_record(rsa_small_key, "");
	ed_record = dkim_test_key_record(ed_key, "");
	return 0;
}

static int teardown(void **state ATTR_UNUSED)
{
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(rsa_small_key);
	EVP_PKEY_free(ed_key);
	i_free(rsa_record);
	i_free(rsa_small_record);
	i_free(ed_record);
	return 0;
}

static char *read_testdata(const char *name, size_t *len_r)
{
	const char *src = getenv("MARMOT_SOURCE_DIR");
	char *path, *data;
	FILE *f;
	long len;

	assert_non_null(src);
	path = i_strdup_printf("%s/testdata/dkim/%s", src, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	data = i_malloc((size_t)len + 1);
	assert_int_equal(fread(data, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	i_free(path);
	*len_r = (size_t)len;
	return data;
}

static const char base_msg[] = "From: Alice <alice@example.com>\r\n"
			       "To: bob@example.net\r\n"
			       "Subject: hello\r\n"
			       "Date: Thu, 1 Jan 2026 00:00:00 +0000\r\n"
			       "Message-ID: <1@example.com>\r\n"
			       "\r\n"
			       "Hi Bob.\r\n"
			       "\r\n"
			       "How are  you?\r\n";

/* RFC 6376 3.4.5 */
static void test_canon_rfc_example(void **state ATTR_UNUSED)
{
	static const char msg[] = "A: X\r\n"
				  "B : Y\t\r\n"
				  "\tZ  \r\n"
				  "\r\n"
				  " C \r\n"
				  "D \t E\r\n"
				  "\r\n"
				  "\r\n";
	pool_t pool = pool_create("test", 1024);
	struct dkim_message m;
	struct buf b = BUF_INIT;

	dkim_message_parse(pool, (const uint8_t *)msg, strlen(msg), &m);
	assert_int_equal(m.field_count, 2);
	assert_true(m.header_end);
	for (unsigned int i = 0; i < m.field_count; i++) {
		dkim_canon_header(&b, DKIM_CANON_RELAXED, m.fields[i].raw);
		buf_append_str(&b, "\r\n");
	}
	assert_string_equal(buf_cstr(&b), "a:X\r\nb:Y Z\r\n");
	buf_reset(&b);
	for (unsigned int i = 0; i < m.field_count; i++) {
		dkim_canon_header(&b, DKIM_CANON_SIMPLE, m.fields[i].raw);
		buf_append_str(&b, "\r\n");
	}
	assert_string_equal(buf_cstr(&b), "A: X\r\nB : Y\t\r\n\tZ  \r\n");
	buf_reset(&b);
	dkim_canon_body(&b, DKIM_CANON_RELAXED, m.body);
	assert_string_equal(buf_cstr(&b), " C\r\nD E\r\n");
	buf_reset(&b);
	dkim_canon_body(&b, DKIM_CANON_SIMPLE, m.body);
	assert_string_equal(buf_cstr(&b), " C \r\nD \t E\r\n");
	buf_free(&b);
	pool_unref(&pool);
}

static void test_canon_body_edges(void **state ATTR_UNUSED)
{
	static const struct {
		const char *body;
		const char *simple, *relaxed;
	} cases[] = {
		/* RFC 6376 3.4.3: empty body is CRLF; 3.4.4 (errata
		   1384): empty stays empty */
		{ "", "\r\n", "" },
		{ "\r\n\r\n", "\r\n", "" },
		{ " \t \r\n", " \t \r\n", "" },
		{ "no end", "no end\r\n", "no end\r\n" },
		{ "a  b \r\n\r\n \r\nc\r\n\r\n", "a  b \r\n\r\n \r\nc\r\n",
		  "a b\r\n\r\n\r\nc\r\n" },
		{ "x\ry \r\n", "x\ry \r\n", "x\ry\r\n" },
	};
	struct buf b = BUF_INIT;

	for (unsigned int i = 0; i < N_ELEMENTS(cases); i++) {
		struct span body = span_from_cstr(cases[i].body);

		buf_reset(&b);
		dkim_canon_body(&b, DKIM_CANON_SIMPLE, body);
		assert_string_equal(buf_cstr(&b), cases[i].simple);
		buf_reset(&b);
		dkim_canon_body(&b, DKIM_CANON_RELAXED, body);
		assert_string_equal(buf_cstr(&b), cases[i].relaxed);
	}
	buf_free(&b);
}

static void test_message_parse(void **state ATTR_UNUSED)
{
	pool_t pool = pool_create("test", 1024);
	struct dkim_message m;
	static const char lf[] = "From: a\n b\nTo: c\n\nbody\nline\n";

	/* bare LF is CRLF */
	dkim_message_parse(pool, (const uint8_t *)lf, strlen(lf), &m);
	assert_int_equal(m.field_count, 2);
	assert_true(m.header_end);
	assert_int_equal(m.fields[0].raw.len, strlen("From: a\r\n b"));
	assert_memory_equal(m.fields[0].raw.p, "From: a\r\n b", 11);
	assert_int_equal(m.body.len, strlen("body\r\nline\r\n"));
	assert_memory_equal(m.body.p, "body\r\nline\r\n", m.body.len);
	/* no header end: no body */
	dkim_message_parse(pool, (const uint8_t *)"A: b\r\nC: d", 10, &m);
	assert_int_equal(m.field_count, 2);
	assert_false(m.header_end);
	assert_int_equal(m.body.len, 0);
	assert_int_equal(m.fields[1].raw.len, 4);
	pool_unref(&pool);
}

static void test_tag_list(void **state ATTR_UNUSED)
{
	static const struct {
		const char *text;
		int ret;
		unsigned int count;
	} cases[] = {
		{ "v=1; a=rsa-sha256", 0, 2 },
		{ "v=1; a=rsa-sha256;", 0, 2 },
		{ " v = 1 ;\r\n\ta=\r\n b ; ", 0, 2 },
		{ "v=", 0, 1 },
		{ "", 0, 0 },
		{ "v=1; v=2", -1, 0 }, /* duplicate */
		{ "v=1;; a=2", -1, 0 }, /* empty tag-spec inside */
		{ "1v=1", -1, 0 },
		{ "v1", -1, 0 },
		{ "v=a\001b", -1, 0 },
		{ "a_1=x; B=y", 0, 2 },
	};
	struct dkim_tag_list list;
	const char *error;

	for (unsigned int i = 0; i < N_ELEMENTS(cases); i++) {
		int ret = dkim_tag_list_parse(span_from_cstr(cases[i].text),
					      &list, &error);

		assert_int_equal(ret, cases[i].ret);
		if (ret == 0)
			assert_int_equal(list.count, cases[i].count);
	}
	assert_int_equal(dkim_tag_list_parse(span_from_cstr(" v = 1 ;\r\n\t"
							    "a= x\r\n y ; "),
					     &list, &error),
			 0);
	const struct span *a = dkim_tag_find(&list, "a");
	assert_non_null(a);
	assert_int_equal(a->len, 5);
	assert_memory_equal(a->p, "x\r\n y", 5);
	assert_null(dkim_tag_find(&list, "A"));
}

static void test_base64(void **state ATTR_UNUSED)
{
	uint8_t out[16];

	assert_int_equal(dkim_base64_decode(SPAN_LIT("aGVs bG8=\r\n "), out,
					    sizeof(out)),
			 5);
	assert_memory_equal(out, "hello", 5);
	assert_int_equal(dkim_base64_decode(SPAN_LIT(""), out, sizeof(out)), 0);
	assert_int_equal(
		dkim_base64_decode(SPAN_LIT("aGVsbG8*"), out, sizeof(out)), -1);
	assert_int_equal(
		dkim_base64_decode(SPAN_LIT("aG=Vs"), out, sizeof(out)), -1);
	assert_int_equal(dkim_base64_decode(SPAN_LIT("aGVsbG8="), out, 3), -1);
}

static void test_key_records(void **state ATTR_UNUSED)
{
	static const struct {
		const char *record;
		int ret;
		bool revoked, testing, strict;
	} cases[] = {
		{ "v=DKIM1; p=", 0, true, false, false },
		{ "p=; t=y:s", 0, true, true, true },
		{ "v=DKIM1; k=ed25519; "
		  "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
		  0, false, false, false },
		{ "v=DKIM1; k=ed25519; p=11qYAYKx", -1, false, false, false },
		{ "v=DKIM2; p=", -1, false, false, false },
		{ "k=rsa; v=DKIM1; p=", -1, false, false, false },
		{ "v=DKIM1; k=dsa; p=", -1, false, false, false },
		{ "v=DKIM1; h=sha1; p=", -1, false, false, false },
		{ "v=DKIM1; h=sha1:sha256; p=", 0, true, false, false },
		{ "v=DKIM1; s=email; p=", 0, true, false, false },
		{ "v=DKIM1; s=tlsrpt; p=", -1, false, false, false },
		{ "v=DKIM1; k=rsa", -1, false, false, false },
		{ "v=DKIM1; p=AAAA", -1, false, false, false },
		{ "v=DKIM1; p=!!", -1, false, false, false },
		{ "v=DKIM1; p; x", -1, false, false, false },
	};
	struct dkim_key key;
	const char *error;

	for (unsigned int i = 0; i < N_ELEMENTS(cases); i++) {
		int ret = dkim_key_parse(span_from_cstr(cases[i].record), &key,
					 &error);

		assert_int_equal(ret, cases[i].ret);
		if (ret == 0) {
			assert_int_equal(key.revoked, cases[i].revoked);
			assert_int_equal(key.testing, cases[i].testing);
			assert_int_equal(key.strict, cases[i].strict);
		}
		EVP_PKEY_free(key.pkey);
	}
	assert_int_equal(
		dkim_key_parse(span_from_cstr(rsa_record), &key, &error), 0);
	assert_int_equal(key.type, DKIM_KEY_RSA);
	assert_int_equal(key.bits, 2048);
	assert_non_null(key.pkey);
	EVP_PKEY_free(key.pkey);
}

static void test_rfc8463_example(void **state ATTR_UNUSED)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();
	static const char ed[] =
		"v=DKIM1; k=ed25519; "
		"p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
	/* RFC 8463 A.2 */
	static const char rsa[] =
		"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQ"
		"oBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzC"
		"Nb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvH"
		"O9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB";
	size_t len;
	char *msg = read_testdata("rfc8463-example.msg", &len);
	struct got g;

	auth_dns_stub_add_txt(stub, "brisbane._domainkey.football.example.com",
			      ed, strlen(ed));
	auth_dns_stub_add_txt(stub, "test._domainkey.football.example.com", rsa,
			      strlen(rsa));
	verify(stub, msg, len, &g);
	assert_int_equal(g.count, 2);
	assert_int_equal(g.r[0], DKIM_PASS);
	assert_int_equal(g.r[1], DKIM_PASS);
	assert_string_equal(g.domain[0], "football.example.com");
	assert_string_equal(g.identity[0], "@football.example.com");
	assert_string_equal(g.b_prefix[0], "/gCrinpc");
	assert_string_equal(g.b_prefix[1], "F45dVWDf");

	/* one changed body byte breaks both */
	char *p = strstr(msg, "hungry");
	assert_non_null(p);
	p[0] = 'H';
	verify(stub, msg, len, &g);
	assert_int_equal(g.r[0], DKIM_FAIL);
	assert_int_equal(g.r[1], DKIM_FAIL);
	assert_string_equal(g.reason[0], "body hash mismatch");
	p[0] = 'h';
	/* a changed signed field breaks both, through the signature */
	p = strstr(msg, "dinner");
	p[0] = 'D';
	verify(stub, msg, len, &g);
	assert_int_equal(g.r[0], DKIM_FAIL);
	assert_string_equal(g.reason[0], "signature mismatch");
	assert_int_equal(g.r[1], DKIM_FAIL);
	i_free(msg);
	auth_dns_stub_destroy(&stub);
}

static char *pem_to_record(const char *pem)
{
	struct buf b = BUF_INIT;
	const char *line = pem;
	char *out;

	buf_append_str(&b, "v=DKIM1; k=rsa; p=");
	while (*line != '\0') {
		const char *end = strchr(line, '\n');
		size_t n = end == NULL ? strlen(line) : (size_t)(end - line);

		if (n > 0 && line[0] != '-')
			buf_append(&b, line, n);
		line += n + (end != NULL);
	}
	out = i_strdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

static void test_gmail(void **state ATTR_UNUSED)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();
	size_t len, plen;
	char *msg = read_testdata("gmail.msg", &len);
	char *pem = read_testdata("gmail.pub", &plen);
	char *record = pem_to_record(pem);
	struct got g;

	auth_dns_stub_add_txt(stub, "20120113._domainkey.gmail.com", record,
			      strlen(record));
	verify(stub, msg, len, &g);
	assert_int_equal(g.count, 1);
	assert_int_equal(g.r[0], DKIM_PASS);
	assert_string_equal(g.domain[0], "gmail.com");
	assert_string_equal(g.identity[0], "@gmail.com");
	/* an unsigned field may change; a signed one may not */
	char *p = strstr(msg, "Delivered-To: jeff");
	p[15] = 'J';
	verify(stub, msg, len, &g);
	assert_int_equal(g.r[0], DKIM_PASS);
	p = strstr(msg, "\nSubject: ");
	assert_non_null(p);
	p[10] ^= 0x20;
	verify(stub, msg, len, &g);
	assert_int_equal(g.r[0], DKIM_FAIL);
	i_free(record);
	i_free(pem);
	i_free(msg);
	auth_dns_stub_destroy(&stub);
}

static void test_round_trip(void **state ATTR_UNUSED)
{
	static const char *const msgs[] = {
		base_msg,
		/* empty body, no From display name, folded To */
		"From: a@example.com\r\nTo: x@example.net,\r\n"
		"\ty@example.net\r\nSubject:  odd   spacing \t\r\n\r\n",
		/* no body at all after the header end */
		"from: a@example.com\r\n\r\n",
		/* 8-bit and a long line */
		"From: a@example.com\r\nSubject: caf\xc3\xa9\r\n\r\n"
		"\xff\xfe binary-ish \xc3\xa9t\xc3\xa9 "
		"0123456789012345678901234567890123456789012345678901234567"
		"890123456789012345678901234567890123456789\r\n",
	};
	struct got g;

	for (unsigned int i = 0; i < N_ELEMENTS(msgs); i++) {
		char *rsa = our_sign(msgs[i], DKIM_ALG_RSA_SHA256, "rsa");
		char *both = our_sign(rsa, DKIM_ALG_ED25519_SHA256, "ed");

		verify_str(both, &g);
		assert_int_equal(g.count, 2);
		assert_int_equal(g.r[0], DKIM_PASS);
		assert_int_equal(g.r[1], DKIM_PASS);
		assert_string_equal(g.domain[0], "example.com");
		i_free(rsa);
		i_free(both);
	}
}

static void test_sign_format(void **state ATTR_UNUSED)
{
	pool_t pool = pool_create("test", 1024);
	struct dkim_sign_params params = {
		.domain = "a-rather-long-domain-name-for-folding.example.com",
		.selector = "selector-2026-with-a-long-name",
		.algorithm = DKIM_ALG_RSA_SHA256,
	};
	struct dkim_sign_request req;
	uint8_t sig[DKIM_SIG_MAX];
	size_t sig_len;
	const char *error, *field, *line;
	static const char msg[] = "From: a@example.com\r\n"
				  "To: b@example.com\r\n"
				  "To: c@example.com\r\n\r\nhi\r\n";

	assert_int_equal(dkim_sign_prepare(pool, (const uint8_t *)msg,
					   strlen(msg), &params, &req, &error),
			 0);
	assert_int_equal(
		dkim_test_sign_digest(rsa_key, req.digest, sig, &sig_len), 0);
	field = dkim_sign_finish(pool, &req, sig, sig_len);
	/* RFC 5322 2.1.1: folded at 78; every line ends in CRLF */
	for (line = field; *line != '\0';) {
		const char *end = strstr(line, "\r\n");

		assert_non_null(end);
		assert_true(end - line <= 78);
		line = end + 2;
		if (*line != '\0')
			assert_true(*line == ' ');
	}
	/* oversigned: To twice present, three times in h=; absent fields
	   once; From twice */
	char *flat = i_strdup(field);
	char *w = flat;
	for (const char *r = flat; *r != '\0'; r++) {
		if (*r != '\r' && *r != '\n' && *r != ' ')
			*w++ = *r;
	}
	*w = '\0';
	assert_non_null(strstr(flat, "h=from:from:to:to:to:cc:subject:"));
	assert_null(strstr(flat, ";t="));
	i_free(flat);

	/* no From, no header end */
	assert_int_equal(dkim_sign_prepare(pool,
					   (const uint8_t *)"To: a\r\n\r\n", 9,
					   &params, &req, &error),
			 -1);
	assert_string_equal(error, "message has no From");
	assert_int_equal(dkim_sign_prepare(pool, (const uint8_t *)"From: a\r\n",
					   9, &params, &req, &error),
			 -1);
	params.domain = "bad;domain";
	assert_int_equal(dkim_sign_prepare(pool, (const uint8_t *)msg,
					   strlen(msg), &params, &req, &error),
			 -1);
	pool_unref(&pool);
}

static void test_oversigning(void **state ATTR_UNUSED)
{
	char *signed_msg = our_sign(base_msg, DKIM_ALG_ED25519_SHA256, "ed");
	struct got g;
	char *added;

	/* a second From (or a Cc) added in transit breaks it */
	added = i_strdup_printf("From: mallory@evil.example\r\n%s", signed_msg);
	verify_str(added, &g);
	assert_int_equal(g.r[0], DKIM_FAIL);
	i_free(added);
	added = i_strdup_printf("%.*sCc: x@evil.example\r\n%s",
				(int)(strstr(signed_msg, "From:") - signed_msg),
				signed_msg, strstr(signed_msg, "From:"));
	verify_str(added, &g);
	assert_int_equal(g.r[0], DKIM_FAIL);
	i_free(added);
	/* an unsigned field may be added */
	added = i_strdup_printf("Received: from x by y\r\n%s", signed_msg);
	verify_str(added, &g);
	assert_int_equal(g.r[0], DKIM_PASS);
	i_free(added);
	i_free(signed_msg);
}

static void test_bare_lf(void **state ATTR_UNUSED)
{
	char *signed_msg = our_sign(base_msg, DKIM_ALG_RSA_SHA256, "rsa");
	char *lf = i_strdup(signed_msg);
	char *w = lf;
	struct got g;

	for (const char *r = signed_msg; *r != '\0'; r++) {
		if (*r != '\r')
			*w++ = *r;
	}
	*w = '\0';
	verify_str(lf, &g);
	assert_int_equal(g.r[0], DKIM_PASS);
	i_free(lf);
	i_free(signed_msg);
}

static void test_l_tag(void **state ATTR_UNUSED)
{
	const char *tags_full =
		"v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=rsa; "
		"h=from:to:subject; l=%u";
	size_t body_len = strlen("Hi Bob.\r\n\r\nHow are you?\r\n");
	char *tags, *m, *m2;
	struct got g;

	/* l= covering the whole body: an ordinary pass */
	tags = i_strdup_printf(tags_full, (unsigned int)body_len);
	m = test_sign(base_msg, tags, rsa_key);
	verify_str(m, &g);
	assert_int_equal(g.r[0], DKIM_PASS);
	/* content appended after signing: never pass */
	m2 = i_strdup_printf("%sBuy now!\r\n", m);
	verify_str(m2, &g);
	assert_int_equal(g.r[0], DKIM_POLICY);
	assert_string_equal(g.reason[0], "unsigned content after l=");
	i_free(m2);
	i_free(m);
	i_free(tags);

	/* l= shorter than the body */
	tags = i_strdup_printf(tags_full, 9U);
	m = test_sign(base_msg, tags, rsa_key);
	verify_str(m, &g);
	assert_int_equal(g.r[0], DKIM_POLICY);
	/* the covered part changed: fail */
	char *p = strstr(m, "Hi Bob");
	p[3] = 'R';
	verify_str(m, &g);
	assert_int_equal(g.r[0], DKIM_FAIL);
	i_free(m);
	i_free(tags);

	/* l=0 covers nothing */
	tags = i_strdup_printf(tags_full, 0U);
	m = test_sign(base_msg, tags, rsa_key);
	verify_str(m, &g);
	assert_int_equal(g.r[0], DKIM_POLICY);
	i_free(m);
	i_free(tags);

	/* l= longer than the body: fail */
	tags = i_strdup_printf(tags_full, (unsigned int)body_len + 1);
	m = test_sign(base_msg, tags, rsa_key);
	verify_str(m, &g);
	assert_int_equal(g.r[0], DKIM_FAIL);
	assert_string_equal(g.reason[0], "l= beyond the body");
	i_free(m);
	i_free(tags);
	/* huge and bad values */
	m = test_sign(base_msg,
		      "v=1; a=rsa-sha256; d=example.com; s=rsa; h=from; "
		      "l=123456789012345678901234567890",
		      rsa_key);
	verify_str(m, &g);
	assert_int_equal(g.r[0], DKIM_FAIL);
	i_free(m);
	m = test_sign(base_msg,
		      "v=1; a=rsa-sha256; d=example.com; s=rsa; h=from; l=-1",
		      rsa_key);
	verify_str(m, &g);
	assert_int_equal(g.r[0], DKIM_PERMERROR);
	assert_string_equal(g.reason[0], "bad l=");
	i_free(m);
}

static void test_policy(void **state ATTR_UNUSED)
{
	static const struct {
		const char *tags;
		bool small_key;
		enum dkim_result result;
		const char *reason;
	} cases[] = {
		{ "v=1; a=rsa-sha256; d=example.com; s=rsa; h=from:to", false,
		  DKIM_PASS, "" },
		{ "v=1; a=rsa-sha256; c=simple; d=example.com; s=rsa; h=From",
		  false, DKIM_PASS, "" },
		{ "v=1; a=rsa-sha256; c=relaxed; d=Example.COM; s=rsa; "
		  "h=FROM : subject",
		  false, DKIM_PASS, "" },
		{ "v=1; a=rsa-sha256; d=example.com; s=rsa; h=from; "
		  "i=alice@mail.example.com; q=dns/txt; t=1000; x=99999999999",
		  false, DKIM_PASS, "" },
		{ "v=1; a=rsa-sha1; d=example.com; s=rsa; h=from", false,
		  DKIM_PERMERROR, "rsa-sha1 not accepted" },
		{ "v=1; a=rsa-sha256; d=example.com; s=rsa; h=to:subject",
		  false, DKIM_PERMERROR, "From not signed" },
		{ "v=1; a=rsa-sha256; d=example.com; s=rsa; h=from; "
		  "i=@example.org",
		  false, DKIM_PERMERROR, "i= not within d=" },
		{ "v=1; a=rsa-sha256; d=example.com; s=rsa; h=from; "
		  "i=@badexample.com",
		  false, DKIM_PERMERROR, "i= not within d=" },
		{ "v=1; a=rsa-sha256; d=example.com; s=rsa; h=from; "
		  "t=1000; x=2000",
		  false, DKIM_PERMERROR, "signature expired" },
		{ "v=1; a=rsa-sha256; d=example.com; s=rsa; h=from; "
		  "t=3000; x=2000",
		  false, DKIM_PERMERROR, "x= before t=" },
		{ "v=1; a=rsa-sha256; d=example.com; s=small; h=from", true,
		  DKIM_PERMERROR, "rsa key below 1024 bits" },
		{ "v=1; a=ed25519-sha256; d=example.com; s=rsa; h=from", false,
		  DKIM_PERMERROR, "key type does not match a=" },
		{ "v=1; a=rsa-sha256; d=example.com; s=none; h=from", false,
		  DKIM_PERMERROR, "no key" },
		{ "v=2; a=rsa-sha256; d=example.com; s=rsa; h=from", false,
		  DKIM_PERMERROR, "bad or missing v=" },
		{ "a=rsa-sha256; d=example.com; s=rsa; h=from", false,
		  DKIM_PERMERROR, "bad or missing v=" },
		{ "v=1; a=rsa-sha256; d=example.com; h=from", false,
		  DKIM_PERMERROR, "missing required tag" },
		{ "v=1; a=rsa-sha512; d=example.com; s=rsa; h=from", false,
		  DKIM_PERMERROR, "unknown algorithm" },
		{ "v=1; a=rsa-sha256; c=fancy; d=example.com; s=rsa; h=from",
		  false, DKIM_PERMERROR, "unknown canonicalization" },
		{ "v=1; a=rsa-sha256; d=example.com; s=rsa; h=from; q=http",
		  false, DKIM_PERMERROR, "no usable q= method" },
		{ "v=1; a=rsa-sha256; d=exa mple.com; s=rsa; h=from", false,
		  DKIM_PERMERROR, "bad d= or s=" },
		{ "v=1; a=rsa-sha256; d=example.com; s=rsa; h=from::to", false,
		  DKIM_PERMERROR, "empty name in h=" },
	};
	struct got g;

	for (unsigned int i = 0; i < N_ELEMENTS(cases); i++) {
		char *m =
			test_sign(base_msg, cases[i].tags,
				  cases[i].small_key ? rsa_small_key : rsa_key);

		verify_str(m, &g);
		assert_int_equal(g.count, 1);
		if (g.r[0] != cases[i].result ||
		    strcmp(g.reason[0], cases[i].reason) != 0)
			fail_msg("case %u: %s (%s)", i,
				 dkim_result_name(g.r[0]), g.reason[0]);
		i_free(m);
	}
	/* a tag list that does not parse */
	verify_str("DKIM-Signature: v=1; v=1\r\nFrom: a\r\n\r\n", &g);
	assert_int_equal(g.r[0], DKIM_PERMERROR);
	assert_string_equal(g.reason[0], "duplicate tag");
	assert_string_equal(g.domain[0], "");
	/* a bad signature value */
	char *m = test_sign(
		base_msg, "v=1; a=ed25519-sha256; d=example.com; s=ed; h=from",
		ed_key);
	char *b = strstr(m, " b=") + 3;
	b[5] = b[5] == 'A' ? 'B' : 'A';
	verify_str(m, &g);
	assert_int_equal(g.r[0], DKIM_FAIL);
	assert_string_equal(g.reason[0], "signature mismatch");
	i_free(m);
}

static void test_keys(void **state ATTR_UNUSED)
{
	char *m = test_sign(base_msg,
			    "v=1; a=ed25519-sha256; d=example.com; s=ed; "
			    "h=from; i=a@sub.example.com",
			    ed_key);
	char *testing = dkim_test_key_record(ed_key, " t=y;");
	char *strict = dkim_test_key_record(ed_key, " t=s;");
	struct auth_dns_stub *stub;
	struct got g;

	/* revoked */
	stub = auth_dns_stub_create();
	auth_dns_stub_add_txt(stub, "ed._domainkey.example.com",
			      "v=DKIM1; k=ed25519; p=", 22);
	verify(stub, m, strlen(m), &g);
	assert_int_equal(g.r[0], DKIM_PERMERROR);
	assert_string_equal(g.reason[0], "key revoked");
	auth_dns_stub_destroy(&stub);
	/* t=y: a pass marked testing */
	stub = auth_dns_stub_create();
	auth_dns_stub_add_txt(stub, "ed._domainkey.example.com", testing,
			      strlen(testing));
	verify(stub, m, strlen(m), &g);
	assert_int_equal(g.r[0], DKIM_PASS);
	assert_true(g.testing[0]);
	assert_string_equal(g.identity[0], "a@sub.example.com");
	auth_dns_stub_destroy(&stub);
	/* t=s: i= must not be a subdomain */
	stub = auth_dns_stub_create();
	auth_dns_stub_add_txt(stub, "ed._domainkey.example.com", strict,
			      strlen(strict));
	verify(stub, m, strlen(m), &g);
	assert_int_equal(g.r[0], DKIM_PERMERROR);
	auth_dns_stub_destroy(&stub);
	/* DNS failure: temperror; a bad record first, a good one second */
	stub = auth_dns_stub_create();
	auth_dns_stub_set_status(stub, "ed._domainkey.example.com", 0,
				 DNS_STATUS_TEMPFAIL);
	verify(stub, m, strlen(m), &g);
	assert_int_equal(g.r[0], DKIM_TEMPERROR);
	auth_dns_stub_destroy(&stub);
	stub = auth_dns_stub_create();
	auth_dns_stub_add_txt(stub, "ed._domainkey.example.com", "junk", 4);
	verify(stub, m, strlen(m), &g);
	assert_int_equal(g.r[0], DKIM_PERMERROR);
	auth_dns_stub_add_txt(stub, "ed._domainkey.example.com", ed_record,
			      strlen(ed_record));
	verify(stub, m, strlen(m), &g);
	assert_int_equal(g.r[0], DKIM_PASS);
	auth_dns_stub_destroy(&stub);
	i_free(testing);
	i_free(strict);
	i_free(m);
}

static void test_multiple(void **state ATTR_UNUSED)
{
	char *a = our_sign(base_msg, DKIM_ALG_RSA_SHA256, "rsa");
	char *b = test_sign(
		a, "v=1; a=rsa-sha256; d=other.example; s=x; h=from", rsa_key);
	char *c = test_sign(b, "v=1; a=rsa-sha1; d=example.com; s=rsa; h=from",
			    rsa_key);
	char *d = our_sign(c, DKIM_ALG_ED25519_SHA256, "ed");
	struct got g;

	/* each independently, in field order */
	verify_str(d, &g);
	assert_int_equal(g.count, 4);
	assert_int_equal(g.r[0], DKIM_PASS);
	assert_int_equal(g.r[1], DKIM_PERMERROR);
	assert_string_equal(g.reason[1], "rsa-sha1 not accepted");
	assert_int_equal(g.r[2], DKIM_PERMERROR);
	assert_string_equal(g.reason[2], "no key");
	assert_string_equal(g.domain[2], "other.example");
	assert_int_equal(g.r[3], DKIM_PASS);

	/* too many */
	struct auth_dns_stub *stub = zone();
	memset(&g, 0, sizeof(g));
	struct dkim_verify *v =
		dkim_verify_start(auth_dns_stub_dns(stub), (const uint8_t *)d,
				  strlen(d), 1, got_cb, &g);
	assert_non_null(v);
	auth_dns_stub_run(stub);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.r[0], DKIM_PASS);
	assert_int_equal(g.r[2], DKIM_PERMERROR);
	assert_string_equal(g.reason[2], "too many signatures");
	assert_int_equal(g.r[3], DKIM_PERMERROR);
	assert_int_equal(auth_dns_stub_queries(stub), 1);

	/* cancel: the callback never runs */
	memset(&g, 0, sizeof(g));
	v = dkim_verify_start(auth_dns_stub_dns(stub), (const uint8_t *)d,
			      strlen(d), 0, got_cb, &g);
	assert_non_null(v);
	dkim_verify_cancel(&v);
	assert_null(v);
	dkim_verify_cancel(&v);
	assert_int_equal(auth_dns_stub_run(stub), 0);
	assert_int_equal(g.calls, 0);
	auth_dns_stub_destroy(&stub);

	/* no signature: synchronous, count 0 */
	stub = zone();
	memset(&g, 0, sizeof(g));
	assert_null(dkim_verify_start(auth_dns_stub_dns(stub),
				      (const uint8_t *)base_msg,
				      strlen(base_msg), 0, got_cb, &g));
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.count, 0);
	auth_dns_stub_destroy(&stub);
	i_free(a);
	i_free(b);
	i_free(c);
	i_free(d);
}

static void test_result_names(void **state ATTR_UNUSED)
{
	assert_string_equal(dkim_result_name(DKIM_NONE), "none");
	assert_string_equal(dkim_result_name(DKIM_PASS), "pass");
	assert_string_equal(dkim_result_name(DKIM_FAIL), "fail");
	assert_string_equal(dkim_result_name(DKIM_POLICY), "policy");
	assert_string_equal(dkim_result_name(DKIM_NEUTRAL), "neutral");
	assert_string_equal(dkim_result_name(DKIM_TEMPERROR), "temperror");
	assert_string_equal(dkim_result_name(DKIM_PERMERROR), "permerror");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canon_rfc_example),
		cmocka_unit_test(test_canon_body_edges),
		cmocka_unit_test(test_message_parse),
		cmocka_unit_test(test_tag_list),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_key_records),
		cmocka_unit_test(test_rfc8463_example),
		cmocka_unit_test(test_gmail),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_sign_format),
		cmocka_unit_test(test_oversigning),
		cmocka_unit_test(test_bare_lf),
		cmocka_unit_test(test_l_tag),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_multiple),
		cmocka_unit_test(test_result_names),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
