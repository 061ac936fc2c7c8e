/* smtp-command.c - SMTP command syntax (RFC 5321 4.1.2): command lines,
   paths, ESMTP parameters and xtext. Called by smtp-server.c and by the
   fuzz target; nothing here allocates or does I/O.

   SECURITY: every byte comes from the network. Lengths are checked
   against the RFC 5321 4.5.3.1 limits before anything is copied into the
   fixed-size fields of struct smtp_path, and anything outside the grammar
   is refused rather than repaired: an address we accept must mean exactly
   one mailbox, so that relay checks later see what delivery will see. */

#include "lib.h"
#include "smtp-command.h"

#include <arpa/inet.h>

static bool smtp_is_alpha(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool smtp_is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static bool smtp_is_let_dig(uint8_t c)
{
	return smtp_is_alpha(c) || smtp_is_digit(c);
}

/* RFC 5322 3.2.3 atext, which RFC 5321 4.1.2 Atom uses. */
static bool smtp_is_atext(uint8_t c)
{
	return smtp_is_let_dig(c) ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

bool smtp_utf8_is_valid(struct span s)
{
	size_t i = 0;

	while (i < s.len) {
		uint8_t c = s.p[i];
		unsigned int need, cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return false;
		}
		if (s.len - i <= need)
			return false;
		for (unsigned int k = 1; k <= need; k++) {
			uint8_t cc = s.p[i + k];

			if ((cc & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (cc & 0x3f);
		}
		/* RFC 3629 3: no overlong forms, surrogates or > U+10FFFF. */
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += need + 1;
	}
	return true;
}

int smtp_command_parse(struct span line, struct smtp_command *cmd_r,
		       const char **error_r)
{
	size_t i, verb_len;

	for (i = 0; i < line.len; i++) {
		/* RFC 5321 2.3.8 / 4.1.1: commands are text; NUL and other
		   controls (bare CR, bare LF, DEL) are refused, never
		   interpreted as separators. */
		if (line.p[i] < 0x20 || line.p[i] == 0x7f) {
			*error_r = "control characters in command";
			return -1;
		}
	}
	for (verb_len = 0; verb_len < line.len && line.p[verb_len] != ' ';
	     verb_len++) {
		if (!smtp_is_alpha(line.p[verb_len])) {
			*error_r = "command unrecognized";
			return -1;
		}
	}
	if (verb_len == 0 || verb_len > 16) {
		*error_r = "command unrecognized";
		return -1;
	}
	cmd_r->verb = span_make(line.p, verb_len);
	cmd_r->args = span_skip(line, verb_len + 1);
	while (cmd_r->args.len > 0 && cmd_r->args.p[cmd_r->args.len - 1] == ' ')
		cmd_r->args.len--;
	return 0;
}

/* One label of a Domain (RFC 5321 4.1.2 sub-domain = Let-dig [Ldh-str]),
   or a U-label when utf8 (RFC 6531 3.3 sub-domain =/ U-label; IDNA
   validity is left to the address normaliser that resolves it). */
static bool smtp_label_is_valid(struct span label, bool utf8)
{
	bool has_8bit = false;

	/* RFC 1035 2.3.4: labels are at most 63 octets. */
	if (label.len == 0 || label.len > 63)
		return false;
	for (size_t i = 0; i < label.len; i++) {
		uint8_t c = label.p[i];

		if (c >= 0x80) {
			if (!utf8)
				return false;
			has_8bit = true;
		} else if (!smtp_is_let_dig(c) && c != '-') {
			return false;
		}
	}
	if (has_8bit)
		return smtp_utf8_is_valid(label);
	return label.p[0] != '-' && label.p[label.len - 1] != '-';
}

bool smtp_domain_is_valid(struct span s, bool utf8)
{
	struct span rest = s, label;

	if (s.len == 0 || s.len > SMTP_MAX_DOMAIN)
		return false;
	for (;;) {
		bool more = span_split(rest, '.', &label, &rest);

		/* An empty label also refuses a trailing dot ("local."): the
		   grammar has none, and accepting it would give one domain
		   two spellings for the relay check. */
		if (!smtp_label_is_valid(label, utf8))
			return false;
		if (!more)
			return true;
	}
}

/* RFC 5321 4.1.3 address literals: IPv4, "IPv6:" IPv6; General-address-
   literal tags are refused (none is registered that we could route). */
static bool smtp_address_literal_is_valid(struct span lit)
{
	char text[64];
	uint8_t addr[16];
	struct span inner;
	int af = AF_INET;

	if (lit.len < 3 || lit.len >= sizeof(text) || lit.p[0] != '[' ||
	    lit.p[lit.len - 1] != ']')
		return false;
	inner = span_make(lit.p + 1, lit.len - 2);
	if (span_starts_with_ci(inner, SPAN_LIT("IPv6:"))) {
		af = AF_INET6;
		inner = span_skip(inner, 5);
	}
	for (size_t i = 0; i < inner.len; i++) {
		uint8_t c = inner.p[i];

		if (!(smtp_is_digit(c) || c == '.' ||
		      (af == AF_INET6 &&
		       (c == ':' || hex_digit_value(c) >= 0))))
			return false;
	}
	memcpy(text, inner.p, inner.len);
	text[inner.len] = '\0';
	/* inet_pton's IPv4 form is exactly RFC 5321's Snum "." ... (no
	   octal, no short forms). */
	return inet_pton(af, text, addr) == 1;
}

static bool smtp_dot_string_is_valid(struct span s, bool utf8)
{
	bool dot = true; /* no leading dot */

	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		uint8_t c = s.p[i];

		if (c == '.') {
			if (dot)
				return false; /* ".." */
			dot = true;
			continue;
		}
		dot = false;
		if (c >= 0x80) {
			if (!utf8)
				return false;
		} else if (!smtp_is_atext(c)) {
			return false;
		}
	}
	if (dot)
		return false; /* trailing dot */
	return !utf8 || smtp_utf8_is_valid(s);
}

static void smtp_path_make_address(struct smtp_path *out)
{
	struct span local = span_from_cstr(out->local);
	size_t o = 0;

	if (smtp_dot_string_is_valid(local, true)) {
		memcpy(out->address, local.p, local.len);
		o = local.len;
	} else {
		/* RFC 5321 4.1.2: quote only when the Dot-string form is
		   impossible; backslash only '"' and '\'. */
		out->address[o++] = '"';
		for (size_t i = 0; i < local.len; i++) {
			if (local.p[i] == '"' || local.p[i] == '\\')
				out->address[o++] = '\\';
			out->address[o++] = (char)local.p[i];
		}
		out->address[o++] = '"';
	}
	out->address[o++] = '@';
	/* Fits: local <= 64 doubled + quotes, domain <= 255. */
	memcpy(out->address + o, out->domain, strlen(out->domain) + 1);
}

/* A-d-l = At-domain *( "," At-domain ) ":" (RFC 5321 4.1.2). Returns the
   bytes taken, or 0 on a syntax error. */
static size_t smtp_parse_route(struct span in, bool utf8)
{
	size_t i = 0;

	for (;;) {
		size_t start;

		if (i >= in.len || in.p[i] != '@')
			return 0;
		start = ++i;
		while (i < in.len && in.p[i] != ',' && in.p[i] != ':' &&
		       in.p[i] != '>')
			i++;
		if (!smtp_domain_is_valid(span_make(in.p + start, i - start),
					  utf8))
			return 0;
		if (i >= in.len)
			return 0;
		if (in.p[i] == ':')
			return i + 1;
		if (in.p[i] != ',')
			return 0;
		i++;
	}
}

/* Local-part = Dot-string / Quoted-string (RFC 5321 4.1.2). Fills
   out->local; returns the bytes taken, or 0 with error_r. */
static size_t smtp_parse_local(struct span in, bool utf8, struct smtp_path *out,
			       const char **error_r)
{
	size_t i = 0, o = 0;

	if (in.len > 0 && in.p[0] == '"') {
		out->quoted = true;
		for (i = 1; i < in.len && in.p[i] != '"'; i++) {
			uint8_t c = in.p[i];

			if (c == '\\') {
				/* quoted-pairSMTP = %d92 %d32-126 */
				if (++i >= in.len || in.p[i] < 32 ||
				    in.p[i] > 126) {
					*error_r = "bad quoted-pair in local "
						   "part";
					return 0;
				}
				c = in.p[i];
			} else if (c >= 0x80) {
				/* RFC 6531 3.3: qtextSMTP =/ UTF8-non-ascii */
				if (!utf8) {
					*error_r = "8-bit local part needs "
						   "SMTPUTF8";
					return 0;
				}
			} else if (c < 32 || c > 126) {
				*error_r = "bad character in local part";
				return 0;
			}
			if (o >= SMTP_MAX_LOCAL_PART) {
				*error_r = "local part too long";
				return 0;
			}
			out->local[o++] = (char)c;
		}
		if (i >= in.len) {
			*error_r = "unterminated quoted local part";
			return 0;
		}
		i++;
		if (i > SMTP_MAX_LOCAL_PART) {
			*error_r = "local part too long";
			return 0;
		}
		out->local[o] = '\0';
		if (utf8 && !smtp_utf8_is_valid(span_make(out->local, o))) {
			*error_r = "local part is not UTF-8";
			return 0;
		}
		return i;
	}
	while (i < in.len && in.p[i] != '@' && in.p[i] != '>')
		i++;
	if (i == 0) {
		*error_r = "empty local part";
		return 0;
	}
	if (i > SMTP_MAX_LOCAL_PART) {
		*error_r = "local part too long";
		return 0;
	}
	if (!smtp_dot_string_is_valid(span_make(in.p, i), utf8)) {
		bool eight = false;

		for (size_t k = 0; k < i; k++)
			eight = eight || in.p[k] >= 0x80;
		*error_r = eight && !utf8 ? "8-bit local part needs SMTPUTF8"
					  : "bad local part syntax";
		return 0;
	}
	memcpy(out->local, in.p, i);
	out->local[i] = '\0';
	return i;
}

int smtp_parse_path(struct span in, enum smtp_path_flags flags,
		    struct smtp_path *out, const char **error_r)
{
	bool utf8 = (flags & SMTP_PATH_ALLOW_UTF8) != 0;
	struct span rest, domain;
	size_t n, i;

	memset(out, 0, sizeof(*out));
	/* RFC 5321 4.1.2: Path = "<" [ A-d-l ":" ] Mailbox ">" */
	if (in.len == 0 || in.p[0] != '<') {
		*error_r = "path must be in angle brackets";
		return -1;
	}
	rest = span_skip(in, 1);
	if (rest.len > 0 && rest.p[0] == '>') {
		/* RFC 5321 4.1.1.2: Reverse-path = Path / "<>" */
		if ((flags & SMTP_PATH_ALLOW_NULL) == 0) {
			*error_r = "null path not allowed here";
			return -1;
		}
		out->null_path = true;
		out->length = 2;
		return 0;
	}
	/* RFC 5321 4.1.1.3: "<Postmaster>" (case-insensitive), no domain. */
	if ((flags & SMTP_PATH_ALLOW_POSTMASTER) != 0 &&
	    span_starts_with_ci(rest, SPAN_LIT("Postmaster>"))) {
		out->postmaster = true;
		memcpy(out->local, "Postmaster", 11);
		memcpy(out->address, "Postmaster", 11);
		out->length = 12;
		return 0;
	}
	if (rest.len > 0 && rest.p[0] == '@') {
		n = smtp_parse_route(rest, utf8);
		if (n == 0) {
			*error_r = "bad source route syntax";
			return -1;
		}
		if ((flags & SMTP_PATH_ALLOW_ROUTE) == 0) {
			/* RFC 5321 4.1.1.3 lets a server refuse to relay along
			   a route; for a recipient that is what we do, so a
			   route can never smuggle a remote next hop. */
			*error_r = "source routes are not accepted";
			return -1;
		}
		/* RFC 5321 4.1.1.3 / Appendix C: ignore the route. */
		out->had_route = true;
		rest = span_skip(rest, n);
	}
	n = smtp_parse_local(rest, utf8, out, error_r);
	if (n == 0)
		return -1;
	rest = span_skip(rest, n);
	if (rest.len == 0 || rest.p[0] != '@') {
		*error_r = "address needs @domain";
		return -1;
	}
	rest = span_skip(rest, 1);
	for (i = 0; i < rest.len && rest.p[i] != '>'; i++)
		;
	if (i >= rest.len) {
		*error_r = "path must end with '>'";
		return -1;
	}
	domain = span_make(rest.p, i);
	if (domain.len > 0 && domain.p[0] == '[') {
		if (!smtp_address_literal_is_valid(domain)) {
			*error_r = "bad address literal";
			return -1;
		}
		out->domain_literal = true;
	} else if (!smtp_domain_is_valid(domain, utf8)) {
		bool eight = false;

		for (size_t k = 0; k < domain.len; k++)
			eight = eight || domain.p[k] >= 0x80;
		*error_r = eight && !utf8 ? "8-bit domain needs SMTPUTF8"
					  : "bad domain syntax";
		return -1;
	}
	out->length = (size_t)(rest.p + i + 1 - in.p);
	if (out->length > SMTP_MAX_PATH) {
		*error_r = "path too long";
		return -1;
	}
	memcpy(out->domain, domain.p, domain.len);
	out->domain[domain.len] = '\0';
	for (size_t k = 0; k < out->length; k++)
		out->utf8 = out->utf8 || in.p[k] >= 0x80;
	smtp_path_make_address(out);
	return 0;
}

static bool smtp_is_value_char(uint8_t c, bool utf8)
{
	/* RFC 5321 4.1.2 esmtp-value = 1*(%d33-60 / %d62-126);
	   RFC 6531 3.3 adds UTF8-non-ascii. */
	if (c >= 0x80)
		return utf8;
	return c >= 33 && c <= 126 && c != '=';
}

int smtp_parse_params(struct span in, bool utf8, struct smtp_param *params,
		      unsigned int max, unsigned int *count_r,
		      const char **error_r)
{
	unsigned int count = 0;
	size_t i = 0;

	*count_r = 0;
	for (;;) {
		struct smtp_param param;
		size_t start;

		while (i < in.len && in.p[i] == ' ')
			i++;
		if (i >= in.len)
			break;
		start = i;
		/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
		if (!smtp_is_let_dig(in.p[i])) {
			*error_r = "bad parameter keyword";
			return -1;
		}
		while (i < in.len &&
		       (smtp_is_let_dig(in.p[i]) || in.p[i] == '-'))
			i++;
		memset(&param, 0, sizeof(param));
		param.keyword = span_make(in.p + start, i - start);
		if (i < in.len && in.p[i] == '=') {
			start = ++i;
			while (i < in.len && smtp_is_value_char(in.p[i], utf8))
				i++;
			if (i == start) {
				*error_r = "empty parameter value";
				return -1;
			}
			param.value = span_make(in.p + start, i - start);
			param.has_value = true;
			if (utf8 && !smtp_utf8_is_valid(param.value)) {
				*error_r = "parameter value is not UTF-8";
				return -1;
			}
		}
		if (i < in.len && in.p[i] != ' ') {
			*error_r = "bad parameter syntax";
			return -1;
		}
		for (unsigned int k = 0; k < count; k++) {
			if (span_eq_ci(params[k].keyword, param.keyword)) {
				*error_r = "duplicate parameter";
				return -1;
			}
		}
		if (count >= max) {
			*error_r = "too many parameters";
			return -1;
		}
		params[count++] = param;
	}
	*count_r = count;
	return 0;
}

int smtp_xtext_decode(struct span in, char *out, size_t out_size)
{
	size_t o = 0;

	for (size_t i = 0; i < in.len; i++) {
		uint8_t c = in.p[i];

		if (c == '+') {
			/* RFC 3461 4: hexchar = "+" 2(%x30-39 / %x41-46) */
			int hi, lo;

			if (in.len - i < 3)
				return -1;
			hi = in.p[i + 1];
			lo = in.p[i + 2];
			if (!((hi >= '0' && hi <= '9') ||
			      (hi >= 'A' && hi <= 'F')) ||
			    !((lo >= '0' && lo <= '9') ||
			      (lo >= 'A' && lo <= 'F')))
				return -1;
			c = (uint8_t)(hex_digit_value((uint8_t)hi) * 16 +
				      hex_digit_value((uint8_t)lo));
			i += 2;
			if (c < 0x20 || c == 0x7f)
				return -1;
		} else if (c < 33 || c > 126 || c == '=') {
			/* xchar = %d33-42 / %d44-60 / %d62-126 */
			return -1;
		}
		if (o + 1 >= out_size)
			return -1;
		out[o++] = (char)c;
	}
	if (out_size == 0)
		return -1;
	out[o] = '\0';
	return 0;
}

int smtp_xtext_encode(struct span in, char *out, size_t out_size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < in.len; i++) {
		uint8_t c = in.p[i];

		if (c >= 33 && c <= 126 && c != '+' && c != '=') {
			if (o + 1 >= out_size)
				return -1;
			out[o++] = (char)c;
		} else {
			if (o + 3 >= out_size)
				return -1;
			out[o++] = '+';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (out_size == 0)
		return -1;
	out[o] = '\0';
	return 0;
}
