/* test-scram.c - unit tests for scram.c: the RFC 7677 section 3 exchange
   end to end (both sides), message parsing with good and hostile input,
   saslname coding, the password preparation subset, and the proof check
   against wrong proofs. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "pool.h"
#include "scram.h"
#include "scram-client.h"

#include <sodium.h>

/* RFC 7677 3: user "user", password "pencil". */
#define RFC_CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_CLIENT_NONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SALT_B64 "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_SERVER_FIRST                                        \
	"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
	"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CLIENT_FINAL                                               \
	"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
	"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static void rfc_salt(uint8_t salt[16])
{
	size_t len;

	assert_int_equal(sodium_base642bin(salt, 16, RFC_SALT_B64,
					   strlen(RFC_SALT_B64), NULL, &len,
					   NULL,
					   sodium_base64_VARIANT_ORIGINAL),
			 0);
	assert_int_equal(len, 16);
}

static void test_rfc7677_exchange(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct scram_client_first first;
	struct scram_client_final final;
	struct scram_secret secret;
	struct buf server_first = BUF_INIT, auth = BUF_INIT, out = BUF_INIT;
	uint8_t salt[16], sig[SCRAM_KEY_LEN], salted[SCRAM_KEY_LEN];
	uint8_t proof[SCRAM_KEY_LEN];
	const char *error;

	rfc_salt(salt);
	/* The directory's side: secrets from the password. */
	assert_int_equal(scram_secret_from_password(SPAN_LIT("pencil"), salt,
						    16, 4096, &secret),
			 0);

	assert_int_equal(scram_parse_client_first(pool,
						  SPAN_LIT(RFC_CLIENT_FIRST),
						  &first, &error),
			 0);
	assert_int_equal(first.cbind_flag, 'n');
	assert_null(first.authzid);
	assert_string_equal(first.username, "user");
	assert_true(span_eq(first.gs2_header, SPAN_LIT("n,,")));
	assert_true(
		span_eq(first.bare, SPAN_LIT("n=user,r=" RFC_CLIENT_NONCE)));
	assert_true(span_eq(first.client_nonce, SPAN_LIT(RFC_CLIENT_NONCE)));

	scram_build_server_first(&server_first, first.client_nonce,
				 SPAN_LIT(RFC_SERVER_NONCE), salt, 16, 4096);
	assert_string_equal(buf_cstr(&server_first), RFC_SERVER_FIRST);

	assert_int_equal(scram_parse_client_final(SPAN_LIT(RFC_CLIENT_FINAL),
						  &final, &error),
			 0);
	assert_int_equal(scram_client_final_check(
				 &first, &final,
				 SPAN_LIT(RFC_CLIENT_NONCE RFC_SERVER_NONCE),
				 &error),
			 0);
	scram_auth_message(&auth, first.bare, buf_span(&server_first),
			   final.without_proof);
	assert_true(scram_verify_proof(secret.stored_key, buf_span(&auth),
				       final.proof));
	scram_server_signature(secret.server_key, buf_span(&auth), sig);
	scram_build_server_final(&out, sig);
	assert_string_equal(buf_cstr(&out), RFC_SERVER_FINAL);

	/* The client's side computes the same proof. */
	scram_salted_password(SPAN_LIT("pencil"), salt, 16, 4096, salted);
	scram_client_proof(salted, buf_span(&auth), proof);
	assert_memory_equal(proof, final.proof, SCRAM_KEY_LEN);

	/* A wrong password's secrets reject the proof; so does a flipped
	   bit in it, and another AuthMessage. */
	struct scram_secret wrong;

	assert_int_equal(scram_secret_from_password(SPAN_LIT("pencil2"), salt,
						    16, 4096, &wrong),
			 0);
	assert_false(scram_verify_proof(wrong.stored_key, buf_span(&auth),
					final.proof));
	for (unsigned int bit = 0; bit < SCRAM_KEY_LEN * 8; bit += 37) {
		uint8_t bad[SCRAM_KEY_LEN];

		memcpy(bad, final.proof, sizeof(bad));
		bad[bit / 8] ^= (uint8_t)(1 << (bit % 8));
		assert_false(scram_verify_proof(secret.stored_key,
						buf_span(&auth), bad));
	}
	buf_append_c(&auth, 'x');
	assert_false(scram_verify_proof(secret.stored_key, buf_span(&auth),
					final.proof));

	buf_free(&server_first);
	buf_free(&auth);
	buf_free(&out);
	pool_unref(&pool);
}

/* The client side reproduces the RFC 7677 3 exchange byte for byte. */
static void test_rfc7677_client(void **state)
{
	static const struct {
		const char *server_first, *error;
	} bad[] = {
		{ "", "server-first-message without nonce" },
		{ "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
		  "server nonce does not extend ours" },
		{ "r=XOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
		  "server nonce does not extend ours" },
		{ "r=rOprNGfwEbeRWgbNEkqOabc,s=,i=4096", "bad salt" },
		{ "r=rOprNGfwEbeRWgbNEkqOabc,s=!!,i=4096", "bad salt" },
		{ "r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095",
		  "bad iteration count" },
		{ "r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==",
		  "bad iteration count" },
		{ "r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=x",
		  "bad iteration count" },
	};
	struct scram_client client;
	const char *error;

	scram_client_init(&client, 'n', NULL, "user", RFC_CLIENT_NONCE);
	assert_string_equal(scram_client_first_message(&client),
			    RFC_CLIENT_FIRST);
	assert_false(
		scram_client_verify_server_final(&client, RFC_SERVER_FINAL));
	assert_int_equal(scram_client_server_first(&client, RFC_SERVER_FIRST,
						   SPAN_LIT("pencil"), &error),
			 0);
	assert_string_equal(scram_client_final_message(&client),
			    RFC_CLIENT_FINAL);
	assert_true(
		scram_client_verify_server_final(&client, RFC_SERVER_FINAL));
	/* A forged or truncated server signature is caught. */
	assert_false(scram_client_verify_server_final(
		&client, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5="));
	assert_false(scram_client_verify_server_final(&client, "v="));
	assert_false(
		scram_client_verify_server_final(&client, "e=other-error"));
	for (unsigned int i = 0; i < N_ELEMENTS(bad); i++) {
		error = NULL;
		assert_int_equal(
			scram_client_server_first(&client, bad[i].server_first,
						  SPAN_LIT("pencil"), &error),
			-1);
		assert_string_equal(error, bad[i].error);
	}
	scram_client_deinit(&client);

	/* gs2 header with "y" and an authzid, names saslname-encoded. */
	scram_client_init(&client, 'y', "a,b", "c=d", "xyz");
	assert_string_equal(scram_client_first_message(&client),
			    "y,a=a=2Cb,n=c=3Dd,r=xyz");
	assert_int_equal(scram_client_server_first(&client,
						   "r=xyzSERVER,s=QUJD,i=4096",
						   SPAN_LIT("pw"), &error),
			 0);
	assert_int_equal(strncmp(scram_client_final_message(&client),
				 "c=eSxhPWE9MkNiLA==,r=xyzSERVER,p=", 33),
			 0);
	scram_client_deinit(&client);
}

static void test_client_first_good(void **state)
{
	static const struct {
		const char *msg;
		char flag;
		const char *authzid, *user, *nonce;
	} tests[] = {
		{ "n,,n=user,r=abc", 'n', NULL, "user", "abc" },
		{ "y,,n=user,r=abc", 'y', NULL, "user", "abc" },
		{ "n,a=user,n=user,r=abc", 'n', "user", "user", "abc" },
		{ "n,,n=a=2Cb=3Dc@example.org,r=x", 'n', NULL,
		  "a,b=c@example.org", "x" },
		{ "n,,n=user,r=abc,x=ext,y=2", 'n', NULL, "user", "abc" },
		{ "n,,n=j\xc3\xb6rg@example.org,r=~!@#$%^&*()", 'n', NULL,
		  "j\xc3\xb6rg@example.org", "~!@#$%^&*()" },
	};
	pool_t pool = pool_create("test", 1024);

	for (unsigned int i = 0; i < N_ELEMENTS(tests); i++) {
		struct scram_client_first first;
		const char *error = NULL;

		assert_int_equal(scram_parse_client_first(
					 pool, span_from_cstr(tests[i].msg),
					 &first, &error),
				 0);
		assert_int_equal(
			scram_client_first_check(span_from_cstr(tests[i].msg)),
			0);
		assert_int_equal(first.cbind_flag, tests[i].flag);
		if (tests[i].authzid == NULL)
			assert_null(first.authzid);
		else
			assert_string_equal(first.authzid, tests[i].authzid);
		assert_string_equal(first.username, tests[i].user);
		assert_true(span_eq(first.client_nonce,
				    span_from_cstr(tests[i].nonce)));
	}
	pool_unref(&pool);
}

static void test_client_first_bad(void **state)
{
	static const struct {
		const char *msg;
		const char *error;
	} tests[] = {
		{ "", "invalid-encoding" },
		{ "p=tls-unique,,n=user,r=abc",
		  "channel-binding-not-supported" },
		{ "p=tls-server-end-point,,n=user,r=abc",
		  "channel-binding-not-supported" },
		{ "x,,n=user,r=abc", "other-error" },
		{ "nn,,n=user,r=abc", "other-error" },
		{ "n", "other-error" },
		{ "n,", "other-error" },
		{ "n,,", "invalid-username-encoding" },
		{ "n,b=x,n=user,r=abc", "invalid-username-encoding" },
		{ "n,a=,n=user,r=abc", "invalid-username-encoding" },
		{ "n,,m=ext,n=user,r=abc", "extensions-not-supported" },
		{ "n,,n=,r=abc", "invalid-username-encoding" },
		{ "n,,n=us=er,r=abc", "invalid-username-encoding" },
		{ "n,,n=user=2,r=abc", "invalid-username-encoding" },
		{ "n,,n=user=2c,r=abc", "invalid-username-encoding" },
		{ "n,,n=us\xff"
		  "er,r=abc",
		  "invalid-username-encoding" },
		{ "n,,n=us\xc0\xafr,r=abc", "invalid-username-encoding" },
		{ "n,,n=user", "other-error" },
		{ "n,,n=user,", "other-error" },
		{ "n,,n=user,r=", "other-error" },
		{ "n,,n=user,s=abc", "other-error" },
		{ "n,,n=user,r=a b", "other-error" },
		{ "n,,n=user,r=abc,", "extensions-not-supported" },
		{ "n,,n=user,r=abc,1=x", "extensions-not-supported" },
		{ "n,,n=user,r=abc,m=x", "extensions-not-supported" },
		{ "n,,r=abc,n=user", "invalid-username-encoding" },
	};
	pool_t pool = pool_create("test", 1024);

	for (unsigned int i = 0; i < N_ELEMENTS(tests); i++) {
		struct scram_client_first first;
		const char *error = NULL;

		assert_int_equal(scram_parse_client_first(
					 pool, span_from_cstr(tests[i].msg),
					 &first, &error),
				 -1);
		assert_string_equal(error, tests[i].error);
		assert_int_equal(
			scram_client_first_check(span_from_cstr(tests[i].msg)),
			-1);
	}
	/* An embedded NUL, and an oversized message. */
	struct scram_client_first first;
	const char *error;
	struct buf big = BUF_INIT;

	assert_int_equal(
		scram_parse_client_first(pool, span_make("n,,n=u\0s,r=a", 12),
					 &first, &error),
		-1);
	buf_append_str(&big, "n,,n=user,r=");
	for (unsigned int i = 0; i < SCRAM_MAX_MESSAGE; i++)
		buf_append_c(&big, 'a');
	assert_int_equal(
		scram_parse_client_first(pool, buf_span(&big), &first, &error),
		-1);
	assert_string_equal(error, "invalid-encoding");
	buf_free(&big);
	pool_unref(&pool);
}

static void test_client_final(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct scram_client_first first, first_y;
	struct scram_client_final final;
	const char *error;
	const struct span nonce = SPAN_LIT("abcdef");
	static const char *const bad[] = {
		"",
		"c=biws",
		"c=biws,r=abcdef",
		"c=biws,r=abcdef,p=",
		"c=biws,r=abcdef,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndV",
		"c=biws,r=abcdef,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ",
		"c=biws,r=abcdef,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ==",
		"c=biws,r=abcdef,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7And!Q=",
		"r=abcdef,c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=abcdef,m=x,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=abcdef,,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	};

	assert_int_equal(scram_parse_client_first(pool,
						  SPAN_LIT("n,,n=u,r=abc"),
						  &first, &error),
			 0);
	assert_int_equal(scram_parse_client_first(pool,
						  SPAN_LIT("y,,n=u,r=abc"),
						  &first_y, &error),
			 0);
	assert_int_equal(
		scram_parse_client_final(
			SPAN_LIT(
				"c=biws,r=abcdef,x=1,p=dHzbZapWIk4jUhN+Ute9ytag9"
				"zjfMHgsqmmiz7AndVQ="),
			&final, &error),
		0);
	assert_true(
		span_eq(final.without_proof, SPAN_LIT("c=biws,r=abcdef,x=1")));
	assert_true(span_eq(final.nonce, nonce));
	assert_int_equal(
		scram_client_final_check(&first, &final, nonce, &error), 0);
	/* c= must match the gs2-header: "biws" is "n,,", "eSws" is "y,,". */
	assert_int_equal(
		scram_client_final_check(&first_y, &final, nonce, &error), -1);
	assert_string_equal(error, "channel-bindings-dont-match");
	assert_int_equal(scram_client_final_check(&first, &final,
						  SPAN_LIT("abcdeg"), &error),
			 -1);
	assert_string_equal(error, "other-error");
	assert_int_equal(
		scram_parse_client_final(
			SPAN_LIT("c=eSws,r=abcdef,p=dHzbZapWIk4jUhN+Ute9ytag9"
				 "zjfMHgsqmmiz7AndVQ="),
			&final, &error),
		0);
	assert_int_equal(
		scram_client_final_check(&first_y, &final, nonce, &error), 0);
	assert_int_equal(
		scram_client_final_check(&first, &final, nonce, &error), -1);
	/* c= with channel-binding data or garbage */
	assert_int_equal(
		scram_parse_client_final(
			SPAN_LIT(
				"c=cD10bHMtdW5pcXVlLCxkYXRh,r=abcdef,p=dHzbZapWIk4"
				"jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
			&final, &error),
		0);
	assert_int_equal(
		scram_client_final_check(&first, &final, nonce, &error), -1);
	assert_int_equal(
		scram_parse_client_final(
			SPAN_LIT(
				"c=!!!!,r=abcdef,p=dHzbZapWIk4jUhN+Ute9ytag9zjfM"
				"Hgsqmmiz7AndVQ="),
			&final, &error),
		0);
	assert_int_equal(
		scram_client_final_check(&first, &final, nonce, &error), -1);

	for (unsigned int i = 0; i < N_ELEMENTS(bad); i++) {
		error = NULL;
		assert_int_equal(
			scram_parse_client_final(span_from_cstr(bad[i]), &final,
						 &error),
			-1);
		assert_non_null(error);
	}
	pool_unref(&pool);
}

static void test_saslname(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct buf out = BUF_INIT;

	assert_string_equal(scram_saslname_decode(pool, SPAN_LIT("a=2Cb=3D")),
			    "a,b=");
	assert_string_equal(scram_saslname_decode(pool, SPAN_LIT("=3D=3D")),
			    "==");
	assert_null(scram_saslname_decode(pool, SPAN_LIT("")));
	assert_null(scram_saslname_decode(pool, SPAN_LIT("=")));
	assert_null(scram_saslname_decode(pool, SPAN_LIT("a=")));
	assert_null(scram_saslname_decode(pool, SPAN_LIT("a=2")));
	assert_null(scram_saslname_decode(pool, SPAN_LIT("a=3d")));
	assert_null(scram_saslname_decode(pool, SPAN_LIT("a=41")));
	assert_null(scram_saslname_decode(pool, SPAN_LIT("a,b")));
	scram_saslname_encode(&out, "x,y=z");
	assert_string_equal(buf_cstr(&out), "x=2Cy=3Dz");
	assert_string_equal(scram_saslname_decode(pool, buf_span(&out)),
			    "x,y=z");
	buf_free(&out);
	pool_unref(&pool);
}

static void test_saltprep(void **state)
{
	static const struct {
		const char *in, *out; /* out NULL: refused */
	} tests[] = {
		{ "pencil", "pencil" },
		{ "correct horse battery staple",
		  "correct horse battery staple" },
		{ "p\xc3\xa4ss", "p\xc3\xa4ss" }, /* NFC U+00E4 as is */
		{ "a\xc2\xa0"
		  "b",
		  "a b" }, /* U+00A0 NO-BREAK SPACE */
		{ "a\xe3\x80\x80"
		  "b",
		  "a b" }, /* U+3000 IDEOGRAPHIC SPACE */
		{ "a\xe2\x80\x8a"
		  "b",
		  "a b" }, /* U+200A HAIR SPACE */
		{ "\xf0\x9f\x90\xbf", "\xf0\x9f\x90\xbf" }, /* U+1F43F */
		/* NFC: e + U+0301 COMBINING ACUTE is U+00E9; U+212B ANGSTROM
		   SIGN is U+00C5; U+FB01 (ligature fi) stays (NFC, not
		   NFKC). */
		{ "caf"
		  "e\xcc\x81",
		  "caf\xc3\xa9" },
		{ "\xe2\x84\xab", "\xc3\x85" },
		{ "\xef\xac\x81", "\xef\xac\x81" },
		{ "\xcd\xb8", NULL }, /* U+0378 unassigned */
		{ "", NULL },
		{ "tab\there", NULL },
		{ "del\x7f", NULL },
		{ "c1\xc2\x85", NULL }, /* U+0085 */
		{ "bad\xff", NULL },
		{ "trunc\xc3", NULL },
		{ "overlong\xc0\xa0", NULL },
		{ "surrogate\xed\xa0\x80", NULL },
	};

	for (unsigned int i = 0; i < N_ELEMENTS(tests); i++) {
		struct buf out = BUF_INIT;
		int ret = scram_saltprep(&out, span_from_cstr(tests[i].in));

		if (tests[i].out == NULL) {
			assert_int_equal(ret, -1);
		} else {
			assert_int_equal(ret, 0);
			assert_string_equal(buf_cstr(&out), tests[i].out);
		}
		buf_free(&out);
	}
}

static void test_server_nonce(void **state)
{
	char a[SCRAM_SERVER_NONCE_LEN + 1], b[SCRAM_SERVER_NONCE_LEN + 1];

	scram_server_nonce(a);
	scram_server_nonce(b);
	assert_int_equal(strlen(a), SCRAM_SERVER_NONCE_LEN);
	assert_string_not_equal(a, b);
	assert_null(strchr(a, ','));
	assert_null(strchr(a, '='));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7677_exchange),
		cmocka_unit_test(test_rfc7677_client),
		cmocka_unit_test(test_client_first_good),
		cmocka_unit_test(test_client_first_bad),
		cmocka_unit_test(test_client_final),
		cmocka_unit_test(test_saslname),
		cmocka_unit_test(test_saltprep),
		cmocka_unit_test(test_server_nonce),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
