#ifndef MARMOT_DKIM_H
#define MARMOT_DKIM_H
/* DKIM signatures (RFC 6376) with rsa-sha256 and ed25519-sha256 (RFC
   8463): verification of every DKIM-Signature of a received message, and
   signing split in two halves so that the private key never leaves the
   vault: the front prepares (canonicalizes, hashes the body and the
   header fields), the vault signs a 32-byte digest, the front finishes
   (formats the field). I/O-free: keys come through struct auth_dns.

   Verification policy (documented choices):
   - rsa-sha1 is refused (RFC 8301 3.1): PERMERROR "rsa-sha1 not accepted".
   - RSA keys below 1024 bits are refused (RFC 8301 3.2): PERMERROR.
   - l= (RFC 6376 8.2): a signature whose l= covers less than the whole
     canonicalized body is never reported as pass: it verifies the covered
     part and then reports POLICY (RFC 8601 2.7.1) with reason "unsigned
     content after l=" (FAIL if the covered part does not verify). One
     whose l= covers the whole body is an ordinary PASS.
   - x= in the past: PERMERROR "signature expired"; h= without From:
     PERMERROR; i= not within d=: PERMERROR; key revoked (empty p=):
     PERMERROR "key revoked"; no key record: PERMERROR "no key"; DNS
     failure: TEMPERROR.
   - body hash or signature mismatch: FAIL.
   Each signature is verified independently (RFC 6376 6.1). */

#include "lib.h"
#include "pool.h"
#include "auth-dns.h"

#include <openssl/evp.h>

enum dkim_result {
	DKIM_NONE,
	DKIM_PASS,
	DKIM_FAIL,
	DKIM_POLICY,
	DKIM_NEUTRAL,
	DKIM_TEMPERROR,
	DKIM_PERMERROR,
}; /* RFC 8601 2.7.1 */

enum dkim_algorithm {
	DKIM_ALG_RSA_SHA256,
	DKIM_ALG_ED25519_SHA256,
};

struct dkim_signature_result {
	enum dkim_result result;
	const char *domain; /* d= (lower case); "" when unparsable */
	const char *selector; /* s= */
	const char *identity; /* i= or "@d" */
	const char *algorithm; /* a= as given */
	char b_prefix[16]; /* header.b (RFC 6008): first 8 chars of b= */
	bool testing; /* key t=y */
	const char *reason; /* why not pass, for logs/A-R comment; NULL */
};

struct dkim_verify_result {
	const struct dkim_signature_result *sigs;
	unsigned int count;
};

typedef void dkim_verify_callback_t(void *context,
				    const struct dkim_verify_result *result);

/* Verifies every DKIM-Signature (at most max_signatures, 0 = default 8;
   more are reported as PERMERROR "too many"). msg: the whole message as
   received (CRLF line ends; bare LF is accepted and treated as CRLF). msg
   must stay valid until the callback. The callback runs exactly once
   unless the verification is cancelled first; the result is valid during
   the callback only. When no key lookup is needed (no DKIM-Signature, or
   none that parses) the callback runs from within dkim_verify_start(),
   which then returns NULL; otherwise it runs from an auth_dns callback and
   the returned handle is freed after it returns. */
struct dkim_verify *dkim_verify_start(struct auth_dns *dns, const uint8_t *msg,
				      size_t len, unsigned int max_signatures,
				      dkim_verify_callback_t *cb,
				      void *context);
/* Cancels the lookups; the callback never runs. Safe with NULL. */
void dkim_verify_cancel(struct dkim_verify **v);
const char *dkim_result_name(enum dkim_result r); /* "pass", ... */

/* Signing in two halves: the front prepares (it has the message), the
   vault signs a 32-byte digest (it has the keys), the front finishes. */
struct dkim_sign_params {
	const char *domain, *selector;
	enum dkim_algorithm algorithm;
	int64_t timestamp; /* t=; 0 = none */
};

struct dkim_sign_request {
	uint8_t digest[32]; /* SHA-256 of the canonicalized signed headers
			       plus the signature header with empty b= */
	/* Private state for dkim_sign_finish(), in the prepare pool: the
	   folded field with an empty b= value. */
	const char *field_nob;
};

/* Signs with relaxed/relaxed, the header fields in h= taken from a fixed
   list (From, To, Cc, Subject, Date, Message-ID, Reply-To, In-Reply-To,
   References, MIME-Version, Content-Type, Content-Transfer-Encoding, ...)
   and each listed once more than present, so a field added later breaks
   the signature (RFC 6376 8.15, "oversigning"); From is always listed.
   Returns 0, or -1 (error_r) when the message has no From: or no header
   end. */
int dkim_sign_prepare(pool_t pool, const uint8_t *msg, size_t len,
		      const struct dkim_sign_params *params,
		      struct dkim_sign_request *req_r, const char **error_r);
/* The vault's part: RSA (PKCS#1 v1.5 over SHA-256 DigestInfo) or Ed25519
   (RFC 8463: PureEdDSA over the 32-byte digest). sig_r holds 512 bytes.
   Returns 0, or -1 when the key does not fit alg or is too large. */
int dkim_sign_digest(EVP_PKEY *key, enum dkim_algorithm alg,
		     const uint8_t digest[32], uint8_t *sig_r,
		     size_t *sig_len_r);
/* The full "DKIM-Signature: ...\r\n" field (folded at 78), to prepend. */
const char *dkim_sign_finish(pool_t pool, const struct dkim_sign_request *req,
			     const uint8_t *sig, size_t sig_len);

/* Key generation for `marmot domain add` / `dkim rotate` (RSA: 2048
   bits), and the p= value (base64 of SubjectPublicKeyInfo DER for RSA,
   raw 32 bytes for Ed25519, RFC 8463 4.2) for the DNS record. */
EVP_PKEY *dkim_key_generate(enum dkim_algorithm alg);
/* "v=DKIM1; k=rsa; p=..." / "v=DKIM1; k=ed25519; p=..."; NULL when the
   key does not fit alg. */
const char *dkim_key_dns_record(pool_t pool, EVP_PKEY *key,
				enum dkim_algorithm alg);

#endif
