/* imap-parser.c - the IMAP command parser: a byte-at-a-time state machine
   (nginx's sw_* style) that keeps its state in struct imap_parser between
   calls, so input may be split anywhere. Tokens are collected in a small
   buffer and copied into a per-command pool; arguments wait on a flat
   stack until their list closes. A tracker watches the end of every line
   for a literal announcement even while the parser is skipping a failed
   command, which is what keeps it in step with the client (RFC 7888 3).
   Called by the front's IMAP wiring; see imap-parser.h for the contract. */

#include "imap-parser.h"

#include "buf.h"
#include "charset.h"
#include "pool.h"

/* RFC 7888 5 and RFC 9051 4.3: LITERAL- caps {N+} at 4096 octets. */
#define IMAP_LITERAL_MINUS_MAX 4096u

const struct imap_parser_limits imap_parser_limits_preauth = {
	.max_line = 8192,
	.max_literal = 8192,
	.max_command = 16384,
	.max_args = 128, /* ID (RFC 2971 3.3): 30 field-value pairs */
	.max_depth = 4,
	.max_skip = 16384,
};

const struct imap_parser_limits imap_parser_limits_auth = {
	.max_line = 65536,
	.max_literal = 64u * 1024 * 1024,
	.max_command = 65u * 1024 * 1024,
	.max_args = 16384,
	.max_depth = 32,
	.max_skip = 1024u * 1024,
};

enum imap_parser_state {
	IMAP_PARSER_STATE_LINE_START = 0,
	IMAP_PARSER_STATE_EMPTY_CR,
	IMAP_PARSER_STATE_TAG,
	IMAP_PARSER_STATE_NAME_START,
	IMAP_PARSER_STATE_NAME,
	IMAP_PARSER_STATE_ARG_START,
	IMAP_PARSER_STATE_ARG_SEP,
	IMAP_PARSER_STATE_ATOM,
	IMAP_PARSER_STATE_QUOTED,
	IMAP_PARSER_STATE_QUOTED_ESC,
	IMAP_PARSER_STATE_TILDE,
	IMAP_PARSER_STATE_LIT_NUM,
	IMAP_PARSER_STATE_LIT_PLUS,
	IMAP_PARSER_STATE_LIT_CR,
	IMAP_PARSER_STATE_LIT_LF,
	IMAP_PARSER_STATE_LIT_DATA,
	IMAP_PARSER_STATE_CR,
	IMAP_PARSER_STATE_SKIP,
	IMAP_PARSER_STATE_SKIP_LIT,
	IMAP_PARSER_STATE_RAW_LINE,
};

/* What the end of the current line looks like, for RFC 7888 3. */
enum imap_parser_tail {
	IMAP_PARSER_TAIL_NONE = 0,
	IMAP_PARSER_TAIL_OPEN, /* "{" */
	IMAP_PARSER_TAIL_DIGITS, /* "{123" */
	IMAP_PARSER_TAIL_PLUS, /* "{123+" */
	IMAP_PARSER_TAIL_SYNC, /* "{123}" */
	IMAP_PARSER_TAIL_NONSYNC, /* "{123+}" */
};

/* What one step did with its byte. */
enum imap_parser_step {
	IMAP_PARSER_STEP_NEXT, /* consumed */
	IMAP_PARSER_STEP_AGAIN, /* not consumed: run it in the new state */
	IMAP_PARSER_STEP_EVENT, /* consumed, *result holds an event */
	IMAP_PARSER_STEP_ERROR, /* consumed, result->error is set */
	IMAP_PARSER_STEP_ERROR_AGAIN, /* error, byte not consumed */
};

struct imap_parser {
	struct imap_parser_limits limits, next_limits;
	unsigned int flags, next_flags;
	enum imap_parser_state state;

	pool_t pool; /* this command's tag, name and arguments */
	struct buf token; /* the token being read */
	struct imap_arg *stack; /* finished arguments of open lists */
	unsigned int stack_count, stack_alloc;
	unsigned int *list_starts; /* stack index where each open list begins */
	unsigned int depth, arg_count;
	const char *tag, *name;
	/* The last command's arguments, for imap_parser_wipe(). */
	const struct imap_arg *last_args;
	unsigned int last_arg_count;

	size_t line_len; /* this line, so far */
	uint64_t cmd_size; /* this command, so far */
	bool byte_counted; /* the current byte is already in the counts */

	bool atom_bracket; /* inside BODY[...] */
	bool quoted_8bit;

	uint64_t lit_size, lit_left;
	unsigned int lit_digits;
	bool lit_nonsync, lit8;
	char *lit_data;

	enum imap_parser_tail tail;
	uint64_t tail_num;
	uint64_t skip_left;

	bool expect_line;
	bool fatal;
	struct imap_parser_error fatal_error;
};

struct imap_parser *imap_parser_create(const struct imap_parser_limits *limits,
				       unsigned int flags)
{
	struct imap_parser *parser = i_new(struct imap_parser, 1);

	i_assert(limits->max_depth > 0 && limits->max_args > 0);
	parser->limits = parser->next_limits = *limits;
	parser->flags = parser->next_flags = flags;
	parser->pool = pool_create("imap command", 1024);
	parser->list_starts = i_new(unsigned int, limits->max_depth);
	return parser;
}

void imap_parser_destroy(struct imap_parser **_parser)
{
	struct imap_parser *parser = *_parser;

	*_parser = NULL;
	if (parser == NULL)
		return;
	pool_unref(&parser->pool);
	buf_free(&parser->token);
	i_free(parser->stack);
	i_free(parser->list_starts);
	i_free(parser);
}

void imap_parser_set_limits(struct imap_parser *parser,
			    const struct imap_parser_limits *limits)
{
	i_assert(limits->max_depth > 0 && limits->max_args > 0);
	parser->next_limits = *limits;
}

void imap_parser_set_flags(struct imap_parser *parser, unsigned int flags)
{
	parser->next_flags = flags;
}

unsigned int imap_parser_get_flags(const struct imap_parser *parser)
{
	return parser->next_flags;
}

size_t imap_parser_memory_used(const struct imap_parser *parser)
{
	return pool_used(parser->pool) + parser->token.alloc +
	       parser->stack_alloc * sizeof(*parser->stack) +
	       parser->limits.max_depth * sizeof(*parser->list_starts);
}

bool imap_parser_awaits_command_end(const struct imap_parser *parser)
{
	/* After a command, cmd_size and lit_size stay until the next one
	   begins: its result is still in use. */
	return parser->cmd_size > 0 && parser->lit_size > 0 &&
	       parser->state != IMAP_PARSER_STATE_LINE_START &&
	       parser->state != IMAP_PARSER_STATE_EMPTY_CR &&
	       parser->state != IMAP_PARSER_STATE_LIT_DATA &&
	       parser->state != IMAP_PARSER_STATE_SKIP &&
	       parser->state != IMAP_PARSER_STATE_SKIP_LIT;
}

void imap_parser_expect_line(struct imap_parser *parser)
{
	i_assert(parser->state == IMAP_PARSER_STATE_LINE_START);
	parser->expect_line = true;
}

/* Starts a new command: forgets the previous one, gives back memory a
   large command took, and applies limits and flags changed meanwhile. */
static void imap_parser_reset(struct imap_parser *parser)
{
	pool_clear(parser->pool);
	parser->last_args = NULL;
	parser->last_arg_count = 0;
	if (parser->token.alloc > 4096)
		buf_free(&parser->token);
	if (parser->stack_alloc > 64) {
		i_free(parser->stack);
		parser->stack_alloc = 0;
	}
	if (parser->next_limits.max_depth != parser->limits.max_depth) {
		i_free(parser->list_starts);
		parser->list_starts =
			i_new(unsigned int, parser->next_limits.max_depth);
	}
	parser->limits = parser->next_limits;
	parser->flags = parser->next_flags;
	parser->stack_count = 0;
	parser->depth = 0;
	parser->arg_count = 0;
	parser->tag = NULL;
	parser->name = NULL;
	parser->cmd_size = 0;
	parser->lit_size = 0;
	parser->lit_data = NULL;
}

static void imap_parser_line_reset(struct imap_parser *parser)
{
	parser->line_len = 0;
	parser->tail = IMAP_PARSER_TAIL_NONE;
}

static int imap_parser_error(struct imap_parser *parser,
			     struct imap_parser_result *result, bool fatal,
			     const char *code, const char *msg)
{
	struct imap_parser_error *error = &result->error;

	error->tag = parser->tag;
	error->status = "BAD";
	error->code = code;
	error->msg = msg;
	error->fatal = fatal;
	if (fatal) {
		parser->fatal = true;
		parser->fatal_error = *error;
	} else {
		parser->state = IMAP_PARSER_STATE_SKIP;
	}
	return IMAP_PARSER_STEP_ERROR;
}

/* A syntax error at byte c: the command is skipped. When c ends the line,
   the skipping state must see it to decide what follows. */
static int imap_parser_syntax_error(struct imap_parser *parser,
				    struct imap_parser_result *result,
				    uint8_t c, const char *msg)
{
	(void)imap_parser_error(parser, result, false, NULL, msg);
	return c == '\n' ? IMAP_PARSER_STEP_ERROR_AGAIN
			 : IMAP_PARSER_STEP_ERROR;
}

/* RFC 9051 9: tag = 1*<any ASTRING-CHAR except "+">; ASTRING-CHAR is
   ATOM-CHAR or "]", ATOM-CHAR any CHAR except atom-specials. */
static bool imap_is_tag_char(uint8_t c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false; /* CTL, SP, 8-bit */
	return strchr("(){%*\"\\+", c) == NULL;
}

/* The atoms this parser reads: ATOM-CHAR plus the list-wildcards "%" and
   "*" (RFC 9051 9 list-mailbox, seq-number) and "]" (ASTRING-CHAR), so
   one token type covers atom, astring, list-mailbox, sequence-set and
   flag; commands check the finer grammar. A backslash may only start an
   atom (flag-extension "\Seen"). */
static bool imap_is_atom_char(uint8_t c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("(){\"\\", c) == NULL;
}

static bool imap_parser_count_arg(struct imap_parser *parser)
{
	return ++parser->arg_count <= parser->limits.max_args;
}

static void imap_parser_push(struct imap_parser *parser,
			     const struct imap_arg *arg)
{
	if (parser->stack_count == parser->stack_alloc) {
		unsigned int n =
			parser->stack_alloc == 0 ? 16 : parser->stack_alloc * 2;

		parser->stack = i_realloc(
			parser->stack, i_size_mul(n, sizeof(*parser->stack)));
		parser->stack_alloc = n;
	}
	parser->stack[parser->stack_count++] = *arg;
}

/* Pushes the token as an argument of the given type. */
static void imap_parser_push_token(struct imap_parser *parser,
				   enum imap_arg_type type)
{
	struct imap_arg arg = { .type = type };
	struct span tok = buf_span(&parser->token);

	arg.str = p_strndup(parser->pool, tok.p, tok.len);
	arg.len = tok.len;
	/* RFC 9051 9: nil = "NIL", case-insensitive like every keyword. */
	if (type == IMAP_ARG_ATOM && span_eq_ci(tok, SPAN_LIT("NIL")))
		arg.type = IMAP_ARG_NIL;
	imap_parser_push(parser, &arg);
}

static const struct imap_arg *imap_parser_take(struct imap_parser *parser,
					       unsigned int start)
{
	unsigned int count = parser->stack_count - start;
	struct imap_arg *args;

	if (count == 0)
		return NULL;
	args = p_new(parser->pool, struct imap_arg, count);
	memcpy(args, parser->stack + start, count * sizeof(*args));
	parser->stack_count = start;
	return args;
}

/* Starts a quoted string or an atom: one more argument. */
static int imap_parser_token_begin(struct imap_parser *parser,
				   struct imap_parser_result *result,
				   enum imap_parser_state state)
{
	if (!imap_parser_count_arg(parser))
		return imap_parser_error(parser, result, false, "LIMIT",
					 "Too many arguments");
	buf_reset(&parser->token);
	parser->state = state;
	return IMAP_PARSER_STEP_NEXT;
}

/* At "{" or "~{": a literal announcement begins. */
static int imap_parser_literal_begin(struct imap_parser *parser, bool lit8)
{
	parser->lit8 = lit8;
	parser->lit_nonsync = false;
	parser->lit_size = 0;
	parser->lit_digits = 0;
	parser->state = IMAP_PARSER_STATE_LIT_NUM;
	return IMAP_PARSER_STEP_NEXT;
}

static int imap_parser_open_list(struct imap_parser *parser,
				 struct imap_parser_result *result)
{
	if (parser->depth >= parser->limits.max_depth)
		return imap_parser_error(parser, result, false, "LIMIT",
					 "Lists nested too deeply");
	if (!imap_parser_count_arg(parser))
		return imap_parser_error(parser, result, false, "LIMIT",
					 "Too many arguments");
	parser->list_starts[parser->depth++] = parser->stack_count;
	parser->state = IMAP_PARSER_STATE_ARG_START;
	return IMAP_PARSER_STEP_NEXT;
}

static int imap_parser_close_list(struct imap_parser *parser,
				  struct imap_parser_result *result)
{
	struct imap_arg arg = { .type = IMAP_ARG_LIST };
	unsigned int start;

	if (parser->depth == 0)
		return imap_parser_error(parser, result, false, NULL,
					 "Unexpected ')'");
	start = parser->list_starts[--parser->depth];
	arg.list_count = parser->stack_count - start;
	arg.list = imap_parser_take(parser, start);
	arg.str = "";
	imap_parser_push(parser, &arg);
	parser->state = IMAP_PARSER_STATE_ARG_SEP;
	return IMAP_PARSER_STEP_NEXT;
}

static int imap_parser_end_line(struct imap_parser *parser,
				struct imap_parser_result *result)
{
	struct imap_command *cmd = &result->cmd;

	if (parser->depth > 0) {
		(void)imap_parser_error(parser, result, false, NULL,
					"Missing ')'");
		return IMAP_PARSER_STEP_ERROR_AGAIN;
	}
	cmd->tag = parser->tag;
	cmd->name = parser->name;
	cmd->arg_count = parser->stack_count;
	cmd->args = imap_parser_take(parser, 0);
	parser->last_args = cmd->args;
	parser->last_arg_count = cmd->arg_count;
	cmd->size = parser->cmd_size;
	result->event = IMAP_PARSER_EVENT_COMMAND;
	result->tag = cmd->tag;
	result->name = cmd->name;
	imap_parser_line_reset(parser);
	parser->tag = NULL;
	parser->name = NULL;
	parser->state = IMAP_PARSER_STATE_LINE_START;
	return IMAP_PARSER_STEP_EVENT;
}

/* Refuses an announced literal. The client sends a non-synchronising
   one anyway (RFC 7888 4 choice 1), so it is skipped when small enough,
   and otherwise the connection is closed (RFC 7888 4 choice 2). A
   synchronising one is not sent after our BAD (RFC 9051 7.6). */
static int imap_parser_refuse(struct imap_parser *parser,
			      struct imap_parser_result *result,
			      const char *code, const char *msg)
{
	/* The same test as imap_parser_skip_eol() will make after the CRLF
	   (2 more octets), so that one refusal gives one error. */
	if (parser->lit_nonsync &&
	    (parser->lit_size > parser->limits.max_skip ||
	     parser->lit_size + 2 >
		     parser->limits.max_command - parser->cmd_size)) {
		return imap_parser_error(parser, result, true, code, msg);
	}
	return imap_parser_error(parser, result, false, code, msg);
}

/* At the "}" of a literal announcement: every limit is checked here,
   before the literal is read or memory is taken for it. */
static int imap_parser_literal_announced(struct imap_parser *parser,
					 struct imap_parser_result *result)
{
	const struct imap_parser_limits *limits = &parser->limits;
	uint64_t size = parser->lit_size;

	if (parser->lit_nonsync &&
	    (parser->flags & (IMAP_PARSER_FLAG_LITERAL_PLUS |
			      IMAP_PARSER_FLAG_LITERAL_MINUS)) == 0) {
		return imap_parser_refuse(parser, result, NULL,
					  "Non-synchronizing literals are not "
					  "supported");
	}
	/* RFC 7888 5: with LITERAL-, a larger {N+} gets BAD [TOOBIG]. */
	if (parser->lit_nonsync &&
	    (parser->flags & IMAP_PARSER_FLAG_LITERAL_PLUS) == 0 &&
	    size > IMAP_LITERAL_MINUS_MAX) {
		return imap_parser_refuse(parser, result, "TOOBIG",
					  "Non-synchronizing literal larger "
					  "than 4096 octets");
	}
	if (size > limits->max_literal ||
	    size > limits->max_command - parser->cmd_size) {
		int ret = imap_parser_refuse(parser, result, "TOOBIG",
					     "Literal too large");

		/* RFC 7889 4 and RFC 4469 4.2: an APPEND too large for us
		   is "NO [TOOBIG]" (the client may try elsewhere); RFC
		   7888 5 keeps BAD for {N+}. */
		if (!parser->lit_nonsync && parser->name != NULL &&
		    strcmp(parser->name, "APPEND") == 0)
			result->error.status = "NO";
		return ret;
	}
	if (!imap_parser_count_arg(parser)) {
		return imap_parser_refuse(parser, result, "LIMIT",
					  "Too many arguments");
	}
	parser->state = IMAP_PARSER_STATE_LIT_CR;
	return IMAP_PARSER_STEP_NEXT;
}

static void imap_parser_literal_done(struct imap_parser *parser)
{
	struct imap_arg arg = { .type = IMAP_ARG_LITERAL };

	arg.str = parser->lit_data;
	arg.len = parser->lit_size;
	arg.literal8 = parser->lit8;
	arg.nonsync = parser->lit_nonsync;
	parser->lit_data = NULL;
	imap_parser_push(parser, &arg);
	/* RFC 7888 3: the command goes on right after the literal's data;
	   what follows is a new line as far as limits go. */
	imap_parser_line_reset(parser);
	parser->state = IMAP_PARSER_STATE_ARG_SEP;
}

/* The CRLF after "{N}": the literal's data follows. */
static int imap_parser_literal_start(struct imap_parser *parser,
				     struct imap_parser_result *result)
{
	/* Bounded by the limits in imap_parser_literal_announced(). */
	parser->lit_data = p_malloc(parser->pool, (size_t)parser->lit_size + 1);
	parser->lit_left = parser->lit_size;
	imap_parser_line_reset(parser);
	parser->state = IMAP_PARSER_STATE_LIT_DATA;
	if (!parser->lit_nonsync) {
		/* RFC 9051 7.6: the client waits for "+" before sending. */
		result->event = IMAP_PARSER_EVENT_CONTINUE;
		result->tag = parser->tag;
		result->name = parser->name;
		result->literal_size = parser->lit_size;
		result->literal8 = parser->lit8;
		return IMAP_PARSER_STEP_EVENT;
	}
	if (parser->lit_left == 0)
		imap_parser_literal_done(parser);
	return IMAP_PARSER_STEP_NEXT;
}

/* RFC 9051 9 literal: CHAR8 is %x01-ff; only literal8 may hold NUL. */
static int imap_parser_literal_check(struct imap_parser *parser,
				     struct imap_parser_result *result)
{
	if (!parser->lit8 &&
	    memchr(parser->lit_data, '\0', parser->lit_size) != NULL) {
		parser->lit_data = NULL;
		return imap_parser_error(parser, result, false, NULL,
					 "NUL in literal (use literal8)");
	}
	imap_parser_literal_done(parser);
	return IMAP_PARSER_STEP_NEXT;
}

/* RFC 9051 9 section: in FETCH's BODY[...] and BINARY[...] the section
   may hold SP and a parenthesised header list; such an atom runs to the
   matching "]" so that it reaches the FETCH parser in one piece.
   Deviation from RFC 9051 9 astring: an astring atom such as "BODY[x"
   with no "]" on its line is refused; clients quote such names, and our
   writer does (imap_write_astring()). */
static bool imap_parser_bracket_atom(const struct buf *token)
{
	static const char *const prefixes[] = {
		"BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE",
	};
	struct span tok = buf_span(token);

	for (unsigned int i = 0; i < N_ELEMENTS(prefixes); i++) {
		if (span_eq_ci(tok, span_from_cstr(prefixes[i])))
			return true;
	}
	return false;
}

/* Line length, command size, and the RFC 7888 3 tail tracker. */
static int imap_parser_count(struct imap_parser *parser, uint8_t c,
			     struct imap_parser_result *result)
{
	parser->line_len++;
	parser->cmd_size++;
	if (parser->line_len > parser->limits.max_line) {
		return imap_parser_error(parser, result, true, "LIMIT",
					 "Command line too long");
	}
	if (parser->cmd_size > parser->limits.max_command) {
		return imap_parser_error(parser, result, true, "LIMIT",
					 "Command too large");
	}
	if (c == '\n' ||
	    (c == '\r' && (parser->tail == IMAP_PARSER_TAIL_SYNC ||
			   parser->tail == IMAP_PARSER_TAIL_NONSYNC)))
		return IMAP_PARSER_STEP_NEXT;
	if (c == '{') {
		parser->tail = IMAP_PARSER_TAIL_OPEN;
		parser->tail_num = 0;
	} else if (c >= '0' && c <= '9' &&
		   (parser->tail == IMAP_PARSER_TAIL_OPEN ||
		    parser->tail == IMAP_PARSER_TAIL_DIGITS)) {
		parser->tail = IMAP_PARSER_TAIL_DIGITS;
		if (parser->tail_num > (UINT64_MAX - 9) / 10)
			parser->tail_num = UINT64_MAX;
		else
			parser->tail_num = parser->tail_num * 10 + (c - '0');
	} else if (c == '+' && parser->tail == IMAP_PARSER_TAIL_DIGITS) {
		parser->tail = IMAP_PARSER_TAIL_PLUS;
	} else if (c == '}' && parser->tail == IMAP_PARSER_TAIL_DIGITS) {
		parser->tail = IMAP_PARSER_TAIL_SYNC;
	} else if (c == '}' && parser->tail == IMAP_PARSER_TAIL_PLUS) {
		parser->tail = IMAP_PARSER_TAIL_NONSYNC;
	} else {
		parser->tail = IMAP_PARSER_TAIL_NONE;
	}
	return IMAP_PARSER_STEP_NEXT;
}

/* The end of a line of a command being skipped. RFC 7888 3: a line that
   ends with {N+} is followed by N octets and another line of the same
   command; any other line ends it (after {N} the client waits for a "+"
   that never comes, RFC 9051 7.6). */
static int imap_parser_skip_eol(struct imap_parser *parser,
				struct imap_parser_result *result)
{
	if (parser->tail == IMAP_PARSER_TAIL_NONSYNC) {
		uint64_t n = parser->tail_num;

		if (n > parser->limits.max_skip ||
		    n > parser->limits.max_command - parser->cmd_size) {
			return imap_parser_error(parser, result, true, "TOOBIG",
						 "Literal too large to skip");
		}
		parser->skip_left = n;
		parser->cmd_size += n;
		imap_parser_line_reset(parser);
		parser->state = n == 0 ? IMAP_PARSER_STATE_SKIP
				       : IMAP_PARSER_STATE_SKIP_LIT;
		return IMAP_PARSER_STEP_NEXT;
	}
	/* The next command clears the pool; this error's tag, already
	   returned, stays valid until then. */
	imap_parser_line_reset(parser);
	parser->tag = NULL;
	parser->name = NULL;
	parser->cmd_size = 0;
	parser->state = IMAP_PARSER_STATE_LINE_START;
	return IMAP_PARSER_STEP_NEXT;
}

static int imap_parser_step(struct imap_parser *parser, uint8_t c,
			    struct imap_parser_result *result)
{
	switch (parser->state) {
	case IMAP_PARSER_STATE_LINE_START:
		if (parser->expect_line) {
			buf_reset(&parser->token);
			parser->state = IMAP_PARSER_STATE_RAW_LINE;
			return IMAP_PARSER_STEP_AGAIN;
		}
		/* Deviation from RFC 9051 9 (command ends in CRLF, no empty
		   commands): empty lines are ignored, as some clients send
		   an extra CRLF after APPEND's literal. */
		if (c == '\n') {
			imap_parser_line_reset(parser);
			parser->cmd_size = 0;
			return IMAP_PARSER_STEP_NEXT;
		}
		if (c == '\r') {
			parser->state = IMAP_PARSER_STATE_EMPTY_CR;
			return IMAP_PARSER_STEP_NEXT;
		}
		imap_parser_reset(parser);
		parser->cmd_size = parser->line_len;
		if (!imap_is_tag_char(c))
			return imap_parser_syntax_error(parser, result, c,
							"Invalid tag");
		buf_reset(&parser->token);
		buf_append_c(&parser->token, c);
		parser->state = IMAP_PARSER_STATE_TAG;
		return IMAP_PARSER_STEP_NEXT;
	case IMAP_PARSER_STATE_EMPTY_CR:
		if (c != '\n') {
			parser->tag = NULL;
			return imap_parser_syntax_error(parser, result, c,
							"CR without LF");
		}
		imap_parser_line_reset(parser);
		parser->cmd_size = 0;
		parser->state = IMAP_PARSER_STATE_LINE_START;
		return IMAP_PARSER_STEP_NEXT;
	case IMAP_PARSER_STATE_TAG:
		if (imap_is_tag_char(c)) {
			buf_append_c(&parser->token, c);
			return IMAP_PARSER_STEP_NEXT;
		}
		if (c == ' ' || c == '\r' || c == '\n') {
			parser->tag = p_strdup(parser->pool,
					       buf_cstr(&parser->token));
			if (c != ' ')
				return imap_parser_syntax_error(
					parser, result, c,
					"Missing command name");
			parser->state = IMAP_PARSER_STATE_NAME_START;
			return IMAP_PARSER_STEP_NEXT;
		}
		return imap_parser_syntax_error(parser, result, c,
						"Invalid tag");
	case IMAP_PARSER_STATE_NAME_START:
		if (!imap_is_atom_char(c) || c == '\\')
			return imap_parser_syntax_error(parser, result, c,
							"Missing command name");
		buf_reset(&parser->token);
		buf_append_c(&parser->token, c);
		parser->state = IMAP_PARSER_STATE_NAME;
		return IMAP_PARSER_STEP_NEXT;
	case IMAP_PARSER_STATE_NAME:
		if (imap_is_atom_char(c)) {
			buf_append_c(&parser->token, c);
			return IMAP_PARSER_STEP_NEXT;
		}
		if (c == ' ' || c == '\r' || c == '\n') {
			char *name = p_strdup(parser->pool,
					      buf_cstr(&parser->token));

			/* RFC 9051 9 note 1: command names are
			   case-insensitive. */
			for (char *p = name; *p != '\0'; p++) {
				if (*p >= 'a' && *p <= 'z')
					*p = (char)(*p - 'a' + 'A');
			}
			parser->name = name;
			parser->state = IMAP_PARSER_STATE_ARG_SEP;
			return IMAP_PARSER_STEP_AGAIN;
		}
		return imap_parser_syntax_error(parser, result, c,
						"Invalid command name");
	case IMAP_PARSER_STATE_ARG_START:
		switch (c) {
		case ' ':
			/* Deviation from RFC 9051 9 note 2 (exactly one SP):
			   extra spaces are skipped, as Dovecot does. */
			return IMAP_PARSER_STEP_NEXT;
		case '(':
			return imap_parser_open_list(parser, result);
		case ')':
			return imap_parser_close_list(parser, result);
		case '"':
			parser->quoted_8bit = false;
			return imap_parser_token_begin(
				parser, result, IMAP_PARSER_STATE_QUOTED);
		case '{':
			return imap_parser_literal_begin(parser, false);
		case '~':
			parser->state = IMAP_PARSER_STATE_TILDE;
			return IMAP_PARSER_STEP_NEXT;
		case '\r':
		case '\n':
			/* A trailing SP is tolerated like extra ones. */
			parser->state = IMAP_PARSER_STATE_ARG_SEP;
			return IMAP_PARSER_STEP_AGAIN;
		}
		if (!imap_is_atom_char(c) && c != '\\') {
			return imap_parser_syntax_error(
				parser, result, c,
				c >= 0x80 ? "8-bit octets outside a string"
					  : "Invalid character");
		}
		/* RFC 9051 9 flag-extension: "\" may start an atom. */
		parser->atom_bracket = false;
		if (imap_parser_token_begin(parser, result,
					    IMAP_PARSER_STATE_ATOM) ==
		    IMAP_PARSER_STEP_ERROR)
			return IMAP_PARSER_STEP_ERROR;
		buf_append_c(&parser->token, c);
		return IMAP_PARSER_STEP_NEXT;
	case IMAP_PARSER_STATE_ARG_SEP:
		switch (c) {
		case ' ':
			parser->state = IMAP_PARSER_STATE_ARG_START;
			return IMAP_PARSER_STEP_NEXT;
		case ')':
			return imap_parser_close_list(parser, result);
		case '\r':
			parser->state = IMAP_PARSER_STATE_CR;
			return IMAP_PARSER_STEP_NEXT;
		case '\n':
			/* Deviation from RFC 9051 9 (CRLF): a bare LF ends
			   the line too, for hand-typed sessions. */
			return imap_parser_end_line(parser, result);
		}
		return imap_parser_syntax_error(parser, result, c,
						"Missing space between "
						"arguments");
	case IMAP_PARSER_STATE_CR:
		if (c != '\n')
			return imap_parser_syntax_error(parser, result, c,
							"CR without LF");
		return imap_parser_end_line(parser, result);
	case IMAP_PARSER_STATE_ATOM:
		if (parser->atom_bracket) {
			if (c == ']')
				parser->atom_bracket = false;
			else if (c < 0x20 || c >= 0x7f)
				return imap_parser_syntax_error(
					parser, result, c, "Missing ']'");
			buf_append_c(&parser->token, c);
			return IMAP_PARSER_STEP_NEXT;
		}
		if (imap_is_atom_char(c)) {
			if (c == '[' &&
			    imap_parser_bracket_atom(&parser->token))
				parser->atom_bracket = true;
			buf_append_c(&parser->token, c);
			return IMAP_PARSER_STEP_NEXT;
		}
		if (c == ' ' || c == ')' || c == '\r' || c == '\n') {
			imap_parser_push_token(parser, IMAP_ARG_ATOM);
			parser->state = IMAP_PARSER_STATE_ARG_SEP;
			return IMAP_PARSER_STEP_AGAIN;
		}
		return imap_parser_syntax_error(parser, result, c,
						"Invalid character in atom");
	case IMAP_PARSER_STATE_QUOTED:
		/* RFC 9051 9 quoted, QUOTED-CHAR; RFC 6855 3 uQUOTED-CHAR. */
		if (c == '"') {
			struct span s = buf_span(&parser->token);

			if (parser->quoted_8bit && !charset_utf8_is_valid(s))
				return imap_parser_error(parser, result, false,
							 NULL,
							 "Invalid UTF-8 in "
							 "quoted string");
			imap_parser_push_token(parser, IMAP_ARG_QUOTED);
			parser->state = IMAP_PARSER_STATE_ARG_SEP;
			return IMAP_PARSER_STEP_NEXT;
		}
		if (c == '\\') {
			parser->state = IMAP_PARSER_STATE_QUOTED_ESC;
			return IMAP_PARSER_STEP_NEXT;
		}
		if (c == '\r' || c == '\n')
			return imap_parser_syntax_error(parser, result, c,
							"Missing '\"'");
		if (c == '\0')
			return imap_parser_syntax_error(parser, result, c,
							"NUL in quoted string");
		if (c >= 0x80) {
			if ((parser->flags & IMAP_PARSER_FLAG_UTF8) == 0)
				return imap_parser_syntax_error(
					parser, result, c,
					"8-bit octets in quoted string need "
					"UTF8=ACCEPT");
			parser->quoted_8bit = true;
		}
		buf_append_c(&parser->token, c);
		return IMAP_PARSER_STEP_NEXT;
	case IMAP_PARSER_STATE_QUOTED_ESC:
		/* RFC 9051 9 QUOTED-CHAR: only "\" quoted-specials. */
		if (c != '"' && c != '\\')
			return imap_parser_syntax_error(parser, result, c,
							"Invalid escape in "
							"quoted string");
		buf_append_c(&parser->token, c);
		parser->state = IMAP_PARSER_STATE_QUOTED;
		return IMAP_PARSER_STEP_NEXT;
	case IMAP_PARSER_STATE_TILDE:
		if (c == '{') {
			/* RFC 3516 4.1 literal8, non-synchronising with
			   LITERAL+/- (RFC 7888 6). */
			if ((parser->flags & IMAP_PARSER_FLAG_BINARY) == 0)
				return imap_parser_syntax_error(
					parser, result, c,
					"literal8 needs BINARY");
			return imap_parser_literal_begin(parser, true);
		}
		/* Just an atom starting with "~"; c is read as its next
		   byte. */
		parser->atom_bracket = false;
		if (imap_parser_token_begin(parser, result,
					    IMAP_PARSER_STATE_ATOM) ==
		    IMAP_PARSER_STEP_ERROR)
			return IMAP_PARSER_STEP_ERROR;
		buf_append_c(&parser->token, '~');
		return IMAP_PARSER_STEP_AGAIN;
	case IMAP_PARSER_STATE_LIT_NUM:
		/* RFC 9051 9 literal: "{" number64 ["+"] "}" CRLF. Sizes
		   saturate: anything that big is refused at "}". */
		if (c >= '0' && c <= '9') {
			parser->lit_digits++;
			if (parser->lit_size > (UINT64_MAX - 9) / 10)
				parser->lit_size = UINT64_MAX;
			else
				parser->lit_size =
					parser->lit_size * 10 + (c - '0');
			return IMAP_PARSER_STEP_NEXT;
		}
		if (parser->lit_digits > 0 && c == '+') {
			parser->lit_nonsync = true;
			parser->state = IMAP_PARSER_STATE_LIT_PLUS;
			return IMAP_PARSER_STEP_NEXT;
		}
		if (parser->lit_digits > 0 && c == '}')
			return imap_parser_literal_announced(parser, result);
		return imap_parser_syntax_error(parser, result, c,
						"Invalid literal size");
	case IMAP_PARSER_STATE_LIT_PLUS:
		if (c == '}')
			return imap_parser_literal_announced(parser, result);
		return imap_parser_syntax_error(parser, result, c,
						"Invalid literal size");
	case IMAP_PARSER_STATE_LIT_CR:
		if (c == '\r') {
			parser->state = IMAP_PARSER_STATE_LIT_LF;
			return IMAP_PARSER_STEP_NEXT;
		}
		if (c == '\n')
			return imap_parser_literal_start(parser, result);
		return imap_parser_syntax_error(parser, result, c,
						"Literal size not followed by "
						"CRLF");
	case IMAP_PARSER_STATE_LIT_LF:
		if (c == '\n')
			return imap_parser_literal_start(parser, result);
		return imap_parser_syntax_error(parser, result, c,
						"CR without LF");
	case IMAP_PARSER_STATE_SKIP:
		if (c == '\n')
			return imap_parser_skip_eol(parser, result);
		return IMAP_PARSER_STEP_NEXT;
	case IMAP_PARSER_STATE_RAW_LINE:
		if (c == '\n') {
			struct span line = buf_span(&parser->token);

			if (line.len > 0 && line.p[line.len - 1] == '\r')
				line.len--;
			result->event = IMAP_PARSER_EVENT_LINE;
			result->line = line;
			parser->expect_line = false;
			imap_parser_line_reset(parser);
			parser->cmd_size = 0;
			parser->state = IMAP_PARSER_STATE_LINE_START;
			return IMAP_PARSER_STEP_EVENT;
		}
		buf_append_c(&parser->token, c);
		return IMAP_PARSER_STEP_NEXT;
	case IMAP_PARSER_STATE_LIT_DATA:
	case IMAP_PARSER_STATE_SKIP_LIT:
		break;
	}
	i_unreached();
}

int imap_parser_parse(struct imap_parser *parser, struct span input,
		      size_t *consumed_r, struct imap_parser_result *result_r)
{
	size_t i = 0;
	int ret = 0;

	memset(result_r, 0, sizeof(*result_r));
	*consumed_r = 0;
	if (parser->fatal) {
		result_r->error = parser->fatal_error;
		return -1;
	}
	/* A synchronising {0}: nothing to read after the continuation. */
	if (parser->state == IMAP_PARSER_STATE_LIT_DATA &&
	    parser->lit_left == 0) {
		if (imap_parser_literal_check(parser, result_r) ==
		    IMAP_PARSER_STEP_ERROR)
			return -1;
	}
	while (i < input.len) {
		enum imap_parser_step step;
		uint8_t c;

		if (parser->state == IMAP_PARSER_STATE_LIT_DATA ||
		    parser->state == IMAP_PARSER_STATE_SKIP_LIT) {
			bool skip = parser->state == IMAP_PARSER_STATE_SKIP_LIT;
			uint64_t *left =
				skip ? &parser->skip_left : &parser->lit_left;
			size_t n = input.len - i;

			if (n > *left)
				n = (size_t)*left;
			if (!skip) {
				memcpy(parser->lit_data + parser->lit_size -
					       parser->lit_left,
				       input.p + i, n);
				parser->cmd_size += n;
			}
			*left -= n;
			i += n;
			if (*left > 0)
				continue;
			if (skip) {
				imap_parser_line_reset(parser);
				parser->state = IMAP_PARSER_STATE_SKIP;
			} else if (imap_parser_literal_check(parser,
							     result_r) ==
				   IMAP_PARSER_STEP_ERROR) {
				ret = -1;
				break;
			}
			continue;
		}
		c = input.p[i];
		if (!parser->byte_counted) {
			if (imap_parser_count(parser, c, result_r) ==
			    IMAP_PARSER_STEP_ERROR) {
				ret = -1;
				break;
			}
			parser->byte_counted = true;
		}
		step = imap_parser_step(parser, c, result_r);
		if (step == IMAP_PARSER_STEP_AGAIN)
			continue;
		if (step == IMAP_PARSER_STEP_ERROR_AGAIN) {
			ret = -1;
			break;
		}
		parser->byte_counted = false;
		i++;
		if (step == IMAP_PARSER_STEP_EVENT) {
			ret = 1;
			break;
		}
		if (step == IMAP_PARSER_STEP_ERROR) {
			ret = -1;
			break;
		}
	}
	*consumed_r = i;
	return ret;
}

void imap_parser_refuse_literal(struct imap_parser *parser)
{
	i_assert(parser->state == IMAP_PARSER_STATE_LIT_DATA &&
		 !parser->lit_nonsync && parser->lit_left == parser->lit_size);
	/* RFC 9051 7.6: without our "+", the client sends no literal and
	   the command is over. */
	parser->lit_data = NULL;
	imap_parser_line_reset(parser);
	parser->cmd_size = 0;
	parser->state = IMAP_PARSER_STATE_LINE_START;
}

static void imap_args_wipe(const struct imap_arg *args, unsigned int count)
{
	for (unsigned int i = 0; i < count; i++) {
		if (args[i].type == IMAP_ARG_LIST)
			imap_args_wipe(args[i].list, args[i].list_count);
		else if (args[i].len > 0)
			/* The parser owns these bytes (pool memory). */
			safe_memset0((char *)args[i].str, args[i].len);
	}
}

void imap_parser_wipe(struct imap_parser *parser)
{
	imap_args_wipe(parser->last_args, parser->last_arg_count);
	if (parser->token.data != NULL)
		safe_memset0(parser->token.data, parser->token.alloc);
}

bool imap_arg_get_atom(const struct imap_arg *arg, const char **str_r)
{
	if (arg->type != IMAP_ARG_ATOM && arg->type != IMAP_ARG_NIL)
		return false;
	*str_r = arg->str;
	return true;
}

bool imap_arg_get_string(const struct imap_arg *arg, const char **str_r)
{
	if (arg->type != IMAP_ARG_QUOTED &&
	    (arg->type != IMAP_ARG_LITERAL || arg->literal8))
		return false;
	*str_r = arg->str;
	return true;
}

bool imap_arg_get_astring(const struct imap_arg *arg, const char **str_r)
{
	return imap_arg_get_atom(arg, str_r) || imap_arg_get_string(arg, str_r);
}

bool imap_arg_get_nstring(const struct imap_arg *arg, const char **str_r)
{
	if (arg->type == IMAP_ARG_NIL) {
		*str_r = NULL;
		return true;
	}
	return imap_arg_get_string(arg, str_r);
}

bool imap_arg_get_list(const struct imap_arg *arg,
		       const struct imap_arg **list_r, unsigned int *count_r)
{
	if (arg->type != IMAP_ARG_LIST)
		return false;
	*list_r = arg->list;
	*count_r = arg->list_count;
	return true;
}

bool imap_arg_atom_equals(const struct imap_arg *arg, const char *name)
{
	return (arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_NIL) &&
	       span_eq_ci(span_make(arg->str, arg->len), span_from_cstr(name));
}
