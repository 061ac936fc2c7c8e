/* mtasts-policy.c - the text and id of our own MTA-STS policy (RFC 8461
   3.1, 3.2). I/O-free; see mtasts-policy.h. */

#include "mtasts-policy.h"
#include "buf.h"
#include "dns.h"
#include "settings.h"

#include <openssl/evp.h>
#include <string.h>

int mtasts_mode_parse(const char *str, enum mtasts_mode *mode_r)
{
	/* RFC 8461 3.2: sts-policy-mode-value = "testing" / "enforce" /
	   "none" */
	if (strcmp(str, "none") == 0)
		*mode_r = MTASTS_MODE_NONE;
	else if (strcmp(str, "testing") == 0)
		*mode_r = MTASTS_MODE_TESTING;
	else if (strcmp(str, "enforce") == 0)
		*mode_r = MTASTS_MODE_ENFORCE;
	else
		return -1;
	return 0;
}

const char *mtasts_mode_name(enum mtasts_mode mode)
{
	switch (mode) {
	case MTASTS_MODE_NONE:
		return "none";
	case MTASTS_MODE_TESTING:
		return "testing";
	case MTASTS_MODE_ENFORCE:
		return "enforce";
	}
	i_unreached();
}

static bool mx_pattern_is_valid(const char *mx)
{
	/* RFC 8461 3.2: sts-policy-mx-value = ["*."] Domain; the wildcard
	   covers exactly one leftmost label (4.1). */
	if (strncmp(mx, "*.", 2) == 0)
		mx += 2;
	if (*mx == '\0' || mx[strlen(mx) - 1] == '.')
		return false;
	return dns_name_is_valid(mx) && strchr(mx, '_') == NULL &&
	       strchr(mx, '.') != NULL;
}

int mtasts_policy_format(pool_t pool, const struct mtasts_policy *policy,
			 const char **text_r, const char **error_r)
{
	struct buf out = BUF_INIT;

	if (policy->max_age == 0 || policy->max_age > MTASTS_MAX_AGE_LIMIT) {
		/* RFC 8461 3.2: max_age "up to 31557600" */
		*error_r = "MTA-STS max_age must be 1..31557600 seconds";
		return -1;
	}
	if (policy->mode != MTASTS_MODE_NONE && policy->mx_count == 0) {
		/* RFC 8461 3.2: "mx" is required; a policy with no MX
		   would make enforcing senders refuse every host. */
		*error_r = "MTA-STS policy needs at least one mx host";
		return -1;
	}
	for (unsigned int i = 0; i < policy->mx_count; i++) {
		if (!mx_pattern_is_valid(policy->mx[i])) {
			*error_r = p_strdup_printf(
				pool, "invalid MTA-STS mx host: %s",
				policy->mx[i]);
			return -1;
		}
	}

	/* RFC 8461 3.2: CRLF-separated key/value pairs, "version" first. */
	buf_append_str(&out, "version: STSv1\r\n");
	buf_printf(&out, "mode: %s\r\n", mtasts_mode_name(policy->mode));
	for (unsigned int i = 0; i < policy->mx_count; i++)
		buf_printf(&out, "mx: %s\r\n", policy->mx[i]);
	buf_printf(&out, "max_age: %u\r\n", policy->max_age);
	*text_r = p_strdup(pool, buf_cstr(&out));
	buf_free(&out);
	return 0;
}

const char *mtasts_policy_id(pool_t pool, const char *text)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	char *id;

	if (EVP_Digest(text, strlen(text), md, &md_len, EVP_sha256(), NULL) !=
		    1 ||
	    md_len < 16)
		i_panic("mtasts_policy_id: SHA-256 failed");
	/* RFC 8461 3.1: sts-id = 1*32(ALPHA / DIGIT); 16 bytes in hex are
	   exactly 32 digits. */
	id = p_malloc(pool, 33);
	for (unsigned int i = 0; i < 16; i++) {
		id[i * 2] = hex[md[i] >> 4];
		id[i * 2 + 1] = hex[md[i] & 0x0f];
	}
	id[32] = '\0';
	return id;
}

const char *mtasts_txt_record(pool_t pool, const char *id)
{
	/* RFC 8461 3.1: "v=STSv1" first, then "id" */
	return p_strdup_printf(pool, "v=STSv1; id=%s", id);
}

int mtasts_policy_ours(pool_t pool, const struct marmot_settings *set,
		       const char **text_r, const char **id_r,
		       const char **error_r)
{
	const char *mx[1] = { set->hostname };
	struct mtasts_policy policy = {
		.mx = mx,
		.mx_count = 1,
		.max_age = set->mta_sts_max_age,
	};

	if (mtasts_mode_parse(set->mta_sts_mode, &policy.mode) < 0) {
		*error_r = "invalid mta_sts_mode";
		return -1;
	}
	if (mtasts_policy_format(pool, &policy, text_r, error_r) < 0)
		return -1;
	*id_r = mtasts_policy_id(pool, *text_r);
	return 0;
}
