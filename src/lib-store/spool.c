/* spool.c - the sealed inbound spool of one account, in the format
   spool.h describes: records sealed to the account's public key
   (crypto_box_seal) and appended to DATA/accounts/<id>/spool under an
   exclusive flock(2), fsynced before spool_append() returns; spool_take()
   hands the file to the vault's merge, and spool_reader opens the records
   with the secret key. Owns the files spool, spool.merging and the short-
   lived spool.tmp-* used to create a spool. Called by the delivery path
   (front SMTP sessions, `marmot deliver`: append only, public key only)
   and by the vault (take, read, done). Security stance: writers hold no
   secret and can read nothing back; the reader treats the file as
   untrusted: every length is bounded before allocating, and since anyone
   with the public key can seal a record, an opened record is parsed with
   the same care as a damaged one. Durability: a new spool only becomes
   visible under a name while its creator holds the lock, and its
   directory entry is fsynced before any record in it is acknowledged. A
   record torn by a crash at the end of the file is ignored; one torn in
   the middle (a writer killed, then more appends) or tampered with is
   skipped and counted, and reading resynchronises on the next record. */

#include "lib.h"
#include "fsutil.h"
#include "bytes.h"
#include "pool.h"
#include "span.h"
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SPOOL_MAGIC "MSR1"
#define SPOOL_MAGIC_LEN 4
#define SPOOL_FRAME_HDR_LEN (SPOOL_MAGIC_LEN + 4)
/* Largest sealed part: the message plus room for the header fields. */
#define SPOOL_SEALED_MAX (SPOOL_MAX_MESSAGE + 4096)
/* Plaintext bytes besides the three strings and the message. */
#define SPOOL_PLAIN_FIXED (SPOOL_RECORD_ID_LEN + 8 + 4 + 4 * 3 + 8)
#define SPOOL_SEALED_MIN (crypto_box_SEALBYTES + SPOOL_PLAIN_FIXED)
#define SPOOL_TMP_PREFIX "spool.tmp-"
#define SPOOL_TMP_STALE_SECS 3600
#define SPOOL_SCAN_CHUNK 65536

_Static_assert(crypto_box_PUBLICKEYBYTES == 32, "public key");
_Static_assert(crypto_box_SECRETKEYBYTES == 32, "secret key");
_Static_assert(SPOOL_SEALED_MAX <= UINT32_MAX, "u32 frame length");
_Static_assert(SPOOL_SEALED_MIN + SPOOL_MAX_ENVELOPE + SPOOL_MAX_MESSAGE <=
		       SPOOL_SEALED_MAX,
	       "the largest record fits the reader's bound");

struct spool_reader {
	char *path;
	int fd;
	uint64_t size; /* at open: the taken file no longer grows */
	uint64_t pos; /* start of the next frame */
	unsigned int damaged;
	uint8_t public_key[32];
	uint8_t secret_key[32];
	uint8_t *sealed; /* one frame's sealed part */
	size_t sealed_alloc;
	uint8_t *plain; /* the opened record, message included */
	size_t plain_alloc, plain_used;
	char *strs; /* NUL-terminated copies of the three strings */
	size_t strs_alloc, strs_used;
};

static _Thread_local char spool_error[512];

static const char *spool_errorf(const char *fmt, ...) ATTR_FORMAT(1, 2);
static const char *spool_errorf(const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(spool_error, sizeof(spool_error), fmt, args);
	va_end(args);
	return spool_error;
}

/* Reads exactly len bytes at offset. Returns 0, or -1 with errno (EIO-ish
   errors) or with errno 0 when the file ended first. */
static int pread_full(int fd, uint8_t *data, size_t len, uint64_t offset)
{
	while (len > 0) {
		ssize_t ret = pread(fd, data, len, (off_t)offset);

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0) {
			if (ret == 0)
				errno = 0;
			return -1;
		}
		data += ret;
		len -= (size_t)ret;
		offset += (uint64_t)ret;
	}
	return 0;
}

static int flock_retry(int fd, int op)
{
	int ret;

	while ((ret = flock(fd, op)) < 0 && errno == EINTR)
		;
	return ret;
}

/* True if fd is still the file named path (spool_take may have renamed
   it while we waited for the lock). */
static bool fd_is_path(int fd, const char *path)
{
	struct stat st_fd, st_path;

	return fstat(fd, &st_fd) == 0 && stat(path, &st_path) == 0 &&
	       st_fd.st_dev == st_path.st_dev && st_fd.st_ino == st_path.st_ino;
}

/* Creates account_dir/spool, already locked: a temporary file is locked
   before it is linked under the name, so no other writer can append (and
   acknowledge) before the new entry is fsynced. Returns the fd, -2 if the
   spool appeared meanwhile, -1 on error. */
static int spool_create_locked(const char *account_dir, const char *path,
			       const char **error_r)
{
	uint8_t rnd[8];
	char rnd_hex[sizeof(rnd) * 2 + 1];
	char *tmp;
	int fd, ret;

	randombytes_buf(rnd, sizeof(rnd));
	(void)sodium_bin2hex(rnd_hex, sizeof(rnd_hex), rnd, sizeof(rnd));
	tmp = i_strdup_printf("%s/" SPOOL_TMP_PREFIX "%s", account_dir,
			      rnd_hex);
	fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_APPEND | O_CLOEXEC,
		  0600);
	if (fd < 0) {
		*error_r = spool_errorf("cannot create %s: %s", tmp,
					strerror(errno));
		i_free(tmp);
		return -1;
	}
	if (flock_retry(fd, LOCK_EX) < 0) {
		*error_r = spool_errorf("cannot lock %s: %s", tmp,
					strerror(errno));
		goto fail;
	}
	ret = link(tmp, path);
	if (ret < 0) {
		if (errno == EEXIST) {
			(void)close(fd);
			(void)unlink(tmp);
			i_free(tmp);
			return -2;
		}
		*error_r = spool_errorf("cannot link %s: %s", path,
					strerror(errno));
		goto fail;
	}
	(void)unlink(tmp);
	i_free(tmp);
	if (fsync_dir(account_dir) < 0) {
		/* Leave the empty spool: the next writer fsyncs the
		   directory since it finds the file empty. */
		*error_r = spool_errorf("cannot fsync %s: %s", account_dir,
					strerror(errno));
		(void)close(fd);
		return -1;
	}
	return fd;
fail:
	(void)close(fd);
	(void)unlink(tmp);
	i_free(tmp);
	return -1;
}

/* Opens account_dir/spool for appending with the lock held, creating it
   if needed (*created_r: and its directory entry was fsynced). Returns the
   fd or -1. */
static int spool_open_locked(const char *account_dir, const char *path,
			     bool *created_r, const char **error_r)
{
	*created_r = false;
	for (unsigned int tries = 0;; tries++) {
		int fd;

		/* Each retry means another process created or took the
		   spool meanwhile; this cannot go on for long. */
		if (tries == 100) {
			*error_r = spool_errorf("cannot open %s: too much "
						"contention",
						path);
			return -1;
		}
		fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 && errno == ENOENT) {
			fd = spool_create_locked(account_dir, path, error_r);
			if (fd == -2)
				continue;
			*created_r = fd >= 0;
			return fd;
		}
		if (fd < 0) {
			*error_r = spool_errorf("cannot open %s: %s", path,
						strerror(errno));
			return -1;
		}
		if (flock_retry(fd, LOCK_EX) < 0) {
			*error_r = spool_errorf("cannot lock %s: %s", path,
						strerror(errno));
			(void)close(fd);
			return -1;
		}
		if (fd_is_path(fd, path))
			return fd;
		/* Taken for merging while we waited: use the fresh one. */
		(void)close(fd);
	}
}

static size_t put_str(uint8_t *p, const char *str, size_t len)
{
	le32_put(p, (uint32_t)len);
	memcpy(p + 4, str, len);
	return 4 + len;
}

/* Checks record and seals it into a new frame (i_malloc'ed, *frame_len_r
   bytes) with a fresh id in id_r. Returns the frame or NULL. */
static uint8_t *spool_seal_frame(const uint8_t public_key[32],
				 const struct spool_record *record,
				 uint8_t id_r[SPOOL_RECORD_ID_LEN],
				 size_t *frame_len_r, const char **error_r)
{
	const char *mailbox = record->mailbox == NULL ? "" : record->mailbox;
	size_t sender_len = strlen(record->sender);
	size_t rcpt_len = strlen(record->recipient);
	size_t mailbox_len = strlen(mailbox);
	size_t plain_len, sealed_len, frame_len, pos;
	uint8_t *plain, *frame;
	int ret;

	if (record->message_len > SPOOL_MAX_MESSAGE) {
		*error_r = spool_errorf("message of %zu bytes is larger than "
					"the limit (%u)",
					record->message_len, SPOOL_MAX_MESSAGE);
		return NULL;
	}
	if (sender_len + rcpt_len + mailbox_len > SPOOL_MAX_ENVELOPE) {
		*error_r = spool_errorf("envelope fields are too long");
		return NULL;
	}
	plain_len = SPOOL_PLAIN_FIXED + sender_len + rcpt_len + mailbox_len +
		    record->message_len;
	sealed_len = crypto_box_SEALBYTES + plain_len;
	i_assert(sealed_len <= SPOOL_SEALED_MAX);
	frame_len = SPOOL_FRAME_HDR_LEN + sealed_len;

	plain = i_malloc(plain_len);
	randombytes_buf(id_r, SPOOL_RECORD_ID_LEN);
	memcpy(plain, id_r, SPOOL_RECORD_ID_LEN);
	pos = SPOOL_RECORD_ID_LEN;
	le64_put(plain + pos, (uint64_t)record->received);
	pos += 8;
	le32_put(plain + pos, record->flags);
	pos += 4;
	pos += put_str(plain + pos, record->sender, sender_len);
	pos += put_str(plain + pos, record->recipient, rcpt_len);
	pos += put_str(plain + pos, mailbox, mailbox_len);
	le64_put(plain + pos, record->message_len);
	pos += 8;
	if (record->message_len > 0)
		memcpy(plain + pos, record->message, record->message_len);
	i_assert(pos + record->message_len == plain_len);

	frame = i_malloc(frame_len);
	memcpy(frame, SPOOL_MAGIC, SPOOL_MAGIC_LEN);
	le32_put(frame + SPOOL_MAGIC_LEN, (uint32_t)sealed_len);
	ret = crypto_box_seal(frame + SPOOL_FRAME_HDR_LEN, plain, plain_len,
			      public_key);
	sodium_memzero(plain, plain_len);
	i_free(plain);
	if (ret != 0) {
		*error_r = spool_errorf("cannot seal the record (bad public "
					"key?)");
		i_free(frame);
		return NULL;
	}
	*frame_len_r = frame_len;
	return frame;
}

int spool_append_many(const char *account_dir, const uint8_t public_key[32],
		      const struct spool_record *records, unsigned int count,
		      uint8_t (*ids_r)[SPOOL_RECORD_ID_LEN],
		      const char **error_r)
{
	uint8_t **frames;
	size_t *frame_lens;
	struct stat st;
	char *path = NULL;
	unsigned int sealed = 0;
	bool created;
	int fd, ret = -1;

	if (sodium_init() < 0)
		i_panic("sodium_init() failed");
	i_assert(count > 0);
	/* Sealed before the lock is taken: other writers wait only for
	   the writes and the fsync. */
	frames = i_new(uint8_t *, count);
	frame_lens = i_new(size_t, count);
	for (; sealed < count; sealed++) {
		frames[sealed] = spool_seal_frame(public_key, &records[sealed],
						  ids_r[sealed],
						  &frame_lens[sealed], error_r);
		if (frames[sealed] == NULL)
			goto out;
	}

	path = i_strdup_printf("%s/spool", account_dir);
	fd = spool_open_locked(account_dir, path, &created, error_r);
	if (fd < 0)
		goto out;
	if (fstat(fd, &st) < 0) {
		*error_r = spool_errorf("cannot stat %s: %s", path,
					strerror(errno));
		goto out_close;
	}
	/* An empty spool may have been left by a creator that died before
	   fsyncing the directory: make its name durable before our record
	   is acknowledged. */
	if (st.st_size == 0 && !created && fsync_dir(account_dir) < 0) {
		*error_r = spool_errorf("cannot fsync %s: %s", account_dir,
					strerror(errno));
		goto out_close;
	}
	for (unsigned int i = 0; i < count && ret == -1; i++) {
		if (write_full(fd, frames[i], frame_lens[i]) < 0)
			ret = -2;
	}
	if (ret == -2 || fsync(fd) < 0) {
		*error_r = spool_errorf("cannot append to %s: %s", path,
					strerror(errno));
		/* All or nothing: do not leave part of the batch (nor a torn
		   record) for the next writer to append after. If the
		   truncation fails too, the records that are there may still
		   be merged later: a duplicate, never a loss, since none is
		   acknowledged. */
		if (ftruncate(fd, st.st_size) == 0)
			(void)fsync(fd);
		ret = -1;
		goto out_close;
	}
	ret = 0;
out_close:
	/* close() drops the lock; an explicit unlock first makes it not
	   depend on other fds of the same open file. */
	(void)flock_retry(fd, LOCK_UN);
	(void)close(fd);
out:
	for (unsigned int i = 0; i < sealed; i++)
		i_free(frames[i]);
	i_free(frames);
	i_free(frame_lens);
	i_free(path);
	return ret;
}

int spool_append(const char *account_dir, const uint8_t public_key[32],
		 const struct spool_record *record,
		 uint8_t id_r[SPOOL_RECORD_ID_LEN], const char **error_r)
{
	return spool_append_many(account_dir, public_key, record, 1,
				 (uint8_t(*)[SPOOL_RECORD_ID_LEN])id_r,
				 error_r);
}

/* Removes spool.tmp-* files left by a writer that died between creating
   and renaming one. */
static void spool_remove_stale_tmp(const char *account_dir)
{
	time_t now = time(NULL);
	struct dirent *d;
	struct stat st;
	DIR *dir;

	dir = opendir(account_dir);
	if (dir == NULL)
		return;
	while ((d = readdir(dir)) != NULL) {
		if (strncmp(d->d_name, SPOOL_TMP_PREFIX,
			    strlen(SPOOL_TMP_PREFIX)) != 0)
			continue;
		if (fstatat(dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
			    0 &&
		    st.st_mtime + SPOOL_TMP_STALE_SECS < now)
			(void)unlinkat(dirfd(dir), d->d_name, 0);
	}
	(void)closedir(dir);
}

int spool_take(const char *account_dir, struct pool *pool,
	       const char **taken_path_r, const char **error_r)
{
	char *path = i_strdup_printf("%s/spool", account_dir);
	char *merging = i_strdup_printf("%s/spool.merging", account_dir);
	struct stat st;
	int fd, ret = -1;

	spool_remove_stale_tmp(account_dir);
	for (;;) {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			if (errno != ENOENT) {
				*error_r = spool_errorf("cannot open %s: %s",
							path, strerror(errno));
				goto out;
			}
			/* No spool: only a leftover taken one, if any. */
			if (lstat(merging, &st) == 0) {
				ret = 1;
			} else if (errno == ENOENT) {
				ret = 0;
			} else {
				*error_r =
					spool_errorf("cannot stat %s: %s",
						     merging, strerror(errno));
			}
			goto out;
		}
		if (flock_retry(fd, LOCK_EX) < 0) {
			*error_r = spool_errorf("cannot lock %s: %s", path,
						strerror(errno));
			goto out_close;
		}
		if (fd_is_path(fd, path))
			break;
		(void)close(fd);
	}
	/* Under the lock. A taken file from an earlier merge comes first:
	   its records are older. */
	if (lstat(merging, &st) == 0) {
		ret = 1;
	} else if (errno != ENOENT) {
		*error_r = spool_errorf("cannot stat %s: %s", merging,
					strerror(errno));
	} else if (fstat(fd, &st) < 0) {
		*error_r = spool_errorf("cannot stat %s: %s", path,
					strerror(errno));
	} else if (st.st_size == 0) {
		ret = 0;
	} else if (rename(path, merging) < 0) {
		*error_r = spool_errorf("cannot rename %s: %s", path,
					strerror(errno));
	} else if (fsync_dir(account_dir) < 0) {
		*error_r = spool_errorf("cannot fsync %s: %s", account_dir,
					strerror(errno));
	} else {
		ret = 1;
	}
	(void)flock_retry(fd, LOCK_UN);
out_close:
	(void)close(fd);
out:
	if (ret == 1)
		*taken_path_r = p_strdup(pool, merging);
	i_free(path);
	i_free(merging);
	return ret;
}

int spool_done(const char *taken_path, const char **error_r)
{
	const char *slash = strrchr(taken_path, '/');
	char *dir;
	int ret = 0;

	if (unlink(taken_path) < 0 && errno != ENOENT) {
		*error_r = spool_errorf("cannot delete %s: %s", taken_path,
					strerror(errno));
		return -1;
	}
	/* Durable, so the next start does not merge it again (harmless,
	   the record ids are known, but slow). */
	dir = slash == NULL
		      ? i_strdup(".")
		      : i_strndup(taken_path, (size_t)(slash - taken_path));
	if (fsync_dir(dir[0] == '\0' ? "/" : dir) < 0) {
		*error_r = spool_errorf("cannot fsync %s: %s", dir,
					strerror(errno));
		ret = -1;
	}
	i_free(dir);
	return ret;
}

struct spool_reader *spool_reader_open(const char *path,
				       const uint8_t public_key[32],
				       const uint8_t secret_key[32],
				       const char **error_r)
{
	struct spool_reader *reader;
	struct stat st;
	int fd;

	if (sodium_init() < 0)
		i_panic("sodium_init() failed");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		*error_r = spool_errorf("cannot open %s: %s", path,
					strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*error_r = spool_errorf("cannot read %s: %s", path,
					S_ISREG(st.st_mode) ? strerror(errno)
							    : "not a file");
		(void)close(fd);
		return NULL;
	}
	reader = i_new(struct spool_reader, 1);
	reader->path = i_strdup(path);
	reader->fd = fd;
	reader->size = (uint64_t)st.st_size;
	memcpy(reader->public_key, public_key, 32);
	memcpy(reader->secret_key, secret_key, 32);
	return reader;
}

/* Checks for a complete frame at offset. Returns 1 and its sealed length,
   0 if there is none (wrong magic, impossible length, or not all of it in
   the file), -1 on I/O error. */
static int spool_frame_at(struct spool_reader *reader, uint64_t offset,
			  uint32_t *sealed_len_r, const char **error_r)
{
	uint8_t hdr[SPOOL_FRAME_HDR_LEN];
	uint32_t len;

	if (reader->size - offset < SPOOL_FRAME_HDR_LEN)
		return 0;
	if (pread_full(reader->fd, hdr, sizeof(hdr), offset) < 0) {
		if (errno == 0)
			return 0;
		*error_r = spool_errorf("cannot read %s: %s", reader->path,
					strerror(errno));
		return -1;
	}
	len = le32_get(hdr + SPOOL_MAGIC_LEN);
	if (memcmp(hdr, SPOOL_MAGIC, SPOOL_MAGIC_LEN) != 0 ||
	    len < SPOOL_SEALED_MIN || len > SPOOL_SEALED_MAX ||
	    reader->size - offset - SPOOL_FRAME_HDR_LEN < len)
		return 0;
	*sealed_len_r = len;
	return 1;
}

/* Finds the first complete frame starting after offset. Returns 1 and its
   offset, 0 if there is none, -1 on I/O error. */
static int spool_resync(struct spool_reader *reader, uint64_t offset,
			uint64_t *next_r, const char **error_r)
{
	uint8_t chunk[SPOOL_SCAN_CHUNK];
	uint64_t start = offset + 1;
	uint32_t len;

	while (start + SPOOL_MAGIC_LEN <= reader->size) {
		size_t want = SPOOL_SCAN_CHUNK;
		size_t pos = 0;
		ssize_t got;

		if (reader->size - start < want)
			want = (size_t)(reader->size - start);
		got = pread(reader->fd, chunk, want, (off_t)start);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			*error_r = spool_errorf("cannot read %s: %s",
						reader->path, strerror(errno));
			return -1;
		}
		if ((size_t)got < SPOOL_MAGIC_LEN)
			return 0;
		while (pos + SPOOL_MAGIC_LEN <= (size_t)got) {
			const uint8_t *hit =
				memmem(chunk + pos, (size_t)got - pos,
				       SPOOL_MAGIC, SPOOL_MAGIC_LEN);
			int ret;

			if (hit == NULL)
				break;
			pos = (size_t)(hit - chunk);
			ret = spool_frame_at(reader, start + pos, &len,
					     error_r);
			if (ret != 0) {
				*next_r = start + pos;
				return ret;
			}
			pos++;
		}
		/* The magic may straddle the chunk boundary. */
		start += (size_t)got - (SPOOL_MAGIC_LEN - 1);
	}
	return 0;
}

static void *grow(void *data, size_t *alloc, size_t need, size_t used)
{
	uint8_t *p;

	if (need <= *alloc)
		return data;
	p = i_malloc(need);
	if (data != NULL) {
		sodium_memzero(data, used);
		free(data);
	}
	*alloc = need;
	return p;
}

static bool take_str(const uint8_t **p, size_t *left, struct span *str_r)
{
	uint32_t len;

	if (*left < 4)
		return false;
	len = le32_get(*p);
	/* A NUL inside would silently cut the C string callers get. */
	if (*left - 4 < len || memchr(*p + 4, '\0', len) != NULL)
		return false;
	*str_r = span_make(*p + 4, len);
	*p += 4 + len;
	*left -= 4 + len;
	return true;
}

static char *copy_str(struct spool_reader *reader, struct span str)
{
	char *dest = reader->strs + reader->strs_used;

	memcpy(dest, str.p, str.len);
	dest[str.len] = '\0';
	reader->strs_used += str.len + 1;
	return dest;
}

/* Parses the opened plaintext. Returns false if it is not a record. */
static bool spool_parse(struct spool_reader *reader,
			struct spool_record *record_r)
{
	const uint8_t *p = reader->plain;
	size_t left = reader->plain_used;
	struct span sender, rcpt, mailbox;
	uint64_t msg_len;

	if (left < SPOOL_RECORD_ID_LEN + 8 + 4)
		return false;
	memcpy(record_r->id, p, SPOOL_RECORD_ID_LEN);
	record_r->received = (int64_t)le64_get(p + SPOOL_RECORD_ID_LEN);
	record_r->flags = le32_get(p + SPOOL_RECORD_ID_LEN + 8);
	p += SPOOL_RECORD_ID_LEN + 8 + 4;
	left -= SPOOL_RECORD_ID_LEN + 8 + 4;
	if (!take_str(&p, &left, &sender) || !take_str(&p, &left, &rcpt) ||
	    !take_str(&p, &left, &mailbox) || left < 8)
		return false;
	msg_len = le64_get(p);
	if (msg_len != left - 8 || msg_len > SPOOL_MAX_MESSAGE)
		return false;
	reader->strs = grow(reader->strs, &reader->strs_alloc,
			    sender.len + rcpt.len + mailbox.len + 3,
			    reader->strs_used);
	reader->strs_used = 0;
	record_r->sender = copy_str(reader, sender);
	record_r->recipient = copy_str(reader, rcpt);
	record_r->mailbox = copy_str(reader, mailbox);
	record_r->message = p + 8;
	record_r->message_len = (size_t)msg_len;
	return true;
}

/* Wipes the previous record's plaintext. */
static void spool_reader_wipe(struct spool_reader *reader)
{
	if (reader->plain != NULL)
		sodium_memzero(reader->plain, reader->plain_used);
	if (reader->strs != NULL)
		sodium_memzero(reader->strs, reader->strs_used);
	reader->plain_used = 0;
	reader->strs_used = 0;
}

int spool_reader_next(struct spool_reader *reader,
		      struct spool_record *record_r, const char **error_r)
{
	uint32_t sealed_len;
	uint64_t next;
	int ret;

	spool_reader_wipe(reader);
	while (reader->pos < reader->size) {
		ret = spool_frame_at(reader, reader->pos, &sealed_len, error_r);
		if (ret < 0)
			return -1;
		if (ret > 0) {
			reader->sealed =
				grow(reader->sealed, &reader->sealed_alloc,
				     sealed_len, 0);
			reader->plain =
				grow(reader->plain, &reader->plain_alloc,
				     sealed_len - crypto_box_SEALBYTES, 0);
			if (pread_full(reader->fd, reader->sealed, sealed_len,
				       reader->pos + SPOOL_FRAME_HDR_LEN) < 0) {
				*error_r = spool_errorf(
					"cannot read %s: %s", reader->path,
					errno == 0 ? "file shrank"
						   : strerror(errno));
				return -1;
			}
			reader->plain_used = sealed_len - crypto_box_SEALBYTES;
			if (crypto_box_seal_open(reader->plain, reader->sealed,
						 sealed_len, reader->public_key,
						 reader->secret_key) == 0 &&
			    spool_parse(reader, record_r)) {
				reader->pos += SPOOL_FRAME_HDR_LEN + sealed_len;
				return 1;
			}
			spool_reader_wipe(reader);
			/* Damaged or forged. Its length may be damaged too:
			   look for the next record right after its start. */
			reader->damaged++;
			ret = spool_resync(reader, reader->pos, &next, error_r);
			if (ret < 0)
				return -1;
			reader->pos = ret > 0 ? next : reader->size;
			continue;
		}
		/* No record here. With a record further on, this is damage
		   (or a writer killed mid-append before others appended);
		   without, it is the torn end of the file. */
		ret = spool_resync(reader, reader->pos, &next, error_r);
		if (ret < 0)
			return -1;
		if (ret == 0) {
			reader->pos = reader->size;
			break;
		}
		reader->damaged++;
		reader->pos = next;
	}
	return 0;
}

unsigned int spool_reader_damaged(const struct spool_reader *reader)
{
	return reader->damaged;
}

void spool_reader_close(struct spool_reader **_reader)
{
	struct spool_reader *reader = *_reader;

	*_reader = NULL;
	if (reader == NULL)
		return;
	spool_reader_wipe(reader);
	sodium_memzero(reader->secret_key, sizeof(reader->secret_key));
	(void)close(reader->fd);
	i_free(reader->sealed);
	i_free(reader->plain);
	i_free(reader->strs);
	i_free(reader->path);
	i_free(reader);
}
