/* imap-envelope.c - builders for the IMAP ENVELOPE and BODYSTRUCTURE
   fetch items from the part tree of mime-parser.c. Owns a scratch pool
   per ENVELOPE for address parsing. Called by the store when it caches
   fetch data and by lib-imap. Values come from untrusted mail: every
   string goes through one quoting function. Nesting is bounded by the
   parser's max_depth, which bounds the recursion here. */

#include "imap-envelope.h"
#include "message-address.h"
#include "message-lex.h"

#define ENVELOPE_MAX_ADDRESSES 10000

void imap_envelope_append_nstring(struct buf *dest, const char *s)
{
	size_t i, len;
	bool literal = false;

	if (s == NULL) {
		buf_append_str(dest, "NIL");
		return;
	}
	len = strlen(s);
	for (i = 0; i < len; i++) {
		uint8_t c = (uint8_t)s[i];

		/* RFC 9051 4.3: quoted strings hold TEXT-CHAR only. */
		if (c == '\r' || c == '\n' || c >= 0x80) {
			literal = true;
			break;
		}
	}
	if (literal) {
		buf_printf(dest, "{%zu}\r\n", len);
		buf_append(dest, s, len);
		return;
	}
	buf_append_c(dest, '"');
	for (i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf_append_c(dest, '\\');
		buf_append_c(dest, (uint8_t)s[i]);
	}
	buf_append_c(dest, '"');
}

/* Dovecot shows type, subtype, parameter names, encoding and disposition
   as the message wrote them (they are case-insensitive, RFC 2045 5.1, so
   either is correct); raw is NULL only for parts built without a header. */
static void append_as_written(struct buf *dest, const char *raw,
			      const char *lower)
{
	imap_envelope_append_nstring(dest, raw != NULL ? raw : lower);
}

static void write_addresses(struct buf *dest, pool_t pool, const char *value)
{
	const struct message_address *addr;

	addr = value == NULL
		       ? NULL
		       : message_address_parse(pool, span_from_cstr(value),
					       ENVELOPE_MAX_ADDRESSES);
	if (addr == NULL) {
		buf_append_str(dest, "NIL");
		return;
	}
	buf_append_c(dest, '(');
	for (; addr != NULL; addr = addr->next) {
		/* RFC 9051 7.5.2: (name adl mailbox host); host NIL marks
		   group syntax. */
		buf_append_c(dest, '(');
		imap_envelope_append_nstring(dest, addr->name);
		buf_append_c(dest, ' ');
		imap_envelope_append_nstring(dest, addr->route);
		buf_append_c(dest, ' ');
		imap_envelope_append_nstring(dest, addr->mailbox);
		buf_append_c(dest, ' ');
		imap_envelope_append_nstring(dest, addr->domain);
		buf_append_c(dest, ')');
	}
	buf_append_c(dest, ')');
}

void imap_envelope_write(struct buf *dest, const struct mime_envelope *env)
{
	static const struct mime_envelope empty;
	pool_t pool;

	if (env == NULL)
		env = &empty;
	pool = pool_create("imap envelope", 1024);
	/* RFC 9051 7.5.2: date, subject, from, sender, reply-to, to, cc,
	   bcc, in-reply-to, message-id. */
	buf_append_c(dest, '(');
	imap_envelope_append_nstring(dest, env->date);
	buf_append_c(dest, ' ');
	imap_envelope_append_nstring(dest, env->subject);
	buf_append_c(dest, ' ');
	write_addresses(dest, pool, env->from);
	buf_append_c(dest, ' ');
	/* RFC 9051 7.5.2: absent Sender and Reply-To are set to From. */
	write_addresses(dest, pool,
			env->sender != NULL ? env->sender : env->from);
	buf_append_c(dest, ' ');
	write_addresses(dest, pool,
			env->reply_to != NULL ? env->reply_to : env->from);
	buf_append_c(dest, ' ');
	write_addresses(dest, pool, env->to);
	buf_append_c(dest, ' ');
	write_addresses(dest, pool, env->cc);
	buf_append_c(dest, ' ');
	write_addresses(dest, pool, env->bcc);
	buf_append_c(dest, ' ');
	imap_envelope_append_nstring(dest, env->in_reply_to);
	buf_append_c(dest, ' ');
	imap_envelope_append_nstring(dest, env->message_id);
	buf_append_c(dest, ')');
	pool_unref(&pool);
}

static void write_params(struct buf *dest, const struct mime_param *params,
			 unsigned int count, bool add_charset)
{
	bool have_charset = false;

	/* Dovecot adds the default charset unless a plain "charset" is
	   there: a "charset*" alone does not count. */
	for (unsigned int i = 0; i < count; i++) {
		if (strcmp(params[i].name, "charset") == 0 &&
		    !params[i].extended)
			have_charset = true;
	}
	if (count == 0 && !(add_charset && !have_charset)) {
		buf_append_str(dest, "NIL");
		return;
	}
	buf_append_c(dest, '(');
	for (unsigned int i = 0; i < count; i++) {
		if (i > 0)
			buf_append_c(dest, ' ');
		if (params[i].extended) {
			char *name = i_strdup_printf(
				"%s*", params[i].name_raw != NULL
					       ? params[i].name_raw
					       : params[i].name);

			imap_envelope_append_nstring(dest, name);
			i_free(name);
		} else {
			append_as_written(dest, params[i].name_raw,
					  params[i].name);
		}
		buf_append_c(dest, ' ');
		imap_envelope_append_nstring(dest, params[i].raw_value);
	}
	if (add_charset && !have_charset) {
		/* RFC 2045 5.2: text defaults to charset=us-ascii. */
		if (count > 0)
			buf_append_c(dest, ' ');
		buf_append_str(dest, "\"charset\" \"us-ascii\"");
	}
	buf_append_c(dest, ')');
}

/* RFC 3282 2: Content-Language is a list of language tags. */
static void write_language(struct buf *dest, const char *value)
{
	struct span s;
	bool any = false;

	if (value == NULL) {
		buf_append_str(dest, "NIL");
		return;
	}
	s = span_from_cstr(value);
	for (;;) {
		struct span tok;
		char *tag;

		message_lex_skip_cfws(&s);
		if (!message_lex_token(&s, &tok))
			break;
		buf_append_str(dest, any ? " " : "(");
		tag = i_strndup(tok.p, tok.len);
		imap_envelope_append_nstring(dest, tag);
		i_free(tag);
		any = true;
		message_lex_skip_cfws(&s);
		if (s.len == 0 || s.p[0] != ',')
			break;
		s = span_skip(s, 1);
	}
	buf_append_str(dest, any ? ")" : "NIL");
}

static void write_disposition(struct buf *dest, const struct mime_part *part)
{
	if (part->disposition == NULL) {
		buf_append_str(dest, "NIL");
		return;
	}
	buf_append_c(dest, '(');
	append_as_written(dest, part->disposition_raw, part->disposition);
	buf_append_c(dest, ' ');
	write_params(dest, part->disp_params, part->disp_param_count, false);
	buf_append_c(dest, ')');
}

static void write_ext_common(struct buf *dest, const struct mime_part *part)
{
	buf_append_c(dest, ' ');
	write_disposition(dest, part);
	buf_append_c(dest, ' ');
	write_language(dest, part->language);
	buf_append_c(dest, ' ');
	imap_envelope_append_nstring(dest, part->location);
}

/* As Dovecot shows it, with NIL extension data in a BODYSTRUCTURE. */
#define EMPTY_TEXT_BODY \
	"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0"
#define EMPTY_TEXT_EXT " NIL NIL NIL NIL"

static void write_multipart(struct buf *dest, const struct mime_part *part,
			    bool extended)
{
	const struct mime_part *child;

	buf_append_c(dest, '(');
	/* RFC 9051 7.5.2: 1*body SP media-subtype; a multipart must have a
	   part, so an unsplit one gets an empty text part. */
	if (part->children == NULL ||
	    !(part->flags & MIME_PART_FLAG_MULTIPART)) {
		buf_append_str(dest, EMPTY_TEXT_BODY);
		buf_append_str(dest, extended ? EMPTY_TEXT_EXT ")" : ")");
	}
	for (child = part->children; child != NULL; child = child->next) {
		if (part->flags & MIME_PART_FLAG_MULTIPART)
			imap_bodystructure_write(dest, child, extended);
	}
	buf_append_c(dest, ' ');
	append_as_written(dest, part->subtype_raw, part->subtype);
	if (extended) {
		buf_append_c(dest, ' ');
		write_params(dest, part->params, part->param_count, false);
		write_ext_common(dest, part);
	}
	buf_append_c(dest, ')');
}

void imap_bodystructure_write(struct buf *dest, const struct mime_part *part,
			      bool extended)
{
	bool text = (part->flags & MIME_PART_FLAG_TEXT) != 0;
	bool message = (part->flags & MIME_PART_FLAG_MESSAGE) != 0 &&
		       part->children != NULL;

	if (strcmp(part->type, "multipart") == 0) {
		write_multipart(dest, part, extended);
		return;
	}
	buf_append_c(dest, '(');
	if (!message && strcmp(part->type, "message") == 0 &&
	    (strcmp(part->subtype, "rfc822") == 0 ||
	     strcmp(part->subtype, "global") == 0)) {
		/* Not parsed (limits or encoding): a basic body may not be
		   message/rfc822 in RFC 9051's grammar. */
		buf_append_str(dest, "\"application\" \"octet-stream\"");
	} else {
		append_as_written(dest, part->type_raw, part->type);
		buf_append_c(dest, ' ');
		append_as_written(dest, part->subtype_raw, part->subtype);
	}
	buf_append_c(dest, ' ');
	write_params(dest, part->params, part->param_count, text);
	buf_append_c(dest, ' ');
	imap_envelope_append_nstring(dest, part->id);
	buf_append_c(dest, ' ');
	imap_envelope_append_nstring(dest, part->description);
	buf_append_c(dest, ' ');
	if (part->encoding == NULL)
		buf_append_str(dest, "\"7bit\"");
	else
		append_as_written(dest, part->encoding_raw, part->encoding);
	buf_printf(dest, " %llu",
		   (unsigned long long)(part->body_end - part->body_offset));
	if (text) {
		buf_printf(dest, " %llu", (unsigned long long)part->body_lines);
	} else if (message) {
		/* RFC 9051 7.5.2: envelope, body and lines of the
		   encapsulated message. */
		buf_append_c(dest, ' ');
		imap_envelope_write(dest, part->children->envelope);
		buf_append_c(dest, ' ');
		imap_bodystructure_write(dest, part->children, extended);
		buf_printf(dest, " %llu", (unsigned long long)part->body_lines);
	}
	if (extended) {
		buf_append_c(dest, ' ');
		imap_envelope_append_nstring(dest, part->md5);
		write_ext_common(dest, part);
	}
	buf_append_c(dest, ')');
}
