/* auth-cache.c - the vault's cache of recently verified credentials. It owns
   a fixed array of entries, a chained hash table over them, and a random
   per-cache BLAKE2b key; vault-auth.c is its only caller, from the vault's
   loop thread. Security stance: the cache must not become a password store.
   Entries hold a keyed digest of username and password, never the password;
   the key is random per process and lives only in this process (which the
   vault makes non-dumpable), so a digest cannot be tested offline against a
   dictionary. Digests are compared with a constant-time comparison, and
   the bucket is chosen from the keyed digest, which an attacker cannot
   predict. Every entry is wiped when it is removed, and everything at
   destroy. */

#include "auth-cache.h"

#include <sodium.h>

#define AUTH_CACHE_DIGEST_LEN crypto_generichash_BYTES /* 32 */
#define AUTH_CACHE_KEY_LEN crypto_generichash_KEYBYTES /* 32 */
#define AUTH_CACHE_NIL UINT32_MAX

struct auth_cache_entry {
	uint8_t digest[AUTH_CACHE_DIGEST_LEN];
	uint64_t account_id;
	uint64_t version;
	uint64_t expires_ms;
	/* Next entry in the bucket chain, or in the free list. */
	uint32_t next;
	bool used;
};

struct auth_cache {
	uint8_t key[AUTH_CACHE_KEY_LEN];
	uint64_t ttl_ms;
	unsigned int capacity;
	unsigned int count;
	struct auth_cache_entry *entries;
	uint32_t *buckets;
	uint32_t bucket_mask;
	uint32_t free_head;
};

_Static_assert(AUTH_CACHE_DIGEST_LEN == 32, "BLAKE2b-256 expected");

struct auth_cache *auth_cache_create(unsigned int capacity,
				     unsigned int ttl_secs)
{
	struct auth_cache *cache;
	uint32_t nbuckets = 1;

	i_assert(capacity > 0 && capacity < AUTH_CACHE_NIL / 2);
	if (sodium_init() < 0)
		i_panic("sodium_init() failed");

	cache = i_new(struct auth_cache, 1);
	randombytes_buf(cache->key, sizeof(cache->key));
	cache->ttl_ms = (uint64_t)ttl_secs * 1000;
	cache->capacity = capacity;
	cache->entries = i_new(struct auth_cache_entry, capacity);
	while (nbuckets < capacity)
		nbuckets <<= 1;
	cache->buckets = i_new(uint32_t, nbuckets);
	cache->bucket_mask = nbuckets - 1;
	for (uint32_t i = 0; i < nbuckets; i++)
		cache->buckets[i] = AUTH_CACHE_NIL;
	for (unsigned int i = 0; i < capacity; i++)
		cache->entries[i].next =
			i + 1 < capacity ? i + 1 : AUTH_CACHE_NIL;
	cache->free_head = 0;
	return cache;
}

void auth_cache_destroy(struct auth_cache **_cache)
{
	struct auth_cache *cache = *_cache;

	*_cache = NULL;
	if (cache == NULL)
		return;
	safe_memset0(cache->entries, sizeof(*cache->entries) * cache->capacity);
	safe_memset0(cache->key, sizeof(cache->key));
	i_free(cache->entries);
	i_free(cache->buckets);
	i_free(cache);
}

static void auth_cache_digest(const struct auth_cache *cache,
			      const char *username, const void *password,
			      size_t password_len,
			      uint8_t digest_r[AUTH_CACHE_DIGEST_LEN])
{
	crypto_generichash_state state;
	const uint8_t sep = 0x00;

	/* The NUL separator makes ("ab", "c") and ("a", "bc") different
	   messages: a normalised username never contains NUL. */
	crypto_generichash_init(&state, cache->key, sizeof(cache->key),
				AUTH_CACHE_DIGEST_LEN);
	crypto_generichash_update(&state, (const uint8_t *)username,
				  strlen(username));
	crypto_generichash_update(&state, &sep, 1);
	crypto_generichash_update(&state, password, password_len);
	crypto_generichash_final(&state, digest_r, AUTH_CACHE_DIGEST_LEN);
	/* The state has absorbed the password. */
	safe_memset0(&state, sizeof(state));
}

static uint32_t auth_cache_bucket(const struct auth_cache *cache,
				  const uint8_t digest[AUTH_CACHE_DIGEST_LEN])
{
	uint32_t h;

	/* The digest is keyed, so its bits are already unpredictable. */
	memcpy(&h, digest, sizeof(h));
	return h & cache->bucket_mask;
}

/* Returns the entry index, or AUTH_CACHE_NIL. prev_r gets the previous
   entry in the chain (AUTH_CACHE_NIL when it is the bucket head). */
static uint32_t auth_cache_find(const struct auth_cache *cache,
				const uint8_t digest[AUTH_CACHE_DIGEST_LEN],
				uint32_t *prev_r)
{
	uint32_t prev = AUTH_CACHE_NIL;
	uint32_t idx = cache->buckets[auth_cache_bucket(cache, digest)];

	while (idx != AUTH_CACHE_NIL) {
		const struct auth_cache_entry *entry = &cache->entries[idx];

		if (mem_equals_ct(entry->digest, digest, AUTH_CACHE_DIGEST_LEN))
			break;
		prev = idx;
		idx = entry->next;
	}
	*prev_r = prev;
	return idx;
}

static void auth_cache_unlink(struct auth_cache *cache, uint32_t idx,
			      uint32_t prev)
{
	struct auth_cache_entry *entry = &cache->entries[idx];

	if (prev == AUTH_CACHE_NIL)
		cache->buckets[auth_cache_bucket(cache, entry->digest)] =
			entry->next;
	else
		cache->entries[prev].next = entry->next;
	safe_memset0(entry, sizeof(*entry));
	entry->next = cache->free_head;
	cache->free_head = idx;
	i_assert(cache->count > 0);
	cache->count--;
}

/* Removes entry idx, finding its predecessor in the chain. */
static void auth_cache_remove_idx(struct auth_cache *cache, uint32_t idx)
{
	uint32_t prev;
	uint32_t found =
		auth_cache_find(cache, cache->entries[idx].digest, &prev);

	i_assert(found == idx);
	auth_cache_unlink(cache, idx, prev);
}

bool auth_cache_lookup(struct auth_cache *cache, const char *username,
		       const void *password, size_t password_len,
		       uint64_t now_ms, uint64_t *account_id_r,
		       uint64_t *version_r)
{
	uint8_t digest[AUTH_CACHE_DIGEST_LEN];
	uint32_t idx, prev;
	const struct auth_cache_entry *entry;

	if (cache->ttl_ms == 0 || cache->count == 0)
		return false;
	auth_cache_digest(cache, username, password, password_len, digest);
	idx = auth_cache_find(cache, digest, &prev);
	safe_memset0(digest, sizeof(digest));
	if (idx == AUTH_CACHE_NIL)
		return false;
	entry = &cache->entries[idx];
	if (entry->expires_ms <= now_ms) {
		auth_cache_unlink(cache, idx, prev);
		return false;
	}
	*account_id_r = entry->account_id;
	*version_r = entry->version;
	return true;
}

/* The entry closest to expiry (expired ones first, as they have the
   smallest expiry). */
static uint32_t auth_cache_oldest(const struct auth_cache *cache)
{
	uint32_t best = AUTH_CACHE_NIL;

	for (uint32_t i = 0; i < cache->capacity; i++) {
		const struct auth_cache_entry *entry = &cache->entries[i];

		if (!entry->used)
			continue;
		if (best == AUTH_CACHE_NIL ||
		    entry->expires_ms < cache->entries[best].expires_ms)
			best = i;
	}
	return best;
}

void auth_cache_insert(struct auth_cache *cache, const char *username,
		       const void *password, size_t password_len,
		       uint64_t account_id, uint64_t version, uint64_t now_ms)
{
	uint8_t digest[AUTH_CACHE_DIGEST_LEN];
	struct auth_cache_entry *entry;
	uint32_t idx, prev, bucket;

	if (cache->ttl_ms == 0)
		return;
	auth_cache_digest(cache, username, password, password_len, digest);
	idx = auth_cache_find(cache, digest, &prev);
	if (idx == AUTH_CACHE_NIL) {
		if (cache->free_head == AUTH_CACHE_NIL)
			auth_cache_remove_idx(cache, auth_cache_oldest(cache));
		idx = cache->free_head;
		i_assert(idx != AUTH_CACHE_NIL);
		entry = &cache->entries[idx];
		cache->free_head = entry->next;
		memcpy(entry->digest, digest, sizeof(entry->digest));
		bucket = auth_cache_bucket(cache, digest);
		entry->next = cache->buckets[bucket];
		cache->buckets[bucket] = idx;
		entry->used = true;
		cache->count++;
	}
	safe_memset0(digest, sizeof(digest));
	entry = &cache->entries[idx];
	entry->account_id = account_id;
	entry->version = version;
	entry->expires_ms = now_ms + cache->ttl_ms;
}

void auth_cache_remove(struct auth_cache *cache, const char *username,
		       const void *password, size_t password_len)
{
	uint8_t digest[AUTH_CACHE_DIGEST_LEN];
	uint32_t idx, prev;

	if (cache->count == 0)
		return;
	auth_cache_digest(cache, username, password, password_len, digest);
	idx = auth_cache_find(cache, digest, &prev);
	safe_memset0(digest, sizeof(digest));
	if (idx != AUTH_CACHE_NIL)
		auth_cache_unlink(cache, idx, prev);
}

unsigned int auth_cache_drop_account(struct auth_cache *cache,
				     uint64_t account_id)
{
	unsigned int dropped = 0;

	for (uint32_t i = 0; i < cache->capacity; i++) {
		if (cache->entries[i].used &&
		    cache->entries[i].account_id == account_id) {
			auth_cache_remove_idx(cache, i);
			dropped++;
		}
	}
	return dropped;
}

unsigned int auth_cache_count(const struct auth_cache *cache)
{
	return cache->count;
}
