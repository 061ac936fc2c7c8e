/* test-worker.c - unit tests for worker.c: jobs complete with done() in the
   loop thread, the thread count caps concurrency, FIFO order with one
   thread, pending counts, and destroy draining queued jobs (including jobs
   submitted from done()). */

#include "worker.h"
#include "ioloop.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define MANY_JOBS 200

struct many_ctx {
	struct ioloop *ioloop;
	pthread_t loop_thread;
	atomic_uint work_calls;
	atomic_uint work_in_loop_thread;
	unsigned int done_calls;
	unsigned int done_outside_loop_thread;
};

struct many_job {
	struct many_ctx *ctx;
	unsigned int input, output;
};

static void many_work(void *context)
{
	struct many_job *job = context;

	if (pthread_equal(pthread_self(), job->ctx->loop_thread))
		atomic_fetch_add(&job->ctx->work_in_loop_thread, 1);
	job->output = job->input * 2 + 1;
	atomic_fetch_add(&job->ctx->work_calls, 1);
}

static void many_done(void *context)
{
	struct many_job *job = context;
	struct many_ctx *ctx = job->ctx;

	assert_int_equal(job->output, job->input * 2 + 1);
	if (!pthread_equal(pthread_self(), ctx->loop_thread))
		ctx->done_outside_loop_thread++;
	if (++ctx->done_calls == MANY_JOBS)
		ioloop_stop(ctx->ioloop);
}

static void fail_timeout_cb(void *context)
{
	fail_msg("timed out");
}

static void test_many_jobs(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct worker_pool *pool = worker_pool_create(ioloop, 4, "test-many");
	struct many_ctx ctx = { .ioloop = ioloop };
	struct many_job *jobs = i_new(struct many_job, MANY_JOBS);
	struct timeout *guard =
		timeout_add(ioloop, 10000, fail_timeout_cb, NULL);
	unsigned int i;

	ctx.loop_thread = pthread_self();
	for (i = 0; i < MANY_JOBS; i++) {
		jobs[i].ctx = &ctx;
		jobs[i].input = i;
		worker_pool_submit(pool, many_work, many_done, &jobs[i]);
	}
	assert_true(worker_pool_pending(pool) > 0);
	assert_int_equal(ioloop_run(ioloop), 0);

	assert_int_equal(ctx.done_calls, MANY_JOBS);
	assert_int_equal(atomic_load(&ctx.work_calls), MANY_JOBS);
	assert_int_equal(atomic_load(&ctx.work_in_loop_thread), 0);
	assert_int_equal(ctx.done_outside_loop_thread, 0);
	assert_int_equal(worker_pool_pending(pool), 0);

	timeout_remove(&guard);
	worker_pool_destroy(&pool);
	assert_null(pool);
	i_free(jobs);
	ioloop_destroy(&ioloop);
}

struct cap_ctx {
	struct ioloop *ioloop;
	atomic_int running;
	atomic_int max_running;
	unsigned int done_calls, total;
};

static void cap_work(void *context)
{
	struct cap_ctx *ctx = context;
	int now = atomic_fetch_add(&ctx->running, 1) + 1;
	int max = atomic_load(&ctx->max_running);

	while (now > max &&
	       !atomic_compare_exchange_weak(&ctx->max_running, &max, now))
		;
	usleep(2000);
	atomic_fetch_sub(&ctx->running, 1);
}

static void cap_done(void *context)
{
	struct cap_ctx *ctx = context;

	if (++ctx->done_calls == ctx->total)
		ioloop_stop(ctx->ioloop);
}

static void test_thread_cap(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct worker_pool *pool = worker_pool_create(ioloop, 2, "test-cap");
	struct cap_ctx ctx = { .ioloop = ioloop, .total = 20 };
	struct timeout *guard =
		timeout_add(ioloop, 10000, fail_timeout_cb, NULL);
	unsigned int i;

	for (i = 0; i < ctx.total; i++)
		worker_pool_submit(pool, cap_work, cap_done, &ctx);
	assert_int_equal(ioloop_run(ioloop), 0);

	assert_int_equal(ctx.done_calls, ctx.total);
	assert_true(atomic_load(&ctx.max_running) <= 2);
	assert_true(atomic_load(&ctx.max_running) >= 1);

	timeout_remove(&guard);
	worker_pool_destroy(&pool);
	ioloop_destroy(&ioloop);
}

struct fifo_ctx {
	struct ioloop *ioloop;
	unsigned int order[32];
	unsigned int count;
};

struct fifo_job {
	struct fifo_ctx *ctx;
	unsigned int id;
};

static void noop_work(void *context)
{
}

static void fifo_done(void *context)
{
	struct fifo_job *job = context;
	struct fifo_ctx *ctx = job->ctx;

	ctx->order[ctx->count++] = job->id;
	if (ctx->count == N_ELEMENTS(ctx->order))
		ioloop_stop(ctx->ioloop);
}

static void test_fifo_single_thread(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct worker_pool *pool = worker_pool_create(ioloop, 1, NULL);
	struct fifo_ctx ctx = { .ioloop = ioloop };
	struct fifo_job jobs[N_ELEMENTS(ctx.order)];
	struct timeout *guard =
		timeout_add(ioloop, 10000, fail_timeout_cb, NULL);
	unsigned int i;

	/* One thread: jobs run, complete and are delivered in the order
	   they were submitted. */
	for (i = 0; i < N_ELEMENTS(jobs); i++) {
		jobs[i].ctx = &ctx;
		jobs[i].id = i;
		worker_pool_submit(pool, noop_work, fifo_done, &jobs[i]);
	}
	assert_int_equal(ioloop_run(ioloop), 0);
	for (i = 0; i < N_ELEMENTS(jobs); i++)
		assert_int_equal(ctx.order[i], i);

	timeout_remove(&guard);
	worker_pool_destroy(&pool);
	ioloop_destroy(&ioloop);
}

struct gate {
	pthread_mutex_t mutex;
	pthread_cond_t cond;
	bool open;
	unsigned int waiting;
};

static void gate_work(void *context)
{
	struct gate *gate = context;

	pthread_mutex_lock(&gate->mutex);
	gate->waiting++;
	pthread_cond_broadcast(&gate->cond);
	while (!gate->open)
		pthread_cond_wait(&gate->cond, &gate->mutex);
	pthread_mutex_unlock(&gate->mutex);
}

static void test_pending_counts(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct worker_pool *pool = worker_pool_create(ioloop, 2, "test-pend");
	struct gate gate = { .open = false };
	unsigned int i;

	pthread_mutex_init(&gate.mutex, NULL);
	pthread_cond_init(&gate.cond, NULL);
	assert_int_equal(worker_pool_pending(pool), 0);

	/* Two running (blocked on the gate) and three queued. */
	for (i = 0; i < 5; i++)
		worker_pool_submit(pool, gate_work, NULL, &gate);
	pthread_mutex_lock(&gate.mutex);
	while (gate.waiting < 2)
		pthread_cond_wait(&gate.cond, &gate.mutex);
	pthread_mutex_unlock(&gate.mutex);
	assert_int_equal(worker_pool_pending(pool), 5);

	/* Finished but not yet delivered still counts. */
	pthread_mutex_lock(&gate.mutex);
	gate.open = true;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.mutex);
	usleep(20000);
	assert_int_equal(worker_pool_pending(pool), 5);

	while (worker_pool_pending(pool) > 0)
		ioloop_run_once(ioloop, 1000);
	assert_int_equal(gate.waiting, 5);

	worker_pool_destroy(&pool);
	pthread_cond_destroy(&gate.cond);
	pthread_mutex_destroy(&gate.mutex);
	ioloop_destroy(&ioloop);
}

struct drain_ctx {
	struct worker_pool *pool;
	pthread_t loop_thread;
	atomic_uint work_calls;
	unsigned int done_calls;
	unsigned int chained;
	bool done_in_loop_thread;
};

static void drain_work(void *context)
{
	struct drain_ctx *ctx = context;

	usleep(500);
	atomic_fetch_add(&ctx->work_calls, 1);
}

static void drain_done(void *context)
{
	struct drain_ctx *ctx = context;

	ctx->done_calls++;
	if (!pthread_equal(pthread_self(), ctx->loop_thread))
		ctx->done_in_loop_thread = false;
	/* done() may queue follow-up work, even while destroy drains. */
	if (ctx->chained < 5) {
		ctx->chained++;
		worker_pool_submit(ctx->pool, drain_work, drain_done, ctx);
	}
}

static void test_destroy_drains(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct drain_ctx ctx = { .done_in_loop_thread = true };
	struct worker_pool *pool;
	unsigned int i;

	/* ctx.pool stays valid for done() while destroy drains; the
	   variable passed to destroy is set to NULL first. */
	pool = ctx.pool = worker_pool_create(ioloop, 3, "test-drain");
	ctx.loop_thread = pthread_self();
	for (i = 0; i < 50; i++)
		worker_pool_submit(ctx.pool, drain_work, drain_done, &ctx);

	/* The loop never runs: destroy itself must finish every job and
	   call every done(). */
	worker_pool_destroy(&pool);
	assert_null(pool);
	assert_int_equal(atomic_load(&ctx.work_calls), 55);
	assert_int_equal(ctx.done_calls, 55);
	assert_true(ctx.done_in_loop_thread);

	/* The wakeups the workers sent are harmless after destroy. */
	ioloop_run_once(ioloop, 0);
	ioloop_destroy(&ioloop);
}

static void test_destroy_idle_and_null(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct worker_pool *pool = worker_pool_create(ioloop, 8,
						      "a-very-long-"
						      "worker-pool-name");

	worker_pool_destroy(&pool);
	assert_null(pool);
	worker_pool_destroy(&pool);
	ioloop_destroy(&ioloop);
}

struct sig_ctx {
	struct ioloop *ioloop;
	unsigned int calls;
};

static void sig_cb(int signo, void *context)
{
	struct sig_ctx *ctx = context;

	ctx->calls++;
	ioloop_stop(ctx->ioloop);
}

static void test_signal_reaches_loop(void **state)
{
	struct ioloop *ioloop = ioloop_create();
	struct sig_ctx ctx = { .ioloop = ioloop };
	struct worker_pool *pool;
	struct timeout *guard;

	/* Threads started before the loop blocks the signal must not
	   receive a process-directed signal (default action: terminate). */
	pool = worker_pool_create(ioloop, 4, "test-sig");
	ioloop_signal_add(ioloop, SIGUSR1, sig_cb, &ctx);
	guard = timeout_add(ioloop, 5000, fail_timeout_cb, NULL);
	assert_int_equal(kill(getpid(), SIGUSR1), 0);
	assert_int_equal(ioloop_run(ioloop), 0);
	assert_int_equal(ctx.calls, 1);

	timeout_remove(&guard);
	ioloop_signal_remove(ioloop, SIGUSR1, sig_cb, &ctx);
	worker_pool_destroy(&pool);
	ioloop_destroy(&ioloop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_jobs),
		cmocka_unit_test(test_thread_cap),
		cmocka_unit_test(test_fifo_single_thread),
		cmocka_unit_test(test_pending_counts),
		cmocka_unit_test(test_destroy_drains),
		cmocka_unit_test(test_destroy_idle_and_null),
		cmocka_unit_test(test_signal_reaches_loop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
