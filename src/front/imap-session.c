/* imap-session.c - the IMAP session of an authenticated connection: the
   shared per-account store, the command dispatcher with its state rules,
   the selected mailbox's sequence map and the reporting of changes
   (imap-session.h), and the session commands: SELECT, EXAMINE, CLOSE,
   UNSELECT, CHECK, NOOP, ENABLE, NAMESPACE, ID.

   Threads: everything here runs in the front's loop thread; the store
   calls block on SQLite (page cache hits mostly; commits fsync). */

#include "lib.h"
#include "buf.h"
#include "ioloop.h"
#include "log.h"
#include "pool.h"
#include "blob.h"
#include "store.h"
#include "maildir.h"
#include "imap-seqset.h"
#include "imap-write.h"
#include "front-private.h"
#include "imap-session.h"
#include "imap-notify.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static struct imap_account *imap_accounts;
static struct timeout *imap_idle_timeout;

static const struct imap_cmd_def *const imap_cmd_tables[] = {
	imap_cmds_session, imap_cmds_fetch, imap_cmds_mailbox,
	imap_cmds_search,  imap_cmds_sort,  imap_cmds_compress,
	imap_cmds_notify,
};

/* RFC 5465 5.8: when this much output waits for a client that does not
   read, its notifications are dropped (NOTIFICATIONOVERFLOW). */
#define IMAP_NOTIFY_OUTPUT_MAX (1024u * 1024)

/* ---- accounts ---- */

static void imap_account_notify(uint64_t account_id, uint64_t mailbox_id,
				uint64_t modseq, void *context);

static struct imap_account *imap_account_find(uint64_t account_id)
{
	for (struct imap_account *a = imap_accounts; a != NULL; a = a->next) {
		if (a->account_id == account_id)
			return a;
	}
	return NULL;
}

static struct imap_account *imap_account_get(uint64_t account_id,
					     const uint8_t data_key[32],
					     uint64_t quota_bytes,
					     const char **error_r)
{
	struct imap_account *a = imap_account_find(account_id);
	const char *data_dir = front_global->set->data_dir;
	char account_dir[4096];

	if (a != NULL) {
		a->refcount++;
		store_set_quota(a->store, quota_bytes);
		return a;
	}
	a = i_new(struct imap_account, 1);
	a->account_id = account_id;
	a->refcount = 1;
	a->store = store_open(data_dir, account_id, data_key, error_r);
	if (a->store == NULL) {
		i_free(a);
		return NULL;
	}
	store_set_quota(a->store, quota_bytes);
	snprintf(account_dir, sizeof(account_dir), "%s/accounts/%" PRIu64,
		 data_dir, account_id);
	a->blobs = blob_store_open(account_dir, data_key, error_r);
	if (a->blobs == NULL) {
		store_close(&a->store);
		i_free(a);
		return NULL;
	}
	store_notify_add(account_id, imap_account_notify, a);
	a->next = imap_accounts;
	if (imap_accounts != NULL)
		imap_accounts->prev = a;
	imap_accounts = a;
	return a;
}

static void imap_account_unref(struct imap_account **_a)
{
	struct imap_account *a = *_a;

	*_a = NULL;
	i_assert(a->refcount > 0);
	if (--a->refcount > 0)
		return;
	store_notify_remove(a->account_id, imap_account_notify, a);
	if (a->prev != NULL)
		a->prev->next = a->next;
	else
		imap_accounts = a->next;
	if (a->next != NULL)
		a->next->prev = a->prev;
	blob_store_close(&a->blobs);
	store_close(&a->store);
	i_free(a);
}

/* The unsolicited responses of one session with news, when no command
   of it is running: IDLE's, and NOTIFY's (RFC 5465 4: at any time the
   server may send untagged responses). */
static void imap_session_push(struct imap_session *s)
{
	struct buf out = BUF_INIT;
	bool allow_expunge = true;

	if (s->notify != NULL && s->notify_changed &&
	    front_conn_output_pending(s->conn) > IMAP_NOTIFY_OUTPUT_MAX) {
		/* RFC 5465 5.8: the server stops notifying, as after
		   NOTIFY NONE, and says so. */
		imap_notify_free(&s->notify);
		s->notify_changed = false;
		buf_append_str(&out, "* OK [NOTIFICATIONOVERFLOW] Too many "
				     "notifications; NOTIFY is now off\r\n");
	}
	imap_notify_report(s, &out);
	if (s->changed &&
	    imap_notify_selected_sync(
		    s, s->idling ? IMAP_NOTIFY_IN_IDLE : IMAP_NOTIFY_BETWEEN,
		    &allow_expunge))
		(void)imap_session_sync(s, &out, allow_expunge);
	if (out.used > 0)
		front_conn_write(s->conn, out.data, out.used);
	buf_free(&out);
	if (s->bye)
		front_conn_close(s->conn, "mailbox_deleted");
}

/* Sessions with news are served from a zero timeout, never from inside
   the store call whose commit notified. */
static void imap_idle_run(void *context ATTR_UNUSED)
{
	timeout_remove(&imap_idle_timeout);
	for (struct imap_account *a = imap_accounts; a != NULL; a = a->next) {
		for (struct imap_session *s = a->sessions; s != NULL;
		     s = s->next) {
			/* A command answering in parts: its end reports. */
			if (s->pending == NULL && !s->conn->closing)
				imap_session_push(s);
		}
	}
}

static void imap_account_changed(struct imap_account *a, uint64_t mailbox_id)
{
	bool wake = false;

	for (struct imap_session *s = a->sessions; s != NULL; s = s->next) {
		if (s->notify != NULL) {
			/* Any mailbox may be one it asked about. */
			s->notify_changed = true;
			wake = true;
		}
		if (!s->selected ||
		    (mailbox_id != 0 && mailbox_id != s->mailbox_id))
			continue;
		s->changed = true;
		wake = wake || s->idling || s->notify != NULL;
	}
	if (wake && imap_idle_timeout == NULL)
		imap_idle_timeout = timeout_add(front_global->ioloop, 0,
						imap_idle_run, NULL);
}

static void imap_account_notify(uint64_t account_id ATTR_UNUSED,
				uint64_t mailbox_id,
				uint64_t modseq ATTR_UNUSED, void *context)
{
	imap_account_changed(context, mailbox_id);
}

void front_imap_store_changed(uint64_t account_id, uint64_t mailbox_id)
{
	struct imap_account *a = imap_account_find(account_id);

	if (a != NULL)
		imap_account_changed(a, mailbox_id);
}

void front_imap_deinit(void)
{
	timeout_remove(&imap_idle_timeout);
}

/* ---- sessions ---- */

static void imap_session_abort(struct imap_session *s);

struct imap_session *imap_session_create(struct front_conn *conn,
					 uint64_t account_id,
					 const uint8_t data_key[32],
					 uint64_t quota_bytes,
					 const char **error_r)
{
	struct imap_account *a;
	struct imap_session *s;

	a = imap_account_get(account_id, data_key, quota_bytes, error_r);
	if (a == NULL)
		return NULL;
	s = i_new(struct imap_session, 1);
	s->conn = conn;
	s->account = a;
	s->store = a->store;
	s->blobs = a->blobs;
	s->quota_bytes = quota_bytes;
	s->next = a->sessions;
	if (a->sessions != NULL)
		a->sessions->prev = s;
	a->sessions = s;
	return s;
}

void imap_session_unselect(struct imap_session *s)
{
	s->selected = false;
	s->readonly = false;
	s->mailbox_id = 0;
	i_free(s->mailbox_name);
	i_free(s->uids);
	s->uid_count = s->uid_alloc = 0;
	i_free(s->searchres);
	s->searchres_count = 0;
	s->known_modseq = 0;
	s->known_uidnext = 0;
	s->changed = false;
}

void imap_session_destroy(struct imap_session **_s)
{
	struct imap_session *s = *_s;
	struct imap_account *a;

	*_s = NULL;
	if (s == NULL)
		return;
	imap_session_abort(s);
	imap_session_unselect(s);
	imap_notify_free(&s->notify);
	a = s->account;
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		a->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	imap_account_unref(&a);
	i_free(s);
}

uint32_t imap_session_seq(const struct imap_session *s, uint32_t uid)
{
	unsigned int lo = 0, hi = s->uid_count;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (s->uids[mid] < uid)
			lo = mid + 1;
		else if (s->uids[mid] > uid)
			hi = mid;
		else
			return mid + 1;
	}
	return 0;
}

uint32_t imap_session_last_uid(const struct imap_session *s)
{
	return s->uid_count == 0 ? 0 : s->uids[s->uid_count - 1];
}

static void imap_session_add_uid(struct imap_session *s, uint32_t uid)
{
	if (s->uid_count == s->uid_alloc) {
		s->uid_alloc = s->uid_alloc < 16 ? 16 : s->uid_alloc * 2;
		s->uids = i_realloc(s->uids,
				    i_size_mul(s->uid_alloc, sizeof(*s->uids)));
	}
	s->uids[s->uid_count++] = uid;
}

void imap_write_flags(struct buf *out, uint32_t flags,
		      const char *const *keywords)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} sys[] = {
		{ STORE_FLAG_SEEN, "\\Seen" },
		{ STORE_FLAG_ANSWERED, "\\Answered" },
		{ STORE_FLAG_FLAGGED, "\\Flagged" },
		{ STORE_FLAG_DELETED, "\\Deleted" },
		{ STORE_FLAG_DRAFT, "\\Draft" },
	};
	const char *atoms[N_ELEMENTS(sys) + 64];
	unsigned int n = 0;

	for (unsigned int i = 0; i < N_ELEMENTS(sys); i++) {
		if ((flags & sys[i].bit) != 0)
			atoms[n++] = sys[i].name;
	}
	/* imap_write_atom_list() leaves out keywords that are not atoms
	   (set through JMAP, say); more than 64 are written in turns. */
	for (unsigned int i = 0; keywords != NULL && keywords[i] != NULL; i++) {
		if (n == N_ELEMENTS(atoms))
			break;
		atoms[n++] = keywords[i];
	}
	imap_write_atom_list(out, atoms, n);
}

int imap_parse_flags(struct pool *pool, const struct imap_arg *args,
		     unsigned int count, uint32_t *flags_r,
		     const char ***keywords_r, const char **error_r)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} sys[] = {
		{ "\\Seen", STORE_FLAG_SEEN },
		{ "\\Answered", STORE_FLAG_ANSWERED },
		{ "\\Flagged", STORE_FLAG_FLAGGED },
		{ "\\Deleted", STORE_FLAG_DELETED },
		{ "\\Draft", STORE_FLAG_DRAFT },
	};
	const char **kws = p_new(pool, const char *, count + 1);
	unsigned int n = 0;

	*flags_r = 0;
	for (unsigned int i = 0; i < count; i++) {
		const char *atom;
		bool found = false;

		if (!imap_arg_get_atom(&args[i], &atom)) {
			*error_r = "Flags must be atoms";
			return -1;
		}
		if (atom[0] == '\\') {
			for (unsigned int j = 0; j < N_ELEMENTS(sys); j++) {
				if (strcasecmp(atom, sys[j].name) == 0) {
					*flags_r |= sys[j].bit;
					found = true;
				}
			}
			/* RFC 9051 2.3.2: \Recent cannot be set (rev1); other
			   \-flags are not ours to invent. */
			if (!found) {
				*error_r = "Unknown system flag";
				return -1;
			}
			continue;
		}
		if (strlen(atom) > STORE_KEYWORD_MAX ||
		    !imap_write_atom_valid(span_from_cstr(atom)) ||
		    strchr(atom, '*') != NULL) {
			*error_r = "Invalid keyword";
			return -1;
		}
		kws[n++] = atom;
	}
	kws[n] = NULL;
	*keywords_r = kws;
	return 0;
}

/* ---- answers ---- */

static void imap_cmd_tagged(struct imap_cmd *cmd, enum imap_status status,
			    const char *code, const char *text)
{
	i_assert(!cmd->answered);
	cmd->answered = true;
	imap_write_status(cmd->tagged, cmd->tag, status, code, text);
}

void imap_cmd_ok(struct imap_cmd *cmd, const char *code, const char *text)
{
	imap_cmd_tagged(cmd, IMAP_STATUS_OK, code, text);
}

void imap_cmd_no(struct imap_cmd *cmd, const char *code, const char *text)
{
	imap_cmd_tagged(cmd, IMAP_STATUS_NO, code, text);
}

void imap_cmd_bad(struct imap_cmd *cmd, const char *text)
{
	cmd->failed = true;
	imap_cmd_tagged(cmd, IMAP_STATUS_BAD, NULL, text);
}

void imap_cmd_store_error(struct imap_cmd *cmd, const char *error)
{
	const char *code;

	/* RFC 5530 response codes; the text is the store's, which names no
	   secret (it is what the operator's log shows too). */
	switch (store_last_error(cmd->session->store)) {
	case STORE_ERROR_NOT_FOUND:
		code = "NONEXISTENT";
		break;
	case STORE_ERROR_EXISTS:
		code = "ALREADYEXISTS";
		break;
	case STORE_ERROR_QUOTA:
		code = "OVERQUOTA";
		break;
	case STORE_ERROR_INVALID:
		code = "CANNOT";
		break;
	case STORE_ERROR_TEMP:
		code = "UNAVAILABLE";
		break;
	case STORE_ERROR_DAMAGED:
	case STORE_ERROR_NONE:
	default:
		code = "SERVERBUG";
		log_error(cmd->session->conn->id, "imap.store_error",
			  "error=%s", log_value(0, error));
		break;
	}
	imap_cmd_tagged(cmd, IMAP_STATUS_NO, code, error);
}

/* ---- sequence sets ---- */

int imap_cmd_uids(struct imap_cmd *cmd, const struct imap_arg *arg,
		  uint32_t **uids_r, unsigned int *count_r,
		  const char **error_r)
{
	struct imap_session *s = cmd->session;
	struct imap_seqset set;
	struct imap_seq_range *ranges;
	unsigned int nranges;
	const char *str;
	uint32_t *uids;
	unsigned int n = 0;

	if (!imap_arg_get_atom(arg, &str)) {
		*error_r = "Expected a sequence set";
		return -1;
	}
	if (imap_seqset_parse(cmd->pool, str, true, &set, error_r) < 0)
		return -1;
	if (set.searchres) {
		/* RFC 5182 2.1: "$" is the saved UIDs, whichever form the
		   command has; those expunged since are skipped. */
		uids = p_new(cmd->pool, uint32_t, s->searchres_count + 1);
		for (unsigned int i = 0; i < s->searchres_count; i++) {
			if (imap_session_seq(s, s->searchres[i]) != 0)
				uids[n++] = s->searchres[i];
		}
		*uids_r = uids;
		*count_r = n;
		return 0;
	}
	if (cmd->uid) {
		/* RFC 9051 6.4.9: "*" is the highest UID in use; in an
		   empty mailbox a set with "*" names nothing. */
		uint32_t last = imap_session_last_uid(s);

		if (imap_seqset_resolve(&set, last == 0 ? 1 : last, cmd->pool,
					&ranges, &nranges) < 0) {
			*error_r = "Invalid UID set";
			return -1;
		}
		if (last == 0) {
			*uids_r = p_new(cmd->pool, uint32_t, 1);
			*count_r = 0;
			return 0;
		}
		(void)imap_seqset_clamp(ranges, &nranges, last);
		/* Walk the known UIDs, not the range: "1:4294967295". */
		uids = p_new(cmd->pool, uint32_t, s->uid_count + 1);
		for (unsigned int i = 0; i < s->uid_count; i++) {
			if (imap_seqset_contains(ranges, nranges, s->uids[i]))
				uids[n++] = s->uids[i];
		}
	} else {
		struct imap_seqset_iter iter;
		uint32_t seq;

		if (s->uid_count == 0 ||
		    imap_seqset_resolve(&set, s->uid_count, cmd->pool, &ranges,
					&nranges) < 0) {
			*error_r = "Invalid message sequence number (the "
				   "mailbox is empty)";
			return -1;
		}
		if (imap_seqset_clamp(ranges, &nranges, s->uid_count)) {
			/* RFC 9051 9 seq-number: beyond the mailbox is an
			   error. */
			*error_r = "Invalid message sequence number";
			return -1;
		}
		uids = p_new(cmd->pool, uint32_t,
			     imap_seqset_count(ranges, nranges) + 1);
		imap_seqset_iter_init(&iter, ranges, nranges);
		while (imap_seqset_iter_next(&iter, &seq))
			uids[n++] = s->uids[seq - 1];
	}
	*uids_r = uids;
	*count_r = n;
	return 0;
}

/* ---- reporting changes ---- */

static int uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* Removes the expunged uids (ascending) from the map and reports them:
   EXPUNGE from the highest sequence number down, so each number is
   valid when sent (RFC 9051 7.5.1), or one VANISHED (RFC 7162 3.2.10). */
void imap_session_report_expunges(struct imap_session *s, struct buf *out,
				  const uint32_t *uids, unsigned int count)
{
	struct imap_seq_range *ranges = NULL;
	unsigned int nranges = 0, alloc = 0;

	if (count == 0)
		return;
	if ((s->enabled & IMAP_ENABLED_QRESYNC) != 0) {
		for (unsigned int i = 0; i < count; i++) {
			if (imap_session_seq(s, uids[i]) == 0)
				continue;
			if (nranges > 0 &&
			    ranges[nranges - 1].last + 1 == uids[i]) {
				ranges[nranges - 1].last = uids[i];
				continue;
			}
			if (nranges == alloc) {
				alloc = alloc == 0 ? 16 : alloc * 2;
				ranges = i_realloc(
					ranges,
					i_size_mul(alloc, sizeof(*ranges)));
			}
			ranges[nranges].first = ranges[nranges].last = uids[i];
			nranges++;
		}
		if (nranges > 0) {
			buf_append_str(out, "* VANISHED ");
			imap_seqset_write(out, ranges, nranges);
			buf_append_str(out, "\r\n");
		}
		i_free(ranges);
	}
	for (unsigned int i = count; i > 0; i--) {
		uint32_t seq = imap_session_seq(s, uids[i - 1]);

		if (seq == 0)
			continue;
		if ((s->enabled & IMAP_ENABLED_QRESYNC) == 0)
			buf_printf(out, "* %u EXPUNGE\r\n", seq);
		memmove(&s->uids[seq - 1], &s->uids[seq],
			(s->uid_count - seq) * sizeof(*s->uids));
		s->uid_count--;
	}
}

void imap_session_write_fetch_flags(struct imap_session *s, struct buf *out,
				    uint32_t seq,
				    const struct store_message *msg)
{
	buf_printf(out, "* %u FETCH (UID %u FLAGS ", seq, msg->uid);
	imap_write_flags(out, msg->flags, msg->keywords);
	if ((s->enabled & IMAP_ENABLED_CONDSTORE) != 0)
		buf_printf(out, " MODSEQ (%" PRIu64 ")", msg->modseq);
	buf_append_str(out, ")\r\n");
}

/* Another session renamed or deleted the selected mailbox (a
   STORE_CHANGE_MAILBOX among changes). Renamed: it stays selected under
   its new name, same UIDVALIDITY (RFC 9051 6.3.6). Deleted: RFC 2180 3.3
   lets the server end the session with an untagged BYE; like Dovecot we
   do (RFC 9051 7.1.5), since no response tells a client that its
   selected mailbox is gone (OK [CLOSED], RFC 9051 7.1, is only the
   boundary of a SELECT) and the client must not go on believing it is
   selected. Returns -1 after writing the BYE (s->bye is set). */
static int imap_session_sync_mailbox(struct imap_session *s, struct buf *out,
				     const struct store_change *changes,
				     unsigned int count, pool_t pool)
{
	struct store_mailbox box;
	const char *error;
	unsigned int i;
	int ret;

	for (i = 0; i < count; i++) {
		if (changes[i].kind == STORE_CHANGE_MAILBOX &&
		    (changes[i].modseq < s->own_lo ||
		     changes[i].modseq > s->own_hi))
			break;
	}
	if (i == count)
		return 0;
	ret = store_mailbox_get(s->store, s->mailbox_id, pool, &box, &error);
	if (ret > 0) {
		i_free(s->mailbox_name);
		s->mailbox_name = i_strdup(box.name);
		return 0;
	}
	if (ret < 0)
		return 0; /* a passing error: the next sync looks again */
	log_info(s->conn->id, "imap.selected_deleted", "mailbox=%" PRIu64,
		 s->mailbox_id);
	imap_session_unselect(s);
	buf_append_str(out, "* BYE Selected mailbox was deleted, have to "
			    "disconnect\r\n");
	s->bye = true;
	return -1;
}

int imap_session_sync(struct imap_session *s, struct buf *out,
		      bool allow_expunge)
{
	pool_t pool;
	struct store_change *changes;
	struct store_message *msgs;
	unsigned int count, nmsgs, nexp = 0, nflag = 0;
	uint32_t *expunged, *flagged;
	uint64_t top;
	const char *error;
	int ret = 0;

	if (!s->selected)
		return 0;
	s->changed = false;
	pool = pool_create("imap sync", 4096);
	if (store_changes_since(s->store, s->mailbox_id, s->known_modseq, pool,
				&changes, &count, &error) < 0) {
		log_error(s->conn->id, "imap.sync_failed", "error=%s",
			  log_value(0, error));
		pool_unref(&pool);
		return -1;
	}
	if (count == 0) {
		pool_unref(&pool);
		return 0;
	}
	top = changes[count - 1].modseq;
	if (imap_session_sync_mailbox(s, out, changes, count, pool) < 0) {
		pool_unref(&pool);
		return 0;
	}
	expunged = p_new(pool, uint32_t, count);
	flagged = p_new(pool, uint32_t, count);
	for (unsigned int i = 0; i < count; i++) {
		if (changes[i].modseq >= s->own_lo &&
		    changes[i].modseq <= s->own_hi)
			continue;
		if (changes[i].kind == STORE_CHANGE_EXPUNGED)
			expunged[nexp++] = changes[i].uid;
		else if (changes[i].kind == STORE_CHANGE_FLAGS)
			flagged[nflag++] = changes[i].uid;
	}
	if (nexp > 0 && allow_expunge) {
		qsort(expunged, nexp, sizeof(*expunged), uid_cmp);
		imap_session_report_expunges(s, out, expunged, nexp);
	}

	/* New messages: those above what the client knows, still there. */
	ret = store_fetch(s->store, s->mailbox_id, s->known_uidnext, 0, pool,
			  &msgs, &nmsgs, &error);
	if (ret == 0) {
		unsigned int before = s->uid_count;

		for (unsigned int i = 0; i < nmsgs; i++) {
			if (msgs[i].uid > imap_session_last_uid(s))
				imap_session_add_uid(s, msgs[i].uid);
			if (msgs[i].uid >= s->known_uidnext)
				s->known_uidnext = msgs[i].uid + 1;
		}
		if (s->uid_count != before) {
			buf_printf(out, "* %u EXISTS\r\n", s->uid_count);
			imap_notify_new_messages(s, out, &s->uids[before],
						 s->uid_count - before);
		}
	}

	/* Flag changes of messages the client knew (new ones are fetched
	   by the client anyway). */
	if (ret == 0 && nflag > 0) {
		qsort(flagged, nflag, sizeof(*flagged), uid_cmp);
		for (unsigned int i = 0; i < nflag && ret == 0; i++) {
			uint32_t seq;

			if (i > 0 && flagged[i] == flagged[i - 1])
				continue;
			seq = imap_session_seq(s, flagged[i]);
			if (seq == 0)
				continue;
			ret = store_fetch(s->store, s->mailbox_id, flagged[i],
					  flagged[i], pool, &msgs, &nmsgs,
					  &error);
			if (ret == 0 && nmsgs == 1)
				imap_session_write_fetch_flags(s, out, seq,
							       &msgs[0]);
		}
	}
	if (ret < 0) {
		log_error(s->conn->id, "imap.sync_failed", "error=%s",
			  log_value(0, error));
	} else if (nexp == 0 || allow_expunge) {
		/* Expunges held back (RFC 9051 7.5.1) are found again from
		   known_modseq next time; the flag FETCHes then repeat,
		   which is harmless. */
		s->known_modseq = top;
	} else {
		s->changed = true;
	}
	pool_unref(&pool);
	return ret;
}

/* ---- dispatcher ---- */

const struct imap_cmd_def *imap_session_find(const char *name)
{
	for (unsigned int t = 0; t < N_ELEMENTS(imap_cmd_tables); t++) {
		for (const struct imap_cmd_def *d = imap_cmd_tables[t];
		     d->name != NULL; d++) {
			if (strcasecmp(d->name, name) == 0)
				return d;
		}
	}
	return NULL;
}

struct imap_session_cmd {
	struct imap_cmd cmd;
	const struct imap_cmd_def *def;
	struct buf tagged;
	uint64_t modseq_before;
};

static bool imap_session_finish(struct imap_session *s,
				struct imap_session_cmd *p, struct buf *out)
{
	struct imap_cmd *cmd = &p->cmd;

	if (!cmd->answered && cmd->more != NULL) {
		s->pending = p;
		return false;
	}
	s->pending = NULL;
	if (!cmd->answered)
		imap_cmd_no(cmd, "SERVERBUG", "Command not completed");
	/* Whether selected or not: NOTIFY (imap-notify.c) skips the
	   session's own changes to other mailboxes too. */
	s->own_lo = p->modseq_before + 1;
	s->own_hi = store_highest_modseq(s->store);
	/* RFC 9051 7: status updates may follow any command; RFC 9051
	   7.5.1: no EXPUNGE during FETCH, STORE, SEARCH (their UID forms
	   excepted). */
	imap_notify_sync_point(
		s, IMAP_NOTIFY_AT_COMMAND,
		cmd->uid || (p->def->flags & IMAP_CMD_NO_EXPUNGE) == 0, out);
	buf_append(out, p->tagged.data, p->tagged.used);
	buf_free(&p->tagged);
	i_free(p);
	return true;
}

bool imap_session_execute(struct imap_session *s,
			  const struct imap_cmd_def *def, const char *tag,
			  bool uid, const struct imap_arg *args,
			  unsigned int arg_count, struct buf *out,
			  struct pool *pool)
{
	struct imap_session_cmd *p = i_new(struct imap_session_cmd, 1);
	struct imap_cmd *cmd = &p->cmd;

	i_assert(s->pending == NULL);
	p->def = def;
	cmd->session = s;
	cmd->tag = tag;
	cmd->name = def->name;
	cmd->uid = uid;
	cmd->args = args;
	cmd->arg_count = arg_count;
	cmd->out = out;
	cmd->tagged = &p->tagged;
	cmd->pool = pool;
	/* The command's own changes are those after this (own_lo). */
	p->modseq_before = store_highest_modseq(s->store);
	if ((def->flags & IMAP_CMD_SELECTED) != 0 && !s->selected) {
		imap_cmd_bad(cmd, "No mailbox selected");
	} else if (uid && (def->flags & IMAP_CMD_UID) == 0) {
		imap_cmd_bad(cmd, "This command has no UID form");
	} else if ((def->flags & IMAP_CMD_WRITE) != 0 && s->readonly) {
		imap_cmd_no(cmd, "READ-ONLY",
			    "The mailbox was opened with EXAMINE");
	} else {
		def->func(cmd);
	}
	return imap_session_finish(s, p, out);
}

bool imap_session_continue(struct imap_session *s, struct buf *out)
{
	struct imap_session_cmd *p = s->pending;

	i_assert(p != NULL && p->cmd.more != NULL);
	p->cmd.out = out;
	p->cmd.more(&p->cmd);
	return imap_session_finish(s, p, out);
}

static void imap_session_abort(struct imap_session *s)
{
	if (s->pending == NULL)
		return;
	buf_free(&s->pending->tagged);
	i_free(s->pending);
}

/* ---- session commands ---- */

const char *imap_special_use_attr(enum store_special_use use)
{
	switch (use) {
	case STORE_SPECIAL_DRAFTS:
		return "\\Drafts";
	case STORE_SPECIAL_SENT:
		return "\\Sent";
	case STORE_SPECIAL_JUNK:
		return "\\Junk";
	case STORE_SPECIAL_TRASH:
		return "\\Trash";
	case STORE_SPECIAL_ARCHIVE:
		return "\\Archive";
	case STORE_SPECIAL_ALL:
		return "\\All";
	case STORE_SPECIAL_FLAGGED:
		return "\\Flagged";
	case STORE_SPECIAL_INBOX:
	case STORE_SPECIAL_NONE:
		break;
	}
	return NULL;
}

/* The mailbox name argument, decoded from modified UTF-7 unless the
   client enabled UTF-8 (RFC 6855 3, RFC 9051 5.1). NULL with *error_r
   when it is not a valid name. */
const char *imap_mailbox_name_arg(struct pool *pool, const struct imap_arg *arg,
				  bool utf8, const char **error_r)
{
	const char *name, *decoded;

	if (!imap_arg_get_astring(arg, &name)) {
		*error_r = "Expected a mailbox name";
		return NULL;
	}
	if (utf8)
		return name;
	decoded = imap_utf7_to_utf8(pool, name);
	if (decoded == NULL) {
		*error_r = "Invalid modified UTF-7 in mailbox name";
		return NULL;
	}
	return decoded;
}

const char *imap_cmd_mailbox_name(struct imap_cmd *cmd,
				  const struct imap_arg *arg,
				  const char **error_r)
{
	return imap_mailbox_name_arg(
		cmd->pool, arg,
		(cmd->session->write_flags & IMAP_WRITE_FLAG_UTF8) != 0,
		error_r);
}

/* SELECT/EXAMINE parameters (RFC 7162 3.1.8 CONDSTORE, 3.2.5 QRESYNC). */
struct imap_select_params {
	bool condstore;
	bool qresync;
	uint32_t q_uidvalidity;
	uint64_t q_modseq;
	const char *q_known_uids;
};

static int imap_select_parse(struct imap_cmd *cmd, struct imap_select_params *p,
			     const char **error_r)
{
	const struct imap_arg *list, *q;
	unsigned int n, qn;

	memset(p, 0, sizeof(*p));
	if (cmd->arg_count == 1)
		return 0;
	if (cmd->arg_count != 2 ||
	    !imap_arg_get_list(&cmd->args[1], &list, &n)) {
		*error_r = "Expected a mailbox and optional parameters";
		return -1;
	}
	for (unsigned int i = 0; i < n; i++) {
		if (imap_arg_atom_equals(&list[i], "CONDSTORE")) {
			p->condstore = true;
		} else if (imap_arg_atom_equals(&list[i], "QRESYNC") &&
			   i + 1 < n &&
			   imap_arg_get_list(&list[i + 1], &q, &qn)) {
			const char *a, *b;
			uint64_t v;

			i++;
			if ((cmd->session->enabled & IMAP_ENABLED_QRESYNC) ==
			    0) {
				/* RFC 7162 3.2.5: BAD unless enabled. */
				*error_r = "QRESYNC is not enabled";
				return -1;
			}
			if (qn < 2 || !imap_arg_get_atom(&q[0], &a) ||
			    !imap_arg_get_atom(&q[1], &b) ||
			    span_to_u64(span_from_cstr(a), UINT32_MAX, &v) <
				    0 ||
			    v == 0 ||
			    span_to_u64(span_from_cstr(b), INT64_MAX,
					&p->q_modseq) < 0) {
				*error_r = "Invalid QRESYNC parameters";
				return -1;
			}
			if (qn >= 3 &&
			    !imap_arg_get_atom(&q[2], &p->q_known_uids)) {
				*error_r = "Invalid QRESYNC known UIDs";
				return -1;
			}
			p->q_uidvalidity = (uint32_t)v;
			p->qresync = true;
		} else {
			*error_r = "Unknown SELECT parameter";
			return -1;
		}
	}
	return 0;
}

/* QRESYNC (RFC 7162 3.2.5.2): what changed since the client's modseq:
   VANISHED (EARLIER) for expunged UIDs, FETCH for changed ones. */
static int imap_select_qresync(struct imap_cmd *cmd,
			       const struct imap_select_params *p)
{
	struct imap_session *s = cmd->session;
	struct store_change *changes;
	struct store_message *msgs;
	struct imap_seq_range *known = NULL, *vanished;
	unsigned int count, nknown = 0, nv = 0, nmsgs;
	const char *error;

	if (p->q_uidvalidity != s->uidvalidity)
		return 0;
	if (p->q_known_uids != NULL) {
		struct imap_seqset set;

		if (imap_seqset_parse(cmd->pool, p->q_known_uids, false, &set,
				      &error) < 0 ||
		    imap_seqset_resolve(&set, UINT32_MAX, cmd->pool, &known,
					&nknown) < 0)
			known = NULL;
	}
	if (store_changes_since(s->store, s->mailbox_id, p->q_modseq, cmd->pool,
				&changes, &count, &error) < 0)
		return -1;
	vanished = p_new(cmd->pool, struct imap_seq_range, count + 1);
	for (unsigned int i = 0; i < count; i++) {
		uint32_t uid = changes[i].uid;

		if (changes[i].kind != STORE_CHANGE_EXPUNGED)
			continue;
		if (imap_session_seq(s, uid) != 0)
			continue; /* expunged and the UID came back? no */
		if (known != NULL && !imap_seqset_contains(known, nknown, uid))
			continue;
		vanished[nv].first = vanished[nv].last = uid;
		nv++;
	}
	if (nv > 0) {
		struct imap_seq_range *r;
		unsigned int nr;
		struct imap_seqset set = { .ranges = vanished, .count = nv };

		if (imap_seqset_resolve(&set, UINT32_MAX, cmd->pool, &r, &nr) ==
		    0) {
			buf_append_str(cmd->out, "* VANISHED (EARLIER) ");
			imap_seqset_write(cmd->out, r, nr);
			buf_append_str(cmd->out, "\r\n");
		}
	}
	if (store_fetch(s->store, s->mailbox_id, 1, 0, cmd->pool, &msgs, &nmsgs,
			&error) < 0)
		return -1;
	for (unsigned int i = 0; i < nmsgs; i++) {
		if (msgs[i].modseq <= p->q_modseq)
			continue;
		uint32_t seq = imap_session_seq(s, msgs[i].uid);

		if (seq != 0)
			imap_session_write_fetch_flags(s, cmd->out, seq,
						       &msgs[i]);
	}
	return 0;
}

static void imap_cmd_select(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->session;
	struct imap_select_params params;
	struct store_mailbox box;
	const char **keywords, *name, *error;
	uint32_t *uids;
	unsigned int count;
	bool examine = strcmp(cmd->name, "EXAMINE") == 0;
	struct buf flags = BUF_INIT;
	int ret;

	/* RFC 9051 6.3.2: a SELECT first deselects, even if it fails. */
	if (s->selected) {
		imap_session_unselect(s);
		/* RFC 7162 3.2.11: CLOSED before the new mailbox's data. */
		if ((s->enabled & IMAP_ENABLED_QRESYNC) != 0)
			buf_append_str(cmd->out, "* OK [CLOSED] Previous "
						 "mailbox closed\r\n");
	}
	if (cmd->arg_count < 1) {
		imap_cmd_bad(cmd, "Expected a mailbox name");
		return;
	}
	if ((name = imap_cmd_mailbox_name(cmd, &cmd->args[0], &error)) ==
		    NULL ||
	    imap_select_parse(cmd, &params, &error) < 0) {
		imap_cmd_bad(cmd, error);
		return;
	}
	ret = store_mailbox_lookup(s->store, name, cmd->pool, &box, &error);
	if (ret <= 0) {
		if (ret < 0)
			imap_cmd_store_error(cmd, error);
		else
			imap_cmd_no(cmd, "NONEXISTENT", "No such mailbox");
		return;
	}
	if (store_uids(s->store, box.id, &uids, &count, &error) < 0 ||
	    store_mailbox_keywords(s->store, box.id, cmd->pool, &keywords,
				   &error) < 0) {
		imap_cmd_store_error(cmd, error);
		return;
	}
	/* RFC 7162 3.1.8: SELECT (CONDSTORE) enables CONDSTORE. */
	if (params.condstore || params.qresync)
		s->enabled |= IMAP_ENABLED_CONDSTORE;
	s->selected = true;
	s->readonly = examine;
	s->mailbox_id = box.id;
	s->mailbox_name = i_strdup(box.name);
	s->uidvalidity = box.uidvalidity;
	s->uids = uids;
	s->uid_count = s->uid_alloc = count;
	s->known_uidnext = box.uidnext;
	s->known_modseq = box.highestmodseq;
	if (uids != NULL && count > 0 && uids[count - 1] >= s->known_uidnext)
		s->known_uidnext = uids[count - 1] + 1;

	/* RFC 9051 6.3.2 (and RFC 3501 6.3.1 for rev1 clients). */
	imap_write_flags(&flags,
			 STORE_FLAG_SEEN | STORE_FLAG_ANSWERED |
				 STORE_FLAG_FLAGGED | STORE_FLAG_DELETED |
				 STORE_FLAG_DRAFT,
			 keywords);
	buf_printf(cmd->out, "* %u EXISTS\r\n", count);
	if ((s->enabled & IMAP_ENABLED_REV2) == 0)
		buf_append_str(cmd->out, "* 0 RECENT\r\n");
	buf_printf(cmd->out, "* OK [UIDVALIDITY %u] UIDs valid\r\n",
		   box.uidvalidity);
	buf_printf(cmd->out, "* OK [UIDNEXT %u] Predicted next UID\r\n",
		   s->known_uidnext);
	buf_printf(cmd->out, "* FLAGS %s\r\n", buf_cstr(&flags));
	/* Labels: any keyword may be created (\*), RFC 9051 7.1. */
	buf_truncate(&flags, flags.used - 1);
	buf_printf(cmd->out,
		   "* OK [PERMANENTFLAGS %s%s\\*)] Flags permitted\r\n",
		   buf_cstr(&flags), flags.used > 1 ? " " : "");
	buf_free(&flags);
	buf_printf(cmd->out, "* OK [HIGHESTMODSEQ %" PRIu64 "] Highest\r\n",
		   box.highestmodseq);
	/* RFC 8474 4.1: MAILBOXID. */
	buf_printf(cmd->out, "* OK [MAILBOXID (F%" PRIu64 ")] Ok\r\n", box.id);
	if ((s->enabled & IMAP_ENABLED_REV2) != 0) {
		/* RFC 9051 6.3.2: a LIST response with the mailbox name. */
		const char *attr = imap_special_use_attr(box.special_use);

		buf_printf(cmd->out, "* LIST (%s) \"/\" ",
			   attr != NULL ? attr : "");
		(void)imap_write_mailbox(cmd->out, cmd->pool, box.name,
					 s->write_flags);
		buf_append_str(cmd->out, "\r\n");
	}
	if (params.qresync && imap_select_qresync(cmd, &params) < 0) {
		imap_cmd_store_error(cmd, "QRESYNC failed");
		return;
	}
	imap_cmd_ok(cmd, examine ? "READ-ONLY" : "READ-WRITE",
		    examine ? "EXAMINE completed" : "SELECT completed");
}

static void imap_cmd_close(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->session;
	uint32_t *expunged;
	unsigned int count = 0;
	const char *error;

	if (cmd->arg_count != 0) {
		imap_cmd_bad(cmd, "CLOSE takes no arguments");
		return;
	}
	/* RFC 9051 6.4.1: CLOSE expunges \Deleted silently, unless the
	   mailbox was EXAMINEd. UNSELECT (RFC 3691) does not. */
	if (strcmp(cmd->name, "CLOSE") == 0 && !s->readonly &&
	    store_expunge(s->store, s->mailbox_id, NULL, 0, cmd->pool,
			  &expunged, &count, &error) < 0) {
		imap_cmd_store_error(cmd, error);
		return;
	}
	if (strcmp(cmd->name, "CLOSE") == 0 && !s->readonly && count > 0)
		front_vault_usage_changed(s->account->account_id);
	imap_session_unselect(s);
	imap_cmd_ok(cmd, NULL, "Mailbox closed");
}

static void imap_cmd_noop(struct imap_cmd *cmd)
{
	/* NOOP and CHECK (RFC 9051 6.1.2; CHECK is rev1 only, a NOOP). The
	   changes are reported by the dispatcher. */
	if (cmd->arg_count != 0) {
		imap_cmd_bad(cmd, "No arguments expected");
		return;
	}
	imap_cmd_ok(cmd, NULL, "Completed");
}

static void imap_cmd_enable(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->session;
	struct buf enabled = BUF_INIT;

	if (cmd->arg_count == 0) {
		imap_cmd_bad(cmd, "ENABLE needs capability names");
		return;
	}
	/* RFC 5161 3.1: the capabilities that were enabled now. */
	for (unsigned int i = 0; i < cmd->arg_count; i++) {
		unsigned int bit = 0;
		const char *atom;

		if (!imap_arg_get_atom(&cmd->args[i], &atom)) {
			buf_free(&enabled);
			imap_cmd_bad(cmd, "Expected capability names");
			return;
		}
		if (strcasecmp(atom, "IMAP4rev2") == 0)
			bit = IMAP_ENABLED_REV2;
		else if (strcasecmp(atom, "UTF8=ACCEPT") == 0)
			bit = IMAP_ENABLED_UTF8;
		else if (strcasecmp(atom, "CONDSTORE") == 0)
			bit = IMAP_ENABLED_CONDSTORE;
		else if (strcasecmp(atom, "QRESYNC") == 0)
			/* RFC 7162 3.2.3: QRESYNC implies CONDSTORE. */
			bit = IMAP_ENABLED_QRESYNC | IMAP_ENABLED_CONDSTORE;
		if (bit == 0 || (s->enabled & bit) == bit)
			continue;
		s->enabled |= bit;
		buf_printf(&enabled, " %s",
			   bit == IMAP_ENABLED_REV2        ? "IMAP4rev2"
			   : bit == IMAP_ENABLED_UTF8      ? "UTF8=ACCEPT"
			   : bit == IMAP_ENABLED_CONDSTORE ? "CONDSTORE"
							   : "QRESYNC");
	}
	if ((s->enabled & (IMAP_ENABLED_REV2 | IMAP_ENABLED_UTF8)) != 0)
		s->write_flags |= IMAP_WRITE_FLAG_UTF8;
	buf_printf(cmd->out, "* ENABLED%s\r\n", buf_cstr(&enabled));
	buf_free(&enabled);
	imap_cmd_ok(cmd, NULL, "ENABLE completed");
}

static void imap_cmd_namespace(struct imap_cmd *cmd)
{
	/* RFC 2342 5, RFC 9051 6.3.10: one personal namespace, "/". */
	buf_append_str(cmd->out, "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
	imap_cmd_ok(cmd, NULL, "NAMESPACE completed");
}

static void imap_cmd_id(struct imap_cmd *cmd)
{
	/* RFC 2971 3.1: the client's list is accepted (and not logged
	   beyond its size); the answer names the software only. */
	buf_append_str(cmd->out, "* ID (\"name\" \"Marmot\")\r\n");
	imap_cmd_ok(cmd, NULL, "ID completed");
}

const struct imap_cmd_def imap_cmds_session[] = {
	{ "SELECT", imap_cmd_select, 0 },
	{ "EXAMINE", imap_cmd_select, 0 },
	{ "CLOSE", imap_cmd_close, IMAP_CMD_SELECTED },
	{ "UNSELECT", imap_cmd_close, IMAP_CMD_SELECTED },
	{ "NOOP", imap_cmd_noop, 0 },
	{ "CHECK", imap_cmd_noop, IMAP_CMD_SELECTED },
	{ "ENABLE", imap_cmd_enable, 0 },
	{ "NAMESPACE", imap_cmd_namespace, 0 },
	{ "ID", imap_cmd_id, 0 },
	{ NULL, NULL, 0 },
};
