/* cli-dmarc.c - `marmot dmarc import FILE` and `marmot dmarc reports`:
   the DMARC aggregate reports other receivers sent us (RFC 7489 7.2),
   read with dmarc-report.c (gzip or XML) and summarised one line each in
   DATA/dmarc-reports.tsv: org, report id, domain, begin, end, messages,
   passed (aligned DKIM or SPF, RFC 7489 3), failed. */

#include "lib.h"
#include "cli.h"
#include "buf.h"
#include "dmarc-report.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define CLI_DMARC_FILE "dmarc-reports.tsv"
/* A gzip'ed report larger than this is refused before inflating. */
#define CLI_DMARC_MAX_FILE (DMARC_REPORT_MAX_XML)

/* Tabs, newlines and other controls of a sender's text become '?'. */
static const char *cli_dmarc_field(pool_t pool, const char *s)
{
	char *out = p_strdup(pool, s == NULL ? "" : s);

	for (char *p = out; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
	return out[0] == '\0' ? "-" : out;
}

static int cli_dmarc_read(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "rb");
	char chunk[8192];
	size_t n;

	if (f == NULL) {
		cli_error("%s: %s", path, strerror(errno));
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (out->used + n > CLI_DMARC_MAX_FILE) {
			cli_error("%s: larger than %u bytes", path,
				  (unsigned int)CLI_DMARC_MAX_FILE);
			fclose(f);
			return -1;
		}
		buf_append(out, chunk, n);
	}
	if (ferror(f)) {
		cli_error("%s: read error", path);
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

int cli_dmarc_import_run(struct cli_context *ctx)
{
	const char *path = ctx->args[0], *error;
	const char *file =
		p_strdup_printf(ctx->pool, "%s/" CLI_DMARC_FILE, ctx->data_dir);
	struct dmarc_report rpt;
	struct buf data = BUF_INIT;
	unsigned long long total = 0, pass = 0;
	char line[2048];
	const char *org, *id;
	FILE *f;

	if (cli_dmarc_read(path, &data) < 0) {
		buf_free(&data);
		return CLI_EXIT_FAILURE;
	}
	if (dmarc_report_parse(ctx->pool, buf_span(&data).p, data.used, &rpt,
			       &error) < 0) {
		buf_free(&data);
		cli_error("%s: %s", path, error);
		return CLI_EXIT_FAILURE;
	}
	buf_free(&data);
	for (unsigned int i = 0; i < rpt.row_count; i++) {
		total += rpt.rows[i].count;
		/* RFC 7489 3: DMARC passes with either aligned identifier. */
		if (rpt.rows[i].dkim_pass || rpt.rows[i].spf_pass)
			pass += rpt.rows[i].count;
	}
	org = cli_dmarc_field(ctx->pool, rpt.org_name);
	id = cli_dmarc_field(ctx->pool, rpt.report_id);
	/* A report sent twice is stored once (RFC 7489 7.2.1.1: org and
	   report id identify it). */
	f = fopen(file, "r");
	if (f != NULL) {
		const char *key =
			p_strdup_printf(ctx->pool, "%s\t%s\t", org, id);

		while (fgets(line, sizeof(line), f) != NULL) {
			if (strncmp(line, key, strlen(key)) == 0) {
				fclose(f);
				printf("already imported: %s %s\n", org, id);
				return CLI_EXIT_OK;
			}
		}
		fclose(f);
	}
	f = fopen(file, "a");
	if (f == NULL) {
		cli_error("%s: %s", file, strerror(errno));
		return CLI_EXIT_FAILURE;
	}
	fprintf(f, "%s\t%s\t%s\t%lld\t%lld\t%llu\t%llu\t%llu\n", org, id,
		cli_dmarc_field(ctx->pool, rpt.domain), (long long)rpt.begin,
		(long long)rpt.end, total, pass, total - pass);
	if (fclose(f) != 0) {
		cli_error("%s: %s", file, strerror(errno));
		return CLI_EXIT_FAILURE;
	}
	printf("imported: %s %s domain=%s messages=%llu pass=%llu "
	       "fail=%llu\n",
	       org, id, cli_dmarc_field(ctx->pool, rpt.domain), total, pass,
	       total - pass);
	return CLI_EXIT_OK;
}

static const char *cli_dmarc_date(pool_t pool, const char *unix_time)
{
	time_t t = (time_t)strtoll(unix_time, NULL, 10);
	char out[32];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return p_strdup(pool, out);
}

int cli_dmarc_reports_run(struct cli_context *ctx)
{
	const char *file =
		p_strdup_printf(ctx->pool, "%s/" CLI_DMARC_FILE, ctx->data_dir);
	char line[2048];
	FILE *f;

	printf("org\treport_id\tdomain\tbegin\tend\tmessages\tpass\tfail\n");
	f = fopen(file, "r");
	if (f == NULL)
		return errno == ENOENT ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *v[8], *p = line;
		unsigned int n = 0;

		line[strcspn(line, "\n")] = '\0';
		while (n < 8) {
			v[n++] = p;
			p = strchr(p, '\t');
			if (p == NULL)
				break;
			*p++ = '\0';
		}
		if (n != 8)
			continue;
		printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v[0], v[1], v[2],
		       cli_dmarc_date(ctx->pool, v[3]),
		       cli_dmarc_date(ctx->pool, v[4]), v[5], v[6], v[7]);
	}
	fclose(f);
	return CLI_EXIT_OK;
}
