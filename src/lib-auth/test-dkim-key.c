/* test-dkim-key.c - unit tests for dkim-key.c: generated keys have the
   algorithm and size asked for; dkim_sign_digest() signatures verify with
   OpenSSL (RSA: the recovered block is the SHA-256 DigestInfo of the
   digest, RFC 8017 9.2; Ed25519: PureEdDSA over the 32 digest bytes, RFC
   8463 3) and with libsodium; a key that does not fit the algorithm is
   refused; DNS records: RSA p= is SubjectPublicKeyInfo, Ed25519 p= the
   raw 32 bytes (RFC 8463 4.2, checked against the key of RFC 8463 A.2). */

#include "lib.h"
#include "dkim.h"

#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sodium.h>

#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static EVP_PKEY *rsa_key, *ed_key;

static int setup(void **state)
{
	(void)state;
	rsa_key = dkim_key_generate(DKIM_ALG_RSA_SHA256);
	ed_key = dkim_key_generate(DKIM_ALG_ED25519_SHA256);
	return sodium_init() < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(ed_key);
	return 0;
}

static void digest_of(const char *text, uint8_t digest[32])
{
	unsigned int len = 32;

	assert_int_equal(EVP_Digest(text, strlen(text), digest, &len,
				    EVP_sha256(), NULL),
			 1);
}

/* p= of record, base64-decoded into out (at most max bytes). */
static size_t record_p(const char *record, const char *prefix, uint8_t *out,
		       size_t max)
{
	const char *p;
	size_t len;

	assert_int_equal(strncmp(record, prefix, strlen(prefix)), 0);
	p = record + strlen(prefix);
	assert_int_equal(sodium_base642bin(out, max, p, strlen(p), NULL, &len,
					   NULL,
					   sodium_base64_VARIANT_ORIGINAL),
			 0);
	return len;
}

static void test_generate(void **state)
{
	(void)state;
	assert_int_equal(EVP_PKEY_get_base_id(rsa_key), EVP_PKEY_RSA);
	assert_int_equal(EVP_PKEY_get_bits(rsa_key), 2048);
	assert_int_equal(EVP_PKEY_get_base_id(ed_key), EVP_PKEY_ED25519);

	/* Two generations give two different keys. */
	EVP_PKEY *other = dkim_key_generate(DKIM_ALG_ED25519_SHA256);
	assert_int_equal(EVP_PKEY_eq(other, ed_key), 0);
	EVP_PKEY_free(other);
}

static void test_sign_rsa(void **state)
{
	static const uint8_t sha256_digestinfo[] = {
		0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
		0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
	};
	uint8_t digest[32], sig[512], recovered[512];
	size_t sig_len = 0, rec_len = sizeof(recovered);
	EVP_PKEY_CTX *ctx;

	(void)state;
	digest_of("the canonicalized header fields", digest);
	assert_int_equal(dkim_sign_digest(rsa_key, DKIM_ALG_RSA_SHA256, digest,
					  sig, &sig_len),
			 0);
	assert_int_equal(sig_len, 256);

	/* OpenSSL verifies it as RSASSA-PKCS1-v1_5 with SHA-256. */
	ctx = EVP_PKEY_CTX_new(rsa_key, NULL);
	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING),
			 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_verify(ctx, sig, sig_len, digest, 32), 1);
	digest[0] ^= 1;
	assert_int_not_equal(EVP_PKEY_verify(ctx, sig, sig_len, digest, 32), 1);
	digest[0] ^= 1;
	EVP_PKEY_CTX_free(ctx);

	/* RFC 8017 9.2: the signed block is DigestInfo(SHA-256) || digest. */
	ctx = EVP_PKEY_CTX_new(rsa_key, NULL);
	assert_int_equal(EVP_PKEY_verify_recover_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING),
			 1);
	assert_int_equal(
		EVP_PKEY_verify_recover(ctx, recovered, &rec_len, sig, sig_len),
		1);
	EVP_PKEY_CTX_free(ctx);
	assert_int_equal(rec_len, sizeof(sha256_digestinfo) + 32);
	assert_memory_equal(recovered, sha256_digestinfo,
			    sizeof(sha256_digestinfo));
	assert_memory_equal(recovered + sizeof(sha256_digestinfo), digest, 32);
}

static void test_sign_ed25519(void **state)
{
	uint8_t digest[32], sig[512], pub[32];
	size_t sig_len = 0, pub_len = sizeof(pub);
	EVP_MD_CTX *ctx;

	(void)state;
	digest_of("the canonicalized header fields", digest);
	assert_int_equal(dkim_sign_digest(ed_key, DKIM_ALG_ED25519_SHA256,
					  digest, sig, &sig_len),
			 0);
	assert_int_equal(sig_len, 64);

	ctx = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, ed_key),
			 1);
	assert_int_equal(EVP_DigestVerify(ctx, sig, sig_len, digest, 32), 1);
	EVP_MD_CTX_free(ctx);

	/* RFC 8463 3: PureEdDSA over the 32 digest bytes, not over their
	   hash: libsodium's plain Ed25519 verifies it too. */
	assert_int_equal(EVP_PKEY_get_raw_public_key(ed_key, pub, &pub_len), 1);
	assert_int_equal(crypto_sign_verify_detached(sig, digest, 32, pub), 0);
	digest[31] ^= 0x80;
	assert_int_not_equal(crypto_sign_verify_detached(sig, digest, 32, pub),
			     0);
}

static void test_sign_wrong_alg(void **state)
{
	uint8_t digest[32] = { 0 }, sig[512];
	size_t sig_len = 0;

	(void)state;
	assert_int_equal(dkim_sign_digest(rsa_key, DKIM_ALG_ED25519_SHA256,
					  digest, sig, &sig_len),
			 -1);
	assert_int_equal(dkim_sign_digest(ed_key, DKIM_ALG_RSA_SHA256, digest,
					  sig, &sig_len),
			 -1);
	assert_int_equal(dkim_sign_digest(NULL, DKIM_ALG_RSA_SHA256, digest,
					  sig, &sig_len),
			 -1);
	assert_int_equal(sig_len, 0);
}

/* An RSA key whose signature does not fit in 512 bytes is refused. */
static void test_sign_rsa_too_large(void **state)
{
	uint8_t digest[32] = { 0 }, sig[512];
	size_t sig_len = 0;
	EVP_PKEY *big;

	(void)state;
	big = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4104);
	assert_non_null(big);
	assert_int_equal(dkim_sign_digest(big, DKIM_ALG_RSA_SHA256, digest, sig,
					  &sig_len),
			 -1);
	EVP_PKEY_free(big);
}

static void test_record_rsa(void **state)
{
	pool_t pool = pool_create("test", 1024);
	const unsigned char *p;
	uint8_t der[1024];
	const char *rec;
	EVP_PKEY *pub;
	size_t len;

	(void)state;
	rec = dkim_key_dns_record(pool, rsa_key, DKIM_ALG_RSA_SHA256);
	assert_non_null(rec);
	len = record_p(rec, "v=DKIM1; k=rsa; p=", der, sizeof(der));
	/* RFC 6376 3.6.1: a 2048-bit SubjectPublicKeyInfo is 294 bytes. */
	assert_int_equal(len, 294);
	p = der;
	pub = d2i_PUBKEY(NULL, &p, (long)len);
	assert_non_null(pub);
	assert_ptr_equal(p, der + len);
	assert_int_equal(EVP_PKEY_eq(pub, rsa_key), 1);
	EVP_PKEY_free(pub);

	assert_null(
		dkim_key_dns_record(pool, rsa_key, DKIM_ALG_ED25519_SHA256));
	assert_null(dkim_key_dns_record(pool, NULL, DKIM_ALG_RSA_SHA256));
	pool_unref(&pool);
}

static void test_record_ed25519(void **state)
{
	uint8_t raw[64], pub[32];
	size_t pub_len = sizeof(pub);
	pool_t pool = pool_create("test", 1024);
	const char *rec;

	(void)state;
	rec = dkim_key_dns_record(pool, ed_key, DKIM_ALG_ED25519_SHA256);
	assert_non_null(rec);
	assert_int_equal(
		record_p(rec, "v=DKIM1; k=ed25519; p=", raw, sizeof(raw)), 32);
	assert_int_equal(EVP_PKEY_get_raw_public_key(ed_key, pub, &pub_len), 1);
	assert_memory_equal(raw, pub, 32);
	assert_null(dkim_key_dns_record(pool, ed_key, DKIM_ALG_RSA_SHA256));
	pool_unref(&pool);
}

/* RFC 8463 A.2: the example private key and its published record. */
static void test_record_rfc8463(void **state)
{
	static const char priv_b64[] =
		"nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
	uint8_t priv[32], digest[32], sig[512];
	size_t len, sig_len;
	pool_t pool = pool_create("test", 1024);
	EVP_PKEY *key;

	(void)state;
	assert_int_equal(sodium_base642bin(priv, sizeof(priv), priv_b64,
					   strlen(priv_b64), NULL, &len, NULL,
					   sodium_base64_VARIANT_ORIGINAL),
			 0);
	key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv, len);
	assert_non_null(key);
	assert_string_equal(
		dkim_key_dns_record(pool, key, DKIM_ALG_ED25519_SHA256),
		"v=DKIM1; k=ed25519; "
		"p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
	/* Ed25519 is deterministic (RFC 8032 5.1.6): same digest, same
	   signature. */
	digest_of("x", digest);
	assert_int_equal(dkim_sign_digest(key, DKIM_ALG_ED25519_SHA256, digest,
					  sig, &sig_len),
			 0);
	uint8_t sig2[512];
	size_t sig2_len;
	assert_int_equal(dkim_sign_digest(key, DKIM_ALG_ED25519_SHA256, digest,
					  sig2, &sig2_len),
			 0);
	assert_int_equal(sig_len, sig2_len);
	assert_memory_equal(sig, sig2, sig_len);
	EVP_PKEY_free(key);
	pool_unref(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generate),
		cmocka_unit_test(test_sign_rsa),
		cmocka_unit_test(test_sign_ed25519),
		cmocka_unit_test(test_sign_wrong_alg),
		cmocka_unit_test(test_sign_rsa_too_large),
		cmocka_unit_test(test_record_rsa),
		cmocka_unit_test(test_record_ed25519),
		cmocka_unit_test(test_record_rfc8463),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
