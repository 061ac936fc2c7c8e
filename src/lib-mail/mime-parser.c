/* mime-parser.c - streaming RFC 5322/MIME parser. Collects input into
   lines, and runs each complete line through a small state machine: the
   innermost open part is either reading headers or body, and every line
   starting with "--" is first checked against the boundaries of the open
   multiparts (innermost and longest first). Owns its line and header
   buffers and the stack of open parts; the part tree goes to the caller's
   pool. Input is fully untrusted: memory is bounded by max_line and the
   limits, and nothing recurses on input structure. */

#include "mime-parser.h"
#include "buf.h"
#include "message-lex.h"

#include <strings.h>

struct open_part {
	struct mime_part *part;
	char *boundary; /* multipart only, heap */
	size_t boundary_len;
	bool boundary_active; /* false in the epilogue */
	uint64_t body_lf; /* LFs before body_offset */
	/* The body does not end before its last closed child: the empty
	   line that ends a child's header may also be the line break that
	   belongs to the next boundary. */
	uint64_t min_end, min_end_lf;
};

struct mime_parser {
	pool_t pool;
	struct mime_limits limits;
	struct mime_result result;

	struct open_part *stack;
	unsigned int stack_count, stack_alloc;
	bool in_headers; /* the top of the stack is reading headers */

	uint64_t offset; /* octets fed */
	uint64_t lf_count; /* LFs before line_start */
	uint64_t line_start;
	uint64_t line_len; /* octets of the line so far, no LF */
	uint64_t line_nuls;
	uint8_t line_last; /* last octet of the line so far */
	unsigned int prev_term; /* terminator length of the previous line */
	struct buf line; /* at most max_line octets of the line */

	struct buf hdr; /* current header, unfolded, bounded */
	bool hdr_active;
};

void mime_limits_default(struct mime_limits *limits_r)
{
	limits_r->max_depth = MIME_LIMITS_DEFAULT_DEPTH;
	limits_r->max_parts = MIME_LIMITS_DEFAULT_PARTS;
	limits_r->max_headers = MIME_LIMITS_DEFAULT_HEADERS;
	limits_r->max_line = MIME_LIMITS_DEFAULT_LINE;
}

static struct open_part *top(struct mime_parser *p)
{
	return &p->stack[p->stack_count - 1];
}

static void push_part(struct mime_parser *p, struct mime_part *part)
{
	if (p->stack_count == p->stack_alloc) {
		p->stack_alloc = p->stack_alloc * 2 + 4;
		p->stack = i_realloc(p->stack, i_size_mul(p->stack_alloc,
							  sizeof(*p->stack)));
	}
	memset(&p->stack[p->stack_count], 0, sizeof(*p->stack));
	p->stack[p->stack_count++].part = part;
	p->in_headers = true;
}

static struct mime_part *new_part(struct mime_parser *p,
				  struct mime_part *parent, uint64_t offset)
{
	struct mime_part *part = p_new(p->pool, struct mime_part, 1);

	part->parent = parent;
	part->header_offset = offset;
	p->result.part_count++;
	if (parent != NULL) {
		struct mime_part **tail = &parent->children;

		part->depth = parent->depth + 1;
		/* Parts per parent are bounded by max_parts, and the tail
		   walk happens once per part: O(parts^2) worst case at
		   1000 parts is acceptable. */
		while (*tail != NULL)
			tail = &(*tail)->next;
		*tail = part;
		parent->child_count++;
	}
	return part;
}

struct mime_parser *mime_parser_create(pool_t pool,
				       const struct mime_limits *limits)
{
	struct mime_parser *p = i_new(struct mime_parser, 1);

	p->pool = pool;
	mime_limits_default(&p->limits);
	if (limits != NULL) {
		if (limits->max_depth > 0)
			p->limits.max_depth = limits->max_depth;
		if (limits->max_parts > 0)
			p->limits.max_parts = limits->max_parts;
		if (limits->max_headers > 0)
			p->limits.max_headers = limits->max_headers;
		if (limits->max_line > 0)
			p->limits.max_line = limits->max_line;
	}
	p->result.root = new_part(p, NULL, 0);
	p->result.root->envelope = p_new(pool, struct mime_envelope, 1);
	push_part(p, p->result.root);
	return p;
}

static const char *lower_token(pool_t pool, struct span s)
{
	char *str = message_lex_strdup(pool, s);

	for (size_t i = 0; str[i] != '\0'; i++) {
		if (str[i] >= 'A' && str[i] <= 'Z')
			str[i] = (char)(str[i] + 32);
	}
	return str;
}

/* RFC 2045 5.1: type "/" subtype *(";" parameter). */
static void parse_content_type(struct mime_parser *p, struct mime_part *part,
			       struct span value)
{
	struct span type, subtype;

	message_lex_skip_cfws(&value);
	if (!message_lex_token(&value, &type))
		return;
	message_lex_skip_cfws(&value);
	if (value.len == 0 || value.p[0] != '/')
		return;
	value = span_skip(value, 1);
	message_lex_skip_cfws(&value);
	if (!message_lex_token(&value, &subtype))
		return;
	part->type = lower_token(p->pool, type);
	part->subtype = lower_token(p->pool, subtype);
	part->type_raw = message_lex_strdup(p->pool, type);
	part->subtype_raw = message_lex_strdup(p->pool, subtype);
	part->content_type_given = true;
	part->param_count = rfc2231_parse(p->pool, value, &part->params);
}

/* RFC 2183 2: disposition-type *(";" disposition-parm). */
static void parse_content_disposition(struct mime_parser *p,
				      struct mime_part *part, struct span value)
{
	struct span type;

	message_lex_skip_cfws(&value);
	if (!message_lex_token(&value, &type))
		return;
	part->disposition = lower_token(p->pool, type);
	part->disposition_raw = message_lex_strdup(p->pool, type);
	part->disp_param_count =
		rfc2231_parse(p->pool, value, &part->disp_params);
}

static void set_once(struct mime_parser *p, const char **field,
		     struct span value)
{
	if (*field == NULL)
		*field = message_lex_strdup(p->pool, value);
}

static void flush_header(struct mime_parser *p)
{
	struct mime_part *part = top(p)->part;
	struct mime_envelope *env = part->envelope;
	struct span line = buf_span(&p->hdr), name, value;
	ssize_t colon;

	if (!p->hdr_active)
		return;
	p->hdr_active = false;
	colon = span_find_byte(line, ':');
	if (colon <= 0)
		return; /* no field name: counted, not interpreted */
	name = span_trim(span_make(line.p, (size_t)colon));
	value = span_trim(span_skip(line, (size_t)colon + 1));
	for (size_t i = 0; i < value.len; i++) {
		if (value.p[i] >= 0x80) {
			part->flags |= MIME_PART_FLAG_8BIT_HEADERS;
			break;
		}
	}

	/* RFC 2045 and RFC 2183 fields: the first occurrence counts.
	   MIME-Version is not required (Dovecot and most readers agree). */
	if (span_starts_with_ci(name, SPAN_LIT("Content-"))) {
		struct span n = span_skip(name, 8);

		if (span_eq_ci(n, SPAN_LIT("Type"))) {
			if (!part->content_type_given)
				parse_content_type(p, part, value);
		} else if (span_eq_ci(n, SPAN_LIT("Transfer-Encoding"))) {
			struct span tok, v = value;

			message_lex_skip_cfws(&v);
			if (part->encoding == NULL &&
			    message_lex_token(&v, &tok)) {
				part->encoding = lower_token(p->pool, tok);
				part->encoding_raw =
					message_lex_strdup(p->pool, tok);
			}
		} else if (span_eq_ci(n, SPAN_LIT("ID"))) {
			set_once(p, &part->id, value);
		} else if (span_eq_ci(n, SPAN_LIT("Description"))) {
			set_once(p, &part->description, value);
		} else if (span_eq_ci(n, SPAN_LIT("MD5"))) {
			set_once(p, &part->md5, value);
		} else if (span_eq_ci(n, SPAN_LIT("Disposition"))) {
			if (part->disposition == NULL)
				parse_content_disposition(p, part, value);
		} else if (span_eq_ci(n, SPAN_LIT("Language"))) {
			set_once(p, &part->language, value);
		} else if (span_eq_ci(n, SPAN_LIT("Location"))) {
			set_once(p, &part->location, value);
		}
		return;
	}
	if (env == NULL)
		return;
	/* RFC 5322 3.6: the fields ENVELOPE is made of. */
	if (span_eq_ci(name, SPAN_LIT("Date")))
		set_once(p, &env->date, value);
	else if (span_eq_ci(name, SPAN_LIT("Subject")))
		set_once(p, &env->subject, value);
	else if (span_eq_ci(name, SPAN_LIT("From")))
		set_once(p, &env->from, value);
	else if (span_eq_ci(name, SPAN_LIT("Sender")))
		set_once(p, &env->sender, value);
	else if (span_eq_ci(name, SPAN_LIT("Reply-To")))
		set_once(p, &env->reply_to, value);
	else if (span_eq_ci(name, SPAN_LIT("To")))
		set_once(p, &env->to, value);
	else if (span_eq_ci(name, SPAN_LIT("Cc")))
		set_once(p, &env->cc, value);
	else if (span_eq_ci(name, SPAN_LIT("Bcc")))
		set_once(p, &env->bcc, value);
	else if (span_eq_ci(name, SPAN_LIT("In-Reply-To")))
		set_once(p, &env->in_reply_to, value);
	else if (span_eq_ci(name, SPAN_LIT("Message-ID")))
		set_once(p, &env->message_id, value);
}

static bool is_parent_digest(const struct mime_part *part)
{
	const struct mime_part *parent = part->parent;

	return parent != NULL && (parent->flags & MIME_PART_FLAG_MULTIPART) &&
	       strcmp(parent->subtype, "digest") == 0;
}

static void part_set_defaults(struct mime_part *part)
{
	if (!part->content_type_given) {
		/* RFC 2045 5.2 and RFC 2046 5.1.5: the defaults. */
		if (is_parent_digest(part)) {
			part->type = "message";
			part->subtype = "rfc822";
		} else {
			part->type = "text";
			part->subtype = "plain";
		}
		part->param_count = 0;
		part->type_raw = part->type;
		part->subtype_raw = part->subtype;
	}
	if (strcmp(part->type, "text") == 0)
		part->flags |= MIME_PART_FLAG_TEXT;
}

static bool encoding_is_identity(const char *encoding)
{
	/* RFC 2046 5.2.1: message/rfc822 allows only these. */
	return encoding == NULL || strcmp(encoding, "7bit") == 0 ||
	       strcmp(encoding, "8bit") == 0 || strcmp(encoding, "binary") == 0;
}

static bool may_descend(struct mime_parser *p, struct mime_part *part)
{
	if (part->depth + 1 > p->limits.max_depth ||
	    p->result.part_count >= p->limits.max_parts) {
		part->flags |= MIME_PART_FLAG_OPAQUE;
		return false;
	}
	return true;
}

/* The empty line ending the header block has been read; the body starts
   at body_offset with body_lf LFs before it. */
static void end_headers(struct mime_parser *p, uint64_t body_offset,
			uint64_t body_lf)
{
	struct open_part *op = top(p);
	struct mime_part *part = op->part;
	const char *boundary;

	flush_header(p);
	p->in_headers = false;
	part->body_offset = body_offset;
	op->body_lf = body_lf;
	part_set_defaults(part);

	/* RFC 2045 6.4 allows a multipart only 7bit, 8bit or binary; one
	   that claims another encoding is split all the same, as Dovecot
	   and GMime do: its delimiters are there in plain text. */
	if (strcmp(part->type, "multipart") == 0) {
		boundary = NULL;
		for (unsigned int i = 0; i < part->param_count; i++) {
			if (strcmp(part->params[i].name, "boundary") == 0) {
				boundary = part->params[i].extended
						   ? part->params[i].value
						   : part->params[i].raw_value;
				break;
			}
		}
		/* RFC 2046 5.1.1: boundary := 0*69<bchars> bcharsnospace;
		   longer ones are accepted up to the line limit. */
		if (boundary == NULL || boundary[0] == '\0' ||
		    strlen(boundary) + 2 > p->limits.max_line ||
		    !may_descend(p, part))
			return;
		part->flags |= MIME_PART_FLAG_MULTIPART;
		op->boundary_len = strlen(boundary);
		op->boundary = i_strdup(boundary);
		op->boundary_active = true;
	} else if (strcmp(part->type, "message") == 0 &&
		   (strcmp(part->subtype, "rfc822") == 0 ||
		    strcmp(part->subtype, "global") == 0) &&
		   encoding_is_identity(part->encoding)) {
		/* RFC 2046 5.2.1 / RFC 6532 3.7: the body is a message; one
		   in base64 or quoted-printable is not parsed (an opaque
		   leaf), as GMime does; Dovecot reads the encoded text as a
		   header. */
		struct mime_part *child;

		if (!may_descend(p, part))
			return;
		part->flags |= MIME_PART_FLAG_MESSAGE;
		child = new_part(p, part, body_offset);
		child->envelope = p_new(p->pool, struct mime_envelope, 1);
		push_part(p, child);
		top(p)->body_lf = body_lf;
	}
}

/* Closes the top part so that its body ends at end (with end_lf LFs
   before it), or earlier content if the body started after end. */
static void close_top(struct mime_parser *p, uint64_t end, uint64_t end_lf)
{
	struct open_part *op = top(p);
	struct mime_part *part = op->part;

	if (p->in_headers) {
		flush_header(p);
		part->flags |= MIME_PART_FLAG_NO_HEADER_END;
		if (end < part->header_offset) {
			/* The header starts at the boundary line itself. */
			end = part->header_offset;
			end_lf = p->lf_count;
		}
		end_headers(p, end, end_lf);
		if (top(p) != op) {
			/* message/rfc822 pushed an empty child: close it. */
			close_top(p, end, end_lf);
			op = top(p);
		}
	}
	if (end < op->min_end) {
		end = op->min_end;
		end_lf = op->min_end_lf;
	}
	if (end <= part->body_offset) {
		part->body_end = part->body_offset;
		part->body_lines = 0;
	} else {
		part->body_end = end;
		part->body_lines = end_lf - op->body_lf;
	}
	if (p->stack_count > 1) {
		struct open_part *parent = &p->stack[p->stack_count - 2];

		parent->min_end = part->body_end;
		parent->min_end_lf = op->body_lf + part->body_lines;
	}
	if (op->boundary_active)
		part->flags |= MIME_PART_FLAG_NO_FINAL_BOUNDARY;
	p->result.flags |= part->flags;
	i_free(op->boundary);
	p->stack_count--;
	p->in_headers = false;
}

/* RFC 2046 5.1.1: a boundary line is "--" boundary, optionally "--" for
   the last one, then optional white space (transport padding). Anything
   else after the boundary means it is not a boundary line, so that
   "--b20" never closes a part with boundary "b2". Leniently, text after
   the closing "--" is ignored once the multipart has a part. Among
   matching boundaries, the longest wins, then the innermost. Returns the
   stack index or -1. */
static int match_boundary(struct mime_parser *p, struct span line,
			  bool *close_r)
{
	int best = -1;
	size_t best_len = 0;

	if (line.len < 3 || line.p[0] != '-' || line.p[1] != '-')
		return -1;
	line = span_skip(line, 2);
	for (int i = (int)p->stack_count - 1; i >= 0; i--) {
		const struct open_part *op = &p->stack[i];

		struct span rest;

		if (!op->boundary_active || op->boundary_len > line.len ||
		    op->boundary_len <= best_len ||
		    memcmp(line.p, op->boundary, op->boundary_len) != 0)
			continue;
		rest = span_skip(line, op->boundary_len);
		if (rest.len >= 2 && rest.p[0] == '-' && rest.p[1] == '-') {
			/* The lenient junk after "--" is not taken in the
			   preamble: RFC 2046 5.1.1 has no close-delimiter
			   before the first body part, and taking such a
			   line for one would lose every part. */
			if (op->part->child_count == 0 &&
			    span_trim(span_skip(rest, 2)).len > 0)
				continue;
		} else if (span_trim(rest).len > 0) {
			continue;
		}
		best = i;
		best_len = op->boundary_len;
	}
	if (best >= 0) {
		struct span rest = span_skip(line, best_len);

		*close_r =
			rest.len >= 2 && rest.p[0] == '-' && rest.p[1] == '-';
	}
	return best;
}

static void boundary_line(struct mime_parser *p, unsigned int idx, bool close,
			  uint64_t next)
{
	/* RFC 2046 5.1.1: the CRLF before the boundary belongs to it. */
	uint64_t end = p->line_start - p->prev_term;
	uint64_t end_lf = p->lf_count - (p->prev_term > 0 ? 1 : 0);
	struct open_part *op;

	while (p->stack_count > idx + 1)
		close_top(p, end, end_lf);
	op = top(p);
	p->in_headers = false;
	if (close) {
		op->boundary_active = false;
		return;
	}
	if (p->result.part_count >= p->limits.max_parts) {
		/* The rest of this multipart becomes its epilogue. */
		op->part->flags |= MIME_PART_FLAG_OPAQUE;
		op->boundary_active = false;
		return;
	}
	push_part(p, new_part(p, op->part, next));
}

static void header_line(struct mime_parser *p, struct span content,
			bool truncated)
{
	struct mime_part *part = top(p)->part;

	if (content.p[0] == ' ' || content.p[0] == '\t') {
		/* RFC 5322 2.2.3: unfolding removes the CRLF only. */
		if (p->hdr_active && p->hdr.used < p->limits.max_line) {
			size_t room = p->limits.max_line - p->hdr.used;

			if (content.len > room) {
				content.len = room;
				part->flags |= MIME_PART_FLAG_LONG_LINE;
			}
			buf_append_span(&p->hdr, content);
		}
		return;
	}
	flush_header(p);
	if (part->header_count >= p->limits.max_headers) {
		part->flags |= MIME_PART_FLAG_HEADERS_TRUNCATED;
		return;
	}
	part->header_count++;
	buf_reset(&p->hdr);
	buf_append_span(&p->hdr, content);
	p->hdr_active = true;
	if (truncated)
		part->flags |= MIME_PART_FLAG_LONG_LINE;
}

/* Handles one line: line_len octets at line_start, then term (0 at the end
   of input, 1 for LF, 2 for CRLF) terminator octets. */
static void process_line(struct mime_parser *p, unsigned int term)
{
	uint64_t content_len = p->line_len - (term == 2 ? 1 : 0);
	uint64_t next = p->line_start + p->line_len + (term > 0 ? 1 : 0);
	struct span content = buf_span(&p->line);
	bool truncated = content_len > content.len, close;
	int idx;

	if (content.len > content_len)
		content.len = (size_t)content_len;
	if (p->line_nuls > 0) {
		top(p)->part->nul_count += p->line_nuls;
		top(p)->part->flags |= MIME_PART_FLAG_HAS_NUL;
	}

	idx = match_boundary(p, content, &close);
	if (idx >= 0) {
		boundary_line(p, (unsigned int)idx, close, next);
	} else if (p->in_headers) {
		if (content_len == 0) {
			/* RFC 5322 2.1: an empty line ends the header. */
			end_headers(p, next, p->lf_count + (term > 0 ? 1 : 0));
		} else {
			header_line(p, content, truncated);
		}
	}
	p->prev_term = term;
	if (term > 0)
		p->lf_count++;
	p->line_start = next;
	p->line_len = 0;
	p->line_nuls = 0;
	p->line_last = 0;
	buf_reset(&p->line);
}

void mime_parser_feed(struct mime_parser *p, const void *data, size_t size)
{
	const uint8_t *d = data;

	while (size > 0) {
		const uint8_t *lf = memchr(d, '\n', size);
		size_t n = lf != NULL ? (size_t)(lf - d) : size;
		size_t room = p->limits.max_line > p->line.used
				      ? p->limits.max_line - p->line.used
				      : 0;

		buf_append(&p->line, d, n < room ? n : room);
		for (size_t i = 0; i < n; i++) {
			if (d[i] == '\0')
				p->line_nuls++;
		}
		if (n > 0)
			p->line_last = d[n - 1];
		p->line_len += n;
		p->offset += n;
		if (lf == NULL)
			break;
		p->offset++;
		process_line(p,
			     p->line_last == '\r' && p->line_len > 0 ? 2 : 1);
		d += n + 1;
		size -= n + 1;
	}
}

static void parser_free(struct mime_parser *p)
{
	for (unsigned int i = 0; i < p->stack_count; i++)
		i_free(p->stack[i].boundary);
	i_free(p->stack);
	buf_free(&p->line);
	buf_free(&p->hdr);
	i_free(p);
}

void mime_parser_finish(struct mime_parser **_p, struct mime_result *result_r)
{
	struct mime_parser *p = *_p;

	*_p = NULL;
	if (p->line_len > 0)
		process_line(p, 0);
	p->prev_term = 0;
	while (p->stack_count > 0)
		close_top(p, p->offset, p->lf_count);
	p->result.size = p->offset;
	p->result.lines = p->lf_count;
	*result_r = p->result;
	parser_free(p);
}

void mime_parser_destroy(struct mime_parser **_p)
{
	struct mime_parser *p = *_p;

	if (p == NULL)
		return;
	*_p = NULL;
	parser_free(p);
}

void mime_parse(pool_t pool, const struct mime_limits *limits, const void *data,
		size_t size, struct mime_result *result_r)
{
	struct mime_parser *p = mime_parser_create(pool, limits);

	mime_parser_feed(p, data, size);
	mime_parser_finish(&p, result_r);
}

struct mime_part *mime_part_find(struct mime_part *root, const char *section)
{
	struct mime_part *part = root;
	const char *s = section;
	bool first = true;

	while (*s != '\0') {
		unsigned long n = 0;

		if (*s < '0' || *s > '9')
			return NULL;
		while (*s >= '0' && *s <= '9') {
			n = n * 10 + (unsigned long)(*s - '0');
			if (n > 1000000)
				return NULL;
			s++;
		}
		if (*s == '.')
			s++;
		else if (*s != '\0')
			return NULL;
		if (n == 0)
			return NULL;
		/* RFC 9051 6.4.5: numbers after a message/rfc822 part
		   address the parts of the message inside it. */
		if (!first) {
			if ((part->flags & MIME_PART_FLAG_MESSAGE) != 0)
				part = part->children;
			else if ((part->flags & MIME_PART_FLAG_MULTIPART) == 0)
				return NULL;
		}
		first = false;
		if ((part->flags & MIME_PART_FLAG_MULTIPART) != 0) {
			part = part->children;
			while (part != NULL && --n > 0)
				part = part->next;
			if (part == NULL)
				return NULL;
		} else if (n != 1) {
			return NULL;
		}
	}
	return part;
}
