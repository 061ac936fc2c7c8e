#ifndef MARMOT_AUTH_DNS_H
#define MARMOT_AUTH_DNS_H
/* A resolver for lib-auth: function pointers over lib-dns, so every
   evaluator runs unchanged on the real async resolver (front) and on an
   in-memory stub (unit tests, fuzzers; auth-dns-stub.h). Result structs
   are lib-dns's (dns.h): valid during the callback only. Callbacks are
   never called from within the call that started the lookup, and exactly
   once unless the lookup is cancelled first. Names passed to auth_dns are
   ASCII presentation names without trailing dot; a name lib-dns would
   not send (dns_name_is_valid()) completes with DNS_STATUS_INVALID_NAME.

   lib-auth is I/O-free except through this struct: no sockets, no ioloop,
   no files. */

#include "dns.h"

struct auth_dns {
	struct dns_lookup *(*txt)(struct auth_dns *dns, const char *name,
				  dns_txt_callback_t *cb, void *context);
	struct dns_lookup *(*mx)(struct auth_dns *dns, const char *name,
				 dns_mx_callback_t *cb, void *context);
	/* A, AAAA, PTR, TLSA, anything: wire rdata (dns.h dns_raw_result). */
	struct dns_lookup *(*raw)(struct auth_dns *dns, const char *name,
				  uint16_t rrtype, dns_raw_callback_t *cb,
				  void *context);
	/* The callback will not run; sets *lookup to NULL; safe with NULL.
	   Not for a lookup whose callback has already started. */
	void (*cancel)(struct auth_dns *dns, struct dns_lookup **lookup);
	/* The implementation's (struct dns * for auth_dns_init_dns()). */
	void *context;
};

/* Over a lib-dns resolver (front). dns must outlive adns's lookups. */
void auth_dns_init_dns(struct auth_dns *adns, struct dns *dns);

#endif
