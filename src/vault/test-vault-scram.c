/* test-vault-scram.c - vault-scram.c against a real directory.db (in a
   temporary directory) and a real ioloop, with a SCRAM-SHA-256 client
   written here on top of lib-sasl: the account's password and an app
   password log in and the server signature checks out; wrong passwords,
   unknown users (a stable made-up salt), disabled and zero-access
   accounts, a password changed mid-exchange, channel binding, a bad c= or
   nonce, and the session rules (single use, owner, expiry, bound). Then
   vault_main() forked as a process, spoken to over IPC_VAULT_SCRAM_*. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "vault.h"
#include "vault-scram.h"
#include "vault-throttle.h"
#include "directory.h"
#include "ioloop.h"
#include "ipc.h"
#include "net.h"
#include "pool.h"
#include "scram.h"
#include "scram-client.h"
#include "settings.h"
#include "test-vault-common.h"

#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define ALICE_PW TEST_ALICE_PW
#define BOB_PW TEST_BOB_PW

struct fixture {
	char tmpdir[64];
	char db_path[128];
	struct directory *dir;
	uint64_t alice_id, bob_id, zed_id, old_id;
	char alice_app_pw[128];
	uint8_t fake_key[VAULT_SCRAM_KEY_LEN];
};

static struct fixture fix;

static int group_setup(void **state ATTR_UNUSED)
{
	struct test_vault_data data;
	const char *error;
	char *sql;
	sqlite3 *db;

	snprintf(fix.tmpdir, sizeof(fix.tmpdir), "/tmp/marmot-scram-XXXXXX");
	if (mkdtemp(fix.tmpdir) == NULL)
		return -1;
	snprintf(fix.db_path, sizeof(fix.db_path), "%s/directory.db",
		 fix.tmpdir);
	memset(fix.fake_key, 0xa5, sizeof(fix.fake_key));
	if (test_vault_populate(fix.tmpdir, &data) < 0)
		return -1;
	fix.dir = data.dir;
	fix.alice_id = data.alice_id;
	fix.bob_id = data.bob_id;
	snprintf(fix.alice_app_pw, sizeof(fix.alice_app_pw), "%s",
		 data.alice_app_pw);
	if (directory_account_add_zero_access(fix.dir, NULL, "zed@example.org",
					      "zed-pw", 0, &fix.zed_id,
					      &error) < 0 ||
	    directory_account_add(fix.dir, NULL, data.master_key,
				  "old@example.org", "old-pw", 0, &fix.old_id,
				  &error) < 0) {
		fprintf(stderr, "directory setup: %s\n", error);
		return -1;
	}
	pool_clear(directory_pool(fix.dir));
	/* "old" as if its password was set before schema 3. */
	if (sqlite3_open(fix.db_path, &db) != SQLITE_OK)
		return -1;
	sql = sqlite3_mprintf("UPDATE accounts SET scram_salt = NULL, "
			      "scram_iterations = NULL, scram_stored_key = "
			      "NULL, scram_server_key = NULL WHERE id = %lld",
			      (long long)fix.old_id);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	sqlite3_free(sql);
	sqlite3_close(db);
	return 0;
}

static int group_teardown(void **state ATTR_UNUSED)
{
	directory_close(&fix.dir);
	return test_remove_tree(fix.tmpdir);
}

/* ---- the client: lib-sasl's scram-client.h ---- */

#define CLIENT_NONCE "fyko+d2lbbFgONRv9qkxdawL"

static void client_first(struct scram_client *c, char cbind_flag,
			 const char *user)
{
	scram_client_init(c, cbind_flag, NULL, user, CLIENT_NONCE);
}

/* Reads the server-first-message and builds the client-final. */
static void client_final(struct scram_client *c, const char *server_first,
			 const char *password)
{
	const char *error;

	if (scram_client_server_first(c, server_first, span_from_cstr(password),
				      &error) < 0)
		fail_msg("server-first %s: %s", server_first, error);
	assert_true(c->iterations >= 4096);
	assert_int_equal(c->salt_len, SCRAM_SALT_LEN);
}

static struct vault_scram *scram_create(struct ioloop *ioloop,
					unsigned int max_sessions,
					unsigned int ttl_msecs)
{
	const struct vault_scram_settings set = {
		.max_sessions = max_sessions,
		.ttl_msecs = ttl_msecs,
	};

	return vault_scram_create(ioloop, fix.dir, &set, fix.fake_key);
}

struct outcome {
	enum auth_result result;
	uint64_t account_id;
	char address[128];
	char reason[64];
	bool server_verified;
	char server_first[512];
};

/* One full exchange. */
static struct outcome scram_login(struct vault_scram *scram, const char *user,
				  const char *password)
{
	struct vault_scram_result res;
	struct buf first = BUF_INIT, final = BUF_INIT;
	struct outcome out;
	struct scram_client c;
	uint32_t session;

	memset(&out, 0, sizeof(out));
	client_first(&c, 'n', user);
	assert_int_equal(vault_scram_start(scram, &fix, "imap", "192.0.2.1",
					   scram_client_first_message(&c),
					   &session, &first, &res),
			 AUTH_RESULT_OK);
	assert_int_not_equal(session, 0);
	snprintf(out.server_first, sizeof(out.server_first), "%s",
		 buf_cstr(&first));
	client_final(&c, buf_cstr(&first), password);
	vault_scram_finish(scram, &fix, session, scram_client_final_message(&c),
			   &final, &res);
	/* Kept from start for the log of finish. */
	assert_string_equal(res.service, "imap");
	assert_string_equal(res.ip, "192.0.2.1");
	out.result = res.result;
	out.account_id = res.account_id;
	snprintf(out.address, sizeof(out.address), "%s", res.address);
	snprintf(out.reason, sizeof(out.reason), "%s",
		 res.reason != NULL ? res.reason : "");
	if (res.result == AUTH_RESULT_OK)
		out.server_verified =
			scram_client_verify_server_final(&c, buf_cstr(&final));
	else
		assert_int_equal(final.used, 0);
	scram_client_deinit(&c);
	buf_free(&first);
	buf_free(&final);
	return out;
}

static void test_password_and_app_password(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_scram *scram = scram_create(ioloop, 0, 0);
	struct outcome o;

	o = scram_login(scram, "Alice@Example.org", ALICE_PW);
	assert_int_equal(o.result, AUTH_RESULT_OK);
	assert_int_equal(o.account_id, fix.alice_id);
	assert_string_equal(o.address, "alice@example.org");
	assert_true(o.server_verified);

	o = scram_login(scram, "alice@example.org", fix.alice_app_pw);
	assert_int_equal(o.result, AUTH_RESULT_OK);
	assert_int_equal(o.account_id, fix.alice_id);
	assert_true(o.server_verified);

	o = scram_login(scram, "alice@example.org", "wrong");
	assert_int_equal(o.result, AUTH_RESULT_FAILED);
	assert_int_equal(o.account_id, 0);
	assert_string_equal(o.address, "");
	assert_string_equal(o.reason, "invalid-proof");
	assert_int_equal(vault_scram_session_count(scram), 0);

	vault_scram_destroy(&scram);
	ioloop_destroy(&ioloop);
}

static void salt_of(const char *server_first, char *out, size_t size)
{
	const char *s = strstr(server_first, ",s=");

	assert_non_null(s);
	snprintf(out, size, "%s", s);
}

static void test_unknown_user(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_scram *scram = scram_create(ioloop, 0, 0);
	struct vault_scram *other;
	struct outcome o, again;
	char s1[128], s2[128];

	o = scram_login(scram, "nobody@example.org", "x");
	assert_int_equal(o.result, AUTH_RESULT_FAILED);
	assert_string_equal(o.reason, "unknown_user");
	/* The made-up salt is stable, and like a real one: 16 bytes and
	   4096 iterations. */
	again = scram_login(scram, "Nobody@example.org", "y");
	salt_of(o.server_first, s1, sizeof(s1));
	salt_of(again.server_first, s2, sizeof(s2));
	assert_string_equal(s1, s2);
	assert_non_null(strstr(s1, ",i=4096"));
	/* Different users, different salts; another key, another salt. */
	again = scram_login(scram, "nobody2@example.org", "y");
	salt_of(again.server_first, s2, sizeof(s2));
	assert_string_not_equal(s1, s2);
	memset(fix.fake_key, 0x11, sizeof(fix.fake_key));
	other = scram_create(ioloop, 0, 0);
	memset(fix.fake_key, 0xa5, sizeof(fix.fake_key));
	again = scram_login(other, "nobody@example.org", "y");
	salt_of(again.server_first, s2, sizeof(s2));
	assert_string_not_equal(s1, s2);
	vault_scram_destroy(&other);

	/* An invalid address and another domain are unknown too. */
	o = scram_login(scram, "not an address", "x");
	assert_int_equal(o.result, AUTH_RESULT_FAILED);
	o = scram_login(scram, "alice@elsewhere.example", ALICE_PW);
	assert_int_equal(o.result, AUTH_RESULT_FAILED);

	/* A real account's salt is stable too. */
	o = scram_login(scram, "alice@example.org", ALICE_PW);
	again = scram_login(scram, "alice@example.org", "wrong");
	salt_of(o.server_first, s1, sizeof(s1));
	salt_of(again.server_first, s2, sizeof(s2));
	assert_string_equal(s1, s2);
	/* The server nonces differ. */
	assert_string_not_equal(o.server_first, again.server_first);

	vault_scram_destroy(&scram);
	ioloop_destroy(&ioloop);
}

static void test_disabled_zero_access_old(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_scram *scram = scram_create(ioloop, 0, 0);
	struct outcome o;

	o = scram_login(scram, "bob@example.org", BOB_PW);
	assert_int_equal(o.result, AUTH_RESULT_DISABLED);
	assert_int_equal(o.account_id, fix.bob_id);
	o = scram_login(scram, "bob@example.org", "wrong");
	assert_int_equal(o.result, AUTH_RESULT_FAILED);
	assert_int_equal(o.account_id, 0);

	/* Zero-access: no secrets; refused even with the right password. */
	o = scram_login(scram, "zed@example.org", "zed-pw");
	assert_int_equal(o.result, AUTH_RESULT_FAILED);
	assert_string_equal(o.reason, "zero_access");
	assert_non_null(strstr(o.server_first, ",i=4096"));

	/* A password from before schema 3: no SCRAM until it is set. */
	o = scram_login(scram, "old@example.org", "old-pw");
	assert_int_equal(o.result, AUTH_RESULT_FAILED);
	assert_string_equal(o.reason, "no_secret");

	vault_scram_destroy(&scram);
	ioloop_destroy(&ioloop);
}

static void test_changed_mid_exchange(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_scram *scram = scram_create(ioloop, 0, 0);
	struct vault_scram_result res;
	struct buf first = BUF_INIT, final = BUF_INIT;
	struct scram_client c;
	const char *error, *app_pw;
	uint32_t session;

	client_first(&c, 'n', "alice@example.org");
	assert_int_equal(vault_scram_start(scram, &fix, "imap", "192.0.2.1",
					   scram_client_first_message(&c),
					   &session, &first, &res),
			 AUTH_RESULT_OK);
	client_final(&c, buf_cstr(&first), ALICE_PW);
	/* Any credential change bumps credential_version. */
	assert_int_equal(directory_app_password_add(fix.dir,
						    "alice@example.org",
						    "laptop", &app_pw, &error),
			 0);
	vault_scram_finish(scram, &fix, session, scram_client_final_message(&c),
			   &final, &res);
	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	assert_string_equal(res.reason, "changed");
	assert_int_equal(final.used, 0);
	assert_int_equal(directory_app_password_del(fix.dir,
						    "alice@example.org",
						    "laptop", &error),
			 0);
	scram_client_deinit(&c);
	buf_free(&first);
	vault_scram_destroy(&scram);
	ioloop_destroy(&ioloop);
}

static void test_bad_messages(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_scram *scram = scram_create(ioloop, 0, 0);
	struct vault_scram_result res;
	struct buf first = BUF_INIT, final = BUF_INIT;
	struct scram_client c;
	uint32_t session;

	/* RFC 5802 6: channel binding is not offered. */
	assert_int_equal(vault_scram_start(scram, &fix, "imap", "192.0.2.1",
					   "p=tls-unique,,n=alice@example.org,"
					   "r=abc",
					   &session, &first, &res),
			 AUTH_RESULT_FAILED);
	assert_string_equal(res.reason, "channel-binding-not-supported");
	assert_int_equal(first.used, 0);
	assert_int_equal(vault_scram_start(scram, &fix, "imap", "192.0.2.1",
					   "garbage", &session, &first, &res),
			 AUTH_RESULT_FAILED);
	/* authzid must be the user itself. */
	assert_int_equal(vault_scram_start(scram, &fix, "imap", "192.0.2.1",
					   "n,a=bob@example.org,n=alice@"
					   "example.org,r=abc",
					   &session, &first, &res),
			 AUTH_RESULT_FAILED);
	assert_string_equal(res.reason, "invalid-authzid");
	assert_int_equal(vault_scram_session_count(scram), 0);

	/* "y" is accepted; c= must then be "eSws" (base64 "y,,"): a final
	   built for the header "n,," (c=biws) does not match. */
	struct scram_client n_client;

	client_first(&c, 'y', "alice@example.org");
	client_first(&n_client, 'n', "alice@example.org");
	assert_int_equal(vault_scram_start(scram, &fix, "imap", "192.0.2.1",
					   scram_client_first_message(&c),
					   &session, &first, &res),
			 AUTH_RESULT_OK);
	client_final(&n_client, buf_cstr(&first), ALICE_PW);
	assert_int_equal(
		strncmp(scram_client_final_message(&n_client), "c=biws,", 7),
		0);
	vault_scram_finish(scram, &fix, session,
			   scram_client_final_message(&n_client), &final, &res);
	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	assert_string_equal(res.reason, "channel-bindings-dont-match");
	scram_client_deinit(&n_client);
	buf_reset(&first);
	assert_int_equal(vault_scram_start(scram, &fix, "imap", "192.0.2.1",
					   scram_client_first_message(&c),
					   &session, &first, &res),
			 AUTH_RESULT_OK);
	client_final(&c, buf_cstr(&first), ALICE_PW);
	assert_int_equal(strncmp(scram_client_final_message(&c), "c=eSws,", 7),
			 0);
	vault_scram_finish(scram, &fix, session, scram_client_final_message(&c),
			   &final, &res);
	assert_int_equal(res.result, AUTH_RESULT_OK);
	assert_true(scram_client_verify_server_final(&c, buf_cstr(&final)));
	scram_client_deinit(&c);

	/* A nonce other than the server's (the client is told another
	   server nonce than the vault sent). */
	char *forged;

	client_first(&c, 'n', "alice@example.org");
	buf_reset(&first);
	buf_reset(&final);
	assert_int_equal(vault_scram_start(scram, &fix, "imap", "192.0.2.1",
					   scram_client_first_message(&c),
					   &session, &first, &res),
			 AUTH_RESULT_OK);
	forged = i_strdup(buf_cstr(&first));
	forged[strchr(forged, ',') - forged - 1] ^= 1;
	client_final(&c, forged, ALICE_PW);
	i_free(forged);
	vault_scram_finish(scram, &fix, session, scram_client_final_message(&c),
			   &final, &res);
	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	assert_string_equal(res.reason, "other-error");
	assert_int_equal(final.used, 0);

	/* A malformed final ends the session too. */
	buf_reset(&first);
	assert_int_equal(vault_scram_start(scram, &fix, "imap", "192.0.2.1",
					   scram_client_first_message(&c),
					   &session, &first, &res),
			 AUTH_RESULT_OK);
	vault_scram_finish(scram, &fix, session, "c=biws", &final, &res);
	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	assert_int_equal(vault_scram_session_count(scram), 0);

	scram_client_deinit(&c);
	buf_free(&first);
	buf_free(&final);
	vault_scram_destroy(&scram);
	ioloop_destroy(&ioloop);
}

static void test_sessions(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	struct vault_scram *scram = scram_create(ioloop, 2, 50);
	struct vault_scram_result res;
	struct buf first = BUF_INIT, final = BUF_INIT;
	struct scram_client c;
	uint32_t s1, s2, s3;
	int other_owner;

	client_first(&c, 'n', "alice@example.org");
	assert_int_equal(vault_scram_start(scram, &fix, "imap", "192.0.2.1",
					   scram_client_first_message(&c), &s1,
					   &first, &res),
			 AUTH_RESULT_OK);
	client_final(&c, buf_cstr(&first), ALICE_PW);
	/* Another connection cannot finish it... */
	vault_scram_finish(scram, &other_owner, s1,
			   scram_client_final_message(&c), &final, &res);
	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	assert_string_equal(res.reason, "no_session");
	/* ...the owner can, once. */
	vault_scram_finish(scram, &fix, s1, scram_client_final_message(&c),
			   &final, &res);
	assert_int_equal(res.result, AUTH_RESULT_OK);
	buf_reset(&final);
	vault_scram_finish(scram, &fix, s1, scram_client_final_message(&c),
			   &final, &res);
	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	assert_string_equal(res.reason, "no_session");

	/* Bounded: two live sessions, the third is a temporary failure. */
	buf_reset(&first);
	assert_int_equal(vault_scram_start(scram, &fix, "imap", "192.0.2.1",
					   scram_client_first_message(&c), &s1,
					   &first, &res),
			 AUTH_RESULT_OK);
	assert_int_equal(vault_scram_start(scram, &other_owner, "imap",
					   "192.0.2.1",
					   scram_client_first_message(&c), &s2,
					   &first, &res),
			 AUTH_RESULT_OK);
	assert_int_not_equal(s1, s2);
	assert_int_equal(vault_scram_start(scram, &fix, "imap", "192.0.2.1",
					   scram_client_first_message(&c), &s3,
					   &first, &res),
			 AUTH_RESULT_TEMPFAIL);
	/* A closed connection's sessions go. */
	vault_scram_forget_owner(scram, &other_owner);
	assert_int_equal(vault_scram_session_count(scram), 1);

	/* Expiry: after the TTL, finish fails and start finds room. */
	buf_reset(&first);
	assert_int_equal(vault_scram_start(scram, &fix, "imap", "192.0.2.1",
					   scram_client_first_message(&c), &s2,
					   &first, &res),
			 AUTH_RESULT_OK);
	client_final(&c, buf_cstr(&first), ALICE_PW);
	usleep(80 * 1000);
	ioloop_run_once(ioloop, 0); /* updates the loop's clock */
	vault_scram_finish(scram, &fix, s2, scram_client_final_message(&c),
			   &final, &res);
	assert_int_equal(res.result, AUTH_RESULT_FAILED);
	assert_string_equal(res.reason, "expired");
	assert_int_equal(vault_scram_session_count(scram), 1);
	assert_int_equal(vault_scram_start(scram, &fix, "imap", "192.0.2.1",
					   scram_client_first_message(&c), &s3,
					   &first, &res),
			 AUTH_RESULT_OK);
	assert_int_equal(vault_scram_start(scram, &fix, "imap", "192.0.2.1",
					   scram_client_first_message(&c), &s3,
					   &first, &res),
			 AUTH_RESULT_OK);

	scram_client_deinit(&c);
	buf_free(&first);
	buf_free(&final);
	vault_scram_destroy(&scram);
	ioloop_destroy(&ioloop);
}

/* 192.0.2.1 (scram_login()'s address) is refused at start, with the
   right name; another address is not. */
static void assert_only_first_ip_throttled(struct vault_scram *scram)
{
	struct vault_scram_result res;
	struct buf first = BUF_INIT;
	uint32_t session;

	assert_int_equal(vault_scram_start(scram, &fix, "imap", "192.0.2.1",
					   "n,,n=alice@example.org,r=abc",
					   &session, &first, &res),
			 AUTH_RESULT_TEMPFAIL);
	assert_string_equal(res.reason, "too_many_failures");
	assert_int_equal(vault_scram_start(scram, &fix, "imap", "192.0.2.99",
					   "n,,n=alice@example.org,r=abc",
					   &session, &first, &res),
			 AUTH_RESULT_OK);
	buf_free(&first);
}

/* With the vault's shared account, failures of other mechanisms (PLAIN,
   counted by vault.c) refuse SCRAM too, and SCRAM failures count there. */
static void test_shared_throttle(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	const struct vault_scram_settings set = { 0 };
	const struct vault_throttle_settings tset = {
		.max_per_ip = 3,
		.window_msecs = 60000,
	};
	struct vault_throttle *throttle = vault_throttle_create(&tset);
	struct vault_scram *scram =
		vault_scram_create(ioloop, fix.dir, &set, fix.fake_key);
	const char *reason;
	struct outcome o;

	vault_scram_set_throttle(scram, throttle);
	/* Two PLAIN failures, then one SCRAM failure: three. */
	vault_throttle_failure(throttle, "192.0.2.1", "alice@example.org",
			       ioloop_now_ms(ioloop));
	vault_throttle_failure(throttle, "192.0.2.1", "alice@example.org",
			       ioloop_now_ms(ioloop));
	o = scram_login(scram, "alice@example.org", "wrong");
	assert_int_equal(o.result, AUTH_RESULT_FAILED);
	assert_true(vault_throttle_blocked(throttle, "192.0.2.1", NULL,
					   ioloop_now_ms(ioloop), &reason));
	/* Even the right password is refused now, before any check. */
	assert_only_first_ip_throttled(scram);
	vault_scram_destroy(&scram);
	vault_throttle_destroy(&throttle);
	ioloop_destroy(&ioloop);
}

static void test_failures_throttle(void **state ATTR_UNUSED)
{
	struct ioloop *ioloop = ioloop_create();
	const struct vault_scram_settings set = {
		.max_failures = 3,
		.failure_window_msecs = 100,
	};
	struct vault_scram *scram =
		vault_scram_create(ioloop, fix.dir, &set, fix.fake_key);
	struct outcome o;

	/* scram_login() starts from 192.0.2.1. */
	for (unsigned int i = 0; i < 3; i++) {
		o = scram_login(scram, "alice@example.org", "wrong");
		assert_int_equal(o.result, AUTH_RESULT_FAILED);
	}
	/* Other addresses are not affected. */
	assert_only_first_ip_throttled(scram);
	/* After the window, the IP may try again. */
	usleep(150 * 1000);
	ioloop_run_once(ioloop, 0);
	o = scram_login(scram, "alice@example.org", ALICE_PW);
	assert_int_equal(o.result, AUTH_RESULT_OK);
	/* Successes do not count; each failure does. */
	for (unsigned int i = 0; i < 2; i++) {
		o = scram_login(scram, "nobody@example.org", "x");
		assert_int_equal(o.result, AUTH_RESULT_FAILED);
	}
	o = scram_login(scram, "alice@example.org", ALICE_PW);
	assert_int_equal(o.result, AUTH_RESULT_OK);

	vault_scram_destroy(&scram);
	ioloop_destroy(&ioloop);
}

/* ---- vault_main() as a process: SCRAM over IPC ---- */

#define read_frame test_ipc_read_frame

static void send_frame(int fd, struct buf *out)
{
	assert_int_equal(write(fd, out->data, out->used), (ssize_t)out->used);
	buf_reset(out);
}

/* One exchange over IPC; returns the FINISH result. */
static enum auth_result ipc_login(int fd, uint32_t id, const char *user,
				  const char *password, uint64_t *account_r,
				  bool *verified_r)
{
	struct buf in = BUF_INIT, out = BUF_INIT;
	struct ipc_frame frame;
	struct ipc_reader r;
	pool_t pool = pool_create("test", 512);
	struct scram_client c;
	uint32_t result, session;
	const char *server_first, *server_final;
	size_t off;

	client_first(&c, 'n', user);
	off = ipc_msg_begin(&out, IPC_VAULT_SCRAM_START, id);
	ipc_put_str(&out, "smtp");
	ipc_put_str(&out, scram_client_first_message(&c));
	ipc_put_str(&out, "192.0.2.7");
	ipc_msg_finish(&out, off);
	send_frame(fd, &out);
	assert_true(read_frame(fd, &in, &frame));
	assert_int_equal(frame.type, IPC_FRONT_SCRAM_START_REPLY);
	assert_int_equal(frame.id, id);
	ipc_reader_init(&r, &frame);
	result = ipc_get_u32(&r);
	session = ipc_get_u32(&r);
	server_first = ipc_get_str(&r, pool);
	assert_int_equal(ipc_end(&r), 0);
	assert_int_equal(result, AUTH_RESULT_OK);
	client_final(&c, server_first, password);

	off = ipc_msg_begin(&out, IPC_VAULT_SCRAM_FINISH, id + 1);
	ipc_put_u32(&out, session);
	ipc_put_str(&out, scram_client_final_message(&c));
	ipc_msg_finish(&out, off);
	send_frame(fd, &out);
	assert_true(read_frame(fd, &in, &frame));
	assert_int_equal(frame.type, IPC_FRONT_SCRAM_FINISH_REPLY);
	assert_int_equal(frame.id, id + 1);
	ipc_reader_init(&r, &frame);
	result = ipc_get_u32(&r);
	*account_r = ipc_get_u64(&r);
	(void)ipc_get_str(&r, pool);
	server_final = ipc_get_str(&r, pool);
	/* SMTP sessions never get the account's data key. */
	assert_int_equal(ipc_get_bytes(&r).len, 0);
	(void)ipc_get_u64(&r);
	assert_int_equal(ipc_end(&r), 0);
	*verified_r = result == AUTH_RESULT_OK &&
		      scram_client_verify_server_final(&c, server_final);
	if (result != AUTH_RESULT_OK)
		assert_string_equal(server_final, "");
	scram_client_deinit(&c);
	buf_free(&in);
	buf_free(&out);
	pool_unref(&pool);
	return (enum auth_result)result;
}

static void test_vault_ipc(void **state ATTR_UNUSED)
{
	static struct marmot_settings set;
	struct buf in = BUF_INIT, out = BUF_INIT;
	struct ipc_frame frame;
	uint64_t account;
	bool verified;
	int master_fd, fd, status;
	pid_t pid;

	memset(&set, 0, sizeof(set));
	set.data_dir = fix.tmpdir;
	set.vault_max_hashes = 1;
	pid = test_vault_fork(&set, &master_fd);
	assert_true(pid > 0);
	fd = test_vault_connect(fix.tmpdir);
	assert_true(fd >= 0);

	assert_int_equal(ipc_login(fd, 10, "alice@example.org", ALICE_PW,
				   &account, &verified),
			 AUTH_RESULT_OK);
	assert_int_equal(account, fix.alice_id);
	assert_true(verified);
	assert_int_equal(ipc_login(fd, 20, "alice@example.org",
				   fix.alice_app_pw, &account, &verified),
			 AUTH_RESULT_OK);
	assert_true(verified);
	assert_int_equal(ipc_login(fd, 30, "alice@example.org", "nope",
				   &account, &verified),
			 AUTH_RESULT_FAILED);
	assert_int_equal(account, 0);
	assert_int_equal(ipc_login(fd, 40, "bob@example.org", BOB_PW, &account,
				   &verified),
			 AUTH_RESULT_DISABLED);

	/* A malformed client-first-message is an answer, not an error. */
	struct ipc_reader r;
	pool_t pool = pool_create("test", 256);
	size_t off = ipc_msg_begin(&out, IPC_VAULT_SCRAM_START, 45);

	ipc_put_str(&out, "smtp");
	ipc_put_str(&out, "p=tls-unique,,n=alice@example.org,r=abc");
	ipc_put_str(&out, "192.0.2.7");
	ipc_msg_finish(&out, off);
	send_frame(fd, &out);
	assert_true(read_frame(fd, &in, &frame));
	assert_int_equal(frame.type, IPC_FRONT_SCRAM_START_REPLY);
	ipc_reader_init(&r, &frame);
	assert_int_equal(ipc_get_u32(&r), AUTH_RESULT_FAILED);
	assert_int_equal(ipc_get_u32(&r), 0);
	assert_string_equal(ipc_get_str(&r, pool), "");
	assert_int_equal(ipc_end(&r), 0);
	/* A FINISH for a session of nobody: failed. */
	off = ipc_msg_begin(&out, IPC_VAULT_SCRAM_FINISH, 46);
	ipc_put_u32(&out, 12345);
	ipc_put_str(&out, "c=biws,r=abc,p=AAAA");
	ipc_msg_finish(&out, off);
	send_frame(fd, &out);
	assert_true(read_frame(fd, &in, &frame));
	assert_int_equal(frame.type, IPC_FRONT_SCRAM_FINISH_REPLY);
	ipc_reader_init(&r, &frame);
	assert_int_equal(ipc_get_u32(&r), AUTH_RESULT_FAILED);
	assert_int_equal(ipc_get_u64(&r), 0);
	assert_string_equal(ipc_get_str(&r, pool), "");
	assert_string_equal(ipc_get_str(&r, pool), "");
	assert_int_equal(ipc_get_bytes(&r).len, 0);
	assert_int_equal(ipc_get_u64(&r), 0);
	assert_int_equal(ipc_end(&r), 0);
	pool_unref(&pool);

	/* A START with an oversized service name is a protocol error. */
	int fd2 = test_vault_connect(fix.tmpdir);

	assert_true(fd2 >= 0);
	off = ipc_msg_begin(&out, IPC_VAULT_SCRAM_START, 47);
	ipc_put_str(&out, "a-service-name-longer-than-32-bytes");
	ipc_put_str(&out, "n,,n=alice@example.org,r=abc");
	ipc_put_str(&out, "192.0.2.7");
	ipc_msg_finish(&out, off);
	send_frame(fd2, &out);
	assert_false(read_frame(fd2, &in, &frame));
	close(fd2);

	/* A FINISH with trailing bytes is a protocol error: closed. */
	off = ipc_msg_begin(&out, IPC_VAULT_SCRAM_FINISH, 50);
	ipc_put_u32(&out, 1);
	ipc_put_str(&out, "c=biws");
	buf_append_c(&out, 'x');
	ipc_msg_finish(&out, off);
	send_frame(fd, &out);
	assert_false(read_frame(fd, &in, &frame));

	close(master_fd); /* the master goes: the vault ends */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(fd);
	buf_free(&in);
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_password_and_app_password),
		cmocka_unit_test(test_unknown_user),
		cmocka_unit_test(test_disabled_zero_access_old),
		cmocka_unit_test(test_changed_mid_exchange),
		cmocka_unit_test(test_bad_messages),
		cmocka_unit_test(test_sessions),
		cmocka_unit_test(test_failures_throttle),
		cmocka_unit_test(test_shared_throttle),
		cmocka_unit_test(test_vault_ipc),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
