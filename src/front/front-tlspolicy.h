#ifndef MARMOT_FRONT_TLSPOLICY_H
#define MARMOT_FRONT_TLSPOLICY_H
/* The outbound TLS policy of the queue runner (front-queue-smtp.c): per
   destination DANE (RFC 7672) when the MX host's TLSA RRset is
   DNSSEC-secure, else MTA-STS (RFC 8461) when the domain has a policy,
   else opportunistic TLS (RFC 7435). This file owns the MTA-STS side:
   the _mta-sts TXT lookup, the HTTPS policy fetch (libcurl, run on a
   worker thread with a bounded time and size, connecting to the address
   our own resolver found), the policy cache (memory plus
   DATA/mta-sts-cache) and the TLS contexts for verified delivery, and
   the OpenSSL DANE setup of one connection. Only the loop's thread calls
   these. */

#include "lib.h"
#include "mtasts.h"
#include "tlsrpt.h"

struct front;
struct ssl_st;
struct tls_ctx;
struct dns;

/* Reads queue_mta_sts and queue_tls_ca, creates the verifying TLS
   contexts, loads the cache file. Returns 0, or -1 with *error_r. */
int fq_tlspolicy_init(struct front *front, struct dns *dns,
		      const char **error_r);
/* Pending lookups must have been cancelled. */
void fq_tlspolicy_deinit(void);

/* Client contexts: verifying against queue_tls_ca (MTA-STS) and DANE. */
struct tls_ctx *fq_tlspolicy_verify_ctx(void);
struct tls_ctx *fq_tlspolicy_dane_ctx(void);
/* Whether queue_mta_sts is on. */
bool fq_tlspolicy_sts_enabled(void);

/* policy NULL: the domain has no (valid) MTA-STS policy. Valid during
   the callback only. */
typedef void fq_sts_callback_t(void *context,
			       const struct mtasts_policy *policy);
struct fq_sts_lookup;

/* Finds domain's MTA-STS policy: the TXT record, then the cache or a
   fetch. The callback runs later from the loop, exactly once unless
   cancelled. */
struct fq_sts_lookup *fq_sts_lookup(const char *domain, fq_sts_callback_t *cb,
				    void *context);
/* Sets *lookup to NULL; safe with NULL. */
void fq_sts_lookup_cancel(struct fq_sts_lookup **lookup);

/* The usable TLSA records of one MX host, for fq_dane_ssl_setup. */
struct fq_dane_records {
	const char *host; /* the TLSA base domain (MX host name) */
	const char *domain; /* the next-hop domain */
	unsigned int count;
	struct {
		uint8_t usage, selector, mtype;
		uint8_t *data;
		size_t len;
	} rec[16];
};

/* stream_ssl_setup_t for a DANE connection; context is a struct
   fq_dane_records. */
int fq_dane_ssl_setup(struct ssl_st *ssl, void *context, const char **error_r);

/* TLS-RPT (RFC 8460): one session to domain's MX host under its DANE
   records (dane != NULL) or else its MTA-STS policy (sts != NULL; with
   neither nothing is counted). A failure says what failed; mx and ip may
   be NULL. Reports go out at the end of each queue_tlsrpt_interval. */
void fq_tlsrpt_success(const char *domain, const struct fq_dane_records *dane,
		       const struct mtasts_policy *sts);
void fq_tlsrpt_failure(const char *domain, const struct fq_dane_records *dane,
		       const struct mtasts_policy *sts,
		       enum tlsrpt_result result, const char *mx,
		       const char *ip, const char *code);
/* RFC 8460 4.3.2: the result-type of a certificate verification error
   (X509_V_ERR_*) under policy dane or not. */
enum tlsrpt_result fq_tlsrpt_verify_result(long verify, bool dane);

#endif
