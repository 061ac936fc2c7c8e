/* imap-cmd-sort.c - SORT and THREAD (RFC 5256 3, with RFC 5957
   DISPLAYFROM/DISPLAYTO), also as UID SORT / UID THREAD (RFC 5256 3: the
   numbers are UIDs then).

   The keys come from the store in one query (store_sort_keys: Date:,
   base subject, first addresses, display names, Message-ID, references,
   kept at append time); emails appended before the store kept them
   (schema 1) are indexed again from their blobs once and the keys saved
   (store_sort_keys_fill, bounded per command). Ordering and threading are
   lib-imap's (imap-sort.h, imap-thread.h).

   The search program: until the full SEARCH evaluator is wired in, ALL, a
   sequence set and UID <set> (ANDed) are understood; other keys get BAD. */

#include "lib.h"
#include "buf.h"
#include "log.h"
#include "pool.h"
#include "blob.h"
#include "store.h"
#include "message-index.h"
#include "imap-sort.h"
#include "imap-thread.h"
#include "front-private.h"
#include "imap-session.h"

#include <string.h>
#include <strings.h>

/* RFC 5256 3: the server MUST support US-ASCII and UTF-8 (ours: the
   strings compared are UTF-8 already). */
static bool sort_charset_ok(const struct imap_arg *arg)
{
	const char *name;

	if (!imap_arg_get_astring(arg, &name))
		return false;
	return strcasecmp(name, "UTF-8") == 0 ||
	       strcasecmp(name, "US-ASCII") == 0;
}

/* Keeps the UIDs of a that are in b (both ascending). */
static unsigned int uids_intersect(uint32_t *a, unsigned int an,
				   const uint32_t *b, unsigned int bn)
{
	unsigned int i = 0, j = 0, n = 0;

	while (i < an && j < bn) {
		if (a[i] < b[j])
			i++;
		else if (a[i] > b[j])
			j++;
		else {
			a[n++] = a[i];
			i++;
			j++;
		}
	}
	return n;
}

/* The messages the search program selects, as ascending UIDs. */
static int sort_search(struct imap_cmd *cmd, const struct imap_arg *args,
		       unsigned int count, uint32_t **uids_r,
		       unsigned int *count_r)
{
	struct imap_session *s = cmd->session;
	uint32_t *uids, *set;
	unsigned int n = s->uid_count, set_count, i = 0;
	const char *error = NULL, *str;
	bool uid_prefix = cmd->uid;
	int ret;

	if (count == 0) {
		imap_cmd_bad(cmd, "Missing search criteria");
		return -1;
	}
	uids = p_new(cmd->pool, uint32_t, n + 1);
	memcpy(uids, s->uids, n * sizeof(*uids));
	while (i < count) {
		if (imap_arg_atom_equals(&args[i], "ALL")) {
			i++;
			continue;
		}
		if (imap_arg_atom_equals(&args[i], "UID") && i + 1 < count) {
			cmd->uid = true;
			ret = imap_cmd_uids(cmd, &args[i + 1], &set, &set_count,
					    &error);
			i += 2;
		} else if (imap_arg_get_atom(&args[i], &str) &&
			   (str[0] == '*' || str[0] == '$' ||
			    (str[0] >= '0' && str[0] <= '9'))) {
			/* RFC 9051 6.4.4: a bare set is sequence numbers,
			   with or without the UID prefix. */
			cmd->uid = false;
			ret = imap_cmd_uids(cmd, &args[i], &set, &set_count,
					    &error);
			i++;
		} else {
			cmd->uid = uid_prefix;
			imap_cmd_bad(cmd, "Unsupported search criterion");
			return -1;
		}
		cmd->uid = uid_prefix;
		if (ret < 0) {
			imap_cmd_bad(cmd, error);
			return -1;
		}
		n = uids_intersect(uids, n, set, set_count);
	}
	*uids_r = uids;
	*count_r = n;
	return 0;
}

/* Emails from before the store kept sort keys are indexed again from
   their blobs, this many per store transaction (each index may hold
   megabytes of text); at most SORT_REFILL_MAX
   per command, so one command on a large migrated mailbox does not hold
   the loop for long (the rest sort with empty keys, by INTERNALDATE, until
   later commands fill them). */
#define SORT_REFILL_BATCH 8
#define SORT_REFILL_MAX 2000

/* Copies what SORT and THREAD read of idx into k (cmd memory). */
static void sort_keys_from_index(struct imap_cmd *cmd,
				 const struct message_index *idx,
				 struct store_sort_keys *k)
{
	const char **refs;
	unsigned int n = 0;

	k->date = idx->date;
	k->base_subject = p_strdup(cmd->pool, idx->base_subject);
	k->subject_is_reply = idx->subject_is_reply;
	k->from = p_strdup(cmd->pool, idx->sort_from);
	k->to = p_strdup(cmd->pool, idx->sort_to);
	k->cc = p_strdup(cmd->pool, idx->sort_cc);
	k->display_from = p_strdup(cmd->pool, idx->display_from);
	k->display_to = p_strdup(cmd->pool, idx->display_to);
	k->message_id = p_strdup(
		cmd->pool, idx->message_id == NULL ? "" : idx->message_id);
	while (idx->references[n] != NULL)
		n++;
	refs = p_new(cmd->pool, const char *, n + 1);
	for (unsigned int i = 0; i < n; i++)
		refs[i] = p_strdup(cmd->pool, idx->references[i]);
	k->references = refs;
	k->present = true;
}

/* Indexes one message again from its blob into pool. Returns false
   (logged) when it cannot be read. */
static bool sort_index_message(struct imap_cmd *cmd, uint32_t uid,
			       struct pool *pool, struct message_index *idx_r)
{
	struct imap_session *s = cmd->session;
	struct store_message *msgs;
	struct buf raw = BUF_INIT;
	unsigned int n = 0;
	const char *error = "gone";

	if (store_fetch(s->store, s->mailbox_id, uid, uid, pool, &msgs, &n,
			&error) < 0 ||
	    n != 1) {
		log_error(s->conn->id, "imap.sort.keys", "uid=%u error=%s", uid,
			  log_value(0, error));
		return false;
	}
	if (blob_get(s->blobs, msgs[0].blob_id, &raw, &error) < 0) {
		log_error(s->conn->id, "imap.sort.blob", "uid=%u error=%s", uid,
			  log_value(0, error));
		buf_free(&raw);
		return false;
	}
	message_index_build(pool, raw.data, raw.used, idx_r);
	buf_free(&raw);
	return true;
}

/* Fills the keys that are not present (see SORT_REFILL_MAX) and saves
   them. A failure leaves those keys empty: the messages still sort. */
static void sort_keys_refill(struct imap_cmd *cmd, struct store_sort_keys *keys,
			     unsigned int count)
{
	struct imap_session *s = cmd->session;
	struct message_index idx[SORT_REFILL_BATCH];
	const struct message_index *idxp[SORT_REFILL_BATCH];
	uint32_t uids[SORT_REFILL_BATCH];
	unsigned int i = 0, done = 0, n;
	const char *error;
	pool_t pool;

	while (i < count && done < SORT_REFILL_MAX) {
		pool = pool_create("sort refill", 64 * 1024);
		for (n = 0; i < count && n < SORT_REFILL_BATCH; i++) {
			if (keys[i].present)
				continue;
			done++;
			if (!sort_index_message(cmd, keys[i].uid, pool,
						&idx[n]))
				continue;
			sort_keys_from_index(cmd, &idx[n], &keys[i]);
			idxp[n] = &idx[n];
			uids[n++] = keys[i].uid;
		}
		if (store_sort_keys_fill(s->store, s->mailbox_id, uids, idxp, n,
					 &error) < 0)
			log_error(s->conn->id, "imap.sort.fill", "error=%s",
				  log_value(0, error));
		pool_unref(&pool);
	}
	if (done == SORT_REFILL_MAX && i < count)
		log_info(s->conn->id, "imap.sort.refill",
			 "limit=%u left for later commands", SORT_REFILL_MAX);
}

/* The rest of SORT and THREAD after their first argument: the charset
   and the search program (RFC 5256 4). Gets the keys of the messages it
   selects, with their sequence numbers (messages the client does not know
   are left out). Returns 0, or -1 when the command was answered. */
static int sort_keys_get(struct imap_cmd *cmd, struct store_sort_keys **keys_r,
			 uint32_t **seqs_r, unsigned int *count_r)
{
	struct imap_session *s = cmd->session;
	struct store_sort_keys *keys;
	uint32_t *uids, *seqs;
	unsigned int n, kn, i, out = 0;
	const char *error;

	if (!sort_charset_ok(&cmd->args[1])) {
		/* RFC 5256 3: NO, not BAD, with the charsets we have
		   (RFC 9051 7.1 BADCHARSET). */
		imap_cmd_no(cmd, "BADCHARSET (UTF-8 US-ASCII)",
			    "Unsupported charset");
		return -1;
	}
	if (sort_search(cmd, cmd->args + 2, cmd->arg_count - 2, &uids, &n) < 0)
		return -1;
	keys = NULL;
	kn = 0;
	if (n > 0 && store_sort_keys(s->store, s->mailbox_id, uids, n,
				     cmd->pool, &keys, &kn, &error) < 0) {
		imap_cmd_store_error(cmd, error);
		return -1;
	}
	seqs = p_new(cmd->pool, uint32_t, kn + 1);
	for (i = 0; i < kn; i++) {
		uint32_t seq = imap_session_seq(s, keys[i].uid);

		if (seq == 0)
			continue;
		keys[out] = keys[i];
		seqs[out++] = seq;
	}
	sort_keys_refill(cmd, keys, out);
	*keys_r = keys;
	*seqs_r = seqs;
	*count_r = out;
	return 0;
}

/* SORT (sort-criteria) charset search-key... (RFC 5256 4). */
static void imap_cmd_sort(struct imap_cmd *cmd)
{
	struct imap_sort_criterion crit[IMAP_SORT_CRITERIA_MAX];
	struct store_sort_keys *keys;
	struct imap_sort_msg *msgs;
	uint32_t *seqs;
	unsigned int n;
	const char *error = NULL;
	int crit_count;

	if (cmd->arg_count < 3) {
		imap_cmd_bad(cmd, "Usage: SORT (criteria) charset search");
		return;
	}
	if ((crit_count = imap_sort_parse(&cmd->args[0], crit, &error)) < 0) {
		imap_cmd_bad(cmd, error);
		return;
	}
	if (sort_keys_get(cmd, &keys, &seqs, &n) < 0)
		return;
	msgs = p_new(cmd->pool, struct imap_sort_msg, n + 1);
	for (unsigned int i = 0; i < n; i++) {
		const struct store_sort_keys *k = &keys[i];

		msgs[i] = (struct imap_sort_msg){
			.seq = seqs[i],
			.uid = k->uid,
			.date = imap_sort_sent_date(k->date, k->internaldate),
			.arrival = k->internaldate,
			.size = k->size,
			.subject = k->base_subject,
			.from = k->from,
			.to = k->to,
			.cc = k->cc,
			.display_from = k->display_from,
			.display_to = k->display_to,
		};
	}
	imap_sort(msgs, n, crit, (unsigned int)crit_count);
	imap_sort_write(cmd->out, msgs, n, cmd->uid);
	imap_cmd_ok(cmd, NULL,
		    cmd->uid ? "UID SORT completed" : "SORT completed");
}

/* THREAD algorithm charset search-key... (RFC 5256 4). */
static void imap_cmd_thread(struct imap_cmd *cmd)
{
	enum imap_thread_algorithm algo;
	struct store_sort_keys *keys;
	struct imap_thread_msg *msgs;
	struct imap_thread thread;
	uint32_t *seqs;
	unsigned int n;
	const char *name;

	if (cmd->arg_count < 3) {
		imap_cmd_bad(cmd, "Usage: THREAD algorithm charset search");
		return;
	}
	if (!imap_arg_get_atom(&cmd->args[0], &name) ||
	    !imap_thread_algorithm_parse(name, &algo)) {
		imap_cmd_bad(cmd, "Unknown threading algorithm");
		return;
	}
	if (sort_keys_get(cmd, &keys, &seqs, &n) < 0)
		return;
	msgs = p_new(cmd->pool, struct imap_thread_msg, n + 1);
	for (unsigned int i = 0; i < n; i++) {
		const struct store_sort_keys *k = &keys[i];

		msgs[i] = (struct imap_thread_msg){
			.seq = seqs[i],
			.uid = k->uid,
			.date = imap_sort_sent_date(k->date, k->internaldate),
			.base_subject = k->base_subject,
			.subject_is_reply = k->subject_is_reply,
			.message_id = k->message_id,
			.references = k->references,
		};
	}
	imap_thread_build(cmd->pool, msgs, n, algo, &thread);
	imap_thread_write(cmd->out, &thread, msgs, cmd->uid);
	imap_cmd_ok(cmd, NULL,
		    cmd->uid ? "UID THREAD completed" : "THREAD completed");
}

const struct imap_cmd_def imap_cmds_sort[] = {
	{ "SORT", imap_cmd_sort,
	  IMAP_CMD_SELECTED | IMAP_CMD_UID | IMAP_CMD_NO_EXPUNGE },
	{ "THREAD", imap_cmd_thread,
	  IMAP_CMD_SELECTED | IMAP_CMD_UID | IMAP_CMD_NO_EXPUNGE },
	{ NULL, NULL, 0 },
};
