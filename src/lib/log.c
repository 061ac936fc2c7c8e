/* log.c - structured event logging. Owns the process-wide log settings
   (role, level, output fd) and the per-thread line and value buffers. Every
   role calls log_event() through the log_*() macros; a line is built in a
   thread-local buffer, bounded at LOG_LINE_MAX bytes (longer lines end in
   "..."), stripped of raw control bytes and written with one write(2), so
   lines from different threads never interleave and one event is always one
   line. Values from peers are escaped by log_value() / buf_log_kv(). */

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define LOG_ROLE_MAX 32

static char log_role[LOG_ROLE_MAX] = "marmot";
static int log_level_cur = LOG_LEVEL_INFO;
static int log_fd = STDERR_FILENO;

static const char *const log_level_names[] = {
	[LOG_LEVEL_DEBUG] = "debug",     [LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_WARNING] = "warning", [LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_FATAL] = "fatal",
};

/* The fields as the caller formatted them, and the finished line. */
static _Thread_local char log_fields[LOG_LINE_MAX];
static _Thread_local char log_line[LOG_LINE_MAX];
static _Thread_local char log_values[LOG_VALUE_SLOTS][LOG_VALUE_MAX];

void log_set_role(const char *role)
{
	size_t len = strlen(role);

	if (len >= sizeof(log_role))
		len = sizeof(log_role) - 1;
	memcpy(log_role, role, len);
	log_role[len] = '\0';
}

void log_set_level(enum log_level level)
{
	i_assert(level <= LOG_LEVEL_FATAL);
	__atomic_store_n(&log_level_cur, (int)level, __ATOMIC_RELAXED);
}

enum log_level log_get_level(void)
{
	return (enum log_level)__atomic_load_n(&log_level_cur,
					       __ATOMIC_RELAXED);
}

int log_level_parse(const char *name, enum log_level *level_r)
{
	/* FATAL is not a filter level: fatal lines are always written. */
	for (unsigned int i = 0; i < LOG_LEVEL_FATAL; i++) {
		if (strcmp(name, log_level_names[i]) == 0) {
			*level_r = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

const char *log_level_name(enum log_level level)
{
	i_assert(level <= LOG_LEVEL_FATAL);
	return log_level_names[level];
}

void log_set_fd(int fd)
{
	__atomic_store_n(&log_fd, fd, __ATOMIC_RELAXED);
}

static bool log_value_needs_quoting(const char *value)
{
	if (*value == '\0')
		return true;
	for (const unsigned char *p = (const unsigned char *)value; *p != '\0';
	     p++) {
		if (*p <= ' ' || *p == '"' || *p == '\\' || *p == '=' ||
		    *p >= 0x7f)
			return true;
	}
	return false;
}

/* Writes the escaped form of value into dst (dst_size >= 8), NUL-terminated,
   and returns its length. A value that does not fit is cut at an escape
   boundary and closed with ...". */
static size_t log_escape(char *dst, size_t dst_size, const char *value)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)value;
	size_t len = 0;

	i_assert(dst_size >= 8);
	if (!log_value_needs_quoting(value)) {
		len = strlen(value);
		if (len < dst_size) {
			memcpy(dst, value, len + 1);
			return len;
		}
		/* too long: fall through to the quoted, truncated form */
	}
	dst[len = 0] = '"';
	len++;
	for (; *p != '\0'; p++) {
		char esc[4];
		size_t n;

		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			n = 2;
		} else if (*p < ' ' || *p >= 0x7f) {
			esc[0] = '\\';
			esc[1] = 'x';
			esc[2] = hex[*p >> 4];
			esc[3] = hex[*p & 0xf];
			n = 4;
		} else {
			esc[0] = (char)*p;
			n = 1;
		}
		/* keep room for the closing ...", or " and the NUL */
		if (len + n + 5 > dst_size) {
			memcpy(dst + len, "...", 3);
			len += 3;
			break;
		}
		memcpy(dst + len, esc, n);
		len += n;
	}
	dst[len++] = '"';
	dst[len] = '\0';
	return len;
}

void buf_log_kv(struct buf *buf, const char *key, const char *value)
{
	size_t vlen, max;
	uint8_t *p;

	if (value == NULL)
		value = "";
	if (buf->used > 0)
		buf_append_c(buf, ' ');
	buf_append_str(buf, key);
	buf_append_c(buf, '=');
	vlen = strlen(value);
	/* worst case: every byte as \xNN, two quotes, the NUL */
	max = i_size_add(i_size_mul(vlen, 4), 8);
	p = buf_reserve(buf, max);
	buf_commit(buf, log_escape((char *)p, max, value));
}

const char *log_value(unsigned int slot, const char *value)
{
	i_assert(slot < LOG_VALUE_SLOTS);
	if (value == NULL)
		value = "";
	log_escape(log_values[slot], sizeof(log_values[slot]), value);
	return log_values[slot];
}

/* Copies src to dst[*pos..] replacing bytes that would break the line
   (CR, LF and other control bytes except TAB) by their \xNN form, stopping
   at limit. Returns false if src did not fit. */
static bool log_append_safe(char *dst, size_t *pos, size_t limit,
			    const char *src)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = *pos;
	bool fit = true;

	for (const unsigned char *p = (const unsigned char *)src; *p != '\0';
	     p++) {
		if ((*p < ' ' && *p != '\t') || *p == 0x7f) {
			if (i + 4 > limit) {
				fit = false;
				break;
			}
			dst[i++] = '\\';
			dst[i++] = 'x';
			dst[i++] = hex[*p >> 4];
			dst[i++] = hex[*p & 0xf];
		} else {
			if (i + 1 > limit) {
				fit = false;
				break;
			}
			dst[i++] = (char)*p;
		}
	}
	*pos = i;
	return fit;
}

static void log_write_all(const char *data, size_t len)
{
	int fd = __atomic_load_n(&log_fd, __ATOMIC_RELAXED);

	while (len > 0) {
		ssize_t ret = write(fd, data, len);

		if (ret < 0) {
			if (errno == EINTR)
				continue;
			/* nowhere left to report it */
			return;
		}
		data += ret;
		len -= (size_t)ret;
	}
}

static void log_vevent(enum log_level level, const char *conn,
		       const char *event, const char *fmt, va_list args)
{
	/* room for "...\n" at the end */
	const size_t limit = sizeof(log_line) - 4;
	struct timespec ts;
	struct tm tm;
	char head[128];
	size_t pos = 0;
	bool fit;
	int ret;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	ret = snprintf(head, sizeof(head),
		       "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%ld] %s ",
		       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		       tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, log_role,
		       (long)getpid(), log_level_names[level]);
	if (ret < 0)
		return;
	fit = log_append_safe(log_line, &pos, limit, head);
	fit = fit && log_append_safe(log_line, &pos, limit, event);
	if (fit && conn != NULL) {
		fit = log_append_safe(log_line, &pos, limit, " conn=") &&
		      log_append_safe(log_line, &pos, limit, conn);
	}
	if (fit && fmt[0] != '\0') {
		ret = vsnprintf(log_fields, sizeof(log_fields), fmt, args);
		if (ret > 0) {
			fit = log_append_safe(log_line, &pos, limit, " ") &&
			      log_append_safe(log_line, &pos, limit,
					      log_fields) &&
			      (size_t)ret < sizeof(log_fields);
		}
	}
	if (!fit) {
		memcpy(log_line + pos, "...", 3);
		pos += 3;
	}
	log_line[pos++] = '\n';
	log_write_all(log_line, pos);
}

void log_event(enum log_level level, const char *conn, const char *event,
	       const char *fmt, ...)
{
	va_list args;

	i_assert(level <= LOG_LEVEL_FATAL);
	if (level < LOG_LEVEL_FATAL &&
	    (int)level < __atomic_load_n(&log_level_cur, __ATOMIC_RELAXED))
		return;
	va_start(args, fmt);
	log_vevent(level, conn, event, fmt, args);
	va_end(args);
}

void fatal(const char *event, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	log_vevent(LOG_LEVEL_FATAL, NULL, event, fmt, args);
	va_end(args);
	exit(MARMOT_EXIT_FATAL);
}
