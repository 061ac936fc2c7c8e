/* cli-deliver.c - `marmot deliver ADDRESS [--from SENDER] [--mailbox NAME]`,
   the local delivery agent (as dovecot-lda is): reads one message from
   stdin, resolves ADDRESS through the directory (accounts, aliases, +tag,
   catch-all) and appends a sealed record to the spool of every local
   account it reaches (spool.h); the vault merges it from there. Also the
   hidden `marmot store count ADDRESS`, which the integration tests use to
   see what the merge stored. Called only from main.c's command table.

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
   and wiped from memory afterwards. `store count` prints only counts and
   needs the master key (root, as the other key commands). */

#include "lib.h"
#include "cli.h"
#include "buf.h"
#include "directory.h"
#include "mail-address.h"
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

struct cli_deliver {
	const char *sender; /* "" = null sender */
	const char *mailbox; /* "" = INBOX */
	const char *recipient; /* normalised if valid, else as given */
};

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

int cli_deliver_run(struct cli_context *ctx)
{
	const struct cli_deliver *d = ctx->cmd_data;
	struct cli_deliver_target *targets = NULL;
	struct spool_record record;
	struct buf msg = BUF_INIT;
	uint8_t id[SPOOL_RECORD_ID_LEN];
	unsigned int count = 0;
	const char *error;
	int ret;

	/* Read first, as an LDA does: the sender never sees a broken pipe. */
	ret = cli_deliver_read(&msg);
	if (ret == CLI_EXIT_OK)
		ret = cli_deliver_resolve(ctx, d, &targets, &count);
	if (ret != CLI_EXIT_OK) {
		buf_free_secure(&msg);
		return ret;
	}

	memset(&record, 0, sizeof(record));
	record.received = (int64_t)time(NULL);
	record.sender = d->sender;
	record.recipient = d->recipient;
	record.mailbox = d->mailbox;
	record.message = buf_span(&msg).p;
	record.message_len = msg.used;
	for (unsigned int i = 0; i < count; i++) {
		const char *account_dir =
			p_strdup_printf(ctx->pool, "%s/accounts/%" PRIu64,
					ctx->data_dir, targets[i].id);

		if (spool_append(account_dir, targets[i].public_key, &record,
				 id, &error) < 0) {
			/* Earlier accounts have it already: a retry by the
			   caller duplicates it there, as with any LDA. */
			cli_error("delivery to account %" PRIu64 " failed: %s",
				  targets[i].id, error);
			buf_free_secure(&msg);
			return EX_TEMPFAIL;
		}
	}
	buf_free_secure(&msg);
	return CLI_EXIT_OK;
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
