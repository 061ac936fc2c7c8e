#ifndef MARMOT_IPC_H
#define MARMOT_IPC_H
/* Typed, length-prefixed messages between roles (OpenSMTPD's imsg idea).

   Wire format of one frame, all integers little-endian:
     u32 length   bytes of payload that follow the 12-byte header
     u16 type     enum ipc_type
     u16 flags    0 (reserved; a non-zero value is a protocol error)
     u32 id       request id, echoed in the reply (0 = unsolicited)
     payload      a sequence of fields written by ipc_put_*()
   Fields: u32 and u64 as fixed-width little-endian; bytes and strings as a
   u32 length then the bytes (strings carry no NUL and must not contain
   one). A frame larger than IPC_MAX_PAYLOAD is a protocol error, and the
   connection is closed.

   A reader consumes fields in order with ipc_get_*(); any short read marks
   the reader failed, and ipc_end() fails unless every byte was consumed
   exactly and nothing failed (OpenSMTPD m_end). Handlers must call
   ipc_end() before acting on a message. */

#include "lib.h"
#include "buf.h"
#include "span.h"

#define IPC_HEADER_SIZE 12
#define IPC_MAX_PAYLOAD (1024 * 1024)

/* Namespaced by receiver. Values are part of the wire format between
   processes of the same build only, but keep them stable anyway. */
enum ipc_type {
	/* to the master */
	IPC_MASTER_HELLO = 1, /* u32 role pid, str role, str version */
	IPC_MASTER_STATUS_REPLY = 2,
	/* to the vault */
	IPC_VAULT_AUTH = 100, /* str service, str username, bytes password,
				 str remote ip -> IPC_FRONT_AUTH_REPLY */
	IPC_VAULT_PING = 101, /* -> IPC_FRONT_PONG */
	IPC_VAULT_RCPT = 110, /* str address, u64 message size hint (0 =
				 unknown) -> IPC_FRONT_RCPT_REPLY */
	IPC_VAULT_SENDER = 111, /* u64 account id, str address ->
				   IPC_FRONT_SENDER_REPLY */
	IPC_VAULT_USAGE_STALE = 112, /* u64 account id; no reply: the front
					committed a change of the account's
					store usage (vault-rcpt.h) */
	/* SCRAM-SHA-256 (RFC 5802, RFC 7677) in two steps; see
	   vault-scram.h. */
	IPC_VAULT_SCRAM_START = 120, /* str service, str client-first-message,
					str remote ip ->
					IPC_FRONT_SCRAM_START_REPLY */
	IPC_VAULT_SCRAM_FINISH = 121, /* u32 session id, str
					 client-final-message ->
					 IPC_FRONT_SCRAM_FINISH_REPLY */
	/* DKIM signing (vault-dkim.h). */
	IPC_VAULT_DKIM_KEYS = 130, /* str domain ->
				      IPC_FRONT_DKIM_KEYS_REPLY */
	IPC_VAULT_DKIM_SIGN = 131, /* str domain, u32 n, n x (str selector,
				      u32 algorithm, bytes digest 32) ->
				      IPC_FRONT_DKIM_SIGN_REPLY */
	/* to the front */
	IPC_FRONT_AUTH_REPLY = 200, /* u32 result (enum auth_result),
				       u64 account id, str canonical address,
				       bytes data key (32 for an OK imap or
				       pop3 login, else empty), u64 quota */
	IPC_FRONT_PONG = 201,
	IPC_FRONT_SCRAM_START_REPLY = 220, /* u32 result (AUTH_RESULT_OK: go
					      on; FAILED: malformed; TEMPFAIL),
					      u32 session id, str
					      server-first-message */
	IPC_FRONT_SCRAM_FINISH_REPLY = 221, /* u32 result (enum auth_result),
					       u64 account id, str canonical
					       address, str server-final-message
					       ("" unless OK), bytes data key,
					       u64 quota (as AUTH_REPLY) */
	IPC_FRONT_RELOAD = 202, /* master -> front: reload TLS and settings */
	IPC_FRONT_RCPT_REPLY = 210, /* u32 result (enum ipc_rcpt_result),
				       u32 quota_permanent (0/1), str
				       normalised address, u32 n locals, n x
				       (u64 account id, bytes public key 32),
				       u32 n remote, n x str address */
	IPC_FRONT_SENDER_REPLY = 211, /* u32 owned (0 no, 1 yes, 2 tempfail) */
	IPC_FRONT_CHANGED = 203, /* vault -> front: u64 account id, u64
				    mailbox id (0 = mailbox list), u64 modseq;
				    unsolicited (id 0) */
	IPC_FRONT_DKIM_KEYS_REPLY = 230, /* u32 status (enum
					    ipc_dkim_status), u32 n, n x (str
					    selector, u32 algorithm) */
	IPC_FRONT_DKIM_SIGN_REPLY = 231, /* u32 status, u32 n, n x bytes
					    signature */
	/* control socket (CLI <-> master) */
	IPC_CONTROL_STATUS = 300, /* -> IPC_CONTROL_STATUS_REPLY */
	IPC_CONTROL_STATUS_REPLY = 301, /* str text (human-readable report) */
};

/* Result of IPC_VAULT_AUTH. An unknown user and a wrong password give the
   same AUTH_RESULT_FAILED, after the same amount of work. DISABLED is only
   returned after a correct password. */
enum auth_result {
	AUTH_RESULT_OK = 0,
	AUTH_RESULT_FAILED = 1,
	AUTH_RESULT_DISABLED = 2,
	AUTH_RESULT_TEMPFAIL = 3, /* vault overloaded or its database failed */
};

/* Result of IPC_VAULT_RCPT (front-delivery.h enum front_rcpt_result has
   the same values). */
enum ipc_rcpt_result {
	IPC_RCPT_OK = 0,
	IPC_RCPT_UNKNOWN = 1,
	IPC_RCPT_NOT_LOCAL = 2,
	IPC_RCPT_DISABLED = 3,
	IPC_RCPT_OVER_QUOTA = 4,
	IPC_RCPT_TEMPFAIL = 5,
};
/* Bounds of IPC_FRONT_RCPT_REPLY: more targets make the vault answer
   IPC_RCPT_TEMPFAIL (an operator's alias is too big). */
#define IPC_RCPT_MAX_LOCALS 1000
#define IPC_RCPT_MAX_REMOTES 100

/* Status of IPC_FRONT_DKIM_KEYS_REPLY and IPC_FRONT_DKIM_SIGN_REPLY. */
enum ipc_dkim_status {
	IPC_DKIM_OK = 0,
	IPC_DKIM_TEMPFAIL = 1, /* database or key failure: answer 451 */
	IPC_DKIM_NO_KEY = 2, /* the selector is not an active key (any more) */
};
/* Signatures per IPC_VAULT_DKIM_SIGN, and keys per KEYS reply. */
#define IPC_DKIM_MAX_SIGS 8

struct ipc_frame {
	uint16_t type;
	uint32_t id;
	struct span payload;
};

/* Starts a frame at the end of out; returns its offset for
   ipc_msg_finish(). */
size_t ipc_msg_begin(struct buf *out, enum ipc_type type, uint32_t id);
void ipc_put_u32(struct buf *out, uint32_t value);
void ipc_put_u64(struct buf *out, uint64_t value);
void ipc_put_bytes(struct buf *out, const void *data, size_t len);
void ipc_put_str(struct buf *out, const char *str);
/* Patches the length of the frame started at offset. Panics if the payload
   exceeds IPC_MAX_PAYLOAD (a bug: senders bound their data). */
void ipc_msg_finish(struct buf *out, size_t offset);

/* Parses one frame from the start of data. Returns 1 and fills frame_r and
   *consumed_r when a whole frame is there, 0 when more bytes are needed, -1
   on a malformed header (*error_r set). */
int ipc_frame_parse(struct span data, struct ipc_frame *frame_r,
		    size_t *consumed_r, const char **error_r);

struct ipc_reader {
	struct span rest;
	bool failed;
};
void ipc_reader_init(struct ipc_reader *reader, const struct ipc_frame *frame);
uint32_t ipc_get_u32(struct ipc_reader *reader);
uint64_t ipc_get_u64(struct ipc_reader *reader);
/* Returns a view into the frame (valid while the frame is). */
struct span ipc_get_bytes(struct ipc_reader *reader);
/* Returns a NUL-terminated copy allocated from pool, or "" on failure
   (also a failure: an embedded NUL). */
struct pool;
char *ipc_get_str(struct ipc_reader *reader, struct pool *pool);
/* 0 if the whole payload was consumed without failure, else -1. */
int ipc_end(struct ipc_reader *reader);

/* An IPC connection on the event loop over a UNIX stream socket. */
struct ioloop;
struct ipc_conn;
/* Called for each complete frame. The frame is valid only during the
   call. Return 0 to continue, -1 to close the connection (protocol
   violation). */
typedef int ipc_handler_t(struct ipc_conn *conn, const struct ipc_frame *frame,
			  void *context);
/* Called once when the connection ends (EOF, error, or a -1 from the
   handler); the owner then destroys it. */
typedef void ipc_close_t(struct ipc_conn *conn, const char *reason,
			 void *context);

/* Takes ownership of fd. */
struct ipc_conn *ipc_conn_create(struct ioloop *ioloop, int fd,
				 ipc_handler_t *handler, ipc_close_t *closed,
				 void *context);
void ipc_conn_destroy(struct ipc_conn **conn);
/* Queues the frames in data (one or more, built with ipc_msg_*). */
void ipc_conn_send(struct ipc_conn *conn, const struct buf *data);
/* Sends a frame with an empty payload (pings, reload requests). Frames
   with fields are built on a local buf with ipc_msg_*() and sent with
   ipc_conn_send(). */
void ipc_conn_send_empty(struct ipc_conn *conn, enum ipc_type type,
			 uint32_t id);
int ipc_conn_fd(const struct ipc_conn *conn);

#endif
