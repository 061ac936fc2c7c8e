/* bench-store.c - the store benchmark of issue #3 (not a test; not run by
   CI): on a generated corpus of N messages (default 10,000: short and long
   text, HTML newsletters, attachments, a few exact duplicates), measures
   in one run
     - appends per second (blob_put + message_index_build + batched
       store_append_many, the spool merge's path) and full-mailbox fetch
       throughput (store_fetch of everything + blob_get of each), once with
       encryption on and once with the same code path with encryption off;
     - compression and dedup savings (blob bytes on disk vs raw bytes);
     - word search (STORE_SEARCH_WORDS over all mailboxes): median and p95
       latency of Q queries (default 100).
   "Encryption off" is done here, not in the product: this program defines
   libsodium's XChaCha20-Poly1305 entry points that blob.c and
   sqlite-vfs-crypt.c call, and while bench_plain is set they copy instead
   of encrypting (zero tag); otherwise they forward to libsodium through
   dlsym(RTLD_NEXT). Every other line of the store, VFS and blob code runs
   unchanged, and nothing in the product can turn encryption off. See
   bench/README.md. */

#include "lib.h"
#include "buf.h"
#include "pool.h"
#include "blob.h"
#include "message-index.h"
#include "store.h"

#include <dlfcn.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#define BENCH_BATCH 100

static bool bench_plain;

/* ---- encryption switch (symbol interposition) ---- */

typedef int aead_encrypt_fn(unsigned char *, unsigned long long *,
			    const unsigned char *, unsigned long long,
			    const unsigned char *, unsigned long long,
			    const unsigned char *, const unsigned char *,
			    const unsigned char *);
typedef int aead_decrypt_fn(unsigned char *, unsigned long long *,
			    unsigned char *, const unsigned char *,
			    unsigned long long, const unsigned char *,
			    unsigned long long, const unsigned char *,
			    const unsigned char *);
typedef int aead_encrypt_detached_fn(unsigned char *, unsigned char *,
				     unsigned long long *,
				     const unsigned char *, unsigned long long,
				     const unsigned char *, unsigned long long,
				     const unsigned char *,
				     const unsigned char *,
				     const unsigned char *);
typedef int aead_decrypt_detached_fn(unsigned char *, unsigned char *,
				     const unsigned char *, unsigned long long,
				     const unsigned char *,
				     const unsigned char *, unsigned long long,
				     const unsigned char *,
				     const unsigned char *);

/* Looks up libsodium's own function. POSIX lets dlsym's object pointer
   be read as a function pointer; memcpy keeps ISO C quiet about it. */
static void bench_real(const char *name, void *fn_r, size_t size)
{
	void *fn = dlsym(RTLD_NEXT, name);

	if (fn == NULL || size != sizeof(fn))
		i_panic("dlsym(%s) failed", name);
	memcpy(fn_r, &fn, sizeof(fn));
}

int crypto_aead_xchacha20poly1305_ietf_encrypt(
	unsigned char *c, unsigned long long *clen_p, const unsigned char *m,
	unsigned long long mlen, const unsigned char *ad,
	unsigned long long adlen, const unsigned char *nsec,
	const unsigned char *npub, const unsigned char *k)
{
	static aead_encrypt_fn *real;

	if (!bench_plain) {
		if (real == NULL)
			bench_real(__func__, &real, sizeof(real));
		return real(c, clen_p, m, mlen, ad, adlen, nsec, npub, k);
	}
	memmove(c, m, mlen);
	memset(c + mlen, 0, crypto_aead_xchacha20poly1305_ietf_ABYTES);
	if (clen_p != NULL)
		*clen_p = mlen + crypto_aead_xchacha20poly1305_ietf_ABYTES;
	return 0;
}

int crypto_aead_xchacha20poly1305_ietf_decrypt(
	unsigned char *m, unsigned long long *mlen_p, unsigned char *nsec,
	const unsigned char *c, unsigned long long clen,
	const unsigned char *ad, unsigned long long adlen,
	const unsigned char *npub, const unsigned char *k)
{
	static aead_decrypt_fn *real;

	if (!bench_plain) {
		if (real == NULL)
			bench_real(__func__, &real, sizeof(real));
		return real(m, mlen_p, nsec, c, clen, ad, adlen, npub, k);
	}
	if (clen < crypto_aead_xchacha20poly1305_ietf_ABYTES)
		return -1;
	clen -= crypto_aead_xchacha20poly1305_ietf_ABYTES;
	memmove(m, c, clen);
	if (mlen_p != NULL)
		*mlen_p = clen;
	return 0;
}

int crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
	unsigned char *c, unsigned char *mac, unsigned long long *maclen_p,
	const unsigned char *m, unsigned long long mlen,
	const unsigned char *ad, unsigned long long adlen,
	const unsigned char *nsec, const unsigned char *npub,
	const unsigned char *k)
{
	static aead_encrypt_detached_fn *real;

	if (!bench_plain) {
		if (real == NULL)
			bench_real(__func__, &real, sizeof(real));
		return real(c, mac, maclen_p, m, mlen, ad, adlen, nsec, npub,
			    k);
	}
	memmove(c, m, mlen);
	memset(mac, 0, crypto_aead_xchacha20poly1305_ietf_ABYTES);
	if (maclen_p != NULL)
		*maclen_p = crypto_aead_xchacha20poly1305_ietf_ABYTES;
	return 0;
}

int crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
	unsigned char *m, unsigned char *nsec, const unsigned char *c,
	unsigned long long clen, const unsigned char *mac,
	const unsigned char *ad, unsigned long long adlen,
	const unsigned char *npub, const unsigned char *k)
{
	static aead_decrypt_detached_fn *real;

	if (!bench_plain) {
		if (real == NULL)
			bench_real(__func__, &real, sizeof(real));
		return real(m, nsec, c, clen, mac, ad, adlen, npub, k);
	}
	memmove(m, c, clen);
	return 0;
}

/* ---- corpus ---- */

struct bench_rng {
	uint64_t s;
};

static uint64_t rng_next(struct bench_rng *r)
{
	/* splitmix64 */
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned int rng_below(struct bench_rng *r, unsigned int n)
{
	return (unsigned int)(rng_next(r) % n);
}

#define VOCAB_SIZE 8000
static char *vocab[VOCAB_SIZE];

static void vocab_init(struct bench_rng *r)
{
	static const char *const syl[] = {
		"ka", "lo",  "mer", "tin", "sa",   "ve",   "ro",  "dan",
		"pe", "li",  "ost", "gra", "fu",   "ne",   "bel", "shi",
		"to", "wen", "ar",  "ic",  "um",   "port", "mat", "ser",
		"ly", "ex",  "con", "pro", "ment", "tion",
	};
	for (unsigned int i = 0; i < VOCAB_SIZE; i++) {
		char w[32] = "";
		unsigned int n = 1 + rng_below(r, 3) + (i > 500);
		for (unsigned int j = 0; j < n; j++) {
			size_t len = strlen(w);
			snprintf(w + len, sizeof(w) - len, "%s",
				 syl[rng_below(r, N_ELEMENTS(syl))]);
		}
		vocab[i] = i_strdup_printf("%s%u", w, i % 7 == 0 ? i : 0);
		if (i % 7 != 0)
			vocab[i][strlen(vocab[i]) - 1] = '\0';
	}
}

/* Zipf-like: rank drawn log-uniformly. */
static const char *word(struct bench_rng *r)
{
	double u = (double)(rng_next(r) >> 11) / (double)(1ULL << 53);
	unsigned int rank = (unsigned int)exp(u * log((double)VOCAB_SIZE));
	return vocab[rank >= VOCAB_SIZE ? VOCAB_SIZE - 1 : rank];
}

static void text(struct buf *b, struct bench_rng *r, unsigned int words,
		 bool html)
{
	unsigned int col = 0;

	for (unsigned int i = 0; i < words; i++) {
		const char *w = word(r);
		if (html && i % 40 == 0)
			buf_append_str(b, i == 0 ? "<p>" : "</p>\n<p>");
		if (html && i % 13 == 5) {
			buf_printf(b,
				   "<a href=\"https://example.com/%s\">%s</a> ",
				   w, w);
			col += 40;
		} else {
			buf_printf(b, "%s%s", w, i % 11 == 10 ? ". " : " ");
			col += (unsigned int)strlen(w) + 1;
		}
		if (col > 66) {
			buf_append_str(b, "\r\n");
			col = 0;
		}
	}
	buf_append_str(b, html ? "</p>\r\n" : "\r\n");
}

static void headers(struct buf *b, struct bench_rng *r, unsigned int i,
		    const char *ctype)
{
	char dkim[120];
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	for (size_t j = 0; j < sizeof(dkim) - 1; j++)
		dkim[j] = b64[rng_below(r, 64)];
	dkim[sizeof(dkim) - 1] = '\0';
	buf_printf(b,
		   "Return-Path: <%s@lists.example.org>\r\n"
		   "Received: from mx%u.example.org (mx%u.example.org "
		   "[192.0.2.%u])\r\n\tby mail.example.com with ESMTPS id "
		   "%llx\r\n\tfor <me@example.com>; Mon, 3 Mar 2025 10:%02u:00 "
		   "+0000\r\n"
		   "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s1;\r\n"
		   "\tb=%s\r\n"
		   "From: %s %s <%s@example.org>\r\n"
		   "To: me@example.com\r\n"
		   "Subject: %s %s %s\r\n"
		   "Date: Mon, 3 Mar 2025 10:%02u:00 +0000\r\n"
		   "Message-ID: <%u.%llx@example.org>\r\n"
		   "MIME-Version: 1.0\r\n"
		   "Content-Type: %s\r\n\r\n",
		   word(r), i % 9, i % 9, i % 250,
		   (unsigned long long)rng_next(r), i % 60, dkim, word(r),
		   word(r), word(r), word(r), word(r), word(r), i % 60, i,
		   (unsigned long long)rng_next(r), ctype);
}

static void make_message(struct buf *b, struct bench_rng *r, unsigned int i)
{
	unsigned int kind = rng_below(r, 100);

	buf_reset(b);
	if (kind < 50) {
		headers(b, r, i, "text/plain; charset=utf-8");
		text(b, r, 80 + rng_below(r, 600), false);
	} else if (kind < 80) {
		headers(b, r, i, "multipart/alternative; boundary=\"=_alt\"");
		buf_append_str(b, "--=_alt\r\nContent-Type: text/plain; "
				  "charset=utf-8\r\n\r\n");
		text(b, r, 300 + rng_below(r, 900), false);
		buf_append_str(b, "--=_alt\r\nContent-Type: text/html; "
				  "charset=utf-8\r\n\r\n<html><head><style>"
				  "p { font-family: sans-serif; }</style>"
				  "</head><body>\r\n");
		text(b, r, 300 + rng_below(r, 900), true);
		buf_append_str(b, "</body></html>\r\n--=_alt--\r\n");
	} else {
		static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij"
					  "klmnopqrstuvwxyz0123456789+/";
		headers(b, r, i, "multipart/mixed; boundary=\"=_mix\"");
		buf_append_str(b, "--=_mix\r\nContent-Type: text/plain; "
				  "charset=utf-8\r\n\r\n");
		text(b, r, 50 + rng_below(r, 200), false);
		buf_printf(b,
			   "--=_mix\r\nContent-Type: application/pdf; "
			   "name=\"%s.pdf\"\r\nContent-Disposition: "
			   "attachment; filename=\"%s.pdf\"\r\n"
			   "Content-Transfer-Encoding: base64\r\n\r\n",
			   word(r), word(r));
		/* Attachments are mostly compressed already (PDF, JPEG):
		   random bytes, base64-encoded. */
		unsigned int lines = 100 + rng_below(r, 2000);
		for (unsigned int l = 0; l < lines; l++) {
			char line[77];
			for (unsigned int c = 0; c < 76; c++)
				line[c] = b64[rng_below(r, 64)];
			line[76] = '\0';
			buf_printf(b, "%s\r\n", line);
		}
		buf_append_str(b, "--=_mix--\r\n");
	}
}

/* ---- helpers ---- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *error)
{
	fprintf(stderr, "bench-store: %s: %s\n", what, error);
	exit(1);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static uint64_t disk_bytes;
static int du_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F)
		disk_bytes += (uint64_t)st->st_size;
	return 0;
}

static uint64_t du(const char *path)
{
	disk_bytes = 0;
	nftw(path, du_entry, 16, FTW_PHYS);
	return disk_bytes;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct bench_result {
	double append_secs, fetch_secs;
	uint64_t raw_bytes, dup_bytes, fetched_bytes, blob_disk, db_disk;
	unsigned int new_blobs;
	double search_median_ms, search_p95_ms;
	unsigned int search_hits;
};

/* One full run in dir: appends, fetch, (search when encrypted). */
static void bench_run(const char *dir, unsigned int n, unsigned int queries,
		      uint64_t seed, bool do_search, struct bench_result *res)
{
	uint8_t key[32];
	const char *error;
	struct bench_rng rng = { seed };
	struct buf msg = BUF_INIT;
	pool_t pool = pool_create("bench", 1 << 20);
	struct store_append appends[BENCH_BATCH];
	uint32_t uids[BENCH_BATCH];
	char *account_dir = i_strdup_printf("%s/accounts/1", dir);
	struct store_mailbox box;

	memset(res, 0, sizeof(*res));
	memset(key, 0x42, sizeof(key));
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		die(dir, strerror(errno));
	struct store *store = store_open(dir, 1, key, &error);
	if (store == NULL)
		die("store_open", error);
	struct blob_store *blobs = blob_store_open(account_dir, key, &error);
	if (blobs == NULL)
		die("blob_store_open", error);
	if (store_mailbox_find_special(store, STORE_SPECIAL_INBOX, pool, &box,
				       &error) <= 0)
		die("INBOX", "not found");
	uint64_t inbox = box.id, archive;
	if (store_mailbox_find_special(store, STORE_SPECIAL_ARCHIVE, pool, &box,
				       &error) <= 0)
		die("Archive", "not found");
	archive = box.id;

	/* Generation is not timed: each batch is built first. */
	struct buf corpus[BENCH_BATCH];
	for (unsigned int i = 0; i < BENCH_BATCH; i++)
		corpus[i] = BUF_INIT;
	double t_append = 0;
	for (unsigned int done = 0; done < n;) {
		unsigned int count =
			n - done < BENCH_BATCH ? n - done : BENCH_BATCH;
		for (unsigned int i = 0; i < count; i++) {
			/* 4% exact copies of the previous message (the
			   same mail filed twice) for dedup. */
			if (i > 0 && rng_below(&rng, 100) < 4) {
				buf_reset(&corpus[i]);
				buf_append_span(&corpus[i],
						buf_span(&corpus[i - 1]));
			} else {
				make_message(&corpus[i], &rng, done + i);
			}
		}
		double t0 = now();
		for (unsigned int i = 0; i < count; i++) {
			struct store_append *a = &appends[i];
			struct message_index *index =
				p_new(pool, struct message_index, 1);
			int ret;

			memset(a, 0, sizeof(*a));
			ret = blob_put(blobs, corpus[i].data, corpus[i].used,
				       a->blob_id, NULL, &error);
			if (ret < 0)
				die("blob_put", error);
			res->new_blobs += ret;
			if (ret == 0)
				res->dup_bytes += corpus[i].used;
			message_index_build(pool, corpus[i].data,
					    corpus[i].used, index);
			a->mailbox_id = (done + i) % 5 == 4 ? archive : inbox;
			a->flags = (done + i) % 3 == 0 ? 0 : STORE_FLAG_SEEN;
			a->internaldate = 1700000000 + (int64_t)(done + i);
			a->size = corpus[i].used;
			a->index = index;
			res->raw_bytes += corpus[i].used;
		}
		if (store_append_many(store, appends, count, uids, &error) < 0)
			die("store_append_many", error);
		t_append += now() - t0;
		pool_clear(pool);
		done += count;
	}
	res->append_secs = t_append;

	/* Fetch everything: metadata, then every blob. */
	double t0 = now();
	uint64_t boxes[2] = { inbox, archive };
	for (unsigned int b = 0; b < 2; b++) {
		struct store_message *msgs;
		unsigned int count;

		pool_clear(pool);
		if (store_fetch(store, boxes[b], 1, 0, pool, &msgs, &count,
				&error) < 0)
			die("store_fetch", error);
		for (unsigned int i = 0; i < count; i++) {
			buf_reset(&msg);
			if (blob_get(blobs, msgs[i].blob_id, &msg, &error) < 0)
				die("blob_get", error);
			res->fetched_bytes += msg.used;
		}
	}
	res->fetch_secs = now() - t0;

	if (do_search) {
		double *lat = i_new(double, queries);
		for (unsigned int q = 0; q < queries; q++) {
			uint64_t *mboxes;
			uint32_t *found;
			unsigned int count;
			/* Half single words, half two-word queries. */
			const char *query =
				q % 2 == 0 ? p_strdup(pool, word(&rng))
					   : p_strdup_printf(pool, "%s %s",
							     word(&rng),
							     word(&rng));
			double s0 = now();
			if (store_search(store, 0, STORE_SEARCH_TEXT,
					 STORE_SEARCH_WORDS, query, pool,
					 &mboxes, &found, &count, &error) < 0)
				die("store_search", error);
			lat[q] = (now() - s0) * 1000.0;
			res->search_hits += count;
			pool_clear(pool);
		}
		qsort(lat, queries, sizeof(*lat), cmp_double);
		res->search_median_ms = lat[queries / 2];
		res->search_p95_ms = lat[(queries * 95) / 100 >= queries
						 ? queries - 1
						 : (queries * 95) / 100];
		free(lat);
	}
	blob_store_close(&blobs);
	store_close(&store);
	char *blob_dir = i_strdup_printf("%s/blobs", account_dir);
	res->blob_disk = du(blob_dir);
	res->db_disk = du(account_dir) - res->blob_disk;
	free(blob_dir);
	for (unsigned int i = 0; i < BENCH_BATCH; i++)
		buf_free(&corpus[i]);
	buf_free(&msg);
	pool_unref(&pool);
	free(account_dir);
}

static void usage(void)
{
	fprintf(stderr, "usage: bench-store [-n MESSAGES] [-q QUERIES] "
			"[-d DIR] [-s SEED] [-p]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned int n = 10000, queries = 100;
	uint64_t seed = 1;
	const char *base = NULL;
	bool plain_first = false;
	int opt;

	while ((opt = getopt(argc, argv, "n:q:d:s:p")) != -1) {
		switch (opt) {
		case 'n':
			n = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'q':
			queries = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'd':
			base = optarg;
			break;
		case 's':
			seed = strtoull(optarg, NULL, 10);
			break;
		case 'p':
			plain_first = true;
			break;
		default:
			usage();
		}
	}
	if (n == 0 || queries == 0)
		usage();
	if (sodium_init() < 0)
		die("sodium_init", "failed");
	struct bench_rng vrng = { 12345 };
	vocab_init(&vrng);

	char tmpl[4096];
	snprintf(tmpl, sizeof(tmpl), "%s/bench-store.XXXXXX",
		 base != NULL ? base : ".");
	if (mkdtemp(tmpl) == NULL)
		die(tmpl, strerror(errno));
	char *enc_dir = i_strdup_printf("%s/encrypted", tmpl);
	char *plain_dir = i_strdup_printf("%s/plain", tmpl);
	struct bench_result enc, plain;

	printf("bench-store: %u messages, %u queries, data in %s\n", n, queries,
	       tmpl);
	fflush(stdout);
	/* Order matters (page cache, allocator, disk state): -p runs the
	   plain pass first. */
	if (plain_first) {
		bench_plain = true;
		bench_run(plain_dir, n, queries, seed, false, &plain);
	}
	bench_plain = false;
	bench_run(enc_dir, n, queries, seed, true, &enc);
	if (!plain_first) {
		bench_plain = true;
		bench_run(plain_dir, n, queries, seed, false, &plain);
	}
	bench_plain = false;

	double enc_app = n / enc.append_secs, pl_app = n / plain.append_secs;
	double enc_f = n / enc.fetch_secs, pl_f = n / plain.fetch_secs;
	double mb = 1024.0 * 1024.0;
	printf("\n%-28s %14s %14s %10s\n", "", "encrypted", "plain",
	       "overhead");
	printf("%-28s %14.0f %14.0f %9.1f%%\n", "appends/s", enc_app, pl_app,
	       100.0 * (enc.append_secs / plain.append_secs - 1.0));
	printf("%-28s %14.0f %14.0f %9.1f%%\n", "fetch messages/s", enc_f, pl_f,
	       100.0 * (enc.fetch_secs / plain.fetch_secs - 1.0));
	printf("%-28s %14.1f %14.1f\n", "fetch MB/s",
	       enc.fetched_bytes / mb / enc.fetch_secs,
	       plain.fetched_bytes / mb / plain.fetch_secs);
	printf("%-28s %14.1f %14.1f\n", "store.db (+wal) MB", enc.db_disk / mb,
	       plain.db_disk / mb);
	printf("%-28s %14.1f %14.1f\n", "blobs on disk MB", enc.blob_disk / mb,
	       plain.blob_disk / mb);

	double raw = (double)enc.raw_bytes;
	printf("\ncorpus: %.1f MB raw, %u distinct blobs of %u messages\n",
	       raw / mb, enc.new_blobs, n);
	printf("%-40s %9.1f%%  (goal >= 15%%: %s)\n",
	       "blobs on disk smaller than raw by",
	       100.0 * (1.0 - (double)enc.blob_disk / raw),
	       (double)enc.blob_disk <= 0.85 * raw ? "met" : "NOT met");
	printf("%-40s %9.1f%%\n", "  of which dedup (raw bytes not stored)",
	       100.0 * (double)enc.dup_bytes / raw);
	printf("%-40s %+8.1f%%  (store.db and its FTS indexes too)\n",
	       "blobs + store.db vs raw",
	       100.0 * ((double)(enc.blob_disk + enc.db_disk) / raw - 1.0));
	printf("%-40s %9.1f%%  (goal <= 25%%: %s)\n",
	       "encryption overhead, appends",
	       100.0 * (enc.append_secs / plain.append_secs - 1.0),
	       enc.append_secs <= 1.25 * plain.append_secs ? "met" : "NOT met");
	printf("%-40s %9.1f%%  (goal <= 25%%: %s)\n",
	       "encryption overhead, fetch",
	       100.0 * (enc.fetch_secs / plain.fetch_secs - 1.0),
	       enc.fetch_secs <= 1.25 * plain.fetch_secs ? "met" : "NOT met");
	printf("%-40s %7.2f ms  p95 %.2f ms (goal median < 50 ms: %s)\n",
	       "word search median", enc.search_median_ms, enc.search_p95_ms,
	       enc.search_median_ms < 50.0 ? "met" : "NOT met");
	printf("%-40s %9u\n", "  total hits of the queries", enc.search_hits);

	nftw(tmpl, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(enc_dir);
	free(plain_dir);
	for (unsigned int i = 0; i < VOCAB_SIZE; i++)
		free(vocab[i]);
	return 0;
}
