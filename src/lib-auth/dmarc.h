#ifndef MARMOT_DMARC_H
#define MARMOT_DMARC_H
/* DMARC (RFC 7489), with the DNS tree walk of DMARCbis (RFC 9989 4.10) as
   an option: the author domain from the message's single From: field,
   record discovery over struct auth_dns (auth-dns.h), identifier
   alignment of the SPF MAIL FROM domain (spf.h) and of each passing DKIM
   signature's d= (dkim.h), and the disposition to apply (none, quarantine,
   reject) after pct sampling. I/O-free: the public suffix list comes in as
   a loaded libpsl context (the caller reads the file).

   Documented choices:
   - A message without From:, with more than one From: field, or with a
     From: of several (or no usable) addresses is invalid (RFC 5322 3.6,
     RFC 7489 6.6.1): the result is PERMERROR and no identifier can
     align. When domains can be read from those fields, each one's policy
     is looked up (at most DMARC_MAX_FROM_DOMAINS) and the strictest
     disposition applies as if the message had failed, so that a second
     From: cannot hide a p=reject author domain.
   - More than one v=DMARC1 record at a name is no record there (RFC 7489
     6.6.3); a record with no or an invalid p= is used as p=none when it
     has a valid rua= (RFC 7489 6.6.3 step 6) and is ignored otherwise
     (RFC 9989: a missing p= means none).
   - Relaxed alignment compares Organizational Domains: in RFC 7489 mode
     through the public suffix list (RFC 7489 3.2); in tree-walk mode the
     From domain's Organizational Domain comes from the walk (RFC 9989
     4.10.2) and an identifier aligns when it is that domain or below it
     (no second walk per identifier).
   - np= (RFC 9989) applies when the policy came from a parent domain and
     the author domain does not exist (NXDOMAIN for A).
   - pct < 100 (RFC 7489 6.6.4) and t=y (RFC 9989) lower the disposition
     one step (reject -> quarantine -> none) for the messages sampled
     out. */

#include "lib.h"
#include "pool.h"
#include "auth-dns.h"
#include "spf.h"
#include "dkim.h"

#include <libpsl.h>

#define DMARC_MAX_FROM_DOMAINS 4

/* RFC 7489 11.2 / RFC 8601 2.7 */
enum dmarc_result {
	DMARC_RESULT_NONE,
	DMARC_RESULT_PASS,
	DMARC_RESULT_FAIL,
	DMARC_RESULT_TEMPERROR,
	DMARC_RESULT_PERMERROR,
};

/* RFC 7489 6.3 p= / sp= / np=; also the disposition applied. */
enum dmarc_policy {
	DMARC_POLICY_NONE,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT,
};

enum dmarc_psd {
	DMARC_PSD_U, /* not given (RFC 9989 psd=u, the default) */
	DMARC_PSD_Y,
	DMARC_PSD_N,
};

struct dmarc_record {
	enum dmarc_policy p;
	bool p_valid; /* p= present with a valid value */
	enum dmarc_policy sp, np;
	bool sp_set, np_set;
	unsigned int pct; /* 0..100, default 100 */
	bool adkim_strict, aspf_strict; /* default relaxed */
	bool testing; /* RFC 9989 t=y */
	enum dmarc_psd psd;
	uint32_t ri; /* report interval, default 86400 */
	const char *fo, *rf; /* as given, NULL when absent */
	/* rua= / ruf= URIs (RFC 7489 6.4: "mailto:a@b.example!10m"), each
	   trimmed; only mailto: URIs are kept. */
	const char **rua, **ruf;
	unsigned int rua_count, ruf_count;
};

/* Parses a TXT record's text (len bytes; NUL bytes make it invalid).
   Returns 0, or -1 with error_r when it is not a DMARC record (no
   leading v=DMARC1, RFC 7489 6.6.3) or has no usable policy (no valid p=
   and no valid rua=). Unknown tags and invalid values of other tags are
   ignored (RFC 7489 6.3). All memory from pool. */
int dmarc_record_parse(pool_t pool, const char *text, size_t len,
		       struct dmarc_record *rec_r, const char **error_r);

enum dmarc_from_status {
	DMARC_FROM_OK, /* exactly one From: with one address */
	DMARC_FROM_MISSING,
	DMARC_FROM_DUPLICATE, /* more than one From: field */
	DMARC_FROM_MULTIPLE, /* one field, several addresses (or a group) */
	DMARC_FROM_INVALID, /* no address with a usable domain */
};

struct dmarc_from {
	enum dmarc_from_status status;
	/* The distinct author domains (lower case, without trailing dot),
	   in order of appearance; one when status is OK. */
	const char *domains[DMARC_MAX_FROM_DOMAINS];
	unsigned int domain_count;
};

/* Reads the From: fields of msg's header block (RFC 5322 3.6.2; RFC
   7489 6.6.1). Never fails: the status says what was wrong. */
void dmarc_from_parse(pool_t pool, const uint8_t *msg, size_t len,
		      struct dmarc_from *from_r);
const char *dmarc_from_status_name(enum dmarc_from_status s);

/* Returns a number in 0..99 (pct sampling, RFC 7489 6.6.4). */
typedef unsigned int dmarc_random_t(void *context);

struct dmarc_request {
	const struct dmarc_from *from;
	/* The MAIL FROM check (identity SPF_IDENTITY_MAILFROM; a HELO
	   outcome is not a DMARC identifier, RFC 7489 4.1); NULL when not
	   checked. */
	const struct spf_outcome *spf;
	/* Every signature's result; NULL when not checked. */
	const struct dkim_verify_result *dkim;
	/* The public suffix list (RFC 7489 3.2): psl_load_file() of the
	   configured file; NULL = libpsl's built-in list. Must outlive the
	   check. */
	const psl_ctx_t *psl;
	/* RFC 9989 4.10 tree walk instead of RFC 7489 6.6.3 discovery. */
	bool tree_walk;
	/* NULL = OpenSSL RAND_bytes. */
	dmarc_random_t *random;
	void *random_context;
};

struct dmarc_outcome {
	enum dmarc_result result;
	/* header.from (RFC 7489 11.2): the author domain, NULL when the From
	   field gave none. */
	const char *from_domain;
	/* Where the record was found (NULL: none) and the record. */
	const char *policy_domain;
	const struct dmarc_record *record;
	/* The Organizational Domain of from_domain. */
	const char *org_domain;
	/* The published policy that applies (p, sp or np) ... */
	enum dmarc_policy policy;
	/* ... and what to do with this message: NONE on pass, else policy
	   lowered by pct/t=y sampling. */
	enum dmarc_policy disposition;
	bool sampled_out; /* pct/t=y lowered the disposition */
	bool spf_aligned, dkim_aligned;
	/* The aligned DKIM d= when dkim_aligned. */
	const char *dkim_domain;
	/* Why not pass (for logs and the A-R comment); NULL on pass. */
	const char *reason;
};

typedef void dmarc_callback_t(void *context,
			      const struct dmarc_outcome *outcome);

/* Starts the evaluation. req and what it points to are copied (except
   psl). The callback runs exactly once unless cancelled first; the
   outcome is valid during the callback only. When no lookup is needed (no
   author domain) it runs from within dmarc_check_start(), which then
   returns NULL; otherwise it runs from an auth_dns callback and the
   returned handle is freed after it returns. */
struct dmarc_check *dmarc_check_start(struct auth_dns *dns,
				      const struct dmarc_request *req,
				      dmarc_callback_t *cb, void *context);
/* The callback will not run; sets *check to NULL; safe with NULL. Not
   from inside the check's own callback. */
void dmarc_check_cancel(struct dmarc_check **check);

const char *dmarc_result_name(enum dmarc_result r); /* "pass", ... */
const char *dmarc_policy_name(enum dmarc_policy p); /* "reject", ... */

/* The Organizational Domain by the public suffix list (RFC 7489 3.2):
   the registrable domain, or domain itself when it has none (a public
   suffix, or a name the list does not know). domain is lower case. */
const char *dmarc_org_domain_psl(pool_t pool, const psl_ctx_t *psl,
				 const char *domain);

#endif
