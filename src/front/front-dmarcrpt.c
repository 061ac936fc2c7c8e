/* front-dmarcrpt.c - DMARC aggregate reports we send (RFC 7489 7.2), see
   front-dmarcrpt.h. Periods and their hand-over to the queue as the TLS
   reports of front-tlspolicy.c do it. */

#include "lib.h"
#include "front-dmarcrpt.h"
#include "auth-report.h"
#include "front-private.h"
#include "front-queue.h"
#include "buf.h"
#include "dmarc-report.h"
#include "dns.h"
#include "ioloop.h"
#include "log.h"
#include "pool.h"
#include "queue.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Memory bounds: results of further domains or sources are dropped (and
   logged once per period). */
#define FDR_MAX_DOMAINS 1000
#define FDR_MAX_ROWS 1000
#define FDR_MAX_RUA 4

struct fdr_row {
	struct fdr_row *next;
	struct dmarc_report_row row;
};

struct fdr_domain {
	struct fdr_domain *next;
	const char *domain, *org_domain;
	const char *rua[FDR_MAX_RUA];
	unsigned int rua_count;
	struct dmarc_record rec;
	struct fdr_row *rows;
	unsigned int row_count;
};

struct fdr_period {
	pool_t pool;
	struct fdr_domain *domains;
	unsigned int domain_count;
	bool overflow_logged;
	time_t start, end;
	unsigned int refs;
};

/* One rua address waiting for its external destination check. */
struct fdr_send {
	struct fdr_send *next;
	struct fdr_period *period;
	const struct fdr_domain *d;
	char *rcpt;
	struct dns_lookup *lookup;
};

static struct {
	struct front *front;
	struct dns *dns;
	const psl_ctx_t *psl;
	struct fdr_period *cur;
	struct timeout *timer;
	struct fdr_send *sends;
} fdr;

static struct fdr_period *fdr_period_new(time_t start)
{
	struct fdr_period *p = i_new(struct fdr_period, 1);

	p->pool = pool_create("dmarc report", 4096);
	p->start = start;
	p->refs = 1;
	return p;
}

static void fdr_period_unref(struct fdr_period **_p)
{
	struct fdr_period *p = *_p;

	*_p = NULL;
	if (p == NULL || --p->refs > 0)
		return;
	pool_unref(&p->pool);
	i_free(p);
}

static bool fdr_row_eq(const struct dmarc_report_row *a,
		       const struct dmarc_report_row *b)
{
	return strcmp(a->source_ip, b->source_ip) == 0 &&
	       a->disposition == b->disposition &&
	       a->dkim_pass == b->dkim_pass && a->spf_pass == b->spf_pass &&
	       str_eq_null(a->header_from, b->header_from) &&
	       str_eq_null(a->dkim_domain, b->dkim_domain) &&
	       str_eq_null(a->dkim_result, b->dkim_result) &&
	       str_eq_null(a->dkim_selector, b->dkim_selector) &&
	       str_eq_null(a->spf_domain, b->spf_domain) &&
	       str_eq_null(a->spf_result, b->spf_result);
}

static const char *fdr_dup(pool_t pool, const char *s)
{
	return s == NULL ? NULL : p_strdup(pool, s);
}

void front_dmarcrpt_add(const char *client_ip,
			const struct dmarc_outcome *outcome,
			const struct spf_outcome *spf,
			const struct dkim_verify_result *dkim)
{
	struct fdr_period *p = fdr.cur;
	struct dmarc_report_row row;
	struct fdr_domain *d;
	struct fdr_row *r;

	if (p == NULL || outcome->record == NULL ||
	    outcome->record->rua_count == 0 || outcome->policy_domain == NULL)
		return;
	memset(&row, 0, sizeof(row));
	row.source_ip = client_ip;
	row.count = 1;
	row.disposition = outcome->disposition;
	row.dkim_pass = outcome->dkim_aligned;
	row.spf_pass = outcome->spf_aligned;
	row.header_from = outcome->from_domain;
	/* RFC 7489 Appendix C auth_results: the aligned signature, else
	   the first one. */
	if (dkim != NULL && dkim->count > 0) {
		const struct dkim_signature_result *s = &dkim->sigs[0];

		for (unsigned int i = 0; i < dkim->count; i++) {
			if (outcome->dkim_domain != NULL &&
			    strcmp(dkim->sigs[i].domain,
				   outcome->dkim_domain) == 0 &&
			    dkim->sigs[i].result == DKIM_PASS) {
				s = &dkim->sigs[i];
				break;
			}
		}
		row.dkim_domain = s->domain;
		row.dkim_result = dkim_result_name(s->result);
		row.dkim_selector = s->selector;
	}
	if (spf != NULL && spf->domain != NULL) {
		row.spf_domain = spf->domain;
		row.spf_result = spf_result_name(spf->result);
	}

	for (d = p->domains; d != NULL; d = d->next) {
		if (strcmp(d->domain, outcome->policy_domain) == 0)
			break;
	}
	if (d == NULL) {
		if (p->domain_count >= FDR_MAX_DOMAINS)
			goto overflow;
		d = p_new(p->pool, struct fdr_domain, 1);
		d->domain = p_strdup(p->pool, outcome->policy_domain);
		d->org_domain = fdr_dup(p->pool, outcome->org_domain);
		d->next = p->domains;
		p->domains = d;
		p->domain_count++;
	}
	/* The latest published record (RFC 7489 Appendix C
	   policy_published) and its rua=. */
	d->rec = *outcome->record;
	d->rec.rua = d->rec.ruf = NULL;
	d->rec.fo = d->rec.rf = NULL;
	d->rua_count = 0;
	for (unsigned int i = 0;
	     i < outcome->record->rua_count && d->rua_count < FDR_MAX_RUA; i++)
		d->rua[d->rua_count++] =
			p_strdup(p->pool, outcome->record->rua[i]);

	for (r = d->rows; r != NULL; r = r->next) {
		if (fdr_row_eq(&r->row, &row)) {
			r->row.count++;
			return;
		}
	}
	if (d->row_count >= FDR_MAX_ROWS)
		goto overflow;
	r = p_new(p->pool, struct fdr_row, 1);
	r->row = row;
	r->row.source_ip = p_strdup(p->pool, row.source_ip);
	r->row.header_from = fdr_dup(p->pool, row.header_from);
	r->row.dkim_domain = fdr_dup(p->pool, row.dkim_domain);
	r->row.dkim_selector = fdr_dup(p->pool, row.dkim_selector);
	r->row.spf_domain = fdr_dup(p->pool, row.spf_domain);
	/* dkim_result, spf_result: static names */
	r->next = d->rows;
	d->rows = r;
	d->row_count++;
	return;
overflow:
	if (!p->overflow_logged) {
		log_warning(NULL, "dmarc.report.overflow", "domain=%s limit=%u",
			    log_value(0, outcome->policy_domain), FDR_MAX_ROWS);
		p->overflow_logged = true;
	}
}

/* The report mail (RFC 7489 7.2.1.1). Returns 0 or -1. */
static int fdr_message(pool_t pool, const struct fdr_send *s, const char *from,
		       struct buf *out, const char **error_r)
{
	const struct marmot_settings *set = fdr.front->set;
	const struct fdr_domain *d = s->d;
	struct dmarc_report rpt;
	struct dmarc_report_row *rows;
	struct buf gz = BUF_INIT;
	const struct fdr_row *r;
	unsigned int i = 0;
	uint8_t rnd[8];
	char report_id[64], boundary[64], date[64];
	time_t now = time(NULL);
	const char *xml;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0x5a, sizeof(rnd));
	snprintf(report_id, sizeof(report_id),
		 "%lld.%02x%02x%02x%02x%02x%02x%02x%02x",
		 (long long)s->period->start, rnd[0], rnd[1], rnd[2], rnd[3],
		 rnd[4], rnd[5], rnd[6], rnd[7]);
	rows = p_new(pool, struct dmarc_report_row, d->row_count + 1);
	for (r = d->rows; r != NULL; r = r->next)
		rows[i++] = r->row;
	memset(&rpt, 0, sizeof(rpt));
	rpt.org_name = set->hostname;
	rpt.email = p_strdup_printf(pool, "postmaster@%s", set->hostname);
	rpt.report_id = report_id;
	rpt.begin = s->period->start;
	rpt.end = s->period->end - 1;
	rpt.domain = d->domain;
	rpt.adkim_strict = d->rec.adkim_strict;
	rpt.aspf_strict = d->rec.aspf_strict;
	rpt.p = d->rec.p;
	rpt.sp = d->rec.sp_set ? d->rec.sp : d->rec.p;
	rpt.pct = d->rec.pct;
	rpt.rows = rows;
	rpt.row_count = i;
	xml = dmarc_report_xml(pool, &rpt);
	if (auth_report_gzip(xml, strlen(xml), &gz) < 0) {
		buf_free(&gz);
		*error_r = "gzip failed";
		return -1;
	}
	snprintf(boundary, sizeof(boundary), "dmarc-%02x%02x%02x%02x", rnd[4],
		 rnd[5], rnd[6], rnd[7]);
	auth_report_date(now, date, sizeof(date));
	/* RFC 7489 7.2.1.1: the Subject and the gzip'ed attachment. */
	buf_printf(
		out,
		"From: <%s>\r\n"
		"To: <%s>\r\n"
		"Date: %s\r\n"
		"Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n"
		"Message-ID: <%s@%s>\r\n"
		"Auto-Submitted: auto-generated\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=\"%s\"\r\n"
		"\r\n"
		"--%s\r\n"
		"Content-Type: text/plain; charset=us-ascii\r\n"
		"\r\n"
		"This is a DMARC aggregate report (RFC 7489) from %s\r\n"
		"about mail it received from %s.\r\n"
		"\r\n"
		"--%s\r\n"
		"Content-Type: application/gzip\r\n"
		"Content-Transfer-Encoding: base64\r\n"
		"Content-Disposition: attachment;\r\n"
		"\tfilename=\"%s\"\r\n"
		"\r\n",
		from, s->rcpt, date, d->domain, set->hostname, report_id,
		report_id, set->hostname, boundary, boundary, set->hostname,
		d->domain, boundary,
		dmarc_report_filename(pool, set->hostname, &rpt));
	auth_report_base64(buf_span(&gz).p, gz.used, out);
	buf_printf(out, "\r\n--%s--\r\n", boundary);
	buf_free(&gz);
	return 0;
}

static void fdr_enqueue(const struct fdr_send *s)
{
	const struct marmot_settings *set = fdr.front->set;
	struct queue *q = front_queue_get();
	pool_t pool = pool_create("dmarc report mail", 4096);
	const char *from = p_strdup_printf(pool, "noreply-dmarc-reports@%s",
					   set->hostname);
	struct queue_rcpt r = { s->rcpt, NULL, QUEUE_NOTIFY_NEVER };
	struct queue_envelope env;
	struct buf msg = BUF_INIT;
	char id[QUEUE_ID_LEN + 1];
	const char *error = "no queue";

	memset(&env, 0, sizeof(env));
	env.sender = from;
	env.rcpts = &r;
	env.rcpt_count = 1;
	if (q == NULL || fdr_message(pool, s, from, &msg, &error) < 0 ||
	    queue_enqueue(q, &env, buf_span(&msg).p, msg.used, id, &error) <
		    0) {
		log_warning(NULL, "dmarc.report.failed", "domain=%s error=%s",
			    log_value(0, s->d->domain), log_value(1, error));
	} else {
		log_info(NULL, "dmarc.report.queued",
			 "domain=%s rua=%s id=%s rows=%u",
			 log_value(0, s->d->domain), log_value(1, s->rcpt), id,
			 s->d->row_count);
		front_queue_added(id);
	}
	buf_free(&msg);
	pool_unref(&pool);
}

static void fdr_send_free(struct fdr_send *s)
{
	struct fdr_send **p;

	for (p = &fdr.sends; *p != NULL; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	dns_lookup_cancel(&s->lookup);
	fdr_period_unref(&s->period);
	i_free(s->rcpt);
	i_free(s);
}

static void fdr_verify_resolved(void *context,
				const struct dns_txt_result *result)
{
	struct fdr_send *s = context;
	bool ok = false;

	s->lookup = NULL;
	/* RFC 7489 7.1: a record starting with "v=DMARC1" authorizes the
	   external destination. */
	if (result->info.status == DNS_STATUS_OK) {
		for (unsigned int i = 0; i < result->count && !ok; i++) {
			ok = result->txt[i].len >= 8 &&
			     strncmp(result->txt[i].text, "v=DMARC1", 8) == 0;
		}
	}
	if (ok)
		fdr_enqueue(s);
	else {
		log_info(NULL, "dmarc.report.unauthorized", "domain=%s rua=%s",
			 log_value(0, s->d->domain), log_value(1, s->rcpt));
	}
	fdr_send_free(s);
}

/* "mailto:a@b.example!10m" -> "a@b.example"; NULL when not usable. */
static char *fdr_rua_addr(const char *uri, const char **domain_r)
{
	const char *p, *end, *at;
	char *addr;

	if (strncasecmp(uri, "mailto:", 7) != 0)
		return NULL;
	p = uri + 7;
	end = strchr(p, '!'); /* RFC 7489 6.2: the size limit */
	if (end == NULL)
		end = p + strlen(p);
	at = memchr(p, '@', (size_t)(end - p));
	if (at == NULL || at == p || at + 1 >= end ||
	    memchr(p, '?', (size_t)(end - p)) != NULL)
		return NULL;
	addr = i_strndup(p, (size_t)(end - p));
	*domain_r = strchr(addr, '@') + 1;
	return addr;
}

static void fdr_send_domain(struct fdr_period *period,
			    const struct fdr_domain *d)
{
	for (unsigned int i = 0; i < d->rua_count; i++) {
		const char *rua_domain;
		char *addr = fdr_rua_addr(d->rua[i], &rua_domain);
		struct fdr_send *s;
		pool_t pool;
		const char *org;

		if (addr == NULL)
			continue;
		s = i_new(struct fdr_send, 1);
		s->period = period;
		period->refs++;
		s->d = d;
		s->rcpt = addr;
		s->next = fdr.sends;
		fdr.sends = s;
		pool = pool_create("dmarc rua", 512);
		org = dmarc_org_domain_psl(pool, fdr.psl, rua_domain);
		if (org != NULL && d->org_domain != NULL &&
		    strcasecmp(org, d->org_domain) == 0) {
			/* RFC 7489 7.1: same Organizational Domain. */
			fdr_enqueue(s);
			fdr_send_free(s);
		} else {
			/* RFC 7489 7.1: <domain>._report._dmarc.<rua host> */
			char *name = i_strdup_printf("%s._report._dmarc.%s",
						     d->domain, rua_domain);

			s->lookup = dns_lookup_txt(fdr.dns, name,
						   fdr_verify_resolved, s);
			i_free(name);
		}
		pool_unref(&pool);
	}
}

/* RFC 7489 7.2.1.1: at the end of each period, one report per domain. */
static void fdr_tick(void *context ATTR_UNUSED)
{
	unsigned int interval = fdr.front->set->dmarc_report_interval;
	time_t now = time(NULL);
	struct fdr_period *period = fdr.cur;

	if (now < period->start + (time_t)interval)
		return;
	period->end = period->start + (time_t)interval;
	fdr.cur = fdr_period_new(now - now % interval);
	for (const struct fdr_domain *d = period->domains; d != NULL;
	     d = d->next)
		fdr_send_domain(period, d);
	fdr_period_unref(&period);
}

void front_dmarcrpt_init(struct front *front, struct dns *dns,
			 const psl_ctx_t *psl)
{
	const struct marmot_settings *set = front->set;
	unsigned int interval = set->dmarc_report_interval;
	time_t now = time(NULL);

	if (strcmp(set->dmarc_report, "on") != 0 || dns == NULL)
		return;
	fdr.front = front;
	fdr.dns = dns;
	fdr.psl = psl;
	fdr.cur = fdr_period_new(now - now % interval);
	fdr.timer = timeout_add(front->ioloop,
				(interval < 60 ? interval : 60) * 1000,
				fdr_tick, NULL);
}

void front_dmarcrpt_deinit(void)
{
	/* The current period's counts are lost, as TLS-RPT's. */
	while (fdr.sends != NULL)
		fdr_send_free(fdr.sends);
	timeout_remove(&fdr.timer);
	fdr_period_unref(&fdr.cur);
	memset(&fdr, 0, sizeof(fdr));
}
