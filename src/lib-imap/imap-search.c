/* imap-search.c - the SEARCH program parser (see imap-search.h). */

#include "lib.h"
#include "imap-search.h"
#include "buf.h"
#include "charset.h"
#include "pool.h"
#include "span.h"

#include <strings.h>

struct search_parser {
	pool_t pool;
	struct imap_search_program *prog;
	const struct imap_arg *args;
	unsigned int count, idx;
	/* CHARSET US-ASCII: strings must be ASCII. */
	bool ascii;
	unsigned int costly;
	const char *error;
};

static const struct {
	const char *name;
	enum imap_search_return bit;
} return_opts[] = {
	{ "MIN", IMAP_SEARCH_RETURN_MIN },
	{ "MAX", IMAP_SEARCH_RETURN_MAX },
	{ "ALL", IMAP_SEARCH_RETURN_ALL },
	{ "COUNT", IMAP_SEARCH_RETURN_COUNT },
	{ "SAVE", IMAP_SEARCH_RETURN_SAVE },
};

/* Keys without an argument that test a system flag; the UN- forms are
   NOT of them. */
static const struct {
	const char *name;
	uint32_t flag;
	bool negate;
} flag_keys[] = {
	{ "ANSWERED", IMAP_SEARCH_FLAG_ANSWERED, false },
	{ "DELETED", IMAP_SEARCH_FLAG_DELETED, false },
	{ "DRAFT", IMAP_SEARCH_FLAG_DRAFT, false },
	{ "FLAGGED", IMAP_SEARCH_FLAG_FLAGGED, false },
	{ "SEEN", IMAP_SEARCH_FLAG_SEEN, false },
	{ "UNANSWERED", IMAP_SEARCH_FLAG_ANSWERED, true },
	{ "UNDELETED", IMAP_SEARCH_FLAG_DELETED, true },
	{ "UNDRAFT", IMAP_SEARCH_FLAG_DRAFT, true },
	{ "UNFLAGGED", IMAP_SEARCH_FLAG_FLAGGED, true },
	{ "UNSEEN", IMAP_SEARCH_FLAG_SEEN, true },
};

static const struct {
	const char *name;
	enum imap_search_text_field field;
} text_keys[] = {
	{ "BCC", IMAP_SEARCH_TEXT_BCC },
	{ "BODY", IMAP_SEARCH_TEXT_BODY },
	{ "CC", IMAP_SEARCH_TEXT_CC },
	{ "FROM", IMAP_SEARCH_TEXT_FROM },
	{ "SUBJECT", IMAP_SEARCH_TEXT_SUBJECT },
	{ "TEXT", IMAP_SEARCH_TEXT_TEXT },
	{ "TO", IMAP_SEARCH_TEXT_TO },
};

static const struct {
	const char *name;
	enum imap_search_date_field field;
	enum imap_search_date_op op;
} date_keys[] = {
	{ "BEFORE", IMAP_SEARCH_DATE_INTERNAL, IMAP_SEARCH_DATE_BEFORE },
	{ "ON", IMAP_SEARCH_DATE_INTERNAL, IMAP_SEARCH_DATE_ON },
	{ "SINCE", IMAP_SEARCH_DATE_INTERNAL, IMAP_SEARCH_DATE_SINCE },
	{ "SENTBEFORE", IMAP_SEARCH_DATE_SENT, IMAP_SEARCH_DATE_BEFORE },
	{ "SENTON", IMAP_SEARCH_DATE_SENT, IMAP_SEARCH_DATE_ON },
	{ "SENTSINCE", IMAP_SEARCH_DATE_SENT, IMAP_SEARCH_DATE_SINCE },
	/* RFC 8514 4 */
	{ "SAVEDBEFORE", IMAP_SEARCH_DATE_SAVED, IMAP_SEARCH_DATE_BEFORE },
	{ "SAVEDON", IMAP_SEARCH_DATE_SAVED, IMAP_SEARCH_DATE_ON },
	{ "SAVEDSINCE", IMAP_SEARCH_DATE_SAVED, IMAP_SEARCH_DATE_SINCE },
};

static const char *const months[12] = { "Jan", "Feb", "Mar", "Apr",
					"May", "Jun", "Jul", "Aug",
					"Sep", "Oct", "Nov", "Dec" };

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
   (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned int m, unsigned int d)
{
	int64_t era;
	unsigned int yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned int)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static unsigned int days_in_month(unsigned int year, unsigned int month)
{
	static const unsigned char days[12] = { 31, 28, 31, 30, 31, 30,
						31, 31, 30, 31, 30, 31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : days[month - 1];
}

/* RFC 9051 9: date-text = date-day "-" date-month "-" date-year,
   date-day = 1*2DIGIT, date-year = 4DIGIT. */
bool imap_search_parse_date(const char *str, int64_t *day_r)
{
	unsigned int day = 0, month = 0, year = 0, i, n;

	for (n = 0; n < 2 && str[n] >= '0' && str[n] <= '9'; n++)
		day = day * 10 + (unsigned int)(str[n] - '0');
	if (n == 0 || str[n] != '-')
		return false;
	str += n + 1;
	for (i = 0; i < N_ELEMENTS(months); i++) {
		if (strncasecmp(str, months[i], 3) == 0)
			break;
	}
	if (i == N_ELEMENTS(months) || str[3] != '-')
		return false;
	month = i + 1;
	str += 4;
	for (n = 0; n < 4 && str[n] >= '0' && str[n] <= '9'; n++)
		year = year * 10 + (unsigned int)(str[n] - '0');
	if (n != 4 || str[n] != '\0')
		return false;
	if (day == 0 || day > days_in_month(year, month))
		return false;
	*day_r = days_from_civil(year, month, day);
	return true;
}

static struct imap_search_key *key_new(struct search_parser *p,
				       enum imap_search_key_type type)
{
	struct imap_search_key *key = p_malloc(p->pool, sizeof(*key));

	key->type = type;
	p->prog->key_count++;
	return key;
}

static struct imap_search_key *negate(struct search_parser *p,
				      struct imap_search_key *key)
{
	struct imap_search_key *neg = key_new(p, IMAP_SEARCH_NOT);

	neg->child = key;
	return neg;
}

static bool fail(struct search_parser *p, const char *error)
{
	if (p->error == NULL)
		p->error = error;
	return false;
}

static const struct imap_arg *next_arg(struct search_parser *p,
				       const char *what)
{
	if (p->idx >= p->count) {
		(void)fail(p, what);
		return NULL;
	}
	return &p->args[p->idx++];
}

/* An astring argument, checked to be text in the program's charset. */
static bool get_string(struct search_parser *p, const char *key,
		       const char **str_r)
{
	const struct imap_arg *arg = next_arg(p, "Missing search string");
	const char *str;

	if (arg == NULL)
		return false;
	if (!imap_arg_get_astring(arg, &str) || strlen(str) != arg->len)
		return fail(p, p_strdup_printf(p->pool, "Bad string after %s",
					       key));
	if (p->ascii) {
		for (size_t i = 0; i < arg->len; i++) {
			if ((unsigned char)str[i] >= 0x80)
				return fail(p, "8-bit string with CHARSET "
					       "US-ASCII");
		}
	} else if (!charset_utf8_is_valid(span_make(str, arg->len))) {
		return fail(p, "Search string is not valid UTF-8");
	}
	*str_r = str;
	return true;
}

static bool get_atom(struct search_parser *p, const char *what,
		     const char **str_r)
{
	const struct imap_arg *arg = next_arg(p, what);

	if (arg == NULL)
		return false;
	if (!imap_arg_get_atom(arg, str_r))
		return fail(p, what);
	return true;
}

static bool get_number(struct search_parser *p, const char *key, uint64_t max,
		       bool nonzero, uint64_t *num_r)
{
	const char *str;
	const char *what = p_strdup_printf(p->pool, "Bad number after %s", key);

	if (!get_atom(p, what, &str))
		return false;
	if (span_to_u64(span_from_cstr(str), max, num_r) < 0 ||
	    (nonzero && *num_r == 0))
		return fail(p, what);
	return true;
}

/* RFC 9051 9 date = date-text / DQUOTE date-text DQUOTE */
static bool get_date(struct search_parser *p, const char *key, int64_t *day_r)
{
	const struct imap_arg *arg = next_arg(p, "Missing date");

	if (arg == NULL)
		return false;
	if ((arg->type != IMAP_ARG_ATOM && arg->type != IMAP_ARG_QUOTED) ||
	    !imap_search_parse_date(arg->str, day_r))
		return fail(p,
			    p_strdup_printf(p->pool, "Bad date after %s", key));
	return true;
}

/* RFC 9051 9 flag-keyword = "$MDNSent" / "$Forwarded" / ... / atom:
   an atom without the flag-special characters. */
static bool get_keyword(struct search_parser *p, const char *key,
			const char **str_r)
{
	const char *str;
	const char *what =
		p_strdup_printf(p->pool, "Bad keyword after %s", key);

	if (!get_atom(p, what, &str))
		return false;
	if (str[0] == '\\' || strpbrk(str, "%*]") != NULL)
		return fail(p, what);
	*str_r = str;
	return true;
}

/* RFC 8474 5 objectid */
static bool get_objectid(struct search_parser *p, const char *key,
			 const char **str_r)
{
	const char *what =
		p_strdup_printf(p->pool, "Bad object id after %s", key);
	const struct imap_arg *arg = next_arg(p, what);
	const char *str;
	size_t i;

	if (arg == NULL || !imap_arg_get_astring(arg, &str))
		return fail(p, what);
	if (arg->len == 0 || arg->len > IMAP_SEARCH_OBJECTID_MAX)
		return fail(p, what);
	for (i = 0; i < arg->len; i++) {
		char c = str[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return fail(p, what);
	}
	*str_r = str;
	return true;
}

/* RFC 9051 9 header-fld-name = astring, and RFC 5322 2.2 field-name =
   1*ftext (printable ASCII except ":"). */
static bool get_header_name(struct search_parser *p, const char **str_r)
{
	const struct imap_arg *arg = next_arg(p, "Missing header name");
	const char *str;
	size_t i;

	if (arg == NULL)
		return false;
	if (!imap_arg_get_astring(arg, &str) || arg->len == 0)
		return fail(p, "Bad header name");
	for (i = 0; i < arg->len; i++) {
		if (str[i] <= ' ' || str[i] >= 0x7f || str[i] == ':')
			return fail(p, "Bad header name");
	}
	*str_r = str;
	return true;
}

static bool costly(struct search_parser *p)
{
	if (++p->costly > IMAP_SEARCH_MAX_COSTLY)
		return fail(p, "Too many text, header or sent-date keys");
	return true;
}

static bool parse_key(struct search_parser *p, unsigned int depth,
		      struct imap_search_key **key_r);

/* Parses keys until the end of args, as children of an AND node. */
static bool parse_and(struct search_parser *p, unsigned int depth,
		      struct imap_search_key **key_r)
{
	struct imap_search_key *all = key_new(p, IMAP_SEARCH_AND);
	struct imap_search_key **tail = &all->child;

	if (p->idx >= p->count)
		return fail(p, "Missing search key");
	while (p->idx < p->count) {
		if (!parse_key(p, depth + 1, tail))
			return false;
		tail = &(*tail)->next;
	}
	*key_r = all;
	return true;
}

/* RFC 7162 3.1.5: "MODSEQ" [search-modsequence-ext] SP mod-sequence-valzer
   where search-modsequence-ext = SP entry-name SP entry-type-req,
   entry-name = DQUOTE "/flags/" attr-flag DQUOTE and entry-type-req =
   "priv" / "shared" / "all". The entry only narrows which flag's modseq
   is meant; we keep one modseq per message, so it is checked and
   ignored (as RFC 7162 3.1.5 allows for servers without per-flag
   modseqs). */
static bool parse_modseq(struct search_parser *p, struct imap_search_key *key)
{
	const struct imap_arg *arg;
	const char *type;

	if (p->idx < p->count && p->args[p->idx].type == IMAP_ARG_QUOTED) {
		arg = &p->args[p->idx++];
		if (strncasecmp(arg->str, "/flags/", 7) != 0 ||
		    arg->str[7] == '\0')
			return fail(p, "Bad MODSEQ entry name");
		if (!get_atom(p, "Bad MODSEQ entry type", &type))
			return false;
		if (strcasecmp(type, "priv") != 0 &&
		    strcasecmp(type, "shared") != 0 &&
		    strcasecmp(type, "all") != 0)
			return fail(p, "Bad MODSEQ entry type");
	}
	/* mod-sequence-valzer = "0" / mod-sequence-value (< 2^63) */
	if (!get_number(p, "MODSEQ", INT64_MAX, false, &key->number))
		return false;
	p->prog->modseq = true;
	p->prog->need_rows = true;
	return true;
}

static bool parse_key(struct search_parser *p, unsigned int depth,
		      struct imap_search_key **key_r)
{
	const struct imap_arg *arg;
	struct imap_search_key *key;
	const char *name;
	unsigned int i;

	if (depth > IMAP_SEARCH_MAX_DEPTH)
		return fail(p, "Search program nested too deeply");
	if (p->prog->key_count >= IMAP_SEARCH_MAX_KEYS)
		return fail(p, "Too many search keys");
	arg = next_arg(p, "Missing search key");
	if (arg == NULL)
		return false;

	if (arg->type == IMAP_ARG_LIST) {
		/* RFC 9051 9: "(" search-key *(SP search-key) ")" */
		struct search_parser sub = *p;

		if (arg->list_count == 0)
			return fail(p, "Empty search key list");
		sub.args = arg->list;
		sub.count = arg->list_count;
		sub.idx = 0;
		if (!parse_and(&sub, depth, key_r)) {
			p->error = sub.error;
			return false;
		}
		p->costly = sub.costly;
		return true;
	}
	if (!imap_arg_get_atom(arg, &name))
		return fail(p, "Search key is not an atom");

	/* A sequence set (RFC 9051 9 search-key =/ sequence-set) starts with
	   a digit, "*" or "$"; no key name does. */
	if ((name[0] >= '0' && name[0] <= '9') || name[0] == '*' ||
	    name[0] == '$') {
		key = key_new(p, IMAP_SEARCH_SEQSET);
		if (imap_seqset_parse(p->pool, name, true, &key->seqset,
				      &p->error) < 0)
			return false;
		if (key->seqset.searchres)
			p->prog->uses_searchres = true;
		*key_r = key;
		return true;
	}

	for (i = 0; i < N_ELEMENTS(flag_keys); i++) {
		if (strcasecmp(name, flag_keys[i].name) != 0)
			continue;
		key = key_new(p, IMAP_SEARCH_FLAG);
		key->flag = flag_keys[i].flag;
		p->prog->need_rows = true;
		if (flag_keys[i].negate)
			key = negate(p, key);
		*key_r = key;
		return true;
	}
	for (i = 0; i < N_ELEMENTS(text_keys); i++) {
		if (strcasecmp(name, text_keys[i].name) != 0)
			continue;
		key = key_new(p, IMAP_SEARCH_TEXT);
		key->text_field = text_keys[i].field;
		if (!costly(p) || !get_string(p, text_keys[i].name, &key->str))
			return false;
		p->prog->need_text = true;
		*key_r = key;
		return true;
	}
	for (i = 0; i < N_ELEMENTS(date_keys); i++) {
		if (strcasecmp(name, date_keys[i].name) != 0)
			continue;
		key = key_new(p, IMAP_SEARCH_DATE);
		key->date_field = date_keys[i].field;
		key->date_op = date_keys[i].op;
		if (!get_date(p, date_keys[i].name, &key->day))
			return false;
		p->prog->need_rows = true;
		if (key->date_field == IMAP_SEARCH_DATE_SENT) {
			if (!costly(p))
				return false;
			p->prog->need_sent = true;
		}
		*key_r = key;
		return true;
	}

	if (strcasecmp(name, "ALL") == 0) {
		key = key_new(p, IMAP_SEARCH_ALL);
	} else if (strcasecmp(name, "SAVEDATESUPPORTED") == 0) {
		/* RFC 8514 4: every message of a mailbox that keeps save
		   dates; ours all do. */
		key = key_new(p, IMAP_SEARCH_ALL);
	} else if (strcasecmp(name, "RECENT") == 0) {
		key = key_new(p, IMAP_SEARCH_RECENT);
	} else if (strcasecmp(name, "NEW") == 0) {
		/* RFC 3501 6.4.4: NEW = RECENT UNSEEN */
		struct imap_search_key *seen;

		key = key_new(p, IMAP_SEARCH_AND);
		key->child = key_new(p, IMAP_SEARCH_RECENT);
		seen = key_new(p, IMAP_SEARCH_FLAG);
		seen->flag = IMAP_SEARCH_FLAG_SEEN;
		key->child->next = negate(p, seen);
		p->prog->need_rows = true;
	} else if (strcasecmp(name, "OLD") == 0) {
		/* RFC 3501 6.4.4: OLD = NOT RECENT */
		key = negate(p, key_new(p, IMAP_SEARCH_RECENT));
	} else if (strcasecmp(name, "KEYWORD") == 0 ||
		   strcasecmp(name, "UNKEYWORD") == 0) {
		key = key_new(p, IMAP_SEARCH_KEYWORD);
		if (!get_keyword(p, name, &key->str))
			return false;
		p->prog->need_rows = true;
		if (strcasecmp(name, "UNKEYWORD") == 0)
			key = negate(p, key);
	} else if (strcasecmp(name, "LARGER") == 0 ||
		   strcasecmp(name, "SMALLER") == 0) {
		bool larger = strcasecmp(name, "LARGER") == 0;

		key = key_new(p, larger ? IMAP_SEARCH_LARGER
					: IMAP_SEARCH_SMALLER);
		/* RFC 9051 9 number64 */
		if (!get_number(p, name, INT64_MAX, false, &key->number))
			return false;
		p->prog->need_rows = true;
	} else if (strcasecmp(name, "OLDER") == 0 ||
		   strcasecmp(name, "YOUNGER") == 0) {
		bool older = strcasecmp(name, "OLDER") == 0;

		key = key_new(p,
			      older ? IMAP_SEARCH_OLDER : IMAP_SEARCH_YOUNGER);
		/* RFC 5032 4: nz-number (seconds) */
		if (!get_number(p, name, UINT32_MAX, true, &key->number))
			return false;
		p->prog->need_rows = true;
	} else if (strcasecmp(name, "HEADER") == 0) {
		key = key_new(p, IMAP_SEARCH_HEADER);
		if (!costly(p) || !get_header_name(p, &key->header) ||
		    !get_string(p, "HEADER", &key->str))
			return false;
		p->prog->need_rows = true;
		p->prog->need_headers = true;
	} else if (strcasecmp(name, "UID") == 0) {
		const char *set;

		key = key_new(p, IMAP_SEARCH_UIDSET);
		if (!get_atom(p, "Bad sequence set after UID", &set))
			return false;
		if (imap_seqset_parse(p->pool, set, true, &key->seqset,
				      &p->error) < 0)
			return false;
		if (key->seqset.searchres)
			p->prog->uses_searchres = true;
	} else if (strcasecmp(name, "NOT") == 0) {
		key = key_new(p, IMAP_SEARCH_NOT);
		if (!parse_key(p, depth + 1, &key->child))
			return false;
	} else if (strcasecmp(name, "OR") == 0) {
		key = key_new(p, IMAP_SEARCH_OR);
		if (!parse_key(p, depth + 1, &key->child) ||
		    !parse_key(p, depth + 1, &key->child->next))
			return false;
	} else if (strcasecmp(name, "MODSEQ") == 0) {
		key = key_new(p, IMAP_SEARCH_MODSEQ);
		if (!parse_modseq(p, key))
			return false;
	} else if (strcasecmp(name, "EMAILID") == 0 ||
		   strcasecmp(name, "THREADID") == 0) {
		bool email = strcasecmp(name, "EMAILID") == 0;

		key = key_new(p, email ? IMAP_SEARCH_EMAILID
				       : IMAP_SEARCH_THREADID);
		if (!get_objectid(p, name, &key->str))
			return false;
		p->prog->need_rows = true;
	} else {
		return fail(p,
			    p_strdup_printf(p->pool, "Unknown search key %.32s",
					    name));
	}
	*key_r = key;
	return true;
}

/* RFC 9051 6.4.4.1 / RFC 4731 3.1: "RETURN" SP "(" [search-return-opt
 *(SP search-return-opt)] ")". */
static bool parse_return(struct search_parser *p)
{
	const struct imap_arg *list;
	unsigned int count, i, j;
	const char *name;

	if (p->idx >= p->count ||
	    !imap_arg_get_list(&p->args[p->idx], &list, &count))
		return fail(p, "RETURN needs a list");
	p->idx++;
	p->prog->esearch = true;
	for (i = 0; i < count; i++) {
		if (!imap_arg_get_atom(&list[i], &name))
			return fail(p, "Bad RETURN option");
		for (j = 0; j < N_ELEMENTS(return_opts); j++) {
			if (strcasecmp(name, return_opts[j].name) == 0)
				break;
		}
		if (j == N_ELEMENTS(return_opts))
			return fail(p, "Unknown RETURN option");
		p->prog->returns |= return_opts[j].bit;
	}
	/* RFC 4731 3.1: "RETURN ()" is RETURN (ALL). */
	if (count == 0)
		p->prog->returns = IMAP_SEARCH_RETURN_ALL;
	return true;
}

enum imap_search_result imap_search_parse(struct pool *pool,
					  const struct imap_arg *args,
					  unsigned int count,
					  struct imap_search_program *prog_r,
					  const char **error_r)
{
	struct search_parser p = {
		.pool = pool,
		.prog = prog_r,
		.args = args,
		.count = count,
	};
	const char *charset;

	memset(prog_r, 0, sizeof(*prog_r));
	if (count > 0 && imap_arg_atom_equals(&args[0], "RETURN")) {
		p.idx = 1;
		if (!parse_return(&p)) {
			*error_r = p.error;
			return IMAP_SEARCH_BAD;
		}
	}
	/* RFC 9051 9 search-program = ["CHARSET" SP charset SP] search-key
	 *(SP search-key); charset = atom / quoted */
	if (p.idx < count && imap_arg_atom_equals(&args[p.idx], "CHARSET")) {
		const struct imap_arg *arg;

		p.idx++;
		if (p.idx >= count ||
		    ((arg = &args[p.idx])->type != IMAP_ARG_ATOM &&
		     arg->type != IMAP_ARG_QUOTED)) {
			*error_r = "Bad CHARSET";
			return IMAP_SEARCH_BAD;
		}
		charset = arg->str;
		p.idx++;
		if (strcasecmp(charset, "US-ASCII") == 0) {
			p.ascii = true;
		} else if (strcasecmp(charset, "UTF-8") != 0) {
			*error_r = "Unsupported charset";
			return IMAP_SEARCH_BADCHARSET;
		}
	}
	if (!parse_and(&p, 0, &prog_r->root)) {
		*error_r = p.error != NULL ? p.error : "Bad search program";
		return IMAP_SEARCH_BAD;
	}
	return IMAP_SEARCH_OK;
}

void imap_search_dump(struct buf *out, const struct imap_search_key *key)
{
	static const char *const names[] = {
		[IMAP_SEARCH_ALL] = "ALL",
		[IMAP_SEARCH_AND] = "AND",
		[IMAP_SEARCH_OR] = "OR",
		[IMAP_SEARCH_NOT] = "NOT",
		[IMAP_SEARCH_SEQSET] = "SEQ",
		[IMAP_SEARCH_UIDSET] = "UID",
		[IMAP_SEARCH_FLAG] = "FLAG",
		[IMAP_SEARCH_RECENT] = "RECENT",
		[IMAP_SEARCH_KEYWORD] = "KEYWORD",
		[IMAP_SEARCH_LARGER] = "LARGER",
		[IMAP_SEARCH_SMALLER] = "SMALLER",
		[IMAP_SEARCH_DATE] = "DATE",
		[IMAP_SEARCH_OLDER] = "OLDER",
		[IMAP_SEARCH_YOUNGER] = "YOUNGER",
		[IMAP_SEARCH_TEXT] = "TEXT",
		[IMAP_SEARCH_HEADER] = "HEADER",
		[IMAP_SEARCH_MODSEQ] = "MODSEQ",
		[IMAP_SEARCH_EMAILID] = "EMAILID",
		[IMAP_SEARCH_THREADID] = "THREADID",
	};
	const struct imap_search_key *child;

	buf_printf(out, "(%s", names[key->type]);
	switch (key->type) {
	case IMAP_SEARCH_SEQSET:
	case IMAP_SEARCH_UIDSET:
		if (key->seqset.searchres)
			buf_append_str(out, " $");
		else {
			buf_append_c(out, ' ');
			imap_seqset_write(out, key->seqset.ranges,
					  key->seqset.count);
		}
		break;
	case IMAP_SEARCH_FLAG:
		buf_printf(out, " %u", key->flag);
		break;
	case IMAP_SEARCH_LARGER:
	case IMAP_SEARCH_SMALLER:
	case IMAP_SEARCH_OLDER:
	case IMAP_SEARCH_YOUNGER:
	case IMAP_SEARCH_MODSEQ:
		buf_printf(out, " %llu", (unsigned long long)key->number);
		break;
	case IMAP_SEARCH_DATE:
		buf_printf(out, " %d %d %lld", (int)key->date_field,
			   (int)key->date_op, (long long)key->day);
		break;
	case IMAP_SEARCH_TEXT:
		buf_printf(out, " %d", (int)key->text_field);
		break;
	case IMAP_SEARCH_HEADER:
		buf_printf(out, " %s", key->header);
		break;
	default:
		break;
	}
	if (key->str != NULL)
		buf_printf(out, " \"%s\"", key->str);
	for (child = key->child; child != NULL; child = child->next) {
		buf_append_c(out, ' ');
		imap_search_dump(out, child);
	}
	buf_append_c(out, ')');
}
