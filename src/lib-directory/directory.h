#ifndef MARMOT_DIRECTORY_H
#define MARMOT_DIRECTORY_H
/* directory.db: domains, accounts, aliases, app passwords, quotas and the
   disabled flag (ARCHITECTURE.md 3). Plain SQLite (WAL, synchronous=FULL,
   foreign keys on, trusted_schema off, defensive); nothing secret is in it
   unwrapped: passwords are argon2id hashes, account secret keys are
   wrapped under the master key, or, for zero-access accounts, only under
   the user's password (account-keys.h, doc/zero-access.md).

   Schema versions: 1 is the first; 2 adds accounts.zero_access and
   accounts.password_wrapped_keys (NULL for managed accounts; a
   zero-access row has an empty wrapped_keys). directory_open() migrates
   an older file in one transaction; rows written by version 1 stay
   managed accounts and work unchanged. 3 adds SCRAM-SHA-256 secrets
   (accounts.scram_salt, scram_iterations, scram_stored_key,
   scram_server_key; app_passwords.scram_stored_key, scram_server_key):
   they are computed whenever a password or app password is set
   (account add, passwd, app password add), so an account from an older
   version gets SCRAM once its password is set again, and an app password
   made before version 3 never has it (make a new one). Zero-access
   accounts never get SCRAM secrets (a PBKDF2 verifier is cheaper to
   attack than the argon2id that wraps their keys, and SCRAM could not
   unlock them anyway): they log in with PLAIN or LOGIN. 4 adds the
   dkim_keys table (DKIM signing keys, private halves wrapped under the
   master key by dkim-wrap.h); domains from before it have no keys until
   `marmot dkim generate` makes them.

   Every write runs in one transaction and is validated before anything is
   written, so a failed command leaves the database unchanged. Errors come
   back as a message fit for an operator ("user alice@example.org already
   exists"), allocated from the pool given to directory_open() and valid
   until the next call.

   Thread-safety: a struct directory is one SQLite connection; use one per
   thread (SQLite's own locking makes several processes safe).

   Address resolution (directory_resolve):
     1. an account with that exact address;
     2. an alias with that exact address;
     3. with sub-addressing (RFC 5233 style, separator '+'), "user+tag" is
	looked up again as "user" (steps 1 and 2);
     4. a catch-all alias "@domain";
     5. otherwise: unknown if the domain is ours, not-local if it is not.
   Alias targets may be local accounts, other aliases (resolved again, at
   most 8 levels, loops are an error) or remote addresses (forwarding). */

#include "lib.h"
#include "pool.h"
#include "account-keys.h"
#include "scram.h"

struct pool;
struct directory;

struct directory_account {
	uint64_t id;
	const char *address; /* normalised */
	const char *domain;
	const char *password_hash;
	uint64_t quota_bytes; /* 0 = unlimited */
	bool disabled;
	/* Bumped by every password or app-password change; the vault's
	   credential cache compares it to drop stale entries. */
	uint64_t credential_version;
	uint8_t public_key[ACCOUNT_PUBLIC_KEY_LEN];
	/* A zero-access account's keys open only with the user's password
	   (password_wrapped_keys; wrapped_keys is all zeros); a managed
	   account's open with the master key (wrapped_keys; the other is all
	   zeros). directory_account_keys() picks the right one. */
	bool zero_access;
	uint8_t wrapped_keys[ACCOUNT_WRAPPED_LEN];
	uint8_t password_wrapped_keys[ACCOUNT_PASSWORD_WRAPPED_LEN];
	int64_t created; /* unix time */
};

struct directory_alias {
	const char *address; /* "local@domain", or "@domain" for catch-all */
	const char *const *targets; /* NULL-terminated */
};

enum directory_resolve_result {
	DIRECTORY_RESOLVE_NOT_LOCAL, /* domain is not one of ours */
	DIRECTORY_RESOLVE_UNKNOWN, /* our domain, no such recipient */
	DIRECTORY_RESOLVE_OK,
	DIRECTORY_RESOLVE_ERROR, /* alias loop, database error */
};

struct directory_recipients {
	/* Local accounts (deduplicated) and remote forwarding targets. */
	uint64_t *account_ids;
	unsigned int account_count;
	const char **remote; /* normalised addresses */
	unsigned int remote_count;
};

/* Opens (and, unless readonly, creates and migrates) the database. */
struct directory *directory_open(const char *path, bool readonly,
				 const char **error_r);
void directory_close(struct directory **dir);
/* Pool for results and errors; cleared by the caller between uses. */
struct pool *directory_pool(struct directory *dir);

int directory_domain_add(struct directory *dir, const char *domain,
			 const char **error_r);
/* Refuses while accounts or aliases of the domain exist. */
int directory_domain_del(struct directory *dir, const char *domain,
			 const char **error_r);
/* Fills a NULL-terminated array of normalised domains. */
int directory_domain_list(struct directory *dir, const char *const **domains_r,
			  const char **error_r);
bool directory_domain_exists(struct directory *dir, const char *domain);

/* Creates the account: the domain must exist and the address must not be
   an account or alias already. Generates the key pair and data key, wraps
   them under master_key, hashes the password (argon2id). id_r may be NULL.
   Also creates DATA/accounts/<id>/ when data_dir is not NULL. */
int directory_account_add(struct directory *dir, const char *data_dir,
			  const uint8_t master_key[MASTER_KEY_LEN],
			  const char *address, const char *password,
			  uint64_t quota_bytes, uint64_t *id_r,
			  const char **error_r);
/* Creates a zero-access account: as directory_account_add(), but the keys
   are wrapped only under password (argon2id, account-keys.h), never under
   the master key, which is therefore not needed. Costs two argon2id, one
   of them while holding the write lock (the wrapping binds the new id). */
int directory_account_add_zero_access(struct directory *dir,
				      const char *data_dir, const char *address,
				      const char *password,
				      uint64_t quota_bytes, uint64_t *id_r,
				      const char **error_r);
/* Sets a managed account's password. Refused for a zero-access account:
   without the old password its keys could not be re-wrapped and all of
   its mail would become unreadable (use directory_account_rewrap). */
int directory_account_passwd(struct directory *dir, const char *address,
			     const char *password, const char **error_r);
/* Changes a zero-access account's password: unwraps the keys with
   old_password (a wrong one fails, nothing written), hashes new_password
   and re-wraps the same keys under it; no mail is re-encrypted. Refused
   for a managed account. Fails without writing if the keys were re-wrapped
   by someone else meanwhile. Costs three argon2id. */
int directory_account_rewrap(struct directory *dir, const char *address,
			     const char *old_password, const char *new_password,
			     const char **error_r);
/* Unwraps account's keys: a managed account's with master_key, a
   zero-access account's with password (the other may be NULL). Returns 0,
   or -1 when the needed secret is NULL or does not open them (wrong
   password, wrong master key, damaged row). A zero-access unwrap costs one
   argon2id. */
int directory_account_keys(const struct directory_account *account,
			   const uint8_t *master_key, const char *password,
			   size_t password_len, struct account_keys *keys_r);
int directory_account_set_quota(struct directory *dir, const char *address,
				uint64_t quota_bytes, const char **error_r);
/* Also bumps credential_version when the flag changes, so that cached
   credentials of a disabled account are dropped. */
int directory_account_set_disabled(struct directory *dir, const char *address,
				   bool disabled, const char **error_r);
/* Deletes the account row, its app passwords, and removes it from alias
   target lists (an alias left without targets is deleted). The mail
   directory is left for the operator (reported in the message): on
   success *error_r is set to an informational message saying so. */
int directory_account_del(struct directory *dir, const char *address,
			  const char **error_r);
/* Returns 1 and fills account_r, 0 if there is no such account, -1 on
   error. address need not be normalised. */
int directory_account_lookup(struct directory *dir, const char *address,
			     struct directory_account *account_r,
			     const char **error_r);
int directory_account_lookup_id(struct directory *dir, uint64_t id,
				struct directory_account *account_r,
				const char **error_r);
int directory_account_list(struct directory *dir, const char *domain,
			   struct directory_account **accounts_r,
			   unsigned int *count_r, const char **error_r);

/* App passwords: random, shown once; stored as argon2id hashes with a
   label. Returns the generated password in *password_r (pool memory).
   Refused for zero-access accounts: an app password cannot unwrap their
   keys (doc/zero-access.md). */
int directory_app_password_add(struct directory *dir, const char *address,
			       const char *label, const char **password_r,
			       const char **error_r);
int directory_app_password_del(struct directory *dir, const char *address,
			       const char *label, const char **error_r);
/* NULL-terminated array of app password hashes of an account. */
int directory_app_password_hashes(struct directory *dir, uint64_t account_id,
				  const char *const **hashes_r,
				  const char **error_r);

/* SCRAM-SHA-256 (RFC 5802 3): one salt and iteration count per account
   and a StoredKey/ServerKey pair per credential that has one: the
   account's password first (if set since schema 3), then app passwords,
   oldest first. */
struct directory_scram {
	uint8_t salt[SCRAM_SALT_LEN];
	unsigned int iterations;
	struct scram_secret *secrets; /* directory pool */
	unsigned int secret_count; /* may be 0 */
};
/* Returns 1 and fills scram_r, 0 if the account has no SCRAM salt (made
   before schema 3 and untouched since, zero-access, or no such account),
   -1 on error (also a damaged row). */
int directory_scram_lookup(struct directory *dir, uint64_t account_id,
			   struct directory_scram *scram_r,
			   const char **error_r);

/* targets: NULL-terminated. "@domain" makes a catch-all. Each target must
   be a valid address; local targets must exist. */
int directory_alias_add(struct directory *dir, const char *alias,
			const char *const *targets, const char **error_r);
/* Deletes the alias and its targets. Other aliases that name it as a
   target keep the name; resolution skips local targets that are neither
   an account nor an alias. */
int directory_alias_del(struct directory *dir, const char *alias,
			const char **error_r);
int directory_alias_list(struct directory *dir, const char *domain,
			 struct directory_alias **aliases_r,
			 unsigned int *count_r, const char **error_r);

/* recipients_r is filled from the directory pool. An address Marmot
   refuses (mail-address.h) is never local: UNKNOWN if its domain is one of
   ours, NOT_LOCAL otherwise, with the reason in *error_r. A local target
   that no longer exists is skipped; if nothing is left, UNKNOWN. */
enum directory_resolve_result directory_resolve(
	struct directory *dir, const char *address,
	struct directory_recipients *recipients_r, const char **error_r);

/* DKIM keys (schema 4). Each domain has signing keys, one per selector
   (RFC 6376 3.1), in one of these states:
     "pending"   made by `marmot dkim rotate`, to be published in DNS but
		 not yet used for signing;
     "active"    published and used for signing (an Ed25519 and an RSA
		 key per domain);
     "retiring"  replaced, no longer used for signing, still published so
		 that mail signed before the rotation still verifies, until
		 retire_after (unix time);
     "retired"   a retiring key past retire_after, reported so by
		 directory_dkim_key_list() until directory_dkim_key_expire()
		 deletes it; may be removed from DNS.
   The DNS records to publish are those of every key that is not
   "retired" (public_record is the TXT value, "v=DKIM1; k=...; p=...",
   at <selector>._domainkey.<domain>). The private half is stored only
   wrapped (dkim-wrap.h); these structs never carry it. */
struct directory_dkim_key {
	const char *domain, *selector, *algorithm, *public_record, *state;
	int64_t created, retire_after;
};

/* The keys of domain (NULL: of every domain), ordered by domain, then
   newest first, allocated from pool. A domain that is not ours is an
   error; one without keys gives count 0. */
int directory_dkim_key_list(struct directory *dir, const char *domain,
			    pool_t pool,
			    const struct directory_dkim_key **keys_r,
			    unsigned int *count_r, const char **error_r);

/* A key to add: algorithm "rsa" or "ed25519"; wrapped as made by
   dkim_wrap_key() for this domain and selector. */
struct directory_dkim_new_key {
	const char *selector, *algorithm, *public_record;
	const uint8_t *wrapped;
	size_t wrapped_len;
};
/* Adds keys to an existing domain in one transaction, in state "active"
   (a domain's first keys) or "pending" (a rotation). Refuses a selector
   the domain has already, an invalid one (RFC 6376 3.1: dot-separated
   sub-domains of letters, digits and '-', at most 63 bytes each), more
   than 8 keys per call, and "active" when the domain has active keys. */
int directory_dkim_key_add(struct directory *dir, const char *domain,
			   const struct directory_dkim_new_key *keys,
			   unsigned int count, const char *state,
			   const char **error_r);
/* Returns 1 if the domain has a key with this selector, 0 if not, -1. */
int directory_dkim_selector_exists(struct directory *dir, const char *domain,
				   const char *selector, const char **error_r);
/* Makes the domain's pending keys active and its active ones retiring
   until retire_after, in one transaction. Fails (changing nothing) when
   the domain has no pending key. *count_r: keys activated. */
int directory_dkim_key_activate(struct directory *dir, const char *domain,
				int64_t retire_after, unsigned int *count_r,
				const char **error_r);
/* Deletes the keys of domain (NULL: all domains) that were retiring and
   whose retire_after is <= now. *count_r: keys deleted. */
int directory_dkim_key_expire(struct directory *dir, const char *domain,
			      int64_t now, unsigned int *count_r,
			      const char **error_r);

/* A key the vault signs with: one of the domain's active keys. */
struct directory_dkim_signing_key {
	const char *selector, *algorithm;
	const uint8_t *wrapped; /* dkim-wrap.h */
	size_t wrapped_len;
};
/* The active keys of a normalised domain (count 0 when there are none, or
   the domain is not ours), from pool, Ed25519 first. */
int directory_dkim_signing_keys(
	struct directory *dir, const char *domain, pool_t pool,
	const struct directory_dkim_signing_key **keys_r, unsigned int *count_r,
	const char **error_r);

#endif
