/* dane.c - TLSA record selection for outbound SMTP (RFC 7672), see
   dane.h. Pure functions over lib-dns results; the front applies them
   (front-tlspolicy.c) and OpenSSL does the matching. */

#include "lib.h"
#include "dane.h"

#include <stdio.h>

int dane_tlsa_parse(const uint8_t *rdata, size_t len, struct dns_tlsa *tlsa_r,
		    const char **error_r)
{
	/* RFC 6698 2.1: three one-octet fields, then the association
	   data, which RFC 6698 2.1.4 does not allow to be empty. */
	if (len < 4) {
		*error_r = "TLSA rdata shorter than 4 octets";
		return -1;
	}
	tlsa_r->usage = rdata[0];
	tlsa_r->selector = rdata[1];
	tlsa_r->matching_type = rdata[2];
	tlsa_r->data = rdata + 3;
	tlsa_r->len = len - 3;
	return 0;
}

bool dane_tlsa_usable(const struct dns_tlsa *tlsa)
{
	/* RFC 7672 3.1.3: "SMTP client treatment of TLSA RRs with
	   certificate usages PKIX-TA(0) or PKIX-EE(1) ... SHOULD be treated
	   as unusable". */
	if (tlsa->usage != DANE_USAGE_DANE_TA &&
	    tlsa->usage != DANE_USAGE_DANE_EE)
		return false;
	if (tlsa->selector != DANE_SELECTOR_CERT &&
	    tlsa->selector != DANE_SELECTOR_SPKI)
		return false;
	switch (tlsa->matching_type) {
	case DANE_MTYPE_FULL:
		return tlsa->len > 0;
	case DANE_MTYPE_SHA256:
		/* RFC 6698 2.1.3: the digest's length is fixed. */
		return tlsa->len == 32;
	case DANE_MTYPE_SHA512:
		return tlsa->len == 64;
	default:
		return false;
	}
}

char *dane_tlsa_name(const char *host, unsigned int port)
{
	size_t len = strlen(host);

	if (len > 0 && host[len - 1] == '.')
		len--;
	/* RFC 6698 3: _port._tcp.host */
	return i_strdup_printf("_%u._tcp.%.*s", port, (int)len, host);
}

enum dane_state dane_host_state(const struct dns_tlsa_result *result,
				unsigned int usable_r[DANE_TLSA_MAX],
				unsigned int *usable_count_r,
				const char **reason_r)
{
	*usable_count_r = 0;
	switch (result->info.status) {
	case DNS_STATUS_OK:
		break;
	case DNS_STATUS_NXDOMAIN:
	case DNS_STATUS_NODATA:
	case DNS_STATUS_INVALID_NAME:
		/* RFC 7672 2.2: no TLSA records, no DANE for this host. */
		*reason_r = "no TLSA records";
		return DANE_STATE_NONE;
	case DNS_STATUS_TEMPFAIL:
	default:
		/* RFC 7672 2.2.2: a failed (or bogus) TLSA lookup on a
		   secure host: "the SMTP client MUST NOT" go on as if
		   there were none; try later. */
		*reason_r =
			result->info.error != NULL
				? result->info.error
				: (result->info.bogus ? "TLSA answer bogus"
						      : "TLSA lookup failed");
		return DANE_STATE_DEFER;
	}
	if (!result->info.secure) {
		/* RFC 7672 2.2: only DNSSEC-validated TLSA RRsets count. */
		*reason_r = "TLSA records not DNSSEC-secure";
		return DANE_STATE_NONE;
	}
	for (unsigned int i = 0;
	     i < result->count && *usable_count_r < DANE_TLSA_MAX; i++) {
		if (dane_tlsa_usable(&result->tlsa[i]))
			usable_r[(*usable_count_r)++] = i;
	}
	if (*usable_count_r == 0) {
		/* RFC 7672 2.2: "If TLSA records are published ... but none
		   are usable, ... the SMTP client MUST use TLS" but cannot
		   authenticate the server. */
		*reason_r = "no usable TLSA records";
		return DANE_STATE_ENCRYPT;
	}
	*reason_r = "usable TLSA records";
	return DANE_STATE_VERIFY;
}

const char *dane_state_name(enum dane_state state)
{
	switch (state) {
	case DANE_STATE_NONE:
		return "none";
	case DANE_STATE_VERIFY:
		return "verify";
	case DANE_STATE_ENCRYPT:
		return "encrypt";
	case DANE_STATE_DEFER:
		return "defer";
	}
	i_unreached();
}
