#ifndef MARMOT_FRONT_H
#define MARMOT_FRONT_H
/* The front role: every network listener (SMTP, submission, IMAP, POP3,
   HTTP and their TLS variants) on one event loop. It holds the TLS keys and,
   later, the account keys of logged-in sessions only. Authentication goes to
   the vault over DATA/run/vault.sock. */

#include "lib.h"
#include "settings.h"

struct marmot_settings;

struct front_listener {
	enum settings_port kind;
	int fd;
};

/* Takes ownership of set (a reload replaces it). */
int front_main(struct marmot_settings *set, int master_fd,
	       const struct front_listener *listeners,
	       unsigned int listener_count);

#endif
