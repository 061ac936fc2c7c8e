/* test-imap-sort.c - unit tests for SORT (RFC 5256 3, RFC 5957): the
   criteria parser (every key, REVERSE, bad lists), ordering by each key,
   REVERSE, several keys, ties in sequence order, i;ascii-casemap against
   plain lower-casing, the DATE fallback to INTERNALDATE and the writer. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "imap-sort.h"

/* A list argument of atoms. */
static struct imap_arg atoms_list(struct imap_arg *elems,
				  const char *const *names, unsigned int n)
{
	struct imap_arg list = { .type = IMAP_ARG_LIST, .str = "" };

	for (unsigned int i = 0; i < n; i++) {
		elems[i] = (struct imap_arg){ .type = IMAP_ARG_ATOM,
					      .str = names[i],
					      .len = strlen(names[i]) };
	}
	list.list = elems;
	list.list_count = n;
	return list;
}

static int parse(const char *const *names, unsigned int n,
		 struct imap_sort_criterion *crit, const char **error_r)
{
	struct imap_arg elems[32];
	struct imap_arg list = atoms_list(elems, names, n);

	return imap_sort_parse(&list, crit, error_r);
}

static void test_parse(void **state)
{
	static const char *const all[] = { "ARRIVAL",  "cc",      "Date",
					   "FROM",     "SIZE",    "SUBJECT",
					   "TO",       "reverse", "DISPLAYFROM",
					   "DISPLAYTO" };
	static const char *const rev_end[] = { "DATE", "REVERSE" };
	static const char *const rev_rev[] = { "REVERSE", "REVERSE", "DATE" };
	static const char *const unknown[] = { "DATE", "COLOR" };
	const char *many[IMAP_SORT_CRITERIA_MAX + 1];
	struct imap_sort_criterion crit[IMAP_SORT_CRITERIA_MAX];
	struct imap_arg elems[2], list, notlist;
	const char *error = NULL;

	(void)state;
	assert_int_equal(parse(all, N_ELEMENTS(all), crit, &error), 9);
	assert_int_equal(crit[0].key, IMAP_SORT_ARRIVAL);
	assert_int_equal(crit[1].key, IMAP_SORT_CC);
	assert_int_equal(crit[2].key, IMAP_SORT_DATE);
	assert_int_equal(crit[6].key, IMAP_SORT_TO);
	assert_false(crit[6].reverse);
	assert_int_equal(crit[7].key, IMAP_SORT_DISPLAYFROM);
	assert_true(crit[7].reverse);
	assert_false(crit[8].reverse);
	assert_int_equal(crit[8].key, IMAP_SORT_DISPLAYTO);

	assert_int_equal(parse(rev_end, 2, crit, &error), -1);
	assert_int_equal(parse(rev_rev, 3, crit, &error), -1);
	assert_int_equal(parse(unknown, 2, crit, &error), -1);
	assert_string_equal(error, "unknown sort criterion");
	assert_int_equal(parse(NULL, 0, crit, &error), -1);
	for (unsigned int i = 0; i < N_ELEMENTS(many); i++)
		many[i] = "SIZE";
	assert_int_equal(parse(many, IMAP_SORT_CRITERIA_MAX, crit, &error),
			 IMAP_SORT_CRITERIA_MAX);
	assert_int_equal(parse(many, N_ELEMENTS(many), crit, &error), -1);

	/* Not a list, and a list holding a list. */
	notlist = (struct imap_arg){ .type = IMAP_ARG_ATOM, .str = "DATE" };
	assert_int_equal(imap_sort_parse(&notlist, crit, &error), -1);
	assert_int_equal(imap_sort_parse(NULL, crit, &error), -1);
	list = atoms_list(elems, all, 1);
	elems[0].type = IMAP_ARG_LIST;
	assert_int_equal(imap_sort_parse(&list, crit, &error), -1);
	elems[0].type = IMAP_ARG_QUOTED;
	assert_int_equal(imap_sort_parse(&list, crit, &error), -1);
}

static const struct imap_sort_msg base_msgs[] = {
	{ .seq = 1,
	  .uid = 10,
	  .date = 300,
	  .arrival = 50,
	  .size = 900,
	  .subject = "beta",
	  .from = "zed",
	  .to = "amy",
	  .cc = "",
	  .display_from = "Zed",
	  .display_to = "Amy" },
	{ .seq = 2,
	  .uid = 20,
	  .date = 100,
	  .arrival = 40,
	  .size = 100,
	  .subject = "alpha",
	  .from = "bob",
	  .to = "carl",
	  .cc = "x",
	  .display_from = "bob",
	  .display_to = "Carl" },
	{ .seq = 3,
	  .uid = 30,
	  .date = 200,
	  .arrival = 60,
	  .size = 500,
	  .subject = "beta",
	  .from = "amy",
	  .to = "bob",
	  .cc = "a",
	  .display_from = "Amy",
	  .display_to = "bob" },
	{ .seq = 4,
	  .uid = 40,
	  .date = 100,
	  .arrival = 10,
	  .size = 500,
	  .subject = "Alpha",
	  .from = "Bob",
	  .to = "amy",
	  .cc = "",
	  .display_from = "Bob",
	  .display_to = "" },
};

/* Sorts a copy and writes sequence numbers. */
static void assert_sorted(const char *const *names, unsigned int n,
			  const char *expected)
{
	struct imap_sort_msg msgs[N_ELEMENTS(base_msgs)];
	struct imap_sort_criterion crit[IMAP_SORT_CRITERIA_MAX];
	const char *error = NULL;
	struct buf out = BUF_INIT;
	int count = parse(names, n, crit, &error);

	assert_true(count > 0);
	memcpy(msgs, base_msgs, sizeof(msgs));
	imap_sort(msgs, N_ELEMENTS(msgs), crit, (unsigned int)count);
	imap_sort_write(&out, msgs, N_ELEMENTS(msgs), false);
	if (strcmp(buf_cstr(&out), expected) != 0)
		fail_msg("%s: got '%s', want '%s'", names[0], buf_cstr(&out),
			 expected);
	buf_free(&out);
}

#define SORTED(expected, ...)                                             \
	do {                                                              \
		static const char *const keys_[] = { __VA_ARGS__ };       \
		assert_sorted(keys_, N_ELEMENTS(keys_), expected "\r\n"); \
	} while (0)

static void test_keys(void **state)
{
	(void)state;
	SORTED("* SORT 4 2 1 3", "ARRIVAL");
	SORTED("* SORT 3 1 2 4", "REVERSE", "ARRIVAL");
	/* Equal dates (2, 4) stay in mailbox order, also reversed. */
	SORTED("* SORT 2 4 3 1", "DATE");
	SORTED("* SORT 1 3 2 4", "REVERSE", "DATE");
	SORTED("* SORT 2 3 4 1", "SIZE");
	SORTED("* SORT 1 3 4 2", "REVERSE", "SIZE");
	/* "bob" and "Bob" are equal under i;ascii-casemap. */
	SORTED("* SORT 3 2 4 1", "FROM");
	SORTED("* SORT 1 4 3 2", "CC");
	SORTED("* SORT 1 4 3 2", "TO");
	SORTED("* SORT 2 4 1 3", "SUBJECT");
	SORTED("* SORT 3 2 4 1", "DISPLAYFROM");
	SORTED("* SORT 4 1 3 2", "DISPLAYTO");
	/* Several keys: subject, then the newest first. */
	SORTED("* SORT 2 4 1 3", "SUBJECT", "REVERSE", "DATE");
	SORTED("* SORT 4 2 1 3", "SUBJECT", "ARRIVAL");
	SORTED("* SORT 3 1 2 4", "REVERSE", "SUBJECT", "REVERSE", "ARRIVAL");
	SORTED("* SORT 2 3 4 1", "SIZE", "REVERSE", "SUBJECT", "DATE");
}

static void test_cc_write(void **state)
{
	struct imap_sort_msg msgs[N_ELEMENTS(base_msgs)];
	struct imap_sort_criterion crit = { IMAP_SORT_CC, false };
	struct buf out = BUF_INIT;

	(void)state;
	memcpy(msgs, base_msgs, sizeof(msgs));
	/* Empty Cc keys sort first (RFC 5256 3: missing = ""). */
	imap_sort(msgs, N_ELEMENTS(msgs), &crit, 1);
	imap_sort_write(&out, msgs, N_ELEMENTS(msgs), true);
	assert_string_equal(buf_cstr(&out), "* SORT 10 40 30 20\r\n");
	buf_reset(&out);
	imap_sort_write(&out, msgs, 0, true);
	assert_string_equal(buf_cstr(&out), "* SORT\r\n");
	buf_free(&out);
}

static void test_casemap(void **state)
{
	(void)state;
	assert_int_equal(imap_ascii_casemap_cmp("abc", "ABC"), 0);
	assert_true(imap_ascii_casemap_cmp("abc", "abd") < 0);
	assert_true(imap_ascii_casemap_cmp("ab", "abc") < 0);
	assert_true(imap_ascii_casemap_cmp("", "a") < 0);
	/* RFC 4790 9.2 folds to upper case: 'a' (as 'A', 0x41) sorts before
	   '_' (0x5f), which lower-casing would put first. */
	assert_true(imap_ascii_casemap_cmp("abc", "_x") < 0);
	assert_true(imap_ascii_casemap_cmp("[", "a") > 0);
	/* Octets above ASCII compare as octets. */
	assert_true(imap_ascii_casemap_cmp("z", "\xc3\xa4") < 0);
	assert_int_equal(imap_ascii_casemap_cmp("\xc3\xa4", "\xc3\xa4"), 0);
}

static void test_sent_date(void **state)
{
	(void)state;
	/* RFC 5256 2.2: no usable Date: header, INTERNALDATE instead. */
	assert_int_equal(imap_sort_sent_date(0, 77), 77);
	assert_int_equal(imap_sort_sent_date(5, 77), 5);
	assert_int_equal(imap_sort_sent_date(-5, 77), -5);
}

static void test_many(void **state)
{
	const unsigned int n = 20000;
	struct imap_sort_msg *msgs = i_new(struct imap_sort_msg, n);
	struct imap_sort_criterion crit[2] = { { IMAP_SORT_SIZE, true },
					       { IMAP_SORT_ARRIVAL, false } };

	(void)state;
	for (unsigned int i = 0; i < n; i++) {
		msgs[i] = base_msgs[0];
		msgs[i].seq = i + 1;
		msgs[i].size = (i * 7919u) % 101;
		msgs[i].arrival = i % 3;
	}
	imap_sort(msgs, n, crit, 2);
	for (unsigned int i = 1; i < n; i++) {
		const struct imap_sort_msg *a = &msgs[i - 1], *b = &msgs[i];

		assert_true(a->size > b->size ||
			    (a->size == b->size &&
			     (a->arrival < b->arrival ||
			      (a->arrival == b->arrival && a->seq < b->seq))));
	}
	i_free(msgs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_cc_write),
		cmocka_unit_test(test_casemap),
		cmocka_unit_test(test_sent_date),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
