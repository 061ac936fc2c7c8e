/* test-front-sasl.c - front-sasl.c end to end inside one test process: a
   real front connection (over a socketpair) and the front's real vault
   client, talking to vault_main() forked over a temporary data directory.
   PLAIN, LOGIN and SCRAM-SHA-256 (with lib-sasl's client) log in with the
   account's password and an app password; wrong passwords, a disabled
   account, malformed and cancelled exchanges, channel binding, an unknown
   mechanism, freeing mid-exchange, and a vault that went away (temporary
   failure). done is never called from inside start or input. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "front-private.h"
#include "front-sasl.h"
#include "directory.h"
#include "ioloop.h"
#include "scram-client.h"
#include "settings.h"
#include "tls.h"
#include "vault.h"
#include "test-vault-common.h"

#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define ALICE_PW TEST_ALICE_PW
#define BOB_PW TEST_BOB_PW

static struct {
	char tmpdir[64];
	char app_pw[128];
	uint64_t alice_id, bob_id;
	pid_t vault_pid;
	int vault_master_fd;
	int peer_fd; /* the client's end of the connection */
	struct front front;
	struct front_conn *conn;
} fix;

struct record {
	struct front_sasl *sasl;
	unsigned int sends;
	char challenge[1024];
	bool done;
	enum auth_result result;
	uint64_t account_id;
	char address[128];
	char final_b64[256];
	bool has_final;
	enum front_sasl_failure failure;
};

static void rec_send(void *context, const char *challenge_b64)
{
	struct record *rec = context;

	assert_false(rec->done);
	rec->sends++;
	snprintf(rec->challenge, sizeof(rec->challenge), "%s", challenge_b64);
}

static void rec_done(void *context, enum auth_result result,
		     uint64_t account_id, const char *address,
		     const char *final_b64)
{
	struct record *rec = context;

	assert_false(rec->done);
	rec->done = true;
	rec->result = result;
	rec->account_id = account_id;
	snprintf(rec->address, sizeof(rec->address), "%s", address);
	rec->has_final = final_b64 != NULL;
	snprintf(rec->final_b64, sizeof(rec->final_b64), "%s",
		 final_b64 != NULL ? final_b64 : "");
	rec->failure = front_sasl_failure(rec->sasl);
	/* Freeing from inside done is allowed. */
	front_sasl_free(&rec->sasl);
}

static char *b64(const void *data, size_t len)
{
	size_t max =
		sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
	char *out = i_malloc(max);

	sodium_bin2base64(out, max, data, len, sodium_base64_VARIANT_ORIGINAL);
	return out;
}

static char *unb64(const char *text)
{
	size_t len = 0, max = strlen(text) + 1;
	char *out = i_malloc(max);

	assert_int_equal(sodium_base642bin((uint8_t *)out, max, text,
					   strlen(text), NULL, &len, NULL,
					   sodium_base64_VARIANT_ORIGINAL),
			 0);
	out[len] = '\0';
	return out;
}

/* Runs the loop until the exchange ends or wants the client again. */
static void run_until(struct record *rec, unsigned int sends)
{
	for (unsigned int i = 0; i < 300 && !rec->done && rec->sends < sends;
	     i++)
		ioloop_run_once(fix.front.ioloop, 50);
	assert_true(rec->done || rec->sends >= sends);
}

static void start(struct record *rec, const char *mech, const char *initial)
{
	const char *error = NULL;

	memset(rec, 0, sizeof(*rec));
	rec->sasl = front_sasl_start(fix.conn, "smtp", mech, initial, rec_send,
				     rec_done, rec, &error);
	assert_non_null(rec->sasl);
	/* Never from inside the call. */
	assert_false(rec->done);
}

static void input(struct record *rec, const char *line)
{
	unsigned int sends = rec->sends;

	front_sasl_input(rec->sasl, span_from_cstr(line));
	assert_false(rec->done);
	run_until(rec, sends + 1);
}

static char *plain_b64(const char *authzid, const char *user,
		       const char *password)
{
	char msg[512];
	size_t len;

	len = (size_t)snprintf(msg, sizeof(msg), "%s%c%s%c%s", authzid, '\0',
			       user, '\0', password);
	return b64(msg, len);
}

static int group_setup(void **state ATTR_UNUSED)
{
	struct test_vault_data data;
	struct marmot_settings *set, *vault_set;
	char cert[128], key[128], *serror;
	const char *error;
	int sp[2], fd;

	/* A write to the vault after it died must not kill the test (the
	   front ignores SIGPIPE too). */
	signal(SIGPIPE, SIG_IGN);
	snprintf(fix.tmpdir, sizeof(fix.tmpdir), "/tmp/marmot-fsasl-XXXXXX");
	if (mkdtemp(fix.tmpdir) == NULL)
		return -1;
	if (test_vault_populate(fix.tmpdir, &data) < 0 ||
	    test_write_file(fix.tmpdir, "marmot.conf",
			    "hostname = mail.example.org\n", 28) < 0)
		return -1;
	fix.alice_id = data.alice_id;
	fix.bob_id = data.bob_id;
	snprintf(fix.app_pw, sizeof(fix.app_pw), "%s", data.alice_app_pw);
	directory_close(&data.dir);

	if (settings_load(fix.tmpdir, NULL, &set, &serror) < 0 ||
	    settings_load(fix.tmpdir, NULL, &vault_set, &serror) < 0) {
		fprintf(stderr, "settings: %s\n", serror);
		i_free(serror);
		return -1;
	}
	vault_set->vault_max_hashes = 1;
	fix.vault_pid = test_vault_fork(vault_set, &fix.vault_master_fd);
	settings_free(&vault_set);
	if (fix.vault_pid < 0)
		return -1;

	/* The front: settings, loop, TLS context, one submission conn. */
	snprintf(cert, sizeof(cert), "%s/cert.pem", fix.tmpdir);
	snprintf(key, sizeof(key), "%s/key.pem", fix.tmpdir);
	if (tls_write_self_signed("mail.example.org", cert, key, &error) < 0)
		return -1;
	fix.front.set = set;
	fix.front.ioloop = ioloop_create();
	fix.front.tls = tls_ctx_server_create(cert, key, &error);
	if (fix.front.tls == NULL)
		return -1;
	front_global = &fix.front;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return -1;
	front_conn_create(&fix.front, sp[0], "127.0.0.1", 58700,
			  SETTINGS_PORT_SUBMISSION);
	fix.conn = fix.front.conns;
	fix.peer_fd = sp[1];
	/* Wait until the vault accepts connections (the socket file
	   exists a moment before listen()), so that the front's first
	   connect does not fail under load. */
	fd = test_vault_connect(fix.tmpdir);
	if (fd < 0)
		return -1;
	close(fd);
	return fix.conn != NULL ? 0 : -1;
}

static int group_teardown(void **state ATTR_UNUSED)
{
	if (fix.vault_pid > 0) {
		kill(fix.vault_pid, SIGTERM);
		waitpid(fix.vault_pid, NULL, 0);
	}
	close(fix.vault_master_fd);
	front_conns_destroy_all(&fix.front);
	close(fix.peer_fd);
	tls_ctx_unref(&fix.front.tls);
	settings_free(&fix.front.set);
	/* The loop and the front's vault connection (front.c statics)
	   stay: they are reachable and the process ends. */
	return test_remove_tree(fix.tmpdir);
}

static void test_mechs_and_unknown(void **state ATTR_UNUSED)
{
	const char *error = NULL;
	struct record rec;

	assert_string_equal(front_sasl_mechs(), "PLAIN LOGIN SCRAM-SHA-256");
	memset(&rec, 0, sizeof(rec));
	assert_null(front_sasl_start(fix.conn, "smtp", "CRAM-MD5", NULL,
				     rec_send, rec_done, &rec, &error));
	assert_non_null(error);
	assert_int_equal(rec.sends, 0);
	/* Mechanism names are case-insensitive (RFC 4422 3.1). */
	start(&rec, "plain", NULL);
	front_sasl_free(&rec.sasl);
}

static void test_plain(void **state ATTR_UNUSED)
{
	struct record rec;
	char *msg;

	msg = plain_b64("", "alice@example.org", ALICE_PW);
	start(&rec, "PLAIN", msg);
	run_until(&rec, 1);
	assert_true(rec.done);
	assert_int_equal(rec.result, AUTH_RESULT_OK);
	assert_int_equal(rec.account_id, fix.alice_id);
	assert_string_equal(rec.address, "alice@example.org");
	assert_false(rec.has_final);
	assert_string_equal(fix.conn->user, "alice@example.org");
	assert_int_equal(fix.conn->account_id, fix.alice_id);
	i_free(msg);

	/* No initial response: an empty challenge first (RFC 4954 4). */
	msg = plain_b64("alice@example.org", "alice@example.org", fix.app_pw);
	start(&rec, "PLAIN", NULL);
	assert_int_equal(rec.sends, 1);
	assert_string_equal(rec.challenge, "");
	input(&rec, msg);
	assert_int_equal(rec.result, AUTH_RESULT_OK);
	i_free(msg);

	msg = plain_b64("", "alice@example.org", "wrong");
	start(&rec, "PLAIN", msg);
	run_until(&rec, 1);
	assert_int_equal(rec.result, AUTH_RESULT_FAILED);
	assert_int_equal(rec.failure, FRONT_SASL_FAILURE_NONE);
	assert_int_equal(rec.account_id, 0);
	i_free(msg);

	msg = plain_b64("", "bob@example.org", BOB_PW);
	start(&rec, "PLAIN", msg);
	run_until(&rec, 1);
	assert_int_equal(rec.result, AUTH_RESULT_DISABLED);
	i_free(msg);

	/* Malformed: bad base64, no NULs, another authzid, "=" (empty). */
	static const char *const bad[] = { "!!!!", "YWxpY2U=", "=" };

	for (unsigned int i = 0; i < N_ELEMENTS(bad); i++) {
		start(&rec, "PLAIN", bad[i]);
		run_until(&rec, 1);
		assert_int_equal(rec.result, AUTH_RESULT_FAILED);
		assert_int_equal(rec.failure, FRONT_SASL_FAILURE_MALFORMED);
	}
	msg = plain_b64("bob@example.org", "alice@example.org", ALICE_PW);
	start(&rec, "PLAIN", msg);
	run_until(&rec, 1);
	assert_int_equal(rec.failure, FRONT_SASL_FAILURE_MALFORMED);
	i_free(msg);
}

static void test_login(void **state ATTR_UNUSED)
{
	struct record rec;
	char *user = b64("alice@example.org", 17);
	char *pw = b64(ALICE_PW, strlen(ALICE_PW));
	char *text;

	start(&rec, "LOGIN", NULL);
	text = unb64(rec.challenge);
	assert_string_equal(text, "Username:");
	i_free(text);
	input(&rec, user);
	text = unb64(rec.challenge);
	assert_string_equal(text, "Password:");
	i_free(text);
	input(&rec, pw);
	assert_true(rec.done);
	assert_int_equal(rec.result, AUTH_RESULT_OK);
	assert_int_equal(rec.account_id, fix.alice_id);

	/* The initial response is the user name. */
	start(&rec, "LOGIN", user);
	assert_int_equal(rec.sends, 1);
	text = unb64(rec.challenge);
	assert_string_equal(text, "Password:");
	i_free(text);
	input(&rec, "d3Jvbmc="); /* "wrong" */
	assert_int_equal(rec.result, AUTH_RESULT_FAILED);
	assert_int_equal(rec.failure, FRONT_SASL_FAILURE_NONE);

	/* "*" cancels (RFC 4954 4). */
	start(&rec, "LOGIN", NULL);
	input(&rec, "*");
	assert_int_equal(rec.result, AUTH_RESULT_FAILED);
	assert_int_equal(rec.failure, FRONT_SASL_FAILURE_CANCELLED);
	/* An empty user name is malformed. */
	start(&rec, "LOGIN", NULL);
	input(&rec, "=");
	assert_int_equal(rec.failure, FRONT_SASL_FAILURE_MALFORMED);
	i_free(user);
	i_free(pw);
}

/* A whole SCRAM exchange; initial selects the initial-response form. */
static void scram_login(struct record *rec, const char *user,
			const char *password, bool initial)
{
	struct scram_client client;
	char *msg, *server_first, *final;
	const char *error;

	scram_client_init(&client, 'n', NULL, user, "rOprNGfwEbeRWgbNEkqO");
	msg = b64(scram_client_first_message(&client),
		  strlen(scram_client_first_message(&client)));
	if (initial) {
		start(rec, "SCRAM-SHA-256", msg);
		run_until(rec, 1);
	} else {
		start(rec, "SCRAM-SHA-256", NULL);
		assert_string_equal(rec->challenge, "");
		input(rec, msg);
	}
	i_free(msg);
	assert_false(rec->done);
	server_first = unb64(rec->challenge);
	assert_int_equal(scram_client_server_first(&client, server_first,
						   span_from_cstr(password),
						   &error),
			 0);
	i_free(server_first);
	msg = b64(scram_client_final_message(&client),
		  strlen(scram_client_final_message(&client)));
	input(rec, msg);
	i_free(msg);
	assert_true(rec->done);
	if (rec->result == AUTH_RESULT_OK) {
		assert_true(rec->has_final);
		final = unb64(rec->final_b64);
		/* RFC 5802 3: the client checks the server's signature. */
		assert_true(scram_client_verify_server_final(&client, final));
		i_free(final);
	} else {
		assert_false(rec->has_final);
	}
	scram_client_deinit(&client);
}

static void test_scram(void **state ATTR_UNUSED)
{
	struct record rec;
	char *msg;

	scram_login(&rec, "alice@example.org", ALICE_PW, true);
	assert_int_equal(rec.result, AUTH_RESULT_OK);
	assert_int_equal(rec.account_id, fix.alice_id);
	assert_string_equal(rec.address, "alice@example.org");
	assert_string_equal(fix.conn->user, "alice@example.org");

	scram_login(&rec, "alice@example.org", fix.app_pw, false);
	assert_int_equal(rec.result, AUTH_RESULT_OK);

	scram_login(&rec, "alice@example.org", "wrong", true);
	assert_int_equal(rec.result, AUTH_RESULT_FAILED);
	assert_int_equal(rec.failure, FRONT_SASL_FAILURE_NONE);

	scram_login(&rec, "nobody@example.org", "x", true);
	assert_int_equal(rec.result, AUTH_RESULT_FAILED);

	scram_login(&rec, "bob@example.org", BOB_PW, true);
	assert_int_equal(rec.result, AUTH_RESULT_DISABLED);

	/* Channel binding is refused in the front already. */
	msg = b64("p=tls-unique,,n=alice@example.org,r=abc", 39);
	start(&rec, "SCRAM-SHA-256", msg);
	run_until(&rec, 1);
	assert_int_equal(rec.result, AUTH_RESULT_FAILED);
	assert_int_equal(rec.failure, FRONT_SASL_FAILURE_MALFORMED);
	i_free(msg);
	/* A garbage client-final. */
	msg = b64("n,,n=alice@example.org,r=abc", 28);
	start(&rec, "SCRAM-SHA-256", msg);
	run_until(&rec, 1);
	assert_false(rec.done);
	input(&rec, "Yz1iaXdz"); /* "c=biws" */
	assert_int_equal(rec.result, AUTH_RESULT_FAILED);
	i_free(msg);
	/* Oversized responses are malformed before decoding. */
	char big[FRONT_SASL_MAX_RESPONSE + 8];

	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	start(&rec, "SCRAM-SHA-256", NULL);
	input(&rec, big);
	assert_int_equal(rec.failure, FRONT_SASL_FAILURE_MALFORMED);
}

static void test_free_mid_exchange(void **state ATTR_UNUSED)
{
	struct record rec;
	char *msg;

	/* While the vault answers: the reply is dropped. */
	msg = plain_b64("", "alice@example.org", ALICE_PW);
	start(&rec, "PLAIN", msg);
	front_sasl_free(&rec.sasl);
	i_free(msg);
	msg = b64("n,,n=alice@example.org,r=abc", 28);
	start(&rec, "SCRAM-SHA-256", msg);
	front_sasl_free(&rec.sasl);
	i_free(msg);
	/* With a failure pending. */
	start(&rec, "PLAIN", "!!!!");
	front_sasl_free(&rec.sasl);
	for (unsigned int i = 0; i < 10; i++)
		ioloop_run_once(fix.front.ioloop, 20);
	assert_false(rec.done);
	/* The connection still works. */
	scram_login(&rec, "alice@example.org", ALICE_PW, true);
	assert_int_equal(rec.result, AUTH_RESULT_OK);
}

static void test_vault_gone(void **state ATTR_UNUSED)
{
	struct record rec;
	char *msg;

	assert_int_equal(kill(fix.vault_pid, SIGTERM), 0);
	assert_int_equal(waitpid(fix.vault_pid, NULL, 0), fix.vault_pid);
	fix.vault_pid = 0;
	/* Let the front see the connection close. */
	for (unsigned int i = 0; i < 10; i++)
		ioloop_run_once(fix.front.ioloop, 20);

	msg = plain_b64("", "alice@example.org", ALICE_PW);
	start(&rec, "PLAIN", msg);
	run_until(&rec, 1);
	assert_int_equal(rec.result, AUTH_RESULT_TEMPFAIL);
	i_free(msg);
	msg = b64("n,,n=alice@example.org,r=abc", 28);
	start(&rec, "SCRAM-SHA-256", msg);
	run_until(&rec, 1);
	assert_true(rec.done);
	assert_int_equal(rec.result, AUTH_RESULT_TEMPFAIL);
	i_free(msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mechs_and_unknown),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_scram),
		cmocka_unit_test(test_free_mid_exchange),
		cmocka_unit_test(test_vault_gone),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
