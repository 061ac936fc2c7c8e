/* front-imap.c - the IMAP listeners (143 with STARTTLS, 993): the
   connection side of the IMAP server. Bytes go to src/lib-imap's parser
   (literals, limits), commands before login are answered here
   (CAPABILITY, NOOP, LOGOUT, STARTTLS RFC 9051 6.2.1, LOGIN 6.2.3,
   AUTHENTICATE 6.2.2 with SASL-IR RFC 4959 through front-sasl.c, ID RFC
   2971, ENABLE), and after login every other command goes to the session
   (imap-session.h), IDLE (RFC 2177) included.

   SECURITY: on port 143 LOGINDISABLED is advertised and LOGIN/AUTHENTICATE
   are refused until STARTTLS (RFC 9051 6.2.3, 11.1). Before login the
   parser runs with imap_parser_limits_preauth: a line or literal beyond
   them is refused before memory is taken for it, and an oversized line
   closes the connection. Passwords are wiped from the parser's memory as
   soon as they are handed to the vault. */

#include "lib.h"
#include "buf.h"
#include "log.h"
#include "pool.h"
#include "imap-parser.h"
#include "imap-write.h"
#include "front-private.h"
#include "front-sasl.h"
#include "imap-session.h"
#include "imap-notify.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Bad commands before the connection is closed (RFC 9051 says nothing;
   Dovecot uses 10 too). */
#define IMAP_MAX_ERRORS 10

struct imap_state {
	struct front_conn *conn;
	struct imap_parser *parser;
	pool_t cmd_pool;
	struct imap_session *session;
	unsigned int errors;
	/* enum imap_enabled chosen before login (ENABLE is allowed only
	   after it, but ID is not; kept for symmetry). */
	char *auth_tag;
	struct front_sasl *sasl;
	/* The SCRAM server-final was sent as a continuation; the client's
	   empty line completes the login (RFC 9051 6.2.2). */
	bool sasl_final_sent;
	bool sasl_waiting_line;
	/* IDLE (RFC 2177): the tag, waiting for DONE. */
	char *idle_tag;
};

static void imap_capability_list(struct front_conn *conn,
				 struct imap_state *state, struct buf *out)
{
	/* RFC 9051 7.2.2; IMAP4rev1 too, for older clients (RFC 9051
	   appendix E). */
	buf_append_str(out, "IMAP4rev1 IMAP4rev2");
	if (state->session == NULL) {
		buf_append_str(out, " SASL-IR LITERAL+ ID ENABLE");
		if (!front_conn_is_tls(conn))
			buf_append_str(out, " STARTTLS LOGINDISABLED");
		else
			buf_append_str(out, " AUTH=PLAIN AUTH=SCRAM-SHA-256");
		return;
	}
	buf_append_str(out, " LITERAL+ ID ENABLE IDLE NAMESPACE UIDPLUS MOVE "
			    "UNSELECT CHILDREN CONDSTORE QRESYNC BINARY "
			    "SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED "
			    "LIST-STATUS STATUS=SIZE OBJECTID PREVIEW SAVEDATE "
			    "UTF8=ACCEPT QUOTA QUOTA=RES-STORAGE ESEARCH "
			    "SEARCHRES WITHIN SORT SORT=DISPLAY "
			    "THREAD=ORDEREDSUBJECT THREAD=REFERENCES "
			    "COMPRESS=DEFLATE NOTIFY");
	buf_printf(out, " APPENDLIMIT=%u", IMAP_APPEND_LIMIT);
}

static void imap_write(struct front_conn *conn, const struct buf *out)
{
	struct imap_state *state = conn->proto_state;

	if (out->used > 0)
		front_conn_write(conn, out->data, out->used);
	/* The sync said BYE (imap-session.c: selected mailbox deleted). */
	if (state->session != NULL && state->session->bye)
		front_conn_close(conn, "mailbox_deleted");
}

static void imap_greet(struct front_conn *conn)
{
	struct imap_state *state = conn->proto_state;
	struct buf caps = BUF_INIT;

	state->conn = conn;
	state->parser = imap_parser_create(&imap_parser_limits_preauth,
					   IMAP_PARSER_FLAG_LITERAL_PLUS);
	state->cmd_pool = pool_create("imap command", 4096);
	imap_capability_list(conn, state, &caps);
	/* RFC 9051 7.1.1: greeting with a CAPABILITY response code. */
	front_conn_printf(conn, "* OK [CAPABILITY %s] %s Marmot ready.\r\n",
			  buf_cstr(&caps), front_global->set->hostname);
	buf_free(&caps);
}

/* A login succeeded: open the account's store for the session. */
static void imap_login_ok(struct front_conn *conn, struct imap_state *state,
			  const char *tag)
{
	struct buf caps = BUF_INIT;
	const char *error;

	if (conn->data_key == NULL) {
		front_conn_printf(conn,
				  "%s NO [UNAVAILABLE] The mailbox is locked; "
				  "try again later\r\n",
				  tag);
		return;
	}
	state->session =
		imap_session_create(conn, conn->account_id, conn->data_key,
				    conn->quota_bytes, &error);
	if (state->session == NULL) {
		log_error(conn->id, "imap.store_open_failed", "error=%s",
			  log_value(0, error));
		front_conn_printf(conn,
				  "%s NO [UNAVAILABLE] The mailbox cannot be "
				  "opened now\r\n",
				  tag);
		return;
	}
	/* The stores copied the key; the connection's copy (in its own
	   guarded pages) is not needed any more. */
	front_conn_set_session_key(conn, span_make(NULL, 0), conn->quota_bytes);
	/* After login: APPEND-sized literals, BINARY literal8, UTF-8
	   quoted strings once enabled. */
	imap_parser_set_limits(state->parser, &imap_parser_limits_auth);
	imap_parser_set_flags(state->parser, IMAP_PARSER_FLAG_LITERAL_PLUS |
						     IMAP_PARSER_FLAG_BINARY);
	imap_capability_list(conn, state, &caps);
	front_conn_printf(conn, "%s OK [CAPABILITY %s] Logged in\r\n", tag,
			  buf_cstr(&caps));
	buf_free(&caps);
}

static void imap_auth_result(struct front_conn *conn, struct imap_state *state,
			     const char *tag, enum auth_result result)
{
	switch (result) {
	case AUTH_RESULT_OK:
		imap_login_ok(conn, state, tag);
		break;
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
}

static void imap_login_done(struct front_conn *conn, enum auth_result result,
			    uint64_t account_id ATTR_UNUSED,
			    const char *address ATTR_UNUSED)
{
	struct imap_state *state = conn->proto_state;

	imap_auth_result(conn, state, state->auth_tag, result);
	i_free(state->auth_tag);
}

/* LOGIN and AUTHENTICATE: once, and only under TLS. Queues the refusal. */
static bool imap_auth_allowed(struct front_conn *conn, struct imap_state *state,
			      const char *tag)
{
	if (state->session != NULL) {
		front_conn_printf(conn, "%s BAD Already logged in\r\n", tag);
		return false;
	}
	if (front_conn_is_tls(conn))
		return true;
	/* RFC 9051 6.2.3: LOGINDISABLED until STARTTLS. */
	front_conn_printf(
		conn, "%s NO [PRIVACYREQUIRED] Use STARTTLS first.\r\n", tag);
	return false;
}

static void imap_cmd_login(struct front_conn *conn, struct imap_state *state,
			   const struct imap_command *cmd)
{
	const char *user, *password;

	if (cmd->arg_count != 2 ||
	    !imap_arg_get_astring(&cmd->args[0], &user) ||
	    !imap_arg_get_astring(&cmd->args[1], &password)) {
		front_conn_printf(conn,
				  "%s BAD LOGIN needs a user name and a "
				  "password\r\n",
				  cmd->tag);
		state->errors++;
		return;
	}
	if (!imap_auth_allowed(conn, state, cmd->tag))
		return;
	i_free(state->auth_tag);
	state->auth_tag = i_strdup(cmd->tag);
	front_conn_auth(conn, "imap", user, (const uint8_t *)password,
			cmd->args[1].len, imap_login_done);
	imap_parser_wipe(state->parser);
}

static void imap_sasl_send(void *context, const char *challenge_b64)
{
	struct imap_state *state = context;

	/* RFC 9051 6.2.2: a continuation with the base64 challenge. */
	front_conn_printf(state->conn, "+ %s\r\n", challenge_b64);
	state->sasl_waiting_line = true;
	imap_parser_expect_line(state->parser);
}

static void imap_sasl_done(void *context, enum auth_result result,
			   uint64_t account_id ATTR_UNUSED,
			   const char *address ATTR_UNUSED,
			   const char *final_b64)
{
	struct imap_state *state = context;
	struct front_conn *conn = state->conn;
	enum front_sasl_failure failure = front_sasl_failure(state->sasl);

	front_sasl_free(&state->sasl);
	if (result == AUTH_RESULT_OK && final_b64 != NULL) {
		/* RFC 9051 6.2.2: the server's final data goes in a
		   continuation, answered by an empty line. */
		front_conn_printf(conn, "+ %s\r\n", final_b64);
		state->sasl_final_sent = true;
		state->sasl_waiting_line = true;
		imap_parser_expect_line(state->parser);
		return;
	}
	if (result == AUTH_RESULT_FAILED &&
	    failure == FRONT_SASL_FAILURE_CANCELLED) {
		front_conn_printf(conn, "%s BAD Authentication cancelled\r\n",
				  state->auth_tag);
	} else if (result == AUTH_RESULT_FAILED &&
		   failure == FRONT_SASL_FAILURE_MALFORMED) {
		front_conn_printf(conn,
				  "%s BAD Malformed authentication "
				  "exchange\r\n",
				  state->auth_tag);
	} else {
		imap_auth_result(conn, state, state->auth_tag, result);
	}
	i_free(state->auth_tag);
}

static void imap_cmd_authenticate(struct front_conn *conn,
				  struct imap_state *state,
				  const struct imap_command *cmd)
{
	const char *mech, *initial = NULL, *error;

	if (cmd->arg_count < 1 || cmd->arg_count > 2 ||
	    !imap_arg_get_atom(&cmd->args[0], &mech) ||
	    (cmd->arg_count == 2 &&
	     !imap_arg_get_atom(&cmd->args[1], &initial))) {
		front_conn_printf(conn,
				  "%s BAD AUTHENTICATE needs a mechanism\r\n",
				  cmd->tag);
		state->errors++;
		return;
	}
	if (!imap_auth_allowed(conn, state, cmd->tag))
		return;
	if (strcasecmp(mech, "PLAIN") != 0 &&
	    strcasecmp(mech, "SCRAM-SHA-256") != 0) {
		front_conn_printf(conn,
				  "%s NO [CANNOT] Unsupported authentication "
				  "mechanism\r\n",
				  cmd->tag);
		return;
	}
	i_free(state->auth_tag);
	state->auth_tag = i_strdup(cmd->tag);
	state->sasl_final_sent = false;
	/* RFC 4959 3: SASL-IR initial response ("=" is empty). */
	state->sasl =
		front_sasl_start(conn, "imap", mech, initial, imap_sasl_send,
				 imap_sasl_done, state, &error);
	imap_parser_wipe(state->parser);
	if (state->sasl == NULL) {
		front_conn_printf(conn, "%s NO [CANNOT] %s\r\n", cmd->tag,
				  error);
		i_free(state->auth_tag);
	}
}

static void imap_sasl_line(struct front_conn *conn, struct imap_state *state,
			   struct span line)
{
	state->sasl_waiting_line = false;
	if (state->sasl_final_sent) {
		state->sasl_final_sent = false;
		if (line.len != 0)
			front_conn_printf(conn,
					  "%s BAD Authentication cancelled\r\n",
					  state->auth_tag);
		else
			imap_auth_result(conn, state, state->auth_tag,
					 AUTH_RESULT_OK);
		i_free(state->auth_tag);
		return;
	}
	if (state->sasl != NULL)
		front_sasl_input(state->sasl, line);
	imap_parser_wipe(state->parser);
}

static int imap_cmd_starttls(struct front_conn *conn, struct imap_state *state,
			     const struct imap_command *cmd)
{
	if (front_conn_is_tls(conn) || state->session != NULL) {
		front_conn_printf(conn, "%s BAD TLS is already active\r\n",
				  cmd->tag);
		return 0;
	}
	/* RFC 9051 6.2.1: the tagged OK, then the handshake. */
	front_conn_printf(conn, "%s OK Begin TLS negotiation now\r\n",
			  cmd->tag);
	return front_conn_starttls(conn);
}

static void imap_cmd_idle(struct front_conn *conn, struct imap_state *state,
			  const struct imap_command *cmd)
{
	struct buf out = BUF_INIT;

	if (cmd->arg_count != 0) {
		front_conn_printf(conn, "%s BAD IDLE takes no arguments\r\n",
				  cmd->tag);
		return;
	}
	/* RFC 2177 3: a continuation, then updates until DONE. */
	i_free(state->idle_tag);
	state->idle_tag = i_strdup(cmd->tag);
	state->session->idling = true;
	buf_append_str(&out, "+ idling\r\n");
	/* RFC 5465 4: IDLE sends what NOTIFY asked for. */
	imap_notify_sync_point(state->session, IMAP_NOTIFY_IN_IDLE, true, &out);
	imap_write(conn, &out);
	buf_free(&out);
	imap_parser_expect_line(state->parser);
}

static void imap_idle_line(struct front_conn *conn, struct imap_state *state,
			   struct span line)
{
	struct buf out = BUF_INIT;

	state->session->idling = false;
	imap_notify_sync_point(state->session, IMAP_NOTIFY_IN_IDLE, true, &out);
	if (span_eq_ci(line, SPAN_LIT("DONE")))
		imap_write_status(&out, state->idle_tag, IMAP_STATUS_OK, NULL,
				  "IDLE terminated");
	else
		imap_write_status(&out, state->idle_tag, IMAP_STATUS_BAD, NULL,
				  "Expected DONE");
	imap_write(conn, &out);
	buf_free(&out);
	i_free(state->idle_tag);
}

/* Produces further parts of a command answering in parts while the
   output drains at once. Returns true when it completed, false when it
   waits for the output to drain (input paused; imap_output_drained()
   goes on). */
static bool imap_continue(struct front_conn *conn, struct imap_state *state)
{
	while (state->session->pending != NULL) {
		struct buf out = BUF_INIT;

		if (front_conn_output_pending(conn) > 0) {
			front_conn_want_drained(conn);
			if (!conn->auth_pending)
				front_conn_pause(conn);
			return false;
		}
		(void)imap_session_continue(state->session, &out);
		imap_write(conn, &out);
		buf_free(&out);
	}
	return true;
}

static void imap_resume_nothing(void *context ATTR_UNUSED)
{
}

static void imap_output_drained(struct front_conn *conn)
{
	struct imap_state *state = conn->proto_state;

	if (state->session == NULL || state->session->pending == NULL)
		return;
	if (imap_continue(conn, state))
		front_conn_resume(conn, imap_resume_nothing, NULL);
}

/* Returns -1 when the connection is to be closed, 1 when no further
   input is to be read now. */
static int imap_command(struct front_conn *conn, struct imap_state *state,
			const struct imap_command *cmd)
{
	const char *name = cmd->name;

	if (strcmp(name, "CAPABILITY") == 0) {
		struct buf caps = BUF_INIT;

		imap_capability_list(conn, state, &caps);
		front_conn_printf(conn,
				  "* CAPABILITY %s\r\n%s OK CAPABILITY "
				  "completed\r\n",
				  buf_cstr(&caps), cmd->tag);
		buf_free(&caps);
		return 0;
	}
	if (strcmp(name, "LOGOUT") == 0) {
		/* RFC 9051 6.1.3 */
		front_conn_printf(conn,
				  "* BYE Logging out\r\n%s OK LOGOUT "
				  "completed\r\n",
				  cmd->tag);
		return -1;
	}
	if (state->session == NULL) {
		if (strcmp(name, "NOOP") == 0) {
			front_conn_printf(conn, "%s OK NOOP completed\r\n",
					  cmd->tag);
		} else if (strcmp(name, "STARTTLS") == 0) {
			/* 1: stop, the rest of the input was dropped. */
			return imap_cmd_starttls(conn, state, cmd) < 0 ? -1 : 1;
		} else if (strcmp(name, "LOGIN") == 0) {
			imap_cmd_login(conn, state, cmd);
		} else if (strcmp(name, "AUTHENTICATE") == 0) {
			imap_cmd_authenticate(conn, state, cmd);
		} else if (strcmp(name, "ID") == 0) {
			/* RFC 2971 3: allowed before login. */
			front_conn_printf(conn,
					  "* ID (\"name\" \"Marmot\")\r\n%s OK "
					  "ID completed\r\n",
					  cmd->tag);
		} else {
			front_conn_printf(conn,
					  "%s BAD Unknown command or not "
					  "allowed before login\r\n",
					  cmd->tag);
			state->errors++;
		}
		return 0;
	}
	if (strcmp(name, "LOGIN") == 0 || strcmp(name, "AUTHENTICATE") == 0 ||
	    strcmp(name, "STARTTLS") == 0) {
		front_conn_printf(conn, "%s BAD Already logged in\r\n",
				  cmd->tag);
		return 0;
	}
	if (strcmp(name, "IDLE") == 0) {
		imap_cmd_idle(conn, state, cmd);
		return 0;
	}

	const struct imap_arg *args = cmd->args;
	unsigned int arg_count = cmd->arg_count;
	bool uid = false;
	const char *sub;

	if (strcmp(name, "UID") == 0) {
		/* RFC 9051 6.4.9: UID COPY/MOVE/FETCH/SEARCH/STORE/EXPUNGE */
		if (arg_count == 0 || !imap_arg_get_atom(&args[0], &sub)) {
			front_conn_printf(conn,
					  "%s BAD UID needs a command\r\n",
					  cmd->tag);
			state->errors++;
			return 0;
		}
		name = sub;
		uid = true;
		args++;
		arg_count--;
	}
	const struct imap_cmd_def *def = imap_session_find(name);

	if (def == NULL) {
		front_conn_printf(conn, "%s BAD Unknown command\r\n", cmd->tag);
		state->errors++;
		return 0;
	}
	struct buf out = BUF_INIT;
	bool done;

	pool_clear(state->cmd_pool);
	done = imap_session_execute(state->session, def, cmd->tag, uid, args,
				    arg_count, &out, state->cmd_pool);
	imap_write(conn, &out);
	buf_free(&out);
	if (!done && !imap_continue(conn, state)) {
		/* 1: stop reading commands until the rest is written. */
		return 1;
	}
	/* UTF-8 quoted strings once IMAP4rev2 or UTF8=ACCEPT is enabled
	   (RFC 9051 9, RFC 6855 3). */
	if ((state->session->enabled &
	     (IMAP_ENABLED_REV2 | IMAP_ENABLED_UTF8)) != 0)
		imap_parser_set_flags(state->parser,
				      imap_parser_get_flags(state->parser) |
					      IMAP_PARSER_FLAG_UTF8);
	return 0;
}

static size_t imap_input(struct front_conn *conn, struct span data)
{
	struct imap_state *state = conn->proto_state;
	size_t total = 0;

	while (!conn->auth_pending && !conn->closing && !conn->destroyed) {
		struct imap_parser_result res;
		size_t consumed;
		int ret;

		ret = imap_parser_parse(state->parser, span_skip(data, total),
					&consumed, &res);
		total += consumed;
		if (ret == 0) {
			/* imaplib sends APPEND's literal and the CRLF after
			   it in two writes; with Nagle on, the CRLF waits
			   for our ACK of the literal. */
			if (imap_parser_awaits_command_end(state->parser))
				front_conn_quickack(conn);
			break;
		}
		if (ret < 0) {
			struct buf out = BUF_INIT;

			imap_write_parser_error(&out, &res.error);
			imap_write(conn, &out);
			buf_free(&out);
			if (res.error.fatal) {
				front_conn_close(conn, "protocol");
				break;
			}
			if (++state->errors >= IMAP_MAX_ERRORS) {
				front_conn_printf(conn,
						  "* BYE Too many errors\r\n");
				front_conn_close(conn, "errors");
				break;
			}
			continue;
		}
		switch (res.event) {
		case IMAP_PARSER_EVENT_CONTINUE:
			/* RFC 9051 7.6: the literal may be sent. The
			   parser has checked it against the limits. */
			front_conn_printf(conn, "+ OK\r\n");
			break;
		case IMAP_PARSER_EVENT_LINE:
			if (state->idle_tag != NULL)
				imap_idle_line(conn, state, res.line);
			else if (state->sasl_waiting_line)
				imap_sasl_line(conn, state, res.line);
			break;
		case IMAP_PARSER_EVENT_COMMAND:
			ret = imap_command(conn, state, &res.cmd);
			if (ret < 0) {
				front_conn_close(conn, "logout");
				return total;
			}
			if (ret > 0)
				return total;
			if (state->errors >= IMAP_MAX_ERRORS) {
				front_conn_printf(conn,
						  "* BYE Too many errors\r\n");
				front_conn_close(conn, "errors");
				return total;
			}
			break;
		}
	}
	return total;
}

static void imap_line_too_long(struct front_conn *conn)
{
	front_conn_printf(conn, "* BYE Line too long\r\n");
}

static void imap_tls_ready(struct front_conn *conn ATTR_UNUSED)
{
	/* RFC 9051 6.2.1: no greeting after the handshake. */
}

static void imap_goodbye(struct front_conn *conn, bool idle)
{
	/* RFC 9051 7.1.5: BYE before an autologout or a shutdown. */
	front_conn_printf(conn, "* BYE %s\r\n",
			  idle ? "Autologout; idle for too long"
			       : "Server shutting down");
}

static void imap_deinit(struct front_conn *conn)
{
	struct imap_state *state = conn->proto_state;

	front_sasl_free(&state->sasl);
	imap_session_destroy(&state->session);
	imap_parser_destroy(&state->parser);
	if (state->cmd_pool != NULL)
		pool_unref(&state->cmd_pool);
	i_free(state->auth_tag);
	i_free(state->idle_tag);
}

const struct front_protocol front_protocol_imap = {
	.name = "imap",
	.greet = imap_greet,
	.input = imap_input,
	.line_too_long = imap_line_too_long,
	.tls_ready = imap_tls_ready,
	.output_drained = imap_output_drained,
	.goodbye = imap_goodbye,
	.deinit = imap_deinit,
	.state_size = sizeof(struct imap_state),
};
