/* fuzz-imap-parser.c - libFuzzer target for imap-parser.c (and the
   sequence sets and writer it feeds). The first input byte picks the
   parser flags, the second a chunk size; the rest is client input, parsed
   with small limits so that every limit is reached. It checks the
   parser's promises and aborts otherwise: feeding whole and in chunks
   gives the same events; consumed never exceeds the input, and 0 means
   all of it; errors carry a message and a status; commands respect the
   limits (size, literal size, argument count, depth); every command's
   arguments, written back with imap_write_args(), parse again to the same
   text, and every string written alone as an astring, a string or
   literal8 reads back as the same bytes; every atom that is a sequence set
   resolves to ascending, disjoint ranges that clamp below a maximum and
   whose count agrees with the iterator.
   Continuations for odd-sized literals are refused, and AUTHENTICATE is
   followed by a raw line, to reach those paths. Replayed over
   tests/fuzz-corpus/fuzz-imap-parser/ by tests/fuzz-replay.c in every
   build. */

#include "lib.h"
#include "buf.h"
#include "imap-parser.h"
#include "imap-seqset.h"
#include "imap-write.h"
#include "pool.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct imap_parser_limits fuzz_limits = {
	.max_line = 256,
	.max_literal = 512,
	.max_command = 2048,
	.max_args = 32,
	.max_depth = 5,
	.max_skip = 1024,
};

static void check(bool ok)
{
	if (!ok)
		abort();
}

static void check_seqset(const char *str, size_t len)
{
	pool_t pool = pool_create("fuzz seqset", 1024);
	struct imap_seqset set;
	struct imap_seq_range *ranges;
	struct imap_seqset_iter iter;
	unsigned int count;
	const char *error = NULL;
	uint64_t n = 0;
	uint32_t num;

	if (imap_seqset_parse(pool, str, true, &set, &error) < 0) {
		check(error != NULL);
		pool_unref(&pool);
		return;
	}
	if (set.searchres ||
	    imap_seqset_resolve(&set, 100, pool, &ranges, &count) < 0) {
		pool_unref(&pool);
		return;
	}
	check(set.count > 0 && set.count <= len / 2 + 1);
	check(count > 0 && count <= set.count);
	for (unsigned int i = 0; i < count; i++) {
		check(ranges[i].first > 0 && ranges[i].first <= ranges[i].last);
		check(i == 0 || ranges[i].first > ranges[i - 1].last + 1ull);
	}
	(void)imap_seqset_clamp(ranges, &count, 1000);
	check(count == 0 || ranges[count - 1].last <= 1000);
	imap_seqset_iter_init(&iter, ranges, count);
	while (imap_seqset_iter_next(&iter, &num)) {
		check(imap_seqset_contains(ranges, count, num));
		n++;
	}
	check(n == imap_seqset_count(ranges, count));
	pool_unref(&pool);
}

static void check_string_form(struct span s, bool literal8, bool astring)
{
	unsigned int flags = IMAP_PARSER_FLAG_BINARY | IMAP_PARSER_FLAG_UTF8;
	struct buf out = BUF_INIT;
	struct imap_parser *parser;
	struct imap_parser_result res;
	struct span in;
	size_t consumed;
	const char *str;

	buf_append_str(&out, "t X ");
	if (literal8)
		imap_write_literal8(&out, s);
	else if (astring)
		imap_write_astring(&out, s, IMAP_WRITE_FLAG_UTF8);
	else
		imap_write_string(&out, s, IMAP_WRITE_FLAG_UTF8);
	buf_append_str(&out, "\r\n");
	parser = imap_parser_create(&imap_parser_limits_auth, flags);
	in = buf_span(&out);
	do {
		check(imap_parser_parse(parser, in, &consumed, &res) == 1);
		in = span_skip(in, consumed);
	} while (res.event == IMAP_PARSER_EVENT_CONTINUE);
	check(in.len == 0 && res.cmd.arg_count == 1);
	check(res.cmd.args[0].len == s.len &&
	      memcmp(res.cmd.args[0].str, s.p, s.len) == 0);
	check(literal8 ? res.cmd.args[0].literal8
		       : (astring ? imap_arg_get_astring(&res.cmd.args[0], &str)
				  : imap_arg_get_string(&res.cmd.args[0],
							&str)));
	imap_parser_destroy(&parser);
	buf_free(&out);
}

static void check_args(const struct imap_arg *args, unsigned int count,
		       unsigned int depth, unsigned int *total)
{
	check(depth <= fuzz_limits.max_depth);
	for (unsigned int i = 0; i < count; i++) {
		const struct imap_arg *arg = &args[i];

		(*total)++;
		check(arg->str != NULL && arg->str[arg->len] == '\0');
		if (arg->type == IMAP_ARG_LIST) {
			check_args(arg->list, arg->list_count, depth + 1,
				   total);
		} else if (arg->type == IMAP_ARG_LITERAL) {
			struct span s = span_make(arg->str, arg->len);

			check(arg->len <= fuzz_limits.max_literal);
			check(arg->literal8 ||
			      memchr(arg->str, '\0', arg->len) == NULL);
			check_string_form(s, arg->literal8, false);
			if (!arg->literal8)
				check_string_form(s, false, true);
		} else {
			check(arg->type == IMAP_ARG_ATOM ||
			      arg->type == IMAP_ARG_NIL ||
			      arg->type == IMAP_ARG_QUOTED);
			check(strlen(arg->str) == arg->len);
			check_string_form(span_make(arg->str, arg->len), false,
					  true);
			check_string_form(span_make(arg->str, arg->len), false,
					  false);
			if (arg->type != IMAP_ARG_QUOTED) {
				check(imap_write_atom_valid(
					      span_make(arg->str, arg->len)) ||
				      arg->str[0] == '\\' ||
				      strpbrk(arg->str, "%*][") != NULL);
				check_seqset(arg->str, arg->len);
			}
		}
	}
}

/* Writes args back, parses the text again and writes that: the same. */
static void check_roundtrip(const struct imap_command *cmd, unsigned int flags)
{
	struct imap_parser_limits limits = imap_parser_limits_auth;
	struct imap_parser *parser;
	struct buf out = BUF_INIT, again = BUF_INIT;
	struct imap_parser_result res;
	struct span in;
	size_t consumed;
	unsigned int wflags =
		(flags & IMAP_PARSER_FLAG_UTF8) != 0 ? IMAP_WRITE_FLAG_UTF8 : 0;

	buf_printf(&out, "%s %s", cmd->tag, cmd->name);
	if (cmd->arg_count > 0)
		buf_append_c(&out, ' ');
	imap_write_args(&out, cmd->args, cmd->arg_count, wflags);
	buf_append_str(&out, "\r\n");
	limits.max_line = 1024 * 1024;
	parser = imap_parser_create(&limits, flags);
	in = buf_span(&out);
	for (;;) {
		int ret = imap_parser_parse(parser, in, &consumed, &res);

		check(ret == 1);
		in = span_skip(in, consumed);
		if (res.event == IMAP_PARSER_EVENT_COMMAND)
			break;
		check(res.event == IMAP_PARSER_EVENT_CONTINUE);
	}
	check(in.len == 0);
	check(strcmp(res.cmd.tag, cmd->tag) == 0 &&
	      strcmp(res.cmd.name, cmd->name) == 0);
	buf_printf(&again, "%s %s", res.cmd.tag, res.cmd.name);
	if (res.cmd.arg_count > 0)
		buf_append_c(&again, ' ');
	imap_write_args(&again, res.cmd.args, res.cmd.arg_count, wflags);
	buf_append_str(&again, "\r\n");
	check(again.used == out.used &&
	      memcmp(again.data, out.data, out.used) == 0);
	buf_free(&out);
	buf_free(&again);
	imap_parser_destroy(&parser);
}

static void transcript_add(struct buf *t, int ret,
			   const struct imap_parser_result *res)
{
	if (ret < 0) {
		buf_printf(t, "E%s %s %d %s|",
			   res->error.tag ? res->error.tag : "*",
			   res->error.status, res->error.fatal, res->error.msg);
		return;
	}
	if (res->event == IMAP_PARSER_EVENT_COMMAND) {
		buf_printf(t, "C%s %s %u %zu ", res->cmd.tag, res->cmd.name,
			   res->cmd.arg_count, res->cmd.size);
		imap_write_args(t, res->cmd.args, res->cmd.arg_count, 0);
		buf_append_c(t, '|');
	} else if (res->event == IMAP_PARSER_EVENT_CONTINUE) {
		buf_printf(t, "+%llu|", (unsigned long long)res->literal_size);
	} else {
		buf_append_c(t, 'L');
		buf_append_span(t, res->line);
		buf_append_c(t, '|');
	}
}

static void run(const uint8_t *data, size_t size, unsigned int flags,
		size_t chunk, struct buf *transcript)
{
	struct imap_parser *parser = imap_parser_create(&fuzz_limits, flags);
	size_t pos = 0;
	bool fatal = false;

	while (pos < size && !fatal) {
		size_t n =
			chunk == 0 || size - pos < chunk ? size - pos : chunk;
		struct span in = span_make(data + pos, n);

		while (!fatal) {
			struct imap_parser_result res;
			size_t consumed;
			int ret =
				imap_parser_parse(parser, in, &consumed, &res);

			check(consumed <= in.len);
			in = span_skip(in, consumed);
			pos += consumed;
			if (ret == 0) {
				check(in.len == 0);
				break;
			}
			/* Right after an event no command end is awaited. */
			check(ret <= 0 ||
			      !imap_parser_awaits_command_end(parser));
			transcript_add(transcript, ret, &res);
			if (ret < 0) {
				check(res.error.msg != NULL &&
				      res.error.status != NULL);
				fatal = res.error.fatal;
				continue;
			}
			if (res.event == IMAP_PARSER_EVENT_CONTINUE) {
				check(res.literal_size <=
				      fuzz_limits.max_literal);
				if (res.literal_size % 2 == 1)
					imap_parser_refuse_literal(parser);
			} else if (res.event == IMAP_PARSER_EVENT_COMMAND) {
				unsigned int total = 0;

				check(res.cmd.size <= fuzz_limits.max_command);
				check_args(res.cmd.args, res.cmd.arg_count, 0,
					   &total);
				check(total <= fuzz_limits.max_args);
				if (chunk == 0)
					check_roundtrip(&res.cmd, flags);
				if (strcmp(res.cmd.name, "AUTHENTICATE") == 0)
					imap_parser_expect_line(parser);
			} else {
				check(res.line.len < fuzz_limits.max_line);
			}
		}
	}
	imap_parser_destroy(&parser);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf whole = BUF_INIT, chunked = BUF_INIT;
	unsigned int flags;
	size_t chunk;

	if (size < 2 || size > 65536)
		return 0;
	flags = data[0] & (IMAP_PARSER_FLAG_LITERAL_PLUS |
			   IMAP_PARSER_FLAG_LITERAL_MINUS |
			   IMAP_PARSER_FLAG_BINARY | IMAP_PARSER_FLAG_UTF8);
	chunk = data[1] % 16 + 1;
	buf_append_str(&whole, "");
	buf_append_str(&chunked, "");
	run(data + 2, size - 2, flags, 0, &whole);
	run(data + 2, size - 2, flags, chunk, &chunked);
	check(whole.used == chunked.used &&
	      memcmp(whole.data, chunked.data, whole.used) == 0);
	buf_free(&whole);
	buf_free(&chunked);
	return 0;
}
