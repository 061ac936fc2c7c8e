/* vault-merge.c - the spool merge of the vault: vault_merge_account() moves
   an account's sealed spool records into its encrypted store, and struct
   vault_merger schedules that work from the vault's loop thread (inotify
   on DATA/accounts and on every account directory, a start-up sweep, a
   periodic sweep as a safety net, one worker job per account at a time).
   vault.c creates the merger and forwards the changes it reports to the
   fronts; tests call vault_merge_account() directly.

   Security stance: this code holds unwrapped account keys (secret key,
   data key) for the duration of one merge on a worker thread, in a stack
   struct that is wiped (account_keys_clear) on every path (and, for a
   zero-access account, in the job's copy from the keyring, wiped when the
   job ends); it never logs
   message content, addresses from inside records or keys, only account
   ids, counts and library error strings. Records are untrusted input: a
   record that does not open is skipped by spool_reader and counted, its
   taken file is kept aside (still sealed) for the operator, and the
   message bytes of records that do open go only to blob_put and the MIME
   indexer, which bounds its own work. Nothing acknowledged is lost: the
   taken spool file is deleted only after every record in it has been
   committed, and each append carries its record id so a redo after a
   crash is a no-op. Quota never refuses a merge. The blob collection a
   job may run after its merge deletes only blobs unreferenced and older
   than an hour (blob-gc.h), so it cannot race this or any other writer. */

#include "vault-merge.h"
#include "vault-keyring.h"
#include "blob.h"
#include "blob-gc.h"
#include "directory.h"
#include "ioloop.h"
#include "log.h"
#include "message-index.h"
#include "pool.h"
#include "spool.h"
#include "store.h"
#include "worker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Records per store_append_many transaction, and the pool memory (mostly
   indexed text, up to MESSAGE_INDEX_MAX_TEXT per message) after which a
   batch is committed early. */
#define VAULT_MERGE_BATCH_MAX 64
#define VAULT_MERGE_BATCH_BYTES (32u * 1024 * 1024)
/* Spool files merged by one job: the crash leftover, then the current
   spool, then whatever arrived meanwhile; the rest is the next job's. */
#define VAULT_MERGE_MAX_ROUNDS 4
/* inotify events within this window start one merge. */
#define VAULT_MERGE_COALESCE_MSECS 20
/* A failed merge is retried after this long. */
#define VAULT_MERGE_RETRY_MSECS 5000
/* Every account is looked at this often even without events (a watch
   that could not be added, an inotify queue overflow). */
#define VAULT_MERGE_SWEEP_MSECS 60000

static int vault_merge_filter_default(const struct spool_record *record,
				      const struct message_index *index,
				      const char **mailbox_name)
{
	/* Keeps the delivery's choice: the hint, or the default (Junk for
	   SPOOL_FLAG_JUNK, else INBOX). Sieve plugs in here. */
	(void)record;
	(void)index;
	(void)mailbox_name;
	return 0;
}

vault_merge_filter_t *vault_merge_filter = vault_merge_filter_default;

/* ---- the merge of one account (worker thread) ---- */

struct merge_ctx {
	pool_t pool; /* result and error memory */
	pool_t batch_pool; /* indexes and mailbox lookups of one batch */
	const struct vault_merge_account *account;
	struct store *store;
	struct blob_store *blobs;
	uint64_t inbox_id, junk_id;
	struct vault_merge_result *result;

	struct store_append appends[VAULT_MERGE_BATCH_MAX];
	uint8_t ids[VAULT_MERGE_BATCH_MAX][SPOOL_RECORD_ID_LEN];
	unsigned int count;
};

static void merge_note_change(struct merge_ctx *ctx, uint64_t mailbox_id,
			      uint64_t modseq)
{
	struct vault_merge_result *res = ctx->result;
	struct vault_merge_change *changes;

	for (unsigned int i = 0; i < res->change_count; i++) {
		if (res->changes[i].mailbox_id == mailbox_id) {
			res->changes[i].modseq = modseq;
			return;
		}
	}
	/* Few mailboxes change in one merge: grow by copying. */
	changes = p_new(ctx->pool, struct vault_merge_change,
			res->change_count + 1);
	if (res->change_count > 0) {
		memcpy(changes, res->changes,
		       sizeof(*changes) * res->change_count);
	}
	changes[res->change_count].mailbox_id = mailbox_id;
	changes[res->change_count].modseq = modseq;
	res->changes = changes;
	res->change_count++;
}

static int merge_flush(struct merge_ctx *ctx, const char **error_r)
{
	uint32_t uids[VAULT_MERGE_BATCH_MAX];
	const char *error;
	uint64_t modseq;

	if (ctx->count == 0)
		return 0;
	if (store_append_many(ctx->store, ctx->appends, ctx->count, uids,
			      &error) < 0) {
		*error_r =
			p_strdup_printf(ctx->pool, "store append: %s", error);
		return -1;
	}
	modseq = store_highest_modseq(ctx->store);
	for (unsigned int i = 0; i < ctx->count; i++)
		merge_note_change(ctx, ctx->appends[i].mailbox_id, modseq);
	ctx->result->messages += ctx->count;
	ctx->count = 0;
	memset(ctx->appends, 0, sizeof(ctx->appends));
	pool_clear(ctx->batch_pool);
	return 0;
}

/* The mailbox a record goes to (see vault_merge_filter_t). */
static int merge_target(struct merge_ctx *ctx, const struct spool_record *rec,
			const struct message_index *index,
			uint64_t *mailbox_id_r, const char **error_r)
{
	struct store_mailbox box;
	const char *name = rec->mailbox[0] != '\0' ? rec->mailbox : NULL;
	const char *error;
	int ret;

	if (vault_merge_filter(rec, index, &name) < 0) {
		*error_r = "the filter failed";
		return -1;
	}
	if (name != NULL) {
		ret = store_mailbox_lookup(ctx->store, name, ctx->batch_pool,
					   &box, &error);
		/* A hint is sender-side data: a bad name is no mailbox. */
		if (ret < 0 &&
		    store_last_error(ctx->store) == STORE_ERROR_INVALID)
			ret = 0;
		if (ret < 0) {
			*error_r = p_strdup_printf(ctx->pool,
						   "mailbox lookup: %s", error);
			return -1;
		}
		if (ret > 0) {
			*mailbox_id_r = box.id;
			return 0;
		}
	}
	*mailbox_id_r = (rec->flags & SPOOL_FLAG_JUNK) != 0 ? ctx->junk_id
							    : ctx->inbox_id;
	return 0;
}

static int merge_record(struct merge_ctx *ctx, const struct spool_record *rec,
			const char **error_r)
{
	struct store_append *append = &ctx->appends[ctx->count];
	struct message_index *index;
	uint8_t blob_id[BLOB_ID_LEN];
	const char *error;

	/* Durable before the commit that references it (blob.h). */
	if (blob_put(ctx->blobs, rec->message, rec->message_len, blob_id, NULL,
		     &error) < 0) {
		*error_r = p_strdup_printf(ctx->pool, "blob: %s", error);
		return -1;
	}
	index = p_new(ctx->batch_pool, struct message_index, 1);
	message_index_build(ctx->batch_pool, rec->message, rec->message_len,
			    index);

	memset(append, 0, sizeof(*append));
	if (merge_target(ctx, rec, index, &append->mailbox_id, error_r) < 0)
		return -1;
	append->internaldate = rec->received;
	memcpy(append->blob_id, blob_id, sizeof(append->blob_id));
	append->size = rec->message_len;
	append->index = index;
	/* The record is only valid until the next read: keep the id. */
	memcpy(ctx->ids[ctx->count], rec->id, SPOOL_RECORD_ID_LEN);
	append->spool_record_id = ctx->ids[ctx->count];
	ctx->count++;

	if (ctx->count == VAULT_MERGE_BATCH_MAX ||
	    pool_used(ctx->batch_pool) >= VAULT_MERGE_BATCH_BYTES)
		return merge_flush(ctx, error_r);
	return 0;
}

/* Keeps a taken file that held damaged records, under a new name, before
   spool_done removes it: the records are still sealed, and an operator
   (or a later tool) may want them. */
static void merge_keep_damaged(struct merge_ctx *ctx, const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *dir = slash == NULL ? "."
					: p_strndup(ctx->pool, path,
						    (size_t)(slash - path));

	for (unsigned int n = 0; n < 100; n++) {
		const char *target =
			p_strdup_printf(ctx->pool, "%s/spool.damaged-%lld-%u",
					dir, (long long)time(NULL), n);

		if (link(path, target) == 0)
			return;
		if (errno != EEXIST) {
			log_warning(NULL, "merge.keep_damaged_failed",
				    "account=%" PRIu64 " error=%s",
				    ctx->account->id,
				    log_value(0, strerror(errno)));
			return;
		}
	}
}

/* Merges one taken file. Returns 1 when every record is committed, 0 if
   stop was seen (what was read is committed, the file stays), -1. */
static int merge_file(struct merge_ctx *ctx, const char *path,
		      const struct account_keys *keys, const atomic_bool *stop,
		      const char **error_r)
{
	struct spool_reader *reader;
	struct spool_record rec;
	const char *error;
	unsigned int damaged;
	int ret;

	reader = spool_reader_open(path, keys->public_key, keys->secret_key,
				   &error);
	if (reader == NULL) {
		*error_r = p_strdup_printf(ctx->pool, "spool: %s", error);
		return -1;
	}
	while ((ret = spool_reader_next(reader, &rec, &error)) > 0) {
		if (merge_record(ctx, &rec, error_r) < 0) {
			spool_reader_close(&reader);
			return -1;
		}
		if (ctx->count == 0 && stop != NULL && atomic_load(stop)) {
			/* A batch was just committed: stop here. */
			spool_reader_close(&reader);
			return 0;
		}
	}
	if (ret < 0) {
		*error_r = p_strdup_printf(ctx->pool, "spool: %s", error);
		spool_reader_close(&reader);
		return -1;
	}
	damaged = spool_reader_damaged(reader);
	spool_reader_close(&reader);
	if (merge_flush(ctx, error_r) < 0)
		return -1;
	if (damaged > 0) {
		log_warning(NULL, "merge.damaged",
			    "account=%" PRIu64 " records=%u", ctx->account->id,
			    damaged);
		ctx->result->damaged += damaged;
		merge_keep_damaged(ctx, path);
	}
	return 1;
}

static int merge_open(struct merge_ctx *ctx, const char *data_dir,
		      const char *account_dir, const struct account_keys *keys,
		      const char **error_r)
{
	struct store_mailbox box;
	const char *error;
	int ret;

	ctx->store =
		store_open(data_dir, ctx->account->id, keys->data_key, &error);
	if (ctx->store == NULL) {
		*error_r = p_strdup_printf(ctx->pool, "store: %s", error);
		return -1;
	}
	/* Acknowledged mail is never refused (see the file head). */
	store_set_quota(ctx->store, 0);
	ctx->blobs = blob_store_open(account_dir, keys->data_key, &error);
	if (ctx->blobs == NULL) {
		*error_r = p_strdup_printf(ctx->pool, "blobs: %s", error);
		return -1;
	}
	ret = store_mailbox_find_special(ctx->store, STORE_SPECIAL_INBOX,
					 ctx->batch_pool, &box, &error);
	if (ret <= 0) {
		*error_r = p_strdup_printf(ctx->pool, "no INBOX: %s",
					   ret < 0 ? error : "missing");
		return -1;
	}
	ctx->inbox_id = box.id;
	ret = store_mailbox_find_special(ctx->store, STORE_SPECIAL_JUNK,
					 ctx->batch_pool, &box, &error);
	if (ret < 0) {
		*error_r = p_strdup_printf(ctx->pool, "Junk: %s", error);
		return -1;
	}
	/* A deleted Junk folder: junk goes to INBOX rather than nowhere. */
	ctx->junk_id = ret > 0 ? box.id : ctx->inbox_id;
	pool_clear(ctx->batch_pool);
	return 0;
}

static void merge_check_quota(struct merge_ctx *ctx)
{
	uint64_t used;
	const char *error;

	if (ctx->account->quota_bytes == 0 || ctx->result->messages == 0)
		return;
	if (store_quota_usage(ctx->store, &used, &error) < 0) {
		log_warning(NULL, "merge.quota_unknown",
			    "account=%" PRIu64 " error=%s", ctx->account->id,
			    log_value(0, error));
		return;
	}
	ctx->result->quota_used = used;
	ctx->result->quota_known = true;
	if (used > ctx->account->quota_bytes) {
		ctx->result->over_quota = true;
		log_warning(NULL, "merge.over_quota",
			    "account=%" PRIu64 " used=%" PRIu64
			    " quota=%" PRIu64,
			    ctx->account->id, used, ctx->account->quota_bytes);
	}
}

/* After the last commit of the merge, with its store and blobs. */
static void merge_collect(struct merge_ctx *ctx, const atomic_bool *stop)
{
	const char *error;

	ctx->result->collected = true;
	if (blob_gc_run(ctx->store, ctx->blobs, BLOB_GC_MIN_AGE_DEFAULT, false,
			stop, &ctx->result->gc, &error) < 0)
		ctx->result->gc_error = p_strdup(ctx->pool, error);
}

int vault_merge_account(const char *data_dir,
			const uint8_t master_key[MASTER_KEY_LEN],
			const struct vault_merge_account *account,
			const atomic_bool *stop, struct pool *pool,
			struct vault_merge_result *result_r,
			const char **error_r)
{
	struct merge_ctx ctx;
	struct account_keys keys;
	const char *account_dir, *path, *error;
	int ret;

	memset(result_r, 0, sizeof(*result_r));
	if (account->zero_access && account->keys == NULL) {
		*error_r = "zero-access account: its keys are locked";
		return -1;
	}
	account_dir = p_strdup_printf(pool, "%s/accounts/%" PRIu64, data_dir,
				      account->id);
	ret = spool_take(account_dir, pool, &path, &error);
	if (ret <= 0) {
		if (ret < 0)
			*error_r = p_strdup_printf(pool, "spool: %s", error);
		return ret;
	}

	if (account->keys != NULL)
		memcpy(&keys, account->keys, sizeof(keys));
	else if (account_keys_unwrap(master_key, account->id,
				     account->public_key, account->wrapped_keys,
				     sizeof(account->wrapped_keys),
				     &keys) < 0) {
		*error_r = "the account keys do not unwrap with the master key";
		return -1;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.pool = pool;
	ctx.batch_pool = pool_create("vault-merge-batch", 64 * 1024);
	ctx.account = account;
	ctx.result = result_r;
	ret = merge_open(&ctx, data_dir, account_dir, &keys, error_r);

	for (unsigned int round = 0; ret == 0; round++) {
		ret = merge_file(&ctx, path, &keys, stop, error_r);
		if (ret <= 0) {
			if (ret == 0)
				result_r->stopped = true;
			break;
		}
		if (spool_done(path, &error) < 0) {
			*error_r =
				p_strdup_printf(pool, "spool done: %s", error);
			ret = -1;
			break;
		}
		result_r->files++;
		if (round + 1 == VAULT_MERGE_MAX_ROUNDS ||
		    (stop != NULL && atomic_load(stop))) {
			ret = 0;
			break;
		}
		ret = spool_take(account_dir, pool, &path, &error);
		if (ret < 0)
			*error_r = p_strdup_printf(pool, "spool: %s", error);
		else if (ret > 0)
			ret = 0;
		else
			break;
	}
	if (ret >= 0) {
		merge_check_quota(&ctx);
		ret = 0;
	}
	if (ret == 0 && account->collect)
		merge_collect(&ctx, stop);
	account_keys_clear(&keys);
	blob_store_close(&ctx.blobs);
	store_close(&ctx.store);
	pool_unref(&ctx.batch_pool);
	return ret;
}

/* ---- the scheduler (loop thread) ---- */

struct merge_acct {
	uint64_t id;
	int wd; /* inotify watch of the account directory, or -1 */
	bool running, dirty;
	bool locked_logged; /* merge.locked said since the last merge */
	uint64_t not_before_ms; /* after a failure */
	uint64_t last_gc_ms; /* when a job last collected its blobs */
	bool gc_ran; /* last_gc_ms is set */
};

struct merge_job {
	struct vault_merger *merger;
	struct vault_merge_account account;
	/* A zero-access account's keys, copied from the keyring. */
	struct account_keys keys;
	pool_t pool;
	struct vault_merge_result result;
	int ret;
	const char *error;
	uint64_t started_ms;
};

struct vault_merger {
	struct ioloop *ioloop;
	char *data_dir, *accounts_dir;
	struct directory *dir;
	const uint8_t *master_key;
	struct vault_keyring *keyring;
	struct worker_pool *workers;
	vault_merge_changed_t *changed;
	void *context;
	vault_merge_usage_t *usage;
	void *usage_context;

	int inotify_fd;
	int accounts_wd;
	struct io *io;
	struct timeout *coalesce_to, *retry_to, *sweep_to;
	uint64_t gc_interval_ms;

	struct merge_acct *accts;
	unsigned int acct_count, acct_alloc;
	unsigned int in_flight;
	atomic_bool stop;
};

static void merger_run_dirty(void *context);

static struct merge_acct *merger_acct_find(struct vault_merger *merger,
					   uint64_t id)
{
	for (unsigned int i = 0; i < merger->acct_count; i++) {
		if (merger->accts[i].id == id)
			return &merger->accts[i];
	}
	return NULL;
}

static struct merge_acct *merger_acct_by_wd(struct vault_merger *merger, int wd)
{
	for (unsigned int i = 0; i < merger->acct_count; i++) {
		if (merger->accts[i].wd == wd)
			return &merger->accts[i];
	}
	return NULL;
}

static void merger_arm(struct vault_merger *merger)
{
	if (merger->coalesce_to == NULL && !atomic_load(&merger->stop)) {
		merger->coalesce_to =
			timeout_add(merger->ioloop, VAULT_MERGE_COALESCE_MSECS,
				    merger_run_dirty, merger);
	}
}

static void merger_mark(struct vault_merger *merger, struct merge_acct *acct)
{
	acct->dirty = true;
	merger_arm(merger);
}

static void merger_watch(struct vault_merger *merger, struct merge_acct *acct)
{
	char *path;

	if (acct->wd >= 0)
		return;
	path = i_strdup_printf("%s/%" PRIu64, merger->accounts_dir, acct->id);
	acct->wd = inotify_add_watch(merger->inotify_fd, path,
				     IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO |
					     IN_ONLYDIR);
	if (acct->wd < 0 && errno != ENOENT) {
		/* The periodic sweep still merges this account. */
		log_warning(NULL, "merge.watch_failed",
			    "account=%" PRIu64 " error=%s", acct->id,
			    log_value(0, strerror(errno)));
	}
	i_free(path);
}

/* An account directory name is its decimal id. */
static bool merger_parse_id(const char *name, uint64_t *id_r)
{
	uint64_t id = 0;

	if (name[0] < '1' || name[0] > '9')
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || id > (UINT64_MAX - 9) / 10)
			return false;
		id = id * 10 + (uint64_t)(*p - '0');
	}
	*id_r = id;
	return true;
}

static void merger_add_account(struct vault_merger *merger, uint64_t id)
{
	struct merge_acct *acct = merger_acct_find(merger, id);

	if (acct == NULL) {
		if (merger->acct_count == merger->acct_alloc) {
			merger->acct_alloc = merger->acct_alloc == 0
						     ? 16
						     : merger->acct_alloc * 2;
			merger->accts =
				i_realloc(merger->accts,
					  i_size_mul(sizeof(*merger->accts),
						     merger->acct_alloc));
		}
		acct = &merger->accts[merger->acct_count++];
		memset(acct, 0, sizeof(*acct));
		acct->id = id;
		acct->wd = -1;
	}
	merger_watch(merger, acct);
	merger_mark(merger, acct);
}

static void merger_scan(struct vault_merger *merger)
{
	struct dirent *d;
	DIR *dp;
	uint64_t id;

	dp = opendir(merger->accounts_dir);
	if (dp == NULL) {
		log_error(NULL, "merge.scan_failed", "error=%s",
			  log_value(0, strerror(errno)));
		return;
	}
	while ((d = readdir(dp)) != NULL) {
		if (merger_parse_id(d->d_name, &id))
			merger_add_account(merger, id);
	}
	(void)closedir(dp);
}

/* True if the account has a spool with data or a taken file left. */
static bool merger_has_spool(struct vault_merger *merger, uint64_t id)
{
	struct stat st;
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%" PRIu64 "/spool.merging",
		 merger->accounts_dir, id);
	if (stat(path, &st) == 0)
		return true;
	snprintf(path, sizeof(path), "%s/%" PRIu64 "/spool",
		 merger->accounts_dir, id);
	return stat(path, &st) == 0 && st.st_size > 0;
}

static void merger_work(void *context)
{
	struct merge_job *job = context;
	struct vault_merger *merger = job->merger;

	job->ret = vault_merge_account(merger->data_dir, merger->master_key,
				       &job->account, &merger->stop, job->pool,
				       &job->result, &job->error);
}

static void merger_retry(void *context)
{
	struct vault_merger *merger = context;

	timeout_remove(&merger->retry_to);
	merger_run_dirty(merger);
}

static void merger_done(void *context)
{
	struct merge_job *job = context;
	struct vault_merger *merger = job->merger;
	struct merge_acct *acct = merger_acct_find(merger, job->account.id);
	const struct vault_merge_result *res = &job->result;
	uint64_t now = ioloop_now_ms(merger->ioloop);

	i_assert(merger->in_flight > 0);
	merger->in_flight--;
	for (unsigned int i = 0; i < res->change_count; i++) {
		merger->changed(job->account.id, res->changes[i].mailbox_id,
				res->changes[i].modseq, merger->context);
	}
	if (res->quota_known && merger->usage != NULL)
		merger->usage(job->account.id, res->quota_used,
			      merger->usage_context);
	if (res->collected && res->gc_error != NULL) {
		log_error(NULL, "gc.failed",
			  "account=%" PRIu64 " deleted=%" PRIu64 " error=%s",
			  job->account.id, res->gc.deleted,
			  log_value(0, res->gc_error));
	} else if (res->collected) {
		log_info(NULL, "gc.done",
			 "account=%" PRIu64 " files=%" PRIu64
			 " referenced=%" PRIu64 " deleted=%" PRIu64
			 " bytes=%" PRIu64 " young=%" PRIu64 "%s",
			 job->account.id, res->gc.files, res->gc.referenced,
			 res->gc.deleted, res->gc.deleted_bytes, res->gc.young,
			 res->gc.stopped ? " stopped=yes" : "");
	}
	if (job->ret < 0) {
		log_error(NULL, "merge.failed",
			  "account=%" PRIu64 " messages=%u error=%s",
			  job->account.id, res->messages,
			  log_value(0, job->error));
	} else if (res->files > 0 || res->messages > 0 || res->stopped) {
		log_info(NULL, "merge.done",
			 "account=%" PRIu64 " messages=%u files=%u damaged=%u "
			 "msecs=%" PRIu64 "%s",
			 job->account.id, res->messages, res->files,
			 res->damaged, now - job->started_ms,
			 res->stopped ? " stopped=yes" : "");
	}
	if (acct != NULL) {
		acct->running = false;
		if (job->ret < 0) {
			acct->dirty = true;
			acct->not_before_ms = now + VAULT_MERGE_RETRY_MSECS;
			if (merger->retry_to == NULL &&
			    !atomic_load(&merger->stop)) {
				merger->retry_to = timeout_add(
					merger->ioloop,
					VAULT_MERGE_RETRY_MSECS + 10,
					merger_retry, merger);
			}
		} else if (res->files == VAULT_MERGE_MAX_ROUNDS) {
			/* More may be waiting: come back soon. */
			acct->dirty = true;
		}
		if (acct->dirty)
			merger_arm(merger);
	}
	safe_memset0(&job->account, sizeof(job->account));
	account_keys_clear(&job->keys);
	pool_unref(&job->pool);
	i_free(job);
}

static void merger_start(struct vault_merger *merger, struct merge_acct *acct)
{
	struct directory_account da;
	struct merge_job *job;
	const char *error;
	int ret;

	acct->dirty = false;
	if (!merger_has_spool(merger, acct->id))
		return;
	ret = directory_account_lookup_id(merger->dir, acct->id, &da, &error);
	if (ret <= 0) {
		if (ret < 0) {
			log_error(NULL, "merge.db_error",
				  "account=%" PRIu64 " error=%s", acct->id,
				  log_value(0, error));
			acct->dirty = true;
			acct->not_before_ms = ioloop_now_ms(merger->ioloop) +
					      VAULT_MERGE_RETRY_MSECS;
		} else {
			/* A deleted account: its directory is the
			   operator's (directory_account_del). */
			log_debug(NULL, "merge.no_account", "account=%" PRIu64,
				  acct->id);
		}
		pool_clear(directory_pool(merger->dir));
		return;
	}
	job = i_new(struct merge_job, 1);
	if (da.zero_access) {
		if (merger->keyring == NULL ||
		    !vault_keyring_get(merger->keyring, da.id,
				       ioloop_now_ms(merger->ioloop),
				       &job->keys)) {
			/* Not an error: the mail waits, sealed, for the
			   user's next login (vault_merger_schedule). */
			if (!acct->locked_logged) {
				log_info(NULL, "merge.locked",
					 "account=%" PRIu64, acct->id);
				acct->locked_logged = true;
			}
			pool_clear(directory_pool(merger->dir));
			i_free(job);
			return;
		}
		job->account.zero_access = true;
		job->account.keys = &job->keys;
	}
	acct->locked_logged = false;
	job->merger = merger;
	job->account.id = da.id;
	job->account.quota_bytes = da.quota_bytes;
	/* Counted from the job's start, whatever its outcome: at most one
	   collection per interval, even when it keeps failing. */
	if (!acct->gc_ran || ioloop_now_ms(merger->ioloop) - acct->last_gc_ms >=
				     merger->gc_interval_ms) {
		job->account.collect = true;
		acct->gc_ran = true;
		acct->last_gc_ms = ioloop_now_ms(merger->ioloop);
	}
	memcpy(job->account.public_key, da.public_key,
	       sizeof(job->account.public_key));
	memcpy(job->account.wrapped_keys, da.wrapped_keys,
	       sizeof(job->account.wrapped_keys));
	pool_clear(directory_pool(merger->dir));
	job->pool = pool_create("vault-merge", 1024);
	job->started_ms = ioloop_now_ms(merger->ioloop);
	acct->running = true;
	merger->in_flight++;
	worker_pool_submit(merger->workers, merger_work, merger_done, job);
}

static void merger_run_dirty(void *context)
{
	struct vault_merger *merger = context;
	uint64_t now = ioloop_now_ms(merger->ioloop);
	bool waiting = false;

	timeout_remove(&merger->coalesce_to);
	if (atomic_load(&merger->stop))
		return;
	for (unsigned int i = 0; i < merger->acct_count; i++) {
		struct merge_acct *acct = &merger->accts[i];

		if (!acct->dirty || acct->running)
			continue;
		if (acct->not_before_ms > now) {
			waiting = true;
			continue;
		}
		merger_start(merger, acct);
	}
	if (waiting && merger->retry_to == NULL) {
		merger->retry_to =
			timeout_add(merger->ioloop, VAULT_MERGE_RETRY_MSECS,
				    merger_retry, merger);
	}
}

static void merger_sweep(void *context)
{
	struct vault_merger *merger = context;

	merger_scan(merger);
}

static void merger_inotify_read(void *context)
{
	struct vault_merger *merger = context;
	char buf[16384]
		__attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	struct merge_acct *acct;
	uint64_t id;
	ssize_t ret;

	ret = read(merger->inotify_fd, buf, sizeof(buf));
	if (ret < 0) {
		if (errno != EAGAIN && errno != EINTR) {
			log_error(NULL, "merge.inotify_failed", "error=%s",
				  log_value(0, strerror(errno)));
		}
		return;
	}
	for (char *p = buf; p < buf + ret;
	     p += sizeof(struct inotify_event) + ev->len) {
		ev = (const struct inotify_event *)p;
		if ((ev->mask & IN_Q_OVERFLOW) != 0) {
			merger_scan(merger);
			continue;
		}
		if (ev->wd == merger->accounts_wd) {
			/* A new account directory. */
			if (ev->len > 0 && (ev->mask & IN_ISDIR) != 0 &&
			    merger_parse_id(ev->name, &id))
				merger_add_account(merger, id);
			continue;
		}
		acct = merger_acct_by_wd(merger, ev->wd);
		if (acct == NULL)
			continue;
		if ((ev->mask & IN_IGNORED) != 0) {
			/* The directory went away (account removed). */
			acct->wd = -1;
			continue;
		}
		/* Our own spool.merging, store.db and blobs also change in
		   here: only the spool means new mail. The writer that
		   creates a spool writes through the spool.tmp-* name it
		   linked to "spool" (spool.c), so events carry that name. */
		if (ev->len > 0 && (strcmp(ev->name, "spool") == 0 ||
				    strncmp(ev->name, "spool.tmp-", 10) == 0))
			merger_mark(merger, acct);
	}
}

struct vault_merger *vault_merger_create(
	struct ioloop *ioloop, const char *data_dir, struct directory *dir,
	const uint8_t *master_key, unsigned int threads,
	vault_merge_changed_t *changed, void *context, const char **error_r)
{
	struct vault_merger *merger;

	merger = i_new(struct vault_merger, 1);
	merger->ioloop = ioloop;
	merger->data_dir = i_strdup(data_dir);
	merger->accounts_dir = i_strdup_printf("%s/accounts", data_dir);
	merger->dir = dir;
	merger->master_key = master_key;
	merger->changed = changed;
	merger->context = context;
	merger->accounts_wd = -1;
	merger->gc_interval_ms = VAULT_GC_INTERVAL_MSECS;
	atomic_init(&merger->stop, false);

	if (mkdir(merger->accounts_dir, 0700) < 0 && errno != EEXIST) {
		*error_r = "cannot create the accounts directory";
		goto fail;
	}
	merger->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (merger->inotify_fd < 0) {
		*error_r = "inotify_init1() failed";
		goto fail;
	}
	merger->accounts_wd =
		inotify_add_watch(merger->inotify_fd, merger->accounts_dir,
				  IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
	if (merger->accounts_wd < 0) {
		*error_r = "inotify_add_watch() on the accounts directory "
			   "failed";
		(void)close(merger->inotify_fd);
		goto fail;
	}
	merger->io = io_add(ioloop, merger->inotify_fd, IO_READ,
			    merger_inotify_read, merger);
	merger->workers = worker_pool_create(ioloop, threads == 0 ? 1 : threads,
					     "vault-merge");
	merger->sweep_to = timeout_add(ioloop, VAULT_MERGE_SWEEP_MSECS,
				       merger_sweep, merger);
	/* After the watch: a spool written between the scan and the watch
	   would otherwise wait for the sweep. */
	merger_scan(merger);
	return merger;
fail:
	i_free(merger->data_dir);
	i_free(merger->accounts_dir);
	i_free(merger);
	return NULL;
}

void vault_merger_set_keyring(struct vault_merger *merger,
			      struct vault_keyring *keyring)
{
	merger->keyring = keyring;
}

void vault_merger_set_usage_callback(struct vault_merger *merger,
				     vault_merge_usage_t *usage, void *context)
{
	merger->usage = usage;
	merger->usage_context = context;
}

void vault_merger_set_gc_interval(struct vault_merger *merger,
				  uint64_t interval_msecs)
{
	merger->gc_interval_ms = interval_msecs;
}

void vault_merger_schedule(struct vault_merger *merger, uint64_t account_id)
{
	merger_add_account(merger, account_id);
}

void vault_merger_stop(struct vault_merger *merger)
{
	if (merger == NULL)
		return;
	atomic_store(&merger->stop, true);
	timeout_remove(&merger->coalesce_to);
	timeout_remove(&merger->retry_to);
	timeout_remove(&merger->sweep_to);
}

unsigned int vault_merger_in_flight(const struct vault_merger *merger)
{
	return merger == NULL ? 0 : merger->in_flight;
}

void vault_merger_destroy(struct vault_merger **_merger)
{
	struct vault_merger *merger = *_merger;

	*_merger = NULL;
	if (merger == NULL)
		return;
	vault_merger_stop(merger);
	/* Runs the done() of every job, which reports its changes. */
	worker_pool_destroy(&merger->workers);
	io_remove(&merger->io);
	(void)close(merger->inotify_fd);
	i_free(merger->accts);
	i_free(merger->data_dir);
	i_free(merger->accounts_dir);
	i_free(merger);
}
