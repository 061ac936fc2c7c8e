#ifndef MARMOT_IOLOOP_H
#define MARMOT_IOLOOP_H
/* The event loop: level-triggered epoll, a timer heap, signals through
   signalfd and cross-thread wakeups through eventfd (Redis ae.c, Dovecot
   ioloop-epoll.c). One loop per thread; none of these functions may be
   called from another thread except ioloop_notify(). Callbacks may add and
   remove any io or timeout, including their own. */

#include "lib.h"

struct ioloop;
struct io;
struct timeout;
struct ioloop_notify;

enum io_condition {
	IO_READ = 0x01,
	IO_WRITE = 0x02,
};

typedef void io_callback_t(void *context);
typedef void io_signal_callback_t(int signo, void *context);

struct ioloop *ioloop_create(void);
/* All ios, timeouts, signals and notifies must have been removed. */
void ioloop_destroy(struct ioloop **ioloop);
/* Runs until ioloop_stop(). Returns 0, or -1 if epoll_wait() failed for a
   reason other than EINTR. */
int ioloop_run(struct ioloop *ioloop);
void ioloop_stop(struct ioloop *ioloop);
/* Runs one iteration: waits at most timeout_msecs (-1 = until an event or
   the next timer), dispatches what is ready, fires due timers. For tests and
   for nested waits. */
void ioloop_run_once(struct ioloop *ioloop, int timeout_msecs);
/* Monotonic milliseconds, cached at the start of each iteration. */
uint64_t ioloop_now_ms(struct ioloop *ioloop);

/* Watches fd for cond. The callback is called while the condition holds
   (level-triggered). An fd may have one io per loop. */
struct io *io_add(struct ioloop *ioloop, int fd, enum io_condition cond,
		  io_callback_t *callback, void *context);
/* Changes what is watched; cond 0 pauses the io without removing it. */
void io_set_condition(struct io *io, enum io_condition cond);
enum io_condition io_get_condition(const struct io *io);
/* Stops watching; sets *io to NULL. Safe with *io == NULL. Remove the io
   before closing its fd (epoll tracks the open file, not the number). An io
   removed during an iteration is never dispatched again in it. */
void io_remove(struct io **io);

/* Calls callback every msecs milliseconds until removed (a 0 ms timeout
   fires at most once per iteration). Timeouts due at the same time fire in
   the order they were added or last reset. */
struct timeout *timeout_add(struct ioloop *ioloop, unsigned int msecs,
			    io_callback_t *callback, void *context);
/* Restarts the interval from now (idle timers). */
void timeout_reset(struct timeout *timeout);
void timeout_remove(struct timeout **timeout);

/* Delivers signo through signalfd: the signal is blocked for the process
   and callback runs in the loop. Several callbacks per signal are allowed. */
void ioloop_signal_add(struct ioloop *ioloop, int signo,
		       io_signal_callback_t *callback, void *context);
void ioloop_signal_remove(struct ioloop *ioloop, int signo,
			  io_signal_callback_t *callback, void *context);

/* A wakeup that other threads can trigger: after ioloop_notify(), callback
   runs once in the loop's thread (several notifies may coalesce). */
struct ioloop_notify *ioloop_notify_add(struct ioloop *ioloop,
					io_callback_t *callback, void *context);
void ioloop_notify(struct ioloop_notify *notify); /* thread-safe */
void ioloop_notify_remove(struct ioloop_notify **notify);

#endif
