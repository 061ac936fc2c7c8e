/* cli-dns.c - `marmot dns records DOMAIN` prints the zone-file lines a
   hosted domain must publish, and `marmot dns check DOMAIN [--resolver
   ADDR[:PORT]]` compares them with live DNS and prints one line per
   record (OK, WARNING, MISSING, WRONG, ERROR) with the fix. The logic is
   lib-auth's dns-doctor.h; this file gathers its input (settings, the
   domain's DKIM keys, our certificate) and runs lib-dns in an ioloop. */

#include "cli.h"
#include "buf.h"
#include "directory.h"
#include "dns-doctor.h"
#include "ioloop.h"
#include "settings.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CERT_MAX_SIZE (1024 * 1024)

struct cli_dns {
	struct marmot_settings *set;
	struct dns_doctor_input in;
	const struct dns_doctor_record *records;
	unsigned int count;
	bool ok;
	struct ioloop *ioloop;
};

/* Our certificate's SPKI digest, or NULL when there is none to read. */
static const char *cli_dns_tlsa(pool_t pool, const char *path)
{
	struct buf pem = BUF_INIT;
	const char *hex = NULL, *error;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	for (;;) {
		uint8_t *p = buf_reserve(&pem, 4096);
		ssize_t ret = read(fd, p, 4096);

		if (ret <= 0)
			break;
		buf_commit(&pem, (size_t)ret);
		if (pem.used > CERT_MAX_SIZE)
			break;
	}
	close(fd);
	if (dns_doctor_tlsa_spki(pool, pem.data, pem.used, &hex, &error) < 0)
		cli_error("%s: %s (no TLSA record)", path, error);
	buf_free(&pem);
	return hex;
}

static int cli_dns_prepare(struct cli_context *ctx, struct cli_dns *d)
{
	const struct directory_dkim_key *keys;
	struct dns_doctor_dkim *dkim;
	unsigned int key_count, n = 0;
	const char *error, *text, *id;
	char *set_error;

	if (settings_load(ctx->data_dir, NULL, &d->set, &set_error) < 0) {
		cli_error("%s", set_error);
		free(set_error);
		return -1;
	}
	if (!directory_domain_exists(ctx->dir, ctx->domain)) {
		cli_error("domain %s is not hosted here", ctx->domain);
		return -1;
	}
	if (directory_dkim_key_list(ctx->dir, ctx->domain, ctx->pool, &keys,
				    &key_count, &error) < 0) {
		cli_error("%s", error);
		return -1;
	}
	dkim = p_new(ctx->pool, struct dns_doctor_dkim, key_count + 1);
	for (unsigned int i = 0; i < key_count; i++) {
		dkim[n].selector = keys[i].selector;
		dkim[n].public_record = keys[i].public_record;
		dkim[n].state = keys[i].state;
		n++;
	}
	if (mtasts_policy_ours(ctx->pool, d->set, &text, &id, &error) < 0) {
		cli_error("%s", error);
		return -1;
	}
	d->in.domain = ctx->domain;
	d->in.hostname = d->set->hostname;
	d->in.dkim = dkim;
	d->in.dkim_count = n;
	d->in.mta_sts_id = id;
	d->in.dmarc_policy = d->set->dmarc_policy;
	if (d->set->public_addresses[0] != NULL &&
	    strcmp(d->set->public_addresses[0], "*") != 0) {
		d->in.addresses = (const char *const *)d->set->public_addresses;
		while (d->set->public_addresses[d->in.address_count] != NULL)
			d->in.address_count++;
	}
	d->in.tlsa_spki_sha256 = cli_dns_tlsa(ctx->pool, d->set->tls_cert);
	d->in.submissions_port = d->set->ports[SETTINGS_PORT_SUBMISSIONS];
	d->in.imaps_port = d->set->ports[SETTINGS_PORT_IMAPS];
	d->in.pop3s_port = d->set->ports[SETTINGS_PORT_POP3S];
	if (dns_doctor_records(ctx->pool, &d->in, &d->records, &d->count,
			       &error) < 0) {
		cli_error("%s", error);
		return -1;
	}
	if (n == 0)
		cli_error(
			"domain %s has no DKIM keys: run marmot dkim generate "
			"%s",
			ctx->domain, ctx->domain);
	return 0;
}

int cli_dns_records_run(struct cli_context *ctx)
{
	struct cli_dns d = { 0 };
	struct buf out = BUF_INIT;

	if (cli_dns_prepare(ctx, &d) < 0) {
		settings_free(&d.set);
		return CLI_EXIT_FAILURE;
	}
	buf_printf(&out, "; DNS records for %s (marmot dns records)\n",
		   ctx->domain);
	for (unsigned int i = 0; i < d.count; i++)
		dns_doctor_record_format(&out, &d.records[i]);
	fputs(buf_cstr(&out), stdout);
	buf_free(&out);
	settings_free(&d.set);
	return d.in.dkim_count == 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

static void cli_dns_checked(void *context,
			    const struct dns_doctor_finding *findings,
			    unsigned int count)
{
	struct cli_dns *d = context;

	for (unsigned int i = 0; i < count; i++) {
		const struct dns_doctor_finding *f = &findings[i];

		printf("%-7s %-12s %s: %s\n", dns_doctor_status_name(f->status),
		       f->record->what, f->record->name, f->detail);
		if (f->fix != NULL)
			printf("        fix: %s\n", f->fix);
	}
	d->ok = dns_doctor_findings_ok(findings, count);
	ioloop_stop(d->ioloop);
}

/* "ADDR[:PORT]", "[V6]:PORT" or a bare IPv6 literal into lib-dns's
   "ADDR@PORT". */
static const char *cli_dns_resolver(pool_t pool, const char *arg)
{
	const char *colon = strrchr(arg, ':');

	if (arg[0] == '[') {
		const char *end = strchr(arg, ']');

		if (end == NULL)
			return NULL;
		if (end[1] == '\0')
			return p_strndup(pool, arg + 1,
					 (size_t)(end - arg - 1));
		if (end[1] != ':')
			return NULL;
		return p_strdup_printf(pool, "%.*s@%s", (int)(end - arg - 1),
				       arg + 1, end + 2);
	}
	if (colon == NULL || strchr(arg, ':') != colon)
		return arg; /* IPv4 without port, or bare IPv6 */
	return p_strdup_printf(pool, "%.*s@%s", (int)(colon - arg), arg,
			       colon + 1);
}

int cli_dns_check_run(struct cli_context *ctx)
{
	struct cli_dns d = { 0 };
	struct dns_settings dset;
	struct auth_dns adns;
	struct dns_doctor_check *check;
	struct dns *dns;
	const char *error;
	int ret = CLI_EXIT_FAILURE;

	if (cli_dns_prepare(ctx, &d) < 0) {
		settings_free(&d.set);
		return CLI_EXIT_FAILURE;
	}
	dns_settings_init(&dset, d.set);
	if (ctx->opt[CLI_OPT_RESOLVER] != NULL) {
		dset.resolver =
			cli_dns_resolver(ctx->pool, ctx->opt[CLI_OPT_RESOLVER]);
		if (dset.resolver == NULL) {
			settings_free(&d.set);
			return cli_usage_error(ctx, "invalid --resolver: %s",
					       ctx->opt[CLI_OPT_RESOLVER]);
		}
	}
	d.ioloop = ioloop_create();
	dns = dns_create(d.ioloop, &dset, &error);
	if (dns == NULL) {
		cli_error("resolver: %s", error);
	} else {
		auth_dns_init_dns(&adns, dns);
		check = dns_doctor_check_start(&adns, &d.in, d.records, d.count,
					       cli_dns_checked, &d);
		(void)check;
		ioloop_run(d.ioloop);
		dns_destroy(&dns);
		if (d.ok && d.in.dkim_count > 0)
			ret = CLI_EXIT_OK;
	}
	ioloop_destroy(&d.ioloop);
	settings_free(&d.set);
	return ret;
}
