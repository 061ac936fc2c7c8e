/* front-pop3.c - the POP3 listeners' wiring: greeting, CAPA (RFC 2449),
   STLS (RFC 2595 4), USER/PASS (RFC 1939 7) and AUTH PLAIN (RFC 5034)
   through the vault, QUIT. Maildrop commands arrive with the POP3 work of
   the IMAP/POP3 issue; until then they answer -ERR [SYS/TEMP].

   SECURITY: USER, PASS and AUTH are refused before STLS on port 110, and
   USER is then not listed in CAPA (RFC 2595 4: the LOGINDISABLED
   equivalent). */

#include "lib.h"
#include "front-private.h"

#include <stdio.h>

#define POP3_MAX_ERRORS 10
/* RFC 2449 4: a command line is at most 255 octets with CRLF. */
#define POP3_MAX_COMMAND_LINE 255

struct pop3_state {
	char *user; /* pool memory */
	bool auth_continue;
	bool logged_in;
	unsigned int errors;
};

static void pop3_greet(struct front_conn *conn)
{
	front_conn_printf(conn, "+OK %s Marmot POP3 ready.\r\n",
			  front_global->set->hostname);
}

static int pop3_err(struct front_conn *conn, struct pop3_state *state,
		    const char *text)
{
	front_conn_printf(conn, "-ERR %s\r\n", text);
	if (++state->errors >= POP3_MAX_ERRORS) {
		front_conn_printf(conn, "-ERR Too many errors, closing\r\n");
		return -1;
	}
	return 0;
}

static void pop3_auth_done(struct front_conn *conn, enum auth_result result,
			   uint64_t account_id, const char *address)
{
	struct pop3_state *state = conn->proto_state;

	state->user = NULL;
	switch (result) {
	case AUTH_RESULT_OK:
		state->logged_in = true;
		front_conn_printf(conn, "+OK Logged in.\r\n");
		break;
	case AUTH_RESULT_FAILED:
		/* RFC 2449 8.1.2: [AUTH] */
		(void)pop3_err(conn, state, "[AUTH] Authentication failed.");
		break;
	case AUTH_RESULT_DISABLED:
		(void)pop3_err(conn, state, "[AUTH] Account disabled.");
		break;
	case AUTH_RESULT_TEMPFAIL:
		front_conn_printf(conn, "-ERR [SYS/TEMP] Temporary "
					"authentication failure.\r\n");
		break;
	}
}

static bool pop3_auth_allowed(struct front_conn *conn, struct pop3_state *state,
			      int *ret_r)
{
	*ret_r = 0;
	if (state->logged_in) {
		*ret_r = pop3_err(conn, state, "Already logged in");
		return false;
	}
	if (!front_conn_is_tls(conn)) {
		*ret_r = pop3_err(conn, state,
				  "[AUTH] Use STLS before authenticating");
		return false;
	}
	return true;
}

static void pop3_auth_plain(struct front_conn *conn, struct span response)
{
	struct pop3_state *state = conn->proto_state;
	const char *user;
	uint8_t *password;
	size_t password_len;

	if (front_sasl_plain_decode(conn->pool, response, &user, &password,
				    &password_len) < 0) {
		(void)pop3_err(conn, state, "[AUTH] Malformed PLAIN response");
		return;
	}
	front_conn_auth(conn, "pop3", user, password, password_len,
			pop3_auth_done);
	safe_memset0(password, password_len);
}

static int pop3_cmd_capa(struct front_conn *conn, struct pop3_state *state)
{
	/* RFC 2449 5 */
	front_conn_printf(conn, "+OK Capability list follows\r\n");
	if (!state->logged_in) {
		if (!front_conn_is_tls(conn))
			front_conn_printf(conn, "STLS\r\n");
		else
			front_conn_printf(conn, "USER\r\nSASL PLAIN\r\n");
	}
	front_conn_printf(conn, "RESP-CODES\r\nAUTH-RESP-CODE\r\n"
				"IMPLEMENTATION Marmot\r\n.\r\n");
	return 0;
}

static int pop3_line(struct front_conn *conn, struct span line)
{
	struct pop3_state *state = conn->proto_state;
	struct span verb, args;
	int ret;

	if (state->auth_continue) {
		state->auth_continue = false;
		if (span_eq(line, SPAN_LIT("*")))
			return pop3_err(conn, state,
					"Authentication cancelled");
		pop3_auth_plain(conn, line);
		return 0;
	}
	if (line.len + 2 > POP3_MAX_COMMAND_LINE)
		return pop3_err(conn, state, "Line too long");
	span_split(line, ' ', &verb, &args);

	if (span_eq_ci(verb, SPAN_LIT("QUIT"))) {
		front_conn_printf(conn, "+OK Bye\r\n");
		return -1;
	}
	if (span_eq_ci(verb, SPAN_LIT("CAPA")))
		return pop3_cmd_capa(conn, state);
	if (span_eq_ci(verb, SPAN_LIT("NOOP")) && state->logged_in) {
		front_conn_printf(conn, "+OK\r\n");
		return 0;
	}
	if (span_eq_ci(verb, SPAN_LIT("STLS"))) {
		if (front_conn_is_tls(conn) || state->logged_in)
			return pop3_err(conn, state, "TLS is already active");
		/* RFC 2595 4: +OK, then the handshake. */
		front_conn_printf(conn, "+OK Begin TLS negotiation\r\n");
		state->user = NULL;
		return front_conn_starttls(conn);
	}
	if (span_eq_ci(verb, SPAN_LIT("USER"))) {
		if (!pop3_auth_allowed(conn, state, &ret))
			return ret;
		if (args.len == 0)
			return pop3_err(conn, state, "USER needs a name");
		state->user = p_strndup(conn->pool, args.p, args.len);
		front_conn_printf(conn, "+OK\r\n");
		return 0;
	}
	if (span_eq_ci(verb, SPAN_LIT("PASS"))) {
		if (!pop3_auth_allowed(conn, state, &ret))
			return ret;
		if (state->user == NULL)
			return pop3_err(conn, state, "Send USER first");
		/* RFC 1939 7: the password is the rest of the line,
		   spaces included. */
		front_conn_auth(conn, "pop3", state->user, args.p, args.len,
				pop3_auth_done);
		return 0;
	}
	if (span_eq_ci(verb, SPAN_LIT("AUTH"))) {
		struct span mech, initial;

		if (args.len == 0) {
			/* RFC 5034 4: AUTH with no argument lists
			   mechanisms (as in the pre-standard usage). */
			front_conn_printf(conn, "+OK\r\nPLAIN\r\n.\r\n");
			return 0;
		}
		if (!pop3_auth_allowed(conn, state, &ret))
			return ret;
		span_split(args, ' ', &mech, &initial);
		if (!span_eq_ci(mech, SPAN_LIT("PLAIN")))
			return pop3_err(conn, state,
					"Unsupported authentication mechanism");
		if (initial.len == 0) {
			state->auth_continue = true;
			front_conn_printf(conn, "+ \r\n");
			return 0;
		}
		pop3_auth_plain(conn, initial);
		return 0;
	}
	if (state->logged_in) {
		front_conn_printf(conn,
				  "-ERR [SYS/TEMP] Maildrop access is not "
				  "enabled on this server yet\r\n");
		return 0;
	}
	return pop3_err(conn, state, "Unknown command");
}

static void pop3_line_too_long(struct front_conn *conn)
{
	front_conn_printf(conn, "-ERR Line too long\r\n");
}

static void pop3_tls_ready(struct front_conn *conn)
{
	/* RFC 2595 4: no new greeting after STLS. */
}

static void pop3_goodbye(struct front_conn *conn, bool idle)
{
	front_conn_printf(conn, "-ERR [SYS/TEMP] %s\r\n",
			  idle ? "Autologout; idle for too long"
			       : "Server shutting down");
}

const struct front_protocol front_protocol_pop3 = {
	.name = "pop3",
	.greet = pop3_greet,
	.line = pop3_line,
	.line_too_long = pop3_line_too_long,
	.tls_ready = pop3_tls_ready,
	.goodbye = pop3_goodbye,
	.state_size = sizeof(struct pop3_state),
};
