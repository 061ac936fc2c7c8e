/* imap-match.c - LIST pattern matching (RFC 9051 6.3.9). See
   imap-match.h. */

#include "imap-match.h"

#include "pool.h"

#include <strings.h>

struct imap_match {
	char *pattern; /* wildcard runs collapsed */
	size_t len;
	size_t literals; /* octets that are not wildcards */
	char sep;
	/* Two rows of len + 1 pattern positions: which are reachable. */
	uint8_t *cur, *next;
	uint64_t steps;
};

struct imap_match *imap_match_init(struct pool *pool, const char *pattern,
				   char sep)
{
	struct imap_match *match = p_new(pool, struct imap_match, 1);
	size_t i, n = strlen(pattern), out = 0;

	match->pattern = p_malloc(pool, n + 1);
	match->sep = sep;
	for (i = 0; i < n; i++) {
		char c = pattern[i];

		if (c == '*' || c == '%') {
			/* "*%", "%*" and "**" all mean "*"; "%%" is "%". */
			if (out > 0 && (match->pattern[out - 1] == '*' ||
					match->pattern[out - 1] == '%')) {
				if (c == '*')
					match->pattern[out - 1] = '*';
				continue;
			}
		} else {
			match->literals++;
		}
		match->pattern[out++] = c;
	}
	match->pattern[out] = '\0';
	match->len = out;
	match->cur = p_new(pool, uint8_t, out + 1);
	match->next = p_new(pool, uint8_t, out + 1);
	return match;
}

/* A wildcard lets the automaton skip it without consuming anything. */
static void imap_match_close(const struct imap_match *match, uint8_t *row)
{
	size_t i;

	for (i = 0; i < match->len; i++) {
		if (row[i] &&
		    (match->pattern[i] == '*' || match->pattern[i] == '%'))
			row[i + 1] = 1;
	}
}

bool imap_match(struct imap_match *match, const char *name)
{
	size_t name_len = strlen(name), i, j, inbox_len = 0;
	uint8_t *tmp;
	bool any;

	if (match->literals > name_len)
		return false;
	/* RFC 9051 5.1: the first level "INBOX" in any case. The store
	   spells it "INBOX", so only the pattern's case is free. */
	if (strncmp(name, "INBOX", 5) == 0 &&
	    (name[5] == '\0' || name[5] == match->sep))
		inbox_len = 5;

	memset(match->cur, 0, match->len + 1);
	match->cur[0] = 1;
	imap_match_close(match, match->cur);
	for (j = 0; j < name_len; j++) {
		char c = name[j];

		memset(match->next, 0, match->len + 1);
		match->steps += match->len + 1;
		any = false;
		for (i = 0; i < match->len; i++) {
			char p = match->pattern[i];

			if (!match->cur[i])
				continue;
			if (p == '*' || (p == '%' && c != match->sep)) {
				match->next[i] = 1;
				any = true;
			} else if (p == c || (j < inbox_len && p != '%' &&
					      strncasecmp(&p, &c, 1) == 0)) {
				match->next[i + 1] = 1;
				any = true;
			}
		}
		if (!any)
			return false;
		imap_match_close(match, match->next);
		tmp = match->cur;
		match->cur = match->next;
		match->next = tmp;
	}
	return match->cur[match->len] != 0;
}

uint64_t imap_match_steps(const struct imap_match *match)
{
	return match->steps;
}
