/* spf-macro.c - the SPF record grammar (RFC 7208 4.5, 4.6, 5, 6) and the
   macro language (RFC 7208 7): syntax checks of a whole record before
   anything is evaluated (4.6: "any syntax errors anywhere in the record
   MUST be detected"), and the expansion with transformers, delimiters and
   URL escaping. No DNS here; spf.c supplies the %{p} value. */

#include "spf-private.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <strings.h>
#include <sys/socket.h>

/* A bound on an expansion (macro values come from the SMTP client). */
#define SPF_EXPAND_MAX 8192
/* RFC 7208 7.1: implementations MUST support at least 127 parts. */
#define SPF_PARTS_MAX 128

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
	return is_alpha(c) || is_digit(c);
}

/* RFC 7208 7.1: delimiter = "." / "-" / "+" / "," / "/" / "_" / "=" */
static bool is_delimiter(char c)
{
	return strchr(".-+,/_=", c) != NULL && c != '\0';
}

/* RFC 7208 7.1: macro-letter = "s" / "l" / "o" / "d" / "i" / "p" / "h" /
   "c" / "r" / "t" / "v"; c, r and t only in exp text (7.3). */
static bool is_macro_letter(char c, bool exp)
{
	c = (char)tolower((unsigned char)c);
	if (strchr("slodipvh", c) != NULL && c != '\0')
		return true;
	return exp && (c == 'c' || c == 'r' || c == 't');
}

/* One token of a macro-string. */
struct macro_token {
	/* 0: literal octet; 'x': a %{...} macro-expand; '%', '_', '-':
	   the escapes %%, %_ and %- */
	char kind;
	char letter; /* as written (upper case: URL-escape) */
	unsigned int digits; /* 0: all parts */
	bool reverse;
	char delims[8];
	size_t len; /* octets of the token in the string */
};

/* Reads the token at str[0..len). False on a syntax error. */
static bool macro_token(const char *str, size_t len, bool exp,
			struct macro_token *tok)
{
	size_t pos;

	memset(tok, 0, sizeof(*tok));
	if (str[0] != '%') {
		/* RFC 7208 7.1: macro-literal = %x21-24 / %x26-7E; explain-
		   string also allows SP. */
		unsigned char c = (unsigned char)str[0];

		if (c < 0x21 || c > 0x7e) {
			if (!(exp && c == ' '))
				return false;
		}
		tok->len = 1;
		return true;
	}
	if (len < 2)
		return false;
	if (str[1] == '%' || str[1] == '_' || str[1] == '-') {
		tok->kind = str[1];
		tok->len = 2;
		return true;
	}
	if (str[1] != '{' || len < 4)
		return false;
	/* "%{" macro-letter transformers *delimiter "}" */
	tok->kind = 'x';
	tok->letter = str[2];
	if (!is_macro_letter(tok->letter, exp))
		return false;
	pos = 3;
	if (pos < len && is_digit(str[pos])) {
		unsigned int n = 0;

		while (pos < len && is_digit(str[pos])) {
			if (n < 100000)
				n = n * 10 + (unsigned int)(str[pos] - '0');
			pos++;
		}
		/* RFC 7208 7.1: "If a DIGIT is specified, the value MUST be
		   nonzero." */
		if (n == 0)
			return false;
		tok->digits = n > SPF_PARTS_MAX ? SPF_PARTS_MAX : n;
	}
	if (pos < len && (str[pos] == 'r' || str[pos] == 'R')) {
		tok->reverse = true;
		pos++;
	}
	for (unsigned int n = 0; pos < len && is_delimiter(str[pos]); pos++) {
		if (n + 1 < sizeof(tok->delims) &&
		    strchr(tok->delims, str[pos]) == NULL)
			tok->delims[n++] = str[pos];
	}
	if (pos >= len || str[pos] != '}')
		return false;
	tok->len = pos + 1;
	return true;
}

bool spf_macro_check(const char *str, size_t len, bool exp)
{
	struct macro_token tok;

	for (size_t pos = 0; pos < len; pos += tok.len) {
		if (!macro_token(str + pos, len - pos, exp, &tok))
			return false;
	}
	return true;
}

bool spf_macro_uses_p(const char *str)
{
	struct macro_token tok;
	size_t len = strlen(str);

	for (size_t pos = 0; pos < len; pos += tok.len) {
		if (!macro_token(str + pos, len - pos, true, &tok))
			return false;
		if (tok.kind == 'x' && (tok.letter == 'p' || tok.letter == 'P'))
			return true;
	}
	return false;
}

/* RFC 7208 7.1: toplabel = ( *alphanum ALPHA *alphanum ) /
   ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool toplabel_check(const char *s, size_t len)
{
	bool alpha = false, dash = false;

	if (len == 0 || !is_alnum(s[0]) || !is_alnum(s[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (is_alpha(s[i]))
			alpha = true;
		else if (s[i] == '-')
			dash = true;
		else if (!is_digit(s[i]))
			return false;
	}
	return alpha || dash;
}

bool spf_domain_spec_check(const char *str)
{
	struct macro_token tok;
	size_t len = strlen(str), pos, lit_start = 0;
	bool last_macro = false;

	if (len == 0)
		return false;
	/* RFC 7208 7.1: domain-spec = macro-string domain-end;
	   domain-end = ( "." toplabel [ "." ] ) / macro-expand */
	for (pos = 0; pos < len; pos += tok.len) {
		if (!macro_token(str + pos, len - pos, false, &tok))
			return false;
		if (tok.kind != 0) {
			last_macro = true;
			lit_start = pos + tok.len;
		} else {
			last_macro = false;
		}
	}
	if (last_macro)
		return true;
	/* The literal run at the end. */
	size_t end = len;

	if (str[end - 1] == '.')
		end--;
	if (end == lit_start)
		return lit_start > 0; /* "%{d}." */
	const char *dot = NULL;

	for (size_t i = end; i > lit_start; i--) {
		if (str[i - 1] == '.') {
			dot = str + i - 1;
			break;
		}
	}
	if (dot == NULL)
		return false;
	return toplabel_check(dot + 1, (size_t)(str + end - dot - 1));
}

static void url_escape(struct buf *out, const char *s, size_t len)
{
	/* RFC 7208 7.3: uppercase macros are URL-escaped (RFC 3986 2.3
	   unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"). */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (is_alnum((char)c) || c == '-' || c == '.' || c == '_' ||
		    c == '~')
			buf_append_c(out, c);
		else
			buf_printf(out, "%%%02X", c);
	}
}

static const char *macro_value(const struct spf_macro_vars *vars, char letter)
{
	switch (tolower((unsigned char)letter)) {
	case 's':
		return vars->s;
	case 'l':
		return vars->l;
	case 'o':
		return vars->o;
	case 'd':
		return vars->d;
	case 'i':
		return vars->i;
	case 'p':
		return vars->p;
	case 'v':
		return vars->v;
	case 'h':
		return vars->h;
	case 'c':
		return vars->c;
	case 'r':
		return vars->r;
	case 't':
		return vars->t;
	}
	return NULL;
}

/* RFC 7208 7.3: split on the delimiters (default "."), reverse if asked,
   keep the rightmost digits parts, join with ".". */
static void macro_transform(struct buf *out, const char *value,
			    const struct macro_token *tok)
{
	const char *delims = tok->delims[0] == '\0' ? "." : tok->delims;
	const char *part[SPF_PARTS_MAX * 4];
	size_t part_len[SPF_PARTS_MAX * 4];
	unsigned int n = 0, first, count;
	const char *p = value, *start = value;
	struct buf tmp = BUF_INIT;

	for (;; p++) {
		if (*p == '\0' || strchr(delims, *p) != NULL) {
			if (n < N_ELEMENTS(part)) {
				part[n] = start;
				part_len[n] = (size_t)(p - start);
				n++;
			}
			if (*p == '\0')
				break;
			start = p + 1;
		}
	}
	if (tok->reverse) {
		for (unsigned int i = 0; i < n / 2; i++) {
			const char *t = part[i];
			size_t tl = part_len[i];

			part[i] = part[n - 1 - i];
			part_len[i] = part_len[n - 1 - i];
			part[n - 1 - i] = t;
			part_len[n - 1 - i] = tl;
		}
	}
	count = tok->digits == 0 || tok->digits > n ? n : tok->digits;
	first = n - count;
	for (unsigned int i = first; i < n; i++) {
		if (i > first)
			buf_append_c(&tmp, '.');
		buf_append(&tmp, part[i], part_len[i]);
	}
	if (is_alpha(tok->letter) && tok->letter >= 'A' && tok->letter <= 'Z')
		url_escape(out, buf_cstr(&tmp), tmp.used);
	else
		buf_append(out, tmp.data == NULL ? "" : buf_cstr(&tmp),
			   tmp.used);
	buf_free(&tmp);
}

bool spf_macro_expand(const char *str, size_t len, bool exp,
		      const struct spf_macro_vars *vars, struct buf *out)
{
	struct macro_token tok;
	size_t start = out->used;

	for (size_t pos = 0; pos < len; pos += tok.len) {
		if (!macro_token(str + pos, len - pos, exp, &tok))
			return false;
		switch (tok.kind) {
		case 0:
			buf_append_c(out, (uint8_t)str[pos]);
			break;
		/* RFC 7208 7.1: "%%" is "%", "%_" a space, "%-" "%20" */
		case '%':
			buf_append_c(out, '%');
			break;
		case '_':
			buf_append_c(out, ' ');
			break;
		case '-':
			buf_append_str(out, "%20");
			break;
		default: {
			const char *value = macro_value(vars, tok.letter);

			i_assert(value != NULL);
			macro_transform(out, value, &tok);
			break;
		}
		}
		if (out->used - start > SPF_EXPAND_MAX)
			return false;
	}
	return true;
}

void spf_domain_truncate(struct buf *name)
{
	const char *s = buf_cstr(name);
	size_t len = name->used, skip = 0;

	if (len > 0 && s[len - 1] == '.')
		len--;
	/* RFC 7208 7.3: "If the expanded domain name exceeds 253
	   characters ..., the left side is truncated to fit, by removing
	   successive domain labels (and their following dots) until the
	   total length does not exceed 253 characters." */
	while (len - skip > 253) {
		const char *dot = memchr(s + skip, '.', len - skip);

		if (dot == NULL)
			break;
		skip = (size_t)(dot - s) + 1;
	}
	if (skip > 0) {
		char *copy = i_strndup(s + skip, len - skip);

		buf_reset(name);
		buf_append_str(name, copy);
		i_free(copy);
	} else {
		buf_truncate(name, len);
	}
}

bool spf_is_record(const char *text, size_t len)
{
	/* RFC 7208 4.5: "v=spf1" exactly, then SP or the end. */
	return len >= 6 && strncasecmp(text, "v=spf1", 6) == 0 &&
	       (len == 6 || text[6] == ' ');
}

/* RFC 7208 4.6.1: ip4-network = qnum "." qnum "." qnum "." qnum, no
   leading zeros. */
static bool parse_ip4(const char *s, size_t len, uint8_t out[4])
{
	size_t pos = 0;

	for (unsigned int i = 0; i < 4; i++) {
		unsigned int v = 0, digits = 0;

		if (i > 0) {
			if (pos >= len || s[pos] != '.')
				return false;
			pos++;
		}
		while (pos < len && is_digit(s[pos]) && digits < 4) {
			v = v * 10 + (unsigned int)(s[pos] - '0');
			pos++;
			digits++;
		}
		if (digits == 0 || digits > 3 || v > 255 ||
		    (digits > 1 && s[pos - digits] == '0'))
			return false;
		out[i] = (uint8_t)v;
	}
	return pos == len;
}

static bool parse_ip6(const char *s, size_t len, uint8_t out[16])
{
	char tmp[64];

	if (len == 0 || len >= sizeof(tmp))
		return false;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	return inet_pton(AF_INET6, tmp, out) == 1;
}

/* "/" 1*DIGIT at the end of s[0..*len): a CIDR length without leading
   zeros (RFC 7208 5.6), at most max. Returns 1 found (and shortens *len),
   0 none, -1 invalid. */
static int cidr_suffix(const char *s, size_t *len, unsigned int max,
		       unsigned int *value_r)
{
	size_t end = *len, p = end;
	unsigned int v = 0;

	while (p > 0 && is_digit(s[p - 1]))
		p--;
	if (p == end || p == 0 || s[p - 1] != '/')
		return 0;
	if (end - p > 1 && s[p] == '0')
		return -1;
	if (end - p > 3)
		return -1;
	for (size_t i = p; i < end; i++)
		v = v * 10 + (unsigned int)(s[i] - '0');
	if (v > max)
		return -1;
	*value_r = v;
	*len = p - 1;
	return 1;
}

/* dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ] at the
   end of s[0..*len). */
static bool dual_cidr(const char *s, size_t *len, struct spf_term *term)
{
	size_t l = *len;
	unsigned int v;
	int ret;

	ret = cidr_suffix(s, &l, 128, &v);
	if (ret < 0)
		return false;
	if (ret > 0 && l > 0 && s[l - 1] == '/') {
		term->cidr6 = v;
		l--;
		*len = l;
		ret = cidr_suffix(s, &l, 32, &v);
		if (ret < 0)
			return false;
		if (ret > 0) {
			term->cidr4 = v;
			*len = l;
		}
		return true;
	}
	if (ret > 0) {
		if (v > 32)
			return false;
		term->cidr4 = v;
		*len = l;
	}
	return true;
}

static const char *term_parse(pool_t pool, struct spf_term *term, const char *s,
			      size_t len)
{
	static const struct {
		const char *name;
		enum spf_mech mech;
	} mechs[] = {
		{ "all", SPF_MECH_ALL }, { "include", SPF_MECH_INCLUDE },
		{ "a", SPF_MECH_A },     { "mx", SPF_MECH_MX },
		{ "ptr", SPF_MECH_PTR }, { "ip4", SPF_MECH_IP4 },
		{ "ip6", SPF_MECH_IP6 }, { "exists", SPF_MECH_EXISTS },
	};
	size_t nlen = 0, rest_len;
	const char *rest;
	unsigned int i;

	/* RFC 7208 4.6.2: qualifier = "+" / "-" / "?" / "~" */
	term->qualifier = SPF_PASS;
	switch (s[0]) {
	case '+':
		s++, len--;
		break;
	case '-':
		term->qualifier = SPF_FAIL;
		s++, len--;
		break;
	case '~':
		term->qualifier = SPF_SOFTFAIL;
		s++, len--;
		break;
	case '?':
		term->qualifier = SPF_NEUTRAL;
		s++, len--;
		break;
	}
	term->text = p_strndup(pool, s, len);
	term->cidr4 = 32;
	term->cidr6 = 128;
	while (nlen < len && is_alnum(s[nlen]))
		nlen++;
	for (i = 0; i < N_ELEMENTS(mechs); i++) {
		if (strlen(mechs[i].name) == nlen &&
		    strncasecmp(mechs[i].name, s, nlen) == 0)
			break;
	}
	if (i == N_ELEMENTS(mechs))
		return p_strdup_printf(pool, "unknown mechanism '%s'",
				       term->text);
	term->mech = mechs[i].mech;
	rest = s + nlen;
	rest_len = len - nlen;

	switch (term->mech) {
	case SPF_MECH_ALL:
		/* RFC 7208 5.1: all = "all" */
		if (rest_len != 0)
			return "invalid 'all'";
		return NULL;
	case SPF_MECH_INCLUDE:
	case SPF_MECH_EXISTS:
		/* RFC 7208 5.2, 5.7: ":" domain-spec, required */
		if (rest_len < 2 || rest[0] != ':')
			return p_strdup_printf(pool, "'%s' needs a domain",
					       term->text);
		term->domain_spec = p_strndup(pool, rest + 1, rest_len - 1);
		break;
	case SPF_MECH_PTR:
		/* RFC 7208 5.5: "ptr" [ ":" domain-spec ] */
		if (rest_len == 0)
			return NULL;
		if (rest[0] != ':' || rest_len < 2)
			return p_strdup_printf(pool, "invalid '%s'",
					       term->text);
		term->domain_spec = p_strndup(pool, rest + 1, rest_len - 1);
		break;
	case SPF_MECH_A:
	case SPF_MECH_MX: {
		/* RFC 7208 5.3, 5.4: [ ":" domain-spec ] [ dual-cidr-length ]
		 */
		size_t l = rest_len;

		if (!dual_cidr(rest, &l, term))
			return p_strdup_printf(pool, "invalid CIDR in '%s'",
					       term->text);
		if (l == 0)
			return NULL;
		if (rest[0] != ':' || l < 2)
			return p_strdup_printf(pool, "invalid '%s'",
					       term->text);
		term->domain_spec = p_strndup(pool, rest + 1, l - 1);
		break;
	}
	case SPF_MECH_IP4:
	case SPF_MECH_IP6: {
		/* RFC 7208 5.6: "ip4" ":" ip4-network [ ip4-cidr-length ],
		   "ip6" ":" ip6-network [ ip6-cidr-length ] */
		bool v4 = term->mech == SPF_MECH_IP4;
		size_t l = rest_len;
		unsigned int v;
		int ret;

		if (rest_len < 2 || rest[0] != ':')
			return p_strdup_printf(pool, "'%s' needs a network",
					       term->text);
		ret = cidr_suffix(rest, &l, v4 ? 32 : 128, &v);
		if (ret < 0)
			return p_strdup_printf(pool, "invalid CIDR in '%s'",
					       term->text);
		if (ret > 0) {
			if (v4)
				term->cidr4 = v;
			else
				term->cidr6 = v;
		}
		if (v4 ? !parse_ip4(rest + 1, l - 1, term->net)
		       : !parse_ip6(rest + 1, l - 1, term->net))
			return p_strdup_printf(pool, "invalid network in '%s'",
					       term->text);
		return NULL;
	}
	}
	if (!spf_domain_spec_check(term->domain_spec))
		return p_strdup_printf(pool, "invalid domain-spec in '%s'",
				       term->text);
	return NULL;
}

struct spf_record *spf_record_parse(pool_t pool, const char *text, size_t len,
				    const char **error_r)
{
	struct spf_record *rec = p_new(pool, struct spf_record, 1);
	unsigned int alloc = 0;
	size_t pos;

	i_assert(spf_is_record(text, len));
	/* RFC 7208 3.1: records are 7-bit ASCII; 4.6.1: terms are
	   separated by spaces only - no production admits anything but SP
	   and visible characters. */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c < 0x20 || c > 0x7e) {
			*error_r = c > 0x7e ? "non-ASCII character in record"
					    : "control character in record";
			return NULL;
		}
	}
	for (size_t i = 6; i < len; i++) {
		if (text[i] != ' ' && text[i - 1] == ' ')
			alloc++;
	}
	rec->terms = p_new(pool, struct spf_term, alloc + 1);
	pos = 6;
	while (pos < len) {
		size_t start, tlen, nlen = 0;
		const char *t;

		/* RFC 7208 4.6.1: terms = *( 1*SP ( directive / modifier ) ) */
		while (pos < len && text[pos] == ' ')
			pos++;
		if (pos == len)
			break;
		start = pos;
		while (pos < len && text[pos] != ' ')
			pos++;
		t = text + start;
		tlen = pos - start;

		/* modifier = redirect / explanation / unknown-modifier;
		   name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) "=" */
		if (is_alpha(t[0])) {
			nlen = 1;
			while (nlen < tlen &&
			       (is_alnum(t[nlen]) || t[nlen] == '-' ||
				t[nlen] == '_' || t[nlen] == '.'))
				nlen++;
		}
		if (nlen > 0 && nlen < tlen && t[nlen] == '=') {
			const char *value =
				p_strndup(pool, t + nlen + 1, tlen - nlen - 1);
			const char **slot = NULL;

			if (nlen == 8 && strncasecmp(t, "redirect", 8) == 0)
				slot = &rec->redirect;
			else if (nlen == 3 && strncasecmp(t, "exp", 3) == 0)
				slot = &rec->exp;
			if (slot == NULL) {
				/* unknown-modifier = name "=" macro-string */
				if (!spf_macro_check(value, strlen(value),
						     false)) {
					*error_r = p_strdup_printf(
						pool,
						"invalid macro in modifier '%s'",
						p_strndup(pool, t, tlen));
					return NULL;
				}
				continue;
			}
			/* RFC 7208 6: "These two modifiers MUST NOT appear in
			   a record more than once each." */
			if (*slot != NULL) {
				*error_r = p_strdup_printf(
					pool, "%s= appears twice",
					slot == &rec->exp ? "exp" : "redirect");
				return NULL;
			}
			/* RFC 7208 6.1, 6.2: "=" domain-spec */
			if (!spf_domain_spec_check(value)) {
				*error_r = p_strdup_printf(
					pool, "invalid domain-spec in '%s'",
					p_strndup(pool, t, tlen));
				return NULL;
			}
			*slot = value;
			continue;
		}
		i_assert(rec->count < alloc + 1);
		*error_r = term_parse(pool, &rec->terms[rec->count], t, tlen);
		if (*error_r != NULL)
			return NULL;
		rec->count++;
	}
	return rec;
}
