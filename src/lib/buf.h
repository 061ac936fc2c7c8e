#ifndef MARMOT_BUF_H
#define MARMOT_BUF_H
/* Growable byte buffers for building output and holding input (Dovecot's
   buffer_t/string_t, Redis sds). A buf owns heap memory; buf_free()
   releases it. data is always followed by a NUL byte that is not counted in
   used, so buf_cstr() is free. Growth past max_size (0 = unlimited) panics:
   network-sized inputs must be bounded by the caller before appending. */

#include "lib.h"
#include "span.h"

struct buf {
	uint8_t *data;
	size_t used; /* bytes of content */
	size_t alloc; /* bytes allocated, excluding the trailing NUL */
	size_t start; /* consumed prefix; see buf_consume() */
};

#define BUF_INIT ((struct buf){ NULL, 0, 0, 0 })

void buf_init(struct buf *buf, size_t initial_size);
void buf_free(struct buf *buf);
/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *buf);
/* Makes room for at least len more bytes and returns where they go; the
   caller writes up to len bytes there and then calls buf_commit(). */
uint8_t *buf_reserve(struct buf *buf, size_t len);
void buf_commit(struct buf *buf, size_t len);

void buf_append(struct buf *buf, const void *data, size_t len);
void buf_append_span(struct buf *buf, struct span s);
void buf_append_str(struct buf *buf, const char *str);
void buf_append_c(struct buf *buf, uint8_t c);
void buf_printf(struct buf *buf, const char *fmt, ...) ATTR_FORMAT(2, 3);
void buf_vprintf(struct buf *buf, const char *fmt, va_list args)
	ATTR_FORMAT(2, 0);
/* Drops the first n bytes of content (an input buffer after parsing).
   Amortised O(1): memory is compacted lazily. */
void buf_consume(struct buf *buf, size_t n);
/* Shortens the content to len bytes. */
void buf_truncate(struct buf *buf, size_t len);

/* Content as a span / NUL-terminated string, valid until the next change. */
static inline struct span buf_span(const struct buf *buf)
{
	return span_make(buf->data == NULL ? (const uint8_t *)""
					   : buf->data + buf->start,
			 buf->used);
}
static inline const char *buf_cstr(const struct buf *buf)
{
	return buf->data == NULL ? "" : (const char *)buf->data + buf->start;
}
/* Wipes the memory (for buffers that held secrets) and frees it. */
void buf_free_secure(struct buf *buf);

#endif
