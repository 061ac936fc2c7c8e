/* test-queue.c - unit tests for the outbound queue: enqueue then load
   gives back every envelope field and the body; the key file is created
   0600 once and reused; a canary never reaches the disk in the clear;
   the listing is sorted and ignores foreign and tmp files; state saves
   round-trip (status, attempts, replies, hold) and survive reopening;
   a flipped byte in either file, a .msg renamed to another id, and a
   truncated file are refused; bad envelopes are refused leaving nothing;
   delete removes both files; 4 threads enqueue 50 messages each
   concurrently, all distinct and loadable. Each test works in its own
   mkdtemp() directory, removed at the end. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "queue.h"
#include "queue-dsn.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define CANARY "zqCanary-qu3ue-Marmot-77"

struct tmp {
	char dir[64];
	struct queue *q;
};

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	return remove(path);
}

static int tmp_setup(void **state)
{
	struct tmp *t = i_new(struct tmp, 1);
	const char *error;

	snprintf(t->dir, sizeof(t->dir), "/tmp/test-queue.XXXXXX");
	if (mkdtemp(t->dir) == NULL)
		return -1;
	t->q = queue_open(t->dir, &error);
	if (t->q == NULL)
		return -1;
	*state = t;
	return 0;
}

static int tmp_teardown(void **state)
{
	struct tmp *t = *state;

	queue_close(&t->q);
	(void)nftw(t->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	i_free(t);
	return 0;
}

static const struct queue_rcpt test_rcpts[] = {
	{ "bob@example.net", "rfc822;bob@example.net", QUEUE_NOTIFY_FAILURE },
	{ "carol@example.org", NULL, 0 },
	{ "dave@example.org", NULL, QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_DELAY },
};

static const struct queue_envelope test_env = {
	.sender = "alice@example.com",
	.rcpts = test_rcpts,
	.rcpt_count = N_ELEMENTS(test_rcpts),
	.ret_full = true,
	.envid = "ENV-42",
	.hold_until = 1900000000,
	.requiretls = true,
	.account_id = 7,
};

static const char test_body[] = "Subject: hi\r\n\r\n" CANARY "\r\n";

static void enqueue_ok(struct tmp *t, char id[33])
{
	const char *error = NULL;

	assert_int_equal(queue_enqueue(t->q, &test_env,
				       (const uint8_t *)test_body,
				       strlen(test_body), id, &error),
			 0);
	assert_true(queue_id_valid(id));
}

static char *file_path(struct tmp *t, const char *name)
{
	return i_strdup_printf("%s/queue/%s", t->dir, name);
}

static void flip_byte(const char *path, off_t offset)
{
	int fd = open(path, O_RDWR);
	uint8_t c;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, offset), 1);
	c ^= 0x20;
	assert_int_equal(pwrite(fd, &c, 1, offset), 1);
	close(fd);
}

static void test_enqueue_load(void **state)
{
	struct tmp *t = *state;
	struct queue_message *msg;
	const char *error = NULL;
	char id[33];

	enqueue_ok(t, id);
	assert_int_equal(queue_load(t->q, id, true, &msg, &error), 1);
	assert_string_equal(msg->id, id);
	assert_string_equal(msg->env.sender, "alice@example.com");
	assert_string_equal(msg->env.envid, "ENV-42");
	assert_true(msg->env.ret_full);
	assert_true(msg->env.requiretls);
	assert_int_equal(msg->env.hold_until, 1900000000);
	assert_int_equal(msg->env.account_id, 7);
	assert_int_equal(msg->env.rcpt_count, 3);
	for (unsigned int i = 0; i < 3; i++) {
		assert_string_equal(msg->env.rcpts[i].address,
				    test_rcpts[i].address);
		assert_int_equal(msg->env.rcpts[i].notify,
				 test_rcpts[i].notify);
		assert_int_equal(msg->states[i].status, QUEUE_RCPT_PENDING);
		assert_int_equal(msg->states[i].attempts, 0);
		assert_string_equal(msg->states[i].last_reply, "");
	}
	assert_string_equal(msg->env.rcpts[0].orcpt, "rfc822;bob@example.net");
	assert_null(msg->env.rcpts[1].orcpt);
	assert_false(msg->held);
	assert_true(msg->queued > 0);
	assert_int_equal(msg->body_len, strlen(test_body));
	assert_memory_equal(msg->body, test_body, msg->body_len);
	assert_false(queue_message_done(msg));
	queue_message_free(&msg);
	assert_null(msg);

	/* Without the body. */
	assert_int_equal(queue_load(t->q, id, false, &msg, &error), 1);
	assert_null(msg->body);
	queue_message_free(&msg);

	/* Null sender, no envid. */
	struct queue_envelope env = test_env;
	env.sender = "";
	env.envid = NULL;
	env.rcpt_count = 1;
	assert_int_equal(
		queue_enqueue(t->q, &env, (const uint8_t *)"x", 1, id, &error),
		0);
	assert_int_equal(queue_load(t->q, id, true, &msg, &error), 1);
	assert_string_equal(msg->env.sender, "");
	assert_null(msg->env.envid);
	assert_int_equal(msg->env.rcpt_count, 1);
	queue_message_free(&msg);

	/* Unknown id. */
	assert_int_equal(queue_load(t->q, "0123456789abcdef0123456789abcdef",
				    true, &msg, &error),
			 0);
	assert_int_equal(
		queue_load(t->q, "../../etc/passwd", true, &msg, &error), -1);
}

static void test_key_and_cleartext(void **state)
{
	struct tmp *t = *state;
	char *key_path = i_strdup_printf("%s/queue.key", t->dir);
	uint8_t key1[32], key2[32];
	struct stat st;
	struct queue *q2;
	const char *error;
	char id[33], *path, *data;
	FILE *f;
	size_t n;

	assert_int_equal(stat(key_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 32);
	f = fopen(key_path, "r");
	assert_int_equal(fread(key1, 1, 32, f), 32);
	fclose(f);
	/* Reopening keeps the key. */
	q2 = queue_open(t->dir, &error);
	assert_non_null(q2);
	queue_close(&q2);
	f = fopen(key_path, "r");
	assert_int_equal(fread(key2, 1, 32, f), 32);
	fclose(f);
	assert_memory_equal(key1, key2, 32);
	i_free(key_path);

	enqueue_ok(t, id);
	path = i_strdup_printf("%s/queue/%s.msg", t->dir, id);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	data = i_malloc((size_t)st.st_size + 1);
	f = fopen(path, "r");
	n = fread(data, 1, (size_t)st.st_size, f);
	fclose(f);
	assert_int_equal(n, (size_t)st.st_size);
	assert_null(memmem(data, n, CANARY, strlen(CANARY)));
	assert_null(memmem(data, n, "alice@example.com", 17));
	assert_null(memmem(data, n, "bob@example.net", 15));
	i_free(data);
	i_free(path);

	/* A wrong-length key is refused. */
	char *dir2 = i_strdup_printf("%s/other", t->dir);
	assert_int_equal(mkdir(dir2, 0700), 0);
	key_path = i_strdup_printf("%s/queue.key", dir2);
	f = fopen(key_path, "w");
	fputs("short", f);
	fclose(f);
	assert_null(queue_open(dir2, &error));
	i_free(key_path);
	i_free(dir2);
}

static void test_list(void **state)
{
	struct tmp *t = *state;
	char ids[5][33], (*list)[QUEUE_ID_LEN + 1];
	unsigned int count;
	const char *error;
	char *path;
	FILE *f;

	assert_int_equal(queue_list(t->q, &list, &count, &error), 0);
	assert_int_equal(count, 0);
	i_free(list);
	for (unsigned int i = 0; i < 5; i++) {
		enqueue_ok(t, ids[i]);
		usleep(2);
	}
	/* Foreign files are ignored. */
	path = file_path(t, "tmp-0123456789");
	f = fopen(path, "w");
	fclose(f);
	i_free(path);
	path = file_path(t, "notanid.msg");
	f = fopen(path, "w");
	fclose(f);
	i_free(path);
	assert_int_equal(queue_list(t->q, &list, &count, &error), 0);
	assert_int_equal(count, 5);
	for (unsigned int i = 0; i < 5; i++)
		assert_string_equal(list[i], ids[i]);
	i_free(list);
}

static void test_state(void **state)
{
	struct tmp *t = *state;
	struct queue_message *msg;
	struct queue *q2;
	const char *error = NULL;
	bool gone = true;
	char id[33];

	enqueue_ok(t, id);
	assert_int_equal(queue_load(t->q, id, false, &msg, &error), 1);
	msg->states[0].status = QUEUE_RCPT_DELIVERED;
	msg->states[0].attempts = 1;
	msg->states[0].last_attempt = 1234;
	queue_message_set_reply(msg, 0, "250 2.0.0 ok\r\nqueued", "mx1.test");
	msg->states[1].status = QUEUE_RCPT_FAILED;
	msg->states[1].dsn = QUEUE_DSN_NEEDED;
	queue_message_set_reply(msg, 1, "550 5.1.1 no such user", NULL);
	msg->states[2].attempts = 3;
	msg->states[2].next_attempt = 99999;
	msg->states[2].delay_notified = true;
	assert_int_equal(queue_state_save(t->q, msg, &gone, &error), 0);
	assert_false(gone);
	assert_int_equal(msg->generation, 1);
	queue_message_free(&msg);

	q2 = queue_open(t->dir, &error);
	assert_non_null(q2);
	assert_int_equal(queue_load(q2, id, false, &msg, &error), 1);
	assert_int_equal(msg->generation, 1);
	assert_int_equal(msg->states[0].status, QUEUE_RCPT_DELIVERED);
	assert_int_equal(msg->states[0].last_attempt, 1234);
	assert_string_equal(msg->states[0].last_reply, "250 2.0.0 ok  queued");
	assert_string_equal(msg->states[0].remote_host, "mx1.test");
	assert_int_equal(msg->states[1].status, QUEUE_RCPT_FAILED);
	assert_int_equal(msg->states[1].dsn, QUEUE_DSN_NEEDED);
	assert_string_equal(msg->states[1].last_reply,
			    "550 5.1.1 no such user");
	assert_string_equal(msg->states[1].remote_host, "");
	assert_int_equal(msg->states[2].status, QUEUE_RCPT_PENDING);
	assert_int_equal(msg->states[2].attempts, 3);
	assert_int_equal(msg->states[2].next_attempt, 99999);
	assert_true(msg->states[2].delay_notified);
	assert_false(msg->states[1].delay_notified);
	assert_false(queue_message_done(msg));
	msg->states[1].dsn = QUEUE_DSN_DONE;
	msg->states[2].status = QUEUE_RCPT_DELIVERED;
	assert_true(queue_message_done(msg));
	queue_message_free(&msg);
	queue_close(&q2);

	/* Hold and release. */
	assert_int_equal(queue_set_held(t->q, id, true, &error), 1);
	assert_int_equal(queue_load(t->q, id, false, &msg, &error), 1);
	assert_true(msg->held);
	assert_int_equal(msg->generation, 2);
	assert_int_equal(msg->states[0].status, QUEUE_RCPT_DELIVERED);
	queue_message_free(&msg);
	assert_int_equal(queue_set_held(t->q, id, false, &error), 1);
	assert_int_equal(queue_load(t->q, id, false, &msg, &error), 1);
	assert_false(msg->held);
	assert_int_equal(queue_set_held(t->q,
					"0123456789abcdef0123456789abcdef",
					true, &error),
			 0);

	/* Deleted while loaded: the save notices and writes nothing. */
	assert_int_equal(queue_delete(t->q, id, &error), 1);
	assert_int_equal(queue_state_save(t->q, msg, &gone, &error), 0);
	assert_true(gone);
	queue_message_free(&msg);
	char *path = i_strdup_printf("%s/queue/%s.state", t->dir, id);
	assert_int_equal(access(path, F_OK), -1);
	i_free(path);
	assert_int_equal(queue_delete(t->q, id, &error), 0);
	assert_int_equal(queue_load(t->q, id, false, &msg, &error), 0);
}

static void test_tamper(void **state)
{
	struct tmp *t = *state;
	struct queue_message *msg;
	const char *error = NULL;
	char id[33], id2[33], *path, *path2, *spath;
	struct stat st;

	enqueue_ok(t, id);
	path = i_strdup_printf("%s/queue/%s.msg", t->dir, id);
	assert_int_equal(stat(path, &st), 0);
	/* Every byte matters: magic, nonce, ciphertext, tag. */
	for (off_t off = 0; off < st.st_size; off += 7) {
		flip_byte(path, off);
		assert_int_equal(queue_load(t->q, id, true, &msg, &error), -1);
		assert_non_null(error);
		flip_byte(path, off);
	}
	assert_int_equal(queue_load(t->q, id, true, &msg, &error), 1);
	queue_message_free(&msg);

	/* Truncated. */
	assert_int_equal(truncate(path, st.st_size - 1), 0);
	assert_int_equal(queue_load(t->q, id, true, &msg, &error), -1);

	/* A valid file under another id does not open (AD = id). */
	enqueue_ok(t, id2);
	path2 = i_strdup_printf("%s/queue/%s.msg", t->dir, id2);
	assert_int_equal(rename(path2, path), 0);
	assert_int_equal(queue_load(t->q, id, true, &msg, &error), -1);

	/* A damaged state file is refused too. */
	enqueue_ok(t, id2);
	assert_int_equal(queue_set_held(t->q, id2, true, &error), 1);
	spath = i_strdup_printf("%s/queue/%s.state", t->dir, id2);
	flip_byte(spath, 30);
	assert_int_equal(queue_load(t->q, id2, true, &msg, &error), -1);
	i_free(spath);
	i_free(path);
	i_free(path2);
}

static void test_bad_envelope(void **state)
{
	struct tmp *t = *state;
	struct queue_envelope env;
	struct queue_rcpt rcpt = { "bob@example.net", NULL, 0 };
	char(*list)[QUEUE_ID_LEN + 1];
	unsigned int count;
	const char *error = NULL;
	char id[33];
	char *long_addr = i_malloc(QUEUE_MAX_STRING + 2);

	env = test_env;
	env.rcpt_count = 0;
	assert_int_equal(
		queue_enqueue(t->q, &env, (const uint8_t *)"x", 1, id, &error),
		-1);
	env = test_env;
	env.sender = "a@b\r\nRCPT TO:<x@y>";
	assert_int_equal(
		queue_enqueue(t->q, &env, (const uint8_t *)"x", 1, id, &error),
		-1);
	env = test_env;
	env.rcpts = &rcpt;
	env.rcpt_count = 1;
	rcpt.address = "";
	assert_int_equal(
		queue_enqueue(t->q, &env, (const uint8_t *)"x", 1, id, &error),
		-1);
	memset(long_addr, 'a', QUEUE_MAX_STRING + 1);
	rcpt.address = long_addr;
	assert_int_equal(
		queue_enqueue(t->q, &env, (const uint8_t *)"x", 1, id, &error),
		-1);
	rcpt.address = "bob@example.net";
	assert_int_equal(queue_enqueue(t->q, &env, (const uint8_t *)"x",
				       QUEUE_MAX_MESSAGE + 1, id, &error),
			 -1);
	i_free(long_addr);
	assert_int_equal(queue_list(t->q, &list, &count, &error), 0);
	assert_int_equal(count, 0);
	i_free(list);
	/* Nothing was written at all, tmp files included. */
	char *qdir = i_strdup_printf("%s/queue", t->dir);
	DIR *dir = opendir(qdir);
	struct dirent *d;
	unsigned int entries = 0;
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] != '.' && strcmp(d->d_name, "ctl") != 0)
			entries++;
	}
	closedir(dir);
	i_free(qdir);
	assert_int_equal(entries, 0);
}

struct thread_arg {
	struct queue *q;
	char ids[50][33];
	int failures;
};

static void *enqueue_thread(void *context)
{
	struct thread_arg *arg = context;
	const char *error;

	for (unsigned int i = 0; i < 50; i++) {
		if (queue_enqueue(arg->q, &test_env, (const uint8_t *)test_body,
				  strlen(test_body), arg->ids[i], &error) < 0)
			arg->failures++;
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct tmp *t = *state;
	struct thread_arg args[4];
	pthread_t threads[4];
	char(*list)[QUEUE_ID_LEN + 1];
	unsigned int count;
	const char *error;

	for (unsigned int i = 0; i < 4; i++) {
		memset(&args[i], 0, sizeof(args[i]));
		args[i].q = t->q;
		assert_int_equal(pthread_create(&threads[i], NULL,
						enqueue_thread, &args[i]),
				 0);
	}
	for (unsigned int i = 0; i < 4; i++) {
		pthread_join(threads[i], NULL);
		assert_int_equal(args[i].failures, 0);
	}
	assert_int_equal(queue_list(t->q, &list, &count, &error), 0);
	assert_int_equal(count, 200);
	for (unsigned int i = 1; i < count; i++)
		assert_true(strcmp(list[i - 1], list[i]) < 0);
	for (unsigned int i = 0; i < count; i++) {
		struct queue_message *msg;

		assert_int_equal(queue_load(t->q, list[i], true, &msg, &error),
				 1);
		assert_memory_equal(msg->body, test_body, strlen(test_body));
		queue_message_free(&msg);
	}
	i_free(list);
}

struct seen_request {
	unsigned int count;
	enum queue_request_op ops[8];
	char ids[8][40];
};

static void request_cb(void *context, enum queue_request_op op, const char *id)
{
	struct seen_request *seen = context;

	assert_true(seen->count < 8);
	seen->ops[seen->count] = op;
	snprintf(seen->ids[seen->count], sizeof(seen->ids[0]), "%s", id);
	seen->count++;
}

static void test_requests(void **state)
{
	struct tmp *t = *state;
	struct seen_request seen;
	const char *error;
	char id[33], *path;
	FILE *f;

	enqueue_ok(t, id);
	assert_int_equal(
		queue_request_add(t->q, QUEUE_REQUEST_HOLD, id, &error), 0);
	assert_true(queue_request_pending(t->q, QUEUE_REQUEST_HOLD, id));
	assert_false(queue_request_pending(t->q, QUEUE_REQUEST_DELETE, id));
	assert_int_equal(
		queue_request_add(t->q, QUEUE_REQUEST_FLUSH, "all", &error), 0);
	/* "all" only for flush; no path games. */
	assert_int_equal(
		queue_request_add(t->q, QUEUE_REQUEST_DELETE, "all", &error),
		-1);
	assert_int_equal(
		queue_request_add(t->q, QUEUE_REQUEST_DELETE, "../x", &error),
		-1);
	/* A foreign file in ctl/ is removed, not reported. */
	path = i_strdup_printf("%s/queue/ctl/bogus.%s", t->dir, id);
	f = fopen(path, "w");
	fclose(f);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(
		queue_requests_take(t->q, 100, request_cb, &seen, &error), 2);
	assert_int_equal(seen.count, 2);
	for (unsigned int i = 0; i < 2; i++) {
		if (seen.ops[i] == QUEUE_REQUEST_HOLD)
			assert_string_equal(seen.ids[i], id);
		else
			assert_string_equal(seen.ids[i], "all");
	}
	assert_int_equal(access(path, F_OK), -1);
	i_free(path);
	assert_false(queue_request_pending(t->q, QUEUE_REQUEST_HOLD, id));
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(
		queue_requests_take(t->q, 100, request_cb, &seen, &error), 0);
}

static void test_dsn(void **state)
{
	static const char original[] = "From: alice@example.com\n"
				       "Subject: hello\n"
				       "\n"
				       "body " CANARY "\n";
	const struct queue_dsn_rcpt rcpts[] = {
		{ "bob@example.net", "rfc822;Bob@Example.net", "failed",
		  "5.1.1", "mx.example.net",
		  "550 5.1.1 no such user\r\nInjected: header", 1700000000 },
		{ "carol@example.org", NULL, "failed", "4.4.7", "", "", 0 },
	};
	struct queue_dsn dsn = {
		.reporting_mta = "mail.example.com",
		.sender = "alice@example.com",
		.envid = "ENV-1",
		.arrival = 1700000000,
		.rcpts = rcpts,
		.rcpt_count = 2,
		.original = (const uint8_t *)original,
		.original_len = strlen(original),
		.ret_full = false,
	};
	struct buf out = BUF_INIT;
	const char *text;
	char status[16];

	queue_dsn_build(&dsn, 1700000100, &out);
	text = buf_cstr(&out);
	assert_non_null(strstr(text, "Content-Type: multipart/report; "
				     "report-type=delivery-status;"));
	assert_non_null(strstr(text, "\r\nTo: <alice@example.com>\r\n"));
	assert_non_null(strstr(text, "Auto-Submitted: auto-replied\r\n"));
	assert_non_null(strstr(text, "Content-Type: message/delivery-status"));
	assert_non_null(
		strstr(text, "Reporting-MTA: dns; mail.example.com\r\n"));
	assert_non_null(strstr(text, "Original-Envelope-Id: ENV-1\r\n"));
	assert_non_null(strstr(text, "Original-Recipient: "
				     "rfc822;Bob@Example.net\r\n"
				     "Final-Recipient: rfc822; "
				     "bob@example.net\r\n"
				     "Action: failed\r\n"
				     "Status: 5.1.1\r\n"
				     "Remote-MTA: dns; mx.example.net\r\n"
				     "Diagnostic-Code: smtp; 550 5.1.1 no "
				     "such user  Injected: header\r\n"));
	assert_non_null(strstr(text, "Final-Recipient: rfc822; "
				     "carol@example.org\r\n"
				     "Action: failed\r\nStatus: 4.4.7\r\n"));
	/* The injected CRLF did not make a header line. */
	assert_null(strstr(text, "\r\nInjected:"));
	/* RET=HDRS: headers only, made CRLF. */
	assert_non_null(strstr(text, "Content-Type: text/rfc822-headers\r\n"
				     "\r\nFrom: alice@example.com\r\n"
				     "Subject: hello\r\n"));
	assert_null(strstr(text, CANARY));
	assert_non_null(strstr(text, "Subject: Undelivered Mail"));
	/* No bare LF anywhere. */
	for (size_t i = 0; i < out.used; i++) {
		if (text[i] == '\n')
			assert_int_equal(text[i - 1], '\r');
	}
	buf_free(&out);

	dsn.ret_full = true;
	queue_dsn_build(&dsn, 1700000100, &out);
	assert_non_null(strstr(buf_cstr(&out), "Content-Type: message/rfc822"));
	assert_non_null(strstr(buf_cstr(&out), "body " CANARY "\r\n"));
	buf_free(&out);

	/* A delay notification says so. */
	{
		struct queue_dsn_rcpt delayed = rcpts[1];
		struct queue_dsn d2 = dsn;

		delayed.action = "delayed";
		d2.rcpts = &delayed;
		d2.rcpt_count = 1;
		queue_dsn_build(&d2, 1700000100, &out);
		assert_non_null(strstr(buf_cstr(&out),
				       "Subject: Delayed Mail (still being "
				       "retried)\r\n"));
		assert_non_null(strstr(buf_cstr(&out), "Action: delayed\r\n"));
		assert_non_null(strstr(buf_cstr(&out), "need not resend"));
		buf_free(&out);
	}

	/* Who gets one (RFC 3461 4.1, RFC 5321 4.5.5). */
	assert_true(queue_dsn_wanted("a@b", 0, "failed"));
	assert_true(queue_dsn_wanted("a@b", QUEUE_NOTIFY_FAILURE, "failed"));
	assert_false(queue_dsn_wanted("a@b", QUEUE_NOTIFY_SUCCESS, "failed"));
	assert_false(queue_dsn_wanted("a@b", QUEUE_NOTIFY_NEVER, "failed"));
	assert_false(queue_dsn_wanted("", 0, "failed"));
	assert_false(queue_dsn_wanted("a@b", 0, "delayed"));
	assert_true(queue_dsn_wanted("a@b", QUEUE_NOTIFY_DELAY, "delayed"));
	assert_true(queue_dsn_wanted("a@b", QUEUE_NOTIFY_SUCCESS, "delivered"));

	assert_string_equal(queue_dsn_status_of_reply("550 5.1.1 no", status,
						      sizeof(status)),
			    "5.1.1");
	assert_string_equal(queue_dsn_status_of_reply("554 no code", status,
						      sizeof(status)),
			    "5.0.0");
	assert_string_equal(queue_dsn_status_of_reply("451 4.4.7 expired",
						      status, sizeof(status)),
			    "4.4.7");
	assert_string_equal(
		queue_dsn_status_of_reply("", status, sizeof(status)), "4.0.0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_enqueue_load, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_key_and_cleartext,
						tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_list, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_state, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_tamper, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_bad_envelope, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_threads, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_requests, tmp_setup,
						tmp_teardown),
		cmocka_unit_test(test_dsn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
