#ifndef MARMOT_IMAP_DATE_H
#define MARMOT_IMAP_DATE_H
/* IMAP dates (RFC 9051 9): date-time "dd-Mon-yyyy hh:mm:ss +zzzz" (APPEND,
   INTERNALDATE), with the day space-padded or two digits. I/O-free;
   input is untrusted and every field is range-checked. */

#include "lib.h"

/* Parses str (without the quotes), all of it, into unix time (UTC).
   Returns 0, or -1 if it is not a valid date-time. */
int imap_date_parse_datetime(const char *str, int64_t *time_r);

#endif
