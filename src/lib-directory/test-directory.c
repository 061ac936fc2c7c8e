/* test-directory.c - unit tests for directory.c against a real SQLite file
   in a mkdtemp() directory: domains, accounts (keys, ids, account
   directories), passwords and app passwords, aliases, recipient resolution,
   read-only opening, and the guarantee that a failed command leaves every
   table unchanged (compared as a dump). Each account costs one argon2id
   hash, so the fixtures stay small. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "pool.h"
#include "password.h"
#include "account-keys.h"
#include "directory.h"

#include <fcntl.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct fixture {
	char tmp[64];
	char db_path[128];
	uint8_t master[MASTER_KEY_LEN];
	struct directory *dir;
};

static int rm_entry(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	return remove(path);
}

static int fixture_setup(void **state)
{
	struct fixture *f = i_new(struct fixture, 1);
	const char *error = NULL;

	snprintf(f->tmp, sizeof(f->tmp), "/tmp/test-directory.XXXXXX");
	if (mkdtemp(f->tmp) == NULL)
		return -1;
	snprintf(f->db_path, sizeof(f->db_path), "%s/directory.db", f->tmp);
	for (size_t i = 0; i < sizeof(f->master); i++)
		f->master[i] = (uint8_t)(i * 7 + 1);
	f->dir = directory_open(f->db_path, false, &error);
	if (f->dir == NULL) {
		fprintf(stderr, "directory_open: %s\n", error);
		return -1;
	}
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	directory_close(&f->dir);
	nftw(f->tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	i_free(f);
	return 0;
}

/* Uses the caller's "error". */
#define OK(expr)                                                 \
	do {                                                     \
		int ret_ = (expr);                               \
		if (ret_ < 0)                                    \
			fail_msg("%s failed: %s", #expr, error); \
	} while (0)

static uint64_t add_account(struct fixture *f, const char *address,
			    const char *password)
{
	const char *error = NULL;
	uint64_t id = 0;

	if (directory_account_add(f->dir, f->tmp, f->master, address, password,
				  0, &id, &error) < 0)
		fail_msg("account add %s: %s", address, error);
	return id;
}

static void check_error(int ret, const char *error, const char *expected)
{
	assert_int_equal(ret, -1);
	assert_non_null(error);
	assert_string_equal(error, expected);
}

/* A macro, so that err is read after the call has set it. */
#define expect_error(call, err, expected)             \
	do {                                          \
		int ret_ = (call);                    \
		check_error(ret_, (err), (expected)); \
	} while (0)

/* Every row of every table, in a stable order, as text. */
static char *dump_tables(const char *db_path)
{
	static const char *const queries[] = {
		"SELECT * FROM domains ORDER BY name",
		"SELECT * FROM accounts ORDER BY id",
		"SELECT * FROM app_passwords ORDER BY account_id, label",
		"SELECT * FROM aliases ORDER BY address",
		"SELECT * FROM alias_targets ORDER BY alias, target",
		"SELECT * FROM sqlite_sequence ORDER BY name",
	};
	struct buf out = BUF_INIT;
	sqlite3 *db;
	char *result;

	assert_int_equal(
		sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL),
		SQLITE_OK);
	for (size_t q = 0; q < N_ELEMENTS(queries); q++) {
		sqlite3_stmt *stmt;

		assert_int_equal(
			sqlite3_prepare_v2(db, queries[q], -1, &stmt, NULL),
			SQLITE_OK);
		buf_printf(&out, "[%s]\n", queries[q]);
		while (sqlite3_step(stmt) == SQLITE_ROW) {
			for (int c = 0; c < sqlite3_column_count(stmt); c++) {
				const uint8_t *p = sqlite3_column_blob(stmt, c);
				int n = sqlite3_column_bytes(stmt, c);

				buf_append_c(&out, '|');
				for (int i = 0; i < n; i++)
					buf_printf(&out, "%02x", p[i]);
			}
			buf_append_c(&out, '\n');
		}
		sqlite3_finalize(stmt);
	}
	sqlite3_close(db);
	result = i_strdup(buf_cstr(&out));
	buf_free(&out);
	return result;
}

static void test_domain_add_del_list(void **state)
{
	struct fixture *f = *state;
	const char *const *domains;
	const char *error = NULL;

	OK(directory_domain_add(f->dir, "Example.ORG", &error));
	OK(directory_domain_add(f->dir,
				"b\xc3\xbc"
				"cher.example",
				&error));
	OK(directory_domain_add(f->dir, "a.example", &error));
	expect_error(directory_domain_add(f->dir, "example.org", &error), error,
		     "domain example.org already exists");
	expect_error(directory_domain_add(f->dir, "EXAMPLE.org", &error), error,
		     "domain example.org already exists");
	expect_error(directory_domain_add(f->dir, "exa mple.org", &error),
		     error,
		     "invalid domain 'exa mple.org': invalid character in "
		     "domain");
	expect_error(directory_domain_add(f->dir, "example.org.", &error),
		     error,
		     "invalid domain 'example.org.': trailing dot in domain");
	expect_error(directory_domain_add(f->dir, "[192.0.2.1]", &error), error,
		     "invalid domain '[192.0.2.1]': address literals are not "
		     "allowed");
	expect_error(directory_domain_add(f->dir, "", &error), error,
		     "invalid domain '': empty domain");

	OK(directory_domain_list(f->dir, &domains, &error));
	assert_string_equal(domains[0], "a.example");
	assert_string_equal(domains[1], "example.org");
	assert_string_equal(domains[2], "xn--bcher-kva.example");
	assert_null(domains[3]);
	assert_true(directory_domain_exists(f->dir, "EXAMPLE.org"));
	assert_true(directory_domain_exists(f->dir, "b\xc3\xbc"
						    "cher.example"));
	assert_false(directory_domain_exists(f->dir, "example.net"));
	assert_false(directory_domain_exists(f->dir, "example.org."));

	OK(directory_domain_del(f->dir, "A.Example", &error));
	expect_error(directory_domain_del(f->dir, "a.example", &error), error,
		     "domain a.example does not exist");
	OK(directory_domain_list(f->dir, &domains, &error));
	assert_string_equal(domains[0], "example.org");
	assert_null(domains[2]);
}

static void test_domain_del_refused_while_used(void **state)
{
	struct fixture *f = *state;
	const char *targets[] = { "alice@example.org", NULL };
	const char *error = NULL;

	OK(directory_domain_add(f->dir, "example.org", &error));
	add_account(f, "alice@example.org", "pw-alice");
	OK(directory_alias_add(f->dir, "postmaster@example.org", targets,
			       &error));
	OK(directory_alias_add(f->dir, "abuse@example.org", targets, &error));
	expect_error(directory_domain_del(f->dir, "example.org", &error), error,
		     "domain example.org still has 1 account and 2 aliases");
	OK(directory_alias_del(f->dir, "abuse@example.org", &error));
	OK(directory_alias_del(f->dir, "postmaster@example.org", &error));
	expect_error(directory_domain_del(f->dir, "example.org", &error), error,
		     "domain example.org still has 1 account");
	OK(directory_account_del(f->dir, "alice@example.org", &error));
	OK(directory_domain_del(f->dir, "example.org", &error));
	assert_false(directory_domain_exists(f->dir, "example.org"));
}

static void test_account_add(void **state)
{
	struct fixture *f = *state;
	const char *targets[] = { "alice@example.org", NULL };
	struct directory_account acc;
	struct account_keys keys;
	const char *error = NULL;
	uint64_t alice, bob, carol;
	char path[256];
	struct stat st;

	OK(directory_domain_add(f->dir, "example.org", &error));
	alice = add_account(f, "Alice@Example.org", "pw-alice");
	assert_true(alice >= 1);

	expect_error(directory_account_add(f->dir, f->tmp, f->master,
					   "ALICE@example.org", "x", 0, NULL,
					   &error),
		     error, "user alice@example.org already exists");
	expect_error(directory_account_add(f->dir, f->tmp, f->master,
					   "alice@example.net", "x", 0, NULL,
					   &error),
		     error,
		     "domain example.net does not exist (add it with: marmot "
		     "domain add example.net)");
	OK(directory_alias_add(f->dir, "info@example.org", targets, &error));
	expect_error(directory_account_add(f->dir, f->tmp, f->master,
					   "info@example.org", "x", 0, NULL,
					   &error),
		     error, "info@example.org is an alias");
	expect_error(directory_account_add(f->dir, f->tmp, f->master,
					   "u%remote@example.org", "x", 0, NULL,
					   &error),
		     error,
		     "invalid address 'u%remote@example.org': '%' and '!' are "
		     "not allowed in the local part");
	expect_error(directory_account_add(f->dir, f->tmp, f->master, "x", "x",
					   0, NULL, &error),
		     error, "invalid address 'x': missing '@'");
	expect_error(directory_account_add(f->dir, f->tmp, f->master,
					   "dave@example.org", "", 0, NULL,
					   &error),
		     error, "empty password");

	/* The row: normalised, keys wrapped for this id and master key. */
	assert_int_equal(directory_account_lookup(f->dir, "alice@example.org",
						  &acc, &error),
			 1);
	assert_int_equal(acc.id, alice);
	assert_string_equal(acc.address, "alice@example.org");
	assert_string_equal(acc.domain, "example.org");
	assert_int_equal(strncmp(acc.password_hash, "$argon2id$", 10), 0);
	assert_int_equal(acc.credential_version, 1);
	assert_false(acc.disabled);
	assert_int_equal(acc.quota_bytes, 0);
	assert_true(acc.created > 0);
	assert_int_equal(account_keys_unwrap(f->master, acc.id, acc.public_key,
					     acc.wrapped_keys,
					     sizeof(acc.wrapped_keys), &keys),
			 0);
	account_keys_clear(&keys);
	assert_int_equal(account_keys_unwrap(f->master, acc.id + 1,
					     acc.public_key, acc.wrapped_keys,
					     sizeof(acc.wrapped_keys), &keys),
			 -1);

	/* The account directory exists, mode 0700. */
	snprintf(path, sizeof(path), "%s/accounts/%llu", f->tmp,
		 (unsigned long long)alice);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);

	/* Ids increase and are never reused. */
	bob = add_account(f, "bob@example.org", "pw-bob");
	assert_true(bob > alice);
	OK(directory_account_del(f->dir, "bob@example.org", &error));
	assert_non_null(strstr(error, "left in place"));
	assert_int_equal(directory_account_lookup_id(f->dir, bob, &acc, &error),
			 0);
	carol = add_account(f, "carol@example.org", "pw-carol");
	assert_true(carol > bob);
	assert_int_equal(
		directory_account_lookup_id(f->dir, carol, &acc, &error), 1);
	assert_string_equal(acc.address, "carol@example.org");
}

static void test_account_list(void **state)
{
	struct fixture *f = *state;
	struct directory_account *accounts;
	const char *error = NULL;
	unsigned int count;

	OK(directory_domain_add(f->dir, "example.org", &error));
	OK(directory_domain_add(f->dir, "example.net", &error));
	add_account(f, "zed@example.org", "pw");
	add_account(f, "amy@example.net", "pw");
	OK(directory_account_list(f->dir, "example.org", &accounts, &count,
				  &error));
	assert_int_equal(count, 1);
	assert_string_equal(accounts[0].address, "zed@example.org");
	OK(directory_account_list(f->dir, NULL, &accounts, &count, &error));
	assert_int_equal(count, 2);
	assert_string_equal(accounts[0].address, "amy@example.net");
	assert_string_equal(accounts[1].address, "zed@example.org");
	expect_error(directory_account_list(f->dir, "example.com", &accounts,
					    &count, &error),
		     error,
		     "domain example.com does not exist (add it with: marmot "
		     "domain add example.com)");
}

static void test_account_passwd(void **state)
{
	struct fixture *f = *state;
	struct directory_account acc;
	const char *error = NULL;

	OK(directory_domain_add(f->dir, "example.org", &error));
	add_account(f, "alice@example.org", "old-password");
	OK(directory_account_passwd(f->dir, "ALICE@example.org", "new-password",
				    &error));
	assert_int_equal(directory_account_lookup(f->dir, "alice@example.org",
						  &acc, &error),
			 1);
	assert_int_equal(acc.credential_version, 2);
	assert_true(password_verify(acc.password_hash, "new-password", 12));
	assert_false(password_verify(acc.password_hash, "old-password", 12));
	expect_error(directory_account_passwd(f->dir, "nobody@example.org", "x",
					      &error),
		     error, "user nobody@example.org does not exist");
	expect_error(directory_account_passwd(f->dir, "alice@example.org", "",
					      &error),
		     error, "empty password");
}

/* Zero-access accounts: keys only under the password, never the master
   key; passwd without the old password refused; rewrap with it. */
static void test_zero_access(void **state)
{
	struct fixture *f = *state;
	struct directory_account acc, acc2;
	struct account_keys keys, keys2;
	const char *error = NULL, *pw;
	uint64_t id = 0;
	char *before;

	OK(directory_domain_add(f->dir, "example.org", &error));
	OK(directory_account_add_zero_access(f->dir, f->tmp, "Zed@example.org",
					     "zed secret", 0, &id, &error));
	assert_int_equal(directory_account_lookup(f->dir, "zed@example.org",
						  &acc, &error),
			 1);
	assert_int_equal(acc.id, id);
	assert_true(acc.zero_access);
	assert_memory_equal(acc.password_wrapped_keys, "MKZ1", 4);
	/* The right password opens; a wrong one, or the master key, not. */
	assert_int_equal(
		directory_account_keys(&acc, NULL, "zed secret", 10, &keys), 0);
	assert_int_equal(
		directory_account_keys(&acc, NULL, "zed secreT", 10, &keys2),
		-1);
	assert_int_equal(
		directory_account_keys(&acc, f->master, NULL, 0, &keys2), -1);
	assert_int_equal(account_keys_unwrap(f->master, acc.id, acc.public_key,
					     acc.wrapped_keys,
					     sizeof(acc.wrapped_keys), &keys2),
			 -1);
	/* Another account's id does not open it (a row copied over). */
	acc2 = acc;
	acc2.id = acc.id + 1;
	assert_int_equal(
		directory_account_keys(&acc2, NULL, "zed secret", 10, &keys2),
		-1);

	/* An operator reset is refused and changes nothing. */
	pool_clear(directory_pool(f->dir));
	before = dump_tables(f->db_path);
	assert_int_equal(directory_account_passwd(f->dir, "zed@example.org",
						  "reset", &error),
			 -1);
	assert_non_null(strstr(error, "unreadable"));
	assert_int_equal(directory_app_password_add(f->dir, "zed@example.org",
						    "phone", &pw, &error),
			 -1);
	assert_non_null(strstr(error, "zero-access"));
	assert_int_equal(directory_account_rewrap(f->dir, "zed@example.org",
						  "wrong old", "new pw",
						  &error),
			 -1);
	assert_non_null(strstr(error, "old password"));
	{
		char *after = dump_tables(f->db_path);

		assert_string_equal(before, after);
		i_free(after);
	}
	i_free(before);

	/* With the old password: the same keys under the new one. */
	OK(directory_account_rewrap(f->dir, "zed@example.org", "zed secret",
				    "zed new secret", &error));
	assert_int_equal(directory_account_lookup(f->dir, "zed@example.org",
						  &acc2, &error),
			 1);
	assert_int_equal(acc2.credential_version, acc.credential_version + 1);
	assert_true(password_verify(acc2.password_hash, "zed new secret", 14));
	assert_false(password_verify(acc2.password_hash, "zed secret", 10));
	assert_memory_equal(acc2.public_key, acc.public_key,
			    sizeof(acc.public_key));
	assert_int_equal(
		directory_account_keys(&acc2, NULL, "zed secret", 10, &keys2),
		-1);
	assert_int_equal(directory_account_keys(&acc2, NULL, "zed new secret",
						14, &keys2),
			 0);
	assert_memory_equal(&keys, &keys2, sizeof(keys));
	account_keys_clear(&keys);
	account_keys_clear(&keys2);

	/* Managed accounts are unchanged, and are not rewrapped. */
	add_account(f, "alice@example.org", "pw-alice");
	assert_int_equal(directory_account_lookup(f->dir, "alice@example.org",
						  &acc, &error),
			 1);
	assert_false(acc.zero_access);
	assert_int_equal(
		directory_account_keys(&acc, f->master, NULL, 0, &keys), 0);
	account_keys_clear(&keys);
	expect_error(directory_account_rewrap(f->dir, "alice@example.org",
					      "pw-alice", "x", &error),
		     error, "alice@example.org is not a zero-access account");
}

/* A directory.db written by schema version 1 is migrated; its accounts
   keep working, and zero-access accounts can be added. */
static void test_migrate_v1(void **state)
{
	static const char v1_schema[] =
		"CREATE TABLE domains (name TEXT PRIMARY KEY, created INTEGER);"
		"CREATE TABLE accounts (id INTEGER PRIMARY KEY AUTOINCREMENT,"
		" address TEXT UNIQUE NOT NULL,"
		" domain TEXT NOT NULL REFERENCES domains(name),"
		" password_hash TEXT NOT NULL,"
		" quota_bytes INTEGER NOT NULL DEFAULT 0,"
		" disabled INTEGER NOT NULL DEFAULT 0,"
		" credential_version INTEGER NOT NULL DEFAULT 1,"
		" public_key BLOB NOT NULL, wrapped_keys BLOB NOT NULL,"
		" created INTEGER NOT NULL);"
		"CREATE INDEX accounts_domain ON accounts(domain);"
		"CREATE TABLE app_passwords (account_id REFERENCES accounts "
		" ON DELETE CASCADE, label TEXT, hash TEXT, created INTEGER,"
		" UNIQUE(account_id, label));"
		"CREATE TABLE aliases (address TEXT PRIMARY KEY,"
		" domain TEXT NOT NULL REFERENCES domains(name),"
		" created INTEGER);"
		"CREATE INDEX aliases_domain ON aliases(domain);"
		"CREATE TABLE alias_targets (alias TEXT REFERENCES "
		" aliases(address) ON DELETE CASCADE, target TEXT,"
		" PRIMARY KEY(alias, target));"
		"CREATE INDEX alias_targets_target ON alias_targets(target);"
		"INSERT INTO domains VALUES ('example.org', 1);"
		"PRAGMA user_version = 1;";
	struct fixture *f = *state;
	uint8_t wrapped[ACCOUNT_WRAPPED_LEN];
	char hash[PASSWORD_HASH_MAX], path[192];
	struct directory_account acc;
	struct account_keys keys, out;
	struct directory *dir;
	const char *error = NULL;
	sqlite3_stmt *stmt;
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/v1.db", f->tmp);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, v1_schema, NULL, NULL, NULL),
			 SQLITE_OK);
	account_keys_generate(&keys);
	account_keys_wrap(f->master, 1, &keys, wrapped);
	assert_int_equal(password_hash("old-pw", 6, hash), 0);
	assert_int_equal(
		sqlite3_prepare_v2(db,
				   "INSERT INTO accounts (id, address, domain, "
				   "password_hash, public_key, wrapped_keys, "
				   "created) VALUES (1, 'old@example.org', "
				   "'example.org', ?, ?, ?, 1)",
				   -1, &stmt, NULL),
		SQLITE_OK);
	sqlite3_bind_text(stmt, 1, hash, -1, SQLITE_STATIC);
	sqlite3_bind_blob(stmt, 2, keys.public_key, sizeof(keys.public_key),
			  SQLITE_STATIC);
	sqlite3_bind_blob(stmt, 3, wrapped, sizeof(wrapped), SQLITE_STATIC);
	assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
	sqlite3_finalize(stmt);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);

	/* Read-only cannot migrate, and says so. */
	dir = directory_open(path, true, &error);
	assert_null(dir);
	assert_non_null(strstr(error, "schema version 1"));

	dir = directory_open(path, false, &error);
	assert_non_null(dir);
	assert_int_equal(
		directory_account_lookup(dir, "old@example.org", &acc, &error),
		1);
	assert_false(acc.zero_access);
	assert_true(password_verify(acc.password_hash, "old-pw", 6));
	assert_int_equal(directory_account_keys(&acc, f->master, NULL, 0, &out),
			 0);
	assert_memory_equal(&keys, &out, sizeof(keys));
	account_keys_clear(&out);
	/* Schema 3: no SCRAM secret until the password is set again. */
	struct directory_scram scram;

	assert_int_equal(directory_scram_lookup(dir, 1, &scram, &error), 0);
	OK(directory_account_passwd(dir, "old@example.org", "new-pw", &error));
	assert_int_equal(directory_scram_lookup(dir, 1, &scram, &error), 1);
	assert_int_equal(scram.secret_count, 1);
	OK(directory_account_add_zero_access(dir, NULL, "za@example.org",
					     "za pw", 0, NULL, &error));
	assert_int_equal(
		directory_account_lookup(dir, "za@example.org", &acc, &error),
		1);
	assert_true(acc.zero_access);
	directory_close(&dir);

	/* Version 4 now, and opening it again changes nothing. */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL),
		SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), 4);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	dir = directory_open(path, true, &error);
	assert_non_null(dir);
	assert_int_equal(
		directory_account_lookup(dir, "old@example.org", &acc, &error),
		1);
	directory_close(&dir);
	account_keys_clear(&keys);
}

/* The secret of password under the account's salt is one of scram's. */
static bool scram_has(const struct directory_scram *scram, const char *password,
		      unsigned int index)
{
	struct scram_secret secret;

	assert_int_equal(scram_secret_from_password(span_from_cstr(password),
						    scram->salt,
						    sizeof(scram->salt),
						    scram->iterations, &secret),
			 0);
	return index < scram->secret_count &&
	       memcmp(&secret, &scram->secrets[index], sizeof(secret)) == 0;
}

/* Schema 3: SCRAM-SHA-256 secrets for the password and each app
   password under one salt per account; none for zero-access accounts. */
static void test_scram_secrets(void **state)
{
	struct fixture *f = *state;
	struct directory_scram scram, again;
	const char *error = NULL, *app1_tmp, *app2_tmp;
	char *app1, *app2;
	uint8_t salt[SCRAM_SALT_LEN];
	uint64_t id, za_id;

	OK(directory_domain_add(f->dir, "example.org", &error));
	id = add_account(f, "alice@example.org", "pencil");
	assert_int_equal(directory_scram_lookup(f->dir, id, &scram, &error), 1);
	assert_int_equal(scram.iterations, 4096);
	assert_int_equal(scram.secret_count, 1);
	assert_true(scram_has(&scram, "pencil", 0));
	assert_false(scram_has(&scram, "pencil2", 0));
	memcpy(salt, scram.salt, sizeof(salt));

	OK(directory_app_password_add(f->dir, "alice@example.org", "phone",
				      &app1_tmp, &error));
	app1 = i_strdup(app1_tmp);
	OK(directory_app_password_add(f->dir, "alice@example.org", "laptop",
				      &app2_tmp, &error));
	app2 = i_strdup(app2_tmp);
	assert_int_equal(directory_scram_lookup(f->dir, id, &scram, &error), 1);
	assert_int_equal(scram.secret_count, 3);
	assert_memory_equal(scram.salt, salt, sizeof(salt));
	assert_true(scram_has(&scram, "pencil", 0));
	assert_true(scram_has(&scram, app1, 1) || scram_has(&scram, app1, 2));
	assert_true(scram_has(&scram, app2, 1) || scram_has(&scram, app2, 2));

	/* A new password keeps the salt (the app passwords depend on it). */
	OK(directory_account_passwd(f->dir, "alice@example.org", "crayon",
				    &error));
	assert_int_equal(directory_scram_lookup(f->dir, id, &again, &error), 1);
	assert_memory_equal(again.salt, salt, sizeof(salt));
	assert_int_equal(again.secret_count, 3);
	assert_true(scram_has(&again, "crayon", 0));
	assert_false(scram_has(&again, "pencil", 0));
	OK(directory_app_password_del(f->dir, "alice@example.org", "phone",
				      &error));
	assert_int_equal(directory_scram_lookup(f->dir, id, &again, &error), 1);
	assert_int_equal(again.secret_count, 2);

	/* A password SCRAM cannot prepare leaves the account without its
	   own secret (PLAIN still works), app passwords keep theirs. */
	OK(directory_account_passwd(f->dir, "alice@example.org", "tab\tpw",
				    &error));
	assert_int_equal(directory_scram_lookup(f->dir, id, &again, &error), 1);
	assert_int_equal(again.secret_count, 1);
	assert_true(scram_has(&again, app2, 0));

	/* Zero-access: no salt, no secret. */
	OK(directory_account_add_zero_access(f->dir, NULL, "za@example.org",
					     "za pw", 0, &za_id, &error));
	assert_int_equal(directory_scram_lookup(f->dir, za_id, &scram, &error),
			 0);
	/* Unknown account. */
	assert_int_equal(directory_scram_lookup(f->dir, 999, &scram, &error),
			 0);
	i_free(app1);
	i_free(app2);
}

static void test_account_quota_disable_lookup(void **state)
{
	struct fixture *f = *state;
	struct directory_account acc;
	const char *error = NULL;

	OK(directory_domain_add(f->dir, "example.org", &error));
	add_account(f, "alice@example.org", "pw");

	OK(directory_account_set_quota(f->dir, "alice@example.org", 5ULL << 30,
				       &error));
	OK(directory_account_set_disabled(f->dir, "alice@example.org", true,
					  &error));
	/* Case-insensitive lookup. */
	assert_int_equal(directory_account_lookup(f->dir, "Alice@EXAMPLE.org",
						  &acc, &error),
			 1);
	assert_string_equal(acc.address, "alice@example.org");
	assert_int_equal(acc.quota_bytes, 5ULL << 30);
	assert_true(acc.disabled);
	assert_int_equal(acc.credential_version, 2);
	/* Disabling twice changes nothing more. */
	OK(directory_account_set_disabled(f->dir, "alice@example.org", true,
					  &error));
	OK(directory_account_set_disabled(f->dir, "alice@example.org", false,
					  &error));
	assert_int_equal(directory_account_lookup(f->dir, "alice@example.org",
						  &acc, &error),
			 1);
	assert_false(acc.disabled);
	assert_int_equal(acc.credential_version, 3);

	expect_error(directory_account_set_quota(f->dir, "bob@example.org", 1,
						 &error),
		     error, "user bob@example.org does not exist");
	expect_error(directory_account_set_quota(f->dir, "alice@example.org",
						 UINT64_MAX, &error),
		     error, "quota too large");
	expect_error(directory_account_set_disabled(f->dir, "bob@example.org",
						    true, &error),
		     error, "user bob@example.org does not exist");
	assert_int_equal(directory_account_lookup(f->dir, "bob@example.org",
						  &acc, &error),
			 0);
	assert_int_equal(directory_account_lookup(f->dir, "not an address",
						  &acc, &error),
			 0);
	assert_int_equal(directory_account_lookup(f->dir, "alice@example.org.",
						  &acc, &error),
			 0);
}

static void test_app_passwords(void **state)
{
	static const char alphabet[] =
		"23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
	struct fixture *f = *state;
	struct directory_account acc;
	const char *const *hashes;
	const char *error = NULL, *pw = NULL;
	char *saved;

	OK(directory_domain_add(f->dir, "example.org", &error));
	add_account(f, "alice@example.org", "pw");
	OK(directory_app_password_add(f->dir, "alice@example.org", "phone", &pw,
				      &error));
	/* xxxx-xxxx-xxxx-xxxx-xxxx-xxxx from the unambiguous alphabet. */
	assert_int_equal(strlen(pw), 29);
	for (size_t i = 0; i < 29; i++) {
		if (i % 5 == 4)
			assert_int_equal(pw[i], '-');
		else
			assert_non_null(strchr(alphabet, pw[i]));
	}
	saved = i_strdup(pw);
	expect_error(directory_app_password_add(f->dir, "alice@example.org",
						"phone", &pw, &error),
		     error,
		     "alice@example.org already has an app password labelled "
		     "'phone'");
	expect_error(directory_app_password_add(f->dir, "alice@example.org", "",
						&pw, &error),
		     error, "empty app password label");
	expect_error(directory_app_password_add(f->dir, "alice@example.org",
						"a\nb", &pw, &error),
		     error, "app password label contains control characters");
	expect_error(directory_app_password_add(f->dir, "nobody@example.org",
						"x", &pw, &error),
		     error, "user nobody@example.org does not exist");

	assert_int_equal(directory_account_lookup(f->dir, "alice@example.org",
						  &acc, &error),
			 1);
	assert_int_equal(acc.credential_version, 2);
	OK(directory_app_password_hashes(f->dir, acc.id, &hashes, &error));
	assert_non_null(hashes[0]);
	assert_null(hashes[1]);
	assert_true(password_verify(hashes[0], saved, strlen(saved)));
	i_free(saved);

	expect_error(directory_app_password_del(f->dir, "alice@example.org",
						"laptop", &error),
		     error,
		     "alice@example.org has no app password labelled "
		     "'laptop'");
	OK(directory_app_password_del(f->dir, "alice@example.org", "phone",
				      &error));
	OK(directory_app_password_hashes(f->dir, acc.id, &hashes, &error));
	assert_null(hashes[0]);
	assert_int_equal(directory_account_lookup(f->dir, "alice@example.org",
						  &acc, &error),
			 1);
	assert_int_equal(acc.credential_version, 3);
}

static void test_alias_add(void **state)
{
	struct fixture *f = *state;
	const char *local[] = { "Alice@example.org", NULL };
	const char *mixed[] = { "alice@example.org", "friend@remote.example",
				"ALICE@example.org", NULL };
	const char *of_alias[] = { "team@example.org", NULL };
	const char *unknown[] = { "alice@example.org", "ghost@example.org",
				  NULL };
	const char *bad[] = { "not-an-address", NULL };
	const char *self[] = { "loop@example.org", NULL };
	const char *none[] = { NULL };
	struct directory_alias *aliases;
	const char *error = NULL;
	unsigned int count;

	OK(directory_domain_add(f->dir, "example.org", &error));
	add_account(f, "alice@example.org", "pw");
	OK(directory_alias_add(f->dir, "Postmaster@Example.org", local,
			       &error));
	OK(directory_alias_add(f->dir, "team@example.org", mixed, &error));
	OK(directory_alias_add(f->dir, "all@example.org", of_alias, &error));
	OK(directory_alias_add(f->dir, "@example.org", local, &error));

	expect_error(
		directory_alias_add(f->dir, "x@example.org", unknown, &error),
		error,
		"alias target ghost@example.org does not exist (no such "
		"user or alias)");
	expect_error(directory_alias_add(f->dir, "x@example.org", bad, &error),
		     error, "invalid address 'not-an-address': missing '@'");
	expect_error(
		directory_alias_add(f->dir, "loop@example.org", self, &error),
		error, "alias loop@example.org cannot point to itself");
	expect_error(directory_alias_add(f->dir, "x@example.org", none, &error),
		     error, "alias x@example.org needs at least one target");
	expect_error(directory_alias_add(f->dir, "x@example.org", NULL, &error),
		     error, "alias x@example.org needs at least one target");
	expect_error(directory_alias_add(f->dir, "alice@example.org", of_alias,
					 &error),
		     error, "alice@example.org is an account");
	expect_error(
		directory_alias_add(f->dir, "TEAM@example.org", local, &error),
		error, "alias team@example.org already exists");
	expect_error(
		directory_alias_add(f->dir, "x@example.net", local, &error),
		error,
		"domain example.net does not exist (add it with: marmot "
		"domain add example.net)");
	expect_error(
		directory_alias_add(f->dir, "@example.org.", local, &error),
		error, "invalid domain 'example.org.': trailing dot in domain");

	OK(directory_alias_list(f->dir, "example.org", &aliases, &count,
				&error));
	assert_int_equal(count, 4);
	assert_string_equal(aliases[0].address, "@example.org");
	assert_string_equal(aliases[1].address, "all@example.org");
	assert_string_equal(aliases[2].address, "postmaster@example.org");
	assert_string_equal(aliases[3].address, "team@example.org");
	/* Normalised and deduplicated. */
	assert_string_equal(aliases[3].targets[0], "alice@example.org");
	assert_string_equal(aliases[3].targets[1], "friend@remote.example");
	assert_null(aliases[3].targets[2]);
	assert_string_equal(aliases[1].targets[0], "team@example.org");

	expect_error(directory_alias_del(f->dir, "nobody@example.org", &error),
		     error, "alias nobody@example.org does not exist");
	OK(directory_alias_del(f->dir, "@EXAMPLE.org", &error));
	OK(directory_alias_list(f->dir, NULL, &aliases, &count, &error));
	assert_int_equal(count, 3);
}

static void test_resolve(void **state)
{
	static const struct {
		const char *address;
		enum directory_resolve_result result;
		const char *accounts; /* "a", "b", "ab" */
		const char *remote; /* first remote target or NULL */
		unsigned int remote_count;
	} tests[] = {
		{ "alice@example.org", DIRECTORY_RESOLVE_OK, "a", NULL, 0 },
		{ "ALICE@Example.ORG", DIRECTORY_RESOLVE_OK, "a", NULL, 0 },
		{ "alice+news@example.org", DIRECTORY_RESOLVE_OK, "a", NULL,
		  0 },
		{ "alice+a+b@example.org", DIRECTORY_RESOLVE_OK, "a", NULL, 0 },
		{ "sales+x@example.org", DIRECTORY_RESOLVE_OK, "ab", NULL, 0 },
		{ "postmaster@example.org", DIRECTORY_RESOLVE_OK, "a", NULL,
		  0 },
		{ "sales@example.org", DIRECTORY_RESOLVE_OK, "ab", NULL, 0 },
		/* Chain: chain1 -> chain2 -> sales -> {alice, bob}, and
		   alice twice: deduplicated. */
		{ "chain1@example.org", DIRECTORY_RESOLVE_OK, "ab", NULL, 0 },
		{ "fwd@example.org", DIRECTORY_RESOLVE_OK, "b",
		  "other@example.com", 2 },
		{ "loop1@example.org", DIRECTORY_RESOLVE_ERROR, "", NULL, 0 },
		{ "deep1@example.org", DIRECTORY_RESOLVE_ERROR, "", NULL, 0 },
		{ "deep2@example.org", DIRECTORY_RESOLVE_OK, "a", NULL, 0 },
		/* Catch-all of example.net. */
		{ "anything@example.net", DIRECTORY_RESOLVE_OK, "b", NULL, 0 },
		{ "nobody@example.org", DIRECTORY_RESOLVE_UNKNOWN, "", NULL,
		  0 },
		{ "+tag@example.org", DIRECTORY_RESOLVE_UNKNOWN, "", NULL, 0 },
		{ "bob@elsewhere.example", DIRECTORY_RESOLVE_NOT_LOCAL, "",
		  NULL, 0 },
		/* Refused syntax is never local. */
		{ "u%alice@example.org", DIRECTORY_RESOLVE_UNKNOWN, "", NULL,
		  0 },
		{ "alice!u@example.org", DIRECTORY_RESOLVE_UNKNOWN, "", NULL,
		  0 },
		{ "\"u@remote\"@example.org", DIRECTORY_RESOLVE_UNKNOWN, "",
		  NULL, 0 },
		{ "@example.org:alice@remote.example",
		  DIRECTORY_RESOLVE_NOT_LOCAL, "", NULL, 0 },
		{ "alice@[192.0.2.9]", DIRECTORY_RESOLVE_NOT_LOCAL, "", NULL,
		  0 },
		{ "alice@example.org.", DIRECTORY_RESOLVE_NOT_LOCAL, "", NULL,
		  0 },
		{ "", DIRECTORY_RESOLVE_NOT_LOCAL, "", NULL, 0 },
	};
	struct fixture *f = *state;
	const char *error = NULL;
	uint64_t alice, bob;
	char name[64], next[64];

	OK(directory_domain_add(f->dir, "example.org", &error));
	OK(directory_domain_add(f->dir, "example.net", &error));
	alice = add_account(f, "alice@example.org", "pw");
	bob = add_account(f, "bob@example.org", "pw");
	OK(directory_alias_add(f->dir, "postmaster@example.org",
			       (const char *[]){ "alice@example.org", NULL },
			       &error));
	OK(directory_alias_add(
		f->dir, "sales@example.org",
		(const char *[]){ "alice@example.org", "bob@example.org",
				  "postmaster@example.org", NULL },
		&error));
	OK(directory_alias_add(f->dir, "chain2@example.org",
			       (const char *[]){ "sales@example.org", NULL },
			       &error));
	OK(directory_alias_add(f->dir, "chain1@example.org",
			       (const char *[]){ "chain2@example.org",
						 "alice@example.org", NULL },
			       &error));
	OK(directory_alias_add(f->dir, "fwd@example.org",
			       (const char *[]){ "someone@remote.example",
						 "bob@example.org",
						 "other@example.com", NULL },
			       &error));
	OK(directory_alias_add(f->dir, "@example.net",
			       (const char *[]){ "bob@example.org", NULL },
			       &error));
	/* A loop: loop2 -> loop1 (a stale name once loop1 is deleted),
	   then loop1 -> loop2. */
	OK(directory_alias_add(f->dir, "loop1@example.org",
			       (const char *[]){ "alice@example.org", NULL },
			       &error));
	OK(directory_alias_add(f->dir, "loop2@example.org",
			       (const char *[]){ "loop1@example.org", NULL },
			       &error));
	OK(directory_alias_del(f->dir, "loop1@example.org", &error));
	OK(directory_alias_add(f->dir, "loop1@example.org",
			       (const char *[]){ "loop2@example.org", NULL },
			       &error));
	/* deep9 -> alice; deepN -> deep(N+1): deep2 is 8 levels of alias,
	   deep1 is 9. */
	OK(directory_alias_add(f->dir, "deep9@example.org",
			       (const char *[]){ "alice@example.org", NULL },
			       &error));
	for (int i = 8; i >= 1; i--) {
		snprintf(name, sizeof(name), "deep%d@example.org", i);
		snprintf(next, sizeof(next), "deep%d@example.org", i + 1);
		OK(directory_alias_add(f->dir, name,
				       (const char *[]){ next, NULL }, &error));
	}

	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		struct directory_recipients r;
		enum directory_resolve_result res;
		size_t n = strlen(tests[i].accounts);

		error = NULL;
		res = directory_resolve(f->dir, tests[i].address, &r, &error);
		if (res != tests[i].result)
			fail_msg("case %zu %s: result %d, expected %d (%s)", i,
				 tests[i].address, res, tests[i].result,
				 error == NULL ? "" : error);
		if (res != DIRECTORY_RESOLVE_OK)
			assert_non_null(error);
		assert_int_equal(r.account_count, n);
		for (size_t j = 0; j < n; j++) {
			assert_int_equal(r.account_ids[j],
					 tests[i].accounts[j] == 'a' ? alice
								     : bob);
		}
		assert_int_equal(r.remote_count, tests[i].remote_count);
		if (tests[i].remote != NULL)
			assert_string_equal(r.remote[0], tests[i].remote);
	}
}

static void test_account_del_updates_aliases(void **state)
{
	struct fixture *f = *state;
	struct directory_alias *aliases;
	struct directory_recipients r;
	const char *error = NULL;
	unsigned int count;
	uint64_t bob;

	OK(directory_domain_add(f->dir, "example.org", &error));
	add_account(f, "alice@example.org", "pw");
	bob = add_account(f, "bob@example.org", "pw");
	OK(directory_app_password_add(f->dir, "alice@example.org", "phone",
				      &(const char *){ NULL }, &error));
	OK(directory_alias_add(f->dir, "both@example.org",
			       (const char *[]){ "alice@example.org",
						 "bob@example.org", NULL },
			       &error));
	OK(directory_alias_add(f->dir, "only@example.org",
			       (const char *[]){ "alice@example.org", NULL },
			       &error));
	/* Left empty when only@ goes: deleted in turn. */
	OK(directory_alias_add(f->dir, "outer@example.org",
			       (const char *[]){ "only@example.org", NULL },
			       &error));
	OK(directory_account_del(f->dir, "Alice@example.org", &error));

	OK(directory_alias_list(f->dir, NULL, &aliases, &count, &error));
	assert_int_equal(count, 1);
	assert_string_equal(aliases[0].address, "both@example.org");
	assert_string_equal(aliases[0].targets[0], "bob@example.org");
	assert_null(aliases[0].targets[1]);
	assert_int_equal(
		directory_resolve(f->dir, "alice@example.org", &r, &error),
		DIRECTORY_RESOLVE_UNKNOWN);
	assert_int_equal(
		directory_resolve(f->dir, "both@example.org", &r, &error),
		DIRECTORY_RESOLVE_OK);
	assert_int_equal(r.account_count, 1);
	assert_int_equal(r.account_ids[0], bob);
	expect_error(directory_account_del(f->dir, "alice@example.org", &error),
		     error, "user alice@example.org does not exist");

	/* The app password went with the account (foreign key cascade). */
	char *dump = dump_tables(f->db_path);
	const char *app = strstr(dump, "FROM app_passwords");

	assert_non_null(app);
	assert_int_equal(strncmp(strchr(app, '\n') + 1, "[SELECT", 7), 0);
	i_free(dump);
}

static void test_readonly(void **state)
{
	struct fixture *f = *state;
	struct directory_account acc;
	struct directory *ro;
	const char *error = NULL;
	char *before, *after;

	OK(directory_domain_add(f->dir, "example.org", &error));
	add_account(f, "alice@example.org", "pw");
	before = dump_tables(f->db_path);

	ro = directory_open(f->db_path, true, &error);
	assert_non_null(ro);
	assert_true(directory_domain_exists(ro, "example.org"));
	assert_int_equal(
		directory_account_lookup(ro, "alice@example.org", &acc, &error),
		1);
	assert_int_equal(directory_domain_add(ro, "example.net", &error), -1);
	assert_non_null(strstr(error, "read-only"));
	assert_int_equal(directory_domain_del(ro, "example.org", &error), -1);
	assert_int_equal(directory_account_add(ro, f->tmp, f->master,
					       "bob@example.org", "pw", 0, NULL,
					       &error),
			 -1);
	assert_int_equal(directory_account_passwd(ro, "alice@example.org",
						  "pw2", &error),
			 -1);
	assert_int_equal(directory_account_set_disabled(ro, "alice@example.org",
							true, &error),
			 -1);
	assert_int_equal(directory_account_del(ro, "alice@example.org", &error),
			 -1);
	assert_int_equal(directory_alias_add(
				 ro, "x@example.org",
				 (const char *[]){ "alice@example.org", NULL },
				 &error),
			 -1);
	directory_close(&ro);
	assert_null(ro);
	after = dump_tables(f->db_path);
	assert_string_equal(before, after);
	i_free(before);
	i_free(after);
}

static void test_open_errors(void **state)
{
	struct fixture *f = *state;
	const char *error = NULL;
	struct directory *d;
	char path[256];
	sqlite3 *db;

	/* Read-only open never creates. */
	snprintf(path, sizeof(path), "%s/missing.db", f->tmp);
	assert_null(directory_open(path, true, &error));
	assert_non_null(strstr(error, "cannot open"));
	assert_int_equal(access(path, F_OK), -1);

	/* An empty file opened read-only gets no schema. */
	snprintf(path, sizeof(path), "%s/empty.db", f->tmp);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	assert_null(directory_open(path, true, &error));
	assert_non_null(strstr(error, "not a Marmot directory"));

	/* A newer schema is refused. */
	snprintf(path, sizeof(path), "%s/newer.db", f->tmp);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db, "PRAGMA user_version = 5", NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	assert_null(directory_open(path, false, &error));
	assert_non_null(strstr(error, "newer than"));

	/* Reopening an existing database keeps its data; the file is 0600. */
	snprintf(path, sizeof(path), "%s/again.db", f->tmp);
	d = directory_open(path, false, &error);
	assert_non_null(d);
	OK(directory_domain_add(d, "example.org", &error));
	directory_close(&d);
	d = directory_open(path, false, &error);
	assert_non_null(d);
	assert_true(directory_domain_exists(d, "example.org"));
	directory_close(&d);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	directory_close(&d);
	assert_null(d);
}

static void test_failed_commands_change_nothing(void **state)
{
	struct fixture *f = *state;
	const char *error = NULL, *pw = NULL;
	char *before, *after;

	OK(directory_domain_add(f->dir, "example.org", &error));
	add_account(f, "alice@example.org", "pw");
	OK(directory_alias_add(f->dir, "team@example.org",
			       (const char *[]){ "alice@example.org", NULL },
			       &error));
	before = dump_tables(f->db_path);

	assert_int_equal(directory_domain_add(f->dir, "example.org", &error),
			 -1);
	assert_int_equal(directory_domain_del(f->dir, "example.org", &error),
			 -1);
	assert_int_equal(directory_domain_del(f->dir, "example.net", &error),
			 -1);
	assert_int_equal(directory_account_add(f->dir, f->tmp, f->master,
					       "alice@example.org", "pw", 0,
					       NULL, &error),
			 -1);
	assert_int_equal(directory_account_add(f->dir, f->tmp, f->master,
					       "team@example.org", "pw", 0,
					       NULL, &error),
			 -1);
	assert_int_equal(directory_account_add(f->dir, f->tmp, f->master,
					       "a@example.net", "pw", 0, NULL,
					       &error),
			 -1);
	assert_int_equal(directory_account_passwd(f->dir, "bob@example.org",
						  "pw", &error),
			 -1);
	assert_int_equal(
		directory_account_del(f->dir, "bob@example.org", &error), -1);
	assert_int_equal(directory_app_password_add(f->dir, "alice@example.org",
						    "", &pw, &error),
			 -1);
	assert_int_equal(directory_app_password_del(f->dir, "alice@example.org",
						    "x", &error),
			 -1);
	/* The first target is fine, the second is not: nothing stays. */
	assert_int_equal(directory_alias_add(
				 f->dir, "new@example.org",
				 (const char *[]){ "alice@example.org",
						   "ghost@example.org", NULL },
				 &error),
			 -1);
	assert_int_equal(directory_alias_add(
				 f->dir, "team@example.org",
				 (const char *[]){ "alice@example.org", NULL },
				 &error),
			 -1);
	assert_int_equal(directory_alias_del(f->dir, "x@example.org", &error),
			 -1);
	assert_int_equal(
		directory_account_set_quota(f->dir, "x@example.org", 1, &error),
		-1);

	after = dump_tables(f->db_path);
	assert_string_equal(before, after);
	i_free(before);
	i_free(after);
}

/* If the account directory cannot be made, the row is rolled back. */
static void test_account_add_mkdir_failure(void **state)
{
	struct fixture *f = *state;
	struct directory_account acc;
	const char *error = NULL;
	char path[256], *before, *after;

	OK(directory_domain_add(f->dir, "example.org", &error));
	before = dump_tables(f->db_path);
	/* A file where DATA/accounts should be. */
	snprintf(path, sizeof(path), "%s/accounts", f->tmp);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	assert_int_equal(directory_account_add(f->dir, f->tmp, f->master,
					       "alice@example.org", "pw", 0,
					       NULL, &error),
			 -1);
	assert_non_null(strstr(error, "cannot create"));
	after = dump_tables(f->db_path);
	assert_string_equal(before, after);
	assert_int_equal(directory_account_lookup(f->dir, "alice@example.org",
						  &acc, &error),
			 0);
	i_free(before);
	i_free(after);
	unlink(path);
}

static const struct directory_dkim_key *find_dkim_key(
	const struct directory_dkim_key *keys, unsigned int count,
	const char *selector)
{
	for (unsigned int i = 0; i < count; i++) {
		if (strcmp(keys[i].selector, selector) == 0)
			return &keys[i];
	}
	return NULL;
}

/* DKIM keys (schema 4): first keys active, a rotation adds pending ones,
   activation retires the old ones, expiry deletes them; bad input is
   refused without a change; a domain's keys go with it. */
static void test_dkim_keys(void **state)
{
	struct fixture *f = *state;
	static const uint8_t wrapped[] = { 'W', 'R', 'A', 'P', 1, 2, 3 };
	const struct directory_dkim_new_key first[] = {
		{ "marmot-ed-202601", "ed25519", "v=DKIM1; k=ed25519; p=AAA",
		  wrapped, sizeof(wrapped) },
		{ "marmot-rsa-202601", "rsa", "v=DKIM1; k=rsa; p=BBB", wrapped,
		  sizeof(wrapped) },
	};
	const struct directory_dkim_new_key next[] = {
		{ "marmot-ed-202602", "ed25519", "v=DKIM1; k=ed25519; p=CCC",
		  wrapped, sizeof(wrapped) },
		{ "marmot-rsa-202602", "rsa", "v=DKIM1; k=rsa; p=DDD", wrapped,
		  sizeof(wrapped) },
	};
	struct directory_dkim_new_key bad = first[0];
	const struct directory_dkim_key *keys, *key;
	const struct directory_dkim_signing_key *skeys;
	pool_t pool = pool_create("test dkim", 1024);
	const char *error = NULL;
	unsigned int count, n;
	int64_t now = (int64_t)time(NULL);

	OK(directory_domain_add(f->dir, "example.org", &error));
	OK(directory_dkim_key_list(f->dir, "example.org", pool, &keys, &count,
				   &error));
	assert_int_equal(count, 0);
	assert_int_equal(directory_dkim_key_list(f->dir, "example.net", pool,
						 &keys, &count, &error),
			 -1);
	assert_non_null(strstr(error, "does not exist"));
	OK(directory_dkim_signing_keys(f->dir, "example.org", pool, &skeys,
				       &count, &error));
	assert_int_equal(count, 0);

	OK(directory_dkim_key_add(f->dir, "example.org", first, 2, "active",
				  &error));
	/* A second set of active keys is refused: that is a rotation. */
	assert_int_equal(directory_dkim_key_add(f->dir, "example.org", next, 2,
						"active", &error),
			 -1);
	assert_non_null(strstr(error, "dkim rotate"));
	/* A taken selector, a bad selector, algorithm, state, count. */
	assert_int_equal(directory_dkim_key_add(f->dir, "Example.ORG", first, 1,
						"pending", &error),
			 -1);
	assert_non_null(strstr(error, "already"));
	bad.selector = "bad_selector";
	assert_int_equal(directory_dkim_key_add(f->dir, "example.org", &bad, 1,
						"pending", &error),
			 -1);
	bad.selector = "-x";
	assert_int_equal(directory_dkim_key_add(f->dir, "example.org", &bad, 1,
						"pending", &error),
			 -1);
	bad.selector = "x.";
	assert_int_equal(directory_dkim_key_add(f->dir, "example.org", &bad, 1,
						"pending", &error),
			 -1);
	bad.selector = "ok";
	bad.algorithm = "dsa";
	assert_int_equal(directory_dkim_key_add(f->dir, "example.org", &bad, 1,
						"pending", &error),
			 -1);
	assert_int_equal(directory_dkim_key_add(f->dir, "example.org", next, 2,
						"retiring", &error),
			 -1);
	assert_int_equal(directory_dkim_key_add(f->dir, "example.org", next, 0,
						"pending", &error),
			 -1);
	assert_int_equal(directory_dkim_selector_exists(f->dir, "example.org",
							"ok", &error),
			 0);
	assert_int_equal(directory_dkim_selector_exists(f->dir, "example.org",
							"marmot-ed-202601",
							&error),
			 1);
	/* Nothing pending to activate yet. */
	assert_int_equal(directory_dkim_key_activate(f->dir, "example.org",
						     now + 100, &n, &error),
			 -1);
	assert_non_null(strstr(error, "no new DKIM keys"));

	OK(directory_dkim_signing_keys(f->dir, "example.org", pool, &skeys,
				       &count, &error));
	assert_int_equal(count, 2);
	assert_string_equal(skeys[0].algorithm, "ed25519");
	assert_string_equal(skeys[0].selector, "marmot-ed-202601");
	assert_string_equal(skeys[1].algorithm, "rsa");
	assert_int_equal(skeys[1].wrapped_len, sizeof(wrapped));
	assert_memory_equal(skeys[1].wrapped, wrapped, sizeof(wrapped));

	/* Rotation: pending keys are listed, not used for signing. */
	OK(directory_dkim_key_add(f->dir, "example.org", next, 2, "pending",
				  &error));
	OK(directory_dkim_key_list(f->dir, "example.org", pool, &keys, &count,
				   &error));
	assert_int_equal(count, 4);
	key = find_dkim_key(keys, count, "marmot-rsa-202602");
	assert_non_null(key);
	assert_string_equal(key->state, "pending");
	assert_string_equal(key->public_record, "v=DKIM1; k=rsa; p=DDD");
	assert_string_equal(key->domain, "example.org");
	assert_true(key->created >= now);
	OK(directory_dkim_signing_keys(f->dir, "example.org", pool, &skeys,
				       &count, &error));
	assert_int_equal(count, 2);
	assert_string_equal(skeys[0].selector, "marmot-ed-202601");

	OK(directory_dkim_key_activate(f->dir, "example.org", now + 100, &n,
				       &error));
	assert_int_equal(n, 2);
	OK(directory_dkim_signing_keys(f->dir, "example.org", pool, &skeys,
				       &count, &error));
	assert_int_equal(count, 2);
	assert_string_equal(skeys[0].selector, "marmot-ed-202602");
	assert_string_equal(skeys[1].selector, "marmot-rsa-202602");
	OK(directory_dkim_key_list(f->dir, NULL, pool, &keys, &count, &error));
	assert_int_equal(count, 4);
	key = find_dkim_key(keys, count, "marmot-ed-202601");
	assert_string_equal(key->state, "retiring");
	assert_int_equal(key->retire_after, now + 100);

	/* Not yet expired; then past retire_after: reported "retired",
	   then deleted. */
	OK(directory_dkim_key_expire(f->dir, "example.org", now, &n, &error));
	assert_int_equal(n, 0);
	assert_int_equal(directory_dkim_key_activate(f->dir, "example.org",
						     now + 100, &n, &error),
			 -1);
	OK(directory_dkim_key_add(f->dir, "example.org",
				  (const struct directory_dkim_new_key[]){
					  { "marmot-ed-202603", "ed25519",
					    "v=DKIM1; k=ed25519; p=EEE",
					    wrapped, sizeof(wrapped) } },
				  1, "pending", &error));
	OK(directory_dkim_key_activate(f->dir, "example.org", now - 1, &n,
				       &error));
	OK(directory_dkim_key_list(f->dir, "example.org", pool, &keys, &count,
				   &error));
	assert_int_equal(count, 5);
	assert_string_equal(
		find_dkim_key(keys, count, "marmot-ed-202602")->state,
		"retired");
	assert_string_equal(
		find_dkim_key(keys, count, "marmot-ed-202601")->state,
		"retiring");
	OK(directory_dkim_key_expire(f->dir, NULL, now, &n, &error));
	assert_int_equal(n, 2);
	OK(directory_dkim_key_list(f->dir, "example.org", pool, &keys, &count,
				   &error));
	assert_int_equal(count, 3);
	assert_null(find_dkim_key(keys, count, "marmot-ed-202602"));

	/* The domain's keys are deleted with it. */
	OK(directory_domain_del(f->dir, "example.org", &error));
	OK(directory_domain_add(f->dir, "example.org", &error));
	OK(directory_dkim_key_list(f->dir, "example.org", pool, &keys, &count,
				   &error));
	assert_int_equal(count, 0);
	pool_unref(&pool);
}

int main(void)
{
#define T(fn) \
	cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
	const struct CMUnitTest tests[] = {
		T(test_domain_add_del_list),
		T(test_domain_del_refused_while_used),
		T(test_account_add),
		T(test_account_list),
		T(test_account_passwd),
		T(test_zero_access),
		T(test_migrate_v1),
		T(test_scram_secrets),
		T(test_account_quota_disable_lookup),
		T(test_app_passwords),
		T(test_alias_add),
		T(test_resolve),
		T(test_account_del_updates_aliases),
		T(test_readonly),
		T(test_open_errors),
		T(test_failed_commands_change_nothing),
		T(test_account_add_mkdir_failure),
		T(test_dkim_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
