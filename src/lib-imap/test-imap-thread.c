/* test-imap-thread.c - unit tests for THREAD (RFC 5256 3, 4): the RFC's
   response example rebuilt from references, ORDEREDSUBJECT grouping and
   ordering, REFERENCES with missing parents (dummies kept at the top,
   pruned below), subject gathering of Re:/Fwd: replies, and hostile
   input: reference loops, self references, duplicate Message-IDs, and
   10,000-deep chains and nestings (no recursion). */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "pool.h"
#include "imap-thread.h"

#include <stdio.h>
#include <stdlib.h>

static pool_t pool;

static int setup(void **state)
{
	(void)state;
	pool = pool_create("test-imap-thread", 64 * 1024);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pool_unref(&pool);
	return 0;
}

static const char *const no_refs[] = { NULL };

/* A message with up to 4 space-separated references. */
static struct imap_thread_msg msg(uint32_t seq, int64_t date,
				  const char *subject, bool reply,
				  const char *id, const char *refs)
{
	struct imap_thread_msg m = { .seq = seq,
				     .uid = seq * 10,
				     .date = date,
				     .base_subject = subject,
				     .subject_is_reply = reply,
				     .message_id = id,
				     .references = no_refs };
	const char **list;
	char *copy, *p, *save = NULL;
	unsigned int n = 0;

	if (refs != NULL) {
		list = p_new(pool, const char *, 5);
		copy = p_strdup(pool, refs);
		for (p = strtok_r(copy, " ", &save); p != NULL && n < 4;
		     p = strtok_r(NULL, " ", &save))
			list[n++] = p;
		m.references = list;
	}
	return m;
}

static const char *thread_str(const struct imap_thread_msg *msgs,
			      unsigned int count,
			      enum imap_thread_algorithm algo, bool uid)
{
	struct imap_thread thread;
	struct buf out = BUF_INIT;
	const char *ret;

	imap_thread_build(pool, msgs, count, algo, &thread);
	imap_thread_write(&out, &thread, msgs, uid);
	ret = p_strdup(pool, buf_cstr(&out));
	buf_free(&out);
	return ret;
}

#define REFS IMAP_THREAD_REFERENCES
#define ORDSUBJ IMAP_THREAD_ORDEREDSUBJECT

static void test_algorithm_parse(void **state)
{
	enum imap_thread_algorithm algo;

	(void)state;
	assert_true(imap_thread_algorithm_parse("references", &algo));
	assert_int_equal(algo, IMAP_THREAD_REFERENCES);
	assert_true(imap_thread_algorithm_parse("OrderedSubject", &algo));
	assert_int_equal(algo, IMAP_THREAD_ORDEREDSUBJECT);
	assert_false(imap_thread_algorithm_parse("REFS", &algo));
	assert_false(imap_thread_algorithm_parse("", &algo));
}

/* RFC 5256 4's example response, "(2)(3 6 (4 23)(44 7 96))": 3 -> 6,
   6 -> 4 and 44, 4 -> 23, 44 -> 7 -> 96. */
static void test_rfc_example(void **state)
{
	struct imap_thread_msg msgs[] = {
		msg(2, 2, "two", false, "2@x", NULL),
		msg(3, 3, "three", false, "3@x", NULL),
		msg(4, 4, "three", true, "4@x", "3@x 6@x"),
		msg(6, 6, "three", true, "6@x", "3@x"),
		msg(7, 7, "three", true, "7@x", "3@x 6@x 44@x"),
		msg(23, 23, "three", true, "23@x", "3@x 6@x 4@x"),
		msg(44, 44, "three", true, "44@x", "3@x 6@x"),
		msg(96, 96, "three", true, "96@x", "3@x 6@x 44@x 7@x"),
	};

	(void)state;
	assert_string_equal(thread_str(msgs, N_ELEMENTS(msgs), REFS, false),
			    "* THREAD (2)(3 6 (4 23)(44 7 96))\r\n");
	/* Arrival order does not matter, only references and dates: the
	   children came in reverse. */
	struct imap_thread_msg rev[N_ELEMENTS(msgs)];
	for (unsigned int i = 0; i < N_ELEMENTS(msgs); i++)
		rev[i] = msgs[N_ELEMENTS(msgs) - 1 - i];
	assert_string_equal(thread_str(rev, N_ELEMENTS(rev), REFS, false),
			    "* THREAD (2)(3 6 (4 23)(44 7 96))\r\n");
	assert_string_equal(thread_str(msgs, N_ELEMENTS(msgs), REFS, true),
			    "* THREAD (20)(30 60 (40 230)(440 70 960))\r\n");
}

static void test_orderedsubject(void **state)
{
	struct imap_thread_msg msgs[] = {
		msg(1, 10, "a", false, "", NULL),
		msg(2, 5, "b", false, "", NULL),
		msg(3, 20, "a", true, "", NULL),
		msg(4, 15, "A", false, "", NULL),
		msg(5, 1, "c", false, "", NULL),
		msg(6, 6, "b", true, "", NULL),
		msg(7, 10, "a", false, "", NULL),
	};

	(void)state;
	/* RFC 5256 3 ORDEREDSUBJECT: per subject (i;ascii-casemap) the
	   earliest is the root, the rest its children by date (equal dates
	   by sequence number); threads by their roots' dates. */
	assert_string_equal(thread_str(msgs, N_ELEMENTS(msgs), ORDSUBJ, false),
			    "* THREAD (5)(2 6)(1 (7)(4)(3))\r\n");
	assert_string_equal(thread_str(msgs, 0, ORDSUBJ, false),
			    "* THREAD\r\n");
	assert_string_equal(thread_str(msgs, 1, ORDSUBJ, false),
			    "* THREAD (1)\r\n");
}

static void test_missing_parents(void **state)
{
	struct imap_thread_msg two_orphans[] = {
		msg(1, 1, "other", false, "1@x", NULL),
		msg(2, 2, "lost", true, "2@x", "lost@x"),
		msg(3, 3, "lost", true, "3@x", "lost@x"),
	};
	struct imap_thread_msg one_orphan[] = {
		msg(1, 1, "lost", true, "1@x", "gone@x lost@x"),
	};
	struct imap_thread_msg gap[] = {
		msg(1, 1, "a", false, "a@x", NULL),
		msg(2, 2, "a", true, "b@x", "a@x lost@x"),
	};

	(void)state;
	/* A dummy at the top with two children stays. */
	assert_string_equal(thread_str(two_orphans, 3, REFS, false),
			    "* THREAD (1)((2)(3))\r\n");
	/* With one child it goes: the child is the thread. */
	assert_string_equal(thread_str(one_orphan, 1, REFS, false),
			    "* THREAD (1)\r\n");
	/* A dummy below the top goes; its child moves up. */
	assert_string_equal(thread_str(gap, 2, REFS, false),
			    "* THREAD (1 2)\r\n");
}

/* RFC 5256 3 REFERENCES (5): top-level threads of one base subject. */
static void test_subject_gathering(void **state)
{
	struct imap_thread_msg reply[] = {
		msg(1, 5, "hello", true, "r@x", NULL),
		msg(2, 1, "hello", false, "h@x", NULL),
		msg(3, 9, "", false, "e1@x", NULL),
		msg(4, 8, "", false, "e2@x", NULL),
	};
	struct imap_thread_msg siblings[] = {
		msg(1, 1, "same", false, "s1@x", NULL),
		msg(2, 2, "same", false, "s2@x", NULL),
		msg(3, 3, "same", true, "s3@x", NULL),
	};
	struct imap_thread_msg dummies[] = {
		msg(1, 1, "d", true, "d1@x", "p@x"),
		msg(2, 2, "d", true, "d2@x", "p@x"),
		msg(3, 3, "d", true, "d3@x", "q@x"),
		msg(4, 4, "d", true, "d4@x", "q@x"),
		msg(5, 5, "d", false, "d5@x", NULL),
	};

	(void)state;
	/* A reply becomes the child of the thread that is not a reply;
	   empty subjects are not gathered. */
	assert_string_equal(thread_str(reply, 4, REFS, false),
			    "* THREAD (2 1)(4)(3)\r\n");
	/* Two non-replies become siblings under a dummy; the reply then
	   joins the dummy. */
	assert_string_equal(thread_str(siblings, 3, REFS, false),
			    "* THREAD ((1)(2)(3))\r\n");
	/* Two dummies merge; a message joins the dummy. */
	assert_string_equal(thread_str(dummies, 5, REFS, false),
			    "* THREAD ((1)(2)(3)(4)(5))\r\n");
}

static void test_loops(void **state)
{
	struct imap_thread_msg mutual[] = {
		msg(1, 1, "a", false, "a@x", "b@x"),
		msg(2, 2, "b", false, "b@x", "a@x"),
	};
	struct imap_thread_msg self[] = {
		msg(1, 1, "s", false, "s@x", "s@x"),
		msg(2, 2, "t", false, "t@x", "t@x s@x t@x"),
	};
	struct imap_thread_msg cycle[] = {
		msg(1, 1, "c1", false, "c1@x", "c3@x c2@x"),
		msg(2, 2, "c2", false, "c2@x", "c1@x c3@x"),
		msg(3, 3, "c3", false, "c3@x", "c2@x c1@x"),
	};
	const char *out;

	(void)state;
	/* 1 under b; b (2) cannot go under a (1). */
	assert_string_equal(thread_str(mutual, 2, REFS, false),
			    "* THREAD (2 1)\r\n");
	/* Self references link nothing; "t s t" puts s under t (B) and
	   refuses s -> t. */
	out = thread_str(self, 2, REFS, false);
	assert_string_equal(out, "* THREAD (2 1)\r\n");
	/* A cycle through three messages: every message appears once. */
	out = thread_str(cycle, 3, REFS, false);
	assert_non_null(strstr(out, "1"));
	assert_non_null(strstr(out, "2"));
	assert_non_null(strstr(out, "3"));
	assert_int_equal(strlen(out), strlen("* THREAD (1 2 3)\r\n"));
}

static void test_duplicate_ids(void **state)
{
	struct imap_thread_msg msgs[] = {
		msg(1, 1, "first", false, "d@x", NULL),
		msg(2, 2, "second", false, "d@x", NULL),
		msg(3, 3, "third", true, "t@x", "d@x"),
		msg(4, 4, "fourth", false, "", "t@x"),
		msg(5, 5, "fifth", false, "", NULL),
	};

	(void)state;
	/* The second d@x is threaded as if it had an id of its own. */
	assert_string_equal(thread_str(msgs, 5, REFS, false),
			    "* THREAD (1 3 4)(2)(5)\r\n");
}

static void test_deep_chain(void **state)
{
	const unsigned int n = 10000;
	struct imap_thread_msg *msgs = p_new(pool, struct imap_thread_msg, n);
	struct buf want = BUF_INIT;
	char id[32], parent[32];

	(void)state;
	/* Each message replies to the previous one, delivered newest
	   first. */
	for (unsigned int i = 0; i < n; i++) {
		uint32_t seq = n - i;

		snprintf(id, sizeof(id), "%u@x", seq);
		snprintf(parent, sizeof(parent), "%u@x", seq - 1);
		msgs[i] = msg(i + 1, seq, "chain", seq > 1, p_strdup(pool, id),
			      seq > 1 ? parent : NULL);
	}
	buf_append_str(&want, "* THREAD (");
	for (unsigned int i = 0; i < n; i++)
		buf_printf(&want, i == 0 ? "%u" : " %u", n - i);
	buf_append_str(&want, ")\r\n");
	assert_string_equal(thread_str(msgs, n, REFS, false), buf_cstr(&want));
	buf_free(&want);
}

/* 5,000 levels of nested lists: node k has the next chain node and a
   leaf as children. */
static void test_deep_nesting(void **state)
{
	const unsigned int levels = 5000;
	struct imap_thread_msg *msgs =
		p_new(pool, struct imap_thread_msg, levels * 2);
	const char *out;
	char id[32], parent[32];
	unsigned int n = 0, depth = 0, max_depth = 0, numbers = 0;

	(void)state;
	for (unsigned int k = 0; k < levels; k++) {
		snprintf(id, sizeof(id), "c%u@x", k);
		snprintf(parent, sizeof(parent), "c%u@x", k - 1);
		msgs[n] = msg(n + 1, n + 1, "nest", k > 0, p_strdup(pool, id),
			      k > 0 ? parent : NULL);
		n++;
		snprintf(id, sizeof(id), "l%u@x", k);
		snprintf(parent, sizeof(parent), "c%u@x", k);
		msgs[n] = msg(n + 1, n + 1, "nest", true, p_strdup(pool, id),
			      parent);
		n++;
	}
	out = thread_str(msgs, n, REFS, false);
	for (const char *p = out; *p != '\0'; p++) {
		if (*p == '(')
			depth++;
		else if (*p == ')') {
			assert_true(depth > 0);
			depth--;
		} else if (*p >= '0' && *p <= '9' && (p[1] < '0' || p[1] > '9'))
			numbers++;
		if (depth > max_depth)
			max_depth = depth;
	}
	assert_int_equal(depth, 0);
	assert_int_equal(numbers, n);
	assert_true(max_depth >= levels);
	assert_non_null(strstr(out, "* THREAD (1 (2)(3 (4)(5 (6)(7 "));
}

/* Random references over a small id space: loops, duplicates, self
   references; every message must come out exactly once. */
static void test_random(void **state)
{
	const unsigned int n = 2000;
	struct imap_thread_msg *msgs = p_new(pool, struct imap_thread_msg, n);
	uint32_t rnd = 12345;
	unsigned int *seen = i_new(unsigned int, n + 1);
	char refs[64], id[16];
	const char *out;

	(void)state;
	for (unsigned int i = 0; i < n; i++) {
		size_t len = 0;

		refs[0] = '\0';
		for (unsigned int j = 0; j < 4; j++) {
			rnd = rnd * 1103515245u + 12345u;
			len += (size_t)snprintf(refs + len, sizeof(refs) - len,
						"%s%u@x", j > 0 ? " " : "",
						(rnd >> 16) % 300);
		}
		rnd = rnd * 1103515245u + 12345u;
		snprintf(id, sizeof(id), "%u@x", (rnd >> 16) % 300);
		msgs[i] =
			msg(i + 1, (rnd >> 8) % 50, (rnd & 1) != 0 ? "s" : "t",
			    (rnd & 2) != 0, p_strdup(pool, id), refs);
	}
	out = thread_str(msgs, n, REFS, false);
	for (const char *p = out + strlen("* THREAD "); *p != '\0';) {
		if (*p >= '0' && *p <= '9') {
			unsigned long v = strtoul(p, (char **)&p, 10);

			assert_true(v >= 1 && v <= n);
			seen[v]++;
		} else {
			p++;
		}
	}
	for (unsigned int i = 1; i <= n; i++)
		assert_int_equal(seen[i], 1);
	i_free(seen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_algorithm_parse),
		cmocka_unit_test(test_rfc_example),
		cmocka_unit_test(test_orderedsubject),
		cmocka_unit_test(test_missing_parents),
		cmocka_unit_test(test_subject_gathering),
		cmocka_unit_test(test_loops),
		cmocka_unit_test(test_duplicate_ids),
		cmocka_unit_test(test_deep_chain),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
