/* cli-dkim.c - the DKIM key commands of the `marmot` CLI: `dkim generate`
   (first keys of a domain that has none), `dkim list`, `dkim rotate` (a new
   pending pair, to be published before it signs), `dkim activate`
   (pending -> active, active -> retiring for CLI_DKIM_OVERLAP_SECS) and
   `dkim expire` (deletes retiring keys past their overlap), plus the key
   generation of `marmot domain add`. Each domain signs with two keys, an
   Ed25519 one (RFC 8463) and an RSA-2048 one (RFC 8301), made here
   (dkim-key.c), wrapped under the master key (dkim-wrap.h) and stored in
   directory.db; the private halves never leave this process unwrapped
   and are freed (OpenSSL clears them) before it exits. Only the vault
   signs with them. Called from main.c's command table and from
   cli-admin.c (domain add). */

#include "lib.h"
#include "cli.h"
#include "buf.h"
#include "dkim.h"
#include "dkim-wrap.h"
#include "directory.h"

#include <stdio.h>
#include <time.h>

/* How long a replaced key stays published after `dkim activate`, so that
   mail signed just before the rotation still verifies when it is read
   (RFC 6376 3.6.1 leaves key lifetimes to the signer; M3AAWG's DKIM key
   rotation practice keeps the old selector a few days). */
#define CLI_DKIM_OVERLAP_SECS (7 * 24 * 3600)
/* TXT character-strings are at most 255 bytes (RFC 1035 3.3.14); an
   RSA-2048 record is split into several (RFC 6376 3.6.2.2 concatenates
   them). */
#define CLI_DKIM_TXT_CHUNK 255

struct cli_dkim_alg {
	enum dkim_algorithm alg;
	const char *name; /* directory algorithm */
	char suffix; /* of the selector */
};

/* Ed25519 first: the order in which the front signs and verifiers read. */
static const struct cli_dkim_alg cli_dkim_algs[] = {
	{ DKIM_ALG_ED25519_SHA256, "ed25519", 'e' },
	{ DKIM_ALG_RSA_SHA256, "rsa", 'r' },
};
#define CLI_DKIM_ALG_COUNT N_ELEMENTS(cli_dkim_algs)

/* Appends the zone-file line of one key record. */
static void cli_dkim_format_record(struct buf *out, const char *domain,
				   const char *selector, const char *record)
{
	size_t len = strlen(record);

	buf_printf(out, "%s._domainkey.%s. IN TXT ", selector, domain);
	if (len <= CLI_DKIM_TXT_CHUNK) {
		buf_printf(out, "\"%s\"\n", record);
		return;
	}
	buf_append_c(out, '(');
	for (size_t i = 0; i < len; i += CLI_DKIM_TXT_CHUNK) {
		int n = (int)(len - i < CLI_DKIM_TXT_CHUNK
				      ? len - i
				      : CLI_DKIM_TXT_CHUNK);
		buf_printf(out, " \"%.*s\"", n, record + i);
	}
	buf_append_str(out, " )\n");
}

/* A free selector pair for domain: m<yyyymm>e / m<yyyymm>r, then
   m<yyyymm>be / m<yyyymm>br ... when this month's are taken. Returns the
   common prefix, or NULL (error printed). */
static const char *cli_dkim_selector_prefix(struct cli_context *ctx,
					    const char *domain)
{
	time_t now = time(NULL);
	const char *error, *prefix;
	struct tm tm;
	char month[16];
	int ret;

	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(month, sizeof(month), "m%Y%m", &tm) == 0)
		i_panic("cannot format the current month");
	for (char letter = 'a'; letter <= 'z'; letter++) {
		bool taken = false;

		prefix = letter == 'a' ? p_strdup(ctx->pool, month)
				       : p_strdup_printf(ctx->pool, "%s%c",
							 month, letter);
		for (unsigned int i = 0; i < CLI_DKIM_ALG_COUNT; i++) {
			const char *sel =
				p_strdup_printf(ctx->pool, "%s%c", prefix,
						cli_dkim_algs[i].suffix);

			ret = directory_dkim_selector_exists(ctx->dir, domain,
							     sel, &error);
			if (ret < 0) {
				cli_error("%s", error);
				return NULL;
			}
			taken = taken || ret > 0;
		}
		if (!taken)
			return prefix;
	}
	cli_error("no free DKIM selector left this month for %s", domain);
	return NULL;
}

int cli_dkim_make_keys(struct cli_context *ctx, const char *domain,
		       const char *state, const char **records_r)
{
	struct buf records = BUF_INIT;
	struct directory_dkim_new_key keys[CLI_DKIM_ALG_COUNT];
	struct buf wrapped[CLI_DKIM_ALG_COUNT];
	const char *prefix, *error = NULL;
	int ret = 0;

	i_assert(ctx->have_master_key);
	prefix = cli_dkim_selector_prefix(ctx, domain);
	if (prefix == NULL)
		return -1;
	for (unsigned int i = 0; i < CLI_DKIM_ALG_COUNT; i++)
		buf_init(&wrapped[i], 0);
	for (unsigned int i = 0; i < CLI_DKIM_ALG_COUNT && ret == 0; i++) {
		const struct cli_dkim_alg *a = &cli_dkim_algs[i];
		EVP_PKEY *key = dkim_key_generate(a->alg);

		keys[i].selector =
			p_strdup_printf(ctx->pool, "%s%c", prefix, a->suffix);
		keys[i].algorithm = a->name;
		keys[i].public_record =
			dkim_key_dns_record(ctx->pool, key, a->alg);
		if (keys[i].public_record == NULL) {
			error = "cannot encode the public key";
			ret = -1;
		} else {
			ret = dkim_wrap_key(ctx->master_key, domain,
					    keys[i].selector, key, &wrapped[i],
					    &error);
		}
		EVP_PKEY_free(key);
		keys[i].wrapped = wrapped[i].data;
		keys[i].wrapped_len = wrapped[i].used;
	}
	if (ret == 0) {
		ret = directory_dkim_key_add(ctx->dir, domain, keys,
					     CLI_DKIM_ALG_COUNT, state, &error);
	}
	for (unsigned int i = 0; i < CLI_DKIM_ALG_COUNT; i++)
		buf_free(&wrapped[i]);
	if (ret < 0) {
		cli_error("cannot add DKIM keys to %s: %s", domain, error);
		return -1;
	}
	for (unsigned int i = 0; i < CLI_DKIM_ALG_COUNT; i++) {
		cli_dkim_format_record(&records, domain, keys[i].selector,
				       keys[i].public_record);
	}
	if (records_r != NULL) {
		*records_r = p_strdup(ctx->pool, buf_cstr(&records));
	} else {
		printf("DKIM keys of %s (%s); publish these DNS records:\n%s",
		       domain, state, buf_cstr(&records));
	}
	buf_free(&records);
	return 0;
}

/* Counts the domain's keys in state. Returns the count, or -1 (printed). */
static int cli_dkim_count(struct cli_context *ctx, const char *state,
			  const char **selectors_r)
{
	const struct directory_dkim_key *keys;
	unsigned int count, n = 0;
	const char *error;
	struct buf sel = BUF_INIT;

	if (directory_dkim_key_list(ctx->dir, ctx->domain, ctx->pool, &keys,
				    &count, &error) < 0) {
		cli_error("%s", error);
		return -1;
	}
	for (unsigned int i = 0; i < count; i++) {
		if (strcmp(keys[i].state, state) != 0)
			continue;
		buf_printf(&sel, "%s%s", n > 0 ? ", " : "", keys[i].selector);
		n++;
	}
	if (selectors_r != NULL)
		*selectors_r = p_strdup(ctx->pool, buf_cstr(&sel));
	buf_free(&sel);
	return (int)n;
}

int cli_dkim_generate_run(struct cli_context *ctx)
{
	const char *selectors;
	int ret;

	if ((ret = cli_check_domain_exists(ctx)) != 0)
		return ret;
	if ((ret = cli_dkim_count(ctx, "active", &selectors)) < 0)
		return CLI_EXIT_FAILURE;
	if (ret > 0) {
		cli_error("%s already has DKIM keys (%s); use: marmot dkim "
			  "rotate %s",
			  ctx->domain, selectors, ctx->domain);
		return CLI_EXIT_FAILURE;
	}
	return cli_dkim_make_keys(ctx, ctx->domain, "active", NULL) < 0
		       ? CLI_EXIT_FAILURE
		       : CLI_EXIT_OK;
}

static const char *cli_dkim_date(pool_t pool, int64_t unix_time)
{
	time_t t = (time_t)unix_time;
	struct tm tm;
	char date[32];

	if (unix_time == 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return "-";
	return p_strdup(pool, date);
}

int cli_dkim_list_run(struct cli_context *ctx)
{
	const struct directory_dkim_key *keys;
	unsigned int count;
	const char *error;
	int ret;

	if ((ret = cli_check_domain_exists(ctx)) != 0)
		return ret;
	if (directory_dkim_key_list(ctx->dir, ctx->domain, ctx->pool, &keys,
				    &count, &error) < 0) {
		cli_error("%s", error);
		return CLI_EXIT_FAILURE;
	}
	printf("domain\tselector\talgorithm\tstate\tcreated\tretire_after\n");
	for (unsigned int i = 0; i < count; i++) {
		printf("%s\t%s\t%s\t%s\t%s\t%s\n", keys[i].domain,
		       keys[i].selector, keys[i].algorithm, keys[i].state,
		       cli_dkim_date(ctx->pool, keys[i].created),
		       cli_dkim_date(ctx->pool, keys[i].retire_after));
	}
	return CLI_EXIT_OK;
}

int cli_dkim_rotate_run(struct cli_context *ctx)
{
	const char *selectors;
	int ret;

	if ((ret = cli_check_domain_exists(ctx)) != 0)
		return ret;
	if ((ret = cli_dkim_count(ctx, "pending", &selectors)) < 0)
		return CLI_EXIT_FAILURE;
	if (ret > 0) {
		cli_error("%s has pending DKIM keys (%s): publish them and "
			  "run: marmot dkim activate %s",
			  ctx->domain, selectors, ctx->domain);
		return CLI_EXIT_FAILURE;
	}
	if ((ret = cli_dkim_count(ctx, "active", NULL)) < 0)
		return CLI_EXIT_FAILURE;
	if (ret == 0) {
		cli_error("%s has no DKIM keys yet; use: marmot dkim "
			  "generate %s",
			  ctx->domain, ctx->domain);
		return CLI_EXIT_FAILURE;
	}
	if (cli_dkim_make_keys(ctx, ctx->domain, "pending", NULL) < 0)
		return CLI_EXIT_FAILURE;
	printf("the new keys sign once the records are published and you "
	       "run: marmot dkim activate %s\n",
	       ctx->domain);
	return CLI_EXIT_OK;
}

int cli_dkim_activate_run(struct cli_context *ctx)
{
	int64_t retire_after = (int64_t)time(NULL) + CLI_DKIM_OVERLAP_SECS;
	unsigned int count;
	const char *error;
	int ret;

	if ((ret = cli_check_domain_exists(ctx)) != 0)
		return ret;
	if (directory_dkim_key_activate(ctx->dir, ctx->domain, retire_after,
					&count, &error) < 0) {
		cli_error("cannot activate the DKIM keys of %s: %s",
			  ctx->domain, error);
		return CLI_EXIT_FAILURE;
	}
	printf("activated %u DKIM keys of %s; the old ones stay published "
	       "until %s (then: marmot dkim expire)\n",
	       count, ctx->domain, cli_dkim_date(ctx->pool, retire_after));
	return CLI_EXIT_OK;
}

int cli_dkim_expire_run(struct cli_context *ctx)
{
	unsigned int count;
	const char *error;
	int ret;

	if ((ret = cli_check_domain_exists(ctx)) != 0)
		return ret;
	if (directory_dkim_key_expire(ctx->dir, ctx->domain,
				      (int64_t)time(NULL), &count,
				      &error) < 0) {
		cli_error("%s", error);
		return CLI_EXIT_FAILURE;
	}
	printf("deleted %u expired DKIM keys (their DNS records may be "
	       "removed)\n",
	       count);
	return CLI_EXIT_OK;
}
