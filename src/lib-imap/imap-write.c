/* imap-write.c - the IMAP response writer: string forms, argument trees,
   mailbox names and status responses. See imap-write.h. */

#include "imap-write.h"

#include "buf.h"
#include "charset.h"
#include "imap-parser.h"
#include "maildir.h"
#include "pool.h"

#include <stdio.h>

/* RFC 9051 9: ASTRING-CHAR = ATOM-CHAR / resp-specials; ATOM-CHAR is any
   CHAR except atom-specials ("(" ")" "{" SP CTL list-wildcards
   quoted-specials resp-specials). */
static bool imap_is_astring_char(uint8_t c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("(){%*\"\\", c) == NULL;
}

/* RFC 9051 9 QUOTED-CHAR (and RFC 6855 3 for UTF-8). A string with more
   than a few '"' or '\\' goes as a literal all the same, as Dovecot does:
   it is no longer, and a client's unescaping is not relied on. */
#define IMAP_QUOTED_MAX_ESCAPES 4

static bool imap_quoted_ok(struct span s, unsigned int flags)
{
	unsigned int escapes = 0;
	bool eight_bit = false;

	for (size_t i = 0; i < s.len; i++) {
		uint8_t c = s.p[i];

		if (c == '\0' || c == '\r' || c == '\n')
			return false;
		if ((c == '"' || c == '\\') &&
		    ++escapes > IMAP_QUOTED_MAX_ESCAPES)
			return false;
		if (c >= 0x80)
			eight_bit = true;
	}
	if (!eight_bit)
		return true;
	return (flags & IMAP_WRITE_FLAG_UTF8) != 0 && charset_utf8_is_valid(s);
}

void imap_write_literal(struct buf *out, struct span s)
{
	buf_printf(out, "{%zu}\r\n", s.len);
	buf_append_span(out, s);
}

void imap_write_literal8(struct buf *out, struct span s)
{
	buf_printf(out, "~{%zu}\r\n", s.len);
	buf_append_span(out, s);
}

void imap_write_string(struct buf *out, struct span s, unsigned int flags)
{
	if (!imap_quoted_ok(s, flags)) {
		imap_write_literal(out, s);
		return;
	}
	buf_append_c(out, '"');
	for (size_t i = 0; i < s.len; i++) {
		/* RFC 9051 9 QUOTED-CHAR: "\" quoted-specials. */
		if (s.p[i] == '"' || s.p[i] == '\\')
			buf_append_c(out, '\\');
		buf_append_c(out, s.p[i]);
	}
	buf_append_c(out, '"');
}

void imap_write_astring(struct buf *out, struct span s, unsigned int flags)
{
	bool atom = s.len > 0 && !span_eq_ci(s, SPAN_LIT("NIL"));

	/* "[" is an ASTRING-CHAR, but "BODY[x" as an atom would start a
	   FETCH section for our parser (imap-parser.c), and quoting costs
	   nothing. */
	for (size_t i = 0; atom && i < s.len; i++)
		atom = imap_is_astring_char(s.p[i]) && s.p[i] != '[';
	if (atom)
		buf_append_span(out, s);
	else
		imap_write_string(out, s, flags);
}

void imap_write_nil(struct buf *out)
{
	buf_append_str(out, "NIL");
}

void imap_write_nstring(struct buf *out, const char *str, unsigned int flags)
{
	if (str == NULL)
		imap_write_nil(out);
	else
		imap_write_string(out, span_from_cstr(str), flags);
}

/* RFC 9051 9 ATOM-CHAR: any CHAR except atom-specials. */
static bool imap_is_atom_char(uint8_t c)
{
	return imap_is_astring_char(c) && c != ']';
}

bool imap_write_atom_valid(struct span s)
{
	/* RFC 9051 9 flag-perm: "\*". */
	if (span_eq(s, SPAN_LIT("\\*")))
		return true;
	/* RFC 9051 9 flag-extension = "\" atom. */
	if (s.len > 0 && s.p[0] == '\\')
		s = span_skip(s, 1);
	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		if (!imap_is_atom_char(s.p[i]))
			return false;
	}
	return true;
}

unsigned int imap_write_atom_list(struct buf *out, const char *const *atoms,
				  unsigned int count)
{
	unsigned int skipped = 0;
	bool first = true;

	buf_append_c(out, '(');
	for (unsigned int i = 0; i < count; i++) {
		struct span s = span_from_cstr(atoms[i]);

		if (!imap_write_atom_valid(s)) {
			skipped++;
			continue;
		}
		if (!first)
			buf_append_c(out, ' ');
		buf_append_span(out, s);
		first = false;
	}
	buf_append_c(out, ')');
	return skipped;
}

void imap_write_args(struct buf *out, const struct imap_arg *args,
		     unsigned int count, unsigned int flags)
{
	for (unsigned int i = 0; i < count; i++) {
		const struct imap_arg *arg = &args[i];
		struct span s = span_make(arg->str, arg->len);

		if (i > 0)
			buf_append_c(out, ' ');
		switch (arg->type) {
		case IMAP_ARG_ATOM:
		case IMAP_ARG_NIL:
			buf_append_span(out, s);
			break;
		case IMAP_ARG_QUOTED:
			imap_write_string(out, s, flags);
			break;
		case IMAP_ARG_LITERAL:
			if (arg->literal8)
				imap_write_literal8(out, s);
			else
				imap_write_string(out, s, flags);
			break;
		case IMAP_ARG_LIST:
			buf_append_c(out, '(');
			imap_write_args(out, arg->list, arg->list_count, flags);
			buf_append_c(out, ')');
			break;
		}
	}
}

int imap_write_mailbox(struct buf *out, struct pool *pool, const char *name,
		       unsigned int flags)
{
	const char *wire;

	if ((flags & IMAP_WRITE_FLAG_UTF8) != 0) {
		/* RFC 6855 3: UTF-8 names, no modified UTF-7. */
		if (!charset_utf8_is_valid(span_from_cstr(name)))
			return -1;
		wire = name;
	} else {
		/* RFC 3501 5.1.3: modified UTF-7 for non-ASCII and "&". */
		wire = imap_utf8_to_utf7(pool, name);
		if (wire == NULL)
			return -1;
	}
	imap_write_astring(out, span_from_cstr(wire), flags);
	return 0;
}

/* RFC 9051 9 text: TEXT-CHAR, no CR or LF; we keep it printable ASCII.
   In a response code, "]" would end the code early and is replaced too. */
static void imap_write_text(struct buf *out, const char *text, bool code)
{
	for (const uint8_t *p = (const uint8_t *)text; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f || (code && *p == ']'))
			buf_append_c(out, ' ');
		else if (*p >= 0x80)
			buf_append_c(out, '?');
		else
			buf_append_c(out, *p);
	}
}

static const char *const imap_status_names[] = {
	[IMAP_STATUS_OK] = "OK",   [IMAP_STATUS_NO] = "NO",
	[IMAP_STATUS_BAD] = "BAD", [IMAP_STATUS_PREAUTH] = "PREAUTH",
	[IMAP_STATUS_BYE] = "BYE",
};

void imap_write_status(struct buf *out, const char *tag,
		       enum imap_status status, const char *code,
		       const char *text)
{
	i_assert((unsigned int)status < N_ELEMENTS(imap_status_names));
	/* RFC 9051 7.1: PREAUTH and BYE are untagged only. */
	i_assert(tag == NULL ||
		 (status != IMAP_STATUS_PREAUTH && status != IMAP_STATUS_BYE));
	buf_append_str(out, tag == NULL ? "*" : tag);
	buf_append_c(out, ' ');
	buf_append_str(out, imap_status_names[status]);
	buf_append_c(out, ' ');
	/* RFC 9051 7.1 resp-text = ["[" resp-text-code "]" SP] [text] */
	if (code != NULL && *code != '\0') {
		buf_append_c(out, '[');
		imap_write_text(out, code, true);
		buf_append_str(out, "] ");
	}
	if (text == NULL || *text == '\0')
		text = imap_status_names[status];
	/* Without a code, text must not start with "[" (it would read as
	   one, RFC 9051 7.1). */
	if ((code == NULL || *code == '\0') && text[0] == '[')
		buf_append_c(out, ' ');
	imap_write_text(out, text, false);
	buf_append_str(out, "\r\n");
}

void imap_write_statusf(struct buf *out, const char *tag,
			enum imap_status status, const char *code,
			const char *fmt, ...)
{
	va_list args;
	size_t len;
	char *text;

	va_start(args, fmt);
	len = i_vformat_len(fmt, args);
	text = i_malloc(len + 1);
	vsnprintf(text, len + 1, fmt, args);
	va_end(args);
	imap_write_status(out, tag, status, code, text);
	i_free(text);
}

void imap_write_continue(struct buf *out, const char *text)
{
	buf_append_str(out, "+ ");
	imap_write_text(out, text == NULL || *text == '\0' ? "OK" : text,
			false);
	buf_append_str(out, "\r\n");
}

void imap_write_parser_error(struct buf *out,
			     const struct imap_parser_error *error)
{
	enum imap_status status = strcmp(error->status, "NO") == 0
					  ? IMAP_STATUS_NO
					  : IMAP_STATUS_BAD;

	imap_write_status(out, error->tag, status, error->code, error->msg);
	if (error->fatal)
		imap_write_status(out, NULL, IMAP_STATUS_BYE, error->code,
				  error->msg);
}
