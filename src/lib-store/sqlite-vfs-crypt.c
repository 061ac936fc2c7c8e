/* sqlite-vfs-crypt.c - the "marmot-crypt" SQLite VFS: every page of a
   store.db and of its WAL is sealed with XChaCha20-Poly1305 on its way to
   disk and opened (authenticated) on its way back; the format and what
   stays in the clear are described in sqlite-vfs-crypt.h. Owns the
   process-wide VFS object and the key registry (path -> key, under a
   mutex). Called by SQLite through the VFS and I/O method tables, and by
   the store (vfs_crypt_open) and the vault (key set/clear). Security
   stance: the disk is untrusted. A page that fails authentication is never
   returned: the caller gets SQLITE_IOERR_READ and a zeroed buffer. The one
   exception is SQLite's own WAL recovery, which reads whole frames and
   stops at the first frame whose checksum fails; there a frame that does
   not authenticate (a torn write) comes back zeroed with SQLITE_OK so that
   recovery stops there, as it would on unencrypted data. Keys are checked
   against page 1 when the database is opened, before SQLite can run WAL
   recovery, so a wrong key can never make SQLite discard or delete a WAL.
   Not covered: rollback of whole files (an older copy of store.db or of its
   WAL, or a truncation at a page boundary) is not detected; that needs a
   trusted counter kept elsewhere. */

#include "lib.h"
#include "log.h"
#include "sqlite-vfs-crypt.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <unistd.h>

#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define PAGE_MIN 1024
#define PAGE_MAX 65536
/* SQLite WAL format: a 32-byte file header, then frames of a 24-byte frame
   header and one page. */
#define WAL_HDR_LEN 32
#define WAL_FRAME_HDR_LEN 24
#define WAL_MAGIC 0x377f0682u /* low bit: checksum byte order */
#define AD_MAX 40

_Static_assert(VFS_CRYPT_RESERVE == NONCE_LEN + TAG_LEN, "reserve layout");
_Static_assert(VFS_CRYPT_KEY_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
	       "key size");

enum crypt_kind {
	CRYPT_KIND_DB = 'D',
	CRYPT_KIND_WAL = 'W',
};

struct crypt_file {
	sqlite3_file base; /* must be first: SQLite sees this */
	sqlite3_file *real; /* the underlying VFS's file, after this struct */
	const char *path; /* SQLite keeps it valid until xClose */
	enum crypt_kind kind;
	uint32_t page_size; /* 0 until known */
	uint8_t key[VFS_CRYPT_KEY_LEN];
	uint8_t *scratch; /* one frame (WAL) or page (db), lazily */
	size_t scratch_size;
	/* WAL: header of the frame written last, as page writes follow it. */
	int64_t hdr_frame; /* 0: none */
	uint8_t hdr[WAL_FRAME_HDR_LEN];
};

struct key_entry {
	struct key_entry *next;
	char *path;
	uint8_t key[VFS_CRYPT_KEY_LEN];
};

static pthread_once_t register_once = PTHREAD_ONCE_INIT;
static int register_rc = SQLITE_ERROR;
static sqlite3_vfs *real_vfs;
static sqlite3_vfs crypt_vfs;
static const sqlite3_io_methods crypt_io_methods;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct key_entry *registry;

static _Thread_local char crypt_error[512];

static const char *crypt_errorf(const char *fmt, ...) ATTR_FORMAT(1, 2);
static const char *crypt_errorf(const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(crypt_error, sizeof(crypt_error), fmt, args);
	va_end(args);
	return crypt_error;
}

static uint32_t get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static bool page_size_valid(uint32_t size)
{
	return size >= PAGE_MIN && size <= PAGE_MAX && (size & (size - 1)) == 0;
}

/* SQLite file format 1.3: page size at 16-17 (1 means 65536), reserved
   bytes per page at 20. Returns the page size, or 0 if hdr is not the
   header of a database that this VFS can have written. */
static uint32_t db_header_page_size(const uint8_t *hdr)
{
	static const char magic[16] = "SQLite format 3";
	uint32_t size = ((uint32_t)hdr[16] << 8) | hdr[17];

	if (size == 1)
		size = PAGE_MAX;
	if (memcmp(hdr, magic, sizeof(magic)) != 0 || !page_size_valid(size) ||
	    hdr[20] < VFS_CRYPT_RESERVE)
		return 0;
	return size;
}

/* Associated data of a database page: "MCv1", kind, page number and, for
   page 1, its clear header. */
static size_t db_ad(uint8_t *ad, uint32_t pgno, const uint8_t *page)
{
	size_t len = 9;

	memcpy(ad, "MCv1", 4);
	ad[4] = CRYPT_KIND_DB;
	put_be32(ad + 5, pgno);
	if (pgno == 1) {
		memcpy(ad + len, page, VFS_CRYPT_CLEAR_HEADER);
		len += VFS_CRYPT_CLEAR_HEADER;
	}
	return len;
}

/* Associated data of a WAL frame's page: "MCv1", kind, page number (from
   the frame header) and frame number. Not the salts: a transaction that
   rewrites one of its own frames writes its later frame headers with zero
   salts and fixes them at commit (walRewriteChecksums), after the pages
   were sealed. The salts and the checksum chain are SQLite's to check. */
static size_t wal_ad(uint8_t *ad, uint32_t frame, const uint8_t *frame_hdr)
{
	memcpy(ad, "MCv1", 4);
	ad[4] = CRYPT_KIND_WAL;
	memcpy(ad + 5, frame_hdr, 4);
	put_be32(ad + 9, frame);
	return 13;
}

/* Seals the page image plain (size bytes) into out; [0, clear) is copied
   as is. The image's own reserved bytes are not stored. */
static void page_seal(const uint8_t *key, const uint8_t *plain, uint8_t *out,
		      uint32_t size, uint32_t clear, const uint8_t *ad,
		      size_t ad_len)
{
	uint8_t *nonce = out + size - VFS_CRYPT_RESERVE;
	uint8_t *tag = nonce + NONCE_LEN;

	memcpy(out, plain, clear);
	randombytes_buf(nonce, NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
		out + clear, tag, NULL, plain + clear,
		size - VFS_CRYPT_RESERVE - clear, ad, ad_len, NULL, nonce, key);
}

/* Opens a sealed page in place. The reserved bytes read back as zeros,
   which is what SQLite had there when it wrote the page (it never writes
   past the usable size, and WAL checksums are computed over the whole
   image). Returns 0, or -1 with the page zeroed. */
static int page_open(const uint8_t *key, uint8_t *page, uint32_t size,
		     uint32_t clear, const uint8_t *ad, size_t ad_len)
{
	uint8_t nonce[NONCE_LEN], tag[TAG_LEN];
	int ret;

	memcpy(nonce, page + size - VFS_CRYPT_RESERVE, NONCE_LEN);
	memcpy(tag, page + size - TAG_LEN, TAG_LEN);
	ret = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
		page + clear, NULL, page + clear,
		size - VFS_CRYPT_RESERVE - clear, tag, ad, ad_len, nonce, key);
	if (ret != 0) {
		memset(page, 0, size);
		return -1;
	}
	memset(page + size - VFS_CRYPT_RESERVE, 0, VFS_CRYPT_RESERVE);
	return 0;
}

/* ---- key registry ---- */

/* Makes path absolute as SQLite does before xOpen. Returns a heap string
   or NULL. */
static char *full_path(const char *path)
{
	int size = real_vfs->mxPathname + 1;
	char *out = i_malloc((size_t)size);

	if (real_vfs->xFullPathname(real_vfs, path, size, out) != SQLITE_OK) {
		i_free(out);
		return NULL;
	}
	return out;
}

static struct key_entry **registry_find(const char *path)
{
	struct key_entry **ep;

	for (ep = &registry; *ep != NULL; ep = &(*ep)->next) {
		if (strcmp((*ep)->path, path) == 0)
			break;
	}
	return ep;
}

static bool registry_lookup(const char *path, uint8_t *key_r)
{
	struct key_entry *e;

	pthread_mutex_lock(&registry_lock);
	e = *registry_find(path);
	if (e != NULL)
		memcpy(key_r, e->key, VFS_CRYPT_KEY_LEN);
	pthread_mutex_unlock(&registry_lock);
	return e != NULL;
}

int vfs_crypt_key_set(const char *path, const uint8_t *key)
{
	struct key_entry *e;
	const char *error;
	char *full;

	if (vfs_crypt_register(&error) < 0)
		return -1;
	if ((full = full_path(path)) == NULL)
		return -1;
	pthread_mutex_lock(&registry_lock);
	e = *registry_find(full);
	if (e == NULL) {
		e = i_new(struct key_entry, 1);
		e->path = full;
		full = NULL;
		e->next = registry;
		registry = e;
	}
	memcpy(e->key, key, VFS_CRYPT_KEY_LEN);
	pthread_mutex_unlock(&registry_lock);
	i_free(full);
	return 0;
}

void vfs_crypt_key_clear(const char *path)
{
	struct key_entry **ep, *e;
	char *full;

	if (real_vfs == NULL || (full = full_path(path)) == NULL)
		return;
	pthread_mutex_lock(&registry_lock);
	ep = registry_find(full);
	e = *ep;
	if (e != NULL)
		*ep = e->next;
	pthread_mutex_unlock(&registry_lock);
	i_free(full);
	if (e != NULL) {
		sodium_memzero(e->key, sizeof(e->key));
		i_free(e->path);
		i_free(e);
	}
}

/* ---- I/O helpers ---- */

static uint8_t *file_scratch(struct crypt_file *f, size_t size)
{
	if (f->scratch_size < size) {
		sodium_memzero(f->scratch, f->scratch_size);
		i_free(f->scratch);
		f->scratch = i_malloc(size);
		f->scratch_size = size;
	}
	return f->scratch;
}

/* Reads size bytes at off from the underlying file. A short read is
   SQLITE_IOERR_SHORT_READ (zero-filled) only when nothing at all was
   there (past end of file, as for the unix VFS); a partial page or frame
   cannot be authenticated and is SQLITE_IOERR_READ. */
static int real_read_block(struct crypt_file *f, uint8_t *buf, int size,
			   sqlite3_int64 off)
{
	sqlite3_int64 file_size;
	int rc;

	rc = f->real->pMethods->xRead(f->real, buf, size, off);
	if (rc != SQLITE_IOERR_SHORT_READ)
		return rc;
	memset(buf, 0, (size_t)size);
	if (f->real->pMethods->xFileSize(f->real, &file_size) != SQLITE_OK)
		return SQLITE_IOERR_READ;
	if (file_size <= off)
		return SQLITE_IOERR_SHORT_READ;
	log_error(NULL, "store.vfs.truncated", "path=%s offset=%lld",
		  log_value(0, f->path), (long long)off);
	return SQLITE_IOERR_READ;
}

/* Page size of the main database, from its clear header on disk if not
   known yet. Returns 0 if the file has no (valid) header. */
static uint32_t db_page_size(struct crypt_file *f)
{
	uint8_t hdr[VFS_CRYPT_CLEAR_HEADER];

	if (f->page_size == 0 &&
	    f->real->pMethods->xRead(f->real, hdr, sizeof(hdr), 0) == SQLITE_OK)
		f->page_size = db_header_page_size(hdr);
	return f->page_size;
}

/* Reads and opens database page pgno into page (page_size bytes). */
static int db_read_page(struct crypt_file *f, uint8_t *page, uint32_t pgno)
{
	uint32_t size = f->page_size;
	uint8_t ad[AD_MAX];
	size_t ad_len;
	int rc;

	rc = real_read_block(f, page, (int)size,
			     (sqlite3_int64)(pgno - 1) * size);
	if (rc != SQLITE_OK)
		return rc;
	ad_len = db_ad(ad, pgno, page);
	if (page_open(f->key, page, size,
		      pgno == 1 ? VFS_CRYPT_CLEAR_HEADER : 0, ad, ad_len) < 0) {
		log_error(NULL, "store.vfs.auth_failed", "path=%s page=%u",
			  log_value(0, f->path), pgno);
		return SQLITE_IOERR_READ;
	}
	return SQLITE_OK;
}

static int db_read(struct crypt_file *f, uint8_t *buf, int amt,
		   sqlite3_int64 off)
{
	uint32_t size;
	int rc, ret = SQLITE_OK;

	if (off + amt <= VFS_CRYPT_CLEAR_HEADER)
		return f->real->pMethods->xRead(f->real, buf, amt, off);
	if ((size = db_page_size(f)) == 0) {
		/* No header: an empty file reads as zeros, anything else is
		   not ours. */
		rc = real_read_block(f, buf, amt, off);
		if (rc == SQLITE_IOERR_SHORT_READ)
			return rc;
		memset(buf, 0, (size_t)amt);
		return rc == SQLITE_OK ? SQLITE_IOERR_READ : rc;
	}
	if ((uint32_t)amt == size && off % size == 0)
		return db_read_page(f, buf, (uint32_t)(off / size) + 1);

	/* Part of one or more pages: the header reads of 100 bytes at 0 and
	   16 bytes at 24, for instance. */
	uint8_t *page = file_scratch(f, size);
	while (amt > 0) {
		uint32_t pgno = (uint32_t)(off / size) + 1;
		uint32_t in = (uint32_t)(off % size);
		int n = (int)(size - in) < amt ? (int)(size - in) : amt;

		rc = db_read_page(f, page, pgno);
		if (rc == SQLITE_IOERR_SHORT_READ)
			ret = rc;
		else if (rc != SQLITE_OK) {
			memset(buf, 0, (size_t)n);
			sodium_memzero(page, size);
			return rc;
		}
		memcpy(buf, page + in, (size_t)n);
		buf += n;
		off += n;
		amt -= n;
	}
	sodium_memzero(page, size);
	return ret;
}

static int db_write(struct crypt_file *f, const uint8_t *buf, int amt,
		    sqlite3_int64 off)
{
	uint8_t ad[AD_MAX];
	uint32_t size, pgno;
	size_t ad_len;
	uint8_t *out;

	if (off == 0 && amt >= VFS_CRYPT_CLEAR_HEADER) {
		/* Page 1 carries the page size and reserve for all pages. */
		f->page_size = db_header_page_size(buf);
		if (f->page_size == 0) {
			log_error(NULL, "store.vfs.refused",
				  "path=%s reason=reserve reserve=%u",
				  log_value(0, f->path), buf[20]);
			return SQLITE_IOERR_WRITE;
		}
	}
	size = db_page_size(f);
	if (size == 0 || (uint32_t)amt != size || off % size != 0) {
		log_error(NULL, "store.vfs.refused",
			  "path=%s reason=unaligned_write offset=%lld len=%d",
			  log_value(0, f->path), (long long)off, amt);
		return SQLITE_IOERR_WRITE;
	}
	pgno = (uint32_t)(off / size) + 1;
	out = file_scratch(f, size);
	ad_len = db_ad(ad, pgno, buf);
	page_seal(f->key, buf, out, size,
		  pgno == 1 ? VFS_CRYPT_CLEAR_HEADER : 0, ad, ad_len);
	return f->real->pMethods->xWrite(f->real, out, amt, off);
}

/* WAL page size, from its header on disk if not known yet; 0 if none. */
static uint32_t wal_page_size(struct crypt_file *f)
{
	uint8_t hdr[WAL_HDR_LEN];

	if (f->page_size == 0 &&
	    f->real->pMethods->xRead(f->real, hdr, sizeof(hdr), 0) ==
		    SQLITE_OK &&
	    (get_be32(hdr) & ~1u) == WAL_MAGIC &&
	    page_size_valid(get_be32(hdr + 8)))
		f->page_size = get_be32(hdr + 8);
	return f->page_size;
}

static sqlite3_int64 wal_frame_offset(uint32_t size, uint32_t frame)
{
	return WAL_HDR_LEN +
	       (sqlite3_int64)(frame - 1) * (WAL_FRAME_HDR_LEN + size);
}

/* Reads frame (header and page) into out and opens the page. When lenient
   (SQLite's recovery reading whole frames), a page that does not
   authenticate comes back zeroed with SQLITE_OK: its checksum then fails
   and recovery ends the log there, as for a torn write. */
static int wal_read_frame(struct crypt_file *f, uint8_t *out, uint32_t frame,
			  bool lenient)
{
	uint32_t size = f->page_size;
	uint8_t ad[AD_MAX];
	size_t ad_len;
	int rc;

	rc = real_read_block(f, out, (int)(WAL_FRAME_HDR_LEN + size),
			     wal_frame_offset(size, frame));
	if (rc != SQLITE_OK)
		return rc;
	ad_len = wal_ad(ad, frame, out);
	if (page_open(f->key, out + WAL_FRAME_HDR_LEN, size, 0, ad, ad_len) <
	    0) {
		if (lenient) {
			log_debug(NULL, "store.vfs.wal_frame_invalid",
				  "path=%s frame=%u", log_value(0, f->path),
				  frame);
			return SQLITE_OK;
		}
		log_error(NULL, "store.vfs.auth_failed", "path=%s frame=%u",
			  log_value(0, f->path), frame);
		return SQLITE_IOERR_READ;
	}
	return SQLITE_OK;
}

static int wal_read(struct crypt_file *f, uint8_t *buf, int amt,
		    sqlite3_int64 off)
{
	uint32_t size, frame_len;
	int rc = SQLITE_OK, ret = SQLITE_OK;
	bool lenient;

	if (off + amt <= WAL_HDR_LEN)
		return f->real->pMethods->xRead(f->real, buf, amt, off);
	if ((size = wal_page_size(f)) == 0) {
		rc = real_read_block(f, buf, amt, off);
		if (rc == SQLITE_IOERR_SHORT_READ)
			return rc;
		memset(buf, 0, (size_t)amt);
		return rc == SQLITE_OK ? SQLITE_IOERR_READ : rc;
	}
	frame_len = WAL_FRAME_HDR_LEN + size;
	lenient = (uint32_t)amt == frame_len && off >= WAL_HDR_LEN &&
		  (off - WAL_HDR_LEN) % frame_len == 0;
	if (off < WAL_HDR_LEN) {
		int n = (int)(WAL_HDR_LEN - off);

		rc = f->real->pMethods->xRead(f->real, buf, n, off);
		if (rc != SQLITE_OK) {
			memset(buf, 0, (size_t)amt);
			return rc;
		}
		buf += n;
		off += n;
		amt -= n;
	}
	uint8_t *frame_buf = NULL;
	while (amt > 0) {
		uint32_t frame =
			(uint32_t)((off - WAL_HDR_LEN) / frame_len) + 1;
		uint32_t in = (uint32_t)((off - WAL_HDR_LEN) % frame_len);
		int n = (int)(frame_len - in) < amt ? (int)(frame_len - in)
						    : amt;

		if (in + (uint32_t)n <= WAL_FRAME_HDR_LEN) {
			/* Frame header only: clear. */
			rc = f->real->pMethods->xRead(f->real, buf, n, off);
			if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ)
				break;
		} else {
			if (frame_buf == NULL)
				frame_buf = file_scratch(f, frame_len);
			rc = wal_read_frame(f, frame_buf, frame, lenient);
			if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ)
				break;
			memcpy(buf, frame_buf + in, (size_t)n);
		}
		if (rc == SQLITE_IOERR_SHORT_READ)
			ret = rc;
		buf += n;
		off += n;
		amt -= n;
	}
	if (frame_buf != NULL)
		sodium_memzero(frame_buf, frame_len);
	if (amt > 0) {
		memset(buf, 0, (size_t)amt);
		return rc;
	}
	return ret;
}

/* The header of frame, from the last header write or from disk. */
static int wal_frame_header(struct crypt_file *f, uint32_t frame,
			    uint8_t *hdr_r)
{
	uint32_t size = f->page_size;

	if (f->hdr_frame == frame) {
		memcpy(hdr_r, f->hdr, WAL_FRAME_HDR_LEN);
		return SQLITE_OK;
	}
	if (f->real->pMethods->xRead(f->real, hdr_r, WAL_FRAME_HDR_LEN,
				     wal_frame_offset(size, frame)) !=
	    SQLITE_OK)
		return SQLITE_IOERR_WRITE;
	return SQLITE_OK;
}

static int wal_write(struct crypt_file *f, const uint8_t *buf, int amt,
		     sqlite3_int64 off)
{
	uint8_t hdr[WAL_FRAME_HDR_LEN], ad[AD_MAX];
	uint32_t size, frame_len, frame, in;
	size_t ad_len;
	uint8_t *out;
	int rc;

	if (off + amt <= WAL_HDR_LEN) {
		if (off == 0 && amt == WAL_HDR_LEN) {
			/* A new WAL header (new salts): new log. */
			f->hdr_frame = 0;
			if ((get_be32(buf) & ~1u) == WAL_MAGIC &&
			    page_size_valid(get_be32(buf + 8)))
				f->page_size = get_be32(buf + 8);
		}
		return f->real->pMethods->xWrite(f->real, buf, amt, off);
	}
	if ((size = wal_page_size(f)) == 0 || off < WAL_HDR_LEN)
		goto refuse;
	frame_len = WAL_FRAME_HDR_LEN + size;
	frame = (uint32_t)((off - WAL_HDR_LEN) / frame_len) + 1;
	in = (uint32_t)((off - WAL_HDR_LEN) % frame_len);
	if (in + (uint32_t)amt <= WAL_FRAME_HDR_LEN) {
		/* Frame header (or part of it): clear. */
		if (in == 0 && amt == WAL_FRAME_HDR_LEN) {
			memcpy(f->hdr, buf, WAL_FRAME_HDR_LEN);
			f->hdr_frame = frame;
		} else if (f->hdr_frame == frame) {
			f->hdr_frame = 0;
		}
		return f->real->pMethods->xWrite(f->real, buf, amt, off);
	}
	if (in == 0 && (uint32_t)amt == frame_len) {
		/* A whole frame at once. */
		memcpy(f->hdr, buf, WAL_FRAME_HDR_LEN);
		f->hdr_frame = frame;
		rc = f->real->pMethods->xWrite(f->real, buf, WAL_FRAME_HDR_LEN,
					       off);
		if (rc != SQLITE_OK)
			return rc;
		buf += WAL_FRAME_HDR_LEN;
		off += WAL_FRAME_HDR_LEN;
		amt -= WAL_FRAME_HDR_LEN;
		in = WAL_FRAME_HDR_LEN;
	}
	/* The page must be written whole: SQLite splits WAL writes only when
	   the device lacks SQLITE_IOCAP_POWERSAFE_OVERWRITE, which the unix
	   VFS reports by default. */
	if (in != WAL_FRAME_HDR_LEN || (uint32_t)amt != size)
		goto refuse;
	if ((rc = wal_frame_header(f, frame, hdr)) != SQLITE_OK)
		return rc;
	out = file_scratch(f, size);
	ad_len = wal_ad(ad, frame, hdr);
	page_seal(f->key, buf, out, size, 0, ad, ad_len);
	return f->real->pMethods->xWrite(f->real, out, amt, off);
refuse:
	log_error(NULL, "store.vfs.refused",
		  "path=%s reason=unaligned_wal_write offset=%lld len=%d",
		  log_value(0, f->path), (long long)off, amt);
	return SQLITE_IOERR_WRITE;
}

/* ---- I/O methods ---- */

static int crypt_close(sqlite3_file *file)
{
	struct crypt_file *f = (struct crypt_file *)file;
	int rc = f->real->pMethods->xClose(f->real);

	sodium_memzero(f->key, sizeof(f->key));
	if (f->scratch != NULL) {
		sodium_memzero(f->scratch, f->scratch_size);
		i_free(f->scratch);
	}
	f->scratch_size = 0;
	return rc;
}

static int crypt_read(sqlite3_file *file, void *buf, int amt, sqlite3_int64 off)
{
	struct crypt_file *f = (struct crypt_file *)file;

	if (amt <= 0 || off < 0)
		return SQLITE_IOERR_READ;
	return f->kind == CRYPT_KIND_DB ? db_read(f, buf, amt, off)
					: wal_read(f, buf, amt, off);
}

static int crypt_write(sqlite3_file *file, const void *buf, int amt,
		       sqlite3_int64 off)
{
	struct crypt_file *f = (struct crypt_file *)file;

	if (amt <= 0 || off < 0)
		return SQLITE_IOERR_WRITE;
	return f->kind == CRYPT_KIND_DB ? db_write(f, buf, amt, off)
					: wal_write(f, buf, amt, off);
}

static int crypt_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	struct crypt_file *f = (struct crypt_file *)file;

	f->hdr_frame = 0;
	return f->real->pMethods->xTruncate(f->real, size);
}

static int crypt_sync(sqlite3_file *file, int flags)
{
	struct crypt_file *f = (struct crypt_file *)file;

	return f->real->pMethods->xSync(f->real, flags);
}

static int crypt_file_size(sqlite3_file *file, sqlite3_int64 *size_r)
{
	struct crypt_file *f = (struct crypt_file *)file;

	return f->real->pMethods->xFileSize(f->real, size_r);
}

static int crypt_lock(sqlite3_file *file, int lock)
{
	struct crypt_file *f = (struct crypt_file *)file;

	return f->real->pMethods->xLock(f->real, lock);
}

static int crypt_unlock(sqlite3_file *file, int lock)
{
	struct crypt_file *f = (struct crypt_file *)file;

	return f->real->pMethods->xUnlock(f->real, lock);
}

static int crypt_check_reserved_lock(sqlite3_file *file, int *res_r)
{
	struct crypt_file *f = (struct crypt_file *)file;

	return f->real->pMethods->xCheckReservedLock(f->real, res_r);
}

static int crypt_file_control(sqlite3_file *file, int op, void *arg)
{
	struct crypt_file *f = (struct crypt_file *)file;

	if (op == SQLITE_FCNTL_MMAP_SIZE) {
		/* Memory-mapped pages would bypass xRead: no mmap. */
		*(sqlite3_int64 *)arg = 0;
		return SQLITE_OK;
	}
	return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int crypt_sector_size(sqlite3_file *file)
{
	struct crypt_file *f = (struct crypt_file *)file;

	return f->real->pMethods->xSectorSize(f->real);
}

static int crypt_device_characteristics(sqlite3_file *file)
{
	struct crypt_file *f = (struct crypt_file *)file;

	return f->real->pMethods->xDeviceCharacteristics(f->real);
}

/* The -shm file is the WAL index only (no page content): passed through. */
static int crypt_shm_map(sqlite3_file *file, int region, int size, int extend,
			 void volatile **p_r)
{
	struct crypt_file *f = (struct crypt_file *)file;

	return f->real->pMethods->xShmMap(f->real, region, size, extend, p_r);
}

static int crypt_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
	struct crypt_file *f = (struct crypt_file *)file;

	return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void crypt_shm_barrier(sqlite3_file *file)
{
	struct crypt_file *f = (struct crypt_file *)file;

	f->real->pMethods->xShmBarrier(f->real);
}

static int crypt_shm_unmap(sqlite3_file *file, int delete_flag)
{
	struct crypt_file *f = (struct crypt_file *)file;

	return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

/* Version 2: no xFetch/xUnfetch, so SQLite never memory-maps the file. */
static const sqlite3_io_methods crypt_io_methods = {
	.iVersion = 2,
	.xClose = crypt_close,
	.xRead = crypt_read,
	.xWrite = crypt_write,
	.xTruncate = crypt_truncate,
	.xSync = crypt_sync,
	.xFileSize = crypt_file_size,
	.xLock = crypt_lock,
	.xUnlock = crypt_unlock,
	.xCheckReservedLock = crypt_check_reserved_lock,
	.xFileControl = crypt_file_control,
	.xSectorSize = crypt_sector_size,
	.xDeviceCharacteristics = crypt_device_characteristics,
	.xShmMap = crypt_shm_map,
	.xShmLock = crypt_shm_lock,
	.xShmBarrier = crypt_shm_barrier,
	.xShmUnmap = crypt_shm_unmap,
};

/* ---- VFS methods ---- */

/* True if the first frame of path's WAL opens with f's key: page 1 of the
   database may be torn by a crash during a checkpoint (or be being
   rewritten by one right now), and recovery rewrites it from the WAL. The
   WAL is read with plain pread: SQLite holds no locks on it. */
static bool db_wal_has_key(struct crypt_file *f)
{
	uint32_t size = f->page_size, frame_len = WAL_FRAME_HDR_LEN + size;
	uint8_t hdr[WAL_HDR_LEN], ad[AD_MAX];
	char *wal_path = i_strdup_printf("%s-wal", f->path);
	uint8_t *frame = file_scratch(f, frame_len);
	bool ok = false;
	int fd;

	fd = open(wal_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	i_free(wal_path);
	if (fd < 0)
		return false;
	if (pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr) &&
	    (get_be32(hdr) & ~1u) == WAL_MAGIC && get_be32(hdr + 8) == size &&
	    pread(fd, frame, frame_len, WAL_HDR_LEN) == (ssize_t)frame_len) {
		size_t ad_len = wal_ad(ad, 1, frame);

		ok = page_open(f->key, frame + WAL_FRAME_HDR_LEN, size, 0, ad,
			       ad_len) == 0;
	}
	close(fd);
	sodium_memzero(frame, frame_len);
	return ok;
}

/* Checks f's key against page 1 of a non-empty database. */
static int db_check_key(struct crypt_file *f)
{
	uint8_t hdr[VFS_CRYPT_CLEAR_HEADER];
	sqlite3_int64 file_size;
	uint8_t ad[AD_MAX];
	int rc;

	rc = f->real->pMethods->xFileSize(f->real, &file_size);
	if (rc != SQLITE_OK || file_size == 0)
		return rc;
	rc = f->real->pMethods->xRead(f->real, hdr, sizeof(hdr), 0);
	if (rc == SQLITE_IOERR_SHORT_READ)
		rc = SQLITE_NOTADB;
	if (rc == SQLITE_OK && (f->page_size = db_header_page_size(hdr)) == 0) {
		log_error(NULL, "store.vfs.not_encrypted", "path=%s",
			  log_value(0, f->path));
		return SQLITE_NOTADB;
	}
	for (int attempt = 0; rc == SQLITE_OK && attempt < 2; attempt++) {
		uint8_t *page = file_scratch(f, f->page_size);
		size_t ad_len;
		bool ok;

		if (attempt > 0)
			usleep(20000);
		ok = f->real->pMethods->xRead(f->real, page, (int)f->page_size,
					      0) == SQLITE_OK;
		if (ok) {
			ad_len = db_ad(ad, 1, page);
			ok = page_open(f->key, page, f->page_size,
				       VFS_CRYPT_CLEAR_HEADER, ad, ad_len) == 0;
		}
		sodium_memzero(page, f->page_size);
		if (ok || db_wal_has_key(f))
			return SQLITE_OK;
	}
	if (rc == SQLITE_OK) {
		log_error(NULL, "store.vfs.key_mismatch", "path=%s",
			  log_value(0, f->path));
		rc = SQLITE_NOTADB;
	}
	return rc;
}

static const char *open_kind_name(int flags)
{
	if ((flags & SQLITE_OPEN_MAIN_JOURNAL) != 0)
		return "main_journal";
	if ((flags & SQLITE_OPEN_SUBJOURNAL) != 0)
		return "subjournal";
	if ((flags & SQLITE_OPEN_SUPER_JOURNAL) != 0)
		return "super_journal";
	if ((flags & SQLITE_OPEN_TEMP_DB) != 0)
		return "temp_db";
	if ((flags & SQLITE_OPEN_TEMP_JOURNAL) != 0)
		return "temp_journal";
	if ((flags & SQLITE_OPEN_TRANSIENT_DB) != 0)
		return "transient_db";
	return "unknown";
}

static int crypt_open(sqlite3_vfs *vfs ATTR_UNUSED, sqlite3_filename name,
		      sqlite3_file *file, int flags, int *out_flags_r)
{
	struct crypt_file *f = (struct crypt_file *)file;
	const char *db_path;
	int rc;

	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)(f + 1);
	f->path = name;
	if ((flags & SQLITE_OPEN_MAIN_DB) != 0 && name != NULL) {
		f->kind = CRYPT_KIND_DB;
		db_path = name;
	} else if ((flags & SQLITE_OPEN_WAL) != 0 && name != NULL) {
		f->kind = CRYPT_KIND_WAL;
		db_path = sqlite3_filename_database(name);
	} else {
		/* Unencrypted journals and temp files must not exist. */
		log_error(NULL, "store.vfs.refused", "path=%s kind=%s",
			  log_value(0, name == NULL ? "" : name),
			  open_kind_name(flags));
		return SQLITE_CANTOPEN;
	}
	if (!registry_lookup(db_path, f->key)) {
		log_error(NULL, "store.vfs.no_key", "path=%s",
			  log_value(0, db_path));
		return SQLITE_CANTOPEN;
	}
	rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags_r);
	if (rc != SQLITE_OK) {
		sodium_memzero(f->key, sizeof(f->key));
		return rc;
	}
	f->base.pMethods = &crypt_io_methods;
	if (f->kind == CRYPT_KIND_DB && (rc = db_check_key(f)) != SQLITE_OK) {
		crypt_close(file);
		f->base.pMethods = NULL;
		return rc;
	}
	return SQLITE_OK;
}

static int crypt_delete(sqlite3_vfs *vfs ATTR_UNUSED, const char *name,
			int sync_dir)
{
	return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int crypt_access(sqlite3_vfs *vfs ATTR_UNUSED, const char *name,
			int flags, int *res_r)
{
	return real_vfs->xAccess(real_vfs, name, flags, res_r);
}

static int crypt_full_pathname(sqlite3_vfs *vfs ATTR_UNUSED, const char *name,
			       int size, char *out)
{
	return real_vfs->xFullPathname(real_vfs, name, size, out);
}

static void *crypt_dl_open(sqlite3_vfs *vfs ATTR_UNUSED, const char *name)
{
	return NULL; /* no extensions in an account store */
}

static void crypt_dl_error(sqlite3_vfs *vfs ATTR_UNUSED, int size, char *out)
{
	snprintf(out, (size_t)size, "extension loading disabled");
}

static void (*crypt_dl_sym(sqlite3_vfs *vfs ATTR_UNUSED, void *handle,
			   const char *sym))(void)
{
	return NULL;
}

static void crypt_dl_close(sqlite3_vfs *vfs ATTR_UNUSED, void *handle)
{
}

static int crypt_randomness(sqlite3_vfs *vfs ATTR_UNUSED, int size, char *out)
{
	return real_vfs->xRandomness(real_vfs, size, out);
}

static int crypt_sleep(sqlite3_vfs *vfs ATTR_UNUSED, int usec)
{
	return real_vfs->xSleep(real_vfs, usec);
}

static int crypt_current_time(sqlite3_vfs *vfs ATTR_UNUSED, double *now_r)
{
	return real_vfs->xCurrentTime(real_vfs, now_r);
}

static int crypt_get_last_error(sqlite3_vfs *vfs ATTR_UNUSED, int size,
				char *out)
{
	return real_vfs->xGetLastError(real_vfs, size, out);
}

static int crypt_current_time_int64(sqlite3_vfs *vfs ATTR_UNUSED,
				    sqlite3_int64 *now_r)
{
	return real_vfs->xCurrentTimeInt64(real_vfs, now_r);
}

static void vfs_crypt_register_once(void)
{
	if (sodium_init() < 0 || sqlite3_initialize() != SQLITE_OK)
		return;
	real_vfs = sqlite3_vfs_find(NULL);
	if (real_vfs == NULL || real_vfs->iVersion < 2 ||
	    real_vfs->xCurrentTimeInt64 == NULL)
		return;
	crypt_vfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(struct crypt_file) + real_vfs->szOsFile,
		.mxPathname = real_vfs->mxPathname,
		.zName = VFS_CRYPT_NAME,
		.xOpen = crypt_open,
		.xDelete = crypt_delete,
		.xAccess = crypt_access,
		.xFullPathname = crypt_full_pathname,
		.xDlOpen = crypt_dl_open,
		.xDlError = crypt_dl_error,
		.xDlSym = crypt_dl_sym,
		.xDlClose = crypt_dl_close,
		.xRandomness = crypt_randomness,
		.xSleep = crypt_sleep,
		.xCurrentTime = crypt_current_time,
		.xGetLastError = crypt_get_last_error,
		.xCurrentTimeInt64 = crypt_current_time_int64,
	};
	register_rc = sqlite3_vfs_register(&crypt_vfs, 0);
}

_Static_assert(sizeof(struct crypt_file) % 8 == 0, "real file alignment");

int vfs_crypt_register(const char **error_r)
{
	pthread_once(&register_once, vfs_crypt_register_once);
	if (register_rc != SQLITE_OK) {
		*error_r = crypt_errorf("cannot register SQLite VFS %s",
					VFS_CRYPT_NAME);
		return -1;
	}
	return 0;
}

/* ---- opening a store database ---- */

static int db_exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* Runs a pragma and copies its first result column, as text, into buf.
   Returns 0, or -1 if it produced no row. */
static int db_pragma(sqlite3 *db, const char *sql, char *buf, size_t size)
{
	sqlite3_stmt *stmt;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		const unsigned char *text = sqlite3_column_text(stmt, 0);

		snprintf(buf, size, "%s",
			 text == NULL ? "" : (const char *)text);
	}
	sqlite3_finalize(stmt);
	return rc == SQLITE_ROW ? 0 : -1;
}

static int db_setup(sqlite3 *db, int flags, const char **what_r)
{
	char value[32];
	int reserve;

	*what_r = "configure";
	sqlite3_extended_result_codes(db, 1);
	if (sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL) !=
		    SQLITE_OK ||
	    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL) !=
		    SQLITE_OK ||
	    sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 0, NULL) !=
		    SQLITE_OK ||
	    sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 0, NULL) !=
		    SQLITE_OK ||
	    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0,
			      NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_busy_timeout(db, 5000) != SQLITE_OK ||
	    db_exec(db, "PRAGMA temp_store=MEMORY; PRAGMA mmap_size=0;"
			"PRAGMA secure_delete=ON; PRAGMA trusted_schema=OFF;"
			"PRAGMA cell_size_check=ON") < 0)
		return -1;
	*what_r = "read";
	if (db_pragma(db, "PRAGMA page_count", value, sizeof(value)) < 0)
		return -1;
	if (strcmp(value, "0") == 0 && (flags & SQLITE_OPEN_READWRITE) != 0) {
		/* New database: reserve room for nonce and tag. */
		*what_r = "create";
		reserve = VFS_CRYPT_RESERVE;
		if (sqlite3_file_control(db, "main", SQLITE_FCNTL_RESERVE_BYTES,
					 &reserve) != SQLITE_OK ||
		    db_exec(db, "PRAGMA page_size=4096") < 0)
			return -1;
	}
	*what_r = "journal_mode";
	if (db_pragma(db, "PRAGMA journal_mode", value, sizeof(value)) < 0)
		return -1;
	if (strcmp(value, "wal") != 0 && (flags & SQLITE_OPEN_READWRITE) != 0) {
		/* A new (or rollback-mode) database reaches WAL from
		   journal_mode=MEMORY, which SQLite switches to WAL through
		   OFF: the switch, which writes page 1, then needs no rollback
		   journal file. (OFF itself is refused in defensive mode.) */
		if (db_exec(db, "PRAGMA journal_mode=MEMORY") < 0 ||
		    db_pragma(db, "PRAGMA journal_mode=WAL", value,
			      sizeof(value)) < 0)
			return -1;
	}
	if (strcmp(value, "wal") != 0)
		return -1;
	*what_r = "reserve";
	reserve = -1;
	if (sqlite3_file_control(db, "main", SQLITE_FCNTL_RESERVE_BYTES,
				 &reserve) != SQLITE_OK ||
	    reserve < VFS_CRYPT_RESERVE)
		return -1;
	*what_r = "synchronous";
	return db_exec(db, "PRAGMA synchronous=FULL");
}

int vfs_crypt_open(const char *path, const uint8_t *key, int flags,
		   sqlite3 **db_r, const char **error_r)
{
	sqlite3 *db = NULL;
	const char *what = "open";
	int rc;

	*db_r = NULL;
	if (vfs_crypt_register(error_r) < 0)
		return -1;
	if (vfs_crypt_key_set(path, key) < 0) {
		*error_r = crypt_errorf("%s: path not usable", path);
		return -1;
	}
	rc = sqlite3_open_v2(path, &db, flags, VFS_CRYPT_NAME);
	if (rc == SQLITE_OK && db_setup(db, flags, &what) == 0) {
		*db_r = db;
		return 0;
	}
	if (db == NULL) {
		*error_r = crypt_errorf("%s: %s", path, sqlite3_errstr(rc));
		return -1;
	}
	*error_r =
		crypt_errorf("%s: %s: %s (%d)", path, what, sqlite3_errmsg(db),
			     sqlite3_extended_errcode(db));
	sqlite3_close(db);
	return -1;
}
