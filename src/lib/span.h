#ifndef MARMOT_SPAN_H
#define MARMOT_SPAN_H
/* Read-only views of bytes: parsers take spans, never NUL-terminated strings
   (ngx_str_t, h2o_iovec_t). A span does not own its bytes. */

#include "lib.h"

struct span {
	const uint8_t *p;
	size_t len;
};

#define SPAN_LIT(s) ((struct span){ (const uint8_t *)("" s), sizeof(s) - 1 })
#define SPAN_EMPTY ((struct span){ (const uint8_t *)"", 0 })

static inline struct span span_make(const void *p, size_t len)
{
	return (struct span){ (const uint8_t *)p, len };
}

static inline struct span span_from_cstr(const char *s)
{
	return span_make(s, strlen(s));
}

bool span_eq(struct span a, struct span b);
/* ASCII case-insensitive comparison (protocol verbs, header names). */
bool span_eq_ci(struct span a, struct span b);
bool span_starts_with_ci(struct span s, struct span prefix);
/* Returns the offset of the first c in s, or -1. */
ssize_t span_find_byte(struct span s, uint8_t c);
/* Returns the offset of needle in s, or -1. */
ssize_t span_find(struct span s, struct span needle);
/* Strips leading and trailing SP and HTAB. */
struct span span_trim(struct span s);
/* Splits at the first c: *head_r gets the part before it, the returned
   span the part after it. Returns false (and s in *head_r) if c is absent. */
bool span_split(struct span s, uint8_t c, struct span *head_r,
		struct span *tail_r);
static inline struct span span_skip(struct span s, size_t n)
{
	if (n > s.len)
		n = s.len;
	return span_make(s.p + n, s.len - n);
}
/* The value of an ASCII hex digit (either case), or -1. */
static inline int hex_digit_value(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Parses a decimal unsigned integer spanning all of s, at most max.
   Returns 0 on success, -1 on empty input, non-digits or overflow. */
int span_to_u64(struct span s, uint64_t max, uint64_t *num_r);

#endif
