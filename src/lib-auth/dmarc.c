/* dmarc.c - DMARC evaluation (RFC 7489; RFC 9989 tree walk as an
   option): record parsing, From: extraction, policy discovery over
   auth_dns, identifier alignment and the disposition (dmarc.h). */

#include "dmarc.h"
#include "auth-header.h"
#include "buf.h"
#include "span.h"
#include "mail-address.h"
#include "message-address.h"

#include <openssl/rand.h>

/* RFC 9989 4.10.1: at most 8 queries in a tree walk. */
#define DMARC_WALK_MAX 8

const char *dmarc_result_name(enum dmarc_result r)
{
	switch (r) {
	case DMARC_RESULT_NONE:
		return "none";
	case DMARC_RESULT_PASS:
		return "pass";
	case DMARC_RESULT_FAIL:
		return "fail";
	case DMARC_RESULT_TEMPERROR:
		return "temperror";
	case DMARC_RESULT_PERMERROR:
		return "permerror";
	}
	return "permerror";
}

const char *dmarc_policy_name(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_POLICY_NONE:
		return "none";
	case DMARC_POLICY_QUARANTINE:
		return "quarantine";
	case DMARC_POLICY_REJECT:
		return "reject";
	}
	return "none";
}

const char *dmarc_from_status_name(enum dmarc_from_status s)
{
	switch (s) {
	case DMARC_FROM_OK:
		return "ok";
	case DMARC_FROM_MISSING:
		return "no From field";
	case DMARC_FROM_DUPLICATE:
		return "more than one From field";
	case DMARC_FROM_MULTIPLE:
		return "more than one From address";
	case DMARC_FROM_INVALID:
		return "no usable From domain";
	}
	return "invalid";
}

/* ---- record parsing (RFC 7489 6.3, 6.4) ---- */

static struct span span_trim_all(struct span s)
{
	while (s.len > 0 && (s.p[0] == ' ' || s.p[0] == '\t' ||
			     s.p[0] == '\r' || s.p[0] == '\n'))
		s = span_skip(s, 1);
	while (s.len > 0 && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t' ||
			     s.p[s.len - 1] == '\r' || s.p[s.len - 1] == '\n'))
		s.len--;
	return s;
}

static bool parse_policy(struct span v, enum dmarc_policy *p_r)
{
	if (span_eq_ci(v, SPAN_LIT("none")))
		*p_r = DMARC_POLICY_NONE;
	else if (span_eq_ci(v, SPAN_LIT("quarantine")))
		*p_r = DMARC_POLICY_QUARANTINE;
	else if (span_eq_ci(v, SPAN_LIT("reject")))
		*p_r = DMARC_POLICY_REJECT;
	else
		return false;
	return true;
}

static bool parse_alignment(struct span v, bool *strict_r)
{
	if (span_eq_ci(v, SPAN_LIT("r")))
		*strict_r = false;
	else if (span_eq_ci(v, SPAN_LIT("s")))
		*strict_r = true;
	else
		return false;
	return true;
}

/* RFC 7489 6.4: dmarc-uri *(*WSP "," *WSP dmarc-uri); only mailto: is
   kept (RFC 7489 6.2: reports go by mail). */
static void parse_uris(pool_t pool, struct span v, const char ***uris_r,
		       unsigned int *count_r)
{
	struct span head, rest = v;
	const char **uris;
	unsigned int n = 0, max = 1;
	size_t i;

	for (i = 0; i < v.len; i++) {
		if (v.p[i] == ',')
			max++;
	}
	if (max > 16)
		max = 16;
	uris = p_new(pool, const char *, max);
	for (;;) {
		bool more = span_split(rest, ',', &head, &rest);

		head = span_trim_all(head);
		if (n < max && head.len > 7 &&
		    span_starts_with_ci(head, SPAN_LIT("mailto:")))
			uris[n++] = p_strndup(pool, head.p, head.len);
		if (!more)
			break;
	}
	*uris_r = uris;
	*count_r = n;
}

int dmarc_record_parse(pool_t pool, const char *text, size_t len,
		       struct dmarc_record *rec_r, const char **error_r)
{
	struct span rest = span_make(text, len), tag, name, value;
	bool first = true, more;
	uint64_t num;

	memset(rec_r, 0, sizeof(*rec_r));
	rec_r->pct = 100;
	rec_r->ri = 86400;
	if (memchr(text, '\0', len) != NULL) {
		*error_r = "NUL in record";
		return -1;
	}
	do {
		more = span_split(rest, ';', &tag, &rest);
		tag = span_trim_all(tag);
		if (tag.len == 0) {
			if (first)
				break;
			continue;
		}
		if (!span_split(tag, '=', &name, &value)) {
			if (first)
				break;
			continue; /* RFC 7489 6.3: ignore what we cannot read */
		}
		name = span_trim_all(name);
		value = span_trim_all(value);
		if (first) {
			/* RFC 7489 6.4: dmarc-version = "v" *WSP "=" *WSP
			   %x44.4d.41.52.43.31, first, case-sensitive. */
			if (!span_eq(name, SPAN_LIT("v")) ||
			    !span_eq(value, SPAN_LIT("DMARC1"))) {
				*error_r = "not v=DMARC1";
				return -1;
			}
			first = false;
			continue;
		}
		if (span_eq_ci(name, SPAN_LIT("p"))) {
			rec_r->p_valid = parse_policy(value, &rec_r->p);
			if (!rec_r->p_valid)
				rec_r->p = DMARC_POLICY_NONE;
		} else if (span_eq_ci(name, SPAN_LIT("sp"))) {
			rec_r->sp_set = parse_policy(value, &rec_r->sp);
		} else if (span_eq_ci(name, SPAN_LIT("np"))) {
			/* RFC 9989: policy for non-existent subdomains. */
			rec_r->np_set = parse_policy(value, &rec_r->np);
		} else if (span_eq_ci(name, SPAN_LIT("pct"))) {
			/* RFC 7489 6.3: 0..100; invalid: the default. */
			if (span_to_u64(value, 100, &num) == 0)
				rec_r->pct = (unsigned int)num;
		} else if (span_eq_ci(name, SPAN_LIT("adkim"))) {
			(void)parse_alignment(value, &rec_r->adkim_strict);
		} else if (span_eq_ci(name, SPAN_LIT("aspf"))) {
			(void)parse_alignment(value, &rec_r->aspf_strict);
		} else if (span_eq_ci(name, SPAN_LIT("t"))) {
			/* RFC 9989: t=y, testing mode. */
			if (span_eq_ci(value, SPAN_LIT("y")))
				rec_r->testing = true;
		} else if (span_eq_ci(name, SPAN_LIT("psd"))) {
			if (span_eq_ci(value, SPAN_LIT("y")))
				rec_r->psd = DMARC_PSD_Y;
			else if (span_eq_ci(value, SPAN_LIT("n")))
				rec_r->psd = DMARC_PSD_N;
		} else if (span_eq_ci(name, SPAN_LIT("ri"))) {
			if (span_to_u64(value, UINT32_MAX, &num) == 0)
				rec_r->ri = (uint32_t)num;
		} else if (span_eq_ci(name, SPAN_LIT("rua"))) {
			parse_uris(pool, value, &rec_r->rua, &rec_r->rua_count);
		} else if (span_eq_ci(name, SPAN_LIT("ruf"))) {
			parse_uris(pool, value, &rec_r->ruf, &rec_r->ruf_count);
		} else if (span_eq_ci(name, SPAN_LIT("fo"))) {
			rec_r->fo = p_strndup(pool, value.p, value.len);
		} else if (span_eq_ci(name, SPAN_LIT("rf"))) {
			rec_r->rf = p_strndup(pool, value.p, value.len);
		}
	} while (more);
	if (first) {
		*error_r = "not v=DMARC1";
		return -1;
	}
	/* RFC 7489 6.6.3 step 6: no valid p= but a valid rua= is p=none;
	   without either the record is unusable. */
	if (!rec_r->p_valid && rec_r->rua_count == 0) {
		*error_r = "no valid p= tag";
		return -1;
	}
	if (!rec_r->sp_set)
		rec_r->sp = rec_r->p;
	return 0;
}

/* ---- From: (RFC 5322 3.6.2, RFC 7489 6.6.1) ---- */

static void from_add_domain(pool_t pool, struct dmarc_from *from,
			    const char *domain)
{
	const char *error, *norm;
	unsigned int i;

	norm = mail_domain_normalize(pool, domain, &error);
	if (norm == NULL)
		return;
	for (i = 0; i < from->domain_count; i++) {
		if (strcmp(from->domains[i], norm) == 0)
			return;
	}
	if (from->domain_count < DMARC_MAX_FROM_DOMAINS)
		from->domains[from->domain_count++] = norm;
}

void dmarc_from_parse(pool_t pool, const uint8_t *msg, size_t len,
		      struct dmarc_from *from_r)
{
	struct auth_header_iter iter;
	struct auth_header_field field;
	const struct message_address *addr;
	unsigned int fields = 0, addresses = 0;
	bool group = false, bad = false;

	memset(from_r, 0, sizeof(*from_r));
	auth_header_iter_init(&iter, msg, len);
	while (auth_header_iter_next(&iter, &field)) {
		if (!span_eq_ci(field.name, SPAN_LIT("From")))
			continue;
		fields++;
		addr = message_address_parse(pool, field.value, 16);
		for (; addr != NULL; addr = addr->next) {
			if (addr->domain == NULL) {
				/* group start or end (message-address.h) */
				group = true;
				continue;
			}
			addresses++;
			if (addr->invalid)
				bad = true;
			else
				from_add_domain(pool, from_r, addr->domain);
		}
	}
	if (fields == 0)
		from_r->status = DMARC_FROM_MISSING;
	else if (fields > 1)
		from_r->status = DMARC_FROM_DUPLICATE;
	else if (addresses > 1 || group)
		from_r->status = DMARC_FROM_MULTIPLE;
	else if (addresses == 0 || bad || from_r->domain_count == 0)
		from_r->status = DMARC_FROM_INVALID;
	else
		from_r->status = DMARC_FROM_OK;
}

/* ---- Organizational Domain (RFC 7489 3.2) ---- */

const char *dmarc_org_domain_psl(pool_t pool, const psl_ctx_t *psl,
				 const char *domain)
{
	const char *reg;

	if (psl == NULL)
		psl = psl_builtin();
	reg = psl == NULL ? NULL : psl_registrable_domain(psl, domain);
	return p_strdup(pool, reg != NULL ? reg : domain);
}

/* ---- the check ---- */

struct dmarc_domain_eval {
	const char *domain;
	const char *org;
	/* Discovery: the names to query ("_dmarc." prefixed) and where. */
	const char *names[DMARC_WALK_MAX];
	const char *name_domains[DMARC_WALK_MAX];
	unsigned int name_count, next;
	const char *policy_domain;
	struct dmarc_record *record;
	/* Tree walk: the highest domain with a record so far. */
	const char *highest;
	bool org_done;
	bool temperror, nonexistent;
};

struct dmarc_check {
	pool_t pool;
	struct auth_dns *dns;
	dmarc_callback_t *cb;
	void *context;
	const psl_ctx_t *psl;
	bool tree_walk;
	dmarc_random_t *random;
	void *random_context;

	enum dmarc_from_status from_status;
	const char *spf_domain;
	enum spf_result spf_result;
	const char **dkim_domains;
	enum dkim_result *dkim_results;
	unsigned int dkim_count;

	struct dmarc_domain_eval evals[DMARC_MAX_FROM_DOMAINS];
	unsigned int eval_count, cur;
	struct dns_lookup *lookup;
	bool exists_step;
};

static void check_next(struct dmarc_check *c);

static unsigned int default_random(void *context ATTR_UNUSED)
{
	uint32_t r = 0;

	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		i_panic("RAND_bytes failed");
	return r % 100;
}

/* The parent of a domain (one label less), NULL for a single label. */
static const char *domain_parent(const char *domain)
{
	const char *dot = strchr(domain, '.');

	return dot == NULL ? NULL : dot + 1;
}

static unsigned int domain_labels(const char *domain)
{
	unsigned int n = 1;

	for (; *domain != '\0'; domain++) {
		if (*domain == '.')
			n++;
	}
	return n;
}

/* The last n labels of domain. */
static const char *domain_last_labels(const char *domain, unsigned int n)
{
	unsigned int labels = domain_labels(domain);

	while (labels > n) {
		domain = domain_parent(domain);
		labels--;
	}
	return domain;
}

static void eval_add_name(struct dmarc_check *c, struct dmarc_domain_eval *e,
			  const char *domain)
{
	i_assert(e->name_count < DMARC_WALK_MAX);
	e->name_domains[e->name_count] = domain;
	e->names[e->name_count] = p_strdup_printf(c->pool, "_dmarc.%s", domain);
	e->name_count++;
}

static void eval_init(struct dmarc_check *c, struct dmarc_domain_eval *e,
		      const char *domain)
{
	unsigned int labels, n;

	e->domain = domain;
	if (!c->tree_walk) {
		/* RFC 7489 6.6.3: the author domain, then its
		   Organizational Domain. */
		e->org = dmarc_org_domain_psl(c->pool, c->psl, domain);
		eval_add_name(c, e, domain);
		if (strcmp(e->org, domain) != 0)
			eval_add_name(c, e, e->org);
		return;
	}
	/* RFC 9989 4.10.1: the author domain; then, from at most 7 labels
	   down to 1, one label less each time; 8 queries at most. */
	eval_add_name(c, e, domain);
	labels = domain_labels(domain);
	n = labels > 7 ? 7 : labels - 1;
	for (; n >= 1 && e->name_count < DMARC_WALK_MAX; n--)
		eval_add_name(c, e, domain_last_labels(domain, n));
}

/* RFC 7489 6.6.3 steps 3-5: keep the records that start with v=DMARC1;
   exactly one must remain. Returns the record, or NULL. */
static struct dmarc_record *select_record(struct dmarc_check *c,
					  const struct dns_txt_result *res,
					  unsigned int *found_r)
{
	struct dmarc_record *rec = NULL, tmp;
	const char *error;
	unsigned int i, found = 0;

	for (i = 0; i < res->count; i++) {
		const struct dns_txt *t = &res->txt[i];

		if (t->len < 8 || memcmp(t->text, "v=DMARC1", 8) != 0)
			continue;
		found++;
		if (dmarc_record_parse(c->pool, t->text, t->len, &tmp,
				       &error) == 0) {
			rec = p_new(c->pool, struct dmarc_record, 1);
			*rec = tmp;
		}
	}
	*found_r = found;
	return found == 1 ? rec : NULL;
}

/* The name one label below parent on the way to domain. */
static const char *domain_below(const char *domain, const char *parent)
{
	const char *below = domain;

	while (below != NULL) {
		const char *up = domain_parent(below);

		if (up == NULL || strcmp(up, parent) == 0)
			return below;
		below = up;
	}
	return domain;
}

static void txt_callback(void *context, const struct dns_txt_result *res)
{
	struct dmarc_check *c = context;
	struct dmarc_domain_eval *e = &c->evals[c->cur];
	const char *name_domain = e->name_domains[e->next];
	struct dmarc_record *rec = NULL;
	bool stop = false;

	c->lookup = NULL;
	e->next++;
	if (res->info.status == DNS_STATUS_TEMPFAIL) {
		e->temperror = true;
		stop = true;
	} else if (res->info.status == DNS_STATUS_OK) {
		unsigned int found;

		rec = select_record(c, res, &found);
		/* RFC 7489 6.6.3 step 5: several records end the
		   discovery. */
		if (found > 1 && !c->tree_walk)
			stop = true;
	}
	if (rec != NULL) {
		if (e->record == NULL) {
			e->record = rec;
			e->policy_domain = name_domain;
		}
		if (!c->tree_walk) {
			stop = true;
		} else if (rec->psd == DMARC_PSD_N) {
			/* RFC 9989 4.10.2: psd=n names the Organizational
			   Domain. */
			e->org = name_domain;
			e->org_done = true;
			stop = true;
		} else if (rec->psd == DMARC_PSD_Y) {
			/* RFC 9989 4.10.2: psd=y: the Organizational Domain
			   is one label below the PSD. */
			e->org = domain_below(e->domain, name_domain);
			e->org_done = true;
			stop = true;
		} else {
			e->highest = name_domain;
		}
	}
	if (stop)
		e->next = e->name_count;
	check_next(c);
}

static void exists_callback(void *context, const struct dns_raw_result *res)
{
	struct dmarc_check *c = context;

	c->lookup = NULL;
	if (res->info.status == DNS_STATUS_NXDOMAIN)
		c->evals[c->cur].nonexistent = true;
	c->cur++;
	c->exists_step = false;
	check_next(c);
}

static bool id_aligned(struct dmarc_check *c, const struct dmarc_domain_eval *e,
		       const char *id, bool strict)
{
	size_t idlen, olen;

	if (id == NULL || *id == '\0')
		return false;
	/* RFC 7489 3.1.1, 3.1.2: strict is an exact match. */
	if (strcasecmp(id, e->domain) == 0)
		return true;
	if (strict)
		return false;
	if (!c->tree_walk) {
		/* RFC 7489 3.2: relaxed, the same Organizational Domain. */
		const char *org = dmarc_org_domain_psl(c->pool, c->psl, id);
		return strcasecmp(org, e->org) == 0;
	}
	/* RFC 9989 4.10.2 (see dmarc.h): id is the Organizational Domain or
	   below it. */
	idlen = strlen(id);
	olen = strlen(e->org);
	if (idlen == olen)
		return strcasecmp(id, e->org) == 0;
	return idlen > olen && id[idlen - olen - 1] == '.' &&
	       strcasecmp(id + idlen - olen, e->org) == 0;
}

/* The published policy for e: p at the author domain, else np for a
   non-existent author domain, else sp. */
static enum dmarc_policy eval_policy(const struct dmarc_domain_eval *e)
{
	const struct dmarc_record *rec = e->record;

	if (strcmp(e->policy_domain, e->domain) == 0)
		return rec->p;
	if (e->nonexistent && rec->np_set)
		return rec->np;
	return rec->sp;
}

static enum dmarc_policy lower_policy(enum dmarc_policy p)
{
	/* RFC 7489 6.6.4: the next less strict policy. */
	return p == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE
					: DMARC_POLICY_NONE;
}

static bool eval_sampled_out(struct dmarc_check *c,
			     const struct dmarc_record *rec)
{
	if (rec->testing)
		return true;
	if (rec->pct >= 100)
		return false;
	if (rec->pct == 0)
		return true;
	return c->random(c->random_context) % 100 >= rec->pct;
}

static void check_finish(struct dmarc_check *c)
{
	struct dmarc_outcome out;
	struct dmarc_domain_eval *e = &c->evals[0];
	bool id_temperror = false;
	unsigned int i;

	memset(&out, 0, sizeof(out));
	if (c->eval_count == 0) {
		out.result = DMARC_RESULT_PERMERROR;
		out.reason = dmarc_from_status_name(c->from_status);
		c->cb(c->context, &out);
		return;
	}
	for (i = 0; i < c->eval_count; i++) {
		struct dmarc_domain_eval *ei = &c->evals[i];
		if (c->tree_walk && !ei->org_done)
			ei->org =
				ei->highest != NULL ? ei->highest : ei->domain;
	}
	out.from_domain = e->domain;
	out.org_domain = e->org;
	out.policy_domain = e->policy_domain;
	out.record = e->record;

	if (c->from_status != DMARC_FROM_OK) {
		/* dmarc.h: invalid From, the strictest disposition of the
		   domains found. */
		out.result = DMARC_RESULT_PERMERROR;
		out.reason = dmarc_from_status_name(c->from_status);
		for (i = 0; i < c->eval_count; i++) {
			struct dmarc_domain_eval *ei = &c->evals[i];
			enum dmarc_policy pol, dis;
			bool sampled;

			if (ei->record == NULL)
				continue;
			pol = eval_policy(ei);
			sampled = eval_sampled_out(c, ei->record);
			dis = sampled ? lower_policy(pol) : pol;
			if (out.record == NULL || dis > out.disposition ||
			    (dis == out.disposition && pol > out.policy)) {
				out.record = ei->record;
				out.policy_domain = ei->policy_domain;
				out.from_domain = ei->domain;
				out.org_domain = ei->org;
				out.policy = pol;
				out.disposition = dis;
				out.sampled_out = sampled;
			}
		}
		c->cb(c->context, &out);
		return;
	}

	if (e->record == NULL) {
		/* RFC 7489 6.6.3 step 5: no policy, DMARC does not
		   apply. */
		out.result = e->temperror ? DMARC_RESULT_TEMPERROR
					  : DMARC_RESULT_NONE;
		out.reason = e->temperror ? "DNS error looking up the record"
					  : "no DMARC record";
		c->cb(c->context, &out);
		return;
	}
	out.policy = eval_policy(e);
	/* RFC 7489 4.2: pass when SPF or DKIM passes with an aligned
	   identifier. */
	if (c->spf_domain != NULL &&
	    id_aligned(c, e, c->spf_domain, e->record->aspf_strict)) {
		if (c->spf_result == SPF_PASS)
			out.spf_aligned = true;
		else if (c->spf_result == SPF_TEMPERROR)
			id_temperror = true;
	}
	for (i = 0; i < c->dkim_count; i++) {
		if (!id_aligned(c, e, c->dkim_domains[i],
				e->record->adkim_strict))
			continue;
		if (c->dkim_results[i] == DKIM_PASS && !out.dkim_aligned) {
			out.dkim_aligned = true;
			out.dkim_domain = c->dkim_domains[i];
		} else if (c->dkim_results[i] == DKIM_TEMPERROR) {
			id_temperror = true;
		}
	}
	if (out.spf_aligned || out.dkim_aligned) {
		out.result = DMARC_RESULT_PASS;
		out.disposition = DMARC_POLICY_NONE;
	} else if (id_temperror) {
		/* An aligned identifier could not be checked: a transient
		   DNS error must not reject legitimate mail (RFC 7489
		   6.6.2). */
		out.result = DMARC_RESULT_TEMPERROR;
		out.disposition = DMARC_POLICY_NONE;
		out.reason = "aligned identifier had a temporary error";
	} else {
		out.result = DMARC_RESULT_FAIL;
		out.sampled_out = eval_sampled_out(c, e->record);
		out.disposition =
			out.sampled_out ? lower_policy(out.policy) : out.policy;
		out.reason = "no aligned SPF or DKIM pass";
	}
	c->cb(c->context, &out);
}

static void check_next(struct dmarc_check *c)
{
	while (c->cur < c->eval_count) {
		struct dmarc_domain_eval *e = &c->evals[c->cur];

		if (e->next < e->name_count) {
			c->lookup = c->dns->txt(c->dns, e->names[e->next],
						txt_callback, c);
			return;
		}
		if (e->record != NULL && e->record->np_set &&
		    strcmp(e->policy_domain, e->domain) != 0 &&
		    !c->exists_step) {
			/* RFC 9989 np=: does the author domain exist? */
			c->exists_step = true;
			c->lookup = c->dns->raw(c->dns, e->domain, DNS_TYPE_A,
						exists_callback, c);
			return;
		}
		c->cur++;
	}
	check_finish(c);
	dmarc_check_cancel(&c);
}

struct dmarc_check *dmarc_check_start(struct auth_dns *dns,
				      const struct dmarc_request *req,
				      dmarc_callback_t *cb, void *context)
{
	struct dmarc_check *c;
	pool_t pool = pool_create("dmarc", 2048);
	unsigned int i;

	c = p_new(pool, struct dmarc_check, 1);
	c->pool = pool;
	c->dns = dns;
	c->cb = cb;
	c->context = context;
	c->psl = req->psl;
	c->tree_walk = req->tree_walk;
	c->random = req->random != NULL ? req->random : default_random;
	c->random_context = req->random_context;
	c->from_status = req->from->status;

	if (req->spf != NULL && req->spf->identity == SPF_IDENTITY_MAILFROM &&
	    req->spf->domain != NULL) {
		c->spf_domain = p_strdup(pool, req->spf->domain);
		c->spf_result = req->spf->result;
	}
	if (req->dkim != NULL && req->dkim->count > 0) {
		c->dkim_domains = p_new(pool, const char *, req->dkim->count);
		c->dkim_results =
			p_new(pool, enum dkim_result, req->dkim->count);
		for (i = 0; i < req->dkim->count; i++) {
			c->dkim_domains[i] =
				p_strdup(pool, req->dkim->sigs[i].domain);
			c->dkim_results[i] = req->dkim->sigs[i].result;
		}
		c->dkim_count = req->dkim->count;
	}
	for (i = 0; i < req->from->domain_count; i++) {
		eval_init(c, &c->evals[i],
			  p_strdup(pool, req->from->domains[i]));
	}
	c->eval_count = req->from->domain_count;
	if (c->eval_count == 0) {
		check_finish(c);
		pool_unref(&pool);
		return NULL;
	}
	check_next(c);
	return c;
}

void dmarc_check_cancel(struct dmarc_check **_check)
{
	struct dmarc_check *c = *_check;
	pool_t pool;

	*_check = NULL;
	if (c == NULL)
		return;
	if (c->lookup != NULL)
		c->dns->cancel(c->dns, &c->lookup);
	pool = c->pool;
	pool_unref(&pool);
}
