/* fsutil.c - durable-write helpers shared by the key files, certificates,
   blobs and spools. */

#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int write_full(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0) {
		ssize_t ret = write(fd, p, len);

		if (ret < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += ret;
		len -= (size_t)ret;
	}
	return 0;
}

int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret, saved;

	if (fd < 0)
		return -1;
	ret = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return ret;
}

int fsync_parent_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int ret;

	if (slash == NULL)
		dir = i_strdup(".");
	else if (slash == path)
		dir = i_strdup("/");
	else
		dir = i_strndup(path, (size_t)(slash - path));
	ret = fsync_dir(dir);
	i_free(dir);
	return ret;
}
