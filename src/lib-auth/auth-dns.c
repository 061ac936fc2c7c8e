/* auth-dns.c - struct auth_dns over the front's lib-dns resolver: each
   function pointer forwards to the dns_lookup_*() of the same kind. */

#include "auth-dns.h"

static struct dns_lookup *auth_dns_dns_txt(struct auth_dns *adns,
					   const char *name,
					   dns_txt_callback_t *cb,
					   void *context)
{
	return dns_lookup_txt(adns->context, name, cb, context);
}

static struct dns_lookup *auth_dns_dns_mx(struct auth_dns *adns,
					  const char *name,
					  dns_mx_callback_t *cb, void *context)
{
	return dns_lookup_mx(adns->context, name, cb, context);
}

static struct dns_lookup *auth_dns_dns_raw(struct auth_dns *adns,
					   const char *name, uint16_t rrtype,
					   dns_raw_callback_t *cb,
					   void *context)
{
	return dns_lookup_raw(adns->context, name, rrtype, cb, context);
}

static void auth_dns_dns_cancel(struct auth_dns *adns ATTR_UNUSED,
				struct dns_lookup **lookup)
{
	dns_lookup_cancel(lookup);
}

void auth_dns_init_dns(struct auth_dns *adns, struct dns *dns)
{
	memset(adns, 0, sizeof(*adns));
	adns->txt = auth_dns_dns_txt;
	adns->mx = auth_dns_dns_mx;
	adns->raw = auth_dns_dns_raw;
	adns->cancel = auth_dns_dns_cancel;
	adns->context = dns;
}
