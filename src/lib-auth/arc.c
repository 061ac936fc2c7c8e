/* arc.c - ARC (RFC 8617): validation of the chain of a received message
   (5.2) and sealing in three steps (5.1) on DKIM's canonicalization,
   hashing and key records (dkim-private.h). Owns struct arc_verify and
   the seal state (in the caller's pool). I/O-free: keys come through
   struct auth_dns; every failure, DNS ones included, is a chain failure
   (5.2.1). */

#include "arc.h"
#include "dkim-private.h"

#define ARC_INSTANCES_MAX 50 /* RFC 8617 4.2.1 */

enum arc_kind {
	ARC_AAR,
	ARC_AMS,
	ARC_AS,
};

static const char *const arc_field_names[] = {
	[ARC_AAR] = "ARC-Authentication-Results",
	[ARC_AMS] = "ARC-Message-Signature",
	[ARC_AS] = "ARC-Seal",
};

struct arc_set {
	const struct dkim_field *f[3]; /* by enum arc_kind */
};

struct arc_chain_fields {
	struct arc_set sets[ARC_INSTANCES_MAX + 1]; /* [1..n] */
	unsigned int n; /* the highest instance */
	const char *error; /* structurally broken: why */
	bool newest_cv_fail; /* RFC 8617 5.2 step 2 */
};

/* RFC 8617 4.2.1: the instance of an AAR ("i=N;" before the payload). */
static int aar_instance(struct span value, uint64_t *i_r)
{
	size_t p = 0, start;

	while (p < value.len && strchr(" \t\r\n", value.p[p]) != NULL)
		p++;
	if (p >= value.len || value.p[p] != 'i')
		return -1;
	p++;
	while (p < value.len && strchr(" \t\r\n", value.p[p]) != NULL)
		p++;
	if (p >= value.len || value.p[p] != '=')
		return -1;
	p++;
	while (p < value.len && strchr(" \t\r\n", value.p[p]) != NULL)
		p++;
	start = p;
	while (p < value.len && value.p[p] >= '0' && value.p[p] <= '9')
		p++;
	if (dkim_decimal_parse(span_make(value.p + start, p - start), i_r) < 0)
		return -1;
	while (p < value.len && strchr(" \t\r\n", value.p[p]) != NULL)
		p++;
	return p < value.len && value.p[p] == ';' ? 0 : -1;
}

static struct span field_value(const struct dkim_field *f)
{
	ssize_t colon = span_find_byte(f->raw, ':');

	return span_skip(f->raw, (size_t)colon + 1);
}

static int field_instance(const struct dkim_field *f, enum arc_kind kind,
			  uint64_t *i_r)
{
	struct dkim_tag_list tags;
	const struct span *i;
	const char *error;

	if (kind == ARC_AAR)
		return aar_instance(field_value(f), i_r);
	if (dkim_tag_list_parse(field_value(f), &tags, &error) < 0)
		return -1;
	i = dkim_tag_find(&tags, "i");
	if (i == NULL)
		return -1;
	return dkim_decimal_parse(*i, i_r);
}

/* RFC 8617 5.2 steps 1-3: collects the sets and checks the structure. */
static void chain_collect(const struct dkim_message *m,
			  struct arc_chain_fields *c)
{
	memset(c, 0, sizeof(*c));
	for (unsigned int k = 0; k < m->field_count; k++) {
		const struct dkim_field *f = &m->fields[k];
		uint64_t i;
		int kind = -1;

		for (int j = 0; j < 3; j++) {
			if (span_eq_ci(f->name,
				       span_from_cstr(arc_field_names[j])))
				kind = j;
		}
		if (kind < 0)
			continue;
		if (field_instance(f, (enum arc_kind)kind, &i) < 0) {
			c->error = "ARC field without a valid instance";
			c->n = c->n == 0 ? 1 : c->n;
			continue;
		}
		if (i < 1 || i > ARC_INSTANCES_MAX) {
			c->error = "ARC instance out of range";
			c->n = ARC_INSTANCES_MAX;
			continue;
		}
		if (c->sets[i].f[kind] != NULL)
			c->error = "duplicate ARC field";
		else
			c->sets[i].f[kind] = f;
		if (i > c->n)
			c->n = (unsigned int)i;
	}
	if (c->n == 0)
		return;
	/* step 2: the newest seal says cv=fail */
	const struct dkim_field *as = c->sets[c->n].f[ARC_AS];
	struct dkim_tag_list tags;
	const char *error;
	if (as != NULL &&
	    dkim_tag_list_parse(field_value(as), &tags, &error) == 0) {
		const struct span *cv = dkim_tag_find(&tags, "cv");

		if (cv != NULL && span_eq_ci(*cv, SPAN_LIT("fail")))
			c->newest_cv_fail = true;
	}
	if (c->error != NULL)
		return;
	/* step 3: every set complete, 1..N, cv= none at 1 and pass above */
	for (unsigned int i = 1; i <= c->n; i++) {
		const struct arc_set *set = &c->sets[i];

		if (set->f[ARC_AAR] == NULL || set->f[ARC_AMS] == NULL ||
		    set->f[ARC_AS] == NULL) {
			c->error = "incomplete ARC set";
			return;
		}
		if (dkim_tag_list_parse(field_value(set->f[ARC_AS]), &tags,
					&error) < 0) {
			c->error = error;
			return;
		}
		const struct span *cv = dkim_tag_find(&tags, "cv");
		if (cv == NULL || !span_eq_ci(*cv, i == 1 ? SPAN_LIT("none")
							  : SPAN_LIT("pass"))) {
			c->error = "bad cv= in ARC-Seal";
			return;
		}
		/* RFC 8617 4.1.3: h= in an AS fails the chain */
		if (dkim_tag_find(&tags, "h") != NULL) {
			c->error = "h= in ARC-Seal";
			return;
		}
	}
}

const char *arc_chain_name(enum arc_chain cv)
{
	switch (cv) {
	case ARC_CHAIN_NONE:
		return "none";
	case ARC_CHAIN_PASS:
		return "pass";
	case ARC_CHAIN_FAIL:
		return "fail";
	}
	return "fail";
}

/* One signature (AMS or AS) to check, with what its key lookup gave. */
struct arc_sig {
	struct arc_verify *v;
	const struct dkim_field *field;
	enum arc_kind kind;
	unsigned int instance;
	struct dkim_tag_list tags;
	enum dkim_key_type ktype;
	const char *error; /* parse or key failure */
	struct dkim_key key;
	bool key_done;
	struct dns_lookup *lookup;
	const char *domain;
};

struct arc_verify {
	pool_t pool;
	struct auth_dns *dns;
	struct dkim_message msg;
	struct arc_chain_fields chain;
	struct arc_sig ams[ARC_INSTANCES_MAX + 1], as[ARC_INSTANCES_MAX + 1];
	unsigned int pending;
	struct dkim_bodies bodies;
	arc_verify_callback_t *cb;
	void *context;
};

static void verify_evaluate(struct arc_verify *v);

/* Parses the tags of an AMS / AS that its key needs. */
static int sig_parse(struct arc_sig *sig)
{
	const struct span *a, *d, *s, *b;

	if (dkim_tag_list_parse(field_value(sig->field), &sig->tags,
				&sig->error) < 0)
		return -1;
	a = dkim_tag_find(&sig->tags, "a");
	d = dkim_tag_find(&sig->tags, "d");
	s = dkim_tag_find(&sig->tags, "s");
	b = dkim_tag_find(&sig->tags, "b");
	if (a == NULL || d == NULL || s == NULL || b == NULL || d->len == 0 ||
	    s->len == 0) {
		sig->error = "missing tag";
		return -1;
	}
	if (dkim_algorithm_parse(*a, &sig->ktype, &sig->error) < 0)
		return -1;
	sig->domain = p_strndup(sig->v->pool, d->p, d->len);
	return 0;
}

static void sig_key_cb(void *context, const struct dns_txt_result *r)
{
	struct arc_sig *sig = context;
	struct arc_verify *v = sig->v;
	const char *error = "no key";
	unsigned int n = 0;

	sig->lookup = NULL;
	sig->key_done = true;
	/* RFC 8617 5.2.1: every DNS failure is permanent */
	if (r->info.status != DNS_STATUS_OK)
		sig->error = r->info.status == DNS_STATUS_TEMPFAIL
				     ? "key lookup failed"
				     : "no key";
	else {
		for (n = 0; n < r->count; n++) {
			if (dkim_key_parse(
				    span_make(r->txt[n].text, r->txt[n].len),
				    &sig->key, &error) == 0)
				break;
		}
		if (n == r->count)
			sig->error = error;
		else if (sig->key.revoked)
			sig->error = "key revoked";
		else if (sig->key.type != sig->ktype)
			sig->error = "key type does not match a=";
		else if (sig->key.type == DKIM_KEY_RSA && sig->key.bits < 1024)
			sig->error = "rsa key below 1024 bits";
	}
	i_assert(v->pending > 0);
	if (--v->pending == 0)
		verify_evaluate(v);
}

static int sig_b(const struct arc_sig *sig, uint8_t *b, size_t *len_r)
{
	const struct span *bs = dkim_tag_find(&sig->tags, "b");
	ssize_t len = dkim_base64_decode(*bs, b, DKIM_SIG_MAX);

	if (len <= 0)
		return -1;
	*len_r = (size_t)len;
	return 0;
}

/* RFC 8617 4.1.2: an AMS is checked as a DKIM-Signature. */
static bool ams_check(struct arc_verify *v, struct arc_sig *sig)
{
	const struct span *c, *h, *bh, *l;
	enum dkim_canon hc = DKIM_CANON_SIMPLE, bc = DKIM_CANON_SIMPLE;
	struct span names[DKIM_H_MAX];
	unsigned int count;
	uint8_t hash[32], want[32], b[DKIM_SIG_MAX];
	size_t b_len;
	uint64_t lnum = 0;
	bool covered_all;

	if (sig->error != NULL)
		return false;
	c = dkim_tag_find(&sig->tags, "c");
	h = dkim_tag_find(&sig->tags, "h");
	bh = dkim_tag_find(&sig->tags, "bh");
	l = dkim_tag_find(&sig->tags, "l");
	if (h == NULL || bh == NULL ||
	    (c != NULL && dkim_canon_parse(*c, &hc, &bc, &sig->error) < 0) ||
	    dkim_h_parse(v->pool, *h, names, &count, &sig->error) < 0 ||
	    (l != NULL && dkim_decimal_parse(*l, &lnum) < 0) ||
	    dkim_base64_decode(*bh, want, sizeof(want)) != 32 ||
	    sig_b(sig, b, &b_len) < 0) {
		if (sig->error == NULL)
			sig->error = "bad AMS";
		return false;
	}
	for (unsigned int i = 0; i < count; i++) {
		/* RFC 8617 4.1.2: ARC fields are never covered */
		if (span_eq_ci(names[i], SPAN_LIT("ARC-Seal"))) {
			sig->error = "AMS covers ARC-Seal";
			return false;
		}
	}
	if (dkim_body_hash(dkim_bodies_get(&v->bodies, bc, v->msg.body),
			   l != NULL, lnum, hash, &covered_all,
			   &sig->error) < 0)
		return false;
	if (!covered_all || !mem_equals_ct(hash, want, 32)) {
		sig->error = "AMS body hash mismatch";
		return false;
	}
	if (dkim_header_digest(v->pool, &v->msg, hc, names, count, sig->field,
			       hash) < 0 ||
	    !dkim_verify_digest(sig->key.pkey, sig->key.type, hash, b, b_len)) {
		sig->error = "AMS signature mismatch";
		return false;
	}
	return true;
}

/* RFC 8617 5.1.1: the AS digest of instance n: the sets 1..n in order,
   each AAR, AMS, AS relaxed, the last AS with b= empty and no CRLF. */
static int as_digest(pool_t pool, const struct arc_set *sets,
		     unsigned int first, unsigned int n, uint8_t digest_r[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct span nob;

	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		i_panic("arc: SHA-256 failed");
	for (unsigned int i = first; i <= n; i++) {
		for (int k = ARC_AAR; k <= ARC_AS; k++) {
			struct span raw = sets[i].f[k]->raw;

			if (i == n && k == ARC_AS) {
				if (dkim_field_strip_b(pool, raw, &nob) < 0) {
					EVP_MD_CTX_free(md);
					return -1;
				}
				dkim_hash_field(md, DKIM_CANON_RELAXED, nob);
				break;
			}
			dkim_hash_field(md, DKIM_CANON_RELAXED, raw);
			EVP_DigestUpdate(md, "\r\n", 2);
		}
	}
	if (EVP_DigestFinal_ex(md, digest_r, NULL) != 1)
		i_panic("arc: SHA-256 failed");
	EVP_MD_CTX_free(md);
	return 0;
}

static bool as_check(struct arc_verify *v, struct arc_sig *sig)
{
	uint8_t digest[32], b[DKIM_SIG_MAX];
	size_t b_len;

	if (sig->error != NULL)
		return false;
	if (sig_b(sig, b, &b_len) < 0 ||
	    as_digest(v->pool, v->chain.sets, 1, sig->instance, digest) < 0 ||
	    !dkim_verify_digest(sig->key.pkey, sig->key.type, digest, b,
				b_len)) {
		sig->error = "AS signature mismatch";
		return false;
	}
	return true;
}

static void verify_free(struct arc_verify *v)
{
	for (unsigned int i = 1; i <= ARC_INSTANCES_MAX; i++) {
		EVP_PKEY_free(v->ams[i].key.pkey);
		EVP_PKEY_free(v->as[i].key.pkey);
	}
	dkim_bodies_free(&v->bodies);
	pool_unref(&v->pool);
}

static void verify_report(struct arc_verify *v, enum arc_chain cv,
			  const char *reason, unsigned int oldest_pass)
{
	struct arc_verify_result res = {
		.cv = cv,
		.instances = v->chain.n,
		.reason = cv == ARC_CHAIN_FAIL ? reason : NULL,
		.oldest_pass = oldest_pass,
	};

	if (v->chain.n > 0 && v->chain.n <= ARC_INSTANCES_MAX)
		res.last_domain = v->ams[v->chain.n].domain;
	v->cb(v->context, &res);
	verify_free(v);
}

static void verify_evaluate(struct arc_verify *v)
{
	unsigned int n = v->chain.n, oldest = 0;

	/* RFC 8617 5.2 step 4: the newest AMS */
	if (!ams_check(v, &v->ams[n])) {
		verify_report(v, ARC_CHAIN_FAIL,
			      p_strdup_printf(v->pool, "AMS %u: %s", n,
					      v->ams[n].error),
			      0);
		return;
	}
	/* step 5: oldest-pass */
	for (unsigned int i = n - 1; i >= 1; i--) {
		if (!ams_check(v, &v->ams[i])) {
			oldest = i + 1;
			break;
		}
	}
	/* step 6: every AS, newest first */
	for (unsigned int i = n; i >= 1; i--) {
		if (!as_check(v, &v->as[i])) {
			verify_report(v, ARC_CHAIN_FAIL,
				      p_strdup_printf(v->pool, "AS %u: %s", i,
						      v->as[i].error),
				      0);
			return;
		}
	}
	verify_report(v, ARC_CHAIN_PASS, NULL, oldest);
}

struct arc_verify *arc_verify_start(struct auth_dns *dns, const uint8_t *msg,
				    size_t len, arc_verify_callback_t *cb,
				    void *context)
{
	pool_t pool = pool_create("arc verify", 4096);
	struct arc_verify *v = p_new(pool, struct arc_verify, 1);
	unsigned int n;

	v->pool = pool;
	v->dns = dns;
	v->cb = cb;
	v->context = context;
	dkim_message_parse(pool, msg, len, &v->msg);
	chain_collect(&v->msg, &v->chain);
	n = v->chain.n;
	if (n == 0) {
		verify_report(v, ARC_CHAIN_NONE, NULL, 0);
		return NULL;
	}
	if (v->chain.newest_cv_fail) {
		verify_report(v, ARC_CHAIN_FAIL, "newest ARC-Seal has cv=fail",
			      0);
		return NULL;
	}
	if (v->chain.error != NULL) {
		verify_report(v, ARC_CHAIN_FAIL, v->chain.error, 0);
		return NULL;
	}
	for (unsigned int i = 1; i <= n; i++) {
		struct arc_sig *sigs[2] = { &v->ams[i], &v->as[i] };

		for (unsigned int k = 0; k < 2; k++) {
			struct arc_sig *sig = sigs[k];

			sig->v = v;
			sig->instance = i;
			sig->kind = k == 0 ? ARC_AMS : ARC_AS;
			sig->field = v->chain.sets[i].f[sig->kind];
			if (sig_parse(sig) < 0 && i == n) {
				/* the newest set decides at once */
				verify_report(
					v, ARC_CHAIN_FAIL,
					p_strdup_printf(pool, "%s %u: %s",
							k == 0 ? "AMS" : "AS",
							i, sig->error),
					0);
				return NULL;
			}
			if (sig->error == NULL)
				v->pending++;
		}
	}
	if (v->pending == 0) {
		verify_evaluate(v);
		return NULL;
	}
	for (unsigned int i = 1; i <= n; i++) {
		struct arc_sig *sigs[2] = { &v->ams[i], &v->as[i] };

		for (unsigned int k = 0; k < 2; k++) {
			const struct span *s;

			if (sigs[k]->error != NULL)
				continue;
			s = dkim_tag_find(&sigs[k]->tags, "s");
			sigs[k]->lookup = dns->txt(
				dns,
				p_strdup_printf(pool, "%.*s._domainkey.%s",
						(int)s->len, (const char *)s->p,
						sigs[k]->domain),
				sig_key_cb, sigs[k]);
		}
	}
	return v;
}

void arc_verify_cancel(struct arc_verify **_v)
{
	struct arc_verify *v = *_v;

	if (v == NULL)
		return;
	*_v = NULL;
	for (unsigned int i = 1; i <= v->chain.n; i++) {
		if (v->ams[i].lookup != NULL)
			v->dns->cancel(v->dns, &v->ams[i].lookup);
		if (v->as[i].lookup != NULL)
			v->dns->cancel(v->dns, &v->as[i].lookup);
	}
	verify_free(v);
}

/* Sealing */

struct arc_seal_state {
	pool_t pool;
	struct dkim_message msg;
	struct arc_chain_fields chain;
	struct arc_seal_params params;
	unsigned int instance;
	enum arc_chain cv;
	const char *aar; /* the new AAR, without CRLF */
	struct dkim_sign_request ams_req;
	const char *ams; /* the new AMS, signed, without CRLF */
	const char *as_nob; /* the new AS with b= empty */
};

/* RFC 8617 4.1.1: "ARC-Authentication-Results: i=N; id; results",
   folded before a resinfo when long. */
static const char *aar_build(pool_t pool, unsigned int instance,
			     const struct arc_seal_params *params)
{
	struct buf b = BUF_INIT;
	struct span rest = span_from_cstr(params->results), item;
	size_t col;
	const char *out;

	buf_printf(&b, "ARC-Authentication-Results: i=%u;", instance);
	col = b.used;
	dkim_fold_append(&b, &col,
			 span_from_cstr(p_strdup_printf(pool, " %s;",
							params->authserv_id)),
			 false);
	for (;;) {
		bool more = span_split(rest, ';', &item, &rest);

		item = span_trim(item);
		dkim_fold_append(
			&b, &col,
			span_from_cstr(p_strdup_printf(
				pool, " %.*s%s", (int)item.len,
				(const char *)item.p, more ? ";" : "")),
			false);
		if (!more)
			break;
	}
	out = p_strndup(pool, b.data, b.used);
	buf_free(&b);
	return out;
}

int arc_seal_prepare_ams(pool_t pool, const uint8_t *msg, size_t len,
			 const struct arc_seal_params *params,
			 struct arc_seal_request *req_r, const char **error_r)
{
	struct arc_seal_state *st = p_new(pool, struct arc_seal_state, 1);
	const char *head;

	memset(req_r, 0, sizeof(*req_r));
	st->pool = pool;
	st->params = *params;
	dkim_message_parse(pool, msg, len, &st->msg);
	if (dkim_message_check_prepend(&st->msg, error_r) < 0)
		return -1;
	if (params->authserv_id == NULL || params->results == NULL ||
	    params->authserv_id[0] == '\0' ||
	    strpbrk(params->authserv_id, "; \t\r\n") != NULL ||
	    strpbrk(params->results, "\r\n") != NULL) {
		*error_r = "bad authserv-id or results";
		return -1;
	}
	chain_collect(&st->msg, &st->chain);
	/* RFC 8617 5.1 step 2 */
	if (st->chain.newest_cv_fail) {
		*error_r = "the chain already failed (cv=fail)";
		return 0;
	}
	if (st->chain.n >= ARC_INSTANCES_MAX) {
		*error_r = "the chain already has 50 sets";
		return -1;
	}
	st->instance = st->chain.n + 1;
	/* RFC 8617 5.2 step 3.C: cv=none at 1; above, what validation said */
	st->cv = st->instance == 1 ? ARC_CHAIN_NONE : params->cv;
	if (st->instance > 1 && st->cv == ARC_CHAIN_NONE) {
		*error_r = "cv=none for a message with a chain";
		return -1;
	}
	if (st->cv == ARC_CHAIN_PASS && st->chain.error != NULL) {
		*error_r = st->chain.error;
		return -1;
	}
	st->aar = aar_build(pool, st->instance, params);
	head = p_strdup_printf(pool, "ARC-Message-Signature: i=%u;",
			       st->instance);
	struct dkim_sign_params dp = {
		.domain = params->domain,
		.selector = params->selector,
		.algorithm = params->algorithm,
		.timestamp = params->timestamp,
	};
	if (dkim_sign_build(pool, &st->msg, head, true, &dp, &st->ams_req,
			    error_r) < 0)
		return -1;
	memcpy(req_r->digest, st->ams_req.digest, sizeof(req_r->digest));
	req_r->state = st;
	return 1;
}

static const char *strip_crlf(pool_t pool, const char *field)
{
	size_t len = strlen(field);

	if (len >= 2 && field[len - 2] == '\r' && field[len - 1] == '\n')
		len -= 2;
	return p_strndup(pool, field, len);
}

int arc_seal_prepare_as(struct arc_seal_request *req, const uint8_t *sig,
			size_t sig_len, const char **error_r)
{
	struct arc_seal_state *st = req->state;
	pool_t pool = st->pool;
	struct dkim_field fields[3];
	struct arc_set sets[ARC_INSTANCES_MAX + 1];
	struct buf as = BUF_INIT;
	unsigned int first;
	size_t col;

	if (sig_len == 0 || sig_len > DKIM_SIG_MAX) {
		*error_r = "bad AMS signature size";
		return -1;
	}
	st->ams = strip_crlf(
		pool, dkim_sign_finish(pool, &st->ams_req, sig, sig_len));
	/* RFC 8617 4.1.3: i, a, cv, d, s, t and b only */
	buf_printf(&as, "ARC-Seal: i=%u; a=%s; cv=%s;", st->instance,
		   st->params.algorithm == DKIM_ALG_ED25519_SHA256
			   ? "ed25519-sha256"
			   : "rsa-sha256",
		   arc_chain_name(st->cv));
	col = as.used;
	dkim_fold_append(&as, &col,
			 span_from_cstr(p_strdup_printf(pool, " d=%s;",
							st->params.domain)),
			 false);
	dkim_fold_append(&as, &col,
			 span_from_cstr(p_strdup_printf(pool, " s=%s;",
							st->params.selector)),
			 false);
	if (st->params.timestamp > 0)
		dkim_fold_append(&as, &col,
				 span_from_cstr(p_strdup_printf(
					 pool, " t=%lld;",
					 (long long)st->params.timestamp)),
				 false);
	dkim_fold_append(&as, &col, SPAN_LIT(" b="), false);
	st->as_nob = p_strndup(pool, as.data, as.used);
	buf_free(&as);

	memcpy(sets, st->chain.sets, sizeof(sets));
	fields[ARC_AAR].raw = span_from_cstr(st->aar);
	fields[ARC_AMS].raw = span_from_cstr(st->ams);
	fields[ARC_AS].raw = span_from_cstr(st->as_nob);
	for (int k = 0; k < 3; k++)
		sets[st->instance].f[k] = &fields[k];
	/* RFC 8617 5.1.2: with cv=fail the AS covers its own set only */
	first = st->cv == ARC_CHAIN_FAIL ? st->instance : 1;
	if (as_digest(pool, sets, first, st->instance, req->digest) < 0)
		i_unreached();
	return 0;
}

const char *arc_seal_finish(pool_t pool, const struct arc_seal_request *req,
			    const uint8_t *sig, size_t sig_len)
{
	const struct arc_seal_state *st = req->state;
	struct dkim_sign_request as_req = { .field_nob = st->as_nob };
	const char *as = dkim_sign_finish(pool, &as_req, sig, sig_len);

	return p_strdup_printf(pool, "%s%s\r\n%s\r\n", as, st->ams, st->aar);
}
