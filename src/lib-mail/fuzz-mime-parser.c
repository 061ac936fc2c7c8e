/* fuzz-mime-parser.c - libFuzzer target for mime-parser.c and the
   builders over it. The first input byte seeds the chunk sizes: the rest
   is parsed once in one piece and once in pseudo-random chunks (with
   small limits half the time, so the depth, part, header and line
   limits are reached), and both trees must give identical BODYSTRUCTURE,
   BODY and ENVELOPE strings (abort() otherwise). Every header value is
   also run through rfc2047_decode(), which must yield valid UTF-8.
   Replayed over tests/fuzz-corpus/fuzz-mime-parser/ in every build. */

#include "lib.h"
#include "buf.h"
#include "pool.h"
#include "charset.h"
#include "imap-envelope.h"
#include "mime-parser.h"
#include "rfc2047.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_decode(const char *value)
{
	struct buf out = BUF_INIT;

	if (value == NULL)
		return;
	rfc2047_decode(&out, span_from_cstr(value));
	if (!charset_utf8_is_valid(buf_span(&out)))
		abort();
	buf_free(&out);
}

static void walk(const struct mime_part *part, uint64_t size)
{
	if (part->header_offset > part->body_offset ||
	    part->body_offset > part->body_end || part->body_end > size)
		abort();
	if (part->envelope != NULL) {
		check_decode(part->envelope->subject);
		check_decode(part->envelope->from);
	}
	check_decode(part->description);
	for (const struct mime_part *c = part->children; c != NULL;
	     c = c->next) {
		if (c->parent != part || c->header_offset < part->body_offset ||
		    c->body_end > part->body_end)
			abort();
		walk(c, size);
	}
}

static char *build(pool_t pool, const struct mime_limits *limits,
		   const uint8_t *data, size_t size, unsigned int seed)
{
	struct mime_parser *parser = mime_parser_create(pool, limits);
	struct mime_result result;
	struct buf out = BUF_INIT;
	size_t pos = 0;
	char *ret;

	while (pos < size) {
		size_t n = seed == 0 ? size - pos : (seed * 7 + pos) % 61 + 1;

		if (n > size - pos)
			n = size - pos;
		mime_parser_feed(parser, data + pos, n);
		pos += n;
	}
	mime_parser_finish(&parser, &result);
	if (result.size != size)
		abort();
	walk(result.root, size);
	imap_bodystructure_write(&out, result.root, true);
	imap_bodystructure_write(&out, result.root, false);
	imap_envelope_write(&out, result.root->envelope);
	buf_printf(&out, "%u %x", result.part_count, result.flags);
	ret = i_strndup(out.data, out.used);
	buf_free(&out);
	return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_limits small = { 3, 8, 20, 128 };
	const struct mime_limits *limits;
	unsigned int seed;
	char *a, *b;
	pool_t pool;

	if (size < 1 || size > 256 * 1024)
		return 0;
	seed = data[0] | 1;
	limits = (data[0] & 0x80) != 0 ? &small : NULL;
	data++;
	size--;
	pool = pool_create("fuzz", 4096);
	a = build(pool, limits, data, size, 0);
	b = build(pool, limits, data, size, seed);
	if (strcmp(a, b) != 0)
		abort();
	i_free(a);
	i_free(b);
	pool_unref(&pool);
	return 0;
}
