/* front-mailauth.c - inbound SPF, DKIM, ARC and DMARC on port 25, the
   Authentication-Results field and the policy (front-mailauth.h). The
   evaluators are lib-auth's, I/O-free over struct auth_dns; this file
   gives them the front's resolver, copies their results (valid during
   their callbacks only) into the check's pool, bounds the whole by
   auth_timeout and decides. */

#include "lib.h"
#include "buf.h"
#include "ioloop.h"
#include "log.h"
#include "pool.h"
#include "dns.h"
#include "auth-dns.h"
#include "authres.h"
#include "dkim.h"
#include "dmarc.h"
#include "spf.h"
#include "arc.h"
#include "front-mailauth.h"
#include "front-dmarcrpt.h"
#include "front-private.h"
#include "front-queue.h"

#include <arpa/inet.h>
#include <stdio.h>

struct mailauth_spf {
	struct front_mailauth *auth;
	struct spf_check *check;
	struct spf_outcome out;
	bool done;
};

struct front_mailauth {
	pool_t pool;
	front_mailauth_callback_t *cb;
	void *context;
	const uint8_t *msg; /* the caller's */
	const char *client_ip;
	size_t len, prefix_len;

	struct dkim_verify *dkim_check;
	struct dmarc_check *dmarc_check;
	struct arc_verify *arc_check;
	struct arc_verify_result arc;
	bool arc_done;
	struct timeout *budget, *deliver;

	struct mailauth_spf spf_mf, spf_helo;
	struct dkim_verify_result dkim;
	bool dkim_done;
	struct dmarc_from from;
	struct dmarc_outcome dmarc;
	struct dmarc_record dmarc_record;
	bool dmarc_started, dmarc_done;
	bool finished;

	struct buf out;
	struct front_mailauth_result result;
};

static struct {
	bool initialized;
	struct dns *dns;
	struct auth_dns adns;
	psl_ctx_t *psl;
	const char *authserv_id;
} fa;

static void auth_maybe_finish(struct front_mailauth *a);

static const char *copy(pool_t pool, const char *s)
{
	return s == NULL ? NULL : p_strdup(pool, s);
}

static void mailauth_spf_copy(pool_t pool, struct spf_outcome *dst,
			      const struct spf_outcome *src)
{
	dst->result = src->result;
	dst->identity = src->identity;
	dst->domain = copy(pool, src->domain);
	dst->sender = copy(pool, src->sender);
	dst->explanation = copy(pool, src->explanation);
	dst->reason = copy(pool, src->reason);
}

/* One SPF check (MAIL FROM or HELO) and its copied outcome. */
static void spf_done(void *context, const struct spf_outcome *outcome)
{
	struct mailauth_spf *spf = context;

	spf->check = NULL;
	mailauth_spf_copy(spf->auth->pool, &spf->out, outcome);
	spf->done = true;
	auth_maybe_finish(spf->auth);
}

static void dkim_done(void *context, const struct dkim_verify_result *result)
{
	struct front_mailauth *a = context;
	struct dkim_signature_result *sigs;

	a->dkim_check = NULL;
	sigs = p_new(a->pool, struct dkim_signature_result,
		     result->count == 0 ? 1 : result->count);
	for (unsigned int i = 0; i < result->count; i++) {
		const struct dkim_signature_result *s = &result->sigs[i];

		sigs[i] = *s;
		sigs[i].domain = copy(a->pool, s->domain);
		sigs[i].selector = copy(a->pool, s->selector);
		sigs[i].identity = copy(a->pool, s->identity);
		sigs[i].algorithm = copy(a->pool, s->algorithm);
		sigs[i].reason = copy(a->pool, s->reason);
	}
	a->dkim.sigs = sigs;
	a->dkim.count = result->count;
	a->dkim_done = true;
	/* Also from within dkim_verify_start(): harmless, the callback is
	   delivered from the ioloop anyway. */
	auth_maybe_finish(a);
}

static void arc_done(void *context, const struct arc_verify_result *result)
{
	struct front_mailauth *a = context;

	a->arc_check = NULL;
	a->arc = *result;
	a->arc.reason = copy(a->pool, result->reason);
	a->arc.last_domain = copy(a->pool, result->last_domain);
	a->arc_done = true;
	auth_maybe_finish(a);
}

static void dmarc_done(void *context, const struct dmarc_outcome *outcome)
{
	struct front_mailauth *a = context;

	a->dmarc_check = NULL;
	/* RFC 7489 7.2: counted for the aggregate report (with rua=). */
	front_dmarcrpt_add(a->client_ip, outcome, &a->spf_mf.out, &a->dkim);
	a->dmarc = *outcome;
	a->dmarc.from_domain = copy(a->pool, outcome->from_domain);
	a->dmarc.policy_domain = copy(a->pool, outcome->policy_domain);
	a->dmarc.org_domain = copy(a->pool, outcome->org_domain);
	a->dmarc.dkim_domain = copy(a->pool, outcome->dkim_domain);
	a->dmarc.reason = copy(a->pool, outcome->reason);
	if (outcome->record != NULL) {
		/* Only the scalar fields are read later (A-R, reports). */
		a->dmarc_record = *outcome->record;
		a->dmarc_record.rua = NULL;
		a->dmarc_record.ruf = NULL;
		a->dmarc_record.rua_count = a->dmarc_record.ruf_count = 0;
		a->dmarc_record.fo = a->dmarc_record.rf = NULL;
		a->dmarc.record = &a->dmarc_record;
	}
	a->dmarc_done = true;
	if (a->dmarc_started)
		auth_maybe_finish(a);
}

static void auth_start_dmarc(struct front_mailauth *a)
{
	struct dmarc_request req;

	a->dmarc_started = false;
	dmarc_from_parse(a->pool, a->msg + a->prefix_len,
			 a->len - a->prefix_len, &a->from);
	memset(&req, 0, sizeof(req));
	req.from = &a->from;
	req.spf = &a->spf_mf.out;
	req.dkim = &a->dkim;
	req.psl = fa.psl;
	req.tree_walk = strcmp(front_global->set->dmarc_tree_walk, "on") == 0;
	a->dmarc_check = dmarc_check_start(&fa.adns, &req, dmarc_done, a);
	a->dmarc_started = true;
	/* A synchronous outcome (no From domain) is handled by the
	   caller's next auth_maybe_finish(). */
}

static const char *auth_summary(struct front_mailauth *a)
{
	struct buf b = BUF_INIT;
	const char *s;

	buf_printf(&b, "spf=%s", spf_result_name(a->spf_mf.out.result));
	buf_printf(&b, " spf_helo=%s", spf_result_name(a->spf_helo.out.result));
	if (a->dkim.count == 0)
		buf_append_str(&b, " dkim=none");
	for (unsigned int i = 0; i < a->dkim.count; i++) {
		buf_printf(&b, " dkim=%s",
			   dkim_result_name(a->dkim.sigs[i].result));
		buf_log_kv(&b, "d", a->dkim.sigs[i].domain);
	}
	buf_printf(&b, " dmarc=%s", dmarc_result_name(a->dmarc.result));
	if (a->dmarc.from_domain != NULL)
		buf_log_kv(&b, "from_domain", a->dmarc.from_domain);
	buf_printf(&b, " dis=%s", dmarc_policy_name(a->dmarc.disposition));
	s = p_strdup(a->pool, buf_cstr(&b));
	buf_free(&b);
	return s;
}

/* front-mailauth.h: what the results mean for the message. */
static void auth_decide(struct front_mailauth *a)
{
	const struct marmot_settings *set = front_global->set;
	struct front_mailauth_result *r = &a->result;

	r->action = FRONT_MAILAUTH_ACCEPT;
	if (strcmp(set->dmarc_enforce, "on") == 0 &&
	    (a->dmarc.result == DMARC_RESULT_FAIL ||
	     a->dmarc.result == DMARC_RESULT_PERMERROR)) {
		if (a->dmarc.disposition == DMARC_POLICY_REJECT) {
			/* RFC 7489 10.3 / 7.3: 550 5.7.1 on p=reject. */
			r->action = FRONT_MAILAUTH_REJECT;
			r->reply = p_strdup_printf(
				a->pool,
				"5.7.1 Rejected by the DMARC policy of %s",
				a->dmarc.from_domain != NULL
					? a->dmarc.from_domain
					: "the From domain");
			return;
		}
		if (a->dmarc.disposition == DMARC_POLICY_QUARANTINE)
			r->action = FRONT_MAILAUTH_JUNK;
	}
	if (strcmp(set->dmarc_enforce, "on") == 0 &&
	    a->dmarc.result == DMARC_RESULT_TEMPERROR &&
	    a->dmarc.policy == DMARC_POLICY_REJECT && a->dmarc.record != NULL) {
		r->action = FRONT_MAILAUTH_TEMPFAIL;
		r->reply = "4.7.5 DMARC could not be checked now, try again "
			   "later";
		return;
	}
	if (strcmp(set->spf_reject_fail, "on") == 0 &&
	    a->spf_mf.out.result == SPF_FAIL) {
		/* RFC 7372 3.2: X.7.23 SPF validation failed. */
		r->action = FRONT_MAILAUTH_REJECT;
		r->reply = "5.7.23 SPF validation failed";
	}
}

static void auth_build_message(struct front_mailauth *a)
{
	struct authres_input in;
	const char *results, *field;
	unsigned int removed;

	memset(&in, 0, sizeof(in));
	in.spf_mailfrom = &a->spf_mf.out;
	in.spf_helo = &a->spf_helo.out;
	in.dkim = &a->dkim;
	in.dmarc = &a->dmarc;
	in.arc = &a->arc;
	results = authres_results(a->pool, &in);
	field = authres_field(a->pool, fa.authserv_id, results);
	a->result.authserv_id = fa.authserv_id;
	a->result.results = results;
	a->result.arc_cv = (int)a->arc.cv;
	buf_init(&a->out, a->len + strlen(field) + 1);
	/* Our Received: stays first (the trace block, RFC 5322 3.6.7), our
	   Authentication-Results right below it (RFC 8601 5). */
	buf_append(&a->out, a->msg, a->prefix_len);
	buf_append_str(&a->out, field);
	removed = authres_remove_ours(a->msg + a->prefix_len,
				      a->len - a->prefix_len, fa.authserv_id,
				      &a->out);
	if (removed > 0) {
		log_info(NULL, "auth.authres_removed", "count=%u", removed);
	}
	a->result.msg = buf_span(&a->out).p;
	a->result.len = a->out.used;
}

static void auth_deliver(void *context)
{
	struct front_mailauth *a = context;

	timeout_remove(&a->deliver);
	a->cb(a->context, &a->result);
}

static void auth_finish(struct front_mailauth *a)
{
	a->finished = true;
	timeout_remove(&a->budget);
	auth_build_message(a);
	auth_decide(a);
	a->result.summary = auth_summary(a);
	/* Always from the ioloop, never inside front_mailauth_start(). */
	a->deliver = timeout_add(front_global->ioloop, 0, auth_deliver, a);
}

static void auth_maybe_finish(struct front_mailauth *a)
{
	if (a->finished)
		return;
	if (!a->spf_mf.done || !a->spf_helo.done || !a->dkim_done)
		return;
	if (!a->arc_done)
		return;
	if (!a->dmarc_started && !a->dmarc_done) {
		auth_start_dmarc(a);
		if (!a->dmarc_done)
			return;
	}
	if (!a->dmarc_done)
		return;
	auth_finish(a);
}

/* What is still running becomes temperror, and the check finishes. */
static void auth_give_up(struct front_mailauth *a, const char *reason)
{
	spf_check_cancel(&a->spf_mf.check);
	spf_check_cancel(&a->spf_helo.check);
	dkim_verify_cancel(&a->dkim_check);
	if (!a->spf_mf.done) {
		a->spf_mf.out.result = SPF_TEMPERROR;
		a->spf_mf.out.reason = reason;
		a->spf_mf.done = true;
	}
	if (!a->spf_helo.done) {
		a->spf_helo.out.result = SPF_TEMPERROR;
		a->spf_helo.out.reason = reason;
		a->spf_helo.done = true;
	}
	if (!a->dkim_done) {
		struct dkim_signature_result *sig =
			p_new(a->pool, struct dkim_signature_result, 1);

		sig->result = DKIM_TEMPERROR;
		sig->domain = "";
		sig->reason = reason;
		a->dkim.sigs = sig;
		a->dkim.count = 1;
		a->dkim_done = true;
	}
	if (!a->arc_done) {
		arc_verify_cancel(&a->arc_check);
		a->arc.cv = ARC_CHAIN_FAIL;
		a->arc.reason = reason;
		a->arc_done = true;
	}
	if (!a->dmarc_done) {
		dmarc_check_cancel(&a->dmarc_check);
		memset(&a->dmarc, 0, sizeof(a->dmarc));
		a->dmarc.result = DMARC_RESULT_TEMPERROR;
		a->dmarc.reason = reason;
		a->dmarc_done = true;
	}
	auth_finish(a);
}

/* The time budget (auth_timeout) ran out. */
static void auth_budget_over(void *context)
{
	struct front_mailauth *a = context;

	log_info(NULL, "auth.timeout", "budget=%us",
		 front_global->set->auth_timeout);
	auth_give_up(a, "time budget exceeded");
}

struct front_mailauth *front_mailauth_start(
	const struct front_mailauth_request *req, front_mailauth_callback_t *cb,
	void *context)
{
	const struct marmot_settings *set = front_global->set;
	struct spf_request sr;
	struct front_mailauth *a;
	pool_t pool;

	i_assert(fa.initialized);
	pool = pool_create("front auth", 4096);
	a = p_new(pool, struct front_mailauth, 1);
	a->pool = pool;
	a->cb = cb;
	a->context = context;
	a->msg = req->msg;
	a->client_ip = p_strdup(pool, req->client_ip);
	a->len = req->len;
	a->prefix_len = req->prefix_len;
	a->spf_mf.auth = a->spf_helo.auth = a;
	a->budget = timeout_add(front_global->ioloop, set->auth_timeout * 1000,
				auth_budget_over, a);
	if (fa.dns == NULL) {
		auth_give_up(a, "no resolver");
		return a;
	}

	memset(&sr, 0, sizeof(sr));
	if (inet_pton(AF_INET, req->client_ip, sr.addr) == 1) {
		sr.family = AF_INET;
	} else if (inet_pton(AF_INET6, req->client_ip, sr.addr) == 1) {
		sr.family = AF_INET6;
	}
	sr.sender = req->sender;
	sr.helo = req->helo;
	sr.receiver = set->hostname;
	if (sr.family != 0) {
		sr.identity = SPF_IDENTITY_MAILFROM;
		a->spf_mf.check =
			spf_check_start(&fa.adns, &sr, spf_done, &a->spf_mf);
		sr.identity = SPF_IDENTITY_HELO;
		a->spf_helo.check =
			spf_check_start(&fa.adns, &sr, spf_done, &a->spf_helo);
	}
	if (a->spf_mf.check == NULL) {
		/* Not an IP connection (tests over a UNIX socket):
		   nothing to check SPF against. */
		a->spf_mf.out.result = a->spf_helo.out.result = SPF_NONE;
		a->spf_mf.out.reason = a->spf_helo.out.reason = "not checked";
		a->spf_mf.done = a->spf_helo.done = true;
	}
	a->dkim_check =
		dkim_verify_start(&fa.adns, a->msg + a->prefix_len,
				  a->len - a->prefix_len, 0, dkim_done, a);
	a->arc_check = arc_verify_start(&fa.adns, a->msg + a->prefix_len,
					a->len - a->prefix_len, arc_done, a);
	auth_maybe_finish(a);
	return a;
}

void front_mailauth_free(struct front_mailauth **_a)
{
	struct front_mailauth *a = *_a;
	pool_t pool;

	*_a = NULL;
	if (a == NULL)
		return;
	spf_check_cancel(&a->spf_mf.check);
	spf_check_cancel(&a->spf_helo.check);
	dkim_verify_cancel(&a->dkim_check);
	arc_verify_cancel(&a->arc_check);
	dmarc_check_cancel(&a->dmarc_check);
	timeout_remove(&a->budget);
	timeout_remove(&a->deliver);
	buf_free(&a->out);
	pool = a->pool;
	pool_unref(&pool);
}

void front_mailauth_init(struct front *front)
{
	const struct marmot_settings *set = front->set;

	fa.dns = front_queue_dns();
	if (fa.dns == NULL) {
		log_error(NULL, "auth.no_resolver", "checks=temperror");
	} else {
		auth_dns_init_dns(&fa.adns, fa.dns);
	}
	fa.psl = psl_load_file(set->public_suffix_list);
	if (fa.psl == NULL) {
		log_warning(NULL, "auth.psl_unreadable",
			    "path=%s fallback=builtin",
			    log_value(0, set->public_suffix_list));
	}
	fa.authserv_id = strcmp(set->authserv_id, "*") != 0 ? set->authserv_id
							    : set->hostname;
	front_dmarcrpt_init(front, fa.dns, fa.psl);
	fa.initialized = true;
}

void front_mailauth_deinit(void)
{
	if (!fa.initialized)
		return;
	front_dmarcrpt_deinit();
	fa.dns = NULL; /* the queue's (front_queue_dns()) */
	if (fa.psl != NULL)
		psl_free(fa.psl);
	fa.psl = NULL;
	fa.initialized = false;
}
