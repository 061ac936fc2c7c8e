#ifndef MARMOT_FRONT_VERDICT_H
#define MARMOT_FRONT_VERDICT_H
/* The verdict stage: runs on a whole message between the end of DATA (or
   the last BDAT chunk) and the reply, before anything is durable
   (front_delivery_commit() calls it on a worker thread). It is the point
   the filtering work plugs into: a table of checks (function pointers),
   so a new filter is one entry in front-verdict.c.

   Each check looks at the message and returns an action; the strongest
   action wins (REJECT > JUNK > TAG > ACCEPT; on a tie the first check in
   the table), and the first REJECT stops the run. Built-in checks today:
   - the GTUBE test string (SpamAssassin's "Generic Test for Unsolicited
     Bulk Email") anywhere in the message => JUNK: the message is filed
     into the Junk mailbox with "X-Spam: yes";
   - the EICAR anti-virus test string, in the raw message or inside a
     base64 or quoted-printable encoded MIME part => REJECT
     "5.7.1 message contains a virus (EICAR test signature)".
   On TAG and JUNK the verdict's header fields are prepended to the copy
   that is stored or queued.

   Thread-safety: front_verdict_run() touches no global state except the
   constant check table and may run on any thread; the pool passed in must
   belong to the calling thread. */

#include "lib.h"
#include "pool.h"

struct front_verdict_cache;

enum front_verdict_action {
	/* Deliver normally. */
	FRONT_VERDICT_ACCEPT,
	/* Deliver normally, with the check's header field added. */
	FRONT_VERDICT_TAG,
	/* Deliver into the Junk mailbox (spool mailbox hint "Junk",
	   SPOOL_FLAG_JUNK), with the check's header field added. */
	FRONT_VERDICT_JUNK,
	/* Refuse the message (550 with the reason); nothing is stored. */
	FRONT_VERDICT_REJECT,
};

/* What a check sees. All fields are valid during front_verdict_run(). */
struct front_verdict_input {
	/* The message as the front built it (Received: prepended, no
	   Return-Path yet). */
	const uint8_t *message;
	size_t message_len;
	const char *sender; /* envelope sender, "" = null reverse-path */
	const char *client_ip;
	bool submission; /* authenticated submission (587/465) */
	uint64_t account_id; /* the authenticated account, 0 if none */
	/* Set by front_verdict_run*(): what the checks share (the decoded
	   MIME parts), made on first use. NULL when a check is called on its
	   own: it then decodes for itself. */
	struct front_verdict_cache *cache;
};

/* One check's finding. A check fills what it needs from pool memory. */
struct front_verdict_result {
	enum front_verdict_action action;
	/* REJECT: the reply text after the code, starting with an enhanced
	   status code ("5.7.1 ..."). NULL is replaced by a generic text. */
	const char *reason;
	/* TAG/JUNK: one header field line without its CRLF ("X-Spam: yes"),
	   or NULL for none. It must be a valid RFC 5322 2.2 header field
	   (printable ASCII name, no CR or LF). */
	const char *header;
};

/* A check: returns its action in *result_r (zeroed beforehand = ACCEPT). */
typedef void front_verdict_check_t(const struct front_verdict_input *input,
				   pool_t pool,
				   struct front_verdict_result *result_r);

struct front_verdict_check {
	const char *name; /* for logs: verdict.junk check=<name> */
	front_verdict_check_t *check;
};

/* The outcome of the whole stage. */
struct front_verdict {
	enum front_verdict_action action;
	/* The check that decided (NULL for ACCEPT with no finding). */
	const char *check;
	/* REJECT only: "5.7.1 ..." (pool memory or constant). */
	const char *reason;
	/* Header field lines to prepend, each ending in CRLF, in pool
	   memory ("" for none): one line per TAG/JUNK finding. */
	const char *headers;
};

/* Runs every check of the built-in table over input; strings in
 *verdict_r live in pool. */
void front_verdict_run(const struct front_verdict_input *input, pool_t pool,
		       struct front_verdict *verdict_r);

/* The same over a given table (tests, and later configured filters). */
void front_verdict_run_checks(const struct front_verdict_check *checks,
			      unsigned int check_count,
			      const struct front_verdict_input *input,
			      pool_t pool, struct front_verdict *verdict_r);

/* The built-in checks, exposed for unit tests. */
front_verdict_check_t front_verdict_check_gtube;
front_verdict_check_t front_verdict_check_eicar;

/* The mailbox hint for JUNK. */
#define FRONT_VERDICT_JUNK_MAILBOX "Junk"

#endif
