/* auth-dns-stub.c - the in-memory zone of auth-dns-stub.h: a flat array of
   records and status overrides searched linearly (test zones are small),
   and a FIFO of pending lookups that auth_dns_stub_run() answers. */

#include "auth-dns-stub.h"
#include "buf.h"

#include <arpa/inet.h>
#include <strings.h>
#include <sys/socket.h>

#define STUB_CNAME_HOPS_MAX 8
#define STUB_RUN_MAX 1000000
#define STUB_TTL 300

struct stub_rr {
	char *name;
	uint16_t type;
	/* MX */
	uint16_t preference;
	/* TXT text; A/AAAA/raw rdata; MX/PTR/CNAME host as text */
	uint8_t *data;
	size_t len;
};

struct stub_status {
	char *name;
	uint16_t type;
	enum dns_status status;
};

enum stub_kind {
	STUB_KIND_TXT,
	STUB_KIND_MX,
	STUB_KIND_RAW,
};

struct stub_lookup {
	struct stub_lookup *next;
	enum stub_kind kind;
	char *name;
	uint16_t rrtype;
	union {
		dns_txt_callback_t *txt;
		dns_mx_callback_t *mx;
		dns_raw_callback_t *raw;
	} cb;
	void *context;
};

struct auth_dns_stub {
	struct auth_dns dns;
	struct stub_rr *rrs;
	unsigned int rr_count, rr_alloc;
	struct stub_status *statuses;
	unsigned int status_count, status_alloc;
	struct stub_lookup *head, *tail;
	unsigned int queries, pending;
	bool any_names;
};

/* What an answer is made of: the records (pointers into the zone) of the
   asked type at the final name, or a status. */
struct stub_answer {
	struct dns_result_info info;
	const struct stub_rr **rrs;
	unsigned int count;
};

static char *stub_name_dup(const char *name)
{
	size_t len = strlen(name);

	if (len > 1 && name[len - 1] == '.')
		len--;
	return i_strndup(name, len);
}

static bool stub_name_eq(const char *a, const char *b)
{
	size_t alen = strlen(a), blen = strlen(b);

	if (alen > 1 && a[alen - 1] == '.')
		alen--;
	if (blen > 1 && b[blen - 1] == '.')
		blen--;
	return alen == blen && strncasecmp(a, b, alen) == 0;
}

static struct stub_rr *stub_rr_add(struct auth_dns_stub *stub, const char *name,
				   uint16_t type, const void *data, size_t len)
{
	struct stub_rr *rr;

	if (stub->rr_count == stub->rr_alloc) {
		stub->rr_alloc = stub->rr_alloc == 0 ? 16 : stub->rr_alloc * 2;
		stub->rrs = i_realloc(stub->rrs,
				      i_size_mul(stub->rr_alloc, sizeof(*rr)));
	}
	rr = &stub->rrs[stub->rr_count++];
	memset(rr, 0, sizeof(*rr));
	rr->name = stub_name_dup(name);
	rr->type = type;
	rr->data = i_malloc(i_size_add(len, 1));
	if (len > 0)
		memcpy(rr->data, data, len);
	rr->len = len;
	return rr;
}

static struct stub_lookup *stub_queue(struct auth_dns *dns, enum stub_kind kind,
				      const char *name, uint16_t rrtype,
				      void *context)
{
	struct auth_dns_stub *stub = dns->context;
	struct stub_lookup *l = i_new(struct stub_lookup, 1);

	l->kind = kind;
	l->name = i_strdup(name);
	l->rrtype = rrtype;
	l->context = context;
	if (stub->tail == NULL)
		stub->head = l;
	else
		stub->tail->next = l;
	stub->tail = l;
	stub->queries++;
	stub->pending++;
	return l;
}

static struct dns_lookup *stub_txt(struct auth_dns *dns, const char *name,
				   dns_txt_callback_t *cb, void *context)
{
	struct stub_lookup *l =
		stub_queue(dns, STUB_KIND_TXT, name, DNS_TYPE_TXT, context);

	l->cb.txt = cb;
	return (struct dns_lookup *)l;
}

static struct dns_lookup *stub_mx(struct auth_dns *dns, const char *name,
				  dns_mx_callback_t *cb, void *context)
{
	struct stub_lookup *l =
		stub_queue(dns, STUB_KIND_MX, name, DNS_TYPE_MX, context);

	l->cb.mx = cb;
	return (struct dns_lookup *)l;
}

static struct dns_lookup *stub_raw(struct auth_dns *dns, const char *name,
				   uint16_t rrtype, dns_raw_callback_t *cb,
				   void *context)
{
	struct stub_lookup *l =
		stub_queue(dns, STUB_KIND_RAW, name, rrtype, context);

	l->cb.raw = cb;
	return (struct dns_lookup *)l;
}

static void stub_lookup_free(struct stub_lookup *l)
{
	i_free(l->name);
	i_free(l);
}

static void stub_cancel(struct auth_dns *dns, struct dns_lookup **_lookup)
{
	struct auth_dns_stub *stub = dns->context;
	struct stub_lookup *l = (struct stub_lookup *)*_lookup, **pp, *prev;

	*_lookup = NULL;
	if (l == NULL)
		return;
	prev = NULL;
	for (pp = &stub->head; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			if (stub->tail == l)
				stub->tail = prev;
			stub->pending--;
			stub_lookup_free(l);
			return;
		}
		prev = *pp;
	}
	i_panic("auth_dns_stub: cancel of a lookup that is not pending");
}

struct auth_dns_stub *auth_dns_stub_create(void)
{
	struct auth_dns_stub *stub = i_new(struct auth_dns_stub, 1);

	stub->dns.txt = stub_txt;
	stub->dns.mx = stub_mx;
	stub->dns.raw = stub_raw;
	stub->dns.cancel = stub_cancel;
	stub->dns.context = stub;
	return stub;
}

void auth_dns_stub_destroy(struct auth_dns_stub **_stub)
{
	struct auth_dns_stub *stub = *_stub;

	*_stub = NULL;
	if (stub == NULL)
		return;
	while (stub->head != NULL) {
		struct stub_lookup *l = stub->head;

		stub->head = l->next;
		stub_lookup_free(l);
	}
	for (unsigned int i = 0; i < stub->rr_count; i++) {
		i_free(stub->rrs[i].name);
		i_free(stub->rrs[i].data);
	}
	for (unsigned int i = 0; i < stub->status_count; i++)
		i_free(stub->statuses[i].name);
	i_free(stub->rrs);
	i_free(stub->statuses);
	i_free(stub);
}

struct auth_dns *auth_dns_stub_dns(struct auth_dns_stub *stub)
{
	return &stub->dns;
}

void auth_dns_stub_add_txt(struct auth_dns_stub *stub, const char *name,
			   const char *text, size_t len)
{
	(void)stub_rr_add(stub, name, DNS_TYPE_TXT, text, len);
}

static int stub_add_addr(struct auth_dns_stub *stub, const char *name,
			 int family, const char *addr)
{
	uint8_t bin[16];

	if (inet_pton(family, addr, bin) != 1)
		return -1;
	(void)stub_rr_add(stub, name,
			  family == AF_INET ? DNS_TYPE_A : DNS_TYPE_AAAA, bin,
			  family == AF_INET ? 4 : 16);
	return 0;
}

int auth_dns_stub_add_a(struct auth_dns_stub *stub, const char *name,
			const char *addr)
{
	return stub_add_addr(stub, name, AF_INET, addr);
}

int auth_dns_stub_add_aaaa(struct auth_dns_stub *stub, const char *name,
			   const char *addr)
{
	return stub_add_addr(stub, name, AF_INET6, addr);
}

static void stub_add_host(struct auth_dns_stub *stub, const char *name,
			  uint16_t type, uint16_t preference, const char *host)
{
	char *h = stub_name_dup(host);
	struct stub_rr *rr;

	if (strcmp(h, ".") == 0)
		h[0] = '\0';
	rr = stub_rr_add(stub, name, type, h, strlen(h));
	rr->preference = preference;
	i_free(h);
}

void auth_dns_stub_add_mx(struct auth_dns_stub *stub, const char *name,
			  uint16_t preference, const char *host)
{
	stub_add_host(stub, name, DNS_TYPE_MX, preference, host);
}

void auth_dns_stub_add_ptr(struct auth_dns_stub *stub, const char *name,
			   const char *host)
{
	stub_add_host(stub, name, DNS_TYPE_PTR, 0, host);
}

void auth_dns_stub_add_cname(struct auth_dns_stub *stub, const char *name,
			     const char *target)
{
	stub_add_host(stub, name, DNS_TYPE_CNAME, 0, target);
}

void auth_dns_stub_add_raw(struct auth_dns_stub *stub, const char *name,
			   uint16_t rrtype, const void *data, size_t len)
{
	(void)stub_rr_add(stub, name, rrtype, data, len);
}

void auth_dns_stub_set_status(struct auth_dns_stub *stub, const char *name,
			      uint16_t rrtype, enum dns_status status)
{
	struct stub_status *st;

	for (unsigned int i = 0; i < stub->status_count; i++) {
		st = &stub->statuses[i];
		if (st->type == rrtype && stub_name_eq(st->name, name)) {
			st->status = status;
			return;
		}
	}
	if (stub->status_count == stub->status_alloc) {
		stub->status_alloc =
			stub->status_alloc == 0 ? 8 : stub->status_alloc * 2;
		stub->statuses =
			i_realloc(stub->statuses,
				  i_size_mul(stub->status_alloc, sizeof(*st)));
	}
	st = &stub->statuses[stub->status_count++];
	st->name = stub_name_dup(name);
	st->type = rrtype;
	st->status = status;
}

static const struct stub_status *stub_find_status(
	const struct auth_dns_stub *stub, const char *name, uint16_t type)
{
	const struct stub_status *any = NULL;

	for (unsigned int i = 0; i < stub->status_count; i++) {
		const struct stub_status *st = &stub->statuses[i];

		if (!stub_name_eq(st->name, name))
			continue;
		if (st->type == type)
			return st;
		if (st->type == 0)
			any = st;
	}
	return any;
}

static bool stub_name_exists(const struct auth_dns_stub *stub, const char *name)
{
	for (unsigned int i = 0; i < stub->rr_count; i++) {
		if (stub_name_eq(stub->rrs[i].name, name))
			return true;
	}
	for (unsigned int i = 0; i < stub->status_count; i++) {
		if (stub_name_eq(stub->statuses[i].name, name))
			return true;
	}
	return false;
}

void auth_dns_stub_set_any_names(struct auth_dns_stub *stub, bool on)
{
	stub->any_names = on;
}

/* dns_name_is_valid(), or with any_names only the label and name lengths
   of the wire format (RFC 1035 2.3.4). */
static bool stub_name_valid(const struct auth_dns_stub *stub, const char *name)
{
	size_t len = strlen(name), label = 0;

	if (!stub->any_names)
		return dns_name_is_valid(name);
	if (len > 1 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (name[i] != '.') {
			if (++label > 63)
				return false;
		} else if (label == 0) {
			return false;
		} else {
			label = 0;
		}
	}
	return label > 0;
}

/* Fills answer (answer->rrs must have room for every record of the zone)
   for name and type, following CNAMEs. */
static void stub_resolve(const struct auth_dns_stub *stub, const char *name,
			 uint16_t type, struct stub_answer *answer)
{
	const char *cur = name;

	answer->count = 0;
	if (!stub_name_valid(stub, name)) {
		answer->info.status = DNS_STATUS_INVALID_NAME;
		answer->info.error = "invalid name";
		return;
	}
	for (unsigned int hop = 0; hop <= STUB_CNAME_HOPS_MAX; hop++) {
		const struct stub_status *st =
			stub_find_status(stub, cur, type);
		const struct stub_rr *cname = NULL;

		if (st != NULL) {
			answer->info.status = st->status;
			if (st->status == DNS_STATUS_TEMPFAIL)
				answer->info.error = "stub: simulated failure";
			return;
		}
		for (unsigned int i = 0; i < stub->rr_count; i++) {
			const struct stub_rr *rr = &stub->rrs[i];

			if (!stub_name_eq(rr->name, cur))
				continue;
			if (rr->type == type)
				answer->rrs[answer->count++] = rr;
			else if (rr->type == DNS_TYPE_CNAME && cname == NULL)
				cname = rr;
		}
		if (answer->count > 0) {
			answer->info.status = DNS_STATUS_OK;
			answer->info.ttl = STUB_TTL;
			return;
		}
		if (cname == NULL || type == DNS_TYPE_CNAME) {
			answer->info.status = stub_name_exists(stub, cur)
						      ? DNS_STATUS_NODATA
						      : DNS_STATUS_NXDOMAIN;
			return;
		}
		cur = (const char *)cname->data;
		answer->info.canonical_name = cur;
		if (!stub_name_valid(stub, cur)) {
			answer->info.status = DNS_STATUS_TEMPFAIL;
			answer->info.error = "stub: CNAME to an invalid name";
			return;
		}
	}
	answer->info.status = DNS_STATUS_TEMPFAIL;
	answer->info.error = "stub: CNAME chain too long";
}

static void stub_deliver_txt(struct stub_lookup *l,
			     const struct stub_answer *answer)
{
	struct dns_txt_result result;
	struct dns_txt *txt = i_new(struct dns_txt, answer->count + 1);

	memset(&result, 0, sizeof(result));
	result.info = answer->info;
	for (unsigned int i = 0; i < answer->count; i++) {
		txt[i].text = (const char *)answer->rrs[i]->data;
		txt[i].len = answer->rrs[i]->len;
	}
	result.txt = txt;
	result.count = answer->count;
	l->cb.txt(l->context, &result);
	i_free(txt);
}

static void stub_deliver_mx(const struct auth_dns_stub *stub,
			    struct stub_lookup *l,
			    const struct stub_answer *answer)
{
	struct dns_mx_result result;
	struct dns_mx *mx = i_new(struct dns_mx, answer->count + 1);
	unsigned int count = 0, roots = 0;

	memset(&result, 0, sizeof(result));
	result.info = answer->info;
	for (unsigned int i = 0; i < answer->count; i++) {
		const struct stub_rr *rr = answer->rrs[i];
		const char *host = (const char *)rr->data;
		unsigned int j;

		if (host[0] == '\0') {
			roots++;
			continue;
		}
		if (!stub_name_valid(stub, host))
			continue;
		/* Stable insertion by preference. */
		for (j = count; j > 0 && mx[j - 1].preference > rr->preference;
		     j--)
			mx[j] = mx[j - 1];
		mx[j].preference = rr->preference;
		mx[j].host = host;
		count++;
	}
	if (result.info.status == DNS_STATUS_OK) {
		/* RFC 7505 3, as dns.c: a lone "." is a null MX. */
		if (count == 0 && roots == 1 && answer->count == 1)
			result.null_mx = true;
		else if (count == 0)
			result.unusable = true;
	}
	result.mx = mx;
	result.count = count;
	l->cb.mx(l->context, &result);
	i_free(mx);
}

/* Appends name in uncompressed wire format; false if it does not fit the
   wire rules (label of 1..63 octets, 255 octets in all). */
static bool stub_wire_name(struct buf *out, const char *name)
{
	size_t start = out->used;

	while (*name != '\0') {
		const char *dot = strchr(name, '.');
		size_t len = dot == NULL ? strlen(name) : (size_t)(dot - name);

		if (len == 0 || len > 63)
			return false;
		buf_append_c(out, (uint8_t)len);
		buf_append(out, name, len);
		name += len;
		if (*name == '.')
			name++;
	}
	buf_append_c(out, 0);
	return out->used - start <= 255;
}

static void stub_deliver_raw(struct stub_lookup *l,
			     const struct stub_answer *answer)
{
	struct dns_raw_result result;
	struct dns_rdata *rdata = i_new(struct dns_rdata, answer->count + 1);
	struct buf *bufs = i_new(struct buf, answer->count + 1);
	unsigned int count = 0;

	memset(&result, 0, sizeof(result));
	result.info = answer->info;
	result.rrtype = l->rrtype;
	for (unsigned int i = 0; i < answer->count; i++) {
		const struct stub_rr *rr = answer->rrs[i];
		struct buf *b = &bufs[count];
		bool ok = true;

		buf_init(b, rr->len + 8);
		switch (rr->type) {
		case DNS_TYPE_TXT:
			/* RFC 1035 3.3.14: character-strings. */
			for (size_t pos = 0; pos < rr->len || pos == 0;) {
				size_t n = rr->len - pos > 255 ? 255
							       : rr->len - pos;

				buf_append_c(b, (uint8_t)n);
				buf_append(b, rr->data + pos, n);
				pos += n;
				if (n == 0)
					break;
			}
			break;
		case DNS_TYPE_MX:
			buf_append_c(b, (uint8_t)(rr->preference >> 8));
			buf_append_c(b, (uint8_t)rr->preference);
			ok = stub_wire_name(b, (const char *)rr->data);
			break;
		case DNS_TYPE_PTR:
		case DNS_TYPE_CNAME:
			ok = stub_wire_name(b, (const char *)rr->data);
			break;
		default:
			buf_append(b, rr->data, rr->len);
			break;
		}
		if (!ok) {
			buf_free(b);
			continue;
		}
		rdata[count].data = b->data;
		rdata[count].len = b->used;
		count++;
	}
	result.rdata = rdata;
	result.count = count;
	if (result.info.status == DNS_STATUS_OK && count == 0) {
		result.info.status = DNS_STATUS_TEMPFAIL;
		result.info.error = "stub: unencodable rdata";
	}
	l->cb.raw(l->context, &result);
	for (unsigned int i = 0; i < count; i++)
		buf_free(&bufs[i]);
	i_free(bufs);
	i_free(rdata);
}

unsigned int auth_dns_stub_run(struct auth_dns_stub *stub)
{
	unsigned int delivered = 0;

	while (stub->head != NULL) {
		struct stub_lookup *l = stub->head;
		struct stub_answer answer;

		if (++delivered > STUB_RUN_MAX)
			i_panic("auth_dns_stub: more than %u lookups",
				STUB_RUN_MAX);
		stub->head = l->next;
		if (stub->head == NULL)
			stub->tail = NULL;
		stub->pending--;

		memset(&answer, 0, sizeof(answer));
		answer.rrs = i_new(const struct stub_rr *, stub->rr_count + 1);
		stub_resolve(stub, l->name, l->rrtype, &answer);
		switch (l->kind) {
		case STUB_KIND_TXT:
			stub_deliver_txt(l, &answer);
			break;
		case STUB_KIND_MX:
			stub_deliver_mx(stub, l, &answer);
			break;
		case STUB_KIND_RAW:
			stub_deliver_raw(l, &answer);
			break;
		}
		i_free(answer.rrs);
		stub_lookup_free(l);
	}
	return delivered;
}

unsigned int auth_dns_stub_queries(const struct auth_dns_stub *stub)
{
	return stub->queries;
}

unsigned int auth_dns_stub_pending(const struct auth_dns_stub *stub)
{
	return stub->pending;
}
