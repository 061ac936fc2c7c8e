/* test-imap-parser.c - unit tests for the IMAP command parser: a table of
   commands (atoms, NIL, quoted strings and escapes, every literal form,
   lists, BODY[...] sections, UTF-8) and of malformed input, each fed
   whole, byte by byte and in odd chunk sizes, which must all give the
   same transcript of events; continuation requests and refusing them;
   resynchronisation after errors, skipping non-synchronising literals
   honestly; limits (line, literal, command, arguments, depth) and the
   malicious inputs of issue 6: a 1 MiB line without CRLF, {4294967295}
   and deep nesting, with memory staying bounded; raw lines; accessors. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "imap-parser.h"

#include <stdio.h>

#define F_PLUS IMAP_PARSER_FLAG_LITERAL_PLUS
#define F_MINUS IMAP_PARSER_FLAG_LITERAL_MINUS
#define F_BIN IMAP_PARSER_FLAG_BINARY
#define F_UTF8 IMAP_PARSER_FLAG_UTF8

/* Debug form of arguments: atoms bare, quoted in "", literals as
   {N}data or ~{N}data, lists in (). */
static void dump_args(struct buf *out, const struct imap_arg *args,
		      unsigned int count)
{
	for (unsigned int i = 0; i < count; i++) {
		const struct imap_arg *a = &args[i];

		buf_append_c(out, ' ');
		switch (a->type) {
		case IMAP_ARG_ATOM:
			buf_append(out, a->str, a->len);
			break;
		case IMAP_ARG_NIL:
			buf_printf(out, "NIL<%s>", a->str);
			break;
		case IMAP_ARG_QUOTED:
			buf_append_c(out, '"');
			buf_append(out, a->str, a->len);
			buf_append_c(out, '"');
			break;
		case IMAP_ARG_LITERAL:
			buf_printf(out, "%s{%zu%s}", a->literal8 ? "~" : "",
				   a->len, a->nonsync ? "+" : "");
			for (size_t j = 0; j < a->len; j++) {
				uint8_t c = (uint8_t)a->str[j];

				if (c < 0x20 || c >= 0x7f)
					buf_printf(out, "\\x%02x", c);
				else
					buf_append_c(out, c);
			}
			break;
		case IMAP_ARG_LIST:
			buf_append_c(out, '(');
			dump_args(out, a->list, a->list_count);
			buf_append_str(out, " )");
			break;
		}
		assert_int_equal(a->str[a->len], '\0');
	}
}

static void dump_result(struct buf *out, int ret,
			const struct imap_parser_result *res)
{
	if (ret < 0) {
		buf_printf(out, "ERR %s %s%s%s%s: %s%s\n",
			   res->error.tag == NULL ? "*" : res->error.tag,
			   res->error.status, res->error.code ? " [" : "",
			   res->error.code ? res->error.code : "",
			   res->error.code ? "]" : "",
			   res->error.fatal ? "FATAL: " : "", res->error.msg);
		return;
	}
	switch (res->event) {
	case IMAP_PARSER_EVENT_COMMAND:
		buf_printf(out, "CMD %s %s", res->cmd.tag, res->cmd.name);
		dump_args(out, res->cmd.args, res->cmd.arg_count);
		buf_append_c(out, '\n');
		break;
	case IMAP_PARSER_EVENT_CONTINUE:
		buf_printf(out, "CONT %s %s %s%llu\n", res->tag, res->name,
			   res->literal8 ? "~" : "",
			   (unsigned long long)res->literal_size);
		break;
	case IMAP_PARSER_EVENT_LINE:
		buf_append_str(out, "LINE ");
		buf_append_span(out, res->line);
		buf_append_c(out, '\n');
		break;
	}
}

/* Feeds input in chunks of chunk bytes (0 = whole), answering every
   continuation, and returns the transcript (heap). Stops after a fatal
   error. */
static char *run(const struct imap_parser_limits *limits, unsigned int flags,
		 const char *input, size_t len, size_t chunk)
{
	struct imap_parser *parser = imap_parser_create(limits, flags);
	struct buf out = BUF_INIT;
	size_t pos = 0;
	bool fatal = false;
	char *ret;

	buf_append_str(&out, "");
	while (pos < len && !fatal) {
		size_t n = chunk == 0 || len - pos < chunk ? len - pos : chunk;
		struct span in = span_make(input + pos, n);

		while (!fatal) {
			struct imap_parser_result res;
			size_t consumed;
			int r = imap_parser_parse(parser, in, &consumed, &res);

			assert_true(consumed <= in.len);
			in = span_skip(in, consumed);
			pos += consumed;
			if (r == 0) {
				assert_int_equal(in.len, 0);
				break;
			}
			dump_result(&out, r, &res);
			if (r < 0 && res.error.fatal)
				fatal = true;
		}
	}
	imap_parser_destroy(&parser);
	assert_null(parser);
	ret = i_strdup(buf_cstr(&out));
	buf_free(&out);
	return ret;
}

static const struct {
	const char *input;
	unsigned int flags;
	const char *expected;
} cases[] = {
	/* Basics. */
	{ "a1 NOOP\r\n", 0, "CMD a1 NOOP\n" },
	{ "a1 noop\r\n", 0, "CMD a1 NOOP\n" },
	{ "a1 NOOP\n", 0, "CMD a1 NOOP\n" },
	{ "\r\n\na1 NOOP\r\n", 0, "CMD a1 NOOP\n" },
	{ "a1 LOGIN fred secret\r\n", 0, "CMD a1 LOGIN fred secret\n" },
	{ "a1 LOGIN  fred secret \r\n", 0, "CMD a1 LOGIN fred secret\n" },
	{ "A]1 NOOP\r\n", 0, "CMD A]1 NOOP\n" },
	{ "a1 SELECT NIL\r\n", 0, "CMD a1 SELECT NIL<NIL>\n" },
	{ "a1 SELECT nil\r\n", 0, "CMD a1 SELECT NIL<nil>\n" },
	{ "a1 SELECT NILS\r\n", 0, "CMD a1 SELECT NILS\n" },
	{ "a1 STORE 1:*,$ +FLAGS.SILENT (\\Seen $Label1 \\Deleted)\r\n", 0,
	  "CMD a1 STORE 1:*,$ +FLAGS.SILENT ( \\Seen $Label1 \\Deleted )\n" },
	{ "a1 LIST \"\" %/*\r\n", 0, "CMD a1 LIST \"\" %/*\n" },
	{ "a1 X ~abc\r\n", 0, "CMD a1 X ~abc\n" },
	/* Quoted strings (RFC 9051 9 quoted). */
	{ "a1 LOGIN \"fr\\\"ed\" \"a\\\\b\"\r\n", 0,
	  "CMD a1 LOGIN \"fr\"ed\" \"a\\b\"\n" },
	{ "a1 X \"\" \"(){ %*]\"\r\n", 0, "CMD a1 X \"\" \"(){ %*]\"\n" },
	{ "a1 X \"a\\b\"\r\n", 0,
	  "ERR a1 BAD: Invalid escape in quoted string\n" },
	{ "a1 X \"abc\r\na2 NOOP\r\n", 0,
	  "ERR a1 BAD: Missing '\"'\nCMD a2 NOOP\n" },
	{ "a1 X \"caf\xc3\xa9\"\r\n", 0,
	  "ERR a1 BAD: 8-bit octets in quoted string need UTF8=ACCEPT\n" },
	{ "a1 X \"caf\xc3\xa9\"\r\n", F_UTF8, "CMD a1 X \"caf\xc3\xa9\"\n" },
	{ "a1 X \"caf\xc3\"\r\n", F_UTF8,
	  "ERR a1 BAD: Invalid UTF-8 in quoted string\n" },
	{ "a1 X \"\xed\xa0\x80\"\r\n", F_UTF8,
	  "ERR a1 BAD: Invalid UTF-8 in quoted string\n" },
	{ "a1 X caf\xc3\xa9\r\n", F_UTF8,
	  "ERR a1 BAD: Invalid character in atom\n" },
	{ "a1 X \"a\"b\r\n", 0,
	  "ERR a1 BAD: Missing space between arguments\n" },
	/* Lists. */
	{ "a1 X () (a (b c) \"d\") ((()))\r\n", 0,
	  "CMD a1 X ( ) ( a ( b c ) \"d\" ) ( ( ( ) ) )\n" },
	{ "a1 X (a\r\n", 0, "ERR a1 BAD: Missing ')'\n" },
	{ "a1 X a)\r\n", 0, "ERR a1 BAD: Unexpected ')'\n" },
	{ "a1 X (a)b\r\n", 0, "ERR a1 BAD: Missing space between arguments\n" },
	/* FETCH sections stay one atom (RFC 9051 9 section). */
	{ "a1 FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (From \"To\")]<0.512> "
	  "BODY[])\r\n",
	  0,
	  "CMD a1 FETCH 1 ( FLAGS BODY.PEEK[HEADER.FIELDS (From \"To\")]<0.512> "
	  "BODY[] )\n" },
	{ "a1 FETCH 1 body[1.2.MIME]\r\n", 0,
	  "CMD a1 FETCH 1 body[1.2.MIME]\n" },
	{ "a1 FETCH 1 BODY[HEADER.FIELDS (From)\r\n", 0,
	  "ERR a1 BAD: Missing ']'\n" },
	{ "a1 X foo[a b]\r\n", 0, "CMD a1 X foo[a b]\n" },
	/* Synchronising literals (RFC 9051 4.3, 7.6). */
	{ "a1 LOGIN {4}\r\nfred {6}\r\nsecret\r\n", 0,
	  "CONT a1 LOGIN 4\nCONT a1 LOGIN 6\nCMD a1 LOGIN {4}fred "
	  "{6}secret\n" },
	{ "a1 X {0}\r\n\r\n", 0, "CONT a1 X 0\nCMD a1 X {0}\n" },
	{ "a1 X {3}\r\na\r\n\r\n", 0,
	  "CONT a1 X 3\nCMD a1 X {3}a\\x0d\\x0a\n" },
	{ "a1 X ({2}\r\nab {1}\r\nc)\r\n", 0,
	  "CONT a1 X 2\nCONT a1 X 1\nCMD a1 X ( {2}ab {1}c )\n" },
	{ "a1 X {3}\r\na\0b\r\n", 0,
	  "CONT a1 X 3\nERR a1 BAD: NUL in literal (use literal8)\n" },
	{ "a1 X {3}x\r\n", 0,
	  "ERR a1 BAD: Literal size not followed by CRLF\n" },
	{ "a1 X {}\r\n", 0, "ERR a1 BAD: Invalid literal size\n" },
	{ "a1 X {1a}\r\n", 0, "ERR a1 BAD: Invalid literal size\n" },
	{ "a1 X {3}\r\nabcd\r\n", 0,
	  "CONT a1 X 3\nERR a1 BAD: Missing space between arguments\n" },
	/* Non-synchronising literals (RFC 7888). */
	{ "a1 LOGIN {4+}\r\nfred {6+}\r\nsecret\r\na2 NOOP\r\n", F_PLUS,
	  "CMD a1 LOGIN {4+}fred {6+}secret\nCMD a2 NOOP\n" },
	{ "a1 X {0+}\r\n\r\n", F_MINUS, "CMD a1 X {0+}\n" },
	{ "a1 X {3+}\r\nabc\r\na2 NOOP\r\n", 0,
	  "ERR a1 BAD: Non-synchronizing literals are not supported\n"
	  "CMD a2 NOOP\n" },
	/* LITERAL-: {N+} above 4096 is refused, and skipped. */
	{ "a1 X {4097+}\r\n", F_MINUS,
	  "ERR a1 BAD [TOOBIG]: Non-synchronizing literal larger than 4096 "
	  "octets\n" },
	{ "a1 X {4096+}\r\n", F_MINUS, "" },
	/* literal8 (RFC 3516 4.1). */
	{ "a1 APPEND INBOX ~{3}\r\na\0b\r\n", F_BIN,
	  "CONT a1 APPEND ~3\nCMD a1 APPEND INBOX ~{3}a\\x00b\n" },
	{ "a1 APPEND INBOX ~{3+}\r\na\0b\r\n", F_BIN | F_PLUS,
	  "CMD a1 APPEND INBOX ~{3+}a\\x00b\n" },
	{ "a1 APPEND INBOX ~{3}\r\na2 NOOP\r\n", 0,
	  "ERR a1 BAD: literal8 needs BINARY\nCMD a2 NOOP\n" },
	{ "a1 X {3+x}\r\n", F_PLUS, "ERR a1 BAD: Invalid literal size\n" },
	{ "a1 X {1}\nb\n", 0, "CONT a1 X 1\nCMD a1 X {1}b\n" },
	{ "a1 X {1}\rb\n", 0, "ERR a1 BAD: CR without LF\n" },
	{ "a1 X \"a\0b\"\r\n", 0, "ERR a1 BAD: NUL in quoted string\n" },
	/* Errors and resynchronisation. */
	{ "* NOOP\r\na2 NOOP\r\n", 0, "ERR * BAD: Invalid tag\nCMD a2 NOOP\n" },
	{ "+1 NOOP\r\n", 0, "ERR * BAD: Invalid tag\n" },
	{ "a+1 NOOP\r\n", 0, "ERR * BAD: Invalid tag\n" },
	{ " a1 NOOP\r\n", 0, "ERR * BAD: Invalid tag\n" },
	{ "a1\r\n", 0, "ERR a1 BAD: Missing command name\n" },
	{ "a1 \r\n", 0, "ERR a1 BAD: Missing command name\n" },
	{ "a1 {3}\r\n", 0, "ERR a1 BAD: Missing command name\n" },
	{ "a1 NO\"OP\r\n", 0, "ERR a1 BAD: Invalid command name\n" },
	{ "a1 X a\rb\r\n", 0, "ERR a1 BAD: CR without LF\n" },
	{ "\rx\r\na2 NOOP\r\n", 0, "ERR * BAD: CR without LF\nCMD a2 NOOP\n" },
	{ "a1 X \x01\r\n", 0, "ERR a1 BAD: Invalid character\n" },
	{ "a1 X \xff\r\n", 0, "ERR a1 BAD: 8-bit octets outside a string\n" },
	{ "a1 X a\\b\r\n", 0, "ERR a1 BAD: Invalid character in atom\n" },
	{ "a1 X a{3}\r\n", 0, "ERR a1 BAD: Invalid character in atom\n" },
	/* The failing line announced {N+}: its data is skipped, and so
	   is the rest of the command. */
	{ "a1 X \x01 {5+}\r\nA2 NO {3+}\r\nxyz\r\na3 NOOP\r\n", F_PLUS,
	  "ERR a1 BAD: Invalid character\nCMD a3 NOOP\n" },
	/* ...but after {N} the client waits for a "+" that never comes. */
	{ "a1 X \x01 {5}\r\na2 NOOP\r\n", F_PLUS,
	  "ERR a1 BAD: Invalid character\nCMD a2 NOOP\n" },
	/* A CRLF inside skipped literal data is not a line end. */
	{ "a1 X ) {2+}\r\n\r\n\r\na2 NOOP\r\n", F_PLUS,
	  "ERR a1 BAD: Unexpected ')'\nCMD a2 NOOP\n" },
};

static void test_table(void **state)
{
	static const size_t chunks[] = { 0, 1, 2, 3, 7, 13 };

	for (unsigned int i = 0; i < N_ELEMENTS(cases); i++) {
		size_t len = strlen(cases[i].input);

		/* Inputs with a NUL: the table cannot say their length, so
		   the NUL cases end in the known tail. */
		if (strstr(cases[i].expected, "\\x00") != NULL ||
		    strstr(cases[i].expected, "NUL in") != NULL)
			len += strlen(cases[i].input + len + 1) + 1;
		for (unsigned int c = 0; c < N_ELEMENTS(chunks); c++) {
			char *got =
				run(&imap_parser_limits_auth, cases[i].flags,
				    cases[i].input, len, chunks[c]);

			if (strcmp(got, cases[i].expected) != 0) {
				print_error("case %u chunk %zu:\ninput: %s\n"
					    "expected: %s\ngot: %s\n",
					    i, chunks[c], cases[i].input,
					    cases[i].expected, got);
				fail();
			}
			i_free(got);
		}
	}
}

/* Drives a parser by hand for the tests below. */
static int parse_str(struct imap_parser *parser, struct span *in,
		     struct imap_parser_result *res)
{
	size_t consumed;
	int ret = imap_parser_parse(parser, *in, &consumed, res);

	*in = span_skip(*in, consumed);
	return ret;
}

static void test_refuse_literal(void **state)
{
	struct imap_parser *parser =
		imap_parser_create(&imap_parser_limits_auth, 0);
	struct imap_parser_result res;
	struct span in = SPAN_LIT("A044 BLURDYBLOOP {102856}\r\na2 NOOP\r\n");

	/* RFC 9051 7.6's example: the server refuses with BAD instead of
	   "+", and the client goes on with its next command. */
	assert_int_equal(parse_str(parser, &in, &res), 1);
	assert_int_equal(res.event, IMAP_PARSER_EVENT_CONTINUE);
	assert_string_equal(res.tag, "A044");
	assert_string_equal(res.name, "BLURDYBLOOP");
	assert_int_equal(res.literal_size, 102856);
	imap_parser_refuse_literal(parser);
	assert_int_equal(parse_str(parser, &in, &res), 1);
	assert_int_equal(res.event, IMAP_PARSER_EVENT_COMMAND);
	assert_string_equal(res.cmd.tag, "a2");
	assert_int_equal(parse_str(parser, &in, &res), 0);
	imap_parser_destroy(&parser);
	imap_parser_destroy(&parser); /* NULL is fine */
}

/* imap_parser_awaits_command_end(): true only between a literal's last
   byte and the command's CRLF (front-imap.c then ACKs at once). */
static void test_awaits_command_end(void **state)
{
	struct imap_parser *parser =
		imap_parser_create(&imap_parser_limits_auth, 0);
	struct imap_parser_result res;
	struct span in = SPAN_LIT("a1 APPEND INBOX {5}\r\n");

	assert_false(imap_parser_awaits_command_end(parser));
	assert_int_equal(parse_str(parser, &in, &res), 1);
	assert_int_equal(res.event, IMAP_PARSER_EVENT_CONTINUE);
	assert_false(imap_parser_awaits_command_end(parser));
	/* Part of the literal: more of it is awaited, not the end. */
	in = SPAN_LIT("hel");
	assert_int_equal(parse_str(parser, &in, &res), 0);
	assert_false(imap_parser_awaits_command_end(parser));
	in = SPAN_LIT("lo");
	assert_int_equal(parse_str(parser, &in, &res), 0);
	assert_true(imap_parser_awaits_command_end(parser));
	in = SPAN_LIT("\r\n");
	assert_int_equal(parse_str(parser, &in, &res), 1);
	assert_int_equal(res.event, IMAP_PARSER_EVENT_COMMAND);
	assert_false(imap_parser_awaits_command_end(parser));
	/* A command without a literal, in pieces: no ACK is due. */
	in = SPAN_LIT("a2 NO");
	assert_int_equal(parse_str(parser, &in, &res), 0);
	assert_false(imap_parser_awaits_command_end(parser));
	imap_parser_destroy(&parser);
}

static void test_huge_literal_preauth(void **state)
{
	struct imap_parser *parser =
		imap_parser_create(&imap_parser_limits_preauth, F_PLUS);
	struct imap_parser_result res;
	struct span in = SPAN_LIT("a1 LOGIN {4294967295}\r\n");

	/* Refused at "}", before the CRLF, without allocating. */
	assert_int_equal(parse_str(parser, &in, &res), -1);
	assert_string_equal((const char *)in.p, "\r\n");
	assert_string_equal(res.error.tag, "a1");
	assert_string_equal(res.error.code, "TOOBIG");
	assert_false(res.error.fatal);
	assert_string_equal(res.error.status, "BAD");
	assert_int_equal(parse_str(parser, &in, &res), 0);
	in = SPAN_LIT("a1 APPEND INBOX {4294967295}\r\n");
	assert_int_equal(parse_str(parser, &in, &res), -1);
	assert_string_equal(res.error.status, "NO");
	assert_string_equal(res.error.code, "TOOBIG");
	assert_false(res.error.fatal);
	assert_int_equal(parse_str(parser, &in, &res), 0);
	in = SPAN_LIT("a2 LOGIN {99999999999999999999999999}\r\n");
	assert_int_equal(parse_str(parser, &in, &res), -1);
	assert_false(res.error.fatal);
	assert_int_equal(parse_str(parser, &in, &res), 0);
	/* Non-synchronising: the client would send it; too much to skip. */
	in = SPAN_LIT("a3 LOGIN {4294967295+}\r\n");
	assert_int_equal(parse_str(parser, &in, &res), -1);
	assert_string_equal(res.error.tag, "a3");
	assert_true(res.error.fatal);
	/* Fatal errors stick. */
	in = SPAN_LIT("a4 NOOP\r\n");
	assert_int_equal(parse_str(parser, &in, &res), -1);
	assert_true(res.error.fatal);
	assert_int_equal(in.len, 9);
	imap_parser_destroy(&parser);

	/* A smaller {N+} over the literal limit is skipped honestly. */
	parser = imap_parser_create(&imap_parser_limits_preauth, F_PLUS);
	{
		char input[9000 + 64];
		int n = snprintf(input, sizeof(input), "a1 LOGIN {8193+}\r\n");

		memset(input + n, 'x', 8193);
		memcpy(input + n + 8193, "\r\na2 NOOP\r\n", 12);
		in = span_make(input, strlen(input));
		assert_int_equal(parse_str(parser, &in, &res), -1);
		assert_string_equal(res.error.code, "TOOBIG");
		assert_false(res.error.fatal);
		assert_int_equal(parse_str(parser, &in, &res), 1);
		assert_string_equal(res.cmd.tag, "a2");
	}
	imap_parser_destroy(&parser);
}

static void test_long_line(void **state)
{
	struct imap_parser *parser =
		imap_parser_create(&imap_parser_limits_preauth, 0);
	struct imap_parser_result res;
	size_t len = 1024 * 1024, fed = 0;
	char *line = i_malloc(len);
	int ret = 0;

	memcpy(line, "a1 LOGIN ", 9);
	memset(line + 9, 'a', len - 9);
	/* Fed in 4 KiB reads: refused once past the 8 KiB limit. */
	while (fed < len) {
		size_t n = len - fed < 4096 ? len - fed : 4096, consumed;

		ret = imap_parser_parse(parser, span_make(line + fed, n),
					&consumed, &res);
		fed += consumed;
		if (ret != 0)
			break;
	}
	assert_int_equal(ret, -1);
	assert_true(res.error.fatal);
	assert_string_equal(res.error.code, "LIMIT");
	assert_int_equal(fed, imap_parser_limits_preauth.max_line);
	/* Issue 6's pre-auth attack: what one such client costs. */
	assert_true(imap_parser_memory_used(parser) <= 16384);
	i_free(line);
	imap_parser_destroy(&parser);

	/* Exactly max_line, CRLF included, is fine. */
	parser = imap_parser_create(&imap_parser_limits_preauth, 0);
	line = i_malloc(8192);
	memcpy(line, "a1 X ", 5);
	memset(line + 5, 'b', 8192 - 7);
	memcpy(line + 8190, "\r\n", 2);
	{
		struct span in = span_make(line, 8192);

		assert_int_equal(parse_str(parser, &in, &res), 1);
		assert_int_equal(res.cmd.args[0].len, 8192 - 7);
	}
	i_free(line);
	imap_parser_destroy(&parser);
}

static void test_deep_nesting(void **state)
{
	struct imap_parser_limits limits = imap_parser_limits_auth;
	struct buf input = BUF_INIT;
	char *got;

	buf_append_str(&input, "a1 X ");
	for (unsigned int i = 0; i < 100000; i++)
		buf_append_c(&input, '(');
	buf_append_str(&input, "\r\na2 NOOP\r\n");
	/* The depth limit is a BAD; the line limit then closes. */
	got = run(&limits, 0, buf_cstr(&input), input.used, 0);
	assert_string_equal(got, "ERR a1 BAD [LIMIT]: Lists nested too deeply\n"
				 "ERR a1 BAD [LIMIT]: FATAL: Command line too "
				 "long\n");
	i_free(got);
	/* Within the line limit, it resynchronises. */
	limits.max_line = 200000;
	got = run(&limits, 0, buf_cstr(&input), input.used, 0);
	assert_string_equal(got, "ERR a1 BAD [LIMIT]: Lists nested too deeply\n"
				 "CMD a2 NOOP\n");
	i_free(got);
	/* 32 levels are fine. */
	buf_reset(&input);
	buf_append_str(&input, "a1 X ");
	for (unsigned int i = 0; i < 32; i++)
		buf_append_c(&input, '(');
	for (unsigned int i = 0; i < 32; i++)
		buf_append_c(&input, ')');
	buf_append_str(&input, "\r\n");
	got = run(&imap_parser_limits_auth, 0, buf_cstr(&input), input.used, 1);
	assert_true(strncmp(got, "CMD a1 X ( ( (", 14) == 0);
	i_free(got);
	buf_free(&input);
}

static void test_limits(void **state)
{
	struct imap_parser_limits limits = imap_parser_limits_auth;
	char *got;

	limits.max_args = 3;
	got = run(&limits, F_PLUS,
		  "a1 X a b c\r\na2 X a b c d\r\na3 X (a b)\r\na4 X (a b c)\r\n"
		  "a5 X a b {1+}\r\nc\r\na6 X a b c {1+}\r\nd\r\na7 NOOP\r\n",
		  strlen("a1 X a b c\r\na2 X a b c d\r\na3 X (a b)\r\na4 X (a "
			 "b c)\r\na5 X a b {1+}\r\nc\r\na6 X a b c {1+}\r\nd"
			 "\r\na7 NOOP\r\n"),
		  1);
	assert_string_equal(got, "CMD a1 X a b c\n"
				 "ERR a2 BAD [LIMIT]: Too many arguments\n"
				 "CMD a3 X ( a b )\n"
				 "ERR a4 BAD [LIMIT]: Too many arguments\n"
				 "CMD a5 X a b {1+}c\n"
				 "ERR a6 BAD [LIMIT]: Too many arguments\n"
				 "CMD a7 NOOP\n");
	i_free(got);

	got = run(&limits, 0, "a1 X a b c (d)\r\na2 X a b \"c\" ~d\r\n",
		  strlen("a1 X a b c (d)\r\na2 X a b \"c\" ~d\r\n"), 0);
	assert_string_equal(got, "ERR a1 BAD [LIMIT]: Too many arguments\n"
				 "ERR a2 BAD [LIMIT]: Too many arguments\n");
	i_free(got);
	limits.max_args = 2;
	got = run(&limits, 0, "a1 X a b \"c\"\r\n",
		  strlen("a1 X a b \"c\"\r\n"), 0);
	assert_string_equal(got, "ERR a1 BAD [LIMIT]: Too many arguments\n");
	i_free(got);
	/* A failing line's {N+} too large to skip closes. */
	got = run(&imap_parser_limits_preauth, F_PLUS, "a1 X ) {20000+}\r\n",
		  strlen("a1 X ) {20000+}\r\n"), 0);
	assert_string_equal(got, "ERR a1 BAD: Unexpected ')'\n"
				 "ERR a1 BAD [TOOBIG]: FATAL: Literal too "
				 "large to skip\n");
	i_free(got);

	/* Total command size: literals count. */
	limits = imap_parser_limits_auth;
	limits.max_command = 35;
	got = run(&limits, F_PLUS, "a1 X {10+}\r\n0123456789 {10+}\r\n",
		  strlen("a1 X {10+}\r\n0123456789 {10+}\r\n"), 0);
	assert_string_equal(got, "ERR a1 BAD [TOOBIG]: FATAL: Literal too "
				 "large\n");
	i_free(got);
	got = run(&limits, 0, "a1 X {10}\r\n0123456789 {100}\r\na2 NOOP\r\n",
		  strlen("a1 X {10}\r\n0123456789 {100}\r\na2 NOOP\r\n"), 0);
	assert_string_equal(got, "CONT a1 X 10\n"
				 "ERR a1 BAD [TOOBIG]: Literal too large\n"
				 "CMD a2 NOOP\n");
	i_free(got);
	limits.max_command = 20;
	got = run(&limits, 0, "a1 X aaaaaaaaaaaaaaaaaaaaa\r\n",
		  strlen("a1 X aaaaaaaaaaaaaaaaaaaaa\r\n"), 0);
	assert_string_equal(got, "ERR a1 BAD [LIMIT]: FATAL: Command too "
				 "large\n");
	i_free(got);
}

static void test_limits_change(void **state)
{
	struct imap_parser *parser =
		imap_parser_create(&imap_parser_limits_preauth, 0);
	struct imap_parser_result res;
	struct buf input = BUF_INIT;
	struct span in;

	assert_int_equal(imap_parser_get_flags(parser), 0);
	imap_parser_set_flags(parser, F_UTF8 | F_PLUS);
	assert_int_equal(imap_parser_get_flags(parser), F_UTF8 | F_PLUS);
	imap_parser_set_limits(parser, &imap_parser_limits_auth);
	buf_append_str(&input, "a1 X ");
	for (unsigned int i = 0; i < 20000; i++)
		buf_append_c(&input, 'a');
	buf_append_str(&input, " \"\xc3\xa9\"\r\n");
	in = buf_span(&input);
	assert_int_equal(parse_str(parser, &in, &res), 1);
	assert_int_equal(res.cmd.arg_count, 2);
	assert_int_equal(res.cmd.size, input.used);
	imap_parser_destroy(&parser);
	buf_free(&input);
}

static void test_raw_line(void **state)
{
	struct imap_parser *parser =
		imap_parser_create(&imap_parser_limits_preauth, 0);
	struct imap_parser_result res;
	struct span in = SPAN_LIT("a1 AUTHENTICATE PLAIN\r\nAGZy\r\nZWQ=\n"
				  "a2 NOOP\r\n");

	assert_int_equal(parse_str(parser, &in, &res), 1);
	assert_string_equal(res.cmd.name, "AUTHENTICATE");
	imap_parser_expect_line(parser);
	assert_int_equal(parse_str(parser, &in, &res), 1);
	assert_int_equal(res.event, IMAP_PARSER_EVENT_LINE);
	assert_true(span_eq(res.line, SPAN_LIT("AGZy")));
	imap_parser_expect_line(parser);
	assert_int_equal(parse_str(parser, &in, &res), 1);
	assert_true(span_eq(res.line, SPAN_LIT("ZWQ=")));
	assert_int_equal(parse_str(parser, &in, &res), 1);
	assert_int_equal(res.event, IMAP_PARSER_EVENT_COMMAND);
	assert_string_equal(res.cmd.tag, "a2");
	imap_parser_destroy(&parser);
}

static void test_wipe(void **state)
{
	struct imap_parser *parser =
		imap_parser_create(&imap_parser_limits_preauth, 0);
	struct imap_parser_result res;
	struct span in = SPAN_LIT("a1 LOGIN fred (\"secret\")\r\n"
				  "a2 AUTHENTICATE PLAIN\r\nAGZy\r\n");

	assert_int_equal(parse_str(parser, &in, &res), 1);
	assert_string_equal(res.cmd.args[1].list[0].str, "secret");
	imap_parser_wipe(parser);
	assert_memory_equal(res.cmd.args[0].str, "\0\0\0\0", 4);
	assert_memory_equal(res.cmd.args[1].list[0].str, "\0\0\0\0\0\0", 6);
	assert_int_equal(parse_str(parser, &in, &res), 1);
	imap_parser_expect_line(parser);
	assert_int_equal(parse_str(parser, &in, &res), 1);
	assert_true(span_eq(res.line, SPAN_LIT("AGZy")));
	imap_parser_wipe(parser);
	assert_memory_equal(res.line.p, "\0\0\0\0", 4);
	imap_parser_destroy(&parser);
}

static void test_accessors(void **state)
{
	struct imap_parser *parser =
		imap_parser_create(&imap_parser_limits_auth, F_BIN);
	struct imap_parser_result res;
	struct span in = SPAN_LIT("a1 X atom NIL \"q\" (l) ~{1}\r\n\0\r\n");
	const struct imap_arg *args, *list;
	unsigned int count;
	const char *s;

	in.len = strlen((const char *)in.p) + 3;
	assert_int_equal(parse_str(parser, &in, &res), 1);
	assert_int_equal(res.event, IMAP_PARSER_EVENT_CONTINUE);
	assert_int_equal(parse_str(parser, &in, &res), 1);
	args = res.cmd.args;
	assert_int_equal(res.cmd.arg_count, 5);
	assert_true(imap_arg_get_atom(&args[0], &s));
	assert_string_equal(s, "atom");
	assert_true(imap_arg_atom_equals(&args[0], "ATOM"));
	assert_false(imap_arg_atom_equals(&args[2], "q"));
	assert_false(imap_arg_get_string(&args[0], &s));
	assert_true(imap_arg_get_astring(&args[1], &s));
	assert_string_equal(s, "NIL");
	assert_true(imap_arg_get_nstring(&args[1], &s));
	assert_null(s);
	assert_false(imap_arg_get_nstring(&args[0], &s));
	assert_true(imap_arg_get_string(&args[2], &s));
	assert_true(imap_arg_get_astring(&args[2], &s));
	assert_string_equal(s, "q");
	assert_true(imap_arg_get_list(&args[3], &list, &count));
	assert_int_equal(count, 1);
	assert_true(imap_arg_atom_equals(&list[0], "l"));
	assert_false(imap_arg_get_list(&args[0], &list, &count));
	/* literal8 may hold NULs: never a plain string. */
	assert_int_equal(args[4].type, IMAP_ARG_LITERAL);
	assert_true(args[4].literal8);
	assert_false(imap_arg_get_astring(&args[4], &s));
	assert_false(imap_arg_get_nstring(&args[4], &s));
	imap_parser_destroy(&parser);
}

/* A long pipeline of APPENDs with literals, byte by byte: memory returns
   to its small size after each command. */
static void test_pipeline(void **state)
{
	struct buf input = BUF_INIT, expected = BUF_INIT;
	char *got;

	buf_append_str(&expected, "");
	for (unsigned int i = 0; i < 50; i++) {
		buf_printf(&input, "t%u APPEND INBOX (\\Seen) {%u+}\r\n", i,
			   i * 10);
		buf_printf(&expected, "CMD t%u APPEND INBOX ( \\Seen ) {%u+}",
			   i, i * 10);
		for (unsigned int j = 0; j < i * 10; j++) {
			buf_append_c(&input, 'a' + j % 26);
			buf_append_c(&expected, 'a' + j % 26);
		}
		buf_append_str(&input, "\r\n");
		buf_append_c(&expected, '\n');
	}
	got = run(&imap_parser_limits_auth, F_PLUS, buf_cstr(&input),
		  input.used, 1);
	assert_string_equal(got, buf_cstr(&expected));
	i_free(got);
	buf_free(&input);
	buf_free(&expected);
}

/* Memory follows the command: a 1 MiB APPEND, then back to small. */
static void test_memory(void **state)
{
	struct imap_parser *parser =
		imap_parser_create(&imap_parser_limits_auth, F_PLUS);
	struct imap_parser_result res;
	struct buf input = BUF_INIT;
	struct span in;

	buf_append_str(&input, "a1 APPEND INBOX {1048576}\r\n");
	for (unsigned int i = 0; i < 1048576; i++)
		buf_append_c(&input, 'a' + i % 26);
	buf_append_str(&input, " ");
	for (unsigned int i = 0; i < 15000; i++)
		buf_append_str(&input, "() ");
	buf_append_str(&input, "\r\na2 NOOP\r\n");
	in = buf_span(&input);
	assert_int_equal(parse_str(parser, &in, &res), 1);
	assert_int_equal(res.event, IMAP_PARSER_EVENT_CONTINUE);
	assert_int_equal(parse_str(parser, &in, &res), 1);
	assert_int_equal(res.cmd.arg_count, 15002);
	assert_true(imap_parser_memory_used(parser) > 1048576);
	assert_int_equal(parse_str(parser, &in, &res), 1);
	assert_string_equal(res.cmd.tag, "a2");
	assert_true(imap_parser_memory_used(parser) < 8192);
	imap_parser_destroy(&parser);
	buf_free(&input);
}

/* RFC 2971 3.3: ID with 30 pairs fits the pre-auth limits. */
static void test_preauth_id(void **state)
{
	struct buf input = BUF_INIT;
	char *got;

	buf_append_str(&input, "a1 ID (");
	for (unsigned int i = 0; i < 30; i++)
		buf_printf(&input, "%s\"field%u\" \"%s\"", i == 0 ? "" : " ", i,
			   "a value of thirty octets......");
	buf_append_str(&input, ")\r\n");
	got = run(&imap_parser_limits_preauth, 0, buf_cstr(&input), input.used,
		  5);
	assert_true(strncmp(got, "CMD a1 ID ( \"field0\" ", 21) == 0);
	i_free(got);
	buf_free(&input);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_refuse_literal),
		cmocka_unit_test(test_awaits_command_end),
		cmocka_unit_test(test_huge_literal_preauth),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_limits_change),
		cmocka_unit_test(test_raw_line),
		cmocka_unit_test(test_wipe),
		cmocka_unit_test(test_accessors),
		cmocka_unit_test(test_pipeline),
		cmocka_unit_test(test_memory),
		cmocka_unit_test(test_preauth_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
