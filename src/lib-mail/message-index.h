#ifndef MARMOT_MESSAGE_INDEX_H
#define MARMOT_MESSAGE_INDEX_H
/* Everything the store keeps about a message besides its bytes, computed
   once at append/merge time from the raw message with the MIME parser:
   the cached IMAP ENVELOPE and BODYSTRUCTURE, a preview (RFC 8970: at most
   256 characters of the first text part, whitespace collapsed), the
   threading headers, attachment names, and the text the full-text index
   holds: decoded addresses and subject, and the decoded text of every
   text/plain part plus the text of text/html parts (tags, scripts and
   styles removed, entities decoded), all converted to UTF-8.

   Bodies are decoded per Content-Transfer-Encoding (base64,
   quoted-printable, 7bit/8bit/binary) and charset (ICU). Limits: at most
   MESSAGE_INDEX_MAX_TEXT bytes of body text are indexed per message (the
   rest is not searchable by body, and says so in text_truncated).
   Nothing here fails on malformed input: broken parts index as much as
   can be read. */

#include "lib.h"

struct pool;

#define MESSAGE_INDEX_MAX_TEXT (4u * 1024 * 1024)
#define MESSAGE_INDEX_PREVIEW_MAX 256

struct message_index {
	/* IMAP strings (RFC 9051 7.5.2), ready to send. */
	const char *envelope;
	const char *bodystructure; /* with extension data */
	const char *body; /* BODY: without extension data */
	const char *preview; /* UTF-8, may be "" */
	/* Decoded, UTF-8, for search and display lists. */
	const char *from, *to, *cc, *bcc, *subject;
	const char *text; /* decoded body text, parts separated by "\n" */
	bool text_truncated;
	/* Threading (RFC 5256 / JMAP): Message-ID, In-Reply-To and
	   References as bare ids without <>; NULL-terminated list. */
	const char *message_id;
	const char *const *references; /* in order, In-Reply-To last */
	/* Date: header as unix time, or 0 if missing or unparsable. */
	int64_t date;
	/* Normalised subject for threading (RFC 5256 2.1 base subject). */
	const char *base_subject;
	/* The extraction removed a "Re:"/"Fwd:" leader, a "(fwd)" trailer
	   or a "[fwd: ...]" wrapper: the message is a reply or forward
	   (RFC 5256 3 REFERENCES step 6). */
	bool subject_is_reply;
	/* SORT keys (RFC 5256 3): the addr-mailbox (local part) of the
	   first From, To and Cc address, ASCII lower-cased, "" if none. */
	const char *sort_from, *sort_to, *sort_cc;
	/* DISPLAYFROM/DISPLAYTO (RFC 5957 2.1): the decoded display name of
	   the first address, or its addr-spec when there is none, "" if
	   there is no address. UTF-8. */
	const char *display_from, *display_to;
	bool has_attachment;
	const char *const *attachment_names; /* NULL-terminated, UTF-8 */
	/* Header block size and body line count of the whole message. */
	uint64_t header_size;
	uint64_t body_lines;
};

/* Builds the index of a raw message; everything is allocated from pool. */
void message_index_build(struct pool *pool, const void *message, size_t len,
			 struct message_index *index_r);

#endif
