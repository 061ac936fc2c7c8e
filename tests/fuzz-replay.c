/* fuzz-replay.c - runs a fuzz target's LLVMFuzzerTestOneInput over every
   file of its corpus directory, so CI replays the corpora under ASan+UBSan
   without needing clang's libFuzzer. Prints TAP: one line per file. */

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	struct dirent *d;
	char **names = NULL;
	size_t count = 0;
	DIR *dir;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS-DIR\n", argv[0]);
		return 2;
	}
	dir = opendir(argv[1]);
	if (dir == NULL) {
		printf("1..1\nnot ok 1 - corpus %s missing\n", argv[1]);
		return 1;
	}
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		names = realloc(names, (count + 1) * sizeof(*names));
		if (names == NULL)
			abort();
		names[count++] = strdup(d->d_name);
	}
	closedir(dir);
	qsort(names, count, sizeof(*names), name_cmp);
	if (count == 0) {
		printf("1..1\nnot ok 1 - corpus %s is empty\n", argv[1]);
		return 1;
	}
	printf("1..%zu\n", count);
	for (size_t i = 0; i < count; i++) {
		char path[4096];
		struct stat st;
		uint8_t *buf;
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", argv[1], names[i]);
		f = fopen(path, "rb");
		if (f == NULL || fstat(fileno(f), &st) < 0) {
			printf("not ok %zu - %s unreadable\n", i + 1, names[i]);
			if (f != NULL)
				fclose(f);
			continue;
		}
		buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
		if (buf == NULL ||
		    fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
			abort();
		fclose(f);
		/* A crash or sanitizer report aborts the run: the test fails.
		 */
		LLVMFuzzerTestOneInput(buf, (size_t)st.st_size);
		free(buf);
		printf("ok %zu - %s\n", i + 1, names[i]);
		free(names[i]);
	}
	free(names);
	return 0;
}
