/* account-keys.c - the account key hierarchy of ARCHITECTURE.md 3: the
   master key file, per-account X25519 key pairs and data keys, and their
   wrapping under a key derived from the master key (managed accounts) or
   from the user's password (zero-access accounts). Owns no state; keys
   live in the caller's struct account_keys and are wiped by
   account_keys_clear(). Called by the directory (account creation), the
   vault (unwrapping at login and delivery) and the admin CLI (init).
   Errors point to thread-local storage valid until the next call of this
   module in the same thread. */

#include "lib.h"
#include "bytes.h"
#include "account-keys.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define WRAP_MAGIC "MKW1"
#define WRAP_MAGIC_LEN 4
#define WRAP_KDF_LABEL "marmot/account-wrap/v1"
#define WRAP_PLAIN_LEN (ACCOUNT_SECRET_KEY_LEN + ACCOUNT_DATA_KEY_LEN)
#define WRAP_AD_LEN (WRAP_MAGIC_LEN + 8 + ACCOUNT_PUBLIC_KEY_LEN)
#define PWRAP_MAGIC "MKZ1"
#define PWRAP_SALT_LEN crypto_pwhash_SALTBYTES
#define PWRAP_OPSLIMIT crypto_pwhash_OPSLIMIT_INTERACTIVE
#define PWRAP_MEMLIMIT crypto_pwhash_MEMLIMIT_INTERACTIVE

_Static_assert(ACCOUNT_WRAPPED_LEN ==
		       WRAP_MAGIC_LEN +
			       crypto_aead_xchacha20poly1305_ietf_NPUBBYTES +
			       WRAP_PLAIN_LEN +
			       crypto_aead_xchacha20poly1305_ietf_ABYTES,
	       "wrapped layout");
_Static_assert(ACCOUNT_PASSWORD_WRAPPED_LEN ==
		       WRAP_MAGIC_LEN + PWRAP_SALT_LEN +
			       crypto_aead_xchacha20poly1305_ietf_NPUBBYTES +
			       WRAP_PLAIN_LEN +
			       crypto_aead_xchacha20poly1305_ietf_ABYTES,
	       "password-wrapped layout");
_Static_assert(ACCOUNT_PUBLIC_KEY_LEN == crypto_box_PUBLICKEYBYTES &&
		       ACCOUNT_SECRET_KEY_LEN == crypto_box_SECRETKEYBYTES,
	       "X25519 key sizes");
_Static_assert(MASTER_KEY_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
	       "master key size");

static _Thread_local char key_error[512];

static const char *key_errorf(const char *fmt, ...) ATTR_FORMAT(1, 2);
static const char *key_errorf(const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(key_error, sizeof(key_error), fmt, args);
	va_end(args);
	return key_error;
}

static void sodium_init_or_panic(void)
{
	if (sodium_init() < 0)
		i_panic("sodium_init() failed");
}

int master_key_create(const char *path, const char **error_r)
{
	uint8_t key[MASTER_KEY_LEN];
	int fd, saved_errno;

	sodium_init_or_panic();
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0) {
		*error_r = key_errorf("cannot create %s: %s", path,
				      strerror(errno));
		return -1;
	}
	randombytes_buf(key, sizeof(key));
	if (write_full(fd, key, sizeof(key)) < 0 || fsync(fd) < 0) {
		saved_errno = errno;
		sodium_memzero(key, sizeof(key));
		close(fd);
		unlink(path);
		*error_r = key_errorf("cannot write %s: %s", path,
				      strerror(saved_errno));
		return -1;
	}
	sodium_memzero(key, sizeof(key));
	if (close(fd) < 0) {
		saved_errno = errno;
		unlink(path);
		*error_r = key_errorf("cannot write %s: %s", path,
				      strerror(saved_errno));
		return -1;
	}
	/* The new directory entry must survive a crash too. */
	if (fsync_parent_dir(path) < 0) {
		*error_r = key_errorf("cannot fsync the directory of %s: %s",
				      path, strerror(errno));
		return -1;
	}
	return 0;
}

int master_key_load(const char *path, uint8_t key_r[MASTER_KEY_LEN],
		    const char **error_r)
{
	uint8_t buf[MASTER_KEY_LEN + 1];
	size_t len = 0;
	struct stat st;
	int fd;

	sodium_init_or_panic();
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*error_r =
			key_errorf("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		*error_r =
			key_errorf("cannot stat %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		*error_r = key_errorf("%s is not a regular file", path);
		close(fd);
		return -1;
	}
	if ((st.st_mode & 077) != 0) {
		*error_r = key_errorf("%s is accessible by group or others "
				      "(mode %04o); run: chmod 600 %s",
				      path, (unsigned int)(st.st_mode & 07777),
				      path);
		close(fd);
		return -1;
	}
	/* Read one byte more than a key to tell "too long" from "exact". */
	while (len < sizeof(buf)) {
		ssize_t ret = read(fd, buf + len, sizeof(buf) - len);

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0) {
			*error_r = key_errorf("cannot read %s: %s", path,
					      strerror(errno));
			sodium_memzero(buf, sizeof(buf));
			close(fd);
			return -1;
		}
		if (ret == 0)
			break;
		len += (size_t)ret;
	}
	close(fd);
	if (len != MASTER_KEY_LEN) {
		sodium_memzero(buf, sizeof(buf));
		*error_r = key_errorf("%s is not a master key: it must be "
				      "exactly %d bytes%s",
				      path, MASTER_KEY_LEN,
				      len > MASTER_KEY_LEN ? " (it is longer)"
							   : "");
		return -1;
	}
	memcpy(key_r, buf, MASTER_KEY_LEN);
	sodium_memzero(buf, sizeof(buf));
	return 0;
}

void account_keys_generate(struct account_keys *keys_r)
{
	sodium_init_or_panic();
	crypto_box_keypair(keys_r->public_key, keys_r->secret_key);
	randombytes_buf(keys_r->data_key, sizeof(keys_r->data_key));
}

/* kek = BLAKE2b-256(key = master key, msg = label || u64le(id)) */
static void wrap_kek(const uint8_t master_key[MASTER_KEY_LEN],
		     uint64_t account_id,
		     uint8_t kek_r[crypto_aead_xchacha20poly1305_ietf_KEYBYTES])
{
	uint8_t msg[sizeof(WRAP_KDF_LABEL) - 1 + 8];

	memcpy(msg, WRAP_KDF_LABEL, sizeof(WRAP_KDF_LABEL) - 1);
	le64_put(msg + sizeof(WRAP_KDF_LABEL) - 1, account_id);
	crypto_generichash(kek_r, crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
			   msg, sizeof(msg), master_key, MASTER_KEY_LEN);
}

/* ad = magic || u64le(id) || pk */
static void wrap_ad(const char *magic, uint64_t account_id,
		    const uint8_t public_key[ACCOUNT_PUBLIC_KEY_LEN],
		    uint8_t ad_r[WRAP_AD_LEN])
{
	memcpy(ad_r, magic, WRAP_MAGIC_LEN);
	le64_put(ad_r + WRAP_MAGIC_LEN, account_id);
	memcpy(ad_r + WRAP_MAGIC_LEN + 8, public_key, ACCOUNT_PUBLIC_KEY_LEN);
}

void account_keys_wrap(const uint8_t master_key[MASTER_KEY_LEN],
		       uint64_t account_id, const struct account_keys *keys,
		       uint8_t wrapped_r[ACCOUNT_WRAPPED_LEN])
{
	uint8_t kek[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	uint8_t plain[WRAP_PLAIN_LEN];
	uint8_t ad[WRAP_AD_LEN];
	uint8_t *nonce = wrapped_r + WRAP_MAGIC_LEN;
	uint8_t *cipher = nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
	unsigned long long cipher_len;

	sodium_init_or_panic();
	wrap_kek(master_key, account_id, kek);
	wrap_ad(WRAP_MAGIC, account_id, keys->public_key, ad);
	memcpy(plain, keys->secret_key, ACCOUNT_SECRET_KEY_LEN);
	memcpy(plain + ACCOUNT_SECRET_KEY_LEN, keys->data_key,
	       ACCOUNT_DATA_KEY_LEN);

	memcpy(wrapped_r, WRAP_MAGIC, WRAP_MAGIC_LEN);
	randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
		cipher, &cipher_len, plain, sizeof(plain), ad, sizeof(ad), NULL,
		nonce, kek);
	i_assert(cipher_len ==
		 WRAP_PLAIN_LEN + crypto_aead_xchacha20poly1305_ietf_ABYTES);
	sodium_memzero(plain, sizeof(plain));
	sodium_memzero(kek, sizeof(kek));
}

/* Opens sk || data key sealed under kek with ad, and fills keys_r (the
   public key taken as given). The caller wipes kek. Returns 0 or -1. */
static int wrap_open(const uint8_t *kek, const uint8_t *ad, size_t ad_len,
		     const uint8_t *nonce, const uint8_t *cipher,
		     const uint8_t public_key[ACCOUNT_PUBLIC_KEY_LEN],
		     struct account_keys *keys_r)
{
	uint8_t plain[WRAP_PLAIN_LEN];
	unsigned long long plain_len;

	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		    plain, &plain_len, NULL, cipher,
		    WRAP_PLAIN_LEN + crypto_aead_xchacha20poly1305_ietf_ABYTES,
		    ad, ad_len, nonce, kek) != 0 ||
	    plain_len != WRAP_PLAIN_LEN) {
		sodium_memzero(plain, sizeof(plain));
		return -1;
	}
	memcpy(keys_r->public_key, public_key, ACCOUNT_PUBLIC_KEY_LEN);
	memcpy(keys_r->secret_key, plain, ACCOUNT_SECRET_KEY_LEN);
	memcpy(keys_r->data_key, plain + ACCOUNT_SECRET_KEY_LEN,
	       ACCOUNT_DATA_KEY_LEN);
	sodium_memzero(plain, sizeof(plain));
	return 0;
}

int account_keys_unwrap(const uint8_t master_key[MASTER_KEY_LEN],
			uint64_t account_id,
			const uint8_t public_key[ACCOUNT_PUBLIC_KEY_LEN],
			const uint8_t *wrapped, size_t wrapped_len,
			struct account_keys *keys_r)
{
	uint8_t kek[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	uint8_t ad[WRAP_AD_LEN];
	const uint8_t *nonce, *cipher;
	int ret;

	sodium_init_or_panic();
	if (wrapped_len != ACCOUNT_WRAPPED_LEN ||
	    memcmp(wrapped, WRAP_MAGIC, WRAP_MAGIC_LEN) != 0)
		return -1;
	nonce = wrapped + WRAP_MAGIC_LEN;
	cipher = nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
	wrap_kek(master_key, account_id, kek);
	wrap_ad(WRAP_MAGIC, account_id, public_key, ad);
	ret = wrap_open(kek, ad, sizeof(ad), nonce, cipher, public_key, keys_r);
	sodium_memzero(kek, sizeof(kek));
	return ret;
}

/* kek = Argon2id(password, salt), INTERACTIVE cost (see the header). */
static int pwrap_kek(const char *password, size_t password_len,
		     const uint8_t salt[PWRAP_SALT_LEN],
		     uint8_t kek_r[crypto_aead_xchacha20poly1305_ietf_KEYBYTES])
{
	return crypto_pwhash(kek_r, crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
			     password, password_len, salt, PWRAP_OPSLIMIT,
			     PWRAP_MEMLIMIT, crypto_pwhash_ALG_ARGON2ID13);
}

int account_keys_wrap_password(const char *password, size_t password_len,
			       uint64_t account_id,
			       const struct account_keys *keys,
			       uint8_t wrapped_r[ACCOUNT_PASSWORD_WRAPPED_LEN])
{
	uint8_t kek[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	uint8_t plain[WRAP_PLAIN_LEN];
	uint8_t ad[WRAP_AD_LEN];
	uint8_t *salt = wrapped_r + WRAP_MAGIC_LEN;
	uint8_t *nonce = salt + PWRAP_SALT_LEN;
	uint8_t *cipher = nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
	unsigned long long cipher_len;

	sodium_init_or_panic();
	memcpy(wrapped_r, PWRAP_MAGIC, WRAP_MAGIC_LEN);
	randombytes_buf(salt, PWRAP_SALT_LEN);
	randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	if (pwrap_kek(password, password_len, salt, kek) != 0) {
		sodium_memzero(kek, sizeof(kek));
		return -1;
	}
	wrap_ad(PWRAP_MAGIC, account_id, keys->public_key, ad);
	memcpy(plain, keys->secret_key, ACCOUNT_SECRET_KEY_LEN);
	memcpy(plain + ACCOUNT_SECRET_KEY_LEN, keys->data_key,
	       ACCOUNT_DATA_KEY_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
		cipher, &cipher_len, plain, sizeof(plain), ad, sizeof(ad), NULL,
		nonce, kek);
	i_assert(cipher_len ==
		 WRAP_PLAIN_LEN + crypto_aead_xchacha20poly1305_ietf_ABYTES);
	sodium_memzero(plain, sizeof(plain));
	sodium_memzero(kek, sizeof(kek));
	return 0;
}

int account_keys_unwrap_password(
	const char *password, size_t password_len, uint64_t account_id,
	const uint8_t public_key[ACCOUNT_PUBLIC_KEY_LEN],
	const uint8_t *wrapped, size_t wrapped_len, struct account_keys *keys_r)
{
	uint8_t kek[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	uint8_t ad[WRAP_AD_LEN];
	const uint8_t *salt, *nonce, *cipher;
	int ret;

	sodium_init_or_panic();
	/* Checked before the expensive derivation. */
	if (wrapped_len != ACCOUNT_PASSWORD_WRAPPED_LEN ||
	    memcmp(wrapped, PWRAP_MAGIC, WRAP_MAGIC_LEN) != 0)
		return -1;
	salt = wrapped + WRAP_MAGIC_LEN;
	nonce = salt + PWRAP_SALT_LEN;
	cipher = nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
	if (pwrap_kek(password, password_len, salt, kek) != 0) {
		sodium_memzero(kek, sizeof(kek));
		return -1;
	}
	wrap_ad(PWRAP_MAGIC, account_id, public_key, ad);
	ret = wrap_open(kek, ad, sizeof(ad), nonce, cipher, public_key, keys_r);
	sodium_memzero(kek, sizeof(kek));
	return ret;
}

void account_keys_clear(struct account_keys *keys)
{
	sodium_memzero(keys->secret_key, sizeof(keys->secret_key));
	sodium_memzero(keys->data_key, sizeof(keys->data_key));
}
