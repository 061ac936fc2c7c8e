/* worker.c - a fixed pool of threads for blocking work (SQLite, argon2id,
   DKIM signing). It owns the threads, the FIFO job queue and the completion
   queue, both guarded by one mutex. A worker runs work(), moves the job to
   the completion queue and wakes the loop with ioloop_notify(); the loop
   thread then calls done() in completion order. Worker threads block every
   signal, so signals reach the loop's signalfd. Called by the vault and the
   front wherever a request would otherwise stall the event loop. */

#include "worker.h"
#include "ioloop.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>

struct worker_job {
	struct worker_job *next;
	worker_work_t *work;
	worker_done_t *done;
	void *context;
};

struct worker_job_queue {
	struct worker_job *head, *tail;
};

struct worker_pool {
	struct ioloop *ioloop;
	char *name;
	struct ioloop_notify *notify;

	pthread_t *threads;
	unsigned int thread_count;

	pthread_mutex_t mutex;
	pthread_cond_t job_cond; /* a job was queued, or stopping */
	pthread_cond_t idle_cond; /* a job finished (for destroy) */
	struct worker_job_queue queue; /* waiting to run */
	struct worker_job_queue completed; /* waiting for done() */
	unsigned int queued, running;
	bool stopping;

	/* queued + running + completed-not-delivered; read without the
	   mutex by worker_pool_pending(). */
	atomic_uint pending;
};

static void job_queue_push(struct worker_job_queue *q, struct worker_job *job)
{
	job->next = NULL;
	if (q->tail == NULL)
		q->head = job;
	else
		q->tail->next = job;
	q->tail = job;
}

static struct worker_job *job_queue_pop(struct worker_job_queue *q)
{
	struct worker_job *job = q->head;

	if (job != NULL) {
		q->head = job->next;
		if (q->head == NULL)
			q->tail = NULL;
	}
	return job;
}

static void pool_lock(struct worker_pool *pool)
{
	int ret = pthread_mutex_lock(&pool->mutex);

	if (ret != 0)
		i_panic("pthread_mutex_lock() failed: %s", strerror(ret));
}

static void pool_unlock(struct worker_pool *pool)
{
	int ret = pthread_mutex_unlock(&pool->mutex);

	if (ret != 0)
		i_panic("pthread_mutex_unlock() failed: %s", strerror(ret));
}

static void pool_wait(struct worker_pool *pool, pthread_cond_t *cond)
{
	int ret = pthread_cond_wait(cond, &pool->mutex);

	if (ret != 0)
		i_panic("pthread_cond_wait() failed: %s", strerror(ret));
}

static void *worker_thread(void *context)
{
	struct worker_pool *pool = context;
	struct worker_job *job;

	pool_lock(pool);
	for (;;) {
		while (pool->queue.head == NULL && !pool->stopping)
			pool_wait(pool, &pool->job_cond);
		job = job_queue_pop(&pool->queue);
		if (job == NULL)
			break; /* stopping and nothing left */
		pool->queued--;
		pool->running++;
		pool_unlock(pool);

		job->work(job->context);

		pool_lock(pool);
		pool->running--;
		job_queue_push(&pool->completed, job);
		pthread_cond_broadcast(&pool->idle_cond);
		/* Notify while holding the mutex: destroy cannot remove the
		   notify until every job has been handed over here. */
		ioloop_notify(pool->notify);
	}
	pool_unlock(pool);
	return NULL;
}

/* Calls done() for every completed job, in completion order. Runs in the
   loop thread; done() may submit new jobs. */
static void worker_pool_deliver(struct worker_pool *pool)
{
	struct worker_job *job;

	for (;;) {
		pool_lock(pool);
		job = job_queue_pop(&pool->completed);
		pool_unlock(pool);
		if (job == NULL)
			break;
		i_assert(atomic_load(&pool->pending) > 0);
		atomic_fetch_sub(&pool->pending, 1);
		if (job->done != NULL)
			job->done(job->context);
		free(job);
	}
}

static void worker_pool_notified(void *context)
{
	worker_pool_deliver(context);
}

struct worker_pool *worker_pool_create(struct ioloop *ioloop,
				       unsigned int threads, const char *name)
{
	struct worker_pool *pool = i_new(struct worker_pool, 1);
	sigset_t all, old;
	unsigned int i;
	int ret;

	i_assert(threads > 0);
	pool->ioloop = ioloop;
	pool->name = i_strdup(name == NULL ? "worker" : name);
	atomic_init(&pool->pending, 0);
	if ((ret = pthread_mutex_init(&pool->mutex, NULL)) != 0 ||
	    (ret = pthread_cond_init(&pool->job_cond, NULL)) != 0 ||
	    (ret = pthread_cond_init(&pool->idle_cond, NULL)) != 0)
		i_panic("worker pool %s: pthread init failed: %s", pool->name,
			strerror(ret));
	pool->notify = ioloop_notify_add(ioloop, worker_pool_notified, pool);

	/* Threads inherit the signal mask: create them with every signal
	   blocked so that none of them steals a signal from the loop. */
	sigfillset(&all);
	if ((ret = pthread_sigmask(SIG_SETMASK, &all, &old)) != 0)
		i_panic("pthread_sigmask() failed: %s", strerror(ret));
	pool->threads = i_new(pthread_t, threads);
	for (i = 0; i < threads; i++) {
		char thread_name[16];
		size_t len = strnlen(pool->name, sizeof(thread_name) - 1);

		ret = pthread_create(&pool->threads[i], NULL, worker_thread,
				     pool);
		if (ret != 0)
			i_panic("worker pool %s: pthread_create() failed: %s",
				pool->name, strerror(ret));
		pool->thread_count++;
		/* Linux limits thread names to 15 bytes; best effort. */
		memcpy(thread_name, pool->name, len);
		thread_name[len] = '\0';
		(void)pthread_setname_np(pool->threads[i], thread_name);
	}
	if ((ret = pthread_sigmask(SIG_SETMASK, &old, NULL)) != 0)
		i_panic("pthread_sigmask() failed: %s", strerror(ret));
	return pool;
}

void worker_pool_submit(struct worker_pool *pool, worker_work_t *work,
			worker_done_t *done, void *context)
{
	struct worker_job *job = i_new(struct worker_job, 1);

	i_assert(work != NULL);
	job->work = work;
	job->done = done;
	job->context = context;

	atomic_fetch_add(&pool->pending, 1);
	pool_lock(pool);
	i_assert(!pool->stopping);
	job_queue_push(&pool->queue, job);
	pool->queued++;
	pthread_cond_signal(&pool->job_cond);
	pool_unlock(pool);
}

unsigned int worker_pool_pending(const struct worker_pool *pool)
{
	return atomic_load(&pool->pending);
}

void worker_pool_destroy(struct worker_pool **_pool)
{
	struct worker_pool *pool = *_pool;
	unsigned int i;
	int ret;

	if (pool == NULL)
		return;
	*_pool = NULL;

	/* done() may submit more jobs, so drain until nothing is queued,
	   running or waiting for delivery. */
	for (;;) {
		pool_lock(pool);
		while (pool->queued > 0 || pool->running > 0)
			pool_wait(pool, &pool->idle_cond);
		if (pool->completed.head == NULL) {
			pool->stopping = true;
			pthread_cond_broadcast(&pool->job_cond);
			pool_unlock(pool);
			break;
		}
		pool_unlock(pool);
		worker_pool_deliver(pool);
	}
	i_assert(atomic_load(&pool->pending) == 0);

	for (i = 0; i < pool->thread_count; i++) {
		ret = pthread_join(pool->threads[i], NULL);
		if (ret != 0)
			i_panic("worker pool %s: pthread_join() failed: %s",
				pool->name, strerror(ret));
	}
	ioloop_notify_remove(&pool->notify);
	pthread_cond_destroy(&pool->idle_cond);
	pthread_cond_destroy(&pool->job_cond);
	pthread_mutex_destroy(&pool->mutex);
	free(pool->threads);
	free(pool->name);
	free(pool);
}
