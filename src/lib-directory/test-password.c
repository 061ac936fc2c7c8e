/* test-password.c - unit tests for password.c: argon2id hashing and
   verification, the encoded format, length bounds, the dummy hash and
   reading a password from a pipe. Each hash costs 64 MiB, so the suite
   computes only a handful. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "password.h"

#include <stdlib.h>
#include <unistd.h>

static void test_hash_verify(void **state)
{
	char hash[PASSWORD_HASH_MAX];

	assert_int_equal(password_hash("correct horse", 13, hash), 0);
	assert_true(password_verify(hash, "correct horse", 13));
	/* Wrong password, prefix of it, longer, different case. */
	assert_false(password_verify(hash, "correct hors", 12));
	assert_false(password_verify(hash, "correct horse!", 14));
	assert_false(password_verify(hash, "Correct horse", 13));
	/* The length given is what counts, not a NUL. */
	assert_false(password_verify(hash, "correct horse battery", 21));
	assert_true(password_verify(hash, "correct horse battery", 13));
	assert_false(password_needs_rehash(hash));
}

static void test_hash_format(void **state)
{
	char hash[PASSWORD_HASH_MAX];
	char hash2[PASSWORD_HASH_MAX];

	assert_int_equal(password_hash("p\xc3\xa4ss", 5, hash), 0);
	assert_int_equal(strncmp(hash, "$argon2id$v=19$m=65536,t=2,p=1$", 31),
			 0);
	assert_true(strlen(hash) < PASSWORD_HASH_MAX);
	/* Salted: the same password hashes differently. */
	assert_int_equal(password_hash("p\xc3\xa4ss", 5, hash2), 0);
	assert_string_not_equal(hash, hash2);
	assert_true(password_verify(hash2, "p\xc3\xa4ss", 5));
}

static void test_hash_bounds(void **state)
{
	char hash[PASSWORD_HASH_MAX];
	char *big = i_malloc(PASSWORD_MAX_LEN + 2);

	memset(big, 'x', PASSWORD_MAX_LEN + 1);
	assert_int_equal(password_hash("", 0, hash), -1);
	assert_int_equal(password_hash(big, PASSWORD_MAX_LEN + 1, hash), -1);
	assert_false(password_verify(password_dummy_hash(), "", 0));
	assert_false(password_verify(password_dummy_hash(), big,
				     PASSWORD_MAX_LEN + 1));
	i_free(big);
}

static void test_verify_garbage(void **state)
{
	static const char *const hashes[] = {
		"",
		"plaintext",
		"$argon2id$",
		"$argon2id$v=19$m=65536,t=2,p=1$AAAA$BBBB",
		"$2b$10$abcdefghijklmnopqrstuu5cXn1Q3SXqLk1Xb1u1eY8n0X3b5i7K",
	};
	char unterminated[PASSWORD_HASH_MAX];

	for (size_t i = 0; i < N_ELEMENTS(hashes); i++)
		assert_false(password_verify(hashes[i], "x", 1));
	assert_false(password_verify(NULL, "x", 1));
	memset(unterminated, 'a', sizeof(unterminated));
	assert_false(password_verify(unterminated, "x", 1));
	assert_true(password_needs_rehash("plaintext"));
	assert_true(password_needs_rehash(NULL));
}

static void test_dummy_hash(void **state)
{
	const char *dummy = password_dummy_hash();

	assert_int_equal(strncmp(dummy, "$argon2id$", 10), 0);
	/* Computed once per process. */
	assert_ptr_equal(password_dummy_hash(), dummy);
	assert_false(password_verify(dummy, "password", 8));
	assert_false(password_verify(dummy, "", 0));
}

static const struct {
	const char *input;
	size_t input_len;
	const char *expected; /* NULL: refused */
	const char *rest; /* what remains unread in the pipe */
} read_tests[] = {
	{ "secret\n", 7, "secret", "" },
	{ "secret\r\n", 8, "secret", "" },
	{ "secret", 6, "secret", "" },
	{ "secret\r", 7, "secret", "" },
	{ "two words \n", 11, "two words ", "" },
	{ "first\nsecond\n", 13, "first", "second\n" },
	{ "\n", 1, NULL, "" },
	{ "\r\n", 2, NULL, "" },
	{ "", 0, NULL, "" },
	{ "a\0b\n", 4, NULL, "" },
};

static char *read_through_pipe(const void *data, size_t len,
			       const char **error_r, char *rest,
			       size_t rest_size)
{
	int fds[2];
	char *pw;
	ssize_t n;

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], data, len), (ssize_t)len);
	assert_int_equal(close(fds[1]), 0);
	pw = password_read_fd(fds[0], error_r);
	n = read(fds[0], rest, rest_size - 1);
	assert_true(n >= 0);
	rest[n] = '\0';
	close(fds[0]);
	return pw;
}

static void test_read_fd(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(read_tests); i++) {
		const char *error = NULL;
		char rest[64];
		char *pw = read_through_pipe(read_tests[i].input,
					     read_tests[i].input_len, &error,
					     rest, sizeof(rest));

		if (read_tests[i].expected == NULL) {
			assert_null(pw);
			assert_non_null(error);
		} else {
			assert_non_null(pw);
			assert_string_equal(pw, read_tests[i].expected);
			free(pw);
		}
		assert_string_equal(rest, read_tests[i].rest);
	}
}

static void test_read_fd_length(void **state)
{
	static const struct {
		size_t len;
		const char *suffix;
		bool ok;
	} cases[] = {
		{ PASSWORD_MAX_LEN, "", true },
		{ PASSWORD_MAX_LEN, "\n", true },
		{ PASSWORD_MAX_LEN, "\r\n", true },
		{ PASSWORD_MAX_LEN + 1, "", false },
		{ PASSWORD_MAX_LEN + 1, "\n", false },
		{ PASSWORD_MAX_LEN + 100, "\n", false },
	};
	char *data = i_malloc(PASSWORD_MAX_LEN + 200);

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		const char *error = NULL;
		size_t len = cases[i].len;
		char rest[256];
		char *pw;

		memset(data, 'p', len);
		memcpy(data + len, cases[i].suffix, strlen(cases[i].suffix));
		pw = read_through_pipe(data, len + strlen(cases[i].suffix),
				       &error, rest, sizeof(rest));
		if (cases[i].ok) {
			assert_non_null(pw);
			assert_int_equal(strlen(pw), len);
			free(pw);
		} else {
			assert_null(pw);
			assert_string_equal(
				error, "password is longer than 1024 bytes");
		}
	}
	i_free(data);
}

static void test_read_fd_bad(void **state)
{
	const char *error = NULL;

	assert_null(password_read_fd(-1, &error));
	assert_string_equal(error, "cannot read password");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_verify),
		cmocka_unit_test(test_hash_format),
		cmocka_unit_test(test_hash_bounds),
		cmocka_unit_test(test_verify_garbage),
		cmocka_unit_test(test_dummy_hash),
		cmocka_unit_test(test_read_fd),
		cmocka_unit_test(test_read_fd_length),
		cmocka_unit_test(test_read_fd_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
