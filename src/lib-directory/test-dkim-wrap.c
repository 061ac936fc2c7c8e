/* test-dkim-wrap.c - unit tests for dkim-wrap.c: an Ed25519 and an RSA key
   round-trip; the blob opens only with the same master key, domain and
   selector; a flipped byte, a truncated blob or a wrong magic does not
   open; and the stored blob is not a key any parser recognises (nothing
   of the DER is in it in the clear). */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "dkim-wrap.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

static void test_master(uint8_t master[MASTER_KEY_LEN], uint8_t seed)
{
	for (size_t i = 0; i < MASTER_KEY_LEN; i++)
		master[i] = (uint8_t)(i * 13 + seed);
}

static void der_of(EVP_PKEY *key, struct buf *out)
{
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
	unsigned char *der = NULL;
	int len;

	assert_non_null(p8);
	len = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
	assert_true(len > 0);
	buf_append(out, der, (size_t)len);
	OPENSSL_free(der);
	PKCS8_PRIV_KEY_INFO_free(p8);
}

/* No DER parser takes the blob for a key, and no 16-byte run of the
   plaintext DER appears in it. */
static void assert_opaque(const struct buf *blob, const struct buf *der)
{
	const unsigned char *p = blob->data;
	EVP_PKEY *parsed;
	BIO *bio;

	parsed = d2i_AutoPrivateKey(NULL, &p, (long)blob->used);
	assert_null(parsed);
	p = blob->data;
	assert_null(d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)blob->used));
	bio = BIO_new_mem_buf(blob->data, (int)blob->used);
	assert_null(PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL));
	BIO_free(bio);
	for (size_t i = 0; i + 16 <= der->used; i += 16) {
		assert_null(memmem(blob->data, blob->used, der->data + i, 16));
	}
}

static void round_trip(const char *type, const char *selector)
{
	uint8_t master[MASTER_KEY_LEN], other[MASTER_KEY_LEN];
	struct buf blob = BUF_INIT, der = BUF_INIT, der2 = BUF_INIT;
	const char *error = NULL;
	EVP_PKEY *key, *back;
	char shifted[64];

	test_master(master, 1);
	test_master(other, 2);
	key = strcmp(type, "RSA") == 0
		      ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
		      : EVP_PKEY_Q_keygen(NULL, NULL, type);
	assert_non_null(key);
	assert_int_equal(dkim_wrap_key(master, "example.org", selector, key,
				       &blob, &error),
			 0);
	der_of(key, &der);
	assert_opaque(&blob, &der);
	assert_memory_equal(blob.data, "MDK1", 4);

	back = dkim_wrap_unwrap(master, "example.org", selector, blob.data,
				blob.used);
	assert_non_null(back);
	assert_int_equal(EVP_PKEY_eq(key, back), 1);
	der_of(back, &der2);
	assert_int_equal(der.used, der2.used);
	assert_memory_equal(der.data, der2.data, der.used);
	EVP_PKEY_free(back);

	/* Another master key, domain or selector: does not open. */
	assert_null(dkim_wrap_unwrap(other, "example.org", selector, blob.data,
				     blob.used));
	assert_null(dkim_wrap_unwrap(master, "example.net", selector, blob.data,
				     blob.used));
	assert_null(dkim_wrap_unwrap(master, "example.org", "other", blob.data,
				     blob.used));
	/* The separator: ("example.or", "g" + selector) is another key. */
	snprintf(shifted, sizeof(shifted), "g%s", selector);
	assert_null(dkim_wrap_unwrap(master, "example.or", shifted, blob.data,
				     blob.used));
	/* Damage anywhere, truncation, a wrong magic. */
	for (size_t i = 0; i < blob.used; i += 97) {
		blob.data[i] ^= 0x40;
		assert_null(dkim_wrap_unwrap(master, "example.org", selector,
					     blob.data, blob.used));
		blob.data[i] ^= 0x40;
	}
	assert_null(dkim_wrap_unwrap(master, "example.org", selector, blob.data,
				     blob.used - 1));
	assert_null(dkim_wrap_unwrap(master, "example.org", selector, blob.data,
				     10));
	assert_null(dkim_wrap_unwrap(master, "example.org", selector, blob.data,
				     0));
	EVP_PKEY_free(key);
	buf_free(&blob);
	buf_free_secure(&der);
	buf_free_secure(&der2);
}

static void test_ed25519(void **state)
{
	round_trip("ED25519", "marmot-ed-202601");
}

static void test_rsa(void **state)
{
	round_trip("RSA", "marmot-rsa-202601");
}

/* Two wraps of one key differ (random nonce) and both open. */
static void test_nonce(void **state)
{
	uint8_t master[MASTER_KEY_LEN];
	struct buf a = BUF_INIT, b = BUF_INIT;
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), *k;
	const char *error = NULL;

	test_master(master, 3);
	assert_int_equal(
		dkim_wrap_key(master, "d.example", "s", key, &a, &error), 0);
	assert_int_equal(
		dkim_wrap_key(master, "d.example", "s", key, &b, &error), 0);
	assert_int_equal(a.used, b.used);
	assert_memory_not_equal(a.data, b.data, a.used);
	k = dkim_wrap_unwrap(master, "d.example", "s", b.data, b.used);
	assert_non_null(k);
	EVP_PKEY_free(k);
	EVP_PKEY_free(key);
	buf_free(&a);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ed25519),
		cmocka_unit_test(test_rsa),
		cmocka_unit_test(test_nonce),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
