/* cli-init.c - `marmot init`: creates a data directory (marmot.conf,
   master.key, directory.db with the first domain, tls/ with a self-signed
   certificate, accounts/, run/) and prints the DNS records to publish.
   Every argument is validated before the first write, and any failure
   after that removes everything init created, so init either produces a
   complete directory or leaves none. Run as root, it hands everything but
   master.key to the service user: master.key stays root-owned 0600 because
   the master opens it as root and passes the vault a descriptor, so the
   network-facing front, running as that user, can never read it. Called
   from main.c's command table. */

#include "lib.h"
#include "cli.h"
#include "buf.h"
#include "settings.h"
#include "tls.h"
#include "mail-address.h"
#include "directory.h"
#include "account-keys.h"
#include "queue.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define CLI_INIT_PORT_BASE_MAX 65000
#define CLI_INIT_DEFAULT_USER "marmot"
#define CLI_HOSTNAME_MAX_LEN 253

struct cli_init {
	const char *data_dir; /* as given */
	bool dir_exists; /* existed (empty) before init */
	const char *hostname; /* lower-case LDH */
	const char *domain; /* normalised */
	const char *listen; /* validated list */
	unsigned int port_base;
	const char *user;
	bool as_root;
	uid_t uid;
	gid_t gid;
};

/* ---- validation ---- */

static bool cli_hostname_valid(const char *name)
{
	size_t len = strlen(name), label_len = 0;

	if (len == 0 || len > CLI_HOSTNAME_MAX_LEN)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = name[i];

		if (c == '.' || c == '\0') {
			/* RFC 1123 2.1: LDH labels of 1..63 octets, no hyphen
			   at either end. */
			if (label_len == 0 || label_len > 63 ||
			    name[i - 1] == '-' || name[i - label_len] == '-')
				return false;
			label_len = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			   c == '-') {
			label_len++;
		} else {
			return false;
		}
	}
	return true;
}

static char *cli_lowercase(pool_t pool, const char *str)
{
	char *copy = p_strdup(pool, str);

	for (char *p = copy; *p != '\0'; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	return copy;
}

/* "*", or a comma-separated list of literal IPv4/IPv6 addresses.
   Returns the list rebuilt as "a, b", or NULL. */
static const char *cli_listen_validate(pool_t pool, const char *value,
				       const char **bad_r)
{
	struct buf out = BUF_INIT;
	const char *p = value, *result;

	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma == NULL ? strlen(p) : (size_t)(comma - p);
		struct span item = span_trim(span_make(p, len));
		char *addr = p_strndup(pool, item.p, item.len);
		uint8_t bin[sizeof(struct in6_addr)];

		if (strcmp(addr, "*") != 0 &&
		    inet_pton(AF_INET, addr, bin) != 1 &&
		    inet_pton(AF_INET6, addr, bin) != 1) {
			*bad_r = addr;
			buf_free(&out);
			return NULL;
		}
		if (out.used > 0)
			buf_append_str(&out, ", ");
		buf_append_str(&out, addr);
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	result = p_strdup(pool, buf_cstr(&out));
	buf_free(&out);
	return result;
}

static bool cli_user_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > 32 || name[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		      c == '.'))
			return false;
	}
	return true;
}

/* Returns 1 if path is an empty directory, 0 if it is not empty (or not a
   directory: *error_r says which), -1 if it cannot be read. */
static int cli_dir_is_empty(const char *path, const char **error_r)
{
	DIR *dir = opendir(path);
	struct dirent *d;
	int ret = 1;

	if (dir == NULL) {
		*error_r = errno == ENOTDIR ? "it is not a directory"
					    : strerror(errno);
		return errno == ENOTDIR ? 0 : -1;
	}
	while ((d = readdir(dir)) != NULL) {
		if (strcmp(d->d_name, ".") != 0 &&
		    strcmp(d->d_name, "..") != 0) {
			*error_r = "it is not empty";
			ret = 0;
			break;
		}
	}
	closedir(dir);
	return ret;
}

int cli_init_check(struct cli_context *ctx)
{
	struct cli_init *init = p_new(ctx->pool, struct cli_init, 1);
	const char *error, *value, *bad = "";
	struct stat st;
	uint64_t num;

	ctx->cmd_data = init;
	if (cli_data_dir_arg(ctx, &init->data_dir) < 0)
		return CLI_EXIT_USAGE;
	if (ctx->opt[CLI_OPT_HOSTNAME] == NULL)
		return cli_usage_error(ctx, "--hostname is required");
	if (ctx->opt[CLI_OPT_DOMAIN] == NULL)
		return cli_usage_error(ctx, "--domain is required");

	value = ctx->opt[CLI_OPT_HOSTNAME];
	init->hostname = cli_lowercase(ctx->pool, value);
	if (!cli_hostname_valid(init->hostname)) {
		cli_error("invalid host name '%s' (letters, digits and '-' in "
			  "dot-separated labels, e.g. mail.example.org)",
			  value);
		return CLI_EXIT_FAILURE;
	}
	value = ctx->opt[CLI_OPT_DOMAIN];
	init->domain = mail_domain_normalize(ctx->pool, value, &error);
	if (init->domain == NULL) {
		cli_error("invalid domain '%s': %s", value, error);
		return CLI_EXIT_FAILURE;
	}
	value = ctx->opt[CLI_OPT_LISTEN] != NULL ? ctx->opt[CLI_OPT_LISTEN]
						 : "*";
	init->listen = cli_listen_validate(ctx->pool, value, &bad);
	if (init->listen == NULL) {
		cli_error("invalid listen address '%s' (an IPv4 or IPv6 "
			  "address, or * for all)",
			  bad);
		return CLI_EXIT_FAILURE;
	}
	value = ctx->opt[CLI_OPT_PORT_BASE];
	if (value != NULL) {
		if (span_to_u64(span_from_cstr(value), CLI_INIT_PORT_BASE_MAX,
				&num) < 0) {
			cli_error("invalid port base '%s' (0 to %u; 0 means "
				  "the standard ports)",
				  value, CLI_INIT_PORT_BASE_MAX);
			return CLI_EXIT_FAILURE;
		}
		init->port_base = (unsigned int)num;
	}
	init->user = ctx->opt[CLI_OPT_USER] != NULL ? ctx->opt[CLI_OPT_USER]
						    : CLI_INIT_DEFAULT_USER;
	if (!cli_user_name_valid(init->user)) {
		cli_error("invalid user name '%s'", init->user);
		return CLI_EXIT_FAILURE;
	}
	init->as_root = geteuid() == 0;
	if (init->as_root) {
		struct passwd *pw = getpwnam(init->user);

		if (pw == NULL) {
			cli_error("user '%s' does not exist; create it with: "
				  "useradd --system --home-dir /var/lib/marmot "
				  "--shell /usr/sbin/nologin %s (or pass "
				  "--user NAME)",
				  init->user, init->user);
			return CLI_EXIT_FAILURE;
		}
		init->uid = pw->pw_uid;
		init->gid = pw->pw_gid;
	}

	if (lstat(init->data_dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			cli_error("cannot initialise %s: it exists and is not "
				  "a directory",
				  init->data_dir);
			return CLI_EXIT_FAILURE;
		}
		int ret = cli_dir_is_empty(init->data_dir, &error);
		if (ret <= 0) {
			cli_error("refusing to initialise %s: %s",
				  init->data_dir, error);
			return CLI_EXIT_FAILURE;
		}
		init->dir_exists = true;
	} else if (errno != ENOENT) {
		cli_error("cannot access %s: %s", init->data_dir,
			  strerror(errno));
		return CLI_EXIT_FAILURE;
	}
	return CLI_EXIT_OK;
}

/* ---- creation ---- */

static int cli_remove_cb(const char *path, const struct stat *st, int type,
			 struct FTW *ftw)
{
	/* The top directory is handled by the caller: it may have existed
	   before init. */
	if (ftw->level > 0 && remove(path) < 0 && errno != ENOENT)
		fprintf(stderr, "marmot: cannot remove %s: %s\n", path,
			strerror(errno));
	return 0;
}

static void cli_init_undo(const struct cli_init *init, const char *dir)
{
	(void)nftw(dir, cli_remove_cb, 16, FTW_DEPTH | FTW_PHYS);
	if (!init->dir_exists && rmdir(dir) < 0 && errno != ENOENT)
		cli_error("cannot remove %s: %s", dir, strerror(errno));
}

/* The zone-file lines of the first domain's DKIM keys, for the report. */
static const char *cli_init_dkim_records = "";
static uid_t cli_chown_uid;
static gid_t cli_chown_gid;

static int cli_chown_cb(const char *path, const struct stat *st, int type,
			struct FTW *ftw)
{
	/* master.key stays root's: see the comment at the top. */
	if (ftw->level == 1 && strcmp(path + ftw->base, "master.key") == 0)
		return 0;
	if (lchown(path, cli_chown_uid, cli_chown_gid) < 0) {
		cli_error("cannot chown %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int cli_write_file(const char *path, const struct buf *content,
			  mode_t mode)
{
	struct span rest = buf_span(content);
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  mode);
	if (fd < 0) {
		cli_error("cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	if (fchmod(fd, mode) < 0)
		goto fail;
	while (rest.len > 0) {
		ssize_t n = write(fd, rest.p, rest.len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		rest = span_skip(rest, (size_t)n);
	}
	if (fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		cli_error("cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
fail:
	cli_error("cannot write %s: %s", path, strerror(errno));
	close(fd);
	return -1;
}

static int cli_mkdir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0 || chmod(path, mode) < 0) {
		cli_error("cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Creates everything below dir (which exists). Returns 0 or -1 (message
   printed); the caller undoes a partial result. */
static int cli_init_populate(struct cli_context *ctx,
			     const struct cli_init *init, const char *dir)
{
	pool_t pool = ctx->pool;
	struct marmot_settings *set;
	struct directory *directory;
	struct buf conf = BUF_INIT;
	const char *error;
	char *set_error;
	int ret;

	settings_write_default(&conf, init->hostname, init->listen,
			       init->port_base, init->user);
	ret = cli_write_file(p_strdup_printf(pool, "%s/marmot.conf", dir),
			     &conf, 0640);
	buf_free(&conf);
	if (ret < 0)
		return -1;
	/* What init wrote must be what the server will accept. */
	if (settings_load(dir, NULL, &set, &set_error) < 0) {
		cli_error("the generated configuration does not load: %s",
			  set_error);
		free(set_error);
		return -1;
	}
	settings_free(&set);

	if (master_key_create(p_strdup_printf(pool, "%s/master.key", dir),
			      &error) < 0) {
		cli_error("cannot create the master key: %s", error);
		return -1;
	}

	const char *tls_dir = p_strdup_printf(pool, "%s/tls", dir);
	if (cli_mkdir(tls_dir, 0700) < 0)
		return -1;
	if (tls_write_self_signed(init->hostname,
				  p_strdup_printf(pool, "%s/cert.pem", tls_dir),
				  p_strdup_printf(pool, "%s/key.pem", tls_dir),
				  &error) < 0) {
		cli_error("cannot create the TLS certificate: %s", error);
		return -1;
	}
	if (cli_mkdir(p_strdup_printf(pool, "%s/accounts", dir), 0700) < 0 ||
	    cli_mkdir(p_strdup_printf(pool, "%s/run", dir), 0700) < 0)
		return -1;

	const char *db_path = p_strdup_printf(pool, "%s/directory.db", dir);
	directory = directory_open(db_path, false, &error);
	if (directory == NULL) {
		cli_error("cannot create %s: %s", db_path, error);
		return -1;
	}
	ret = directory_domain_add(directory, init->domain, &error);
	if (ret < 0)
		cli_error("cannot add domain %s: %s", init->domain, error);
	if (ret == 0) {
		/* ARCHITECTURE.md 1.6: DKIM signing is on by default, so the
		   first domain gets its keys now (main.c wipes the key). */
		ret = master_key_load(
			p_strdup_printf(pool, "%s/master.key", dir),
			ctx->master_key, &error);
		if (ret < 0) {
			cli_error("cannot read the master key: %s", error);
		} else {
			ctx->have_master_key = true;
			ctx->dir = directory;
			ret = cli_dkim_make_keys(ctx, init->domain, "active",
						 &cli_init_dkim_records);
			ctx->dir = NULL;
		}
	}
	directory_close(&directory);
	if (ret < 0)
		return -1;
	/* The outbound queue: DATA/queue/ and DATA/queue.key (the front
	   makes them at its first start in older data directories). */
	{
		struct queue *queue = queue_open(dir, &error);

		if (queue == NULL) {
			cli_error("cannot create the outbound queue: %s",
				  error);
			return -1;
		}
		queue_close(&queue);
	}

	if (init->as_root) {
		cli_chown_uid = init->uid;
		cli_chown_gid = init->gid;
		if (nftw(dir, cli_chown_cb, 16, FTW_PHYS) != 0)
			return -1;
	}
	return 0;
}

/* ---- the DNS records ---- */

static bool cli_ipv4_public(const struct in_addr *addr)
{
	uint32_t a = ntohl(addr->s_addr);

	/* RFC 6890 special-purpose ranges. */
	return !((a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 ||
		 (a & 0xffc00000) == 0x64400000 || /* 100.64/10 */
		 (a & 0xffff0000) == 0xa9fe0000 || /* 169.254/16 */
		 (a & 0xfff00000) == 0xac100000 || /* 172.16/12 */
		 (a & 0xffffff00) == 0xc0000000 || /* 192.0.0/24 */
		 (a & 0xffffff00) == 0xc0000200 || /* 192.0.2/24 */
		 (a & 0xffff0000) == 0xc0a80000 || /* 192.168/16 */
		 (a & 0xfffe0000) == 0xc6120000 || /* 198.18/15 */
		 (a & 0xffffff00) == 0xc6336400 || /* 198.51.100/24 */
		 (a & 0xffffff00) == 0xcb007100 || /* 203.0.113/24 */
		 (a >> 28) >= 14); /* multicast, reserved */
}

static bool cli_ipv6_public(const struct in6_addr *addr)
{
	const uint8_t *b = addr->s6_addr;

	/* 2000::/3 global unicast, minus 2001:db8::/32 (documentation). */
	if ((b[0] & 0xe0) != 0x20)
		return false;
	return !(b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8);
}

static void cli_print_record(const char *name, const char *type,
			     const char *value)
{
	printf("%-31s IN %-5s %s\n", name, type, value);
}

/* Prints A/AAAA records for the public addresses of this host (those that
   were given as --listen, or else those of the interfaces), or
   placeholders when none is found. */
static void cli_print_address_records(pool_t pool, const struct cli_init *init,
				      const char *host)
{
	struct ifaddrs *ifas = NULL;
	unsigned int v4 = 0, v6 = 0;
	char text[INET6_ADDRSTRLEN];

	if (getifaddrs(&ifas) < 0)
		ifas = NULL;
	for (struct ifaddrs *ifa = ifas; ifa != NULL; ifa = ifa->ifa_next) {
		if (ifa->ifa_addr == NULL)
			continue;
		if (ifa->ifa_addr->sa_family == AF_INET) {
			struct sockaddr_in *sin =
				(struct sockaddr_in *)(void *)ifa->ifa_addr;
			if (!cli_ipv4_public(&sin->sin_addr) ||
			    inet_ntop(AF_INET, &sin->sin_addr, text,
				      sizeof(text)) == NULL)
				continue;
			if (strcmp(init->listen, "*") != 0 &&
			    strstr(init->listen, text) == NULL)
				continue;
			cli_print_record(host, "A", text);
			v4++;
		} else if (ifa->ifa_addr->sa_family == AF_INET6) {
			struct sockaddr_in6 *sin6 =
				(struct sockaddr_in6 *)(void *)ifa->ifa_addr;
			if (!cli_ipv6_public(&sin6->sin6_addr) ||
			    inet_ntop(AF_INET6, &sin6->sin6_addr, text,
				      sizeof(text)) == NULL)
				continue;
			if (strcmp(init->listen, "*") != 0 &&
			    strstr(init->listen, text) == NULL)
				continue;
			cli_print_record(host, "AAAA", text);
			v6++;
		}
	}
	if (ifas != NULL)
		freeifaddrs(ifas);
	if (v4 == 0)
		cli_print_record(host, "A", "<this server's public IPv4>");
	if (v6 == 0) {
		cli_print_record(host, "AAAA",
				 "<this server's public IPv6, if it has one>");
	}
}

static void cli_print_dns(pool_t pool, const struct cli_init *init,
			  const char *abs_dir)
{
	const char *domain = p_strdup_printf(pool, "%s.", init->domain);
	const char *host = p_strdup_printf(pool, "%s.", init->hostname);

	printf("Created %s for %s (first domain %s).\n\n", abs_dir,
	       init->hostname, init->domain);
	printf("Publish these DNS records (zone file syntax):\n\n");
	printf("; mail for %s is delivered to this server\n", init->domain);
	cli_print_record(domain, "MX", p_strdup_printf(pool, "10 %s", host));
	printf("; only the MX may send mail as %s (SPF, RFC 7208)\n",
	       init->domain);
	cli_print_record(domain, "TXT", "\"v=spf1 mx -all\"");
	printf("; receivers quarantine unaligned mail and send reports to "
	       "postmaster (DMARC, RFC 7489)\n");
	cli_print_record(
		p_strdup_printf(pool, "_dmarc.%s", domain), "TXT",
		p_strdup_printf(pool,
				"\"v=DMARC1; p=quarantine; adkim=s; aspf=s; "
				"rua=mailto:postmaster@%s\"",
				init->domain));
	printf("; the DKIM keys mail from %s is signed with (RFC 6376, RFC "
	       "8463)\n%s",
	       init->domain, cli_init_dkim_records);
	printf("; the address of this server\n");
	cli_print_address_records(pool, init, host);
	printf("\nAlso ask your provider to set the reverse DNS (PTR) of "
	       "those addresses to %s\n",
	       init->hostname);
	printf("The TLS certificate in %s/tls is self-signed: clients will "
	       "warn until it is replaced.\n",
	       abs_dir);
	printf("\nNext steps:\n");
	printf("  marmot user add postmaster@%s --data %s\n", init->domain,
	       abs_dir);
	printf("  marmot run --data %s\n", abs_dir);
}

int cli_init_run(struct cli_context *ctx)
{
	const struct cli_init *init = ctx->cmd_data;
	char *abs;
	int ret;

	/* Nothing init creates is for other users. */
	umask(027);
	if (!init->dir_exists && mkdir(init->data_dir, 0750) < 0) {
		cli_error("cannot create %s: %s", init->data_dir,
			  strerror(errno));
		return CLI_EXIT_FAILURE;
	}
	abs = realpath(init->data_dir, NULL);
	if (abs == NULL) {
		cli_error("cannot resolve %s: %s", init->data_dir,
			  strerror(errno));
		if (!init->dir_exists)
			(void)rmdir(init->data_dir);
		return CLI_EXIT_FAILURE;
	}
	ret = cli_init_populate(ctx, init, abs);
	if (ret < 0) {
		cli_init_undo(init, abs);
		free(abs);
		return CLI_EXIT_FAILURE;
	}
	cli_print_dns(ctx->pool, init, abs);
	free(abs);
	return CLI_EXIT_OK;
}
