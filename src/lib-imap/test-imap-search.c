/* test-imap-search.c - unit tests for the SEARCH program parser: a table
   of programs (every RFC 9051 / RFC 3501 search key, the UN- forms as NOT,
   NEW and OLD expanded, lists, OR/NOT nesting, sequence sets and "$",
   MODSEQ with and without its entry, EMAILID/THREADID, SAVED*, OLDER/
   YOUNGER) and the tree each gives; RETURN options; CHARSET (UTF-8 and
   US-ASCII accepted, others BADCHARSET); syntax errors; the depth and key
   count bounds; dates (leap years, impossible days). Arguments are made
   by the real command parser from command text. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "pool.h"
#include "imap-parser.h"
#include "imap-search.h"

struct parsed {
	struct imap_parser *parser;
	struct imap_parser_result res;
};

/* Parses "t SEARCH " + args through the real parser (literals sent as
   {N+} so that no continuation is needed). */
static void parse_cmd(struct parsed *p, const char *args)
{
	struct buf in = BUF_INIT;
	struct span s;
	size_t consumed;
	int ret;

	p->parser = imap_parser_create(&imap_parser_limits_auth,
				       IMAP_PARSER_FLAG_LITERAL_PLUS |
					       IMAP_PARSER_FLAG_UTF8);
	buf_printf(&in, "t SEARCH %s\r\n", args);
	s = buf_span(&in);
	ret = imap_parser_parse(p->parser, s, &consumed, &p->res);
	if (ret != 1)
		print_error("parse %s: %s\n", args,
			    ret < 0 ? p->res.error.msg : "incomplete");
	assert_int_equal(ret, 1);
	assert_int_equal(p->res.event, IMAP_PARSER_EVENT_COMMAND);
	buf_free(&in);
}

static enum imap_search_result run(pool_t pool, const char *args,
				   struct imap_search_program *prog,
				   struct buf *dump, const char **error_r)
{
	struct parsed p;
	enum imap_search_result ret;

	parse_cmd(&p, args);
	ret = imap_search_parse(pool, p.res.cmd.args, p.res.cmd.arg_count, prog,
				error_r);
	if (ret == IMAP_SEARCH_OK && dump != NULL)
		imap_search_dump(dump, prog->root);
	imap_parser_destroy(&p.parser);
	return ret;
}

/* 1-Jan-1970 is day 0; 19723 = 1-Jan-2024; 19782 = 29-Feb-2024. */
static const struct {
	const char *args;
	const char *tree;
} ok_cases[] = {
	{ "ALL", "(AND (ALL))" },
	{ "all", "(AND (ALL))" },
	{ "ANSWERED DELETED DRAFT FLAGGED SEEN",
	  "(AND (FLAG 2) (FLAG 8) (FLAG 16) (FLAG 4) (FLAG 1))" },
	{ "UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN",
	  "(AND (NOT (FLAG 2)) (NOT (FLAG 8)) (NOT (FLAG 16)) "
	  "(NOT (FLAG 4)) (NOT (FLAG 1)))" },
	{ "NEW", "(AND (AND (RECENT) (NOT (FLAG 1))))" },
	{ "OLD RECENT", "(AND (NOT (RECENT)) (RECENT))" },
	{ "BCC a BODY b CC c FROM d SUBJECT e TEXT f TO g",
	  "(AND (TEXT 5 \"a\") (TEXT 1 \"b\") (TEXT 4 \"c\") (TEXT 2 \"d\") "
	  "(TEXT 6 \"e\") (TEXT 0 \"f\") (TEXT 3 \"g\"))" },
	{ "BODY \"hello world\"", "(AND (TEXT 1 \"hello world\"))" },
	{ "BODY {5+}\r\nh\xc3\xa9lo", "(AND (TEXT 1 \"h\xc3\xa9lo\"))" },
	{ "TEXT \"\"", "(AND (TEXT 0 \"\"))" },
	{ "BEFORE 1-Jan-2024 ON 29-feb-2024 SINCE \"01-Jan-1970\"",
	  "(AND (DATE 0 0 19723) (DATE 0 1 19782) (DATE 0 2 0))" },
	{ "SENTBEFORE 1-Jan-2024 SENTON 1-Jan-2024 SENTSINCE 1-Jan-2024",
	  "(AND (DATE 1 0 19723) (DATE 1 1 19723) (DATE 1 2 19723))" },
	{ "SAVEDBEFORE 1-Jan-2024 SAVEDON 1-Jan-2024 SAVEDSINCE 1-Jan-2024",
	  "(AND (DATE 2 0 19723) (DATE 2 1 19723) (DATE 2 2 19723))" },
	{ "SAVEDATESUPPORTED", "(AND (ALL))" },
	{ "KEYWORD $Forwarded UNKEYWORD work",
	  "(AND (KEYWORD \"$Forwarded\") (NOT (KEYWORD \"work\")))" },
	{ "LARGER 100 SMALLER 9223372036854775807",
	  "(AND (LARGER 100) (SMALLER 9223372036854775807))" },
	{ "OLDER 3600 YOUNGER 60", "(AND (OLDER 3600) (YOUNGER 60))" },
	{ "HEADER X-Spam \"yes\" HEADER List-Id \"\"",
	  "(AND (HEADER X-Spam \"yes\") (HEADER List-Id \"\"))" },
	{ "UID 1:5,7 1:* $", "(AND (UID 1:5,7) (SEQ 1:*) (SEQ $))" },
	{ "UID $", "(AND (UID $))" },
	{ "NOT SEEN", "(AND (NOT (FLAG 1)))" },
	{ "NOT NOT SEEN", "(AND (NOT (NOT (FLAG 1))))" },
	{ "OR SEEN FLAGGED", "(AND (OR (FLAG 1) (FLAG 4)))" },
	{ "OR (SEEN FLAGGED) NOT OR DRAFT FROM x",
	  "(AND (OR (AND (FLAG 1) (FLAG 4)) "
	  "(NOT (OR (FLAG 16) (TEXT 2 \"x\")))))" },
	{ "(((SEEN)))", "(AND (AND (AND (AND (FLAG 1)))))" },
	{ "MODSEQ 0", "(AND (MODSEQ 0))" },
	{ "MODSEQ \"/flags/\\\\draft\" all 620162338",
	  "(AND (MODSEQ 620162338))" },
	{ "MODSEQ \"/flags/$x\" priv 5", "(AND (MODSEQ 5))" },
	{ "EMAILID M6d99ac3275bb4e THREADID T64b478a75b7ea9",
	  "(AND (EMAILID \"M6d99ac3275bb4e\") (THREADID \"T64b478a75b7ea9\"))" },
	{ "CHARSET UTF-8 TEXT x", "(AND (TEXT 0 \"x\"))" },
	{ "CHARSET \"us-ascii\" TEXT x", "(AND (TEXT 0 \"x\"))" },
	{ "RETURN (MIN) SEEN", "(AND (FLAG 1))" },
	{ "RETURN () CHARSET UTF-8 SEEN", "(AND (FLAG 1))" },
};

static void test_ok(void **state)
{
	for (unsigned int i = 0; i < N_ELEMENTS(ok_cases); i++) {
		pool_t pool = pool_create("test", 1024);
		struct imap_search_program prog;
		struct buf dump = BUF_INIT;
		const char *error = NULL;
		enum imap_search_result ret =
			run(pool, ok_cases[i].args, &prog, &dump, &error);

		if (ret != IMAP_SEARCH_OK)
			print_error("%s: %s\n", ok_cases[i].args, error);
		assert_int_equal(ret, IMAP_SEARCH_OK);
		if (strcmp(buf_cstr(&dump), ok_cases[i].tree) != 0)
			print_error("%s:\n got  %s\n want %s\n",
				    ok_cases[i].args, buf_cstr(&dump),
				    ok_cases[i].tree);
		assert_string_equal(buf_cstr(&dump), ok_cases[i].tree);
		buf_free(&dump);
		pool_unref(&pool);
	}
}

static const char *const bad_cases[] = {
	"",
	"FOO",
	"BODY",
	"BEFORE",
	"BEFORE 32-Jan-2024",
	"BEFORE 29-Feb-2023",
	"BEFORE 1-Foo-2024",
	"BEFORE 1-Jan-24",
	"BEFORE 123-Jan-2024",
	"BEFORE 0-Jan-2024",
	"BEFORE 1-Jan-20245",
	"BEFORE {10+}\r\n1-Jan-2024",
	"LARGER",
	"LARGER -1",
	"LARGER x",
	"LARGER 9223372036854775808",
	"SMALLER 99999999999999999999",
	"OLDER 0",
	"YOUNGER 4294967296",
	"UID",
	"UID x",
	"UID 0",
	"UID (1)",
	"0",
	"1:0",
	"$,1",
	"NOT",
	"OR SEEN",
	"OR",
	"()",
	"KEYWORD",
	"KEYWORD \\Seen",
	"KEYWORD \"x\"",
	"HEADER",
	"HEADER X",
	"HEADER \"\" x",
	"HEADER \"a b\" x",
	"HEADER \"a:\" x",
	"MODSEQ",
	"MODSEQ x",
	"MODSEQ 9223372036854775808",
	"MODSEQ \"/flags/x\" 5",
	"MODSEQ \"/flags/x\" own 5",
	"MODSEQ \"/other/x\" all 5",
	"MODSEQ \"/flags/\" all 5",
	"EMAILID",
	"EMAILID \"\"",
	"EMAILID a.b",
	"THREADID a+b",
	"CHARSET",
	"CHARSET UTF-8",
	"CHARSET (UTF-8) ALL",
	"CHARSET US-ASCII TEXT {2+}\r\n\xc3\xa9",
	"TEXT {2+}\r\n\xc3\x28",
	"RETURN",
	"RETURN ALL",
	"RETURN (FOO) ALL",
	"RETURN ((MIN)) ALL",
	"RETURN (MIN)",
	"ALL RETURN (MIN)",
	"SEEN CHARSET UTF-8",
};

static void test_bad(void **state)
{
	for (unsigned int i = 0; i < N_ELEMENTS(bad_cases); i++) {
		pool_t pool = pool_create("test", 1024);
		struct imap_search_program prog;
		const char *error = NULL;
		enum imap_search_result ret =
			run(pool, bad_cases[i], &prog, NULL, &error);

		if (ret != IMAP_SEARCH_BAD)
			print_error("%s: parsed\n", bad_cases[i]);
		assert_int_equal(ret, IMAP_SEARCH_BAD);
		assert_non_null(error);
		pool_unref(&pool);
	}
}

static void test_charset(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct imap_search_program prog;
	const char *error = NULL;

	/* RFC 9051 6.4.4: an unsupported charset is NO [BADCHARSET]. */
	assert_int_equal(
		run(pool, "CHARSET ISO-8859-1 TEXT x", &prog, NULL, &error),
		IMAP_SEARCH_BADCHARSET);
	assert_int_equal(
		run(pool, "CHARSET \"KOI8-R\" ALL", &prog, NULL, &error),
		IMAP_SEARCH_BADCHARSET);
	assert_string_equal(IMAP_SEARCH_BADCHARSET_CODE,
			    "BADCHARSET (UTF-8 US-ASCII)");
	pool_unref(&pool);
}

static void test_return(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct imap_search_program prog;
	const char *error = NULL;

	assert_int_equal(run(pool, "SEEN", &prog, NULL, &error),
			 IMAP_SEARCH_OK);
	assert_false(prog.esearch);
	assert_int_equal(prog.returns, 0);
	assert_true(prog.need_rows);
	assert_false(prog.need_text);

	assert_int_equal(run(pool, "RETURN () TEXT x", &prog, NULL, &error),
			 IMAP_SEARCH_OK);
	assert_true(prog.esearch);
	assert_int_equal(prog.returns, IMAP_SEARCH_RETURN_ALL);
	assert_false(prog.need_rows);
	assert_true(prog.need_text);

	assert_int_equal(run(pool, "RETURN (min MAX count ALL save) 1:*", &prog,
			     NULL, &error),
			 IMAP_SEARCH_OK);
	assert_int_equal(prog.returns, IMAP_SEARCH_RETURN_MIN |
					       IMAP_SEARCH_RETURN_MAX |
					       IMAP_SEARCH_RETURN_COUNT |
					       IMAP_SEARCH_RETURN_ALL |
					       IMAP_SEARCH_RETURN_SAVE);
	assert_false(prog.uses_searchres);

	/* RFC 5182 2.1: the SAVE of a failing SEARCH is known, so that "$"
	   can be emptied. */
	assert_int_equal(run(pool, "RETURN (SAVE) FOO", &prog, NULL, &error),
			 IMAP_SEARCH_BAD);
	assert_true((prog.returns & IMAP_SEARCH_RETURN_SAVE) != 0);

	assert_int_equal(run(pool, "OR UID $ SEEN", &prog, NULL, &error),
			 IMAP_SEARCH_OK);
	assert_true(prog.uses_searchres);

	assert_int_equal(run(pool, "MODSEQ 5", &prog, NULL, &error),
			 IMAP_SEARCH_OK);
	assert_true(prog.modseq);
	assert_true(prog.need_rows);

	assert_int_equal(
		run(pool, "SENTON 1-Jan-2000 HEADER X y", &prog, NULL, &error),
		IMAP_SEARCH_OK);
	assert_true(prog.need_sent);
	assert_true(prog.need_headers);
	pool_unref(&pool);
}

static void test_limits(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct imap_search_program prog;
	struct buf args = BUF_INIT;
	const char *error = NULL;
	unsigned int i;

	/* NOT chains are depth without lists: bounded. */
	for (i = 0; i < IMAP_SEARCH_MAX_DEPTH - 1; i++)
		buf_append_str(&args, "NOT ");
	buf_append_str(&args, "SEEN");
	assert_int_equal(run(pool, buf_cstr(&args), &prog, NULL, &error),
			 IMAP_SEARCH_OK);
	buf_reset(&args);
	for (i = 0; i < IMAP_SEARCH_MAX_DEPTH + 1; i++)
		buf_append_str(&args, "OR SEEN ");
	buf_append_str(&args, "SEEN");
	assert_int_equal(run(pool, buf_cstr(&args), &prog, NULL, &error),
			 IMAP_SEARCH_BAD);
	assert_string_equal(error, "Search program nested too deeply");

	buf_reset(&args);
	for (i = 0; i < IMAP_SEARCH_MAX_KEYS + 1; i++)
		buf_append_str(&args, "SEEN ");
	buf_append_str(&args, "SEEN");
	assert_int_equal(run(pool, buf_cstr(&args), &prog, NULL, &error),
			 IMAP_SEARCH_BAD);
	assert_string_equal(error, "Too many search keys");

	buf_reset(&args);
	for (i = 0; i < IMAP_SEARCH_MAX_COSTLY; i++)
		buf_append_str(&args, "TEXT abc ");
	buf_append_str(&args, "SEEN");
	assert_int_equal(run(pool, buf_cstr(&args), &prog, NULL, &error),
			 IMAP_SEARCH_OK);
	buf_append_str(&args, " (HEADER X y)");
	assert_int_equal(run(pool, buf_cstr(&args), &prog, NULL, &error),
			 IMAP_SEARCH_BAD);
	buf_free(&args);
	pool_unref(&pool);
}

static void test_dates(void **state)
{
	int64_t day;

	assert_true(imap_search_parse_date("1-Jan-1970", &day));
	assert_int_equal(day, 0);
	assert_true(imap_search_parse_date("31-Dec-1969", &day));
	assert_int_equal(day, -1);
	assert_true(imap_search_parse_date("29-Feb-2000", &day));
	assert_int_equal(day, 11016);
	assert_false(imap_search_parse_date("29-Feb-1900", &day));
	assert_true(imap_search_parse_date("31-DEC-9999", &day));
	assert_int_equal(day, 2932896);
	assert_true(imap_search_parse_date("1-Jan-0000", &day));
	assert_false(imap_search_parse_date("1-Jan-2024 ", &day));
	assert_false(imap_search_parse_date("-Jan-2024", &day));
	assert_false(imap_search_parse_date("1-Ja", &day));
	assert_false(imap_search_parse_date("1-Jan-", &day));
	assert_false(imap_search_parse_date("", &day));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok),      cmocka_unit_test(test_bad),
		cmocka_unit_test(test_charset), cmocka_unit_test(test_return),
		cmocka_unit_test(test_limits),  cmocka_unit_test(test_dates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
