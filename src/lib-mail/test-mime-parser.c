/* test-mime-parser.c - unit tests for mime-parser.c: hand-written
   messages whose parts are checked by extracting the bytes at the
   recorded offsets; every message is also fed one byte at a time and in
   odd chunks and must give the identical tree; limits (depth, parts,
   headers, line length) are pushed past their bounds; and every message
   in tests/mime-corpus/ is parsed with the same checks. Run under
   ASan+UBSan with leak detection. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "pool.h"
#include "mime-parser.h"
#include "imap-envelope.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

static void dump_part(struct buf *out, const struct mime_part *part,
		      struct span msg)
{
	buf_printf(out, "%s/%s|", part->type, part->subtype);
	buf_append(out, msg.p + part->header_offset,
		   part->body_offset - part->header_offset);
	buf_append_c(out, '|');
	buf_append(out, msg.p + part->body_offset,
		   part->body_end - part->body_offset);
	buf_printf(out, "|%llu\n", (unsigned long long)part->body_lines);
	for (const struct mime_part *c = part->children; c != NULL; c = c->next)
		dump_part(out, c, msg);
}

/* Everything the parser records, for comparing two parses. */
static void dump_full(struct buf *out, const struct mime_part *part)
{
	buf_printf(out, "[%u %llu %llu %llu %llu %u %x %llu %s/%s]",
		   part->depth, (unsigned long long)part->header_offset,
		   (unsigned long long)part->body_offset,
		   (unsigned long long)part->body_end,
		   (unsigned long long)part->body_lines, part->header_count,
		   part->flags, (unsigned long long)part->nul_count, part->type,
		   part->subtype);
	for (const struct mime_part *c = part->children; c != NULL; c = c->next)
		dump_full(out, c);
}

static void check_invariants(const struct mime_part *part, uint64_t size)
{
	uint64_t prev_end = part->body_offset;

	assert_true(part->header_offset <= part->body_offset);
	assert_true(part->body_offset <= part->body_end);
	assert_true(part->body_end <= size);
	for (const struct mime_part *c = part->children; c != NULL;
	     c = c->next) {
		assert_ptr_equal(c->parent, part);
		assert_int_equal(c->depth, part->depth + 1);
		assert_true(c->header_offset >= prev_end);
		assert_true(c->body_end <= part->body_end);
		prev_end = c->body_end;
		check_invariants(c, size);
	}
}

/* Parses msg with the given chunk size (0 = random sizes) and returns
   a full dump including BODYSTRUCTURE and ENVELOPE. */
static char *parse_dump(struct span msg, size_t chunk,
			const struct mime_limits *limits)
{
	pool_t pool = pool_create("test", 1024);
	struct mime_parser *parser = mime_parser_create(pool, limits);
	struct mime_result result;
	struct buf out = BUF_INIT;
	size_t pos = 0;
	char *ret;

	while (pos < msg.len) {
		size_t n = chunk != 0 ? chunk : (size_t)(rand() % 97) + 1;

		if (n > msg.len - pos)
			n = msg.len - pos;
		mime_parser_feed(parser, msg.p + pos, n);
		/* An empty feed must change nothing. */
		mime_parser_feed(parser, "", 0);
		pos += n;
	}
	mime_parser_finish(&parser, &result);
	assert_null(parser);
	assert_int_equal(result.size, msg.len);
	check_invariants(result.root, msg.len);
	dump_full(&out, result.root);
	buf_printf(&out, " %u %x\n", result.part_count, result.flags);
	imap_bodystructure_write(&out, result.root, true);
	buf_append_c(&out, '\n');
	imap_envelope_write(&out, result.root->envelope);
	ret = i_strdup(buf_cstr(&out));
	buf_free(&out);
	pool_unref(&pool);
	return ret;
}

static void check_chunkings(struct span msg, const struct mime_limits *lim)
{
	static const size_t chunks[] = { 1, 2, 3, 7, 64, 0, 0 };
	char *whole = parse_dump(msg, msg.len > 0 ? msg.len : 1, lim);

	for (size_t i = 0; i < N_ELEMENTS(chunks); i++) {
		char *other = parse_dump(msg, chunks[i], lim);

		assert_string_equal(whole, other);
		i_free(other);
	}
	i_free(whole);
}

static const struct {
	const char *msg;
	const char *expected; /* type|header|body|lines per part */
} messages[] = {
	{ "From: a@b\r\nSubject: hi\r\n\r\nHello\r\nWorld\r\n",
	  "text/plain|From: a@b\r\nSubject: hi\r\n\r\n|Hello\r\nWorld\r\n|2\n" },
	/* multipart/alternative, preamble, epilogue, padded boundary. */
	{ "Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n"
	  "preamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
	  "--b1 \t\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n"
	  "--b1--\r\nepilogue\r\n",
	  "multipart/alternative|Content-Type: multipart/alternative; "
	  "boundary=\"b1\"\r\n\r\n|preamble\r\n--b1\r\nContent-Type: "
	  "text/plain\r\n\r\nplain\r\n--b1 \t\r\nContent-Type: text/html\r\n"
	  "\r\n<p>html</p>\r\n--b1--\r\nepilogue\r\n|11\n"
	  "text/plain|Content-Type: text/plain\r\n\r\n|plain|0\n"
	  "text/html|Content-Type: text/html\r\n\r\n|<p>html</p>|0\n" },
	/* Nested mixed + related + message/rfc822, LF only. */
	{ "Content-Type: multipart/mixed; boundary=outer\n\n--outer\n"
	  "Content-Type: multipart/related; boundary=inner\n\n--inner\n"
	  "Content-Type: text/html\n\n<img>\n--inner\n"
	  "Content-Type: image/png\nContent-Transfer-Encoding: base64\n\n"
	  "iVBORw0K\n--inner--\n--outer\nContent-Type: message/rfc822\n\n"
	  "Subject: inner\nFrom: x@y\n\nbody\n--outer--\n",
	  "multipart/mixed|Content-Type: multipart/mixed; boundary=outer\n\n|"
	  "--outer\nContent-Type: multipart/related; boundary=inner\n\n"
	  "--inner\nContent-Type: text/html\n\n<img>\n--inner\n"
	  "Content-Type: image/png\nContent-Transfer-Encoding: base64\n\n"
	  "iVBORw0K\n--inner--\n--outer\nContent-Type: message/rfc822\n\n"
	  "Subject: inner\nFrom: x@y\n\nbody\n--outer--\n|21\n"
	  "multipart/related|Content-Type: multipart/related; boundary=inner"
	  "\n\n|--inner\nContent-Type: text/html\n\n<img>\n--inner\n"
	  "Content-Type: image/png\nContent-Transfer-Encoding: base64\n\n"
	  "iVBORw0K\n--inner--|9\n"
	  "text/html|Content-Type: text/html\n\n|<img>|0\n"
	  "image/png|Content-Type: image/png\nContent-Transfer-Encoding: "
	  "base64\n\n|iVBORw0K|0\n"
	  "message/rfc822|Content-Type: message/rfc822\n\n|Subject: inner\n"
	  "From: x@y\n\nbody|3\n"
	  "text/plain|Subject: inner\nFrom: x@y\n\n|body|0\n" },
	/* No final boundary: the last part runs to the end. */
	{ "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n"
	  "part one\r\n--x\r\nContent-Type: text/plain\r\n\r\npart two\r\n",
	  "multipart/mixed|Content-Type: multipart/mixed; boundary=x\r\n\r\n|"
	  "--x\r\n\r\npart one\r\n--x\r\nContent-Type: text/plain\r\n\r\n"
	  "part two\r\n|7\n"
	  "text/plain|\r\n|part one|0\n"
	  "text/plain|Content-Type: text/plain\r\n\r\n|part two\r\n|1\n" },
	/* Headers only, no empty line, no final LF. */
	{ "Subject: x\r\nFrom: y", "text/plain|Subject: x\r\nFrom: y||0\n" },
	{ "", "text/plain|||0\n" },
	{ "\n", "text/plain|\n||0\n" },
	{ "\r\nbody", "text/plain|\r\n|body|0\n" },
	/* A part with no header block at all, and one without a body. */
	{ "Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\nX: y\n\nz\n"
	  "--b\nX: only\n--b--",
	  "multipart/mixed|Content-Type: multipart/mixed; boundary=b\n\n|--b\n"
	  "--b\nX: y\n\nz\n--b\nX: only\n--b--|7\n"
	  "text/plain|||0\n"
	  "text/plain|X: y\n\n|z|0\n"
	  "text/plain|X: only||0\n" },
	/* "--b-- junk" in the preamble is text, not a close-delimiter
	   (RFC 2046 5.1.1); after a part it closes, leniently. */
	{ "Content-Type: multipart/mixed; boundary=b\n\n--b-- no\n--b\n\nx\n"
	  "--b-- junk\nepi\n",
	  "multipart/mixed|Content-Type: multipart/mixed; boundary=b\n\n|"
	  "--b-- no\n--b\n\nx\n--b-- junk\nepi\n|6\n"
	  "text/plain|\n|x|0\n" },
	/* RFC 2046 5.1.5: digest parts default to message/rfc822. */
	{ "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: s\n\n"
	  "b\n--d--\n",
	  "multipart/digest|Content-Type: multipart/digest; boundary=d\n\n|"
	  "--d\n\nSubject: s\n\nb\n--d--\n|6\n"
	  "message/rfc822|\n|Subject: s\n\nb|2\n"
	  "text/plain|Subject: s\n\n|b|0\n" },
	/* Nested boundary that extends the outer one (longest wins). */
	{ "Content-Type: multipart/mixed; boundary=ab\n\n--ab\n"
	  "Content-Type: multipart/mixed; boundary=a\n\n--a\n\nx\n--ab--\n",
	  "multipart/mixed|Content-Type: multipart/mixed; boundary=ab\n\n|"
	  "--ab\nContent-Type: multipart/mixed; boundary=a\n\n--a\n\nx\n"
	  "--ab--\n|7\n"
	  "multipart/mixed|Content-Type: multipart/mixed; boundary=a\n\n|"
	  "--a\n\nx|2\n"
	  "text/plain|\n|x|0\n" },
	/* Folded Content-Type, RFC 2231 boundary, comments. */
	{ "Content-Type: multipart/mixed;\r\n (c) boundary*0=\"x\";\r\n"
	  "\tboundary*1=\"y\"\r\n\r\n--xy\r\n\r\na\r\n--xy--\r\n",
	  "multipart/mixed|Content-Type: multipart/mixed;\r\n (c) boundary*0="
	  "\"x\";\r\n\tboundary*1=\"y\"\r\n\r\n|--xy\r\n\r\na\r\n--xy--\r\n|4\n"
	  "text/plain|\r\n|a|0\n" },
	/* Multipart without a boundary is a leaf; bad Content-Type is
	   text/plain (RFC 2045 5.2). */
	{ "Content-Type: multipart/mixed\n\n--x\n",
	  "multipart/mixed|"
	  "Content-Type: multipart/mixed\n\n|--x\n|1\n" },
	{ "Content-Type: text\n\nx",
	  "text/plain|Content-Type: text\n\n|x|0\n" },
	/* The empty line ending a header is also the line break before
	   the boundary: the parent's body keeps it. */
	{ "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
	  "Content-Type: message/rfc822\n\nSubject: s\n\n--b--\n",
	  "multipart/mixed|Content-Type: multipart/mixed; boundary=b\n\n|"
	  "--b\nContent-Type: message/rfc822\n\nSubject: s\n\n--b--\n|6\n"
	  "message/rfc822|Content-Type: message/rfc822\n\n|Subject: s\n\n|2\n"
	  "text/plain|Subject: s\n\n||0\n" },
	/* message/rfc822 with base64 is not parsed (RFC 2046 5.2.1). */
	{ "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n"
	  "U3ViamVjdDogeA==\n",
	  "message/rfc822|Content-Type: message/rfc822\nContent-Transfer-"
	  "Encoding: base64\n\n|U3ViamVjdDogeA==\n|1\n" },
};

static void test_messages(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(messages); i++) {
		pool_t pool = pool_create("test", 1024);
		struct span msg = span_from_cstr(messages[i].msg);
		struct mime_result result;
		struct buf out = BUF_INIT;

		mime_parse(pool, NULL, msg.p, msg.len, &result);
		dump_part(&out, result.root, msg);
		if (strcmp(buf_cstr(&out), messages[i].expected) != 0)
			fail_msg("message %zu: got\n%s", i, buf_cstr(&out));
		buf_free(&out);
		pool_unref(&pool);
		check_chunkings(msg, NULL);
	}
}

static void test_flags_and_fields(void **state)
{
	static const char msg[] =
		"Content-Type: multipart/mixed; boundary=b\r\n"
		"Subject: s\r\n\r\n--b\r\n"
		"Content-Type: text/plain; charset=\"iso-8859-1\"\r\n"
		"Content-Transfer-Encoding: Quoted-Printable\r\n"
		"Content-ID: <id@x>\r\nContent-Description: desc\r\n"
		"Content-Disposition: attachment;\r\n"
		" filename*=utf-8''%E2%82%AC.txt\r\n"
		"Content-Language: en, de\r\nContent-Location: http://x/\r\n"
		"Content-MD5: abc=\r\n\r\nbody\0with NUL\r\n--b\r\n";
	pool_t pool = pool_create("test", 1024);
	struct mime_result result;
	struct mime_part *p;

	(void)state;
	mime_parse(pool, NULL, msg, sizeof(msg) - 1, &result);
	assert_int_equal(result.part_count, 3);
	assert_true(result.flags & MIME_PART_FLAG_NO_FINAL_BOUNDARY);
	assert_true(result.flags & MIME_PART_FLAG_HAS_NUL);
	assert_string_equal(result.root->envelope->subject, "s");
	p = mime_part_find(result.root, "1");
	assert_non_null(p);
	assert_ptr_equal(p, result.root->children);
	assert_string_equal(
		mime_param_get(p->params, p->param_count, "charset"),
		"iso-8859-1");
	assert_string_equal(p->encoding, "quoted-printable");
	assert_string_equal(p->id, "<id@x>");
	assert_string_equal(p->description, "desc");
	assert_string_equal(p->disposition, "attachment");
	assert_string_equal(
		mime_param_get(p->disp_params, p->disp_param_count, "filename"),
		"\xe2\x82\xac.txt");
	assert_string_equal(p->language, "en, de");
	assert_string_equal(p->location, "http://x/");
	assert_string_equal(p->md5, "abc=");
	assert_int_equal(p->nul_count, 1);
	assert_null(p->envelope);
	assert_int_equal(p->header_count, 8);
	/* The second part is empty (no header end). */
	p = mime_part_find(result.root, "2");
	assert_non_null(p);
	assert_true(p->flags & MIME_PART_FLAG_NO_HEADER_END);
	assert_null(mime_part_find(result.root, "3"));
	assert_null(mime_part_find(result.root, "1.1"));
	assert_null(mime_part_find(result.root, "x"));
	assert_null(mime_part_find(result.root, "0"));
	assert_ptr_equal(mime_part_find(result.root, ""), result.root);
	pool_unref(&pool);
}

static void test_part_find_message(void **state)
{
	static const char msg[] =
		"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nt\n--b\n"
		"Content-Type: message/rfc822\n\n"
		"Content-Type: multipart/alternative; boundary=c\n\n--c\n\n"
		"one\n--c\n\ntwo\n--c--\n--b--\n";
	pool_t pool = pool_create("test", 1024);
	struct mime_result result;
	struct mime_part *p;

	(void)state;
	mime_parse(pool, NULL, msg, sizeof(msg) - 1, &result);
	p = mime_part_find(result.root, "2.2");
	assert_non_null(p);
	assert_memory_equal(msg + p->body_offset, "two",
			    p->body_end - p->body_offset);
	p = mime_part_find(result.root, "2");
	assert_true(p->flags & MIME_PART_FLAG_MESSAGE);
	assert_null(mime_part_find(result.root, "2.3"));
	/* A single-part message: "1" is its body. */
	pool_clear(pool);
	mime_parse(pool, NULL, "\nx", 2, &result);
	assert_ptr_equal(mime_part_find(result.root, "1"), result.root);
	assert_null(mime_part_find(result.root, "1.1"));
	pool_unref(&pool);
}

static void build_nested(struct buf *msg, unsigned int levels)
{
	for (unsigned int i = 0; i < levels; i++)
		buf_printf(msg,
			   "Content-Type: multipart/mixed; boundary=b%u"
			   "\r\n\r\n--b%u\r\n",
			   i, i);
	buf_append_str(msg, "\r\ndeep\r\n");
	for (unsigned int i = levels; i > 0; i--)
		buf_printf(msg, "--b%u--\r\n", i - 1);
}

static void test_depth_limit(void **state)
{
	struct buf msg = BUF_INIT;
	pool_t pool = pool_create("test", 1024);
	struct mime_limits limits = { 5, 0, 0, 0 };
	struct mime_result result;
	struct mime_part *p;
	unsigned int depth = 0;

	(void)state;
	build_nested(&msg, 30);
	mime_parse(pool, NULL, msg.data, msg.used, &result);
	for (p = result.root; p->children != NULL; p = p->children)
		depth++;
	assert_int_equal(depth, MIME_LIMITS_DEFAULT_DEPTH);
	assert_true(p->flags & MIME_PART_FLAG_OPAQUE);
	assert_true(result.flags & MIME_PART_FLAG_OPAQUE);
	assert_int_equal(result.part_count, MIME_LIMITS_DEFAULT_DEPTH + 1);
	/* The opaque part keeps everything up to its parent's boundary. */
	assert_true(p->body_end > p->body_offset);
	check_chunkings(buf_span(&msg), NULL);

	pool_clear(pool);
	mime_parse(pool, &limits, msg.data, msg.used, &result);
	assert_int_equal(result.part_count, 6);
	check_chunkings(buf_span(&msg), &limits);
	buf_free(&msg);
	pool_unref(&pool);
}

static void test_part_limit(void **state)
{
	struct buf msg = BUF_INIT;
	pool_t pool = pool_create("test", 1024);
	struct mime_limits limits = { 0, 10, 0, 0 };
	struct mime_result result;

	(void)state;
	buf_append_str(&msg, "Content-Type: multipart/mixed; boundary=p\n\n");
	for (int i = 0; i < 50; i++)
		buf_printf(&msg, "--p\n\npart %d\n", i);
	buf_append_str(&msg, "--p--\n");
	mime_parse(pool, &limits, msg.data, msg.used, &result);
	assert_int_equal(result.part_count, 10);
	assert_int_equal(result.root->child_count, 9);
	assert_true(result.root->flags & MIME_PART_FLAG_OPAQUE);
	assert_int_equal(result.root->body_end, msg.used);
	check_chunkings(buf_span(&msg), &limits);

	pool_clear(pool);
	mime_parse(pool, NULL, msg.data, msg.used, &result);
	assert_int_equal(result.part_count, 51);
	buf_free(&msg);
	pool_unref(&pool);
}

static void test_header_limits(void **state)
{
	struct buf msg = BUF_INIT;
	pool_t pool = pool_create("test", 1024);
	struct mime_result result;
	size_t body;

	(void)state;
	for (int i = 0; i < 2000; i++)
		buf_printf(&msg, "X-H%d: v\r\n", i);
	buf_append_str(&msg, "Subject: ");
	for (int i = 0; i < 200 * 1024; i++)
		buf_append_c(&msg, 'a' + i % 26);
	buf_append_str(&msg, "\r\n\r\n");
	body = msg.used;
	buf_append_str(&msg, "body\r\n");
	mime_parse(pool, NULL, msg.data, msg.used, &result);
	assert_int_equal(result.root->header_count,
			 MIME_LIMITS_DEFAULT_HEADERS);
	assert_true(result.root->flags & MIME_PART_FLAG_HEADERS_TRUNCATED);
	assert_int_equal(result.root->body_offset, body);
	assert_int_equal(result.root->body_end, msg.used);
	/* Subject was past the header limit: not seen. */
	assert_null(result.root->envelope->subject);

	/* A long header within the count limit is truncated. */
	pool_clear(pool);
	buf_reset(&msg);
	buf_append_str(&msg, "Subject: ");
	for (int i = 0; i < 100 * 1024; i++)
		buf_append_c(&msg, 'x');
	buf_append_str(&msg, "\r\n continued\r\n\r\nb");
	mime_parse(pool, NULL, msg.data, msg.used, &result);
	assert_int_equal(strlen(result.root->envelope->subject),
			 MIME_LIMITS_DEFAULT_LINE - strlen("Subject: "));
	assert_true(result.root->flags & MIME_PART_FLAG_LONG_LINE);
	assert_int_equal(result.root->body_offset, msg.used - 1);
	buf_free(&msg);
	pool_unref(&pool);
}

static void test_long_body_lines(void **state)
{
	struct buf msg = BUF_INIT;
	pool_t pool = pool_create("test", 1024);
	struct mime_limits limits = { 0, 0, 0, 100 };
	struct mime_result result;

	(void)state;
	buf_append_str(&msg, "Content-Type: multipart/mixed; boundary=q\n\n"
			     "--q\n\n");
	for (int i = 0; i < 1000; i++)
		buf_append_c(&msg, i % 2 == 0 ? '-' : '\0');
	buf_append_str(&msg, "\n--q\n\nsecond\n--q--\n");
	mime_parse(pool, &limits, msg.data, msg.used, &result);
	assert_int_equal(result.root->child_count, 2);
	assert_int_equal(result.root->children->nul_count, 500);
	assert_int_equal(result.root->children->body_end -
				 result.root->children->body_offset,
			 1000);
	check_chunkings(buf_span(&msg), &limits);
	buf_free(&msg);
	pool_unref(&pool);
}

static void test_corpus(void **state)
{
	const char *srcdir = getenv("MARMOT_SOURCE_DIR");
	char *dirpath;
	struct dirent *d;
	DIR *dir;
	unsigned int count = 0;

	(void)state;
	assert_non_null(srcdir);
	dirpath = i_strdup_printf("%s/tests/mime-corpus", srcdir);
	dir = opendir(dirpath);
	assert_non_null(dir);
	while ((d = readdir(dir)) != NULL) {
		struct buf msg = BUF_INIT, expected = BUF_INIT;
		char *path, *bs_path, *got;
		FILE *f;
		size_t n;
		uint8_t chunk[4096];

		if (strlen(d->d_name) < 5 ||
		    strcmp(d->d_name + strlen(d->d_name) - 4, ".eml") != 0)
			continue;
		path = i_strdup_printf("%s/%s", dirpath, d->d_name);
		f = fopen(path, "rb");
		assert_non_null(f);
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			buf_append(&msg, chunk, n);
		fclose(f);
		check_chunkings(buf_span(&msg), NULL);

		/* name.eml.bs holds the expected BODYSTRUCTURE. */
		bs_path = i_strdup_printf("%s.bs", path);
		f = fopen(bs_path, "rb");
		if (f != NULL) {
			pool_t pool = pool_create("test", 1024);
			struct mime_result result;
			struct buf out = BUF_INIT;

			while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
				buf_append(&expected, chunk, n);
			fclose(f);
			mime_parse(pool, NULL, msg.data, msg.used, &result);
			imap_bodystructure_write(&out, result.root, true);
			buf_append_c(&out, '\n');
			got = i_strdup(buf_cstr(&out));
			if (strcmp(got, buf_cstr(&expected)) != 0)
				fail_msg("%s: got %s", d->d_name, got);
			i_free(got);
			buf_free(&out);
			pool_unref(&pool);
		}
		i_free(bs_path);
		i_free(path);
		buf_free(&msg);
		buf_free(&expected);
		count++;
	}
	closedir(dir);
	i_free(dirpath);
	assert_true(count >= 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_flags_and_fields),
		cmocka_unit_test(test_part_find_message),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_part_limit),
		cmocka_unit_test(test_header_limits),
		cmocka_unit_test(test_long_body_lines),
		cmocka_unit_test(test_corpus),
	};
	srand(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
