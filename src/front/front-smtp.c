/* front-smtp.c - the SMTP and submission listeners' wiring: greeting,
   EHLO with the extensions that work today, STARTTLS (RFC 3207) and AUTH
   PLAIN/LOGIN on submission (RFC 4954, RFC 4616) through the vault. Mail
   transactions arrive with the SMTP issue, which replaces this file's
   command handling with src/lib-smtp; until then MAIL is answered with a
   temporary failure so that a sending server keeps the message queued.

   SECURITY: AUTH is offered only on submission ports and only under TLS;
   on port 25 it is never offered. STARTTLS discards any pipelined
   plaintext (stream.c) and resets the session (RFC 3207 4.2). */

#include "lib.h"
#include "log.h"
#include "front-private.h"

#include <sodium.h>
#include <stdio.h>

/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets with CRLF. */
#define SMTP_MAX_COMMAND_LINE 512
#define SMTP_MAX_ERRORS 10

enum smtp_auth_step {
	SMTP_AUTH_NONE,
	SMTP_AUTH_PLAIN_RESPONSE,
	SMTP_AUTH_LOGIN_USER,
	SMTP_AUTH_LOGIN_PASSWORD,
};

struct smtp_state {
	bool ehlo;
	bool authenticated;
	unsigned int errors;
	enum smtp_auth_step auth_step;
	char *login_user;
};

enum smtp_cmd_flags {
	SMTP_CMD_ANY = 0,
	SMTP_CMD_NEEDS_EHLO = 0x01,
};

struct smtp_command_def {
	const char *name;
	enum smtp_cmd_flags flags;
	void (*handler)(struct front_conn *conn, struct smtp_state *state,
			struct span args);
};

static bool smtp_is_submission(const struct front_conn *conn)
{
	return conn->kind == SETTINGS_PORT_SUBMISSION ||
	       conn->kind == SETTINGS_PORT_SUBMISSIONS;
}

static bool smtp_auth_offered(const struct front_conn *conn)
{
	/* RFC 4954 4 leaves policy to the server: ours is TLS first. */
	return smtp_is_submission(conn) && front_conn_is_tls(conn);
}

static void smtp_greet(struct front_conn *conn)
{
	/* RFC 5321 4.2 / 4.3.1: 220 <domain> greeting. */
	front_conn_printf(conn, "220 %s ESMTP Marmot\r\n",
			  front_global->set->hostname);
}

static void smtp_reply_error(struct front_conn *conn, struct smtp_state *state,
			     const char *reply)
{
	front_conn_printf(conn, "%s\r\n", reply);
	if (++state->errors >= SMTP_MAX_ERRORS) {
		front_conn_printf(conn,
				  "421 4.7.0 %s Too many errors, closing "
				  "connection\r\n",
				  front_global->set->hostname);
		front_conn_close(conn, "too many errors");
	}
}

static void smtp_cmd_ehlo(struct front_conn *conn, struct smtp_state *state,
			  struct span args)
{
	const char *ext[8];
	unsigned int n = 0;

	if (args.len == 0) {
		smtp_reply_error(conn, state, "501 5.5.4 EHLO needs a domain");
		return;
	}
	state->ehlo = true;
	/* RFC 2034: enhanced status codes are in every reply we send. */
	ext[n++] = "ENHANCEDSTATUSCODES";
	if (!front_conn_is_tls(conn))
		ext[n++] = "STARTTLS"; /* RFC 3207 4 */
	if (smtp_auth_offered(conn))
		ext[n++] = "AUTH PLAIN LOGIN"; /* RFC 4954 3 */
	front_conn_printf(conn, "250-%s Hello\r\n",
			  front_global->set->hostname);
	for (unsigned int i = 0; i < n; i++)
		front_conn_printf(conn, "250%c%s\r\n", i + 1 == n ? ' ' : '-',
				  ext[i]);
}

static void smtp_cmd_helo(struct front_conn *conn, struct smtp_state *state,
			  struct span args)
{
	if (args.len == 0) {
		smtp_reply_error(conn, state, "501 5.5.4 HELO needs a domain");
		return;
	}
	state->ehlo = true;
	front_conn_printf(conn, "250 %s\r\n", front_global->set->hostname);
}

static void smtp_cmd_starttls(struct front_conn *conn, struct smtp_state *state,
			      struct span args)
{
	if (front_conn_is_tls(conn)) {
		smtp_reply_error(conn, state, "503 5.5.1 TLS already active");
		return;
	}
	if (args.len > 0) {
		/* RFC 3207 4: STARTTLS takes no parameters. */
		smtp_reply_error(conn, state, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	front_conn_printf(conn, "220 2.0.0 Ready to start TLS\r\n");
	if (front_conn_starttls(conn) < 0) {
		front_conn_close(conn, "starttls");
		return;
	}
	/* RFC 3207 4.2: discard all knowledge obtained from the client. */
	memset(state, 0, sizeof(*state));
}

static void smtp_auth_done(struct front_conn *conn, enum auth_result result,
			   uint64_t account_id, const char *address)
{
	struct smtp_state *state = conn->proto_state;

	switch (result) {
	case AUTH_RESULT_OK:
		state->authenticated = true;
		front_conn_printf(conn,
				  "235 2.7.0 Authentication successful\r\n");
		break;
	case AUTH_RESULT_FAILED:
		smtp_reply_error(conn, state,
				 "535 5.7.8 Authentication credentials "
				 "invalid");
		break;
	case AUTH_RESULT_DISABLED:
		smtp_reply_error(conn, state, "535 5.7.8 Account disabled");
		break;
	case AUTH_RESULT_TEMPFAIL:
		/* RFC 4954 6: 454 4.7.0 temporary authentication failure */
		front_conn_printf(conn, "454 4.7.0 Temporary authentication "
					"failure\r\n");
		break;
	}
}

static void smtp_auth_plain(struct front_conn *conn, struct smtp_state *state,
			    struct span response)
{
	const char *user;
	uint8_t *password;
	size_t password_len;

	if (front_sasl_plain_decode(conn->pool, response, &user, &password,
				    &password_len) < 0) {
		smtp_reply_error(conn, state,
				 "501 5.5.2 Malformed AUTH PLAIN response");
		return;
	}
	front_conn_auth(conn, "smtp", user, password, password_len,
			smtp_auth_done);
	safe_memset0(password, password_len);
}

static bool smtp_base64_decode(struct front_conn *conn, struct span b64,
			       char **out_r)
{
	size_t len = 0, max = b64.len / 4 * 3 + 3;
	char *bin;

	if (b64.len > 2048)
		return false;
	bin = p_malloc(conn->pool, max + 1);
	if (sodium_base642bin((unsigned char *)bin, max, (const char *)b64.p,
			      b64.len, NULL, &len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    memchr(bin, '\0', len) != NULL)
		return false;
	bin[len] = '\0';
	*out_r = bin;
	return true;
}

static void smtp_cmd_auth(struct front_conn *conn, struct smtp_state *state,
			  struct span args)
{
	struct span mech, initial;

	if (!smtp_is_submission(conn)) {
		smtp_reply_error(conn, state,
				 "503 5.5.1 AUTH is not available on this "
				 "port");
		return;
	}
	if (!front_conn_is_tls(conn)) {
		/* RFC 3207 4 / RFC 4954 4: must use STARTTLS first. */
		smtp_reply_error(conn, state,
				 "530 5.7.0 Must issue a STARTTLS command "
				 "first");
		return;
	}
	if (state->authenticated) {
		/* RFC 4954 4: AUTH is not allowed after success. */
		smtp_reply_error(conn, state,
				 "503 5.5.1 Already authenticated");
		return;
	}
	span_split(args, ' ', &mech, &initial);
	if (span_eq_ci(mech, SPAN_LIT("PLAIN"))) {
		if (initial.len == 0) {
			state->auth_step = SMTP_AUTH_PLAIN_RESPONSE;
			front_conn_printf(conn, "334 \r\n");
			return;
		}
		smtp_auth_plain(conn, state, initial);
	} else if (span_eq_ci(mech, SPAN_LIT("LOGIN"))) {
		char *user;

		if (initial.len > 0) {
			if (!smtp_base64_decode(conn, initial, &user)) {
				smtp_reply_error(conn, state,
						 "501 5.5.2 Malformed base64");
				return;
			}
			state->login_user = user;
			state->auth_step = SMTP_AUTH_LOGIN_PASSWORD;
			front_conn_printf(conn, "334 UGFzc3dvcmQ6\r\n");
			return;
		}
		state->auth_step = SMTP_AUTH_LOGIN_USER;
		/* "Username:" (draft-murchison-sasl-login 2.1) */
		front_conn_printf(conn, "334 VXNlcm5hbWU6\r\n");
	} else {
		smtp_reply_error(conn, state,
				 "504 5.5.4 Unrecognized authentication "
				 "type");
	}
}

static void smtp_auth_continue(struct front_conn *conn,
			       struct smtp_state *state, struct span line)
{
	enum smtp_auth_step step = state->auth_step;
	char *text;

	state->auth_step = SMTP_AUTH_NONE;
	if (span_eq(line, SPAN_LIT("*"))) {
		/* RFC 4954 4: the client cancelled the exchange. */
		smtp_reply_error(conn, state,
				 "501 5.0.0 Authentication cancelled");
		return;
	}
	switch (step) {
	case SMTP_AUTH_PLAIN_RESPONSE:
		smtp_auth_plain(conn, state, line);
		return;
	case SMTP_AUTH_LOGIN_USER:
		if (!smtp_base64_decode(conn, line, &text)) {
			smtp_reply_error(conn, state,
					 "501 5.5.2 Malformed base64");
			return;
		}
		state->login_user = text;
		state->auth_step = SMTP_AUTH_LOGIN_PASSWORD;
		front_conn_printf(conn, "334 UGFzc3dvcmQ6\r\n");
		return;
	case SMTP_AUTH_LOGIN_PASSWORD:
		if (!smtp_base64_decode(conn, line, &text)) {
			smtp_reply_error(conn, state,
					 "501 5.5.2 Malformed base64");
			return;
		}
		front_conn_auth(conn, "smtp", state->login_user,
				(const uint8_t *)text, strlen(text),
				smtp_auth_done);
		safe_memset0(text, strlen(text));
		return;
	case SMTP_AUTH_NONE:
		break;
	}
	i_unreached();
}

static void smtp_cmd_mail(struct front_conn *conn, struct smtp_state *state,
			  struct span args)
{
	if (smtp_is_submission(conn) && !state->authenticated) {
		smtp_reply_error(conn, state,
				 "530 5.7.0 Authentication required");
		return;
	}
	/* Temporary, so that senders keep the message queued until the
	   SMTP issue lands mail transactions. */
	front_conn_printf(conn, "451 4.3.2 Mail transactions are not enabled "
				"on this server yet\r\n");
}

static void smtp_cmd_need_mail(struct front_conn *conn,
			       struct smtp_state *state, struct span args)
{
	smtp_reply_error(conn, state, "503 5.5.1 Bad sequence of commands");
}

static void smtp_cmd_ok(struct front_conn *conn, struct smtp_state *state,
			struct span args)
{
	front_conn_printf(conn, "250 2.0.0 OK\r\n");
}

static void smtp_cmd_vrfy(struct front_conn *conn, struct smtp_state *state,
			  struct span args)
{
	/* RFC 5321 3.5.3: 252 when we won't verify but would accept. */
	front_conn_printf(conn, "252 2.5.0 Cannot VRFY user\r\n");
}

static void smtp_cmd_help(struct front_conn *conn, struct smtp_state *state,
			  struct span args)
{
	front_conn_printf(conn, "214 2.0.0 See https://www.rfc-editor.org/"
				"rfc/rfc5321\r\n");
}

static void smtp_cmd_quit(struct front_conn *conn, struct smtp_state *state,
			  struct span args)
{
	front_conn_printf(conn, "221 2.0.0 %s Bye\r\n",
			  front_global->set->hostname);
	front_conn_close(conn, "quit");
}

static const struct smtp_command_def smtp_commands[] = {
	{ "EHLO", SMTP_CMD_ANY, smtp_cmd_ehlo },
	{ "HELO", SMTP_CMD_ANY, smtp_cmd_helo },
	{ "STARTTLS", SMTP_CMD_NEEDS_EHLO, smtp_cmd_starttls },
	{ "AUTH", SMTP_CMD_NEEDS_EHLO, smtp_cmd_auth },
	{ "MAIL", SMTP_CMD_NEEDS_EHLO, smtp_cmd_mail },
	{ "RCPT", SMTP_CMD_NEEDS_EHLO, smtp_cmd_need_mail },
	{ "DATA", SMTP_CMD_NEEDS_EHLO, smtp_cmd_need_mail },
	{ "BDAT", SMTP_CMD_NEEDS_EHLO, smtp_cmd_need_mail },
	{ "RSET", SMTP_CMD_ANY, smtp_cmd_ok },
	{ "NOOP", SMTP_CMD_ANY, smtp_cmd_ok },
	{ "VRFY", SMTP_CMD_ANY, smtp_cmd_vrfy },
	{ "HELP", SMTP_CMD_ANY, smtp_cmd_help },
	{ "QUIT", SMTP_CMD_ANY, smtp_cmd_quit },
};

static int smtp_line(struct front_conn *conn, struct span line)
{
	struct smtp_state *state = conn->proto_state;
	struct span verb, args;

	if (line.len + 2 > SMTP_MAX_COMMAND_LINE &&
	    state->auth_step == SMTP_AUTH_NONE) {
		smtp_reply_error(conn, state, "500 5.5.2 Line too long");
		return 0;
	}
	if (state->auth_step != SMTP_AUTH_NONE) {
		smtp_auth_continue(conn, state, line);
		return 0;
	}
	span_split(line, ' ', &verb, &args);
	args = span_trim(args);
	for (unsigned int i = 0; i < N_ELEMENTS(smtp_commands); i++) {
		const struct smtp_command_def *def = &smtp_commands[i];

		if (!span_eq_ci(verb, span_from_cstr(def->name)))
			continue;
		if ((def->flags & SMTP_CMD_NEEDS_EHLO) != 0 && !state->ehlo) {
			/* RFC 5321 4.1.4: EHLO first. */
			smtp_reply_error(conn, state,
					 "503 5.5.1 Send EHLO first");
			return 0;
		}
		def->handler(conn, state, args);
		return 0;
	}
	smtp_reply_error(conn, state,
			 "500 5.5.2 Syntax error, command unrecognized");
	return 0;
}

static void smtp_line_too_long(struct front_conn *conn)
{
	front_conn_printf(conn, "500 5.5.2 Line too long\r\n");
}

static void smtp_tls_ready(struct front_conn *conn)
{
	/* RFC 3207 4.2: no greeting after the handshake; the client
	   sends EHLO again. */
}

static void smtp_goodbye(struct front_conn *conn, bool idle)
{
	if (idle) {
		/* RFC 5321 4.5.3.2.7: the server may close idle sessions. */
		front_conn_printf(conn,
				  "421 4.4.2 %s Idle timeout, closing "
				  "connection\r\n",
				  front_global->set->hostname);
	} else {
		front_conn_printf(conn,
				  "421 4.3.2 %s Service shutting down\r\n",
				  front_global->set->hostname);
	}
}

const struct front_protocol front_protocol_smtp = {
	.name = "smtp",
	.greet = smtp_greet,
	.line = smtp_line,
	.line_too_long = smtp_line_too_long,
	.tls_ready = smtp_tls_ready,
	.goodbye = smtp_goodbye,
	.state_size = sizeof(struct smtp_state),
};
