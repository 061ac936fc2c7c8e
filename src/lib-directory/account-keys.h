#ifndef MARMOT_ACCOUNT_KEYS_H
#define MARMOT_ACCOUNT_KEYS_H
/* The key hierarchy (ARCHITECTURE.md 3).

   master.key: 32 random bytes in DATA/master.key, mode 0600, read only by
   the vault (and by the admin CLI, which acts as the operator).

   Each account has an X25519 key pair (libsodium crypto_box; inbound mail
   is sealed to the public key) and a random 32-byte data key (encrypts its
   store and blobs). The secret key and the data key are wrapped together:

     kek     = BLAKE2b-256(key = master key,
			   msg = "marmot/account-wrap/v1" || u64le(id))
     wrapped = "MKW1" || nonce(24) ||
	       XChaCha20-Poly1305(kek, nonce, sk || data_key,
				  ad = "MKW1" || u64le(id) || pk)

   Binding the account id and public key as associated data means a wrapped
   blob copied to another account row does not unwrap. Zero-access accounts
   (a later issue) will wrap under an Argon2id key of the password instead,
   with a different magic. */

#include "lib.h"

#define MASTER_KEY_LEN 32
#define ACCOUNT_PUBLIC_KEY_LEN 32
#define ACCOUNT_SECRET_KEY_LEN 32
#define ACCOUNT_DATA_KEY_LEN 32
#define ACCOUNT_WRAPPED_LEN (4 + 24 + 32 + 32 + 16)

struct account_keys {
	uint8_t public_key[ACCOUNT_PUBLIC_KEY_LEN];
	uint8_t secret_key[ACCOUNT_SECRET_KEY_LEN];
	uint8_t data_key[ACCOUNT_DATA_KEY_LEN];
};

/* Creates path with 32 random bytes, O_EXCL, mode 0600, fsynced. */
int master_key_create(const char *path, const char **error_r);
/* Reads the key. Fails if the file is not exactly 32 bytes, or is readable
   or writable by group or others (error says "chmod 600 path"). */
int master_key_load(const char *path, uint8_t key_r[MASTER_KEY_LEN],
		    const char **error_r);

void account_keys_generate(struct account_keys *keys_r);
void account_keys_wrap(const uint8_t master_key[MASTER_KEY_LEN],
		       uint64_t account_id, const struct account_keys *keys,
		       uint8_t wrapped_r[ACCOUNT_WRAPPED_LEN]);
/* Fills keys_r (public key taken as given) or returns -1 if the wrapped
   data was not made for this account and master key, or is damaged. */
int account_keys_unwrap(const uint8_t master_key[MASTER_KEY_LEN],
			uint64_t account_id,
			const uint8_t public_key[ACCOUNT_PUBLIC_KEY_LEN],
			const uint8_t *wrapped, size_t wrapped_len,
			struct account_keys *keys_r);
/* Wipes the secret parts. */
void account_keys_clear(struct account_keys *keys);

#endif
