/* fuzz-ipc.c - libFuzzer target for the IPC frame parser and field reader.
   Parses the input as a stream of frames with ipc_frame_parse() and reads
   the fields of each frame with a reader in a pattern chosen by the frame
   type, then checks ipc_end(). Built with -Dfuzz=true, and replayed over
   tests/fuzz-corpus/fuzz-ipc/ by every test run. */

#include "lib.h"
#include "ipc.h"
#include "pool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads fields in the order given by pattern: 'u' u32, 'q' u64, 'b'
   bytes, 's' string. */
static void read_pattern(const struct ipc_frame *frame, const char *pattern,
			 pool_t pool)
{
	struct ipc_reader reader;
	uint64_t sink = 0;

	ipc_reader_init(&reader, frame);
	for (const char *p = pattern; *p != '\0'; p++) {
		switch (*p) {
		case 'u':
			sink += ipc_get_u32(&reader);
			break;
		case 'q':
			sink += ipc_get_u64(&reader);
			break;
		case 'b': {
			struct span s = ipc_get_bytes(&reader);

			/* touch every byte so ASan sees out-of-bounds views */
			for (size_t i = 0; i < s.len; i++)
				sink += s.p[i];
			break;
		}
		case 's':
			sink += strlen(ipc_get_str(&reader, pool));
			break;
		}
	}
	if (ipc_end(&reader) == 0)
		i_assert(!reader.failed && reader.rest.len == 0);
	(void)sink;
}

static const char *const unknown_patterns[] = {
	"b", "uu", "qs", "sbsu", "bbbb", "q", "ssss", "ubqs",
};

static const char *pattern_for(uint16_t type)
{
	switch (type) {
	case IPC_MASTER_HELLO:
		return "uss";
	case IPC_VAULT_AUTH:
		return "ssbs";
	case IPC_FRONT_AUTH_REPLY:
		return "uqsbq";
	case IPC_CONTROL_STATUS_REPLY:
		return "s";
	case IPC_VAULT_PING:
	case IPC_FRONT_PONG:
	case IPC_FRONT_RELOAD:
	case IPC_CONTROL_STATUS:
		return "";
	default:
		/* unknown types: a pattern from the type's low bits */
		return unknown_patterns[type % N_ELEMENTS(unknown_patterns)];
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pool_t pool = pool_create("fuzz-ipc", 1024);
	struct span rest = span_make(data, size);
	struct ipc_frame frame;
	const char *error;
	size_t consumed;

	while (ipc_frame_parse(rest, &frame, &consumed, &error) == 1) {
		i_assert(consumed >= IPC_HEADER_SIZE && consumed <= rest.len);
		i_assert(frame.payload.len == consumed - IPC_HEADER_SIZE);
		read_pattern(&frame, pattern_for(frame.type), pool);
		/* and as raw bytes, whatever the type */
		read_pattern(&frame, "b", pool);
		rest = span_skip(rest, consumed);
		pool_clear(pool);
	}
	pool_unref(&pool);
	return 0;
}
