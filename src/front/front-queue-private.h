#ifndef MARMOT_FRONT_QUEUE_PRIVATE_H
#define MARMOT_FRONT_QUEUE_PRIVATE_H
/* Shared between the queue runner's two files: front-queue.c (the index,
   scheduling, results, DSNs, local recipients, marmot queue requests)
   and front-queue-smtp.c (destinations and the SMTP client). Nothing
   here is for the rest of the front: front-queue.h is its interface. */

#include "lib.h"
#include "pool.h"
#include "queue.h"
#include "smtp-reply.h"

struct front;
struct io;
struct stream;
struct timeout;
struct tls_ctx;
struct dns;
struct dns_lookup;
struct fq_sts_lookup;
struct fq_dane_records;
struct mtasts_policy;

/* Bounds: connections in total, candidate addresses and MX hosts per
   delivery attempt. */
#define FQ_CONNS_MAX 200
#define FQ_ADDRS_MAX 16
#define FQ_MX_MAX 16

enum fq_result {
	FQ_RESULT_NONE, /* not decided: a temporary failure */
	FQ_RESULT_OK,
	FQ_RESULT_TEMP,
	FQ_RESULT_PERM,
};

struct fq_entry {
	char id[QUEUE_ID_LEN + 1];
	int64_t due; /* INT64_MAX: nothing to do until a request */
	char *dsn_key; /* "<id>;<gen>" when this is one of our DSNs */
	bool busy; /* jobs running on its loaded message */
	bool seen; /* scan marker */
	bool flush; /* ignore next_attempt once */
	bool broken; /* does not load: left for an operator */
};

struct fq_msg {
	struct fq_msg *prev, *next; /* fq_msgs: messages being worked on */
	char id[QUEUE_ID_LEN + 1];
	struct queue_message *msg;
	unsigned int jobs;
	unsigned int started; /* jobs started: results to save */
	bool deleted; /* `marmot queue delete` while busy */
	int hold_request; /* -1 none, 0 release, 1 hold (while busy) */
};

struct fq_job {
	struct fq_msg *m;
	unsigned int *idx; /* recipient indexes in m->msg */
	unsigned int count;
	enum fq_result *res;
	char **reply; /* per recipient, i_malloc */
	unsigned int rcpt_pos; /* next RCPT to send / reply to take */
	unsigned int accepted;
};

struct fq_dest {
	struct fq_dest *next;
	char *key; /* domain, or FQ_RELAY_KEY */
	unsigned int active; /* connections, idle ones included */
};

enum fq_state {
	FQ_STATE_RESOLVING,
	FQ_STATE_CONNECTING,
	FQ_STATE_GREETING,
	FQ_STATE_EHLO,
	FQ_STATE_HELO,
	FQ_STATE_STARTTLS,
	FQ_STATE_TLS_HANDSHAKE,
	FQ_STATE_MAIL,
	FQ_STATE_RCPT,
	FQ_STATE_DATA,
	FQ_STATE_BODY,
	FQ_STATE_RSET,
	FQ_STATE_IDLE,
	FQ_STATE_QUIT,
};

/* What the current MX host's TLS must be (front-tlspolicy.h). */
enum fq_tls_req {
	/* RFC 7435: TLS if offered, unauthenticated, else plaintext. */
	FQ_TLS_OPPORTUNISTIC,
	/* RFC 7672: TLS, the certificate matching a usable TLSA record. */
	FQ_TLS_DANE,
	/* RFC 7672 2.2: secure TLSA records, none usable: TLS required,
	   not authenticated. */
	FQ_TLS_DANE_ENCRYPT,
	/* RFC 8461 5: enforce mode: TLS, a certificate valid for the MX
	   host name. */
	FQ_TLS_STS,
};

struct fq_addr {
	char host[256]; /* the name for logs, DSN Remote-MTA and SNI */
	char ip[46];
	unsigned int port;
};

struct fq_conn {
	struct fq_conn *prev, *next;
	char log_id[24];
	struct fq_dest *dest;
	struct fq_job *job;
	enum fq_state state;
	pool_t pool; /* per session: EHLO data, cleared per host */
	pool_t reply_pool; /* one reply, cleared after it */
	/* Candidate addresses, in order (MX preference, then address). */
	struct fq_addr addrs[FQ_ADDRS_MAX];
	unsigned int addr_count, addr_pos;
	char *mx_hosts[FQ_MX_MAX];
	unsigned int mx_count, mx_pos;
	unsigned int port; /* for MX hosts: 25 */
	int fd;
	struct io *connect_io;
	struct stream *stream;
	struct timeout *timeout;
	struct smtp_ehlo ehlo;
	bool tls;
	bool session_ok; /* a host completed EHLO: errors are per job */
	/* Why the last host failed (for the job's temporary failure). */
	char *last_error;
	/* Permanent: the whole destination refuses (null MX, REQUIRETLS). */
	bool perm_failure;
	struct dns_lookup *lookup; /* MARMOT_HAVE_DNS builds only */
	/* Outbound TLS policy (MARMOT_HAVE_DNS builds only). */
	struct fq_sts_lookup *sts_lookup;
	pool_t policy_pool; /* conn lifetime: the MTA-STS policy */
	struct mtasts_policy *sts; /* testing or enforce; NULL: none */
	bool mx_secure; /* the MX answer was DNSSEC-secure */
	enum fq_tls_req host_tls; /* for the host being tried */
	struct fq_dane_records *dane; /* its TLSA records (FQ_TLS_DANE) */
};

struct fq_runner {
	struct front *front;
	struct queue *queue;
	struct tls_ctx *tls_client;
	struct timeout *tick;
	struct timeout *added_timeout;
	struct fq_entry *entries;
	unsigned int entry_count, entry_alloc;
	struct fq_dest *dests;
	struct fq_conn *conns;
	unsigned int conn_count;
	unsigned int conn_seq;
	int64_t next_scan;
	bool relay; /* queue_relay_host set */
	bool relay_is_ip; /* else a name to resolve (A/AAAA, no MX) */
	char relay_host[256];
	unsigned int relay_port;
	struct dns *dns; /* MARMOT_HAVE_DNS builds only */
};

extern struct fq_runner *fq;

/* front-queue.c */
/* Starts what is due (never re-entered: a call from inside returns). */
void fq_dispatch(void);
/* The job of conn ends: its results go to the message (recipients without
   one get conn's last error); conn->job becomes NULL. */
void fq_job_finish(struct fq_conn *conn, const char *host);

/* front-queue-smtp.c */
struct fq_dest *fq_dest_get(const char *key);
/* An idle (reusable) connection to dest, or NULL. */
struct fq_conn *fq_dest_idle_conn(struct fq_dest *dest);
/* Whether a job for key can start now (an idle connection, or room under
   queue_max_per_domain and FQ_CONNS_MAX). */
bool fq_dest_has_room(const char *key);
/* Opens a connection for job (resolving, connecting, EHLO, TLS, then the
   transaction). The result may already be freed when this returns (a
   failure at once): do not use it. */
struct fq_conn *fq_conn_create(struct fq_dest *dest, struct fq_job *job);
/* Runs conn->job, just set, on the idle connection conn. */
void fq_conn_start_job(struct fq_conn *conn);
/* Ends conn->job (if any) and frees conn; sets *conn to NULL. */
void fq_conn_destroy(struct fq_conn **conn);
void fq_conn_set_error(struct fq_conn *conn, const char *fmt, ...)
	ATTR_FORMAT(2, 3);

#endif
