/* message-decode.c - streaming Content-Transfer-Encoding decoders (RFC
   2045 6.7 quoted-printable, 6.8 base64, identity for 7bit/8bit/binary).
   Each decoder is a byte-at-a-time state machine whose whole state is in
   struct message_decoder, so input may arrive in chunks of any size; it
   owns no memory and appends to the caller's buf, never more than
   max_output bytes. Input is untrusted mail: nothing here fails or
   allocates beyond the bound. Called by message-index.c and lib-imap. */

#include "message-decode.h"

enum qp_state {
	QP_TEXT = 0,
	QP_CR, /* a CR, waiting to see whether LF follows */
	QP_EQ, /* "=" */
	QP_EQ_HEX, /* "=X" with X a hex digit (in dec->hex) */
	QP_EQ_WS, /* "=" followed by white space (in dec->ws) */
	QP_EQ_CR, /* "=" CR: a soft line break */
};

static const struct {
	const char *name;
	enum message_decode_encoding encoding;
} encodings[] = {
	{ "7bit", MESSAGE_DECODE_7BIT },
	{ "8bit", MESSAGE_DECODE_8BIT },
	{ "binary", MESSAGE_DECODE_BINARY },
	{ "quoted-printable", MESSAGE_DECODE_QP },
	{ "base64", MESSAGE_DECODE_BASE64 },
};

enum message_decode_encoding message_decode_encoding_parse(const char *cte)
{
	struct span s;

	if (cte == NULL)
		return MESSAGE_DECODE_7BIT;
	s = span_trim(span_from_cstr(cte));
	/* RFC 2045 6.1: an absent encoding is 7bit. */
	if (s.len == 0)
		return MESSAGE_DECODE_7BIT;
	for (size_t i = 0; i < N_ELEMENTS(encodings); i++) {
		if (span_eq_ci(s, span_from_cstr(encodings[i].name)))
			return encodings[i].encoding;
	}
	return MESSAGE_DECODE_UNKNOWN;
}

void message_decoder_init(struct message_decoder *dec_r,
			  enum message_decode_encoding encoding,
			  size_t max_output)
{
	memset(dec_r, 0, sizeof(*dec_r));
	dec_r->encoding = encoding;
	dec_r->max_output = max_output == 0 ? SIZE_MAX : max_output;
}

/* Appends up to len bytes within the output bound; returns false (and
   marks the decoder full) when some had to be dropped. */
static bool out_append(struct message_decoder *dec, struct buf *dest,
		       const void *data, size_t len)
{
	size_t room = dec->max_output - dec->output;

	if (dec->full)
		return false;
	if (len > room) {
		buf_append(dest, data, room);
		dec->output += room;
		dec->full = true;
		return false;
	}
	buf_append(dest, data, len);
	dec->output += len;
	return true;
}

static void out_byte(struct message_decoder *dec, struct buf *dest, uint8_t c)
{
	out_append(dec, dest, &c, 1);
}

static void qp_flush_ws(struct message_decoder *dec, struct buf *dest)
{
	out_append(dec, dest, dec->ws, dec->ws_len);
	dec->ws_len = 0;
}

/* One byte of quoted-printable. Returns false when the byte must be
   looked at again in the (new) state, which is always QP_TEXT. */
static bool qp_byte(struct message_decoder *dec, struct buf *dest, uint8_t c)
{
	int v;

	switch ((enum qp_state)dec->state) {
	case QP_TEXT:
		if (c == ' ' || c == '\t') {
			/* RFC 2045 6.7 (3): white space at the end of a line
			   is transport padding and must be deleted, so hold
			   it back until we know what follows. */
			if (dec->ws_len == sizeof(dec->ws))
				qp_flush_ws(dec, dest);
			dec->ws[dec->ws_len++] = c;
		} else if (c == '\n') {
			dec->ws_len = 0;
			out_byte(dec, dest, '\n');
		} else if (c == '\r') {
			dec->state = QP_CR;
		} else if (c == '=') {
			qp_flush_ws(dec, dest);
			dec->state = QP_EQ;
		} else {
			qp_flush_ws(dec, dest);
			out_byte(dec, dest, c);
		}
		return true;
	case QP_CR:
		dec->state = QP_TEXT;
		if (c == '\n') {
			/* RFC 2045 6.7 (4): a hard line break, kept as the
			   input wrote it. */
			dec->ws_len = 0;
			out_append(dec, dest, "\r\n", 2);
			return true;
		}
		/* A bare CR is data. */
		qp_flush_ws(dec, dest);
		out_byte(dec, dest, '\r');
		return false;
	case QP_EQ:
		if ((v = hex_digit_value(c)) >= 0) {
			dec->hex = c;
			dec->state = QP_EQ_HEX;
		} else if (c == '\n') {
			/* RFC 2045 6.7 (5): "=" at the end of a line is a
			   soft line break. */
			dec->state = QP_TEXT;
		} else if (c == '\r') {
			dec->state = QP_EQ_CR;
		} else if (c == ' ' || c == '\t') {
			/* RFC 2045 6.7 (3): padding after a soft break. */
			dec->ws[dec->ws_len++] = c;
			dec->state = QP_EQ_WS;
		} else {
			/* RFC 2045 6.7 note (2): an "=" not followed by two
			   hex digits is kept as it is. */
			out_byte(dec, dest, '=');
			dec->state = QP_TEXT;
			return false;
		}
		return true;
	case QP_EQ_HEX:
		dec->state = QP_TEXT;
		if ((v = hex_digit_value(c)) >= 0) {
			/* RFC 2045 6.7 (1): "=" followed by two hex digits
			   is the octet they spell. */
			out_byte(dec, dest,
				 (uint8_t)(hex_digit_value(dec->hex) << 4 | v));
			return true;
		}
		out_byte(dec, dest, '=');
		out_byte(dec, dest, dec->hex);
		return false;
	case QP_EQ_WS:
		if (c == ' ' || c == '\t') {
			if (dec->ws_len < sizeof(dec->ws)) {
				dec->ws[dec->ws_len++] = c;
				return true;
			}
		} else if (c == '\n') {
			dec->ws_len = 0;
			dec->state = QP_TEXT;
			return true;
		} else if (c == '\r') {
			dec->ws_len = 0;
			dec->state = QP_EQ_CR;
			return true;
		}
		/* Not a soft break after all: "=" and the white space are
		   data. */
		out_byte(dec, dest, '=');
		qp_flush_ws(dec, dest);
		dec->state = QP_TEXT;
		return false;
	case QP_EQ_CR:
		/* "=" CR LF is the soft line break; "=" CR alone is taken as
		   one too. */
		dec->state = QP_TEXT;
		return c != '\n' ? false : true;
	}
	i_unreached();
}

static void qp_finish(struct message_decoder *dec, struct buf *dest)
{
	switch ((enum qp_state)dec->state) {
	case QP_TEXT:
		/* RFC 2045 6.7 (3): trailing white space of the last line
		   is deleted too. */
		break;
	case QP_CR:
		out_byte(dec, dest, '\r');
		break;
	case QP_EQ:
	case QP_EQ_WS:
	case QP_EQ_CR:
		/* A soft line break whose line end was the one before the
		   boundary (RFC 2046 5.1.1): nothing to add. */
		break;
	case QP_EQ_HEX:
		out_byte(dec, dest, '=');
		out_byte(dec, dest, dec->hex);
		break;
	}
	dec->ws_len = 0;
	dec->state = QP_TEXT;
}

int base64_char_value(uint8_t c)
{
	/* RFC 2045 6.8 Table 1. */
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Writes the octets of a partial quantum: 2 sextets make one octet and 3
   make two; a single sextet holds no whole octet and is dropped. */
static void b64_flush(struct message_decoder *dec, struct buf *dest)
{
	uint8_t out[3];
	uint32_t bits = dec->b64_bits << (6 * (4 - dec->b64_count));

	out[0] = (uint8_t)(bits >> 16);
	out[1] = (uint8_t)(bits >> 8);
	out[2] = (uint8_t)bits;
	if (dec->b64_count >= 2)
		out_append(dec, dest, out, dec->b64_count - 1);
	dec->b64_bits = 0;
	dec->b64_count = 0;
}

static void b64_feed(struct message_decoder *dec, struct span input,
		     struct buf *dest)
{
	for (size_t i = 0; i < input.len && !dec->b64_done && !dec->full; i++) {
		uint8_t c = input.p[i];
		int v = base64_char_value(c);

		if (v >= 0) {
			dec->b64_bits = dec->b64_bits << 6 | (uint32_t)v;
			if (++dec->b64_count == 4)
				b64_flush(dec, dest);
		} else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			/* RFC 2045 6.8: line breaks are ignored. */
		} else if (c == '=') {
			/* RFC 2045 6.8: "=" is padding and may be taken as
			   the end of the data. */
			b64_flush(dec, dest);
			dec->b64_done = true;
		} else {
			/* Deviation from RFC 2045 6.8, which says to skip
			   characters outside the alphabet: decoding stops,
			   because what follows in real mail is a signature,
			   a mangled boundary or an uuencoded trailer, and
			   reading it as base64 only adds garbage bytes. */
			b64_flush(dec, dest);
			dec->b64_done = true;
		}
	}
}

int message_decoder_feed(struct message_decoder *dec, struct span input,
			 struct buf *dest)
{
	switch (dec->encoding) {
	case MESSAGE_DECODE_QP:
		for (size_t i = 0; i < input.len && !dec->full; i++) {
			if (!qp_byte(dec, dest, input.p[i]))
				(void)qp_byte(dec, dest, input.p[i]);
		}
		break;
	case MESSAGE_DECODE_BASE64:
		b64_feed(dec, input, dest);
		break;
	case MESSAGE_DECODE_7BIT:
	case MESSAGE_DECODE_8BIT:
	case MESSAGE_DECODE_BINARY:
	case MESSAGE_DECODE_UNKNOWN:
		out_append(dec, dest, input.p, input.len);
		break;
	}
	return dec->full ? 1 : 0;
}

int message_decoder_finish(struct message_decoder *dec, struct buf *dest)
{
	if (!dec->full) {
		if (dec->encoding == MESSAGE_DECODE_QP)
			qp_finish(dec, dest);
		else if (dec->encoding == MESSAGE_DECODE_BASE64 &&
			 !dec->b64_done)
			b64_flush(dec, dest);
	}
	dec->b64_done = true;
	return dec->full ? 1 : 0;
}

int message_decode(enum message_decode_encoding encoding, struct span input,
		   size_t max_output, struct buf *dest)
{
	struct message_decoder dec;

	message_decoder_init(&dec, encoding, max_output);
	(void)message_decoder_feed(&dec, input, dest);
	return message_decoder_finish(&dec, dest);
}
