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

/* Runs in the foreground until SIGTERM/SIGINT. Returns the exit code. */
int master_run(const char *data_dir);

#endif
