#ifndef MARMOT_DNS_H
#define MARMOT_DNS_H
/* Asynchronous DNS for the front's single-threaded loop, over libunbound.
   libunbound resolves (and validates, when a trust anchor is configured)
   in its own background thread; its result pipe (ub_fd()) is an io in the
   caller's ioloop, so no lookup ever blocks the loop. Results come back
   typed: MX (sorted by preference, null MX recognised), host addresses
   (AAAA and A together), TXT (SPF, DMARC, MTA-STS, TLS-RPT), TLSA (DANE),
   and raw rdata for any other type.

   Every callback runs later from the ioloop, never inside the call that
   started the lookup, exactly once unless the lookup is cancelled first.
   Result structs and everything they point to are valid during the
   callback only: copy what you keep. The callback may start new lookups,
   cancel other lookups, and destroy the dns object.

   Names are presentation-format domain names in ASCII (A-labels: convert
   IDNs first): letters, digits, '-', '_' (for _dmarc, _25._tcp and the
   like), labels of 1..63 octets, at most 253 octets without the optional
   trailing dot. Anything else completes with DNS_STATUS_INVALID_NAME and
   reaches no server. */

#include "lib.h"

struct ioloop;
struct marmot_settings;
struct dns;
struct dns_lookup;

/* RR types (RFC 1035 3.2.2, RFC 3596 2.1, RFC 6698 7.1). */
#define DNS_TYPE_A 1
#define DNS_TYPE_NS 2
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_PTR 12
#define DNS_TYPE_MX 15
#define DNS_TYPE_TXT 16
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_TLSA 52

enum dns_status {
	/* At least one record of the asked type (after CNAMEs). */
	DNS_STATUS_OK,
	/* RCODE NXDOMAIN: the name does not exist. Permanent. */
	DNS_STATUS_NXDOMAIN,
	/* The name exists but has no record of the asked type. Permanent
	   (for MX: RFC 5321 5.1 "implicit MX", the caller's rule). */
	DNS_STATUS_NODATA,
	/* SERVFAIL, REFUSED, a timeout, a network error, a DNSSEC
	   validation failure (bogus is then set) or an answer that could
	   not be parsed: try again later (RFC 5321 5.1: "the message MUST
	   be queued and retried later"). */
	DNS_STATUS_TEMPFAIL,
	/* The name is not a valid host or domain name (see above). */
	DNS_STATUS_INVALID_NAME,
};

/* What every result carries. */
struct dns_result_info {
	enum dns_status status;
	/* DNSSEC (libunbound's flags): secure = validated from a trust
	   anchor (an answer, or a proven non-existence); bogus = validation
	   failed (status is then TEMPFAIL). Neither: insecure (unsigned
	   zone, or no trust anchor configured). */
	bool secure;
	bool bogus;
	/* Why bogus, or what failed for TEMPFAIL; NULL otherwise. For logs
	   and DSN diagnostics. */
	const char *error;
	/* The name the records belong to when CNAMEs were followed (no
	   trailing dot); NULL when the answer is for the name asked. */
	const char *canonical_name;
	/* Smallest TTL of the answer in seconds (0 when no data). */
	unsigned int ttl;
};

struct dns_mx {
	uint16_t preference;
	const char *host; /* no trailing dot */
};

struct dns_mx_result {
	struct dns_result_info info;
	/* RFC 7505 3: the only MX record is "0 ." - the domain accepts no
	   mail. Then status is OK and count 0; RFC 7505 4.1: do not try,
	   fail the recipient with 556 5.1.10. */
	bool null_mx;
	/* Sorted by ascending preference; hosts of equal preference are in
	   random order (RFC 5321 5.1: "the sender-SMTP MUST randomize
	   them"). Records whose exchange is not a valid host name are left
	   out, and so is a "." beside other records (RFC 7505 3 forbids
	   mixing them). */
	const struct dns_mx *mx;
	unsigned int count;
	/* MX records were present but none was usable (RFC 5321 5.1: "MUST
	   be reported as an error"): status is OK, count 0, null_mx false. */
	bool unusable;
};

struct dns_addr {
	int family; /* AF_INET6 or AF_INET */
	uint8_t addr[16]; /* network order; 4 bytes for AF_INET */
	char text[46]; /* INET6_ADDRSTRLEN */
};

struct dns_host_result {
	/* OK if either family has an address. When one query failed
	   temporarily and the other has addresses, status is OK and
	   partial is set (info.error says which). NXDOMAIN if the name does
	   not exist; NODATA if it exists without A and AAAA; else
	   TEMPFAIL. secure only if both answers were secure; bogus if
	   either was. */
	struct dns_result_info info;
	bool partial;
	/* IPv6 addresses first (RFC 6724 default policy prefers IPv6), each
	   family in the order the resolver gave (it may rotate them). */
	const struct dns_addr *addrs;
	unsigned int count;
};

struct dns_txt {
	/* The character-strings of one TXT record concatenated without
	   separators (RFC 7208 3.3, RFC 7489 6.6.3), NUL-terminated; len
	   excludes the NUL (the text may contain NUL bytes itself). */
	const char *text;
	size_t len;
};

struct dns_txt_result {
	struct dns_result_info info;
	const struct dns_txt *txt;
	unsigned int count;
};

struct dns_tlsa {
	/* RFC 6698 2.1 */
	uint8_t usage, selector, matching_type;
	const uint8_t *data;
	size_t len;
};

struct dns_tlsa_result {
	struct dns_result_info info;
	const struct dns_tlsa *tlsa;
	unsigned int count;
};

struct dns_rdata {
	const uint8_t *data; /* wire format, names uncompressed */
	size_t len;
};

struct dns_raw_result {
	struct dns_result_info info;
	uint16_t rrtype;
	const struct dns_rdata *rdata;
	unsigned int count;
};

typedef void dns_mx_callback_t(void *context,
			       const struct dns_mx_result *result);
typedef void dns_host_callback_t(void *context,
				 const struct dns_host_result *result);
typedef void dns_txt_callback_t(void *context,
				const struct dns_txt_result *result);
typedef void dns_tlsa_callback_t(void *context,
				 const struct dns_tlsa_result *result);
typedef void dns_raw_callback_t(void *context,
				const struct dns_raw_result *result);

struct dns_settings {
	/* Comma-separated forwarders "ADDR[@PORT]" (IPv4 or IPv6 literal,
	   port 53 unless given), queried with RD set; they may be
	   recursive resolvers or an authoritative server for the zones in
	   question. NULL, "" or "resolv.conf" (the dns_resolver setting's
	   default): the nameservers of /etc/resolv.conf. */
	const char *resolver;
	/* A file of DS or DNSKEY records for the root (or any zone), e.g.
	   /usr/share/dns/root.key; an absolute path. NULL, "" or "none":
	   no DNSSEC validation (every answer is insecure, never bogus). */
	const char *trust_anchor_file;
	/* A lookup that has no answer after this many milliseconds
	   completes with TEMPFAIL "timed out". 0: 30000. */
	unsigned int timeout_msecs;
};

/* Fills set from marmot.conf's dns_resolver, dns_trust_anchor_file and
   dns_timeout. set points into mset, which must outlive it. */
void dns_settings_init(struct dns_settings *set,
		       const struct marmot_settings *mset);

/* Creates the resolver for ioloop. Returns NULL with *error_r (static or
   valid until the next dns_create()) on a bad setting: an unparsable
   resolver address, an unreadable resolv.conf or trust anchor file. */
struct dns *dns_create(struct ioloop *ioloop, const struct dns_settings *set,
		       const char **error_r);
/* Stops the background thread. Pending lookups are dropped: their
   callbacks never run (their handles become invalid). Safe with *dns ==
   NULL, and from inside a callback. */
void dns_destroy(struct dns **dns);

/* Each returns a handle for dns_lookup_cancel(), valid until the callback
   has returned or the lookup is cancelled. */
struct dns_lookup *dns_lookup_mx(struct dns *dns, const char *domain,
				 dns_mx_callback_t *cb, void *context);
/* AAAA and A in parallel, one callback when both are answered. */
struct dns_lookup *dns_lookup_host(struct dns *dns, const char *host,
				   dns_host_callback_t *cb, void *context);
struct dns_lookup *dns_lookup_txt(struct dns *dns, const char *name,
				  dns_txt_callback_t *cb, void *context);
struct dns_lookup *dns_lookup_tlsa(struct dns *dns, const char *name,
				   dns_tlsa_callback_t *cb, void *context);
/* Any RR type, class IN. */
struct dns_lookup *dns_lookup_raw(struct dns *dns, const char *name,
				  uint16_t rrtype, dns_raw_callback_t *cb,
				  void *context);
/* The callback will not run. Sets *lookup to NULL; safe with NULL. Must
   not be called for a lookup whose callback has already started. */
void dns_lookup_cancel(struct dns_lookup **lookup);

/* Lookups started and not yet completed or cancelled (for tests and
   shutdown). */
unsigned int dns_pending_count(const struct dns *dns);

/* For tests: the next n cancellations inside libunbound fail (as they
   may on a system error), to exercise the orphaned-query path. */
void dns_test_fail_cancels(unsigned int n);
/* Queries whose cancellation failed and whose answer has not come. */
unsigned int dns_test_orphans(const struct dns *dns);

/* For the fuzzer: decodes count rdata (data[count] == NULL) of rrtype as
   an answer (MX, A or AAAA as a host lookup, TXT, TLSA, else raw) through
   the code the callbacks get, checking what it hands out. Returns the
   number of records decoded. */
unsigned int dns_test_decode(uint16_t rrtype, char **data, int *len,
			     unsigned int count);

/* "OK", "NXDOMAIN", "NODATA", "TEMPFAIL", "INVALID_NAME". */
const char *dns_status_name(enum dns_status status);

/* Whether name passes the syntax rule above (exposed for callers that
   want to reject an address early). */
bool dns_name_is_valid(const char *name);

#endif
