/* fuzz-mail-address.c - libFuzzer target for mail-address.c. Feeds the
   input, NUL-terminated, to mail_address_normalize() and
   mail_domain_normalize(), and checks that normalisation is idempotent:
   an accepted address or domain normalises again to exactly the same
   string (abort() otherwise). Replayed over tests/fuzz-corpus/ by
   tests/fuzz-replay.c in every build. */

#include "lib.h"
#include "pool.h"
#include "mail-address.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *error;
	char *input, *addr, *again, *domain;
	pool_t pool;

	if (size > 4096)
		return 0;
	input = i_strndup(data, size);
	pool = pool_create("fuzz", 1024);

	addr = mail_address_normalize(pool, input, NULL, NULL, &error);
	if (addr != NULL) {
		again = mail_address_normalize(pool, addr, NULL, NULL, &error);
		if (again == NULL || strcmp(again, addr) != 0)
			abort();
	} else if (error == NULL) {
		abort();
	}
	domain = mail_domain_normalize(pool, input, &error);
	if (domain != NULL) {
		again = mail_domain_normalize(pool, domain, &error);
		if (again == NULL || strcmp(again, domain) != 0)
			abort();
	}
	pool_unref(&pool);
	i_free(input);
	return 0;
}
