/* cli-deliver.c - `marmot deliver ADDRESS [--from SENDER] [--mailbox NAME]
   [--mbox FILE]`, the local delivery agent (as dovecot-lda is): reads one
   message from stdin, resolves ADDRESS through the directory (accounts,
   aliases, +tag, catch-all) and appends a sealed record to the spool of
   every local account it reaches (spool.h); the vault merges it from
   there. Also the hidden `marmot store count ADDRESS`, which the
   integration tests use to see what the merge stored. Called only from
   main.c's command table.

   Bulk delivery: with --mbox FILE ("-" = stdin) every message of the mbox
   (mbox.h, read as mboxrd: quoting undone, the mbox metadata headers
   Status/X-Status/X-Keywords/X-UID... removed, their flags not kept:
   delivered mail is new) becomes its own spool record, one after the
   other, with the From_ line's sender as the envelope sender unless
   --from is given. As soon as a message's records are durable, one line
   "delivered N MESSAGE-ID" is printed and stdout flushed (N = its number
   in the mbox from 1, MESSAGE-ID its Message-ID header with control
   characters replaced by '?', or "-"), so whoever runs it knows exactly
   which messages were acknowledged even if the process dies midway: at
   most the one message after the last line may be durable without a
   line (a retry of the unacknowledged rest may duplicate that one). A
   message over the size limit is refused (named on stderr) and the rest
   delivered, exit 1; any other failure stops at that message (exit 75
   for a spool error, 1 for an unreadable mbox).

   Exit statuses follow sendmail/LDA practice (sysexits.h): 0 once every
   record is durable (spool_append fsynced it), EX_NOUSER (67) for a
   recipient that is not ours or does not exist, EX_TEMPFAIL (75) when
   the caller should retry (database busy, disk, a forward-only address
   while the outbound queue does not exist), 1 for anything else (a
   message too large, bad arguments).

   Security stance: delivery needs no secret at all, only the accounts'
   public keys, so it never reads master.key: a local user or MTA that may
   deliver mail cannot read any. The message is kept byte for byte as
   given (no Return-Path or Received is added: that is the SMTP side's
   job), bounded in size before it is buffered, never logged or printed,
   and wiped from memory afterwards (an mbox's messages, read with stdio,
   are not: they are in the operator's file anyway); only the Message-ID
   of bulk-delivered messages is printed. `store count` prints only counts
   and needs the master key (root, as the other key commands). */

#include "lib.h"
#include "cli.h"
#include "buf.h"
#include "directory.h"
#include "mail-address.h"
#include "mbox.h"
#include "spool.h"
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define CLI_DELIVER_MAX_SIZE (50u * 1024 * 1024)
#define CLI_DELIVER_READ_CHUNK (64u * 1024)
/* RFC 5321 4.5.3.1.3: a reverse-path is at most 256 octets with the
   angle brackets. */
#define CLI_DELIVER_SENDER_MAX 254
#define CLI_DELIVER_MAILBOX_MAX 1024
/* Longest Message-ID printed by --mbox (RFC 5322's line limit). */
#define CLI_DELIVER_MSGID_MAX 998

struct cli_deliver {
	const char *sender; /* "" = null sender */
	bool have_sender; /* --from given */
	const char *mailbox; /* "" = INBOX */
	const char *recipient; /* normalised if valid, else as given */
	FILE *mbox; /* --mbox, opened by check; NULL without */
	const char *mbox_path;
};

/* The --mbox file, closed at exit if run() never got to it. */
static FILE *cli_deliver_mbox_pending;

static void cli_deliver_mbox_close(void)
{
	if (cli_deliver_mbox_pending != NULL &&
	    cli_deliver_mbox_pending != stdin)
		fclose(cli_deliver_mbox_pending);
	cli_deliver_mbox_pending = NULL;
}

static bool cli_deliver_text_ok(const char *str)
{
	for (const unsigned char *p = (const unsigned char *)str; *p != '\0';
	     p++) {
		if (*p < 0x20 || *p == 0x7f)
			return false;
	}
	return true;
}

int cli_deliver_check(struct cli_context *ctx)
{
	struct cli_deliver *d = p_new(ctx->pool, struct cli_deliver, 1);
	const char *from = ctx->opt[CLI_OPT_FROM];
	const char *mailbox = ctx->opt[CLI_OPT_MAILBOX];
	const char *error;
	size_t len;

	d->sender = "";
	if (from != NULL) {
		len = strlen(from);
		if (len >= 2 && from[0] == '<' && from[len - 1] == '>')
			from = p_strndup(ctx->pool, from + 1, len - 2);
		if (strlen(from) > CLI_DELIVER_SENDER_MAX ||
		    !cli_deliver_text_ok(from) || strchr(from, ' ') != NULL) {
			cli_error("invalid --from '%s' (an address of at most "
				  "%u characters, or \"\" for the null "
				  "sender)",
				  from, CLI_DELIVER_SENDER_MAX);
			return CLI_EXIT_FAILURE;
		}
		d->sender = from;
		d->have_sender = true;
	}
	d->mailbox = "";
	if (mailbox != NULL) {
		if (mailbox[0] == '\0' ||
		    strlen(mailbox) > CLI_DELIVER_MAILBOX_MAX ||
		    !cli_deliver_text_ok(mailbox)) {
			cli_error(
				"invalid --mailbox '%s' (a mailbox name of at "
				"most %u bytes, no control characters)",
				mailbox, CLI_DELIVER_MAILBOX_MAX);
			return CLI_EXIT_FAILURE;
		}
		d->mailbox = mailbox;
	}
	/* An invalid address is not refused here: resolution says whether
	   it is ours (EX_NOUSER either way). */
	d->recipient = mail_address_normalize(ctx->pool, ctx->args[0], NULL,
					      NULL, &error);
	if (d->recipient == NULL)
		d->recipient = ctx->args[0];
	ctx->cmd_data = d;
	if (ctx->opt[CLI_OPT_MBOX] != NULL) {
		d->mbox_path = ctx->opt[CLI_OPT_MBOX];
		if (d->mbox_path[0] == '\0')
			return cli_usage_error(ctx, "empty --mbox file name");
		/* Opened before root is dropped, as import does: reading
		   touches nothing. */
		if (strcmp(d->mbox_path, "-") == 0) {
			d->mbox = stdin;
			d->mbox_path = "stdin";
		} else {
			d->mbox = fopen(d->mbox_path, "re");
			if (d->mbox == NULL) {
				cli_error("cannot open %s: %s", d->mbox_path,
					  strerror(errno));
				return CLI_EXIT_FAILURE;
			}
		}
		cli_deliver_mbox_pending = d->mbox;
		atexit(cli_deliver_mbox_close);
	}
	return CLI_EXIT_OK;
}

/* Reads stdin into msg. Returns CLI_EXIT_OK or an exit status (printed). */
static int cli_deliver_read(struct buf *msg)
{
	for (;;) {
		uint8_t *p = buf_reserve(msg, CLI_DELIVER_READ_CHUNK);
		ssize_t ret = read(STDIN_FILENO, p, CLI_DELIVER_READ_CHUNK);

		if (ret < 0) {
			if (errno == EINTR)
				continue;
			cli_error("reading the message from stdin failed: %s",
				  strerror(errno));
			return EX_TEMPFAIL;
		}
		if (ret == 0)
			break;
		buf_commit(msg, (size_t)ret);
		if (msg->used > CLI_DELIVER_MAX_SIZE) {
			cli_error("the message is too large (more than %u MiB)",
				  CLI_DELIVER_MAX_SIZE / (1024 * 1024));
			return CLI_EXIT_FAILURE;
		}
	}
	if (msg->used == 0) {
		cli_error("no message on stdin");
		return CLI_EXIT_FAILURE;
	}
	return CLI_EXIT_OK;
}

struct cli_deliver_target {
	uint64_t id;
	const char *account_dir;
	uint8_t public_key[ACCOUNT_PUBLIC_KEY_LEN];
};

/* Resolves the recipient into targets_r (enabled local accounts).
   Returns CLI_EXIT_OK or an exit status (printed). */
static int cli_deliver_resolve(struct cli_context *ctx,
			       const struct cli_deliver *d,
			       struct cli_deliver_target **targets_r,
			       unsigned int *count_r)
{
	struct directory_recipients rcpts;
	struct directory_account account;
	struct cli_deliver_target *targets;
	unsigned int count = 0, disabled = 0;
	uint64_t *ids;
	const char *error;
	int ret;

	switch (directory_resolve(ctx->dir, ctx->args[0], &rcpts, &error)) {
	case DIRECTORY_RESOLVE_NOT_LOCAL:
		cli_error("%s is not in a local domain", d->recipient);
		return EX_NOUSER;
	case DIRECTORY_RESOLVE_UNKNOWN:
		cli_error("no such recipient: %s", d->recipient);
		return EX_NOUSER;
	case DIRECTORY_RESOLVE_ERROR:
		cli_error("cannot resolve %s: %s", d->recipient, error);
		return EX_TEMPFAIL;
	case DIRECTORY_RESOLVE_OK:
		break;
	}
	if (rcpts.remote_count > 0) {
		/* Issue 4 (the outbound queue) delivers these. */
		cli_error("warning: %s also forwards to %u remote address(es); "
			  "forwarding is not supported yet, not forwarded",
			  d->recipient, rcpts.remote_count);
	}
	/* The lookups below reuse the directory pool: copy the ids. */
	ids = p_new(ctx->pool, uint64_t, rcpts.account_count + 1);
	if (rcpts.account_count > 0) {
		memcpy(ids, rcpts.account_ids,
		       sizeof(*ids) * rcpts.account_count);
	}
	targets = p_new(ctx->pool, struct cli_deliver_target,
			rcpts.account_count + 1);
	for (unsigned int i = 0; i < rcpts.account_count; i++) {
		ret = directory_account_lookup_id(ctx->dir, ids[i], &account,
						  &error);
		if (ret < 0) {
			cli_error("cannot look up account %" PRIu64 ": %s",
				  ids[i], error);
			return EX_TEMPFAIL;
		}
		if (ret == 0)
			continue; /* deleted meanwhile */
		if (account.disabled) {
			/* "user disable" refuses mail too. */
			cli_error("warning: account %s is disabled: not "
				  "delivered to it",
				  account.address);
			disabled++;
			continue;
		}
		targets[count].id = account.id;
		targets[count].account_dir =
			p_strdup_printf(ctx->pool, "%s/accounts/%" PRIu64,
					ctx->data_dir, account.id);
		memcpy(targets[count].public_key, account.public_key,
		       sizeof(targets[count].public_key));
		count++;
	}
	if (count == 0 && rcpts.remote_count > 0 && disabled == 0) {
		cli_error("%s has no local recipient: try again once "
			  "forwarding is supported",
			  d->recipient);
		return EX_TEMPFAIL;
	}
	if (count == 0) {
		cli_error("no such recipient: %s (no enabled local account)",
			  d->recipient);
		return EX_NOUSER;
	}
	*targets_r = targets;
	*count_r = count;
	return CLI_EXIT_OK;
}

/* Appends one message to the spool of every target. Returns CLI_EXIT_OK
   once all are durable, or EX_TEMPFAIL (printed). */
/* A local delivery agent gets Unix line ends (an MTA pipes them so, an
   mbox holds them so), but a stored message is RFC 5322 text: lines end
   in CRLF (RFC 5322 2.1), which IMAP sends and RFC822.SIZE counts (RFC
   9051 2.3.4). Appends data to dest with each bare LF made CRLF; returns
   false (dest untouched) when there is none. */
static bool cli_deliver_crlf(struct buf *dest, const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size, *lf;
	bool bare = false;

	for (lf = memchr(p, '\n', size); lf != NULL;
	     lf = memchr(lf + 1, '\n', (size_t)(end - lf - 1))) {
		if (lf == data || lf[-1] != '\r') {
			bare = true;
			break;
		}
	}
	if (!bare)
		return false;
	while (p < end) {
		lf = memchr(p, '\n', (size_t)(end - p));
		if (lf == NULL) {
			buf_append(dest, p, (size_t)(end - p));
			break;
		}
		buf_append(dest, p, (size_t)(lf - p));
		if (lf == data || lf[-1] != '\r')
			buf_append_c(dest, '\r');
		buf_append_c(dest, '\n');
		p = lf + 1;
	}
	return true;
}

static int cli_deliver_append(const struct cli_deliver *d,
			      const struct cli_deliver_target *targets,
			      unsigned int count, const char *sender,
			      const uint8_t *data, size_t size)
{
	struct spool_record record;
	uint8_t id[SPOOL_RECORD_ID_LEN];
	const char *error;
	struct buf crlf = BUF_INIT;
	int ret = CLI_EXIT_OK;

	if (cli_deliver_crlf(&crlf, data, size)) {
		struct span converted = buf_span(&crlf);

		data = converted.p;
		size = converted.len;
	}

	memset(&record, 0, sizeof(record));
	record.received = (int64_t)time(NULL);
	record.sender = sender;
	record.recipient = d->recipient;
	record.mailbox = d->mailbox;
	record.message = data;
	record.message_len = size;
	for (unsigned int i = 0; i < count; i++) {
		if (spool_append(targets[i].account_dir, targets[i].public_key,
				 &record, id, &error) < 0) {
			/* Earlier accounts have it already: a retry by the
			   caller duplicates it there, as with any LDA. */
			cli_error("delivery to account %" PRIu64 " failed: %s",
				  targets[i].id, error);
			ret = EX_TEMPFAIL;
			break;
		}
	}
	buf_free(&crlf);
	return ret;
}

/* The Message-ID header of a message (unfolded, trimmed, control
   characters replaced by '?', at most CLI_DELIVER_MSGID_MAX bytes), or
   NULL if it has none. */
static const char *cli_deliver_message_id(pool_t pool, const uint8_t *data,
					  size_t size)
{
	static const char name[] = "message-id:";
	const size_t name_len = sizeof(name) - 1;
	const uint8_t *p = data, *end = data + size;

	while (p < end) {
		const uint8_t *eol = memchr(p, '\n', (size_t)(end - p));
		const uint8_t *line_end = eol != NULL ? eol : end;

		if (line_end == p || (line_end == p + 1 && *p == '\r'))
			return NULL; /* end of the header */
		if ((size_t)(line_end - p) >= name_len &&
		    strncasecmp((const char *)p, name, name_len) == 0) {
			/* The value, with its continuation lines. */
			const uint8_t *v = p + name_len;
			const uint8_t *v_end = line_end;

			while (v_end < end && v_end + 1 < end &&
			       (v_end[1] == ' ' || v_end[1] == '\t')) {
				const uint8_t *next =
					memchr(v_end + 1, '\n',
					       (size_t)(end - v_end - 1));
				v_end = next != NULL ? next : end;
			}
			char *out = p_malloc(pool, CLI_DELIVER_MSGID_MAX + 1);
			size_t len = 0;
			for (; v < v_end && len < CLI_DELIVER_MSGID_MAX; v++) {
				if (*v == '\r' || *v == '\n')
					continue;
				if ((*v == ' ' || *v == '\t') &&
				    (len == 0 || out[len - 1] == ' '))
					continue;
				out[len++] = *v == '\t' ? ' '
					     : *v < 0x20 || *v == 0x7f
						     ? '?'
						     : (char)*v;
			}
			while (len > 0 && out[len - 1] == ' ')
				len--;
			out[len] = '\0';
			return len > 0 ? out : NULL;
		}
		if (eol == NULL)
			break;
		p = eol + 1;
	}
	return NULL;
}

/* The envelope sender of an mbox message: --from, else its From_ line's
   sender ("MAILER-DAEMON" and anything unusable as a reverse-path are
   the null sender). */
static const char *cli_deliver_mbox_sender(const struct cli_deliver *d,
					   const struct mbox_message *msg)
{
	const char *s = msg->sender;

	if (d->have_sender)
		return d->sender;
	if (s == NULL || strcasecmp(s, "MAILER-DAEMON") == 0 ||
	    strlen(s) > CLI_DELIVER_SENDER_MAX || !cli_deliver_text_ok(s) ||
	    strchr(s, ' ') != NULL)
		return "";
	return s;
}

/* --mbox: delivers every message, printing a line for each durable one. */
static int cli_deliver_mbox(const struct cli_deliver *d,
			    const struct cli_deliver_target *targets,
			    unsigned int count)
{
	struct mbox_reader *reader =
		mbox_reader_create(d->mbox, MBOX_FORMAT_MBOXRD);
	struct mbox_message msg;
	pool_t pool = pool_create("deliver-mbox", 4096);
	uint64_t n = 0, refused = 0;
	const char *error;
	int ret = CLI_EXIT_OK, r;

	while ((r = mbox_reader_next(reader, &msg, &error)) > 0) {
		n++;
		pool_clear(pool);
		const char *msgid =
			cli_deliver_message_id(pool, msg.data, msg.size);
		if (msg.size > CLI_DELIVER_MAX_SIZE) {
			cli_error("message %" PRIu64 " (line %" PRIu64
				  ") is too large (more than %u MiB): not "
				  "delivered",
				  n, msg.line,
				  CLI_DELIVER_MAX_SIZE / (1024 * 1024));
			refused++;
			continue;
		}
		if (msg.size == 0) {
			cli_error("message %" PRIu64 " (line %" PRIu64
				  ") is empty: not delivered",
				  n, msg.line);
			refused++;
			continue;
		}
		ret = cli_deliver_append(d, targets, count,
					 cli_deliver_mbox_sender(d, &msg),
					 msg.data, msg.size);
		if (ret != CLI_EXIT_OK) {
			cli_error("stopped at message %" PRIu64
				  " (line %" PRIu64
				  "): it and the rest are not delivered",
				  n, msg.line);
			break;
		}
		/* The acknowledgement: durable, then said, then flushed. */
		if (printf("delivered %" PRIu64 " %s\n", n,
			   msgid != NULL ? msgid : "-") < 0 ||
		    fflush(stdout) != 0) {
			cli_error("writing to stdout failed: %s",
				  strerror(errno));
			ret = CLI_EXIT_FAILURE;
			break;
		}
	}
	if (r < 0) {
		cli_error("%s: %s (after %" PRIu64 " messages)", d->mbox_path,
			  error, n);
		ret = CLI_EXIT_FAILURE;
	} else if (ret == CLI_EXIT_OK && n == 0) {
		cli_error("no message in %s", d->mbox_path);
		ret = CLI_EXIT_FAILURE;
	} else if (ret == CLI_EXIT_OK && refused > 0) {
		ret = CLI_EXIT_FAILURE;
	}
	mbox_reader_destroy(&reader);
	pool_unref(&pool);
	return ret;
}

int cli_deliver_run(struct cli_context *ctx)
{
	const struct cli_deliver *d = ctx->cmd_data;
	struct cli_deliver_target *targets = NULL;
	struct buf msg = BUF_INIT;
	unsigned int count = 0;
	int ret;

	if (d->mbox != NULL) {
		ret = cli_deliver_resolve(ctx, d, &targets, &count);
		if (ret == CLI_EXIT_OK)
			ret = cli_deliver_mbox(d, targets, count);
		cli_deliver_mbox_close();
		return ret;
	}
	/* Read first, as an LDA does: the sender never sees a broken pipe. */
	ret = cli_deliver_read(&msg);
	if (ret == CLI_EXIT_OK)
		ret = cli_deliver_resolve(ctx, d, &targets, &count);
	if (ret == CLI_EXIT_OK)
		ret = cli_deliver_append(d, targets, count, d->sender,
					 buf_span(&msg).p, msg.used);
	buf_free_secure(&msg);
	return ret;
}

/* ---- store count (hidden; for tests) ---- */

static int cli_store_count_blob(const uint8_t blob_id[32], uint64_t size,
				void *context)
{
	unsigned int *count = context;

	(void)blob_id;
	(void)size;
	(*count)++;
	return 0;
}

int cli_store_count_run(struct cli_context *ctx)
{
	struct directory_account account;
	struct account_keys keys;
	struct store_mailbox *boxes;
	struct store *store;
	unsigned int box_count, blobs = 0;
	uint64_t total = 0;
	const char *address, *error;
	int ret;

	address = mail_address_normalize(ctx->pool, ctx->args[0], NULL, NULL,
					 &error);
	if (address == NULL) {
		cli_error("invalid address '%s': %s", ctx->args[0], error);
		return CLI_EXIT_FAILURE;
	}
	ret = directory_account_lookup(ctx->dir, address, &account, &error);
	if (ret <= 0) {
		if (ret < 0)
			cli_error("%s", error);
		else
			cli_error("user %s does not exist", address);
		return CLI_EXIT_FAILURE;
	}
	if (account.zero_access) {
		cli_error("%s is a zero-access account: its keys need the "
			  "user's password",
			  address);
		return CLI_EXIT_FAILURE;
	}
	if (account_keys_unwrap(ctx->master_key, account.id, account.public_key,
				account.wrapped_keys,
				sizeof(account.wrapped_keys), &keys) < 0) {
		cli_error("the keys of %s do not open with this master key",
			  address);
		return CLI_EXIT_FAILURE;
	}
	store = store_open(ctx->data_dir, account.id, keys.data_key, &error);
	account_keys_clear(&keys);
	if (store == NULL) {
		cli_error("cannot open the store of %s: %s", address, error);
		return CLI_EXIT_FAILURE;
	}
	if (store_mailbox_list(store, ctx->pool, &boxes, &box_count, &error) <
		    0 ||
	    store_foreach_blob(store, cli_store_count_blob, &blobs, &error) <
		    0) {
		cli_error("cannot read the store of %s: %s", address, error);
		store_close(&store);
		return CLI_EXIT_FAILURE;
	}
	for (unsigned int i = 0; i < box_count; i++) {
		printf("%s\t%u\n", boxes[i].name, boxes[i].messages);
		total += boxes[i].messages;
	}
	printf("total\t%" PRIu64 "\nblobs\t%u\n", total, blobs);
	store_close(&store);
	return CLI_EXIT_OK;
}
