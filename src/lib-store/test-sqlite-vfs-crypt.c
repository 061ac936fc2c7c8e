/* test-sqlite-vfs-crypt.c - unit tests for the marmot-crypt SQLite VFS:
   a canary written through it (tables, FTS5 trigram index, WAL) never
   appears in any file on disk, while open and after close; data and
   integrity survive reopen, rollback, statement rollback, cache spills and
   a crash (WAL recovery, with a torn frame at the end); a wrong or missing
   key, a flipped byte anywhere outside the clear header, swapped pages and
   pages from another key's database all give clean errors; journals and
   temp files are refused; two connections share the database through
   the WAL index and checkpoints. Also prints (as TAP comments) insert
   throughput with and without encryption. Files live in a mkdtemp()
   directory that each test empties and removes. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "sqlite-vfs-crypt.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CANARY "zqCanary-7f3a9c1e-Marmot"
#define PAGE 4096

struct tmp {
	char dir[64];
	char db[128];
	char wal[136];
	char shm[136];
	char other[128];
};

static const uint8_t key_a[VFS_CRYPT_KEY_LEN] = {
	0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
	0xcc, 0xdd, 0xee, 0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
	0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x12,
};
static const uint8_t key_b[VFS_CRYPT_KEY_LEN] = {
	0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18, 0x29, 0x3a, 0x4b,
	0x5c, 0x6d, 0x7e, 0x8f, 0x90, 0x01, 0x12, 0x23, 0x34, 0x45, 0x56,
	0x67, 0x78, 0x89, 0x9a, 0xab, 0xbc, 0xcd, 0xde, 0xef, 0xf0,
};

static int tmp_setup(void **state)
{
	struct tmp *t = i_new(struct tmp, 1);

	snprintf(t->dir, sizeof(t->dir), "/tmp/test-vfs-crypt.XXXXXX");
	if (mkdtemp(t->dir) == NULL)
		return -1;
	snprintf(t->db, sizeof(t->db), "%s/store.db", t->dir);
	snprintf(t->wal, sizeof(t->wal), "%s-wal", t->db);
	snprintf(t->shm, sizeof(t->shm), "%s-shm", t->db);
	snprintf(t->other, sizeof(t->other), "%s/other.db", t->dir);
	*state = t;
	return 0;
}

static int tmp_teardown(void **state)
{
	struct tmp *t = *state;
	struct dirent *d;
	DIR *dir = opendir(t->dir);

	while (dir != NULL && (d = readdir(dir)) != NULL) {
		char path[320];

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", t->dir, d->d_name);
		unlink(path);
	}
	if (dir != NULL)
		closedir(dir);
	rmdir(t->dir);
	vfs_crypt_key_clear(t->db);
	vfs_crypt_key_clear(t->other);
	i_free(t);
	return 0;
}

/* ---- helpers ---- */

static uint8_t *read_file(const char *path, size_t *len_r)
{
	struct stat st;
	uint8_t *data;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	data = i_malloc((size_t)st.st_size + 1);
	assert_int_equal(read(fd, data, (size_t)st.st_size), st.st_size);
	close(fd);
	*len_r = (size_t)st.st_size;
	return data;
}

static void write_file(const char *path, const uint8_t *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static off_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) < 0 ? -1 : st.st_size;
}

static unsigned int count_hits(const uint8_t *p, size_t len, const char *s)
{
	size_t n = strlen(s);
	unsigned int hits = 0;

	for (size_t i = 0; i + n <= len; i++) {
		if (memcmp(p + i, s, n) == 0)
			hits++;
	}
	return hits;
}

/* grep -c over every file in dir; *files_r gets the number of files. */
static unsigned int dir_hits(const char *dirname, const char *needle,
			     unsigned int *files_r)
{
	unsigned int hits = 0, files = 0;
	DIR *dir = opendir(dirname);
	struct dirent *d;

	assert_non_null(dir);
	while ((d = readdir(dir)) != NULL) {
		char path[320];
		uint8_t *data;
		size_t len;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dirname, d->d_name);
		data = read_file(path, &len);
		hits += count_hits(data, len, needle);
		files++;
		i_free(data);
	}
	closedir(dir);
	if (files_r != NULL)
		*files_r = files;
	return hits;
}

static sqlite3 *open_ok(const char *path, const uint8_t *key)
{
	const char *error = NULL;
	sqlite3 *db;

	if (vfs_crypt_open(path, key,
			   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db,
			   &error) < 0)
		fail_msg("vfs_crypt_open: %s", error);
	return db;
}

static void exec_ok(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		char copy[256];

		snprintf(copy, sizeof(copy), "%s", msg);
		sqlite3_free(msg);
		fail_msg("%s: %s", sql, copy);
	}
}

static int exec_rc(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK
		       ? SQLITE_OK
		       : sqlite3_extended_errcode(db);
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt;
	int64_t value;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	value = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return value;
}

static void assert_integrity(sqlite3 *db)
{
	sqlite3_stmt *stmt;

	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1,
					    &stmt, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "ok");
	sqlite3_finalize(stmt);
}

static void create_schema(sqlite3 *db)
{
	exec_ok(db, "CREATE TABLE m(id INTEGER PRIMARY KEY, body TEXT);"
		    "CREATE VIRTUAL TABLE t USING fts5(x, tokenize='trigram')");
}

static void body_text(char *buf, size_t size, int i)
{
	snprintf(buf, size,
		 "message %06d From: alice@example.org Subject: report %s "
		 "lorem ipsum dolor sit amet, consectetur adipiscing elit, "
		 "sed do eiusmod tempor incididunt ut labore",
		 i, CANARY);
}

/* Inserts rows [first, first + n) in transactions of batch rows. */
static void insert_rows(sqlite3 *db, int first, int n, int batch, bool fts)
{
	sqlite3_stmt *ins, *ins_fts = NULL;
	char body[256];

	assert_int_equal(sqlite3_prepare_v2(db,
					    "INSERT INTO m(id, body) "
					    "VALUES(?, ?)",
					    -1, &ins, NULL),
			 SQLITE_OK);
	if (fts)
		assert_int_equal(sqlite3_prepare_v2(db,
						    "INSERT INTO t(rowid, x) "
						    "VALUES(?, ?)",
						    -1, &ins_fts, NULL),
				 SQLITE_OK);
	for (int i = first; i < first + n; i++) {
		if ((i - first) % batch == 0)
			exec_ok(db, "BEGIN");
		body_text(body, sizeof(body), i);
		sqlite3_bind_int(ins, 1, i);
		sqlite3_bind_text(ins, 2, body, -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
		sqlite3_reset(ins);
		if (fts) {
			sqlite3_bind_int(ins_fts, 1, i);
			sqlite3_bind_text(ins_fts, 2, body, -1, SQLITE_STATIC);
			assert_int_equal(sqlite3_step(ins_fts), SQLITE_DONE);
			sqlite3_reset(ins_fts);
		}
		if ((i - first) % batch == batch - 1 || i == first + n - 1)
			exec_ok(db, "COMMIT");
	}
	sqlite3_finalize(ins);
	sqlite3_finalize(ins_fts);
}

/* Checks that rows [0, n) are there with the right bodies. */
static void assert_rows(sqlite3 *db, int n)
{
	sqlite3_stmt *stmt;
	char body[256];
	int i = 0;

	assert_int_equal(query_int(db, "SELECT count(*) FROM m"), n);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT id, body FROM m "
					    "ORDER BY id",
					    -1, &stmt, NULL),
			 SQLITE_OK);
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		body_text(body, sizeof(body), i);
		assert_int_equal(sqlite3_column_int(stmt, 0), i);
		assert_string_equal((const char *)sqlite3_column_text(stmt, 1),
				    body);
		i++;
	}
	assert_int_equal(i, n);
	sqlite3_finalize(stmt);
}

/* Reads everything: returns SQLITE_OK or the first extended error. */
static int scan_all(sqlite3 *db)
{
	static const char *const queries[] = {
		"SELECT * FROM m",
		"SELECT * FROM t WHERE t MATCH 'Canary'",
		"PRAGMA integrity_check",
	};
	for (size_t i = 0; i < N_ELEMENTS(queries); i++) {
		sqlite3_stmt *stmt;
		int rc = sqlite3_prepare_v2(db, queries[i], -1, &stmt, NULL);

		while (rc == SQLITE_OK &&
		       (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
			if (i == 2 &&
			    strcmp((const char *)sqlite3_column_text(stmt, 0),
				   "ok") != 0)
				rc = SQLITE_CORRUPT;
			else
				rc = SQLITE_OK;
		}
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
		else if (rc != SQLITE_CORRUPT)
			rc = sqlite3_extended_errcode(db);
		sqlite3_finalize(stmt);
		if (rc != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}

static bool is_clean_error(int rc)
{
	return (rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_CORRUPT ||
	       (rc & 0xff) == SQLITE_NOTADB;
}

static void close_ok(sqlite3 *db)
{
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* ---- tests ---- */

static void test_canary_roundtrip(void **state)
{
	struct tmp *t = *state;
	unsigned int files;
	uint8_t *data;
	size_t len;
	int reserve = -1;
	sqlite3 *db = open_ok(t->db, key_a);

	create_schema(db);
	insert_rows(db, 0, 2000, 100, true);

	/* Open, nothing checkpointed: the rows are in the WAL. */
	assert_true(file_size(t->wal) > 2000 * 150);
	assert_int_equal(dir_hits(t->dir, CANARY, &files), 0);
	assert_int_equal(files, 3); /* db, -wal, -shm */
	assert_int_equal(dir_hits(t->dir, "alice@example", NULL), 0);
	assert_int_equal(dir_hits(t->dir, "CREATE TABLE", NULL), 0);
	assert_int_equal(dir_hits(t->dir, "trigram", NULL), 0);

	assert_int_equal(sqlite3_wal_checkpoint_v2(db, NULL,
						   SQLITE_CHECKPOINT_TRUNCATE,
						   NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(file_size(t->wal), 0);
	assert_true(file_size(t->db) > 2000 * 150);
	assert_int_equal(dir_hits(t->dir, CANARY, NULL), 0);
	/* Things that read and sort a lot must not need temp files. */
	assert_int_equal(query_int(db, "SELECT count(*) FROM (SELECT body "
				       "FROM m ORDER BY random())"),
			 2000);
	exec_ok(db, "CREATE INDEX m_body ON m(body)");
	exec_ok(db, "VACUUM");
	close_ok(db);
	assert_int_equal(dir_hits(t->dir, CANARY, &files), 0);
	assert_int_equal(files, 1); /* WAL and shm gone at last close */

	/* Only the documented 24 header bytes are in the clear. */
	data = read_file(t->db, &len);
	assert_memory_equal(data, "SQLite format 3", 16);
	assert_int_equal((data[16] << 8) | data[17], PAGE);
	assert_int_equal(data[18], 2); /* WAL */
	assert_int_equal(data[19], 2);
	assert_int_equal(data[20], VFS_CRYPT_RESERVE);
	assert_int_equal(len % PAGE, 0);
	i_free(data);

	db = open_ok(t->db, key_a);
	assert_int_equal(sqlite3_file_control(db, "main",
					      SQLITE_FCNTL_RESERVE_BYTES,
					      &reserve),
			 SQLITE_OK);
	assert_int_equal(reserve, VFS_CRYPT_RESERVE);
	assert_rows(db, 2000);
	assert_int_equal(query_int(db, "SELECT count(*) FROM t WHERE t "
				       "MATCH '\"7f3a9c1e\"'"),
			 2000);
	assert_int_equal(query_int(db, "SELECT count(*) FROM t WHERE t "
				       "MATCH '\"message 001234\"'"),
			 1);
	exec_ok(db, "INSERT INTO t(t) VALUES('integrity-check')");
	assert_integrity(db);
	/* Deleting rows with secure_delete keeps everything consistent. */
	exec_ok(db, "DELETE FROM m WHERE id >= 1000");
	assert_integrity(db);
	close_ok(db);
	assert_int_equal(dir_hits(t->dir, CANARY, NULL), 0);
}

static void test_missing_key(void **state)
{
	struct tmp *t = *state;
	const char *error = NULL;
	sqlite3 *db = open_ok(t->db, key_a);

	create_schema(db);
	insert_rows(db, 0, 10, 10, false);
	close_ok(db);

	vfs_crypt_key_clear(t->db);
	db = NULL;
	assert_int_equal(sqlite3_open_v2(t->db, &db, SQLITE_OPEN_READWRITE,
					 VFS_CRYPT_NAME),
			 SQLITE_CANTOPEN);
	sqlite3_close(db);

	/* A plain SQLite database is not ours: refused, not misread. */
	db = NULL;
	assert_int_equal(
		sqlite3_open_v2(t->other, &db,
				SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
				NULL),
		SQLITE_OK);
	exec_ok(db, "CREATE TABLE x(a); INSERT INTO x VALUES(1)");
	close_ok(db);
	assert_int_equal(vfs_crypt_open(t->other, key_a, SQLITE_OPEN_READWRITE,
					&db, &error),
			 -1);
	assert_null(db);
	assert_non_null(strstr(error, "not a database"));

	db = open_ok(t->db, key_a);
	assert_rows(db, 10);
	close_ok(db);
}

static void test_wrong_key(void **state)
{
	struct tmp *t = *state;
	const char *error = NULL;
	sqlite3 *db = open_ok(t->db, key_a);

	create_schema(db);
	insert_rows(db, 0, 300, 100, true);
	close_ok(db);

	db = (sqlite3 *)1;
	assert_int_equal(vfs_crypt_open(t->db, key_b, SQLITE_OPEN_READWRITE,
					&db, &error),
			 -1);
	assert_null(db);
	assert_non_null(error);
	assert_non_null(strstr(error, "not a database"));

	/* The failed attempt changed nothing. */
	db = open_ok(t->db, key_a);
	assert_rows(db, 300);
	assert_integrity(db);
	close_ok(db);
}

/* Replaces [off, off + len) of the file with bytes from src. */
static void patch_file(const char *path, off_t off, const uint8_t *src,
		       size_t len)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, src, len, off), (ssize_t)len);
	close(fd);
}

static void test_tamper(void **state)
{
	struct tmp *t = *state;
	/* Byte offsets to flip; page 1 ones must fail at open. */
	static const struct {
		off_t off;
		bool at_open;
	} flips[] = {
		{ 21, true }, /* clear, authenticated */
		{ 24, true }, /* change counter */
		{ 100, true }, /* page 1 b-tree header */
		{ PAGE - 40, true }, /* page 1 nonce */
		{ PAGE - 1, true }, /* page 1 tag */
		{ 2 * PAGE + 1000, false }, /* page 3 body */
		{ 5 * PAGE + PAGE - 30, false }, /* page 6 nonce */
		{ 9 * PAGE + PAGE - 5, false }, /* page 10 tag */
		{ 40 * PAGE + 7, false }, /* page 41 body */
	};
	uint8_t *pristine, *other, *page;
	size_t len, other_len;
	const char *error;
	sqlite3 *db;

	db = open_ok(t->db, key_a);
	create_schema(db);
	insert_rows(db, 0, 2000, 500, true);
	close_ok(db);
	pristine = read_file(t->db, &len);
	assert_true(len > 50 * PAGE);

	/* The same content under key B, for transplants. */
	db = open_ok(t->other, key_b);
	create_schema(db);
	insert_rows(db, 0, 2000, 500, true);
	close_ok(db);
	other = read_file(t->other, &other_len);

	for (size_t i = 0; i < N_ELEMENTS(flips); i++) {
		uint8_t byte = pristine[flips[i].off] ^ 0x01;
		int ret;

		patch_file(t->db, flips[i].off, &byte, 1);
		ret = vfs_crypt_open(t->db, key_a, SQLITE_OPEN_READWRITE, &db,
				     &error);
		if (flips[i].at_open) {
			assert_int_equal(ret, -1);
		} else {
			assert_int_equal(ret, 0);
			assert_true(is_clean_error(scan_all(db)));
			close_ok(db);
		}
		write_file(t->db, pristine, len);
	}

	/* Swapped pages 3 and 4. */
	patch_file(t->db, 2 * PAGE, pristine + 3 * PAGE, PAGE);
	patch_file(t->db, 3 * PAGE, pristine + 2 * PAGE, PAGE);
	db = open_ok(t->db, key_a);
	assert_true(is_clean_error(scan_all(db)));
	close_ok(db);
	write_file(t->db, pristine, len);

	/* A page of key B's database at the same place. */
	patch_file(t->db, 7 * PAGE, other + 7 * PAGE, PAGE);
	db = open_ok(t->db, key_a);
	assert_true(is_clean_error(scan_all(db)));
	close_ok(db);
	/* Key B's whole database under key A's name, and the reverse. */
	write_file(t->db, other, other_len);
	assert_int_equal(vfs_crypt_open(t->db, key_a, SQLITE_OPEN_READWRITE,
					&db, &error),
			 -1);
	assert_int_equal(vfs_crypt_open(t->other, key_a, SQLITE_OPEN_READWRITE,
					&db, &error),
			 -1);
	/* A zeroed page inside the file is not a "hole". */
	write_file(t->db, pristine, len);
	page = i_malloc(PAGE);
	patch_file(t->db, 4 * PAGE, page, PAGE);
	i_free(page);
	db = open_ok(t->db, key_a);
	assert_true(is_clean_error(scan_all(db)));
	close_ok(db);

	/* Restored, everything reads again: the errors came from damage. */
	write_file(t->db, pristine, len);
	db = open_ok(t->db, key_a);
	assert_int_equal(scan_all(db), SQLITE_OK);
	assert_rows(db, 2000);
	close_ok(db);
	i_free(pristine);
	i_free(other);
}

static void test_rollback(void **state)
{
	struct tmp *t = *state;
	sqlite3 *db = open_ok(t->db, key_a);

	create_schema(db);
	exec_ok(db, "CREATE TABLE u(x UNIQUE)");
	insert_rows(db, 0, 100, 100, true);

	/* Plain rollback. */
	exec_ok(db, "BEGIN");
	exec_ok(db, "DELETE FROM m; INSERT INTO m VALUES(5000, 'gone')");
	exec_ok(db, "ROLLBACK");
	assert_rows(db, 100);

	/* Statement rollback (statement journal, in memory). */
	exec_ok(db, "BEGIN; INSERT INTO u VALUES(1)");
	assert_int_equal(exec_rc(db, "INSERT INTO u VALUES (2), (3), (1)"),
			 SQLITE_CONSTRAINT_UNIQUE);
	exec_ok(db, "SAVEPOINT sp; INSERT INTO u VALUES(7);"
		    "ROLLBACK TO sp; RELEASE sp; COMMIT");
	assert_int_equal(query_int(db, "SELECT group_concat(x) FROM u"), 1);

	/* A transaction bigger than the cache spills pages into the WAL
	   before commit, and rewrites some frames: roll it back, then do it
	   again and commit. */
	exec_ok(db, "PRAGMA cache_size=10");
	exec_ok(db, "BEGIN");
	exec_ok(db, "UPDATE m SET body = body || ' edited'");
	exec_ok(db, "INSERT INTO m SELECT id + 10000, body FROM m");
	exec_ok(db, "ROLLBACK");
	assert_rows(db, 100);
	insert_rows(db, 100, 1900, 1900, true);
	assert_rows(db, 2000);
	assert_integrity(db);
	close_ok(db);

	db = open_ok(t->db, key_a);
	assert_rows(db, 2000);
	assert_integrity(db);
	close_ok(db);
	assert_int_equal(dir_hits(t->dir, CANARY, NULL), 0);
}

static void test_crash_recovery(void **state)
{
	struct tmp *t = *state;
	const char *error;
	uint8_t *wal, *torn;
	size_t wal_len, frame_len = 24 + PAGE;
	off_t wal_size;
	pid_t pid;
	int status;
	sqlite3 *db = open_ok(t->db, key_a);

	create_schema(db);
	close_ok(db);

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Commit 1000 rows (with cache spills), leave one transaction
		   open and die without closing or checkpointing. */
		db = open_ok(t->db, key_a);
		exec_ok(db, "PRAGMA cache_size=20");
		insert_rows(db, 0, 1000, 250, true);
		exec_ok(db, "BEGIN");
		exec_ok(db, "INSERT INTO m SELECT id + 5000, body FROM m");
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(file_size(t->wal) > 1000 * 150);
	assert_int_equal(dir_hits(t->dir, CANARY, NULL), 0);

	/* Without the -shm, SQLite must rebuild the WAL index from the
	   frames. A torn frame at the end: a copy of the last frame with
	   part of its page overwritten, then half a frame. */
	assert_int_equal(unlink(t->shm), 0);
	wal = read_file(t->wal, &wal_len);
	assert_int_equal((wal_len - 32) % frame_len, 0);
	torn = i_malloc(frame_len + frame_len / 2);
	memcpy(torn, wal + wal_len - frame_len, frame_len);
	memset(torn + 24 + 100, 0x5a, 200);
	memcpy(torn + frame_len, wal + wal_len - frame_len, frame_len / 2);
	patch_file(t->wal, (off_t)wal_len, torn, frame_len + frame_len / 2);
	i_free(torn);
	i_free(wal);
	wal_size = file_size(t->wal);

	/* A wrong key must fail before recovery can touch the WAL. */
	assert_int_equal(vfs_crypt_open(t->db, key_b, SQLITE_OPEN_READWRITE,
					&db, &error),
			 -1);
	assert_int_equal(file_size(t->wal), wal_size);

	db = open_ok(t->db, key_a);
	assert_rows(db, 1000);
	assert_int_equal(query_int(db, "SELECT count(*) FROM t WHERE t "
				       "MATCH 'Canary'"),
			 1000);
	assert_integrity(db);
	insert_rows(db, 1000, 10, 10, true);
	assert_rows(db, 1010);
	close_ok(db);
	assert_int_equal(dir_hits(t->dir, CANARY, NULL), 0);
}

static void test_refused_files(void **state)
{
	struct tmp *t = *state;
	sqlite3 *db = open_ok(t->db, key_a);
	int reserve = VFS_CRYPT_RESERVE;

	create_schema(db);
	insert_rows(db, 0, 50, 50, false);
	/* A file-backed temp database is refused once SQLite has to spill
	   it to disk; in memory it works. */
	exec_ok(db, "PRAGMA temp_store=FILE; PRAGMA temp.cache_size=5;"
		    "CREATE TEMP TABLE x(a)");
	assert_int_equal(exec_rc(db, "WITH RECURSIVE c(i) AS (SELECT 1 "
				     "UNION ALL SELECT i + 1 FROM c "
				     "WHERE i < 2000) "
				     "INSERT INTO x SELECT randomblob(500) "
				     "FROM c"),
			 SQLITE_CANTOPEN);
	exec_ok(db, "PRAGMA temp_store=MEMORY; PRAGMA temp.cache_size=5;"
		    "CREATE TEMP TABLE x(a);"
		    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL "
		    "SELECT i + 1 FROM c WHERE i < 2000) "
		    "INSERT INTO x SELECT randomblob(500) FROM c");
	assert_int_equal(query_int(db, "SELECT count(*) FROM temp.x"), 2000);
	/* No key for an attached database: refused. */
	assert_int_equal(exec_rc(db, "ATTACH 'file:other.db' AS o"),
			 SQLITE_CANTOPEN);
	close_ok(db);

	/* Through the VFS without vfs_crypt_open(): a rollback journal is
	   refused, and so is a database without reserved bytes. */
	assert_int_equal(vfs_crypt_key_set(t->other, key_a), 0);
	assert_int_equal(
		sqlite3_open_v2(t->other, &db,
				SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
				VFS_CRYPT_NAME),
		SQLITE_OK);
	assert_int_equal(exec_rc(db, "CREATE TABLE x(a)"), SQLITE_CANTOPEN);
	exec_ok(db, "PRAGMA journal_mode=OFF");
	assert_int_equal(exec_rc(db, "CREATE TABLE x(a)"), SQLITE_IOERR_WRITE);
	close_ok(db);
	assert_int_equal(file_size(t->other), 0);

	assert_int_equal(sqlite3_open_v2(t->other, &db, SQLITE_OPEN_READWRITE,
					 VFS_CRYPT_NAME),
			 SQLITE_OK);
	assert_int_equal(sqlite3_file_control(db, "main",
					      SQLITE_FCNTL_RESERVE_BYTES,
					      &reserve),
			 SQLITE_OK);
	exec_ok(db, "PRAGMA journal_mode=OFF; CREATE TABLE x(a);"
		    "INSERT INTO x VALUES('" CANARY "')");
	close_ok(db);
	assert_int_equal(dir_hits(t->dir, CANARY, NULL), 0);
	db = open_ok(t->other, key_a);
	assert_int_equal(query_int(db, "SELECT count(*) FROM x"), 1);
	close_ok(db);
}

static void test_two_connections(void **state)
{
	struct tmp *t = *state;
	sqlite3 *writer = open_ok(t->db, key_a), *reader;
	sqlite3_stmt *stmt;

	create_schema(writer);
	insert_rows(writer, 0, 500, 100, true);
	reader = open_ok(t->db, key_a);
	/* The key may go once both are open: each keeps its own copy. */
	vfs_crypt_key_clear(t->db);

	/* A read transaction keeps its snapshot while the writer goes on
	   and checkpoints what it can. */
	assert_int_equal(sqlite3_prepare_v2(reader, "SELECT count(*) FROM m",
					    -1, &stmt, NULL),
			 SQLITE_OK);
	exec_ok(reader, "BEGIN");
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), 500);
	sqlite3_reset(stmt);
	insert_rows(writer, 500, 500, 100, true);
	assert_int_equal(sqlite3_wal_checkpoint_v2(writer, NULL,
						   SQLITE_CHECKPOINT_PASSIVE,
						   NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), 500);
	sqlite3_reset(stmt);
	exec_ok(reader, "COMMIT");
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), 1000);
	sqlite3_finalize(stmt);
	assert_rows(reader, 1000);

	/* The reader now restarts the log with a full checkpoint, and the
	   writer keeps writing into the new one. */
	assert_int_equal(sqlite3_wal_checkpoint_v2(reader, NULL,
						   SQLITE_CHECKPOINT_RESTART,
						   NULL, NULL),
			 SQLITE_OK);
	insert_rows(writer, 1000, 200, 50, true);
	assert_rows(reader, 1200);
	assert_integrity(reader);
	close_ok(writer);
	close_ok(reader);
	assert_int_equal(dir_hits(t->dir, CANARY, NULL), 0);
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Inserts rows into a new database (encrypted or not) with the given
   synchronous setting and returns rows per second. */
static double bench_inserts(struct tmp *t, bool encrypted, const char *sync,
			    int rows, int batch)
{
	char sql[64];
	double start;
	sqlite3 *db;

	unlink(t->other);
	unlink(t->db);
	if (encrypted) {
		db = open_ok(t->db, key_a);
	} else {
		/* The same settings on the default VFS. */
		assert_int_equal(sqlite3_open_v2(t->other, &db,
						 SQLITE_OPEN_READWRITE |
							 SQLITE_OPEN_CREATE,
						 NULL),
				 SQLITE_OK);
		exec_ok(db, "PRAGMA temp_store=MEMORY; PRAGMA secure_delete=ON;"
			    "PRAGMA journal_mode=WAL");
	}
	snprintf(sql, sizeof(sql), "PRAGMA synchronous=%s", sync);
	exec_ok(db, sql);
	create_schema(db);
	start = now_sec();
	insert_rows(db, 0, rows, batch, true);
	start = now_sec() - start;
	assert_int_equal(query_int(db, "SELECT count(*) FROM m"), rows);
	close_ok(db);
	return rows / start;
}

static void test_benchmark(void **state)
{
	static const char *const syncs[] = { "FULL", "OFF" };
	struct tmp *t = *state;
	const int rows = 5000, batch = 500, runs = 3;

	for (size_t i = 0; i < N_ELEMENTS(syncs); i++) {
		double plain = 0, crypt = 0, rate;

		/* Alternating runs, best of each, to damp warm-up and noise. */
		for (int run = 0; run < runs; run++) {
			rate = bench_inserts(t, false, syncs[i], rows, batch);
			plain = rate > plain ? rate : plain;
			rate = bench_inserts(t, true, syncs[i], rows, batch);
			crypt = rate > crypt ? rate : crypt;
		}
		printf("# bench insert (%d rows + FTS5 trigram, %d per commit, "
		       "synchronous=%s, best of %d): plain %.0f rows/s, "
		       "encrypted %.0f rows/s, overhead %.1f%%\n",
		       rows, batch, syncs[i], runs, plain, crypt,
		       (plain / crypt - 1.0) * 100.0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_canary_roundtrip,
						tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_missing_key, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_wrong_key, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_tamper, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_rollback, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_crash_recovery, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_refused_files, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_two_connections, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_benchmark, tmp_setup,
						tmp_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
