#ifndef MARMOT_DNS_DOCTOR_H
#define MARMOT_DNS_DOCTOR_H
/* The DNS doctor behind `marmot dns records|check`: the records a domain
   hosted here must publish (MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, TLSA,
   SRV for client autoconfiguration, autoconfig CNAMEs), and a checker that
   compares them with live answers and says, record by record, what is OK,
   missing or wrong, and the record that fixes it. I/O-free: the caller
   gives the settings-derived input (dns_doctor_input) and a resolver
   (auth-dns.h); the CLI wires it to lib-dns, the unit tests to the stub. */

#include "lib.h"
#include "pool.h"
#include "auth-dns.h"
#include "mtasts-policy.h"

struct buf;

#define DNS_TYPE_SRV 33 /* RFC 2782 */
/* Every record we print carries this TTL: an hour, so a fix reaches
   resolvers soon. */
#define DNS_DOCTOR_TTL 3600

struct dns_doctor_dkim {
	/* From directory_dkim_key_list(): the selector, the TXT value
	   ("v=DKIM1; k=...; p=...") and the state; "retired" keys are
	   skipped (they may leave DNS). */
	const char *selector, *public_record, *state;
};

struct dns_doctor_input {
	/* Lower-case A-labels, no trailing dot. */
	const char *domain;
	/* Our host name (the hostname setting): the MX, the SRV target, the
	   CNAME target and the MTA-STS mx. */
	const char *hostname;
	/* Public IPv4 / IPv6 literals of hostname (public_addresses); none
	   when count is 0: SPF then names the MX hosts only, and any A/AAAA
	   of hostname will do. */
	const char *const *addresses;
	unsigned int address_count;
	const struct dns_doctor_dkim *dkim;
	unsigned int dkim_count;
	/* mtasts_policy_ours()'s id. */
	const char *mta_sts_id;
	/* "quarantine" or "reject" (dmarc_policy). */
	const char *dmarc_policy;
	/* SHA-256 of our certificate's SubjectPublicKeyInfo in hex
	   (dns_doctor_tlsa_spki()); NULL: no TLSA record. */
	const char *tlsa_spki_sha256;
	/* The ports clients reach (settings ports, 0 when disabled): SRV
	   records, a disabled one published as "not provided" (RFC 2782
	   target "."). */
	unsigned int submissions_port, imaps_port, pop3s_port;
};

enum dns_doctor_kind {
	DNS_DOCTOR_KIND_MX,
	DNS_DOCTOR_KIND_HOST_ADDRESS, /* A / AAAA of hostname */
	DNS_DOCTOR_KIND_SPF,
	DNS_DOCTOR_KIND_DKIM,
	DNS_DOCTOR_KIND_DMARC,
	DNS_DOCTOR_KIND_MTA_STS,
	DNS_DOCTOR_KIND_MTA_STS_HOST, /* mta-sts.<domain> CNAME */
	DNS_DOCTOR_KIND_TLSRPT,
	DNS_DOCTOR_KIND_TLSA,
	DNS_DOCTOR_KIND_SRV,
	DNS_DOCTOR_KIND_AUTOCONFIG, /* autoconfig/autodiscover CNAME */
};

struct dns_doctor_record {
	enum dns_doctor_kind kind;
	/* What it is for people: "MX", "SPF", "DKIM", "DMARC", "MTA-STS",
	   "MTA-STS host", "TLS-RPT", "TLSA", "SRV", "autoconfig",
	   "host address". */
	const char *what;
	/* Owner name, no trailing dot. */
	const char *name;
	uint16_t rrtype;
	/* The rdata in presentation form, unquoted for TXT ("v=spf1 mx
	   -all"), names with their trailing dot ("10 mx.example.org."). */
	const char *value;
};

/* The records to publish for in->domain, in a stable order, from pool.
   Returns 0, or -1 with *error_r when the input is unusable (a name or
   address that is not valid). */
int dns_doctor_records(pool_t pool, const struct dns_doctor_input *in,
		       const struct dns_doctor_record **records_r,
		       unsigned int *count_r, const char **error_r);

/* Appends rec as one zone-file line, "name. TTL IN TYPE rdata\n"; a TXT
   value is quoted ('"' and '\' escaped) and split into character-strings
   of at most 255 octets (RFC 1035 3.3.14, RFC 6376 3.6.2.2). */
void dns_doctor_record_format(struct buf *out,
			      const struct dns_doctor_record *rec);

/* The type's mnemonic ("TXT", "TYPE99" for one we do not name). */
const char *dns_doctor_type_name(pool_t pool, uint16_t rrtype);

/* Hex SHA-256 of the SubjectPublicKeyInfo of the first certificate in a
   PEM chain: the data of a "3 1 1" TLSA record (RFC 6698 2.1, RFC 7672
   3.1.1: DANE-EE(3) SPKI(1) SHA-256(1)). Returns 0 with *hex_r from pool,
   or -1 with *error_r when there is no parsable certificate. */
int dns_doctor_tlsa_spki(pool_t pool, const void *pem, size_t len,
			 const char **hex_r, const char **error_r);

enum dns_doctor_status {
	DNS_DOCTOR_OK,
	/* Works, but not as recommended (DMARC p=none, another rua, an SPF
	   record we cannot evaluate fully). Not a failure. */
	DNS_DOCTOR_WARNING,
	/* Not published. */
	DNS_DOCTOR_MISSING,
	/* Published with a value that does not work for this server. */
	DNS_DOCTOR_WRONG,
	/* The lookup failed (timeout, SERVFAIL): could not check. */
	DNS_DOCTOR_ERROR,
};

struct dns_doctor_finding {
	/* The expected record this is about. */
	const struct dns_doctor_record *record;
	enum dns_doctor_status status;
	/* What was found and why it is wrong; for OK what matched. */
	const char *detail;
	/* For MISSING and WRONG (and some warnings): what to do, with the
	   record(s) to publish as zone-file text; NULL when nothing. */
	const char *fix;
};

/* "OK", "WARNING", "MISSING", "WRONG", "ERROR". */
const char *dns_doctor_status_name(enum dns_doctor_status status);

/* Called once when every lookup has been answered: one finding per
   expected record, in the order of records. Valid during the call. */
typedef void dns_doctor_callback_t(void *context,
				   const struct dns_doctor_finding *findings,
				   unsigned int count);

struct dns_doctor_check;

/* Starts the lookups for records (from dns_doctor_records(in), count >
   0); dns, in
   and records must stay valid until the callback has run or the check is
   cancelled. The callback never runs inside this call. The check
   frees itself after the callback returns. */
struct dns_doctor_check *dns_doctor_check_start(
	struct auth_dns *dns, const struct dns_doctor_input *in,
	const struct dns_doctor_record *records, unsigned int count,
	dns_doctor_callback_t *cb, void *context);
/* Cancels the lookups; the callback will not run. Sets *check to NULL;
   safe with NULL. Not from within the callback. */
void dns_doctor_check_cancel(struct dns_doctor_check **check);

/* True when no finding is MISSING, WRONG or ERROR. */
bool dns_doctor_findings_ok(const struct dns_doctor_finding *findings,
			    unsigned int count);

#endif
