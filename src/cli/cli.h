#ifndef MARMOT_CLI_H
#define MARMOT_CLI_H
/* Shared declarations of the `marmot` admin CLI (src/cli). main.c owns the
   command table, option parsing, the data directory checks, privilege
   dropping and opening directory.db; cli-init.c, cli-admin.c,
   cli-status.c, cli-deliver.c, cli-dkim.c and cli-store.c hold the
   commands. Each
   command is split OpenSMTPD-style into check (validate the arguments,
   touch nothing) and run (act, with the directory open if the command
   asks for it), so bad input writes nothing. Output for people goes to
   stdout; errors are one line on stderr starting "marmot: ". cli-deliver.c
   holds `deliver` (and the hidden `store count`). */

#include "lib.h"
#include "pool.h"
#include "account-keys.h"

struct directory;

/* Exit statuses of the CLI. */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAILURE = 1, /* bad input, or the operation failed */
	CLI_EXIT_USAGE = 2, /* wrong usage */
	CLI_EXIT_NOT_RUNNING = 3, /* `marmot status`: no server */
};

enum cli_option {
	CLI_OPT_DATA,
	CLI_OPT_HOSTNAME,
	CLI_OPT_DOMAIN,
	CLI_OPT_LISTEN,
	CLI_OPT_PORT_BASE,
	CLI_OPT_USER,
	CLI_OPT_PASSWORD_STDIN,
	CLI_OPT_QUOTA,
	CLI_OPT_FROM,
	CLI_OPT_MAILBOX,
	CLI_OPT_MBOX,
	CLI_OPT_MAILDIR,
	CLI_OPT_DRY_RUN,
	CLI_OPT_ZERO_ACCESS,
	CLI_OPT_OLD_PASSWORD_STDIN,
	CLI_OPT_RESOLVER,
	CLI_OPT_HELP,
	CLI_OPT_VERSION,
	CLI_OPT_COUNT
};
#define CLI_OPT_BIT(opt) (1U << (opt))

enum cli_command_flags {
	/* Needs an initialised data directory (--data or MARMOT_DATA). */
	CLI_CMD_DATA_DIR = 0x01,
	/* Opens directory.db (implies CLI_CMD_DATA_DIR). */
	CLI_CMD_DIRECTORY = 0x02,
	/* Opens it read-only (unused: see DIR_RO in main.c). */
	CLI_CMD_READONLY = 0x04,
	/* Loads master.key (before dropping root). */
	CLI_CMD_MASTER_KEY = 0x08,
	/* Not listed by --help (test and debugging aids). */
	CLI_CMD_HIDDEN = 0x10,
};

struct cli_context;

/* Both return an exit status (enum cli_exit or another small number). */
typedef int cli_handler_t(struct cli_context *ctx);

struct cli_command {
	const char *name;
	const char *sub; /* NULL for commands without subcommands */
	unsigned int min_args, max_args; /* positional, after name and sub */
	unsigned int options; /* CLI_OPT_BIT() mask, besides --help */
	unsigned int flags; /* enum cli_command_flags */
	const char *usage; /* after "marmot " */
	const char *summary;
	cli_handler_t *check; /* may be NULL */
	cli_handler_t *run;
};
#define CLI_ARGS_UNLIMITED 1000000U

struct cli_context {
	const struct cli_command *cmd;
	pool_t pool;

	/* Option values; "" for a flag that is present, NULL if absent. */
	const char *opt[CLI_OPT_COUNT];
	/* Positional arguments after the command (and subcommand). */
	const char *const *args;
	unsigned int arg_count;

	/* Set by main.c before run() for CLI_CMD_DATA_DIR commands:
	   the absolute data directory. */
	const char *data_dir;
	struct directory *dir;
	bool have_master_key;
	uint8_t master_key[MASTER_KEY_LEN];

	/* Filled by check() for run(). */
	const char *address; /* normalised */
	const char *domain; /* normalised; NULL if not given */
	const char *label;
	uint64_t size;
	const char **targets; /* NULL-terminated, normalised */
	void *cmd_data; /* private to one command's check and run */
};

/* Prints "marmot: <message>" on stderr. */
void cli_error(const char *fmt, ...) ATTR_FORMAT(1, 2);
/* Prints "marmot: <message>" and the command's usage line on stderr.
   Returns CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli_context *ctx, const char *fmt, ...)
	ATTR_FORMAT(2, 3);
/* The data directory from --data or MARMOT_DATA, as given. Returns 0, or
   prints a usage error and returns -1. */
int cli_data_dir_arg(const struct cli_context *ctx, const char **path_r);

/* cli-init.c */
int cli_init_check(struct cli_context *ctx);
int cli_init_run(struct cli_context *ctx);

/* cli-status.c */
int cli_status_run(struct cli_context *ctx);
int cli_run_run(struct cli_context *ctx);

/* cli-admin.c: "check" validates the positional arguments of the command
   family named, "run" acts with ctx->dir open. */
int cli_domain_check(struct cli_context *ctx);
int cli_domain_add_run(struct cli_context *ctx);
int cli_domain_del_run(struct cli_context *ctx);
int cli_domain_list_run(struct cli_context *ctx);
int cli_user_check(struct cli_context *ctx);
int cli_user_add_run(struct cli_context *ctx);
int cli_user_passwd_run(struct cli_context *ctx);
int cli_user_del_run(struct cli_context *ctx);
int cli_user_list_run(struct cli_context *ctx);
int cli_user_quota_run(struct cli_context *ctx);
int cli_user_disable_run(struct cli_context *ctx);
int cli_user_enable_run(struct cli_context *ctx);
int cli_app_password_check(struct cli_context *ctx);
int cli_app_password_add_run(struct cli_context *ctx);
int cli_app_password_del_run(struct cli_context *ctx);
int cli_alias_check(struct cli_context *ctx);
int cli_alias_add_run(struct cli_context *ctx);
int cli_alias_del_run(struct cli_context *ctx);
int cli_alias_list_run(struct cli_context *ctx);

/* Prints "unknown domain" and returns CLI_EXIT_FAILURE when ctx->domain
   is set and not one of ours, else CLI_EXIT_OK (cli-admin.c). */
int cli_check_domain_exists(struct cli_context *ctx);

/* cli-dkim.c: `dkim SUB [DOMAIN]` (check: cli_domain_check; run with
   ctx->dir open and, for generate and rotate, the master key). */
int cli_dkim_generate_run(struct cli_context *ctx);
int cli_dkim_list_run(struct cli_context *ctx);
/* cli-dmarc.c: received DMARC aggregate reports. */
int cli_dmarc_import_run(struct cli_context *ctx);
int cli_dmarc_reports_run(struct cli_context *ctx);
int cli_dmarc_fetch_run(struct cli_context *ctx);
int cli_dkim_rotate_run(struct cli_context *ctx);
int cli_dkim_activate_run(struct cli_context *ctx);
int cli_dkim_expire_run(struct cli_context *ctx);
/* Generates an Ed25519 and an RSA-2048 key for domain (which exists) under
   fresh selectors, stores them wrapped in state ("active" or "pending")
   in ctx->dir and prints the DNS records to publish (records_r != NULL:
   returns their zone-file lines instead, from ctx->pool). Needs
   ctx->master_key. Returns 0, or -1 with the error printed. */
int cli_dkim_make_keys(struct cli_context *ctx, const char *domain,
		       const char *state, const char **records_r);

/* cli-deliver.c: `deliver` exits with sysexits.h codes (0, EX_NOUSER,
   EX_TEMPFAIL) or 1; `store count` runs with the master key. */
int cli_deliver_check(struct cli_context *ctx);
int cli_deliver_run(struct cli_context *ctx);
int cli_store_count_run(struct cli_context *ctx);

/* cli-store.c: import, export and store stats/verify/list/gc; run()
   opens the account's store with the master key loaded by main.c. */
int cli_import_check(struct cli_context *ctx);
int cli_import_run(struct cli_context *ctx);
int cli_export_check(struct cli_context *ctx);
int cli_export_run(struct cli_context *ctx);
/* Calls cb with the bytes of every message of ctx->address's mailbox
   (CLI_CMD_MASTER_KEY; zero-access accounts ask for the password), in
   UID order, until cb returns non-zero. Returns 0, cb's non-zero value,
   or -1 after printing an error. */
struct buf;
int cli_store_each_message(struct cli_context *ctx, const char *mailbox,
			   int (*cb)(const struct buf *data, void *context),
			   void *context);
int cli_store_check(struct cli_context *ctx);
/* ADDRESS (args[0]) normalised into ctx->address, and --mailbox, if
   given, a usable name. */
int cli_store_mailbox_check(struct cli_context *ctx);
int cli_store_stats_run(struct cli_context *ctx);
int cli_store_verify_run(struct cli_context *ctx);
int cli_store_list_run(struct cli_context *ctx);
int cli_store_gc_run(struct cli_context *ctx);

/* cli-queue.c: `queue SUB ...` (one table entry; check validates SUB and
   its arguments). */
int cli_queue_check(struct cli_context *ctx);
int cli_queue_run(struct cli_context *ctx);

/* cli-dns.c: `dns records` and `dns check` (check: cli_domain_check). */
int cli_dns_records_run(struct cli_context *ctx);
int cli_dns_check_run(struct cli_context *ctx);

/* Parses a size: bytes, or a number with a K/M/G/T suffix (powers of
   1024, an optional trailing "B" or "iB"); "unlimited" is 0. Returns 0 or
   -1 (malformed or overflowing). */
int cli_parse_size(const char *str, uint64_t *size_r);
/* Formats a size for listings: "unlimited" for 0, else the largest exact
   suffix ("10G", "1536M") or plain bytes. Allocated from pool. */
const char *cli_format_size(pool_t pool, uint64_t size);

#endif
