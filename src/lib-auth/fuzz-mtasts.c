/* fuzz-mtasts.c - libFuzzer target for what MTA-STS and DANE read from
   the network: MTA-STS policy files (RFC 8461 3.2), _mta-sts TXT records
   (3.1), the cache file lines (mtasts.h), MX pattern matching (4.1) and
   TLSA rdata (RFC 6698 2.1, RFC 7672 3.1.3). Input: one selector byte (0
   policy, 1 TXT, 2 cache file, 3 pattern NUL host, 4 TLSA), then the
   bytes. Built with -Dfuzz=true, and replayed over
   tests/fuzz-corpus/fuzz-mtasts/ by every test run. */

#include "lib.h"
#include "buf.h"
#include "dane.h"
#include "mtasts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_policy(const uint8_t *p, size_t n)
{
	pool_t pool = pool_create("fuzz", 1024);
	struct mtasts_policy policy;
	const char *error;

	if (mtasts_policy_parse(pool, p, n, &policy, &error) == 0) {
		/* What parses must survive the cache and its file. */
		struct mtasts_cache *cache = mtasts_cache_create();
		struct buf out = BUF_INIT;

		i_assert(policy.mode == MTASTS_MODE_NONE ||
			 policy.mx_count > 0);
		for (unsigned int i = 0; i < policy.mx_count; i++)
			(void)mtasts_policy_mx_allowed(&policy, policy.mx[i]);
		mtasts_cache_store(cache, "fuzz.test", "id", &policy, 0);
		mtasts_cache_write(cache, &out);
		mtasts_cache_destroy(&cache);
		cache = mtasts_cache_create();
		if (policy.max_age > 0)
			i_assert(mtasts_cache_read(cache, buf_cstr(&out),
						   out.used, 0) == 1);
		mtasts_cache_destroy(&cache);
		buf_free(&out);
	}
	pool_unref(&pool);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char id[MTASTS_ID_MAX + 1];
	const char *error;
	uint8_t *copy;
	size_t n;

	if (size == 0)
		return 0;
	n = size - 1;
	/* An exact-size copy, so ASan sees any read past the input; NUL
	   added for the string entry points (which take lengths). */
	copy = i_malloc(n + 1);
	memcpy(copy, data + 1, n);
	switch (data[0]) {
	case 0:
		fuzz_policy(copy, n);
		break;
	case 1:
		if (mtasts_txt_parse((const char *)copy, n, id, &error) == 0)
			i_assert(strlen(id) >= 1 &&
				 strlen(id) <= MTASTS_ID_MAX);
		break;
	case 2: {
		struct mtasts_cache *cache = mtasts_cache_create();

		(void)mtasts_cache_read(cache, (const char *)copy, n, 1000);
		mtasts_cache_destroy(&cache);
		break;
	}
	case 3: {
		const char *host = memchr(copy, '\0', n);

		if (host != NULL)
			(void)mtasts_mx_match((const char *)copy, host + 1);
		break;
	}
	default: {
		struct dns_tlsa tlsa;

		if (dane_tlsa_parse(copy, n, &tlsa, &error) == 0)
			(void)dane_tlsa_usable(&tlsa);
		break;
	}
	}
	i_free(copy);
	return 0;
}
