#ifndef MARMOT_RFC2231_H
#define MARMOT_RFC2231_H
/* MIME parameter lists (RFC 2045 5.1 "; attribute=value") with RFC 2231
   extensions: continuations (name*0, name*1, ...), extended values
   (name*=charset'language'%XX) and both combined.

   Each parameter comes back once per (name, extended) pair: "filename" and
   "filename*" are two entries, as IMAP BODYSTRUCTURE shows them; a plain
   parameter given twice comes back twice, as Dovecot shows it. For each
   entry, value is decoded UTF-8 (extended values converted from their
   charset; plain values RFC 2047-decoded, since mailers put encoded-words
   in file names), and raw_value is the undecoded value with continuations
   joined ("utf-8'en'%E2%82%AC" for extended ones) for IMAP.

   Bounds: at most RFC2231_MAX_PARAMS parameters and RFC2231_MAX_SECTIONS
   sections per name are kept; the rest are ignored. Used by mime-parser.c
   for Content-Type and Content-Disposition. */

#include "lib.h"
#include "pool.h"
#include "span.h"

#define RFC2231_MAX_PARAMS 64
#define RFC2231_MAX_SECTIONS 100

struct mime_param {
	const char *name; /* lower-cased, without '*' or section */
	const char *name_raw; /* the same as written */
	const char *value; /* decoded, valid UTF-8 */
	const char *raw_value; /* joined, undecoded; NUL bytes become U+FFFD */
	const char *charset; /* extended only, else NULL */
	const char *language; /* extended only, else NULL */
	bool extended; /* was name* (IMAP shows the name as "name*") */
};

/* Parses parameters from input, which starts at the first ';' (anything
   before it is skipped). Returns the number of parameters and sets
   *params_r to an array of them; all memory comes from pool. Never fails:
   malformed parameters are skipped. */
unsigned int rfc2231_parse(pool_t pool, struct span input,
			   struct mime_param **params_r);

/* Returns the decoded value of parameter name (case-insensitive),
   preferring the extended form, or NULL. */
const char *mime_param_get(const struct mime_param *params, unsigned int count,
			   const char *name);

#endif
