/* front-pop3-maildrop.c - POP3's I/O-free parts: the session's maildrop,
   message numbers, UIDL, dot-stuffing, the lock table
   (front-pop3-maildrop.h). */

#include "lib.h"
#include "buf.h"
#include "front-pop3-maildrop.h"

#include <inttypes.h>
#include <stdio.h>

void pop3_maildrop_init(struct pop3_maildrop *md, uint32_t uidvalidity)
{
	memset(md, 0, sizeof(*md));
	md->uidvalidity = uidvalidity;
}

void pop3_maildrop_free(struct pop3_maildrop *md)
{
	i_free(md->msgs);
	memset(md, 0, sizeof(*md));
}

void pop3_maildrop_add(struct pop3_maildrop *md, uint32_t uid, uint64_t size)
{
	struct pop3_msg *msg;

	i_assert(md->count == 0 || md->msgs[md->count - 1].uid < uid);
	if (md->count == md->alloc) {
		md->alloc = md->alloc == 0 ? 64 : md->alloc * 2;
		md->msgs = i_realloc(md->msgs,
				     i_size_mul(md->alloc, sizeof(*md->msgs)));
	}
	msg = &md->msgs[md->count++];
	msg->uid = uid;
	msg->deleted = false;
	msg->size = size;
	md->live_count++;
	md->live_size += size;
}

enum pop3_lookup pop3_maildrop_lookup(struct pop3_maildrop *md, struct span arg,
				      struct pop3_msg **msg_r)
{
	uint64_t n;

	if (span_to_u64(arg, UINT32_MAX, &n) < 0)
		return POP3_LOOKUP_SYNTAX;
	if (n == 0 || n > md->count)
		return POP3_LOOKUP_NO_SUCH;
	/* RFC 1939 5: a deleted message may not be referred to. */
	if (md->msgs[n - 1].deleted)
		return POP3_LOOKUP_DELETED;
	*msg_r = &md->msgs[n - 1];
	return POP3_LOOKUP_OK;
}

const char *pop3_lookup_error(enum pop3_lookup result)
{
	switch (result) {
	case POP3_LOOKUP_OK:
		break;
	case POP3_LOOKUP_SYNTAX:
		return "Invalid message number";
	case POP3_LOOKUP_NO_SUCH:
		return "No such message";
	case POP3_LOOKUP_DELETED:
		return "Message already deleted";
	}
	i_unreached();
}

void pop3_maildrop_delete(struct pop3_maildrop *md, struct pop3_msg *msg)
{
	i_assert(!msg->deleted);
	msg->deleted = true;
	md->live_count--;
	md->live_size -= msg->size;
}

void pop3_maildrop_reset(struct pop3_maildrop *md)
{
	md->live_count = md->count;
	md->live_size = 0;
	for (unsigned int i = 0; i < md->count; i++) {
		md->msgs[i].deleted = false;
		md->live_size += md->msgs[i].size;
	}
}

unsigned int pop3_maildrop_deleted_uids(const struct pop3_maildrop *md,
					uint32_t *uids)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < md->count; i++) {
		if (md->msgs[i].deleted)
			uids[n++] = md->msgs[i].uid;
	}
	return n;
}

void pop3_uidl(const struct pop3_maildrop *md, const struct pop3_msg *msg,
	       char str_r[POP3_UIDL_MAX])
{
	/* UIDVALIDITY is fixed when INBOX is created and a UID is never
	   reused in a mailbox (store.h), so the pair names one message for
	   ever: stable across sessions and unique (RFC 1939 7). The email
	   id is not: two copies of one message in INBOX share it. */
	snprintf(str_r, POP3_UIDL_MAX, "%" PRIu32 ".%" PRIu32, md->uidvalidity,
		 msg->uid);
}

int pop3_split_args(struct span args, struct span *argv, unsigned int max)
{
	unsigned int n = 0;

	for (;;) {
		struct span word;

		while (args.len > 0 && args.p[0] == ' ')
			args = span_skip(args, 1);
		if (args.len == 0)
			return (int)n;
		if (n == max)
			return -1;
		if (!span_split(args, ' ', &word, &args))
			args = span_make(args.p + args.len, 0);
		argv[n++] = word;
	}
}

void pop3_stuffer_init(struct pop3_stuffer *st, const uint8_t *data, size_t len,
		       int64_t body_lines)
{
	memset(st, 0, sizeof(*st));
	st->data = data;
	st->len = len;
	st->body_lines = body_lines;
}

bool pop3_stuffer_next(struct pop3_stuffer *st, struct buf *out, size_t max)
{
	const uint8_t *end = st->data + st->len;
	size_t start_used = out->used;

	if (st->done)
		return true;
	while (st->pos < st->len) {
		const uint8_t *p = st->data + st->pos;
		const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));
		const uint8_t *next = lf == NULL ? end : lf + 1;
		size_t line_len = (size_t)((lf == NULL ? end : lf) - p);

		if (out->used - start_used >= max)
			return false;
		if (st->body_lines >= 0 && st->in_body &&
		    st->sent_body++ >= st->body_lines)
			break;
		if (line_len > 0 && p[line_len - 1] == '\r')
			line_len--;
		/* RFC 1939 3: byte-stuff a leading termination octet. */
		if (line_len > 0 && p[0] == '.')
			buf_append_c(out, '.');
		buf_append(out, p, line_len);
		buf_append(out, "\r\n", 2);
		if (!st->in_body && line_len == 0)
			st->in_body = true;
		st->pos = (size_t)(next - st->data);
	}
	buf_append(out, ".\r\n", 3);
	st->done = true;
	return true;
}

void pop3_dot_stuff(const uint8_t *data, size_t len, int64_t body_lines,
		    struct buf *out)
{
	struct pop3_stuffer st;

	pop3_stuffer_init(&st, data, len, body_lines);
	while (!pop3_stuffer_next(&st, out, SIZE_MAX))
		;
}

bool pop3_lock_acquire(struct pop3_locks *locks, uint64_t account_id)
{
	for (unsigned int i = 0; i < locks->count; i++) {
		if (locks->ids[i] == account_id)
			return false;
	}
	if (locks->count == locks->alloc) {
		locks->alloc = locks->alloc == 0 ? 16 : locks->alloc * 2;
		locks->ids = i_realloc(
			locks->ids, i_size_mul(locks->alloc, sizeof(uint64_t)));
	}
	locks->ids[locks->count++] = account_id;
	return true;
}

void pop3_lock_release(struct pop3_locks *locks, uint64_t account_id)
{
	for (unsigned int i = 0; i < locks->count; i++) {
		if (locks->ids[i] == account_id) {
			locks->ids[i] = locks->ids[--locks->count];
			return;
		}
	}
}

void pop3_locks_free(struct pop3_locks *locks)
{
	i_free(locks->ids);
	memset(locks, 0, sizeof(*locks));
}
