#ifndef MARMOT_IMAP_WRITE_H
#define MARMOT_IMAP_WRITE_H
/* The IMAP server's response writer (RFC 9051 7, 9): helpers that append
   strings in the right form (atom, quoted or literal), NIL, argument
   trees, mailbox names in modified UTF-7 (RFC 3501 5.1.3) or UTF-8 (RFC
   6855 3), and status responses with response codes, to a struct buf that
   the front then sends. I/O-free. Strings may come from messages and
   other users, so every choice of form is made from the bytes themselves:
   nothing a string holds can end a line or a token early. */

#include "lib.h"
#include "span.h"

struct buf;
struct pool;
struct imap_arg;
struct imap_parser_error;

enum imap_write_flags {
	/* The client enabled UTF8=ACCEPT or IMAP4rev2: well-formed UTF-8
	   may go into quoted strings (RFC 6855 3, RFC 9051 9 QUOTED-CHAR)
	   and mailbox names are sent as UTF-8. */
	IMAP_WRITE_FLAG_UTF8 = 1u << 0,
};

enum imap_status {
	IMAP_STATUS_OK,
	IMAP_STATUS_NO,
	IMAP_STATUS_BAD,
	IMAP_STATUS_PREAUTH,
	IMAP_STATUS_BYE,
};

/* RFC 9051 9 string: quoted (with "\" escapes for '"' and '\') when every
   octet may appear in a quoted string, else a synchronising literal
   {N} (a server never sends {N+}, RFC 7888 3). CR, LF, NUL, 8-bit
   octets (unless flags allow UTF-8 and it is well-formed) and more than
   four quotes or backslashes force the literal. NUL is not valid in a literal
   either (RFC 9051 9 CHAR8): callers with binary data use
   imap_write_literal8(). */
void imap_write_string(struct buf *out, struct span s, unsigned int flags);
/* RFC 9051 9 astring: an atom when s is 1*ASTRING-CHAR without "[" and
   not "NIL", otherwise as imap_write_string(). */
void imap_write_astring(struct buf *out, struct span s, unsigned int flags);
/* RFC 9051 9 nstring: NIL for str == NULL, else a string. */
void imap_write_nstring(struct buf *out, const char *str, unsigned int flags);
void imap_write_nil(struct buf *out);
/* "{N}\r\n" and the octets. */
void imap_write_literal(struct buf *out, struct span s);
/* RFC 3516 4.2 literal8: "~{N}\r\n" and the octets (NUL allowed). */
void imap_write_literal8(struct buf *out, struct span s);

/* Writes "(" atoms separated by SP ")": flags, mailbox attributes,
   capabilities. An entry that is not an RFC 9051 9 atom, optionally after
   one "\" (flag-extension), or "\*" (flag-perm), cannot be sent in this
   form (a keyword set through another protocol, say) and is left out;
   returns how many were. */
unsigned int imap_write_atom_list(struct buf *out, const char *const *atoms,
				  unsigned int count);
/* True if s can be written by imap_write_atom_list(). */
bool imap_write_atom_valid(struct span s);

/* Writes an argument tree, separated by SP, lists in parentheses: atoms
   as they are, strings via imap_write_string() (literal8 as literal8). */
void imap_write_args(struct buf *out, const struct imap_arg *args,
		     unsigned int count, unsigned int flags);

/* Writes a mailbox name (UTF-8, as the store holds it) as an astring:
   UTF-8 with IMAP_WRITE_FLAG_UTF8 (RFC 6855 3), else modified UTF-7
   (RFC 3501 5.1.3, via lib-mail's imap_utf8_to_utf7). Returns 0, or -1
   (nothing written) if name is not valid UTF-8. */
int imap_write_mailbox(struct buf *out, struct pool *pool, const char *name,
		       unsigned int flags);

/* A status response (RFC 9051 7.1): "TAG STATUS [CODE] text\r\n", or
   "* STATUS ..." when tag is NULL. code is without brackets ("TOOBIG",
   "UIDNEXT 4392") or NULL. CR, LF and other controls in code and text
   become spaces and 8-bit octets '?', so text may hold anything. An empty
   text is sent as the status name (resp-text needs text, RFC 3501 9). */
void imap_write_status(struct buf *out, const char *tag,
		       enum imap_status status, const char *code,
		       const char *text);
void imap_write_statusf(struct buf *out, const char *tag,
			enum imap_status status, const char *code,
			const char *fmt, ...) ATTR_FORMAT(5, 6);
/* A command continuation request (RFC 9051 7.6): "+ text\r\n". */
void imap_write_continue(struct buf *out, const char *text);
/* The answer to an imap-parser error: a tagged (or untagged) BAD/NO with
   the error's code, and for a fatal error an untagged BYE after it. */
void imap_write_parser_error(struct buf *out,
			     const struct imap_parser_error *error);

#endif
