#ifndef MARMOT_FRONT_DELIVERY_H
#define MARMOT_FRONT_DELIVERY_H
/* Everything between "the SMTP code has accepted a recipient / a whole
   message" and "it is durable", for the front (inbound MX and
   submission). Two halves:

   - Recipient and sender checks: questions to the vault over the front's
     vault connection (IPC_VAULT_RCPT, IPC_VAULT_SENDER). The vault owns
     the directory (aliases, catch-all, sub-addressing, forwards) and the
     account state (disabled, quota); the front only learns the public
     keys of local targets, which is all it needs to seal spool records.

   - The commit of one message: the verdict stage (front-verdict.h) runs,
     then every local copy (with its Return-Path, RFC 5321 4.4) is sealed
     into the account's spool and every remote recipient goes to the
     outbound queue. Spool appends are group-committed: a delivery thread
     takes every commit pending at that moment (across all connections)
     and writes all records of one account file under one flock and one
     fsync (spool_append_many()), so N concurrent sessions cost far fewer
     than N fsyncs. The commit callback runs only after every record of
     the message is durable, and a message is acknowledged (250) only on
     FRONT_COMMIT_OK: there is no partial success, so a crash or failure
     may at worst duplicate a message (the client retries), never lose an
     acknowledged one.

   All functions are for the front's ioloop thread. Callbacks always run
   later from the ioloop, never from within the call that registers them. */

#include "lib.h"

enum front_rcpt_result {
	FRONT_RCPT_OK,
	/* No such address in our domains: 550 5.1.1. */
	FRONT_RCPT_UNKNOWN,
	/* The domain is not ours: relaying is the caller's decision
	   (submission after AUTH may relay, the MX never). */
	FRONT_RCPT_NOT_LOCAL,
	/* The account is disabled: 550 5.2.1. */
	FRONT_RCPT_DISABLED,
	/* A local target is over its quota: 452 4.2.2 while the account can
	   still get smaller mail; with quota_permanent (the message size
	   alone exceeds the quota) 552 5.2.2. RFC 5321 4.5.3.1.10 asks for
	   452 on "too many recipients" but RFC 3463 3.3 gives X.2.2 for a
	   full mailbox. */
	FRONT_RCPT_OVER_QUOTA,
	/* The vault is unreachable or failed: 451 4.3.0. */
	FRONT_RCPT_TEMPFAIL,
};

/* A local account a message is to be sealed for. */
struct front_rcpt_target {
	uint64_t account_id;
	uint8_t public_key[32];
};

/* The resolution of one RCPT TO address. Valid during the callback only:
   copy what you keep. */
struct front_rcpt {
	enum front_rcpt_result result;
	/* FRONT_RCPT_OVER_QUOTA only: 552 rather than 452. */
	bool quota_permanent;
	/* Normalised (lower-case domain, the directory's spelling); the
	   input address when the result is not FRONT_RCPT_OK. */
	const char *address;
	/* FRONT_RCPT_OK: the local accounts (deduplicated) ... */
	struct front_rcpt_target *locals;
	unsigned int local_count;
	/* ... and the remote forward targets (go to the outbound queue). */
	const char **remote;
	unsigned int remote_count;
};

typedef void front_rcpt_callback_t(void *context,
				   const struct front_rcpt *rcpt);
/* Asks the vault (IPC_VAULT_RCPT) to resolve address (aliases, catch-all,
   +tag, forwards, quota vs size_hint; 0 = size unknown). rcpt is valid
   during the callback only. The callback always runs later from the
   ioloop (never inside the call); front_delivery_cancel(context) drops
   pending callbacks of a context. While the vault is unreachable the
   question waits for it (2 s at most, then FRONT_RCPT_TEMPFAIL). */
void front_delivery_resolve(const char *address, uint64_t size_hint,
			    front_rcpt_callback_t *cb, void *context);

typedef void front_sender_callback_t(void *context, bool owned, bool tempfail);
/* Submission: does account_id own address (its address, its +tag, or an
   alias whose targets include it)? IPC_VAULT_SENDER. The callback runs
   later from the ioloop; tempfail is true (and owned false) when the vault
   could not answer. The null sender ("") is not owned by anyone: the
   caller decides whether to allow it. */
void front_delivery_sender_owned(uint64_t account_id, const char *address,
				 front_sender_callback_t *cb, void *context);

/* Drops every pending resolve/sender callback registered with context
   (call it before freeing context). Commits are not affected: destroy
   the front_delivery for those. */
void front_delivery_cancel(void *context);

/* One message being committed. */
struct front_delivery;

/* sender: the envelope sender, "" for the null reverse-path. client_ip
   goes to logs. submission and account_id (0 if not authenticated) are
   for the verdict stage and the queue. Strings are copied. */
struct front_delivery *front_delivery_create(const char *sender,
					     const char *client_ip,
					     bool submission,
					     uint64_t account_id);

/* Locals: Return-Path (RFC 5321 4.4) is prepended per local copy by the
   delivery code; mailbox "" = INBOX (the verdict may say Junk). rcpt is the
   address as accepted (stored as the record's recipient). A target whose
   account was already added is ignored (one copy per account). Strings and
   target are copied. */
void front_delivery_add_local(struct front_delivery *d, const char *rcpt,
			      const struct front_rcpt_target *target);
/* Remote: goes to the outbound queue (queue_enqueue) with its DSN
   parameters (RFC 3461 4.2 ORCPT, 4.1 NOTIFY: QUEUE_NOTIFY_* bits, 0 =
   not given). Strings are copied. */
void front_delivery_add_remote(struct front_delivery *d, const char *rcpt,
			       const char *orcpt /*NULL*/,
			       unsigned int notify /*QUEUE_NOTIFY_* bits*/);
/* RFC 3461 4.3 RET=FULL (else HDRS) and 4.4 ENVID (NULL: none). */
void front_delivery_set_dsn(struct front_delivery *d, bool ret_full,
			    const char *envid /*NULL*/);
/* RFC 4865 FUTURERELEASE: hold remote copies until unix_time (0: none). */
void front_delivery_set_hold_until(struct front_delivery *d, int64_t unix_time);
/* RFC 8689 REQUIRETLS for the remote copies. */
void front_delivery_set_requiretls(struct front_delivery *d, bool on);
/* Header fields (CRLF-terminated, copied) prepended to the outbound
   queue's copy only, not to local ones: the ARC set of a forwarded
   message (RFC 8617 5.1, front_dkim_arc_seal_start()). NULL: none. */
void front_delivery_set_remote_prefix(struct front_delivery *d,
				      const char *fields /*NULL*/);
/* File the local copies into Junk (as the verdict's JUNK does) whatever
   the verdict says short of REJECT; check names the reason in logs
   ("dmarc": the sender domain's p=quarantine, front-auth.h). */
void front_delivery_set_junk(struct front_delivery *d, const char *check);

enum front_commit_result {
	FRONT_COMMIT_OK,
	/* The verdict refused the message: 550 with reason (which starts
	   with its enhanced status code, e.g. "5.7.1 ..."). */
	FRONT_COMMIT_REJECTED,
	/* Nothing was acknowledged durable (disk, queue, vault): 451 4.3.0.
	   Some copies may have been stored: the client's retry may
	   duplicate, never lose. */
	FRONT_COMMIT_TEMPFAIL,
	/* The message (with its added headers) exceeds what a spool record
	   or the queue takes: 552 5.3.4. */
	FRONT_COMMIT_TOO_BIG,
};

typedef void front_commit_callback_t(void *context,
				     enum front_commit_result result,
				     const char *reason /* for REJECTED */);
/* Runs the verdict stage (front-verdict.h) then makes everything durable:
   sealed spool records for every local (group commit: many messages per
   fsync across connections), queue_enqueue for remotes — on a worker
   thread — and calls cb from the ioloop with the outcome. message is the
   full message the front built (Received: already prepended), kept alive
   by the caller until cb (this implementation copies it before returning,
   so keeping it is not needed, but do not rely on that). Acknowledge
   (250) only on FRONT_COMMIT_OK.
   reason is valid during the callback only. Called once per delivery;
   a delivery without recipients commits as FRONT_COMMIT_OK at once
   (still from the ioloop). */
void front_delivery_commit(struct front_delivery *d, const uint8_t *message,
			   size_t len, front_commit_callback_t *cb,
			   void *context);
/* Frees d; safe while committing: the commit still finishes (what it
   writes stays written) but cb is not called. The caller may free
   message after this returns. Sets *d to NULL; NULL is tolerated. */
void front_delivery_destroy(struct front_delivery **d);

#endif
