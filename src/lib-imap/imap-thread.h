#ifndef MARMOT_IMAP_THREAD_H
#define MARMOT_IMAP_THREAD_H
/* IMAP THREAD (RFC 5256 3), I/O-free: THREAD=ORDEREDSUBJECT and
   THREAD=REFERENCES over a set of messages, and the "* THREAD" writer.

   Input is untrusted mail: Message-IDs may repeat, references may form
   loops, chains may be as long as the mailbox. Nothing here recurses
   (explicit stacks and bottom-up passes), links that would close a loop
   are not made, and the work is bounded by the messages and their
   references (the store keeps at most 256 per message). */

#include "lib.h"

struct buf;
struct pool;

enum imap_thread_algorithm {
	IMAP_THREAD_ORDEREDSUBJECT,
	IMAP_THREAD_REFERENCES,
};

/* What threading reads of a message. Strings are never NULL. */
struct imap_thread_msg {
	uint32_t seq, uid;
	int64_t date; /* sent date (imap_sort_sent_date()) */
	const char *base_subject; /* RFC 5256 2.1 */
	bool subject_is_reply; /* the base subject lost a Re:/Fwd: */
	const char *message_id; /* "" if none */
	/* References, then In-Reply-To, NULL-terminated. */
	const char *const *references;
};

#define IMAP_THREAD_NONE UINT32_MAX

struct imap_thread_node {
	uint32_t msg; /* index into the messages, or NONE for a dummy */
	uint32_t parent, first_child, next_sibling, prev_sibling;
	/* The Message-ID this container is for (NULL: none, or unique). */
	const char *id;
	/* Sort key: the message's (or a dummy's first child's) date and
	   sequence number. */
	int64_t key_date;
	uint32_t key_seq;
};

/* The threads: the children of nodes[top], in order. */
struct imap_thread {
	struct imap_thread_node *nodes;
	unsigned int node_count;
	uint32_t top;
};

/* "ORDEREDSUBJECT" / "REFERENCES" (any case). Returns false if unknown. */
bool imap_thread_algorithm_parse(const char *name,
				 enum imap_thread_algorithm *algo_r);

/* Threads msgs (in sequence order) with pool memory. */
void imap_thread_build(struct pool *pool, const struct imap_thread_msg *msgs,
		       unsigned int count, enum imap_thread_algorithm algo,
		       struct imap_thread *thread_r);

/* "* THREAD (..)(..)\r\n" (RFC 5256 4 thread-data) with UIDs or sequence
   numbers. */
void imap_thread_write(struct buf *out, const struct imap_thread *thread,
		       const struct imap_thread_msg *msgs, bool uid);

#endif
