#ifndef MARMOT_MAILDIR_H
#define MARMOT_MAILDIR_H
/* Maildir and Maildir++ trees for `marmot import` and `marmot export`.

   Layout (https://cr.yp.to/proto/maildir.html, Courier's Maildir++):
   ROOT/{cur,new,tmp} is INBOX; each other folder is ROOT/.NAME with its
   own cur/new/tmp (and a "maildirfolder" file), '.' separating hierarchy
   levels (".Lists.marmot" is "Lists/marmot"). Each level is in modified
   UTF-7 (RFC 3501 5.1.3) and is decoded to UTF-8; a level that is not
   valid modified UTF-7 is used as it is. Folder names here are UTF-8 with
   '/' between levels, as the store names mailboxes.

   Flags come from the info part of a name in cur/ ("UNIQUE:2,FLAGS",
   ASCII sorted): D = \Draft, F = \Flagged, P = passed (the $Forwarded
   keyword), R = \Answered, S = \Seen, T = \Deleted; a-z are keywords
   numbered in the folder's dovecot-keywords file ("N name" lines), when
   it exists. Messages in new/ have no flags. INTERNALDATE is the file's
   mtime. Files in tmp/ and names starting with '.' are skipped.

   Writing creates the folder (0700) and, per message, a file in tmp/
   (O_EXCL, 0600, fsynced, mtime set to the INTERNALDATE) that is then
   linked into new/ (no flags or keywords) or cur/ and unlinked from tmp/,
   so a reader never sees a partial message. Unique names are
   "SECONDS.PpidQcounter.HOST,S=SIZE". Keywords get letters a-z in the
   order met (dovecot-keywords is rewritten when one is added); a folder
   holds at most 26 keywords, later ones are dropped and counted. A '.'
   in a folder name is written encoded as "&AC4-" (see maildir.c). */

#include "lib.h"
#include "mail-flags.h"

struct buf;
struct pool;

#define MAILDIR_MESSAGE_MAX (256u * 1024 * 1024)
#define MAILDIR_KEYWORDS_MAX 26

struct maildir_folder {
	const char *name; /* UTF-8; "INBOX" for the root */
	const char *path; /* the directory holding cur/ and new/ */
};

struct maildir_message {
	const char *path;
	int64_t internaldate; /* mtime */
	uint32_t flags; /* enum mail_flag bits */
	const char *const *keywords; /* NULL-terminated, never NULL */
};

/* Lists the root (as "INBOX", if it has cur/ or new/) and every .NAME
   folder with cur/ or new/, INBOX first, then sorted by name. Everything is
   allocated from pool. Returns 0, or -1 with *error_r. */
int maildir_folders(struct pool *pool, const char *root,
		    struct maildir_folder **folders_r, unsigned int *count_r,
		    const char **error_r);
/* Lists the messages of cur/ and new/ in the order of their unique names
   (numbers compared as numbers, so delivery order). */
int maildir_messages(struct pool *pool, const struct maildir_folder *folder,
		     struct maildir_message **msgs_r, unsigned int *count_r,
		     const char **error_r);
/* Appends the file's content to out; -1 with *error_r if unreadable or
   larger than MAILDIR_MESSAGE_MAX. */
int maildir_read_file(struct pool *pool, const char *path, struct buf *out,
		      const char **error_r);

/* Parses the info part after ":2," into flags and keywords (keyword
   letters resolved through names[0..count), NULL entries skipped). */
void maildir_info_parse(struct pool *pool, const char *info,
			const char *const *names, unsigned int name_count,
			uint32_t *flags_r, const char *const **keywords_r);

/* Folder names: dirname is a folder directory's name without the leading
   '.'; the result is the UTF-8 name ("Lists/marmot"). */
const char *maildir_name_decode(struct pool *pool, const char *dirname);
/* The reverse: "Lists/marmot" -> "Lists.marmot" (modified UTF-7 per
   level). Returns NULL if name is not valid UTF-8 or has an empty level. */
const char *maildir_name_encode(struct pool *pool, const char *name);

/* RFC 3501 5.1.3 modified UTF-7 <-> UTF-8. decode returns NULL if in is
   not valid modified UTF-7 (bad base64, unpaired surrogate, NUL, a
   non-printable octet); encode returns NULL for invalid UTF-8. */
const char *imap_utf7_to_utf8(struct pool *pool, const char *in);
const char *imap_utf8_to_utf7(struct pool *pool, const char *in);

struct maildir_writer;

/* Opens (creating it and ROOT as needed) the folder name ("INBOX" = the
   root) for writing. */
struct maildir_writer *maildir_writer_create(const char *root, const char *name,
					     const char **error_r);
/* Writes one message. Returns 0 or -1 with *error_r (valid until the next
   call). keywords may be NULL. */
int maildir_writer_add(struct maildir_writer *writer, const void *data,
		       size_t size, int64_t internaldate, uint32_t flags,
		       const char *const *keywords, const char **error_r);
/* Keywords dropped because the folder already had 26. */
unsigned int maildir_writer_dropped_keywords(struct maildir_writer *writer);
/* fsyncs the folder's directories. Returns 0 or -1 with *error_r. */
int maildir_writer_finish(struct maildir_writer *writer, const char **error_r);
void maildir_writer_destroy(struct maildir_writer **writer);

#endif
