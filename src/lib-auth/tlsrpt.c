/* tlsrpt.c - SMTP TLS Reporting (RFC 8460), see tlsrpt.h: the
   _smtp._tls record, per-period counts, the JSON report and its mail.
   The TXT record comes from the network and is parsed defensively; the
   report carries only what the sender saw (host names, addresses and
   result types), never message data. */

#include "lib.h"
#include "tlsrpt.h"
#include "auth-report.h"
#include "buf.h"
#include "mtasts.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <strings.h>

const char *tlsrpt_policy_type_name(enum tlsrpt_policy_type type)
{
	switch (type) {
	case TLSRPT_POLICY_STS:
		return "sts";
	case TLSRPT_POLICY_TLSA:
		return "tlsa";
	case TLSRPT_POLICY_NONE:
		return "no-policy-found";
	}
	i_unreached();
}

const char *tlsrpt_result_name(enum tlsrpt_result result)
{
	/* RFC 8460 4.3.1, 4.3.2, 4.3.3 */
	static const char *const names[] = {
		[TLSRPT_RESULT_STARTTLS_NOT_SUPPORTED] =
			"starttls-not-supported",
		[TLSRPT_RESULT_CERTIFICATE_HOST_MISMATCH] =
			"certificate-host-mismatch",
		[TLSRPT_RESULT_CERTIFICATE_EXPIRED] = "certificate-expired",
		[TLSRPT_RESULT_CERTIFICATE_NOT_TRUSTED] =
			"certificate-not-trusted",
		[TLSRPT_RESULT_VALIDATION_FAILURE] = "validation-failure",
		[TLSRPT_RESULT_TLSA_INVALID] = "tlsa-invalid",
		[TLSRPT_RESULT_DNSSEC_INVALID] = "dnssec-invalid",
		[TLSRPT_RESULT_DANE_REQUIRED] = "dane-required",
		[TLSRPT_RESULT_STS_POLICY_FETCH_ERROR] =
			"sts-policy-fetch-error",
		[TLSRPT_RESULT_STS_POLICY_INVALID] = "sts-policy-invalid",
		[TLSRPT_RESULT_STS_WEBPKI_INVALID] = "sts-webpki-invalid",
	};

	i_assert((size_t)result < N_ELEMENTS(names));
	return names[result];
}

/* ---- the TXT record ---- */

static bool tlsrpt_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

int tlsrpt_txt_parse(pool_t pool, const char *text, size_t len,
		     const char **rua_r, unsigned int *count_r,
		     const char **error_r)
{
	size_t pos = 0;
	bool first = true;

	*count_r = 0;
	/* RFC 8460 3: tlsrpt-record = tlsrpt-version 1*(field-delim
	   tlsrpt-field) [field-delim]; field-delim = *WSP ";" *WSP;
	   tlsrpt-version = %s"v=TLSRPTv1"; tlsrpt-rua = %s"rua=" uri
	   *(*WSP "," *WSP uri). */
	while (pos < len) {
		size_t start, end;

		while (pos < len && tlsrpt_is_wsp(text[pos]))
			pos++;
		start = pos;
		while (pos < len && text[pos] != ';')
			pos++;
		end = pos;
		if (pos < len)
			pos++;
		while (end > start && tlsrpt_is_wsp(text[end - 1]))
			end--;
		if (memchr(text + start, '\0', end - start) != NULL) {
			*error_r = "NUL in TLSRPT record";
			return -1;
		}
		if (first) {
			if (end - start != 10 ||
			    memcmp(text + start, "v=TLSRPTv1", 10) != 0) {
				*error_r = "not a TLSRPTv1 record";
				return -1;
			}
			first = false;
			continue;
		}
		if (end == start)
			continue;
		if (end - start < 4 || memcmp(text + start, "rua=", 4) != 0)
			continue; /* tlsrpt-ext: ignored */
		if (*count_r > 0)
			continue; /* the first rua field counts */
		for (size_t p = start + 4; p < end;) {
			size_t u = p, ue;

			while (p < end && text[p] != ',')
				p++;
			ue = p;
			if (p < end)
				p++;
			while (u < ue && tlsrpt_is_wsp(text[u]))
				u++;
			while (ue > u && tlsrpt_is_wsp(text[ue - 1]))
				ue--;
			if (ue == u) {
				*error_r = "empty rua URI";
				return -1;
			}
			if (*count_r < TLSRPT_RUA_MAX)
				rua_r[(*count_r)++] =
					p_strndup(pool, text + u, ue - u);
		}
	}
	if (first) {
		*error_r = "not a TLSRPTv1 record";
		return -1;
	}
	if (*count_r == 0) {
		*error_r = "no rua field";
		return -1;
	}
	return 0;
}

int tlsrpt_txt_select(pool_t pool, const struct dns_txt *txt,
		      unsigned int count, const char **rua_r,
		      unsigned int *count_r, const char **error_r)
{
	int found = mtasts_txt_find(txt, count, "v=TLSRPTv1", error_r);

	*count_r = 0;
	if (found < 0)
		return found == -1 ? 0 : -1;
	if (tlsrpt_txt_parse(pool, txt[found].text, txt[found].len, rua_r,
			     count_r, error_r) < 0)
		return -1;
	return 1;
}

const char *tlsrpt_rua_mailto(pool_t pool, const char *uri)
{
	const char *addr, *at;
	size_t len;

	if (strncasecmp(uri, "mailto:", 7) != 0)
		return NULL;
	addr = uri + 7;
	/* RFC 6068 2: hfields after '?' are ignored. */
	len = strcspn(addr, "?");
	at = memchr(addr, '@', len);
	if (len == 0 || len > 254 || at == NULL || at == addr ||
	    at == addr + len - 1)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)addr[i];

		/* Only plain addresses: no %-escapes, no spaces, no
		   brackets that could break a header. */
		if (c <= ' ' || c >= 0x7f || c == '%' || c == '<' || c == '>' ||
		    c == '"' || c == '(' || c == ')' || c == ',' || c == ';' ||
		    c == '\\')
			return NULL;
	}
	if (memchr(at + 1, '@', (size_t)(addr + len - at - 1)) != NULL)
		return NULL;
	return p_strndup(pool, addr, len);
}

/* ---- counts ---- */

struct tlsrpt_detail {
	enum tlsrpt_result result;
	char *sending_ip, *receiving_mx, *receiving_ip, *failure_code;
	uint64_t count;
};

struct tlsrpt_entry {
	struct tlsrpt_entry *next;
	char *domain;
	enum tlsrpt_policy_type type;
	char **strings;
	unsigned int string_count;
	char **mx;
	unsigned int mx_count;
	uint64_t success, failure;
	struct tlsrpt_detail details[TLSRPT_DETAILS_MAX];
	unsigned int detail_count;
	/* Failures beyond TLSRPT_DETAILS_MAX distinct details are counted
	   in failure only. */
};

struct tlsrpt_store {
	pool_t pool;
	struct tlsrpt_entry *head, *tail;
	unsigned int count;
};

struct tlsrpt_store *tlsrpt_store_create(void)
{
	struct tlsrpt_store *store = i_new(struct tlsrpt_store, 1);

	store->pool = pool_create("tlsrpt", 4096);
	return store;
}

void tlsrpt_store_destroy(struct tlsrpt_store **_store)
{
	struct tlsrpt_store *store = *_store;

	if (store == NULL)
		return;
	*_store = NULL;
	pool_unref(&store->pool);
	i_free(store);
}

static bool tlsrpt_entry_matches(const struct tlsrpt_entry *e,
				 const struct tlsrpt_policy *p)
{
	if (strcasecmp(e->domain, p->domain) != 0 || e->type != p->type ||
	    e->string_count != p->string_count || e->mx_count != p->mx_count)
		return false;
	for (unsigned int i = 0; i < p->string_count; i++) {
		if (strcmp(e->strings[i], p->strings[i]) != 0)
			return false;
	}
	for (unsigned int i = 0; i < p->mx_count; i++) {
		if (strcmp(e->mx[i], p->mx[i]) != 0)
			return false;
	}
	return true;
}

static char **tlsrpt_strv(pool_t pool, const char *const *v, unsigned int n)
{
	char **copy = p_new(pool, char *, n + 1);

	for (unsigned int i = 0; i < n; i++)
		copy[i] = p_strdup(pool, v[i]);
	return copy;
}

static struct tlsrpt_entry *tlsrpt_entry_get(struct tlsrpt_store *store,
					     const struct tlsrpt_policy *p)
{
	struct tlsrpt_entry *e;

	for (e = store->head; e != NULL; e = e->next) {
		if (tlsrpt_entry_matches(e, p))
			return e;
	}
	if (store->count >= TLSRPT_DOMAINS_MAX)
		return NULL;
	e = p_new(store->pool, struct tlsrpt_entry, 1);
	e->domain = p_strdup(store->pool, p->domain);
	for (char *s = e->domain; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
	e->type = p->type;
	e->strings = tlsrpt_strv(store->pool, p->strings, p->string_count);
	e->string_count = p->string_count;
	e->mx = tlsrpt_strv(store->pool, p->mx, p->mx_count);
	e->mx_count = p->mx_count;
	if (store->tail != NULL)
		store->tail->next = e;
	else
		store->head = e;
	store->tail = e;
	store->count++;
	return e;
}

void tlsrpt_add_success(struct tlsrpt_store *store,
			const struct tlsrpt_policy *policy)
{
	struct tlsrpt_entry *e = tlsrpt_entry_get(store, policy);

	if (e != NULL)
		e->success++;
}

void tlsrpt_add_failure(struct tlsrpt_store *store,
			const struct tlsrpt_policy *policy,
			enum tlsrpt_result result, const char *sending_ip,
			const char *receiving_mx, const char *receiving_ip,
			const char *failure_code)
{
	struct tlsrpt_entry *e = tlsrpt_entry_get(store, policy);
	struct tlsrpt_detail *d;

	if (e == NULL)
		return;
	e->failure++;
	for (unsigned int i = 0; i < e->detail_count; i++) {
		d = &e->details[i];
		if (d->result == result &&
		    str_eq_null(d->sending_ip, sending_ip) &&
		    str_eq_null(d->receiving_mx, receiving_mx) &&
		    str_eq_null(d->receiving_ip, receiving_ip) &&
		    str_eq_null(d->failure_code, failure_code)) {
			d->count++;
			return;
		}
	}
	if (e->detail_count >= TLSRPT_DETAILS_MAX)
		return;
	d = &e->details[e->detail_count++];
	d->result = result;
	d->sending_ip = p_strdup(store->pool, sending_ip);
	d->receiving_mx = p_strdup(store->pool, receiving_mx);
	d->receiving_ip = p_strdup(store->pool, receiving_ip);
	d->failure_code = p_strdup(store->pool, failure_code);
	d->count = 1;
}

unsigned int tlsrpt_store_domains(struct tlsrpt_store *store, pool_t pool,
				  const char *const **domains_r)
{
	const char **v = p_new(pool, const char *, store->count + 1);
	unsigned int n = 0;

	for (const struct tlsrpt_entry *e = store->head; e != NULL;
	     e = e->next) {
		unsigned int i;

		for (i = 0; i < n; i++) {
			if (strcmp(v[i], e->domain) == 0)
				break;
		}
		if (i == n)
			v[n++] = e->domain;
	}
	*domains_r = v;
	return n;
}

/* ---- JSON (RFC 8259) ---- */

static void json_str(struct buf *out, const char *s)
{
	buf_append_c(out, '"');
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			buf_printf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			buf_printf(out, "\\u%04x", c);
		else
			buf_append_c(out, c);
	}
	buf_append_c(out, '"');
}

static void json_time(struct buf *out, time_t t)
{
	struct tm tm;
	char s[32];

	gmtime_r(&t, &tm);
	/* RFC 8460 4.4: RFC 3339 date-time */
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_str(out, s);
}

static void json_kv_str(struct buf *out, const char *key, const char *value,
			bool comma)
{
	json_str(out, key);
	buf_append_c(out, ':');
	json_str(out, value);
	if (comma)
		buf_append_c(out, ',');
}

static void json_str_array(struct buf *out, char *const *v, unsigned int n)
{
	buf_append_c(out, '[');
	for (unsigned int i = 0; i < n; i++) {
		if (i > 0)
			buf_append_c(out, ',');
		json_str(out, v[i]);
	}
	buf_append_c(out, ']');
}

static void tlsrpt_entry_json(const struct tlsrpt_entry *e, struct buf *out)
{
	/* RFC 8460 4.4 "policies" element */
	buf_append_str(out, "{\"policy\":{");
	json_kv_str(out, "policy-type", tlsrpt_policy_type_name(e->type), true);
	if (e->string_count > 0) {
		buf_append_str(out, "\"policy-string\":");
		json_str_array(out, e->strings, e->string_count);
		buf_append_c(out, ',');
	}
	if (e->mx_count > 0) {
		buf_append_str(out, "\"mx-host\":");
		json_str_array(out, e->mx, e->mx_count);
		buf_append_c(out, ',');
	}
	json_kv_str(out, "policy-domain", e->domain, false);
	buf_printf(out,
		   "},\"summary\":{\"total-successful-session-count\":%llu,"
		   "\"total-failure-session-count\":%llu}",
		   (unsigned long long)e->success,
		   (unsigned long long)e->failure);
	if (e->detail_count > 0) {
		buf_append_str(out, ",\"failure-details\":[");
		for (unsigned int i = 0; i < e->detail_count; i++) {
			const struct tlsrpt_detail *d = &e->details[i];

			if (i > 0)
				buf_append_c(out, ',');
			buf_append_c(out, '{');
			json_kv_str(out, "result-type",
				    tlsrpt_result_name(d->result), true);
			if (d->sending_ip != NULL)
				json_kv_str(out, "sending-mta-ip",
					    d->sending_ip, true);
			if (d->receiving_mx != NULL)
				json_kv_str(out, "receiving-mx-hostname",
					    d->receiving_mx, true);
			if (d->receiving_ip != NULL)
				json_kv_str(out, "receiving-ip",
					    d->receiving_ip, true);
			if (d->failure_code != NULL)
				json_kv_str(out, "failure-reason-code",
					    d->failure_code, true);
			buf_printf(out, "\"failed-session-count\":%llu}",
				   (unsigned long long)d->count);
		}
		buf_append_c(out, ']');
	}
	buf_append_c(out, '}');
}

void tlsrpt_report_json(const struct tlsrpt_store *store, const char *domain,
			const char *org, const char *contact,
			const char *report_id, time_t start, time_t end,
			struct buf *out)
{
	bool first = true;

	/* RFC 8460 4.4 */
	buf_append_c(out, '{');
	json_kv_str(out, "organization-name", org, true);
	buf_append_str(out, "\"date-range\":{\"start-datetime\":");
	json_time(out, start);
	buf_append_str(out, ",\"end-datetime\":");
	/* The period's last second (RFC 8460 4.4's example: 23:59:59Z). */
	json_time(out, end - 1);
	buf_append_str(out, "},");
	json_kv_str(out, "contact-info", contact, true);
	json_kv_str(out, "report-id", report_id, true);
	buf_append_str(out, "\"policies\":[");
	for (const struct tlsrpt_entry *e = store->head; e != NULL;
	     e = e->next) {
		if (strcasecmp(e->domain, domain) != 0)
			continue;
		if (!first)
			buf_append_c(out, ',');
		first = false;
		tlsrpt_entry_json(e, out);
	}
	buf_append_str(out, "]}");
}

/* ---- the mail ---- */

int tlsrpt_report_message(const char *from, const char *to,
			  const char *submitter, const char *domain,
			  const char *report_id, time_t start, time_t end,
			  const struct buf *json, time_t now, struct buf *out,
			  const char **error_r)
{
	struct buf gz = BUF_INIT;
	uint8_t rnd[12];
	char boundary[64], date[64];

	if (auth_report_gzip(buf_span(json).p, json->used, &gz) < 0) {
		buf_free(&gz);
		*error_r = "gzip failed";
		return -1;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0x5a, sizeof(rnd));
	snprintf(boundary, sizeof(boundary),
		 "tlsrpt-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
		 rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	auth_report_date(now, date, sizeof(date));
	/* RFC 8460 5.3: the headers and the multipart/report. */
	buf_printf(
		out,
		"From: <%s>\r\n"
		"To: <%s>\r\n"
		"Date: %s\r\n"
		"Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n"
		"Message-ID: <%s@%s>\r\n"
		"TLS-Report-Domain: %s\r\n"
		"TLS-Report-Submitter: %s\r\n"
		"Auto-Submitted: auto-generated\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n"
		"\tboundary=\"%s\"\r\n"
		"\r\n"
		"This is a MIME-formatted message.\r\n"
		"\r\n"
		"--%s\r\n"
		"Content-Type: text/plain; charset=us-ascii\r\n"
		"\r\n"
		"This is an aggregate TLS report (RFC 8460) from %s\r\n"
		"about the TLS sessions it made to %s.\r\n"
		"\r\n"
		"--%s\r\n"
		"Content-Type: application/tlsrpt+gzip\r\n"
		"Content-Transfer-Encoding: base64\r\n"
		/* RFC 8460 5.1: sender "!" policy-domain "!"
		   begin-timestamp "!" end-timestamp "!" unique-id
		   "." extension */
		"Content-Disposition: attachment;\r\n"
		"\tfilename=\"%s!%s!%lld!%lld!%s.json.gz\"\r\n"
		"\r\n",
		from, to, date, domain, submitter, report_id, report_id,
		submitter, domain, submitter, boundary, boundary, submitter,
		domain, boundary, submitter, domain, (long long)start,
		(long long)(end - 1), report_id);
	auth_report_base64(buf_span(&gz).p, gz.used, out);
	buf_printf(out, "\r\n--%s--\r\n", boundary);
	buf_free(&gz);
	return 0;
}
