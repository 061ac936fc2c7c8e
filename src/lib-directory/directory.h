#ifndef MARMOT_DIRECTORY_H
#define MARMOT_DIRECTORY_H
/* directory.db: domains, accounts, aliases, app passwords, quotas and the
   disabled flag (ARCHITECTURE.md 3). Plain SQLite (WAL, synchronous=FULL,
   foreign keys on, trusted_schema off, defensive); nothing secret is in it
   unwrapped: passwords are argon2id hashes, account secret keys are
   wrapped under the master key (account-keys.h).

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
#include "account-keys.h"

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
	uint8_t wrapped_keys[ACCOUNT_WRAPPED_LEN];
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
int directory_account_passwd(struct directory *dir, const char *address,
			     const char *password, const char **error_r);
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
   label. Returns the generated password in *password_r (pool memory). */
int directory_app_password_add(struct directory *dir, const char *address,
			       const char *label, const char **password_r,
			       const char **error_r);
int directory_app_password_del(struct directory *dir, const char *address,
			       const char *label, const char **error_r);
/* NULL-terminated array of app password hashes of an account. */
int directory_app_password_hashes(struct directory *dir, uint64_t account_id,
				  const char *const **hashes_r,
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

#endif
