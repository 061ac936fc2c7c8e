/* test-maildir.c - unit tests for maildir.c: modified UTF-7 both ways
   (RFC 3501 5.1.3 examples, surrogate pairs, malformed input), Maildir++
   folder names, the info flags table, reading a hand-made tree (new/ and
   cur/, dovecot-keywords, tmp/ and dot files skipped) and writing then
   reading nested, UTF-8 and dotted folders with flags, keywords, dates,
   empty messages and CRLF. Run by meson under ASan+UBSan. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "pool.h"
#include "maildir.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
	const char *utf7;
	const char *utf8; /* NULL: utf7 is invalid */
	bool encodes_back;
} utf7_tests[] = {
	{ "INBOX", "INBOX", true },
	/* RFC 3501 5.1.3's example */
	{ "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
	  "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8"
	  "\xaa\x9e",
	  true },
	{ "&-", "&", true },
	{ "Tom &- Jerry", "Tom & Jerry", true },
	{ "Entw&APw-rfe",
	  "Entw\xc3\xbc"
	  "rfe",
	  true },
	{ "&2D3eAA-", "\xf0\x9f\x98\x80", true }, /* U+1F600, a pair */
	{ "&AOkA6QDp-", "\xc3\xa9\xc3\xa9\xc3\xa9", true },
	{ "&AC4-", ".", false }, /* encoded ASCII: accepted on input */
	{ "&", NULL, false },
	{ "&AOk", NULL, false }, /* no '-' */
	{ "&-&", NULL, false },
	{ "&AO-", NULL, false }, /* 12 bits: half a unit */
	{ "&AOl-", NULL, false }, /* non-zero padding bits */
	{ "&2D0-", NULL, false }, /* lone high surrogate */
	{ "&3gA-", NULL, false }, /* lone low surrogate */
	{ "&AAA-", NULL, false }, /* U+0000 */
	{ "&A*k-", NULL, false }, /* not modified base64 */
	{ "a\tb", NULL, false },
	{ "caf\xc3\xa9", NULL, false }, /* raw 8-bit */
	{ "&AOk-&AOk-", "\xc3\xa9\xc3\xa9", false }, /* two runs */
};

static void test_utf7(void **state)
{
	pool_t pool = pool_create("test", 1024);

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(utf7_tests); i++) {
		const char *out = imap_utf7_to_utf8(pool, utf7_tests[i].utf7);
		if (utf7_tests[i].utf8 == NULL) {
			if (out != NULL)
				fail_msg("'%s' decoded to '%s'",
					 utf7_tests[i].utf7, out);
			continue;
		}
		if (out == NULL || strcmp(out, utf7_tests[i].utf8) != 0)
			fail_msg("'%s' decoded to '%s'", utf7_tests[i].utf7,
				 out == NULL ? "(null)" : out);
		if (!utf7_tests[i].encodes_back)
			continue;
		out = imap_utf8_to_utf7(pool, utf7_tests[i].utf8);
		if (out == NULL || strcmp(out, utf7_tests[i].utf7) != 0)
			fail_msg("'%s' encoded to '%s'", utf7_tests[i].utf8,
				 out == NULL ? "(null)" : out);
	}
	assert_null(imap_utf8_to_utf7(pool, "bad \xff"));
	assert_null(imap_utf8_to_utf7(pool, "\xed\xa0\x80")); /* surrogate */
	pool_unref(&pool);
}

static const struct {
	const char *name;
	const char *dirname; /* NULL: cannot be encoded */
} name_tests[] = {
	{ "Sent", "Sent" },
	{ "Lists/marmot", "Lists.marmot" },
	{ "A/B/C", "A.B.C" },
	{ "v1.2", "v1&AC4-2" },
	{ "Entw\xc3\xbc"
	  "rfe/\xe6\x97\xa5",
	  "Entw&APw-rfe.&ZeU-" },
	{ "R&D", "R&-D" },
	{ "/x", NULL },
	{ "x/", NULL },
	{ "a//b", NULL },
	{ "bad\xff", NULL },
};

static void test_names(void **state)
{
	pool_t pool = pool_create("test", 1024);

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(name_tests); i++) {
		const char *enc = maildir_name_encode(pool, name_tests[i].name);
		if (name_tests[i].dirname == NULL) {
			assert_null(enc);
			continue;
		}
		if (enc == NULL || strcmp(enc, name_tests[i].dirname) != 0)
			fail_msg("'%s' encoded to '%s'", name_tests[i].name,
				 enc == NULL ? "(null)" : enc);
		assert_string_equal(maildir_name_decode(pool, enc),
				    name_tests[i].name);
	}
	/* Not modified UTF-7: kept as is (made valid UTF-8). */
	assert_string_equal(maildir_name_decode(pool, "caf\xc3\xa9.&x"),
			    "caf\xc3\xa9/&x");
	assert_string_equal(maildir_name_decode(pool, "bad\xff"),
			    "bad\xef\xbf\xbd");
	/* An encoded '/' would add a level: kept raw. */
	assert_string_equal(maildir_name_decode(pool, "a&AC8-b"), "a&AC8-b");
	pool_unref(&pool);
}

static const struct {
	const char *info;
	uint32_t flags;
	const char *keywords;
} info_tests[] = {
	{ "", 0, "" },
	{ "S", MAIL_FLAG_SEEN, "" },
	{ "DFPRST",
	  MAIL_FLAG_DRAFT | MAIL_FLAG_FLAGGED | MAIL_FLAG_ANSWERED |
		  MAIL_FLAG_SEEN | MAIL_FLAG_DELETED,
	  "$Forwarded" },
	{ "Sab", MAIL_FLAG_SEEN, "work todo" },
	{ "ba", 0, "todo work" },
	{ "aa", 0, "work" },
	{ "cz", 0, "" }, /* unknown letters */
	{ "XYZ!,1", 0, "" },
};

static void test_info(void **state)
{
	static const char *const names[] = { "work", "todo", NULL };
	pool_t pool = pool_create("test", 1024);

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(info_tests); i++) {
		const char *const *kw;
		uint32_t flags;
		char joined[256] = "";

		maildir_info_parse(pool, info_tests[i].info, names, 3, &flags,
				   &kw);
		for (unsigned int k = 0; kw[k] != NULL; k++) {
			size_t len = strlen(joined);
			snprintf(joined + len, sizeof(joined) - len, "%s%s",
				 k > 0 ? " " : "", kw[k]);
		}
		if (flags != info_tests[i].flags ||
		    strcmp(joined, info_tests[i].keywords) != 0)
			fail_msg("'%s': flags %x keywords '%s'",
				 info_tests[i].info, flags, joined);
	}
	pool_unref(&pool);
}

/* ---- trees ---- */

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void write_file(const char *path, const char *content, time_t mtime)
{
	FILE *f = fopen(path, "w");
	struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };

	assert_non_null(f);
	fputs(content, f);
	fclose(f);
	if (mtime != 0)
		assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void test_read_tree(void **state)
{
	char root[] = "/tmp/test-maildir.XXXXXX";
	pool_t pool = pool_create("test", 1024);
	struct maildir_folder *folders;
	struct maildir_message *msgs;
	unsigned int count, n;
	const char *error;
	struct buf b = BUF_INIT;

	(void)state;
	assert_non_null(mkdtemp(root));
	static const char *const dirs[] = {
		"cur",
		"new",
		"tmp",
		".Lists",
		".Lists/cur",
		".Lists.x&AOk-",
		".Lists.x&AOk-/new",
		".nomail",
		"..bad",
		"..bad/cur",
	};
	for (size_t i = 0; i < N_ELEMENTS(dirs); i++)
		assert_int_equal(
			mkdir(p_strdup_printf(pool, "%s/%s", root, dirs[i]),
			      0700),
			0);
	write_file(p_strdup_printf(pool, "%s/new/10.a.host", root), "new one\n",
		   1000);
	write_file(p_strdup_printf(pool, "%s/cur/2.a.host:2,FS", root),
		   "second\n", 2000);
	write_file(p_strdup_printf(pool, "%s/cur/9.a.host,S=4:2,RTab", root),
		   "nine\n", 3000);
	write_file(p_strdup_printf(pool, "%s/cur/.hidden:2,S", root), "x", 0);
	write_file(p_strdup_printf(pool, "%s/tmp/1.partial", root), "x", 0);
	write_file(p_strdup_printf(pool, "%s/dovecot-keywords", root),
		   "0 $Label1\n1 work\nbad line\n30 far\n", 0);

	assert_int_equal(maildir_folders(pool, root, &folders, &count, &error),
			 0);
	assert_int_equal(count, 3);
	assert_string_equal(folders[0].name, "INBOX");
	assert_string_equal(folders[1].name, "Lists");
	assert_string_equal(folders[2].name, "Lists/x\xc3\xa9");

	assert_int_equal(maildir_messages(pool, &folders[0], &msgs, &n, &error),
			 0);
	assert_int_equal(n, 3);
	/* Numeric order of the unique names: 2, 9, 10. */
	assert_non_null(strstr(msgs[0].path, "/cur/2.a"));
	assert_int_equal(msgs[0].flags, MAIL_FLAG_FLAGGED | MAIL_FLAG_SEEN);
	assert_int_equal(msgs[0].internaldate, 2000);
	assert_non_null(strstr(msgs[1].path, "/cur/9.a"));
	assert_int_equal(msgs[1].flags, MAIL_FLAG_ANSWERED | MAIL_FLAG_DELETED);
	assert_string_equal(msgs[1].keywords[0], "$Label1");
	assert_string_equal(msgs[1].keywords[1], "work");
	assert_null(msgs[1].keywords[2]);
	assert_non_null(strstr(msgs[2].path, "/new/10.a"));
	assert_int_equal(msgs[2].flags, 0);
	assert_null(msgs[2].keywords[0]);
	assert_int_equal(maildir_read_file(pool, msgs[1].path, &b, &error), 0);
	assert_string_equal(buf_cstr(&b), "nine\n");
	assert_int_equal(maildir_read_file(pool, root, &b, &error), -1);

	assert_int_equal(maildir_messages(pool, &folders[2], &msgs, &n, &error),
			 0);
	assert_int_equal(n, 0);
	assert_int_equal(maildir_folders(pool, "/nonexistent/x", &folders,
					 &count, &error),
			 -1);
	buf_free(&b);
	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	pool_unref(&pool);
}

static const struct {
	const char *folder;
	const char *data;
	uint32_t flags;
	const char *keywords[4];
	int64_t date;
} write_tests[] = {
	{ "INBOX", "Subject: a\n\nbody\n", 0, { NULL }, 1700000000 },
	{ "INBOX", "", MAIL_FLAG_SEEN, { NULL }, 1700000001 },
	{ "INBOX",
	  "A: 1\r\n\r\nno newline",
	  MAIL_FLAG_DRAFT,
	  { "$Forwarded", "work", NULL },
	  1700000002 },
	{ "Sent",
	  "From me\n",
	  MAIL_FLAG_SEEN | MAIL_FLAG_ANSWERED,
	  { "work", "todo", NULL },
	  1600000000 },
	{ "Lists/marmot/dev",
	  "x\n",
	  MAIL_FLAG_FLAGGED | MAIL_FLAG_DELETED,
	  { NULL },
	  1500000000 },
	{ "Entw\xc3\xbc"
	  "rfe/v1.2",
	  "y\n",
	  0,
	  { "todo", NULL },
	  1400000000 },
	{ "\xf0\x9f\x98\x80", "z\n", MAIL_FLAG_SEEN, { NULL }, 1300000000 },
};

static void test_write_read(void **state)
{
	char tmp[] = "/tmp/test-maildir.XXXXXX";
	pool_t pool = pool_create("test", 1024);
	struct maildir_folder *folders;
	unsigned int count;
	const char *error;

	(void)state;
	assert_non_null(mkdtemp(tmp));
	/* The root's parents are created too. */
	const char *root = p_strdup_printf(pool, "%s/deep/root", tmp);
	for (size_t i = 0; i < N_ELEMENTS(write_tests); i++) {
		struct maildir_writer *w = maildir_writer_create(
			root, write_tests[i].folder, &error);
		if (w == NULL)
			fail_msg("create %s: %s", write_tests[i].folder, error);
		if (maildir_writer_add(
			    w, write_tests[i].data, strlen(write_tests[i].data),
			    write_tests[i].date, write_tests[i].flags,
			    write_tests[i].keywords, &error) < 0)
			fail_msg("add: %s", error);
		assert_int_equal(maildir_writer_finish(w, &error), 0);
		maildir_writer_destroy(&w);
		assert_null(w);
	}
	assert_null(maildir_writer_create(root, "a//b", &error));
	assert_non_null(strstr(error, "'a//b'"));
	assert_null(maildir_writer_create("/dev/null/x", "INBOX", &error));
	assert_non_null(strstr(error, "cannot create /dev/null/x"));

	assert_int_equal(maildir_folders(pool, root, &folders, &count, &error),
			 0);
	assert_int_equal(count, 5);
	for (size_t i = 0; i < N_ELEMENTS(write_tests); i++) {
		struct maildir_message *msgs;
		unsigned int n, seen = 0;
		size_t f;

		for (f = 0; f < count; f++) {
			if (strcmp(folders[f].name, write_tests[i].folder) == 0)
				break;
		}
		if (f == count)
			fail_msg("folder %s not read back",
				 write_tests[i].folder);
		assert_int_equal(
			maildir_messages(pool, &folders[f], &msgs, &n, &error),
			0);
		for (unsigned int m = 0; m < n; m++) {
			struct buf b = BUF_INIT;
			assert_int_equal(maildir_read_file(pool, msgs[m].path,
							   &b, &error),
					 0);
			if (b.used != strlen(write_tests[i].data) ||
			    memcmp(buf_cstr(&b), write_tests[i].data, b.used) !=
				    0) {
				buf_free(&b);
				continue;
			}
			buf_free(&b);
			seen++;
			assert_int_equal(msgs[m].flags, write_tests[i].flags);
			assert_int_equal(msgs[m].internaldate,
					 write_tests[i].date);
			unsigned int k = 0;
			for (; write_tests[i].keywords[k] != NULL; k++) {
				assert_non_null(msgs[m].keywords[k]);
				bool found = false;
				for (unsigned int j = 0;
				     msgs[m].keywords[j] != NULL; j++) {
					if (strcmp(msgs[m].keywords[j],
						   write_tests[i]
							   .keywords[k]) == 0)
						found = true;
				}
				assert_true(found);
			}
			assert_null(msgs[m].keywords[k]);
		}
		if (seen != 1)
			fail_msg("message %zu found %u times", i, seen);
	}
	/* Maildir++ marks folders; the root is not one. */
	struct stat st;
	assert_int_equal(
		stat(p_strdup_printf(pool, "%s/.Sent/maildirfolder", root),
		     &st),
		0);
	assert_int_equal(
		stat(p_strdup_printf(pool, "%s/maildirfolder", root), &st), -1);
	/* No flags: new/; tmp/ is left empty. */
	struct maildir_message *msgs;
	unsigned int n;
	assert_int_equal(maildir_messages(pool, &folders[0], &msgs, &n, &error),
			 0);
	assert_int_equal(n, 3);
	unsigned int in_new = 0;
	for (unsigned int m = 0; m < n; m++) {
		if (strstr(msgs[m].path, "/new/") != NULL)
			in_new++;
	}
	assert_int_equal(in_new, 1);
	assert_int_equal(rmdir(p_strdup_printf(pool, "%s/tmp", root)), 0);
	nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	pool_unref(&pool);
}

static void test_keyword_limit(void **state)
{
	char root[] = "/tmp/test-maildir.XXXXXX";
	pool_t pool = pool_create("test", 1024);
	struct maildir_writer *w;
	const char *error;

	(void)state;
	assert_non_null(mkdtemp(root));
	w = maildir_writer_create(root, "INBOX", &error);
	assert_non_null(w);
	for (unsigned int i = 0; i < 30; i++) {
		const char *kw[] = { p_strdup_printf(pool, "k%u", i), NULL };
		assert_int_equal(
			maildir_writer_add(w, "x\n", 2, 1000, 0, kw, &error),
			0);
	}
	assert_int_equal(maildir_writer_dropped_keywords(w), 4);
	maildir_writer_destroy(&w);
	maildir_writer_destroy(&w);
	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	pool_unref(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf7),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_info),
		cmocka_unit_test(test_read_tree),
		cmocka_unit_test(test_write_read),
		cmocka_unit_test(test_keyword_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
