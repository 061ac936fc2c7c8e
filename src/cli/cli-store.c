/* cli-store.c - the mail store commands of the `marmot` CLI: import and
   export (mbox, Maildir++), store stats, store verify, store list (one
   line per message: mailbox, UIDVALIDITY, UID, Message-ID from the cached
   ENVELOPE, size) and store gc (the
   blob collector, blob-gc.h, with its hour-long age guard: safe while the
   vault or an import writes the same account). The CLI acts as
   the operator: main.c loads master.key (as root) and drops to the data
   directory's owner; here the account's keys are unwrapped and its store
   and blob store opened directly through store.h and blob.h, the same API
   the vault uses (SQLite WAL lets both work on one store at once). Keys
   are wiped as soon as the store and blob store hold their copies. A
   zero-access account's keys do not open with master.key: every command
   refuses it unless the user's password is given with --password-stdin
   (doc/zero-access.md).

   Import: every message is written as a blob (durable) and indexed, then
   appended in batches with store_append_many(), one transaction each;
   mailboxes are created as needed, parents first. The account's quota is
   not enforced: an import is an operator's action.
   Export: `--mbox FILE --mailbox NAME` writes one mbox; `--mbox DIR`
   without --mailbox writes every mailbox as DIR/NAME.mbox ("A/B" becomes
   DIR/A/B.mbox), which `import --mbox DIR` reads back; `--maildir DIR`
   writes a Maildir++ tree (INBOX at the root). The target must not exist.
   Files named on the command line are opened after root is dropped,
   except an mbox file to import, which is opened first (so root may
   import a file only root can read). Called only from main.c's command
   table. */

#include "lib.h"
#include "cli.h"
#include "buf.h"
#include "directory.h"
#include "mail-address.h"
#include "mail-flags.h"
#include "maildir.h"
#include "mbox.h"
#include "message-index.h"
#include "password.h"
#include "blob.h"
#include "blob-gc.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert((int)STORE_FLAG_SEEN == MAIL_FLAG_SEEN &&
		       (int)STORE_FLAG_ANSWERED == MAIL_FLAG_ANSWERED &&
		       (int)STORE_FLAG_FLAGGED == MAIL_FLAG_FLAGGED &&
		       (int)STORE_FLAG_DELETED == MAIL_FLAG_DELETED &&
		       (int)STORE_FLAG_DRAFT == MAIL_FLAG_DRAFT,
	       "mail-flags.h and store.h disagree");

/* One store_append_many() transaction: this many messages or bytes. */
#define CLI_IMPORT_BATCH 200
#define CLI_IMPORT_BATCH_BYTES (32u * 1024 * 1024)
/* UIDs per store_fetch() while exporting. */
#define CLI_EXPORT_UID_CHUNK 2000

struct cli_store_data {
	FILE *mbox; /* import --mbox FILE, opened by check */
	bool mbox_is_dir;
};

struct cli_account_store {
	struct directory_account account;
	const char *account_dir;
	struct store *store;
	struct blob_store *blobs;
};

/* ---- opening ---- */

/* Unwraps a zero-access account's keys with the password on stdin. */
static int cli_zero_access_keys(struct cli_context *ctx,
				const struct directory_account *account,
				struct account_keys *keys_r)
{
	const char *error;
	char *password;
	int ret;

	if (ctx->opt[CLI_OPT_PASSWORD_STDIN] == NULL) {
		cli_error("%s is a zero-access account: its keys need the "
			  "user's password (give it with --password-stdin)",
			  ctx->address);
		return -1;
	}
	password = password_read_fd(STDIN_FILENO, &error);
	if (password == NULL) {
		cli_error("cannot read the password from stdin: %s", error);
		return -1;
	}
	ret = directory_account_keys(account, NULL, password, strlen(password),
				     keys_r);
	safe_memset0(password, strlen(password));
	i_free(password);
	if (ret < 0) {
		cli_error("the keys of %s do not open with this password "
			  "(wrong password, or a damaged directory.db)",
			  ctx->address);
		return -1;
	}
	return 0;
}

static int cli_account_store_open(struct cli_context *ctx,
				  struct cli_account_store *as)
{
	struct account_keys keys;
	const char *error;
	int ret;

	memset(as, 0, sizeof(*as));
	i_assert(ctx->have_master_key);
	ret = directory_account_lookup(ctx->dir, ctx->address, &as->account,
				       &error);
	if (ret < 0) {
		cli_error("%s", error);
		return -1;
	}
	if (ret == 0) {
		cli_error("user %s does not exist", ctx->address);
		return -1;
	}
	if (as->account.zero_access) {
		if (cli_zero_access_keys(ctx, &as->account, &keys) < 0)
			return -1;
	} else if (account_keys_unwrap(ctx->master_key, as->account.id,
				       as->account.public_key,
				       as->account.wrapped_keys,
				       ACCOUNT_WRAPPED_LEN, &keys) < 0) {
		cli_error("the keys of %s do not unwrap with this master.key "
			  "(wrong master key, or a damaged directory.db)",
			  ctx->address);
		return -1;
	}
	as->account_dir =
		p_strdup_printf(ctx->pool, "%s/accounts/%llu", ctx->data_dir,
				(unsigned long long)as->account.id);
	as->store = store_open(ctx->data_dir, as->account.id, keys.data_key,
			       &error);
	if (as->store == NULL) {
		account_keys_clear(&keys);
		cli_error("cannot open the store of %s: %s", ctx->address,
			  error);
		return -1;
	}
	as->blobs = blob_store_open(as->account_dir, keys.data_key, &error);
	account_keys_clear(&keys);
	if (as->blobs == NULL) {
		store_close(&as->store);
		cli_error("cannot open the blobs of %s: %s", ctx->address,
			  error);
		return -1;
	}
	return 0;
}

static void cli_account_store_close(struct cli_account_store *as)
{
	if (as->blobs != NULL)
		blob_store_close(&as->blobs);
	if (as->store != NULL)
		store_close(&as->store);
}

/* ---- checks ---- */

static int cli_store_arg_address(struct cli_context *ctx)
{
	const char *error;

	ctx->address = mail_address_normalize(ctx->pool, ctx->args[0], NULL,
					      NULL, &error);
	if (ctx->address == NULL) {
		cli_error("invalid address '%s': %s", ctx->args[0], error);
		return CLI_EXIT_FAILURE;
	}
	return CLI_EXIT_OK;
}

int cli_store_mailbox_check(struct cli_context *ctx)
{
	const char *mailbox = ctx->opt[CLI_OPT_MAILBOX];

	if (mailbox != NULL &&
	    (mailbox[0] == '\0' || strpbrk(mailbox, "\r\n") != NULL))
		return cli_usage_error(ctx, "invalid --mailbox name");
	return cli_store_arg_address(ctx);
}

static int cli_store_check_source(struct cli_context *ctx)
{
	const char *mbox = ctx->opt[CLI_OPT_MBOX];
	const char *maildir = ctx->opt[CLI_OPT_MAILDIR];

	if ((mbox == NULL) == (maildir == NULL))
		return cli_usage_error(ctx, "give exactly one of --mbox FILE "
					    "and --maildir DIR");
	if ((mbox != NULL && mbox[0] == '\0') ||
	    (maildir != NULL && maildir[0] == '\0'))
		return cli_usage_error(ctx, "empty file name");
	return cli_store_mailbox_check(ctx);
}

static FILE *cli_import_mbox_pending;

static void cli_import_mbox_close(void)
{
	if (cli_import_mbox_pending != NULL)
		fclose(cli_import_mbox_pending);
	cli_import_mbox_pending = NULL;
}

int cli_import_check(struct cli_context *ctx)
{
	struct cli_store_data *data =
		p_new(ctx->pool, struct cli_store_data, 1);
	const char *path = ctx->opt[CLI_OPT_MBOX];
	struct stat st;
	int ret;

	if ((ret = cli_store_check_source(ctx)) != 0)
		return ret;
	if (ctx->opt[CLI_OPT_MAILDIR] != NULL &&
	    ctx->opt[CLI_OPT_MAILBOX] != NULL)
		return cli_usage_error(ctx, "--mailbox applies to --mbox only "
					    "(a Maildir's folders name the "
					    "mailboxes)");
	ctx->cmd_data = data;
	if (path == NULL)
		return CLI_EXIT_OK;
	if (stat(path, &st) < 0) {
		cli_error("cannot access %s: %s", path, strerror(errno));
		return CLI_EXIT_FAILURE;
	}
	if (S_ISDIR(st.st_mode)) {
		if (ctx->opt[CLI_OPT_MAILBOX] != NULL)
			return cli_usage_error(ctx,
					       "--mailbox needs an mbox file, "
					       "%s is a directory",
					       path);
		data->mbox_is_dir = true;
		return CLI_EXIT_OK;
	}
	/* Opened before root is dropped: reading touches nothing. */
	data->mbox = fopen(path, "re");
	if (data->mbox == NULL) {
		cli_error("cannot open %s: %s", path, strerror(errno));
		return CLI_EXIT_FAILURE;
	}
	/* main.c may fail before run() (data directory, privileges). */
	cli_import_mbox_pending = data->mbox;
	atexit(cli_import_mbox_close);
	return CLI_EXIT_OK;
}

int cli_export_check(struct cli_context *ctx)
{
	const char *path = ctx->opt[CLI_OPT_MBOX] != NULL
				   ? ctx->opt[CLI_OPT_MBOX]
				   : ctx->opt[CLI_OPT_MAILDIR];
	struct stat st;
	int ret;

	if ((ret = cli_store_check_source(ctx)) != 0)
		return ret;
	if (lstat(path, &st) == 0) {
		cli_error("%s already exists; export writes a new file or "
			  "directory",
			  path);
		return CLI_EXIT_FAILURE;
	}
	return CLI_EXIT_OK;
}

int cli_store_check(struct cli_context *ctx)
{
	return cli_store_arg_address(ctx);
}

/* ---- import ---- */

struct cli_import {
	struct cli_context *ctx;
	struct cli_account_store *as;
	pool_t batch_pool;
	struct store_append appends[CLI_IMPORT_BATCH];
	uint32_t uids[CLI_IMPORT_BATCH];
	unsigned int count;
	uint64_t batch_bytes;
	/* mailbox name -> id, the last one looked up */
	const char *box_name;
	uint64_t box_id;
	/* summary */
	uint64_t messages, bytes, new_blobs, new_blob_bytes;
	unsigned int mailboxes_created;
};

static int cli_import_flush(struct cli_import *imp)
{
	const char *error;

	if (imp->count == 0)
		return 0;
	if (store_append_many(imp->as->store, imp->appends, imp->count,
			      imp->uids, &error) < 0) {
		cli_error("cannot append %u messages: %s", imp->count, error);
		return -1;
	}
	imp->messages += imp->count;
	imp->count = 0;
	imp->batch_bytes = 0;
	pool_clear(imp->batch_pool);
	return 0;
}

/* Looks the mailbox up, creating it and its missing parents. */
static int cli_import_mailbox(struct cli_import *imp, const char *name,
			      uint64_t *id_r)
{
	struct store *store = imp->as->store;
	struct store_mailbox box;
	const char *error;
	int ret;

	if (imp->box_name != NULL && strcmp(imp->box_name, name) == 0) {
		*id_r = imp->box_id;
		return 0;
	}
	for (const char *p = name;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		const char *prefix =
			p_strndup(imp->ctx->pool, name, (size_t)(p - name));
		ret = store_mailbox_lookup(store, prefix, imp->ctx->pool, &box,
					   &error);
		if (ret == 0) {
			if (store_mailbox_create(store, prefix,
						 STORE_SPECIAL_NONE, &box.id,
						 &error) < 0) {
				cli_error("cannot create mailbox '%s': %s",
					  prefix, error);
				return -1;
			}
			imp->mailboxes_created++;
		} else if (ret < 0) {
			cli_error("cannot look up mailbox '%s': %s", prefix,
				  error);
			return -1;
		}
		if (*p == '\0')
			break;
	}
	imp->box_name = p_strdup(imp->ctx->pool, name);
	imp->box_id = box.id;
	*id_r = box.id;
	return 0;
}

static int cli_import_message(struct cli_import *imp, const char *mailbox,
			      const uint8_t *data, size_t size,
			      int64_t internaldate, uint32_t flags,
			      const char *const *keywords)
{
	struct store_append *app;
	struct message_index *index;
	uint64_t mailbox_id, file_size = 0;
	const char *error;
	unsigned int kw_count = 0;
	int ret;

	if (cli_import_mailbox(imp, mailbox, &mailbox_id) < 0)
		return -1;
	app = &imp->appends[imp->count];
	memset(app, 0, sizeof(*app));
	/* The blob is durable before the commit that references it. */
	ret = blob_put(imp->as->blobs, data, size, app->blob_id, &file_size,
		       &error);
	if (ret < 0) {
		cli_error("cannot store a message of %zu bytes: %s", size,
			  error);
		return -1;
	}
	if (ret > 0) {
		imp->new_blobs++;
		imp->new_blob_bytes += file_size;
	}
	index = p_new(imp->batch_pool, struct message_index, 1);
	message_index_build(imp->batch_pool, data, size, index);
	while (keywords != NULL && keywords[kw_count] != NULL)
		kw_count++;
	const char **kw = p_new(imp->batch_pool, const char *, kw_count + 1);
	for (unsigned int i = 0; i < kw_count; i++)
		kw[i] = p_strdup(imp->batch_pool, keywords[i]);

	app->mailbox_id = mailbox_id;
	app->flags = flags & MAIL_FLAGS_MASK;
	app->keywords = kw;
	app->internaldate = internaldate;
	app->size = size;
	app->index = index;
	imp->count++;
	imp->bytes += size;
	imp->batch_bytes += size;
	if (imp->count == CLI_IMPORT_BATCH ||
	    imp->batch_bytes >= CLI_IMPORT_BATCH_BYTES)
		return cli_import_flush(imp);
	return 0;
}

static int cli_import_mbox_file(struct cli_import *imp, FILE *f,
				const char *path, const char *mailbox)
{
	struct mbox_reader *reader = mbox_reader_create(f, MBOX_FORMAT_MBOXRD);
	struct mbox_message msg;
	const char *error;
	int ret;

	while ((ret = mbox_reader_next(reader, &msg, &error)) > 0) {
		if (cli_import_message(imp, mailbox, msg.data, msg.size,
				       msg.internaldate, msg.flags,
				       msg.keywords) < 0) {
			cli_error("(the message at %s line %llu)", path,
				  (unsigned long long)msg.line);
			ret = -2;
			break;
		}
	}
	if (ret == -1)
		cli_error("%s: %s", path, error);
	mbox_reader_destroy(&reader);
	return ret < 0 ? -1 : 0;
}

/* import --mbox DIR: DIR/NAME.mbox is mailbox NAME, DIR/A/B.mbox is
   "A/B" (what export --mbox DIR writes). */
static int cli_import_mbox_dir(struct cli_import *imp, const char *dir_path,
			       const char *prefix)
{
	struct dirent **names;
	int n = scandir(dir_path, &names, NULL, alphasort);
	int ret = 0;

	if (n < 0) {
		cli_error("cannot read %s: %s", dir_path, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		size_t len = strlen(name);
		struct stat st;

		if (ret < 0 || name[0] == '.')
			continue;
		const char *path = p_strdup_printf(imp->ctx->pool, "%s/%s",
						   dir_path, name);
		if (stat(path, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			const char *sub =
				prefix == NULL ? name
					       : p_strdup_printf(imp->ctx->pool,
								 "%s/%s",
								 prefix, name);
			ret = cli_import_mbox_dir(imp, path, sub);
			continue;
		}
		if (len <= 5 || strcmp(name + len - 5, ".mbox") != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		const char *box = p_strndup(imp->ctx->pool, name, len - 5);
		if (prefix != NULL)
			box = p_strdup_printf(imp->ctx->pool, "%s/%s", prefix,
					      box);
		FILE *f = fopen(path, "re");
		if (f == NULL) {
			cli_error("cannot open %s: %s", path, strerror(errno));
			ret = -1;
			continue;
		}
		ret = cli_import_mbox_file(imp, f, path, box);
		fclose(f);
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return ret;
}

static int cli_import_maildir(struct cli_import *imp, const char *root)
{
	pool_t pool = pool_create("maildir import", 4096);
	struct maildir_folder *folders;
	unsigned int count;
	struct buf data = BUF_INIT;
	const char *error;
	int ret = 0;

	if (maildir_folders(pool, root, &folders, &count, &error) < 0) {
		cli_error("%s", error);
		pool_unref(&pool);
		return -1;
	}
	if (count == 0) {
		cli_error("%s is not a Maildir (no cur/ or new/ in it or in "
			  "any .FOLDER)",
			  root);
		pool_unref(&pool);
		return -1;
	}
	for (unsigned int f = 0; f < count && ret == 0; f++) {
		struct maildir_message *msgs;
		unsigned int n;

		if (maildir_messages(pool, &folders[f], &msgs, &n, &error) <
		    0) {
			cli_error("%s", error);
			ret = -1;
			break;
		}
		for (unsigned int m = 0; m < n && ret == 0; m++) {
			buf_reset(&data);
			if (maildir_read_file(pool, msgs[m].path, &data,
					      &error) < 0) {
				cli_error("%s", error);
				ret = -1;
				break;
			}
			ret = cli_import_message(
				imp, folders[f].name, buf_span(&data).p,
				data.used, msgs[m].internaldate, msgs[m].flags,
				msgs[m].keywords);
		}
	}
	buf_free(&data);
	pool_unref(&pool);
	return ret;
}

int cli_import_run(struct cli_context *ctx)
{
	struct cli_store_data *data = ctx->cmd_data;
	struct cli_account_store as;
	struct cli_import imp;
	int ret;

	if (cli_account_store_open(ctx, &as) < 0) {
		cli_import_mbox_close();
		return CLI_EXIT_FAILURE;
	}
	memset(&imp, 0, sizeof(imp));
	imp.ctx = ctx;
	imp.as = &as;
	imp.batch_pool = pool_create("import batch", 65536);

	if (ctx->opt[CLI_OPT_MAILDIR] != NULL) {
		ret = cli_import_maildir(&imp, ctx->opt[CLI_OPT_MAILDIR]);
	} else if (data->mbox_is_dir) {
		ret = cli_import_mbox_dir(&imp, ctx->opt[CLI_OPT_MBOX], NULL);
	} else {
		const char *box = ctx->opt[CLI_OPT_MAILBOX] != NULL
					  ? ctx->opt[CLI_OPT_MAILBOX]
					  : "INBOX";
		ret = cli_import_mbox_file(&imp, data->mbox,
					   ctx->opt[CLI_OPT_MBOX], box);
	}
	/* On failure, the batches committed so far stay: each is whole. */
	if (ret == 0)
		ret = cli_import_flush(&imp);
	else
		cli_error("import stopped; the messages counted below were "
			  "imported");
	cli_import_mbox_close();
	printf("imported %llu messages (%llu bytes) into %s; %u mailboxes "
	       "created; %llu new blobs (%llu bytes on disk)\n",
	       (unsigned long long)imp.messages, (unsigned long long)imp.bytes,
	       ctx->address, imp.mailboxes_created,
	       (unsigned long long)imp.new_blobs,
	       (unsigned long long)imp.new_blob_bytes);
	pool_unref(&imp.batch_pool);
	cli_account_store_close(&as);
	return ret < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

/* ---- export ---- */

struct cli_export {
	struct cli_context *ctx;
	struct cli_account_store *as;
	uint64_t messages, bytes;
	unsigned int mailboxes;
	unsigned int dropped_keywords;
};

/* Calls cb for every message of box with its bytes, in UID order. */
static int cli_export_mailbox(struct cli_export *exp,
			      const struct store_mailbox *box,
			      int (*cb)(struct cli_export *exp,
					const struct store_message *msg,
					const struct buf *data, void *context),
			      void *context)
{
	pool_t pool = pool_create("export", 65536);
	struct buf data = BUF_INIT;
	const char *error;
	int ret = 0;

	for (uint64_t lo = 1; lo < box->uidnext && ret == 0;
	     lo += CLI_EXPORT_UID_CHUNK) {
		struct store_message *msgs;
		unsigned int count;
		uint64_t hi = lo + CLI_EXPORT_UID_CHUNK - 1;

		pool_clear(pool);
		if (hi > UINT32_MAX)
			hi = UINT32_MAX;
		if (store_fetch(exp->as->store, box->id, (uint32_t)lo,
				(uint32_t)hi, pool, &msgs, &count,
				&error) < 0) {
			cli_error("cannot read mailbox '%s': %s", box->name,
				  error);
			ret = -1;
			break;
		}
		for (unsigned int i = 0; i < count && ret == 0; i++) {
			buf_reset(&data);
			if (blob_get(exp->as->blobs, msgs[i].blob_id, &data,
				     &error) < 0) {
				cli_error("mailbox '%s' UID %u: %s", box->name,
					  msgs[i].uid, error);
				ret = -1;
				break;
			}
			ret = cb(exp, &msgs[i], &data, context);
			exp->messages++;
			exp->bytes += data.used;
		}
		if (hi == UINT32_MAX)
			break;
	}
	buf_free(&data);
	pool_unref(&pool);
	exp->mailboxes++;
	return ret;
}

static int cli_write_file(FILE *f, const char *path, const struct buf *b)
{
	if (b->used > 0 && fwrite(buf_span(b).p, 1, b->used, f) != b->used) {
		cli_error("cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

struct cli_mbox_out {
	FILE *f;
	const char *path;
	struct buf out;
};

static int cli_export_mbox_cb(struct cli_export *exp,
			      const struct store_message *msg,
			      const struct buf *data, void *context)
{
	struct cli_mbox_out *mo = context;

	(void)exp;
	buf_reset(&mo->out);
	mbox_write_message(&mo->out, buf_span(data).p, data->used, NULL,
			   msg->internaldate, msg->flags, msg->keywords);
	return cli_write_file(mo->f, mo->path, &mo->out);
}

/* Creates path (O_EXCL, 0600) and writes the mailbox to it as mboxrd. */
static int cli_export_mbox_file(struct cli_export *exp,
				const struct store_mailbox *box,
				const char *path)
{
	struct cli_mbox_out mo = { NULL, path, BUF_INIT };
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int ret;

	if (fd < 0 || (mo.f = fdopen(fd, "w")) == NULL) {
		cli_error("cannot create %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	ret = cli_export_mailbox(exp, box, cli_export_mbox_cb, &mo);
	if (fflush(mo.f) != 0 || fsync(fileno(mo.f)) < 0) {
		if (ret == 0)
			cli_error("cannot write %s: %s", path, strerror(errno));
		ret = -1;
	}
	if (fclose(mo.f) != 0 && ret == 0) {
		cli_error("cannot write %s: %s", path, strerror(errno));
		ret = -1;
	}
	buf_free(&mo.out);
	return ret;
}

static int cli_mkdir(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		cli_error("cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* export --mbox DIR: DIR/A.mbox, DIR/A/B.mbox. Names are UTF-8 and never
   hold "." or ".." levels (store.h), so they are safe as paths. */
static int cli_export_mbox_dir(struct cli_export *exp, const char *dir,
			       const struct store_mailbox *boxes,
			       unsigned int count)
{
	if (cli_mkdir(dir) < 0)
		return -1;
	for (unsigned int i = 0; i < count; i++) {
		const char *name = boxes[i].name;

		if (strcmp(name, ".") == 0 || strstr(name, "..") != NULL) {
			cli_error("mailbox '%s' cannot be a file name; "
				  "export it with --mailbox",
				  name);
			return -1;
		}
		/* parents as directories */
		for (const char *p = strchr(name, '/'); p != NULL;
		     p = strchr(p + 1, '/')) {
			const char *sub =
				p_strdup_printf(exp->ctx->pool, "%s/%.*s", dir,
						(int)(p - name), name);
			if (cli_mkdir(sub) < 0)
				return -1;
		}
		const char *path = p_strdup_printf(exp->ctx->pool, "%s/%s.mbox",
						   dir, name);
		if (cli_export_mbox_file(exp, &boxes[i], path) < 0)
			return -1;
	}
	return 0;
}

static int cli_export_maildir_cb(struct cli_export *exp,
				 const struct store_message *msg,
				 const struct buf *data, void *context)
{
	struct maildir_writer *w = context;
	const char *error;

	if (maildir_writer_add(w, buf_span(data).p, data->used,
			       msg->internaldate, msg->flags, msg->keywords,
			       &error) < 0) {
		cli_error("%s", error);
		return -1;
	}
	(void)exp;
	return 0;
}

static int cli_export_maildir(struct cli_export *exp, const char *root,
			      const struct store_mailbox *boxes,
			      unsigned int count)
{
	const char *error;

	for (unsigned int i = 0; i < count; i++) {
		struct maildir_writer *w =
			maildir_writer_create(root, boxes[i].name, &error);
		if (w == NULL) {
			cli_error("%s", error);
			return -1;
		}
		int ret = cli_export_mailbox(exp, &boxes[i],
					     cli_export_maildir_cb, w);
		if (ret == 0 && maildir_writer_finish(w, &error) < 0) {
			cli_error("%s", error);
			ret = -1;
		}
		exp->dropped_keywords += maildir_writer_dropped_keywords(w);
		maildir_writer_destroy(&w);
		if (ret < 0)
			return -1;
	}
	return 0;
}

struct cli_each {
	int (*cb)(const struct buf *data, void *context);
	void *context;
};

static int cli_each_cb(struct cli_export *exp ATTR_UNUSED,
		       const struct store_message *msg ATTR_UNUSED,
		       const struct buf *data, void *context)
{
	struct cli_each *each = context;

	return each->cb(data, each->context);
}

int cli_store_each_message(struct cli_context *ctx, const char *mailbox,
			   int (*cb)(const struct buf *data, void *context),
			   void *context)
{
	struct cli_each each = { cb, context };
	struct cli_account_store as;
	struct cli_export exp;
	struct store_mailbox box;
	const char *error;
	int ret;

	if (cli_account_store_open(ctx, &as) < 0)
		return -1;
	ret = store_mailbox_lookup(as.store, mailbox, ctx->pool, &box, &error);
	if (ret <= 0) {
		cli_error(ret == 0 ? "no mailbox '%s' in %s"
				   : "cannot look up '%s' in %s: %s",
			  mailbox, ctx->address, ret == 0 ? "" : error);
		cli_account_store_close(&as);
		return -1;
	}
	memset(&exp, 0, sizeof(exp));
	exp.ctx = ctx;
	exp.as = &as;
	ret = cli_export_mailbox(&exp, &box, cli_each_cb, &each);
	cli_account_store_close(&as);
	return ret;
}

int cli_export_run(struct cli_context *ctx)
{
	const char *mailbox = ctx->opt[CLI_OPT_MAILBOX];
	struct cli_account_store as;
	struct cli_export exp;
	struct store_mailbox *boxes;
	unsigned int count;
	const char *error;
	int ret;

	if (cli_account_store_open(ctx, &as) < 0)
		return CLI_EXIT_FAILURE;
	memset(&exp, 0, sizeof(exp));
	exp.ctx = ctx;
	exp.as = &as;
	if (mailbox != NULL) {
		boxes = p_new(ctx->pool, struct store_mailbox, 1);
		ret = store_mailbox_lookup(as.store, mailbox, ctx->pool, boxes,
					   &error);
		if (ret <= 0) {
			cli_error(ret == 0 ? "no mailbox '%s' in %s"
					   : "cannot look up '%s' in %s: %s",
				  mailbox, ctx->address, ret == 0 ? "" : error);
			cli_account_store_close(&as);
			return CLI_EXIT_FAILURE;
		}
		count = 1;
	} else if (store_mailbox_list(as.store, ctx->pool, &boxes, &count,
				      &error) < 0) {
		cli_error("cannot list the mailboxes of %s: %s", ctx->address,
			  error);
		cli_account_store_close(&as);
		return CLI_EXIT_FAILURE;
	}

	if (ctx->opt[CLI_OPT_MAILDIR] != NULL)
		ret = cli_export_maildir(&exp, ctx->opt[CLI_OPT_MAILDIR], boxes,
					 count);
	else if (mailbox != NULL)
		ret = cli_export_mbox_file(&exp, boxes, ctx->opt[CLI_OPT_MBOX]);
	else
		ret = cli_export_mbox_dir(&exp, ctx->opt[CLI_OPT_MBOX], boxes,
					  count);
	cli_account_store_close(&as);
	if (exp.dropped_keywords > 0)
		cli_error("warning: %u keywords were dropped (a Maildir folder "
			  "holds at most %u)",
			  exp.dropped_keywords, MAILDIR_KEYWORDS_MAX);
	if (ret < 0)
		return CLI_EXIT_FAILURE;
	printf("exported %llu messages (%llu bytes) in %u mailboxes of %s "
	       "to %s\n",
	       (unsigned long long)exp.messages, (unsigned long long)exp.bytes,
	       exp.mailboxes, ctx->address,
	       ctx->opt[CLI_OPT_MAILDIR] != NULL ? ctx->opt[CLI_OPT_MAILDIR]
						 : ctx->opt[CLI_OPT_MBOX]);
	return CLI_EXIT_OK;
}

/* ---- stats ---- */

struct cli_blob_ref {
	uint8_t id[BLOB_ID_LEN];
	uint64_t size;
};

struct cli_stats {
	struct cli_blob_ref *refs;
	unsigned int count, alloc;
	uint64_t raw_stored; /* raw bytes of distinct referenced blobs */
	uint64_t ref_disk, ref_files; /* files of referenced blobs */
	uint64_t other_disk, other_files; /* unreferenced (collector's) */
};

static int cli_stats_ref_cb(const uint8_t blob_id[32], uint64_t size,
			    void *context)
{
	struct cli_stats *st = context;

	if (st->count == st->alloc) {
		st->alloc = st->alloc == 0 ? 1024 : st->alloc * 2;
		st->refs = i_realloc(st->refs,
				     i_size_mul(st->alloc, sizeof(*st->refs)));
	}
	memcpy(st->refs[st->count].id, blob_id, BLOB_ID_LEN);
	st->refs[st->count++].size = size;
	st->raw_stored += size;
	return 0;
}

static int cli_blob_ref_cmp(const void *a, const void *b)
{
	return memcmp(a, b, BLOB_ID_LEN);
}

static int cli_stats_file_cb(const uint8_t id[BLOB_ID_LEN], uint64_t file_size,
			     void *context)
{
	struct cli_stats *st = context;

	if (st->count > 0 && bsearch(id, st->refs, st->count, sizeof(*st->refs),
				     cli_blob_ref_cmp) != NULL) {
		st->ref_disk += file_size;
		st->ref_files++;
	} else {
		st->other_disk += file_size;
		st->other_files++;
	}
	return 0;
}

static double cli_percent(uint64_t part, uint64_t whole)
{
	return whole == 0 ? 0.0 : 100.0 * (double)part / (double)whole;
}

int cli_store_stats_run(struct cli_context *ctx)
{
	struct cli_account_store as;
	struct store_mailbox *boxes;
	struct cli_stats st;
	unsigned int count;
	uint64_t messages = 0, unseen = 0, size = 0;
	const char *error;
	int ret = CLI_EXIT_FAILURE;

	if (cli_account_store_open(ctx, &as) < 0)
		return CLI_EXIT_FAILURE;
	memset(&st, 0, sizeof(st));
	if (store_mailbox_list(as.store, ctx->pool, &boxes, &count, &error) <
		    0 ||
	    store_foreach_blob(as.store, cli_stats_ref_cb, &st, &error) < 0) {
		cli_error("cannot read the store of %s: %s", ctx->address,
			  error);
		goto out;
	}
	if (st.count > 0)
		qsort(st.refs, st.count, sizeof(*st.refs), cli_blob_ref_cmp);
	if (blob_foreach(as.blobs, cli_stats_file_cb, &st, &error) < 0) {
		cli_error("cannot list the blobs of %s: %s", ctx->address,
			  error);
		goto out;
	}

	printf("mailbox\tmessages\tunseen\tsize\n");
	for (unsigned int i = 0; i < count; i++) {
		printf("%s\t%u\t%u\t%llu\n", boxes[i].name, boxes[i].messages,
		       boxes[i].unseen, (unsigned long long)boxes[i].size);
		messages += boxes[i].messages;
		unseen += boxes[i].unseen;
		size += boxes[i].size;
	}
	printf("total\t%llu\t%llu\t%llu\n", (unsigned long long)messages,
	       (unsigned long long)unseen, (unsigned long long)size);
	printf("\n");
	/* size counts every copy; raw_stored each distinct blob once. */
	uint64_t dedup = size > st.raw_stored ? size - st.raw_stored : 0;
	printf("blobs: %u referenced, %llu files on disk\n", st.count,
	       (unsigned long long)(st.ref_files + st.other_files));
	printf("raw bytes referenced: %llu\n", (unsigned long long)size);
	printf("raw bytes stored: %llu\n", (unsigned long long)st.raw_stored);
	printf("bytes on disk: %llu\n", (unsigned long long)st.ref_disk);
	printf("compression: %.1f%% of raw (%.1f%% smaller)\n",
	       cli_percent(st.ref_disk, st.raw_stored),
	       st.raw_stored == 0
		       ? 0.0
		       : 100.0 - cli_percent(st.ref_disk, st.raw_stored));
	printf("dedup savings: %llu bytes (%.1f%%)\n",
	       (unsigned long long)dedup, cli_percent(dedup, size));
	printf("total savings: %.1f%% (on disk vs raw bytes referenced)\n",
	       size == 0 ? 0.0 : 100.0 - cli_percent(st.ref_disk, size));
	if (st.ref_files < st.count)
		printf("missing blobs: %llu (run marmot store verify)\n",
		       (unsigned long long)(st.count - st.ref_files));
	if (st.other_files > 0)
		printf("unreferenced blobs: %llu (%llu bytes; the collector "
		       "removes them)\n",
		       (unsigned long long)st.other_files,
		       (unsigned long long)st.other_disk);
	ret = CLI_EXIT_OK;
out:
	free(st.refs);
	cli_account_store_close(&as);
	return ret;
}

/* ---- verify ---- */

struct cli_verify {
	struct cli_account_store *as;
	struct buf data;
	unsigned int checked, damaged;
};

static int cli_verify_blob_cb(const uint8_t blob_id[32], uint64_t size,
			      void *context)
{
	struct cli_verify *v = context;
	const char *error;
	char hex[BLOB_ID_HEX_LEN + 1];

	buf_reset(&v->data);
	v->checked++;
	if (blob_get(v->as->blobs, blob_id, &v->data, &error) < 0) {
		v->damaged++;
		cli_error("damaged: %s", error);
	} else if (v->data.used != size) {
		v->damaged++;
		blob_id_to_hex(blob_id, hex);
		cli_error("damaged: blob %s holds %zu bytes, the store says "
			  "%llu",
			  hex, v->data.used, (unsigned long long)size);
	}
	return 0;
}

int cli_store_verify_run(struct cli_context *ctx)
{
	struct cli_account_store as;
	struct cli_verify v;
	const char *error;
	bool db_ok;

	if (cli_account_store_open(ctx, &as) < 0)
		return CLI_EXIT_FAILURE;
	memset(&v, 0, sizeof(v));
	v.as = &as;
	/* store_verify: PRAGMA integrity_check, the store's own checks and
	   every referenced blob (decrypted, hashed, size compared). It
	   reports the first problems; on failure every blob is read again
	   here so that all damaged ones are named, not only the first. */
	db_ok = store_verify(as.store, as.blobs, &error) == 0;
	if (!db_ok) {
		cli_error("damaged: %s: %s", ctx->address, error);
		if (store_foreach_blob(as.store, cli_verify_blob_cb, &v,
				       &error) < 0)
			cli_error("damaged: cannot list the blobs of %s: %s",
				  ctx->address, error);
	}
	buf_free(&v.data);
	cli_account_store_close(&as);
	if (!db_ok) {
		if (v.checked > 0)
			cli_error("%s is damaged (%u of %u referenced blobs "
				  "damaged)",
				  ctx->address, v.damaged, v.checked);
		else
			cli_error("%s is damaged", ctx->address);
		return CLI_EXIT_FAILURE;
	}
	printf("%s: store ok, every referenced blob ok\n", ctx->address);
	return CLI_EXIT_OK;
}

/* ---- list ---- */

/* Skips one IMAP item of a cached ENVELOPE string (NIL, a quoted string,
   a literal "{n}\r\n..." or a parenthesised list). Returns the byte after
   it, or NULL if the string is not what imap-envelope.c writes. */
static const char *cli_list_skip_item(const char *p, const char *end,
				      unsigned int depth)
{
	if (p >= end || depth > 8)
		return NULL;
	if (*p == '"') {
		for (p++; p < end; p++) {
			if (*p == '\\' && p + 1 < end)
				p++;
			else if (*p == '"')
				return p + 1;
		}
		return NULL;
	}
	if (*p == '{') {
		uint64_t n = 0;

		for (p++; p < end && *p >= '0' && *p <= '9'; p++) {
			n = n * 10 + (uint64_t)(*p - '0');
			if (n > (uint64_t)(end - p))
				return NULL;
		}
		if (end - p < 3 || memcmp(p, "}\r\n", 3) != 0 ||
		    n > (uint64_t)(end - p - 3))
			return NULL;
		return p + 3 + n;
	}
	if (*p == '(') {
		for (p++; p < end;) {
			if (*p == ' ') {
				p++;
			} else if (*p == ')') {
				return p + 1;
			} else {
				p = cli_list_skip_item(p, end, depth + 1);
				if (p == NULL)
					return NULL;
			}
		}
		return NULL;
	}
	if (end - p >= 3 && memcmp(p, "NIL", 3) == 0)
		return p + 3;
	return NULL;
}

/* The message-id (10th field) of a cached ENVELOPE, undone from its
   quoting, with control characters replaced by '?'; NULL if NIL or
   unreadable. */
static const char *cli_list_message_id(pool_t pool, const char *envelope)
{
	const char *p, *end, *item, *item_end;
	char *out;
	size_t len = 0;

	if (envelope == NULL || envelope[0] != '(')
		return NULL;
	p = envelope + 1;
	end = envelope + strlen(envelope);
	for (unsigned int i = 0; i < 9; i++) {
		p = cli_list_skip_item(p, end, 0);
		if (p == NULL || p >= end || *p != ' ')
			return NULL;
		p++;
	}
	item = p;
	item_end = cli_list_skip_item(item, end, 0);
	if (item_end == NULL || *item == 'N' || *item == '(')
		return NULL;
	out = p_malloc(pool, (size_t)(item_end - item) + 1);
	if (*item == '"') {
		for (p = item + 1; p < item_end - 1; p++) {
			if (*p == '\\')
				p++;
			out[len++] = *p;
		}
	} else {
		p = memchr(item, '\n', (size_t)(item_end - item));
		for (p++; p < item_end; p++)
			out[len++] = *p;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			out[i] = '?';
	}
	out[len] = '\0';
	return len > 0 ? out : NULL;
}

/* Prints str with control characters (tab and newline too) as '?'. */
static void cli_list_print_field(const char *str)
{
	for (const unsigned char *p = (const unsigned char *)str; *p != '\0';
	     p++)
		putchar(*p < 0x20 || *p == 0x7f ? '?' : *p);
}

static int cli_list_mailbox(struct cli_account_store *as,
			    const struct store_mailbox *box, pool_t pool)
{
	const char *error;

	for (uint64_t lo = 1; lo < box->uidnext; lo += CLI_EXPORT_UID_CHUNK) {
		struct store_message *msgs;
		unsigned int count;
		uint64_t hi = lo + CLI_EXPORT_UID_CHUNK - 1;

		pool_clear(pool);
		if (hi > UINT32_MAX)
			hi = UINT32_MAX;
		if (store_fetch(as->store, box->id, (uint32_t)lo, (uint32_t)hi,
				pool, &msgs, &count, &error) < 0) {
			cli_error("cannot read mailbox '%s': %s", box->name,
				  error);
			return -1;
		}
		for (unsigned int i = 0; i < count; i++) {
			const char *msgid =
				cli_list_message_id(pool, msgs[i].envelope);

			cli_list_print_field(box->name);
			printf("\t%u\t%u\t", box->uidvalidity, msgs[i].uid);
			cli_list_print_field(msgid != NULL ? msgid : "-");
			printf("\t%llu\n", (unsigned long long)msgs[i].size);
		}
		if (hi == UINT32_MAX)
			break;
	}
	return 0;
}

int cli_store_list_run(struct cli_context *ctx)
{
	const char *name = ctx->opt[CLI_OPT_MAILBOX];
	struct cli_account_store as;
	struct store_mailbox *boxes, one;
	unsigned int count;
	pool_t pool;
	const char *error;
	int ret;

	if (name != NULL && name[0] == '\0')
		return cli_usage_error(ctx, "empty --mailbox name");
	if (cli_account_store_open(ctx, &as) < 0)
		return CLI_EXIT_FAILURE;
	if (name != NULL) {
		ret = store_mailbox_lookup(as.store, name, ctx->pool, &one,
					   &error);
		if (ret == 0) {
			cli_error("%s has no mailbox '%s'", ctx->address, name);
			cli_account_store_close(&as);
			return CLI_EXIT_FAILURE;
		}
		boxes = &one;
		count = 1;
	} else {
		ret = store_mailbox_list(as.store, ctx->pool, &boxes, &count,
					 &error);
	}
	if (ret < 0) {
		cli_error("cannot read the store of %s: %s", ctx->address,
			  error);
		cli_account_store_close(&as);
		return CLI_EXIT_FAILURE;
	}
	printf("mailbox\tuidvalidity\tuid\tmessage-id\tsize\n");
	pool = pool_create("store-list", 65536);
	ret = CLI_EXIT_OK;
	for (unsigned int i = 0; i < count && ret == CLI_EXIT_OK; i++) {
		if (cli_list_mailbox(&as, &boxes[i], pool) < 0)
			ret = CLI_EXIT_FAILURE;
	}
	pool_unref(&pool);
	cli_account_store_close(&as);
	return ret;
}

/* ---- gc ---- */

int cli_store_gc_run(struct cli_context *ctx)
{
	bool dry_run = ctx->opt[CLI_OPT_DRY_RUN] != NULL;
	struct cli_account_store as;
	struct blob_gc_result res;
	const char *error;
	int ret;

	if (cli_account_store_open(ctx, &as) < 0)
		return CLI_EXIT_FAILURE;
	ret = blob_gc_run(as.store, as.blobs, BLOB_GC_MIN_AGE_DEFAULT, dry_run,
			  NULL, &res, &error);
	if (ret < 0)
		cli_error("collecting the blobs of %s failed: %s", ctx->address,
			  error);
	cli_account_store_close(&as);
	/* After a failure, what was deleted before it. */
	printf("%s: %llu blob files, %llu referenced, %llu unreferenced\n",
	       ctx->address, (unsigned long long)res.files,
	       (unsigned long long)res.referenced,
	       (unsigned long long)res.unreferenced);
	printf("%s: %llu blobs (%llu bytes)\n",
	       dry_run ? "would delete" : "deleted",
	       (unsigned long long)res.deleted,
	       (unsigned long long)res.deleted_bytes);
	if (res.young > 0)
		printf("kept: %llu unreferenced blobs (%llu bytes) younger "
		       "than %u seconds (a write may be about to reference "
		       "them)\n",
		       (unsigned long long)res.young,
		       (unsigned long long)res.young_bytes,
		       (unsigned int)BLOB_GC_MIN_AGE_DEFAULT);
	return ret < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}
