/* vault-rcpt.c - the vault's answers to IPC_VAULT_RCPT and IPC_VAULT_SENDER
   (vault-rcpt.h): directory resolution, account state and the quota, with
   the per-account store usage cache and the worker that fills it.

   Security stance: addresses come from the network through the front and
   are untrusted: they are only normalised and looked up. A usage load
   unwraps the account's data key on a worker thread (a stack struct wiped
   with account_keys_clear on every path), opens the store read-mostly for
   one SUM, and closes it; nothing but the byte count leaves the job. The
   reply to the front carries public keys only. */

#include "vault-rcpt.h"
#include "vault-keyring.h"
#include "account-keys.h"
#include "directory.h"
#include "ioloop.h"
#include "log.h"
#include "mail-address.h"
#include "pool.h"
#include "store.h"
#include "worker.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define VAULT_RCPT_USAGE_BUCKETS 1024
/* A failed usage load is tried again after this long (until then the
   store counts as empty: refusing mail for our own failure is worse). */
#define VAULT_RCPT_USAGE_RETRY_MSECS 60000
/* Requests waiting for usage loads; more get TEMPFAIL. */
#define VAULT_RCPT_MAX_WAITING 1024

enum usage_state {
	USAGE_LOADING,
	USAGE_KNOWN,
	USAGE_FAILED,
	/* The front changed the store (vault_rcpt_usage_stale): load again
	   at the next use. */
	USAGE_STALE,
};

struct usage_entry {
	struct usage_entry *next;
	uint64_t account_id;
	enum usage_state state;
	/* LOADING only: the store changed after the load began, so its
	   result may be older than the change and is not kept. */
	bool stale;
	uint64_t used;
	uint64_t failed_ms;
};

struct vault_rcpt_request {
	struct vault_rcpt_request *prev, *next;
	struct vault_rcpt *vr;
	char *address;
	uint64_t size_hint;
	vault_rcpt_callback_t *callback;
	void *context;
};

struct usage_job {
	struct vault_rcpt *vr;
	uint64_t account_id;
	bool zero_access;
	uint8_t public_key[ACCOUNT_PUBLIC_KEY_LEN];
	uint8_t wrapped_keys[ACCOUNT_WRAPPED_LEN];
	struct account_keys keys; /* zero-access: from the keyring */
	uint64_t used;
	int ret;
	char error[256];
};

struct vault_rcpt {
	struct ioloop *ioloop;
	char *data_dir;
	struct directory *dir;
	const uint8_t *master_key;
	struct vault_keyring *keyring;
	struct worker_pool *workers;
	pool_t pool; /* one resolution's memory */
	struct usage_entry *buckets[VAULT_RCPT_USAGE_BUCKETS];
	struct vault_rcpt_request *waiting;
	unsigned int waiting_count;
};

static struct usage_entry **usage_bucket(struct vault_rcpt *vr, uint64_t id)
{
	return &vr->buckets[(id * 0x9E3779B97F4A7C15ull) >> 54];
}

static struct usage_entry *usage_find(struct vault_rcpt *vr, uint64_t id)
{
	for (struct usage_entry *e = *usage_bucket(vr, id); e != NULL;
	     e = e->next) {
		if (e->account_id == id)
			return e;
	}
	return NULL;
}

static struct usage_entry *usage_get(struct vault_rcpt *vr, uint64_t id)
{
	struct usage_entry **bucket = usage_bucket(vr, id);
	struct usage_entry *e = usage_find(vr, id);

	if (e == NULL) {
		e = i_new(struct usage_entry, 1);
		e->account_id = id;
		e->next = *bucket;
		*bucket = e;
	}
	return e;
}

_Static_assert(VAULT_RCPT_USAGE_BUCKETS == 1u << 10,
	       "usage_bucket() takes the top 10 bits");

struct vault_rcpt *vault_rcpt_create(struct ioloop *ioloop,
				     const char *data_dir,
				     struct directory *dir,
				     const uint8_t *master_key,
				     struct vault_keyring *keyring)
{
	struct vault_rcpt *vr = i_new(struct vault_rcpt, 1);

	vr->ioloop = ioloop;
	vr->data_dir = i_strdup(data_dir);
	vr->dir = dir;
	vr->master_key = master_key;
	vr->keyring = keyring;
	vr->workers = worker_pool_create(ioloop, 1, "vault-usage");
	vr->pool = pool_create("vault-rcpt", 1024);
	return vr;
}

static void request_free(struct vault_rcpt_request *req)
{
	struct vault_rcpt *vr = req->vr;

	if (req->prev != NULL)
		req->prev->next = req->next;
	else
		vr->waiting = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	vr->waiting_count--;
	i_free(req->address);
	i_free(req);
}

static void reply_tempfail(const char *address, vault_rcpt_callback_t *cb,
			   void *context)
{
	const struct vault_rcpt_reply reply = {
		.result = IPC_RCPT_TEMPFAIL,
		.address = address,
	};

	cb(&reply, context);
}

void vault_rcpt_destroy(struct vault_rcpt **_vr)
{
	struct vault_rcpt *vr = *_vr;

	*_vr = NULL;
	if (vr == NULL)
		return;
	/* Its done() may answer waiting requests; the rest fail below. */
	worker_pool_destroy(&vr->workers);
	while (vr->waiting != NULL) {
		struct vault_rcpt_request *req = vr->waiting;

		if (req->callback != NULL)
			reply_tempfail(req->address, req->callback,
				       req->context);
		request_free(req);
	}
	for (unsigned int i = 0; i < VAULT_RCPT_USAGE_BUCKETS; i++) {
		while (vr->buckets[i] != NULL) {
			struct usage_entry *e = vr->buckets[i];

			vr->buckets[i] = e->next;
			i_free(e);
		}
	}
	pool_unref(&vr->pool);
	i_free(vr->data_dir);
	i_free(vr);
}

/* ---- usage ---- */

/* Bytes in the account's spool files (acknowledged, not merged yet). */
static uint64_t spool_bytes(struct vault_rcpt *vr, uint64_t id)
{
	static const char *const names[] = { "spool", "spool.merging" };
	uint64_t total = 0;
	char path[4096];
	struct stat st;

	for (unsigned int i = 0; i < N_ELEMENTS(names); i++) {
		snprintf(path, sizeof(path), "%s/accounts/%" PRIu64 "/%s",
			 vr->data_dir, id, names[i]);
		if (stat(path, &st) == 0 && st.st_size > 0)
			total += (uint64_t)st.st_size;
	}
	return total;
}

static void usage_work(void *context)
{
	struct usage_job *job = context;
	struct vault_rcpt *vr = job->vr;
	struct account_keys keys;
	struct store *store;
	const char *error;
	char path[4096];
	struct stat st;

	job->ret = -1;
	snprintf(path, sizeof(path), "%s/accounts/%" PRIu64 "/store.db",
		 vr->data_dir, job->account_id);
	if (stat(path, &st) < 0 && errno == ENOENT) {
		/* Never merged into: empty (opening would create it, which
		   is the merge's job). */
		job->used = 0;
		job->ret = 0;
		return;
	}
	if (job->zero_access)
		keys = job->keys;
	else if (account_keys_unwrap(vr->master_key, job->account_id,
				     job->public_key, job->wrapped_keys,
				     sizeof(job->wrapped_keys), &keys) < 0) {
		snprintf(job->error, sizeof(job->error),
			 "the account keys do not unwrap");
		return;
	}
	store = store_open(vr->data_dir, job->account_id, keys.data_key,
			   &error);
	account_keys_clear(&keys);
	if (store == NULL) {
		snprintf(job->error, sizeof(job->error), "store: %s", error);
		return;
	}
	if (store_quota_usage(store, &job->used, &error) < 0)
		snprintf(job->error, sizeof(job->error), "usage: %s", error);
	else
		job->ret = 0;
	store_close(&store);
}

static bool request_run(struct vault_rcpt_request *req);

static void usage_done(void *context)
{
	struct usage_job *job = context;
	struct vault_rcpt *vr = job->vr;
	struct usage_entry *e = usage_get(vr, job->account_id);
	struct vault_rcpt_request *req, *next;

	if (e->state == USAGE_LOADING && e->stale) {
		/* Changed meanwhile: the waiting requests start a new load. */
		e->stale = false;
		e->state = USAGE_STALE;
	} else if (e->state == USAGE_LOADING) {
		/* A merge may have set it meanwhile: that one is newer. */
		if (job->ret == 0) {
			e->state = USAGE_KNOWN;
			e->used = job->used;
		} else {
			log_warning(NULL, "rcpt.usage_failed",
				    "account=%" PRIu64 " error=%s",
				    job->account_id, log_value(0, job->error));
			e->state = USAGE_FAILED;
			e->used = 0;
			e->failed_ms = ioloop_now_ms(vr->ioloop);
		}
	}
	account_keys_clear(&job->keys);
	safe_memset0(job, sizeof(*job));
	i_free(job);
	for (req = vr->waiting; req != NULL; req = next) {
		next = req->next;
		if (request_run(req))
			request_free(req);
	}
}

/* The store usage of account if known now (1), or 0 after starting a load
   (the request must wait). */
static int usage_lookup(struct vault_rcpt *vr,
			const struct directory_account *da, uint64_t *used_r)
{
	struct usage_entry *e = usage_find(vr, da->id);
	struct usage_job *job;

	if (e != NULL && e->state == USAGE_KNOWN) {
		*used_r = e->used;
		return 1;
	}
	if (e != NULL && e->state == USAGE_LOADING)
		return 0;
	if (e != NULL && e->state == USAGE_FAILED &&
	    ioloop_now_ms(vr->ioloop) - e->failed_ms <
		    VAULT_RCPT_USAGE_RETRY_MSECS) {
		*used_r = 0;
		return 1;
	}
	job = i_new(struct usage_job, 1);
	if (da->zero_access) {
		if (vr->keyring == NULL ||
		    !vault_keyring_get(vr->keyring, da->id,
				       ioloop_now_ms(vr->ioloop), &job->keys)) {
			/* Locked: only its spool counts (see the header). */
			i_free(job);
			*used_r = 0;
			return 1;
		}
		job->zero_access = true;
	}
	job->vr = vr;
	job->account_id = da->id;
	memcpy(job->public_key, da->public_key, sizeof(job->public_key));
	memcpy(job->wrapped_keys, da->wrapped_keys, sizeof(job->wrapped_keys));
	e = usage_get(vr, da->id);
	e->state = USAGE_LOADING;
	e->stale = false;
	worker_pool_submit(vr->workers, usage_work, usage_done, job);
	return 0;
}

void vault_rcpt_usage_set(struct vault_rcpt *vr, uint64_t account_id,
			  uint64_t used)
{
	struct usage_entry *e = usage_get(vr, account_id);

	/* After a change by the front the merge's figure may be the older
	   one: only a load decides then. */
	if (e->state == USAGE_STALE || (e->state == USAGE_LOADING && e->stale))
		return;
	/* A load still in flight finds KNOWN and drops its own, older
	   result (usage_done). */
	e->state = USAGE_KNOWN;
	e->used = used;
}

void vault_rcpt_usage_stale(struct vault_rcpt *vr, uint64_t account_id)
{
	struct usage_entry *e = usage_find(vr, account_id);

	/* Nothing cached: the first use loads it anyway. No entry is made
	   here, so the notice costs no memory whatever id it names. */
	if (e == NULL)
		return;
	if (e->state == USAGE_LOADING)
		e->stale = true;
	else
		e->state = USAGE_STALE;
}

bool vault_rcpt_usage_get(struct vault_rcpt *vr, uint64_t account_id,
			  uint64_t *used_r)
{
	struct usage_entry *e = usage_find(vr, account_id);

	if (e == NULL || e->state != USAGE_KNOWN)
		return false;
	*used_r = e->used;
	return true;
}

/* ---- IPC_VAULT_RCPT ---- */

/* Fills reply for req. Returns 1 when answered, 0 when a usage load must
   finish first, -1 on a database error (TEMPFAIL). */
static int rcpt_resolve(struct vault_rcpt *vr, const char *address,
			uint64_t size_hint, struct vault_rcpt_reply *reply)
{
	struct directory_recipients rcpts;
	struct directory_account da;
	struct vault_rcpt_target *targets;
	const char *error, *normalised;
	unsigned int n = 0, disabled = 0;
	bool waiting = false;
	int ret;

	memset(reply, 0, sizeof(*reply));
	normalised =
		mail_address_normalize(vr->pool, address, NULL, NULL, &error);
	reply->address =
		normalised != NULL ? normalised : p_strdup(vr->pool, address);
	switch (directory_resolve(vr->dir, address, &rcpts, &error)) {
	case DIRECTORY_RESOLVE_NOT_LOCAL:
		reply->result = IPC_RCPT_NOT_LOCAL;
		return 1;
	case DIRECTORY_RESOLVE_UNKNOWN:
		reply->result = IPC_RCPT_UNKNOWN;
		return 1;
	case DIRECTORY_RESOLVE_ERROR:
		log_error(NULL, "rcpt.resolve_failed", "rcpt=%s error=%s",
			  log_value(0, reply->address), log_value(1, error));
		return -1;
	case DIRECTORY_RESOLVE_OK:
		break;
	}
	if (rcpts.account_count > IPC_RCPT_MAX_LOCALS ||
	    rcpts.remote_count > IPC_RCPT_MAX_REMOTES) {
		log_error(NULL, "rcpt.too_many_targets",
			  "rcpt=%s locals=%u remotes=%u",
			  log_value(0, reply->address), rcpts.account_count,
			  rcpts.remote_count);
		return -1;
	}
	/* Copied: account lookups below reuse the directory pool. */
	uint64_t *ids = p_new(vr->pool, uint64_t, rcpts.account_count + 1);
	const char **remote =
		p_new(vr->pool, const char *, rcpts.remote_count + 1);

	if (rcpts.account_count > 0) {
		/* (A forward-only alias has no account array at all.) */
		memcpy(ids, rcpts.account_ids,
		       sizeof(*ids) * (size_t)rcpts.account_count);
	}
	for (unsigned int i = 0; i < rcpts.remote_count; i++)
		remote[i] = p_strdup(vr->pool, rcpts.remote[i]);
	reply->remote = remote;
	reply->remote_count = rcpts.remote_count;

	targets = p_new(vr->pool, struct vault_rcpt_target,
			rcpts.account_count + 1);
	for (unsigned int i = 0; i < rcpts.account_count; i++) {
		uint64_t used = 0, quota;

		ret = directory_account_lookup_id(vr->dir, ids[i], &da, &error);
		if (ret < 0) {
			log_error(NULL, "rcpt.db_error",
				  "account=%" PRIu64 " error=%s", ids[i],
				  log_value(0, error));
			return -1;
		}
		if (ret == 0)
			continue; /* deleted meanwhile */
		if (da.disabled) {
			disabled++;
			continue;
		}
		quota = da.quota_bytes;
		if (quota != 0 && !reply->quota_permanent) {
			uint64_t size = size_hint == 0 ? 1 : size_hint;

			if (size > quota) {
				/* RFC 1870 6 / RFC 3463 3.3 X.2.2: this
				   message can never fit. */
				reply->result = IPC_RCPT_OVER_QUOTA;
				reply->quota_permanent = true;
			} else if (usage_lookup(vr, &da, &used) == 0) {
				waiting = true;
			} else if (used + spool_bytes(vr, da.id) + size >
				   quota) {
				reply->result = IPC_RCPT_OVER_QUOTA;
			}
		}
		targets[n].account_id = da.id;
		memcpy(targets[n].public_key, da.public_key,
		       sizeof(targets[n].public_key));
		n++;
	}
	if (waiting && !reply->quota_permanent)
		return 0;
	if (reply->result == IPC_RCPT_OVER_QUOTA) {
		reply->remote_count = 0;
		return 1;
	}
	if (n == 0 && reply->remote_count == 0) {
		reply->result =
			disabled > 0 ? IPC_RCPT_DISABLED : IPC_RCPT_UNKNOWN;
		reply->remote_count = 0;
		return 1;
	}
	reply->result = IPC_RCPT_OK;
	reply->locals = targets;
	reply->local_count = n;
	return 1;
}

/* Runs a waiting request; true if it was answered (or aborted). */
static bool request_run(struct vault_rcpt_request *req)
{
	struct vault_rcpt *vr = req->vr;
	struct vault_rcpt_reply reply;
	int ret;

	if (req->callback == NULL)
		return true;
	ret = rcpt_resolve(vr, req->address, req->size_hint, &reply);
	if (ret == 0) {
		pool_clear(directory_pool(vr->dir));
		pool_clear(vr->pool);
		return false;
	}
	if (ret < 0)
		reply_tempfail(req->address, req->callback, req->context);
	else
		req->callback(&reply, req->context);
	pool_clear(directory_pool(vr->dir));
	pool_clear(vr->pool);
	return true;
}

struct vault_rcpt_request *vault_rcpt_resolve(struct vault_rcpt *vr,
					      const char *address,
					      uint64_t size_hint,
					      vault_rcpt_callback_t *callback,
					      void *context)
{
	struct vault_rcpt_request *req;
	struct vault_rcpt_reply reply;
	int ret;

	ret = rcpt_resolve(vr, address, size_hint, &reply);
	if (ret != 0 || vr->waiting_count >= VAULT_RCPT_MAX_WAITING) {
		if (ret > 0)
			callback(&reply, context);
		else
			reply_tempfail(address, callback, context);
		pool_clear(directory_pool(vr->dir));
		pool_clear(vr->pool);
		return NULL;
	}
	pool_clear(directory_pool(vr->dir));
	pool_clear(vr->pool);
	req = i_new(struct vault_rcpt_request, 1);
	req->vr = vr;
	req->address = i_strdup(address);
	req->size_hint = size_hint;
	req->callback = callback;
	req->context = context;
	req->next = vr->waiting;
	if (vr->waiting != NULL)
		vr->waiting->prev = req;
	vr->waiting = req;
	vr->waiting_count++;
	return req;
}

void vault_rcpt_request_abort(struct vault_rcpt_request **_req)
{
	struct vault_rcpt_request *req = *_req;

	*_req = NULL;
	if (req != NULL)
		req->callback = NULL; /* freed when its loads finish */
}

unsigned int vault_rcpt_in_flight(const struct vault_rcpt *vr)
{
	return vr->waiting_count;
}

/* ---- IPC_VAULT_SENDER ---- */

/* True if name is an alias of domain (exactly). */
static int alias_exists(struct vault_rcpt *vr, const char *domain,
			const char *name)
{
	struct directory_alias *aliases;
	unsigned int count;
	const char *error;

	if (directory_alias_list(vr->dir, domain, &aliases, &count, &error) <
	    0) {
		log_error(NULL, "sender.db_error", "error=%s",
			  log_value(0, error));
		return -1;
	}
	for (unsigned int i = 0; i < count; i++) {
		if (strcmp(aliases[i].address, name) == 0)
			return 1;
	}
	return 0;
}

static enum vault_sender_result sender_owned(struct vault_rcpt *vr,
					     uint64_t account_id,
					     const char *address)
{
	struct directory_account da;
	struct directory_recipients rcpts;
	const char *error, *normalised, *base = NULL;
	char *local, *domain;
	size_t base_len;
	int ret;

	normalised = mail_address_normalize(vr->pool, address, &local, &domain,
					    &error);
	if (normalised == NULL)
		return VAULT_SENDER_NOT_OWNED;
	ret = directory_account_lookup_id(vr->dir, account_id, &da, &error);
	if (ret <= 0) {
		if (ret < 0)
			log_error(NULL, "sender.db_error",
				  "account=%" PRIu64 " error=%s", account_id,
				  log_value(0, error));
		return ret < 0 ? VAULT_SENDER_TEMPFAIL : VAULT_SENDER_NOT_OWNED;
	}
	if (strcmp(da.address, normalised) == 0)
		return VAULT_SENDER_OWNED;
	/* RFC 5233: "user+detail" is the user's. */
	if (mail_local_strip_tag(local, &base_len)) {
		base = p_strdup_printf(vr->pool, "%.*s@%s", (int)base_len,
				       local, domain);
		if (strcmp(da.address, base) == 0)
			return VAULT_SENDER_OWNED;
	}
	/* An alias (not a catch-all) of ours that reaches the account. */
	if (!directory_domain_exists(vr->dir, domain))
		return VAULT_SENDER_NOT_OWNED;
	ret = alias_exists(vr, domain, normalised);
	if (ret == 0 && base != NULL)
		ret = alias_exists(vr, domain, base);
	if (ret <= 0)
		return ret < 0 ? VAULT_SENDER_TEMPFAIL : VAULT_SENDER_NOT_OWNED;
	switch (directory_resolve(vr->dir, normalised, &rcpts, &error)) {
	case DIRECTORY_RESOLVE_OK:
		break;
	case DIRECTORY_RESOLVE_ERROR:
		return VAULT_SENDER_TEMPFAIL;
	default:
		return VAULT_SENDER_NOT_OWNED;
	}
	for (unsigned int i = 0; i < rcpts.account_count; i++) {
		if (rcpts.account_ids[i] == account_id)
			return VAULT_SENDER_OWNED;
	}
	return VAULT_SENDER_NOT_OWNED;
}

enum vault_sender_result vault_rcpt_sender_owned(struct vault_rcpt *vr,
						 uint64_t account_id,
						 const char *address)
{
	enum vault_sender_result result;

	result = sender_owned(vr, account_id, address);
	pool_clear(directory_pool(vr->dir));
	pool_clear(vr->pool);
	return result;
}
