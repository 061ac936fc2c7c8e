/* front-imap.c - the IMAP listeners' wiring: greeting with capabilities,
   CAPABILITY, NOOP, LOGOUT, STARTTLS (RFC 9051 6.2.1), LOGIN (6.2.3) and
   AUTHENTICATE PLAIN with SASL-IR (6.2.2, RFC 4959) through the vault.
   Mailbox commands arrive with the IMAP issue, which replaces this command
   handling with src/lib-imap; until then they get NO [UNAVAILABLE].

   Arguments are atoms, quoted strings and synchronising literals, enough
   for every client's LOGIN. Before authentication a literal is limited to
   IMAP_PREAUTH_MAX_LITERAL octets and a command to IMAP_MAX_ARGS
   arguments.

   SECURITY: on port 143 LOGINDISABLED is advertised and LOGIN/AUTHENTICATE
   are refused until STARTTLS (RFC 9051 6.2.3, 11.1). */

#include "lib.h"
#include "log.h"
#include "front-private.h"

#include <stdio.h>
#include <strings.h>

#define IMAP_PREAUTH_MAX_LITERAL 8192
#define IMAP_MAX_ARGS 8
#define IMAP_MAX_TAG 64
#define IMAP_MAX_ERRORS 10

struct imap_arg {
	char *value;
	size_t len;
};

struct imap_state {
	/* The command being assembled (it may span literals). */
	char *tag;
	char *name;
	struct imap_arg args[IMAP_MAX_ARGS];
	unsigned int arg_count;
	bool in_command;
	/* AUTHENTICATE PLAIN waiting for the client's response line. */
	bool auth_continue;
	char *auth_tag;
	unsigned int errors;
	bool logged_in;
};

static void imap_capability_list(struct front_conn *conn, struct buf *out)
{
	/* RFC 9051 7.2.2; IMAP4rev1 too, for older clients (RFC 9051
	   appendix E). */
	buf_append_str(out, "IMAP4rev1 IMAP4rev2 SASL-IR");
	if (conn->user != NULL)
		return;
	if (!front_conn_is_tls(conn))
		buf_append_str(out, " STARTTLS LOGINDISABLED");
	else
		buf_append_str(out, " AUTH=PLAIN");
}

static void imap_greet(struct front_conn *conn)
{
	struct buf caps = BUF_INIT;

	imap_capability_list(conn, &caps);
	/* RFC 9051 7.1.1: greeting with a CAPABILITY response code. */
	front_conn_printf(conn, "* OK [CAPABILITY %s] %s Marmot ready.\r\n",
			  buf_cstr(&caps), front_global->set->hostname);
	buf_free(&caps);
}

static void imap_reset_command(struct imap_state *state)
{
	for (unsigned int i = 0; i < state->arg_count; i++) {
		safe_memset0(state->args[i].value, state->args[i].len);
		i_free(state->args[i].value);
	}
	i_free(state->tag);
	i_free(state->name);
	state->arg_count = 0;
	state->in_command = false;
}

static int imap_bad(struct front_conn *conn, struct imap_state *state,
		    const char *tag, const char *text)
{
	front_conn_printf(conn, "%s BAD %s\r\n", tag, text);
	imap_reset_command(state);
	if (++state->errors >= IMAP_MAX_ERRORS) {
		front_conn_printf(conn, "* BYE Too many errors\r\n");
		return -1;
	}
	return 0;
}

static void imap_auth_done(struct front_conn *conn, enum auth_result result,
			   uint64_t account_id, const char *address)
{
	struct imap_state *state = conn->proto_state;
	const char *tag = state->auth_tag != NULL ? state->auth_tag : "*";

	switch (result) {
	case AUTH_RESULT_OK: {
		struct buf caps = BUF_INIT;

		state->logged_in = true;
		imap_capability_list(conn, &caps);
		front_conn_printf(conn, "%s OK [CAPABILITY %s] Logged in\r\n",
				  tag, buf_cstr(&caps));
		buf_free(&caps);
		break;
	}
	case AUTH_RESULT_FAILED:
		/* RFC 5530 3: AUTHENTICATIONFAILED */
		front_conn_printf(conn,
				  "%s NO [AUTHENTICATIONFAILED] "
				  "Authentication failed.\r\n",
				  tag);
		state->errors++;
		break;
	case AUTH_RESULT_DISABLED:
		front_conn_printf(conn,
				  "%s NO [CONTACTADMIN] Account "
				  "disabled.\r\n",
				  tag);
		break;
	case AUTH_RESULT_TEMPFAIL:
		front_conn_printf(conn,
				  "%s NO [UNAVAILABLE] Temporary "
				  "authentication failure.\r\n",
				  tag);
		break;
	}
	i_free(state->auth_tag);
}

/* LOGIN and AUTHENTICATE: once, and only under TLS. Queues the refusal. */
static bool imap_auth_allowed(struct front_conn *conn, struct imap_state *state)
{
	if (state->logged_in) {
		front_conn_printf(conn, "%s BAD Already logged in\r\n",
				  state->tag);
		return false;
	}
	if (front_conn_is_tls(conn))
		return true;
	/* RFC 9051 6.2.3: LOGINDISABLED until STARTTLS. */
	front_conn_printf(conn,
			  "%s NO [PRIVACYREQUIRED] Use STARTTLS first.\r\n",
			  state->tag);
	return false;
}

static int imap_cmd_login(struct front_conn *conn, struct imap_state *state)
{
	if (state->arg_count != 2)
		return imap_bad(conn, state, state->tag,
				"LOGIN needs a user name and a password");
	if (!imap_auth_allowed(conn, state))
		return 0;
	i_free(state->auth_tag);
	state->auth_tag = i_strdup(state->tag);
	front_conn_auth(conn, "imap", state->args[0].value,
			(const uint8_t *)state->args[1].value,
			state->args[1].len, imap_auth_done);
	return 0;
}

static void imap_auth_plain(struct front_conn *conn, struct imap_state *state,
			    struct span response)
{
	const char *user;
	uint8_t *password;
	size_t password_len;

	if (front_sasl_plain_decode(conn->pool, response, &user, &password,
				    &password_len) < 0) {
		front_conn_printf(conn,
				  "%s NO [AUTHENTICATIONFAILED] Malformed "
				  "PLAIN response.\r\n",
				  state->auth_tag);
		i_free(state->auth_tag);
		return;
	}
	front_conn_auth(conn, "imap", user, password, password_len,
			imap_auth_done);
	safe_memset0(password, password_len);
}

static int imap_cmd_authenticate(struct front_conn *conn,
				 struct imap_state *state)
{
	if (state->arg_count < 1 || state->arg_count > 2)
		return imap_bad(conn, state, state->tag,
				"AUTHENTICATE needs a mechanism");
	if (!imap_auth_allowed(conn, state))
		return 0;
	if (strcasecmp(state->args[0].value, "PLAIN") != 0) {
		front_conn_printf(conn,
				  "%s NO [CANNOT] Unsupported authentication "
				  "mechanism\r\n",
				  state->tag);
		return 0;
	}
	i_free(state->auth_tag);
	state->auth_tag = i_strdup(state->tag);
	if (state->arg_count == 2) {
		/* RFC 4959 3: "=" is an empty initial response */
		imap_auth_plain(
			conn, state,
			span_make(state->args[1].value, state->args[1].len));
		return 0;
	}
	/* RFC 9051 6.2.2: an empty continuation request */
	state->auth_continue = true;
	front_conn_printf(conn, "+ \r\n");
	return 0;
}

static int imap_cmd_starttls(struct front_conn *conn, struct imap_state *state)
{
	if (front_conn_is_tls(conn) || state->logged_in) {
		front_conn_printf(conn, "%s BAD TLS is already active\r\n",
				  state->tag);
		return 0;
	}
	/* RFC 9051 6.2.1: the tagged OK, then the handshake. */
	front_conn_printf(conn, "%s OK Begin TLS negotiation now\r\n",
			  state->tag);
	return front_conn_starttls(conn);
}

static int imap_execute(struct front_conn *conn, struct imap_state *state)
{
	const char *name = state->name, *tag = state->tag;
	int ret = 0;

	if (strcasecmp(name, "CAPABILITY") == 0) {
		struct buf caps = BUF_INIT;

		imap_capability_list(conn, &caps);
		front_conn_printf(conn,
				  "* CAPABILITY %s\r\n%s OK CAPABILITY "
				  "completed\r\n",
				  buf_cstr(&caps), tag);
		buf_free(&caps);
	} else if (strcasecmp(name, "NOOP") == 0) {
		front_conn_printf(conn, "%s OK NOOP completed\r\n", tag);
	} else if (strcasecmp(name, "LOGOUT") == 0) {
		/* RFC 9051 6.1.3 */
		front_conn_printf(conn,
				  "* BYE Logging out\r\n%s OK LOGOUT "
				  "completed\r\n",
				  tag);
		ret = -1;
	} else if (strcasecmp(name, "STARTTLS") == 0) {
		ret = imap_cmd_starttls(conn, state);
	} else if (strcasecmp(name, "LOGIN") == 0) {
		ret = imap_cmd_login(conn, state);
	} else if (strcasecmp(name, "AUTHENTICATE") == 0) {
		ret = imap_cmd_authenticate(conn, state);
	} else if (state->logged_in) {
		front_conn_printf(conn,
				  "%s NO [UNAVAILABLE] Mailbox access is not "
				  "enabled on this server yet\r\n",
				  tag);
	} else {
		return imap_bad(conn, state, tag,
				"Unknown command or not allowed before login");
	}
	imap_reset_command(state);
	return ret;
}

static bool imap_tag_char(uint8_t c)
{
	/* RFC 9051 9: tag = 1*<any ASTRING-CHAR except "+"> */
	return c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != '{' &&
	       c != '%' && c != '*' && c != '"' && c != '\\' && c != '+';
}

static bool imap_atom_char(uint8_t c)
{
	return c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != '{' &&
	       c != '%' && c != '*' && c != '"' && c != '\\';
}

static int imap_add_arg(struct imap_state *state, const char *value, size_t len)
{
	if (state->arg_count == IMAP_MAX_ARGS)
		return -1;
	state->args[state->arg_count].value = i_strndup(value, len);
	state->args[state->arg_count].len = len;
	state->arg_count++;
	return 0;
}

/* Parses arguments from p up to the end of the line. Returns 1 when the
   command is complete, 0 when a literal of *literal_r octets follows,
   -1 on a syntax error (*error_r set). */
static int imap_parse_args(struct imap_state *state, struct span s,
			   size_t *literal_r, const char **error_r)
{
	size_t i = 0;

	while (i < s.len) {
		if (s.p[i] != ' ') {
			*error_r = "Expected a space between arguments";
			return -1;
		}
		i++;
		if (i == s.len) {
			*error_r = "Trailing space";
			return -1;
		}
		if (s.p[i] == '"') {
			/* RFC 9051 4.3: quoted string with \" and \\ */
			char buf[1024];
			size_t n = 0;

			for (i++; i < s.len && s.p[i] != '"'; i++) {
				if (s.p[i] == '\\') {
					if (++i == s.len ||
					    (s.p[i] != '"' && s.p[i] != '\\')) {
						*error_r = "Bad escape in "
							   "quoted string";
						return -1;
					}
				}
				if (n == sizeof(buf)) {
					*error_r = "Quoted string too long";
					return -1;
				}
				buf[n++] = (char)s.p[i];
			}
			if (i == s.len) {
				*error_r = "Unterminated quoted string";
				return -1;
			}
			i++;
			if (imap_add_arg(state, buf, n) < 0) {
				*error_r = "Too many arguments";
				return -1;
			}
			safe_memset0(buf, n);
		} else if (s.p[i] == '{') {
			/* RFC 9051 4.3: literal = "{" number64 ["+"] "}"
			   CRLF *CHAR8, and it ends the line. */
			size_t start = ++i;
			uint64_t n;

			while (i < s.len && s.p[i] >= '0' && s.p[i] <= '9')
				i++;
			if (i + 1 != s.len || s.p[i] != '}' ||
			    span_to_u64(span_make(s.p + start, i - start),
					UINT64_MAX, &n) < 0) {
				*error_r = "Bad literal";
				return -1;
			}
			if (n > IMAP_PREAUTH_MAX_LITERAL) {
				*error_r = "Literal too large before login";
				return -1;
			}
			*literal_r = (size_t)n;
			return 0;
		} else {
			size_t start = i;

			while (i < s.len && s.p[i] != ' ' &&
			       imap_atom_char(s.p[i]))
				i++;
			if (i == start || (i < s.len && s.p[i] != ' ')) {
				*error_r = "Bad character in argument";
				return -1;
			}
			if (imap_add_arg(state, (const char *)s.p + start,
					 i - start) < 0) {
				*error_r = "Too many arguments";
				return -1;
			}
		}
	}
	return 1;
}

static int imap_continue_line(struct front_conn *conn, struct imap_state *state,
			      struct span rest)
{
	const char *error;
	size_t literal;
	int ret;

	ret = imap_parse_args(state, rest, &literal, &error);
	if (ret < 0)
		return imap_bad(conn, state, state->tag, error);
	if (ret == 0) {
		if (state->arg_count == IMAP_MAX_ARGS)
			return imap_bad(conn, state, state->tag,
					"Too many arguments");
		/* RFC 9051 7.5: synchronising literal, so ask for it. */
		front_conn_printf(conn, "+ Ready for literal data\r\n");
		front_conn_want_raw(conn, literal);
		return 0;
	}
	return imap_execute(conn, state);
}

static int imap_raw(struct front_conn *conn, struct span data)
{
	struct imap_state *state = conn->proto_state;

	if (imap_add_arg(state, (const char *)data.p, data.len) < 0)
		return imap_bad(conn, state, state->tag, "Too many arguments");
	/* The rest of the command follows on the next line. */
	return 0;
}

static int imap_line(struct front_conn *conn, struct span line)
{
	struct imap_state *state = conn->proto_state;
	struct span tag, rest, name;
	size_t i;

	if (state->auth_continue) {
		state->auth_continue = false;
		if (span_eq(line, SPAN_LIT("*"))) {
			/* RFC 9051 6.2.2: a "*" cancels with BAD */
			front_conn_printf(conn,
					  "%s BAD Authentication cancelled\r\n",
					  state->auth_tag);
			i_free(state->auth_tag);
			return 0;
		}
		imap_auth_plain(conn, state, line);
		return 0;
	}
	if (state->in_command)
		return imap_continue_line(conn, state, line);

	if (!span_split(line, ' ', &tag, &rest) || tag.len == 0 ||
	    tag.len > IMAP_MAX_TAG) {
		return imap_bad(conn, state, "*", "Missing tag or command");
	}
	for (i = 0; i < tag.len; i++) {
		if (!imap_tag_char(tag.p[i]))
			return imap_bad(conn, state, "*", "Invalid tag");
	}
	for (i = 0; i < rest.len && rest.p[i] != ' '; i++) {
		if (!((rest.p[i] >= 'A' && rest.p[i] <= 'Z') ||
		      (rest.p[i] >= 'a' && rest.p[i] <= 'z')))
			break;
	}
	name = span_make(rest.p, i);
	state->tag = i_strndup(tag.p, tag.len);
	if (name.len == 0 || (i < rest.len && rest.p[i] != ' '))
		return imap_bad(conn, state, state->tag, "Invalid command");
	state->name = i_strndup(name.p, name.len);
	state->in_command = true;
	return imap_continue_line(conn, state, span_skip(rest, i));
}

static void imap_line_too_long(struct front_conn *conn)
{
	front_conn_printf(conn, "* BYE Line too long\r\n");
}

static void imap_tls_ready(struct front_conn *conn)
{
	/* RFC 9051 6.2.1: no greeting after the handshake. */
}

static void imap_goodbye(struct front_conn *conn, bool idle)
{
	struct imap_state *state = conn->proto_state;

	/* RFC 9051 7.1.5: BYE before an autologout or a shutdown. */
	front_conn_printf(conn, "* BYE %s\r\n",
			  idle ? "Autologout; idle for too long"
			       : "Server shutting down");
	imap_reset_command(state);
	i_free(state->auth_tag);
}

static void imap_deinit(struct front_conn *conn)
{
	struct imap_state *state = conn->proto_state;

	imap_reset_command(state);
	i_free(state->auth_tag);
}

const struct front_protocol front_protocol_imap = {
	.name = "imap",
	.greet = imap_greet,
	.line = imap_line,
	.raw = imap_raw,
	.line_too_long = imap_line_too_long,
	.tls_ready = imap_tls_ready,
	.goodbye = imap_goodbye,
	.deinit = imap_deinit,
	.state_size = sizeof(struct imap_state),
};
