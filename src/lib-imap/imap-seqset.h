#ifndef MARMOT_IMAP_SEQSET_H
#define MARMOT_IMAP_SEQSET_H
/* IMAP sequence sets (RFC 9051 9 sequence-set, seq-range, seq-number;
   RFC 5182 2.1 "$"): a validator that turns the atom a command received
   into ranges, a resolver that gives "*" its value for the selected
   mailbox and sorts and merges the ranges, an iterator over the numbers,
   and the writer for responses (COPYUID, ESEARCH ALL). I/O-free; the
   input is untrusted, and everything allocated is proportional to it. */

#include "lib.h"

struct buf;
struct pool;

/* "*" in a parsed range: nz-number is never 0 (RFC 9051 9). */
#define IMAP_SEQ_STAR 0u

struct imap_seq_range {
	uint32_t first, last;
};

struct imap_seqset {
	/* "$": the saved result of the last SEARCH (RFC 5182 2.1); no
	   ranges then. */
	bool searchres;
	/* As sent: either end may be IMAP_SEQ_STAR, first may exceed last. */
	const struct imap_seq_range *ranges;
	unsigned int count;
};

/* Parses str, all of it. "$" is accepted only with allow_searchres.
   Returns 0, or -1 with *error_r (suitable for a tagged BAD). */
int imap_seqset_parse(struct pool *pool, const char *str, bool allow_searchres,
		      struct imap_seqset *set_r, const char **error_r);

/* Gives "*" the value star (the number of messages, or the highest UID
   in use; RFC 9051 9 seq-number), orders each range, then sorts and
   merges them: the result is ascending, disjoint and not adjacent.
   Returns 0, or -1 if "*" is used with star == 0 (an empty mailbox: the
   caller answers BAD, RFC 9051 9 seq-number). set must not be "$". */
int imap_seqset_resolve(const struct imap_seqset *set, uint32_t star,
			struct pool *pool, struct imap_seq_range **ranges_r,
			unsigned int *count_r);

/* Drops the numbers above max from resolved ranges, in place (*count
   may become 0). Returns true if any were dropped: for message sequence
   numbers the caller answers BAD (RFC 9051 9 seq-number); for UIDs they
   name no message, and clamping keeps "1:4294967295" from being walked
   number by number. */
bool imap_seqset_clamp(struct imap_seq_range *ranges, unsigned int *count,
		       uint32_t max);

/* How many numbers resolved ranges hold. */
uint64_t imap_seqset_count(const struct imap_seq_range *ranges,
			   unsigned int count);
/* True if num is in resolved ranges (binary search). */
bool imap_seqset_contains(const struct imap_seq_range *ranges,
			  unsigned int count, uint32_t num);

struct imap_seqset_iter {
	const struct imap_seq_range *ranges;
	unsigned int count, idx;
	uint64_t next;
};

/* Iterates over the numbers of resolved ranges, ascending. */
void imap_seqset_iter_init(struct imap_seqset_iter *iter,
			   const struct imap_seq_range *ranges,
			   unsigned int count);
bool imap_seqset_iter_next(struct imap_seqset_iter *iter, uint32_t *num_r);

/* Appends ranges as a sequence-set ("1:3,7,9:12"); a range whose last is
   IMAP_SEQ_STAR is written "N:*". count must be > 0. */
void imap_seqset_write(struct buf *out, const struct imap_seq_range *ranges,
		       unsigned int count);

#endif
