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
   blob copied to another account row does not unwrap.

   Zero-access accounts (doc/zero-access.md) wrap the same two keys only
   under a key derived from the user's password, never under the master
   key:

     kek     = Argon2id(password, salt(16), opslimit/memlimit INTERACTIVE:
			t=2, m=64 MiB; crypto_pwhash, 32-byte output)
     wrapped = "MKZ1" || salt(16) || nonce(24) ||
	       XChaCha20-Poly1305(kek, nonce, sk || data_key,
				  ad = "MKZ1" || u64le(id) || pk)

   The cost is the one of the account's password hash (password.h): the
   hash sits in the same directory.db row and is an offline guessing
   oracle for the same password at that cost, so a dearer KDF here would
   slow every unlock without slowing an attacker who holds directory.db.
   Other parameters will get another magic; "MKZ1" fixes these. */

#include "lib.h"

#define MASTER_KEY_LEN 32
#define ACCOUNT_PUBLIC_KEY_LEN 32
#define ACCOUNT_SECRET_KEY_LEN 32
#define ACCOUNT_DATA_KEY_LEN 32
#define ACCOUNT_WRAPPED_LEN (4 + 24 + 32 + 32 + 16)
#define ACCOUNT_PASSWORD_WRAPPED_LEN (4 + 16 + 24 + 32 + 32 + 16)

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
/* Wraps keys under password for a zero-access account (salt and nonce
   random). Costs one argon2id (64 MiB): off the network loop. Returns 0,
   or -1 when the memory for argon2id could not be had. */
int account_keys_wrap_password(const char *password, size_t password_len,
			       uint64_t account_id,
			       const struct account_keys *keys,
			       uint8_t wrapped_r[ACCOUNT_PASSWORD_WRAPPED_LEN]);
/* Fills keys_r (public key taken as given) or returns -1 if the password is
   wrong, the blob was not made for this account, is damaged, or argon2id
   ran out of memory. Costs one argon2id. */
int account_keys_unwrap_password(
	const char *password, size_t password_len, uint64_t account_id,
	const uint8_t public_key[ACCOUNT_PUBLIC_KEY_LEN],
	const uint8_t *wrapped, size_t wrapped_len,
	struct account_keys *keys_r);
/* Wipes the secret parts. */
void account_keys_clear(struct account_keys *keys);

#endif
