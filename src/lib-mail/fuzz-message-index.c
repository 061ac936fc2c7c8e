/* fuzz-message-index.c - libFuzzer target for message-index.c and the
   decoders under it (message-decode.c, html-text.c). The input is indexed
   as a message, and every string of the result must be valid UTF-8
   within its bounds (text at most MESSAGE_INDEX_MAX_TEXT bytes, preview
   at most 256 characters, IMAP strings parenthesised). The input is also
   run through the quoted-printable and base64 decoders and html-text
   both in one piece and in pseudo-random chunks, which must give the
   same bytes. abort() on any violation. Replayed over
   tests/fuzz-corpus/fuzz-message-index/ in every build. */

#include "lib.h"
#include "buf.h"
#include "charset.h"
#include "html-text.h"
#include "message-decode.h"
#include "message-index.h"
#include "pool.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const char *s, size_t max_len)
{
	if (s == NULL || strlen(s) > max_len ||
	    !charset_utf8_is_valid(span_from_cstr(s)))
		abort();
}

static void check_index(const struct message_index *ix)
{
	unsigned int chars = 0;

	if (ix->envelope[0] != '(' || ix->bodystructure[0] != '(' ||
	    ix->body[0] != '(')
		abort();
	check_str(ix->text, MESSAGE_INDEX_MAX_TEXT);
	check_str(ix->preview, 4 * MESSAGE_INDEX_PREVIEW_MAX);
	for (const char *p = ix->preview; *p != '\0'; p++) {
		if (((uint8_t)*p & 0xc0) != 0x80)
			chars++;
	}
	if (chars > MESSAGE_INDEX_PREVIEW_MAX)
		abort();
	check_str(ix->from, SIZE_MAX);
	check_str(ix->to, SIZE_MAX);
	check_str(ix->cc, SIZE_MAX);
	check_str(ix->bcc, SIZE_MAX);
	check_str(ix->subject, SIZE_MAX);
	check_str(ix->base_subject, SIZE_MAX);
	for (const char *const *r = ix->references; *r != NULL; r++) {
		if ((*r)[0] == '\0')
			abort();
		check_str(*r, SIZE_MAX);
	}
	for (const char *const *n = ix->attachment_names; *n != NULL; n++)
		check_str(*n, SIZE_MAX);
	if (ix->attachment_names[0] != NULL && !ix->has_attachment)
		abort();
}

/* Decodes data whole and in chunks of 1..61 bytes; both must match. */
static void check_decoder(enum message_decode_encoding enc, const uint8_t *data,
			  size_t size, size_t max)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	struct message_decoder dec;
	size_t pos = 0;
	int ra, rb;

	ra = message_decode(enc, span_make(data, size), max, &a);
	message_decoder_init(&dec, enc, max);
	while (pos < size) {
		size_t n = (pos * 7 + size) % 61 + 1;

		if (n > size - pos)
			n = size - pos;
		(void)message_decoder_feed(&dec, span_make(data + pos, n), &b);
		pos += n;
	}
	rb = message_decoder_finish(&dec, &b);
	if (ra != rb || a.used != b.used ||
	    memcmp(buf_span(&a).p, buf_span(&b).p, a.used) != 0 ||
	    (max != 0 && a.used > max))
		abort();
	buf_free(&a);
	buf_free(&b);
}

static void check_html(const uint8_t *data, size_t size, size_t max)
{
	struct buf a = BUF_INIT, b = BUF_INIT, clean = BUF_INIT;
	struct html_text ht;
	size_t pos = 0;

	/* html-text keeps UTF-8 valid when its input is. */
	charset_utf8_sanitize(&clean, span_make(data, size));
	(void)html_text_convert(buf_span(&clean), max, &a);
	html_text_init(&ht, max);
	while (pos < clean.used) {
		size_t n = (pos * 13 + size) % 37 + 1;

		if (n > clean.used - pos)
			n = clean.used - pos;
		(void)html_text_feed(
			&ht, span_make(buf_span(&clean).p + pos, n), &b);
		pos += n;
	}
	(void)html_text_finish(&ht, &b);
	if (a.used != b.used ||
	    memcmp(buf_span(&a).p, buf_span(&b).p, a.used) != 0 ||
	    (max != 0 && a.used > max) || !charset_utf8_is_valid(buf_span(&a)))
		abort();
	buf_free(&a);
	buf_free(&b);
	buf_free(&clean);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct message_index ix;
	size_t max;
	pool_t pool;

	if (size > 256 * 1024)
		return 0;
	pool = pool_create("fuzz", 4096);
	message_index_build(pool, data, size, &ix);
	check_index(&ix);
	pool_unref(&pool);

	max = size == 0 ? 0 : data[0] % 64;
	check_decoder(MESSAGE_DECODE_QP, data, size, 0);
	check_decoder(MESSAGE_DECODE_QP, data, size, max);
	check_decoder(MESSAGE_DECODE_BASE64, data, size, 0);
	check_decoder(MESSAGE_DECODE_BASE64, data, size, max);
	check_html(data, size, 0);
	check_html(data, size, max);
	return 0;
}
