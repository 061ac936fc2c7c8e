#ifndef MARMOT_AUTH_HEADER_H
#define MARMOT_AUTH_HEADER_H
/* The header fields of a raw message (RFC 5322 2.2), for lib-auth's
   readers of From: (dmarc.c) and Authentication-Results: (authres.c):
   an iterator over the header block, in order, that stops at the empty
   line ending it (or at the end of the input). CRLF and bare LF line ends
   are both accepted. A line that is neither a field nor a continuation
   (no colon, or a name with characters outside RFC 5322 2.2's ftext) is
   returned with an empty name, so callers still see every byte. Nothing is
   allocated. */

#include "lib.h"
#include "span.h"

struct auth_header_field {
	/* The field name (before the colon, white space before the colon
	   excluded: obs-optional, RFC 5322 4.5). Empty for a malformed
	   line. */
	struct span name;
	/* The value after the colon, still folded, without the final line
	   end. */
	struct span value;
	/* The whole field, continuation lines and final line end
	   included: removing raw removes exactly this field. */
	struct span raw;
};

struct auth_header_iter {
	struct span rest;
	bool done;
};

void auth_header_iter_init(struct auth_header_iter *iter, const uint8_t *msg,
			   size_t len);
/* Returns true and fills field_r with the next field; false at the end of
   the header block. */
bool auth_header_iter_next(struct auth_header_iter *iter,
			   struct auth_header_field *field_r);
/* The offset of the first byte after the header fields (the empty line
   that separates the body, or len when there is none). Valid after
   auth_header_iter_next() returned false. */
size_t auth_header_iter_offset(const struct auth_header_iter *iter,
			       const uint8_t *msg);

#endif
