/* dkim-tool.c - a test helper (built with the tests, not installed) that
   drives lib-auth's DKIM on files, for tests/integration/test_auth_dkim.py,
   signing with the vault's own dkim_sign_digest() (dkim-key.c):

     dkim-tool sign -k KEY.pem -d DOMAIN -s SELECTOR [-t TIMESTAMP]
	 < message > signed message   (RSA or Ed25519, from the key)
     dkim-tool verify [-k NAME=RECORD]... < message
	 one line per DKIM-Signature: "RESULT d=D s=S a=A [reason=...]",
	 "none" without any; NAME=RECORD are TXT records of the DNS stub
     dkim-tool record -k KEY.pem
	 the key's "v=DKIM1; k=...; p=..." record
     dkim-tool arc-seal -k KEY.pem -d DOMAIN -s SELECTOR [-t TIMESTAMP]
	 -a AUTHSERV-ID -r RESULTS -c none|pass|fail < message > sealed
     dkim-tool arc-verify [-k NAME=RECORD]... < message
	 "CV instances=N oldest-pass=M [reason=...]"

   Exit status: 0, 1 on a signing or input error, 2 on bad usage. */

#include "arc.h"
#include "dkim-private.h"
#include "auth-dns-stub.h"

#include <openssl/pem.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define TOOL_INPUT_MAX (64 * 1024 * 1024)
#define TOOL_KEYS_MAX 64

static ATTR_NORETURN void usage(void)
{
	fprintf(stderr,
		"usage: dkim-tool sign -k KEY.pem -d DOMAIN -s SELECTOR "
		"[-t TIMESTAMP] < msg\n"
		"       dkim-tool verify [-k NAME=RECORD]... < msg\n"
		"       dkim-tool record -k KEY.pem\n"
		"       dkim-tool arc-seal -k KEY.pem -d DOMAIN -s SELECTOR "
		"[-t TIMESTAMP] -a AUTHSERV-ID -r RESULTS -c none|pass|fail "
		"< msg\n"
		"       dkim-tool arc-verify [-k NAME=RECORD]... < msg\n");
	exit(2);
}

static void read_stdin(struct buf *in)
{
	for (;;) {
		uint8_t *p = buf_reserve(in, 65536);
		ssize_t n = read(STDIN_FILENO, p, 65536);

		if (n < 0) {
			perror("dkim-tool: read");
			exit(1);
		}
		if (n == 0)
			break;
		buf_commit(in, (size_t)n);
		if (in->used > TOOL_INPUT_MAX) {
			fprintf(stderr, "dkim-tool: input too large\n");
			exit(1);
		}
	}
}

static EVP_PKEY *load_key(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *key;

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (key == NULL) {
		fprintf(stderr, "dkim-tool: %s: not a PEM private key\n", path);
		exit(1);
	}
	return key;
}

static int cmd_sign(const char *key_path, const char *domain,
		    const char *selector, int64_t timestamp)
{
	pool_t pool = pool_create("dkim-tool", 4096);
	struct buf in = BUF_INIT;
	EVP_PKEY *key = load_key(key_path);
	struct dkim_sign_params params = {
		.domain = domain,
		.selector = selector,
		.timestamp = timestamp,
	};
	struct dkim_sign_request req;
	uint8_t sig[DKIM_SIG_MAX];
	size_t sig_len;
	const char *error, *field;
	int ret = 0;

	params.algorithm = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519
				   ? DKIM_ALG_ED25519_SHA256
				   : DKIM_ALG_RSA_SHA256;
	read_stdin(&in);
	if (dkim_sign_prepare(pool, in.data, in.used, &params, &req, &error) <
	    0) {
		fprintf(stderr, "dkim-tool: %s\n", error);
		ret = 1;
	} else if (dkim_sign_digest(key, params.algorithm, req.digest, sig,
				    &sig_len) < 0) {
		fprintf(stderr, "dkim-tool: the key cannot sign\n");
		ret = 1;
	} else {
		field = dkim_sign_finish(pool, &req, sig, sig_len);
		fputs(field, stdout);
		fwrite(in.data, 1, in.used, stdout);
	}
	EVP_PKEY_free(key);
	buf_free(&in);
	pool_unref(&pool);
	return ret;
}

static void print_results(void *context, const struct dkim_verify_result *r)
{
	bool *done = context;

	*done = true;
	if (r->count == 0)
		printf("none\n");
	for (unsigned int i = 0; i < r->count; i++) {
		const struct dkim_signature_result *s = &r->sigs[i];

		printf("%s d=%s s=%s a=%s", dkim_result_name(s->result),
		       s->domain, s->selector,
		       s->algorithm == NULL ? "" : s->algorithm);
		if (s->reason != NULL)
			printf(" reason=%s", s->reason);
		printf("\n");
	}
}

static void print_arc(void *context, const struct arc_verify_result *r);

static int cmd_verify(char **records, unsigned int count, bool arc)
{
	struct auth_dns_stub *stub = auth_dns_stub_create();
	struct buf in = BUF_INIT;
	bool done = false;

	for (unsigned int i = 0; i < count; i++) {
		char *eq = strchr(records[i], '=');

		if (eq == NULL)
			usage();
		*eq = '\0';
		auth_dns_stub_add_txt(stub, records[i], eq + 1, strlen(eq + 1));
	}
	read_stdin(&in);
	if (arc)
		(void)arc_verify_start(auth_dns_stub_dns(stub), in.data,
				       in.used, print_arc, &done);
	else
		(void)dkim_verify_start(auth_dns_stub_dns(stub), in.data,
					in.used, 0, print_results, &done);
	auth_dns_stub_run(stub);
	i_assert(done);
	auth_dns_stub_destroy(&stub);
	buf_free(&in);
	return 0;
}

static int cmd_record(const char *key_path)
{
	EVP_PKEY *key = load_key(key_path);
	pool_t pool = pool_create("dkim-tool", 1024);
	const char *record = dkim_key_dns_record(
		pool, key,
		EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519
			? DKIM_ALG_ED25519_SHA256
			: DKIM_ALG_RSA_SHA256);
	int ret = 0;

	EVP_PKEY_free(key);
	if (record == NULL) {
		fprintf(stderr, "dkim-tool: not an RSA or Ed25519 key\n");
		ret = 1;
	} else {
		printf("%s\n", record);
	}
	pool_unref(&pool);
	return ret;
}

static int cmd_arc_seal(const char *key_path, struct arc_seal_params *params)
{
	pool_t pool = pool_create("dkim-tool", 4096);
	struct buf in = BUF_INIT;
	EVP_PKEY *key = load_key(key_path);
	struct arc_seal_request req;
	uint8_t sig[DKIM_SIG_MAX];
	size_t sig_len;
	const char *error;
	int ret;

	params->algorithm = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519
				    ? DKIM_ALG_ED25519_SHA256
				    : DKIM_ALG_RSA_SHA256;
	read_stdin(&in);
	ret = arc_seal_prepare_ams(pool, in.data, in.used, params, &req,
				   &error);
	if (ret == 0) {
		/* RFC 8617 5.1 step 2: passed on unsealed */
		fprintf(stderr, "dkim-tool: not sealed: %s\n", error);
		fwrite(in.data, 1, in.used, stdout);
	} else if (ret < 0) {
		fprintf(stderr, "dkim-tool: %s\n", error);
	} else if (dkim_sign_digest(key, params->algorithm, req.digest, sig,
				    &sig_len) < 0 ||
		   arc_seal_prepare_as(&req, sig, sig_len, &error) < 0 ||
		   dkim_sign_digest(key, params->algorithm, req.digest, sig,
				    &sig_len) < 0) {
		fprintf(stderr, "dkim-tool: sealing failed\n");
		ret = -1;
	} else {
		fputs(arc_seal_finish(pool, &req, sig, sig_len), stdout);
		fwrite(in.data, 1, in.used, stdout);
	}
	EVP_PKEY_free(key);
	buf_free(&in);
	pool_unref(&pool);
	return ret < 0 ? 1 : 0;
}

static void print_arc(void *context, const struct arc_verify_result *r)
{
	bool *done = context;

	*done = true;
	printf("%s instances=%u oldest-pass=%u", arc_chain_name(r->cv),
	       r->instances, r->oldest_pass);
	if (r->last_domain != NULL)
		printf(" d=%s", r->last_domain);
	if (r->reason != NULL)
		printf(" reason=%s", r->reason);
	printf("\n");
}

int main(int argc, char *argv[])
{
	const char *key = NULL, *domain = NULL, *selector = NULL;
	char *records[TOOL_KEYS_MAX];
	unsigned int record_count = 0;
	int64_t timestamp = 0;
	const char *cmd;
	int c;

	if (argc < 2)
		usage();
	cmd = argv[1];
	optind = 2;
	struct arc_seal_params arc = { .cv = ARC_CHAIN_NONE };
	const char *cv = "none";

	while ((c = getopt(argc, argv, "k:d:s:t:a:r:c:")) != -1) {
		switch (c) {
		case 'k':
			key = optarg;
			if (record_count == TOOL_KEYS_MAX)
				usage();
			records[record_count++] = optarg;
			break;
		case 'd':
			domain = optarg;
			break;
		case 's':
			selector = optarg;
			break;
		case 't':
			timestamp = strtoll(optarg, NULL, 10);
			break;
		case 'a':
			arc.authserv_id = optarg;
			break;
		case 'r':
			arc.results = optarg;
			break;
		case 'c':
			cv = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (strcmp(cmd, "sign") == 0) {
		if (key == NULL || domain == NULL || selector == NULL)
			usage();
		return cmd_sign(key, domain, selector, timestamp);
	}
	if (strcmp(cmd, "verify") == 0)
		return cmd_verify(records, record_count, false);
	if (strcmp(cmd, "arc-verify") == 0)
		return cmd_verify(records, record_count, true);
	if (strcmp(cmd, "arc-seal") == 0) {
		if (key == NULL || domain == NULL || selector == NULL ||
		    arc.authserv_id == NULL || arc.results == NULL)
			usage();
		arc.domain = domain;
		arc.selector = selector;
		arc.timestamp = timestamp;
		arc.cv = strcmp(cv, "pass") == 0   ? ARC_CHAIN_PASS
			 : strcmp(cv, "fail") == 0 ? ARC_CHAIN_FAIL
						   : ARC_CHAIN_NONE;
		return cmd_arc_seal(key, &arc);
	}
	if (strcmp(cmd, "record") == 0 && key != NULL)
		return cmd_record(key);
	usage();
}
