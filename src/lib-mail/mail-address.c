/* mail-address.c - validation and normalisation of the addresses Marmot
   stores: accounts, aliases and alias targets. Owns no state; results are
   allocated from the caller's pool and errors are static strings. Called by
   the directory (lib-directory), the admin CLI and the SMTP front end when it
   maps RCPT TO to a local recipient. Security stance: the input comes from
   the network and from operators; everything that could route mail
   somewhere else (source routes, '%' and '!' hacks, quoted '@', address
   literals, a trailing root dot) is refused rather than interpreted. */

#include "lib.h"
#include "pool.h"
#include "mail-address.h"

#include <idn2.h>
#include <stdlib.h>

/* RFC 5321 4.5.3.1.1: the local part is at most 64 octets. */
#define MAIL_LOCAL_MAX_LEN 64
/* RFC 5321 4.5.3.1.2: a domain is at most 255 octets on the wire, which
   is 253 characters in dotted text form without a trailing dot. */
#define MAIL_DOMAIN_MAX_LEN 253
/* RFC 5321 4.1.2 / RFC 1035 2.3.4: a label is 1..63 octets. */
#define MAIL_LABEL_MAX_LEN 63
/* Input longer than this is refused before any parsing or IDNA work: an
   IDN may shrink, but never by more than this factor in practice. */
#define MAIL_INPUT_MAX_LEN 1024

static inline char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

static bool is_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-';
}

/* Validates an ASCII domain as LDH labels; returns NULL or a reason. */
static const char *domain_check_ldh(const char *domain, size_t len)
{
	size_t label_start = 0;
	bool label_numeric = true;

	if (len == 0)
		return "empty domain";
	if (len > MAIL_DOMAIN_MAX_LEN)
		return "domain longer than 253 octets";
	/* Deviation from RFC 1034 3.1: a trailing root dot is refused, so
	   "u@example.org." cannot be a second spelling of an address. */
	if (domain[len - 1] == '.')
		return "trailing dot in domain";
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)domain[i] : '.';

		if (c == '.') {
			size_t label_len = i - label_start;

			if (label_len == 0)
				return "empty label in domain";
			if (label_len > MAIL_LABEL_MAX_LEN)
				return "domain label longer than 63 octets";
			/* RFC 5321 4.1.2 Domain: Ldh-str ends in Let-dig;
			   RFC 1123 2.1: labels start with a letter or digit. */
			if (domain[label_start] == '-' || domain[i - 1] == '-')
				return "domain label starts or ends with '-'";
			if (i == len && label_numeric)
				/* RFC 1123 2.1: a top-level label is not
				   all-numeric, so "u@192.0.2.9" is no address
				   literal in disguise. */
				return "numeric top-level domain label";
			label_start = i + 1;
			label_numeric = true;
			continue;
		}
		if (!is_ldh(c))
			return "invalid character in domain";
		if (c < '0' || c > '9')
			label_numeric = false;
	}
	return NULL;
}

static bool str_is_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] >= 0x80)
			return false;
	}
	return true;
}

char *mail_domain_normalize(struct pool *pool, const char *domain,
			    const char **error_r)
{
	const char *reason;
	char *ascii = NULL, *result;
	size_t len;
	int rc;

	if (domain == NULL || domain[0] == '\0') {
		*error_r = "empty domain";
		return NULL;
	}
	len = strnlen(domain, MAIL_INPUT_MAX_LEN + 1);
	if (len > MAIL_INPUT_MAX_LEN) {
		*error_r = "domain longer than 253 octets";
		return NULL;
	}
	/* RFC 5321 4.1.3: address literals are not accepted for stored
	   addresses; Marmot's domains are names. */
	if (domain[0] == '[') {
		*error_r = "address literals are not allowed";
		return NULL;
	}
	if (domain[len - 1] == '.') {
		*error_r = "trailing dot in domain";
		return NULL;
	}
	if (str_is_ascii(domain, len)) {
		reason = domain_check_ldh(domain, len);
		if (reason != NULL) {
			*error_r = reason;
			return NULL;
		}
		result = p_strndup(pool, domain, len);
	} else {
		/* RFC 6531 3.2 / RFC 5891 5: U-labels become A-labels
		   (IDNA2008 with UTS #46 non-transitional mapping). */
		rc = idn2_to_ascii_8z(domain, &ascii,
				      IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
		if (rc != IDN2_OK) {
			*error_r = rc == IDN2_ENCODING_ERROR
					   ? "invalid UTF-8 in domain"
					   : "invalid internationalised domain";
			return NULL;
		}
		/* TR46 mapping may turn ideographic full stops into '.',
		   so the result is checked again as plain LDH. */
		reason = domain_check_ldh(ascii, strlen(ascii));
		if (reason != NULL) {
			idn2_free(ascii);
			*error_r = reason;
			return NULL;
		}
		result = p_strdup(pool, ascii);
		idn2_free(ascii);
	}
	for (char *p = result; *p != '\0'; p++)
		*p = ascii_lower(*p);
	return result;
}

/* RFC 5322 3.2.3 atext, minus '%' and '!': Deviation from RFC 5322 3.2.3,
   because "u%host@relay" and "host!u@relay" are source routes that old
   MTAs still honour; Marmot never stores such a name. */
static bool is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("#$&'*+-/=?^_`{|}~", c) != NULL;
}

/* RFC 6531 3.3 UTF8-non-ascii (RFC 3629 4 UTF8-2/3/4): returns the length
   of the well-formed sequence at s, or 0. C1 controls are refused. */
static size_t utf8_seq_len(const unsigned char *s, size_t left)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;

	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates, beyond U+10FFFF, C1 controls. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ||
	    (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return n;
}

/* Validates the local part as a dot-atom; returns NULL or a reason. */
static const char *local_check(const char *local, size_t len)
{
	if (len == 0)
		return "empty local part";
	if (len > MAIL_LOCAL_MAX_LEN)
		return "local part longer than 64 octets";
	/* RFC 5322 3.2.3: dot-atom-text = 1*atext *("." 1*atext) */
	if (local[0] == '.')
		return "local part starts with '.'";
	if (local[len - 1] == '.')
		return "local part ends with '.'";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)local[i];
		size_t n;

		if (c == '.') {
			if (local[i + 1] == '.')
				return "consecutive dots in local part";
			continue;
		}
		if (c < 0x80) {
			if (c == '"')
				return "quoted local parts are not allowed";
			if (c == '%' || c == '!')
				return "'%' and '!' are not allowed in the "
				       "local part";
			if (!is_atext(c))
				return "invalid character in local part";
			continue;
		}
		n = utf8_seq_len((const unsigned char *)local + i, len - i);
		if (n == 0)
			return "invalid UTF-8 in local part";
		i += n - 1;
	}
	return NULL;
}

char *mail_address_normalize(struct pool *pool, const char *address,
			     char **local_r, char **domain_r,
			     const char **error_r)
{
	const char *at, *reason;
	char *local, *domain;
	size_t len, local_len;

	if (address == NULL || address[0] == '\0') {
		*error_r = "empty address";
		return NULL;
	}
	len = strnlen(address, MAIL_INPUT_MAX_LEN + 1);
	if (len > MAIL_INPUT_MAX_LEN) {
		*error_r = "address too long";
		return NULL;
	}
	if (address[0] == '"') {
		*error_r = "quoted local parts are not allowed";
		return NULL;
	}
	/* RFC 5321 4.1.2: no source routes ("@a,@b:u@c"). */
	if (address[0] == '@' && strchr(address, ':') != NULL) {
		*error_r = "source routes are not allowed";
		return NULL;
	}
	at = strchr(address, '@');
	if (at == NULL) {
		*error_r = "missing '@'";
		return NULL;
	}
	if (strchr(at + 1, '@') != NULL) {
		*error_r = "more than one '@'";
		return NULL;
	}
	local_len = (size_t)(at - address);
	reason = local_check(address, local_len);
	if (reason != NULL) {
		*error_r = reason;
		return NULL;
	}
	domain = mail_domain_normalize(pool, at + 1, error_r);
	if (domain == NULL)
		return NULL;
	local = p_strndup(pool, address, local_len);
	/* RFC 5321 2.4: the receiving host decides about case in the local
	   part; Marmot folds ASCII letters. */
	for (char *p = local; *p != '\0'; p++)
		*p = ascii_lower(*p);
	if (local_r != NULL)
		*local_r = local;
	if (domain_r != NULL)
		*domain_r = domain;
	return p_strdup_printf(pool, "%s@%s", local, domain);
}

bool mail_local_strip_tag(const char *local, size_t *base_len_r)
{
	/* RFC 5233 style sub-addressing with '+' as the separator. */
	const char *sep = strchr(local, '+');

	if (sep == NULL || sep == local)
		return false;
	*base_len_r = (size_t)(sep - local);
	return true;
}
