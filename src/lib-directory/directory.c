/* directory.c - directory.db: domains, accounts, app passwords and aliases
   in one SQLite database, and recipient resolution for delivery. Owns the
   SQLite connection and a pool for results and operator-facing errors.
   Called by the admin CLI (every write), the vault (account lookups and
   authentication data) and the front end's SMTP side through the vault
   (directory_resolve). Security stance: every statement is prepared with
   bound parameters; every write is validated and then done in a single
   BEGIN IMMEDIATE transaction, so a failed command changes nothing; the
   database holds only argon2id hashes and wrapped keys, never a secret in
   the clear. */

#include "lib.h"
#include "pool.h"
#include "mail-address.h"
#include "password.h"
#include "directory.h"

#include <dirent.h>
#include <errno.h>
#include "scram.h"

#include <fcntl.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DIRECTORY_SCHEMA_VERSION 4
#define DIRECTORY_BUSY_TIMEOUT_MSECS 5000
/* RFC 7677 3: the iteration count SHOULD be at least 4096. Stored per
   account, so that a later release can raise it. */
#define DIRECTORY_SCRAM_ITERATIONS 4096
/* Alias chains deeper than this are refused at resolution time. */
#define DIRECTORY_ALIAS_MAX_DEPTH 8
/* Bound on account/alias lookups for one resolution (fan-out DoS). */
#define DIRECTORY_RESOLVE_MAX_LOOKUPS 1000
#define DIRECTORY_ALIAS_MAX_TARGETS 1000
#define DIRECTORY_LABEL_MAX_LEN 64
#define APP_PASSWORD_CHARS 24
#define APP_PASSWORD_GROUP 4

/* No 0/O, 1/l/I: app passwords are read off a screen and typed. */
static const char app_password_alphabet[] =
	"23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";

/* Version 1 as first released; directory_migrations bring it (or an old
   file) up to DIRECTORY_SCHEMA_VERSION. Never edited once released. */
static const char directory_schema[] =
	"CREATE TABLE domains ("
	" name TEXT PRIMARY KEY,"
	" created INTEGER);"
	"CREATE TABLE accounts ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" address TEXT UNIQUE NOT NULL,"
	" domain TEXT NOT NULL REFERENCES domains(name),"
	" password_hash TEXT NOT NULL,"
	" quota_bytes INTEGER NOT NULL DEFAULT 0,"
	" disabled INTEGER NOT NULL DEFAULT 0,"
	" credential_version INTEGER NOT NULL DEFAULT 1,"
	" public_key BLOB NOT NULL,"
	" wrapped_keys BLOB NOT NULL,"
	" created INTEGER NOT NULL);"
	"CREATE INDEX accounts_domain ON accounts(domain);"
	"CREATE TABLE app_passwords ("
	" account_id REFERENCES accounts ON DELETE CASCADE,"
	" label TEXT,"
	" hash TEXT,"
	" created INTEGER,"
	" UNIQUE(account_id, label));"
	"CREATE TABLE aliases ("
	" address TEXT PRIMARY KEY,"
	" domain TEXT NOT NULL REFERENCES domains(name),"
	" created INTEGER);"
	"CREATE INDEX aliases_domain ON aliases(domain);"
	"CREATE TABLE alias_targets ("
	" alias TEXT REFERENCES aliases(address) ON DELETE CASCADE,"
	" target TEXT,"
	" PRIMARY KEY(alias, target));"
	"CREATE INDEX alias_targets_target ON alias_targets(target);"
	"PRAGMA user_version = 1;";

/* directory_migrations[i] takes version i + 1 to i + 2: static DDL run in
   the migration's transaction. */
static const char *const directory_migrations[] = {
	/* 2: zero-access accounts. Their keys are wrapped under the user's
	   password, in a blob of another length than wrapped_keys, which
	   such a row leaves empty. */
	"ALTER TABLE accounts ADD COLUMN zero_access INTEGER NOT NULL "
	"DEFAULT 0;"
	"ALTER TABLE accounts ADD COLUMN password_wrapped_keys BLOB;"
	"PRAGMA user_version = 2;",
	/* 3: SCRAM-SHA-256 secrets (RFC 5802 3, RFC 7677). One salt and
	   iteration count per account, shared by the password and every app
	   password, so that the vault can send the server-first-message
	   before it knows which credential the client holds. NULL until a
	   password is set under version 3: older rows have none. */
	"ALTER TABLE accounts ADD COLUMN scram_salt BLOB;"
	"ALTER TABLE accounts ADD COLUMN scram_iterations INTEGER;"
	"ALTER TABLE accounts ADD COLUMN scram_stored_key BLOB;"
	"ALTER TABLE accounts ADD COLUMN scram_server_key BLOB;"
	"ALTER TABLE app_passwords ADD COLUMN scram_stored_key BLOB;"
	"ALTER TABLE app_passwords ADD COLUMN scram_server_key BLOB;"
	"PRAGMA user_version = 3;",
	/* 4: DKIM keys (RFC 6376 3.6.1 key records; dkim-wrap.h wraps the
	   private half). One row per selector; a domain's rows go with it. */
	"CREATE TABLE dkim_keys ("
	" domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,"
	" selector TEXT NOT NULL,"
	" algorithm TEXT NOT NULL CHECK (algorithm IN ('rsa', 'ed25519')),"
	" public_record TEXT NOT NULL,"
	" wrapped_private BLOB NOT NULL,"
	" created INTEGER NOT NULL,"
	" state TEXT NOT NULL"
	"  CHECK (state IN ('pending', 'active', 'retiring', 'retired')),"
	" retire_after INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (domain, selector));"
	"PRAGMA user_version = 4;",
};
_Static_assert(N_ELEMENTS(directory_migrations) + 1 == DIRECTORY_SCHEMA_VERSION,
	       "one migration per schema version");

#define ACCOUNT_COLUMNS                                               \
	"id, address, domain, password_hash, quota_bytes, disabled, " \
	"credential_version, public_key, wrapped_keys, created, "     \
	"zero_access, password_wrapped_keys"

struct directory {
	sqlite3 *db;
	pool_t pool;
	char *path;
	bool readonly;
};

static _Thread_local char open_error[512];

static const char *dir_errorf(struct directory *dir, const char *fmt, ...)
	ATTR_FORMAT(2, 3);
static const char *dir_errorf(struct directory *dir, const char *fmt, ...)
{
	va_list args;
	const char *msg;

	va_start(args, fmt);
	msg = p_strdup_vprintf(dir->pool, fmt, args);
	va_end(args);
	return msg;
}

static const char *dir_db_error(struct directory *dir)
{
	return dir_errorf(dir, "%s: %s", dir->path, sqlite3_errmsg(dir->db));
}

/* Input quoted in an error: printable ASCII kept, the rest '?', capped. */
static const char *dir_quote(struct directory *dir, const char *input)
{
	size_t len = input == NULL ? 0 : strnlen(input, 80);
	char *out = p_malloc(dir->pool, len + 4);

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)input[i];

		out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (input != NULL && input[len] != '\0')
		memcpy(out + len, "...", 3);
	return out;
}

/* Prepares sql and binds the arguments described by types: 's' text
   (const char *), 'i' integer (int64_t), 'b' blob (const void *, size_t).
   Returns NULL with *error_r on failure. */
static sqlite3_stmt *dir_vprepare(struct directory *dir, const char *sql,
				  const char **error_r, const char *types,
				  va_list args)
{
	sqlite3_stmt *stmt;
	int rc = SQLITE_OK, idx = 1;

	if (sqlite3_prepare_v2(dir->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		*error_r = dir_db_error(dir);
		return NULL;
	}
	for (const char *t = types; *t != '\0' && rc == SQLITE_OK; t++, idx++) {
		switch (*t) {
		case 's':
			rc = sqlite3_bind_text(stmt, idx,
					       va_arg(args, const char *), -1,
					       SQLITE_TRANSIENT);
			break;
		case 'i':
			rc = sqlite3_bind_int64(stmt, idx,
						va_arg(args, int64_t));
			break;
		case 'b': {
			const void *p = va_arg(args, const void *);
			size_t len = va_arg(args, size_t);

			rc = sqlite3_bind_blob64(stmt, idx, p, len,
						 SQLITE_TRANSIENT);
			break;
		}
		default:
			i_unreached();
		}
	}
	if (rc != SQLITE_OK) {
		*error_r = dir_db_error(dir);
		sqlite3_finalize(stmt);
		return NULL;
	}
	return stmt;
}

static sqlite3_stmt *dir_prepare(struct directory *dir, const char **error_r,
				 const char *sql, const char *types, ...)
{
	sqlite3_stmt *stmt;
	va_list args;

	va_start(args, types);
	stmt = dir_vprepare(dir, sql, error_r, types, args);
	va_end(args);
	return stmt;
}

/* Runs a statement that returns no rows. Returns the number of rows
   changed, or -1. */
static int dir_exec(struct directory *dir, const char **error_r,
		    const char *sql, const char *types, ...)
{
	sqlite3_stmt *stmt;
	va_list args;
	int rc;

	va_start(args, types);
	stmt = dir_vprepare(dir, sql, error_r, types, args);
	va_end(args);
	if (stmt == NULL)
		return -1;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE) {
		*error_r = dir_db_error(dir);
		sqlite3_finalize(stmt);
		return -1;
	}
	sqlite3_finalize(stmt);
	return sqlite3_changes(dir->db);
}

/* Runs a query for one integer. Returns 1 with *value_r, 0 if there was
   no row, -1 on error. value_r may be NULL. */
static int dir_query_int(struct directory *dir, int64_t *value_r,
			 const char **error_r, const char *sql,
			 const char *types, ...)
{
	sqlite3_stmt *stmt;
	va_list args;
	int rc;

	va_start(args, types);
	stmt = dir_vprepare(dir, sql, error_r, types, args);
	va_end(args);
	if (stmt == NULL)
		return -1;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		if (value_r != NULL)
			*value_r = sqlite3_column_int64(stmt, 0);
		sqlite3_finalize(stmt);
		return 1;
	}
	if (rc != SQLITE_DONE) {
		*error_r = dir_db_error(dir);
		sqlite3_finalize(stmt);
		return -1;
	}
	sqlite3_finalize(stmt);
	return 0;
}

static int dir_begin(struct directory *dir, const char **error_r)
{
	if (dir->readonly) {
		*error_r = dir_errorf(dir, "%s is open read-only", dir->path);
		return -1;
	}
	return dir_exec(dir, error_r, "BEGIN IMMEDIATE", "") < 0 ? -1 : 0;
}

static int dir_commit(struct directory *dir, const char **error_r)
{
	return dir_exec(dir, error_r, "COMMIT", "") < 0 ? -1 : 0;
}

static void dir_rollback(struct directory *dir)
{
	if (!sqlite3_get_autocommit(dir->db))
		(void)sqlite3_exec(dir->db, "ROLLBACK", NULL, NULL, NULL);
}

static const char *dir_normalize(struct directory *dir, const char *address,
				 char **local_r, char **domain_r,
				 const char **error_r)
{
	const char *reason;
	char *addr;

	addr = mail_address_normalize(dir->pool, address, local_r, domain_r,
				      &reason);
	if (addr == NULL) {
		*error_r = dir_errorf(dir, "invalid address '%s': %s",
				      dir_quote(dir, address), reason);
	}
	return addr;
}

static const char *dir_normalize_domain(struct directory *dir,
					const char *domain,
					const char **error_r)
{
	const char *reason;
	char *norm;

	norm = mail_domain_normalize(dir->pool, domain, &reason);
	if (norm == NULL) {
		*error_r = dir_errorf(dir, "invalid domain '%s': %s",
				      dir_quote(dir, domain), reason);
	}
	return norm;
}

static int dir_domain_exists(struct directory *dir, const char *domain,
			     const char **error_r)
{
	return dir_query_int(dir, NULL, error_r,
			     "SELECT 1 FROM domains WHERE name = ?", "s",
			     domain);
}

static int dir_require_domain(struct directory *dir, const char *domain,
			      const char **error_r)
{
	int ret = dir_domain_exists(dir, domain, error_r);

	if (ret == 0) {
		*error_r = dir_errorf(dir,
				      "domain %s does not exist (add it with: "
				      "marmot domain add %s)",
				      domain, domain);
		return -1;
	}
	return ret < 0 ? -1 : 0;
}

/* Returns 1 with *id_r, 0 if there is no such account, -1 on error. */
static int dir_account_id(struct directory *dir, const char *address,
			  int64_t *id_r, const char **error_r)
{
	return dir_query_int(dir, id_r, error_r,
			     "SELECT id FROM accounts WHERE address = ?", "s",
			     address);
}

static int dir_alias_exists(struct directory *dir, const char *address,
			    const char **error_r)
{
	return dir_query_int(dir, NULL, error_r,
			     "SELECT 1 FROM aliases WHERE address = ?", "s",
			     address);
}

static int dir_require_account(struct directory *dir, const char *address,
			       int64_t *id_r, const char **error_r)
{
	int ret = dir_account_id(dir, address, id_r, error_r);

	if (ret == 0) {
		*error_r = dir_errorf(dir, "user %s does not exist", address);
		return -1;
	}
	return ret < 0 ? -1 : 0;
}

/* The address is free for a new account or alias in domain. */
static int dir_check_new_address(struct directory *dir, const char *address,
				 const char *domain, const char **error_r)
{
	int ret;

	if (dir_require_domain(dir, domain, error_r) < 0)
		return -1;
	ret = dir_account_id(dir, address, NULL, error_r);
	if (ret != 0) {
		if (ret > 0) {
			*error_r = dir_errorf(dir, "user %s already exists",
					      address);
		}
		return -1;
	}
	ret = dir_alias_exists(dir, address, error_r);
	if (ret != 0) {
		if (ret > 0)
			*error_r = dir_errorf(dir, "%s is an alias", address);
		return -1;
	}
	return 0;
}

static int dir_check_password(struct directory *dir, const char *password,
			      const char **error_r)
{
	size_t len =
		password == NULL ? 0 : strnlen(password, PASSWORD_MAX_LEN + 1);

	if (len == 0) {
		*error_r = "empty password";
		return -1;
	}
	if (len > PASSWORD_MAX_LEN) {
		*error_r = dir_errorf(dir, "password is longer than %d bytes",
				      PASSWORD_MAX_LEN);
		return -1;
	}
	return 0;
}

static int dir_migrate(struct directory *dir, const char **error_r)
{
	int64_t version = 0;

	if (dir_query_int(dir, &version, error_r, "PRAGMA user_version", "") <
	    0)
		return -1;
	if (version == DIRECTORY_SCHEMA_VERSION)
		return 0;
	if (version > DIRECTORY_SCHEMA_VERSION) {
		*error_r = dir_errorf(dir,
				      "%s has schema version %lld, newer than "
				      "this Marmot supports (%d)",
				      dir->path, (long long)version,
				      DIRECTORY_SCHEMA_VERSION);
		return -1;
	}
	if (dir->readonly) {
		if (version > 0) {
			*error_r = dir_errorf(dir,
					      "%s has schema version %lld and "
					      "must be upgraded: open it "
					      "read-write once",
					      dir->path, (long long)version);
		} else {
			*error_r = dir_errorf(dir,
					      "%s is not a Marmot directory "
					      "(no schema; run: marmot init)",
					      dir->path);
		}
		return -1;
	}
	if (dir_begin(dir, error_r) < 0)
		return -1;
	/* Another process may have created it while we waited. */
	if (dir_query_int(dir, &version, error_r, "PRAGMA user_version", "") <
	    0)
		goto fail;
	if (version < 0 || version > DIRECTORY_SCHEMA_VERSION) {
		*error_r = dir_errorf(dir, "%s has unknown schema version %lld",
				      dir->path, (long long)version);
		goto fail;
	}
	/* Static DDL without parameters: version 1, then each step. */
	if (version == 0) {
		if (sqlite3_exec(dir->db, directory_schema, NULL, NULL, NULL) !=
		    SQLITE_OK) {
			*error_r = dir_db_error(dir);
			goto fail;
		}
		version = 1;
	}
	for (; version < DIRECTORY_SCHEMA_VERSION; version++) {
		if (sqlite3_exec(dir->db, directory_migrations[version - 1],
				 NULL, NULL, NULL) != SQLITE_OK) {
			*error_r = dir_db_error(dir);
			goto fail;
		}
	}
	if (dir_commit(dir, error_r) < 0)
		goto fail;
	return 0;
fail:
	dir_rollback(dir);
	return -1;
}

static int dir_configure(struct directory *dir, const char **error_r)
{
	static const char *const pragmas[] = {
		"PRAGMA foreign_keys = ON",
		"PRAGMA trusted_schema = OFF",
		"PRAGMA synchronous = FULL",
	};

	sqlite3_extended_result_codes(dir->db, 1);
	if (sqlite3_db_config(dir->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL) !=
		    SQLITE_OK ||
	    sqlite3_db_config(dir->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0,
			      NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(dir->db, DIRECTORY_BUSY_TIMEOUT_MSECS) !=
		    SQLITE_OK) {
		*error_r = dir_db_error(dir);
		return -1;
	}
	for (size_t i = 0; i < N_ELEMENTS(pragmas); i++) {
		if (dir_exec(dir, error_r, pragmas[i], "") < 0)
			return -1;
	}
	/* WAL is a property of the file: set by writers only. */
	if (!dir->readonly &&
	    dir_query_int(dir, NULL, error_r, "PRAGMA journal_mode = WAL", "") <
		    0)
		return -1;
	return 0;
}

struct directory *directory_open(const char *path, bool readonly,
				 const char **error_r)
{
	struct directory *dir;
	const char *error;
	struct stat st;
	int flags, fd;

	if (sodium_init() < 0)
		i_panic("sodium_init() failed");
	if (readonly) {
		if (stat(path, &st) < 0) {
			snprintf(open_error, sizeof(open_error),
				 "cannot open %s: %s", path, strerror(errno));
			*error_r = open_error;
			return NULL;
		}
		flags = SQLITE_OPEN_READONLY;
	} else {
		/* SQLite would create it 0644; it holds password hashes. */
		fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
		if (fd < 0) {
			snprintf(open_error, sizeof(open_error),
				 "cannot create %s: %s", path, strerror(errno));
			*error_r = open_error;
			return NULL;
		}
		close(fd);
		flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	}

	dir = i_new(struct directory, 1);
	dir->pool = pool_create("directory", 4096);
	dir->path = i_strdup(path);
	dir->readonly = readonly;
	if (sqlite3_open_v2(path, &dir->db, flags | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		snprintf(open_error, sizeof(open_error), "cannot open %s: %s",
			 path,
			 dir->db == NULL ? "out of memory"
					 : sqlite3_errmsg(dir->db));
		*error_r = open_error;
		directory_close(&dir);
		return NULL;
	}
	if (dir_configure(dir, &error) < 0 || dir_migrate(dir, &error) < 0) {
		snprintf(open_error, sizeof(open_error), "%s", error);
		*error_r = open_error;
		directory_close(&dir);
		return NULL;
	}
	return dir;
}

void directory_close(struct directory **_dir)
{
	struct directory *dir = *_dir;

	*_dir = NULL;
	if (dir == NULL)
		return;
	if (dir->db != NULL)
		sqlite3_close(dir->db);
	pool_unref(&dir->pool);
	i_free(dir->path);
	i_free(dir);
}

struct pool *directory_pool(struct directory *dir)
{
	return dir->pool;
}

/* Domains */

int directory_domain_add(struct directory *dir, const char *domain,
			 const char **error_r)
{
	const char *name;
	int ret;

	name = dir_normalize_domain(dir, domain, error_r);
	if (name == NULL || dir_begin(dir, error_r) < 0)
		return -1;
	ret = dir_domain_exists(dir, name, error_r);
	if (ret != 0) {
		if (ret > 0) {
			*error_r = dir_errorf(dir, "domain %s already exists",
					      name);
		}
		goto fail;
	}
	if (dir_exec(dir, error_r,
		     "INSERT INTO domains (name, created) VALUES (?, ?)", "si",
		     name, (int64_t)time(NULL)) < 0 ||
	    dir_commit(dir, error_r) < 0)
		goto fail;
	return 0;
fail:
	dir_rollback(dir);
	return -1;
}

int directory_domain_del(struct directory *dir, const char *domain,
			 const char **error_r)
{
	int64_t accounts = 0, aliases = 0;
	const char *name;
	int ret;

	name = dir_normalize_domain(dir, domain, error_r);
	if (name == NULL || dir_begin(dir, error_r) < 0)
		return -1;
	ret = dir_domain_exists(dir, name, error_r);
	if (ret <= 0) {
		if (ret == 0) {
			*error_r = dir_errorf(dir, "domain %s does not exist",
					      name);
		}
		goto fail;
	}
	if (dir_query_int(dir, &accounts, error_r,
			  "SELECT count(*) FROM accounts WHERE domain = ?", "s",
			  name) < 0 ||
	    dir_query_int(dir, &aliases, error_r,
			  "SELECT count(*) FROM aliases WHERE domain = ?", "s",
			  name) < 0)
		goto fail;
	if (accounts > 0 || aliases > 0) {
		const char *acc = p_strdup_printf(dir->pool, "%lld account%s",
						  (long long)accounts,
						  accounts == 1 ? "" : "s");
		const char *ali = p_strdup_printf(dir->pool, "%lld alias%s",
						  (long long)aliases,
						  aliases == 1 ? "" : "es");

		if (accounts > 0 && aliases > 0) {
			*error_r =
				dir_errorf(dir, "domain %s still has %s and %s",
					   name, acc, ali);
		} else {
			*error_r = dir_errorf(dir, "domain %s still has %s",
					      name, accounts > 0 ? acc : ali);
		}
		goto fail;
	}
	if (dir_exec(dir, error_r, "DELETE FROM domains WHERE name = ?", "s",
		     name) < 0 ||
	    dir_commit(dir, error_r) < 0)
		goto fail;
	return 0;
fail:
	dir_rollback(dir);
	return -1;
}

/* Collects the first text column of every row into a NULL-terminated
   array from the pool. */
static int dir_collect_strings(struct directory *dir, sqlite3_stmt *stmt,
			       const char *const **strings_r,
			       unsigned int *count_r, const char **error_r)
{
	const char **arr = NULL;
	unsigned int count = 0, alloc = 0;
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (count + 1 >= alloc) {
			const char **n;

			alloc = alloc == 0 ? 8 : alloc * 2;
			n = p_new(dir->pool, const char *, alloc);
			if (count > 0)
				memcpy(n, arr, sizeof(*arr) * count);
			arr = n;
		}
		arr[count++] = p_strdup(
			dir->pool, (const char *)sqlite3_column_text(stmt, 0));
	}
	if (rc != SQLITE_DONE) {
		*error_r = dir_db_error(dir);
		sqlite3_finalize(stmt);
		return -1;
	}
	sqlite3_finalize(stmt);
	if (arr == NULL)
		arr = p_new(dir->pool, const char *, 1);
	arr[count] = NULL;
	*strings_r = arr;
	if (count_r != NULL)
		*count_r = count;
	return 0;
}

int directory_domain_list(struct directory *dir, const char *const **domains_r,
			  const char **error_r)
{
	sqlite3_stmt *stmt;

	stmt = dir_prepare(dir, error_r,
			   "SELECT name FROM domains ORDER BY name", "");
	if (stmt == NULL)
		return -1;
	return dir_collect_strings(dir, stmt, domains_r, NULL, error_r);
}

bool directory_domain_exists(struct directory *dir, const char *domain)
{
	const char *name, *error;

	name = dir_normalize_domain(dir, domain, &error);
	return name != NULL && dir_domain_exists(dir, name, &error) > 0;
}

/* Accounts */

static int dir_make_account_dir(struct directory *dir, const char *data_dir,
				int64_t id, const char **path_r,
				const char **error_r)
{
	const char *accounts, *path;
	struct dirent *d;
	bool empty = true;
	DIR *dp;

	accounts = p_strdup_printf(dir->pool, "%s/accounts", data_dir);
	path = p_strdup_printf(dir->pool, "%s/%lld", accounts, (long long)id);
	if (mkdir(accounts, 0700) < 0 && errno != EEXIST) {
		*error_r = dir_errorf(dir, "cannot create %s: %s", accounts,
				      strerror(errno));
		return -1;
	}
	if (mkdir(path, 0700) == 0) {
		*path_r = path;
		return 1;
	}
	if (errno != EEXIST) {
		*error_r = dir_errorf(dir, "cannot create %s: %s", path,
				      strerror(errno));
		return -1;
	}
	/* Left over by a crash between mkdir and COMMIT, which also rolled
	   the id back: reuse it only if nothing was put in it. */
	dp = opendir(path);
	if (dp == NULL) {
		*error_r = dir_errorf(dir, "cannot open %s: %s", path,
				      strerror(errno));
		return -1;
	}
	while (empty && (d = readdir(dp)) != NULL) {
		if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
			empty = false;
	}
	closedir(dp);
	if (!empty) {
		*error_r = dir_errorf(dir,
				      "%s already exists and is not empty; "
				      "move it away first",
				      path);
		return -1;
	}
	*path_r = NULL;
	return 0;
}

/* SCRAM-SHA-256 secrets */

/* The account's SCRAM salt and iteration count: returns 1 when it has
   them, 0 when not (a row from before schema 3, or a zero-access
   account), -1 on error. */
static int dir_scram_salt(struct directory *dir, int64_t id,
			  uint8_t salt_r[SCRAM_SALT_LEN],
			  unsigned int *iterations_r, const char **error_r)
{
	sqlite3_stmt *stmt;
	int rc, ret = 0;

	stmt = dir_prepare(dir, error_r,
			   "SELECT scram_salt, scram_iterations FROM accounts "
			   "WHERE id = ?",
			   "i", id);
	if (stmt == NULL)
		return -1;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL) {
		int64_t iter = sqlite3_column_int64(stmt, 1);

		if (sqlite3_column_bytes(stmt, 0) != SCRAM_SALT_LEN ||
		    iter < SCRAM_MIN_ITERATIONS ||
		    iter > SCRAM_MAX_ITERATIONS) {
			*error_r = dir_errorf(dir,
					      "%s: account %lld has a damaged "
					      "SCRAM salt",
					      dir->path, (long long)id);
			ret = -1;
		} else {
			memcpy(salt_r, sqlite3_column_blob(stmt, 0),
			       SCRAM_SALT_LEN);
			*iterations_r = (unsigned int)iter;
			ret = 1;
		}
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		*error_r = dir_db_error(dir);
		ret = -1;
	}
	sqlite3_finalize(stmt);
	return ret;
}

/* Inside a write transaction: the account's salt, made (and stored) now if
   it has none yet. */
static int dir_scram_salt_get_or_make(struct directory *dir, int64_t id,
				      uint8_t salt_r[SCRAM_SALT_LEN],
				      unsigned int *iterations_r,
				      const char **error_r)
{
	int ret = dir_scram_salt(dir, id, salt_r, iterations_r, error_r);

	if (ret != 0)
		return ret < 0 ? -1 : 0;
	randombytes_buf(salt_r, SCRAM_SALT_LEN);
	*iterations_r = DIRECTORY_SCRAM_ITERATIONS;
	return dir_exec(dir, error_r,
			"UPDATE accounts SET scram_salt = ?, "
			"scram_iterations = ? WHERE id = ?",
			"bii", salt_r, (size_t)SCRAM_SALT_LEN,
			(int64_t)*iterations_r, id) < 0
		       ? -1
		       : 0;
}

/* The secrets of password under salt; false when SCRAM cannot use the
   password (scram_saltprep refuses it): the columns then stay NULL and
   that credential works with PLAIN and LOGIN only. */
static bool dir_scram_secret(const char *password,
			     const uint8_t salt[SCRAM_SALT_LEN],
			     unsigned int iterations,
			     struct scram_secret *secret_r)
{
	return scram_secret_from_password(span_from_cstr(password), salt,
					  SCRAM_SALT_LEN, iterations,
					  secret_r) == 0;
}

/* Stores (or, when the password cannot be used, clears) the account's own
   SCRAM secret, in the caller's write transaction. */
static int dir_scram_set_account(struct directory *dir, int64_t id,
				 const char *password, const char **error_r)
{
	uint8_t salt[SCRAM_SALT_LEN];
	unsigned int iterations;
	struct scram_secret secret;
	int ret;

	if (dir_scram_salt_get_or_make(dir, id, salt, &iterations, error_r) < 0)
		return -1;
	if (!dir_scram_secret(password, salt, iterations, &secret)) {
		return dir_exec(dir, error_r,
				"UPDATE accounts SET scram_stored_key = NULL, "
				"scram_server_key = NULL WHERE id = ?",
				"i", id) < 0
			       ? -1
			       : 0;
	}
	ret = dir_exec(dir, error_r,
		       "UPDATE accounts SET scram_stored_key = ?, "
		       "scram_server_key = ? WHERE id = ?",
		       "bbi", secret.stored_key, sizeof(secret.stored_key),
		       secret.server_key, sizeof(secret.server_key), id);
	sodium_memzero(&secret, sizeof(secret));
	return ret < 0 ? -1 : 0;
}

/* Adds a managed account (master_key != NULL) or a zero-access one. */
static int dir_account_add(struct directory *dir, const char *data_dir,
			   const uint8_t *master_key, const char *address,
			   const char *password, uint64_t quota_bytes,
			   uint64_t *id_r, const char **error_r)
{
	char hash[PASSWORD_HASH_MAX];
	uint8_t wrapped[ACCOUNT_WRAPPED_LEN];
	uint8_t pwrapped[ACCOUNT_PASSWORD_WRAPPED_LEN];
	struct account_keys keys;
	const char *addr, *created_dir = NULL;
	char *domain;
	int64_t id;

	addr = dir_normalize(dir, address, NULL, &domain, error_r);
	if (addr == NULL || dir_check_password(dir, password, error_r) < 0)
		return -1;
	if (quota_bytes > INT64_MAX) {
		*error_r = "quota too large";
		return -1;
	}
	if (dir->readonly) {
		*error_r = dir_errorf(dir, "%s is open read-only", dir->path);
		return -1;
	}
	/* Checked once before the expensive hash (and again under the
	   write lock, which is not held while hashing). */
	if (dir_check_new_address(dir, addr, domain, error_r) < 0)
		return -1;
	if (password_hash(password, strlen(password), hash) < 0) {
		*error_r = "cannot hash the password (out of memory)";
		return -1;
	}
	account_keys_generate(&keys);

	if (dir_begin(dir, error_r) < 0)
		goto fail;
	if (dir_check_new_address(dir, addr, domain, error_r) < 0)
		goto fail;
	if (dir_exec(dir, error_r,
		     "INSERT INTO accounts (address, domain, password_hash, "
		     "quota_bytes, public_key, wrapped_keys, created) "
		     "VALUES (?, ?, ?, ?, ?, zeroblob(?), ?)",
		     "sssibii", addr, domain, hash, (int64_t)quota_bytes,
		     keys.public_key, sizeof(keys.public_key),
		     (int64_t)ACCOUNT_WRAPPED_LEN, (int64_t)time(NULL)) < 0)
		goto fail;
	id = sqlite3_last_insert_rowid(dir->db);
	/* The wrapping binds the id, known only now. */
	if (master_key != NULL) {
		account_keys_wrap(master_key, (uint64_t)id, &keys, wrapped);
		if (dir_exec(
			    dir, error_r,
			    "UPDATE accounts SET wrapped_keys = ? WHERE id = ?",
			    "bi", wrapped, sizeof(wrapped), id) < 0)
			goto fail;
		/* Zero-access accounts get none: a SCRAM secret is a
		   PBKDF2 verifier of the password, far cheaper to attack
		   than the argon2id wrapping that protects their keys. */
		if (dir_scram_set_account(dir, id, password, error_r) < 0)
			goto fail;
	} else {
		if (account_keys_wrap_password(password, strlen(password),
					       (uint64_t)id, &keys,
					       pwrapped) < 0) {
			*error_r = "cannot wrap the keys (out of memory)";
			goto fail;
		}
		/* Never under the master key: wrapped_keys stays empty. */
		if (dir_exec(dir, error_r,
			     "UPDATE accounts SET wrapped_keys = X'', "
			     "zero_access = 1, password_wrapped_keys = ? "
			     "WHERE id = ?",
			     "bi", pwrapped, sizeof(pwrapped), id) < 0)
			goto fail;
	}
	if (data_dir != NULL &&
	    dir_make_account_dir(dir, data_dir, id, &created_dir, error_r) < 0)
		goto fail;
	if (dir_commit(dir, error_r) < 0) {
		if (created_dir != NULL)
			(void)rmdir(created_dir);
		goto fail;
	}
	account_keys_clear(&keys);
	if (id_r != NULL)
		*id_r = (uint64_t)id;
	return 0;
fail:
	dir_rollback(dir);
	account_keys_clear(&keys);
	return -1;
}

int directory_account_add(struct directory *dir, const char *data_dir,
			  const uint8_t master_key[MASTER_KEY_LEN],
			  const char *address, const char *password,
			  uint64_t quota_bytes, uint64_t *id_r,
			  const char **error_r)
{
	i_assert(master_key != NULL);
	return dir_account_add(dir, data_dir, master_key, address, password,
			       quota_bytes, id_r, error_r);
}

int directory_account_add_zero_access(struct directory *dir,
				      const char *data_dir, const char *address,
				      const char *password,
				      uint64_t quota_bytes, uint64_t *id_r,
				      const char **error_r)
{
	return dir_account_add(dir, data_dir, NULL, address, password,
			       quota_bytes, id_r, error_r);
}

static const char *dir_zero_access_reset_error(struct directory *dir,
					       const char *address)
{
	return dir_errorf(dir,
			  "%s is a zero-access account: its mail keys are "
			  "wrapped under the user's password, so setting a "
			  "password without the old one would make all of "
			  "its mail unreadable; change it with the old "
			  "password (marmot user passwd %s "
			  "--old-password-stdin)",
			  address, address);
}

/* Returns 1 if the account is zero-access, 0 if not, -1 (also when it
   does not exist). */
static int dir_account_is_zero_access(struct directory *dir,
				      const char *address, const char **error_r)
{
	int64_t za;
	int ret;

	ret = dir_query_int(dir, &za, error_r,
			    "SELECT zero_access FROM accounts WHERE "
			    "address = ?",
			    "s", address);
	if (ret == 0)
		*error_r = dir_errorf(dir, "user %s does not exist", address);
	return ret <= 0 ? -1 : (za != 0 ? 1 : 0);
}

int directory_account_passwd(struct directory *dir, const char *address,
			     const char *password, const char **error_r)
{
	char hash[PASSWORD_HASH_MAX];
	const char *addr;
	int64_t id;
	int ret;

	addr = dir_normalize(dir, address, NULL, NULL, error_r);
	if (addr == NULL || dir_check_password(dir, password, error_r) < 0)
		return -1;
	if (dir->readonly) {
		*error_r = dir_errorf(dir, "%s is open read-only", dir->path);
		return -1;
	}
	ret = dir_account_is_zero_access(dir, addr, error_r);
	if (ret != 0) {
		if (ret > 0)
			*error_r = dir_zero_access_reset_error(dir, addr);
		return -1;
	}
	if (password_hash(password, strlen(password), hash) < 0) {
		*error_r = "cannot hash the password (out of memory)";
		return -1;
	}
	if (dir_begin(dir, error_r) < 0)
		return -1;
	ret = dir_exec(dir, error_r,
		       "UPDATE accounts SET password_hash = ?, "
		       "credential_version = credential_version + 1 "
		       "WHERE address = ? AND zero_access = 0",
		       "ss", hash, addr);
	if (ret == 0)
		*error_r = dir_errorf(dir, "user %s does not exist", addr);
	if (ret > 0 && (dir_account_id(dir, addr, &id, error_r) <= 0 ||
			dir_scram_set_account(dir, id, password, error_r) < 0))
		ret = -1;
	if (ret <= 0 || dir_commit(dir, error_r) < 0) {
		dir_rollback(dir);
		return -1;
	}
	return 0;
}

int directory_account_rewrap(struct directory *dir, const char *address,
			     const char *old_password, const char *new_password,
			     const char **error_r)
{
	uint8_t old_wrapped[ACCOUNT_PASSWORD_WRAPPED_LEN];
	uint8_t new_wrapped[ACCOUNT_PASSWORD_WRAPPED_LEN];
	char hash[PASSWORD_HASH_MAX];
	struct directory_account account;
	struct account_keys keys;
	const char *addr;
	int ret;

	addr = dir_normalize(dir, address, NULL, NULL, error_r);
	if (addr == NULL ||
	    dir_check_password(dir, old_password, error_r) < 0 ||
	    dir_check_password(dir, new_password, error_r) < 0)
		return -1;
	if (dir->readonly) {
		*error_r = dir_errorf(dir, "%s is open read-only", dir->path);
		return -1;
	}
	ret = directory_account_lookup(dir, addr, &account, error_r);
	if (ret <= 0) {
		if (ret == 0)
			*error_r =
				dir_errorf(dir, "user %s does not exist", addr);
		return -1;
	}
	if (!account.zero_access) {
		*error_r = dir_errorf(dir, "%s is not a zero-access account",
				      addr);
		return -1;
	}
	if (account_keys_unwrap_password(
		    old_password, strlen(old_password), account.id,
		    account.public_key, account.password_wrapped_keys,
		    sizeof(account.password_wrapped_keys), &keys) < 0) {
		*error_r = dir_errorf(dir,
				      "the old password of %s is wrong "
				      "(nothing was changed)",
				      addr);
		return -1;
	}
	memcpy(old_wrapped, account.password_wrapped_keys, sizeof(old_wrapped));
	ret = account_keys_wrap_password(new_password, strlen(new_password),
					 account.id, &keys, new_wrapped);
	account_keys_clear(&keys);
	if (ret < 0 ||
	    password_hash(new_password, strlen(new_password), hash) < 0) {
		*error_r = "cannot hash the password (out of memory)";
		return -1;
	}
	if (dir_begin(dir, error_r) < 0)
		return -1;
	/* Only over the blob that was unwrapped: a concurrent change of the
	   password wins, and this one writes nothing. */
	ret = dir_exec(dir, error_r,
		       "UPDATE accounts SET password_hash = ?, "
		       "password_wrapped_keys = ?, "
		       "credential_version = credential_version + 1 "
		       "WHERE id = ? AND zero_access = 1 AND "
		       "password_wrapped_keys = ?",
		       "sbib", hash, new_wrapped, sizeof(new_wrapped),
		       (int64_t)account.id, old_wrapped, sizeof(old_wrapped));
	if (ret == 0) {
		*error_r = dir_errorf(dir,
				      "the password of %s was changed "
				      "meanwhile; nothing was changed",
				      addr);
	}
	if (ret <= 0 || dir_commit(dir, error_r) < 0) {
		dir_rollback(dir);
		return -1;
	}
	return 0;
}

int directory_account_keys(const struct directory_account *account,
			   const uint8_t *master_key, const char *password,
			   size_t password_len, struct account_keys *keys_r)
{
	if (account->zero_access) {
		if (password == NULL)
			return -1;
		return account_keys_unwrap_password(
			password, password_len, account->id,
			account->public_key, account->password_wrapped_keys,
			sizeof(account->password_wrapped_keys), keys_r);
	}
	if (master_key == NULL)
		return -1;
	return account_keys_unwrap(master_key, account->id, account->public_key,
				   account->wrapped_keys,
				   sizeof(account->wrapped_keys), keys_r);
}

/* Runs one UPDATE of the account row of address in a transaction. */
static int dir_account_update(struct directory *dir, const char *address,
			      const char *sql, int64_t value,
			      const char **error_r)
{
	const char *addr;
	int ret;

	addr = dir_normalize(dir, address, NULL, NULL, error_r);
	if (addr == NULL || dir_begin(dir, error_r) < 0)
		return -1;
	ret = dir_exec(dir, error_r, sql, "is", value, addr);
	if (ret == 0)
		*error_r = dir_errorf(dir, "user %s does not exist", addr);
	if (ret <= 0 || dir_commit(dir, error_r) < 0) {
		dir_rollback(dir);
		return -1;
	}
	return 0;
}

int directory_account_set_quota(struct directory *dir, const char *address,
				uint64_t quota_bytes, const char **error_r)
{
	if (quota_bytes > INT64_MAX) {
		*error_r = "quota too large";
		return -1;
	}
	return dir_account_update(
		dir, address,
		"UPDATE accounts SET quota_bytes = ? WHERE address = ?",
		(int64_t)quota_bytes, error_r);
}

int directory_account_set_disabled(struct directory *dir, const char *address,
				   bool disabled, const char **error_r)
{
	/* The version is bumped too, so that any credential cached for the
	   account is dropped when it is disabled. */
	return dir_account_update(
		dir, address,
		"UPDATE accounts SET credential_version = credential_version + "
		"(disabled != ?1), disabled = ?1 WHERE address = ?2",
		disabled ? 1 : 0, error_r);
}

/* Removes address from every alias's targets; aliases left without a
   target are deleted, and removed from other targets in turn. */
static int dir_remove_target(struct directory *dir, const char *address,
			     const char **error_r)
{
	const char *target = address;
	sqlite3_stmt *stmt;
	int rc;

	for (;;) {
		if (dir_exec(dir, error_r,
			     "DELETE FROM alias_targets WHERE target = ?", "s",
			     target) < 0)
			return -1;
		stmt = dir_prepare(dir, error_r,
				   "SELECT address FROM aliases a WHERE NOT "
				   "EXISTS (SELECT 1 FROM alias_targets t "
				   "WHERE t.alias = a.address) LIMIT 1",
				   "");
		if (stmt == NULL)
			return -1;
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_DONE) {
			sqlite3_finalize(stmt);
			return 0;
		}
		if (rc != SQLITE_ROW) {
			*error_r = dir_db_error(dir);
			sqlite3_finalize(stmt);
			return -1;
		}
		target = p_strdup(dir->pool,
				  (const char *)sqlite3_column_text(stmt, 0));
		sqlite3_finalize(stmt);
		/* Each round deletes an alias, so this terminates. */
		if (dir_exec(dir, error_r,
			     "DELETE FROM aliases WHERE address = ?", "s",
			     target) < 0)
			return -1;
	}
}

int directory_account_del(struct directory *dir, const char *address,
			  const char **error_r)
{
	const char *addr;
	int64_t id;

	addr = dir_normalize(dir, address, NULL, NULL, error_r);
	if (addr == NULL || dir_begin(dir, error_r) < 0)
		return -1;
	if (dir_require_account(dir, addr, &id, error_r) < 0 ||
	    dir_exec(dir, error_r, "DELETE FROM accounts WHERE id = ?", "i",
		     id) < 0 ||
	    dir_remove_target(dir, addr, error_r) < 0 ||
	    dir_commit(dir, error_r) < 0) {
		dir_rollback(dir);
		return -1;
	}
	*error_r = dir_errorf(dir,
			      "user %s deleted; its mail in accounts/%lld/ "
			      "was left in place",
			      addr, (long long)id);
	return 0;
}

static int dir_account_from_row(struct directory *dir, sqlite3_stmt *stmt,
				struct directory_account *account_r,
				const char **error_r)
{
	bool zero_access;

	memset(account_r, 0, sizeof(*account_r));
	account_r->id = (uint64_t)sqlite3_column_int64(stmt, 0);
	zero_access = sqlite3_column_int64(stmt, 10) != 0;
	if (sqlite3_column_bytes(stmt, 7) != ACCOUNT_PUBLIC_KEY_LEN ||
	    (zero_access
		     ? sqlite3_column_bytes(stmt, 8) != 0 ||
			       sqlite3_column_bytes(stmt, 11) !=
				       ACCOUNT_PASSWORD_WRAPPED_LEN
		     : sqlite3_column_bytes(stmt, 8) != ACCOUNT_WRAPPED_LEN)) {
		*error_r = dir_errorf(dir, "%s: account %llu has damaged keys",
				      dir->path,
				      (unsigned long long)account_r->id);
		return -1;
	}
	account_r->address =
		p_strdup(dir->pool, (const char *)sqlite3_column_text(stmt, 1));
	account_r->domain =
		p_strdup(dir->pool, (const char *)sqlite3_column_text(stmt, 2));
	account_r->password_hash =
		p_strdup(dir->pool, (const char *)sqlite3_column_text(stmt, 3));
	account_r->quota_bytes = (uint64_t)sqlite3_column_int64(stmt, 4);
	account_r->disabled = sqlite3_column_int64(stmt, 5) != 0;
	account_r->credential_version = (uint64_t)sqlite3_column_int64(stmt, 6);
	memcpy(account_r->public_key, sqlite3_column_blob(stmt, 7),
	       ACCOUNT_PUBLIC_KEY_LEN);
	account_r->zero_access = zero_access;
	if (zero_access) {
		memcpy(account_r->password_wrapped_keys,
		       sqlite3_column_blob(stmt, 11),
		       ACCOUNT_PASSWORD_WRAPPED_LEN);
	} else {
		memcpy(account_r->wrapped_keys, sqlite3_column_blob(stmt, 8),
		       ACCOUNT_WRAPPED_LEN);
	}
	account_r->created = sqlite3_column_int64(stmt, 9);
	return 0;
}

/* Runs an account query expected to give at most one row. */
static int dir_account_query_one(struct directory *dir, sqlite3_stmt *stmt,
				 struct directory_account *account_r,
				 const char **error_r)
{
	int rc, ret;

	if (stmt == NULL)
		return -1;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		ret = 0;
	} else if (rc == SQLITE_ROW) {
		ret = dir_account_from_row(dir, stmt, account_r, error_r) < 0
			      ? -1
			      : 1;
	} else {
		*error_r = dir_db_error(dir);
		ret = -1;
	}
	sqlite3_finalize(stmt);
	return ret;
}

int directory_account_lookup(struct directory *dir, const char *address,
			     struct directory_account *account_r,
			     const char **error_r)
{
	const char *addr;

	/* A name that is not a valid address is no account. */
	addr = dir_normalize(dir, address, NULL, NULL, error_r);
	if (addr == NULL)
		return 0;
	return dir_account_query_one(
		dir,
		dir_prepare(dir, error_r,
			    "SELECT " ACCOUNT_COLUMNS
			    " FROM accounts WHERE address = ?",
			    "s", addr),
		account_r, error_r);
}

int directory_account_lookup_id(struct directory *dir, uint64_t id,
				struct directory_account *account_r,
				const char **error_r)
{
	if (id > INT64_MAX)
		return 0;
	return dir_account_query_one(dir,
				     dir_prepare(dir, error_r,
						 "SELECT " ACCOUNT_COLUMNS
						 " FROM accounts WHERE id = ?",
						 "i", (int64_t)id),
				     account_r, error_r);
}

int directory_account_list(struct directory *dir, const char *domain,
			   struct directory_account **accounts_r,
			   unsigned int *count_r, const char **error_r)
{
	struct directory_account *arr = NULL;
	unsigned int count = 0, alloc = 0;
	const char *name = NULL;
	sqlite3_stmt *stmt;
	int rc;

	if (domain != NULL) {
		name = dir_normalize_domain(dir, domain, error_r);
		if (name == NULL || dir_require_domain(dir, name, error_r) < 0)
			return -1;
		stmt = dir_prepare(dir, error_r,
				   "SELECT " ACCOUNT_COLUMNS " FROM accounts "
				   "WHERE domain = ? ORDER BY address",
				   "s", name);
	} else {
		stmt = dir_prepare(dir, error_r,
				   "SELECT " ACCOUNT_COLUMNS
				   " FROM accounts ORDER BY address",
				   "");
	}
	if (stmt == NULL)
		return -1;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (count == alloc) {
			struct directory_account *n;

			alloc = alloc == 0 ? 8 : alloc * 2;
			n = p_new(dir->pool, struct directory_account, alloc);
			if (count > 0)
				memcpy(n, arr, sizeof(*arr) * count);
			arr = n;
		}
		if (dir_account_from_row(dir, stmt, &arr[count], error_r) < 0) {
			sqlite3_finalize(stmt);
			return -1;
		}
		count++;
	}
	if (rc != SQLITE_DONE) {
		*error_r = dir_db_error(dir);
		sqlite3_finalize(stmt);
		return -1;
	}
	sqlite3_finalize(stmt);
	*accounts_r = arr;
	*count_r = count;
	return 0;
}

/* App passwords */

static int dir_check_label(struct directory *dir, const char *label,
			   const char **error_r)
{
	size_t len =
		label == NULL ? 0 : strnlen(label, DIRECTORY_LABEL_MAX_LEN + 1);

	if (len == 0) {
		*error_r = "empty app password label";
		return -1;
	}
	if (len > DIRECTORY_LABEL_MAX_LEN) {
		*error_r = dir_errorf(dir,
				      "app password label is longer than %d "
				      "bytes",
				      DIRECTORY_LABEL_MAX_LEN);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)label[i];

		if (c < 0x20 || c == 0x7f) {
			*error_r = "app password label contains control "
				   "characters";
			return -1;
		}
	}
	return 0;
}

static char *app_password_generate(struct directory *dir)
{
	size_t groups = APP_PASSWORD_CHARS / APP_PASSWORD_GROUP;
	size_t len = APP_PASSWORD_CHARS + groups - 1, pos = 0;
	char *pw = p_malloc(dir->pool, len + 1);

	for (size_t i = 0; i < APP_PASSWORD_CHARS; i++) {
		if (i > 0 && i % APP_PASSWORD_GROUP == 0)
			pw[pos++] = '-';
		pw[pos++] = app_password_alphabet[randombytes_uniform(
			sizeof(app_password_alphabet) - 1)];
	}
	i_assert(pos == len);
	return pw;
}

int directory_app_password_add(struct directory *dir, const char *address,
			       const char *label, const char **password_r,
			       const char **error_r)
{
	char hash[PASSWORD_HASH_MAX];
	uint8_t salt[SCRAM_SALT_LEN];
	unsigned int iterations;
	struct scram_secret secret;
	const char *addr;
	char *pw;
	int64_t id;
	int ret;

	addr = dir_normalize(dir, address, NULL, NULL, error_r);
	if (addr == NULL || dir_check_label(dir, label, error_r) < 0)
		return -1;
	if (dir->readonly) {
		*error_r = dir_errorf(dir, "%s is open read-only", dir->path);
		return -1;
	}
	if (dir_require_account(dir, addr, &id, error_r) < 0)
		return -1;
	ret = dir_account_is_zero_access(dir, addr, error_r);
	if (ret != 0) {
		if (ret > 0) {
			*error_r = dir_errorf(dir,
					      "%s is a zero-access account: an "
					      "app password could not unlock "
					      "its mail keys, so it has none",
					      addr);
		}
		return -1;
	}
	pw = app_password_generate(dir);
	if (password_hash(pw, strlen(pw), hash) < 0) {
		*error_r = "cannot hash the password (out of memory)";
		return -1;
	}
	if (dir_begin(dir, error_r) < 0)
		return -1;
	if (dir_require_account(dir, addr, &id, error_r) < 0)
		goto fail;
	ret = dir_query_int(dir, NULL, error_r,
			    "SELECT 1 FROM app_passwords WHERE account_id = ? "
			    "AND label = ?",
			    "is", id, label);
	if (ret != 0) {
		if (ret > 0) {
			*error_r = dir_errorf(dir,
					      "%s already has an app password "
					      "labelled '%s'",
					      addr, dir_quote(dir, label));
		}
		goto fail;
	}
	if (dir_scram_salt_get_or_make(dir, id, salt, &iterations, error_r) < 0)
		goto fail;
	/* The generated password is ASCII: scram_saltprep accepts it. */
	if (!dir_scram_secret(pw, salt, iterations, &secret))
		i_unreached();
	ret = dir_exec(dir, error_r,
		       "INSERT INTO app_passwords (account_id, label, hash, "
		       "created, scram_stored_key, scram_server_key) "
		       "VALUES (?, ?, ?, ?, ?, ?)",
		       "issibb", id, label, hash, (int64_t)time(NULL),
		       secret.stored_key, sizeof(secret.stored_key),
		       secret.server_key, sizeof(secret.server_key));
	sodium_memzero(&secret, sizeof(secret));
	if (ret < 0 ||
	    dir_exec(dir, error_r,
		     "UPDATE accounts SET credential_version = "
		     "credential_version + 1 WHERE id = ?",
		     "i", id) < 0 ||
	    dir_commit(dir, error_r) < 0)
		goto fail;
	*password_r = pw;
	return 0;
fail:
	dir_rollback(dir);
	safe_memset0(pw, strlen(pw));
	return -1;
}

int directory_app_password_del(struct directory *dir, const char *address,
			       const char *label, const char **error_r)
{
	const char *addr;
	int64_t id;
	int ret;

	addr = dir_normalize(dir, address, NULL, NULL, error_r);
	if (addr == NULL || dir_begin(dir, error_r) < 0)
		return -1;
	if (dir_require_account(dir, addr, &id, error_r) < 0)
		goto fail;
	ret = dir_exec(dir, error_r,
		       "DELETE FROM app_passwords WHERE account_id = ? AND "
		       "label = ?",
		       "is", id, label == NULL ? "" : label);
	if (ret == 0) {
		*error_r =
			dir_errorf(dir, "%s has no app password labelled '%s'",
				   addr, dir_quote(dir, label));
	}
	if (ret <= 0 ||
	    dir_exec(dir, error_r,
		     "UPDATE accounts SET credential_version = "
		     "credential_version + 1 WHERE id = ?",
		     "i", id) < 0 ||
	    dir_commit(dir, error_r) < 0)
		goto fail;
	return 0;
fail:
	dir_rollback(dir);
	return -1;
}

int directory_app_password_hashes(struct directory *dir, uint64_t account_id,
				  const char *const **hashes_r,
				  const char **error_r)
{
	sqlite3_stmt *stmt;

	stmt = dir_prepare(dir, error_r,
			   "SELECT hash FROM app_passwords WHERE account_id = "
			   "? ORDER BY created, label",
			   "i", (int64_t)account_id);
	if (stmt == NULL)
		return -1;
	return dir_collect_strings(dir, stmt, hashes_r, NULL, error_r);
}

int directory_scram_lookup(struct directory *dir, uint64_t account_id,
			   struct directory_scram *scram_r,
			   const char **error_r)
{
	sqlite3_stmt *stmt;
	unsigned int alloc = 4;
	int rc, ret;

	memset(scram_r, 0, sizeof(*scram_r));
	ret = dir_scram_salt(dir, (int64_t)account_id, scram_r->salt,
			     &scram_r->iterations, error_r);
	if (ret <= 0)
		return ret;
	scram_r->secrets = p_new(dir->pool, struct scram_secret, alloc);
	/* The account's own first, then app passwords, oldest first. */
	stmt = dir_prepare(dir, error_r,
			   "SELECT scram_stored_key, scram_server_key, 0, 0, "
			   "'' FROM accounts WHERE id = ? UNION ALL "
			   "SELECT scram_stored_key, scram_server_key, 1, "
			   "created, label FROM app_passwords WHERE "
			   "account_id = ? ORDER BY 3, 4, 5",
			   "ii", (int64_t)account_id, (int64_t)account_id);
	if (stmt == NULL)
		return -1;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct scram_secret *secret;

		if (sqlite3_column_type(stmt, 0) == SQLITE_NULL)
			continue; /* a password set before schema 3 */
		if (sqlite3_column_bytes(stmt, 0) != SCRAM_KEY_LEN ||
		    sqlite3_column_bytes(stmt, 1) != SCRAM_KEY_LEN) {
			*error_r = dir_errorf(dir,
					      "%s: account %llu has a damaged "
					      "SCRAM secret",
					      dir->path,
					      (unsigned long long)account_id);
			sqlite3_finalize(stmt);
			return -1;
		}
		if (scram_r->secret_count == alloc) {
			struct scram_secret *bigger = p_new(
				dir->pool, struct scram_secret, alloc * 2);

			memcpy(bigger, scram_r->secrets,
			       sizeof(*bigger) * alloc);
			scram_r->secrets = bigger;
			alloc *= 2;
		}
		secret = &scram_r->secrets[scram_r->secret_count++];
		memcpy(secret->stored_key, sqlite3_column_blob(stmt, 0),
		       SCRAM_KEY_LEN);
		memcpy(secret->server_key, sqlite3_column_blob(stmt, 1),
		       SCRAM_KEY_LEN);
	}
	if (rc != SQLITE_DONE) {
		*error_r = dir_db_error(dir);
		sqlite3_finalize(stmt);
		return -1;
	}
	sqlite3_finalize(stmt);
	return 1;
}

/* Aliases */

/* Normalises an alias name: "local@domain" or "@domain" (catch-all). */
static const char *dir_normalize_alias(struct directory *dir, const char *alias,
				       const char **domain_r,
				       const char **error_r)
{
	const char *domain;
	char *d;

	if (alias != NULL && alias[0] == '@') {
		domain = dir_normalize_domain(dir, alias + 1, error_r);
		if (domain == NULL)
			return NULL;
		*domain_r = domain;
		return p_strdup_printf(dir->pool, "@%s", domain);
	}
	alias = dir_normalize(dir, alias, NULL, &d, error_r);
	*domain_r = d;
	return alias;
}

int directory_alias_add(struct directory *dir, const char *alias,
			const char *const *targets, const char **error_r)
{
	const char **norm;
	const char *name, *domain;
	unsigned int count = 0, n = 0;
	int ret;

	name = dir_normalize_alias(dir, alias, &domain, error_r);
	if (name == NULL)
		return -1;
	while (targets != NULL && targets[count] != NULL) {
		if (++count > DIRECTORY_ALIAS_MAX_TARGETS) {
			*error_r =
				dir_errorf(dir,
					   "alias %s has more than %d "
					   "targets",
					   name, DIRECTORY_ALIAS_MAX_TARGETS);
			return -1;
		}
	}
	if (count == 0) {
		*error_r = dir_errorf(dir, "alias %s needs at least one target",
				      name);
		return -1;
	}
	norm = p_new(dir->pool, const char *, count);
	for (unsigned int i = 0; i < count; i++) {
		const char *t =
			dir_normalize(dir, targets[i], NULL, NULL, error_r);
		bool dup = false;

		if (t == NULL)
			return -1;
		if (strcmp(t, name) == 0) {
			*error_r = dir_errorf(
				dir, "alias %s cannot point to itself", name);
			return -1;
		}
		for (unsigned int j = 0; j < n && !dup; j++)
			dup = strcmp(norm[j], t) == 0;
		if (!dup)
			norm[n++] = t;
	}

	if (dir_begin(dir, error_r) < 0)
		return -1;
	if (dir_require_domain(dir, domain, error_r) < 0)
		goto fail;
	ret = dir_account_id(dir, name, NULL, error_r);
	if (ret != 0) {
		if (ret > 0) {
			*error_r = dir_errorf(dir, "%s is an account", name);
		}
		goto fail;
	}
	ret = dir_alias_exists(dir, name, error_r);
	if (ret != 0) {
		if (ret > 0) {
			*error_r = dir_errorf(dir, "alias %s already exists",
					      name);
		}
		goto fail;
	}
	for (unsigned int i = 0; i < n; i++) {
		const char *tdomain = strrchr(norm[i], '@') + 1;

		ret = dir_domain_exists(dir, tdomain, error_r);
		if (ret < 0)
			goto fail;
		if (ret == 0)
			continue; /* remote: forwarding */
		ret = dir_account_id(dir, norm[i], NULL, error_r);
		if (ret == 0)
			ret = dir_alias_exists(dir, norm[i], error_r);
		if (ret < 0)
			goto fail;
		if (ret == 0) {
			*error_r = dir_errorf(dir,
					      "alias target %s does not exist "
					      "(no such user or alias)",
					      norm[i]);
			goto fail;
		}
	}
	if (dir_exec(dir, error_r,
		     "INSERT INTO aliases (address, domain, created) "
		     "VALUES (?, ?, ?)",
		     "ssi", name, domain, (int64_t)time(NULL)) < 0)
		goto fail;
	for (unsigned int i = 0; i < n; i++) {
		if (dir_exec(dir, error_r,
			     "INSERT INTO alias_targets (alias, target) "
			     "VALUES (?, ?)",
			     "ss", name, norm[i]) < 0)
			goto fail;
	}
	if (dir_commit(dir, error_r) < 0)
		goto fail;
	return 0;
fail:
	dir_rollback(dir);
	return -1;
}

int directory_alias_del(struct directory *dir, const char *alias,
			const char **error_r)
{
	const char *name, *domain;
	int ret;

	name = dir_normalize_alias(dir, alias, &domain, error_r);
	if (name == NULL || dir_begin(dir, error_r) < 0)
		return -1;
	ret = dir_exec(dir, error_r, "DELETE FROM aliases WHERE address = ?",
		       "s", name);
	if (ret == 0)
		*error_r = dir_errorf(dir, "alias %s does not exist", name);
	if (ret <= 0 || dir_commit(dir, error_r) < 0) {
		dir_rollback(dir);
		return -1;
	}
	return 0;
}

static int dir_alias_targets(struct directory *dir, const char *alias,
			     const char *const **targets_r,
			     unsigned int *count_r, const char **error_r)
{
	sqlite3_stmt *stmt;

	stmt = dir_prepare(dir, error_r,
			   "SELECT target FROM alias_targets WHERE alias = ? "
			   "ORDER BY target",
			   "s", alias);
	if (stmt == NULL)
		return -1;
	return dir_collect_strings(dir, stmt, targets_r, count_r, error_r);
}

int directory_alias_list(struct directory *dir, const char *domain,
			 struct directory_alias **aliases_r,
			 unsigned int *count_r, const char **error_r)
{
	const char *const *names;
	struct directory_alias *arr;
	const char *name;
	sqlite3_stmt *stmt;
	unsigned int count;

	if (domain != NULL) {
		name = dir_normalize_domain(dir, domain, error_r);
		if (name == NULL || dir_require_domain(dir, name, error_r) < 0)
			return -1;
		stmt = dir_prepare(dir, error_r,
				   "SELECT address FROM aliases WHERE domain = "
				   "? ORDER BY address",
				   "s", name);
	} else {
		stmt = dir_prepare(dir, error_r,
				   "SELECT address FROM aliases ORDER BY "
				   "address",
				   "");
	}
	if (stmt == NULL ||
	    dir_collect_strings(dir, stmt, &names, &count, error_r) < 0)
		return -1;
	arr = p_new(dir->pool, struct directory_alias, count + 1);
	for (unsigned int i = 0; i < count; i++) {
		arr[i].address = names[i];
		if (dir_alias_targets(dir, names[i], &arr[i].targets, NULL,
				      error_r) < 0)
			return -1;
	}
	*aliases_r = arr;
	*count_r = count;
	return 0;
}

/* Resolution */

struct resolve_ctx {
	struct directory *dir;
	struct directory_recipients *rcpt;
	unsigned int account_alloc, remote_alloc;
	unsigned int lookups;
	const char *path[DIRECTORY_ALIAS_MAX_DEPTH];
	const char *error;
};

static void resolve_add_account(struct resolve_ctx *ctx, uint64_t id)
{
	struct directory_recipients *r = ctx->rcpt;

	for (unsigned int i = 0; i < r->account_count; i++) {
		if (r->account_ids[i] == id)
			return;
	}
	if (r->account_count == ctx->account_alloc) {
		uint64_t *n;

		ctx->account_alloc =
			ctx->account_alloc == 0 ? 4 : ctx->account_alloc * 2;
		n = p_new(ctx->dir->pool, uint64_t, ctx->account_alloc);
		if (r->account_count > 0)
			memcpy(n, r->account_ids,
			       sizeof(*n) * r->account_count);
		r->account_ids = n;
	}
	r->account_ids[r->account_count++] = id;
}

static void resolve_add_remote(struct resolve_ctx *ctx, const char *address)
{
	struct directory_recipients *r = ctx->rcpt;

	for (unsigned int i = 0; i < r->remote_count; i++) {
		if (strcmp(r->remote[i], address) == 0)
			return;
	}
	if (r->remote_count == ctx->remote_alloc) {
		const char **n;

		ctx->remote_alloc =
			ctx->remote_alloc == 0 ? 4 : ctx->remote_alloc * 2;
		n = p_new(ctx->dir->pool, const char *, ctx->remote_alloc);
		if (r->remote_count > 0)
			memcpy(n, r->remote, sizeof(*n) * r->remote_count);
		r->remote = n;
	}
	r->remote[r->remote_count++] = p_strdup(ctx->dir->pool, address);
}

static int resolve_expand(struct resolve_ctx *ctx, const char *alias,
			  unsigned int depth);

/* Steps 1 and 2 for a normalised address: returns 1 if it is an account
   or an alias (expanded), 0 if neither, -1 on error. */
static int resolve_exact(struct resolve_ctx *ctx, const char *address,
			 unsigned int depth)
{
	int64_t id;
	int ret;

	if (++ctx->lookups > DIRECTORY_RESOLVE_MAX_LOOKUPS) {
		ctx->error = "alias expansion is too large";
		return -1;
	}
	ret = dir_account_id(ctx->dir, address, &id, &ctx->error);
	if (ret > 0)
		resolve_add_account(ctx, (uint64_t)id);
	if (ret != 0)
		return ret;
	ret = dir_alias_exists(ctx->dir, address, &ctx->error);
	if (ret <= 0)
		return ret;
	return resolve_expand(ctx, address, depth) < 0 ? -1 : 1;
}

static int resolve_expand(struct resolve_ctx *ctx, const char *alias,
			  unsigned int depth)
{
	const char *const *targets;
	unsigned int count;
	int ret;

	for (unsigned int i = 0; i < depth; i++) {
		if (strcmp(ctx->path[i], alias) == 0) {
			ctx->error = p_strdup_printf(ctx->dir->pool,
						     "alias loop at %s", alias);
			return -1;
		}
	}
	if (depth >= DIRECTORY_ALIAS_MAX_DEPTH) {
		ctx->error = p_strdup_printf(ctx->dir->pool,
					     "aliases nested deeper than %d "
					     "levels at %s",
					     DIRECTORY_ALIAS_MAX_DEPTH, alias);
		return -1;
	}
	ctx->path[depth] = alias;
	if (dir_alias_targets(ctx->dir, alias, &targets, &count, &ctx->error) <
	    0)
		return -1;
	for (unsigned int i = 0; i < count; i++) {
		const char *domain = strrchr(targets[i], '@');

		if (domain == NULL)
			continue; /* not written by this code */
		ret = dir_domain_exists(ctx->dir, domain + 1, &ctx->error);
		if (ret < 0)
			return -1;
		if (ret == 0) {
			resolve_add_remote(ctx, targets[i]);
			continue;
		}
		/* A local target that no longer exists is skipped. */
		if (resolve_exact(ctx, targets[i], depth + 1) < 0)
			return -1;
	}
	return 0;
}

enum directory_resolve_result directory_resolve(
	struct directory *dir, const char *address,
	struct directory_recipients *recipients_r, const char **error_r)
{
	struct resolve_ctx ctx = { .dir = dir, .rcpt = recipients_r };
	char *local, *domain;
	const char *addr, *at, *base, *reason;
	size_t base_len;
	int ret;

	memset(recipients_r, 0, sizeof(*recipients_r));
	addr = dir_normalize(dir, address, &local, &domain, error_r);
	if (addr == NULL) {
		/* Never local: unknown if the domain is ours, else not. */
		at = address == NULL ? NULL : strrchr(address, '@');
		domain = at == NULL ? NULL
				    : mail_domain_normalize(dir->pool, at + 1,
							    &reason);
		return domain != NULL && dir_domain_exists(dir, domain,
							   &reason) > 0
			       ? DIRECTORY_RESOLVE_UNKNOWN
			       : DIRECTORY_RESOLVE_NOT_LOCAL;
	}
	ret = dir_domain_exists(dir, domain, &ctx.error);
	if (ret == 0) {
		*error_r = dir_errorf(dir, "%s is not a local domain", domain);
		return DIRECTORY_RESOLVE_NOT_LOCAL;
	}
	if (ret > 0)
		ret = resolve_exact(&ctx, addr, 0);
	/* RFC 5233 3: "user+detail" is delivered to "user". */
	if (ret == 0 && mail_local_strip_tag(local, &base_len)) {
		base = p_strdup_printf(dir->pool, "%.*s@%s", (int)base_len,
				       local, domain);
		ret = resolve_exact(&ctx, base, 0);
	}
	if (ret == 0) {
		base = p_strdup_printf(dir->pool, "@%s", domain);
		ret = dir_alias_exists(dir, base, &ctx.error);
		if (ret > 0)
			ret = resolve_expand(&ctx, base, 0) < 0 ? -1 : 1;
	}
	if (ret < 0) {
		memset(recipients_r, 0, sizeof(*recipients_r));
		*error_r = ctx.error;
		return DIRECTORY_RESOLVE_ERROR;
	}
	if (recipients_r->account_count == 0 &&
	    recipients_r->remote_count == 0) {
		*error_r = dir_errorf(dir, "no such user: %s", addr);
		return DIRECTORY_RESOLVE_UNKNOWN;
	}
	return DIRECTORY_RESOLVE_OK;
}

/* DKIM keys */

#define DIRECTORY_DKIM_SELECTOR_MAX_LEN 128
#define DIRECTORY_DKIM_RECORD_MAX_LEN 4096
#define DIRECTORY_DKIM_WRAPPED_MAX_LEN 8192
#define DIRECTORY_DKIM_ADD_MAX 8
#define DKIM_KEY_COLUMNS                                               \
	"domain, selector, algorithm, public_record, state, created, " \
	"retire_after"

/* RFC 6376 3.1: selector = sub-domain *( "." sub-domain ), sub-domain as
   in RFC 5321 4.1.2 (Let-dig [Ldh-str]). */
static bool dir_is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static bool dir_dkim_selector_valid(const char *selector)
{
	size_t len = strnlen(selector, DIRECTORY_DKIM_SELECTOR_MAX_LEN + 1);
	size_t label = 0;

	if (len == 0 || len > DIRECTORY_DKIM_SELECTOR_MAX_LEN)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = selector[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || selector[i - 1] == '-')
				return false;
			label = 0;
		} else if (dir_is_alnum(c) || (c == '-' && label > 0)) {
			label++;
		} else {
			return false;
		}
	}
	return true;
}

static int dir_dkim_check_new_key(struct directory *dir,
				  const struct directory_dkim_new_key *key,
				  const char **error_r)
{
	size_t len;

	if (key->selector == NULL || !dir_dkim_selector_valid(key->selector)) {
		*error_r = dir_errorf(dir, "invalid DKIM selector '%s'",
				      dir_quote(dir, key->selector));
		return -1;
	}
	if (key->algorithm == NULL ||
	    (strcmp(key->algorithm, "rsa") != 0 &&
	     strcmp(key->algorithm, "ed25519") != 0)) {
		*error_r = dir_errorf(dir, "invalid DKIM key algorithm '%s'",
				      dir_quote(dir, key->algorithm));
		return -1;
	}
	len = key->public_record == NULL
		      ? 0
		      : strnlen(key->public_record,
				DIRECTORY_DKIM_RECORD_MAX_LEN + 1);
	if (len == 0 || len > DIRECTORY_DKIM_RECORD_MAX_LEN) {
		*error_r = dir_errorf(dir, "invalid DKIM key record for %s",
				      key->selector);
		return -1;
	}
	if (key->wrapped_len == 0 ||
	    key->wrapped_len > DIRECTORY_DKIM_WRAPPED_MAX_LEN) {
		*error_r = dir_errorf(dir, "invalid wrapped DKIM key for %s",
				      key->selector);
		return -1;
	}
	return 0;
}

static const char *dir_dkim_domain(struct directory *dir, const char *domain,
				   const char **error_r)
{
	const char *name = dir_normalize_domain(dir, domain, error_r);

	if (name == NULL || dir_require_domain(dir, name, error_r) < 0)
		return NULL;
	return name;
}

int directory_dkim_key_list(struct directory *dir, const char *domain,
			    pool_t pool,
			    const struct directory_dkim_key **keys_r,
			    unsigned int *count_r, const char **error_r)
{
	struct directory_dkim_key *arr = NULL;
	unsigned int count = 0, alloc = 0;
	int64_t now = (int64_t)time(NULL);
	const char *name;
	sqlite3_stmt *stmt;
	int rc;

	if (domain != NULL) {
		name = dir_dkim_domain(dir, domain, error_r);
		if (name == NULL)
			return -1;
		stmt = dir_prepare(dir, error_r,
				   "SELECT " DKIM_KEY_COLUMNS " FROM dkim_keys "
				   "WHERE domain = ? "
				   "ORDER BY created DESC, selector",
				   "s", name);
	} else {
		stmt = dir_prepare(dir, error_r,
				   "SELECT " DKIM_KEY_COLUMNS " FROM dkim_keys "
				   "ORDER BY domain, created DESC, selector",
				   "");
	}
	if (stmt == NULL)
		return -1;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct directory_dkim_key *key;
		const char *state;

		if (count == alloc) {
			struct directory_dkim_key *n;

			alloc = alloc == 0 ? 8 : alloc * 2;
			n = p_new(pool, struct directory_dkim_key, alloc);
			if (count > 0)
				memcpy(n, arr, sizeof(*arr) * count);
			arr = n;
		}
		key = &arr[count++];
		key->domain = p_strdup(
			pool, (const char *)sqlite3_column_text(stmt, 0));
		key->selector = p_strdup(
			pool, (const char *)sqlite3_column_text(stmt, 1));
		key->algorithm = p_strdup(
			pool, (const char *)sqlite3_column_text(stmt, 2));
		key->public_record = p_strdup(
			pool, (const char *)sqlite3_column_text(stmt, 3));
		state = (const char *)sqlite3_column_text(stmt, 4);
		key->created = sqlite3_column_int64(stmt, 5);
		key->retire_after = sqlite3_column_int64(stmt, 6);
		if (strcmp(state, "retiring") == 0 && key->retire_after <= now)
			state = "retired";
		key->state = p_strdup(pool, state);
	}
	if (rc != SQLITE_DONE) {
		*error_r = dir_db_error(dir);
		sqlite3_finalize(stmt);
		return -1;
	}
	sqlite3_finalize(stmt);
	*keys_r = arr;
	*count_r = count;
	return 0;
}

int directory_dkim_selector_exists(struct directory *dir, const char *domain,
				   const char *selector, const char **error_r)
{
	const char *name = dir_dkim_domain(dir, domain, error_r);

	if (name == NULL)
		return -1;
	return dir_query_int(dir, NULL, error_r,
			     "SELECT 1 FROM dkim_keys "
			     "WHERE domain = ? AND selector = ?",
			     "ss", name, selector);
}

int directory_dkim_key_add(struct directory *dir, const char *domain,
			   const struct directory_dkim_new_key *keys,
			   unsigned int count, const char *state,
			   const char **error_r)
{
	int64_t now = (int64_t)time(NULL);
	const char *name;
	int ret;

	if (count == 0 || count > DIRECTORY_DKIM_ADD_MAX) {
		*error_r = dir_errorf(dir, "cannot add %u DKIM keys at once",
				      count);
		return -1;
	}
	if (strcmp(state, "active") != 0 && strcmp(state, "pending") != 0) {
		*error_r = dir_errorf(dir, "invalid DKIM key state '%s'",
				      dir_quote(dir, state));
		return -1;
	}
	for (unsigned int i = 0; i < count; i++) {
		if (dir_dkim_check_new_key(dir, &keys[i], error_r) < 0)
			return -1;
	}
	name = dir_normalize_domain(dir, domain, error_r);
	if (name == NULL || dir_begin(dir, error_r) < 0)
		return -1;
	if (dir_require_domain(dir, name, error_r) < 0)
		goto fail;
	if (strcmp(state, "active") == 0) {
		ret = dir_query_int(dir, NULL, error_r,
				    "SELECT 1 FROM dkim_keys WHERE domain = ? "
				    "AND state = 'active'",
				    "s", name);
		if (ret != 0) {
			if (ret > 0) {
				*error_r = dir_errorf(
					dir,
					"domain %s has DKIM keys already "
					"(rotate them with: marmot dkim "
					"rotate %s)",
					name, name);
			}
			goto fail;
		}
	}
	for (unsigned int i = 0; i < count; i++) {
		ret = dir_query_int(dir, NULL, error_r,
				    "SELECT 1 FROM dkim_keys "
				    "WHERE domain = ? AND selector = ?",
				    "ss", name, keys[i].selector);
		if (ret != 0) {
			if (ret > 0) {
				*error_r = dir_errorf(
					dir,
					"domain %s has a DKIM key with "
					"selector %s already",
					name, keys[i].selector);
			}
			goto fail;
		}
		if (dir_exec(dir, error_r,
			     "INSERT INTO dkim_keys (domain, selector, "
			     "algorithm, public_record, wrapped_private, "
			     "created, state) VALUES (?, ?, ?, ?, ?, ?, ?)",
			     "ssssbis", name, keys[i].selector,
			     keys[i].algorithm, keys[i].public_record,
			     (const void *)keys[i].wrapped, keys[i].wrapped_len,
			     now, state) < 0)
			goto fail;
	}
	if (dir_commit(dir, error_r) < 0)
		goto fail;
	return 0;
fail:
	dir_rollback(dir);
	return -1;
}

int directory_dkim_key_activate(struct directory *dir, const char *domain,
				int64_t retire_after, unsigned int *count_r,
				const char **error_r)
{
	const char *name;
	int64_t pending = 0;

	name = dir_normalize_domain(dir, domain, error_r);
	if (name == NULL || dir_begin(dir, error_r) < 0)
		return -1;
	if (dir_require_domain(dir, name, error_r) < 0 ||
	    dir_query_int(dir, &pending, error_r,
			  "SELECT count(*) FROM dkim_keys "
			  "WHERE domain = ? AND state = 'pending'",
			  "s", name) < 0)
		goto fail;
	if (pending == 0) {
		*error_r = dir_errorf(dir,
				      "domain %s has no new DKIM keys to "
				      "activate (make them with: marmot dkim "
				      "rotate %s)",
				      name, name);
		goto fail;
	}
	if (dir_exec(dir, error_r,
		     "UPDATE dkim_keys SET state = 'retiring', "
		     "retire_after = ? WHERE domain = ? AND state = 'active'",
		     "is", retire_after, name) < 0 ||
	    dir_exec(dir, error_r,
		     "UPDATE dkim_keys SET state = 'active' "
		     "WHERE domain = ? AND state = 'pending'",
		     "s", name) < 0 ||
	    dir_commit(dir, error_r) < 0)
		goto fail;
	*count_r = (unsigned int)pending;
	return 0;
fail:
	dir_rollback(dir);
	return -1;
}

int directory_dkim_key_expire(struct directory *dir, const char *domain,
			      int64_t now, unsigned int *count_r,
			      const char **error_r)
{
	const char *name = NULL;
	int ret;

	if (domain != NULL) {
		name = dir_normalize_domain(dir, domain, error_r);
		if (name == NULL)
			return -1;
	}
	if (dir_begin(dir, error_r) < 0)
		return -1;
	if (name != NULL) {
		ret = dir_exec(dir, error_r,
			       "DELETE FROM dkim_keys WHERE domain = ? AND "
			       "state IN ('retiring', 'retired') AND "
			       "retire_after <= ?",
			       "si", name, now);
	} else {
		ret = dir_exec(dir, error_r,
			       "DELETE FROM dkim_keys WHERE "
			       "state IN ('retiring', 'retired') AND "
			       "retire_after <= ?",
			       "i", now);
	}
	if (ret < 0 || dir_commit(dir, error_r) < 0) {
		dir_rollback(dir);
		return -1;
	}
	*count_r = (unsigned int)ret;
	return 0;
}

int directory_dkim_signing_keys(
	struct directory *dir, const char *domain, pool_t pool,
	const struct directory_dkim_signing_key **keys_r, unsigned int *count_r,
	const char **error_r)
{
	struct directory_dkim_signing_key *arr;
	unsigned int count = 0;
	sqlite3_stmt *stmt;
	int rc;

	/* Ed25519 first: the order of the DKIM-Signature fields. */
	stmt = dir_prepare(dir, error_r,
			   "SELECT selector, algorithm, wrapped_private "
			   "FROM dkim_keys WHERE domain = ? AND "
			   "state = 'active' ORDER BY algorithm = 'rsa', "
			   "created DESC, selector LIMIT ?",
			   "si", domain, (int64_t)DIRECTORY_DKIM_ADD_MAX);
	if (stmt == NULL)
		return -1;
	arr = p_new(pool, struct directory_dkim_signing_key,
		    DIRECTORY_DKIM_ADD_MAX);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct directory_dkim_signing_key *key = &arr[count++];
		size_t len = (size_t)sqlite3_column_bytes(stmt, 2);
		uint8_t *wrapped = p_malloc(pool, len + 1);

		key->selector = p_strdup(
			pool, (const char *)sqlite3_column_text(stmt, 0));
		key->algorithm = p_strdup(
			pool, (const char *)sqlite3_column_text(stmt, 1));
		if (len > 0)
			memcpy(wrapped, sqlite3_column_blob(stmt, 2), len);
		key->wrapped = wrapped;
		key->wrapped_len = len;
	}
	if (rc != SQLITE_DONE) {
		*error_r = dir_db_error(dir);
		sqlite3_finalize(stmt);
		return -1;
	}
	sqlite3_finalize(stmt);
	*keys_r = arr;
	*count_r = count;
	return 0;
}
