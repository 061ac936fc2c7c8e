/* charset.c - conversion of text in a MIME charset to UTF-8 with ICU ucnv.
   Owns nothing between calls: every call opens its converters and closes
   them (ICU caches the conversion tables). Called by rfc2047.c and
   rfc2231.c for header words and parameters, and by users of decoded MIME
   bodies. Untrusted input: names are checked against ICU's alias table
   before any converter is opened, and output is grown in bounded steps. */

#include "charset.h"

#include <strings.h>
#include <unicode/ucnv.h>
#include <unicode/ucnv_cb.h>

#define CHARSET_NAME_MAX 64

static const uint8_t utf8_replacement[] = { 0xef, 0xbf, 0xbd };

/* Length of the well-formed UTF-8 sequence at p, or 0 (RFC 3629 4). */
static size_t utf8_seq_len(const uint8_t *p, size_t len)
{
	uint8_t c = p[0];
	size_t n, i;
	uint8_t lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (len < n)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++) {
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	}
	return n;
}

void charset_utf8_sanitize(struct buf *dest, struct span input)
{
	size_t i = 0, n;

	while (i < input.len) {
		n = utf8_seq_len(input.p + i, input.len - i);
		if (n == 0) {
			buf_append(dest, utf8_replacement,
				   sizeof(utf8_replacement));
			i++;
		} else {
			buf_append(dest, input.p + i, n);
			i += n;
		}
	}
}

bool charset_utf8_is_valid(struct span input)
{
	size_t i = 0, n;

	while (i < input.len) {
		n = utf8_seq_len(input.p + i, input.len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

static bool charset_name_is_sane(const char *name)
{
	size_t i;

	for (i = 0; name[i] != '\0'; i++) {
		char c = name[i];

		if (i >= CHARSET_NAME_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.' || c == ':' || c == '+'))
			return false;
	}
	return i > 0;
}

bool charset_is_known(const char *name)
{
	UErrorCode err = U_ZERO_ERROR;

	if (!charset_name_is_sane(name))
		return false;
	/* ucnv_countAliases() finds only names in the alias table, never
	   algorithmic or file-system converter names. */
	return ucnv_countAliases(name, &err) > 0 && U_SUCCESS(err);
}

static bool charset_is_utf8_compatible(const char *name)
{
	static const char *const names[] = {
		"utf-8",          "utf8", "us-ascii",  "ascii",
		"ansi_x3.4-1968", "us",   "iso646-us", "csascii",
	};
	size_t i;

	for (i = 0; i < N_ELEMENTS(names); i++) {
		if (strcasecmp(name, names[i]) == 0)
			return true;
	}
	return false;
}

/* ICU's own substitute is U+001A for some code pages; mail readers expect
   U+FFFD for every unreadable sequence. */
static void to_u_replace(const void *context ATTR_UNUSED,
			 UConverterToUnicodeArgs *args,
			 const char *units ATTR_UNUSED,
			 int32_t length ATTR_UNUSED,
			 UConverterCallbackReason reason, UErrorCode *err)
{
	static const UChar replacement = 0xfffd;

	if (reason > UCNV_IRREGULAR)
		return;
	*err = U_ZERO_ERROR;
	ucnv_cbToUWriteUChars(args, &replacement, 1, 0, err);
}

int charset_to_utf8(struct buf *dest, const char *charset, struct span input)
{
	UErrorCode err = U_ZERO_ERROR;
	UConverter *src, *utf8;
	UChar pivot[1024];
	size_t size_before = dest->used, out_size;

	if (charset == NULL || charset_is_utf8_compatible(charset)) {
		charset_utf8_sanitize(dest, input);
		return 0;
	}
	if (!charset_is_known(charset)) {
		charset_utf8_sanitize(dest, input);
		return -1;
	}
	src = ucnv_open(charset, &err);
	if (U_FAILURE(err)) {
		charset_utf8_sanitize(dest, input);
		return -1;
	}
	ucnv_setToUCallBack(src, to_u_replace, NULL, NULL, NULL, &err);
	utf8 = ucnv_open("UTF-8", &err);
	i_assert(U_SUCCESS(err));

	/* Every input byte yields at most one code point of at most four
	   UTF-8 bytes in the charsets ICU ships; retry bigger if not. */
	out_size = i_size_add(i_size_mul(input.len, 4), 16);
	for (;;) {
		UChar *pivot_src = pivot, *pivot_dst = pivot;
		const char *s = (const char *)input.p;
		char *t, *t_start;

		err = U_ZERO_ERROR;
		buf_truncate(dest, size_before);
		t = t_start = (char *)buf_reserve(dest, out_size);
		ucnv_convertEx(utf8, src, &t, t_start + out_size, &s,
			       s + input.len, pivot, &pivot_src, &pivot_dst,
			       pivot + N_ELEMENTS(pivot), true, true, &err);
		if (err == U_BUFFER_OVERFLOW_ERROR) {
			out_size = i_size_mul(out_size, 2);
			continue;
		}
		if (U_FAILURE(err)) {
			ucnv_close(src);
			ucnv_close(utf8);
			charset_utf8_sanitize(dest, input);
			return -1;
		}
		buf_commit(dest, (size_t)(t - t_start));
		break;
	}
	ucnv_close(src);
	ucnv_close(utf8);
	return 0;
}
