/* dkim-key.c - the key half of DKIM signing (dkim.h): generating the
   signing keys, formatting their DNS key records (RFC 6376 3.6.1, RFC 8463
   4.2) and signing the 32-byte digest dkim_sign_prepare() computes. Owns
   no state. Called by the admin CLI (`marmot domain add`, `marmot dkim
   generate|rotate`) and by the vault, the only process that holds the
   unwrapped private keys; the front never links a private key. */

#include "lib.h"
#include "dkim.h"

#include <openssl/rsa.h>
#include <openssl/x509.h>

/* RFC 8301 3.2: signers MUST use RSA keys of at least 1024 bits; we make
   2048-bit keys, the size RFC 8301 recommends. */
#define DKIM_KEY_RSA_BITS 2048
/* sig_r in dkim_sign_digest() holds 512 bytes: RSA up to 4096 bits. */
#define DKIM_KEY_SIG_MAX 512
#define DKIM_KEY_ED25519_LEN 32

static bool dkim_key_fits(EVP_PKEY *key, enum dkim_algorithm alg)
{
	switch (alg) {
	case DKIM_ALG_RSA_SHA256:
		return EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA;
	case DKIM_ALG_ED25519_SHA256:
		return EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519;
	}
	return false;
}

/* RSASSA-PKCS1-v1_5 (RFC 8017 8.2) over the DigestInfo of an already
   computed SHA-256 hash: RFC 6376 3.3.1 "rsa-sha256". */
static int dkim_sign_rsa(EVP_PKEY *key, const uint8_t digest[32],
			 uint8_t *sig_r, size_t *sig_len_r)
{
	EVP_PKEY_CTX *ctx;
	size_t len = DKIM_KEY_SIG_MAX;
	int ret = -1;

	if (EVP_PKEY_get_size(key) <= 0 ||
	    EVP_PKEY_get_size(key) > DKIM_KEY_SIG_MAX)
		return -1;
	ctx = EVP_PKEY_CTX_new(key, NULL);
	if (ctx == NULL)
		return -1;
	if (EVP_PKEY_sign_init(ctx) > 0 &&
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0 &&
	    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0 &&
	    EVP_PKEY_sign(ctx, sig_r, &len, digest, 32) > 0) {
		*sig_len_r = len;
		ret = 0;
	}
	EVP_PKEY_CTX_free(ctx);
	return ret;
}

/* RFC 8463 3: "ed25519-sha256" signs the SHA-256 hash itself with
   PureEdDSA Ed25519 (RFC 8032 5.1.6), i.e. the 32 digest bytes are the
   message given to Ed25519. */
static int dkim_sign_ed25519(EVP_PKEY *key, const uint8_t digest[32],
			     uint8_t *sig_r, size_t *sig_len_r)
{
	EVP_MD_CTX *ctx;
	size_t len = DKIM_KEY_SIG_MAX;
	int ret = -1;

	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return -1;
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) > 0 &&
	    EVP_DigestSign(ctx, sig_r, &len, digest, 32) > 0) {
		*sig_len_r = len;
		ret = 0;
	}
	EVP_MD_CTX_free(ctx);
	return ret;
}

int dkim_sign_digest(EVP_PKEY *key, enum dkim_algorithm alg,
		     const uint8_t digest[32], uint8_t *sig_r,
		     size_t *sig_len_r)
{
	if (key == NULL || !dkim_key_fits(key, alg))
		return -1;
	switch (alg) {
	case DKIM_ALG_RSA_SHA256:
		return dkim_sign_rsa(key, digest, sig_r, sig_len_r);
	case DKIM_ALG_ED25519_SHA256:
		return dkim_sign_ed25519(key, digest, sig_r, sig_len_r);
	}
	return -1;
}

EVP_PKEY *dkim_key_generate(enum dkim_algorithm alg)
{
	EVP_PKEY *key = NULL;

	switch (alg) {
	case DKIM_ALG_RSA_SHA256:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
					(size_t)DKIM_KEY_RSA_BITS);
		break;
	case DKIM_ALG_ED25519_SHA256:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	}
	if (key == NULL)
		i_panic("dkim_key_generate(): OpenSSL key generation failed");
	return key;
}

/* Base64 (RFC 6376 2.7, RFC 4648 4) of data, from pool. */
static const char *dkim_key_base64(pool_t pool, const uint8_t *data, size_t len)
{
	char *out = p_malloc(pool, (len + 2) / 3 * 4 + 1);

	(void)EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

const char *dkim_key_dns_record(pool_t pool, EVP_PKEY *key,
				enum dkim_algorithm alg)
{
	uint8_t raw[DKIM_KEY_ED25519_LEN];
	unsigned char *der = NULL;
	size_t raw_len = sizeof(raw);
	const char *p;
	int der_len;

	if (key == NULL || !dkim_key_fits(key, alg))
		return NULL;
	switch (alg) {
	case DKIM_ALG_RSA_SHA256:
		/* RFC 6376 3.6.1 p=: base64 of the ASN.1 DER public key;
		   RFC 6376 3.6.1 and every verifier read it as
		   SubjectPublicKeyInfo (RFC 5280 4.1). */
		der_len = i2d_PUBKEY(key, &der);
		if (der_len <= 0)
			return NULL;
		p = dkim_key_base64(pool, der, (size_t)der_len);
		OPENSSL_free(der);
		return p_strdup_printf(pool, "v=DKIM1; k=rsa; p=%s", p);
	case DKIM_ALG_ED25519_SHA256:
		/* RFC 8463 4.2: p= is the base64 of the raw 32-byte public
		   key, not wrapped in SubjectPublicKeyInfo. */
		if (EVP_PKEY_get_raw_public_key(key, raw, &raw_len) <= 0 ||
		    raw_len != DKIM_KEY_ED25519_LEN)
			return NULL;
		p = dkim_key_base64(pool, raw, raw_len);
		return p_strdup_printf(pool, "v=DKIM1; k=ed25519; p=%s", p);
	}
	return NULL;
}
