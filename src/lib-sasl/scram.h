#ifndef MARMOT_SCRAM_H
#define MARMOT_SCRAM_H
/* SCRAM-SHA-256 (RFC 5802, RFC 7677) without I/O: parsing and building
   the four messages, the key derivation, and the proof check. The vault
   (vault-scram.c) is the server, the directory computes the stored
   secrets with it, and the tests play the client.

   Messages (RFC 5802 7), as the server sees them:
     client-first  = gs2-header client-first-message-bare
       gs2-header  = gs2-cbind-flag "," [ "a=" saslname ] ","
       bare        = [reserved-mext ","] "n=" saslname ",r=" c-nonce
		     ["," extensions]
     server-first  = "r=" c-nonce s-nonce ",s=" base64(salt) ",i=" count
     client-final  = "c=" base64(gs2-header) ",r=" nonce ["," extensions]
		     ",p=" base64(ClientProof)
     server-final  = "v=" base64(ServerSignature)   (or "e=" error)

   We offer no channel binding (no SCRAM-SHA-256-PLUS), so a client-first
   with gs2-cbind-flag "p=" is refused; "n" and "y" are accepted (RFC 5802
   6: "y" says the client could bind but thinks we cannot, which is true).

   SECURITY: every input is hostile; parsers bound lengths, reject NULs,
   and never read past the span. Comparisons of keys and proofs are
   constant-time. */

#include "lib.h"
#include "span.h"

struct pool;

#define SCRAM_KEY_LEN 32 /* SHA-256 output */
/* RFC 7677 4: the iteration count SHOULD be at least 4096. */
#define SCRAM_MIN_ITERATIONS 4096
#define SCRAM_DEFAULT_ITERATIONS 4096
/* Ours never exceed this; a larger stored count is a damaged row. */
#define SCRAM_MAX_ITERATIONS 10000000
#define SCRAM_SALT_LEN 16
/* Server nonce: random bytes, sent as base64. */
#define SCRAM_SERVER_NONCE_BYTES 18
/* A message longer than this is refused (ours are far shorter). */
#define SCRAM_MAX_MESSAGE 2048
/* Longest username (decoded saslname). */
#define SCRAM_MAX_USERNAME 320

/* The stored secrets of one password (RFC 5802 3). */
struct scram_secret {
	uint8_t stored_key[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
};

struct scram_client_first {
	char cbind_flag; /* 'n' or 'y' */
	/* Decoded saslnames, allocated from the pool given to the parser;
	   authzid is NULL when absent. */
	const char *authzid;
	const char *username;
	/* Views into the parsed message. */
	struct span gs2_header; /* "n,," including its last comma */
	struct span bare; /* client-first-message-bare */
	struct span client_nonce;
};

struct scram_client_final {
	/* Views into the parsed message. */
	struct span channel_binding; /* the base64 after "c=" */
	struct span nonce; /* the whole nonce after "r=" */
	struct span without_proof; /* client-final-message-without-proof */
	uint8_t proof[SCRAM_KEY_LEN];
};

/* Parses a client-first-message (RFC 5802 7). Returns 0, or -1 with
   *error_r set to an RFC 5802 7 server-error-value ("invalid-encoding",
   "invalid-username-encoding", "channel-binding-not-supported",
   "extensions-not-supported", "other-error"). */
int scram_parse_client_first(struct pool *pool, struct span msg,
			     struct scram_client_first *first_r,
			     const char **error_r);
/* The same check without allocating: for the front, which relays the
   message to the vault. Returns 0 or -1. */
int scram_client_first_check(struct span msg);
/* Parses a client-final-message. Returns 0, or -1 with *error_r set like
   scram_parse_client_first(). Does not check c= or r= against the
   exchange: scram_client_final_check() does. */
int scram_parse_client_final(struct span msg,
			     struct scram_client_final *final_r,
			     const char **error_r);
/* RFC 5802 5.1: c= must carry the client-first's gs2-header (no
   channel-binding data: we offer none) and r= the nonce the server sent
   (client nonce + server nonce). Returns 0, or -1 with *error_r set
   ("channel-bindings-dont-match", "other-error"). */
int scram_client_final_check(const struct scram_client_first *first,
			     const struct scram_client_final *final,
			     struct span server_first_nonce,
			     const char **error_r);

/* Appends "r=<client nonce><server nonce>,s=<base64 salt>,i=<iterations>"
   to out (a NUL-terminated string is kept). */
struct buf;
void scram_build_server_first(struct buf *out, struct span client_nonce,
			      struct span server_nonce, const uint8_t *salt,
			      size_t salt_len, unsigned int iterations);
/* Appends "v=<base64 signature>". */
void scram_build_server_final(struct buf *out,
			      const uint8_t signature[SCRAM_KEY_LEN]);
/* Fills out with a fresh server nonce: base64 of
   SCRAM_SERVER_NONCE_BYTES random bytes (printable, no ','). out must
   hold SCRAM_SERVER_NONCE_LEN + 1 bytes. */
#define SCRAM_SERVER_NONCE_LEN 24
void scram_server_nonce(char out[SCRAM_SERVER_NONCE_LEN + 1]);

/* RFC 5802 5.1 saslname: "=2C" is ',' and "=3D" is '='; any other '='
   or a ',' is invalid (as is a NUL or bad UTF-8). Returns a pool copy or
   NULL. */
const char *scram_saslname_decode(struct pool *pool, struct span name);
/* Appends the saslname encoding of name (for clients and tests). */
void scram_saslname_encode(struct buf *out, const char *name);

/* The password as SCRAM hashes it. RFC 5802 2.2 names SASLprep (RFC
   4013); its successor is the OpaqueString profile of RFC 7613 (now RFC
   8265 4.2), which this implements without a stringprep library, with
   ICU for NFC: valid UTF-8 is required; non-ASCII spaces (Unicode Zs) map
   to U+0020 (4.2.1 additional mapping rule); the result is NFC (4.2.1
   normalization rule); C0 and C1 controls, DEL and unassigned code points
   are refused (RFC 8264 9.12, 9.13). Not done: the rest of the
   FreeformClass exclusions (Old Hangul Jamo, default-ignorable code
   points), rare in passwords. ASCII passes unchanged, as in every
   profile; a client doing SASLprep's NFKC instead of NFC differs only for
   compatibility characters (ligatures, full-width forms). Appends the
   prepared password to out; returns 0, or -1 when the password cannot be
   used for SCRAM (that credential then works with PLAIN and LOGIN
   only). */
int scram_saltprep(struct buf *out, struct span password);

/* RFC 5802 3: SaltedPassword := Hi(password, salt, i), Hi being
   PBKDF2-HMAC-SHA-256 (OpenSSL PKCS5_PBKDF2_HMAC). password is already
   prepared. */
void scram_salted_password(struct span password, const uint8_t *salt,
			   size_t salt_len, unsigned int iterations,
			   uint8_t out[SCRAM_KEY_LEN]);
/* StoredKey := H(HMAC(SaltedPassword, "Client Key")),
   ServerKey := HMAC(SaltedPassword, "Server Key"). */
void scram_secret_from_salted(const uint8_t salted[SCRAM_KEY_LEN],
			      struct scram_secret *secret_r);
/* Both steps, after scram_saltprep(). Returns -1 if the password cannot be
   prepared. */
int scram_secret_from_password(struct span password, const uint8_t *salt,
			       size_t salt_len, unsigned int iterations,
			       struct scram_secret *secret_r);

/* AuthMessage := client-first-message-bare "," server-first-message ","
   client-final-message-without-proof. Appends it to out. */
void scram_auth_message(struct buf *out, struct span client_first_bare,
			struct span server_first,
			struct span client_final_without_proof);
/* The server's check (RFC 5802 3): ClientKey := ClientProof XOR
   HMAC(StoredKey, AuthMessage); true when H(ClientKey) == StoredKey
   (compared in constant time). */
bool scram_verify_proof(const uint8_t stored_key[SCRAM_KEY_LEN],
			struct span auth_message,
			const uint8_t proof[SCRAM_KEY_LEN]);
/* ServerSignature := HMAC(ServerKey, AuthMessage). */
void scram_server_signature(const uint8_t server_key[SCRAM_KEY_LEN],
			    struct span auth_message,
			    uint8_t signature_r[SCRAM_KEY_LEN]);
/* The client's side (tests): ClientProof := ClientKey XOR
   HMAC(H(ClientKey), AuthMessage). */
void scram_client_proof(const uint8_t salted[SCRAM_KEY_LEN],
			struct span auth_message,
			uint8_t proof_r[SCRAM_KEY_LEN]);

#endif
