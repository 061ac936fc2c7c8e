/* fuzz-dkim.c - libFuzzer target for DKIM and ARC (dkim-canon.c,
   dkim-verify.c, dkim-sign.c, arc.c). The input is a key record (up to the
   first LF) and a message (the rest). The record goes through dkim_key_parse()
   and is published as a._domainkey.example.com in the DNS stub, beside the RFC
   8463 keys of football.example.com; the message is canonicalized both
   ways (canonical forms must be fixed points), verified on the stub, and
   signed with the RFC 8032 test key: when dkim_sign_prepare() accepts it,
   the signed message must verify (pass) with the RFC 8463 key record.
   ARC likewise: the message's chain is validated, and when it can be
   sealed (cv from that validation), the sealed message must validate
   (pass, one more instance) unless the seal says cv=fail.
   Replayed over tests/fuzz-corpus/fuzz-dkim by tests/fuzz-replay.c. */

#include "arc.h"
#include "dkim-private.h"
#include "dkim-test-sign.h"
#include "auth-dns-stub.h"

#include <stdlib.h>

#define FUZZ_INPUT_MAX 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* RFC 8032 7.1 test 1, the key of RFC 8463 A.2 */
static const uint8_t ed_seed[32] = {
	0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a,
	0xf4, 0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32,
	0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
};
static const char ed_record[] =
	"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
static const char rsa_record[] =
	"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiG"
	"s5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDf"
	"zwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip"
	"3G+2kryOTIKT+l/K4w3QIDAQAB";

struct fuzz_seen {
	unsigned int calls, count;
	enum dkim_result first;
};

static void fuzz_cb(void *context, const struct dkim_verify_result *r)
{
	struct fuzz_seen *seen = context;

	seen->calls++;
	seen->count = r->count;
	seen->first = r->count > 0 ? r->sigs[0].result : DKIM_NONE;
	for (unsigned int i = 0; i < r->count; i++) {
		if (r->sigs[i].domain == NULL || r->sigs[i].selector == NULL)
			abort();
		if (r->sigs[i].result != DKIM_PASS && r->sigs[i].reason == NULL)
			abort();
		(void)strlen(dkim_result_name(r->sigs[i].result));
	}
}

static void fuzz_verify(struct auth_dns_stub *stub, const uint8_t *msg,
			size_t len, struct fuzz_seen *seen)
{
	struct dkim_verify *v;

	memset(seen, 0, sizeof(*seen));
	v = dkim_verify_start(auth_dns_stub_dns(stub), msg, len, 0, fuzz_cb,
			      seen);
	if (v != NULL)
		auth_dns_stub_run(stub);
	if (seen->calls != 1)
		abort();
}

struct fuzz_arc_seen {
	unsigned int calls, instances;
	enum arc_chain cv;
};

static void fuzz_arc_cb(void *context, const struct arc_verify_result *r)
{
	struct fuzz_arc_seen *seen = context;

	seen->calls++;
	seen->cv = r->cv;
	seen->instances = r->instances;
	if ((r->cv == ARC_CHAIN_FAIL) != (r->reason != NULL))
		abort();
}

static void fuzz_arc_verify(struct auth_dns_stub *stub, const uint8_t *msg,
			    size_t len, struct fuzz_arc_seen *seen)
{
	struct arc_verify *v;

	memset(seen, 0, sizeof(*seen));
	v = arc_verify_start(auth_dns_stub_dns(stub), msg, len, fuzz_arc_cb,
			     seen);
	if (v != NULL)
		auth_dns_stub_run(stub);
	if (seen->calls != 1)
		abort();
}

static EVP_PKEY *fuzz_key(void)
{
	EVP_PKEY *ed = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
						    ed_seed, sizeof(ed_seed));

	if (ed == NULL)
		abort();
	return ed;
}

static void fuzz_sign(EVP_PKEY *key, const uint8_t digest[32], uint8_t *sig,
		      size_t *sig_len)
{
	if (dkim_test_sign_digest(key, digest, sig, sig_len) < 0)
		abort();
}

/* Seals msg with the chain status the validator gave; the result must
   validate unless the new seal records a failure. */
static void fuzz_arc(pool_t pool, struct auth_dns_stub *stub, struct span msg)
{
	struct fuzz_arc_seen seen, again;
	struct arc_seal_request req;
	uint8_t sig[DKIM_SIG_MAX];
	size_t sig_len;
	const char *error;
	int ret;

	fuzz_arc_verify(stub, msg.p, msg.len, &seen);
	struct arc_seal_params params = {
		.domain = "football.example.com",
		.selector = "brisbane",
		.algorithm = DKIM_ALG_ED25519_SHA256,
		.authserv_id = "mx.example.com",
		.results = "spf=pass smtp.mailfrom=example.com; arc=pass",
		.cv = seen.cv,
	};
	ret = arc_seal_prepare_ams(pool, msg.p, msg.len, &params, &req, &error);
	if (ret <= 0) {
		if (error == NULL)
			abort();
		return;
	}
	EVP_PKEY *key = fuzz_key();
	fuzz_sign(key, req.digest, sig, &sig_len);
	if (arc_seal_prepare_as(&req, sig, sig_len, &error) < 0)
		abort();
	fuzz_sign(key, req.digest, sig, &sig_len);
	EVP_PKEY_free(key);
	const char *fields = arc_seal_finish(pool, &req, sig, sig_len);
	size_t flen = strlen(fields);
	uint8_t *sealed = p_malloc(pool, flen + msg.len + 1);

	memcpy(sealed, fields, flen);
	memcpy(sealed + flen, msg.p, msg.len);
	fuzz_arc_verify(stub, sealed, flen + msg.len, &again);
	if (seen.cv != ARC_CHAIN_FAIL &&
	    (again.cv != ARC_CHAIN_PASS ||
	     again.instances != seen.instances + 1))
		abort();
	if (seen.cv == ARC_CHAIN_FAIL && again.cv != ARC_CHAIN_FAIL)
		abort();
}

static void fuzz_canon_fixed_point(struct span text, bool body)
{
	for (int c = DKIM_CANON_SIMPLE; c <= DKIM_CANON_RELAXED; c++) {
		struct buf once = BUF_INIT, twice = BUF_INIT;

		if (body) {
			dkim_canon_body(&once, (enum dkim_canon)c, text);
			dkim_canon_body(&twice, (enum dkim_canon)c,
					buf_span(&once));
		} else {
			dkim_canon_header(&once, (enum dkim_canon)c, text);
			dkim_canon_header(&twice, (enum dkim_canon)c,
					  buf_span(&once));
		}
		if (!span_eq(buf_span(&once), buf_span(&twice)))
			abort();
		buf_free(&once);
		buf_free(&twice);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct span in = span_make(data, size), record, msg;
	struct auth_dns_stub *stub;
	struct dkim_key key;
	struct dkim_message m;
	struct fuzz_seen seen;
	const char *error;
	pool_t pool;

	if (size > FUZZ_INPUT_MAX)
		return 0;
	if (!span_split(in, '\n', &record, &msg))
		msg = SPAN_EMPTY;
	if (dkim_key_parse(record, &key, &error) == 0) {
		if (key.revoked != (key.pkey == NULL))
			abort();
		EVP_PKEY_free(key.pkey);
	} else if (error == NULL) {
		abort();
	}

	pool = pool_create("fuzz dkim", 4096);
	dkim_message_parse(pool, msg.p, msg.len, &m);
	fuzz_canon_fixed_point(m.body, true);
	for (unsigned int i = 0; i < m.field_count && i < 16; i++) {
		/* simple header canonicalization is the identity; relaxed
		   output has no CRLF left, so it is a fixed point only
		   when the field has a colon */
		if (span_find_byte(m.fields[i].raw, ':') >= 0)
			fuzz_canon_fixed_point(m.fields[i].raw, false);
	}

	stub = auth_dns_stub_create();
	auth_dns_stub_add_txt(stub, "a._domainkey.example.com",
			      (const char *)record.p, record.len);
	auth_dns_stub_add_txt(stub, "brisbane._domainkey.football.example.com",
			      ed_record, strlen(ed_record));
	auth_dns_stub_add_txt(stub, "test._domainkey.football.example.com",
			      rsa_record, strlen(rsa_record));
	fuzz_verify(stub, msg.p, msg.len, &seen);

	/* sign, then the signature must verify */
	struct dkim_sign_params params = {
		.domain = "football.example.com",
		.selector = "brisbane",
		.algorithm = DKIM_ALG_ED25519_SHA256,
		.timestamp = 1528637909,
	};
	struct dkim_sign_request req;
	if (dkim_sign_prepare(pool, msg.p, msg.len, &params, &req, &error) ==
	    0) {
		EVP_PKEY *ed = fuzz_key();
		uint8_t sig[DKIM_SIG_MAX];
		size_t sig_len;

		fuzz_sign(ed, req.digest, sig, &sig_len);
		EVP_PKEY_free(ed);
		const char *field = dkim_sign_finish(pool, &req, sig, sig_len);
		size_t flen = strlen(field);
		uint8_t *signed_msg = p_malloc(pool, flen + msg.len + 1);

		memcpy(signed_msg, field, flen);
		memcpy(signed_msg + flen, msg.p, msg.len);
		fuzz_verify(stub, signed_msg, flen + msg.len, &seen);
		if (seen.count == 0 || seen.first != DKIM_PASS)
			abort();
	} else if (error == NULL) {
		abort();
	}
	fuzz_arc(pool, stub, msg);
	auth_dns_stub_destroy(&stub);
	pool_unref(&pool);
	return 0;
}
