/* dkim-wrap.c - DKIM private keys sealed under the master key for
   directory.db (layout in dkim-wrap.h). Owns no state. Called by the admin
   CLI (domain add, dkim rotate) to wrap new keys and by the vault to
   unwrap the keys it signs with. Security stance: the plaintext DER only
   lives in buffers wiped before they are freed. */

#include "lib.h"
#include "dkim-wrap.h"

#include <openssl/x509.h>
#include <sodium.h>

#define DKIM_WRAP_MAGIC "MDK1"
#define DKIM_WRAP_MAGIC_LEN 4
#define DKIM_WRAP_KDF_LABEL "marmot/dkim-wrap/v1"
#define DKIM_WRAP_NAME_MAX 512
#define DKIM_WRAP_NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define DKIM_WRAP_TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define DKIM_WRAP_OVERHEAD \
	(DKIM_WRAP_MAGIC_LEN + DKIM_WRAP_NONCE_LEN + DKIM_WRAP_TAG_LEN)

_Static_assert(MASTER_KEY_LEN == crypto_generichash_KEYBYTES,
	       "master key is a BLAKE2b key");

/* prefix || domain || 0x00 || selector into out (bounded by the caller). */
static void dkim_wrap_names(struct buf *out, const char *prefix,
			    const char *domain, const char *selector)
{
	buf_append_str(out, prefix);
	buf_append_str(out, domain);
	buf_append_c(out, 0);
	buf_append_str(out, selector);
}

static bool dkim_wrap_names_ok(const char *domain, const char *selector)
{
	return strnlen(domain, DKIM_WRAP_NAME_MAX) < DKIM_WRAP_NAME_MAX &&
	       strnlen(selector, DKIM_WRAP_NAME_MAX) < DKIM_WRAP_NAME_MAX;
}

/* kek = BLAKE2b-256(key = master key, msg = label || domain || 0 || sel),
   and the associated data. */
static void dkim_wrap_derive(
	const uint8_t master_key[MASTER_KEY_LEN], const char *domain,
	const char *selector,
	uint8_t kek_r[crypto_aead_xchacha20poly1305_ietf_KEYBYTES],
	struct buf *ad_r)
{
	struct buf msg = BUF_INIT;

	dkim_wrap_names(&msg, DKIM_WRAP_KDF_LABEL, domain, selector);
	crypto_generichash(kek_r, crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
			   msg.data, msg.used, master_key, MASTER_KEY_LEN);
	buf_free(&msg);
	dkim_wrap_names(ad_r, DKIM_WRAP_MAGIC, domain, selector);
}

int dkim_wrap_key(const uint8_t master_key[MASTER_KEY_LEN], const char *domain,
		  const char *selector, EVP_PKEY *key, struct buf *out,
		  const char **error_r)
{
	uint8_t kek[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	PKCS8_PRIV_KEY_INFO *p8;
	unsigned char *der = NULL;
	unsigned long long cipher_len;
	struct buf ad = BUF_INIT;
	uint8_t *dest;
	int der_len;

	if (sodium_init() < 0)
		i_panic("sodium_init() failed");
	if (!dkim_wrap_names_ok(domain, selector)) {
		*error_r = "domain or selector too long";
		return -1;
	}
	p8 = EVP_PKEY2PKCS8(key);
	if (p8 != NULL) {
		der_len = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
		PKCS8_PRIV_KEY_INFO_free(p8);
	} else {
		der_len = -1;
	}
	if (der_len <= 0 ||
	    (size_t)der_len + DKIM_WRAP_OVERHEAD > DKIM_WRAP_MAX_LEN) {
		if (der != NULL)
			OPENSSL_clear_free(der, (size_t)der_len);
		*error_r = "cannot encode the private key as PKCS#8";
		return -1;
	}
	dkim_wrap_derive(master_key, domain, selector, kek, &ad);
	dest = buf_reserve(out, (size_t)der_len + DKIM_WRAP_OVERHEAD);
	memcpy(dest, DKIM_WRAP_MAGIC, DKIM_WRAP_MAGIC_LEN);
	randombytes_buf(dest + DKIM_WRAP_MAGIC_LEN, DKIM_WRAP_NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
		dest + DKIM_WRAP_MAGIC_LEN + DKIM_WRAP_NONCE_LEN, &cipher_len,
		der, (size_t)der_len, ad.data, ad.used, NULL,
		dest + DKIM_WRAP_MAGIC_LEN, kek);
	i_assert(cipher_len == (size_t)der_len + DKIM_WRAP_TAG_LEN);
	buf_commit(out, (size_t)der_len + DKIM_WRAP_OVERHEAD);
	OPENSSL_clear_free(der, (size_t)der_len);
	sodium_memzero(kek, sizeof(kek));
	buf_free(&ad);
	return 0;
}

EVP_PKEY *dkim_wrap_unwrap(const uint8_t master_key[MASTER_KEY_LEN],
			   const char *domain, const char *selector,
			   const uint8_t *wrapped, size_t wrapped_len)
{
	uint8_t kek[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	unsigned long long plain_len;
	PKCS8_PRIV_KEY_INFO *p8;
	struct buf ad = BUF_INIT;
	const unsigned char *p;
	EVP_PKEY *key = NULL;
	uint8_t *plain;
	size_t cipher_len;
	int ret;

	if (sodium_init() < 0)
		i_panic("sodium_init() failed");
	if (wrapped_len <= DKIM_WRAP_OVERHEAD ||
	    wrapped_len > DKIM_WRAP_MAX_LEN ||
	    memcmp(wrapped, DKIM_WRAP_MAGIC, DKIM_WRAP_MAGIC_LEN) != 0 ||
	    !dkim_wrap_names_ok(domain, selector))
		return NULL;
	cipher_len = wrapped_len - DKIM_WRAP_MAGIC_LEN - DKIM_WRAP_NONCE_LEN;
	plain = i_malloc(cipher_len);
	dkim_wrap_derive(master_key, domain, selector, kek, &ad);
	ret = crypto_aead_xchacha20poly1305_ietf_decrypt(
		plain, &plain_len, NULL,
		wrapped + DKIM_WRAP_MAGIC_LEN + DKIM_WRAP_NONCE_LEN, cipher_len,
		ad.data, ad.used, wrapped + DKIM_WRAP_MAGIC_LEN, kek);
	sodium_memzero(kek, sizeof(kek));
	buf_free(&ad);
	if (ret == 0 && plain_len <= LONG_MAX) {
		p = plain;
		p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)plain_len);
		/* The whole plaintext is the one structure. */
		if (p8 != NULL && p == plain + plain_len)
			key = EVP_PKCS82PKEY(p8);
		PKCS8_PRIV_KEY_INFO_free(p8);
	}
	sodium_memzero(plain, cipher_len);
	i_free(plain);
	return key;
}
