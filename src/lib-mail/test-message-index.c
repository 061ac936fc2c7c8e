/* test-message-index.c - unit tests for message-index.c over whole
   messages: multipart/alternative indexed once, base64 UTF-8 and QP
   ISO-8859-1 bodies, HTML-only mail, RFC 2047 headers, attachment names
   (RFC 2231 too), embedded message/rfc822 text, threading headers, a
   Date table, a base subject table (RFC 5256), previews (length, white
   space, UTF-8 cut), a 10 MB body capped at MESSAGE_INDEX_MAX_TEXT, and
   every message of tests/mime-corpus/ (its BODYSTRUCTURE checked against
   the .bs file beside it). Run under ASan+UBSan. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "charset.h"
#include "message-index.h"
#include "pool.h"

#include <dirent.h>
#include <stdio.h>

static pool_t test_pool;

static int setup(void **state)
{
	(void)state;
	test_pool = pool_create("test-message-index", 64 * 1024);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pool_unref(&test_pool);
	return 0;
}

static void index_msg(const char *msg, struct message_index *ix_r)
{
	message_index_build(test_pool, msg, strlen(msg), ix_r);
}

/* Every string the store gets is valid UTF-8 (ids and IMAP strings
   aside, which are raw). */
static void check_valid(const struct message_index *ix)
{
	assert_non_null(ix->envelope);
	assert_non_null(ix->bodystructure);
	assert_non_null(ix->body);
	assert_int_equal(ix->envelope[0], '(');
	assert_int_equal(ix->bodystructure[0], '(');
	assert_int_equal(ix->body[0], '(');
	assert_true(charset_utf8_is_valid(span_from_cstr(ix->preview)));
	assert_true(charset_utf8_is_valid(span_from_cstr(ix->text)));
	assert_true(charset_utf8_is_valid(span_from_cstr(ix->from)));
	assert_true(charset_utf8_is_valid(span_from_cstr(ix->to)));
	assert_true(charset_utf8_is_valid(span_from_cstr(ix->cc)));
	assert_true(charset_utf8_is_valid(span_from_cstr(ix->bcc)));
	assert_true(charset_utf8_is_valid(span_from_cstr(ix->subject)));
	assert_true(charset_utf8_is_valid(span_from_cstr(ix->base_subject)));
	assert_true(charset_utf8_is_valid(span_from_cstr(ix->sort_from)));
	assert_true(charset_utf8_is_valid(span_from_cstr(ix->sort_to)));
	assert_true(charset_utf8_is_valid(span_from_cstr(ix->sort_cc)));
	assert_true(charset_utf8_is_valid(span_from_cstr(ix->display_from)));
	assert_true(charset_utf8_is_valid(span_from_cstr(ix->display_to)));
	assert_true(strlen(ix->text) <= MESSAGE_INDEX_MAX_TEXT);
	assert_non_null(ix->references);
	assert_non_null(ix->attachment_names);
}

static unsigned int count_substr(const char *hay, const char *needle)
{
	unsigned int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static void test_alternative_once(void **state)
{
	static const char *const msgs[] = {
		/* The usual order: plain, then HTML. */
		"From: a@example.org\r\n"
		"Subject: alt\r\n"
		"Content-Type: multipart/alternative; boundary=b\r\n\r\n"
		"--b\r\nContent-Type: text/plain\r\n\r\nshared-word plainonly\r\n"
		"--b\r\nContent-Type: text/html\r\n\r\n"
		"<p>shared-word htmlonly</p>\r\n--b--\r\n",
		/* HTML first. */
		"Content-Type: multipart/alternative; boundary=b\r\n\r\n"
		"--b\r\nContent-Type: text/html\r\n\r\n"
		"<p>shared-word htmlonly</p>\r\n"
		"--b\r\nContent-Type: text/plain\r\n\r\nshared-word plainonly\r\n"
		"--b--\r\n",
		/* HTML inside multipart/related inside the alternative. */
		"Content-Type: multipart/alternative; boundary=b\r\n\r\n"
		"--b\r\nContent-Type: text/plain\r\n\r\nshared-word plainonly\r\n"
		"--b\r\nContent-Type: multipart/related; boundary=r\r\n\r\n"
		"--r\r\nContent-Type: text/html\r\n\r\n"
		"<p>shared-word htmlonly</p>\r\n"
		"--r\r\nContent-Type: image/gif\r\n\r\nGIF\r\n--r--\r\n"
		"--b--\r\n",
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(msgs); i++) {
		struct message_index ix;

		index_msg(msgs[i], &ix);
		check_valid(&ix);
		assert_int_equal(count_substr(ix.text, "shared-word"), 1);
		assert_non_null(strstr(ix.text, "plainonly"));
		assert_null(strstr(ix.text, "htmlonly"));
		assert_string_equal(ix.preview, "shared-word plainonly");
		assert_false(ix.text_truncated);
	}
}

static void test_mixed_plain_and_html(void **state)
{
	/* Outside an alternative, HTML parts are indexed beside plain. */
	static const char msg[] =
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"
		"--b\r\nContent-Type: text/html\r\n\r\n<b>second</b> part\r\n"
		"--b--\r\n";
	struct message_index ix;

	(void)state;
	index_msg(msg, &ix);
	check_valid(&ix);
	assert_string_equal(ix.text, "first part\nsecond part");
	assert_string_equal(ix.preview, "first part");
}

static void test_base64_utf8(void **state)
{
	static const char msg[] =
		"Subject: b64\r\n"
		"Content-Type: text/plain; charset=UTF-8\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\n"
		"R3LDvMOfZSBhdXMgS8O2bG4g4oCUIMO8bsOvY8O2ZMOpIGI2NHdvcmQKR3LDvMOfZSBhdXMgS8O2\r\n"
		"bG4g4oCUIMO8bsOvY8O2ZMOpIGI2NHdvcmQK\r\n";
	struct message_index ix;

	(void)state;
	index_msg(msg, &ix);
	check_valid(&ix);
	assert_string_equal(ix.text, "Gr\xc3\xbc\xc3\x9f"
				     "e aus K\xc3\xb6ln \xe2\x80\x94 "
				     "\xc3\xbcn\xc3\xaf"
				     "c\xc3\xb6"
				     "d\xc3\xa9 b64word\n"
				     "Gr\xc3\xbc\xc3\x9f"
				     "e aus K\xc3\xb6ln \xe2\x80\x94 "
				     "\xc3\xbcn\xc3\xaf"
				     "c\xc3\xb6"
				     "d\xc3\xa9 b64word");
	assert_int_equal(count_substr(ix.preview, "b64word"), 2);
	assert_null(strchr(ix.preview, '\n'));
}

static void test_qp_latin1(void **state)
{
	static const char msg[] =
		"Subject: qp\r\n"
		"Content-Type: text/plain; charset=\"ISO-8859-1\"\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		"Caf=E9 cr=E8me br=FBl=E9e, tr=E8s =\r\n"
		"bon.=20\r\n"
		"Second line  \r\n";
	struct message_index ix;

	(void)state;
	index_msg(msg, &ix);
	check_valid(&ix);
	assert_string_equal(ix.text, "Caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl"
				     "\xc3\xa9"
				     "e, tr\xc3\xa8s bon. \nSecond line");
	assert_string_equal(ix.preview, "Caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl"
					"\xc3\xa9"
					"e, tr\xc3\xa8s bon. Second line");
}

static void test_html_only(void **state)
{
	static const char msg[] =
		"Subject: html\r\n"
		"Content-Type: text/html; charset=windows-1252\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		"<html><head><title>Title</title><style>.x{color:red}</style>"
		"</head><body><p>Hello&nbsp;World</p>\r\n"
		"<p class=3D\"a>b\">Caf=E9 =80 &amp; more</p>"
		"<script>evil()</script><!-- hidden --></body></html>\r\n";
	struct message_index ix;

	(void)state;
	index_msg(msg, &ix);
	check_valid(&ix);
	assert_string_equal(ix.text, "Hello World\n\nCaf\xc3\xa9 \xe2\x82\xac "
				     "& more");
	assert_string_equal(ix.preview, "Hello World Caf\xc3\xa9 \xe2\x82\xac "
					"& more");
	assert_false(ix.has_attachment);
}

static void test_rfc2047_headers(void **state)
{
	static const char msg[] =
		"From: =?utf-8?q?J=C3=B6rg?= <j@example.de>\r\n"
		"To: \"Doe, John\" <jd@example.com>,\r\n"
		" =?iso-8859-1?b?WG/r?= <zoe@example.fr>\r\n"
		"Cc: Friends: a@example.org, B <b@example.org>;\r\n"
		"Bcc: hidden@example.net (Hidden Person)\r\n"
		"Subject: =?iso-8859-1?q?Gr=FC=DFe?= aus\r\n"
		" =?utf-8?b?S8O2bG4=?=\r\n"
		"\r\nbody\r\n";
	struct message_index ix;

	(void)state;
	index_msg(msg, &ix);
	check_valid(&ix);
	assert_string_equal(ix.from, "J\xc3\xb6rg <j@example.de>");
	assert_string_equal(ix.to, "Doe, John <jd@example.com>, "
				   "Xo\xc3\xab <zoe@example.fr>");
	assert_string_equal(ix.cc, "Friends: <a@example.org>, "
				   "B <b@example.org>;");
	assert_string_equal(ix.bcc, "Hidden Person <hidden@example.net>");
	assert_string_equal(ix.subject, "Gr\xc3\xbc\xc3\x9f"
					"e aus K\xc3\xb6ln");
	/* ENVELOPE keeps the raw header. */
	assert_non_null(strstr(ix.envelope, "=?utf-8?q?J=C3=B6rg?="));

	/* Absent headers give empty strings. */
	index_msg("\r\nbody only\r\n", &ix);
	check_valid(&ix);
	assert_string_equal(ix.from, "");
	assert_string_equal(ix.subject, "");
	assert_string_equal(ix.base_subject, "");
	assert_null(ix.message_id);
	assert_null(ix.references[0]);
	assert_int_equal(ix.date, 0);
	assert_string_equal(ix.text, "body only");
}

static void test_attachments(void **state)
{
	static const char msg[] =
		"Subject: files\r\n"
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b\r\nContent-Type: text/plain\r\n\r\nsee files\r\n"
		"--b\r\nContent-Type: application/pdf;\r\n"
		" name*0*=utf-8''%E2%82%AC%20rates;\r\n name*1=\".pdf\"\r\n"
		"Content-Disposition: attachment;\r\n"
		" filename*=UTF-8'en'%E2%82%AC%20rates%202024.pdf\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n"
		"--b\r\nContent-Type: image/png\r\n"
		"Content-Disposition: attachment\r\n\r\nPNG\r\n"
		"--b\r\nContent-Type: text/plain; "
		"name=\"=?iso-8859-1?q?r=E9sum=E9?=.txt\"\r\n"
		"Content-Disposition: inline\r\n\r\nCV text\r\n"
		"--b\r\nContent-Type: application/octet-stream; name=a.bin\r\n"
		"\r\nAAAA\r\n"
		"--b--\r\n";
	struct message_index ix;

	(void)state;
	index_msg(msg, &ix);
	check_valid(&ix);
	assert_true(ix.has_attachment);
	assert_non_null(ix.attachment_names[0]);
	assert_string_equal(ix.attachment_names[0],
			    "\xe2\x82\xac rates 2024.pdf");
	assert_non_null(ix.attachment_names[1]);
	assert_string_equal(ix.attachment_names[1], "r\xc3\xa9sum\xc3\xa9.txt");
	assert_non_null(ix.attachment_names[2]);
	assert_string_equal(ix.attachment_names[2], "a.bin");
	assert_null(ix.attachment_names[3]);
	/* Text attachments are searchable; binary ones are not text. */
	assert_string_equal(ix.text, "see files\nCV text");
	assert_string_equal(ix.preview, "see files");

	index_msg("Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		  "--b\r\nContent-Type: text/plain\r\n\r\nno files\r\n"
		  "--b\r\nContent-Type: text/html\r\n\r\n<i>inline</i>\r\n"
		  "--b--\r\n",
		  &ix);
	assert_false(ix.has_attachment);
	assert_null(ix.attachment_names[0]);
}

static void test_embedded_message(void **state)
{
	static const char msg[] =
		"From: alice@example.org\r\n"
		"Subject: Fwd: report\r\n"
		"Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
		"--outer\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
		"--outer\r\nContent-Type: message/rfc822\r\n"
		"Content-Disposition: attachment; filename=report.eml\r\n\r\n"
		"From: =?utf-8?q?Carol_C=C3=A9?= <carol@example.com>\r\n"
		"Subject: Quarterly =?utf-8?q?r=C3=A9port?=\r\n"
		"Content-Type: multipart/alternative; boundary=inner\r\n\r\n"
		"--inner\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		"innerword caf=E9\r\n"
		"--inner\r\nContent-Type: text/html\r\n\r\n"
		"<b>innerword</b> htmlcopy\r\n"
		"--inner--\r\n"
		"--outer--\r\n";
	struct message_index ix;

	(void)state;
	index_msg(msg, &ix);
	check_valid(&ix);
	assert_int_equal(count_substr(ix.text, "innerword"), 1);
	assert_non_null(strstr(ix.text, "innerword caf\xc3\xa9"));
	assert_null(strstr(ix.text, "htmlcopy"));
	assert_non_null(strstr(ix.text, "Quarterly r\xc3\xa9port"));
	assert_non_null(strstr(ix.text, "Carol C\xc3\xa9 <carol@example.com>"));
	assert_string_equal(ix.preview, "See attached.");
	assert_true(ix.has_attachment);
	assert_string_equal(ix.attachment_names[0], "report.eml");
	/* The outer headers are the message's. */
	assert_string_equal(ix.subject, "Fwd: report");
	assert_string_equal(ix.base_subject, "report");

	/* With no text of its own, the preview comes from the embedded
	   message. */
	index_msg("Content-Type: message/rfc822\r\n\r\n"
		  "Subject: inner\r\n\r\nonly inner text\r\n",
		  &ix);
	check_valid(&ix);
	assert_string_equal(ix.preview, "only inner text");
	assert_string_equal(ix.text, "inner\nonly inner text");
}

static void test_threading(void **state)
{
	static const struct {
		const char *headers;
		const char *message_id;
		const char *refs[5];
	} cases[] = {
		{ "Message-ID: <abc@example.org>\r\n"
		  "In-Reply-To: <parent@example.org> (message from Bob)\r\n"
		  "References: <root@example.org>\r\n"
		  " <mid@example.org> (comment)\r\n\t<parent@example.org>\r\n",
		  "abc@example.org",
		  { "root@example.org", "mid@example.org", "parent@example.org",
		    NULL } },
		/* RFC 5322 4.5.4: obs-in-reply-to with phrases. */
		{ "In-Reply-To: Bob's message <p2@x.example> of Monday\r\n",
		  NULL,
		  { "p2@x.example", NULL } },
		{ "In-Reply-To: \"quoted <not@id>\" <p3@x.example>\r\n",
		  NULL,
		  { "p3@x.example", NULL } },
		/* Lenient: no brackets, spaces inside, comments inside. */
		{ "Message-ID: bare@example.org\r\n",
		  "bare@example.org",
		  { NULL } },
		{ "Message-ID: <  spaced @ example.org >\r\n",
		  "spaced@example.org",
		  { NULL } },
		{ "Message-ID: (c) <a(x)b@c.example>\r\n",
		  "ab@c.example",
		  { NULL } },
		{ "Message-ID: <>\r\n", NULL, { NULL } },
		{ "Message-ID: no id here\r\n", NULL, { NULL } },
		/* Duplicates go, commas are tolerated, In-Reply-To last. */
		{ "References: <a@x>,<b@x> <a@x>\r\n"
		  "In-Reply-To: <c@x>\r\n",
		  NULL,
		  { "a@x", "b@x", "c@x", NULL } },
		{ "References: <a@x> <b@x>\r\nIn-Reply-To: <a@x>\r\n",
		  NULL,
		  { "a@x", "b@x", NULL } },
		/* Only the first References field counts. */
		{ "References: <a@x>\r\nReferences: <b@x>\r\n",
		  NULL,
		  { "a@x", NULL } },
		{ "references : <lower@x>\r\n", NULL, { "lower@x", NULL } },
		{ "X-References: <no@x>\r\n", NULL, { NULL } },
		{ "References: <unterminated@x\r\n",
		  NULL,
		  { "unterminated@x", NULL } },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct message_index ix;
		char *msg = i_strdup_printf("%s\r\nbody\r\n", cases[i].headers);
		size_t n;

		index_msg(msg, &ix);
		check_valid(&ix);
		if (cases[i].message_id == NULL)
			assert_null(ix.message_id);
		else
			assert_string_equal(ix.message_id, cases[i].message_id);
		for (n = 0; cases[i].refs[n] != NULL; n++) {
			if (ix.references[n] == NULL)
				fail_msg("case %zu: ref %zu missing", i, n);
			assert_string_equal(ix.references[n], cases[i].refs[n]);
		}
		if (ix.references[n] != NULL)
			fail_msg("case %zu: extra ref '%s'", i,
				 ix.references[n]);
		i_free(msg);
	}
}

static void test_many_references(void **state)
{
	struct buf msg = BUF_INIT;
	struct message_index ix;
	size_t n = 0;

	(void)state;
	buf_append_str(&msg, "References:");
	for (int i = 0; i < 1000; i++)
		buf_printf(&msg, "\r\n <r%d@x>", i);
	buf_append_str(&msg, "\r\nIn-Reply-To: <r999@x>\r\n\r\nbody\r\n");
	index_msg(buf_cstr(&msg), &ix);
	check_valid(&ix);
	while (ix.references[n] != NULL)
		n++;
	/* Bounded; the newest (the parent) are kept. */
	assert_true(n > 0 && n <= 256);
	assert_string_equal(ix.references[n - 1], "r999@x");
	buf_free(&msg);
}

static void test_date(void **state)
{
	static const struct {
		const char *date;
		int64_t expected;
	} cases[] = {
		{ "Tue, 2 Jan 2024 10:00:00 +0100", 1704186000 },
		{ "2 Jan 2024 10:00:00 +0100", 1704186000 },
		{ "Tue, 02 Jan 2024 10:00 +0100", 1704186000 },
		{ "tue,  2  jan  2024  10:00:00  +0100", 1704186000 },
		{ "Tue,\r\n 2 Jan 2024\r\n 10:00:00 +0100", 1704186000 },
		{ "Tuesday, 2 January 2024 10:00:00 +0100", 1704186000 },
		{ "Tue (day), 2 Jan (month) 2024 10:00:00 (t) +0100 (CET)",
		  1704186000 },
		{ "Tue, 2 Jan 2024 10 : 00 : 00 +0100", 1704186000 },
		{ "Tue, 2 Jan 2024 11:30:00 -0130", 1704200400 },
		/* RFC 5322 4.3: obs-zone. */
		{ "Tue, 2 Jan 2024 09:00:00 GMT", 1704186000 },
		{ "Tue, 2 Jan 2024 09:00:00 UT", 1704186000 },
		{ "Tue, 2 Jan 2024 04:00:00 EST", 1704186000 },
		{ "Tue, 2 Jan 2024 05:00:00 EDT", 1704186000 },
		{ "Tue, 2 Jan 2024 03:00:00 CST", 1704186000 },
		{ "Tue, 2 Jan 2024 04:00:00 cdt", 1704186000 },
		{ "Tue, 2 Jan 2024 02:00:00 MST", 1704186000 },
		{ "Tue, 2 Jan 2024 01:00:00 PST", 1704186000 },
		{ "Tue, 2 Jan 2024 02:00:00 PDT", 1704186000 },
		{ "Tue, 2 Jan 2024 09:00:00 Z", 1704186000 },
		{ "Tue, 2 Jan 2024 09:00:00 A", 1704186000 },
		{ "Tue, 2 Jan 2024 09:00:00 CET", 1704186000 },
		{ "Tue, 2 Jan 2024 09:00:00", 1704186000 },
		{ "Tue, 2 Jan 2024 09:00:00 -0000", 1704186000 },
		/* RFC 5322 4.3: obs-year. */
		{ "Tue, 2 Jan 24 09:00:00 +0000", 1704186000 },
		{ "Fri, 1 Jan 99 00:00:00 +0000", 915148800 },
		{ "Mon, 1 Jan 124 00:00:00 +0000", 1704067200 },
		/* asctime(). */
		{ "Tue Jan  2 09:00:00 2024", 1704186000 },
		{ "Jan 2 09:00:00 2024 GMT", 1704186000 },
		/* Calendar edges. */
		{ "Thu, 29 Feb 2024 12:00:00 +0000", 1709208000 },
		{ "Mon, 1 Jan 1900 00:00:00 +0000", -2208988800 },
		{ "Fri, 31 Dec 9999 23:59:59 +0000", 253402300799 },
		{ "Tue, 2 Jan 2024 10:00:60 +0000", 1704189660 },
		{ "Thu, 1 Jan 1970 00:00:01 +0000", 1 },
		/* Unparsable. */
		{ "Wed, 29 Feb 2023 12:00:00 +0000", 0 },
		{ "Tue, 2 Jan 2024 24:00:00 +0000", 0 },
		{ "Tue, 2 Jan 2024 10:60:00 +0000", 0 },
		{ "Tue, 32 Jan 2024 10:00:00 +0000", 0 },
		{ "Tue, 0 Jan 2024 10:00:00 +0000", 0 },
		{ "Tue, 2 Foo 2024 10:00:00 +0000", 0 },
		{ "Tue, 2 Jan 2024", 0 },
		{ "Tue, 2 Jan 2024 10:00:00 +01", 0 },
		{ "Tue, 2 Jan 2024 10:00:00 +0160", 0 },
		{ "Tue, 2 Jan 1899 10:00:00 +0000", 0 },
		{ "Tue, 2 Jan 12345 10:00:00 +0000", 0 },
		{ "garbage", 0 },
		{ "", 0 },
		{ "Tue,", 0 },
		{ "2024-01-02T10:00:00Z", 0 },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct message_index ix;
		char *msg =
			i_strdup_printf("Date: %s\r\n\r\nx\r\n", cases[i].date);

		index_msg(msg, &ix);
		if (ix.date != cases[i].expected)
			fail_msg("case %zu '%s': got %lld", i, cases[i].date,
				 (long long)ix.date);
		i_free(msg);
	}
}

static void test_base_subject(void **state)
{
	static const struct {
		const char *subject;
		const char *base;
	} cases[] = {
		{ "Hello", "hello" },
		{ "Re: Hello", "hello" },
		{ "RE: Re: re: Hello", "hello" },
		{ "Re:Hello", "hello" },
		{ "Re : Hello", "hello" },
		{ "Fwd: Hello", "hello" },
		{ "FW: Hello", "hello" },
		{ "fw: Re: Fwd: hello", "hello" },
		{ "Re[2]: Hello", "hello" },
		{ "Re [2] : Hello", "hello" },
		{ "[list] Re: Hello", "hello" },
		{ "[list] Hello", "hello" },
		{ "[list]", "[list]" },
		{ "[list]   ", "[list]" },
		{ "[a][b] Re: [c] Hello", "hello" },
		{ "Re: [PATCH] fix", "fix" },
		{ "Hello (fwd)", "hello" },
		{ "Hello (fwd) (FWD)  ", "hello" },
		{ "[Fwd: Hello]", "hello" },
		{ "[Fwd: Re: Hello] (fwd)", "hello" },
		{ "[fwd: [Fwd: x]]", "x" },
		{ "  Hello \t  World  ", "hello world" },
		{ "Reply: hi", "reply: hi" },
		{ "Fwd:Fwd: Re: x", "x" },
		{ "Re:", "" },
		{ "", "" },
		{ "Re: =?utf-8?q?Gr=C3=BC=C3=9Fe?=", "gr\xc3\xbcsse" },
		{ "\xc3\x84RGER", "\xc3\xa4rger" },
		{ "Re: [unclosed Hello", "[unclosed hello" },
		{ "[a[b]] x", "[a[b]] x" },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct message_index ix;
		char *msg = i_strdup_printf("Subject: %s\r\n\r\nx\r\n",
					    cases[i].subject);

		index_msg(msg, &ix);
		if (strcmp(ix.base_subject, cases[i].base) != 0)
			fail_msg("case %zu '%s': got '%s'", i, cases[i].subject,
				 ix.base_subject);
		i_free(msg);
	}
}

/* SORT keys (RFC 5256 3, RFC 5957 2.1) and the reply flag. */
static void test_sort_keys(void **state)
{
	static const struct {
		const char *subject;
		bool reply;
	} replies[] = {
		{ "Hello", false },        { "Re: Hello", true },
		{ "[list] Hello", false }, { "[list] Re: Hello", true },
		{ "Hello (fwd)", true },   { "[Fwd: Hello]", true },
		{ "  Hello", false },      { "FW: x", true },
	};
	struct message_index ix;

	(void)state;
	index_msg("From: \"Zed Q\" <ZED@Example.ORG>, b@x\r\n"
		  "To: undisclosed:;, =?utf-8?q?J=C3=BCrgen?= <Jue@x.de>\r\n"
		  "Cc: Carol.Q@example.org\r\n"
		  "Subject: hi\r\n\r\nbody\r\n",
		  &ix);
	assert_string_equal(ix.sort_from, "zed");
	assert_string_equal(ix.sort_to, "jue");
	assert_string_equal(ix.sort_cc, "carol.q");
	assert_string_equal(ix.display_from, "Zed Q");
	assert_string_equal(ix.display_to, "J\xc3\xbcrgen");

	index_msg("From: <Ann@Example.org>\r\n\r\nbody\r\n", &ix);
	assert_string_equal(ix.sort_from, "ann");
	assert_string_equal(ix.display_from, "Ann@Example.org");
	assert_string_equal(ix.sort_to, "");
	assert_string_equal(ix.display_to, "");
	assert_string_equal(ix.sort_cc, "");

	for (size_t i = 0; i < N_ELEMENTS(replies); i++) {
		char *msg = i_strdup_printf("Subject: %s\r\n\r\nx\r\n",
					    replies[i].subject);

		index_msg(msg, &ix);
		if (ix.subject_is_reply != replies[i].reply)
			fail_msg("case %zu '%s'", i, replies[i].subject);
		i_free(msg);
	}
}

static unsigned int utf8_chars(const char *s)
{
	unsigned int n = 0;

	for (; *s != '\0'; s++) {
		if (((uint8_t)*s & 0xc0) != 0x80)
			n++;
	}
	return n;
}

static void test_preview(void **state)
{
	struct buf msg = BUF_INIT;
	struct message_index ix;

	(void)state;
	/* Two-byte characters: 256 of them, never a split one. */
	buf_append_str(&msg, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	for (int i = 0; i < 300; i++)
		buf_append_str(&msg, "\xc3\xa9");
	index_msg(buf_cstr(&msg), &ix);
	check_valid(&ix);
	assert_int_equal(utf8_chars(ix.preview), MESSAGE_INDEX_PREVIEW_MAX);
	assert_int_equal(strlen(ix.preview), 2 * MESSAGE_INDEX_PREVIEW_MAX);

	/* Four-byte characters. */
	buf_reset(&msg);
	buf_append_str(&msg, "\r\n");
	for (int i = 0; i < 300; i++)
		buf_append_str(&msg, "\xf0\x9f\x98\x80");
	index_msg(buf_cstr(&msg), &ix);
	check_valid(&ix);
	assert_int_equal(strlen(ix.preview), 4 * MESSAGE_INDEX_PREVIEW_MAX);

	/* No trailing space at the cut. */
	buf_reset(&msg);
	buf_append_str(&msg, "\r\n");
	for (int i = 0; i < 255; i++)
		buf_append_c(&msg, 'a');
	buf_append_str(&msg, " \xc3\xa9\xc3\xa9");
	index_msg(buf_cstr(&msg), &ix);
	assert_int_equal(strlen(ix.preview), 255);
	assert_int_equal(ix.preview[254], 'a');

	/* White space collapsed, NBSP and controls included. */
	index_msg("\r\n  a  \r\n\r\n\t b\xc2\xa0\xc2\xa0"
		  "c\x01\x02"
		  "d  \r\n",
		  &ix);
	assert_string_equal(ix.preview, "a b c d");

	/* Short text is kept whole; empty text gives "". */
	index_msg("\r\nshort\r\n", &ix);
	assert_string_equal(ix.preview, "short");
	index_msg("Subject: x\r\n\r\n", &ix);
	assert_string_equal(ix.preview, "");
	assert_string_equal(ix.text, "");

	/* The first text part with text wins; an attachment never does. */
	index_msg("Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		  "--b\r\nContent-Type: text/plain\r\n"
		  "Content-Disposition: attachment; filename=log.txt\r\n\r\n"
		  "attached log\r\n"
		  "--b\r\nContent-Type: text/plain\r\n\r\n  \r\n"
		  "--b\r\nContent-Type: text/plain\r\n\r\nthe real text\r\n"
		  "--b--\r\n",
		  &ix);
	assert_string_equal(ix.preview, "the real text");
	assert_string_equal(ix.text, "attached log\nthe real text");
	buf_free(&msg);
}

static void test_huge_body(void **state)
{
	static const char *const headers[] = {
		"Content-Type: text/plain; charset=utf-8\r\n\r\n",
		"Content-Type: text/html; charset=utf-8\r\n\r\n",
		"Content-Type: text/plain; charset=utf-8\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\n",
	};
	struct buf msg = BUF_INIT;
	struct message_index ix;

	(void)state;
	for (size_t h = 0; h < N_ELEMENTS(headers); h++) {
		size_t header_len = strlen(headers[h]);

		buf_reset(&msg);
		buf_append_str(&msg, headers[h]);
		while (msg.used < 10 * 1024 * 1024) {
			if (h == 2)
				/* "a\xc3\xa9 word\n" x 4 per line. */
				buf_append_str(&msg, "YcOpIHdvcmQKYcOpIHdvcm"
						     "QKYcOpIHdvcmQKYcOpIHdv"
						     "cmQK\r\n");
			else if (h == 1)
				buf_append_str(&msg,
					       "<p>a\xc3\xa9 word</p>\r\n");
			else
				buf_append_str(&msg, "a\xc3\xa9 word\r\n");
		}
		message_index_build(test_pool, msg.data, msg.used, &ix);
		check_valid(&ix);
		assert_true(ix.text_truncated);
		assert_true(strlen(ix.text) <= MESSAGE_INDEX_MAX_TEXT);
		assert_true(strlen(ix.text) > MESSAGE_INDEX_MAX_TEXT - 16);
		assert_int_equal(strncmp(ix.text, "a\xc3\xa9 word\n", 9), 0);
		/* 256 characters, less a space that would end it. */
		assert_in_range(utf8_chars(ix.preview),
				MESSAGE_INDEX_PREVIEW_MAX - 1,
				MESSAGE_INDEX_PREVIEW_MAX);
		assert_int_not_equal(ix.preview[strlen(ix.preview) - 1], ' ');
		assert_int_equal(ix.header_size, header_len);
		pool_clear(test_pool);
	}
	/* A small message is not truncated. */
	index_msg("\r\nsmall\r\n", &ix);
	assert_false(ix.text_truncated);
	buf_free(&msg);
}

static void test_sizes(void **state)
{
	static const char msg[] = "Subject: s\r\n"
				  "From: a@example.org\r\n"
				  "\r\n"
				  "one\r\ntwo\r\nthree\r\n";
	struct message_index ix;

	(void)state;
	index_msg(msg, &ix);
	check_valid(&ix);
	assert_int_equal(ix.header_size, 12 + 21 + 2);
	assert_int_equal(ix.body_lines, 3);
	assert_string_equal(ix.text, "one\ntwo\nthree");
	assert_string_equal(ix.body, "(\"text\" \"plain\" (\"charset\" "
				     "\"us-ascii\") NIL NIL \"7bit\" 17 3)");

	/* Empty input still gives grammatical IMAP strings. */
	message_index_build(test_pool, NULL, 0, &ix);
	check_valid(&ix);
	assert_int_equal(ix.header_size, 0);
	assert_string_equal(ix.text, "");
}

static void test_unknown_encoding_and_charset(void **state)
{
	static const char raw[] =
		"Content-Type: text/plain; charset=x-nope\r\n\r\n"
		"ok \xc3\xa9 bad \xff nul\0end\r\n";
	struct message_index ix;

	(void)state;
	/* RFC 2045 6.4: an unknown encoding is not text. */
	index_msg("Content-Transfer-Encoding: x-uuencode\r\n\r\n"
		  "begin 644 f\r\n",
		  &ix);
	check_valid(&ix);
	assert_string_equal(ix.text, "");
	/* Unknown charset: read as UTF-8, invalid bytes replaced; NUL
	   bytes dropped. */
	message_index_build(test_pool, raw, sizeof(raw) - 1, &ix);
	check_valid(&ix);
	assert_string_equal(ix.text, "ok \xc3\xa9 bad \xef\xbf\xbd nulend");
}

static char *read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	struct buf b = BUF_INIT;
	char chunk[4096];
	size_t n;
	char *ret;

	if (f == NULL)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	*len_r = b.used;
	ret = i_malloc(b.used + 1);
	if (b.used > 0)
		memcpy(ret, b.data, b.used);
	buf_free(&b);
	return ret;
}

static void test_corpus(void **state)
{
	const char *src = getenv("MARMOT_SOURCE_DIR");
	unsigned int count = 0;
	struct dirent *d;
	char *dir_path;
	DIR *dir;

	(void)state;
	if (src == NULL)
		skip();
	dir_path = i_strdup_printf("%s/tests/mime-corpus", src);
	dir = opendir(dir_path);
	assert_non_null(dir);
	while ((d = readdir(dir)) != NULL) {
		size_t nlen = strlen(d->d_name), len, bs_len;
		struct message_index ix;
		char *path, *data, *bs, *bs_path;

		if (nlen < 4 || strcmp(d->d_name + nlen - 4, ".eml") != 0)
			continue;
		path = i_strdup_printf("%s/%s", dir_path, d->d_name);
		data = read_file(path, &len);
		assert_non_null(data);
		message_index_build(test_pool, data, len, &ix);
		check_valid(&ix);
		assert_true(strlen(ix.envelope) > 2);
		assert_true(strlen(ix.bodystructure) > 2);
		assert_true(ix.header_size <= len);
		/* The cached BODYSTRUCTURE is the parser's, byte for byte. */
		bs_path = i_strdup_printf("%s.bs", path);
		bs = read_file(bs_path, &bs_len);
		i_free(bs_path);
		if (bs != NULL) {
			while (bs_len > 0 && (bs[bs_len - 1] == '\n' ||
					      bs[bs_len - 1] == '\r'))
				bs[--bs_len] = '\0';
			if (strcmp(ix.bodystructure, bs) != 0)
				fail_msg("%s: BODYSTRUCTURE %s, expected %s",
					 d->d_name, ix.bodystructure, bs);
			i_free(bs);
		}
		/* Fed again with every byte a truncation point of the
		   first 2 KiB: never a crash. */
		for (size_t cut = 0; cut < len && cut < 2048; cut += 7) {
			message_index_build(test_pool, data, cut, &ix);
			check_valid(&ix);
		}
		pool_clear(test_pool);
		i_free(data);
		i_free(path);
		count++;
	}
	closedir(dir);
	i_free(dir_path);
	assert_true(count >= 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alternative_once),
		cmocka_unit_test(test_mixed_plain_and_html),
		cmocka_unit_test(test_base64_utf8),
		cmocka_unit_test(test_qp_latin1),
		cmocka_unit_test(test_html_only),
		cmocka_unit_test(test_rfc2047_headers),
		cmocka_unit_test(test_attachments),
		cmocka_unit_test(test_embedded_message),
		cmocka_unit_test(test_threading),
		cmocka_unit_test(test_many_references),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_base_subject),
		cmocka_unit_test(test_sort_keys),
		cmocka_unit_test(test_preview),
		cmocka_unit_test(test_huge_body),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_unknown_encoding_and_charset),
		cmocka_unit_test(test_corpus),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
