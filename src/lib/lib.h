#ifndef MARMOT_LIB_H
#define MARMOT_LIB_H
/* The foundation every Marmot file includes: assertions, allocation that
   never returns NULL, and a few macros. Allocation failure aborts the process
   (the master restarts it); callers never check for NULL. */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define MARMOT_VERSION "0.1.0"

#define N_ELEMENTS(arr) (sizeof(arr) / sizeof((arr)[0]))
#define ATTR_FORMAT(fmt, args) __attribute__((format(printf, fmt, args)))
#define ATTR_NORETURN __attribute__((noreturn))
#define ATTR_UNUSED __attribute__((unused))
#define ATTR_NULL_TERMINATED __attribute__((sentinel))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Exit code of a process that died of an environmental problem (config,
   disk, resources). The master treats it as "do not restart in a loop". */
#define MARMOT_EXIT_FATAL 89
/* Exit code of a process that met bad configuration: never restarted. */
#define MARMOT_EXIT_CONFIG 78

void i_panic(const char *fmt, ...) ATTR_FORMAT(1, 2) ATTR_NORETURN;

/* Bugs: i_assert() stays on in release builds. */
#define i_assert(expr)                                                      \
	do {                                                                \
		if (unlikely(!(expr)))                                      \
			i_panic("file %s: line %d (%s): assertion failed: " \
				"(%s)",                                     \
				__FILE__, __LINE__, __func__, #expr);       \
	} while (0)
#define i_unreached()                                                   \
	i_panic("file %s: line %d (%s): unreached", __FILE__, __LINE__, \
		__func__)

void *i_malloc(size_t size); /* zero-filled */
void *i_realloc(void *ptr, size_t size);
char *i_strdup(const char *str); /* NULL stays NULL */
char *i_strndup(const void *str, size_t len);
char *i_strdup_printf(const char *fmt, ...) ATTR_FORMAT(1, 2);
char *i_strdup_vprintf(const char *fmt, va_list args) ATTR_FORMAT(1, 0);
#define i_new(type, count) ((type *)i_malloc(sizeof(type) * (count)))
/* Frees *ptr and sets it to NULL. */
#define i_free(ptr)                  \
	do {                         \
		free((void *)(ptr)); \
		(ptr) = NULL;        \
	} while (0)

/* The length vsnprintf() would produce for fmt and args (args is not
   consumed: it is copied). Panics on an encoding error. */
size_t i_vformat_len(const char *fmt, va_list args) ATTR_FORMAT(1, 0);

/* Overflow-checked size arithmetic: panics on overflow. */
size_t i_size_add(size_t a, size_t b);
size_t i_size_mul(size_t a, size_t b);

/* strcmp() == 0 where NULL equals only NULL. */
static inline bool str_eq_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Constant-time memory comparison (libsodium); true when equal. */
bool mem_equals_ct(const void *a, const void *b, size_t len);
/* Wipe a secret (explicit_bzero). */
void safe_memset0(void *p, size_t len);

#endif
