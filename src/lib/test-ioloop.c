/* test-ioloop.c - unit tests for ioloop.c: io readiness and pausing, removal
   of ios from inside callbacks, the timer heap (order, repetition, reset),
   signal delivery through signalfd, cross-thread notify and ioloop_stop. */

#include "ioloop.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

struct counter {
	unsigned int calls;
	int fd;
	struct io *io;
	struct io **other;
};

static void make_pipe(int fds[2])
{
	assert_int_equal(pipe(fds), 0);
}

static void close_pipe(int fds[2])
{
	close(fds[0]);
	close(fds[1]);
}

static void count_cb(void *context)
{
	struct counter *c = context;

	c->calls++;
}

static void read_byte_cb(void *context)
{
	struct counter *c = context;
	char ch;

	c->calls++;
	assert_int_equal(read(c->fd, &ch, 1), 1);
}

static void test_io_read(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct counter c = { 0 };
	int fds[2];

	make_pipe(fds);
	c.fd = fds[0];
	c.io = io_add(ioloop, fds[0], IO_READ, read_byte_cb, &c);
	assert_int_equal(io_get_condition(c.io), IO_READ);

	/* Nothing to read: the callback must not run. */
	ioloop_run_once(ioloop, 10);
	assert_int_equal(c.calls, 0);

	assert_int_equal(write(fds[1], "x", 1), 1);
	ioloop_run_once(ioloop, 1000);
	assert_int_equal(c.calls, 1);

	/* Level-triggered: two bytes, two iterations, two calls. */
	assert_int_equal(write(fds[1], "yz", 2), 2);
	ioloop_run_once(ioloop, 1000);
	ioloop_run_once(ioloop, 1000);
	assert_int_equal(c.calls, 3);
	ioloop_run_once(ioloop, 10);
	assert_int_equal(c.calls, 3);

	io_remove(&c.io);
	assert_null(c.io);
	io_remove(&c.io); /* NULL is tolerated */
	close_pipe(fds);
	ioloop_destroy(&ioloop);
	assert_null(ioloop);
}

static void test_io_write(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct counter c = { 0 };
	int fds[2];

	make_pipe(fds);
	c.io = io_add(ioloop, fds[1], IO_WRITE, count_cb, &c);
	ioloop_run_once(ioloop, 1000);
	assert_int_equal(c.calls, 1);

	io_remove(&c.io);
	close_pipe(fds);
	ioloop_destroy(&ioloop);
}

static void test_io_hup_wakes_reader(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct counter c = { 0 };
	int fds[2];
	char ch;

	make_pipe(fds);
	c.io = io_add(ioloop, fds[0], IO_READ, count_cb, &c);
	close(fds[1]);
	ioloop_run_once(ioloop, 1000);
	assert_int_equal(c.calls, 1);
	assert_int_equal(read(fds[0], &ch, 1), 0);

	io_remove(&c.io);
	close(fds[0]);
	ioloop_destroy(&ioloop);
}

static void test_io_pause(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct counter c = { 0 };
	int fds[2];

	make_pipe(fds);
	c.fd = fds[0];
	c.io = io_add(ioloop, fds[0], IO_READ, read_byte_cb, &c);
	assert_int_equal(write(fds[1], "ab", 2), 2);

	io_set_condition(c.io, 0);
	assert_int_equal(io_get_condition(c.io), 0);
	ioloop_run_once(ioloop, 20);
	assert_int_equal(c.calls, 0);

	/* A paused reader is not woken by a hangup either. */
	close(fds[1]);
	ioloop_run_once(ioloop, 20);
	assert_int_equal(c.calls, 0);

	io_set_condition(c.io, IO_READ);
	ioloop_run_once(ioloop, 1000);
	assert_int_equal(c.calls, 1);

	io_remove(&c.io);
	close(fds[0]);
	ioloop_destroy(&ioloop);
}

static void test_io_added_paused(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct counter c = { 0 };
	int fds[2];

	make_pipe(fds);
	c.io = io_add(ioloop, fds[1], 0, count_cb, &c);
	ioloop_run_once(ioloop, 10);
	assert_int_equal(c.calls, 0);
	io_set_condition(c.io, IO_WRITE);
	ioloop_run_once(ioloop, 1000);
	assert_int_equal(c.calls, 1);

	io_remove(&c.io);
	close_pipe(fds);
	ioloop_destroy(&ioloop);
}

static void remove_other_cb(void *context)
{
	struct counter *c = context;

	c->calls++;
	io_remove(c->other);
}

static void test_io_remove_other_same_iteration(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct counter a = { 0 }, b = { 0 };
	int p1[2], p2[2];

	make_pipe(p1);
	make_pipe(p2);
	a.io = io_add(ioloop, p1[0], IO_READ, remove_other_cb, &a);
	b.io = io_add(ioloop, p2[0], IO_READ, remove_other_cb, &b);
	a.other = &b.io;
	b.other = &a.io;
	/* Both become ready in the same epoll_wait(). */
	assert_int_equal(write(p1[1], "x", 1), 1);
	assert_int_equal(write(p2[1], "x", 1), 1);

	ioloop_run_once(ioloop, 1000);
	/* Whichever ran first removed the other before its dispatch. */
	assert_int_equal(a.calls + b.calls, 1);
	if (a.calls == 1) {
		assert_null(b.io);
		assert_non_null(a.io);
		io_remove(&a.io);
	} else {
		assert_null(a.io);
		assert_non_null(b.io);
		io_remove(&b.io);
	}
	close_pipe(p1);
	close_pipe(p2);
	ioloop_destroy(&ioloop);
}

struct readd_ctx {
	struct ioloop *ioloop;
	struct io *io;
	int fd;
	unsigned int first_calls, second_calls;
};

static void readd_second_cb(void *context)
{
	struct readd_ctx *ctx = context;
	char ch;

	ctx->second_calls++;
	assert_int_equal(read(ctx->fd, &ch, 1), 1);
}

static void readd_first_cb(void *context)
{
	struct readd_ctx *ctx = context;

	ctx->first_calls++;
	/* Remove ourselves and register the same fd again. */
	io_remove(&ctx->io);
	ctx->io = io_add(ctx->ioloop, ctx->fd, IO_READ, readd_second_cb, ctx);
}

static void test_io_remove_self_and_readd(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct readd_ctx ctx = { .ioloop = ioloop };
	int fds[2];

	make_pipe(fds);
	ctx.fd = fds[0];
	ctx.io = io_add(ioloop, fds[0], IO_READ, readd_first_cb, &ctx);
	assert_int_equal(write(fds[1], "x", 1), 1);
	ioloop_run_once(ioloop, 1000);
	assert_int_equal(ctx.first_calls, 1);
	assert_int_equal(ctx.second_calls, 0);
	ioloop_run_once(ioloop, 1000);
	assert_int_equal(ctx.first_calls, 1);
	assert_int_equal(ctx.second_calls, 1);

	io_remove(&ctx.io);
	close_pipe(fds);
	ioloop_destroy(&ioloop);
}

struct order_ctx {
	struct ioloop *ioloop;
	int order[8];
	unsigned int count;
	struct timeout *t[3];
};

static void order_record(struct order_ctx *ctx, int id)
{
	assert_true(ctx->count < N_ELEMENTS(ctx->order));
	ctx->order[ctx->count++] = id;
	timeout_remove(&ctx->t[id]);
	if (ctx->count == 3)
		ioloop_stop(ctx->ioloop);
}

static void order_cb0(void *context)
{
	order_record(context, 0);
}

static void order_cb1(void *context)
{
	order_record(context, 1);
}

static void order_cb2(void *context)
{
	order_record(context, 2);
}

static void test_timeout_order(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct order_ctx ctx = { .ioloop = ioloop };
	uint64_t start = ioloop_now_ms(ioloop);

	ctx.t[0] = timeout_add(ioloop, 30, order_cb0, &ctx);
	ctx.t[1] = timeout_add(ioloop, 10, order_cb1, &ctx);
	ctx.t[2] = timeout_add(ioloop, 20, order_cb2, &ctx);
	assert_int_equal(ioloop_run(ioloop), 0);

	assert_int_equal(ctx.count, 3);
	assert_int_equal(ctx.order[0], 1);
	assert_int_equal(ctx.order[1], 2);
	assert_int_equal(ctx.order[2], 0);
	assert_true(ioloop_now_ms(ioloop) - start >= 30);
	ioloop_destroy(&ioloop);
}

struct equal_ctx {
	int order[16];
	unsigned int count;
	struct timeout *t[16];
};

struct equal_item {
	struct equal_ctx *ctx;
	int id;
};

static void equal_cb(void *context)
{
	struct equal_item *item = context;

	item->ctx->order[item->ctx->count++] = item->id;
	timeout_remove(&item->ctx->t[item->id]);
}

static void test_timeout_equal_due_fifo(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct equal_ctx ctx = { 0 };
	struct equal_item items[16];
	unsigned int i;

	/* All due at once (0 ms): they fire in the order they were added,
	   not in whatever order the heap happens to hold them. */
	for (i = 0; i < 16; i++) {
		items[i].ctx = &ctx;
		items[i].id = (int)i;
		ctx.t[i] = timeout_add(ioloop, 0, equal_cb, &items[i]);
	}
	ioloop_run_once(ioloop, 1000);
	assert_int_equal(ctx.count, 16);
	for (i = 0; i < 16; i++)
		assert_int_equal(ctx.order[i], (int)i);
	ioloop_destroy(&ioloop);
}

struct repeat_ctx {
	struct ioloop *ioloop;
	struct timeout *t;
	unsigned int calls;
	uint64_t times[4];
};

static void repeat_cb(void *context)
{
	struct repeat_ctx *ctx = context;

	ctx->times[ctx->calls++] = ioloop_now_ms(ctx->ioloop);
	if (ctx->calls == 4) {
		timeout_remove(&ctx->t);
		ioloop_stop(ctx->ioloop);
	}
}

static void test_timeout_repeats(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct repeat_ctx ctx = { .ioloop = ioloop };
	uint64_t start = ioloop_now_ms(ioloop);
	unsigned int i;

	ctx.t = timeout_add(ioloop, 5, repeat_cb, &ctx);
	assert_int_equal(ioloop_run(ioloop), 0);
	assert_int_equal(ctx.calls, 4);
	assert_null(ctx.t);
	assert_true(ctx.times[0] - start >= 5);
	for (i = 1; i < 4; i++)
		assert_true(ctx.times[i] - ctx.times[i - 1] >= 5);
	ioloop_destroy(&ioloop);
}

struct reset_ctx {
	struct ioloop *ioloop;
	struct timeout *idle, *poke;
	unsigned int pokes;
	uint64_t last_poke_ms, idle_fired_ms;
};

static void reset_idle_cb(void *context)
{
	struct reset_ctx *ctx = context;

	ctx->idle_fired_ms = ioloop_now_ms(ctx->ioloop);
	timeout_remove(&ctx->idle);
	ioloop_stop(ctx->ioloop);
}

static void reset_poke_cb(void *context)
{
	struct reset_ctx *ctx = context;

	/* Activity: push the idle timer out again. */
	ctx->last_poke_ms = ioloop_now_ms(ctx->ioloop);
	timeout_reset(ctx->idle);
	if (++ctx->pokes == 3)
		timeout_remove(&ctx->poke);
}

static void test_timeout_reset(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct reset_ctx ctx = { .ioloop = ioloop };
	uint64_t start = ioloop_now_ms(ioloop);

	ctx.idle = timeout_add(ioloop, 30, reset_idle_cb, &ctx);
	ctx.poke = timeout_add(ioloop, 15, reset_poke_cb, &ctx);
	assert_int_equal(ioloop_run(ioloop), 0);

	/* Without the resets it would have fired at 30 ms; after three
	   pokes 15 ms apart it fires 30 ms after the last one. */
	assert_int_equal(ctx.pokes, 3);
	assert_null(ctx.poke);
	assert_true(ctx.last_poke_ms - start >= 45);
	assert_true(ctx.idle_fired_ms - ctx.last_poke_ms >= 30);
	ioloop_destroy(&ioloop);
}

struct remove_pending_ctx {
	struct timeout *a, *b;
	unsigned int a_calls, b_calls;
};

static void remove_pending_a_cb(void *context)
{
	struct remove_pending_ctx *ctx = context;

	ctx->a_calls++;
	timeout_remove(&ctx->a);
	timeout_remove(&ctx->b);
}

static void remove_pending_b_cb(void *context)
{
	struct remove_pending_ctx *ctx = context;

	ctx->b_calls++;
	timeout_remove(&ctx->b);
}

static void test_timeout_remove_pending(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct remove_pending_ctx ctx = { 0 };

	/* Both due in the same iteration; a removes b before b fires. */
	ctx.a = timeout_add(ioloop, 0, remove_pending_a_cb, &ctx);
	ctx.b = timeout_add(ioloop, 0, remove_pending_b_cb, &ctx);
	ioloop_run_once(ioloop, 1000);
	assert_int_equal(ctx.a_calls, 1);
	assert_int_equal(ctx.b_calls, 0);
	assert_null(ctx.a);
	assert_null(ctx.b);
	ioloop_destroy(&ioloop);
}

static void heap_stress_cb(void *context)
{
	unsigned int *calls = context;

	(*calls)++;
}

static void test_timeout_heap_many(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct timeout *t[200];
	unsigned int i, calls = 0;

	/* Add far-future timers in scrambled order, remove every third from
	   the middle of the heap, then make sure none fire early and the
	   rest can be removed cleanly. */
	for (i = 0; i < N_ELEMENTS(t); i++) {
		t[i] = timeout_add(ioloop, 100000 + (i * 7919) % 1000,
				   heap_stress_cb, &calls);
	}
	for (i = 0; i < N_ELEMENTS(t); i += 3)
		timeout_remove(&t[i]);
	ioloop_run_once(ioloop, 0);
	assert_int_equal(calls, 0);
	for (i = 0; i < N_ELEMENTS(t); i++)
		timeout_remove(&t[i]);
	ioloop_destroy(&ioloop);
}

struct sig_ctx {
	unsigned int calls;
	int last_signo;
};

static void sig_cb(int signo, void *context)
{
	struct sig_ctx *ctx = context;

	ctx->calls++;
	ctx->last_signo = signo;
}

static bool sigusr1_blocked(void)
{
	sigset_t set;

	assert_int_equal(pthread_sigmask(SIG_SETMASK, NULL, &set), 0);
	return sigismember(&set, SIGUSR1) == 1;
}

static void test_signal(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct sig_ctx a = { 0 }, b = { 0 };

	assert_false(sigusr1_blocked());
	ioloop_signal_add(ioloop, SIGUSR1, sig_cb, &a);
	ioloop_signal_add(ioloop, SIGUSR1, sig_cb, &b);
	assert_true(sigusr1_blocked());

	assert_int_equal(raise(SIGUSR1), 0);
	ioloop_run_once(ioloop, 1000);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	assert_int_equal(a.last_signo, SIGUSR1);

	ioloop_signal_remove(ioloop, SIGUSR1, sig_cb, &a);
	assert_true(sigusr1_blocked());
	assert_int_equal(raise(SIGUSR1), 0);
	ioloop_run_once(ioloop, 1000);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 2);

	ioloop_signal_remove(ioloop, SIGUSR1, sig_cb, &b);
	assert_false(sigusr1_blocked());
	ioloop_destroy(&ioloop);
}

struct sig_remove_ctx {
	struct ioloop *ioloop;
	unsigned int calls;
};

static void sig_remove_self_cb(int signo, void *context)
{
	struct sig_remove_ctx *ctx = context;

	ctx->calls++;
	ioloop_signal_remove(ctx->ioloop, signo, sig_remove_self_cb, ctx);
}

static void test_signal_remove_in_callback(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct sig_remove_ctx ctx = { .ioloop = ioloop };

	/* The last handler removes itself: the signalfd is closed while
	   its own io is being dispatched. */
	ioloop_signal_add(ioloop, SIGUSR2, sig_remove_self_cb, &ctx);
	assert_int_equal(raise(SIGUSR2), 0);
	ioloop_run_once(ioloop, 1000);
	assert_int_equal(ctx.calls, 1);
	ioloop_destroy(&ioloop);
}

struct notify_ctx {
	struct ioloop *ioloop;
	struct ioloop_notify *notify;
	pthread_t loop_thread;
	unsigned int calls;
	bool in_loop_thread;
};

static void *notify_thread(void *context)
{
	struct notify_ctx *ctx = context;

	usleep(10000);
	ioloop_notify(ctx->notify);
	return NULL;
}

static void notify_cb(void *context)
{
	struct notify_ctx *ctx = context;

	ctx->calls++;
	ctx->in_loop_thread = pthread_equal(pthread_self(), ctx->loop_thread);
	ioloop_stop(ctx->ioloop);
}

static void fail_timeout_cb(void *context)
{
	fail_msg("timed out waiting for the notify");
}

static void test_notify_thread(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct notify_ctx ctx = { .ioloop = ioloop };
	struct timeout *guard;
	pthread_t thread;

	ctx.loop_thread = pthread_self();
	ctx.notify = ioloop_notify_add(ioloop, notify_cb, &ctx);
	guard = timeout_add(ioloop, 5000, fail_timeout_cb, NULL);
	assert_int_equal(pthread_create(&thread, NULL, notify_thread, &ctx), 0);
	assert_int_equal(ioloop_run(ioloop), 0);
	assert_int_equal(pthread_join(thread, NULL), 0);
	assert_int_equal(ctx.calls, 1);
	assert_true(ctx.in_loop_thread);

	/* Several notifies before the loop runs coalesce into one call. */
	ioloop_notify(ctx.notify);
	ioloop_notify(ctx.notify);
	ioloop_notify(ctx.notify);
	ioloop_run_once(ioloop, 1000);
	assert_int_equal(ctx.calls, 2);
	ioloop_run_once(ioloop, 10);
	assert_int_equal(ctx.calls, 2);

	timeout_remove(&guard);
	ioloop_notify_remove(&ctx.notify);
	assert_null(ctx.notify);
	ioloop_destroy(&ioloop);
}

static void stop_cb(void *context)
{
	ioloop_stop(context);
}

static void test_stop_from_timer(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct timeout *t = timeout_add(ioloop, 1, stop_cb, ioloop);
	uint64_t start = ioloop_now_ms(ioloop);

	assert_int_equal(ioloop_run(ioloop), 0);
	assert_true(ioloop_now_ms(ioloop) - start >= 1);
	/* The loop can be run again after a stop. */
	assert_int_equal(ioloop_run(ioloop), 0);
	timeout_remove(&t);
	ioloop_destroy(&ioloop);
}

static void test_run_once_waits_for_timer(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	unsigned int calls = 0;
	struct timeout *t = timeout_add(ioloop, 20, heap_stress_cb, &calls);
	uint64_t start = ioloop_now_ms(ioloop);

	/* -1 waits until the timer, not forever. */
	ioloop_run_once(ioloop, -1);
	while (calls == 0)
		ioloop_run_once(ioloop, -1);
	assert_int_equal(calls, 1);
	assert_true(ioloop_now_ms(ioloop) - start >= 20);
	timeout_remove(&t);
	ioloop_destroy(&ioloop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_io_read),
		cmocka_unit_test(test_io_write),
		cmocka_unit_test(test_io_hup_wakes_reader),
		cmocka_unit_test(test_io_pause),
		cmocka_unit_test(test_io_added_paused),
		cmocka_unit_test(test_io_remove_other_same_iteration),
		cmocka_unit_test(test_io_remove_self_and_readd),
		cmocka_unit_test(test_timeout_order),
		cmocka_unit_test(test_timeout_equal_due_fifo),
		cmocka_unit_test(test_timeout_repeats),
		cmocka_unit_test(test_timeout_reset),
		cmocka_unit_test(test_timeout_remove_pending),
		cmocka_unit_test(test_timeout_heap_many),
		cmocka_unit_test(test_signal),
		cmocka_unit_test(test_signal_remove_in_callback),
		cmocka_unit_test(test_notify_thread),
		cmocka_unit_test(test_stop_from_timer),
		cmocka_unit_test(test_run_once_waits_for_timer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
