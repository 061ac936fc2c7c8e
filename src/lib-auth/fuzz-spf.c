/* fuzz-spf.c - libFuzzer target for the SPF evaluator: the record parser
   (RFC 7208 4.6), the macros (7) and check_host() (4) over a zone the
   input describes, served by the stub resolver. Input: lines; the first
   is the sender ("" for the null sender), the second the client address
   (IPv4 or IPv6 text; 192.0.2.1 if it does not parse), the third the
   HELO name; every further line is "name TYPE data" with TYPE one of TXT
   (data to the end of the line), A, AAAA, MX ("pref host"), PTR, CNAME or
   TEMPFAIL (data: the type it fails for, or empty for all). Each TXT
   line is also fed to the parser directly. Built with -Dfuzz=true, and
   replayed over tests/fuzz-corpus/fuzz-spf/ by every test run. */

#include "auth-dns-stub.h"
#include "spf-private.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <sys/socket.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_LINES 256
#define FUZZ_MAX_INPUT 65536

struct fuzz_seen {
	unsigned int calls;
};

static void fuzz_cb(void *context, const struct spf_outcome *outcome)
{
	struct fuzz_seen *seen = context;

	seen->calls++;
	i_assert(outcome->result <= SPF_PERMERROR);
	i_assert(outcome->domain != NULL && outcome->sender != NULL);
	i_assert(outcome->explanation == NULL || outcome->result == SPF_FAIL);
	(void)strlen(spf_result_name(outcome->result));
	if (outcome->explanation != NULL)
		(void)strlen(outcome->explanation);
	if (outcome->reason != NULL)
		(void)strlen(outcome->reason);
}

static uint16_t fuzz_type(const char *t)
{
	if (strcmp(t, "A") == 0)
		return DNS_TYPE_A;
	if (strcmp(t, "AAAA") == 0)
		return DNS_TYPE_AAAA;
	if (strcmp(t, "MX") == 0)
		return DNS_TYPE_MX;
	if (strcmp(t, "PTR") == 0)
		return DNS_TYPE_PTR;
	if (strcmp(t, "TXT") == 0)
		return DNS_TYPE_TXT;
	if (strcmp(t, "CNAME") == 0)
		return DNS_TYPE_CNAME;
	return 0;
}

static void fuzz_zone_line(struct auth_dns_stub *stub, pool_t pool, char *line,
			   size_t len)
{
	char *sp1 = memchr(line, ' ', len), *sp2, *data;
	size_t dlen;

	if (sp1 == NULL)
		return;
	*sp1 = '\0';
	sp2 = memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line));
	if (sp2 == NULL) {
		data = line + len;
	} else {
		*sp2 = '\0';
		data = sp2 + 1;
	}
	dlen = (size_t)(line + len - data);
	if (strcmp(sp1 + 1, "TXT") == 0) {
		const char *error;

		auth_dns_stub_add_txt(stub, line, data, dlen);
		if (spf_is_record(data, dlen))
			(void)spf_record_parse(pool, data, dlen, &error);
		(void)spf_macro_check(data, dlen, true);
	} else if (strcmp(sp1 + 1, "A") == 0) {
		(void)auth_dns_stub_add_a(stub, line, data);
	} else if (strcmp(sp1 + 1, "AAAA") == 0) {
		(void)auth_dns_stub_add_aaaa(stub, line, data);
	} else if (strcmp(sp1 + 1, "MX") == 0) {
		char *host = strchr(data, ' ');

		if (host != NULL)
			auth_dns_stub_add_mx(stub, line,
					     (uint16_t)strtoul(data, NULL, 10),
					     host + 1);
	} else if (strcmp(sp1 + 1, "PTR") == 0) {
		auth_dns_stub_add_ptr(stub, line, data);
	} else if (strcmp(sp1 + 1, "CNAME") == 0) {
		auth_dns_stub_add_cname(stub, line, data);
	} else if (strcmp(sp1 + 1, "TEMPFAIL") == 0) {
		auth_dns_stub_set_status(stub, line, fuzz_type(data),
					 DNS_STATUS_TEMPFAIL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *input, *lines[FUZZ_MAX_LINES];
	size_t lens[FUZZ_MAX_LINES];
	unsigned int count = 0;
	struct auth_dns_stub *stub;
	struct spf_request req;
	struct fuzz_seen seen = { 0 };
	struct spf_check *check;
	pool_t pool;
	char addr[64];

	if (size > FUZZ_MAX_INPUT)
		return 0;
	input = i_strndup(data, size);
	for (size_t pos = 0; pos <= size && count < FUZZ_MAX_LINES;) {
		char *nl = memchr(input + pos, '\n', size - pos);
		size_t end = nl == NULL ? size : (size_t)(nl - input);

		input[end] = '\0';
		lines[count] = input + pos;
		lens[count] = end - pos;
		count++;
		pos = end + 1;
	}
	stub = auth_dns_stub_create();
	auth_dns_stub_set_any_names(stub, true);
	pool = pool_create("fuzz-spf", 1024);
	for (unsigned int i = 3; i < count; i++)
		fuzz_zone_line(stub, pool, lines[i], lens[i]);

	memset(&req, 0, sizeof(req));
	snprintf(addr, sizeof(addr), "%s", count > 1 ? lines[1] : "");
	if (inet_pton(AF_INET, addr, req.addr) == 1) {
		req.family = AF_INET;
	} else if (inet_pton(AF_INET6, addr, req.addr) == 1) {
		req.family = AF_INET6;
	} else {
		req.family = AF_INET;
		(void)inet_pton(AF_INET, "192.0.2.1", req.addr);
	}
	req.sender = count > 0 ? lines[0] : "";
	req.helo = count > 2 ? lines[2] : "";
	req.receiver = "mx.example";
	/* Both identities: MAIL FROM, then HELO. */
	for (unsigned int i = 0; i < 2; i++) {
		req.identity =
			i == 0 ? SPF_IDENTITY_MAILFROM : SPF_IDENTITY_HELO;
		seen.calls = 0;
		check = spf_check_start(auth_dns_stub_dns(stub), &req, fuzz_cb,
					&seen);
		i_assert(seen.calls == 0);
		(void)auth_dns_stub_run(stub);
		i_assert(seen.calls == 1);
		i_assert(auth_dns_stub_pending(stub) == 0);
		(void)check;
	}
	pool_unref(&pool);
	auth_dns_stub_destroy(&stub);
	i_free(input);
	return 0;
}
