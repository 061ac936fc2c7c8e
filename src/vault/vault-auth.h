#ifndef MARMOT_VAULT_AUTH_H
#define MARMOT_VAULT_AUTH_H
/* Password verification in the vault, apart from the IPC so that it can be
   tested on its own. One request runs:

     1. the password must be 1..PASSWORD_MAX_LEN bytes without NUL, else
	AUTH_RESULT_FAILED at once;
     2. the username is normalised (mail_address_normalize); an invalid one
	is treated as an unknown user;
     3. the credential cache (auth-cache.h): a hit whose account still
	exists with the same id, is not disabled, and has the cached
	credential_version answers AUTH_RESULT_OK without hashing; a stale
	hit is removed;
     4. otherwise the account and its app password hashes are read in the
	loop thread, and argon2id runs on a worker pool of max_hashes
	threads: the account's hash first, then each app password hash (at
	most VAULT_AUTH_MAX_APP_PASSWORDS). An unknown user is verified
	against password_dummy_hash(), so its reply and cost match a wrong
	password. When max_waiting requests already wait for a thread, the
	reply is AUTH_RESULT_TEMPFAIL at once; a database error also gives
	AUTH_RESULT_TEMPFAIL;
     5. a match is cached (if cache_ttl_secs > 0) and answers
	AUTH_RESULT_OK, or AUTH_RESULT_DISABLED for a disabled account.

   Zero-access accounts (doc/zero-access.md): only the account's own
   password can log in; app passwords are never tried (they cannot unwrap
   the keys, and the directory refuses to create them). When the password
   matches, the same worker job unwraps the keys with it (one more
   argon2id) unless the keyring (vault_auth_set_keyring) already holds
   them; they go into the keyring and the reply says unlocked, so that the
   vault merges the waiting spool at once. A cache hit counts only while
   the keys are in the keyring (it then refreshes their time); otherwise
   the request is hashed and unwrapped as if there were no cache. A
   disabled account is never unlocked.

   Every function runs in the loop thread of the ioloop given at creation;
   the directory is used from that thread only. */

#include "lib.h"
#include "ipc.h"

struct ioloop;
struct directory;
struct vault_keyring;
struct vault_auth;
struct vault_auth_request;

#define VAULT_AUTH_MAX_APP_PASSWORDS 16
#define VAULT_AUTH_DEFAULT_MAX_WAITING 256

struct vault_auth_settings {
	unsigned int max_hashes; /* worker threads; 0 is taken as 1 */
	unsigned int max_waiting; /* 0 = VAULT_AUTH_DEFAULT_MAX_WAITING */
	unsigned int cache_ttl_secs; /* 0 disables the cache */
	unsigned int cache_capacity; /* 0 = AUTH_CACHE_DEFAULT_CAPACITY */
};

struct vault_auth_reply {
	enum auth_result result;
	/* Set for AUTH_RESULT_OK and AUTH_RESULT_DISABLED, else 0 / "". */
	uint64_t account_id;
	const char *address; /* canonical; valid during the callback only */
	/* A zero-access account's keys were put in the keyring just now. */
	bool unlocked;
};

typedef void vault_auth_callback_t(const struct vault_auth_reply *reply,
				   void *context);

/* dir stays owned by the caller and must outlive the vault_auth. Computes
   password_dummy_hash() now (one argon2id), so the first unknown user does
   not pay for it. */
struct vault_auth *vault_auth_create(struct ioloop *ioloop,
				     struct directory *dir,
				     const struct vault_auth_settings *set);
/* Where unlocked zero-access keys go (loop thread only; must outlive the
   vault_auth). Without one, zero-access logins succeed but unlock
   nothing. */
void vault_auth_set_keyring(struct vault_auth *auth,
			    struct vault_keyring *keyring);
/* Waits for the requests in flight; their callbacks are called (unless
   aborted) before this returns. Sets *auth to NULL; NULL is fine. */
void vault_auth_destroy(struct vault_auth **auth);

/* Starts verifying username and password (the bytes are copied, and the
   copy is wiped when the request ends). callback is called exactly once,
   unless the request is aborted. When the answer is known at once (bad
   password length, cache hit, overload, database error) the callback runs
   before this returns and NULL is returned; otherwise the request handle
   is returned and the callback runs later from the loop; the handle is
   invalid once the callback has run. */
struct vault_auth_request *vault_auth_begin(
	struct vault_auth *auth, const char *username, const void *password,
	size_t password_len, vault_auth_callback_t *callback, void *context);
/* The callback will not be called (the client went away); the hashing in
   progress still finishes. Sets *req to NULL; NULL is fine. */
void vault_auth_request_abort(struct vault_auth_request **req);

/* Requests submitted to the worker pool and not yet finished. */
unsigned int vault_auth_in_flight(const struct vault_auth *auth);
/* callback runs from the loop each time the last request in flight
   finishes, aborted ones included (after any reply callback). */
typedef void vault_auth_idle_callback_t(void *context);
void vault_auth_set_idle_callback(struct vault_auth *auth,
				  vault_auth_idle_callback_t *callback,
				  void *context);
/* argon2id verifications done so far (for tests and statistics). */
uint64_t vault_auth_hash_count(const struct vault_auth *auth);

#endif
