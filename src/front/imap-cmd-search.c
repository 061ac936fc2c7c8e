/* imap-cmd-search.c - SEARCH and UID SEARCH (RFC 9051 6.4.4, 6.4.9;
   RFC 4731 ESEARCH; RFC 5182 SEARCHRES; RFC 7162 3.1.5 MODSEQ; RFC 8474
   EMAILID/THREADID; RFC 8514 SAVEDATE; RFC 5032 WITHIN).

   The program is parsed by lib-imap/imap-search.c; this file evaluates it
   over the client's view of the selected mailbox (session->uids: messages
   it has not been told about are not searched, RFC 9051 7.5.1) in whole
   sets, not message by message, so that a search over 10,000 messages is
   a handful of queries:
   - the rows (flags, keywords, size, dates, modseq, ids) come from one
     store_fetch_meta() over the UID range, only when a key needs them;
   - each BODY/TEXT/FROM/TO/CC/BCC/SUBJECT key is one query of the
     trigram index (store_search, STORE_SEARCH_SUBSTRING: case-insensitive
     substring) whose UIDs are intersected with the set;
   - HEADER and SENT* read the message's header from its blob, only for
     the messages still in question when the key is reached: an AND
     evaluates its cheap children first and passes on only the messages
     that still match, an OR gives its second child only what the first
     did not match.
   Each node computes a match byte per message of the view, for the
   messages in its "care" set only (the others are 0). Messages expunged
   by another session but still in the view match nothing. */

#include "lib.h"
#include "blob.h"
#include "buf.h"
#include "imap-search.h"
#include "imap-seqset.h"
#include "imap-session.h"
#include "imap-write.h"
#include "log.h"
#include "message-index.h"
#include "pool.h"
#include "rfc2047.h"
#include "store.h"

#include <strings.h>
#include <time.h>

/* The header block read for HEADER and SENT*: enough for any sane
   header; a larger one is searched in its first part only. */
#define SEARCH_HEADER_MAX (1024 * 1024)
#define SEARCH_SENT_UNREAD INT64_MIN
#define SEARCH_SENT_NONE (INT64_MIN + 1)

enum key_cost {
	COST_ROWS, /* from the rows already loaded */
	COST_INDEX, /* one full-text query */
	COST_BLOBS, /* reads messages */
};

struct search_ctx {
	struct imap_cmd *cmd;
	struct imap_session *session;
	pool_t pool;
	unsigned int n;
	const uint32_t *uids;
	/* Per message of the view: its row, NULL when it is gone. */
	const struct store_message **rows;
	/* Per message: the Date: header's time (SENT*), read once. */
	int64_t *sent;
	int64_t now;
	struct buf blob;
	const char *error; /* a store failure: tagged NO */
};

static enum key_cost key_cost(const struct imap_search_key *key)
{
	const struct imap_search_key *child;
	enum key_cost cost = COST_ROWS, c;

	if (key->type == IMAP_SEARCH_TEXT)
		return COST_INDEX;
	if (key->type == IMAP_SEARCH_HEADER ||
	    (key->type == IMAP_SEARCH_DATE &&
	     key->date_field == IMAP_SEARCH_DATE_SENT))
		return COST_BLOBS;
	for (child = key->child; child != NULL; child = child->next) {
		if ((c = key_cost(child)) > cost)
			cost = c;
	}
	return cost;
}

/* True if every message key matches is known to exist (it came from the
   index), so that the rows need not be read just to drop the gone. */
static bool key_vouched(const struct imap_search_key *key)
{
	const struct imap_search_key *child;

	switch (key->type) {
	case IMAP_SEARCH_TEXT:
		return key->str[0] != '\0';
	case IMAP_SEARCH_AND:
		for (child = key->child; child != NULL; child = child->next) {
			if (key_vouched(child))
				return true;
		}
		return false;
	case IMAP_SEARCH_OR:
		return key_vouched(key->child) && key_vouched(key->child->next);
	default:
		return false;
	}
}

static int load_rows(struct search_ctx *ctx)
{
	struct store_message *msgs;
	unsigned int count, i, j;
	const char *error;

	ctx->rows = p_new(ctx->pool, const struct store_message *, ctx->n);
	if (ctx->n == 0)
		return 0;
	if (store_fetch_meta(ctx->session->store, ctx->session->mailbox_id,
			     ctx->uids[0], ctx->uids[ctx->n - 1], ctx->pool,
			     &msgs, &count, &error) < 0) {
		ctx->error = error;
		return -1;
	}
	/* Both ascending by UID: merge. */
	for (i = 0, j = 0; i < ctx->n && j < count;) {
		if (msgs[j].uid < ctx->uids[i])
			j++;
		else if (msgs[j].uid > ctx->uids[i])
			i++;
		else
			ctx->rows[i++] = &msgs[j++];
	}
	return 0;
}

static int uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static bool uid_in(const uint32_t *uids, unsigned int count, uint32_t uid)
{
	return count > 0 &&
	       bsearch(&uid, uids, count, sizeof(uid), uid_cmp) != NULL;
}

/* Days since 1970-01-01 of a unix time, in UTC (RFC 9051 6.4.4 compares
   dates "disregarding time and timezone"). */
static int64_t unix_day(int64_t t)
{
	return t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
}

static bool date_match(const struct imap_search_key *key, int64_t t)
{
	int64_t day = unix_day(t);

	switch (key->date_op) {
	case IMAP_SEARCH_DATE_BEFORE:
		return day < key->day;
	case IMAP_SEARCH_DATE_ON:
		return day == key->day;
	case IMAP_SEARCH_DATE_SINCE:
		return day >= key->day;
	}
	i_unreached();
}

/* Reads message i's header block into ctx->blob. Returns its length, or
   -1 if the message cannot be read (it then matches no header key). */
static ssize_t read_header(struct search_ctx *ctx, unsigned int i)
{
	const struct store_message *row = ctx->rows[i];
	const char *error;
	size_t len, pos;

	buf_reset(&ctx->blob);
	if (blob_get(ctx->session->blobs, row->blob_id, &ctx->blob, &error) <
	    0) {
		log_warning(NULL, "imap_search_blob", "uid=%u error=%s",
			    row->uid, error);
		return -1;
	}
	len = ctx->blob.used < SEARCH_HEADER_MAX ? ctx->blob.used
						 : SEARCH_HEADER_MAX;
	/* RFC 5322 2.1: the header ends at the first empty line. */
	for (pos = 0; pos < len;) {
		const uint8_t *nl =
			memchr(ctx->blob.data + pos, '\n', len - pos);
		size_t line_end =
			nl == NULL ? len : (size_t)(nl - ctx->blob.data);
		size_t line_len = line_end - pos;

		if (line_len == 0 ||
		    (line_len == 1 && ctx->blob.data[pos] == '\r'))
			return (ssize_t)pos;
		pos = nl == NULL ? len : line_end + 1;
	}
	return (ssize_t)len;
}

/* Case-insensitive (ASCII) substring. */
static bool contains_ci(struct span hay, const char *needle)
{
	size_t nlen = strlen(needle), i;

	if (nlen == 0)
		return true;
	for (i = 0; i + nlen <= hay.len; i++) {
		if (strncasecmp((const char *)hay.p + i, needle, nlen) == 0)
			return true;
	}
	return false;
}

/* RFC 9051 6.4.4 HEADER: a field with that name whose value (unfolded,
   RFC 2047 words decoded) contains str; "" matches any such field. */
static bool header_match(const struct imap_search_key *key, struct span hdr,
			 struct buf *value)
{
	size_t namelen = strlen(key->header), pos = 0;

	while (pos < hdr.len) {
		const uint8_t *p = (const uint8_t *)hdr.p;
		size_t start = pos, end;
		bool ours;

		/* One field: its line and the continuation lines (starting
		   with WSP, RFC 5322 2.2.3). */
		do {
			const uint8_t *nl =
				memchr(p + pos, '\n', hdr.len - pos);

			pos = nl == NULL ? hdr.len : (size_t)(nl - p) + 1;
		} while (pos < hdr.len && (p[pos] == ' ' || p[pos] == '\t'));
		end = pos;
		ours = end - start > namelen && p[start + namelen] == ':' &&
		       strncasecmp((const char *)p + start, key->header,
				   namelen) == 0;
		if (!ours)
			continue;
		if (key->str[0] == '\0')
			return true;
		buf_reset(value);
		{
			struct buf unfolded = BUF_INIT;

			for (size_t i = start + namelen + 1; i < end; i++) {
				if (p[i] != '\r' && p[i] != '\n')
					buf_append_c(&unfolded, p[i]);
			}
			rfc2047_decode(value, buf_span(&unfolded));
			buf_free(&unfolded);
		}
		if (contains_ci(buf_span(value), key->str))
			return true;
	}
	return false;
}

/* The Date: header's time of message i (message-index.c's RFC 5322 3.3
   parser over the header alone). */
static int64_t sent_time(struct search_ctx *ctx, unsigned int i)
{
	struct message_index idx;
	ssize_t len;
	pool_t pool;
	int64_t t;

	if (ctx->sent == NULL) {
		ctx->sent = p_new(ctx->pool, int64_t, ctx->n);
		for (unsigned int j = 0; j < ctx->n; j++)
			ctx->sent[j] = SEARCH_SENT_UNREAD;
	}
	if (ctx->sent[i] != SEARCH_SENT_UNREAD)
		return ctx->sent[i];
	len = read_header(ctx, i);
	t = SEARCH_SENT_NONE;
	if (len >= 0) {
		pool = pool_create("search date", 4096);
		buf_truncate(&ctx->blob, (size_t)len);
		buf_append_str(&ctx->blob, "\r\n\r\n");
		message_index_build(pool, ctx->blob.data, ctx->blob.used, &idx);
		if (idx.date != 0)
			t = idx.date;
		pool_unref(&pool);
	}
	ctx->sent[i] = t;
	return t;
}

static void eval_text(struct search_ctx *ctx, const struct imap_search_key *key,
		      const uint8_t *care, uint8_t *out)
{
	uint64_t *boxes;
	uint32_t *uids;
	unsigned int count, i;
	const char *error;

	if (key->str[0] == '\0') {
		/* The empty string is a substring of everything. */
		memcpy(out, care, ctx->n);
		return;
	}
	/* The enums have the same order (imap-search.h). */
	if (store_search(ctx->session->store, ctx->session->mailbox_id,
			 (enum store_search_field)key->text_field,
			 STORE_SEARCH_SUBSTRING, key->str, ctx->pool, &boxes,
			 &uids, &count, &error) < 0) {
		ctx->error = error;
		return;
	}
	/* Newest first from the index: sort for the lookups. */
	if (count > 1)
		qsort(uids, count, sizeof(*uids), uid_cmp);
	for (i = 0; i < ctx->n; i++)
		out[i] = care[i] && uid_in(uids, count, ctx->uids[i]);
}

static void eval_seqset(struct search_ctx *ctx,
			const struct imap_search_key *key, const uint8_t *care,
			uint8_t *out)
{
	const struct imap_session *session = ctx->session;
	struct imap_seq_range *ranges;
	unsigned int count, i;
	bool uid = key->type == IMAP_SEARCH_UIDSET;

	if (key->seqset.searchres) {
		/* RFC 5182 2.1: "$" holds UIDs, with or without UID. */
		for (i = 0; i < ctx->n; i++)
			out[i] = care[i] &&
				 uid_in(session->searchres,
					session->searchres_count, ctx->uids[i]);
		return;
	}
	/* "*" in an empty mailbox names nothing. Numbers beyond the
	   mailbox are dropped rather than refused: a search only filters. */
	if (ctx->n == 0 ||
	    imap_seqset_resolve(&key->seqset,
				uid ? ctx->uids[ctx->n - 1] : ctx->n, ctx->pool,
				&ranges, &count) < 0)
		return;
	for (i = 0; i < ctx->n; i++)
		out[i] = care[i] &&
			 imap_seqset_contains(ranges, count,
					      uid ? ctx->uids[i] : i + 1);
}

static bool keyword_has(const struct store_message *row, const char *keyword)
{
	for (const char *const *kw = row->keywords; kw != NULL && *kw != NULL;
	     kw++) {
		/* RFC 9051 2.3.2: flags are case-insensitive. */
		if (strcasecmp(*kw, keyword) == 0)
			return true;
	}
	return false;
}

/* One message against a key that its row answers. */
static bool row_match(struct search_ctx *ctx, const struct imap_search_key *key,
		      unsigned int i)
{
	const struct store_message *row = ctx->rows[i];

	switch (key->type) {
	case IMAP_SEARCH_ALL:
		return true;
	case IMAP_SEARCH_RECENT:
		/* \Recent is not kept (IMAP4rev2 dropped it, RFC 9051
		   appendix E.1): no message is recent. */
		return false;
	case IMAP_SEARCH_FLAG:
		return (row->flags & key->flag) != 0;
	case IMAP_SEARCH_KEYWORD:
		return keyword_has(row, key->str);
	case IMAP_SEARCH_LARGER:
		return row->size > key->number;
	case IMAP_SEARCH_SMALLER:
		return row->size < key->number;
	case IMAP_SEARCH_DATE:
		if (key->date_field == IMAP_SEARCH_DATE_SENT) {
			int64_t t = sent_time(ctx, i);

			return t != SEARCH_SENT_NONE && date_match(key, t);
		}
		return date_match(key, key->date_field == IMAP_SEARCH_DATE_SAVED
					       ? row->savedate
					       : row->internaldate);
	case IMAP_SEARCH_OLDER:
		/* RFC 5032 3: INTERNALDATE at least n seconds ago. */
		return row->internaldate <= ctx->now - (int64_t)key->number;
	case IMAP_SEARCH_YOUNGER:
		return row->internaldate > ctx->now - (int64_t)key->number;
	case IMAP_SEARCH_MODSEQ:
		/* RFC 7162 3.1.5: modseq greater than or equal. */
		return row->modseq >= key->number;
	case IMAP_SEARCH_EMAILID:
		return strcmp(row->email_id, key->str) == 0;
	case IMAP_SEARCH_THREADID:
		return strcmp(row->thread_id, key->str) == 0;
	case IMAP_SEARCH_HEADER: {
		struct buf value = BUF_INIT;
		ssize_t len = read_header(ctx, i);
		bool ret = len >= 0 &&
			   header_match(key,
					span_make(ctx->blob.data, (size_t)len),
					&value);

		buf_free(&value);
		return ret;
	}
	default:
		i_unreached();
	}
}

static void eval(struct search_ctx *ctx, const struct imap_search_key *key,
		 const uint8_t *care, uint8_t *out);

static bool any(const uint8_t *set, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		if (set[i])
			return true;
	}
	return false;
}

static void eval_and(struct search_ctx *ctx, const struct imap_search_key *key,
		     const uint8_t *care, uint8_t *out)
{
	uint8_t *tmp = p_malloc(ctx->pool, ctx->n + 1);
	const struct imap_search_key *child;
	enum key_cost cost;

	memcpy(out, care, ctx->n);
	/* Cheap children first: each narrows what the next looks at. */
	for (cost = COST_ROWS; cost <= COST_BLOBS; cost++) {
		for (child = key->child; child != NULL; child = child->next) {
			if (key_cost(child) != cost)
				continue;
			if (!any(out, ctx->n) || ctx->error != NULL)
				return;
			memset(tmp, 0, ctx->n);
			eval(ctx, child, out, tmp);
			memcpy(out, tmp, ctx->n);
		}
	}
}

static void eval(struct search_ctx *ctx, const struct imap_search_key *key,
		 const uint8_t *care, uint8_t *out)
{
	uint8_t *tmp;
	unsigned int i;

	switch (key->type) {
	case IMAP_SEARCH_AND:
		eval_and(ctx, key, care, out);
		return;
	case IMAP_SEARCH_OR:
		eval(ctx, key->child, care, out);
		tmp = p_malloc(ctx->pool, ctx->n + 1);
		for (i = 0; i < ctx->n; i++)
			tmp[i] = care[i] && !out[i];
		if (!any(tmp, ctx->n))
			return;
		{
			uint8_t *second = p_malloc(ctx->pool, ctx->n + 1);

			eval(ctx, key->child->next, tmp, second);
			for (i = 0; i < ctx->n; i++)
				out[i] |= second[i];
		}
		return;
	case IMAP_SEARCH_NOT:
		tmp = p_malloc(ctx->pool, ctx->n + 1);
		eval(ctx, key->child, care, tmp);
		for (i = 0; i < ctx->n; i++)
			out[i] = care[i] && !tmp[i];
		return;
	case IMAP_SEARCH_TEXT:
		eval_text(ctx, key, care, out);
		return;
	case IMAP_SEARCH_SEQSET:
	case IMAP_SEARCH_UIDSET:
		eval_seqset(ctx, key, care, out);
		return;
	default:
		break;
	}
	for (i = 0; i < ctx->n; i++) {
		if (care[i] && ctx->rows != NULL && ctx->rows[i] != NULL)
			out[i] = row_match(ctx, key, i);
		else if (care[i] && ctx->rows == NULL)
			/* No key needs rows: only ALL and RECENT come here. */
			out[i] = key->type == IMAP_SEARCH_ALL;
	}
}

static void searchres_set(struct imap_session *session, const uint32_t *uids,
			  unsigned int count)
{
	i_free(session->searchres);
	session->searchres_count = 0;
	if (count == 0)
		return;
	session->searchres = i_new(uint32_t, count);
	memcpy(session->searchres, uids, count * sizeof(*uids));
	session->searchres_count = count;
}

/* Appends the matches (as numbers) as a sequence set (RFC 4731 3.1 ALL). */
static void write_set(struct search_ctx *ctx, const uint32_t *nums,
		      unsigned int count)
{
	struct imap_seq_range *ranges =
		p_new(ctx->pool, struct imap_seq_range, count);
	unsigned int r = 0;

	for (unsigned int i = 0; i < count; i++) {
		if (r > 0 && ranges[r - 1].last + 1 == nums[i])
			ranges[r - 1].last = nums[i];
		else {
			ranges[r].first = ranges[r].last = nums[i];
			r++;
		}
	}
	imap_seqset_write(ctx->cmd->out, ranges, r);
}

static void write_results(struct search_ctx *ctx,
			  const struct imap_search_program *prog,
			  const uint8_t *match)
{
	struct imap_cmd *cmd = ctx->cmd;
	struct buf *out = cmd->out;
	unsigned int returns = prog->returns, count = 0, i;
	uint32_t *nums = p_new(ctx->pool, uint32_t, ctx->n + 1);
	uint32_t *uids = p_new(ctx->pool, uint32_t, ctx->n + 1);
	unsigned int *idx = p_new(ctx->pool, unsigned int, ctx->n + 1);
	uint64_t modseq = 0;
	bool esearch = prog->esearch;
	bool only_ends;

	for (i = 0; i < ctx->n; i++) {
		if (!match[i])
			continue;
		idx[count] = i;
		uids[count] = ctx->uids[i];
		nums[count++] = cmd->uid ? ctx->uids[i] : i + 1;
	}
	/* RFC 9051 6.4.4: an IMAP4rev2 client always gets ESEARCH;
	   without RETURN that is RETURN (ALL). */
	if (!esearch && (ctx->session->enabled & IMAP_ENABLED_REV2) != 0) {
		esearch = true;
		returns = IMAP_SEARCH_RETURN_ALL;
	}
	/* RFC 4731 3.1, RFC 5182 2.4: MIN and/or MAX without ALL and COUNT
	   return (and save) only those messages. */
	only_ends = (returns &
		     (IMAP_SEARCH_RETURN_MIN | IMAP_SEARCH_RETURN_MAX)) != 0 &&
		    (returns &
		     (IMAP_SEARCH_RETURN_ALL | IMAP_SEARCH_RETURN_COUNT)) == 0;
	if (prog->modseq && count > 0) {
		/* RFC 7162 3.1.5: the highest MODSEQ of the messages
		   returned. */
		for (i = 0; i < count; i++) {
			const struct store_message *row = ctx->rows[idx[i]];

			bool end = (i == 0 &&
				    (returns & IMAP_SEARCH_RETURN_MIN) != 0) ||
				   (i == count - 1 &&
				    (returns & IMAP_SEARCH_RETURN_MAX) != 0);

			if (only_ends && !end)
				continue;
			if (row->modseq > modseq)
				modseq = row->modseq;
		}
	}
	if ((returns & IMAP_SEARCH_RETURN_SAVE) != 0) {
		if (only_ends && count > 0) {
			uint32_t ends[2];
			unsigned int n = 0;

			if ((returns & IMAP_SEARCH_RETURN_MIN) != 0)
				ends[n++] = uids[0];
			if ((returns & IMAP_SEARCH_RETURN_MAX) != 0 &&
			    (n == 0 || uids[count - 1] != ends[0]))
				ends[n++] = uids[count - 1];
			searchres_set(ctx->session, ends, n);
		} else {
			searchres_set(ctx->session, uids, count);
		}
	}

	if (!esearch) {
		buf_append_str(out, "* SEARCH");
		for (i = 0; i < count; i++)
			buf_printf(out, " %u", nums[i]);
		if (prog->modseq && count > 0)
			buf_printf(out, " (MODSEQ %llu)",
				   (unsigned long long)modseq);
		buf_append_str(out, "\r\n");
		return;
	}
	/* RFC 5182 2.1: SAVE alone returns nothing. */
	if (returns == IMAP_SEARCH_RETURN_SAVE)
		return;
	/* RFC 4731 3.1 / RFC 9051 7.3.4: "* ESEARCH (TAG "x") UID MIN n
	   MAX n COUNT n ALL set"; MIN, MAX and ALL are left out when
	   nothing matched. */
	buf_append_str(out, "* ESEARCH (TAG ");
	imap_write_string(out, span_from_cstr(cmd->tag), 0);
	buf_append_c(out, ')');
	if (cmd->uid)
		buf_append_str(out, " UID");
	if ((returns & IMAP_SEARCH_RETURN_MIN) != 0 && count > 0)
		buf_printf(out, " MIN %u", nums[0]);
	if ((returns & IMAP_SEARCH_RETURN_MAX) != 0 && count > 0)
		buf_printf(out, " MAX %u", nums[count - 1]);
	if ((returns & IMAP_SEARCH_RETURN_COUNT) != 0)
		buf_printf(out, " COUNT %u", count);
	if ((returns & IMAP_SEARCH_RETURN_ALL) != 0 && count > 0) {
		buf_append_str(out, " ALL ");
		write_set(ctx, nums, count);
	}
	if (prog->modseq && count > 0)
		buf_printf(out, " MODSEQ %llu", (unsigned long long)modseq);
	buf_append_str(out, "\r\n");
}

static void cmd_search(struct imap_cmd *cmd)
{
	struct imap_session *session = cmd->session;
	struct imap_search_program prog;
	struct search_ctx ctx = {
		.cmd = cmd,
		.session = session,
		.pool = cmd->pool,
		.n = session->uid_count,
		.uids = session->uids,
		.now = (int64_t)time(NULL),
	};
	enum imap_search_result ret;
	uint8_t *care, *match;
	const char *error;

	ret = imap_search_parse(cmd->pool, cmd->args, cmd->arg_count, &prog,
				&error);
	if (ret != IMAP_SEARCH_OK) {
		/* RFC 5182 2.1: a failed SEARCH ... SAVE empties "$". */
		if ((prog.returns & IMAP_SEARCH_RETURN_SAVE) != 0)
			searchres_set(session, NULL, 0);
		if (ret == IMAP_SEARCH_BADCHARSET)
			imap_cmd_no(cmd, IMAP_SEARCH_BADCHARSET_CODE, error);
		else
			imap_cmd_bad(cmd, error);
		return;
	}
	/* RFC 7162 3.1: SEARCH MODSEQ is a CONDSTORE enabling command. */
	if (prog.modseq)
		session->enabled |= IMAP_ENABLED_CONDSTORE;
	care = p_malloc(cmd->pool, ctx.n + 1);
	match = p_malloc(cmd->pool, ctx.n + 1);
	memset(care, 1, ctx.n);
	if ((prog.need_rows || prog.modseq || !key_vouched(prog.root)) &&
	    load_rows(&ctx) < 0) {
		if ((prog.returns & IMAP_SEARCH_RETURN_SAVE) != 0)
			searchres_set(session, NULL, 0);
		imap_cmd_store_error(cmd, ctx.error);
		return;
	}
	if (ctx.rows != NULL) {
		/* Gone messages match nothing, not even NOT. */
		for (unsigned int i = 0; i < ctx.n; i++)
			care[i] = ctx.rows[i] != NULL;
	}
	eval(&ctx, prog.root, care, match);
	buf_free(&ctx.blob);
	if (ctx.error != NULL) {
		if ((prog.returns & IMAP_SEARCH_RETURN_SAVE) != 0)
			searchres_set(session, NULL, 0);
		imap_cmd_store_error(cmd, ctx.error);
		return;
	}
	write_results(&ctx, &prog, match);
	imap_cmd_ok(cmd, NULL,
		    cmd->uid ? "UID SEARCH completed" : "SEARCH completed");
}

const struct imap_cmd_def imap_cmds_search[] = {
	{ "SEARCH", cmd_search,
	  IMAP_CMD_SELECTED | IMAP_CMD_UID | IMAP_CMD_NO_EXPUNGE },
	{ NULL, NULL, 0 },
};
