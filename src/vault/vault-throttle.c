/* vault-throttle.c - failed-login accounting shared by every login
   mechanism of the vault (vault-throttle.h). */

#include "lib.h"
#include "net.h"
#include "vault-throttle.h"

#include <limits.h>
#include <sodium.h>

/* Entries probed from a key's home slot. */
#define VAULT_THROTTLE_PROBE 8
#define VAULT_THROTTLE_KEY_LEN 16

struct vault_throttle_entry {
	uint8_t key[VAULT_THROTTLE_KEY_LEN];
	uint64_t window_start_ms;
	unsigned int count; /* 0 = free */
};

struct vault_throttle {
	unsigned int max_per_ip, max_per_user, window_msecs;
	bool exempt_localhost;
	/* Keys the digests, so that nobody can aim addresses at one probe
	   sequence to push a given entry out. */
	uint8_t secret[crypto_generichash_KEYBYTES];
	struct vault_throttle_entry *entries; /* VAULT_THROTTLE_SLOTS */
};

struct vault_throttle *vault_throttle_create(
	const struct vault_throttle_settings *set)
{
	struct vault_throttle *t = i_new(struct vault_throttle, 1);

	t->max_per_ip = set->max_per_ip > 0 ? set->max_per_ip
					    : VAULT_THROTTLE_DEFAULT_MAX_PER_IP;
	t->max_per_user = set->max_per_user > 0
				  ? set->max_per_user
				  : VAULT_THROTTLE_DEFAULT_MAX_PER_USER;
	t->window_msecs = set->window_msecs > 0
				  ? set->window_msecs
				  : VAULT_THROTTLE_DEFAULT_WINDOW_MSECS;
	t->exempt_localhost = set->exempt_localhost;
	randombytes_buf(t->secret, sizeof(t->secret));
	t->entries = i_new(struct vault_throttle_entry, VAULT_THROTTLE_SLOTS);
	return t;
}

void vault_throttle_destroy(struct vault_throttle **_t)
{
	struct vault_throttle *t = *_t;

	*_t = NULL;
	if (t == NULL)
		return;
	i_free(t->entries);
	sodium_memzero(t->secret, sizeof(t->secret));
	i_free(t);
}

/* kind separates the two namespaces: a username that looks like an
   address must not share its entry. */
static void vault_throttle_key(const struct vault_throttle *t, char kind,
			       const char *value,
			       uint8_t key_r[VAULT_THROTTLE_KEY_LEN])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, t->secret, sizeof(t->secret),
				VAULT_THROTTLE_KEY_LEN);
	crypto_generichash_update(&st, (const uint8_t *)&kind, 1);
	crypto_generichash_update(&st, (const uint8_t *)value, strlen(value));
	crypto_generichash_final(&st, key_r, VAULT_THROTTLE_KEY_LEN);
}

/* The entry of (kind, value) in its current window, or NULL. With
   create, a free or expired entry of the probe (else its oldest) is
   taken for it. */
static struct vault_throttle_entry *vault_throttle_find(
	struct vault_throttle *t, char kind, const char *value, uint64_t now_ms,
	bool create)
{
	uint8_t key[VAULT_THROTTLE_KEY_LEN];
	struct vault_throttle_entry *e, *victim = NULL;
	uint32_t home;

	vault_throttle_key(t, kind, value, key);
	memcpy(&home, key, sizeof(home));
	for (unsigned int i = 0; i < VAULT_THROTTLE_PROBE; i++) {
		e = &t->entries[(home + i) % VAULT_THROTTLE_SLOTS];
		if (e->count > 0 &&
		    now_ms - e->window_start_ms >= t->window_msecs)
			e->count = 0; /* the window passed */
		if (e->count > 0 && memcmp(e->key, key, sizeof(key)) == 0)
			return e;
		if (victim == NULL ||
		    (victim->count > 0 &&
		     (e->count == 0 ||
		      e->window_start_ms < victim->window_start_ms)))
			victim = e;
	}
	if (!create)
		return NULL;
	memcpy(victim->key, key, sizeof(key));
	victim->window_start_ms = now_ms;
	victim->count = 0;
	return victim;
}

/* bucket is net_ip_bucket(ip): "127.0.0.1" also for ::ffff:127.0.0.1. */
static bool vault_throttle_exempt(const struct vault_throttle *t,
				  const char *ip, const char *bucket)
{
	return t->exempt_localhost &&
	       (strcmp(bucket, "127.0.0.1") == 0 || strcmp(ip, "::1") == 0);
}

bool vault_throttle_blocked(struct vault_throttle *t, const char *ip,
			    const char *username, uint64_t now_ms,
			    const char **reason_r)
{
	const struct vault_throttle_entry *e;
	char bucket[64];

	net_ip_bucket(ip, bucket);
	if (vault_throttle_exempt(t, ip, bucket))
		return false;
	e = vault_throttle_find(t, 'i', bucket, now_ms, false);
	if (e != NULL && e->count >= t->max_per_ip) {
		*reason_r = "too_many_failures";
		return true;
	}
	/* A spread-out run against one name: only addresses that failed
	   themselves are refused, so the owner's own still gets in. */
	if (e != NULL && username != NULL && username[0] != '\0') {
		const struct vault_throttle_entry *u =
			vault_throttle_find(t, 'u', username, now_ms, false);

		if (u != NULL && u->count >= t->max_per_user) {
			*reason_r = "too_many_user_failures";
			return true;
		}
	}
	return false;
}

void vault_throttle_failure(struct vault_throttle *t, const char *ip,
			    const char *username, uint64_t now_ms)
{
	struct vault_throttle_entry *e;
	char bucket[64];

	net_ip_bucket(ip, bucket);
	if (vault_throttle_exempt(t, ip, bucket))
		return;
	e = vault_throttle_find(t, 'i', bucket, now_ms, true);
	if (e->count < UINT_MAX)
		e->count++;
	if (username != NULL && username[0] != '\0') {
		e = vault_throttle_find(t, 'u', username, now_ms, true);
		if (e->count < UINT_MAX)
			e->count++;
	}
}
