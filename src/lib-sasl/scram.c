/* scram.c - SCRAM-SHA-256 messages and keys (scram.h). */

#include "lib.h"
#include "buf.h"
#include "pool.h"
#include "scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <stdio.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

/* RFC 5802 7: printable = %x21-2B / %x2D-7E (no ','). */
static bool scram_is_printable(struct span s)
{
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] < 0x21 || s.p[i] > 0x7e || s.p[i] == ',')
			return false;
	}
	return true;
}

/* Length of the UTF-8 sequence at s (RFC 3629 4, no overlongs or
   surrogates), or 0 if invalid. */
static size_t scram_utf8_len(const uint8_t *p, size_t left)
{
	uint32_t c;
	size_t n;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (left < n)
		return 0;
	c = p[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
	    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return 0;
	return n;
}

static bool scram_utf8_valid(struct span s)
{
	for (size_t i = 0; i < s.len;) {
		size_t n = scram_utf8_len(s.p + i, s.len - i);

		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

/* RFC 5802 7: saslname = 1*(value-safe-char / "=2C" / "=3D"),
   value-safe-char excludes NUL, '=' and ','. Decodes into out. */
static int scram_saslname_decode_buf(struct buf *out, struct span name)
{
	if (name.len == 0 || name.len > SCRAM_MAX_USERNAME * 3)
		return -1;
	for (size_t i = 0; i < name.len; i++) {
		uint8_t c = name.p[i];

		if (c == '\0' || c == ',')
			return -1;
		if (c != '=') {
			buf_append_c(out, c);
			continue;
		}
		if (name.len - i < 3)
			return -1;
		if (name.p[i + 1] == '2' && name.p[i + 2] == 'C')
			buf_append_c(out, ',');
		else if (name.p[i + 1] == '3' && name.p[i + 2] == 'D')
			buf_append_c(out, '=');
		else
			return -1;
		i += 2;
	}
	if (out->used > SCRAM_MAX_USERNAME || !scram_utf8_valid(buf_span(out)))
		return -1;
	return 0;
}

const char *scram_saslname_decode(struct pool *pool, struct span name)
{
	struct buf out = BUF_INIT;
	const char *ret = NULL;

	if (scram_saslname_decode_buf(&out, name) == 0)
		ret = p_strndup(pool, buf_cstr(&out), out.used);
	buf_free(&out);
	return ret;
}

void scram_saslname_encode(struct buf *out, const char *name)
{
	for (; *name != '\0'; name++) {
		if (*name == ',')
			buf_append_str(out, "=2C");
		else if (*name == '=')
			buf_append_str(out, "=3D");
		else
			buf_append_c(out, (uint8_t)*name);
	}
}

/* Takes the attribute up to the next ',' (or the end) off s; *more_r
   says whether a ',' followed, i.e. another attribute must come. */
static struct span scram_next_attr(struct span *s, bool *more_r)
{
	struct span head, tail;

	*more_r = span_split(*s, ',', &head, &tail);
	if (*more_r) {
		*s = tail;
		return head;
	}
	*s = span_make(s->p + s->len, 0);
	return head;
}

static bool scram_attr_is(struct span attr, char name)
{
	return attr.len >= 2 && attr.p[0] == (uint8_t)name && attr.p[1] == '=';
}

/* RFC 5802 5.1: extensions are attr-val pairs whose name is a letter;
   "m" is reserved and, if present, must make us fail. */
static bool scram_extension_ok(struct span attr)
{
	return attr.len >= 2 && attr.p[1] == '=' &&
	       ((attr.p[0] >= 'a' && attr.p[0] <= 'z') ||
		(attr.p[0] >= 'A' && attr.p[0] <= 'Z')) &&
	       attr.p[0] != 'm';
}

static int scram_parse_client_first_real(struct buf *name_buf,
					 struct buf *authzid_buf,
					 struct span msg,
					 struct scram_client_first *first_r,
					 const char **error_r)
{
	struct span rest = msg, attr, flag, authz;
	bool more;

	memset(first_r, 0, sizeof(*first_r));
	if (msg.len == 0 || msg.len > SCRAM_MAX_MESSAGE ||
	    memchr(msg.p, '\0', msg.len) != NULL) {
		*error_r = "invalid-encoding";
		return -1;
	}
	/* RFC 5802 7: gs2-cbind-flag = ("p=" cb-name) / "n" / "y" */
	flag = scram_next_attr(&rest, &more);
	if (flag.len >= 2 && flag.p[0] == 'p' && flag.p[1] == '=') {
		/* RFC 5802 6: we advertise no -PLUS mechanism, so a client
		   asking for channel binding must fail. */
		*error_r = "channel-binding-not-supported";
		return -1;
	}
	if (flag.len != 1 || (flag.p[0] != 'n' && flag.p[0] != 'y') || !more) {
		*error_r = "other-error";
		return -1;
	}
	first_r->cbind_flag = (char)flag.p[0];
	/* gs2-header = gs2-cbind-flag "," [ authzid ] "," */
	authz = scram_next_attr(&rest, &more);
	if (!more) {
		*error_r = "other-error";
		return -1;
	}
	if (authz.len > 0) {
		if (!scram_attr_is(authz, 'a') ||
		    scram_saslname_decode_buf(authzid_buf,
					      span_skip(authz, 2)) < 0) {
			*error_r = "invalid-username-encoding";
			return -1;
		}
		first_r->authzid = buf_cstr(authzid_buf);
	}
	first_r->gs2_header = span_make(msg.p, (size_t)(rest.p - msg.p));
	first_r->bare = rest;
	/* bare = [reserved-mext ","] username "," nonce ["," extensions] */
	attr = scram_next_attr(&rest, &more);
	if (scram_attr_is(attr, 'm')) {
		/* RFC 5802 5.1: a mandatory extension we do not know */
		*error_r = "extensions-not-supported";
		return -1;
	}
	if (!scram_attr_is(attr, 'n') ||
	    scram_saslname_decode_buf(name_buf, span_skip(attr, 2)) < 0) {
		*error_r = "invalid-username-encoding";
		return -1;
	}
	first_r->username = buf_cstr(name_buf);
	if (!more) {
		*error_r = "other-error";
		return -1;
	}
	attr = scram_next_attr(&rest, &more);
	if (!scram_attr_is(attr, 'r') || attr.len == 2 ||
	    !scram_is_printable(span_skip(attr, 2))) {
		*error_r = "other-error";
		return -1;
	}
	first_r->client_nonce = span_skip(attr, 2);
	while (more) {
		attr = scram_next_attr(&rest, &more);
		if (!scram_extension_ok(attr)) {
			*error_r = "extensions-not-supported";
			return -1;
		}
	}
	return 0;
}

int scram_parse_client_first(struct pool *pool, struct span msg,
			     struct scram_client_first *first_r,
			     const char **error_r)
{
	struct buf name = BUF_INIT, authzid = BUF_INIT;
	int ret;

	ret = scram_parse_client_first_real(&name, &authzid, msg, first_r,
					    error_r);
	if (ret == 0) {
		first_r->username = p_strndup(pool, buf_cstr(&name), name.used);
		if (first_r->authzid != NULL) {
			first_r->authzid = p_strndup(pool, buf_cstr(&authzid),
						     authzid.used);
		}
	}
	buf_free(&name);
	buf_free(&authzid);
	return ret;
}

int scram_client_first_check(struct span msg)
{
	struct buf name = BUF_INIT, authzid = BUF_INIT;
	struct scram_client_first first;
	const char *error;
	int ret;

	ret = scram_parse_client_first_real(&name, &authzid, msg, &first,
					    &error);
	buf_free(&name);
	buf_free(&authzid);
	return ret;
}

int scram_parse_client_final(struct span msg,
			     struct scram_client_final *final_r,
			     const char **error_r)
{
	struct span rest = msg, attr, proof = SPAN_EMPTY;
	size_t len;
	ssize_t last;
	bool more;

	memset(final_r, 0, sizeof(*final_r));
	if (msg.len == 0 || msg.len > SCRAM_MAX_MESSAGE ||
	    memchr(msg.p, '\0', msg.len) != NULL) {
		*error_r = "invalid-encoding";
		return -1;
	}
	/* client-final-message = without-proof "," proof; the proof is the
	   last attribute. */
	last = -1;
	for (size_t i = msg.len; i > 0; i--) {
		if (msg.p[i - 1] == ',') {
			last = (ssize_t)(i - 1);
			break;
		}
	}
	if (last < 0) {
		*error_r = "other-error";
		return -1;
	}
	final_r->without_proof = span_make(msg.p, (size_t)last);
	proof = span_skip(msg, (size_t)last + 1);
	if (!scram_attr_is(proof, 'p')) {
		*error_r = "other-error";
		return -1;
	}
	proof = span_skip(proof, 2);
	if (proof.len !=
		    sodium_base64_ENCODED_LEN(SCRAM_KEY_LEN,
					      sodium_base64_VARIANT_ORIGINAL) -
			    1 ||
	    sodium_base642bin(final_r->proof, sizeof(final_r->proof),
			      (const char *)proof.p, proof.len, NULL, &len,
			      NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    len != SCRAM_KEY_LEN) {
		*error_r = "invalid-encoding";
		return -1;
	}
	rest = final_r->without_proof;
	/* channel-binding = "c=" base64 */
	attr = scram_next_attr(&rest, &more);
	if (!scram_attr_is(attr, 'c') || !more) {
		*error_r = "other-error";
		return -1;
	}
	final_r->channel_binding = span_skip(attr, 2);
	attr = scram_next_attr(&rest, &more);
	if (!scram_attr_is(attr, 'r') || attr.len == 2 ||
	    !scram_is_printable(span_skip(attr, 2))) {
		*error_r = "other-error";
		return -1;
	}
	final_r->nonce = span_skip(attr, 2);
	/* RFC 5802 7: ["," extensions] before the proof */
	while (more) {
		attr = scram_next_attr(&rest, &more);
		if (!scram_extension_ok(attr)) {
			*error_r = "extensions-not-supported";
			return -1;
		}
	}
	return 0;
}

int scram_client_final_check(const struct scram_client_first *first,
			     const struct scram_client_final *final,
			     struct span server_first_nonce,
			     const char **error_r)
{
	uint8_t gs2[SCRAM_MAX_MESSAGE];
	size_t len;

	/* RFC 5802 5.1 (c=): base64 of the gs2-header, followed by the
	   channel binding data only for "p=", which we refuse earlier. */
	if (final->channel_binding.len >
		    sodium_base64_ENCODED_LEN(sizeof(gs2),
					      sodium_base64_VARIANT_ORIGINAL) ||
	    sodium_base642bin(gs2, sizeof(gs2),
			      (const char *) final->channel_binding.p,
			      final->channel_binding.len, NULL, &len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    !span_eq(span_make(gs2, len), first->gs2_header)) {
		*error_r = "channel-bindings-dont-match";
		return -1;
	}
	/* RFC 5802 5.1 (r=): the nonce from the server-first-message. */
	if (!span_eq(final->nonce, server_first_nonce)) {
		*error_r = "other-error";
		return -1;
	}
	return 0;
}

static void scram_append_b64(struct buf *out, const uint8_t *data, size_t len)
{
	size_t max =
		sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
	char *p = (char *)buf_reserve(out, max);

	sodium_bin2base64(p, max, data, len, sodium_base64_VARIANT_ORIGINAL);
	buf_commit(out, strlen(p));
}

void scram_build_server_first(struct buf *out, struct span client_nonce,
			      struct span server_nonce, const uint8_t *salt,
			      size_t salt_len, unsigned int iterations)
{
	/* RFC 5802 7: server-first-message = [reserved-mext ","] nonce ","
	   salt "," iteration-count ["," extensions] */
	buf_append_str(out, "r=");
	buf_append_span(out, client_nonce);
	buf_append_span(out, server_nonce);
	buf_append_str(out, ",s=");
	scram_append_b64(out, salt, salt_len);
	buf_printf(out, ",i=%u", iterations);
}

void scram_build_server_final(struct buf *out,
			      const uint8_t signature[SCRAM_KEY_LEN])
{
	/* RFC 5802 7: verifier = "v=" base64 */
	buf_append_str(out, "v=");
	scram_append_b64(out, signature, SCRAM_KEY_LEN);
}

void scram_server_nonce(char out[SCRAM_SERVER_NONCE_LEN + 1])
{
	uint8_t raw[SCRAM_SERVER_NONCE_BYTES];

	/* base64 uses no ','; 18 bytes make 24 characters without '='. */
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(out, SCRAM_SERVER_NONCE_LEN + 1, raw, sizeof(raw),
			  sodium_base64_VARIANT_ORIGINAL);
}

/* Unicode Zs other than U+0020 (RFC 8265 4.2.1: map to U+0020). */
static bool scram_is_non_ascii_space(uint32_t c)
{
	return c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
	       c == 0x202f || c == 0x205f || c == 0x3000;
}

/* RFC 8265 4.2.1 normalization rule: NFC, with ICU. Also refuses
   unassigned code points (RFC 8264 9.13). Appends to out; returns 0 or
   -1. */
static int scram_nfc(struct buf *out, struct span in)
{
	const UNormalizer2 *nfc;
	UErrorCode err = U_ZERO_ERROR;
	UChar *u16, *norm;
	int32_t len16, normlen, len8;
	int ret = -1;

	nfc = unorm2_getNFCInstance(&err);
	if (U_FAILURE(err) || in.len > INT32_MAX / 4)
		return -1;
	/* UTF-16 never needs more units than UTF-8 has bytes; NFC grows a
	   string at most threefold (Unicode UAX #15 9). */
	u16 = i_new(UChar, in.len + 1);
	norm = i_new(UChar, in.len * 3 + 1);
	u_strFromUTF8(u16, (int32_t)in.len + 1, &len16, (const char *)in.p,
		      (int32_t)in.len, &err);
	if (U_FAILURE(err))
		goto out;
	for (int32_t i = 0; i < len16;) {
		UChar32 c;

		U16_NEXT(u16, i, len16, c);
		if (u_charType(c) == U_UNASSIGNED)
			goto out;
	}
	normlen = unorm2_normalize(nfc, u16, len16, norm,
				   (int32_t)in.len * 3 + 1, &err);
	if (U_FAILURE(err))
		goto out;
	u_strToUTF8(NULL, 0, &len8, norm, normlen, &err);
	if (err != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(err))
		goto out;
	err = U_ZERO_ERROR;
	u_strToUTF8((char *)buf_reserve(out, (size_t)len8 + 1), len8 + 1, &len8,
		    norm, normlen, &err);
	if (U_FAILURE(err))
		goto out;
	buf_commit(out, (size_t)len8);
	ret = 0;
out:
	sodium_memzero(u16, sizeof(*u16) * (in.len + 1));
	sodium_memzero(norm, sizeof(*norm) * (in.len * 3 + 1));
	i_free(u16);
	i_free(norm);
	return ret;
}

int scram_saltprep(struct buf *out, struct span password)
{
	struct buf mapped = BUF_INIT;
	bool ascii = true;
	int ret = -1;

	if (password.len == 0)
		return -1;
	for (size_t i = 0; i < password.len;) {
		size_t n = scram_utf8_len(password.p + i, password.len - i);
		uint32_t c;

		if (n == 0)
			goto out;
		if (n == 1) {
			/* RFC 8265 4.2 / RFC 8264 9.12: controls are
			   disallowed. */
			if (password.p[i] < 0x20 || password.p[i] == 0x7f)
				goto out;
			buf_append_c(&mapped, password.p[i]);
			i++;
			continue;
		}
		ascii = false;
		c = password.p[i] & (0x7f >> n);
		for (size_t k = 1; k < n; k++)
			c = (c << 6) | (password.p[i + k] & 0x3f);
		if (c >= 0x80 && c <= 0x9f)
			goto out; /* C1 controls */
		/* RFC 8265 4.2.1 additional mapping rule */
		if (scram_is_non_ascii_space(c))
			buf_append_c(&mapped, ' ');
		else
			buf_append(&mapped, password.p + i, n);
		i += n;
	}
	/* ASCII is NFC already. */
	if (ascii) {
		buf_append_span(out, buf_span(&mapped));
		ret = 0;
	} else {
		ret = scram_nfc(out, buf_span(&mapped));
	}
out:
	buf_free_secure(&mapped);
	return ret;
}

void scram_salted_password(struct span password, const uint8_t *salt,
			   size_t salt_len, unsigned int iterations,
			   uint8_t out[SCRAM_KEY_LEN])
{
	/* RFC 5802 2.2: Hi(str, salt, i) is PBKDF2 (RFC 2898) with HMAC as
	   the PRF and dkLen the hash's output length. */
	if (PKCS5_PBKDF2_HMAC((const char *)password.p, (int)password.len, salt,
			      (int)salt_len, (int)iterations, EVP_sha256(),
			      SCRAM_KEY_LEN, out) != 1)
		i_panic("PKCS5_PBKDF2_HMAC failed");
}

static void scram_hmac(const uint8_t *key, size_t key_len, struct span data,
		       uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int len = SCRAM_KEY_LEN;

	if (HMAC(EVP_sha256(), key, (int)key_len, data.p, data.len, out,
		 &len) == NULL ||
	    len != SCRAM_KEY_LEN)
		i_panic("HMAC-SHA-256 failed");
}

void scram_secret_from_salted(const uint8_t salted[SCRAM_KEY_LEN],
			      struct scram_secret *secret_r)
{
	uint8_t client_key[SCRAM_KEY_LEN];

	/* RFC 5802 3: ClientKey, StoredKey, ServerKey */
	scram_hmac(salted, SCRAM_KEY_LEN, SPAN_LIT("Client Key"), client_key);
	SHA256(client_key, sizeof(client_key), secret_r->stored_key);
	scram_hmac(salted, SCRAM_KEY_LEN, SPAN_LIT("Server Key"),
		   secret_r->server_key);
	sodium_memzero(client_key, sizeof(client_key));
}

int scram_secret_from_password(struct span password, const uint8_t *salt,
			       size_t salt_len, unsigned int iterations,
			       struct scram_secret *secret_r)
{
	struct buf prepared = BUF_INIT;
	uint8_t salted[SCRAM_KEY_LEN];

	if (scram_saltprep(&prepared, password) < 0) {
		buf_free_secure(&prepared);
		return -1;
	}
	scram_salted_password(buf_span(&prepared), salt, salt_len, iterations,
			      salted);
	buf_free_secure(&prepared);
	scram_secret_from_salted(salted, secret_r);
	sodium_memzero(salted, sizeof(salted));
	return 0;
}

void scram_auth_message(struct buf *out, struct span client_first_bare,
			struct span server_first,
			struct span client_final_without_proof)
{
	buf_append_span(out, client_first_bare);
	buf_append_c(out, ',');
	buf_append_span(out, server_first);
	buf_append_c(out, ',');
	buf_append_span(out, client_final_without_proof);
}

bool scram_verify_proof(const uint8_t stored_key[SCRAM_KEY_LEN],
			struct span auth_message,
			const uint8_t proof[SCRAM_KEY_LEN])
{
	uint8_t signature[SCRAM_KEY_LEN], client_key[SCRAM_KEY_LEN];
	uint8_t check[SCRAM_KEY_LEN];
	bool ok;

	/* RFC 5802 3: ClientSignature := HMAC(StoredKey, AuthMessage);
	   ClientKey := ClientProof XOR ClientSignature; the server checks
	   H(ClientKey) against StoredKey. */
	scram_hmac(stored_key, SCRAM_KEY_LEN, auth_message, signature);
	for (unsigned int i = 0; i < SCRAM_KEY_LEN; i++)
		client_key[i] = proof[i] ^ signature[i];
	SHA256(client_key, sizeof(client_key), check);
	ok = CRYPTO_memcmp(check, stored_key, SCRAM_KEY_LEN) == 0;
	sodium_memzero(client_key, sizeof(client_key));
	sodium_memzero(signature, sizeof(signature));
	return ok;
}

void scram_server_signature(const uint8_t server_key[SCRAM_KEY_LEN],
			    struct span auth_message,
			    uint8_t signature_r[SCRAM_KEY_LEN])
{
	scram_hmac(server_key, SCRAM_KEY_LEN, auth_message, signature_r);
}

void scram_client_proof(const uint8_t salted[SCRAM_KEY_LEN],
			struct span auth_message,
			uint8_t proof_r[SCRAM_KEY_LEN])
{
	uint8_t client_key[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN];
	uint8_t signature[SCRAM_KEY_LEN];

	scram_hmac(salted, SCRAM_KEY_LEN, SPAN_LIT("Client Key"), client_key);
	SHA256(client_key, sizeof(client_key), stored);
	scram_hmac(stored, SCRAM_KEY_LEN, auth_message, signature);
	for (unsigned int i = 0; i < SCRAM_KEY_LEN; i++)
		proof_r[i] = client_key[i] ^ signature[i];
	sodium_memzero(client_key, sizeof(client_key));
}
