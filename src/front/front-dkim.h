#ifndef MARMOT_FRONT_DKIM_H
#define MARMOT_FRONT_DKIM_H
/* DKIM signing of submitted mail (RFC 6376), in the front: for each of
   the From: domain's active keys (the vault lists them, Ed25519 first),
   dkim_sign_prepare() canonicalizes and hashes the message here, the
   vault signs the digests (IPC_VAULT_DKIM_KEYS, IPC_VAULT_DKIM_SIGN,
   vault-dkim.h) and dkim_sign_finish() formats the DKIM-Signature fields.
   The front never holds a private key.

   Outcomes: SIGNED (the fields to prepend); NO_KEYS (the domain has no
   active key: the caller sends unsigned and logs it); BAD_MESSAGE (the
   message cannot be signed: no From:, no header end); TEMPFAIL (no
   vault, the vault cannot sign, or a rotation raced us twice): answer
   451, never send unsigned.

   For the front's ioloop thread; the callback always runs later from the
   ioloop, never inside front_dkim_sign_start(). */

#include "lib.h"
#include "ipc.h"

enum front_dkim_result {
	FRONT_DKIM_SIGNED,
	FRONT_DKIM_NO_KEYS,
	FRONT_DKIM_BAD_MESSAGE,
	FRONT_DKIM_TEMPFAIL,
};

/* fields: "DKIM-Signature: ...\r\n" one per key (SIGNED), else NULL;
   error: why (BAD_MESSAGE, TEMPFAIL), for a reply or the log; both valid
   during the call only. */
typedef void front_dkim_callback_t(void *context, enum front_dkim_result result,
				   const char *fields, const char *error);

struct front_dkim_sign;

/* Signs msg (the message as the client sent it, CRLF line ends) for the
   normalised domain. msg must stay valid until the callback or
   front_dkim_sign_abort(). */
struct front_dkim_sign *front_dkim_sign_start(const char *domain,
					      const uint8_t *msg, size_t len,
					      front_dkim_callback_t *cb,
					      void *context);
/* ARC sealing of a forwarded message (RFC 8617 5.1) with one of the
   domain's active keys (RSA when there is one: most ARC verifiers do not
   know Ed25519), through the same vault requests: AMS digest, signed,
   then AS digest, signed. cv is the chain status as it arrived (enum
   arc_chain); authserv_id and results (our Authentication-Results
   resinfo list) become the AAR. SIGNED: fields are the three ARC fields
   to prepend; NO_KEYS: no key, or nothing must be added (a chain that
   arrived cv=fail, RFC 8617 5.1.2; error says so); BAD_MESSAGE,
   TEMPFAIL as for DKIM. Abort with front_dkim_sign_abort(). */
struct front_dkim_sign *front_dkim_arc_seal_start(
	const char *domain, const uint8_t *msg, size_t len,
	const char *authserv_id, const char *results, int cv,
	front_dkim_callback_t *cb, void *context);
/* The callback is not called. Sets *sign to NULL; NULL is fine. */
void front_dkim_sign_abort(struct front_dkim_sign **sign);

/* front.c: IPC_FRONT_DKIM_KEYS_REPLY / IPC_FRONT_DKIM_SIGN_REPLY. Returns
   -1 (close the vault connection) for a malformed reply; a reply for an
   aborted request is dropped. */
int front_dkim_vault_reply(const struct ipc_frame *frame);
/* The vault connection was lost: requests waiting for it get TEMPFAIL. */
void front_dkim_vault_lost(void);

#endif
