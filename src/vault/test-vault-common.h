#ifndef MARMOT_TEST_VAULT_COMMON_H
#define MARMOT_TEST_VAULT_COMMON_H
/* Helpers of the tests that run vault_main() as a forked process and
   speak IPC to it (test-vault-auth, test-vault-scram, test-front-sasl).
   Not part of the server. */

#include "lib.h"
#include "account-keys.h"
#include "buf.h"
#include "ipc.h"

#include <sys/types.h>

struct marmot_settings;
struct directory;

#define TEST_ALICE_PW "correct horse battery"
#define TEST_BOB_PW "bob's password"

struct test_vault_data {
	struct directory *dir; /* open on data_dir/directory.db */
	uint8_t master_key[MASTER_KEY_LEN]; /* all 0x5a */
	uint64_t alice_id, bob_id;
	char alice_app_pw[64];
};

/* Writes data_dir/master.key and a directory.db with the domain
   example.org, alice@example.org (TEST_ALICE_PW and an app password
   labelled "phone") and bob@example.org (TEST_BOB_PW, disabled). The
   directory stays open in data_r->dir. Returns 0, or -1 with a message on
   stderr. */
int test_vault_populate(const char *data_dir, struct test_vault_data *data_r);

/* Writes dir/name (0600, must not exist). Returns 0 or -1. */
int test_write_file(const char *dir, const char *name, const void *data,
		    size_t len);
/* rm -rf dir (a mkdtemp() directory). Returns 0 or -1. */
int test_remove_tree(const char *dir);
/* Forks vault_main(set, ...) over set->data_dir, giving it
   data_dir/master.key. Returns the pid (or -1) and the test's end of the
   master connection in *master_fd_r. */
pid_t test_vault_fork(struct marmot_settings *set, int *master_fd_r);
/* Connects to data_dir/run/vault.sock, retrying while the vault starts
   (up to 4 s). Returns the fd or -1. */
int test_vault_connect(const char *data_dir);
/* Blocking read of one frame into in (reset first); false on EOF. */
bool test_ipc_read_frame(int fd, struct buf *in, struct ipc_frame *frame_r);

#endif
