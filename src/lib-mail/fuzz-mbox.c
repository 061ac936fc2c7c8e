/* fuzz-mbox.c - libFuzzer target for mbox.c and the modified UTF-7 codec
   of maildir.c. The input is read as an mbox in both quoting variants;
   every mboxrd message that ends in a newline (or is empty) is written
   back with mbox_write_message() and read again, and must come back with
   the same bytes, flags, keywords and date (abort() otherwise). The input
   is also decoded as a modified UTF-7 folder name; a valid one must
   encode and decode back to the same UTF-8. Replayed over
   tests/fuzz-corpus/fuzz-mbox/ by tests/fuzz-replay.c in every build. */

#include "lib.h"
#include "buf.h"
#include "pool.h"
#include "maildir.h"
#include "mbox.h"

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_round_trip(const struct mbox_message *msg)
{
	struct buf out = BUF_INIT;
	struct mbox_message again;
	const char *error;

	if (msg->size > 0 && msg->data[msg->size - 1] != '\n')
		return; /* mbox.h: gets a newline; not a round trip */
	mbox_write_message(&out, msg->data, msg->size, msg->sender,
			   msg->internaldate, msg->flags, msg->keywords);
	FILE *f = fmemopen(out.data, out.used, "r");
	if (f == NULL)
		abort();
	struct mbox_reader *reader = mbox_reader_create(f, MBOX_FORMAT_MBOXRD);
	if (mbox_reader_next(reader, &again, &error) != 1 ||
	    again.size != msg->size ||
	    (msg->size > 0 && memcmp(again.data, msg->data, msg->size) != 0) ||
	    again.flags != msg->flags ||
	    (msg->internaldate > 0 && again.internaldate != msg->internaldate))
		abort();
	unsigned int i;
	for (i = 0; msg->keywords[i] != NULL; i++) {
		if (again.keywords[i] == NULL ||
		    strcmp(again.keywords[i], msg->keywords[i]) != 0)
			abort();
	}
	if (again.keywords[i] != NULL ||
	    mbox_reader_next(reader, &again, &error) != 0)
		abort();
	mbox_reader_destroy(&reader);
	fclose(f);
	buf_free(&out);
}

static void fuzz_mbox(const uint8_t *data, size_t size, enum mbox_format format)
{
	struct mbox_message msg;
	const char *error;
	FILE *f = fmemopen((void *)data, size, "r");

	if (f == NULL)
		abort();
	struct mbox_reader *reader = mbox_reader_create(f, format);
	while (mbox_reader_next(reader, &msg, &error) > 0) {
		if (format == MBOX_FORMAT_MBOXRD)
			fuzz_round_trip(&msg);
	}
	mbox_reader_destroy(&reader);
	fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > 65536)
		return 0;
	fuzz_mbox(data, size, MBOX_FORMAT_MBOXRD);
	fuzz_mbox(data, size, MBOX_FORMAT_MBOXO);

	if (size <= 1024) {
		pool_t pool = pool_create("fuzz", 1024);
		char *name = i_strndup(data, size);
		const char *utf8 = imap_utf7_to_utf8(pool, name);
		if (utf8 != NULL) {
			const char *utf7 = imap_utf8_to_utf7(pool, utf8);
			const char *back =
				utf7 == NULL ? NULL
					     : imap_utf7_to_utf8(pool, utf7);
			if (back == NULL || strcmp(back, utf8) != 0)
				abort();
		}
		free(name);
		pool_unref(&pool);
	}
	return 0;
}
