/* front-verdict.c - the verdict stage (front-verdict.h): the table of
   checks run over a whole message before anything is durable, and the two
   built-in checks, GTUBE (=> Junk) and EICAR (=> reject). Called by
   front-delivery.c on its delivery thread; checks are pure functions of the
   message, so the stage holds no state.

   Security stance: the message is untrusted and may be large. Checks look
   at the raw bytes and at the decoded bodies of base64 and
   quoted-printable MIME leaves (lib-mail's parser and decoder, which bound
   their own work); decoding is capped per part and per message, so a
   crafted message costs at most a bounded amount of memory, and what is
   beyond the caps is simply not looked at (the raw bytes always are).
   Nothing of the message is logged. */

#include "lib.h"
#include "buf.h"
#include "message-decode.h"
#include "mime-parser.h"
#include "span.h"
#include "front-verdict.h"

/* SpamAssassin's GTUBE (https://spamassassin.apache.org/gtube/). */
#define VERDICT_GTUBE \
	"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
/* The EICAR anti-virus test file (https://www.eicar.org), 68 bytes. */
#define VERDICT_EICAR \
	"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
#define VERDICT_EICAR_REASON \
	"5.7.1 message contains a virus (EICAR test signature)"
#define VERDICT_GENERIC_REASON "5.7.1 message refused by policy"
/* Decoded bytes looked at per MIME part and per message. */
#define VERDICT_MAX_DECODED_PART (8u * 1024 * 1024)
#define VERDICT_MAX_DECODED_TOTAL (32u * 1024 * 1024)

static const struct front_verdict_check front_verdict_checks[] = {
	{ "eicar", front_verdict_check_eicar },
	{ "gtube", front_verdict_check_gtube },
};

/* Decodes the base64 and quoted-printable leaves under part and looks for
   needle in them. *budget is what may still be decoded. */
static bool verdict_part_contains(const struct front_verdict_input *input,
				  const struct mime_part *part,
				  struct span needle, size_t *budget,
				  struct buf *tmp)
{
	enum message_decode_encoding enc;
	size_t max;
	bool found;

	if (part->children != NULL) {
		for (const struct mime_part *c = part->children; c != NULL;
		     c = c->next) {
			if (verdict_part_contains(input, c, needle, budget,
						  tmp))
				return true;
		}
		return false;
	}
	enc = message_decode_encoding_parse(part->encoding);
	if (enc != MESSAGE_DECODE_BASE64 && enc != MESSAGE_DECODE_QP)
		return false; /* the raw search saw these bytes */
	if (*budget == 0 || part->body_end > input->message_len ||
	    part->body_offset > part->body_end)
		return false;
	max = *budget < VERDICT_MAX_DECODED_PART ? *budget
						 : VERDICT_MAX_DECODED_PART;
	buf_reset(tmp);
	(void)message_decode(
		enc,
		span_make(input->message + part->body_offset,
			  (size_t)(part->body_end - part->body_offset)),
		max, tmp);
	*budget -= tmp->used;
	found = span_find(buf_span(tmp), needle) >= 0;
	return found;
}

/* True if needle is in the message as sent, or in the decoded body of one
   of its base64 or quoted-printable parts (an attachment). */
static bool verdict_message_contains(const struct front_verdict_input *input,
				     pool_t pool, struct span needle)
{
	struct mime_result mime;
	struct buf tmp = BUF_INIT;
	size_t budget = VERDICT_MAX_DECODED_TOTAL;
	bool found;

	if (span_find(span_make(input->message, input->message_len), needle) >=
	    0)
		return true;
	mime_parse(pool, NULL, input->message, input->message_len, &mime);
	found = mime.root != NULL &&
		verdict_part_contains(input, mime.root, needle, &budget, &tmp);
	buf_free(&tmp);
	return found;
}

void front_verdict_check_gtube(const struct front_verdict_input *input,
			       pool_t pool,
			       struct front_verdict_result *result_r)
{
	if (!verdict_message_contains(input, pool, SPAN_LIT(VERDICT_GTUBE)))
		return;
	result_r->action = FRONT_VERDICT_JUNK;
	result_r->header = "X-Spam: yes";
}

void front_verdict_check_eicar(const struct front_verdict_input *input,
			       pool_t pool,
			       struct front_verdict_result *result_r)
{
	if (!verdict_message_contains(input, pool, SPAN_LIT(VERDICT_EICAR)))
		return;
	result_r->action = FRONT_VERDICT_REJECT;
	result_r->reason = VERDICT_EICAR_REASON;
}

/* RFC 5322 2.2: a field name is printable ASCII but ':', and the line
   must not contain CR or LF (a check must not be able to inject a
   header block end into the message). */
static bool verdict_header_valid(const char *header)
{
	const char *colon = strchr(header, ':');

	if (colon == NULL || colon == header)
		return false;
	for (const char *p = header; p < colon; p++) {
		if (*p < 33 || *p > 126)
			return false;
	}
	return strpbrk(header, "\r\n") == NULL;
}

void front_verdict_run_checks(const struct front_verdict_check *checks,
			      unsigned int check_count,
			      const struct front_verdict_input *input,
			      pool_t pool, struct front_verdict *verdict_r)
{
	struct buf headers = BUF_INIT;

	memset(verdict_r, 0, sizeof(*verdict_r));
	verdict_r->action = FRONT_VERDICT_ACCEPT;
	for (unsigned int i = 0; i < check_count; i++) {
		struct front_verdict_result res;

		memset(&res, 0, sizeof(res));
		checks[i].check(input, pool, &res);
		if (res.action == FRONT_VERDICT_REJECT) {
			verdict_r->action = FRONT_VERDICT_REJECT;
			verdict_r->check = checks[i].name;
			verdict_r->reason = res.reason != NULL
						    ? res.reason
						    : VERDICT_GENERIC_REASON;
			break;
		}
		if (res.action == FRONT_VERDICT_ACCEPT)
			continue;
		if (res.header != NULL && verdict_header_valid(res.header)) {
			buf_append_str(&headers, res.header);
			buf_append(&headers, "\r\n", 2);
		}
		if (res.action > verdict_r->action) {
			verdict_r->action = res.action;
			verdict_r->check = checks[i].name;
		}
	}
	/* A rejected message is not stored: its headers do not matter. */
	verdict_r->headers =
		verdict_r->action == FRONT_VERDICT_REJECT
			? ""
			: p_strndup(pool, buf_cstr(&headers), headers.used);
	buf_free(&headers);
}

void front_verdict_run(const struct front_verdict_input *input, pool_t pool,
		       struct front_verdict *verdict_r)
{
	front_verdict_run_checks(front_verdict_checks,
				 N_ELEMENTS(front_verdict_checks), input, pool,
				 verdict_r);
}
