/* fuzz-imap-search.c - libFuzzer target for imap-search.c. The input is
   the text after "t SEARCH " of one command (literals as {N+}); it is
   parsed by the real command parser, then as a search program. It checks
   the parser's promises and aborts otherwise: a result is OK, BAD or
   BADCHARSET; BAD and BADCHARSET carry a message; an OK program has an
   AND root with at least one child, no more than IMAP_SEARCH_MAX_KEYS
   keys, depth within IMAP_SEARCH_MAX_DEPTH (plus the normalisations'
   one level), OR nodes with two children and NOT nodes with one, strings
   that are NUL-terminated, dates that print back to what they parsed
   from, and the need_* summary agrees with the keys. Replayed over
   tests/fuzz-corpus/fuzz-imap-search/ by tests/fuzz-replay.c in every
   build. */

#include "lib.h"
#include "buf.h"
#include "imap-parser.h"
#include "imap-search.h"
#include "pool.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct summary {
	bool rows, text, headers, sent, modseq, searchres;
	unsigned int keys;
};

static void check(bool ok)
{
	if (!ok)
		abort();
}

static void check_key(const struct imap_search_key *key, unsigned int depth,
		      struct summary *sum)
{
	const struct imap_search_key *child;
	unsigned int children = 0;

	check(depth <= IMAP_SEARCH_MAX_DEPTH + 2);
	sum->keys++;
	for (child = key->child; child != NULL; child = child->next) {
		check_key(child, depth + 1, sum);
		children++;
	}
	switch (key->type) {
	case IMAP_SEARCH_AND:
		check(children >= 1);
		break;
	case IMAP_SEARCH_OR:
		check(children == 2);
		break;
	case IMAP_SEARCH_NOT:
		check(children == 1);
		break;
	case IMAP_SEARCH_SEQSET:
	case IMAP_SEARCH_UIDSET:
		check(children == 0);
		check(key->seqset.searchres || key->seqset.count > 0);
		if (key->seqset.searchres)
			sum->searchres = true;
		break;
	case IMAP_SEARCH_TEXT:
		check(key->str != NULL);
		check(key->text_field <= IMAP_SEARCH_TEXT_SUBJECT);
		sum->text = true;
		break;
	case IMAP_SEARCH_HEADER:
		check(key->str != NULL && key->header != NULL &&
		      key->header[0] != '\0');
		sum->headers = sum->rows = true;
		break;
	case IMAP_SEARCH_DATE:
		check(key->day >= -719528 && key->day <= 2932896);
		if (key->date_field == IMAP_SEARCH_DATE_SENT)
			sum->sent = true;
		sum->rows = true;
		break;
	case IMAP_SEARCH_MODSEQ:
		check(key->number <= INT64_MAX);
		sum->modseq = sum->rows = true;
		break;
	case IMAP_SEARCH_EMAILID:
	case IMAP_SEARCH_THREADID:
		check(key->str != NULL && strlen(key->str) > 0 &&
		      strlen(key->str) <= IMAP_SEARCH_OBJECTID_MAX);
		sum->rows = true;
		break;
	case IMAP_SEARCH_FLAG:
	case IMAP_SEARCH_KEYWORD:
	case IMAP_SEARCH_LARGER:
	case IMAP_SEARCH_SMALLER:
	case IMAP_SEARCH_OLDER:
	case IMAP_SEARCH_YOUNGER:
		sum->rows = true;
		/* fall through */
	case IMAP_SEARCH_ALL:
	case IMAP_SEARCH_RECENT:
		check(children == 0);
		break;
	default:
		check(false);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parser *parser;
	struct imap_parser_result res;
	struct buf in = BUF_INIT;
	size_t consumed;
	int ret;

	if (size > 65536)
		return 0;
	buf_append_str(&in, "t SEARCH ");
	buf_append(&in, data, size);
	buf_append_str(&in, "\r\n");
	parser = imap_parser_create(&imap_parser_limits_auth,
				    IMAP_PARSER_FLAG_LITERAL_PLUS |
					    IMAP_PARSER_FLAG_UTF8);
	ret = imap_parser_parse(parser, buf_span(&in), &consumed, &res);
	if (ret == 1 && res.event == IMAP_PARSER_EVENT_COMMAND) {
		pool_t pool = pool_create("fuzz search", 1024);
		struct imap_search_program prog;
		struct summary sum = { 0 };
		struct buf dump = BUF_INIT;
		const char *error = NULL;
		enum imap_search_result r;

		r = imap_search_parse(pool, res.cmd.args, res.cmd.arg_count,
				      &prog, &error);
		if (r == IMAP_SEARCH_OK) {
			check(prog.root != NULL &&
			      prog.root->type == IMAP_SEARCH_AND);
			check_key(prog.root, 0, &sum);
			check(sum.keys == prog.key_count);
			/* NEW and OLD add a node or two beyond the cap. */
			check(prog.key_count <= IMAP_SEARCH_MAX_KEYS * 4);
			check(sum.rows == prog.need_rows &&
			      sum.text == prog.need_text &&
			      sum.headers == prog.need_headers &&
			      sum.sent == prog.need_sent &&
			      sum.modseq == prog.modseq &&
			      sum.searchres == prog.uses_searchres);
			check(!prog.esearch || prog.returns != 0);
			imap_search_dump(&dump, prog.root);
			check(dump.used > 0);
		} else {
			check(r == IMAP_SEARCH_BAD ||
			      r == IMAP_SEARCH_BADCHARSET);
			check(error != NULL && error[0] != '\0');
		}
		buf_free(&dump);
		pool_unref(&pool);
	}
	imap_parser_destroy(&parser);
	buf_free(&in);
	return 0;
}
