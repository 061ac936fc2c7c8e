/* test-vault-auth.c - the vault's tests. First vault-auth.c against a real
   directory.db (in a temporary directory), a real ioloop and a real worker
   pool: correct, wrong and app passwords, unknown and invalid users,
   disabled accounts, the credential cache (counted in argon2id
   verifications) and its invalidation by a password change, overload,
   aborted requests, and a zero-access login that unlocks the account's
   keys into the keyring. Then vault_main() forked as a process over the same
   data directory, spoken to over IPC. argon2id is slow under ASan, so
   every test keeps its hash count small. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "vault.h"
#include "vault-auth.h"
#include "vault-keyring.h"
#include "directory.h"
#include "ioloop.h"
#include "ipc.h"
#include "net.h"
#include "password.h"
#include "pool.h"
#include "settings.h"
#include "test-vault-common.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ALICE_PW TEST_ALICE_PW
#define BOB_PW TEST_BOB_PW

struct fixture {
	char tmpdir[64];
	char db_path[128];
	struct directory *dir;
	uint64_t alice_id, bob_id, carol_id, dave_id;
	char alice_app_pw[128];
};

struct result {
	bool called;
	enum auth_result result;
	uint64_t account_id;
	char address[128];
	bool unlocked;
};

static struct fixture fix;

static void auth_callback(const struct vault_auth_reply *reply, void *context)
{
	struct result *res = context;

	assert_false(res->called);
	res->called = true;
	res->result = reply->result;
	res->account_id = reply->account_id;
	res->unlocked = reply->unlocked;
	snprintf(res->address, sizeof(res->address), "%s", reply->address);
}

static struct vault_auth *auth_create(struct ioloop *ioloop,
				      unsigned int threads,
				      unsigned int max_waiting,
				      unsigned int ttl)
{
	const struct vault_auth_settings set = {
		.max_hashes = threads,
		.max_waiting = max_waiting,
		.cache_ttl_secs = ttl,
	};

	return vault_auth_create(ioloop, fix.dir, &set);
}

static void wait_for(struct ioloop *ioloop, struct result *res)
{
	for (unsigned int i = 0; i < 600 && !res->called; i++)
		ioloop_run_once(ioloop, 100);
	assert_true(res->called);
}

/* Runs one login to completion. */
static struct result login(struct ioloop *ioloop, struct vault_auth *auth,
			   const char *user, const char *password)
{
	struct result res;

	memset(&res, 0, sizeof(res));
	(void)vault_auth_begin(auth, user, password, strlen(password),
			       auth_callback, &res);
	wait_for(ioloop, &res);
	return res;
}

static int group_setup(void **state ATTR_UNUSED)
{
	struct test_vault_data data;
	const char *error;

	snprintf(fix.tmpdir, sizeof(fix.tmpdir), "/tmp/marmot-vault-XXXXXX");
	if (mkdtemp(fix.tmpdir) == NULL)
		return -1;
	snprintf(fix.db_path, sizeof(fix.db_path), "%s/directory.db",
		 fix.tmpdir);
	if (test_vault_populate(fix.tmpdir, &data) < 0)
		return -1;
	fix.dir = data.dir;
	fix.alice_id = data.alice_id;
	fix.bob_id = data.bob_id;
	snprintf(fix.alice_app_pw, sizeof(fix.alice_app_pw), "%s",
		 data.alice_app_pw);
	if (directory_account_add(fix.dir, NULL, data.master_key,
				  "carol@example.org", "carol-old", 0,
				  &fix.carol_id, &error) < 0 ||
	    directory_account_add(fix.dir, NULL, data.master_key,
				  "dave@example.org", "dave-pw", 0,
				  &fix.dave_id, &error) < 0) {
		fprintf(stderr, "directory setup: %s\n", error);
		return -1;
	}
	pool_clear(directory_pool(fix.dir));
	return 0;
}

static int group_teardown(void **state ATTR_UNUSED)
{
	directory_close(&fix.dir);
	return test_remove_tree(fix.tmpdir);
}

static void test_correct_password(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 0);
	/* Not normalised on input: the reply carries the canonical form. */
	struct result res = login(ioloop, auth, "Alice@EXAMPLE.org", ALICE_PW);

	assert_int_equal(res.result, AUTH_RESULT_OK);
	assert_int_equal(res.account_id, fix.alice_id);
	assert_string_equal(res.address, "alice@example.org");
	assert_int_equal(vault_auth_hash_count(auth), 1);
	assert_int_equal(vault_auth_in_flight(auth), 0);
	vault_auth_destroy(&auth);
	assert_null(auth);
	ioloop_destroy(&ioloop);
}

static void test_wrong_password(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 60);
	struct result res = login(ioloop, auth, "alice@example.org", "wrong");

	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	assert_int_equal(res.account_id, 0);
	assert_string_equal(res.address, "");
	/* The account hash, then the one app password. */
	assert_int_equal(vault_auth_hash_count(auth), 2);
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_unknown_user(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 60);
	struct result res = login(ioloop, auth, "nobody@example.org", ALICE_PW);

	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	assert_int_equal(res.account_id, 0);
	assert_string_equal(res.address, "");
	/* Same cost as a wrong password: one argon2id (the dummy). */
	assert_int_equal(vault_auth_hash_count(auth), 1);
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_invalid_user(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 60);
	struct result res = login(ioloop, auth, "not an address", ALICE_PW);

	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	/* Treated as an unknown user, including the cost. */
	assert_int_equal(vault_auth_hash_count(auth), 1);
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_app_password(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 60);
	struct result res =
		login(ioloop, auth, "alice@example.org", fix.alice_app_pw);

	assert_int_equal(res.result, AUTH_RESULT_OK);
	assert_int_equal(res.account_id, fix.alice_id);
	assert_string_equal(res.address, "alice@example.org");
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_disabled_correct_password(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 60);
	struct result res = login(ioloop, auth, "bob@example.org", BOB_PW);

	assert_int_equal(res.result, AUTH_RESULT_DISABLED);
	assert_int_equal(res.account_id, fix.bob_id);
	assert_string_equal(res.address, "bob@example.org");
	/* A disabled login is not cached: the next one hashes again. */
	res = login(ioloop, auth, "bob@example.org", BOB_PW);
	assert_int_equal(res.result, AUTH_RESULT_DISABLED);
	assert_int_equal(vault_auth_hash_count(auth), 2);
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_disabled_wrong_password(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 60);
	struct result res = login(ioloop, auth, "bob@example.org", "guess");

	/* DISABLED only after a correct password. */
	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	assert_int_equal(res.account_id, 0);
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_cache_hit(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 60);
	struct result res;

	res = login(ioloop, auth, "alice@example.org", ALICE_PW);
	assert_int_equal(res.result, AUTH_RESULT_OK);
	assert_int_equal(vault_auth_hash_count(auth), 1);

	/* Answered from the cache, before vault_auth_begin() returns. */
	memset(&res, 0, sizeof(res));
	assert_null(vault_auth_begin(auth, "ALICE@example.org", ALICE_PW,
				     strlen(ALICE_PW), auth_callback, &res));
	assert_true(res.called);
	assert_int_equal(res.result, AUTH_RESULT_OK);
	assert_int_equal(res.account_id, fix.alice_id);
	assert_string_equal(res.address, "alice@example.org");
	assert_int_equal(vault_auth_hash_count(auth), 1);

	/* A wrong password is not helped by the cached right one. */
	res = login(ioloop, auth, "alice@example.org", ALICE_PW "x");
	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_cache_disabled_by_ttl_zero(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 0);
	struct result res;

	res = login(ioloop, auth, "dave@example.org", "dave-pw");
	assert_int_equal(res.result, AUTH_RESULT_OK);
	res = login(ioloop, auth, "dave@example.org", "dave-pw");
	assert_int_equal(res.result, AUTH_RESULT_OK);
	assert_int_equal(vault_auth_hash_count(auth), 2);
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_passwd_invalidates_cache(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 60);
	const char *error;
	struct result res;

	res = login(ioloop, auth, "carol@example.org", "carol-old");
	assert_int_equal(res.result, AUTH_RESULT_OK);
	assert_int_equal(res.account_id, fix.carol_id);

	assert_int_equal(directory_account_passwd(fix.dir, "carol@example.org",
						  "carol-new", &error),
			 0);
	pool_clear(directory_pool(fix.dir));

	res = login(ioloop, auth, "carol@example.org", "carol-old");
	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	res = login(ioloop, auth, "carol@example.org", "carol-new");
	assert_int_equal(res.result, AUTH_RESULT_OK);
	assert_int_equal(res.account_id, fix.carol_id);
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_disable_after_cache(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 60);
	const char *error;
	struct result res;

	res = login(ioloop, auth, "dave@example.org", "dave-pw");
	assert_int_equal(res.result, AUTH_RESULT_OK);
	assert_int_equal(directory_account_set_disabled(
				 fix.dir, "dave@example.org", true, &error),
			 0);
	pool_clear(directory_pool(fix.dir));
	/* The cached entry must not let a disabled account in. */
	res = login(ioloop, auth, "dave@example.org", "dave-pw");
	assert_int_equal(res.result, AUTH_RESULT_DISABLED);
	assert_int_equal(vault_auth_hash_count(auth), 2);
	assert_int_equal(directory_account_set_disabled(
				 fix.dir, "dave@example.org", false, &error),
			 0);
	pool_clear(directory_pool(fix.dir));
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_zero_access_unlock(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 1, 0, 300);
	struct vault_keyring *keyring = vault_keyring_create(0);
	struct directory_account da;
	struct account_keys kept, expected;
	const char *error;
	struct result res;
	uint64_t id, hashes;

	if (directory_account_add_zero_access(fix.dir, NULL, "zed@example.org",
					      "zed password", 0, &id,
					      &error) < 0 ||
	    directory_account_lookup_id(fix.dir, id, &da, &error) != 1)
		fail_msg("zero-access account: %s", error);
	assert_int_equal(directory_account_keys(&da, NULL, "zed password", 12,
						&expected),
			 0);
	pool_clear(directory_pool(fix.dir));
	vault_auth_set_keyring(auth, keyring);

	res = login(ioloop, auth, "zed@example.org", "wrong password");
	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	assert_false(res.unlocked);
	assert_int_equal(vault_keyring_count(keyring), 0);

	/* The password logs in and unlocks the keys into the keyring. */
	res = login(ioloop, auth, "zed@example.org", "zed password");
	assert_int_equal(res.result, AUTH_RESULT_OK);
	assert_int_equal(res.account_id, id);
	assert_true(res.unlocked);
	assert_true(
		vault_keyring_get(keyring, id, ioloop_now_ms(ioloop), &kept));
	assert_memory_equal(&kept, &expected, sizeof(kept));
	account_keys_clear(&kept);

	/* Again: the cache answers, the keys are already there. */
	hashes = vault_auth_hash_count(auth);
	res = login(ioloop, auth, "zed@example.org", "zed password");
	assert_int_equal(res.result, AUTH_RESULT_OK);
	assert_false(res.unlocked);
	assert_int_equal(vault_auth_hash_count(auth), hashes);

	/* Keys expired: the cache alone is not enough, the login hashes
	   and unwraps again. */
	assert_int_equal(vault_keyring_expire(keyring, UINT64_MAX - 1), 1);
	res = login(ioloop, auth, "zed@example.org", "zed password");
	assert_int_equal(res.result, AUTH_RESULT_OK);
	assert_true(res.unlocked);
	assert_int_equal(vault_auth_hash_count(auth), hashes + 1);
	assert_int_equal(vault_keyring_count(keyring), 1);

	account_keys_clear(&expected);
	vault_auth_destroy(&auth);
	vault_keyring_destroy(&keyring);
	ioloop_destroy(&ioloop);
}

static void test_bad_password_bytes(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 2, 0, 60);
	char *longpw = i_malloc(PASSWORD_MAX_LEN + 2);
	struct result res;

	/* Refused at once, without hashing: embedded NUL, empty, too long. */
	memset(&res, 0, sizeof(res));
	assert_null(vault_auth_begin(auth, "alice@example.org", "ab\0cd", 5,
				     auth_callback, &res));
	assert_true(res.called);
	assert_int_equal(res.result, AUTH_RESULT_FAILED);

	memset(&res, 0, sizeof(res));
	assert_null(vault_auth_begin(auth, "alice@example.org", "", 0,
				     auth_callback, &res));
	assert_int_equal(res.result, AUTH_RESULT_FAILED);

	memset(longpw, 'a', PASSWORD_MAX_LEN + 1);
	memset(&res, 0, sizeof(res));
	assert_null(vault_auth_begin(auth, "alice@example.org", longpw,
				     PASSWORD_MAX_LEN + 1, auth_callback,
				     &res));
	assert_true(res.called);
	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	assert_int_equal(vault_auth_hash_count(auth), 0);
	i_free(longpw);
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static void test_overload_tempfail(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	/* One thread and one waiting slot: the third request is refused. */
	struct vault_auth *auth = auth_create(ioloop, 1, 1, 60);
	struct result res[3];

	memset(res, 0, sizeof(res));
	for (unsigned int i = 0; i < 2; i++)
		assert_non_null(vault_auth_begin(auth, "x@example.org", "pw", 2,
						 auth_callback, &res[i]));
	assert_int_equal(vault_auth_in_flight(auth), 2);
	assert_null(vault_auth_begin(auth, "x@example.org", "pw", 2,
				     auth_callback, &res[2]));
	assert_true(res[2].called);
	assert_int_equal(res[2].result, AUTH_RESULT_TEMPFAIL);
	assert_int_equal(res[2].account_id, 0);
	wait_for(ioloop, &res[0]);
	wait_for(ioloop, &res[1]);
	assert_int_equal(res[0].result, AUTH_RESULT_FAILED);
	assert_int_equal(res[1].result, AUTH_RESULT_FAILED);
	assert_int_equal(vault_auth_in_flight(auth), 0);
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

static unsigned int idle_calls;

static void idle_timeout(void *context)
{
	ioloop_stop(context);
}

static void test_abort(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 1, 0, 60);
	struct vault_auth_request *req;
	struct result res;

	memset(&res, 0, sizeof(res));
	req = vault_auth_begin(auth, "alice@example.org", ALICE_PW,
			       strlen(ALICE_PW), auth_callback, &res);
	assert_non_null(req);
	vault_auth_request_abort(&req);
	assert_null(req);
	/* Destroy drains the job; the aborted callback never runs. */
	vault_auth_destroy(&auth);
	assert_false(res.called);
	ioloop_destroy(&ioloop);
}

static void idle_callback(void *context)
{
	struct ioloop *ioloop = context;

	idle_calls++;
	ioloop_stop(ioloop);
}

/* A stopping vault waits for the hashes in flight; one whose client went
   away has no reply callback, so only the idle callback says it is done
   (without it the vault never exited). */
static void test_abort_then_idle(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_auth *auth = auth_create(ioloop, 1, 0, 60);
	struct vault_auth_request *req;
	struct timeout *to;
	struct result res;

	idle_calls = 0;
	memset(&res, 0, sizeof(res));
	vault_auth_set_idle_callback(auth, idle_callback, ioloop);
	req = vault_auth_begin(auth, "alice@example.org", ALICE_PW,
			       strlen(ALICE_PW), auth_callback, &res);
	assert_non_null(req);
	vault_auth_request_abort(&req);
	assert_int_equal(vault_auth_in_flight(auth), 1);
	to = timeout_add(ioloop, 30000, idle_timeout, ioloop);
	ioloop_run(ioloop);
	timeout_remove(&to);
	assert_int_equal(idle_calls, 1);
	assert_int_equal(vault_auth_in_flight(auth), 0);
	assert_false(res.called);
	vault_auth_destroy(&auth);
	ioloop_destroy(&ioloop);
}

/* ---- vault_main() as a forked process, over the same data directory:
   the HELLO, vault.sock's mode, PING/PONG, an authentication answered by
   id, a malformed frame closing only its connection, the seccomp filter,
   and exit 0 on SIGTERM and when the master goes away. ---- */

struct child {
	pid_t pid;
	int master_fd;
};

static struct child vault_start(void)
{
	static struct marmot_settings set;
	struct child child;

	memset(&set, 0, sizeof(set));
	set.data_dir = fix.tmpdir;
	set.vault_max_hashes = 1;
	set.auth_cache_ttl = 60;
	child.pid = test_vault_fork(&set, &child.master_fd);
	assert_true(child.pid > 0);
	return child;
}

static int child_wait(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static bool read_frame(int fd, struct buf *in, struct ipc_frame *frame_r)
{
	return test_ipc_read_frame(fd, in, frame_r);
}

static int vault_connect(void)
{
	int fd = test_vault_connect(fix.tmpdir);

	assert_true(fd >= 0);
	return fd;
}

static void send_auth(int fd, uint32_t id, const char *user, const char *pw,
		      bool trailing_garbage)
{
	struct buf out = BUF_INIT;
	size_t off = ipc_msg_begin(&out, IPC_VAULT_AUTH, id);

	ipc_put_str(&out, "imap");
	ipc_put_str(&out, user);
	ipc_put_bytes(&out, pw, strlen(pw));
	ipc_put_str(&out, "192.0.2.1");
	if (trailing_garbage)
		buf_append_c(&out, 'x');
	ipc_msg_finish(&out, off);
	assert_int_equal(write(fd, out.data, out.used), (ssize_t)out.used);
	buf_free(&out);
}

static void test_hello_and_sigterm(void **state ATTR_UNUSED)
{
	struct child child = vault_start();
	struct buf in = BUF_INIT;
	struct ipc_frame frame;
	struct ipc_reader reader;
	pool_t pool = pool_create("test", 256);
	char path[128];
	struct stat st;
	int fd;

	assert_true(read_frame(child.master_fd, &in, &frame));
	assert_int_equal(frame.type, IPC_MASTER_HELLO);
	ipc_reader_init(&reader, &frame);
	assert_int_equal(ipc_get_u32(&reader), (uint32_t)child.pid);
	assert_string_equal(ipc_get_str(&reader, pool), "vault");
	assert_string_equal(ipc_get_str(&reader, pool), MARMOT_VERSION);
	assert_int_equal(ipc_end(&reader), 0);

	fd = vault_connect();
	snprintf(path, sizeof(path), "%s/run/vault.sock", fix.tmpdir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/run", fix.tmpdir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);

	assert_int_equal(kill(child.pid, SIGTERM), 0);
	assert_int_equal(child_wait(child.pid), 0);
	close(fd);
	close(child.master_fd);
	buf_free(&in);
	pool_unref(&pool);
}

static void test_ping_and_auth(void **state ATTR_UNUSED)
{
	struct child child = vault_start();
	struct buf in = BUF_INIT, out = BUF_INIT;
	struct ipc_frame frame;
	struct ipc_reader reader;
	pool_t pool = pool_create("test", 256);
	int fd = vault_connect();

	ipc_msg_finish(&out, ipc_msg_begin(&out, IPC_VAULT_PING, 77));
	assert_int_equal(write(fd, out.data, out.used), (ssize_t)out.used);
	assert_true(read_frame(fd, &in, &frame));
	assert_int_equal(frame.type, IPC_FRONT_PONG);
	assert_int_equal(frame.id, 77);

	send_auth(fd, 5, "Alice@example.org", ALICE_PW, false);
	assert_true(read_frame(fd, &in, &frame));
	assert_int_equal(frame.type, IPC_FRONT_AUTH_REPLY);
	assert_int_equal(frame.id, 5);
	ipc_reader_init(&reader, &frame);
	assert_int_equal(ipc_get_u32(&reader), AUTH_RESULT_OK);
	assert_int_equal(ipc_get_u64(&reader), fix.alice_id);
	assert_string_equal(ipc_get_str(&reader, pool), "alice@example.org");
	/* An IMAP login gets the account's data key and quota. */
	assert_int_equal(ipc_get_bytes(&reader).len, 32);
	(void)ipc_get_u64(&reader);
	assert_int_equal(ipc_end(&reader), 0);

	send_auth(fd, 6, "alice@example.org", "wrong", false);
	assert_true(read_frame(fd, &in, &frame));
	assert_int_equal(frame.id, 6);
	ipc_reader_init(&reader, &frame);
	assert_int_equal(ipc_get_u32(&reader), AUTH_RESULT_FAILED);
	assert_int_equal(ipc_get_u64(&reader), 0);
	assert_string_equal(ipc_get_str(&reader, pool), "");
	assert_int_equal(ipc_get_bytes(&reader).len, 0);
	assert_int_equal(ipc_get_u64(&reader), 0);
	assert_int_equal(ipc_end(&reader), 0);

	/* The master going away ends the vault with 0. */
	close(child.master_fd);
	assert_int_equal(child_wait(child.pid), 0);
	close(fd);
	buf_free(&in);
	buf_free(&out);
	pool_unref(&pool);
}

static void test_malformed_closes_connection(void **state ATTR_UNUSED)
{
	struct child child = vault_start();
	struct buf in = BUF_INIT, out = BUF_INIT;
	struct ipc_frame frame;
	int bad = vault_connect();
	int good = vault_connect();

	send_auth(bad, 1, "alice@example.org", ALICE_PW, true);
	assert_false(read_frame(bad, &in, &frame));
	/* The other connection is unaffected. */
	ipc_msg_finish(&out, ipc_msg_begin(&out, IPC_VAULT_PING, 9));
	assert_int_equal(write(good, out.data, out.used), (ssize_t)out.used);
	assert_true(read_frame(good, &in, &frame));
	assert_int_equal(frame.type, IPC_FRONT_PONG);

	assert_int_equal(kill(child.pid, SIGTERM), 0);
	assert_int_equal(child_wait(child.pid), 0);
	close(bad);
	close(good);
	close(child.master_fd);
	buf_free(&in);
	buf_free(&out);
}

/* IPC_VAULT_USAGE_STALE (u64 account id) has no reply; a frame with
   anything more or less is malformed and closes the connection. */
static void test_usage_stale_frame(void **state ATTR_UNUSED)
{
	struct child child = vault_start();
	struct buf in = BUF_INIT, out = BUF_INIT;
	struct ipc_frame frame;
	int fd = vault_connect();
	int bad = vault_connect();
	int shorter = vault_connect();
	size_t off;

	off = ipc_msg_begin(&out, IPC_VAULT_USAGE_STALE, 3);
	ipc_put_u64(&out, fix.alice_id);
	ipc_msg_finish(&out, off);
	off = ipc_msg_begin(&out, IPC_VAULT_USAGE_STALE, 4);
	ipc_put_u64(&out, 999999); /* no such account: ignored */
	ipc_msg_finish(&out, off);
	ipc_msg_finish(&out, ipc_msg_begin(&out, IPC_VAULT_PING, 5));
	assert_int_equal(write(fd, out.data, out.used), (ssize_t)out.used);
	/* No reply to the notices: the next frame is the PONG. */
	assert_true(read_frame(fd, &in, &frame));
	assert_int_equal(frame.type, IPC_FRONT_PONG);
	assert_int_equal(frame.id, 5);

	buf_reset(&out);
	off = ipc_msg_begin(&out, IPC_VAULT_USAGE_STALE, 6);
	ipc_put_u64(&out, fix.alice_id);
	ipc_put_u32(&out, 1);
	ipc_msg_finish(&out, off);
	assert_int_equal(write(bad, out.data, out.used), (ssize_t)out.used);
	assert_false(read_frame(bad, &in, &frame));

	buf_reset(&out);
	off = ipc_msg_begin(&out, IPC_VAULT_USAGE_STALE, 7);
	ipc_put_u32(&out, 1);
	ipc_msg_finish(&out, off);
	assert_int_equal(write(shorter, out.data, out.used), (ssize_t)out.used);
	assert_false(read_frame(shorter, &in, &frame));

	assert_int_equal(kill(child.pid, SIGTERM), 0);
	assert_int_equal(child_wait(child.pid), 0);
	close(fd);
	close(bad);
	close(shorter);
	close(child.master_fd);
	buf_free(&in);
	buf_free(&out);
}

static void test_no_inet_sockets(void **state ATTR_UNUSED)
{
	struct child child = vault_start();
	struct buf in = BUF_INIT;
	struct ipc_frame frame;
	char path[64], line[256];
	bool nnp = false, filtered = false;
	FILE *f;

	assert_true(read_frame(child.master_fd, &in, &frame));
	snprintf(path, sizeof(path), "/proc/%d/status", (int)child.pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strcmp(line, "NoNewPrivs:\t1\n") == 0)
			nnp = true;
		if (strcmp(line, "Seccomp:\t2\n") == 0)
			filtered = true;
	}
	fclose(f);
	assert_true(nnp);
	assert_true(filtered);
	close(child.master_fd);
	assert_int_equal(child_wait(child.pid), 0);
	buf_free(&in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_correct_password),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_unknown_user),
		cmocka_unit_test(test_invalid_user),
		cmocka_unit_test(test_app_password),
		cmocka_unit_test(test_disabled_correct_password),
		cmocka_unit_test(test_disabled_wrong_password),
		cmocka_unit_test(test_cache_hit),
		cmocka_unit_test(test_cache_disabled_by_ttl_zero),
		cmocka_unit_test(test_passwd_invalidates_cache),
		cmocka_unit_test(test_disable_after_cache),
		cmocka_unit_test(test_zero_access_unlock),
		cmocka_unit_test(test_bad_password_bytes),
		cmocka_unit_test(test_overload_tempfail),
		cmocka_unit_test(test_abort),
		cmocka_unit_test(test_abort_then_idle),
		cmocka_unit_test(test_hello_and_sigterm),
		cmocka_unit_test(test_ping_and_auth),
		cmocka_unit_test(test_malformed_closes_connection),
		cmocka_unit_test(test_usage_stale_frame),
		cmocka_unit_test(test_no_inet_sockets),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
