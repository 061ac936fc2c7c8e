/* imap-cmd-fetch.c - FETCH (RFC 9051 6.4.5), STORE (6.4.6) and EXPUNGE
   (6.4.3, UID EXPUNGE RFC 4315 2.1), with CONDSTORE/QRESYNC (RFC 7162:
   MODSEQ, CHANGEDSINCE, UNCHANGEDSINCE, VANISHED), BINARY (RFC 3516),
   OBJECTID (RFC 8474: EMAILID, THREADID), SAVEDATE (RFC 8514) and PREVIEW
   (RFC 8970).

   ENVELOPE, BODYSTRUCTURE and BODY come from the strings the store cached
   at append time; body sections read the message from its blob and parse
   it (src/lib-mail/mime-parser.h gives exact offsets). */

#include "lib.h"
#include "buf.h"
#include "log.h"
#include "pool.h"
#include "blob.h"
#include "store.h"
#include "mime-parser.h"
#include "message-decode.h"
#include "imap-seqset.h"
#include "imap-write.h"
#include "front-private.h"
#include "imap-session.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A FETCH of more items than this is refused (each is parsed). */
#define FETCH_MAX_ITEMS 64
#define FETCH_MAX_HEADER_FIELDS 64

enum fetch_item_kind {
	FETCH_UID,
	FETCH_FLAGS,
	FETCH_INTERNALDATE,
	FETCH_SIZE,
	FETCH_ENVELOPE,
	FETCH_BODYSTRUCTURE,
	FETCH_BODY, /* BODY without a section */
	FETCH_SECTION, /* BODY[...], BINARY[...], RFC822* */
	FETCH_BINARY_SIZE,
	FETCH_MODSEQ,
	FETCH_EMAILID,
	FETCH_THREADID,
	FETCH_SAVEDATE,
	FETCH_PREVIEW,
};

enum fetch_section_kind {
	SECTION_ALL, /* "" or a part number alone */
	SECTION_HEADER,
	SECTION_HEADER_FIELDS,
	SECTION_HEADER_FIELDS_NOT,
	SECTION_TEXT,
	SECTION_MIME,
};

struct fetch_item {
	enum fetch_item_kind kind;
	/* FETCH_SECTION, FETCH_BINARY_SIZE */
	const char *name; /* as it goes into the response: "BODY[1.2]" */
	const char *part; /* "1.2" or "" */
	enum fetch_section_kind section;
	const char *fields[FETCH_MAX_HEADER_FIELDS];
	unsigned int field_count;
	bool peek, binary;
	bool partial;
	uint64_t offset, length;
};

struct fetch_ctx {
	struct imap_cmd *cmd;
	struct fetch_item items[FETCH_MAX_ITEMS];
	unsigned int count;
	bool need_body; /* a section: the blob is read */
	bool need_mime; /* a section other than the whole message: parsed */
	bool set_seen;
	uint64_t changedsince;
	bool vanished;
	/* The messages, and the next one to write (FETCH in parts). */
	const struct store_message *msgs;
	unsigned int nmsgs, next;
	bool failed, unknown_cte;
};

/* ---- parsing ---- */

static int fetch_add(struct fetch_ctx *ctx, enum fetch_item_kind kind)
{
	if (ctx->count == FETCH_MAX_ITEMS)
		return -1;
	memset(&ctx->items[ctx->count], 0, sizeof(ctx->items[0]));
	ctx->items[ctx->count++].kind = kind;
	return 0;
}

/* section-spec after the part number (RFC 9051 9 section-msgtext,
   section-text): "HEADER", "HEADER.FIELDS (a b)", "TEXT", "MIME". */
static int fetch_parse_section(struct fetch_ctx *ctx, struct fetch_item *item,
			       const char *spec, const char **error_r)
{
	const char *p = spec, *text;
	size_t n = 0;

	while ((*p >= '0' && *p <= '9') ||
	       (*p == '.' && p[1] >= '0' && p[1] <= '9'))
		p++;
	item->part = p_strndup(ctx->cmd->pool, spec, (size_t)(p - spec));
	if (*p == '.') {
		if (p == spec) {
			*error_r = "Invalid section";
			return -1;
		}
		p++;
	} else if (*p != '\0' && p != spec) {
		*error_r = "Invalid section";
		return -1;
	}
	text = p;
	if (*text == '\0') {
		item->section = SECTION_ALL;
		return 0;
	}
	if (item->binary) {
		/* RFC 3516 4.1: BINARY takes part numbers only. */
		*error_r = "BINARY takes part numbers only";
		return -1;
	}
	if (strcasecmp(text, "HEADER") == 0)
		item->section = SECTION_HEADER;
	else if (strcasecmp(text, "TEXT") == 0)
		item->section = SECTION_TEXT;
	else if (strcasecmp(text, "MIME") == 0 && *item->part != '\0')
		item->section = SECTION_MIME;
	else if (strncasecmp(text, "HEADER.FIELDS.NOT ", 18) == 0) {
		item->section = SECTION_HEADER_FIELDS_NOT;
		text += 18;
	} else if (strncasecmp(text, "HEADER.FIELDS ", 14) == 0) {
		item->section = SECTION_HEADER_FIELDS;
		text += 14;
	} else {
		*error_r = "Invalid section";
		return -1;
	}
	if (item->section != SECTION_HEADER_FIELDS &&
	    item->section != SECTION_HEADER_FIELDS_NOT)
		return 0;
	/* header-list = "(" header-fld-name *(SP header-fld-name) ")" */
	if (*text != '(') {
		*error_r = "Expected a header field list";
		return -1;
	}
	text++;
	for (;;) {
		const char *start = text;

		if (*text == '"') {
			start = ++text;
			while (*text != '"' && *text != '\0')
				text++;
			if (*text != '"') {
				*error_r = "Invalid header field name";
				return -1;
			}
		} else {
			while (*text > ' ' && *text < 0x7f && *text != ')' &&
			       *text != ':')
				text++;
		}
		if (text == start || n == FETCH_MAX_HEADER_FIELDS) {
			*error_r = "Invalid header field list";
			return -1;
		}
		item->fields[n++] = p_strndup(ctx->cmd->pool, start,
					      (size_t)(text - start));
		if (*text == '"')
			text++;
		if (*text == ')')
			break;
		if (*text != ' ') {
			*error_r = "Invalid header field list";
			return -1;
		}
		text++;
	}
	if (text[1] != '\0') {
		*error_r = "Invalid header field list";
		return -1;
	}
	item->field_count = (unsigned int)n;
	return 0;
}

/* "BODY[...]<o.n>", "BODY.PEEK[...]", "BINARY[...]", "BINARY.PEEK[...]",
   "BINARY.SIZE[...]" (one atom, see imap-parser.c). */
static int fetch_parse_bracket(struct fetch_ctx *ctx, const char *atom,
			       const char **error_r)
{
	const char *open = strchr(atom, '['), *close;
	size_t prefix = (size_t)(open - atom);
	struct fetch_item *item;
	bool size = false;
	char *spec;

	if (fetch_add(ctx, FETCH_SECTION) < 0) {
		*error_r = "Too many FETCH items";
		return -1;
	}
	item = &ctx->items[ctx->count - 1];
	if (prefix == 4 && strncasecmp(atom, "BODY", 4) == 0) {
	} else if (prefix == 9 && strncasecmp(atom, "BODY.PEEK", 9) == 0) {
		item->peek = true;
	} else if (prefix == 6 && strncasecmp(atom, "BINARY", 6) == 0) {
		item->binary = true;
	} else if (prefix == 11 && strncasecmp(atom, "BINARY.PEEK", 11) == 0) {
		item->binary = item->peek = true;
	} else if (prefix == 11 && strncasecmp(atom, "BINARY.SIZE", 11) == 0) {
		item->binary = size = true;
		item->kind = FETCH_BINARY_SIZE;
	} else {
		*error_r = "Unknown FETCH item";
		return -1;
	}
	close = strrchr(open, ']');
	if (close == NULL) {
		*error_r = "Missing ']'";
		return -1;
	}
	spec = p_strndup(ctx->cmd->pool, open + 1, (size_t)(close - open - 1));
	if (fetch_parse_section(ctx, item, spec, error_r) < 0)
		return -1;
	if (close[1] == '<' && !size) {
		/* RFC 9051 6.4.5: <origin.octets>. */
		const char *dot = strchr(close, '.'), *end = strchr(close, '>');

		if (dot == NULL || end == NULL || end[1] != '\0' || dot > end ||
		    span_to_u64(span_make(close + 2, (size_t)(dot - close - 2)),
				UINT32_MAX, &item->offset) < 0 ||
		    span_to_u64(span_make(dot + 1, (size_t)(end - dot - 1)),
				UINT32_MAX, &item->length) < 0 ||
		    item->length == 0) {
			*error_r = "Invalid partial";
			return -1;
		}
		item->partial = true;
	} else if (close[1] != '\0') {
		*error_r = "Junk after section";
		return -1;
	}
	/* The response names the section without the partial's length
	   (RFC 9051 7.5.2: BODY[<section>]<<origin octet>>). */
	item->name = p_strdup_printf(ctx->cmd->pool, "%s[%s]",
				     size           ? "BINARY.SIZE"
				     : item->binary ? "BINARY"
						    : "BODY",
				     spec);
	if (!item->peek && !size)
		ctx->set_seen = true;
	ctx->need_body = true;
	if (*item->part != '\0' || item->section != SECTION_ALL)
		ctx->need_mime = true;
	return 0;
}

static int fetch_parse_atom(struct fetch_ctx *ctx, const char *atom,
			    const char **error_r)
{
	static const struct {
		const char *name;
		enum fetch_item_kind kind;
	} simple[] = {
		{ "UID", FETCH_UID },
		{ "FLAGS", FETCH_FLAGS },
		{ "INTERNALDATE", FETCH_INTERNALDATE },
		{ "RFC822.SIZE", FETCH_SIZE },
		{ "ENVELOPE", FETCH_ENVELOPE },
		{ "BODYSTRUCTURE", FETCH_BODYSTRUCTURE },
		{ "BODY", FETCH_BODY },
		{ "MODSEQ", FETCH_MODSEQ },
		{ "EMAILID", FETCH_EMAILID },
		{ "THREADID", FETCH_THREADID },
		{ "SAVEDATE", FETCH_SAVEDATE },
		{ "PREVIEW", FETCH_PREVIEW },
	};
	static const struct {
		const char *name, *section;
		bool seen;
	} rfc822[] = {
		/* RFC 3501 6.4.5 / RFC 9051 6.4.5: the old forms, answered
		   under their own names. */
		{ "RFC822", "", true },
		{ "RFC822.HEADER", "HEADER", false },
		{ "RFC822.TEXT", "TEXT", true },
	};

	if (strchr(atom, '[') != NULL)
		return fetch_parse_bracket(ctx, atom, error_r);
	for (unsigned int i = 0; i < N_ELEMENTS(simple); i++) {
		if (strcasecmp(atom, simple[i].name) != 0)
			continue;
		if (fetch_add(ctx, simple[i].kind) < 0) {
			*error_r = "Too many FETCH items";
			return -1;
		}
		if (simple[i].kind == FETCH_MODSEQ)
			ctx->cmd->session->enabled |= IMAP_ENABLED_CONDSTORE;
		return 0;
	}
	for (unsigned int i = 0; i < N_ELEMENTS(rfc822); i++) {
		struct fetch_item *item;

		if (strcasecmp(atom, rfc822[i].name) != 0)
			continue;
		if (fetch_add(ctx, FETCH_SECTION) < 0) {
			*error_r = "Too many FETCH items";
			return -1;
		}
		item = &ctx->items[ctx->count - 1];
		item->name = rfc822[i].name;
		item->part = "";
		item->section = rfc822[i].section[0] == '\0' ? SECTION_ALL
				: rfc822[i].seen             ? SECTION_TEXT
							     : SECTION_HEADER;
		item->peek = !rfc822[i].seen;
		ctx->set_seen = ctx->set_seen || rfc822[i].seen;
		ctx->need_body = true;
		if (item->section != SECTION_ALL)
			ctx->need_mime = true;
		return 0;
	}
	*error_r = "Unknown FETCH item";
	return -1;
}

static int fetch_parse(struct fetch_ctx *ctx, const struct imap_arg *arg,
		       const char **error_r)
{
	const struct imap_arg *list;
	const char *atom;
	unsigned int n;
	int ret = 0;

	if (imap_arg_get_atom(arg, &atom)) {
		/* RFC 9051 6.4.5 macros. */
		if (strcasecmp(atom, "ALL") == 0 ||
		    strcasecmp(atom, "FAST") == 0 ||
		    strcasecmp(atom, "FULL") == 0) {
			ret = fetch_parse_atom(ctx, "FLAGS", error_r);
			ret |= fetch_parse_atom(ctx, "INTERNALDATE", error_r);
			ret |= fetch_parse_atom(ctx, "RFC822.SIZE", error_r);
			if (strcasecmp(atom, "FAST") != 0)
				ret |= fetch_parse_atom(ctx, "ENVELOPE",
							error_r);
			if (strcasecmp(atom, "FULL") == 0)
				ret |= fetch_parse_atom(ctx, "BODY", error_r);
			return ret;
		}
		return fetch_parse_atom(ctx, atom, error_r);
	}
	if (!imap_arg_get_list(arg, &list, &n) || n == 0) {
		*error_r = "Expected FETCH items";
		return -1;
	}
	for (unsigned int i = 0; i < n; i++) {
		if (imap_arg_atom_equals(&list[i], "PREVIEW") && i + 1 < n &&
		    list[i + 1].type == IMAP_ARG_LIST) {
			/* RFC 8970 3: PREVIEW (LAZY); ours is always cached. */
			i++;
		}
		if (!imap_arg_get_atom(&list[i], &atom)) {
			*error_r = "Expected a FETCH item";
			return -1;
		}
		if (fetch_parse_atom(ctx, atom, error_r) < 0)
			return -1;
	}
	return 0;
}

/* FETCH modifiers (RFC 7162 3.1.4 CHANGEDSINCE, 3.2.6 VANISHED). */
static int fetch_parse_modifiers(struct fetch_ctx *ctx,
				 const struct imap_arg *arg,
				 const char **error_r)
{
	const struct imap_arg *list;
	const char *atom;
	unsigned int n;

	if (!imap_arg_get_list(arg, &list, &n) || n == 0) {
		*error_r = "Expected FETCH modifiers";
		return -1;
	}
	for (unsigned int i = 0; i < n; i++) {
		if (imap_arg_atom_equals(&list[i], "CHANGEDSINCE") &&
		    i + 1 < n && imap_arg_get_atom(&list[i + 1], &atom) &&
		    span_to_u64(span_from_cstr(atom), INT64_MAX,
				&ctx->changedsince) == 0) {
			i++;
			ctx->cmd->session->enabled |= IMAP_ENABLED_CONDSTORE;
		} else if (imap_arg_atom_equals(&list[i], "VANISHED") &&
			   ctx->cmd->uid &&
			   (ctx->cmd->session->enabled &
			    IMAP_ENABLED_QRESYNC) != 0) {
			ctx->vanished = true;
		} else {
			*error_r = "Invalid FETCH modifier";
			return -1;
		}
	}
	/* RFC 7162 3.2.6: VANISHED needs CHANGEDSINCE. */
	if (ctx->vanished && ctx->changedsince == 0) {
		*error_r = "VANISHED needs CHANGEDSINCE";
		return -1;
	}
	return 0;
}

/* ---- writing ---- */

static void fetch_write_date(struct buf *out, int64_t t)
{
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
					      "May", "Jun", "Jul", "Aug",
					      "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;

	/* RFC 9051 9 date-time, in UTC. */
	if (gmtime_r(&tt, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	buf_printf(out, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
		   months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour,
		   tm.tm_min, tm.tm_sec);
}

/* The header lines of [start, end) whose field name is (not) listed. */
static void fetch_header_fields(struct buf *dest, struct span hdr,
				const struct fetch_item *item)
{
	bool keep = false;
	size_t i = 0;

	while (i < hdr.len) {
		size_t start = i, colon;
		const uint8_t *nl = memchr(hdr.p + i, '\n', hdr.len - i);
		size_t end = nl == NULL ? hdr.len : (size_t)(nl - hdr.p) + 1;

		if (hdr.p[start] != ' ' && hdr.p[start] != '\t') {
			/* A new field: is it listed? */
			bool listed = false;

			for (colon = start; colon < end && hdr.p[colon] != ':';
			     colon++)
				;
			if (colon == end) {
				/* The empty line that ends the header. */
				i = end;
				keep = false;
				continue;
			}
			for (unsigned int f = 0; f < item->field_count; f++) {
				size_t flen = strlen(item->fields[f]);

				if (flen == colon - start &&
				    strncasecmp((const char *)hdr.p + start,
						item->fields[f], flen) == 0)
					listed = true;
			}
			keep = listed ==
			       (item->section == SECTION_HEADER_FIELDS);
		}
		if (keep)
			buf_append(dest, hdr.p + start, end - start);
		i = end;
	}
	/* RFC 9051 6.4.5: the blank line is included. */
	buf_append_str(dest, "\r\n");
}

/* The octets of a section of msg (parsed into root). Returns 0, or -1
   when the part does not exist (an empty string is answered, RFC 9051
   6.4.5 says nothing else is possible), or -2 for an unknown
   Content-Transfer-Encoding under BINARY (RFC 3516 4.3 UNKNOWN-CTE). */
static int fetch_section_data(const struct fetch_item *item, struct span msg,
			      struct mime_part *root, struct buf *dest,
			      bool *literal8_r)
{
	struct mime_part *part = root, *inner;
	struct span body;

	*literal8_r = false;
	if (*item->part == '\0' && item->section == SECTION_ALL) {
		/* The whole message: the caller sends msg itself. */
		return 1;
	}
	if (*item->part != '\0') {
		part = mime_part_find(root, item->part);
		if (part == NULL)
			return -1;
	}
	/* HEADER/TEXT/HEADER.FIELDS of part n address the message inside a
	   message/rfc822 part (RFC 9051 6.4.5). */
	inner = part;
	if (*item->part != '\0' && item->section != SECTION_ALL &&
	    item->section != SECTION_MIME) {
		if ((part->flags & MIME_PART_FLAG_MESSAGE) == 0 ||
		    part->children == NULL)
			return -1;
		inner = part->children;
	}
	switch (item->section) {
	case SECTION_ALL:
		if (part == root) {
			body = msg;
		} else {
			body = span_make(msg.p + part->body_offset,
					 part->body_end - part->body_offset);
		}
		if (item->binary && part != root &&
		    (part->flags & MIME_PART_FLAG_MULTIPART) == 0) {
			enum message_decode_encoding enc =
				message_decode_encoding_parse(part->encoding);

			if (enc == MESSAGE_DECODE_UNKNOWN)
				return -2;
			(void)message_decode(enc, body, 0, dest);
			*literal8_r =
				memchr(dest->data, '\0', dest->used) != NULL;
			return 0;
		}
		buf_append(dest, body.p, body.len);
		return 0;
	case SECTION_MIME:
		buf_append(dest, msg.p + part->header_offset,
			   part->body_offset - part->header_offset);
		return 0;
	case SECTION_HEADER:
		buf_append(dest, msg.p + inner->header_offset,
			   inner->body_offset - inner->header_offset);
		return 0;
	case SECTION_TEXT:
		buf_append(dest, msg.p + inner->body_offset,
			   inner->body_end - inner->body_offset);
		return 0;
	case SECTION_HEADER_FIELDS:
	case SECTION_HEADER_FIELDS_NOT:
		fetch_header_fields(
			dest,
			span_make(msg.p + inner->header_offset,
				  inner->body_offset - inner->header_offset),
			item);
		return 0;
	}
	return -1;
}

static void fetch_write_literal(struct buf *out, struct span data,
				bool literal8)
{
	if (literal8) {
		imap_write_literal8(out, data);
	} else if (memchr(data.p, '\0', data.len) != NULL) {
		/* RFC 9051 9: a literal holds CHAR8, never NUL, and BODY[]
		   cannot be a literal8 (only BINARY can, RFC 3516 4.2). A
		   message stored with NULs (BINARYMIME, APPEND literal8) is
		   sent with each NUL as 0x80, as Dovecot does; BINARY[]
		   gives the octets as they are. */
		struct buf copy = BUF_INIT;

		buf_append(&copy, data.p, data.len);
		for (size_t i = 0; i < copy.used; i++) {
			if (copy.data[i] == '\0')
				copy.data[i] = 0x80;
		}
		imap_write_literal(out, buf_span(&copy));
		buf_free(&copy);
	} else {
		imap_write_literal(out, data);
	}
}

/* Writes one message's FETCH response. Returns 0, or -1 after a tagged
   NO was decided (blob missing, unknown CTE). */
static int fetch_write_message(struct fetch_ctx *ctx, uint32_t seq,
			       const struct store_message *m, struct buf *out)
{
	struct imap_cmd *cmd = ctx->cmd;
	struct imap_session *s = cmd->session;
	struct buf raw = BUF_INIT, data = BUF_INIT;
	struct mime_result mime;
	pool_t mpool = NULL;
	const char *error;
	bool have_uid = false, have_modseq = false, first = true;
	int ret = 0;

	if (ctx->need_body) {
		if (blob_get(s->blobs, m->blob_id, &raw, &error) < 0) {
			log_error(s->conn->id, "imap.fetch.blob",
				  "uid=%u error=%s", m->uid,
				  log_value(0, error));
			buf_free(&raw);
			return -1;
		}
	}
	memset(&mime, 0, sizeof(mime));
	if (ctx->need_mime) {
		/* Only for parts, headers and texts: BODY[] of the whole
		   message is the blob as it is. */
		mpool = pool_create("fetch mime", 4096);
		mime_parse(mpool, NULL, raw.data, raw.used, &mime);
	}
	buf_printf(out, "* %u FETCH (", seq);
#define SEP() (first ? (void)(first = false) : buf_append_c(out, ' '))
	for (unsigned int i = 0; i < ctx->count; i++) {
		const struct fetch_item *item = &ctx->items[i];

		switch (item->kind) {
		case FETCH_UID:
			if (have_uid)
				break;
			have_uid = true;
			SEP();
			buf_printf(out, "UID %u", m->uid);
			break;
		case FETCH_FLAGS:
			SEP();
			buf_append_str(out, "FLAGS ");
			imap_write_flags(out, m->flags, m->keywords);
			break;
		case FETCH_INTERNALDATE:
			SEP();
			buf_append_str(out, "INTERNALDATE ");
			fetch_write_date(out, m->internaldate);
			break;
		case FETCH_SAVEDATE:
			SEP();
			buf_append_str(out, "SAVEDATE ");
			fetch_write_date(out, m->savedate);
			break;
		case FETCH_SIZE:
			SEP();
			buf_printf(out, "RFC822.SIZE %" PRIu64, m->size);
			break;
		case FETCH_ENVELOPE:
			SEP();
			buf_printf(out, "ENVELOPE %s",
				   m->envelope != NULL
					   ? m->envelope
					   : "(NIL NIL NIL NIL NIL NIL NIL NIL "
					     "NIL NIL)");
			break;
		case FETCH_BODYSTRUCTURE:
			SEP();
			buf_printf(out, "BODYSTRUCTURE %s",
				   m->bodystructure != NULL
					   ? m->bodystructure
					   : "(\"text\" \"plain\" NIL NIL NIL "
					     "\"7bit\" 0 0)");
			break;
		case FETCH_BODY:
			SEP();
			buf_printf(out, "BODY %s",
				   m->body != NULL ? m->body
						   : "(\"text\" \"plain\" NIL "
						     "NIL NIL \"7bit\" 0 0)");
			break;
		case FETCH_MODSEQ:
			if (have_modseq)
				break;
			have_modseq = true;
			SEP();
			buf_printf(out, "MODSEQ (%" PRIu64 ")", m->modseq);
			break;
		case FETCH_EMAILID:
			SEP();
			buf_printf(out, "EMAILID (%s)", m->email_id);
			break;
		case FETCH_THREADID:
			SEP();
			buf_printf(out, "THREADID (%s)", m->thread_id);
			break;
		case FETCH_PREVIEW:
			SEP();
			buf_append_str(out, "PREVIEW ");
			imap_write_nstring(out, m->preview, s->write_flags);
			break;
		case FETCH_SECTION:
		case FETCH_BINARY_SIZE: {
			bool lit8;
			int r;

			buf_truncate(&data, 0);
			r = fetch_section_data(item, buf_span(&raw), mime.root,
					       &data, &lit8);
			struct span d =
				r == 1 ? buf_span(&raw) : buf_span(&data);

			if (r == -2) {
				ret = -2;
				break;
			}
			SEP();
			if (item->kind == FETCH_BINARY_SIZE) {
				buf_printf(out, "%s %zu", item->name, d.len);
				break;
			}
			buf_append_str(out, item->name);

			if (item->partial) {
				buf_printf(out, "<%" PRIu64 ">", item->offset);
				if (item->offset >= d.len)
					d = span_make(d.p, 0);
				else
					d = span_make(d.p + item->offset,
						      d.len - item->offset);
				if (d.len > item->length)
					d.len = item->length;
			}
			buf_append_c(out, ' ');
			fetch_write_literal(out, d, lit8 || item->binary);
			break;
		}
		}
	}
	/* RFC 9051 7.5.2 / 6.4.9: a UID FETCH always carries UID; RFC 7162
	   3.1.4.1: under CONDSTORE every FETCH carries MODSEQ. */
	if (cmd->uid && !have_uid) {
		SEP();
		buf_printf(out, "UID %u", m->uid);
	}
	if (ctx->changedsince != 0 && !have_modseq) {
		SEP();
		buf_printf(out, "MODSEQ (%" PRIu64 ")", m->modseq);
	}
#undef SEP
	buf_append_str(out, ")\r\n");
	buf_free(&raw);
	buf_free(&data);
	if (mpool != NULL)
		pool_unref(&mpool);
	return ret;
}

/* The messages of uids (ascending) from the store, in ranges. */
static int fetch_messages(struct imap_cmd *cmd, const uint32_t *uids,
			  unsigned int count, struct store_message **msgs_r,
			  unsigned int *count_r, const char **error_r)
{
	struct imap_session *s = cmd->session;
	struct store_message *all;
	unsigned int n, out = 0, j = 0;

	*msgs_r = NULL;
	*count_r = 0;
	if (count == 0)
		return 0;
	/* One range scan from the lowest to the highest UID; the rows in
	   between that were not asked for are skipped. */
	if (store_fetch(s->store, s->mailbox_id, uids[0], uids[count - 1],
			cmd->pool, &all, &n, error_r) < 0)
		return -1;
	for (unsigned int i = 0; i < n && j < count; i++) {
		while (j < count && uids[j] < all[i].uid)
			j++;
		if (j < count && uids[j] == all[i].uid)
			all[out++] = all[i];
	}
	*msgs_r = all;
	*count_r = out;
	return 0;
}

/* Writes the responses of the next messages, about IMAP_CMD_PART_SIZE
   of them, then answers when all are written. */
static void fetch_more(struct imap_cmd *cmd)
{
	struct fetch_ctx *ctx = cmd->more_context;
	struct imap_session *s = cmd->session;

	ctx->cmd = cmd;
	cmd->more = NULL;
	while (ctx->next < ctx->nmsgs) {
		const struct store_message *m = &ctx->msgs[ctx->next++];
		uint32_t seq = imap_session_seq(s, m->uid);
		int r;

		/* A message expunged meanwhile by this very session cannot
		   happen (input waits); by others it is still in the map. */
		if (seq == 0 ||
		    (ctx->changedsince != 0 && m->modseq <= ctx->changedsince))
			continue;
		r = fetch_write_message(ctx, seq, m, cmd->out);
		if (r == -2)
			ctx->unknown_cte = true;
		else if (r < 0)
			ctx->failed = true;
		if (cmd->out->used >= IMAP_CMD_PART_SIZE &&
		    ctx->next < ctx->nmsgs) {
			cmd->more = fetch_more;
			return;
		}
	}
	/* RFC 9051 6.4.5 / 7.1: a message whose body cannot be read is a
	   NO, not a silently missing response. */
	if (ctx->unknown_cte)
		imap_cmd_no(cmd, "UNKNOWN-CTE",
			    "Unknown Content-Transfer-Encoding");
	else if (ctx->failed)
		imap_cmd_no(cmd, "SERVERBUG",
			    "Some messages could not be read");
	else
		imap_cmd_ok(cmd, NULL, "FETCH completed");
}

static void imap_cmd_fetch(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->session;
	struct fetch_ctx ctx = { .cmd = cmd };
	struct store_message *msgs;
	uint32_t *uids;
	unsigned int count, nmsgs;
	const char *error;

	if (cmd->arg_count < 2 || cmd->arg_count > 3) {
		imap_cmd_bad(cmd, "FETCH needs a sequence set and items");
		return;
	}
	if (imap_cmd_uids(cmd, &cmd->args[0], &uids, &count, &error) < 0 ||
	    fetch_parse(&ctx, &cmd->args[1], &error) < 0 ||
	    (cmd->arg_count == 3 &&
	     fetch_parse_modifiers(&ctx, &cmd->args[2], &error) < 0)) {
		imap_cmd_bad(cmd, error);
		return;
	}
	if (ctx.set_seen && !s->readonly && count > 0) {
		/* RFC 9051 6.4.5: BODY[] sets \Seen; FLAGS is then sent. */
		uint32_t *failed_uids;
		unsigned int nfailed;
		uint64_t modseq;

		if (store_flags_update(s->store, s->mailbox_id, uids, count,
				       STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL,
				       0, cmd->pool, &failed_uids, &nfailed,
				       &modseq, &error) < 0) {
			imap_cmd_store_error(cmd, error);
			return;
		}
		(void)fetch_parse_atom(&ctx, "FLAGS", &error);
	}
	if (fetch_messages(cmd, uids, count, &msgs, &nmsgs, &error) < 0) {
		imap_cmd_store_error(cmd, error);
		return;
	}
	if (ctx.vanished) {
		/* RFC 7162 3.2.6: UIDs of the set expunged since. */
		struct store_change *changes;
		unsigned int nchanges, nv = 0;
		struct imap_seqset set;
		struct imap_seq_range *r;
		unsigned int nr;
		const char *str;

		if (store_changes_since(s->store, s->mailbox_id,
					ctx.changedsince, cmd->pool, &changes,
					&nchanges, &error) < 0) {
			imap_cmd_store_error(cmd, error);
			return;
		}
		struct imap_seq_range *v =
			p_new(cmd->pool, struct imap_seq_range, nchanges + 1);
		(void)imap_arg_get_atom(&cmd->args[0], &str);
		if (imap_seqset_parse(cmd->pool, str, false, &set, &error) ==
			    0 &&
		    imap_seqset_resolve(&set, UINT32_MAX, cmd->pool, &r, &nr) ==
			    0) {
			for (unsigned int i = 0; i < nchanges; i++) {
				if (changes[i].kind == STORE_CHANGE_EXPUNGED &&
				    imap_seqset_contains(r, nr, changes[i].uid))
					v[nv].first = v[nv].last =
						changes[i].uid,
					nv++;
			}
		}
		if (nv > 0) {
			struct imap_seqset vs = { .ranges = v, .count = nv };

			if (imap_seqset_resolve(&vs, UINT32_MAX, cmd->pool, &r,
						&nr) == 0) {
				buf_append_str(cmd->out,
					       "* VANISHED (EARLIER) ");
				imap_seqset_write(cmd->out, r, nr);
				buf_append_str(cmd->out, "\r\n");
			}
		}
	}
	struct fetch_ctx *state = p_new(cmd->pool, struct fetch_ctx, 1);

	*state = ctx;
	state->msgs = msgs;
	state->nmsgs = nmsgs;
	cmd->more_context = state;
	fetch_more(cmd);
}

/* ---- STORE ---- */

static void imap_cmd_store(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->session;
	const struct imap_arg *flag_args, *mods;
	unsigned int nflags, nmods, arg = 1, nfailed, nmsgs;
	uint64_t unchangedsince = 0, modseq;
	enum store_flag_op op;
	const char **keywords, *error, *item;
	uint32_t *uids, *failed_uids, flags;
	unsigned int count;
	struct store_message *msgs;
	bool silent;
	size_t len;

	if (cmd->arg_count < 3 ||
	    imap_cmd_uids(cmd, &cmd->args[0], &uids, &count, &error) < 0) {
		imap_cmd_bad(cmd, cmd->arg_count < 3
					  ? "STORE needs a set, an item and "
					    "flags"
					  : error);
		return;
	}
	/* RFC 7162 3.1.3: STORE set (UNCHANGEDSINCE m) item flags. */
	if (imap_arg_get_list(&cmd->args[1], &mods, &nmods)) {
		const char *v;

		if (nmods != 2 ||
		    !imap_arg_atom_equals(&mods[0], "UNCHANGEDSINCE") ||
		    !imap_arg_get_atom(&mods[1], &v) ||
		    span_to_u64(span_from_cstr(v), INT64_MAX, &unchangedsince) <
			    0) {
			imap_cmd_bad(cmd, "Invalid STORE modifier");
			return;
		}
		s->enabled |= IMAP_ENABLED_CONDSTORE;
		arg = 2;
		/* UNCHANGEDSINCE 0 fails every message (RFC 7162 3.1.3);
		   the store treats 0 as "no condition". */
		if (unchangedsince == 0) {
			buf_append_str(cmd->tagged, "");
			if (count > 0) {
				struct imap_seq_range *r =
					p_new(cmd->pool, struct imap_seq_range,
					      count);
				unsigned int nr = 0;

				for (unsigned int i = 0; i < count; i++) {
					uint32_t n =
						cmd->uid ? uids[i]
							 : imap_session_seq(
								   s, uids[i]);

					if (nr > 0 && r[nr - 1].last + 1 == n)
						r[nr - 1].last = n;
					else
						r[nr].first = r[nr].last = n,
						nr++;
				}
				struct buf code = BUF_INIT;

				buf_append_str(&code, "MODIFIED ");
				imap_seqset_write(&code, r, nr);
				imap_cmd_ok(cmd, buf_cstr(&code),
					    "Conditional STORE failed");
				buf_free(&code);
				return;
			}
		}
	}
	if (cmd->arg_count < arg + 2 ||
	    !imap_arg_get_atom(&cmd->args[arg], &item)) {
		imap_cmd_bad(cmd, "Expected a STORE item");
		return;
	}
	/* RFC 9051 6.4.6: [+|-]FLAGS[.SILENT] */
	op = item[0] == '+'   ? STORE_FLAGS_ADD
	     : item[0] == '-' ? STORE_FLAGS_REMOVE
			      : STORE_FLAGS_REPLACE;
	if (op != STORE_FLAGS_REPLACE)
		item++;
	len = strlen(item);
	silent = len == 12 && strcasecmp(item, "FLAGS.SILENT") == 0;
	if (!silent && strcasecmp(item, "FLAGS") != 0) {
		imap_cmd_bad(cmd, "Unknown STORE item");
		return;
	}
	if (!imap_arg_get_list(&cmd->args[arg + 1], &flag_args, &nflags)) {
		flag_args = &cmd->args[arg + 1];
		nflags = cmd->arg_count - arg - 1;
	} else if (cmd->arg_count != arg + 2) {
		imap_cmd_bad(cmd, "Junk after the flag list");
		return;
	}
	if (imap_parse_flags(cmd->pool, flag_args, nflags, &flags, &keywords,
			     &error) < 0) {
		imap_cmd_bad(cmd, error);
		return;
	}
	if (count > 0 &&
	    store_flags_update(s->store, s->mailbox_id, uids, count, op, flags,
			       keywords, unchangedsince, cmd->pool,
			       &failed_uids, &nfailed, &modseq, &error) < 0) {
		imap_cmd_store_error(cmd, error);
		return;
	}
	if (count == 0)
		nfailed = 0;
	/* The new flags: unless .SILENT, and under CONDSTORE always with the
	   MODSEQ (RFC 7162 3.1.3). */
	if (count > 0 && (!silent || (s->enabled & IMAP_ENABLED_CONDSTORE))) {
		if (fetch_messages(cmd, uids, count, &msgs, &nmsgs, &error) <
		    0) {
			imap_cmd_store_error(cmd, error);
			return;
		}
		for (unsigned int i = 0; i < nmsgs; i++) {
			uint32_t seq = imap_session_seq(s, msgs[i].uid);
			bool was_failed = false;

			for (unsigned int f = 0; f < nfailed; f++)
				was_failed = was_failed ||
					     failed_uids[f] == msgs[i].uid;
			if (seq == 0 || was_failed)
				continue;
			if (silent) {
				buf_printf(
					cmd->out,
					"* %u FETCH (%sMODSEQ (%" PRIu64
					"))\r\n",
					seq,
					cmd->uid ? p_strdup_printf(cmd->pool,
								   "UID %u ",
								   msgs[i].uid)
						 : "",
					msgs[i].modseq);
				continue;
			}
			imap_session_write_fetch_flags(s, cmd->out, seq,
						       &msgs[i]);
		}
	}
	if (nfailed > 0) {
		/* RFC 7162 3.1.3: MODIFIED with the numbers that failed. */
		struct imap_seq_range *r =
			p_new(cmd->pool, struct imap_seq_range, nfailed);
		struct imap_seqset set = { .ranges = r, .count = nfailed };
		struct imap_seq_range *rr;
		unsigned int nr;
		struct buf code = BUF_INIT;

		for (unsigned int i = 0; i < nfailed; i++) {
			uint32_t n =
				cmd->uid ? failed_uids[i]
					 : imap_session_seq(s, failed_uids[i]);

			r[i].first = r[i].last = n;
		}
		buf_append_str(&code, "MODIFIED ");
		if (imap_seqset_resolve(&set, UINT32_MAX, cmd->pool, &rr,
					&nr) == 0)
			imap_seqset_write(&code, rr, nr);
		imap_cmd_ok(cmd, buf_cstr(&code), "Conditional STORE failed");
		buf_free(&code);
		return;
	}
	imap_cmd_ok(cmd, NULL, "STORE completed");
}

/* ---- EXPUNGE ---- */

static void imap_cmd_expunge(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->session;
	uint32_t *uids = NULL, *expunged;
	unsigned int count = 0, nexp;
	const char *error;
	struct buf code = BUF_INIT;

	if (cmd->uid) {
		/* RFC 4315 2.1: only the \Deleted messages of the set. */
		struct store_message *msgs;
		unsigned int nmsgs, n = 0;

		if (cmd->arg_count != 1 ||
		    imap_cmd_uids(cmd, &cmd->args[0], &uids, &count, &error) <
			    0) {
			imap_cmd_bad(cmd, cmd->arg_count != 1
						  ? "UID EXPUNGE needs a UID "
						    "set"
						  : error);
			return;
		}
		if (fetch_messages(cmd, uids, count, &msgs, &nmsgs, &error) <
		    0) {
			imap_cmd_store_error(cmd, error);
			return;
		}
		for (unsigned int i = 0; i < nmsgs; i++) {
			if ((msgs[i].flags & STORE_FLAG_DELETED) != 0)
				uids[n++] = msgs[i].uid;
		}
		count = n;
		if (count == 0) {
			imap_cmd_ok(cmd, NULL, "EXPUNGE completed");
			return;
		}
	} else if (cmd->arg_count != 0) {
		imap_cmd_bad(cmd, "EXPUNGE takes no arguments");
		return;
	}
	if (store_expunge(s->store, s->mailbox_id, uids, count, cmd->pool,
			  &expunged, &nexp, &error) < 0) {
		imap_cmd_store_error(cmd, error);
		return;
	}
	if (nexp > 0)
		front_vault_usage_changed(s->account->account_id);
	imap_session_report_expunges(s, cmd->out, expunged, nexp);
	/* RFC 7162 3.2.10 (QRESYNC) / 3.1.12: HIGHESTMODSEQ in the OK. */
	if ((s->enabled & IMAP_ENABLED_CONDSTORE) != 0) {
		buf_printf(&code, "HIGHESTMODSEQ %" PRIu64,
			   store_highest_modseq(s->store));
		imap_cmd_ok(cmd, buf_cstr(&code), "EXPUNGE completed");
	} else {
		imap_cmd_ok(cmd, NULL, "EXPUNGE completed");
	}
	buf_free(&code);
}

/* ---- NOTIFY's MessageNew fetch attributes (RFC 5465 5.2) ---- */

struct imap_fetch_items {
	struct fetch_ctx ctx; /* parsed; ctx.cmd is set for each use */
};

struct imap_fetch_items *imap_fetch_items_parse(struct imap_session *s,
						struct pool *pool,
						const struct imap_arg *arg,
						const char **error_r)
{
	struct imap_cmd cmd = { .session = s, .pool = pool };
	struct imap_fetch_items *items =
		p_new(pool, struct imap_fetch_items, 1);

	items->ctx.cmd = &cmd;
	if (fetch_parse(&items->ctx, arg, error_r) < 0)
		return NULL;
	items->ctx.cmd = NULL;
	return items;
}

void imap_fetch_items_write(struct imap_session *s,
			    const struct imap_fetch_items *items,
			    const uint32_t *uids, unsigned int count,
			    struct buf *out)
{
	pool_t pool = pool_create("imap notify fetch", 4096);
	struct imap_cmd cmd = { .session = s, .pool = pool, .out = out };
	struct fetch_ctx ctx = items->ctx;
	struct store_message *msgs;
	unsigned int nmsgs;
	const char *error;

	/* No \Seen is set: the client did not ask for the message, the
	   server offered it (BODY[] is taken as BODY.PEEK[]). */
	ctx.cmd = &cmd;
	if (fetch_messages(&cmd, uids, count, &msgs, &nmsgs, &error) < 0) {
		log_error(s->conn->id, "imap.notify_fetch", "error=%s",
			  log_value(0, error));
		nmsgs = 0;
	}
	for (unsigned int i = 0; i < nmsgs; i++) {
		uint32_t seq = imap_session_seq(s, msgs[i].uid);

		if (seq != 0)
			(void)fetch_write_message(&ctx, seq, &msgs[i], out);
	}
	pool_unref(&pool);
}

const struct imap_cmd_def imap_cmds_fetch[] = {
	{ "FETCH", imap_cmd_fetch,
	  IMAP_CMD_SELECTED | IMAP_CMD_UID | IMAP_CMD_NO_EXPUNGE },
	{ "STORE", imap_cmd_store,
	  IMAP_CMD_SELECTED | IMAP_CMD_UID | IMAP_CMD_NO_EXPUNGE |
		  IMAP_CMD_WRITE },
	{ "EXPUNGE", imap_cmd_expunge,
	  IMAP_CMD_SELECTED | IMAP_CMD_UID | IMAP_CMD_WRITE },
	{ NULL, NULL, 0 },
};
