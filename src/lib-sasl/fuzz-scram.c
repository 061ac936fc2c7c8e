/* fuzz-scram.c - libFuzzer target for scram.c. The input is a
   client-first-message, a newline, and a client-final-message (the
   server's view of one exchange). It checks that scram_client_first_check()
   agrees with scram_parse_client_first(), that an accepted username
   encodes back to a saslname that decodes to itself, runs the final
   message's parse, binding/nonce check and proof check against fixed
   secrets, and that scram_saltprep() of the whole input is idempotent
   (abort() otherwise). Replayed over tests/fuzz-corpus/fuzz-scram/ by
   tests/fuzz-replay.c in every build. */

#include "lib.h"
#include "buf.h"
#include "pool.h"
#include "scram.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_saltprep(struct span input)
{
	struct buf once = BUF_INIT, twice = BUF_INIT;

	if (scram_saltprep(&once, input) == 0) {
		if (scram_saltprep(&twice, buf_span(&once)) != 0 ||
		    !span_eq(buf_span(&once), buf_span(&twice)))
			abort();
	}
	buf_free(&once);
	buf_free(&twice);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t salt[SCRAM_SALT_LEN] = { 1, 2, 3 };
	struct span input = span_make(data, size), first_msg, final_msg;
	struct scram_client_first first;
	struct scram_client_final final;
	struct scram_secret secret;
	struct buf server_first = BUF_INIT, auth = BUF_INIT, name = BUF_INIT;
	const char *error = NULL;
	pool_t pool;
	int ret;

	if (size > 8192)
		return 0;
	fuzz_saltprep(input);
	if (!span_split(input, '\n', &first_msg, &final_msg))
		final_msg = SPAN_EMPTY;
	pool = pool_create("fuzz", 1024);
	ret = scram_parse_client_first(pool, first_msg, &first, &error);
	if (ret != scram_client_first_check(first_msg) ||
	    (ret < 0 && error == NULL))
		abort();
	if (ret == 0) {
		const char *again;

		scram_saslname_encode(&name, first.username);
		again = scram_saslname_decode(pool, buf_span(&name));
		if (again == NULL || strcmp(again, first.username) != 0)
			abort();
		if (first.bare.p + first.bare.len !=
		    first_msg.p + first_msg.len)
			abort();
		scram_build_server_first(&server_first, first.client_nonce,
					 SPAN_LIT("fuzznonce"), salt,
					 sizeof(salt), SCRAM_MIN_ITERATIONS);
	}
	error = NULL;
	if (scram_parse_client_final(final_msg, &final, &error) == 0) {
		memset(&secret, 0x5a, sizeof(secret));
		if (ret == 0) {
			(void)scram_client_final_check(&first, &final,
						       final.nonce, &error);
			scram_auth_message(&auth, first.bare,
					   buf_span(&server_first),
					   final.without_proof);
		} else {
			scram_auth_message(&auth, SPAN_EMPTY, SPAN_EMPTY,
					   final.without_proof);
		}
		/* A fixed StoredKey with no known preimage: never matches. */
		if (scram_verify_proof(secret.stored_key, buf_span(&auth),
				       final.proof))
			abort();
	} else if (error == NULL) {
		abort();
	}
	buf_free(&server_first);
	buf_free(&auth);
	buf_free(&name);
	pool_unref(&pool);
	return 0;
}
