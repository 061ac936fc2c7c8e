/* store-sqlite.c - the SQLite backend of the store interface: one
   encrypted DATA/accounts/<id>/store.db per account, opened through the
   marmot-crypt VFS (sqlite-vfs-crypt.h: every page and WAL frame
   encrypted, WAL, synchronous=FULL, defensive mode). store.c calls it
   through the vtable in store-private.h after checking every argument.

   Schema (version 2, PRAGMA user_version; migrations run in one
   transaction):
     counters      account-wide values: modseq (the CONDSTORE counter),
		   uidvalidity (the last one handed out), usage (bytes, for
		   the quota)
     mailboxes     one row per mailbox with its UIDNEXT, HIGHESTMODSEQ and
		   its message, unseen and size counts (kept by triggers in
		   the same transaction: STATUS is O(1))
     emails        one row per email: the data copies share (email id,
		   thread id, blob, cached ENVELOPE/BODYSTRUCTURE/preview)
     messages      (mailbox_id, uid) -> email, modseq, flags, keywords
		   (space-separated atoms), dates, size; WITHOUT ROWID so
		   FETCH 1:* is one range scan of the primary key
     email_text    the searchable text of each email, once per email;
		   the content of two external-content FTS5 tables:
		   fts_sub (trigram: substring, case-insensitive) and
		   fts_word (unicode61, diacritics removed: words, prefixes)
     changes       the change log, one row per modseq; expunges stay as
		   tombstones (QRESYNC VANISHED, JMAP /changes). Retention:
		   everything is kept for now.
     spool_merged  spool record ids already merged (idempotent merge);
		   kept forever (24 bytes a message)
     thread_ids    Message-ID -> thread id, for every Message-ID a message
		   has or references; kept after expunges so threads stay
		   stable
     email_sort    (version 2) the SORT/THREAD keys of each email (RFC
		   5256, RFC 5957): Date: time, base subject, first
		   From/To/Cc mailbox, display names, Message-ID and
		   references (space-separated), written with the email and
		   dropped with it. The 1 -> 2 migration only creates the
		   table: the store cannot read blobs, so emails appended
		   before it have no row, store_sort_keys() reports them as
		   not present and the IMAP front fills them from the blob
		   on first SORT/THREAD (store_sort_keys_fill()).

   Every operation is one BEGIN IMMEDIATE transaction. The modseq counter
   is read at BEGIN, advanced in memory and written back before COMMIT;
   the quota is checked just before COMMIT (usage grew and is above the
   quota: roll back). Notifications are queued during the transaction and
   sent after COMMIT.

   Security stance: all SQL is static text prepared once per store (at
   open) with bound parameters; FTS queries are built from the user's
   string with every token quoted, so a query cannot inject FTS5 syntax.
   A damaged or wrongly keyed database fails at open (SQLITE_NOTADB) or
   maps to STORE_ERROR_DAMAGED. */

#include "lib.h"
#include "buf.h"
#include "pool.h"
#include "spool.h"
#include "store-private.h"
#include "sqlite-vfs-crypt.h"
#include "message-index.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define STORE_SCHEMA_VERSION 2
#define STORE_UID_MAX 4294967295u
/* At most this many references take part in thread lookups. */
#define STORE_THREAD_REFS_MAX 32

static const char *const schema_v1[] = {
	"CREATE TABLE counters(name TEXT PRIMARY KEY, "
	"value INTEGER NOT NULL) WITHOUT ROWID",
	"INSERT INTO counters(name, value) VALUES('modseq', 0), "
	"('uidvalidity', 0), ('usage', 0)",
	"CREATE TABLE mailboxes(id INTEGER PRIMARY KEY AUTOINCREMENT, "
	"name TEXT NOT NULL UNIQUE, special_use INTEGER NOT NULL, "
	"subscribed INTEGER NOT NULL, uidvalidity INTEGER NOT NULL, "
	"uidnext INTEGER NOT NULL, highestmodseq INTEGER NOT NULL, "
	"created INTEGER NOT NULL, messages INTEGER NOT NULL DEFAULT 0, "
	"unseen INTEGER NOT NULL DEFAULT 0, size INTEGER NOT NULL DEFAULT 0)",
	"CREATE TABLE emails(id INTEGER PRIMARY KEY, "
	"email_id TEXT NOT NULL UNIQUE, thread_id TEXT NOT NULL, "
	"blob_id BLOB NOT NULL, size INTEGER NOT NULL, envelope TEXT, "
	"bodystructure TEXT, body TEXT, preview TEXT)",
	"CREATE INDEX emails_blob ON emails(blob_id)",
	"CREATE TABLE messages(mailbox_id INTEGER NOT NULL, "
	"uid INTEGER NOT NULL, modseq INTEGER NOT NULL, "
	"flags INTEGER NOT NULL, keywords TEXT NOT NULL, "
	"internaldate INTEGER NOT NULL, savedate INTEGER NOT NULL, "
	"size INTEGER NOT NULL, email INTEGER NOT NULL, "
	"PRIMARY KEY(mailbox_id, uid)) WITHOUT ROWID",
	"CREATE INDEX messages_email ON messages(email)",
	"CREATE TABLE email_text(id INTEGER PRIMARY KEY, f_from TEXT, "
	"f_to TEXT, f_cc TEXT, f_bcc TEXT, f_subject TEXT, f_text TEXT)",
	"CREATE VIRTUAL TABLE fts_sub USING fts5(f_from, f_to, f_cc, f_bcc, "
	"f_subject, f_text, content='email_text', content_rowid='id', "
	"tokenize='trigram')",
	"CREATE VIRTUAL TABLE fts_word USING fts5(f_from, f_to, f_cc, f_bcc, "
	"f_subject, f_text, content='email_text', content_rowid='id', "
	"tokenize='unicode61 remove_diacritics 2')",
	"CREATE TABLE changes(modseq INTEGER PRIMARY KEY, "
	"kind INTEGER NOT NULL, mailbox_id INTEGER NOT NULL, "
	"uid INTEGER NOT NULL)",
	"CREATE INDEX changes_mailbox ON changes(mailbox_id, modseq)",
	"CREATE TABLE spool_merged(record_id BLOB PRIMARY KEY, "
	"mailbox_id INTEGER NOT NULL, uid INTEGER NOT NULL) WITHOUT ROWID",
	"CREATE TABLE thread_ids(message_id TEXT PRIMARY KEY, "
	"thread_id TEXT NOT NULL) WITHOUT ROWID",
	/* Counts follow the rows in the same statement, so they cannot
	   drift from them. */
	"CREATE TRIGGER messages_ins AFTER INSERT ON messages BEGIN "
	"UPDATE mailboxes SET messages = messages + 1, "
	"unseen = unseen + ((NEW.flags & 1) = 0), size = size + NEW.size "
	"WHERE id = NEW.mailbox_id; "
	"UPDATE counters SET value = value + NEW.size WHERE name = 'usage'; "
	"END",
	"CREATE TRIGGER messages_del AFTER DELETE ON messages BEGIN "
	"UPDATE mailboxes SET messages = messages - 1, "
	"unseen = unseen - ((OLD.flags & 1) = 0), size = size - OLD.size "
	"WHERE id = OLD.mailbox_id; "
	"UPDATE counters SET value = value - OLD.size WHERE name = 'usage'; "
	"END",
	"CREATE TRIGGER messages_seen AFTER UPDATE OF flags ON messages "
	"WHEN (OLD.flags & 1) != (NEW.flags & 1) BEGIN "
	"UPDATE mailboxes SET unseen = unseen + ((NEW.flags & 1) = 0) - "
	"((OLD.flags & 1) = 0) WHERE id = NEW.mailbox_id; END",
	"CREATE TRIGGER changes_ins AFTER INSERT ON changes BEGIN "
	"UPDATE mailboxes SET highestmodseq = NEW.modseq "
	"WHERE id = NEW.mailbox_id AND highestmodseq < NEW.modseq; END",
};

/* Version 2: the SORT/THREAD keys (RFC 5256, RFC 5957). */
static const char *const schema_v2[] = {
	"CREATE TABLE email_sort(id INTEGER PRIMARY KEY, "
	"date INTEGER NOT NULL, base_subject TEXT NOT NULL, "
	"subject_reply INTEGER NOT NULL, from_key TEXT NOT NULL, "
	"to_key TEXT NOT NULL, cc_key TEXT NOT NULL, "
	"display_from TEXT NOT NULL, display_to TEXT NOT NULL, "
	"message_id TEXT NOT NULL, refs TEXT NOT NULL)",
};

#define MBOX_COLS                                                   \
	"id, name, special_use, subscribed, uidvalidity, uidnext, " \
	"highestmodseq, messages, unseen, size"
#define TEXT_COLS "f_from, f_to, f_cc, f_bcc, f_subject, f_text"
#define SEARCH_ORDER " ORDER BY m.internaldate DESC, m.mailbox_id, m.uid DESC"

enum stmt_id {
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_COUNTER_GET,
	S_COUNTER_SET,
	S_MBOX_INSERT,
	S_MBOX_BY_NAME,
	S_MBOX_BY_ID,
	S_MBOX_BY_SPECIAL,
	S_MBOX_LIST,
	S_MBOX_CHILDREN,
	S_MBOX_SET_NAME,
	S_MBOX_SET_SUB,
	S_MBOX_DELETE,
	S_MBOX_ALLOC_UID,
	S_MSG_UIDS,
	S_MSG_DELETED_UIDS,
	S_MSG_COUNT_FLAG,
	S_MSG_KEYWORDS,
	S_MSG_GET,
	S_MSG_INSERT,
	S_MSG_DELETE,
	S_MSG_SET_FLAGS,
	S_MSG_FETCH,
	S_MSG_FETCH_META,
	S_EMAIL_INSERT,
	S_EMAIL_USED,
	S_EMAIL_DELETE,
	S_TEXT_INSERT,
	S_TEXT_DELETE,
	S_FTS_SUB_ADD,
	S_FTS_WORD_ADD,
	S_FTS_SUB_DEL,
	S_FTS_WORD_DEL,
	S_CHANGE_INSERT,
	S_CHANGES_ALL,
	S_CHANGES_MBOX,
	S_SPOOL_GET,
	S_SPOOL_ADD,
	S_THREAD_GET,
	S_SORT_INSERT,
	S_SORT_DELETE,
	S_SORT_KEYS,
	S_SORT_FILL,
	S_THREAD_ADD,
	S_SEARCH_SUB,
	S_SEARCH_WORD,
	S_SEARCH_SCAN,
	S_BLOBS,
	S_INTEGRITY,
	S_FTS_SUB_CHECK,
	S_FTS_WORD_CHECK,
	S_VERIFY_MAILBOXES,
	S_VERIFY_TOTALS,

	S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_COUNTER_GET] = "SELECT value FROM counters WHERE name = ?1",
	[S_COUNTER_SET] = "UPDATE counters SET value = ?2 WHERE name = ?1",
	[S_MBOX_INSERT] = "INSERT INTO mailboxes(name, special_use, "
			  "subscribed, uidvalidity, uidnext, highestmodseq, "
			  "created) VALUES(?1, ?2, ?3, ?4, 1, 0, ?5)",
	[S_MBOX_BY_NAME] = "SELECT " MBOX_COLS " FROM mailboxes "
			   "WHERE name = ?1",
	[S_MBOX_BY_ID] = "SELECT " MBOX_COLS " FROM mailboxes WHERE id = ?1",
	[S_MBOX_BY_SPECIAL] = "SELECT " MBOX_COLS " FROM mailboxes "
			      "WHERE special_use = ?1 ORDER BY id LIMIT 1",
	[S_MBOX_LIST] = "SELECT " MBOX_COLS " FROM mailboxes ORDER BY name",
	[S_MBOX_CHILDREN] = "SELECT id, name FROM mailboxes "
			    "WHERE name > ?1 AND name < ?2 ORDER BY name",
	[S_MBOX_SET_NAME] = "UPDATE mailboxes SET name = ?2 WHERE id = ?1",
	[S_MBOX_SET_SUB] = "UPDATE mailboxes SET subscribed = ?2 "
			   "WHERE id = ?1",
	[S_MBOX_DELETE] = "DELETE FROM mailboxes WHERE id = ?1",
	[S_MBOX_ALLOC_UID] = "UPDATE mailboxes SET uidnext = uidnext + 1 "
			     "WHERE id = ?1 AND uidnext < 4294967295 "
			     "RETURNING uidnext - 1",
	[S_MSG_UIDS] = "SELECT uid FROM messages WHERE mailbox_id = ?1 "
		       "ORDER BY uid",
	[S_MSG_COUNT_FLAG] = "SELECT count(*) FROM messages "
			     "WHERE mailbox_id = ?1 AND (flags & ?2) != 0",
	[S_MSG_DELETED_UIDS] = "SELECT uid FROM messages "
			       "WHERE mailbox_id = ?1 AND (flags & 8) != 0 "
			       "ORDER BY uid",
	[S_MSG_KEYWORDS] = "SELECT DISTINCT keywords FROM messages "
			   "WHERE mailbox_id = ?1 AND keywords != ''",
	[S_MSG_GET] = "SELECT modseq, flags, keywords, internaldate, size, "
		      "email FROM messages WHERE mailbox_id = ?1 AND uid = ?2",
	[S_MSG_INSERT] = "INSERT INTO messages(mailbox_id, uid, modseq, "
			 "flags, keywords, internaldate, savedate, size, "
			 "email) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[S_MSG_DELETE] = "DELETE FROM messages WHERE mailbox_id = ?1 "
			 "AND uid = ?2 RETURNING email",
	[S_MSG_SET_FLAGS] = "UPDATE messages SET flags = ?3, keywords = ?4, "
			    "modseq = ?5 WHERE mailbox_id = ?1 AND uid = ?2",
	[S_MSG_FETCH] = "SELECT m.uid, m.modseq, m.flags, m.keywords, "
			"m.internaldate, m.savedate, m.size, e.email_id, "
			"e.thread_id, e.blob_id, e.envelope, "
			"e.bodystructure, e.body, e.preview "
			"FROM messages m JOIN emails e ON e.id = m.email "
			"WHERE m.mailbox_id = ?1 AND m.uid >= ?2 "
			"AND m.uid <= ?3 ORDER BY m.uid",
	/* SEARCH: the same rows without the cached IMAP strings. */
	[S_MSG_FETCH_META] = "SELECT m.uid, m.modseq, m.flags, m.keywords, "
			     "m.internaldate, m.savedate, m.size, e.email_id, "
			     "e.thread_id, e.blob_id "
			     "FROM messages m JOIN emails e ON e.id = m.email "
			     "WHERE m.mailbox_id = ?1 AND m.uid >= ?2 "
			     "AND m.uid <= ?3 ORDER BY m.uid",
	[S_EMAIL_INSERT] = "INSERT INTO emails(email_id, thread_id, blob_id, "
			   "size, envelope, bodystructure, body, preview) "
			   "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[S_EMAIL_USED] = "SELECT 1 FROM messages WHERE email = ?1 LIMIT 1",
	[S_EMAIL_DELETE] = "DELETE FROM emails WHERE id = ?1",
	[S_TEXT_INSERT] = "INSERT INTO email_text(id, " TEXT_COLS ") "
			  "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[S_TEXT_DELETE] = "DELETE FROM email_text WHERE id = ?1",
	[S_FTS_SUB_ADD] = "INSERT INTO fts_sub(rowid, " TEXT_COLS ") "
			  "SELECT id, " TEXT_COLS " FROM email_text "
			  "WHERE id = ?1",
	[S_FTS_WORD_ADD] = "INSERT INTO fts_word(rowid, " TEXT_COLS ") "
			   "SELECT id, " TEXT_COLS " FROM email_text "
			   "WHERE id = ?1",
	[S_FTS_SUB_DEL] = "INSERT INTO fts_sub(fts_sub, rowid, " TEXT_COLS
			  ") SELECT 'delete', id, " TEXT_COLS
			  " FROM email_text WHERE id = ?1",
	[S_FTS_WORD_DEL] = "INSERT INTO fts_word(fts_word, rowid, " TEXT_COLS
			   ") SELECT 'delete', id, " TEXT_COLS
			   " FROM email_text WHERE id = ?1",
	[S_CHANGE_INSERT] = "INSERT INTO changes(modseq, kind, mailbox_id, "
			    "uid) VALUES(?1, ?2, ?3, ?4)",
	[S_CHANGES_ALL] = "SELECT modseq, kind, mailbox_id, uid FROM changes "
			  "WHERE modseq > ?1 ORDER BY modseq",
	[S_CHANGES_MBOX] = "SELECT modseq, kind, mailbox_id, uid "
			   "FROM changes WHERE mailbox_id = ?2 "
			   "AND modseq > ?1 ORDER BY modseq",
	[S_SPOOL_GET] = "SELECT mailbox_id, uid FROM spool_merged "
			"WHERE record_id = ?1",
	[S_SPOOL_ADD] = "INSERT INTO spool_merged(record_id, mailbox_id, "
			"uid) VALUES(?1, ?2, ?3)",
	[S_THREAD_GET] = "SELECT thread_id FROM thread_ids "
			 "WHERE message_id = ?1",
	[S_THREAD_ADD] = "INSERT OR IGNORE INTO thread_ids(message_id, "
			 "thread_id) VALUES(?1, ?2)",
	[S_SORT_INSERT] = "INSERT OR REPLACE INTO email_sort(id, date, "
			  "base_subject, subject_reply, from_key, to_key, "
			  "cc_key, display_from, display_to, message_id, "
			  "refs) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
			  "?10, ?11)",
	[S_SORT_DELETE] = "DELETE FROM email_sort WHERE id = ?1",
	[S_SORT_KEYS] = "SELECT m.uid, m.internaldate, m.size, s.id, "
			"s.date, s.base_subject, s.subject_reply, "
			"s.from_key, s.to_key, s.cc_key, s.display_from, "
			"s.display_to, s.message_id, s.refs "
			"FROM messages m LEFT JOIN email_sort s "
			"ON s.id = m.email WHERE m.mailbox_id = ?1 "
			"AND m.uid >= ?2 AND m.uid <= ?3 ORDER BY m.uid",
	[S_SORT_FILL] = "SELECT email FROM messages WHERE mailbox_id = ?1 "
			"AND uid = ?2",
	[S_SEARCH_SUB] = "SELECT m.mailbox_id, m.uid FROM messages m "
			 "WHERE m.email IN (SELECT rowid FROM fts_sub "
			 "WHERE fts_sub MATCH ?1) "
			 "AND (?2 = 0 OR m.mailbox_id = ?2)" SEARCH_ORDER,
	[S_SEARCH_WORD] = "SELECT m.mailbox_id, m.uid FROM messages m "
			  "WHERE m.email IN (SELECT rowid FROM fts_word "
			  "WHERE fts_word MATCH ?1) "
			  "AND (?2 = 0 OR m.mailbox_id = ?2)" SEARCH_ORDER,
	/* Needles under 3 characters: the trigram index cannot help, so
	   scan (lower() folds ASCII only). */
	[S_SEARCH_SCAN] = "SELECT m.mailbox_id, m.uid FROM messages m "
			  "WHERE m.email IN (SELECT id FROM email_text WHERE "
			  "(?3 IN (0, 1) AND instr(lower(f_text), ?1) > 0) OR "
			  "(?3 IN (0, 2) AND instr(lower(f_from), ?1) > 0) OR "
			  "(?3 IN (0, 3) AND instr(lower(f_to), ?1) > 0) OR "
			  "(?3 IN (0, 4) AND instr(lower(f_cc), ?1) > 0) OR "
			  "(?3 IN (0, 5) AND instr(lower(f_bcc), ?1) > 0) OR "
			  "(?3 IN (0, 6) AND instr(lower(f_subject), ?1) > 0)"
			  ") AND (?2 = 0 OR m.mailbox_id = ?2)" SEARCH_ORDER,
	[S_BLOBS] = "SELECT blob_id, max(size) FROM emails GROUP BY blob_id",
	[S_INTEGRITY] = "PRAGMA integrity_check(10)",
	[S_FTS_SUB_CHECK] = "INSERT INTO fts_sub(fts_sub) "
			    "VALUES('integrity-check')",
	[S_FTS_WORD_CHECK] = "INSERT INTO fts_word(fts_word) "
			     "VALUES('integrity-check')",
	[S_VERIFY_MAILBOXES] =
		"SELECT b.name FROM mailboxes b WHERE "
		"b.messages != (SELECT count(*) FROM messages m "
		"WHERE m.mailbox_id = b.id) OR "
		"b.unseen != (SELECT count(*) FROM messages m "
		"WHERE m.mailbox_id = b.id AND (m.flags & 1) = 0) OR "
		"b.size != (SELECT ifnull(sum(m.size), 0) FROM messages m "
		"WHERE m.mailbox_id = b.id) OR "
		"b.uidnext <= (SELECT ifnull(max(m.uid), 0) FROM messages m "
		"WHERE m.mailbox_id = b.id) OR "
		"b.highestmodseq < (SELECT ifnull(max(m.modseq), 0) "
		"FROM messages m WHERE m.mailbox_id = b.id) LIMIT 1",
	[S_VERIFY_TOTALS] =
		"SELECT (SELECT value FROM counters WHERE name = 'usage') = "
		"(SELECT ifnull(sum(size), 0) FROM messages), "
		"(SELECT value FROM counters WHERE name = 'modseq') >= "
		"max((SELECT ifnull(max(modseq), 0) FROM changes), "
		"(SELECT ifnull(max(modseq), 0) FROM messages)), "
		"(SELECT count(*) FROM messages m WHERE NOT EXISTS "
		"(SELECT 1 FROM emails e WHERE e.id = m.email)), "
		"(SELECT count(*) FROM emails e WHERE NOT EXISTS "
		"(SELECT 1 FROM messages m WHERE m.email = e.id)), "
		"(SELECT count(*) FROM emails e WHERE NOT EXISTS "
		"(SELECT 1 FROM email_text t WHERE t.id = e.id)), "
		"(SELECT count(*) FROM (SELECT blob_id FROM emails "
		"GROUP BY blob_id HAVING min(size) != max(size)))",
};

struct sqlite_store {
	struct store store;
	sqlite3 *db;
	char *path;
	sqlite3_stmt *stmts[S_COUNT];

	/* The open transaction. */
	bool in_txn;
	uint64_t modseq, modseq_at_begin;
	uint64_t usage_at_begin;
};

static _Thread_local char open_error[1024];

static struct sqlite_store *SS(struct store *store)
{
	return (struct sqlite_store *)store;
}

/* SQL helpers */

static int sql_fail(struct sqlite_store *s, const char *what)
{
	int rc = sqlite3_extended_errcode(s->db);
	enum store_error kind;

	switch (rc & 0xff) {
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_FORMAT:
		kind = STORE_ERROR_DAMAGED;
		break;
	case SQLITE_CONSTRAINT:
		kind = STORE_ERROR_INVALID;
		break;
	default:
		kind = STORE_ERROR_TEMP;
		break;
	}
	return store_set_error(&s->store, kind, "%s: %s", what,
			       sqlite3_errmsg(s->db));
}

/* The cached statement id, reset and with no bindings. */
static sqlite3_stmt *sql(struct sqlite_store *s, enum stmt_id id)
{
	sqlite3_stmt *stmt = s->stmts[id];

	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return stmt;
}

/* Steps once: 1 with a row (the caller reads it and calls sql_end), 0 at
   the end (the statement is reset), -1 on error (reset, error set). */
static int sql_step(struct sqlite_store *s, sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE) {
		sqlite3_reset(stmt);
		return 0;
	}
	sqlite3_reset(stmt);
	return sql_fail(s, sqlite3_sql(stmt));
}

static void sql_end(sqlite3_stmt *stmt)
{
	sqlite3_reset(stmt);
}

/* Runs a statement that returns no rows. */
static int sql_exec(struct sqlite_store *s, sqlite3_stmt *stmt)
{
	int ret;

	while ((ret = sql_step(s, stmt)) > 0)
		;
	return ret;
}

static void bind_text(sqlite3_stmt *stmt, int i, const char *str)
{
	if (str == NULL)
		sqlite3_bind_null(stmt, i);
	else
		sqlite3_bind_text(stmt, i, str, -1, SQLITE_STATIC);
}

static const char *col_str(struct pool *pool, sqlite3_stmt *stmt, int i)
{
	const unsigned char *text = sqlite3_column_text(stmt, i);

	if (text == NULL)
		return NULL;
	return p_strndup(pool, text, (size_t)sqlite3_column_bytes(stmt, i));
}

static void col_id(sqlite3_stmt *stmt, int i, char id_r[STORE_EMAIL_ID_LEN + 1])
{
	const unsigned char *text = sqlite3_column_text(stmt, i);
	size_t len = (size_t)sqlite3_column_bytes(stmt, i);

	if (text == NULL)
		len = 0;
	if (len > STORE_EMAIL_ID_LEN)
		len = STORE_EMAIL_ID_LEN;
	memcpy(id_r, text == NULL ? (const unsigned char *)"" : text, len);
	id_r[len] = '\0';
}

static int counter_get(struct sqlite_store *s, const char *name,
		       uint64_t *value_r)
{
	sqlite3_stmt *stmt = sql(s, S_COUNTER_GET);
	int ret;

	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	if ((ret = sql_step(s, stmt)) < 0)
		return -1;
	if (ret == 0) {
		return store_set_error(&s->store, STORE_ERROR_DAMAGED,
				       "counter %s is missing", name);
	}
	*value_r = (uint64_t)sqlite3_column_int64(stmt, 0);
	sql_end(stmt);
	return 0;
}

static int counter_set(struct sqlite_store *s, const char *name, uint64_t value)
{
	sqlite3_stmt *stmt = sql(s, S_COUNTER_SET);

	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)value);
	return sql_exec(s, stmt);
}

/* Transactions */

static int txn_begin(struct sqlite_store *s)
{
	i_assert(!s->in_txn);
	if (sql_exec(s, sql(s, S_BEGIN)) < 0)
		return -1;
	s->in_txn = true;
	store_notify_discard(&s->store);
	if (counter_get(s, "modseq", &s->modseq) < 0 ||
	    counter_get(s, "usage", &s->usage_at_begin) < 0) {
		sql_exec(s, sql(s, S_ROLLBACK));
		s->in_txn = false;
		return -1;
	}
	s->modseq_at_begin = s->modseq;
	return 0;
}

static void txn_rollback(struct sqlite_store *s)
{
	if (!s->in_txn)
		return;
	/* After a failed COMMIT SQLite may have rolled back already; the
	   error of this ROLLBACK then says so and is of no interest. */
	sqlite3_reset(s->stmts[S_ROLLBACK]);
	(void)sqlite3_step(s->stmts[S_ROLLBACK]);
	sqlite3_reset(s->stmts[S_ROLLBACK]);
	s->in_txn = false;
	store_notify_discard(&s->store);
}

static int txn_commit(struct sqlite_store *s)
{
	uint64_t usage;

	i_assert(s->in_txn);
	if (s->modseq != s->modseq_at_begin &&
	    counter_set(s, "modseq", s->modseq) < 0)
		return -1;
	if (s->store.quota_bytes != 0) {
		if (counter_get(s, "usage", &usage) < 0)
			return -1;
		/* Only growth is refused: a move or an expunge over a
		   lowered quota still goes through. */
		if (usage > s->store.quota_bytes && usage > s->usage_at_begin)
			return store_set_error(
				&s->store, STORE_ERROR_QUOTA,
				"over quota: %llu of %llu bytes",
				(unsigned long long)usage,
				(unsigned long long)s->store.quota_bytes);
	}
	if (sql_exec(s, sql(s, S_COMMIT)) < 0)
		return -1;
	s->in_txn = false;
	store_notify_flush(&s->store);
	return 0;
}

/* Ends a transaction that ran body_ret = 0 (commit) or -1 (roll back). */
static int txn_end(struct sqlite_store *s, int body_ret)
{
	if (body_ret < 0 || txn_commit(s) < 0) {
		txn_rollback(s);
		return -1;
	}
	return 0;
}

static uint64_t modseq_next(struct sqlite_store *s)
{
	i_assert(s->in_txn);
	return ++s->modseq;
}

static int change_log(struct sqlite_store *s, enum store_change_kind kind,
		      uint64_t mailbox_id, uint32_t uid, uint64_t modseq)
{
	sqlite3_stmt *stmt = sql(s, S_CHANGE_INSERT);

	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)modseq);
	sqlite3_bind_int(stmt, 2, (int)kind);
	sqlite3_bind_int64(stmt, 3, (sqlite3_int64)mailbox_id);
	sqlite3_bind_int64(stmt, 4, uid);
	if (sql_exec(s, stmt) < 0)
		return -1;
	store_notify_queue(&s->store,
			   kind == STORE_CHANGE_MAILBOX ? 0 : mailbox_id,
			   modseq);
	return 0;
}

/* Random printable ids: prefix + 15 base32 characters (75 bits). RFC 8474
   3.1: objectid is 1-255 of ALPHA / DIGIT / "_" / "-". */
static void random_id(char prefix, char id_r[STORE_EMAIL_ID_LEN + 1])
{
	static const char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
	uint8_t rnd[10];
	unsigned int i, bit;

	randombytes_buf(rnd, sizeof(rnd));
	id_r[0] = prefix;
	for (i = 0; i < STORE_EMAIL_ID_LEN - 1; i++) {
		unsigned int v = 0, b;

		for (b = 0; b < 5; b++) {
			bit = i * 5 + b;
			v = (v << 1) | ((rnd[bit / 8] >> (bit % 8)) & 1);
		}
		id_r[i + 1] = alphabet[v];
	}
	id_r[STORE_EMAIL_ID_LEN] = '\0';
	sodium_memzero(rnd, sizeof(rnd));
}

/* Mailboxes */

static void mailbox_from_row(struct pool *pool, sqlite3_stmt *stmt,
			     struct store_mailbox *box_r)
{
	memset(box_r, 0, sizeof(*box_r));
	box_r->id = (uint64_t)sqlite3_column_int64(stmt, 0);
	box_r->name = col_str(pool, stmt, 1);
	box_r->special_use =
		(enum store_special_use)sqlite3_column_int(stmt, 2);
	box_r->subscribed = sqlite3_column_int(stmt, 3) != 0;
	box_r->uidvalidity = (uint32_t)sqlite3_column_int64(stmt, 4);
	box_r->uidnext = (uint32_t)sqlite3_column_int64(stmt, 5);
	box_r->highestmodseq = (uint64_t)sqlite3_column_int64(stmt, 6);
	box_r->messages = (uint32_t)sqlite3_column_int64(stmt, 7);
	box_r->unseen = (uint32_t)sqlite3_column_int64(stmt, 8);
	box_r->size = (uint64_t)sqlite3_column_int64(stmt, 9);
}

/* Id and name of a mailbox: 1, 0 if none, -1. name_r (may be NULL) gets
   a heap copy. */
static int mailbox_find_id(struct sqlite_store *s, uint64_t id, char **name_r,
			   enum store_special_use *special_r)
{
	sqlite3_stmt *stmt = sql(s, S_MBOX_BY_ID);
	int ret;

	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)id);
	if ((ret = sql_step(s, stmt)) <= 0)
		return ret;
	if (name_r != NULL)
		*name_r = i_strdup((const char *)sqlite3_column_text(stmt, 1));
	if (special_r != NULL)
		*special_r =
			(enum store_special_use)sqlite3_column_int(stmt, 2);
	sql_end(stmt);
	return 1;
}

static int mailbox_name_id(struct sqlite_store *s, const char *name,
			   uint64_t *id_r)
{
	sqlite3_stmt *stmt = sql(s, S_MBOX_BY_NAME);
	int ret;

	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	if ((ret = sql_step(s, stmt)) <= 0)
		return ret;
	*id_r = (uint64_t)sqlite3_column_int64(stmt, 0);
	sql_end(stmt);
	return 1;
}

static int mailbox_require(struct sqlite_store *s, uint64_t id)
{
	int ret = mailbox_find_id(s, id, NULL, NULL);

	if (ret == 0)
		return store_set_error(&s->store, STORE_ERROR_NOT_FOUND,
				       "no mailbox with id %llu",
				       (unsigned long long)id);
	return ret < 0 ? -1 : 0;
}

static int mailbox_insert(struct sqlite_store *s, const char *name,
			  enum store_special_use special_use, bool subscribed,
			  uint64_t *id_r)
{
	sqlite3_stmt *stmt;
	uint64_t last, uidvalidity, now = (uint64_t)time(NULL);

	/* RFC 9051 2.3.1.1: UIDVALIDITY must differ from every earlier
	   mailbox of the same name; ours differ across all mailboxes and
	   follow the clock when it is ahead. */
	if (counter_get(s, "uidvalidity", &last) < 0)
		return -1;
	uidvalidity = last + 1 > now ? last + 1 : now;
	if (uidvalidity > STORE_UID_MAX)
		return store_set_error(&s->store, STORE_ERROR_INVALID,
				       "UIDVALIDITY space exhausted");
	if (counter_set(s, "uidvalidity", uidvalidity) < 0)
		return -1;

	stmt = sql(s, S_MBOX_INSERT);
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 2, (int)special_use);
	sqlite3_bind_int(stmt, 3, subscribed ? 1 : 0);
	sqlite3_bind_int64(stmt, 4, (sqlite3_int64)uidvalidity);
	sqlite3_bind_int64(stmt, 5, (sqlite3_int64)now);
	if (sql_exec(s, stmt) < 0)
		return -1;
	*id_r = (uint64_t)sqlite3_last_insert_rowid(s->db);
	return change_log(s, STORE_CHANGE_MAILBOX, *id_r, 0, modseq_next(s));
}

/* RFC 9051 6.3.4: create the superiors a new name needs. */
static int mailbox_create_parents(struct sqlite_store *s, const char *name)
{
	char prefix[STORE_MAILBOX_NAME_MAX + 1];
	const char *p;
	uint64_t id;
	int ret;

	for (p = strchr(name, '/'); p != NULL; p = strchr(p + 1, '/')) {
		size_t len = (size_t)(p - name);

		memcpy(prefix, name, len);
		prefix[len] = '\0';
		if ((ret = mailbox_name_id(s, prefix, &id)) < 0)
			return -1;
		if (ret == 0 && mailbox_insert(s, prefix, STORE_SPECIAL_NONE,
					       false, &id) < 0)
			return -1;
	}
	return 0;
}

static int mailbox_create_in_txn(struct sqlite_store *s, const char *name,
				 enum store_special_use special_use,
				 bool subscribed, uint64_t *id_r)
{
	uint64_t id;
	int ret;

	if ((ret = mailbox_name_id(s, name, &id)) < 0)
		return -1;
	if (ret > 0)
		return store_set_error(&s->store, STORE_ERROR_EXISTS,
				       "mailbox exists");
	if (mailbox_create_parents(s, name) < 0)
		return -1;
	return mailbox_insert(s, name, special_use, subscribed, id_r);
}

static int sqlite_mailbox_create(struct store *store, const char *name,
				 enum store_special_use special_use,
				 uint64_t *id_r)
{
	struct sqlite_store *s = SS(store);

	if (txn_begin(s) < 0)
		return -1;
	return txn_end(
		s, mailbox_create_in_txn(s, name, special_use, false, id_r));
}

static int mailbox_uids(struct sqlite_store *s, enum stmt_id id,
			uint64_t mailbox_id, uint32_t **uids_r,
			unsigned int *count_r)
{
	sqlite3_stmt *stmt = sql(s, id);
	unsigned int count = 0, alloc = 0;
	uint32_t *uids = NULL;
	int ret;

	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)mailbox_id);
	while ((ret = sql_step(s, stmt)) > 0) {
		if (count == alloc) {
			alloc = alloc == 0 ? 64 : alloc * 2;
			uids = i_realloc(uids,
					 i_size_mul(alloc, sizeof(*uids)));
		}
		uids[count++] = (uint32_t)sqlite3_column_int64(stmt, 0);
	}
	if (ret < 0) {
		i_free(uids);
		return -1;
	}
	*uids_r = uids;
	*count_r = count;
	return 0;
}

static int copy_in_txn(struct sqlite_store *s, uint64_t src,
		       const uint32_t *uids, unsigned int count, uint64_t dst,
		       uint32_t *dst_uids_r, bool move);

/* RFC 9051 6.3.6: renaming INBOX moves all its messages to a new mailbox
   of the given name; INBOX stays, empty, with its UIDVALIDITY and UIDNEXT,
   and its children are not renamed. */
static int inbox_rename_in_txn(struct sqlite_store *s, uint64_t inbox_id,
			       const char *name)
{
	uint32_t *uids = NULL, *new_uids;
	unsigned int count;
	uint64_t new_id;
	int ret;

	if (mailbox_create_in_txn(s, name, STORE_SPECIAL_NONE, false, &new_id) <
		    0 ||
	    mailbox_uids(s, S_MSG_UIDS, inbox_id, &uids, &count) < 0)
		return -1;
	new_uids = i_new(uint32_t, count + 1);
	ret = copy_in_txn(s, inbox_id, uids, count, new_id, new_uids, true);
	i_free(new_uids);
	i_free(uids);
	return ret;
}

static int mailbox_rename_in_txn(struct sqlite_store *s, uint64_t id,
				 const char *name)
{
	char *old = NULL, lo[STORE_MAILBOX_NAME_MAX + 2];
	char hi[STORE_MAILBOX_NAME_MAX + 2];
	enum store_special_use special;
	sqlite3_stmt *stmt;
	size_t old_len;
	uint64_t other;
	struct {
		uint64_t id;
		char *name;
	} *kids = NULL;
	unsigned int i, count = 0, alloc = 0;
	int ret;

	if ((ret = mailbox_find_id(s, id, &old, &special)) <= 0) {
		if (ret == 0)
			store_set_error(&s->store, STORE_ERROR_NOT_FOUND,
					"no such mailbox");
		return -1;
	}
	if (strcmp(old, "INBOX") == 0) {
		i_free(old);
		return inbox_rename_in_txn(s, id, name);
	}
	old_len = strlen(old);
	if (strcmp(old, name) == 0 ||
	    (strncmp(name, old, old_len) == 0 && name[old_len] == '/')) {
		i_free(old);
		return store_set_error(&s->store, STORE_ERROR_INVALID,
				       "cannot rename a mailbox into itself");
	}
	if ((ret = mailbox_name_id(s, name, &other)) != 0) {
		i_free(old);
		if (ret > 0)
			store_set_error(&s->store, STORE_ERROR_EXISTS,
					"mailbox exists");
		return -1;
	}

	/* Children are the names in ["old/", "old0"): '0' follows '/'. */
	snprintf(lo, sizeof(lo), "%s/", old);
	snprintf(hi, sizeof(hi), "%s0", old);
	stmt = sql(s, S_MBOX_CHILDREN);
	sqlite3_bind_text(stmt, 1, lo, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, hi, -1, SQLITE_STATIC);
	while ((ret = sql_step(s, stmt)) > 0) {
		const char *kid = (const char *)sqlite3_column_text(stmt, 1);

		if (count == alloc) {
			alloc = alloc == 0 ? 8 : alloc * 2;
			kids = i_realloc(kids,
					 i_size_mul(alloc, sizeof(*kids)));
		}
		kids[count].id = (uint64_t)sqlite3_column_int64(stmt, 0);
		kids[count].name = i_strdup_printf("%s%s", name, kid + old_len);
		count++;
	}
	if (ret == 0) {
		stmt = sql(s, S_MBOX_SET_NAME);
		sqlite3_bind_int64(stmt, 1, (sqlite3_int64)id);
		sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
		ret = sql_exec(s, stmt);
		if (ret == 0)
			ret = change_log(s, STORE_CHANGE_MAILBOX, id, 0,
					 modseq_next(s));
	}
	for (i = 0; i < count && ret == 0; i++) {
		if (strlen(kids[i].name) > STORE_MAILBOX_NAME_MAX) {
			ret = store_set_error(&s->store, STORE_ERROR_INVALID,
					      "renamed child name too long");
			break;
		}
		if ((ret = mailbox_name_id(s, kids[i].name, &other)) != 0) {
			if (ret > 0)
				ret = store_set_error(&s->store,
						      STORE_ERROR_EXISTS,
						      "mailbox exists");
			break;
		}
		stmt = sql(s, S_MBOX_SET_NAME);
		sqlite3_bind_int64(stmt, 1, (sqlite3_int64)kids[i].id);
		sqlite3_bind_text(stmt, 2, kids[i].name, -1, SQLITE_STATIC);
		ret = sql_exec(s, stmt);
		if (ret == 0)
			ret = change_log(s, STORE_CHANGE_MAILBOX, kids[i].id, 0,
					 modseq_next(s));
	}
	for (i = 0; i < count; i++)
		i_free(kids[i].name);
	i_free(kids);
	i_free(old);
	if (ret == 0)
		ret = mailbox_create_parents(s, name);
	return ret < 0 ? -1 : 0;
}

static int sqlite_mailbox_rename(struct store *store, uint64_t id,
				 const char *name)
{
	struct sqlite_store *s = SS(store);

	if (txn_begin(s) < 0)
		return -1;
	return txn_end(s, mailbox_rename_in_txn(s, id, name));
}

static int sqlite_mailbox_set_subscribed(struct store *store, uint64_t id,
					 bool subscribed)
{
	struct sqlite_store *s = SS(store);
	sqlite3_stmt *stmt;
	int ret;

	if (txn_begin(s) < 0)
		return -1;
	ret = mailbox_require(s, id);
	if (ret == 0) {
		stmt = sql(s, S_MBOX_SET_SUB);
		sqlite3_bind_int64(stmt, 1, (sqlite3_int64)id);
		sqlite3_bind_int(stmt, 2, subscribed ? 1 : 0);
		ret = sql_exec(s, stmt);
	}
	if (ret == 0)
		ret = change_log(s, STORE_CHANGE_MAILBOX, id, 0,
				 modseq_next(s));
	return txn_end(s, ret);
}

static int mailbox_get_row(struct sqlite_store *s, sqlite3_stmt *stmt,
			   struct pool *pool, struct store_mailbox *box_r)
{
	int ret = sql_step(s, stmt);

	if (ret <= 0)
		return ret;
	mailbox_from_row(pool, stmt, box_r);
	sql_end(stmt);
	return 1;
}

static int sqlite_mailbox_lookup(struct store *store, const char *name,
				 struct pool *pool, struct store_mailbox *box_r)
{
	struct sqlite_store *s = SS(store);
	sqlite3_stmt *stmt = sql(s, S_MBOX_BY_NAME);

	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	return mailbox_get_row(s, stmt, pool, box_r);
}

static int sqlite_mailbox_get(struct store *store, uint64_t id,
			      struct pool *pool, struct store_mailbox *box_r)
{
	struct sqlite_store *s = SS(store);
	sqlite3_stmt *stmt = sql(s, S_MBOX_BY_ID);

	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)id);
	return mailbox_get_row(s, stmt, pool, box_r);
}

static int sqlite_mailbox_find_special(struct store *store,
				       enum store_special_use special_use,
				       struct pool *pool,
				       struct store_mailbox *box_r)
{
	struct sqlite_store *s = SS(store);
	sqlite3_stmt *stmt = sql(s, S_MBOX_BY_SPECIAL);

	sqlite3_bind_int(stmt, 1, (int)special_use);
	return mailbox_get_row(s, stmt, pool, box_r);
}

static int sqlite_mailbox_list(struct store *store, struct pool *pool,
			       struct store_mailbox **boxes_r,
			       unsigned int *count_r)
{
	struct sqlite_store *s = SS(store);
	sqlite3_stmt *stmt = sql(s, S_MBOX_LIST);
	struct store_mailbox *boxes = NULL, *tmp;
	unsigned int count = 0, alloc = 0;
	int ret;

	while ((ret = sql_step(s, stmt)) > 0) {
		if (count == alloc) {
			alloc = alloc == 0 ? 16 : alloc * 2;
			tmp = p_new(pool, struct store_mailbox, alloc);
			if (count > 0)
				memcpy(tmp, boxes, count * sizeof(*boxes));
			boxes = tmp;
		}
		mailbox_from_row(pool, stmt, &boxes[count++]);
	}
	if (ret < 0)
		return -1;
	*boxes_r = boxes;
	*count_r = count;
	return 0;
}

/* Messages */

/* Drops an email (its text, both FTS entries, its row) once no message
   refers to it any more. */
static int email_release(struct sqlite_store *s, int64_t email)
{
	sqlite3_stmt *stmt = sql(s, S_EMAIL_USED);
	static const enum stmt_id steps[] = { S_FTS_SUB_DEL, S_FTS_WORD_DEL,
					      S_TEXT_DELETE, S_SORT_DELETE,
					      S_EMAIL_DELETE };
	unsigned int i;
	int ret;

	sqlite3_bind_int64(stmt, 1, email);
	if ((ret = sql_step(s, stmt)) != 0) {
		sql_end(stmt);
		return ret < 0 ? -1 : 0;
	}
	for (i = 0; i < N_ELEMENTS(steps); i++) {
		stmt = sql(s, steps[i]);
		sqlite3_bind_int64(stmt, 1, email);
		if (sql_exec(s, stmt) < 0)
			return -1;
	}
	return 0;
}

/* Removes one message with a tombstone: 1 if removed, 0 if absent. */
static int expunge_one(struct sqlite_store *s, uint64_t mailbox_id,
		       uint32_t uid)
{
	sqlite3_stmt *stmt = sql(s, S_MSG_DELETE);
	int64_t email;
	int ret;

	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)mailbox_id);
	sqlite3_bind_int64(stmt, 2, uid);
	if ((ret = sql_step(s, stmt)) <= 0)
		return ret;
	email = sqlite3_column_int64(stmt, 0);
	if (sql_exec(s, stmt) < 0)
		return -1;
	if (change_log(s, STORE_CHANGE_EXPUNGED, mailbox_id, uid,
		       modseq_next(s)) < 0 ||
	    email_release(s, email) < 0)
		return -1;
	return 1;
}

static int mailbox_delete_in_txn(struct sqlite_store *s, uint64_t id)
{
	char *name = NULL, lo[STORE_MAILBOX_NAME_MAX + 2];
	char hi[STORE_MAILBOX_NAME_MAX + 2];
	enum store_special_use special;
	sqlite3_stmt *stmt;
	uint32_t *uids = NULL;
	unsigned int i, count = 0;
	int ret;

	if ((ret = mailbox_find_id(s, id, &name, &special)) <= 0) {
		if (ret == 0)
			store_set_error(&s->store, STORE_ERROR_NOT_FOUND,
					"no such mailbox");
		return -1;
	}
	if (strcmp(name, "INBOX") == 0) {
		i_free(name);
		return store_set_error(&s->store, STORE_ERROR_INVALID,
				       "INBOX cannot be deleted");
	}
	snprintf(lo, sizeof(lo), "%s/", name);
	snprintf(hi, sizeof(hi), "%s0", name);
	i_free(name);
	stmt = sql(s, S_MBOX_CHILDREN);
	sqlite3_bind_text(stmt, 1, lo, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, hi, -1, SQLITE_STATIC);
	if ((ret = sql_step(s, stmt)) != 0) {
		sql_end(stmt);
		if (ret > 0)
			store_set_error(&s->store, STORE_ERROR_INVALID,
					"mailbox has children");
		return -1;
	}
	if (mailbox_uids(s, S_MSG_UIDS, id, &uids, &count) < 0)
		return -1;
	for (i = 0; i < count; i++) {
		if ((ret = expunge_one(s, id, uids[i])) < 0)
			break;
	}
	i_free(uids);
	if (ret < 0)
		return -1;
	stmt = sql(s, S_MBOX_DELETE);
	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)id);
	if (sql_exec(s, stmt) < 0)
		return -1;
	return change_log(s, STORE_CHANGE_MAILBOX, id, 0, modseq_next(s));
}

static int sqlite_mailbox_delete(struct store *store, uint64_t id)
{
	struct sqlite_store *s = SS(store);

	if (txn_begin(s) < 0)
		return -1;
	return txn_end(s, mailbox_delete_in_txn(s, id));
}

static int uid_alloc(struct sqlite_store *s, uint64_t mailbox_id,
		     uint32_t *uid_r)
{
	sqlite3_stmt *stmt = sql(s, S_MBOX_ALLOC_UID);
	int ret;

	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)mailbox_id);
	if ((ret = sql_step(s, stmt)) < 0)
		return -1;
	if (ret == 0) {
		if (mailbox_require(s, mailbox_id) < 0)
			return -1;
		/* RFC 9051 2.3.1.1: UIDs are 32-bit; a full mailbox takes
		   no more. */
		return store_set_error(&s->store, STORE_ERROR_INVALID,
				       "mailbox UID space exhausted");
	}
	*uid_r = (uint32_t)sqlite3_column_int64(stmt, 0);
	sql_end(stmt);
	return 0;
}

/* Keywords are kept as one string of space-separated atoms, in the order
   they were first set; comparisons ignore ASCII case. */
static bool keyword_in(const char *list, const char *kw, size_t kw_len)
{
	const char *p = list;

	while (*p != '\0') {
		const char *end = strchr(p, ' ');
		size_t len = end == NULL ? strlen(p) : (size_t)(end - p);

		if (len == kw_len && strncasecmp(p, kw, len) == 0)
			return true;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return false;
}

static bool keyword_in_array(const char *const *kws, const char *kw,
			     size_t kw_len)
{
	unsigned int i;

	for (i = 0; kws != NULL && kws[i] != NULL; i++) {
		if (strlen(kws[i]) == kw_len &&
		    strncasecmp(kws[i], kw, kw_len) == 0)
			return true;
	}
	return false;
}

static void keyword_add(struct buf *out, const char *kw, size_t len)
{
	if (keyword_in(buf_cstr(out), kw, len))
		return;
	if (out->used > 0)
		buf_append_c(out, ' ');
	buf_append(out, kw, len);
}

static void keywords_apply(const char *cur, enum store_flag_op op,
			   const char *const *kws, struct buf *out)
{
	const char *p = cur;
	unsigned int i;

	buf_reset(out);
	if (op != STORE_FLAGS_REPLACE) {
		while (*p != '\0') {
			const char *end = strchr(p, ' ');
			size_t len =
				end == NULL ? strlen(p) : (size_t)(end - p);

			if (op != STORE_FLAGS_REMOVE ||
			    !keyword_in_array(kws, p, len))
				keyword_add(out, p, len);
			if (end == NULL)
				break;
			p = end + 1;
		}
	}
	if (op == STORE_FLAGS_REMOVE)
		return;
	for (i = 0; kws != NULL && kws[i] != NULL; i++)
		keyword_add(out, kws[i], strlen(kws[i]));
}

static const char *const *keywords_split(struct pool *pool, const char *str)
{
	const char **arr;
	unsigned int n = 1, i = 0;
	const char *p;

	for (p = str; *p != '\0'; p++) {
		if (*p == ' ')
			n++;
	}
	arr = p_new(pool, const char *, n + 1);
	p = str;
	while (*p != '\0') {
		const char *end = strchr(p, ' ');
		size_t len = end == NULL ? strlen(p) : (size_t)(end - p);

		arr[i++] = p_strndup(pool, p, len);
		if (end == NULL)
			break;
		p = end + 1;
	}
	return arr;
}

/* Thread id of a new message (RFC 5256 REFERENCES, simplified as JMAP
   allows): the thread of any existing message that has or references one
   of this message's ids, else a new one. Threads never merge, so thread
   ids stay stable (RFC 8621 4.1.1). */
static int thread_assign(struct sqlite_store *s,
			 const struct message_index *index,
			 char thread_r[STORE_EMAIL_ID_LEN + 1])
{
	const char *ids[STORE_THREAD_REFS_MAX + 1];
	unsigned int i, n = 0, nrefs = 0;
	sqlite3_stmt *stmt;
	int ret;

	if (index != NULL && index->references != NULL) {
		while (index->references[nrefs] != NULL)
			nrefs++;
	}
	/* The last references are the closest ancestors. */
	for (i = nrefs; i > 0 && n < STORE_THREAD_REFS_MAX; i--) {
		if (index->references[i - 1][0] != '\0')
			ids[n++] = index->references[i - 1];
	}
	if (index != NULL && index->message_id != NULL &&
	    index->message_id[0] != '\0')
		ids[n++] = index->message_id;

	thread_r[0] = '\0';
	for (i = 0; i < n && thread_r[0] == '\0'; i++) {
		stmt = sql(s, S_THREAD_GET);
		sqlite3_bind_text(stmt, 1, ids[i], -1, SQLITE_STATIC);
		if ((ret = sql_step(s, stmt)) < 0)
			return -1;
		if (ret > 0) {
			col_id(stmt, 0, thread_r);
			sql_end(stmt);
		}
	}
	if (thread_r[0] == '\0')
		random_id('T', thread_r);
	for (i = 0; i < n; i++) {
		stmt = sql(s, S_THREAD_ADD);
		sqlite3_bind_text(stmt, 1, ids[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 2, thread_r, -1, SQLITE_STATIC);
		if (sql_exec(s, stmt) < 0)
			return -1;
	}
	return 0;
}

static const char *str_or_empty(const char *str)
{
	return str == NULL ? "" : str;
}

/* Writes the email's SORT/THREAD keys (email_sort). */
static int sort_keys_insert(struct sqlite_store *s, int64_t email,
			    const struct message_index *idx)
{
	sqlite3_stmt *stmt = sql(s, S_SORT_INSERT);
	struct buf refs = BUF_INIT;
	int ret;

	for (unsigned int i = 0;
	     idx->references != NULL && idx->references[i] != NULL; i++) {
		if (idx->references[i][0] == '\0')
			continue;
		if (refs.used > 0)
			buf_append_c(&refs, ' ');
		buf_append_str(&refs, idx->references[i]);
	}
	sqlite3_bind_int64(stmt, 1, email);
	sqlite3_bind_int64(stmt, 2, idx->date);
	bind_text(stmt, 3, str_or_empty(idx->base_subject));
	sqlite3_bind_int(stmt, 4, idx->subject_is_reply ? 1 : 0);
	bind_text(stmt, 5, str_or_empty(idx->sort_from));
	bind_text(stmt, 6, str_or_empty(idx->sort_to));
	bind_text(stmt, 7, str_or_empty(idx->sort_cc));
	bind_text(stmt, 8, str_or_empty(idx->display_from));
	bind_text(stmt, 9, str_or_empty(idx->display_to));
	bind_text(stmt, 10, str_or_empty(idx->message_id));
	sqlite3_bind_text(stmt, 11, buf_cstr(&refs), -1, SQLITE_STATIC);
	ret = sql_exec(s, stmt);
	sqlite3_clear_bindings(stmt);
	buf_free(&refs);
	return ret;
}

static int email_insert(struct sqlite_store *s, const struct store_append *a,
			int64_t *email_r)
{
	const struct message_index *idx = a->index;
	char email_id[STORE_EMAIL_ID_LEN + 1];
	char thread_id[STORE_EMAIL_ID_LEN + 1];
	sqlite3_stmt *stmt;
	int64_t email;

	if (thread_assign(s, idx, thread_id) < 0)
		return -1;
	random_id('M', email_id);
	stmt = sql(s, S_EMAIL_INSERT);
	sqlite3_bind_text(stmt, 1, email_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, thread_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(stmt, 3, a->blob_id, sizeof(a->blob_id),
			  SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, (sqlite3_int64)a->size);
	if (idx != NULL) {
		bind_text(stmt, 5, idx->envelope);
		bind_text(stmt, 6, idx->bodystructure);
		bind_text(stmt, 7, idx->body);
		bind_text(stmt, 8, idx->preview);
	}
	if (sql_exec(s, stmt) < 0)
		return -1;
	email = sqlite3_last_insert_rowid(s->db);

	stmt = sql(s, S_TEXT_INSERT);
	sqlite3_bind_int64(stmt, 1, email);
	if (idx != NULL) {
		bind_text(stmt, 2, idx->from);
		bind_text(stmt, 3, idx->to);
		bind_text(stmt, 4, idx->cc);
		bind_text(stmt, 5, idx->bcc);
		bind_text(stmt, 6, idx->subject);
		bind_text(stmt, 7, idx->text);
	}
	if (sql_exec(s, stmt) < 0)
		return -1;
	stmt = sql(s, S_FTS_SUB_ADD);
	sqlite3_bind_int64(stmt, 1, email);
	if (sql_exec(s, stmt) < 0)
		return -1;
	stmt = sql(s, S_FTS_WORD_ADD);
	sqlite3_bind_int64(stmt, 1, email);
	if (sql_exec(s, stmt) < 0)
		return -1;
	if (idx != NULL && sort_keys_insert(s, email, idx) < 0)
		return -1;
	*email_r = email;
	return 0;
}

static int message_insert(struct sqlite_store *s, uint64_t mailbox_id,
			  uint32_t uid, uint64_t modseq, uint32_t flags,
			  const char *keywords, int64_t internaldate,
			  int64_t savedate, uint64_t size, int64_t email)
{
	sqlite3_stmt *stmt = sql(s, S_MSG_INSERT);

	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)mailbox_id);
	sqlite3_bind_int64(stmt, 2, uid);
	sqlite3_bind_int64(stmt, 3, (sqlite3_int64)modseq);
	sqlite3_bind_int(stmt, 4, (int)flags);
	sqlite3_bind_text(stmt, 5, keywords, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 6, internaldate);
	sqlite3_bind_int64(stmt, 7, savedate);
	sqlite3_bind_int64(stmt, 8, (sqlite3_int64)size);
	sqlite3_bind_int64(stmt, 9, email);
	if (sql_exec(s, stmt) < 0)
		return -1;
	return change_log(s, STORE_CHANGE_ADDED, mailbox_id, uid, modseq);
}

static int append_one(struct sqlite_store *s, const struct store_append *a,
		      struct buf *kwbuf, uint32_t *uid_r, uint64_t *modseq_r)
{
	sqlite3_stmt *stmt;
	int64_t now = (int64_t)time(NULL), email;
	uint64_t modseq = 0;
	uint32_t uid = 0;
	int ret;

	if (a->spool_record_id != NULL) {
		stmt = sql(s, S_SPOOL_GET);
		sqlite3_bind_blob(stmt, 1, a->spool_record_id,
				  SPOOL_RECORD_ID_LEN, SQLITE_STATIC);
		if ((ret = sql_step(s, stmt)) < 0)
			return -1;
		if (ret > 0) {
			/* Merged before (a crash between commit and spool
			   truncation): report the earlier UID, add nothing. */
			*uid_r = (uint32_t)sqlite3_column_int64(stmt, 1);
			*modseq_r = 0;
			sql_end(stmt);
			return 0;
		}
	}
	if (uid_alloc(s, a->mailbox_id, &uid) < 0 ||
	    email_insert(s, a, &email) < 0)
		return -1;
	keywords_apply("", STORE_FLAGS_REPLACE, a->keywords, kwbuf);
	modseq = modseq_next(s);
	if (message_insert(s, a->mailbox_id, uid, modseq, a->flags,
			   buf_cstr(kwbuf),
			   a->internaldate == 0 ? now : a->internaldate, now,
			   a->size, email) < 0)
		return -1;
	if (a->spool_record_id != NULL) {
		stmt = sql(s, S_SPOOL_ADD);
		sqlite3_bind_blob(stmt, 1, a->spool_record_id,
				  SPOOL_RECORD_ID_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 2, (sqlite3_int64)a->mailbox_id);
		sqlite3_bind_int64(stmt, 3, uid);
		if (sql_exec(s, stmt) < 0)
			return -1;
	}
	*uid_r = uid;
	*modseq_r = modseq;
	return 0;
}

static int sqlite_append_many(struct store *store,
			      const struct store_append *appends,
			      unsigned int count, uint32_t *uids_r,
			      uint64_t *modseqs_r)
{
	struct sqlite_store *s = SS(store);
	struct buf kwbuf = BUF_INIT;
	unsigned int i;
	uint64_t modseq = 0;
	int ret = 0;

	if (txn_begin(s) < 0)
		return -1;
	for (i = 0; i < count && ret == 0; i++) {
		ret = append_one(s, &appends[i], &kwbuf, &uids_r[i], &modseq);
		if (modseqs_r != NULL)
			modseqs_r[i] = modseq;
	}
	buf_free(&kwbuf);
	return txn_end(s, ret);
}

static int copy_in_txn(struct sqlite_store *s, uint64_t src,
		       const uint32_t *uids, unsigned int count, uint64_t dst,
		       uint32_t *dst_uids_r, bool move)
{
	sqlite3_stmt *stmt;
	unsigned int i;
	int64_t now = (int64_t)time(NULL);
	int ret;

	if (mailbox_require(s, src) < 0 || mailbox_require(s, dst) < 0)
		return -1;
	for (i = 0; i < count; i++) {
		uint32_t flags = 0, uid = 0;
		int64_t internaldate, email;
		uint64_t size;
		char *keywords;

		dst_uids_r[i] = 0;
		stmt = sql(s, S_MSG_GET);
		sqlite3_bind_int64(stmt, 1, (sqlite3_int64)src);
		sqlite3_bind_int64(stmt, 2, uids[i]);
		if ((ret = sql_step(s, stmt)) < 0)
			return -1;
		if (ret == 0)
			continue;
		flags = (uint32_t)sqlite3_column_int(stmt, 1);
		keywords = i_strdup((const char *)sqlite3_column_text(stmt, 2));
		internaldate = sqlite3_column_int64(stmt, 3);
		size = (uint64_t)sqlite3_column_int64(stmt, 4);
		email = sqlite3_column_int64(stmt, 5);
		sql_end(stmt);

		/* RFC 8474 5.1: a copy keeps the EMAILID (same email row);
		   RFC 8514: SAVEDATE is the time of the copy. */
		ret = uid_alloc(s, dst, &uid);
		if (ret == 0)
			ret = message_insert(s, dst, uid, modseq_next(s), flags,
					     keywords == NULL ? "" : keywords,
					     internaldate, now, size, email);
		i_free(keywords);
		if (ret < 0)
			return -1;
		dst_uids_r[i] = uid;
		/* RFC 6851 3.3: MOVE = COPY + EXPUNGE of the source, in one
		   transaction here. */
		if (move && expunge_one(s, src, uids[i]) < 0)
			return -1;
	}
	return 0;
}

static int sqlite_copy(struct store *store, uint64_t src_mailbox,
		       const uint32_t *uids, unsigned int count,
		       uint64_t dst_mailbox, uint32_t *dst_uids_r, bool move)
{
	struct sqlite_store *s = SS(store);

	if (txn_begin(s) < 0)
		return -1;
	return txn_end(s, copy_in_txn(s, src_mailbox, uids, count, dst_mailbox,
				      dst_uids_r, move));
}

static int flags_update_in_txn(struct sqlite_store *s, uint64_t mailbox_id,
			       const uint32_t *uids, unsigned int count,
			       enum store_flag_op op, uint32_t flags,
			       const char *const *keywords,
			       uint64_t unchangedsince, struct pool *pool,
			       uint32_t **failed_r,
			       unsigned int *failed_count_r, uint64_t *modseq_r)
{
	struct buf kwbuf = BUF_INIT;
	sqlite3_stmt *stmt;
	unsigned int i;
	int ret = 0;

	if (mailbox_require(s, mailbox_id) < 0)
		return -1;
	for (i = 0; i < count && ret == 0; i++) {
		uint64_t cur_modseq, modseq;
		uint32_t cur_flags, new_flags;
		bool same;

		stmt = sql(s, S_MSG_GET);
		sqlite3_bind_int64(stmt, 1, (sqlite3_int64)mailbox_id);
		sqlite3_bind_int64(stmt, 2, uids[i]);
		if ((ret = sql_step(s, stmt)) <= 0)
			continue;
		ret = 0;
		cur_modseq = (uint64_t)sqlite3_column_int64(stmt, 0);
		cur_flags = (uint32_t)sqlite3_column_int(stmt, 1);
		/* RFC 7162 3.1.3: a message changed after UNCHANGEDSINCE
		   is not touched and is reported as failed. */
		if (unchangedsince != 0 && cur_modseq > unchangedsince) {
			sql_end(stmt);
			if (*failed_r == NULL)
				*failed_r = p_new(pool, uint32_t, count);
			(*failed_r)[(*failed_count_r)++] = uids[i];
			continue;
		}
		keywords_apply((const char *)sqlite3_column_text(stmt, 2), op,
			       keywords, &kwbuf);
		same = strcmp(buf_cstr(&kwbuf),
			      (const char *)sqlite3_column_text(stmt, 2)) == 0;
		sql_end(stmt);
		new_flags = op == STORE_FLAGS_ADD      ? cur_flags | flags
			    : op == STORE_FLAGS_REMOVE ? cur_flags & ~flags
						       : flags;
		/* RFC 7162 3.1.3: no change, no new modseq. */
		if (same && new_flags == cur_flags)
			continue;
		modseq = modseq_next(s);
		stmt = sql(s, S_MSG_SET_FLAGS);
		sqlite3_bind_int64(stmt, 1, (sqlite3_int64)mailbox_id);
		sqlite3_bind_int64(stmt, 2, uids[i]);
		sqlite3_bind_int(stmt, 3, (int)new_flags);
		sqlite3_bind_text(stmt, 4, buf_cstr(&kwbuf), -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 5, (sqlite3_int64)modseq);
		ret = sql_exec(s, stmt);
		if (ret == 0)
			ret = change_log(s, STORE_CHANGE_FLAGS, mailbox_id,
					 uids[i], modseq);
		*modseq_r = modseq;
	}
	buf_free(&kwbuf);
	return ret;
}

static int sqlite_flags_update(struct store *store, uint64_t mailbox_id,
			       const uint32_t *uids, unsigned int count,
			       enum store_flag_op op, uint32_t flags,
			       const char *const *keywords,
			       uint64_t unchangedsince, struct pool *pool,
			       uint32_t **failed_r,
			       unsigned int *failed_count_r, uint64_t *modseq_r)
{
	struct sqlite_store *s = SS(store);

	if (txn_begin(s) < 0)
		return -1;
	if (txn_end(s, flags_update_in_txn(s, mailbox_id, uids, count, op,
					   flags, keywords, unchangedsince,
					   pool, failed_r, failed_count_r,
					   modseq_r)) < 0) {
		*failed_r = NULL;
		*failed_count_r = 0;
		*modseq_r = 0;
		return -1;
	}
	return 0;
}

static int sqlite_expunge(struct store *store, uint64_t mailbox_id,
			  const uint32_t *uids, unsigned int count,
			  struct pool *pool, uint32_t **expunged_r,
			  unsigned int *expunged_count_r)
{
	struct sqlite_store *s = SS(store);
	uint32_t *deleted = NULL, *out;
	unsigned int i, n = 0;
	int ret = 0;

	if (txn_begin(s) < 0)
		return -1;
	if (mailbox_require(s, mailbox_id) < 0)
		return txn_end(s, -1);
	if (uids == NULL) {
		/* RFC 9051 6.4.3: EXPUNGE removes every \Deleted message. */
		if (mailbox_uids(s, S_MSG_DELETED_UIDS, mailbox_id, &deleted,
				 &count) < 0)
			return txn_end(s, -1);
		uids = deleted;
	}
	out = p_new(pool, uint32_t, count + 1);
	for (i = 0; i < count; i++) {
		if ((ret = expunge_one(s, mailbox_id, uids[i])) < 0)
			break;
		if (ret > 0)
			out[n++] = uids[i];
		ret = 0;
	}
	i_free(deleted);
	if (txn_end(s, ret) < 0)
		return -1;
	*expunged_r = out;
	*expunged_count_r = n;
	return 0;
}

static int fetch_rows(struct store *store, uint64_t mailbox_id, uint32_t uid_lo,
		      uint32_t uid_hi, bool full, struct pool *pool,
		      struct store_message **msgs_r, unsigned int *count_r)
{
	struct sqlite_store *s = SS(store);
	struct store_mailbox box;
	sqlite3_stmt *stmt;
	struct store_message *msgs = NULL, *tmp, *m;
	unsigned int count = 0, alloc;
	int ret;

	/* The mailbox row gives the count: usually one allocation. */
	stmt = sql(s, S_MBOX_BY_ID);
	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)mailbox_id);
	if ((ret = sql_step(s, stmt)) <= 0) {
		if (ret == 0)
			store_set_error(store, STORE_ERROR_NOT_FOUND,
					"no such mailbox");
		return -1;
	}
	box.messages = (uint32_t)sqlite3_column_int64(stmt, 7);
	sql_end(stmt);
	alloc = box.messages + 1;

	stmt = sql(s, full ? S_MSG_FETCH : S_MSG_FETCH_META);
	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)mailbox_id);
	sqlite3_bind_int64(stmt, 2, uid_lo);
	sqlite3_bind_int64(stmt, 3, uid_hi == 0 ? STORE_UID_MAX : uid_hi);
	msgs = p_new(pool, struct store_message, alloc);
	while ((ret = sql_step(s, stmt)) > 0) {
		const void *blob;

		if (count == alloc) {
			alloc *= 2;
			tmp = p_new(pool, struct store_message, alloc);
			memcpy(tmp, msgs, count * sizeof(*msgs));
			msgs = tmp;
		}
		m = &msgs[count++];
		m->mailbox_id = mailbox_id;
		m->uid = (uint32_t)sqlite3_column_int64(stmt, 0);
		m->modseq = (uint64_t)sqlite3_column_int64(stmt, 1);
		m->flags = (uint32_t)sqlite3_column_int(stmt, 2);
		m->keywords = keywords_split(
			pool, (const char *)sqlite3_column_text(stmt, 3));
		m->internaldate = sqlite3_column_int64(stmt, 4);
		m->savedate = sqlite3_column_int64(stmt, 5);
		m->size = (uint64_t)sqlite3_column_int64(stmt, 6);
		col_id(stmt, 7, m->email_id);
		col_id(stmt, 8, m->thread_id);
		blob = sqlite3_column_blob(stmt, 9);
		if (blob != NULL &&
		    sqlite3_column_bytes(stmt, 9) == sizeof(m->blob_id))
			memcpy(m->blob_id, blob, sizeof(m->blob_id));
		if (!full)
			continue;
		m->envelope = col_str(pool, stmt, 10);
		m->bodystructure = col_str(pool, stmt, 11);
		m->body = col_str(pool, stmt, 12);
		m->preview = col_str(pool, stmt, 13);
	}
	if (ret < 0)
		return -1;
	*msgs_r = msgs;
	*count_r = count;
	return 0;
}

static int sqlite_fetch(struct store *store, uint64_t mailbox_id,
			uint32_t uid_lo, uint32_t uid_hi, struct pool *pool,
			struct store_message **msgs_r, unsigned int *count_r)
{
	return fetch_rows(store, mailbox_id, uid_lo, uid_hi, true, pool, msgs_r,
			  count_r);
}

static int sqlite_fetch_meta(struct store *store, uint64_t mailbox_id,
			     uint32_t uid_lo, uint32_t uid_hi,
			     struct pool *pool, struct store_message **msgs_r,
			     unsigned int *count_r)
{
	return fetch_rows(store, mailbox_id, uid_lo, uid_hi, false, pool,
			  msgs_r, count_r);
}

/* Splits the space-separated refs column. */
static const char *const *refs_split(struct pool *pool, const char *str)
{
	const char **refs;
	unsigned int n = 0, count = 0;
	const char *p, *end;

	if (str == NULL)
		str = "";
	for (p = str; *p != '\0'; p++) {
		if (*p == ' ')
			count++;
	}
	refs = p_new(pool, const char *, count + 2);
	for (p = str; *p != '\0'; p = *end == '\0' ? end : end + 1) {
		end = strchr(p, ' ');
		if (end == NULL)
			end = p + strlen(p);
		if (end > p)
			refs[n++] = p_strndup(pool, p, (size_t)(end - p));
	}
	refs[n] = NULL;
	return refs;
}

static const char *col_str_empty(struct pool *pool, sqlite3_stmt *stmt, int i)
{
	const char *str = col_str(pool, stmt, i);

	return str == NULL ? "" : str;
}

static int sqlite_sort_keys(struct store *store, uint64_t mailbox_id,
			    const uint32_t *uids, unsigned int count,
			    struct pool *pool, struct store_sort_keys **keys_r,
			    unsigned int *count_r)
{
	struct sqlite_store *s = SS(store);
	struct store_sort_keys *keys = NULL, *tmp, *k;
	sqlite3_stmt *stmt;
	unsigned int n = 0, alloc, next = 0;
	int ret;

	if ((ret = mailbox_require(s, mailbox_id)) < 0)
		return -1;
	alloc = uids != NULL ? count : 64;
	keys = p_new(pool, struct store_sort_keys, alloc);
	/* One range scan of the mailbox between the first and the last
	   UID asked for; the list filters it. */
	stmt = sql(s, S_SORT_KEYS);
	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)mailbox_id);
	sqlite3_bind_int64(stmt, 2, uids != NULL ? uids[0] : 1);
	sqlite3_bind_int64(stmt, 3,
			   uids != NULL ? uids[count - 1] : STORE_UID_MAX);
	while ((ret = sql_step(s, stmt)) > 0) {
		uint32_t uid = (uint32_t)sqlite3_column_int64(stmt, 0);

		if (uids != NULL) {
			while (next < count && uids[next] < uid)
				next++;
			if (next == count) {
				sql_end(stmt);
				break;
			}
			if (uids[next] != uid)
				continue;
		}
		if (n == alloc) {
			alloc *= 2;
			tmp = p_new(pool, struct store_sort_keys, alloc);
			memcpy(tmp, keys, n * sizeof(*keys));
			keys = tmp;
		}
		k = &keys[n++];
		k->uid = uid;
		k->internaldate = sqlite3_column_int64(stmt, 1);
		k->size = (uint64_t)sqlite3_column_int64(stmt, 2);
		k->present = sqlite3_column_type(stmt, 3) != SQLITE_NULL;
		k->date = sqlite3_column_int64(stmt, 4);
		k->base_subject = col_str_empty(pool, stmt, 5);
		k->subject_is_reply = sqlite3_column_int(stmt, 6) != 0;
		k->from = col_str_empty(pool, stmt, 7);
		k->to = col_str_empty(pool, stmt, 8);
		k->cc = col_str_empty(pool, stmt, 9);
		k->display_from = col_str_empty(pool, stmt, 10);
		k->display_to = col_str_empty(pool, stmt, 11);
		k->message_id = col_str_empty(pool, stmt, 12);
		k->references = refs_split(
			pool, (const char *)sqlite3_column_text(stmt, 13));
	}
	if (ret < 0)
		return -1;
	*keys_r = keys;
	*count_r = n;
	return 0;
}

static int sqlite_sort_keys_fill(struct store *store, uint64_t mailbox_id,
				 const uint32_t *uids,
				 const struct message_index *const *indexes,
				 unsigned int count)
{
	struct sqlite_store *s = SS(store);
	sqlite3_stmt *stmt;
	int64_t email;
	int ret = 0;

	if (txn_begin(s) < 0)
		return -1;
	for (unsigned int i = 0; i < count && ret >= 0; i++) {
		stmt = sql(s, S_SORT_FILL);
		sqlite3_bind_int64(stmt, 1, (sqlite3_int64)mailbox_id);
		sqlite3_bind_int64(stmt, 2, uids[i]);
		if ((ret = sql_step(s, stmt)) > 0) {
			email = sqlite3_column_int64(stmt, 0);
			sql_end(stmt);
			ret = sort_keys_insert(s, email, indexes[i]);
		}
	}
	return txn_end(s, ret < 0 ? -1 : 0);
}

static int sqlite_uids(struct store *store, uint64_t mailbox_id,
		       uint32_t **uids_r, unsigned int *count_r)
{
	struct sqlite_store *s = SS(store);

	if (mailbox_require(s, mailbox_id) < 0)
		return -1;
	return mailbox_uids(s, S_MSG_UIDS, mailbox_id, uids_r, count_r);
}

static int keyword_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int sqlite_keywords(struct store *store, uint64_t mailbox_id,
			   struct pool *pool, const char ***keywords_r)
{
	struct sqlite_store *s = SS(store);
	sqlite3_stmt *stmt;
	const char **all = NULL;
	unsigned int count = 0, alloc = 0, n = 0;
	int ret;

	if (mailbox_require(s, mailbox_id) < 0)
		return -1;
	stmt = sql(s, S_MSG_KEYWORDS);
	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)mailbox_id);
	while ((ret = sql_step(s, stmt)) > 0) {
		const char *const *kws = keywords_split(
			pool, (const char *)sqlite3_column_text(stmt, 0));

		for (; *kws != NULL; kws++) {
			if (count == alloc) {
				alloc = alloc == 0 ? 16 : alloc * 2;
				all = i_realloc(
					all, i_size_mul(alloc, sizeof(*all)));
			}
			all[count++] = *kws;
		}
	}
	if (ret < 0) {
		i_free(all);
		return -1;
	}
	*keywords_r = p_new(pool, const char *, count + 1);
	if (count > 0)
		qsort(all, count, sizeof(*all), keyword_cmp);
	for (unsigned int i = 0; i < count; i++) {
		if (n == 0 || strcmp((*keywords_r)[n - 1], all[i]) != 0)
			(*keywords_r)[n++] = all[i];
	}
	i_free(all);
	return 0;
}

static int sqlite_changes_since(struct store *store, uint64_t mailbox_id,
				uint64_t since, struct pool *pool,
				struct store_change **changes_r,
				unsigned int *count_r)
{
	struct sqlite_store *s = SS(store);
	sqlite3_stmt *stmt;
	struct store_change *changes = NULL, *tmp;
	unsigned int count = 0, alloc = 0;
	int ret;

	stmt = sql(s, mailbox_id == 0 ? S_CHANGES_ALL : S_CHANGES_MBOX);
	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)since);
	if (mailbox_id != 0)
		sqlite3_bind_int64(stmt, 2, (sqlite3_int64)mailbox_id);
	while ((ret = sql_step(s, stmt)) > 0) {
		if (count == alloc) {
			alloc = alloc == 0 ? 32 : alloc * 2;
			tmp = p_new(pool, struct store_change, alloc);
			if (count > 0)
				memcpy(tmp, changes, count * sizeof(*changes));
			changes = tmp;
		}
		changes[count].modseq = (uint64_t)sqlite3_column_int64(stmt, 0);
		changes[count].kind =
			(enum store_change_kind)sqlite3_column_int(stmt, 1);
		changes[count].mailbox_id =
			(uint64_t)sqlite3_column_int64(stmt, 2);
		changes[count].uid = (uint32_t)sqlite3_column_int64(stmt, 3);
		count++;
	}
	if (ret < 0)
		return -1;
	*changes_r = changes;
	*count_r = count;
	return 0;
}

static uint64_t sqlite_highest_modseq(struct store *store)
{
	struct sqlite_store *s = SS(store);
	uint64_t modseq = 0;

	if (s->in_txn)
		return s->modseq;
	if (counter_get(s, "modseq", &modseq) < 0)
		return 0;
	return modseq;
}

static int sqlite_quota_usage(struct store *store, uint64_t *used_r)
{
	return counter_get(SS(store), "usage", used_r);
}

/* STATUS DELETED (RFC 9051 6.3.11) has no kept counter: \Deleted is
   rare and short-lived, so counting the mailbox's rows is cheap enough. */
static int sqlite_mailbox_count_flag(struct store *store, uint64_t id,
				     uint32_t flag, uint32_t *count_r)
{
	struct sqlite_store *s = SS(store);
	sqlite3_stmt *stmt;
	int ret = mailbox_require(s, id);

	if (ret < 0)
		return -1;
	stmt = sql(s, S_MSG_COUNT_FLAG);
	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)id);
	sqlite3_bind_int(stmt, 2, (int)flag);
	ret = sql_step(s, stmt);
	if (ret <= 0)
		return ret < 0 ? -1
			       : store_set_error(&s->store, STORE_ERROR_TEMP,
						 "count returned no row");
	*count_r = (uint32_t)sqlite3_column_int64(stmt, 0);
	sql_end(stmt);
	return 0;
}

/* Search */

static const char *const search_columns[] = {
	[STORE_SEARCH_TEXT] = NULL,           [STORE_SEARCH_BODY] = "f_text",
	[STORE_SEARCH_FROM] = "f_from",       [STORE_SEARCH_TO] = "f_to",
	[STORE_SEARCH_CC] = "f_cc",           [STORE_SEARCH_BCC] = "f_bcc",
	[STORE_SEARCH_SUBJECT] = "f_subject",
};

/* Appends one FTS5 string token, quoted: inside "..." only '"' is special
   and is doubled, so user input never becomes FTS5 syntax. */
static void fts_quote(struct buf *out, const char *s, size_t len)
{
	size_t i;

	buf_append_c(out, '"');
	for (i = 0; i < len; i++) {
		if (s[i] == '"')
			buf_append_c(out, '"');
		buf_append_c(out, (uint8_t)s[i]);
	}
	buf_append_c(out, '"');
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++) {
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	}
	return n;
}

static int sqlite_search(struct store *store, uint64_t mailbox_id,
			 enum store_search_field field,
			 enum store_search_mode mode, const char *query,
			 struct pool *pool, uint64_t **mailboxes_r,
			 uint32_t **uids_r, unsigned int *count_r)
{
	struct sqlite_store *s = SS(store);
	const char *column = search_columns[field];
	struct buf match = BUF_INIT;
	sqlite3_stmt *stmt;
	uint64_t *boxes = NULL, *btmp;
	uint32_t *uids = NULL, *utmp;
	unsigned int count = 0, alloc = 0;
	int ret;

	if (mode == STORE_SEARCH_SUBSTRING && utf8_chars(query) < 3) {
		size_t i;

		buf_append_str(&match, query);
		for (i = 0; i < match.used; i++) {
			if (match.data[i] >= 'A' && match.data[i] <= 'Z')
				match.data[i] += 'a' - 'A';
		}
		stmt = sql(s, S_SEARCH_SCAN);
		sqlite3_bind_int(stmt, 3, (int)field);
	} else if (mode == STORE_SEARCH_SUBSTRING) {
		/* The trigram tokenizer folds case: a quoted phrase is a
		   case-insensitive substring match. */
		if (column != NULL) {
			buf_append_str(&match, column);
			buf_append_str(&match, " : ");
		}
		fts_quote(&match, query, strlen(query));
		stmt = sql(s, S_SEARCH_SUB);
	} else {
		const char *p = query;

		/* Every whitespace-separated word must match as a prefix
		   (implicit AND). */
		while (*p != '\0') {
			size_t len = strcspn(p, " \t\r\n");

			if (len > 0) {
				if (match.used > 0)
					buf_append_c(&match, ' ');
				if (column != NULL) {
					buf_append_str(&match, column);
					buf_append_str(&match, " : ");
				}
				fts_quote(&match, p, len);
				buf_append_c(&match, '*');
			}
			p += len;
			p += strspn(p, " \t\r\n");
		}
		if (match.used == 0) {
			buf_free(&match);
			return 0;
		}
		stmt = sql(s, S_SEARCH_WORD);
	}
	sqlite3_bind_text(stmt, 1, buf_cstr(&match), (int)match.used,
			  SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)mailbox_id);
	while ((ret = sql_step(s, stmt)) > 0) {
		if (count == alloc) {
			alloc = alloc == 0 ? 32 : alloc * 2;
			utmp = p_new(pool, uint32_t, alloc);
			btmp = p_new(pool, uint64_t, alloc);
			if (count > 0) {
				memcpy(utmp, uids, count * sizeof(*uids));
				memcpy(btmp, boxes, count * sizeof(*boxes));
			}
			uids = utmp;
			boxes = btmp;
		}
		boxes[count] = (uint64_t)sqlite3_column_int64(stmt, 0);
		uids[count] = (uint32_t)sqlite3_column_int64(stmt, 1);
		count++;
	}
	buf_free(&match);
	if (ret < 0)
		return -1;
	if (mailboxes_r != NULL)
		*mailboxes_r = boxes;
	*uids_r = uids;
	*count_r = count;
	return 0;
}

/* Integrity */

static int sqlite_verify(struct store *store)
{
	struct sqlite_store *s = SS(store);
	sqlite3_stmt *stmt = sql(s, S_INTEGRITY);
	int ret;

	if ((ret = sql_step(s, stmt)) <= 0) {
		if (ret == 0)
			store_set_error(store, STORE_ERROR_DAMAGED,
					"integrity_check returned nothing");
		return -1;
	}
	if (strcmp((const char *)sqlite3_column_text(stmt, 0), "ok") != 0) {
		store_set_error(store, STORE_ERROR_DAMAGED,
				"integrity_check: %s",
				(const char *)sqlite3_column_text(stmt, 0));
		sql_end(stmt);
		return -1;
	}
	sql_end(stmt);
	/* FTS5 checks that both indexes match email_text exactly. */
	if (sql_exec(s, sql(s, S_FTS_SUB_CHECK)) < 0 ||
	    sql_exec(s, sql(s, S_FTS_WORD_CHECK)) < 0) {
		store->error = STORE_ERROR_DAMAGED;
		return -1;
	}
	stmt = sql(s, S_VERIFY_MAILBOXES);
	if ((ret = sql_step(s, stmt)) != 0) {
		if (ret > 0) {
			store_set_error(
				store, STORE_ERROR_DAMAGED,
				"mailbox %s: counts, UIDNEXT or "
				"HIGHESTMODSEQ disagree with its "
				"messages",
				(const char *)sqlite3_column_text(stmt, 0));
			sql_end(stmt);
		}
		return -1;
	}
	stmt = sql(s, S_VERIFY_TOTALS);
	if ((ret = sql_step(s, stmt)) <= 0)
		return -1;
	if (sqlite3_column_int(stmt, 0) != 1 ||
	    sqlite3_column_int(stmt, 1) != 1 ||
	    sqlite3_column_int64(stmt, 2) != 0 ||
	    sqlite3_column_int64(stmt, 3) != 0 ||
	    sqlite3_column_int64(stmt, 4) != 0 ||
	    sqlite3_column_int64(stmt, 5) != 0) {
		store_set_error(store, STORE_ERROR_DAMAGED,
				"account totals disagree: usage_ok=%d "
				"modseq_ok=%d orphan_messages=%lld "
				"unused_emails=%lld emails_without_text=%lld "
				"blob_size_conflicts=%lld",
				sqlite3_column_int(stmt, 0),
				sqlite3_column_int(stmt, 1),
				(long long)sqlite3_column_int64(stmt, 2),
				(long long)sqlite3_column_int64(stmt, 3),
				(long long)sqlite3_column_int64(stmt, 4),
				(long long)sqlite3_column_int64(stmt, 5));
		sql_end(stmt);
		return -1;
	}
	sql_end(stmt);
	return 0;
}

static int sqlite_foreach_blob(struct store *store,
			       int (*cb)(const uint8_t blob_id[32],
					 uint64_t size, void *context),
			       void *context)
{
	struct sqlite_store *s = SS(store);
	sqlite3_stmt *stmt = sql(s, S_BLOBS);
	uint8_t id[32];
	int ret;

	while ((ret = sql_step(s, stmt)) > 0) {
		const void *blob = sqlite3_column_blob(stmt, 0);

		if (blob == NULL ||
		    sqlite3_column_bytes(stmt, 0) != (int)sizeof(id)) {
			sql_end(stmt);
			return store_set_error(store, STORE_ERROR_DAMAGED,
					       "bad blob id in emails");
		}
		memcpy(id, blob, sizeof(id));
		if (cb(id, (uint64_t)sqlite3_column_int64(stmt, 1), context) <
		    0) {
			sql_end(stmt);
			return store_set_error(store, STORE_ERROR_TEMP,
					       "blob callback failed");
		}
	}
	return ret;
}

/* Open and close */

static void sqlite_close(struct store *store)
{
	struct sqlite_store *s = SS(store);
	unsigned int i;

	if (s->in_txn)
		txn_rollback(s);
	for (i = 0; i < S_COUNT; i++)
		sqlite3_finalize(s->stmts[i]);
	if (s->db != NULL)
		sqlite3_close(s->db);
	i_free(s->path);
	i_free(s);
}

static const struct {
	const char *name;
	enum store_special_use special_use;
} default_mailboxes[] = {
	{ "INBOX", STORE_SPECIAL_INBOX },
	/* RFC 6154 2: the usual special-use mailboxes. */
	{ "Drafts", STORE_SPECIAL_DRAFTS },
	{ "Sent", STORE_SPECIAL_SENT },
	{ "Junk", STORE_SPECIAL_JUNK },
	{ "Trash", STORE_SPECIAL_TRASH },
	{ "Archive", STORE_SPECIAL_ARCHIVE },
};

static int schema_exec(struct sqlite_store *s, const char *sqltext)
{
	char *err = NULL;

	if (sqlite3_exec(s->db, sqltext, NULL, NULL, &err) != SQLITE_OK) {
		store_set_error(&s->store, STORE_ERROR_TEMP, "%s",
				err == NULL ? "?" : err);
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

static int schema_version(struct sqlite_store *s, int *version_r)
{
	sqlite3_stmt *stmt;
	int rc;

	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &stmt, NULL) !=
	    SQLITE_OK)
		return sql_fail(s, "user_version");
	rc = sqlite3_step(stmt);
	*version_r = rc == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : -1;
	sqlite3_finalize(stmt);
	if (rc != SQLITE_ROW)
		return sql_fail(s, "user_version");
	return 0;
}

static int stmts_prepare(struct sqlite_store *s)
{
	unsigned int i;

	for (i = 0; i < S_COUNT; i++) {
		if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1,
				       SQLITE_PREPARE_PERSISTENT, &s->stmts[i],
				       NULL) != SQLITE_OK)
			return sql_fail(s, stmt_sql[i]);
	}
	return 0;
}

/* Brings the schema to STORE_SCHEMA_VERSION in one transaction. */
static int schema_migrate(struct sqlite_store *s)
{
	unsigned int i;
	uint64_t id;
	int version, ret = 0;

	if (schema_exec(s, "BEGIN IMMEDIATE") < 0)
		return -1;
	if (schema_version(s, &version) < 0) {
		schema_exec(s, "ROLLBACK");
		return -1;
	}
	if (version > STORE_SCHEMA_VERSION) {
		schema_exec(s, "ROLLBACK");
		return store_set_error(&s->store, STORE_ERROR_INVALID,
				       "store schema %d is newer than %d",
				       version, STORE_SCHEMA_VERSION);
	}
	if (version == STORE_SCHEMA_VERSION)
		return schema_exec(s, "COMMIT");
	if (version >= 1) {
		/* 1 -> 2: the sort keys table; its rows come lazily
		   (store_sort_keys_fill). */
		for (i = 0; i < N_ELEMENTS(schema_v2) && ret == 0; i++)
			ret = schema_exec(s, schema_v2[i]);
		if (ret == 0)
			ret = schema_exec(s, "PRAGMA user_version = 2");
		if (ret == 0)
			ret = schema_exec(s, "COMMIT");
		else
			schema_exec(s, "ROLLBACK");
		return ret;
	}
	for (i = 0; i < N_ELEMENTS(schema_v1) && ret == 0; i++)
		ret = schema_exec(s, schema_v1[i]);
	for (i = 0; i < N_ELEMENTS(schema_v2) && ret == 0; i++)
		ret = schema_exec(s, schema_v2[i]);
	if (ret == 0)
		ret = schema_exec(s, "PRAGMA user_version = 2");
	if (ret == 0)
		ret = stmts_prepare(s);
	if (ret == 0) {
		s->in_txn = true;
		s->modseq = s->modseq_at_begin = 0;
		for (i = 0; i < N_ELEMENTS(default_mailboxes) && ret == 0;
		     i++) {
			ret = mailbox_insert(s, default_mailboxes[i].name,
					     default_mailboxes[i].special_use,
					     true, &id);
		}
		if (ret == 0)
			ret = counter_set(s, "modseq", s->modseq);
		s->in_txn = false;
		store_notify_discard(&s->store);
	}
	if (ret == 0)
		ret = schema_exec(s, "COMMIT");
	if (ret < 0)
		schema_exec(s, "ROLLBACK");
	return ret;
}

static int mkdir_0700(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static const struct store_vfuncs sqlite_vfuncs = {
	.close = sqlite_close,
	.quota_usage = sqlite_quota_usage,
	.mailbox_create = sqlite_mailbox_create,
	.mailbox_rename = sqlite_mailbox_rename,
	.mailbox_delete = sqlite_mailbox_delete,
	.mailbox_set_subscribed = sqlite_mailbox_set_subscribed,
	.mailbox_lookup = sqlite_mailbox_lookup,
	.mailbox_get = sqlite_mailbox_get,
	.mailbox_find_special = sqlite_mailbox_find_special,
	.mailbox_list = sqlite_mailbox_list,
	.mailbox_count_flag = sqlite_mailbox_count_flag,
	.append_many = sqlite_append_many,
	.copy = sqlite_copy,
	.sort_keys = sqlite_sort_keys,
	.sort_keys_fill = sqlite_sort_keys_fill,
	.flags_update = sqlite_flags_update,
	.expunge = sqlite_expunge,
	.fetch = sqlite_fetch,
	.fetch_meta = sqlite_fetch_meta,
	.uids = sqlite_uids,
	.keywords = sqlite_keywords,
	.changes_since = sqlite_changes_since,
	.highest_modseq = sqlite_highest_modseq,
	.search = sqlite_search,
	.verify = sqlite_verify,
	.foreach_blob = sqlite_foreach_blob,
};

static struct store *store_sqlite_open_locked(const char *data_dir,
					      uint64_t account_id,
					      const uint8_t data_key[32],
					      const char **error_r)
{
	struct sqlite_store *s;
	char *dir;
	const char *err;
	unsigned int i;

	if (sodium_init() < 0) {
		*error_r = "libsodium failed to initialise";
		return NULL;
	}
	dir = i_strdup_printf("%s/accounts", data_dir);
	if (mkdir_0700(dir) < 0) {
		snprintf(open_error, sizeof(open_error), "mkdir %s: %s", dir,
			 strerror(errno));
		i_free(dir);
		*error_r = open_error;
		return NULL;
	}
	i_free(dir);
	dir = i_strdup_printf("%s/accounts/%llu", data_dir,
			      (unsigned long long)account_id);
	if (mkdir_0700(dir) < 0) {
		snprintf(open_error, sizeof(open_error), "mkdir %s: %s", dir,
			 strerror(errno));
		i_free(dir);
		*error_r = open_error;
		return NULL;
	}

	s = i_new(struct sqlite_store, 1);
	s->store.v = &sqlite_vfuncs;
	s->store.account_id = account_id;
	s->path = i_strdup_printf("%s/store.db", dir);
	i_free(dir);
	if (vfs_crypt_open(s->path, data_key,
			   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &s->db,
			   &err) < 0) {
		snprintf(open_error, sizeof(open_error), "store %s: %s",
			 s->path, err);
		vfs_crypt_key_clear(s->path);
		sqlite_close(&s->store);
		*error_r = open_error;
		return NULL;
	}
	if (schema_migrate(s) < 0 ||
	    (s->stmts[0] == NULL && stmts_prepare(s) < 0)) {
		vfs_crypt_key_clear(s->path);
		snprintf(open_error, sizeof(open_error), "store %s: %s",
			 s->path, s->store.error_str);
		sqlite_close(&s->store);
		*error_r = open_error;
		return NULL;
	}
	/* The migration's transaction opened the WAL too, and SQLite keeps
	   both files open for the connection's life: each holds its own
	   copy of the key, so the registry need not. */
	vfs_crypt_key_clear(s->path);
	for (i = 0; i < S_COUNT; i++)
		i_assert(s->stmts[i] != NULL);
	return &s->store;
}

/* The VFS key registry is keyed by path and the key is cleared as soon as
   both files of the connection are open (each holds its own copy): two
   threads opening the same store must not interleave set, open and clear,
   or one would clear the key before the other's files are open. */
static pthread_mutex_t store_sqlite_open_lock = PTHREAD_MUTEX_INITIALIZER;

struct store *store_sqlite_open(const char *data_dir, uint64_t account_id,
				const uint8_t data_key[32],
				const char **error_r)
{
	struct store *store;

	pthread_mutex_lock(&store_sqlite_open_lock);
	store = store_sqlite_open_locked(data_dir, account_id, data_key,
					 error_r);
	pthread_mutex_unlock(&store_sqlite_open_lock);
	return store;
}
