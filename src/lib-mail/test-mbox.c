/* test-mbox.c - unit tests for mbox.c: tables of mbox files with the
   messages, flags, keywords and dates they must yield (From_ lines in
   bodies, mboxrd and mboxo quoting, CRLF, empty messages, a missing final
   newline, Thunderbird's X-Mozilla-Status), From_ dates, and round trips
   through the writer, including random messages built from hostile
   fragments. Run by meson under ASan+UBSan. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "mbox.h"

#include <stdio.h>

#define F_S MAIL_FLAG_SEEN
#define F_A MAIL_FLAG_ANSWERED
#define F_F MAIL_FLAG_FLAGGED
#define F_D MAIL_FLAG_DELETED
#define F_T MAIL_FLAG_DRAFT

struct expected_msg {
	const char *data;
	uint32_t flags;
	const char *keywords; /* space separated */
	int64_t date;
};

#define D1 "Mon Jan  1 00:00:00 2024" /* 1704067200 */
#define T1 1704067200

static const struct {
	const char *name;
	enum mbox_format format;
	const char *input;
	unsigned int count;
	struct expected_msg msgs[4];
} read_tests[] = {
	{ "empty file", MBOX_FORMAT_MBOXRD, "", 0, { { NULL, 0, NULL, 0 } } },
	{ "one message",
	  MBOX_FORMAT_MBOXRD,
	  "From a@b " D1 "\nSubject: x\n\nbody\n\n",
	  1,
	  { { "Subject: x\n\nbody\n", 0, "", T1 } } },
	{ "two messages, no final blank line",
	  MBOX_FORMAT_MBOXRD,
	  "From a@b " D1 "\nA: 1\n\none\n\nFrom c@d " D1 "\nA: 2\n\ntwo\n",
	  2,
	  { { "A: 1\n\none\n", 0, "", T1 }, { "A: 2\n\ntwo\n", 0, "", T1 } } },
	{ "From in body without blank line or date is body",
	  MBOX_FORMAT_MBOXRD,
	  "From a@b " D1 "\nA: 1\n\nFrom here on\nx\n\nFrom the desk of\n\n",
	  1,
	  { { "A: 1\n\nFrom here on\nx\n\nFrom the desk of\n", 0, "", T1 } } },
	{ "mboxrd unquoting",
	  MBOX_FORMAT_MBOXRD,
	  "From a@b " D1 "\nA: 1\n\n>From x\n>>From y\n>Fromz\n> From\n\n",
	  1,
	  { { "A: 1\n\nFrom x\n>From y\n>Fromz\n> From\n", 0, "", T1 } } },
	{ "mboxo unquoting",
	  MBOX_FORMAT_MBOXO,
	  "From a@b " D1 "\nA: 1\n\n>From x\n>>From y\n\n",
	  1,
	  { { "A: 1\n\nFrom x\n>>From y\n", 0, "", T1 } } },
	{ "CRLF lines and separators",
	  MBOX_FORMAT_MBOXRD,
	  "From a@b " D1 "\r\nA: 1\r\n\r\nx\r\n\r\nFrom a@b " D1
	  "\r\nA: 2\r\n\r\ny\r\n\r\n",
	  2,
	  { { "A: 1\r\n\r\nx\r\n", 0, "", T1 },
	    { "A: 2\r\n\r\ny\r\n", 0, "", T1 } } },
	{ "empty messages",
	  MBOX_FORMAT_MBOXRD,
	  "From a@b " D1 "\n\nFrom a@b " D1 "\nFrom a@b " D1 "\n",
	  2,
	  { { "", 0, "", T1 }, { "From a@b " D1 "\n", 0, "", T1 } } },
	{ "no final newline",
	  MBOX_FORMAT_MBOXRD,
	  "From a@b " D1 "\nA: 1\n\nlast",
	  1,
	  { { "A: 1\n\nlast", 0, "", T1 } } },
	{ "flags and keywords, metadata removed",
	  MBOX_FORMAT_MBOXRD,
	  "From a@b " D1 "\nA: 1\nStatus: RO\nX-Status: AFTD\n"
	  "X-Keywords: $Label1, work\n  todo work\nX-UID: 7\nB: 2\n\n"
	  "Status: body\n\n",
	  1,
	  { { "A: 1\nB: 2\n\nStatus: body\n", F_S | F_A | F_F | F_T | F_D,
	      "$Label1 work todo", T1 } } },
	{ "Status O is unseen; bad keywords skipped",
	  MBOX_FORMAT_MBOXRD,
	  "From a@b " D1 "\nstatus: O\nX-Keywords: a(b \\Seen ok\n\nx\n\n",
	  1,
	  { { "\nx\n", 0, "ok", T1 } } },
	{ "X-Mozilla-Status without Status",
	  MBOX_FORMAT_MBOXRD,
	  "From - " D1 "\nX-Mozilla-Status: 0007\nA: 1\n\nx\n\n",
	  1,
	  { { "X-Mozilla-Status: 0007\nA: 1\n\nx\n", F_S | F_A | F_F, "",
	      T1 } } },
	{ "Status wins over X-Mozilla-Status",
	  MBOX_FORMAT_MBOXRD,
	  "From - " D1 "\nX-Mozilla-Status: 0001\nStatus: O\n\nx\n\n",
	  1,
	  { { "X-Mozilla-Status: 0001\n\nx\n", 0, "", T1 } } },
	{ "sender with spaces, zone after the time",
	  MBOX_FORMAT_MBOXRD,
	  "From John Doe Mon Jan  1 01:00:00 +0100 2024\nA: 1\n\nx\n\n",
	  1,
	  { { "A: 1\n\nx\n", 0, "", T1 } } },
	{ "first From_ line with an unparsable date",
	  MBOX_FORMAT_MBOXRD,
	  "From nobody yesterday\nA: 1\n\nx\n\n",
	  1,
	  { { "A: 1\n\nx\n", 0, "", 0 } } },
	{ "header only, no body separator",
	  MBOX_FORMAT_MBOXRD,
	  "From a@b " D1 "\nSubject: x\nStatus: R\n\n",
	  1,
	  { { "Subject: x\n", F_S, "", T1 } } },
};

static void read_all(const char *input, size_t len, enum mbox_format format,
		     void (*cb)(unsigned int i, const struct mbox_message *msg,
				void *ctx),
		     void *ctx, unsigned int *count_r)
{
	FILE *f = fmemopen((void *)input, len == 0 ? 1 : len, "r");
	struct mbox_reader *reader;
	struct mbox_message msg;
	const char *error = NULL;
	unsigned int n = 0;
	int ret;

	assert_non_null(f);
	if (len == 0) {
		/* fmemopen() refuses a size of 0: read the empty file as a
		   file at EOF. */
		fseek(f, 0, SEEK_END);
	}
	reader = mbox_reader_create(f, format);
	while ((ret = mbox_reader_next(reader, &msg, &error)) > 0)
		cb(n++, &msg, ctx);
	if (ret < 0)
		fail_msg("read error: %s", error);
	mbox_reader_destroy(&reader);
	assert_null(reader);
	fclose(f);
	*count_r = n;
}

static void keywords_join(const char *const *kw, char *out, size_t size)
{
	out[0] = '\0';
	for (unsigned int i = 0; kw[i] != NULL; i++) {
		size_t len = strlen(out);
		snprintf(out + len, size - len, "%s%s", i > 0 ? " " : "",
			 kw[i]);
	}
}

static void check_read(unsigned int i, const struct mbox_message *msg,
		       void *ctx)
{
	size_t t = *(size_t *)ctx;
	const struct expected_msg *exp = &read_tests[t].msgs[i];
	char kw[256];

	if (i >= read_tests[t].count)
		fail_msg("%s: too many messages", read_tests[t].name);
	if (msg->size != strlen(exp->data) ||
	    memcmp(msg->data, exp->data, msg->size) != 0)
		fail_msg("%s: message %u is '%.*s', expected '%s'",
			 read_tests[t].name, i, (int)msg->size, msg->data,
			 exp->data);
	keywords_join(msg->keywords, kw, sizeof(kw));
	if (msg->flags != exp->flags || strcmp(kw, exp->keywords) != 0 ||
	    msg->internaldate != exp->date)
		fail_msg("%s: message %u flags %x kw '%s' date %lld",
			 read_tests[t].name, i, msg->flags, kw,
			 (long long)msg->internaldate);
}

static void test_read(void **state)
{
	(void)state;
	for (size_t t = 0; t < N_ELEMENTS(read_tests); t++) {
		unsigned int count;

		read_all(read_tests[t].input, strlen(read_tests[t].input),
			 read_tests[t].format, check_read, &t, &count);
		if (count != read_tests[t].count)
			fail_msg("%s: %u messages, expected %u",
				 read_tests[t].name, count,
				 read_tests[t].count);
	}
}

static void test_not_mbox(void **state)
{
	static const char *const inputs[] = {
		"Subject: x\n\nbody\n",
		"\nFrom a@b " D1 "\n",
		"From", /* too short */
		">From a@b " D1 "\n",
	};
	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(inputs); i++) {
		FILE *f = fmemopen((void *)inputs[i], strlen(inputs[i]), "r");
		struct mbox_reader *reader =
			mbox_reader_create(f, MBOX_FORMAT_MBOXRD);
		struct mbox_message msg;
		const char *error = NULL;

		assert_int_equal(mbox_reader_next(reader, &msg, &error), -1);
		assert_non_null(strstr(error, "not an mbox"));
		mbox_reader_destroy(&reader);
		mbox_reader_destroy(&reader); /* NULL is fine */
		fclose(f);
	}
}

static const struct {
	const char *str;
	int ret;
	int64_t time;
} date_tests[] = {
	{ "Mon Jan  1 00:00:00 2024", 0, T1 },
	{ "Mon Jan 1 00:00:00 2024", 0, T1 },
	{ "Jan  1 00:00:00 2024", 0, T1 },
	{ "Mon Jan  1 00:00 2024", 0, T1 },
	{ "Mon Jan  1 02:00:00 2024 +0200", 0, T1 },
	{ "Sun Dec 31 19:00:00 EST 2023", 0, T1 - 5 * 3600 },
	{ "Sun Dec 31 19:00:00 -0500 2023", 0, T1 },
	{ "Sat Jan  3 01:05:34 1996 remote from x", 0, 820631134 },
	{ "Thu Feb 29 12:00:00 2024", 0, 1709208000 },
	{ "", -1, 0 },
	{ "Mon", -1, 0 },
	{ "Mon Foo  1 00:00:00 2024", -1, 0 },
	{ "Mon Jan 32 00:00:00 2024", -1, 0 },
	{ "Mon Jan  0 00:00:00 2024", -1, 0 },
	{ "Mon Jan  1 24:00:00 2024", -1, 0 },
	{ "Mon Jan  1 00:60:00 2024", -1, 0 },
	{ "Mon Jan  1 00:00:00", -1, 0 },
	{ "Mon Jan  1 00:00:00 24", -1, 0 },
	{ "Mon Jan  1 00:00:00 1969", -1, 0 },
	{ "Mon Jan  1 0000:00 2024", -1, 0 },
	{ "Mon Jan  1 00:00:00 99999", -1, 0 },
	{ "the desk of", -1, 0 },
};

static void test_dates(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(date_tests); i++) {
		int64_t t = 0;
		int ret = mbox_parse_date(date_tests[i].str,
					  strlen(date_tests[i].str), &t);
		if (ret != date_tests[i].ret ||
		    (ret == 0 && t != date_tests[i].time))
			fail_msg("'%s': ret %d time %lld", date_tests[i].str,
				 ret, (long long)t);
	}
}

/* ---- round trips ---- */

/* 8-bit bytes and a NUL; the table entry NUL_INDEX. */
#define NUL_MSG "A: \xc3\xa9\xff\x00z\n\n8bit \x80\n"
#define NUL_INDEX 11

static const struct {
	const char *data;
	const char *expected; /* NULL: data */
	uint32_t flags;
	const char *keywords[4];
	int64_t date;
} rt_tests[] = {
	{ "Subject: x\n\nbody\n", NULL, 0, { NULL }, T1 },
	{ "Subject: x\n\nFrom me\n>From you\n>>>From all\n",
	  NULL,
	  F_S,
	  { NULL },
	  T1 },
	{ "A: 1\r\nB: 2\r\n\r\nFrom crlf\r\n\r\n",
	  NULL,
	  F_A | F_F,
	  { "work", "$Forwarded", NULL },
	  1 },
	{ "", NULL, F_S | F_A | F_F | F_D | F_T, { "x", NULL }, T1 },
	{ "\n", NULL, 0, { NULL }, T1 },
	{ "\n\n\n", NULL, 0, { NULL }, T1 },
	{ "no header at all\n", NULL, F_T, { NULL }, T1 },
	{ "no newline", "no newline\n", 0, { NULL }, T1 },
	{ "A: 1\n\nno newline", "A: 1\n\nno newline\n", 0, { NULL }, T1 },
	{ "From a@b " D1 "\n", NULL, 0, { NULL }, T1 },
	{ "A: 1\n\nend\n\nFrom a@b " D1 "\n\n", NULL, 0, { NULL }, T1 },
	{ NUL_MSG, NULL, F_S, { NULL }, T1 },
	{ "A: 1\n\n\n\n", NULL, F_S, { NULL }, 2000000000 },
};

struct rt_ctx {
	unsigned int seen;
};

static void check_rt(unsigned int i, const struct mbox_message *msg,
		     void *context)
{
	struct rt_ctx *ctx = context;
	const char *exp;
	size_t exp_len;
	char kw[256], exp_kw[256] = "";

	assert_true(i < N_ELEMENTS(rt_tests));
	exp = rt_tests[i].expected != NULL ? rt_tests[i].expected
					   : rt_tests[i].data;
	/* One table entry holds a NUL: compare by the known length. */
	exp_len = i == NUL_INDEX ? sizeof(NUL_MSG) - 1 : strlen(exp);
	if (msg->size != exp_len || memcmp(msg->data, exp, exp_len) != 0)
		fail_msg("round trip %u: got '%.*s'", i, (int)msg->size,
			 msg->data);
	keywords_join(msg->keywords, kw, sizeof(kw));
	keywords_join(rt_tests[i].keywords, exp_kw, sizeof(exp_kw));
	if (msg->flags != rt_tests[i].flags || strcmp(kw, exp_kw) != 0 ||
	    msg->internaldate != rt_tests[i].date)
		fail_msg("round trip %u: flags %x kw '%s' date %lld", i,
			 msg->flags, kw, (long long)msg->internaldate);
	ctx->seen++;
}

static void test_round_trip(void **state)
{
	struct buf out = BUF_INIT;
	struct rt_ctx ctx = { 0 };
	unsigned int count;

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(rt_tests); i++) {
		size_t len = i == NUL_INDEX ? sizeof(NUL_MSG) - 1
					    : strlen(rt_tests[i].data);
		mbox_write_message(&out, rt_tests[i].data, len,
				   i % 2 == 0 ? NULL : "user with space@x",
				   rt_tests[i].date, rt_tests[i].flags,
				   rt_tests[i].keywords);
	}
	read_all((const char *)out.data, out.used, MBOX_FORMAT_MBOXRD, check_rt,
		 &ctx, &count);
	assert_int_equal(count, N_ELEMENTS(rt_tests));
	buf_free(&out);
}

/* Random messages from fragments that stress the quoting and separator
   rules must come back byte for byte (they all end in a newline). */
static const char *const fragments[] = {
	"From ", ">",          ">From ",     "\n",   "\r\n", "x",
	" ",     "From x " D1, "Subject: y", "\n\n", "F",    "rom ",
};

struct random_ctx {
	struct buf *msgs;
	unsigned int count;
};

static void check_random(unsigned int i, const struct mbox_message *msg,
			 void *context)
{
	struct random_ctx *ctx = context;

	assert_true(i < ctx->count);
	if (msg->size != ctx->msgs[i].used ||
	    (msg->size > 0 &&
	     memcmp(msg->data, ctx->msgs[i].data, msg->size) != 0))
		fail_msg("random %u: wrote '%s', read '%.*s'", i,
			 buf_cstr(&ctx->msgs[i]), (int)msg->size, msg->data);
	assert_int_equal(msg->flags, i % 32);
}

static void test_random_round_trip(void **state)
{
	struct buf msgs[300], out = BUF_INIT;
	struct random_ctx ctx = { msgs, N_ELEMENTS(msgs) };
	unsigned int count;
	uint32_t seed = 12345;

	(void)state;
	for (unsigned int i = 0; i < N_ELEMENTS(msgs); i++) {
		msgs[i] = BUF_INIT;
		unsigned int n = i % 40;
		for (unsigned int j = 0; j < n; j++) {
			seed = seed * 1103515245 + 12345;
			buf_append_str(&msgs[i],
				       fragments[(seed >> 16) %
						 N_ELEMENTS(fragments)]);
		}
		if (msgs[i].used > 0 && msgs[i].data[msgs[i].used - 1] != '\n')
			buf_append_c(&msgs[i], '\n');
		mbox_write_message(&out, msgs[i].data, msgs[i].used, "s",
				   T1 + i, i % 32, NULL);
	}
	read_all((const char *)out.data, out.used, MBOX_FORMAT_MBOXRD,
		 check_random, &ctx, &count);
	assert_int_equal(count, N_ELEMENTS(msgs));
	for (unsigned int i = 0; i < N_ELEMENTS(msgs); i++)
		buf_free(&msgs[i]);
	buf_free(&out);
}

static void test_writer_format(void **state)
{
	struct buf out = BUF_INIT;
	const char *kw[] = { "a", "bad kw", "b", NULL };

	(void)state;
	mbox_write_message(&out, "A: 1\r\n\r\nFrom x\r\n", 16, "me", T1,
			   F_S | F_F, kw);
	assert_string_equal(buf_cstr(&out),
			    "From me Mon Jan  1 00:00:00 2024\n"
			    "A: 1\r\nStatus: RO\r\nX-Status: F\r\n"
			    "X-Keywords: a b\r\n\r\n>From x\r\n\n");
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_not_mbox),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_random_round_trip),
		cmocka_unit_test(test_writer_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
