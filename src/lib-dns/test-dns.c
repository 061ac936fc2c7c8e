/* test-dns.c - unit tests for dns.c against a small DNS responder that
   runs in a thread of the test on 127.0.0.1 (a random UDP port) and answers
   from a fixed table: MX sorting and the RFC 7505 null MX, NXDOMAIN, NODATA,
   SERVFAIL and a silent server (timeout) as distinct outcomes, AAAA+A host
   lookups (partial when one family fails), TXT concatenation, TLSA, raw
   rdata, invalid names (never sent, answered from the loop), cancellation,
   destroying the resolver inside a callback, and bad settings. The
   integration tests resolve through a real authoritative server (nsd). */

#include "dns.h"
#include "ioloop.h"
#include "settings.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* --- the responder ----------------------------------------------------- */

#define RR_MAX 4

struct fake_rr {
	const char *name; /* lower case, no trailing dot */
	uint16_t type;
	int rcode; /* -1: never answer */
	unsigned int count;
	struct {
		const char *data;
		size_t len;
	} rdata[RR_MAX];
};

#define RD(lit)                      \
	{                            \
		lit, sizeof(lit) - 1 \
	}

static const struct fake_rr fake_zone[] = {
	/* MX 20 mx2.remote.test, 10 mx1.remote.test, 10 mx1b.remote.test */
	{ "remote.test",
	  DNS_TYPE_MX,
	  0,
	  3,
	  { RD("\x00\x14\x03mx2\x06remote\x04test\x00"),
	    RD("\x00\x0a\x03mx1\x06remote\x04test\x00"),
	    RD("\x00\x0a\x04mx1b\x06remote\x04test\x00") } },
	/* RFC 7505 3: MX 0 . */
	{ "nullmx.test", DNS_TYPE_MX, 0, 1, { RD("\x00\x00\x00") } },
	/* A label with a space cannot be a host name. */
	{ "badmx.test",
	  DNS_TYPE_MX,
	  0,
	  1,
	  { RD("\x00\x0a\x03"
	       "a b\x00") } },
	/* A "." beside a real MX: the "." is dropped. */
	{ "mixed.test",
	  DNS_TYPE_MX,
	  0,
	  2,
	  { RD("\x00\x00\x00"), RD("\x00\x05\x02mx\x05mixed\x04test\x00") } },
	{ "aonly.test", DNS_TYPE_A, 0, 1, { RD("\x7f\x00\x00\x03") } },
	{ "dual.test",
	  DNS_TYPE_A,
	  0,
	  2,
	  { RD("\x7f\x00\x00\x05"), RD("\x7f\x00\x00\x06") } },
	{ "dual.test",
	  DNS_TYPE_AAAA,
	  0,
	  1,
	  { RD("\x00\x00\x00\x00\x00\x00\x00\x00"
	       "\x00\x00\x00\x00\x00\x00\x00\x01") } },
	/* A answers, AAAA is a server failure. */
	{ "half.test", DNS_TYPE_A, 0, 1, { RD("\x7f\x00\x00\x07") } },
	{ "half.test", DNS_TYPE_AAAA, 2, 0, { { NULL, 0 } } },
	/* TXT "v=spf1 " "-all" and TXT "second" */
	{ "txt.test",
	  DNS_TYPE_TXT,
	  0,
	  2,
	  { RD("\x07v=spf1 \x04-all"), RD("\x06second") } },
	/* A length octet past the end of the rdata. */
	{ "badtxt.test",
	  DNS_TYPE_TXT,
	  0,
	  1,
	  { RD("\x09"
	       "abc") } },
	/* A TLSA too short for its three fixed octets. */
	{ "badtlsa.test", DNS_TYPE_TLSA, 0, 1, { RD("\x03\x01") } },
	{ "_25._tcp.mx1.remote.test",
	  DNS_TYPE_TLSA,
	  0,
	  1,
	  { RD("\x03\x01\x01"
	       "0123456789abcdef0123456789abcdef") } },
	{ "servfail.test", DNS_TYPE_MX, 2, 0, { { NULL, 0 } } },
	{ "refused.test", DNS_TYPE_MX, 5, 0, { { NULL, 0 } } },
	{ "silent.test", DNS_TYPE_MX, -1, 0, { { NULL, 0 } } },
	{ "silent.test", DNS_TYPE_A, -1, 0, { { NULL, 0 } } },
	{ "silent.test", DNS_TYPE_AAAA, -1, 0, { { NULL, 0 } } },
};

/* Names that exist (NODATA for types not in the table). */
static const char *const fake_names[] = {
	"remote.test", "nullmx.test",  "badmx.test",
	"mixed.test",  "aonly.test",   "dual.test",
	"half.test",   "txt.test",     "_25._tcp.mx1.remote.test",
	"badtxt.test", "badtlsa.test",
};

struct responder {
	int fd;
	unsigned int port;
	pthread_t thread;
	atomic_bool stop;
	atomic_uint queries;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* Appends "test. SOA ns.test. hm.test. 1 3600 3600 3600 60" to the
   authority section (negative answers, RFC 2308 3). */
static size_t put_soa(uint8_t *out, size_t pos)
{
	static const uint8_t soa[] =
		"\x04test\x00\x00\x06\x00\x01\x00\x00\x00\x3c\x00\x26"
		"\x02ns\x04test\x00\x02hm\x04test\x00"
		"\x00\x00\x00\x01\x00\x00\x0e\x10\x00\x00\x0e\x10"
		"\x00\x00\x0e\x10\x00\x00\x00\x3c";
	size_t len = sizeof(soa) - 1;

	memcpy(out + pos, soa, len);
	return pos + len;
}

static void responder_answer(struct responder *r, const uint8_t *q, size_t len,
			     const struct sockaddr_in *from)
{
	uint8_t out[1500];
	char name[256];
	size_t pos = 12, o = 0;

	if (len < 12 + 5 || (q[2] & 0x80) != 0)
		return;
	while (pos < len && q[pos] != 0) {
		uint8_t l = q[pos++];
		if (l > 63 || pos + l > len || o + l + 1 >= sizeof(name))
			return;
		if (o > 0)
			name[o++] = '.';
		for (uint8_t i = 0; i < l; i++) {
			char c = (char)q[pos + i];
			name[o++] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
		}
		pos += l;
	}
	name[o] = '\0';
	if (pos + 5 > len)
		return;
	pos++;
	uint16_t type = (uint16_t)((q[pos] << 8) | q[pos + 1]);
	size_t qend = pos + 4;

	atomic_fetch_add(&r->queries, 1);
	const struct fake_rr *rr = NULL;
	bool exists = false;
	for (size_t i = 0; i < N_ELEMENTS(fake_zone); i++) {
		if (strcmp(fake_zone[i].name, name) == 0) {
			exists = true;
			if (fake_zone[i].type == type)
				rr = &fake_zone[i];
		}
	}
	for (size_t i = 0; i < N_ELEMENTS(fake_names); i++) {
		if (strcmp(fake_names[i], name) == 0)
			exists = true;
	}
	if (rr != NULL && rr->rcode < 0)
		return;

	memcpy(out, q, qend);
	int rcode = rr != NULL ? rr->rcode : exists ? 0 : 3;
	/* QR, AA, RD copied, RA; no EDNS in the answer. */
	out[2] = (uint8_t)(0x84 | (q[2] & 0x01));
	out[3] = (uint8_t)(0x80 | rcode);
	put16(out + 6, 0);
	put16(out + 8, 0);
	put16(out + 10, 0);
	size_t w = qend;
	if (rr != NULL && rcode == 0) {
		for (unsigned int i = 0; i < rr->count; i++) {
			put16(out + w, 0xc00c);
			put16(out + w + 2, type);
			put16(out + w + 4, 1);
			put32(out + w + 6, 60);
			put16(out + w + 10, (uint16_t)rr->rdata[i].len);
			memcpy(out + w + 12, rr->rdata[i].data,
			       rr->rdata[i].len);
			w += 12 + rr->rdata[i].len;
		}
		put16(out + 6, (uint16_t)rr->count);
	} else if (rcode == 0 || rcode == 3) {
		w = put_soa(out, w);
		put16(out + 8, 1);
	}
	(void)sendto(r->fd, out, w, 0, (const struct sockaddr *)from,
		     sizeof(*from));
}

static void *responder_thread(void *context)
{
	struct responder *r = context;

	while (!atomic_load(&r->stop)) {
		struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
		uint8_t buf[1500];
		struct sockaddr_in from;
		socklen_t fromlen = sizeof(from);

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		ssize_t n = recvfrom(r->fd, buf, sizeof(buf), 0,
				     (struct sockaddr *)&from, &fromlen);
		if (n > 0)
			responder_answer(r, buf, (size_t)n, &from);
	}
	return NULL;
}

static void responder_start(struct responder *r)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);

	memset(r, 0, sizeof(*r));
	r->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(r->fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(r->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(r->fd, (struct sockaddr *)&sin, &len), 0);
	r->port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&r->thread, NULL, responder_thread, r),
			 0);
}

static void responder_stop(struct responder *r)
{
	atomic_store(&r->stop, true);
	pthread_join(r->thread, NULL);
	close(r->fd);
}

/* --- fixture ----------------------------------------------------------- */

struct fixture {
	struct responder responder;
	struct ioloop *ioloop;
	struct dns *dns;
	bool in_call; /* set while a dns_lookup_*() call runs */
	unsigned int callbacks;
	/* copies of the last result */
	enum dns_status status;
	bool null_mx, unusable, partial, bogus, secure;
	char error[128];
	char canonical[256];
	unsigned int count;
	char items[8][300];
	size_t item_len[8];
	unsigned int ttl;
	struct fixture *destroy_in_cb;
};

static int setup(void **state)
{
	struct fixture *f = i_new(struct fixture, 1);
	char resolver[64];
	const char *error;

	responder_start(&f->responder);
	snprintf(resolver, sizeof(resolver), "127.0.0.1@%u", f->responder.port);
	f->ioloop = ioloop_create();
	struct dns_settings set = { .resolver = resolver,
				    .timeout_msecs = 3000 };
	f->dns = dns_create(f->ioloop, &set, &error);
	if (f->dns == NULL)
		fail_msg("dns_create: %s", error);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	dns_destroy(&f->dns);
	ioloop_destroy(&f->ioloop);
	responder_stop(&f->responder);
	i_free(f);
	return 0;
}

static void run_until(struct fixture *f, unsigned int callbacks)
{
	/* Bounded: at most 10 s. */
	for (unsigned int i = 0; i < 200 && f->callbacks < callbacks; i++)
		ioloop_run_once(f->ioloop, 50);
	assert_int_equal(f->callbacks, callbacks);
}

static void record_info(struct fixture *f, const struct dns_result_info *info)
{
	assert_false(f->in_call);
	f->callbacks++;
	f->status = info->status;
	f->bogus = info->bogus;
	f->secure = info->secure;
	f->ttl = info->ttl;
	snprintf(f->error, sizeof(f->error), "%s",
		 info->error == NULL ? "" : info->error);
	snprintf(f->canonical, sizeof(f->canonical), "%s",
		 info->canonical_name == NULL ? "" : info->canonical_name);
}

static void mx_cb(void *context, const struct dns_mx_result *r)
{
	struct fixture *f = context;

	record_info(f, &r->info);
	f->null_mx = r->null_mx;
	f->unusable = r->unusable;
	f->count = r->count;
	for (unsigned int i = 0; i < r->count && i < 8; i++)
		snprintf(f->items[i], sizeof(f->items[i]), "%u %s",
			 r->mx[i].preference, r->mx[i].host);
	if (f->destroy_in_cb != NULL)
		dns_destroy(&f->destroy_in_cb->dns);
}

static void host_cb(void *context, const struct dns_host_result *r)
{
	struct fixture *f = context;

	record_info(f, &r->info);
	f->partial = r->partial;
	f->count = r->count;
	for (unsigned int i = 0; i < r->count && i < 8; i++)
		snprintf(f->items[i], sizeof(f->items[i]), "%s",
			 r->addrs[i].text);
}

static void txt_cb(void *context, const struct dns_txt_result *r)
{
	struct fixture *f = context;

	record_info(f, &r->info);
	f->count = r->count;
	for (unsigned int i = 0; i < r->count && i < 8; i++) {
		snprintf(f->items[i], sizeof(f->items[i]), "%s",
			 r->txt[i].text);
		f->item_len[i] = r->txt[i].len;
	}
}

static void tlsa_cb(void *context, const struct dns_tlsa_result *r)
{
	struct fixture *f = context;

	record_info(f, &r->info);
	f->count = r->count;
	for (unsigned int i = 0; i < r->count && i < 8; i++) {
		snprintf(f->items[i], sizeof(f->items[i]), "%u %u %u %.*s",
			 r->tlsa[i].usage, r->tlsa[i].selector,
			 r->tlsa[i].matching_type, (int)r->tlsa[i].len,
			 (const char *)r->tlsa[i].data);
	}
}

static void raw_cb(void *context, const struct dns_raw_result *r)
{
	struct fixture *f = context;

	record_info(f, &r->info);
	f->count = r->count;
	for (unsigned int i = 0; i < r->count && i < 8; i++)
		f->item_len[i] = r->rdata[i].len;
}

static void lookup_mx(struct fixture *f, const char *name)
{
	f->in_call = true;
	(void)dns_lookup_mx(f->dns, name, mx_cb, f);
	f->in_call = false;
}

/* --- tests ------------------------------------------------------------- */

static void test_mx_sorted(void **state)
{
	struct fixture *f = *state;
	bool seen_a = false, seen_b = false;

	/* Equal preferences come in random order: over 24 fresh lookups
	   (the answer is cached, the shuffle is ours) both orders show. */
	for (unsigned int i = 0; i < 24; i++) {
		lookup_mx(f, "remote.test");
		run_until(f, i + 1);
		assert_int_equal(f->status, DNS_STATUS_OK);
		assert_false(f->null_mx);
		assert_int_equal(f->count, 3);
		assert_string_equal(f->items[2], "20 mx2.remote.test");
		if (strcmp(f->items[0], "10 mx1.remote.test") == 0) {
			assert_string_equal(f->items[1], "10 mx1b.remote.test");
			seen_a = true;
		} else {
			assert_string_equal(f->items[0], "10 mx1b.remote.test");
			assert_string_equal(f->items[1], "10 mx1.remote.test");
			seen_b = true;
		}
		assert_true(f->ttl > 0 && f->ttl <= 60);
		/* No CNAME followed. */
		assert_string_equal(f->canonical, "");
		assert_false(f->secure);
		assert_false(f->bogus);
	}
	assert_true(seen_a && seen_b);
	assert_int_equal(dns_pending_count(f->dns), 0);
}

static void test_null_mx(void **state)
{
	struct fixture *f = *state;

	lookup_mx(f, "nullmx.test");
	run_until(f, 1);
	assert_int_equal(f->status, DNS_STATUS_OK);
	assert_true(f->null_mx);
	assert_false(f->unusable);
	assert_int_equal(f->count, 0);

	/* A "." beside another MX is not a null MX: it is skipped. */
	lookup_mx(f, "mixed.test");
	run_until(f, 2);
	assert_int_equal(f->status, DNS_STATUS_OK);
	assert_false(f->null_mx);
	assert_int_equal(f->count, 1);
	assert_string_equal(f->items[0], "5 mx.mixed.test");

	lookup_mx(f, "badmx.test");
	run_until(f, 3);
	assert_int_equal(f->status, DNS_STATUS_OK);
	assert_false(f->null_mx);
	assert_true(f->unusable);
	assert_int_equal(f->count, 0);
}

static void test_negative(void **state)
{
	struct fixture *f = *state;

	lookup_mx(f, "nx.test");
	run_until(f, 1);
	assert_int_equal(f->status, DNS_STATUS_NXDOMAIN);

	/* Exists with an A record only: the caller's implicit MX. */
	lookup_mx(f, "aonly.test");
	run_until(f, 2);
	assert_int_equal(f->status, DNS_STATUS_NODATA);
	assert_int_equal(f->count, 0);

	lookup_mx(f, "servfail.test");
	run_until(f, 3);
	assert_int_equal(f->status, DNS_STATUS_TEMPFAIL);
	assert_true(f->error[0] != '\0');

	lookup_mx(f, "refused.test");
	run_until(f, 4);
	assert_int_equal(f->status, DNS_STATUS_TEMPFAIL);
}

static void test_host(void **state)
{
	struct fixture *f = *state;

	(void)dns_lookup_host(f->dns, "dual.test", host_cb, f);
	run_until(f, 1);
	assert_int_equal(f->status, DNS_STATUS_OK);
	assert_false(f->partial);
	assert_int_equal(f->count, 3);
	assert_string_equal(f->items[0], "::1");
	/* Within a family the order is the resolver's (it may rotate). */
	assert_true((strcmp(f->items[1], "127.0.0.5") == 0 &&
		     strcmp(f->items[2], "127.0.0.6") == 0) ||
		    (strcmp(f->items[1], "127.0.0.6") == 0 &&
		     strcmp(f->items[2], "127.0.0.5") == 0));

	(void)dns_lookup_host(f->dns, "aonly.test", host_cb, f);
	run_until(f, 2);
	assert_int_equal(f->status, DNS_STATUS_OK);
	assert_false(f->partial);
	assert_int_equal(f->count, 1);
	assert_string_equal(f->items[0], "127.0.0.3");

	(void)dns_lookup_host(f->dns, "half.test", host_cb, f);
	run_until(f, 3);
	assert_int_equal(f->status, DNS_STATUS_OK);
	assert_true(f->partial);
	assert_int_equal(f->count, 1);
	assert_string_equal(f->items[0], "127.0.0.7");
	assert_non_null(strstr(f->error, "AAAA"));

	(void)dns_lookup_host(f->dns, "txt.test", host_cb, f);
	run_until(f, 4);
	assert_int_equal(f->status, DNS_STATUS_NODATA);
	assert_int_equal(f->count, 0);

	(void)dns_lookup_host(f->dns, "nx.test", host_cb, f);
	run_until(f, 5);
	assert_int_equal(f->status, DNS_STATUS_NXDOMAIN);
}

static void test_txt_tlsa_raw(void **state)
{
	struct fixture *f = *state;

	(void)dns_lookup_txt(f->dns, "txt.test", txt_cb, f);
	run_until(f, 1);
	assert_int_equal(f->status, DNS_STATUS_OK);
	assert_int_equal(f->count, 2);
	/* RFC 7208 3.3: strings of one record join without a space. */
	bool first = strcmp(f->items[0], "v=spf1 -all") == 0;
	assert_string_equal(f->items[first ? 0 : 1], "v=spf1 -all");
	assert_int_equal(f->item_len[first ? 0 : 1], 11);
	assert_string_equal(f->items[first ? 1 : 0], "second");

	(void)dns_lookup_tlsa(f->dns, "_25._tcp.mx1.remote.test", tlsa_cb, f);
	run_until(f, 2);
	assert_int_equal(f->status, DNS_STATUS_OK);
	assert_int_equal(f->count, 1);
	assert_string_equal(f->items[0],
			    "3 1 1 0123456789abcdef0123456789abcdef");

	(void)dns_lookup_raw(f->dns, "nullmx.test", DNS_TYPE_MX, raw_cb, f);
	run_until(f, 3);
	assert_int_equal(f->status, DNS_STATUS_OK);
	assert_int_equal(f->count, 1);
	assert_int_equal(f->item_len[0], 3);
}

static void test_malformed_answers(void **state)
{
	struct fixture *f = *state;

	/* Whether libunbound drops the record or hands it on, a malformed
	   answer is never data: a temporary failure, nothing read past the
	   rdata (ASan). */
	(void)dns_lookup_txt(f->dns, "badtxt.test", txt_cb, f);
	run_until(f, 1);
	assert_int_equal(f->status, DNS_STATUS_TEMPFAIL);
	assert_int_equal(f->count, 0);

	(void)dns_lookup_tlsa(f->dns, "badtlsa.test", tlsa_cb, f);
	run_until(f, 2);
	assert_int_equal(f->status, DNS_STATUS_TEMPFAIL);
	assert_int_equal(f->count, 0);
}

static void test_invalid_names(void **state)
{
	static const char *const bad[] = {
		"",
		".",
		"a..b",
		".a",
		"bad name.test",
		"x\\.y.test",
		"a\"b.test",
		"a/b.test",
		"caf\xc3\xa9.test",
		"1234567890123456789012345678901234567890123456789012345678901"
		"234.test",
	};
	struct fixture *f = *state;
	unsigned int sent = atomic_load(&f->responder.queries);

	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		assert_false(dns_name_is_valid(bad[i]));
		lookup_mx(f, bad[i]);
		run_until(f, (unsigned int)i + 1);
		assert_int_equal(f->status, DNS_STATUS_INVALID_NAME);
	}
	assert_int_equal(atomic_load(&f->responder.queries), sent);
	assert_true(dns_name_is_valid("remote.test."));
	assert_true(dns_name_is_valid("_dmarc.example.org"));
	assert_true(dns_name_is_valid("xn--caf-dma.test"));
	/* 253 characters is the longest name. */
	char longest[254];
	memset(longest, 'a', 253);
	for (size_t i = 63; i < 253; i += 64)
		longest[i] = '.';
	longest[253] = '\0';
	assert_true(dns_name_is_valid(longest));
	char too_long[256];
	memcpy(too_long, longest, 253);
	memcpy(too_long + 253, "a", 2);
	assert_false(dns_name_is_valid(too_long));
}

static void test_timeout(void **state)
{
	struct fixture *f = *state;
	struct dns_settings set = { .resolver = NULL, .timeout_msecs = 300 };
	char resolver[64];
	const char *error;

	snprintf(resolver, sizeof(resolver), "127.0.0.1@%u", f->responder.port);
	set.resolver = resolver;
	dns_destroy(&f->dns);
	f->dns = dns_create(f->ioloop, &set, &error);
	assert_non_null(f->dns);

	uint64_t start = ioloop_now_ms(f->ioloop);
	lookup_mx(f, "silent.test");
	run_until(f, 1);
	assert_int_equal(f->status, DNS_STATUS_TEMPFAIL);
	assert_string_equal(f->error, "timed out");
	assert_true(ioloop_now_ms(f->ioloop) - start < 2000);

	(void)dns_lookup_host(f->dns, "silent.test", host_cb, f);
	run_until(f, 2);
	assert_int_equal(f->status, DNS_STATUS_TEMPFAIL);
	assert_int_equal(dns_pending_count(f->dns), 0);
}

static void test_cancel(void **state)
{
	struct fixture *f = *state;
	struct dns_lookup *a, *b, *c;

	a = dns_lookup_mx(f->dns, "silent.test", mx_cb, f);
	b = dns_lookup_mx(f->dns, "remote.test", mx_cb, f);
	c = dns_lookup_host(f->dns, "dual.test", host_cb, f);
	assert_int_equal(dns_pending_count(f->dns), 3);
	dns_lookup_cancel(&a);
	dns_lookup_cancel(&b);
	assert_null(a);
	assert_null(b);
	dns_lookup_cancel(&b); /* NULL is fine */
	run_until(f, 1); /* only c */
	assert_int_equal(f->status, DNS_STATUS_OK);
	assert_int_equal(f->count, 3);
	for (unsigned int i = 0; i < 10; i++)
		ioloop_run_once(f->ioloop, 50);
	assert_int_equal(f->callbacks, 1);
	assert_int_equal(dns_pending_count(f->dns), 0);
	(void)c;

	/* Cancelling an invalid-name lookup before the loop runs. */
	a = dns_lookup_mx(f->dns, "a..b", mx_cb, f);
	dns_lookup_cancel(&a);
	for (unsigned int i = 0; i < 3; i++)
		ioloop_run_once(f->ioloop, 10);
	assert_int_equal(f->callbacks, 1);
}

static void test_cancel_failure(void **state)
{
	struct fixture *f = *state;
	struct dns_lookup *l;

	/* ub_cancel() fails: the lookup still ends for its owner at once,
	   and the late answer finds an orphan, not freed memory (ASan). */
	dns_test_fail_cancels(1);
	l = dns_lookup_mx(f->dns, "remote.test", mx_cb, f);
	dns_lookup_cancel(&l);
	assert_int_equal(dns_pending_count(f->dns), 0);
	assert_int_equal(dns_test_orphans(f->dns), 1);
	for (unsigned int i = 0; i < 100 && dns_test_orphans(f->dns) > 0; i++)
		ioloop_run_once(f->ioloop, 50);
	assert_int_equal(dns_test_orphans(f->dns), 0);
	assert_int_equal(f->callbacks, 0);

	/* One of the two queries of a host lookup, on its deadline. */
	struct dns_settings set = { .timeout_msecs = 300 };
	char resolver[64];
	const char *error;
	snprintf(resolver, sizeof(resolver), "127.0.0.1@%u", f->responder.port);
	set.resolver = resolver;
	dns_destroy(&f->dns);
	f->dns = dns_create(f->ioloop, &set, &error);
	assert_non_null(f->dns);
	dns_test_fail_cancels(1);
	(void)dns_lookup_host(f->dns, "silent.test", host_cb, f);
	run_until(f, 1);
	assert_int_equal(f->status, DNS_STATUS_TEMPFAIL);
	assert_string_equal(f->error, "timed out");
	assert_int_equal(dns_test_orphans(f->dns), 1);
	/* Never answered: dns_destroy() (teardown) frees it. */
}

static void test_destroy_in_callback(void **state)
{
	struct fixture *f = *state;

	/* Two answers in one dispatch: the first callback destroys the
	   resolver, the second never runs, nothing leaks (ASan). */
	f->destroy_in_cb = f;
	(void)dns_lookup_mx(f->dns, "remote.test", mx_cb, f);
	(void)dns_lookup_mx(f->dns, "nullmx.test", mx_cb, f);
	(void)dns_lookup_mx(f->dns, "silent.test", mx_cb, f);
	for (unsigned int i = 0; i < 100 && f->dns != NULL; i++)
		ioloop_run_once(f->ioloop, 50);
	assert_null(f->dns);
	assert_true(f->callbacks >= 1);
	unsigned int seen = f->callbacks;
	for (unsigned int i = 0; i < 10; i++)
		ioloop_run_once(f->ioloop, 20);
	assert_int_equal(f->callbacks, seen);
	assert_int_equal(seen, 1);
}

static void test_bad_settings(void **state)
{
	static const char *const bad[] = {
		"localhost",     "127.0.0.1@", "127.0.0.1@0", "127.0.0.1@65536",
		"127.0.0.1@53x", "300.1.1.1",  " , ",         "127.0.0.1:53",
	};
	struct fixture *f = *state;
	const char *error;

	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		struct dns_settings set = { .resolver = bad[i] };
		assert_null(dns_create(f->ioloop, &set, &error));
		assert_non_null(strstr(error, "dns_resolver"));
	}
	struct dns_settings set = {
		.resolver = "127.0.0.1@5353, ::1",
		.trust_anchor_file = "/nonexistent/root.key",
	};
	assert_null(dns_create(f->ioloop, &set, &error));
	assert_non_null(strstr(error, "/nonexistent/root.key"));
	set.trust_anchor_file = NULL;
	struct dns *dns = dns_create(f->ioloop, &set, &error);
	assert_non_null(dns);
	dns_destroy(&dns);
	assert_null(dns);
	dns_destroy(&dns);
	assert_string_equal(dns_status_name(DNS_STATUS_NODATA), "NODATA");
}

static void test_settings_init(void **state)
{
	struct fixture *f = *state;
	struct marmot_settings mset;
	struct dns_settings set;
	char resolver[64];
	const char *error;

	/* marmot.conf's keywords: "none" (no validation) and a forwarder. */
	memset(&mset, 0, sizeof(mset));
	snprintf(resolver, sizeof(resolver), "127.0.0.1@%u", f->responder.port);
	mset.dns_resolver = resolver;
	mset.dns_trust_anchor_file = (char *)"none";
	mset.dns_timeout = 7;
	dns_settings_init(&set, &mset);
	assert_int_equal(set.timeout_msecs, 7000);
	dns_destroy(&f->dns);
	f->dns = dns_create(f->ioloop, &set, &error);
	assert_non_null(f->dns);
	lookup_mx(f, "nullmx.test");
	run_until(f, 1);
	assert_true(f->null_mx);

	mset.dns_trust_anchor_file = (char *)"root.key";
	dns_settings_init(&set, &mset);
	assert_null(dns_create(f->ioloop, &set, &error));
	assert_non_null(strstr(error, "absolute"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mx_sorted, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_null_mx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_negative, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_txt_tlsa_raw, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_malformed_answers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_invalid_names, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_failure, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_destroy_in_callback, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_settings, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_settings_init, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
