#ifndef MARMOT_SPF_PRIVATE_H
#define MARMOT_SPF_PRIVATE_H
/* Inside spf.c / spf-macro.c, and exposed for test-spf.c and fuzz-spf.c:
   the record parser and the macro language (RFC 7208 4.6, 7). */

#include "spf.h"
#include "buf.h"
#include "pool.h"

enum spf_mech {
	SPF_MECH_ALL,
	SPF_MECH_INCLUDE,
	SPF_MECH_A,
	SPF_MECH_MX,
	SPF_MECH_PTR,
	SPF_MECH_IP4,
	SPF_MECH_IP6,
	SPF_MECH_EXISTS,
};

struct spf_term {
	enum spf_mech mech;
	/* PASS, FAIL, SOFTFAIL or NEUTRAL (RFC 7208 4.6.2) */
	enum spf_result qualifier;
	/* The domain-spec, NULL when absent (then <domain> is used). */
	const char *domain_spec;
	/* ip4/ip6 network, and the CIDR lengths (a, mx, ip4, ip6). */
	uint8_t net[16];
	unsigned int cidr4, cidr6;
	/* The term as written, without the qualifier (for reasons). */
	const char *text;
};

struct spf_record {
	struct spf_term *terms;
	unsigned int count;
	const char *redirect; /* domain-spec or NULL */
	const char *exp; /* domain-spec or NULL */
};

/* Whether text[0..len) is an SPF record: "v=spf1" (case-insensitive)
   followed by a space or its end (RFC 7208 4.5). */
bool spf_is_record(const char *text, size_t len);
/* Parses a record spf_is_record() accepted. Returns the record, or NULL
   with *error_r set (a PermError, RFC 7208 4.6). Everything is allocated
   from pool. */
struct spf_record *spf_record_parse(pool_t pool, const char *text, size_t len,
				    const char **error_r);

/* The values the macro letters expand to (RFC 7208 7.3). */
struct spf_macro_vars {
	const char *s, *l, *o, *d, *i, *p, *v, *h, *c, *r, *t;
};

/* Whether str[0..len) is a valid macro-string (RFC 7208 7.1); exp allows
   the letters c, r, t and spaces (explain-string). */
bool spf_macro_check(const char *str, size_t len, bool exp);
/* Whether str is a valid domain-spec: a macro-string ending in a
   macro-expand or in "." toplabel ["."] (RFC 7208 7.1). */
bool spf_domain_spec_check(const char *str);
/* Whether the macro-string uses %{p} (which needs DNS lookups first). */
bool spf_macro_uses_p(const char *str);
/* Expands str[0..len) into out (appended). vars->p may be NULL only if
   the string has no p macro. Returns false on a syntax error. */
bool spf_macro_expand(const char *str, size_t len, bool exp,
		      const struct spf_macro_vars *vars, struct buf *out);
/* For a domain-spec's expansion: drops a trailing dot and, above 253
   octets, whole labels from the left (RFC 7208 7.3). */
void spf_domain_truncate(struct buf *name);

#endif
