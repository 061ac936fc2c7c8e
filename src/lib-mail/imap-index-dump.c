/* imap-index-dump.c - a test helper (built with the tests, not installed)
   that prints what message_index_build() caches for each message file, so
   tests/integration/test_imap_dovecot.py can compare it with Dovecot's
   FETCH answers:

     imap-index-dump FILE...

   For each FILE, in order, three records "NAME LENGTH\n" followed by
   LENGTH bytes and "\n": NAME is ENVELOPE, BODYSTRUCTURE and BODY (the
   strings sent for FETCH ENVELOPE, BODYSTRUCTURE and BODY, RFC 9051
   7.5.2). Exit status: 0, 1 on an unreadable or too large file, 2 on
   bad usage. */

#include "lib.h"
#include "buf.h"
#include "pool.h"
#include "message-index.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Larger than any message the store accepts. */
#define DUMP_INPUT_MAX (256u * 1024 * 1024)

static int read_file(const char *path, struct buf *in)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "imap-index-dump: %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	for (;;) {
		uint8_t *p = buf_reserve(in, 65536);
		ssize_t n = read(fd, p, 65536);

		if (n < 0) {
			fprintf(stderr, "imap-index-dump: %s: %s\n", path,
				strerror(errno));
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		buf_commit(in, (size_t)n);
		if (in->used > DUMP_INPUT_MAX) {
			fprintf(stderr, "imap-index-dump: %s: too large\n",
				path);
			close(fd);
			return -1;
		}
	}
	close(fd);
	return 0;
}

static void print_record(const char *name, const char *value)
{
	size_t len = strlen(value);

	printf("%s %zu\n", name, len);
	fwrite(value, 1, len, stdout);
	putchar('\n');
}

int main(int argc, char *argv[])
{
	int ret = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: imap-index-dump FILE...\n");
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct buf in = BUF_INIT;
		pool_t pool;
		struct message_index index;

		if (read_file(argv[i], &in) < 0) {
			buf_free(&in);
			ret = 1;
			continue;
		}
		pool = pool_create("imap-index-dump", 16384);
		message_index_build(pool, in.data, in.used, &index);
		print_record("ENVELOPE", index.envelope);
		print_record("BODYSTRUCTURE", index.bodystructure);
		print_record("BODY", index.body);
		pool_unref(&pool);
		buf_free(&in);
	}
	return ret;
}
