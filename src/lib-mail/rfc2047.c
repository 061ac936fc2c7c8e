/* rfc2047.c - RFC 2047 encoded-word decoder. Owns a scratch buf per call;
   the caller owns the output. Input is untrusted header text: the decoded
   size is bounded by the input size (B and Q only shrink), charset names
   are checked by charset.c before ICU sees them. */

#include "rfc2047.h"
#include "message-decode.h"
#include "charset.h"

#include <strings.h>

#define RFC2047_CHARSET_MAX 64

struct encoded_word {
	struct span charset; /* without the RFC 2231 language suffix */
	uint8_t encoding; /* 'B' or 'Q' */
	struct span text;
	size_t total_len; /* bytes from "=?" through "?=" */
};

/* RFC 2047 2: encoded-word = "=?" charset "?" encoding "?" encoded-text
   "?=". Returns true if s starts with one. */
static bool parse_encoded_word(struct span s, struct encoded_word *w_r)
{
	size_t i = 2, cs_start, cs_end, text_start;

	if (s.len < 7 || s.p[0] != '=' || s.p[1] != '?')
		return false;
	cs_start = i;
	while (i < s.len && s.p[i] != '?') {
		if (s.p[i] <= ' ' || s.p[i] >= 0x7f)
			return false;
		i++;
	}
	cs_end = i;
	if (cs_end == cs_start || cs_end - cs_start > RFC2047_CHARSET_MAX ||
	    i + 3 > s.len)
		return false;
	w_r->encoding = s.p[i + 1] & ~0x20;
	if ((w_r->encoding != 'B' && w_r->encoding != 'Q') || s.p[i + 2] != '?')
		return false;
	text_start = i + 3;
	for (i = text_start; i + 1 < s.len; i++) {
		if (s.p[i] == '?' && s.p[i + 1] == '=')
			break;
		/* RFC 2047 5: encoded-text holds no SPACE (lenient on
		   other controls). */
		if (s.p[i] == ' ' || s.p[i] == '\t' || s.p[i] == '\r' ||
		    s.p[i] == '\n')
			return false;
	}
	if (i + 1 >= s.len)
		return false;
	w_r->charset = span_make(s.p + cs_start, cs_end - cs_start);
	/* RFC 2231 5: charset may carry "*language". */
	for (size_t j = 0; j < w_r->charset.len; j++) {
		if (w_r->charset.p[j] == '*') {
			w_r->charset.len = j;
			break;
		}
	}
	w_r->text = span_make(s.p + text_start, i - text_start);
	w_r->total_len = i + 2;
	return true;
}

/* RFC 2047 4.2: "_" is SPACE, "=XX" an octet. Bad escapes are kept. */
static void decode_q(struct buf *out, struct span text)
{
	size_t i;

	for (i = 0; i < text.len; i++) {
		uint8_t c = text.p[i];

		if (c == '_') {
			buf_append_c(out, ' ');
		} else if (c == '=' && i + 2 < text.len &&
			   hex_digit_value(text.p[i + 1]) >= 0 &&
			   hex_digit_value(text.p[i + 2]) >= 0) {
			buf_append_c(
				out,
				(uint8_t)(hex_digit_value(text.p[i + 1]) * 16 +
					  hex_digit_value(text.p[i + 2])));
			i += 2;
		} else {
			buf_append_c(out, c);
		}
	}
}

/* RFC 2047 4.1 / RFC 4648 4: base64; characters outside the alphabet are
   skipped, "=" ends the data, missing padding is tolerated. */
static void decode_b(struct buf *out, struct span text)
{
	uint32_t acc = 0;
	unsigned int bits = 0;
	size_t i;

	for (i = 0; i < text.len; i++) {
		int v;

		if (text.p[i] == '=')
			break;
		v = base64_char_value(text.p[i]);
		if (v < 0)
			continue;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf_append_c(out, (uint8_t)(acc >> bits));
		}
	}
}

static void flush_words(struct buf *dest, struct buf *pending,
			const char *charset)
{
	if (pending->used > 0)
		(void)charset_to_utf8(dest, charset, buf_span(pending));
	buf_reset(pending);
}

void rfc2047_decode(struct buf *dest, struct span input)
{
	struct buf pending = BUF_INIT, text = BUF_INIT;
	char charset[RFC2047_CHARSET_MAX + 1] = "";
	size_t i = 0, ws_start = 0;
	bool last_was_word = false;

	while (i < input.len) {
		struct encoded_word w;
		uint8_t c = input.p[i];

		if (c == '=' && parse_encoded_word(span_skip(input, i), &w)) {
			char cs[RFC2047_CHARSET_MAX + 1];

			memcpy(cs, w.charset.p, w.charset.len);
			cs[w.charset.len] = '\0';
			if (!last_was_word || strcasecmp(cs, charset) != 0) {
				flush_words(dest, &pending, charset);
				/* RFC 2047 6.2: white space between adjacent
				   encoded-words is ignored; elsewhere kept. */
				if (!last_was_word)
					charset_utf8_sanitize(dest,
							      buf_span(&text));
				memcpy(charset, cs, w.charset.len + 1);
			}
			buf_reset(&text);
			if (w.encoding == 'B')
				decode_b(&pending, w.text);
			else
				decode_q(&pending, w.text);
			i += w.total_len;
			last_was_word = true;
			ws_start = i;
			continue;
		}
		if (c == '\r' || c == '\n') {
			i++;
			continue;
		}
		if (c == ' ' || c == '\t') {
			buf_append_c(&text, c);
			i++;
			continue;
		}
		/* Ordinary text: emits pending words and the white space. */
		flush_words(dest, &pending, charset);
		charset_utf8_sanitize(dest, buf_span(&text));
		buf_reset(&text);
		ws_start = i;
		while (i < input.len && input.p[i] != ' ' &&
		       input.p[i] != '\t' && input.p[i] != '\r' &&
		       input.p[i] != '\n') {
			if (input.p[i] == '=' && i > ws_start &&
			    parse_encoded_word(span_skip(input, i), &w))
				break;
			i++;
		}
		charset_utf8_sanitize(
			dest, span_make(input.p + ws_start, i - ws_start));
		last_was_word = false;
	}
	flush_words(dest, &pending, charset);
	charset_utf8_sanitize(dest, buf_span(&text));
	buf_free(&pending);
	buf_free(&text);
}
