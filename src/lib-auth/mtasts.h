#ifndef MARMOT_MTASTS_H
#define MARMOT_MTASTS_H
/* MTA-STS (RFC 8461) for the sending side: the _mta-sts TXT record, the
   policy file, MX host matching, and a policy cache with max_age expiry
   that is refreshed when the record's id changes. I/O-free: the front
   (front-tlspolicy.c) does the DNS lookup and the HTTPS fetch (libcurl)
   and hands the bytes here. Times are wall-clock seconds given by the
   caller. The policy struct and the mode enum are those of our own
   policy (mtasts-policy.h); this file parses other domains' into them. */

#include "lib.h"
#include "pool.h"
#include "dns.h"
#include "mtasts-policy.h"

struct buf;

#include <time.h>

/* RFC 8461 3.1: id = 1*32(ALPHA / DIGIT) */
#define MTASTS_ID_MAX 32
/* RFC 8461 3.3: a policy larger than 64 KiB may be refused. */
#define MTASTS_POLICY_MAX_SIZE 65536
/* Bound on mx lines kept from one policy. */
#define MTASTS_MX_MAX 64
/* Bound on cached domains (the oldest entry is dropped beyond it). */
#define MTASTS_CACHE_MAX 10000

/* Parses one TXT record (RFC 8461 3.1: "v=STSv1; id=...;" and extension
   fields). Returns 0 with the id in id_r, or -1 with *error_r (static)
   when the text is not a valid STSv1 record. */
int mtasts_txt_parse(const char *text, size_t len, char id_r[MTASTS_ID_MAX + 1],
		     const char **error_r);
/* The index of the one record in txt that starts with version (e.g.
   "v=STSv1", "v=TLSRPTv1"): -1 when none does, -2 with *error_r when
   several do. */
int mtasts_txt_find(const struct dns_txt *txt, unsigned int count,
		    const char *version, const char **error_r);
/* From the TXT RRset at _mta-sts.<domain>: returns 1 with the id when
   exactly one record starts with "v=STSv1", 0 when none does, -1 with
   *error_r when several do or the one is invalid (RFC 8461 3.1: then
   "senders MUST assume" there is no policy record). */
int mtasts_txt_select(const struct dns_txt *txt, unsigned int count,
		      char id_r[MTASTS_ID_MAX + 1], const char **error_r);

/* Parses a policy file body (RFC 8461 3.2) into policy_r, strings in
   pool. Returns 0, or -1 with *error_r (static) for: a body larger than
   MTASTS_POLICY_MAX_SIZE, a missing or unknown version, a missing or
   unknown mode, a missing or out-of-range max_age, no mx in testing or
   enforce mode, an invalid mx pattern, a line without ':'. */
int mtasts_policy_parse(pool_t pool, const uint8_t *data, size_t len,
			struct mtasts_policy *policy_r, const char **error_r);
/* Copies policy's strings into pool. */
void mtasts_policy_copy(pool_t pool, struct mtasts_policy *dest,
			const struct mtasts_policy *src);

/* RFC 8461 4.1: host matches pattern: equal ignoring case (and a
   trailing dot), or pattern "*.rest" and host is exactly one label
   followed by ".rest". */
bool mtasts_mx_match(const char *pattern, const char *host);
/* Whether host matches one of policy's mx lines. */
bool mtasts_policy_mx_allowed(const struct mtasts_policy *policy,
			      const char *host);

struct mtasts_cache;

struct mtasts_cache *mtasts_cache_create(void);
void mtasts_cache_destroy(struct mtasts_cache **cache);
/* The policy cached for domain (case-insensitive) if it has not expired
   at now (fetched + max_age, RFC 8461 5.1), with its id in *id_r.
   Valid until the next store or destroy. NULL otherwise (an expired
   entry is removed). */
const struct mtasts_policy *mtasts_cache_lookup(struct mtasts_cache *cache,
						const char *domain, time_t now,
						const char **id_r);
/* Caches (or replaces) domain's policy, fetched at now with id. */
void mtasts_cache_store(struct mtasts_cache *cache, const char *domain,
			const char *id, const struct mtasts_policy *policy,
			time_t now);
/* Extends an entry's lifetime when the TXT record's id is unchanged
   (RFC 8461 5.1: "the cached policy ... is still valid" and the sender
   may refresh it). Returns false if domain is not cached. */
bool mtasts_cache_touch(struct mtasts_cache *cache, const char *domain,
			time_t now);
unsigned int mtasts_cache_count(const struct mtasts_cache *cache);

/* The cache as text, one line per domain, for a small file under the
   data directory: "domain id fetched mode max_age mx1,mx2,...\n". */
void mtasts_cache_write(const struct mtasts_cache *cache, struct buf *out);
/* Adds the entries of text (as written above) that have not expired at
   now; lines that do not parse are skipped. Returns the number added. */
unsigned int mtasts_cache_read(struct mtasts_cache *cache, const char *text,
			       size_t len, time_t now);

#endif
