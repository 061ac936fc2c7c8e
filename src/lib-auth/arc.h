#ifndef MARMOT_ARC_H
#define MARMOT_ARC_H
/* ARC, the Authenticated Received Chain (RFC 8617): validation of the
   chain on inbound mail (5.2) and sealing when Marmot forwards a message
   (5.1), in the same two-half style as DKIM signing (dkim.h): the front
   prepares digests, the vault signs them, the front finishes. The AS
   covers the new AMS, so sealing takes two round trips to the signer:
     arc_seal_prepare_ams() -> sign req.digest -> arc_seal_prepare_as()
     -> sign req.digest -> arc_seal_finish().
   Canonicalization, hashing and key records are DKIM's (dkim-*.c). The
   AMS is relaxed/relaxed and never covers ARC-* or Authentication-Results
   fields (RFC 8617 4.1.2). I/O-free: keys come through struct auth_dns;
   every DNS failure is a permanent chain failure (RFC 8617 5.2.1). */

#include "lib.h"
#include "pool.h"
#include "auth-dns.h"
#include "dkim.h"

/* RFC 8617 4.4 */
enum arc_chain {
	ARC_CHAIN_NONE,
	ARC_CHAIN_PASS,
	ARC_CHAIN_FAIL,
};

struct arc_verify_result {
	enum arc_chain cv;
	/* N, the highest instance found (0 when none). */
	unsigned int instances;
	/* Why fail; NULL on pass/none. */
	const char *reason;
	/* d= of the newest AMS (smtp.remote / arc.domain for A-R), NULL
	   when none. */
	const char *last_domain;
	/* RFC 8617 5.2 step 5: the oldest instance whose AMS still
	   verifies (0: all verify); meaningful on pass. */
	unsigned int oldest_pass;
};

typedef void arc_verify_callback_t(void *context,
				   const struct arc_verify_result *result);

/* Validates the chain of msg (the whole message, CRLF line ends). msg
   must stay valid until the callback, which runs exactly once unless
   cancelled; the result is valid during the callback only. When no
   lookup is needed (no ARC fields, or a structurally broken chain) the
   callback runs from within arc_verify_start(), which returns NULL;
   otherwise the returned handle is freed after the callback returns. */
struct arc_verify *arc_verify_start(struct auth_dns *dns, const uint8_t *msg,
				    size_t len, arc_verify_callback_t *cb,
				    void *context);
/* Cancels the lookups; the callback never runs. Safe with NULL. */
void arc_verify_cancel(struct arc_verify **v);
const char *arc_chain_name(enum arc_chain cv); /* "none", "pass", "fail" */

struct arc_seal_params {
	const char *domain, *selector; /* the sealer's key (a DKIM key) */
	enum dkim_algorithm algorithm;
	int64_t timestamp; /* t=; 0 = none */
	/* authserv-id of the AAR (our hostname) and the resinfo list of our
	   Authentication-Results after it (without the authserv-id and its
	   ";"), e.g. "spf=pass smtp.mailfrom=a.example; dkim=pass
	   header.d=a.example; arc=none". Copied into the AAR as is (it is
	   folded at ";" when long). */
	const char *authserv_id;
	const char *results;
	/* The validation status of the chain as it arrived
	   (arc_verify_start() on this message): becomes cv=. */
	enum arc_chain cv;
};

struct arc_seal_request {
	/* The digest to be signed next by dkim_sign_digest(): after
	   arc_seal_prepare_ams() the AMS digest, after arc_seal_prepare_as()
	   the AS digest. */
	uint8_t digest[32];
	/* Private state, in the prepare pool. */
	struct arc_seal_state *state;
};

/* Starts a seal for instance i = N+1. Returns 1 and fills req_r (digest =
   the AMS digest); 0 when no set must be added (RFC 8617 5.1 step 2: the
   newest AS says cv=fail, error_r says so); -1 on error (no header end,
   the chain already has 50 sets, params unusable; error_r). */
int arc_seal_prepare_ams(pool_t pool, const uint8_t *msg, size_t len,
			 const struct arc_seal_params *params,
			 struct arc_seal_request *req_r, const char **error_r);
/* Takes the AMS signature and sets req->digest to the AS digest. Returns
   0, or -1 when sig is empty or too large. */
int arc_seal_prepare_as(struct arc_seal_request *req, const uint8_t *sig,
			size_t sig_len, const char **error_r);
/* Takes the AS signature and returns the three fields to prepend, in
   this order: "ARC-Seal: ...\r\nARC-Message-Signature: ...\r\n
   ARC-Authentication-Results: ...\r\n" (allocated from pool). */
const char *arc_seal_finish(pool_t pool, const struct arc_seal_request *req,
			    const uint8_t *sig, size_t sig_len);

#endif
