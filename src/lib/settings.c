/* settings.c - marmot.conf: the settings table, the parser, the derived
   listener ports, and the generators of the default file (marmot init) and
   of doc/config.md. Owns struct marmot_settings; the master loads it at
   start and on SIGHUP, and the CLI writes the default file. The file is
   read whole and bounded (size, line length, no NUL bytes); every value is
   checked against its table entry, and nothing reaches the caller unless
   the whole file is valid. */

#include "settings.h"
#include "buf.h"
#include "log.h"
#include "span.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define SETTINGS_FILE_NAME "marmot.conf"
#define SETTINGS_MAX_FILE_SIZE (1024 * 1024)
#define SETTINGS_MAX_LINE 4096
#define SETTINGS_NAME_MAX 64

static const char settings_syntax[] =
	"One \"name = value\" per line. A '#' starts a comment at the start of "
	"a line or after whitespace; blank lines are ignored. Names are lower "
	"case letters, digits and '_'. Values are trimmed, and may be "
	"double-quoted (with \\\" and \\\\ escapes) to keep leading or "
	"trailing spaces or a '#'. Lists are comma-separated. Sizes take K, M "
	"or G suffixes (powers of 1024); times take s, m, h or d suffixes (no "
	"suffix means seconds). A setting may appear only once; an unknown "
	"name, a bad value or a duplicate is an error that names the line, "
	"and nothing of a file with an error is applied.";

enum setting_type {
	SETTING_STRING,
	SETTING_HOSTNAME,
	SETTING_ADDR_LIST,
	SETTING_UINT,
	SETTING_PORT,
	SETTING_PATH,
	SETTING_LOG_LEVEL,
	SETTING_TIME,
	SETTING_SIZE,
	/* One of the '|'-separated words in choices. */
	SETTING_CHOICE,
};

static const char *const setting_type_names[] = {
	[SETTING_STRING] = "string",
	[SETTING_HOSTNAME] = "host name",
	[SETTING_ADDR_LIST] = "address list",
	[SETTING_UINT] = "number",
	[SETTING_PORT] = "port",
	[SETTING_PATH] = "path",
	[SETTING_LOG_LEVEL] = "level",
	[SETTING_TIME] = "time",
	[SETTING_SIZE] = "size",
	[SETTING_CHOICE] = "choice",
};

struct setting_def {
	const char *name;
	enum setting_type type;
	/* Default in file syntax. NULL: required (or, for ports, derived
	   from port_base). */
	const char *def;
	uint64_t min, max;
	/* Where the value goes; for SETTING_PORT the listener instead. */
	size_t offset;
	int port;
	/* Why the default is what it is: the doc line. */
	const char *doc;
};

/* The allowed values of each SETTING_CHOICE, "a|b|c" (a table beside
   setting_defs so its entries keep their positional initializers). */
static const struct {
	const char *name, *choices;
} setting_choices[] = {
	{ "mta_sts_mode", "none|testing|enforce" },
	{ "queue_mta_sts", "on|off" },
	{ "queue_tlsrpt", "on|off" },
	{ "dmarc_policy", "quarantine|reject" },
	{ "dmarc_enforce", "on|off" },
	{ "dmarc_tree_walk", "on|off" },
	{ "dmarc_report", "on|off" },
	{ "spf_reject_fail", "on|off" },
	{ "auth_throttle_localhost", "exempt|count" },
};

#define OFF(field) offsetof(struct marmot_settings, field)
#define PORT(name, idx, std)                                                 \
	{                                                                    \
		name "_port", SETTING_PORT, NULL, 0, 65535, 0, idx,          \
			"Port of the " name " listener (standard " #std      \
			"). When unset it is port_base + " #std ", or " #std \
			" if port_base is 0; 0 disables the listener."       \
	}

static const struct setting_def setting_defs[] = {
	{ "hostname", SETTING_HOSTNAME, NULL, 0, 0, OFF(hostname), -1,
	  "The public host name of this server, as in its MX record: used in "
	  "the SMTP greeting, HELO and the TLS certificate. Required: no guess "
	  "from the system is reliable enough for mail." },
	{ "user", SETTING_STRING, "marmot", 0, 0, OFF(user), -1,
	  "The unprivileged user the roles run as when started as root, after "
	  "the listeners are bound." },
	{ "listen", SETTING_ADDR_LIST, "*", 0, 0, OFF(listen), -1,
	  "IP addresses to listen on, comma-separated; * means all addresses "
	  "(IPv4 and IPv6)." },
	{ "port_base", SETTING_UINT, "0", 0, 65000, OFF(port_base), -1,
	  "0 uses the standard ports. N moves every listener to N + its "
	  "standard port (N+25, N+587, ...), so that tests and unprivileged "
	  "installs need no root." },
	PORT("smtp", SETTINGS_PORT_SMTP, 25),
	PORT("submission", SETTINGS_PORT_SUBMISSION, 587),
	PORT("submissions", SETTINGS_PORT_SUBMISSIONS, 465),
	PORT("imap", SETTINGS_PORT_IMAP, 143),
	PORT("imaps", SETTINGS_PORT_IMAPS, 993),
	PORT("pop3", SETTINGS_PORT_POP3, 110),
	PORT("pop3s", SETTINGS_PORT_POP3S, 995),
	PORT("http", SETTINGS_PORT_HTTP, 80),
	PORT("https", SETTINGS_PORT_HTTPS, 443),
	{ "tls_cert", SETTING_PATH, "tls/cert.pem", 0, 0, OFF(tls_cert), -1,
	  "TLS certificate chain (PEM). A relative path is resolved against "
	  "the data directory, where marmot init puts a self-signed one." },
	{ "tls_key", SETTING_PATH, "tls/key.pem", 0, 0, OFF(tls_key), -1,
	  "TLS private key (PEM), relative to the data directory unless "
	  "absolute." },
	{ "log_level", SETTING_LOG_LEVEL, "info", 0, 0, OFF(log_level), -1,
	  "Least severe level logged: debug, info, warning or error. info "
	  "logs one line per connection and transaction." },
	{ "dns_resolver", SETTING_STRING, "resolv.conf", 0, 0,
	  OFF(dns_resolver), -1,
	  "DNS servers for MX, A, AAAA, TXT and TLSA lookups, queried with "
	  "recursion desired: resolv.conf uses the nameservers of "
	  "/etc/resolv.conf; otherwise comma-separated IP addresses with an "
	  "optional @port (127.0.0.1@5353, ::1). A local validating resolver "
	  "is best; tests point it at a DNS server they start." },
	{ "dns_trust_anchor_file", SETTING_STRING, "none", 0, 0,
	  OFF(dns_trust_anchor_file), -1,
	  "Absolute path of a DNSSEC trust anchor file (DS or DNSKEY records, "
	  "e.g. /usr/share/dns/root.key) to validate answers here; none trusts "
	  "the resolver (answers are never marked secure, which DANE needs)." },
	{ "dns_timeout", SETTING_TIME, "30s", 1, 300, OFF(dns_timeout), -1,
	  "How long one lookup may take before it counts as a temporary "
	  "failure (the message is retried later)." },
	{ "public_addresses", SETTING_ADDR_LIST, "*", 0, 0,
	  OFF(public_addresses), -1,
	  "The public IP addresses of hostname, for the DNS records marmot dns "
	  "records prints and marmot dns check checks (SPF ip4:/ip6:, the A "
	  "and AAAA of hostname). * leaves them unstated: SPF then names the "
	  "MX hosts and the check accepts whatever addresses hostname has." },
	{ "mta_sts_mode", SETTING_CHOICE, "testing", 0, 0, OFF(mta_sts_mode),
	  -1,
	  "The mode of the MTA-STS policy this server publishes (RFC 8461 5): "
	  "testing has senders report TLS failures but deliver anyway, which "
	  "is safe while certificates and DNS are being set up; enforce once "
	  "TLS-RPT reports are clean; none withdraws the policy." },
	{ "mta_sts_max_age", SETTING_TIME, "7d", 86400, 31557600,
	  OFF(mta_sts_max_age), -1,
	  "How long senders may cache the MTA-STS policy (RFC 8461 3.2 "
	  "max_age, at most a year); a week survives an outage of the policy "
	  "host and lets a mode change reach senders soon." },
	{ "dmarc_policy", SETTING_CHOICE, "quarantine", 0, 0, OFF(dmarc_policy),
	  -1,
	  "The policy of the _dmarc record marmot dns records prints (RFC 7489 "
	  "6.3 p=): quarantine has receivers file failing mail as spam; "
	  "reject once aggregate reports show every legitimate source passes." },
	{ "vault_max_hashes", SETTING_UINT, "2", 1, 64, OFF(vault_max_hashes),
	  -1,
	  "Concurrent argon2id password hashes in the vault. Each takes 64 MiB, "
	  "so 2 bounds login memory at 128 MiB." },
	{ "auth_cache_ttl", SETTING_TIME, "5m", 0, 86400, OFF(auth_cache_ttl),
	  -1,
	  "Lifetime of a verified credential in the vault's cache, so that "
	  "clients that log in often do not pay an argon2id hash each time; 0 "
	  "disables the cache." },
	{ "max_connections", SETTING_UINT, "10000", 1, 1000000,
	  OFF(max_connections), -1,
	  "Connections the front accepts in total, well under the usual "
	  "file descriptor limits." },
	{ "max_connections_per_ip", SETTING_UINT, "50", 1, 100000,
	  OFF(max_connections_per_ip), -1,
	  "Connections the front accepts from one IP address, all protocols "
	  "together (IPv6: from one /64): enough for a household behind NAT "
	  "whose mail clients open 5 to 10 IMAP connections per account, too "
	  "few for one host to starve the others. One more is refused with "
	  "the protocol's temporary error (IMAP BYE, POP3 -ERR [SYS/TEMP], "
	  "SMTP 421) and closed unread; on implicit TLS ports it is closed "
	  "without a word." },
	{ "shutdown_timeout", SETTING_TIME, "8s", 1, 60, OFF(shutdown_timeout),
	  -1,
	  "How long the front drains connections on SIGTERM; the master kills "
	  "it at 10s, so 8s leaves time to log and exit." },
	{ "idle_timeout", SETTING_TIME, "5m", 10, 3600, OFF(idle_timeout), -1,
	  "How long a connection may stay idle before it authenticates (RFC "
	  "5321 4.5.3.2 asks for at least 5 minutes on SMTP). A POP3 "
	  "session that has logged in gets at least 10 minutes (RFC 1939 "
	  "3)." },
	{ "login_timeout", SETTING_TIME, "60s", 1, 3600, OFF(login_timeout), -1,
	  "How long an IMAP, POP3 or submission connection may take to log "
	  "in, busy or not: a client that trickles bytes to stay under "
	  "idle_timeout is cut here. Port 25 and HTTP have no login and only "
	  "idle_timeout." },
	{ "imap_idle_timeout", SETTING_TIME, "30m", 10, 86400,
	  OFF(imap_idle_timeout), -1,
	  "How long an authenticated IMAP connection may stay idle, IDLE "
	  "included, before the server logs it out (RFC 9051 5.4 asks for "
	  "at least 30 minutes; clients re-issue IDLE within 29)." },
	{ "auth_max_failures_per_ip", SETTING_UINT, "10", 1, 100000,
	  OFF(auth_max_failures_per_ip), -1,
	  "Failed logins (any protocol and mechanism, SCRAM included) from "
	  "one IP address (IPv6: one /64) within auth_failure_window after "
	  "which its further logins, even with the right password, get a "
	  "temporary failure without being checked." },
	{ "auth_max_failures_per_user", SETTING_UINT, "30", 1, 100000,
	  OFF(auth_max_failures_per_user), -1,
	  "Failed logins of one username within auth_failure_window after "
	  "which it is refused to every address that has failed itself; "
	  "addresses without failures (the owner's) still log in." },
	{ "auth_failure_window", SETTING_TIME, "5m", 1, 86400,
	  OFF(auth_failure_window), -1,
	  "How long failed logins are counted, from the first one." },
	{ "auth_throttle_localhost", SETTING_CHOICE, "exempt", 0, 0,
	  OFF(auth_throttle_localhost), -1,
	  "exempt leaves 127.0.0.1 and ::1 out of the failed-login limits: a "
	  "webmail or proxy on this host logs in for all its users from "
	  "there, and one address for all of them would lock them all out "
	  "at once; count treats them like any other address." },
	{ "max_line_length", SETTING_SIZE, "64K", 1024, 16 * 1024 * 1024,
	  OFF(max_line_length), -1,
	  "Longest input line accepted per connection. 64K is far above any "
	  "protocol's limit and bounds memory per connection." },
	{ "smtp_max_message_size", SETTING_SIZE, "50M", 1024, 255 * 1024 * 1024,
	  OFF(smtp_max_message_size), -1,
	  "Largest message SMTP and submission accept (advertised as SIZE, "
	  "RFC 1870; counted while the data is read)." },
	{ "smtp_max_recipients", SETTING_UINT, "100", 1, 100000,
	  OFF(smtp_max_recipients), -1,
	  "Recipients per SMTP transaction; more get 452 and the client sends "
	  "them in another transaction (RFC 5321 4.5.3.1.8 asks for at least "
	  "100)." },
	{ "smtp_max_errors", SETTING_UINT, "20", 1, 1000, OFF(smtp_max_errors),
	  -1,
	  "Refused commands and recipients in one SMTP session before it is "
	  "closed with 421 (bounds address guessing)." },
	{ "submission_rate_limit", SETTING_UINT, "500", 0, 1000000,
	  OFF(submission_rate_limit), -1,
	  "Messages one account may submit per hour (a token bucket, so a "
	  "burst of this many is allowed); more get 450 4.7.0. 0 disables "
	  "the limit." },
	{ "queue_relay_host", SETTING_STRING, "none", 0, 0,
	  OFF(queue_relay_host), -1,
	  "none delivers outbound mail to each domain's MX hosts. HOST:PORT "
	  "(an IP literal, [IPv6]:PORT, or a name) sends all of it to one "
	  "smarthost instead; tests point it at a fake server." },
	{ "queue_retry_min", SETTING_TIME, "5m", 1, 86400, OFF(queue_retry_min),
	  -1,
	  "Delay before the first retry after a temporary failure; it doubles "
	  "with each attempt (RFC 5321 4.5.4.1 asks for at least 30 minutes "
	  "in general, 5 minutes serves the usual greylisting)." },
	{ "queue_retry_max", SETTING_TIME, "1h", 1, 86400, OFF(queue_retry_max),
	  -1, "Longest delay between two attempts, the cap of the doubling." },
	{ "queue_max_age", SETTING_TIME, "5d", 1, 30 * 86400,
	  OFF(queue_max_age), -1,
	  "How long a message is retried before it fails with a DSN (RFC 5321 "
	  "4.5.4.1: give-up time of at least 4-5 days)." },
	{ "queue_max_per_domain", SETTING_UINT, "4", 1, 1000,
	  OFF(queue_max_per_domain), -1,
	  "Concurrent outbound connections per destination domain, so one "
	  "large mailing does not look like an attack to the receiver." },
	{ "queue_scan_interval", SETTING_TIME, "1m", 1, 3600,
	  OFF(queue_scan_interval), -1,
	  "How often the queue runner rereads the queue directory for "
	  "messages and marmot queue requests written by other processes." },
	{ "queue_timeout", SETTING_TIME, "5m", 1, 3600, OFF(queue_timeout), -1,
	  "How long the queue's SMTP client waits for a connection or a reply "
	  "(RFC 5321 4.5.3.2 gives 2 to 10 minutes per command)." },
	{ "queue_tls_ca", SETTING_STRING, "system", 0, 0, OFF(queue_tls_ca), -1,
	  "CA certificates (an absolute path to a PEM file) that MX hosts "
	  "and mta-sts policy servers must chain to when MTA-STS (RFC 8461) "
	  "asks for a verified certificate; system uses the system trust "
	  "store. Tests point it at their own CA." },
	{ "queue_mta_sts", SETTING_CHOICE, "on", 0, 0, OFF(queue_mta_sts), -1,
	  "on looks up each destination's MTA-STS policy (RFC 8461) and, in "
	  "enforce mode, delivers only to the policy's MX hosts over TLS "
	  "with a valid certificate (otherwise the message stays queued); "
	  "off ignores MTA-STS. DANE (RFC 7672) applies whenever "
	  "dns_trust_anchor_file makes DNSSEC answers secure." },
	{ "queue_tlsrpt", SETTING_CHOICE, "on", 0, 0, OFF(queue_tlsrpt), -1,
	  "on counts our outbound TLS sessions to domains with a DANE or "
	  "MTA-STS policy and mails each domain that publishes a "
	  "_smtp._tls record with a mailto: rua an aggregate report once "
	  "per queue_tlsrpt_interval (RFC 8460); off sends none." },
	{ "queue_tlsrpt_interval", SETTING_TIME, "1d", 1, 7 * 86400,
	  OFF(queue_tlsrpt_interval), -1,
	  "The TLS report period, aligned to multiples of it since the "
	  "epoch (1d: UTC days, as RFC 8460 4.1 asks); tests shorten it." },
	{ "authserv_id", SETTING_STRING, "*", 0, 0, OFF(authserv_id), -1,
	  "The authserv-id of the Authentication-Results field added to mail "
	  "received on port 25 (RFC 8601 2.5); * uses hostname. Incoming "
	  "fields that claim it are removed." },
	{ "dmarc_enforce", SETTING_CHOICE, "on", 0, 0, OFF(dmarc_enforce), -1,
	  "on applies the sender domain's DMARC policy on port 25: p=reject "
	  "failures get 550 5.7.1, p=quarantine failures go to Junk; off only "
	  "records the result in Authentication-Results." },
	{ "dmarc_tree_walk", SETTING_CHOICE, "off", 0, 0, OFF(dmarc_tree_walk),
	  -1,
	  "on finds DMARC records and Organizational Domains by the DNS tree "
	  "walk of DMARCbis (RFC 9989 4.10); off by RFC 7489 with the public "
	  "suffix list." },
	{ "dmarc_report", SETTING_CHOICE, "on", 0, 0, OFF(dmarc_report), -1,
	  "on counts the DMARC results of mail received on port 25 per "
	  "policy domain and mails each domain whose record has a mailto: "
	  "rua an aggregate report once per dmarc_report_interval (RFC 7489 "
	  "7.2); off sends none." },
	{ "dmarc_report_interval", SETTING_TIME, "1d", 1, 7 * 86400,
	  OFF(dmarc_report_interval), -1,
	  "The DMARC report period, aligned to multiples of it since the "
	  "epoch (1d: UTC days, RFC 7489 7.2.1.1); tests shorten it." },
	{ "public_suffix_list", SETTING_PATH,
	  "/usr/share/publicsuffix/public_suffix_list.dat", 0, 0,
	  OFF(public_suffix_list), -1,
	  "The public suffix list for DMARC's Organizational Domains (RFC "
	  "7489 3.2), read at start; keep it current. When it cannot be read "
	  "libpsl's built-in list is used." },
	{ "spf_reject_fail", SETTING_CHOICE, "off", 0, 0, OFF(spf_reject_fail),
	  -1,
	  "on refuses mail whose MAIL FROM fails SPF with 550 5.7.23; off (the "
	  "default, since forwarding breaks SPF) leaves the decision to "
	  "DMARC." },
	{ "auth_timeout", SETTING_TIME, "20s", 1, 300, OFF(auth_timeout), -1,
	  "How long SPF, DKIM and DMARC may take for one message in all; what "
	  "has not finished counts as a temporary error." },
};

static const struct {
	const char *name;
	unsigned int port;
	bool implicit_tls;
} settings_ports[SETTINGS_PORT_COUNT] = {
	[SETTINGS_PORT_SMTP] = { "smtp", 25, false },
	[SETTINGS_PORT_SUBMISSION] = { "submission", 587, false },
	[SETTINGS_PORT_SUBMISSIONS] = { "submissions", 465, true },
	[SETTINGS_PORT_IMAP] = { "imap", 143, false },
	[SETTINGS_PORT_IMAPS] = { "imaps", 993, true },
	[SETTINGS_PORT_POP3] = { "pop3", 110, false },
	[SETTINGS_PORT_POP3S] = { "pop3s", 995, true },
	[SETTINGS_PORT_HTTP] = { "http", 80, false },
	[SETTINGS_PORT_HTTPS] = { "https", 443, true },
};

const char *settings_port_name(enum settings_port port)
{
	i_assert(port < SETTINGS_PORT_COUNT);
	return settings_ports[port].name;
}

unsigned int settings_port_default(enum settings_port port)
{
	i_assert(port < SETTINGS_PORT_COUNT);
	return settings_ports[port].port;
}

bool settings_port_implicit_tls(enum settings_port port)
{
	i_assert(port < SETTINGS_PORT_COUNT);
	return settings_ports[port].implicit_tls;
}

/* A parsed value, before it is moved into the struct. */
struct setting_value {
	bool set;
	unsigned int line;
	uint64_t num;
	char *str;
	char **list;
};

static void str_list_free(char ***_list)
{
	char **list = *_list;

	if (list == NULL)
		return;
	for (char **p = list; *p != NULL; p++)
		free(*p);
	i_free(*_list);
}

static void setting_values_free(struct setting_value *values)
{
	for (size_t i = 0; i < N_ELEMENTS(setting_defs); i++) {
		i_free(values[i].str);
		str_list_free(&values[i].list);
	}
}

/* Formats a number of seconds the way a user would write it. */
static void format_time(struct buf *out, uint64_t secs)
{
	if (secs != 0 && secs % 86400 == 0)
		buf_printf(out, "%llud", (unsigned long long)(secs / 86400));
	else if (secs != 0 && secs % 3600 == 0)
		buf_printf(out, "%lluh", (unsigned long long)(secs / 3600));
	else if (secs != 0 && secs % 60 == 0)
		buf_printf(out, "%llum", (unsigned long long)(secs / 60));
	else
		buf_printf(out, "%llus", (unsigned long long)secs);
}

static void format_size(struct buf *out, uint64_t bytes)
{
	static const char suffixes[] = "GMK";
	uint64_t unit = 1024ULL * 1024 * 1024;

	for (unsigned int i = 0; i < 3; i++, unit /= 1024) {
		if (bytes != 0 && bytes % unit == 0) {
			buf_printf(out, "%llu%c",
				   (unsigned long long)(bytes / unit),
				   suffixes[i]);
			return;
		}
	}
	buf_printf(out, "%llu", (unsigned long long)bytes);
}

static void format_value(struct buf *out, enum setting_type type, uint64_t num)
{
	if (type == SETTING_TIME)
		format_time(out, num);
	else if (type == SETTING_SIZE)
		format_size(out, num);
	else
		buf_printf(out, "%llu", (unsigned long long)num);
}

/* Appends the range of a numeric setting, e.g. "10s..1h". */
static void format_range(struct buf *out, const struct setting_def *def)
{
	format_value(out, def->type, def->min);
	buf_append_str(out, "..");
	format_value(out, def->type, def->max);
}

/* Number with an optional unit suffix. Returns 0, or -1 when s is not a
   number or the suffix is unknown, and -2 when it overflows. */
static int parse_scaled(const char *s, enum setting_type type, uint64_t *num_r)
{
	size_t len = strlen(s), digits = strspn(s, "0123456789");
	uint64_t num, mult = 1;

	if (digits == 0)
		return -1;
	if (len == digits + 1) {
		char c = s[digits];

		if (type == SETTING_SIZE && (c == 'K' || c == 'k'))
			mult = 1024;
		else if (type == SETTING_SIZE && (c == 'M' || c == 'm'))
			mult = 1024 * 1024;
		else if (type == SETTING_SIZE && (c == 'G' || c == 'g'))
			mult = 1024 * 1024 * 1024;
		else if (type == SETTING_TIME && c == 's')
			mult = 1;
		else if (type == SETTING_TIME && c == 'm')
			mult = 60;
		else if (type == SETTING_TIME && c == 'h')
			mult = 3600;
		else if (type == SETTING_TIME && c == 'd')
			mult = 86400;
		else
			return -1;
	} else if (len != digits) {
		return -1;
	}
	if (span_to_u64(span_make(s, digits), UINT64_MAX, &num) < 0)
		return -2;
	if (num > UINT64_MAX / mult)
		return -2;
	*num_r = num * mult;
	return 0;
}

/* RFC 1123 2.1: LDH labels of 1..63 characters, not starting or ending
   with '-', at most 253 characters in all. */
static bool hostname_is_valid(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = name[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || name[i - 1] == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || c == '-') {
			if (label == 0 && c == '-')
				return false;
			label++;
		} else {
			return false;
		}
	}
	return true;
}

static char *parse_addr_list(const char *value, char ***list_r)
{
	struct span rest = span_from_cstr(value), item;
	char **list = NULL;
	size_t count = 0;
	bool more = true, wildcard = false;

	while (more) {
		char *addr;
		union {
			struct in_addr v4;
			struct in6_addr v6;
		} bin;

		more = span_split(rest, ',', &item, &rest);
		item = span_trim(item);
		if (item.len == 0) {
			str_list_free(&list);
			return i_strdup("empty address in list");
		}
		addr = i_strndup(item.p, item.len);
		list = i_realloc(list, (count + 2) * sizeof(*list));
		list[count++] = addr;
		list[count] = NULL;
		if (strcmp(addr, "*") == 0) {
			wildcard = true;
			continue;
		}
		if (inet_pton(AF_INET, addr, &bin) != 1 &&
		    inet_pton(AF_INET6, addr, &bin) != 1) {
			char *error = i_strdup_printf(
				"invalid IP address '%s' (expected an IPv4 "
				"or IPv6 literal, or *)",
				addr);

			str_list_free(&list);
			return error;
		}
	}
	if (wildcard && count > 1) {
		str_list_free(&list);
		return i_strdup("'*' already means all addresses: it cannot "
				"be combined with others");
	}
	*list_r = list;
	return NULL;
}

static const char *def_choices(const struct setting_def *def)
{
	for (size_t i = 0; i < N_ELEMENTS(setting_choices); i++) {
		if (strcmp(setting_choices[i].name, def->name) == 0)
			return setting_choices[i].choices;
	}
	i_unreached();
}

static bool choice_is_valid(const char *choices, const char *value)
{
	struct span rest = span_from_cstr(choices), item;
	bool more = true;

	while (more) {
		more = span_split(rest, '|', &item, &rest);
		if (span_eq(item, span_from_cstr(value)))
			return true;
	}
	return false;
}

/* Parses value for def into v. Returns NULL, or an allocated error. */
static char *setting_parse(const struct setting_def *def, const char *value,
			   struct setting_value *v)
{
	enum log_level level;
	uint64_t num;
	int ret;

	if (value[0] == '\0')
		return i_strdup_printf("'%s' needs a value", def->name);
	switch (def->type) {
	case SETTING_STRING:
	case SETTING_PATH:
		v->str = i_strdup(value);
		return NULL;
	case SETTING_HOSTNAME:
		if (!hostname_is_valid(value)) {
			return i_strdup_printf(
				"invalid host name '%s' (expected letters, "
				"digits and '-' in dot-separated labels)",
				value);
		}
		v->str = i_strdup(value);
		return NULL;
	case SETTING_LOG_LEVEL:
		if (log_level_parse(value, &level) < 0) {
			return i_strdup_printf(
				"invalid log level '%s' (expected debug, "
				"info, warning or error)",
				value);
		}
		v->str = i_strdup(value);
		return NULL;
	case SETTING_ADDR_LIST:
		return parse_addr_list(value, &v->list);
	case SETTING_CHOICE:
		if (!choice_is_valid(def_choices(def), value)) {
			return i_strdup_printf("invalid value '%s' of '%s' "
					       "(expected one of %s)",
					       value, def->name,
					       def_choices(def));
		}
		v->str = i_strdup(value);
		return NULL;
	case SETTING_UINT:
	case SETTING_PORT:
	case SETTING_TIME:
	case SETTING_SIZE:
		break;
	}

	ret = parse_scaled(value, def->type, &num);
	if (ret == -1) {
		return i_strdup_printf(
			"invalid %s '%s'%s", setting_type_names[def->type],
			value,
			def->type == SETTING_TIME
				? " (use a number with an s, m, h or d suffix)"
			: def->type == SETTING_SIZE
				? " (use a number with a K, M or G suffix)"
				: " (use a decimal number)");
	}
	if (ret < 0 || num < def->min || num > def->max) {
		struct buf range = BUF_INIT;
		char *error;

		format_range(&range, def);
		error = i_strdup_printf("value %s of '%s' is out of range (%s)",
					value, def->name, buf_cstr(&range));
		buf_free(&range);
		return error;
	}
	v->num = num;
	return NULL;
}

static const struct setting_def *setting_find(struct span name)
{
	for (size_t i = 0; i < N_ELEMENTS(setting_defs); i++) {
		if (span_eq(name, span_from_cstr(setting_defs[i].name)))
			return &setting_defs[i];
	}
	return NULL;
}

static size_t levenshtein(struct span a, const char *b)
{
	size_t blen = strlen(b), row[SETTINGS_NAME_MAX + 1];

	i_assert(blen <= SETTINGS_NAME_MAX);
	for (size_t j = 0; j <= blen; j++)
		row[j] = j;
	for (size_t i = 1; i <= a.len; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= blen; j++) {
			size_t up = row[j];
			size_t cost = a.p[i - 1] == (uint8_t)b[j - 1] ? 0 : 1;
			size_t best = diag + cost;

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[blen];
}

/* The closest known name within distance 2, or NULL. */
static const char *setting_suggest(struct span name)
{
	const char *best = NULL;
	size_t best_dist = 3;

	if (name.len > SETTINGS_NAME_MAX)
		return NULL;
	for (size_t i = 0; i < N_ELEMENTS(setting_defs); i++) {
		size_t d = levenshtein(name, setting_defs[i].name);

		if (d < best_dist) {
			best_dist = d;
			best = setting_defs[i].name;
		}
	}
	return best;
}

static bool is_name_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* Unquotes or strips the comment from a raw value (after '=', trimmed on
   the left). Returns NULL and fills *value_r, or an allocated error. */
static char *value_extract(struct span raw, char **value_r)
{
	struct buf out = BUF_INIT;
	size_t i;

	if (raw.len > 0 && raw.p[0] == '"') {
		for (i = 1; i < raw.len; i++) {
			uint8_t c = raw.p[i];

			if (c == '"')
				break;
			if (c == '\\') {
				if (i + 1 == raw.len) {
					i = raw.len;
					break;
				}
				c = raw.p[++i];
				if (c != '"' && c != '\\') {
					buf_free(&out);
					return i_strdup("invalid escape in "
							"quoted value (only "
							"\\\" and \\\\ are "
							"allowed)");
				}
			}
			buf_append_c(&out, c);
		}
		if (i >= raw.len) {
			buf_free(&out);
			return i_strdup("unterminated quote");
		}
		/* only whitespace or a comment may follow */
		struct span rest = span_trim(span_skip(raw, i + 1));
		if (rest.len > 0 && rest.p[0] != '#') {
			buf_free(&out);
			return i_strdup("unexpected text after the closing "
					"quote");
		}
		if (rest.len > 0 && rest.p == raw.p + i + 1) {
			buf_free(&out);
			return i_strdup("'#' after the closing quote must be "
					"preceded by whitespace");
		}
	} else {
		/* '#' after whitespace starts a comment; raw always
		   follows the '=', so raw.p[-1] is part of the line */
		for (i = 0; i < raw.len; i++) {
			uint8_t prev = i == 0 ? raw.p[-1] : raw.p[i - 1];

			if (raw.p[i] == '#' && (prev == ' ' || prev == '\t'))
				break;
		}
		buf_append_span(&out, span_trim(span_make(raw.p, i)));
	}
	for (i = 0; i < out.used; i++) {
		uint8_t c = out.data[i];

		if ((c < ' ' && c != '\t') || c == 0x7f) {
			buf_free(&out);
			return i_strdup("control character in value");
		}
	}
	*value_r = i_strdup(buf_cstr(&out));
	buf_free(&out);
	return NULL;
}

/* Parses one line. Returns NULL, or an allocated error without the
   "path:line: " prefix. */
static char *settings_parse_line(struct span line, unsigned int lineno,
				 struct setting_value *values)
{
	const struct setting_def *def;
	struct span name, raw;
	struct setting_value *v;
	char *value = NULL, *error;

	line = span_trim(line);
	if (line.len == 0 || line.p[0] == '#')
		return NULL;
	if (!span_split(line, '=', &name, &raw)) {
		if (line.len <= SETTINGS_NAME_MAX) {
			return i_strdup_printf("missing '=' in '%.*s'",
					       (int)line.len,
					       (const char *)line.p);
		}
		return i_strdup("missing '='");
	}
	name = span_trim(name);
	if (name.len == 0)
		return i_strdup("empty setting name before '='");
	for (size_t i = 0; i < name.len; i++) {
		uint8_t c = name.p[i];

		if (is_name_char(c))
			continue;
		if (c > ' ' && c < 0x7f) {
			return i_strdup_printf(
				"invalid character '%c' in setting name (names "
				"are lower case letters, digits and '_')",
				c);
		}
		return i_strdup_printf("invalid byte 0x%02x in setting name "
				       "(names are lower case letters, digits "
				       "and '_')",
				       c);
	}
	def = setting_find(name);
	if (def == NULL) {
		const char *suggest = setting_suggest(name);

		if (suggest != NULL) {
			return i_strdup_printf(
				"unknown setting '%.*s' (did you mean '%s'?)",
				(int)name.len, (const char *)name.p, suggest);
		}
		return i_strdup_printf("unknown setting '%.*s'", (int)name.len,
				       (const char *)name.p);
	}
	v = &values[def - setting_defs];
	if (v->set) {
		return i_strdup_printf("'%s' is already set on line %u",
				       def->name, v->line);
	}
	error = value_extract(span_trim(raw), &value);
	if (error != NULL)
		return error;
	error = setting_parse(def, value, v);
	i_free(value);
	if (error != NULL)
		return error;
	v->set = true;
	v->line = lineno;
	return NULL;
}

static char *settings_parse_file(const char *path, struct span data,
				 struct setting_value *values)
{
	unsigned int lineno = 0;
	bool more = true;

	while (more) {
		struct span line;
		char *error;

		lineno++;
		more = span_split(data, '\n', &line, &data);
		if (!more && line.len == 0)
			break;
		if (line.len > 0 && line.p[line.len - 1] == '\r')
			line.len--;
		if (line.len > SETTINGS_MAX_LINE) {
			return i_strdup_printf(
				"%s:%u: line is longer than %u bytes", path,
				lineno, SETTINGS_MAX_LINE);
		}
		if (span_find_byte(line, '\0') >= 0)
			return i_strdup_printf("%s:%u: NUL byte in the file",
					       path, lineno);
		error = settings_parse_line(line, lineno, values);
		if (error != NULL) {
			char *full = i_strdup_printf("%s:%u: %s", path, lineno,
						     error);

			i_free(error);
			return full;
		}
	}
	return NULL;
}

/* Reads the whole file into out. Returns NULL or an allocated error. */
static char *settings_read_file(const char *path, struct buf *out)
{
	struct stat st;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return i_strdup_printf("%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		int err = errno;

		close(fd);
		return i_strdup_printf("%s: %s", path, strerror(err));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return i_strdup_printf("%s: not a regular file", path);
	}
	for (;;) {
		uint8_t *p = buf_reserve(out, 8192);
		ssize_t ret = read(fd, p, 8192);

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0) {
			int err = errno;

			close(fd);
			return i_strdup_printf("%s: %s", path, strerror(err));
		}
		if (ret == 0)
			break;
		buf_commit(out, (size_t)ret);
		if (out->used > SETTINGS_MAX_FILE_SIZE) {
			close(fd);
			return i_strdup_printf("%s: file is larger than %u "
					       "bytes",
					       path, SETTINGS_MAX_FILE_SIZE);
		}
	}
	close(fd);
	return NULL;
}

/* dir/path, or path when it is absolute. */
static char *path_join(const char *dir, const char *path)
{
	size_t len = strlen(dir);

	if (path[0] == '/')
		return i_strdup(path);
	while (len > 1 && dir[len - 1] == '/')
		len--;
	return i_strdup_printf("%.*s/%s", (int)len, dir, path);
}

static char *path_absolute(const char *path)
{
	char *cwd, *ret;

	if (path[0] == '/')
		return i_strdup(path);
	cwd = getcwd(NULL, 0);
	if (cwd == NULL)
		return i_strdup(path);
	ret = path_join(cwd, path);
	free(cwd);
	return ret;
}

/* Fills the derived ports and checks them. Returns NULL or an error. */
static char *settings_ports_resolve(const char *path,
				    const struct setting_value *values,
				    struct marmot_settings *set)
{
	unsigned int port_lines[SETTINGS_PORT_COUNT] = { 0 };
	unsigned int base_line = 0;

	for (size_t i = 0; i < N_ELEMENTS(setting_defs); i++) {
		const struct setting_def *def = &setting_defs[i];

		if (strcmp(def->name, "port_base") == 0)
			base_line = values[i].line;
		if (def->type != SETTING_PORT)
			continue;
		if (values[i].set) {
			set->ports[def->port] = (unsigned int)values[i].num;
			port_lines[def->port] = values[i].line;
			continue;
		}
		set->ports[def->port] =
			set->port_base == 0
				? settings_ports[def->port].port
				: set->port_base +
					  settings_ports[def->port].port;
		if (set->ports[def->port] > 65535) {
			return i_strdup_printf(
				"%s:%u: port_base %u puts the %s port at %u, "
				"above 65535 (lower port_base or set %s)",
				path, base_line, set->port_base,
				settings_ports[def->port].name,
				set->ports[def->port], def->name);
		}
	}
	for (unsigned int a = 0; a < SETTINGS_PORT_COUNT; a++) {
		for (unsigned int b = a + 1; b < SETTINGS_PORT_COUNT; b++) {
			unsigned int first = a, second = b;

			if (set->ports[a] == 0 ||
			    set->ports[a] != set->ports[b])
				continue;
			/* report on the later of the explicit lines */
			if (port_lines[a] > port_lines[b]) {
				first = b;
				second = a;
			}
			return i_strdup_printf(
				"%s:%u: %s_port %u is also the %s port", path,
				port_lines[second], settings_ports[second].name,
				set->ports[second], settings_ports[first].name);
		}
	}
	return NULL;
}

static void settings_fill(const struct setting_value *values,
			  struct marmot_settings *set)
{
	for (size_t i = 0; i < N_ELEMENTS(setting_defs); i++) {
		const struct setting_def *def = &setting_defs[i];
		const struct setting_value *v = &values[i];
		void *field = (char *)set + def->offset;

		switch (def->type) {
		case SETTING_STRING:
		case SETTING_HOSTNAME:
		case SETTING_LOG_LEVEL:
		case SETTING_CHOICE:
			*(char **)field = i_strdup(v->str);
			break;
		case SETTING_PATH:
			*(char **)field = path_join(set->data_dir, v->str);
			break;
		case SETTING_ADDR_LIST: {
			size_t n = 0;
			char **list;

			while (v->list[n] != NULL)
				n++;
			list = i_new(char *, n + 1);
			for (size_t j = 0; j < n; j++)
				list[j] = i_strdup(v->list[j]);
			*(char ***)field = list;
			break;
		}
		case SETTING_UINT:
		case SETTING_TIME:
			*(unsigned int *)field = (unsigned int)v->num;
			break;
		case SETTING_SIZE:
			*(uint64_t *)field = v->num;
			break;
		case SETTING_PORT:
			/* settings_ports_resolve() */
			break;
		}
	}
}

int settings_load(const char *data_dir, const char *config_path,
		  struct marmot_settings **set_r, char **error_r)
{
	struct setting_value values[N_ELEMENTS(setting_defs)];
	struct marmot_settings *set;
	struct buf data = BUF_INIT;
	char *path, *error;

	*set_r = NULL;
	*error_r = NULL;
	if (data_dir == NULL && config_path == NULL) {
		*error_r = i_strdup("no data directory or configuration file "
				    "given");
		return -1;
	}
	path = config_path != NULL ? i_strdup(config_path)
				   : path_join(data_dir, SETTINGS_FILE_NAME);
	memset(values, 0, sizeof(values));
	error = settings_read_file(path, &data);
	if (error == NULL)
		error = settings_parse_file(path, buf_span(&data), values);
	buf_free(&data);

	for (size_t i = 0; error == NULL && i < N_ELEMENTS(setting_defs); i++) {
		const struct setting_def *def = &setting_defs[i];
		char *def_error;

		if (values[i].set || def->type == SETTING_PORT)
			continue;
		if (def->def == NULL) {
			error = i_strdup_printf("%s: '%s' is required", path,
						def->name);
			break;
		}
		def_error = setting_parse(def, def->def, &values[i]);
		if (def_error != NULL)
			i_panic("settings: bad default of %s: %s", def->name,
				def_error);
	}
	if (error != NULL) {
		setting_values_free(values);
		i_free(path);
		*error_r = error;
		return -1;
	}

	set = i_new(struct marmot_settings, 1);
	set->config_path = path_absolute(path);
	if (data_dir != NULL) {
		set->data_dir = path_absolute(data_dir);
	} else {
		/* no data directory: the file's directory stands in */
		char *slash = strrchr(set->config_path, '/');

		set->data_dir =
			i_strndup(set->config_path,
				  slash == set->config_path
					  ? 1
					  : (size_t)(slash - set->config_path));
	}
	settings_fill(values, set);
	error = settings_ports_resolve(path, values, set);
	setting_values_free(values);
	i_free(path);
	if (error != NULL) {
		settings_free(&set);
		*error_r = error;
		return -1;
	}
	*set_r = set;
	return 0;
}

void settings_free(struct marmot_settings **_set)
{
	struct marmot_settings *set = *_set;

	if (set == NULL)
		return;
	*_set = NULL;
	i_free(set->data_dir);
	i_free(set->config_path);
	i_free(set->hostname);
	i_free(set->user);
	str_list_free(&set->listen);
	i_free(set->tls_cert);
	i_free(set->dns_resolver);
	i_free(set->dns_trust_anchor_file);
	i_free(set->tls_key);
	i_free(set->log_level);
	i_free(set->queue_relay_host);
	i_free(set->queue_tls_ca);
	i_free(set->queue_mta_sts);
	i_free(set->queue_tlsrpt);
	str_list_free(&set->public_addresses);
	i_free(set->mta_sts_mode);
	i_free(set->dmarc_policy);
	i_free(set->auth_throttle_localhost);
	i_free(set->authserv_id);
	i_free(set->public_suffix_list);
	i_free(set->dmarc_enforce);
	i_free(set->dmarc_tree_walk);
	i_free(set->dmarc_report);
	i_free(set->spf_reject_fail);
	i_free(set);
}

/* Appends text as '# ' comment lines wrapped at 78 columns. */
static void append_wrapped_comment(struct buf *out, const char *text)
{
	struct span rest = span_from_cstr(text);

	while (rest.len > 0) {
		size_t len = rest.len;

		if (len > 76) {
			len = 76;
			while (len > 0 && rest.p[len] != ' ')
				len--;
			if (len == 0)
				len = 76;
		}
		buf_append_str(out, "# ");
		buf_append(out, rest.p, len);
		buf_append_c(out, '\n');
		rest = span_skip(rest, len);
		while (rest.len > 0 && rest.p[0] == ' ')
			rest = span_skip(rest, 1);
	}
}

/* Appends value in file syntax, quoted when it must be. */
static void append_conf_value(struct buf *out, const char *value)
{
	size_t len = strlen(value);
	bool quote = len == 0 || value[0] == ' ' || value[0] == '\t' ||
		     value[len - 1] == ' ' || value[len - 1] == '\t' ||
		     value[0] == '"' || strchr(value, '#') != NULL;

	if (!quote) {
		buf_append_str(out, value);
		return;
	}
	buf_append_c(out, '"');
	for (const char *p = value; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			buf_append_c(out, '\\');
		buf_append_c(out, (uint8_t)*p);
	}
	buf_append_c(out, '"');
}

/* The default shown for a setting: its table default, or for ports the
   value derived from port_base. */
static void append_default(struct buf *out, const struct setting_def *def,
			   unsigned int port_base)
{
	if (def->type == SETTING_PORT) {
		unsigned int std = settings_ports[def->port].port;

		buf_printf(out, "%u", port_base == 0 ? std : port_base + std);
	} else if (def->def != NULL) {
		append_conf_value(out, def->def);
	}
}

void settings_write_default(struct buf *out, const char *hostname,
			    const char *listen, unsigned int port_base,
			    const char *user)
{
	buf_append_str(out, "# marmot.conf - the Marmot configuration file.\n"
			    "#\n");
	append_wrapped_comment(out, settings_syntax);
	buf_append_str(out, "#\n");
	append_wrapped_comment(
		out, "Settings that are commented out have the default shown. "
		     "doc/config.md describes every setting.");

	for (size_t i = 0; i < N_ELEMENTS(setting_defs); i++) {
		const struct setting_def *def = &setting_defs[i];
		const char *given = NULL;
		char num[16];

		if (strcmp(def->name, "hostname") == 0) {
			given = hostname;
		} else if (strcmp(def->name, "listen") == 0) {
			given = listen;
		} else if (strcmp(def->name, "user") == 0) {
			given = user;
		} else if (strcmp(def->name, "port_base") == 0 &&
			   port_base != 0) {
			snprintf(num, sizeof(num), "%u", port_base);
			given = num;
		}
		if (given != NULL && def->def != NULL &&
		    strcmp(given, def->def) == 0)
			given = NULL;

		buf_append_c(out, '\n');
		append_wrapped_comment(out, def->doc);
		if (given != NULL) {
			buf_printf(out, "%s = ", def->name);
			append_conf_value(out, given);
		} else if (def->def == NULL && def->type != SETTING_PORT) {
			buf_printf(out, "#%s = mail.example.com", def->name);
		} else {
			buf_printf(out, "#%s = ", def->name);
			append_default(out, def, port_base);
		}
		buf_append_c(out, '\n');
	}
}

void settings_write_doc(struct buf *out)
{
	buf_append_str(out, "# marmot.conf reference\n\n");
	buf_append_str(out,
		       "`marmot.conf` in the data directory is the one "
		       "configuration file. This page is generated from the "
		       "settings table in `src/lib/settings.c` "
		       "(`settings_write_doc()`), and a unit test checks that "
		       "the two agree.\n\n");
	buf_append_str(out, settings_syntax);
	buf_append_str(out, "\n\n");
	buf_append_str(out, "| name | type | default | range | meaning |\n"
			    "|---|---|---|---|---|\n");
	for (size_t i = 0; i < N_ELEMENTS(setting_defs); i++) {
		const struct setting_def *def = &setting_defs[i];

		buf_printf(out, "| `%s` | %s | ", def->name,
			   setting_type_names[def->type]);
		if (def->type == SETTING_PORT)
			buf_printf(out, "port_base + %u",
				   settings_ports[def->port].port);
		else if (def->def == NULL)
			buf_append_str(out, "(required)");
		else
			buf_printf(out, "`%s`", def->def);
		buf_append_str(out, " | ");
		switch (def->type) {
		case SETTING_UINT:
		case SETTING_PORT:
		case SETTING_TIME:
		case SETTING_SIZE:
			format_range(out, def);
			break;
		case SETTING_LOG_LEVEL:
			buf_append_str(out, "debug, info, warning, error");
			break;
		case SETTING_CHOICE:
			for (const char *c = def_choices(def); *c != '\0';
			     c++) {
				if (*c == '|')
					buf_append_str(out, ", ");
				else
					buf_append_c(out, (uint8_t)*c);
			}
			break;
		default:
			break;
		}
		buf_printf(out, " | %s |\n", def->doc);
	}
}
