/* message-address.c - lenient RFC 5322 3.4 address-list parser. Splits the
   header value into tokens (atoms, quoted strings, comments, domain
   literals, specials), then reads mailboxes and groups from the token
   array. Owns nothing after returning; results live in the caller's pool.
   Input is untrusted: the token array is bounded by the input length and
   no step recurses. */

#include "message-address.h"
#include "buf.h"
#include "message-lex.h"

enum token_kind {
	TOKEN_ATOM,
	TOKEN_QUOTED,
	TOKEN_COMMENT,
	TOKEN_LITERAL,
	TOKEN_SPECIAL,
};

struct token {
	enum token_kind kind;
	uint8_t special;
	size_t start, len; /* text in the token buf */
};

struct tokens {
	struct token *t;
	size_t count, alloc;
	struct buf text;
};

static void token_add(struct tokens *tk, enum token_kind kind, uint8_t sp,
		      size_t start)
{
	if (tk->count == tk->alloc) {
		tk->alloc = tk->alloc == 0 ? 16 : i_size_mul(tk->alloc, 2);
		tk->t = i_realloc(tk->t, i_size_mul(tk->alloc, sizeof(*tk->t)));
	}
	tk->t[tk->count++] =
		(struct token){ kind, sp, start, tk->text.used - start };
}

static void tokenize(struct tokens *tk, struct span s)
{
	while (s.len > 0) {
		uint8_t c = s.p[0];
		size_t start = tk->text.used;
		struct span atom;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			s = span_skip(s, 1);
		} else if (c == '(') {
			message_lex_comment(&s, &tk->text);
			token_add(tk, TOKEN_COMMENT, 0, start);
		} else if (c == '"') {
			message_lex_quoted(&s, &tk->text);
			token_add(tk, TOKEN_QUOTED, 0, start);
		} else if (c == '[') {
			/* RFC 5322 3.4.1: domain-literal, kept verbatim. */
			ssize_t end = span_find_byte(s, ']');
			size_t n = end < 0 ? s.len : (size_t)end + 1;

			buf_append(&tk->text, s.p, n);
			s = span_skip(s, n);
			token_add(tk, TOKEN_LITERAL, 0, start);
		} else if (message_lex_atom(&s, &atom)) {
			buf_append_span(&tk->text, atom);
			token_add(tk, TOKEN_ATOM, 0, start);
		} else {
			/* specials: ( ) < > [ ] : ; @ \ , . and controls */
			s = span_skip(s, 1);
			token_add(tk, TOKEN_SPECIAL, c, start);
		}
	}
}

static struct span token_text(const struct tokens *tk, size_t i)
{
	return span_make(buf_span(&tk->text).p + tk->t[i].start, tk->t[i].len);
}

static bool is_special(const struct tokens *tk, size_t i, uint8_t c)
{
	return i < tk->count && tk->t[i].kind == TOKEN_SPECIAL &&
	       tk->t[i].special == c;
}

/* RFC 5322 3.2.5 phrase / obs-phrase: words joined by one space, "." kept
   without one before it. Returns NULL for an empty phrase. */
static const char *phrase(pool_t pool, const struct tokens *tk, size_t from,
			  size_t to)
{
	struct buf out = BUF_INIT;
	const char *ret;
	bool first = true;

	for (size_t i = from; i < to; i++) {
		const struct token *t = &tk->t[i];

		if (t->kind == TOKEN_COMMENT)
			continue;
		if (!first && !(t->kind == TOKEN_SPECIAL && t->special == '.'))
			buf_append_c(&out, ' ');
		if (t->kind == TOKEN_SPECIAL)
			buf_append_c(&out, t->special);
		else
			buf_append_span(&out, token_text(tk, i));
		first = false;
	}
	ret = first ? NULL : message_lex_strdup(pool, buf_span(&out));
	buf_free(&out);
	return ret;
}

/* RFC 5322 3.4.1 addr-spec (and obs-local-part/obs-domain): tokens before
   the last "@" are the local part, after it the domain; comments and
   white space are dropped. */
static void addr_spec(pool_t pool, const struct tokens *tk, size_t from,
		      size_t to, struct message_address *addr)
{
	struct buf local = BUF_INIT, domain = BUF_INIT;
	size_t at = to;

	for (size_t i = from; i < to; i++) {
		if (is_special(tk, i, '@'))
			at = i;
	}
	for (size_t i = from; i < to; i++) {
		const struct token *t = &tk->t[i];
		struct buf *dest = i < at ? &local : &domain;

		if (t->kind == TOKEN_COMMENT || i == at)
			continue;
		if (t->kind == TOKEN_SPECIAL)
			buf_append_c(dest, t->special);
		else
			buf_append_span(dest, token_text(tk, i));
	}
	if (local.used == 0) {
		addr->mailbox = MESSAGE_ADDRESS_MISSING_MAILBOX;
		addr->invalid = true;
	} else {
		addr->mailbox = message_lex_strdup(pool, buf_span(&local));
	}
	if (domain.used == 0) {
		addr->domain = MESSAGE_ADDRESS_MISSING_DOMAIN;
		addr->invalid = true;
	} else {
		addr->domain = message_lex_strdup(pool, buf_span(&domain));
	}
	buf_free(&local);
	buf_free(&domain);
}

struct address_list {
	struct message_address *head, **tail;
	unsigned int count, max;
};

static struct message_address *list_add(pool_t pool, struct address_list *list)
{
	struct message_address *addr;

	if (list->count >= list->max)
		return NULL;
	addr = p_new(pool, struct message_address, 1);
	*list->tail = addr;
	list->tail = &addr->next;
	list->count++;
	return addr;
}

struct message_address *message_address_parse(pool_t pool, struct span input,
					      unsigned int max_addresses)
{
	struct tokens tk = { NULL, 0, 0, BUF_INIT };
	struct address_list list = { NULL, NULL, 0, max_addresses };
	struct message_address *addr;
	bool in_group = false;
	size_t i = 0;

	list.tail = &list.head;
	tokenize(&tk, input);
	while (i < tk.count) {
		size_t j, last_comment = SIZE_MAX;

		if (is_special(&tk, i, ',')) {
			i++;
			continue;
		}
		if (is_special(&tk, i, ';')) {
			/* RFC 5322 3.4: group ends at ";" */
			if (in_group && list_add(pool, &list) == NULL)
				break;
			in_group = false;
			i++;
			continue;
		}
		for (j = i; j < tk.count; j++) {
			if (tk.t[j].kind == TOKEN_COMMENT)
				last_comment = j;
			if (is_special(&tk, j, '<') ||
			    is_special(&tk, j, ',') ||
			    is_special(&tk, j, ';') ||
			    (!in_group && is_special(&tk, j, ':')))
				break;
		}
		if (is_special(&tk, j, ':')) {
			/* RFC 5322 3.4: group = display-name ":" ... */
			addr = list_add(pool, &list);
			if (addr == NULL)
				break;
			addr->mailbox = phrase(pool, &tk, i, j);
			if (addr->mailbox == NULL)
				addr->mailbox = "";
			in_group = true;
			i = j + 1;
			continue;
		}
		if (is_special(&tk, j, '<')) {
			/* RFC 5322 3.4: name-addr = [display-name]
			   angle-addr; RFC 5322 4.4 obs-route before it. */
			size_t k = j + 1, spec_start, route_end = SIZE_MAX;

			addr = list_add(pool, &list);
			if (addr == NULL)
				break;
			addr->name = phrase(pool, &tk, i, j);
			if (is_special(&tk, k, '@')) {
				for (size_t m = k;
				     m < tk.count && !is_special(&tk, m, '>');
				     m++) {
					if (is_special(&tk, m, ':')) {
						route_end = m;
						break;
					}
				}
			}
			if (route_end != SIZE_MAX) {
				struct buf route = BUF_INIT;

				for (size_t m = k; m < route_end; m++) {
					if (tk.t[m].kind == TOKEN_COMMENT)
						continue;
					if (tk.t[m].kind == TOKEN_SPECIAL)
						buf_append_c(&route,
							     tk.t[m].special);
					else
						buf_append_span(
							&route,
							token_text(&tk, m));
				}
				addr->route = message_lex_strdup(
					pool, buf_span(&route));
				buf_free(&route);
				k = route_end + 1;
			}
			spec_start = k;
			while (k < tk.count && !is_special(&tk, k, '>'))
				k++;
			addr_spec(pool, &tk, spec_start, k, addr);
			/* Anything up to the next "," or ";" is junk. */
			while (k < tk.count && !is_special(&tk, k, ',') &&
			       !is_special(&tk, k, ';'))
				k++;
			i = k;
			continue;
		}
		/* A bare addr-spec; a comment in it serves as the name. */
		if (j == i || (j == i + 1 && tk.t[i].kind == TOKEN_COMMENT)) {
			i = j;
			continue;
		}
		addr = list_add(pool, &list);
		if (addr == NULL)
			break;
		addr_spec(pool, &tk, i, j, addr);
		if (last_comment != SIZE_MAX) {
			struct span c = token_text(&tk, last_comment);

			if (c.len > 0)
				addr->name = message_lex_strdup(pool, c);
		}
		i = j;
	}
	/* A group missing its ";" is closed anyway. */
	if (in_group)
		(void)list_add(pool, &list);
	i_free(tk.t);
	buf_free(&tk.text);
	return list.head;
}
