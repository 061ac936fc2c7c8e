/* main.c - entry point of the `marmot` binary, which is both the admin CLI
   and the server (`marmot run`, and `marmot role ...` for the processes the
   master execs). It owns the command table, option parsing (options may
   come before or after positional arguments), --help and --version, and
   the common preparation of admin commands: finding the data directory,
   loading master.key when a command needs it, dropping root to the owner
   of the data directory, and opening directory.db. The commands live in
   cli-init.c, cli-admin.c, cli-status.c, cli-deliver.c, cli-dkim.c and
   cli-store.c. */

#include "lib.h"
#include "cli.h"
#include "log.h"
#include "master.h"
#include "directory.h"
#include "account-keys.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sodium.h>
#include <sqlite3.h>

#define OPT(o) CLI_OPT_BIT(CLI_OPT_##o)

struct cli_option_def {
	const char *name; /* without the leading "--" */
	enum cli_option opt;
	bool has_value;
};

static const struct cli_option_def cli_option_defs[] = {
	{ "data", CLI_OPT_DATA, true },
	{ "hostname", CLI_OPT_HOSTNAME, true },
	{ "domain", CLI_OPT_DOMAIN, true },
	{ "listen", CLI_OPT_LISTEN, true },
	{ "port-base", CLI_OPT_PORT_BASE, true },
	{ "user", CLI_OPT_USER, true },
	{ "password-stdin", CLI_OPT_PASSWORD_STDIN, false },
	{ "quota", CLI_OPT_QUOTA, true },
	{ "from", CLI_OPT_FROM, true },
	{ "mailbox", CLI_OPT_MAILBOX, true },
	{ "mbox", CLI_OPT_MBOX, true },
	{ "maildir", CLI_OPT_MAILDIR, true },
	{ "dry-run", CLI_OPT_DRY_RUN, false },
	{ "zero-access", CLI_OPT_ZERO_ACCESS, false },
	{ "old-password-stdin", CLI_OPT_OLD_PASSWORD_STDIN, false },
	{ "resolver", CLI_OPT_RESOLVER, true },
	{ "help", CLI_OPT_HELP, false },
	{ "version", CLI_OPT_VERSION, false },
};

#define U CLI_ARGS_UNLIMITED
#define DIR_RW (CLI_CMD_DATA_DIR | CLI_CMD_DIRECTORY)
/* Listings open read-write too: a read-only SQLite connection cannot
   checkpoint and remove the WAL files on close, so it would leave
   directory.db-wal and -shm behind, and a listing must change nothing. */
#define DIR_RO DIR_RW

/* Checks happen in one place (cli_dispatch) before a handler runs. */
static const struct cli_command cli_commands[] = {
	{ "init", NULL, 0, 0,
	  OPT(DATA) | OPT(HOSTNAME) | OPT(DOMAIN) | OPT(LISTEN) |
		  OPT(PORT_BASE) | OPT(USER),
	  0,
	  "init --data DIR --hostname HOST --domain DOMAIN [--listen ADDR] "
	  "[--port-base N] [--user NAME]",
	  "create a new data directory", cli_init_check, cli_init_run },
	{ "run", NULL, 0, 0, OPT(DATA), CLI_CMD_DATA_DIR, "run --data DIR",
	  "run the server in the foreground", NULL, cli_run_run },
	{ "status", NULL, 0, 0, OPT(DATA), CLI_CMD_DATA_DIR,
	  "status --data DIR", "show the state of the running server", NULL,
	  cli_status_run },

	{ "domain", "add", 1, 1, OPT(DATA), DIR_RW | CLI_CMD_MASTER_KEY,
	  "domain add DOMAIN",
	  "add a mail domain with its DKIM keys (prints the DNS records)",
	  cli_domain_check, cli_domain_add_run },
	{ "domain", "del", 1, 1, OPT(DATA), DIR_RW, "domain del DOMAIN",
	  "delete a domain that has no users or aliases left", cli_domain_check,
	  cli_domain_del_run },
	{ "domain", "list", 0, 0, OPT(DATA), DIR_RO, "domain list",
	  "list the domains", cli_domain_check, cli_domain_list_run },

	{ "dkim", "generate", 1, 1, OPT(DATA), DIR_RW | CLI_CMD_MASTER_KEY,
	  "dkim generate DOMAIN",
	  "make the DKIM keys of a domain that has none (Ed25519 and "
	  "RSA-2048; prints the DNS records)",
	  cli_domain_check, cli_dkim_generate_run },
	{ "dkim", "list", 0, 1, OPT(DATA), DIR_RO, "dkim list [DOMAIN]",
	  "list the DKIM keys and their states", cli_domain_check,
	  cli_dkim_list_run },
	{ "dkim", "rotate", 1, 1, OPT(DATA), DIR_RW | CLI_CMD_MASTER_KEY,
	  "dkim rotate DOMAIN",
	  "make a new pending key pair to publish (it signs after dkim "
	  "activate)",
	  cli_domain_check, cli_dkim_rotate_run },
	{ "dkim", "activate", 1, 1, OPT(DATA), DIR_RW, "dkim activate DOMAIN",
	  "sign with the pending keys; the old ones stay published 7 days",
	  cli_domain_check, cli_dkim_activate_run },
	{ "dkim", "expire", 0, 1, OPT(DATA), DIR_RW, "dkim expire [DOMAIN]",
	  "delete retiring DKIM keys whose 7 days are over", cli_domain_check,
	  cli_dkim_expire_run },

	{ "dmarc", "import", 1, 1, OPT(DATA), CLI_CMD_DATA_DIR,
	  "dmarc import FILE",
	  "store the summary of a received DMARC aggregate report (XML or "
	  "gzip)",
	  NULL, cli_dmarc_import_run },
	{ "dmarc", "fetch", 1, 1,
	  OPT(DATA) | OPT(MAILBOX) | OPT(PASSWORD_STDIN),
	  DIR_RW | CLI_CMD_MASTER_KEY, "dmarc fetch ADDRESS [--mailbox NAME]",
	  "import the DMARC aggregate reports mailed to ADDRESS (its INBOX "
	  "or --mailbox): every gzip or XML report attachment",
	  cli_store_mailbox_check, cli_dmarc_fetch_run },
	{ "dmarc", "reports", 0, 0, OPT(DATA), CLI_CMD_DATA_DIR,
	  "dmarc reports", "list the imported DMARC aggregate reports", NULL,
	  cli_dmarc_reports_run },

	{ "user", "add", 1, 1,
	  OPT(DATA) | OPT(PASSWORD_STDIN) | OPT(QUOTA) | OPT(ZERO_ACCESS),
	  DIR_RW | CLI_CMD_MASTER_KEY,
	  "user add ADDRESS [--zero-access] [--password-stdin] [--quota SIZE]",
	  "create an account (--zero-access: its mail keys open only with "
	  "the user's password, see doc/zero-access.md)",
	  cli_user_check, cli_user_add_run },
	{ "user", "passwd", 1, 1,
	  OPT(DATA) | OPT(PASSWORD_STDIN) | OPT(OLD_PASSWORD_STDIN), DIR_RW,
	  "user passwd ADDRESS [--password-stdin | --old-password-stdin]",
	  "set an account's password (a zero-access account needs the old "
	  "one: --old-password-stdin reads two lines, old then new)",
	  cli_user_check, cli_user_passwd_run },
	{ "user", "del", 1, 1, OPT(DATA), DIR_RW, "user del ADDRESS",
	  "delete an account (its mail directory is kept)", cli_user_check,
	  cli_user_del_run },
	{ "user", "list", 0, 1, OPT(DATA), DIR_RO, "user list [DOMAIN]",
	  "list accounts", cli_user_check, cli_user_list_run },
	{ "user", "quota", 2, 2, OPT(DATA), DIR_RW, "user quota ADDRESS SIZE",
	  "set an account's quota (K/M/G/T suffixes, 0 = unlimited)",
	  cli_user_check, cli_user_quota_run },
	{ "user", "disable", 1, 1, OPT(DATA), DIR_RW, "user disable ADDRESS",
	  "refuse logins and mail for an account", cli_user_check,
	  cli_user_disable_run },
	{ "user", "enable", 1, 1, OPT(DATA), DIR_RW, "user enable ADDRESS",
	  "enable a disabled account", cli_user_check, cli_user_enable_run },

	{ "app-password", "add", 2, 2, OPT(DATA), DIR_RW,
	  "app-password add ADDRESS LABEL",
	  "create an app password (printed once)", cli_app_password_check,
	  cli_app_password_add_run },
	{ "app-password", "del", 2, 2, OPT(DATA), DIR_RW,
	  "app-password del ADDRESS LABEL", "delete an app password",
	  cli_app_password_check, cli_app_password_del_run },

	{ "alias", "add", 2, U, OPT(DATA), DIR_RW, "alias add ALIAS TARGET...",
	  "create an alias (ALIAS \"@domain\" is a catch-all)", cli_alias_check,
	  cli_alias_add_run },
	{ "alias", "del", 1, 1, OPT(DATA), DIR_RW, "alias del ALIAS",
	  "delete an alias", cli_alias_check, cli_alias_del_run },
	{ "alias", "list", 0, 1, OPT(DATA), DIR_RO, "alias list [DOMAIN]",
	  "list aliases", cli_alias_check, cli_alias_list_run },

	{ "dns", "records", 1, 1, OPT(DATA), DIR_RO, "dns records DOMAIN",
	  "print the DNS records to publish for a hosted domain (zone-file "
	  "lines: MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, TLSA, SRV, "
	  "autoconfig)",
	  cli_domain_check, cli_dns_records_run },
	{ "dns", "check", 1, 1, OPT(DATA) | OPT(RESOLVER), DIR_RO,
	  "dns check DOMAIN [--resolver ADDR[:PORT]]",
	  "check the live DNS of a hosted domain: each record OK, MISSING or "
	  "WRONG, with the fix (exit 1 when something is wrong)",
	  cli_domain_check, cli_dns_check_run },
	{ "queue", NULL, 1, U, OPT(DATA) | OPT(FROM), DIR_RW,
	  "queue list | show ID | flush [ID] | delete ID | hold ID | "
	  "release ID | inject RCPT... [--from SENDER] < MESSAGE",
	  "the outbound queue: list messages, show one, retry now, delete, "
	  "hold or release (applied by the running server), or enqueue a "
	  "message for remote delivery",
	  cli_queue_check, cli_queue_run },
	{ "deliver", NULL, 1, 1,
	  OPT(DATA) | OPT(FROM) | OPT(MAILBOX) | OPT(MBOX), DIR_RW,
	  "deliver ADDRESS [--from SENDER] [--mailbox NAME] "
	  "[< MESSAGE | --mbox FILE]",
	  "deliver a message from stdin to a local address (exit 0 "
	  "delivered, 67 unknown recipient, 75 try again later); --mbox FILE "
	  "(- = stdin) delivers each message of an mbox as its own, printing "
	  "\"delivered N MESSAGE-ID\" as soon as message N is durable "
	  "(after a failure, only messages with such a line were delivered)",
	  cli_deliver_check, cli_deliver_run },
	{ "store", "count", 1, 1, OPT(DATA),
	  DIR_RW | CLI_CMD_MASTER_KEY | CLI_CMD_HIDDEN, "store count ADDRESS",
	  "print the number of messages per mailbox", NULL,
	  cli_store_count_run },

	{ "import", NULL, 1, 1,
	  OPT(DATA) | OPT(MBOX) | OPT(MAILDIR) | OPT(MAILBOX) |
		  OPT(PASSWORD_STDIN),
	  DIR_RW | CLI_CMD_MASTER_KEY,
	  "import ADDRESS --mbox FILE|DIR [--mailbox NAME] | --maildir DIR "
	  "[--password-stdin]",
	  "import mail with its folders, flags and dates (an mbox file goes "
	  "to INBOX or --mailbox; a DIR of NAME.mbox files as export writes "
	  "it)",
	  cli_import_check, cli_import_run },
	{ "export", NULL, 1, 1,
	  OPT(DATA) | OPT(MBOX) | OPT(MAILDIR) | OPT(MAILBOX) |
		  OPT(PASSWORD_STDIN),
	  DIR_RW | CLI_CMD_MASTER_KEY,
	  "export ADDRESS --mbox FILE --mailbox NAME | --mbox DIR | "
	  "--maildir DIR [--password-stdin]",
	  "export mail: one mailbox as an mbox file, every mailbox as "
	  "DIR/NAME.mbox, or everything as a Maildir++ tree",
	  cli_export_check, cli_export_run },
	{ "store", "stats", 1, 1, OPT(DATA) | OPT(PASSWORD_STDIN),
	  DIR_RW | CLI_CMD_MASTER_KEY, "store stats ADDRESS [--password-stdin]",
	  "show mailboxes, sizes, compression ratio and dedup savings",
	  cli_store_check, cli_store_stats_run },
	{ "store", "verify", 1, 1, OPT(DATA) | OPT(PASSWORD_STDIN),
	  DIR_RW | CLI_CMD_MASTER_KEY,
	  "store verify ADDRESS [--password-stdin]",
	  "check the database and every blob (non-zero exit on damage)",
	  cli_store_check, cli_store_verify_run },
	{ "store", "list", 1, 1, OPT(DATA) | OPT(MAILBOX) | OPT(PASSWORD_STDIN),
	  DIR_RW | CLI_CMD_MASTER_KEY,
	  "store list ADDRESS [--mailbox NAME] [--password-stdin]",
	  "list the messages, one line each: mailbox, UIDVALIDITY, UID, "
	  "Message-ID (\"-\" if none), size (tab-separated, control "
	  "characters shown as '?')",
	  cli_store_check, cli_store_list_run },
	{ "store", "gc", 1, 1, OPT(DATA) | OPT(DRY_RUN),
	  DIR_RW | CLI_CMD_MASTER_KEY, "store gc ADDRESS [--dry-run]",
	  "delete blobs no message references any more, once an hour old "
	  "(--dry-run: only report)",
	  cli_store_check, cli_store_gc_run },
};

void cli_error(const char *fmt, ...)
{
	va_list args;

	fflush(stdout);
	fputs("marmot: ", stderr);
	va_start(args, fmt);
	vfprintf(stderr, fmt, args);
	va_end(args);
	fputc('\n', stderr);
}

static void cli_print_usage_line(const struct cli_command *cmd)
{
	fprintf(stderr, "usage: marmot %s\n", cmd->usage);
}

int cli_usage_error(const struct cli_context *ctx, const char *fmt, ...)
{
	va_list args;

	fflush(stdout);
	fputs("marmot: ", stderr);
	va_start(args, fmt);
	vfprintf(stderr, fmt, args);
	va_end(args);
	fputc('\n', stderr);
	if (ctx != NULL && ctx->cmd != NULL)
		cli_print_usage_line(ctx->cmd);
	else
		fputs("usage: marmot COMMAND [ARGS] [--data DIR] "
		      "(see marmot --help)\n",
		      stderr);
	return CLI_EXIT_USAGE;
}

int cli_data_dir_arg(const struct cli_context *ctx, const char **path_r)
{
	const char *path = ctx->opt[CLI_OPT_DATA];

	if (path == NULL) {
		path = getenv("MARMOT_DATA");
		if (path != NULL && path[0] == '\0')
			path = NULL;
	}
	if (path == NULL || path[0] == '\0') {
		cli_usage_error(ctx, "no data directory given "
				     "(use --data DIR or set MARMOT_DATA)");
		return -1;
	}
	*path_r = path;
	return 0;
}

static void cli_print_help(void)
{
	printf("marmot %s - self-hostable mail server\n\n", MARMOT_VERSION);
	printf("usage: marmot COMMAND [ARGS] [--data DIR]\n\n");
	printf("commands:\n");
	for (size_t i = 0; i < N_ELEMENTS(cli_commands); i++) {
		if ((cli_commands[i].flags & CLI_CMD_HIDDEN) != 0)
			continue;
		printf("  marmot %s\n", cli_commands[i].usage);
		printf("      %s\n", cli_commands[i].summary);
	}
	printf("\nEvery command takes --data DIR, or reads the data directory "
	       "from MARMOT_DATA.\n"
	       "marmot COMMAND --help describes one command; "
	       "marmot --version prints versions.\n");
}

static void cli_print_group_help(const char *name)
{
	printf("usage:\n");
	for (size_t i = 0; i < N_ELEMENTS(cli_commands); i++) {
		if (strcmp(cli_commands[i].name, name) != 0 ||
		    (cli_commands[i].flags & CLI_CMD_HIDDEN) != 0)
			continue;
		printf("  marmot %s\n", cli_commands[i].usage);
		printf("      %s\n", cli_commands[i].summary);
	}
	printf("\nThe data directory comes from --data DIR or MARMOT_DATA.\n");
}

static void cli_print_command_help(const struct cli_command *cmd)
{
	printf("usage: marmot %s\n\n%s.\n", cmd->usage, cmd->summary);
	if ((cmd->options & OPT(DATA)) != 0)
		printf("The data directory comes from --data DIR or "
		       "MARMOT_DATA.\n");
}

static void cli_print_version(void)
{
	printf("marmot %s\n", MARMOT_VERSION);
	printf("%s\n", OpenSSL_version(OPENSSL_VERSION));
	printf("SQLite %s\n", sqlite3_libversion());
	printf("libsodium %s\n", sodium_version_string());
}

static const struct cli_option_def *cli_option_find(const char *name,
						    size_t len)
{
	for (size_t i = 0; i < N_ELEMENTS(cli_option_defs); i++) {
		const char *def = cli_option_defs[i].name;

		if (strlen(def) == len && memcmp(def, name, len) == 0)
			return &cli_option_defs[i];
	}
	return NULL;
}

/* Splits argv[1..] into options and positional arguments. Returns 0, or
   prints a usage error and returns -1. */
static int cli_parse_args(struct cli_context *ctx, int argc, char **argv,
			  const char ***pos_r, unsigned int *pos_count_r)
{
	const char **pos = p_new(ctx->pool, const char *, (size_t)argc + 1);
	unsigned int count = 0;
	bool options_done = false;

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (options_done || arg[0] != '-' || arg[1] == '\0') {
			pos[count++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			options_done = true;
			continue;
		}
		if (strcmp(arg, "-h") == 0)
			arg = "--help";
		if (arg[1] != '-') {
			cli_usage_error(NULL, "unknown option '%s'", arg);
			return -1;
		}
		const char *name = arg + 2;
		const char *eq = strchr(name, '=');
		size_t name_len =
			eq == NULL ? strlen(name) : (size_t)(eq - name);
		const struct cli_option_def *def =
			cli_option_find(name, name_len);
		if (def == NULL) {
			cli_usage_error(NULL, "unknown option '%.*s'",
					(int)(name_len + 2), arg);
			return -1;
		}
		const char *value = "";
		if (def->has_value) {
			if (eq != NULL)
				value = eq + 1;
			else if (i + 1 < argc)
				value = argv[++i];
			else {
				cli_usage_error(NULL,
						"option --%s needs a value",
						def->name);
				return -1;
			}
		} else if (eq != NULL) {
			cli_usage_error(NULL, "option --%s takes no value",
					def->name);
			return -1;
		}
		if (ctx->opt[def->opt] != NULL) {
			cli_usage_error(NULL, "option --%s given twice",
					def->name);
			return -1;
		}
		ctx->opt[def->opt] = value;
	}
	pos[count] = NULL;
	*pos_r = pos;
	*pos_count_r = count;
	return 0;
}

static int cli_drop_privileges(uid_t uid, gid_t gid, const char *data_dir)
{
	if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		cli_error(
			"cannot switch to uid %u gid %u (the owner of %s): %s",
			(unsigned int)uid, (unsigned int)gid, data_dir,
			strerror(errno));
		return -1;
	}
	if (getuid() != uid || geteuid() != uid || getgid() != gid ||
	    getegid() != gid || (uid != 0 && setuid(0) == 0)) {
		cli_error("dropping privileges to uid %u gid %u did not work",
			  (unsigned int)uid, (unsigned int)gid);
		return -1;
	}
	return 0;
}

/* Finds and checks the data directory, loads master.key if needed, drops
   root and opens directory.db, as the command's flags ask. */
static int cli_prepare(struct cli_context *ctx)
{
	unsigned int flags = ctx->cmd->flags;
	const char *given, *error;
	struct stat st, db_st;

	if (cli_data_dir_arg(ctx, &given) < 0)
		return CLI_EXIT_USAGE;
	if (stat(given, &st) < 0) {
		if (errno == ENOENT) {
			cli_error("data directory %s does not exist (create it "
				  "with: marmot init --data %s ...)",
				  given, given);
		} else {
			cli_error("cannot access data directory %s: %s", given,
				  strerror(errno));
		}
		return CLI_EXIT_FAILURE;
	}
	if (!S_ISDIR(st.st_mode)) {
		cli_error("data directory %s is not a directory", given);
		return CLI_EXIT_FAILURE;
	}
	char *abs = realpath(given, NULL);
	if (abs == NULL) {
		cli_error("cannot resolve data directory %s: %s", given,
			  strerror(errno));
		return CLI_EXIT_FAILURE;
	}
	ctx->data_dir = p_strdup(ctx->pool, abs);
	free(abs);

	if ((flags & CLI_CMD_DIRECTORY) == 0)
		return CLI_EXIT_OK;

	const char *db_path =
		p_strdup_printf(ctx->pool, "%s/directory.db", ctx->data_dir);
	if (stat(db_path, &db_st) < 0) {
		if (errno == ENOENT) {
			cli_error("%s is not a marmot data directory (no "
				  "directory.db; create one with: marmot init "
				  "--data %s ...)",
				  given, given);
		} else {
			cli_error("cannot access %s: %s", db_path,
				  strerror(errno));
		}
		return CLI_EXIT_FAILURE;
	}
	if ((flags & CLI_CMD_MASTER_KEY) != 0) {
		const char *key_path = p_strdup_printf(
			ctx->pool, "%s/master.key", ctx->data_dir);
		if (master_key_load(key_path, ctx->master_key, &error) < 0) {
			cli_error("cannot load the master key: %s%s", error,
				  geteuid() == 0
					  ? ""
					  : " (run this command as root)");
			return CLI_EXIT_FAILURE;
		}
		ctx->have_master_key = true;
	}
	if (geteuid() == 0 && st.st_uid != 0) {
		if (cli_drop_privileges(st.st_uid, st.st_gid, ctx->data_dir) <
		    0)
			return CLI_EXIT_FAILURE;
	}
	ctx->dir = directory_open(db_path, (flags & CLI_CMD_READONLY) != 0,
				  &error);
	if (ctx->dir == NULL) {
		cli_error("cannot open %s: %s", db_path, error);
		return CLI_EXIT_FAILURE;
	}
	return CLI_EXIT_OK;
}

static const struct cli_command *cli_find(const char *name, const char *sub,
					  bool *group_r)
{
	*group_r = false;
	for (size_t i = 0; i < N_ELEMENTS(cli_commands); i++) {
		const struct cli_command *cmd = &cli_commands[i];

		if (strcmp(cmd->name, name) != 0)
			continue;
		if (cmd->sub == NULL)
			return cmd;
		*group_r = true;
		if (sub != NULL && strcmp(cmd->sub, sub) == 0)
			return cmd;
	}
	return NULL;
}

static int cli_dispatch(struct cli_context *ctx, int argc, char **argv)
{
	const char **pos;
	unsigned int pos_count;
	bool group;

	if (cli_parse_args(ctx, argc, argv, &pos, &pos_count) < 0)
		return CLI_EXIT_USAGE;

	if (pos_count == 0 || (strcmp(pos[0], "help") == 0 && pos_count == 1)) {
		if (ctx->opt[CLI_OPT_VERSION] != NULL) {
			cli_print_version();
			return CLI_EXIT_OK;
		}
		if (ctx->opt[CLI_OPT_HELP] != NULL || pos_count == 1) {
			cli_print_help();
			return CLI_EXIT_OK;
		}
		return cli_usage_error(NULL, "no command given");
	}
	if (strcmp(pos[0], "help") == 0) {
		/* "marmot help user add" = "marmot user add --help" */
		pos++;
		pos_count--;
		ctx->opt[CLI_OPT_HELP] = "";
	}

	const char *sub = pos_count > 1 ? pos[1] : NULL;
	ctx->cmd = cli_find(pos[0], sub, &group);
	if (ctx->cmd == NULL && !group)
		return cli_usage_error(NULL, "unknown command '%s'", pos[0]);
	if (ctx->cmd == NULL) {
		if (sub == NULL && ctx->opt[CLI_OPT_HELP] != NULL) {
			cli_print_group_help(pos[0]);
			return CLI_EXIT_OK;
		}
		if (sub == NULL)
			cli_error("missing subcommand for '%s'", pos[0]);
		else
			cli_error("unknown subcommand '%s %s'", pos[0], sub);
		for (size_t i = 0; i < N_ELEMENTS(cli_commands); i++) {
			if (strcmp(cli_commands[i].name, pos[0]) == 0)
				cli_print_usage_line(&cli_commands[i]);
		}
		return CLI_EXIT_USAGE;
	}
	if (ctx->opt[CLI_OPT_HELP] != NULL) {
		cli_print_command_help(ctx->cmd);
		return CLI_EXIT_OK;
	}
	unsigned int skip = ctx->cmd->sub == NULL ? 1 : 2;
	ctx->args = pos + skip;
	ctx->arg_count = pos_count - skip;

	for (size_t i = 0; i < N_ELEMENTS(cli_option_defs); i++) {
		const struct cli_option_def *def = &cli_option_defs[i];

		if (ctx->opt[def->opt] != NULL &&
		    (ctx->cmd->options & CLI_OPT_BIT(def->opt)) == 0) {
			return cli_usage_error(ctx,
					       "option --%s does not "
					       "apply to this command",
					       def->name);
		}
	}
	if (ctx->arg_count < ctx->cmd->min_args)
		return cli_usage_error(ctx, "too few arguments");
	if (ctx->arg_count > ctx->cmd->max_args)
		return cli_usage_error(ctx, "too many arguments");

	int ret;
	if (ctx->cmd->check != NULL && (ret = ctx->cmd->check(ctx)) != 0)
		return ret;
	if ((ctx->cmd->flags & CLI_CMD_DATA_DIR) != 0 &&
	    (ret = cli_prepare(ctx)) != 0)
		return ret;
	return ctx->cmd->run(ctx);
}

int main(int argc, char **argv)
{
	struct cli_context ctx;
	int ret;

	/* Whatever a command creates in the data directory (stores, blobs,
	   spools, exports) is for the service user alone. */
	umask(077);
	/* The master execs this binary for its roles; their arguments are
	   the master's, not a person's. */
	if (argc >= 2 && strcmp(argv[1], "role") == 0)
		return master_role_main(argc - 1, argv + 1);

	log_set_role("cli");
	if (sodium_init() < 0) {
		cli_error("libsodium failed to initialise");
		return CLI_EXIT_FAILURE;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.pool = pool_create("cli", 4096);
	ret = cli_dispatch(&ctx, argc, argv);

	if (ctx.dir != NULL)
		directory_close(&ctx.dir);
	safe_memset0(ctx.master_key, sizeof(ctx.master_key));
	pool_unref(&ctx.pool);
	if (fflush(stdout) != 0 && ret == CLI_EXIT_OK) {
		cli_error("writing to stdout failed: %s", strerror(errno));
		ret = CLI_EXIT_FAILURE;
	}
	return ret;
}
