/* front-queue.c - the outbound queue runner (front-queue.h): an index of
   DATA/queue/ with each message's next due time, a dispatcher that groups
   a message's due recipients by destination domain (one transaction per
   message and domain, all its recipients in it), and a non-blocking SMTP
   client on src/lib/stream.h with connection reuse and a per-destination
   connection limit. Results are applied to the queue's state files at
   once (a recipient is DELIVERED only after the remote's final 250 and a
   durable state save); permanent failures and expiry produce one DSN per
   failure event (queue-dsn.h), enqueued with the null sender.

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
   queued, and such a message settles its DSN before any new attempt. The null
   sender never gets DSNs, so this envid is never sent anywhere (ENVID is only
   passed on for non-null senders).

   Each due recipient is first resolved through the vault: local ones (a
   DSN to a local sender, above all) are committed into the spools with
   front_delivery_commit, only non-local ones go out.

   Limitations (documented in doc/architecture.md): state saves (an fsync
   each) run in the loop thread; no success DSNs; no client PIPELINING. */

#include "lib.h"
#include "front-queue.h"
#include "front-delivery.h"
#include "front-private.h"
#include "ioloop.h"
#include "log.h"
#include "net.h"
#include "queue.h"
#include "queue-dsn.h"
#include "smtp-reply.h"
#include "stream.h"
#include "tls.h"
#ifdef MARMOT_HAVE_DNS
#include "dns.h"
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>
#include <netinet/in.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FQ_TICK_MSECS 1000
/* Idle connections kept for reuse this long. */
#define FQ_IDLE_MSECS 2000
/* Bounds: messages loaded per dispatch, connections in total, addresses
   tried per delivery attempt. */
#define FQ_DISPATCH_MAX 200
#define FQ_CONNS_MAX 200
#define FQ_ADDRS_MAX 16
#define FQ_MX_MAX 16
#define FQ_DSN_ENVID_PREFIX "marmot-dsn;"
#define FQ_RELAY_KEY "[relay]"

enum fq_result {
	FQ_RESULT_NONE, /* not decided: a temporary failure */
	FQ_RESULT_OK,
	FQ_RESULT_TEMP,
	FQ_RESULT_PERM,
};

struct fq_entry {
	char id[QUEUE_ID_LEN + 1];
	int64_t due; /* INT64_MAX: nothing to do until a request */
	char *dsn_key; /* "<id>;<gen>" when this is one of our DSNs */
	bool busy; /* jobs running on its loaded message */
	bool seen; /* scan marker */
	bool flush; /* ignore next_attempt once */
	bool broken; /* does not load: left for an operator */
};

struct fq_msg {
	struct fq_msg *prev, *next; /* fq_msgs: messages being worked on */
	char id[QUEUE_ID_LEN + 1];
	struct queue_message *msg;
	unsigned int jobs;
	unsigned int started; /* jobs started: results to save */
	bool deleted; /* `marmot queue delete` while busy */
	int hold_request; /* -1 none, 0 release, 1 hold (while busy) */
};

struct fq_job {
	struct fq_msg *m;
	unsigned int *idx; /* recipient indexes in m->msg */
	unsigned int count;
	enum fq_result *res;
	char **reply; /* per recipient, i_malloc */
	unsigned int rcpt_pos; /* next RCPT to send / reply to take */
	unsigned int accepted;
};

struct fq_dest {
	struct fq_dest *next;
	char *key; /* domain, or FQ_RELAY_KEY */
	unsigned int active; /* connections, idle ones included */
};

enum fq_state {
	FQ_STATE_RESOLVING,
	FQ_STATE_CONNECTING,
	FQ_STATE_GREETING,
	FQ_STATE_EHLO,
	FQ_STATE_HELO,
	FQ_STATE_STARTTLS,
	FQ_STATE_TLS_HANDSHAKE,
	FQ_STATE_MAIL,
	FQ_STATE_RCPT,
	FQ_STATE_DATA,
	FQ_STATE_BODY,
	FQ_STATE_RSET,
	FQ_STATE_IDLE,
	FQ_STATE_QUIT,
};

struct fq_addr {
	char host[256]; /* the name for logs, DSN Remote-MTA and SNI */
	char ip[46];
	unsigned int port;
};

struct fq_conn {
	struct fq_conn *prev, *next;
	char log_id[24];
	struct fq_dest *dest;
	struct fq_job *job;
	enum fq_state state;
	pool_t pool; /* per session: EHLO data, cleared per host */
	pool_t reply_pool; /* one reply, cleared after it */
	/* Candidate addresses, in order (MX preference, then address). */
	struct fq_addr addrs[FQ_ADDRS_MAX];
	unsigned int addr_count, addr_pos;
	char *mx_hosts[FQ_MX_MAX];
	unsigned int mx_count, mx_pos;
	unsigned int port; /* for MX hosts: 25 */
	int fd;
	struct io *connect_io;
	struct stream *stream;
	struct timeout *timeout;
	struct smtp_ehlo ehlo;
	bool tls;
	bool session_ok; /* a host completed EHLO: errors are per job */
	/* Why the last host failed (for the job's temporary failure). */
	char *last_error;
	/* Permanent: the whole destination refuses (null MX, REQUIRETLS). */
	bool perm_failure;
#ifdef MARMOT_HAVE_DNS
	struct dns_lookup *lookup;
#endif
};

struct fq_runner {
	struct front *front;
	struct queue *queue;
	struct tls_ctx *tls_client;
	struct timeout *tick;
	struct timeout *added_timeout;
	struct fq_entry *entries;
	unsigned int entry_count, entry_alloc;
	struct fq_dest *dests;
	struct fq_conn *conns;
	unsigned int conn_count;
	unsigned int conn_seq;
	int64_t next_scan;
	bool relay; /* queue_relay_host set */
	bool relay_is_ip; /* else a name to resolve (A/AAAA, no MX) */
	char relay_host[256];
	unsigned int relay_port;
#ifdef MARMOT_HAVE_DNS
	struct dns *dns;
#endif
};

static struct fq_runner *fq;
static struct fq_msg *fq_msgs;

static void fq_dispatch(void);
static void fq_conn_next_addr(struct fq_conn *conn);
static void fq_conn_destroy(struct fq_conn **conn);
static void fq_conn_start_job(struct fq_conn *conn);
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

/* Enqueues one DSN for the NEEDED recipients of msg and marks them DONE
   in memory. Returns 0 or -1. */
static int fq_send_dsn(struct queue_message *msg, const char **error_r)
{
	struct queue_dsn_rcpt *rcpts;
	struct queue_dsn dsn;
	struct queue_rcpt to;
	struct queue_envelope env;
	struct buf out = BUF_INIT;
	char(*status)[16];
	char key[QUEUE_ID_LEN + 32], id[QUEUE_ID_LEN + 1];
	char *envid;
	unsigned int n = 0;
	int ret = 0;

	i_assert(msg->body != NULL);
	fq_dsn_key(msg, key, sizeof(key));
	rcpts = i_new(struct queue_dsn_rcpt, msg->env.rcpt_count);
	status = i_malloc(sizeof(*status) * msg->env.rcpt_count);
	for (unsigned int i = 0; i < msg->env.rcpt_count; i++) {
		struct queue_rcpt_state *st = &msg->states[i];

		if (st->dsn != QUEUE_DSN_NEEDED)
			continue;
		rcpts[n].address = msg->env.rcpts[i].address;
		rcpts[n].orcpt = msg->env.rcpts[i].orcpt;
		rcpts[n].action = "failed";
		rcpts[n].status = queue_dsn_status_of_reply(
			st->last_reply, status[n], sizeof(status[n]));
		rcpts[n].remote_mta = st->remote_host;
		rcpts[n].diagnostic = st->last_reply;
		rcpts[n].last_attempt = st->last_attempt;
		n++;
	}
	if (n == 0) {
		i_free(rcpts);
		i_free(status);
		return 0;
	}
	if (fq_dsn_queued(key)) {
		/* Queued before a crash, DONE not saved: do not repeat. */
		log_info(NULL, "queue.dsn.recovered", "id=%s", msg->id);
	} else {
		memset(&dsn, 0, sizeof(dsn));
		dsn.reporting_mta = fq->front->set->hostname;
		dsn.sender = msg->env.sender;
		dsn.envid = msg->env.envid;
		dsn.arrival = msg->queued;
		dsn.rcpts = rcpts;
		dsn.rcpt_count = n;
		dsn.original = msg->body;
		dsn.original_len = msg->body_len;
		dsn.ret_full = msg->env.ret_full;
		queue_dsn_build(&dsn, fq_now(), &out);

		to.address = msg->env.sender;
		to.orcpt = NULL;
		to.notify = QUEUE_NOTIFY_NEVER;
		envid = i_strdup_printf(FQ_DSN_ENVID_PREFIX "%s", key);
		memset(&env, 0, sizeof(env));
		/* RFC 5321 4.5.5 / RFC 3464 2: sent with the null
		   reverse-path, so it can never cause another DSN. */
		env.sender = "";
		env.rcpts = &to;
		env.rcpt_count = 1;
		env.envid = envid;
		ret = queue_enqueue(fq->queue, &env, buf_span(&out).p, out.used,
				    id, error_r);
		if (ret == 0) {
			struct fq_entry *e = fq_entry_add(id);

			e->due = 0;
			e->dsn_key = i_strdup(key);
			log_info(NULL, "queue.dsn.queued",
				 "id=%s dsn=%s rcpts=%u", msg->id, id, n);
		}
		i_free(envid);
		buf_free_secure(&out);
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
	struct queue_dsn dsn;
	struct queue_rcpt to = { msg->env.sender, NULL, QUEUE_NOTIFY_NEVER };
	struct queue_envelope env;
	struct buf out = BUF_INIT;
	char id[QUEUE_ID_LEN + 1];
	const char *error;
	unsigned int n = 0;

	for (unsigned int i = 0; i < msg->env.rcpt_count; i++) {
		struct queue_rcpt_state *st = &msg->states[i];

		if (!st->delay_pending)
			continue;
		st->delay_pending = false;
		rcpts[n].address = msg->env.rcpts[i].address;
		rcpts[n].orcpt = msg->env.rcpts[i].orcpt;
		rcpts[n].action = "delayed";
		rcpts[n].status = queue_dsn_status_of_reply(
			st->last_reply, status[n], sizeof(status[n]));
		rcpts[n].remote_mta = st->remote_host;
		rcpts[n].diagnostic = st->last_reply;
		rcpts[n].last_attempt = st->last_attempt;
		n++;
	}
	if (n > 0 && msg->body != NULL) {
		memset(&dsn, 0, sizeof(dsn));
		dsn.reporting_mta = fq->front->set->hostname;
		dsn.sender = msg->env.sender;
		dsn.envid = msg->env.envid;
		dsn.arrival = msg->queued;
		dsn.rcpts = rcpts;
		dsn.rcpt_count = n;
		dsn.original = msg->body;
		dsn.original_len = msg->body_len;
		queue_dsn_build(&dsn, fq_now(), &out);
		memset(&env, 0, sizeof(env));
		env.sender = "";
		env.rcpts = &to;
		env.rcpt_count = 1;
		if (queue_enqueue(fq->queue, &env, buf_span(&out).p, out.used,
				  id, &error) < 0) {
			log_error(NULL, "queue.dsn.failed", "id=%s error=%s",
				  msg->id, log_value(0, error));
		} else {
			fq_entry_add(id)->due = 0;
			log_info(NULL, "queue.dsn.delay_queued",
				 "id=%s dsn=%s rcpts=%u", msg->id, id, n);
		}
		buf_free_secure(&out);
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
static void fq_job_finish(struct fq_conn *conn, const char *host)
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

/* ---- destinations and connections ---- */

static struct fq_dest *fq_dest_get(const char *key)
{
	struct fq_dest *d;

	for (d = fq->dests; d != NULL; d = d->next) {
		if (strcmp(d->key, key) == 0)
			return d;
	}
	d = i_new(struct fq_dest, 1);
	d->key = i_strdup(key);
	d->next = fq->dests;
	fq->dests = d;
	return d;
}

static void fq_dest_release(struct fq_dest *dest)
{
	struct fq_dest **p;

	i_assert(dest->active > 0);
	if (--dest->active > 0)
		return;
	for (p = &fq->dests; *p != NULL; p = &(*p)->next) {
		if (*p == dest) {
			*p = dest->next;
			break;
		}
	}
	i_free(dest->key);
	i_free(dest);
}

static const char *fq_conn_host(const struct fq_conn *conn)
{
	if (conn->addr_pos == 0 || conn->addr_pos > conn->addr_count)
		return "";
	return conn->addrs[conn->addr_pos - 1].host;
}

static void fq_conn_set_error(struct fq_conn *conn, const char *fmt, ...)
	ATTR_FORMAT(2, 3);
static void fq_conn_set_error(struct fq_conn *conn, const char *fmt, ...)
{
	va_list args;

	i_free(conn->last_error);
	va_start(args, fmt);
	conn->last_error = i_strdup_vprintf(fmt, args);
	va_end(args);
}

static void fq_conn_close_stream(struct fq_conn *conn)
{
	io_remove(&conn->connect_io);
	if (conn->stream != NULL)
		stream_destroy(&conn->stream);
	else if (conn->fd >= 0)
		(void)close(conn->fd);
	conn->fd = -1;
	timeout_remove(&conn->timeout);
	conn->tls = false;
	pool_clear(conn->pool);
	memset(&conn->ehlo, 0, sizeof(conn->ehlo));
}

static void fq_conn_destroy(struct fq_conn **_conn)
{
	struct fq_conn *conn = *_conn;

	*_conn = NULL;
	if (conn->job != NULL)
		fq_job_finish(conn, fq_conn_host(conn));
#ifdef MARMOT_HAVE_DNS
	dns_lookup_cancel(&conn->lookup);
#endif
	fq_conn_close_stream(conn);
	for (unsigned int i = 0; i < conn->mx_count; i++)
		i_free(conn->mx_hosts[i]);
	i_free(conn->last_error);
	pool_unref(&conn->pool);
	pool_unref(&conn->reply_pool);
	if (conn->prev != NULL)
		conn->prev->next = conn->next;
	else
		fq->conns = conn->next;
	if (conn->next != NULL)
		conn->next->prev = conn->prev;
	fq->conn_count--;
	fq_dest_release(conn->dest);
	i_free(conn);
}

/* The current host failed (connection, greeting, EHLO, TLS): the job
   moves on to the next address, or ends when there is none. A failure
   after a session was established on this host ends the job (the
   replies so far decide). */
static void fq_conn_host_failed(struct fq_conn *conn)
{
	log_info(
		conn->log_id, "queue.host.failed", "host=%s ip=%s error=%s",
		log_value(0, fq_conn_host(conn)),
		conn->addr_pos > 0 ? conn->addrs[conn->addr_pos - 1].ip : "",
		log_value(1, conn->last_error != NULL ? conn->last_error : ""));
	fq_conn_close_stream(conn);
	if (conn->session_ok || conn->job == NULL) {
		/* A reused connection that broke: the job is retried
		   later, the connection is done. */
		fq_conn_destroy(&conn);
		fq_dispatch();
		return;
	}
	fq_conn_next_addr(conn);
}

static void fq_conn_timeout(void *context)
{
	struct fq_conn *conn = context;

	if (conn->state == FQ_STATE_IDLE) {
		/* Reuse window over: RFC 5321 4.1.1.10 QUIT. */
		timeout_remove(&conn->timeout);
		conn->state = FQ_STATE_QUIT;
		stream_write_str(conn->stream, "QUIT\r\n");
		stream_close_after_flush(conn->stream);
		return;
	}
	fq_conn_set_error(conn,
			  "451 4.4.2 timeout waiting for the server "
			  "(%s)",
			  conn->state == FQ_STATE_CONNECTING ? "connect"
							     : "reply");
	fq_conn_host_failed(conn);
}

static void fq_conn_arm_timeout(struct fq_conn *conn, unsigned int secs)
{
	timeout_remove(&conn->timeout);
	conn->timeout = timeout_add(fq->front->ioloop, secs * 1000,
				    fq_conn_timeout, conn);
}

static void fq_conn_send(struct fq_conn *conn, enum fq_state state,
			 const char *line)
{
	conn->state = state;
	stream_write_str(conn->stream, line);
	stream_write_str(conn->stream, "\r\n");
	fq_conn_arm_timeout(conn, fq->front->set->queue_timeout);
}

/* RFC 3461 4: xtext: "+" and "=" and characters outside "!".."~" as
   "+HH". */
static void fq_append_xtext(struct buf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < '!' || c > '~' || c == '+' || c == '=')
			buf_printf(out, "+%02X", c);
		else
			buf_append_c(out, c);
	}
}

static bool fq_has_8bit(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] >= 0x80)
			return true;
	}
	return false;
}

static bool fq_str_8bit(const char *s)
{
	return fq_has_8bit((const uint8_t *)s, strlen(s));
}

static void fq_job_fail_all(struct fq_conn *conn, enum fq_result res,
			    const char *reply)
{
	struct fq_job *job = conn->job;

	for (unsigned int i = 0; i < job->count; i++) {
		if (job->res[i] == FQ_RESULT_NONE) {
			job->res[i] = res;
			job->reply[i] = i_strdup(reply);
		}
	}
}

/* The job is done on this connection: results are applied and the
   connection stays for reuse. */
static void fq_conn_job_done(struct fq_conn *conn)
{
	fq_job_finish(conn, fq_conn_host(conn));
	conn->state = FQ_STATE_IDLE;
	timeout_remove(&conn->timeout);
	conn->timeout = timeout_add(fq->front->ioloop, FQ_IDLE_MSECS,
				    fq_conn_timeout, conn);
	fq_dispatch();
}

static void fq_conn_send_mail(struct fq_conn *conn)
{
	struct queue_message *msg = conn->job->m->msg;
	const struct queue_envelope *env = &msg->env;
	bool utf8 = fq_str_8bit(env->sender);
	struct buf cmd = BUF_INIT;

	for (unsigned int i = 0; i < conn->job->count; i++) {
		if (fq_str_8bit(env->rcpts[conn->job->idx[i]].address))
			utf8 = true;
	}
	/* RFC 8689 4.2.1: a REQUIRETLS message goes only over TLS to a
	   server that announces REQUIRETLS. */
	if (env->requiretls &&
	    (!conn->tls || (conn->ehlo.flags & SMTP_EHLO_REQUIRETLS) == 0)) {
		fq_conn_set_error(conn,
				  "550 5.7.30 REQUIRETLS support "
				  "required but not offered by %s",
				  fq_conn_host(conn));
		conn->perm_failure = true;
		conn->session_ok = false;
		stream_write_str(conn->stream, "QUIT\r\n");
		fq_conn_host_failed(conn);
		return;
	}
	/* RFC 6531 3.2: without SMTPUTF8 at the server, a message that
	   needs it cannot be sent. */
	if (utf8 && (conn->ehlo.flags & SMTP_EHLO_SMTPUTF8) == 0) {
		fq_job_fail_all(conn, FQ_RESULT_PERM,
				"553 5.6.7 the destination does not support "
				"SMTPUTF8");
		fq_conn_job_done(conn);
		return;
	}
	/* RFC 1870 6: do not send what the server said it will refuse. */
	if ((conn->ehlo.flags & SMTP_EHLO_SIZE) != 0 &&
	    conn->ehlo.size_max != 0 && msg->body_len > conn->ehlo.size_max) {
		fq_job_fail_all(conn, FQ_RESULT_PERM,
				"552 5.3.4 message larger than the "
				"destination's SIZE limit");
		fq_conn_job_done(conn);
		return;
	}
	buf_printf(&cmd, "MAIL FROM:<%s>", env->sender);
	if ((conn->ehlo.flags & SMTP_EHLO_SIZE) != 0)
		buf_printf(&cmd, " SIZE=%zu", msg->body_len);
	/* RFC 6152 2. Deviation from RFC 6152 3: an 8-bit message goes as
	   it is to a server without 8BITMIME (as most MTAs do) rather than
	   bouncing; there is no MIME downgrade yet. */
	if ((conn->ehlo.flags & SMTP_EHLO_8BITMIME) != 0 &&
	    fq_has_8bit(msg->body, msg->body_len))
		buf_append_str(&cmd, " BODY=8BITMIME");
	if (utf8)
		buf_append_str(&cmd, " SMTPUTF8"); /* RFC 6531 3.4 */
	if ((conn->ehlo.flags & SMTP_EHLO_DSN) != 0 && env->sender[0] != '\0') {
		/* RFC 3461 4.3, 4.4: passed on as received. */
		buf_append_str(&cmd, env->ret_full ? " RET=FULL" : " RET=HDRS");
		if (env->envid != NULL) {
			buf_append_str(&cmd, " ENVID=");
			fq_append_xtext(&cmd, env->envid);
		}
	}
	if (env->requiretls)
		buf_append_str(&cmd, " REQUIRETLS"); /* RFC 8689 4.1 */
	conn->job->rcpt_pos = 0;
	conn->job->accepted = 0;
	fq_conn_send(conn, FQ_STATE_MAIL, buf_cstr(&cmd));
	buf_free(&cmd);
}

static void fq_conn_send_rcpt(struct fq_conn *conn)
{
	struct fq_job *job = conn->job;
	const struct queue_rcpt *rcpt =
		&job->m->msg->env.rcpts[job->idx[job->rcpt_pos]];
	struct buf cmd = BUF_INIT;

	buf_printf(&cmd, "RCPT TO:<%s>", rcpt->address);
	if ((conn->ehlo.flags & SMTP_EHLO_DSN) != 0 &&
	    job->m->msg->env.sender[0] != '\0') {
		unsigned int n = rcpt->notify;

		/* RFC 3461 4.1: NEVER alone, or a list of the others. */
		if ((n & QUEUE_NOTIFY_NEVER) != 0) {
			buf_append_str(&cmd, " NOTIFY=NEVER");
		} else if (n != 0) {
			const char *sep = " NOTIFY=";

			if ((n & QUEUE_NOTIFY_SUCCESS) != 0) {
				buf_printf(&cmd, "%sSUCCESS", sep);
				sep = ",";
			}
			if ((n & QUEUE_NOTIFY_FAILURE) != 0) {
				buf_printf(&cmd, "%sFAILURE", sep);
				sep = ",";
			}
			if ((n & QUEUE_NOTIFY_DELAY) != 0)
				buf_printf(&cmd, "%sDELAY", sep);
		}
		if (rcpt->orcpt != NULL) {
			/* RFC 3461 4.2: ORCPT=addr-type ";" xtext */
			const char *semi = strchr(rcpt->orcpt, ';');

			if (semi != NULL) {
				buf_printf(&cmd, " ORCPT=%.*s;",
					   (int)(semi - rcpt->orcpt),
					   rcpt->orcpt);
				fq_append_xtext(&cmd, semi + 1);
			}
		}
	}
	fq_conn_send(conn, FQ_STATE_RCPT, buf_cstr(&cmd));
	buf_free(&cmd);
}

/* RFC 5321 4.5.2: dot-stuffing; every line ends in CRLF (a bare LF
   becomes CRLF), then the terminating "." line. */
static void fq_conn_send_body(struct fq_conn *conn)
{
	const struct queue_message *msg = conn->job->m->msg;
	struct buf out = BUF_INIT;
	size_t start = 0;

	buf_init(&out, msg->body_len + msg->body_len / 32 + 16);
	while (start < msg->body_len) {
		const uint8_t *lf =
			memchr(msg->body + start, '\n', msg->body_len - start);
		size_t end =
			lf == NULL ? msg->body_len : (size_t)(lf - msg->body);
		size_t line_end = end;

		if (line_end > start && msg->body[line_end - 1] == '\r')
			line_end--;
		if (msg->body[start] == '.')
			buf_append_c(&out, '.');
		buf_append(&out, msg->body + start, line_end - start);
		buf_append_str(&out, "\r\n");
		start = lf == NULL ? msg->body_len : end + 1;
	}
	buf_append_str(&out, ".\r\n");
	stream_write(conn->stream, buf_span(&out).p, out.used);
	buf_free_secure(&out);
	conn->state = FQ_STATE_BODY;
	/* RFC 5321 4.5.3.2.6: 10 minutes for the final reply. */
	fq_conn_arm_timeout(conn, fq->front->set->queue_timeout * 2);
}

static void fq_conn_send_ehlo(struct fq_conn *conn)
{
	char *line = i_strdup_printf("EHLO %s", fq->front->set->hostname);

	fq_conn_send(conn, FQ_STATE_EHLO, line);
	i_free(line);
}

/* The session is ready (after EHLO, and TLS when there is some). */
static void fq_conn_ready(struct fq_conn *conn)
{
	conn->session_ok = true;
	log_info(conn->log_id, "queue.session", "host=%s tls=%s",
		 log_value(0, fq_conn_host(conn)),
		 conn->tls ? stream_tls_version(conn->stream) : "no");
	fq_conn_send_mail(conn);
}

/* Handles one reply. Returns 0 to go on reading, -1 when reading must
   stop (the connection is gone, or TLS starts and the rest of the
   buffer is discarded). */
static int fq_conn_reply(struct fq_conn *conn, const struct smtp_reply *reply)
{
	struct fq_job *job = conn->job;
	const char *text = smtp_reply_one_line(reply, conn->reply_pool);
	const char *error;
	unsigned int cls = reply->code / 100;

	switch (conn->state) {
	case FQ_STATE_GREETING:
		/* RFC 5321 3.1: 220 greeting; 554 means no service. */
		if (reply->code != 220) {
			fq_conn_set_error(conn, "%s", text);
			fq_conn_host_failed(conn);
			return -1;
		}
		fq_conn_send_ehlo(conn);
		return 0;
	case FQ_STATE_EHLO:
		if (cls != 2) {
			/* RFC 5321 3.2: fall back to HELO. */
			char *line = i_strdup_printf("HELO %s",
						     fq->front->set->hostname);

			fq_conn_send(conn, FQ_STATE_HELO, line);
			i_free(line);
			return 0;
		}
		(void)smtp_ehlo_parse(reply, conn->pool, &conn->ehlo);
		if (!conn->tls &&
		    (conn->ehlo.flags & SMTP_EHLO_STARTTLS) != 0) {
			fq_conn_send(conn, FQ_STATE_STARTTLS, "STARTTLS");
			return 0;
		}
		fq_conn_ready(conn);
		return -1;
	case FQ_STATE_HELO:
		if (cls != 2) {
			fq_conn_set_error(conn, "%s", text);
			fq_conn_host_failed(conn);
			return -1;
		}
		memset(&conn->ehlo, 0, sizeof(conn->ehlo));
		fq_conn_ready(conn);
		return -1;
	case FQ_STATE_STARTTLS:
		if (reply->code != 220) {
			/* Opportunistic: go on in the clear (a REQUIRETLS
			   message is refused in fq_conn_send_mail). */
			fq_conn_ready(conn);
			return -1;
		}
		/* RFC 3207 6 / the STARTTLS injection class: whatever
		   the server sent after this 220 is discarded by
		   stream_start_tls_client, and we stop reading here. */
		if (stream_start_tls_client(conn->stream, fq->tls_client,
					    fq_conn_host(conn), &error) < 0) {
			fq_conn_set_error(conn, "451 4.7.0 TLS: %s", error);
			fq_conn_host_failed(conn);
			return -1;
		}
		conn->state = FQ_STATE_TLS_HANDSHAKE;
		fq_conn_arm_timeout(conn, fq->front->set->queue_timeout);
		return -1;
	case FQ_STATE_MAIL:
		if (cls != 2) {
			fq_job_fail_all(conn,
					cls == 5 ? FQ_RESULT_PERM
						 : FQ_RESULT_TEMP,
					text);
			fq_conn_job_done(conn);
			return -1;
		}
		fq_conn_send_rcpt(conn);
		return 0;
	case FQ_STATE_RCPT:
		/* RFC 5321 4.2.5: 250/251 accept; 4xx/5xx per recipient. */
		if (cls == 2) {
			job->accepted++;
		} else {
			job->res[job->rcpt_pos] =
				cls == 5 ? FQ_RESULT_PERM : FQ_RESULT_TEMP;
			job->reply[job->rcpt_pos] = i_strdup(text);
		}
		job->rcpt_pos++;
		if (job->rcpt_pos < job->count) {
			fq_conn_send_rcpt(conn);
			return 0;
		}
		if (job->accepted == 0) {
			/* RFC 5321 4.1.1.5: end the transaction. */
			fq_conn_send(conn, FQ_STATE_RSET, "RSET");
			return 0;
		}
		fq_conn_send(conn, FQ_STATE_DATA, "DATA");
		return 0;
	case FQ_STATE_DATA:
		if (reply->code != 354) {
			fq_job_fail_all(conn,
					cls == 5 ? FQ_RESULT_PERM
						 : FQ_RESULT_TEMP,
					text);
			fq_conn_job_done(conn);
			return -1;
		}
		fq_conn_send_body(conn);
		return 0;
	case FQ_STATE_BODY:
		/* RFC 5321 4.1.1.4: the reply after the final "." is for
		   every recipient accepted at RCPT. */
		fq_job_fail_all(conn,
				cls == 2   ? FQ_RESULT_OK
				: cls == 5 ? FQ_RESULT_PERM
					   : FQ_RESULT_TEMP,
				text);
		fq_conn_job_done(conn);
		return -1;
	case FQ_STATE_RSET:
		fq_conn_job_done(conn);
		return -1;
	case FQ_STATE_IDLE:
	case FQ_STATE_QUIT:
		/* Unsolicited (or the 221): nothing to do. */
		return 0;
	case FQ_STATE_RESOLVING:
	case FQ_STATE_CONNECTING:
	case FQ_STATE_TLS_HANDSHAKE:
		break;
	}
	/* A reply we did not ask for. */
	fq_conn_set_error(conn, "451 4.5.0 unexpected reply: %s", text);
	fq_conn_host_failed(conn);
	return -1;
}

static void fq_conn_input(struct fq_conn *conn)
{
	struct buf *input = stream_input(conn->stream);

	/* Bounded: each reply consumes bytes; at most 64 per event. */
	for (unsigned int n = 0; n < 64; n++) {
		struct smtp_reply reply;
		size_t consumed;
		const char *error;
		int ret;

		if (conn->state == FQ_STATE_IDLE ||
		    conn->state == FQ_STATE_QUIT) {
			/* Nothing is expected: drop what comes. */
			buf_consume(input, input->used);
			return;
		}
		pool_clear(conn->reply_pool);
		ret = smtp_reply_parse(buf_span(input), conn->reply_pool,
				       &reply, &consumed, &error);
		if (ret == 0)
			return;
		if (ret < 0) {
			fq_conn_set_error(conn, "451 4.5.0 bad reply: %s",
					  error);
			fq_conn_host_failed(conn);
			return;
		}
		buf_consume(input, consumed);
		if (fq_conn_reply(conn, &reply) < 0)
			return;
	}
}

static void fq_conn_stream_event(struct stream *stream, enum stream_event event,
				 void *context)
{
	struct fq_conn *conn = context;

	switch (event) {
	case STREAM_EVENT_INPUT:
		fq_conn_input(conn);
		break;
	case STREAM_EVENT_OUTPUT_DRAINED:
		break;
	case STREAM_EVENT_TLS_READY:
		conn->tls = true;
		/* RFC 3207 4.2: forget the old EHLO and ask again. */
		memset(&conn->ehlo, 0, sizeof(conn->ehlo));
		fq_conn_send_ehlo(conn);
		break;
	case STREAM_EVENT_EOF:
	case STREAM_EVENT_ERROR:
		if (conn->state == FQ_STATE_QUIT ||
		    conn->state == FQ_STATE_IDLE) {
			fq_conn_destroy(&conn);
			fq_dispatch();
			break;
		}
		fq_conn_set_error(conn, "451 4.4.2 connection lost (%s)",
				  event == STREAM_EVENT_EOF
					  ? "closed by the server"
					  : stream_error(stream));
		fq_conn_host_failed(conn);
		break;
	case STREAM_EVENT_CLOSED:
		fq_conn_destroy(&conn);
		fq_dispatch();
		break;
	}
}

static void fq_conn_connected(void *context)
{
	struct fq_conn *conn = context;
	int err = 0;
	socklen_t len = sizeof(err);

	io_remove(&conn->connect_io);
	if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		fq_conn_set_error(conn, "451 4.4.1 connect to %s:%u: %s",
				  conn->addrs[conn->addr_pos - 1].ip,
				  conn->addrs[conn->addr_pos - 1].port,
				  strerror(err));
		fq_conn_host_failed(conn);
		return;
	}
	conn->stream = stream_create(fq->front->ioloop, conn->fd,
				     fq_conn_stream_event, conn);
	conn->state = FQ_STATE_GREETING;
	/* RFC 5321 4.5.3.2.1: 5 minutes for the greeting. */
	fq_conn_arm_timeout(conn, fq->front->set->queue_timeout);
}

static void fq_conn_connect(struct fq_conn *conn, const struct fq_addr *addr)
{
	struct sockaddr_storage ss;
	socklen_t ss_len;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr->ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)addr->port);
		ss_len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, addr->ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)addr->port);
		ss_len = sizeof(*sin6);
	} else {
		fq_conn_set_error(conn, "451 4.4.1 bad address %s", addr->ip);
		fq_conn_host_failed(conn);
		return;
	}
	conn->state = FQ_STATE_CONNECTING;
	conn->perm_failure = false;
	conn->fd = socket(ss.ss_family,
			  SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (conn->fd < 0) {
		fq_conn_set_error(conn, "451 4.3.0 socket: %s",
				  strerror(errno));
		fq_conn_host_failed(conn);
		return;
	}
	if (connect(conn->fd, (struct sockaddr *)&ss, ss_len) < 0 &&
	    errno != EINPROGRESS) {
		fq_conn_set_error(conn, "451 4.4.1 connect to %s:%u: %s",
				  addr->ip, addr->port, strerror(errno));
		fq_conn_host_failed(conn);
		return;
	}
	conn->connect_io = io_add(fq->front->ioloop, conn->fd, IO_WRITE,
				  fq_conn_connected, conn);
	fq_conn_arm_timeout(conn, fq->front->set->queue_timeout);
}

#ifdef MARMOT_HAVE_DNS
static void fq_conn_host_resolved(void *context,
				  const struct dns_host_result *result)
{
	struct fq_conn *conn = context;
	const char *host = conn->mx_hosts[conn->mx_pos - 1];

	conn->lookup = NULL;
	conn->addr_count = 0;
	conn->addr_pos = 0;
	if (result->info.status != DNS_STATUS_OK) {
		fq_conn_set_error(conn, "%s 4.4.3 %s: address lookup: %s",
				  result->info.status == DNS_STATUS_TEMPFAIL
					  ? "451"
					  : "451",
				  host, dns_status_name(result->info.status));
	}
	for (unsigned int i = 0;
	     i < result->count && conn->addr_count < FQ_ADDRS_MAX; i++) {
		struct fq_addr *a = &conn->addrs[conn->addr_count++];

		snprintf(a->host, sizeof(a->host), "%s", host);
		snprintf(a->ip, sizeof(a->ip), "%s", result->addrs[i].text);
		a->port = conn->port;
	}
	fq_conn_next_addr(conn);
}

static void fq_conn_mx_resolved(void *context,
				const struct dns_mx_result *result)
{
	struct fq_conn *conn = context;
	const char *domain = conn->dest->key;

	conn->lookup = NULL;
	switch (result->info.status) {
	case DNS_STATUS_OK:
		if (result->null_mx) {
			/* RFC 7505 4.1: 556 5.1.10, permanently. */
			fq_conn_set_error(conn,
					  "556 5.1.10 %s accepts no "
					  "mail (null MX)",
					  domain);
			conn->perm_failure = true;
			break;
		}
		if (result->count == 0) {
			/* RFC 5321 5.1: MX records but none usable. */
			fq_conn_set_error(conn,
					  "550 5.4.4 %s: no usable MX "
					  "host",
					  domain);
			conn->perm_failure = true;
			break;
		}
		/* RFC 5321 5.1: in preference order (the resolver has
		   sorted them and shuffled equal preferences). */
		for (unsigned int i = 0;
		     i < result->count && conn->mx_count < FQ_MX_MAX; i++)
			conn->mx_hosts[conn->mx_count++] =
				i_strdup(result->mx[i].host);
		break;
	case DNS_STATUS_NODATA:
		/* RFC 5321 5.1: no MX: the domain itself is the implicit
		   MX (its A/AAAA). */
		conn->mx_hosts[conn->mx_count++] = i_strdup(domain);
		break;
	case DNS_STATUS_NXDOMAIN:
	case DNS_STATUS_INVALID_NAME:
		fq_conn_set_error(conn, "550 5.1.2 %s: no such domain", domain);
		conn->perm_failure = true;
		break;
	case DNS_STATUS_TEMPFAIL:
		fq_conn_set_error(
			conn, "451 4.4.3 %s: MX lookup failed: %s", domain,
			result->info.error != NULL ? result->info.error
						   : "temporary DNS failure");
		break;
	}
	fq_conn_next_addr(conn);
}
#endif

/* Connects to the next candidate address, resolving the next MX host
   when the current one's addresses are used up; ends the job when all
   are tried. */
static void fq_conn_next_addr(struct fq_conn *conn)
{
	if (conn->addr_pos < conn->addr_count) {
		const struct fq_addr *addr = &conn->addrs[conn->addr_pos++];

		fq_conn_connect(conn, addr);
		return;
	}
#ifdef MARMOT_HAVE_DNS
	if (conn->mx_pos < conn->mx_count && !conn->perm_failure) {
		conn->state = FQ_STATE_RESOLVING;
		conn->lookup =
			dns_lookup_host(fq->dns, conn->mx_hosts[conn->mx_pos++],
					fq_conn_host_resolved, conn);
		return;
	}
#endif
	/* Every host failed: the job's recipients get the last error. */
	if (conn->last_error == NULL)
		fq_conn_set_error(conn, "451 4.4.1 no host to deliver to");
	fq_conn_destroy(&conn);
	fq_dispatch();
}

static struct fq_conn *fq_conn_create(struct fq_dest *dest, struct fq_job *job)
{
	struct fq_conn *conn = i_new(struct fq_conn, 1);

	conn->dest = dest;
	dest->active++;
	conn->job = job;
	conn->fd = -1;
	conn->port = 25;
	conn->pool = pool_create("queue conn", 4096);
	conn->reply_pool = pool_create("queue reply", 1024);
	snprintf(conn->log_id, sizeof(conn->log_id), "q%u", ++fq->conn_seq);
	conn->next = fq->conns;
	if (fq->conns != NULL)
		fq->conns->prev = conn;
	fq->conns = conn;
	fq->conn_count++;
	log_info(conn->log_id, "queue.connect", "dest=%s id=%s rcpts=%u",
		 log_value(0, dest->key), job->m->id, job->count);
	if (fq->relay && !fq->relay_is_ip) {
		/* A smarthost by name: its addresses, no MX lookup. */
		conn->mx_hosts[conn->mx_count++] = i_strdup(fq->relay_host);
		conn->port = fq->relay_port;
		fq_conn_next_addr(conn);
		return conn;
	}
	if (fq->relay) {
		struct fq_addr *a = &conn->addrs[conn->addr_count++];

		snprintf(a->host, sizeof(a->host), "%s", fq->relay_host);
		snprintf(a->ip, sizeof(a->ip), "%s", fq->relay_host);
		a->port = fq->relay_port;
		fq_conn_next_addr(conn);
		return conn;
	}
#ifdef MARMOT_HAVE_DNS
	conn->state = FQ_STATE_RESOLVING;
	conn->lookup =
		dns_lookup_mx(fq->dns, dest->key, fq_conn_mx_resolved, conn);
#else
	fq_conn_set_error(conn, "451 4.3.5 no resolver in this build: set "
				"queue_relay_host");
	fq_conn_next_addr(conn);
#endif
	return conn;
}

static void fq_conn_start_job(struct fq_conn *conn)
{
	timeout_remove(&conn->timeout);
	fq_conn_send_mail(conn);
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

static struct fq_conn *fq_dest_idle_conn(struct fq_dest *dest)
{
	for (struct fq_conn *c = fq->conns; c != NULL; c = c->next) {
		if (c->dest == dest && c->state == FQ_STATE_IDLE)
			return c;
	}
	return NULL;
}

static struct fq_dest *fq_dest_find(const char *key)
{
	for (struct fq_dest *d = fq->dests; d != NULL; d = d->next) {
		if (strcmp(d->key, key) == 0)
			return d;
	}
	return NULL;
}

static bool fq_dest_has_room(const char *key)
{
	struct fq_dest *d = fq_dest_find(key);

	if (d == NULL)
		return fq->conn_count < FQ_CONNS_MAX;
	return fq_dest_idle_conn(d) != NULL ||
	       (d->active < fq->front->set->queue_max_per_domain &&
		fq->conn_count < FQ_CONNS_MAX);
}

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

static void fq_dispatch(void)
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
