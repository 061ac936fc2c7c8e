#ifndef MARMOT_FRONT_MAILAUTH_H
#define MARMOT_FRONT_MAILAUTH_H
/* Inbound mail authentication on port 25 (never on submission): after
   DATA and before the message is made durable, SPF for the MAIL FROM and
   HELO identities (spf.h), every DKIM signature (dkim.h), the ARC chain
   (arc.h) and DMARC (dmarc.h) run over the front's resolver
   (front_queue_dns(), through auth_dns_init_dns()); then every
   Authentication-Results field claiming our authserv-id is removed (RFC 8601 5)
   and ours is added right after our Received: field, and the policy is applied:

   - DMARC fail with disposition reject (p=reject, after pct): 550 5.7.1
     (RFC 7489 7.3 / 10.3);
   - disposition quarantine: the message is filed into Junk
     (front_delivery_set_junk());
   - an aligned identifier with a temporary error under p=reject: 451
     4.7.5 rather than a reject caused by a DNS hiccup;
   - SPF fail of MAIL FROM: 550 5.7.23 (RFC 7372 3.2) when
     spf_reject_fail is set (off by default: forwarding breaks SPF).
   dmarc_enforce=off only reports. Every check is bounded by auth_timeout:
   what has not finished by then counts as temperror; a message never
   waits longer.

   For the front's ioloop thread. */

#include "lib.h"

struct front;

enum front_mailauth_action {
	FRONT_MAILAUTH_ACCEPT,
	FRONT_MAILAUTH_JUNK,
	FRONT_MAILAUTH_REJECT, /* 550 */
	FRONT_MAILAUTH_TEMPFAIL, /* 451 */
};

struct front_mailauth_request {
	const char *client_ip; /* literal */
	const char *helo;
	const char *sender; /* MAIL FROM address, "" for <> */
	/* The message as the front built it: our Received: field is its
	   first prefix_len bytes. Must stay valid until the callback. */
	const uint8_t *msg;
	size_t len, prefix_len;
};

struct front_mailauth_result {
	enum front_mailauth_action action;
	/* REJECT / TEMPFAIL: the reply text after the code ("5.7.1 ..."). */
	const char *reply;
	/* The message to commit: our Received:, our Authentication-Results,
	   the rest without forged ones. Valid until front_mailauth_free(). */
	const uint8_t *msg;
	size_t len;
	/* For logs: "spf=pass dkim=pass dmarc=pass". */
	const char *summary;
	/* For an ARC seal when the message is forwarded (RFC 8617 5.1,
	   front_dkim_arc_seal_start()): our authserv-id, the resinfo list
	   of our Authentication-Results, and the chain status as it
	   arrived (enum arc_chain). Valid until front_mailauth_free(). */
	const char *authserv_id, *results;
	int arc_cv;
};

typedef void front_mailauth_callback_t(
	void *context, const struct front_mailauth_result *result);

/* Starts the checks; cb runs once, later, from the ioloop (never inside
   this call) unless front_mailauth_free() comes first. */
struct front_mailauth *front_mailauth_start(
	const struct front_mailauth_request *req, front_mailauth_callback_t *cb,
	void *context);
/* Cancels what still runs (cb never runs then) and frees the result
   message. Sets *auth to NULL; safe with NULL. */
void front_mailauth_free(struct front_mailauth **auth);

/* The resolver (front_queue_dns(): after front_queue_init()) and the
   public suffix list (settings public_suffix_list; libpsl's built-in list
   when the file cannot be read). Without a resolver the checks report
   temperror and nothing is enforced. */
void front_mailauth_init(struct front *front);
void front_mailauth_deinit(void);

#endif
