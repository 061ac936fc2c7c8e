#ifndef MARMOT_IMAP_SESSION_H
#define MARMOT_IMAP_SESSION_H
/* The IMAP server session (RFC 9051, RFC 3501) of one authenticated
   connection: the account's store, what the client enabled, the selected
   mailbox as the client knows it (the message sequence number -> UID map,
   the highest MODSEQ it was told about), and the command table.

   front-imap.c owns the connection (parser, literals, STARTTLS, login,
   IDLE) and calls imap_session_execute() for every command after login.
   Command handlers live in imap-cmd-*.c, each file exporting a table of
   struct imap_cmd_def; a handler writes untagged responses and exactly one
   tagged response (imap_cmd_ok/no/bad) into cmd->out.

   Sequence numbers (RFC 9051 7.5.1): the map changes only when the client
   is told: new messages by "* N EXISTS", expunges by "* N EXPUNGE" or
   "* VANISHED" (QRESYNC, RFC 7162 3.2.10), and those only where the RFC
   allows them (not during FETCH, STORE, SEARCH without UID: RFC 9051 7.5.1).
   imap_session_sync() is the one place that reports other sessions'
   changes. */

#include "lib.h"
#include "imap-parser.h"
#include "store.h"

struct buf;
struct front_conn;
struct store;
struct blob_store;
struct pool;

/* The hierarchy separator (RFC 9051 5.1.1; the store's, store.h). */
#define IMAP_MAILBOX_SEP '/'
/* APPENDLIMIT (RFC 7889): the largest message APPEND takes, the parser's
   literal limit after login (imap_parser_limits_auth). */
#define IMAP_APPEND_LIMIT (64u * 1024 * 1024)

enum imap_enabled {
	IMAP_ENABLED_REV2 = 1u << 0, /* ENABLE IMAP4rev2 (RFC 9051 6.3.1) */
	IMAP_ENABLED_UTF8 = 1u << 1, /* ENABLE UTF8=ACCEPT (RFC 6855 3) */
	IMAP_ENABLED_CONDSTORE = 1u << 2, /* RFC 7162 3.1 (also implied) */
	IMAP_ENABLED_QRESYNC = 1u << 3, /* RFC 7162 3.2.3 */
};

/* The account's store, shared by every session of that account in this
   front process (one SQLite connection per account, not per connection:
   1,000 IDLE connections must stay cheap). Loop thread only. */
struct imap_account {
	struct imap_account *prev, *next;
	uint64_t account_id;
	unsigned int refcount;
	struct store *store;
	struct blob_store *blobs;
	/* Sessions of this account (for change notifications). */
	struct imap_session *sessions;
};

struct imap_session {
	struct imap_session *prev, *next; /* in account->sessions */
	struct front_conn *conn;
	struct imap_account *account;
	struct store *store; /* account->store */
	struct blob_store *blobs; /* account->blobs */
	uint64_t quota_bytes;
	unsigned int enabled; /* enum imap_enabled */
	/* enum imap_write_flags for strings and mailbox names. */
	unsigned int write_flags;

	/* The selected mailbox (RFC 9051 3.3). */
	bool selected;
	bool readonly; /* EXAMINE */
	uint64_t mailbox_id;
	char *mailbox_name; /* i_malloc'ed, UTF-8 */
	uint32_t uidvalidity;
	/* UIDs by sequence number - 1, ascending; the client's view. */
	uint32_t *uids;
	unsigned int uid_count, uid_alloc;
	/* Changes with a modseq up to this have been reported. */
	uint64_t known_modseq;
	/* The next UID the client may not know about yet. */
	uint32_t known_uidnext;
	/* Some change may be waiting to be reported (a notification came). */
	bool changed;
	/* SEARCHRES (RFC 5182): the saved result, as UIDs, ascending. */
	uint32_t *searchres;
	unsigned int searchres_count;
	/* IDLE is running: changes are reported as they come. */
	bool idling;
	/* A command answering in parts (struct imap_cmd.more). */
	struct imap_session_cmd *pending;
	/* The modseqs of this session's own last write command: their flag
	   changes and expunges were answered by the command itself, so the
	   sync does not repeat them. */
	uint64_t own_lo, own_hi;
	/* The sync wrote a BYE (another session deleted the selected
	   mailbox): the connection closes once that is written. */
	bool bye;
	/* NOTIFY (RFC 5465, imap-notify.h); NULL after NOTIFY NONE. */
	struct imap_notify *notify;
	/* The store changed since the notifications were last written. */
	bool notify_changed;
};

/* One command being executed. */
struct imap_cmd {
	struct imap_session *session;
	const char *tag;
	const char *name; /* upper-cased; "FETCH" for "UID FETCH" */
	bool uid; /* the UID prefix (RFC 9051 6.4.9) */
	const struct imap_arg *args;
	unsigned int arg_count;
	/* Untagged responses go here ... */
	struct buf *out;
	/* ... the tagged one (imap_cmd_ok/no/bad) here: the dispatcher
	   sends it after the changes it reports. */
	struct buf *tagged;
	/* Cleared after every command. */
	struct pool *pool;
	/* Set by imap_cmd_ok/no/bad; failed by imap_cmd_bad. */
	bool answered;
	bool failed;
	/* A handler that answers in parts (FETCH of many messages: memory
	   per connection stays bounded) sets more and returns without
	   answering; more is called again, with a fresh out, once the
	   client has read what was produced, until it answers. */
	void (*more)(struct imap_cmd *cmd);
	void *more_context;
};

/* Roughly how much output one part of a command may produce. */
#define IMAP_CMD_PART_SIZE (256u * 1024)

enum imap_cmd_flags {
	/* Needs a selected mailbox (RFC 9051 6.4). */
	IMAP_CMD_SELECTED = 1u << 0,
	/* May be prefixed with UID. */
	IMAP_CMD_UID = 1u << 1,
	/* Without UID, no EXPUNGE may be sent during or after it (RFC 9051
	   7.5.1: FETCH, STORE, SEARCH). */
	IMAP_CMD_NO_EXPUNGE = 1u << 2,
	/* Changes the mailbox: refused in a mailbox opened with EXAMINE. */
	IMAP_CMD_WRITE = 1u << 3,
};

typedef void imap_cmd_func_t(struct imap_cmd *cmd);

struct imap_cmd_def {
	const char *name; /* upper case; NULL ends a table */
	imap_cmd_func_t *func;
	unsigned int flags; /* enum imap_cmd_flags */
};

/* The tables (each NULL-terminated); imap-session.c searches them all. */
extern const struct imap_cmd_def imap_cmds_session[]; /* imap-session.c */
extern const struct imap_cmd_def imap_cmds_fetch[]; /* imap-cmd-fetch.c */
/* imap-cmd-compress.c */
extern const struct imap_cmd_def imap_cmds_compress[];
extern const struct imap_cmd_def imap_cmds_mailbox[]; /* imap-cmd-mailbox.c */
extern const struct imap_cmd_def imap_cmds_search[]; /* imap-cmd-search.c */
extern const struct imap_cmd_def imap_cmds_sort[]; /* imap-cmd-sort.c */
extern const struct imap_cmd_def imap_cmds_notify[]; /* imap-notify.c */

/* Evaluates a parsed search program (imap-search.h) over the client's
   view of the selected mailbox, as SEARCH does (imap-cmd-search.c): the
   matching UIDs, ascending, in cmd's pool. SORT and THREAD use it.
   Returns 0, or -1 with *error_r from the store (answer it with
   imap_cmd_store_error()). */
struct imap_search_program;
int imap_search_eval(struct imap_cmd *cmd,
		     const struct imap_search_program *prog, uint32_t **uids_r,
		     unsigned int *count_r, const char **error_r);

/* A FETCH attribute list parsed once and written for messages later:
   NOTIFY's MessageNew (RFC 5465 5.2; imap-cmd-fetch.c). parse: NULL
   with *error_r when invalid; the items live in pool. write: "* N
   FETCH" for each of uids (ascending) the client knows, in the selected
   mailbox, without setting \Seen. */
struct imap_fetch_items;
struct imap_fetch_items *imap_fetch_items_parse(struct imap_session *session,
						struct pool *pool,
						const struct imap_arg *arg,
						const char **error_r);
void imap_fetch_items_write(struct imap_session *session,
			    const struct imap_fetch_items *items,
			    const uint32_t *uids, unsigned int count,
			    struct buf *out);

/* Creates the session of a connection that just logged in; the data key
   opens (or joins) the account's store. Returns NULL with *error_r when
   the store cannot be opened. */
struct imap_session *imap_session_create(struct front_conn *conn,
					 uint64_t account_id,
					 const uint8_t data_key[32],
					 uint64_t quota_bytes,
					 const char **error_r);
void imap_session_destroy(struct imap_session **session);

/* Finds the command (NULL if unknown). */
const struct imap_cmd_def *imap_session_find(const char *name);
/* Runs one command: checks its flags (state, UID, EXAMINE), calls the
   handler, and reports pending changes where allowed. Appends everything
   to out. Returns true when the command is complete; false when it
   answers in parts (session->pending): the caller sends out, reads no
   further commands, and calls imap_session_continue() whenever the
   output has drained. args and pool must stay valid until then. */
bool imap_session_execute(struct imap_session *session,
			  const struct imap_cmd_def *def, const char *tag,
			  bool uid, const struct imap_arg *args,
			  unsigned int arg_count, struct buf *out,
			  struct pool *pool);
/* The next part of session->pending; returns true when it completed. */
bool imap_session_continue(struct imap_session *session, struct buf *out);

/* Reports other sessions' (and deliveries') changes to the selected
   mailbox: "* N EXISTS", FETCH FLAGS (with MODSEQ under CONDSTORE), and,
   if allow_expunge, "* N EXPUNGE" or "* VANISHED" (QRESYNC), updating the
   sequence map. Returns 0, or -1 when the store failed (nothing was
   reported). */
int imap_session_sync(struct imap_session *session, struct buf *out,
		      bool allow_expunge);
/* Removes expunged uids (ascending) from the sequence map and reports
   them as "* N EXPUNGE" (highest first) or one "* VANISHED" (QRESYNC).
   UIDs the client does not know are skipped. For EXPUNGE and MOVE, which
   report their own expunges at once. */
void imap_session_report_expunges(struct imap_session *session, struct buf *out,
				  const uint32_t *uids, unsigned int count);
struct store_message;
/* "* SEQ FETCH (UID u FLAGS (...) [MODSEQ (m)])". */
void imap_session_write_fetch_flags(struct imap_session *session,
				    struct buf *out, uint32_t seq,
				    const struct store_message *msg);
/* Leaves the selected state (CLOSE, UNSELECT, a new SELECT). */
void imap_session_unselect(struct imap_session *session);

/* The sequence number of uid (1-based), or 0 if the client does not know
   it (binary search). */
uint32_t imap_session_seq(const struct imap_session *session, uint32_t uid);
/* The highest UID the client knows, 0 for an empty mailbox. */
uint32_t imap_session_last_uid(const struct imap_session *session);

/* Resolves a sequence set argument (sequence numbers, or UIDs when
   cmd->uid; "$" = the SEARCHRES result) into the UIDs it names in the
   selected mailbox, ascending (pool memory). Sequence numbers beyond the
   mailbox are an error (RFC 9051 9 seq-number); UIDs that do not exist
   are skipped. Returns 0, or -1 with *error_r for a tagged BAD. */
int imap_cmd_uids(struct imap_cmd *cmd, const struct imap_arg *arg,
		  uint32_t **uids_r, unsigned int *count_r,
		  const char **error_r);

/* A mailbox name argument as UTF-8: decoded from modified UTF-7 (RFC 3501
   5.1.3) unless UTF-8 was enabled (RFC 6855 3). NULL with *error_r (for
   a BAD) when invalid. Pool memory. imap_mailbox_name_arg is the same
   outside a command (utf8: the client enabled UTF-8). */
const char *imap_mailbox_name_arg(struct pool *pool, const struct imap_arg *arg,
				  bool utf8, const char **error_r);
const char *imap_cmd_mailbox_name(struct imap_cmd *cmd,
				  const struct imap_arg *arg,
				  const char **error_r);

/* STATUS items (RFC 9051 6.3.11 and extensions), in the order written. */
enum imap_status_item {
	STATUS_MESSAGES = 1u << 0,
	STATUS_UIDNEXT = 1u << 1,
	STATUS_UIDVALIDITY = 1u << 2,
	STATUS_UNSEEN = 1u << 3,
	STATUS_DELETED = 1u << 4,
	STATUS_SIZE = 1u << 5, /* RFC 8438 */
	STATUS_HIGHESTMODSEQ = 1u << 6, /* RFC 7162 3.1.6 */
	STATUS_RECENT = 1u << 7, /* IMAP4rev1 only */
	STATUS_APPENDLIMIT = 1u << 8, /* RFC 7889 3.2 */
	STATUS_MAILBOXID = 1u << 9, /* RFC 8474 4.2 */
};
/* Writes "* STATUS name (items)" of box (imap-cmd-mailbox.c): for the
   STATUS command and LIST-STATUS, and NOTIFY's unsolicited ones.
   deleted is the DELETED figure, read by the caller when it asks for
   it. */
void imap_status_format(struct imap_session *session, struct buf *out,
			struct pool *pool, const struct store_mailbox *box,
			unsigned int items, uint32_t deleted);

/* The RFC 6154 attribute of a special use ("\\Drafts"), NULL for none
   and for INBOX. */
const char *imap_special_use_attr(enum store_special_use use);

/* The tagged answer. code is without brackets or NULL. */
void imap_cmd_ok(struct imap_cmd *cmd, const char *code, const char *text);
void imap_cmd_no(struct imap_cmd *cmd, const char *code, const char *text);
void imap_cmd_bad(struct imap_cmd *cmd, const char *text);
/* NO for a failed store call: [SERVERBUG]/[UNAVAILABLE]/[OVERQUOTA]/
   [NONEXISTENT]/[ALREADYEXISTS] (RFC 5530) from store_last_error(). */
void imap_cmd_store_error(struct imap_cmd *cmd, const char *error);

/* Writes flags and keywords as a flag list "(\Seen $label)". */
void imap_write_flags(struct buf *out, uint32_t flags,
		      const char *const *keywords);
/* Parses a flag list (STORE, APPEND): system flags into *flags_r, the rest
   as keywords (NULL-terminated, pool memory). Returns 0, or -1 with
   *error_r (\Recent or an unknown \flag, bad atoms). */
int imap_parse_flags(struct pool *pool, const struct imap_arg *args,
		     unsigned int count, uint32_t *flags_r,
		     const char ***keywords_r, const char **error_r);

#endif
