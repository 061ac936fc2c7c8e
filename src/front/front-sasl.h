#ifndef MARMOT_FRONT_SASL_H
#define MARMOT_FRONT_SASL_H
/* SASL in the front: one object runs one authentication exchange of PLAIN
   (RFC 4616), LOGIN (draft-murchison-sasl-login) or SCRAM-SHA-256 (RFC
   5802, RFC 7677) with the vault, for SMTP AUTH (RFC 4954) now and IMAP
   AUTHENTICATE / POP3 AUTH later. It is protocol-neutral: the protocol
   hands over the client's base64 responses and gets back base64
   challenges (which it frames as "334 ..." or "+ ...") and one final
   result.

   PLAIN and LOGIN go through front_conn_auth() (IPC_VAULT_AUTH: the vault
   verifies the password with argon2id, app passwords included). SCRAM
   runs IPC_VAULT_SCRAM_START and IPC_VAULT_SCRAM_FINISH; the front never
   sees a password or a stored key for it, only the SCRAM messages.

   While the vault is asked, the connection's input is paused (like
   front_conn_auth), so the protocol sees no line until the next send or
   the done callback.

   SECURITY: client data is hostile. Every response is bounded
   (FRONT_SASL_MAX_RESPONSE base64 characters) before it is decoded, and
   decoded passwords are wiped once they are framed for the vault. */

#include "lib.h"
#include "ipc.h"
#include "span.h"

struct front_conn;
struct front_sasl;

/* A client response longer than this (base64, without CRLF) fails the
   exchange as malformed. */
#define FRONT_SASL_MAX_RESPONSE 4096

/* A challenge for the client, base64 ("" for an empty challenge). The
   protocol queues it ("334 <challenge>" in SMTP, "+ <challenge>" in IMAP)
   and passes the client's next line to front_sasl_input(). May be called
   from within front_sasl_start() and front_sasl_input(). */
typedef void front_sasl_send_t(void *context, const char *challenge_b64);

/* The exchange ended; called exactly once per front_sasl, never from
   within front_sasl_start() or front_sasl_input() but later from the
   ioloop, and not at all after front_sasl_free().

   result is AUTH_RESULT_OK (conn->user and conn->account_id are set),
   AUTH_RESULT_FAILED (wrong credentials, unknown user, or — see
   front_sasl_failure() — a malformed or cancelled exchange),
   AUTH_RESULT_DISABLED (right credentials, disabled account) or
   AUTH_RESULT_TEMPFAIL (vault unreachable or overloaded). account_id and
   address are set for OK and DISABLED (else 0 and ""). final_b64 is the
   SCRAM server-final-message ("v=...", RFC 5802 3) on success, which the
   protocol must still send to the client (RFC 4954 4: a "334" challenge
   answered by an empty line before "235"), and NULL otherwise and for
   PLAIN and LOGIN. The strings are valid during the call only. The
   callback may call front_sasl_free(). */
typedef void front_sasl_done_t(void *context, enum auth_result result,
			       uint64_t account_id, const char *address,
			       const char *final_b64);

/* Why an AUTH_RESULT_FAILED was not a verdict on the credentials. */
enum front_sasl_failure {
	/* The vault judged the credentials (or nothing failed). */
	FRONT_SASL_FAILURE_NONE = 0,
	/* The client answered "*" (RFC 4954 4: 501 5.0.0). */
	FRONT_SASL_FAILURE_CANCELLED,
	/* Bad base64 or mechanism syntax (RFC 4954 4: 501 5.5.2), including
	   a SCRAM channel-binding request, which we do not offer. */
	FRONT_SASL_FAILURE_MALFORMED,
};

/* Starts an exchange of mech (ASCII case-insensitive) for service ("smtp",
   "imap", "pop3": the vault's log and rate limits). initial_b64 is the
   initial response (RFC 4954 4), NULL if there was none, "=" for an
   empty one. Returns NULL with *error_r set if mech is not one of
   front_sasl_mechs(); then nothing was sent and done is never called.
   Otherwise the exchange runs until done is called. */
struct front_sasl *front_sasl_start(struct front_conn *conn,
				    const char *service, const char *mech,
				    const char *initial_b64,
				    front_sasl_send_t *send,
				    front_sasl_done_t *done, void *context,
				    const char **error_r);
/* One client response line (base64, without CRLF) after a send; "*"
   cancels the exchange (done with AUTH_RESULT_FAILED and
   FRONT_SASL_FAILURE_CANCELLED). A line at any other time (before a send
   or after done) is ignored. */
void front_sasl_input(struct front_sasl *sasl, struct span line);
/* Valid from the done callback until front_sasl_free(). */
enum front_sasl_failure front_sasl_failure(const struct front_sasl *sasl);
/* Ends the exchange wherever it is (a vault reply still in flight is
   dropped); done is not called any more. Sets *sasl to NULL; NULL is
   fine. The protocol calls this from its deinit too. */
void front_sasl_free(struct front_sasl **sasl);
/* The mechanisms for EHLO "AUTH ..." / IMAP CAPABILITY, space-separated:
   "PLAIN LOGIN SCRAM-SHA-256". */
const char *front_sasl_mechs(void);

/* front.c hands the vault's SCRAM replies here (IPC_FRONT_SCRAM_*_REPLY).
   Returns 0, or -1 for a malformed frame (a protocol error). */
int front_sasl_vault_reply(const struct ipc_frame *frame);
/* The connection is being destroyed (front_conn_destroy, before the
   protocol's deinit): its exchanges stop; done is not called. */
void front_sasl_forget_conn(struct front_conn *conn);
/* The vault connection broke: pending SCRAM steps end in
   AUTH_RESULT_TEMPFAIL. */
void front_sasl_vault_lost(void);

#endif
