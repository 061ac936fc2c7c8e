/* maildir.c - reads and writes Maildir++ trees for `marmot import` and
   `marmot export` (src/cli/cli-store.c): folder discovery, flags in the
   info part of file names, Dovecot's dovecot-keywords letters, modified
   UTF-7 folder names, and crash-safe delivery through tmp/. It owns only
   the files it creates; the caller owns everything else. Contracts in
   maildir.h. */

#include "lib.h"
#include "maildir.h"
#include "buf.h"
#include "charset.h"
#include "pool.h"
#include "span.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAILDIR_FORWARDED "$Forwarded"

/* ---- modified UTF-7 (RFC 3501 5.1.3) ---- */

static const char imap_b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int imap_b64_value(uint8_t c)
{
	const char *p = c == '\0' ? NULL : strchr(imap_b64, c);

	return p == NULL ? -1 : (int)(p - imap_b64);
}

static void utf8_append_cp(struct buf *out, uint32_t cp)
{
	if (cp < 0x80) {
		buf_append_c(out, (uint8_t)cp);
	} else if (cp < 0x800) {
		buf_append_c(out, (uint8_t)(0xc0 | (cp >> 6)));
		buf_append_c(out, (uint8_t)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		buf_append_c(out, (uint8_t)(0xe0 | (cp >> 12)));
		buf_append_c(out, (uint8_t)(0x80 | ((cp >> 6) & 0x3f)));
		buf_append_c(out, (uint8_t)(0x80 | (cp & 0x3f)));
	} else {
		buf_append_c(out, (uint8_t)(0xf0 | (cp >> 18)));
		buf_append_c(out, (uint8_t)(0x80 | ((cp >> 12) & 0x3f)));
		buf_append_c(out, (uint8_t)(0x80 | ((cp >> 6) & 0x3f)));
		buf_append_c(out, (uint8_t)(0x80 | (cp & 0x3f)));
	}
}

const char *imap_utf7_to_utf8(pool_t pool, const char *in)
{
	struct buf out = BUF_INIT;
	const uint8_t *p = (const uint8_t *)in;
	const char *result = NULL;

	buf_append_str(&out, "");
	while (*p != '\0') {
		if (*p < 0x20 || *p > 0x7e)
			goto fail;
		if (*p != '&') {
			buf_append_c(&out, *p++);
			continue;
		}
		p++;
		if (*p == '-') {
			/* "&-" is '&' */
			buf_append_c(&out, '&');
			p++;
			continue;
		}
		/* Base64 of UTF-16BE up to '-'. */
		uint32_t bits = 0, high = 0;
		unsigned int nbits = 0, units = 0;
		while (*p != '-') {
			int v = imap_b64_value(*p);
			if (v < 0)
				goto fail;
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			p++;
			if (nbits < 16)
				continue;
			nbits -= 16;
			uint32_t unit = (bits >> nbits) & 0xffff;
			bits &= (1u << nbits) - 1;
			units++;
			if (high != 0) {
				if (unit < 0xdc00 || unit > 0xdfff)
					goto fail;
				utf8_append_cp(&out,
					       0x10000 +
						       ((high - 0xd800) << 10) +
						       (unit - 0xdc00));
				high = 0;
			} else if (unit >= 0xd800 && unit <= 0xdbff) {
				high = unit;
			} else if ((unit >= 0xdc00 && unit <= 0xdfff) ||
				   unit == 0) {
				goto fail;
			} else {
				utf8_append_cp(&out, unit);
			}
		}
		p++; /* '-' */
		/* Leftover bits must be zero padding of under 6 bits, and
		   "&-" aside, a run is never empty. */
		if (high != 0 || units == 0 || nbits >= 6 || bits != 0)
			goto fail;
	}
	result = p_strndup(pool, out.data, out.used);
fail:
	buf_free(&out);
	return result;
}

/* Decodes one UTF-8 sequence of a valid string. */
static uint32_t utf8_next(const uint8_t **_p)
{
	const uint8_t *p = *_p;
	uint32_t cp;
	unsigned int extra;

	if (p[0] < 0x80) {
		cp = p[0];
		extra = 0;
	} else if (p[0] < 0xe0) {
		cp = p[0] & 0x1f;
		extra = 1;
	} else if (p[0] < 0xf0) {
		cp = p[0] & 0x0f;
		extra = 2;
	} else {
		cp = p[0] & 0x07;
		extra = 3;
	}
	for (unsigned int i = 1; i <= extra; i++)
		cp = (cp << 6) | (p[i] & 0x3f);
	*_p = p + 1 + extra;
	return cp;
}

static void imap_b64_flush(struct buf *out, uint32_t *bits, unsigned int *nbits,
			   bool final)
{
	while (*nbits >= 6) {
		*nbits -= 6;
		buf_append_c(out, (uint8_t)imap_b64[(*bits >> *nbits) & 0x3f]);
	}
	if (final && *nbits > 0) {
		buf_append_c(out,
			     (uint8_t)imap_b64[(*bits << (6 - *nbits)) & 0x3f]);
		*nbits = 0;
	}
	*bits &= (1u << *nbits) - 1;
}

/* Like imap_utf8_to_utf7, but also encodes the characters in extra
   (printable ASCII that must not appear literally). */
static const char *imap_utf7_encode(pool_t pool, const char *in,
				    const char *extra)
{
	const uint8_t *p = (const uint8_t *)in;
	struct buf out = BUF_INIT;
	bool in_b64 = false;
	uint32_t bits = 0;
	unsigned int nbits = 0;

	if (!charset_utf8_is_valid(span_from_cstr(in)))
		return NULL;
	buf_append_str(&out, "");
	while (*p != '\0') {
		bool direct = *p >= 0x20 && *p <= 0x7e && *p != '&' &&
			      strchr(extra, *p) == NULL;
		if (direct) {
			if (in_b64) {
				imap_b64_flush(&out, &bits, &nbits, true);
				buf_append_c(&out, '-');
				in_b64 = false;
			}
			buf_append_c(&out, *p++);
			continue;
		}
		if (*p == '&' && !in_b64) {
			buf_append_str(&out, "&-");
			p++;
			continue;
		}
		if (!in_b64) {
			buf_append_c(&out, '&');
			in_b64 = true;
		}
		uint32_t cp = utf8_next(&p);
		uint32_t units[2];
		unsigned int n = 1;
		if (cp >= 0x10000) {
			units[0] = 0xd800 + ((cp - 0x10000) >> 10);
			units[1] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
			n = 2;
		} else {
			units[0] = cp;
		}
		for (unsigned int i = 0; i < n; i++) {
			bits = (bits << 16) | units[i];
			nbits += 16;
			imap_b64_flush(&out, &bits, &nbits, false);
		}
	}
	if (in_b64) {
		imap_b64_flush(&out, &bits, &nbits, true);
		buf_append_c(&out, '-');
	}
	const char *result = p_strndup(pool, out.data, out.used);
	buf_free(&out);
	return result;
}

const char *imap_utf8_to_utf7(pool_t pool, const char *in)
{
	return imap_utf7_encode(pool, in, "");
}

/* ---- folder names ---- */

const char *maildir_name_decode(pool_t pool, const char *dirname)
{
	struct buf out = BUF_INIT;
	const char *p = dirname;

	buf_append_str(&out, "");
	for (;;) {
		size_t len = strcspn(p, ".");
		char *level = p_strndup(pool, p, len);
		const char *utf8 = imap_utf7_to_utf8(pool, level);

		/* A level that is not modified UTF-7 (written by a tool
		   that stores raw UTF-8, say) is taken as it is, made
		   valid UTF-8; a '/' inside one would add a level, so it
		   is kept raw then too. */
		if (utf8 == NULL || strchr(utf8, '/') != NULL)
			utf8 = level;
		if (out.used > 0 || p != dirname)
			buf_append_c(&out, '/');
		charset_utf8_sanitize(&out, span_from_cstr(utf8));
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	const char *result = p_strndup(pool, out.data, out.used);
	buf_free(&out);
	return result;
}

const char *maildir_name_encode(pool_t pool, const char *name)
{
	struct buf out = BUF_INIT;
	const char *p = name, *result = NULL;

	buf_append_str(&out, "");
	for (;;) {
		size_t len = strcspn(p, "/");
		if (len == 0)
			goto fail;
		/* Deviation from RFC 3501 5.1.3, which has printable ASCII
		   stand for itself: '.' is Maildir++'s hierarchy separator,
		   so a '.' inside a level is base64-encoded ("&AC4-");
		   imap_utf7_to_utf8() reads it back. */
		const char *level =
			imap_utf7_encode(pool, p_strndup(pool, p, len), ".");
		if (level == NULL)
			goto fail;
		if (p != name)
			buf_append_c(&out, '.');
		buf_append_str(&out, level);
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	result = p_strndup(pool, out.data, out.used);
fail:
	buf_free(&out);
	return result;
}

/* ---- reading ---- */

static bool maildir_is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool maildir_has_mail_dirs(pool_t pool, const char *path)
{
	return maildir_is_dir(p_strdup_printf(pool, "%s/cur", path)) ||
	       maildir_is_dir(p_strdup_printf(pool, "%s/new", path));
}

static int maildir_folder_cmp(const void *a, const void *b)
{
	const struct maildir_folder *fa = a, *fb = b;
	bool inbox_a = strcmp(fa->name, "INBOX") == 0;
	bool inbox_b = strcmp(fb->name, "INBOX") == 0;

	if (inbox_a != inbox_b)
		return inbox_a ? -1 : 1;
	return strcmp(fa->name, fb->name);
}

int maildir_folders(pool_t pool, const char *root,
		    struct maildir_folder **folders_r, unsigned int *count_r,
		    const char **error_r)
{
	struct maildir_folder *folders = NULL;
	unsigned int count = 0, alloc = 0;
	struct dirent *d;
	DIR *dir;

	if ((dir = opendir(root)) == NULL) {
		*error_r = p_strdup_printf(pool, "cannot open %s: %s", root,
					   strerror(errno));
		return -1;
	}
	alloc = 16;
	folders = p_new(pool, struct maildir_folder, alloc);
	if (maildir_has_mail_dirs(pool, root)) {
		folders[count].name = "INBOX";
		folders[count++].path = p_strdup(pool, root);
	}
	for (;;) {
		errno = 0;
		if ((d = readdir(dir)) == NULL)
			break;
		/* Maildir++: folders are ".NAME" directories; "." and ".."
		   are not, nor is "..x" (an empty level). */
		if (d->d_name[0] != '.' || d->d_name[1] == '\0' ||
		    d->d_name[1] == '.')
			continue;
		const char *path =
			p_strdup_printf(pool, "%s/%s", root, d->d_name);
		if (!maildir_has_mail_dirs(pool, path))
			continue;
		if (count == alloc) {
			struct maildir_folder *n =
				p_new(pool, struct maildir_folder, alloc * 2);
			memcpy(n, folders, sizeof(*n) * count);
			folders = n;
			alloc *= 2;
		}
		folders[count].name = maildir_name_decode(pool, d->d_name + 1);
		folders[count++].path = path;
	}
	int err = errno;
	closedir(dir);
	if (err != 0) {
		*error_r = p_strdup_printf(pool, "cannot read %s: %s", root,
					   strerror(err));
		return -1;
	}
	qsort(folders, count, sizeof(*folders), maildir_folder_cmp);
	*folders_r = folders;
	*count_r = count;
	return 0;
}

/* dovecot-keywords: "N name" per line, N in 0..25. */
static void maildir_read_keywords(pool_t pool, const char *folder_path,
				  const char *names[MAILDIR_KEYWORDS_MAX])
{
	const char *path =
		p_strdup_printf(pool, "%s/dovecot-keywords", folder_path);
	FILE *f = fopen(path, "r");
	char line[512];

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *end;
		unsigned long idx = strtoul(line, &end, 10);
		if (end == line || *end != ' ' || idx >= MAILDIR_KEYWORDS_MAX)
			continue;
		end++;
		end[strcspn(end, "\r\n")] = '\0';
		if (*end != '\0')
			names[idx] = p_strdup(pool, end);
	}
	fclose(f);
}

void maildir_info_parse(pool_t pool, const char *info, const char *const *names,
			unsigned int name_count, uint32_t *flags_r,
			const char *const **keywords_r)
{
	const char **keywords = p_new(pool, const char *, strlen(info) + 1);
	unsigned int kw_count = 0;
	uint32_t flags = 0;

	for (const char *p = info; *p != '\0'; p++) {
		const char *kw = NULL;

		switch (*p) {
		case 'D':
			flags |= MAIL_FLAG_DRAFT;
			break;
		case 'F':
			flags |= MAIL_FLAG_FLAGGED;
			break;
		case 'P':
			kw = MAILDIR_FORWARDED;
			break;
		case 'R':
			flags |= MAIL_FLAG_ANSWERED;
			break;
		case 'S':
			flags |= MAIL_FLAG_SEEN;
			break;
		case 'T':
			flags |= MAIL_FLAG_DELETED;
			break;
		default:
			if (*p >= 'a' && *p <= 'z' &&
			    (unsigned int)(*p - 'a') < name_count)
				kw = names[*p - 'a'];
			break;
		}
		if (kw == NULL)
			continue;
		bool dup = false;
		for (unsigned int i = 0; i < kw_count; i++) {
			if (strcmp(keywords[i], kw) == 0)
				dup = true;
		}
		if (!dup)
			keywords[kw_count++] = kw;
	}
	*flags_r = flags;
	*keywords_r = keywords;
}

static int maildir_message_cmp(const void *a, const void *b)
{
	const struct maildir_message *ma = a, *mb = b;
	const char *na = strrchr(ma->path, '/') + 1;
	const char *nb = strrchr(mb->path, '/') + 1;

	return strverscmp(na, nb);
}

static int maildir_scan_dir(pool_t pool, const char *folder_path,
			    const char *sub, const char *const *names,
			    struct maildir_message **msgs, unsigned int *count,
			    unsigned int *alloc, const char **error_r)
{
	const char *path = p_strdup_printf(pool, "%s/%s", folder_path, sub);
	bool is_cur = strcmp(sub, "cur") == 0;
	struct dirent *d;
	DIR *dir;

	if ((dir = opendir(path)) == NULL) {
		if (errno == ENOENT)
			return 0;
		*error_r = p_strdup_printf(pool, "cannot open %s: %s", path,
					   strerror(errno));
		return -1;
	}
	for (;;) {
		struct stat st;

		errno = 0;
		if ((d = readdir(dir)) == NULL)
			break;

		if (d->d_name[0] == '.')
			continue;
		const char *file =
			p_strdup_printf(pool, "%s/%s", path, d->d_name);
		if (stat(file, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (*count == *alloc) {
			*alloc = *alloc == 0 ? 64 : *alloc * 2;
			struct maildir_message *n =
				p_new(pool, struct maildir_message, *alloc);
			if (*count > 0)
				memcpy(n, *msgs, sizeof(*n) * *count);
			*msgs = n;
		}
		struct maildir_message *msg = &(*msgs)[(*count)++];
		msg->path = file;
		msg->internaldate = (int64_t)st.st_mtime;
		/* Maildir: "unique:2,FLAGS" in cur/; new/ has no info. */
		const char *info = strstr(d->d_name, ":2,");
		if (is_cur && info != NULL) {
			maildir_info_parse(pool, info + 3, names,
					   MAILDIR_KEYWORDS_MAX, &msg->flags,
					   &msg->keywords);
		} else {
			msg->keywords = p_new(pool, const char *, 1);
		}
	}
	int err = errno;
	closedir(dir);
	if (err != 0) {
		*error_r = p_strdup_printf(pool, "cannot read %s: %s", path,
					   strerror(err));
		return -1;
	}
	return 0;
}

int maildir_messages(pool_t pool, const struct maildir_folder *folder,
		     struct maildir_message **msgs_r, unsigned int *count_r,
		     const char **error_r)
{
	const char *names[MAILDIR_KEYWORDS_MAX] = { NULL };
	struct maildir_message *msgs = NULL;
	unsigned int count = 0, alloc = 0;

	maildir_read_keywords(pool, folder->path, names);
	if (maildir_scan_dir(pool, folder->path, "new", names, &msgs, &count,
			     &alloc, error_r) < 0 ||
	    maildir_scan_dir(pool, folder->path, "cur", names, &msgs, &count,
			     &alloc, error_r) < 0)
		return -1;
	if (count > 0)
		qsort(msgs, count, sizeof(*msgs), maildir_message_cmp);
	*msgs_r = msgs;
	*count_r = count;
	return 0;
}

int maildir_read_file(pool_t pool, const char *path, struct buf *out,
		      const char **error_r)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		*error_r = p_strdup_printf(pool, "cannot open %s: %s", path,
					   strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > MAILDIR_MESSAGE_MAX) {
		*error_r = p_strdup_printf(
			pool, "%s: not a regular file, or larger than %u bytes",
			path, MAILDIR_MESSAGE_MAX);
		close(fd);
		return -1;
	}
	size_t total = 0;
	for (;;) {
		uint8_t *p = buf_reserve(out, 65536);
		ssize_t n = read(fd, p, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = p_strdup_printf(pool, "cannot read %s: %s",
						   path, strerror(errno));
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		total += (size_t)n;
		if (total > MAILDIR_MESSAGE_MAX) {
			*error_r = p_strdup_printf(pool,
						   "%s is larger than %u bytes",
						   path, MAILDIR_MESSAGE_MAX);
			close(fd);
			return -1;
		}
		buf_commit(out, (size_t)n);
	}
	close(fd);
	return 0;
}

/* ---- writing ---- */

struct maildir_writer {
	pool_t pool; /* lives as long as the writer */
	pool_t scratch; /* errors and names of one call */
	char *path; /* folder directory */
	const char *keywords[MAILDIR_KEYWORDS_MAX];
	unsigned int keyword_count;
	unsigned int dropped_keywords;
	char host[128];
};

static unsigned int maildir_counter;

static int maildir_mkdir(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -1;
	return maildir_is_dir(path) ? 0 : -1;
}

/* mkdir -p for the root, whose parents may be missing. */
static int maildir_mkdir_parents(pool_t pool, const char *path)
{
	char *copy = p_strdup(pool, path);

	for (char *p = copy + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return maildir_mkdir(copy);
}

/* Errors of maildir_writer_create() outlive the writer it destroys. */
static __thread char maildir_create_error[1024];

static const char *maildir_create_errorf(const char *fmt, ...)
	ATTR_FORMAT(1, 2);
static const char *maildir_create_errorf(const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(maildir_create_error, sizeof(maildir_create_error), fmt,
		  args);
	va_end(args);
	return maildir_create_error;
}

struct maildir_writer *maildir_writer_create(const char *root, const char *name,
					     const char **error_r)
{
	struct maildir_writer *writer = i_new(struct maildir_writer, 1);
	const char *dirname = NULL;

	writer->pool = pool_create("maildir writer", 1024);
	writer->scratch = pool_create("maildir scratch", 1024);
	if (strcasecmp(name, "INBOX") != 0) {
		dirname = maildir_name_encode(writer->pool, name);
		if (dirname == NULL) {
			*error_r = maildir_create_errorf(
				"mailbox name '%s' cannot be a Maildir++ "
				"folder",
				name);
			goto fail;
		}
	}
	if (maildir_mkdir_parents(writer->pool, root) < 0) {
		*error_r = maildir_create_errorf("cannot create %s: %s", root,
						 strerror(errno));
		goto fail;
	}
	writer->path = dirname == NULL
			       ? i_strdup(root)
			       : i_strdup_printf("%s/.%s", root, dirname);
	static const char *const subs[] = { "", "/tmp", "/new", "/cur" };
	for (size_t i = 0; i < N_ELEMENTS(subs); i++) {
		const char *p = p_strdup_printf(writer->pool, "%s%s",
						writer->path, subs[i]);
		if (maildir_mkdir(p) < 0) {
			*error_r = maildir_create_errorf("cannot create %s: %s",
							 p, strerror(errno));
			goto fail;
		}
	}
	if (dirname != NULL) {
		/* Maildir++: a folder has a "maildirfolder" file. */
		const char *p = p_strdup_printf(
			writer->pool, "%s/maildirfolder", writer->path);
		int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			*error_r = maildir_create_errorf("cannot create %s: %s",
							 p, strerror(errno));
			goto fail;
		}
		close(fd);
	}
	/* maildir spec: '/' and ':' in the host name become \057 and
	   \072. */
	char host[64] = "localhost";
	if (gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "localhost");
	size_t j = 0;
	for (const char *h = host; *h != '\0' && j + 5 < sizeof(writer->host);
	     h++) {
		if (*h == '/' || *h == ':') {
			snprintf(writer->host + j, 5, "\\%03o",
				 (unsigned char)*h);
			j += 4;
		} else {
			writer->host[j++] = *h;
		}
	}
	return writer;
fail:
	maildir_writer_destroy(&writer);
	return NULL;
}

void maildir_writer_destroy(struct maildir_writer **_writer)
{
	struct maildir_writer *writer = *_writer;

	*_writer = NULL;
	if (writer == NULL)
		return;
	pool_unref(&writer->pool);
	pool_unref(&writer->scratch);
	free(writer->path);
	free(writer);
}

unsigned int maildir_writer_dropped_keywords(struct maildir_writer *writer)
{
	return writer->dropped_keywords;
}

static int maildir_write_all(int fd, const uint8_t *p, size_t size)
{
	while (size > 0) {
		ssize_t n = write(fd, p, size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		size -= (size_t)n;
	}
	return 0;
}

/* Rewrites dovecot-keywords through a temporary file and rename. */
static int maildir_write_keywords(struct maildir_writer *writer,
				  const char **error_r)
{
	const char *path = p_strdup_printf(writer->scratch,
					   "%s/dovecot-keywords", writer->path);
	const char *tmp =
		p_strdup_printf(writer->scratch, "%s/tmp/dovecot-keywords.%d",
				writer->path, (int)getpid());
	struct buf b = BUF_INIT;
	int fd, ret = -1;

	for (unsigned int i = 0; i < writer->keyword_count; i++)
		buf_printf(&b, "%u %s\n", i, writer->keywords[i]);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0 && maildir_write_all(fd, b.data, b.used) == 0 &&
	    fsync(fd) == 0 && close(fd) == 0) {
		fd = -1;
		if (rename(tmp, path) == 0)
			ret = 0;
	}
	if (ret < 0) {
		*error_r =
			p_strdup_printf(writer->scratch, "cannot write %s: %s",
					path, strerror(errno));
		if (fd >= 0)
			close(fd);
		(void)unlink(tmp);
	}
	buf_free(&b);
	return ret;
}

/* The info letters (maildir spec: ASCII order) of flags and keywords. */
static int maildir_info(struct maildir_writer *writer, uint32_t flags,
			const char *const *keywords, char info_r[64],
			const char **error_r)
{
	bool letters[26] = { false };
	bool forwarded = false, added = false;
	size_t n = 0;

	for (unsigned int i = 0; keywords != NULL && keywords[i] != NULL; i++) {
		const char *kw = keywords[i];
		unsigned int k;

		if (strcasecmp(kw, MAILDIR_FORWARDED) == 0) {
			forwarded = true;
			continue;
		}
		for (k = 0; k < writer->keyword_count; k++) {
			if (strcmp(writer->keywords[k], kw) == 0)
				break;
		}
		if (k == writer->keyword_count) {
			if (k == MAILDIR_KEYWORDS_MAX ||
			    strpbrk(kw, "\r\n") != NULL) {
				writer->dropped_keywords++;
				continue;
			}
			writer->keywords[writer->keyword_count++] =
				p_strdup(writer->pool, kw);
			added = true;
		}
		letters[k] = true;
	}
	if (added && maildir_write_keywords(writer, error_r) < 0)
		return -1;
	if ((flags & MAIL_FLAG_DRAFT) != 0)
		info_r[n++] = 'D';
	if ((flags & MAIL_FLAG_FLAGGED) != 0)
		info_r[n++] = 'F';
	if (forwarded)
		info_r[n++] = 'P';
	if ((flags & MAIL_FLAG_ANSWERED) != 0)
		info_r[n++] = 'R';
	if ((flags & MAIL_FLAG_SEEN) != 0)
		info_r[n++] = 'S';
	if ((flags & MAIL_FLAG_DELETED) != 0)
		info_r[n++] = 'T';
	for (unsigned int k = 0; k < 26; k++) {
		if (letters[k])
			info_r[n++] = (char)('a' + k);
	}
	info_r[n] = '\0';
	return 0;
}

int maildir_writer_add(struct maildir_writer *writer, const void *data,
		       size_t size, int64_t internaldate, uint32_t flags,
		       const char *const *keywords, const char **error_r)
{
	char info[64];
	int fd = -1;

	pool_clear(writer->scratch);
	if (maildir_info(writer, flags, keywords, info, error_r) < 0)
		return -1;
	for (unsigned int attempt = 0;; attempt++) {
		const char *unique =
			p_strdup_printf(writer->scratch, "%lld.P%dQ%u.%s,S=%zu",
					(long long)time(NULL), (int)getpid(),
					++maildir_counter, writer->host, size);
		const char *tmp = p_strdup_printf(writer->scratch, "%s/tmp/%s",
						  writer->path, unique);
		/* maildir spec: new/ holds mail not yet seen by a client;
		   anything with flags goes to cur/ with its info. */
		const char *dest =
			info[0] == '\0'
				? p_strdup_printf(writer->scratch, "%s/new/%s",
						  writer->path, unique)
				: p_strdup_printf(writer->scratch,
						  "%s/cur/%s:2,%s",
						  writer->path, unique, info);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno == EEXIST && attempt < 100)
			continue;
		if (fd < 0) {
			*error_r = p_strdup_printf(writer->scratch,
						   "cannot create %s: %s", tmp,
						   strerror(errno));
			return -1;
		}
		struct timespec times[2] = {
			{ .tv_sec = (time_t)internaldate, .tv_nsec = 0 },
			{ .tv_sec = (time_t)internaldate, .tv_nsec = 0 },
		};
		if (maildir_write_all(fd, data, size) < 0 || fsync(fd) < 0 ||
		    (internaldate > 0 && futimens(fd, times) < 0)) {
			*error_r = p_strdup_printf(writer->scratch,
						   "cannot write %s: %s", tmp,
						   strerror(errno));
			close(fd);
			(void)unlink(tmp);
			return -1;
		}
		if (close(fd) < 0) {
			*error_r = p_strdup_printf(writer->scratch,
						   "cannot write %s: %s", tmp,
						   strerror(errno));
			(void)unlink(tmp);
			return -1;
		}
		/* link() never replaces an existing name, unlike rename. */
		if (link(tmp, dest) < 0) {
			int err = errno;
			(void)unlink(tmp);
			if (err == EEXIST && attempt < 100)
				continue;
			*error_r = p_strdup_printf(writer->scratch,
						   "cannot create %s: %s", dest,
						   strerror(err));
			return -1;
		}
		(void)unlink(tmp);
		return 0;
	}
}

int maildir_writer_finish(struct maildir_writer *writer, const char **error_r)
{
	static const char *const subs[] = { "/new", "/cur", "" };

	pool_clear(writer->scratch);
	for (size_t i = 0; i < N_ELEMENTS(subs); i++) {
		const char *p = p_strdup_printf(writer->scratch, "%s%s",
						writer->path, subs[i]);
		int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || fsync(fd) < 0) {
			*error_r = p_strdup_printf(writer->scratch,
						   "cannot sync %s: %s", p,
						   strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		close(fd);
	}
	return 0;
}
