/* test-tls.c - unit tests for tls.c: self-signed certificate generation
   (key mode, SAN, extensions), loading it into server and client contexts,
   and the error messages for missing files and mismatched key pairs. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

struct tls_test {
	char dir[64];
	char *cert, *key, *cert2, *key2;
};

static int setup(void **state)
{
	struct tls_test *t = i_new(struct tls_test, 1);

	snprintf(t->dir, sizeof(t->dir), "/tmp/marmot-test-tls.XXXXXX");
	if (mkdtemp(t->dir) == NULL)
		return -1;
	t->cert = i_strdup_printf("%s/cert.pem", t->dir);
	t->key = i_strdup_printf("%s/key.pem", t->dir);
	t->cert2 = i_strdup_printf("%s/cert2.pem", t->dir);
	t->key2 = i_strdup_printf("%s/key2.pem", t->dir);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tls_test *t = *state;

	(void)unlink(t->cert);
	(void)unlink(t->key);
	(void)unlink(t->cert2);
	(void)unlink(t->key2);
	(void)rmdir(t->dir);
	i_free(t->cert);
	i_free(t->key);
	i_free(t->cert2);
	i_free(t->key2);
	i_free(t);
	return 0;
}

static void write_pair(struct tls_test *t)
{
	const char *error = NULL;

	assert_int_equal(tls_write_self_signed("mail.example.org", t->cert,
					       t->key, &error),
			 0);
}

static X509 *read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x509;

	assert_non_null(f);
	x509 = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x509);
	return x509;
}

static void test_self_signed_loads(void **state)
{
	struct tls_test *t = *state;
	struct tls_ctx *ctx;
	const char *error = NULL;
	SSL *ssl;

	write_pair(t);
	ctx = tls_ctx_server_create(t->cert, t->key, &error);
	assert_non_null(ctx);
	assert_true(tls_ctx_is_server(ctx));
	ssl = tls_ctx_new_ssl(ctx);
	assert_non_null(ssl);
	assert_int_equal(SSL_get_min_proto_version(ssl), TLS1_2_VERSION);
	assert_true((SSL_get_options(ssl) & SSL_OP_NO_RENEGOTIATION) != 0);
	assert_true((SSL_get_options(ssl) & SSL_OP_IGNORE_UNEXPECTED_EOF) == 0);
	assert_true((SSL_get_options(ssl) & SSL_OP_CIPHER_SERVER_PREFERENCE) ==
		    0);
	/* The SSL keeps the SSL_CTX alive after the last unref. */
	tls_ctx_unref(&ctx);
	assert_null(ctx);
	SSL_free(ssl);
}

static void test_key_mode_0600(void **state)
{
	struct tls_test *t = *state;
	struct stat st;
	mode_t mask = umask(0);

	umask(mask);
	write_pair(t);
	assert_int_equal(stat(t->key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(t->cert, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644 & ~mask);
}

static void test_cert_fields(void **state)
{
	struct tls_test *t = *state;
	GENERAL_NAMES *names;
	const GENERAL_NAME *name;
	const ASN1_IA5STRING *dns;
	EVP_PKEY *pkey;
	X509 *x509;
	char cn[128];
	int days, secs;

	write_pair(t);
	x509 = read_cert(t->cert);
	assert_int_equal(X509_get_version(x509), X509_VERSION_3);

	names = X509_get_ext_d2i(x509, NID_subject_alt_name, NULL, NULL);
	assert_non_null(names);
	assert_int_equal(sk_GENERAL_NAME_num(names), 1);
	name = sk_GENERAL_NAME_value(names, 0);
	assert_int_equal(name->type, GEN_DNS);
	dns = name->d.dNSName;
	assert_int_equal(ASN1_STRING_length(dns), 16);
	assert_memory_equal(ASN1_STRING_get0_data(dns), "mail.example.org", 16);
	GENERAL_NAMES_free(names);
	assert_int_equal(X509_check_host(x509, "mail.example.org", 0, 0, NULL),
			 1);

	assert_int_equal(X509_NAME_get_text_by_NID(X509_get_subject_name(x509),
						   NID_commonName, cn,
						   sizeof(cn)),
			 16);
	assert_string_equal(cn, "mail.example.org");

	/* basicConstraints CA:FALSE, digitalSignature, serverAuth */
	assert_int_equal(X509_check_ca(x509), 0);
	assert_true((X509_get_key_usage(x509) & KU_DIGITAL_SIGNATURE) != 0);
	assert_true((X509_get_key_usage(x509) & KU_KEY_CERT_SIGN) == 0);
	assert_true((X509_get_extended_key_usage(x509) & XKU_SSL_SERVER) != 0);

	/* notAfter about 10 years ahead, notBefore in the past */
	assert_int_equal(
		ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x509)),
		1);
	assert_true(days >= 3650 && days <= 3653);
	assert_true(X509_cmp_current_time(X509_get0_notBefore(x509)) < 0);

	pkey = X509_get0_pubkey(x509);
	assert_non_null(pkey);
	assert_true(EVP_PKEY_is_a(pkey, "EC"));
	assert_int_equal(EVP_PKEY_get_bits(pkey), 256);
	assert_int_equal(X509_get_signature_nid(x509), NID_ecdsa_with_SHA256);
	assert_int_equal(X509_verify(x509, pkey), 1);
	X509_free(x509);
}

static void test_serials_differ(void **state)
{
	struct tls_test *t = *state;
	const char *error = NULL;
	X509 *a, *b;

	write_pair(t);
	assert_int_equal(tls_write_self_signed("mail.example.org", t->cert2,
					       t->key2, &error),
			 0);
	a = read_cert(t->cert);
	b = read_cert(t->cert2);
	assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(a),
					      X509_get0_serialNumber(b)),
			     0);
	assert_true(ASN1_INTEGER_get(X509_get0_serialNumber(a)) != 0);
	X509_free(a);
	X509_free(b);
}

static void test_existing_key_not_overwritten(void **state)
{
	struct tls_test *t = *state;
	const char *error = NULL;
	struct stat st1, st2;

	write_pair(t);
	assert_int_equal(stat(t->key, &st1), 0);
	assert_int_equal(tls_write_self_signed("other.example", t->cert2,
					       t->key, &error),
			 -1);
	assert_non_null(strstr(error, t->key));
	assert_int_equal(stat(t->key, &st2), 0);
	assert_int_equal(st1.st_ino, st2.st_ino);
	/* no cert left behind for a key that was not written */
	assert_int_equal(access(t->cert2, F_OK), -1);
}

static void test_invalid_hostname(void **state)
{
	struct tls_test *t = *state;
	const char *error = NULL;

	assert_int_equal(tls_write_self_signed("a,DNS:evil.example", t->cert,
					       t->key, &error),
			 -1);
	assert_non_null(strstr(error, "Invalid host name"));
	assert_int_equal(tls_write_self_signed("", t->cert, t->key, &error),
			 -1);
	assert_int_equal(access(t->key, F_OK), -1);
}

static void test_mismatched_pair(void **state)
{
	struct tls_test *t = *state;
	const char *error = NULL;
	struct tls_ctx *ctx;

	write_pair(t);
	assert_int_equal(tls_write_self_signed("mail.example.org", t->cert2,
					       t->key2, &error),
			 0);
	ctx = tls_ctx_server_create(t->cert, t->key2, &error);
	assert_null(ctx);
	assert_non_null(error);
	assert_non_null(strstr(error, t->key2));
	assert_non_null(strstr(error, "match"));
	/* OpenSSL's reason is included */
	assert_non_null(strstr(error, "mismatch"));
}

static void test_missing_cert(void **state)
{
	struct tls_test *t = *state;
	const char *error = NULL;

	write_pair(t);
	assert_null(tls_ctx_server_create(t->cert2, t->key, &error));
	assert_non_null(strstr(error, t->cert2));
	assert_non_null(strstr(error, "No such file"));
}

static void test_missing_key(void **state)
{
	struct tls_test *t = *state;
	const char *error = NULL;

	write_pair(t);
	assert_null(tls_ctx_server_create(t->cert, t->key2, &error));
	assert_non_null(strstr(error, t->key2));
}

static void test_garbage_cert(void **state)
{
	struct tls_test *t = *state;
	const char *error = NULL;
	FILE *f;

	write_pair(t);
	f = fopen(t->cert2, "w");
	assert_non_null(f);
	fputs("not a certificate\n", f);
	fclose(f);
	assert_null(tls_ctx_server_create(t->cert2, t->key, &error));
	assert_non_null(strstr(error, t->cert2));
	assert_non_null(strstr(error, "Can't load certificate chain"));
	/* the OpenSSL reason follows the file name */
	assert_non_null(strstr(error, "error:"));
}

static void test_client_ctx(void **state)
{
	struct tls_ctx *ctx, *ctx2;
	const char *error = NULL;
	SSL *ssl;

	ctx = tls_ctx_client_create(true, &error);
	assert_non_null(ctx);
	assert_false(tls_ctx_is_server(ctx));
	assert_true(tls_ctx_verifies(ctx));
	ssl = tls_ctx_new_ssl(ctx);
	assert_int_equal(SSL_get_verify_mode(ssl), SSL_VERIFY_PEER);
	SSL_free(ssl);

	ctx2 = tls_ctx_client_create(false, &error);
	assert_non_null(ctx2);
	assert_false(tls_ctx_verifies(ctx2));
	ssl = tls_ctx_new_ssl(ctx2);
	assert_int_equal(SSL_get_verify_mode(ssl), SSL_VERIFY_NONE);
	assert_int_equal(SSL_get_min_proto_version(ssl), TLS1_2_VERSION);
	SSL_free(ssl);

	tls_ctx_unref(&ctx);
	assert_null(ctx);
	tls_ctx_unref(&ctx2);
	tls_ctx_unref(&ctx2); /* NULL is tolerated */
	assert_null(ctx2);
}

static void test_client_ctx_ref(void **state)
{
	struct tls_ctx *ctx, *other;
	const char *error = NULL;

	ctx = tls_ctx_client_create(true, &error);
	other = ctx;
	tls_ctx_ref(ctx);
	tls_ctx_unref(&other);
	assert_null(other);
	/* still usable after the first unref */
	SSL_free(tls_ctx_new_ssl(ctx));
	tls_ctx_unref(&ctx);
}

static void test_last_error(void **state)
{
	const char *err;

	ERR_clear_error();
	assert_string_equal(tls_last_error(), "unknown error");
	assert_null(SSL_CTX_new(NULL));
	err = tls_last_error();
	assert_non_null(strstr(err, "error:"));
	assert_int_equal(ERR_peek_error(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_self_signed_loads, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_key_mode_0600, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cert_fields, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_serials_differ, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_existing_key_not_overwritten, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_hostname, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_mismatched_pair, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_missing_cert, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_missing_key, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_garbage_cert, setup,
						teardown),
		cmocka_unit_test(test_client_ctx),
		cmocka_unit_test(test_client_ctx_ref),
		cmocka_unit_test(test_last_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
