#ifndef MARMOT_QUEUE_H
#define MARMOT_QUEUE_H
/* The durable, encrypted outbound queue (issue 4 item 4): DATA/queue/.
   The front's delivery path enqueues remote recipients (from a worker
   thread); the front's queue runner (front-queue.c) lists, loads, updates
   and deletes messages; `marmot queue list|show` reads them directly.

   Key: DATA/queue.key, 32 random bytes, 0600, made by queue_open() when
   missing (so by `marmot init` and, for older data directories, at the
   front's first start). Whoever can read it can read the queue: root and
   the service user.

   Files, one pair per message, named by the queue id (32 lower-case hex
   digits: 16 of the enqueue time in microseconds, 16 random, so a listing
   sorts by age):
     <id>.msg    written once by queue_enqueue, never changed:
		 "MQM1" || nonce(24) || XChaCha20-Poly1305(plain,
		 AD = "MQM1" || id), plain =
		 u64 queued unix time || u64 account id || u32 flags
		 (1 ret_full, 2 requiretls) || i64 hold_until ||
		 str sender || str envid || u32 rcpt count ||
		 rcpt count x (str address || str orcpt || u32 notify) ||
		 u64 message length || message
     <id>.state  the per-recipient delivery state, absent until the first
		 change (absent = every recipient pending, no attempt yet),
		 then rewritten whole and atomically (tmp + fsync + rename
		 + directory fsync) by queue_state_save():
		 "MQS1" || nonce || XChaCha20-Poly1305(plain, AD = "MQS1"
		 || id), plain = u32 flags (1 held) || u64 generation ||
		 u32 rcpt count || rcpt count x (u8 status || u8 dsn ||
		 u32 attempts || i64 next attempt || i64 last attempt ||
		 str last reply || str remote host)
     tmp-*       files being written; removed by queue_open when older
		 than an hour.
   (str = u32le length || bytes, no NUL inside; u32/u64/i64 little-endian.)

   Guarantees. queue_enqueue returns 0 only after <id>.msg and its
   directory entry are fsynced, so an acknowledged message survives a
   crash. A recipient's status changes to DELIVERED only through a durable
   queue_state_save after the remote 250; a crash between the remote 250
   and that save makes the runner deliver that recipient again: the honest
   guarantee across a crash is at-least-once (RFC 5321 6.1 accepts a
   duplicate over a loss). Deleting removes <id>.state first, then
   <id>.msg: a crash in between leaves a message with fresh state, never
   state without a message that could be mistaken for another.

   Thread safety: queue_enqueue may run on any thread concurrently with
   the other calls; everything else is meant for one thread (the runner,
   or the CLI). Strings returned in *error_r are valid until the next
   queue_*() call in the same thread. */

#include "lib.h"

#define QUEUE_ID_LEN 32
#define QUEUE_MAX_MESSAGE (256u * 1024 * 1024)
#define QUEUE_MAX_RCPTS 1000u
/* Longest address, orcpt, envid, reply or host string stored. */
#define QUEUE_MAX_STRING 4096u

/* RFC 3461 4.1 NOTIFY values. No bit set means the default (FAILURE, and
   DELAY at the MTA's option: we send none). */
#define QUEUE_NOTIFY_SUCCESS 1
#define QUEUE_NOTIFY_FAILURE 2
#define QUEUE_NOTIFY_DELAY 4
#define QUEUE_NOTIFY_NEVER 8

struct queue_rcpt {
	const char *address;
	const char *orcpt; /* RFC 3461 4.2 "type;xtext-decoded", or NULL */
	unsigned int notify; /* QUEUE_NOTIFY_* bits */
};

struct queue_envelope {
	const char *sender; /* "" = null reverse-path */
	const struct queue_rcpt *rcpts;
	unsigned int rcpt_count; /* 1..QUEUE_MAX_RCPTS */
	bool ret_full; /* RFC 3461 4.3 RET=FULL */
	const char *envid; /* RFC 3461 4.4 ENVID, NULL if none */
	int64_t hold_until; /* RFC 4865 FUTURERELEASE unix time, 0 none */
	bool requiretls; /* RFC 8689: never send without TLS */
	uint64_t account_id; /* submitting account, 0 if none */
};

struct queue;

/* Opens (creating when missing: DATA/queue/ 0700, DATA/queue.key 0600)
   the queue of data_dir. Returns NULL with *error_r on failure. */
struct queue *queue_open(const char *data_dir, const char **error_r);
void queue_close(struct queue **q);

/* Blocking, thread-safe, durable on return 0. id_r: printable queue id
   (<= 32 chars, NUL-terminated). The envelope is validated (sender and
   addresses without NUL or CR/LF, bounded lengths, 1..QUEUE_MAX_RCPTS
   recipients, len <= QUEUE_MAX_MESSAGE); -1 with *error_r on a bad
   envelope or an I/O error, in which case nothing is left in the queue. */
int queue_enqueue(struct queue *q, const struct queue_envelope *env,
		  const uint8_t *msg, size_t len, char id_r[33],
		  const char **error_r);

/* True if id has the queue id syntax (32 lower-case hex digits). */
bool queue_id_valid(const char *id);

/* Lists the ids of all messages (sorted, oldest first) into a new array
   of count_r ids that the caller frees with i_free(). Returns 0 or -1. */
int queue_list(struct queue *q, char (**ids_r)[QUEUE_ID_LEN + 1],
	       unsigned int *count_r, const char **error_r);

enum queue_rcpt_status {
	QUEUE_RCPT_PENDING = 0,
	QUEUE_RCPT_DELIVERED = 1, /* a 250 to our RCPT and end of data */
	QUEUE_RCPT_FAILED = 2, /* permanently: 5xx, null MX, expiry */
};

enum queue_dsn_state {
	QUEUE_DSN_NONE = 0, /* no DSN owed */
	QUEUE_DSN_NEEDED = 1, /* a DSN is owed and not yet enqueued */
	QUEUE_DSN_DONE = 2, /* enqueued (or not to be sent: null sender,
			       NOTIFY=NEVER) */
};

struct queue_rcpt_state {
	enum queue_rcpt_status status;
	enum queue_dsn_state dsn;
	uint32_t attempts;
	int64_t next_attempt; /* unix time; 0 = as soon as possible */
	int64_t last_attempt; /* 0 = never */
	char *last_reply; /* "550 5.1.1 ...", "" if none; message memory */
	char *remote_host; /* the MX host that answered, "" if none */
	/* A "delayed" DSN (NOTIFY=DELAY) was sent; at most one per
	   recipient. */
	bool delay_notified;
	/* Not stored: set by the runner when delay_notified was just set and
	   the DSN is still to be made (after the save: at most once). */
	bool delay_pending;
};

/* One loaded message. Every pointer points into memory owned by the
   message, freed (and the plaintext wiped) by queue_message_free. */
struct queue_message {
	char id[QUEUE_ID_LEN + 1];
	int64_t queued; /* unix time of queue_enqueue */
	struct queue_envelope env;
	struct queue_rcpt *rcpts; /* env.rcpts, writable */
	const uint8_t *body; /* NULL unless loaded with the body */
	size_t body_len;
	/* state */
	bool held; /* `marmot queue hold`: the runner skips it */
	uint64_t generation; /* bumped by each queue_state_save */
	struct queue_rcpt_state *states; /* env.rcpt_count entries */
	/* private */
	struct pool *_pool; /* strings, arrays */
	uint8_t *_plain; /* the opened .msg, wiped at free */
	size_t _plain_len;
};

/* Loads message id (with its body when with_body). Returns 1 and *msg_r,
   0 if there is no such message, -1 with *error_r (damaged, tampered or
   unreadable: the caller logs and leaves it for an operator). */
int queue_load(struct queue *q, const char *id, bool with_body,
	       struct queue_message **msg_r, const char **error_r);
/* Sets msg->states[idx].last_reply / remote_host (copied into the
   message's memory; NULL leaves that field unchanged). */
void queue_message_set_reply(struct queue_message *msg, unsigned int idx,
			     const char *reply, const char *remote_host);
void queue_message_free(struct queue_message **msg);

/* Durably rewrites id.state from msg (held, states; generation is
   incremented). Returns 0 once durable, -1 with *error_r; 0 is also
   returned, with *gone_r set, when the message was deleted meanwhile
   (nothing written). gone_r may be NULL. */
int queue_state_save(struct queue *q, struct queue_message *msg, bool *gone_r,
		     const char **error_r);

/* Removes message id (state first, then the message, then a directory
   fsync). Returns 1 if removed, 0 if there was none, -1 on error. */
int queue_delete(struct queue *q, const char *id, const char **error_r);

/* Sets or clears the hold flag of id durably. Returns 1, 0 if there is no
   such message, -1 on error. */
int queue_set_held(struct queue *q, const char *id, bool held,
		   const char **error_r);

/* True when every recipient is DELIVERED or FAILED with no DSN owed:
   nothing left to do, the runner deletes it. */
bool queue_message_done(const struct queue_message *msg);

const char *queue_rcpt_status_name(enum queue_rcpt_status status);

enum queue_request_op {
	QUEUE_REQUEST_FLUSH,
	QUEUE_REQUEST_DELETE,
	QUEUE_REQUEST_HOLD,
	QUEUE_REQUEST_RELEASE,
};

/* Creates the request file ctl/<op>.<id> (id: a queue id, or "all" with
   QUEUE_REQUEST_FLUSH), durably. Returns 0 or -1. */
int queue_request_add(struct queue *q, enum queue_request_op op, const char *id,
		      const char **error_r);
/* True while ctl/<op>.<id> exists (not yet applied by the runner). */
bool queue_request_pending(struct queue *q, enum queue_request_op op,
			   const char *id);
typedef void queue_request_callback_t(void *context, enum queue_request_op op,
				      const char *id);
/* Calls cb for every well-formed request (malformed files are removed),
   then removes the files it reported. At most max per call. Returns the
   number reported, or -1. */
int queue_requests_take(struct queue *q, unsigned int max,
			queue_request_callback_t *cb, void *context,
			const char **error_r);
const char *queue_request_op_name(enum queue_request_op op);

#endif
