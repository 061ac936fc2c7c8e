/* vault-auth.c - password verification for the vault: cache, directory
   lookup, and argon2id on a capped worker pool. It owns the worker pool, the
   credential cache and every request in flight (with its copy of the
   password); vault.c calls it for each IPC_VAULT_AUTH and the unit tests
   call it directly. Security stance: the username and password come from
   the front, which is network-facing and may be compromised, so both are
   bounded before any work is done; an unknown or invalid user costs one
   argon2id exactly like a wrong password and gets the same answer;
   DISABLED is only said after a correct password; the number of
   concurrent 64 MiB hashes is the pool size, and the queue behind it is
   bounded. The password copy lives in one heap block that is wiped when
   the request ends, and it is never logged. A zero-access account's keys,
   unwrapped by the worker with the password, live in a sodium_malloc()
   block of the request until done() copies them into the keyring and
   frees (wipes) it. */

#include "vault-auth.h"
#include "auth-cache.h"
#include "vault-keyring.h"
#include "account-keys.h"
#include "directory.h"
#include "ioloop.h"
#include "log.h"
#include "mail-address.h"
#include "password.h"
#include "pool.h"
#include "worker.h"

#include <stdlib.h>

#include <sodium.h>

struct vault_auth {
	struct ioloop *ioloop;
	struct directory *dir;
	struct worker_pool *workers;
	struct auth_cache *cache;
	struct vault_keyring *keyring; /* NULL: nothing is unlocked */
	/* Owned by password.c, computed once per process. */
	const char *dummy_hash;
	unsigned int threads;
	unsigned int max_waiting;
	unsigned int in_flight;
	uint64_t hash_count;
	/* Called when in_flight drops to 0, aborted requests included. */
	vault_auth_idle_callback_t *idle;
	void *idle_context;
};

struct vault_auth_request {
	struct vault_auth *auth;
	vault_auth_callback_t *callback; /* NULL once aborted */
	void *context;

	/* Normalised username (cache key); NULL for an invalid one. */
	char *username;
	char *password; /* NUL-terminated copy; wiped at the end */
	size_t password_len;

	/* The account as read before hashing; known == false means the
	   dummy hash stands in for it. */
	bool known;
	bool disabled;
	uint64_t account_id;
	uint64_t version;
	char *address;
	char *hashes[1 + VAULT_AUTH_MAX_APP_PASSWORDS];
	unsigned int hash_count;

	/* Zero-access: unwrap with the password after a match of hashes[0]
	   (the account's own password; there are no others then). */
	bool zero_access;
	bool want_unlock;
	uint8_t public_key[ACCOUNT_PUBLIC_KEY_LEN];
	uint8_t pwrapped[ACCOUNT_PASSWORD_WRAPPED_LEN];

	/* Written by the worker thread, read by done(). */
	bool matched;
	bool unlocked, unlock_failed;
	struct account_keys *keys; /* sodium_malloc'ed when unlocked */
	unsigned int verified;
};

struct vault_auth *vault_auth_create(struct ioloop *ioloop,
				     struct directory *dir,
				     const struct vault_auth_settings *set)
{
	struct vault_auth *auth = i_new(struct vault_auth, 1);

	auth->ioloop = ioloop;
	auth->dir = dir;
	auth->threads = set->max_hashes > 0 ? set->max_hashes : 1;
	auth->max_waiting = set->max_waiting > 0
				    ? set->max_waiting
				    : VAULT_AUTH_DEFAULT_MAX_WAITING;
	auth->cache = auth_cache_create(set->cache_capacity > 0
						? set->cache_capacity
						: AUTH_CACHE_DEFAULT_CAPACITY,
					set->cache_ttl_secs);
	/* Computed here, in the loop thread, before any request: the first
	   unknown user must not cost two hashes. */
	auth->dummy_hash = password_dummy_hash();
	auth->workers = worker_pool_create(ioloop, auth->threads, "vault-auth");
	return auth;
}

void vault_auth_set_keyring(struct vault_auth *auth,
			    struct vault_keyring *keyring)
{
	auth->keyring = keyring;
}

void vault_auth_destroy(struct vault_auth **_auth)
{
	struct vault_auth *auth = *_auth;

	*_auth = NULL;
	if (auth == NULL)
		return;
	/* Drains: every done() runs, so every request is freed. */
	worker_pool_destroy(&auth->workers);
	i_assert(auth->in_flight == 0);
	auth_cache_destroy(&auth->cache);
	i_free(auth);
}

unsigned int vault_auth_in_flight(const struct vault_auth *auth)
{
	return auth->in_flight;
}

uint64_t vault_auth_hash_count(const struct vault_auth *auth)
{
	return auth->hash_count;
}

static void vault_auth_reply(vault_auth_callback_t *callback, void *context,
			     enum auth_result result, uint64_t account_id,
			     const char *address, bool unlocked)
{
	struct vault_auth_reply reply = {
		.result = result,
		.account_id = account_id,
		.address = address,
		.unlocked = unlocked && result == AUTH_RESULT_OK,
	};

	if (result != AUTH_RESULT_OK && result != AUTH_RESULT_DISABLED) {
		reply.account_id = 0;
		reply.address = "";
	}
	callback(&reply, context);
}

static void vault_auth_request_free(struct vault_auth_request *req)
{
	if (req->password != NULL) {
		safe_memset0(req->password, req->password_len);
		i_free(req->password);
	}
	if (req->keys != NULL)
		sodium_free(req->keys); /* wipes */
	safe_memset0(req->pwrapped, sizeof(req->pwrapped));
	for (unsigned int i = 0; i < req->hash_count; i++)
		i_free(req->hashes[i]);
	i_free(req->username);
	i_free(req->address);
	i_free(req);
}

/* Worker thread: touches only the request. */
static void vault_auth_work(void *context)
{
	struct vault_auth_request *req = context;

	for (unsigned int i = 0; i < req->hash_count; i++) {
		req->verified++;
		if (password_verify(req->hashes[i], req->password,
				    req->password_len)) {
			req->matched = req->known;
			break;
		}
	}
	if (!req->matched || !req->want_unlock)
		return;
	req->keys = sodium_malloc(sizeof(*req->keys));
	if (req->keys == NULL ||
	    account_keys_unwrap_password(req->password, req->password_len,
					 req->account_id, req->public_key,
					 req->pwrapped, sizeof(req->pwrapped),
					 req->keys) < 0)
		req->unlock_failed = true;
	else
		req->unlocked = true;
}

/* A zero-access login succeeded: keep the keys it unwrapped, or refresh
   the time of the ones kept. */
static void vault_auth_keep_keys(struct vault_auth *auth,
				 struct vault_auth_request *req)
{
	uint64_t now = ioloop_now_ms(auth->ioloop);

	if (!req->zero_access || auth->keyring == NULL)
		return;
	if (req->unlocked) {
		vault_keyring_put(auth->keyring, req->account_id, req->keys,
				  now);
	} else if (req->unlock_failed) {
		/* The hash matched but the keys did not open: a damaged
		   row. The login stands; the mail stays sealed. */
		log_error(NULL, "auth.unlock_failed", "account=%llu",
			  (unsigned long long)req->account_id);
	} else {
		(void)vault_keyring_touch(auth->keyring, req->account_id, now);
	}
}

static void vault_auth_done(void *context)
{
	struct vault_auth_request *req = context;
	struct vault_auth *auth = req->auth;
	enum auth_result result = AUTH_RESULT_FAILED;

	i_assert(auth->in_flight > 0);
	auth->in_flight--;
	auth->hash_count += req->verified;

	if (req->matched) {
		i_assert(req->known && req->username != NULL);
		if (req->disabled)
			result = AUTH_RESULT_DISABLED;
		else {
			result = AUTH_RESULT_OK;
			auth_cache_insert(auth->cache, req->username,
					  req->password, req->password_len,
					  req->account_id, req->version,
					  ioloop_now_ms(auth->ioloop));
			vault_auth_keep_keys(auth, req);
		}
	}
	/* Wipe the password before handing control to the caller. */
	safe_memset0(req->password, req->password_len);
	if (req->callback != NULL) {
		vault_auth_reply(req->callback, req->context, result,
				 req->account_id,
				 req->address != NULL ? req->address : "",
				 req->unlocked);
	}
	vault_auth_request_free(req);
	/* An aborted request has no callback to tell its owner that the
	   last hash is done (a stopping vault waits for exactly that). */
	if (auth->in_flight == 0 && auth->idle != NULL)
		auth->idle(auth->idle_context);
}

void vault_auth_set_idle_callback(struct vault_auth *auth,
				  vault_auth_idle_callback_t *callback,
				  void *context)
{
	auth->idle = callback;
	auth->idle_context = context;
}

/* Returns 1 when the cache answered (account and address filled), 0 to go
   on with hashing, -1 on a database error. */
static int vault_auth_cache_check(struct vault_auth *auth, const char *username,
				  const void *password, size_t password_len,
				  struct directory_account *account_r)
{
	uint64_t account_id, version;
	const char *error;
	int ret;

	if (!auth_cache_lookup(auth->cache, username, password, password_len,
			       ioloop_now_ms(auth->ioloop), &account_id,
			       &version))
		return 0;
	ret = directory_account_lookup(auth->dir, username, account_r, &error);
	if (ret < 0) {
		log_error(NULL, "auth.db_error", "error=%s",
			  log_value(0, error));
		return -1;
	}
	if (ret > 0 && account_r->id == account_id &&
	    account_r->credential_version == version && !account_r->disabled) {
		if (!account_r->zero_access)
			return 1;
		/* The keys must be unlocked too, or the login must unwrap
		   them: hash as if there were no cache. */
		if (auth->keyring != NULL &&
		    vault_keyring_touch(auth->keyring, account_id,
					ioloop_now_ms(auth->ioloop)))
			return 1;
		return 0;
	}
	/* Deleted, re-created, disabled, or the password changed since. */
	auth_cache_remove(auth->cache, username, password, password_len);
	return 0;
}

/* Fills req from the directory. Returns 0, or -1 on a database error. */
static int vault_auth_load_account(struct vault_auth *auth,
				   struct vault_auth_request *req,
				   const struct directory_account *account)
{
	const char *const *app_hashes;
	const char *error;

	req->known = true;
	req->disabled = account->disabled;
	req->account_id = account->id;
	req->version = account->credential_version;
	req->address = i_strdup(account->address);
	req->hashes[req->hash_count++] = i_strdup(account->password_hash);
	if (account->zero_access) {
		/* App passwords cannot unwrap the keys: never tried. */
		req->zero_access = true;
		req->want_unlock =
			!account->disabled && auth->keyring != NULL &&
			!vault_keyring_get(auth->keyring, account->id,
					   ioloop_now_ms(auth->ioloop), NULL);
		memcpy(req->public_key, account->public_key,
		       sizeof(req->public_key));
		memcpy(req->pwrapped, account->password_wrapped_keys,
		       sizeof(req->pwrapped));
		return 0;
	}
	if (directory_app_password_hashes(auth->dir, account->id, &app_hashes,
					  &error) < 0) {
		log_error(NULL, "auth.db_error", "error=%s",
			  log_value(0, error));
		return -1;
	}
	for (unsigned int i = 0;
	     app_hashes[i] != NULL && i < VAULT_AUTH_MAX_APP_PASSWORDS; i++)
		req->hashes[req->hash_count++] = i_strdup(app_hashes[i]);
	return 0;
}

struct vault_auth_request *vault_auth_begin(
	struct vault_auth *auth, const char *username, const void *password,
	size_t password_len, vault_auth_callback_t *callback, void *context)
{
	struct directory_account account;
	struct vault_auth_request *req;
	pool_t dir_pool = directory_pool(auth->dir);
	pool_t scratch;
	const char *normalized, *error;
	int ret;

	/* Bounded before anything else is done with it; NUL is refused
	   because the password is handed on as a C string too. */
	if (password_len == 0 || password_len > PASSWORD_MAX_LEN ||
	    memchr(password, '\0', password_len) != NULL) {
		vault_auth_reply(callback, context, AUTH_RESULT_FAILED, 0, "",
				 false);
		return NULL;
	}

	scratch = pool_create("vault-auth", 256);
	normalized =
		mail_address_normalize(scratch, username, NULL, NULL, &error);
	pool_clear(dir_pool);
	if (normalized != NULL) {
		ret = vault_auth_cache_check(auth, normalized, password,
					     password_len, &account);
		if (ret != 0) {
			if (ret > 0)
				vault_auth_reply(callback, context,
						 AUTH_RESULT_OK, account.id,
						 account.address, false);
			else
				vault_auth_reply(callback, context,
						 AUTH_RESULT_TEMPFAIL, 0, "",
						 false);
			pool_clear(dir_pool);
			pool_unref(&scratch);
			return NULL;
		}
	}

	if (auth->in_flight >= auth->threads + auth->max_waiting) {
		log_warning(NULL, "auth.overload", "in_flight=%u",
			    auth->in_flight);
		vault_auth_reply(callback, context, AUTH_RESULT_TEMPFAIL, 0, "",
				 false);
		pool_unref(&scratch);
		return NULL;
	}

	req = i_new(struct vault_auth_request, 1);
	req->auth = auth;
	req->callback = callback;
	req->context = context;
	req->username = i_strdup(normalized);
	req->password = i_malloc(i_size_add(password_len, 1));
	memcpy(req->password, password, password_len);
	req->password_len = password_len;
	pool_unref(&scratch);

	ret = normalized == NULL
		      ? 0
		      : directory_account_lookup(auth->dir, req->username,
						 &account, &error);
	if (ret < 0) {
		log_error(NULL, "auth.db_error", "error=%s",
			  log_value(0, error));
	} else if (ret > 0) {
		ret = vault_auth_load_account(auth, req, &account);
	} else {
		/* Unknown or invalid user: the same work as a wrong
		   password, and the same answer. */
		req->hashes[req->hash_count++] = i_strdup(auth->dummy_hash);
	}
	pool_clear(dir_pool);
	if (ret < 0) {
		vault_auth_reply(callback, context, AUTH_RESULT_TEMPFAIL, 0, "",
				 false);
		vault_auth_request_free(req);
		return NULL;
	}

	auth->in_flight++;
	worker_pool_submit(auth->workers, vault_auth_work, vault_auth_done,
			   req);
	return req;
}

void vault_auth_request_abort(struct vault_auth_request **_req)
{
	struct vault_auth_request *req = *_req;

	*_req = NULL;
	if (req == NULL)
		return;
	/* The worker may be hashing right now; done() frees it. */
	req->callback = NULL;
	req->context = NULL;
}
