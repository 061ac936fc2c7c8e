/* password.c - argon2id password hashing and verification (libsodium
   crypto_pwhash_str, "interactive" cost), the per-process dummy hash used
   to make unknown users cost as much as known ones, and reading a password
   from a file descriptor for the admin CLI. Owns only the dummy hash.
   Called by the directory (account and app passwords), the vault's
   authentication workers and the CLI. Passwords are bounded before hashing
   and wiped from every buffer this file fills. */

#include "lib.h"
#include "password.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <unistd.h>

_Static_assert(PASSWORD_HASH_MAX == crypto_pwhash_STRBYTES,
	       "hash buffer must match libsodium's encoded size");

static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[PASSWORD_HASH_MAX];

int password_hash(const char *password, size_t len,
		  char hash_r[PASSWORD_HASH_MAX])
{
	if (sodium_init() < 0)
		i_panic("sodium_init() failed");
	if (len == 0 || len > PASSWORD_MAX_LEN)
		return -1;
	return crypto_pwhash_str_alg(hash_r, password, len,
				     crypto_pwhash_OPSLIMIT_INTERACTIVE,
				     crypto_pwhash_MEMLIMIT_INTERACTIVE,
				     crypto_pwhash_ALG_ARGON2ID13) == 0
		       ? 0
		       : -1;
}

bool password_verify(const char *hash, const char *password, size_t len)
{
	if (sodium_init() < 0)
		i_panic("sodium_init() failed");
	if (hash == NULL || len == 0 || len > PASSWORD_MAX_LEN)
		return false;
	/* libsodium reads up to the NUL: refuse unterminated input. */
	if (strnlen(hash, PASSWORD_HASH_MAX) >= PASSWORD_HASH_MAX)
		return false;
	return crypto_pwhash_str_verify(hash, password, len) == 0;
}

bool password_needs_rehash(const char *hash)
{
	if (sodium_init() < 0)
		i_panic("sodium_init() failed");
	if (hash == NULL ||
	    strnlen(hash, PASSWORD_HASH_MAX) >= PASSWORD_HASH_MAX)
		return true;
	return crypto_pwhash_str_needs_rehash(
		       hash, crypto_pwhash_OPSLIMIT_INTERACTIVE,
		       crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0;
}

static void dummy_hash_init(void)
{
	char random_password[32];

	/* Printable, so it is a password password_hash() would accept. */
	randombytes_buf(random_password, sizeof(random_password));
	for (size_t i = 0; i < sizeof(random_password); i++)
		random_password[i] = (char)('a' + (random_password[i] & 0x0f));
	if (password_hash(random_password, sizeof(random_password),
			  dummy_hash) < 0)
		i_panic("password_dummy_hash: argon2id failed (out of memory)");
	sodium_memzero(random_password, sizeof(random_password));
}

const char *password_dummy_hash(void)
{
	if (sodium_init() < 0)
		i_panic("sodium_init() failed");
	pthread_once(&dummy_once, dummy_hash_init);
	return dummy_hash;
}

char *password_read_fd(int fd, const char **error_r)
{
	/* Room for PASSWORD_MAX_LEN + CR + LF, and a NUL. */
	const size_t max = PASSWORD_MAX_LEN + 2;
	char *buf = i_malloc(max + 1);
	size_t len = 0;

	/* One byte at a time: nothing after the first line is consumed,
	   so the caller can keep reading fd. */
	while (len < max) {
		ssize_t ret = read(fd, buf + len, 1);

		if (ret < 0) {
			if (errno == EINTR)
				continue;
			*error_r = "cannot read password";
			goto fail;
		}
		if (ret == 0)
			break;
		if (buf[len] == '\n')
			break;
		len++;
	}
	buf[len] = '\0';
	if (len > 0 && buf[len - 1] == '\r')
		buf[--len] = '\0';
	if (len > PASSWORD_MAX_LEN) {
		*error_r = "password is longer than 1024 bytes";
		goto fail;
	}
	if (len == 0) {
		*error_r = "empty password";
		goto fail;
	}
	if (memchr(buf, '\0', len) != NULL) {
		*error_r = "password contains a NUL byte";
		goto fail;
	}
	return buf;
fail:
	sodium_memzero(buf, max + 1);
	i_free(buf);
	return NULL;
}
