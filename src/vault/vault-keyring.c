/* vault-keyring.c - the unlocked keys of zero-access accounts, in the
   vault's memory only (vault-keyring.h). Owns one sodium_malloc() block per
   unlocked account and the array that points to them. Called by vault.c
   (expiry timer, exit), vault-auth.c (a login unlocks) and vault-merge.c
   (a merge takes a copy). Security stance: keys never leave this process
   and are never logged; an entry is wiped (sodium_free) when it expires,
   is replaced or forgotten, and at exit; an expired entry is never handed
   out even before the timer has wiped it. */

#include "lib.h"
#include "vault-keyring.h"

#include <sodium.h>

struct vault_keyring_entry {
	uint64_t account_id;
	uint64_t expires_ms;
	struct account_keys *keys; /* sodium_malloc'ed */
};

struct vault_keyring {
	uint64_t ttl_ms;
	struct vault_keyring_entry *entries;
	unsigned int count, alloc;
};

struct vault_keyring *vault_keyring_create(uint64_t ttl_msecs)
{
	struct vault_keyring *ring = i_new(struct vault_keyring, 1);

	ring->ttl_ms =
		ttl_msecs > 0 ? ttl_msecs
			      : (uint64_t)VAULT_KEYRING_DEFAULT_TTL_SECS * 1000;
	return ring;
}

static void vault_keyring_remove_at(struct vault_keyring *ring,
				    unsigned int idx)
{
	sodium_free(ring->entries[idx].keys); /* wipes */
	ring->entries[idx] = ring->entries[--ring->count];
}

void vault_keyring_destroy(struct vault_keyring **_ring)
{
	struct vault_keyring *ring = *_ring;

	*_ring = NULL;
	if (ring == NULL)
		return;
	while (ring->count > 0)
		vault_keyring_remove_at(ring, ring->count - 1);
	i_free(ring->entries);
	i_free(ring);
}

static struct vault_keyring_entry *vault_keyring_find(
	struct vault_keyring *ring, uint64_t account_id)
{
	for (unsigned int i = 0; i < ring->count; i++) {
		if (ring->entries[i].account_id == account_id)
			return &ring->entries[i];
	}
	return NULL;
}

void vault_keyring_put(struct vault_keyring *ring, uint64_t account_id,
		       const struct account_keys *keys, uint64_t now_ms)
{
	struct vault_keyring_entry *e = vault_keyring_find(ring, account_id);

	if (e == NULL) {
		if (ring->count == ring->alloc) {
			ring->alloc = ring->alloc == 0 ? 8 : ring->alloc * 2;
			ring->entries =
				i_realloc(ring->entries,
					  i_size_mul(sizeof(*ring->entries),
						     ring->alloc));
		}
		e = &ring->entries[ring->count++];
		e->account_id = account_id;
		e->keys = sodium_malloc(sizeof(*e->keys));
		if (e->keys == NULL)
			i_panic("sodium_malloc(%zu) failed", sizeof(*e->keys));
	}
	memcpy(e->keys, keys, sizeof(*e->keys));
	e->expires_ms = now_ms + ring->ttl_ms;
}

bool vault_keyring_get(struct vault_keyring *ring, uint64_t account_id,
		       uint64_t now_ms, struct account_keys *keys_r)
{
	struct vault_keyring_entry *e = vault_keyring_find(ring, account_id);

	if (e == NULL || e->expires_ms <= now_ms)
		return false;
	if (keys_r != NULL)
		memcpy(keys_r, e->keys, sizeof(*keys_r));
	return true;
}

bool vault_keyring_touch(struct vault_keyring *ring, uint64_t account_id,
			 uint64_t now_ms)
{
	struct vault_keyring_entry *e = vault_keyring_find(ring, account_id);

	if (e == NULL || e->expires_ms <= now_ms)
		return false;
	e->expires_ms = now_ms + ring->ttl_ms;
	return true;
}

void vault_keyring_forget(struct vault_keyring *ring, uint64_t account_id)
{
	for (unsigned int i = 0; i < ring->count; i++) {
		if (ring->entries[i].account_id == account_id) {
			vault_keyring_remove_at(ring, i);
			return;
		}
	}
}

unsigned int vault_keyring_expire(struct vault_keyring *ring, uint64_t now_ms)
{
	unsigned int removed = 0;

	for (unsigned int i = 0; i < ring->count;) {
		if (ring->entries[i].expires_ms <= now_ms) {
			vault_keyring_remove_at(ring, i);
			removed++;
		} else {
			i++;
		}
	}
	return removed;
}

unsigned int vault_keyring_count(const struct vault_keyring *ring)
{
	return ring->count;
}
