#ifndef MARMOT_VAULT_THROTTLE_H
#define MARMOT_VAULT_THROTTLE_H
/* The vault's one account of failed logins, shared by every way in:
   IPC_VAULT_AUTH (IMAP LOGIN and AUTHENTICATE PLAIN, POP3 USER/PASS and
   AUTH PLAIN, SMTP AUTH PLAIN and LOGIN) and SCRAM-SHA-256
   (vault-scram.c). A guess through one mechanism counts against the
   others, so switching from PLAIN to SCRAM (a few HMACs instead of an
   argon2id) buys an attacker nothing.

   Failures are counted per remote address and per username, each in a
   fixed window (failure_window_msecs, counted from the first failure):

     - an address with max_per_ip failures is refused (TEMPFAIL, without
       hashing) until its window has passed, whatever username it tries,
       the right password included. IPv6 addresses count per /64
       (net_ip_bucket()): one host usually owns a whole /64;
     - a username with max_per_user failures (from anywhere: a guessing
       run spread over many addresses) is refused only to addresses that
       themselves failed in their window. An address with no failure —
       the owner logging in from home — still gets through, so the
       attacker cannot lock the owner out; each spreading address gets
       one guess per window.

   The host's own loopback addresses (127.0.0.1, ::1) are neither counted
   nor refused when exempt_localhost is set (auth_throttle_localhost =
   exempt, the default): a webmail or proxy on this host logs in for all
   its users from there, and counting them as one address would lock
   every one of them out at once (Postfix exempts mynetworks from its
   anvil limits the same way). The rest of 127.0.0.0/8 counts as usual.

   Only AUTH_RESULT_FAILED counts (a wrong password or an unknown user);
   DISABLED comes only after a correct password, TEMPFAIL is ours.
   Successes reset nothing: an attacker with one valid account must not
   be able to clear its address's count.

   Memory is fixed: VAULT_THROTTLE_SLOTS entries of 16-byte keyed
   digests (the address or name itself is not kept), found by hashing
   with a short probe; when the probe finds no free or expired entry the
   oldest of those probed is reused, so a flood of fresh addresses can
   only make the table forget, never grow. Time is passed in (monotonic
   milliseconds) so that tests drive the window. Loop thread only. */

#include "lib.h"

#define VAULT_THROTTLE_SLOTS 8192
#define VAULT_THROTTLE_DEFAULT_MAX_PER_IP 10
#define VAULT_THROTTLE_DEFAULT_MAX_PER_USER 30
#define VAULT_THROTTLE_DEFAULT_WINDOW_MSECS (5 * 60 * 1000)

struct vault_throttle;

struct vault_throttle_settings {
	unsigned int max_per_ip; /* 0 = VAULT_THROTTLE_DEFAULT_MAX_PER_IP */
	unsigned int max_per_user; /* 0 = ..._DEFAULT_MAX_PER_USER */
	unsigned int window_msecs; /* 0 = ..._DEFAULT_WINDOW_MSECS */
	bool exempt_localhost;
};

struct vault_throttle *vault_throttle_create(
	const struct vault_throttle_settings *set);
/* Sets *throttle to NULL; NULL is fine. */
void vault_throttle_destroy(struct vault_throttle **throttle);

/* True when a login of username (normalised or as given; NULL or "" when
   not known yet) from ip is to be refused now. *reason_r is set to
   "too_many_failures" (the address) or "too_many_user_failures". */
bool vault_throttle_blocked(struct vault_throttle *throttle, const char *ip,
			    const char *username, uint64_t now_ms,
			    const char **reason_r);
/* Counts one failed login of username (may be NULL) from ip. */
void vault_throttle_failure(struct vault_throttle *throttle, const char *ip,
			    const char *username, uint64_t now_ms);

#endif
