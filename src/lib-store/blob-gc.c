/* blob-gc.c - the blob collector: one pass lists an account's blob files,
   then reads the ids its store references, then removes the unreferenced
   files older than the age guard (blob-gc.h states the order and the race
   it closes). Owns only the two sorted id arrays of a pass. Called by the
   vault's periodic collection and `marmot store gc`. Security stance: no
   keys, no message content; it deletes only through blob_collect(), which
   acts only on names derived from a valid 32-byte id, and keeps any blob
   it cannot decide about (young, vanished, or the store unreadable: an
   error before any deletion). */

#include "lib.h"
#include "blob.h"
#include "blob-gc.h"
#include "store.h"

#include <stdlib.h>
#include <time.h>

struct blob_gc_ids {
	uint8_t (*ids)[BLOB_ID_LEN];
	size_t count, alloc;
};

static void blob_gc_ids_add(struct blob_gc_ids *set,
			    const uint8_t id[BLOB_ID_LEN])
{
	if (set->count == set->alloc) {
		set->alloc = set->alloc == 0 ? 256 : set->alloc * 2;
		set->ids = i_realloc(set->ids,
				     i_size_mul(set->alloc, sizeof(*set->ids)));
	}
	memcpy(set->ids[set->count++], id, BLOB_ID_LEN);
}

static int blob_gc_id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, BLOB_ID_LEN);
}

static void blob_gc_ids_sort(struct blob_gc_ids *set)
{
	if (set->count > 1)
		qsort(set->ids, set->count, sizeof(*set->ids), blob_gc_id_cmp);
}

static bool blob_gc_ids_has(const struct blob_gc_ids *set,
			    const uint8_t id[BLOB_ID_LEN])
{
	return set->count > 0 &&
	       bsearch(id, set->ids, set->count, sizeof(*set->ids),
		       blob_gc_id_cmp) != NULL;
}

static int blob_gc_file_cb(const uint8_t id[BLOB_ID_LEN], uint64_t file_size,
			   void *context)
{
	(void)file_size;
	blob_gc_ids_add(context, id);
	return 0;
}

static int blob_gc_ref_cb(const uint8_t blob_id[32], uint64_t size,
			  void *context)
{
	(void)size;
	blob_gc_ids_add(context, blob_id);
	return 0;
}

/* Step 3 for one unreferenced candidate. */
static int blob_gc_one(struct blob_store *blobs, const uint8_t id[BLOB_ID_LEN],
		       time_t older_than, bool dry_run,
		       struct blob_gc_result *res, const char **error_r)
{
	uint64_t size;
	time_t mtime;
	int ret;

	ret = blob_stat(blobs, id, &size, &mtime, error_r);
	if (ret <= 0)
		return ret; /* 0: collected meanwhile (another pass) */
	res->unreferenced++;
	if (mtime >= older_than) {
		res->young++;
		res->young_bytes += size;
		return 0;
	}
	if (dry_run) {
		res->deleted++;
		res->deleted_bytes += size;
		return 0;
	}
	ret = blob_collect(blobs, id, older_than, &size, error_r);
	if (ret < 0)
		return -1;
	if (ret > 0) {
		res->deleted++;
		res->deleted_bytes += size;
	} else {
		/* Touched by a blob_put since blob_stat: a writer's. */
		res->young++;
	}
	return 0;
}

int blob_gc_run(struct store *store, struct blob_store *blobs,
		unsigned int min_age_secs, bool dry_run,
		const atomic_bool *stop, struct blob_gc_result *result_r,
		const char **error_r)
{
	struct blob_gc_ids files = { NULL, 0, 0 }, refs = { NULL, 0, 0 };
	/* Taken before listing: every blob_put that returns after this has
	   a newer mtime (blob.h), whatever the pass's duration. */
	time_t now = time(NULL);
	/* Without a guard, the current second counts as old too. */
	time_t older_than =
		min_age_secs == 0 ? now + 1 : now - (time_t)min_age_secs;
	int ret = 0;

	memset(result_r, 0, sizeof(*result_r));
	/* 1. candidates, 2. references: in this order (blob-gc.h). */
	if (blob_foreach(blobs, blob_gc_file_cb, &files, error_r) < 0 ||
	    store_foreach_blob(store, blob_gc_ref_cb, &refs, error_r) < 0) {
		ret = -1;
		goto out;
	}
	result_r->files = files.count;
	result_r->referenced = refs.count;
	blob_gc_ids_sort(&refs);
	/* 3. */
	for (size_t i = 0; i < files.count; i++) {
		if (blob_gc_ids_has(&refs, files.ids[i]))
			continue;
		if (stop != NULL && atomic_load(stop)) {
			result_r->stopped = true;
			break;
		}
		if (blob_gc_one(blobs, files.ids[i], older_than, dry_run,
				result_r, error_r) < 0) {
			ret = -1;
			break;
		}
	}
out:
	i_free(files.ids);
	i_free(refs.ids);
	return ret;
}
