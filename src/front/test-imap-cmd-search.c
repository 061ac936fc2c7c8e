/* test-imap-cmd-search.c - the SEARCH evaluator over a real store: an
   encrypted store.db and blob store in a mkdtemp() directory, five
   messages appended with their real message index (the first expunged, so
   UIDs and sequence numbers differ), and a session set up by hand with
   the sequence map. Every key is run at least once against the answer
   it must give: flags, keywords, sizes, the three date families, OLDER/
   YOUNGER, the full-text keys (substring, case-insensitive, UTF-8),
   HEADER (substring, "" = present, RFC 2047 decoded), sequence and UID
   sets, "$", MODSEQ, EMAILID/THREADID, OR/NOT nesting, RETURN forms and
   SAVE, IMAP4rev2's ESEARCH, UID SEARCH, a message gone from the store,
   and the BAD / NO [BADCHARSET] answers. The tagged-answer helpers of
   imap-session.c are replaced by the small ones below. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "blob.h"
#include "buf.h"
#include "imap-parser.h"
#include "imap-session.h"
#include "message-index.h"
#include "pool.h"
#include "store.h"

#include <stdio.h>
#include <time.h>

#define ACCOUNT 7

static const uint8_t key[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };

/* The tagged answers (imap-session.c's are not linked here). */
void imap_cmd_ok(struct imap_cmd *cmd, const char *code, const char *text)
{
	buf_printf(cmd->out, "%s OK %s%s%s%s\r\n", cmd->tag,
		   code != NULL ? "[" : "", code != NULL ? code : "",
		   code != NULL ? "] " : "", text);
	cmd->answered = true;
}

void imap_cmd_no(struct imap_cmd *cmd, const char *code, const char *text)
{
	buf_printf(cmd->out, "%s NO %s%s%s%s\r\n", cmd->tag,
		   code != NULL ? "[" : "", code != NULL ? code : "",
		   code != NULL ? "] " : "", text);
	cmd->answered = true;
}

void imap_cmd_bad(struct imap_cmd *cmd, const char *text)
{
	buf_printf(cmd->out, "%s BAD %s\r\n", cmd->tag, text);
	cmd->answered = true;
}

void imap_cmd_store_error(struct imap_cmd *cmd, const char *error)
{
	imap_cmd_no(cmd, "SERVERBUG", error);
}

struct fixture {
	char dir[64];
	struct store *store;
	struct blob_store *blobs;
	struct imap_session session;
	pool_t pool;
	struct store_message *rows;
	unsigned int row_count;
	struct buf out;
};

static const struct {
	const char *raw;
	uint32_t flags;
	const char *keywords[2];
	int64_t internaldate; /* 0 = now - 60 */
} msgs[] = {
	/* Expunged before the tests: UIDs start at 2. */
	{ "Subject: gone\r\n\r\ngone\r\n", 0, { NULL }, 1700000000 },
	{ "From: Alice <alice@example.org>\r\n"
	  "To: bob@example.net\r\n"
	  "Subject: Hello world\r\n"
	  "Date: Mon, 2 Jun 2025 10:00:00 +0000\r\n"
	  "X-Spam: yes\r\n"
	  "\r\n"
	  "Hello there, this is the first message.\r\n",
	  STORE_FLAG_SEEN,
	  { "$Work", NULL },
	  1748865600 /* 2-Jun-2025 12:00 UTC */ },
	{ "From: Bob <bob@example.net>\r\n"
	  "To: alice@example.org\r\n"
	  "Cc: carol@example.org\r\n"
	  "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n"
	  "Date: Tue, 3 Jun 2025 09:00:00 +0000\r\n"
	  "MIME-Version: 1.0\r\n"
	  "Content-Type: text/plain; charset=utf-8\r\n"
	  "Content-Transfer-Encoding: 8bit\r\n"
	  "\r\n"
	  "Gr\xc3\xbc\xc3\x9f"
	  "e aus M\xc3\xbcnchen\r\n",
	  STORE_FLAG_FLAGGED | STORE_FLAG_ANSWERED,
	  { NULL },
	  1748952000 /* 3-Jun-2025 12:00 */ },
	{ "From: carol@example.org\r\n"
	  "Bcc: dave@example.com\r\n"
	  "Subject: Meeting\r\n"
	  "List-Id: <team.example.org>\r\n"
	  "Date: Mon, 1 Jan 2024 08:00:00 +0000\r\n"
	  "\r\n"
	  "short\r\n",
	  STORE_FLAG_DELETED | STORE_FLAG_DRAFT,
	  { NULL },
	  1749124800 /* 5-Jun-2025 12:00 */ },
	{ NULL, 0, { NULL }, 0 }, /* a large one, made below */
};

/* The test's own mkdtemp() directory. */
static void remove_dir(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void add_message(struct fixture *f, uint64_t mailbox, const char *raw,
			size_t len, uint32_t flags, const char *const *keywords,
			int64_t internaldate)
{
	struct message_index idx;
	struct store_append a;
	const char *error = NULL;
	uint32_t uid;

	memset(&a, 0, sizeof(a));
	assert_true(blob_put(f->blobs, raw, len, a.blob_id, NULL, &error) >= 0);
	message_index_build(f->pool, raw, len, &idx);
	a.mailbox_id = mailbox;
	a.flags = flags;
	a.keywords = keywords;
	a.internaldate = internaldate;
	a.size = len;
	a.index = &idx;
	if (store_append(f->store, &a, &uid, NULL, &error) < 0)
		fail_msg("append: %s", error);
}

static int setup(void **state)
{
	struct fixture *f = i_new(struct fixture, 1);
	struct store_mailbox box;
	char account_dir[128];
	const char *error = NULL;
	struct buf big = BUF_INIT;
	uint32_t *uids;
	unsigned int i;

	snprintf(f->dir, sizeof(f->dir), "/tmp/test-search.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->pool = pool_create("test-search", 4096);
	f->store = store_open(f->dir, ACCOUNT, key, &error);
	assert_non_null(f->store);
	snprintf(account_dir, sizeof(account_dir), "%s/accounts/%d", f->dir,
		 ACCOUNT);
	f->blobs = blob_store_open(account_dir, key, &error);
	assert_non_null(f->blobs);
	assert_int_equal(
		store_mailbox_lookup(f->store, "INBOX", f->pool, &box, &error),
		1);
	for (i = 0; msgs[i].raw != NULL; i++)
		add_message(f, box.id, msgs[i].raw, strlen(msgs[i].raw),
			    msgs[i].flags, msgs[i].keywords,
			    msgs[i].internaldate);
	buf_append_str(&big, "From: eve@example.org\r\nSubject: big\r\n\r\n");
	for (i = 0; i < 100; i++)
		buf_append_str(&big, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
				     "xxxxxxxxxx\r\n");
	add_message(f, box.id, (const char *)big.data, big.used, 0, NULL,
		    (int64_t)time(NULL) - 60);
	buf_free(&big);
	uids = (uint32_t[]){ 1 };
	assert_int_equal(store_expunge(f->store, box.id, uids, 1, f->pool,
				       &uids, &i, &error),
			 0);
	assert_int_equal(i, 1);

	assert_int_equal(store_fetch(f->store, box.id, 1, 0, f->pool, &f->rows,
				     &f->row_count, &error),
			 0);
	assert_int_equal(f->row_count, 4);
	f->session.store = f->store;
	f->session.blobs = f->blobs;
	f->session.selected = true;
	f->session.mailbox_id = box.id;
	f->session.uids = i_new(uint32_t, f->row_count + 1);
	for (i = 0; i < f->row_count; i++)
		f->session.uids[i] = f->rows[i].uid;
	f->session.uid_count = f->session.uid_alloc = f->row_count;
	buf_init(&f->out, 256);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	i_free(f->session.uids);
	i_free(f->session.searchres);
	buf_free(&f->out);
	blob_store_close(&f->blobs);
	store_close(&f->store);
	pool_unref(&f->pool);
	remove_dir(f->dir);
	i_free(f);
	return 0;
}

/* Runs "t [UID] SEARCH args" and returns everything it wrote. */
static const char *run(struct fixture *f, bool uid, const char *args)
{
	struct imap_parser *parser = imap_parser_create(
		&imap_parser_limits_auth,
		IMAP_PARSER_FLAG_LITERAL_PLUS | IMAP_PARSER_FLAG_UTF8);
	struct imap_parser_result res;
	struct buf in = BUF_INIT;
	pool_t pool = pool_create("cmd", 4096);
	struct imap_cmd cmd;
	size_t consumed;

	buf_printf(&in, "t SEARCH %s\r\n", args);
	assert_int_equal(
		imap_parser_parse(parser, buf_span(&in), &consumed, &res), 1);
	memset(&cmd, 0, sizeof(cmd));
	cmd.session = &f->session;
	cmd.tag = "t";
	cmd.name = "SEARCH";
	cmd.uid = uid;
	cmd.args = res.cmd.args;
	cmd.arg_count = res.cmd.arg_count;
	cmd.out = &f->out;
	cmd.pool = pool;
	buf_reset(&f->out);
	assert_string_equal(imap_cmds_search[0].name, "SEARCH");
	imap_cmds_search[0].func(&cmd);
	assert_true(cmd.answered);
	imap_parser_destroy(&parser);
	pool_unref(&pool);
	buf_free(&in);
	return p_strdup(f->pool, buf_cstr(&f->out));
}

/* The "* SEARCH" line of a successful search, without "* SEARCH". */
static const char *search(struct fixture *f, const char *args)
{
	const char *out = run(f, false, args);
	const char *end = strstr(out, "\r\nt OK ");

	if (strncmp(out, "* SEARCH", 8) != 0 || end == NULL)
		fail_msg("SEARCH %s: %s", args, out);
	return p_strndup(f->pool, out + 8, (size_t)(end - out) - 8);
}

static void expect(struct fixture *f, const char *args, const char *want)
{
	const char *got = search(f, args);

	if (strcmp(got, want) != 0)
		fail_msg("SEARCH %s: got \"%s\", want \"%s\"", args, got, want);
}

struct search_case {
	const char *args, *want;
};

static void expect_all(struct fixture *f, const struct search_case *cases,
		       unsigned int count)
{
	for (unsigned int i = 0; i < count; i++)
		expect(f, cases[i].args, cases[i].want);
}

static const struct search_case flags_cases[] = {
	{ "ALL", " 1 2 3 4" },
	{ "SEEN", " 1" },
	{ "UNSEEN", " 2 3 4" },
	{ "FLAGGED ANSWERED", " 2" },
	{ "UNFLAGGED UNANSWERED", " 1 3 4" },
	{ "DELETED", " 3" },
	{ "UNDELETED", " 1 2 4" },
	{ "DRAFT", " 3" },
	{ "UNDRAFT", " 1 2 4" },
	{ "RECENT", "" },
	{ "NEW", "" },
	{ "OLD", " 1 2 3 4" },
	{ "KEYWORD $work", " 1" },
	{ "UNKEYWORD $Work", " 2 3 4" },
	{ "KEYWORD nothere", "" },
	{ "LARGER 4000", " 4" },
	{ "SMALLER 4000", " 1 2 3" },
	{ "LARGER 4000 SMALLER 4000", "" },
};

static void test_flags(void **state)
{
	expect_all(*state, flags_cases, N_ELEMENTS(flags_cases));
}

static const struct search_case dates_cases[] = {
	{ "BEFORE 3-Jun-2025", " 1" },
	{ "ON 3-Jun-2025", " 2" },
	{ "SINCE 5-Jun-2025", " 3 4" },
	/* Date: headers: 2-Jun-2025, 3-Jun-2025, 1-Jan-2024, none. */
	{ "SENTBEFORE 2-Jun-2025", " 3" },
	{ "SENTON 3-Jun-2025", " 2" },
	{ "SENTSINCE 2-Jun-2025", " 1 2" },
	{ "NOT SENTSINCE 2-Jun-2025", " 3 4" },
	{ "SAVEDSINCE 1-Jan-2000", " 1 2 3 4" },
	{ "SAVEDBEFORE 1-Jan-2000", "" },
	{ "SAVEDON 1-Jan-2000", "" },
	{ "SAVEDATESUPPORTED", " 1 2 3 4" },
	{ "YOUNGER 3600", " 4" },
	{ "OLDER 3600", " 1 2 3" },
};

static void test_dates(void **state)
{
	expect_all(*state, dates_cases, N_ELEMENTS(dates_cases));
}

static const struct search_case text_cases[] = {
	{ "BODY ello", " 1" },
	{ "BODY HELLO", " 1" },
	{ "TEXT hello", " 1" },
	{ "TEXT \"\"", " 1 2 3 4" },
	{ "SUBJECT world", " 1" },
	{ "FROM alice", " 1" },
	{ "FROM Al", " 1" },
	{ "TO bob", " 1" },
	{ "CC carol", " 2" },
	{ "BCC dave", " 3" },
	{ "FROM nobody", "" },
	/* UTF-8 folds too (the trigram index). */
	{ "CHARSET UTF-8 BODY {8+}\r\nM\xc3\x9c"
	  "NCHEN",
	  " 2" },
	{ "SUBJECT {6+}\r\ngr\xc3\xbc\xc3\x9f", " 2" },
	{ "HEADER X-Spam yes", " 1" },
	{ "HEADER x-spam YE", " 1" },
	{ "HEADER X-Spam no", "" },
	{ "HEADER List-Id \"\"", " 3" },
	{ "HEADER Subject {6+}\r\nGR\xc3\xbc\xc3\x9f", " 2" },
	{ "HEADER Subject eeting", " 3" },
	{ "NOT HEADER List-Id \"\"", " 1 2 4" },
};

static void test_text(void **state)
{
	expect_all(*state, text_cases, N_ELEMENTS(text_cases));
}

static void test_sets(void **state)
{
	struct fixture *f = *state;
	const char *out;

	expect(f, "2:3", " 2 3");
	expect(f, "*", " 4");
	expect(f, "1,3:*", " 1 3 4");
	expect(f, "3:100", " 3 4");
	/* UIDs are 2..5. */
	expect(f, "UID 2", " 1");
	expect(f, "UID 1:3", " 1 2");
	expect(f, "UID *", " 4");
	expect(f, "UID 100:200", "");
	out = run(f, true, "1:2");
	assert_string_equal(out,
			    "* SEARCH 2 3\r\nt OK UID SEARCH completed\r\n");
	out = run(f, true, "UID 3:4 SEEN");
	assert_string_equal(out, "* SEARCH\r\nt OK UID SEARCH completed\r\n");
}

static const struct search_case logic_cases[] = {
	{ "OR SEEN FLAGGED", " 1 2" },
	{ "NOT OR SEEN FLAGGED", " 3 4" },
	{ "NOT (OR SEEN FLAGGED)", " 3 4" },
	{ "OR NOT SEEN BODY ello", " 1 2 3 4" },
	{ "OR (SEEN BODY ello) (DELETED HEADER List-Id \"\")", " 1 3" },
	{ "NOT NOT SEEN", " 1" },
	{ "OR OR SEEN DRAFT LARGER 4000", " 1 3 4" },
	{ "(UNSEEN (UNDELETED)) TEXT \"\"", " 2 4" },
};

static void test_logic(void **state)
{
	expect_all(*state, logic_cases, N_ELEMENTS(logic_cases));
}

static void test_modseq_ids(void **state)
{
	struct fixture *f = *state;
	char args[128], want[64];
	uint64_t max = 0;
	unsigned int i;

	for (i = 0; i < f->row_count; i++) {
		if (f->rows[i].modseq > max)
			max = f->rows[i].modseq;
	}
	/* RFC 7162 3.1.5: the highest MODSEQ of the matches. */
	snprintf(want, sizeof(want), " 1 2 3 4 (MODSEQ %llu)",
		 (unsigned long long)max);
	expect(f, "MODSEQ 1", want);
	snprintf(args, sizeof(args), "MODSEQ %llu", (unsigned long long)max);
	snprintf(want, sizeof(want), " 4 (MODSEQ %llu)",
		 (unsigned long long)max);
	expect(f, args, want);
	snprintf(args, sizeof(args), "MODSEQ \"/flags/\\\\seen\" all %llu",
		 (unsigned long long)max + 1);
	expect(f, args, "");
	snprintf(args, sizeof(args), "EMAILID %s", f->rows[1].email_id);
	expect(f, args, " 2");
	snprintf(args, sizeof(args), "THREADID %s", f->rows[2].thread_id);
	expect(f, args, " 3");
	expect(f, "EMAILID Mnothere", "");
	/* RFC 7162 3.1: MODSEQ enabled CONDSTORE. */
	assert_true((f->session.enabled & IMAP_ENABLED_CONDSTORE) != 0);
}

static void test_esearch(void **state)
{
	struct fixture *f = *state;
	const char *out;

	out = run(f, false, "RETURN (MIN MAX COUNT) UNSEEN");
	assert_string_equal(out, "* ESEARCH (TAG \"t\") MIN 2 MAX 4 COUNT 3\r\n"
				 "t OK SEARCH completed\r\n");
	out = run(f, false, "RETURN () 1,3:4");
	assert_string_equal(out, "* ESEARCH (TAG \"t\") ALL 1,3:4\r\n"
				 "t OK SEARCH completed\r\n");
	out = run(f, true, "RETURN (ALL COUNT) NOT SEEN");
	assert_string_equal(out, "* ESEARCH (TAG \"t\") UID COUNT 3 ALL 3:5\r\n"
				 "t OK UID SEARCH completed\r\n");
	/* RFC 4731 3.1: nothing matched: no MIN, MAX or ALL. */
	out = run(f, false, "RETURN (MIN MAX ALL COUNT) FROM nobody");
	assert_string_equal(out, "* ESEARCH (TAG \"t\") COUNT 0\r\n"
				 "t OK SEARCH completed\r\n");
	out = run(f, false, "RETURN (MAX) MODSEQ 1");
	assert_non_null(strstr(out, "MAX 4 MODSEQ "));

	/* IMAP4rev2: ESEARCH always. */
	f->session.enabled = IMAP_ENABLED_REV2;
	out = run(f, false, "SEEN");
	assert_string_equal(out, "* ESEARCH (TAG \"t\") ALL 1\r\n"
				 "t OK SEARCH completed\r\n");
	out = run(f, false, "DRAFT SEEN");
	assert_string_equal(out, "* ESEARCH (TAG \"t\")\r\n"
				 "t OK SEARCH completed\r\n");
	f->session.enabled = 0;
}

static void test_searchres(void **state)
{
	struct fixture *f = *state;
	const char *out;

	/* RFC 5182 2.1: SAVE alone answers nothing but the tagged OK. */
	out = run(f, false, "RETURN (SAVE) UNSEEN");
	assert_string_equal(out, "t OK SEARCH completed\r\n");
	assert_int_equal(f->session.searchres_count, 3);
	assert_int_equal(f->session.searchres[0], 3);
	assert_int_equal(f->session.searchres[2], 5);
	expect(f, "$", " 2 3 4");
	expect(f, "UID $ FLAGGED", " 2");
	expect(f, "NOT $", " 1");
	out = run(f, true, "OR $ SEEN");
	assert_string_equal(out, "* SEARCH 2 3 4 5\r\nt OK UID SEARCH "
				 "completed\r\n");
	/* RFC 5182 2.4: with MIN (and MAX), only those are saved. */
	out = run(f, false, "RETURN (SAVE MIN) UNSEEN");
	assert_string_equal(out, "* ESEARCH (TAG \"t\") MIN 2\r\n"
				 "t OK SEARCH completed\r\n");
	assert_int_equal(f->session.searchres_count, 1);
	assert_int_equal(f->session.searchres[0], 3);
	out = run(f, false, "RETURN (SAVE MIN MAX) ALL");
	assert_int_equal(f->session.searchres_count, 2);
	out = run(f, false, "RETURN (SAVE ALL) SEEN");
	assert_int_equal(f->session.searchres_count, 1);
	assert_int_equal(f->session.searchres[0], 2);
	/* A failing SEARCH ... SAVE empties "$". */
	out = run(f, false, "RETURN (SAVE) NOSUCHKEY");
	assert_non_null(strstr(out, "t BAD "));
	assert_int_equal(f->session.searchres_count, 0);
	expect(f, "$", "");
}

static void test_errors(void **state)
{
	struct fixture *f = *state;
	const char *out;

	out = run(f, false, "CHARSET KOI8-R TEXT x");
	assert_string_equal(out, "t NO [BADCHARSET (UTF-8 US-ASCII)] "
				 "Unsupported charset\r\n");
	assert_non_null(strstr(run(f, false, "FOO"), "t BAD "));
	assert_non_null(strstr(run(f, false, "BEFORE 30-Feb-2024"), "t BAD "));
	assert_non_null(strstr(run(f, false, "OR SEEN"), "t BAD "));
	assert_non_null(strstr(run(f, false, "RETURN (BOGUS) ALL"), "t BAD "));
	assert_non_null(
		strstr(run(f, false, "TEXT {2+}\r\n\xc3\x28"), "t BAD "));
}

static void test_gone(void **state)
{
	struct fixture *f = *state;
	const char *error;
	uint32_t uid = 3, *expunged;
	unsigned int count;

	/* Another session expunged UID 3; this one has not been told. */
	assert_int_equal(store_expunge(f->store, f->session.mailbox_id, &uid, 1,
				       f->pool, &expunged, &count, &error),
			 0);
	expect(f, "ALL", " 1 3 4");
	expect(f, "NOT SEEN", " 3 4");
	expect(f, "2", "");
	expect(f, "BODY aus", "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_modseq_ids, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_esearch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_searchres, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gone, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
