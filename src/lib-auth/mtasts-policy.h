#ifndef MARMOT_MTASTS_POLICY_H
#define MARMOT_MTASTS_POLICY_H
/* Our own MTA-STS policy (RFC 8461): the text served at
   https://mta-sts.<domain>/.well-known/mta-sts.txt and the id published
   in the _mta-sts.<domain> TXT record. Pure functions: the front serves
   the text, `marmot dns records|check` prints and checks the TXT record,
   and both derive the same id from the same text, so the id changes
   exactly when the policy does (RFC 8461 3.1: senders refetch the policy
   only when the id changes). */

#include "lib.h"
#include "pool.h"

struct marmot_settings;

enum mtasts_mode {
	MTASTS_MODE_NONE,
	MTASTS_MODE_TESTING,
	MTASTS_MODE_ENFORCE,
};

/* RFC 8461 3.2: max_age is at most 31557600 seconds (about a year). */
#define MTASTS_MAX_AGE_LIMIT 31557600u
/* A week: long enough to survive an outage of the policy host, short
   enough that a mode change reaches senders soon (RFC 8461 10 suggests
   weeks or more once the policy is stable). */
#define MTASTS_DEFAULT_MAX_AGE 604800u

/* "none", "testing", "enforce" (the mta_sts_mode setting). Returns 0, or
   -1 for anything else (case-sensitive, as RFC 8461 3.2 writes them). */
int mtasts_mode_parse(const char *str, enum mtasts_mode *mode_r);
const char *mtasts_mode_name(enum mtasts_mode mode);

struct mtasts_policy {
	enum mtasts_mode mode;
	/* MX host names (or "*.example.org" patterns, RFC 8461 4.1), no
	   trailing dot; at least one unless mode is none. */
	const char *const *mx;
	unsigned int mx_count;
	/* Seconds, 1 .. MTASTS_MAX_AGE_LIMIT. */
	unsigned int max_age;
};

/* The policy text (RFC 8461 3.2): "version: STSv1", "mode: ...", one
   "mx: ..." line per host in the order given, "max_age: ...", each line
   ended by CRLF. Returns 0 with *text_r from pool, or -1 with *error_r
   (static or from pool) when a field is out of range or an MX host is not
   a valid host name or pattern. */
int mtasts_policy_format(pool_t pool, const struct mtasts_policy *policy,
			 const char **text_r, const char **error_r);

/* The policy id for a policy text (RFC 8461 3.1: 1 to 32 letters and
   digits): the first 128 bits of SHA-256 over the text, as 32 lowercase
   hex digits. From pool. */
const char *mtasts_policy_id(pool_t pool, const char *text);

/* The TXT value for _mta-sts.<domain> (RFC 8461 3.1):
   "v=STSv1; id=<id>". From pool. */
const char *mtasts_txt_record(pool_t pool, const char *id);

/* The policy this server publishes for the domains it hosts: mode
   mta_sts_mode, the one mx hostname (the MX `marmot dns records`
   prints), max_age mta_sts_max_age. The front serves text_r and the DNS
   doctor checks for mtasts_txt_record(id_r); both call this, so they
   agree. Returns 0, or -1 with *error_r (bad setting). */
int mtasts_policy_ours(pool_t pool, const struct marmot_settings *set,
		       const char **text_r, const char **id_r,
		       const char **error_r);

#endif
