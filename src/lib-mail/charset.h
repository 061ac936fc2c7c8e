#ifndef MARMOT_CHARSET_H
#define MARMOT_CHARSET_H
/* Charset conversion to UTF-8 for MIME bodies and header words, over ICU's
   ucnv. Charset names are looked up only through ICU's alias table (the
   allow-list): a name that is not a known alias, or holds characters that
   no charset name has, is "unknown". Conversion never fails: invalid input
   sequences become U+FFFD, and text in an unknown charset is read as UTF-8
   with every invalid byte replaced by U+FFFD. US-ASCII is read as UTF-8
   too, because mislabelled 8-bit text is the common case in real mail.
   Called by rfc2047.c, rfc2231.c and the MIME users (search, webmail). */

#include "lib.h"
#include "buf.h"
#include "span.h"

/* True when name is a charset ICU knows (case and punctuation insensitive
   per ICU's alias matching). */
bool charset_is_known(const char *name);

/* Appends input, converted from charset to UTF-8, to dest. charset NULL
   means UTF-8. Returns 0 when the charset was known, -1 when it was not
   (the input was then appended as sanitised UTF-8). Either way dest holds
   valid UTF-8 for the whole input. */
int charset_to_utf8(struct buf *dest, const char *charset, struct span input);

/* Appends input to dest as valid UTF-8: well-formed sequences are copied,
   every other byte becomes U+FFFD. NUL bytes are kept. */
void charset_utf8_sanitize(struct buf *dest, struct span input);

/* True when input is well-formed UTF-8 (RFC 3629: no overlongs, no
   surrogates, nothing above U+10FFFF). */
bool charset_utf8_is_valid(struct span input);

#endif
