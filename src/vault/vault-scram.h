#ifndef MARMOT_VAULT_SCRAM_H
#define MARMOT_VAULT_SCRAM_H
/* SCRAM-SHA-256 (RFC 5802, RFC 7677) in the vault, apart from the IPC so
   that it can be tested on its own. The front relays the client's
   messages (IPC_VAULT_SCRAM_START, IPC_VAULT_SCRAM_FINISH); this module
   holds the sessions between the two steps:

     start:  the client-first-message is parsed (lib-sasl/scram.h); the
	     username is normalised (mail_address_normalize) and looked up
	     (directory_scram_lookup). The server-first-message carries the
	     account's salt and iteration count and a fresh server nonce.
	     A user without SCRAM secrets — unknown, invalid, an account
	     whose password was set before directory schema 3, or a
	     zero-access account (which never has them) — gets a made-up
	     salt: HMAC-SHA-256 of the normalised name under the key given
	     at creation, so it is stable (the vault derives that key from
	     the master key) and such users cannot be told from real ones.
     finish: the client-final-message is parsed; c= must be the
	     client-first's gs2-header and r= the full nonce (RFC 5802 5.1);
	     the proof is checked against every StoredKey of the account
	     (its password, then its app passwords; all checked, in constant
	     time each). On a match the server-final-message "v=..." is
	     built with that credential's ServerKey. The account is read
	     again: deleted, re-created, or a credential changed since start
	     (credential_version) fails; a disabled account gives
	     AUTH_RESULT_DISABLED, and only after a correct proof.

   Zero-access accounts cannot use SCRAM: the vault never sees their
   password, so SCRAM could authenticate but could not unlock their keys
   (doc/zero-access.md). They look like unknown users at start; finish
   fails with reason "zero_access" in the log (the client sees a plain
   authentication failure and should use PLAIN or LOGIN).

   Online guessing: a wrong SCRAM proof costs the vault a few HMACs, not
   the argon2id that paces PLAIN guesses, so failed finishes are counted
   per remote IP and per username (vault-throttle.h): once the address
   is over its limit, start answers AUTH_RESULT_TEMPFAIL (reason
   "too_many_failures") until the window has passed. Alone, the module
   keeps its own account (max_failures per failure_window; 20 per 5
   minutes by default); the vault gives it the account PLAIN uses
   (vault_scram_set_throttle()), so that guesses through either
   mechanism count against both.

   Sessions are single-use, owned by the connection that started them
   (another connection cannot finish them), expire after the TTL and are
   bounded in number; when full (after dropping expired ones) start
   answers AUTH_RESULT_TEMPFAIL. The work per step is a few HMACs, so it
   runs in the loop thread; there is no credential cache (nothing to
   save) and no worker pool.

   Every function runs in the loop thread of the ioloop given at
   creation; the directory is used from that thread only. */

#include "lib.h"
#include "buf.h"
#include "ipc.h"

struct ioloop;
struct directory;
struct vault_scram;
struct vault_throttle;

#define VAULT_SCRAM_DEFAULT_MAX_SESSIONS 1024
#define VAULT_SCRAM_DEFAULT_TTL_MSECS 60000
#define VAULT_SCRAM_KEY_LEN 32
#define VAULT_SCRAM_DEFAULT_MAX_FAILURES 20
#define VAULT_SCRAM_DEFAULT_FAILURE_WINDOW_MSECS (5 * 60 * 1000)

struct vault_scram_settings {
	unsigned int max_sessions; /* 0 = VAULT_SCRAM_DEFAULT_MAX_SESSIONS */
	unsigned int ttl_msecs; /* 0 = VAULT_SCRAM_DEFAULT_TTL_MSECS */
	/* 0 = VAULT_SCRAM_DEFAULT_MAX_FAILURES */
	unsigned int max_failures;
	/* 0 = VAULT_SCRAM_DEFAULT_FAILURE_WINDOW_MSECS */
	unsigned int failure_window_msecs;
};

struct vault_scram_result {
	enum auth_result result;
	/* Set for AUTH_RESULT_OK and AUTH_RESULT_DISABLED, else 0 / "". */
	uint64_t account_id;
	const char *address; /* canonical; valid until the next call */
	/* The username the client gave (normalised when valid), and the
	   service and remote IP given at start, for logs; valid until the
	   next call. */
	const char *username;
	const char *service;
	const char *ip;
	/* Why it failed, for logs ("invalid-proof", "unknown_user",
	   "zero_access", "no_secret", "expired", "changed", a RFC 5802
	   server-error value for bad syntax, ...); NULL on success. */
	const char *reason;
};

/* dir stays owned by the caller and must outlive the vault_scram.
   fake_salt_key makes the salts of users without SCRAM secrets. */
struct vault_scram *vault_scram_create(
	struct ioloop *ioloop, struct directory *dir,
	const struct vault_scram_settings *set,
	const uint8_t fake_salt_key[VAULT_SCRAM_KEY_LEN]);
/* Counts failures in throttle (owned by the caller, must outlive the
   vault_scram) instead of the module's own account; NULL goes back to
   the own one. */
void vault_scram_set_throttle(struct vault_scram *scram,
			      struct vault_throttle *throttle);
/* Wipes and frees every session. Sets *scram to NULL; NULL is fine. */
void vault_scram_destroy(struct vault_scram **scram);

/* Step 1. AUTH_RESULT_OK: *session_id_r is set and the
   server-first-message appended to server_first. AUTH_RESULT_FAILED: the
   client-first-message is malformed or asks for channel binding
   (result_r->reason says which). AUTH_RESULT_TEMPFAIL: too many sessions
   or a database error. owner identifies the connection (any pointer);
   service and ip are kept for the logs of finish. */
enum auth_result vault_scram_start(struct vault_scram *scram, void *owner,
				   const char *service, const char *ip,
				   const char *client_first,
				   uint32_t *session_id_r,
				   struct buf *server_first,
				   struct vault_scram_result *result_r);
/* Step 2: ends the session whatever the outcome. On AUTH_RESULT_OK the
   server-final-message is appended to server_final. An unknown, expired
   or foreign session is AUTH_RESULT_FAILED. */
void vault_scram_finish(struct vault_scram *scram, void *owner,
			uint32_t session_id, const char *client_final,
			struct buf *server_final,
			struct vault_scram_result *result_r);
/* Drops owner's sessions (its connection closed). */
void vault_scram_forget_owner(struct vault_scram *scram, void *owner);
/* Live sessions (expired ones may still count until the next start). */
unsigned int vault_scram_session_count(const struct vault_scram *scram);

#endif
