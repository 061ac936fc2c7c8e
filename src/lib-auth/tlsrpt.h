#ifndef MARMOT_TLSRPT_H
#define MARMOT_TLSRPT_H
/* SMTP TLS Reporting (RFC 8460) for the sending side: the _smtp._tls TXT
   record, the per-day counts of our outbound TLS sessions per policy
   domain, the JSON report (RFC 8460 4) and the report message with it
   gzipped (RFC 8460 5). I/O-free: the front (front-tlspolicy.c) records
   the sessions, looks the record up and queues the message. */

#include "lib.h"
#include "pool.h"
#include "dns.h"

#include <time.h>

struct buf;

/* Bounds: domains per report period, distinct failure details per
   policy, rua URIs kept from one record. */
#define TLSRPT_DOMAINS_MAX 10000
#define TLSRPT_DETAILS_MAX 100
#define TLSRPT_RUA_MAX 8

/* RFC 8460 4.4: policy-type */
enum tlsrpt_policy_type {
	TLSRPT_POLICY_STS,
	TLSRPT_POLICY_TLSA,
	TLSRPT_POLICY_NONE, /* "no-policy-found" */
};

/* RFC 8460 4.3: result-type */
enum tlsrpt_result {
	TLSRPT_RESULT_STARTTLS_NOT_SUPPORTED,
	TLSRPT_RESULT_CERTIFICATE_HOST_MISMATCH,
	TLSRPT_RESULT_CERTIFICATE_EXPIRED,
	TLSRPT_RESULT_CERTIFICATE_NOT_TRUSTED,
	TLSRPT_RESULT_VALIDATION_FAILURE,
	TLSRPT_RESULT_TLSA_INVALID,
	TLSRPT_RESULT_DNSSEC_INVALID,
	TLSRPT_RESULT_DANE_REQUIRED,
	TLSRPT_RESULT_STS_POLICY_FETCH_ERROR,
	TLSRPT_RESULT_STS_POLICY_INVALID,
	TLSRPT_RESULT_STS_WEBPKI_INVALID,
};

const char *tlsrpt_policy_type_name(enum tlsrpt_policy_type type);
const char *tlsrpt_result_name(enum tlsrpt_result result);

/* Parses one TXT record (RFC 8460 3: "v=TLSRPTv1; rua=URI[,URI...]",
   extension fields ignored). Returns 0 with the rua URIs (from pool, at
   most TLSRPT_RUA_MAX) or -1 with *error_r (static) when it is not a
   valid TLSRPTv1 record or has no rua. */
int tlsrpt_txt_parse(pool_t pool, const char *text, size_t len,
		     const char **rua_r, unsigned int *count_r,
		     const char **error_r);
/* From the RRset at _smtp._tls.<domain>: 1 with the URIs of the one
   record starting with "v=TLSRPTv1", 0 when none does, -1 when several
   do or it is invalid (RFC 8460 3: then there is no reporting). */
int tlsrpt_txt_select(pool_t pool, const struct dns_txt *txt,
		      unsigned int count, const char **rua_r,
		      unsigned int *count_r, const char **error_r);
/* The address of a "mailto:" URI (RFC 6068, %-decoding of the address
   not supported: such URIs are refused), from pool, or NULL for other
   schemes or a malformed address. */
const char *tlsrpt_rua_mailto(pool_t pool, const char *uri);

/* One report period's counts. */
struct tlsrpt_store;

struct tlsrpt_store *tlsrpt_store_create(void);
void tlsrpt_store_destroy(struct tlsrpt_store **store);

/* The policy a session was made under. strings: the policy as lines
   (RFC 8460 4.4 policy-string: the MTA-STS policy's lines, or the TLSA
   records in presentation form), mx: the MTA-STS mx patterns. Copied. */
struct tlsrpt_policy {
	const char *domain;
	enum tlsrpt_policy_type type;
	const char *const *strings;
	unsigned int string_count;
	const char *const *mx;
	unsigned int mx_count;
};

/* Counts one successful session (TLS negotiated as the policy asked). */
void tlsrpt_add_success(struct tlsrpt_store *store,
			const struct tlsrpt_policy *policy);
/* Counts one failed session. Strings may be NULL; copied. */
void tlsrpt_add_failure(struct tlsrpt_store *store,
			const struct tlsrpt_policy *policy,
			enum tlsrpt_result result, const char *sending_ip,
			const char *receiving_mx, const char *receiving_ip,
			const char *failure_code);

/* The distinct policy domains counted (for the report lookups). The
   returned array is from pool. */
unsigned int tlsrpt_store_domains(struct tlsrpt_store *store, pool_t pool,
				  const char *const **domains_r);

/* Writes domain's JSON report (RFC 8460 4.4) for [start, end) to out:
   organization-name org, contact-info contact, report-id report_id. */
void tlsrpt_report_json(const struct tlsrpt_store *store, const char *domain,
			const char *org, const char *contact,
			const char *report_id, time_t start, time_t end,
			struct buf *out);

/* The report mail (RFC 8460 5.3): From from, To to, the headers
   TLS-Report-Domain and TLS-Report-Submitter, Subject "Report Domain:
   ... Submitter: ... Report-ID: <...>", multipart/report;
   report-type="tlsrpt" with a text part and the JSON gzipped as
   application/tlsrpt+gzip, named "submitter!domain!start!end!id.json.gz"
   (RFC 8460 5.1). CRLF line ends. Returns 0, or -1 with *error_r when
   gzip fails. */
int tlsrpt_report_message(const char *from, const char *to,
			  const char *submitter, const char *domain,
			  const char *report_id, time_t start, time_t end,
			  const struct buf *json, time_t now, struct buf *out,
			  const char **error_r);

#endif
