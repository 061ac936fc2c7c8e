/* dmarc-report.c - DMARC aggregate reports (RFC 7489 7.2, Appendix C):
   XML writer, gzip, and the expat reader of received reports
   (dmarc-report.h). */

#include "dmarc-report.h"

#include <expat.h>
#include <zlib.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- writer ---- */

static void xml_text(struct buf *out, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '<')
			buf_append_str(out, "&lt;");
		else if (c == '>')
			buf_append_str(out, "&gt;");
		else if (c == '&')
			buf_append_str(out, "&amp;");
		else if (c == '"')
			buf_append_str(out, "&quot;");
		else if (c < 0x20 && c != '\t' && c != '\n')
			continue; /* not allowed in XML 1.0 */
		else
			buf_append_c(out, c);
	}
}

static void xml_elem(struct buf *out, const char *indent, const char *name,
		     const char *value)
{
	buf_printf(out, "%s<%s>", indent, name);
	xml_text(out, value);
	buf_printf(out, "</%s>\n", name);
}

static const char *alignment_name(bool strict)
{
	return strict ? "s" : "r";
}

const char *dmarc_report_xml(pool_t pool, const struct dmarc_report *r)
{
	struct buf out = BUF_INIT;
	char num[32];
	const char *ret;

	buf_append_str(&out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			     "<feedback>\n"
			     "  <report_metadata>\n");
	xml_elem(&out, "    ", "org_name", r->org_name);
	xml_elem(&out, "    ", "email", r->email);
	xml_elem(&out, "    ", "report_id", r->report_id);
	buf_printf(&out,
		   "    <date_range>\n"
		   "      <begin>%lld</begin>\n"
		   "      <end>%lld</end>\n"
		   "    </date_range>\n"
		   "  </report_metadata>\n"
		   "  <policy_published>\n",
		   (long long)r->begin, (long long)r->end);
	xml_elem(&out, "    ", "domain", r->domain);
	xml_elem(&out, "    ", "adkim", alignment_name(r->adkim_strict));
	xml_elem(&out, "    ", "aspf", alignment_name(r->aspf_strict));
	xml_elem(&out, "    ", "p", dmarc_policy_name(r->p));
	xml_elem(&out, "    ", "sp", dmarc_policy_name(r->sp));
	snprintf(num, sizeof(num), "%u", r->pct);
	xml_elem(&out, "    ", "pct", num);
	buf_append_str(&out, "  </policy_published>\n");
	for (unsigned int i = 0; i < r->row_count; i++) {
		const struct dmarc_report_row *row = &r->rows[i];

		buf_append_str(&out, "  <record>\n    <row>\n");
		xml_elem(&out, "      ", "source_ip", row->source_ip);
		snprintf(num, sizeof(num), "%u", row->count);
		xml_elem(&out, "      ", "count", num);
		buf_append_str(&out, "      <policy_evaluated>\n");
		xml_elem(&out, "        ", "disposition",
			 dmarc_policy_name(row->disposition));
		xml_elem(&out, "        ", "dkim",
			 row->dkim_pass ? "pass" : "fail");
		xml_elem(&out, "        ", "spf",
			 row->spf_pass ? "pass" : "fail");
		buf_append_str(&out, "      </policy_evaluated>\n"
				     "    </row>\n"
				     "    <identifiers>\n");
		xml_elem(&out, "      ", "header_from", row->header_from);
		buf_append_str(&out, "    </identifiers>\n"
				     "    <auth_results>\n");
		if (row->dkim_domain != NULL) {
			buf_append_str(&out, "      <dkim>\n");
			xml_elem(&out, "        ", "domain", row->dkim_domain);
			if (row->dkim_selector != NULL)
				xml_elem(&out, "        ", "selector",
					 row->dkim_selector);
			xml_elem(&out, "        ", "result", row->dkim_result);
			buf_append_str(&out, "      </dkim>\n");
		}
		if (row->spf_domain != NULL) {
			buf_append_str(&out, "      <spf>\n");
			xml_elem(&out, "        ", "domain", row->spf_domain);
			xml_elem(&out, "        ", "result", row->spf_result);
			buf_append_str(&out, "      </spf>\n");
		}
		buf_append_str(&out, "    </auth_results>\n  </record>\n");
	}
	buf_append_str(&out, "</feedback>\n");
	ret = p_strdup(pool, buf_cstr(&out));
	buf_free(&out);
	return ret;
}

const char *dmarc_report_filename(pool_t pool, const char *receiver,
				  const struct dmarc_report *report)
{
	return p_strdup_printf(pool, "%s!%s!%lld!%lld.xml.gz", receiver,
			       report->domain, (long long)report->begin,
			       (long long)report->end);
}

/* ---- reader ---- */

static int gunzip(const uint8_t *data, size_t len, struct buf *out,
		  const char **error_r)
{
	z_stream z;
	int ret;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 15 + 32) != Z_OK) {
		*error_r = "zlib init failed";
		return -1;
	}
	z.next_in = (Bytef *)(uintptr_t)data;
	z.avail_in = (uInt)len;
	do {
		uint8_t *p;

		if (out->used >= DMARC_REPORT_MAX_XML) {
			inflateEnd(&z);
			*error_r = "report too large";
			return -1;
		}
		p = buf_reserve(out, 16384);
		z.next_out = p;
		z.avail_out = 16384;
		ret = inflate(&z, Z_NO_FLUSH);
		buf_commit(out, 16384 - z.avail_out);
	} while (ret == Z_OK);
	inflateEnd(&z);
	if (ret != Z_STREAM_END) {
		*error_r = "bad gzip data";
		return -1;
	}
	return 0;
}

#define PARSE_MAX_DEPTH 16
#define PARSE_MAX_ROWS 100000

struct parse_state {
	pool_t pool;
	XML_Parser parser;
	struct dmarc_report *report;
	struct dmarc_report_row *rows;
	unsigned int row_alloc;
	const char *path[PARSE_MAX_DEPTH];
	unsigned int depth;
	struct buf text;
	bool in_dkim, in_spf, feedback, failed;
	const char *error;
};

static void parse_fail(struct parse_state *st, const char *error)
{
	if (!st->failed) {
		st->failed = true;
		st->error = error;
		XML_StopParser(st->parser, XML_FALSE);
	}
}

static void XMLCALL parse_doctype(void *ctx, const XML_Char *name ATTR_UNUSED,
				  const XML_Char *sysid ATTR_UNUSED,
				  const XML_Char *pubid ATTR_UNUSED,
				  int has_internal ATTR_UNUSED)
{
	parse_fail(ctx, "DOCTYPE not allowed");
}

static void XMLCALL parse_start(void *ctx, const XML_Char *name,
				const XML_Char **attrs ATTR_UNUSED)
{
	struct parse_state *st = ctx;

	if (st->depth == 0) {
		if (strcmp(name, "feedback") != 0) {
			parse_fail(st, "not a DMARC feedback document");
			return;
		}
		st->feedback = true;
	}
	if (st->depth >= PARSE_MAX_DEPTH) {
		parse_fail(st, "nested too deeply");
		return;
	}
	st->path[st->depth++] = p_strdup(st->pool, name);
	buf_reset(&st->text);
	if (st->depth == 2 && strcmp(name, "record") == 0) {
		if (st->report->row_count >= PARSE_MAX_ROWS) {
			parse_fail(st, "too many records");
			return;
		}
		if (st->report->row_count == st->row_alloc) {
			struct dmarc_report_row *n;

			st->row_alloc =
				st->row_alloc == 0 ? 16 : st->row_alloc * 2;
			n = p_new(st->pool, struct dmarc_report_row,
				  st->row_alloc);
			if (st->report->row_count > 0)
				memcpy(n, st->rows,
				       st->report->row_count * sizeof(*n));
			st->rows = n;
		}
		st->report->row_count++;
	}
}

static void XMLCALL parse_chars(void *ctx, const XML_Char *s, int len)
{
	struct parse_state *st = ctx;

	if (st->text.used + (size_t)len > 65536) {
		parse_fail(st, "element text too long");
		return;
	}
	buf_append(&st->text, s, (size_t)len);
}

static bool path_is(struct parse_state *st, const char *a, const char *b,
		    const char *c)
{
	return st->depth >= 3 && strcmp(st->path[1], a) == 0 &&
	       strcmp(st->path[st->depth - 2], b) == 0 &&
	       strcmp(st->path[st->depth - 1], c) == 0;
}

static void parse_policy_value(const char *v, enum dmarc_policy *p_r)
{
	if (strcmp(v, "reject") == 0)
		*p_r = DMARC_POLICY_REJECT;
	else if (strcmp(v, "quarantine") == 0)
		*p_r = DMARC_POLICY_QUARANTINE;
	else
		*p_r = DMARC_POLICY_NONE;
}

static void XMLCALL parse_end(void *ctx, const XML_Char *name ATTR_UNUSED)
{
	struct parse_state *st = ctx;
	struct dmarc_report *r = st->report;
	struct dmarc_report_row *row =
		r->row_count > 0 ? &st->rows[r->row_count - 1] : NULL;
	const char *leaf, *v;

	if (st->depth == 0)
		return;
	leaf = st->path[st->depth - 1];
	v = p_strdup(st->pool, buf_cstr(&st->text));
	while (*v == ' ' || *v == '\n' || *v == '\r' || *v == '\t')
		v++;
	if (st->depth == 3 && strcmp(st->path[1], "report_metadata") == 0) {
		if (strcmp(leaf, "org_name") == 0)
			r->org_name = v;
		else if (strcmp(leaf, "email") == 0)
			r->email = v;
		else if (strcmp(leaf, "report_id") == 0)
			r->report_id = v;
	} else if (path_is(st, "report_metadata", "date_range", "begin")) {
		r->begin = strtoll(v, NULL, 10);
	} else if (path_is(st, "report_metadata", "date_range", "end")) {
		r->end = strtoll(v, NULL, 10);
	} else if (st->depth == 3 &&
		   strcmp(st->path[1], "policy_published") == 0) {
		if (strcmp(leaf, "domain") == 0)
			r->domain = v;
		else if (strcmp(leaf, "adkim") == 0)
			r->adkim_strict = strcmp(v, "s") == 0;
		else if (strcmp(leaf, "aspf") == 0)
			r->aspf_strict = strcmp(v, "s") == 0;
		else if (strcmp(leaf, "p") == 0)
			parse_policy_value(v, &r->p);
		else if (strcmp(leaf, "sp") == 0)
			parse_policy_value(v, &r->sp);
		else if (strcmp(leaf, "pct") == 0)
			r->pct = (unsigned int)strtoul(v, NULL, 10);
	} else if (row != NULL && strcmp(st->path[1], "record") == 0) {
		if (path_is(st, "record", "row", "source_ip"))
			row->source_ip = v;
		else if (path_is(st, "record", "row", "count"))
			row->count = (unsigned int)strtoul(v, NULL, 10);
		else if (path_is(st, "record", "policy_evaluated",
				 "disposition"))
			parse_policy_value(v, &row->disposition);
		else if (path_is(st, "record", "policy_evaluated", "dkim"))
			row->dkim_pass = strcmp(v, "pass") == 0;
		else if (path_is(st, "record", "policy_evaluated", "spf"))
			row->spf_pass = strcmp(v, "pass") == 0;
		else if (path_is(st, "record", "identifiers", "header_from"))
			row->header_from = v;
		else if (path_is(st, "record", "dkim", "domain") &&
			 row->dkim_domain == NULL)
			row->dkim_domain = v;
		else if (path_is(st, "record", "dkim", "selector") &&
			 row->dkim_selector == NULL)
			row->dkim_selector = v;
		else if (path_is(st, "record", "dkim", "result") &&
			 row->dkim_result == NULL)
			row->dkim_result = v;
		else if (path_is(st, "record", "spf", "domain") &&
			 row->spf_domain == NULL)
			row->spf_domain = v;
		else if (path_is(st, "record", "spf", "result") &&
			 row->spf_result == NULL)
			row->spf_result = v;
	}
	st->depth--;
	buf_reset(&st->text);
}

int dmarc_report_parse(pool_t pool, const void *data, size_t len,
		       struct dmarc_report *report_r, const char **error_r)
{
	struct parse_state st;
	struct buf inflated = BUF_INIT;
	const uint8_t *p = data;
	int ret = 0;

	memset(report_r, 0, sizeof(*report_r));
	report_r->pct = 100;
	/* RFC 1952 2.3.1: ID1 ID2 = 1f 8b. */
	if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
		if (gunzip(p, len, &inflated, error_r) < 0) {
			buf_free(&inflated);
			return -1;
		}
		p = buf_span(&inflated).p;
		len = inflated.used;
	}
	if (len > DMARC_REPORT_MAX_XML) {
		buf_free(&inflated);
		*error_r = "report too large";
		return -1;
	}
	memset(&st, 0, sizeof(st));
	st.pool = pool;
	st.report = report_r;
	st.parser = XML_ParserCreate("UTF-8");
	XML_SetUserData(st.parser, &st);
	XML_SetElementHandler(st.parser, parse_start, parse_end);
	XML_SetCharacterDataHandler(st.parser, parse_chars);
	XML_SetStartDoctypeDeclHandler(st.parser, parse_doctype);
	if (XML_Parse(st.parser, (const char *)p, (int)len, XML_TRUE) ==
		    XML_STATUS_ERROR ||
	    st.failed) {
		*error_r = st.failed
				   ? st.error
				   : p_strdup(pool,
					      XML_ErrorString(XML_GetErrorCode(
						      st.parser)));
		ret = -1;
	} else if (!st.feedback) {
		*error_r = "not a DMARC feedback document";
		ret = -1;
	}
	XML_ParserFree(st.parser);
	buf_free(&st.text);
	buf_free(&inflated);
	report_r->rows = st.rows;
	return ret;
}
