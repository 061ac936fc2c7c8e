#ifndef MARMOT_IMAP_SORT_H
#define MARMOT_IMAP_SORT_H
/* IMAP SORT (RFC 5256 3, RFC 5957 DISPLAYFROM/DISPLAYTO), I/O-free: parses
   the sort criteria list, orders messages by them and writes the
   "* SORT" response. Strings compare with i;ascii-casemap (RFC 4790 9.2:
   a-z folded to A-Z, then octet by octet), the only collation offered
   (RFC 5256 2.1: the default). Messages equal under every criterion keep
   mailbox order (RFC 5256 3: by sequence number), whatever REVERSE says. */

#include "lib.h"
#include "imap-parser.h"

struct buf;

enum imap_sort_key {
	IMAP_SORT_ARRIVAL, /* INTERNALDATE */
	IMAP_SORT_CC, /* addr-mailbox of the first Cc address */
	IMAP_SORT_DATE, /* sent date (RFC 5256 2.2) */
	IMAP_SORT_FROM,
	IMAP_SORT_SIZE, /* RFC822.SIZE */
	IMAP_SORT_SUBJECT, /* base subject (RFC 5256 2.1) */
	IMAP_SORT_TO,
	IMAP_SORT_DISPLAYFROM, /* RFC 5957 2.1 */
	IMAP_SORT_DISPLAYTO,
};

/* More criteria than keys make no sense; this bounds a hostile list. */
#define IMAP_SORT_CRITERIA_MAX 16

struct imap_sort_criterion {
	enum imap_sort_key key;
	bool reverse;
};

/* What the sort reads of a message. Strings are never NULL. */
struct imap_sort_msg {
	uint32_t seq, uid;
	/* RFC 5256 2.2 sent date: the Date: header in UTC, or INTERNALDATE
	   when the header is missing or unparsable (the caller decides:
	   imap_sort_sent_date()). */
	int64_t date;
	int64_t arrival;
	uint64_t size;
	const char *subject; /* base subject */
	const char *from, *to, *cc; /* addr-mailbox */
	const char *display_from, *display_to;
};

/* RFC 5256 2.2 / BASE.6.4.4: the Date: time, or internaldate when there
   is none (date 0). */
int64_t imap_sort_sent_date(int64_t date, int64_t internaldate);

/* i;ascii-casemap (RFC 4790 9.2) comparison: <0, 0, >0. */
int imap_ascii_casemap_cmp(const char *a, const char *b);

/* Parses a sort-criteria list (RFC 5256 4: "(" sort-criterion *(SP
   sort-criterion) ")", sort-criterion = ["REVERSE" SP] sort-key).
   Returns the count, or -1 with *error_r (static text) for a BAD. */
int imap_sort_parse(const struct imap_arg *list,
		    struct imap_sort_criterion crit_r[IMAP_SORT_CRITERIA_MAX],
		    const char **error_r);

/* Orders msgs in place by the criteria, ties by seq. */
void imap_sort(struct imap_sort_msg *msgs, unsigned int count,
	       const struct imap_sort_criterion *crit, unsigned int crit_count);

/* "* SORT n n ...\r\n" (RFC 5256 4 sort-data) with UIDs or sequence
   numbers. */
void imap_sort_write(struct buf *out, const struct imap_sort_msg *msgs,
		     unsigned int count, bool uid);

#endif
