/* test-blob.c - unit tests for the encrypted blob store: round trips of
   empty, tiny, page-sized, random and compressible bodies (the last much
   smaller on disk); dedup within an account and different ids across data
   keys; a flipped byte at every offset of a blob file, a truncation at
   every length, trailing garbage, a file renamed to another id's name, a
   file from another account's key and an oversized sparse file all give a
   clean "damaged"; a canary never reaches the disk in the clear; delete,
   exists, foreach (temporary and foreign files ignored, stale temporary
   files removed, early stop); hex ids; concurrent writers of the same
   blobs from several processes. Each test works in its own mkdtemp()
   directory, removed at the end. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "blob.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CANARY "zqCanary-b10b-5e4c-Marmot"
#define MIB (1024 * 1024)

struct tmp {
	char dir[64];
	char acct_a[80];
	char acct_b[80];
	struct blob_store *a;
	struct blob_store *b;
};

static const uint8_t key_a[32] = {
	0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
	0xcc, 0xdd, 0xee, 0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
	0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x12,
};
static const uint8_t key_b[32] = {
	0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18, 0x29, 0x3a, 0x4b,
	0x5c, 0x6d, 0x7e, 0x8f, 0x90, 0x01, 0x12, 0x23, 0x34, 0x45, 0x56,
	0x67, 0x78, 0x89, 0x9a, 0xab, 0xbc, 0xcd, 0xde, 0xef, 0xf0,
};

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	return remove(path);
}

static int tmp_setup(void **state)
{
	struct tmp *t = i_new(struct tmp, 1);
	const char *error = NULL;

	snprintf(t->dir, sizeof(t->dir), "/tmp/test-blob.XXXXXX");
	if (mkdtemp(t->dir) == NULL)
		return -1;
	snprintf(t->acct_a, sizeof(t->acct_a), "%s/a", t->dir);
	snprintf(t->acct_b, sizeof(t->acct_b), "%s/b", t->dir);
	if (mkdir(t->acct_a, 0700) < 0 || mkdir(t->acct_b, 0700) < 0)
		return -1;
	t->a = blob_store_open(t->acct_a, key_a, &error);
	t->b = blob_store_open(t->acct_b, key_b, &error);
	if (t->a == NULL || t->b == NULL)
		return -1;
	*state = t;
	return 0;
}

static int tmp_teardown(void **state)
{
	struct tmp *t = *state;

	blob_store_close(&t->a);
	blob_store_close(&t->b);
	assert_null(t->a);
	(void)nftw(t->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	i_free(t);
	return 0;
}

static char *blob_path(const char *acct, const uint8_t id[BLOB_ID_LEN])
{
	char hex[BLOB_ID_HEX_LEN + 1];

	blob_id_to_hex(id, hex);
	return i_strdup_printf("%s/blobs/%.2s/%s", acct, hex, hex);
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

/* Text-like content: compresses well, with the canary inside. */
static uint8_t *make_text(size_t len)
{
	static const char line[] = "Received: from mx.example.org by "
				   "marmot; " CANARY " lorem ipsum\r\n";
	uint8_t *data = i_malloc(len + 1);

	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)line[i % (sizeof(line) - 1)];
	return data;
}

static void roundtrip(struct tmp *t, const uint8_t *data, size_t len,
		      uint64_t *file_size_r)
{
	uint8_t id[BLOB_ID_LEN], id2[BLOB_ID_LEN];
	struct buf out = BUF_INIT;
	const char *error = NULL;
	uint64_t file_size = 0;
	struct stat st;
	char *path;

	assert_int_equal(blob_put(t->a, data, len, id, &file_size, &error), 1);
	blob_id_compute(t->a, data, len, id2);
	assert_memory_equal(id, id2, BLOB_ID_LEN);
	assert_true(blob_exists(t->a, id));
	path = blob_path(t->acct_a, id);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal((uint64_t)st.st_size, file_size);
	assert_int_equal(st.st_mode & 0777, 0600);
	i_free(path);

	buf_append_str(&out, "prefix");
	assert_int_equal(blob_get(t->a, id, &out, &error), 0);
	assert_int_equal(out.used, 6 + len);
	assert_memory_equal(out.data, "prefix", 6);
	if (len > 0)
		assert_memory_equal(out.data + 6, data, len);
	buf_free(&out);
	*file_size_r = file_size;
}

static void test_roundtrip(void **state)
{
	struct tmp *t = *state;
	static const size_t sizes[] = { 0, 1, 4096 };
	uint64_t file_size;
	uint8_t *data;
	struct stat st;

	for (size_t i = 0; i < N_ELEMENTS(sizes); i++) {
		data = i_malloc(sizes[i] + 1);
		randombytes_buf(data, sizes[i]);
		roundtrip(t, data, sizes[i], &file_size);
		/* header + compressed + tag */
		assert_true(file_size >= 36 + 16);
		i_free(data);
	}

	data = i_malloc(MIB);
	randombytes_buf(data, MIB);
	roundtrip(t, data, MIB, &file_size);
	assert_true(file_size > MIB);
	assert_true(file_size < MIB + 1024);
	i_free(data);

	data = make_text(MIB);
	roundtrip(t, data, MIB, &file_size);
	print_message("# 1 MiB of text stored in %llu bytes\n",
		      (unsigned long long)file_size);
	assert_true(file_size < MIB / 50);
	i_free(data);

	/* Directories are private. */
	char *blobs = i_strdup_printf("%s/blobs", t->acct_a);
	assert_int_equal(stat(blobs, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	i_free(blobs);
}

static unsigned int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.' || strncmp(e->d_name, ".tmp-", 5) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static void test_dedup(void **state)
{
	struct tmp *t = *state;
	uint8_t id1[BLOB_ID_LEN], id2[BLOB_ID_LEN], id3[BLOB_ID_LEN];
	const char *error = NULL;
	uint64_t size1 = 0, size2 = 0;
	uint8_t *data = make_text(10000);
	char hex[BLOB_ID_HEX_LEN + 1];
	char *path, *sub;
	struct stat st1, st2;

	assert_int_equal(blob_put(t->a, data, 10000, id1, &size1, &error), 1);
	path = blob_path(t->acct_a, id1);
	assert_int_equal(stat(path, &st1), 0);
	assert_int_equal(blob_put(t->a, data, 10000, id2, &size2, &error), 0);
	assert_memory_equal(id1, id2, BLOB_ID_LEN);
	assert_int_equal(size1, size2);
	/* Not rewritten: same inode, same size; only the mtime is
	   refreshed (the collector's age guard, blob.h). */
	assert_int_equal(stat(path, &st2), 0);
	assert_int_equal(st1.st_ino, st2.st_ino);
	assert_int_equal(st1.st_size, st2.st_size);
	assert_true(st2.st_mtim.tv_sec > st1.st_mtim.tv_sec ||
		    (st2.st_mtim.tv_sec == st1.st_mtim.tv_sec &&
		     st2.st_mtim.tv_nsec >= st1.st_mtim.tv_nsec));
	blob_id_to_hex(id1, hex);
	sub = i_strdup_printf("%s/blobs/%.2s", t->acct_a, hex);
	assert_int_equal(count_files(sub), 1);

	/* One byte different: another blob. */
	data[5000] ^= 1;
	assert_int_equal(blob_put(t->a, data, 10000, id3, NULL, &error), 1);
	assert_memory_not_equal(id1, id3, BLOB_ID_LEN);

	i_free(sub);
	i_free(path);
	i_free(data);
}

static void test_keys_differ(void **state)
{
	struct tmp *t = *state;
	uint8_t id_a[BLOB_ID_LEN], id_b[BLOB_ID_LEN];
	const char *error = NULL;
	uint8_t *data = make_text(5000);
	struct buf out = BUF_INIT;
	uint8_t *file;
	size_t file_len;
	char *pa, *pb, *dir_b;

	assert_int_equal(blob_put(t->a, data, 5000, id_a, NULL, &error), 1);
	assert_int_equal(blob_put(t->b, data, 5000, id_b, NULL, &error), 1);
	assert_memory_not_equal(id_a, id_b, BLOB_ID_LEN);

	/* A's file placed in B's store under A's id: B's keys refuse it. */
	pa = blob_path(t->acct_a, id_a);
	pb = blob_path(t->acct_b, id_a);
	dir_b = i_strndup(pb, strrchr(pb, '/') - pb);
	(void)mkdir(dir_b, 0700);
	file = read_file(pa, &file_len);
	write_file(pb, file, file_len);
	assert_true(blob_exists(t->b, id_a));
	assert_int_equal(blob_get(t->b, id_a, &out, &error), -1);
	assert_non_null(strstr(error, "is damaged"));
	assert_int_equal(out.used, 0);

	i_free(file);
	i_free(dir_b);
	i_free(pa);
	i_free(pb);
	i_free(data);
}

static void expect_damaged(struct tmp *t, const uint8_t id[BLOB_ID_LEN])
{
	char hex[BLOB_ID_HEX_LEN + 1];
	struct buf out = BUF_INIT;
	const char *error = NULL;

	blob_id_to_hex(id, hex);
	assert_int_equal(blob_get(t->a, id, &out, &error), -1);
	assert_non_null(error);
	assert_non_null(strstr(error, hex));
	assert_non_null(strstr(error, "is damaged"));
	assert_int_equal(out.used, 0);
	buf_free(&out);
}

static void test_tamper(void **state)
{
	struct tmp *t = *state;
	uint8_t id[BLOB_ID_LEN];
	const char *error = NULL;
	struct buf out = BUF_INIT;
	uint8_t *data = i_malloc(3000), *file;
	size_t file_len;
	char *path;

	/* Half random, half text: a file of a few KiB. */
	randombytes_buf(data, 1500);
	memset(data + 1500, 'x', 1500);
	assert_int_equal(blob_put(t->a, data, 3000, id, NULL, &error), 1);
	path = blob_path(t->acct_a, id);
	file = read_file(path, &file_len);

	for (size_t off = 0; off < file_len; off++) {
		file[off] ^= 0x01;
		write_file(path, file, file_len);
		expect_damaged(t, id);
		file[off] ^= 0x01;
		/* Another bit pattern at the same offset. */
		file[off] ^= 0x80;
		write_file(path, file, file_len);
		expect_damaged(t, id);
		file[off] ^= 0x80;
	}
	for (size_t len = 0; len < file_len; len++) {
		write_file(path, file, len);
		expect_damaged(t, id);
	}
	/* Trailing garbage. */
	file[file_len] = 0;
	write_file(path, file, file_len + 1);
	expect_damaged(t, id);

	/* Restored: readable again. */
	write_file(path, file, file_len);
	assert_int_equal(blob_get(t->a, id, &out, &error), 0);
	assert_int_equal(out.used, 3000);
	assert_memory_equal(out.data, data, 3000);

	/* An impossible size on disk is refused before reading it. */
	int fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)BLOB_MAX_SIZE * 2), 0);
	close(fd);
	expect_damaged(t, id);

	/* A symlink in place of the file is not followed. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	expect_damaged(t, id);
	assert_false(blob_exists(t->a, id));

	buf_free(&out);
	i_free(file);
	i_free(path);
	i_free(data);
}

static void test_renamed(void **state)
{
	struct tmp *t = *state;
	uint8_t id1[BLOB_ID_LEN], id2[BLOB_ID_LEN];
	const char *error = NULL;
	struct buf out = BUF_INIT;
	char *p1, *p2;

	assert_int_equal(blob_put(t->a, "first message", 13, id1, NULL, &error),
			 1);
	assert_int_equal(blob_put(t->a, "other message", 13, id2, NULL, &error),
			 1);
	p1 = blob_path(t->acct_a, id1);
	p2 = blob_path(t->acct_a, id2);
	assert_int_equal(rename(p1, p2), 0);
	expect_damaged(t, id2);
	assert_int_equal(blob_get(t->a, id1, &out, &error), -1);
	assert_non_null(strstr(error, "is missing"));
	i_free(p1);
	i_free(p2);
}

static void grep_tree(const char *dir, const char *needle, unsigned int *hits,
		      unsigned int *files)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		char *path;
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		path = i_strdup_printf("%s/%s", dir, e->d_name);
		assert_int_equal(lstat(path, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			grep_tree(path, needle, hits, files);
		} else if (S_ISREG(st.st_mode)) {
			size_t len;
			uint8_t *data = read_file(path, &len);

			if (memmem(data, len, needle, strlen(needle)) != NULL)
				(*hits)++;
			(*files)++;
			i_free(data);
		}
		i_free(path);
	}
	closedir(d);
}

static void test_canary(void **state)
{
	struct tmp *t = *state;
	uint8_t id[BLOB_ID_LEN];
	const char *error = NULL;
	unsigned int hits = 0, files = 0;
	uint8_t *text = make_text(200000);
	static const char small[] = "Subject: " CANARY "\r\n\r\nhi\r\n";
	uint8_t mixed[4096];

	assert_int_equal(blob_put(t->a, text, 200000, id, NULL, &error), 1);
	assert_int_equal(
		blob_put(t->a, small, sizeof(small) - 1, id, NULL, &error), 1);
	randombytes_buf(mixed, sizeof(mixed));
	memcpy(mixed + 1000, CANARY, strlen(CANARY));
	assert_int_equal(blob_put(t->a, mixed, sizeof(mixed), id, NULL, &error),
			 1);
	grep_tree(t->dir, CANARY, &hits, &files);
	assert_int_equal(files, 3);
	assert_int_equal(hits, 0);
	i_free(text);
}

static void test_delete(void **state)
{
	struct tmp *t = *state;
	uint8_t id[BLOB_ID_LEN];
	const char *error = NULL;
	struct buf out = BUF_INIT;

	assert_int_equal(blob_put(t->a, "bye", 3, id, NULL, &error), 1);
	assert_true(blob_exists(t->a, id));
	assert_int_equal(blob_delete(t->a, id, &error), 0);
	assert_false(blob_exists(t->a, id));
	assert_int_equal(blob_get(t->a, id, &out, &error), -1);
	assert_non_null(strstr(error, "is missing"));
	/* Missing is not an error. */
	assert_int_equal(blob_delete(t->a, id, &error), 0);
	/* And it can come back. */
	assert_int_equal(blob_put(t->a, "bye", 3, id, NULL, &error), 1);
	assert_int_equal(blob_get(t->a, id, &out, &error), 0);
	assert_int_equal(out.used, 3);
	buf_free(&out);
}

struct foreach_ctx {
	uint8_t ids[40][BLOB_ID_LEN];
	uint64_t sizes[40];
	unsigned int n, seen[40], calls, stop_after;
};

static int foreach_cb(const uint8_t id[BLOB_ID_LEN], uint64_t file_size,
		      void *context)
{
	struct foreach_ctx *ctx = context;
	bool found = false;

	ctx->calls++;
	for (unsigned int i = 0; i < ctx->n; i++) {
		if (memcmp(ctx->ids[i], id, BLOB_ID_LEN) == 0) {
			assert_int_equal(file_size, ctx->sizes[i]);
			ctx->seen[i]++;
			found = true;
		}
	}
	assert_true(found);
	return ctx->stop_after != 0 && ctx->calls >= ctx->stop_after ? -1 : 0;
}

static void test_foreach(void **state)
{
	struct tmp *t = *state;
	struct foreach_ctx ctx;
	const char *error = NULL;
	char hex[BLOB_ID_HEX_LEN + 1];
	char *sub, *fresh, *stale, *junk, *wrong, *upper;
	struct timespec times[2];

	memset(&ctx, 0, sizeof(ctx));
	/* An empty store. */
	assert_int_equal(blob_foreach(t->a, foreach_cb, &ctx, &error), 0);
	assert_int_equal(ctx.calls, 0);

	ctx.n = 40;
	for (unsigned int i = 0; i < ctx.n; i++) {
		char body[64];
		int len = snprintf(body, sizeof(body), "message %u", i);

		assert_int_equal(blob_put(t->a, body, (size_t)len, ctx.ids[i],
					  &ctx.sizes[i], &error),
				 1);
	}
	blob_id_to_hex(ctx.ids[0], hex);
	sub = i_strdup_printf("%s/blobs/%.2s", t->acct_a, hex);
	fresh = i_strdup_printf("%s/.tmp-fresh", sub);
	stale = i_strdup_printf("%s/.tmp-stale", sub);
	junk = i_strdup_printf("%s/README", sub);
	/* A valid name in the wrong directory, and an upper-case name. */
	wrong = i_strdup_printf("%s/blobs/%.2s/%s", t->acct_a,
				hex[0] == '0' ? "11" : "00", hex);
	upper = i_strdup_printf("%s/blobs/%.2s/%s", t->acct_a, hex, hex);
	for (char *p = strrchr(upper, '/') + 1; *p != '\0'; p++) {
		if (*p >= 'a' && *p <= 'f')
			*p -= 'a' - 'A';
	}
	write_file(fresh, (const uint8_t *)"x", 1);
	write_file(stale, (const uint8_t *)"x", 1);
	write_file(junk, (const uint8_t *)"x", 1);
	write_file(upper, (const uint8_t *)"x", 1);
	char *wrong_dir = i_strndup(wrong, strrchr(wrong, '/') - wrong);
	(void)mkdir(wrong_dir, 0700);
	write_file(wrong, (const uint8_t *)"x", 1);
	times[0].tv_sec = times[1].tv_sec = time(NULL) - 7200;
	times[0].tv_nsec = times[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, stale, times, 0), 0);

	assert_int_equal(blob_foreach(t->a, foreach_cb, &ctx, &error), 0);
	assert_int_equal(ctx.calls, ctx.n);
	for (unsigned int i = 0; i < ctx.n; i++)
		assert_int_equal(ctx.seen[i], 1);
	/* The stale temporary file is gone, the fresh one (a writer at
	   work) and foreign files are left alone. */
	assert_int_equal(access(stale, F_OK), -1);
	assert_int_equal(access(fresh, F_OK), 0);
	assert_int_equal(access(junk, F_OK), 0);

	/* The callback stops the walk. */
	memset(ctx.seen, 0, sizeof(ctx.seen));
	ctx.calls = 0;
	ctx.stop_after = 3;
	error = NULL;
	assert_int_equal(blob_foreach(t->a, foreach_cb, &ctx, &error), -1);
	assert_int_equal(ctx.calls, 3);
	assert_non_null(error);

	i_free(wrong_dir);
	i_free(sub);
	i_free(fresh);
	i_free(stale);
	i_free(junk);
	i_free(wrong);
	i_free(upper);
}

static void test_hex(void **state)
{
	uint8_t id[BLOB_ID_LEN], id2[BLOB_ID_LEN];
	char hex[BLOB_ID_HEX_LEN + 1], bad[BLOB_ID_HEX_LEN + 2];

	for (unsigned int i = 0; i < BLOB_ID_LEN; i++)
		id[i] = (uint8_t)(i * 37 + 5);
	blob_id_to_hex(id, hex);
	assert_int_equal(strlen(hex), BLOB_ID_HEX_LEN);
	assert_int_equal(blob_id_from_hex(hex, id2), 0);
	assert_memory_equal(id, id2, BLOB_ID_LEN);

	assert_int_equal(blob_id_from_hex("", id2), -1);
	assert_int_equal(blob_id_from_hex("0a", id2), -1);
	memcpy(bad, hex, sizeof(hex));
	bad[10] = 'g';
	assert_int_equal(blob_id_from_hex(bad, id2), -1);
	memcpy(bad, hex, sizeof(hex));
	bad[3] = hex[3] >= 'a' ? (char)(hex[3] - 32) : 'A';
	assert_int_equal(blob_id_from_hex(bad, id2), -1);
	memcpy(bad, hex, sizeof(hex));
	bad[BLOB_ID_HEX_LEN] = '0';
	bad[BLOB_ID_HEX_LEN + 1] = '\0';
	assert_int_equal(blob_id_from_hex(bad, id2), -1);
	memcpy(bad, hex, sizeof(hex));
	bad[BLOB_ID_HEX_LEN - 1] = '\0';
	assert_int_equal(blob_id_from_hex(bad, id2), -1);
	/* Failures leave the output alone. */
	assert_memory_equal(id, id2, BLOB_ID_LEN);
}

static void test_limits(void **state)
{
	struct tmp *t = *state;
	uint8_t id[BLOB_ID_LEN];
	const char *error = NULL;
	static const uint8_t small[16];

	/* The length is checked before the data is touched. */
	assert_int_equal(blob_put(t->a, small, (size_t)BLOB_MAX_SIZE + 1, id,
				  NULL, &error),
			 -1);
	assert_non_null(strstr(error, "limit"));
}

#define WRITERS 4
#define SHARED_BLOBS 25

static void test_concurrent(void **state)
{
	struct tmp *t = *state;
	uint8_t ids[SHARED_BLOBS][BLOB_ID_LEN];
	const char *error = NULL;
	pid_t pids[WRITERS];
	struct buf out = BUF_INIT;

	for (unsigned int w = 0; w < WRITERS; w++) {
		pids[w] = fork();
		assert_true(pids[w] >= 0);
		if (pids[w] == 0) {
			struct blob_store *bs =
				blob_store_open(t->acct_a, key_a, &error);
			int rc = bs == NULL ? 1 : 0;

			for (unsigned int i = 0; rc == 0 && i < SHARED_BLOBS;
			     i++) {
				uint8_t *data = make_text(20000 + i);
				uint8_t id[BLOB_ID_LEN];

				if (blob_put(bs, data, 20000 + i, id, NULL,
					     &error) < 0)
					rc = 1;
				i_free(data);
			}
			blob_store_close(&bs);
			_exit(rc);
		}
	}
	for (unsigned int w = 0; w < WRITERS; w++) {
		int status;

		assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	for (unsigned int i = 0; i < SHARED_BLOBS; i++) {
		uint8_t *data = make_text(20000 + i);

		buf_reset(&out);
		blob_id_compute(t->a, data, 20000 + i, ids[i]);
		assert_int_equal(blob_get(t->a, ids[i], &out, &error), 0);
		assert_int_equal(out.used, 20000 + i);
		assert_memory_equal(out.data, data, 20000 + i);
		i_free(data);
	}
	/* One file per blob, no temporary files left, no plaintext. */
	unsigned int files = 0, hits = 0;
	grep_tree(t->acct_a, CANARY, &hits, &files);
	assert_int_equal(files, SHARED_BLOBS);
	assert_int_equal(hits, 0);
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_dedup, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_keys_differ, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_tamper, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_renamed, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_canary, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_delete, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_foreach, tmp_setup,
						tmp_teardown),
		cmocka_unit_test(test_hex),
		cmocka_unit_test_setup_teardown(test_limits, tmp_setup,
						tmp_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, tmp_setup,
						tmp_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
