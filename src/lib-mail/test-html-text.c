/* test-html-text.c - unit tests for html-text.c: a table of HTML inputs
   and the text they give (nested and unclosed tags, attributes holding
   '>', script/style/head/comment removal, block elements, character
   references valid and not, white space), each also fed one byte at a
   time; output bounds that never split a UTF-8 sequence. Run under
   ASan+UBSan. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "charset.h"
#include "html-text.h"

static const struct {
	const char *html;
	const char *text;
} cases[] = {
	{ "", "" },
	{ "hello", "hello" },
	{ "\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac" },
	/* Tags, nested and unknown. */
	{ "<b>bold</b> text", "bold text" },
	{ "<div><div><p><b><i>deep</i></b></p></div></div>", "deep" },
	{ "a<span>b</span>c", "abc" },
	{ "<x-custom foo=bar>x</x-custom>", "x" },
	{ "<verylongtagnamethatexceedsthelimit>x</verylongtagnamethatexceedsthelimit>",
	  "x" },
	{ "<p\n class='x'>a</p\n>", "a" },
	{ "</>a", "a" },
	{ "</ x>a", "a" },
	/* Block elements. */
	{ "<p>a</p><p>b</p>", "a\n\nb" },
	{ "<p>a<p>b", "a\n\nb" },
	{ "a<br>b", "a\nb" },
	{ "a<br/>b", "a\nb" },
	{ "a<BR />b", "a\nb" },
	{ "a<br><br><br>b", "a\n\nb" },
	{ "<div>a</div><div>b</div>", "a\nb" },
	{ "<ul><li>x</li><li>y</li></ul>", "x\ny" },
	{ "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>",
	  "a b\nc" },
	{ "<h1>T</h1>body", "T\n\nbody" },
	{ "<H2>T</H2><h6>U</h6>", "T\n\nU" },
	{ "<br><p>lead</p>", "lead" },
	/* White space. */
	{ "  lots   of \n\t space  ", "lots of space" },
	{ "a\r\n\r\nb", "a b" },
	{ "<p> a </p> <p> b </p>", "a\n\nb" },
	/* Dropped content. */
	{ "<script>var a = '<p>x</p>';</script>after", "after" },
	{ "<SCRIPT type=x>if (a</b) {}</script >after", "after" },
	{ "<script>a</scriptx>b</script>c", "c" },
	{ "<script>a<</script>c", "c" },
	{ "<style>p { color: red }</style>text", "text" },
	{ "<style type=\"text/css\">a>b{}</STYLE>text", "text" },
	{ "<head><title>T</title><meta charset=utf-8></head><body>text</body>",
	  "text" },
	{ "<html><head>junk</head>text", "text" },
	{ "<head>junk<p>text", "text" },
	{ "<title>T</title>x", "x" },
	{ "<noscript>n</noscript>y", "y" },
	{ "<!-- comment <b>x</b> -->text", "text" },
	{ "<!---->a", "a" },
	{ "<!-->a", "a" },
	{ "<!--->a", "a" },
	{ "<!-- a -- b -->c", "c" },
	{ "<!-- a --!-->c", "c" },
	{ "<!DOCTYPE html><html>x</html>", "x" },
	{ "<?xml version='1.0'?>x", "x" },
	{ "<![CDATA[x]]>y", "y" },
	{ "<!>x", "x" },
	/* Attributes: quoted values may hold '>'. */
	{ "<a href=\"x>y\">link</a>", "link" },
	{ "<a title='a>b' href=x>link</a>", "link" },
	{ "<a href = \"x>y\" >link</a>", "link" },
	{ "<a title=\"it's\">q</a>", "q" },
	{ "<img alt=a>b>c", "b>c" },
	{ "<a b c=d e='f' g=\"h\">x</a>", "x" },
	/* '<' that starts no tag. */
	{ "a < b", "a < b" },
	{ "a<3", "a<3" },
	{ "1 <= 2", "1 <= 2" },
	/* Unclosed at the end. */
	{ "a <b", "a" },
	{ "a <b class=\"x>y", "a" },
	{ "x<!-- unclosed", "x" },
	{ "x<script>unclosed", "x" },
	{ "x<", "x<" },
	/* Character references. */
	{ "&amp;&lt;&gt;&quot;&apos;", "&<>\"'" },
	{ "caf&eacute;", "caf\xc3\xa9" },
	{ "&Eacute;t&eacute;", "\xc3\x89t\xc3\xa9" },
	{ "&nbsp;a&nbsp;&nbsp;b&nbsp;", "a b" },
	{ "&#65;&#x42;&#X43;&#x64;", "ABCd" },
	{ "&#0;", "\xef\xbf\xbd" },
	{ "&#xD800;", "\xef\xbf\xbd" },
	{ "&#x110000;", "\xef\xbf\xbd" },
	{ "&#99999999999999999999;", "\xef\xbf\xbd" },
	{ "&#128;", "\xe2\x82\xac" },
	{ "&#x92;", "\xe2\x80\x99" },
	{ "&#129;", "\xc2\x81" },
	{ "&#x1F600;", "\xf0\x9f\x98\x80" },
	{ "&amp", "&" },
	{ "a &amp b", "a & b" },
	{ "&ampx", "&ampx" },
	{ "&unknown;", "&unknown;" },
	{ "&AMP;", "&AMP;" },
	{ "& b", "& b" },
	{ "&#;", "&#;" },
	{ "&#x;", "&#x;" },
	{ "&#xZ", "&#xZ" },
	{ "a&", "a&" },
	{ "&#65", "A" },
	{ "&#65x", "Ax" },
	{ "&euro;&mdash;&hellip;", "\xe2\x82\xac\xe2\x80\x94\xe2\x80\xa6" },
	{ "&copy; 2024", "\xc2\xa9 2024" },
	{ "&laquo;q&raquo;", "\xc2\xabq\xc2\xbb" },
	{ "A&#32;&#32;B", "A B" },
	{ "a&#10;b", "a b" },
	{ "&lt;b&gt;not a tag&lt;/b&gt;", "<b>not a tag</b>" },
	{ "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;",
	  "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;" },
	{ "<p title=\"&amp;\">x&amp;y</p>", "x&y" },
	{ "<textarea>t</textarea>", "t" },
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct span in = span_from_cstr(cases[i].html);
		struct buf out = BUF_INIT;
		struct html_text ht;

		assert_int_equal(html_text_convert(in, 0, &out), 0);
		if (strcmp(buf_cstr(&out), cases[i].text) != 0)
			fail_msg("case %zu '%s': got '%s'", i, cases[i].html,
				 buf_cstr(&out));
		assert_true(charset_utf8_is_valid(buf_span(&out)));

		buf_reset(&out);
		html_text_init(&ht, 0);
		for (size_t j = 0; j < in.len; j++)
			assert_int_equal(html_text_feed(&ht,
							span_make(in.p + j, 1),
							&out),
					 0);
		assert_int_equal(html_text_finish(&ht, &out), 0);
		if (strcmp(buf_cstr(&out), cases[i].text) != 0)
			fail_msg("case %zu '%s' bytewise: got '%s'", i,
				 cases[i].html, buf_cstr(&out));
		buf_free(&out);
	}
}

static void test_nul_dropped(void **state)
{
	static const char html[] = "a\0b<p>\0</p>c";
	struct buf out = BUF_INIT;

	(void)state;
	(void)html_text_convert(span_make(html, sizeof(html) - 1), 0, &out);
	assert_string_equal(buf_cstr(&out), "ab\n\nc");
	assert_int_equal(out.used, 5);
	buf_free(&out);
}

static void test_bounded(void **state)
{
	static const struct {
		const char *html;
		size_t max;
		const char *text;
		int ret;
	} bcases[] = {
		{ "hello world", 5, "hello", 1 },
		{ "hello world", 6, "hello", 1 },
		{ "hello world", 11, "hello world", 0 },
		{ "h\xc3\xa9llo", 2, "h", 1 },
		{ "h\xc3\xa9llo", 3, "h\xc3\xa9", 1 },
		{ "a&euro;", 3, "a", 1 },
		{ "a&euro;", 4, "a\xe2\x82\xac", 0 },
		{ "a<p>b", 3, "a", 1 },
		{ "a<p>b", 4, "a\n\nb", 0 },
		{ "\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 7, "\xf0\x9f\x98\x80",
		  1 },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(bcases); i++) {
		struct buf out = BUF_INIT;

		assert_int_equal(
			html_text_convert(span_from_cstr(bcases[i].html),
					  bcases[i].max, &out),
			bcases[i].ret);
		if (strcmp(buf_cstr(&out), bcases[i].text) != 0)
			fail_msg("case %zu: got '%s'", i, buf_cstr(&out));
		buf_free(&out);
	}
}

static void test_big(void **state)
{
	struct buf in = BUF_INIT, out = BUF_INIT;
	size_t max;

	(void)state;
	while (in.used < 1024 * 1024)
		buf_append_str(&in, "<p class=\"x\">\xc3\xbcn\xc3\xaf"
				    "c\xc3\xb6"
				    "d\xc3\xa9 &mdash; &#x1F600;</p>\n");
	for (max = 990; max < 1000; max++) {
		buf_reset(&out);
		assert_int_equal(html_text_convert(buf_span(&in), max, &out),
				 1);
		assert_true(out.used <= max && out.used > max - 8);
		assert_true(charset_utf8_is_valid(buf_span(&out)));
	}
	buf_reset(&out);
	assert_int_equal(html_text_convert(buf_span(&in), 0, &out), 0);
	assert_true(charset_utf8_is_valid(buf_span(&out)));
	assert_null(strchr(buf_cstr(&out), '<'));
	buf_free(&in);
	buf_free(&out);
}

static void test_random_bytes(void **state)
{
	uint8_t data[4096];
	uint32_t x = 12345;

	(void)state;
	/* Markup-heavy noise: must terminate, stay bounded and give valid
	   UTF-8 when the input is ASCII. */
	for (int round = 0; round < 200; round++) {
		static const char alphabet[] = "<>/!-&#;x'\"= ap1sciptyle";
		struct buf out = BUF_INIT;

		for (size_t i = 0; i < sizeof(data); i++) {
			x = x * 1103515245 + 12345;
			data[i] = (uint8_t)
				alphabet[(x >> 16) % (sizeof(alphabet) - 1)];
		}
		(void)html_text_convert(span_make(data, sizeof(data)), 512,
					&out);
		assert_true(out.used <= 512);
		assert_true(charset_utf8_is_valid(buf_span(&out)));
		buf_free(&out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_nul_dropped),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_big),
		cmocka_unit_test(test_random_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
