#ifndef MARMOT_FRONT_POP3_MAILDROP_H
#define MARMOT_FRONT_POP3_MAILDROP_H
/* The I/O-free half of POP3 (RFC 1939): the maildrop of one session (the
   INBOX snapshot taken at login: UID and size per message, the deletion
   marks of DELE), message-number parsing, UIDL strings, dot-stuffing of
   RETR and TOP, and the per-process maildrop lock table. front-pop3.c
   does the I/O (store, blobs, the connection); test-front-pop3.c tests
   this file.

   Memory: 16 octets per message of the snapshot, nothing per body. */

#include "lib.h"
#include "span.h"

struct buf;

struct pop3_msg {
	uint32_t uid;
	bool deleted; /* DELE'd in this session (RFC 1939 6) */
	uint64_t size; /* octets as stored */
};

struct pop3_maildrop {
	struct pop3_msg *msgs; /* message-number n is msgs[n - 1] */
	unsigned int count;
	unsigned int alloc;
	uint32_t uidvalidity;
	/* STAT: the messages not marked deleted and their octets. */
	unsigned int live_count;
	uint64_t live_size;
};

/* RFC 1939 7: a unique-id is 1-70 characters 0x21-0x7E; ours is
   "<uidvalidity>.<uid>", at most 21. */
#define POP3_UIDL_MAX 22

void pop3_maildrop_init(struct pop3_maildrop *md, uint32_t uidvalidity);
void pop3_maildrop_free(struct pop3_maildrop *md);
/* Appends the next message (UIDs must ascend). */
void pop3_maildrop_add(struct pop3_maildrop *md, uint32_t uid, uint64_t size);

enum pop3_lookup {
	POP3_LOOKUP_OK,
	POP3_LOOKUP_SYNTAX, /* not a decimal number */
	POP3_LOOKUP_NO_SUCH, /* 0 or past the last message */
	POP3_LOOKUP_DELETED, /* RFC 1939 5: marked as deleted */
};
/* Parses a message-number argument (RFC 1939 3: decimal, from 1) and
   finds the message. *msg_r is set only for POP3_LOOKUP_OK. */
enum pop3_lookup pop3_maildrop_lookup(struct pop3_maildrop *md, struct span arg,
				      struct pop3_msg **msg_r);
/* The text of an -ERR for a failed lookup. */
const char *pop3_lookup_error(enum pop3_lookup result);
/* DELE: marks a message (not already marked) deleted. */
void pop3_maildrop_delete(struct pop3_maildrop *md, struct pop3_msg *msg);
/* RSET (RFC 1939 5): unmarks every message. */
void pop3_maildrop_reset(struct pop3_maildrop *md);
/* The UIDs marked deleted, ascending, into uids (count entries, caller
   allocates md->count - md->live_count). Returns how many. */
unsigned int pop3_maildrop_deleted_uids(const struct pop3_maildrop *md,
					uint32_t *uids);
void pop3_uidl(const struct pop3_maildrop *md, const struct pop3_msg *msg,
	       char str_r[POP3_UIDL_MAX]);

/* Splits command arguments at spaces (RFC 1939 3: single spaces; runs of
   them are tolerated). Returns the count, or -1 if there are more than
   max. */
int pop3_split_args(struct span args, struct span *argv, unsigned int max);

/* A message as a multi-line response body (RFC 1939 3), produced in
   parts: every line ends in CRLF (a bare LF becomes CRLF; a last line
   without one gets it), a line starting with '.' gets another '.', and
   ".\r\n" ends it. body_lines < 0 sends all of it; otherwise TOP (RFC
   1939 7): the header, the empty line after it, and at most body_lines
   lines of the body. data must stay valid while parts are taken. */
struct pop3_stuffer {
	const uint8_t *data;
	size_t len, pos;
	int64_t body_lines, sent_body;
	bool in_body;
	bool done;
};
void pop3_stuffer_init(struct pop3_stuffer *st, const uint8_t *data, size_t len,
		       int64_t body_lines);
/* Appends whole lines to out until it has grown by max octets or more (a
   part ends after the line that crosses max), or to the end. Returns
   true once the terminating ".\r\n" is appended. */
bool pop3_stuffer_next(struct pop3_stuffer *st, struct buf *out, size_t max);
/* All of it at once (tests). */
void pop3_dot_stuff(const uint8_t *data, size_t len, int64_t body_lines,
		    struct buf *out);

/* The maildrop lock (RFC 1939 4: "exclusive-access lock"): the accounts
   that have a POP3 session in TRANSACTION state in this process. */
struct pop3_locks {
	uint64_t *ids;
	unsigned int count, alloc;
};
/* Returns false if account_id is locked already. */
bool pop3_lock_acquire(struct pop3_locks *locks, uint64_t account_id);
void pop3_lock_release(struct pop3_locks *locks, uint64_t account_id);
void pop3_locks_free(struct pop3_locks *locks);

#endif
