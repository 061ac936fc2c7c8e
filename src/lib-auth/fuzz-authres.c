/* fuzz-authres.c - libFuzzer target for authres.c (and the header
   readers of dmarc.c). The input is taken as a message: the removal of
   Authentication-Results fields claiming "mx.b.example" must keep every
   other byte and be idempotent (a second pass removes nothing); the
   authserv-id lexer runs on the input as a field value; the input as a
   DKIM d=, selector and reason must still give exactly one well-formed
   header field; dmarc_from_parse() and dmarc_record_parse() read it too.
   abort() on a broken invariant. Replayed over tests/fuzz-corpus/ by
   tests/fuzz-replay.c in every build. */

#include "lib.h"
#include "pool.h"
#include "authres.h"
#include "auth-header.h"
#include "dmarc.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out, again;
	struct auth_header_iter iter;
	struct auth_header_field field;
	struct dkim_signature_result sig;
	struct dkim_verify_result dkim = { &sig, 1 };
	struct authres_input in;
	struct dmarc_from from;
	struct dmarc_record rec;
	const char *id, *error, *results, *f;
	char *text;
	unsigned int n, fields;
	pool_t pool;

	if (size > 65536)
		return 0;
	pool = pool_create("fuzz", 4096);

	buf_init(&out, size + 1);
	n = authres_remove_ours(data, size, "mx.b.example", &out);
	if (out.used > size || (n == 0 && out.used != size) ||
	    (n > 0 && out.used == size))
		abort();
	buf_init(&again, size + 1);
	if (authres_remove_ours(buf_span(&out).p, out.used, "mx.b.example",
				&again) != 0 ||
	    again.used != out.used ||
	    memcmp(buf_span(&again).p, buf_span(&out).p, out.used) != 0)
		abort();
	buf_free(&again);
	buf_free(&out);

	(void)authres_parse_authserv_id(pool, span_make(data, size), &id);

	text = p_strndup(pool, data, size);
	memset(&sig, 0, sizeof(sig));
	sig.result = DKIM_FAIL;
	sig.domain = text;
	sig.selector = text;
	sig.reason = text;
	memcpy(sig.b_prefix, text, strlen(text) < 15 ? strlen(text) : 15);
	memset(&in, 0, sizeof(in));
	in.dkim = &dkim;
	results = authres_results(pool, &in);
	f = authres_field(pool, "mx.b.example", results);
	auth_header_iter_init(&iter, (const uint8_t *)f, strlen(f));
	fields = 0;
	while (auth_header_iter_next(&iter, &field)) {
		fields++;
		if (field.raw.len != strlen(f) ||
		    !span_eq(field.name, SPAN_LIT("Authentication-Results")))
			abort();
	}
	if (fields != 1)
		abort();

	dmarc_from_parse(pool, data, size, &from);
	if (from.domain_count > DMARC_MAX_FROM_DOMAINS ||
	    (from.status == DMARC_FROM_OK && from.domain_count != 1))
		abort();
	if (dmarc_record_parse(pool, (const char *)data, size, &rec, &error) ==
		    0 &&
	    (rec.pct > 100 || size < 8))
		abort();
	pool_unref(&pool);
	return 0;
}
