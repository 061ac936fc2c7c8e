#ifndef MARMOT_SPF_H
#define MARMOT_SPF_H
/* SPF (RFC 7208): check_host() for the HELO and MAIL FROM identities,
   over struct auth_dns (auth-dns.h), I/O-free. Mechanisms all, include,
   a, mx, ptr, ip4, ip6, exists; modifiers redirect and exp; macros
   (RFC 7208 7); the limits of RFC 7208 4.6.4: at most 10 terms that
   cause DNS lookups (include, a, mx, ptr, exists, redirect), at most 2
   void lookups (NXDOMAIN or no answer), at most 10 MX names per mx and
   10 PTR names per ptr. */

#include "lib.h"
#include "auth-dns.h"

enum spf_result {
	SPF_NONE,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
}; /* RFC 7208 2.6 */

enum spf_identity {
	SPF_IDENTITY_MAILFROM, /* RFC 7208 2.4 */
	SPF_IDENTITY_HELO, /* RFC 7208 2.3 */
};

struct spf_request {
	/* The SMTP client's address (%{i}, %{c}, %{v}): family AF_INET or
	   AF_INET6, addr in network order (4 or 16 bytes). An IPv4-mapped
	   IPv6 address is evaluated as IPv4 (RFC 7208 5). */
	int family;
	uint8_t addr[16];
	enum spf_identity identity;
	/* MAIL FROM reverse-path without <> ("" for the null sender:
	   RFC 7208 2.4, then "postmaster@" + helo is checked). */
	const char *sender;
	/* The HELO/EHLO argument (%{h}). */
	const char *helo;
	/* Our own host name (%{r} in exp=). */
	const char *receiver;
};

struct spf_outcome {
	enum spf_result result;
	enum spf_identity identity;
	/* The domain that was checked (lower case): the MAIL FROM domain or
	   the HELO name; for Authentication-Results smtp.mailfrom/smtp.helo
	   and DMARC's SPF-authenticated identifier. */
	const char *domain;
	/* The full identity checked, "local@domain" (for smtp.mailfrom). */
	const char *sender;
	/* Explanation (exp=, macro-expanded) for FAIL; NULL otherwise. */
	const char *explanation;
	/* What decided it, for logs and the A-R comment: the matching
	   mechanism ("ip4:192.0.2.0/24"), or why an error ("10 DNS lookup
	   limit exceeded"). */
	const char *reason;
};

typedef void spf_callback_t(void *context, const struct spf_outcome *outcome);

/* Starts check_host(). The callback runs exactly once unless cancelled
   first, never from within spf_check_start(); the outcome is valid
   during the callback only. A HELO or sender domain that is not a valid
   domain name gives NONE (RFC 7208 4.3). Do not cancel the check from
   inside its own callback (it is freed after the callback returns). */
struct spf_check *spf_check_start(struct auth_dns *dns,
				  const struct spf_request *req,
				  spf_callback_t *cb, void *context);
/* The callback will not run; sets *check to NULL; safe with NULL. */
void spf_check_cancel(struct spf_check **check);
const char *spf_result_name(enum spf_result r); /* "pass", "softfail", ... */

#endif
