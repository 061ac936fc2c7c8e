/* auth-header.c - iteration over the header fields of a raw message
   (auth-header.h). */

#include "auth-header.h"

void auth_header_iter_init(struct auth_header_iter *iter, const uint8_t *msg,
			   size_t len)
{
	iter->rest = span_make(msg, len);
	iter->done = false;
}

/* The length of the line at p (line end included). */
static size_t line_length(struct span s)
{
	ssize_t lf = span_find_byte(s, '\n');

	return lf < 0 ? s.len : (size_t)lf + 1;
}

static bool line_is_empty(struct span s)
{
	return (s.len >= 1 && s.p[0] == '\n') ||
	       (s.len >= 2 && s.p[0] == '\r' && s.p[1] == '\n');
}

bool auth_header_iter_next(struct auth_header_iter *iter,
			   struct auth_header_field *field_r)
{
	struct span s = iter->rest;
	size_t len, i, name_end, value_end;

	if (iter->done || s.len == 0 || line_is_empty(s)) {
		iter->done = true;
		return false;
	}
	/* RFC 5322 2.2.3: a field continues on lines that start with WSP. */
	len = line_length(s);
	while (len < s.len && (s.p[len] == ' ' || s.p[len] == '\t'))
		len += line_length(span_skip(s, len));
	field_r->raw = span_make(s.p, len);

	value_end = len;
	if (value_end > 0 && s.p[value_end - 1] == '\n')
		value_end--;
	if (value_end > 0 && s.p[value_end - 1] == '\r')
		value_end--;

	/* RFC 5322 2.2: ftext is printable US-ASCII except colon. */
	for (i = 0; i < value_end; i++) {
		if (s.p[i] == ':' || s.p[i] <= 32 || s.p[i] >= 127)
			break;
	}
	name_end = i;
	/* RFC 5322 4.5.8: obsolete white space before the colon. */
	while (i < value_end && (s.p[i] == ' ' || s.p[i] == '\t'))
		i++;
	if (name_end == 0 || i >= value_end || s.p[i] != ':') {
		field_r->name = span_make(s.p, 0);
		field_r->value = span_make(s.p, value_end);
	} else {
		field_r->name = span_make(s.p, name_end);
		field_r->value = span_make(s.p + i + 1, value_end - i - 1);
	}
	iter->rest = span_skip(s, len);
	return true;
}

size_t auth_header_iter_offset(const struct auth_header_iter *iter,
			       const uint8_t *msg)
{
	return (size_t)(iter->rest.p - msg);
}
