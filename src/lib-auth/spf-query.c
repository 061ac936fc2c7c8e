/* spf-query.c - a test tool (not installed): runs check_host() (spf.h)
   through the real resolver (lib-dns over auth_dns_init_dns()), as the
   front will, so the integration tests can compare it with python3-spf
   on records served by tests/integration/dnsserver.py:

     spf-query [--helo] RESOLVER|resolv.conf IP SENDER HELO

   Prints "RESULT" on the first line, then "domain: ", "sender: ",
   "reason: " and (for fail with exp=) "explanation: " lines. Exit 0 when
   the check completed (whatever its result), 1 on a usage or settings
   error. */

#include "spf.h"
#include "ioloop.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void spf_query_cb(void *context, const struct spf_outcome *o)
{
	struct ioloop *ioloop = context;

	printf("%s\n", spf_result_name(o->result));
	printf("domain: %s\n", o->domain);
	printf("sender: %s\n", o->sender);
	if (o->reason != NULL)
		printf("reason: %s\n", o->reason);
	if (o->explanation != NULL)
		printf("explanation: %s\n", o->explanation);
	fflush(stdout);
	ioloop_stop(ioloop);
}

int main(int argc, char **argv)
{
	struct spf_request req;
	const char *error;
	bool helo = false;

	if (argc > 1 && strcmp(argv[1], "--helo") == 0) {
		helo = true;
		argv++;
		argc--;
	}
	if (argc != 5) {
		fprintf(stderr, "usage: spf-query [--helo] "
				"RESOLVER|resolv.conf IP SENDER HELO\n");
		return 1;
	}
	memset(&req, 0, sizeof(req));
	if (inet_pton(AF_INET, argv[2], req.addr) == 1) {
		req.family = AF_INET;
	} else if (inet_pton(AF_INET6, argv[2], req.addr) == 1) {
		req.family = AF_INET6;
	} else {
		fprintf(stderr, "spf-query: not an IP address: %s\n", argv[2]);
		return 1;
	}
	req.identity = helo ? SPF_IDENTITY_HELO : SPF_IDENTITY_MAILFROM;
	req.sender = argv[3];
	req.helo = argv[4];
	req.receiver = "spf-query.invalid";

	struct ioloop *ioloop = ioloop_create();
	struct dns_settings set = { .resolver = argv[1],
				    .timeout_msecs = 10000 };
	struct dns *dns = dns_create(ioloop, &set, &error);
	if (dns == NULL) {
		fprintf(stderr, "spf-query: %s\n", error);
		ioloop_destroy(&ioloop);
		return 1;
	}
	struct auth_dns adns;

	auth_dns_init_dns(&adns, dns);
	(void)spf_check_start(&adns, &req, spf_query_cb, ioloop);
	(void)ioloop_run(ioloop);
	dns_destroy(&dns);
	ioloop_destroy(&ioloop);
	return 0;
}
