/* dns.c - the asynchronous resolver of dns.h over libunbound: one ub_ctx
   per struct dns, resolving in libunbound's background thread
   (ub_ctx_async(ctx, 1)); its answer pipe is an io of the caller's loop.
   ub_process() only records answers on their lookup; the typed results are
   built and the callbacks run after it has returned, so that a callback may
   destroy the dns object (libunbound's own state is never freed under it).
   Every lookup has a deadline of its own, so a silent server, a dead
   background thread or a lost answer all end in TEMPFAIL. Answers are
   untrusted network input: every rdata is bounds-checked before use and
   names are converted only when they are plain host names. */

#include "dns.h"
#include "ioloop.h"
#include "log.h"
#include "settings.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <unbound.h>
#include <unistd.h>

#define DNS_DEFAULT_TIMEOUT_MSECS 30000
/* RFC 1035 2.3.4: labels of 63 octets, names of 255 octets on the wire,
   which is 253 characters in presentation form without the final dot. */
#define DNS_LABEL_MAX 63
#define DNS_NAME_TEXT_MAX 253
#define DNS_RCODE_NXDOMAIN 3
#define DNS_CLASS_IN 1

enum dns_kind {
	DNS_KIND_MX,
	DNS_KIND_HOST,
	DNS_KIND_TXT,
	DNS_KIND_TLSA,
	DNS_KIND_RAW,
};

struct dns_query {
	struct dns *dns;
	/* NULL once orphaned: its lookup is gone but ub_cancel() failed, so
	   libunbound may still call back with it (dns->orphans). */
	struct dns_lookup *lookup;
	struct dns_query *orphan_next;
	uint16_t rrtype;
	int async_id;
	bool active; /* ub query outstanding */
	bool answered;
	int err; /* ub error code, 0 with a result */
	struct ub_result *result;
	/* result->canonname without its trailing dot */
	char canonical[DNS_NAME_TEXT_MAX + 2];
};

struct dns_lookup {
	struct dns *dns;
	struct dns_lookup *prev, *next; /* dns->pending or dns->done */
	enum dns_kind kind;
	char *name;
	union {
		dns_mx_callback_t *mx;
		dns_host_callback_t *host;
		dns_txt_callback_t *txt;
		dns_tlsa_callback_t *tlsa;
		dns_raw_callback_t *raw;
	} cb;
	void *context;
	struct dns_query *queries[2]; /* the ub callbacks' mydata */
	unsigned int query_count;
	struct timeout *timeout;
	/* Set when the lookup ends before all its answers came. */
	enum dns_status early_status;
	const char *early_error;
	bool on_done_list;
};

struct dns {
	struct ioloop *ioloop;
	struct ub_ctx *ctx;
	struct io *io;
	char *resolver;
	char *trust_anchor_file;
	unsigned int timeout_msecs;
	struct dns_lookup *pending; /* not yet answered */
	struct dns_lookup *done; /* answered, callback not yet run */
	struct dns_query *orphans;
	unsigned int pending_count;
	bool dispatching;
	bool destroyed; /* dns_destroy() ran during dispatch */
};

static void dns_io_cb(void *context);
static void dns_lookup_timeout_cb(void *context);

const char *dns_status_name(enum dns_status status)
{
	switch (status) {
	case DNS_STATUS_OK:
		return "OK";
	case DNS_STATUS_NXDOMAIN:
		return "NXDOMAIN";
	case DNS_STATUS_NODATA:
		return "NODATA";
	case DNS_STATUS_TEMPFAIL:
		return "TEMPFAIL";
	case DNS_STATUS_INVALID_NAME:
		return "INVALID_NAME";
	}
	i_unreached();
}

static bool dns_label_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool dns_name_is_valid(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_TEXT_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (name[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (!dns_label_char_ok((unsigned char)name[i]) ||
			   ++label > DNS_LABEL_MAX) {
			return false;
		}
	}
	return label > 0;
}

/* "ADDR[@PORT]" with ADDR an IPv4 or IPv6 literal and PORT 1..65535. */
static bool dns_forwarder_is_valid(const char *fwd)
{
	const char *at = strchr(fwd, '@');
	char addr[INET6_ADDRSTRLEN];
	uint8_t bin[16];
	size_t len = at == NULL ? strlen(fwd) : (size_t)(at - fwd);

	if (len == 0 || len >= sizeof(addr))
		return false;
	memcpy(addr, fwd, len);
	addr[len] = '\0';
	if (inet_pton(AF_INET, addr, bin) != 1 &&
	    inet_pton(AF_INET6, addr, bin) != 1)
		return false;
	if (at != NULL) {
		unsigned long port = 0;
		const char *p = at + 1;

		if (*p == '\0' || strlen(p) > 5)
			return false;
		for (; *p != '\0'; p++) {
			if (*p < '0' || *p > '9')
				return false;
			port = port * 10 + (unsigned long)(*p - '0');
		}
		if (port == 0 || port > 65535)
			return false;
	}
	return true;
}

static const char *dns_error_buf(const char *fmt, ...) ATTR_FORMAT(1, 2);
static const char *dns_error_buf(const char *fmt, ...)
{
	static char error[512];
	va_list args;

	va_start(args, fmt);
	vsnprintf(error, sizeof(error), fmt, args);
	va_end(args);
	return error;
}

/* Whether /etc/resolv.conf names a nameserver (then libunbound forwards
   to them; otherwise it recurses from the root itself). */
static bool dns_resolvconf_has_servers(void)
{
	FILE *f = fopen("/etc/resolv.conf", "re");
	char line[512];
	bool found = false;

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		const char *p = line;

		while (*p == ' ' || *p == '\t')
			p++;
		found = strncmp(p, "nameserver", 10) == 0 &&
			(p[10] == ' ' || p[10] == '\t');
	}
	fclose(f);
	return found;
}

static int dns_ctx_setup(struct dns *dns, const char **error_r)
{
	struct ub_ctx *ctx = ub_ctx_create();
	int ret;

	if (ctx == NULL) {
		*error_r = "dns: ub_ctx_create() failed";
		return -1;
	}
	/* Resolve in a thread, not a forked process: the front may already
	   be sandboxed, and answers come back through ub_fd() either way. */
	if ((ret = ub_ctx_async(ctx, 1)) != 0) {
		*error_r = dns_error_buf("dns: ub_ctx_async: %s",
					 ub_strerror(ret));
		ub_ctx_delete(ctx);
		return -1;
	}
	/* Forwarders (dns_resolver or resolv.conf's) are often on loopback
	   (a local unbound, systemd-resolved's 127.0.0.53, the test suite's
	   server), which libunbound refuses to query by default. Only when
	   it resolves by itself (resolv.conf lists no server) does that
	   default stay, so that no delegation can point us at local
	   services. */
	if ((dns->resolver[0] != '\0' || dns_resolvconf_has_servers()) &&
	    (ret = ub_ctx_set_option(ctx, "do-not-query-localhost:", "no")) !=
		    0) {
		*error_r = dns_error_buf("dns: do-not-query-localhost: %s",
					 ub_strerror(ret));
		ub_ctx_delete(ctx);
		return -1;
	}
	if (dns->resolver[0] == '\0') {
		if ((ret = ub_ctx_resolvconf(ctx, NULL)) != 0) {
			*error_r = dns_error_buf(
				"dns: cannot read /etc/resolv.conf: %s (%s)",
				ub_strerror(ret), strerror(errno));
			ub_ctx_delete(ctx);
			return -1;
		}
	} else {
		char *list = i_strdup(dns->resolver), *save = NULL;
		unsigned int count = 0;

		for (char *p = strtok_r(list, ",", &save); p != NULL;
		     p = strtok_r(NULL, ",", &save)) {
			while (*p == ' ' || *p == '\t')
				p++;
			size_t len = strlen(p);
			while (len > 0 &&
			       (p[len - 1] == ' ' || p[len - 1] == '\t'))
				p[--len] = '\0';
			if (!dns_forwarder_is_valid(p) ||
			    (ret = ub_ctx_set_fwd(ctx, p)) != 0) {
				*error_r = dns_error_buf(
					"dns: dns_resolver: '%s' is not an "
					"IP address with an optional @port",
					p);
				i_free(list);
				ub_ctx_delete(ctx);
				return -1;
			}
			count++;
		}
		i_free(list);
		if (count == 0) {
			*error_r = "dns: dns_resolver lists no address";
			ub_ctx_delete(ctx);
			return -1;
		}
		/* Deviation from RFC 6761 6.2's default for caching servers
		   (answer "test." names locally with NXDOMAIN, which
		   libunbound does): with a resolver chosen by the operator,
		   that resolver decides. Test deployments, ours included,
		   serve their zones under "test.". */
		if ((ret = ub_ctx_set_option(
			     ctx, "local-zone:", "test. transparent")) != 0) {
			*error_r = dns_error_buf("dns: local-zone: %s",
						 ub_strerror(ret));
			ub_ctx_delete(ctx);
			return -1;
		}
	}
	if (dns->trust_anchor_file[0] != '\0') {
		/* libunbound reads the file only at the first query; check
		   now so that a typo is a start-up error. */
		if (dns->trust_anchor_file[0] != '/') {
			*error_r = dns_error_buf(
				"dns: dns_trust_anchor_file %s: not an "
				"absolute path",
				dns->trust_anchor_file);
			ub_ctx_delete(ctx);
			return -1;
		}
		int fd = open(dns->trust_anchor_file, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			*error_r = dns_error_buf(
				"dns: dns_trust_anchor_file %s: %s",
				dns->trust_anchor_file, strerror(errno));
			ub_ctx_delete(ctx);
			return -1;
		}
		close(fd);
		if ((ret = ub_ctx_add_ta_file(ctx, dns->trust_anchor_file)) !=
		    0) {
			*error_r = dns_error_buf(
				"dns: dns_trust_anchor_file %s: %s",
				dns->trust_anchor_file, ub_strerror(ret));
			ub_ctx_delete(ctx);
			return -1;
		}
	}
	int fd = ub_fd(ctx);
	if (fd < 0) {
		*error_r = "dns: ub_fd() failed";
		ub_ctx_delete(ctx);
		return -1;
	}
	dns->ctx = ctx;
	dns->io = io_add(dns->ioloop, fd, IO_READ, dns_io_cb, dns);
	return 0;
}

static void dns_ctx_teardown(struct dns *dns)
{
	io_remove(&dns->io);
	if (dns->ctx != NULL) {
		ub_ctx_delete(dns->ctx);
		dns->ctx = NULL;
	}
}

void dns_settings_init(struct dns_settings *set,
		       const struct marmot_settings *mset)
{
	memset(set, 0, sizeof(*set));
	set->resolver = mset->dns_resolver;
	set->trust_anchor_file = mset->dns_trust_anchor_file;
	set->timeout_msecs = mset->dns_timeout * 1000;
}

struct dns *dns_create(struct ioloop *ioloop, const struct dns_settings *set,
		       const char **error_r)
{
	struct dns *dns = i_new(struct dns, 1);

	dns->ioloop = ioloop;
	dns->resolver =
		i_strdup(set->resolver == NULL || strcmp(set->resolver,
							 "resolv.conf") == 0
				 ? ""
				 : set->resolver);
	dns->trust_anchor_file = i_strdup(
		set->trust_anchor_file == NULL ||
				strcmp(set->trust_anchor_file, "none") == 0
			? ""
			: set->trust_anchor_file);
	dns->timeout_msecs = set->timeout_msecs == 0 ? DNS_DEFAULT_TIMEOUT_MSECS
						     : set->timeout_msecs;
	if (dns_ctx_setup(dns, error_r) < 0) {
		i_free(dns->resolver);
		i_free(dns->trust_anchor_file);
		i_free(dns);
		return NULL;
	}
	return dns;
}

static void dns_list_unlink(struct dns_lookup **list, struct dns_lookup *l)
{
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		*list = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	l->prev = l->next = NULL;
}

static void dns_done_append(struct dns *dns, struct dns_lookup *l)
{
	l->on_done_list = true;
	struct dns_lookup **p = &dns->done, *prev = NULL;

	/* Answers are few per iteration; keeping order keeps callbacks in
	   the order their answers arrived. */
	while (*p != NULL) {
		prev = *p;
		p = &(*p)->next;
	}
	l->prev = prev;
	l->next = NULL;
	*p = l;
}

static void dns_query_free(struct dns_query *q)
{
	if (q->result != NULL)
		ub_resolve_free(q->result);
	i_free(q);
}

static void dns_lookup_free(struct dns_lookup *l)
{
	for (unsigned int i = 0; i < l->query_count; i++)
		dns_query_free(l->queries[i]);
	timeout_remove(&l->timeout);
	i_free(l->name);
	i_free(l);
}

/* For tests: makes the next n ub_cancel() calls fail as they may on a
   system error. */
static unsigned int dns_fail_cancels;

void dns_test_fail_cancels(unsigned int n)
{
	dns_fail_cancels = n;
}

unsigned int dns_test_orphans(const struct dns *dns)
{
	unsigned int n = 0;

	for (const struct dns_query *q = dns->orphans; q != NULL;
	     q = q->orphan_next)
		n++;
	return n;
}

/* Stops the outstanding ub queries of l (their callbacks then never
   run). */
static void dns_lookup_stop_queries(struct dns_lookup *l)
{
	struct dns *dns = l->dns;
	int ret;

	for (unsigned int i = 0; i < l->query_count; i++) {
		struct dns_query *q = l->queries[i];

		if (!q->active)
			continue;
		q->active = false;
		if (dns->ctx == NULL)
			continue;
		if (dns_fail_cancels > 0) {
			dns_fail_cancels--;
			ret = UB_NOMEM;
		} else {
			ret = ub_cancel(dns->ctx, q->async_id);
		}
		if (ret == 0)
			continue;
		/* Answers reach dns_ub_callback() only inside ub_process(),
		   so an active id is never "already delivered"; a system
		   error (memory, the pipe) is what is left. libunbound may
		   then still call back with q: q becomes an orphan, freed by
		   that callback or by dns_destroy(), and l gets a blank
		   query in its place. */
		log_warning(NULL, "dns.cancel_failed", "name=%s error=%s",
			    log_value(0, l->name),
			    log_value(1, ub_strerror(ret)));
		struct dns_query *blank = i_new(struct dns_query, 1);
		blank->dns = dns;
		blank->lookup = l;
		blank->rrtype = q->rrtype;
		blank->answered = q->answered;
		l->queries[i] = blank;
		q->lookup = NULL;
		q->orphan_next = dns->orphans;
		dns->orphans = q;
	}
}

/* --- building typed results ------------------------------------------ */

static void dns_info_from(struct dns_result_info *info, struct dns_query *q,
			  const struct dns_lookup *l)
{
	const struct ub_result *res = q->result;

	memset(info, 0, sizeof(*info));
	info->status = DNS_STATUS_TEMPFAIL;
	if (q->err != 0 || res == NULL) {
		info->error = q->err != 0              ? ub_strerror(q->err)
			      : l->early_error != NULL ? l->early_error
						       : "no answer";
		return;
	}
	if (res->canonname != NULL) {
		size_t len = strlen(res->canonname);

		if (len > 1 && res->canonname[len - 1] == '.')
			len--;
		size_t qlen = strlen(l->name);

		if (qlen > 1 && l->name[qlen - 1] == '.')
			qlen--;
		/* Only a name reached through CNAMEs is worth reporting. */
		if (len < sizeof(q->canonical) &&
		    (len != qlen ||
		     strncasecmp(res->canonname, l->name, len) != 0)) {
			memcpy(q->canonical, res->canonname, len);
			q->canonical[len] = '\0';
			info->canonical_name = q->canonical;
		}
	}
	if (res->bogus) {
		/* A validation failure is an attack or a broken zone:
		   never use the data, retry later (RFC 4035 5.5). */
		info->bogus = true;
		info->error = res->why_bogus != NULL
				      ? res->why_bogus
				      : "DNSSEC validation failed";
		return;
	}
	info->secure = res->secure != 0;
	if (res->havedata) {
		info->status = DNS_STATUS_OK;
		info->ttl = res->ttl < 0 ? 0 : (unsigned int)res->ttl;
	} else if (res->nxdomain || res->rcode == DNS_RCODE_NXDOMAIN) {
		info->status = DNS_STATUS_NXDOMAIN;
	} else if (res->rcode == 0) {
		info->status = DNS_STATUS_NODATA;
	} else {
		static const char *const rcodes[] = {
			"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
			"NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
			"NXRRSET", "NOTAUTH", "NOTZONE",
		};
		info->error = res->rcode >= 0 && (size_t)res->rcode <
							 N_ELEMENTS(rcodes)
				      ? rcodes[res->rcode]
				      : "server failure";
	}
}

static unsigned int dns_rdata_count(const struct ub_result *res)
{
	unsigned int n = 0;

	if (res == NULL || !res->havedata)
		return 0;
	while (res->data[n] != NULL)
		n++;
	return n;
}

/* Converts an uncompressed wire-format name at p (within len bytes) to
   text without the trailing dot into out ("" for the root). Returns the
   bytes it occupies, or 0 if it is malformed or not a plain host name. */
static size_t dns_wire_name(const uint8_t *p, size_t len,
			    char out[DNS_NAME_TEXT_MAX + 2])
{
	size_t pos = 0, o = 0;

	for (;;) {
		if (pos >= len)
			return 0;
		uint8_t label = p[pos++];
		if (label == 0)
			break;
		/* Compression pointers (0xc0) and extended labels are not
		   valid in rdata libunbound hands out; refuse them. */
		if (label > DNS_LABEL_MAX || label > len - pos)
			return 0;
		if (o + label + 1 > DNS_NAME_TEXT_MAX + 1)
			return 0;
		if (o > 0)
			out[o++] = '.';
		for (uint8_t i = 0; i < label; i++) {
			if (!dns_label_char_ok(p[pos + i]))
				return 0;
			out[o++] = (char)p[pos + i];
		}
		pos += label;
	}
	out[o] = '\0';
	return pos;
}

struct dns_mx_sort {
	struct dns_mx mx;
	uint32_t tiebreak;
};

static int dns_mx_cmp(const void *a, const void *b)
{
	const struct dns_mx_sort *x = a, *y = b;

	if (x->mx.preference != y->mx.preference)
		return x->mx.preference < y->mx.preference ? -1 : 1;
	if (x->tiebreak != y->tiebreak)
		return x->tiebreak < y->tiebreak ? -1 : 1;
	return 0;
}

static void dns_complete_mx(struct dns_lookup *l)
{
	struct dns_query *q = l->queries[0];
	struct dns_mx_result result;
	unsigned int n = dns_rdata_count(q->result), count = 0;
	unsigned int roots = 0;
	struct dns_mx_sort *sorted = i_new(struct dns_mx_sort, n + 1);
	struct dns_mx *mx = i_new(struct dns_mx, n + 1);
	char name[DNS_NAME_TEXT_MAX + 2];

	memset(&result, 0, sizeof(result));
	dns_info_from(&result.info, q, l);
	for (unsigned int i = 0; result.info.status == DNS_STATUS_OK && i < n;
	     i++) {
		const uint8_t *p = (const uint8_t *)q->result->data[i];
		size_t len = (size_t)q->result->len[i];

		/* RFC 1035 3.3.9: PREFERENCE (16 bits) then EXCHANGE. */
		if (len < 3 || dns_wire_name(p + 2, len - 2, name) != len - 2)
			continue;
		if (name[0] == '\0') {
			/* RFC 7505 3: exchange "." is a null MX. */
			roots++;
			continue;
		}
		sorted[count].mx.preference = (uint16_t)((p[0] << 8) | p[1]);
		sorted[count].mx.host = i_strdup(name);
		sorted[count].tiebreak = randombytes_random();
		count++;
	}
	if (result.info.status == DNS_STATUS_OK) {
		if (count == 0 && roots == 1 && n == 1) {
			result.null_mx = true;
		} else if (count == 0) {
			result.unusable = true;
		}
		/* RFC 5321 5.1: ascending preference, random among equals. */
		qsort(sorted, count, sizeof(*sorted), dns_mx_cmp);
		for (unsigned int i = 0; i < count; i++)
			mx[i] = sorted[i].mx;
		result.mx = mx;
		result.count = count;
	}
	l->cb.mx(l->context, &result);
	for (unsigned int i = 0; i < count; i++)
		i_free(sorted[i].mx.host);
	i_free(sorted);
	i_free(mx);
}

/* Appends the addresses of q (AAAA or A) to addrs. */
static unsigned int dns_collect_addrs(const struct dns_query *q,
				      struct dns_addr *addrs,
				      unsigned int count)
{
	unsigned int n = dns_rdata_count(q->result);
	int family = q->rrtype == DNS_TYPE_AAAA ? AF_INET6 : AF_INET;
	size_t want = family == AF_INET6 ? 16 : 4;

	for (unsigned int i = 0; i < n; i++) {
		struct dns_addr *a = &addrs[count];

		if ((size_t)q->result->len[i] != want)
			continue;
		a->family = family;
		memcpy(a->addr, q->result->data[i], want);
		if (inet_ntop(family, a->addr, a->text, sizeof(a->text)) ==
		    NULL)
			continue;
		count++;
	}
	return count;
}

static void dns_complete_host(struct dns_lookup *l)
{
	struct dns_host_result result;
	struct dns_result_info info6, info4;
	struct dns_query *q6 = l->queries[0], *q4 = l->queries[1];
	unsigned int n =
		dns_rdata_count(q6->result) + dns_rdata_count(q4->result);
	struct dns_addr *addrs = i_new(struct dns_addr, n + 1);
	char error[256];

	memset(&result, 0, sizeof(result));
	dns_info_from(&info6, q6, l);
	dns_info_from(&info4, q4, l);
	if (info6.status == DNS_STATUS_OK)
		result.count = dns_collect_addrs(q6, addrs, result.count);
	if (info4.status == DNS_STATUS_OK)
		result.count = dns_collect_addrs(q4, addrs, result.count);
	result.addrs = addrs;
	result.info.secure = info6.secure && info4.secure;
	result.info.bogus = info6.bogus || info4.bogus;
	result.info.canonical_name = info4.canonical_name != NULL
					     ? info4.canonical_name
					     : info6.canonical_name;
	result.info.ttl = info6.ttl == 0          ? info4.ttl
			  : info4.ttl == 0        ? info6.ttl
			  : info6.ttl < info4.ttl ? info6.ttl
						  : info4.ttl;
	if (result.count > 0) {
		result.info.status = DNS_STATUS_OK;
		if (info6.status == DNS_STATUS_TEMPFAIL ||
		    info4.status == DNS_STATUS_TEMPFAIL) {
			const struct dns_result_info *bad =
				info6.status == DNS_STATUS_TEMPFAIL ? &info6
								    : &info4;
			result.partial = true;
			snprintf(error, sizeof(error), "%s lookup failed: %s",
				 bad == &info6 ? "AAAA" : "A", bad->error);
			result.info.error = error;
		}
	} else if (info6.status == DNS_STATUS_TEMPFAIL ||
		   info4.status == DNS_STATUS_TEMPFAIL) {
		const struct dns_result_info *bad =
			info6.status == DNS_STATUS_TEMPFAIL ? &info6 : &info4;
		result.info.status = DNS_STATUS_TEMPFAIL;
		result.info.error = bad->error;
	} else if (info6.status == DNS_STATUS_NXDOMAIN ||
		   info4.status == DNS_STATUS_NXDOMAIN) {
		result.info.status = DNS_STATUS_NXDOMAIN;
	} else if (info6.status == DNS_STATUS_OK ||
		   info4.status == DNS_STATUS_OK) {
		/* Records were there but none was a well-formed address. */
		result.info.status = DNS_STATUS_TEMPFAIL;
		result.info.error = "malformed address records";
	} else {
		result.info.status = DNS_STATUS_NODATA;
	}
	l->cb.host(l->context, &result);
	i_free(addrs);
}

static void dns_complete_txt(struct dns_lookup *l)
{
	struct dns_query *q = l->queries[0];
	struct dns_txt_result result;
	unsigned int n = dns_rdata_count(q->result), count = 0;
	struct dns_txt *txt = i_new(struct dns_txt, n + 1);

	memset(&result, 0, sizeof(result));
	dns_info_from(&result.info, q, l);
	for (unsigned int i = 0; result.info.status == DNS_STATUS_OK && i < n;
	     i++) {
		const uint8_t *p = (const uint8_t *)q->result->data[i];
		size_t len = (size_t)q->result->len[i], pos = 0, o = 0;
		char *text = i_malloc(len + 1);
		bool ok = true;

		/* RFC 1035 3.3.14: one or more <character-string>s, each a
		   length octet and that many octets. */
		while (pos < len) {
			size_t slen = p[pos++];
			if (slen > len - pos) {
				ok = false;
				break;
			}
			memcpy(text + o, p + pos, slen);
			o += slen;
			pos += slen;
		}
		if (!ok || len == 0) {
			i_free(text);
			continue;
		}
		text[o] = '\0';
		txt[count].text = text;
		txt[count].len = o;
		count++;
	}
	if (result.info.status == DNS_STATUS_OK && count == 0) {
		result.info.status = DNS_STATUS_TEMPFAIL;
		result.info.error = "malformed TXT records";
	}
	result.txt = txt;
	result.count = count;
	l->cb.txt(l->context, &result);
	for (unsigned int i = 0; i < count; i++)
		i_free(txt[i].text);
	i_free(txt);
}

static void dns_complete_tlsa(struct dns_lookup *l)
{
	struct dns_query *q = l->queries[0];
	struct dns_tlsa_result result;
	unsigned int n = dns_rdata_count(q->result), count = 0;
	struct dns_tlsa *tlsa = i_new(struct dns_tlsa, n + 1);

	memset(&result, 0, sizeof(result));
	dns_info_from(&result.info, q, l);
	for (unsigned int i = 0; result.info.status == DNS_STATUS_OK && i < n;
	     i++) {
		const uint8_t *p = (const uint8_t *)q->result->data[i];
		size_t len = (size_t)q->result->len[i];

		/* RFC 6698 2.1: usage, selector, matching type (one octet
		   each), then the association data. */
		if (len < 3)
			continue;
		tlsa[count].usage = p[0];
		tlsa[count].selector = p[1];
		tlsa[count].matching_type = p[2];
		tlsa[count].data = p + 3;
		tlsa[count].len = len - 3;
		count++;
	}
	if (result.info.status == DNS_STATUS_OK && count == 0) {
		result.info.status = DNS_STATUS_TEMPFAIL;
		result.info.error = "malformed TLSA records";
	}
	result.tlsa = tlsa;
	result.count = count;
	l->cb.tlsa(l->context, &result);
	i_free(tlsa);
}

static void dns_complete_raw(struct dns_lookup *l)
{
	struct dns_query *q = l->queries[0];
	struct dns_raw_result result;
	unsigned int n = dns_rdata_count(q->result);
	struct dns_rdata *rdata = i_new(struct dns_rdata, n + 1);

	memset(&result, 0, sizeof(result));
	dns_info_from(&result.info, q, l);
	result.rrtype = q->rrtype;
	if (result.info.status == DNS_STATUS_OK) {
		for (unsigned int i = 0; i < n; i++) {
			rdata[i].data = (const uint8_t *)q->result->data[i];
			rdata[i].len = (size_t)q->result->len[i];
		}
		result.count = n;
	}
	result.rdata = rdata;
	l->cb.raw(l->context, &result);
	i_free(rdata);
}

/* Builds l's typed result and runs its callback. */
static void dns_lookup_run_callback(struct dns_lookup *l)
{
	if (l->early_status == DNS_STATUS_INVALID_NAME) {
		struct dns_result_info info = {
			.status = DNS_STATUS_INVALID_NAME,
			.error = "not a valid domain name",
		};
		switch (l->kind) {
		case DNS_KIND_MX: {
			struct dns_mx_result r = { .info = info };
			l->cb.mx(l->context, &r);
			break;
		}
		case DNS_KIND_HOST: {
			struct dns_host_result r = { .info = info };
			l->cb.host(l->context, &r);
			break;
		}
		case DNS_KIND_TXT: {
			struct dns_txt_result r = { .info = info };
			l->cb.txt(l->context, &r);
			break;
		}
		case DNS_KIND_TLSA: {
			struct dns_tlsa_result r = { .info = info };
			l->cb.tlsa(l->context, &r);
			break;
		}
		case DNS_KIND_RAW: {
			struct dns_raw_result r = { .info = info };
			r.rrtype = l->queries[0]->rrtype;
			l->cb.raw(l->context, &r);
			break;
		}
		}
		return;
	}
	/* After a timeout or a reset, the queries without an answer report
	   TEMPFAIL with early_error (dns_info_from()); the answered ones keep
	   their answer (a host lookup may then be partial). */
	switch (l->kind) {
	case DNS_KIND_MX:
		dns_complete_mx(l);
		break;
	case DNS_KIND_HOST:
		dns_complete_host(l);
		break;
	case DNS_KIND_TXT:
		dns_complete_txt(l);
		break;
	case DNS_KIND_TLSA:
		dns_complete_tlsa(l);
		break;
	case DNS_KIND_RAW:
		dns_complete_raw(l);
		break;
	}
}

/* Runs l's callback and frees l. l is on no list. */
static void dns_lookup_complete(struct dns_lookup *l)
{
	dns_lookup_run_callback(l);
	dns_lookup_free(l);
}

static void dns_free_list(struct dns_lookup **list)
{
	while (*list != NULL) {
		struct dns_lookup *l = *list;

		dns_list_unlink(list, l);
		dns_lookup_free(l);
	}
}

static void dns_free(struct dns *dns)
{
	while (dns->orphans != NULL) {
		struct dns_query *q = dns->orphans;

		dns->orphans = q->orphan_next;
		dns_query_free(q);
	}
	dns_free_list(&dns->pending);
	dns_free_list(&dns->done);
	i_free(dns->resolver);
	i_free(dns->trust_anchor_file);
	i_free(dns);
}

/* Runs the callbacks of answered lookups; stops if one destroys dns. */
static void dns_dispatch(struct dns *dns)
{
	if (dns->dispatching)
		return;
	dns->dispatching = true;
	while (dns->done != NULL && !dns->destroyed) {
		struct dns_lookup *l = dns->done;

		dns_list_unlink(&dns->done, l);
		dns_lookup_complete(l);
	}
	dns->dispatching = false;
	if (dns->destroyed)
		dns_free(dns);
}

static void dns_ub_callback(void *mydata, int err, struct ub_result *result)
{
	struct dns_query *q = mydata;
	struct dns_lookup *l = q->lookup;
	struct dns *dns = q->dns;

	if (l == NULL) {
		/* An orphan (see dns_lookup_stop_queries()). */
		for (struct dns_query **p = &dns->orphans; *p != NULL;
		     p = &(*p)->orphan_next) {
			if (*p == q) {
				*p = q->orphan_next;
				break;
			}
		}
		if (result != NULL)
			ub_resolve_free(result);
		i_free(q);
		return;
	}
	q->active = false;
	q->answered = true;
	q->err = err;
	q->result = result;
	for (unsigned int i = 0; i < l->query_count; i++) {
		if (!l->queries[i]->answered)
			return;
	}
	dns_list_unlink(&dns->pending, l);
	i_assert(dns->pending_count > 0);
	dns->pending_count--;
	timeout_remove(&l->timeout);
	dns_done_append(dns, l);
}

/* The background thread is gone or the pipe is broken: every pending
   lookup fails temporarily and a fresh context takes over. */
static void dns_reset(struct dns *dns, const char *why)
{
	const char *error;

	log_error(NULL, "dns.reset", "error=%s", log_value(0, why));
	dns_ctx_teardown(dns);
	while (dns->pending != NULL) {
		struct dns_lookup *l = dns->pending;

		dns_list_unlink(&dns->pending, l);
		dns->pending_count--;
		timeout_remove(&l->timeout);
		for (unsigned int i = 0; i < l->query_count; i++)
			l->queries[i]->active = false;
		l->early_status = DNS_STATUS_TEMPFAIL;
		l->early_error = "resolver restarted";
		dns_done_append(dns, l);
	}
	if (dns_ctx_setup(dns, &error) < 0) {
		/* The settings were fine at start; what fails now is the
		   environment (threads, memory). */
		fatal("dns.reset_failed", "error=%s", log_value(0, error));
	}
}

static void dns_io_cb(void *context)
{
	struct dns *dns = context;
	int ret = ub_process(dns->ctx);

	if (ret != 0)
		dns_reset(dns, ub_strerror(ret));
	dns_dispatch(dns);
}

static void dns_lookup_timeout_cb(void *context)
{
	struct dns_lookup *l = context;
	struct dns *dns = l->dns;

	timeout_remove(&l->timeout);
	dns_lookup_stop_queries(l);
	if (l->early_status == DNS_STATUS_OK) {
		l->early_status = DNS_STATUS_TEMPFAIL;
		l->early_error = "timed out";
		log_info(NULL, "dns.timeout", "name=%s", log_value(0, l->name));
	}
	dns_list_unlink(&dns->pending, l);
	dns->pending_count--;
	dns_done_append(dns, l);
	dns_dispatch(dns);
}

static struct dns_lookup *dns_lookup_start(struct dns *dns, enum dns_kind kind,
					   const char *name,
					   const uint16_t *rrtypes,
					   unsigned int count, void *context)
{
	struct dns_lookup *l = i_new(struct dns_lookup, 1);
	unsigned int msecs = dns->timeout_msecs;

	i_assert(count >= 1 && count <= N_ELEMENTS(l->queries));
	l->dns = dns;
	l->kind = kind;
	l->name = i_strdup(name);
	l->context = context;
	l->query_count = count;
	for (unsigned int i = 0; i < count; i++) {
		l->queries[i] = i_new(struct dns_query, 1);
		l->queries[i]->dns = dns;
		l->queries[i]->lookup = l;
		l->queries[i]->rrtype = rrtypes[i];
	}
	l->prev = NULL;
	l->next = dns->pending;
	if (dns->pending != NULL)
		dns->pending->prev = l;
	dns->pending = l;
	dns->pending_count++;

	if (!dns_name_is_valid(name)) {
		l->early_status = DNS_STATUS_INVALID_NAME;
		msecs = 0;
	} else {
		for (unsigned int i = 0; i < count; i++) {
			struct dns_query *q = l->queries[i];
			int ret = ub_resolve_async(
				dns->ctx, name, q->rrtype, DNS_CLASS_IN, q,
				dns_ub_callback, &q->async_id);
			if (ret != 0) {
				log_error(NULL, "dns.resolve_failed",
					  "name=%s error=%s",
					  log_value(0, name),
					  log_value(1, ub_strerror(ret)));
				dns_lookup_stop_queries(l);
				l->early_status = DNS_STATUS_TEMPFAIL;
				l->early_error = ub_strerror(ret);
				msecs = 0;
				break;
			}
			q->active = true;
		}
	}
	/* Also the path of early failures: the callback must run from the
	   loop, never inside this call. */
	l->timeout = timeout_add(dns->ioloop, msecs, dns_lookup_timeout_cb, l);
	return l;
}

struct dns_lookup *dns_lookup_mx(struct dns *dns, const char *domain,
				 dns_mx_callback_t *cb, void *context)
{
	static const uint16_t types[] = { DNS_TYPE_MX };
	struct dns_lookup *l =
		dns_lookup_start(dns, DNS_KIND_MX, domain, types, 1, context);

	l->cb.mx = cb;
	return l;
}

struct dns_lookup *dns_lookup_host(struct dns *dns, const char *host,
				   dns_host_callback_t *cb, void *context)
{
	static const uint16_t types[] = { DNS_TYPE_AAAA, DNS_TYPE_A };
	struct dns_lookup *l =
		dns_lookup_start(dns, DNS_KIND_HOST, host, types, 2, context);

	l->cb.host = cb;
	return l;
}

struct dns_lookup *dns_lookup_txt(struct dns *dns, const char *name,
				  dns_txt_callback_t *cb, void *context)
{
	static const uint16_t types[] = { DNS_TYPE_TXT };
	struct dns_lookup *l =
		dns_lookup_start(dns, DNS_KIND_TXT, name, types, 1, context);

	l->cb.txt = cb;
	return l;
}

struct dns_lookup *dns_lookup_tlsa(struct dns *dns, const char *name,
				   dns_tlsa_callback_t *cb, void *context)
{
	static const uint16_t types[] = { DNS_TYPE_TLSA };
	struct dns_lookup *l =
		dns_lookup_start(dns, DNS_KIND_TLSA, name, types, 1, context);

	l->cb.tlsa = cb;
	return l;
}

struct dns_lookup *dns_lookup_raw(struct dns *dns, const char *name,
				  uint16_t rrtype, dns_raw_callback_t *cb,
				  void *context)
{
	struct dns_lookup *l =
		dns_lookup_start(dns, DNS_KIND_RAW, name, &rrtype, 1, context);

	l->cb.raw = cb;
	return l;
}

void dns_lookup_cancel(struct dns_lookup **_lookup)
{
	struct dns_lookup *l = *_lookup;
	struct dns *dns;

	if (l == NULL)
		return;
	*_lookup = NULL;
	dns = l->dns;
	dns_lookup_stop_queries(l);
	/* Answered but not yet dispatched lookups sit on dns->done. */
	if (l->on_done_list) {
		dns_list_unlink(&dns->done, l);
	} else {
		dns_list_unlink(&dns->pending, l);
		dns->pending_count--;
	}
	dns_lookup_free(l);
}

unsigned int dns_pending_count(const struct dns *dns)
{
	unsigned int n = dns->pending_count;

	for (const struct dns_lookup *l = dns->done; l != NULL; l = l->next)
		n++;
	return n;
}

void dns_destroy(struct dns **_dns)
{
	struct dns *dns = *_dns;

	if (dns == NULL)
		return;
	*_dns = NULL;
	for (struct dns_lookup *l = dns->pending; l != NULL; l = l->next)
		dns_lookup_stop_queries(l);
	/* Not inside ub_process() here: callbacks run from dns_dispatch()
	   after it returned, so deleting the context is safe. */
	dns_ctx_teardown(dns);
	dns->pending_count = 0;
	if (dns->dispatching) {
		dns->destroyed = true;
		dns_free_list(&dns->pending);
		return;
	}
	dns_free(dns);
}

/* --- decoding without a resolver (fuzz-dns-rdata.c) ------------------ */

static volatile unsigned int dns_test_sink;

static void dns_test_touch(const void *p, size_t len)
{
	const uint8_t *b = p;
	unsigned int sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += b[i];
	dns_test_sink += sum;
}

static void dns_test_info(const struct dns_result_info *info)
{
	if (info->error != NULL)
		dns_test_touch(info->error, strlen(info->error));
	if (info->canonical_name != NULL)
		dns_test_touch(info->canonical_name,
			       strlen(info->canonical_name));
}

static void dns_test_mx_cb(void *context, const struct dns_mx_result *r)
{
	unsigned int *count = context;

	dns_test_info(&r->info);
	for (unsigned int i = 0; i < r->count; i++) {
		dns_test_touch(r->mx[i].host, strlen(r->mx[i].host) + 1);
		/* Sorted, and only valid host names. */
		i_assert(i == 0 ||
			 r->mx[i - 1].preference <= r->mx[i].preference);
		i_assert(dns_name_is_valid(r->mx[i].host));
	}
	*count = r->count;
}

static void dns_test_host_cb(void *context, const struct dns_host_result *r)
{
	unsigned int *count = context;

	dns_test_info(&r->info);
	for (unsigned int i = 0; i < r->count; i++)
		dns_test_touch(&r->addrs[i], sizeof(r->addrs[i]));
	*count = r->count;
}

static void dns_test_txt_cb(void *context, const struct dns_txt_result *r)
{
	unsigned int *count = context;

	dns_test_info(&r->info);
	for (unsigned int i = 0; i < r->count; i++) {
		dns_test_touch(r->txt[i].text, r->txt[i].len + 1);
		i_assert(r->txt[i].text[r->txt[i].len] == '\0');
	}
	*count = r->count;
}

static void dns_test_tlsa_cb(void *context, const struct dns_tlsa_result *r)
{
	unsigned int *count = context;

	dns_test_info(&r->info);
	for (unsigned int i = 0; i < r->count; i++)
		dns_test_touch(r->tlsa[i].data, r->tlsa[i].len);
	*count = r->count;
}

static void dns_test_raw_cb(void *context, const struct dns_raw_result *r)
{
	unsigned int *count = context;

	dns_test_info(&r->info);
	for (unsigned int i = 0; i < r->count; i++)
		dns_test_touch(r->rdata[i].data, r->rdata[i].len);
	*count = r->count;
}

unsigned int dns_test_decode(uint16_t rrtype, char **data, int *len,
			     unsigned int count)
{
	struct ub_result answer, empty;
	struct dns_lookup *l = i_new(struct dns_lookup, 1);
	unsigned int decoded = 0;
	char *no_data[1] = { NULL };
	int no_len[1] = { 0 };

	memset(&answer, 0, sizeof(answer));
	answer.qtype = rrtype;
	answer.data = data;
	answer.len = len;
	answer.havedata = count > 0;
	answer.ttl = 60;
	i_assert(data[count] == NULL);
	memset(&empty, 0, sizeof(empty));
	empty.data = no_data;
	empty.len = no_len;

	l->name = i_strdup("fuzz.test");
	l->context = &decoded;
	l->query_count =
		rrtype == DNS_TYPE_A || rrtype == DNS_TYPE_AAAA ? 2 : 1;
	for (unsigned int i = 0; i < l->query_count; i++) {
		l->queries[i] = i_new(struct dns_query, 1);
		l->queries[i]->lookup = l;
		l->queries[i]->answered = true;
	}
	switch (rrtype) {
	case DNS_TYPE_MX:
		l->kind = DNS_KIND_MX;
		l->cb.mx = dns_test_mx_cb;
		break;
	case DNS_TYPE_A:
	case DNS_TYPE_AAAA:
		l->kind = DNS_KIND_HOST;
		l->cb.host = dns_test_host_cb;
		break;
	case DNS_TYPE_TXT:
		l->kind = DNS_KIND_TXT;
		l->cb.txt = dns_test_txt_cb;
		break;
	case DNS_TYPE_TLSA:
		l->kind = DNS_KIND_TLSA;
		l->cb.tlsa = dns_test_tlsa_cb;
		break;
	default:
		l->kind = DNS_KIND_RAW;
		l->cb.raw = dns_test_raw_cb;
		break;
	}
	if (l->kind == DNS_KIND_HOST) {
		/* queries[0] is AAAA, [1] is A: the answer goes where its
		   type belongs, the other family has no data. */
		unsigned int mine = rrtype == DNS_TYPE_AAAA ? 0 : 1;

		l->queries[0]->rrtype = DNS_TYPE_AAAA;
		l->queries[1]->rrtype = DNS_TYPE_A;
		l->queries[mine]->result = &answer;
		l->queries[1 - mine]->result = &empty;
	} else {
		l->queries[0]->rrtype = rrtype;
		l->queries[0]->result = &answer;
	}
	dns_lookup_run_callback(l);
	/* The results live on this stack: not dns_lookup_free(). */
	for (unsigned int i = 0; i < l->query_count; i++)
		i_free(l->queries[i]);
	i_free(l->name);
	i_free(l);
	return decoded;
}
