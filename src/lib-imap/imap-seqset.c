/* imap-seqset.c - sequence sets: parsing (RFC 9051 9), resolving "*",
   sorting and merging, iterating and writing. See imap-seqset.h. */

#include "imap-seqset.h"

#include "buf.h"
#include "pool.h"

#include <stdio.h>

/* RFC 9051 9: seq-number = nz-number / "*"; nz-number = digit-nz *DIGIT,
   below 2^32. */
static int imap_seq_number_parse(const char **p, uint32_t *num_r)
{
	const char *s = *p;
	uint64_t n = 0;

	if (*s == '*') {
		*num_r = IMAP_SEQ_STAR;
		*p = s + 1;
		return 0;
	}
	if (*s < '1' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		n = n * 10 + (uint64_t)(*s - '0');
		if (n > UINT32_MAX)
			return -1;
	}
	*num_r = (uint32_t)n;
	*p = s;
	return 0;
}

int imap_seqset_parse(struct pool *pool, const char *str, bool allow_searchres,
		      struct imap_seqset *set_r, const char **error_r)
{
	struct imap_seq_range *ranges;
	unsigned int count = 0, max = 1;
	const char *p = str;

	memset(set_r, 0, sizeof(*set_r));
	/* RFC 5182 2.1 (RFC 9051 9 seq-last-command): "$" stands alone. */
	if (strcmp(str, "$") == 0) {
		if (!allow_searchres) {
			*error_r = "$ is not allowed here";
			return -1;
		}
		set_r->searchres = true;
		return 0;
	}
	for (const char *q = str; *q != '\0'; q++) {
		if (*q == ',')
			max++;
	}
	ranges = p_new(pool, struct imap_seq_range, max);
	for (;;) {
		struct imap_seq_range *r = &ranges[count];

		if (imap_seq_number_parse(&p, &r->first) < 0) {
			*error_r = "Invalid sequence set";
			return -1;
		}
		r->last = r->first;
		if (*p == ':') {
			p++;
			if (imap_seq_number_parse(&p, &r->last) < 0) {
				*error_r = "Invalid sequence set";
				return -1;
			}
		}
		count++;
		if (*p == '\0')
			break;
		if (*p != ',') {
			*error_r = "Invalid sequence set";
			return -1;
		}
		p++;
	}
	set_r->ranges = ranges;
	set_r->count = count;
	return 0;
}

static int imap_seq_range_cmp(const void *a, const void *b)
{
	const struct imap_seq_range *ra = a, *rb = b;

	if (ra->first != rb->first)
		return ra->first < rb->first ? -1 : 1;
	return 0;
}

int imap_seqset_resolve(const struct imap_seqset *set, uint32_t star,
			struct pool *pool, struct imap_seq_range **ranges_r,
			unsigned int *count_r)
{
	struct imap_seq_range *ranges;
	unsigned int n = 0;

	i_assert(!set->searchres && set->count > 0);
	ranges = p_new(pool, struct imap_seq_range, set->count);
	for (unsigned int i = 0; i < set->count; i++) {
		uint32_t a = set->ranges[i].first, b = set->ranges[i].last;

		if (a == IMAP_SEQ_STAR)
			a = star;
		if (b == IMAP_SEQ_STAR)
			b = star;
		if (a == 0 || b == 0)
			return -1;
		/* RFC 9051 9 seq-range: "regardless of order". */
		ranges[i].first = a < b ? a : b;
		ranges[i].last = a < b ? b : a;
	}
	qsort(ranges, set->count, sizeof(*ranges), imap_seq_range_cmp);
	for (unsigned int i = 1; i < set->count; i++) {
		struct imap_seq_range *cur = &ranges[n];

		/* Overlapping or adjacent (cur->last + 1 may not wrap). */
		if (ranges[i].first <= cur->last ||
		    ranges[i].first - 1 == cur->last) {
			if (ranges[i].last > cur->last)
				cur->last = ranges[i].last;
		} else {
			ranges[++n] = ranges[i];
		}
	}
	*ranges_r = ranges;
	*count_r = n + 1;
	return 0;
}

bool imap_seqset_clamp(struct imap_seq_range *ranges, unsigned int *count,
		       uint32_t max)
{
	bool dropped = false;

	/* Resolved ranges ascend: only the tail can be above max. */
	while (*count > 0 && ranges[*count - 1].last > max) {
		struct imap_seq_range *last = &ranges[*count - 1];

		dropped = true;
		if (last->first > max)
			(*count)--;
		else
			last->last = max;
	}
	return dropped;
}

uint64_t imap_seqset_count(const struct imap_seq_range *ranges,
			   unsigned int count)
{
	uint64_t total = 0;

	for (unsigned int i = 0; i < count; i++)
		total += (uint64_t)ranges[i].last - ranges[i].first + 1;
	return total;
}

bool imap_seqset_contains(const struct imap_seq_range *ranges,
			  unsigned int count, uint32_t num)
{
	unsigned int lo = 0, hi = count;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (num < ranges[mid].first)
			hi = mid;
		else if (num > ranges[mid].last)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

void imap_seqset_iter_init(struct imap_seqset_iter *iter,
			   const struct imap_seq_range *ranges,
			   unsigned int count)
{
	iter->ranges = ranges;
	iter->count = count;
	iter->idx = 0;
	iter->next = count > 0 ? ranges[0].first : 0;
}

bool imap_seqset_iter_next(struct imap_seqset_iter *iter, uint32_t *num_r)
{
	if (iter->idx >= iter->count)
		return false;
	*num_r = (uint32_t)iter->next;
	if (iter->next < iter->ranges[iter->idx].last) {
		iter->next++;
	} else if (++iter->idx < iter->count) {
		iter->next = iter->ranges[iter->idx].first;
	}
	return true;
}

static void imap_seq_number_write(struct buf *out, uint32_t num)
{
	if (num == IMAP_SEQ_STAR)
		buf_append_c(out, '*');
	else
		buf_printf(out, "%u", num);
}

void imap_seqset_write(struct buf *out, const struct imap_seq_range *ranges,
		       unsigned int count)
{
	i_assert(count > 0);
	for (unsigned int i = 0; i < count; i++) {
		if (i > 0)
			buf_append_c(out, ',');
		imap_seq_number_write(out, ranges[i].first);
		if (ranges[i].last != ranges[i].first) {
			buf_append_c(out, ':');
			imap_seq_number_write(out, ranges[i].last);
		}
	}
}
