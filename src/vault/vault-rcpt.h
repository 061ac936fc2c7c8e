#ifndef MARMOT_VAULT_RCPT_H
#define MARMOT_VAULT_RCPT_H
/* The vault's answers to the front's delivery questions, apart from the IPC
   so that they can be tested on their own (vault.c does the wiring):

   IPC_VAULT_RCPT: may mail for this address be accepted, and for whom?
     1. directory_resolve() (aliases, catch-all, +tag, forwards): not our
	domain => NOT_LOCAL; ours but no such recipient => UNKNOWN; an
	alias loop or a database error => TEMPFAIL;
     2. each local account is looked up (directory.db, in the loop thread,
	as vault-auth.c does): a disabled one is dropped from the targets
	(an alias still reaches its other members); when nothing is left,
	DISABLED;
     3. quota (accounts with one): usage = the store's size (a per-account
	cache, filled at first use by a worker that opens the store,
	replaced after every merge through vault_rcpt_usage_set, and
	loaded again at the next use after the front changed the store:
	IMAP APPEND/COPY/EXPUNGE/DELETE, POP3 DELE, IPC_VAULT_USAGE_STALE
	through vault_rcpt_usage_stale) + the
	bytes of the account's spool and spool.merging files (mail
	acknowledged but not merged yet; approximate: sealing adds ~100
	bytes per record). size_hint (RFC 1870 SIZE, 0 = unknown, taken as
	1) larger than the quota itself => OVER_QUOTA permanent (552
	5.2.2); usage + size_hint over the quota => OVER_QUOTA (452
	4.2.2). Deliberate choice: if any member of an alias is over
	quota, the whole recipient is refused (temporarily), rather than
	silently delivering to some members only; the sender's retry then
	reaches everyone or the DSN says why. The merge itself never
	refuses (vault-merge.h), so the quota is only decided here.
   IPC_VAULT_SENDER: does account own address? Yes if it is the
     account's address, that address with a +tag (RFC 5233), or an alias
     (exact, or with a +tag) whose expansion includes the account. A
     catch-all never confers ownership: owning "@domain" would let its
     target send as any unused address.

   Zero-access accounts: their store only opens with keys from the keyring
   (vault-keyring.h); while they are locked the store's size counts as 0
   and only the spool counts (their mail waits sealed there anyway).

   Every function runs in the loop thread of the ioloop given at creation;
   the directory is used from that thread only. */

#include "lib.h"
#include "ipc.h"

struct ioloop;
struct directory;
struct vault_keyring;
struct vault_rcpt;
struct vault_rcpt_request;

struct vault_rcpt_target {
	uint64_t account_id;
	uint8_t public_key[32];
};

struct vault_rcpt_reply {
	enum ipc_rcpt_result result;
	bool quota_permanent;
	const char *address; /* normalised, or the input if it is not valid */
	const struct vault_rcpt_target *locals;
	unsigned int local_count;
	const char *const *remote;
	unsigned int remote_count;
};

/* reply and everything it points to are valid during the call only. */
typedef void vault_rcpt_callback_t(const struct vault_rcpt_reply *reply,
				   void *context);

/* dir and master_key stay owned by the caller and must outlive the
   vault_rcpt; keyring may be NULL. */
struct vault_rcpt *vault_rcpt_create(struct ioloop *ioloop,
				     const char *data_dir,
				     struct directory *dir,
				     const uint8_t *master_key,
				     struct vault_keyring *keyring);
/* Waits for the usage loads in flight; callbacks of requests still
   waiting are called with TEMPFAIL (unless aborted). Sets *vr to NULL;
   NULL is fine. */
void vault_rcpt_destroy(struct vault_rcpt **vr);

/* Answers IPC_VAULT_RCPT. When the answer is known at once (the usual
   case), callback runs before this returns and NULL is returned;
   otherwise (a usage load is needed) the handle is returned and callback
   runs later from the loop, exactly once unless aborted. */
struct vault_rcpt_request *vault_rcpt_resolve(struct vault_rcpt *vr,
					      const char *address,
					      uint64_t size_hint,
					      vault_rcpt_callback_t *callback,
					      void *context);
/* The callback will not be called. Sets *req to NULL; NULL is fine. */
void vault_rcpt_request_abort(struct vault_rcpt_request **req);
/* Requests waiting for a usage load. */
unsigned int vault_rcpt_in_flight(const struct vault_rcpt *vr);

enum vault_sender_result {
	VAULT_SENDER_NOT_OWNED = 0,
	VAULT_SENDER_OWNED = 1,
	VAULT_SENDER_TEMPFAIL = 2, /* database error */
};
/* Answers IPC_VAULT_SENDER (synchronous: a few directory reads). The
   values are the wire values of IPC_FRONT_SENDER_REPLY. */
enum vault_sender_result vault_rcpt_sender_owned(struct vault_rcpt *vr,
						 uint64_t account_id,
						 const char *address);

/* The store of account_id holds used bytes now (after a merge). */
void vault_rcpt_usage_set(struct vault_rcpt *vr, uint64_t account_id,
			  uint64_t used);
/* The front committed a change of account_id's store usage: the cached
   figure (and a load in flight) is dropped and the next RCPT loads it
   again from the store. The front sends no figure: the vault trusts only
   what it reads itself. Accounts with nothing cached are ignored. */
void vault_rcpt_usage_stale(struct vault_rcpt *vr, uint64_t account_id);
/* The store's usage as cached: true and *used_r if known (tests). */
bool vault_rcpt_usage_get(struct vault_rcpt *vr, uint64_t account_id,
			  uint64_t *used_r);

#endif
