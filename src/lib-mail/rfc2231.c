/* rfc2231.c - MIME parameter parser with RFC 2231 continuations and
   charset/language decoding. Works in two passes over a bounded table of
   raw sections, then assembles each parameter into pool memory. Called by
   mime-parser.c; input is untrusted header text. */

#include "rfc2231.h"
#include "buf.h"
#include "charset.h"
#include "message-lex.h"
#include "rfc2047.h"

#include <strings.h>

struct raw_section {
	struct span name;
	unsigned int section; /* UINT_MAX when not sectioned */
	bool extended; /* "*" after the name or section */
	bool used;
	struct buf value; /* unquoted */
};

#define NO_SECTION ((unsigned int)-1)

/* RFC 2231 3/4: attribute [ "*" section ] [ "*" ] */
static void split_name(struct span name, struct raw_section *sec)
{
	sec->section = NO_SECTION;
	sec->extended = false;
	if (name.len > 0 && name.p[name.len - 1] == '*') {
		sec->extended = true;
		name.len--;
	}
	for (size_t i = 0; i < name.len; i++) {
		uint64_t num;

		if (name.p[i] != '*')
			continue;
		if (span_to_u64(span_make(name.p + i + 1, name.len - i - 1),
				RFC2231_MAX_SECTIONS, &num) == 0) {
			sec->section = (unsigned int)num;
			name.len = i;
		}
		break;
	}
	sec->name = name;
}

static bool is_attr_char(uint8_t c)
{
	/* RFC 2231 7: attribute-char excludes "*", "'", "%" and tspecials. */
	if (c <= ' ' || c >= 0x7f)
		return false;
	return strchr("*'%()<>@,;:\\\"/[]?=", c) == NULL;
}

/* RFC 2231 4: extended-other-values are %XX-escaped octets. */
static void percent_decode(struct buf *out, struct span s)
{
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] == '%' && i + 2 < s.len &&
		    hex_digit_value(s.p[i + 1]) >= 0 &&
		    hex_digit_value(s.p[i + 2]) >= 0) {
			buf_append_c(
				out,
				(uint8_t)(hex_digit_value(s.p[i + 1]) * 16 +
					  hex_digit_value(s.p[i + 2])));
			i += 2;
		} else {
			buf_append_c(out, s.p[i]);
		}
	}
}

static void percent_encode(struct buf *out, struct span s)
{
	for (size_t i = 0; i < s.len; i++) {
		if (is_attr_char(s.p[i]))
			buf_append_c(out, s.p[i]);
		else
			buf_printf(out, "%%%02X", s.p[i]);
	}
}

static unsigned int parse_sections(struct span s, struct raw_section *secs)
{
	unsigned int count = 0;

	while (s.len > 0) {
		struct span name, tok;
		struct raw_section *sec;

		/* Skip to the next ';' (lenient about junk before it). */
		while (s.len > 0 && s.p[0] != ';') {
			if (s.p[0] == '"') {
				struct buf junk = BUF_INIT;

				message_lex_quoted(&s, &junk);
				buf_free(&junk);
			} else if (s.p[0] == '(') {
				message_lex_comment(&s, NULL);
			} else {
				s = span_skip(s, 1);
			}
		}
		if (s.len == 0)
			break;
		s = span_skip(s, 1);
		message_lex_skip_cfws(&s);
		if (!message_lex_token(&s, &name))
			continue;
		message_lex_skip_cfws(&s);
		if (s.len == 0 || s.p[0] != '=')
			continue;
		s = span_skip(s, 1);
		message_lex_skip_cfws(&s);
		if (count == RFC2231_MAX_PARAMS)
			break;
		sec = &secs[count];
		memset(sec, 0, sizeof(*sec));
		split_name(name, sec);
		if (sec->name.len == 0)
			continue;
		if (s.len > 0 && s.p[0] == '"') {
			message_lex_quoted(&s, &sec->value);
		} else if (message_lex_token(&s, &tok)) {
			buf_append_span(&sec->value, tok);
		} else {
			buf_free(&sec->value);
			continue;
		}
		count++;
	}
	return count;
}

static bool same_param(const struct raw_section *a, const struct raw_section *b)
{
	return span_eq_ci(a->name, b->name) &&
	       (a->section == NO_SECTION) == (b->section == NO_SECTION) &&
	       (a->section != NO_SECTION || a->extended == b->extended);
}

static char *lower_name(pool_t pool, struct span name)
{
	char *str = p_strndup(pool, name.p, name.len);

	for (size_t i = 0; str[i] != '\0'; i++) {
		if (str[i] >= 'A' && str[i] <= 'Z')
			str[i] = (char)(str[i] + 32);
	}
	return str;
}

static void assemble(pool_t pool, struct raw_section *secs, unsigned int count,
		     unsigned int first, struct mime_param *param)
{
	struct raw_section *head = &secs[first];
	struct buf raw = BUF_INIT, bytes = BUF_INIT, out = BUF_INIT;
	bool extended;

	param->name = lower_name(pool, head->name);
	param->name_raw = message_lex_strdup(pool, head->name);
	if (head->section == NO_SECTION) {
		head->used = true;
		extended = head->extended;
		buf_append_span(&raw, buf_span(&head->value));
		if (extended) {
			percent_decode(&bytes, buf_span(&head->value));
		}
	} else {
		/* RFC 2231 3: sections are joined in numeric order starting
		   at 0; a gap ends the value. The first section decides
		   whether it is extended. */
		unsigned int want = 0;
		bool found = true;

		extended = false;
		while (found && want < RFC2231_MAX_SECTIONS) {
			found = false;
			for (unsigned int i = first; i < count; i++) {
				struct raw_section *sec = &secs[i];

				if (sec->used || sec->section != want ||
				    !same_param(sec, head))
					continue;
				sec->used = true;
				found = true;
				if (want == 0)
					extended = sec->extended;
				if (!extended) {
					buf_append_span(&raw,
							buf_span(&sec->value));
				} else if (sec->extended) {
					buf_append_span(&raw,
							buf_span(&sec->value));
					percent_decode(&bytes,
						       buf_span(&sec->value));
				} else {
					percent_encode(&raw,
						       buf_span(&sec->value));
					buf_append_span(&bytes,
							buf_span(&sec->value));
				}
				break;
			}
			want++;
		}
		/* Mark stray sections (after a gap, duplicates) as used so
		   they do not become parameters of their own. */
		for (unsigned int i = first; i < count; i++) {
			if (same_param(&secs[i], head))
				secs[i].used = true;
		}
	}
	param->extended = extended;
	param->raw_value = message_lex_strdup(pool, buf_span(&raw));
	if (extended) {
		/* RFC 2231 4: charset'language'value; the quotes are in
		   section 0 only. */
		struct span b = buf_span(&bytes), cs = SPAN_EMPTY,
			    lang = SPAN_EMPTY;
		ssize_t q1 = span_find_byte(b, '\''), q2;

		if (q1 >= 0) {
			cs = span_make(b.p, (size_t)q1);
			b = span_skip(b, (size_t)q1 + 1);
			q2 = span_find_byte(b, '\'');
			if (q2 >= 0) {
				lang = span_make(b.p, (size_t)q2);
				b = span_skip(b, (size_t)q2 + 1);
			}
		}
		param->charset =
			cs.len > 0 ? message_lex_strdup(pool, cs) : NULL;
		param->language = message_lex_strdup(pool, lang);
		(void)charset_to_utf8(&out, param->charset, b);
	} else {
		rfc2047_decode(&out, buf_span(&raw));
	}
	param->value = p_strndup(pool, out.data == NULL ? "" : (char *)out.data,
				 out.used);
	buf_free(&raw);
	buf_free(&bytes);
	buf_free(&out);
}

unsigned int rfc2231_parse(pool_t pool, struct span input,
			   struct mime_param **params_r)
{
	struct raw_section *secs;
	struct mime_param *params;
	unsigned int count, n = 0, i;

	secs = i_new(struct raw_section, RFC2231_MAX_PARAMS);
	count = parse_sections(input, secs);
	params = p_new(pool, struct mime_param, count > 0 ? count : 1);
	for (i = 0; i < count; i++) {
		/* A repeated plain parameter is kept as another entry, as
		   Dovecot shows it; lookups take the first. */
		if (secs[i].used)
			continue;
		assemble(pool, secs, count, i, &params[n++]);
	}
	for (i = 0; i < count; i++)
		buf_free(&secs[i].value);
	i_free(secs);
	*params_r = params;
	return n;
}

const char *mime_param_get(const struct mime_param *params, unsigned int count,
			   const char *name)
{
	const char *plain = NULL;

	for (unsigned int i = 0; i < count; i++) {
		if (strcasecmp(params[i].name, name) != 0)
			continue;
		if (params[i].extended)
			return params[i].value;
		if (plain == NULL)
			plain = params[i].value;
	}
	return plain;
}
