/* imap-sort.c - IMAP SORT (RFC 5256 3, RFC 5957): criteria parser,
   comparison by the criteria with i;ascii-casemap, "* SORT" writer. */

#include "imap-sort.h"
#include "buf.h"

#include <stdlib.h>
#include <strings.h>

static const struct {
	const char *name;
	enum imap_sort_key key;
} sort_keys[] = {
	/* RFC 5256 3 and RFC 5957 2. */
	{ "ARRIVAL", IMAP_SORT_ARRIVAL },
	{ "CC", IMAP_SORT_CC },
	{ "DATE", IMAP_SORT_DATE },
	{ "FROM", IMAP_SORT_FROM },
	{ "SIZE", IMAP_SORT_SIZE },
	{ "SUBJECT", IMAP_SORT_SUBJECT },
	{ "TO", IMAP_SORT_TO },
	{ "DISPLAYFROM", IMAP_SORT_DISPLAYFROM },
	{ "DISPLAYTO", IMAP_SORT_DISPLAYTO },
};

int64_t imap_sort_sent_date(int64_t date, int64_t internaldate)
{
	return date != 0 ? date : internaldate;
}

static unsigned char casemap(unsigned char c)
{
	return c >= 'a' && c <= 'z' ? (unsigned char)(c - 'a' + 'A') : c;
}

int imap_ascii_casemap_cmp(const char *a, const char *b)
{
	const unsigned char *p = (const unsigned char *)a;
	const unsigned char *q = (const unsigned char *)b;

	while (*p != '\0' && casemap(*p) == casemap(*q)) {
		p++;
		q++;
	}
	return (int)casemap(*p) - (int)casemap(*q);
}

int imap_sort_parse(const struct imap_arg *list,
		    struct imap_sort_criterion crit_r[IMAP_SORT_CRITERIA_MAX],
		    const char **error_r)
{
	unsigned int i, k, n = 0;
	bool reverse = false;

	if (list == NULL || list->type != IMAP_ARG_LIST) {
		*error_r = "sort criteria must be a parenthesised list";
		return -1;
	}
	for (i = 0; i < list->list_count; i++) {
		const struct imap_arg *arg = &list->list[i];

		if (arg->type != IMAP_ARG_ATOM) {
			*error_r = "bad sort criterion";
			return -1;
		}
		if (strcasecmp(arg->str, "REVERSE") == 0) {
			/* RFC 5256 4: one REVERSE per key. */
			if (reverse) {
				*error_r = "REVERSE REVERSE";
				return -1;
			}
			reverse = true;
			continue;
		}
		for (k = 0; k < N_ELEMENTS(sort_keys); k++) {
			if (strcasecmp(arg->str, sort_keys[k].name) == 0)
				break;
		}
		if (k == N_ELEMENTS(sort_keys)) {
			*error_r = "unknown sort criterion";
			return -1;
		}
		if (n == IMAP_SORT_CRITERIA_MAX) {
			*error_r = "too many sort criteria";
			return -1;
		}
		crit_r[n].key = sort_keys[k].key;
		crit_r[n].reverse = reverse;
		n++;
		reverse = false;
	}
	if (reverse || n == 0) {
		*error_r = reverse ? "REVERSE without a sort key"
				   : "empty sort criteria";
		return -1;
	}
	return (int)n;
}

static int cmp_num(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b ? 1 : 0;
}

static int cmp_snum(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b ? 1 : 0;
}

static int cmp_key(const struct imap_sort_msg *a, const struct imap_sort_msg *b,
		   enum imap_sort_key key)
{
	switch (key) {
	case IMAP_SORT_ARRIVAL:
		return cmp_snum(a->arrival, b->arrival);
	case IMAP_SORT_CC:
		return imap_ascii_casemap_cmp(a->cc, b->cc);
	case IMAP_SORT_DATE:
		return cmp_snum(a->date, b->date);
	case IMAP_SORT_FROM:
		return imap_ascii_casemap_cmp(a->from, b->from);
	case IMAP_SORT_SIZE:
		return cmp_num(a->size, b->size);
	case IMAP_SORT_SUBJECT:
		return imap_ascii_casemap_cmp(a->subject, b->subject);
	case IMAP_SORT_TO:
		return imap_ascii_casemap_cmp(a->to, b->to);
	case IMAP_SORT_DISPLAYFROM:
		return imap_ascii_casemap_cmp(a->display_from, b->display_from);
	case IMAP_SORT_DISPLAYTO:
		return imap_ascii_casemap_cmp(a->display_to, b->display_to);
	}
	return 0;
}

struct sort_ctx {
	const struct imap_sort_criterion *crit;
	unsigned int crit_count;
};

static int cmp_msgs(const void *p1, const void *p2, void *context)
{
	const struct imap_sort_msg *a = p1, *b = p2;
	const struct sort_ctx *ctx = context;
	int ret;

	for (unsigned int i = 0; i < ctx->crit_count; i++) {
		ret = cmp_key(a, b, ctx->crit[i].key);
		if (ret != 0)
			return ctx->crit[i].reverse ? -ret : ret;
	}
	/* RFC 5256 3: exact matches in mailbox order. */
	return cmp_num(a->seq, b->seq);
}

void imap_sort(struct imap_sort_msg *msgs, unsigned int count,
	       const struct imap_sort_criterion *crit, unsigned int crit_count)
{
	struct sort_ctx ctx = { .crit = crit, .crit_count = crit_count };

	if (count > 1)
		qsort_r(msgs, count, sizeof(*msgs), cmp_msgs, &ctx);
}

void imap_sort_write(struct buf *out, const struct imap_sort_msg *msgs,
		     unsigned int count, bool uid)
{
	/* RFC 5256 4: sort-data = "SORT" *(SP nz-number). */
	buf_append_str(out, "* SORT");
	for (unsigned int i = 0; i < count; i++)
		buf_printf(out, " %u", uid ? msgs[i].uid : msgs[i].seq);
	buf_append_str(out, "\r\n");
}
