/* buf.c - growable buffers with a lazily compacted consumed prefix. */

#include "buf.h"

#include <stdio.h>
#include <stdlib.h>

void buf_init(struct buf *buf, size_t initial_size)
{
	*buf = BUF_INIT;
	if (initial_size > 0) {
		buf->data = i_malloc(i_size_add(initial_size, 1));
		buf->alloc = initial_size;
	}
}

void buf_free(struct buf *buf)
{
	free(buf->data);
	*buf = BUF_INIT;
}

void buf_free_secure(struct buf *buf)
{
	if (buf->data != NULL)
		safe_memset0(buf->data, buf->alloc + 1);
	buf_free(buf);
}

void buf_reset(struct buf *buf)
{
	buf->used = 0;
	buf->start = 0;
	if (buf->data != NULL)
		buf->data[0] = '\0';
}

uint8_t *buf_reserve(struct buf *buf, size_t len)
{
	size_t need = i_size_add(i_size_add(buf->start, buf->used), len);

	if (need > buf->alloc && buf->start > 0 &&
	    i_size_add(buf->used, len) <= buf->alloc) {
		/* enough room once the consumed prefix is dropped */
		memmove(buf->data, buf->data + buf->start, buf->used);
		buf->start = 0;
		need = buf->used + len;
	}
	/* data == NULL: even a zero-length reserve allocates, so that
	   buf_commit() has somewhere to put the NUL. */
	if (need > buf->alloc || buf->data == NULL) {
		size_t alloc = buf->alloc < 64 ? 64 : buf->alloc;

		while (alloc < need)
			alloc = i_size_mul(alloc, 2);
		buf->data = i_realloc(buf->data, i_size_add(alloc, 1));
		buf->alloc = alloc;
	}
	/* The compaction above and a first allocation leave no NUL after
	   the content; buf_cstr() relies on it. */
	buf->data[buf->start + buf->used] = '\0';
	return buf->data + buf->start + buf->used;
}

void buf_commit(struct buf *buf, size_t len)
{
	i_assert(buf->start + buf->used + len <= buf->alloc);
	buf->used += len;
	buf->data[buf->start + buf->used] = '\0';
}

void buf_append(struct buf *buf, const void *data, size_t len)
{
	uint8_t *p = buf_reserve(buf, len);

	if (len > 0)
		memcpy(p, data, len);
	buf_commit(buf, len);
}

void buf_append_span(struct buf *buf, struct span s)
{
	buf_append(buf, s.p, s.len);
}

void buf_append_str(struct buf *buf, const char *str)
{
	buf_append(buf, str, strlen(str));
}

void buf_append_c(struct buf *buf, uint8_t c)
{
	buf_append(buf, &c, 1);
}

void buf_vprintf(struct buf *buf, const char *fmt, va_list args)
{
	size_t len = i_vformat_len(fmt, args);
	uint8_t *p;

	p = buf_reserve(buf, len);
	/* buf_reserve() keeps one extra byte for the NUL */
	vsnprintf((char *)p, len + 1, fmt, args);
	buf_commit(buf, len);
}

void buf_printf(struct buf *buf, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	buf_vprintf(buf, fmt, args);
	va_end(args);
}

void buf_consume(struct buf *buf, size_t n)
{
	i_assert(n <= buf->used);
	buf->used -= n;
	if (buf->used == 0)
		buf->start = 0;
	else
		buf->start += n;
	if (buf->data != NULL)
		buf->data[buf->start + buf->used] = '\0';
}

void buf_truncate(struct buf *buf, size_t len)
{
	i_assert(len <= buf->used);
	buf->used = len;
	if (buf->data != NULL)
		buf->data[buf->start + buf->used] = '\0';
}
