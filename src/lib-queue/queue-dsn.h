#ifndef MARMOT_QUEUE_DSN_H
#define MARMOT_QUEUE_DSN_H
/* Delivery status notifications (RFC 3464, requested per RFC 3461), built
   I/O-free: the queue runner fills a struct queue_dsn for the recipients
   of one message that failed together (one DSN per failure event, so each
   failed recipient is reported exactly once) and enqueues the result
   with the null reverse-path (RFC 5321 4.5.5) to the original sender.
   The caller decides whether a DSN is owed at all: never for a null
   sender, never with NOTIFY=NEVER, for failures unless NOTIFY excludes
   FAILURE (queue_dsn_wanted). */

#include "lib.h"

struct buf;

struct queue_dsn_rcpt {
	const char *address; /* Final-Recipient */
	const char *orcpt; /* "type;address" or NULL (Original-Recipient) */
	const char *action; /* "failed", "delayed", "delivered" */
	const char *status; /* RFC 3463 "5.1.1" */
	const char *remote_mta; /* host name or "" */
	const char *diagnostic; /* the SMTP reply, one line, or "" */
	int64_t last_attempt; /* unix time or 0 */
};

struct queue_dsn {
	const char *reporting_mta; /* our host name */
	const char *sender; /* the original envelope sender (To:) */
	const char *envid; /* RFC 3461 ENVID or NULL */
	int64_t arrival; /* when the original was queued */
	const struct queue_dsn_rcpt *rcpts;
	unsigned int rcpt_count;
	/* The original message; with ret_full it is returned whole
	   (message/rfc822), else its header section (text/rfc822-headers,
	   RFC 3462 -> RFC 6522 3). */
	const uint8_t *original;
	size_t original_len;
	bool ret_full;
};

/* Whether a recipient with these NOTIFY bits (QUEUE_NOTIFY_*) gets a DSN
   for action ("failed", "delayed", "delivered") from sender. RFC 3461
   4.1: no NOTIFY means FAILURE (DELAY at our discretion: none). */
bool queue_dsn_wanted(const char *sender, unsigned int notify,
		      const char *action);

/* Appends the whole DSN message (CRLF line ends) to out. now is the Date;
   the boundary and Message-ID are random. All recipients of one DSN share
   one action; "delayed" gets the delay wording (RFC 3464 2.3.3). */
void queue_dsn_build(const struct queue_dsn *dsn, int64_t now, struct buf *out);

/* The RFC 3463 status of an SMTP reply line ("550 5.1.1 ..." -> "5.1.1";
   without an enhanced code, "5.0.0" / "4.0.0" from the reply's class).
   Returns a string in buf (at least 16 bytes). */
const char *queue_dsn_status_of_reply(const char *reply, char *buf,
				      size_t buf_size);

#endif
