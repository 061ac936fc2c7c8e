#ifndef MARMOT_MESSAGE_DECODE_H
#define MARMOT_MESSAGE_DECODE_H
/* Content-Transfer-Encoding decoders (RFC 2045 6): quoted-printable,
   base64, and the identity encodings 7bit, 8bit and binary. Streaming:
   feed the encoded body in chunks of any size (one byte at a time gives
   the same output as all at once), then finish. Output is bounded: at
   most max_output bytes are ever appended, and feeding returns 1 once a
   byte had to be dropped for it (the rest of the input is then ignored).

   Leniency, for mail as it is: quoted-printable accepts lower-case hex,
   keeps an invalid "=" escape literally, deletes trailing white space,
   and keeps the input's line ends (CRLF or LF); base64 skips white space
   and stops at the first byte outside its alphabet or at the padding.
   Nothing fails. Used by message-index.c and the IMAP BINARY fetch. */

#include "lib.h"
#include "buf.h"
#include "span.h"

enum message_decode_encoding {
	MESSAGE_DECODE_7BIT,
	MESSAGE_DECODE_8BIT,
	MESSAGE_DECODE_BINARY,
	MESSAGE_DECODE_QP,
	MESSAGE_DECODE_BASE64,
	/* An encoding not in RFC 2045 (x-uuencode, typos): callers should
	   treat the body as application/octet-stream (RFC 2045 6.4). The
	   decoder passes it through unchanged. */
	MESSAGE_DECODE_UNKNOWN,
};

/* Private state; fields are not part of the contract. */
struct message_decoder {
	enum message_decode_encoding encoding;
	size_t max_output, output;
	bool full, b64_done;
	unsigned int state;
	uint8_t hex; /* QP: the first digit of a "=X" escape */
	uint8_t ws_len; /* QP: white space held back (maybe trailing) */
	uint8_t ws[64];
	uint32_t b64_bits;
	unsigned int b64_count;
};

/* Maps a Content-Transfer-Encoding value (any case, surrounding white
   space ignored) to an encoding. NULL or "" is 7bit (RFC 2045 6.1). */
/* The value of a base64 alphabet character (RFC 2045 6.8 Table 1), or -1
   for anything else, '=' included. */
int base64_char_value(uint8_t c);

enum message_decode_encoding message_decode_encoding_parse(const char *cte);

/* Starts decoding. max_output 0 means unlimited. */
void message_decoder_init(struct message_decoder *dec_r,
			  enum message_decode_encoding encoding,
			  size_t max_output);
/* Decodes the next chunk of input and appends the result to dest.
   Returns 0 when more input is welcome, 1 when the output was cut at
   max_output (further input is ignored). */
int message_decoder_feed(struct message_decoder *dec, struct span input,
			 struct buf *dest);
/* Ends the input: flushes a held-back partial base64 quantum or a
   dangling "=X" escape. Returns 1 if the output was cut at max_output,
   else 0. */
int message_decoder_finish(struct message_decoder *dec, struct buf *dest);

/* Decodes a whole body in one call; same return as finish. */
int message_decode(enum message_decode_encoding encoding, struct span input,
		   size_t max_output, struct buf *dest);

#endif
