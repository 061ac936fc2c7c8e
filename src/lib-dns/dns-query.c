/* dns-query.c - a test tool (not installed): resolves names through
   dns.c exactly as the front does and prints one line per result, so the
   integration tests can check lib-dns against a real authoritative server
   (tests/integration/dnsserver.py) and operators can check a resolver
   setting:

     dns-query [--trust-anchor FILE] RESOLVER|resolv.conf mx|host|txt|tlsa
	       NAME...

   Output per name: "NAME TYPE STATUS [secure] [bogus] [null_mx]
   [unusable] [partial] [canonical=NAME] [error="..."]" then one indented line
   per record. All names are looked up concurrently in one ioloop. Exit 0 when
   every lookup completed (whatever its status), 1 on a usage or settings error.
 */

#include "dns.h"
#include "ioloop.h"

#include <stdio.h>
#include <string.h>

struct query {
	const char *name;
	const char *type;
	struct ioloop *ioloop;
	unsigned int *remaining;
};

static void print_info(const struct query *q,
		       const struct dns_result_info *info, const char *extra)
{
	printf("%s %s %s%s%s%s", q->name, q->type,
	       dns_status_name(info->status), info->secure ? " secure" : "",
	       info->bogus ? " bogus" : "", extra);
	if (info->canonical_name != NULL)
		printf(" canonical=%s", info->canonical_name);
	if (info->error != NULL)
		printf(" error=\"%s\"", info->error);
	printf("\n");
}

static void query_done(struct query *q)
{
	fflush(stdout);
	if (--*q->remaining == 0)
		ioloop_stop(q->ioloop);
}

static void mx_cb(void *context, const struct dns_mx_result *r)
{
	struct query *q = context;

	print_info(q, &r->info,
		   r->null_mx ? " null_mx" : (r->unusable ? " unusable" : ""));
	for (unsigned int i = 0; i < r->count; i++)
		printf("  %u %s\n", r->mx[i].preference, r->mx[i].host);
	query_done(q);
}

static void host_cb(void *context, const struct dns_host_result *r)
{
	struct query *q = context;

	print_info(q, &r->info, r->partial ? " partial" : "");
	for (unsigned int i = 0; i < r->count; i++)
		printf("  %s\n", r->addrs[i].text);
	query_done(q);
}

static void txt_cb(void *context, const struct dns_txt_result *r)
{
	struct query *q = context;

	print_info(q, &r->info, "");
	for (unsigned int i = 0; i < r->count; i++)
		printf("  %s\n", r->txt[i].text);
	query_done(q);
}

static void tlsa_cb(void *context, const struct dns_tlsa_result *r)
{
	struct query *q = context;

	print_info(q, &r->info, "");
	for (unsigned int i = 0; i < r->count; i++) {
		printf("  %u %u %u ", r->tlsa[i].usage, r->tlsa[i].selector,
		       r->tlsa[i].matching_type);
		for (size_t j = 0; j < r->tlsa[i].len; j++)
			printf("%02x", r->tlsa[i].data[j]);
		printf("\n");
	}
	query_done(q);
}

int main(int argc, char **argv)
{
	const char *error, *trust_anchor = NULL;

	if (argc > 2 && strcmp(argv[1], "--trust-anchor") == 0) {
		trust_anchor = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc < 4) {
		fprintf(stderr, "usage: dns-query [--trust-anchor FILE] "
				"RESOLVER|resolv.conf mx|host|txt|tlsa "
				"NAME...\n");
		return 1;
	}
	const char *type = argv[2];
	if (strcmp(type, "mx") != 0 && strcmp(type, "host") != 0 &&
	    strcmp(type, "txt") != 0 && strcmp(type, "tlsa") != 0) {
		fprintf(stderr, "dns-query: unknown type %s\n", type);
		return 1;
	}
	struct ioloop *ioloop = ioloop_create();
	struct dns_settings set = { .resolver = argv[1],
				    .trust_anchor_file = trust_anchor,
				    .timeout_msecs = 10000 };
	struct dns *dns = dns_create(ioloop, &set, &error);
	if (dns == NULL) {
		fprintf(stderr, "dns-query: %s\n", error);
		ioloop_destroy(&ioloop);
		return 1;
	}
	unsigned int count = (unsigned int)(argc - 3), remaining = count;
	struct query *queries = i_new(struct query, count);
	for (unsigned int i = 0; i < count; i++) {
		struct query *q = &queries[i];

		q->name = argv[3 + i];
		q->type = type;
		q->ioloop = ioloop;
		q->remaining = &remaining;
		if (strcmp(type, "mx") == 0)
			(void)dns_lookup_mx(dns, q->name, mx_cb, q);
		else if (strcmp(type, "host") == 0)
			(void)dns_lookup_host(dns, q->name, host_cb, q);
		else if (strcmp(type, "txt") == 0)
			(void)dns_lookup_txt(dns, q->name, txt_cb, q);
		else
			(void)dns_lookup_tlsa(dns, q->name, tlsa_cb, q);
	}
	(void)ioloop_run(ioloop);
	dns_destroy(&dns);
	ioloop_destroy(&ioloop);
	i_free(queries);
	return 0;
}
