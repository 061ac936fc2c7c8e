/* dkim-tool.c - a test helper (built with the tests, not installed) that
   drives lib-auth's DKIM on files, for tests/integration/test_auth_dkim.py:

     dkim-tool sign -k KEY.pem -d DOMAIN -s SELECTOR [-t TIMESTAMP]
	 < message > signed message   (RSA or Ed25519, from the key)
     dkim-tool verify [-k NAME=RECORD]... < message
	 one line per DKIM-Signature: "RESULT d=D s=S a=A [reason=...]",
	 "none" without any; NAME=RECORD are TXT records of the DNS stub
     dkim-tool record -k KEY.pem
	 the key's "v=DKIM1; k=...; p=..." record

   Exit status: 0, 1 on a signing or input error, 2 on bad usage. */

#include "dkim-private.h"
#include "dkim-test-sign.h"
#include "auth-dns-stub.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

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
		"       dkim-tool record -k KEY.pem\n");
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
	} else if (dkim_test_sign_digest(key, req.digest, sig, &sig_len) < 0) {
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

static int cmd_verify(char **records, unsigned int count)
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
	(void)dkim_verify_start(auth_dns_stub_dns(stub), in.data, in.used, 0,
				print_results, &done);
	auth_dns_stub_run(stub);
	i_assert(done);
	auth_dns_stub_destroy(&stub);
	buf_free(&in);
	return 0;
}

static int cmd_record(const char *key_path)
{
	EVP_PKEY *key = load_key(key_path);
	struct buf out = BUF_INIT;
	unsigned char der[4096], *p = der;
	size_t len = sizeof(der);
	int n;

	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519) {
		/* RFC 8463 4.2: the raw public key */
		if (EVP_PKEY_get_raw_public_key(key, der, &len) != 1)
			return 1;
		buf_append_str(&out, "v=DKIM1; k=ed25519; p=");
	} else {
		n = i2d_PUBKEY(key, NULL);
		if (n <= 0 || (size_t)n > sizeof(der))
			return 1;
		len = (size_t)i2d_PUBKEY(key, &p);
		buf_append_str(&out, "v=DKIM1; k=rsa; p=");
	}
	dkim_base64_encode(&out, der, len);
	printf("%s\n", buf_cstr(&out));
	buf_free(&out);
	EVP_PKEY_free(key);
	return 0;
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
	while ((c = getopt(argc, argv, "k:d:s:t:")) != -1) {
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
		return cmd_verify(records, record_count);
	if (strcmp(cmd, "record") == 0 && key != NULL)
		return cmd_record(key);
	usage();
}
