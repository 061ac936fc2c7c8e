#ifndef MARMOT_VAULT_DKIM_H
#define MARMOT_VAULT_DKIM_H
/* DKIM signing in the vault (ARCHITECTURE.md 2: the vault holds the DKIM
   keys). The front prepares a signature (dkim.h dkim_sign_prepare) and
   asks the vault for the 32-byte digest's signature; the private key
   never leaves this process. Two questions, both answered at once:

   IPC_VAULT_DKIM_KEYS: str domain -> IPC_FRONT_DKIM_KEYS_REPLY: u32
     status (enum ipc_dkim_status), u32 n, n x (str selector, u32
     algorithm (enum dkim_algorithm)): the domain's active keys, Ed25519
     first; n = 0 when the domain has none or is not ours.
   IPC_VAULT_DKIM_SIGN: str domain, u32 n (1..IPC_DKIM_MAX_SIGS), n x (str
     selector, u32 algorithm, bytes digest (32)) -> IPC_FRONT_DKIM_SIGN_REPLY:
     u32 status, u32 n, n x bytes signature (n = 0 unless OK). Only an
     active key signs: a selector that is not (any more) one of the
     domain's active keys, or whose algorithm differs, is
     IPC_DKIM_NO_KEY (the front prepares again or answers 451).

   Unwrapped keys are cached per domain and selector (at most
   VAULT_DKIM_CACHE_MAX, least recently used out first), keyed also by a
   hash of the wrapped blob, so a selector re-created after `dkim expire`
   is never signed with its old key; the directory is read on every
   question, so `marmot dkim activate` takes effect at the next message.
   Every function runs in the vault's loop thread. */

#include "lib.h"
#include "buf.h"
#include "ipc.h"

#define VAULT_DKIM_CACHE_MAX 64

struct directory;
struct vault_dkim;

/* dir and master_key stay owned by the caller and must outlive vd. */
struct vault_dkim *vault_dkim_create(struct directory *dir,
				     const uint8_t *master_key);
/* Frees the cached keys (OpenSSL clears them). Sets *vd to NULL; NULL is
   fine. */
void vault_dkim_destroy(struct vault_dkim **vd);

/* Handle IPC_VAULT_DKIM_KEYS / IPC_VAULT_DKIM_SIGN: append the reply frame
   (with frame's id) to out. Return 0, or -1 for a malformed frame (the
   caller closes the connection; out is untouched). error_r: for the log
   (a failure that is answered as IPC_DKIM_TEMPFAIL or NO_KEY), NULL if
   none. */
int vault_dkim_handle_keys(struct vault_dkim *vd, const struct ipc_frame *frame,
			   struct buf *out, const char **error_r);
int vault_dkim_handle_sign(struct vault_dkim *vd, const struct ipc_frame *frame,
			   struct buf *out, const char **error_r);

/* Number of unwrapped keys held (tests). */
unsigned int vault_dkim_cache_count(const struct vault_dkim *vd);

#endif
