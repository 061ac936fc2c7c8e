/* test-account-keys.c - unit tests for account-keys.c: the master key file
   (creation, O_EXCL, permissions, size) and wrapping of account keys, which
   must fail for any other master key, account id or public key, and for
   any damaged or truncated blob. Files live in a mkdtemp() directory that
   each test removes. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "account-keys.h"

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct tmp {
	char dir[64];
	char path[128];
};

static int tmp_setup(void **state)
{
	struct tmp *t = i_new(struct tmp, 1);

	snprintf(t->dir, sizeof(t->dir), "/tmp/test-account-keys.XXXXXX");
	if (mkdtemp(t->dir) == NULL)
		return -1;
	snprintf(t->path, sizeof(t->path), "%s/master.key", t->dir);
	*state = t;
	return 0;
}

static int tmp_teardown(void **state)
{
	struct tmp *t = *state;

	unlink(t->path);
	rmdir(t->dir);
	i_free(t);
	return 0;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] != 0)
			return false;
	}
	return true;
}

static void write_file(const char *path, const void *data, size_t len,
		       mode_t mode)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void test_master_key_create_load(void **state)
{
	struct tmp *t = *state;
	uint8_t key[MASTER_KEY_LEN], key2[MASTER_KEY_LEN];
	const char *error = NULL;
	struct stat st;

	assert_int_equal(master_key_create(t->path, &error), 0);
	assert_int_equal(stat(t->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, MASTER_KEY_LEN);
	assert_int_equal(master_key_load(t->path, key, &error), 0);
	assert_false(all_zero(key, sizeof(key)));
	/* O_EXCL: an existing key is never overwritten. */
	assert_int_equal(master_key_create(t->path, &error), -1);
	assert_non_null(strstr(error, "cannot create"));
	assert_int_equal(master_key_load(t->path, key2, &error), 0);
	assert_memory_equal(key, key2, sizeof(key));
}

static void test_master_key_permissions(void **state)
{
	static const mode_t modes[] = { 0640, 0604, 0660, 0644, 0610, 0602 };
	struct tmp *t = *state;
	uint8_t key[MASTER_KEY_LEN] = { 1 };
	const char *error = NULL;
	char expected[256];

	snprintf(expected, sizeof(expected), "chmod 600 %s", t->path);
	for (size_t i = 0; i < N_ELEMENTS(modes); i++) {
		write_file(t->path, key, sizeof(key), modes[i]);
		assert_int_equal(master_key_load(t->path, key, &error), -1);
		assert_non_null(strstr(error, expected));
	}
	write_file(t->path, key, sizeof(key), 0400);
	assert_int_equal(master_key_load(t->path, key, &error), 0);
	chmod(t->path, 0600);
}

static void test_master_key_size(void **state)
{
	static const size_t sizes[] = { 0, 1, 31, 33, 64 };
	struct tmp *t = *state;
	uint8_t data[64] = { 0 };
	uint8_t key[MASTER_KEY_LEN];
	const char *error = NULL;

	for (size_t i = 0; i < N_ELEMENTS(sizes); i++) {
		write_file(t->path, data, sizes[i], 0600);
		assert_int_equal(master_key_load(t->path, key, &error), -1);
		assert_non_null(strstr(error, "exactly 32 bytes"));
	}
	unlink(t->path);
	assert_int_equal(master_key_load(t->path, key, &error), -1);
	assert_non_null(strstr(error, "cannot open"));
	/* A directory is not a key file. */
	assert_int_equal(master_key_load(t->dir, key, &error), -1);
}

static void test_master_key_create_bad_dir(void **state)
{
	const char *error = NULL;

	assert_int_equal(
		master_key_create("/nonexistent-dir/master.key", &error), -1);
	assert_non_null(strstr(error, "/nonexistent-dir/master.key"));
}

static void random_master(uint8_t key[MASTER_KEY_LEN])
{
	int fd = open("/dev/urandom", O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(read(fd, key, MASTER_KEY_LEN), MASTER_KEY_LEN);
	close(fd);
}

static void test_wrap_round_trip(void **state)
{
	uint8_t master[MASTER_KEY_LEN];
	uint8_t wrapped[ACCOUNT_WRAPPED_LEN], wrapped2[ACCOUNT_WRAPPED_LEN];
	uint8_t derived_pk[ACCOUNT_PUBLIC_KEY_LEN];
	struct account_keys keys, out, other;

	random_master(master);
	account_keys_generate(&keys);
	account_keys_generate(&other);
	assert_memory_not_equal(keys.public_key, other.public_key, 32);
	assert_memory_not_equal(keys.data_key, other.data_key, 32);
	account_keys_wrap(master, 42, &keys, wrapped);
	assert_memory_equal(wrapped, "MKW1", 4);
	assert_int_equal(account_keys_unwrap(master, 42, keys.public_key,
					     wrapped, sizeof(wrapped), &out),
			 0);
	assert_memory_equal(&keys, &out, sizeof(keys));
	/* Random nonce: wrapping twice gives different blobs. */
	account_keys_wrap(master, 42, &keys, wrapped2);
	assert_memory_not_equal(wrapped, wrapped2, sizeof(wrapped));
	/* The secret key fits the public key. */
	assert_int_equal(crypto_scalarmult_base(derived_pk, out.secret_key), 0);
	assert_memory_equal(derived_pk, keys.public_key, sizeof(derived_pk));
	account_keys_clear(&keys);
	account_keys_clear(&out);
	account_keys_clear(&other);
	safe_memset0(master, sizeof(master));
}

static void test_unwrap_wrong_context(void **state)
{
	uint8_t master[MASTER_KEY_LEN], master2[MASTER_KEY_LEN];
	uint8_t wrapped[ACCOUNT_WRAPPED_LEN];
	struct account_keys keys, other, out;

	random_master(master);
	memcpy(master2, master, sizeof(master));
	master2[31] ^= 0x01;
	account_keys_generate(&keys);
	account_keys_generate(&other);
	account_keys_wrap(master, 7, &keys, wrapped);

	/* Another master key. */
	assert_int_equal(account_keys_unwrap(master2, 7, keys.public_key,
					     wrapped, sizeof(wrapped), &out),
			 -1);
	/* Another account id (also ones differing only in high bits). */
	assert_int_equal(account_keys_unwrap(master, 8, keys.public_key,
					     wrapped, sizeof(wrapped), &out),
			 -1);
	assert_int_equal(account_keys_unwrap(master, 7 | (1ULL << 63),
					     keys.public_key, wrapped,
					     sizeof(wrapped), &out),
			 -1);
	/* Another public key. */
	assert_int_equal(account_keys_unwrap(master, 7, other.public_key,
					     wrapped, sizeof(wrapped), &out),
			 -1);
	/* Still fine with the right context. */
	assert_int_equal(account_keys_unwrap(master, 7, keys.public_key,
					     wrapped, sizeof(wrapped), &out),
			 0);
	account_keys_clear(&keys);
	account_keys_clear(&other);
	account_keys_clear(&out);
}

static void test_unwrap_damaged(void **state)
{
	uint8_t master[MASTER_KEY_LEN];
	uint8_t wrapped[ACCOUNT_WRAPPED_LEN], bad[ACCOUNT_WRAPPED_LEN + 1];
	struct account_keys keys, out;

	random_master(master);
	account_keys_generate(&keys);
	account_keys_wrap(master, 1, &keys, wrapped);

	/* One flipped bit in every byte position, and a full-byte flip. */
	for (size_t i = 0; i < sizeof(wrapped); i++) {
		for (unsigned int mask = 0x01; mask <= 0x80; mask <<= 7) {
			memcpy(bad, wrapped, sizeof(wrapped));
			bad[i] ^= (uint8_t)mask;
			assert_int_equal(
				account_keys_unwrap(master, 1, keys.public_key,
						    bad, sizeof(wrapped), &out),
				-1);
		}
		memcpy(bad, wrapped, sizeof(wrapped));
		bad[i] ^= 0xff;
		assert_int_equal(account_keys_unwrap(master, 1, keys.public_key,
						     bad, sizeof(wrapped),
						     &out),
				 -1);
	}
	/* Truncated at every length, and one byte too long. */
	for (size_t len = 0; len < sizeof(wrapped); len++)
		assert_int_equal(account_keys_unwrap(master, 1, keys.public_key,
						     wrapped, len, &out),
				 -1);
	memcpy(bad, wrapped, sizeof(wrapped));
	bad[sizeof(wrapped)] = 0;
	assert_int_equal(account_keys_unwrap(master, 1, keys.public_key, bad,
					     sizeof(bad), &out),
			 -1);
	account_keys_clear(&keys);
}

/* Zero-access wrapping: the password opens, nothing else does. */
static void test_password_wrap(void **state)
{
	static const char pw[] = "correct horse battery staple";
	uint8_t wrapped[ACCOUNT_PASSWORD_WRAPPED_LEN];
	uint8_t wrapped2[ACCOUNT_PASSWORD_WRAPPED_LEN];
	uint8_t bad[ACCOUNT_PASSWORD_WRAPPED_LEN];
	uint8_t master[MASTER_KEY_LEN];
	struct account_keys keys, other, out;
	const size_t len = sizeof(pw) - 1;

	account_keys_generate(&keys);
	account_keys_generate(&other);
	assert_int_equal(
		account_keys_wrap_password(pw, len, 42, &keys, wrapped), 0);
	assert_memory_equal(wrapped, "MKZ1", 4);
	/* The right password opens. */
	memset(&out, 0, sizeof(out));
	assert_int_equal(account_keys_unwrap_password(pw, len, 42,
						      keys.public_key, wrapped,
						      sizeof(wrapped), &out),
			 0);
	assert_memory_equal(&keys, &out, sizeof(keys));
	/* A wrong one (also a prefix of the right one) does not. */
	assert_int_equal(account_keys_unwrap_password("wrong", 5, 42,
						      keys.public_key, wrapped,
						      sizeof(wrapped), &out),
			 -1);
	assert_int_equal(account_keys_unwrap_password(pw, len - 1, 42,
						      keys.public_key, wrapped,
						      sizeof(wrapped), &out),
			 -1);
	/* Another account's id, or another public key. */
	assert_int_equal(account_keys_unwrap_password(pw, len, 43,
						      keys.public_key, wrapped,
						      sizeof(wrapped), &out),
			 -1);
	assert_int_equal(account_keys_unwrap_password(pw, len, 42,
						      other.public_key, wrapped,
						      sizeof(wrapped), &out),
			 -1);
	/* Random salt and nonce: wrapping twice differs; both open. */
	assert_int_equal(
		account_keys_wrap_password(pw, len, 42, &keys, wrapped2), 0);
	assert_memory_not_equal(wrapped, wrapped2, 4 + 16);
	assert_int_equal(account_keys_unwrap_password(pw, len, 42,
						      keys.public_key, wrapped2,
						      sizeof(wrapped2), &out),
			 0);
	/* A flipped byte in salt, nonce, ciphertext or tag; truncation. */
	for (size_t i = 0; i < sizeof(wrapped); i += 13) {
		memcpy(bad, wrapped, sizeof(wrapped));
		bad[i] ^= 0x01;
		assert_int_equal(account_keys_unwrap_password(
					 pw, len, 42, keys.public_key, bad,
					 sizeof(bad), &out),
				 -1);
	}
	assert_int_equal(account_keys_unwrap_password(
				 pw, len, 42, keys.public_key, wrapped,
				 sizeof(wrapped) - 1, &out),
			 -1);
	/* The two kinds never open each other: a password blob is no
	   master-key blob, whatever the master key. */
	random_master(master);
	assert_int_equal(account_keys_unwrap(master, 42, keys.public_key,
					     wrapped, ACCOUNT_WRAPPED_LEN,
					     &out),
			 -1);
	account_keys_clear(&keys);
	account_keys_clear(&other);
	account_keys_clear(&out);
}

static void test_keys_clear(void **state)
{
	struct account_keys keys;
	uint8_t pk[ACCOUNT_PUBLIC_KEY_LEN];

	account_keys_generate(&keys);
	memcpy(pk, keys.public_key, sizeof(pk));
	assert_false(all_zero(keys.secret_key, sizeof(keys.secret_key)));
	assert_false(all_zero(keys.data_key, sizeof(keys.data_key)));
	account_keys_clear(&keys);
	assert_true(all_zero(keys.secret_key, sizeof(keys.secret_key)));
	assert_true(all_zero(keys.data_key, sizeof(keys.data_key)));
	/* The public part is not secret and stays. */
	assert_memory_equal(keys.public_key, pk, sizeof(pk));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_master_key_create_load,
						tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_master_key_permissions,
						tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_master_key_size, tmp_setup,
						tmp_teardown),
		cmocka_unit_test(test_master_key_create_bad_dir),
		cmocka_unit_test(test_wrap_round_trip),
		cmocka_unit_test(test_unwrap_wrong_context),
		cmocka_unit_test(test_unwrap_damaged),
		cmocka_unit_test(test_password_wrap),
		cmocka_unit_test(test_keys_clear),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
