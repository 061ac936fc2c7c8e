/* test-front-delivery.c - unit tests for front-delivery.c against a fake
   vault on a socketpair and real spool files in a mkdtemp() data
   directory: a resolve reply with locals and remotes reaches the callback
   (never inside the call), a question waits for a vault that comes up
   within the wait, an unreachable vault and a lost connection give
   TEMPFAIL, cancel drops the callback, malformed or unknown replies are
   refused (every truncation of a valid reply, corrupted fields), the
   sender question; commits: two accounts each get a sealed
   record whose message is Return-Path + the message (RFC 5321 4.4), one
   copy per account even for two addresses of it; GTUBE lands with mailbox
   hint Junk, SPOOL_FLAG_JUNK and X-Spam after the Received field; EICAR is
   rejected with 5.7.1 and nothing is written; 32 concurrent commits to one
   account cost far fewer than 32 fsyncs (counted through --wrap=fsync) and
   give 32 records; destroy while committing stores but calls nobody; a
   commit without recipients is OK; a remote recipient goes to the queue
   (or is refused with TEMPFAIL when built without lib-queue). */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "ioloop.h"
#include "ipc.h"
#include "pool.h"
#include "spool.h"
#include "front-private.h"
#include "front-delivery.h"

#include <dirent.h>
#include <ftw.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GTUBE \
	"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
#define EICAR \
	"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
#define RECEIVED                                                \
	"Received: from client.example (127.0.0.1)\r\n"         \
	"\tby mx.example.org with ESMTP id 1; Tue, 1 Dec 2026 " \
	"21:00:00 +0000\r\n"

int __real_fsync(int fd);
int __wrap_fsync(int fd);
static atomic_uint fsync_calls;
int __wrap_fsync(int fd)
{
	atomic_fetch_add(&fsync_calls, 1);
	return __real_fsync(fd);
}

struct t {
	char dir[64];
	struct ioloop *ioloop;
	struct ipc_conn *front_end, *vault_end;
	bool vault_down;
	uint8_t pk[3][32], sk[3][32];
	/* What the fake vault answers. */
	unsigned int rcpt_requests;
	uint64_t last_size_hint;
	bool answer_garbage;
	bool answer_none;
	uint32_t last_id;
};

static struct t *t_global;

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	return remove(path);
}

static int front_handler(struct ipc_conn *conn, const struct ipc_frame *frame,
			 void *context)
{
	return front_delivery_vault_reply(frame);
}

static void front_closed(struct ipc_conn *conn, const char *reason,
			 void *context)
{
	struct t *t = context;

	ipc_conn_destroy(&t->front_end);
	front_delivery_vault_lost();
}

/* The fake vault: "unknown@" is unknown, "list@" has accounts 1 and 2 and
   a remote, anything else is account 1. */
static int vault_handler(struct ipc_conn *conn, const struct ipc_frame *frame,
			 void *context)
{
	struct t *t = context;
	struct ipc_reader r;
	struct buf out = BUF_INIT;
	pool_t pool = pool_create("fake vault", 256);
	size_t off;

	ipc_reader_init(&r, frame);
	if (frame->type == IPC_VAULT_RCPT) {
		const char *address = ipc_get_str(&r, pool);
		t->last_size_hint = ipc_get_u64(&r);
		assert_int_equal(ipc_end(&r), 0);
		t->rcpt_requests++;
		t->last_id = frame->id;
		if (t->answer_none) {
			pool_unref(&pool);
			return 0;
		}
		off = ipc_msg_begin(&out, IPC_FRONT_RCPT_REPLY, frame->id);
		if (t->answer_garbage) {
			ipc_put_u32(&out, 99);
		} else if (strncmp(address, "unknown@", 8) == 0) {
			ipc_put_u32(&out, IPC_RCPT_UNKNOWN);
			ipc_put_u32(&out, 0);
			ipc_put_str(&out, address);
			ipc_put_u32(&out, 0);
			ipc_put_u32(&out, 0);
		} else if (strncasecmp(address, "list@", 5) == 0) {
			ipc_put_u32(&out, IPC_RCPT_OK);
			ipc_put_u32(&out, 0);
			ipc_put_str(&out, "list@example.org");
			ipc_put_u32(&out, 2);
			ipc_put_u64(&out, 1);
			ipc_put_bytes(&out, t->pk[1], 32);
			ipc_put_u64(&out, 2);
			ipc_put_bytes(&out, t->pk[2], 32);
			ipc_put_u32(&out, 1);
			ipc_put_str(&out, "far@remote.example");
		} else {
			ipc_put_u32(&out, IPC_RCPT_OK);
			ipc_put_u32(&out, 0);
			ipc_put_str(&out, address);
			ipc_put_u32(&out, 1);
			ipc_put_u64(&out, 1);
			ipc_put_bytes(&out, t->pk[1], 32);
			ipc_put_u32(&out, 0);
		}
	} else {
		assert_int_equal(frame->type, IPC_VAULT_SENDER);
		uint64_t account = ipc_get_u64(&r);
		const char *address = ipc_get_str(&r, pool);
		assert_int_equal(ipc_end(&r), 0);
		off = ipc_msg_begin(&out, IPC_FRONT_SENDER_REPLY, frame->id);
		ipc_put_u32(&out, account == 1 && strcmp(address,
							 "a@example.org") == 0
					  ? 1
					  : 0);
	}
	ipc_msg_finish(&out, off);
	ipc_conn_send(conn, &out);
	buf_free(&out);
	pool_unref(&pool);
	return 0;
}

static void vault_closed(struct ipc_conn *conn, const char *reason,
			 void *context)
{
	struct t *t = context;

	ipc_conn_destroy(&t->vault_end);
}

static struct ipc_conn *vault_get(void)
{
	struct t *t = t_global;
	int fds[2];

	if (t->vault_down)
		return NULL;
	if (t->front_end != NULL)
		return t->front_end;
	assert_int_equal(
		socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
	t->front_end = ipc_conn_create(t->ioloop, fds[0], front_handler,
				       front_closed, t);
	t->vault_end = ipc_conn_create(t->ioloop, fds[1], vault_handler,
				       vault_closed, t);
	return t->front_end;
}

static int setup(void **state)
{
	struct t *t = i_new(struct t, 1);
	char path[128];

	if (sodium_init() < 0)
		return -1;
	snprintf(t->dir, sizeof(t->dir), "/tmp/test-front-delivery.XXXXXX");
	if (mkdtemp(t->dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/accounts", t->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	for (unsigned int i = 1; i <= 2; i++) {
		snprintf(path, sizeof(path), "%s/accounts/%u", t->dir, i);
		assert_int_equal(mkdir(path, 0700), 0);
		crypto_box_keypair(t->pk[i], t->sk[i]);
	}
	t->ioloop = ioloop_create();
	t_global = t;
	const struct front_delivery_env env = {
		.ioloop = t->ioloop,
		.data_dir = t->dir,
		.vault_get = vault_get,
		.vault_wait_msecs = 300,
	};
	front_delivery_init(&env);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;

	front_delivery_deinit();
	if (t->front_end != NULL)
		ipc_conn_destroy(&t->front_end);
	if (t->vault_end != NULL)
		ipc_conn_destroy(&t->vault_end);
	ioloop_destroy(&t->ioloop);
	(void)nftw(t->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	i_free(t);
	return 0;
}

/* Runs the loop until *flag or 10 s. */
static void run_until(struct t *t, const bool *flag)
{
	for (unsigned int i = 0; i < 1000 && !*flag; i++)
		ioloop_run_once(t->ioloop, 10);
	assert_true(*flag);
}

struct rcpt_ctx {
	bool called;
	struct front_rcpt rcpt; /* strings copied below */
	char address[128];
	uint64_t ids[4];
	char remote[4][64];
};

static void rcpt_cb(void *context, const struct front_rcpt *rcpt)
{
	struct rcpt_ctx *ctx = context;

	assert_false(ctx->called);
	ctx->called = true;
	ctx->rcpt = *rcpt;
	snprintf(ctx->address, sizeof(ctx->address), "%s", rcpt->address);
	for (unsigned int i = 0; i < rcpt->local_count && i < 4; i++)
		ctx->ids[i] = rcpt->locals[i].account_id;
	for (unsigned int i = 0; i < rcpt->remote_count && i < 4; i++)
		snprintf(ctx->remote[i], sizeof(ctx->remote[i]), "%s",
			 rcpt->remote[i]);
	ctx->rcpt.locals = NULL;
	ctx->rcpt.remote = NULL;
}

static void test_resolve(void **state)
{
	struct t *t = *state;
	struct rcpt_ctx ctx, unk;

	memset(&ctx, 0, sizeof(ctx));
	memset(&unk, 0, sizeof(unk));
	front_delivery_resolve("List@Example.org", 12345, rcpt_cb, &ctx);
	front_delivery_resolve("unknown@example.org", 0, rcpt_cb, &unk);
	assert_false(ctx.called);
	run_until(t, &ctx.called);
	run_until(t, &unk.called);
	assert_int_equal(t->rcpt_requests, 2);
	assert_int_equal(ctx.rcpt.result, FRONT_RCPT_OK);
	assert_string_equal(ctx.address, "list@example.org");
	assert_int_equal(ctx.rcpt.local_count, 2);
	assert_int_equal(ctx.ids[0], 1);
	assert_int_equal(ctx.ids[1], 2);
	assert_int_equal(ctx.rcpt.remote_count, 1);
	assert_string_equal(ctx.remote[0], "far@remote.example");
	assert_int_equal(unk.rcpt.result, FRONT_RCPT_UNKNOWN);
	assert_int_equal(unk.rcpt.local_count, 0);
	assert_string_equal(unk.address, "unknown@example.org");
}

static void test_resolve_tempfail(void **state)
{
	struct t *t = *state;
	struct rcpt_ctx ctx, ctx2, cancelled;

	/* No vault: TEMPFAIL, from the loop, after the wait. */
	t->vault_down = true;
	memset(&ctx, 0, sizeof(ctx));
	uint64_t start = ioloop_now_ms(t->ioloop);
	front_delivery_resolve("a@example.org", 0, rcpt_cb, &ctx);
	assert_false(ctx.called);
	run_until(t, &ctx.called);
	assert_true(ioloop_now_ms(t->ioloop) - start >= 300);
	assert_int_equal(ctx.rcpt.result, FRONT_RCPT_TEMPFAIL);
	assert_string_equal(ctx.address, "a@example.org");

	/* The vault comes (back) within the wait: answered normally. */
	memset(&ctx, 0, sizeof(ctx));
	front_delivery_resolve("a@example.org", 0, rcpt_cb, &ctx);
	for (unsigned int i = 0; i < 10; i++)
		ioloop_run_once(t->ioloop, 10);
	assert_false(ctx.called);
	t->vault_down = false;
	run_until(t, &ctx.called);
	assert_int_equal(ctx.rcpt.result, FRONT_RCPT_OK);

	/* The vault goes away with questions in flight. */
	memset(&ctx2, 0, sizeof(ctx2));
	memset(&cancelled, 0, sizeof(cancelled));
	front_delivery_resolve("a@example.org", 0, rcpt_cb, &ctx2);
	front_delivery_resolve("b@example.org", 0, rcpt_cb, &cancelled);
	front_delivery_cancel(&cancelled);
	ipc_conn_destroy(&t->vault_end);
	run_until(t, &ctx2.called);
	assert_int_equal(ctx2.rcpt.result, FRONT_RCPT_TEMPFAIL);
	assert_false(cancelled.called);
	assert_null(t->front_end);
}

static void test_cancel_and_garbage(void **state)
{
	struct t *t = *state;
	struct rcpt_ctx ctx, after;

	memset(&ctx, 0, sizeof(ctx));
	front_delivery_resolve("a@example.org", 0, rcpt_cb, &ctx);
	front_delivery_cancel(&ctx);
	for (unsigned int i = 0; i < 20; i++)
		ioloop_run_once(t->ioloop, 10);
	assert_int_equal(t->rcpt_requests, 1);
	assert_false(ctx.called);

	/* A reply nobody asked for is refused. */
	struct buf out = BUF_INIT;
	struct ipc_frame frame;
	size_t consumed;
	const char *error;
	size_t off = ipc_msg_begin(&out, IPC_FRONT_SENDER_REPLY, 777777);
	ipc_put_u32(&out, 1);
	ipc_msg_finish(&out, off);
	assert_int_equal(
		ipc_frame_parse(buf_span(&out), &frame, &consumed, &error), 1);
	assert_int_equal(front_delivery_vault_reply(&frame), -1);
	buf_free(&out);

	/* A malformed answer closes the connection: the question fails. */
	t->answer_garbage = true;
	memset(&after, 0, sizeof(after));
	front_delivery_resolve("a@example.org", 0, rcpt_cb, &after);
	run_until(t, &after.called);
	assert_int_equal(after.rcpt.result, FRONT_RCPT_TEMPFAIL);
}

/* Every truncation of a valid reply, and a few corrupted fields, are
   refused without calling anybody; the whole reply then works. */
static void test_truncated_replies(void **state)
{
	struct t *t = *state;
	struct rcpt_ctx ctx;
	struct buf full = BUF_INIT, cut = BUF_INIT;
	struct ipc_frame frame;
	const char *error;
	size_t consumed, off, payload;

	t->answer_none = true;
	memset(&ctx, 0, sizeof(ctx));
	front_delivery_resolve("list@example.org", 10, rcpt_cb, &ctx);
	for (unsigned int i = 0; i < 100 && t->last_id == 0; i++)
		ioloop_run_once(t->ioloop, 10);
	assert_int_not_equal(t->last_id, 0);

	off = ipc_msg_begin(&full, IPC_FRONT_RCPT_REPLY, t->last_id);
	ipc_put_u32(&full, IPC_RCPT_OK);
	ipc_put_u32(&full, 0);
	ipc_put_str(&full, "list@example.org");
	ipc_put_u32(&full, 1);
	ipc_put_u64(&full, 1);
	ipc_put_bytes(&full, t->pk[1], 32);
	ipc_put_u32(&full, 1);
	ipc_put_str(&full, "far@remote.example");
	ipc_msg_finish(&full, off);
	payload = full.used - IPC_HEADER_SIZE;
	for (size_t n = 0; n < payload; n++) {
		buf_reset(&cut);
		off = ipc_msg_begin(&cut, IPC_FRONT_RCPT_REPLY, t->last_id);
		buf_append(&cut, full.data + IPC_HEADER_SIZE, n);
		ipc_msg_finish(&cut, off);
		assert_int_equal(ipc_frame_parse(buf_span(&cut), &frame,
						 &consumed, &error),
				 1);
		assert_int_equal(front_delivery_vault_reply(&frame), -1);
	}
	/* Corrupted: a result out of range, a short key, OK without
	   targets. */
	static const struct {
		size_t offset;
		uint8_t value;
	} corrupt[] = {
		{ 0, 9 }, /* result */
		{ 4, 2 }, /* quota_permanent */
		{ 4 + 4 + 4 + 16 + 4 + 8, 31 }, /* key length */
		{ 4 + 4 + 4 + 16, 0 }, /* 0 locals: then trailing bytes */
	};
	for (unsigned int i = 0; i < N_ELEMENTS(corrupt); i++) {
		buf_reset(&cut);
		buf_append(&cut, full.data, full.used);
		cut.data[IPC_HEADER_SIZE + corrupt[i].offset] =
			corrupt[i].value;
		assert_int_equal(ipc_frame_parse(buf_span(&cut), &frame,
						 &consumed, &error),
				 1);
		assert_int_equal(front_delivery_vault_reply(&frame), -1);
	}
	assert_false(ctx.called);
	assert_int_equal(
		ipc_frame_parse(buf_span(&full), &frame, &consumed, &error), 1);
	assert_int_equal(front_delivery_vault_reply(&frame), 0);
	assert_true(ctx.called);
	assert_int_equal(ctx.rcpt.result, FRONT_RCPT_OK);
	assert_string_equal(ctx.remote[0], "far@remote.example");
	/* Answered once: the same reply again is unknown. */
	assert_int_equal(front_delivery_vault_reply(&frame), -1);
	buf_free(&full);
	buf_free(&cut);
}

struct sender_ctx {
	bool called, owned, tempfail;
};

static void sender_cb(void *context, bool owned, bool tempfail)
{
	struct sender_ctx *ctx = context;

	ctx->called = true;
	ctx->owned = owned;
	ctx->tempfail = tempfail;
}

static void test_sender(void **state)
{
	struct t *t = *state;
	struct sender_ctx yes, no, down;

	memset(&yes, 0, sizeof(yes));
	memset(&no, 0, sizeof(no));
	memset(&down, 0, sizeof(down));
	front_delivery_sender_owned(1, "a@example.org", sender_cb, &yes);
	front_delivery_sender_owned(2, "a@example.org", sender_cb, &no);
	assert_false(yes.called);
	run_until(t, &yes.called);
	run_until(t, &no.called);
	assert_true(yes.owned);
	assert_false(yes.tempfail);
	assert_false(no.owned);
	assert_false(no.tempfail);
	t->vault_down = true;
	ipc_conn_destroy(&t->vault_end);
	for (unsigned int i = 0; i < 5; i++)
		ioloop_run_once(t->ioloop, 10);
	front_delivery_sender_owned(1, "a@example.org", sender_cb, &down);
	run_until(t, &down.called);
	assert_false(down.owned);
	assert_true(down.tempfail);
}

/* ---- commits ---- */

struct commit_ctx {
	bool called;
	enum front_commit_result result;
	char reason[128];
};

static void commit_cb(void *context, enum front_commit_result result,
		      const char *reason)
{
	struct commit_ctx *ctx = context;

	assert_false(ctx->called);
	ctx->called = true;
	ctx->result = result;
	snprintf(ctx->reason, sizeof(ctx->reason), "%s",
		 reason == NULL ? "" : reason);
}

static struct front_rcpt_target target(struct t *t, unsigned int account)
{
	struct front_rcpt_target tg;

	tg.account_id = account;
	memcpy(tg.public_key, t->pk[account], 32);
	return tg;
}

/* Commits msg from sender to one local account and waits for the result
   (reason_r, if not NULL, gets the reason: 128 bytes). */
static enum front_commit_result commit_one(struct t *t, const char *sender,
					   unsigned int account,
					   const char *rcpt, const char *msg,
					   char *reason_r)
{
	struct front_rcpt_target tg = target(t, account);
	struct front_delivery *d;
	struct commit_ctx ctx;

	memset(&ctx, 0, sizeof(ctx));
	d = front_delivery_create(sender, "127.0.0.1", false, 0);
	front_delivery_add_local(d, rcpt, &tg);
	front_delivery_commit(d, (const uint8_t *)msg, strlen(msg), commit_cb,
			      &ctx);
	assert_false(ctx.called);
	run_until(t, &ctx.called);
	front_delivery_destroy(&d);
	assert_null(d);
	if (reason_r != NULL)
		memcpy(reason_r, ctx.reason, sizeof(ctx.reason));
	return ctx.result;
}

struct read_record {
	char sender[64], rcpt[64], mailbox[16];
	uint32_t flags;
	char *message; /* i_malloc'ed */
};

/* Takes account's spool and reads up to max records; returns how many. */
static unsigned int read_spool(struct t *t, unsigned int account,
			       struct read_record *recs, unsigned int max)
{
	char dir[128];
	const char *taken, *error;
	pool_t pool = pool_create("read", 256);
	struct spool_reader *reader;
	struct spool_record rec;
	unsigned int n = 0;
	int ret;

	snprintf(dir, sizeof(dir), "%s/accounts/%u", t->dir, account);
	ret = spool_take(dir, pool, &taken, &error);
	assert_true(ret >= 0);
	if (ret == 0) {
		pool_unref(&pool);
		return 0;
	}
	reader = spool_reader_open(taken, t->pk[account], t->sk[account],
				   &error);
	assert_non_null(reader);
	while (spool_reader_next(reader, &rec, &error) == 1) {
		assert_true(n < max);
		snprintf(recs[n].sender, sizeof(recs[n].sender), "%s",
			 rec.sender);
		snprintf(recs[n].rcpt, sizeof(recs[n].rcpt), "%s",
			 rec.recipient);
		snprintf(recs[n].mailbox, sizeof(recs[n].mailbox), "%s",
			 rec.mailbox);
		recs[n].flags = rec.flags;
		recs[n].message = i_strndup(rec.message, rec.message_len);
		n++;
	}
	assert_int_equal(spool_reader_damaged(reader), 0);
	spool_reader_close(&reader);
	assert_int_equal(spool_done(taken, &error), 0);
	pool_unref(&pool);
	return n;
}

static void free_records(struct read_record *recs, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		i_free(recs[i].message);
}

static void test_commit_locals(void **state)
{
	struct t *t = *state;
	const char msg[] = RECEIVED "From: a@example.org\r\n"
				    "Subject: hi\r\n\r\nbody\r\n";
	struct front_rcpt_target t1 = target(t, 1), t2 = target(t, 2);
	struct commit_ctx ctx;
	struct read_record recs[4];
	struct front_delivery *d;

	memset(&ctx, 0, sizeof(ctx));
	d = front_delivery_create("a@example.org", "127.0.0.1", false, 0);
	front_delivery_add_local(d, "u1@example.org", &t1);
	front_delivery_add_local(d, "u1+tag@example.org", &t1); /* ignored */
	front_delivery_add_local(d, "u2@example.org", &t2);
	front_delivery_commit(d, (const uint8_t *)msg, strlen(msg), commit_cb,
			      &ctx);
	assert_false(ctx.called);
	run_until(t, &ctx.called);
	assert_int_equal(ctx.result, FRONT_COMMIT_OK);
	front_delivery_destroy(&d);
	assert_null(d);

	for (unsigned int a = 1; a <= 2; a++) {
		assert_int_equal(read_spool(t, a, recs, 4), 1);
		assert_string_equal(recs[0].sender, "a@example.org");
		assert_string_equal(recs[0].rcpt, a == 1 ? "u1@example.org"
							 : "u2@example.org");
		assert_string_equal(recs[0].mailbox, "");
		assert_int_equal(recs[0].flags, 0);
		/* RFC 5321 4.4: Return-Path on top, then the bytes as
		   sent. */
		assert_string_equal(recs[0].message,
				    "Return-Path: <a@example.org>\r\n" RECEIVED
				    "From: a@example.org\r\n"
				    "Subject: hi\r\n\r\nbody\r\n");
		free_records(recs, 1);
	}

	/* The null reverse-path. */
	assert_int_equal(commit_one(t, "", 1, "u1@example.org", msg, NULL),
			 FRONT_COMMIT_OK);
	assert_int_equal(read_spool(t, 1, recs, 4), 1);
	assert_string_equal(recs[0].sender, "");
	assert_true(strncmp(recs[0].message,
			    "Return-Path: <>\r\nReceived:", 26) == 0);
	free_records(recs, 1);
}

static void test_commit_gtube(void **state)
{
	struct t *t = *state;
	const char msg[] = RECEIVED "Subject: spam\r\n\r\n" GTUBE "\r\n";
	struct read_record recs[2];

	assert_int_equal(
		commit_one(t, "s@spam.example", 1, "u1@example.org", msg, NULL),
		FRONT_COMMIT_OK);
	assert_int_equal(read_spool(t, 1, recs, 2), 1);
	assert_string_equal(recs[0].mailbox, "Junk");
	assert_int_equal(recs[0].flags, SPOOL_FLAG_JUNK);
	/* The verdict header after the Received trace field (RFC 5322
	   3.6.7: Return-Path and Received stay one trace block). */
	assert_string_equal(recs[0].message,
			    "Return-Path: <s@spam.example>\r\n" RECEIVED
			    "X-Spam: yes\r\n"
			    "Subject: spam\r\n\r\n" GTUBE "\r\n");
	free_records(recs, 1);

	/* Without a Received field on top: right after Return-Path. */
	assert_int_equal(commit_one(t, "s@spam.example", 1, "u1@example.org",
				    "Subject: spam\r\n\r\n" GTUBE "\r\n", NULL),
			 FRONT_COMMIT_OK);
	assert_int_equal(read_spool(t, 1, recs, 2), 1);
	assert_string_equal(recs[0].message,
			    "Return-Path: <s@spam.example>\r\n"
			    "X-Spam: yes\r\n"
			    "Subject: spam\r\n\r\n" GTUBE "\r\n");
	free_records(recs, 1);
}

static void test_commit_eicar(void **state)
{
	struct t *t = *state;
	const char msg[] = RECEIVED "Subject: virus\r\n\r\n" EICAR "\r\n";
	char path[128], reason[128];

	assert_int_equal(commit_one(t, "s@virus.example", 1, "u1@example.org",
				    msg, reason),
			 FRONT_COMMIT_REJECTED);
	assert_string_equal(reason, "5.7.1 message contains a virus "
				    "(EICAR test signature)");
	snprintf(path, sizeof(path), "%s/accounts/1/spool", t->dir);
	assert_int_equal(access(path, F_OK), -1);
}

#define GROUP 32

static void test_group_commit(void **state)
{
	struct t *t = *state;
	struct front_rcpt_target t1 = target(t, 1);
	struct front_delivery *d[GROUP];
	struct commit_ctx ctx[GROUP];
	struct read_record recs[GROUP + 1];
	char *msgs[GROUP];
	bool seen[GROUP];
	unsigned int fsyncs;
	struct timespec start, end;

	/* The spool exists: what is counted is the batch fsyncs. */
	assert_int_equal(commit_one(t, "x@example.org", 1, "u1@example.org",
				    "\r\nx", NULL),
			 FRONT_COMMIT_OK);

	atomic_store(&fsync_calls, 0);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (unsigned int i = 0; i < GROUP; i++) {
		memset(&ctx[i], 0, sizeof(ctx[i]));
		msgs[i] = i_strdup_printf(RECEIVED "Subject: %u\r\n\r\n"
						   "message %u\r\n",
					  i, i);
		d[i] = front_delivery_create("x@example.org", "127.0.0.1",
					     false, 0);
		front_delivery_add_local(d[i], "u1@example.org", &t1);
		front_delivery_commit(d[i], (const uint8_t *)msgs[i],
				      strlen(msgs[i]), commit_cb, &ctx[i]);
		/* The caller's buffer may go at once (it is copied). */
		i_free(msgs[i]);
	}
	for (unsigned int i = 0; i < GROUP; i++) {
		run_until(t, &ctx[i].called);
		assert_int_equal(ctx[i].result, FRONT_COMMIT_OK);
		front_delivery_destroy(&d[i]);
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	fsyncs = atomic_load(&fsync_calls);
	print_message("# %u concurrent commits to one account: %u fsyncs, "
		      "%.1f ms\n",
		      GROUP, fsyncs,
		      (double)(end.tv_sec - start.tv_sec) * 1e3 +
			      (double)(end.tv_nsec - start.tv_nsec) / 1e6);
	assert_true(fsyncs >= 1);
	assert_true(fsyncs <= GROUP / 4);

	assert_int_equal(read_spool(t, 1, recs, GROUP + 1), GROUP + 1);
	memset(seen, 0, sizeof(seen));
	for (unsigned int i = 1; i <= GROUP; i++) {
		unsigned int n;
		const char *subj = strstr(recs[i].message, "Subject: ");

		assert_non_null(subj);
		n = (unsigned int)atoi(subj + 9);
		assert_true(n < GROUP);
		assert_false(seen[n]);
		seen[n] = true;
	}
	free_records(recs, GROUP + 1);
}

static void test_destroy_while_committing(void **state)
{
	struct t *t = *state;
	struct front_rcpt_target t2 = target(t, 2);
	const char msg[] = RECEIVED "\r\nbody\r\n";
	struct commit_ctx ctx, marker;
	struct read_record recs[2];
	struct front_delivery *d, *d2;

	memset(&ctx, 0, sizeof(ctx));
	memset(&marker, 0, sizeof(marker));
	d = front_delivery_create("x@example.org", "127.0.0.1", false, 0);
	front_delivery_add_local(d, "u2@example.org", &t2);
	front_delivery_commit(d, (const uint8_t *)msg, strlen(msg), commit_cb,
			      &ctx);
	front_delivery_destroy(&d);
	/* A second commit after it: when it is done, the first is too. */
	d2 = front_delivery_create("x@example.org", "127.0.0.1", false, 0);
	front_delivery_add_local(d2, "u2@example.org", &t2);
	front_delivery_commit(d2, (const uint8_t *)msg, strlen(msg), commit_cb,
			      &marker);
	run_until(t, &marker.called);
	for (unsigned int i = 0; i < 10; i++)
		ioloop_run_once(t->ioloop, 10);
	assert_false(ctx.called);
	front_delivery_destroy(&d2);
	assert_int_equal(read_spool(t, 2, recs, 2), 2);
	free_records(recs, 2);
}

static void test_commit_nothing_and_remote(void **state)
{
	struct t *t = *state;
	struct commit_ctx ctx;
	struct front_delivery *d;
	const char msg[] = RECEIVED "\r\nbody\r\n";

	memset(&ctx, 0, sizeof(ctx));
	d = front_delivery_create("x@example.org", "127.0.0.1", false, 0);
	front_delivery_commit(d, (const uint8_t *)msg, strlen(msg), commit_cb,
			      &ctx);
	assert_false(ctx.called);
	run_until(t, &ctx.called);
	assert_int_equal(ctx.result, FRONT_COMMIT_OK);
	front_delivery_destroy(&d);

	memset(&ctx, 0, sizeof(ctx));
	d = front_delivery_create("x@example.org", "127.0.0.1", true, 1);
	front_delivery_add_remote(d, "far@remote.example", NULL, 0);
	front_delivery_set_dsn(d, true, "env-1");
	front_delivery_commit(d, (const uint8_t *)msg, strlen(msg), commit_cb,
			      &ctx);
	run_until(t, &ctx.called);
#ifdef FRONT_DELIVERY_QUEUE
	assert_int_equal(ctx.result, FRONT_COMMIT_OK);
	/* One message file in DATA/queue. */
	char qdir[128];
	unsigned int files = 0;
	struct dirent *de;
	DIR *dp;
	snprintf(qdir, sizeof(qdir), "%s/queue", t->dir);
	dp = opendir(qdir);
	assert_non_null(dp);
	while ((de = readdir(dp)) != NULL) {
		size_t len = strlen(de->d_name);
		if (len > 4 && strcmp(de->d_name + len - 4, ".msg") == 0)
			files++;
	}
	closedir(dp);
	assert_int_equal(files, 1);
#else
	/* Without the queue a remote recipient is never acknowledged. */
	assert_int_equal(ctx.result, FRONT_COMMIT_TEMPFAIL);
#endif
	front_delivery_destroy(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_resolve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_tempfail, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cancel_and_garbage, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_truncated_replies, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sender, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_locals, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_commit_gtube, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_commit_eicar, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_destroy_while_committing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_nothing_and_remote,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
