/* front-delivery.c - the front's side of delivery (front-delivery.h): the
   recipient and sender questions to the vault (IPC_VAULT_RCPT,
   IPC_VAULT_SENDER, over front.c's vault connection; front.c hands the
   replies here) and the commit of a message: the verdict stage on the
   verdict worker pool, then group commit of the spool records on one
   commit thread, and the outbound queue for remote recipients.

   Group commit: a delivery whose verdict is done waits in commit_pending.
   Whenever no batch is running, every pending delivery becomes one batch;
   the commit thread sorts the batch's local copies by account and writes
   each account's records with one spool_append_many() (one flock, one
   fsync), while more deliveries gather for the next batch. So under load
   N concurrent SMTP transactions to one account cost about one fsync per
   batch instead of N. A delivery's callback runs only after the batch that
   holds it is durable, and only with FRONT_COMMIT_OK if every one of its
   copies is.

   Security stance: the message is untrusted bytes; it is only copied,
   handed to the verdict checks (which bound their own work), sealed to the
   recipients' public keys and written. The front never holds a secret
   key: sealing needs only the public key the vault gave for the
   recipient. Nothing of the message is logged; addresses are logged
   escaped. Replies from the vault are parsed in full (ipc_end) and
   bounded; a malformed one closes the vault connection. */

#include "lib.h"
#include "buf.h"
#include "ioloop.h"
#include "ipc.h"
#include "log.h"
#include "pool.h"
#include "spool.h"
#include "worker.h"
#include "front-private.h"
#include "front-delivery.h"
#include "front-verdict.h"

#ifdef FRONT_DELIVERY_QUEUE
#include "queue.h"
#include "front-queue.h"
#endif

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

_Static_assert((int)FRONT_RCPT_OK == IPC_RCPT_OK &&
		       (int)FRONT_RCPT_UNKNOWN == IPC_RCPT_UNKNOWN &&
		       (int)FRONT_RCPT_NOT_LOCAL == IPC_RCPT_NOT_LOCAL &&
		       (int)FRONT_RCPT_DISABLED == IPC_RCPT_DISABLED &&
		       (int)FRONT_RCPT_OVER_QUOTA == IPC_RCPT_OVER_QUOTA &&
		       (int)FRONT_RCPT_TEMPFAIL == IPC_RCPT_TEMPFAIL,
	       "enum front_rcpt_result is the wire value");

/* Vault questions waiting for their answer; more get TEMPFAIL. */
#define DELIVERY_MAX_PENDING 4096
/* Longest address sent to the vault (RFC 5321 4.5.3.1.3: a path is at
   most 256 octets; leave room for SMTPUTF8 and quoting). */
#define DELIVERY_MAX_ADDRESS 1024
/* Deliveries in one batch (their copies are all in memory anyway). */
#define DELIVERY_MAX_BATCH 256
/* While the vault is unreachable (starting, restarting after a crash),
   questions wait this long, retried every DELIVERY_VAULT_RETRY_MSECS,
   before they are answered TEMPFAIL. */
#define DELIVERY_VAULT_WAIT_MSECS 2000
#define DELIVERY_VAULT_RETRY_MSECS 100

/* ---- the vault questions ---- */

struct delivery_request {
	struct delivery_request *prev, *next;
	uint32_t id; /* 0 = not sent yet */
	/* Not sent and never will be (limits): TEMPFAIL from the timer. */
	bool fail_now;
	uint64_t since_ms; /* when it was asked (waiting for the vault) */
	enum ipc_type type;
	uint64_t account_id, size_hint;
	bool sender;
	front_rcpt_callback_t *rcpt_cb;
	front_sender_callback_t *sender_cb;
	void *context;
	bool cancelled;
	char *address;
};

enum delivery_state {
	DELIVERY_STATE_NEW,
	DELIVERY_STATE_VERDICT, /* on the verdict pool */
	DELIVERY_STATE_PENDING, /* waiting for a batch */
	DELIVERY_STATE_COMMITTING, /* in the running batch */
	DELIVERY_STATE_DONE,
};

struct delivery_local {
	char *rcpt;
	struct front_rcpt_target target;
};

struct delivery_remote {
	char *rcpt, *orcpt;
	unsigned int notify;
};

struct front_delivery {
	struct front_delivery *next; /* commit_pending or a batch */
	pool_t pool;
	char *sender, *client_ip;
	bool submission;
	uint64_t account_id;
	struct delivery_local *locals;
	unsigned int local_count, local_alloc;
	struct delivery_remote *remotes;
	unsigned int remote_count, remote_alloc;
	bool ret_full, requiretls;
	/* front_delivery_set_junk(): the check that filed it into Junk. */
	const char *junk_check;
	/* front_delivery_set_remote_prefix(): before the queue's copy. */
	const char *remote_prefix;
	char *envid;
	int64_t hold_until;

	enum delivery_state state;
	/* front_delivery_destroy() ran while committing: free at the end,
	   call nobody. */
	bool destroyed;
	front_commit_callback_t *cb;
	void *context;

	/* The commit (the workers' part, see file head): message points
	   into stored, after its Return-Path. */
	const uint8_t *message;
	size_t message_len;
	struct front_verdict verdict;
	/* What goes to the spool: Return-Path + message with the verdict
	   headers; and to the queue: the message with the verdict headers
	   (stored + remote_offset). */
	struct buf stored;
	size_t remote_offset;
	enum front_commit_result result;
	const char *reason;
	int64_t received;
	char queue_id[33];
};

struct delivery_batch {
	struct front_delivery *head;
	unsigned int count;
	/* Results of the commit thread, for the log line. */
	unsigned int accounts, records, failed_accounts;
	uint64_t msecs;
};

static struct front_delivery_env delivery_env;
static char *delivery_data_dir;
static bool delivery_initialized;
static struct delivery_request *delivery_requests;
static unsigned int delivery_request_count;
static uint32_t delivery_next_id = 1;
static struct timeout *delivery_tempfail_to, *delivery_retry_to;
static struct worker_pool *delivery_verdict_pool;
static struct worker_pool *delivery_commit_pool;
static struct front_delivery *commit_pending, **commit_pending_tail;
static unsigned int commit_pending_count;
static bool commit_running;
#ifdef FRONT_DELIVERY_QUEUE
static struct queue *delivery_queue;
#endif

static void delivery_request_free(struct delivery_request *req)
{
	if (req->prev != NULL)
		req->prev->next = req->next;
	else
		delivery_requests = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	i_assert(delivery_request_count > 0);
	delivery_request_count--;
	i_free(req->address);
	i_free(req);
}

static void delivery_request_tempfail(struct delivery_request *req)
{
	if (!req->cancelled) {
		if (req->sender) {
			req->sender_cb(req->context, false, true);
		} else {
			const struct front_rcpt rcpt = {
				.result = FRONT_RCPT_TEMPFAIL,
				.address = req->address,
			};

			req->rcpt_cb(req->context, &rcpt);
		}
	}
	delivery_request_free(req);
}

static void delivery_tempfail_later(void *context ATTR_UNUSED)
{
	struct delivery_request *req, *next;

	timeout_remove(&delivery_tempfail_to);
	for (req = delivery_requests; req != NULL; req = next) {
		next = req->next;
		if (req->id == 0 && req->fail_now)
			delivery_request_tempfail(req);
	}
}

static void delivery_request_write(struct delivery_request *req,
				   struct ipc_conn *vault)
{
	struct buf out = BUF_INIT;
	size_t off;

	req->id = delivery_next_id++;
	if (delivery_next_id == 0)
		delivery_next_id = 1;
	off = ipc_msg_begin(&out, req->type, req->id);
	if (req->type == IPC_VAULT_RCPT) {
		ipc_put_str(&out, req->address);
		ipc_put_u64(&out, req->size_hint);
	} else {
		ipc_put_u64(&out, req->account_id);
		ipc_put_str(&out, req->address);
	}
	ipc_msg_finish(&out, off);
	ipc_conn_send(vault, &out);
	buf_free(&out);
}

/* The vault was unreachable: try again; send what waits, or fail what
   waited too long. */
static void delivery_vault_retry(void *context ATTR_UNUSED)
{
	struct ipc_conn *vault = delivery_env.vault_get();
	uint64_t now = ioloop_now_ms(delivery_env.ioloop);
	unsigned int wait = delivery_env.vault_wait_msecs == 0
				    ? DELIVERY_VAULT_WAIT_MSECS
				    : delivery_env.vault_wait_msecs;
	struct delivery_request *req, *next;

	for (req = delivery_requests; req != NULL; req = next) {
		next = req->next;
		if (req->id != 0 || req->fail_now)
			continue;
		if (vault != NULL)
			delivery_request_write(req, vault);
		else if (now - req->since_ms >= wait)
			delivery_request_tempfail(req);
	}
	/* (A callback above may have asked a new question.) */
	for (req = delivery_requests; req != NULL; req = req->next) {
		if (req->id == 0 && !req->fail_now)
			return;
	}
	timeout_remove(&delivery_retry_to);
}

/* A new request in the table, not sent yet (id 0). */
static struct delivery_request *delivery_request_new(const char *address,
						     void *context)
{
	struct delivery_request *req = i_new(struct delivery_request, 1);

	req->address = i_strdup(address);
	req->context = context;
	req->next = delivery_requests;
	if (delivery_requests != NULL)
		delivery_requests->prev = req;
	delivery_requests = req;
	delivery_request_count++;
	return req;
}

static void delivery_request_send(struct delivery_request *req,
				  enum ipc_type type, uint64_t account_id,
				  uint64_t size_hint)
{
	struct ipc_conn *vault;

	i_assert(delivery_initialized);
	req->type = type;
	req->account_id = account_id;
	req->size_hint = size_hint;
	req->since_ms = ioloop_now_ms(delivery_env.ioloop);
	if (delivery_request_count > DELIVERY_MAX_PENDING ||
	    strlen(req->address) > DELIVERY_MAX_ADDRESS) {
		req->fail_now = true;
		if (delivery_tempfail_to == NULL) {
			delivery_tempfail_to =
				timeout_add(delivery_env.ioloop, 0,
					    delivery_tempfail_later, NULL);
		}
		return;
	}
	/* Behind others that wait: keep their order. */
	vault = delivery_retry_to != NULL ? NULL : delivery_env.vault_get();
	if (vault == NULL) {
		if (delivery_retry_to == NULL) {
			delivery_retry_to = timeout_add(
				delivery_env.ioloop, DELIVERY_VAULT_RETRY_MSECS,
				delivery_vault_retry, NULL);
		}
		return;
	}
	delivery_request_write(req, vault);
}

/* An address with a NUL cannot be asked about (IPC strings carry none);
   the SMTP parser never produces one. */
void front_delivery_resolve(const char *address, uint64_t size_hint,
			    front_rcpt_callback_t *cb, void *context)
{
	struct delivery_request *req = delivery_request_new(address, context);

	req->rcpt_cb = cb;
	delivery_request_send(req, IPC_VAULT_RCPT, 0, size_hint);
}

void front_delivery_sender_owned(uint64_t account_id, const char *address,
				 front_sender_callback_t *cb, void *context)
{
	struct delivery_request *req = delivery_request_new(address, context);

	req->sender = true;
	req->sender_cb = cb;
	delivery_request_send(req, IPC_VAULT_SENDER, account_id, 0);
}

void front_delivery_cancel(void *context)
{
	for (struct delivery_request *req = delivery_requests; req != NULL;
	     req = req->next) {
		if (req->context == context)
			req->cancelled = true;
	}
}

static struct delivery_request *delivery_request_find(uint32_t id, bool sender)
{
	for (struct delivery_request *req = delivery_requests; req != NULL;
	     req = req->next) {
		if (req->id == id && id != 0)
			return req->sender == sender ? req : NULL;
	}
	return NULL;
}

static int delivery_rcpt_reply(const struct ipc_frame *frame)
{
	struct delivery_request *req = delivery_request_find(frame->id, false);
	struct front_rcpt rcpt;
	struct ipc_reader r;
	uint32_t result, permanent, n;
	pool_t pool;
	int ret = -1;

	if (req == NULL)
		return -1;
	pool = pool_create("rcpt reply", 512);
	memset(&rcpt, 0, sizeof(rcpt));
	ipc_reader_init(&r, frame);
	result = ipc_get_u32(&r);
	permanent = ipc_get_u32(&r);
	rcpt.address = ipc_get_str(&r, pool);
	n = ipc_get_u32(&r);
	if (r.failed || n > IPC_RCPT_MAX_LOCALS)
		goto out;
	rcpt.locals = p_new(pool, struct front_rcpt_target, n);
	rcpt.local_count = n;
	for (uint32_t i = 0; i < n; i++) {
		struct span pk;

		rcpt.locals[i].account_id = ipc_get_u64(&r);
		pk = ipc_get_bytes(&r);
		if (r.failed || pk.len != sizeof(rcpt.locals[i].public_key))
			goto out;
		memcpy(rcpt.locals[i].public_key, pk.p, pk.len);
	}
	n = ipc_get_u32(&r);
	if (r.failed || n > IPC_RCPT_MAX_REMOTES)
		goto out;
	rcpt.remote = p_new(pool, const char *, n);
	rcpt.remote_count = n;
	for (uint32_t i = 0; i < n; i++)
		rcpt.remote[i] = ipc_get_str(&r, pool);
	if (ipc_end(&r) < 0 || result > IPC_RCPT_TEMPFAIL || permanent > 1)
		goto out;
	rcpt.result = (enum front_rcpt_result)result;
	rcpt.quota_permanent = permanent != 0;
	/* Only OK carries targets, and OK carries at least one. */
	if ((rcpt.result == FRONT_RCPT_OK) !=
	    (rcpt.local_count + rcpt.remote_count > 0))
		goto out;
	if (rcpt.address[0] == '\0')
		rcpt.address = req->address;
	if (!req->cancelled)
		req->rcpt_cb(req->context, &rcpt);
	delivery_request_free(req);
	ret = 0;
out:
	pool_unref(&pool);
	return ret;
}

static int delivery_sender_reply(const struct ipc_frame *frame)
{
	struct delivery_request *req = delivery_request_find(frame->id, true);
	struct ipc_reader r;
	uint32_t owned;

	if (req == NULL)
		return -1;
	ipc_reader_init(&r, frame);
	owned = ipc_get_u32(&r);
	if (ipc_end(&r) < 0 || owned > 2)
		return -1;
	if (!req->cancelled)
		req->sender_cb(req->context, owned == 1, owned == 2);
	delivery_request_free(req);
	return 0;
}

int front_delivery_vault_reply(const struct ipc_frame *frame)
{
	if (frame->type == IPC_FRONT_RCPT_REPLY)
		return delivery_rcpt_reply(frame);
	if (frame->type == IPC_FRONT_SENDER_REPLY)
		return delivery_sender_reply(frame);
	return -1;
}

void front_delivery_vault_lost(void)
{
	struct delivery_request *req, *next;

	/* Every question sent is lost with the connection; those not sent
	   yet keep waiting for a new one. */
	for (req = delivery_requests; req != NULL; req = next) {
		next = req->next;
		if (req->id != 0)
			delivery_request_tempfail(req);
	}
}

/* ---- building a delivery ---- */

struct front_delivery *front_delivery_create(const char *sender,
					     const char *client_ip,
					     bool submission,
					     uint64_t account_id)
{
	pool_t pool = pool_create("delivery", 1024);
	struct front_delivery *d = p_new(pool, struct front_delivery, 1);

	/* The SMTP parser never lets line ends into a path: Return-Path
	   is built from it. */
	i_assert(strpbrk(sender, "\r\n") == NULL);
	d->pool = pool;
	d->sender = p_strdup(pool, sender);
	d->client_ip = p_strdup(pool, client_ip == NULL ? "" : client_ip);
	d->submission = submission;
	d->account_id = account_id;
	return d;
}

void front_delivery_add_local(struct front_delivery *d, const char *rcpt,
			      const struct front_rcpt_target *target)
{
	i_assert(d->state == DELIVERY_STATE_NEW);
	for (unsigned int i = 0; i < d->local_count; i++) {
		if (d->locals[i].target.account_id == target->account_id)
			return;
	}
	if (d->local_count == d->local_alloc) {
		d->local_alloc = d->local_alloc == 0 ? 4 : d->local_alloc * 2;
		d->locals = i_realloc(d->locals,
				      sizeof(*d->locals) * d->local_alloc);
	}
	d->locals[d->local_count].rcpt = p_strdup(d->pool, rcpt);
	d->locals[d->local_count].target = *target;
	d->local_count++;
}

void front_delivery_set_remote_prefix(struct front_delivery *d,
				      const char *fields)
{
	d->remote_prefix = p_strdup(d->pool, fields);
}

void front_delivery_add_remote(struct front_delivery *d, const char *rcpt,
			       const char *orcpt, unsigned int notify)
{
	i_assert(d->state == DELIVERY_STATE_NEW);
	for (unsigned int i = 0; i < d->remote_count; i++) {
		if (strcmp(d->remotes[i].rcpt, rcpt) == 0)
			return;
	}
	if (d->remote_count == d->remote_alloc) {
		d->remote_alloc =
			d->remote_alloc == 0 ? 4 : d->remote_alloc * 2;
		d->remotes = i_realloc(d->remotes,
				       sizeof(*d->remotes) * d->remote_alloc);
	}
	d->remotes[d->remote_count].rcpt = p_strdup(d->pool, rcpt);
	d->remotes[d->remote_count].orcpt = p_strdup(d->pool, orcpt);
	d->remotes[d->remote_count].notify = notify;
	d->remote_count++;
}

void front_delivery_set_dsn(struct front_delivery *d, bool ret_full,
			    const char *envid)
{
	i_assert(d->state == DELIVERY_STATE_NEW);
	d->ret_full = ret_full;
	d->envid = p_strdup(d->pool, envid);
}

void front_delivery_set_hold_until(struct front_delivery *d, int64_t unix_time)
{
	i_assert(d->state == DELIVERY_STATE_NEW);
	d->hold_until = unix_time;
}

void front_delivery_set_requiretls(struct front_delivery *d, bool on)
{
	i_assert(d->state == DELIVERY_STATE_NEW);
	d->requiretls = on;
}

void front_delivery_set_junk(struct front_delivery *d, const char *check)
{
	i_assert(d->state == DELIVERY_STATE_NEW);
	d->junk_check = p_strdup(d->pool, check);
}

static void delivery_free(struct front_delivery *d)
{
	i_free(d->locals);
	i_free(d->remotes);
	buf_free(&d->stored);
	pool_unref(&d->pool);
}

void front_delivery_destroy(struct front_delivery **_d)
{
	struct front_delivery *d = *_d;

	*_d = NULL;
	if (d == NULL)
		return;
	if (d->state != DELIVERY_STATE_NEW && d->state != DELIVERY_STATE_DONE) {
		/* The workers still use it: freed when the commit ends. */
		d->destroyed = true;
		return;
	}
	delivery_free(d);
}

/* ---- the commit ---- */

/* The length of the first header field of msg if it is a Received: field
   (with its folded continuation lines and CRLF), else 0. */
static size_t delivery_first_received_len(const uint8_t *msg, size_t len)
{
	struct span s = span_make(msg, len);
	size_t pos = 0;

	if (!span_starts_with_ci(s, SPAN_LIT("Received:")))
		return 0;
	for (;;) {
		ssize_t lf = span_find_byte(span_skip(s, pos), '\n');

		if (lf < 0)
			return 0;
		pos += (size_t)lf + 1;
		/* RFC 5322 2.2.3: a line starting with WSP continues the
		   field. */
		if (pos >= len || (msg[pos] != ' ' && msg[pos] != '\t'))
			return pos;
	}
}

/* Worker thread (verdict pool): the verdict, then the stored copy. */
static void delivery_verdict_work(void *context)
{
	struct front_delivery *d = context;
	const struct front_verdict_input input = {
		.message = d->message,
		.message_len = d->message_len,
		.sender = d->sender,
		.client_ip = d->client_ip,
		.submission = d->submission,
		.account_id = d->account_id,
	};
	size_t received_len, headers_len;

	if (d->local_count + d->remote_count == 0) {
		d->result = FRONT_COMMIT_OK;
		return;
	}
	front_verdict_run(&input, d->pool, &d->verdict);
	if (d->junk_check != NULL && d->verdict.action < FRONT_VERDICT_JUNK) {
		d->verdict.action = FRONT_VERDICT_JUNK;
		d->verdict.check = d->junk_check;
	}
	if (d->verdict.action == FRONT_VERDICT_REJECT) {
		d->result = FRONT_COMMIT_REJECTED;
		d->reason = d->verdict.reason;
		return;
	}
	headers_len = strlen(d->verdict.headers);
	if (headers_len > 0) {
		/* The verdict headers go after the Received: trace field
		   that starts the message, not inside the trace block of
		   Return-Path and Received (RFC 5322 3.6.7). */
		struct buf with = BUF_INIT;

		buf_init(&with, d->stored.used + headers_len);
		received_len =
			delivery_first_received_len(d->message, d->message_len);
		buf_append(&with, d->stored.data, d->remote_offset);
		buf_append(&with, d->message, received_len);
		buf_append(&with, d->verdict.headers, headers_len);
		buf_append(&with, d->message + received_len,
			   d->message_len - received_len);
		buf_free(&d->stored);
		d->stored = with;
		d->message = d->stored.data + d->remote_offset;
		d->message_len = d->stored.used - d->remote_offset;
	}
	if (d->stored.used > SPOOL_MAX_MESSAGE) {
		d->result = FRONT_COMMIT_TOO_BIG;
		return;
	}
	d->result = FRONT_COMMIT_OK;
}

static void delivery_finish(struct front_delivery *d)
{
	struct buf fields = BUF_INIT;

	d->state = DELIVERY_STATE_DONE;
	/* The queue runner takes the new message at once. */
	if (d->queue_id[0] != '\0')
		front_queue_added(d->queue_id);
	if (d->local_count + d->remote_count > 0) {
		buf_log_kv(&fields, "from", d->sender);
		buf_log_kv(&fields, "ip", d->client_ip);
		buf_printf(&fields, " locals=%u remotes=%u size=%zu",
			   d->local_count, d->remote_count, d->message_len);
		if (d->verdict.check != NULL) {
			buf_log_kv(&fields, "check", d->verdict.check);
		}
		if (d->queue_id[0] != '\0')
			buf_log_kv(&fields, "queue_id", d->queue_id);
		switch (d->result) {
		case FRONT_COMMIT_OK:
			log_info(NULL,
				 d->verdict.action == FRONT_VERDICT_JUNK
					 ? "delivery.stored.junk"
					 : "delivery.stored",
				 "%s", buf_cstr(&fields));
			break;
		case FRONT_COMMIT_REJECTED:
			log_info(NULL, "delivery.rejected", "%s",
				 buf_cstr(&fields));
			break;
		case FRONT_COMMIT_TEMPFAIL:
			log_warning(NULL, "delivery.tempfail", "%s",
				    buf_cstr(&fields));
			break;
		case FRONT_COMMIT_TOO_BIG:
			log_info(NULL, "delivery.too_big", "%s",
				 buf_cstr(&fields));
			break;
		}
		buf_free(&fields);
	}
	if (d->destroyed) {
		delivery_free(d);
		return;
	}
	/* The caller may destroy d from its callback. */
	d->cb(d->context, d->result, d->reason);
}

struct delivery_copy {
	struct front_delivery *d;
	const struct delivery_local *local;
	unsigned int seq; /* position in the batch */
};

static int delivery_copy_cmp(const void *p1, const void *p2)
{
	const struct delivery_copy *c1 = p1, *c2 = p2;

	if (c1->local->target.account_id != c2->local->target.account_id)
		return c1->local->target.account_id <
				       c2->local->target.account_id
			       ? -1
			       : 1;
	/* Within an account: the order the deliveries came in. */
	return c1->seq < c2->seq ? -1 : (c1->seq > c2->seq ? 1 : 0);
}

/* Writes copies[0..n) (one account) in one spool_append_many. */
static int delivery_write_account(struct delivery_batch *batch,
				  const struct delivery_copy *copies,
				  unsigned int n)
{
	const struct front_rcpt_target *target = &copies[0].local->target;
	struct spool_record *records = i_new(struct spool_record, n);
	uint8_t(*ids)[SPOOL_RECORD_ID_LEN] = i_malloc(sizeof(*ids) * (size_t)n);
	const char *error;
	char *dir;
	int ret;

	for (unsigned int i = 0; i < n; i++) {
		struct front_delivery *d = copies[i].d;
		bool junk = d->verdict.action == FRONT_VERDICT_JUNK;

		records[i].received = d->received;
		records[i].flags = junk ? SPOOL_FLAG_JUNK : 0;
		records[i].sender = d->sender;
		records[i].recipient = copies[i].local->rcpt;
		records[i].mailbox = junk ? FRONT_VERDICT_JUNK_MAILBOX : "";
		records[i].message = d->stored.data;
		records[i].message_len = d->stored.used;
	}
	dir = i_strdup_printf("%s/accounts/%" PRIu64, delivery_data_dir,
			      target->account_id);
	ret = spool_append_many(dir, target->public_key, records, n, ids,
				&error);
	if (ret < 0) {
		log_error(NULL, "delivery.spool_failed",
			  "account=%" PRIu64 " records=%u error=%s",
			  target->account_id, n, log_value(0, error));
		batch->failed_accounts++;
	}
	batch->accounts++;
	batch->records += n;
	i_free(dir);
	i_free(ids);
	i_free(records);
	return ret;
}

static void delivery_enqueue_remote(struct front_delivery *d)
{
#ifdef FRONT_DELIVERY_QUEUE
	struct queue_rcpt *rcpts = i_new(struct queue_rcpt, d->remote_count);
	struct queue_envelope env;
	struct buf copy = BUF_INIT;
	const uint8_t *data = d->stored.data + d->remote_offset;
	size_t data_len = d->stored.used - d->remote_offset;
	const char *error;

	if (d->remote_prefix != NULL) {
		buf_append_str(&copy, d->remote_prefix);
		buf_append(&copy, data, data_len);
		data = copy.data;
		data_len = copy.used;
	}

	for (unsigned int i = 0; i < d->remote_count; i++) {
		rcpts[i].address = d->remotes[i].rcpt;
		rcpts[i].orcpt = d->remotes[i].orcpt;
		rcpts[i].notify = d->remotes[i].notify;
	}
	memset(&env, 0, sizeof(env));
	env.sender = d->sender;
	env.rcpts = rcpts;
	env.rcpt_count = d->remote_count;
	env.ret_full = d->ret_full;
	env.envid = d->envid;
	env.hold_until = d->hold_until;
	env.requiretls = d->requiretls;
	env.account_id = d->account_id;
	if (delivery_queue == NULL) {
		log_error(NULL, "delivery.queue_failed", "error=%s",
			  "the queue could not be opened");
		d->result = FRONT_COMMIT_TEMPFAIL;
	} else if (queue_enqueue(delivery_queue, &env, data, data_len,
				 d->queue_id, &error) < 0) {
		log_error(NULL, "delivery.queue_failed", "error=%s",
			  log_value(0, error));
		d->result = FRONT_COMMIT_TEMPFAIL;
	}
	i_free(rcpts);
	buf_free(&copy);
#else
	/* Built without src/lib-queue: remote recipients cannot be made
	   durable, so they are never acknowledged. */
	log_error(NULL, "delivery.queue_failed", "error=%s",
		  "built without the outbound queue");
	d->result = FRONT_COMMIT_TEMPFAIL;
#endif
}

/* Commit thread: every local copy of the batch, grouped by account, then
   the remote recipients of each delivery. */
static void delivery_commit_work(void *context)
{
	struct delivery_batch *batch = context;
	struct delivery_copy *copies;
	unsigned int n = 0, start;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (struct front_delivery *d = batch->head; d != NULL; d = d->next)
		n += d->local_count;
	copies = i_new(struct delivery_copy, n == 0 ? 1 : n);
	n = 0;
	for (struct front_delivery *d = batch->head; d != NULL; d = d->next) {
		for (unsigned int i = 0; i < d->local_count; i++) {
			copies[n].d = d;
			copies[n].local = &d->locals[i];
			copies[n].seq = n;
			n++;
		}
	}
	qsort(copies, n, sizeof(*copies), delivery_copy_cmp);
	for (start = 0; start < n;) {
		unsigned int end = start + 1;

		while (end < n &&
		       copies[end].local->target.account_id ==
			       copies[start].local->target.account_id)
			end++;
		if (delivery_write_account(batch, copies + start, end - start) <
		    0) {
			for (unsigned int i = start; i < end; i++)
				copies[i].d->result = FRONT_COMMIT_TEMPFAIL;
		}
		start = end;
	}
	i_free(copies);
	for (struct front_delivery *d = batch->head; d != NULL; d = d->next) {
		if (d->remote_count > 0 && d->result == FRONT_COMMIT_OK)
			delivery_enqueue_remote(d);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	batch->msecs = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000 +
				  (t1.tv_nsec - t0.tv_nsec) / 1000000);
}

static void delivery_commit_kick(void);

static void delivery_commit_done(void *context)
{
	struct delivery_batch *batch = context;
	struct front_delivery *d, *next;

	log_debug(NULL, "delivery.batch",
		  "messages=%u accounts=%u records=%u failed=%u msecs=%" PRIu64,
		  batch->count, batch->accounts, batch->records,
		  batch->failed_accounts, batch->msecs);
	commit_running = false;
	for (d = batch->head; d != NULL; d = next) {
		next = d->next;
		d->next = NULL;
		delivery_finish(d);
	}
	i_free(batch);
	delivery_commit_kick();
}

static void delivery_commit_kick(void)
{
	struct delivery_batch *batch;
	struct front_delivery **tail;

	if (commit_running || commit_pending == NULL)
		return;
	batch = i_new(struct delivery_batch, 1);
	batch->head = commit_pending;
	tail = &batch->head;
	while (*tail != NULL && batch->count < DELIVERY_MAX_BATCH) {
		(*tail)->state = DELIVERY_STATE_COMMITTING;
		batch->count++;
		tail = &(*tail)->next;
	}
	commit_pending = *tail;
	*tail = NULL;
	commit_pending_count -= batch->count;
	if (commit_pending == NULL)
		commit_pending_tail = &commit_pending;
	commit_running = true;
	worker_pool_submit(delivery_commit_pool, delivery_commit_work,
			   delivery_commit_done, batch);
}

static void delivery_verdict_done(void *context)
{
	struct front_delivery *d = context;

	if (d->result != FRONT_COMMIT_OK ||
	    d->local_count + d->remote_count == 0) {
		delivery_finish(d);
		return;
	}
	d->state = DELIVERY_STATE_PENDING;
	d->next = NULL;
	*commit_pending_tail = d;
	commit_pending_tail = &d->next;
	commit_pending_count++;
	delivery_commit_kick();
}

static void delivery_nothing_work(void *context ATTR_UNUSED)
{
}

void front_delivery_commit(struct front_delivery *d, const uint8_t *message,
			   size_t len, front_commit_callback_t *cb,
			   void *context)
{
	i_assert(delivery_initialized);
	i_assert(d->state == DELIVERY_STATE_NEW);
	d->cb = cb;
	d->context = context;
	d->received = (int64_t)time(NULL);
	d->state = DELIVERY_STATE_VERDICT;
	if (len > SPOOL_MAX_MESSAGE) {
		/* Not worth copying: answered from the pool like the rest. */
		d->result = FRONT_COMMIT_TOO_BIG;
	} else {
		/* RFC 5321 4.4: the final delivery inserts Return-Path with
		   the reverse-path from MAIL FROM at the top of the message.
		   The copy also frees the caller's buffer at once (and makes
		   the workers independent of a connection that goes away);
		   remote copies are the same bytes after it. */
		buf_init(&d->stored, len + 300);
		buf_printf(&d->stored, "Return-Path: <%s>\r\n", d->sender);
		d->remote_offset = d->stored.used;
		buf_append(&d->stored, message, len);
		d->message = d->stored.data + d->remote_offset;
		d->message_len = len;
	}
	worker_pool_submit(delivery_verdict_pool,
			   d->result == FRONT_COMMIT_TOO_BIG
				   ? delivery_nothing_work
				   : delivery_verdict_work,
			   delivery_verdict_done, d);
}

/* ---- set-up ---- */

void front_delivery_init(const struct front_delivery_env *env)
{
	i_assert(!delivery_initialized);
	delivery_env = *env;
	delivery_data_dir = i_strdup(env->data_dir);
	delivery_verdict_pool = worker_pool_create(
		env->ioloop,
		env->verdict_threads == 0 ? 2 : env->verdict_threads,
		"verdict");
	/* One batch at a time: the group commit (see the file head). */
	delivery_commit_pool =
		worker_pool_create(env->ioloop, 1, "delivery-commit");
	commit_pending = NULL;
	commit_pending_tail = &commit_pending;
	commit_pending_count = 0;
	commit_running = false;
#ifdef FRONT_DELIVERY_QUEUE
	const char *error;

	delivery_queue = queue_open(env->data_dir, &error);
	if (delivery_queue == NULL) {
		/* Remote recipients get 451 until a restart fixes it. */
		log_error(NULL, "delivery.queue_open_failed", "error=%s",
			  log_value(0, error));
	}
#endif
	delivery_initialized = true;
}

void front_delivery_deinit(void)
{
	if (!delivery_initialized)
		return;
	/* Verdicts first: their done() feeds the commit pool, whose
	   destruction then runs every batch to its end. */
	struct worker_pool *pool = delivery_verdict_pool;

	worker_pool_destroy(&pool);
	delivery_verdict_pool = NULL;
	/* worker_pool_destroy() clears its argument at once; batches that
	   done() starts while it drains need the pool by this name. */
	pool = delivery_commit_pool;
	worker_pool_destroy(&pool);
	delivery_commit_pool = NULL;
	i_assert(commit_pending == NULL);
	timeout_remove(&delivery_tempfail_to);
	timeout_remove(&delivery_retry_to);
	delivery_initialized = false;
	while (delivery_requests != NULL)
		delivery_request_tempfail(delivery_requests);
#ifdef FRONT_DELIVERY_QUEUE
	queue_close(&delivery_queue);
#endif
	i_free(delivery_data_dir);
}
