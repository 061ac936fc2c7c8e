/* lib.c - allocation wrappers, panics, and overflow-checked arithmetic.
   Every allocation in Marmot goes through here, so an out-of-memory condition
   has exactly one behaviour: abort, and let the master restart the role. */

#include "lib.h"

#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>

void i_panic(const char *fmt, ...)
{
	va_list args;

	fputs("marmot: panic: ", stderr);
	va_start(args, fmt);
	vfprintf(stderr, fmt, args);
	va_end(args);
	fputc('\n', stderr);
	abort();
}

static void out_of_memory(size_t size)
{
	i_panic("out of memory allocating %zu bytes", size);
}

void *i_malloc(size_t size)
{
	void *p = calloc(1, size == 0 ? 1 : size);

	if (unlikely(p == NULL))
		out_of_memory(size);
	return p;
}

void *i_realloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size == 0 ? 1 : size);

	if (unlikely(p == NULL))
		out_of_memory(size);
	return p;
}

char *i_strdup(const char *str)
{
	if (str == NULL)
		return NULL;
	return i_strndup(str, strlen(str));
}

char *i_strndup(const void *str, size_t len)
{
	char *p = i_malloc(i_size_add(len, 1));

	memcpy(p, str, len);
	p[len] = '\0';
	return p;
}

size_t i_vformat_len(const char *fmt, va_list args)
{
	va_list args2;
	char probe[1];
	int len;

	va_copy(args2, args);
	len = vsnprintf(probe, sizeof(probe), fmt, args2);
	va_end(args2);
	if (len < 0)
		i_panic("vsnprintf(%s) failed", fmt);
	return (size_t)len;
}

char *i_strdup_vprintf(const char *fmt, va_list args)
{
	size_t len = i_vformat_len(fmt, args);
	char *p;

	p = i_malloc(len + 1);
	vsnprintf(p, len + 1, fmt, args);
	return p;
}

char *i_strdup_printf(const char *fmt, ...)
{
	va_list args;
	char *p;

	va_start(args, fmt);
	p = i_strdup_vprintf(fmt, args);
	va_end(args);
	return p;
}

size_t i_size_add(size_t a, size_t b)
{
	size_t r;

	if (__builtin_add_overflow(a, b, &r))
		i_panic("size overflow: %zu + %zu", a, b);
	return r;
}

size_t i_size_mul(size_t a, size_t b)
{
	size_t r;

	if (__builtin_mul_overflow(a, b, &r))
		i_panic("size overflow: %zu * %zu", a, b);
	return r;
}

bool mem_equals_ct(const void *a, const void *b, size_t len)
{
	return sodium_memcmp(a, b, len) == 0;
}

void safe_memset0(void *p, size_t len)
{
	sodium_memzero(p, len);
}
