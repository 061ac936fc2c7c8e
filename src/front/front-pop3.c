/* front-pop3.c - POP3 (RFC 1939) on the account store: greeting, CAPA
   (RFC 2449), STLS (RFC 2595 4), USER/PASS (RFC 1939 7) and AUTH (RFC
   5034: PLAIN, SCRAM-SHA-256 through front-sasl.h) through the vault,
   then the maildrop: STAT, LIST, UIDL, RETR, TOP, DELE, NOOP, RSET and
   QUIT with its UPDATE state.

   The maildrop is INBOX as it was at login: the UID and size of each
   message (front-pop3-maildrop.h), no bodies; RETR and TOP read one blob.
   Messages arriving later show in the next session. QUIT expunges the
   DELE'd messages in one store transaction, which is durable before
   +OK; a connection that ends any other way (drop, idle, shutdown)
   changes nothing (RFC 1939 6).

   The maildrop lock (RFC 1939 4) is a table of account ids in this front
   process: a second POP3 session of the account gets -ERR [IN-USE] (RFC
   2449 8.1.1) and stays in AUTHORIZATION. IMAP sessions do not take it
   (nor check it): they see POP3's expunges like any other session's.

   Store calls block the front's loop (SQLite); a session's memory is 16
   octets per message plus the message being sent and one part of its
   output (POP3_SEND_PART).

   SECURITY: USER, PASS and AUTH are refused before STLS on port 110, and
   neither USER nor SASL is listed in CAPA then (RFC 2595 4: the
   LOGINDISABLED equivalent). */

#include "lib.h"
#include "buf.h"
#include "ioloop.h"
#include "log.h"
#include "pool.h"
#include "blob.h"
#include "store.h"
#include "front-private.h"
#include "front-sasl.h"
#include "front-pop3-maildrop.h"

#include <inttypes.h>
#include <stdio.h>

#define POP3_MAX_ERRORS 10
/* RFC 2449 4: a command line is at most 255 octets with CRLF. */
#define POP3_MAX_COMMAND_LINE 255
/* Messages per store_fetch() while the maildrop is listed at login. */
#define POP3_FETCH_CHUNK 1000
/* Output not yet taken by the client above which the next command waits
   for it to drain (pipelined RETRs of a client that does not read would
   otherwise queue without bound). */
#define POP3_OUTPUT_HIGH (1024 * 1024)
/* RETR and TOP send a message in parts of about this size. */
#define POP3_SEND_PART (256 * 1024)

struct pop3_state {
	struct front_conn *conn;
	char *user; /* USER's argument, i_malloc'ed */
	struct front_sasl *sasl;
	bool sasl_final_sent; /* SCRAM server-final sent, awaiting "" */
	/* Logged in with the maildrop open and locked (RFC 1939 3). */
	bool transaction;
	unsigned int errors;

	/* A command waiting for the output to drain (input is paused
	   meanwhile). */
	char *deferred_line; /* i_malloc'ed */
	size_t deferred_len;
	/* A RETR or TOP being sent: the message and where it is. */
	bool sending;
	struct buf message;
	struct pop3_stuffer stuffer;

	uint64_t locked_account; /* 0 = holds no lock */
	struct store *store;
	struct blob_store *blobs;
	uint64_t inbox_id;
	struct pop3_maildrop md;
};

/* The accounts in TRANSACTION state in this process. */
static struct pop3_locks pop3_locks;

static void pop3_greet(struct front_conn *conn)
{
	struct pop3_state *state = conn->proto_state;

	state->conn = conn;
	front_conn_printf(conn, "+OK %s Marmot POP3 ready.\r\n",
			  front_global->set->hostname);
}

/* An -ERR for bad input; returns -1 once there were too many. */
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

/* pop3_err() outside line(): closes the connection itself. */
static void pop3_err_async(struct front_conn *conn, struct pop3_state *state,
			   const char *text)
{
	if (pop3_err(conn, state, text) < 0)
		front_conn_close(conn, "errors");
}

static void pop3_maildrop_close(struct pop3_state *state)
{
	if (state->blobs != NULL)
		blob_store_close(&state->blobs);
	if (state->store != NULL)
		store_close(&state->store);
	pop3_maildrop_free(&state->md);
	if (state->locked_account != 0) {
		pop3_lock_release(&pop3_locks, state->locked_account);
		state->locked_account = 0;
	}
	state->transaction = false;
}

/* Lists INBOX into state->md: UID and size only. The sizes come from
   store_fetch() in chunks of POP3_FETCH_CHUNK messages, so that the cached
   envelopes it also returns never pile up. Messages that arrive after
   store_uids() are not in this session's maildrop. */
static int pop3_maildrop_load(struct pop3_state *state, const char **error_r)
{
	struct front_conn *conn = state->conn;
	struct store_mailbox box;
	pool_t pool = pool_create("pop3 list", 16384);
	uint32_t *uids = NULL;
	unsigned int uid_count;
	int ret;

	ret = store_mailbox_lookup(state->store, "INBOX", pool, &box, error_r);
	if (ret <= 0) {
		if (ret == 0)
			*error_r = "no INBOX";
		pool_unref(&pool);
		return -1;
	}
	state->inbox_id = box.id;
	pop3_maildrop_init(&state->md, box.uidvalidity);
	if (store_uids(state->store, box.id, &uids, &uid_count, error_r) < 0) {
		pool_unref(&pool);
		return -1;
	}
	for (unsigned int i = 0; i < uid_count; i += POP3_FETCH_CHUNK) {
		unsigned int end = uid_count - i > POP3_FETCH_CHUNK
					   ? i + POP3_FETCH_CHUNK
					   : uid_count;
		struct store_message *msgs;
		unsigned int count;

		pool_clear(pool);
		if (store_fetch(state->store, box.id, uids[i], uids[end - 1],
				pool, &msgs, &count, error_r) < 0) {
			ret = -1;
			break;
		}
		/* A message expunged meanwhile is simply not there. */
		for (unsigned int j = 0; j < count; j++)
			pop3_maildrop_add(&state->md, msgs[j].uid,
					  msgs[j].size);
	}
	i_free(uids);
	pool_unref(&pool);
	if (ret < 0)
		return -1;
	log_info(conn->id, "pop3.maildrop", "messages=%u octets=%" PRIu64,
		 state->md.count, state->md.live_size);
	return 0;
}

static int pop3_maildrop_open(struct pop3_state *state, const char **error_r)
{
	struct front_conn *conn = state->conn;
	const char *data_dir = front_global->set->data_dir;
	const char *account_dir;

	account_dir = p_strdup_printf(conn->pool, "%s/accounts/%" PRIu64,
				      data_dir, conn->account_id);
	state->store =
		store_open(data_dir, conn->account_id, conn->data_key, error_r);
	if (state->store == NULL)
		return -1;
	state->blobs = blob_store_open(account_dir, conn->data_key, error_r);
	if (state->blobs == NULL)
		return -1;
	return pop3_maildrop_load(state, error_r);
}

/* The vault said OK (password or SASL): lock and open the maildrop
   (RFC 1939 7 PASS: "acquires an exclusive-access lock on the
   maildrop"). */
static void pop3_login_ok(struct pop3_state *state)
{
	struct front_conn *conn = state->conn;
	const char *error;

	if (conn->data_key == NULL) {
		/* A zero-access account whose keys are locked (or a vault
		   that sent no key): nothing here can open the store. */
		log_info(conn->id, "pop3.no_key", "account=%" PRIu64,
			 conn->account_id);
		front_conn_printf(conn, "-ERR [SYS/TEMP] The mailbox keys are "
					"not available; try again later\r\n");
		front_conn_close(conn, "no data key");
		return;
	}
	if (!pop3_lock_acquire(&pop3_locks, conn->account_id)) {
		/* RFC 2449 8.1.1: another session holds the maildrop. The
		   key goes; a new login asks the vault again. */
		log_info(conn->id, "pop3.in_use", "account=%" PRIu64,
			 conn->account_id);
		front_conn_set_session_key(conn, span_make(NULL, 0),
					   conn->quota_bytes);
		pop3_err_async(conn, state,
			       "[IN-USE] The maildrop is in use by another "
			       "POP3 session");
		return;
	}
	state->locked_account = conn->account_id;
	if (pop3_maildrop_open(state, &error) < 0) {
		log_error(conn->id, "pop3.open_failed",
			  "account=%" PRIu64 " error=%s", conn->account_id,
			  log_value(0, error));
		pop3_maildrop_close(state);
		front_conn_printf(conn, "-ERR [SYS/TEMP] Cannot open the "
					"maildrop\r\n");
		front_conn_close(conn, "maildrop open failed");
		return;
	}
	/* The store and the blob store hold their own copies. */
	front_conn_set_session_key(conn, span_make(NULL, 0), conn->quota_bytes);
	state->transaction = true;
	front_conn_printf(
		conn, "+OK Maildrop has %u messages (%" PRIu64 " octets)\r\n",
		state->md.live_count, state->md.live_size);
}

static void pop3_auth_done(struct front_conn *conn, enum auth_result result,
			   uint64_t account_id ATTR_UNUSED,
			   const char *address ATTR_UNUSED)
{
	struct pop3_state *state = conn->proto_state;

	i_free(state->user);
	switch (result) {
	case AUTH_RESULT_OK:
		pop3_login_ok(state);
		return;
	case AUTH_RESULT_FAILED:
		/* RFC 2449 8.1.2 / RFC 3206 4: [AUTH] */
		pop3_err_async(conn, state, "[AUTH] Authentication failed.");
		return;
	case AUTH_RESULT_DISABLED:
		pop3_err_async(conn, state, "[AUTH] Account disabled.");
		return;
	case AUTH_RESULT_TEMPFAIL:
		front_conn_printf(conn, "-ERR [SYS/TEMP] Temporary "
					"authentication failure.\r\n");
		return;
	}
	i_unreached();
}

static void pop3_sasl_send(void *context, const char *challenge_b64)
{
	struct pop3_state *state = context;

	/* RFC 5034 4: "+" SP base64 */
	front_conn_printf(state->conn, "+ %s\r\n", challenge_b64);
}

static void pop3_sasl_done(void *context, enum auth_result result,
			   uint64_t account_id, const char *address,
			   const char *final_b64)
{
	struct pop3_state *state = context;
	enum front_sasl_failure failure = front_sasl_failure(state->sasl);

	front_sasl_free(&state->sasl);
	if (result == AUTH_RESULT_OK && final_b64 != NULL) {
		/* RFC 5034 4: additional data with success goes in a
		   challenge that the client answers with an empty line. */
		state->sasl_final_sent = true;
		front_conn_printf(state->conn, "+ %s\r\n", final_b64);
		return;
	}
	if (result == AUTH_RESULT_FAILED &&
	    failure == FRONT_SASL_FAILURE_CANCELLED) {
		/* RFC 5034 4: "*" => -ERR */
		pop3_err_async(state->conn, state, "Authentication cancelled");
		return;
	}
	if (result == AUTH_RESULT_FAILED &&
	    failure == FRONT_SASL_FAILURE_MALFORMED) {
		pop3_err_async(state->conn, state,
			       "Malformed authentication response");
		return;
	}
	pop3_auth_done(state->conn, result, account_id, address);
}

/* A line while an AUTH exchange runs (RFC 5034 4). */
static int pop3_sasl_line(struct front_conn *conn, struct pop3_state *state,
			  struct span line)
{
	if (state->sasl_final_sent) {
		state->sasl_final_sent = false;
		if (line.len != 0) {
			/* The vault said OK, but the client did not accept
			   the server signature: no login. */
			front_conn_set_session_key(conn, span_make(NULL, 0), 0);
			return pop3_err(conn, state,
					"Authentication cancelled");
		}
		pop3_login_ok(state);
		return 0;
	}
	front_sasl_input(state->sasl, line);
	return 0;
}

static bool pop3_auth_allowed(struct front_conn *conn, struct pop3_state *state,
			      int *ret_r)
{
	*ret_r = 0;
	if (state->transaction) {
		*ret_r = pop3_err(conn, state, "Already logged in");
		return false;
	}
	if (!front_conn_is_tls(conn)) {
		/* RFC 2595 4: no password in clear text. */
		*ret_r =
			pop3_err(conn, state, "Use STLS before authenticating");
		return false;
	}
	return true;
}

static int pop3_cmd_auth(struct front_conn *conn, struct pop3_state *state,
			 struct span args)
{
	struct span argv[2];
	char *mech, *initial = NULL;
	const char *error;
	int argc, ret;

	if (!pop3_auth_allowed(conn, state, &ret))
		return ret;
	if (args.len == 0) {
		/* RFC 5034 4 leaves AUTH without a mechanism undefined;
		   clients use it to list mechanisms (RFC 1734 practice). */
		char *mechs = i_strdup(front_sasl_mechs());

		front_conn_printf(conn, "+OK\r\n");
		for (char *p = mechs, *sp; p != NULL; p = sp) {
			sp = strchr(p, ' ');
			if (sp != NULL)
				*sp++ = '\0';
			front_conn_printf(conn, "%s\r\n", p);
		}
		front_conn_printf(conn, ".\r\n");
		i_free(mechs);
		return 0;
	}
	argc = pop3_split_args(args, argv, 2);
	if (argc < 1)
		return pop3_err(conn, state,
				"Syntax: AUTH mechanism "
				"[initial-response]");
	/* Heap copies (front_sasl_start keeps neither): AUTH may be
	   repeated after temporary failures. */
	mech = i_strndup(argv[0].p, argv[0].len);
	if (argc == 2)
		initial = i_strndup(argv[1].p, argv[1].len);
	state->sasl_final_sent = false;
	state->sasl =
		front_sasl_start(conn, "pop3", mech, initial, pop3_sasl_send,
				 pop3_sasl_done, state, &error);
	i_free(mech);
	if (initial != NULL) {
		safe_memset0(initial, strlen(initial));
		i_free(initial);
	}
	if (state->sasl == NULL)
		return pop3_err(conn, state,
				"Unsupported authentication mechanism");
	return 0;
}

static int pop3_cmd_capa(struct front_conn *conn, struct pop3_state *state)
{
	/* RFC 2449 5; the list depends on the state (RFC 2449 5:
	   "capabilities available in the AUTHORIZATION state MUST be
	   announced in both states"). */
	front_conn_printf(conn, "+OK Capability list follows\r\n"
				"TOP\r\nUIDL\r\nRESP-CODES\r\n"
				"AUTH-RESP-CODE\r\nPIPELINING\r\n");
	if (!state->transaction) {
		if (!front_conn_is_tls(conn))
			front_conn_printf(conn, "STLS\r\n");
		else
			front_conn_printf(conn, "USER\r\nSASL %s\r\n",
					  front_sasl_mechs());
	}
	front_conn_printf(conn, "IMPLEMENTATION Marmot\r\n.\r\n");
	return 0;
}

/* Looks up the message-number argument of RETR, DELE, LIST n, UIDL n and
   TOP n m; sends the -ERR itself. Returns 1 with *msg_r, or the result
   of pop3_err(). */
static int pop3_msg_arg(struct front_conn *conn, struct pop3_state *state,
			struct span arg, struct pop3_msg **msg_r)
{
	enum pop3_lookup result;

	result = pop3_maildrop_lookup(&state->md, arg, msg_r);
	if (result == POP3_LOOKUP_OK)
		return 1;
	return pop3_err(conn, state, pop3_lookup_error(result));
}

/* LIST and UIDL (RFC 1939 5, 7): one message or all that are not
   deleted. */
static int pop3_cmd_list(struct front_conn *conn, struct pop3_state *state,
			 struct span args, bool uidl)
{
	struct span argv[1];
	struct pop3_msg *msg;
	char uid[POP3_UIDL_MAX];
	struct buf out = BUF_INIT;
	int argc, ret;

	argc = pop3_split_args(args, argv, 1);
	if (argc < 0)
		return pop3_err(conn, state, "Too many arguments");
	if (argc == 1) {
		if ((ret = pop3_msg_arg(conn, state, argv[0], &msg)) <= 0)
			return ret;
		if (uidl) {
			pop3_uidl(&state->md, msg, uid);
			front_conn_printf(conn, "+OK %u %s\r\n",
					  (unsigned)(msg - state->md.msgs) + 1,
					  uid);
		} else {
			front_conn_printf(conn, "+OK %u %" PRIu64 "\r\n",
					  (unsigned)(msg - state->md.msgs) + 1,
					  msg->size);
		}
		return 0;
	}
	if (uidl)
		buf_append_str(&out, "+OK Unique-id listing follows\r\n");
	else
		buf_printf(&out, "+OK %u messages (%" PRIu64 " octets)\r\n",
			   state->md.live_count, state->md.live_size);
	for (unsigned int i = 0; i < state->md.count; i++) {
		msg = &state->md.msgs[i];
		if (msg->deleted)
			continue;
		if (uidl) {
			pop3_uidl(&state->md, msg, uid);
			buf_printf(&out, "%u %s\r\n", i + 1, uid);
		} else {
			buf_printf(&out, "%u %" PRIu64 "\r\n", i + 1,
				   msg->size);
		}
	}
	buf_append_str(&out, ".\r\n");
	front_conn_write(conn, out.data, out.used);
	buf_free(&out);
	return 0;
}

/* Queues the next part of the message being sent. Returns true when it
   was the last. */
static bool pop3_send_part(struct front_conn *conn, struct pop3_state *state)
{
	struct buf out = BUF_INIT;
	bool done;

	done = pop3_stuffer_next(&state->stuffer, &out, POP3_SEND_PART);
	front_conn_write(conn, out.data, out.used);
	buf_free_secure(&out);
	if (done) {
		buf_free_secure(&state->message);
		state->sending = false;
	} else {
		front_conn_want_drained(conn);
	}
	return done;
}

/* RETR (body_lines < 0) and TOP: reads the message's blob and sends it
   dot-stuffed in parts of POP3_SEND_PART, the next when the client has
   read the last (pop3_output_drained), with input paused meanwhile: the
   session holds the message and one part. */
static int pop3_send_message(struct front_conn *conn, struct pop3_state *state,
			     struct pop3_msg *msg, int64_t body_lines)
{
	pool_t pool = pool_create("pop3 retr", 4096);
	struct store_message *msgs;
	unsigned int count;
	const char *error;
	int ret = 0;

	i_assert(!state->sending);
	buf_reset(&state->message);
	if (store_fetch(state->store, state->inbox_id, msg->uid, msg->uid, pool,
			&msgs, &count, &error) < 0 ||
	    (count == 1 && blob_get(state->blobs, msgs[0].blob_id,
				    &state->message, &error) < 0)) {
		log_error(conn->id, "pop3.read_failed",
			  "uid=%" PRIu32 " error=%s", msg->uid,
			  log_value(0, error));
		front_conn_printf(conn, "-ERR [SYS/TEMP] Cannot read the "
					"message\r\n");
		buf_free_secure(&state->message);
	} else if (count == 0) {
		/* Expunged meanwhile by an IMAP session (which does not
		   take the POP3 lock). */
		ret = pop3_err(conn, state,
			       "Message was removed by another session");
	} else {
		front_conn_printf(conn, "+OK %" PRIu64 " octets\r\n",
				  msg->size);
		pop3_stuffer_init(&state->stuffer, state->message.data,
				  state->message.used, body_lines);
		state->sending = true;
		if (!pop3_send_part(conn, state))
			front_conn_pause(conn);
	}
	pool_unref(&pool);
	return ret;
}

static int pop3_cmd_retr_top(struct front_conn *conn, struct pop3_state *state,
			     struct span args, bool top)
{
	struct span argv[2];
	struct pop3_msg *msg;
	uint64_t lines = 0;
	int argc, ret;

	argc = pop3_split_args(args, argv, 2);
	if (argc != (top ? 2 : 1))
		return pop3_err(conn, state,
				top ? "Syntax: TOP msg n" : "Syntax: RETR msg");
	if (top && span_to_u64(argv[1], INT64_MAX, &lines) < 0)
		return pop3_err(conn, state, "Invalid number of lines");
	if ((ret = pop3_msg_arg(conn, state, argv[0], &msg)) <= 0)
		return ret;
	return pop3_send_message(conn, state, msg, top ? (int64_t)lines : -1);
}

/* QUIT in TRANSACTION: the UPDATE state (RFC 1939 6). */
static void pop3_update(struct front_conn *conn, struct pop3_state *state)
{
	unsigned int deleted = state->md.count - state->md.live_count;
	const char *error;
	uint32_t *uids, *expunged;
	unsigned int expunged_count;
	pool_t pool;

	if (deleted == 0) {
		front_conn_printf(conn, "+OK Bye\r\n");
		return;
	}
	pool = pool_create("pop3 update", 1024);
	uids = p_new(pool, uint32_t, deleted);
	deleted = pop3_maildrop_deleted_uids(&state->md, uids);
	/* One transaction: all of them are removed, durably, or none. */
	if (store_expunge(state->store, state->inbox_id, uids, deleted, pool,
			  &expunged, &expunged_count, &error) < 0) {
		log_error(conn->id, "pop3.update_failed", "error=%s",
			  log_value(0, error));
		front_conn_printf(conn, "-ERR [SYS/TEMP] Some deleted messages "
					"were not removed\r\n");
	} else {
		if (expunged_count > 0)
			front_vault_usage_changed(conn->account_id);
		log_info(conn->id, "pop3.update", "deleted=%u expunged=%u",
			 deleted, expunged_count);
		front_conn_printf(conn, "+OK Bye (%u messages deleted)\r\n",
				  deleted);
	}
	pool_unref(&pool);
}

static int pop3_transaction_line(struct front_conn *conn,
				 struct pop3_state *state, struct span verb,
				 struct span args)
{
	struct span argv[1];
	struct pop3_msg *msg;
	int ret;

	if (span_eq_ci(verb, SPAN_LIT("STAT"))) {
		/* RFC 1939 5: deleted messages are not counted. */
		front_conn_printf(conn, "+OK %u %" PRIu64 "\r\n",
				  state->md.live_count, state->md.live_size);
		return 0;
	}
	if (span_eq_ci(verb, SPAN_LIT("LIST")))
		return pop3_cmd_list(conn, state, args, false);
	if (span_eq_ci(verb, SPAN_LIT("UIDL")))
		return pop3_cmd_list(conn, state, args, true);
	if (span_eq_ci(verb, SPAN_LIT("RETR")))
		return pop3_cmd_retr_top(conn, state, args, false);
	if (span_eq_ci(verb, SPAN_LIT("TOP")))
		return pop3_cmd_retr_top(conn, state, args, true);
	if (span_eq_ci(verb, SPAN_LIT("DELE"))) {
		if (pop3_split_args(args, argv, 1) != 1)
			return pop3_err(conn, state, "Syntax: DELE msg");
		if ((ret = pop3_msg_arg(conn, state, argv[0], &msg)) <= 0)
			return ret;
		pop3_maildrop_delete(&state->md, msg);
		front_conn_printf(conn, "+OK Message %u deleted\r\n",
				  (unsigned)(msg - state->md.msgs) + 1);
		return 0;
	}
	if (span_eq_ci(verb, SPAN_LIT("RSET"))) {
		pop3_maildrop_reset(&state->md);
		front_conn_printf(conn,
				  "+OK Maildrop has %u messages (%" PRIu64
				  " octets)\r\n",
				  state->md.live_count, state->md.live_size);
		return 0;
	}
	if (span_eq_ci(verb, SPAN_LIT("NOOP"))) {
		front_conn_printf(conn, "+OK\r\n");
		return 0;
	}
	if (span_eq_ci(verb, SPAN_LIT("QUIT"))) {
		pop3_update(conn, state);
		/* The lock goes now, not when the connection is freed after
		   the flush: a client that reconnects at once finds the
		   maildrop free. */
		pop3_maildrop_close(state);
		return -1;
	}
	if (span_eq_ci(verb, SPAN_LIT("USER")) ||
	    span_eq_ci(verb, SPAN_LIT("PASS")) ||
	    span_eq_ci(verb, SPAN_LIT("AUTH")) ||
	    span_eq_ci(verb, SPAN_LIT("APOP")) ||
	    span_eq_ci(verb, SPAN_LIT("STLS")))
		return pop3_err(conn, state, "Already logged in");
	return pop3_err(conn, state, "Unknown command");
}

static int pop3_line(struct front_conn *conn, struct pop3_state *state,
		     struct span line)
{
	struct span verb, args;
	int ret;

	/* RFC 5034 4: the 255-octet limit does not apply to SASL
	   responses (front-sasl bounds them). */
	if (state->sasl != NULL || state->sasl_final_sent)
		return pop3_sasl_line(conn, state, line);
	if (line.len + 2 > POP3_MAX_COMMAND_LINE)
		return pop3_err(conn, state, "Line too long");
	span_split(line, ' ', &verb, &args);

	if (span_eq_ci(verb, SPAN_LIT("CAPA")))
		return pop3_cmd_capa(conn, state);
	if (state->transaction)
		return pop3_transaction_line(conn, state, verb, args);

	/* AUTHORIZATION state (RFC 1939 4) */
	if (span_eq_ci(verb, SPAN_LIT("QUIT"))) {
		front_conn_printf(conn, "+OK Bye\r\n");
		return -1;
	}
	if (span_eq_ci(verb, SPAN_LIT("STLS"))) {
		if (front_conn_is_tls(conn))
			return pop3_err(conn, state, "TLS is already active");
		/* RFC 2595 4: +OK, then the handshake. */
		front_conn_printf(conn, "+OK Begin TLS negotiation\r\n");
		i_free(state->user);
		return front_conn_starttls(conn);
	}
	if (span_eq_ci(verb, SPAN_LIT("USER"))) {
		if (!pop3_auth_allowed(conn, state, &ret))
			return ret;
		if (args.len == 0)
			return pop3_err(conn, state, "USER needs a name");
		/* Heap memory, freed when replaced: USER may be repeated
		   any number of times. */
		i_free(state->user);
		state->user = i_strndup(args.p, args.len);
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
	if (span_eq_ci(verb, SPAN_LIT("AUTH")))
		return pop3_cmd_auth(conn, state, args);
	if (span_eq_ci(verb, SPAN_LIT("STAT")) ||
	    span_eq_ci(verb, SPAN_LIT("LIST")) ||
	    span_eq_ci(verb, SPAN_LIT("UIDL")) ||
	    span_eq_ci(verb, SPAN_LIT("RETR")) ||
	    span_eq_ci(verb, SPAN_LIT("TOP")) ||
	    span_eq_ci(verb, SPAN_LIT("DELE")) ||
	    span_eq_ci(verb, SPAN_LIT("RSET")) ||
	    span_eq_ci(verb, SPAN_LIT("NOOP")))
		return pop3_err(conn, state, "Log in first");
	return pop3_err(conn, state, "Unknown command");
}

static void pop3_deferred_free(struct pop3_state *state)
{
	if (state->deferred_line != NULL) {
		safe_memset0(state->deferred_line, state->deferred_len);
		i_free(state->deferred_line);
	}
}

static void pop3_deferred_run(void *context)
{
	struct pop3_state *state = context;
	struct front_conn *conn = state->conn;
	char *line = state->deferred_line;
	size_t len = state->deferred_len;

	state->deferred_line = NULL;
	/* A shutdown or autologout said goodbye meanwhile: the command
	   (a QUIT's UPDATE included) is not run. */
	if (!conn->closing && pop3_line(conn, state, span_make(line, len)) < 0)
		front_conn_close(conn, "protocol");
	safe_memset0(line, len);
	i_free(line);
}

static void pop3_resume_nothing(void *context ATTR_UNUSED)
{
}

static void pop3_output_drained(struct front_conn *conn)
{
	struct pop3_state *state = conn->proto_state;

	if (state->sending) {
		/* A client that reads is not idle: front-conn.c counts
		   the drained output as activity. */
		if (pop3_send_part(conn, state))
			front_conn_resume(conn, pop3_resume_nothing, state);
		return;
	}
	if (state->deferred_line != NULL)
		front_conn_resume(conn, pop3_deferred_run, state);
}

/* A shutdown waits for the message being sent (its goodbye would land
   inside the multi-line response). */
static bool pop3_busy(struct front_conn *conn)
{
	struct pop3_state *state = conn->proto_state;

	return state->sending;
}

static int pop3_input_line(struct front_conn *conn, struct span line)
{
	struct pop3_state *state = conn->proto_state;

	state->conn = conn;
	if (front_conn_output_pending(conn) >= POP3_OUTPUT_HIGH) {
		/* The client is not reading what it asked for: hold this
		   command (and the input behind it) until it does. */
		i_assert(state->deferred_line == NULL);
		state->deferred_line = i_strndup(line.p, line.len);
		state->deferred_len = line.len;
		front_conn_pause(conn);
		front_conn_want_drained(conn);
		return 0;
	}
	return pop3_line(conn, state, line);
}

static void pop3_line_too_long(struct front_conn *conn)
{
	front_conn_printf(conn, "-ERR Line too long\r\n");
}

static void pop3_tls_ready(struct front_conn *conn ATTR_UNUSED)
{
	/* RFC 2595 4: no new greeting after STLS. */
}

static void pop3_goodbye(struct front_conn *conn, bool idle)
{
	/* RFC 1939 3: an autologout does not enter the UPDATE state:
	   nothing DELE'd is removed. */
	front_conn_printf(conn, "-ERR [SYS/TEMP] %s\r\n",
			  idle ? "Autologout; idle for too long"
			       : "Server shutting down");
}

static void pop3_deinit(struct front_conn *conn)
{
	struct pop3_state *state = conn->proto_state;

	front_sasl_free(&state->sasl);
	i_free(state->user);
	pop3_deferred_free(state);
	buf_free_secure(&state->message);
	pop3_maildrop_close(state);
}

const struct front_protocol front_protocol_pop3 = {
	.name = "pop3",
	.greet = pop3_greet,
	.line = pop3_input_line,
	.line_too_long = pop3_line_too_long,
	.tls_ready = pop3_tls_ready,
	.output_drained = pop3_output_drained,
	.busy = pop3_busy,
	.goodbye = pop3_goodbye,
	.deinit = pop3_deinit,
	.state_size = sizeof(struct pop3_state),
};
