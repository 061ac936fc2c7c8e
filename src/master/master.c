/* master.c - the master role: configuration, listeners, privileges, role
   supervision, the control socket, reload and drain.

   SECURITY: the master starts as root (or as the service user) and binds the
   listeners, opens master.key without reading it, then drops to the
   unprivileged user from marmot.conf before it forks anything. It never
   parses network input; its only peers are its own children (over
   socketpairs) and the admin CLI (over DATA/run/control.sock, mode 0600).
   Each role is started by fork + exec of this same binary, so a role gets a
   fresh address space and only the descriptors meant for it:
     vault: fd 3 = IPC with the master, fd 4 = master.key (read-only)
     front: fd 3 = IPC with the master, fd 4.. = listening sockets
   A role that dies is restarted at once, then with a growing delay while
   it keeps dying within a second of starting. */

#include "lib.h"
#include "buf.h"
#include "ioloop.h"
#include "ipc.h"
#include "log.h"
#include "net.h"
#include "pool.h"
#include "settings.h"
#include "tls.h"
#include "master.h"
#include "vault.h"
#include "front.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <sodium.h>
#include <sqlite3.h>

#define MASTER_MAX_LISTENERS 64
/* Every process must be gone this long after SIGTERM (issue #2). */
#define MASTER_KILL_AFTER_MSECS 9500
#define MASTER_RESTART_MAX_DELAY_MSECS 10000

enum master_role_kind {
	MASTER_ROLE_VAULT,
	MASTER_ROLE_FRONT,
	MASTER_ROLE_COUNT
};

static const char *const master_role_names[MASTER_ROLE_COUNT] = { "vault",
								  "front" };

struct master_listener {
	enum settings_port kind;
	char *addr;
	unsigned int port;
	int fd;
};

struct master_role {
	enum master_role_kind kind;
	pid_t pid;
	struct ipc_conn *ipc;
	time_t started;
	uint64_t started_ms;
	unsigned int restarts;
	unsigned int quick_deaths; /* consecutive deaths within 1 s */
	struct timeout *restart_timeout;
	char *version;
	bool hello;
};

struct master_control_client {
	struct master_control_client *prev, *next;
	struct ipc_conn *ipc;
};

struct master {
	struct marmot_settings *set;
	struct ioloop *ioloop;
	char *exe_path; /* fd of our own binary as /proc/self/fd/N */
	int exe_fd;
	int key_fd;
	struct master_listener listeners[MASTER_MAX_LISTENERS];
	unsigned int listener_count;
	struct master_role roles[MASTER_ROLE_COUNT];
	int control_fd;
	struct io *control_io;
	struct master_control_client *control_clients;
	struct timeout *kill_timeout;
	time_t started;
	/* At start the front waits for the vault's HELLO (sent once
	   vault.sock listens), at most MASTER_FRONT_WAIT_MSECS: a login or
	   RCPT in the first moments would otherwise get a temporary failure.
	   Connections that arrive meanwhile wait in the listen backlog. */
	struct timeout *front_wait;
	bool front_started;
	bool shutting_down;
	int exit_code;
};

static struct master *master_global;

#define MASTER_FRONT_WAIT_MSECS 5000

static void master_role_start(struct master *m, struct master_role *role);

/* Moves fd to a number >= 100 so that dup2() onto the low target numbers
   cannot clobber a source that happens to sit there. */
static int master_fd_move_high(int fd)
{
	int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 100);

	if (nfd < 0)
		_exit(MARMOT_EXIT_FATAL);
	return nfd;
}

static ATTR_NORETURN void master_child_exec(struct master *m,
					    struct master_role *role,
					    int ipc_fd)
{
	const char *argv[MASTER_MAX_LISTENERS + 8];
	char *specs[MASTER_MAX_LISTENERS];
	int high[MASTER_MAX_LISTENERS + 2];
	unsigned int argc = 0, n = 0;
	sigset_t all;

	/* Undo what the master's loop did to signals: the child starts
	   clean and sets up its own. */
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	}
	/* If the master dies without draining, the roles follow it. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);

	/* The executable's descriptor may sit on one of the target numbers
	   too: move it out of the way first. */
	int exe_fd = master_fd_move_high(m->exe_fd);

	high[n++] = master_fd_move_high(ipc_fd);
	if (role->kind == MASTER_ROLE_VAULT) {
		high[n++] = master_fd_move_high(m->key_fd);
	} else {
		for (unsigned int i = 0; i < m->listener_count; i++)
			high[n++] = master_fd_move_high(m->listeners[i].fd);
	}
	for (unsigned int i = 0; i < n; i++) {
		/* dup2() clears FD_CLOEXEC on the new descriptor. */
		if (dup2(high[i], 3 + (int)i) < 0)
			_exit(MARMOT_EXIT_FATAL);
	}

	argv[argc++] = "marmot";
	argv[argc++] = "role";
	argv[argc++] = master_role_names[role->kind];
	argv[argc++] = "--data";
	argv[argc++] = m->set->data_dir;
	if (role->kind == MASTER_ROLE_FRONT) {
		for (unsigned int i = 0; i < m->listener_count; i++) {
			specs[i] = i_strdup_printf(
				"%s:%u",
				settings_port_name(m->listeners[i].kind),
				4 + i);
			argv[argc++] = specs[i];
		}
	}
	argv[argc] = NULL;
	fexecve(exe_fd, (char *const *)argv, environ);
	fprintf(stderr, "marmot: exec of role %s failed: %s\n",
		master_role_names[role->kind], strerror(errno));
	_exit(MARMOT_EXIT_FATAL);
}

static void master_front_start(struct master *m)
{
	timeout_remove(&m->front_wait);
	if (m->front_started || m->shutting_down)
		return;
	m->front_started = true;
	master_role_start(m, &m->roles[MASTER_ROLE_FRONT]);
}

static void master_front_wait_timeout(void *context)
{
	struct master *m = context;

	log_warning(NULL, "master.vault.slow",
		    "waited_ms=%u action=start_front", MASTER_FRONT_WAIT_MSECS);
	master_front_start(m);
}

static int master_role_ipc_handler(struct ipc_conn *conn,
				   const struct ipc_frame *frame, void *context)
{
	struct master_role *role = context;
	struct ipc_reader r;
	pool_t pool;
	int ret = 0;

	if (frame->type != IPC_MASTER_HELLO) {
		log_warning(NULL, "master.ipc.unexpected", "role=%s type=%u",
			    master_role_names[role->kind], frame->type);
		return -1;
	}
	pool = pool_create("hello", 256);
	ipc_reader_init(&r, frame);
	(void)ipc_get_u32(&r);
	(void)ipc_get_str(&r, pool);
	i_free(role->version);
	role->version = i_strdup(ipc_get_str(&r, pool));
	if (ipc_end(&r) < 0)
		ret = -1;
	else
		role->hello = true;
	pool_unref(&pool);
	if (ret == 0 && role->kind == MASTER_ROLE_VAULT)
		master_front_start(master_global);
	return ret;
}

static void master_role_ipc_closed(struct ipc_conn *conn, const char *reason,
				   void *context)
{
	struct master_role *role = context;

	/* The process exit itself arrives through SIGCHLD. */
	ipc_conn_destroy(&role->ipc);
}

static void master_role_start(struct master *m, struct master_role *role)
{
	int fds[2];
	pid_t pid;

	timeout_remove(&role->restart_timeout);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
		fatal("master.socketpair", "error=%s",
		      log_value(0, strerror(errno)));
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		log_error(NULL, "master.fork.failed", "role=%s error=%s",
			  master_role_names[role->kind],
			  log_value(0, strerror(errno)));
		role->restart_timeout = NULL;
		return;
	}
	if (pid == 0) {
		close(fds[0]);
		master_child_exec(m, role, fds[1]);
	}
	close(fds[1]);
	role->pid = pid;
	role->started = time(NULL);
	role->started_ms = ioloop_now_ms(m->ioloop);
	role->hello = false;
	role->ipc = ipc_conn_create(m->ioloop, fds[0], master_role_ipc_handler,
				    master_role_ipc_closed, role);
	log_info(NULL, "master.role.started", "role=%s pid=%d",
		 master_role_names[role->kind], (int)pid);
}

static void master_role_restart_timeout(void *context)
{
	struct master_role *role = context;

	timeout_remove(&role->restart_timeout);
	master_role_start(master_global, role);
}

static void master_maybe_finish(struct master *m)
{
	for (unsigned int i = 0; i < MASTER_ROLE_COUNT; i++) {
		if (m->roles[i].pid > 0)
			return;
	}
	ioloop_stop(m->ioloop);
}

static void master_role_exited(struct master *m, struct master_role *role,
			       int status)
{
	uint64_t lived_ms = ioloop_now_ms(m->ioloop) - role->started_ms;
	unsigned int delay;

	if (WIFSIGNALED(status)) {
		log_event(m->shutting_down ? LOG_LEVEL_INFO : LOG_LEVEL_ERROR,
			  NULL, "master.role.exited",
			  "role=%s pid=%d signal=%d",
			  master_role_names[role->kind], (int)role->pid,
			  WTERMSIG(status));
	} else {
		log_event(m->shutting_down || WEXITSTATUS(status) == 0
				  ? LOG_LEVEL_INFO
				  : LOG_LEVEL_ERROR,
			  NULL, "master.role.exited",
			  "role=%s pid=%d status=%d",
			  master_role_names[role->kind], (int)role->pid,
			  WEXITSTATUS(status));
	}
	role->pid = 0;
	if (role->ipc != NULL)
		ipc_conn_destroy(&role->ipc);
	if (m->shutting_down) {
		master_maybe_finish(m);
		return;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == MARMOT_EXIT_CONFIG) {
		/* Restarting cannot fix a configuration error. */
		log_error(NULL, "master.role.config_error",
			  "role=%s action=shutdown",
			  master_role_names[role->kind]);
		m->exit_code = MARMOT_EXIT_CONFIG;
		kill(getpid(), SIGTERM);
		return;
	}
	role->restarts++;
	role->quick_deaths = lived_ms < 1000 ? role->quick_deaths + 1 : 0;
	/* The first restart is immediate; a role that keeps dying at start
	   is retried with a doubling delay so it cannot spin. */
	delay = 0;
	if (role->quick_deaths > 1) {
		delay = 100u << (role->quick_deaths < 8 ? role->quick_deaths - 2
							: 6);
		if (delay > MASTER_RESTART_MAX_DELAY_MSECS)
			delay = MASTER_RESTART_MAX_DELAY_MSECS;
	}
	if (delay == 0) {
		master_role_start(m, role);
	} else {
		log_warning(NULL, "master.role.restart_delayed",
			    "role=%s delay_ms=%u",
			    master_role_names[role->kind], delay);
		role->restart_timeout = timeout_add(
			m->ioloop, delay, master_role_restart_timeout, role);
	}
}

static void master_sigchld(int signo, void *context)
{
	struct master *m = context;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (unsigned int i = 0; i < MASTER_ROLE_COUNT; i++) {
			if (m->roles[i].pid == pid) {
				master_role_exited(m, &m->roles[i], status);
				break;
			}
		}
	}
}

static void master_kill_timeout(void *context)
{
	struct master *m = context;

	timeout_remove(&m->kill_timeout);
	for (unsigned int i = 0; i < MASTER_ROLE_COUNT; i++) {
		if (m->roles[i].pid > 0) {
			log_warning(NULL, "master.role.killed",
				    "role=%s pid=%d reason=drain_timeout",
				    master_role_names[i], (int)m->roles[i].pid);
			kill(m->roles[i].pid, SIGKILL);
		}
	}
}

static void master_control_client_free(struct master *m,
				       struct master_control_client *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		m->control_clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	ipc_conn_destroy(&c->ipc);
	i_free(c);
}

static void master_close_listeners(struct master *m)
{
	for (unsigned int i = 0; i < m->listener_count; i++) {
		if (m->listeners[i].fd >= 0) {
			close(m->listeners[i].fd);
			m->listeners[i].fd = -1;
		}
	}
}

static void master_sigterm(int signo, void *context)
{
	struct master *m = context;

	if (m->shutting_down)
		return;
	m->shutting_down = true;
	timeout_remove(&m->front_wait);
	log_info(NULL, "master.shutdown", "signal=%d", signo);
	master_close_listeners(m);
	io_remove(&m->control_io);
	for (unsigned int i = 0; i < MASTER_ROLE_COUNT; i++) {
		timeout_remove(&m->roles[i].restart_timeout);
		if (m->roles[i].pid > 0)
			kill(m->roles[i].pid, SIGTERM);
	}
	m->kill_timeout = timeout_add(m->ioloop, MASTER_KILL_AFTER_MSECS,
				      master_kill_timeout, m);
	master_maybe_finish(m);
}

static bool master_listeners_changed(const struct marmot_settings *a,
				     const struct marmot_settings *b)
{
	unsigned int i;

	for (i = 0; i < SETTINGS_PORT_COUNT; i++) {
		if (a->ports[i] != b->ports[i])
			return true;
	}
	for (i = 0; a->listen[i] != NULL && b->listen[i] != NULL; i++) {
		if (strcmp(a->listen[i], b->listen[i]) != 0)
			return true;
	}
	return a->listen[i] != NULL || b->listen[i] != NULL ||
	       strcmp(a->user, b->user) != 0;
}

static void master_sighup(int signo, void *context)
{
	struct master *m = context;
	struct marmot_settings *set;
	enum log_level level;
	char *error;
	struct buf msg = BUF_INIT;

	if (m->shutting_down)
		return;
	if (settings_load(m->set->data_dir, NULL, &set, &error) < 0) {
		log_error(NULL, "master.reload.failed",
			  "error=%s action=keeping_old_config",
			  log_value(0, error));
		i_free(error);
		return;
	}
	if (master_listeners_changed(m->set, set)) {
		log_warning(NULL, "master.reload.listeners_changed",
			    "action=restart_needed");
	}
	if (log_level_parse(set->log_level, &level) == 0)
		log_set_level(level);
	settings_free(&m->set);
	m->set = set;
	/* The front re-reads the file and its certificate itself. */
	if (m->roles[MASTER_ROLE_FRONT].ipc != NULL) {
		ipc_msg_finish(&msg, ipc_msg_begin(&msg, IPC_FRONT_RELOAD, 0));
		ipc_conn_send(m->roles[MASTER_ROLE_FRONT].ipc, &msg);
		buf_free(&msg);
	}
	log_info(NULL, "master.reload", "result=ok");
}

static void master_status_text(struct master *m, struct buf *out)
{
	time_t now = time(NULL);

	buf_printf(out, "marmot %s (%s, SQLite %s, libsodium %s)\n",
		   MARMOT_VERSION, OpenSSL_version(OPENSSL_VERSION),
		   sqlite3_libversion(), sodium_version_string());
	buf_printf(out, "data: %s\n", m->set->data_dir);
	buf_printf(out, "hostname: %s\n", m->set->hostname);
	buf_printf(out, "uptime: %llds\n", (long long)(now - m->started));
	buf_printf(out, "roles:\n");
	buf_printf(out, "  master  pid %d  running  version %s\n",
		   (int)getpid(), MARMOT_VERSION);
	for (unsigned int i = 0; i < MASTER_ROLE_COUNT; i++) {
		struct master_role *role = &m->roles[i];

		if (role->pid > 0) {
			buf_printf(out,
				   "  %-6s  pid %d  %s  version %s  up %llds  "
				   "restarts %u\n",
				   master_role_names[i], (int)role->pid,
				   role->hello ? "running" : "starting",
				   role->version != NULL ? role->version : "?",
				   (long long)(now - role->started),
				   role->restarts);
		} else {
			buf_printf(out, "  %-6s  not running  restarts %u\n",
				   master_role_names[i], role->restarts);
		}
	}
	buf_printf(out, "listeners:\n");
	for (unsigned int i = 0; i < m->listener_count; i++) {
		const struct master_listener *l = &m->listeners[i];
		bool v6 = strchr(l->addr, ':') != NULL;

		buf_printf(out, "  %-12s %s%s%s:%u%s\n",
			   settings_port_name(l->kind), v6 ? "[" : "", l->addr,
			   v6 ? "]" : "", l->port,
			   settings_port_implicit_tls(l->kind) ? "  (TLS)"
							       : "");
	}
}

static int master_control_handler(struct ipc_conn *conn,
				  const struct ipc_frame *frame, void *context)
{
	struct master *m = master_global;
	struct ipc_reader r;
	struct buf text = BUF_INIT, out = BUF_INIT;
	size_t off;

	if (frame->type != IPC_CONTROL_STATUS)
		return -1;
	ipc_reader_init(&r, frame);
	if (ipc_end(&r) < 0)
		return -1;
	master_status_text(m, &text);
	off = ipc_msg_begin(&out, IPC_CONTROL_STATUS_REPLY, frame->id);
	ipc_put_str(&out, buf_cstr(&text));
	ipc_msg_finish(&out, off);
	ipc_conn_send(conn, &out);
	buf_free(&out);
	buf_free(&text);
	return 0;
}

static void master_control_closed(struct ipc_conn *conn, const char *reason,
				  void *context)
{
	master_control_client_free(master_global, context);
}

static void master_control_accept(void *context)
{
	struct master *m = context;
	struct master_control_client *c;
	char ip[64];
	unsigned int port;
	int fd;

	fd = net_accept(m->control_fd, ip, &port);
	if (fd < 0)
		return;
	c = i_new(struct master_control_client, 1);
	c->next = m->control_clients;
	if (c->next != NULL)
		c->next->prev = c;
	m->control_clients = c;
	c->ipc = ipc_conn_create(m->ioloop, fd, master_control_handler,
				 master_control_closed, c);
}

static int master_bind_listeners(struct master *m, const char **error_r)
{
	const struct marmot_settings *set = m->set;

	for (unsigned int a = 0; set->listen[a] != NULL; a++) {
		for (unsigned int p = 0; p < SETTINGS_PORT_COUNT; p++) {
			struct master_listener *l;
			int fd;

			if (set->ports[p] == 0)
				continue;
			if (m->listener_count == MASTER_MAX_LISTENERS) {
				*error_r = "too many listeners";
				return -1;
			}
			fd = net_listen_tcp(set->listen[a], set->ports[p],
					    error_r);
			if (fd < 0)
				return -1;
			l = &m->listeners[m->listener_count++];
			l->kind = p;
			l->addr = i_strdup(set->listen[a]);
			l->port = set->ports[p];
			l->fd = fd;
		}
	}
	return 0;
}

/* Drops root to the configured user. Called after binding and opening
   everything that needs root. */
static int master_drop_privileges(struct master *m, const char **error_r)
{
	static char errbuf[256];
	struct passwd *pw;

	if (geteuid() != 0) {
		log_warning(NULL, "master.unprivileged",
			    "uid=%d note=roles_share_one_uid", (int)getuid());
		return 0;
	}
	pw = getpwnam(m->set->user);
	if (pw == NULL) {
		snprintf(errbuf, sizeof(errbuf),
			 "user '%s' (setting 'user' in marmot.conf) does not "
			 "exist; create it with: useradd --system --home-dir "
			 "/var/lib/marmot --shell /usr/sbin/nologin %s",
			 m->set->user, m->set->user);
		*error_r = errbuf;
		return -1;
	}
	if (pw->pw_uid == 0) {
		*error_r = "refusing to run the roles as root: set 'user' in "
			   "marmot.conf to an unprivileged user";
		return -1;
	}
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		snprintf(errbuf, sizeof(errbuf),
			 "dropping privileges to %s failed: %s", m->set->user,
			 strerror(errno));
		*error_r = errbuf;
		return -1;
	}
	if (setuid(0) == 0) {
		*error_r = "privileges could not be dropped (setuid(0) "
			   "still works)";
		return -1;
	}
	log_info(NULL, "master.privileges_dropped", "user=%s uid=%d",
		 log_value(0, m->set->user), (int)pw->pw_uid);
	return 0;
}

static void master_free(struct master *m)
{
	while (m->control_clients != NULL)
		master_control_client_free(m, m->control_clients);
	io_remove(&m->control_io);
	if (m->control_fd >= 0)
		close(m->control_fd);
	timeout_remove(&m->kill_timeout);
	for (unsigned int i = 0; i < MASTER_ROLE_COUNT; i++) {
		timeout_remove(&m->roles[i].restart_timeout);
		if (m->roles[i].ipc != NULL)
			ipc_conn_destroy(&m->roles[i].ipc);
		i_free(m->roles[i].version);
	}
	master_close_listeners(m);
	for (unsigned int i = 0; i < m->listener_count; i++)
		i_free(m->listeners[i].addr);
	if (m->key_fd >= 0)
		close(m->key_fd);
	if (m->exe_fd >= 0)
		close(m->exe_fd);
	if (m->ioloop != NULL) {
		ioloop_signal_remove(m->ioloop, SIGCHLD, master_sigchld, m);
		ioloop_signal_remove(m->ioloop, SIGTERM, master_sigterm, m);
		ioloop_signal_remove(m->ioloop, SIGINT, master_sigterm, m);
		ioloop_signal_remove(m->ioloop, SIGHUP, master_sighup, m);
		ioloop_destroy(&m->ioloop);
	}
	settings_free(&m->set);
}

int master_run(const char *data_dir)
{
	struct master m;
	struct tls_ctx *tls;
	enum log_level level;
	const char *error;
	char *serror, *path, real[PATH_MAX];
	struct stat st;

	memset(&m, 0, sizeof(m));
	m.key_fd = m.exe_fd = m.control_fd = -1;
	/* Everything the server creates (stores, blobs, spools, sockets) is
	   for the service user alone; the roles inherit this. */
	umask(077);
	m.exit_code = 0;
	log_set_role("master");

	if (realpath(data_dir, real) == NULL || stat(real, &st) < 0 ||
	    !S_ISDIR(st.st_mode)) {
		fprintf(stderr,
			"marmot: data directory %s does not exist (create it "
			"with: marmot init --data %s ...)\n",
			data_dir, data_dir);
		return MARMOT_EXIT_CONFIG;
	}
	if (settings_load(real, NULL, &m.set, &serror) < 0) {
		fprintf(stderr, "marmot: %s\n", serror);
		i_free(serror);
		return MARMOT_EXIT_CONFIG;
	}
	if (log_level_parse(m.set->log_level, &level) == 0)
		log_set_level(level);

	/* Fail fast on a bad certificate rather than in the front. */
	tls = tls_ctx_server_create(m.set->tls_cert, m.set->tls_key, &error);
	if (tls == NULL) {
		fprintf(stderr, "marmot: TLS: %s\n", error);
		settings_free(&m.set);
		return MARMOT_EXIT_CONFIG;
	}
	tls_ctx_unref(&tls);

	path = i_strdup_printf("%s/master.key", m.set->data_dir);
	m.key_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (m.key_fd < 0) {
		fprintf(stderr, "marmot: %s: %s\n", path, strerror(errno));
		i_free(path);
		master_free(&m);
		return MARMOT_EXIT_CONFIG;
	}
	i_free(path);
	/* Re-exec'ing through a descriptor works even if the binary's
	   directory is not searchable by the unprivileged user. */
	m.exe_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (m.exe_fd < 0) {
		fprintf(stderr, "marmot: /proc/self/exe: %s\n",
			strerror(errno));
		master_free(&m);
		return MARMOT_EXIT_FATAL;
	}
	if (master_bind_listeners(&m, &error) < 0 ||
	    master_drop_privileges(&m, &error) < 0) {
		fprintf(stderr, "marmot: %s\n", error);
		master_free(&m);
		return MARMOT_EXIT_CONFIG;
	}
	prctl(PR_SET_DUMPABLE, 0);
	if (chdir(m.set->data_dir) < 0) {
		fprintf(stderr, "marmot: chdir %s: %s\n", m.set->data_dir,
			strerror(errno));
		master_free(&m);
		return MARMOT_EXIT_CONFIG;
	}
	path = i_strdup_printf("%s/run", m.set->data_dir);
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "marmot: mkdir %s: %s\n", path,
			strerror(errno));
		i_free(path);
		master_free(&m);
		return MARMOT_EXIT_CONFIG;
	}
	i_free(path);
	path = i_strdup_printf("%s/run/control.sock", m.set->data_dir);
	m.control_fd = net_listen_unix(path, 0600, &error);
	i_free(path);
	if (m.control_fd < 0) {
		fprintf(stderr, "marmot: control socket: %s\n", error);
		master_free(&m);
		return MARMOT_EXIT_CONFIG;
	}
	signal(SIGPIPE, SIG_IGN);

	master_global = &m;
	m.started = time(NULL);
	m.ioloop = ioloop_create();
	ioloop_signal_add(m.ioloop, SIGCHLD, master_sigchld, &m);
	ioloop_signal_add(m.ioloop, SIGTERM, master_sigterm, &m);
	ioloop_signal_add(m.ioloop, SIGINT, master_sigterm, &m);
	ioloop_signal_add(m.ioloop, SIGHUP, master_sighup, &m);
	m.control_io = io_add(m.ioloop, m.control_fd, IO_READ,
			      master_control_accept, &m);
	for (unsigned int i = 0; i < MASTER_ROLE_COUNT; i++)
		m.roles[i].kind = i;
	log_info(NULL, "master.start", "version=%s data=%s listeners=%u",
		 MARMOT_VERSION, log_value(0, m.set->data_dir),
		 m.listener_count);
	/* The vault first; the front once the vault listens (its HELLO), so
	   the front's first login or RCPT finds it. */
	master_role_start(&m, &m.roles[MASTER_ROLE_VAULT]);
	m.front_wait = timeout_add(m.ioloop, MASTER_FRONT_WAIT_MSECS,
				   master_front_wait_timeout, &m);

	if (ioloop_run(m.ioloop) < 0)
		m.exit_code = MARMOT_EXIT_FATAL;
	log_info(NULL, "master.stopped", "exit=%d", m.exit_code);
	{
		int code = m.exit_code;
		char *sock =
			i_strdup_printf("%s/run/control.sock", m.set->data_dir);

		unlink(sock);
		i_free(sock);
		master_free(&m);
		master_global = NULL;
		return code;
	}
}

/* marmot role vault|front --data DIR [KIND:FD...] */
int master_role_main(int argc, char **argv)
{
	struct front_listener listeners[MASTER_MAX_LISTENERS];
	unsigned int count = 0;
	const char *data_dir = NULL, *role;
	struct marmot_settings *set;
	enum log_level level;
	char *error;
	int i, ret;

	if (argc < 2) {
		fprintf(stderr, "marmot: role: missing role name\n");
		return 2;
	}
	role = argv[1];
	umask(077);
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
			data_dir = argv[++i];
			continue;
		}
		const char *colon = strchr(argv[i], ':');
		unsigned int p;

		if (colon == NULL || count == MASTER_MAX_LISTENERS) {
			fprintf(stderr, "marmot: role: bad argument %s\n",
				argv[i]);
			return 2;
		}
		for (p = 0; p < SETTINGS_PORT_COUNT; p++) {
			const char *name = settings_port_name(p);

			if (strlen(name) == (size_t)(colon - argv[i]) &&
			    strncmp(name, argv[i], strlen(name)) == 0)
				break;
		}
		if (p == SETTINGS_PORT_COUNT) {
			fprintf(stderr, "marmot: role: unknown listener %s\n",
				argv[i]);
			return 2;
		}
		listeners[count].kind = p;
		listeners[count].fd = atoi(colon + 1);
		count++;
	}
	if (data_dir == NULL) {
		fprintf(stderr, "marmot: role: --data missing\n");
		return 2;
	}
	log_set_role(role);
	if (settings_load(data_dir, NULL, &set, &error) < 0) {
		log_error(NULL, "role.config.failed", "error=%s",
			  log_value(0, error));
		i_free(error);
		return MARMOT_EXIT_CONFIG;
	}
	if (log_level_parse(set->log_level, &level) == 0)
		log_set_level(level);
	if (strcmp(role, "vault") == 0)
		ret = vault_main(set, 3, 4);
	else if (strcmp(role, "front") == 0) {
		ret = front_main(set, 3, listeners, count);
		set = NULL; /* front_main owns it */
	} else {
		fprintf(stderr, "marmot: role: unknown role %s\n", role);
		ret = 2;
	}
	settings_free(&set);
	return ret;
}
