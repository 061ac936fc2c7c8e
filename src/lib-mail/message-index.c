/* message-index.c - builds struct message_index (message-index.h) from a
   raw message: parses it with mime-parser.c into a scratch pool, writes
   the IMAP ENVELOPE/BODYSTRUCTURE/BODY strings, decodes headers (RFC
   2047) and text parts (message-decode.c, charset.c, html-text.c), and
   derives the threading ids, the Date, the RFC 5256 base subject, the
   RFC 8970 preview and the attachment names. Owns only the scratch pool
   and temporary bufs of one call; results are copied into the caller's
   pool. Input is untrusted mail: every step is bounded (the parser's
   limits, MESSAGE_INDEX_MAX_TEXT, fixed id and name counts) and nothing
   recurses. Called by the store at append and merge time. */

#include "message-index.h"
#include "buf.h"
#include "charset.h"
#include "html-text.h"
#include "imap-envelope.h"
#include "message-address.h"
#include "message-decode.h"
#include "message-lex.h"
#include "mime-parser.h"
#include "pool.h"
#include "rfc2047.h"
#include "rfc2231.h"

#include <unicode/ucasemap.h>

#define INDEX_MAX_ADDRESSES 1000
#define INDEX_MAX_REFERENCES 256
#define INDEX_MAX_ATTACHMENTS 1000
/* How many raw bytes are decoded per byte of text room: line ends
   shrink when CRs go, charsets change sizes, and HTML holds more markup
   than text. */
#define INDEX_PLAIN_FACTOR 2
#define INDEX_HTML_FACTOR 4

struct index_ctx {
	pool_t pool, scratch;
	const uint8_t *msg;
	size_t len;
	struct buf text;
	bool truncated;
	const char *preview, *preview_fallback;
	const char **names;
	unsigned int name_count;
	bool has_attachment;
};

static bool is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
	       c == '\v';
}

static const char *buf_pool_dup(pool_t pool, const struct buf *b)
{
	return p_strndup(pool, buf_span(b).p, b->used);
}

static bool part_is(const struct mime_part *part, const char *type,
		    const char *subtype)
{
	return part->type != NULL && strcmp(part->type, type) == 0 &&
	       (subtype == NULL ||
		(part->subtype != NULL && strcmp(part->subtype, subtype) == 0));
}

static bool part_is_attachment_disposition(const struct mime_part *part)
{
	return part->disposition != NULL &&
	       strcmp(part->disposition, "attachment") == 0;
}

/* Pre-order successor of part inside the subtree of top; the children of
   a parsed message/rfc822 part are skipped unless into_messages. */
static const struct mime_part *next_part(const struct mime_part *part,
					 const struct mime_part *top,
					 bool into_messages)
{
	if (part->children != NULL &&
	    (into_messages || (part->flags & MIME_PART_FLAG_MESSAGE) == 0))
		return part->children;
	while (part != top && part->next == NULL)
		part = part->parent;
	return part == top ? NULL : part->next;
}

/* Shortens b to at most max bytes without splitting a UTF-8 sequence. */
static void utf8_truncate(struct buf *b, size_t max)
{
	const uint8_t *p = buf_span(b).p;
	size_t cut = max;

	if (b->used <= max)
		return;
	while (cut > 0 && (p[cut] & 0xc0) == 0x80)
		cut--;
	buf_truncate(b, cut);
}

static void trim_trailing_ws(struct buf *b)
{
	const uint8_t *p = buf_span(b).p;
	size_t n = b->used;

	while (n > 0 && is_ws(p[n - 1]))
		n--;
	buf_truncate(b, n);
}

/* RFC 8970 3.1: at most 256 characters, white space collapsed; control
   characters count as white space, U+00A0 too. */
static const char *make_preview(pool_t pool, struct span text)
{
	struct buf out = BUF_INIT;
	unsigned int chars = 0;
	bool space = false;
	const char *ret;

	for (size_t i = 0; i < text.len; i++) {
		uint8_t c = text.p[i];

		if (c < 0x20 || c == 0x7f || c == ' ') {
			space = true;
			continue;
		}
		if (c == 0xc2 && i + 1 < text.len && text.p[i + 1] == 0xa0) {
			i++;
			space = true;
			continue;
		}
		if ((c & 0xc0) != 0x80) {
			/* A new character: room for it (and a space before
			   it) within the limit? */
			if (chars + (space && out.used > 0 ? 2 : 1) >
			    MESSAGE_INDEX_PREVIEW_MAX)
				break;
			if (space && out.used > 0) {
				buf_append_c(&out, ' ');
				chars++;
			}
			space = false;
			chars++;
		}
		buf_append_c(&out, c);
	}
	ret = buf_pool_dup(pool, &out);
	buf_free(&out);
	return ret;
}

/* Appends one part's text (already UTF-8) to the message text, separated
   by "\n", within MESSAGE_INDEX_MAX_TEXT. Returns false if nothing was
   added. */
static bool text_add(struct index_ctx *ctx, struct buf *part_text)
{
	size_t sep = ctx->text.used > 0 ? 1 : 0;
	size_t room;

	trim_trailing_ws(part_text);
	if (part_text->used == 0)
		return false;
	if (ctx->text.used + sep >= MESSAGE_INDEX_MAX_TEXT) {
		ctx->truncated = true;
		return false;
	}
	room = MESSAGE_INDEX_MAX_TEXT - ctx->text.used - sep;
	if (part_text->used > room) {
		utf8_truncate(part_text, room);
		ctx->truncated = true;
		if (part_text->used == 0)
			return false;
	}
	if (sep > 0)
		buf_append_c(&ctx->text, '\n');
	buf_append(&ctx->text, buf_span(part_text).p, part_text->used);
	return true;
}

static size_t text_room(const struct index_ctx *ctx)
{
	return ctx->text.used >= MESSAGE_INDEX_MAX_TEXT
		       ? 0
		       : MESSAGE_INDEX_MAX_TEXT - ctx->text.used;
}

/* Decodes a text/plain or text/html part into UTF-8 text. */
static void index_text_part(struct index_ctx *ctx, const struct mime_part *part,
			    bool html, bool in_message)
{
	enum message_decode_encoding enc =
		message_decode_encoding_parse(part->encoding);
	const char *charset =
		mime_param_get(part->params, part->param_count, "charset");
	struct buf raw = BUF_INIT, utf8 = BUF_INIT, out = BUF_INIT;
	size_t room = text_room(ctx), raw_max;
	struct span body;

	/* RFC 2045 6.4: an unknown encoding makes the body opaque. */
	if (enc == MESSAGE_DECODE_UNKNOWN)
		return;
	body = span_make(ctx->msg + part->body_offset,
			 part->body_end - part->body_offset);
	if (body.len == 0)
		return;
	if (room <= 1) {
		ctx->truncated = true;
		return;
	}
	raw_max = room * (html ? INDEX_HTML_FACTOR : INDEX_PLAIN_FACTOR);
	if (message_decode(enc, body, raw_max, &raw) != 0)
		ctx->truncated = true;
	(void)charset_to_utf8(&utf8, charset, buf_span(&raw));
	buf_free(&raw);
	if (html) {
		if (html_text_convert(buf_span(&utf8), room, &out) != 0)
			ctx->truncated = true;
	} else {
		const uint8_t *p = buf_span(&utf8).p;

		/* NUL would end the C string the store gets; CR is noise. */
		for (size_t i = 0; i < utf8.used && out.used <= room; i++) {
			if (p[i] != '\0' && p[i] != '\r')
				buf_append_c(&out, p[i]);
		}
	}
	buf_free(&utf8);
	if (text_add(ctx, &out)) {
		/* The preview comes from the first text the reader sees:
		   not an attachment, and the message's own text before
		   that of an attached message. */
		if (!part_is_attachment_disposition(part)) {
			if (!in_message && ctx->preview == NULL)
				ctx->preview =
					make_preview(ctx->pool, buf_span(&out));
			else if (in_message && ctx->preview_fallback == NULL)
				ctx->preview_fallback =
					make_preview(ctx->pool, buf_span(&out));
		}
	}
	buf_free(&out);
}

/* The nearest multipart/alternative above part within its message. */
static const struct mime_part *alternative_of(const struct mime_part *part)
{
	for (const struct mime_part *p = part->parent; p != NULL;
	     p = p->parent) {
		if (part_is(p, "multipart", "alternative"))
			return p;
		if ((p->flags & MIME_PART_FLAG_MESSAGE) != 0)
			return NULL;
	}
	return NULL;
}

/* True when the alternative holds a text/plain part that is indexed
   (then its HTML siblings say the same thing again). */
static bool alternative_has_plain(const struct mime_part *alt)
{
	for (const struct mime_part *p = alt; p != NULL;
	     p = next_part(p, alt, false)) {
		if (p->children == NULL && part_is(p, "text", "plain") &&
		    p->body_end > p->body_offset)
			return true;
	}
	return false;
}

static void attachment_check(struct index_ctx *ctx,
			     const struct mime_part *part)
{
	const char *name = mime_param_get(part->disp_params,
					  part->disp_param_count, "filename");

	if (name == NULL)
		name = mime_param_get(part->params, part->param_count, "name");
	if (name == NULL && !part_is_attachment_disposition(part))
		return;
	ctx->has_attachment = true;
	if (name == NULL || name[0] == '\0' ||
	    ctx->name_count >= INDEX_MAX_ATTACHMENTS)
		return;
	ctx->names = i_realloc(ctx->names,
			       sizeof(*ctx->names) * (ctx->name_count + 1));
	ctx->names[ctx->name_count++] = p_strdup(ctx->pool, name);
}

/* Decoded address list: "Name <local@domain>, local@domain, Group: ...;"
   with display names RFC 2047-decoded. */
static const char *decode_addresses(struct index_ctx *ctx, pool_t pool,
				    const char *raw)
{
	struct message_address *addr;
	struct buf out = BUF_INIT, tmp = BUF_INIT;
	bool sep = false;
	const char *ret;

	if (raw == NULL)
		return "";
	addr = message_address_parse(ctx->scratch, span_from_cstr(raw),
				     INDEX_MAX_ADDRESSES);
	for (; addr != NULL; addr = addr->next) {
		if (addr->mailbox == NULL && addr->domain == NULL) {
			/* RFC 5322 3.4: the end of a group. */
			trim_trailing_ws(&tmp);
			buf_append_c(&tmp, ';');
			sep = true;
			continue;
		}
		if (sep)
			buf_append_str(&tmp, ", ");
		sep = true;
		if (addr->domain == NULL) {
			/* The start of a group: its display name. */
			rfc2047_decode(&tmp, span_from_cstr(addr->mailbox));
			buf_append_c(&tmp, ':');
			sep = false;
			buf_append_c(&tmp, ' ');
			continue;
		}
		if (addr->name != NULL && addr->name[0] != '\0') {
			rfc2047_decode(&tmp, span_from_cstr(addr->name));
			buf_append_c(&tmp, ' ');
		}
		if (strcmp(addr->mailbox, MESSAGE_ADDRESS_MISSING_MAILBOX) ==
			    0 ||
		    strcmp(addr->domain, MESSAGE_ADDRESS_MISSING_DOMAIN) == 0) {
			trim_trailing_ws(&tmp);
			continue;
		}
		buf_printf(&tmp, "<%s@%s>", addr->mailbox, addr->domain);
	}
	trim_trailing_ws(&tmp);
	/* Raw 8-bit mailboxes (RFC 6532) may still be invalid UTF-8. */
	charset_utf8_sanitize(&out, buf_span(&tmp));
	ret = buf_pool_dup(pool, &out);
	buf_free(&tmp);
	buf_free(&out);
	return ret;
}

static const char *decode_text(pool_t pool, const char *raw)
{
	struct buf out = BUF_INIT;
	const char *ret;

	if (raw == NULL)
		return "";
	rfc2047_decode(&out, span_from_cstr(raw));
	ret = buf_pool_dup(pool, &out);
	buf_free(&out);
	return ret;
}

/* The embedded message's From and Subject are text of the outer one. */
static void index_embedded_headers(struct index_ctx *ctx,
				   const struct mime_envelope *env)
{
	struct buf out = BUF_INIT;
	const char *subject;

	if (env == NULL)
		return;
	buf_append_str(&out, decode_addresses(ctx, ctx->scratch, env->from));
	subject = decode_text(ctx->scratch, env->subject);
	if (out.used > 0 && subject[0] != '\0')
		buf_append_c(&out, '\n');
	buf_append_str(&out, subject);
	(void)text_add(ctx, &out);
	buf_free(&out);
}

/* Finds the first header field called name in a header block and
   appends its unfolded value (RFC 5322 2.2.3) to value_r, at most
   max_len bytes. Returns false when the field is absent. */
static bool header_find(struct span hdr, const char *name, size_t max_len,
			struct buf *value_r)
{
	struct span want = span_from_cstr(name);
	bool in_field = false, found = false;

	while (hdr.len > 0) {
		ssize_t nl = span_find_byte(hdr, '\n');
		size_t line_len = nl < 0 ? hdr.len : (size_t)nl;
		struct span line = span_make(hdr.p, line_len);

		hdr = span_skip(hdr, line_len + 1);
		if (line.len > 0 && line.p[line.len - 1] == '\r')
			line.len--;
		if (line.len > 0 && (line.p[0] == ' ' || line.p[0] == '\t')) {
			if (!in_field)
				continue;
		} else if (found) {
			break;
		} else {
			struct span rest;

			in_field = false;
			if (line.len == 0)
				break;
			if (!span_starts_with_ci(line, want))
				continue;
			rest = span_trim(span_skip(line, want.len));
			if (rest.len == 0 || rest.p[0] != ':')
				continue;
			line = span_skip(rest, 1);
			in_field = true;
			found = true;
		}
		if (value_r->used + line.len > max_len)
			line.len = max_len - value_r->used;
		buf_append(value_r, line.p, line.len);
	}
	return found;
}

static bool id_known(const char **ids, unsigned int count, const char *id)
{
	for (unsigned int i = 0; i < count; i++) {
		if (strcmp(ids[i], id) == 0)
			return true;
	}
	return false;
}

/* RFC 5322 3.6.4: msg-id = [CFWS] "<" id-left "@" id-right ">" [CFWS].
   Leniently: white space and comments inside the brackets are dropped
   (obs-id-left), a bare "left@right" without brackets counts, and phrase
   words around ids (obs-in-reply-to) are skipped. Appends the bare ids
   to ids (a ring of the last max when there are more), returns the
   count. */
static unsigned int parse_msgids(pool_t pool, struct span s, const char **ids,
				 unsigned int max, bool first_only)
{
	struct buf id = BUF_INIT, clean = BUF_INIT, junk = BUF_INIT;
	unsigned int count = 0;

	for (;;) {
		message_lex_skip_cfws(&s);
		if (s.len == 0)
			break;
		buf_reset(&id);
		if (s.p[0] == '<') {
			s = span_skip(s, 1);
			while (s.len > 0 && s.p[0] != '>') {
				if (s.p[0] == '(') {
					(void)message_lex_comment(&s, NULL);
					continue;
				}
				if (s.p[0] == '<') {
					/* "<a<b@c>": restart at the inner
					   bracket. */
					buf_reset(&id);
				} else if (s.p[0] > ' ' && s.p[0] != 0x7f &&
					   s.p[0] != '"') {
					/* White space, controls and NUL have
					   no place in an id. */
					buf_append_c(&id, s.p[0]);
				}
				s = span_skip(s, 1);
			}
			s = span_skip(s, 1);
		} else if (s.p[0] == '"') {
			buf_reset(&junk);
			(void)message_lex_quoted(&s, &junk);
			continue;
		} else {
			size_t n = 0;
			bool at = false;

			while (n < s.len && s.p[n] > ' ' && s.p[n] != '<' &&
			       s.p[n] != 0x7f && s.p[n] != '(' &&
			       s.p[n] != ',' && s.p[n] != '"') {
				at = at || s.p[n] == '@';
				n++;
			}
			if (n == 0)
				n = 1; /* a lone ',' */
			if (at)
				buf_append(&id, s.p, n);
			s = span_skip(s, n);
		}
		if (id.used == 0)
			continue;
		buf_reset(&clean);
		charset_utf8_sanitize(&clean, buf_span(&id));
		if (count == max) {
			memmove(ids, ids + 1, sizeof(*ids) * (max - 1));
			count--;
		}
		ids[count++] = buf_pool_dup(pool, &clean);
		if (first_only)
			break;
	}
	buf_free(&id);
	buf_free(&clean);
	buf_free(&junk);
	return count;
}

static void index_threading(struct index_ctx *ctx,
			    const struct mime_envelope *env,
			    const struct mime_part *root,
			    struct message_index *index_r)
{
	const char *tmp[INDEX_MAX_REFERENCES], *irt[1];
	const char **refs;
	struct buf value = BUF_INIT;
	unsigned int n, count = 0, irt_count = 0;

	index_r->message_id = NULL;
	if (env->message_id != NULL &&
	    parse_msgids(ctx->pool, span_from_cstr(env->message_id), irt, 1,
			 true) == 1)
		index_r->message_id = irt[0];

	if (header_find(span_make(ctx->msg + root->header_offset,
				  root->body_offset - root->header_offset),
			"References", MIME_LIMITS_DEFAULT_LINE, &value))
		count = parse_msgids(ctx->scratch, buf_span(&value), tmp,
				     INDEX_MAX_REFERENCES, false);
	buf_free(&value);
	/* RFC 5256 REFERENCES: the first msg-id of In-Reply-To. */
	if (env->in_reply_to != NULL)
		irt_count = parse_msgids(ctx->pool,
					 span_from_cstr(env->in_reply_to), irt,
					 1, true);

	refs = p_new(ctx->pool, const char *, count + irt_count + 1);
	n = 0;
	for (unsigned int i = 0; i < count; i++) {
		if (!id_known(refs, n, tmp[i]))
			refs[n++] = p_strdup(ctx->pool, tmp[i]);
	}
	if (irt_count > 0 && !id_known(refs, n, irt[0]))
		refs[n++] = irt[0];
	refs[n] = NULL;
	index_r->references = refs;
}

/* ---- Date (RFC 5322 3.3, 4.3) ---- */

static const char *const month_names[] = { "jan", "feb", "mar", "apr",
					   "may", "jun", "jul", "aug",
					   "sep", "oct", "nov", "dec" };
static const char *const day_names[] = { "mon", "tue", "wed", "thu",
					 "fri", "sat", "sun" };

static const struct {
	const char *name;
	int minutes;
} zone_names[] = {
	/* RFC 5322 4.3: obs-zone. */
	{ "ut", 0 },        { "gmt", 0 },       { "est", -5 * 60 },
	{ "edt", -4 * 60 }, { "cst", -6 * 60 }, { "cdt", -5 * 60 },
	{ "mst", -7 * 60 }, { "mdt", -6 * 60 }, { "pst", -8 * 60 },
	{ "pdt", -7 * 60 },
};

static bool date_word(struct span *s, struct span *word_r)
{
	size_t n = 0;

	while (n < s->len && ((s->p[n] >= 'a' && s->p[n] <= 'z') ||
			      (s->p[n] >= 'A' && s->p[n] <= 'Z')))
		n++;
	*word_r = span_make(s->p, n);
	*s = span_skip(*s, n);
	message_lex_skip_cfws(s);
	return n > 0;
}

/* Reads 1 to max_digits digits; returns the digit count (0 = none). */
static unsigned int date_number(struct span *s, unsigned int max_digits,
				unsigned int *num_r)
{
	unsigned int n = 0, v = 0;

	while (n < s->len && n < max_digits && s->p[n] >= '0' &&
	       s->p[n] <= '9') {
		v = v * 10 + (unsigned int)(s->p[n] - '0');
		n++;
	}
	*num_r = v;
	*s = span_skip(*s, n);
	if (n > 0)
		message_lex_skip_cfws(s);
	return n;
}

static bool date_char(struct span *s, uint8_t c)
{
	if (s->len == 0 || s->p[0] != c)
		return false;
	*s = span_skip(*s, 1);
	message_lex_skip_cfws(s);
	return true;
}

static int name_index(struct span word, const char *const *names,
		      unsigned int count)
{
	/* Full names ("Monday", "January") match by their first three
	   letters. */
	if (word.len < 3)
		return -1;
	for (unsigned int i = 0; i < count; i++) {
		if (span_starts_with_ci(word, span_from_cstr(names[i])))
			return (int)i;
	}
	return -1;
}

static bool date_time(struct span *s, unsigned int *h_r, unsigned int *m_r,
		      unsigned int *sec_r)
{
	*sec_r = 0;
	if (date_number(s, 2, h_r) == 0 || !date_char(s, ':') ||
	    date_number(s, 2, m_r) == 0)
		return false;
	/* RFC 5322 3.3: seconds are optional. */
	if (date_char(s, ':') && date_number(s, 2, sec_r) == 0)
		return false;
	return true;
}

static bool date_zone(struct span *s, int *minutes_r)
{
	struct span word;
	unsigned int v;

	*minutes_r = 0;
	if (s->len > 0 && (s->p[0] == '+' || s->p[0] == '-')) {
		bool neg = s->p[0] == '-';

		*s = span_skip(*s, 1);
		/* RFC 5322 3.3: zone = ("+" / "-") 4DIGIT. */
		if (date_number(s, 4, &v) != 4 || v % 100 > 59)
			return false;
		*minutes_r = (int)(v / 100 * 60 + v % 100);
		if (neg)
			*minutes_r = -*minutes_r;
		return true;
	}
	if (date_word(s, &word)) {
		for (size_t i = 0; i < N_ELEMENTS(zone_names); i++) {
			if (span_eq_ci(word,
				       span_from_cstr(zone_names[i].name)))
				*minutes_r = zone_names[i].minutes;
		}
		/* RFC 5322 4.3: military and other alphabetic zones are
		   taken as -0000. */
	}
	/* A missing zone is taken as UTC too (lenient). */
	return true;
}

static int64_t days_from_civil(int64_t y, unsigned int m, unsigned int d)
{
	int64_t era, doe;
	unsigned int yoe, doy;

	y -= m <= 2 ? 1 : 0;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned int)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = (int64_t)yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static unsigned int days_in_month(unsigned int year, unsigned int month)
{
	static const unsigned char days[] = { 31, 28, 31, 30, 31, 30,
					      31, 31, 30, 31, 30, 31 };

	if (month == 2 &&
	    (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)))
		return 29;
	return days[month - 1];
}

/* RFC 5322 3.3 date-time, with the obsolete forms of 4.3 (two- and
   three-digit years, alphabetic zones, CFWS anywhere) and, leniently,
   the asctime() form "Mon Jan  2 15:04:05 2006". Returns unix time, or 0
   if the value cannot be read. */
static int64_t parse_date(struct span s)
{
	unsigned int day, year, hour, min, sec, ydigits;
	struct span word;
	int month = -1, zone = 0;
	bool asctime_form = false;

	message_lex_skip_cfws(&s);
	if (date_word(&s, &word)) {
		/* RFC 5322 3.3: [day-of-week ","]; a month name right
		   after it (or first) is the asctime() form. */
		if (name_index(word, day_names, N_ELEMENTS(day_names)) >= 0) {
			(void)date_char(&s, ',');
			if (date_word(&s, &word))
				asctime_form = true;
		} else {
			asctime_form = true;
		}
		if (asctime_form) {
			month = name_index(word, month_names,
					   N_ELEMENTS(month_names));
			if (month < 0)
				return 0;
		}
	}
	if (date_number(&s, 2, &day) == 0)
		return 0;
	if (asctime_form) {
		if (!date_time(&s, &hour, &min, &sec))
			return 0;
		ydigits = date_number(&s, 4, &year);
		if (!date_zone(&s, &zone))
			return 0;
	} else {
		if (!date_word(&s, &word))
			return 0;
		month = name_index(word, month_names, N_ELEMENTS(month_names));
		if (month < 0)
			return 0;
		ydigits = date_number(&s, 4, &year);
		if (!date_time(&s, &hour, &min, &sec) || !date_zone(&s, &zone))
			return 0;
	}
	/* RFC 5322 4.3: obs-year. */
	if (ydigits == 2)
		year += year < 50 ? 2000 : 1900;
	else if (ydigits == 3)
		year += 1900;
	else if (ydigits != 4)
		return 0;
	if (year < 1900 || day < 1 ||
	    day > days_in_month(year, (unsigned int)month + 1) || hour > 23 ||
	    min > 59 || sec > 60)
		return 0;
	/* RFC 5322 3.3: the zone is local time's offset from UTC. */
	return days_from_civil(year, (unsigned int)month + 1, day) * 86400 +
	       hour * 3600 + min * 60 + sec - (int64_t)zone * 60;
}

/* ---- Base subject (RFC 5256 2.1) ---- */

static bool ci_at(struct span s, size_t pos, const char *lit)
{
	size_t n = strlen(lit);

	return pos + n <= s.len &&
	       span_eq_ci(span_make(s.p + pos, n), span_make(lit, n));
}

/* RFC 5256 5: subj-blob = "[" *BLOBCHAR "]" *WSP. Returns the end, or 0
   when there is none at pos. */
static size_t match_blob(struct span s, size_t pos)
{
	if (pos >= s.len || s.p[pos] != '[')
		return 0;
	for (pos++; pos < s.len && s.p[pos] != ']'; pos++) {
		if (s.p[pos] == '[')
			return 0;
	}
	if (pos >= s.len)
		return 0;
	for (pos++; pos < s.len && s.p[pos] == ' '; pos++)
		;
	return pos;
}

/* RFC 5256 5: subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":".
   Returns the end, or 0. */
static size_t match_refwd(struct span s, size_t pos)
{
	size_t end;

	if (ci_at(s, pos, "re"))
		pos += 2;
	else if (ci_at(s, pos, "fwd"))
		pos += 3;
	else if (ci_at(s, pos, "fw"))
		pos += 2;
	else
		return 0;
	while (pos < s.len && s.p[pos] == ' ')
		pos++;
	if ((end = match_blob(s, pos)) != 0)
		pos = end;
	return pos < s.len && s.p[pos] == ':' ? pos + 1 : 0;
}

/* RFC 5256 5: subj-leader = (*subj-blob subj-refwd) / WSP. */
static size_t match_leader(struct span s)
{
	size_t pos = 0, end;

	if (s.len > 0 && s.p[0] == ' ')
		return 1;
	while ((end = match_blob(s, pos)) != 0)
		pos = end;
	return match_refwd(s, pos);
}

static bool has_non_ws(struct span s)
{
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] != ' ')
			return true;
	}
	return false;
}

static const char *base_subject(pool_t pool, const char *subject, bool *reply_r)
{
	struct buf norm = BUF_INIT;
	struct span s;
	const char *ret;
	bool again;

	*reply_r = false;
	/* RFC 5256 2.1 (1): decoded (the caller did that), tabs and
	   folding become spaces, runs of spaces one space. */
	for (const char *p = subject; *p != '\0'; p++) {
		uint8_t c = is_ws((uint8_t)*p) ? ' ' : (uint8_t)*p;

		if (c == ' ' && norm.used > 0 &&
		    buf_span(&norm).p[norm.used - 1] == ' ')
			continue;
		buf_append_c(&norm, c);
	}
	s = buf_span(&norm);
	do {
		size_t n;
		bool changed;

		again = false;
		/* (2) subj-trailer = "(fwd)" / WSP, repeatedly. */
		for (;;) {
			if (s.len > 0 && s.p[s.len - 1] == ' ')
				s.len--;
			else if (s.len >= 5 && ci_at(s, s.len - 5, "(fwd)")) {
				s.len -= 5;
				*reply_r = true;
			} else
				break;
		}
		do {
			changed = false;
			/* (3) subj-leader, repeatedly. */
			while ((n = match_leader(s)) != 0) {
				/* Anything but a space holds a subj-refwd. */
				if (s.p[0] != ' ')
					*reply_r = true;
				s = span_skip(s, n);
				changed = true;
			}
			/* (4) a subj-blob, if a subj-base remains. */
			n = match_blob(s, 0);
			if (n != 0 && has_non_ws(span_skip(s, n))) {
				s = span_skip(s, n);
				changed = true;
			}
			/* (5) repeat (3) and (4). */
		} while (changed);
		/* (6) "[fwd:" ... "]" is removed, then from (2) again. */
		if (s.len >= 6 && ci_at(s, 0, "[fwd:") &&
		    s.p[s.len - 1] == ']') {
			s = span_make(s.p + 5, s.len - 6);
			again = true;
			*reply_r = true;
		}
	} while (again);

	ret = NULL;
	if (s.len > 0) {
		/* Case-folded (RFC 5051 i;unicode-casemap is close to
		   this), so that "RE: Hello" and "hello" thread. */
		UErrorCode err = U_ZERO_ERROR;
		UCaseMap *csm = ucasemap_open(NULL, U_FOLD_CASE_DEFAULT, &err);
		size_t cap = i_size_add(i_size_mul(s.len, 3), 16);
		char *out = p_malloc(pool, cap + 1);
		int32_t len;

		if (U_SUCCESS(err) && cap < INT32_MAX) {
			len = ucasemap_utf8FoldCase(csm, out, (int32_t)cap,
						    (const char *)s.p,
						    (int32_t)s.len, &err);
			if (U_SUCCESS(err) && len >= 0 && (size_t)len <= cap) {
				out[len] = '\0';
				ret = out;
			}
		}
		ucasemap_close(csm);
	}
	if (ret == NULL)
		ret = p_strndup(pool, s.p, s.len);
	buf_free(&norm);
	return ret;
}

/* ---- SORT keys (RFC 5256 3, RFC 5957) ---- */

/* The first address of a list, skipping group starts and ends. */
static const struct message_address *first_address(struct index_ctx *ctx,
						   const char *raw)
{
	const struct message_address *addr;

	if (raw == NULL)
		return NULL;
	addr = message_address_parse(ctx->scratch, span_from_cstr(raw),
				     INDEX_MAX_ADDRESSES);
	for (; addr != NULL; addr = addr->next) {
		if (addr->mailbox != NULL && addr->domain != NULL)
			return addr;
	}
	return NULL;
}

/* RFC 5256 3 FROM/TO/CC: the addr-mailbox, compared with i;ascii-casemap
   (so kept lower-cased). */
static const char *sort_key(struct index_ctx *ctx, const char *raw)
{
	const struct message_address *addr = first_address(ctx, raw);
	struct buf out = BUF_INIT;
	const char *ret;

	if (addr == NULL ||
	    strcmp(addr->mailbox, MESSAGE_ADDRESS_MISSING_MAILBOX) == 0)
		return "";
	charset_utf8_sanitize(&out, span_from_cstr(addr->mailbox));
	ret = buf_pool_dup(ctx->pool, &out);
	buf_free(&out);
	for (char *p = (char *)ret; *p != '\0'; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	return ret;
}

/* RFC 5957 2.1: the display-name (decoded, RFC 2047) if there is a
   non-empty one, else the addr-spec. */
static const char *display_key(struct index_ctx *ctx, const char *raw)
{
	const struct message_address *addr = first_address(ctx, raw);
	struct buf tmp = BUF_INIT, out = BUF_INIT;
	const char *ret;

	if (addr == NULL)
		return "";
	if (addr->name != NULL)
		rfc2047_decode(&tmp, span_from_cstr(addr->name));
	if (tmp.used == 0 && !addr->invalid)
		buf_printf(&tmp, "%s@%s", addr->mailbox, addr->domain);
	charset_utf8_sanitize(&out, buf_span(&tmp));
	ret = buf_pool_dup(ctx->pool, &out);
	buf_free(&tmp);
	buf_free(&out);
	return ret;
}

static void index_sort_keys(struct index_ctx *ctx,
			    const struct mime_envelope *env,
			    struct message_index *index_r)
{
	index_r->sort_from = sort_key(ctx, env->from);
	index_r->sort_to = sort_key(ctx, env->to);
	index_r->sort_cc = sort_key(ctx, env->cc);
	index_r->display_from = display_key(ctx, env->from);
	index_r->display_to = display_key(ctx, env->to);
}

/* ---- The whole message ---- */

static void index_body(struct index_ctx *ctx, const struct mime_part *root)
{
	for (const struct mime_part *p = root; p != NULL;
	     p = next_part(p, root, true)) {
		const struct mime_part *alt;
		bool in_message = false;

		if (part_is(p, "multipart", NULL))
			continue;
		attachment_check(ctx, p);
		if ((p->flags & MIME_PART_FLAG_MESSAGE) != 0) {
			if (p->children != NULL)
				index_embedded_headers(ctx,
						       p->children->envelope);
			continue;
		}
		for (const struct mime_part *q = p->parent; q != NULL;
		     q = q->parent) {
			if ((q->flags & MIME_PART_FLAG_MESSAGE) != 0)
				in_message = true;
		}
		if (part_is(p, "text", "plain")) {
			index_text_part(ctx, p, false, in_message);
		} else if (part_is(p, "text", "html")) {
			alt = alternative_of(p);
			if (alt == NULL || !alternative_has_plain(alt))
				index_text_part(ctx, p, true, in_message);
		}
	}
}

void message_index_build(struct pool *pool, const void *message, size_t len,
			 struct message_index *index_r)
{
	static const struct mime_envelope empty_env;
	struct index_ctx ctx = { .pool = pool, .msg = message, .len = len };
	const struct mime_envelope *env;
	struct mime_result result;
	struct buf b = BUF_INIT;
	const char **names;

	memset(index_r, 0, sizeof(*index_r));
	ctx.scratch = pool_create("message-index", 16 * 1024);
	if (ctx.msg == NULL)
		ctx.msg = (const uint8_t *)"";
	mime_parse(ctx.scratch, NULL, ctx.msg, len, &result);
	env = result.root->envelope != NULL ? result.root->envelope
					    : &empty_env;

	imap_envelope_write(&b, result.root->envelope);
	index_r->envelope = buf_pool_dup(pool, &b);
	buf_reset(&b);
	imap_bodystructure_write(&b, result.root, true);
	index_r->bodystructure = buf_pool_dup(pool, &b);
	buf_reset(&b);
	imap_bodystructure_write(&b, result.root, false);
	index_r->body = buf_pool_dup(pool, &b);
	buf_free(&b);

	index_r->from = decode_addresses(&ctx, pool, env->from);
	index_r->to = decode_addresses(&ctx, pool, env->to);
	index_r->cc = decode_addresses(&ctx, pool, env->cc);
	index_r->bcc = decode_addresses(&ctx, pool, env->bcc);
	index_r->subject = decode_text(pool, env->subject);
	index_r->base_subject = base_subject(pool, index_r->subject,
					     &index_r->subject_is_reply);
	index_sort_keys(&ctx, env, index_r);
	index_r->date =
		env->date == NULL ? 0 : parse_date(span_from_cstr(env->date));
	index_threading(&ctx, env, result.root, index_r);

	index_body(&ctx, result.root);
	index_r->text = buf_pool_dup(pool, &ctx.text);
	index_r->text_truncated = ctx.truncated;
	index_r->preview = ctx.preview != NULL            ? ctx.preview
			   : ctx.preview_fallback != NULL ? ctx.preview_fallback
							  : "";
	index_r->has_attachment = ctx.has_attachment;
	names = p_new(pool, const char *, ctx.name_count + 1);
	for (unsigned int i = 0; i < ctx.name_count; i++)
		names[i] = ctx.names[i];
	index_r->attachment_names = names;

	index_r->header_size =
		result.root->body_offset - result.root->header_offset;
	index_r->body_lines = result.root->body_lines;

	i_free(ctx.names);
	buf_free(&ctx.text);
	pool_unref(&ctx.scratch);
}
