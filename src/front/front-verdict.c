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
/* A non-text leaf is decoded only when its encoded body is at most this
   long: the EICAR test file is at most 128 bytes (EICAR's definition: the
   68 characters, then only white space), so with base64's 4/3 and line
   breaks 512 is ample, and SpamAssassin looks for GTUBE in text bodies
   only. A large binary attachment can hold neither, and decoding it was
   most of the stage's cost (about 4 ms for a 100 KiB PDF-like part). */
#define VERDICT_MAX_ENCODED_BINARY 512u
/* Decoded bytes looked at per MIME part and per message. */
#define VERDICT_MAX_DECODED_PART (8u * 1024 * 1024)
#define VERDICT_MAX_DECODED_TOTAL (32u * 1024 * 1024)

static const struct front_verdict_check front_verdict_checks[] = {
	{ "eicar", front_verdict_check_eicar },
	{ "gtube", front_verdict_check_gtube },
};

/* The decoded bodies of a message's base64 and quoted-printable leaves,
   made once per run and shared by the checks. */
struct front_verdict_cache {
	pool_t pool; /* the parts; freed when the run ends */
	bool done;
	struct span *parts;
	unsigned int count, alloc;
};

/* Decodes the base64 and quoted-printable leaves under part into cache.
 *budget is what may still be decoded. */
static void verdict_decode_parts(const struct front_verdict_input *input,
				 const struct mime_part *part,
				 struct front_verdict_cache *cache,
				 size_t *budget, struct buf *tmp)
{
	enum message_decode_encoding enc;
	uint8_t *copy;
	size_t max;

	if (part->children != NULL) {
		for (const struct mime_part *c = part->children; c != NULL;
		     c = c->next)
			verdict_decode_parts(input, c, cache, budget, tmp);
		return;
	}
	enc = message_decode_encoding_parse(part->encoding);
	if (enc != MESSAGE_DECODE_BASE64 && enc != MESSAGE_DECODE_QP)
		return; /* the raw search sees these bytes */
	if (*budget == 0 || part->body_end > input->message_len ||
	    part->body_offset > part->body_end)
		return;
	/* part->type is lower-cased, text/plain when absent (RFC 2045 5.2). */
	if (strcmp(part->type, "text") != 0 &&
	    part->body_end - part->body_offset > VERDICT_MAX_ENCODED_BINARY)
		return;
	max = *budget < VERDICT_MAX_DECODED_PART ? *budget
						 : VERDICT_MAX_DECODED_PART;
	buf_reset(tmp);
	(void)message_decode(
		enc,
		span_make(input->message + part->body_offset,
			  (size_t)(part->body_end - part->body_offset)),
		max, tmp);
	*budget -= tmp->used;
	if (tmp->used == 0)
		return;
	if (cache->count == cache->alloc) {
		struct span *parts;

		cache->alloc = cache->alloc == 0 ? 8 : cache->alloc * 2;
		parts = p_new(cache->pool, struct span, cache->alloc);
		if (cache->count > 0)
			memcpy(parts, cache->parts,
			       sizeof(*parts) * cache->count);
		cache->parts = parts;
	}
	copy = p_malloc(cache->pool, tmp->used);
	memcpy(copy, tmp->data, tmp->used);
	cache->parts[cache->count++] = span_make(copy, tmp->used);
}

static void verdict_cache_fill(const struct front_verdict_input *input,
			       struct front_verdict_cache *cache)
{
	struct mime_result mime;
	struct buf tmp = BUF_INIT;
	size_t budget = VERDICT_MAX_DECODED_TOTAL;

	cache->done = true;
	mime_parse(cache->pool, NULL, input->message, input->message_len,
		   &mime);
	if (mime.root != NULL)
		verdict_decode_parts(input, mime.root, cache, &budget, &tmp);
	buf_free(&tmp);
}

/* True if needle is in the message as sent, or in the decoded body of one
   of its base64 or quoted-printable parts (an attachment). */
static bool verdict_message_contains(const struct front_verdict_input *input,
				     struct span needle)
{
	struct front_verdict_cache local, *cache = input->cache;
	bool found = false;

	if (span_find(span_make(input->message, input->message_len), needle) >=
	    0)
		return true;
	if (cache == NULL) {
		/* A check called on its own: decode for this call only. */
		memset(&local, 0, sizeof(local));
		local.pool = pool_create("verdict decode", 4096);
		cache = &local;
	}
	if (!cache->done)
		verdict_cache_fill(input, cache);
	for (unsigned int i = 0; i < cache->count && !found; i++)
		found = span_find(cache->parts[i], needle) >= 0;
	if (cache == &local)
		pool_unref(&local.pool);
	return found;
}

void front_verdict_check_gtube(const struct front_verdict_input *input,
			       pool_t pool,
			       struct front_verdict_result *result_r)
{
	if (!verdict_message_contains(input, SPAN_LIT(VERDICT_GTUBE)))
		return;
	result_r->action = FRONT_VERDICT_JUNK;
	result_r->header = "X-Spam: yes";
}

void front_verdict_check_eicar(const struct front_verdict_input *input,
			       pool_t pool,
			       struct front_verdict_result *result_r)
{
	if (!verdict_message_contains(input, SPAN_LIT(VERDICT_EICAR)))
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
	struct front_verdict_input shared = *input;
	struct front_verdict_cache cache;
	struct buf headers = BUF_INIT;

	/* The decoded parts are made at most once, for all checks, and freed
	   when the run ends. */
	memset(&cache, 0, sizeof(cache));
	cache.pool = pool_create("verdict decode", 4096);
	shared.cache = &cache;
	memset(verdict_r, 0, sizeof(*verdict_r));
	verdict_r->action = FRONT_VERDICT_ACCEPT;
	for (unsigned int i = 0; i < check_count; i++) {
		struct front_verdict_result res;

		memset(&res, 0, sizeof(res));
		checks[i].check(&shared, pool, &res);
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
	pool_unref(&cache.pool);
}

void front_verdict_run(const struct front_verdict_input *input, pool_t pool,
		       struct front_verdict *verdict_r)
{
	front_verdict_run_checks(front_verdict_checks,
				 N_ELEMENTS(front_verdict_checks), input, pool,
				 verdict_r);
}
