#ifndef MARMOT_DMARC_REPORT_H
#define MARMOT_DMARC_REPORT_H
/* DMARC aggregate reports (RFC 7489 7.2, the XML of its Appendix C): the
   writer of the report Marmot sends to a domain's rua= addresses (rows of
   per-source results in, XML out, gzip for the attachment, RFC 7489
   7.2.1.1), and the reader of the reports Marmot receives (expat; gzip or
   plain XML; a DOCTYPE is refused, so no entity can expand). I/O-free:
   collecting the rows and mailing the report is the caller's. */

#include "lib.h"
#include "pool.h"
#include "buf.h"
#include "dmarc.h"

/* Inflated reports are refused beyond this (a gzip bomb). */
#define DMARC_REPORT_MAX_XML (16 * 1024 * 1024)

struct dmarc_report_row {
	const char *source_ip;
	unsigned int count;
	/* policy_evaluated */
	enum dmarc_policy disposition;
	bool dkim_pass, spf_pass; /* aligned pass */
	/* identifiers / auth_results */
	const char *header_from;
	const char *dkim_domain; /* NULL: no signature */
	const char *dkim_result; /* "pass", "fail", ... */
	const char *dkim_selector; /* NULL: none */
	const char *spf_domain; /* NULL: not checked */
	const char *spf_result;
};

struct dmarc_report {
	/* report_metadata */
	const char *org_name, *email, *report_id;
	int64_t begin, end; /* date_range, Unix time */
	/* policy_published */
	const char *domain;
	bool adkim_strict, aspf_strict;
	enum dmarc_policy p, sp;
	unsigned int pct;
	const struct dmarc_report_row *rows;
	unsigned int row_count;
};

/* The report as XML (RFC 7489 Appendix C), text escaped, in pool. */
const char *dmarc_report_xml(pool_t pool, const struct dmarc_report *report);
/* RFC 7489 7.2.1.1: the attachment is gzip'ed, by auth_report_gzip()
   (auth-report.h). */
/* The attachment's file name (RFC 7489 7.2.1.1):
   receiver "!" policy-domain "!" begin "!" end ".xml.gz". */
const char *dmarc_report_filename(pool_t pool, const char *receiver,
				  const struct dmarc_report *report);

/* Reads a received report: gzip (by its magic) or plain XML. Strings and
   rows in pool. Returns 0, or -1 with error_r (not XML, a DOCTYPE, not a
   DMARC "feedback" document, too large). Unknown elements are
   ignored. */
int dmarc_report_parse(pool_t pool, const void *data, size_t len,
		       struct dmarc_report *report_r, const char **error_r);

#endif
