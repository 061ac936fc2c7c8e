#ifndef MARMOT_SMTP_REPLY_H
#define MARMOT_SMTP_REPLY_H
/* The SMTP client's reply parser (RFC 5321 4.2), I/O-free: the queue
   runner (front-queue.c) hands it the bytes a server sent and gets back
   whole replies, single- or multi-line, with the RFC 3463 enhanced status
   code of the first line when there is one, and the EHLO keyword list
   (RFC 5321 4.1.1.1) parsed into flags. Everything here is untrusted
   network input: lines and replies are bounded, a reply whose lines do
   not agree on the code is an error, and text is kept printable. */

#include "lib.h"
#include "span.h"

struct pool;

/* RFC 5321 4.5.3.1.5 sets 512 octets per reply line; real servers send
   longer ones, so we accept up to this and refuse beyond. */
#define SMTP_REPLY_MAX_LINE 2048u
#define SMTP_REPLY_MAX_LINES 128u

struct smtp_enhanced_code {
	/* RFC 3463 2: class.subject.detail; class 0 = none given. */
	unsigned int class_, subject, detail;
};

struct smtp_reply {
	unsigned int code; /* 200..599 (RFC 5321 4.2: first digit 2..5) */
	struct smtp_enhanced_code enhanced; /* from the first line */
	/* The text of each line after "NNN-"/"NNN " (enhanced code
	   included), NUL-terminated, control characters replaced by '?'. */
	const char **lines;
	unsigned int line_count;
};

/* Parses one complete reply from the start of input. Returns 1 with
   *reply_r (pool memory) and *consumed_r (bytes of input it took), 0 when
   input holds no complete reply yet (and is not yet too long: read more),
   -1 on a protocol error (*error_r: a reason for the log; the caller
   closes the connection). Lines end with CRLF; a bare LF is accepted as
   a line end as well (Deviation from RFC 5321 2.3.8: a lenient client
   loses nothing, and it only affects what we read). */
int smtp_reply_parse(struct span input, struct pool *pool,
		     struct smtp_reply *reply_r, size_t *consumed_r,
		     const char **error_r);

/* Parses an RFC 3463 status code at the start of text ("5.1.1 ..."), with
   the class required to agree with reply_code's first digit (RFC 2034 4)
   when reply_code != 0. Returns the code's length in text (0 if none). */
size_t smtp_enhanced_code_parse(const char *text, unsigned int reply_code,
				struct smtp_enhanced_code *code_r);

/* The whole reply as one line: "550 5.1.1 first line text; second line"
   (pool memory), for logs, queue state and DSN Diagnostic-Code. */
const char *smtp_reply_one_line(const struct smtp_reply *reply,
				struct pool *pool);

/* Extensions a server announced in its EHLO reply. */
enum smtp_ehlo_flags {
	SMTP_EHLO_PIPELINING = 1u << 0, /* RFC 2920 */
	SMTP_EHLO_SIZE = 1u << 1, /* RFC 1870 */
	SMTP_EHLO_8BITMIME = 1u << 2, /* RFC 6152 */
	SMTP_EHLO_SMTPUTF8 = 1u << 3, /* RFC 6531 */
	SMTP_EHLO_DSN = 1u << 4, /* RFC 3461 */
	SMTP_EHLO_STARTTLS = 1u << 5, /* RFC 3207 */
	SMTP_EHLO_ENHANCEDSTATUSCODES = 1u << 6, /* RFC 2034 */
	SMTP_EHLO_CHUNKING = 1u << 7, /* RFC 3030 */
	SMTP_EHLO_BINARYMIME = 1u << 8, /* RFC 3030 */
	SMTP_EHLO_REQUIRETLS = 1u << 9, /* RFC 8689 */
	SMTP_EHLO_AUTH = 1u << 10, /* RFC 4954 */
	SMTP_EHLO_FUTURERELEASE = 1u << 11, /* RFC 4865 */
};

struct smtp_ehlo {
	unsigned int flags; /* enum smtp_ehlo_flags */
	uint64_t size_max; /* SIZE parameter; 0 = no limit given */
	const char *domain; /* the server's name from the first line */
	const char *auth_mechs; /* AUTH parameters, "" if none */
};

/* Interprets a 250 EHLO reply (RFC 5321 4.1.1.1: first line "domain
   [greeting]", then one "keyword [params]" per line; keywords are
   case-insensitive). Unknown keywords and malformed lines are ignored (an
   extension we do not understand is one we do not use). Returns 0, or -1
   if reply is not a 250. */
int smtp_ehlo_parse(const struct smtp_reply *reply, struct pool *pool,
		    struct smtp_ehlo *ehlo_r);

#endif
