/* span.c - comparisons and splitting of byte views. */

#include "span.h"

static inline uint8_t ascii_lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

bool span_eq(struct span a, struct span b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

bool span_eq_ci(struct span a, struct span b)
{
	if (a.len != b.len)
		return false;
	for (size_t i = 0; i < a.len; i++) {
		if (ascii_lower(a.p[i]) != ascii_lower(b.p[i]))
			return false;
	}
	return true;
}

bool span_starts_with_ci(struct span s, struct span prefix)
{
	return s.len >= prefix.len &&
	       span_eq_ci(span_make(s.p, prefix.len), prefix);
}

ssize_t span_find_byte(struct span s, uint8_t c)
{
	const uint8_t *p;

	if (s.len == 0)
		return -1;
	p = memchr(s.p, c, s.len);
	return p == NULL ? -1 : (ssize_t)(p - s.p);
}

ssize_t span_find(struct span s, struct span needle)
{
	const uint8_t *p;

	if (needle.len == 0)
		return 0;
	if (s.len < needle.len)
		return -1;
	p = memmem(s.p, s.len, needle.p, needle.len);
	return p == NULL ? -1 : (ssize_t)(p - s.p);
}

struct span span_trim(struct span s)
{
	while (s.len > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
		s.p++;
		s.len--;
	}
	while (s.len > 0 && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
		s.len--;
	return s;
}

bool span_split(struct span s, uint8_t c, struct span *head_r,
		struct span *tail_r)
{
	ssize_t i = span_find_byte(s, c);

	if (i < 0) {
		*head_r = s;
		*tail_r = SPAN_EMPTY;
		return false;
	}
	*head_r = span_make(s.p, (size_t)i);
	*tail_r = span_make(s.p + i + 1, s.len - (size_t)i - 1);
	return true;
}

int span_to_u64(struct span s, uint64_t max, uint64_t *num_r)
{
	uint64_t n = 0;

	if (s.len == 0)
		return -1;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return -1;
		uint64_t digit = (uint64_t)(s.p[i] - '0');

		/* digit > max: max - digit would wrap and accept anything */
		if (digit > max || n > (max - digit) / 10)
			return -1;
		n = n * 10 + digit;
	}
	*num_r = n;
	return 0;
}
