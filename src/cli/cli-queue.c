/* cli-queue.c - `marmot queue list|show ID|flush [ID]|delete ID|hold ID|
   release ID|inject RCPT... [--from SENDER]`: the operator's view of the
   outbound queue (lib-queue). list and show read DATA/queue directly
   (they need DATA/queue.key, so root or the service user: main.c drops
   root to the data directory's owner; the table entry asks for the
   directory, which is what makes it drop). flush, delete, hold and release
   must not race the running front, which is the only writer of queue
   state while it runs: they leave a request in DATA/queue/ctl/ that the
   runner applies within a second, and wait (up to 10 s) until it is
   gone. inject enqueues a message read from stdin for remote delivery
   (the way tests and scripts hand mail to the queue without SMTP);
   the runner finds it at its next scan or flush. Called from main.c's
   command table. */

#include "lib.h"
#include "cli.h"
#include "buf.h"
#include "queue.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define CLI_QUEUE_WAIT_MSECS 10000
#define CLI_QUEUE_INJECT_MAX QUEUE_MAX_MESSAGE

static const struct {
	const char *name;
	unsigned int min_args, max_args;
} cli_queue_subs[] = {
	{ "list", 0, 0 },
	{ "show", 1, 1 },
	{ "flush", 0, 1 },
	{ "delete", 1, 1 },
	{ "hold", 1, 1 },
	{ "release", 1, 1 },
	{ "inject", 1, QUEUE_MAX_RCPTS },
};

int cli_queue_check(struct cli_context *ctx)
{
	const char *sub = ctx->args[0];
	unsigned int nargs = ctx->arg_count - 1;

	for (unsigned int i = 0; i < N_ELEMENTS(cli_queue_subs); i++) {
		if (strcmp(sub, cli_queue_subs[i].name) != 0)
			continue;
		if (nargs < cli_queue_subs[i].min_args ||
		    nargs > cli_queue_subs[i].max_args)
			return cli_usage_error(ctx,
					       "wrong number of arguments "
					       "for queue %s",
					       sub);
		if (strcmp(sub, "inject") != 0 && nargs == 1 &&
		    !queue_id_valid(ctx->args[1]))
			return cli_usage_error(ctx, "not a queue id: %s",
					       ctx->args[1]);
		if (strcmp(sub, "inject") != 0 &&
		    ctx->opt[CLI_OPT_FROM] != NULL)
			return cli_usage_error(ctx, "--from is for queue "
						    "inject");
		return CLI_EXIT_OK;
	}
	return cli_usage_error(ctx, "unknown queue command: %s", sub);
}

/* Prints text from the network (addresses, replies, headers) with control
   characters as '?', so an escape sequence in a queued message cannot
   drive the operator's terminal. keep_newlines is for header sections. */
static void cli_print_safe(const char *text, size_t len, bool keep_newlines)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if ((c < 0x20 && c != '\t' &&
		     !(keep_newlines && (c == '\n' || c == '\r'))) ||
		    c == 0x7f)
			c = '?';
		putchar(c);
	}
}

static void cli_print_str(const char *text)
{
	cli_print_safe(text, strlen(text), false);
}

static void cli_print_time(int64_t when)
{
	time_t t = (time_t)when;
	struct tm tm;
	char text[32];

	if (when == 0) {
		fputs("-", stdout);
		return;
	}
	(void)gmtime_r(&t, &tm);
	strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fputs(text, stdout);
}

static void cli_queue_print_rcpts(const struct queue_message *msg)
{
	for (unsigned int i = 0; i < msg->env.rcpt_count; i++) {
		const struct queue_rcpt_state *st = &msg->states[i];

		fputs("  <", stdout);
		cli_print_str(msg->env.rcpts[i].address);
		printf("> %s attempts=%u", queue_rcpt_status_name(st->status),
		       st->attempts);
		if (st->status == QUEUE_RCPT_PENDING) {
			fputs(" next=", stdout);
			cli_print_time(st->next_attempt);
		}
		if (st->last_reply[0] != '\0') {
			fputs(" last=\"", stdout);
			cli_print_str(st->last_reply);
			fputs("\"", stdout);
		}
		fputs("\n", stdout);
	}
}

static int cli_queue_list(struct queue *q)
{
	char(*ids)[QUEUE_ID_LEN + 1];
	unsigned int count;
	const char *error;
	int ret = CLI_EXIT_OK;

	if (queue_list(q, &ids, &count, &error) < 0) {
		cli_error("%s", error);
		return CLI_EXIT_FAILURE;
	}
	for (unsigned int i = 0; i < count; i++) {
		struct queue_message *msg;
		int r = queue_load(q, ids[i], false, &msg, &error);

		if (r == 0)
			continue; /* delivered meanwhile */
		if (r < 0) {
			printf("%s damaged: %s\n", ids[i], error);
			ret = CLI_EXIT_FAILURE;
			continue;
		}
		printf("%s ", msg->id);
		cli_print_time(msg->queued);
		fputs(" <", stdout);
		cli_print_str(msg->env.sender);
		printf(">%s", msg->held ? " held" : "");
		if (msg->env.hold_until > 0) {
			fputs(" hold_until=", stdout);
			cli_print_time(msg->env.hold_until);
		}
		fputs("\n", stdout);
		cli_queue_print_rcpts(msg);
		queue_message_free(&msg);
	}
	printf("%u message%s\n", count, count == 1 ? "" : "s");
	i_free(ids);
	return ret;
}

static int cli_queue_show(struct queue *q, const char *id)
{
	struct queue_message *msg;
	const char *error;
	int r = queue_load(q, id, true, &msg, &error);
	size_t hdr_len = 0;

	if (r <= 0) {
		cli_error("%s",
			  r == 0 ? "no such message in the queue" : error);
		return CLI_EXIT_FAILURE;
	}
	printf("id: %s\nqueued: ", msg->id);
	cli_print_time(msg->queued);
	fputs("\nsender: <", stdout);
	cli_print_str(msg->env.sender);
	printf(">\nsize: %zu\nheld: %s\n", msg->body_len,
	       msg->held ? "yes" : "no");
	fputs("hold_until: ", stdout);
	cli_print_time(msg->env.hold_until);
	printf("\nret: %s\nenvid: ", msg->env.ret_full ? "full" : "hdrs");
	cli_print_str(msg->env.envid == NULL ? "-" : msg->env.envid);
	printf("\nrequiretls: %s\naccount: %llu\n",
	       msg->env.requiretls ? "yes" : "no",
	       (unsigned long long)msg->env.account_id);
	fputs("recipients:\n", stdout);
	cli_queue_print_rcpts(msg);
	/* The header section only: bodies are not for operators' eyes. */
	while (hdr_len < msg->body_len) {
		const uint8_t *lf = memchr(msg->body + hdr_len, '\n',
					   msg->body_len - hdr_len);
		size_t line_len =
			lf == NULL ? msg->body_len - hdr_len
				   : (size_t)(lf - (msg->body + hdr_len)) + 1;

		if (line_len <= 2 &&
		    (msg->body[hdr_len] == '\n' || msg->body[hdr_len] == '\r'))
			break;
		hdr_len += line_len;
	}
	fputs("headers:\n", stdout);
	cli_print_safe((const char *)msg->body, hdr_len, true);
	queue_message_free(&msg);
	return CLI_EXIT_OK;
}

static int cli_queue_request(struct queue *q, enum queue_request_op op,
			     const char *id)
{
	const char *error;

	if (strcmp(id, "all") != 0) {
		struct queue_message *msg;
		int r = queue_load(q, id, false, &msg, &error);

		if (r <= 0) {
			cli_error("%s", r == 0 ? "no such message in the "
						 "queue"
					       : error);
			return CLI_EXIT_FAILURE;
		}
		queue_message_free(&msg);
	}
	if (queue_request_add(q, op, id, &error) < 0) {
		cli_error("%s", error);
		return CLI_EXIT_FAILURE;
	}
	for (unsigned int waited = 0; waited < CLI_QUEUE_WAIT_MSECS;
	     waited += 50) {
		if (!queue_request_pending(q, op, id)) {
			printf("%s %s: done\n", queue_request_op_name(op), id);
			return CLI_EXIT_OK;
		}
		usleep(50 * 1000);
	}
	cli_error("%s %s: requested, but the server has not applied it yet "
		  "(is marmot running?); it will when it runs",
		  queue_request_op_name(op), id);
	return CLI_EXIT_FAILURE;
}

static int cli_queue_inject(struct cli_context *ctx, struct queue *q)
{
	const char *sender =
		ctx->opt[CLI_OPT_FROM] == NULL ? "" : ctx->opt[CLI_OPT_FROM];
	unsigned int count = ctx->arg_count - 1;
	struct queue_rcpt *rcpts = p_new(ctx->pool, struct queue_rcpt, count);
	struct queue_envelope env;
	struct buf msg = BUF_INIT;
	const char *error;
	char id[QUEUE_ID_LEN + 1];

	for (unsigned int i = 0; i < count; i++) {
		const char *addr = ctx->args[1 + i];

		if (strchr(addr, '@') == NULL) {
			cli_error("not an address: %s", addr);
			return CLI_EXIT_FAILURE;
		}
		rcpts[i].address = addr;
	}
	for (;;) {
		uint8_t *p;
		ssize_t n;

		if (msg.used > CLI_QUEUE_INJECT_MAX) {
			cli_error("message too big for the queue");
			buf_free(&msg);
			return CLI_EXIT_FAILURE;
		}
		p = buf_reserve(&msg, 65536);
		n = read(STDIN_FILENO, p, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			cli_error("read stdin: %s", strerror(errno));
			buf_free(&msg);
			return CLI_EXIT_FAILURE;
		}
		if (n == 0)
			break;
		buf_commit(&msg, (size_t)n);
	}
	memset(&env, 0, sizeof(env));
	env.sender = sender;
	env.rcpts = rcpts;
	env.rcpt_count = count;
	if (queue_enqueue(q, &env, buf_span(&msg).p, msg.used, id, &error) <
	    0) {
		cli_error("%s", error);
		buf_free(&msg);
		return CLI_EXIT_FAILURE;
	}
	buf_free(&msg);
	printf("queued %s\n", id);
	/* Durable now; the flush request only makes a running front look
	   at once instead of at its next scan. */
	if (queue_request_add(q, QUEUE_REQUEST_FLUSH, id, &error) < 0)
		cli_error("%s (the server finds it at its next scan)", error);
	return CLI_EXIT_OK;
}

int cli_queue_run(struct cli_context *ctx)
{
	const char *sub = ctx->args[0];
	const char *id = ctx->arg_count > 1 ? ctx->args[1] : NULL;
	const char *error;
	struct queue *q = queue_open(ctx->data_dir, &error);
	int ret;

	if (q == NULL) {
		cli_error("%s", error);
		return CLI_EXIT_FAILURE;
	}
	if (strcmp(sub, "list") == 0)
		ret = cli_queue_list(q);
	else if (strcmp(sub, "show") == 0)
		ret = cli_queue_show(q, id);
	else if (strcmp(sub, "flush") == 0)
		ret = cli_queue_request(q, QUEUE_REQUEST_FLUSH,
					id == NULL ? "all" : id);
	else if (strcmp(sub, "delete") == 0)
		ret = cli_queue_request(q, QUEUE_REQUEST_DELETE, id);
	else if (strcmp(sub, "hold") == 0)
		ret = cli_queue_request(q, QUEUE_REQUEST_HOLD, id);
	else if (strcmp(sub, "release") == 0)
		ret = cli_queue_request(q, QUEUE_REQUEST_RELEASE, id);
	else
		ret = cli_queue_inject(ctx, q);
	queue_close(&q);
	return ret;
}
