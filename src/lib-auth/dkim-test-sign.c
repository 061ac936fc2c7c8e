/* dkim-test-sign.c - the OpenSSL signer of dkim-test-sign.h, for tests and
   the test tool only (never linked into a daemon). */

#include "dkim-test-sign.h"

#include "dkim-private.h"

#include <openssl/rsa.h>
#include <openssl/x509.h>

#define DKIM_TEST_SIG_MAX 512

int dkim_test_sign_digest(EVP_PKEY *key, const uint8_t digest[32],
			  uint8_t *sig_r, size_t *sig_len_r)
{
	EVP_PKEY_CTX *ctx;
	int ret = -1;

	if (EVP_PKEY_get_size(key) > DKIM_TEST_SIG_MAX)
		return -1;
	*sig_len_r = DKIM_TEST_SIG_MAX;
	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();

		if (md != NULL &&
		    EVP_DigestSignInit(md, NULL, NULL, NULL, key) == 1 &&
		    EVP_DigestSign(md, sig_r, sig_len_r, digest, 32) == 1)
			ret = 0;
		EVP_MD_CTX_free(md);
		return ret;
	}
	if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
		return -1;
	ctx = EVP_PKEY_CTX_new(key, NULL);
	if (ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
	    EVP_PKEY_sign(ctx, sig_r, sig_len_r, digest, 32) == 1)
		ret = 0;
	EVP_PKEY_CTX_free(ctx);
	return ret;
}

char *dkim_test_key_record(EVP_PKEY *key, const char *extra)
{
	struct buf b = BUF_INIT;
	unsigned char der[4096], *p = der;
	size_t len = sizeof(der);
	char *out;
	int n;

	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519) {
		/* RFC 8463 4.2: the raw public key */
		if (EVP_PKEY_get_raw_public_key(key, der, &len) != 1)
			return NULL;
		buf_printf(&b, "v=DKIM1; k=ed25519;%s p=", extra);
	} else if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
		n = i2d_PUBKEY(key, NULL);
		if (n <= 0 || (size_t)n > sizeof(der))
			return NULL;
		len = (size_t)i2d_PUBKEY(key, &p);
		buf_printf(&b, "v=DKIM1; k=rsa;%s p=", extra);
	} else {
		return NULL;
	}
	dkim_base64_encode(&b, der, len);
	out = i_strdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}
