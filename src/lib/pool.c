/* pool.c - arena allocator: a chain of blocks, bump allocation within the
   newest block, whole-pool release. Large allocations get a block of their
   own so that a single big request does not waste the rest of a block. */

#include "pool.h"

#include <stdio.h>
#include <stdlib.h>

#define POOL_ALIGN 16
#define POOL_MIN_BLOCK 1024

struct pool_block {
	struct pool_block *prev;
	size_t size, used;
	/* data follows, aligned */
	max_align_t data[];
};

struct pool {
	const char *name;
	int refcount;
	size_t block_size, total_used;
	struct pool_block *block; /* newest; allocations come from here */
	struct pool_block *first; /* kept across pool_clear() */
};

static struct pool_block *pool_block_new(size_t size)
{
	struct pool_block *b;

	b = i_malloc(i_size_add(sizeof(*b), size));
	b->size = size;
	return b;
}

pool_t pool_create(const char *name, size_t initial_size)
{
	struct pool *pool = i_new(struct pool, 1);

	pool->name = name;
	pool->refcount = 1;
	pool->block_size =
		initial_size < POOL_MIN_BLOCK ? POOL_MIN_BLOCK : initial_size;
	pool->first = pool->block = pool_block_new(pool->block_size);
	return pool;
}

void pool_ref(pool_t pool)
{
	i_assert(pool->refcount > 0);
	pool->refcount++;
}

static void pool_free_blocks_after_first(pool_t pool)
{
	struct pool_block *b = pool->block, *prev;

	while (b != pool->first) {
		prev = b->prev;
		free(b);
		b = prev;
	}
	pool->block = pool->first;
}

void pool_unref(pool_t *_pool)
{
	pool_t pool = *_pool;

	if (pool == NULL)
		return;
	*_pool = NULL;
	i_assert(pool->refcount > 0);
	if (--pool->refcount > 0)
		return;
	pool_free_blocks_after_first(pool);
	free(pool->first);
	free(pool);
}

void pool_clear(pool_t pool)
{
	pool_free_blocks_after_first(pool);
	memset(pool->first->data, 0, pool->first->used);
	pool->first->used = 0;
	pool->total_used = 0;
}

size_t pool_used(pool_t pool)
{
	return pool->total_used;
}

void *p_malloc(pool_t pool, size_t size)
{
	struct pool_block *b = pool->block;
	size_t asize;
	void *p;

	asize = i_size_add(size == 0 ? 1 : size, POOL_ALIGN - 1) &
		~(size_t)(POOL_ALIGN - 1);
	if (b->size - b->used < asize) {
		size_t bsize = pool->block_size;

		while (bsize < asize)
			bsize = i_size_mul(bsize, 2);
		b = pool_block_new(bsize);
		b->prev = pool->block;
		pool->block = b;
		/* grow future blocks, like Dovecot does, but cap at 1 MiB */
		if (pool->block_size < 1024 * 1024)
			pool->block_size *= 2;
	}
	p = (unsigned char *)b->data + b->used;
	b->used += asize;
	pool->total_used += asize;
	return p;
}

char *p_strndup(pool_t pool, const void *str, size_t len)
{
	char *p = p_malloc(pool, i_size_add(len, 1));

	memcpy(p, str, len);
	return p;
}

char *p_strdup(pool_t pool, const char *str)
{
	if (str == NULL)
		return NULL;
	return p_strndup(pool, str, strlen(str));
}

char *p_strdup_vprintf(pool_t pool, const char *fmt, va_list args)
{
	size_t len = i_vformat_len(fmt, args);
	char *p;

	p = p_malloc(pool, len + 1);
	vsnprintf(p, len + 1, fmt, args);
	return p;
}

char *p_strdup_printf(pool_t pool, const char *fmt, ...)
{
	va_list args;
	char *p;

	va_start(args, fmt);
	p = p_strdup_vprintf(pool, fmt, args);
	va_end(args);
	return p;
}
