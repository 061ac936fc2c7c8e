/* ipc.c - typed, length-prefixed messages between roles: the frame writer
   (ipc_msg_*, ipc_put_*), the I/O-free frame parser and field reader
   (ipc_frame_parse, ipc_get_*, ipc_end), and ipc_conn, which moves frames
   over a non-blocking UNIX stream socket on the event loop. The master, the
   vault, the front and the CLI all call it. Every length and flag that comes
   off the wire is checked before it is used: a bad header closes the
   connection, a short field fails the reader. */

#include "ipc.h"
#include "bytes.h"
#include "ioloop.h"
#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Bytes asked of recv() at a time. */
#define IPC_READ_CHUNK 65536

static uint16_t le16_get(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

size_t ipc_msg_begin(struct buf *out, enum ipc_type type, uint32_t id)
{
	size_t offset = out->used;
	uint8_t hdr[IPC_HEADER_SIZE];

	i_assert((unsigned int)type <= UINT16_MAX);
	le32_put(hdr, 0);
	hdr[4] = (uint8_t)type;
	hdr[5] = (uint8_t)((unsigned int)type >> 8);
	hdr[6] = 0;
	hdr[7] = 0;
	le32_put(hdr + 8, id);
	buf_append(out, hdr, sizeof(hdr));
	return offset;
}

void ipc_put_u32(struct buf *out, uint32_t value)
{
	uint8_t p[4];

	le32_put(p, value);
	buf_append(out, p, sizeof(p));
}

void ipc_put_u64(struct buf *out, uint64_t value)
{
	ipc_put_u32(out, (uint32_t)value);
	ipc_put_u32(out, (uint32_t)(value >> 32));
}

void ipc_put_bytes(struct buf *out, const void *data, size_t len)
{
	/* senders bound their data; ipc_msg_finish() checks the total */
	i_assert(len <= IPC_MAX_PAYLOAD);
	ipc_put_u32(out, (uint32_t)len);
	buf_append(out, data, len);
}

void ipc_put_str(struct buf *out, const char *str)
{
	i_assert(str != NULL);
	ipc_put_bytes(out, str, strlen(str));
}

void ipc_msg_finish(struct buf *out, size_t offset)
{
	size_t payload;

	i_assert(offset + IPC_HEADER_SIZE <= out->used);
	payload = out->used - offset - IPC_HEADER_SIZE;
	if (payload > IPC_MAX_PAYLOAD) {
		i_panic("ipc: frame payload of %zu bytes exceeds %u", payload,
			(unsigned int)IPC_MAX_PAYLOAD);
	}
	le32_put(out->data + out->start + offset, (uint32_t)payload);
}

int ipc_frame_parse(struct span data, struct ipc_frame *frame_r,
		    size_t *consumed_r, const char **error_r)
{
	uint32_t len;
	uint16_t flags;

	if (data.len < IPC_HEADER_SIZE)
		return 0;
	len = le32_get(data.p);
	flags = le16_get(data.p + 6);
	/* Checked on the header alone, before waiting for (and buffering)
	   a payload the peer claims. */
	if (len > IPC_MAX_PAYLOAD) {
		*error_r = "frame payload exceeds IPC_MAX_PAYLOAD";
		return -1;
	}
	if (flags != 0) {
		*error_r = "frame has non-zero reserved flags";
		return -1;
	}
	if (data.len - IPC_HEADER_SIZE < len)
		return 0;
	frame_r->type = le16_get(data.p + 4);
	frame_r->id = le32_get(data.p + 8);
	frame_r->payload = span_make(data.p + IPC_HEADER_SIZE, len);
	*consumed_r = IPC_HEADER_SIZE + (size_t)len;
	return 1;
}

void ipc_reader_init(struct ipc_reader *reader, const struct ipc_frame *frame)
{
	reader->rest = frame->payload;
	reader->failed = false;
}

static const uint8_t *ipc_take(struct ipc_reader *reader, size_t len)
{
	const uint8_t *p;

	if (reader->failed || reader->rest.len < len) {
		reader->failed = true;
		return NULL;
	}
	p = reader->rest.p;
	reader->rest = span_skip(reader->rest, len);
	return p;
}

uint32_t ipc_get_u32(struct ipc_reader *reader)
{
	const uint8_t *p = ipc_take(reader, 4);

	return p == NULL ? 0 : le32_get(p);
}

uint64_t ipc_get_u64(struct ipc_reader *reader)
{
	const uint8_t *p = ipc_take(reader, 8);

	if (p == NULL)
		return 0;
	return (uint64_t)le32_get(p) | (uint64_t)le32_get(p + 4) << 32;
}

struct span ipc_get_bytes(struct ipc_reader *reader)
{
	uint32_t len = ipc_get_u32(reader);
	const uint8_t *p;

	if (reader->failed)
		return SPAN_EMPTY;
	p = ipc_take(reader, len);
	return p == NULL ? SPAN_EMPTY : span_make(p, len);
}

char *ipc_get_str(struct ipc_reader *reader, struct pool *pool)
{
	struct span s = ipc_get_bytes(reader);

	if (!reader->failed && span_find_byte(s, '\0') >= 0)
		reader->failed = true;
	if (reader->failed)
		return p_malloc(pool, 1);
	return p_strndup(pool, s.p, s.len);
}

int ipc_end(struct ipc_reader *reader)
{
	return reader->failed || reader->rest.len != 0 ? -1 : 0;
}

struct ipc_conn {
	struct ioloop *ioloop;
	int fd;
	struct io *io;
	struct buf in, out;

	ipc_handler_t *handler;
	ipc_close_t *closed;
	void *context;

	/* References held by our callbacks on the stack; ipc_conn_destroy()
	   while one is held only marks the conn destroyed, and the last
	   reference frees it. */
	unsigned int refcount;
	bool destroyed;
	bool dispatching;
	bool disconnected;
};

static void ipc_conn_update_io(struct ipc_conn *conn)
{
	enum io_condition cond = 0;

	if (conn->io == NULL)
		return;
	if (!conn->dispatching)
		cond |= IO_READ;
	if (conn->out.used > 0)
		cond |= IO_WRITE;
	if (io_get_condition(conn->io) != cond)
		io_set_condition(conn->io, cond);
}

/* Stops all I/O and calls the closed callback, once. The callback may
   destroy the conn: callers check their destroyed flag afterwards. */
static void ipc_conn_disconnect(struct ipc_conn *conn, const char *reason)
{
	if (conn->disconnected)
		return;
	conn->disconnected = true;
	io_remove(&conn->io);
	buf_reset(&conn->out);
	conn->closed(conn, reason, conn->context);
}

/* Returns 0, or -1 after disconnecting. */
static int ipc_conn_flush(struct ipc_conn *conn)
{
	while (conn->out.used > 0) {
		struct span s = buf_span(&conn->out);
		ssize_t ret =
			send(conn->fd, s.p, s.len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (ret < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			ipc_conn_disconnect(conn, strerror(errno));
			return -1;
		}
		safe_memset0(conn->out.data + conn->out.start, (size_t)ret);
		buf_consume(&conn->out, (size_t)ret);
	}
	return 0;
}

/* Dispatches every complete frame in the input buffer. Returns 0, or -1
   after disconnecting (the conn may then be destroyed: check the flag). */
static int ipc_conn_dispatch(struct ipc_conn *conn)
{
	struct ipc_frame frame;
	const char *error;
	size_t consumed;
	int ret;

	while (!conn->disconnected) {
		ret = ipc_frame_parse(buf_span(&conn->in), &frame, &consumed,
				      &error);
		if (ret == 0)
			break;
		if (ret < 0) {
			ipc_conn_disconnect(conn, error);
			return -1;
		}
		conn->dispatching = true;
		ret = conn->handler(conn, &frame, conn->context);
		if (conn->destroyed)
			return -1;
		conn->dispatching = false;
		/* Frames carry passwords (IPC_VAULT_AUTH): wipe them as
		   soon as they have been handled. */
		safe_memset0(conn->in.data + conn->in.start, consumed);
		buf_consume(&conn->in, consumed);
		if (ret < 0) {
			ipc_conn_disconnect(conn, "handler rejected a frame");
			return -1;
		}
	}
	return conn->disconnected ? -1 : 0;
}

static void ipc_conn_read(struct ipc_conn *conn)
{
	uint8_t *p = buf_reserve(&conn->in, IPC_READ_CHUNK);
	ssize_t ret;

	ret = recv(conn->fd, p, IPC_READ_CHUNK, MSG_DONTWAIT);
	if (ret < 0) {
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		ipc_conn_disconnect(conn, strerror(errno));
		return;
	}
	if (ret == 0) {
		ipc_conn_disconnect(conn, conn->in.used == 0
						  ? "connection closed by peer"
						  : "connection closed by peer "
						    "in the middle of a frame");
		return;
	}
	buf_commit(&conn->in, (size_t)ret);
	(void)ipc_conn_dispatch(conn);
}

static void ipc_conn_free(struct ipc_conn *conn)
{
	buf_free_secure(&conn->in);
	buf_free_secure(&conn->out);
	i_free(conn);
}

static void ipc_conn_io(void *context)
{
	struct ipc_conn *conn = context;

	conn->refcount++;
	if (conn->out.used > 0 && ipc_conn_flush(conn) < 0)
		goto out;
	/* A handler running a nested loop iteration must not see its frame
	   moved under it: no reading until it returns. */
	if (!conn->dispatching && !conn->destroyed)
		ipc_conn_read(conn);
out:
	if (--conn->refcount == 0 && conn->destroyed) {
		ipc_conn_free(conn);
		return;
	}
	if (!conn->destroyed)
		ipc_conn_update_io(conn);
}

struct ipc_conn *ipc_conn_create(struct ioloop *ioloop, int fd,
				 ipc_handler_t *handler, ipc_close_t *closed,
				 void *context)
{
	struct ipc_conn *conn = i_new(struct ipc_conn, 1);
	int flags;

	flags = fcntl(fd, F_GETFL);
	if (flags >= 0 && (flags & O_NONBLOCK) == 0)
		(void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	conn->ioloop = ioloop;
	conn->fd = fd;
	conn->handler = handler;
	conn->closed = closed;
	conn->context = context;
	conn->io = io_add(ioloop, fd, IO_READ, ipc_conn_io, conn);
	return conn;
}

void ipc_conn_destroy(struct ipc_conn **_conn)
{
	struct ipc_conn *conn = *_conn;

	if (conn == NULL)
		return;
	*_conn = NULL;
	i_assert(!conn->destroyed);
	conn->destroyed = true;
	conn->disconnected = true;
	io_remove(&conn->io);
	if (conn->fd >= 0) {
		close(conn->fd);
		conn->fd = -1;
	}
	if (conn->refcount == 0)
		ipc_conn_free(conn);
}

void ipc_conn_send(struct ipc_conn *conn, const struct buf *data)
{
	/* after the closed callback the data has nowhere to go */
	if (conn->disconnected)
		return;
	buf_append_span(&conn->out, buf_span(data));
	/* Written from the loop, never from here: a send error must not
	   call the closed callback from inside the caller. */
	ipc_conn_update_io(conn);
}

void ipc_conn_send_empty(struct ipc_conn *conn, enum ipc_type type, uint32_t id)
{
	struct buf frame = BUF_INIT;

	ipc_msg_finish(&frame, ipc_msg_begin(&frame, type, id));
	ipc_conn_send(conn, &frame);
	buf_free(&frame);
}

int ipc_conn_fd(const struct ipc_conn *conn)
{
	return conn->fd;
}
