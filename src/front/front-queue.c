/* front-queue.c - the outbound queue runner (front-queue.h): an index of
   DATA/queue/ with each message's next due time, a dispatcher that groups
   a message's due recipients by destination domain (one transaction per
   message and domain, all its recipients in it), handing them to the
   non-blocking SMTP client of front-queue-smtp.c (connection reuse, a
   per-destination connection limit). Results are applied to the
   queue's state files at once (a recipient is DELIVERED only after the
   remote's final 250 and a durable state save); permanent failures and
   expiry produce one DSN per failure event (queue-dsn.h), enqueued with
   the null sender.

   Security stance: everything the remote says is untrusted (smtp-reply.c
   bounds and parses it; replies are stored on one line). STARTTLS is
   opportunistic (no certificate check yet; the mail-auth issue adds
   MTA-STS and DANE) except for REQUIRETLS messages (RFC 8689), which are
   never sent in the clear. After our STARTTLS and its 220, bytes the
   server already sent are discarded (stream_start_tls_client; RFC 3207
   6), and we stop reading the buffer at that reply, so an injected reply
   can never be taken for the answer to our next EHLO.

   Exactly-once DSNs: a failed recipient is first saved as FAILED with
   dsn=NEEDED, then its DSN is enqueued with the envid
   "marmot-dsn;<id>;<hash of the NEEDED recipients and their attempts>",
   then dsn=DONE is saved. After a crash in between, the index (which
   knows every queued DSN's envid) tells whether the DSN is already
   queued, and such a message settles its DSN before any new attempt.
   The null sender never gets DSNs, so this envid is never sent anywhere
   (ENVID is only passed on for non-null senders).

   Each due recipient is first resolved through the vault: local ones (a
   DSN to a local sender, above all) are committed into the spools with
   front_delivery_commit, only non-local ones go out.

   Limitations (documented in doc/architecture.md): state saves (an fsync
   each) run in the loop thread; no success DSNs; no client PIPELINING. */

#include "lib.h"
#include "front-queue.h"
#include "front-queue-private.h"
#include "front-delivery.h"
#include "front-private.h"
#include "ioloop.h"
#include "log.h"
#include "queue.h"
#include "queue-dsn.h"
#include "tls.h"
#ifdef MARMOT_HAVE_DNS
#include "dns.h"
#include "front-tlspolicy.h"
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>

#define FQ_TICK_MSECS 1000
/* Messages loaded per dispatch. */
#define FQ_DISPATCH_MAX 200
#define FQ_DSN_ENVID_PREFIX "marmot-dsn;"
#define FQ_RELAY_KEY "[relay]"

struct fq_runner *fq;
static struct fq_msg *fq_msgs;

static unsigned int fq_msg_start(struct fq_msg *m, const bool *remote,
				 bool flush, int64_t now);
static void fq_added_dispatch(void *context);

static int64_t fq_now(void)
{
	return (int64_t)time(NULL);
}

/* The current time in whole seconds, rounded up. */
static int64_t fq_now_ceil(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec + (ts.tv_nsec > 0 ? 1 : 0);
}

/* ---- the index ---- */

static struct fq_entry *fq_entry_find(const char *id)
{
	unsigned int lo = 0, hi = fq->entry_count;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;
		int cmp = strcmp(fq->entries[mid].id, id);

		if (cmp == 0)
			return &fq->entries[mid];
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static struct fq_entry *fq_entry_add(const char *id)
{
	unsigned int pos = fq->entry_count;

	if (fq->entry_count == fq->entry_alloc) {
		fq->entry_alloc =
			fq->entry_alloc == 0 ? 64 : fq->entry_alloc * 2;
		fq->entries = i_realloc(
			fq->entries,
			i_size_mul(fq->entry_alloc, sizeof(*fq->entries)));
	}
	/* Ids are mostly appended in order (they start with the time). */
	while (pos > 0 && strcmp(fq->entries[pos - 1].id, id) > 0)
		pos--;
	memmove(&fq->entries[pos + 1], &fq->entries[pos],
		(fq->entry_count - pos) * sizeof(*fq->entries));
	memset(&fq->entries[pos], 0, sizeof(fq->entries[pos]));
	memcpy(fq->entries[pos].id, id, QUEUE_ID_LEN + 1);
	fq->entry_count++;
	return &fq->entries[pos];
}

static void fq_entry_remove(const char *id)
{
	struct fq_entry *e = fq_entry_find(id);
	unsigned int pos;

	if (e == NULL)
		return;
	pos = (unsigned int)(e - fq->entries);
	i_free(e->dsn_key);
	memmove(&fq->entries[pos], &fq->entries[pos + 1],
		(fq->entry_count - pos - 1) * sizeof(*fq->entries));
	fq->entry_count--;
}

static bool fq_dsn_queued(const char *key)
{
	for (unsigned int i = 0; i < fq->entry_count; i++) {
		if (fq->entries[i].dsn_key != NULL &&
		    strcmp(fq->entries[i].dsn_key, key) == 0)
			return true;
	}
	return false;
}

/* The next time msg needs the runner (INT64_MAX: never by itself). */
static int64_t fq_msg_due(const struct queue_message *msg)
{
	int64_t due = INT64_MAX;

	if (msg->held)
		return INT64_MAX;
	for (unsigned int i = 0; i < msg->env.rcpt_count; i++) {
		const struct queue_rcpt_state *st = &msg->states[i];

		if (st->dsn == QUEUE_DSN_NEEDED)
			return 0;
		if (st->status == QUEUE_RCPT_PENDING && st->next_attempt < due)
			due = st->next_attempt;
	}
	/* RFC 4865 FUTURERELEASE: nothing leaves before hold_until. */
	if (due != INT64_MAX && msg->env.hold_until > due)
		due = msg->env.hold_until;
	return due;
}

static void fq_entry_update(struct fq_entry *e, const struct queue_message *msg)
{
	e->due = fq_msg_due(msg);
	if (e->dsn_key == NULL && msg->env.sender[0] == '\0' &&
	    msg->env.envid != NULL &&
	    strncmp(msg->env.envid, FQ_DSN_ENVID_PREFIX,
		    strlen(FQ_DSN_ENVID_PREFIX)) == 0)
		e->dsn_key =
			i_strdup(msg->env.envid + strlen(FQ_DSN_ENVID_PREFIX));
}

static void fq_scan(void)
{
	char(*ids)[QUEUE_ID_LEN + 1];
	unsigned int count, i;
	const char *error;

	if (queue_list(fq->queue, &ids, &count, &error) < 0) {
		log_error(NULL, "queue.scan.failed", "error=%s",
			  log_value(0, error));
		return;
	}
	for (i = 0; i < fq->entry_count; i++)
		fq->entries[i].seen = false;
	for (i = 0; i < count; i++) {
		struct fq_entry *e = fq_entry_find(ids[i]);
		struct queue_message *msg;
		int ret;

		if (e != NULL) {
			e->seen = true;
			continue;
		}
		e = fq_entry_add(ids[i]);
		e->seen = true;
		ret = queue_load(fq->queue, e->id, false, &msg, &error);
		if (ret < 0) {
			log_error(NULL, "queue.message.damaged",
				  "id=%s error=%s", e->id, log_value(0, error));
			e->broken = true;
			e->due = INT64_MAX;
			continue;
		}
		if (ret == 0) {
			e->seen = false;
			continue;
		}
		fq_entry_update(e, msg);
		queue_message_free(&msg);
	}
	i_free(ids);
	/* Entries whose files are gone (deleted by hand). */
	for (i = fq->entry_count; i > 0; i--) {
		if (!fq->entries[i - 1].seen && !fq->entries[i - 1].busy)
			fq_entry_remove(fq->entries[i - 1].id);
	}
}

/* ---- results ---- */

static unsigned int fq_backoff(uint32_t attempts)
{
	uint64_t delay = fq->front->set->queue_retry_min;

	/* Exponential backoff: retry_min, doubling per attempt, capped. */
	for (uint32_t i = 1; i < attempts && delay < UINT32_MAX; i++)
		delay *= 2;
	if (delay > fq->front->set->queue_retry_max)
		delay = fq->front->set->queue_retry_max;
	return (unsigned int)delay;
}

static const char *fq_domain_of(const char *address)
{
	const char *at = strrchr(address, '@');

	return at == NULL ? "" : at + 1;
}

/* The identity of one failure event: the message id and a hash of the
   recipients whose DSN is NEEDED with their attempt counts. Both are in
   the state saved before the DSN is enqueued, so after a crash the same
   event gives the same key (and nothing else does: a recipient fails
   once). */
static void fq_dsn_key(const struct queue_message *msg, char *key,
		       size_t key_size)
{
	crypto_generichash_state state;
	uint8_t hash[16];
	char hex[sizeof(hash) * 2 + 1];

	crypto_generichash_init(&state, NULL, 0, sizeof(hash));
	for (unsigned int i = 0; i < msg->env.rcpt_count; i++) {
		char item[32];
		int len;

		if (msg->states[i].dsn != QUEUE_DSN_NEEDED)
			continue;
		len = snprintf(item, sizeof(item), "%u:%u;", i,
			       msg->states[i].attempts);
		crypto_generichash_update(&state, (const uint8_t *)item,
					  (size_t)len);
	}
	crypto_generichash_final(&state, hash, sizeof(hash));
	(void)sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	snprintf(key, key_size, "%s;%s", msg->id, hex);
}

/* The DSN recipients of msg: those whose dsn is NEEDED (delayed false)
   or whose delay_pending is set (delayed true, which clears it). Fills
   rcpts (and status, their storage) and returns their number. */
static unsigned int fq_dsn_rcpts(struct queue_message *msg, bool delayed,
				 struct queue_dsn_rcpt *rcpts,
				 char (*status)[16])
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < msg->env.rcpt_count; i++) {
		struct queue_rcpt_state *st = &msg->states[i];

		if (delayed ? !st->delay_pending : st->dsn != QUEUE_DSN_NEEDED)
			continue;
		if (delayed)
			st->delay_pending = false;
		rcpts[n].address = msg->env.rcpts[i].address;
		rcpts[n].orcpt = msg->env.rcpts[i].orcpt;
		rcpts[n].action = delayed ? "delayed" : "failed";
		rcpts[n].status = queue_dsn_status_of_reply(
			st->last_reply, status[n], sizeof(status[n]));
		rcpts[n].remote_mta = st->remote_host;
		rcpts[n].diagnostic = st->last_reply;
		rcpts[n].last_attempt = st->last_attempt;
		n++;
	}
	return n;
}

/* Builds the DSN for rcpts about msg and enqueues it to msg's sender with
   the null reverse-path (RFC 5321 4.5.5 / RFC 3464 2: so it can never
   cause another DSN) and envid (NULL: none). Returns 0 with id_r, or
   -1. */
static int fq_dsn_enqueue(const struct queue_message *msg,
			  const struct queue_dsn_rcpt *rcpts, unsigned int n,
			  const char *envid, char id_r[QUEUE_ID_LEN + 1],
			  const char **error_r)
{
	struct queue_rcpt to = { msg->env.sender, NULL, QUEUE_NOTIFY_NEVER };
	struct queue_envelope env;
	struct queue_dsn dsn;
	struct buf out = BUF_INIT;
	int ret;

	memset(&dsn, 0, sizeof(dsn));
	dsn.reporting_mta = fq->front->set->hostname;
	dsn.sender = msg->env.sender;
	dsn.envid = msg->env.envid;
	dsn.arrival = msg->queued;
	dsn.rcpts = rcpts;
	dsn.rcpt_count = n;
	dsn.original = msg->body;
	dsn.original_len = msg->body_len;
	/* RFC 3461 4.3: RET is about failure DSNs; others carry the
	   headers. */
	dsn.ret_full =
		msg->env.ret_full && strcmp(rcpts[0].action, "failed") == 0;
	queue_dsn_build(&dsn, fq_now(), &out);
	memset(&env, 0, sizeof(env));
	env.sender = "";
	env.rcpts = &to;
	env.rcpt_count = 1;
	env.envid = envid;
	ret = queue_enqueue(fq->queue, &env, buf_span(&out).p, out.used, id_r,
			    error_r);
	buf_free_secure(&out);
	if (ret == 0)
		fq_entry_add(id_r)->due = 0;
	return ret;
}

/* Enqueues one DSN for the NEEDED recipients of msg and marks them DONE
   in memory. Returns 0 or -1. */
static int fq_send_dsn(struct queue_message *msg, const char **error_r)
{
	struct queue_dsn_rcpt *rcpts =
		i_new(struct queue_dsn_rcpt, msg->env.rcpt_count);
	char(*status)[16] = i_malloc(sizeof(*status) * msg->env.rcpt_count);
	char key[QUEUE_ID_LEN + 48], id[QUEUE_ID_LEN + 1];
	unsigned int n;
	int ret = 0;

	i_assert(msg->body != NULL);
	fq_dsn_key(msg, key, sizeof(key));
	n = fq_dsn_rcpts(msg, false, rcpts, status);
	if (n > 0 && fq_dsn_queued(key)) {
		/* Queued before a crash, DONE not saved: do not repeat. */
		log_info(NULL, "queue.dsn.recovered", "id=%s", msg->id);
	} else if (n > 0) {
		char *envid = i_strdup_printf(FQ_DSN_ENVID_PREFIX "%s", key);

		ret = fq_dsn_enqueue(msg, rcpts, n, envid, id, error_r);
		if (ret == 0) {
			fq_entry_find(id)->dsn_key = i_strdup(key);
			log_info(NULL, "queue.dsn.queued",
				 "id=%s dsn=%s rcpts=%u", msg->id, id, n);
		}
		i_free(envid);
	}
	i_free(rcpts);
	i_free(status);
	if (ret < 0)
		return -1;
	for (unsigned int i = 0; i < msg->env.rcpt_count; i++) {
		if (msg->states[i].dsn == QUEUE_DSN_NEEDED)
			msg->states[i].dsn = QUEUE_DSN_DONE;
	}
	return 0;
}

/* Enqueues one "delayed" DSN for the recipients marked delay_pending
   (their delay_notified is already durable: a crash before this loses
   the warning, never repeats it). */
static void fq_send_delay_dsn(struct queue_message *msg)
{
	struct queue_dsn_rcpt *rcpts =
		i_new(struct queue_dsn_rcpt, msg->env.rcpt_count);
	char(*status)[16] = i_malloc(sizeof(*status) * msg->env.rcpt_count);
	char id[QUEUE_ID_LEN + 1];
	const char *error;
	unsigned int n = fq_dsn_rcpts(msg, true, rcpts, status);

	if (n > 0 && msg->body != NULL) {
		if (fq_dsn_enqueue(msg, rcpts, n, NULL, id, &error) < 0)
			log_error(NULL, "queue.dsn.failed", "id=%s error=%s",
				  msg->id, log_value(0, error));
		else
			log_info(NULL, "queue.dsn.delay_queued",
				 "id=%s dsn=%s rcpts=%u", msg->id, id, n);
	}
	i_free(rcpts);
	i_free(status);
}

/* Saves msg's state; then, if DSNs are owed, enqueues them and saves
   again; deletes the message when nothing is left to do. Updates the
   index entry. */
static void fq_msg_commit(struct queue_message *msg, bool deleted)
{
	struct fq_entry *e = fq_entry_find(msg->id);
	const char *error;
	bool gone = deleted, dsn_needed = false;

	if (!gone && queue_state_save(fq->queue, msg, &gone, &error) < 0) {
		/* The next attempt repeats what this one did: at-least-
		   once, never lost. */
		log_error(NULL, "queue.state.failed", "id=%s error=%s", msg->id,
			  log_value(0, error));
		if (e != NULL)
			e->due = fq_now() + 60;
		return;
	}
	if (!gone)
		fq_send_delay_dsn(msg);
	e = fq_entry_find(msg->id); /* the array may have moved */
	for (unsigned int i = 0; i < msg->env.rcpt_count && !gone; i++) {
		if (msg->states[i].dsn == QUEUE_DSN_NEEDED)
			dsn_needed = true;
	}
	if (dsn_needed) {
		if (fq_send_dsn(msg, &error) < 0 ||
		    queue_state_save(fq->queue, msg, &gone, &error) < 0) {
			log_error(NULL, "queue.dsn.failed", "id=%s error=%s",
				  msg->id, log_value(0, error));
			if (e != NULL)
				e->due = fq_now() + 60;
			return;
		}
		e = fq_entry_find(msg->id); /* the array may have moved */
	}
	if (gone || queue_message_done(msg)) {
		if (!gone && queue_delete(fq->queue, msg->id, &error) < 0) {
			log_error(NULL, "queue.delete.failed", "id=%s error=%s",
				  msg->id, log_value(0, error));
			if (e != NULL)
				e->due = INT64_MAX;
			return;
		}
		if (deleted && queue_delete(fq->queue, msg->id, &error) < 0)
			log_error(NULL, "queue.delete.failed", "id=%s error=%s",
				  msg->id, log_value(0, error));
		log_info(NULL, "queue.removed", "id=%s reason=%s", msg->id,
			 deleted ? "deleted"
			 : gone  ? "gone"
				 : "done");
		fq_entry_remove(msg->id);
		return;
	}
	if (e != NULL)
		fq_entry_update(e, msg);
}

/* Applies one recipient's outcome to the loaded message. */
static void fq_rcpt_result(struct queue_message *msg, unsigned int idx,
			   enum fq_result res, const char *reply,
			   const char *host, int64_t now)
{
	struct queue_rcpt_state *st = &msg->states[idx];
	const char *address = msg->env.rcpts[idx].address;

	st->attempts++;
	st->last_attempt = now;
	queue_message_set_reply(msg, idx, reply, host);
	switch (res) {
	case FQ_RESULT_OK:
		st->status = QUEUE_RCPT_DELIVERED;
		log_info(NULL, "queue.delivered",
			 "id=%s to=%s host=%s reply=%s", msg->id,
			 log_value(0, address), log_value(1, host),
			 log_value(2, reply));
		return;
	case FQ_RESULT_PERM:
		break;
	case FQ_RESULT_NONE:
	case FQ_RESULT_TEMP:
		if (now - msg->queued < fq->front->set->queue_max_age) {
			/* Rounded up, so the gap is never shorter than the
			   backoff (the dispatcher compares whole seconds). */
			st->next_attempt =
				fq_now_ceil() + fq_backoff(st->attempts);
			/* RFC 3461 4.1: a "delayed" DSN only when NOTIFY
			   asked for DELAY, once, when the message has waited
			   longer than the longest retry interval. */
			if (!st->delay_notified &&
			    now - msg->queued >=
				    fq->front->set->queue_retry_max &&
			    queue_dsn_wanted(msg->env.sender,
					     msg->env.rcpts[idx].notify,
					     "delayed")) {
				st->delay_notified = true;
				st->delay_pending = true;
			}
			log_info(NULL, "queue.deferred",
				 "id=%s to=%s attempts=%u retry_in=%lld "
				 "reply=%s",
				 msg->id, log_value(0, address), st->attempts,
				 (long long)(st->next_attempt - now),
				 log_value(1, reply));
			return;
		}
		/* RFC 5321 4.5.4.1: give up after queue_max_age; RFC 3463
		   4.4.7 "delivery time expired" becomes the DSN's Status. */
		{
			char *text = i_strdup_printf(
				"451 4.4.7 delivery time expired; last "
				"error: %s",
				reply);

			queue_message_set_reply(msg, idx, text, NULL);
			i_free(text);
		}
		break;
	}
	st->status = QUEUE_RCPT_FAILED;
	st->dsn = queue_dsn_wanted(msg->env.sender, msg->env.rcpts[idx].notify,
				   "failed")
			  ? QUEUE_DSN_NEEDED
			  : QUEUE_DSN_DONE;
	log_info(NULL, "queue.failed", "id=%s to=%s host=%s reply=%s dsn=%s",
		 msg->id, log_value(0, address), log_value(1, host),
		 log_value(2, st->last_reply),
		 st->dsn == QUEUE_DSN_NEEDED ? "yes" : "no");
}

static void fq_msg_unref_job(struct fq_msg *m)
{
	i_assert(m->jobs > 0);
	if (--m->jobs > 0)
		return;
	if (m->hold_request >= 0)
		m->msg->held = m->hold_request == 1;
	{
		struct fq_entry *e = fq_entry_find(m->id);
		bool dsn_needed = false;

		if (e != NULL)
			e->busy = false;
		for (unsigned int i = 0; i < m->msg->env.rcpt_count; i++) {
			if (m->msg->states[i].dsn == QUEUE_DSN_NEEDED)
				dsn_needed = true;
		}
		/* Only what changed is written: a message whose
		   destinations were all busy costs no fsync. */
		if (m->started > 0 || dsn_needed || m->deleted ||
		    m->hold_request >= 0 || queue_message_done(m->msg))
			fq_msg_commit(m->msg, m->deleted);
		else if (e != NULL) {
			fq_entry_update(e, m->msg);
			/* Nothing could start (destinations at their
			   limit): the next tick tries again. */
			if (e->due <= fq_now())
				e->due = fq_now() + 1;
		}
	}
	queue_message_free(&m->msg);
	if (m->prev != NULL)
		m->prev->next = m->next;
	else
		fq_msgs = m->next;
	if (m->next != NULL)
		m->next->prev = m->prev;
	i_free(m);
}

/* The job ends: results go to the message (recipients without one are
   temporary failures with the connection's last error). */
void fq_job_finish(struct fq_conn *conn, const char *host)
{
	struct fq_job *job = conn->job;
	struct queue_message *msg = job->m->msg;
	int64_t now = fq_now();

	conn->job = NULL;
	for (unsigned int i = 0; i < job->count; i++) {
		enum fq_result res = job->res[i];
		const char *reply = job->reply[i];

		if (res == FQ_RESULT_NONE) {
			res = conn->perm_failure ? FQ_RESULT_PERM
						 : FQ_RESULT_TEMP;
			reply = conn->last_error != NULL
					? conn->last_error
					: "451 4.4.1 no answer from host";
		}
		if (!job->m->deleted)
			fq_rcpt_result(msg, job->idx[i], res,
				       reply == NULL ? "" : reply, host, now);
		i_free(job->reply[i]);
	}
	i_free(job->reply);
	i_free(job->res);
	i_free(job->idx);
	fq_msg_unref_job(job->m);
	i_free(job);
}

/* ---- local recipients ---- */

/* Before a message goes out, each due recipient is resolved through the
   vault (front-delivery.h): one of our addresses (a DSN to a local
   sender, above all) is delivered into the local spools with
   front_delivery_commit, like mail from SMTP; only FRONT_RCPT_NOT_LOCAL
   recipients go to the remote side. */
struct fq_local;

struct fq_local_rcpt {
	struct fq_local *l;
	unsigned int idx; /* in the message */
	bool answered;
	enum front_rcpt_result result;
	bool quota_permanent;
	struct front_rcpt_target *targets;
	unsigned int target_count;
	char **forwards;
	unsigned int forward_count;
};

struct fq_local {
	struct fq_local *prev, *next;
	struct fq_msg *m;
	struct fq_local_rcpt *rcpts;
	unsigned int count, answered;
	bool flush;
	/* Committing the local copies. */
	struct front_delivery *delivery;
	unsigned int *committing; /* message indexes in the commit */
	unsigned int committing_count;
};

static struct fq_local *fq_locals;

static void fq_local_free(struct fq_local *l)
{
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		fq_locals = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	for (unsigned int i = 0; i < l->count; i++) {
		struct fq_local_rcpt *r = &l->rcpts[i];

		if (!r->answered)
			front_delivery_cancel(r);
		i_free(r->targets);
		for (unsigned int j = 0; j < r->forward_count; j++)
			i_free(r->forwards[j]);
		i_free(r->forwards);
	}
	front_delivery_destroy(&l->delivery);
	i_free(l->committing);
	i_free(l->rcpts);
	i_free(l);
}

static void fq_local_committed(void *context, enum front_commit_result result,
			       const char *reason)
{
	struct fq_local *l = context;
	struct fq_msg *m = l->m;
	int64_t now = fq_now();

	for (unsigned int i = 0; i < l->committing_count; i++) {
		unsigned int idx = l->committing[i];

		switch (result) {
		case FRONT_COMMIT_OK:
			fq_rcpt_result(m->msg, idx, FQ_RESULT_OK,
				       "250 2.0.0 delivered locally",
				       fq->front->set->hostname, now);
			break;
		case FRONT_COMMIT_REJECTED: {
			char *text = i_strdup_printf("550 %s", reason);

			fq_rcpt_result(m->msg, idx, FQ_RESULT_PERM, text,
				       fq->front->set->hostname, now);
			i_free(text);
			break;
		}
		case FRONT_COMMIT_TOO_BIG:
			fq_rcpt_result(m->msg, idx, FQ_RESULT_PERM,
				       "552 5.3.4 message too big for the "
				       "mailbox",
				       fq->front->set->hostname, now);
			break;
		case FRONT_COMMIT_TEMPFAIL:
			fq_rcpt_result(m->msg, idx, FQ_RESULT_TEMP,
				       "451 4.3.0 local delivery failed",
				       fq->front->set->hostname, now);
			break;
		}
	}
	m->started++;
	fq_local_free(l); /* destroys the finished delivery */
	fq_msg_unref_job(m);
	fq_dispatch();
}

/* Queues the remote forward targets of a local recipient as a new
   message (same sender, no DSN options). Returns 0 or -1. */
static int fq_local_forward(const struct queue_message *msg,
			    const struct fq_local_rcpt *r)
{
	struct queue_rcpt *rcpts = i_new(struct queue_rcpt, r->forward_count);
	struct queue_envelope env;
	const char *error;
	char id[QUEUE_ID_LEN + 1];
	int ret;

	for (unsigned int i = 0; i < r->forward_count; i++)
		rcpts[i].address = r->forwards[i];
	memset(&env, 0, sizeof(env));
	env.sender = msg->env.sender;
	env.rcpts = rcpts;
	env.rcpt_count = r->forward_count;
	env.account_id = msg->env.account_id;
	ret = queue_enqueue(fq->queue, &env, msg->body, msg->body_len, id,
			    &error);
	i_free(rcpts);
	if (ret < 0) {
		log_error(NULL, "queue.forward.failed", "id=%s error=%s",
			  msg->id, log_value(0, error));
		return -1;
	}
	fq_entry_add(id)->due = 0;
	return 0;
}

/* Every recipient is answered: locals are committed, the rest either
   fail here or go to the remote side. */
static void fq_local_resolved(struct fq_local *l)
{
	struct fq_msg *m = l->m;
	struct queue_message *msg = m->msg;
	bool *remote = i_new(bool, msg->env.rcpt_count);
	const char *host = fq->front->set->hostname;
	int64_t now = fq_now();

	for (unsigned int i = 0; i < l->count; i++) {
		struct fq_local_rcpt *r = &l->rcpts[i];

		switch (r->result) {
		case FRONT_RCPT_NOT_LOCAL:
			remote[r->idx] = true;
			continue;
		case FRONT_RCPT_OK:
			if (r->forward_count > 0 &&
			    fq_local_forward(msg, r) < 0) {
				fq_rcpt_result(msg, r->idx, FQ_RESULT_TEMP,
					       "451 4.3.0 cannot queue the "
					       "forward",
					       host, now);
				m->started++;
				continue;
			}
			if (r->target_count == 0) {
				fq_rcpt_result(msg, r->idx, FQ_RESULT_OK,
					       "250 2.0.0 forwarded", host,
					       now);
				m->started++;
				continue;
			}
			if (l->delivery == NULL) {
				l->delivery = front_delivery_create(
					msg->env.sender, "", false,
					msg->env.account_id);
				l->committing = i_new(unsigned int, l->count);
			}
			for (unsigned int j = 0; j < r->target_count; j++)
				front_delivery_add_local(
					l->delivery,
					msg->env.rcpts[r->idx].address,
					&r->targets[j]);
			l->committing[l->committing_count++] = r->idx;
			continue;
		case FRONT_RCPT_UNKNOWN:
			fq_rcpt_result(msg, r->idx, FQ_RESULT_PERM,
				       "550 5.1.1 no such local recipient",
				       host, now);
			break;
		case FRONT_RCPT_DISABLED:
			fq_rcpt_result(msg, r->idx, FQ_RESULT_PERM,
				       "550 5.2.1 mailbox disabled", host, now);
			break;
		case FRONT_RCPT_OVER_QUOTA:
			fq_rcpt_result(msg, r->idx,
				       r->quota_permanent ? FQ_RESULT_PERM
							  : FQ_RESULT_TEMP,
				       r->quota_permanent
					       ? "552 5.2.2 mailbox full"
					       : "452 4.2.2 mailbox full",
				       host, now);
			break;
		case FRONT_RCPT_TEMPFAIL:
			fq_rcpt_result(msg, r->idx, FQ_RESULT_TEMP,
				       "451 4.3.0 recipient lookup failed",
				       host, now);
			break;
		}
		m->started++;
	}
	m->started += fq_msg_start(m, remote, l->flush, now);
	i_free(remote);
	if (l->delivery != NULL) {
		m->jobs++;
		front_delivery_commit(l->delivery, msg->body, msg->body_len,
				      fq_local_committed, l);
		fq_msg_unref_job(m); /* the resolve phase's reference */
		return;
	}
	fq_local_free(l);
	fq_msg_unref_job(m);
}

static void fq_local_rcpt_cb(void *context, const struct front_rcpt *rcpt)
{
	struct fq_local_rcpt *r = context;
	struct fq_local *l = r->l;

	r->answered = true;
	r->result = rcpt->result;
	r->quota_permanent = rcpt->quota_permanent;
	if (rcpt->result == FRONT_RCPT_OK) {
		r->target_count = rcpt->local_count;
		r->targets =
			i_new(struct front_rcpt_target, rcpt->local_count + 1);
		memcpy(r->targets, rcpt->locals,
		       sizeof(*rcpt->locals) * rcpt->local_count);
		r->forward_count = rcpt->remote_count;
		r->forwards = i_new(char *, rcpt->remote_count + 1);
		for (unsigned int i = 0; i < rcpt->remote_count; i++)
			r->forwards[i] = i_strdup(rcpt->remote[i]);
	}
	if (++l->answered == l->count)
		fq_local_resolved(l);
}

/* Starts the resolve phase for the due recipients of m (which holds one
   job reference for it). */
static void fq_local_start(struct fq_msg *m, bool flush, int64_t now)
{
	struct queue_message *msg = m->msg;
	struct fq_local *l = i_new(struct fq_local, 1);

	l->m = m;
	l->flush = flush;
	l->rcpts = i_new(struct fq_local_rcpt, msg->env.rcpt_count);
	for (unsigned int i = 0; i < msg->env.rcpt_count; i++) {
		const struct queue_rcpt_state *st = &msg->states[i];

		if (st->status != QUEUE_RCPT_PENDING ||
		    (!flush && st->next_attempt > now))
			continue;
		l->rcpts[l->count].l = l;
		l->rcpts[l->count].idx = i;
		l->count++;
	}
	l->next = fq_locals;
	if (fq_locals != NULL)
		fq_locals->prev = l;
	fq_locals = l;
	if (l->count == 0) {
		fq_local_resolved(l);
		return;
	}
	/* The callbacks run later from the ioloop, never in here. */
	for (unsigned int i = 0; i < l->count; i++)
		front_delivery_resolve(msg->env.rcpts[l->rcpts[i].idx].address,
				       msg->body_len, fq_local_rcpt_cb,
				       &l->rcpts[i]);
}

/* ---- dispatch ---- */

/* Starts jobs for the due recipients of the loaded m. Returns the
   number of jobs started. */
static unsigned int fq_msg_start(struct fq_msg *m, const bool *remote,
				 bool flush, int64_t now)
{
	struct queue_message *msg = m->msg;
	unsigned int count = msg->env.rcpt_count, started = 0;
	bool *taken = i_new(bool, count);

	/* Only the recipients the vault called not local go out. */
	for (unsigned int i = 0; i < count; i++)
		taken[i] = !remote[i];

	for (unsigned int i = 0; i < count; i++) {
		const struct queue_rcpt_state *st = &msg->states[i];
		struct fq_job *job;
		struct fq_dest *dest;
		struct fq_conn *idle;
		char *key;

		if (taken[i] || st->status != QUEUE_RCPT_PENDING ||
		    (!flush && st->next_attempt > now))
			continue;
		key = fq->relay ? i_strdup(FQ_RELAY_KEY)
				: i_strdup(fq_domain_of(
					  msg->env.rcpts[i].address));
		for (char *p = key; *p != '\0'; p++) {
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		}
		if (!fq_dest_has_room(key)) {
			i_free(key);
			continue;
		}
		/* One transaction per message and destination, with all
		   its due recipients there. */
		job = i_new(struct fq_job, 1);
		job->m = m;
		job->idx = i_new(unsigned int, count);
		job->res = i_new(enum fq_result, count);
		job->reply = i_new(char *, count);
		for (unsigned int j = i; j < count; j++) {
			const struct queue_rcpt_state *st2 = &msg->states[j];
			const char *dom =
				fq_domain_of(msg->env.rcpts[j].address);

			if (taken[j] || st2->status != QUEUE_RCPT_PENDING ||
			    (!flush && st2->next_attempt > now))
				continue;
			if (!fq->relay && strcasecmp(dom, key) != 0)
				continue;
			taken[j] = true;
			job->idx[job->count++] = j;
		}
		m->jobs++;
		started++;
		dest = fq_dest_get(key);
		i_free(key);
		idle = fq_dest_idle_conn(dest);
		if (idle != NULL) {
			/* RFC 5321 3.3: a new transaction on the same
			   session (connection reuse). */
			idle->job = job;
			log_info(idle->log_id, "queue.reuse", "id=%s rcpts=%u",
				 m->id, job->count);
			fq_conn_start_job(idle);
		} else {
			(void)fq_conn_create(dest, job);
		}
	}
	i_free(taken);
	return started;
}

static bool fq_dispatching;

/* Loads one due message and starts its jobs. */
static void fq_dispatch_one(const char *id, int64_t now)
{
	struct fq_entry *e = fq_entry_find(id);
	struct queue_message *msg;
	struct fq_msg *m;
	const char *error;
	bool flush;
	int ret;

	if (e == NULL || e->busy)
		return;
	flush = e->flush;
	e->flush = false;
	ret = queue_load(fq->queue, id, true, &msg, &error);
	if (ret <= 0) {
		if (ret < 0) {
			log_error(NULL, "queue.message.damaged",
				  "id=%s error=%s", id, log_value(0, error));
			e->broken = true;
		} else {
			fq_entry_remove(id);
		}
		return;
	}
	if (msg->held || (msg->env.hold_until > now && !flush)) {
		fq_entry_update(e, msg);
		queue_message_free(&msg);
		return;
	}
	m = i_new(struct fq_msg, 1);
	memcpy(m->id, id, sizeof(m->id));
	m->msg = msg;
	m->hold_request = -1;
	m->jobs = 1; /* the resolve phase's, so no job commits early */
	m->next = fq_msgs;
	if (fq_msgs != NULL)
		fq_msgs->prev = m;
	fq_msgs = m;
	e->busy = true;
	for (unsigned int i = 0; i < msg->env.rcpt_count; i++) {
		if (msg->states[i].dsn == QUEUE_DSN_NEEDED) {
			/* A DSN owed since before a crash: settle it first
			   (fq_msg_commit finds an already queued one), so
			   no new failure joins that event. */
			fq_msg_unref_job(m);
			return;
		}
	}
	fq_local_start(m, flush, now);
}

void fq_dispatch(void)
{
	int64_t now = fq_now();
	char(*due)[QUEUE_ID_LEN + 1];
	unsigned int count = 0;

	/* Results arriving while we dispatch (a connection that fails at
	   once) call back here: the running loop picks them up next tick. */
	if (fq_dispatching || fq == NULL || fq->front->shutting_down)
		return;
	fq_dispatching = true;
	/* A snapshot of the due ids: dispatching adds (DSNs) and removes
	   entries. */
	due = i_malloc(sizeof(*due) * FQ_DISPATCH_MAX);
	for (unsigned int i = 0; i < fq->entry_count && count < FQ_DISPATCH_MAX;
	     i++) {
		const struct fq_entry *e = &fq->entries[i];

		if (e->busy || e->broken || (e->due > now && !e->flush))
			continue;
		memcpy(due[count++], e->id, QUEUE_ID_LEN + 1);
	}
	for (unsigned int i = 0; i < count; i++)
		fq_dispatch_one(due[i], now);
	i_free(due);
	fq_dispatching = false;
}

/* ---- requests from `marmot queue` ---- */

static void fq_request(void *context, enum queue_request_op op, const char *id)
{
	struct fq_entry *e = NULL;
	const char *error;
	int ret = 1;

	log_info(NULL, "queue.request", "op=%s id=%s",
		 queue_request_op_name(op), id);
	if (op == QUEUE_REQUEST_FLUSH && strcmp(id, "all") == 0) {
		for (unsigned int i = 0; i < fq->entry_count; i++)
			fq->entries[i].flush = true;
		return;
	}
	e = fq_entry_find(id);
	if (e == NULL) {
		/* Written by another process since the last scan (marmot
		   queue inject). */
		fq_scan();
		e = fq_entry_find(id);
	}
	if (e != NULL && e->busy) {
		/* Being worked on: the commit at its end applies it. */
		for (struct fq_msg *m = fq_msgs; m != NULL; m = m->next) {
			if (strcmp(m->id, id) != 0)
				continue;
			if (op == QUEUE_REQUEST_DELETE)
				m->deleted = true;
			else if (op == QUEUE_REQUEST_HOLD)
				m->hold_request = 1;
			else if (op == QUEUE_REQUEST_RELEASE)
				m->hold_request = 0;
		}
		return;
	}
	switch (op) {
	case QUEUE_REQUEST_FLUSH:
		if (e != NULL)
			e->flush = true;
		break;
	case QUEUE_REQUEST_DELETE:
		ret = queue_delete(fq->queue, id, &error);
		if (ret >= 0)
			fq_entry_remove(id);
		break;
	case QUEUE_REQUEST_HOLD:
	case QUEUE_REQUEST_RELEASE:
		ret = queue_set_held(fq->queue, id, op == QUEUE_REQUEST_HOLD,
				     &error);
		if (ret > 0 && e != NULL) {
			struct queue_message *msg;

			if (queue_load(fq->queue, id, false, &msg, &error) >
			    0) {
				fq_entry_update(e, msg);
				queue_message_free(&msg);
			}
		}
		break;
	}
	if (ret < 0)
		log_error(NULL, "queue.request.failed", "op=%s id=%s error=%s",
			  queue_request_op_name(op), id, log_value(0, error));
}

static void fq_tick(void *context)
{
	const char *error;
	int64_t now = fq_now();

	if (queue_requests_take(fq->queue, 1000, fq_request, NULL, &error) < 0)
		log_error(NULL, "queue.requests.failed", "error=%s",
			  log_value(0, error));
	if (now >= fq->next_scan) {
		fq_scan();
		fq->next_scan = now + fq->front->set->queue_scan_interval;
	}
	fq_dispatch();
}

/* ---- setup ---- */

static int fq_parse_relay(const char *value, const char **error_r)
{
	const char *colon;
	size_t host_len;
	unsigned long port;
	char *end;

	if (value[0] == '[') {
		const char *close = strchr(value, ']');

		if (close == NULL || close[1] != ':') {
			*error_r = "queue_relay_host: expected [IPv6]:PORT";
			return -1;
		}
		host_len = (size_t)(close - value - 1);
		value++;
		colon = close + 1;
	} else {
		colon = strrchr(value, ':');
		if (colon == NULL) {
			*error_r = "queue_relay_host: expected HOST:PORT";
			return -1;
		}
		host_len = (size_t)(colon - value);
	}
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || port == 0 || port > 65535 ||
	    host_len == 0 || host_len >= sizeof(fq->relay_host)) {
		*error_r = "queue_relay_host: bad host or port";
		return -1;
	}
	memcpy(fq->relay_host, value, host_len);
	fq->relay_host[host_len] = '\0';
	fq->relay_port = (unsigned int)port;
	{
		uint8_t bin[16];

		/* A name needs the resolver; an IP literal does not. */
		fq->relay_is_ip =
			inet_pton(AF_INET, fq->relay_host, bin) == 1 ||
			inet_pton(AF_INET6, fq->relay_host, bin) == 1;
#ifndef MARMOT_HAVE_DNS
		if (!fq->relay_is_ip) {
			*error_r = "queue_relay_host: the host must be an "
				   "IP address (built without a resolver)";
			return -1;
		}
#endif
	}
	fq->relay = true;
	return 0;
}

int front_queue_init(struct front *front, const char **error_r)
{
	const char *relay = front->set->queue_relay_host;

	i_assert(fq == NULL);
	fq = i_new(struct fq_runner, 1);
	fq->front = front;
	if (strcmp(relay, "none") != 0 && fq_parse_relay(relay, error_r) < 0) {
		i_free(fq);
		return -1;
	}
	fq->queue = queue_open(front->set->data_dir, error_r);
	if (fq->queue == NULL) {
		i_free(fq);
		return -1;
	}
	/* Opportunistic TLS: no verification yet (see the file head). */
	fq->tls_client = tls_ctx_client_create(false, error_r);
	if (fq->tls_client == NULL) {
		queue_close(&fq->queue);
		i_free(fq);
		return -1;
	}
#ifdef MARMOT_HAVE_DNS
	{
		struct dns_settings dns_set;
		const struct marmot_settings *set = front->set;

		memset(&dns_set, 0, sizeof(dns_set));
		if (strcmp(set->dns_resolver, "resolv.conf") != 0)
			dns_set.resolver = set->dns_resolver;
		if (strcmp(set->dns_trust_anchor_file, "none") != 0)
			dns_set.trust_anchor_file = set->dns_trust_anchor_file;
		dns_set.timeout_msecs = set->dns_timeout * 1000;
		fq->dns = dns_create(front->ioloop, &dns_set, error_r);
		if (fq->dns == NULL && !fq->relay) {
			tls_ctx_unref(&fq->tls_client);
			queue_close(&fq->queue);
			i_free(fq);
			return -1;
		}
		/* DANE and MTA-STS (front-tlspolicy.h). */
		if (fq_tlspolicy_init(front, fq->dns, error_r) < 0) {
			dns_destroy(&fq->dns);
			tls_ctx_unref(&fq->tls_client);
			queue_close(&fq->queue);
			i_free(fq);
			return -1;
		}
	}
#endif
	fq_scan();
	fq->next_scan = fq_now() + front->set->queue_scan_interval;
	fq->tick = timeout_add(front->ioloop, FQ_TICK_MSECS, fq_tick, NULL);
	log_info(NULL, "queue.start", "messages=%u relay=%s", fq->entry_count,
		 fq->relay ? relay : "none");
	/* The first dispatch runs from the loop: front.c sets up the
	   delivery path (front_delivery_init) after this. */
	fq->added_timeout =
		timeout_add(front->ioloop, 0, fq_added_dispatch, NULL);
	return 0;
}

void front_queue_deinit(void)
{
	if (fq == NULL)
		return;
	timeout_remove(&fq->tick);
	timeout_remove(&fq->added_timeout);
	/* Open jobs end as temporary failures and are saved: the next
	   start retries them. */
	while (fq->conns != NULL) {
		struct fq_conn *conn = fq->conns;

		if (conn->last_error == NULL)
			fq_conn_set_error(conn, "451 4.3.2 shutting down");
		fq_conn_destroy(&conn);
	}
	/* Messages still in the resolve or local commit phase: what they
	   did so far is saved; a commit that is still running finishes
	   without us (its records stay, the next start may deliver them
	   again: at-least-once). */
	while (fq_locals != NULL) {
		struct fq_local *l = fq_locals;
		struct fq_msg *m = l->m;
		bool committing = l->delivery != NULL;

		fq_local_free(l);
		if (committing)
			fq_msg_unref_job(m);
		fq_msg_unref_job(m);
	}
#ifdef MARMOT_HAVE_DNS
	fq_tlspolicy_deinit();
	dns_destroy(&fq->dns);
#endif
	for (unsigned int i = 0; i < fq->entry_count; i++)
		i_free(fq->entries[i].dsn_key);
	i_free(fq->entries);
	tls_ctx_unref(&fq->tls_client);
	queue_close(&fq->queue);
	i_free(fq);
}

struct queue *front_queue_get(void)
{
	return fq == NULL ? NULL : fq->queue;
}

struct dns *front_queue_dns(void)
{
#ifdef MARMOT_HAVE_DNS
	return fq == NULL ? NULL : fq->dns;
#else
	return NULL;
#endif
}

static void fq_added_dispatch(void *context)
{
	timeout_remove(&fq->added_timeout);
	fq_dispatch();
}

void front_queue_added(const char *id)
{
	if (fq == NULL || !queue_id_valid(id))
		return;
	if (fq_entry_find(id) == NULL)
		fq_entry_add(id)->due = 0;
	/* From the loop, not inside the delivery's callback. */
	if (fq->added_timeout == NULL)
		fq->added_timeout = timeout_add(fq->front->ioloop, 0,
						fq_added_dispatch, NULL);
}

void front_queue_kick(void)
{
	if (fq == NULL)
		return;
	fq->next_scan = 0;
	fq_scan();
	fq->next_scan = fq_now() + fq->front->set->queue_scan_interval;
	fq_dispatch();
}
