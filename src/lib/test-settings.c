/* test-settings.c - unit tests of settings.c: good and bad files (each bad
   one checks the line number and the key phrase of the error), defaults,
   quoting, port derivation, path resolution, the default file round trip,
   doc/config.md against settings_write_doc(), and random and truncated
   input. Files are written under a mkdtemp() directory that each test
   removes. */

#include "lib.h"
#include "buf.h"
#include "settings.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

struct fixture {
	char dir[64];
	char path[96];
};

static int fixture_setup(void **state)
{
	struct fixture *f = i_new(struct fixture, 1);

	snprintf(f->dir, sizeof(f->dir), "/tmp/marmot-test-settings-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/marmot.conf", f->dir);
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	(void)unlink(f->path);
	if (rmdir(f->dir) < 0)
		fprintf(stderr, "# rmdir %s: %s\n", f->dir, strerror(errno));
	i_free(f);
	return 0;
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static int load_text(struct fixture *f, const char *text,
		     struct marmot_settings **set_r, char **error_r)
{
	write_file(f->path, text, strlen(text));
	return settings_load(f->dir, NULL, set_r, error_r);
}

/* A setting's effective value as text, for table-driven checks. */
static char *field(const struct marmot_settings *set, const char *name)
{
	for (unsigned int i = 0; i < SETTINGS_PORT_COUNT; i++) {
		char pname[32];

		snprintf(pname, sizeof(pname), "%s_port",
			 settings_port_name(i));
		if (strcmp(name, pname) == 0)
			return i_strdup_printf("%u", set->ports[i]);
	}
	if (strcmp(name, "hostname") == 0)
		return i_strdup(set->hostname);
	if (strcmp(name, "user") == 0)
		return i_strdup(set->user);
	if (strcmp(name, "listen") == 0) {
		struct buf b = BUF_INIT;
		char *ret;

		for (char **p = set->listen; *p != NULL; p++) {
			if (p != set->listen)
				buf_append_c(&b, ',');
			buf_append_str(&b, *p);
		}
		ret = i_strdup(buf_cstr(&b));
		buf_free(&b);
		return ret;
	}
	if (strcmp(name, "port_base") == 0)
		return i_strdup_printf("%u", set->port_base);
	if (strcmp(name, "tls_cert") == 0)
		return i_strdup(set->tls_cert);
	if (strcmp(name, "tls_key") == 0)
		return i_strdup(set->tls_key);
	if (strcmp(name, "log_level") == 0)
		return i_strdup(set->log_level);
	if (strcmp(name, "vault_max_hashes") == 0)
		return i_strdup_printf("%u", set->vault_max_hashes);
	if (strcmp(name, "auth_cache_ttl") == 0)
		return i_strdup_printf("%u", set->auth_cache_ttl);
	if (strcmp(name, "max_connections") == 0)
		return i_strdup_printf("%u", set->max_connections);
	if (strcmp(name, "max_connections_per_ip") == 0)
		return i_strdup_printf("%u", set->max_connections_per_ip);
	if (strcmp(name, "shutdown_timeout") == 0)
		return i_strdup_printf("%u", set->shutdown_timeout);
	if (strcmp(name, "idle_timeout") == 0)
		return i_strdup_printf("%u", set->idle_timeout);
	if (strcmp(name, "max_line_length") == 0)
		return i_strdup_printf(
			"%llu", (unsigned long long)set->max_line_length);
	fail_msg("unknown field %s", name);
	return NULL;
}

static void assert_field(const struct marmot_settings *set, const char *name,
			 const char *expected)
{
	char *value = field(set, name);

	if (strcmp(value, expected) != 0) {
		fail_msg("%s: got '%s', expected '%s'", name, value, expected);
	}
	i_free(value);
}

static void test_settings_defaults(void **state)
{
	static const struct {
		const char *name;
		const char *value;
	} defaults[] = {
		{ "hostname", "mail.example.com" },
		{ "user", "marmot" },
		{ "listen", "*" },
		{ "port_base", "0" },
		{ "smtp_port", "25" },
		{ "submission_port", "587" },
		{ "submissions_port", "465" },
		{ "imap_port", "143" },
		{ "imaps_port", "993" },
		{ "pop3_port", "110" },
		{ "pop3s_port", "995" },
		{ "http_port", "80" },
		{ "https_port", "443" },
		{ "log_level", "info" },
		{ "vault_max_hashes", "2" },
		{ "auth_cache_ttl", "300" },
		{ "max_connections", "10000" },
		{ "max_connections_per_ip", "50" },
		{ "shutdown_timeout", "8" },
		{ "idle_timeout", "300" },
		{ "max_line_length", "65536" },
	};
	struct fixture *f = *state;
	struct marmot_settings *set;
	char *error = NULL, expected[160];

	assert_int_equal(
		load_text(f, "hostname = mail.example.com\n", &set, &error), 0);
	assert_null(error);
	for (size_t i = 0; i < N_ELEMENTS(defaults); i++)
		assert_field(set, defaults[i].name, defaults[i].value);
	snprintf(expected, sizeof(expected), "%s/tls/cert.pem", f->dir);
	assert_string_equal(set->tls_cert, expected);
	snprintf(expected, sizeof(expected), "%s/tls/key.pem", f->dir);
	assert_string_equal(set->tls_key, expected);
	assert_string_equal(set->data_dir, f->dir);
	assert_string_equal(set->config_path, f->path);
	assert_null(set->listen[1]);
	settings_free(&set);
	assert_null(set);
	settings_free(&set); /* NULL is fine */
}

static const struct {
	const char *conf;
	const char *name;
	const char *expected;
} good_tests[] = {
	/* syntax */
	{ "hostname=mx.example.com", "hostname", "mx.example.com" },
	{ "  hostname   =\tmx.example.com  \t", "hostname", "mx.example.com" },
	{ "# comment\n\n   # indented comment\nhostname = h\n", "hostname",
	  "h" },
	{ "hostname = h\r\nuser = bob\r\n", "user", "bob" },
	{ "hostname = h # trailing comment", "hostname", "h" },
	{ "hostname = h\t# after a tab", "hostname", "h" },
	{ "hostname = h\nuser = a#b", "user", "a#b" },
	{ "hostname = h\nuser=#b", "user", "#b" },
	{ "hostname = h\nuser = \" spaced \"", "user", " spaced " },
	{ "hostname = h\nuser = \"a # b\" # comment", "user", "a # b" },
	{ "hostname = h\nuser = \"q\\\"uote\\\\d\"", "user", "q\"uote\\d" },
	{ "hostname = h\nuser = \"\xc3\xa9t\xc3\xa9\"", "user",
	  "\xc3\xa9t\xc3\xa9" },
	{ "hostname = h\nuser = a = b", "user", "a = b" },
	{ "hostname = h", "user", "marmot" },
	/* host names */
	{ "hostname = MAIL.Example.COM", "hostname", "MAIL.Example.COM" },
	{ "hostname = a-b.c-d.e", "hostname", "a-b.c-d.e" },
	{ "hostname = 123.example", "hostname", "123.example" },
	{ "hostname = localhost", "hostname", "localhost" },
	/* lists */
	{ "hostname = h\nlisten = 127.0.0.1", "listen", "127.0.0.1" },
	{ "hostname = h\nlisten = 127.0.0.1, ::1 ,10.0.0.1", "listen",
	  "127.0.0.1,::1,10.0.0.1" },
	{ "hostname = h\nlisten = \"::\"", "listen", "::" },
	{ "hostname = h\nlisten = *", "listen", "*" },
	/* numbers, times, sizes */
	{ "hostname = h\nport_base = 65000\npop3s_port = 0\nimaps_port = 0\n"
	  "submission_port = 0",
	  "smtp_port", "65025" },
	{ "hostname = h\nvault_max_hashes = 1", "vault_max_hashes", "1" },
	{ "hostname = h\nvault_max_hashes = 64", "vault_max_hashes", "64" },
	{ "hostname = h\nvault_max_hashes = 007", "vault_max_hashes", "7" },
	{ "hostname = h\nauth_cache_ttl = 0", "auth_cache_ttl", "0" },
	{ "hostname = h\nauth_cache_ttl = 1d", "auth_cache_ttl", "86400" },
	{ "hostname = h\nauth_cache_ttl = 90", "auth_cache_ttl", "90" },
	{ "hostname = h\nauth_cache_ttl = 2h", "auth_cache_ttl", "7200" },
	{ "hostname = h\nidle_timeout = 10s", "idle_timeout", "10" },
	{ "hostname = h\nidle_timeout = 1h", "idle_timeout", "3600" },
	{ "hostname = h\nshutdown_timeout = 60", "shutdown_timeout", "60" },
	{ "hostname = h\nshutdown_timeout = 1m", "shutdown_timeout", "60" },
	{ "hostname = h\nmax_line_length = 1K", "max_line_length", "1024" },
	{ "hostname = h\nmax_line_length = 1024", "max_line_length", "1024" },
	{ "hostname = h\nmax_line_length = 16M", "max_line_length",
	  "16777216" },
	{ "hostname = h\nmax_line_length = 2m", "max_line_length", "2097152" },
	{ "hostname = h\nmax_connections = 1000000", "max_connections",
	  "1000000" },
	{ "hostname = h\nmax_connections_per_ip = 1", "max_connections_per_ip",
	  "1" },
	{ "hostname = h\nlog_level = debug", "log_level", "debug" },
	{ "hostname = h\nlog_level = error", "log_level", "error" },
	/* the last line needs no newline; a final newline is fine too */
	{ "hostname = h\nuser = last", "user", "last" },
	{ "hostname = h\nuser = last\n\n\n", "user", "last" },
};

static void test_settings_good(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < N_ELEMENTS(good_tests); i++) {
		struct marmot_settings *set = NULL;
		char *error = NULL;

		if (load_text(f, good_tests[i].conf, &set, &error) < 0)
			fail_msg("good[%zu]: %s", i, error);
		assert_field(set, good_tests[i].name, good_tests[i].expected);
		settings_free(&set);
	}
}

static const struct {
	const char *conf;
	unsigned int line;
	const char *phrase;
} bad_tests[] = {
	/* syntax */
	{ "hostname = h\nhostnme = x", 2,
	  "unknown setting 'hostnme' (did you mean 'hostname'?)" },
	{ "hostname = h\nprot_base = 1", 2, "(did you mean 'port_base'?)" },
	{ "hostname = h\nmax_connection = 1", 2,
	  "(did you mean 'max_connections'?)" },
	{ "hostname = h\nfrobnicate = 1", 2, "unknown setting 'frobnicate'" },
	{ "hostname = h\n\n# c\nuser bob", 4, "missing '='" },
	{ "hostname = h\n = x", 2, "empty setting name" },
	{ "hostname = h\nHostname = x", 2, "invalid character 'H'" },
	{ "hostname = h\nhost name = x", 2, "invalid byte 0x20" },
	{ "hostname = h\nhost-name = x", 2, "invalid character '-'" },
	{ "hostname = h\nuser\x01 = x", 2, "invalid byte 0x01" },
	{ "hostname = a\nuser = b\nhostname = c", 3,
	  "'hostname' is already set on line 1" },
	{ "hostname = a\nuser = \"bob", 2, "unterminated quote" },
	{ "hostname = a\nuser = \"bob\\\"", 2, "unterminated quote" },
	{ "hostname = a\nuser = \"bob\\", 2, "unterminated quote" },
	{ "hostname = a\nuser = \"bob\" x", 2, "unexpected text after" },
	{ "hostname = a\nuser = \"bob\"#x", 2, "preceded by whitespace" },
	{ "hostname = a\nuser = \"b\\nob\"", 2, "invalid escape" },
	{ "hostname = a\nuser =", 2, "'user' needs a value" },
	{ "hostname = a\nuser = # only a comment", 2, "needs a value" },
	{ "hostname = a\nuser = \"\"", 2, "needs a value" },
	{ "hostname = a\nuser = \"a\x1b[0m\"", 2, "control character" },
	{ "hostname = a\nuser = a\x7f", 2, "control character" },
	/* host names */
	{ "hostname = -mail.example.com", 1, "invalid host name" },
	{ "hostname = mail-.example.com", 1, "invalid host name" },
	{ "hostname = mail..example.com", 1, "invalid host name" },
	{ "hostname = mail.example.com.", 1, "invalid host name" },
	{ "hostname = .example.com", 1, "invalid host name" },
	{ "hostname = mail_1.example.com", 1, "invalid host name" },
	{ "hostname = m\xc3\xa4il.example", 1, "invalid host name" },
	{ "hostname = 1234567890123456789012345678901234567890123456789012345"
	  "678901234.example",
	  1, "invalid host name" },
	/* lists */
	{ "hostname = h\nlisten = 127.0.0.256", 2, "invalid IP address" },
	{ "hostname = h\nlisten = localhost", 2, "invalid IP address" },
	{ "hostname = h\nlisten = 127.0.0.1,", 2, "empty address" },
	{ "hostname = h\nlisten = ,::1", 2, "empty address" },
	{ "hostname = h\nlisten = 127.0.0.1,,::1", 2, "empty address" },
	{ "hostname = h\nlisten = *, 127.0.0.1", 2, "cannot be combined" },
	{ "hostname = h\nlisten = [::1]", 2, "invalid IP address" },
	/* numbers */
	{ "hostname = h\nport_base = 65001", 2, "out of range (0..65000)" },
	{ "hostname = h\nport_base = -1", 2, "invalid number" },
	{ "hostname = h\nport_base = 1.5", 2, "invalid number" },
	{ "hostname = h\nport_base = 0x10", 2, "invalid number" },
	{ "hostname = h\nport_base = 10 000", 2, "invalid number" },
	{ "hostname = h\nport_base = 99999999999999999999999", 2,
	  "out of range" },
	{ "hostname = h\nsmtp_port = 65536", 2, "out of range (0..65535)" },
	{ "hostname = h\nsmtp_port = 25s", 2, "invalid port" },
	{ "hostname = h\nvault_max_hashes = 0", 2, "out of range (1..64)" },
	{ "hostname = h\nvault_max_hashes = 65", 2, "out of range" },
	{ "hostname = h\nmax_connections = 0", 2, "out of range" },
	{ "hostname = h\nmax_connections_per_ip = 100001", 2, "out of range" },
	/* times */
	{ "hostname = h\nauth_cache_ttl = 2d", 2, "out of range (0s..1d)" },
	{ "hostname = h\nauth_cache_ttl = 5x", 2, "invalid time '5x'" },
	{ "hostname = h\nauth_cache_ttl = 5 m", 2, "invalid time" },
	{ "hostname = h\nauth_cache_ttl = m", 2, "invalid time" },
	{ "hostname = h\nauth_cache_ttl = 5M", 2, "invalid time" },
	{ "hostname = h\nauth_cache_ttl = 5ms", 2, "invalid time" },
	{ "hostname = h\nauth_cache_ttl = 99999999999999999999d", 2,
	  "out of range" },
	{ "hostname = h\nauth_cache_ttl = 999999999999999999d", 2,
	  "out of range" },
	{ "hostname = h\nidle_timeout = 9", 2, "out of range (10s..1h)" },
	{ "hostname = h\nidle_timeout = 61m", 2, "out of range" },
	{ "hostname = h\nshutdown_timeout = 0", 2, "out of range (1s..1m)" },
	{ "hostname = h\nshutdown_timeout = 61", 2, "out of range" },
	/* sizes */
	{ "hostname = h\nmax_line_length = 1023", 2, "out of range (1K..16M)" },
	{ "hostname = h\nmax_line_length = 17M", 2, "out of range" },
	{ "hostname = h\nmax_line_length = 1G", 2, "out of range" },
	{ "hostname = h\nmax_line_length = 64KB", 2, "invalid size" },
	{ "hostname = h\nmax_line_length = 64T", 2, "invalid size" },
	{ "hostname = h\nmax_line_length = 99999999999999999G", 2,
	  "out of range" },
	/* log level */
	{ "hostname = h\nlog_level = verbose", 2, "invalid log level" },
	{ "hostname = h\nlog_level = INFO", 2, "invalid log level" },
	{ "hostname = h\nlog_level = fatal", 2, "invalid log level" },
	/* ports */
	{ "hostname = h\nport_base = 65000", 2,
	  "puts the submission port at 65587" },
	{ "hostname = h\nsmtp_port = 143", 2,
	  "smtp_port 143 is also the imap "
	  "port" },
	{ "hostname = h\nimap_port = 2000\nsmtp_port = 2000", 3,
	  "smtp_port 2000 is also the imap port" },
	{ "hostname = h\nsmtp_port = 2000\nimap_port = 2000", 3,
	  "imap_port 2000 is also the smtp port" },
	{ "hostname = h\nport_base = 1000\nhttp_port = 1025", 3,
	  "http_port 1025 is also the smtp port" },
	/* an error after good lines: the first error is the one reported */
	{ "hostname = h\nuser = u\nlisten = ::1\nbad\nworse = 1", 4,
	  "missing '='" },
};

static void test_settings_bad(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < N_ELEMENTS(bad_tests); i++) {
		struct marmot_settings *set = (void *)1;
		char *error = NULL, prefix[128];

		if (load_text(f, bad_tests[i].conf, &set, &error) == 0)
			fail_msg("bad[%zu] loaded: %s", i, bad_tests[i].conf);
		/* nothing is partially applied */
		assert_null(set);
		assert_non_null(error);
		snprintf(prefix, sizeof(prefix), "%s:%u: ", f->path,
			 bad_tests[i].line);
		if (strncmp(error, prefix, strlen(prefix)) != 0 ||
		    strstr(error, bad_tests[i].phrase) == NULL) {
			fail_msg("bad[%zu]: got '%s', expected '%s' + '%s'", i,
				 error, prefix, bad_tests[i].phrase);
		}
		i_free(error);
	}
}

static void test_settings_missing_required(void **state)
{
	struct fixture *f = *state;
	struct marmot_settings *set;
	char *error, expected[160];

	snprintf(expected, sizeof(expected), "%s: 'hostname' is required",
		 f->path);
	assert_int_equal(load_text(f, "user = bob\n", &set, &error), -1);
	assert_string_equal(error, expected);
	i_free(error);
	assert_int_equal(load_text(f, "", &set, &error), -1);
	assert_string_equal(error, expected);
	i_free(error);
	assert_int_equal(load_text(f, "# only comments\n\n", &set, &error), -1);
	assert_string_equal(error, expected);
	i_free(error);
}

static void test_settings_missing_file(void **state)
{
	struct fixture *f = *state;
	struct marmot_settings *set;
	char *error, expected[160];

	snprintf(expected, sizeof(expected), "%s: No such file or directory",
		 f->path);
	assert_int_equal(settings_load(f->dir, NULL, &set, &error), -1);
	assert_null(set);
	assert_string_equal(error, expected);
	i_free(error);

	/* an explicit path is reported as given */
	assert_int_equal(settings_load(f->dir, "no/such.conf", &set, &error),
			 -1);
	assert_string_equal(error, "no/such.conf: No such file or directory");
	i_free(error);

	/* a directory is not a config file */
	assert_int_equal(settings_load(NULL, f->dir, &set, &error), -1);
	assert_non_null(strstr(error, "not a regular file"));
	i_free(error);

	assert_int_equal(settings_load(NULL, NULL, &set, &error), -1);
	i_free(error);
}

static void test_settings_long_line(void **state)
{
	struct fixture *f = *state;
	struct marmot_settings *set;
	char *error, prefix[128];
	struct buf text = BUF_INIT;

	/* exactly 4096 bytes (a comment) is fine */
	buf_append_str(&text, "hostname = h\n#");
	for (unsigned int i = 1; i < 4096; i++)
		buf_append_c(&text, 'x');
	buf_append_str(&text, "\r\n");
	assert_int_equal(load_text(f, buf_cstr(&text), &set, &error), 0);
	settings_free(&set);

	/* one more is not */
	buf_truncate(&text, text.used - 2);
	buf_append_str(&text, "x\nuser = u\n");
	assert_int_equal(load_text(f, buf_cstr(&text), &set, &error), -1);
	snprintf(prefix, sizeof(prefix), "%s:2: line is longer than 4096",
		 f->path);
	assert_string_equal(strstr(error, prefix), error);
	i_free(error);
	buf_free(&text);
}

static void test_settings_nul_byte(void **state)
{
	static const char text[] = "hostname = h\nuser = a\0b\n";
	struct fixture *f = *state;
	struct marmot_settings *set;
	char *error, expected[160];

	write_file(f->path, text, sizeof(text) - 1);
	assert_int_equal(settings_load(f->dir, NULL, &set, &error), -1);
	snprintf(expected, sizeof(expected), "%s:2: NUL byte in the file",
		 f->path);
	assert_string_equal(error, expected);
	i_free(error);
}

static void test_settings_ports(void **state)
{
	static const struct {
		const char *conf;
		unsigned int ports[SETTINGS_PORT_COUNT];
	} tests[] = {
		{ "hostname = h",
		  { 25, 587, 465, 143, 993, 110, 995, 80, 443 } },
		{ "hostname = h\nport_base = 10000",
		  { 10025, 10587, 10465, 10143, 10993, 10110, 10995, 10080,
		    10443 } },
		{ "hostname = h\nport_base = 10000\nsmtp_port = 2525\n"
		  "https_port = 8443",
		  { 2525, 10587, 10465, 10143, 10993, 10110, 10995, 10080,
		    8443 } },
		{ "hostname = h\npop3_port = 0\npop3s_port = 0\nhttp_port = 0",
		  { 25, 587, 465, 143, 993, 0, 0, 0, 443 } },
		/* two disabled listeners do not collide */
		{ "hostname = h\nport_base = 1\nsmtp_port = 0\nimap_port = 0",
		  { 0, 588, 466, 0, 994, 111, 996, 81, 444 } },
		/* an explicit port equal to its own default is fine */
		{ "hostname = h\nsmtp_port = 25",
		  { 25, 587, 465, 143, 993, 110, 995, 80, 443 } },
		/* overflowing derived ports can be set explicitly */
		{ "hostname = h\nport_base = 65000\nsubmission_port = 1587\n"
		  "imaps_port = 0\npop3s_port = 1995",
		  { 65025, 1587, 65465, 65143, 0, 65110, 1995, 65080, 65443 } },
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		struct marmot_settings *set;
		char *error = NULL;

		if (load_text(f, tests[i].conf, &set, &error) < 0)
			fail_msg("ports[%zu]: %s", i, error);
		for (unsigned int p = 0; p < SETTINGS_PORT_COUNT; p++)
			assert_int_equal(set->ports[p], tests[i].ports[p]);
		settings_free(&set);
	}
}

static void test_settings_port_table(void **state)
{
	static const struct {
		enum settings_port port;
		const char *name;
		unsigned int number;
		bool tls;
	} tests[] = {
		{ SETTINGS_PORT_SMTP, "smtp", 25, false },
		{ SETTINGS_PORT_SUBMISSION, "submission", 587, false },
		{ SETTINGS_PORT_SUBMISSIONS, "submissions", 465, true },
		{ SETTINGS_PORT_IMAP, "imap", 143, false },
		{ SETTINGS_PORT_IMAPS, "imaps", 993, true },
		{ SETTINGS_PORT_POP3, "pop3", 110, false },
		{ SETTINGS_PORT_POP3S, "pop3s", 995, true },
		{ SETTINGS_PORT_HTTP, "http", 80, false },
		{ SETTINGS_PORT_HTTPS, "https", 443, true },
	};

	assert_int_equal(N_ELEMENTS(tests), SETTINGS_PORT_COUNT);
	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		assert_string_equal(settings_port_name(tests[i].port),
				    tests[i].name);
		assert_int_equal(settings_port_default(tests[i].port),
				 tests[i].number);
		assert_int_equal(settings_port_implicit_tls(tests[i].port),
				 tests[i].tls);
	}
}

static void test_settings_paths(void **state)
{
	struct fixture *f = *state;
	struct marmot_settings *set;
	char *error = NULL, expected[160], *cwd, *rel;

	/* relative against data_dir, absolute kept */
	assert_int_equal(load_text(f,
				   "hostname = h\ntls_cert = c/x.pem\n"
				   "tls_key = /etc/k.pem\n",
				   &set, &error),
			 0);
	snprintf(expected, sizeof(expected), "%s/c/x.pem", f->dir);
	assert_string_equal(set->tls_cert, expected);
	assert_string_equal(set->tls_key, "/etc/k.pem");
	settings_free(&set);

	/* a data_dir with a trailing slash gives no double slash */
	snprintf(expected, sizeof(expected), "%s/", f->dir);
	assert_int_equal(settings_load(expected, NULL, &set, &error), 0);
	snprintf(expected, sizeof(expected), "%s/c/x.pem", f->dir);
	assert_string_equal(set->tls_cert, expected);
	settings_free(&set);

	/* only a config path: its directory is the data directory */
	assert_int_equal(settings_load(NULL, f->path, &set, &error), 0);
	assert_string_equal(set->data_dir, f->dir);
	assert_string_equal(set->config_path, f->path);
	settings_free(&set);

	/* a relative data_dir is made absolute */
	cwd = getcwd(NULL, 0);
	assert_non_null(cwd);
	assert_int_equal(chdir("/tmp"), 0);
	rel = f->dir + strlen("/tmp/");
	assert_int_equal(settings_load(rel, NULL, &set, &error), 0);
	assert_string_equal(set->data_dir, f->dir);
	assert_string_equal(set->config_path, f->path);
	snprintf(expected, sizeof(expected), "%s/c/x.pem", f->dir);
	assert_string_equal(set->tls_cert, expected);
	settings_free(&set);
	assert_int_equal(chdir(cwd), 0);
	free(cwd);
}

static void test_settings_write_default(void **state)
{
	static const struct {
		const char *hostname, *listen, *user;
		unsigned int port_base;
		const char *listen_loaded;
	} tests[] = {
		{ "mail.example.com", NULL, NULL, 0, "*" },
		{ "mail.example.com", "*", "marmot", 0, "*" },
		{ "mx1.example.org", "127.0.0.1, ::1", "mail", 10000,
		  "127.0.0.1,::1" },
		{ "h", "::", "user with # and \"quotes\" ", 1, "::" },
		{ "h", "0.0.0.0", " lead", 65000 - 2000, "0.0.0.0" },
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < N_ELEMENTS(tests); i++) {
		struct marmot_settings *set;
		struct buf out = BUF_INIT;
		char *error = NULL, *listen;

		settings_write_default(&out, tests[i].hostname, tests[i].listen,
				       tests[i].port_base, tests[i].user);
		/* documented: one comment per setting, 80 columns */
		assert_non_null(
			strstr(buf_cstr(&out), "#max_line_length = 64K"));
		assert_non_null(
			strstr(buf_cstr(&out), "# Concurrent argon2id"));
		for (const char *l = buf_cstr(&out); *l != '\0';) {
			const char *nl = strchr(l, '\n');

			assert_non_null(nl);
			assert_true(nl - l <= 80);
			l = nl + 1;
		}
		if (load_text(f, buf_cstr(&out), &set, &error) < 0)
			fail_msg("default[%zu]: %s\n%s", i, error,
				 buf_cstr(&out));
		assert_string_equal(set->hostname, tests[i].hostname);
		assert_string_equal(set->user, tests[i].user == NULL
						       ? "marmot"
						       : tests[i].user);
		assert_int_equal(set->port_base, tests[i].port_base);
		assert_int_equal(set->ports[SETTINGS_PORT_SMTP],
				 tests[i].port_base + 25);
		listen = field(set, "listen");
		assert_string_equal(listen, tests[i].listen_loaded);
		i_free(listen);
		assert_int_equal(set->max_line_length, 65536);
		settings_free(&set);
		buf_free(&out);
	}
}

static void test_settings_write_default_no_hostname(void **state)
{
	/* without a host name the file says where to put it, and does not
	   load until it is set */
	struct fixture *f = *state;
	struct marmot_settings *set;
	struct buf out = BUF_INIT;
	char *error;

	settings_write_default(&out, NULL, NULL, 0, NULL);
	assert_non_null(strstr(buf_cstr(&out), "\n#hostname = "));
	assert_int_equal(load_text(f, buf_cstr(&out), &set, &error), -1);
	assert_non_null(strstr(error, "'hostname' is required"));
	i_free(error);
	buf_free(&out);
}

static void test_settings_doc_matches(void **state)
{
	const char *src = getenv("MARMOT_SOURCE_DIR");
	struct buf doc = BUF_INIT, file = BUF_INIT;
	char path[4096];
	int fd;

	assert_non_null(src);
	snprintf(path, sizeof(path), "%s/doc/config.md", src);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail_msg("%s: %s", path, strerror(errno));
	for (;;) {
		uint8_t *p = buf_reserve(&file, 4096);
		ssize_t ret = read(fd, p, 4096);

		assert_true(ret >= 0);
		if (ret == 0)
			break;
		buf_commit(&file, (size_t)ret);
	}
	close(fd);
	settings_write_doc(&doc);
	if (!span_eq(buf_span(&doc), buf_span(&file))) {
		fail_msg("doc/config.md differs from settings_write_doc(); "
			 "regenerate it:\n%s",
			 buf_cstr(&doc));
	}
	assert_non_null(strstr(buf_cstr(&doc), "| name | type | default | "
					       "range | meaning |"));
	buf_free(&doc);
	buf_free(&file);
}

static void test_settings_truncated(void **state)
{
	/* every prefix of a valid file either loads or fails cleanly */
	struct fixture *f = *state;
	struct buf out = BUF_INIT;
	size_t loaded = 0;

	settings_write_default(&out, "mail.example.com", "127.0.0.1, ::1", 2000,
			       "u");
	buf_append_str(&out, "user_x = \"quoted # value\"\n");
	for (size_t len = 0; len <= out.used; len++) {
		struct marmot_settings *set = NULL;
		char *error = NULL;

		write_file(f->path, out.data, len);
		if (settings_load(f->dir, NULL, &set, &error) == 0) {
			loaded++;
			settings_free(&set);
		} else {
			assert_null(set);
			assert_true(strncmp(error, f->path, strlen(f->path)) ==
				    0);
			i_free(error);
		}
	}
	/* the full file has an unknown setting; prefixes after hostname
	   and before it load */
	assert_true(loaded > 0);
	assert_true(loaded < out.used);
	buf_free(&out);
}

static void test_settings_random(void **state)
{
	static const char alphabet[] = "abcdehmnorstu_=#\" \t\n\\,.:*019KMsmhd";
	const size_t alpha_len = sizeof(alphabet) - 1;
	struct fixture *f = *state;
	uint8_t data[512];

	srand(12345);
	for (unsigned int iter = 0; iter < 2000; iter++) {
		struct marmot_settings *set = NULL;
		size_t len = (size_t)rand() % sizeof(data);
		char *error = NULL;

		for (size_t i = 0; i < len; i++) {
			/* half raw bytes, half from the syntax's alphabet */
			size_t r = (size_t)rand();

			data[i] = iter % 2 == 0
					  ? (uint8_t)r
					  : (uint8_t)alphabet[r % alpha_len];
		}
		write_file(f->path, data, len);
		if (settings_load(f->dir, NULL, &set, &error) == 0) {
			assert_non_null(set->hostname);
			settings_free(&set);
		} else {
			assert_null(set);
			assert_non_null(error);
			i_free(error);
		}
	}
}

#define T(f) cmocka_unit_test_setup_teardown(f, fixture_setup, fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_settings_defaults),
		T(test_settings_good),
		T(test_settings_bad),
		T(test_settings_missing_required),
		T(test_settings_missing_file),
		T(test_settings_long_line),
		T(test_settings_nul_byte),
		T(test_settings_ports),
		cmocka_unit_test(test_settings_port_table),
		T(test_settings_paths),
		T(test_settings_write_default),
		T(test_settings_write_default_no_hostname),
		cmocka_unit_test(test_settings_doc_matches),
		T(test_settings_truncated),
		T(test_settings_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
