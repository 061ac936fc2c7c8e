#ifndef MARMOT_DKIM_TEST_SIGN_H
#define MARMOT_DKIM_TEST_SIGN_H
/* A signer for test-dkim, test-arc and fuzz-dkim, with OpenSSL and
   independent of dkim_sign_digest() (dkim-key.c): RSA PKCS#1 v1.5 over
   the SHA-256 DigestInfo, or Ed25519 over the 32-byte digest (RFC 8463
   3). sig_r holds 512 bytes. Returns 0, or -1 when the key cannot sign. */

#include "lib.h"

#include <openssl/evp.h>

int dkim_test_sign_digest(EVP_PKEY *key, const uint8_t digest[32],
			  uint8_t *sig_r, size_t *sig_len_r);

/* "v=DKIM1; k=rsa|ed25519;<extra> p=..." for key (malloc'd); NULL for
   other key types. extra: more tags, e.g. " t=y;". */
char *dkim_test_key_record(EVP_PKEY *key, const char *extra);

#endif
