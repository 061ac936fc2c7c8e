/* test-log.c - unit tests of log.c: line format, level filtering, value
   escaping (including newline injection), the conn field, truncation of long
   lines, thread safety and fatal(). Output is captured with log_set_fd() on
   a pipe or a temporary file. */

#include "lib.h"
#include "buf.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

struct capture {
	int fds[2];
	struct buf out;
};

static int capture_setup(void **state)
{
	struct capture *cap = i_new(struct capture, 1);

	if (pipe2(cap->fds, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	log_set_fd(cap->fds[1]);
	log_set_role("marmot");
	log_set_level(LOG_LEVEL_INFO);
	*state = cap;
	return 0;
}

static int capture_teardown(void **state)
{
	struct capture *cap = *state;

	log_set_fd(STDERR_FILENO);
	close(cap->fds[0]);
	close(cap->fds[1]);
	buf_free(&cap->out);
	i_free(cap);
	return 0;
}

/* Returns everything written since the last call. */
static const char *capture_read(struct capture *cap)
{
	buf_reset(&cap->out);
	for (;;) {
		uint8_t *p = buf_reserve(&cap->out, 4096);
		ssize_t ret = read(cap->fds[0], p, 4096);

		if (ret <= 0) {
			assert_true(ret == 0 || errno == EAGAIN);
			break;
		}
		buf_commit(&cap->out, (size_t)ret);
	}
	return buf_cstr(&cap->out);
}

static size_t count_char(const char *s, char c)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == c;
	return n;
}

static void assert_matches(const char *str, const char *pattern)
{
	regex_t re;

	assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	if (regexec(&re, str, 0, NULL, 0) != 0)
		fail_msg("'%s' does not match '%s'", str, pattern);
	regfree(&re);
}

static void test_log_format(void **state)
{
	struct capture *cap = *state;
	char pattern[256];

	log_info(NULL, "smtp.connect", "ip=%s port=%d", "127.0.0.1", 25);
	snprintf(pattern, sizeof(pattern),
		 "^20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:"
		 "[0-6][0-9]\\.[0-9]{3}Z marmot\\[%ld\\] info smtp\\.connect "
		 "ip=127\\.0\\.0\\.1 port=25\n$",
		 (long)getpid());
	assert_matches(capture_read(cap), pattern);
}

static void test_log_role(void **state)
{
	struct capture *cap = *state;
	char pattern[128];

	log_set_role("front");
	log_warning(NULL, "x.y", "a=1");
	snprintf(pattern, sizeof(pattern),
		 "Z front\\[%ld\\] warning x\\.y a=1\n$", (long)getpid());
	assert_matches(capture_read(cap), pattern);

	/* an overlong role is cut, not overflowing */
	log_set_role("a-role-name-that-is-much-longer-than-thirty-two-bytes");
	log_error(NULL, "x.y", "%s", "");
	assert_matches(capture_read(cap),
		       "Z a-role-name-that-is-much-longer\\[[0-9]+\\] error "
		       "x\\.y\n$");
}

static void test_log_empty_fields(void **state)
{
	struct capture *cap = *state;

	/* no trailing space when there are no fields */
	log_info(NULL, "master.start", "%s", "");
	assert_matches(capture_read(cap), "\\] info master\\.start\n$");
	log_info("c1", "master.start", "%s", "");
	assert_matches(capture_read(cap), "\\] info master\\.start conn=c1\n$");
}

static void test_log_conn(void **state)
{
	struct capture *cap = *state;

	log_info("8f3a21", "smtp.rcpt", "to=%s", "a@b");
	assert_matches(capture_read(cap),
		       "\\] info smtp\\.rcpt conn=8f3a21 to=a@b\n$");
	log_info(NULL, "smtp.rcpt", "to=%s", "a@b");
	const char *line = capture_read(cap);
	assert_null(strstr(line, "conn="));
	assert_matches(line, "\\] info smtp\\.rcpt to=a@b\n$");
}

static void test_log_level_filter(void **state)
{
	static const struct {
		enum log_level set;
		enum log_level msg;
		bool shown;
	} tests[] = {
		{ LOG_LEVEL_INFO, LOG_LEVEL_DEBUG, false },
		{ LOG_LEVEL_INFO, LOG_LEVEL_INFO, true },
		{ LOG_LEVEL_INFO, LOG_LEVEL_ERROR, true },
		{ LOG_LEVEL_DEBUG, LOG_LEVEL_DEBUG, true },
		{ LOG_LEVEL_WARNING, LOG_LEVEL_INFO, false },
		{ LOG_LEVEL_WARNING, LOG_LEVEL_WARNING, true },
		{ LOG_LEVEL_ERROR, LOG_LEVEL_WARNING, false },
		{ LOG_LEVEL_ERROR, LOG_LEVEL_ERROR, true },
	};
	struct capture *cap = *state;

	assert_int_equal(log_get_level(), LOG_LEVEL_INFO);
	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		log_set_level(tests[i].set);
		assert_int_equal(log_get_level(), tests[i].set);
		log_event(tests[i].msg, NULL, "lvl.test", "i=%zu", i);
		const char *out = capture_read(cap);
		if (tests[i].shown) {
			assert_int_equal(count_char(out, '\n'), 1);
			assert_non_null(
				strstr(out, log_level_name(tests[i].msg)));
		} else {
			assert_string_equal(out, "");
		}
	}
}

static void test_log_level_parse(void **state)
{
	static const struct {
		const char *name;
		int ret;
		enum log_level level;
	} tests[] = {
		{ "debug", 0, LOG_LEVEL_DEBUG },
		{ "info", 0, LOG_LEVEL_INFO },
		{ "warning", 0, LOG_LEVEL_WARNING },
		{ "error", 0, LOG_LEVEL_ERROR },
		{ "fatal", -1, 0 },
		{ "INFO", -1, 0 },
		{ "", -1, 0 },
		{ "info ", -1, 0 },
		{ "warn", -1, 0 },
	};

	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		enum log_level level = LOG_LEVEL_FATAL;

		assert_int_equal(log_level_parse(tests[i].name, &level),
				 tests[i].ret);
		if (tests[i].ret == 0)
			assert_int_equal(level, tests[i].level);
		else
			assert_int_equal(level, LOG_LEVEL_FATAL);
	}
}

static const struct {
	const char *input;
	const char *expected;
} escape_tests[] = {
	{ "plain", "plain" },
	{ "a@b.example", "a@b.example" },
	{ "<user@example.com>", "<user@example.com>" },
	{ "", "\"\"" },
	{ "a b", "\"a b\"" },
	{ "a\"b", "\"a\\\"b\"" },
	{ "a\\b", "\"a\\\\b\"" },
	{ "k=v", "\"k=v\"" },
	{ "a\nb", "\"a\\x0ab\"" },
	{ "a\r\nb=1 evil=yes", "\"a\\x0d\\x0ab=1 evil=yes\"" },
	{ "\t", "\"\\x09\"" },
	{ "\x7f", "\"\\x7f\"" },
	{ "caf\xc3\xa9", "\"caf\\xc3\\xa9\"" },
	{ "\x1b[31m", "\"\\x1b[31m\"" },
};

static void test_log_value_escape(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(escape_tests); i++) {
		assert_string_equal(log_value(0, escape_tests[i].input),
				    escape_tests[i].expected);
	}
	assert_string_equal(log_value(3, NULL), "\"\"");
}

static void test_buf_log_kv(void **state)
{
	struct buf buf = BUF_INIT;
	char expected[128];

	for (size_t i = 0; i < N_ELEMENTS(escape_tests); i++) {
		buf_reset(&buf);
		buf_log_kv(&buf, "k", escape_tests[i].input);
		snprintf(expected, sizeof(expected), "k=%s",
			 escape_tests[i].expected);
		assert_string_equal(buf_cstr(&buf), expected);
	}
	buf_reset(&buf);
	buf_log_kv(&buf, "user", "bob");
	buf_log_kv(&buf, "reason", "bad password");
	buf_log_kv(&buf, "none", NULL);
	assert_string_equal(buf_cstr(&buf),
			    "user=bob reason=\"bad password\" none=\"\"");
	buf_free(&buf);
}

static void test_log_value_slots(void **state)
{
	const char *a = log_value(0, "one value");
	const char *b = log_value(1, "two");
	const char *c = log_value(2, "x=y");
	const char *d = log_value(3, "");

	assert_string_equal(a, "\"one value\"");
	assert_string_equal(b, "two");
	assert_string_equal(c, "\"x=y\"");
	assert_string_equal(d, "\"\"");
	/* reusing a slot only changes that slot */
	log_value(1, "three");
	assert_string_equal(a, "\"one value\"");
	assert_string_equal(b, "three");
}

static void test_log_value_long(void **state)
{
	size_t len = LOG_VALUE_MAX * 2;
	char *value = i_malloc(len + 1);
	const char *out;

	memset(value, 'a', len);
	out = log_value(0, value);
	assert_true(strlen(out) < LOG_VALUE_MAX);
	assert_int_equal(out[0], '"');
	assert_string_equal(out + strlen(out) - 4, "...\"");

	/* every byte escaped: the cut must not split an \xNN escape */
	memset(value, '\n', len);
	out = log_value(1, value);
	assert_true(strlen(out) < LOG_VALUE_MAX);
	assert_null(strchr(out, '\n'));
	assert_matches(out, "^\"(\\\\x0a)+\\.\\.\\.\"$");
	i_free(value);
}

static void test_log_newline_injection(void **state)
{
	struct capture *cap = *state;
	const char *out;

	/* through log_value(): quoted and escaped */
	log_info("c1", "imap.login", "user=%s", log_value(0, "a\nb"));
	out = capture_read(cap);
	assert_int_equal(count_char(out, '\n'), 1);
	assert_matches(out, " user=\"a\\\\x0ab\"\n$");

	/* a careless caller passing raw bytes still cannot split the line */
	log_info("c1", "imap.login", "user=%s",
		 "a\n2026-01-01T00:00:00.000Z master[1] info fake.event");
	out = capture_read(cap);
	assert_int_equal(count_char(out, '\n'), 1);
	assert_non_null(strstr(out, "user=a\\x0a2026"));

	/* nor can the event name or the conn id */
	log_info("c\r\n1", "ev\nx", "%s", "");
	out = capture_read(cap);
	assert_int_equal(count_char(out, '\n'), 1);
	assert_non_null(strstr(out, "ev\\x0ax conn=c\\x0d\\x0a1\n"));
}

static void test_log_truncate(void **state)
{
	struct capture *cap = *state;
	size_t len = LOG_LINE_MAX * 3;
	char *value = i_malloc(len + 1);
	const char *out;

	memset(value, 'v', len);
	log_info(NULL, "big", "x=%s", value);
	out = capture_read(cap);
	assert_int_equal(strlen(out), LOG_LINE_MAX);
	assert_int_equal(count_char(out, '\n'), 1);
	assert_string_equal(out + LOG_LINE_MAX - 4, "...\n");

	/* escapes at the cut are not split */
	memset(value, '\n', len);
	log_info(NULL, "big", "x=%s", value);
	out = capture_read(cap);
	assert_true(strlen(out) <= LOG_LINE_MAX);
	assert_int_equal(count_char(out, '\n'), 1);
	assert_matches(out, "x=(\\\\x0a)+\\.\\.\\.\n$");

	/* an empty value, after the long lines, is a normal line again */
	value[0] = '\0';
	log_info(NULL, "small", "x=%s", value);
	out = capture_read(cap);
	assert_matches(out, " small x=\n$");
	i_free(value);
}

#define THREAD_COUNT 8
#define THREAD_LINES 500

static void *log_thread(void *context)
{
	uintptr_t n = (uintptr_t)context;
	char pad[300];

	memset(pad, 'a' + (int)n, sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	for (unsigned int i = 0; i < THREAD_LINES; i++) {
		log_info(NULL, "thread.line", "t=%u i=%u v=%s %s", (unsigned)n,
			 i, log_value(0, "x y"), pad);
	}
	return NULL;
}

static void test_log_threads(void **state)
{
	char dir[] = "/tmp/marmot-test-log-XXXXXX";
	char path[64], *data, *line, *save = NULL;
	pthread_t threads[THREAD_COUNT];
	unsigned int counts[THREAD_COUNT] = { 0 }, lines = 0;
	FILE *f;
	long size;
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/log", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	log_set_fd(fd);
	for (uintptr_t i = 0; i < THREAD_COUNT; i++) {
		assert_int_equal(pthread_create(&threads[i], NULL, log_thread,
						(void *)i),
				 0);
	}
	for (unsigned int i = 0; i < THREAD_COUNT; i++)
		pthread_join(threads[i], NULL);
	log_set_fd(STDERR_FILENO);
	close(fd);

	f = fopen(path, "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	data = i_malloc((size_t)size + 1);
	assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	for (line = strtok_r(data, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned int t, i;
		const char *p = strstr(line, " t=");

		assert_non_null(p);
		assert_int_equal(sscanf(p, " t=%u i=%u", &t, &i), 2);
		assert_true(t < THREAD_COUNT);
		/* the whole line came from one thread: its own padding */
		assert_non_null(strstr(line, " v=\"x y\" "));
		p = strrchr(line, ' ') + 1;
		assert_int_equal(strlen(p), 299);
		assert_int_equal(strspn(p, (char[]){ (char)('a' + t), 0 }),
				 299);
		counts[t]++;
		lines++;
	}
	assert_int_equal(lines, THREAD_COUNT * THREAD_LINES);
	for (unsigned int i = 0; i < THREAD_COUNT; i++)
		assert_int_equal(counts[i], THREAD_LINES);
	i_free(data);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void test_log_fatal(void **state)
{
	struct capture *cap = *state;
	int status;
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		log_set_level(LOG_LEVEL_ERROR);
		fatal("config.broken", "path=%s", log_value(0, "/x y"));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), MARMOT_EXIT_FATAL);
	assert_matches(capture_read(cap),
		       "^[^\n]+Z marmot\\[[0-9]+\\] fatal config\\.broken "
		       "path=\"/x y\"\n$");
}

#define T(f) cmocka_unit_test_setup_teardown(f, capture_setup, capture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_log_format),
		T(test_log_role),
		T(test_log_empty_fields),
		T(test_log_conn),
		T(test_log_level_filter),
		T(test_log_level_parse),
		T(test_log_value_escape),
		T(test_buf_log_kv),
		T(test_log_value_slots),
		T(test_log_value_long),
		T(test_log_newline_injection),
		T(test_log_truncate),
		T(test_log_threads),
		T(test_log_fatal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
