/* queue-dsn.c - builds RFC 3464 delivery status notifications for the
   queue runner (queue-dsn.h). Pure text assembly into a buf: every value
   that comes from the network (diagnostics, addresses, envid) has already
   been stored on one line by the queue, and is stripped of CR/LF again
   here so no value can add a header or a part. */

#include "lib.h"
#include "queue-dsn.h"
#include "queue.h"
#include "buf.h"

#include <sodium.h>
#include <stdio.h>
#include <time.h>

bool queue_dsn_wanted(const char *sender, unsigned int notify,
		      const char *action)
{
	/* RFC 3461 6.2 / RFC 5321 4.5.5: never a DSN to the null
	   reverse-path (that is how DSN loops are prevented). */
	if (sender == NULL || sender[0] == '\0')
		return false;
	if ((notify & QUEUE_NOTIFY_NEVER) != 0)
		return false;
	if (strcmp(action, "failed") == 0)
		return notify == 0 || (notify & QUEUE_NOTIFY_FAILURE) != 0;
	if (strcmp(action, "delayed") == 0)
		return (notify & QUEUE_NOTIFY_DELAY) != 0;
	if (strcmp(action, "delivered") == 0)
		return (notify & QUEUE_NOTIFY_SUCCESS) != 0;
	return false;
}

const char *queue_dsn_status_of_reply(const char *reply, char *buf,
				      size_t buf_size)
{
	unsigned int cls = 4;

	if (reply[0] >= '2' && reply[0] <= '5')
		cls = (unsigned int)(reply[0] - '0');
	/* "NNN x.y.z ..." */
	if (strlen(reply) > 4 && reply[3] == ' ' && reply[4] == reply[0]) {
		const char *p = reply + 4;
		size_t len = 0;

		while (p[len] != '\0' && p[len] != ' ' && len < 11)
			len++;
		if (len >= 5 && len < buf_size && p[1] == '.') {
			memcpy(buf, p, len);
			buf[len] = '\0';
			return buf;
		}
	}
	snprintf(buf, buf_size, "%u.0.0", cls);
	return buf;
}

/* One header field value: no CR, LF or NUL, bounded. */
static void append_value(struct buf *out, const char *value)
{
	for (size_t i = 0; value[i] != '\0' && i < 2000; i++) {
		char c = value[i];

		buf_append_c(out, c == '\r' || c == '\n' ? ' ' : (uint8_t)c);
	}
}

/* RFC 5322 3.3 date-time. */
static void append_date(struct buf *out, int64_t when)
{
	time_t t = (time_t)when;
	struct tm tm;
	char text[64];

	(void)gmtime_r(&t, &tm);
	strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	buf_append_str(out, text);
}

/* The header section of msg, up to and without the empty line. */
static size_t header_len(const uint8_t *msg, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (msg[i] == '\n' && msg[i + 1] == '\n')
			return i + 1;
		if (msg[i] == '\n' && i + 2 < len && msg[i + 1] == '\r' &&
		    msg[i + 2] == '\n')
			return i + 1;
	}
	return len;
}

/* Appends data with every line ending made CRLF. */
static void append_crlf(struct buf *out, const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			buf_append_c(out, '\r');
		buf_append_c(out, data[i]);
	}
	if (len > 0 && data[len - 1] != '\n')
		buf_append_str(out, "\r\n");
}

void queue_dsn_build(const struct queue_dsn *dsn, int64_t now, struct buf *out)
{
	bool delayed = dsn->rcpt_count > 0 &&
		       strcmp(dsn->rcpts[0].action, "delayed") == 0;
	uint8_t rnd[12];
	char boundary[sizeof(rnd) * 2 + 1], msgid[sizeof(rnd) * 2 + 1];
	size_t hdr_len;

	randombytes_buf(rnd, sizeof(rnd));
	(void)sodium_bin2hex(boundary, sizeof(boundary), rnd, sizeof(rnd));
	randombytes_buf(rnd, sizeof(rnd));
	(void)sodium_bin2hex(msgid, sizeof(msgid), rnd, sizeof(rnd));

	buf_append_str(out, "From: Mail Delivery System <MAILER-DAEMON@");
	append_value(out, dsn->reporting_mta);
	buf_append_str(out, ">\r\nTo: <");
	append_value(out, dsn->sender);
	buf_append_str(out, delayed ? ">\r\nSubject: Delayed Mail (still "
				      "being retried)\r\nDate: "
				    : ">\r\nSubject: Undelivered Mail Returned "
				      "to Sender\r\nDate: ");
	append_date(out, now);
	buf_printf(out, "\r\nMessage-ID: <%s.dsn@", msgid);
	append_value(out, dsn->reporting_mta);
	/* RFC 3834 5: machine-generated, so autoresponders stay quiet. */
	buf_append_str(out, ">\r\nAuto-Submitted: auto-replied\r\n"
			    "MIME-Version: 1.0\r\n");
	/* RFC 3464 2 / RFC 6522 3: multipart/report with
	   report-type=delivery-status. */
	buf_printf(out,
		   "Content-Type: multipart/report; "
		   "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n"
		   "\r\n"
		   "This is a MIME-encapsulated delivery status "
		   "notification.\r\n\r\n",
		   boundary);

	/* The human-readable part. */
	buf_printf(out,
		   "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
		   "Content-Transfer-Encoding: 8bit\r\n\r\n",
		   boundary);
	buf_append_str(out, "This is the mail system at ");
	append_value(out, dsn->reporting_mta);
	buf_append_str(out,
		       delayed ? ".\r\n\r\nYour message has not been "
				 "delivered yet to the following "
				 "recipients; delivery is still being "
				 "attempted, you need not resend it:\r\n\r\n"
			       : ".\r\n\r\nYour message could not be "
				 "delivered to the following "
				 "recipients:\r\n\r\n");
	for (unsigned int i = 0; i < dsn->rcpt_count; i++) {
		const struct queue_dsn_rcpt *r = &dsn->rcpts[i];

		buf_append_str(out, "<");
		append_value(out, r->address);
		buf_append_str(out, ">: ");
		append_value(out, r->action);
		if (r->diagnostic[0] != '\0') {
			buf_append_str(out, ": ");
			append_value(out, r->diagnostic);
		}
		buf_append_str(out, "\r\n");
	}
	buf_append_str(out, "\r\n");

	/* RFC 3464 2.2: per-message fields. */
	buf_printf(out, "--%s\r\nContent-Type: message/delivery-status\r\n\r\n",
		   boundary);
	buf_append_str(out, "Reporting-MTA: dns; ");
	append_value(out, dsn->reporting_mta);
	buf_append_str(out, "\r\n");
	if (dsn->envid != NULL && dsn->envid[0] != '\0') {
		/* RFC 3464 2.2.1: the ENVID as given, xtext-decoded. */
		buf_append_str(out, "Original-Envelope-Id: ");
		append_value(out, dsn->envid);
		buf_append_str(out, "\r\n");
	}
	if (dsn->arrival > 0) {
		buf_append_str(out, "Arrival-Date: ");
		append_date(out, dsn->arrival);
		buf_append_str(out, "\r\n");
	}
	/* RFC 3464 2.3: per-recipient fields, one block each. */
	for (unsigned int i = 0; i < dsn->rcpt_count; i++) {
		const struct queue_dsn_rcpt *r = &dsn->rcpts[i];

		buf_append_str(out, "\r\n");
		if (r->orcpt != NULL && r->orcpt[0] != '\0') {
			/* RFC 3464 2.3.1: "Original-Recipient: address-type
			   ; generic-address" from ORCPT. */
			buf_append_str(out, "Original-Recipient: ");
			append_value(out, r->orcpt);
			buf_append_str(out, "\r\n");
		}
		buf_append_str(out, "Final-Recipient: rfc822; ");
		append_value(out, r->address);
		buf_append_str(out, "\r\nAction: ");
		append_value(out, r->action);
		buf_append_str(out, "\r\nStatus: ");
		append_value(out, r->status);
		buf_append_str(out, "\r\n");
		if (r->remote_mta[0] != '\0') {
			buf_append_str(out, "Remote-MTA: dns; ");
			append_value(out, r->remote_mta);
			buf_append_str(out, "\r\n");
		}
		if (r->diagnostic[0] != '\0') {
			/* RFC 3464 2.3.6: diagnostic-type "smtp". */
			buf_append_str(out, "Diagnostic-Code: smtp; ");
			append_value(out, r->diagnostic);
			buf_append_str(out, "\r\n");
		}
		if (r->last_attempt > 0) {
			buf_append_str(out, "Last-Attempt-Date: ");
			append_date(out, r->last_attempt);
			buf_append_str(out, "\r\n");
		}
	}
	buf_append_str(out, "\r\n");

	/* RFC 3461 4.3: RET=FULL returns the message, else the headers. */
	hdr_len = header_len(dsn->original, dsn->original_len);
	if (dsn->ret_full) {
		buf_printf(out, "--%s\r\nContent-Type: message/rfc822\r\n\r\n",
			   boundary);
		append_crlf(out, dsn->original, dsn->original_len);
	} else {
		buf_printf(out,
			   "--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n",
			   boundary);
		append_crlf(out, dsn->original, hdr_len);
	}
	buf_printf(out, "\r\n--%s--\r\n", boundary);
}
