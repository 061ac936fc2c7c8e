/* spf.c - check_host() (RFC 7208 4) as a state machine over struct
   auth_dns. One lookup is in flight at a time: every callback copies its
   answer into the check's pool and calls spf_continue(), which runs steps
   until the next lookup is started or the result is known. Each
   include:'s check_host() is a frame on a stack; redirect= replaces the
   frame's domain and record (RFC 7208 6.1). The record grammar and the
   macros are in spf-macro.c. */

#include "spf-private.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* RFC 7208 4.6.4 */
#define SPF_DNS_TERMS_MAX 10
#define SPF_VOID_MAX 2
#define SPF_MX_MAX 10
#define SPF_PTR_MAX 10

enum spf_step {
	STEP_RECORD, /* the TXT answer for frame->domain */
	STEP_TERMS, /* evaluate frame->rec->terms[frame->term] */
	STEP_A, /* the address answer of a */
	STEP_MX, /* the MX answer of mx */
	STEP_MX_ADDR, /* the address answer for names[name_idx] */
	STEP_PTR, /* the PTR answer of ptr */
	STEP_PTR_ADDR, /* the validation answer for names[name_idx] */
	STEP_EXISTS, /* the A answer of exists */
	STEP_EXP_START, /* FAIL: expand exp= and look it up */
	STEP_EXP, /* the TXT answer of exp= */
	STEP_EXP_TEXT, /* expand the explanation */
	STEP_DEFERRED, /* a deferral lookup: the result is already known */
};

enum spf_p_state {
	P_NONE,
	P_PTR,
	P_ADDR,
	P_DONE,
};

struct spf_addr {
	uint8_t a[16];
};

struct spf_answer {
	enum dns_status status;
	unsigned int count;
	/* TXT texts (with lens), MX exchanges or PTR names */
	const char **strs;
	size_t *lens;
	/* A / AAAA */
	struct spf_addr *addrs;
	bool null_mx; /* or unusable */
};

struct spf_frame {
	struct spf_frame *parent;
	const char *domain;
	struct spf_record *rec;
	unsigned int term;
	/* reached by redirect=: no record is a PermError (RFC 7208 6.1) */
	bool redirected;
};

struct spf_check {
	pool_t pool;
	struct auth_dns *dns;
	spf_callback_t *cb;
	void *context;
	struct dns_lookup *lookup;
	enum spf_step step;
	struct spf_answer ans;
	bool finished;

	bool v6;
	uint8_t ip[16];
	struct spf_macro_vars vars;
	struct spf_outcome outcome;

	unsigned int dns_terms, voids;
	/* the current term was counted against SPF_DNS_TERMS_MAX */
	bool counted;
	struct spf_frame *frame;

	/* mx / ptr: the names to look up addresses for */
	const char **names;
	unsigned int name_count, name_idx;
	const char *target;
	const char *exp_text;

	/* %{p} (RFC 7208 7.3): the first 10 PTR names and which validated */
	enum spf_p_state p_state;
	const char **p_names;
	bool *p_valid;
	unsigned int p_count, p_idx;
};

const char *spf_result_name(enum spf_result r)
{
	switch (r) {
	case SPF_NONE:
		return "none";
	case SPF_NEUTRAL:
		return "neutral";
	case SPF_PASS:
		return "pass";
	case SPF_FAIL:
		return "fail";
	case SPF_SOFTFAIL:
		return "softfail";
	case SPF_TEMPERROR:
		return "temperror";
	case SPF_PERMERROR:
		return "permerror";
	}
	return "unknown";
}

static void spf_continue(struct spf_check *c);

/* ---- lookups ---- */

static void answer_reset(struct spf_check *c, enum dns_status status)
{
	c->lookup = NULL;
	memset(&c->ans, 0, sizeof(c->ans));
	c->ans.status = status;
}

static void spf_txt_cb(void *context, const struct dns_txt_result *r)
{
	struct spf_check *c = context;

	answer_reset(c, r->info.status);
	if (r->info.status == DNS_STATUS_OK) {
		c->ans.count = r->count;
		c->ans.strs = p_new(c->pool, const char *, r->count + 1);
		c->ans.lens = p_new(c->pool, size_t, r->count + 1);
		for (unsigned int i = 0; i < r->count; i++) {
			c->ans.strs[i] = p_strndup(c->pool, r->txt[i].text,
						   r->txt[i].len);
			c->ans.lens[i] = r->txt[i].len;
		}
	}
	spf_continue(c);
}

static void spf_mx_cb(void *context, const struct dns_mx_result *r)
{
	struct spf_check *c = context;

	answer_reset(c, r->info.status);
	if (r->info.status == DNS_STATUS_OK) {
		/* a null MX (RFC 7505) or unusable MX records are an
		   answer, not a void lookup, that matches nothing */
		c->ans.null_mx = r->null_mx || r->unusable;
		c->ans.count = r->count;
		c->ans.strs = p_new(c->pool, const char *, r->count + 1);
		for (unsigned int i = 0; i < r->count; i++)
			c->ans.strs[i] = p_strdup(c->pool, r->mx[i].host);
	}
	spf_continue(c);
}

/* An uncompressed wire-format name (RFC 1035 3.1) as text without the
   trailing dot; NULL if it is not one or has octets that cannot be
   written in a presentation name. */
static const char *wire_name(pool_t pool, const uint8_t *data, size_t len)
{
	struct buf out = BUF_INIT;
	size_t pos = 0;
	const char *ret;

	while (pos < len && data[pos] != 0) {
		size_t n = data[pos++];

		if (n > 63 || n > len - pos) {
			buf_free(&out);
			return NULL;
		}
		if (out.used > 0)
			buf_append_c(&out, '.');
		for (size_t i = 0; i < n; i++) {
			uint8_t ch = data[pos + i];

			if (ch <= 0x20 || ch >= 0x7f || ch == '.') {
				buf_free(&out);
				return NULL;
			}
		}
		buf_append(&out, data + pos, n);
		pos += n;
	}
	if (pos >= len || out.used == 0) {
		buf_free(&out);
		return NULL;
	}
	ret = p_strdup(pool, buf_cstr(&out));
	buf_free(&out);
	return ret;
}

static void spf_raw_cb(void *context, const struct dns_raw_result *r)
{
	struct spf_check *c = context;
	unsigned int n = 0;

	answer_reset(c, r->info.status);
	if (r->info.status != DNS_STATUS_OK) {
		spf_continue(c);
		return;
	}
	if (r->rrtype == DNS_TYPE_PTR) {
		c->ans.strs = p_new(c->pool, const char *, r->count + 1);
		for (unsigned int i = 0; i < r->count; i++) {
			const char *name = wire_name(c->pool, r->rdata[i].data,
						     r->rdata[i].len);

			if (name != NULL)
				c->ans.strs[n++] = name;
		}
	} else {
		size_t alen = r->rrtype == DNS_TYPE_A ? 4 : 16;

		c->ans.addrs = p_new(c->pool, struct spf_addr, r->count + 1);
		for (unsigned int i = 0; i < r->count; i++) {
			if (r->rdata[i].len == alen)
				memcpy(c->ans.addrs[n++].a, r->rdata[i].data,
				       alen);
		}
	}
	c->ans.count = n;
	spf_continue(c);
}

static void lookup_txt(struct spf_check *c, const char *name)
{
	c->lookup = c->dns->txt(c->dns, name, spf_txt_cb, c);
}

static void lookup_mx(struct spf_check *c, const char *name)
{
	c->lookup = c->dns->mx(c->dns, name, spf_mx_cb, c);
}

/* RFC 7208 5.3, 5.4, 5.5: A for an IPv4 client, AAAA for IPv6. */
static void lookup_addr(struct spf_check *c, const char *name)
{
	c->lookup =
		c->dns->raw(c->dns, name, c->v6 ? DNS_TYPE_AAAA : DNS_TYPE_A,
			    spf_raw_cb, c);
}

/* RFC 7208 5.5: the reverse-mapping name of <ip> (RFC 1035 3.5,
   RFC 3596 2.5). */
static void lookup_ptr(struct spf_check *c)
{
	char name[80];
	size_t pos = 0;

	if (!c->v6) {
		(void)snprintf(name, sizeof(name), "%u.%u.%u.%u.in-addr.arpa",
			       c->ip[3], c->ip[2], c->ip[1], c->ip[0]);
	} else {
		static const char hex[] = "0123456789abcdef";

		for (int i = 15; i >= 0; i--) {
			name[pos++] = hex[c->ip[i] & 0xf];
			name[pos++] = '.';
			name[pos++] = hex[c->ip[i] >> 4];
			name[pos++] = '.';
		}
		memcpy(name + pos, "ip6.arpa", 9);
	}
	c->lookup = c->dns->raw(c->dns, name, DNS_TYPE_PTR, spf_raw_cb, c);
}

/* ---- results ---- */

static void spf_done(struct spf_check *c, enum spf_result r, const char *reason)
{
	c->outcome.result = r;
	c->outcome.reason = reason;
	/* RFC 7208 6.2: exp= of the record that produced the final FAIL
	   (never one reached through include:, 5.2). */
	if (r == SPF_FAIL && c->frame != NULL && c->frame->parent == NULL &&
	    c->frame->rec != NULL && c->frame->rec->exp != NULL) {
		c->step = STEP_EXP_START;
		return;
	}
	c->finished = true;
}

static void term_matched(struct spf_check *c, bool match);

/* The frame's check_host() result. */
static void frame_result(struct spf_check *c, enum spf_result r,
			 const char *reason)
{
	struct spf_frame *f = c->frame;

	if (r == SPF_NONE && f->redirected) {
		/* RFC 7208 6.1: "If the target-name has no SPF record, the
		   result is a PermError." */
		spf_done(c, SPF_PERMERROR,
			 p_strdup_printf(c->pool,
					 "redirect=%s has no SPF record",
					 f->domain));
		return;
	}
	if (r == SPF_TEMPERROR || r == SPF_PERMERROR || f->parent == NULL) {
		spf_done(c, r, reason);
		return;
	}
	/* RFC 7208 5.2: include's table - pass matches; fail, softfail and
	   neutral do not; none is a PermError; errors propagate. */
	if (r == SPF_NONE) {
		spf_done(c, SPF_PERMERROR,
			 p_strdup_printf(c->pool,
					 "include:%s has no SPF record",
					 f->domain));
		return;
	}
	c->frame = f->parent;
	term_matched(c, r == SPF_PASS);
}

static void term_matched(struct spf_check *c, bool match)
{
	struct spf_frame *f = c->frame;
	const struct spf_term *term = &f->rec->terms[f->term];

	if (match) {
		/* RFC 7208 4.6.2: the qualifier is the result. */
		frame_result(c, term->qualifier, term->text);
		return;
	}
	f->term++;
	c->counted = false;
	c->step = STEP_TERMS;
}

/* RFC 7208 4.6.4: terms that cause DNS lookups, at most 10. */
static bool count_term(struct spf_check *c)
{
	if (c->counted)
		return true;
	c->counted = true;
	if (++c->dns_terms > SPF_DNS_TERMS_MAX) {
		spf_done(c, SPF_PERMERROR, "10 DNS lookup limit exceeded");
		return false;
	}
	return true;
}

/* RFC 7208 4.6.4: at most 2 void lookups (NXDOMAIN or no answer). */
static bool count_void(struct spf_check *c)
{
	if (++c->voids > SPF_VOID_MAX) {
		spf_done(c, SPF_PERMERROR, "2 void lookup limit exceeded");
		return false;
	}
	return true;
}

static bool status_void(enum dns_status status)
{
	return status == DNS_STATUS_NXDOMAIN || status == DNS_STATUS_NODATA;
}

/* ---- macros ---- */

static bool name_is_or_under(const char *name, const char *domain)
{
	size_t nlen = strlen(name), dlen = strlen(domain);

	if (nlen > 0 && name[nlen - 1] == '.')
		nlen--;
	if (dlen > 0 && domain[dlen - 1] == '.')
		dlen--;
	if (nlen == dlen)
		return strncasecmp(name, domain, nlen) == 0;
	return nlen > dlen && name[nlen - dlen - 1] == '.' &&
	       strncasecmp(name + nlen - dlen, domain, dlen) == 0;
}

/* RFC 7208 7.3: "If the <domain> is present in the list of validated
   domains, it SHOULD be used. Otherwise, if a subdomain of the <domain>
   is present, it SHOULD be used. Otherwise, any name from the list can
   be used. If there are no validated domain names or if a DNS error
   occurs, the string "unknown" is used." */
static const char *p_value(struct spf_check *c, const char *domain)
{
	const char *any = NULL, *sub = NULL;

	for (unsigned int i = 0; i < c->p_count; i++) {
		const char *name = c->p_names[i];
		size_t nlen = strlen(name), dlen = strlen(domain);

		if (!c->p_valid[i])
			continue;
		if (nlen == dlen && strcasecmp(name, domain) == 0)
			return name;
		if (sub == NULL && name_is_or_under(name, domain))
			sub = name;
		if (any == NULL)
			any = name;
	}
	return sub != NULL ? sub : any != NULL ? any : "unknown";
}

static void p_begin(struct spf_check *c)
{
	i_assert(c->p_state == P_NONE);
	c->p_state = P_PTR;
	lookup_ptr(c);
}

static bool p_has_ip(const struct spf_check *c)
{
	for (unsigned int i = 0; i < c->ans.count; i++) {
		if (memcmp(c->ans.addrs[i].a, c->ip, c->v6 ? 16 : 4) == 0)
			return true;
	}
	return false;
}

/* The %{p} lookups: PTR, then each of the first 10 names' addresses. */
static void p_step(struct spf_check *c)
{
	if (c->p_state == P_PTR) {
		if (c->ans.status != DNS_STATUS_OK || c->ans.count == 0) {
			c->p_state = P_DONE;
			return;
		}
		c->p_count =
			c->ans.count > SPF_PTR_MAX ? SPF_PTR_MAX : c->ans.count;
		c->p_names = c->ans.strs;
		c->p_valid = p_new(c->pool, bool, c->p_count);
		c->p_idx = 0;
		c->p_state = P_ADDR;
		lookup_addr(c, c->p_names[0]);
		return;
	}
	i_assert(c->p_state == P_ADDR);
	if (c->ans.status == DNS_STATUS_OK && p_has_ip(c))
		c->p_valid[c->p_idx] = true;
	if (++c->p_idx < c->p_count) {
		lookup_addr(c, c->p_names[c->p_idx]);
		return;
	}
	c->p_state = P_DONE;
}

enum expand_ret {
	EXPAND_OK,
	EXPAND_WAIT, /* %{p} lookups started */
	EXPAND_ERROR,
};

static enum expand_ret expand(struct spf_check *c, const char *str, size_t len,
			      bool exp, bool domain, const char **result_r)
{
	struct buf out = BUF_INIT;
	char *copy = i_strndup(str, len);
	bool uses_p = spf_macro_uses_p(copy);

	i_free(copy);
	if (uses_p && c->p_state != P_DONE) {
		p_begin(c);
		return EXPAND_WAIT;
	}
	c->vars.d = c->frame->domain;
	c->vars.p = uses_p ? p_value(c, c->frame->domain) : NULL;
	if (!spf_macro_expand(str, len, exp, &c->vars, &out)) {
		buf_free(&out);
		return EXPAND_ERROR;
	}
	if (domain)
		spf_domain_truncate(&out);
	*result_r = p_strdup(c->pool, buf_cstr(&out));
	buf_free(&out);
	return EXPAND_OK;
}

/* The target-name of a term or modifier (RFC 7208 4.8): the expanded
   domain-spec, or <domain>. NULL: wait for %{p}, or done (an error). */
static const char *target_name(struct spf_check *c, const char *spec)
{
	const char *name;

	if (spec == NULL)
		return c->frame->domain;
	switch (expand(c, spec, strlen(spec), false, true, &name)) {
	case EXPAND_OK:
		return name;
	case EXPAND_WAIT:
		return NULL;
	case EXPAND_ERROR:
		break;
	}
	spf_done(c, SPF_PERMERROR,
		 p_strdup_printf(c->pool, "macro expansion of '%s' failed",
				 spec));
	return NULL;
}

/* ---- steps ---- */

static void fetch_record(struct spf_check *c)
{
	c->step = STEP_RECORD;
	lookup_txt(c, c->frame->domain);
}

static void step_record(struct spf_check *c)
{
	struct spf_frame *f = c->frame;
	const char *text = NULL, *error;
	size_t len = 0;
	unsigned int found = 0;

	if (c->ans.status == DNS_STATUS_TEMPFAIL) {
		/* RFC 7208 4.4: "If the DNS lookup returns a server failure
		   (RCODE 2) or some other error (RCODE other than 0 or 3), or
		   if the lookup times out, then check_host() terminates
		   immediately with the result "temperror"." */
		frame_result(c, SPF_TEMPERROR,
			     p_strdup_printf(c->pool,
					     "DNS error looking up the SPF "
					     "record of %s",
					     f->domain));
		return;
	}
	/* RFC 7208 4.5: discard records that do not begin with "v=spf1". */
	for (unsigned int i = 0; i < c->ans.count; i++) {
		if (spf_is_record(c->ans.strs[i], c->ans.lens[i])) {
			text = c->ans.strs[i];
			len = c->ans.lens[i];
			found++;
		}
	}
	if (found == 0) {
		frame_result(c, SPF_NONE,
			     p_strdup_printf(c->pool, "no SPF record at %s",
					     f->domain));
		return;
	}
	if (found > 1) {
		/* RFC 7208 4.5: "If the resultant record set includes more
		   than one record, check_host() produces the "permerror"
		   result." */
		frame_result(c, SPF_PERMERROR,
			     p_strdup_printf(c->pool,
					     "more than one SPF record at %s",
					     f->domain));
		return;
	}
	f->rec = spf_record_parse(c->pool, text, len, &error);
	if (f->rec == NULL) {
		frame_result(c, SPF_PERMERROR,
			     p_strdup_printf(c->pool, "%s (SPF record of %s)",
					     error, f->domain));
		return;
	}
	f->term = 0;
	c->counted = false;
	c->step = STEP_TERMS;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned int bits)
{
	unsigned int bytes = bits / 8, rest = bits % 8;

	if (memcmp(a, b, bytes) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));

	return (a[bytes] & mask) == (b[bytes] & mask);
}

static bool addrs_match(const struct spf_check *c, const struct spf_term *term)
{
	for (unsigned int i = 0; i < c->ans.count; i++) {
		if (prefix_match(c->ans.addrs[i].a, c->ip,
				 c->v6 ? term->cidr6 : term->cidr4))
			return true;
	}
	return false;
}

static void step_terms(struct spf_check *c)
{
	struct spf_frame *f = c->frame;
	const struct spf_term *term;
	const char *target;

	if (f->term == f->rec->count) {
		if (f->rec->redirect == NULL) {
			/* RFC 7208 4.7: "If none of the mechanisms match and
			   there is no "redirect" modifier, then the
			   check_host() returns a result of "neutral"" */
			frame_result(c, SPF_NEUTRAL, "no mechanism matched");
			return;
		}
		/* RFC 7208 6.1: redirect= takes effect after all
		   mechanisms; the result is that of check_host() for the
		   target, whose exp= (not ours) then applies. */
		if (!count_term(c))
			return;
		target = target_name(c, f->rec->redirect);
		if (target == NULL)
			return;
		f->domain = target;
		f->rec = NULL;
		f->redirected = true;
		c->counted = false;
		fetch_record(c);
		return;
	}
	term = &f->rec->terms[f->term];
	switch (term->mech) {
	case SPF_MECH_ALL:
		/* RFC 7208 5.1 */
		term_matched(c, true);
		return;
	case SPF_MECH_IP4:
		/* RFC 7208 5.6 */
		term_matched(c, !c->v6 && prefix_match(term->net, c->ip,
						       term->cidr4));
		return;
	case SPF_MECH_IP6:
		term_matched(c, c->v6 && prefix_match(term->net, c->ip,
						      term->cidr6));
		return;
	default:
		break;
	}
	if (!count_term(c))
		return;
	target = target_name(c, term->domain_spec);
	if (target == NULL)
		return;
	switch (term->mech) {
	case SPF_MECH_INCLUDE: {
		/* RFC 7208 5.2: a recursive check_host() for the target. */
		struct spf_frame *child = p_new(c->pool, struct spf_frame, 1);

		child->parent = f;
		child->domain = target;
		c->frame = child;
		c->counted = false;
		fetch_record(c);
		return;
	}
	case SPF_MECH_A:
		c->step = STEP_A;
		lookup_addr(c, target);
		return;
	case SPF_MECH_MX:
		c->step = STEP_MX;
		lookup_mx(c, target);
		return;
	case SPF_MECH_PTR:
		c->target = target;
		c->step = STEP_PTR;
		lookup_ptr(c);
		return;
	case SPF_MECH_EXISTS:
		/* RFC 7208 5.7: an A lookup, whatever the client's family. */
		c->step = STEP_EXISTS;
		c->lookup =
			c->dns->raw(c->dns, target, DNS_TYPE_A, spf_raw_cb, c);
		return;
	default:
		i_unreached();
	}
}

/* RFC 7208 5: "If the DNS lookup returns a server failure (RCODE 2) or
   some other error (RCODE other than 0 or 3), or if the lookup times out,
   then check_host() terminates immediately with the result "temperror"."
   Returns false when the term is decided (an error, or no match). */
static bool mech_answer(struct spf_check *c, bool count_voids)
{
	const struct spf_term *term = &c->frame->rec->terms[c->frame->term];

	switch (c->ans.status) {
	case DNS_STATUS_OK:
		if (c->ans.count > 0 || c->ans.null_mx)
			return true;
		if (count_voids && !count_void(c))
			return false;
		term_matched(c, false);
		return false;
	case DNS_STATUS_TEMPFAIL:
		spf_done(c, SPF_TEMPERROR,
			 p_strdup_printf(c->pool, "DNS error in '%s'",
					 term->text));
		return false;
	case DNS_STATUS_NXDOMAIN:
	case DNS_STATUS_NODATA:
		if (count_voids && !count_void(c))
			return false;
		term_matched(c, false);
		return false;
	case DNS_STATUS_INVALID_NAME:
		/* RFC 7208 4.8 and the open SPF suite: a target-name that
		   cannot be queried does not match. */
		term_matched(c, false);
		return false;
	}
	i_unreached();
}

static void mx_next(struct spf_check *c)
{
	if (c->name_idx >= c->name_count) {
		term_matched(c, false);
		return;
	}
	c->step = STEP_MX_ADDR;
	lookup_addr(c, c->names[c->name_idx]);
}

static void ptr_next(struct spf_check *c)
{
	/* RFC 7208 5.5: only names that are the target-name or below it
	   can match, so only those are validated. */
	while (c->name_idx < c->name_count &&
	       !name_is_or_under(c->names[c->name_idx], c->target))
		c->name_idx++;
	if (c->name_idx >= c->name_count) {
		term_matched(c, false);
		return;
	}
	c->step = STEP_PTR_ADDR;
	lookup_addr(c, c->names[c->name_idx]);
}

static void step_exp_start(struct spf_check *c)
{
	const char *name;

	switch (expand(c, c->frame->rec->exp, strlen(c->frame->rec->exp), false,
		       true, &name)) {
	case EXPAND_OK:
		c->step = STEP_EXP;
		lookup_txt(c, name);
		return;
	case EXPAND_WAIT:
		return;
	case EXPAND_ERROR:
		break;
	}
	c->finished = true;
}

static void step_exp(struct spf_check *c)
{
	/* RFC 7208 6.2: "If there are any DNS processing errors (any RCODE
	   other than 0), or if no records are returned, or if more than one
	   record is returned, or if there are syntax errors in the
	   explanation string, then proceed as if no "exp" modifier was
	   given." */
	c->finished = true;
	if (c->ans.status != DNS_STATUS_OK || c->ans.count != 1)
		return;
	for (size_t i = 0; i < c->ans.lens[0]; i++) {
		unsigned char ch = (unsigned char)c->ans.strs[0][i];

		/* RFC 7208 6.2: the explanation is 7-bit ASCII */
		if (ch < 0x20 || ch > 0x7e)
			return;
	}
	if (!spf_macro_check(c->ans.strs[0], c->ans.lens[0], true))
		return;
	c->exp_text = c->ans.strs[0];
	c->finished = false;
	c->step = STEP_EXP_TEXT;
}

static void step_exp_text(struct spf_check *c)
{
	const char *text;

	switch (expand(c, c->exp_text, strlen(c->exp_text), true, false,
		       &text)) {
	case EXPAND_OK:
		c->outcome.explanation = text;
		break;
	case EXPAND_WAIT:
		return;
	case EXPAND_ERROR:
		break;
	}
	c->finished = true;
}

static void main_step(struct spf_check *c)
{
	const struct spf_term *term;

	switch (c->step) {
	case STEP_RECORD:
		step_record(c);
		return;
	case STEP_TERMS:
		step_terms(c);
		return;
	case STEP_A:
		term = &c->frame->rec->terms[c->frame->term];
		if (mech_answer(c, true))
			term_matched(c, addrs_match(c, term));
		return;
	case STEP_MX:
		if (!mech_answer(c, true))
			return;
		if (c->ans.count > SPF_MX_MAX) {
			/* RFC 7208 4.6.4: more than 10 MX names: the "mx"
			   mechanism MUST produce a "permerror" result. */
			spf_done(c, SPF_PERMERROR,
				 "more than 10 MX records (RFC 7208 4.6.4)");
			return;
		}
		c->names = c->ans.strs;
		c->name_count = c->ans.count;
		c->name_idx = 0;
		mx_next(c);
		return;
	case STEP_MX_ADDR:
		term = &c->frame->rec->terms[c->frame->term];
		if (c->ans.status == DNS_STATUS_TEMPFAIL) {
			spf_done(c, SPF_TEMPERROR,
				 p_strdup_printf(c->pool,
						 "DNS error looking up %s",
						 c->names[c->name_idx]));
			return;
		}
		if (c->ans.status == DNS_STATUS_OK && addrs_match(c, term)) {
			term_matched(c, true);
			return;
		}
		c->name_idx++;
		mx_next(c);
		return;
	case STEP_PTR:
		/* RFC 7208 5.5: "If a DNS error occurs while doing the PTR RR
		   lookup, then this mechanism fails to match." */
		if (c->ans.status != DNS_STATUS_OK || c->ans.count == 0) {
			if (status_void(c->ans.status) && !count_void(c))
				return;
			term_matched(c, false);
			return;
		}
		/* RFC 7208 4.6.4: "all records other than the first 10 MUST
		   be ignored" */
		c->names = c->ans.strs;
		c->name_count =
			c->ans.count > SPF_PTR_MAX ? SPF_PTR_MAX : c->ans.count;
		c->name_idx = 0;
		ptr_next(c);
		return;
	case STEP_PTR_ADDR:
		/* RFC 7208 5.5: "If a DNS error occurs while doing an A RR
		   lookup, then that domain name is skipped". */
		if (c->ans.status == DNS_STATUS_OK && p_has_ip(c)) {
			term_matched(c, true);
			return;
		}
		c->name_idx++;
		ptr_next(c);
		return;
	case STEP_EXISTS:
		if (mech_answer(c, true))
			term_matched(c, true);
		return;
	case STEP_EXP_START:
		step_exp_start(c);
		return;
	case STEP_EXP:
		step_exp(c);
		return;
	case STEP_EXP_TEXT:
		step_exp_text(c);
		return;
	case STEP_DEFERRED:
		c->finished = true;
		return;
	}
	i_unreached();
}

static void spf_check_free(struct spf_check *c)
{
	pool_t pool = c->pool;

	pool_unref(&pool);
}

static void spf_continue(struct spf_check *c)
{
	while (c->lookup == NULL && !c->finished) {
		if (c->p_state == P_PTR || c->p_state == P_ADDR)
			p_step(c);
		else
			main_step(c);
	}
	if (c->finished) {
		c->cb(c->context, &c->outcome);
		spf_check_free(c);
	}
}

/* ---- start ---- */

/* RFC 7208 4.3: "If the <domain> is malformed (e.g., label longer than 63
   characters, zero-length label not at the end, etc.) or is not a multi-
   label domain name, [...] check_host() immediately returns the result
   "none"." */
static bool domain_ok(const char *domain)
{
	size_t len = strlen(domain);
	const char *dot = strchr(domain, '.');

	if (!dns_name_is_valid(domain))
		return false;
	return dot != NULL && dot != domain && (size_t)(dot - domain) < len - 1;
}

static void set_address(struct spf_check *c, const struct spf_request *req)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0,    0,
					    0, 0, 0, 0, 0xff, 0xff };
	char text[INET6_ADDRSTRLEN];
	static const char hex[] = "0123456789ABCDEF";
	struct buf nibbles = BUF_INIT;

	/* RFC 7208 5: an IPv4-mapped IPv6 address (RFC 4291 2.5.5.2) is
	   evaluated as IPv4. */
	if (req->family == AF_INET6 && memcmp(req->addr, mapped, 12) == 0) {
		c->v6 = false;
		memcpy(c->ip, req->addr + 12, 4);
	} else {
		c->v6 = req->family == AF_INET6;
		memcpy(c->ip, req->addr, c->v6 ? 16 : 4);
	}
	(void)inet_ntop(c->v6 ? AF_INET6 : AF_INET, c->ip, text, sizeof(text));
	/* RFC 7208 7.3: %{c} is the address in its usual form (RFC 5952 for
	   IPv6), %{i} dotted-quad or 32 dot-separated nibbles. */
	c->vars.c = p_strdup(c->pool, text);
	if (!c->v6) {
		c->vars.i = c->vars.c;
		c->vars.v = "in-addr";
		return;
	}
	for (unsigned int i = 0; i < 16; i++) {
		if (i > 0)
			buf_append_c(&nibbles, '.');
		buf_append_c(&nibbles, (uint8_t)hex[c->ip[i] >> 4]);
		buf_append_c(&nibbles, '.');
		buf_append_c(&nibbles, (uint8_t)hex[c->ip[i] & 0xf]);
	}
	c->vars.i = p_strdup(c->pool, buf_cstr(&nibbles));
	c->vars.v = "ip6";
	buf_free(&nibbles);
}

struct spf_check *spf_check_start(struct auth_dns *dns,
				  const struct spf_request *req,
				  spf_callback_t *cb, void *context)
{
	pool_t pool = pool_create("spf check", 4096);
	struct spf_check *c = p_new(pool, struct spf_check, 1);
	const char *helo = req->helo == NULL ? "" : req->helo;
	const char *sender = req->sender == NULL ? "" : req->sender;
	const char *local, *domain, *at;
	char *lower;

	c->pool = pool;
	c->dns = dns;
	c->cb = cb;
	c->context = context;
	c->outcome.identity = req->identity;

	if (req->identity == SPF_IDENTITY_HELO || sender[0] == '\0') {
		/* RFC 7208 2.3, 2.4: the HELO identity, and the null
		   reverse-path as "postmaster@" + HELO. */
		local = "postmaster";
		domain = helo;
	} else if ((at = strrchr(sender, '@')) == NULL) {
		local = "postmaster";
		domain = sender;
	} else {
		/* RFC 7208 4.3: "If the <sender> has no local-part,
		   substitute the string "postmaster" for the local-part." */
		local = at == sender ? "postmaster"
				     : p_strndup(pool, sender,
						 (size_t)(at - sender));
		domain = at + 1;
	}
	lower = p_strdup(pool, domain);
	if (lower[0] != '\0' && lower[strlen(lower) - 1] == '.')
		lower[strlen(lower) - 1] = '\0';
	for (char *p = lower; *p != '\0'; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	c->outcome.domain = lower;
	c->outcome.sender = p_strdup_printf(pool, "%s@%s", local, domain);
	c->vars.s = c->outcome.sender;
	c->vars.l = local;
	c->vars.o = domain;
	c->vars.h = helo;
	c->vars.r = req->receiver == NULL || req->receiver[0] == '\0'
			    ? "unknown"
			    : req->receiver;
	c->vars.t = p_strdup_printf(pool, "%lld", (long long)time(NULL));

	if (req->family != AF_INET && req->family != AF_INET6) {
		c->outcome.result = SPF_NONE;
		c->outcome.reason = "no client address";
	} else {
		set_address(c, req);
		if (!domain_ok(domain)) {
			c->outcome.result = SPF_NONE;
			c->outcome.reason =
				p_strdup_printf(pool,
						"'%s' is not a valid domain "
						"name (RFC 7208 4.3)",
						domain);
		} else {
			c->frame = p_new(pool, struct spf_frame, 1);
			c->frame->domain = domain;
			fetch_record(c);
			return c;
		}
	}
	/* The callback must not run from here: defer it through a lookup
	   the resolver refuses without a query (auth-dns.h). */
	c->step = STEP_DEFERRED;
	lookup_txt(c, "..");
	return c;
}

void spf_check_cancel(struct spf_check **_check)
{
	struct spf_check *c = *_check;

	*_check = NULL;
	if (c == NULL)
		return;
	c->dns->cancel(c->dns, &c->lookup);
	spf_check_free(c);
}
