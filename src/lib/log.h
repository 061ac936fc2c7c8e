#ifndef MARMOT_LOG_H
#define MARMOT_LOG_H
/* Structured logging: one line per event, to stderr (the master collects
   its children's stderr, systemd collects the master's). Every line carries
   a timestamp, the process role and pid, the level, a stable event name,
   optionally a connection id, and key=value fields:

     2026-11-23T18:32:37.123Z front[1234] info smtp.connect conn=8f3a21
   ip=127.0.0.1

   Secrets (passwords, keys) and message bodies never go into logs: callers
   pass only identifiers, sizes and verdicts. Values with spaces, quotes,
   control or non-ASCII bytes must be added with log_value() or buf_log_kv(),
   which quote and escape them so that one event is always one line. */

#include "lib.h"
#include "buf.h"

/* A line longer than this (newline included) is cut and ends in "...". */
#define LOG_LINE_MAX 8192
/* log_value() slots, and the size of each (an escaped value that does not
   fit is cut and ends in ..."). */
#define LOG_VALUE_SLOTS 4
#define LOG_VALUE_MAX 2048

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_ERROR,
	LOG_LEVEL_FATAL,
};

/* Sets the role name ("master", "vault", "front", "cli") shown on each
   line. Not thread-safe; call once at start. */
void log_set_role(const char *role);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "debug", "info", "warning", "error". Returns 0 or -1. */
int log_level_parse(const char *name, enum log_level *level_r);
/* "debug", "info", "warning", "error" or "fatal". */
const char *log_level_name(enum log_level level);
/* Redirect output to fd (default 2). For tests. */
void log_set_fd(int fd);

/* conn may be NULL. fmt produces the key=value fields (may be ""). Safe to
   call from worker threads: each line is written with one write(2). */
void log_event(enum log_level level, const char *conn, const char *event,
	       const char *fmt, ...) ATTR_FORMAT(4, 5);
#define log_debug(conn, event, ...) \
	log_event(LOG_LEVEL_DEBUG, conn, event, __VA_ARGS__)
#define log_info(conn, event, ...) \
	log_event(LOG_LEVEL_INFO, conn, event, __VA_ARGS__)
#define log_warning(conn, event, ...) \
	log_event(LOG_LEVEL_WARNING, conn, event, __VA_ARGS__)
#define log_error(conn, event, ...) \
	log_event(LOG_LEVEL_ERROR, conn, event, __VA_ARGS__)

/* Environment failure: logs at FATAL and exits with MARMOT_EXIT_FATAL. */
void fatal(const char *event, const char *fmt, ...)
	ATTR_FORMAT(2, 3) ATTR_NORETURN;

/* Appends key=value to buf, quoting and escaping the value if needed
   (space, '"', '\\', '=', control bytes and bytes >= 0x80 as \xNN). A
   leading space is added when buf is not empty. */
void buf_log_kv(struct buf *buf, const char *key, const char *value);
/* Returns value escaped as buf_log_kv() would, in a thread-local buffer that
   is valid until the next call from the same thread with the same slot
   (0..3), so up to four values can go into one log line. */
const char *log_value(unsigned int slot, const char *value);

#endif
