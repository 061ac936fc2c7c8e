/* cli-admin.c - the directory commands of the `marmot` CLI: domain, user,
   app-password and alias. Each family has a check function that validates
   and normalises the positional arguments before anything is opened, and
   one run function per subcommand that acts on ctx->dir, which main.c has
   opened (after dropping root to the data directory's owner). It also owns
   password entry: --password-stdin, a twice-typed prompt with echo off on a
   terminal, or a generated password printed once; for a zero-access
   account's password change also the old password (--old-password-stdin:
   two lines, old then new; or a prompt). Passwords are wiped as soon as
   the directory has hashed them (or wrapped the keys under them). Called only
   from main.c's command table. */

#include "lib.h"
#include "cli.h"
#include "span.h"
#include "directory.h"
#include "mail-address.h"
#include "password.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#define CLI_GENERATED_PASSWORD_LEN 20
/* No 0/O, 1/l/I: the password is read off a screen. */
static const char cli_password_alphabet[] =
	"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
#define CLI_LABEL_MAX_LEN 64

/* ---- sizes ---- */

int cli_parse_size(const char *str, uint64_t *size_r)
{
	static const char suffixes[] = "KMGT";
	size_t len = strlen(str), digits = 0;
	unsigned int shift = 0;
	uint64_t num;

	if (strcmp(str, "unlimited") == 0) {
		*size_r = 0;
		return 0;
	}
	while (digits < len && str[digits] >= '0' && str[digits] <= '9')
		digits++;
	if (digits == 0 ||
	    span_to_u64(span_make(str, digits), UINT64_MAX, &num) < 0)
		return -1;
	const char *rest = str + digits;
	if (*rest != '\0') {
		char c = (char)(rest[0] & ~0x20);
		const char *s = c == '\0' ? NULL : strchr(suffixes, c);
		if (s == NULL)
			return -1;
		shift = 10 * (unsigned int)(s - suffixes + 1);
		rest++;
		if (strcmp(rest, "") != 0 && strcmp(rest, "B") != 0 &&
		    strcmp(rest, "b") != 0 && strcmp(rest, "iB") != 0)
			return -1;
	}
	if (shift > 0 && num > (UINT64_MAX >> shift))
		return -1;
	*size_r = num << shift;
	return 0;
}

const char *cli_format_size(pool_t pool, uint64_t size)
{
	static const char suffixes[] = "KMGT";

	if (size == 0)
		return "unlimited";
	for (unsigned int i = N_ELEMENTS(suffixes) - 1; i > 0; i--) {
		unsigned int shift = 10 * i;

		if ((size & ((UINT64_C(1) << shift) - 1)) == 0) {
			return p_strdup_printf(
				pool, "%llu%c",
				(unsigned long long)(size >> shift),
				suffixes[i - 1]);
		}
	}
	return p_strdup_printf(pool, "%llu", (unsigned long long)size);
}

/* ---- passwords ---- */

static struct termios cli_saved_termios;
static volatile sig_atomic_t cli_termios_changed = 0;

static void cli_restore_termios_signal(int signo)
{
	if (cli_termios_changed != 0)
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &cli_saved_termios);
	/* Best effort from a signal handler: nothing to do on failure. */
	ssize_t ignored = write(STDERR_FILENO, "\n", 1);

	(void)ignored;
	signal(signo, SIG_DFL);
	raise(signo);
}

/* Reads one line from the terminal on stdin with echo off. Returns a
   malloc'ed string the caller wipes and frees, or NULL with *error_r. */
static char *cli_tty_read_password(const char *prompt, const char **error_r)
{
	struct termios noecho;
	struct sigaction sa, old_int, old_term, old_hup;
	char *line = i_malloc(PASSWORD_MAX_LEN + 2);
	size_t len = 0;
	bool too_long = false, eof = false;

	if (tcgetattr(STDIN_FILENO, &cli_saved_termios) < 0) {
		*error_r = "cannot read the terminal settings";
		i_free(line);
		return NULL;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cli_restore_termios_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);

	noecho = cli_saved_termios;
	noecho.c_lflag &= ~(tcflag_t)ECHO;
	noecho.c_lflag |= ICANON;
	fputs(prompt, stderr);
	fflush(stderr);
	cli_termios_changed = 1;
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho);

	for (;;) {
		char c;
		ssize_t ret = read(STDIN_FILENO, &c, 1);

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0) {
			eof = true;
			break;
		}
		if (c == '\n')
			break;
		if (len < PASSWORD_MAX_LEN + 1)
			line[len++] = c;
		else
			too_long = true;
	}
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &cli_saved_termios);
	cli_termios_changed = 0;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	fputc('\n', stderr);

	if (len > 0 && line[len - 1] == '\r')
		len--;
	line[len] = '\0';
	if (eof && len == 0)
		*error_r = "no password entered";
	else if (len == 0)
		*error_r = "the password is empty";
	else if (too_long || len > PASSWORD_MAX_LEN)
		*error_r = "the password is too long";
	else if (memchr(line, '\0', len) != NULL)
		*error_r = "the password contains a NUL byte";
	else
		return line;
	safe_memset0(line, PASSWORD_MAX_LEN + 2);
	i_free(line);
	return NULL;
}

static char *cli_password_generate(void)
{
	char *password = i_malloc(CLI_GENERATED_PASSWORD_LEN + 1);
	uint32_t n = (uint32_t)(sizeof(cli_password_alphabet) - 1);

	for (unsigned int i = 0; i < CLI_GENERATED_PASSWORD_LEN; i++)
		password[i] = cli_password_alphabet[randombytes_uniform(n)];
	return password;
}

static void cli_password_free(char **_password)
{
	char *password = *_password;

	*_password = NULL;
	if (password != NULL) {
		safe_memset0(password, strlen(password));
		free(password);
	}
}

/* Gets the new password as the CLI contract says. Returns 0 with a
   malloc'ed *password_r (free with cli_password_free) and *generated_r
   telling whether it must be shown, or prints the error and returns -1. */
static int cli_password_get(const struct cli_context *ctx, char **password_r,
			    bool *generated_r)
{
	const char *error;
	char *first, *second;

	*generated_r = false;
	if (ctx->opt[CLI_OPT_PASSWORD_STDIN] != NULL) {
		*password_r = password_read_fd(STDIN_FILENO, &error);
		if (*password_r == NULL) {
			cli_error("cannot read the password from stdin: %s",
				  error);
			return -1;
		}
		return 0;
	}
	if (!isatty(STDIN_FILENO)) {
		*password_r = cli_password_generate();
		*generated_r = true;
		return 0;
	}
	first = cli_tty_read_password("New password: ", &error);
	if (first == NULL) {
		cli_error("%s", error);
		return -1;
	}
	second = cli_tty_read_password("Repeat password: ", &error);
	if (second == NULL) {
		cli_password_free(&first);
		cli_error("%s", error);
		return -1;
	}
	size_t len = strlen(first);
	bool same = len == strlen(second) && mem_equals_ct(first, second, len);
	cli_password_free(&second);
	if (!same) {
		cli_password_free(&first);
		cli_error("the passwords do not match; nothing was changed");
		return -1;
	}
	*password_r = first;
	return 0;
}

/* ---- argument validation ---- */

static int cli_arg_address(struct cli_context *ctx, const char *arg)
{
	const char *error;

	ctx->address =
		mail_address_normalize(ctx->pool, arg, NULL, NULL, &error);
	if (ctx->address == NULL) {
		cli_error("invalid address '%s': %s", arg, error);
		return CLI_EXIT_FAILURE;
	}
	return CLI_EXIT_OK;
}

static int cli_arg_domain(struct cli_context *ctx, const char *arg)
{
	const char *error;

	ctx->domain = mail_domain_normalize(ctx->pool, arg, &error);
	if (ctx->domain == NULL) {
		cli_error("invalid domain '%s': %s", arg, error);
		return CLI_EXIT_FAILURE;
	}
	return CLI_EXIT_OK;
}

/* An alias is an address, or "@domain" for a catch-all. */
static int cli_arg_alias(struct cli_context *ctx, const char *arg)
{
	int ret;

	if (arg[0] != '@')
		return cli_arg_address(ctx, arg);
	if ((ret = cli_arg_domain(ctx, arg + 1)) != 0)
		return ret;
	ctx->address = p_strdup_printf(ctx->pool, "@%s", ctx->domain);
	return CLI_EXIT_OK;
}

int cli_check_domain_exists(struct cli_context *ctx)
{
	if (ctx->domain != NULL &&
	    !directory_domain_exists(ctx->dir, ctx->domain)) {
		cli_error("unknown domain %s", ctx->domain);
		return CLI_EXIT_FAILURE;
	}
	return CLI_EXIT_OK;
}

static int cli_result(int ret, const char *error)
{
	if (ret < 0) {
		cli_error("%s", error);
		return CLI_EXIT_FAILURE;
	}
	return CLI_EXIT_OK;
}

static const char *cli_iso_date(pool_t pool, int64_t unix_time)
{
	time_t t = (time_t)unix_time;
	struct tm tm;
	char date[32];

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%d", &tm) == 0)
		return "-";
	return p_strdup(pool, date);
}

/* ---- domain ---- */

int cli_domain_check(struct cli_context *ctx)
{
	if (ctx->arg_count == 0)
		return CLI_EXIT_OK;
	return cli_arg_domain(ctx, ctx->args[0]);
}

int cli_domain_add_run(struct cli_context *ctx)
{
	const char *error;

	if (directory_domain_add(ctx->dir, ctx->domain, &error) < 0)
		return cli_result(-1, error);
	printf("added domain %s\n", ctx->domain);
	/* ARCHITECTURE.md 1.6: DKIM signing is on by default. */
	if (cli_dkim_make_keys(ctx, ctx->domain, "active", NULL) < 0) {
		cli_error("the domain has no DKIM keys; make them with: "
			  "marmot dkim generate %s",
			  ctx->domain);
		return CLI_EXIT_FAILURE;
	}
	return CLI_EXIT_OK;
}

int cli_domain_del_run(struct cli_context *ctx)
{
	const char *error;
	int ret;

	if ((ret = cli_check_domain_exists(ctx)) != 0)
		return ret;
	if (directory_domain_del(ctx->dir, ctx->domain, &error) < 0)
		return cli_result(-1, error);
	printf("deleted domain %s\n", ctx->domain);
	return CLI_EXIT_OK;
}

int cli_domain_list_run(struct cli_context *ctx)
{
	const char *const *domains;
	const char *error;

	if (directory_domain_list(ctx->dir, &domains, &error) < 0)
		return cli_result(-1, error);
	printf("domain\n");
	for (unsigned int i = 0; domains[i] != NULL; i++)
		printf("%s\n", domains[i]);
	return CLI_EXIT_OK;
}

/* ---- user ---- */

int cli_user_check(struct cli_context *ctx)
{
	const char *sub = ctx->cmd->sub;
	int ret;

	if (strcmp(sub, "list") == 0)
		return cli_domain_check(ctx);
	if ((ret = cli_arg_address(ctx, ctx->args[0])) != 0)
		return ret;
	if (strcmp(sub, "quota") == 0 &&
	    cli_parse_size(ctx->args[1], &ctx->size) < 0) {
		cli_error("invalid size '%s' (bytes, or a number with a "
			  "K/M/G/T suffix; 0 = unlimited)",
			  ctx->args[1]);
		return CLI_EXIT_FAILURE;
	}
	if (strcmp(sub, "add") == 0 && ctx->opt[CLI_OPT_QUOTA] != NULL &&
	    cli_parse_size(ctx->opt[CLI_OPT_QUOTA], &ctx->size) < 0) {
		cli_error("invalid --quota '%s' (bytes, or a number with a "
			  "K/M/G/T suffix; 0 = unlimited)",
			  ctx->opt[CLI_OPT_QUOTA]);
		return CLI_EXIT_FAILURE;
	}
	return CLI_EXIT_OK;
}

/* Returns 1 if the account exists, 0 (message printed) if not, -1 on
   error (printed). */
static int cli_account_get(struct cli_context *ctx,
			   struct directory_account *account_r)
{
	const char *error;
	int ret;

	ret = directory_account_lookup(ctx->dir, ctx->address, account_r,
				       &error);
	if (ret < 0)
		cli_error("%s", error);
	else if (ret == 0)
		cli_error("user %s does not exist", ctx->address);
	return ret;
}

int cli_user_add_run(struct cli_context *ctx)
{
	struct directory_account account;
	const char *error, *domain;
	char *password;
	bool generated;
	uint64_t id;
	int ret;

	/* Cheap checks first, so nobody types a password for nothing;
	   directory_account_add() checks all of this again. */
	domain = strchr(ctx->address, '@') + 1;
	if (!directory_domain_exists(ctx->dir, domain)) {
		cli_error("unknown domain %s (add it with: marmot domain add "
			  "%s)",
			  domain, domain);
		return CLI_EXIT_FAILURE;
	}
	ret = directory_account_lookup(ctx->dir, ctx->address, &account,
				       &error);
	if (ret < 0)
		return cli_result(-1, error);
	if (ret > 0) {
		cli_error("user %s already exists", ctx->address);
		return CLI_EXIT_FAILURE;
	}

	i_assert(ctx->have_master_key);
	if (cli_password_get(ctx, &password, &generated) < 0)
		return CLI_EXIT_FAILURE;
	if (ctx->opt[CLI_OPT_ZERO_ACCESS] != NULL) {
		/* The master key is loaded but not used: the keys are
		   wrapped under the password only. */
		ret = directory_account_add_zero_access(ctx->dir, ctx->data_dir,
							ctx->address, password,
							ctx->size, &id, &error);
	} else {
		ret = directory_account_add(ctx->dir, ctx->data_dir,
					    ctx->master_key, ctx->address,
					    password, ctx->size, &id, &error);
	}
	if (ret < 0) {
		cli_password_free(&password);
		return cli_result(-1, error);
	}
	printf("added user %s (id %llu, quota %s%s)\n", ctx->address,
	       (unsigned long long)id, cli_format_size(ctx->pool, ctx->size),
	       ctx->opt[CLI_OPT_ZERO_ACCESS] != NULL ? ", zero-access" : "");
	if (ctx->opt[CLI_OPT_ZERO_ACCESS] != NULL) {
		printf("its mail keys open only with this password: if it is "
		       "forgotten, the mail is lost\n");
	}
	if (generated)
		printf("password: %s\n", password);
	cli_password_free(&password);
	return CLI_EXIT_OK;
}

/* Gets the old password, then the new one (--old-password-stdin: two
   lines; else prompts on a terminal). Returns 0 with both malloc'ed (free
   with cli_password_free), or prints the error and returns -1. */
static int cli_password_get_old_new(const struct cli_context *ctx, char **old_r,
				    char **new_r)
{
	const char *error;
	bool generated;

	*new_r = NULL;
	if (ctx->opt[CLI_OPT_OLD_PASSWORD_STDIN] != NULL) {
		*old_r = password_read_fd(STDIN_FILENO, &error);
		if (*old_r == NULL) {
			cli_error("cannot read the old password from stdin: %s",
				  error);
			return -1;
		}
		*new_r = password_read_fd(STDIN_FILENO, &error);
		if (*new_r == NULL) {
			cli_password_free(old_r);
			cli_error("cannot read the new password from stdin "
				  "(the second line): %s",
				  error);
			return -1;
		}
		return 0;
	}
	if (!isatty(STDIN_FILENO)) {
		cli_error("%s is a zero-access account: its mail keys are "
			  "wrapped under the user's password, so the old "
			  "password is needed (--old-password-stdin reads "
			  "two lines, old then new); without it the mail "
			  "would become unreadable, so nothing was changed",
			  ctx->address);
		return -1;
	}
	*old_r = cli_tty_read_password("Old password: ", &error);
	if (*old_r == NULL) {
		cli_error("%s", error);
		return -1;
	}
	if (cli_password_get(ctx, new_r, &generated) < 0) {
		cli_password_free(old_r);
		return -1;
	}
	i_assert(!generated);
	return 0;
}

/* A zero-access account: the keys are re-wrapped, no mail re-encrypted. */
static int cli_user_passwd_zero_access(struct cli_context *ctx)
{
	const char *error;
	char *old_password, *new_password;
	int ret;

	if (ctx->opt[CLI_OPT_PASSWORD_STDIN] != NULL) {
		cli_error("%s is a zero-access account: its mail keys are "
			  "wrapped under the user's password, and a reset "
			  "without the old password would make all of its "
			  "mail unreadable; use --old-password-stdin (two "
			  "lines, old then new). Nothing was changed",
			  ctx->address);
		return CLI_EXIT_FAILURE;
	}
	if (cli_password_get_old_new(ctx, &old_password, &new_password) < 0)
		return CLI_EXIT_FAILURE;
	ret = directory_account_rewrap(ctx->dir, ctx->address, old_password,
				       new_password, &error);
	cli_password_free(&old_password);
	cli_password_free(&new_password);
	if (ret < 0)
		return cli_result(-1, error);
	printf("changed the password of %s (its keys were re-wrapped; no "
	       "mail was re-encrypted)\n",
	       ctx->address);
	return CLI_EXIT_OK;
}

int cli_user_passwd_run(struct cli_context *ctx)
{
	struct directory_account account;
	const char *error;
	char *password, *old_password = NULL;
	bool generated = false, old_ok;
	int ret;

	if (ctx->opt[CLI_OPT_PASSWORD_STDIN] != NULL &&
	    ctx->opt[CLI_OPT_OLD_PASSWORD_STDIN] != NULL)
		return cli_usage_error(ctx, "give only one of --password-stdin "
					    "and --old-password-stdin");
	if ((ret = cli_account_get(ctx, &account)) <= 0)
		return CLI_EXIT_FAILURE;
	if (account.zero_access)
		return cli_user_passwd_zero_access(ctx);
	if (ctx->opt[CLI_OPT_OLD_PASSWORD_STDIN] != NULL) {
		/* Not needed for a managed account, but checked when
		   given. */
		if (cli_password_get_old_new(ctx, &old_password, &password) < 0)
			return CLI_EXIT_FAILURE;
		old_ok = password_verify(account.password_hash, old_password,
					 strlen(old_password));
		cli_password_free(&old_password);
		if (!old_ok) {
			cli_password_free(&password);
			cli_error("the old password of %s is wrong (nothing "
				  "was changed)",
				  ctx->address);
			return CLI_EXIT_FAILURE;
		}
	} else if (cli_password_get(ctx, &password, &generated) < 0) {
		return CLI_EXIT_FAILURE;
	}
	ret = directory_account_passwd(ctx->dir, ctx->address, password,
				       &error);
	if (ret < 0) {
		cli_password_free(&password);
		return cli_result(-1, error);
	}
	printf("changed the password of %s\n", ctx->address);
	if (generated)
		printf("password: %s\n", password);
	cli_password_free(&password);
	return CLI_EXIT_OK;
}

int cli_user_del_run(struct cli_context *ctx)
{
	struct directory_account account;
	const char *error;
	uint64_t id;

	if (cli_account_get(ctx, &account) <= 0)
		return CLI_EXIT_FAILURE;
	id = account.id;
	if (directory_account_del(ctx->dir, ctx->address, &error) < 0)
		return cli_result(-1, error);
	printf("deleted user %s\n", ctx->address);
	printf("its mail directory %s/accounts/%llu was left in place; "
	       "remove it when it is no longer needed\n",
	       ctx->data_dir, (unsigned long long)id);
	return CLI_EXIT_OK;
}

int cli_user_list_run(struct cli_context *ctx)
{
	struct directory_account *accounts;
	unsigned int count;
	const char *error;
	int ret;

	if ((ret = cli_check_domain_exists(ctx)) != 0)
		return ret;
	if (directory_account_list(ctx->dir, ctx->domain, &accounts, &count,
				   &error) < 0)
		return cli_result(-1, error);
	printf("address\tquota\tstatus\tcreated\n");
	for (unsigned int i = 0; i < count; i++) {
		printf("%s\t%s\t%s\t%s\n", accounts[i].address,
		       cli_format_size(ctx->pool, accounts[i].quota_bytes),
		       accounts[i].disabled ? "disabled" : "active",
		       cli_iso_date(ctx->pool, accounts[i].created));
	}
	return CLI_EXIT_OK;
}

int cli_user_quota_run(struct cli_context *ctx)
{
	const char *error;

	if (directory_account_set_quota(ctx->dir, ctx->address, ctx->size,
					&error) < 0)
		return cli_result(-1, error);
	printf("quota of %s set to %s\n", ctx->address,
	       cli_format_size(ctx->pool, ctx->size));
	return CLI_EXIT_OK;
}

static int cli_user_set_disabled(struct cli_context *ctx, bool disabled)
{
	const char *error;

	if (directory_account_set_disabled(ctx->dir, ctx->address, disabled,
					   &error) < 0)
		return cli_result(-1, error);
	printf("%s %s\n", disabled ? "disabled" : "enabled", ctx->address);
	return CLI_EXIT_OK;
}

int cli_user_disable_run(struct cli_context *ctx)
{
	return cli_user_set_disabled(ctx, true);
}

int cli_user_enable_run(struct cli_context *ctx)
{
	return cli_user_set_disabled(ctx, false);
}

/* ---- app-password ---- */

int cli_app_password_check(struct cli_context *ctx)
{
	const char *label = ctx->args[1];
	size_t len = strlen(label);
	int ret;

	if ((ret = cli_arg_address(ctx, ctx->args[0])) != 0)
		return ret;
	if (len == 0 || len > CLI_LABEL_MAX_LEN) {
		cli_error("invalid label '%s': 1 to %d characters", label,
			  CLI_LABEL_MAX_LEN);
		return CLI_EXIT_FAILURE;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)label[i];

		if (c < 0x20 || c == 0x7f) {
			cli_error("invalid label: control characters are not "
				  "allowed");
			return CLI_EXIT_FAILURE;
		}
	}
	ctx->label = label;
	return CLI_EXIT_OK;
}

int cli_app_password_add_run(struct cli_context *ctx)
{
	const char *error, *password;

	if (directory_app_password_add(ctx->dir, ctx->address, ctx->label,
				       &password, &error) < 0)
		return cli_result(-1, error);
	printf("added app password '%s' for %s (shown only now)\n", ctx->label,
	       ctx->address);
	printf("password: %s\n", password);
	/* The directory's pool holds it; wipe it before the pool is
	   reused or freed. */
	safe_memset0((void *)password, strlen(password));
	return CLI_EXIT_OK;
}

int cli_app_password_del_run(struct cli_context *ctx)
{
	const char *error;

	if (directory_app_password_del(ctx->dir, ctx->address, ctx->label,
				       &error) < 0)
		return cli_result(-1, error);
	printf("deleted app password '%s' of %s\n", ctx->label, ctx->address);
	return CLI_EXIT_OK;
}

/* ---- alias ---- */

int cli_alias_check(struct cli_context *ctx)
{
	const char *error;
	int ret;

	if (strcmp(ctx->cmd->sub, "list") == 0)
		return cli_domain_check(ctx);
	if ((ret = cli_arg_alias(ctx, ctx->args[0])) != 0)
		return ret;
	if (strcmp(ctx->cmd->sub, "add") != 0)
		return CLI_EXIT_OK;

	ctx->targets = p_new(ctx->pool, const char *, ctx->arg_count);
	for (unsigned int i = 1; i < ctx->arg_count; i++) {
		const char *target = mail_address_normalize(
			ctx->pool, ctx->args[i], NULL, NULL, &error);
		if (target == NULL) {
			cli_error("invalid target address '%s': %s",
				  ctx->args[i], error);
			return CLI_EXIT_FAILURE;
		}
		ctx->targets[i - 1] = target;
	}
	ctx->targets[ctx->arg_count - 1] = NULL;
	return CLI_EXIT_OK;
}

int cli_alias_add_run(struct cli_context *ctx)
{
	const char *error;

	if (directory_alias_add(ctx->dir, ctx->address, ctx->targets, &error) <
	    0)
		return cli_result(-1, error);
	printf("added alias %s ->", ctx->address);
	for (unsigned int i = 0; ctx->targets[i] != NULL; i++)
		printf(" %s", ctx->targets[i]);
	printf("\n");
	return CLI_EXIT_OK;
}

int cli_alias_del_run(struct cli_context *ctx)
{
	const char *error;

	if (directory_alias_del(ctx->dir, ctx->address, &error) < 0)
		return cli_result(-1, error);
	printf("deleted alias %s\n", ctx->address);
	return CLI_EXIT_OK;
}

int cli_alias_list_run(struct cli_context *ctx)
{
	struct directory_alias *aliases;
	unsigned int count;
	const char *error;
	int ret;

	if ((ret = cli_check_domain_exists(ctx)) != 0)
		return ret;
	if (directory_alias_list(ctx->dir, ctx->domain, &aliases, &count,
				 &error) < 0)
		return cli_result(-1, error);
	printf("alias\ttargets\n");
	for (unsigned int i = 0; i < count; i++) {
		printf("%s\t", aliases[i].address);
		for (unsigned int j = 0; aliases[i].targets[j] != NULL; j++)
			printf("%s%s", j == 0 ? "" : ",",
			       aliases[i].targets[j]);
		printf("\n");
	}
	return CLI_EXIT_OK;
}
