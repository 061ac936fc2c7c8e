#ifndef MARMOT_IMAP_SEARCH_H
#define MARMOT_IMAP_SEARCH_H
/* The SEARCH command's arguments (RFC 9051 6.4.4, RFC 3501 6.4.4) parsed
   into a tree of keys, I/O-free: the RETURN options (RFC 9051 6.4.4.1,
   RFC 4731 ESEARCH, RFC 5182 SEARCHRES), CHARSET, and every search key of
   RFC 9051 and RFC 3501 plus MODSEQ (RFC 7162 3.1.5), EMAILID and
   THREADID (RFC 8474 5), SAVEDBEFORE/SAVEDON/SAVEDSINCE and
   SAVEDATESUPPORTED (RFC 8514 4), OLDER and YOUNGER (RFC 5032 WITHIN).
   The evaluator (src/front/imap-cmd-search.c) walks the tree.

   Normalised on the way: UNSEEN is NOT SEEN (and so on for every UN-
   key), NEW is RECENT AND UNSEEN, OLD is NOT RECENT, a parenthesised list
   and the top-level program are AND nodes. Strings are checked to be
   valid UTF-8 (CHARSET UTF-8 or none) or ASCII (CHARSET US-ASCII).

   Security stance: the arguments come from an authenticated but untrusted
   client. Tree depth (NOT NOT ... and OR nesting as well as lists) and the
   number of keys are bounded (IMAP_SEARCH_MAX_DEPTH, _MAX_KEYS), and so
   is the number of keys that cost a full-text query or a message read
   (IMAP_SEARCH_MAX_COSTLY): a program is at most a few hundred queries. */

#include "lib.h"
#include "imap-parser.h"
#include "imap-seqset.h"

struct pool;

#define IMAP_SEARCH_MAX_DEPTH 32
#define IMAP_SEARCH_MAX_KEYS 1000
/* Text, HEADER and SENT* keys: each is one index query or reads message
   headers. */
#define IMAP_SEARCH_MAX_COSTLY 64
/* RFC 8474 5 objectid: 1*255(ALPHA / DIGIT / "_" / "-"). */
#define IMAP_SEARCH_OBJECTID_MAX 255

enum imap_search_key_type {
	IMAP_SEARCH_ALL = 1,
	IMAP_SEARCH_AND, /* children */
	IMAP_SEARCH_OR, /* two children */
	IMAP_SEARCH_NOT, /* one child */
	IMAP_SEARCH_SEQSET, /* seqset: message sequence numbers */
	IMAP_SEARCH_UIDSET, /* seqset: UIDs (UID key) */
	IMAP_SEARCH_FLAG, /* flag: one enum imap_search_flag bit */
	IMAP_SEARCH_RECENT, /* never set: \Recent is not kept */
	IMAP_SEARCH_KEYWORD, /* str */
	IMAP_SEARCH_LARGER, /* number */
	IMAP_SEARCH_SMALLER, /* number */
	IMAP_SEARCH_DATE, /* date_field, date_op, day */
	IMAP_SEARCH_OLDER, /* number: seconds (RFC 5032) */
	IMAP_SEARCH_YOUNGER, /* number: seconds */
	IMAP_SEARCH_TEXT, /* text_field, str (substring) */
	IMAP_SEARCH_HEADER, /* header, str (substring, "" = present) */
	IMAP_SEARCH_MODSEQ, /* number */
	IMAP_SEARCH_EMAILID, /* str */
	IMAP_SEARCH_THREADID, /* str */
};

/* The system flags, the same bits as store.h's enum store_flag. */
enum imap_search_flag {
	IMAP_SEARCH_FLAG_SEEN = 0x01,
	IMAP_SEARCH_FLAG_ANSWERED = 0x02,
	IMAP_SEARCH_FLAG_FLAGGED = 0x04,
	IMAP_SEARCH_FLAG_DELETED = 0x08,
	IMAP_SEARCH_FLAG_DRAFT = 0x10,
};

enum imap_search_date_field {
	IMAP_SEARCH_DATE_INTERNAL, /* BEFORE ON SINCE */
	IMAP_SEARCH_DATE_SENT, /* SENTBEFORE SENTON SENTSINCE: Date: */
	IMAP_SEARCH_DATE_SAVED, /* SAVEDBEFORE SAVEDON SAVEDSINCE */
};

enum imap_search_date_op {
	IMAP_SEARCH_DATE_BEFORE, /* day < key */
	IMAP_SEARCH_DATE_ON, /* day == key */
	IMAP_SEARCH_DATE_SINCE, /* day >= key */
};

/* The fields of the full-text index (the same order as store.h's enum
   store_search_field). */
enum imap_search_text_field {
	IMAP_SEARCH_TEXT_TEXT,
	IMAP_SEARCH_TEXT_BODY,
	IMAP_SEARCH_TEXT_FROM,
	IMAP_SEARCH_TEXT_TO,
	IMAP_SEARCH_TEXT_CC,
	IMAP_SEARCH_TEXT_BCC,
	IMAP_SEARCH_TEXT_SUBJECT,
};

struct imap_search_key {
	enum imap_search_key_type type;
	/* Children of AND (any number), OR (two) and NOT (one). */
	struct imap_search_key *child, *next;
	struct imap_seqset seqset;
	uint32_t flag;
	uint64_t number;
	enum imap_search_date_field date_field;
	enum imap_search_date_op date_op;
	/* The date as days since 1970-01-01. */
	int64_t day;
	enum imap_search_text_field text_field;
	/* HEADER: the field name as sent. */
	const char *header;
	/* The string argument, NUL-terminated UTF-8. */
	const char *str;
};

enum imap_search_return {
	IMAP_SEARCH_RETURN_MIN = 1u << 0,
	IMAP_SEARCH_RETURN_MAX = 1u << 1,
	IMAP_SEARCH_RETURN_ALL = 1u << 2,
	IMAP_SEARCH_RETURN_COUNT = 1u << 3,
	IMAP_SEARCH_RETURN_SAVE = 1u << 4,
};

struct imap_search_program {
	/* RETURN (...) was given: answer with ESEARCH (RFC 4731 3.1).
	   "RETURN ()" means ALL. */
	bool esearch;
	unsigned int returns; /* enum imap_search_return */
	/* The top-level AND node. */
	struct imap_search_key *root;
	/* Some key is MODSEQ: the answer carries the highest MODSEQ (RFC
	   7162 3.1.5). */
	bool modseq;
	/* Some key uses "$" (RFC 5182 2.1). */
	bool uses_searchres;
	/* Keys that need the message rows (flags, sizes, dates...), the
	   full-text index, the message headers, or the Date: header. */
	bool need_rows, need_text, need_headers, need_sent;
	unsigned int key_count;
};

enum imap_search_result {
	IMAP_SEARCH_OK = 0,
	/* Syntax: tagged BAD with *error_r. */
	IMAP_SEARCH_BAD = -1,
	/* CHARSET other than UTF-8 or US-ASCII: tagged NO [BADCHARSET
	   (UTF-8 US-ASCII)] (RFC 9051 6.4.4, 7.1). */
	IMAP_SEARCH_BADCHARSET = -2,
};

/* The response code for IMAP_SEARCH_BADCHARSET, without brackets. */
#define IMAP_SEARCH_BADCHARSET_CODE "BADCHARSET (UTF-8 US-ASCII)"

/* Parses the SEARCH arguments (everything after "SEARCH"). With a RETURN
   option SAVE the program's returns say so even when parsing failed
   later (RFC 5182 2.1: a failed SEARCH ... SAVE empties "$"), so *prog_r
   is always filled in. Everything is allocated from pool. */
enum imap_search_result imap_search_parse(struct pool *pool,
					  const struct imap_arg *args,
					  unsigned int count,
					  struct imap_search_program *prog_r,
					  const char **error_r);

/* RFC 9051 9 date-text "1-Feb-2024" (also in quotes, as the caller gave
   the unquoted string): days since 1970-01-01. Returns false on a
   malformed or impossible date. */
bool imap_search_parse_date(const char *str, int64_t *day_r);

/* Writes the tree as S-expressions, e.g. "(AND (FLAG 1) (NOT (TEXT 0
   \"x\")))", for tests and the fuzz target. */
struct buf;
void imap_search_dump(struct buf *out, const struct imap_search_key *key);

#endif
