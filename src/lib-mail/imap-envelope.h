#ifndef MARMOT_IMAP_ENVELOPE_H
#define MARMOT_IMAP_ENVELOPE_H
/* IMAP ENVELOPE and BODYSTRUCTURE / BODY strings (RFC 9051 7.5.2, same as
   RFC 3501 7.4.2) built from a parsed message (mime-parser.h).

   Formatting follows Dovecot so that lib-imap can compare byte for byte:
   - strings are quoted, escaping '"' and '\'; a string holding CR, LF or
     an 8-bit octet is sent as a literal "{n}\r\n..." (RFC 9051 4.3);
     absent values are NIL;
   - ENVELOPE strings are the raw header values (not RFC 2047-decoded);
     Sender and Reply-To default to From (RFC 9051 7.5.2); addresses as
     (name adl mailbox host), groups as (NIL NIL "group" NIL) ...
     (NIL NIL NIL NIL);
   - BODYSTRUCTURE shows media type, subtype, parameter names, transfer
     encoding and disposition type as the message wrote them, as Dovecot
     does (they are case-insensitive, RFC 2045 5.1), keeps values as sent,
     adds ("charset" "us-ascii") to text parts without a plain charset
     parameter, writes "7bit" when no encoding was given, the body size in
     octets, the line count for text and message/rfc822 parts, and the
     extension data: MD5, disposition, language list, location;
   - RFC 2231 parameters appear joined but undecoded, named "name*" when
     extended (as Dovecot shows them);
   - a multipart with no parts (no boundary, depth or part limit) gets one
     empty text/plain part (with NIL extension data), and a message/rfc822
     part that was not parsed is shown as application/octet-stream,
     keeping the grammar valid.
   tests/integration/test_imap_dovecot.py compares all of this with
   Dovecot's answers for tests/mime-corpus and lists where and why the two
   differ.
   Each writer appends one complete parenthesised item to dest. */

#include "lib.h"
#include "buf.h"
#include "mime-parser.h"

/* Appends s as an IMAP nstring: NIL for NULL, else quoted or literal. */
void imap_envelope_append_nstring(struct buf *dest, const char *s);

/* Appends the ENVELOPE of a message, "(" ... ")". env NULL gives the
   all-NIL envelope. */
void imap_envelope_write(struct buf *dest, const struct mime_envelope *env);

/* Appends the BODYSTRUCTURE (extended = true) or BODY (extended = false)
   of part and its children, "(" ... ")". */
void imap_bodystructure_write(struct buf *dest, const struct mime_part *part,
			      bool extended);

#endif
