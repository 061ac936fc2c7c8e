#ifndef MARMOT_AUTH_REPORT_H
#define MARMOT_AUTH_REPORT_H
/* What the report mails of DMARC (RFC 7489 7.2) and TLS-RPT (RFC 8460)
   share: the gzip'ed attachment, its base64 body and the Date field. */

#include "lib.h"
#include "buf.h"

#include <time.h>

/* gzip (RFC 1952) of data, appended to out. Returns 0, or -1 (zlib
   failure). */
int auth_report_gzip(const void *data, size_t len, struct buf *out);
/* data in base64 lines of 76 characters (RFC 2045 6.8), CRLF-terminated,
   appended to out. */
void auth_report_base64(const void *data, size_t len, struct buf *out);
/* An RFC 5322 3.3 date-time in UTC ("Wed, 02 Dec 2026 18:30:00 +0000")
   into date (at least 40 bytes). */
void auth_report_date(time_t t, char *date, size_t size);

#endif
