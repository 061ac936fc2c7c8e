/* test-mime-gmime.c - differential test of mime-parser.c against GMime 3,
   used as an oracle (tests only; GMime is never linked into Marmot). Every
   message in tests/mime-corpus/ is parsed by both, and the two part trees
   are walked side by side: tree shape (children per multipart, embedded
   message/rfc822), media type, boundary, charset, name and filename
   (decoded: RFC 2231 and RFC 2047), disposition type, transfer encoding
   and the decoded size of text parts. One TAP line per message. Where the
   two legitimately differ on broken input, allowed_diffs below names the
   file, part and field, and says why; an entry that no longer matches a
   difference fails too, so the list cannot go stale. Built only when
   gmime-3.0 is found. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "pool.h"
#include "mime-parser.h"
#include "message-decode.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <gmime/gmime.h>

#define CORPUS_MIN_MESSAGES 50
#define DEEP_PATH "1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1"

/* Parts are named by path: "root" is the message, "1.2" the second child
   of the first child, and "1.2.msg" the message inside a message/rfc822
   part 1.2. */
static const struct allowed_diff {
	const char *file, *path, *field;
	const char *reason;
} allowed_diffs[] = {
	/* "--real-- trailing junk": we take it for the close-delimiter
	   (mime-parser.h leniency, once the multipart has a part); GMime
	   wants only white space after "--" (RFC 2046 5.1.1), so its last
	   part runs on through the epilogue. */
	{ "07-broken-boundary.eml", "2", "decoded-size",
	  "junk after the close-delimiter" },
	/* Parts deeper than max_depth (20) are opaque by design; GMime has
	   no depth limit. */
	{ "11-deep-nesting.eml", DEEP_PATH, "shape", "max_depth" },
	{ "50-nesting-30.eml", DEEP_PATH, "shape", "max_depth" },
	/* RFC 2045 5.2: a syntactically invalid Content-Type is taken as
	   text/plain; charset=us-ascii. GMime chooses
	   application/octet-stream, or keeps an empty type for "/plain". */
	{ "17-no-content-type-parts.eml", "2", "type", "RFC 2045 5.2" },
	{ "49-invalid-content-types.eml", "1", "type", "RFC 2045 5.2" },
	{ "49-invalid-content-types.eml", "2", "type", "RFC 2045 5.2" },
	{ "49-invalid-content-types.eml", "3", "type", "RFC 2045 5.2" },
	{ "49-invalid-content-types.eml", "4", "type", "RFC 2045 5.2" },
	/* The quoted-printable line "-- " ends in white space: RFC 2045
	   6.7 rule (3) has decoders delete it; GMime keeps it. */
	{ "27-pgp-signed.eml", "1", "decoded-size",
	  "RFC 2045 6.7 (3) trailing white space" },
	/* RFC 2231 sections out of order (filename*1* before filename*0*):
	   we reassemble by number and take charset'language' from section
	   0 (RFC 2231 3, 4.1); GMime joins in the right order but keeps
	   "utf-8''" as text when section 0 is not first. */
	{ "36-rfc2231-continuations.eml", "3", "filename",
	  "RFC 2231 out-of-order sections" },
	/* Two Content-Type fields: we take the first, as for every MIME
	   and ENVELOPE field; GMime the last. RFC 2045 allows one only. */
	{ "44-duplicate-content-type.eml", "root", "type", "first wins" },
	{ "44-duplicate-content-type.eml", "root", "charset", "first wins" },
	{ "44-duplicate-content-type.eml", "root", "shape", "first wins" },
	/* A NUL inside a quoted name: both cut the decoded value there;
	   GMime keeps the opening quote too. */
	{ "46-nul-bytes-multipart.eml", "2", "name", "NUL in a parameter" },
	/* Zero octets: GMime makes no message; we give the RFC 2045 5.2
	   default, an empty text/plain, since mail must stay storable. */
	{ "47-empty.eml", "root", "parse", "empty input" },
	/* A last part ending in "\r\n--nf--" without a newline after it:
	   the CRLF before the delimiter is the delimiter's (RFC 2046
	   5.1.1), as Dovecot counts it too; GMime keeps one octet of it. */
	{ "64-no-final-newline.eml", "2", "decoded-size",
	  "RFC 2046 5.1.1 CRLF before a close-delimiter at the end" },
	/* "--e" straight after "--e": the CRLF ending one delimiter line
	   cannot also start the next (RFC 2046 5.1.1), so strictly there is
	   no part between them; we keep an empty part, GMime drops it. */
	{ "54-empty-and-headerless-parts.eml", "root", "shape",
	  "adjacent delimiters" },
	/* GMime bug: before "--mle--" the line ends in a bare LF in a
	   message that is otherwise CRLF, and GMime drops one octet more
	   ("<p>x</p" instead of "<p>x</p>"). RFC 2046 5.1.1 gives only the
	   line break to the delimiter. */
	{ "56-mixed-line-endings.eml", "2", "decoded-size",
	  "GMime drops a body octet before a bare-LF delimiter" },
};

struct diff {
	const char *file;
	struct span msg;
	struct buf failures;
	bool *allow_used;
};

static char *corpus_dir;
static char **corpus_files;
static unsigned int corpus_count;

static void mismatch(struct diff *d, const char *path, const char *field,
		     const char *ours, const char *theirs)
{
	for (size_t i = 0; i < N_ELEMENTS(allowed_diffs); i++) {
		const struct allowed_diff *a = &allowed_diffs[i];

		if (strcmp(a->file, d->file) == 0 &&
		    strcmp(a->path, path) == 0 &&
		    strcmp(a->field, field) == 0) {
			d->allow_used[i] = true;
			printf("# %s %s %s: ours=%s gmime=%s (allowed: %s)\n",
			       d->file, path, field, ours, theirs, a->reason);
			return;
		}
	}
	buf_printf(&d->failures, "\n#   %s %s: ours=%s gmime=%s", path, field,
		   ours == NULL ? "(null)" : ours,
		   theirs == NULL ? "(null)" : theirs);
}

static bool str_eq_ci(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcasecmp(a, b) == 0;
}

static bool str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static void check_str(struct diff *d, const char *path, const char *field,
		      const char *ours, const char *theirs, bool ci)
{
	if (!(ci ? str_eq_ci(ours, theirs) : str_eq(ours, theirs)))
		mismatch(d, path, field, ours == NULL ? "NIL" : ours,
			 theirs == NULL ? "NIL" : theirs);
}

/* The first token of a raw header value, lower-cased, or NULL. */
static char *header_token(const char *value)
{
	size_t start = 0, end;
	char *token;

	if (value == NULL)
		return NULL;
	while (value[start] == ' ' || value[start] == '\t')
		start++;
	end = start;
	while (value[end] != '\0' && value[end] != ' ' && value[end] != '\t' &&
	       value[end] != ';' && value[end] != '(')
		end++;
	if (end == start)
		return NULL;
	token = i_strndup(value + start, end - start);
	for (size_t i = 0; token[i] != '\0'; i++) {
		if (token[i] >= 'A' && token[i] <= 'Z')
			token[i] = (char)(token[i] + 32);
	}
	return token;
}

static char *ours_shape(const struct mime_part *part)
{
	if ((part->flags & MIME_PART_FLAG_MULTIPART) != 0)
		return i_strdup_printf("multipart(%u)", part->child_count);
	if (strcmp(part->type, "multipart") == 0)
		return i_strdup("multipart(0)"); /* not split */
	if ((part->flags & MIME_PART_FLAG_MESSAGE) != 0 &&
	    part->children != NULL)
		return i_strdup("message");
	return i_strdup("leaf");
}

static char *gmime_shape(GMimeObject *obj)
{
	if (GMIME_IS_MULTIPART(obj)) {
		return i_strdup_printf(
			"multipart(%d)",
			g_mime_multipart_get_count(GMIME_MULTIPART(obj)));
	}
	if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *m = g_mime_message_part_get_message(
			GMIME_MESSAGE_PART(obj));

		return i_strdup(m != NULL && g_mime_message_get_mime_part(m) !=
							NULL
					? "message"
					: "message(empty)");
	}
	return i_strdup("leaf");
}

static size_t ours_decoded_size(const struct mime_part *part, struct span msg)
{
	struct span body = span_make(msg.p + part->body_offset,
				     part->body_end - part->body_offset);
	struct buf out = BUF_INIT;
	size_t size;

	(void)message_decode(message_decode_encoding_parse(part->encoding),
			     body, 0, &out);
	size = out.used;
	buf_free(&out);
	return size;
}

static size_t gmime_decoded_size(GMimePart *part)
{
	GMimeDataWrapper *content = g_mime_part_get_content(part);
	GMimeStream *stream;
	size_t size;

	if (content == NULL)
		return 0;
	stream = g_mime_stream_mem_new();
	g_mime_data_wrapper_write_to_stream(content, stream);
	size = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream))->len;
	g_object_unref(stream);
	return size;
}

static void compare_part(struct diff *d, const struct mime_part *ours,
			 GMimeObject *gm, const char *path);

static void compare_fields(struct diff *d, const struct mime_part *ours,
			   GMimeObject *gm, const char *path)
{
	GMimeContentType *ct = g_mime_object_get_content_type(gm);
	GMimeContentDisposition *cd = g_mime_object_get_content_disposition(gm);
	const char *gm_type =
		ct != NULL ? g_mime_content_type_get_media_type(ct) : NULL;
	const char *gm_subtype =
		ct != NULL ? g_mime_content_type_get_media_subtype(ct) : NULL;
	char *ours_type = i_strdup_printf("%s/%s", ours->type, ours->subtype);
	char *gm_full = i_strdup_printf("%s/%s", gm_type ? gm_type : "",
					gm_subtype ? gm_subtype : "");
	char *gm_cte = header_token(
		g_mime_object_get_header(gm, "Content-Transfer-Encoding"));

	check_str(d, path, "type", ours_type, gm_full, true);
	if (strcmp(ours->type, "multipart") == 0) {
		check_str(d, path, "boundary",
			  mime_param_get(ours->params, ours->param_count,
					 "boundary"),
			  ct != NULL ? g_mime_content_type_get_parameter(
					       ct, "boundary")
				     : NULL,
			  false);
	}
	check_str(d, path, "charset",
		  mime_param_get(ours->params, ours->param_count, "charset"),
		  ct != NULL ? g_mime_content_type_get_parameter(ct, "charset")
			     : NULL,
		  false);
	check_str(d, path, "name",
		  mime_param_get(ours->params, ours->param_count, "name"),
		  ct != NULL ? g_mime_content_type_get_parameter(ct, "name")
			     : NULL,
		  false);
	check_str(d, path, "disposition", ours->disposition,
		  cd != NULL ? g_mime_content_disposition_get_disposition(cd)
			     : NULL,
		  true);
	check_str(d, path, "filename",
		  mime_param_get(ours->disp_params, ours->disp_param_count,
				 "filename"),
		  cd != NULL ? g_mime_content_disposition_get_parameter(
				       cd, "filename")
			     : NULL,
		  false);
	check_str(d, path, "encoding", ours->encoding, gm_cte, true);

	/* Decoded size of text leaves, when we know the encoding. */
	if ((ours->flags & MIME_PART_FLAG_TEXT) != 0 && GMIME_IS_PART(gm) &&
	    message_decode_encoding_parse(ours->encoding) !=
		    MESSAGE_DECODE_UNKNOWN) {
		size_t a = ours_decoded_size(ours, d->msg);
		size_t b = gmime_decoded_size(GMIME_PART(gm));

		if (a != b) {
			char *sa = i_strdup_printf("%zu", a);
			char *sb = i_strdup_printf("%zu", b);

			mismatch(d, path, "decoded-size", sa, sb);
			i_free(sa);
			i_free(sb);
		}
	}
	i_free(gm_cte);
	i_free(gm_full);
	i_free(ours_type);
}

static void compare_children(struct diff *d, const struct mime_part *ours,
			     GMimeObject *gm, const char *path)
{
	if (GMIME_IS_MULTIPART(gm)) {
		GMimeMultipart *mp = GMIME_MULTIPART(gm);
		const struct mime_part *child = ours->children;

		for (int i = 0; child != NULL; i++, child = child->next) {
			char *sub =
				strcmp(path, "root") == 0
					? i_strdup_printf("%d", i + 1)
					: i_strdup_printf("%s.%d", path, i + 1);

			compare_part(d, child, g_mime_multipart_get_part(mp, i),
				     sub);
			i_free(sub);
		}
	} else if (GMIME_IS_MESSAGE_PART(gm)) {
		GMimeMessage *m =
			g_mime_message_part_get_message(GMIME_MESSAGE_PART(gm));
		char *sub = i_strdup_printf("%s.msg", path);

		compare_part(d, ours->children, g_mime_message_get_mime_part(m),
			     sub);
		i_free(sub);
	}
}

static void compare_part(struct diff *d, const struct mime_part *ours,
			 GMimeObject *gm, const char *path)
{
	char *a = ours_shape(ours), *b = gmime_shape(gm);

	compare_fields(d, ours, gm, path);
	if (strcmp(a, b) != 0)
		mismatch(d, path, "shape", a, b);
	else if (strcmp(a, "leaf") != 0 && strcmp(a, "multipart(0)") != 0)
		compare_children(d, ours, gm, path);
	i_free(a);
	i_free(b);
}

static void read_file(const char *path, struct buf *dest)
{
	uint8_t chunk[4096];
	FILE *f = fopen(path, "rb");
	size_t n;

	assert_non_null(f);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(dest, chunk, n);
	fclose(f);
}

static void test_message(void **state)
{
	const char *file = *state;
	char *path = i_strdup_printf("%s/%s", corpus_dir, file);
	struct buf msg = BUF_INIT;
	pool_t pool = pool_create("test", 1024);
	struct mime_result result;
	GMimeStream *stream;
	GMimeParser *parser;
	GMimeMessage *message;
	GMimeObject *top;
	bool allow_used[N_ELEMENTS(allowed_diffs)] = { false };
	struct diff d = {
		.file = file,
		.failures = BUF_INIT,
		.allow_used = allow_used,
	};

	read_file(path, &msg);
	d.msg = buf_span(&msg);
	mime_parse(pool, NULL, msg.data, msg.used, &result);

	stream = g_mime_stream_mem_new_with_buffer(
		msg.used > 0 ? (const char *)msg.data : "", msg.used);
	parser = g_mime_parser_new_with_stream(stream);
	g_object_unref(stream);
	message = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	top = message != NULL ? g_mime_message_get_mime_part(message) : NULL;
	if (top == NULL)
		mismatch(&d, "root", "parse", "message", "none");
	else
		compare_part(&d, result.root, top, "root");
	if (message != NULL)
		g_object_unref(message);

	for (size_t i = 0; i < N_ELEMENTS(allowed_diffs); i++) {
		const struct allowed_diff *a = &allowed_diffs[i];

		if (strcmp(a->file, file) == 0 && !allow_used[i]) {
			buf_printf(&d.failures,
				   "\n#   stale allowed_diffs entry: %s %s",
				   a->path, a->field);
		}
	}
	pool_unref(&pool);
	buf_free(&msg);
	i_free(path);
	if (d.failures.used > 0) {
		/* fail_msg() does not return: nothing may be left to free. */
		printf("# %s differs from GMime:%s\n", file,
		       buf_cstr(&d.failures));
		buf_free(&d.failures);
		fail_msg("%s differs from GMime", file);
	}
	buf_free(&d.failures);
}

/* The corpus is large enough, and every allow-list entry names a file
   that exists. */
static void test_corpus_complete(void **state)
{
	(void)state;
	assert_true(corpus_count >= CORPUS_MIN_MESSAGES);
	for (size_t i = 0; i < N_ELEMENTS(allowed_diffs); i++) {
		bool found = false;

		for (unsigned int j = 0; j < corpus_count; j++) {
			if (strcmp(corpus_files[j], allowed_diffs[i].file) == 0)
				found = true;
		}
		if (!found)
			fail_msg("allowed_diffs names missing file %s",
				 allowed_diffs[i].file);
	}
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_corpus(void)
{
	const char *srcdir = getenv("MARMOT_SOURCE_DIR");
	unsigned int alloc = 0;
	struct dirent *e;
	DIR *dir;

	if (srcdir == NULL) {
		fprintf(stderr, "MARMOT_SOURCE_DIR is not set\n");
		exit(1);
	}
	corpus_dir = i_strdup_printf("%s/tests/mime-corpus", srcdir);
	dir = opendir(corpus_dir);
	if (dir == NULL) {
		fprintf(stderr, "cannot open %s\n", corpus_dir);
		exit(1);
	}
	while ((e = readdir(dir)) != NULL) {
		size_t len = strlen(e->d_name);

		if (len < 5 || strcmp(e->d_name + len - 4, ".eml") != 0)
			continue;
		if (corpus_count == alloc) {
			alloc = alloc * 2 + 16;
			corpus_files = i_realloc(
				corpus_files,
				i_size_mul(alloc, sizeof(*corpus_files)));
		}
		corpus_files[corpus_count++] = i_strdup(e->d_name);
	}
	closedir(dir);
	if (corpus_count > 0) {
		qsort(corpus_files, corpus_count, sizeof(*corpus_files),
		      cmp_names);
	}
}

int main(void)
{
	struct CMUnitTest *tests;
	int ret;

	g_mime_init();
	load_corpus();
	tests = i_new(struct CMUnitTest, corpus_count + 1);
	for (unsigned int i = 0; i < corpus_count; i++) {
		tests[i].name = corpus_files[i];
		tests[i].test_func = test_message;
		tests[i].initial_state = corpus_files[i];
	}
	tests[corpus_count].name = "corpus_complete";
	tests[corpus_count].test_func = test_corpus_complete;
	ret = _cmocka_run_group_tests("mime_gmime", tests, corpus_count + 1,
				      NULL, NULL);
	for (unsigned int i = 0; i < corpus_count; i++)
		i_free(corpus_files[i]);
	i_free(corpus_files);
	i_free(corpus_dir);
	i_free(tests);
	g_mime_shutdown();
	return ret;
}
