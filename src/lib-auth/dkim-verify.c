/* dkim-verify.c - DKIM verification (RFC 6376 6, RFC 8463, RFC 8301):
   every DKIM-Signature field of a message is parsed and checked on its
   own (6.1), its key fetched through struct auth_dns
   (<s>._domainkey.<d> TXT), and its result reported with the policy that
   dkim.h documents. Owns the struct dkim_verify handle and its pool. */

#include "dkim-private.h"

#include <time.h>

#define DKIM_DEFAULT_MAX_SIGNATURES 8
#define DKIM_RSA_MIN_BITS 1024

struct dkim_sig {
	struct dkim_verify *v;
	struct dkim_signature_result *res;
	const struct dkim_field *field;
	struct dns_lookup *lookup;

	enum dkim_key_type ktype;
	enum dkim_canon hcanon, bcanon;
	struct span d, i_domain;
	struct span h[DKIM_H_MAX];
	unsigned int h_count;
	uint8_t bh[32];
	uint8_t b[DKIM_SIG_MAX];
	size_t b_len;
	bool has_l;
	uint64_t l;
};

struct dkim_verify {
	pool_t pool;
	struct auth_dns *dns;
	struct dkim_message msg;
	struct dkim_signature_result *results;
	unsigned int count;
	struct dkim_sig **sigs; /* [count], NULL when no lookup is made */
	unsigned int pending;
	struct dkim_bodies bodies;
	dkim_verify_callback_t *cb;
	void *context;
};

const char *dkim_result_name(enum dkim_result r)
{
	/* RFC 8601 2.7.1 */
	switch (r) {
	case DKIM_NONE:
		return "none";
	case DKIM_PASS:
		return "pass";
	case DKIM_FAIL:
		return "fail";
	case DKIM_POLICY:
		return "policy";
	case DKIM_NEUTRAL:
		return "neutral";
	case DKIM_TEMPERROR:
		return "temperror";
	case DKIM_PERMERROR:
		return "permerror";
	}
	return "permerror";
}

static int sig_perm(struct dkim_sig *sig, const char *reason)
{
	sig->res->result = DKIM_PERMERROR;
	sig->res->reason = reason;
	return -1;
}

static bool is_decimal(struct span s)
{
	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
	}
	return true;
}

/* A decimal that may exceed 64 bits (RFC 6376 allows up to 76 digits for
   l=, 12 for t= and x=): saturates at UINT64_MAX. */
int dkim_decimal_parse(struct span s, uint64_t *num_r)
{
	if (!is_decimal(s))
		return -1;
	if (span_to_u64(s, UINT64_MAX, num_r) < 0)
		*num_r = UINT64_MAX;
	return 0;
}

int dkim_canon_parse(struct span s, enum dkim_canon *h_r, enum dkim_canon *b_r,
		     const char **error_r)
{
	struct span head, tail;
	bool slash = span_split(s, '/', &head, &tail);

	/* RFC 6376 3.5 c=: default simple/simple, body default simple */
	*h_r = *b_r = DKIM_CANON_SIMPLE;
	*error_r = "unknown canonicalization";
	if (span_eq(head, SPAN_LIT("relaxed")))
		*h_r = DKIM_CANON_RELAXED;
	else if (!span_eq(head, SPAN_LIT("simple")))
		return -1;
	if (!slash)
		return 0;
	if (span_eq(tail, SPAN_LIT("relaxed")))
		*b_r = DKIM_CANON_RELAXED;
	else if (!span_eq(tail, SPAN_LIT("simple")))
		return -1;
	return 0;
}

int dkim_algorithm_parse(struct span a, enum dkim_key_type *type_r,
			 const char **error_r)
{
	if (span_eq(a, SPAN_LIT("rsa-sha256")))
		*type_r = DKIM_KEY_RSA;
	else if (span_eq(a, SPAN_LIT("ed25519-sha256"))) /* RFC 8463 3 */
		*type_r = DKIM_KEY_ED25519;
	else if (span_eq(a, SPAN_LIT("rsa-sha1"))) { /* RFC 8301 3.1 */
		*error_r = "rsa-sha1 not accepted";
		return -1;
	} else {
		*error_r = "unknown algorithm";
		return -1;
	}
	return 0;
}

static bool valid_domain(struct span d)
{
	if (d.len == 0 || d.len > 253)
		return false;
	for (size_t i = 0; i < d.len; i++) {
		uint8_t c = d.p[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		      c == '_'))
			return false;
	}
	return true;
}

struct span dkim_strip_fws(pool_t pool, struct span s)
{
	uint8_t *p = p_malloc(pool, s.len + 1);
	size_t n = 0;

	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] != ' ' && s.p[i] != '\t' && s.p[i] != '\r' &&
		    s.p[i] != '\n')
			p[n++] = s.p[i];
	}
	return span_make(p, n);
}

int dkim_h_parse(pool_t pool, struct span h, struct span *names,
		 unsigned int *count_r, const char **error_r)
{
	struct span rest = dkim_strip_fws(pool, h), name;

	/* RFC 6376 3.5 h=: colon-separated field names */
	*count_r = 0;
	for (;;) {
		bool more = span_split(rest, ':', &name, &rest);

		if (name.len == 0) {
			*error_r = "empty name in h=";
			return -1;
		}
		if (*count_r == DKIM_H_MAX) {
			*error_r = "h= too long";
			return -1;
		}
		names[(*count_r)++] = name;
		if (!more)
			return 0;
	}
}

int dkim_body_hash(const struct buf *canon_body, bool has_l, uint64_t l,
		   uint8_t hash_r[32], bool *covered_all_r,
		   const char **error_r)
{
	size_t hashed = canon_body->used;

	if (has_l) {
		if (l > canon_body->used) {
			*error_r = "l= beyond the body";
			return -1;
		}
		hashed = (size_t)l;
	}
	*covered_all_r = hashed == canon_body->used;
	if (EVP_Digest(canon_body->data == NULL ? (const uint8_t *)""
						: canon_body->data,
		       hashed, hash_r, NULL, EVP_sha256(), NULL) != 1)
		i_panic("dkim: SHA-256 failed");
	return 0;
}

int dkim_header_digest(pool_t pool, const struct dkim_message *m,
		       enum dkim_canon canon, const struct span *names,
		       unsigned int count, const struct dkim_field *field,
		       uint8_t digest_r[32])
{
	struct span nob;
	EVP_MD_CTX *md;

	if (dkim_field_strip_b(pool, field->raw, &nob) < 0)
		return -1;
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		i_panic("dkim: SHA-256 failed");
	dkim_hash_fields(md, canon, m, names, count, field);
	/* RFC 6376 3.7: the signature field itself, b= empty, no CRLF */
	dkim_hash_field(md, canon, nob);
	if (EVP_DigestFinal_ex(md, digest_r, NULL) != 1)
		i_panic("dkim: SHA-256 failed");
	EVP_MD_CTX_free(md);
	return 0;
}

/* RFC 6376 6.1.1: parse and validate one DKIM-Signature. Returns 0 when
   its key must be fetched, -1 with sig->res filled otherwise. */
static int sig_parse(struct dkim_sig *sig, int64_t now)
{
	pool_t pool = sig->v->pool;
	struct dkim_signature_result *res = sig->res;
	struct dkim_tag_list tags;
	const struct span *v, *a, *b, *bh, *c, *d, *h, *i, *l, *q, *s, *t, *x;
	ssize_t colon = span_find_byte(sig->field->raw, ':');
	const char *error;
	uint64_t tnum = 0, xnum;

	res->domain = res->selector = "";
	if (dkim_tag_list_parse(span_skip(sig->field->raw, (size_t)colon + 1),
				&tags, &error) < 0)
		return sig_perm(sig, error);
	v = dkim_tag_find(&tags, "v");
	a = dkim_tag_find(&tags, "a");
	b = dkim_tag_find(&tags, "b");
	bh = dkim_tag_find(&tags, "bh");
	c = dkim_tag_find(&tags, "c");
	d = dkim_tag_find(&tags, "d");
	h = dkim_tag_find(&tags, "h");
	i = dkim_tag_find(&tags, "i");
	l = dkim_tag_find(&tags, "l");
	q = dkim_tag_find(&tags, "q");
	s = dkim_tag_find(&tags, "s");
	t = dkim_tag_find(&tags, "t");
	x = dkim_tag_find(&tags, "x");

	if (d != NULL) {
		char *dl = p_strndup(pool, d->p, d->len);

		for (char *p = dl; *p != '\0'; p++) {
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p + 32);
		}
		res->domain = dl;
	}
	if (s != NULL)
		res->selector = p_strndup(pool, s->p, s->len);
	if (a != NULL)
		res->algorithm = p_strndup(pool, a->p, a->len);
	if (b != NULL) {
		struct span bs = dkim_strip_fws(pool, *b);
		size_t n = bs.len < 8 ? bs.len : 8;

		memcpy(res->b_prefix, bs.p, n);
		res->b_prefix[n] = '\0';
	}
	if (i != NULL)
		res->identity = p_strndup(pool, i->p, i->len);
	else if (d != NULL)
		res->identity = p_strdup_printf(pool, "@%s", res->domain);

	/* RFC 6376 6.1.1: v=1 and every required tag */
	if (v == NULL || !span_eq(*v, SPAN_LIT("1")))
		return sig_perm(sig, "bad or missing v=");
	if (a == NULL || b == NULL || bh == NULL || d == NULL || h == NULL ||
	    s == NULL)
		return sig_perm(sig, "missing required tag");
	if (dkim_algorithm_parse(*a, &sig->ktype, &error) < 0)
		return sig_perm(sig, error);
	if (c == NULL)
		sig->hcanon = sig->bcanon = DKIM_CANON_SIMPLE;
	else if (dkim_canon_parse(*c, &sig->hcanon, &sig->bcanon, &error) < 0)
		return sig_perm(sig, error);
	if (!valid_domain(*d) || s->len == 0 || !valid_domain(*s))
		return sig_perm(sig, "bad d= or s=");
	sig->d = *d;
	/* RFC 6376 5.4: From is required */
	bool from = false;
	if (dkim_h_parse(pool, *h, sig->h, &sig->h_count, &error) < 0)
		return sig_perm(sig, error);
	for (unsigned int k = 0; k < sig->h_count; k++) {
		if (span_eq_ci(sig->h[k], SPAN_LIT("from")))
			from = true;
	}
	if (!from)
		return sig_perm(sig, "From not signed");
	/* RFC 6376 6.1.1: i= must be d= or a subdomain of it */
	if (i != NULL) {
		ssize_t at = -1;

		for (size_t k = 0; k < i->len; k++) {
			if (i->p[k] == '@')
				at = (ssize_t)k;
		}
		if (at < 0)
			return sig_perm(sig, "bad i=");
		sig->i_domain = span_skip(*i, (size_t)at + 1);
		if (!dkim_domain_within(sig->i_domain, *d))
			return sig_perm(sig, "i= not within d=");
	} else {
		sig->i_domain = *d;
	}
	if (q != NULL &&
	    !dkim_colon_list_has(dkim_strip_fws(pool, *q), SPAN_LIT("dns/txt")))
		return sig_perm(sig, "no usable q= method");
	if (l != NULL) {
		if (dkim_decimal_parse(*l, &sig->l) < 0)
			return sig_perm(sig, "bad l=");
		sig->has_l = true;
	}
	if (t != NULL && dkim_decimal_parse(*t, &tnum) < 0)
		return sig_perm(sig, "bad t=");
	if (x != NULL) {
		if (dkim_decimal_parse(*x, &xnum) < 0)
			return sig_perm(sig, "bad x=");
		/* RFC 6376 3.5 x=: later than t= */
		if (t != NULL && xnum < tnum)
			return sig_perm(sig, "x= before t=");
		if (xnum < (uint64_t)now)
			return sig_perm(sig, "signature expired");
	}
	if (dkim_base64_decode(*bh, sig->bh, sizeof(sig->bh)) != 32)
		return sig_perm(sig, "bad bh=");
	ssize_t blen = dkim_base64_decode(*b, sig->b, sizeof(sig->b));
	if (blen <= 0)
		return sig_perm(sig, "bad b=");
	sig->b_len = (size_t)blen;
	return 0;
}

/* RFC 6376 6.1.3: body hash, then the header hash and the signature. */
static void sig_check(struct dkim_sig *sig, const struct dkim_key *key)
{
	struct dkim_signature_result *res = sig->res;
	const struct buf *body =
		dkim_bodies_get(&sig->v->bodies, sig->bcanon, sig->v->msg.body);
	uint8_t digest[32];
	bool covered_all;

	res->result = DKIM_FAIL;
	if (dkim_body_hash(body, sig->has_l, sig->l, digest, &covered_all,
			   &res->reason) < 0)
		return;
	if (!mem_equals_ct(digest, sig->bh, 32)) {
		res->reason = "body hash mismatch";
		return;
	}
	if (dkim_header_digest(sig->v->pool, &sig->v->msg, sig->hcanon, sig->h,
			       sig->h_count, sig->field, digest) < 0)
		i_unreached(); /* sig_parse() found b= */
	if (!dkim_verify_digest(key->pkey, key->type, digest, sig->b,
				sig->b_len)) {
		res->reason = "signature mismatch";
		return;
	}
	if (!covered_all) {
		/* dkim.h policy (RFC 6376 8.2): never pass with l= short */
		res->result = DKIM_POLICY;
		res->reason = "unsigned content after l=";
		return;
	}
	res->result = DKIM_PASS;
	res->reason = NULL;
}

static void sig_key(struct dkim_sig *sig, const struct dns_txt_result *r)
{
	struct dkim_signature_result *res = sig->res;
	struct dkim_key key;
	const char *error = "no key";

	res->result = DKIM_PERMERROR;
	switch (r->info.status) {
	case DNS_STATUS_OK:
		break;
	case DNS_STATUS_NXDOMAIN:
	case DNS_STATUS_NODATA:
		res->reason = "no key";
		return;
	case DNS_STATUS_INVALID_NAME:
		res->reason = "invalid key name";
		return;
	case DNS_STATUS_TEMPFAIL:
	default:
		res->result = DKIM_TEMPERROR;
		res->reason = "key lookup failed";
		return;
	}
	/* RFC 6376 3.6.2.2: several records are ambiguous; the first that
	   parses is used. */
	unsigned int n;
	for (n = 0; n < r->count; n++) {
		if (dkim_key_parse(span_make(r->txt[n].text, r->txt[n].len),
				   &key, &error) == 0)
			break;
	}
	if (n == r->count) {
		res->reason = error;
		return;
	}
	res->testing = key.testing;
	if (key.revoked)
		res->reason = "key revoked";
	else if (key.type != sig->ktype)
		res->reason = "key type does not match a=";
	else if (key.type == DKIM_KEY_RSA && key.bits < DKIM_RSA_MIN_BITS)
		res->reason = "rsa key below 1024 bits"; /* RFC 8301 3.2 */
	else if (key.strict && !span_eq_ci(sig->i_domain, sig->d))
		res->reason = "key t=s and i= below d=";
	else
		sig_check(sig, &key);
	EVP_PKEY_free(key.pkey);
}

static void verify_finish(struct dkim_verify *v)
{
	struct dkim_verify_result result = {
		.sigs = v->results,
		.count = v->count,
	};

	v->cb(v->context, &result);
}

static void verify_free(struct dkim_verify *v)
{
	dkim_bodies_free(&v->bodies);
	pool_unref(&v->pool);
}

static void sig_dns_cb(void *context, const struct dns_txt_result *r)
{
	struct dkim_sig *sig = context;
	struct dkim_verify *v = sig->v;

	sig->lookup = NULL;
	sig_key(sig, r);
	i_assert(v->pending > 0);
	if (--v->pending > 0)
		return;
	verify_finish(v);
	verify_free(v);
}

struct dkim_verify *dkim_verify_start(struct auth_dns *dns, const uint8_t *msg,
				      size_t len, unsigned int max_signatures,
				      dkim_verify_callback_t *cb, void *context)
{
	pool_t pool = pool_create("dkim verify", 4096);
	struct dkim_verify *v = p_new(pool, struct dkim_verify, 1);
	int64_t now = (int64_t)time(NULL);
	unsigned int n = 0;

	v->pool = pool;
	v->dns = dns;
	v->cb = cb;
	v->context = context;
	if (max_signatures == 0)
		max_signatures = DKIM_DEFAULT_MAX_SIGNATURES;
	dkim_message_parse(pool, msg, len, &v->msg);
	for (unsigned int i = 0; i < v->msg.field_count; i++) {
		if (span_eq_ci(v->msg.fields[i].name,
			       SPAN_LIT("DKIM-Signature")))
			v->count++;
	}
	v->results = p_new(pool, struct dkim_signature_result, v->count + 1);
	v->sigs = p_new(pool, struct dkim_sig *, v->count + 1);
	for (unsigned int i = 0; i < v->msg.field_count; i++) {
		const struct dkim_field *f = &v->msg.fields[i];
		struct dkim_signature_result *res;
		struct dkim_sig *sig;

		if (!span_eq_ci(f->name, SPAN_LIT("DKIM-Signature")))
			continue;
		res = &v->results[n];
		sig = p_new(pool, struct dkim_sig, 1);
		sig->v = v;
		sig->res = res;
		sig->field = f;
		if (sig_parse(sig, now) == 0) {
			if (n >= max_signatures) {
				sig_perm(sig, "too many signatures");
			} else {
				v->sigs[n] = sig;
				v->pending++;
			}
		}
		n++;
	}
	if (v->pending == 0) {
		verify_finish(v);
		verify_free(v);
		return NULL;
	}
	/* Every lookup is started before any callback can run (auth_dns
	   never calls back from within the starting call). */
	for (unsigned int i = 0; i < v->count; i++) {
		struct dkim_sig *sig = v->sigs[i];

		if (sig == NULL)
			continue;
		const char *name =
			p_strdup_printf(pool, "%s._domainkey.%s",
					sig->res->selector, sig->res->domain);
		sig->lookup = dns->txt(dns, name, sig_dns_cb, sig);
	}
	return v;
}

void dkim_verify_cancel(struct dkim_verify **_v)
{
	struct dkim_verify *v = *_v;

	if (v == NULL)
		return;
	*_v = NULL;
	for (unsigned int i = 0; i < v->count; i++) {
		if (v->sigs[i] != NULL && v->sigs[i]->lookup != NULL)
			v->dns->cancel(v->dns, &v->sigs[i]->lookup);
	}
	verify_free(v);
}
