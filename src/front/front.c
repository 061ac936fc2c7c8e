/* front.c - the front role: accepts connections on the listeners the
   master passed, enforces connection limits, owns the TLS context (swapped
   on reload), and is the client of the vault for logins.

   SECURITY: this is the process that faces the network. It holds the TLS
   private key but never the master key (master.key is root-owned and only
   the vault gets a descriptor of it) and never a password hash: logins are
   verified by the vault over DATA/run/vault.sock. It runs as the
   unprivileged service user and is not dumpable. */

#include "lib.h"
#include "ioloop.h"
#include "ipc.h"
#include "log.h"
#include "net.h"
#include "stream.h"
#include "tls.h"
#include "front-dkim.h"
#include "front-mailauth.h"
#include "front-private.h"
#include "front-queue.h"
#include "front-sasl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define FRONT_MAX_LISTENERS 64
/* Logins waiting for the vault; more get a temporary failure. */
#define FRONT_MAX_PENDING_AUTH 1024

struct front_listener_io {
	struct front *front;
	enum settings_port kind;
	int fd;
	struct io *io;
};

struct front_auth_request {
	struct front_auth_request *next;
	uint32_t id;
	struct front_conn *conn; /* NULL once the connection is gone */
	front_auth_callback_t *callback;
};

struct front *front_global;

static struct front_listener_io front_listeners[FRONT_MAX_LISTENERS];
static unsigned int front_listener_count;
static struct ipc_conn *front_master_ipc;
static struct ipc_conn *front_vault_ipc;
static struct front_auth_request *front_auth_requests;
static unsigned int front_auth_pending_count;
static uint32_t front_auth_next_id = 1;
static struct timeout *front_shutdown_timeout;
static struct timeout *front_shutdown_check;

static void front_auth_request_finish(struct front_auth_request *req,
				      enum auth_result result,
				      uint64_t account_id, const char *address)
{
	struct front_auth_request **p;

	for (p = &front_auth_requests; *p != NULL; p = &(*p)->next) {
		if (*p == req) {
			*p = req->next;
			break;
		}
	}
	front_auth_pending_count--;
	if (req->conn != NULL)
		front_conn_auth_done(req->conn, req->callback, result,
				     account_id, address);
	i_free(req);
}

static void front_vault_fail_all(void)
{
	while (front_auth_requests != NULL) {
		front_auth_request_finish(front_auth_requests,
					  AUTH_RESULT_TEMPFAIL, 0, "");
	}
}

static int front_vault_handler(struct ipc_conn *conn,
			       const struct ipc_frame *frame, void *context)
{
	struct front_auth_request *req;
	struct ipc_reader r;
	uint32_t result;
	uint64_t account_id;
	const char *address;
	pool_t pool;

	if (frame->type == IPC_FRONT_PONG)
		return 0;
	if (frame->type == IPC_FRONT_CHANGED) {
		/* A merge committed new mail. */
		ipc_reader_init(&r, frame);
		account_id = ipc_get_u64(&r);
		uint64_t mailbox_id = ipc_get_u64(&r);
		uint64_t modseq = ipc_get_u64(&r);
		if (ipc_end(&r) < 0)
			return -1;
		log_debug(NULL, "front.store.changed",
			  "account=%llu mailbox=%llu modseq=%llu",
			  (unsigned long long)account_id,
			  (unsigned long long)mailbox_id,
			  (unsigned long long)modseq);
		/* IMAP IDLE hears about new mail at once. */
		front_imap_store_changed(account_id, mailbox_id);
		return 0;
	}
	if (frame->type == IPC_FRONT_RCPT_REPLY ||
	    frame->type == IPC_FRONT_SENDER_REPLY)
		return front_delivery_vault_reply(frame);
	if (frame->type == IPC_FRONT_DKIM_KEYS_REPLY ||
	    frame->type == IPC_FRONT_DKIM_SIGN_REPLY)
		return front_dkim_vault_reply(frame);
	if (frame->type == IPC_FRONT_SCRAM_START_REPLY ||
	    frame->type == IPC_FRONT_SCRAM_FINISH_REPLY)
		return front_sasl_vault_reply(frame);
	if (frame->type != IPC_FRONT_AUTH_REPLY)
		return -1;
	for (req = front_auth_requests; req != NULL; req = req->next) {
		if (req->id == frame->id)
			break;
	}
	if (req == NULL)
		return -1;
	pool = pool_create("auth reply", 256);
	ipc_reader_init(&r, frame);
	result = ipc_get_u32(&r);
	account_id = ipc_get_u64(&r);
	address = ipc_get_str(&r, pool);
	struct span key = ipc_get_bytes(&r);
	uint64_t quota = ipc_get_u64(&r);
	if (ipc_end(&r) < 0 || result > AUTH_RESULT_TEMPFAIL ||
	    (key.len != 0 && key.len != 32)) {
		pool_unref(&pool);
		return -1;
	}
	if (req->conn != NULL && result == AUTH_RESULT_OK)
		front_conn_set_session_key(req->conn, key, quota);
	front_auth_request_finish(req, (enum auth_result)result, account_id,
				  address);
	pool_unref(&pool);
	return 0;
}

static void front_vault_closed(struct ipc_conn *conn, const char *reason,
			       void *context)
{
	log_warning(NULL, "front.vault.disconnected", "reason=%s",
		    log_value(0, reason));
	ipc_conn_destroy(&front_vault_ipc);
	front_vault_fail_all();
	front_delivery_vault_lost();
	front_sasl_vault_lost();
	front_dkim_vault_lost();
}

static struct ipc_conn *front_vault_get(struct front *front)
{
	const char *error;
	char *path;
	int fd;

	if (front_vault_ipc != NULL)
		return front_vault_ipc;
	path = i_strdup_printf("%s/run/vault.sock", front->set->data_dir);
	fd = net_connect_unix(path, &error);
	i_free(path);
	if (fd < 0) {
		log_error(NULL, "front.vault.connect_failed", "error=%s",
			  log_value(0, error));
		return NULL;
	}
	front_vault_ipc =
		ipc_conn_create(front->ioloop, fd, front_vault_handler,
				front_vault_closed, front);
	return front_vault_ipc;
}

static struct ipc_conn *front_vault_get_global(void)
{
	return front_vault_get(front_global);
}

/* The reply to a request that could not be sent arrives from a timer, so
   that callers never see their callback run inside their own call. */
static void front_auth_tempfail_later(void *context);
static struct timeout *front_tempfail_timeout;

static void front_auth_tempfail_later(void *context)
{
	struct front_auth_request *req, *next;

	timeout_remove(&front_tempfail_timeout);
	for (req = front_auth_requests; req != NULL; req = next) {
		next = req->next;
		if (req->id == 0)
			front_auth_request_finish(req, AUTH_RESULT_TEMPFAIL, 0,
						  "");
	}
}

void front_vault_request(struct front *front, const char *service,
			 const char *user, const uint8_t *password,
			 size_t password_len, const char *ip,
			 struct front_conn *conn,
			 front_auth_callback_t *callback)
{
	struct front_auth_request *req;
	struct ipc_conn *vault;
	struct buf out = BUF_INIT;
	size_t off;

	req = i_new(struct front_auth_request, 1);
	req->conn = conn;
	req->callback = callback;
	req->next = front_auth_requests;
	front_auth_requests = req;
	front_auth_pending_count++;

	vault = front_auth_pending_count > FRONT_MAX_PENDING_AUTH
			? NULL
			: front_vault_get(front);
	if (vault == NULL) {
		/* id 0 marks "answer TEMPFAIL from the timer" */
		if (front_tempfail_timeout == NULL) {
			front_tempfail_timeout =
				timeout_add(front->ioloop, 0,
					    front_auth_tempfail_later, NULL);
		}
		return;
	}
	req->id = front_auth_next_id++;
	if (front_auth_next_id == 0)
		front_auth_next_id = 1;
	off = ipc_msg_begin(&out, IPC_VAULT_AUTH, req->id);
	ipc_put_str(&out, service);
	ipc_put_str(&out, user);
	ipc_put_bytes(&out, password, password_len);
	ipc_put_str(&out, ip);
	ipc_msg_finish(&out, off);
	ipc_conn_send(vault, &out);
	buf_free_secure(&out);
}

int front_vault_send(struct front *front, const struct buf *out)
{
	struct ipc_conn *vault;

	if (front_auth_pending_count >= FRONT_MAX_PENDING_AUTH)
		return -1;
	vault = front_vault_get(front);
	if (vault == NULL)
		return -1;
	ipc_conn_send(vault, out);
	return 0;
}

void front_vault_usage_changed(uint64_t account_id)
{
	struct ipc_conn *vault = front_vault_get(front_global);
	struct buf out = BUF_INIT;
	size_t offset;

	if (vault == NULL)
		return;
	offset = ipc_msg_begin(&out, IPC_VAULT_USAGE_STALE, 0);
	ipc_put_u64(&out, account_id);
	ipc_msg_finish(&out, offset);
	ipc_conn_send(vault, &out);
	buf_free(&out);
}

void front_vault_forget_conn(struct front *front, struct front_conn *conn)
{
	front_sasl_forget_conn(conn);
	for (struct front_auth_request *req = front_auth_requests; req != NULL;
	     req = req->next) {
		if (req->conn == conn)
			req->conn = NULL;
	}
}

static unsigned int front_conns_from_bucket(struct front *front,
					    const char *bucket)
{
	unsigned int n = 0;

	for (struct front_conn *c = front->conns; c != NULL; c = c->next) {
		if (strcmp(c->ip_bucket, bucket) == 0)
			n++;
	}
	return n;
}

/* The refusal of a connection over a limit, in its protocol's words for
   "try again later", or NULL where a word would need a TLS handshake
   first (implicit TLS: the connection is only closed, which clients also
   take as temporary). */
static const char *front_refusal(enum settings_port kind)
{
	switch (kind) {
	case SETTINGS_PORT_SMTP:
	case SETTINGS_PORT_SUBMISSION:
		/* RFC 5321 3.1: a 421 greeting; RFC 3463 4.7.0. */
		return "421 4.7.0 Too many connections from your address\r\n";
	case SETTINGS_PORT_IMAP:
		/* RFC 9051 7.1.5: BYE as the greeting, then close. */
		return "* BYE Too many connections from your address\r\n";
	case SETTINGS_PORT_POP3:
		/* RFC 2449 8.1.2 / RFC 3206 4: SYS/TEMP. */
		return "-ERR [SYS/TEMP] Too many connections from your "
		       "address\r\n";
	case SETTINGS_PORT_HTTP:
		return "HTTP/1.1 503 Service Unavailable\r\n"
		       "Retry-After: 60\r\nContent-Length: 0\r\n"
		       "Connection: close\r\n\r\n";
	case SETTINGS_PORT_SUBMISSIONS:
	case SETTINGS_PORT_IMAPS:
	case SETTINGS_PORT_POP3S:
	case SETTINGS_PORT_HTTPS:
	case SETTINGS_PORT_COUNT:
		break;
	}
	return NULL;
}

/* Refuses without reading anything and without allocating: one
   non-blocking send into the empty socket buffer, a FIN, and the close.
   Nothing the client sent is read, so a flood of refused connections
   costs the front no memory. */
static void front_refuse(int fd, enum settings_port kind)
{
	const char *msg = front_refusal(kind);

	if (msg != NULL) {
		(void)send(fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL);
		(void)shutdown(fd, SHUT_WR);
	}
	close(fd);
}

static void front_listener_accept(void *context)
{
	struct front_listener_io *l = context;
	struct front *front = l->front;
	char ip[64];
	unsigned int port;

	/* Accept a bounded batch per wakeup so one busy listener cannot
	   starve the others. */
	for (unsigned int i = 0; i < 32; i++) {
		int fd = net_accept(l->fd, ip, &port);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_error(NULL, "front.accept.failed",
					  "error=%s",
					  log_value(0, strerror(errno)));
			return;
		}
		char bucket[64];

		net_ip_bucket(ip, bucket);
		if (front->conn_count >= front->set->max_connections ||
		    front_conns_from_bucket(front, bucket) >=
			    front->set->max_connections_per_ip) {
			log_warning(NULL, "front.accept.limit",
				    "ip=%s listener=%s limit=%s", ip,
				    settings_port_name(l->kind),
				    front->conn_count >=
						    front->set->max_connections
					    ? "total"
					    : "per_ip");
			front_refuse(fd, l->kind);
			continue;
		}
		front_conn_create(front, fd, ip, port, l->kind);
	}
}

static void front_reload(struct front *front)
{
	struct marmot_settings *set;
	struct tls_ctx *tls;
	const char *error;
	char *serror;

	if (settings_load(front->set->data_dir, NULL, &set, &serror) < 0) {
		log_error(NULL, "front.reload.failed", "error=%s",
			  log_value(0, serror));
		i_free(serror);
		return;
	}
	tls = tls_ctx_server_create(set->tls_cert, set->tls_key, &error);
	if (tls == NULL) {
		log_error(NULL, "front.reload.tls_failed",
			  "error=%s action=keeping_old_certificate",
			  log_value(0, error));
		settings_free(&set);
		return;
	}
	/* Established connections keep their reference to the old
	   context; new ones get the new certificate. */
	tls_ctx_unref(&front->tls);
	front->tls = tls;
	settings_free(&front->set);
	front->set = set;
	log_info(NULL, "front.reload", "result=ok");
}

static void front_shutdown_finish(void *context)
{
	struct front *front = context;

	ioloop_stop(front->ioloop);
}

static void front_shutdown_poll(void *context)
{
	struct front *front = context;

	if (front->conns == NULL)
		ioloop_stop(front->ioloop);
}

static void front_shutdown(struct front *front, const char *why)
{
	if (front->shutting_down)
		return;
	front->shutting_down = true;
	log_info(NULL, "front.shutdown", "reason=%s conns=%u", why,
		 front->conn_count);
	for (unsigned int i = 0; i < front_listener_count; i++) {
		io_remove(&front_listeners[i].io);
		close(front_listeners[i].fd);
		front_listeners[i].fd = -1;
	}
	front_conns_goodbye(front);
	front_shutdown_timeout =
		timeout_add(front->ioloop, front->set->shutdown_timeout * 1000,
			    front_shutdown_finish, front);
	front_shutdown_check =
		timeout_add(front->ioloop, 50, front_shutdown_poll, front);
}

static int front_master_handler(struct ipc_conn *conn,
				const struct ipc_frame *frame, void *context)
{
	struct front *front = context;
	struct ipc_reader r;

	if (frame->type != IPC_FRONT_RELOAD)
		return -1;
	ipc_reader_init(&r, frame);
	if (ipc_end(&r) < 0)
		return -1;
	front_reload(front);
	return 0;
}

static void front_master_closed(struct ipc_conn *conn, const char *reason,
				void *context)
{
	struct front *front = context;

	ipc_conn_destroy(&front_master_ipc);
	front_shutdown(front, "master_gone");
}

static void front_signal(int signo, void *context)
{
	front_shutdown(context, signo == SIGTERM ? "sigterm" : "signal");
}

static void front_send_hello(struct front *front)
{
	struct buf out = BUF_INIT;
	size_t off;

	off = ipc_msg_begin(&out, IPC_MASTER_HELLO, 0);
	ipc_put_u32(&out, (uint32_t)getpid());
	ipc_put_str(&out, "front");
	ipc_put_str(&out, MARMOT_VERSION);
	ipc_msg_finish(&out, off);
	ipc_conn_send(front_master_ipc, &out);
	buf_free(&out);
}

int front_main(struct marmot_settings *set, int master_fd,
	       const struct front_listener *listeners,
	       unsigned int listener_count)
{
	struct front front;
	const char *error;

	memset(&front, 0, sizeof(front));
	front.set = set;
	front_global = &front;
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_DUMPABLE, 0);

	front.tls = tls_ctx_server_create(set->tls_cert, set->tls_key, &error);
	if (front.tls == NULL) {
		log_error(NULL, "front.tls.failed", "error=%s",
			  log_value(0, error));
		return MARMOT_EXIT_CONFIG;
	}
	front.ioloop = ioloop_create();
	front_master_ipc =
		ipc_conn_create(front.ioloop, master_fd, front_master_handler,
				front_master_closed, &front);
	front_send_hello(&front);
	if (front_queue_init(&front, &error) < 0) {
		log_error(NULL, "front.queue.failed", "error=%s",
			  log_value(0, error));
		ipc_conn_destroy(&front_master_ipc);
		ioloop_destroy(&front.ioloop);
		tls_ctx_unref(&front.tls);
		return MARMOT_EXIT_CONFIG;
	}
	ioloop_signal_add(front.ioloop, SIGTERM, front_signal, &front);
	ioloop_signal_add(front.ioloop, SIGINT, front_signal, &front);

	if (listener_count > FRONT_MAX_LISTENERS)
		listener_count = FRONT_MAX_LISTENERS;
	for (unsigned int i = 0; i < listener_count; i++) {
		struct front_listener_io *l = &front_listeners[i];

		l->front = &front;
		l->kind = listeners[i].kind;
		l->fd = listeners[i].fd;
		net_set_nonblock(l->fd, true);
		net_set_cloexec(l->fd, true);
		l->io = io_add(front.ioloop, l->fd, IO_READ,
			       front_listener_accept, l);
	}
	front_listener_count = listener_count;
	const struct front_delivery_env delivery_env = {
		.ioloop = front.ioloop,
		.data_dir = set->data_dir,
		.vault_get = front_vault_get_global,
	};
	front_delivery_init(&delivery_env);
	front_mailauth_init(&front);
	log_info(NULL, "front.start", "listeners=%u pid=%d", listener_count,
		 (int)getpid());

	ioloop_run(front.ioloop);

	timeout_remove(&front_shutdown_timeout);
	timeout_remove(&front_shutdown_check);
	timeout_remove(&front_tempfail_timeout);
	for (unsigned int i = 0; i < front_listener_count; i++) {
		io_remove(&front_listeners[i].io);
		if (front_listeners[i].fd >= 0)
			close(front_listeners[i].fd);
	}
	front_conns_destroy_all(&front);
	front_imap_deinit();
	front_mailauth_deinit();
	front_queue_deinit();
	front_delivery_deinit();
	front_vault_fail_all();
	if (front_vault_ipc != NULL)
		ipc_conn_destroy(&front_vault_ipc);
	if (front_master_ipc != NULL)
		ipc_conn_destroy(&front_master_ipc);
	ioloop_signal_remove(front.ioloop, SIGTERM, front_signal, &front);
	ioloop_signal_remove(front.ioloop, SIGINT, front_signal, &front);
	ioloop_destroy(&front.ioloop);
	tls_ctx_unref(&front.tls);
	/* front_main owns the settings (a reload may have replaced them) */
	settings_free(&front.set);
	log_info(NULL, "front.stopped", "pid=%d", (int)getpid());
	return 0;
}
