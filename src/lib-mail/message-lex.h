#ifndef MARMOT_MESSAGE_LEX_H
#define MARMOT_MESSAGE_LEX_H
/* Lexical helpers for structured header fields (RFC 5322 3.2, RFC 2045
   5.1): folding white space, comments, quoted strings, atoms and MIME
   tokens. Every function takes a span that it advances past what it
   consumed; nothing is allocated except into the caller's buf. All are
   lenient: an unterminated comment or quoted string runs to the end of the
   input. Used by rfc2231.c, mime-parser.c and message-address.c. */

#include "lib.h"
#include "buf.h"
#include "pool.h"
#include "span.h"

/* Skips white space, CR, LF and comments. */
void message_lex_skip_cfws(struct span *s);
/* Skips one comment starting at '(' and appends its unescaped text to
   text (may be NULL). Returns false if s does not start with '('. */
bool message_lex_comment(struct span *s, struct buf *text);
/* Parses a quoted string starting at '"' and appends its unescaped content
   to out. Returns false if s does not start with '"'. */
bool message_lex_quoted(struct span *s, struct buf *out);
/* Parses an RFC 2045 5.1 token. Returns false if none is there. */
bool message_lex_token(struct span *s, struct span *token_r);
/* Parses an RFC 5322 3.2.3 atom (atext run). Returns false if none. Bytes
   >= 0x80 count as atext (RFC 6532 3.2). */
bool message_lex_atom(struct span *s, struct span *atom_r);
/* True for RFC 5322 3.2.3 atext (and 8-bit bytes). */
bool message_lex_is_atext(uint8_t c);
/* Copies s into pool as a C string, each NUL byte replaced by U+FFFD (as
   Dovecot shows NULs in header values): the copy is never cut short. */
char *message_lex_strdup(pool_t pool, struct span s);

#endif
