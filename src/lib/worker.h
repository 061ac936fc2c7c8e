#ifndef MARMOT_WORKER_H
#define MARMOT_WORKER_H
/* A pool of threads for blocking work (SQLite, argon2id, DKIM signing), so
   the event loop never stalls. work() runs on a worker thread; done() runs
   afterwards in the loop's thread, in the order jobs complete. The number
   of threads is also the cap on concurrent jobs, which is how the vault caps
   concurrent argon2id hashes (64 MiB each). */

#include "lib.h"

struct ioloop;
struct worker_pool;

typedef void worker_work_t(void *context);
typedef void worker_done_t(void *context);

struct worker_pool *worker_pool_create(struct ioloop *ioloop,
				       unsigned int threads, const char *name);
/* Queues a job. Never blocks. done may be NULL. */
void worker_pool_submit(struct worker_pool *pool, worker_work_t *work,
			worker_done_t *done, void *context);
/* Jobs queued or running. */
unsigned int worker_pool_pending(const struct worker_pool *pool);
/* Waits for every queued job to finish (calling each done()), then stops
   the threads. Sets *pool to NULL. */
void worker_pool_destroy(struct worker_pool **pool);

#endif
