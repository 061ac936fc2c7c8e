#ifndef MARMOT_AUTHRES_H
#define MARMOT_AUTHRES_H
/* Authentication-Results (RFC 8601): the field Marmot prepends to every
   message received on port 25 (spf, dkim, dmarc and arc results), and
   the removal of incoming fields that claim our authserv-id (RFC 8601 5),
   which needs a lexer for the authserv-id (CFWS, quoted strings: RFC 8601
   2.2). I/O-free.

   Every value that comes from the network (domains, selectors, local
   parts, reasons) is emitted as an RFC 8601 2.2 pvalue: as is when it is
   a token or an addr-spec of dot-atoms, else as a quoted-string; reasons
   become comments. Control characters are dropped, so a hostile d= or
   reason can never end the field or add one. */

#include "lib.h"
#include "pool.h"
#include "buf.h"
#include "span.h"
#include "spf.h"
#include "dkim.h"
#include "dmarc.h"
#include "arc.h"

struct authres_input {
	/* Any of these may be NULL: the method was not run and is left
	   out. */
	const struct spf_outcome *spf_mailfrom; /* smtp.mailfrom */
	const struct spf_outcome *spf_helo; /* smtp.helo */
	const struct dkim_verify_result *dkim; /* none when count is 0 */
	const struct dmarc_outcome *dmarc;
	const struct arc_verify_result *arc;
};

/* The resinfo list (RFC 8601 2.2) without the authserv-id, separated by
   "; ", e.g. "spf=pass smtp.mailfrom=a@b.example; dkim=pass
   header.d=b.example header.s=s1 header.b=abcdefgh; dmarc=pass
   (p=reject dis=none) header.from=b.example; arc=none", or "none" when
   nothing was run. This is also what the ARC-Authentication-Results
   carries (arc.h arc_seal_params.results). */
const char *authres_results(pool_t pool, const struct authres_input *input);

/* The whole "Authentication-Results: <authserv-id>;\r\n\t...\r\n" field
   over a resinfo list from authres_results(), one result per line. */
const char *authres_field(pool_t pool, const char *authserv_id,
			  const char *results);

/* Reads the authserv-id at the start of an Authentication-Results value
   (what follows the colon): [CFWS] (token / quoted-string). Returns true
   and the (unquoted) id in id_r (pool memory), false when there is
   none. */
bool authres_parse_authserv_id(pool_t pool, struct span value,
			       const char **id_r);

/* Appends msg to out without the Authentication-Results fields of its
   header block whose authserv-id is authserv_id (ASCII case-insensitive):
   RFC 8601 5, a field claiming our id did not come from us. Fields of
   other ids, the body and everything else are kept byte for byte.
   Returns how many fields were removed. */
unsigned int authres_remove_ours(const uint8_t *msg, size_t len,
				 const char *authserv_id, struct buf *out);

#endif
