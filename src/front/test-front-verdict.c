/* test-front-verdict.c - unit tests for the verdict stage: a clean
   message is accepted with no header; GTUBE in the body, in a
   quoted-printable part and in a base64 part files into Junk with
   "X-Spam: yes"; EICAR raw, base64-encoded in an attachment (also wrapped
   across lines, and as the second attachment), and quoted-printable is
   rejected with the 5.7.1 reason; EICAR wins over GTUBE; a near miss of
   either string is clean; the table rules (strongest action wins, first
   REJECT stops, TAG adds its header and delivers, an invalid header from a
   check is dropped); a base64 part too large for the decode budget is not
   decoded past it but the raw search still runs. The test strings are
   spelt out here (the source of truth is SpamAssassin's GTUBE page and
   eicar.org). */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "pool.h"
#include "front-verdict.h"

#include <sodium.h>
#include <stdio.h>

#define GTUBE \
	"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
#define EICAR \
	"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
#define EICAR_REASON "5.7.1 message contains a virus (EICAR test signature)"

static const char clean_msg[] = "Received: from x by y; Tue, 1 Dec 2026\r\n"
				"From: a@example.org\r\n"
				"To: b@example.net\r\n"
				"Subject: hello\r\n"
				"\r\n"
				"Just a normal message.\r\n";

static void run(const char *msg, size_t len, pool_t pool,
		struct front_verdict *v)
{
	const struct front_verdict_input input = {
		.message = (const uint8_t *)msg,
		.message_len = len,
		.sender = "a@example.org",
		.client_ip = "127.0.0.1",
	};

	front_verdict_run(&input, pool, v);
}

static void run_str(const char *msg, pool_t pool, struct front_verdict *v)
{
	run(msg, strlen(msg), pool, v);
}

/* A multipart message with one attachment whose body is given. */
static char *attachment_msg(const char *encoding, const char *body)
{
	return i_strdup_printf(
		"From: a@example.org\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
		"\r\n"
		"--b1\r\n"
		"Content-Type: text/plain\r\n"
		"\r\n"
		"See the attachment.\r\n"
		"--b1\r\n"
		"Content-Type: application/octet-stream; name=\"x.com\"\r\n"
		"Content-Disposition: attachment; filename=\"x.com\"\r\n"
		"Content-Transfer-Encoding: %s\r\n"
		"\r\n"
		"%s\r\n"
		"--b1--\r\n",
		encoding, body);
}

static char *base64(const char *data, size_t len)
{
	size_t b64_len =
		sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char *out = i_malloc(b64_len);

	sodium_bin2base64(out, b64_len, (const uint8_t *)data, len,
			  sodium_base64_VARIANT_ORIGINAL);
	return out;
}

static void test_clean(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct front_verdict v;

	run_str(clean_msg, pool, &v);
	assert_int_equal(v.action, FRONT_VERDICT_ACCEPT);
	assert_null(v.check);
	assert_null(v.reason);
	assert_string_equal(v.headers, "");
	/* Empty message. */
	run("", 0, pool, &v);
	assert_int_equal(v.action, FRONT_VERDICT_ACCEPT);
	pool_unref(&pool);
}

static void test_gtube(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct front_verdict v;
	char *msg =
		i_strdup_printf("Subject: test\r\n\r\nThis is the GTUBE:\r\n"
				"%s\r\n",
				GTUBE);

	run_str(msg, pool, &v);
	assert_int_equal(v.action, FRONT_VERDICT_JUNK);
	assert_string_equal(v.check, "gtube");
	assert_string_equal(v.headers, "X-Spam: yes\r\n");
	assert_null(v.reason);
	i_free(msg);

	/* In a base64 part: found after decoding. */
	char *b64 = base64(GTUBE, strlen(GTUBE));
	msg = attachment_msg("base64", b64);
	assert_null(strstr(msg, GTUBE));
	run_str(msg, pool, &v);
	assert_int_equal(v.action, FRONT_VERDICT_JUNK);
	i_free(msg);
	i_free(b64);

	/* One character short is not GTUBE. */
	msg = i_strdup_printf("\r\n%.*s\r\n", (int)strlen(GTUBE) - 1, GTUBE);
	run_str(msg, pool, &v);
	assert_int_equal(v.action, FRONT_VERDICT_ACCEPT);
	i_free(msg);
	pool_unref(&pool);
}

static void test_eicar_raw(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct front_verdict v;
	char *msg = attachment_msg("7bit", EICAR);

	run_str(msg, pool, &v);
	assert_int_equal(v.action, FRONT_VERDICT_REJECT);
	assert_string_equal(v.check, "eicar");
	assert_string_equal(v.reason, EICAR_REASON);
	assert_string_equal(v.headers, "");
	i_free(msg);
	pool_unref(&pool);
}

static void test_eicar_base64(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct front_verdict v;
	char *b64 = base64(EICAR, strlen(EICAR));
	char *msg = attachment_msg("base64", b64);

	assert_null(strstr(msg, "EICAR"));
	run_str(msg, pool, &v);
	assert_int_equal(v.action, FRONT_VERDICT_REJECT);
	assert_string_equal(v.reason, EICAR_REASON);
	i_free(msg);

	/* Wrapped at 20 characters, with CRLF, and upper-case encoding
	   name. */
	struct buf wrapped = BUF_INIT;
	for (size_t i = 0; i < strlen(b64); i += 20) {
		buf_printf(&wrapped, "%.20s\r\n", b64 + i);
	}
	msg = attachment_msg("BASE64", buf_cstr(&wrapped));
	run_str(msg, pool, &v);
	assert_int_equal(v.action, FRONT_VERDICT_REJECT);
	i_free(msg);
	buf_free(&wrapped);

	/* The file is EICAR followed by more bytes (the standard allows
	   trailing white space; we find it anywhere). */
	char *file = i_strdup_printf("%s   \r\n", EICAR);
	char *b64b = base64(file, strlen(file));
	msg = attachment_msg("base64", b64b);
	run_str(msg, pool, &v);
	assert_int_equal(v.action, FRONT_VERDICT_REJECT);
	i_free(msg);
	i_free(b64b);
	i_free(file);

	/* Nested: a multipart/alternative inside the mixed one. */
	msg = i_strdup_printf(
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
		"--outer\r\n"
		"Content-Type: multipart/alternative; boundary=inner\r\n\r\n"
		"--inner\r\n"
		"Content-Type: text/plain\r\n\r\nhi\r\n"
		"--inner\r\n"
		"Content-Type: text/html\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\n%s\r\n"
		"--inner--\r\n"
		"--outer--\r\n",
		b64);
	run_str(msg, pool, &v);
	assert_int_equal(v.action, FRONT_VERDICT_REJECT);
	i_free(msg);

	/* Damaged base64 (one character changed): no match. */
	char *bad = i_strdup(b64);
	bad[10] = bad[10] == 'A' ? 'B' : 'A';
	msg = attachment_msg("base64", bad);
	run_str(msg, pool, &v);
	assert_int_equal(v.action, FRONT_VERDICT_ACCEPT);
	i_free(msg);
	i_free(bad);
	i_free(b64);
	pool_unref(&pool);
}

static void test_eicar_qp(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct front_verdict v;
	/* A soft line break (RFC 2045 6.7 rule 5) splits the string in the
	   raw bytes. */
	char *msg = attachment_msg(
		"quoted-printable",
		"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-=\r\n"
		"FILE!$H+H*");

	assert_null(strstr(msg, EICAR));
	run_str(msg, pool, &v);
	assert_int_equal(v.action, FRONT_VERDICT_REJECT);
	i_free(msg);
	pool_unref(&pool);
}

static void test_eicar_beats_gtube(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct front_verdict v;
	char *msg = i_strdup_printf("\r\n%s\r\n%s\r\n", GTUBE, EICAR);

	run_str(msg, pool, &v);
	assert_int_equal(v.action, FRONT_VERDICT_REJECT);
	assert_string_equal(v.check, "eicar");
	i_free(msg);
	pool_unref(&pool);
}

/* Table rules with checks of our own. */
static void check_tag(const struct front_verdict_input *input, pool_t pool,
		      struct front_verdict_result *result_r)
{
	result_r->action = FRONT_VERDICT_TAG;
	result_r->header = "X-Test-Tag: checked";
}

static void check_bad_header(const struct front_verdict_input *input,
			     pool_t pool, struct front_verdict_result *result_r)
{
	result_r->action = FRONT_VERDICT_TAG;
	result_r->header = "X-Evil: a\r\n\r\nInjected body";
}

static unsigned int after_reject_calls;
static void check_reject(const struct front_verdict_input *input, pool_t pool,
			 struct front_verdict_result *result_r)
{
	result_r->action = FRONT_VERDICT_REJECT;
}

static void check_count(const struct front_verdict_input *input, pool_t pool,
			struct front_verdict_result *result_r)
{
	after_reject_calls++;
}

static void test_table(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct front_verdict v;
	const struct front_verdict_input input = {
		.message = (const uint8_t *)clean_msg,
		.message_len = strlen(clean_msg),
		.sender = "",
		.client_ip = "",
	};
	const struct front_verdict_check tag_only[] = {
		{ "tag", check_tag },
	};
	const struct front_verdict_check tag_bad[] = {
		{ "bad", check_bad_header },
		{ "tag", check_tag },
	};
	const struct front_verdict_check rejects[] = {
		{ "tag", check_tag },
		{ "reject", check_reject },
		{ "count", check_count },
	};
	char *gtube_msg = i_strdup_printf("\r\n%s\r\n", GTUBE);
	const struct front_verdict_input gtube_input = {
		.message = (const uint8_t *)gtube_msg,
		.message_len = strlen(gtube_msg),
		.sender = "",
		.client_ip = "",
	};
	const struct front_verdict_check tag_junk[] = {
		{ "tag", check_tag },
		{ "gtube", front_verdict_check_gtube },
	};

	/* TAG: delivered normally, with the header. */
	front_verdict_run_checks(tag_only, N_ELEMENTS(tag_only), &input, pool,
				 &v);
	assert_int_equal(v.action, FRONT_VERDICT_TAG);
	assert_string_equal(v.check, "tag");
	assert_string_equal(v.headers, "X-Test-Tag: checked\r\n");

	/* A header with CR/LF is dropped; the action still counts. */
	front_verdict_run_checks(tag_bad, N_ELEMENTS(tag_bad), &input, pool,
				 &v);
	assert_int_equal(v.action, FRONT_VERDICT_TAG);
	assert_string_equal(v.check, "bad");
	assert_string_equal(v.headers, "X-Test-Tag: checked\r\n");

	/* REJECT stops the run, with the generic reason. */
	after_reject_calls = 0;
	front_verdict_run_checks(rejects, N_ELEMENTS(rejects), &input, pool,
				 &v);
	assert_int_equal(v.action, FRONT_VERDICT_REJECT);
	assert_string_equal(v.check, "reject");
	assert_string_equal(v.reason, "5.7.1 message refused by policy");
	assert_string_equal(v.headers, "");
	assert_int_equal(after_reject_calls, 0);

	/* TAG then JUNK: JUNK wins, both headers are kept. */
	front_verdict_run_checks(tag_junk, N_ELEMENTS(tag_junk), &gtube_input,
				 pool, &v);
	assert_int_equal(v.action, FRONT_VERDICT_JUNK);
	assert_string_equal(v.check, "gtube");
	assert_string_equal(v.headers,
			    "X-Test-Tag: checked\r\nX-Spam: yes\r\n");
	i_free(gtube_msg);
	pool_unref(&pool);
}

/* Only text leaves and small ones are decoded: GTUBE in a large base64
   text part is found, EICAR inside a large binary attachment is not (by
   EICAR's definition the test file is at most 128 bytes long). */
static void test_decode_scope(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct front_verdict v;
	struct buf text = BUF_INIT, file = BUF_INIT;
	char *b64, *msg;

	for (unsigned int i = 0; i < 200; i++)
		buf_printf(&text, "line %u of a long text\r\n", i);
	buf_printf(&text, "%s\r\n", GTUBE);
	b64 = base64(buf_cstr(&text), text.used);
	msg = i_strdup_printf("MIME-Version: 1.0\r\n"
			      "Content-Type: text/plain; charset=us-ascii\r\n"
			      "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n",
			      b64);
	assert_null(strstr(msg, GTUBE));
	run_str(msg, pool, &v);
	assert_int_equal(v.action, FRONT_VERDICT_JUNK);
	i_free(msg);
	i_free(b64);

	buf_printf(&file, "%s", EICAR);
	for (unsigned int i = 0; i < 100; i++)
		buf_printf(&file, "%08u", i);
	b64 = base64(buf_cstr(&file), file.used);
	msg = attachment_msg("base64", b64);
	run_str(msg, pool, &v);
	assert_int_equal(v.action, FRONT_VERDICT_ACCEPT);
	i_free(msg);
	i_free(b64);
	buf_free(&text);
	buf_free(&file);
	pool_unref(&pool);
}

static void test_large_part(void **state)
{
	pool_t pool = pool_create("test", 1024);
	struct front_verdict v;
	/* 12 MiB of base64 'A's (decodes to zeros, beyond the per-part
	   cap), then EICAR raw in a later text part. */
	size_t n = 12u * 1024 * 1024;
	char *big = i_malloc(n + 1);

	memset(big, 'A', n);
	char *msg = i_strdup_printf(
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n"
		"--b\r\nContent-Type: text/plain\r\n\r\n%s\r\n--b--\r\n",
		big, EICAR);
	run_str(msg, pool, &v);
	assert_int_equal(v.action, FRONT_VERDICT_REJECT);
	i_free(msg);
	i_free(big);
	pool_unref(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean),
		cmocka_unit_test(test_gtube),
		cmocka_unit_test(test_eicar_raw),
		cmocka_unit_test(test_eicar_base64),
		cmocka_unit_test(test_decode_scope),
		cmocka_unit_test(test_eicar_qp),
		cmocka_unit_test(test_eicar_beats_gtube),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_large_part),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
