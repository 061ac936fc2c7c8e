#ifndef MARMOT_AUTH_CACHE_H
#define MARMOT_AUTH_CACHE_H
/* The vault's short-lived cache of verified credentials, so that a mail
   client that logs in every few seconds does not cost an argon2id hash each
   time. An entry is keyed by

     digest = BLAKE2b-256(key = a random secret made per cache,
			  msg = normalised username || 0x00 || password)

   and holds only that digest, the account id, the account's
   credential_version at the time of the successful login and an expiry.
   The password itself is never stored. Digests are compared in constant
   time. The cache has a fixed capacity; when it is full, the entry closest
   to expiry makes room. Not thread-safe: the vault uses it from its loop
   thread only.

   Time is passed in by the caller (monotonic milliseconds, e.g.
   ioloop_now_ms()), so tests can drive expiry. */

#include "lib.h"

#define AUTH_CACHE_DEFAULT_CAPACITY 4096

struct auth_cache;

/* capacity: maximum number of entries (> 0). ttl_secs: lifetime of an
   entry; 0 disables the cache (lookups always miss, inserts do nothing). */
struct auth_cache *auth_cache_create(unsigned int capacity,
				     unsigned int ttl_secs);
/* Wipes every entry and the key. Sets *cache to NULL; NULL is fine. */
void auth_cache_destroy(struct auth_cache **cache);

/* Returns true and fills account_id_r and version_r when an unexpired
   entry exists for exactly this username and password. username must be
   normalised (no NUL). An expired entry that is found is removed. */
bool auth_cache_lookup(struct auth_cache *cache, const char *username,
		       const void *password, size_t password_len,
		       uint64_t now_ms, uint64_t *account_id_r,
		       uint64_t *version_r);
/* Records a verified login, expiring at now_ms + ttl. Replaces an entry
   with the same digest. Evicts the entry closest to expiry when full. */
void auth_cache_insert(struct auth_cache *cache, const char *username,
		       const void *password, size_t password_len,
		       uint64_t account_id, uint64_t version, uint64_t now_ms);
/* Removes the entry for this username and password, if any (a hit whose
   credential_version turned out stale). */
void auth_cache_remove(struct auth_cache *cache, const char *username,
		       const void *password, size_t password_len);
/* Removes every entry of the account (password change, deletion). Returns
   the number removed. */
unsigned int auth_cache_drop_account(struct auth_cache *cache,
				     uint64_t account_id);
/* Entries currently held (expired ones not yet removed included). */
unsigned int auth_cache_count(const struct auth_cache *cache);

#endif
