/* mbox.c - reads mboxrd/mboxo files and writes mboxrd (RFC 4155; the
   variants as qmail's mbox(5) describes them) for `marmot import` and
   `marmot export` (src/cli/cli-store.c). The reader pulls lines from a
   FILE with getline(), so files of any size stream through one message
   buffer; the writer is I/O-free and appends to a buf. Flags travel in
   the de facto metadata headers (Status, X-Status, X-Keywords as
   written by UW-IMAP, mutt and Dovecot; X-Mozilla-Status as written by
   Thunderbird). Contracts in mbox.h. */

#include "lib.h"
#include "mbox.h"
#include "buf.h"
#include "pool.h"
#include "span.h"

#include <errno.h>
#include <time.h>

struct mbox_reader {
	FILE *input;
	enum mbox_format format;
	pool_t pool; /* per message: keywords, sender */
	struct buf raw; /* the message as read, quoting undone */
	struct buf out; /* raw without the metadata headers */
	char *line;
	size_t line_alloc;
	uint64_t lineno;
	bool started, eof;
	/* The From_ line that starts the next message. */
	bool have_next;
	char *next_sender;
	int64_t next_date;
	uint64_t next_line;
};

static const char mbox_months[12][4] = { "Jan", "Feb", "Mar", "Apr",
					 "May", "Jun", "Jul", "Aug",
					 "Sep", "Oct", "Nov", "Dec" };
static const char mbox_wdays[7][4] = { "Sun", "Mon", "Tue", "Wed",
				       "Thu", "Fri", "Sat" };

/* Headers that hold mbox metadata, not message content (RFC 4155 leaves
   them to implementations; these are UW-IMAP's and Dovecot's). */
static const char *const mbox_meta_headers[] = {
	"Status", "X-Status", "X-Keywords", "X-UID", "X-IMAP", "X-IMAPbase",
};

struct mbox_reader *mbox_reader_create(FILE *input, enum mbox_format format)
{
	struct mbox_reader *reader = i_new(struct mbox_reader, 1);

	reader->input = input;
	reader->format = format;
	reader->pool = pool_create("mbox", 1024);
	reader->raw = BUF_INIT;
	reader->out = BUF_INIT;
	return reader;
}

void mbox_reader_destroy(struct mbox_reader **_reader)
{
	struct mbox_reader *reader = *_reader;

	*_reader = NULL;
	if (reader == NULL)
		return;
	buf_free(&reader->raw);
	buf_free(&reader->out);
	pool_unref(&reader->pool);
	free(reader->line);
	free(reader->next_sender);
	free(reader);
}

/* ---- dates ---- */

static bool mbox_is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Next whitespace-separated token of [*pos, end). */
static bool mbox_token(const char *str, size_t len, size_t *pos,
		       struct span *tok_r)
{
	size_t i = *pos;

	while (i < len && mbox_is_space(str[i]))
		i++;
	if (i == len)
		return false;
	size_t start = i;
	while (i < len && !mbox_is_space(str[i]) && str[i] != '\r' &&
	       str[i] != '\n')
		i++;
	if (i == start)
		return false;
	*tok_r = span_make(str + start, i - start);
	*pos = i;
	return true;
}

static int mbox_parse_number(struct span tok, unsigned int min_digits,
			     unsigned int max_digits, unsigned int *num_r)
{
	uint64_t num;

	if (tok.len < min_digits || tok.len > max_digits ||
	    span_to_u64(tok, 99999, &num) < 0)
		return -1;
	*num_r = (unsigned int)num;
	return 0;
}

static int mbox_parse_zone(struct span tok, int *offset_r)
{
	unsigned int hhmm;

	if (tok.len != 5 || (tok.p[0] != '+' && tok.p[0] != '-') ||
	    mbox_parse_number(span_skip(tok, 1), 4, 4, &hhmm) < 0 ||
	    hhmm % 100 >= 60)
		return -1;
	*offset_r = (int)((hhmm / 100) * 3600 + (hhmm % 100) * 60);
	if (tok.p[0] == '-')
		*offset_r = -*offset_r;
	return 0;
}

static bool mbox_is_alpha_token(struct span tok)
{
	for (size_t i = 0; i < tok.len; i++) {
		uint8_t c = (uint8_t)(tok.p[i] | 0x20);
		if (c < 'a' || c > 'z')
			return false;
	}
	return tok.len > 0;
}

int mbox_parse_date(const char *str, size_t len, int64_t *time_r)
{
	struct span tok;
	size_t pos = 0;
	unsigned int month = 12, day, hour, min, sec = 0, year;
	int offset = 0;
	struct tm tm;

	/* RFC 4155 2: asctime(3) format, "Www Mmm dd hh:mm:ss yyyy"; the
	   weekday is optional here, and a numeric zone may follow the time
	   or the year (some writers add one). */
	if (!mbox_token(str, len, &pos, &tok))
		return -1;
	for (unsigned int i = 0; i < N_ELEMENTS(mbox_wdays); i++) {
		if (span_eq_ci(tok, span_make(mbox_wdays[i], 3))) {
			if (!mbox_token(str, len, &pos, &tok))
				return -1;
			break;
		}
	}
	for (unsigned int i = 0; i < N_ELEMENTS(mbox_months); i++) {
		if (span_eq_ci(tok, span_make(mbox_months[i], 3)))
			month = i;
	}
	if (month == 12 || !mbox_token(str, len, &pos, &tok) ||
	    mbox_parse_number(tok, 1, 2, &day) < 0 || day < 1 || day > 31)
		return -1;
	if (!mbox_token(str, len, &pos, &tok) || tok.len < 4 || tok.len > 8)
		return -1;
	/* hh:mm or hh:mm:ss */
	struct span hh, rest, mm, ss;
	if (!span_split(tok, ':', &hh, &rest) ||
	    mbox_parse_number(hh, 1, 2, &hour) < 0 || hour > 23)
		return -1;
	if (span_split(rest, ':', &mm, &ss)) {
		if (mbox_parse_number(ss, 2, 2, &sec) < 0 || sec > 60)
			return -1;
	} else {
		mm = rest;
	}
	if (mbox_parse_number(mm, 2, 2, &min) < 0 || min > 59)
		return -1;
	if (!mbox_token(str, len, &pos, &tok))
		return -1;
	if (mbox_parse_zone(tok, &offset) == 0 || mbox_is_alpha_token(tok)) {
		if (!mbox_token(str, len, &pos, &tok))
			return -1;
	}
	if (mbox_parse_number(tok, 4, 4, &year) < 0 || year < 1970)
		return -1;
	if (mbox_token(str, len, &pos, &tok))
		(void)mbox_parse_zone(tok, &offset);

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (int)year - 1900;
	tm.tm_mon = (int)month;
	tm.tm_mday = (int)day;
	tm.tm_hour = (int)hour;
	tm.tm_min = (int)min;
	tm.tm_sec = (int)sec;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	*time_r = (int64_t)t - offset;
	return 0;
}

/* Splits "From SENDER DATE" (len without the line ending). The sender is
   normally one token, but unquoted spaces happen, so the date is looked
   for at every token after the first. Returns 0, or -1 if no date
   parses. */
static int mbox_parse_from_line(const char *line, size_t len,
				const char **sender_r, size_t *sender_len_r,
				int64_t *date_r)
{
	size_t pos = 5;
	struct span tok;

	if (len < 5 || memcmp(line, "From ", 5) != 0)
		return -1;
	if (!mbox_token(line, len, &pos, &tok))
		return -1;
	const char *sender = (const char *)tok.p;
	while (mbox_token(line, len, &pos, &tok)) {
		const char *date = (const char *)tok.p;

		if (mbox_parse_date(date, len - (size_t)(date - line),
				    date_r) == 0) {
			size_t slen = (size_t)(date - sender);
			while (slen > 0 && mbox_is_space(sender[slen - 1]))
				slen--;
			*sender_r = sender;
			*sender_len_r = slen;
			return 0;
		}
	}
	return -1;
}

/* ---- reading ---- */

static size_t mbox_line_content_len(const char *line, size_t len)
{
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	return len;
}

static void mbox_set_next(struct mbox_reader *reader, const char *sender,
			  size_t sender_len, int64_t date)
{
	free(reader->next_sender);
	reader->next_sender = i_strndup(sender, sender_len);
	reader->next_date = date;
	reader->next_line = reader->lineno;
	reader->have_next = true;
}

static int mbox_read_line(struct mbox_reader *reader, size_t *len_r,
			  const char **error_r)
{
	errno = 0;
	ssize_t n = getline(&reader->line, &reader->line_alloc, reader->input);
	if (n < 0) {
		if (ferror(reader->input)) {
			*error_r = errno == 0 ? "read error" : strerror(errno);
			return -1;
		}
		reader->eof = true;
		return 0;
	}
	reader->lineno++;
	*len_r = (size_t)n;
	return 1;
}

static bool mbox_header_name_is(struct span field, const char *name)
{
	size_t len = strlen(name);

	return field.len > len && field.p[len] == ':' &&
	       span_eq_ci(span_make(field.p, len), span_make(name, len));
}

/* Keyword atom (RFC 9051 9: flag-keyword = atom): no specials, no
   CTL, no 8-bit. */
static bool mbox_keyword_is_valid(struct span kw)
{
	if (kw.len == 0 || kw.len > 255 || kw.p[0] == '\\')
		return false;
	for (size_t i = 0; i < kw.len; i++) {
		uint8_t c = kw.p[i];
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

static void mbox_apply_meta(struct span field, uint32_t *flags,
			    bool *have_status, const char ***keywords,
			    unsigned int *kw_count, pool_t pool)
{
	struct span value =
		span_skip(field, (size_t)span_find_byte(field, ':') + 1);

	if (mbox_header_name_is(field, "Status") ||
	    mbox_header_name_is(field, "X-Status")) {
		*have_status = true;
		for (size_t i = 0; i < value.len; i++) {
			switch (value.p[i]) {
			case 'R':
				*flags |= MAIL_FLAG_SEEN;
				break;
			case 'A':
				*flags |= MAIL_FLAG_ANSWERED;
				break;
			case 'F':
				*flags |= MAIL_FLAG_FLAGGED;
				break;
			case 'T':
				*flags |= MAIL_FLAG_DRAFT;
				break;
			case 'D':
				*flags |= MAIL_FLAG_DELETED;
				break;
			default:
				break;
			}
		}
	} else if (mbox_header_name_is(field, "X-Keywords")) {
		size_t i = 0;
		while (i < value.len) {
			while (i < value.len &&
			       strchr(", \t\r\n", value.p[i]) != NULL)
				i++;
			size_t start = i;
			while (i < value.len &&
			       strchr(", \t\r\n", value.p[i]) == NULL)
				i++;
			struct span kw = span_make(value.p + start, i - start);
			if (!mbox_keyword_is_valid(kw))
				continue;
			bool dup = false;
			for (unsigned int k = 0; k < *kw_count; k++) {
				if (span_eq_ci(kw,
					       span_from_cstr((*keywords)[k])))
					dup = true;
			}
			if (dup)
				continue;
			const char **n =
				p_new(pool, const char *, *kw_count + 2);
			if (*kw_count > 0)
				memcpy(n, *keywords, sizeof(*n) * *kw_count);
			n[(*kw_count)++] = p_strndup(pool, kw.p, kw.len);
			*keywords = n;
		}
	}
}

/* Moves raw to out without the metadata headers, filling the flags. */
static void mbox_extract_meta(struct mbox_reader *reader,
			      struct mbox_message *msg)
{
	struct span data = buf_span(&reader->raw);
	const char **keywords = NULL;
	unsigned int kw_count = 0;
	uint32_t flags = 0, moz_flags = 0;
	bool have_status = false, have_moz = false;
	size_t pos = 0;

	buf_reset(&reader->out);
	/* RFC 5322 2.2: the header is fields up to the first empty line;
	   a field continues on lines starting with WSP (2.2.3). */
	while (pos < data.len) {
		size_t end = pos;
		const uint8_t *nl = memchr(data.p + pos, '\n', data.len - pos);
		size_t line_end =
			nl == NULL ? data.len : (size_t)(nl - data.p) + 1;
		if (mbox_line_content_len((const char *)data.p + pos,
					  line_end - pos) == 0)
			break; /* the empty line ending the header */
		end = line_end;
		while (end < data.len &&
		       (data.p[end] == ' ' || data.p[end] == '\t')) {
			nl = memchr(data.p + end, '\n', data.len - end);
			end = nl == NULL ? data.len : (size_t)(nl - data.p) + 1;
		}
		struct span field = span_make(data.p + pos, end - pos);
		bool meta = false;
		for (size_t i = 0; i < N_ELEMENTS(mbox_meta_headers); i++) {
			if (mbox_header_name_is(field, mbox_meta_headers[i]))
				meta = true;
		}
		if (meta) {
			mbox_apply_meta(field, &flags, &have_status, &keywords,
					&kw_count, reader->pool);
		} else {
			if (mbox_header_name_is(field, "X-Mozilla-Status")) {
				struct span v = span_trim(span_skip(
					field, strlen("X-Mozilla-Status:")));
				char hex[8] = "";
				size_t n = mbox_line_content_len(
					(const char *)v.p, v.len);
				if (n > 0 && n < sizeof(hex)) {
					memcpy(hex, v.p, n);
					char *endp;
					unsigned long val =
						strtoul(hex, &endp, 16);
					if (*endp == '\0') {
						moz_flags = (uint32_t)val;
						have_moz = true;
					}
				}
			}
			buf_append_span(&reader->out, field);
		}
		pos = end;
	}
	buf_append(&reader->out, data.p + pos, data.len - pos);

	if (!have_status && have_moz) {
		/* Thunderbird's nsMsgMessageFlags. */
		if ((moz_flags & 0x0001) != 0)
			flags |= MAIL_FLAG_SEEN;
		if ((moz_flags & 0x0002) != 0)
			flags |= MAIL_FLAG_ANSWERED;
		if ((moz_flags & 0x0004) != 0)
			flags |= MAIL_FLAG_FLAGGED;
		if ((moz_flags & 0x0008) != 0)
			flags |= MAIL_FLAG_DELETED;
	}
	if (keywords == NULL)
		keywords = p_new(reader->pool, const char *, 1);
	msg->flags = flags;
	msg->keywords = keywords;
	msg->data = buf_span(&reader->out).p;
	msg->size = reader->out.used;
}

int mbox_reader_next(struct mbox_reader *reader, struct mbox_message *msg_r,
		     const char **error_r)
{
	const char *sender;
	size_t len, sender_len;
	int64_t date;
	int ret;

	memset(msg_r, 0, sizeof(*msg_r));
	pool_clear(reader->pool);
	if (!reader->started) {
		reader->started = true;
		if ((ret = mbox_read_line(reader, &len, error_r)) <= 0)
			return ret;
		if (len < 5 || memcmp(reader->line, "From ", 5) != 0) {
			*error_r = "not an mbox file (it does not start with "
				   "a \"From \" line)";
			return -1;
		}
		len = mbox_line_content_len(reader->line, len);
		if (mbox_parse_from_line(reader->line, len, &sender,
					 &sender_len, &date) < 0) {
			/* The first line is a From_ line whatever its date
			   says; the sender is its first token. */
			date = 0;
			sender = reader->line + 5;
			sender_len = strcspn(sender, " \t\r\n");
		}
		mbox_set_next(reader, sender, sender_len, date);
	}
	if (!reader->have_next)
		return 0;
	reader->have_next = false;
	msg_r->sender = p_strdup(reader->pool, reader->next_sender);
	msg_r->internaldate = reader->next_date;
	msg_r->line = reader->next_line;

	buf_reset(&reader->raw);
	bool prev_blank = false;
	while ((ret = mbox_read_line(reader, &len, error_r)) > 0) {
		const char *line = reader->line;
		size_t content = mbox_line_content_len(line, len);

		/* RFC 4155 2: a From_ line follows an empty line. */
		if (prev_blank && content >= 5 &&
		    memcmp(line, "From ", 5) == 0 &&
		    mbox_parse_from_line(line, content, &sender, &sender_len,
					 &date) == 0) {
			mbox_set_next(reader, sender, sender_len, date);
			break;
		}
		prev_blank = content == 0;
		if (line[0] == '>') {
			size_t k = 0;
			while (k < len && line[k] == '>')
				k++;
			/* mboxrd: ^>+From  loses one '>'; mboxo only
			   ^>From  does. */
			if (len - k >= 5 && memcmp(line + k, "From ", 5) == 0 &&
			    (reader->format == MBOX_FORMAT_MBOXRD || k == 1)) {
				line++;
				len--;
			}
		}
		if (reader->raw.used + len > MBOX_MESSAGE_MAX) {
			*error_r = p_strdup_printf(
				reader->pool,
				"message at line %llu is larger than %u bytes",
				(unsigned long long)msg_r->line,
				MBOX_MESSAGE_MAX);
			return -1;
		}
		buf_append(&reader->raw, line, len);
	}
	if (ret < 0)
		return -1;

	/* The empty line before the next From_ line (or the end of the
	   file) separates messages; it is not content. */
	struct span raw = buf_span(&reader->raw);
	if (raw.len >= 1 && raw.p[raw.len - 1] == '\n') {
		size_t blank =
			raw.len >= 2 && raw.p[raw.len - 2] == '\r' ? 2 : 1;
		if (raw.len == blank || raw.p[raw.len - blank - 1] == '\n')
			buf_truncate(&reader->raw, raw.len - blank);
	}
	mbox_extract_meta(reader, msg_r);
	return 1;
}

/* ---- writing ---- */

static void mbox_append_date(struct buf *out, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || tm.tm_year < 70 ||
	    tm.tm_year > 9999 - 1900) {
		tt = 0;
		gmtime_r(&tt, &tm);
	}
	/* asctime(3) layout, in English whatever the locale:
	   "Www Mmm dd hh:mm:ss yyyy" with a space-padded day. */
	buf_printf(out, "%s %s %2d %02d:%02d:%02d %d", mbox_wdays[tm.tm_wday],
		   mbox_months[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min,
		   tm.tm_sec, tm.tm_year + 1900);
}

static bool mbox_line_needs_quote(const uint8_t *p, size_t len)
{
	size_t k = 0;

	while (k < len && p[k] == '>')
		k++;
	return len - k >= 5 && memcmp(p + k, "From ", 5) == 0;
}

static void mbox_append_quoted(struct buf *out, const uint8_t *p, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		const uint8_t *nl = memchr(p + pos, '\n', len - pos);
		size_t end = nl == NULL ? len : (size_t)(nl - p) + 1;

		/* mboxrd: every ^>*From  line gets one more '>'. */
		if (mbox_line_needs_quote(p + pos, end - pos))
			buf_append_c(out, '>');
		buf_append(out, p + pos, end - pos);
		pos = end;
	}
}

/* Offset of the empty line that ends the header, or size if there is
   none; *crlf_r tells the header's line ending. */
static size_t mbox_header_end(const uint8_t *p, size_t size, bool *crlf_r)
{
	size_t pos = 0;

	*crlf_r = false;
	if (size == 0)
		return 0;
	const uint8_t *first = memchr(p, '\n', size);
	if (first != NULL && first > p && first[-1] == '\r')
		*crlf_r = true;
	while (pos < size) {
		const uint8_t *nl = memchr(p + pos, '\n', size - pos);
		size_t end = nl == NULL ? size : (size_t)(nl - p) + 1;
		if (mbox_line_content_len((const char *)p + pos, end - pos) ==
		    0)
			return pos;
		pos = end;
	}
	return size;
}

void mbox_write_message(struct buf *out, const void *data, size_t size,
			const char *sender, int64_t internaldate,
			uint32_t flags, const char *const *keywords)
{
	const uint8_t *p = data;
	bool crlf;
	const char *eol;

	buf_append_str(out, "From ");
	if (sender == NULL || sender[0] == '\0')
		sender = "MAILER-DAEMON";
	/* The sender is one token: whitespace and controls would make the
	   From_ line unparsable. */
	for (const char *s = sender; *s != '\0'; s++) {
		uint8_t c = (uint8_t)*s;
		buf_append_c(out, c <= 0x20 || c == 0x7f ? '_' : c);
	}
	buf_append_c(out, ' ');
	mbox_append_date(out, internaldate);
	buf_append_c(out, '\n');

	size_t hdr_end = mbox_header_end(p, size, &crlf);
	eol = crlf ? "\r\n" : "\n";
	mbox_append_quoted(out, p, hdr_end);
	if (hdr_end > 0 && p[hdr_end - 1] != '\n')
		buf_append_str(out, eol); /* header without a final newline */
	buf_printf(out, "Status: %sO%s",
		   (flags & MAIL_FLAG_SEEN) != 0 ? "R" : "", eol);
	if ((flags & (MAIL_FLAG_ANSWERED | MAIL_FLAG_FLAGGED | MAIL_FLAG_DRAFT |
		      MAIL_FLAG_DELETED)) != 0) {
		buf_printf(out, "X-Status: %s%s%s%s%s",
			   (flags & MAIL_FLAG_ANSWERED) != 0 ? "A" : "",
			   (flags & MAIL_FLAG_FLAGGED) != 0 ? "F" : "",
			   (flags & MAIL_FLAG_DRAFT) != 0 ? "T" : "",
			   (flags & MAIL_FLAG_DELETED) != 0 ? "D" : "", eol);
	}
	if (keywords != NULL && keywords[0] != NULL) {
		buf_append_str(out, "X-Keywords:");
		for (unsigned int i = 0; keywords[i] != NULL; i++) {
			if (mbox_keyword_is_valid(span_from_cstr(keywords[i])))
				buf_printf(out, " %s", keywords[i]);
		}
		buf_append_str(out, eol);
	}
	mbox_append_quoted(out, p + hdr_end, size - hdr_end);
	if (size > hdr_end && p[size - 1] != '\n')
		buf_append_c(out, '\n');
	/* RFC 4155 2: an empty line before the next From_ line. */
	buf_append_c(out, '\n');
}
