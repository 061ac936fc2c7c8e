/* mtasts.c - MTA-STS (RFC 8461) record and policy parsing, MX matching
   and the policy cache, see mtasts.h. Everything parsed here came from
   the network (DNS, HTTPS): lengths are bounded before copying and every
   malformed input is an error, never a crash. */

#include "lib.h"
#include "mtasts.h"
#include "buf.h"

#include <ctype.h>
#include <stdio.h>
#include <strings.h>

static bool mtasts_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

int mtasts_txt_parse(const char *text, size_t len, char id_r[MTASTS_ID_MAX + 1],
		     const char **error_r)
{
	size_t pos = 0;
	bool first = true, have_id = false;

	/* RFC 8461 3.1: sts-text-record = sts-version 1*(sts-sep sts-field)
	   [sts-sep]; sts-version = %s"v=STSv1"; sts-sep = *WSP ";" *WSP. */
	while (pos < len) {
		size_t start, end, eq;

		while (pos < len && mtasts_is_wsp(text[pos]))
			pos++;
		start = pos;
		while (pos < len && text[pos] != ';')
			pos++;
		end = pos;
		if (pos < len)
			pos++; /* ';' */
		while (end > start && mtasts_is_wsp(text[end - 1]))
			end--;
		if (first) {
			if (end - start != 7 ||
			    memcmp(text + start, "v=STSv1", 7) != 0) {
				*error_r = "not an STSv1 record";
				return -1;
			}
			first = false;
			continue;
		}
		if (end == start) {
			if (pos >= len)
				break; /* the optional final separator */
			*error_r = "empty field";
			return -1;
		}
		for (eq = start; eq < end && text[eq] != '='; eq++)
			;
		if (eq == end || eq == start) {
			*error_r = "field without name=value";
			return -1;
		}
		if (eq - start == 2 && memcmp(text + start, "id", 2) == 0) {
			size_t idlen = end - eq - 1;

			/* sts-id = 1*32(ALPHA / DIGIT) */
			if (idlen == 0 || idlen > MTASTS_ID_MAX) {
				*error_r = "id is not 1 to 32 characters";
				return -1;
			}
			for (size_t i = eq + 1; i < end; i++) {
				if (!isalnum((unsigned char)text[i])) {
					*error_r = "id is not alphanumeric";
					return -1;
				}
			}
			if (!have_id) {
				memcpy(id_r, text + eq + 1, idlen);
				id_r[idlen] = '\0';
				have_id = true;
			}
		}
		/* Other sts-ext fields are ignored. */
	}
	if (first) {
		*error_r = "not an STSv1 record";
		return -1;
	}
	if (!have_id) {
		*error_r = "no id field";
		return -1;
	}
	return 0;
}

int mtasts_txt_find(const struct dns_txt *txt, unsigned int count,
		    const char *version, const char **error_r)
{
	size_t vlen = strlen(version);
	int found = -1;

	for (unsigned int i = 0; i < count; i++) {
		/* RFC 8461 3.1, RFC 8460 3: records not starting with the
		   version are not ours; more than one that does is an
		   error. */
		if (txt[i].len < vlen ||
		    memcmp(txt[i].text, version, vlen) != 0)
			continue;
		if (found >= 0) {
			*error_r = "several TXT records of the version";
			return -2;
		}
		found = (int)i;
	}
	return found;
}

int mtasts_txt_select(const struct dns_txt *txt, unsigned int count,
		      char id_r[MTASTS_ID_MAX + 1], const char **error_r)
{
	int found = mtasts_txt_find(txt, count, "v=STSv1", error_r);

	if (found < 0)
		return found == -1 ? 0 : -1;
	if (mtasts_txt_parse(txt[found].text, txt[found].len, id_r, error_r) <
	    0)
		return -1;
	return 1;
}

/* A lowercase copy of an mx pattern without trailing dot, or NULL if it
   is not a domain name or "*." followed by one. */
static char *mtasts_mx_normalize(pool_t pool, const char *p, size_t len)
{
	char *s;
	const char *name;

	if (len > 0 && p[len - 1] == '.')
		len--;
	if (len == 0 || len > 255)
		return NULL;
	s = p_strndup(pool, p, len);
	for (size_t i = 0; i < len; i++)
		s[i] = (char)tolower((unsigned char)s[i]);
	/* RFC 8461 3.2: "*." wildcard only as the leftmost label. */
	name = strncmp(s, "*.", 2) == 0 ? s + 2 : s;
	if (strchr(name, '*') != NULL || !dns_name_is_valid(name))
		return NULL;
	return s;
}

/* Sets policy->mx to a pool copy of the count names in mx. */
static void mtasts_policy_set_mx(pool_t pool, struct mtasts_policy *policy,
				 const char *const *mx, unsigned int count)
{
	const char **copy = p_new(pool, const char *, count + 1);

	for (unsigned int i = 0; i < count; i++)
		copy[i] = p_strdup(pool, mx[i]);
	policy->mx = copy;
	policy->mx_count = count;
}

int mtasts_policy_parse(pool_t pool, const uint8_t *data, size_t len,
			struct mtasts_policy *policy_r, const char **error_r)
{
	const char *mx_list[MTASTS_MX_MAX];
	unsigned int mx_count = 0;
	const char *text = (const char *)data;
	size_t pos = 0;
	bool have_version = false, have_mode = false, have_max_age = false;

	memset(policy_r, 0, sizeof(*policy_r));
	if (len > MTASTS_POLICY_MAX_SIZE) {
		*error_r = "policy larger than 64 KiB";
		return -1;
	}
	/* RFC 8461 3.2: sts-policy-field *WSP separated by LF or CRLF;
	   field = key ":" *WSP value. */
	while (pos < len) {
		size_t start = pos, end, colon, v;
		const char *key;
		size_t klen, vlen;

		while (pos < len && data[pos] != '\n')
			pos++;
		end = pos;
		if (pos < len)
			pos++;
		if (end > start && text[end - 1] == '\r')
			end--;
		while (end > start && mtasts_is_wsp(text[end - 1]))
			end--;
		if (end == start)
			continue; /* tolerate empty lines */
		if (memchr(text + start, '\0', end - start) != NULL) {
			*error_r = "NUL in policy";
			return -1;
		}
		for (colon = start; colon < end && text[colon] != ':'; colon++)
			;
		if (colon == end || colon == start) {
			*error_r = "policy line without key: value";
			return -1;
		}
		key = text + start;
		klen = colon - start;
		for (v = colon + 1; v < end && mtasts_is_wsp(text[v]); v++)
			;
		vlen = end - v;
		if (klen == 7 && memcmp(key, "version", 7) == 0) {
			if (have_version)
				continue; /* first occurrence wins */
			if (vlen != 5 || memcmp(text + v, "STSv1", 5) != 0) {
				*error_r = "policy version is not STSv1";
				return -1;
			}
			have_version = true;
		} else if (klen == 4 && memcmp(key, "mode", 4) == 0) {
			char mode[16];

			if (have_mode)
				continue;
			if (vlen >= sizeof(mode)) {
				*error_r = "unknown policy mode";
				return -1;
			}
			memcpy(mode, text + v, vlen);
			mode[vlen] = '\0';
			if (mtasts_mode_parse(mode, &policy_r->mode) < 0) {
				*error_r = "unknown policy mode";
				return -1;
			}
			have_mode = true;
		} else if (klen == 7 && memcmp(key, "max_age", 7) == 0) {
			uint64_t n = 0;

			if (have_max_age)
				continue;
			/* max_age = 1*10DIGIT, at most 31557600 */
			if (vlen == 0 || vlen > 10) {
				*error_r = "bad max_age";
				return -1;
			}
			for (size_t i = v; i < end; i++) {
				if (text[i] < '0' || text[i] > '9') {
					*error_r = "bad max_age";
					return -1;
				}
				n = n * 10 + (uint64_t)(text[i] - '0');
			}
			if (n > MTASTS_MAX_AGE_LIMIT) {
				*error_r = "max_age above 31557600";
				return -1;
			}
			policy_r->max_age = (unsigned int)n;
			have_max_age = true;
		} else if (klen == 2 && memcmp(key, "mx", 2) == 0) {
			char *mx = mtasts_mx_normalize(pool, text + v, vlen);

			if (mx == NULL) {
				*error_r = "invalid mx pattern";
				return -1;
			}
			if (mx_count < MTASTS_MX_MAX)
				mx_list[mx_count++] = mx;
		}
		/* Other keys: RFC 8461 3.2 extension fields, ignored. */
	}
	if (!have_version) {
		*error_r = "policy has no version";
		return -1;
	}
	if (!have_mode) {
		*error_r = "policy has no mode";
		return -1;
	}
	if (!have_max_age) {
		*error_r = "policy has no max_age";
		return -1;
	}
	mtasts_policy_set_mx(pool, policy_r, mx_list, mx_count);
	if (policy_r->mode != MTASTS_MODE_NONE && policy_r->mx_count == 0) {
		*error_r = "policy has no mx";
		return -1;
	}
	return 0;
}

void mtasts_policy_copy(pool_t pool, struct mtasts_policy *dest,
			const struct mtasts_policy *src)
{
	*dest = *src;
	mtasts_policy_set_mx(pool, dest, src->mx, src->mx_count);
}

bool mtasts_mx_match(const char *pattern, const char *host)
{
	size_t plen = strlen(pattern), hlen = strlen(host);
	const char *dot;

	if (plen > 0 && pattern[plen - 1] == '.')
		plen--;
	if (hlen > 0 && host[hlen - 1] == '.')
		hlen--;
	if (plen >= 2 && pattern[0] == '*' && pattern[1] == '.') {
		/* RFC 8461 4.1: "*.example.com" matches "mx.example.com"
		   but neither "example.com" nor "a.mx.example.com". */
		dot = memchr(host, '.', hlen);
		if (dot == NULL || dot == host)
			return false;
		return (size_t)(host + hlen - dot) == plen - 1 &&
		       strncasecmp(dot, pattern + 1, plen - 1) == 0;
	}
	return plen == hlen && strncasecmp(pattern, host, hlen) == 0;
}

bool mtasts_policy_mx_allowed(const struct mtasts_policy *policy,
			      const char *host)
{
	for (unsigned int i = 0; i < policy->mx_count; i++) {
		if (mtasts_mx_match(policy->mx[i], host))
			return true;
	}
	return false;
}

/* ---- cache ---- */

struct mtasts_cache_entry {
	struct mtasts_cache_entry *next;
	pool_t pool;
	char *domain;
	char id[MTASTS_ID_MAX + 1];
	time_t fetched;
	struct mtasts_policy policy;
};

struct mtasts_cache {
	struct mtasts_cache_entry *head; /* newest first */
	unsigned int count;
};

struct mtasts_cache *mtasts_cache_create(void)
{
	return i_new(struct mtasts_cache, 1);
}

static void mtasts_entry_free(struct mtasts_cache_entry *e)
{
	pool_unref(&e->pool);
	i_free(e);
}

void mtasts_cache_destroy(struct mtasts_cache **_cache)
{
	struct mtasts_cache *cache = *_cache;
	struct mtasts_cache_entry *e, *next;

	if (cache == NULL)
		return;
	*_cache = NULL;
	for (e = cache->head; e != NULL; e = next) {
		next = e->next;
		mtasts_entry_free(e);
	}
	i_free(cache);
}

static struct mtasts_cache_entry **mtasts_cache_find(struct mtasts_cache *cache,
						     const char *domain)
{
	struct mtasts_cache_entry **p;

	for (p = &cache->head; *p != NULL; p = &(*p)->next) {
		if (strcasecmp((*p)->domain, domain) == 0)
			return p;
	}
	return p;
}

static void mtasts_cache_unlink(struct mtasts_cache *cache,
				struct mtasts_cache_entry **p)
{
	struct mtasts_cache_entry *e = *p;

	*p = e->next;
	cache->count--;
	mtasts_entry_free(e);
}

const struct mtasts_policy *mtasts_cache_lookup(struct mtasts_cache *cache,
						const char *domain, time_t now,
						const char **id_r)
{
	struct mtasts_cache_entry **p = mtasts_cache_find(cache, domain);

	if (*p == NULL)
		return NULL;
	/* RFC 8461 5.1: a cached policy is valid for max_age seconds
	   from when it was fetched. */
	if (now - (*p)->fetched >= (time_t)(*p)->policy.max_age) {
		mtasts_cache_unlink(cache, p);
		return NULL;
	}
	*id_r = (*p)->id;
	return &(*p)->policy;
}

void mtasts_cache_store(struct mtasts_cache *cache, const char *domain,
			const char *id, const struct mtasts_policy *policy,
			time_t now)
{
	struct mtasts_cache_entry **p = mtasts_cache_find(cache, domain);
	struct mtasts_cache_entry *e;

	if (*p != NULL)
		mtasts_cache_unlink(cache, p);
	if (cache->count >= MTASTS_CACHE_MAX) {
		/* Drop the oldest (the list's tail). */
		for (p = &cache->head; (*p)->next != NULL; p = &(*p)->next)
			;
		mtasts_cache_unlink(cache, p);
	}
	e = i_new(struct mtasts_cache_entry, 1);
	e->pool = pool_create("mta-sts policy", 512);
	e->domain = p_strdup(e->pool, domain);
	for (char *s = e->domain; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->fetched = now;
	mtasts_policy_copy(e->pool, &e->policy, policy);
	e->next = cache->head;
	cache->head = e;
	cache->count++;
}

bool mtasts_cache_touch(struct mtasts_cache *cache, const char *domain,
			time_t now)
{
	struct mtasts_cache_entry **p = mtasts_cache_find(cache, domain);

	if (*p == NULL)
		return false;
	(*p)->fetched = now;
	return true;
}

unsigned int mtasts_cache_count(const struct mtasts_cache *cache)
{
	return cache->count;
}

void mtasts_cache_write(const struct mtasts_cache *cache, struct buf *out)
{
	for (const struct mtasts_cache_entry *e = cache->head; e != NULL;
	     e = e->next) {
		buf_printf(out, "%s %s %lld %s %u ", e->domain, e->id,
			   (long long)e->fetched,
			   mtasts_mode_name(e->policy.mode), e->policy.max_age);
		for (unsigned int i = 0; i < e->policy.mx_count; i++)
			buf_printf(out, "%s%s", i > 0 ? "," : "",
				   e->policy.mx[i]);
		if (e->policy.mx_count == 0)
			buf_append_c(out, '-');
		buf_append_c(out, '\n');
	}
}

/* One line of mtasts_cache_write's format; 0 or -1. */
static int mtasts_cache_read_line(struct mtasts_cache *cache, char *line,
				  time_t now)
{
	char *fields[6], *save = NULL, *mx;
	struct mtasts_policy policy;
	const char *mx_list[MTASTS_MX_MAX];
	unsigned int mx_count = 0;
	char id[MTASTS_ID_MAX + 1], rec[64];
	const char *error;
	long long fetched;
	char *end;
	unsigned long max_age;
	pool_t pool;
	unsigned int n = 0;
	int ret = 0;

	for (char *t = strtok_r(line, " ", &save); t != NULL && n < 6;
	     t = strtok_r(NULL, " ", &save))
		fields[n++] = t;
	if (n != 6 || !dns_name_is_valid(fields[0]))
		return -1;
	if (strlen(fields[1]) > MTASTS_ID_MAX)
		return -1;
	/* The id is checked as the TXT record's would be. */
	snprintf(rec, sizeof(rec), "v=STSv1; id=%s", fields[1]);
	if (mtasts_txt_parse(rec, strlen(rec), id, &error) < 0)
		return -1;
	fetched = strtoll(fields[2], &end, 10);
	if (*end != '\0' || fetched > (long long)now)
		return -1;
	memset(&policy, 0, sizeof(policy));
	if (mtasts_mode_parse(fields[3], &policy.mode) < 0)
		return -1;
	max_age = strtoul(fields[4], &end, 10);
	if (*end != '\0' || max_age > MTASTS_MAX_AGE_LIMIT)
		return -1;
	policy.max_age = (unsigned int)max_age;
	if (now - (time_t)fetched >= (time_t)policy.max_age)
		return -1; /* expired */
	pool = pool_create("mta-sts read", 256);
	if (strcmp(fields[5], "-") != 0) {
		save = NULL;
		for (mx = strtok_r(fields[5], ",", &save); mx != NULL;
		     mx = strtok_r(NULL, ",", &save)) {
			char *m = mtasts_mx_normalize(pool, mx, strlen(mx));

			if (m == NULL) {
				ret = -1;
				break;
			}
			if (mx_count < MTASTS_MX_MAX)
				mx_list[mx_count++] = m;
		}
	}
	mtasts_policy_set_mx(pool, &policy, mx_list, mx_count);
	if (ret == 0 && policy.mode != MTASTS_MODE_NONE && policy.mx_count == 0)
		ret = -1;
	if (ret == 0)
		mtasts_cache_store(cache, fields[0], id, &policy,
				   (time_t)fetched);
	pool_unref(&pool);
	return ret;
}

unsigned int mtasts_cache_read(struct mtasts_cache *cache, const char *text,
			       size_t len, time_t now)
{
	unsigned int added = 0;
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl == NULL ? len : (size_t)(nl - text);

		if (memchr(text + pos, '\0', end - pos) == NULL) {
			char *line = i_strndup(text + pos, end - pos);

			if (mtasts_cache_read_line(cache, line, now) == 0)
				added++;
			i_free(line);
		}
		pos = end + 1;
	}
	return added;
}
