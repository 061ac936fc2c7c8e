/* vault-dkim.c - the vault's DKIM signer (protocol and cache in
   vault-dkim.h). It owns the cache of unwrapped signing keys; the
   directory (wrapped keys, their states) and the master key belong to
   vault.c, which calls the two handlers for the front's frames. Security
   stance: everything in a frame is hostile and bounded before use; the
   private keys are only ever used through dkim_sign_digest() and are never
   written to a reply or a log. */

#include "lib.h"
#include "vault-dkim.h"
#include "dkim.h"
#include "dkim-wrap.h"
#include "directory.h"
#include "mail-address.h"
#include "pool.h"

#include <sodium.h>

/* RFC 6376 3.1: a selector is sub-domains of at most 63 bytes; a domain
   name is at most 255 (RFC 1035 2.3.4). Longer is a malformed frame. */
#define VAULT_DKIM_NAME_MAX 255
#define VAULT_DKIM_SIG_MAX 512

struct vault_dkim_entry {
	char *domain, *selector;
	uint8_t wrapped_hash[32];
	EVP_PKEY *key;
	uint64_t last_used;
};

struct vault_dkim {
	struct directory *dir;
	const uint8_t *master_key;
	pool_t pool; /* per question */
	struct vault_dkim_entry cache[VAULT_DKIM_CACHE_MAX];
	unsigned int cache_count;
	uint64_t use_counter;
};

struct vault_dkim *vault_dkim_create(struct directory *dir,
				     const uint8_t *master_key)
{
	struct vault_dkim *vd = i_new(struct vault_dkim, 1);

	vd->dir = dir;
	vd->master_key = master_key;
	vd->pool = pool_create("vault-dkim", 2048);
	return vd;
}

static void vault_dkim_entry_free(struct vault_dkim_entry *e)
{
	EVP_PKEY_free(e->key);
	i_free(e->domain);
	i_free(e->selector);
	memset(e, 0, sizeof(*e));
}

void vault_dkim_destroy(struct vault_dkim **_vd)
{
	struct vault_dkim *vd = *_vd;

	*_vd = NULL;
	if (vd == NULL)
		return;
	for (unsigned int i = 0; i < vd->cache_count; i++)
		vault_dkim_entry_free(&vd->cache[i]);
	pool_unref(&vd->pool);
	i_free(vd);
}

unsigned int vault_dkim_cache_count(const struct vault_dkim *vd)
{
	return vd->cache_count;
}

static bool vault_dkim_alg_parse(const char *name, enum dkim_algorithm *alg_r)
{
	if (strcmp(name, "ed25519") == 0)
		*alg_r = DKIM_ALG_ED25519_SHA256;
	else if (strcmp(name, "rsa") == 0)
		*alg_r = DKIM_ALG_RSA_SHA256;
	else
		return false;
	return true;
}

/* The unwrapped key of an active key row, from the cache or unwrapped
   now (and cached). NULL if the blob does not open. */
static EVP_PKEY *vault_dkim_key_get(
	struct vault_dkim *vd, const char *domain,
	const struct directory_dkim_signing_key *row)
{
	struct vault_dkim_entry *e = NULL;
	uint8_t hash[32];
	EVP_PKEY *key;

	crypto_generichash(hash, sizeof(hash), row->wrapped, row->wrapped_len,
			   NULL, 0);
	for (unsigned int i = 0; i < vd->cache_count; i++) {
		e = &vd->cache[i];
		if (strcmp(e->domain, domain) == 0 &&
		    strcmp(e->selector, row->selector) == 0) {
			if (sodium_memcmp(e->wrapped_hash, hash,
					  sizeof(hash)) == 0) {
				e->last_used = ++vd->use_counter;
				return e->key;
			}
			/* The selector was made again: drop the old key. */
			vault_dkim_entry_free(e);
			vd->cache[i] = vd->cache[--vd->cache_count];
			break;
		}
	}
	key = dkim_wrap_unwrap(vd->master_key, domain, row->selector,
			       row->wrapped, row->wrapped_len);
	if (key == NULL)
		return NULL;
	if (vd->cache_count < VAULT_DKIM_CACHE_MAX) {
		e = &vd->cache[vd->cache_count++];
	} else {
		e = &vd->cache[0];
		for (unsigned int i = 1; i < vd->cache_count; i++) {
			if (vd->cache[i].last_used < e->last_used)
				e = &vd->cache[i];
		}
		vault_dkim_entry_free(e);
	}
	e->domain = i_strdup(domain);
	e->selector = i_strdup(row->selector);
	memcpy(e->wrapped_hash, hash, sizeof(hash));
	e->key = key;
	e->last_used = ++vd->use_counter;
	return key;
}

/* Reads and normalises the domain field. Returns the domain, "" when it
   is not a valid domain (answered: no keys), or NULL for a malformed
   frame. */
static const char *vault_dkim_get_domain(struct vault_dkim *vd,
					 struct ipc_reader *reader)
{
	const char *domain = ipc_get_str(reader, vd->pool), *error;
	const char *norm;

	if (strlen(domain) > VAULT_DKIM_NAME_MAX)
		return NULL;
	norm = mail_domain_normalize(vd->pool, domain, &error);
	return norm == NULL ? "" : norm;
}

static int vault_dkim_active(struct vault_dkim *vd, const char *domain,
			     const struct directory_dkim_signing_key **keys_r,
			     unsigned int *count_r, const char **error_r)
{
	*keys_r = NULL;
	*count_r = 0;
	if (domain[0] == '\0')
		return 0;
	return directory_dkim_signing_keys(vd->dir, domain, vd->pool, keys_r,
					   count_r, error_r);
}

int vault_dkim_handle_keys(struct vault_dkim *vd, const struct ipc_frame *frame,
			   struct buf *out, const char **error_r)
{
	const struct directory_dkim_signing_key *keys;
	enum dkim_algorithm algs[IPC_DKIM_MAX_SIGS];
	const char *domain, *sels[IPC_DKIM_MAX_SIGS];
	unsigned int count, n = 0;
	struct ipc_reader reader;
	uint32_t status = IPC_DKIM_OK;
	size_t offset;

	*error_r = NULL;
	pool_clear(vd->pool);
	ipc_reader_init(&reader, frame);
	domain = vault_dkim_get_domain(vd, &reader);
	if (ipc_end(&reader) < 0 || domain == NULL)
		return -1;
	if (vault_dkim_active(vd, domain, &keys, &count, error_r) < 0) {
		status = IPC_DKIM_TEMPFAIL;
		count = 0;
	}
	for (unsigned int i = 0; i < count && n < IPC_DKIM_MAX_SIGS; i++) {
		if (!vault_dkim_alg_parse(keys[i].algorithm, &algs[n]))
			continue;
		sels[n++] = keys[i].selector;
	}
	offset = ipc_msg_begin(out, IPC_FRONT_DKIM_KEYS_REPLY, frame->id);
	ipc_put_u32(out, status);
	ipc_put_u32(out, n);
	for (unsigned int i = 0; i < n; i++) {
		ipc_put_str(out, sels[i]);
		ipc_put_u32(out, (uint32_t)algs[i]);
	}
	ipc_msg_finish(out, offset);
	return 0;
}

struct vault_dkim_sign_item {
	const char *selector;
	uint32_t alg;
	struct span digest;
	uint8_t sig[VAULT_DKIM_SIG_MAX];
	size_t sig_len;
};

/* Signs one item with the active key of that selector and algorithm.
   Returns the status. */
static enum ipc_dkim_status vault_dkim_sign_one(
	struct vault_dkim *vd, const char *domain,
	const struct directory_dkim_signing_key *keys, unsigned int count,
	struct vault_dkim_sign_item *item, const char **error_r)
{
	enum dkim_algorithm alg;
	EVP_PKEY *key;

	for (unsigned int i = 0; i < count; i++) {
		if (strcmp(keys[i].selector, item->selector) != 0)
			continue;
		if (!vault_dkim_alg_parse(keys[i].algorithm, &alg) ||
		    (uint32_t)alg != item->alg)
			break;
		key = vault_dkim_key_get(vd, domain, &keys[i]);
		if (key == NULL) {
			*error_r = "a DKIM key does not unwrap with this "
				   "master key";
			return IPC_DKIM_TEMPFAIL;
		}
		if (dkim_sign_digest(key, alg, item->digest.p, item->sig,
				     &item->sig_len) < 0) {
			*error_r = "signing failed";
			return IPC_DKIM_TEMPFAIL;
		}
		return IPC_DKIM_OK;
	}
	*error_r = "not an active key of the domain";
	return IPC_DKIM_NO_KEY;
}

int vault_dkim_handle_sign(struct vault_dkim *vd, const struct ipc_frame *frame,
			   struct buf *out, const char **error_r)
{
	struct vault_dkim_sign_item items[IPC_DKIM_MAX_SIGS];
	const struct directory_dkim_signing_key *keys;
	enum ipc_dkim_status status = IPC_DKIM_OK;
	struct ipc_reader reader;
	const char *domain;
	unsigned int count;
	uint32_t n;
	size_t offset;

	*error_r = NULL;
	pool_clear(vd->pool);
	ipc_reader_init(&reader, frame);
	domain = vault_dkim_get_domain(vd, &reader);
	n = ipc_get_u32(&reader);
	if (domain == NULL || n == 0 || n > IPC_DKIM_MAX_SIGS)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		items[i].selector = ipc_get_str(&reader, vd->pool);
		items[i].alg = ipc_get_u32(&reader);
		items[i].digest = ipc_get_bytes(&reader);
		items[i].sig_len = 0;
		if (strlen(items[i].selector) > VAULT_DKIM_NAME_MAX ||
		    (reader.failed == false && items[i].digest.len != 32))
			return -1;
	}
	if (ipc_end(&reader) < 0)
		return -1;

	if (vault_dkim_active(vd, domain, &keys, &count, error_r) < 0) {
		status = IPC_DKIM_TEMPFAIL;
	} else {
		for (uint32_t i = 0; i < n && status == IPC_DKIM_OK; i++) {
			status = vault_dkim_sign_one(vd, domain, keys, count,
						     &items[i], error_r);
		}
	}
	offset = ipc_msg_begin(out, IPC_FRONT_DKIM_SIGN_REPLY, frame->id);
	ipc_put_u32(out, (uint32_t)status);
	ipc_put_u32(out, status == IPC_DKIM_OK ? n : 0);
	for (uint32_t i = 0; i < n && status == IPC_DKIM_OK; i++)
		ipc_put_bytes(out, items[i].sig, items[i].sig_len);
	ipc_msg_finish(out, offset);
	return 0;
}
