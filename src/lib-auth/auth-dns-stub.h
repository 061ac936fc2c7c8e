#ifndef MARMOT_AUTH_DNS_STUB_H
#define MARMOT_AUTH_DNS_STUB_H
/* An in-memory zone behind struct auth_dns, for unit tests and fuzzers of
   lib-auth. Lookups are queued and answered only by auth_dns_stub_run(),
   so, as with the real resolver, no callback runs inside the call that
   started its lookup.

   Answers follow lib-dns (dns.h): names are case-insensitive (a trailing
   dot is ignored); a name dns_name_is_valid() refuses answers
   INVALID_NAME; a name with records of other types (or only a status for
   other types) answers NODATA, an unknown name NXDOMAIN. A CNAME at the
   name asked is followed (at most 8 hops, then TEMPFAIL; canonical_name
   is set) for every type but CNAME. MX answers are sorted by preference
   (insertion order among equals, so tests are deterministic); exchanges
   that are not valid host names are left out ("unusable" when none is
   left) and a lone "." is a null MX (RFC 7505). TXT answers carry the
   text as added; a raw TXT lookup gets it as character-strings of at most
   255 octets. A, AAAA, PTR, MX and CNAME are also answered to raw lookups
   in wire format (names uncompressed). Every answer has ttl 300 and is
   neither secure nor bogus.

   Not thread-safe. The stub must not be destroyed from a callback. */

#include "auth-dns.h"

struct auth_dns_stub;

struct auth_dns_stub *auth_dns_stub_create(void);
/* Drops queued lookups (their callbacks never run). Safe with NULL. */
void auth_dns_stub_destroy(struct auth_dns_stub **stub);
/* The resolver to hand to the code under test; valid as long as the
   stub. */
struct auth_dns *auth_dns_stub_dns(struct auth_dns_stub *stub);

/* Records. name is copied. text may contain NUL bytes (len counts all). */
void auth_dns_stub_add_txt(struct auth_dns_stub *stub, const char *name,
			   const char *text, size_t len);
/* addr: an IPv4 / IPv6 literal. Return 0, or -1 when it does not parse. */
int auth_dns_stub_add_a(struct auth_dns_stub *stub, const char *name,
			const char *addr);
int auth_dns_stub_add_aaaa(struct auth_dns_stub *stub, const char *name,
			   const char *addr);
/* host "" or "." is the root (null MX). */
void auth_dns_stub_add_mx(struct auth_dns_stub *stub, const char *name,
			  uint16_t preference, const char *host);
void auth_dns_stub_add_ptr(struct auth_dns_stub *stub, const char *name,
			   const char *host);
void auth_dns_stub_add_cname(struct auth_dns_stub *stub, const char *name,
			     const char *target);
/* Any type (SPF type 99, TLSA, ...): wire rdata answered as is to raw
   lookups of rrtype. A raw A / AAAA record is also what the typed adders
   store, so the two can be mixed. */
void auth_dns_stub_add_raw(struct auth_dns_stub *stub, const char *name,
			   uint16_t rrtype, const void *data, size_t len);
/* Every lookup of name for rrtype (0: for every type) completes with
   status (DNS_STATUS_TEMPFAIL to simulate a timeout or SERVFAIL,
   NXDOMAIN, NODATA), whatever records are there. The last call for a
   (name, rrtype) wins; a specific rrtype wins over 0. */
void auth_dns_stub_set_status(struct auth_dns_stub *stub, const char *name,
			      uint16_t rrtype, enum dns_status status);
/* Off by default. When on, names lib-dns refuses (dns_name_is_valid())
   are answered too, as long as every label has 1..63 octets and the name
   at most 253 (a trailing dot ignored): any other octet may appear, as the
   DNS itself allows. The open SPF test suite needs it (a:foo:bar/baz.x,
   a macro-expanded "macro%percent  space..."); the real resolver answers
   such names INVALID_NAME. MX exchanges and CNAME targets follow the same
   rule. */
void auth_dns_stub_set_any_names(struct auth_dns_stub *stub, bool on);

/* Delivers every queued answer, and those queued by callbacks meanwhile,
   in the order the lookups were made, until none is left. Returns how
   many callbacks ran. Panics after 1000000 (an unbounded lookup loop in
   the code under test). */
unsigned int auth_dns_stub_run(struct auth_dns_stub *stub);
/* Lookups started so far, cancelled ones included (for limit tests). */
unsigned int auth_dns_stub_queries(const struct auth_dns_stub *stub);
/* Lookups queued and not yet answered or cancelled. */
unsigned int auth_dns_stub_pending(const struct auth_dns_stub *stub);

#endif
