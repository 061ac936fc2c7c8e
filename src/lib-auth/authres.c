/* authres.c - Authentication-Results generation and removal of forged
   fields (RFC 8601; authres.h). */

#include "authres.h"
#include "auth-header.h"
#include "message-lex.h"

#include <stdio.h>

/* Reasons are bounded so that a field line stays far below 998 octets
   (RFC 5322 2.1.1). */
#define AUTHRES_MAX_COMMENT 200
#define AUTHRES_MAX_VALUE 400

/* RFC 2045 5.1 token characters. */
static bool is_token_char(uint8_t c)
{
	return c > 32 && c < 127 && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static bool is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (!is_token_char((uint8_t)*s))
			return false;
	}
	return true;
}

/* A run of dot-separated atoms (RFC 5322 3.2.3 dot-atom-text, ASCII). */
static bool is_dot_atom(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (i = 0; i < len; i++) {
		uint8_t c = (uint8_t)s[i];

		if (c == '.') {
			if (s[i + 1] == '.')
				return false;
		} else if (c >= 0x80 || !message_lex_is_atext(c)) {
			return false;
		}
	}
	return true;
}

/* RFC 8601 2.2 pvalue: [ [ local-part ] "@" ] domain-name, or value
   (token / quoted-string). */
static void append_pvalue(struct buf *out, const char *value)
{
	const char *at = strrchr(value, '@');
	size_t len = strlen(value), i;

	if (len > AUTHRES_MAX_VALUE)
		len = AUTHRES_MAX_VALUE;
	if (len == strlen(value)) {
		if (at == NULL && is_token(value)) {
			buf_append_str(out, value);
			return;
		}
		if (at != NULL &&
		    (at == value || is_dot_atom(value, (size_t)(at - value))) &&
		    is_dot_atom(at + 1, strlen(at + 1))) {
			buf_append_str(out, value);
			return;
		}
	}
	/* RFC 5322 3.2.4 quoted-string; CTLs dropped. */
	buf_append_c(out, '"');
	for (i = 0; i < len; i++) {
		uint8_t c = (uint8_t)value[i];

		if (c < 32 || c == 127)
			continue;
		if (c == '"' || c == '\\')
			buf_append_c(out, '\\');
		buf_append_c(out, c);
	}
	buf_append_c(out, '"');
}

/* " (text)" as an RFC 5322 3.2.2 comment. */
static void append_comment(struct buf *out, const char *text)
{
	size_t i;

	if (text == NULL || *text == '\0')
		return;
	buf_append_str(out, " (");
	for (i = 0; text[i] != '\0' && i < AUTHRES_MAX_COMMENT; i++) {
		uint8_t c = (uint8_t)text[i];

		if (c < 32 || c == 127)
			c = ' ';
		if (c == '(' || c == ')' || c == '\\')
			buf_append_c(out, '\\');
		buf_append_c(out, c);
	}
	buf_append_c(out, ')');
}

static void append_sep(struct buf *out)
{
	if (out->used > 0)
		buf_append_str(out, "; ");
}

static void append_spf(struct buf *out, const struct spf_outcome *spf,
		       const char *ptype)
{
	append_sep(out);
	/* RFC 8601 2.7.2 */
	buf_printf(out, "spf=%s", spf_result_name(spf->result));
	if (spf->result != SPF_PASS)
		append_comment(out, spf->reason);
	if (strcmp(ptype, "smtp.mailfrom") == 0 && spf->sender != NULL &&
	    *spf->sender != '\0') {
		buf_printf(out, " %s=", ptype);
		append_pvalue(out, spf->sender);
	} else if (spf->domain != NULL && *spf->domain != '\0') {
		buf_printf(out, " %s=", ptype);
		append_pvalue(out, spf->domain);
	}
}

static void append_dkim(struct buf *out, const struct dkim_verify_result *dkim)
{
	unsigned int i;

	if (dkim->count == 0) {
		append_sep(out);
		buf_append_str(out, "dkim=none");
		return;
	}
	for (i = 0; i < dkim->count; i++) {
		const struct dkim_signature_result *sig = &dkim->sigs[i];

		append_sep(out);
		/* RFC 8601 2.7.1 */
		buf_printf(out, "dkim=%s", dkim_result_name(sig->result));
		append_comment(out, sig->reason);
		if (sig->domain != NULL && *sig->domain != '\0') {
			buf_append_str(out, " header.d=");
			append_pvalue(out, sig->domain);
		}
		if (sig->selector != NULL && *sig->selector != '\0') {
			buf_append_str(out, " header.s=");
			append_pvalue(out, sig->selector);
		}
		if (sig->algorithm != NULL && *sig->algorithm != '\0') {
			buf_append_str(out, " header.a=");
			append_pvalue(out, sig->algorithm);
		}
		/* RFC 6008 2: header.b, a prefix of b= telling signatures
		   apart. */
		if (sig->b_prefix[0] != '\0') {
			char b[sizeof(sig->b_prefix) + 1];

			memcpy(b, sig->b_prefix, sizeof(sig->b_prefix));
			b[sizeof(sig->b_prefix)] = '\0';
			buf_append_str(out, " header.b=");
			append_pvalue(out, b);
		}
	}
}

static void append_dmarc(struct buf *out, const struct dmarc_outcome *dmarc)
{
	append_sep(out);
	/* RFC 7489 11.2 */
	buf_printf(out, "dmarc=%s", dmarc_result_name(dmarc->result));
	if (dmarc->record != NULL) {
		char text[128];

		(void)snprintf(text, sizeof(text), "p=%s dis=%s%s",
			       dmarc_policy_name(dmarc->policy),
			       dmarc_policy_name(dmarc->disposition),
			       dmarc->sampled_out ? " sampled-out" : "");
		if (dmarc->result == DMARC_RESULT_PASS ||
		    dmarc->reason == NULL) {
			append_comment(out, text);
		} else {
			char both[AUTHRES_MAX_COMMENT];

			(void)snprintf(both, sizeof(both), "%s; %s", text,
				       dmarc->reason);
			append_comment(out, both);
		}
	} else {
		append_comment(out, dmarc->reason);
	}
	if (dmarc->from_domain != NULL) {
		buf_append_str(out, " header.from=");
		append_pvalue(out, dmarc->from_domain);
	}
}

static void append_arc(struct buf *out, const struct arc_verify_result *arc)
{
	append_sep(out);
	/* RFC 8617 10.1 */
	buf_printf(out, "arc=%s", arc_chain_name(arc->cv));
	if (arc->cv == ARC_CHAIN_FAIL) {
		append_comment(out, arc->reason);
	} else if (arc->cv == ARC_CHAIN_PASS) {
		char text[32];

		(void)snprintf(text, sizeof(text), "i=%u", arc->instances);
		append_comment(out, text);
		buf_printf(out, " header.oldest-pass=%u", arc->oldest_pass);
	}
}

const char *authres_results(pool_t pool, const struct authres_input *input)
{
	struct buf out;
	const char *ret;

	buf_init(&out, 256);
	if (input->spf_mailfrom != NULL)
		append_spf(&out, input->spf_mailfrom, "smtp.mailfrom");
	if (input->spf_helo != NULL)
		append_spf(&out, input->spf_helo, "smtp.helo");
	if (input->dkim != NULL)
		append_dkim(&out, input->dkim);
	if (input->dmarc != NULL)
		append_dmarc(&out, input->dmarc);
	if (input->arc != NULL)
		append_arc(&out, input->arc);
	/* RFC 8601 2.2 no-result */
	ret = out.used == 0 ? p_strdup(pool, "none")
			    : p_strdup(pool, buf_cstr(&out));
	buf_free(&out);
	return ret;
}

const char *authres_field(pool_t pool, const char *authserv_id,
			  const char *results)
{
	struct buf out;
	const char *ret, *p;

	buf_init(&out, 256);
	buf_append_str(&out, "Authentication-Results: ");
	append_pvalue(&out, authserv_id);
	buf_append_c(&out, ';');
	if (strcmp(results, "none") == 0) {
		buf_append_str(&out, " none");
	} else {
		/* One resinfo per line, folded before it (RFC 5322
		   2.2.3). Comments and quoted strings never contain "; "
		   as a separator: they only come from append_*() above,
		   which keep ";" inside them, so split on "; " outside
		   them. */
		bool quoted = false;
		unsigned int depth = 0;

		buf_append_str(&out, "\r\n\t");
		for (p = results; *p != '\0'; p++) {
			if (*p == '\\' && p[1] != '\0' &&
			    (quoted || depth > 0)) {
				buf_append(&out, p, 2);
				p++;
				continue;
			}
			if (*p == '"' && depth == 0)
				quoted = !quoted;
			else if (!quoted && *p == '(')
				depth++;
			else if (!quoted && *p == ')' && depth > 0)
				depth--;
			if (!quoted && depth == 0 && *p == ';' && p[1] == ' ') {
				buf_append_str(&out, ";\r\n\t");
				p++;
				continue;
			}
			if ((uint8_t)*p < 32 || *p == 127)
				continue;
			buf_append_c(&out, (uint8_t)*p);
		}
	}
	buf_append_str(&out, "\r\n");
	ret = p_strdup(pool, buf_cstr(&out));
	buf_free(&out);
	return ret;
}

bool authres_parse_authserv_id(pool_t pool, struct span value,
			       const char **id_r)
{
	struct span s = value, token;
	struct buf q;

	/* RFC 8601 2.2: authres-header-field = "Authentication-Results:"
	   [CFWS] authserv-id ...; authserv-id = value (RFC 2045 token or
	   quoted-string). */
	message_lex_skip_cfws(&s);
	if (s.len > 0 && s.p[0] == '"') {
		buf_init(&q, 64);
		(void)message_lex_quoted(&s, &q);
		*id_r = p_strdup(pool, buf_cstr(&q));
		buf_free(&q);
		return **id_r != '\0';
	}
	if (!message_lex_token(&s, &token))
		return false;
	*id_r = p_strndup(pool, token.p, token.len);
	return true;
}

static bool field_is_ours(const struct auth_header_field *field,
			  const char *authserv_id)
{
	pool_t pool;
	const char *id;
	bool ours;

	if (!span_eq_ci(field->name, SPAN_LIT("Authentication-Results")))
		return false;
	pool = pool_create("authres", 256);
	ours = authres_parse_authserv_id(pool, field->value, &id) &&
	       strcasecmp(id, authserv_id) == 0;
	pool_unref(&pool);
	return ours;
}

unsigned int authres_remove_ours(const uint8_t *msg, size_t len,
				 const char *authserv_id, struct buf *out)
{
	struct auth_header_iter iter;
	struct auth_header_field field;
	unsigned int removed = 0;
	size_t end;

	auth_header_iter_init(&iter, msg, len);
	while (auth_header_iter_next(&iter, &field)) {
		/* RFC 8601 5: remove fields that claim our authserv-id. */
		if (field_is_ours(&field, authserv_id))
			removed++;
		else
			buf_append_span(out, field.raw);
	}
	end = auth_header_iter_offset(&iter, msg);
	buf_append(out, msg + end, len - end);
	return removed;
}
