/* message-lex.c - lexical scanning of structured header fields for the MIME
   and address parsers. Stateless; owns nothing. Input is untrusted header
   bytes: every loop is bounded by the span, and comment nesting is counted
   rather than recursed into. */

#include "message-lex.h"

/* RFC 5322 3.2.2: comments nest and may contain quoted-pairs. */
bool message_lex_comment(struct span *s, struct buf *text)
{
	size_t i = 1, depth = 1;

	if (s->len == 0 || s->p[0] != '(')
		return false;
	while (i < s->len && depth > 0) {
		uint8_t c = s->p[i++];

		if (c == '\\' && i < s->len) {
			c = s->p[i++];
		} else if (c == '(') {
			depth++;
		} else if (c == ')') {
			if (--depth == 0)
				break;
		}
		if (text != NULL && c != '\r' && c != '\n')
			buf_append_c(text, c);
	}
	*s = span_skip(*s, i);
	return true;
}

void message_lex_skip_cfws(struct span *s)
{
	while (s->len > 0) {
		uint8_t c = s->p[0];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			*s = span_skip(*s, 1);
		else if (c == '(')
			message_lex_comment(s, NULL);
		else
			break;
	}
}

/* RFC 5322 3.2.4: quoted-string with quoted-pairs; CR and LF are folding
   and dropped. */
bool message_lex_quoted(struct span *s, struct buf *out)
{
	size_t i = 1;

	if (s->len == 0 || s->p[0] != '"')
		return false;
	while (i < s->len) {
		uint8_t c = s->p[i++];

		if (c == '"')
			break;
		if (c == '\\' && i < s->len)
			c = s->p[i++];
		else if (c == '\r' || c == '\n')
			continue;
		buf_append_c(out, c);
	}
	*s = span_skip(*s, i);
	return true;
}

/* RFC 2045 5.1: token := 1*<any (US-ASCII) CHAR except SPACE, CTLs, or
   tspecials>. 8-bit bytes are accepted (RFC 6532). */
static bool is_token_char(uint8_t c)
{
	if (c <= ' ' || c == 0x7f)
		return false;
	return strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

bool message_lex_token(struct span *s, struct span *token_r)
{
	size_t i = 0;

	while (i < s->len && is_token_char(s->p[i]))
		i++;
	if (i == 0)
		return false;
	*token_r = span_make(s->p, i);
	*s = span_skip(*s, i);
	return true;
}

bool message_lex_is_atext(uint8_t c)
{
	if (c >= 0x80)
		return true;
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

bool message_lex_atom(struct span *s, struct span *atom_r)
{
	size_t i = 0;

	while (i < s->len && message_lex_is_atext(s->p[i]))
		i++;
	if (i == 0)
		return false;
	*atom_r = span_make(s->p, i);
	*s = span_skip(*s, i);
	return true;
}

char *message_lex_strdup(pool_t pool, struct span s)
{
	static const char replacement[] = "\xef\xbf\xbd";
	size_t nuls = 0, j = 0;
	char *str;

	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] == '\0')
			nuls++;
	}
	if (nuls == 0)
		return p_strndup(pool, s.p, s.len);
	str = p_malloc(pool, s.len + nuls * 2 + 1);
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] == '\0') {
			memcpy(str + j, replacement, 3);
			j += 3;
		} else {
			str[j++] = (char)s.p[i];
		}
	}
	str[j] = '\0';
	return str;
}
