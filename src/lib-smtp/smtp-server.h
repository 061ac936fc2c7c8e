#ifndef MARMOT_SMTP_SERVER_H
#define MARMOT_SMTP_SERVER_H
/* An I/O-free SMTP server session (RFC 5321) with ESMTP extensions:
   PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8
   (RFC 6531), ENHANCEDSTATUSCODES (RFC 2034), CHUNKING and BINARYMIME
   (RFC 3030), DSN (RFC 3461), STARTTLS (RFC 3207), REQUIRETLS (RFC 8689),
   AUTH (RFC 4954) and FUTURERELEASE (RFC 4865).

   The caller (src/front/front-smtp.c, the tests, the fuzzer) feeds it
   bytes in any split with smtp_server_input() and gets replies through
   the output callback and events through the other callbacks. Steps that
   need an answer from elsewhere (MAIL, RCPT, AUTH, the end of a message)
   pause the input: smtp_server_input() returns how much it consumed, and
   nothing more is read until the caller answers with the matching
   smtp_server_*_reply() - inside the callback or later - and then feeds
   the rest again. Pipelined commands are thus answered strictly in order.

   The session owns the message being received: it ends DATA only at
   <CRLF>.<CRLF>, removes dot-stuffing, counts the size while reading, and
   refuses after the true end a message that held a bare CR or bare LF
   (RFC 5321 2.3.8): no end-of-data variant can end the data early, so no
   second message can be smuggled behind one. */

#include "lib.h"
#include "span.h"
#include "smtp-command.h"

struct smtp_server;

/* Extensions advertised in the EHLO reply; each also gates its MAIL/RCPT
   parameters (a parameter of an extension that is not on gets 555). */
enum smtp_server_ext {
	SMTP_EXT_PIPELINING = 0x0001,
	SMTP_EXT_SIZE = 0x0002,
	SMTP_EXT_8BITMIME = 0x0004,
	SMTP_EXT_SMTPUTF8 = 0x0008,
	SMTP_EXT_ENHANCEDSTATUSCODES = 0x0010,
	SMTP_EXT_CHUNKING = 0x0020,
	SMTP_EXT_BINARYMIME = 0x0040,
	SMTP_EXT_DSN = 0x0080,
	SMTP_EXT_STARTTLS = 0x0100,
	SMTP_EXT_REQUIRETLS = 0x0200,
	SMTP_EXT_AUTH = 0x0400,
	SMTP_EXT_FUTURERELEASE = 0x0800,
};

/* RFC 3461 4.1 NOTIFY bits (the same values as QUEUE_NOTIFY_*). */
#define SMTP_NOTIFY_SUCCESS 1
#define SMTP_NOTIFY_FAILURE 2
#define SMTP_NOTIFY_DELAY 4
#define SMTP_NOTIFY_NEVER 8

enum smtp_body {
	SMTP_BODY_UNSPECIFIED,
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
	SMTP_BODY_BINARYMIME,
};

enum smtp_ret {
	SMTP_RET_UNSPECIFIED,
	SMTP_RET_FULL,
	SMTP_RET_HDRS,
};

/* The MAIL command, parsed and checked against the enabled extensions. */
struct smtp_mail {
	struct smtp_path path;
	uint64_t size; /* SIZE= (RFC 1870), 0 when absent */
	enum smtp_body body; /* BODY= */
	bool smtputf8; /* SMTPUTF8 (RFC 6531 3.4) */
	bool requiretls; /* REQUIRETLS (RFC 8689 4) */
	enum smtp_ret ret; /* RET= (RFC 3461 4.3) */
	char envid[101]; /* ENVID= decoded, "" absent (RFC 3461 4.4: <= 100) */
	/* FUTURERELEASE (RFC 4865 3): HOLDFOR/HOLDUNTIL as absolute Unix
	   time, 0 when neither was given. */
	int64_t hold_until;
};

/* One RCPT command. */
struct smtp_rcpt {
	struct smtp_path path;
	unsigned int notify; /* SMTP_NOTIFY_* bits, 0 when absent */
	/* ORCPT= decoded "addr-type;address", "" when absent (RFC 3461 4.2:
	   at most 500 characters). */
	char orcpt[501];
};

struct smtp_server_settings {
	const char
		*hostname; /* in the greeting-less replies (EHLO, 221, 421) */
	uint64_t max_message_size; /* SIZE, counted while reading; 0 = none */
	unsigned int
		max_recipients; /* per transaction (>= 100 per 4.5.3.1.8) */
	unsigned int max_errors; /* 421 and close after this many errors */
	size_t max_line_length; /* command and AUTH lines, without CRLF */
	/* MAIL needs a successful AUTH first (530 5.7.0), for submission. */
	bool auth_required;
	int64_t future_release_max; /* FUTURERELEASE: longest hold, seconds */
	/* Current Unix time (for HOLDFOR/HOLDUNTIL); NULL means time(). */
	int64_t (*now)(void);
};

struct smtp_server_callbacks {
	/* Bytes to send to the client, in order. Required. */
	void (*output)(void *context, const void *data, size_t len);
	/* EHLO/HELO was accepted (informational). domain is the client's
	   argument, at most 255 bytes. */
	void (*helo)(void *context, const char *domain, bool ehlo);
	/* STARTTLS was accepted and "220" queued: start TLS once it is
	   flushed. smtp_server_input() returns right after the STARTTLS line
	   and discards all later input until smtp_server_tls_started()
	   (RFC 3207 4.2: pipelined plaintext is never executed). */
	void (*starttls)(void *context);
	/* AUTH mechanism [initial-response] (RFC 4954 4), after the checks
	   of state (not in a transaction, not yet authenticated). initial is
	   NULL without an initial response ("=" means empty). Answer with
	   smtp_server_auth_challenge() or smtp_server_auth_reply(). */
	void (*auth)(void *context, const char *mech, const char *initial);
	/* The client's line after a challenge ("*" cancels, RFC 4954 4). */
	void (*auth_response)(void *context, const char *line);
	/* Answer with smtp_server_mail_reply(). */
	void (*mail)(void *context, const struct smtp_mail *mail);
	/* Answer with smtp_server_rcpt_reply(); a 2xx adds the recipient. */
	void (*rcpt)(void *context, const struct smtp_rcpt *rcpt);
	/* DATA or the first BDAT was accepted: the caller may now add a
	   prefix with smtp_server_message_prepend() (Received:). */
	void (*data_begin)(void *context);
	/* A complete, clean message (prefix + unstuffed data). msg stays
	   valid until smtp_server_message_reply() is called. */
	void (*message)(void *context, const uint8_t *msg, size_t len);
	/* The transaction was dropped or finished (RSET, HELO/EHLO, STARTTLS,
	   the reply to a message, a refused message). Optional. */
	void (*reset)(void *context);
	/* The session is over ("221" or "421" queued): close the connection
	   after the output is flushed. Later input is discarded. */
	void (*close)(void *context, const char *reason);
};

/* Creates a session. settings and callbacks must outlive it (hostname is
   copied). Sends nothing: the greeting is the caller's. */
struct smtp_server *smtp_server_create(
	const struct smtp_server_settings *settings,
	const struct smtp_server_callbacks *callbacks, void *context);
void smtp_server_destroy(struct smtp_server **_s);

/* The EHLO keywords to offer from now on (SMTP_EXT_* bits), and the AUTH
   mechanism list ("PLAIN LOGIN ...", offered when SMTP_EXT_AUTH is set). */
void smtp_server_set_extensions(struct smtp_server *s, unsigned int ext);
void smtp_server_set_auth_mechs(struct smtp_server *s, const char *mechs);

/* Processes input. Returns the bytes consumed: all of them, unless the
   session paused for an answer (smtp_server_is_paused()) - then the
   caller keeps the rest and feeds it again after answering. */
size_t smtp_server_input(struct smtp_server *s, const uint8_t *data,
			 size_t len);
/* Waiting for one of the smtp_server_*_reply() calls. */
bool smtp_server_is_paused(const struct smtp_server *s);
/* The session ended (after close was called). */
bool smtp_server_is_closed(const struct smtp_server *s);

/* Answers to the pausing callbacks. text is "X.Y.Z words" (the enhanced
   code first, RFC 2034); it must not contain CR or LF. After the session
   closed (a 421 while the answer was pending) they do nothing. */
void smtp_server_mail_reply(struct smtp_server *s, unsigned int code,
			    const char *text);
void smtp_server_rcpt_reply(struct smtp_server *s, unsigned int code,
			    const char *text);
/* The end of a message: after this the transaction is over either way. */
void smtp_server_message_reply(struct smtp_server *s, unsigned int code,
			       const char *text);
/* "334 challenge" and read one more line for auth_response. */
void smtp_server_auth_challenge(struct smtp_server *s,
				const char *challenge_b64);
/* Ends the AUTH exchange; code 235 marks the session authenticated. */
void smtp_server_auth_reply(struct smtp_server *s, unsigned int code,
			    const char *text);

/* The TLS handshake finished. After STARTTLS the session starts over
   (RFC 3207 4.2) and input is read again; with implicit TLS (call it
   before any input) it only marks the session as TLS. */
void smtp_server_tls_started(struct smtp_server *s);

/* Adds bytes before the message data (only inside data_begin). */
void smtp_server_message_prepend(struct smtp_server *s, const void *data,
				 size_t len);

/* A reply outside any command (the caller's idle timeout or shutdown):
   queues it; a 421 also ends the session (close is called). */
void smtp_server_reply(struct smtp_server *s, unsigned int code,
		       const char *text);

/* Read-only session facts for the caller (Received: header, policy). */
bool smtp_server_is_ehlo(const struct smtp_server *s);
bool smtp_server_is_authenticated(const struct smtp_server *s);
const char *smtp_server_helo_domain(const struct smtp_server *s);
/* The current transaction's MAIL, or NULL outside a transaction. */
const struct smtp_mail *smtp_server_current_mail(const struct smtp_server *s);
/* Accepted recipients in the current transaction. */
unsigned int smtp_server_rcpt_count(const struct smtp_server *s);
/* The transaction used BDAT (not DATA). */
bool smtp_server_is_chunking(const struct smtp_server *s);

#endif
