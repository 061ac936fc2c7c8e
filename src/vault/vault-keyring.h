#ifndef MARMOT_VAULT_KEYRING_H
#define MARMOT_VAULT_KEYRING_H
/* The vault's unlocked keys of zero-access accounts (doc/zero-access.md).
   A zero-access account's keys open only with the user's password, so the
   vault can merge its spool only after a login has unwrapped them; the
   keyring keeps them from that login until ttl_msecs after the last
   successful login with the password (a login refreshes the time), then
   wipes them. Everything is wiped at vault_keyring_destroy() (vault exit).

   The vault does not learn when a front's session ends, so "the session's
   lifetime" is this time-to-live: VAULT_KEYRING_DEFAULT_TTL_SECS, 12 h, a
   working day, after which new mail waits sealed until the next login.

   Each entry lives in its own sodium_malloc() block (locked in memory,
   guard pages, wiped when freed). Every function runs in the vault's loop
   thread; merge jobs get a copy of the keys, which they wipe. */

#include "lib.h"
#include "account-keys.h"

#define VAULT_KEYRING_DEFAULT_TTL_SECS (12 * 60 * 60)

struct vault_keyring;

/* ttl_msecs 0 = VAULT_KEYRING_DEFAULT_TTL_SECS. */
struct vault_keyring *vault_keyring_create(uint64_t ttl_msecs);
/* Wipes and frees every entry. Sets *ring to NULL; NULL is fine. */
void vault_keyring_destroy(struct vault_keyring **ring);

/* Stores a copy of keys for account_id (replacing any), valid until
   now_ms + ttl. */
void vault_keyring_put(struct vault_keyring *ring, uint64_t account_id,
		       const struct account_keys *keys, uint64_t now_ms);
/* Returns true and copies the keys into keys_r (the caller wipes them with
   account_keys_clear) if account_id is unlocked at now_ms. keys_r may be
   NULL to ask only. */
bool vault_keyring_get(struct vault_keyring *ring, uint64_t account_id,
		       uint64_t now_ms, struct account_keys *keys_r);
/* Extends an unlocked account's time to now_ms + ttl (a login whose
   password the credential cache vouched for). Returns false if it is not
   unlocked. */
bool vault_keyring_touch(struct vault_keyring *ring, uint64_t account_id,
			 uint64_t now_ms);
/* Wipes one account's keys (deleted account). */
void vault_keyring_forget(struct vault_keyring *ring, uint64_t account_id);
/* Wipes every entry expired at now_ms; returns how many. */
unsigned int vault_keyring_expire(struct vault_keyring *ring, uint64_t now_ms);
unsigned int vault_keyring_count(const struct vault_keyring *ring);

#endif
