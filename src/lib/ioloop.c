/* ioloop.c - the event loop: level-triggered epoll, a binary min-heap of
   timers in monotonic milliseconds, signals through one signalfd per loop and
   cross-thread wakeups through one eventfd per notify (Redis ae.c, Dovecot
   ioloop-epoll.c). It owns the epoll fd, the signalfd, the eventfds and
   every io/timeout struct it hands out. Every process and every event-loop
   thread calls it; streams, ipc and the worker pool are built on it.
   Removed ios are only marked during an iteration and freed after dispatch,
   so a callback may remove any io, including ones whose events are still
   waiting in this iteration's event array: those are never dispatched. */

#include "ioloop.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>

#define IOLOOP_MAX_EVENTS 128

struct io {
	struct ioloop *ioloop;
	int fd;
	enum io_condition cond;
	io_callback_t *callback;
	void *context;
	bool registered; /* in the epoll set */
	bool removed;
	bool internal; /* signalfd / eventfd io, not counted as a user io */
	struct io *next_dead;
};

struct timeout {
	struct ioloop *ioloop;
	unsigned int msecs;
	uint64_t due_ms;
	uint64_t seq; /* tie-breaker: equal due times fire in add order */
	size_t heap_idx;
	io_callback_t *callback;
	void *context;
};

struct ioloop_signal_handler {
	int signo;
	io_signal_callback_t *callback;
	void *context;
	bool removed;
};

struct ioloop_notify {
	struct ioloop *ioloop;
	int fd;
	struct io *io;
	io_callback_t *callback;
	void *context;
};

struct ioloop {
	int epfd;
	uint64_t now_ms;
	bool running;
	bool wait_failed;
	unsigned int run_depth;

	unsigned int io_count; /* user ios, not internal ones */
	struct io *dead_ios;

	struct timeout **heap;
	size_t heap_count, heap_alloc;
	uint64_t timeout_seq;

	int sigfd;
	sigset_t sigmask;
	struct io *sig_io;
	struct ioloop_signal_handler *sig_handlers;
	size_t sig_count, sig_alloc;
	unsigned int sig_dispatching;

	unsigned int notify_count;
};

static uint64_t monotonic_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		i_panic("clock_gettime(CLOCK_MONOTONIC) failed: %s",
			strerror(errno));
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void ioloop_update_time(struct ioloop *ioloop)
{
	uint64_t now = monotonic_ms();

	if (now > ioloop->now_ms)
		ioloop->now_ms = now;
}

struct ioloop *ioloop_create(void)
{
	struct ioloop *ioloop = i_new(struct ioloop, 1);

	ioloop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ioloop->epfd < 0)
		i_panic("epoll_create1() failed: %s", strerror(errno));
	ioloop->sigfd = -1;
	sigemptyset(&ioloop->sigmask);
	ioloop_update_time(ioloop);
	return ioloop;
}

static void ioloop_free_dead_ios(struct ioloop *ioloop)
{
	while (ioloop->dead_ios != NULL) {
		struct io *io = ioloop->dead_ios;

		ioloop->dead_ios = io->next_dead;
		free(io);
	}
}

void ioloop_destroy(struct ioloop **_ioloop)
{
	struct ioloop *ioloop = *_ioloop;

	if (ioloop == NULL)
		return;
	*_ioloop = NULL;

	i_assert(ioloop->run_depth == 0);
	i_assert(ioloop->io_count == 0);
	i_assert(ioloop->heap_count == 0);
	i_assert(ioloop->sig_count == 0);
	i_assert(ioloop->sigfd == -1);
	i_assert(ioloop->notify_count == 0);

	ioloop_free_dead_ios(ioloop);
	if (close(ioloop->epfd) < 0)
		i_panic("close(epoll) failed: %s", strerror(errno));
	free(ioloop->heap);
	free(ioloop->sig_handlers);
	free(ioloop);
}

uint64_t ioloop_now_ms(struct ioloop *ioloop)
{
	return ioloop->now_ms;
}

void ioloop_stop(struct ioloop *ioloop)
{
	ioloop->running = false;
}

int ioloop_run(struct ioloop *ioloop)
{
	ioloop->running = true;
	ioloop->wait_failed = false;
	while (ioloop->running && !ioloop->wait_failed)
		ioloop_run_once(ioloop, -1);
	ioloop->running = false;
	return ioloop->wait_failed ? -1 : 0;
}

/* ---- ios ---- */

static uint32_t io_epoll_events(enum io_condition cond)
{
	uint32_t events = 0;

	if ((cond & IO_READ) != 0)
		events |= EPOLLIN;
	if ((cond & IO_WRITE) != 0)
		events |= EPOLLOUT;
	return events;
}

static void io_update_epoll(struct io *io, enum io_condition new_cond)
{
	struct epoll_event ev;
	int op;

	memset(&ev, 0, sizeof(ev));
	ev.events = io_epoll_events(new_cond);
	ev.data.ptr = io;

	/* A paused io leaves the epoll set entirely: EPOLLHUP/EPOLLERR are
	   reported even for an empty event mask and would spin the loop. */
	if (new_cond == 0) {
		if (!io->registered)
			return;
		/* The fd may already be closed, which removed it from the
		   set implicitly; ENOENT/EBADF are harmless then. */
		if (epoll_ctl(io->ioloop->epfd, EPOLL_CTL_DEL, io->fd, &ev) <
			    0 &&
		    errno != ENOENT && errno != EBADF)
			i_panic("epoll_ctl(DEL, %d) failed: %s", io->fd,
				strerror(errno));
		io->registered = false;
		return;
	}
	op = io->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(io->ioloop->epfd, op, io->fd, &ev) < 0) {
		i_panic("epoll_ctl(%s, %d) failed: %s",
			op == EPOLL_CTL_ADD ? "ADD" : "MOD", io->fd,
			strerror(errno));
	}
	io->registered = true;
}

static struct io *io_add_full(struct ioloop *ioloop, int fd,
			      enum io_condition cond, io_callback_t *callback,
			      void *context, bool internal)
{
	struct io *io;

	i_assert(fd >= 0);
	i_assert(callback != NULL);
	i_assert((cond & ~(IO_READ | IO_WRITE)) == 0);

	io = i_new(struct io, 1);
	io->ioloop = ioloop;
	io->fd = fd;
	io->callback = callback;
	io->context = context;
	io->internal = internal;
	io_update_epoll(io, cond);
	io->cond = cond;
	if (!internal)
		ioloop->io_count++;
	return io;
}

struct io *io_add(struct ioloop *ioloop, int fd, enum io_condition cond,
		  io_callback_t *callback, void *context)
{
	return io_add_full(ioloop, fd, cond, callback, context, false);
}

void io_set_condition(struct io *io, enum io_condition cond)
{
	i_assert(!io->removed);
	i_assert((cond & ~(IO_READ | IO_WRITE)) == 0);

	if (cond == io->cond)
		return;
	io_update_epoll(io, cond);
	io->cond = cond;
}

enum io_condition io_get_condition(const struct io *io)
{
	return io->cond;
}

void io_remove(struct io **_io)
{
	struct io *io = *_io;
	struct ioloop *ioloop;

	if (io == NULL)
		return;
	*_io = NULL;

	ioloop = io->ioloop;
	i_assert(!io->removed);
	io_update_epoll(io, 0);
	io->cond = 0;
	io->removed = true;
	if (!io->internal) {
		i_assert(ioloop->io_count > 0);
		ioloop->io_count--;
	}
	if (ioloop->run_depth == 0) {
		free(io);
	} else {
		/* Its event may still be in an event array being
		   dispatched; free it once dispatch is over. */
		io->next_dead = ioloop->dead_ios;
		ioloop->dead_ios = io;
	}
}

/* ---- timeouts: a binary min-heap ordered by (due_ms, seq) ---- */

static bool timeout_before(const struct timeout *a, const struct timeout *b)
{
	if (a->due_ms != b->due_ms)
		return a->due_ms < b->due_ms;
	return a->seq < b->seq;
}

static void heap_set(struct ioloop *ioloop, size_t idx, struct timeout *t)
{
	ioloop->heap[idx] = t;
	t->heap_idx = idx;
}

static void heap_sift_up(struct ioloop *ioloop, size_t idx)
{
	struct timeout *t = ioloop->heap[idx];

	while (idx > 0) {
		size_t parent = (idx - 1) / 2;

		if (!timeout_before(t, ioloop->heap[parent]))
			break;
		heap_set(ioloop, idx, ioloop->heap[parent]);
		idx = parent;
	}
	heap_set(ioloop, idx, t);
}

static void heap_sift_down(struct ioloop *ioloop, size_t idx)
{
	struct timeout *t = ioloop->heap[idx];
	size_t count = ioloop->heap_count;

	for (;;) {
		size_t child = idx * 2 + 1;

		if (child >= count)
			break;
		if (child + 1 < count && timeout_before(ioloop->heap[child + 1],
							ioloop->heap[child]))
			child++;
		if (!timeout_before(ioloop->heap[child], t))
			break;
		heap_set(ioloop, idx, ioloop->heap[child]);
		idx = child;
	}
	heap_set(ioloop, idx, t);
}

static void heap_insert(struct ioloop *ioloop, struct timeout *t)
{
	if (ioloop->heap_count == ioloop->heap_alloc) {
		size_t new_alloc =
			ioloop->heap_alloc == 0 ? 16 : ioloop->heap_alloc * 2;

		ioloop->heap =
			i_realloc(ioloop->heap,
				  i_size_mul(new_alloc, sizeof(*ioloop->heap)));
		ioloop->heap_alloc = new_alloc;
	}
	heap_set(ioloop, ioloop->heap_count++, t);
	heap_sift_up(ioloop, t->heap_idx);
}

static void heap_remove(struct ioloop *ioloop, struct timeout *t)
{
	size_t idx = t->heap_idx;
	struct timeout *last;

	i_assert(idx < ioloop->heap_count && ioloop->heap[idx] == t);
	last = ioloop->heap[--ioloop->heap_count];
	if (last == t)
		return;
	heap_set(ioloop, idx, last);
	heap_sift_up(ioloop, idx);
	heap_sift_down(ioloop, last->heap_idx);
}

/* The due time changed: restore the heap order around t. */
static void heap_update(struct ioloop *ioloop, struct timeout *t)
{
	heap_sift_up(ioloop, t->heap_idx);
	heap_sift_down(ioloop, t->heap_idx);
}

struct timeout *timeout_add(struct ioloop *ioloop, unsigned int msecs,
			    io_callback_t *callback, void *context)
{
	struct timeout *t = i_new(struct timeout, 1);

	i_assert(callback != NULL);
	ioloop_update_time(ioloop);
	t->ioloop = ioloop;
	t->msecs = msecs;
	t->due_ms = ioloop->now_ms + msecs;
	t->seq = ioloop->timeout_seq++;
	t->callback = callback;
	t->context = context;
	heap_insert(ioloop, t);
	return t;
}

void timeout_reset(struct timeout *t)
{
	struct ioloop *ioloop = t->ioloop;

	ioloop_update_time(ioloop);
	t->due_ms = ioloop->now_ms + t->msecs;
	t->seq = ioloop->timeout_seq++;
	heap_update(ioloop, t);
}

void timeout_remove(struct timeout **_t)
{
	struct timeout *t = *_t;

	if (t == NULL)
		return;
	*_t = NULL;
	/* Safe to free at once: the firing loop never touches a timeout
	   after calling its callback. */
	heap_remove(t->ioloop, t);
	free(t);
}

/* Milliseconds until the next timer, or -1 when there is none. */
static int ioloop_next_timer_msecs(struct ioloop *ioloop)
{
	uint64_t now, due;

	if (ioloop->heap_count == 0)
		return -1;
	due = ioloop->heap[0]->due_ms;
	now = monotonic_ms();
	if (due <= now)
		return 0;
	if (due - now > INT_MAX)
		return INT_MAX;
	return (int)(due - now);
}

static void ioloop_fire_timeouts(struct ioloop *ioloop)
{
	uint64_t now = ioloop->now_ms;

	while (ioloop->heap_count > 0 && ioloop->heap[0]->due_ms <= now) {
		struct timeout *t = ioloop->heap[0];

		/* Reschedule before the callback, which may remove t. A
		   0 ms timer fires at most once per iteration. */
		t->due_ms = now + (t->msecs == 0 ? 1 : t->msecs);
		t->seq = ioloop->timeout_seq++;
		heap_sift_down(ioloop, 0);
		t->callback(t->context);
	}
}

/* ---- the iteration ---- */

static void io_dispatch(struct io *io, uint32_t events)
{
	bool call = false;

	if (io->removed || io->cond == 0)
		return;
	/* EPOLLHUP/EPOLLERR wake readers and writers alike: their next
	   read() or write() reports the condition. */
	if ((io->cond & IO_READ) != 0 &&
	    (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) != 0)
		call = true;
	if ((io->cond & IO_WRITE) != 0 &&
	    (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0)
		call = true;
	if (call)
		io->callback(io->context);
}

void ioloop_run_once(struct ioloop *ioloop, int timeout_msecs)
{
	struct epoll_event events[IOLOOP_MAX_EVENTS];
	int timer_msecs, ret, i;

	timer_msecs = ioloop_next_timer_msecs(ioloop);
	if (timer_msecs >= 0 &&
	    (timeout_msecs < 0 || timer_msecs < timeout_msecs))
		timeout_msecs = timer_msecs;

	ret = epoll_wait(ioloop->epfd, events, IOLOOP_MAX_EVENTS,
			 timeout_msecs);
	if (ret < 0) {
		if (errno != EINTR)
			ioloop->wait_failed = true;
		ret = 0;
	}
	ioloop_update_time(ioloop);

	ioloop->run_depth++;
	for (i = 0; i < ret; i++)
		io_dispatch(events[i].data.ptr, events[i].events);
	ioloop_fire_timeouts(ioloop);
	ioloop->run_depth--;

	if (ioloop->run_depth == 0)
		ioloop_free_dead_ios(ioloop);
}

/* ---- signals ---- */

static void ioloop_signal_compact(struct ioloop *ioloop)
{
	size_t i, j = 0;

	for (i = 0; i < ioloop->sig_count; i++) {
		if (!ioloop->sig_handlers[i].removed)
			ioloop->sig_handlers[j++] = ioloop->sig_handlers[i];
	}
	ioloop->sig_count = j;
}

static void ioloop_signal_dispatch(struct ioloop *ioloop, int signo)
{
	size_t i;

	ioloop->sig_dispatching++;
	/* Index, not pointer: a callback may add handlers (realloc). Ones
	   added during dispatch do run for this signal. */
	for (i = 0; i < ioloop->sig_count; i++) {
		struct ioloop_signal_handler *h = &ioloop->sig_handlers[i];

		if (h->removed || h->signo != signo)
			continue;
		h->callback(signo, h->context);
	}
	ioloop->sig_dispatching--;
	if (ioloop->sig_dispatching == 0)
		ioloop_signal_compact(ioloop);
}

static void ioloop_sigfd_input(void *context)
{
	struct ioloop *ioloop = context;
	struct signalfd_siginfo si;

	/* A handler may remove the last handler, which closes the
	   signalfd: re-check it before every read. */
	while (ioloop->sigfd != -1) {
		ssize_t ret = read(ioloop->sigfd, &si, sizeof(si));

		if (ret < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			i_panic("read(signalfd) failed: %s", strerror(errno));
		}
		i_assert(ret == (ssize_t)sizeof(si));
		ioloop_signal_dispatch(ioloop, (int)si.ssi_signo);
	}
}

static bool ioloop_signal_has_handler(struct ioloop *ioloop, int signo)
{
	size_t i;

	for (i = 0; i < ioloop->sig_count; i++) {
		if (!ioloop->sig_handlers[i].removed &&
		    ioloop->sig_handlers[i].signo == signo)
			return true;
	}
	return false;
}

static void ioloop_sigfd_update(struct ioloop *ioloop)
{
	int fd;

	if (sigisemptyset(&ioloop->sigmask)) {
		io_remove(&ioloop->sig_io);
		if (ioloop->sigfd != -1 && close(ioloop->sigfd) < 0)
			i_panic("close(signalfd) failed: %s", strerror(errno));
		ioloop->sigfd = -1;
		return;
	}
	fd = signalfd(ioloop->sigfd, &ioloop->sigmask,
		      SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		i_panic("signalfd() failed: %s", strerror(errno));
	if (ioloop->sigfd == -1) {
		ioloop->sigfd = fd;
		ioloop->sig_io = io_add_full(ioloop, fd, IO_READ,
					     ioloop_sigfd_input, ioloop, true);
	}
}

static void ioloop_sigmask_change(int how, int signo)
{
	sigset_t set;
	int ret;

	sigemptyset(&set);
	sigaddset(&set, signo);
	ret = pthread_sigmask(how, &set, NULL);
	if (ret != 0)
		i_panic("pthread_sigmask() failed: %s", strerror(ret));
}

void ioloop_signal_add(struct ioloop *ioloop, int signo,
		       io_signal_callback_t *callback, void *context)
{
	struct ioloop_signal_handler *h;

	i_assert(callback != NULL);
	i_assert(signo > 0 && signo < NSIG);

	if (!ioloop_signal_has_handler(ioloop, signo)) {
		ioloop_sigmask_change(SIG_BLOCK, signo);
		sigaddset(&ioloop->sigmask, signo);
		ioloop_sigfd_update(ioloop);
	}
	if (ioloop->sig_count == ioloop->sig_alloc) {
		size_t new_alloc =
			ioloop->sig_alloc == 0 ? 8 : ioloop->sig_alloc * 2;

		ioloop->sig_handlers = i_realloc(
			ioloop->sig_handlers,
			i_size_mul(new_alloc, sizeof(*ioloop->sig_handlers)));
		ioloop->sig_alloc = new_alloc;
	}
	h = &ioloop->sig_handlers[ioloop->sig_count++];
	h->signo = signo;
	h->callback = callback;
	h->context = context;
	h->removed = false;
}

void ioloop_signal_remove(struct ioloop *ioloop, int signo,
			  io_signal_callback_t *callback, void *context)
{
	size_t i;

	for (i = 0; i < ioloop->sig_count; i++) {
		struct ioloop_signal_handler *h = &ioloop->sig_handlers[i];

		if (!h->removed && h->signo == signo &&
		    h->callback == callback && h->context == context)
			break;
	}
	if (i == ioloop->sig_count)
		i_panic("ioloop_signal_remove(%d): no such handler", signo);

	ioloop->sig_handlers[i].removed = true;
	if (ioloop->sig_dispatching == 0)
		ioloop_signal_compact(ioloop);

	if (!ioloop_signal_has_handler(ioloop, signo)) {
		sigdelset(&ioloop->sigmask, signo);
		ioloop_sigfd_update(ioloop);
		ioloop_sigmask_change(SIG_UNBLOCK, signo);
	}
}

/* ---- notify ---- */

static void ioloop_notify_input(void *context)
{
	struct ioloop_notify *notify = context;
	uint64_t value;

	/* Reading resets the counter: notifies since the last read
	   coalesce into one callback. */
	if (read(notify->fd, &value, sizeof(value)) < 0 && errno != EAGAIN &&
	    errno != EINTR)
		i_panic("read(eventfd) failed: %s", strerror(errno));
	notify->callback(notify->context);
}

struct ioloop_notify *ioloop_notify_add(struct ioloop *ioloop,
					io_callback_t *callback, void *context)
{
	struct ioloop_notify *notify = i_new(struct ioloop_notify, 1);

	i_assert(callback != NULL);
	notify->ioloop = ioloop;
	notify->callback = callback;
	notify->context = context;
	notify->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (notify->fd < 0)
		i_panic("eventfd() failed: %s", strerror(errno));
	notify->io = io_add_full(ioloop, notify->fd, IO_READ,
				 ioloop_notify_input, notify, true);
	ioloop->notify_count++;
	return notify;
}

void ioloop_notify(struct ioloop_notify *notify)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is saturated: a wakeup is pending. */
	if (write(notify->fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		i_panic("write(eventfd) failed: %s", strerror(errno));
}

void ioloop_notify_remove(struct ioloop_notify **_notify)
{
	struct ioloop_notify *notify = *_notify;

	if (notify == NULL)
		return;
	*_notify = NULL;

	io_remove(&notify->io);
	if (close(notify->fd) < 0)
		i_panic("close(eventfd) failed: %s", strerror(errno));
	i_assert(notify->ioloop->notify_count > 0);
	notify->ioloop->notify_count--;
	free(notify);
}
