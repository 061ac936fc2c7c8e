/* test-vault-dkim.c - vault-dkim.c against a real directory.db (in a
   temporary directory): the domain's active keys are listed Ed25519
   first; both signatures verify with the public keys (OpenSSL); unwrapped
   keys are cached; a domain without keys, an unknown selector, a selector
   of another algorithm and a key that is no longer active are NO_KEY; a
   master key that does not open the keys is TEMPFAIL; rotation (pending
   -> active) switches the keys at the next question; malformed frames
   (short digest, no or too many items, trailing bytes, oversized names)
   are refused. Then vault_main() forked as a process, spoken to over
   IPC_VAULT_DKIM_KEYS / IPC_VAULT_DKIM_SIGN. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "vault.h"
#include "vault-dkim.h"
#include "directory.h"
#include "dkim.h"
#include "dkim-wrap.h"
#include "ipc.h"
#include "pool.h"
#include "settings.h"
#include "test-vault-common.h"

#include <openssl/rsa.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

struct fixture {
	char tmpdir[64];
	struct directory *dir;
	uint8_t master_key[MASTER_KEY_LEN];
	/* The active keys of example.org: [0] Ed25519, [1] RSA. */
	EVP_PKEY *keys[2];
	const char *selectors[2];
};

static struct fixture fix;

/* Adds an Ed25519 and an RSA key under prefix+"e"/"r" in state; the keys
   are returned in keys_r (caller frees). */
static void add_pair(const char *prefix, const char *state, EVP_PKEY *keys_r[2])
{
	static const enum dkim_algorithm algs[2] = { DKIM_ALG_ED25519_SHA256,
						     DKIM_ALG_RSA_SHA256 };
	static const char *const names[2] = { "ed25519", "rsa" };
	struct directory_dkim_new_key nk[2];
	struct buf wrapped[2] = { BUF_INIT, BUF_INIT };
	pool_t pool = pool_create("test", 1024);
	const char *error;

	for (unsigned int i = 0; i < 2; i++) {
		keys_r[i] = dkim_key_generate(algs[i]);
		nk[i].selector = p_strdup_printf(pool, "%s%c", prefix,
						 i == 0 ? 'e' : 'r');
		nk[i].algorithm = names[i];
		nk[i].public_record =
			dkim_key_dns_record(pool, keys_r[i], algs[i]);
		assert_int_equal(dkim_wrap_key(fix.master_key, "example.org",
					       nk[i].selector, keys_r[i],
					       &wrapped[i], &error),
				 0);
		nk[i].wrapped = wrapped[i].data;
		nk[i].wrapped_len = wrapped[i].used;
	}
	if (directory_dkim_key_add(fix.dir, "example.org", nk, 2, state,
				   &error) < 0)
		fail_msg("directory_dkim_key_add: %s", error);
	buf_free(&wrapped[0]);
	buf_free(&wrapped[1]);
	pool_unref(&pool);
}

static int group_setup(void **state ATTR_UNUSED)
{
	struct test_vault_data data;

	snprintf(fix.tmpdir, sizeof(fix.tmpdir), "/tmp/marmot-vdkim-XXXXXX");
	if (mkdtemp(fix.tmpdir) == NULL)
		return -1;
	if (test_vault_populate(fix.tmpdir, &data) < 0)
		return -1;
	fix.dir = data.dir;
	memcpy(fix.master_key, data.master_key, MASTER_KEY_LEN);
	add_pair("s1", "active", fix.keys);
	fix.selectors[0] = "s1e";
	fix.selectors[1] = "s1r";
	return 0;
}

static int group_teardown(void **state ATTR_UNUSED)
{
	EVP_PKEY_free(fix.keys[0]);
	EVP_PKEY_free(fix.keys[1]);
	directory_close(&fix.dir);
	return test_remove_tree(fix.tmpdir);
}

static bool verify(EVP_PKEY *key, enum dkim_algorithm alg,
		   const uint8_t digest[32], struct span sig)
{
	bool ok;

	if (alg == DKIM_ALG_ED25519_SHA256) {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();

		ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
		     EVP_DigestVerify(ctx, sig.p, sig.len, digest, 32) == 1;
		EVP_MD_CTX_free(ctx);
	} else {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);

		ok = EVP_PKEY_verify_init(ctx) == 1 &&
		     EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) ==
			     1 &&
		     EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
		     EVP_PKEY_verify(ctx, sig.p, sig.len, digest, 32) == 1;
		EVP_PKEY_CTX_free(ctx);
	}
	return ok;
}

/* Parses the single frame in buf (which must hold exactly one). */
static void one_frame(const struct buf *b, struct ipc_frame *frame_r)
{
	const char *error;
	size_t consumed;

	assert_int_equal(
		ipc_frame_parse(buf_span(b), frame_r, &consumed, &error), 1);
	assert_int_equal(consumed, b->used);
}

struct sign_item {
	const char *selector;
	enum dkim_algorithm alg;
	size_t digest_len;
};

static void build_sign(struct buf *out, uint32_t id, const char *domain,
		       const struct sign_item *items, unsigned int n,
		       const uint8_t digest[32])
{
	size_t off = ipc_msg_begin(out, IPC_VAULT_DKIM_SIGN, id);

	ipc_put_str(out, domain);
	ipc_put_u32(out, n);
	for (unsigned int i = 0; i < n; i++) {
		ipc_put_str(out, items[i].selector);
		ipc_put_u32(out, (uint32_t)items[i].alg);
		ipc_put_bytes(out, digest, items[i].digest_len);
	}
	ipc_msg_finish(out, off);
}

/* Sends one SIGN to vd; returns the status, the signatures in sigs_r
   (copied, up to 2). */
static uint32_t sign(struct vault_dkim *vd, const char *domain,
		     const struct sign_item *items, unsigned int n,
		     const uint8_t digest[32], uint8_t sigs_r[2][512],
		     size_t sig_lens_r[2])
{
	struct buf in = BUF_INIT, out = BUF_INIT;
	struct ipc_frame frame;
	struct ipc_reader r;
	const char *error;
	uint32_t status, count;

	build_sign(&in, 7, domain, items, n, digest);
	one_frame(&in, &frame);
	assert_int_equal(vault_dkim_handle_sign(vd, &frame, &out, &error), 0);
	one_frame(&out, &frame);
	assert_int_equal(frame.type, IPC_FRONT_DKIM_SIGN_REPLY);
	assert_int_equal(frame.id, 7);
	ipc_reader_init(&r, &frame);
	status = ipc_get_u32(&r);
	count = ipc_get_u32(&r);
	assert_int_equal(count, status == IPC_DKIM_OK ? n : 0);
	assert_true(status == IPC_DKIM_OK || error != NULL);
	for (uint32_t i = 0; i < count; i++) {
		struct span s = ipc_get_bytes(&r);

		assert_true(s.len <= 512);
		if (i < 2) {
			memcpy(sigs_r[i], s.p, s.len);
			sig_lens_r[i] = s.len;
		}
	}
	assert_int_equal(ipc_end(&r), 0);
	buf_free(&in);
	buf_free(&out);
	return status;
}

/* KEYS for domain: returns the count, selectors/algorithms copied. */
static unsigned int keys(struct vault_dkim *vd, const char *domain,
			 char sels_r[4][64], uint32_t algs_r[4])
{
	struct buf in = BUF_INIT, out = BUF_INIT;
	pool_t pool = pool_create("test", 256);
	struct ipc_frame frame;
	struct ipc_reader r;
	const char *error;
	uint32_t count;
	size_t off;

	off = ipc_msg_begin(&in, IPC_VAULT_DKIM_KEYS, 3);
	ipc_put_str(&in, domain);
	ipc_msg_finish(&in, off);
	one_frame(&in, &frame);
	assert_int_equal(vault_dkim_handle_keys(vd, &frame, &out, &error), 0);
	one_frame(&out, &frame);
	assert_int_equal(frame.type, IPC_FRONT_DKIM_KEYS_REPLY);
	ipc_reader_init(&r, &frame);
	assert_int_equal(ipc_get_u32(&r), IPC_DKIM_OK);
	count = ipc_get_u32(&r);
	assert_true(count <= 4);
	for (uint32_t i = 0; i < count; i++) {
		snprintf(sels_r[i], 64, "%s", ipc_get_str(&r, pool));
		algs_r[i] = ipc_get_u32(&r);
	}
	assert_int_equal(ipc_end(&r), 0);
	buf_free(&in);
	buf_free(&out);
	pool_unref(&pool);
	return count;
}

static void test_keys_and_sign(void **state ATTR_UNUSED)
{
	struct vault_dkim *vd = vault_dkim_create(fix.dir, fix.master_key);
	const struct sign_item items[2] = {
		{ "s1e", DKIM_ALG_ED25519_SHA256, 32 },
		{ "s1r", DKIM_ALG_RSA_SHA256, 32 },
	};
	uint8_t digest[32], sigs[2][512];
	size_t lens[2];
	char sels[4][64];
	uint32_t algs[4];

	assert_int_equal(keys(vd, "Example.ORG", sels, algs), 2);
	assert_string_equal(sels[0], "s1e");
	assert_int_equal(algs[0], DKIM_ALG_ED25519_SHA256);
	assert_string_equal(sels[1], "s1r");
	assert_int_equal(algs[1], DKIM_ALG_RSA_SHA256);
	assert_int_equal(keys(vd, "example.net", sels, algs), 0);
	assert_int_equal(keys(vd, "not a domain", sels, algs), 0);

	memset(digest, 0x42, sizeof(digest));
	assert_int_equal(sign(vd, "example.org", items, 2, digest, sigs, lens),
			 IPC_DKIM_OK);
	assert_int_equal(lens[0], 64);
	assert_int_equal(lens[1], 256);
	assert_true(verify(fix.keys[0], DKIM_ALG_ED25519_SHA256, digest,
			   span_make(sigs[0], lens[0])));
	assert_true(verify(fix.keys[1], DKIM_ALG_RSA_SHA256, digest,
			   span_make(sigs[1], lens[1])));
	/* Not with another digest, not with the other key. */
	digest[0] ^= 1;
	assert_false(verify(fix.keys[0], DKIM_ALG_ED25519_SHA256, digest,
			    span_make(sigs[0], lens[0])));
	assert_int_equal(vault_dkim_cache_count(vd), 2);
	/* Again: from the cache, still right. */
	assert_int_equal(
		sign(vd, "EXAMPLE.org", items + 1, 1, digest, sigs, lens),
		IPC_DKIM_OK);
	assert_true(verify(fix.keys[1], DKIM_ALG_RSA_SHA256, digest,
			   span_make(sigs[0], lens[0])));
	assert_int_equal(vault_dkim_cache_count(vd), 2);
	vault_dkim_destroy(&vd);
	assert_null(vd);
	vault_dkim_destroy(&vd);
}

static void test_no_key(void **state ATTR_UNUSED)
{
	struct vault_dkim *vd = vault_dkim_create(fix.dir, fix.master_key);
	const struct sign_item unknown = { "s9e", DKIM_ALG_ED25519_SHA256, 32 };
	const struct sign_item wrong_alg = { "s1e", DKIM_ALG_RSA_SHA256, 32 };
	const struct sign_item good = { "s1r", DKIM_ALG_RSA_SHA256, 32 };
	const struct sign_item bad_alg = { "s1r", (enum dkim_algorithm)77, 32 };
	uint8_t digest[32] = { 1 }, sigs[2][512];
	size_t lens[2];

	assert_int_equal(
		sign(vd, "example.org", &unknown, 1, digest, sigs, lens),
		IPC_DKIM_NO_KEY);
	assert_int_equal(
		sign(vd, "example.org", &wrong_alg, 1, digest, sigs, lens),
		IPC_DKIM_NO_KEY);
	assert_int_equal(
		sign(vd, "example.org", &bad_alg, 1, digest, sigs, lens),
		IPC_DKIM_NO_KEY);
	/* A domain that is not ours, or not a domain. */
	assert_int_equal(sign(vd, "example.net", &good, 1, digest, sigs, lens),
			 IPC_DKIM_NO_KEY);
	assert_int_equal(sign(vd, "..", &good, 1, digest, sigs, lens),
			 IPC_DKIM_NO_KEY);
	assert_int_equal(vault_dkim_cache_count(vd), 0);
	vault_dkim_destroy(&vd);
}

/* A vault whose master key is not the one the keys were wrapped under. */
static void test_wrong_master_key(void **state ATTR_UNUSED)
{
	uint8_t other[MASTER_KEY_LEN];
	const struct sign_item good = { "s1e", DKIM_ALG_ED25519_SHA256, 32 };
	uint8_t digest[32] = { 2 }, sigs[2][512];
	size_t lens[2];
	struct vault_dkim *vd;

	memset(other, 0x11, sizeof(other));
	vd = vault_dkim_create(fix.dir, other);
	assert_int_equal(sign(vd, "example.org", &good, 1, digest, sigs, lens),
			 IPC_DKIM_TEMPFAIL);
	assert_int_equal(vault_dkim_cache_count(vd), 0);
	vault_dkim_destroy(&vd);
}

static void test_malformed(void **state ATTR_UNUSED)
{
	struct vault_dkim *vd = vault_dkim_create(fix.dir, fix.master_key);
	const struct sign_item shorty = { "s1e", DKIM_ALG_ED25519_SHA256, 31 };
	struct sign_item many[IPC_DKIM_MAX_SIGS + 1];
	uint8_t digest[32] = { 3 };
	struct buf in = BUF_INIT, out = BUF_INIT;
	struct ipc_frame frame;
	const char *error;
	char longname[300];
	size_t off;

	build_sign(&in, 1, "example.org", &shorty, 1, digest);
	one_frame(&in, &frame);
	assert_int_equal(vault_dkim_handle_sign(vd, &frame, &out, &error), -1);
	buf_reset(&in);
	build_sign(&in, 1, "example.org", NULL, 0, digest);
	one_frame(&in, &frame);
	assert_int_equal(vault_dkim_handle_sign(vd, &frame, &out, &error), -1);
	for (unsigned int i = 0; i < N_ELEMENTS(many); i++)
		many[i] = (struct sign_item){ "s1e", DKIM_ALG_ED25519_SHA256,
					      32 };
	buf_reset(&in);
	build_sign(&in, 1, "example.org", many, N_ELEMENTS(many), digest);
	one_frame(&in, &frame);
	assert_int_equal(vault_dkim_handle_sign(vd, &frame, &out, &error), -1);
	/* Trailing bytes after a good request. */
	buf_reset(&in);
	off = ipc_msg_begin(&in, IPC_VAULT_DKIM_SIGN, 1);
	ipc_put_str(&in, "example.org");
	ipc_put_u32(&in, 1);
	ipc_put_str(&in, "s1e");
	ipc_put_u32(&in, DKIM_ALG_ED25519_SHA256);
	ipc_put_bytes(&in, digest, 32);
	buf_append_c(&in, 'x');
	ipc_msg_finish(&in, off);
	one_frame(&in, &frame);
	assert_int_equal(vault_dkim_handle_sign(vd, &frame, &out, &error), -1);
	/* Truncated: the item count promises more than there is. */
	buf_reset(&in);
	off = ipc_msg_begin(&in, IPC_VAULT_DKIM_SIGN, 1);
	ipc_put_str(&in, "example.org");
	ipc_put_u32(&in, 2);
	ipc_put_str(&in, "s1e");
	ipc_put_u32(&in, DKIM_ALG_ED25519_SHA256);
	ipc_put_bytes(&in, digest, 32);
	ipc_msg_finish(&in, off);
	one_frame(&in, &frame);
	assert_int_equal(vault_dkim_handle_sign(vd, &frame, &out, &error), -1);
	/* An oversized domain in KEYS; a KEYS with trailing bytes. */
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	buf_reset(&in);
	off = ipc_msg_begin(&in, IPC_VAULT_DKIM_KEYS, 1);
	ipc_put_str(&in, longname);
	ipc_msg_finish(&in, off);
	one_frame(&in, &frame);
	assert_int_equal(vault_dkim_handle_keys(vd, &frame, &out, &error), -1);
	buf_reset(&in);
	off = ipc_msg_begin(&in, IPC_VAULT_DKIM_KEYS, 1);
	ipc_put_str(&in, "example.org");
	ipc_put_u32(&in, 0);
	ipc_msg_finish(&in, off);
	one_frame(&in, &frame);
	assert_int_equal(vault_dkim_handle_keys(vd, &frame, &out, &error), -1);
	assert_int_equal(out.used, 0);
	buf_free(&in);
	buf_free(&out);
	vault_dkim_destroy(&vd);
}

/* Last of the in-process tests: it changes the domain's keys. */
static void test_rotation(void **state ATTR_UNUSED)
{
	struct vault_dkim *vd = vault_dkim_create(fix.dir, fix.master_key);
	const struct sign_item old = { "s1e", DKIM_ALG_ED25519_SHA256, 32 };
	const struct sign_item new_ed = { "s2e", DKIM_ALG_ED25519_SHA256, 32 };
	uint8_t digest[32] = { 4 }, sigs[2][512];
	EVP_PKEY *new_keys[2];
	unsigned int count;
	const char *error;
	size_t lens[2];
	char sels[4][64];
	uint32_t algs[4];

	assert_int_equal(sign(vd, "example.org", &old, 1, digest, sigs, lens),
			 IPC_DKIM_OK);
	add_pair("s2", "pending", new_keys);
	/* Pending keys do not sign yet. */
	assert_int_equal(keys(vd, "example.org", sels, algs), 2);
	assert_string_equal(sels[0], "s1e");
	assert_int_equal(
		sign(vd, "example.org", &new_ed, 1, digest, sigs, lens),
		IPC_DKIM_NO_KEY);
	assert_int_equal(directory_dkim_key_activate(fix.dir, "example.org",
						     (int64_t)time(NULL) + 60,
						     &count, &error),
			 0);
	assert_int_equal(count, 2);
	assert_int_equal(keys(vd, "example.org", sels, algs), 2);
	assert_string_equal(sels[0], "s2e");
	assert_string_equal(sels[1], "s2r");
	assert_int_equal(
		sign(vd, "example.org", &new_ed, 1, digest, sigs, lens),
		IPC_DKIM_OK);
	assert_true(verify(new_keys[0], DKIM_ALG_ED25519_SHA256, digest,
			   span_make(sigs[0], lens[0])));
	/* The retiring key is published still, but does not sign. */
	assert_int_equal(sign(vd, "example.org", &old, 1, digest, sigs, lens),
			 IPC_DKIM_NO_KEY);
	EVP_PKEY_free(fix.keys[0]);
	EVP_PKEY_free(fix.keys[1]);
	fix.keys[0] = new_keys[0];
	fix.keys[1] = new_keys[1];
	fix.selectors[0] = "s2e";
	fix.selectors[1] = "s2r";
	vault_dkim_destroy(&vd);
}

/* ---- vault_main() as a process ---- */

static void test_vault_ipc(void **state ATTR_UNUSED)
{
	static struct marmot_settings set;
	struct buf in = BUF_INIT, out = BUF_INIT;
	pool_t pool = pool_create("test", 256);
	struct ipc_frame frame;
	struct ipc_reader r;
	const struct sign_item items[2] = {
		{ fix.selectors[0], DKIM_ALG_ED25519_SHA256, 32 },
		{ fix.selectors[1], DKIM_ALG_RSA_SHA256, 32 },
	};
	uint8_t digest[32];
	int master_fd, fd, status;
	size_t off;
	pid_t pid;

	memset(&set, 0, sizeof(set));
	set.data_dir = fix.tmpdir;
	set.vault_max_hashes = 1;
	pid = test_vault_fork(&set, &master_fd);
	assert_true(pid > 0);
	fd = test_vault_connect(fix.tmpdir);
	assert_true(fd >= 0);

	off = ipc_msg_begin(&out, IPC_VAULT_DKIM_KEYS, 11);
	ipc_put_str(&out, "example.org");
	ipc_msg_finish(&out, off);
	assert_int_equal(write(fd, out.data, out.used), (ssize_t)out.used);
	buf_reset(&out);
	assert_true(test_ipc_read_frame(fd, &in, &frame));
	assert_int_equal(frame.type, IPC_FRONT_DKIM_KEYS_REPLY);
	assert_int_equal(frame.id, 11);
	ipc_reader_init(&r, &frame);
	assert_int_equal(ipc_get_u32(&r), IPC_DKIM_OK);
	assert_int_equal(ipc_get_u32(&r), 2);
	assert_string_equal(ipc_get_str(&r, pool), fix.selectors[0]);
	assert_int_equal(ipc_get_u32(&r), DKIM_ALG_ED25519_SHA256);
	assert_string_equal(ipc_get_str(&r, pool), fix.selectors[1]);
	assert_int_equal(ipc_get_u32(&r), DKIM_ALG_RSA_SHA256);
	assert_int_equal(ipc_end(&r), 0);

	memset(digest, 0x77, sizeof(digest));
	build_sign(&out, 12, "example.org", items, 2, digest);
	assert_int_equal(write(fd, out.data, out.used), (ssize_t)out.used);
	buf_reset(&out);
	assert_true(test_ipc_read_frame(fd, &in, &frame));
	assert_int_equal(frame.type, IPC_FRONT_DKIM_SIGN_REPLY);
	assert_int_equal(frame.id, 12);
	ipc_reader_init(&r, &frame);
	assert_int_equal(ipc_get_u32(&r), IPC_DKIM_OK);
	assert_int_equal(ipc_get_u32(&r), 2);
	assert_true(verify(fix.keys[0], DKIM_ALG_ED25519_SHA256, digest,
			   ipc_get_bytes(&r)));
	assert_true(verify(fix.keys[1], DKIM_ALG_RSA_SHA256, digest,
			   ipc_get_bytes(&r)));
	assert_int_equal(ipc_end(&r), 0);

	/* A short digest is a protocol error: the connection is closed. */
	const struct sign_item shorty = { fix.selectors[0],
					  DKIM_ALG_ED25519_SHA256, 16 };
	build_sign(&out, 13, "example.org", &shorty, 1, digest);
	assert_int_equal(write(fd, out.data, out.used), (ssize_t)out.used);
	assert_false(test_ipc_read_frame(fd, &in, &frame));

	close(master_fd);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(fd);
	buf_free(&in);
	buf_free(&out);
	pool_unref(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_and_sign),
		cmocka_unit_test(test_no_key),
		cmocka_unit_test(test_wrong_master_key),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_vault_ipc),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
