#ifndef MARMOT_MASTER_H
#define MARMOT_MASTER_H
/* The master role (ARCHITECTURE.md 2): reads marmot.conf, binds the
   listeners, drops root, starts the vault and the front (fork + exec of
   this binary with "role vault" / "role front"), restarts a role that
   dies, serves the control socket DATA/run/control.sock (`marmot status`),
   reloads on SIGHUP and drains on SIGTERM. It holds nothing secret: it
   keeps an open descriptor of master.key for each new vault but never reads
   it. */

#include "lib.h"

/* `marmot role vault|front ...`: the entry point of a role process that
   the master exec'd. Not for people; the master passes:
     marmot role vault --data DIR        fd 3 = master IPC, fd 4 = master.key
     marmot role front --data DIR KIND:FD...   fd 3 = master IPC, then one
					 listening socket per KIND:FD
   (KIND as in settings_port_name()). argv[0] is "role". */
int master_role_main(int argc, char **argv);

/* Runs in the foreground until SIGTERM/SIGINT. Returns the exit code. */
int master_run(const char *data_dir);

#endif
