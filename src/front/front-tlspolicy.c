/* front-tlspolicy.c - MTA-STS discovery, fetch and cache, and the DANE
   setup of outbound TLS connections (front-tlspolicy.h). Security
   stance: the policy comes from the network and is parsed by
   src/lib-auth/mtasts.c; the fetch follows no redirects, speaks only
   HTTPS, verifies the certificate for mta-sts.<domain>, is capped in
   size and time, and connects only to the addresses our resolver gave
   (so DNS answers come from the same validating resolver as the rest
   of delivery). The policy only ever makes delivery stricter. */

#include "lib.h"
#include "front-tlspolicy.h"
#include "front-private.h"
#include "buf.h"
#include "dns.h"
#include "fsutil.h"
#include "log.h"
#include "tls.h"
#include "worker.h"
#include "ioloop.h"
#include "queue.h"
#include "front-queue.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/rand.h>
#include <openssl/x509_vfy.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* RFC 8461 3.3: "senders SHOULD ... a timeout" - bounded here. */
#define FQ_STS_FETCH_SECS_MAX 60
#define FQ_STS_CACHE_FILE "mta-sts-cache"
#define FQ_STS_CACHE_FILE_MAX (4 * 1024 * 1024)

struct fq_tlspolicy {
	struct front *front;
	struct dns *dns;
	struct tls_ctx *verify_ctx;
	struct tls_ctx *dane_ctx;
	struct worker_pool *workers;
	struct mtasts_cache *cache;
	char *ca_file; /* NULL: system store */
	char *cache_path;
	bool sts_enabled;
	unsigned int fetch_secs;
	struct fq_sts_lookup *lookups;
	/* TLS-RPT: the current period's counts, its start, the timer. */
	bool tlsrpt_enabled;
	struct tlsrpt_store *tlsrpt;
	time_t tlsrpt_start;
	struct timeout *tlsrpt_timer;
	struct fq_tlsrpt_send *sends;
};

/* A finished period, until every domain's report has been sent. */
struct fq_tlsrpt_period {
	struct tlsrpt_store *store;
	time_t start, end;
	unsigned int refs;
};

/* One report being sent: the _smtp._tls lookup of a domain of a
   finished period. */
struct fq_tlsrpt_send {
	struct fq_tlsrpt_send *next;
	struct fq_tlsrpt_period *period;
	char *domain;
	struct dns_lookup *lookup;
};

struct fq_sts_fetch;

struct fq_sts_lookup {
	struct fq_sts_lookup *prev, *next;
	char *domain;
	char id[MTASTS_ID_MAX + 1];
	fq_sts_callback_t *cb;
	void *context;
	struct dns_lookup *dns_lookup;
	struct fq_sts_fetch *fetch;
};

/* One fetch on a worker thread; owned by the worker until done() runs
   (a cancelled lookup only detaches from it). */
struct fq_sts_fetch {
	struct fq_sts_lookup *lookup; /* NULL once cancelled */
	char *url;
	char *resolve; /* "host:443:addr,addr" */
	char *ca_file;
	unsigned int secs;
	struct buf body;
	bool too_large;
	long http_code;
	char *content_type;
	char error[CURL_ERROR_SIZE];
};

static struct fq_tlspolicy *tp;

static time_t fq_wall_now(void)
{
	return time(NULL);
}

/* ---- cache file ---- */

static void fq_sts_cache_load(void)
{
	int fd = open(tp->cache_path, O_RDONLY | O_CLOEXEC);
	struct buf text = BUF_INIT;
	struct stat st;

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && st.st_size > 0 &&
	    st.st_size < FQ_STS_CACHE_FILE_MAX) {
		size_t size = (size_t)st.st_size;
		uint8_t *p = buf_reserve(&text, size);
		ssize_t n = read(fd, p, size);

		if (n > 0) {
			buf_commit(&text, (size_t)n);
			(void)mtasts_cache_read(tp->cache, buf_cstr(&text),
						text.used, fq_wall_now());
		}
	}
	(void)close(fd);
	buf_free(&text);
}

static void fq_sts_cache_save(void)
{
	struct buf text = BUF_INIT;
	char *tmp = i_strdup_printf("%s.tmp", tp->cache_path);
	int fd;

	mtasts_cache_write(tp->cache, &text);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write_full(fd, buf_span(&text).p, text.used) < 0 ||
	    close(fd) < 0 || rename(tmp, tp->cache_path) < 0) {
		/* Only a cache: the policies stay in memory. */
		log_warning(NULL, "queue.mta_sts.cache_write",
			    "path=%s error=%s", log_value(0, tmp),
			    strerror(errno));
		(void)unlink(tmp);
	}
	buf_free(&text);
	i_free(tmp);
}

static void fq_tlsrpt_tick(void *context);
static void fq_tlsrpt_send_free(struct fq_tlsrpt_send *s);

/* ---- init ---- */

int fq_tlspolicy_init(struct front *front, struct dns *dns,
		      const char **error_r)
{
	const struct marmot_settings *set = front->set;

	i_assert(tp == NULL);
	if (strcmp(set->queue_tls_ca, "system") != 0 &&
	    set->queue_tls_ca[0] != '/') {
		*error_r = "queue_tls_ca must be system or an absolute path";
		return -1;
	}
	tp = i_new(struct fq_tlspolicy, 1);
	tp->front = front;
	tp->dns = dns;
	tp->sts_enabled = strcmp(set->queue_mta_sts, "on") == 0 && dns != NULL;
	if (strcmp(set->queue_tls_ca, "system") != 0)
		tp->ca_file = i_strdup(set->queue_tls_ca);
	tp->fetch_secs = set->queue_timeout < FQ_STS_FETCH_SECS_MAX
				 ? set->queue_timeout
				 : FQ_STS_FETCH_SECS_MAX;
	tp->verify_ctx = tls_ctx_client_create_ca(tp->ca_file, error_r);
	if (tp->verify_ctx == NULL)
		goto fail;
	tp->dane_ctx = tls_ctx_client_create_dane(error_r);
	if (tp->dane_ctx == NULL)
		goto fail;
	if (tp->sts_enabled) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			*error_r = "curl_global_init() failed";
			goto fail;
		}
		tp->workers = worker_pool_create(front->ioloop, 2, "mta-sts");
	}
	tp->cache = mtasts_cache_create();
	tp->cache_path =
		i_strdup_printf("%s/" FQ_STS_CACHE_FILE, set->data_dir);
	fq_sts_cache_load();
	tp->tlsrpt_enabled =
		strcmp(set->queue_tlsrpt, "on") == 0 && dns != NULL;
	if (tp->tlsrpt_enabled) {
		time_t now = fq_wall_now();
		unsigned int tick = set->queue_tlsrpt_interval < 60
					    ? set->queue_tlsrpt_interval
					    : 60;

		tp->tlsrpt = tlsrpt_store_create();
		tp->tlsrpt_start = now - now % set->queue_tlsrpt_interval;
		tp->tlsrpt_timer = timeout_add(front->ioloop, tick * 1000,
					       fq_tlsrpt_tick, NULL);
	}
	return 0;
fail:
	tls_ctx_unref(&tp->verify_ctx);
	tls_ctx_unref(&tp->dane_ctx);
	i_free(tp->ca_file);
	i_free(tp);
	return -1;
}

void fq_tlspolicy_deinit(void)
{
	if (tp == NULL)
		return;
	while (tp->lookups != NULL) {
		struct fq_sts_lookup *l = tp->lookups;

		fq_sts_lookup_cancel(&l);
	}
	/* Waits for running fetches; their done() frees them. */
	worker_pool_destroy(&tp->workers);
	/* The current period's counts are lost (see doc/architecture.md);
	   reports still being looked up are dropped. */
	while (tp->sends != NULL)
		fq_tlsrpt_send_free(tp->sends);
	timeout_remove(&tp->tlsrpt_timer);
	tlsrpt_store_destroy(&tp->tlsrpt);
	if (tp->sts_enabled)
		curl_global_cleanup();
	mtasts_cache_destroy(&tp->cache);
	tls_ctx_unref(&tp->verify_ctx);
	tls_ctx_unref(&tp->dane_ctx);
	i_free(tp->ca_file);
	i_free(tp->cache_path);
	i_free(tp);
}

struct tls_ctx *fq_tlspolicy_verify_ctx(void)
{
	return tp->verify_ctx;
}

struct tls_ctx *fq_tlspolicy_dane_ctx(void)
{
	return tp->dane_ctx;
}

bool fq_tlspolicy_sts_enabled(void)
{
	return tp != NULL && tp->sts_enabled;
}

/* ---- lookups ---- */

static void fq_sts_lookup_free(struct fq_sts_lookup *l)
{
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		tp->lookups = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	i_free(l->domain);
	i_free(l);
}

/* Ends the lookup with the cached policy (if any is still valid). */
static void fq_sts_finish_cached(struct fq_sts_lookup *l, const char *why)
{
	const char *id;
	const struct mtasts_policy *policy =
		mtasts_cache_lookup(tp->cache, l->domain, fq_wall_now(), &id);

	log_info(NULL, "queue.mta_sts.policy", "domain=%s policy=%s why=%s",
		 log_value(0, l->domain),
		 policy == NULL ? "none" : mtasts_mode_name(policy->mode),
		 log_value(1, why));
	l->cb(l->context, policy);
	fq_sts_lookup_free(l);
}

static size_t fq_sts_write(char *ptr, size_t size, size_t nmemb, void *ctx)
{
	struct fq_sts_fetch *f = ctx;
	size_t n = size * nmemb;

	if (f->body.used + n > MTASTS_POLICY_MAX_SIZE) {
		f->too_large = true;
		return 0; /* aborts the transfer */
	}
	buf_append(&f->body, ptr, n);
	return n;
}

/* Worker thread: the HTTPS GET (RFC 8461 3.3). */
static void fq_sts_fetch_work(void *context)
{
	struct fq_sts_fetch *f = context;
	struct curl_slist *resolve = NULL;
	CURL *curl = curl_easy_init();
	CURLcode ret;
	char *ctype = NULL;

	if (curl == NULL) {
		snprintf(f->error, sizeof(f->error), "curl_easy_init failed");
		return;
	}
	resolve = curl_slist_append(NULL, f->resolve);
	(void)curl_easy_setopt(curl, CURLOPT_URL, f->url);
	(void)curl_easy_setopt(curl, CURLOPT_RESOLVE, resolve);
	(void)curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	/* RFC 8461 3.3: "HTTP 3xx redirects MUST NOT be followed". */
	(void)curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	(void)curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	(void)curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (f->ca_file != NULL)
		(void)curl_easy_setopt(curl, CURLOPT_CAINFO, f->ca_file);
	(void)curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)f->secs);
	(void)curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(curl, CURLOPT_USERAGENT,
			       "Marmot/" MARMOT_VERSION);
	(void)curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, fq_sts_write);
	(void)curl_easy_setopt(curl, CURLOPT_WRITEDATA, f);
	(void)curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, f->error);
	ret = curl_easy_perform(curl);
	if (ret != CURLE_OK) {
		if (f->too_large)
			snprintf(f->error, sizeof(f->error),
				 "policy larger than %u bytes",
				 MTASTS_POLICY_MAX_SIZE);
		else if (f->error[0] == '\0')
			snprintf(f->error, sizeof(f->error), "%s",
				 curl_easy_strerror(ret));
	} else {
		(void)curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE,
					&f->http_code);
		if (curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ctype) ==
			    CURLE_OK &&
		    ctype != NULL)
			f->content_type = i_strdup(ctype);
	}
	curl_easy_cleanup(curl);
	curl_slist_free_all(resolve);
}

static void fq_sts_fetch_free(struct fq_sts_fetch *f)
{
	i_free(f->url);
	i_free(f->resolve);
	i_free(f->ca_file);
	i_free(f->content_type);
	buf_free(&f->body);
	i_free(f);
}

/* Loop thread: the fetch ended. */
static void fq_sts_fetch_done(void *context)
{
	struct fq_sts_fetch *f = context;
	struct fq_sts_lookup *l = f->lookup;
	struct mtasts_policy policy;
	const char *error = NULL;
	pool_t pool;

	if (l == NULL || tp == NULL) {
		fq_sts_fetch_free(f);
		return;
	}
	l->fetch = NULL;
	if (f->error[0] != '\0') {
		error = f->error;
	} else if (f->http_code != 200) {
		/* RFC 8461 3.3: only 200 counts. */
		error = "HTTP status is not 200";
	} else if (f->content_type == NULL ||
		   strncasecmp(f->content_type, "text/plain", 10) != 0) {
		/* RFC 8461 3.2: the policy is text/plain. */
		error = "Content-Type is not text/plain";
	}
	pool = pool_create("mta-sts fetch", 512);
	if (error == NULL &&
	    mtasts_policy_parse(pool, buf_span(&f->body).p, f->body.used,
				&policy, &error) == 0) {
		mtasts_cache_store(tp->cache, l->domain, l->id, &policy,
				   fq_wall_now());
		fq_sts_cache_save();
		log_info(NULL, "queue.mta_sts.fetched",
			 "domain=%s id=%s mode=%s max_age=%u mx=%u",
			 log_value(0, l->domain), l->id,
			 mtasts_mode_name(policy.mode), policy.max_age,
			 policy.mx_count);
		pool_unref(&pool);
		fq_sts_fetch_free(f);
		fq_sts_finish_cached(l, "fetched");
		return;
	}
	/* RFC 8461 3.3: without a policy, go on with a cached one, or as
	   if the domain had none. */
	log_warning(NULL, "queue.mta_sts.fetch_failed", "domain=%s error=%s",
		    log_value(0, l->domain), log_value(1, error));
	pool_unref(&pool);
	fq_sts_fetch_free(f);
	fq_sts_finish_cached(l, "fetch failed");
}

static void fq_sts_host_resolved(void *context,
				 const struct dns_host_result *result)
{
	struct fq_sts_lookup *l = context;
	struct fq_sts_fetch *f;
	struct buf resolve = BUF_INIT;

	l->dns_lookup = NULL;
	if (result->info.status != DNS_STATUS_OK || result->count == 0) {
		fq_sts_finish_cached(l, "no address for mta-sts host");
		return;
	}
	f = i_new(struct fq_sts_fetch, 1);
	f->lookup = l;
	/* RFC 8461 3.3: https://mta-sts.<domain>/.well-known/mta-sts.txt */
	f->url = i_strdup_printf("https://mta-sts.%s/.well-known/mta-sts.txt",
				 l->domain);
	buf_printf(&resolve, "mta-sts.%s:443:", l->domain);
	for (unsigned int i = 0; i < result->count && i < 8; i++) {
		if (result->addrs[i].family == AF_INET6)
			buf_printf(&resolve, "%s[%s]", i > 0 ? "," : "",
				   result->addrs[i].text);
		else
			buf_printf(&resolve, "%s%s", i > 0 ? "," : "",
				   result->addrs[i].text);
	}
	f->resolve = i_strdup(buf_cstr(&resolve));
	buf_free(&resolve);
	f->ca_file = i_strdup(tp->ca_file);
	f->secs = tp->fetch_secs;
	l->fetch = f;
	worker_pool_submit(tp->workers, fq_sts_fetch_work, fq_sts_fetch_done,
			   f);
}

static void fq_sts_txt_resolved(void *context,
				const struct dns_txt_result *result)
{
	struct fq_sts_lookup *l = context;
	const struct mtasts_policy *cached;
	const char *error = "no _mta-sts record", *cached_id;
	char *host;
	int ret = 0;

	l->dns_lookup = NULL;
	if (result->info.status == DNS_STATUS_OK)
		ret = mtasts_txt_select(result->txt, result->count, l->id,
					&error);
	else if (result->info.status == DNS_STATUS_TEMPFAIL)
		error = "TXT lookup failed";
	if (ret <= 0) {
		/* RFC 8461 5.1: a cached policy stays in force until it
		   expires, whatever DNS says now. */
		fq_sts_finish_cached(l, error);
		return;
	}
	cached = mtasts_cache_lookup(tp->cache, l->domain, fq_wall_now(),
				     &cached_id);
	if (cached != NULL && strcmp(cached_id, l->id) == 0) {
		/* RFC 8461 5.1: the same id: the cached policy is current. */
		fq_sts_finish_cached(l, "cached");
		return;
	}
	host = i_strdup_printf("mta-sts.%s", l->domain);
	l->dns_lookup = dns_lookup_host(tp->dns, host, fq_sts_host_resolved, l);
	i_free(host);
}

struct fq_sts_lookup *fq_sts_lookup(const char *domain, fq_sts_callback_t *cb,
				    void *context)
{
	struct fq_sts_lookup *l = i_new(struct fq_sts_lookup, 1);
	char *name;

	i_assert(tp != NULL && tp->sts_enabled);
	l->domain = i_strdup(domain);
	l->cb = cb;
	l->context = context;
	l->next = tp->lookups;
	if (tp->lookups != NULL)
		tp->lookups->prev = l;
	tp->lookups = l;
	/* RFC 8461 3.1: the TXT record at _mta-sts.<domain>. */
	name = i_strdup_printf("_mta-sts.%s", domain);
	l->dns_lookup = dns_lookup_txt(tp->dns, name, fq_sts_txt_resolved, l);
	i_free(name);
	return l;
}

void fq_sts_lookup_cancel(struct fq_sts_lookup **_l)
{
	struct fq_sts_lookup *l = *_l;

	if (l == NULL)
		return;
	*_l = NULL;
	dns_lookup_cancel(&l->dns_lookup);
	if (l->fetch != NULL)
		l->fetch->lookup = NULL;
	fq_sts_lookup_free(l);
}

/* ---- DANE ---- */

int fq_dane_ssl_setup(struct ssl_st *ssl, void *context, const char **error_r)
{
	const struct fq_dane_records *d = context;
	int usable = 0;

	/* RFC 7672 2.2.3: the TLSA base domain is the MX host name. */
	if (SSL_dane_enable(ssl, d->host) <= 0) {
		*error_r = tls_last_error();
		return -1;
	}
	/* RFC 7672 3.2.2: for DANE-TA(2), the certificate must name the
	   MX host (set by the caller as SNI) or the next-hop domain. */
	if (d->domain != NULL && SSL_add1_host(ssl, d->domain) != 1) {
		*error_r = tls_last_error();
		return -1;
	}
	for (unsigned int i = 0; i < d->count; i++) {
		if (SSL_dane_tlsa_add(ssl, d->rec[i].usage, d->rec[i].selector,
				      d->rec[i].mtype, d->rec[i].data,
				      d->rec[i].len) > 0)
			usable++;
	}
	if (usable == 0) {
		/* Nothing OpenSSL can match: the handshake would fail
		   anyway; say why. */
		*error_r = "no TLSA record usable by OpenSSL";
		return -1;
	}
	return 0;
}

/* ---- TLS-RPT (RFC 8460) ---- */

#define FQ_TLSRPT_STRINGS_MAX 70

/* The report's view of the policy a session ran under; strings in
   pool. Returns false when there is no policy to report on. */
static bool fq_tlsrpt_policy(pool_t pool, const char *domain,
			     const struct fq_dane_records *dane,
			     const struct mtasts_policy *sts,
			     struct tlsrpt_policy *p_r)
{
	const char **strings = p_new(pool, const char *, FQ_TLSRPT_STRINGS_MAX);
	unsigned int n = 0;

	memset(p_r, 0, sizeof(*p_r));
	p_r->domain = domain;
	p_r->strings = strings;
	if (dane != NULL) {
		/* RFC 8460 4.4: for tlsa, the records in presentation
		   form. */
		p_r->type = TLSRPT_POLICY_TLSA;
		for (unsigned int i = 0; i < dane->count; i++) {
			struct buf b = BUF_INIT;

			buf_printf(&b, "%u %u %u ", dane->rec[i].usage,
				   dane->rec[i].selector, dane->rec[i].mtype);
			for (size_t j = 0; j < dane->rec[i].len; j++)
				buf_printf(&b, "%02x", dane->rec[i].data[j]);
			strings[n++] = p_strdup(pool, buf_cstr(&b));
			buf_free(&b);
		}
	} else if (sts != NULL) {
		const char *text, *error;

		/* RFC 8460 4.4: for sts, the policy's lines. */
		p_r->type = TLSRPT_POLICY_STS;
		if (mtasts_policy_format(pool, sts, &text, &error) == 0) {
			for (const char *s = text;
			     *s != '\0' && n < FQ_TLSRPT_STRINGS_MAX;) {
				const char *e = strstr(s, "\r\n");

				if (e == NULL)
					e = s + strlen(s);
				strings[n++] = p_strndup(pool, s, e - s);
				s = *e == '\0' ? e : e + 2;
			}
		}
		p_r->mx = sts->mx;
		p_r->mx_count = sts->mx_count;
	} else {
		return false;
	}
	p_r->string_count = n;
	return true;
}

static void fq_tlsrpt_count(const char *domain,
			    const struct fq_dane_records *dane,
			    const struct mtasts_policy *sts, bool ok,
			    enum tlsrpt_result result, const char *mx,
			    const char *ip, const char *code)
{
	struct tlsrpt_policy p;
	pool_t pool;

	if (tp == NULL || tp->tlsrpt == NULL)
		return;
	pool = pool_create("tlsrpt", 1024);
	if (fq_tlsrpt_policy(pool, domain, dane, sts, &p)) {
		if (ok)
			tlsrpt_add_success(tp->tlsrpt, &p);
		else
			tlsrpt_add_failure(tp->tlsrpt, &p, result, NULL, mx, ip,
					   code);
	}
	pool_unref(&pool);
}

void fq_tlsrpt_success(const char *domain, const struct fq_dane_records *dane,
		       const struct mtasts_policy *sts)
{
	fq_tlsrpt_count(domain, dane, sts, true,
			TLSRPT_RESULT_VALIDATION_FAILURE, NULL, NULL, NULL);
}

void fq_tlsrpt_failure(const char *domain, const struct fq_dane_records *dane,
		       const struct mtasts_policy *sts,
		       enum tlsrpt_result result, const char *mx,
		       const char *ip, const char *code)
{
	fq_tlsrpt_count(domain, dane, sts, false, result, mx, ip, code);
}

enum tlsrpt_result fq_tlsrpt_verify_result(long verify, bool dane)
{
	switch (verify) {
	case X509_V_ERR_HOSTNAME_MISMATCH:
		return TLSRPT_RESULT_CERTIFICATE_HOST_MISMATCH;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return TLSRPT_RESULT_CERTIFICATE_EXPIRED;
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
		/* RFC 8460 4.3.2: for DANE, no TLSA record matched. */
		return dane ? TLSRPT_RESULT_TLSA_INVALID
			    : TLSRPT_RESULT_CERTIFICATE_NOT_TRUSTED;
	case X509_V_ERR_DANE_NO_MATCH:
		return TLSRPT_RESULT_TLSA_INVALID;
	default:
		return TLSRPT_RESULT_VALIDATION_FAILURE;
	}
}

static void fq_tlsrpt_send_free(struct fq_tlsrpt_send *s)
{
	struct fq_tlsrpt_send **p;

	for (p = &tp->sends; *p != NULL; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	dns_lookup_cancel(&s->lookup);
	if (--s->period->refs == 0) {
		tlsrpt_store_destroy(&s->period->store);
		i_free(s->period);
	}
	i_free(s->domain);
	i_free(s);
}

/* Queues one report mail to rcpt. */
static void fq_tlsrpt_enqueue(struct fq_tlsrpt_send *s, const char *rcpt)
{
	const struct marmot_settings *set = tp->front->set;
	struct queue *q = front_queue_get();
	struct buf json = BUF_INIT, msg = BUF_INIT;
	char *from =
		i_strdup_printf("noreply-smtp-tls-reporting@%s", set->hostname);
	char *contact = i_strdup_printf("postmaster@%s", set->hostname);
	char report_id[64], id[QUEUE_ID_LEN + 1];
	uint8_t rnd[8];
	struct queue_rcpt r = { rcpt, NULL, QUEUE_NOTIFY_NEVER };
	struct queue_envelope env;
	const char *error;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd));
	snprintf(report_id, sizeof(report_id),
		 "%lld.%02x%02x%02x%02x%02x%02x%02x%02x",
		 (long long)s->period->start, rnd[0], rnd[1], rnd[2], rnd[3],
		 rnd[4], rnd[5], rnd[6], rnd[7]);
	tlsrpt_report_json(s->period->store, s->domain, set->hostname, contact,
			   report_id, s->period->start, s->period->end, &json);
	memset(&env, 0, sizeof(env));
	env.sender = from;
	env.rcpts = &r;
	env.rcpt_count = 1;
	if (q == NULL ||
	    tlsrpt_report_message(from, rcpt, set->hostname, s->domain,
				  report_id, s->period->start, s->period->end,
				  &json, fq_wall_now(), &msg, &error) < 0 ||
	    queue_enqueue(q, &env, buf_span(&msg).p, msg.used, id, &error) <
		    0) {
		log_warning(NULL, "queue.tlsrpt.failed", "domain=%s error=%s",
			    log_value(0, s->domain),
			    log_value(1, q == NULL ? "no queue" : error));
	} else {
		log_info(NULL, "queue.tlsrpt.queued",
			 "domain=%s rua=%s id=%s report_id=%s",
			 log_value(0, s->domain), log_value(1, rcpt), id,
			 report_id);
		front_queue_added(id);
	}
	buf_free(&json);
	buf_free(&msg);
	i_free(from);
	i_free(contact);
}

static void fq_tlsrpt_txt_resolved(void *context,
				   const struct dns_txt_result *result)
{
	struct fq_tlsrpt_send *s = context;
	pool_t pool = pool_create("tlsrpt rua", 512);
	const char *rua[TLSRPT_RUA_MAX], *error = "no _smtp._tls record";
	unsigned int count = 0;
	int ret = 0;

	s->lookup = NULL;
	if (result->info.status == DNS_STATUS_OK)
		ret = tlsrpt_txt_select(pool, result->txt, result->count, rua,
					&count, &error);
	if (ret <= 0) {
		log_info(NULL, "queue.tlsrpt.none", "domain=%s why=%s",
			 log_value(0, s->domain), log_value(1, error));
	}
	for (unsigned int i = 0; ret > 0 && i < count; i++) {
		const char *addr = tlsrpt_rua_mailto(pool, rua[i]);

		/* Deviation from RFC 8460 5.4: no https: upload yet. */
		if (addr != NULL)
			fq_tlsrpt_enqueue(s, addr);
	}
	pool_unref(&pool);
	fq_tlsrpt_send_free(s);
}

/* RFC 8460 4.1: at the end of each period, one report per policy domain
   that asks for them. */
static void fq_tlsrpt_tick(void *context ATTR_UNUSED)
{
	unsigned int interval = tp->front->set->queue_tlsrpt_interval;
	time_t now = fq_wall_now();
	struct fq_tlsrpt_period *period;
	const char *const *domains;
	unsigned int count;
	pool_t pool;

	if (now < tp->tlsrpt_start + (time_t)interval)
		return;
	period = i_new(struct fq_tlsrpt_period, 1);
	period->store = tp->tlsrpt;
	period->start = tp->tlsrpt_start;
	period->end = tp->tlsrpt_start + (time_t)interval;
	tp->tlsrpt = tlsrpt_store_create();
	tp->tlsrpt_start = now - now % interval;
	pool = pool_create("tlsrpt tick", 1024);
	count = tlsrpt_store_domains(period->store, pool, &domains);
	period->refs = 1;
	for (unsigned int i = 0; i < count; i++) {
		struct fq_tlsrpt_send *s = i_new(struct fq_tlsrpt_send, 1);
		char *name = i_strdup_printf("_smtp._tls.%s", domains[i]);

		s->period = period;
		period->refs++;
		s->domain = i_strdup(domains[i]);
		s->next = tp->sends;
		tp->sends = s;
		/* RFC 8460 3: the record at _smtp._tls.<policy domain>. */
		s->lookup = dns_lookup_txt(tp->dns, name,
					   fq_tlsrpt_txt_resolved, s);
		i_free(name);
	}
	pool_unref(&pool);
	if (--period->refs == 0) {
		tlsrpt_store_destroy(&period->store);
		i_free(period);
	}
}
