#ifndef MARMOT_HTML_TEXT_H
#define MARMOT_HTML_TEXT_H
/* HTML to plain text, for the search index and message previews. Not a
   sanitizer: what it returns is text, never markup to display (the
   webmail sanitizes HTML with DOMPurify).

   Input is UTF-8 (convert the part's charset first); output is UTF-8 as
   valid as the input. The contents of <script>, <style>, <title>,
   <head> and comments are dropped; so are tags and their attributes
   (quoted attribute values may hold '>'). Block elements (p, div, br, li,
   tr, h1-h6, table, blockquote, ...) become line breaks, table cells a
   space. Character references are decoded: the common named ones,
   decimal and hex (invalid ones become U+FFFD, 0x80-0x9F map through
   windows-1252 as HTML5 says). White space runs collapse to one space,
   line breaks to at most one empty line; &nbsp; counts as white space.
   NUL bytes are dropped. Nothing fails: unclosed tags, comments and
   references at the end of the input are dropped or kept as text.

   Streaming and bounded: a byte-at-a-time tokenizer with a fixed-size
   state (no recursion, no allocation), appending at most max_output
   bytes and never cutting a UTF-8 sequence. Used by message-index.c. */

#include "lib.h"
#include "buf.h"
#include "span.h"

#define HTML_TEXT_NAME_MAX 16
#define HTML_TEXT_REF_MAX 32

/* Private state; fields are not part of the contract. */
struct html_text {
	size_t max_output, output;
	unsigned int state, return_state;
	bool full, started, pending_space, in_head, end_tag;
	unsigned int pending_newlines;
	unsigned int utf8_left; /* continuation bytes of the current char */
	unsigned int dashes; /* comment: "-" run before a ">" */
	char name[HTML_TEXT_NAME_MAX + 1];
	unsigned int name_len;
	bool name_long;
	char raw_end[HTML_TEXT_NAME_MAX + 1]; /* script/style/title */
	unsigned int raw_match;
	char ref[HTML_TEXT_REF_MAX + 1];
	unsigned int ref_len;
	uint8_t quote;
};

void html_text_init(struct html_text *ht_r, size_t max_output);
/* Converts the next chunk of HTML and appends text to dest. Returns 0
   when more input is welcome, 1 when the output was cut at max_output
   (further input is ignored). */
int html_text_feed(struct html_text *ht, struct span input, struct buf *dest);
/* Ends the input (a pending character reference is flushed). Returns 1
   if the output was cut at max_output, else 0. */
int html_text_finish(struct html_text *ht, struct buf *dest);

/* Converts a whole document in one call (max_output 0 = unlimited); same
   return as finish. */
int html_text_convert(struct span html, size_t max_output, struct buf *dest);

#endif
