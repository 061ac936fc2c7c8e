#ifndef MARMOT_RFC2047_H
#define MARMOT_RFC2047_H
/* Decoding of RFC 2047 encoded-words in header text into UTF-8.

   Both encodings (B and Q, any case) are decoded; RFC 2231 5 language
   suffixes on the charset ("utf-8*en") are dropped; white space between
   two adjacent encoded-words is removed (RFC 2047 6.2), and adjacent words
   in the same charset are joined before conversion so that a character
   split across words survives. Leniently, encoded-words are also found
   inside words ("foo=?utf-8?q?bar?=") as most mailers produce and read
   them. Text outside encoded-words is taken as UTF-8. Never fails: bad
   base64, unknown charsets and invalid sequences become U+FFFD or are
   kept as text. Used by ENVELOPE users, search and rfc2231.c. */

#include "lib.h"
#include "buf.h"
#include "span.h"

/* Appends the decoded UTF-8 form of header text input to dest. CR and LF
   (folding) are dropped. */
void rfc2047_decode(struct buf *dest, struct span input);

#endif
