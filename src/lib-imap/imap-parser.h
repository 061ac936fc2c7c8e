#ifndef MARMOT_IMAP_PARSER_H
#define MARMOT_IMAP_PARSER_H
/* The IMAP server's command parser (RFC 9051 9, RFC 3501 9), I/O-free:
   the front hands it whatever bytes arrived, split anywhere, and gets back
   events: a complete command as a tree of arguments, a request to send a
   command continuation ("+ OK", RFC 9051 7.6) for a synchronising literal,
   a raw line (AUTHENTICATE responses, IDLE's DONE), or an error to answer
   with a tagged or untagged BAD/NO and, when it says so, a BYE and a close.
   The parser never does I/O and never answers by itself.

   Security stance: everything here is untrusted, possibly pre-auth input.
   Every size is bounded before memory is taken for it (struct
   imap_parser_limits): the line, each literal, the whole command, the
   number of arguments and the list depth. A literal announcement above the
   limits ({4294967295}) is refused at its closing brace, before a byte of
   it is read and without allocating it. The parser copies what it keeps
   into its own memory, so the caller may reuse its input buffer at once;
   the memory it holds is bounded by the limits and shrinks back after a
   large command. After an error it resynchronises at the end of the line,
   skipping the data of a non-synchronising literal announced at the end
   of the failing line (RFC 7888 3: the client sends it regardless), or
   asks for the connection to be closed when that literal is too large to
   skip. */

#include "lib.h"
#include "span.h"

struct imap_parser;

enum imap_arg_type {
	IMAP_ARG_ATOM = 1,
	/* The atom NIL in any case (RFC 9051 9 nil). str holds it as sent,
	   since NIL is also a valid astring (a user or mailbox called nil). */
	IMAP_ARG_NIL,
	IMAP_ARG_QUOTED,
	IMAP_ARG_LITERAL,
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type type;
	/* LITERAL: sent as literal8 "~{N}" (RFC 3516 4.1); may hold NULs. */
	bool literal8;
	/* LITERAL: sent as a non-synchronising literal {N+}. */
	bool nonsync;
	/* ATOM, NIL, QUOTED (unescaped), LITERAL: the bytes, len of them,
	   always followed by a NUL. LIST: "". */
	const char *str;
	size_t len;
	/* LIST: the elements. */
	const struct imap_arg *list;
	unsigned int list_count;
};

struct imap_command {
	const char *tag;
	/* The command name, upper-cased ("UID", "LOGIN", ...). */
	const char *name;
	const struct imap_arg *args;
	unsigned int arg_count;
	/* Bytes the command took on the wire, literals included. */
	size_t size;
};

/* Limits, all enforced before memory is taken. */
struct imap_parser_limits {
	/* One line, CRLF included; literal data is not part of a line. A
	   longer line is fatal (a client that does not respect it is not
	   worth resynchronising with). */
	size_t max_line;
	/* One literal's size. A larger synchronising literal is refused
	   without being read; a larger non-synchronising one is skipped if
	   at most max_skip, else fatal. */
	uint64_t max_literal;
	/* A whole command: its lines and literals. */
	uint64_t max_command;
	/* Arguments, list elements included (a list counts as one too). */
	unsigned int max_args;
	/* Nesting of parenthesised lists. */
	unsigned int max_depth;
	/* The largest non-synchronising literal the parser discards to stay
	   in step after an error; above it the error is fatal. */
	uint64_t max_skip;
};

/* Before authentication: enough for LOGIN with literals and ID. */
extern const struct imap_parser_limits imap_parser_limits_preauth;
/* After authentication: APPEND up to 64 MiB, long SEARCH and UID sets. */
extern const struct imap_parser_limits imap_parser_limits_auth;

enum imap_parser_flags {
	/* LITERAL+ (RFC 7888 3) advertised: {N+} of any size up to the
	   limits. */
	IMAP_PARSER_FLAG_LITERAL_PLUS = 1u << 0,
	/* LITERAL- (RFC 7888 5, IMAP4rev2 RFC 9051 4.3): {N+} up to 4096
	   octets; a larger one is refused with BAD [TOOBIG]. With neither
	   flag, {N+} is refused. */
	IMAP_PARSER_FLAG_LITERAL_MINUS = 1u << 1,
	/* BINARY (RFC 3516 4.1): literal8 ~{N} is accepted. */
	IMAP_PARSER_FLAG_BINARY = 1u << 2,
	/* UTF8=ACCEPT (RFC 6855 3) or IMAP4rev2 (RFC 9051 9 QUOTED-CHAR):
	   quoted strings may hold UTF-8, which must be well-formed. Without
	   it, 8-bit octets in quoted strings are refused. */
	IMAP_PARSER_FLAG_UTF8 = 1u << 3,
};

enum imap_parser_event {
	/* A complete command is in result->cmd. */
	IMAP_PARSER_EVENT_COMMAND = 1,
	/* A synchronising literal was announced: the caller sends a
	   continuation request ("+ OK\r\n") and calls again, or refuses it
	   with imap_parser_refuse_literal() and a tagged NO/BAD.
	   result->tag, ->name and ->literal_size describe it. */
	IMAP_PARSER_EVENT_CONTINUE,
	/* The raw line asked for with imap_parser_expect_line() is in
	   result->line (CRLF removed). */
	IMAP_PARSER_EVENT_LINE,
};

struct imap_parser_error {
	/* The tag to answer with, or NULL when none was read (answer
	   "* BAD"). */
	const char *tag;
	/* "BAD", or "NO" for an APPEND whose synchronising literal is over
	   the limits (RFC 7889 4: NO [TOOBIG]). */
	const char *status;
	/* A response code without brackets ("TOOBIG", "LIMIT"), or NULL. */
	const char *code;
	/* Human-readable, printable ASCII, safe to send. */
	const char *msg;
	/* The caller sends "* BYE msg" as well and closes the connection;
	   the parser refuses further input. imap_write_parser_error()
	   writes the whole answer. */
	bool fatal;
};

struct imap_parser_result {
	enum imap_parser_event event;
	/* EVENT_COMMAND */
	struct imap_command cmd;
	/* EVENT_CONTINUE (and EVENT_COMMAND: the same as cmd's) */
	const char *tag;
	const char *name;
	uint64_t literal_size;
	bool literal8;
	/* EVENT_LINE */
	struct span line;
	/* On -1 */
	struct imap_parser_error error;
};

/* Creates a parser with the given limits and enum imap_parser_flags. */
struct imap_parser *imap_parser_create(const struct imap_parser_limits *limits,
				       unsigned int flags);
void imap_parser_destroy(struct imap_parser **_parser);

/* Changes limits (after login) or flags (after ENABLE); they apply from
   the next command on. */
void imap_parser_set_limits(struct imap_parser *parser,
			    const struct imap_parser_limits *limits);
void imap_parser_set_flags(struct imap_parser *parser, unsigned int flags);
unsigned int imap_parser_get_flags(const struct imap_parser *parser);

/* Bytes the parser holds for the command being parsed (its pool, token
   buffer and argument stack), for accounting; back to a few KiB between
   commands. */
size_t imap_parser_memory_used(const struct imap_parser *parser);

/* True when part of a command has been parsed, past any literal's data,
   and the rest of it is awaited: the client has sent a literal and holds
   the command's end (a client with Nagle's algorithm on waits for an ACK
   before it sends those few bytes). */
bool imap_parser_awaits_command_end(const struct imap_parser *parser);

/* Parses input. Returns 1 with an event in *result_r, 0 when all of input
   was consumed and more is needed, -1 on an error (result_r->error). In
   every case *consumed_r says how much of input was used; the caller
   drops those bytes and calls again with the rest (and later with more).
   Everything in *result_r (parser memory) lives until the next call. After a
   non-fatal error the parser skips to the next command by itself; after a fatal
   one every call returns the same error. */
int imap_parser_parse(struct imap_parser *parser, struct span input,
		      size_t *consumed_r, struct imap_parser_result *result_r);

/* After EVENT_CONTINUE: the caller refuses the literal (unknown command,
   APPEND too large...) and answers with a tagged NO/BAD itself. The
   client does not send it (RFC 9051 7.6), so the parser drops the
   command and waits for the next one. */
void imap_parser_refuse_literal(struct imap_parser *parser);

/* The next line is not a command but raw data (RFC 9051 6.2.2
   AUTHENTICATE responses, RFC 2177 3 DONE): it comes back as
   EVENT_LINE, bounded by max_line. Only valid between commands. */
void imap_parser_expect_line(struct imap_parser *parser);

/* Overwrites with zeros the strings of the last command's arguments and
   the last raw line, once the caller is done with them: after LOGIN and
   AUTHENTICATE, so that passwords do not linger in freed memory. The
   pointers in the last result stay valid and point at zeros. */
void imap_parser_wipe(struct imap_parser *parser);

/* Argument accessors: true and the value when arg has that type. */
bool imap_arg_get_atom(const struct imap_arg *arg, const char **str_r);
/* RFC 9051 9 astring: an atom (NIL included), quoted or literal (not
   literal8, which may hold NULs). */
bool imap_arg_get_astring(const struct imap_arg *arg, const char **str_r);
/* RFC 9051 9 string: quoted or literal (not literal8). */
bool imap_arg_get_string(const struct imap_arg *arg, const char **str_r);
/* RFC 9051 9 nstring: a string, or NIL giving NULL. */
bool imap_arg_get_nstring(const struct imap_arg *arg, const char **str_r);
bool imap_arg_get_list(const struct imap_arg *arg,
		       const struct imap_arg **list_r, unsigned int *count_r);
/* True if arg is the atom name (ASCII case-insensitive). */
bool imap_arg_atom_equals(const struct imap_arg *arg, const char *name);

#endif
