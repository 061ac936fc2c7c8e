#ifndef MARMOT_FSUTIL_H
#define MARMOT_FSUTIL_H
/* File-system helpers for durable writes: everything Marmot acknowledges
   is written with write_full(), fsync()ed, and its directory entry made
   durable with fsync_parent_dir() (a rename or a new file is only durable
   once its directory is synced). */

#include "lib.h"

/* Writes all of data, retrying on EINTR and short writes. Returns 0, or
   -1 with errno set. */
int write_full(int fd, const void *data, size_t len);
/* fsyncs the directory dir itself. Returns 0, or -1 with errno set. */
int fsync_dir(const char *dir);
/* fsyncs the directory that contains path ("." for a bare name). Returns
   0, or -1 with errno set. */
int fsync_parent_dir(const char *path);

#endif
