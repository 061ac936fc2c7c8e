/* cli-dmarc.c - `marmot dmarc import FILE` and `marmot dmarc reports`:
   the DMARC aggregate reports other receivers sent us (RFC 7489 7.2),
   read with dmarc-report.c (gzip or XML) and summarised one line each in
   DATA/dmarc-reports.tsv: org, report id, domain, begin, end, messages,
   passed (aligned DKIM or SPF, RFC 7489 3), failed. */

#include "lib.h"
#include "cli.h"
#include "buf.h"
#include "dmarc-report.h"
#include "message-decode.h"
#include "mime-parser.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
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

/* Parses one report (gzip or XML) and appends its summary line unless
   the same org and report id is stored already. Returns 1 stored, 0
   already there, -1 not a report or a write error (printed, with what as
   the name). */
static int cli_dmarc_store(struct cli_context *ctx, const char *what,
			   const uint8_t *data, size_t len)
{
	const char *file =
		p_strdup_printf(ctx->pool, "%s/" CLI_DMARC_FILE, ctx->data_dir);
	struct dmarc_report rpt;
	unsigned long long total = 0, pass = 0;
	char line[2048];
	const char *org, *id, *error;
	FILE *f;

	if (dmarc_report_parse(ctx->pool, data, len, &rpt, &error) < 0) {
		cli_error("%s: %s", what, error);
		return -1;
	}
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
				return 0;
			}
		}
		fclose(f);
	}
	f = fopen(file, "a");
	if (f == NULL) {
		cli_error("%s: %s", file, strerror(errno));
		return -1;
	}
	fprintf(f, "%s\t%s\t%s\t%lld\t%lld\t%llu\t%llu\t%llu\n", org, id,
		cli_dmarc_field(ctx->pool, rpt.domain), (long long)rpt.begin,
		(long long)rpt.end, total, pass, total - pass);
	if (fclose(f) != 0) {
		cli_error("%s: %s", file, strerror(errno));
		return -1;
	}
	printf("imported: %s %s domain=%s messages=%llu pass=%llu "
	       "fail=%llu\n",
	       org, id, cli_dmarc_field(ctx->pool, rpt.domain), total, pass,
	       total - pass);
	return 1;
}

int cli_dmarc_import_run(struct cli_context *ctx)
{
	const char *path = ctx->args[0];
	struct buf data = BUF_INIT;
	int ret;

	if (cli_dmarc_read(path, &data) < 0) {
		buf_free(&data);
		return CLI_EXIT_FAILURE;
	}
	ret = cli_dmarc_store(ctx, path, buf_span(&data).p, data.used);
	buf_free(&data);
	return ret < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

/* ---- dmarc fetch ADDRESS [--mailbox NAME] ---- */

struct cli_dmarc_fetch {
	struct cli_context *ctx;
	unsigned int messages, reports, stored, bad;
};

/* RFC 7489 7.2.1.1: the report is a gzip'ed (application/gzip) XML
   file; some receivers send text/xml or application/xml, or label the
   attachment application/octet-stream with a .xml.gz name. */
static bool cli_dmarc_is_report_part(const struct mime_part *part)
{
	const char *name;
	size_t len;

	if (strcmp(part->type, "application") == 0 &&
	    (strcmp(part->subtype, "gzip") == 0 ||
	     strcmp(part->subtype, "x-gzip") == 0 ||
	     strcmp(part->subtype, "xml") == 0))
		return true;
	if (strcmp(part->type, "text") == 0 &&
	    strcmp(part->subtype, "xml") == 0)
		return true;
	name = mime_param_get(part->disp_params, part->disp_param_count,
			      "filename");
	if (name == NULL)
		name = mime_param_get(part->params, part->param_count, "name");
	if (name == NULL)
		return false;
	len = strlen(name);
	return (len > 7 && strcasecmp(name + len - 7, ".xml.gz") == 0) ||
	       (len > 4 && strcasecmp(name + len - 4, ".xml") == 0);
}

static void cli_dmarc_fetch_part(struct cli_dmarc_fetch *fetch,
				 const struct buf *msg,
				 const struct mime_part *part)
{
	for (const struct mime_part *c = part->children; c != NULL; c = c->next)
		cli_dmarc_fetch_part(fetch, msg, c);
	if (part->children != NULL || !cli_dmarc_is_report_part(part))
		return;

	struct buf body = BUF_INIT;
	struct span in = { buf_span(msg).p + part->body_offset,
			   (size_t)(part->body_end - part->body_offset) };
	int ret;

	fetch->reports++;
	if (message_decode(message_decode_encoding_parse(part->encoding), in,
			   CLI_DMARC_MAX_FILE, &body) != 0) {
		cli_error("message %u: report attachment larger than %u bytes",
			  fetch->messages, (unsigned int)CLI_DMARC_MAX_FILE);
		fetch->bad++;
	} else {
		ret = cli_dmarc_store(fetch->ctx,
				      p_strdup_printf(fetch->ctx->pool,
						      "message %u",
						      fetch->messages),
				      buf_span(&body).p, body.used);
		if (ret < 0)
			fetch->bad++;
		else
			fetch->stored += (unsigned int)ret;
	}
	buf_free(&body);
}

static int cli_dmarc_fetch_message(const struct buf *data, void *context)
{
	struct cli_dmarc_fetch *fetch = context;
	pool_t pool = pool_create("dmarc fetch", 16384);
	struct mime_result mime;

	fetch->messages++;
	mime_parse(pool, NULL, buf_span(data).p, data->used, &mime);
	cli_dmarc_fetch_part(fetch, data, mime.root);
	pool_unref(&pool);
	return 0;
}

int cli_dmarc_fetch_run(struct cli_context *ctx)
{
	const char *mailbox = ctx->opt[CLI_OPT_MAILBOX];
	struct cli_dmarc_fetch fetch = { .ctx = ctx };

	if (cli_store_each_message(ctx, mailbox == NULL ? "INBOX" : mailbox,
				   cli_dmarc_fetch_message, &fetch) != 0)
		return CLI_EXIT_FAILURE;
	printf("%u messages, %u report attachments, %u new reports stored, "
	       "%u unreadable\n",
	       fetch.messages, fetch.reports, fetch.stored, fetch.bad);
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
