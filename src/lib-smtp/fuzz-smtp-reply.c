/* fuzz-smtp-reply.c - libFuzzer target for smtp-reply.c. Parses replies
   from the input one after another, as the queue runner does, and checks
   the parser's promises: a reply consumes at least one byte and no more
   than the input, has a code 200..599 and 1..SMTP_REPLY_MAX_LINES lines of
   printable text, a reply is complete on a prefix only if it is complete
   on the whole input, the enhanced code agrees with the reply code, and
   every 250 reply also goes through the EHLO parser (abort() otherwise).
   Replayed over tests/fuzz-corpus/fuzz-smtp-reply/ by tests/fuzz-replay.c
   in every build. */

#include "lib.h"
#include "pool.h"
#include "smtp-reply.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct span in = span_make(data, size);
	pool_t pool;

	if (size > 65536)
		return 0;
	pool = pool_create("fuzz", 4096);
	for (unsigned int n = 0; n < 1000; n++) {
		struct smtp_reply reply;
		struct smtp_ehlo ehlo;
		size_t consumed = 0;
		const char *error = NULL;
		int ret = smtp_reply_parse(in, pool, &reply, &consumed, &error);

		if (ret < 0 && error == NULL)
			abort();
		if (ret <= 0)
			break;
		if (consumed == 0 || consumed > in.len)
			abort();
		if (reply.code < 200 || reply.code > 599 ||
		    reply.line_count == 0 ||
		    reply.line_count > SMTP_REPLY_MAX_LINES)
			abort();
		for (unsigned int i = 0; i < reply.line_count; i++) {
			for (const char *p = reply.lines[i]; *p != '\0'; p++) {
				if ((unsigned char)*p < 0x20 || *p == 0x7f)
					abort();
			}
		}
		if (reply.enhanced.class_ != 0 &&
		    reply.enhanced.class_ != reply.code / 100)
			abort();
		/* A reply cut before its last byte is incomplete. */
		{
			struct smtp_reply again;
			size_t consumed2;

			if (smtp_reply_parse(span_make(in.p, consumed - 1),
					     pool, &again, &consumed2,
					     &error) == 1)
				abort();
		}
		if (reply.code == 250) {
			if (smtp_ehlo_parse(&reply, pool, &ehlo) < 0 ||
			    ehlo.domain == NULL || ehlo.auth_mechs == NULL)
				abort();
		}
		(void)smtp_reply_one_line(&reply, pool);
		in = span_skip(in, consumed);
		pool_clear(pool);
	}
	pool_unref(&pool);
	return 0;
}
