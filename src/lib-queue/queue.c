/* queue.c - the durable, encrypted outbound queue in the format queue.h
   describes: one immutable sealed <id>.msg per message (XChaCha20-
   Poly1305 under DATA/queue.key, the id as associated data so files
   cannot be swapped) and an atomically rewritten <id>.state. Owns
   DATA/queue/ and DATA/queue.key. Called by the front (enqueue from the
   delivery worker threads; list/load/save/delete from the runner) and by
   `marmot queue`. Security stance: the files are untrusted input on
   reading (every length is bounded before allocating, a file that does
   not open is reported and left alone); the key never leaves this module
   and plaintext is wiped when freed. Durability: every write is tmp +
   fsync + rename + directory fsync before it is reported done. */

#include "lib.h"
#include "queue.h"
#include "bytes.h"
#include "buf.h"
#include "fsutil.h"
#include "pool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_MSG_MAGIC "MQM1"
#define QUEUE_STATE_MAGIC "MQS1"
#define QUEUE_MAGIC_LEN 4
#define QUEUE_NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define QUEUE_TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define QUEUE_HDR_LEN (QUEUE_MAGIC_LEN + QUEUE_NONCE_LEN)
#define QUEUE_FLAG_RET_FULL 1u
#define QUEUE_FLAG_REQUIRETLS 2u
#define QUEUE_STATE_FLAG_HELD 1u
#define QUEUE_STATE_DELAY_NOTIFIED 0x80u
#define QUEUE_TMP_PREFIX "tmp-"
#define QUEUE_TMP_STALE_SECS 3600
/* The largest .msg: message plus the envelope at its bounds. */
#define QUEUE_FILE_MAX                                                      \
	((uint64_t)QUEUE_MAX_MESSAGE + QUEUE_HDR_LEN + QUEUE_TAG_LEN + 64 + \
	 3 * (4 + QUEUE_MAX_STRING) +                                       \
	 (uint64_t)QUEUE_MAX_RCPTS * (2 * (4 + QUEUE_MAX_STRING) + 4))
/* Bound on the number of entries a listing reads (every load loop is
   bounded). */
#define QUEUE_LIST_MAX 1000000u

_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == 32, "key");

struct queue {
	char *dir; /* DATA/queue */
	char *ctl_dir; /* DATA/queue/ctl */
	uint8_t key[32];
};

static _Thread_local char queue_error[512];

static const char *queue_errorf(const char *fmt, ...) ATTR_FORMAT(1, 2);
static const char *queue_errorf(const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(queue_error, sizeof(queue_error), fmt, args);
	va_end(args);
	return queue_error;
}

static int read_full(int fd, uint8_t *data, size_t len)
{
	while (len > 0) {
		ssize_t ret = read(fd, data, len);

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0) {
			if (ret == 0)
				errno = EIO;
			return -1;
		}
		data += ret;
		len -= (size_t)ret;
	}
	return 0;
}

/* Reads or creates the 32-byte key file (O_EXCL, so two processes
   starting at once agree on one key). */
static int queue_key_load(const char *path, uint8_t key[32],
			  const char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;

	if (fd < 0 && errno == ENOENT) {
		uint8_t fresh[32];
		char *tmp = i_strdup_printf("%s.tmp-%d", path, (int)getpid());

		randombytes_buf(fresh, sizeof(fresh));
		fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0 || write_full(fd, fresh, sizeof(fresh)) < 0 ||
		    fsync(fd) < 0) {
			*error_r = queue_errorf("cannot create %s: %s", tmp,
						strerror(errno));
			if (fd >= 0)
				(void)close(fd);
			(void)unlink(tmp);
			i_free(tmp);
			safe_memset0(fresh, sizeof(fresh));
			return -1;
		}
		(void)close(fd);
		/* link() fails with EEXIST if another process won. */
		if (link(tmp, path) < 0 && errno != EEXIST) {
			*error_r = queue_errorf("cannot create %s: %s", path,
						strerror(errno));
			(void)unlink(tmp);
			i_free(tmp);
			safe_memset0(fresh, sizeof(fresh));
			return -1;
		}
		(void)unlink(tmp);
		i_free(tmp);
		safe_memset0(fresh, sizeof(fresh));
		if (fsync_parent_dir(path) < 0) {
			*error_r = queue_errorf("cannot fsync %s: %s", path,
						strerror(errno));
			return -1;
		}
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0) {
		*error_r = queue_errorf("cannot open %s: %s", path,
					strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || st.st_size != 32 ||
	    read_full(fd, key, 32) < 0) {
		*error_r = queue_errorf("%s: not a 32-byte key", path);
		(void)close(fd);
		return -1;
	}
	(void)close(fd);
	return 0;
}

/* Removes tmp-* files older than an hour: a crash during a write. */
static void queue_clean_tmp(struct queue *q)
{
	DIR *dir = opendir(q->dir);
	struct dirent *d;
	time_t now = time(NULL);

	if (dir == NULL)
		return;
	for (unsigned int n = 0; n < QUEUE_LIST_MAX && (d = readdir(dir));
	     n++) {
		struct stat st;

		if (strncmp(d->d_name, QUEUE_TMP_PREFIX,
			    strlen(QUEUE_TMP_PREFIX)) != 0)
			continue;
		if (fstatat(dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
			    0 &&
		    st.st_mtime + QUEUE_TMP_STALE_SECS < now)
			(void)unlinkat(dirfd(dir), d->d_name, 0);
	}
	(void)closedir(dir);
}

struct queue *queue_open(const char *data_dir, const char **error_r)
{
	struct queue *q;
	char *key_path;

	if (sodium_init() < 0) {
		*error_r = "libsodium initialisation failed";
		return NULL;
	}
	q = i_new(struct queue, 1);
	q->dir = i_strdup_printf("%s/queue", data_dir);
	if (mkdir(q->dir, 0700) < 0 && errno != EEXIST) {
		*error_r = queue_errorf("cannot create %s: %s", q->dir,
					strerror(errno));
		queue_close(&q);
		return NULL;
	}
	key_path = i_strdup_printf("%s/queue.key", data_dir);
	if (queue_key_load(key_path, q->key, error_r) < 0) {
		i_free(key_path);
		queue_close(&q);
		return NULL;
	}
	i_free(key_path);
	q->ctl_dir = i_strdup_printf("%s/ctl", q->dir);
	if (mkdir(q->ctl_dir, 0700) < 0 && errno != EEXIST) {
		*error_r = queue_errorf("cannot create %s: %s", q->ctl_dir,
					strerror(errno));
		queue_close(&q);
		return NULL;
	}
	queue_clean_tmp(q);
	return q;
}

void queue_close(struct queue **_q)
{
	struct queue *q = *_q;

	*_q = NULL;
	if (q == NULL)
		return;
	safe_memset0(q->key, sizeof(q->key));
	i_free(q->dir);
	i_free(q->ctl_dir);
	i_free(q);
}

bool queue_id_valid(const char *id)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++) {
		if (!((id[i] >= '0' && id[i] <= '9') ||
		      (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	}
	return i == QUEUE_ID_LEN;
}

/* ---- serialisation ---- */

static void put_u32(struct buf *b, uint32_t v)
{
	uint8_t tmp[4];

	le32_put(tmp, v);
	buf_append(b, tmp, 4);
}

static void put_u64(struct buf *b, uint64_t v)
{
	uint8_t tmp[8];

	le64_put(tmp, v);
	buf_append(b, tmp, 8);
}

static void put_str(struct buf *b, const char *s)
{
	size_t len = s == NULL ? 0 : strlen(s);

	put_u32(b, (uint32_t)len);
	buf_append(b, s == NULL ? "" : s, len);
}

struct reader {
	const uint8_t *p;
	size_t left;
	bool bad;
};

static uint32_t get_u32(struct reader *r)
{
	uint32_t v;

	if (r->bad || r->left < 4) {
		r->bad = true;
		return 0;
	}
	v = le32_get(r->p);
	r->p += 4;
	r->left -= 4;
	return v;
}

static uint64_t get_u64(struct reader *r)
{
	uint64_t v;

	if (r->bad || r->left < 8) {
		r->bad = true;
		return 0;
	}
	v = le64_get(r->p);
	r->p += 8;
	r->left -= 8;
	return v;
}

static uint8_t get_u8(struct reader *r)
{
	uint8_t v;

	if (r->bad || r->left < 1) {
		r->bad = true;
		return 0;
	}
	v = r->p[0];
	r->p++;
	r->left--;
	return v;
}

/* A NUL-terminated pool copy; NUL inside or too long => bad. */
static char *get_str(struct reader *r, pool_t pool)
{
	uint32_t len = get_u32(r);
	char *s;

	if (r->bad || len > QUEUE_MAX_STRING || len > r->left ||
	    memchr(r->p, '\0', len) != NULL) {
		r->bad = true;
		return p_strdup(pool, "");
	}
	s = p_strndup(pool, r->p, len);
	r->p += len;
	r->left -= len;
	return s;
}

static bool str_ok(const char *s, bool allow_empty)
{
	size_t len;

	if (s == NULL)
		return allow_empty;
	len = strlen(s);
	if (len == 0)
		return allow_empty;
	if (len > QUEUE_MAX_STRING)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\r' || s[i] == '\n')
			return false;
	}
	return true;
}

static void queue_make_id(char id_r[QUEUE_ID_LEN + 1])
{
	struct timeval tv;
	uint8_t rnd[8];
	char rnd_hex[17];
	uint64_t usec;

	(void)gettimeofday(&tv, NULL);
	usec = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	randombytes_buf(rnd, sizeof(rnd));
	(void)sodium_bin2hex(rnd_hex, sizeof(rnd_hex), rnd, sizeof(rnd));
	snprintf(id_r, QUEUE_ID_LEN + 1, "%016llx%s", (unsigned long long)usec,
		 rnd_hex);
}

static char *queue_path(const struct queue *q, const char *id,
			const char *suffix)
{
	return i_strdup_printf("%s/%s%s", q->dir, id, suffix);
}

/* Seals plain (AD = magic || id) and writes it to path through a tmp
   file: tmp + fsync + rename + directory fsync. */
static int queue_write_sealed(struct queue *q, const char *id,
			      const char *magic, const char *path,
			      const struct buf *plain, const char **error_r)
{
	uint8_t ad[QUEUE_MAGIC_LEN + QUEUE_ID_LEN];
	uint8_t *file;
	size_t file_len = i_size_add(QUEUE_HDR_LEN,
				     i_size_add(plain->used, QUEUE_TAG_LEN));
	unsigned long long ct_len;
	uint8_t rnd[8];
	char rnd_hex[17];
	char *tmp;
	int fd, ret = -1;

	memcpy(ad, magic, QUEUE_MAGIC_LEN);
	memcpy(ad + QUEUE_MAGIC_LEN, id, QUEUE_ID_LEN);
	file = i_malloc(file_len);
	memcpy(file, magic, QUEUE_MAGIC_LEN);
	randombytes_buf(file + QUEUE_MAGIC_LEN, QUEUE_NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
		file + QUEUE_HDR_LEN, &ct_len, buf_span(plain).p, plain->used,
		ad, sizeof(ad), NULL, file + QUEUE_MAGIC_LEN, q->key);
	i_assert(ct_len + QUEUE_HDR_LEN == file_len);

	randombytes_buf(rnd, sizeof(rnd));
	(void)sodium_bin2hex(rnd_hex, sizeof(rnd_hex), rnd, sizeof(rnd));
	tmp = i_strdup_printf("%s/" QUEUE_TMP_PREFIX "%s", q->dir, rnd_hex);
	fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0) {
		*error_r = queue_errorf("cannot create %s: %s", tmp,
					strerror(errno));
		goto out;
	}
	if (write_full(fd, file, file_len) < 0 || fsync(fd) < 0) {
		*error_r = queue_errorf("cannot write %s: %s", tmp,
					strerror(errno));
		(void)close(fd);
		(void)unlink(tmp);
		goto out;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		*error_r = queue_errorf("cannot rename %s to %s: %s", tmp, path,
					strerror(errno));
		(void)unlink(tmp);
		goto out;
	}
	if (fsync_dir(q->dir) < 0) {
		*error_r = queue_errorf("cannot fsync %s: %s", q->dir,
					strerror(errno));
		goto out;
	}
	ret = 0;
out:
	i_free(tmp);
	i_free(file);
	return ret;
}

/* Reads and opens a sealed file. Returns 1 with *plain_r (i_malloc,
   caller wipes and frees), 0 if the file does not exist, -1 on error. */
static int queue_read_sealed(struct queue *q, const char *id, const char *magic,
			     const char *path, uint8_t **plain_r,
			     size_t *plain_len_r, const char **error_r)
{
	uint8_t ad[QUEUE_MAGIC_LEN + QUEUE_ID_LEN];
	struct stat st;
	uint8_t *file, *plain;
	unsigned long long plain_len;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		*error_r = queue_errorf("cannot open %s: %s", path,
					strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		*error_r = queue_errorf("cannot stat %s: %s", path,
					strerror(errno));
		(void)close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size < QUEUE_HDR_LEN + QUEUE_TAG_LEN ||
	    (uint64_t)st.st_size > QUEUE_FILE_MAX) {
		*error_r = queue_errorf("%s: bad size %lld", path,
					(long long)st.st_size);
		(void)close(fd);
		return -1;
	}
	file = i_malloc((size_t)st.st_size);
	if (read_full(fd, file, (size_t)st.st_size) < 0) {
		*error_r = queue_errorf("cannot read %s: %s", path,
					strerror(errno));
		(void)close(fd);
		i_free(file);
		return -1;
	}
	(void)close(fd);
	if (memcmp(file, magic, QUEUE_MAGIC_LEN) != 0) {
		*error_r = queue_errorf("%s: bad magic", path);
		i_free(file);
		return -1;
	}
	memcpy(ad, magic, QUEUE_MAGIC_LEN);
	memcpy(ad + QUEUE_MAGIC_LEN, id, QUEUE_ID_LEN);
	plain = i_malloc((size_t)st.st_size);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		    plain, &plain_len, NULL, file + QUEUE_HDR_LEN,
		    (size_t)st.st_size - QUEUE_HDR_LEN, ad, sizeof(ad),
		    file + QUEUE_MAGIC_LEN, q->key) != 0) {
		*error_r = queue_errorf("%s: does not open (damaged, "
					"tampered or another key)",
					path);
		i_free(file);
		i_free(plain);
		return -1;
	}
	i_free(file);
	*plain_r = plain;
	*plain_len_r = (size_t)plain_len;
	return 1;
}

/* ---- enqueue ---- */

int queue_enqueue(struct queue *q, const struct queue_envelope *env,
		  const uint8_t *msg, size_t len, char id_r[33],
		  const char **error_r)
{
	struct buf plain = BUF_INIT;
	char *path;
	uint32_t flags = 0;
	int ret;

	if (!str_ok(env->sender, true) || !str_ok(env->envid, true)) {
		*error_r = "bad sender or envid";
		return -1;
	}
	if (env->rcpt_count == 0 || env->rcpt_count > QUEUE_MAX_RCPTS) {
		*error_r = "bad recipient count";
		return -1;
	}
	for (unsigned int i = 0; i < env->rcpt_count; i++) {
		if (!str_ok(env->rcpts[i].address, false) ||
		    !str_ok(env->rcpts[i].orcpt, true)) {
			*error_r = "bad recipient";
			return -1;
		}
	}
	if (len > QUEUE_MAX_MESSAGE) {
		*error_r = "message too big for the queue";
		return -1;
	}
	if (env->ret_full)
		flags |= QUEUE_FLAG_RET_FULL;
	if (env->requiretls)
		flags |= QUEUE_FLAG_REQUIRETLS;

	buf_init(&plain, len + 256);
	put_u64(&plain, (uint64_t)time(NULL));
	put_u64(&plain, env->account_id);
	put_u32(&plain, flags);
	put_u64(&plain, (uint64_t)env->hold_until);
	put_str(&plain, env->sender);
	put_str(&plain, env->envid);
	put_u32(&plain, env->rcpt_count);
	for (unsigned int i = 0; i < env->rcpt_count; i++) {
		put_str(&plain, env->rcpts[i].address);
		put_str(&plain, env->rcpts[i].orcpt);
		put_u32(&plain, env->rcpts[i].notify);
	}
	put_u64(&plain, len);
	buf_append(&plain, msg, len);

	queue_make_id(id_r);
	path = queue_path(q, id_r, ".msg");
	ret = queue_write_sealed(q, id_r, QUEUE_MSG_MAGIC, path, &plain,
				 error_r);
	i_free(path);
	buf_free_secure(&plain);
	return ret;
}

/* ---- list ---- */

static int id_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

int queue_list(struct queue *q, char (**ids_r)[QUEUE_ID_LEN + 1],
	       unsigned int *count_r, const char **error_r)
{
	DIR *dir = opendir(q->dir);
	struct dirent *d;
	char(*ids)[QUEUE_ID_LEN + 1] = NULL;
	unsigned int count = 0, alloc = 0;

	if (dir == NULL) {
		*error_r = queue_errorf("cannot open %s: %s", q->dir,
					strerror(errno));
		return -1;
	}
	for (unsigned int n = 0; n < QUEUE_LIST_MAX; n++) {
		size_t nlen;

		errno = 0;
		if ((d = readdir(dir)) == NULL)
			break;
		nlen = strlen(d->d_name);
		if (nlen != QUEUE_ID_LEN + 4 ||
		    strcmp(d->d_name + QUEUE_ID_LEN, ".msg") != 0)
			continue;
		if (count == alloc) {
			alloc = alloc == 0 ? 64 : alloc * 2;
			ids = i_realloc(ids, i_size_mul(alloc, sizeof(*ids)));
		}
		memcpy(ids[count], d->d_name, QUEUE_ID_LEN);
		ids[count][QUEUE_ID_LEN] = '\0';
		if (queue_id_valid(ids[count]))
			count++;
	}
	if (errno != 0) {
		*error_r = queue_errorf("cannot read %s: %s", q->dir,
					strerror(errno));
		(void)closedir(dir);
		i_free(ids);
		return -1;
	}
	(void)closedir(dir);
	if (count > 0)
		qsort(ids, count, sizeof(*ids), id_cmp);
	*ids_r = ids;
	*count_r = count;
	return 0;
}

/* ---- load / state ---- */

static int queue_load_state(struct queue *q, struct queue_message *msg,
			    const char **error_r)
{
	char *path = queue_path(q, msg->id, ".state");
	uint8_t *plain;
	size_t plain_len;
	struct reader r;
	uint32_t flags, count;
	int ret;

	ret = queue_read_sealed(q, msg->id, QUEUE_STATE_MAGIC, path, &plain,
				&plain_len, error_r);
	i_free(path);
	if (ret <= 0)
		return ret; /* 0: no state yet, all pending */
	r = (struct reader){ plain, plain_len, false };
	flags = get_u32(&r);
	msg->generation = get_u64(&r);
	count = get_u32(&r);
	if (!r.bad && count != msg->env.rcpt_count)
		r.bad = true;
	for (unsigned int i = 0; i < count && !r.bad; i++) {
		struct queue_rcpt_state *st = &msg->states[i];
		uint8_t status = get_u8(&r), dsn = get_u8(&r);

		st->delay_notified = (dsn & QUEUE_STATE_DELAY_NOTIFIED) != 0;
		dsn &= (uint8_t)~QUEUE_STATE_DELAY_NOTIFIED;
		if (status > QUEUE_RCPT_FAILED || dsn > QUEUE_DSN_DONE)
			r.bad = true;
		st->status = (enum queue_rcpt_status)status;
		st->dsn = (enum queue_dsn_state)dsn;
		st->attempts = get_u32(&r);
		st->next_attempt = (int64_t)get_u64(&r);
		st->last_attempt = (int64_t)get_u64(&r);
		st->last_reply = get_str(&r, msg->_pool);
		st->remote_host = get_str(&r, msg->_pool);
	}
	if (!r.bad && r.left != 0)
		r.bad = true;
	safe_memset0(plain, plain_len);
	i_free(plain);
	if (r.bad) {
		*error_r = queue_errorf("%s.state: malformed", msg->id);
		return -1;
	}
	msg->held = (flags & QUEUE_STATE_FLAG_HELD) != 0;
	return 1;
}

int queue_load(struct queue *q, const char *id, bool with_body,
	       struct queue_message **msg_r, const char **error_r)
{
	struct queue_message *msg;
	char *path;
	struct reader r;
	uint32_t flags, count;
	uint64_t body_len;
	int ret;

	if (!queue_id_valid(id)) {
		*error_r = "bad queue id";
		return -1;
	}
	msg = i_new(struct queue_message, 1);
	memcpy(msg->id, id, QUEUE_ID_LEN + 1);
	msg->_pool = pool_create("queue message", 1024);
	path = queue_path(q, id, ".msg");
	ret = queue_read_sealed(q, id, QUEUE_MSG_MAGIC, path, &msg->_plain,
				&msg->_plain_len, error_r);
	i_free(path);
	if (ret <= 0) {
		queue_message_free(&msg);
		return ret;
	}
	r = (struct reader){ msg->_plain, msg->_plain_len, false };
	msg->queued = (int64_t)get_u64(&r);
	msg->env.account_id = get_u64(&r);
	flags = get_u32(&r);
	msg->env.ret_full = (flags & QUEUE_FLAG_RET_FULL) != 0;
	msg->env.requiretls = (flags & QUEUE_FLAG_REQUIRETLS) != 0;
	msg->env.hold_until = (int64_t)get_u64(&r);
	msg->env.sender = get_str(&r, msg->_pool);
	msg->env.envid = get_str(&r, msg->_pool);
	if (msg->env.envid[0] == '\0')
		msg->env.envid = NULL;
	count = get_u32(&r);
	if (r.bad || count == 0 || count > QUEUE_MAX_RCPTS) {
		r.bad = true;
		count = 0;
	}
	msg->rcpts = p_new(msg->_pool, struct queue_rcpt, count + 1);
	msg->states = p_new(msg->_pool, struct queue_rcpt_state, count + 1);
	for (unsigned int i = 0; i < count && !r.bad; i++) {
		const char *orcpt;

		msg->rcpts[i].address = get_str(&r, msg->_pool);
		orcpt = get_str(&r, msg->_pool);
		msg->rcpts[i].orcpt = orcpt[0] == '\0' ? NULL : orcpt;
		msg->rcpts[i].notify = get_u32(&r);
		msg->states[i].last_reply = p_strdup(msg->_pool, "");
		msg->states[i].remote_host = p_strdup(msg->_pool, "");
	}
	msg->env.rcpts = msg->rcpts;
	msg->env.rcpt_count = count;
	body_len = get_u64(&r);
	if (r.bad || body_len != r.left) {
		*error_r = queue_errorf("%s.msg: malformed", id);
		queue_message_free(&msg);
		return -1;
	}
	if (with_body) {
		msg->body = r.p;
		msg->body_len = (size_t)body_len;
	}
	if (queue_load_state(q, msg, error_r) < 0) {
		queue_message_free(&msg);
		return -1;
	}
	*msg_r = msg;
	return 1;
}

void queue_message_set_reply(struct queue_message *msg, unsigned int idx,
			     const char *reply, const char *remote_host)
{
	i_assert(idx < msg->env.rcpt_count);
	if (reply != NULL) {
		size_t len = strlen(reply);

		if (len > QUEUE_MAX_STRING)
			len = QUEUE_MAX_STRING;
		msg->states[idx].last_reply = p_strndup(msg->_pool, reply, len);
		/* A reply is stored on one line. */
		for (char *p = msg->states[idx].last_reply; *p != '\0'; p++) {
			if (*p == '\r' || *p == '\n')
				*p = ' ';
		}
	}
	if (remote_host != NULL) {
		size_t len = strlen(remote_host);

		if (len > QUEUE_MAX_STRING)
			len = QUEUE_MAX_STRING;
		msg->states[idx].remote_host =
			p_strndup(msg->_pool, remote_host, len);
	}
}

void queue_message_free(struct queue_message **_msg)
{
	struct queue_message *msg = *_msg;

	*_msg = NULL;
	if (msg == NULL)
		return;
	if (msg->_plain != NULL) {
		safe_memset0(msg->_plain, msg->_plain_len);
		i_free(msg->_plain);
	}
	pool_unref(&msg->_pool);
	i_free(msg);
}

int queue_state_save(struct queue *q, struct queue_message *msg, bool *gone_r,
		     const char **error_r)
{
	struct buf plain = BUF_INIT;
	char *msg_path = queue_path(q, msg->id, ".msg");
	char *path;
	int ret;

	if (gone_r != NULL)
		*gone_r = false;
	/* Deleted meanwhile (`marmot queue delete`): writing a state would
	   leave an orphan. */
	if (access(msg_path, F_OK) < 0 && errno == ENOENT) {
		i_free(msg_path);
		if (gone_r != NULL)
			*gone_r = true;
		return 0;
	}
	i_free(msg_path);
	msg->generation++;
	put_u32(&plain, msg->held ? QUEUE_STATE_FLAG_HELD : 0);
	put_u64(&plain, msg->generation);
	put_u32(&plain, msg->env.rcpt_count);
	for (unsigned int i = 0; i < msg->env.rcpt_count; i++) {
		const struct queue_rcpt_state *st = &msg->states[i];

		buf_append_c(&plain, (uint8_t)st->status);
		buf_append_c(&plain,
			     (uint8_t)st->dsn |
				     (st->delay_notified
					      ? QUEUE_STATE_DELAY_NOTIFIED
					      : 0));
		put_u32(&plain, st->attempts);
		put_u64(&plain, (uint64_t)st->next_attempt);
		put_u64(&plain, (uint64_t)st->last_attempt);
		put_str(&plain, st->last_reply);
		put_str(&plain, st->remote_host);
	}
	path = queue_path(q, msg->id, ".state");
	ret = queue_write_sealed(q, msg->id, QUEUE_STATE_MAGIC, path, &plain,
				 error_r);
	i_free(path);
	buf_free_secure(&plain);
	return ret;
}

int queue_delete(struct queue *q, const char *id, const char **error_r)
{
	char *state_path, *msg_path;
	int ret = 1;

	if (!queue_id_valid(id)) {
		*error_r = "bad queue id";
		return -1;
	}
	state_path = queue_path(q, id, ".state");
	msg_path = queue_path(q, id, ".msg");
	if (unlink(state_path) < 0 && errno != ENOENT) {
		*error_r = queue_errorf("cannot remove %s: %s", state_path,
					strerror(errno));
		ret = -1;
	} else if (unlink(msg_path) < 0) {
		if (errno == ENOENT) {
			ret = 0;
		} else {
			*error_r = queue_errorf("cannot remove %s: %s",
						msg_path, strerror(errno));
			ret = -1;
		}
	}
	if (ret >= 0 && fsync_dir(q->dir) < 0) {
		*error_r = queue_errorf("cannot fsync %s: %s", q->dir,
					strerror(errno));
		ret = -1;
	}
	i_free(state_path);
	i_free(msg_path);
	return ret;
}

int queue_set_held(struct queue *q, const char *id, bool held,
		   const char **error_r)
{
	struct queue_message *msg;
	bool gone;
	int ret;

	ret = queue_load(q, id, false, &msg, error_r);
	if (ret <= 0)
		return ret;
	msg->held = held;
	ret = queue_state_save(q, msg, &gone, error_r);
	queue_message_free(&msg);
	if (ret < 0)
		return -1;
	return gone ? 0 : 1;
}

bool queue_message_done(const struct queue_message *msg)
{
	for (unsigned int i = 0; i < msg->env.rcpt_count; i++) {
		if (msg->states[i].status == QUEUE_RCPT_PENDING ||
		    msg->states[i].dsn == QUEUE_DSN_NEEDED)
			return false;
	}
	return true;
}

const char *queue_rcpt_status_name(enum queue_rcpt_status status)
{
	switch (status) {
	case QUEUE_RCPT_PENDING:
		return "pending";
	case QUEUE_RCPT_DELIVERED:
		return "delivered";
	case QUEUE_RCPT_FAILED:
		return "failed";
	}
	return "unknown";
}

/* ---- requests from `marmot queue` ---- */

static const char *const queue_request_names[] = {
	[QUEUE_REQUEST_FLUSH] = "flush",
	[QUEUE_REQUEST_DELETE] = "delete",
	[QUEUE_REQUEST_HOLD] = "hold",
	[QUEUE_REQUEST_RELEASE] = "release",
};

const char *queue_request_op_name(enum queue_request_op op)
{
	i_assert(op < N_ELEMENTS(queue_request_names));
	return queue_request_names[op];
}

static bool queue_request_id_valid(enum queue_request_op op, const char *id)
{
	return queue_id_valid(id) ||
	       (op == QUEUE_REQUEST_FLUSH && strcmp(id, "all") == 0);
}

int queue_request_add(struct queue *q, enum queue_request_op op, const char *id,
		      const char **error_r)
{
	char *path;
	int fd;

	if (!queue_request_id_valid(op, id)) {
		*error_r = "bad queue id";
		return -1;
	}
	path = i_strdup_printf("%s/%s.%s", q->ctl_dir,
			       queue_request_op_name(op), id);
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || fsync(fd) < 0 || fsync_dir(q->ctl_dir) < 0) {
		*error_r = queue_errorf("cannot create %s: %s", path,
					strerror(errno));
		if (fd >= 0)
			(void)close(fd);
		i_free(path);
		return -1;
	}
	(void)close(fd);
	i_free(path);
	return 0;
}

bool queue_request_pending(struct queue *q, enum queue_request_op op,
			   const char *id)
{
	char *path = i_strdup_printf("%s/%s.%s", q->ctl_dir,
				     queue_request_op_name(op), id);
	bool exists = access(path, F_OK) == 0;

	i_free(path);
	return exists;
}

int queue_requests_take(struct queue *q, unsigned int max,
			queue_request_callback_t *cb, void *context,
			const char **error_r)
{
	DIR *dir = opendir(q->ctl_dir);
	struct dirent *d;
	int count = 0;

	if (dir == NULL) {
		*error_r = queue_errorf("cannot open %s: %s", q->ctl_dir,
					strerror(errno));
		return -1;
	}
	for (unsigned int n = 0;
	     n < QUEUE_LIST_MAX && (unsigned int)count < max; n++) {
		const char *dot;
		bool found = false;

		if ((d = readdir(dir)) == NULL)
			break;
		if (d->d_name[0] == '.')
			continue;
		dot = strchr(d->d_name, '.');
		for (unsigned int op = 0;
		     dot != NULL && op < N_ELEMENTS(queue_request_names);
		     op++) {
			size_t len = strlen(queue_request_names[op]);

			if ((size_t)(dot - d->d_name) == len &&
			    strncmp(d->d_name, queue_request_names[op], len) ==
				    0 &&
			    queue_request_id_valid(op, dot + 1)) {
				/* Applied, then removed, so a CLI waiting
				   for the file to go sees the result. A
				   request that fails is removed too (no
				   retry loop; the runner logs it). */
				cb(context, (enum queue_request_op)op, dot + 1);
				(void)unlinkat(dirfd(dir), d->d_name, 0);
				count++;
				found = true;
				break;
			}
		}
		if (!found)
			(void)unlinkat(dirfd(dir), d->d_name, 0);
	}
	(void)closedir(dir);
	return count;
}
