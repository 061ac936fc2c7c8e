#ifndef MARMOT_FRONT_QUEUE_H
#define MARMOT_FRONT_QUEUE_H
/* The outbound queue runner, part of the front (issue 4 item 4): it
   schedules the messages of DATA/queue/ (lib-queue) and delivers them
   with a non-blocking SMTP client on the front's ioloop, to the
   queue_relay_host or the recipients' MX hosts, with retries, DSNs,
   FUTURERELEASE and the requests of `marmot queue`. front.c starts and
   stops it; the delivery path enqueues with queue_enqueue() on
   front_queue_get() (thread-safe) and then calls front_queue_kick(). */

#include "lib.h"

struct dns;
struct front;
struct queue;

/* Opens the queue (creating DATA/queue/ and DATA/queue.key on the first
   start) and starts the runner. Returns 0, or -1 with *error_r. */
int front_queue_init(struct front *front, const char **error_r);
/* Closes connections (without waiting for them) and the queue. */
void front_queue_deinit(void);
/* The open queue (NULL before init): queue_enqueue is thread-safe. */
struct queue *front_queue_get(void);
/* The front's resolver (the dns_* settings), which inbound
   authentication shares (front-mailauth.c); NULL before init or when
   none could be made. */
struct dns *front_queue_dns(void);
/* Something was enqueued (or requested): rescan at once rather than at
   the next queue_scan_interval. Ioloop thread only. */
void front_queue_kick(void);
/* Message id was just enqueued by this process (front-delivery.c): the
   runner indexes it and dispatches it from the loop, without a directory
   scan. Ioloop thread only; safe before init (ignored). */
void front_queue_added(const char *id);

#endif
