#ifndef MARMOT_IMAP_MATCH_H
#define MARMOT_IMAP_MATCH_H
/* LIST and LSUB patterns (RFC 9051 6.3.9, RFC 3501 6.3.8): "*" matches
   any run of characters, "%" any run without the hierarchy delimiter,
   everything else itself; "INBOX" as a name's first level matches
   case-insensitively (RFC 9051 5.1: INBOX is case-insensitive). I/O-free.

   The pattern is untrusted: matching simulates the pattern as an automaton
   (a set of pattern positions per name octet), so its cost is bounded by
   pattern length times name length whatever the wildcards, never
   exponential backtracking; runs of wildcards are collapsed first and a
   pattern with more literal octets than the name is rejected at once. */

#include "lib.h"

struct pool;
struct imap_match;

/* Compiles pattern (UTF-8, already decoded from modified UTF-7) for the
   delimiter sep. Pool memory. */
struct imap_match *imap_match_init(struct pool *pool, const char *pattern,
				   char sep);
/* True if name matches the whole pattern. */
bool imap_match(struct imap_match *match, const char *name);
/* The work done by imap_match() calls so far, in automaton steps (pattern
   positions visited), for a caller that bounds a whole command's cost:
   many long patterns against many long names can still add up. */
uint64_t imap_match_steps(const struct imap_match *match);

#endif
