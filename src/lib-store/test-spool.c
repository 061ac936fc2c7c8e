/* test-spool.c - unit tests for the sealed inbound spool: records appended
   and read back with every field; a file cut at every byte offset gives
   exactly the records completed before the cut and nothing counted as
   damaged; a flipped byte anywhere in a middle record skips and counts
   that record only; a writer killed mid-append followed by more appends; a
   wrong secret key; records sealed correctly but malformed inside, and
   absurd lengths; a canary never reaches the disk in the clear; take /
   done, with a leftover spool.merging returned first; 4 processes x 50
   concurrent appends, alone and while the spool is being taken, give
   exactly 200 intact records. spool_append_many: 50 records in one call
   read back in order with their ids and cost one fsync (fsync is wrapped
   with the linker's --wrap and counted), and a batch is all or nothing:
   a bad record fails it before anything is written, and a write that
   fails midway (RLIMIT_FSIZE) leaves the file as it was. Prints (as TAP
   comments) appends per second of 4 KiB messages with fsync. Each test works in
   its own mkdtemp() directory, removed at the end. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "pool.h"
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CANARY "zqCanary-5p00l-e1d3-Marmot"

/* Every fsync() of the code under test goes through here (meson links
   this test with -Wl,--wrap=fsync). */
int __real_fsync(int fd);
int __wrap_fsync(int fd);
static unsigned int fsync_calls;
int __wrap_fsync(int fd)
{
	fsync_calls++;
	return __real_fsync(fd);
}

struct tmp {
	char dir[64];
	char spool[80];
	char merging[96];
	char copy[80];
	uint8_t pk[32], sk[32];
	uint8_t pk2[32], sk2[32];
	pool_t pool;
};

struct expect {
	uint8_t id[SPOOL_RECORD_ID_LEN];
	unsigned int n;
};

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	return remove(path);
}

static int tmp_setup(void **state)
{
	struct tmp *t = i_new(struct tmp, 1);

	if (sodium_init() < 0)
		return -1;
	snprintf(t->dir, sizeof(t->dir), "/tmp/test-spool.XXXXXX");
	if (mkdtemp(t->dir) == NULL)
		return -1;
	snprintf(t->spool, sizeof(t->spool), "%s/spool", t->dir);
	snprintf(t->merging, sizeof(t->merging), "%s/spool.merging", t->dir);
	snprintf(t->copy, sizeof(t->copy), "%s/copy", t->dir);
	crypto_box_keypair(t->pk, t->sk);
	crypto_box_keypair(t->pk2, t->sk2);
	t->pool = pool_create("test-spool", 1024);
	*state = t;
	return 0;
}

static int tmp_teardown(void **state)
{
	struct tmp *t = *state;

	pool_unref(&t->pool);
	(void)nftw(t->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	i_free(t);
	return 0;
}

/* The message of record n: varied sizes, the canary in every one. */
static uint8_t *make_message(unsigned int n, size_t *len_r)
{
	size_t len = 64 + (n * 131) % 3000;
	uint8_t *msg = i_malloc(len);
	int hdr =
		snprintf((char *)msg, len, "Subject: %s %u\r\n\r\n", CANARY, n);

	for (size_t i = (size_t)hdr; i < len; i++)
		msg[i] = (uint8_t)('a' + (i + n) % 26);
	*len_r = len;
	return msg;
}

/* Fills rec as record n; the strings and message are pool memory. */
static void make_record(pool_t pool, unsigned int n, struct spool_record *rec)
{
	size_t len;
	uint8_t *msg = make_message(n, &len);
	uint8_t *copy = p_malloc(pool, len);

	memcpy(copy, msg, len);
	i_free(msg);
	memset(rec, 0, sizeof(*rec));
	rec->received = 1700000000 + n;
	rec->flags = n % 2 == 0 ? 0 : SPOOL_FLAG_JUNK;
	rec->sender =
		n % 5 == 0 ? ""
			   : p_strdup_printf(pool, "sender%u@example.org", n);
	rec->recipient = p_strdup_printf(pool, "rcpt%u@example.net", n);
	rec->mailbox =
		n % 3 == 0 ? "Archive/" CANARY : (n % 3 == 1 ? "" : NULL);
	rec->message = copy;
	rec->message_len = len;
}

static void append_n(struct tmp *t, unsigned int n,
		     uint8_t id_r[SPOOL_RECORD_ID_LEN])
{
	struct spool_record rec;
	const char *error = NULL;

	make_record(t->pool, n, &rec);
	if (spool_append(t->dir, t->pk, &rec, id_r, &error) < 0)
		fail_msg("spool_append: %s", error);
}

static void check_record(const struct spool_record *rec, unsigned int n)
{
	char sender[64], rcpt[64];
	size_t len;
	uint8_t *msg = make_message(n, &len);

	snprintf(sender, sizeof(sender), "sender%u@example.org", n);
	snprintf(rcpt, sizeof(rcpt), "rcpt%u@example.net", n);
	assert_int_equal(rec->received, 1700000000 + n);
	assert_int_equal(rec->flags, n % 2 == 0 ? 0 : SPOOL_FLAG_JUNK);
	assert_string_equal(rec->sender, n % 5 == 0 ? "" : sender);
	assert_string_equal(rec->recipient, rcpt);
	assert_string_equal(rec->mailbox, n % 3 == 0 ? "Archive/" CANARY : "");
	assert_int_equal(rec->message_len, len);
	assert_memory_equal(rec->message, msg, len);
	i_free(msg);
}

/* Reads path and returns how many records opened; damaged_r gets the
   damaged count. Records must be numbered first, first+1, ... except
   those listed in skip (a bitmask of record numbers). */
static unsigned int read_all(struct tmp *t, const char *path, const uint8_t *sk,
			     unsigned int first, uint64_t skip,
			     unsigned int *damaged_r, struct expect *ids,
			     unsigned int ids_count)
{
	const char *error = NULL;
	struct spool_reader *reader;
	struct spool_record rec;
	unsigned int count = 0, n = first;
	int ret;

	reader = spool_reader_open(path, t->pk, sk, &error);
	if (reader == NULL)
		fail_msg("spool_reader_open: %s", error);
	while ((ret = spool_reader_next(reader, &rec, &error)) == 1) {
		while (n < 64 && (skip & (1ull << n)) != 0)
			n++;
		check_record(&rec, n);
		if (ids != NULL) {
			assert_true(n - first < ids_count);
			assert_memory_equal(rec.id, ids[n - first].id,
					    SPOOL_RECORD_ID_LEN);
		}
		n++;
		count++;
	}
	assert_int_equal(ret, 0);
	/* The end stays the end. */
	assert_int_equal(spool_reader_next(reader, &rec, &error), 0);
	*damaged_r = spool_reader_damaged(reader);
	spool_reader_close(&reader);
	assert_null(reader);
	return count;
}

static uint8_t *read_file(const char *path, size_t *len_r)
{
	struct stat st;
	uint8_t *data;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	data = i_malloc((size_t)st.st_size + 1);
	assert_int_equal(read(fd, data, (size_t)st.st_size), st.st_size);
	close(fd);
	*len_r = (size_t)st.st_size;
	return data;
}

static void write_file(const char *path, const uint8_t *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void test_roundtrip(void **state)
{
	struct tmp *t = *state;
	struct expect ids[20];
	unsigned int damaged;
	struct stat st;

	for (unsigned int i = 0; i < N_ELEMENTS(ids); i++)
		append_n(t, i, ids[i].id);
	/* Fresh random ids. */
	assert_memory_not_equal(ids[0].id, ids[1].id, SPOOL_RECORD_ID_LEN);
	assert_int_equal(stat(t->spool, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(read_all(t, t->spool, t->sk, 0, 0, &damaged, ids,
				  N_ELEMENTS(ids)),
			 N_ELEMENTS(ids));
	assert_int_equal(damaged, 0);
}

static void test_empty_message(void **state)
{
	struct tmp *t = *state;
	struct spool_record rec, out;
	const char *error = NULL;
	uint8_t id[SPOOL_RECORD_ID_LEN];
	struct spool_reader *reader;

	memset(&rec, 0, sizeof(rec));
	rec.sender = "";
	rec.recipient = "a@b";
	rec.received = -5;
	assert_int_equal(spool_append(t->dir, t->pk, &rec, id, &error), 0);
	reader = spool_reader_open(t->spool, t->pk, t->sk, &error);
	assert_non_null(reader);
	assert_int_equal(spool_reader_next(reader, &out, &error), 1);
	assert_memory_equal(out.id, id, SPOOL_RECORD_ID_LEN);
	assert_int_equal(out.received, -5);
	assert_int_equal(out.message_len, 0);
	assert_string_equal(out.mailbox, "");
	assert_int_equal(spool_reader_next(reader, &out, &error), 0);
	spool_reader_close(&reader);
}

static void test_torn(void **state)
{
	struct tmp *t = *state;
	uint8_t id[SPOOL_RECORD_ID_LEN];
	off_t bounds[4];
	unsigned int damaged;
	uint8_t *data;
	size_t len;

	bounds[0] = 0;
	for (unsigned int i = 0; i < 3; i++) {
		append_n(t, i, id);
		bounds[i + 1] = file_size(t->spool);
	}
	data = read_file(t->spool, &len);
	/* A cut at every offset: the records completed before it. */
	for (size_t cut = 0; cut < len; cut++) {
		unsigned int complete = 0;

		while (complete < 3 && (size_t)bounds[complete + 1] <= cut)
			complete++;
		write_file(t->copy, data, cut);
		assert_int_equal(
			read_all(t, t->copy, t->sk, 0, 0, &damaged, NULL, 0),
			complete);
		assert_int_equal(damaged, 0);
	}
	i_free(data);
}

static void test_torn_middle(void **state)
{
	struct tmp *t = *state;
	uint8_t id[SPOOL_RECORD_ID_LEN];
	unsigned int damaged;
	uint8_t *data;
	size_t len;
	off_t before;
	int fd;

	/* Record 1 torn by a writer killed mid-append, then records 2 and
	   3 appended after it. */
	append_n(t, 0, id);
	before = file_size(t->spool);
	append_n(t, 1, id);
	data = read_file(t->spool, &len);
	fd = open(t->spool, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, before + (off_t)(len - before) / 2), 0);
	close(fd);
	append_n(t, 2, id);
	append_n(t, 3, id);
	assert_int_equal(
		read_all(t, t->spool, t->sk, 0, 1u << 1, &damaged, NULL, 0), 3);
	assert_int_equal(damaged, 1);
	i_free(data);
}

static void test_flipped(void **state)
{
	struct tmp *t = *state;
	uint8_t id[SPOOL_RECORD_ID_LEN];
	off_t start, end;
	unsigned int damaged;
	uint8_t *data;
	size_t len;

	append_n(t, 0, id);
	start = file_size(t->spool);
	append_n(t, 1, id);
	end = file_size(t->spool);
	append_n(t, 2, id);
	data = read_file(t->spool, &len);
	for (off_t off = start; off < end; off++) {
		for (unsigned int bit = 0; bit < 8; bit += 7) {
			data[off] ^= (uint8_t)(1u << bit);
			write_file(t->copy, data, len);
			assert_int_equal(read_all(t, t->copy, t->sk, 0, 1u << 1,
						  &damaged, NULL, 0),
					 2);
			assert_int_equal(damaged, 1);
			data[off] ^= (uint8_t)(1u << bit);
		}
	}
	/* The last record flipped: counted, not taken for a torn end. */
	data[len - 1] ^= 1;
	write_file(t->copy, data, len);
	assert_int_equal(read_all(t, t->copy, t->sk, 0, 0, &damaged, NULL, 0),
			 2);
	assert_int_equal(damaged, 1);
	/* Garbage in front of the first record. */
	data[len - 1] ^= 1;
	uint8_t *junk = i_malloc(len + 100);
	memset(junk, 'M', 100);
	memcpy(junk + 100, data, len);
	write_file(t->copy, junk, len + 100);
	assert_int_equal(read_all(t, t->copy, t->sk, 0, 0, &damaged, NULL, 0),
			 3);
	assert_int_equal(damaged, 1);
	i_free(junk);
	i_free(data);
}

static void test_wrong_key(void **state)
{
	struct tmp *t = *state;
	uint8_t id[SPOOL_RECORD_ID_LEN];
	unsigned int damaged;

	for (unsigned int i = 0; i < 5; i++)
		append_n(t, i, id);
	assert_int_equal(read_all(t, t->spool, t->sk2, 0, 0, &damaged, NULL, 0),
			 0);
	assert_int_equal(damaged, 5);
}

/* Appends a frame whose sealed part opens to plain. */
static void append_forged(int fd, const uint8_t *pk, const uint8_t *plain,
			  size_t plain_len)
{
	size_t sealed_len = plain_len + crypto_box_SEALBYTES;
	uint8_t *frame = i_malloc(8 + sealed_len);

	memcpy(frame, "MSR1", 4);
	for (unsigned int i = 0; i < 4; i++)
		frame[4 + i] = (uint8_t)(sealed_len >> (8 * i));
	assert_int_equal(crypto_box_seal(frame + 8, plain, plain_len, pk), 0);
	assert_int_equal(write(fd, frame, 8 + sealed_len),
			 (ssize_t)(8 + sealed_len));
	i_free(frame);
}

static size_t put_le32(uint8_t *p, uint32_t v)
{
	for (unsigned int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return 4;
}

static size_t put_le64(uint8_t *p, uint64_t v)
{
	for (unsigned int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return 8;
}

/* A well-formed plaintext with the given fields; lengths may lie. */
static size_t build_plain(uint8_t *p, uint32_t sender_len, const char *sender,
			  uint64_t msg_len, const char *msg)
{
	size_t pos = 0;

	memset(p, 7, SPOOL_RECORD_ID_LEN);
	pos += SPOOL_RECORD_ID_LEN;
	pos += put_le64(p + pos, 1);
	pos += put_le32(p + pos, 0);
	pos += put_le32(p + pos, sender_len);
	memcpy(p + pos, sender, strlen(sender));
	pos += strlen(sender);
	pos += put_le32(p + pos, 3);
	memcpy(p + pos, "a@b", 3);
	pos += 3;
	pos += put_le32(p + pos, 0);
	pos += put_le64(p + pos, msg_len);
	memcpy(p + pos, msg, strlen(msg));
	return pos + strlen(msg);
}

static void test_forged(void **state)
{
	struct tmp *t = *state;
	uint8_t id[SPOOL_RECORD_ID_LEN], plain[256];
	unsigned int damaged;
	size_t len;
	int fd;

	append_n(t, 0, id);
	fd = open(t->spool, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	/* Sender length beyond the record. */
	len = build_plain(plain, 0xffffffffu, "x@y", 2, "hi");
	append_forged(fd, t->pk, plain, len);
	/* A NUL inside the sender. */
	len = build_plain(plain, 3, "xzy", 2, "hi");
	plain[SPOOL_RECORD_ID_LEN + 12 + 4 + 1] = '\0';
	append_forged(fd, t->pk, plain, len);
	/* Message length larger, smaller, and huge. */
	len = build_plain(plain, 3, "x@y", 3, "hi");
	append_forged(fd, t->pk, plain, len);
	len = build_plain(plain, 3, "x@y", 1, "hi");
	append_forged(fd, t->pk, plain, len);
	len = build_plain(plain, 3, "x@y", UINT64_MAX, "hi");
	append_forged(fd, t->pk, plain, len);
	/* Cut inside the fixed fields. */
	append_forged(fd, t->pk, plain, 20);
	/* A valid forged record: anyone with the public key can seal. */
	len = build_plain(plain, 3, "x@y", 2, "hi");
	append_forged(fd, t->pk, plain, len);
	close(fd);
	append_n(t, 1, id);

	struct spool_reader *reader;
	struct spool_record rec;
	const char *error = NULL;

	reader = spool_reader_open(t->spool, t->pk, t->sk, &error);
	assert_non_null(reader);
	assert_int_equal(spool_reader_next(reader, &rec, &error), 1);
	check_record(&rec, 0);
	assert_int_equal(spool_reader_next(reader, &rec, &error), 1);
	assert_string_equal(rec.sender, "x@y");
	assert_int_equal(rec.message_len, 2);
	assert_memory_equal(rec.message, "hi", 2);
	assert_int_equal(spool_reader_next(reader, &rec, &error), 1);
	check_record(&rec, 1);
	assert_int_equal(spool_reader_next(reader, &rec, &error), 0);
	damaged = spool_reader_damaged(reader);
	spool_reader_close(&reader);
	/* Five that open but do not parse; the undersized frame lies in
	   the stretch skipped after the fifth, so it is not counted again. */
	assert_int_equal(damaged, 5);
}

static void test_absurd_lengths(void **state)
{
	struct tmp *t = *state;
	static const uint8_t huge[] = { 'M',  'S',  'R', '1', 0xff, 0xff,
					0xff, 0xff, 1,   2,   3 };
	static const uint8_t tiny[] = { 'M', 'S', 'R', '1', 1, 0, 0, 0, 1 };
	uint8_t id[SPOOL_RECORD_ID_LEN];
	unsigned int damaged;
	uint8_t *data, *data1, *both;
	size_t len, len1;
	int fd;

	/* A huge length at the end is a torn record, and nothing is
	   allocated for it (ASan would notice 4 GiB). */
	append_n(t, 0, id);
	fd = open(t->spool, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, huge, sizeof(huge)), (ssize_t)sizeof(huge));
	close(fd);
	assert_int_equal(read_all(t, t->spool, t->sk, 0, 0, &damaged, NULL, 0),
			 1);
	assert_int_equal(damaged, 0);

	/* In the middle, both are skipped on the way to the next record. */
	data = read_file(t->spool, &len);
	len -= sizeof(huge);
	assert_int_equal(unlink(t->spool), 0);
	append_n(t, 1, id);
	data1 = read_file(t->spool, &len1);
	both = i_malloc(len + sizeof(huge) + sizeof(tiny) + len1);
	memcpy(both, data, len);
	memcpy(both + len, huge, sizeof(huge));
	memcpy(both + len + sizeof(huge), tiny, sizeof(tiny));
	memcpy(both + len + sizeof(huge) + sizeof(tiny), data1, len1);
	write_file(t->copy, both, len + sizeof(huge) + sizeof(tiny) + len1);
	assert_int_equal(read_all(t, t->copy, t->sk, 0, 0, &damaged, NULL, 0),
			 2);
	assert_int_equal(damaged, 1);
	i_free(both);
	i_free(data);
	i_free(data1);
}

static void grep_dir(const char *dir, const char *needle, unsigned int *hits_r,
		     unsigned int *files_r)
{
	char cmd[256];
	FILE *f;
	unsigned int hits = 0, files = 0;
	char line[512];

	/* Every regular file, as the acceptance check does. */
	snprintf(cmd, sizeof(cmd), "find %s -type f", dir);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		uint8_t *data;
		size_t len;

		line[strcspn(line, "\n")] = '\0';
		data = read_file(line, &len);
		if (memmem(data, len, needle, strlen(needle)) != NULL)
			hits++;
		files++;
		i_free(data);
	}
	assert_int_equal(pclose(f), 0);
	*hits_r = hits;
	*files_r = files;
}

static void test_canary(void **state)
{
	struct tmp *t = *state;
	uint8_t id[SPOOL_RECORD_ID_LEN];
	unsigned int hits, files;

	for (unsigned int i = 0; i < 10; i++)
		append_n(t, i, id);
	grep_dir(t->dir, CANARY, &hits, &files);
	assert_int_equal(files, 1);
	assert_int_equal(hits, 0);
}

static void test_take(void **state)
{
	struct tmp *t = *state;
	uint8_t id[SPOOL_RECORD_ID_LEN];
	const char *error = NULL, *taken = NULL, *taken2 = NULL;
	unsigned int damaged;

	/* Nothing yet. */
	assert_int_equal(spool_take(t->dir, t->pool, &taken, &error), 0);

	for (unsigned int i = 0; i < 3; i++)
		append_n(t, i, id);
	assert_int_equal(spool_take(t->dir, t->pool, &taken, &error), 1);
	assert_string_equal(taken, t->merging);
	assert_int_equal(access(t->spool, F_OK), -1);
	/* New deliveries go to a fresh spool. */
	for (unsigned int i = 3; i < 5; i++)
		append_n(t, i, id);
	assert_int_equal(file_size(t->merging) > 0, 1);
	/* A crash before spool_done(): the taken file comes back first and
	   the fresh spool stays where it is. */
	assert_int_equal(spool_take(t->dir, t->pool, &taken2, &error), 1);
	assert_string_equal(taken2, t->merging);
	assert_int_equal(access(t->spool, F_OK), 0);
	assert_int_equal(read_all(t, taken2, t->sk, 0, 0, &damaged, NULL, 0),
			 3);
	assert_int_equal(spool_done(taken2, &error), 0);
	assert_int_equal(access(t->merging, F_OK), -1);

	assert_int_equal(spool_take(t->dir, t->pool, &taken, &error), 1);
	assert_int_equal(read_all(t, taken, t->sk, 3, 0, &damaged, NULL, 0), 2);
	assert_int_equal(spool_done(taken, &error), 0);
	assert_int_equal(spool_take(t->dir, t->pool, &taken, &error), 0);
	/* Done twice is harmless. */
	assert_int_equal(spool_done(taken2, &error), 0);

	/* An empty spool (a creator that died) is nothing to merge. */
	write_file(t->spool, (const uint8_t *)"", 0);
	assert_int_equal(spool_take(t->dir, t->pool, &taken, &error), 0);
	append_n(t, 7, id);
	assert_int_equal(spool_take(t->dir, t->pool, &taken, &error), 1);
	assert_int_equal(read_all(t, taken, t->sk, 7, 0, &damaged, NULL, 0), 1);
}

static void test_limits(void **state)
{
	struct tmp *t = *state;
	struct spool_record rec;
	uint8_t id[SPOOL_RECORD_ID_LEN];
	const char *error = NULL;
	char *long_sender = i_malloc(5000);

	memset(&rec, 0, sizeof(rec));
	rec.sender = "";
	rec.recipient = "a@b";
	rec.message = (const uint8_t *)"x";
	/* Checked before the message is touched. */
	rec.message_len = (size_t)SPOOL_MAX_MESSAGE + 1;
	assert_int_equal(spool_append(t->dir, t->pk, &rec, id, &error), -1);
	assert_non_null(strstr(error, "limit"));
	memset(long_sender, 'a', 4999);
	rec.sender = long_sender;
	rec.message_len = 1;
	assert_int_equal(spool_append(t->dir, t->pk, &rec, id, &error), -1);
	assert_int_equal(access(t->spool, F_OK), -1);
	/* The envelope limit, exactly. */
	long_sender[SPOOL_MAX_ENVELOPE - 3 + 1] = '\0';
	assert_int_equal(spool_append(t->dir, t->pk, &rec, id, &error), -1);
	long_sender[SPOOL_MAX_ENVELOPE - 3] = '\0';
	assert_int_equal(spool_append(t->dir, t->pk, &rec, id, &error), 0);
	struct spool_reader *reader =
		spool_reader_open(t->spool, t->pk, t->sk, &error);
	struct spool_record out;
	assert_non_null(reader);
	assert_int_equal(spool_reader_next(reader, &out, &error), 1);
	assert_string_equal(out.sender, long_sender);
	assert_int_equal(spool_reader_next(reader, &out, &error), 0);
	spool_reader_close(&reader);
	assert_int_equal(unlink(t->spool), 0);
	/* A missing account directory is an error, not a crash. */
	char *missing = i_strdup_printf("%s/nope", t->dir);
	rec.sender = "";
	assert_int_equal(spool_append(missing, t->pk, &rec, id, &error), -1);
	assert_null(spool_reader_open(t->spool, t->pk, t->sk, &error));
	assert_non_null(strstr(error, "cannot open"));
	i_free(missing);
	i_free(long_sender);
}

#define WRITERS 4
#define PER_WRITER 50

static void spawn_writers(struct tmp *t, pid_t pids[WRITERS])
{
	for (unsigned int w = 0; w < WRITERS; w++) {
		pids[w] = fork();
		assert_true(pids[w] >= 0);
		if (pids[w] == 0) {
			const char *error = NULL;
			uint8_t id[SPOOL_RECORD_ID_LEN];
			struct spool_record rec;
			int rc = 0;

			for (unsigned int i = 0; i < PER_WRITER; i++) {
				unsigned int n = w * PER_WRITER + i;
				size_t len;
				uint8_t *msg = make_message(n, &len);
				char rcpt[64];

				memset(&rec, 0, sizeof(rec));
				snprintf(rcpt, sizeof(rcpt), "%u", n);
				rec.sender = "s@x";
				rec.recipient = rcpt;
				rec.message = msg;
				rec.message_len = len;
				if (spool_append(t->dir, t->pk, &rec, id,
						 &error) < 0)
					rc = 1;
				i_free(msg);
			}
			_exit(rc);
		}
	}
}

static void wait_writers(pid_t pids[WRITERS])
{
	for (unsigned int w = 0; w < WRITERS; w++) {
		int status;

		assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
}

/* Reads a file of concurrent records, marking each in seen[]. */
static void read_concurrent(struct tmp *t, const char *path,
			    unsigned int seen[WRITERS * PER_WRITER],
			    unsigned int *total)
{
	const char *error = NULL;
	struct spool_reader *reader;
	struct spool_record rec;
	int ret;

	reader = spool_reader_open(path, t->pk, t->sk, &error);
	assert_non_null(reader);
	while ((ret = spool_reader_next(reader, &rec, &error)) == 1) {
		unsigned int n = (unsigned int)strtoul(rec.recipient, NULL, 10);
		size_t len;
		uint8_t *msg;

		assert_true(n < WRITERS * PER_WRITER);
		msg = make_message(n, &len);
		assert_int_equal(rec.message_len, len);
		assert_memory_equal(rec.message, msg, len);
		i_free(msg);
		seen[n]++;
		(*total)++;
	}
	assert_int_equal(ret, 0);
	assert_int_equal(spool_reader_damaged(reader), 0);
	spool_reader_close(&reader);
}

static void test_concurrent(void **state)
{
	struct tmp *t = *state;
	unsigned int seen[WRITERS * PER_WRITER], total = 0;
	pid_t pids[WRITERS];

	memset(seen, 0, sizeof(seen));
	spawn_writers(t, pids);
	wait_writers(pids);
	read_concurrent(t, t->spool, seen, &total);
	assert_int_equal(total, WRITERS * PER_WRITER);
	for (unsigned int i = 0; i < N_ELEMENTS(seen); i++)
		assert_int_equal(seen[i], 1);
}

static void test_concurrent_take(void **state)
{
	struct tmp *t = *state;
	unsigned int seen[WRITERS * PER_WRITER], total = 0, takes = 0;
	const char *error = NULL, *taken;
	pid_t pids[WRITERS];
	bool running = true;

	memset(seen, 0, sizeof(seen));
	spawn_writers(t, pids);
	/* Merge while they deliver: nothing lost, nothing twice. */
	while (running) {
		int ret = spool_take(t->dir, t->pool, &taken, &error);

		assert_true(ret >= 0);
		if (ret == 1) {
			read_concurrent(t, taken, seen, &total);
			assert_int_equal(spool_done(taken, &error), 0);
			takes++;
		}
		running = false;
		for (unsigned int w = 0; w < WRITERS; w++) {
			if (waitpid(pids[w], NULL, WNOHANG) == 0)
				running = true;
		}
		usleep(1000);
	}
	/* Children are reaped above; exit codes are checked through the
	   record count. */
	while (spool_take(t->dir, t->pool, &taken, &error) == 1) {
		read_concurrent(t, taken, seen, &total);
		assert_int_equal(spool_done(taken, &error), 0);
		takes++;
	}
	print_message("# %u records merged in %u takes during delivery\n",
		      total, takes);
	assert_int_equal(total, WRITERS * PER_WRITER);
	for (unsigned int i = 0; i < N_ELEMENTS(seen); i++)
		assert_int_equal(seen[i], 1);
}

#define MANY 50

static void test_append_many(void **state)
{
	struct tmp *t = *state;
	struct spool_record recs[MANY];
	uint8_t ids[MANY][SPOOL_RECORD_ID_LEN];
	struct expect expect[MANY + 1];
	const char *error = NULL;
	unsigned int damaged;

	/* Record 0 creates the spool (its directory fsync is not what is
	   counted here). */
	append_n(t, 0, expect[0].id);
	for (unsigned int i = 0; i < MANY; i++)
		make_record(t->pool, i + 1, &recs[i]);
	fsync_calls = 0;
	assert_int_equal(
		spool_append_many(t->dir, t->pk, recs, MANY, ids, &error), 0);
	/* One fsync for the whole batch. */
	assert_int_equal(fsync_calls, 1);
	for (unsigned int i = 0; i < MANY; i++)
		memcpy(expect[i + 1].id, ids[i], SPOOL_RECORD_ID_LEN);
	assert_int_equal(
		read_all(t, t->spool, t->sk, 0, 0, &damaged, expect, MANY + 1),
		MANY + 1);
	assert_int_equal(damaged, 0);
	/* Every id is fresh. */
	for (unsigned int i = 0; i < MANY; i++) {
		for (unsigned int j = i + 1; j < MANY; j++)
			assert_memory_not_equal(ids[i], ids[j],
						SPOOL_RECORD_ID_LEN);
	}

	/* The same records one by one: one fsync each. */
	fsync_calls = 0;
	for (unsigned int i = 0; i < 5; i++)
		assert_int_equal(
			spool_append(t->dir, t->pk, &recs[i], ids[i], &error),
			0);
	assert_int_equal(fsync_calls, 5);
}

static void test_append_many_new_spool(void **state)
{
	struct tmp *t = *state;
	struct spool_record recs[3];
	uint8_t ids[3][SPOOL_RECORD_ID_LEN];
	const char *error = NULL;
	unsigned int damaged;

	for (unsigned int i = 0; i < 3; i++)
		make_record(t->pool, i, &recs[i]);
	fsync_calls = 0;
	assert_int_equal(spool_append_many(t->dir, t->pk, recs, 3, ids, &error),
			 0);
	/* The new name's directory, then the records. */
	assert_int_equal(fsync_calls, 2);
	assert_int_equal(read_all(t, t->spool, t->sk, 0, 0, &damaged, NULL, 0),
			 3);
}

static void test_append_many_bad_record(void **state)
{
	struct tmp *t = *state;
	struct spool_record recs[4];
	uint8_t ids[4][SPOOL_RECORD_ID_LEN], id[SPOOL_RECORD_ID_LEN];
	const char *error = NULL;
	char *long_rcpt = p_malloc(t->pool, SPOOL_MAX_ENVELOPE + 2);
	unsigned int damaged;
	off_t before;

	append_n(t, 0, id);
	before = file_size(t->spool);
	for (unsigned int i = 0; i < 4; i++)
		make_record(t->pool, i + 1, &recs[i]);
	memset(long_rcpt, 'r', SPOOL_MAX_ENVELOPE + 1);
	recs[2].recipient = long_rcpt;
	fsync_calls = 0;
	assert_int_equal(spool_append_many(t->dir, t->pk, recs, 4, ids, &error),
			 -1);
	assert_non_null(strstr(error, "too long"));
	/* Nothing of the batch was written, nothing synced. */
	assert_int_equal(file_size(t->spool), before);
	assert_int_equal(fsync_calls, 0);
	assert_int_equal(read_all(t, t->spool, t->sk, 0, 0, &damaged, NULL, 0),
			 1);
	assert_int_equal(damaged, 0);
}

static void test_append_many_write_fails(void **state)
{
	struct tmp *t = *state;
	struct spool_record recs[MANY];
	uint8_t ids[MANY][SPOOL_RECORD_ID_LEN];
	uint8_t id[SPOOL_RECORD_ID_LEN];
	const char *error = NULL;
	struct rlimit old, lim;
	unsigned int damaged;
	off_t before;
	void (*old_handler)(int);

	append_n(t, 0, id);
	append_n(t, 1, id);
	before = file_size(t->spool);
	for (unsigned int i = 0; i < MANY; i++)
		make_record(t->pool, i + 2, &recs[i]);
	/* The file may grow by about ten records: the batch fails midway
	   with EFBIG (SIGXFSZ ignored so the write returns the error). */
	old_handler = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)before + 10 * 2000;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(
		spool_append_many(t->dir, t->pk, recs, MANY, ids, &error), -1);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	(void)signal(SIGXFSZ, old_handler);
	assert_non_null(strstr(error, "cannot append"));
	/* Truncated back: the two earlier records, no torn tail. */
	assert_int_equal(file_size(t->spool), before);
	assert_int_equal(read_all(t, t->spool, t->sk, 0, 0, &damaged, NULL, 0),
			 2);
	assert_int_equal(damaged, 0);
	/* And the spool still takes the batch afterwards. */
	assert_int_equal(
		spool_append_many(t->dir, t->pk, recs, MANY, ids, &error), 0);
	assert_int_equal(read_all(t, t->spool, t->sk, 0, 0, &damaged, NULL, 0),
			 MANY + 2);
}

static void test_throughput(void **state)
{
	struct tmp *t = *state;
	struct spool_record rec;
	uint8_t id[SPOOL_RECORD_ID_LEN], msg[4096];
	const char *error = NULL;
	struct timespec start, end;
	unsigned int n = 200, damaged;
	double secs;

	memset(&rec, 0, sizeof(rec));
	memset(msg, 'm', sizeof(msg));
	rec.sender = "bench@example.org";
	rec.recipient = "user@example.net";
	rec.message = msg;
	rec.message_len = sizeof(msg);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (unsigned int i = 0; i < n; i++)
		assert_int_equal(spool_append(t->dir, t->pk, &rec, id, &error),
				 0);
	clock_gettime(CLOCK_MONOTONIC, &end);
	secs = (double)(end.tv_sec - start.tv_sec) +
	       (double)(end.tv_nsec - start.tv_nsec) / 1e9;
	print_message("# spool_append: %.0f records/s (4 KiB messages, "
		      "fsync each, %s)\n",
		      n / secs, t->dir);

	struct spool_reader *reader;
	unsigned int count = 0;

	reader = spool_reader_open(t->spool, t->pk, t->sk, &error);
	assert_non_null(reader);
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (spool_reader_next(reader, &rec, &error) == 1)
		count++;
	clock_gettime(CLOCK_MONOTONIC, &end);
	damaged = spool_reader_damaged(reader);
	spool_reader_close(&reader);
	secs = (double)(end.tv_sec - start.tv_sec) +
	       (double)(end.tv_nsec - start.tv_nsec) / 1e9;
	print_message("# spool_reader: %.0f records/s\n", count / secs);
	assert_int_equal(count, n);
	assert_int_equal(damaged, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_empty_message, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_torn, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_torn_middle, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_flipped, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_wrong_key, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_forged, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_absurd_lengths, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_canary, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_take, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_limits, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_take, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_append_many, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_append_many_new_spool,
						tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_append_many_bad_record,
						tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_append_many_write_fails,
						tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_throughput, tmp_setup,
						tmp_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
