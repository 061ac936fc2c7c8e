#ifndef MARMOT_SETTINGS_H
#define MARMOT_SETTINGS_H
/* marmot.conf: the one configuration file (ARCHITECTURE.md 3).

   Syntax: one "name = value" per line; '#' starts a comment at the start of
   a line or after whitespace; blank lines are ignored; names are lower case
   letters, digits and '_'; values are trimmed and may be double-quoted
   (with \" and \\ escapes) to keep leading/trailing spaces or a '#'. Lists
   are comma-separated. Sizes take K/M/G suffixes (powers of 1024), times
   take s/m/h/d suffixes (no suffix = seconds).

   The settings are one table (Redis config.c): name, type, default, limits
   and the reason for the default, from which doc/config.md is checked. An
   unknown name, a value of the wrong type or out of range, or a duplicate
   is an error that names the file, the line and what is wrong, e.g.
     marmot.conf:12: unknown setting 'hostnme' (did you mean 'hostname'?)
   Nothing is partially applied: settings_load() either fills the whole
   struct or returns -1. */

#include "lib.h"

struct buf;

enum settings_port {
	SETTINGS_PORT_SMTP,
	SETTINGS_PORT_SUBMISSION,
	SETTINGS_PORT_SUBMISSIONS,
	SETTINGS_PORT_IMAP,
	SETTINGS_PORT_IMAPS,
	SETTINGS_PORT_POP3,
	SETTINGS_PORT_POP3S,
	SETTINGS_PORT_HTTP,
	SETTINGS_PORT_HTTPS,
	SETTINGS_PORT_COUNT
};

struct marmot_settings {
	/* Set by the caller, not from the file: the data directory. */
	char *data_dir;
	/* Absolute path of the file that was loaded. */
	char *config_path;

	char *hostname; /* required */
	char *user; /* run-as user when started as root */
	char **listen; /* NULL-terminated list of addresses */
	unsigned int port_base; /* 0 = standard ports */
	/* Effective ports (port_base + standard offset, or the standard port,
	   unless given explicitly as smtp_port etc.). 0 disables a listener. */
	unsigned int ports[SETTINGS_PORT_COUNT];
	char *tls_cert; /* absolute (relative ones resolved against
			   data_dir) */
	char *tls_key;
	char *log_level;
	/* The resolver (src/lib-dns/dns.h). */
	char *dns_resolver; /* "resolv.conf" or ADDR[@PORT],... */
	char *dns_trust_anchor_file; /* "none" or an absolute path */
	unsigned int dns_timeout; /* seconds per lookup */
	/* Published DNS (marmot dns records|check) and our MTA-STS policy. */
	char **public_addresses; /* NULL-terminated; { "*" } = unstated */
	char *mta_sts_mode; /* "none", "testing" or "enforce" */
	unsigned int mta_sts_max_age; /* seconds */
	char *dmarc_policy; /* "quarantine" or "reject" */
	unsigned int vault_max_hashes;
	unsigned int auth_cache_ttl; /* seconds */
	unsigned int max_connections; /* front, total */
	unsigned int max_connections_per_ip; /* IPv6: per /64 */
	unsigned int shutdown_timeout; /* seconds */
	unsigned int idle_timeout; /* seconds, pre-auth */
	unsigned int login_timeout; /* seconds: IMAP, POP3, submission */
	unsigned int imap_idle_timeout; /* seconds, authenticated IMAP */
	/* Failed logins (vault-throttle.h). */
	unsigned int auth_max_failures_per_ip;
	unsigned int auth_max_failures_per_user;
	unsigned int auth_failure_window; /* seconds */
	char *auth_throttle_localhost; /* "exempt" or "count" */
	uint64_t max_line_length; /* bytes */
	/* SMTP and submission (front-smtp.c). */
	uint64_t smtp_max_message_size; /* bytes */
	unsigned int smtp_max_recipients; /* per transaction */
	unsigned int smtp_max_errors; /* per session */
	unsigned int submission_rate_limit; /* messages/hour/account, 0 off */
	/* The outbound queue (front-queue.c). */
	char *queue_relay_host; /* "none" or HOST:PORT, [IPv6]:PORT */
	unsigned int queue_retry_min; /* seconds */
	unsigned int queue_retry_max; /* seconds */
	unsigned int queue_max_age; /* seconds */
	unsigned int queue_max_per_domain; /* connections */
	unsigned int queue_scan_interval; /* seconds */
	unsigned int queue_timeout; /* seconds, per SMTP command */
	/* Outbound TLS policy (front-tlspolicy.c). */
	char *queue_tls_ca; /* "system" or an absolute path */
	char *queue_mta_sts; /* "on" or "off" */
	char *queue_tlsrpt; /* "on" or "off" */
	unsigned int queue_tlsrpt_interval; /* seconds */
	/* Inbound authentication on port 25 (front-mailauth.c). */
	char *authserv_id; /* "*" = hostname */
	char *dmarc_enforce; /* "on" or "off" */
	char *dmarc_tree_walk; /* "on" or "off" */
	char *dmarc_report; /* "on" or "off" */
	unsigned int dmarc_report_interval; /* seconds */
	char *public_suffix_list; /* absolute path */
	char *spf_reject_fail; /* "on" or "off" */
	unsigned int auth_timeout; /* seconds per message */
};

/* Standard names and ports: "smtp" 25, "submission" 587, "submissions"
   465, "imap" 143, "imaps" 993, "pop3" 110, "pop3s" 995, "http" 80,
   "https" 443. */
const char *settings_port_name(enum settings_port port);
unsigned int settings_port_default(enum settings_port port);
/* True for ports that speak TLS from the first byte. */
bool settings_port_implicit_tls(enum settings_port port);

/* Loads data_dir/marmot.conf (or config_path if not NULL). Returns 0, or
   -1 with *error_r = "path:line: what is wrong" (or the open error).
   *error_r is allocated and must be freed by the caller. */
int settings_load(const char *data_dir, const char *config_path,
		  struct marmot_settings **set_r, char **error_r);
void settings_free(struct marmot_settings **set);

/* Appends a documented marmot.conf for `marmot init`: every setting with
   its default commented out, and the given values set. */
void settings_write_default(struct buf *out, const char *hostname,
			    const char *listen, unsigned int port_base,
			    const char *user);
/* Appends the settings reference as Markdown (doc/config.md is this text;
   a test checks that they agree). */
void settings_write_doc(struct buf *out);

#endif
