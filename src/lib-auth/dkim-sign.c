/* dkim-sign.c - the front's two halves of DKIM signing (RFC 6376 5):
   dkim_sign_prepare() canonicalizes (relaxed/relaxed), hashes the body
   and builds the DKIM-Signature field with an empty b=, then the digest
   of the signed header fields plus that field, for the vault to sign
   (dkim_sign_digest(), dkim-key.c); dkim_sign_finish() appends the
   signature, folded. No key material here. */

#include "dkim-private.h"

/* The fields signed when present. Each is listed once more than it
   occurs (RFC 6376 8.15), so one added in transit breaks the signature;
   List-* and Resent-* stay unsigned so lists and forwarders can add
   theirs. */
static const char *const dkim_sign_fields[] = {
	"from",         "to",           "cc",
	"subject",      "date",         "message-id",
	"reply-to",     "in-reply-to",  "references",
	"mime-version", "content-type", "content-transfer-encoding",
	"sender",
};

int dkim_sign_build(pool_t pool, const struct dkim_message *m, const char *head,
		    bool arc, const struct dkim_sign_params *params,
		    struct dkim_sign_request *req_r, const char **error_r)
{
	struct span names[DKIM_H_MAX];
	unsigned int name_count = 0;
	bool from = false;
	struct buf body, field;
	uint8_t bh[32];
	size_t col;
	EVP_MD_CTX *md;

	memset(req_r, 0, sizeof(*req_r));
	if (params->domain == NULL || params->selector == NULL ||
	    params->domain[0] == '\0' || params->selector[0] == '\0' ||
	    strpbrk(params->domain, "; \t\r\n") != NULL ||
	    strpbrk(params->selector, "; \t\r\n") != NULL) {
		*error_r = "bad domain or selector";
		return -1;
	}
	for (unsigned int i = 0; i <= N_ELEMENTS(dkim_sign_fields); i++) {
		/* the AMS also covers the DKIM signatures present (RFC 8617
		   4.1.2), each once */
		bool dkim = i == N_ELEMENTS(dkim_sign_fields);
		struct span name = dkim ? SPAN_LIT("dkim-signature")
					: span_from_cstr(dkim_sign_fields[i]);
		unsigned int present = 0;

		if (dkim && !arc)
			break;
		for (unsigned int k = 0; k < m->field_count; k++) {
			if (span_eq_ci(m->fields[k].name, name))
				present++;
		}
		if (i == 0 && present > 0)
			from = true;
		if (name_count + present + 1 > DKIM_H_MAX) {
			*error_r = "too many instances of a signed field";
			return -1;
		}
		for (unsigned int k = 0; k < present + (dkim ? 0 : 1); k++)
			names[name_count++] = name;
	}
	if (!from) {
		*error_r = "message has no From";
		return -1;
	}

	/* RFC 6376 3.7: the body hash */
	buf_init(&body, m->body.len + 8);
	dkim_canon_body(&body, DKIM_CANON_RELAXED, m->body);
	if (EVP_Digest(body.data, body.used, bh, NULL, EVP_sha256(), NULL) != 1)
		i_panic("dkim: SHA-256 failed");
	buf_free(&body);

	/* RFC 6376 3.5: the field, folded at 78 (RFC 5322 2.1.1) */
	buf_init(&field, 512);
	buf_printf(&field, "%s a=%s; c=relaxed/relaxed;", head,
		   params->algorithm == DKIM_ALG_ED25519_SHA256
			   ? "ed25519-sha256"
			   : "rsa-sha256");
	col = field.used;
	const char *tag = p_strdup_printf(pool, " d=%s;", params->domain);
	dkim_fold_append(&field, &col, span_from_cstr(tag), false);
	tag = p_strdup_printf(pool, " s=%s;", params->selector);
	dkim_fold_append(&field, &col, span_from_cstr(tag), false);
	if (params->timestamp > 0) {
		tag = p_strdup_printf(pool, " t=%lld;",
				      (long long)params->timestamp);
		dkim_fold_append(&field, &col, span_from_cstr(tag), false);
	}
	for (unsigned int i = 0; i < name_count; i++) {
		tag = p_strdup_printf(pool, "%s%.*s%s", i == 0 ? " h=" : "",
				      (int)names[i].len,
				      (const char *)names[i].p,
				      i + 1 == name_count ? ";" : ":");
		dkim_fold_append(&field, &col, span_from_cstr(tag), false);
	}
	struct buf b64 = BUF_INIT;
	buf_append_str(&b64, " bh=");
	dkim_base64_encode(&b64, bh, sizeof(bh));
	buf_append_c(&b64, ';');
	dkim_fold_append(&field, &col, buf_span(&b64), false);
	buf_free(&b64);
	dkim_fold_append(&field, &col, SPAN_LIT(" b="), false);

	/* RFC 6376 5.4: the digest the vault signs */
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		i_panic("dkim: SHA-256 failed");
	dkim_hash_fields(md, DKIM_CANON_RELAXED, m, names, name_count, NULL);
	dkim_hash_field(md, DKIM_CANON_RELAXED, buf_span(&field));
	if (EVP_DigestFinal_ex(md, req_r->digest, NULL) != 1)
		i_panic("dkim: SHA-256 failed");
	EVP_MD_CTX_free(md);
	req_r->field_nob = p_strndup(pool, field.data, field.used);
	buf_free(&field);
	return 0;
}

int dkim_sign_prepare(pool_t pool, const uint8_t *msg, size_t len,
		      const struct dkim_sign_params *params,
		      struct dkim_sign_request *req_r, const char **error_r)
{
	struct dkim_message m;

	memset(req_r, 0, sizeof(*req_r));
	dkim_message_parse(pool, msg, len, &m);
	if (dkim_message_check_prepend(&m, error_r) < 0)
		return -1;
	return dkim_sign_build(pool, &m, "DKIM-Signature: v=1;", false, params,
			       req_r, error_r);
}

int dkim_message_check_prepend(const struct dkim_message *m,
			       const char **error_r)
{
	if (!m->header_end) {
		*error_r = "message has no header end";
		return -1;
	}
	if (m->data.len > 0 && (m->data.p[0] == ' ' || m->data.p[0] == '\t')) {
		/* it would continue the field prepended to it */
		*error_r = "message starts with a continuation line";
		return -1;
	}
	return 0;
}

const char *dkim_sign_finish(pool_t pool, const struct dkim_sign_request *req,
			     const uint8_t *sig, size_t sig_len)
{
	struct buf out = BUF_INIT, b64 = BUF_INIT;
	const char *last_line, *result;
	size_t col;

	buf_append_str(&out, req->field_nob);
	last_line = strrchr(req->field_nob, '\n');
	col = last_line == NULL ? out.used : strlen(last_line + 1);
	dkim_base64_encode(&b64, sig, sig_len);
	/* the verifier drops everything after "b=" (RFC 6376 3.5), so the
	   folding inside the value does not change the digest */
	dkim_fold_append(&out, &col, buf_span(&b64), true);
	buf_append(&out, "\r\n", 2);
	result = p_strndup(pool, out.data, out.used);
	buf_free(&b64);
	buf_free(&out);
	return result;
}
