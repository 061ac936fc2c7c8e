/* cli-status.c - the commands of the `marmot` CLI that talk to the server
   rather than to the directory: `marmot run` (hands over to master_run())
   and `marmot status`, a blocking client of the master's control socket
   DATA/run/control.sock that sends one IPC_CONTROL_STATUS frame and prints
   the text of the IPC_CONTROL_STATUS_REPLY. The reply is bounded by the
   IPC frame limit and a 5 second deadline. Called from main.c's command
   table. */

#include "lib.h"
#include "cli.h"
#include "buf.h"
#include "ipc.h"
#include "master.h"
#include "net.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CLI_STATUS_TIMEOUT_MSECS 5000
#define CLI_STATUS_REQUEST_ID 1

int cli_run_run(struct cli_context *ctx)
{
	return master_run(ctx->data_dir);
}

static int64_t cli_now_msecs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for fd to become ready for events until deadline. Returns 1 when
   ready, 0 on timeout, -1 on error. */
static int cli_wait(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - cli_now_msecs();
		struct pollfd pfd = { .fd = fd, .events = events };
		int ret;

		if (left <= 0)
			return 0;
		ret = poll(&pfd, 1, (int)left);
		if (ret < 0 && errno == EINTR)
			continue;
		return ret < 0 ? -1 : (ret == 0 ? 0 : 1);
	}
}

static int cli_status_send(int fd, const struct buf *out, int64_t deadline,
			   const char **error_r)
{
	struct span rest = buf_span(out);

	while (rest.len > 0) {
		int ret = cli_wait(fd, POLLOUT, deadline);
		if (ret <= 0) {
			*error_r = ret == 0 ? "timed out sending the request"
					    : strerror(errno);
			return -1;
		}
		ssize_t n = write(fd, rest.p, rest.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = strerror(errno);
			return -1;
		}
		rest = span_skip(rest, (size_t)n);
	}
	return 0;
}

/* Reads until one whole frame is in in. Returns 0 and fills frame_r (a
   view into in), or -1 with *error_r. */
static int cli_status_receive(int fd, struct buf *in, int64_t deadline,
			      struct ipc_frame *frame_r, const char **error_r)
{
	size_t consumed;

	for (;;) {
		int ret = ipc_frame_parse(buf_span(in), frame_r, &consumed,
					  error_r);
		if (ret == 1)
			return 0;
		if (ret < 0)
			return -1;

		ret = cli_wait(fd, POLLIN, deadline);
		if (ret <= 0) {
			*error_r = ret == 0 ? "no reply within 5 seconds"
					    : strerror(errno);
			return -1;
		}
		uint8_t *p = buf_reserve(in, 4096);
		ssize_t n = read(fd, p, 4096);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = strerror(errno);
			return -1;
		}
		if (n == 0) {
			*error_r = "the server closed the connection";
			return -1;
		}
		buf_commit(in, (size_t)n);
		/* ipc_frame_parse() refuses oversized headers, so in stays
		   bounded by IPC_HEADER_SIZE + IPC_MAX_PAYLOAD. */
	}
}

int cli_status_run(struct cli_context *ctx)
{
	const char *path, *error;
	struct buf out = BUF_INIT, in = BUF_INIT;
	struct ipc_frame frame;
	struct ipc_reader reader;
	int64_t deadline;
	struct stat st;
	int fd, ret = CLI_EXIT_FAILURE;

	path = p_strdup_printf(ctx->pool, "%s/run/control.sock", ctx->data_dir);
	if (stat(path, &st) < 0 && errno == ENOENT) {
		printf("marmot is not running (no control socket at %s)\n",
		       path);
		return CLI_EXIT_NOT_RUNNING;
	}
	fd = net_connect_unix(path, &error);
	if (fd < 0) {
		if (errno == EACCES || errno == EPERM) {
			cli_error("%s", error);
			return CLI_EXIT_FAILURE;
		}
		printf("marmot is not running (no control socket at %s)\n",
		       path);
		return CLI_EXIT_NOT_RUNNING;
	}

	deadline = cli_now_msecs() + CLI_STATUS_TIMEOUT_MSECS;
	size_t start =
		ipc_msg_begin(&out, IPC_CONTROL_STATUS, CLI_STATUS_REQUEST_ID);
	ipc_msg_finish(&out, start);
	if (cli_status_send(fd, &out, deadline, &error) < 0) {
		cli_error("status request to %s failed: %s", path, error);
		goto out;
	}
	if (cli_status_receive(fd, &in, deadline, &frame, &error) < 0) {
		cli_error("status reply from %s failed: %s", path, error);
		goto out;
	}
	if (frame.type != IPC_CONTROL_STATUS_REPLY ||
	    frame.id != CLI_STATUS_REQUEST_ID) {
		cli_error("unexpected reply from %s (type %u, id %u)", path,
			  (unsigned int)frame.type, (unsigned int)frame.id);
		goto out;
	}
	ipc_reader_init(&reader, &frame);
	const char *text = ipc_get_str(&reader, ctx->pool);
	if (ipc_end(&reader) < 0) {
		cli_error("malformed status reply from %s", path);
		goto out;
	}
	size_t len = strlen(text);
	fputs(text, stdout);
	if (len == 0 || text[len - 1] != '\n')
		fputc('\n', stdout);
	ret = CLI_EXIT_OK;
out:
	close(fd);
	buf_free(&out);
	buf_free(&in);
	return ret;
}
