/* fuzz-dmarc-report.c - libFuzzer target for the DMARC aggregate report
   reader (dmarc-report.c): any input (XML or gzip) is parsed; an accepted
   report is written again and the rewrite must parse to the same row
   count and domain (abort() otherwise). Replayed over tests/fuzz-corpus/
   by tests/fuzz-replay.c in every build. */

#include "lib.h"
#include "pool.h"
#include "dmarc-report.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dmarc_report r, again;
	const char *error, *xml;
	pool_t pool;

	if (size > 1024 * 1024)
		return 0;
	pool = pool_create("fuzz", 4096);
	if (dmarc_report_parse(pool, data, size, &r, &error) == 0) {
		xml = dmarc_report_xml(pool, &r);
		if (dmarc_report_parse(pool, xml, strlen(xml), &again,
				       &error) != 0 ||
		    again.row_count != r.row_count ||
		    (r.domain != NULL && (again.domain == NULL ||
					  strcmp(again.domain, r.domain) != 0)))
			abort();
	} else if (error == NULL) {
		abort();
	}
	pool_unref(&pool);
	return 0;
}
