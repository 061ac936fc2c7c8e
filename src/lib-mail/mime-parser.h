#ifndef MARMOT_MIME_PARSER_H
#define MARMOT_MIME_PARSER_H
/* Streaming RFC 5322 / MIME parser. I/O-free and push-style: create a
   parser, feed it the message in chunks of any size (one byte at a time
   gives exactly the same result as all at once), then finish it to get
   the tree of parts.

   Every part records exact octet offsets from the start of the message:
   header block [header_offset, body_offset) including the empty line that
   ends it, and body [body_offset, body_end). As RFC 2046 5.1.1 says, the
   line break before a boundary line belongs to the boundary, not to the
   body. These offsets serve IMAP BODY[1.2.MIME], BODY[1.2], partial
   fetches and BINARY.

   Leniency: LF-only and CRLF line ends, 8-bit bytes and NUL bytes
   (counted) are accepted; a missing final boundary ends the multipart at
   the end of its parent; boundary lines may carry trailing white space,
   and a closing one also junk once its multipart has a part; a header
   line without a colon is counted and skipped.

   Limits never make parsing fail (mail must always be storable): a part
   nested deeper than max_depth is kept as an opaque leaf (its body is not
   split), parts beyond max_parts are not created (the rest of that
   multipart becomes its epilogue), headers beyond max_headers per part are
   skipped, and header lines longer than max_line are truncated for
   parsing while offsets stay exact. Each hit sets a flag on the part and
   on the result.

   Memory: the parser holds one line (at most max_line bytes) and the
   current header (at most max_line bytes); the part tree is allocated
   from the caller's pool and lives as long as it. Used by the store
   (cached BODYSTRUCTURE/ENVELOPE, search indexing) and by lib-imap. */

#include "lib.h"
#include "pool.h"
#include "rfc2231.h"

struct mime_limits {
	unsigned int max_depth; /* default 20 */
	unsigned int max_parts; /* default 1000 */
	unsigned int max_headers; /* per part; default 1000 */
	size_t max_line; /* default 64 KiB */
};

#define MIME_LIMITS_DEFAULT_DEPTH 20
#define MIME_LIMITS_DEFAULT_PARTS 1000
#define MIME_LIMITS_DEFAULT_HEADERS 1000
#define MIME_LIMITS_DEFAULT_LINE (64 * 1024)

enum mime_part_flags {
	MIME_PART_FLAG_MULTIPART = 1 << 0, /* has a boundary, split */
	MIME_PART_FLAG_MESSAGE = 1 << 1, /* message/rfc822|global, parsed */
	MIME_PART_FLAG_TEXT = 1 << 2, /* Content-Type text/ */
	MIME_PART_FLAG_OPAQUE = 1 << 3, /* too deep / too many parts */
	MIME_PART_FLAG_HEADERS_TRUNCATED = 1 << 4, /* max_headers hit */
	MIME_PART_FLAG_LONG_LINE = 1 << 5, /* a header line > max_line */
	MIME_PART_FLAG_NO_FINAL_BOUNDARY = 1 << 6,
	MIME_PART_FLAG_HAS_NUL = 1 << 7, /* NUL bytes in the part */
	MIME_PART_FLAG_NO_HEADER_END = 1 << 8, /* no empty line after headers */
	MIME_PART_FLAG_8BIT_HEADERS = 1 << 9,
};

/* Raw header values that IMAP ENVELOPE needs (RFC 9051 7.5.2): unfolded,
   leading white space removed, not decoded, NUL bytes replaced by U+FFFD.
   The first occurrence of each field counts; NULL when absent. */
struct mime_envelope {
	const char *date, *subject, *from, *sender, *reply_to;
	const char *to, *cc, *bcc, *in_reply_to, *message_id;
};

struct mime_part {
	struct mime_part *parent, *children, *next;
	unsigned int child_count;
	unsigned int depth; /* 0 for the message itself */
	enum mime_part_flags flags;

	uint64_t header_offset, body_offset, body_end;
	uint64_t body_lines; /* LF count in [body_offset, body_end) */
	unsigned int header_count;
	uint64_t nul_count;

	/* Content-Type (RFC 2045 5), lower-cased. Absent or invalid gives
	   text/plain (RFC 2045 5.2), or message/rfc822 inside
	   multipart/digest (RFC 2046 5.1.5). */
	const char *type, *subtype;
	struct mime_param *params;
	unsigned int param_count;
	bool content_type_given; /* a valid Content-Type was present */
	/* type, subtype, encoding and disposition as written (Dovecot shows
	   them so in BODYSTRUCTURE); the defaults are lower-case. */
	const char *type_raw, *subtype_raw, *encoding_raw, *disposition_raw;

	/* Raw values (unfolded, NUL -> U+FFFD), NULL when absent. encoding is
	   the lower-cased token; disposition the lower-cased type. */
	const char *encoding, *id, *description, *md5;
	const char *disposition, *language, *location;
	struct mime_param *disp_params;
	unsigned int disp_param_count;

	/* For the message itself and the child of a message/rfc822 part. */
	struct mime_envelope *envelope;
};

struct mime_result {
	struct mime_part *root;
	uint64_t size; /* octets fed */
	uint64_t lines; /* LF count */
	unsigned int part_count;
	enum mime_part_flags flags; /* union of every part's flags */
};

/* Fills limits with the defaults. */
void mime_limits_default(struct mime_limits *limits_r);

/* Creates a parser whose parts are allocated from pool (which must outlive
   the result). limits NULL means the defaults; zero fields are defaults. */
struct mime_parser *mime_parser_create(pool_t pool,
				       const struct mime_limits *limits);
/* Feeds the next size bytes of the message. Never fails. */
void mime_parser_feed(struct mime_parser *parser, const void *data,
		      size_t size);
/* Ends the input, fills result_r, and frees the parser (*parser = NULL).
   The tree in result_r lives in the pool given at creation. */
void mime_parser_finish(struct mime_parser **parser,
			struct mime_result *result_r);
/* Frees a parser without a result (tolerates NULL). */
void mime_parser_destroy(struct mime_parser **parser);

/* Parses a whole message in one call. */
void mime_parse(pool_t pool, const struct mime_limits *limits, const void *data,
		size_t size, struct mime_result *result_r);

/* Returns the part at an IMAP section number path such as "1.2" (RFC 9051
   6.4.5), or NULL. "" returns root. For a message/rfc822 part, the
   numbers address the parts of the embedded message. */
struct mime_part *mime_part_find(struct mime_part *root, const char *section);

#endif
