/* fuzz-imap-thread.c - libFuzzer target for imap-thread.c and
   imap-sort.c. The input describes messages, 4 bytes each plus
   references: Message-ID (one of 16, or none), date, subject (one of 4,
   with a reply bit), reference count (0-7) and that many ids; so
   duplicate ids, loops, self references and missing parents come up all
   the time. Both algorithms run; the check: the THREAD response's lists
   balance and name every message exactly once, and SORT by criteria
   taken from the last bytes keeps every message and gives the same order
   whatever the input order. Replayed
   over tests/fuzz-corpus/fuzz-imap-thread/ by tests/fuzz-replay.c in
   every build. */

#include "lib.h"
#include "buf.h"
#include "imap-sort.h"
#include "imap-thread.h"
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_MAX_MSGS 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const ids[16] = { "a", "b", "c", "d", "e", "f", "g", "h",
				     "i", "j", "k", "l", "m", "n", "o", "p" };
static const char *const subjects[4] = { "", "one", "two", "One" };

static void check(bool ok)
{
	if (!ok)
		abort();
}

static void check_thread(const struct imap_thread_msg *msgs, unsigned int n,
			 enum imap_thread_algorithm algo, pool_t pool)
{
	struct imap_thread thread;
	struct buf out = BUF_INIT;
	unsigned int *seen = i_new(unsigned int, n + 1);
	const char *p;
	int depth = 0;

	imap_thread_build(pool, msgs, n, algo, &thread);
	imap_thread_write(&out, &thread, msgs, false);
	p = buf_cstr(&out);
	check(strncmp(p, "* THREAD", 8) == 0);
	for (p += 8; *p != '\0' && *p != '\r'; p++) {
		if (*p == '(') {
			depth++;
		} else if (*p == ')') {
			check(depth > 0 && p[-1] != '(');
			depth--;
		} else if (*p >= '1' && *p <= '9') {
			unsigned long v = strtoul(p, (char **)&p, 10);

			check(v >= 1 && v <= n);
			seen[v]++;
			p--;
		} else {
			check(*p == ' ');
		}
	}
	check(depth == 0);
	for (unsigned int i = 1; i <= n; i++)
		check(seen[i] == 1);
	i_free(seen);
	buf_free(&out);
}

static void check_sort(const struct imap_thread_msg *tmsgs, unsigned int n,
		       const uint8_t *crit_bytes, size_t crit_len)
{
	struct imap_sort_criterion crit[IMAP_SORT_CRITERIA_MAX];
	struct imap_sort_msg *msgs = i_new(struct imap_sort_msg, n + 1);
	struct imap_sort_msg *rev = i_new(struct imap_sort_msg, n + 1);
	unsigned int nc = 0, i;

	for (i = 0; i < crit_len && nc < 3; i++) {
		crit[nc].key = (enum imap_sort_key)(crit_bytes[i] % 9);
		crit[nc].reverse = (crit_bytes[i] & 0x10) != 0;
		nc++;
	}
	if (nc == 0) {
		crit[0].key = IMAP_SORT_DATE;
		crit[0].reverse = false;
		nc = 1;
	}
	for (i = 0; i < n; i++) {
		msgs[i] = (struct imap_sort_msg){
			.seq = tmsgs[i].seq,
			.uid = tmsgs[i].uid,
			.date = tmsgs[i].date,
			.arrival = tmsgs[i].date / 3,
			.size = (uint64_t)tmsgs[i].date % 7,
			.subject = tmsgs[i].base_subject,
			.from = tmsgs[i].message_id,
			.to = tmsgs[i].base_subject,
			.cc = "",
			.display_from = tmsgs[i].message_id,
			.display_to = "x",
		};
	}
	/* Ties go by sequence number, so the order is total: the input
	   order must not matter. */
	for (i = 0; i < n; i++)
		rev[i] = msgs[n - 1 - i];
	imap_sort(msgs, n, crit, nc);
	imap_sort(rev, n, crit, nc);
	for (i = 0; i < n; i++)
		check(msgs[i].seq == rev[i].seq);
	/* Every message is still there. */
	{
		unsigned int *seen = i_new(unsigned int, n + 1);

		for (i = 0; i < n; i++)
			seen[msgs[i].seq]++;
		for (i = 1; i <= n; i++)
			check(seen[i] == 1);
		i_free(seen);
	}
	i_free(msgs);
	i_free(rev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pool_t pool = pool_create("fuzz-imap-thread", 16 * 1024);
	struct imap_thread_msg *msgs =
		p_new(pool, struct imap_thread_msg, FUZZ_MAX_MSGS);
	unsigned int n = 0;
	size_t pos = 0;

	while (pos + 4 <= size && n < FUZZ_MAX_MSGS) {
		const uint8_t *m = data + pos;
		unsigned int nrefs = m[3] & 7;
		const char **refs = p_new(pool, const char *, nrefs + 1);

		pos += 4;
		for (unsigned int j = 0; j < nrefs && pos < size; j++)
			refs[j] = ids[data[pos++] & 15];
		msgs[n] = (struct imap_thread_msg){
			.seq = n + 1,
			.uid = n + 1,
			.date = m[1] % 8,
			.base_subject = subjects[m[2] & 3],
			.subject_is_reply = (m[2] & 4) != 0,
			.message_id = (m[0] & 0x10) != 0 ? "" : ids[m[0] & 15],
			.references = refs,
		};
		n++;
	}
	check_thread(msgs, n, IMAP_THREAD_REFERENCES, pool);
	check_thread(msgs, n, IMAP_THREAD_ORDEREDSUBJECT, pool);
	check_sort(msgs, n, data + pos, size - pos);
	pool_unref(&pool);
	return 0;
}
