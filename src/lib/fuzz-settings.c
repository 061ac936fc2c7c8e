/* fuzz-settings.c - libFuzzer target for the marmot.conf parser. Writes the
   input to a file in a per-process directory under /tmp (created once with
   mkdtemp and reused) and loads it with settings_load(), freeing whatever
   comes back. Built with -Dfuzz=true, and replayed over
   tests/fuzz-corpus/fuzz-settings/ by every test run. */

#include "lib.h"
#include "settings.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir[] = "/tmp/marmot-fuzz-settings-XXXXXX";
static char fuzz_path[sizeof(fuzz_dir) + 16];

static void fuzz_cleanup(void)
{
	(void)unlink(fuzz_path);
	(void)rmdir(fuzz_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct marmot_settings *set = NULL;
	char *error = NULL;
	int fd;

	if (fuzz_path[0] == '\0') {
		if (mkdtemp(fuzz_dir) == NULL)
			i_panic("mkdtemp(%s) failed", fuzz_dir);
		snprintf(fuzz_path, sizeof(fuzz_path), "%s/marmot.conf",
			 fuzz_dir);
		atexit(fuzz_cleanup);
	}
	fd = open(fuzz_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		i_panic("open(%s) failed", fuzz_path);
	for (size_t done = 0; done < size;) {
		ssize_t ret = write(fd, data + done, size - done);

		if (ret <= 0)
			i_panic("write(%s) failed", fuzz_path);
		done += (size_t)ret;
	}
	close(fd);

	if (settings_load(fuzz_dir, NULL, &set, &error) == 0) {
		i_assert(error == NULL && set != NULL);
		i_assert(set->hostname != NULL && set->listen[0] != NULL);
		settings_free(&set);
	} else {
		i_assert(set == NULL && error != NULL);
		/* every error names the file */
		i_assert(strncmp(error, fuzz_dir, strlen(fuzz_dir)) == 0);
		i_free(error);
	}
	return 0;
}
