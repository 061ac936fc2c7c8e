#ifndef MARMOT_MBOX_H
#define MARMOT_MBOX_H
/* mbox files (RFC 4155, and the mboxrd/mboxo variants described in
   qmail's mbox(5)) for `marmot import` and `marmot export`.

   Reading: a message starts at a From_ line ("From SENDER DATE") that is
   the first line of the file or follows an empty line, and whose DATE
   parses as an asctime date (optionally with a numeric zone); any other
   "From " line is body text. The empty line before the next From_ line
   (or at the end of the file) is the separator, not message content.
   Content-Length headers are ignored (they lie too often). Lines keep
   their endings, LF or CRLF. Quoting: mboxrd removes one '>' from every
   line matching ^>+From ; mboxo only from ^>From .
   The mbox metadata headers Status, X-Status, X-Keywords, X-UID, X-IMAP
   and X-IMAPbase are removed from the message and become flags and
   keywords (Status: R = \Seen; X-Status: A = \Answered, F = \Flagged,
   T = \Draft, D = \Deleted; X-Keywords: comma or space separated).
   Without Status/X-Status, X-Mozilla-Status (kept in the message) gives
   the flags (0x1 read, 0x2 replied, 0x4 marked, 0x8 deleted).
   The From_ line's date is the INTERNALDATE (UTC unless it carries a
   zone).

   Writing always produces mboxrd: ^>*From  lines get one more '>', the
   From_ line is "From SENDER asctime-date-in-UTC", Status (always) and
   X-Status / X-Keywords (when set) are inserted at the end of the header,
   and a message is followed by an empty line. A message that does not end
   in a newline gets one: mbox cannot tell it apart, so such messages do
   not round-trip byte for byte (every other message does). */

#include "lib.h"
#include "mail-flags.h"

#include <stdio.h>

struct buf;
struct pool;

/* Largest message the reader accepts (the blob store's limit). */
#define MBOX_MESSAGE_MAX (256u * 1024 * 1024)

enum mbox_format {
	MBOX_FORMAT_MBOXRD,
	MBOX_FORMAT_MBOXO,
};

struct mbox_message {
	/* The message with quoting undone and metadata headers removed.
	   Valid until the next mbox_reader_next() call. */
	const uint8_t *data;
	size_t size;
	const char *sender; /* from the From_ line */
	int64_t internaldate; /* 0 if the date did not parse */
	uint32_t flags; /* enum mail_flag bits */
	const char *const *keywords; /* NULL-terminated, never NULL */
	/* Line number of the From_ line, for error messages. */
	uint64_t line;
};

struct mbox_reader;

/* Reads messages from input (not closed by the reader). */
struct mbox_reader *mbox_reader_create(FILE *input, enum mbox_format format);
void mbox_reader_destroy(struct mbox_reader **reader);
/* Returns 1 and fills msg_r, 0 at the end of the input, -1 with *error_r
   on a read error, a file that does not start with a From_ line, or a
   message over MBOX_MESSAGE_MAX. */
int mbox_reader_next(struct mbox_reader *reader, struct mbox_message *msg_r,
		     const char **error_r);

/* Parses a From_ line's date ("Sat Jan  3 01:05:34 1996", also with a
   "+hhmm" zone after the time or the year, and without seconds).
   Returns 0 with unix time in *time_r, or -1. */
int mbox_parse_date(const char *str, size_t len, int64_t *time_r);

/* Appends one message in mboxrd form to out. sender NULL or "" means
   "MAILER-DAEMON"; internaldate is written in UTC; keywords may be NULL. */
void mbox_write_message(struct buf *out, const void *data, size_t size,
			const char *sender, int64_t internaldate,
			uint32_t flags, const char *const *keywords);

#endif
