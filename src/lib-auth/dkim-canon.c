/* dkim-canon.c - the parts of DKIM (RFC 6376) that verification, signing
   and ARC share: splitting a message into header fields and body (bare LF
   read as CRLF), tag lists (3.2), base64 with FWS, canonicalization
   (3.4), header selection and hashing (5.4.2), key records (3.6.1, RFC
   8463 4.2) and the signature check over a digest. Pure functions over
   bytes; see dkim-private.h. */

#include "dkim-private.h"
#include "message-decode.h"

#include <openssl/rsa.h>
#include <openssl/x509.h>

#define DKIM_KEY_DER_MAX 2048
#define DKIM_FOLD_COLUMN 78

static bool is_wsp(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static bool is_fws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static uint8_t ascii_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

/* Copies msg with every bare LF turned into CRLF (RFC 5322 2.1 knows only
   CRLF; mail from files and pipes has LF). */
static struct span normalize_crlf(pool_t pool, const uint8_t *msg, size_t len)
{
	size_t i, extra = 0;
	uint8_t *out, *p;

	for (i = 0; i < len; i++) {
		if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
			extra++;
	}
	if (extra == 0)
		return span_make(msg, len);
	out = p = p_malloc(pool, i_size_add(len, extra) + 1);
	for (i = 0; i < len; i++) {
		if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
			*p++ = '\r';
		*p++ = msg[i];
	}
	return span_make(out, len + extra);
}

void dkim_message_parse(pool_t pool, const uint8_t *msg, size_t len,
			struct dkim_message *msg_r)
{
	struct span d = normalize_crlf(pool, msg, len);
	size_t pos = 0, start, count = 0, alloc = 0;
	struct dkim_field *fields = NULL;

	memset(msg_r, 0, sizeof(*msg_r));
	msg_r->data = d;
	/* RFC 5322 2.2: a field is its first line plus the continuation
	   lines that start with WSP; an empty line ends the header. */
	while (pos < d.len) {
		if (d.len - pos >= 2 && d.p[pos] == '\r' &&
		    d.p[pos + 1] == '\n') {
			msg_r->header_end = true;
			pos += 2;
			break;
		}
		start = pos;
		for (;;) {
			ssize_t lf = span_find_byte(span_skip(d, pos), '\n');

			if (lf < 0) {
				pos = d.len;
				break;
			}
			pos += (size_t)lf + 1;
			if (pos >= d.len || !is_wsp(d.p[pos]))
				break;
		}
		if (count == alloc) {
			struct dkim_field *n;

			alloc = alloc == 0 ? 32 : alloc * 2;
			n = p_new(pool, struct dkim_field, alloc);
			if (count > 0)
				memcpy(n, fields, count * sizeof(*fields));
			fields = n;
		}
		struct span raw = span_make(d.p + start, pos - start);
		if (raw.len >= 2 && raw.p[raw.len - 2] == '\r' &&
		    raw.p[raw.len - 1] == '\n')
			raw.len -= 2;
		ssize_t colon = span_find_byte(raw, ':');
		struct span name = colon < 0 ? SPAN_EMPTY
					     : span_make(raw.p, (size_t)colon);
		while (name.len > 0 && is_wsp(name.p[name.len - 1]))
			name.len--;
		fields[count].name = name;
		fields[count].raw = raw;
		count++;
	}
	msg_r->fields = fields;
	msg_r->field_count = count;
	msg_r->body = span_skip(d, pos);
	if (!msg_r->header_end)
		msg_r->body = SPAN_EMPTY;
}

static bool is_tag_name_char(uint8_t c, bool first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return !first && ((c >= '0' && c <= '9') || c == '_');
}

int dkim_tag_list_parse(struct span text, struct dkim_tag_list *list_r,
			const char **error_r)
{
	size_t pos = 0;

	list_r->count = 0;
	while (pos <= text.len) {
		size_t seg_start = pos, seg_end, i, name_start, name_end;
		ssize_t semi = span_find_byte(span_skip(text, pos), ';');

		seg_end = semi < 0 ? text.len : pos + (size_t)semi;
		i = seg_start;
		while (i < seg_end && is_fws(text.p[i]))
			i++;
		if (i == seg_end) {
			/* RFC 6376 3.2: only the last tag-spec may be
			   empty (the optional trailing ";"). */
			if (semi < 0 && (list_r->count > 0 || i == text.len))
				break;
			*error_r = "empty tag";
			return -1;
		}
		name_start = i;
		while (i < seg_end &&
		       is_tag_name_char(text.p[i], i == name_start))
			i++;
		name_end = i;
		if (name_end == name_start) {
			*error_r = "bad tag name";
			return -1;
		}
		while (i < seg_end && is_fws(text.p[i]))
			i++;
		if (i == seg_end || text.p[i] != '=') {
			*error_r = "tag without '='";
			return -1;
		}
		i++;
		size_t after_eq = i;
		while (i < seg_end && is_fws(text.p[i]))
			i++;
		size_t vstart = i, vend = seg_end;
		while (vend > vstart && is_fws(text.p[vend - 1]))
			vend--;
		for (size_t k = vstart; k < vend; k++) {
			/* RFC 6376 3.2 VALCHAR (8-bit kept for RFC 6532) */
			if (text.p[k] < 0x21 && !is_fws(text.p[k])) {
				*error_r = "control character in tag value";
				return -1;
			}
		}
		struct span name =
			span_make(text.p + name_start, name_end - name_start);
		for (unsigned int k = 0; k < list_r->count; k++) {
			/* RFC 6376 3.2: a duplicate makes the list invalid */
			if (span_eq(list_r->tags[k].name, name)) {
				*error_r = "duplicate tag";
				return -1;
			}
		}
		if (list_r->count == DKIM_TAGS_MAX) {
			*error_r = "too many tags";
			return -1;
		}
		struct dkim_tag *tag = &list_r->tags[list_r->count++];
		tag->name = name;
		tag->value = span_make(text.p + vstart, vend - vstart);
		tag->after_eq = after_eq;
		if (semi < 0)
			break;
		pos = seg_end + 1;
	}
	return 0;
}

const struct span *dkim_tag_find(const struct dkim_tag_list *list,
				 const char *name)
{
	struct span n = span_from_cstr(name);

	for (unsigned int i = 0; i < list->count; i++) {
		/* RFC 6376 3.2: tag names are case-sensitive */
		if (span_eq(list->tags[i].name, n))
			return &list->tags[i].value;
	}
	return NULL;
}

ssize_t dkim_base64_decode(struct span in, uint8_t *out, size_t max)
{
	uint32_t acc = 0;
	unsigned int bits = 0, pad = 0;
	size_t n = 0;

	for (size_t i = 0; i < in.len; i++) {
		uint8_t c = in.p[i];
		int v;

		if (is_fws(c))
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		v = base64_char_value(c);
		if (v < 0 || pad > 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == max)
				return -1;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* leftover bits must be the zero padding of a 2- or 3-char group */
	if (bits >= 6 || (acc & ((1U << bits) - 1)) != 0)
		return -1;
	if (pad > 2 || (pad > 0 && pad != bits / 2))
		return -1;
	return (ssize_t)n;
}

void dkim_base64_encode(struct buf *out, const uint8_t *data, size_t len)
{
	size_t olen = 4 * ((len + 2) / 3);
	uint8_t *p = buf_reserve(out, olen + 1);

	/* EVP_EncodeBlock() NUL-terminates */
	buf_commit(out, (size_t)EVP_EncodeBlock(p, data, (int)len));
}

void dkim_canon_header(struct buf *out, enum dkim_canon canon, struct span raw)
{
	size_t i = 0;
	bool space = false;

	if (canon == DKIM_CANON_SIMPLE) {
		/* RFC 6376 3.4.1: no change */
		buf_append_span(out, raw);
		return;
	}
	/* RFC 6376 3.4.2: lower-case the name, unfold, WSP runs to one SP,
	   no WSP at the end of the value or around the colon. */
	for (; i < raw.len && raw.p[i] != ':'; i++) {
		if (!is_fws(raw.p[i]))
			buf_append_c(out, ascii_lower(raw.p[i]));
	}
	if (i == raw.len)
		return;
	buf_append_c(out, ':');
	i++;
	while (i < raw.len && is_fws(raw.p[i]))
		i++;
	for (; i < raw.len; i++) {
		uint8_t c = raw.p[i];

		if (c == '\r' && i + 1 < raw.len && raw.p[i + 1] == '\n') {
			i++;
			continue;
		}
		if (is_wsp(c)) {
			space = true;
			continue;
		}
		if (space) {
			buf_append_c(out, ' ');
			space = false;
		}
		buf_append_c(out, c);
	}
}

void dkim_canon_body(struct buf *out, enum dkim_canon canon, struct span body)
{
	size_t pos = 0, empty = 0;

	if (canon == DKIM_CANON_SIMPLE) {
		/* RFC 6376 3.4.3: no trailing empty lines; at least CRLF */
		size_t len = body.len;

		while (len >= 2 && body.p[len - 2] == '\r' &&
		       body.p[len - 1] == '\n')
			len -= 2;
		buf_append(out, body.p, len);
		buf_append(out, "\r\n", 2);
		return;
	}
	/* RFC 6376 3.4.4: no WSP at line ends, WSP runs to one SP, no
	   trailing empty lines; an empty body stays empty (errata 1384). */
	while (pos < body.len) {
		ssize_t lf = span_find_byte(span_skip(body, pos), '\n');
		size_t end = lf < 0 ? body.len : pos + (size_t)lf;
		size_t next = lf < 0 ? body.len : end + 1;

		if (end > pos && body.p[end - 1] == '\r' && lf >= 0)
			end--;
		while (end > pos && is_wsp(body.p[end - 1]))
			end--;
		if (end == pos) {
			empty++;
			pos = next;
			continue;
		}
		for (; empty > 0; empty--)
			buf_append(out, "\r\n", 2);
		bool space = false;
		for (size_t i = pos; i < end; i++) {
			if (is_wsp(body.p[i])) {
				space = true;
				continue;
			}
			if (space)
				buf_append_c(out, ' ');
			space = false;
			buf_append_c(out, body.p[i]);
		}
		buf_append(out, "\r\n", 2);
		pos = next;
	}
}

const struct buf *dkim_bodies_get(struct dkim_bodies *bodies,
				  enum dkim_canon canon, struct span body)
{
	if (!bodies->done[canon]) {
		buf_init(&bodies->body[canon], body.len + 8);
		dkim_canon_body(&bodies->body[canon], canon, body);
		bodies->done[canon] = true;
	}
	return &bodies->body[canon];
}

void dkim_bodies_free(struct dkim_bodies *bodies)
{
	for (unsigned int i = 0; i < N_ELEMENTS(bodies->body); i++) {
		if (bodies->done[i])
			buf_free(&bodies->body[i]);
		bodies->done[i] = false;
	}
}

int dkim_field_strip_b(pool_t pool, struct span raw, struct span *out_r)
{
	struct dkim_tag_list tags;
	const char *error;
	ssize_t colon = span_find_byte(raw, ':');
	struct span value;
	size_t start, end;
	uint8_t *p;

	if (colon < 0)
		return -1;
	value = span_skip(raw, (size_t)colon + 1);
	if (dkim_tag_list_parse(value, &tags, &error) < 0)
		return -1;
	for (unsigned int i = 0; i < tags.count; i++) {
		if (!span_eq(tags.tags[i].name, SPAN_LIT("b")))
			continue;
		start = (size_t)colon + 1 + tags.tags[i].after_eq;
		end = start;
		while (end < raw.len && raw.p[end] != ';')
			end++;
		p = p_malloc(pool, raw.len - (end - start) + 1);
		memcpy(p, raw.p, start);
		memcpy(p + start, raw.p + end, raw.len - end);
		*out_r = span_make(p, raw.len - (end - start));
		return 0;
	}
	return -1;
}

void dkim_hash_field(EVP_MD_CTX *ctx, enum dkim_canon canon, struct span raw)
{
	struct buf b;

	buf_init(&b, raw.len + 8);
	dkim_canon_header(&b, canon, raw);
	EVP_DigestUpdate(ctx, b.data, b.used);
	buf_free(&b);
}

void dkim_hash_fields(EVP_MD_CTX *ctx, enum dkim_canon canon,
		      const struct dkim_message *msg, const struct span *names,
		      unsigned int count, const struct dkim_field *skip)
{
	bool *used = i_new(bool, msg->field_count + 1);

	for (unsigned int n = 0; n < count; n++) {
		/* RFC 6376 5.4.2: the last unused instance first; a name
		   listed more often than present adds nothing */
		for (unsigned int i = msg->field_count; i > 0; i--) {
			const struct dkim_field *f = &msg->fields[i - 1];

			if (used[i - 1] || f == skip ||
			    !span_eq_ci(f->name, names[n]))
				continue;
			used[i - 1] = true;
			dkim_hash_field(ctx, canon, f->raw);
			EVP_DigestUpdate(ctx, "\r\n", 2);
			break;
		}
	}
	i_free(used);
}

bool dkim_colon_list_has(struct span list, struct span item)
{
	struct span head, rest = list;

	for (;;) {
		bool more = span_split(rest, ':', &head, &rest);

		if (span_eq_ci(span_trim(head), item))
			return true;
		if (!more)
			return false;
	}
}

int dkim_key_parse(struct span record, struct dkim_key *key_r,
		   const char **error_r)
{
	struct dkim_tag_list tags;
	const struct span *v, *h, *k, *s, *t, *p;
	uint8_t der[DKIM_KEY_DER_MAX];
	const unsigned char *dp;
	ssize_t len;

	memset(key_r, 0, sizeof(*key_r));
	if (dkim_tag_list_parse(record, &tags, error_r) < 0)
		return -1;
	/* RFC 6376 3.6.1 v=: "DKIM1", and the first tag when present */
	v = dkim_tag_find(&tags, "v");
	if (v != NULL && (!span_eq(*v, SPAN_LIT("DKIM1")) ||
			  !span_eq(tags.tags[0].name, SPAN_LIT("v")))) {
		*error_r = "bad key version";
		return -1;
	}
	h = dkim_tag_find(&tags, "h");
	if (h != NULL && !dkim_colon_list_has(*h, SPAN_LIT("sha256"))) {
		*error_r = "key h= does not allow sha256";
		return -1;
	}
	k = dkim_tag_find(&tags, "k");
	if (k == NULL || span_eq(*k, SPAN_LIT("rsa")))
		key_r->type = DKIM_KEY_RSA;
	else if (span_eq(*k, SPAN_LIT("ed25519"))) /* RFC 8463 4.2 */
		key_r->type = DKIM_KEY_ED25519;
	else {
		*error_r = "unknown key type";
		return -1;
	}
	s = dkim_tag_find(&tags, "s");
	if (s != NULL && !dkim_colon_list_has(*s, SPAN_LIT("*")) &&
	    !dkim_colon_list_has(*s, SPAN_LIT("email"))) {
		*error_r = "key not for email";
		return -1;
	}
	t = dkim_tag_find(&tags, "t");
	if (t != NULL) {
		key_r->testing = dkim_colon_list_has(*t, SPAN_LIT("y"));
		key_r->strict = dkim_colon_list_has(*t, SPAN_LIT("s"));
	}
	p = dkim_tag_find(&tags, "p");
	if (p == NULL) {
		*error_r = "key without p=";
		return -1;
	}
	len = dkim_base64_decode(*p, der, sizeof(der));
	if (len < 0) {
		*error_r = "bad key base64";
		return -1;
	}
	if (len == 0) {
		/* RFC 6376 3.6.1: an empty p= means the key was revoked */
		key_r->revoked = true;
		return 0;
	}
	if (key_r->type == DKIM_KEY_ED25519) {
		/* RFC 8463 4.2: the raw 32-byte public key */
		if (len != 32) {
			*error_r = "bad ed25519 key";
			return -1;
		}
		key_r->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519,
							  NULL, der, 32);
		if (key_r->pkey == NULL) {
			*error_r = "bad ed25519 key";
			return -1;
		}
		return 0;
	}
	/* RFC 6376 3.6.1: SubjectPublicKeyInfo; some publish the bare
	   RSAPublicKey (PKCS#1), which is accepted too. */
	dp = der;
	key_r->pkey = d2i_PUBKEY(NULL, &dp, len);
	if (key_r->pkey == NULL || dp != der + len) {
		EVP_PKEY_free(key_r->pkey);
		dp = der;
		key_r->pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &dp, len);
		if (key_r->pkey != NULL && dp != der + len) {
			EVP_PKEY_free(key_r->pkey);
			key_r->pkey = NULL;
		}
	}
	if (key_r->pkey == NULL ||
	    EVP_PKEY_get_base_id(key_r->pkey) != EVP_PKEY_RSA) {
		EVP_PKEY_free(key_r->pkey);
		key_r->pkey = NULL;
		*error_r = "bad rsa key";
		return -1;
	}
	key_r->bits = (unsigned int)EVP_PKEY_get_bits(key_r->pkey);
	return 0;
}

bool dkim_verify_digest(EVP_PKEY *pkey, enum dkim_key_type type,
			const uint8_t digest[32], const uint8_t *sig,
			size_t sig_len)
{
	bool ok = false;

	if (type == DKIM_KEY_ED25519) {
		/* RFC 8463 3: PureEdDSA over the SHA-256 hash */
		EVP_MD_CTX *md = EVP_MD_CTX_new();

		if (md != NULL &&
		    EVP_DigestVerifyInit(md, NULL, NULL, NULL, pkey) == 1 &&
		    EVP_DigestVerify(md, sig, sig_len, digest, 32) == 1)
			ok = true;
		EVP_MD_CTX_free(md);
		return ok;
	}
	/* RFC 6376 3.3.1: RSASSA-PKCS1-v1_5 with SHA-256 */
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
	if (ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
	    EVP_PKEY_verify(ctx, sig, sig_len, digest, 32) == 1)
		ok = true;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

bool dkim_domain_within(struct span domain, struct span parent)
{
	struct span tail;

	if (span_eq_ci(domain, parent))
		return true;
	if (domain.len <= parent.len + 1)
		return false;
	tail = span_skip(domain, domain.len - parent.len);
	return domain.p[domain.len - parent.len - 1] == '.' &&
	       span_eq_ci(tail, parent);
}

void dkim_fold_append(struct buf *out, size_t *col, struct span value,
		      bool break_anywhere)
{
	if (!break_anywhere) {
		if (*col > 1 && *col + value.len > DKIM_FOLD_COLUMN) {
			/* a leading SP of value is the fold's WSP */
			bool sp = value.len > 0 && value.p[0] == ' ';

			buf_append(out, "\r\n ", sp ? 2 : 3);
			*col = sp ? 0 : 1;
		}
		buf_append_span(out, value);
		*col += value.len;
		return;
	}
	while (value.len > 0) {
		size_t room;

		if (*col >= DKIM_FOLD_COLUMN) {
			buf_append(out, "\r\n ", 3);
			*col = 1;
		}
		room = DKIM_FOLD_COLUMN - *col;
		if (room > value.len)
			room = value.len;
		buf_append(out, value.p, room);
		*col += room;
		value = span_skip(value, room);
	}
}
