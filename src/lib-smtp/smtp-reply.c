/* smtp-reply.c - the SMTP client's reply parser and EHLO keyword parser
   (smtp-reply.h). Byte-at-a-time over the caller's input span, no I/O, no
   state between calls: a reply is either complete in the input or not
   taken at all, so the caller can simply retry with more bytes. Used by
   the queue runner (front-queue.c) and fuzzed by fuzz-smtp-reply.c. */

#include "lib.h"
#include "smtp-reply.h"
#include "buf.h"
#include "pool.h"

#include <stdio.h>

static bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/* RFC 5321 4.2: Reply-code = %x32-35 %x30-35 %x30-39. */
static bool reply_code_valid(const uint8_t *p)
{
	return p[0] >= '2' && p[0] <= '5' && p[1] >= '0' && p[1] <= '5' &&
	       is_digit(p[2]);
}

int smtp_reply_parse(struct span input, struct pool *pool,
		     struct smtp_reply *reply_r, size_t *consumed_r,
		     const char **error_r)
{
	const char *lines[SMTP_REPLY_MAX_LINES];
	unsigned int line_count = 0, code = 0;
	size_t pos = 0;

	for (;;) {
		size_t start = pos, end, text_start, text_end;
		ssize_t lf = span_find_byte(span_skip(input, pos), '\n');
		bool last;
		char *text;

		if (lf < 0) {
			if (input.len - start > SMTP_REPLY_MAX_LINE) {
				*error_r = "reply line too long";
				return -1;
			}
			return 0;
		}
		end = start + (size_t)lf; /* at the LF */
		pos = end + 1;
		if (end - start + 1 > SMTP_REPLY_MAX_LINE) {
			*error_r = "reply line too long";
			return -1;
		}
		text_end = end;
		if (text_end > start && input.p[text_end - 1] == '\r')
			text_end--;
		/* RFC 5321 4.2: Reply-line = *( Reply-code "-" [ textstring ]
		   CRLF ) Reply-code [ SP textstring ] CRLF. */
		if (text_end - start < 3 ||
		    !reply_code_valid(input.p + start)) {
			*error_r = "reply without a valid code";
			return -1;
		}
		if (text_end - start == 3) {
			last = true;
			text_start = text_end;
		} else if (input.p[start + 3] == ' ') {
			last = true;
			text_start = start + 4;
		} else if (input.p[start + 3] == '-') {
			last = false;
			text_start = start + 4;
		} else {
			*error_r = "reply code not followed by SP or '-'";
			return -1;
		}
		{
			unsigned int line_code =
				(unsigned int)(input.p[start] - '0') * 100 +
				(unsigned int)(input.p[start + 1] - '0') * 10 +
				(unsigned int)(input.p[start + 2] - '0');

			/* RFC 5321 4.2.1: every line of a multiline reply
			   carries the same code. */
			if (line_count > 0 && line_code != code) {
				*error_r = "multiline reply with differing "
					   "codes";
				return -1;
			}
			code = line_code;
		}
		if (line_count == SMTP_REPLY_MAX_LINES) {
			*error_r = "reply has too many lines";
			return -1;
		}
		text = p_strndup(pool, input.p + text_start,
				 text_end - text_start);
		for (char *p = text; *p != '\0'; p++) {
			/* RFC 5321 4.2: textstring = 1*(%d09 / %d32-126);
			   8-bit text is kept, controls are not. */
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		}
		/* p_strndup stops at a NUL, which is then simply the end of
		   that line's text. */
		lines[line_count++] = text;
		if (last)
			break;
	}
	reply_r->code = code;
	reply_r->line_count = line_count;
	reply_r->lines = p_new(pool, const char *, line_count);
	memcpy(reply_r->lines, lines, sizeof(lines[0]) * line_count);
	memset(&reply_r->enhanced, 0, sizeof(reply_r->enhanced));
	(void)smtp_enhanced_code_parse(lines[0], code, &reply_r->enhanced);
	*consumed_r = pos;
	return 1;
}

/* 1*3digit; returns the digits' count, 0 if none or more than 3. */
static size_t parse_1to3(const char *p, unsigned int *num_r)
{
	size_t n = 0;

	*num_r = 0;
	while (n < 4 && is_digit((uint8_t)p[n])) {
		*num_r = *num_r * 10 + (unsigned int)(p[n] - '0');
		n++;
	}
	return n >= 1 && n <= 3 ? n : 0;
}

size_t smtp_enhanced_code_parse(const char *text, unsigned int reply_code,
				struct smtp_enhanced_code *code_r)
{
	struct smtp_enhanced_code code;
	size_t pos = 0, n;

	memset(code_r, 0, sizeof(*code_r));
	/* RFC 3463 2: status-code = class "." subject "." detail,
	   class = "2" / "4" / "5", subject and detail = 1*3digit. */
	if (text[0] != '2' && text[0] != '4' && text[0] != '5')
		return 0;
	code.class_ = (unsigned int)(text[0] - '0');
	if (text[1] != '.')
		return 0;
	pos = 2;
	if ((n = parse_1to3(text + pos, &code.subject)) == 0 ||
	    text[pos + n] != '.')
		return 0;
	pos += n + 1;
	if ((n = parse_1to3(text + pos, &code.detail)) == 0)
		return 0;
	pos += n;
	if (text[pos] != '\0' && text[pos] != ' ')
		return 0;
	/* RFC 2034 4: the class must match the reply code's first digit;
	   otherwise the text only looks like a code. */
	if (reply_code != 0 && code.class_ != reply_code / 100)
		return 0;
	*code_r = code;
	return pos;
}

const char *smtp_reply_one_line(const struct smtp_reply *reply,
				struct pool *pool)
{
	struct buf out = BUF_INIT;
	const char *result;

	buf_printf(&out, "%u", reply->code);
	for (unsigned int i = 0; i < reply->line_count; i++) {
		if (i > 0 && reply->lines[i][0] != '\0')
			buf_append_str(&out, ";");
		if (reply->lines[i][0] != '\0') {
			buf_append_c(&out, ' ');
			buf_append_str(&out, reply->lines[i]);
		}
	}
	result = p_strdup(pool, buf_cstr(&out));
	buf_free(&out);
	return result;
}

static const struct {
	const char *keyword;
	unsigned int flag;
} smtp_ehlo_keywords[] = {
	{ "PIPELINING", SMTP_EHLO_PIPELINING },
	{ "SIZE", SMTP_EHLO_SIZE },
	{ "8BITMIME", SMTP_EHLO_8BITMIME },
	{ "SMTPUTF8", SMTP_EHLO_SMTPUTF8 },
	{ "DSN", SMTP_EHLO_DSN },
	{ "STARTTLS", SMTP_EHLO_STARTTLS },
	{ "ENHANCEDSTATUSCODES", SMTP_EHLO_ENHANCEDSTATUSCODES },
	{ "CHUNKING", SMTP_EHLO_CHUNKING },
	{ "BINARYMIME", SMTP_EHLO_BINARYMIME },
	{ "REQUIRETLS", SMTP_EHLO_REQUIRETLS },
	{ "AUTH", SMTP_EHLO_AUTH },
	{ "FUTURERELEASE", SMTP_EHLO_FUTURERELEASE },
};

int smtp_ehlo_parse(const struct smtp_reply *reply, struct pool *pool,
		    struct smtp_ehlo *ehlo_r)
{
	memset(ehlo_r, 0, sizeof(*ehlo_r));
	ehlo_r->auth_mechs = "";
	ehlo_r->domain = "";
	if (reply->code != 250 || reply->line_count == 0)
		return -1;
	{
		struct span first = span_from_cstr(reply->lines[0]), name, rest;

		if (!span_split(first, ' ', &name, &rest))
			name = first;
		ehlo_r->domain = p_strndup(pool, name.p, name.len);
	}
	for (unsigned int i = 1; i < reply->line_count; i++) {
		struct span line = span_from_cstr(reply->lines[i]);
		struct span keyword, params;

		if (!span_split(line, ' ', &keyword, &params)) {
			keyword = line;
			params = span_make("", 0);
		}
		for (unsigned int k = 0; k < N_ELEMENTS(smtp_ehlo_keywords);
		     k++) {
			if (!span_eq_ci(keyword,
					span_from_cstr(
						smtp_ehlo_keywords[k].keyword)))
				continue;
			ehlo_r->flags |= smtp_ehlo_keywords[k].flag;
			if (smtp_ehlo_keywords[k].flag == SMTP_EHLO_SIZE) {
				uint64_t size;

				/* RFC 1870 4: "SIZE" [SP number]; 0 or
				   none means no fixed limit. */
				if (span_to_u64(span_trim(params), UINT64_MAX,
						&size) == 0)
					ehlo_r->size_max = size;
			} else if (smtp_ehlo_keywords[k].flag ==
				   SMTP_EHLO_AUTH) {
				ehlo_r->auth_mechs =
					p_strndup(pool, params.p, params.len);
			}
			break;
		}
	}
	return 0;
}
