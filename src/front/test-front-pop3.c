/* test-front-pop3.c - unit tests for POP3's I/O-free parts
   (front-pop3-maildrop.h): message numbers (syntax, range, deleted),
   STAT counts through DELE and RSET, the UIDs that QUIT expunges, UIDL
   strings (RFC 1939 7: 1-70 characters 0x21-0x7E), argument splitting,
   dot-stuffing of RETR and TOP (leading dots doubled, bare LF made CRLF,
   a missing last line end added, TOP's header/body split), and the
   maildrop lock table. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "front-pop3-maildrop.h"

static struct span S(const char *s) {
	return span_from_cstr(s);
}

static void
fill(struct pop3_maildrop *md)
{
	pop3_maildrop_init(md, 1700000000u);
	pop3_maildrop_add(md, 3, 100);
	pop3_maildrop_add(md, 7, 250);
	pop3_maildrop_add(md, 4000000000u, 1);
}

static void test_lookup(void **st ATTR_UNUSED)
{
	struct pop3_maildrop md;
	struct pop3_msg *msg = NULL;

	fill(&md);
	assert_int_equal(pop3_maildrop_lookup(&md, S("1"), &msg),
			 POP3_LOOKUP_OK);
	assert_int_equal(msg->uid, 3);
	assert_int_equal(pop3_maildrop_lookup(&md, S("3"), &msg),
			 POP3_LOOKUP_OK);
	assert_int_equal(msg->uid, 4000000000u);
	assert_int_equal(pop3_maildrop_lookup(&md, S("0"), &msg),
			 POP3_LOOKUP_NO_SUCH);
	assert_int_equal(pop3_maildrop_lookup(&md, S("4"), &msg),
			 POP3_LOOKUP_NO_SUCH);
	assert_int_equal(
		pop3_maildrop_lookup(&md, S("99999999999999999999"), &msg),
		POP3_LOOKUP_SYNTAX);
	static const char *const bad[] = { "",    "-1", "+1", "1a",
					   "0x1", " 1", "1.0" };
	for (unsigned int i = 0; i < N_ELEMENTS(bad); i++)
		assert_int_equal(pop3_maildrop_lookup(&md, S(bad[i]), &msg),
				 POP3_LOOKUP_SYNTAX);
	assert_non_null(pop3_lookup_error(POP3_LOOKUP_DELETED));
	pop3_maildrop_free(&md);
}

static void test_dele_rset(void **st ATTR_UNUSED)
{
	struct pop3_maildrop md;
	struct pop3_msg *msg;
	uint32_t uids[3];

	fill(&md);
	assert_int_equal(md.live_count, 3);
	assert_int_equal(md.live_size, 351);
	assert_int_equal(pop3_maildrop_lookup(&md, S("2"), &msg),
			 POP3_LOOKUP_OK);
	pop3_maildrop_delete(&md, msg);
	assert_int_equal(md.live_count, 2);
	assert_int_equal(md.live_size, 101);
	/* RFC 1939 5: a deleted message cannot be referred to. */
	assert_int_equal(pop3_maildrop_lookup(&md, S("2"), &msg),
			 POP3_LOOKUP_DELETED);
	assert_int_equal(pop3_maildrop_lookup(&md, S("3"), &msg),
			 POP3_LOOKUP_OK);
	pop3_maildrop_delete(&md, msg);
	assert_int_equal(pop3_maildrop_deleted_uids(&md, uids), 2);
	assert_int_equal(uids[0], 7);
	assert_int_equal(uids[1], 4000000000u);
	pop3_maildrop_reset(&md);
	assert_int_equal(md.live_count, 3);
	assert_int_equal(md.live_size, 351);
	assert_int_equal(pop3_maildrop_deleted_uids(&md, uids), 0);
	assert_int_equal(pop3_maildrop_lookup(&md, S("2"), &msg),
			 POP3_LOOKUP_OK);
	pop3_maildrop_free(&md);

	/* An empty maildrop. */
	pop3_maildrop_init(&md, 1);
	assert_int_equal(pop3_maildrop_lookup(&md, S("1"), &msg),
			 POP3_LOOKUP_NO_SUCH);
	pop3_maildrop_reset(&md);
	assert_int_equal(md.live_count, 0);
	pop3_maildrop_free(&md);
}

static void test_many(void **st ATTR_UNUSED)
{
	struct pop3_maildrop md;
	struct pop3_msg *msg;

	pop3_maildrop_init(&md, 5);
	for (uint32_t i = 1; i <= 10000; i++)
		pop3_maildrop_add(&md, i * 2, i);
	assert_int_equal(md.live_count, 10000);
	assert_int_equal(md.live_size, 10000ull * 10001 / 2);
	assert_int_equal(pop3_maildrop_lookup(&md, S("10000"), &msg),
			 POP3_LOOKUP_OK);
	assert_int_equal(msg->uid, 20000);
	assert_int_equal(sizeof(struct pop3_msg), 16);
	pop3_maildrop_free(&md);
}

static void test_uidl(void **st ATTR_UNUSED)
{
	struct pop3_maildrop md;
	char uid[POP3_UIDL_MAX];

	pop3_maildrop_init(&md, UINT32_MAX);
	pop3_maildrop_add(&md, UINT32_MAX, 1);
	pop3_uidl(&md, &md.msgs[0], uid);
	assert_string_equal(uid, "4294967295.4294967295");
	for (const char *p = uid; *p != '\0'; p++)
		assert_true(*p >= 0x21 && *p <= 0x7e);
	pop3_maildrop_free(&md);

	fill(&md);
	pop3_uidl(&md, &md.msgs[1], uid);
	assert_string_equal(uid, "1700000000.7");
	pop3_maildrop_free(&md);
}

static void test_split_args(void **st ATTR_UNUSED)
{
	struct span argv[2];

	assert_int_equal(pop3_split_args(S(""), argv, 2), 0);
	assert_int_equal(pop3_split_args(S("   "), argv, 2), 0);
	assert_int_equal(pop3_split_args(S("1"), argv, 2), 1);
	assert_true(span_eq(argv[0], S("1")));
	assert_int_equal(pop3_split_args(S("12 5"), argv, 2), 2);
	assert_true(span_eq(argv[0], S("12")));
	assert_true(span_eq(argv[1], S("5")));
	assert_int_equal(pop3_split_args(S("12  5 "), argv, 2), 2);
	assert_true(span_eq(argv[1], S("5")));
	assert_int_equal(pop3_split_args(S("1 2 3"), argv, 2), -1);
	assert_int_equal(pop3_split_args(S("1 2"), argv, 1), -1);
}

static void check_stuff(const char *in, int64_t lines, const char *want)
{
	struct buf out = BUF_INIT;

	pop3_dot_stuff((const uint8_t *)in, strlen(in), lines, &out);
	assert_string_equal(buf_cstr(&out), want);
	buf_free(&out);
}

static void test_dot_stuff(void **st ATTR_UNUSED)
{
	check_stuff("", -1, ".\r\n");
	check_stuff("A: b\r\n\r\nbody\r\n", -1, "A: b\r\n\r\nbody\r\n.\r\n");
	/* RFC 1939 3: a line starting with "." gets another. */
	check_stuff("A: b\r\n\r\n.\r\n..x\r\n.y\r\nz.\r\n", -1,
		    "A: b\r\n\r\n..\r\n...x\r\n..y\r\nz.\r\n.\r\n");
	/* Bare LF becomes CRLF; a missing last line end is added. */
	check_stuff("A: b\n\nline1\nline2", -1,
		    "A: b\r\n\r\nline1\r\nline2\r\n.\r\n");
	check_stuff("A: b\r\n\r\nend\r", -1, "A: b\r\n\r\nend\r\n.\r\n");
	/* A bare CR inside a line stays. */
	check_stuff("A: b\r\n\r\nx\ry\r\n", -1, "A: b\r\n\r\nx\ry\r\n.\r\n");
	/* A dot-stuffed message cannot end the response early. */
	check_stuff("A: b\r\n\r\n.\r\n.\r\n", -1,
		    "A: b\r\n\r\n..\r\n..\r\n.\r\n");
}

static void test_top(void **st ATTR_UNUSED)
{
	const char *msg = "From: a\r\nSubject: s\r\n\r\n1\r\n.2\r\n3\r\n";

	/* RFC 1939 7: the header, the blank line, then n body lines. */
	check_stuff(msg, 0, "From: a\r\nSubject: s\r\n\r\n.\r\n");
	check_stuff(msg, 1, "From: a\r\nSubject: s\r\n\r\n1\r\n.\r\n");
	check_stuff(msg, 2, "From: a\r\nSubject: s\r\n\r\n1\r\n..2\r\n.\r\n");
	check_stuff(msg, 3,
		    "From: a\r\nSubject: s\r\n\r\n1\r\n..2\r\n3\r\n.\r\n");
	check_stuff(msg, 1000,
		    "From: a\r\nSubject: s\r\n\r\n1\r\n..2\r\n3\r\n.\r\n");
	/* No body separator: all of it is the header. */
	check_stuff("From: a\r\nX: y\r\n", 0, "From: a\r\nX: y\r\n.\r\n");
	/* Empty lines in the body count as lines. */
	check_stuff("A: b\n\n\n\nx\n", 2, "A: b\r\n\r\n\r\n\r\n.\r\n");
}

/* Random messages over ". \r \n a": the response always ends at its own
   ".\r\n" only, and undoing the stuffing gives the input's lines. */
static void test_dot_stuff_random(void **st ATTR_UNUSED)
{
	static const char alphabet[] = ".\r\na";
	struct buf out = BUF_INIT, want = BUF_INIT, got = BUF_INIT;
	uint32_t seed = 12345;
	char in[200];

	for (unsigned int iter = 0; iter < 5000; iter++) {
		size_t len, start = 0;

		seed = seed * 1103515245u + 12345u;
		len = (seed >> 16) % sizeof(in);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = alphabet[(seed >> 16) % 4];
		}
		buf_reset(&out);
		buf_reset(&want);
		buf_reset(&got);
		pop3_dot_stuff((const uint8_t *)in, len, -1, &out);
		/* Expected: each input line without its LF and one CR
		   before it, plus CRLF. */
		for (size_t i = 0; i <= len; i++) {
			if (i < len && in[i] != '\n')
				continue;
			if (i == len && start == len)
				break;
			size_t l = i - start;

			if (l > 0 && in[start + l - 1] == '\r')
				l--;
			buf_append(&want, in + start, l);
			buf_append(&want, "\r\n", 2);
			start = i + 1;
		}
		/* Undo the stuffing line by line; "." alone ends it. */
		const char *p = (const char *)out.data;
		const char *end = p + out.used;
		bool ended = false;

		while (p < end) {
			const char *crlf =
				memmem(p, (size_t)(end - p), "\r\n", 2);

			assert_non_null(crlf);
			assert_false(ended);
			if (crlf - p == 1 && p[0] == '.') {
				ended = true;
			} else {
				if (p[0] == '.')
					p++;
				buf_append(&got, p, (size_t)(crlf + 2 - p));
			}
			p = crlf + 2;
		}
		assert_true(ended);
		assert_int_equal(got.used, want.used);
		assert_memory_equal(got.data, want.data, want.used);
	}
	buf_free(&out);
	buf_free(&want);
	buf_free(&got);
}

static void test_stuffer_parts(void **st ATTR_UNUSED)
{
	struct buf msg = BUF_INIT, whole = BUF_INIT, all = BUF_INIT;
	struct buf part = BUF_INIT;
	struct pop3_stuffer stuffer;
	unsigned int parts = 0;
	bool done = false;

	buf_append_str(&msg, "Subject: big\r\n\r\n");
	for (unsigned int i = 0; i < 20000; i++)
		buf_printf(&msg, "%s%u line of text\n", i % 7 == 0 ? "." : "",
			   i);
	pop3_dot_stuff(msg.data, msg.used, -1, &whole);
	pop3_stuffer_init(&stuffer, msg.data, msg.used, -1);
	while (!done) {
		buf_reset(&part);
		done = pop3_stuffer_next(&stuffer, &part, 4096);
		/* A part ends after the line that crosses the limit. */
		assert_true(part.used < 4096 + 64);
		buf_append(&all, part.data, part.used);
		parts++;
		assert_true(parts < 1000);
	}
	/* The same bytes as all at once, in parts of about 4 KiB. */
	assert_int_equal(all.used, whole.used);
	assert_memory_equal(all.data, whole.data, whole.used);
	assert_true(parts > whole.used / 4200);
	/* Done stays done. */
	buf_reset(&part);
	assert_true(pop3_stuffer_next(&stuffer, &part, 4096));
	assert_int_equal(part.used, 0);

	/* TOP in parts of one line. */
	static const char top_msg[] = "A: 1\r\nB: 2\r\n\r\nx\r\ny\r\nz\r\n";
	buf_reset(&all);
	pop3_stuffer_init(&stuffer, (const uint8_t *)top_msg, strlen(top_msg),
			  2);
	while (!pop3_stuffer_next(&stuffer, &all, 1))
		;
	assert_string_equal(buf_cstr(&all),
			    "A: 1\r\nB: 2\r\n\r\nx\r\ny\r\n.\r\n");
	buf_free(&msg);
	buf_free(&whole);
	buf_free(&all);
	buf_free(&part);
}

static void test_locks(void **st ATTR_UNUSED)
{
	struct pop3_locks locks = { 0 };

	assert_true(pop3_lock_acquire(&locks, 1));
	assert_false(pop3_lock_acquire(&locks, 1));
	assert_true(pop3_lock_acquire(&locks, 2));
	for (uint64_t id = 3; id < 100; id++)
		assert_true(pop3_lock_acquire(&locks, id));
	pop3_lock_release(&locks, 1);
	assert_true(pop3_lock_acquire(&locks, 1));
	assert_false(pop3_lock_acquire(&locks, 50));
	/* Releasing what is not held is harmless. */
	pop3_lock_release(&locks, 1000);
	for (uint64_t id = 1; id < 100; id++)
		pop3_lock_release(&locks, id);
	assert_int_equal(locks.count, 0);
	assert_true(pop3_lock_acquire(&locks, 50));
	pop3_locks_free(&locks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_dele_rset),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_uidl),
		cmocka_unit_test(test_split_args),
		cmocka_unit_test(test_dot_stuff),
		cmocka_unit_test(test_top),
		cmocka_unit_test(test_stuffer_parts),
		cmocka_unit_test(test_dot_stuff_random),
		cmocka_unit_test(test_locks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
