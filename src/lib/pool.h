#ifndef MARMOT_POOL_H
#define MARMOT_POOL_H
/* Lifetime-scoped arena allocator (Dovecot's alloconly pool, nginx's pools).
   A connection owns a pool; per-transaction state lives in a child pool that
   is cleared at RSET or end of DATA. Individual allocations are never freed;
   pool_clear() drops them all at once and pool_unref() frees the pool.
   Memory returned is zero-filled and aligned for any type. Not thread-safe:
   a pool belongs to one thread at a time. */

#include "lib.h"

typedef struct pool *pool_t;

/* Creates a pool whose first block holds at least initial_size bytes. */
pool_t pool_create(const char *name, size_t initial_size);
void pool_ref(pool_t pool);
/* Drops a reference; frees all memory at zero. Sets *pool to NULL. */
void pool_unref(pool_t *pool);
/* Frees every allocation but keeps the first block for reuse. */
void pool_clear(pool_t pool);
/* Bytes handed out since creation or the last clear. */
size_t pool_used(pool_t pool);

void *p_malloc(pool_t pool, size_t size);
char *p_strdup(pool_t pool, const char *str); /* NULL stays NULL */
char *p_strndup(pool_t pool, const void *str, size_t len);
char *p_strdup_printf(pool_t pool, const char *fmt, ...) ATTR_FORMAT(2, 3);
char *p_strdup_vprintf(pool_t pool, const char *fmt, va_list args)
	ATTR_FORMAT(2, 0);
#define p_new(pool, type, count) \
	((type *)p_malloc(pool, i_size_mul(sizeof(type), (count))))

#endif
