/* fuzz-vault-dkim.c - libFuzzer target for the vault's DKIM signing
   requests (vault-dkim.h), the frames a compromised front could send.
   The input is a stream of IPC frames; each IPC_VAULT_DKIM_KEYS or
   IPC_VAULT_DKIM_SIGN frame goes to its handler over a directory.db (made
   once, in a temporary directory removed at exit) whose domain
   example.org has an Ed25519 and an RSA key. A handled frame must yield
   exactly one well-formed reply frame; a refused one must yield nothing.
   Built with -Dfuzz=true, and replayed over
   tests/fuzz-corpus/fuzz-vault-dkim/ by every test run. */

#include "lib.h"
#include "vault-dkim.h"
#include "directory.h"
#include "dkim.h"
#include "dkim-wrap.h"
#include "ipc.h"
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir[64];
static struct directory *fuzz_directory;
static struct vault_dkim *fuzz_dkim;
static uint8_t fuzz_master_key[MASTER_KEY_LEN];

static void fuzz_cleanup(void)
{
	char path[128];

	vault_dkim_destroy(&fuzz_dkim);
	directory_close(&fuzz_directory);
	static const char *const files[] = { "directory.db", "directory.db-wal",
					     "directory.db-shm" };
	for (unsigned int i = 0; i < N_ELEMENTS(files); i++) {
		snprintf(path, sizeof(path), "%s/%s", fuzz_dir, files[i]);
		(void)unlink(path);
	}
	(void)rmdir(fuzz_dir);
}

/* Adds keys (selector ending 'e': Ed25519, 'r': RSA) in state. */
static void fuzz_add_keys(const char *const *selectors, unsigned int n,
			  const char *state)
{
	struct directory_dkim_new_key nk[2];
	struct buf wrapped[2] = { BUF_INIT, BUF_INIT };
	pool_t pool = pool_create("fuzz", 1024);
	const char *error;

	i_assert(n <= 2);
	for (unsigned int i = 0; i < n; i++) {
		bool ed = selectors[i][strlen(selectors[i]) - 1] == 'e';
		enum dkim_algorithm alg =
			ed ? DKIM_ALG_ED25519_SHA256 : DKIM_ALG_RSA_SHA256;
		EVP_PKEY *key = dkim_key_generate(alg);

		if (dkim_wrap_key(fuzz_master_key, "example.org", selectors[i],
				  key, &wrapped[i], &error) < 0)
			i_panic("dkim_wrap_key: %s", error);
		nk[i] = (struct directory_dkim_new_key){
			.selector = selectors[i],
			.algorithm = ed ? "ed25519" : "rsa",
			.public_record = dkim_key_dns_record(pool, key, alg),
			.wrapped = wrapped[i].data,
			.wrapped_len = wrapped[i].used,
		};
		EVP_PKEY_free(key);
	}
	if (directory_dkim_key_add(fuzz_directory, "example.org", nk, n, state,
				   &error) < 0)
		i_panic("directory_dkim_key_add: %s", error);
	buf_free(&wrapped[0]);
	buf_free(&wrapped[1]);
	pool_unref(&pool);
}

static void fuzz_init(void)
{
	const char *error;
	char path[128];

	snprintf(fuzz_dir, sizeof(fuzz_dir), "/tmp/marmot-fuzz-dkim-XXXXXX");
	if (mkdtemp(fuzz_dir) == NULL)
		i_panic("mkdtemp failed");
	snprintf(path, sizeof(path), "%s/directory.db", fuzz_dir);
	fuzz_directory = directory_open(path, false, &error);
	if (fuzz_directory == NULL ||
	    directory_domain_add(fuzz_directory, "example.org", &error) < 0)
		i_panic("directory: %s", error);
	memset(fuzz_master_key, 0x5a, sizeof(fuzz_master_key));
	static const char *const active[] = { "s1e", "s1r" };
	static const char *const pending[] = { "s2e" };
	fuzz_add_keys(active, 2, "active");
	fuzz_add_keys(pending, 1, "pending");
	fuzz_dkim = vault_dkim_create(fuzz_directory, fuzz_master_key);
	atexit(fuzz_cleanup);
}

/* The reply in out must be one frame of the expected type, fully
   consumable as the protocol says. */
static void fuzz_check_reply(const struct buf *out, uint16_t type)
{
	struct ipc_frame frame;
	struct ipc_reader r;
	const char *error;
	size_t consumed;
	uint32_t n;
	pool_t pool = pool_create("fuzz reply", 256);

	if (ipc_frame_parse(buf_span(out), &frame, &consumed, &error) != 1 ||
	    consumed != out->used || frame.type != type)
		i_panic("bad reply frame");
	ipc_reader_init(&r, &frame);
	if (ipc_get_u32(&r) > IPC_DKIM_NO_KEY)
		i_panic("bad reply status");
	n = ipc_get_u32(&r);
	if (n > IPC_DKIM_MAX_SIGS)
		i_panic("too many items in the reply");
	for (uint32_t i = 0; i < n; i++) {
		if (type == IPC_FRONT_DKIM_KEYS_REPLY) {
			(void)ipc_get_str(&r, pool);
			(void)ipc_get_u32(&r);
		} else if (ipc_get_bytes(&r).len == 0) {
			i_panic("empty signature");
		}
	}
	if (ipc_end(&r) < 0)
		i_panic("reply not consumed exactly");
	pool_unref(&pool);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct span rest = span_make(data, size);
	struct buf out = BUF_INIT;

	if (fuzz_dkim == NULL)
		fuzz_init();
	for (unsigned int frames = 0; frames < 64; frames++) {
		struct ipc_frame frame;
		const char *error;
		size_t consumed;
		int ret;

		if (ipc_frame_parse(rest, &frame, &consumed, &error) != 1)
			break;
		rest = span_skip(rest, consumed);
		buf_reset(&out);
		if (frame.type == IPC_VAULT_DKIM_KEYS) {
			ret = vault_dkim_handle_keys(fuzz_dkim, &frame, &out,
						     &error);
			if (ret == 0)
				fuzz_check_reply(&out,
						 IPC_FRONT_DKIM_KEYS_REPLY);
		} else {
			ret = vault_dkim_handle_sign(fuzz_dkim, &frame, &out,
						     &error);
			if (ret == 0)
				fuzz_check_reply(&out,
						 IPC_FRONT_DKIM_SIGN_REPLY);
		}
		if (ret < 0 && out.used != 0)
			i_panic("a refused frame got a reply");
	}
	buf_free(&out);
	return 0;
}
