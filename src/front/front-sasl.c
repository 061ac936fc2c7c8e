/* front-sasl.c - SASL exchanges in the front (front-sasl.h): PLAIN and
   LOGIN through front_conn_auth(), SCRAM-SHA-256 through the vault's
   IPC_VAULT_SCRAM_START / IPC_VAULT_SCRAM_FINISH.

   SECURITY: responses come from the network. Each is bounded before it is
   decoded; PLAIN and LOGIN passwords are wiped once framed. For SCRAM the
   front only relays messages: the vault checks the proof, so a front bug
   cannot accept a wrong one. */

#include "lib.h"
#include "ioloop.h"
#include "log.h"
#include "front-private.h"
#include "front-sasl.h"
#include "scram.h"

#include <sodium.h>
#include <stdio.h>
#include <strings.h>

enum front_sasl_mech {
	FRONT_SASL_MECH_PLAIN,
	FRONT_SASL_MECH_LOGIN,
	FRONT_SASL_MECH_SCRAM_SHA_256,
};

enum front_sasl_state {
	/* A challenge was sent; the next input line is the response. */
	FRONT_SASL_STATE_WAIT_CLIENT,
	/* The vault (or a deferred failure) will answer; input is paused. */
	FRONT_SASL_STATE_WAIT_VAULT,
	FRONT_SASL_STATE_DONE,
};

/* Which client message the next response is. */
enum front_sasl_step {
	FRONT_SASL_STEP_PLAIN,
	FRONT_SASL_STEP_LOGIN_USER,
	FRONT_SASL_STEP_LOGIN_PASSWORD,
	FRONT_SASL_STEP_SCRAM_CLIENT_FIRST,
	FRONT_SASL_STEP_SCRAM_CLIENT_FINAL,
};

struct front_sasl {
	struct front_sasl *prev, *next;
	struct front_conn *conn;
	char *service;
	enum front_sasl_mech mech;
	enum front_sasl_state state;
	enum front_sasl_step step;
	enum front_sasl_failure failure;
	char *login_user;

	front_sasl_send_t *send;
	front_sasl_done_t *done;
	void *context;

	/* A failure decided in the front, reported from the ioloop. */
	struct timeout *later;
	enum auth_result later_result;
	/* SCRAM: the IPC request waiting for its reply (0 = none) and the
	   vault's session. */
	uint32_t request_id;
	uint32_t scram_session;
};

static struct front_sasl *front_sasl_list;
static uint32_t front_sasl_next_request_id = 1;

static const char *const front_sasl_mech_names[] = {
	[FRONT_SASL_MECH_PLAIN] = "PLAIN",
	[FRONT_SASL_MECH_LOGIN] = "LOGIN",
	[FRONT_SASL_MECH_SCRAM_SHA_256] = "SCRAM-SHA-256",
};

const char *front_sasl_mechs(void)
{
	return "PLAIN LOGIN SCRAM-SHA-256";
}

/* Decodes standard base64 (RFC 4648 4, padded) of at most
   FRONT_SASL_MAX_RESPONSE characters into a NUL-terminated heap buffer.
   "=" is the empty response (RFC 4954 4). Returns 0, or -1 when
   malformed or (unless nul_ok) the result holds a NUL. */
static int front_sasl_b64_decode(struct span b64, bool nul_ok, uint8_t **out_r,
				 size_t *len_r)
{
	size_t max = b64.len / 4 * 3 + 3, len = 0;
	uint8_t *bin;

	if (b64.len > FRONT_SASL_MAX_RESPONSE)
		return -1;
	bin = i_malloc(max + 1);
	if (span_eq(b64, SPAN_LIT("="))) {
		len = 0;
	} else if (sodium_base642bin(bin, max, (const char *)b64.p, b64.len,
				     NULL, &len, NULL,
				     sodium_base64_VARIANT_ORIGINAL) != 0 ||
		   (!nul_ok && memchr(bin, '\0', len) != NULL)) {
		safe_memset0(bin, max + 1);
		i_free(bin);
		return -1;
	}
	bin[len] = '\0';
	*out_r = bin;
	*len_r = len;
	return 0;
}

static char *front_sasl_b64_encode(const void *data, size_t len)
{
	size_t max =
		sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
	char *out = i_malloc(max);

	sodium_bin2base64(out, max, data, len, sodium_base64_VARIANT_ORIGINAL);
	return out;
}

static void front_sasl_send(struct front_sasl *sasl, const void *data,
			    size_t len)
{
	char *b64 = front_sasl_b64_encode(data, len);

	sasl->state = FRONT_SASL_STATE_WAIT_CLIENT;
	sasl->send(sasl->context, b64);
	i_free(b64);
}

/* Calls done once; the callback may free sasl. */
static void front_sasl_finish(struct front_sasl *sasl, enum auth_result result,
			      uint64_t account_id, const char *address,
			      const char *final_b64)
{
	i_assert(sasl->state != FRONT_SASL_STATE_DONE);
	sasl->state = FRONT_SASL_STATE_DONE;
	sasl->done(sasl->context, result, account_id, address, final_b64);
}

static void front_sasl_later_done(void *context)
{
	struct front_sasl *sasl = context;

	front_sasl_finish(sasl, sasl->later_result, 0, "", NULL);
}

static void front_sasl_later_fire(void *context)
{
	struct front_sasl *sasl = context;

	timeout_remove(&sasl->later);
	front_conn_resume(sasl->conn, front_sasl_later_done, sasl);
}

/* Ends the exchange with result from the ioloop (done is never called
   inside front_sasl_start/input), with input paused until then. */
static void front_sasl_end_later(struct front_sasl *sasl,
				 enum auth_result result)
{
	sasl->later_result = result;
	sasl->request_id = 0;
	sasl->state = FRONT_SASL_STATE_WAIT_VAULT;
	front_conn_pause(sasl->conn);
	sasl->later = timeout_add(front_global->ioloop, 0,
				  front_sasl_later_fire, sasl);
}

static void front_sasl_fail_later(struct front_sasl *sasl,
				  enum front_sasl_failure failure)
{
	log_info(sasl->conn->id, "front.sasl.failed", "mech=%s reason=%s",
		 front_sasl_mech_names[sasl->mech],
		 failure == FRONT_SASL_FAILURE_CANCELLED ? "cancelled"
							 : "malformed");
	sasl->failure = failure;
	front_sasl_end_later(sasl, AUTH_RESULT_FAILED);
}

static struct front_sasl *front_sasl_find_conn(struct front_conn *conn)
{
	for (struct front_sasl *s = front_sasl_list; s != NULL; s = s->next) {
		if (s->conn == conn &&
		    s->state == FRONT_SASL_STATE_WAIT_VAULT &&
		    s->request_id == 0 && s->later == NULL)
			return s;
	}
	return NULL;
}

/* front_conn_auth's callback (PLAIN, LOGIN): input resumes after it. */
static void front_sasl_password_done(struct front_conn *conn,
				     enum auth_result result,
				     uint64_t account_id, const char *address)
{
	struct front_sasl *sasl = front_sasl_find_conn(conn);

	if (sasl == NULL)
		return;
	front_sasl_finish(sasl, result, account_id, address, NULL);
}

static void front_sasl_password(struct front_sasl *sasl, const char *user,
				const uint8_t *password, size_t password_len)
{
	sasl->state = FRONT_SASL_STATE_WAIT_VAULT;
	front_conn_auth(sasl->conn, sasl->service, user, password, password_len,
			front_sasl_password_done);
}

static void front_sasl_plain(struct front_sasl *sasl, struct span b64)
{
	const char *user;
	uint8_t *password;
	size_t password_len;

	if (front_sasl_plain_decode(sasl->conn->pool, b64, &user, &password,
				    &password_len) < 0) {
		front_sasl_fail_later(sasl, FRONT_SASL_FAILURE_MALFORMED);
		return;
	}
	front_sasl_password(sasl, user, password, password_len);
	safe_memset0(password, password_len);
}

static void front_sasl_scram_request(struct front_sasl *sasl, struct buf *out)
{
	if (front_vault_send(front_global, out) < 0) {
		/* No vault (or too many logins waiting for it). */
		front_sasl_end_later(sasl, AUTH_RESULT_TEMPFAIL);
		return;
	}
	sasl->state = FRONT_SASL_STATE_WAIT_VAULT;
	front_conn_pause(sasl->conn);
}

static uint32_t front_sasl_new_request_id(void)
{
	uint32_t id = front_sasl_next_request_id++;

	if (front_sasl_next_request_id == 0)
		front_sasl_next_request_id = 1;
	return id;
}

static void front_sasl_scram_client_first(struct front_sasl *sasl,
					  struct span b64)
{
	struct buf out = BUF_INIT;
	uint8_t *msg = NULL;
	size_t len = 0, off;

	if (front_sasl_b64_decode(b64, false, &msg, &len) < 0 ||
	    scram_client_first_check(span_make(msg, len)) < 0) {
		if (msg != NULL)
			i_free(msg);
		front_sasl_fail_later(sasl, FRONT_SASL_FAILURE_MALFORMED);
		return;
	}
	sasl->request_id = front_sasl_new_request_id();
	off = ipc_msg_begin(&out, IPC_VAULT_SCRAM_START, sasl->request_id);
	ipc_put_str(&out, sasl->service);
	ipc_put_str(&out, (const char *)msg);
	ipc_put_str(&out, sasl->conn->ip);
	ipc_msg_finish(&out, off);
	i_free(msg);
	front_sasl_scram_request(sasl, &out);
	buf_free(&out);
}

static void front_sasl_scram_client_final(struct front_sasl *sasl,
					  struct span b64)
{
	struct buf out = BUF_INIT;
	uint8_t *msg = NULL;
	size_t len, off;

	if (front_sasl_b64_decode(b64, false, &msg, &len) < 0) {
		front_sasl_fail_later(sasl, FRONT_SASL_FAILURE_MALFORMED);
		return;
	}
	sasl->request_id = front_sasl_new_request_id();
	off = ipc_msg_begin(&out, IPC_VAULT_SCRAM_FINISH, sasl->request_id);
	ipc_put_u32(&out, sasl->scram_session);
	ipc_put_str(&out, (const char *)msg);
	ipc_msg_finish(&out, off);
	i_free(msg);
	front_sasl_scram_request(sasl, &out);
	buf_free(&out);
}

static void front_sasl_response(struct front_sasl *sasl, struct span line)
{
	uint8_t *text = NULL;
	size_t len = 0;

	switch (sasl->step) {
	case FRONT_SASL_STEP_PLAIN:
		front_sasl_plain(sasl, line);
		return;
	case FRONT_SASL_STEP_LOGIN_USER:
		if (front_sasl_b64_decode(line, false, &text, &len) < 0 ||
		    len == 0) {
			if (text != NULL)
				i_free(text);
			front_sasl_fail_later(sasl,
					      FRONT_SASL_FAILURE_MALFORMED);
			return;
		}
		sasl->login_user = (char *)text;
		sasl->step = FRONT_SASL_STEP_LOGIN_PASSWORD;
		/* "Password:" (draft-murchison-sasl-login 2.2) */
		front_sasl_send(sasl, "Password:", 9);
		return;
	case FRONT_SASL_STEP_LOGIN_PASSWORD:
		if (front_sasl_b64_decode(line, false, &text, &len) < 0) {
			front_sasl_fail_later(sasl,
					      FRONT_SASL_FAILURE_MALFORMED);
			return;
		}
		front_sasl_password(sasl, sasl->login_user, text, len);
		safe_memset0(text, len);
		i_free(text);
		return;
	case FRONT_SASL_STEP_SCRAM_CLIENT_FIRST:
		front_sasl_scram_client_first(sasl, line);
		return;
	case FRONT_SASL_STEP_SCRAM_CLIENT_FINAL:
		front_sasl_scram_client_final(sasl, line);
		return;
	}
	i_unreached();
}

struct front_sasl *front_sasl_start(struct front_conn *conn,
				    const char *service, const char *mech,
				    const char *initial_b64,
				    front_sasl_send_t *send,
				    front_sasl_done_t *done, void *context,
				    const char **error_r)
{
	struct front_sasl *sasl;
	unsigned int i;

	for (i = 0; i < N_ELEMENTS(front_sasl_mech_names); i++) {
		if (strcasecmp(mech, front_sasl_mech_names[i]) == 0)
			break;
	}
	if (i == N_ELEMENTS(front_sasl_mech_names)) {
		*error_r = "Unrecognized authentication mechanism";
		return NULL;
	}
	sasl = i_new(struct front_sasl, 1);
	sasl->conn = conn;
	sasl->service = i_strdup(service);
	sasl->mech = (enum front_sasl_mech)i;
	sasl->send = send;
	sasl->done = done;
	sasl->context = context;
	sasl->next = front_sasl_list;
	if (sasl->next != NULL)
		sasl->next->prev = sasl;
	front_sasl_list = sasl;

	switch (sasl->mech) {
	case FRONT_SASL_MECH_PLAIN:
		sasl->step = FRONT_SASL_STEP_PLAIN;
		break;
	case FRONT_SASL_MECH_LOGIN:
		sasl->step = FRONT_SASL_STEP_LOGIN_USER;
		break;
	case FRONT_SASL_MECH_SCRAM_SHA_256:
		sasl->step = FRONT_SASL_STEP_SCRAM_CLIENT_FIRST;
		break;
	}
	if (initial_b64 != NULL) {
		sasl->state = FRONT_SASL_STATE_WAIT_CLIENT;
		front_sasl_input(sasl, span_from_cstr(initial_b64));
	} else if (sasl->mech == FRONT_SASL_MECH_LOGIN) {
		/* "Username:" (draft-murchison-sasl-login 2.1) */
		front_sasl_send(sasl, "Username:", 9);
	} else {
		/* RFC 4954 4: no initial response, an empty challenge. */
		front_sasl_send(sasl, "", 0);
	}
	return sasl;
}

void front_sasl_input(struct front_sasl *sasl, struct span line)
{
	if (sasl->state != FRONT_SASL_STATE_WAIT_CLIENT)
		return;
	if (span_eq(line, SPAN_LIT("*"))) {
		/* RFC 4954 4: the client cancels the exchange. */
		front_sasl_fail_later(sasl, FRONT_SASL_FAILURE_CANCELLED);
		return;
	}
	if (line.len > FRONT_SASL_MAX_RESPONSE) {
		front_sasl_fail_later(sasl, FRONT_SASL_FAILURE_MALFORMED);
		return;
	}
	front_sasl_response(sasl, line);
}

enum front_sasl_failure front_sasl_failure(const struct front_sasl *sasl)
{
	return sasl->failure;
}

void front_sasl_free(struct front_sasl **_sasl)
{
	struct front_sasl *sasl = *_sasl;

	if (sasl == NULL)
		return;
	*_sasl = NULL;
	if (sasl->prev != NULL)
		sasl->prev->next = sasl->next;
	else
		front_sasl_list = sasl->next;
	if (sasl->next != NULL)
		sasl->next->prev = sasl->prev;
	timeout_remove(&sasl->later);
	if (sasl->login_user != NULL) {
		safe_memset0(sasl->login_user, strlen(sasl->login_user));
		i_free(sasl->login_user);
	}
	i_free(sasl->service);
	i_free(sasl);
}

static struct front_sasl *front_sasl_find_request(uint32_t id)
{
	if (id == 0)
		return NULL;
	for (struct front_sasl *s = front_sasl_list; s != NULL; s = s->next) {
		if (s->request_id == id)
			return s;
	}
	return NULL;
}

struct front_sasl_reply {
	struct front_sasl *sasl;
	enum auth_result result;
	uint64_t account_id;
	const char *address;
	const char *message; /* server-first or server-final */
	struct span data_key; /* finish: 32 octets or none */
	uint64_t quota_bytes;
	bool start;
};

/* Runs with the connection referenced; input resumes after it. */
static void front_sasl_reply_deliver(void *context)
{
	struct front_sasl_reply *reply = context;
	struct front_sasl *sasl = reply->sasl;
	struct front_conn *conn = sasl->conn;
	char *b64;

	if (reply->start) {
		if (reply->result == AUTH_RESULT_OK) {
			sasl->step = FRONT_SASL_STEP_SCRAM_CLIENT_FINAL;
			front_sasl_send(sasl, reply->message,
					strlen(reply->message));
			return;
		}
		/* The vault sends no FAILED for an unknown user here (it
		   answers with a made-up salt): FAILED is a client-first
		   message it could not parse. */
		if (reply->result == AUTH_RESULT_FAILED)
			sasl->failure = FRONT_SASL_FAILURE_MALFORMED;
		front_sasl_finish(sasl, reply->result, 0, "", NULL);
		return;
	}
	log_info(conn->id, "front.auth",
		 "proto=%s mech=SCRAM-SHA-256 result=%s", conn->proto->name,
		 reply->result == AUTH_RESULT_OK         ? "ok"
		 : reply->result == AUTH_RESULT_DISABLED ? "disabled"
		 : reply->result == AUTH_RESULT_FAILED   ? "failed"
							 : "tempfail");
	if (reply->result != AUTH_RESULT_OK) {
		front_sasl_finish(sasl, reply->result, reply->account_id,
				  reply->address, NULL);
		return;
	}
	i_free(conn->user);
	conn->user = i_strdup(reply->address);
	conn->account_id = reply->account_id;
	front_conn_set_session_key(conn, reply->data_key, reply->quota_bytes);
	b64 = front_sasl_b64_encode(reply->message, strlen(reply->message));
	front_sasl_finish(sasl, AUTH_RESULT_OK, reply->account_id,
			  reply->address, b64);
	i_free(b64);
}

int front_sasl_vault_reply(const struct ipc_frame *frame)
{
	struct front_sasl_reply reply;
	struct ipc_reader r;
	uint32_t result;
	pool_t pool;

	memset(&reply, 0, sizeof(reply));
	pool = pool_create("scram reply", 512);
	ipc_reader_init(&r, frame);
	result = ipc_get_u32(&r);
	if (frame->type == IPC_FRONT_SCRAM_START_REPLY) {
		reply.start = true;
		uint32_t session = ipc_get_u32(&r);

		reply.message = ipc_get_str(&r, pool);
		reply.address = "";
		if (ipc_end(&r) < 0 || result > AUTH_RESULT_TEMPFAIL) {
			pool_unref(&pool);
			return -1;
		}
		reply.sasl = front_sasl_find_request(frame->id);
		if (reply.sasl != NULL)
			reply.sasl->scram_session = session;
	} else {
		i_assert(frame->type == IPC_FRONT_SCRAM_FINISH_REPLY);
		reply.account_id = ipc_get_u64(&r);
		reply.address = ipc_get_str(&r, pool);
		reply.message = ipc_get_str(&r, pool);
		reply.data_key = ipc_get_bytes(&r);
		reply.quota_bytes = ipc_get_u64(&r);
		if (ipc_end(&r) < 0 || result > AUTH_RESULT_TEMPFAIL ||
		    (reply.data_key.len != 0 && reply.data_key.len != 32)) {
			pool_unref(&pool);
			return -1;
		}
		reply.sasl = front_sasl_find_request(frame->id);
	}
	reply.result = (enum auth_result)result;
	/* A reply for an exchange that was freed meanwhile is dropped (the
	   vault expires its session). */
	if (reply.sasl != NULL) {
		reply.sasl->request_id = 0;
		front_conn_resume(reply.sasl->conn, front_sasl_reply_deliver,
				  &reply);
	}
	pool_unref(&pool);
	return 0;
}

void front_sasl_forget_conn(struct front_conn *conn)
{
	for (struct front_sasl *s = front_sasl_list; s != NULL; s = s->next) {
		if (s->conn != conn)
			continue;
		/* The protocol's deinit frees it; nothing may run before. */
		timeout_remove(&s->later);
		s->request_id = 0;
		s->state = FRONT_SASL_STATE_DONE;
	}
}

void front_sasl_vault_lost(void)
{
	for (struct front_sasl *s = front_sasl_list; s != NULL; s = s->next) {
		if (s->request_id != 0)
			front_sasl_end_later(s, AUTH_RESULT_TEMPFAIL);
	}
}
