/* vault.c - the vault role's process: wiring only. It owns the master key
   (in locked, guarded memory), the directory connection, the IPC connection
   to the master, the listening socket DATA/run/vault.sock and one IPC
   connection per front process; password verification itself is
   vault-auth.c, the spool merge is vault-merge.c (whose changes this file
   forwards to every front as IPC_FRONT_CHANGED), and the keyring of
   unlocked zero-access accounts is vault-keyring.c (filled by logins, read
   by merges, expired here by a timer and wiped at exit); DKIM signing for
   the front's submissions is vault-dkim.c. The master starts it
   through `marmot role vault` (master_role_main -> vault_main). Security
   stance: this is the process that holds the master key, so it talks to
   nothing but UNIX sockets: a seccomp filter makes socket(AF_INET/AF_INET6)
   fail, the process is made non-dumpable so that other processes of the
   same uid (the front) cannot ptrace it or read its memory, and the
   listening socket is mode 0600 in a 0700 directory. Everything the front
   sends is treated as hostile: each frame must be consumed exactly
   (ipc_end), fields are bounded, and a malformed frame closes that
   connection. Passwords are never logged; user names and addresses are
   logged escaped. */

#include "vault.h"
#include "vault-auth.h"
#include "vault-dkim.h"
#include "vault-merge.h"
#include "vault-keyring.h"
#include "vault-rcpt.h"
#include "vault-scram.h"
#include "vault-throttle.h"
#include "directory.h"
#include "ioloop.h"
#include "ipc.h"
#include "log.h"
#include "mail-address.h"
#include "net.h"
#include "pool.h"
#include "settings.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sodium.h>

/* Bounds on the fields of IPC_VAULT_AUTH besides the password (which
   vault-auth.c bounds): they only go into log lines. */
#define VAULT_SERVICE_MAX_LEN 32
#define VAULT_IP_MAX_LEN 64
/* Accounts merged at once (each merge is one SQLite writer and fsyncs). */
#define VAULT_MERGE_THREADS 2
/* How often expired zero-access keys are looked for and wiped. */
#define VAULT_KEYRING_EXPIRE_MSECS 60000

struct vault_pending;
struct vault_rcpt_pending;

struct vault_client {
	struct vault_client *prev, *next;
	struct vault *vault;
	struct ipc_conn *conn;
	struct vault_pending *pending; /* auth requests in flight */
	struct vault_rcpt_pending *rcpt_pending; /* RCPTs waiting for usage */
	char log_id[16];
	bool master;
};

/* An IPC_VAULT_AUTH waiting for its answer, keyed by the frame's id. */
struct vault_pending {
	struct vault_pending *prev, *next;
	struct vault_client *client;
	struct vault_auth_request *req;
	uint32_t id;
	char *service, *username, *ip;
	/* The username as the throttle counts it (normalised when valid). */
	char *throttle_user;
	/* Refused by the throttle unchecked: why (a static string). */
	const char *throttled;
};

/* An IPC_VAULT_RCPT waiting for a usage load (vault-rcpt.h). */
struct vault_rcpt_pending {
	struct vault_rcpt_pending *prev, *next;
	struct vault_client *client;
	struct vault_rcpt_request *req;
	uint32_t id;
};

struct vault {
	struct marmot_settings *set;
	struct ioloop *ioloop;
	struct directory *dir;
	struct vault_auth *auth;
	struct vault_rcpt *rcpt;
	struct vault_scram *scram;
	/* Failed logins of every mechanism (vault-throttle.h). */
	struct vault_throttle *throttle;
	struct vault_merger *merger;
	struct vault_keyring *keyring;
	struct vault_dkim *dkim;
	struct timeout *keyring_to;
	uint8_t *master_key; /* sodium_malloc'ed, read-only */

	struct vault_client *master;
	struct vault_client *clients; /* fronts */
	unsigned int client_counter;

	char *socket_path;
	int listen_fd;
	struct io *listen_io;

	pool_t frame_pool;
	bool signals_added;
	bool stopping;
};

/* Error messages of the start-up steps (single-threaded then). */
static char vault_error_buf[512];

/* Linked-list helpers (both lists are doubly linked through prev/next). */
#define VAULT_LIST_ADD(head, item)             \
	do {                                   \
		(item)->prev = NULL;           \
		(item)->next = (head);         \
		if ((head) != NULL)            \
			(head)->prev = (item); \
		(head) = (item);               \
	} while (0)
#define VAULT_LIST_DEL(head, item)                         \
	do {                                               \
		if ((item)->prev != NULL)                  \
			(item)->prev->next = (item)->next; \
		else                                       \
			(head) = (item)->next;             \
		if ((item)->next != NULL)                  \
			(item)->next->prev = (item)->prev; \
	} while (0)

static void vault_check_stopped(struct vault *vault)
{
	if (vault->stopping && vault_auth_in_flight(vault->auth) == 0)
		ioloop_stop(vault->ioloop);
}

/* The last hash finished, also one whose client went away (no reply
   callback then): a stopping vault may end now. */
static void vault_auth_idle(void *context)
{
	vault_check_stopped(context);
}

/* Stop accepting; the loop ends once the requests in flight are
   answered. */
static void vault_stop(struct vault *vault, const char *reason)
{
	if (vault->stopping)
		return;
	vault->stopping = true;
	log_info(NULL, "vault.stopping", "reason=%s in_flight=%u",
		 log_value(0, reason), vault_auth_in_flight(vault->auth));
	io_remove(&vault->listen_io);
	if (vault->listen_fd >= 0) {
		close(vault->listen_fd);
		vault->listen_fd = -1;
	}
	/* Merges in flight end after their current batch; vault_deinit
	   waits for them. */
	vault_merger_stop(vault->merger);
	vault_check_stopped(vault);
}

static void vault_pending_free(struct vault_pending *p)
{
	VAULT_LIST_DEL(p->client->pending, p);
	i_free(p->service);
	i_free(p->username);
	i_free(p->ip);
	i_free(p->throttle_user);
	i_free(p);
}

static void vault_client_destroy(struct vault_client **_client)
{
	struct vault_client *client = *_client;
	struct vault *vault;

	*_client = NULL;
	if (client == NULL)
		return;
	vault = client->vault;
	while (client->pending != NULL) {
		struct vault_pending *p = client->pending;

		vault_auth_request_abort(&p->req);
		vault_pending_free(p);
	}
	while (client->rcpt_pending != NULL) {
		struct vault_rcpt_pending *p = client->rcpt_pending;

		vault_rcpt_request_abort(&p->req);
		VAULT_LIST_DEL(client->rcpt_pending, p);
		i_free(p);
	}
	if (vault->scram != NULL)
		vault_scram_forget_owner(vault->scram, client);
	ipc_conn_destroy(&client->conn);
	if (client->master)
		vault->master = NULL;
	else
		VAULT_LIST_DEL(vault->clients, client);
	i_free(client);
}

static const char *auth_result_event(enum auth_result result)
{
	switch (result) {
	case AUTH_RESULT_OK:
		return "auth.ok";
	case AUTH_RESULT_FAILED:
	case AUTH_RESULT_DISABLED:
		return "auth.failed";
	case AUTH_RESULT_TEMPFAIL:
		return "auth.tempfail";
	}
	i_unreached();
}

/* The services whose sessions read the account's store in the front
   (ARCHITECTURE.md 2: the front holds "account keys only of logged-in
   sessions"). SMTP submission never gets them. */
static bool vault_service_opens_store(const char *service)
{
	return strcmp(service, "imap") == 0 || strcmp(service, "pop3") == 0;
}

/* Appends the session's key fields of an OK login: bytes data key (32
   octets, or none when the service does not open the store or the keys
   are not available: a zero-access account whose keys did not unlock)
   and u64 quota in bytes. The key is wiped from every buffer here; the
   IPC buffer itself is wiped by the caller. */
static void vault_put_session_keys(struct vault *vault, struct buf *out,
				   enum auth_result result, uint64_t account_id,
				   const char *service)
{
	struct directory_account account;
	struct account_keys keys;
	const char *error;
	bool have = false;
	uint64_t quota = 0;
	int ret;

	memset(&keys, 0, sizeof(keys));
	/* The directory pool is not cleared here: the reply's address may
	   live in it; the next request clears it. */
	if (result == AUTH_RESULT_OK && vault_service_opens_store(service)) {
		ret = directory_account_lookup_id(vault->dir, account_id,
						  &account, &error);
		if (ret < 0)
			log_error(NULL, "auth.db_error", "error=%s",
				  log_value(0, error));
		if (ret > 0) {
			quota = account.quota_bytes;
			if (account.zero_access)
				have = vault_keyring_get(
					vault->keyring, account_id,
					ioloop_now_ms(vault->ioloop), &keys);
			else
				have = directory_account_keys(
					       &account, vault->master_key,
					       NULL, 0, &keys) == 0;
		}
	}
	if (have)
		ipc_put_bytes(out, keys.data_key, sizeof(keys.data_key));
	else
		ipc_put_bytes(out, "", 0);
	ipc_put_u64(out, quota);
	account_keys_clear(&keys);
}

static void vault_send_auth_reply(struct vault_client *client, uint32_t id,
				  const char *service,
				  const struct vault_auth_reply *reply)
{
	struct buf out = BUF_INIT;
	size_t offset = ipc_msg_begin(&out, IPC_FRONT_AUTH_REPLY, id);

	ipc_put_u32(&out, (uint32_t)reply->result);
	ipc_put_u64(&out, reply->account_id);
	ipc_put_str(&out, reply->address);
	vault_put_session_keys(client->vault, &out, reply->result,
			       reply->account_id, service);
	ipc_msg_finish(&out, offset);
	ipc_conn_send(client->conn, &out);
	safe_memset0(out.data, out.used);
	buf_free(&out);
}

static void vault_auth_callback(const struct vault_auth_reply *reply,
				void *context)
{
	struct vault_pending *p = context;
	struct vault_client *client = p->client;
	struct vault *vault = client->vault;
	struct buf fields = BUF_INIT;

	vault_send_auth_reply(client, p->id, p->service, reply);
	if (reply->result == AUTH_RESULT_FAILED)
		vault_throttle_failure(vault->throttle, p->ip, p->throttle_user,
				       ioloop_now_ms(vault->ioloop));

	/* Never the password: only who, from where, and the verdict. */
	buf_log_kv(&fields, "service", p->service);
	buf_log_kv(&fields, "user", p->username);
	buf_log_kv(&fields, "ip", p->ip);
	if (reply->result == AUTH_RESULT_DISABLED)
		buf_log_kv(&fields, "reason", "disabled");
	if (p->throttled)
		buf_log_kv(&fields, "reason", p->throttled);
	if (reply->account_id != 0)
		buf_printf(&fields, " account=%" PRIu64, reply->account_id);
	if (reply->unlocked)
		buf_printf(&fields, " unlocked=yes");
	log_event(reply->result == AUTH_RESULT_TEMPFAIL ? LOG_LEVEL_WARNING
							: LOG_LEVEL_INFO,
		  client->log_id, auth_result_event(reply->result), "%s",
		  buf_cstr(&fields));
	buf_free(&fields);
	/* A zero-access account's mail waited sealed: merge it now. */
	if (reply->unlocked && vault->merger != NULL)
		vault_merger_schedule(vault->merger, reply->account_id);

	vault_pending_free(p);
	vault_check_stopped(vault);
}

/* IPC_VAULT_AUTH: str service, str username, bytes password, str ip.
   Returns -1 (close the connection) on a malformed frame. */
static int vault_handle_auth(struct vault_client *client,
			     const struct ipc_frame *frame)
{
	struct vault *vault = client->vault;
	struct vault_auth_request *req;
	struct vault_pending *p;
	struct ipc_reader reader;
	struct span password;
	const char *service, *username, *ip;

	pool_clear(vault->frame_pool);
	ipc_reader_init(&reader, frame);
	service = ipc_get_str(&reader, vault->frame_pool);
	username = ipc_get_str(&reader, vault->frame_pool);
	password = ipc_get_bytes(&reader);
	ip = ipc_get_str(&reader, vault->frame_pool);
	if (ipc_end(&reader) < 0 || strlen(service) > VAULT_SERVICE_MAX_LEN ||
	    strlen(ip) > VAULT_IP_MAX_LEN) {
		log_warning(client->log_id, "ipc.malformed", "type=%u id=%u",
			    (unsigned int)frame->type, frame->id);
		return -1;
	}

	p = i_new(struct vault_pending, 1);
	p->client = client;
	p->id = frame->id;
	p->service = i_strdup(service);
	p->username = i_strdup(username);
	p->ip = i_strdup(ip);
	{
		const char *error, *normalized = mail_address_normalize(
					   vault->frame_pool, username, NULL,
					   NULL, &error);

		p->throttle_user =
			i_strdup(normalized != NULL ? normalized : username);
	}
	VAULT_LIST_ADD(client->pending, p);

	/* Over its failure limit: refused before any hashing, so a
	   guessing run costs us nothing and learns nothing, not even from
	   the right password (vault-throttle.h). */
	if (vault->stopping ||
	    vault_throttle_blocked(vault->throttle, ip, p->throttle_user,
				   ioloop_now_ms(vault->ioloop),
				   &p->throttled)) {
		const struct vault_auth_reply reply = {
			.result = AUTH_RESULT_TEMPFAIL,
			.account_id = 0,
			.address = "",
		};

		vault_auth_callback(&reply, p);
		return 0;
	}
	/* The callback may run (and free p) before this returns; p is only
	   touched again when a handle came back. */
	req = vault_auth_begin(vault->auth, username, password.p, password.len,
			       vault_auth_callback, p);
	if (req != NULL)
		p->req = req;
	return 0;
}

static void vault_send_rcpt_reply(struct vault_client *client, uint32_t id,
				  const struct vault_rcpt_reply *reply)
{
	struct buf out = BUF_INIT;
	size_t offset = ipc_msg_begin(&out, IPC_FRONT_RCPT_REPLY, id);

	ipc_put_u32(&out, (uint32_t)reply->result);
	ipc_put_u32(&out, reply->quota_permanent ? 1 : 0);
	ipc_put_str(&out, reply->address);
	ipc_put_u32(&out, reply->local_count);
	for (unsigned int i = 0; i < reply->local_count; i++) {
		ipc_put_u64(&out, reply->locals[i].account_id);
		ipc_put_bytes(&out, reply->locals[i].public_key,
			      sizeof(reply->locals[i].public_key));
	}
	ipc_put_u32(&out, reply->remote_count);
	for (unsigned int i = 0; i < reply->remote_count; i++)
		ipc_put_str(&out, reply->remote[i]);
	ipc_msg_finish(&out, offset);
	ipc_conn_send(client->conn, &out);
	buf_free(&out);
}

/* Called inside vault_rcpt_resolve() (p not listed yet: the caller
   frees it) or later from the loop (p is listed: freed here). */
static void vault_rcpt_callback(const struct vault_rcpt_reply *reply,
				void *context)
{
	struct vault_rcpt_pending *p = context;

	vault_send_rcpt_reply(p->client, p->id, reply);
	if (p->req != NULL) {
		VAULT_LIST_DEL(p->client->rcpt_pending, p);
		i_free(p);
	}
}

/* IPC_VAULT_RCPT: str address, u64 size hint. Addresses longer than an
   SMTP path can be (RFC 5321 4.5.3.1.3, with room for SMTPUTF8) are a
   malformed frame. */
static int vault_handle_rcpt(struct vault_client *client,
			     const struct ipc_frame *frame)
{
	struct vault *vault = client->vault;
	struct vault_rcpt_request *req;
	struct vault_rcpt_pending *p;
	struct ipc_reader reader;
	const char *address;
	uint64_t size_hint;

	pool_clear(vault->frame_pool);
	ipc_reader_init(&reader, frame);
	address = ipc_get_str(&reader, vault->frame_pool);
	size_hint = ipc_get_u64(&reader);
	if (ipc_end(&reader) < 0 || strlen(address) > 1024) {
		log_warning(client->log_id, "ipc.malformed", "type=%u id=%u",
			    (unsigned int)frame->type, frame->id);
		return -1;
	}
	if (vault->stopping || vault->rcpt == NULL) {
		/* Stopping (vault_deinit may already have destroyed the
		   resolver while it flushes replies): try again later. */
		const struct vault_rcpt_reply reply = {
			.result = IPC_RCPT_TEMPFAIL,
			.address = address,
		};

		vault_send_rcpt_reply(client, frame->id, &reply);
		return 0;
	}
	p = i_new(struct vault_rcpt_pending, 1);
	p->client = client;
	p->id = frame->id;
	req = vault_rcpt_resolve(vault->rcpt, address, size_hint,
				 vault_rcpt_callback, p);
	if (req == NULL) {
		/* Answered already (the usual case). */
		i_free(p);
		return 0;
	}
	/* Waiting for a usage load. */
	p->req = req;
	VAULT_LIST_ADD(client->rcpt_pending, p);
	return 0;
}

/* IPC_VAULT_SENDER: u64 account id, str address. */
static int vault_handle_sender(struct vault_client *client,
			       const struct ipc_frame *frame)
{
	struct vault *vault = client->vault;
	struct ipc_reader reader;
	struct buf out = BUF_INIT;
	const char *address;
	uint64_t account_id;
	size_t offset;

	pool_clear(vault->frame_pool);
	ipc_reader_init(&reader, frame);
	account_id = ipc_get_u64(&reader);
	address = ipc_get_str(&reader, vault->frame_pool);
	if (ipc_end(&reader) < 0 || strlen(address) > 1024) {
		log_warning(client->log_id, "ipc.malformed", "type=%u id=%u",
			    (unsigned int)frame->type, frame->id);
		return -1;
	}
	offset = ipc_msg_begin(&out, IPC_FRONT_SENDER_REPLY, frame->id);
	ipc_put_u32(&out, vault->stopping || vault->rcpt == NULL
				  ? (uint32_t)VAULT_SENDER_TEMPFAIL
				  : (uint32_t)vault_rcpt_sender_owned(
					    vault->rcpt, account_id, address));
	ipc_msg_finish(&out, offset);
	ipc_conn_send(client->conn, &out);
	buf_free(&out);
	return 0;
}

/* IPC_VAULT_USAGE_STALE: u64 account id, no reply. The front is a
   trusted local process, but the frame is still checked to its end; the
   id only drops a cache entry (vault_rcpt_usage_stale allocates
   nothing), and no figure from the front is taken. */
static int vault_handle_usage_stale(struct vault_client *client,
				    const struct ipc_frame *frame)
{
	struct vault *vault = client->vault;
	struct ipc_reader reader;
	uint64_t account_id;

	ipc_reader_init(&reader, frame);
	account_id = ipc_get_u64(&reader);
	if (ipc_end(&reader) < 0) {
		log_warning(client->log_id, "ipc.malformed", "type=%u id=%u",
			    (unsigned int)frame->type, frame->id);
		return -1;
	}
	if (vault->rcpt != NULL)
		vault_rcpt_usage_stale(vault->rcpt, account_id);
	return 0;
}

static void vault_scram_log(struct vault_client *client, const char *step,
			    const struct vault_scram_result *result)
{
	struct buf fields = BUF_INIT;

	/* Never a proof or a key: who, from where, and the verdict. */
	buf_log_kv(&fields, "mech", "SCRAM-SHA-256");
	buf_log_kv(&fields, "step", step);
	buf_log_kv(&fields, "service", result->service);
	buf_log_kv(&fields, "user", result->username);
	buf_log_kv(&fields, "ip", result->ip);
	if (result->reason != NULL)
		buf_log_kv(&fields, "reason", result->reason);
	if (result->account_id != 0)
		buf_printf(&fields, " account=%" PRIu64, result->account_id);
	log_event(result->result == AUTH_RESULT_TEMPFAIL ? LOG_LEVEL_WARNING
							 : LOG_LEVEL_INFO,
		  client->log_id, auth_result_event(result->result), "%s",
		  buf_cstr(&fields));
	buf_free(&fields);
}

/* IPC_VAULT_SCRAM_START: str service, str client-first-message, str ip
   -> IPC_FRONT_SCRAM_START_REPLY u32 result, u32 session, str
   server-first-message. Returns -1 on a malformed frame. */
static int vault_handle_scram_start(struct vault_client *client,
				    const struct ipc_frame *frame)
{
	struct vault *vault = client->vault;
	struct vault_scram_result result;
	struct ipc_reader reader;
	struct buf server_first = BUF_INIT, out = BUF_INIT;
	const char *service, *client_first, *ip;
	enum auth_result res;
	uint32_t session = 0;
	size_t offset;

	pool_clear(vault->frame_pool);
	ipc_reader_init(&reader, frame);
	service = ipc_get_str(&reader, vault->frame_pool);
	client_first = ipc_get_str(&reader, vault->frame_pool);
	ip = ipc_get_str(&reader, vault->frame_pool);
	if (ipc_end(&reader) < 0 || strlen(service) > VAULT_SERVICE_MAX_LEN ||
	    strlen(ip) > VAULT_IP_MAX_LEN) {
		log_warning(client->log_id, "ipc.malformed", "type=%u id=%u",
			    (unsigned int)frame->type, frame->id);
		return -1;
	}
	if (vault->stopping) {
		res = AUTH_RESULT_TEMPFAIL;
	} else {
		res = vault_scram_start(vault->scram, client, service, ip,
					client_first, &session, &server_first,
					&result);
		/* Only failures here: the verdict comes with finish. */
		if (res != AUTH_RESULT_OK)
			vault_scram_log(client, "start", &result);
	}
	offset = ipc_msg_begin(&out, IPC_FRONT_SCRAM_START_REPLY, frame->id);
	ipc_put_u32(&out, (uint32_t)res);
	ipc_put_u32(&out, session);
	ipc_put_str(&out, res == AUTH_RESULT_OK ? buf_cstr(&server_first) : "");
	ipc_msg_finish(&out, offset);
	ipc_conn_send(client->conn, &out);
	buf_free(&out);
	buf_free(&server_first);
	return 0;
}

/* IPC_VAULT_SCRAM_FINISH: u32 session, str client-final-message ->
   IPC_FRONT_SCRAM_FINISH_REPLY u32 result, u64 account id, str address,
   str server-final-message. Returns -1 on a malformed frame. */
static int vault_handle_scram_finish(struct vault_client *client,
				     const struct ipc_frame *frame)
{
	struct vault *vault = client->vault;
	struct vault_scram_result result;
	struct ipc_reader reader;
	struct buf server_final = BUF_INIT, out = BUF_INIT;
	const char *client_final;
	uint32_t session;
	size_t offset;

	pool_clear(vault->frame_pool);
	ipc_reader_init(&reader, frame);
	session = ipc_get_u32(&reader);
	client_final = ipc_get_str(&reader, vault->frame_pool);
	if (ipc_end(&reader) < 0) {
		log_warning(client->log_id, "ipc.malformed", "type=%u id=%u",
			    (unsigned int)frame->type, frame->id);
		return -1;
	}
	vault_scram_finish(vault->scram, client, session, client_final,
			   &server_final, &result);
	vault_scram_log(client, "finish", &result);
	offset = ipc_msg_begin(&out, IPC_FRONT_SCRAM_FINISH_REPLY, frame->id);
	ipc_put_u32(&out, (uint32_t)result.result);
	ipc_put_u64(&out, result.account_id);
	ipc_put_str(&out, result.address);
	ipc_put_str(&out, result.result == AUTH_RESULT_OK
				  ? buf_cstr(&server_final)
				  : "");
	vault_put_session_keys(vault, &out, result.result, result.account_id,
			       result.service);
	ipc_msg_finish(&out, offset);
	ipc_conn_send(client->conn, &out);
	safe_memset0(out.data, out.used);
	buf_free(&out);
	buf_free(&server_final);
	return 0;
}

/* IPC_VAULT_DKIM_KEYS and IPC_VAULT_DKIM_SIGN (vault-dkim.h). */
static int vault_handle_dkim(struct vault_client *client,
			     const struct ipc_frame *frame)
{
	struct vault *vault = client->vault;
	struct buf out = BUF_INIT;
	const char *error;
	int ret;

	if (frame->type == IPC_VAULT_DKIM_KEYS)
		ret = vault_dkim_handle_keys(vault->dkim, frame, &out, &error);
	else
		ret = vault_dkim_handle_sign(vault->dkim, frame, &out, &error);
	if (ret < 0) {
		log_warning(client->log_id, "ipc.malformed", "type=%u id=%u",
			    (unsigned int)frame->type, frame->id);
		buf_free(&out);
		return -1;
	}
	if (error != NULL) {
		log_warning(client->log_id, "dkim.sign_failed", "error=%s",
			    log_value(0, error));
	}
	ipc_conn_send(client->conn, &out);
	buf_free(&out);
	return 0;
}

static int vault_ipc_handler(struct ipc_conn *conn ATTR_UNUSED,
			     const struct ipc_frame *frame, void *context)
{
	struct vault_client *client = context;
	struct ipc_reader reader;

	switch ((enum ipc_type)frame->type) {
	case IPC_VAULT_PING:
		ipc_reader_init(&reader, frame);
		if (ipc_end(&reader) < 0) {
			log_warning(client->log_id, "ipc.malformed",
				    "type=%u id=%u", (unsigned int)frame->type,
				    frame->id);
			return -1;
		}
		ipc_conn_send_empty(client->conn, IPC_FRONT_PONG, frame->id);
		return 0;
	case IPC_VAULT_AUTH:
		if (client->master)
			break;
		return vault_handle_auth(client, frame);
	case IPC_VAULT_RCPT:
		if (client->master)
			break;
		return vault_handle_rcpt(client, frame);
	case IPC_VAULT_SENDER:
		if (client->master)
			break;
		return vault_handle_sender(client, frame);
	case IPC_VAULT_USAGE_STALE:
		if (client->master)
			break;
		return vault_handle_usage_stale(client, frame);
	case IPC_VAULT_SCRAM_START:
		if (client->master)
			break;
		return vault_handle_scram_start(client, frame);
	case IPC_VAULT_SCRAM_FINISH:
		if (client->master)
			break;
		return vault_handle_scram_finish(client, frame);
	case IPC_VAULT_DKIM_KEYS:
	case IPC_VAULT_DKIM_SIGN:
		if (client->master)
			break;
		return vault_handle_dkim(client, frame);
	default:
		break;
	}
	if (client->master) {
		/* Newer masters may send more; the vault is not the judge. */
		log_debug(client->log_id, "ipc.ignored", "type=%u",
			  (unsigned int)frame->type);
		return 0;
	}
	log_warning(client->log_id, "ipc.unexpected", "type=%u",
		    (unsigned int)frame->type);
	return -1;
}

static void vault_ipc_closed(struct ipc_conn *conn ATTR_UNUSED,
			     const char *reason, void *context)
{
	struct vault_client *client = context;
	struct vault *vault = client->vault;
	bool master = client->master;

	log_debug(client->log_id, "ipc.closed", "reason=%s",
		  log_value(0, reason));
	/* ipc.c allows destroying the conn from its closed callback. */
	vault_client_destroy(&client);
	if (master)
		vault_stop(vault, "master connection closed");
}

static struct vault_client *vault_client_create(struct vault *vault, int fd,
						bool master)
{
	struct vault_client *client = i_new(struct vault_client, 1);

	client->vault = vault;
	client->master = master;
	if (master)
		snprintf(client->log_id, sizeof(client->log_id), "master");
	else {
		snprintf(client->log_id, sizeof(client->log_id), "v%x",
			 ++vault->client_counter);
		VAULT_LIST_ADD(vault->clients, client);
	}
	client->conn = ipc_conn_create(vault->ioloop, fd, vault_ipc_handler,
				       vault_ipc_closed, client);
	return client;
}

static void vault_accept(void *context)
{
	struct vault *vault = context;
	struct vault_client *client;
	char ip[64];
	unsigned int port;
	int fd;

	fd = net_accept(vault->listen_fd, ip, &port);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    errno != ECONNABORTED)
			log_error(NULL, "vault.accept_failed", "error=%s",
				  log_value(0, strerror(errno)));
		return;
	}
	client = vault_client_create(vault, fd, false);
	log_debug(client->log_id, "ipc.connect", "%s", "");
}

static void vault_signal(int signo, void *context)
{
	struct vault *vault = context;

	vault_stop(vault, signo == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* The vault never needs an internet socket: make socket(AF_INET*) fail
   with EACCES, so that even code running inside the vault after a bug
   cannot reach the network. Other system calls are unaffected. */
#if defined(__x86_64__)
#define VAULT_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define VAULT_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif
static int vault_forbid_inet(const char **error_r)
{
#ifdef VAULT_AUDIT_ARCH
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		/* Another ABI (i386 socketcall, ...): refuse everything. */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, VAULT_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
#ifdef __x86_64__
		/* The x32 ABI shares the arch value: refuse it. */
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
#endif
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		/* args[0] low 32 bits (little-endian ABIs only here). */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, args[0])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
	};
	struct sock_fprog prog = {
		.len = (unsigned short)N_ELEMENTS(filter),
		.filter = filter,
	};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	return 0;
#else
	*error_r = "no seccomp filter for this architecture";
	return -1;
#endif
}

/* Reads the 32-byte key into locked, guarded memory and closes key_fd. */
static int vault_read_master_key(struct vault *vault, int key_fd,
				 const char **error_r)
{
	uint8_t extra;
	ssize_t ret;

	vault->master_key = sodium_malloc(MASTER_KEY_LEN);
	if (vault->master_key == NULL) {
		*error_r = "sodium_malloc() failed";
		(void)close(key_fd);
		return -1;
	}
	ret = pread(key_fd, vault->master_key, MASTER_KEY_LEN, 0);
	if (ret == MASTER_KEY_LEN) {
		/* Exactly 32 bytes: a longer file is not ours. */
		ret = pread(key_fd, &extra, 1, MASTER_KEY_LEN);
		if (ret != 0) {
			*error_r = "master.key is longer than 32 bytes";
			ret = -2;
		}
	} else if (ret < 0) {
		snprintf(vault_error_buf, sizeof(vault_error_buf),
			 "cannot read master.key: %s", strerror(errno));
		*error_r = vault_error_buf;
		ret = -2;
	} else {
		*error_r = "master.key is shorter than 32 bytes";
		ret = -2;
	}
	(void)close(key_fd);
	if (ret == -2)
		return -1;
	(void)sodium_mprotect_readonly(vault->master_key);
	return 0;
}

static int vault_listen(struct vault *vault, const char **error_r)
{
	char *run_dir = i_strdup_printf("%s/run", vault->set->data_dir);

	if (mkdir(run_dir, 0700) < 0 && errno != EEXIST) {
		snprintf(vault_error_buf, sizeof(vault_error_buf),
			 "mkdir(%s) failed: %s", run_dir, strerror(errno));
		*error_r = vault_error_buf;
		i_free(run_dir);
		return -1;
	}
	i_free(run_dir);
	vault->socket_path =
		i_strdup_printf("%s/run/vault.sock", vault->set->data_dir);
	vault->listen_fd = net_listen_unix(vault->socket_path, 0600, error_r);
	if (vault->listen_fd < 0)
		return -1;
	vault->listen_io = io_add(vault->ioloop, vault->listen_fd, IO_READ,
				  vault_accept, vault);
	return 0;
}

/* A merge committed: tell every front (IMAP IDLE, push). */
static void vault_merge_changed(uint64_t account_id, uint64_t mailbox_id,
				uint64_t modseq, void *context)
{
	struct vault *vault = context;
	struct buf out = BUF_INIT;
	size_t offset;

	if (vault->clients == NULL)
		return;
	offset = ipc_msg_begin(&out, IPC_FRONT_CHANGED, 0);
	ipc_put_u64(&out, account_id);
	ipc_put_u64(&out, mailbox_id);
	ipc_put_u64(&out, modseq);
	ipc_msg_finish(&out, offset);
	for (struct vault_client *client = vault->clients; client != NULL;
	     client = client->next)
		ipc_conn_send(client->conn, &out);
	buf_free(&out);
}

/* A merge committed: the account's store usage for the quota check. */
static void vault_merge_usage(uint64_t account_id, uint64_t used, void *context)
{
	struct vault *vault = context;

	if (vault->rcpt != NULL)
		vault_rcpt_usage_set(vault->rcpt, account_id, used);
}

static void vault_keyring_timer(void *context)
{
	struct vault *vault = context;
	unsigned int n;

	n = vault_keyring_expire(vault->keyring, ioloop_now_ms(vault->ioloop));
	if (n > 0)
		log_info(NULL, "keys.expired", "accounts=%u", n);
}

static void vault_send_hello(struct vault *vault)
{
	struct buf out = BUF_INIT;
	size_t offset = ipc_msg_begin(&out, IPC_MASTER_HELLO, 0);

	ipc_put_u32(&out, (uint32_t)getpid());
	ipc_put_str(&out, "vault");
	ipc_put_str(&out, MARMOT_VERSION);
	ipc_msg_finish(&out, offset);
	ipc_conn_send(vault->master->conn, &out);
	buf_free(&out);
}

static void vault_deinit(struct vault *vault)
{
	/* Answers anything still in flight (only after a loop failure). */
	vault_auth_destroy(&vault->auth);
	/* Waits for merges in flight; their changes still reach the
	   fronts below. */
	vault_merger_destroy(&vault->merger);
	/* After the merger, whose last jobs report usage to it; answers the
	   RCPTs still waiting for a usage load. */
	vault_rcpt_destroy(&vault->rcpt);
	/* All three above are done with the keys: wipe them. */
	timeout_remove(&vault->keyring_to);
	vault_keyring_destroy(&vault->keyring);
	/* Give queued replies a chance to be written: ipc.c writes only from
	   the loop. */
	for (unsigned int i = 0; i < 3 && vault->ioloop != NULL; i++)
		ioloop_run_once(vault->ioloop, 0);
	while (vault->clients != NULL) {
		struct vault_client *client = vault->clients;

		vault_client_destroy(&client);
	}
	vault_client_destroy(&vault->master);
	vault_scram_destroy(&vault->scram);
	vault_throttle_destroy(&vault->throttle);
	vault_dkim_destroy(&vault->dkim);
	io_remove(&vault->listen_io);
	if (vault->listen_fd >= 0)
		(void)close(vault->listen_fd);
	if (vault->signals_added) {
		ioloop_signal_remove(vault->ioloop, SIGTERM, vault_signal,
				     vault);
		ioloop_signal_remove(vault->ioloop, SIGINT, vault_signal,
				     vault);
		vault->signals_added = false;
	}
	ioloop_destroy(&vault->ioloop);
	directory_close(&vault->dir);
	if (vault->frame_pool != NULL)
		pool_unref(&vault->frame_pool);
	i_free(vault->socket_path);
	if (vault->master_key != NULL)
		sodium_free(vault->master_key); /* wipes */
	vault->master_key = NULL;
}

int vault_main(struct marmot_settings *set, int master_fd, int key_fd)
{
	struct vault vault;
	struct vault_auth_settings auth_set;
	const char *error;
	char *db_path;
	int ret;

	memset(&vault, 0, sizeof(vault));
	vault.set = set;
	vault.listen_fd = -1;

	log_set_role("vault");
	/* Other processes of our uid (the front) must not ptrace us or read
	   /proc/<pid>/mem: the master key is in here. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fatal("vault.init_failed", "error=%s",
		      log_value(0, "prctl(PR_SET_DUMPABLE) failed"));
	(void)signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		fatal("vault.init_failed", "error=sodium_init");

	if (vault_read_master_key(&vault, key_fd, &error) < 0) {
		log_error(NULL, "vault.init_failed", "error=%s",
			  log_value(0, error));
		vault_deinit(&vault);
		(void)close(master_fd);
		return MARMOT_EXIT_FATAL;
	}
	if (vault_forbid_inet(&error) < 0) {
		log_warning(NULL, "vault.seccomp_unavailable", "error=%s",
			    log_value(0, error));
	}

	db_path = i_strdup_printf("%s/directory.db", set->data_dir);
	vault.dir = directory_open(db_path, false, &error);
	if (vault.dir == NULL) {
		log_error(NULL, "vault.init_failed", "db=%s error=%s",
			  log_value(0, db_path), log_value(1, error));
		i_free(db_path);
		vault_deinit(&vault);
		(void)close(master_fd);
		return MARMOT_EXIT_FATAL;
	}
	i_free(db_path);

	vault.ioloop = ioloop_create();
	vault.frame_pool = pool_create("vault-frame", 1024);
	auth_set = (struct vault_auth_settings){
		.max_hashes = set->vault_max_hashes,
		.cache_ttl_secs = set->auth_cache_ttl,
	};
	vault.auth = vault_auth_create(vault.ioloop, vault.dir, &auth_set);
	vault.keyring = vault_keyring_create(0);
	vault_auth_set_keyring(vault.auth, vault.keyring);
	vault_auth_set_idle_callback(vault.auth, vault_auth_idle, &vault);
	{
		/* Stable across restarts, so that the made-up salts of
		   users without SCRAM secrets do not change either. */
		static const char context[] = "marmot scram fake salt v1";
		const struct vault_scram_settings scram_set = { 0 };
		uint8_t key[VAULT_SCRAM_KEY_LEN];

		crypto_generichash(key, sizeof(key), (const uint8_t *)context,
				   sizeof(context) - 1, vault.master_key,
				   MASTER_KEY_LEN);
		const struct vault_throttle_settings throttle_set = {
			.max_per_ip = set->auth_max_failures_per_ip,
			.max_per_user = set->auth_max_failures_per_user,
			.window_msecs = set->auth_failure_window * 1000,
			/* NULL (settings made by hand): the default. */
			.exempt_localhost =
				set->auth_throttle_localhost == NULL ||
				strcmp(set->auth_throttle_localhost,
				       "exempt") == 0,
		};

		vault.scram = vault_scram_create(vault.ioloop, vault.dir,
						 &scram_set, key);
		sodium_memzero(key, sizeof(key));
		vault.throttle = vault_throttle_create(&throttle_set);
		vault_scram_set_throttle(vault.scram, vault.throttle);
	}
	vault.dkim = vault_dkim_create(vault.dir, vault.master_key);
	vault.keyring_to = timeout_add(vault.ioloop, VAULT_KEYRING_EXPIRE_MSECS,
				       vault_keyring_timer, &vault);

	vault.master = vault_client_create(&vault, master_fd, true);
	if (vault_listen(&vault, &error) < 0) {
		log_error(NULL, "vault.init_failed", "error=%s",
			  log_value(0, error));
		vault_deinit(&vault);
		return MARMOT_EXIT_FATAL;
	}
	vault.merger = vault_merger_create(
		vault.ioloop, set->data_dir, vault.dir, vault.master_key,
		VAULT_MERGE_THREADS, vault_merge_changed, &vault, &error);
	if (vault.merger == NULL) {
		log_error(NULL, "vault.init_failed", "error=%s",
			  log_value(0, error));
		vault_deinit(&vault);
		return MARMOT_EXIT_FATAL;
	}
	vault_merger_set_keyring(vault.merger, vault.keyring);
	vault.rcpt = vault_rcpt_create(vault.ioloop, set->data_dir, vault.dir,
				       vault.master_key, vault.keyring);
	vault_merger_set_usage_callback(vault.merger, vault_merge_usage,
					&vault);
	ioloop_signal_add(vault.ioloop, SIGTERM, vault_signal, &vault);
	ioloop_signal_add(vault.ioloop, SIGINT, vault_signal, &vault);
	vault.signals_added = true;

	log_info(NULL, "vault.started", "socket=%s max_hashes=%u cache_ttl=%u",
		 log_value(0, vault.socket_path), set->vault_max_hashes,
		 set->auth_cache_ttl);
	/* Only now: the master starts the front on this HELLO, and every
	   question the front may ask can be answered (sent from the loop). */
	vault_send_hello(&vault);
	ret = ioloop_run(vault.ioloop);
	vault_deinit(&vault);
	if (ret < 0) {
		log_error(NULL, "vault.loop_failed", "%s", "");
		return MARMOT_EXIT_FATAL;
	}
	log_info(NULL, "vault.stopped", "%s", "");
	return 0;
}
