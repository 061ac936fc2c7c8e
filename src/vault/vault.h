#ifndef MARMOT_VAULT_H
#define MARMOT_VAULT_H
/* The vault role: holds the master key, verifies passwords (argon2id on a
   capped worker pool, with a short-lived credential cache), and, in later
   issues, hands sessions their account keys, merges spools and signs DKIM.
   It never opens a network socket: it serves the front over the UNIX
   socket DATA/run/vault.sock (mode 0600) and talks to the master over the
   descriptor it was started with. */

#include "lib.h"

struct marmot_settings;

/* master_fd: IPC to the master. key_fd: master.key opened by the master.
   Returns the exit code. */
int vault_main(struct marmot_settings *set, int master_fd, int key_fd);

#endif
