/* test-vault-common.c - helpers of the vault process tests
   (test-vault-common.h). */

#include "test-vault-common.h"
#include "directory.h"
#include "net.h"
#include "pool.h"
#include "settings.h"
#include "vault.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

int test_write_file(const char *dir, const char *name, const void *data,
		    size_t len)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	return close(fd);
}

static int test_remove_entry(const char *path, const struct stat *st, int type,
			     struct FTW *ftw)
{
	return remove(path);
}

int test_remove_tree(const char *dir)
{
	return nftw(dir, test_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int test_vault_populate(const char *data_dir, struct test_vault_data *data_r)
{
	const char *error, *app_pw;
	char path[256];

	memset(data_r, 0, sizeof(*data_r));
	memset(data_r->master_key, 0x5a, sizeof(data_r->master_key));
	if (test_write_file(data_dir, "master.key", data_r->master_key,
			    sizeof(data_r->master_key)) < 0) {
		fprintf(stderr, "cannot write %s/master.key\n", data_dir);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/directory.db", data_dir);
	data_r->dir = directory_open(path, false, &error);
	if (data_r->dir == NULL ||
	    directory_domain_add(data_r->dir, "example.org", &error) < 0 ||
	    directory_account_add(data_r->dir, NULL, data_r->master_key,
				  "alice@example.org", TEST_ALICE_PW, 0,
				  &data_r->alice_id, &error) < 0 ||
	    directory_account_add(data_r->dir, NULL, data_r->master_key,
				  "bob@example.org", TEST_BOB_PW, 0,
				  &data_r->bob_id, &error) < 0 ||
	    directory_account_set_disabled(data_r->dir, "bob@example.org", true,
					   &error) < 0 ||
	    directory_app_password_add(data_r->dir, "alice@example.org",
				       "phone", &app_pw, &error) < 0) {
		fprintf(stderr, "directory setup: %s\n", error);
		return -1;
	}
	snprintf(data_r->alice_app_pw, sizeof(data_r->alice_app_pw), "%s",
		 app_pw);
	pool_clear(directory_pool(data_r->dir));
	return 0;
}

pid_t test_vault_fork(struct marmot_settings *set, int *master_fd_r)
{
	char path[256];
	int sp[2], key_fd;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/master.key", set->data_dir);
	key_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (key_fd < 0) {
		close(sp[0]);
		close(sp[1]);
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		close(sp[0]);
		/* _exit: the child's copy of the test's memory is not its
		   own to free. */
		_exit(vault_main(set, sp[1], key_fd));
	}
	close(sp[1]);
	close(key_fd);
	if (pid < 0) {
		close(sp[0]);
		return -1;
	}
	*master_fd_r = sp[0];
	return pid;
}

int test_vault_connect(const char *data_dir)
{
	char path[256];
	const char *error;
	int fd = -1;

	snprintf(path, sizeof(path), "%s/run/vault.sock", data_dir);
	/* The socket appears after the HELLO; retry briefly. */
	for (unsigned int i = 0; i < 200 && fd < 0; i++) {
		fd = net_connect_unix(path, &error);
		if (fd < 0)
			usleep(20000);
	}
	return fd;
}

bool test_ipc_read_frame(int fd, struct buf *in, struct ipc_frame *frame_r)
{
	const char *error;
	size_t consumed;
	ssize_t ret;

	buf_reset(in);
	for (;;) {
		if (in->used > 0 && ipc_frame_parse(buf_span(in), frame_r,
						    &consumed, &error) == 1)
			return true;
		ret = read(fd, buf_reserve(in, 4096), 4096);
		if (ret <= 0)
			return false;
		buf_commit(in, (size_t)ret);
	}
}
