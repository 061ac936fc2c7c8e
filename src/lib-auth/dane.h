#ifndef MARMOT_DANE_H
#define MARMOT_DANE_H
/* DANE for SMTP (RFC 7672): which TLSA records an SMTP client may use and
   what a TLSA lookup result means for one MX host. I/O-free: the caller
   does the DNS (src/lib-dns, validated by libunbound) and hands the
   result here; the certificate matching itself is OpenSSL's
   (SSL_dane_enable/SSL_dane_tlsa_add), fed with the records this module
   selects. */

#include "lib.h"
#include "dns.h"

/* RFC 6698 2.1.1, RFC 7218 2 */
#define DANE_USAGE_PKIX_TA 0
#define DANE_USAGE_PKIX_EE 1
#define DANE_USAGE_DANE_TA 2
#define DANE_USAGE_DANE_EE 3
#define DANE_SELECTOR_CERT 0
#define DANE_SELECTOR_SPKI 1
#define DANE_MTYPE_FULL 0
#define DANE_MTYPE_SHA256 1
#define DANE_MTYPE_SHA512 2

/* Bound on the records kept for one host (an RRset larger than this is
   truncated, which can only make fewer certificates match). */
#define DANE_TLSA_MAX 16

enum dane_state {
	/* No DANE for this host: TLSA absent (NXDOMAIN/NODATA), or the
	   answer is not DNSSEC-secure. Other policies (MTA-STS,
	   opportunistic TLS) apply. */
	DANE_STATE_NONE,
	/* Secure TLSA RRset with usable records: TLS is mandatory and the
	   server certificate must match one of them. */
	DANE_STATE_VERIFY,
	/* Secure TLSA RRset, none usable: TLS is mandatory, without
	   authentication (RFC 7672 2.2). */
	DANE_STATE_ENCRYPT,
	/* The TLSA lookup failed (SERVFAIL, timeout, bogus): this host must
	   not be used now; the message stays queued (RFC 7672 2.2.2). */
	DANE_STATE_DEFER,
};

/* Parses TLSA rdata in wire format (RFC 6698 2.1: usage, selector,
   matching type, data). tlsa_r->data points into rdata. Returns 0, or -1
   with *error_r (static) when shorter than 4 octets. */
int dane_tlsa_parse(const uint8_t *rdata, size_t len, struct dns_tlsa *tlsa_r,
		    const char **error_r);

/* Whether an SMTP client may use the record: RFC 7672 3.1.3 (usages
   PKIX-TA(0) and PKIX-EE(1) are not used for SMTP), known selector and
   matching type, and a digest of the right length (RFC 6698 2.1.3). */
bool dane_tlsa_usable(const struct dns_tlsa *tlsa);

/* The TLSA owner name for host and port (RFC 6698 3, RFC 7672 2.2.3:
   "_25._tcp.mx.example.com"), i_malloc'ed; host without trailing dot. */
char *dane_tlsa_name(const char *host, unsigned int port);

/* What the TLSA lookup result means for the host (the caller has
   already checked RFC 7672 2.2.1/2.2.2: the MX RRset and the host's
   address records were secure - otherwise no lookup, DANE_STATE_NONE).
   The usable records' indexes in result->tlsa go to usable_r (at most
   DANE_TLSA_MAX) and their number to *usable_count_r. *reason_r (static
   or result->info.error) says why for logs. */
enum dane_state dane_host_state(const struct dns_tlsa_result *result,
				unsigned int usable_r[DANE_TLSA_MAX],
				unsigned int *usable_count_r,
				const char **reason_r);

/* "none", "verify", "encrypt", "defer" */
const char *dane_state_name(enum dane_state state);

#endif
