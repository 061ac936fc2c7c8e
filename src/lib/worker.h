#ifndef MARMOT_WORKER_H
#define MARMOT_WORKER_H
/* A pool of threads for blocking work (SQLite, argon2id, DKIM signing), so
   the event loop never stalls. work() runs on a worker thread; done() runs
   afterwards in the loop's thread, in the order jobs complete. The number
   of threads is also the cap on concurrent jobs, which is how the vault caps
   concurrent argon2id hashes (64 MiB each). Worker threads are created with
   every signal blocked, so signals keep arriving at the loop's signalfd.
   All functions are for the loop's thread; work() must not touch the loop. */

#include "lib.h"

struct ioloop;
struct worker_pool;

typedef void worker_work_t(void *context);
typedef void worker_done_t(void *context);

/* Starts threads (> 0) worker threads, named after name (NULL: "worker",
   cut to 15 bytes). */
struct worker_pool *worker_pool_create(struct ioloop *ioloop,
				       unsigned int threads, const char *name);
/* Queues a job (FIFO). Never blocks. done may be NULL; it may submit more
   jobs but must not destroy the pool. */
void worker_pool_submit(struct worker_pool *pool, worker_work_t *work,
			worker_done_t *done, void *context);
/* Jobs queued, running, or finished but whose done() has not run yet. */
unsigned int worker_pool_pending(const struct worker_pool *pool);
/* Waits for every queued job to finish (calling each done() in this thread,
   including those of jobs that done() submits), then stops the threads.
   Does not run the ioloop. Sets *pool to NULL; NULL is tolerated. */
void worker_pool_destroy(struct worker_pool **pool);

#endif
