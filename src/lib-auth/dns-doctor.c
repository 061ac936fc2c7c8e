/* dns-doctor.c - the records a hosted domain must publish and the checker
   that compares them with live DNS (dns-doctor.h). The checker starts
   every lookup it needs at once (deduplicated by name and type), copies
   the answers into presentation strings, and judges each expected record
   when the last answer is in. I/O-free except through struct auth_dns. */

#include "dns-doctor.h"
#include "buf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

/* RFC 1035 3.3.14: a character-string holds at most 255 octets. */
#define TXT_CHUNK 255

/* ---- the expected records ---- */

struct records_ctx {
	pool_t pool;
	struct dns_doctor_record *records;
	unsigned int count, alloc;
};

static void add_record(struct records_ctx *ctx, enum dns_doctor_kind kind,
		       const char *what, const char *name, uint16_t rrtype,
		       const char *value)
{
	struct dns_doctor_record *rec;

	if (ctx->count == ctx->alloc) {
		struct dns_doctor_record *n;

		ctx->alloc = ctx->alloc == 0 ? 32 : ctx->alloc * 2;
		n = p_new(ctx->pool, struct dns_doctor_record, ctx->alloc);
		if (ctx->count > 0)
			memcpy(n, ctx->records, ctx->count * sizeof(*n));
		ctx->records = n;
	}
	rec = &ctx->records[ctx->count++];
	rec->kind = kind;
	rec->what = what;
	rec->name = p_strdup(ctx->pool, name);
	rec->rrtype = rrtype;
	rec->value = p_strdup(ctx->pool, value);
}

static bool hostname_ok(const char *name)
{
	return dns_name_is_valid(name) && strchr(name, '_') == NULL &&
	       name[strlen(name) - 1] != '.';
}

static bool hex_ok(const char *hex)
{
	size_t len = strlen(hex);

	if (len != 64)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isxdigit((unsigned char)hex[i]))
			return false;
	}
	return true;
}

static void add_srv(struct records_ctx *ctx, const struct dns_doctor_input *in,
		    const char *service, unsigned int port)
{
	const char *name =
		p_strdup_printf(ctx->pool, "_%s._tcp.%s", service, in->domain);

	/* RFC 6186 3.1, RFC 8314 5.1: _submissions, _imaps, _pop3s SRV
	   records let clients find the server; RFC 2782: target "." means
	   the service is decidedly not available. */
	if (port == 0)
		add_record(ctx, DNS_DOCTOR_KIND_SRV, "SRV", name, DNS_TYPE_SRV,
			   "0 0 0 .");
	else
		add_record(ctx, DNS_DOCTOR_KIND_SRV, "SRV", name, DNS_TYPE_SRV,
			   p_strdup_printf(ctx->pool, "0 1 %u %s.", port,
					   in->hostname));
}

int dns_doctor_records(pool_t pool, const struct dns_doctor_input *in,
		       const struct dns_doctor_record **records_r,
		       unsigned int *count_r, const char **error_r)
{
	struct records_ctx ctx = { .pool = pool };
	const char *d = in->domain, *h = in->hostname, *name;
	struct buf spf = BUF_INIT;

	if (!hostname_ok(d)) {
		*error_r = p_strdup_printf(pool, "invalid domain: %s", d);
		return -1;
	}
	if (!hostname_ok(h)) {
		*error_r = p_strdup_printf(pool, "invalid hostname: %s", h);
		return -1;
	}
	if (in->tlsa_spki_sha256 != NULL && !hex_ok(in->tlsa_spki_sha256)) {
		*error_r = "invalid TLSA digest";
		return -1;
	}
	if (in->mta_sts_id == NULL || in->dmarc_policy == NULL) {
		*error_r = "MTA-STS id and DMARC policy are required";
		return -1;
	}

	/* RFC 5321 5.1: mail for the domain goes to its MX hosts. */
	add_record(&ctx, DNS_DOCTOR_KIND_MX, "MX", d, DNS_TYPE_MX,
		   p_strdup_printf(pool, "10 %s.", h));
	/* RFC 7208 5.4 "mx", 5.6 "ip4"/"ip6"; "-all" fails every other
	   sender (RFC 7208 5.1). */
	buf_append_str(&spf, "v=spf1 mx");
	for (unsigned int i = 0; i < in->address_count; i++) {
		uint8_t bin[16];
		bool v6 = strchr(in->addresses[i], ':') != NULL;

		if (inet_pton(v6 ? AF_INET6 : AF_INET, in->addresses[i], bin) !=
		    1) {
			buf_free(&spf);
			*error_r = p_strdup_printf(pool, "invalid address: %s",
						   in->addresses[i]);
			return -1;
		}
		add_record(&ctx, DNS_DOCTOR_KIND_HOST_ADDRESS, "host address",
			   h, v6 ? DNS_TYPE_AAAA : DNS_TYPE_A,
			   in->addresses[i]);
		buf_printf(&spf, " %s:%s", v6 ? "ip6" : "ip4",
			   in->addresses[i]);
	}
	buf_append_str(&spf, " -all");
	add_record(&ctx, DNS_DOCTOR_KIND_SPF, "SPF", d, DNS_TYPE_TXT,
		   buf_cstr(&spf));
	buf_free(&spf);

	/* RFC 6376 3.6.2.1: the key record is at
	   <selector>._domainkey.<domain>. */
	for (unsigned int i = 0; i < in->dkim_count; i++) {
		const struct dns_doctor_dkim *k = &in->dkim[i];

		if (strcmp(k->state, "retired") == 0)
			continue;
		name = p_strdup_printf(pool, "%s._domainkey.%s", k->selector,
				       d);
		if (!dns_name_is_valid(name)) {
			*error_r = p_strdup_printf(
				pool, "invalid DKIM selector: %s", k->selector);
			return -1;
		}
		add_record(&ctx, DNS_DOCTOR_KIND_DKIM, "DKIM", name,
			   DNS_TYPE_TXT, k->public_record);
	}
	/* RFC 7489 6.1 (at _dmarc), 6.3 (p=, rua=). */
	add_record(&ctx, DNS_DOCTOR_KIND_DMARC, "DMARC",
		   p_strdup_printf(pool, "_dmarc.%s", d), DNS_TYPE_TXT,
		   p_strdup_printf(
			   pool, "v=DMARC1; p=%s; rua=mailto:dmarc-reports@%s",
			   in->dmarc_policy, d));
	/* RFC 8461 3.1: the policy id at _mta-sts; 3.3: the policy is
	   fetched from https://mta-sts.<domain>/, which we serve. */
	add_record(&ctx, DNS_DOCTOR_KIND_MTA_STS, "MTA-STS",
		   p_strdup_printf(pool, "_mta-sts.%s", d), DNS_TYPE_TXT,
		   mtasts_txt_record(pool, in->mta_sts_id));
	name = p_strdup_printf(pool, "mta-sts.%s", d);
	if (strcasecmp(name, h) != 0)
		add_record(&ctx, DNS_DOCTOR_KIND_MTA_STS_HOST, "MTA-STS host",
			   name, DNS_TYPE_CNAME,
			   p_strdup_printf(pool, "%s.", h));
	/* RFC 8460 3: the reporting policy at _smtp._tls. */
	add_record(&ctx, DNS_DOCTOR_KIND_TLSRPT, "TLS-RPT",
		   p_strdup_printf(pool, "_smtp._tls.%s", d), DNS_TYPE_TXT,
		   p_strdup_printf(pool,
				   "v=TLSRPTv1; rua=mailto:tls-reports@%s", d));
	/* RFC 7672 3.1.1, RFC 6698 3: TLSA at _25._tcp.<MX host>; "3 1 1"
	   pins our key, not a CA, and survives certificate renewals that
	   keep the key. */
	if (in->tlsa_spki_sha256 != NULL) {
		char *hex = p_strdup(pool, in->tlsa_spki_sha256);

		for (char *c = hex; *c != '\0'; c++)
			*c = (char)tolower((unsigned char)*c);
		add_record(&ctx, DNS_DOCTOR_KIND_TLSA, "TLSA",
			   p_strdup_printf(pool, "_25._tcp.%s", h),
			   DNS_TYPE_TLSA,
			   p_strdup_printf(pool, "3 1 1 %s", hex));
	}
	add_srv(&ctx, in, "submissions", in->submissions_port);
	add_srv(&ctx, in, "imaps", in->imaps_port);
	add_srv(&ctx, in, "pop3s", in->pop3s_port);
	/* Thunderbird's autoconfig and Outlook's autodiscover host names,
	   answered by our HTTP listener. */
	add_record(&ctx, DNS_DOCTOR_KIND_AUTOCONFIG, "autoconfig",
		   p_strdup_printf(pool, "autoconfig.%s", d), DNS_TYPE_CNAME,
		   p_strdup_printf(pool, "%s.", h));
	add_record(&ctx, DNS_DOCTOR_KIND_AUTOCONFIG, "autoconfig",
		   p_strdup_printf(pool, "autodiscover.%s", d), DNS_TYPE_CNAME,
		   p_strdup_printf(pool, "%s.", h));

	*records_r = ctx.records;
	*count_r = ctx.count;
	return 0;
}

const char *dns_doctor_type_name(pool_t pool, uint16_t rrtype)
{
	switch (rrtype) {
	case DNS_TYPE_A:
		return "A";
	case DNS_TYPE_AAAA:
		return "AAAA";
	case DNS_TYPE_CNAME:
		return "CNAME";
	case DNS_TYPE_MX:
		return "MX";
	case DNS_TYPE_TXT:
		return "TXT";
	case DNS_TYPE_TLSA:
		return "TLSA";
	case DNS_TYPE_SRV:
		return "SRV";
	}
	/* RFC 3597 5 */
	return p_strdup_printf(pool, "TYPE%u", rrtype);
}

void dns_doctor_record_format(struct buf *out,
			      const struct dns_doctor_record *rec)
{
	pool_t pool = pool_create("dns type", 64);

	buf_printf(out, "%s. %u IN %s ", rec->name, DNS_DOCTOR_TTL,
		   dns_doctor_type_name(pool, rec->rrtype));
	pool_unref(&pool);
	if (rec->rrtype != DNS_TYPE_TXT) {
		buf_printf(out, "%s\n", rec->value);
		return;
	}
	/* RFC 1035 5.1: a quoted character-string, '"' and '\' escaped;
	   RFC 6376 3.6.2.2: a longer value is several strings, which
	   verifiers concatenate. */
	size_t len = strlen(rec->value);

	for (size_t i = 0; i < len || i == 0; i += TXT_CHUNK) {
		size_t n = len - i < TXT_CHUNK ? len - i : TXT_CHUNK;

		if (i > 0)
			buf_append_c(out, ' ');
		buf_append_c(out, '"');
		for (size_t j = 0; j < n; j++) {
			char c = rec->value[i + j];

			if (c == '"' || c == '\\')
				buf_append_c(out, '\\');
			buf_append_c(out, (uint8_t)c);
		}
		buf_append_c(out, '"');
		if (len == 0)
			break;
	}
	buf_append_c(out, '\n');
}

int dns_doctor_tlsa_spki(pool_t pool, const void *pem, size_t len,
			 const char **hex_r, const char **error_r)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
	unsigned int md_len = 0;
	BIO *bio;
	X509 *cert;
	int der_len;
	char *out;

	if (len > INT32_MAX) {
		*error_r = "certificate file too large";
		return -1;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL)
		i_panic("BIO_new_mem_buf failed");
	cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (cert == NULL) {
		*error_r = "no PEM certificate found";
		return -1;
	}
	/* RFC 6698 2.1.2 selector 1: the DER SubjectPublicKeyInfo. */
	der_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	X509_free(cert);
	if (der_len <= 0) {
		*error_r = "certificate without a public key";
		return -1;
	}
	if (EVP_Digest(der, (size_t)der_len, md, &md_len, EVP_sha256(), NULL) !=
	    1)
		i_panic("SHA-256 failed");
	OPENSSL_free(der);
	out = p_malloc(pool, md_len * 2 + 1);
	for (unsigned int i = 0; i < md_len; i++) {
		out[i * 2] = hex[md[i] >> 4];
		out[i * 2 + 1] = hex[md[i] & 0x0f];
	}
	*hex_r = out;
	return 0;
}

const char *dns_doctor_status_name(enum dns_doctor_status status)
{
	switch (status) {
	case DNS_DOCTOR_OK:
		return "OK";
	case DNS_DOCTOR_WARNING:
		return "WARNING";
	case DNS_DOCTOR_MISSING:
		return "MISSING";
	case DNS_DOCTOR_WRONG:
		return "WRONG";
	case DNS_DOCTOR_ERROR:
		return "ERROR";
	}
	i_unreached();
}

bool dns_doctor_findings_ok(const struct dns_doctor_finding *findings,
			    unsigned int count)
{
	for (unsigned int i = 0; i < count; i++) {
		if (findings[i].status != DNS_DOCTOR_OK &&
		    findings[i].status != DNS_DOCTOR_WARNING)
			return false;
	}
	return true;
}

/* ---- the checker: lookups ---- */

struct doctor_answer {
	struct dns_doctor_check *check;
	const char *name;
	uint16_t rrtype;
	struct dns_lookup *lookup;
	enum dns_status status;
	const char *error;
	bool null_mx;
	/* Presentation form: names lower-case without trailing dot. */
	const char **values;
	unsigned int count;
};

struct dns_doctor_check {
	pool_t pool;
	struct auth_dns *dns;
	const struct dns_doctor_input *in;
	const struct dns_doctor_record *records;
	unsigned int record_count;
	struct doctor_answer **answers;
	unsigned int answer_count, answer_alloc;
	unsigned int pending;
	dns_doctor_callback_t *cb;
	void *context;
};

static void check_finish(struct dns_doctor_check *check);

static void answer_info(struct doctor_answer *a,
			const struct dns_result_info *info)
{
	a->lookup = NULL;
	a->status = info->status;
	if (info->error != NULL)
		a->error = p_strdup(a->check->pool, info->error);
}

static void answer_done(struct doctor_answer *a)
{
	struct dns_doctor_check *check = a->check;

	i_assert(check->pending > 0);
	if (--check->pending == 0)
		check_finish(check);
}

static void answer_txt(void *context, const struct dns_txt_result *r)
{
	struct doctor_answer *a = context;

	answer_info(a, &r->info);
	a->values = p_new(a->check->pool, const char *, r->count + 1);
	for (unsigned int i = 0; i < r->count; i++) {
		/* A NUL inside a TXT record ends it here: no value we
		   publish has one, so it is wrong either way. */
		a->values[a->count++] = p_strndup(
			a->check->pool, r->txt[i].text, r->txt[i].len);
	}
	answer_done(a);
}

static char *lower_name(pool_t pool, const char *name)
{
	char *s = p_strdup(pool, name);
	size_t len = strlen(s);

	for (size_t i = 0; i < len; i++)
		s[i] = (char)tolower((unsigned char)s[i]);
	/* "0 0 0 ." (SRV "not available") keeps its root. */
	if (len > 1 && s[len - 1] == '.' && s[len - 2] != ' ')
		s[len - 1] = '\0';
	return s;
}

static void answer_mx(void *context, const struct dns_mx_result *r)
{
	struct doctor_answer *a = context;

	answer_info(a, &r->info);
	a->null_mx = r->null_mx;
	a->values = p_new(a->check->pool, const char *, r->count + 1);
	for (unsigned int i = 0; i < r->count; i++) {
		a->values[a->count++] = p_strdup_printf(
			a->check->pool, "%u %s", r->mx[i].preference,
			lower_name(a->check->pool, r->mx[i].host));
	}
	answer_done(a);
}

/* A wire-format name (uncompressed, as lib-dns hands raw rdata) at
   data[*pos]: lower-case presentation, "." for the root. NULL when
   malformed. */
static const char *wire_name(pool_t pool, const uint8_t *data, size_t len,
			     size_t *pos)
{
	struct buf out = BUF_INIT;
	const char *ret;

	while (*pos < len) {
		uint8_t l = data[(*pos)++];

		if (l == 0) {
			ret = p_strdup(pool,
				       out.used == 0 ? "." : buf_cstr(&out));
			buf_free(&out);
			return ret;
		}
		/* RFC 1035 4.1.4: compression pointers (0xc0) are not in
		   lib-dns raw rdata. */
		if (l > 63 || *pos + l > len)
			break;
		if (out.used > 0)
			buf_append_c(&out, '.');
		for (uint8_t i = 0; i < l; i++) {
			unsigned char c = data[(*pos)++];

			buf_append_c(&out,
				     (uint8_t)(isgraph(c) ? tolower(c) : '?'));
		}
	}
	buf_free(&out);
	return NULL;
}

static const char *raw_value(pool_t pool, uint16_t rrtype,
			     const struct dns_rdata *rd)
{
	char text[INET6_ADDRSTRLEN];
	size_t pos = 0;
	const char *name;

	switch (rrtype) {
	case DNS_TYPE_A:
	case DNS_TYPE_AAAA:
		if (rd->len != (rrtype == DNS_TYPE_A ? 4U : 16U))
			return NULL;
		if (inet_ntop(rrtype == DNS_TYPE_A ? AF_INET : AF_INET6,
			      rd->data, text, sizeof(text)) == NULL)
			return NULL;
		return p_strdup(pool, text);
	case DNS_TYPE_CNAME:
		return wire_name(pool, rd->data, rd->len, &pos);
	case DNS_TYPE_SRV:
		/* RFC 2782: priority, weight, port, target */
		if (rd->len < 7)
			return NULL;
		pos = 6;
		name = wire_name(pool, rd->data, rd->len, &pos);
		if (name == NULL)
			return NULL;
		return p_strdup_printf(pool, "%u %u %u %s",
				       (rd->data[0] << 8) | rd->data[1],
				       (rd->data[2] << 8) | rd->data[3],
				       (rd->data[4] << 8) | rd->data[5], name);
	case DNS_TYPE_TLSA: {
		/* RFC 6698 2.1 */
		struct buf out = BUF_INIT;
		const char *ret;

		if (rd->len < 4)
			return NULL;
		buf_printf(&out, "%u %u %u ", rd->data[0], rd->data[1],
			   rd->data[2]);
		for (size_t i = 3; i < rd->len; i++)
			buf_printf(&out, "%02x", rd->data[i]);
		ret = p_strdup(pool, buf_cstr(&out));
		buf_free(&out);
		return ret;
	}
	}
	return NULL;
}

static void answer_raw(void *context, const struct dns_raw_result *r)
{
	struct doctor_answer *a = context;

	answer_info(a, &r->info);
	a->values = p_new(a->check->pool, const char *, r->count + 1);
	for (unsigned int i = 0; i < r->count; i++) {
		const char *v =
			raw_value(a->check->pool, a->rrtype, &r->rdata[i]);

		a->values[a->count++] = v != NULL ? v : "(unparsable rdata)";
	}
	answer_done(a);
}

static struct doctor_answer *answer_get(struct dns_doctor_check *check,
					const char *name, uint16_t rrtype)
{
	struct doctor_answer *a;

	for (unsigned int i = 0; i < check->answer_count; i++) {
		a = check->answers[i];
		if (a->rrtype == rrtype && strcasecmp(a->name, name) == 0)
			return a;
	}
	if (check->answer_count == check->answer_alloc) {
		struct doctor_answer **n;

		check->answer_alloc =
			check->answer_alloc == 0 ? 32 : check->answer_alloc * 2;
		n = p_new(check->pool, struct doctor_answer *,
			  check->answer_alloc);
		if (check->answer_count > 0)
			memcpy(n, check->answers,
			       check->answer_count * sizeof(*n));
		check->answers = n;
	}
	a = p_new(check->pool, struct doctor_answer, 1);
	a->check = check;
	a->name = p_strdup(check->pool, name);
	a->rrtype = rrtype;
	a->status = DNS_STATUS_TEMPFAIL;
	check->answers[check->answer_count++] = a;
	check->pending++;
	if (rrtype == DNS_TYPE_TXT)
		a->lookup = check->dns->txt(check->dns, name, answer_txt, a);
	else if (rrtype == DNS_TYPE_MX)
		a->lookup = check->dns->mx(check->dns, name, answer_mx, a);
	else
		a->lookup = check->dns->raw(check->dns, name, rrtype,
					    answer_raw, a);
	return a;
}

static void request_lookups(struct dns_doctor_check *check,
			    const struct dns_doctor_record *rec)
{
	switch (rec->kind) {
	case DNS_DOCTOR_KIND_MTA_STS_HOST:
	case DNS_DOCTOR_KIND_AUTOCONFIG:
		/* A CNAME to us, or addresses that are ours. */
		(void)answer_get(check, rec->name, DNS_TYPE_CNAME);
		(void)answer_get(check, rec->name, DNS_TYPE_A);
		(void)answer_get(check, rec->name, DNS_TYPE_AAAA);
		(void)answer_get(check, check->in->hostname, DNS_TYPE_A);
		(void)answer_get(check, check->in->hostname, DNS_TYPE_AAAA);
		break;
	default:
		(void)answer_get(check, rec->name, rec->rrtype);
		break;
	}
}

struct dns_doctor_check *dns_doctor_check_start(
	struct auth_dns *dns, const struct dns_doctor_input *in,
	const struct dns_doctor_record *records, unsigned int count,
	dns_doctor_callback_t *cb, void *context)
{
	pool_t pool;
	struct dns_doctor_check *check;

	i_assert(count > 0);
	pool = pool_create("dns doctor", 8192);
	check = p_new(pool, struct dns_doctor_check, 1);

	check->pool = pool;
	check->dns = dns;
	check->in = in;
	check->records = records;
	check->record_count = count;
	check->cb = cb;
	check->context = context;
	/* Held while starting, so an answer cannot finish the check
	   before every lookup is out (auth_dns never answers inside the
	   call, but this does not depend on it). */
	check->pending++;
	for (unsigned int i = 0; i < count; i++)
		request_lookups(check, &records[i]);
	check->pending--;
	i_assert(check->pending > 0);
	return check;
}

void dns_doctor_check_cancel(struct dns_doctor_check **_check)
{
	struct dns_doctor_check *check = *_check;

	if (check == NULL)
		return;
	*_check = NULL;
	for (unsigned int i = 0; i < check->answer_count; i++)
		check->dns->cancel(check->dns, &check->answers[i]->lookup);
	pool_unref(&check->pool);
}

/* ---- the checker: judging ---- */

struct judge {
	struct dns_doctor_check *check;
	pool_t pool;
	const struct dns_doctor_record *rec;
	struct dns_doctor_finding *f;
};

static const char *zone_line(pool_t pool, const struct dns_doctor_record *rec)
{
	struct buf out = BUF_INIT;
	const char *ret;

	dns_doctor_record_format(&out, rec);
	buf_truncate(&out, out.used - 1); /* the newline */
	ret = p_strdup(pool, buf_cstr(&out));
	buf_free(&out);
	return ret;
}

static void verdict(struct judge *j, enum dns_doctor_status status,
		    const char *fix_verb, const char *fmt, ...)
	ATTR_FORMAT(4, 5);
static void verdict(struct judge *j, enum dns_doctor_status status,
		    const char *fix_verb, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	j->f->status = status;
	j->f->detail = p_strdup_vprintf(j->pool, fmt, args);
	va_end(args);
	j->f->fix = fix_verb == NULL
			    ? NULL
			    : p_strdup_printf(j->pool, "%s: %s", fix_verb,
					      zone_line(j->pool, j->rec));
}

/* Values joined as "a", "b" for details. */
static const char *quoted_list(pool_t pool, const char *const *values,
			       unsigned int count)
{
	struct buf out = BUF_INIT;
	const char *ret;

	for (unsigned int i = 0; i < count; i++)
		buf_printf(&out, "%s\"%s\"", i > 0 ? ", " : "", values[i]);
	ret = p_strdup(pool, count == 0 ? "nothing" : buf_cstr(&out));
	buf_free(&out);
	return ret;
}

/* Returns false (with the verdict given) when the lookup did not give an
   answer the record can be judged on. */
static bool answer_usable(struct judge *j, const struct doctor_answer *a)
{
	if (a->status == DNS_STATUS_TEMPFAIL ||
	    a->status == DNS_STATUS_INVALID_NAME) {
		verdict(j, DNS_DOCTOR_ERROR, NULL,
			"%s lookup of %s failed: %s%s%s",
			dns_doctor_type_name(j->pool, a->rrtype), a->name,
			dns_status_name(a->status),
			a->error != NULL ? ": " : "",
			a->error != NULL ? a->error : "");
		return false;
	}
	return true;
}

static const struct doctor_answer *answer_find(struct dns_doctor_check *check,
					       const char *name,
					       uint16_t rrtype)
{
	for (unsigned int i = 0; i < check->answer_count; i++) {
		const struct doctor_answer *a = check->answers[i];

		if (a->rrtype == rrtype && strcasecmp(a->name, name) == 0)
			return a;
	}
	i_unreached();
}

/* Tag-list records (RFC 6376 3.2, RFC 7489 6.4, RFC 8461 3.1, RFC 8460
   3): the trimmed value of tag, or NULL. */
static const char *tag_value(pool_t pool, const char *text, const char *tag)
{
	const char *p = text;

	while (*p != '\0') {
		const char *end = strchr(p, ';'), *eq;
		size_t len;

		if (end == NULL)
			end = p + strlen(p);
		while (p < end && isspace((unsigned char)*p))
			p++;
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq != NULL) {
			const char *k = eq;

			while (k > p && isspace((unsigned char)k[-1]))
				k--;
			if ((size_t)(k - p) == strlen(tag) &&
			    strncmp(p, tag, strlen(tag)) == 0) {
				const char *v = eq + 1;

				while (v < end && isspace((unsigned char)*v))
					v++;
				len = (size_t)(end - v);
				while (len > 0 &&
				       isspace((unsigned char)v[len - 1]))
					len--;
				return p_strndup(pool, v, len);
			}
		}
		p = *end == ';' ? end + 1 : end;
	}
	return NULL;
}

/* Whether text is a record of this version: its first tag is v=version
   (RFC 7489 6.4, RFC 8461 3.1, RFC 8460 3 require v first). */
static bool txt_is_version(const char *text, const char *version)
{
	const char *p = text;
	size_t len = strlen(version);

	while (isspace((unsigned char)*p))
		p++;
	if (*p++ != 'v')
		return false;
	while (isspace((unsigned char)*p))
		p++;
	if (*p++ != '=')
		return false;
	while (isspace((unsigned char)*p))
		p++;
	if (strncmp(p, version, len) != 0)
		return false;
	p += len;
	while (isspace((unsigned char)*p))
		p++;
	return *p == ';' || *p == '\0';
}

/* The TXT values of a that are records of version. */
static unsigned int txt_filter(pool_t pool, const struct doctor_answer *a,
			       const char *version, const char ***values_r)
{
	const char **v = p_new(pool, const char *, a->count + 1);
	unsigned int n = 0;

	for (unsigned int i = 0; i < a->count; i++) {
		if (txt_is_version(a->values[i], version))
			v[n++] = a->values[i];
	}
	*values_r = v;
	return n;
}

static void judge_mx(struct judge *j, const struct doctor_answer *a)
{
	const char *host = j->check->in->hostname;
	unsigned int ours = 0;

	if (a->null_mx) {
		/* RFC 7505 3 */
		verdict(j, DNS_DOCTOR_WRONG, "replace it with",
			"null MX \"0 .\": the domain says it accepts no mail");
		return;
	}
	if (a->count == 0) {
		verdict(j, DNS_DOCTOR_MISSING, "publish",
			"no MX record: senders fall back to the A record of %s "
			"(RFC 5321 5.1)",
			a->name);
		return;
	}
	for (unsigned int i = 0; i < a->count; i++) {
		const char *h = strchr(a->values[i], ' ');

		if (h != NULL && strcasecmp(h + 1, host) == 0)
			ours++;
	}
	if (ours == 0) {
		verdict(j, DNS_DOCTOR_WRONG, "replace the MX records with",
			"MX points to %s, not to this server (%s)",
			quoted_list(j->pool, a->values, a->count), host);
	} else if (ours < a->count) {
		verdict(j, DNS_DOCTOR_WARNING, NULL,
			"MX %s: other hosts than %s also receive the domain's "
			"mail",
			quoted_list(j->pool, a->values, a->count), host);
	} else {
		verdict(j, DNS_DOCTOR_OK, NULL, "%s",
			quoted_list(j->pool, a->values, a->count));
	}
}

static bool address_in(const char *addr, const char *const *list,
		       unsigned int count)
{
	uint8_t a[16], b[16];
	int fam = strchr(addr, ':') != NULL ? AF_INET6 : AF_INET;

	if (inet_pton(fam, addr, a) != 1)
		return false;
	for (unsigned int i = 0; i < count; i++) {
		if (inet_pton(fam, list[i], b) == 1 &&
		    memcmp(a, b, fam == AF_INET ? 4 : 16) == 0)
			return true;
	}
	return false;
}

/* RFC 7208 5.6: whether ip4:/ip6: net (with an optional /cidr) holds
   addr. */
static bool spf_net_holds(const char *net, bool v6, const char *addr)
{
	uint8_t n[16], a[16];
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(net, '/');
	unsigned int bits = v6 ? 128 : 32;
	size_t len = slash == NULL ? strlen(net) : (size_t)(slash - net);

	if (len >= sizeof(buf))
		return false;
	memcpy(buf, net, len);
	buf[len] = '\0';
	if (slash != NULL) {
		char *end;
		unsigned long b = strtoul(slash + 1, &end, 10);

		if (*end != '\0' || b > bits)
			return false;
		bits = (unsigned int)b;
	}
	if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, n) != 1 ||
	    inet_pton(v6 ? AF_INET6 : AF_INET, addr, a) != 1)
		return false;
	for (unsigned int i = 0; i < bits; i++) {
		uint8_t m = (uint8_t)(0x80 >> (i % 8));

		if ((n[i / 8] & m) != (a[i / 8] & m))
			return false;
	}
	return true;
}

static void judge_spf(struct judge *j, const struct doctor_answer *a)
{
	const struct dns_doctor_input *in = j->check->in;
	const char **spf = p_new(j->pool, const char *, a->count + 1);
	unsigned int n = 0, addr_hits = 0;
	bool mx = false, indirect = false, open = false;

	/* RFC 7208 4.5: records that begin with "v=spf1" followed by a
	   space or the end. */
	for (unsigned int i = 0; i < a->count; i++) {
		if (strncasecmp(a->values[i], "v=spf1", 6) == 0 &&
		    (a->values[i][6] == ' ' || a->values[i][6] == '\0'))
			spf[n++] = a->values[i];
	}
	if (n == 0) {
		verdict(j, DNS_DOCTOR_MISSING, "publish",
			"no SPF record: receivers cannot tell this server may "
			"send for %s",
			in->domain);
		return;
	}
	if (n > 1) {
		/* RFC 7208 4.5: more than one record is a permerror. */
		verdict(j, DNS_DOCTOR_WRONG, "delete all but one, and make it",
			"%u SPF records (%s): RFC 7208 4.5 makes that a "
			"permerror, so SPF fails for every message",
			n, quoted_list(j->pool, spf, n));
		return;
	}
	if (strcmp(spf[0], j->rec->value) == 0) {
		verdict(j, DNS_DOCTOR_OK, NULL, "\"%s\"", spf[0]);
		return;
	}
	/* Not ours to the letter: does it let this server send? */
	char *terms = p_strdup(j->pool, spf[0] + 6), *save = NULL;

	for (char *t = strtok_r(terms, " ", &save); t != NULL;
	     t = strtok_r(NULL, " ", &save)) {
		char q = '+';

		/* RFC 7208 4.6.2: qualifiers; only "+" (the default)
		   passes. */
		if (strchr("+-~?", *t) != NULL)
			q = *t++;
		if (strcasecmp(t, "all") == 0) {
			if (q == '+' || q == '?')
				open = true;
			continue;
		}
		if (q != '+')
			continue;
		if (strcasecmp(t, "mx") == 0 || strncasecmp(t, "mx/", 3) == 0)
			mx = true;
		else if (strncasecmp(t, "mx:", 3) == 0 &&
			 strcasecmp(t + 3, in->domain) == 0)
			mx = true;
		else if (strncasecmp(t, "a:", 2) == 0 &&
			 strcasecmp(t + 2, in->hostname) == 0)
			mx = true;
		else if (strcasecmp(t, "a") == 0 &&
			 strcasecmp(in->domain, in->hostname) == 0)
			mx = true;
		else if (strncasecmp(t, "ip4:", 4) == 0 ||
			 strncasecmp(t, "ip6:", 4) == 0) {
			for (unsigned int i = 0; i < in->address_count; i++) {
				if (spf_net_holds(t + 4, t[2] == '6',
						  in->addresses[i]))
					addr_hits++;
			}
		} else if (strncasecmp(t, "include:", 8) == 0 ||
			   strncasecmp(t, "redirect=", 9) == 0 ||
			   strncasecmp(t, "exists:", 7) == 0)
			indirect = true;
	}
	if (open) {
		/* RFC 7208 5.1: "+all" / "?all" lets anyone pass or be
		   neutral: no protection. */
		verdict(j, DNS_DOCTOR_WRONG, "replace it with",
			"\"%s\" ends in +all or ?all: it lets any host send "
			"as %s",
			spf[0], in->domain);
	} else if (mx ||
		   (in->address_count > 0 && addr_hits >= in->address_count)) {
		verdict(j, DNS_DOCTOR_OK, NULL,
			"\"%s\" (authorizes this server)", spf[0]);
	} else if (indirect) {
		verdict(j, DNS_DOCTOR_WARNING,
			"unless an include covers it, use",
			"\"%s\" names this server only through include, "
			"redirect or exists, which this check does not follow",
			spf[0]);
	} else {
		verdict(j, DNS_DOCTOR_WRONG, "replace it with",
			"\"%s\" does not authorize this server (%s): its mail "
			"fails SPF",
			spf[0], in->hostname);
	}
}

/* A p= value without the FWS RFC 6376 3.6.1 allows in base64. */
static const char *strip_ws(pool_t pool, const char *s)
{
	char *out = p_malloc(pool, strlen(s) + 1), *o = out;

	for (; *s != '\0'; s++) {
		if (!isspace((unsigned char)*s))
			*o++ = *s;
	}
	return out;
}

static void judge_dkim(struct judge *j, const struct doctor_answer *a)
{
	const char *want_p, *want_k, *p, *k;

	if (a->count == 0) {
		verdict(j, DNS_DOCTOR_MISSING, "publish",
			"no DKIM key record: receivers cannot verify mail "
			"signed with selector %.*s",
			(int)(strchr(j->rec->name, '.') - j->rec->name),
			j->rec->name);
		return;
	}
	if (a->count > 1) {
		/* RFC 6376 3.6.2.2: the results of several records are
		   undefined. */
		verdict(j, DNS_DOCTOR_WRONG, "keep only",
			"%u TXT records (%s): verifiers may pick either",
			a->count, quoted_list(j->pool, a->values, a->count));
		return;
	}
	want_p = strip_ws(j->pool, tag_value(j->pool, j->rec->value, "p"));
	want_k = tag_value(j->pool, j->rec->value, "k");
	p = tag_value(j->pool, a->values[0], "p");
	k = tag_value(j->pool, a->values[0], "k");
	/* RFC 6376 3.6.1: k= defaults to rsa. */
	if (want_k == NULL)
		want_k = "rsa";
	if (k == NULL)
		k = "rsa";
	if (p == NULL) {
		verdict(j, DNS_DOCTOR_WRONG, "replace it with",
			"\"%s\" has no p= tag (RFC 6376 3.6.1 requires it)",
			a->values[0]);
	} else if (*strip_ws(j->pool, p) == '\0') {
		verdict(j, DNS_DOCTOR_WRONG, "replace it with",
			"empty p=: the key is revoked (RFC 6376 3.6.1), every "
			"signature with it fails");
	} else if (strcmp(strip_ws(j->pool, p), want_p) != 0) {
		verdict(j, DNS_DOCTOR_WRONG, "replace it with",
			"p= is a different public key than this server signs "
			"with: \"%s\"",
			a->values[0]);
	} else if (strcasecmp(k, want_k) != 0) {
		verdict(j, DNS_DOCTOR_WRONG, "replace it with",
			"k=%s, but the key is %s", k, want_k);
	} else {
		verdict(j, DNS_DOCTOR_OK, NULL, "p= matches");
	}
}

static void judge_dmarc(struct judge *j, const struct doctor_answer *a)
{
	const char **v, *p, *rua, *ours;
	unsigned int n = txt_filter(j->pool, a, "DMARC1", &v);

	if (n == 0) {
		verdict(j, DNS_DOCTOR_MISSING, "publish",
			"no DMARC record: receivers apply no policy to mail "
			"that fails SPF and DKIM%s%s",
			a->count > 0 ? "; found " : "",
			a->count > 0 ? quoted_list(j->pool, a->values, a->count)
				     : "");
		return;
	}
	if (n > 1) {
		/* RFC 7489 6.6.3: more than one record: no DMARC. */
		verdict(j, DNS_DOCTOR_WRONG, "keep only",
			"%u DMARC records (%s): RFC 7489 6.6.3 then applies "
			"none",
			n, quoted_list(j->pool, v, n));
		return;
	}
	p = tag_value(j->pool, v[0], "p");
	rua = tag_value(j->pool, v[0], "rua");
	ours = p_strdup_printf(j->pool, "mailto:dmarc-reports@%s",
			       j->check->in->domain);
	if (p == NULL ||
	    (strcmp(p, "none") != 0 && strcmp(p, "quarantine") != 0 &&
	     strcmp(p, "reject") != 0)) {
		/* RFC 7489 6.3: p= is required, one of three values. */
		verdict(j, DNS_DOCTOR_WRONG, "replace it with",
			"\"%s\" has no valid p= (none, quarantine or reject)",
			v[0]);
	} else if (strcmp(p, "none") == 0) {
		verdict(j, DNS_DOCTOR_WARNING, "once reports are clean, use",
			"\"%s\": p=none only monitors, receivers still deliver "
			"forged mail",
			v[0]);
	} else if (rua == NULL || strstr(rua, ours) == NULL) {
		verdict(j, DNS_DOCTOR_OK, NULL,
			"\"%s\" (aggregate reports do not come here)", v[0]);
	} else {
		verdict(j, DNS_DOCTOR_OK, NULL, "\"%s\"", v[0]);
	}
}

static void judge_mta_sts(struct judge *j, const struct doctor_answer *a)
{
	const char **v, *id;
	unsigned int n = txt_filter(j->pool, a, "STSv1", &v);

	if (n == 0) {
		verdict(j, DNS_DOCTOR_MISSING, "publish",
			"no MTA-STS record: senders do not look for the policy "
			"this server serves");
		return;
	}
	if (n > 1) {
		/* RFC 8461 3.1: not exactly one record: no policy. */
		verdict(j, DNS_DOCTOR_WRONG, "keep only",
			"%u MTA-STS records (%s): RFC 8461 3.1 then means no "
			"policy",
			n, quoted_list(j->pool, v, n));
		return;
	}
	id = tag_value(j->pool, v[0], "id");
	if (id == NULL || strcmp(id, j->check->in->mta_sts_id) != 0) {
		/* RFC 8461 3.1: senders refetch the policy only when id
		   changes. */
		verdict(j, DNS_DOCTOR_WRONG, "replace it with",
			"\"%s\": id is not that of the policy served (%s), so "
			"senders keep a stale policy",
			v[0], j->check->in->mta_sts_id);
		return;
	}
	verdict(j, DNS_DOCTOR_OK, NULL, "\"%s\"", v[0]);
}

static void judge_tlsrpt(struct judge *j, const struct doctor_answer *a)
{
	const char **v, *rua;
	unsigned int n = txt_filter(j->pool, a, "TLSRPTv1", &v);

	if (n == 0) {
		verdict(j, DNS_DOCTOR_MISSING, "publish",
			"no TLS-RPT record: senders do not report TLS failures");
		return;
	}
	if (n > 1) {
		/* RFC 8460 3: not exactly one record: no reporting. */
		verdict(j, DNS_DOCTOR_WRONG, "keep only",
			"%u TLS-RPT records (%s): RFC 8460 3 then means no "
			"reporting",
			n, quoted_list(j->pool, v, n));
		return;
	}
	rua = tag_value(j->pool, v[0], "rua");
	if (rua == NULL || *rua == '\0') {
		/* RFC 8460 3: rua is required. */
		verdict(j, DNS_DOCTOR_WRONG, "replace it with",
			"\"%s\" has no rua=", v[0]);
		return;
	}
	verdict(j, DNS_DOCTOR_OK, NULL, "\"%s\"", v[0]);
}

/* RFC 2782: priority and weight are the operator's choice; the port and
   the target are what must be ours. */
static bool srv_port_target_eq(const char *a, const char *b)
{
	for (unsigned int i = 0; i < 2; i++) {
		a = strchr(a, ' ');
		b = strchr(b, ' ');
		if (a == NULL || b == NULL)
			return false;
		a++;
		b++;
	}
	return strcasecmp(a, b) == 0;
}

static void judge_values(struct judge *j, const struct doctor_answer *a,
			 const char *missing_why, const char *wrong_why)
{
	/* The record's value as answers show it: names without the
	   trailing dot, lower case. */
	const char *want = lower_name(j->pool, j->rec->value);

	for (unsigned int i = 0; i < a->count; i++) {
		if (strcasecmp(a->values[i], want) == 0 ||
		    (j->rec->rrtype == DNS_TYPE_SRV &&
		     srv_port_target_eq(a->values[i], want)) ||
		    (j->rec->rrtype != DNS_TYPE_TLSA &&
		     j->rec->rrtype != DNS_TYPE_SRV &&
		     address_in(want, a->values + i, 1))) {
			verdict(j, DNS_DOCTOR_OK, NULL, "\"%s\"", a->values[i]);
			return;
		}
	}
	if (a->count == 0)
		verdict(j, DNS_DOCTOR_MISSING, "publish", "%s", missing_why);
	else
		verdict(j, DNS_DOCTOR_WRONG, "replace it with", "found %s: %s",
			quoted_list(j->pool, a->values, a->count), wrong_why);
}

static void judge_cname(struct judge *j)
{
	struct dns_doctor_check *check = j->check;
	const char *host = check->in->hostname;
	const struct doctor_answer *c, *a4, *a6, *h4, *h6;
	unsigned int theirs = 0, ours = 0;

	c = answer_find(check, j->rec->name, DNS_TYPE_CNAME);
	a4 = answer_find(check, j->rec->name, DNS_TYPE_A);
	a6 = answer_find(check, j->rec->name, DNS_TYPE_AAAA);
	h4 = answer_find(check, host, DNS_TYPE_A);
	h6 = answer_find(check, host, DNS_TYPE_AAAA);
	if (!answer_usable(j, c))
		return;
	if (c->count > 0) {
		if (strcasecmp(c->values[0], host) == 0)
			verdict(j, DNS_DOCTOR_OK, NULL, "CNAME %s",
				c->values[0]);
		else
			verdict(j, DNS_DOCTOR_WRONG, "replace it with",
				"CNAME to %s, not to this server (%s)",
				c->values[0], host);
		return;
	}
	if (!answer_usable(j, a4) || !answer_usable(j, a6) ||
	    !answer_usable(j, h4) || !answer_usable(j, h6))
		return;
	/* Addresses instead of a CNAME are fine when they are ours. */
	for (unsigned int i = 0; i < a4->count; i++, theirs++)
		ours += address_in(a4->values[i], h4->values, h4->count);
	for (unsigned int i = 0; i < a6->count; i++, theirs++)
		ours += address_in(a6->values[i], h6->values, h6->count);
	if (theirs == 0)
		verdict(j, DNS_DOCTOR_MISSING, "publish", "%s does not resolve",
			j->rec->name);
	else if (ours == theirs)
		verdict(j, DNS_DOCTOR_OK, NULL, "addresses of %s", host);
	else
		verdict(j, DNS_DOCTOR_WRONG, "replace the A/AAAA records with",
			"%s has addresses that are not those of %s",
			j->rec->name, host);
}

static void judge(struct judge *j)
{
	const struct dns_doctor_record *rec = j->rec;
	const struct doctor_answer *a;

	if (rec->kind == DNS_DOCTOR_KIND_MTA_STS_HOST ||
	    rec->kind == DNS_DOCTOR_KIND_AUTOCONFIG) {
		judge_cname(j);
		return;
	}
	a = answer_find(j->check, rec->name, rec->rrtype);
	if (!answer_usable(j, a))
		return;
	switch (rec->kind) {
	case DNS_DOCTOR_KIND_MX:
		judge_mx(j, a);
		break;
	case DNS_DOCTOR_KIND_SPF:
		judge_spf(j, a);
		break;
	case DNS_DOCTOR_KIND_DKIM:
		judge_dkim(j, a);
		break;
	case DNS_DOCTOR_KIND_DMARC:
		judge_dmarc(j, a);
		break;
	case DNS_DOCTOR_KIND_MTA_STS:
		judge_mta_sts(j, a);
		break;
	case DNS_DOCTOR_KIND_TLSRPT:
		judge_tlsrpt(j, a);
		break;
	case DNS_DOCTOR_KIND_HOST_ADDRESS:
		judge_values(j, a,
			     "the address is not published for the host name",
			     "the host name does not have this address");
		break;
	case DNS_DOCTOR_KIND_TLSA:
		judge_values(j, a,
			     "no TLSA record: DANE senders cannot authenticate "
			     "this server (TLSA needs a DNSSEC-signed zone)",
			     "no TLSA record matches this server's key: DANE "
			     "senders will refuse to deliver (RFC 7672 2.2)");
		break;
	case DNS_DOCTOR_KIND_SRV:
		judge_values(j, a,
			     "no SRV record: mail clients cannot find the "
			     "service (RFC 6186)",
			     "SRV does not point to this server's port");
		break;
	case DNS_DOCTOR_KIND_MTA_STS_HOST:
	case DNS_DOCTOR_KIND_AUTOCONFIG:
		i_unreached();
	}
}

static void check_finish(struct dns_doctor_check *check)
{
	struct dns_doctor_finding *findings =
		p_new(check->pool, struct dns_doctor_finding,
		      check->record_count + 1);

	for (unsigned int i = 0; i < check->record_count; i++) {
		struct judge j = {
			.check = check,
			.pool = check->pool,
			.rec = &check->records[i],
			.f = &findings[i],
		};

		findings[i].record = &check->records[i];
		judge(&j);
	}
	check->cb(check->context, findings, check->record_count);
	pool_unref(&check->pool);
}
