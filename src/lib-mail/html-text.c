/* html-text.c - HTML to plain text for indexing and previews: a
   byte-at-a-time tokenizer (states after the HTML5 tokenizer, much
   simplified) that drops markup, raw-text elements and comments, turns
   block elements into line breaks, decodes character references and
   collapses white space. Owns no memory: all state is the fixed-size
   struct html_text, and output goes to the caller's buf, bounded by
   max_output. Input is untrusted HTML from mail; nothing recurses and
   nothing fails. Called by message-index.c. */

#include "html-text.h"

enum html_state {
	HT_TEXT = 0,
	HT_TAG_OPEN, /* "<" */
	HT_END_TAG_OPEN, /* "</" */
	HT_TAG_NAME,
	HT_ATTRS, /* inside a tag, after its name */
	HT_ATTR_EQ, /* after "=", before the value */
	HT_ATTR_QUOTED,
	HT_ATTR_UNQUOTED,
	HT_MARKUP, /* "<!" */
	HT_MARKUP_DASH, /* "<!-" */
	HT_COMMENT,
	HT_BOGUS, /* "<!DOCTYPE", "<?xml": skipped up to ">" */
	HT_RAW, /* script/style/title content, up to its end tag */
	HT_RAW_END, /* "</script" seen: needs a delimiter after it */
	HT_REF, /* "&" ... */
};

/* HTML 4.01's 252 named character references and &apos;, sorted by
   strcmp() for bsearch(). */
struct html_entity {
	const char *name;
	uint32_t cp;
};
static const struct html_entity entities[] = {
	{ "AElig", 0xC6 },    { "Aacute", 0xC1 },    { "Acirc", 0xC2 },
	{ "Agrave", 0xC0 },   { "Alpha", 0x391 },    { "Aring", 0xC5 },
	{ "Atilde", 0xC3 },   { "Auml", 0xC4 },      { "Beta", 0x392 },
	{ "Ccedil", 0xC7 },   { "Chi", 0x3A7 },      { "Dagger", 0x2021 },
	{ "Delta", 0x394 },   { "ETH", 0xD0 },       { "Eacute", 0xC9 },
	{ "Ecirc", 0xCA },    { "Egrave", 0xC8 },    { "Epsilon", 0x395 },
	{ "Eta", 0x397 },     { "Euml", 0xCB },      { "Gamma", 0x393 },
	{ "Iacute", 0xCD },   { "Icirc", 0xCE },     { "Igrave", 0xCC },
	{ "Iota", 0x399 },    { "Iuml", 0xCF },      { "Kappa", 0x39A },
	{ "Lambda", 0x39B },  { "Mu", 0x39C },       { "Ntilde", 0xD1 },
	{ "Nu", 0x39D },      { "OElig", 0x152 },    { "Oacute", 0xD3 },
	{ "Ocirc", 0xD4 },    { "Ograve", 0xD2 },    { "Omega", 0x3A9 },
	{ "Omicron", 0x39F }, { "Oslash", 0xD8 },    { "Otilde", 0xD5 },
	{ "Ouml", 0xD6 },     { "Phi", 0x3A6 },      { "Pi", 0x3A0 },
	{ "Prime", 0x2033 },  { "Psi", 0x3A8 },      { "Rho", 0x3A1 },
	{ "Scaron", 0x160 },  { "Sigma", 0x3A3 },    { "THORN", 0xDE },
	{ "Tau", 0x3A4 },     { "Theta", 0x398 },    { "Uacute", 0xDA },
	{ "Ucirc", 0xDB },    { "Ugrave", 0xD9 },    { "Upsilon", 0x3A5 },
	{ "Uuml", 0xDC },     { "Xi", 0x39E },       { "Yacute", 0xDD },
	{ "Yuml", 0x178 },    { "Zeta", 0x396 },     { "aacute", 0xE1 },
	{ "acirc", 0xE2 },    { "acute", 0xB4 },     { "aelig", 0xE6 },
	{ "agrave", 0xE0 },   { "alefsym", 0x2135 }, { "alpha", 0x3B1 },
	{ "amp", 0x26 },      { "and", 0x2227 },     { "ang", 0x2220 },
	{ "apos", 0x27 },     { "aring", 0xE5 },     { "asymp", 0x2248 },
	{ "atilde", 0xE3 },   { "auml", 0xE4 },      { "bdquo", 0x201E },
	{ "beta", 0x3B2 },    { "brvbar", 0xA6 },    { "bull", 0x2022 },
	{ "cap", 0x2229 },    { "ccedil", 0xE7 },    { "cedil", 0xB8 },
	{ "cent", 0xA2 },     { "chi", 0x3C7 },      { "circ", 0x2C6 },
	{ "clubs", 0x2663 },  { "cong", 0x2245 },    { "copy", 0xA9 },
	{ "crarr", 0x21B5 },  { "cup", 0x222A },     { "curren", 0xA4 },
	{ "dArr", 0x21D3 },   { "dagger", 0x2020 },  { "darr", 0x2193 },
	{ "deg", 0xB0 },      { "delta", 0x3B4 },    { "diams", 0x2666 },
	{ "divide", 0xF7 },   { "eacute", 0xE9 },    { "ecirc", 0xEA },
	{ "egrave", 0xE8 },   { "empty", 0x2205 },   { "emsp", 0x2003 },
	{ "ensp", 0x2002 },   { "epsilon", 0x3B5 },  { "equiv", 0x2261 },
	{ "eta", 0x3B7 },     { "eth", 0xF0 },       { "euml", 0xEB },
	{ "euro", 0x20AC },   { "exist", 0x2203 },   { "fnof", 0x192 },
	{ "forall", 0x2200 }, { "frac12", 0xBD },    { "frac14", 0xBC },
	{ "frac34", 0xBE },   { "frasl", 0x2044 },   { "gamma", 0x3B3 },
	{ "ge", 0x2265 },     { "gt", 0x3E },        { "hArr", 0x21D4 },
	{ "harr", 0x2194 },   { "hearts", 0x2665 },  { "hellip", 0x2026 },
	{ "iacute", 0xED },   { "icirc", 0xEE },     { "iexcl", 0xA1 },
	{ "igrave", 0xEC },   { "image", 0x2111 },   { "infin", 0x221E },
	{ "int", 0x222B },    { "iota", 0x3B9 },     { "iquest", 0xBF },
	{ "isin", 0x2208 },   { "iuml", 0xEF },      { "kappa", 0x3BA },
	{ "lArr", 0x21D0 },   { "lambda", 0x3BB },   { "lang", 0x2329 },
	{ "laquo", 0xAB },    { "larr", 0x2190 },    { "lceil", 0x2308 },
	{ "ldquo", 0x201C },  { "le", 0x2264 },      { "lfloor", 0x230A },
	{ "lowast", 0x2217 }, { "loz", 0x25CA },     { "lrm", 0x200E },
	{ "lsaquo", 0x2039 }, { "lsquo", 0x2018 },   { "lt", 0x3C },
	{ "macr", 0xAF },     { "mdash", 0x2014 },   { "micro", 0xB5 },
	{ "middot", 0xB7 },   { "minus", 0x2212 },   { "mu", 0x3BC },
	{ "nabla", 0x2207 },  { "nbsp", 0xA0 },      { "ndash", 0x2013 },
	{ "ne", 0x2260 },     { "ni", 0x220B },      { "not", 0xAC },
	{ "notin", 0x2209 },  { "nsub", 0x2284 },    { "ntilde", 0xF1 },
	{ "nu", 0x3BD },      { "oacute", 0xF3 },    { "ocirc", 0xF4 },
	{ "oelig", 0x153 },   { "ograve", 0xF2 },    { "oline", 0x203E },
	{ "omega", 0x3C9 },   { "omicron", 0x3BF },  { "oplus", 0x2295 },
	{ "or", 0x2228 },     { "ordf", 0xAA },      { "ordm", 0xBA },
	{ "oslash", 0xF8 },   { "otilde", 0xF5 },    { "otimes", 0x2297 },
	{ "ouml", 0xF6 },     { "para", 0xB6 },      { "part", 0x2202 },
	{ "permil", 0x2030 }, { "perp", 0x22A5 },    { "phi", 0x3C6 },
	{ "pi", 0x3C0 },      { "piv", 0x3D6 },      { "plusmn", 0xB1 },
	{ "pound", 0xA3 },    { "prime", 0x2032 },   { "prod", 0x220F },
	{ "prop", 0x221D },   { "psi", 0x3C8 },      { "quot", 0x22 },
	{ "rArr", 0x21D2 },   { "radic", 0x221A },   { "rang", 0x232A },
	{ "raquo", 0xBB },    { "rarr", 0x2192 },    { "rceil", 0x2309 },
	{ "rdquo", 0x201D },  { "real", 0x211C },    { "reg", 0xAE },
	{ "rfloor", 0x230B }, { "rho", 0x3C1 },      { "rlm", 0x200F },
	{ "rsaquo", 0x203A }, { "rsquo", 0x2019 },   { "sbquo", 0x201A },
	{ "scaron", 0x161 },  { "sdot", 0x22C5 },    { "sect", 0xA7 },
	{ "shy", 0xAD },      { "sigma", 0x3C3 },    { "sigmaf", 0x3C2 },
	{ "sim", 0x223C },    { "spades", 0x2660 },  { "sub", 0x2282 },
	{ "sube", 0x2286 },   { "sum", 0x2211 },     { "sup", 0x2283 },
	{ "sup1", 0xB9 },     { "sup2", 0xB2 },      { "sup3", 0xB3 },
	{ "supe", 0x2287 },   { "szlig", 0xDF },     { "tau", 0x3C4 },
	{ "there4", 0x2234 }, { "theta", 0x3B8 },    { "thetasym", 0x3D1 },
	{ "thinsp", 0x2009 }, { "thorn", 0xFE },     { "tilde", 0x2DC },
	{ "times", 0xD7 },    { "trade", 0x2122 },   { "uArr", 0x21D1 },
	{ "uacute", 0xFA },   { "uarr", 0x2191 },    { "ucirc", 0xFB },
	{ "ugrave", 0xF9 },   { "uml", 0xA8 },       { "upsih", 0x3D2 },
	{ "upsilon", 0x3C5 }, { "uuml", 0xFC },      { "weierp", 0x2118 },
	{ "xi", 0x3BE },      { "yacute", 0xFD },    { "yen", 0xA5 },
	{ "yuml", 0xFF },     { "zeta", 0x3B6 },     { "zwj", 0x200D },
	{ "zwnj", 0x200C },
};

/* HTML5 13.2.5.80: numeric references to 0x80-0x9F mean windows-1252
   (0 = the code point itself). */
static const uint16_t cp1252[32] = {
	0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017D, 0,
	0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,
};

enum html_element_kind {
	HT_EL_BLOCK, /* a line break before and after */
	HT_EL_PARAGRAPH, /* an empty line before and after */
	HT_EL_BREAK, /* <br>: one more line break */
	HT_EL_CELL, /* a space */
	HT_EL_RAW, /* content skipped up to the end tag */
	HT_EL_HEAD,
	HT_EL_BODY,
};

static const struct {
	const char *name;
	enum html_element_kind kind;
} elements[] = {
	{ "address", HT_EL_BLOCK },  { "article", HT_EL_BLOCK },
	{ "aside", HT_EL_BLOCK },    { "blockquote", HT_EL_BLOCK },
	{ "body", HT_EL_BODY },      { "br", HT_EL_BREAK },
	{ "caption", HT_EL_BLOCK },  { "center", HT_EL_BLOCK },
	{ "dd", HT_EL_BLOCK },       { "div", HT_EL_BLOCK },
	{ "dl", HT_EL_BLOCK },       { "dt", HT_EL_BLOCK },
	{ "fieldset", HT_EL_BLOCK }, { "figcaption", HT_EL_BLOCK },
	{ "figure", HT_EL_BLOCK },   { "footer", HT_EL_BLOCK },
	{ "form", HT_EL_BLOCK },     { "h1", HT_EL_PARAGRAPH },
	{ "h2", HT_EL_PARAGRAPH },   { "h3", HT_EL_PARAGRAPH },
	{ "h4", HT_EL_PARAGRAPH },   { "h5", HT_EL_PARAGRAPH },
	{ "h6", HT_EL_PARAGRAPH },   { "head", HT_EL_HEAD },
	{ "header", HT_EL_BLOCK },   { "hr", HT_EL_BLOCK },
	{ "li", HT_EL_BLOCK },       { "main", HT_EL_BLOCK },
	{ "nav", HT_EL_BLOCK },      { "noscript", HT_EL_RAW },
	{ "ol", HT_EL_BLOCK },       { "p", HT_EL_PARAGRAPH },
	{ "pre", HT_EL_BLOCK },      { "script", HT_EL_RAW },
	{ "section", HT_EL_BLOCK },  { "style", HT_EL_RAW },
	{ "table", HT_EL_BLOCK },    { "td", HT_EL_CELL },
	{ "template", HT_EL_RAW },   { "textarea", HT_EL_BLOCK },
	{ "th", HT_EL_CELL },        { "title", HT_EL_RAW },
	{ "tr", HT_EL_BLOCK },       { "ul", HT_EL_BLOCK },
};

void html_text_init(struct html_text *ht_r, size_t max_output)
{
	memset(ht_r, 0, sizeof(*ht_r));
	ht_r->max_output = max_output == 0 ? SIZE_MAX : max_output;
}

static bool is_space(uint8_t c)
{
	/* HTML5 ASCII white space. */
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static bool is_alpha(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(uint8_t c)
{
	return is_alpha(c) || (c >= '0' && c <= '9');
}

static uint8_t to_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

static void raw_append(struct html_text *ht, struct buf *dest, uint8_t c,
		       unsigned int count)
{
	while (count-- > 0) {
		buf_append_c(dest, c);
		ht->output++;
	}
}

/* One byte of text. The bound is checked at the first byte of each
   UTF-8 sequence, for the whole sequence plus the pending white space,
   so that a cut never splits a character. */
static void text_byte(struct html_text *ht, struct buf *dest, uint8_t c)
{
	unsigned int need, pend;

	if (ht->full || c == '\0')
		return;
	if (ht->in_head) {
		ht->utf8_left = 0;
		return;
	}
	if (ht->utf8_left > 0 && (c & 0xc0) == 0x80) {
		ht->utf8_left--;
		raw_append(ht, dest, c, 1);
		return;
	}
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
	pend = !ht->started               ? 0
	       : ht->pending_newlines > 0 ? ht->pending_newlines
	       : ht->pending_space        ? 1
					  : 0;
	if (need + pend > ht->max_output - ht->output) {
		ht->full = true;
		return;
	}
	if (ht->pending_newlines > 0 && ht->started)
		raw_append(ht, dest, '\n', ht->pending_newlines);
	else if (ht->pending_space && ht->started)
		raw_append(ht, dest, ' ', 1);
	ht->pending_newlines = 0;
	ht->pending_space = false;
	ht->started = true;
	ht->utf8_left = need - 1;
	raw_append(ht, dest, c, 1);
}

static void text_space(struct html_text *ht)
{
	ht->pending_space = true;
}

static void text_break(struct html_text *ht, unsigned int min, bool add)
{
	unsigned int n = add ? ht->pending_newlines + 1 : min;

	if (n > 2)
		n = 2;
	if (n > ht->pending_newlines)
		ht->pending_newlines = n;
}

static void text_cp(struct html_text *ht, struct buf *dest, uint32_t cp)
{
	uint8_t u[4];
	unsigned int n;

	if (cp >= 0x80 && cp <= 0x9f && cp1252[cp - 0x80] != 0)
		cp = cp1252[cp - 0x80];
	/* HTML5 13.2.5.80: NUL, surrogates and values past Unicode are
	   invalid references and become U+FFFD. */
	if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		cp = 0xfffd;
	if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' ||
	    cp == 0xa0 || cp == 0x2002 || cp == 0x2003 || cp == 0x2009) {
		text_space(ht);
		return;
	}
	if (cp < 0x80) {
		u[0] = (uint8_t)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (uint8_t)(0xc0 | cp >> 6);
		u[1] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (uint8_t)(0xe0 | cp >> 12);
		u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (uint8_t)(0xf0 | cp >> 18);
		u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 4;
	}
	for (unsigned int i = 0; i < n; i++)
		text_byte(ht, dest, u[i]);
}

static int entity_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct html_entity *)elem)->name);
}

static void ref_literal(struct html_text *ht, struct buf *dest, bool semicolon)
{
	text_byte(ht, dest, '&');
	for (unsigned int i = 0; i < ht->ref_len; i++)
		text_byte(ht, dest, (uint8_t)ht->ref[i]);
	if (semicolon)
		text_byte(ht, dest, ';');
}

/* Resolves the reference collected in ht->ref ("#123", "#x1F", "amp"). */
static void ref_resolve(struct html_text *ht, struct buf *dest, bool semicolon)
{
	const struct html_entity *ent;
	unsigned int i = 1, base = 10;
	uint32_t cp = 0;

	ht->ref[ht->ref_len] = '\0';
	if (ht->ref_len > 0 && ht->ref[0] == '#') {
		if (i < ht->ref_len &&
		    (ht->ref[i] == 'x' || ht->ref[i] == 'X')) {
			base = 16;
			i++;
		}
		if (i == ht->ref_len) {
			ref_literal(ht, dest, semicolon);
			return;
		}
		for (; i < ht->ref_len; i++) {
			uint8_t c = to_lower((uint8_t)ht->ref[i]);
			uint32_t d = c <= '9' ? (uint32_t)(c - '0')
					      : (uint32_t)(c - 'a' + 10);

			/* Saturate: anything past U+10FFFF is invalid. */
			if (cp <= 0x10ffff)
				cp = cp * base + d;
		}
		/* HTML5 13.2.5.80: the ";" may be missing. */
		text_cp(ht, dest, cp);
		return;
	}
	ent = ht->ref_len == 0
		      ? NULL
		      : bsearch(ht->ref, entities, N_ELEMENTS(entities),
				sizeof(entities[0]), entity_cmp);
	if (ent == NULL) {
		ref_literal(ht, dest, semicolon);
		return;
	}
	/* Leniently, a known name without ";" counts as HTML5 does for
	   the legacy ones (&amp &lt &copy ...). */
	text_cp(ht, dest, ent->cp);
}

/* Returns false when c ends the reference without belonging to it. */
static bool ref_byte(struct html_text *ht, struct buf *dest, uint8_t c)
{
	bool numeric = ht->ref_len > 0 && ht->ref[0] == '#';
	bool ok;

	if (c == ';') {
		ref_resolve(ht, dest, true);
		return true;
	}
	if (ht->ref_len == 0)
		ok = c == '#' || is_alnum(c);
	else if (!numeric)
		ok = is_alnum(c);
	else if (ht->ref_len == 1 && (c == 'x' || c == 'X'))
		ok = true;
	else if (ht->ref_len >= 2 && (ht->ref[1] == 'x' || ht->ref[1] == 'X'))
		ok = (c >= '0' && c <= '9') ||
		     (to_lower(c) >= 'a' && to_lower(c) <= 'f');
	else
		ok = c >= '0' && c <= '9';
	if (ok && ht->ref_len < HTML_TEXT_REF_MAX) {
		ht->ref[ht->ref_len++] = (char)c;
		return true;
	}
	if (ok) {
		/* Too long to be a reference: it is text. */
		ref_literal(ht, dest, false);
		ht->ref_len = 0;
		ht->state = HT_TEXT;
		return false;
	}
	ref_resolve(ht, dest, false);
	return false;
}

static void tag_end(struct html_text *ht)
{
	enum html_element_kind kind = HT_EL_BLOCK;
	bool found = false;

	ht->state = HT_TEXT;
	ht->name[ht->name_len] = '\0';
	if (ht->name_long)
		return;
	for (size_t i = 0; i < N_ELEMENTS(elements); i++) {
		if (strcmp(ht->name, elements[i].name) == 0) {
			kind = elements[i].kind;
			found = true;
			break;
		}
	}
	if (!found)
		return;
	switch (kind) {
	case HT_EL_BLOCK:
	case HT_EL_PARAGRAPH:
		/* A block in the body means the head is over even when
		   its end tag is missing. */
		ht->in_head = false;
		text_break(ht, kind == HT_EL_PARAGRAPH ? 2 : 1, false);
		break;
	case HT_EL_BREAK:
		text_break(ht, 1, true);
		break;
	case HT_EL_CELL:
		text_space(ht);
		break;
	case HT_EL_RAW:
		if (!ht->end_tag) {
			memcpy(ht->raw_end, ht->name, ht->name_len + 1);
			ht->raw_match = 0;
			ht->state = HT_RAW;
		}
		break;
	case HT_EL_HEAD:
		ht->in_head = !ht->end_tag;
		break;
	case HT_EL_BODY:
		ht->in_head = false;
		break;
	}
}

static void name_start(struct html_text *ht, uint8_t c, bool end_tag)
{
	ht->end_tag = end_tag;
	ht->name_len = 0;
	ht->name_long = false;
	ht->name[ht->name_len++] = (char)to_lower(c);
	ht->state = HT_TAG_NAME;
}

/* Returns false when c must be looked at again in the new state. */
static bool html_byte(struct html_text *ht, struct buf *dest, uint8_t c)
{
	size_t raw_len;

	switch ((enum html_state)ht->state) {
	case HT_TEXT:
		if (c == '<')
			ht->state = HT_TAG_OPEN;
		else if (c == '&') {
			ht->ref_len = 0;
			ht->state = HT_REF;
		} else if (is_space(c))
			text_space(ht);
		else
			text_byte(ht, dest, c);
		return true;
	case HT_TAG_OPEN:
		if (c == '!')
			ht->state = HT_MARKUP;
		else if (c == '/')
			ht->state = HT_END_TAG_OPEN;
		else if (c == '?')
			ht->state = HT_BOGUS;
		else if (is_alpha(c))
			name_start(ht, c, false);
		else {
			/* HTML5: "<" not starting a tag is text. */
			text_byte(ht, dest, '<');
			ht->state = HT_TEXT;
			return false;
		}
		return true;
	case HT_END_TAG_OPEN:
		if (is_alpha(c))
			name_start(ht, c, true);
		else
			ht->state = c == '>' ? HT_TEXT : HT_BOGUS;
		return true;
	case HT_TAG_NAME:
		if (c == '>')
			tag_end(ht);
		else if (is_space(c) || c == '/')
			ht->state = HT_ATTRS;
		else if (ht->name_len < HTML_TEXT_NAME_MAX)
			ht->name[ht->name_len++] = (char)to_lower(c);
		else
			ht->name_long = true;
		return true;
	case HT_ATTRS:
		if (c == '>')
			tag_end(ht);
		else if (c == '=')
			ht->state = HT_ATTR_EQ;
		return true;
	case HT_ATTR_EQ:
		if (c == '>')
			tag_end(ht);
		else if (c == '"' || c == '\'') {
			ht->quote = c;
			ht->state = HT_ATTR_QUOTED;
		} else if (!is_space(c))
			ht->state = HT_ATTR_UNQUOTED;
		return true;
	case HT_ATTR_QUOTED:
		/* A quoted value may hold '>'. */
		if (c == ht->quote)
			ht->state = HT_ATTRS;
		return true;
	case HT_ATTR_UNQUOTED:
		if (c == '>')
			tag_end(ht);
		else if (is_space(c))
			ht->state = HT_ATTRS;
		return true;
	case HT_MARKUP:
		ht->state = c == '-'   ? HT_MARKUP_DASH
			    : c == '>' ? HT_TEXT
				       : HT_BOGUS;
		return true;
	case HT_MARKUP_DASH:
		if (c == '-') {
			/* Starting at two makes "<!-->" and "<!--->" empty
			   comments, as in HTML5. */
			ht->dashes = 2;
			ht->state = HT_COMMENT;
		} else {
			ht->state = c == '>' ? HT_TEXT : HT_BOGUS;
		}
		return true;
	case HT_COMMENT:
		if (c == '-') {
			if (ht->dashes < 2)
				ht->dashes++;
		} else if (c == '>' && ht->dashes >= 2) {
			ht->state = HT_TEXT;
		} else {
			ht->dashes = 0;
		}
		return true;
	case HT_BOGUS:
		if (c == '>')
			ht->state = HT_TEXT;
		return true;
	case HT_RAW:
		/* HTML5 raw text: only "</name" ends it. */
		raw_len = strlen(ht->raw_end);
		if ((ht->raw_match == 0 && c == '<') ||
		    (ht->raw_match == 1 && c == '/') ||
		    (ht->raw_match >= 2 &&
		     to_lower(c) == (uint8_t)ht->raw_end[ht->raw_match - 2])) {
			if (++ht->raw_match == raw_len + 2)
				ht->state = HT_RAW_END;
		} else {
			ht->raw_match = c == '<' ? 1 : 0;
		}
		return true;
	case HT_RAW_END:
		if (is_space(c) || c == '/' || c == '>') {
			raw_len = strlen(ht->raw_end);
			memcpy(ht->name, ht->raw_end, raw_len + 1);
			ht->name_len = (unsigned int)raw_len;
			ht->name_long = false;
			ht->end_tag = true;
			ht->state = HT_ATTRS;
			return false;
		}
		ht->raw_match = c == '<' ? 1 : 0;
		ht->state = HT_RAW;
		return true;
	case HT_REF:
		if (ref_byte(ht, dest, c)) {
			if (c == ';')
				ht->state = HT_TEXT;
			return true;
		}
		ht->state = HT_TEXT;
		return false;
	}
	i_unreached();
}

int html_text_feed(struct html_text *ht, struct span input, struct buf *dest)
{
	for (size_t i = 0; i < input.len && !ht->full; i++) {
		if (!html_byte(ht, dest, input.p[i]))
			(void)html_byte(ht, dest, input.p[i]);
	}
	return ht->full ? 1 : 0;
}

int html_text_finish(struct html_text *ht, struct buf *dest)
{
	if (ht->state == HT_REF && !ht->full)
		ref_resolve(ht, dest, false);
	else if (ht->state == HT_TAG_OPEN && !ht->full)
		text_byte(ht, dest, '<');
	/* Anything else unfinished (a tag, a comment, raw text) is
	   dropped, as HTML5 does at the end of the file. */
	ht->state = HT_TEXT;
	return ht->full ? 1 : 0;
}

int html_text_convert(struct span html, size_t max_output, struct buf *dest)
{
	struct html_text ht;

	html_text_init(&ht, max_output);
	(void)html_text_feed(&ht, html, dest);
	return html_text_finish(&ht, dest);
}
