#ifndef MARMOT_SMTP_COMMAND_H
#define MARMOT_SMTP_COMMAND_H
/* SMTP command syntax (RFC 5321 4.1), I/O-free: splitting a command line
   into verb and arguments, the Reverse-path / Forward-path grammar
   (RFC 5321 4.1.2, with RFC 6531 UTF-8 when the transaction is SMTPUTF8),
   ESMTP parameter lists and xtext (RFC 3461 4). Everything here reads
   spans from the network and never allocates: results are spans into the
   input or fixed-size fields bounded by the RFC 5321 4.5.3.1 limits. */

#include "lib.h"
#include "span.h"

/* RFC 5321 4.5.3.1.1: a local part is at most 64 octets. */
#define SMTP_MAX_LOCAL_PART 64
/* RFC 5321 4.5.3.1.2: a domain is at most 255 octets. */
#define SMTP_MAX_DOMAIN 255
/* RFC 5321 4.5.3.1.3: a path is at most 256 octets with its "<" and ">". */
#define SMTP_MAX_PATH 256
/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets with CRLF;
   4.5.3.1.8 lets extensions raise it (ESMTP parameters, RFC 1869 4.1.2
   adds up to 1000 per parameter set; AUTH responses, RFC 4954 4, 12288).
   This is the default bound for lines the server machine reads. */
#define SMTP_MAX_COMMAND_LINE 512
#define SMTP_MAX_LINE_EXTENDED 16384
/* At most this many ESMTP parameters on one MAIL or RCPT. */
#define SMTP_MAX_PARAMS 16

struct smtp_command {
	struct span verb; /* 1-16 letters, as sent (compare with _ci) */
	struct span args; /* after the first SP, trailing SP stripped */
};

/* Splits a command line (without its CRLF). Returns 0, or -1 with error_r
   (for a 500/501 reply) when the line holds NUL or other control
   characters, or the verb is not 1-16 ASCII letters. Bytes >= 0x80 are let
   through in args: the path parser decides whether UTF-8 is allowed. */
int smtp_command_parse(struct span line, struct smtp_command *cmd_r,
		       const char **error_r);

enum smtp_path_flags {
	/* "<>" is the null reverse-path (MAIL FROM, RFC 5321 4.5.5). */
	SMTP_PATH_ALLOW_NULL = 0x01,
	/* "<Postmaster>" without a domain (RCPT TO, RFC 5321 4.1.1.3). */
	SMTP_PATH_ALLOW_POSTMASTER = 0x02,
	/* RFC 6531 3.3: UTF-8 in local part and domain (MAIL had SMTPUTF8). */
	SMTP_PATH_ALLOW_UTF8 = 0x04,
	/* A source route "@a,@b:" is parsed and dropped (RFC 5321 4.1.1.3:
	   SHOULD be ignored). Without this flag it is refused: on RCPT a
	   route names another host to relay to, which we never do. */
	SMTP_PATH_ALLOW_ROUTE = 0x08,
};

struct smtp_path {
	/* Bytes of input the path took, from "<" through ">" (the rest of
	   the argument, e.g. ESMTP parameters, follows). */
	size_t length;
	bool null_path; /* "<>" */
	bool postmaster; /* "<Postmaster>" */
	bool had_route; /* a source route was present (and dropped) */
	bool quoted; /* the local part was a Quoted-string */
	bool domain_literal; /* the domain is an address literal "[...]" */
	bool utf8; /* the path contains UTF-8 (RFC 6531) */
	/* The local part with quoting removed (RFC 5321 4.1.2: the quotes
	   are not part of the mailbox name). */
	char local[SMTP_MAX_LOCAL_PART + 1];
	/* The domain as sent, or an address literal with its brackets. */
	char domain[SMTP_MAX_DOMAIN + 1];
	/* local@domain in canonical form: the local part unquoted when it is
	   a valid Dot-string, else re-quoted with the minimum of
	   backslashes; "" for the null path, "Postmaster" for <Postmaster>. */
	char address[SMTP_MAX_PATH * 2 + 4];
};

/* Parses a Reverse-path or Forward-path at the start of in (RFC 5321
   4.1.2). Returns 0 and fills *out (out->length tells where the path
   ended), or -1 with error_r (suitable for the text of a 501/553 reply). */
int smtp_parse_path(struct span in, enum smtp_path_flags flags,
		    struct smtp_path *out, const char **error_r);

/* Checks that s is a Domain (RFC 5321 4.1.2 sub-domain *("." sub-domain),
   U-labels allowed with utf8, at most 255 octets). */
bool smtp_domain_is_valid(struct span s, bool utf8);

/* Well-formed UTF-8 (RFC 3629 4: no overlongs, no surrogates, <= U+10FFFF). */
bool smtp_utf8_is_valid(struct span s);

struct smtp_param {
	struct span keyword; /* esmtp-keyword; compare with span_eq_ci */
	struct span value; /* esmtp-value; empty when !has_value */
	bool has_value;
};

/* Parses "esmtp-param *(SP esmtp-param)" (RFC 5321 4.1.2; RFC 6531 3.3
   lets values hold UTF-8 when utf8 is set). More than one SP between
   parameters is tolerated. Returns 0 with up to max parameters, or -1
   with error_r (syntax, duplicate keyword, more than max). */
int smtp_parse_params(struct span in, bool utf8, struct smtp_param *params,
		      unsigned int max, unsigned int *count_r,
		      const char **error_r);

/* Decodes xtext (RFC 3461 4: xchar or "+" two upper-case hex digits) into
   out (NUL-terminated, at most out_size - 1 bytes). Returns 0, or -1 when
   the input is not xtext, decodes to a control character or NUL, or does
   not fit. */
int smtp_xtext_decode(struct span in, char *out, size_t out_size);

/* Encodes bytes as xtext (RFC 3461 4) into out, NUL-terminated. Returns 0,
   or -1 when it does not fit. */
int smtp_xtext_encode(struct span in, char *out, size_t out_size);

#endif
