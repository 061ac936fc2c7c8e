/* fuzz-imap-match.c - libFuzzer target for imap-match.c and imap-date.c.
   The input is a pattern and names separated by NUL bytes. Every name is
   matched with imap_match() and with an independent oracle here (a
   memoised recursion over pattern and name positions, the textbook
   definition of "*" and "%" plus RFC 9051 5.1's case-insensitive INBOX),
   and the two must agree; the automaton's steps must stay within pattern
   length times name length. Every part is also parsed as a date-time,
   which must not crash and, when accepted, give a time after 1900.
   Replayed over tests/fuzz-corpus/fuzz-imap-match/ by tests/fuzz-replay.c
   in every build. */

#include "lib.h"
#include "imap-date.h"
#include "imap-match.h"
#include "pool.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX 64 /* octets of a pattern or name the oracle takes */

struct oracle {
	const char *p, *n;
	size_t plen, nlen, inbox_len;
	/* 0 unknown, 1 no, 2 yes; [pattern pos][name pos] */
	uint8_t memo[FUZZ_MAX + 1][FUZZ_MAX + 1];
};

static void check(bool ok)
{
	if (!ok)
		abort();
}

static bool oracle_eq(const struct oracle *o, size_t pi, size_t ni)
{
	char a = o->p[pi], b = o->n[ni];

	if (a == b)
		return true;
	if (ni >= o->inbox_len)
		return false;
	if (a >= 'a' && a <= 'z')
		a = (char)(a - 'a' + 'A');
	return a == b;
}

static bool oracle_match(struct oracle *o, size_t pi, size_t ni)
{
	bool ret = false;
	size_t k;

	if (o->memo[pi][ni] != 0)
		return o->memo[pi][ni] == 2;
	if (pi == o->plen) {
		ret = ni == o->nlen;
	} else if (o->p[pi] == '*') {
		for (k = ni; k <= o->nlen && !ret; k++)
			ret = oracle_match(o, pi + 1, k);
	} else if (o->p[pi] == '%') {
		for (k = ni; k <= o->nlen && !ret; k++) {
			ret = oracle_match(o, pi + 1, k);
			if (k == o->nlen || o->n[k] == '/')
				break;
		}
	} else if (ni < o->nlen && oracle_eq(o, pi, ni)) {
		ret = oracle_match(o, pi + 1, ni + 1);
	}
	o->memo[pi][ni] = ret ? 2 : 1;
	return ret;
}

static void fuzz_name(struct pool *pool, const char *pattern, const char *name)
{
	struct imap_match *m = imap_match_init(pool, pattern, '/');
	static struct oracle o;
	size_t plen = strlen(pattern), nlen = strlen(name);
	bool got;

	got = imap_match(m, name);
	/* One name costs at most (pattern + 1) x name steps. */
	check(imap_match_steps(m) <= (uint64_t)(plen + 1) * nlen);
	if (plen > FUZZ_MAX || nlen > FUZZ_MAX)
		return;
	memset(&o, 0, sizeof(o));
	o.p = pattern;
	o.n = name;
	o.plen = plen;
	o.nlen = nlen;
	/* Only the pattern's case is free: the store spells "INBOX". */
	if (strncmp(name, "INBOX", 5) == 0 &&
	    (name[5] == '\0' || name[5] == '/'))
		o.inbox_len = 5;
	check(got == oracle_match(&o, 0, 0));
	/* Compiled patterns are reusable. */
	check(imap_match(m, name) == got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pool_t pool;
	char *buf, *pattern, *p, *end;
	int64_t t;

	if (size > 4096)
		return 0;
	pool = pool_create("fuzz-imap-match", 1024);
	buf = p_malloc(pool, size + 1);
	memcpy(buf, data, size);
	buf[size] = '\0';
	end = buf + size;
	pattern = buf;
	for (p = buf; p <= end; p += strlen(p) + 1) {
		if (imap_date_parse_datetime(p, &t) == 0)
			check(t >= -2208988800LL); /* 1900-01-01 */
		if (p != pattern)
			fuzz_name(pool, pattern, p);
	}
	pool_unref(&pool);
	return 0;
}
