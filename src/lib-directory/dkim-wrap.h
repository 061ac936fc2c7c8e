#ifndef MARMOT_DKIM_WRAP_H
#define MARMOT_DKIM_WRAP_H
/* DKIM private keys at rest (ARCHITECTURE.md 2: the vault holds the DKIM
   keys; directory.db holds them only wrapped). A key is stored as its
   PKCS#8 DER encoding sealed under a key derived from the master key and
   bound to its domain and selector:

     kek     = BLAKE2b-256(key = master key,
			   msg = "marmot/dkim-wrap/v1" || domain || 0x00 ||
				 selector)
     wrapped = "MDK1" || nonce(24) ||
	       XChaCha20-Poly1305(kek, nonce, PKCS#8 DER,
				  ad = "MDK1" || domain || 0x00 || selector)

   domain is the normalised (lower-case) domain. The NUL separates domain
   from selector, so ("ab", "c") and ("a", "bc") get different keys; the
   associated data means a blob copied to another row does not open.
   Only the vault and the admin CLI (as the operator, with master.key)
   call these; the front never sees a wrapped or an unwrapped key. */

#include "lib.h"
#include "account-keys.h"
#include "buf.h"

#include <openssl/evp.h>

/* Longest wrapped key accepted (an RSA-4096 PKCS#8 is about 2.4 KB). */
#define DKIM_WRAP_MAX_LEN 8192

/* Appends the wrapped key to out. Returns 0, or -1 if the key cannot be
   encoded (error_r: static text). */
int dkim_wrap_key(const uint8_t master_key[MASTER_KEY_LEN], const char *domain,
		  const char *selector, EVP_PKEY *key, struct buf *out,
		  const char **error_r);
/* Returns the key (the caller frees it with EVP_PKEY_free), or NULL if
   the blob was not made for this master key, domain and selector, is
   damaged, or does not hold a private key. */
EVP_PKEY *dkim_wrap_unwrap(const uint8_t master_key[MASTER_KEY_LEN],
			   const char *domain, const char *selector,
			   const uint8_t *wrapped, size_t wrapped_len);

#endif
