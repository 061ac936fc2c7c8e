/* blob.c - the immutable, encrypted message bodies of one account: one file
   per distinct body under DATA/accounts/<id>/blobs/<hh>/<hex-id>, in the
   format blob.h describes (zstd level 3, then XChaCha20-Poly1305 with the
   id and the raw length as associated data; ids are keyed BLAKE2b). Owns
   the two keys derived from the account's data key (wiped on close) and
   the files under blobs/. Called by the store (append, fetch, copy), the
   vault's spool merge, and the collector and `marmot store verify`
   (blob_foreach, blob_delete). Security stance: the disk is untrusted.
   Every size read from a file is bounded before anything is allocated, a
   blob is returned only after its tag verifies, its frame content size
   equals the authenticated raw length and its content hashes back to the
   id it was asked for; anything else is "damaged", never a crash. Writes
   are atomic (temporary file, fsync, rename without replacing, directory
   fsync), so a blob that blob_put() reported is durable and complete. */

#include "lib.h"
#include "fsutil.h"
#include "bytes.h"
#include "buf.h"
#include "blob.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define BLOB_MAGIC "MBL1"
#define BLOB_MAGIC_LEN 4
#define BLOB_NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define BLOB_TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define BLOB_HDR_LEN (BLOB_MAGIC_LEN + 8 + BLOB_NONCE_LEN)
#define BLOB_AD_LEN (BLOB_MAGIC_LEN + BLOB_ID_LEN + 8)
#define BLOB_ZSTD_LEVEL 3
/* The largest file blob_put() can write: zstd's worst case for the
   largest raw size, plus header and tag. */
#define BLOB_FILE_MAX \
	(BLOB_HDR_LEN + ZSTD_COMPRESSBOUND(BLOB_MAX_SIZE) + BLOB_TAG_LEN)
#define BLOB_TMP_PREFIX ".tmp-"
/* A temporary file this old is left over from a crash. */
#define BLOB_TMP_STALE_SECS 3600

_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == 32, "key");
_Static_assert(crypto_generichash_KEYBYTES_MAX >= 32, "blake2b key");

struct blob_store {
	char *dir; /* account_dir/blobs */
	uint8_t id_key[32];
	uint8_t enc_key[32];
};

static _Thread_local char blob_error[512];

static const char *blob_errorf(const char *fmt, ...) ATTR_FORMAT(1, 2);
static const char *blob_errorf(const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(blob_error, sizeof(blob_error), fmt, args);
	va_end(args);
	return blob_error;
}

/* Creates dir (0700) and makes its entry durable in parent. Returns 0 if
   it exists (as a directory) afterwards, -1 with errno. */
static int mkdir_durable(const char *dir, const char *parent)
{
	struct stat st;

	if (mkdir(dir, 0700) == 0)
		return fsync_dir(parent);
	if (errno != EEXIST)
		return -1;
	if (stat(dir, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

void blob_id_to_hex(const uint8_t id[BLOB_ID_LEN],
		    char hex_r[BLOB_ID_HEX_LEN + 1])
{
	(void)sodium_bin2hex(hex_r, BLOB_ID_HEX_LEN + 1, id, BLOB_ID_LEN);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Only the canonical lower-case form: file names are compared as strings. */
int blob_id_from_hex(const char *hex, uint8_t id_r[BLOB_ID_LEN])
{
	uint8_t id[BLOB_ID_LEN];

	for (unsigned int i = 0; i < BLOB_ID_LEN; i++) {
		int hi = hex_digit(hex[2 * i]);
		int lo = hi < 0 ? -1 : hex_digit(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		id[i] = (uint8_t)(hi << 4 | lo);
	}
	if (hex[BLOB_ID_HEX_LEN] != '\0')
		return -1;
	memcpy(id_r, id, BLOB_ID_LEN);
	return 0;
}

struct blob_store *blob_store_open(const char *account_dir,
				   const uint8_t data_key[32],
				   const char **error_r)
{
	static const char id_label[] = "marmot/blob-id/v1";
	static const char enc_label[] = "marmot/blob-enc/v1";
	struct blob_store *bs;

	if (sodium_init() < 0)
		i_panic("sodium_init() failed");
	bs = i_new(struct blob_store, 1);
	bs->dir = i_strdup_printf("%s/blobs", account_dir);
	if (mkdir_durable(bs->dir, account_dir) < 0) {
		*error_r = blob_errorf("cannot create %s: %s", bs->dir,
				       strerror(errno));
		blob_store_close(&bs);
		return NULL;
	}
	(void)crypto_generichash(bs->id_key, sizeof(bs->id_key),
				 (const uint8_t *)id_label,
				 sizeof(id_label) - 1, data_key, 32);
	(void)crypto_generichash(bs->enc_key, sizeof(bs->enc_key),
				 (const uint8_t *)enc_label,
				 sizeof(enc_label) - 1, data_key, 32);
	return bs;
}

void blob_store_close(struct blob_store **_bs)
{
	struct blob_store *bs = *_bs;

	*_bs = NULL;
	if (bs == NULL)
		return;
	sodium_memzero(bs->id_key, sizeof(bs->id_key));
	sodium_memzero(bs->enc_key, sizeof(bs->enc_key));
	i_free(bs->dir);
	i_free(bs);
}

void blob_id_compute(struct blob_store *bs, const void *data, size_t len,
		     uint8_t id_r[BLOB_ID_LEN])
{
	(void)crypto_generichash(id_r, BLOB_ID_LEN, data, len, bs->id_key,
				 sizeof(bs->id_key));
}

/* blobs/<hh> and blobs/<hh>/<hex>; caller frees both. */
static void blob_paths(struct blob_store *bs, const uint8_t id[BLOB_ID_LEN],
		       char **subdir_r, char **path_r)
{
	char hex[BLOB_ID_HEX_LEN + 1];

	blob_id_to_hex(id, hex);
	*subdir_r = i_strdup_printf("%s/%.2s", bs->dir, hex);
	*path_r = i_strdup_printf("%s/%s", *subdir_r, hex);
}

static void blob_ad(uint8_t ad[BLOB_AD_LEN], const uint8_t id[BLOB_ID_LEN],
		    uint64_t raw_len)
{
	memcpy(ad, BLOB_MAGIC, BLOB_MAGIC_LEN);
	memcpy(ad + BLOB_MAGIC_LEN, id, BLOB_ID_LEN);
	le64_put(ad + BLOB_MAGIC_LEN + BLOB_ID_LEN, raw_len);
}

/* Builds the whole file image in memory: header, then zstd output sealed
   in place. */
static int blob_seal(struct blob_store *bs, const uint8_t id[BLOB_ID_LEN],
		     const void *data, size_t len, uint8_t **file_r,
		     size_t *file_len_r, const char **error_r)
{
	size_t bound = ZSTD_compressBound(len);
	uint8_t ad[BLOB_AD_LEN];
	uint8_t *file;
	size_t clen;
	unsigned long long sealed_len;

	if (ZSTD_isError(bound) || bound == 0 ||
	    bound > ZSTD_COMPRESSBOUND(BLOB_MAX_SIZE)) {
		*error_r = blob_errorf("blob of %zu bytes: no compression "
				       "bound",
				       len);
		return -1;
	}
	file = i_malloc(BLOB_HDR_LEN + bound + BLOB_TAG_LEN);
	memcpy(file, BLOB_MAGIC, BLOB_MAGIC_LEN);
	le64_put(file + BLOB_MAGIC_LEN, len);
	randombytes_buf(file + BLOB_MAGIC_LEN + 8, BLOB_NONCE_LEN);
	clen = ZSTD_compress(file + BLOB_HDR_LEN, bound, data, len,
			     BLOB_ZSTD_LEVEL);
	if (ZSTD_isError(clen)) {
		*error_r = blob_errorf("zstd: %s", ZSTD_getErrorName(clen));
		sodium_memzero(file, BLOB_HDR_LEN + bound);
		i_free(file);
		return -1;
	}
	blob_ad(ad, id, len);
	/* libsodium allows the ciphertext to overwrite the message. */
	(void)crypto_aead_xchacha20poly1305_ietf_encrypt(
		file + BLOB_HDR_LEN, &sealed_len, file + BLOB_HDR_LEN, clen, ad,
		sizeof(ad), NULL, file + BLOB_MAGIC_LEN + 8, bs->enc_key);
	i_assert(sealed_len == clen + BLOB_TAG_LEN);
	*file_r = file;
	*file_len_r = BLOB_HDR_LEN + clen + BLOB_TAG_LEN;
	return 0;
}

/* Writes the image to a fresh temporary file in subdir and moves it to
   path without replacing anything there. Returns 1 if written, 0 if path
   appeared meanwhile (a concurrent writer of the same content), -1. */
static int blob_write_file(const char *subdir, const char *path,
			   const uint8_t *file, size_t file_len,
			   const char **error_r)
{
	uint8_t rnd[8];
	char rnd_hex[sizeof(rnd) * 2 + 1];
	char *tmp;
	int fd, ret;

	randombytes_buf(rnd, sizeof(rnd));
	(void)sodium_bin2hex(rnd_hex, sizeof(rnd_hex), rnd, sizeof(rnd));
	tmp = i_strdup_printf("%s/" BLOB_TMP_PREFIX "%s", subdir, rnd_hex);
	fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0) {
		*error_r = blob_errorf("cannot create %s: %s", tmp,
				       strerror(errno));
		i_free(tmp);
		return -1;
	}
	if (write_full(fd, file, file_len) < 0 || fsync(fd) < 0) {
		*error_r = blob_errorf("cannot write %s: %s", tmp,
				       strerror(errno));
		(void)close(fd);
		(void)unlink(tmp);
		i_free(tmp);
		return -1;
	}
	if (close(fd) < 0) {
		*error_r = blob_errorf("cannot write %s: %s", tmp,
				       strerror(errno));
		(void)unlink(tmp);
		i_free(tmp);
		return -1;
	}
	/* Blobs are immutable (snapshots hard-link them): never replace. */
	ret = renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE);
	if (ret < 0 && errno == EINVAL) {
		/* The file system cannot refuse to replace; link(2) can. */
		ret = link(tmp, path);
		if (ret == 0 || errno == EEXIST)
			(void)unlink(tmp);
	}
	if (ret < 0) {
		int saved = errno;

		(void)unlink(tmp);
		i_free(tmp);
		if (saved == EEXIST)
			return 0;
		*error_r = blob_errorf("cannot rename %s: %s", path,
				       strerror(saved));
		return -1;
	}
	i_free(tmp);
	if (fsync_dir(subdir) < 0) {
		*error_r = blob_errorf("cannot fsync %s: %s", subdir,
				       strerror(errno));
		return -1;
	}
	return 1;
}

/* The dedup path of blob_put: an existing blob gets a fresh mtime, so the
   collector's age guard (blob_collect) protects it until the caller's
   commit references it again. Returns 1 (exists, touched; st_r filled),
   0 (absent: write it), -1. */
static int blob_touch(const char *path, struct stat *st_r, const char **error_r)
{
	if (lstat(path, st_r) < 0 || !S_ISREG(st_r->st_mode))
		return 0;
	if (utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0; /* collected meanwhile: write it anew */
		*error_r = blob_errorf("cannot touch %s: %s", path,
				       strerror(errno));
		return -1;
	}
	return 1;
}

int blob_put(struct blob_store *bs, const void *data, size_t len,
	     uint8_t id_r[BLOB_ID_LEN], uint64_t *file_size_r,
	     const char **error_r)
{
	char *subdir, *path;
	uint8_t *file;
	size_t file_len;
	struct stat st;
	int ret;

	if (len > BLOB_MAX_SIZE) {
		*error_r = blob_errorf("blob of %zu bytes is larger than the "
				       "limit (%u)",
				       len, BLOB_MAX_SIZE);
		return -1;
	}
	blob_id_compute(bs, data, len, id_r);
	blob_paths(bs, id_r, &subdir, &path);
	if ((ret = blob_touch(path, &st, error_r)) > 0) {
		if (file_size_r != NULL)
			*file_size_r = (uint64_t)st.st_size;
		ret = 0;
	} else if (ret < 0) {
		/* error_r is set */
	} else if (mkdir_durable(subdir, bs->dir) < 0) {
		*error_r = blob_errorf("cannot create %s: %s", subdir,
				       strerror(errno));
		ret = -1;
	} else if (blob_seal(bs, id_r, data, len, &file, &file_len, error_r) <
		   0) {
		ret = -1;
	} else {
		ret = blob_write_file(subdir, path, file, file_len, error_r);
		i_free(file);
		if (ret == 0 && stat(path, &st) == 0)
			file_len = (size_t)st.st_size;
		if (ret >= 0 && file_size_r != NULL)
			*file_size_r = file_len;
	}
	i_free(subdir);
	i_free(path);
	return ret;
}

/* Reads the whole file at path into a new buffer, bounded. Returns 0, or
   -1 with errno (EFBIG / EBADMSG for a size no blob can have). */
static int read_bounded(const char *path, uint8_t **data_r, size_t *len_r)
{
	struct stat st;
	uint8_t *data;
	size_t len, pos = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		int saved = errno;

		(void)close(fd);
		errno = saved;
		return -1;
	}
	if (!S_ISREG(st.st_mode) ||
	    st.st_size < (off_t)(BLOB_HDR_LEN + BLOB_TAG_LEN) ||
	    (uint64_t)st.st_size > BLOB_FILE_MAX) {
		(void)close(fd);
		errno = EBADMSG;
		return -1;
	}
	len = (size_t)st.st_size;
	data = i_malloc(len);
	while (pos < len) {
		ssize_t ret = read(fd, data + pos, len - pos);

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0) {
			int saved = ret == 0 ? EBADMSG : errno;

			(void)close(fd);
			i_free(data);
			errno = saved;
			return -1;
		}
		pos += (size_t)ret;
	}
	(void)close(fd);
	*data_r = data;
	*len_r = len;
	return 0;
}

/* Opens the file image in place and decompresses it into out. Returns 0 or
   -1 (damaged); out is unchanged on failure. */
static int blob_open_image(struct blob_store *bs, const uint8_t id[BLOB_ID_LEN],
			   uint8_t *file, size_t file_len, struct buf *out)
{
	uint8_t ad[BLOB_AD_LEN], check[BLOB_ID_LEN];
	unsigned long long clen;
	unsigned long long fcs;
	uint64_t raw_len;
	size_t old_used = out->used, dlen;
	uint8_t *dest;

	if (memcmp(file, BLOB_MAGIC, BLOB_MAGIC_LEN) != 0)
		return -1;
	raw_len = le64_get(file + BLOB_MAGIC_LEN);
	if (raw_len > BLOB_MAX_SIZE)
		return -1;
	blob_ad(ad, id, raw_len);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		    file + BLOB_HDR_LEN, &clen, NULL, file + BLOB_HDR_LEN,
		    file_len - BLOB_HDR_LEN, ad, sizeof(ad),
		    file + BLOB_MAGIC_LEN + 8, bs->enc_key) != 0)
		return -1;
	/* Authenticated from here on, but still bounded: the frame must
	   announce exactly the raw length and be exactly one frame. */
	fcs = ZSTD_getFrameContentSize(file + BLOB_HDR_LEN, clen);
	if (fcs != raw_len ||
	    ZSTD_findFrameCompressedSize(file + BLOB_HDR_LEN, clen) != clen)
		return -1;
	dest = buf_reserve(out, (size_t)raw_len + 1);
	dlen = ZSTD_decompress(dest, (size_t)raw_len, file + BLOB_HDR_LEN,
			       clen);
	if (ZSTD_isError(dlen) || dlen != raw_len) {
		sodium_memzero(dest, (size_t)raw_len);
		return -1;
	}
	blob_id_compute(bs, dest, dlen, check);
	if (!mem_equals_ct(check, id, BLOB_ID_LEN)) {
		sodium_memzero(dest, dlen);
		return -1;
	}
	buf_commit(out, dlen);
	i_assert(out->used == old_used + dlen);
	return 0;
}

int blob_get(struct blob_store *bs, const uint8_t id[BLOB_ID_LEN],
	     struct buf *out, const char **error_r)
{
	char hex[BLOB_ID_HEX_LEN + 1];
	char *subdir, *path;
	uint8_t *file;
	size_t file_len;
	int ret;

	blob_id_to_hex(id, hex);
	blob_paths(bs, id, &subdir, &path);
	ret = read_bounded(path, &file, &file_len);
	i_free(subdir);
	i_free(path);
	if (ret < 0) {
		if (errno == ENOENT)
			*error_r = blob_errorf("blob %s is missing", hex);
		else if (errno == EBADMSG || errno == ELOOP)
			*error_r = blob_errorf("blob %s is damaged", hex);
		else
			*error_r = blob_errorf("cannot read blob %s: %s", hex,
					       strerror(errno));
		return -1;
	}
	ret = blob_open_image(bs, id, file, file_len, out);
	/* The compressed plaintext is still in there. */
	sodium_memzero(file, file_len);
	i_free(file);
	if (ret < 0) {
		*error_r = blob_errorf("blob %s is damaged", hex);
		return -1;
	}
	return 0;
}

bool blob_exists(struct blob_store *bs, const uint8_t id[BLOB_ID_LEN])
{
	char *subdir, *path;
	struct stat st;
	bool ret;

	blob_paths(bs, id, &subdir, &path);
	ret = lstat(path, &st) == 0 && S_ISREG(st.st_mode);
	i_free(subdir);
	i_free(path);
	return ret;
}

/* Not fsynced: a deletion lost in a crash leaves an unreferenced blob,
   which the collector removes again on its next pass. */
int blob_delete(struct blob_store *bs, const uint8_t id[BLOB_ID_LEN],
		const char **error_r)
{
	char *subdir, *path;
	int ret = 0;

	blob_paths(bs, id, &subdir, &path);
	if (unlink(path) < 0 && errno != ENOENT) {
		*error_r = blob_errorf("cannot delete %s: %s", path,
				       strerror(errno));
		ret = -1;
	}
	i_free(subdir);
	i_free(path);
	return ret;
}

int blob_stat(struct blob_store *bs, const uint8_t id[BLOB_ID_LEN],
	      uint64_t *file_size_r, time_t *mtime_r, const char **error_r)
{
	char *subdir, *path;
	struct stat st;
	int ret = 1;

	blob_paths(bs, id, &subdir, &path);
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT) {
			ret = 0;
		} else {
			*error_r = blob_errorf("cannot stat %s: %s", path,
					       strerror(errno));
			ret = -1;
		}
	} else if (!S_ISREG(st.st_mode)) {
		ret = 0;
	} else {
		*file_size_r = (uint64_t)st.st_size;
		*mtime_r = st.st_mtime;
	}
	i_free(subdir);
	i_free(path);
	return ret;
}

/* Puts a blob that was moved aside back under its name, unless a writer
   has meanwhile written it anew (same id, same content). */
static int blob_restore(const char *tmp, const char *path, const char **error_r)
{
	int ret = 0;

	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EINVAL) {
		/* The file system cannot refuse to replace; link(2) can. */
		if (link(tmp, path) < 0 && errno != EEXIST) {
			*error_r = blob_errorf("cannot restore %s: %s", path,
					       strerror(errno));
			ret = -1;
		}
	} else if (errno != EEXIST) {
		*error_r = blob_errorf("cannot restore %s: %s", path,
				       strerror(errno));
		return -1;
	}
	if (ret == 0)
		(void)unlink(tmp);
	return ret;
}

/* The blob is first renamed to a temporary name, which no blob_put can
   touch; its mtime is checked there. A blob_put that touched the file
   before the rename is seen (young: put back); one that comes after it
   finds no file and writes a new one. So a blob is never removed under a
   writer whose blob_put returned less than older_than ago. */
int blob_collect(struct blob_store *bs, const uint8_t id[BLOB_ID_LEN],
		 time_t older_than, uint64_t *file_size_r, const char **error_r)
{
	uint8_t rnd[8];
	char rnd_hex[sizeof(rnd) * 2 + 1];
	char *subdir, *path, *tmp;
	struct stat st;
	int ret = 0;

	*file_size_r = 0;
	blob_paths(bs, id, &subdir, &path);
	randombytes_buf(rnd, sizeof(rnd));
	(void)sodium_bin2hex(rnd_hex, sizeof(rnd_hex), rnd, sizeof(rnd));
	/* A crash from here on leaves a .tmp- file: blob_foreach removes it
	   an hour after its (old) mtime. */
	tmp = i_strdup_printf("%s/" BLOB_TMP_PREFIX "gc-%s", subdir, rnd_hex);
	if (rename(path, tmp) < 0) {
		if (errno != ENOENT) {
			*error_r = blob_errorf("cannot move %s: %s", path,
					       strerror(errno));
			ret = -1;
		}
	} else if (lstat(tmp, &st) < 0) {
		const char *ignored;

		*error_r =
			blob_errorf("cannot stat %s: %s", tmp, strerror(errno));
		(void)blob_restore(tmp, path, &ignored);
		ret = -1;
	} else if (!S_ISREG(st.st_mode) || st.st_mtime >= older_than) {
		ret = blob_restore(tmp, path, error_r);
	} else if (unlink(tmp) < 0 && errno != ENOENT) {
		/* ENOENT: another process's blob_foreach took the old
		   temporary file first; it is gone all the same. */
		const char *ignored;

		*error_r = blob_errorf("cannot delete %s: %s", tmp,
				       strerror(errno));
		(void)blob_restore(tmp, path, &ignored);
		ret = -1;
	} else {
		*file_size_r = (uint64_t)st.st_size;
		ret = 1;
	}
	i_free(tmp);
	i_free(subdir);
	i_free(path);
	return ret;
}

static bool is_hex_subdir(const char *name)
{
	return hex_digit(name[0]) >= 0 && hex_digit(name[1]) >= 0 &&
	       name[2] == '\0';
}

static int blob_foreach_subdir(int dfd, const char *hh, time_t now,
			       int (*cb)(const uint8_t id[BLOB_ID_LEN],
					 uint64_t file_size, void *context),
			       void *context, const char **error_r)
{
	struct dirent *d;
	struct stat st;
	uint8_t id[BLOB_ID_LEN];
	DIR *dir;
	int fd, ret = 0;

	fd = openat(dfd, hh, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		*error_r = blob_errorf("cannot open blobs/%s: %s", hh,
				       strerror(errno));
		if (fd >= 0)
			(void)close(fd);
		return -1;
	}
	while (ret == 0 && (errno = 0, d = readdir(dir)) != NULL) {
		if (strncmp(d->d_name, BLOB_TMP_PREFIX,
			    strlen(BLOB_TMP_PREFIX)) == 0) {
			if (fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
				    0 &&
			    st.st_mtime + BLOB_TMP_STALE_SECS < now)
				(void)unlinkat(fd, d->d_name, 0);
			continue;
		}
		if (blob_id_from_hex(d->d_name, id) < 0 ||
		    strncmp(d->d_name, hh, 2) != 0)
			continue;
		if (fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue; /* deleted meanwhile */
			*error_r = blob_errorf("cannot stat blobs/%s/%s: %s",
					       hh, d->d_name, strerror(errno));
			ret = -1;
		} else if (S_ISREG(st.st_mode) &&
			   cb(id, (uint64_t)st.st_size, context) < 0) {
			*error_r = blob_errorf("blob iteration stopped by "
					       "the caller");
			ret = -1;
		}
	}
	if (ret == 0 && errno != 0) {
		*error_r = blob_errorf("cannot read blobs/%s: %s", hh,
				       strerror(errno));
		ret = -1;
	}
	(void)closedir(dir);
	return ret;
}

int blob_foreach(struct blob_store *bs,
		 int (*cb)(const uint8_t id[BLOB_ID_LEN], uint64_t file_size,
			   void *context),
		 void *context, const char **error_r)
{
	time_t now = time(NULL);
	struct dirent *d;
	DIR *dir;
	int ret = 0;

	dir = opendir(bs->dir);
	if (dir == NULL) {
		*error_r = blob_errorf("cannot open %s: %s", bs->dir,
				       strerror(errno));
		return -1;
	}
	while (ret == 0 && (errno = 0, d = readdir(dir)) != NULL) {
		if (!is_hex_subdir(d->d_name))
			continue;
		ret = blob_foreach_subdir(dirfd(dir), d->d_name, now, cb,
					  context, error_r);
	}
	if (ret == 0 && errno != 0) {
		*error_r = blob_errorf("cannot read %s: %s", bs->dir,
				       strerror(errno));
		ret = -1;
	}
	(void)closedir(dir);
	return ret;
}
