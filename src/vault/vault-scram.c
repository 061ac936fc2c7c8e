/* vault-scram.c - SCRAM-SHA-256 sessions in the vault (vault-scram.h).
   It owns the sessions between the two steps, each with copies of the
   messages it needs for the AuthMessage and of the account's secrets
   (wiped when the session ends). Security stance: the messages come from
   the front, which faces the network and may be compromised; they are
   bounded and parsed with lib-sasl before anything else; a user without
   secrets gets the same kind of reply and the same work as one with
   them; StoredKeys and ServerKeys never leave this process (the front
   gets only the server signature). */

#include "vault-scram.h"
#include "vault-auth.h"
#include "vault-throttle.h"
#include "directory.h"
#include "ioloop.h"
#include "log.h"
#include "mail-address.h"
#include "pool.h"
#include "scram.h"

#include <openssl/hmac.h>
#include <sodium.h>

#define VAULT_SCRAM_MAX_SECRETS (1 + VAULT_AUTH_MAX_APP_PASSWORDS)

struct vault_scram_session {
	struct vault_scram_session *prev, *next;
	uint32_t id;
	void *owner;
	uint64_t created_ms;

	/* The account when known and with secrets; else a stand-in. */
	bool known;
	bool zero_access;
	uint64_t account_id;
	uint64_t version;
	char *username, *service, *ip; /* for logs */

	char *gs2_header;
	char *client_first_bare;
	char *server_first;
	char *nonce; /* client nonce + server nonce */
	struct scram_secret *secrets;
	unsigned int secret_count;
};

struct vault_scram {
	struct ioloop *ioloop;
	struct directory *dir;
	unsigned int max_sessions;
	unsigned int ttl_msecs;
	/* Failed logins (vault-throttle.h): our own, or the vault's one
	   account shared with PLAIN (vault_scram_set_throttle()). */
	struct vault_throttle *throttle;
	struct vault_throttle *own_throttle;
	uint8_t fake_salt_key[VAULT_SCRAM_KEY_LEN];
	struct vault_scram_session *sessions;
	unsigned int session_count;
	pool_t pool; /* results: cleared at each call */
};

struct vault_scram *vault_scram_create(
	struct ioloop *ioloop, struct directory *dir,
	const struct vault_scram_settings *set,
	const uint8_t fake_salt_key[VAULT_SCRAM_KEY_LEN])
{
	struct vault_scram *scram = i_new(struct vault_scram, 1);

	scram->ioloop = ioloop;
	scram->dir = dir;
	scram->max_sessions = set->max_sessions > 0
				      ? set->max_sessions
				      : VAULT_SCRAM_DEFAULT_MAX_SESSIONS;
	scram->ttl_msecs = set->ttl_msecs > 0 ? set->ttl_msecs
					      : VAULT_SCRAM_DEFAULT_TTL_MSECS;
	{
		const struct vault_throttle_settings tset = {
			.max_per_ip =
				set->max_failures > 0
					? set->max_failures
					: VAULT_SCRAM_DEFAULT_MAX_FAILURES,
			.window_msecs =
				set->failure_window_msecs > 0
					? set->failure_window_msecs
					: VAULT_SCRAM_DEFAULT_FAILURE_WINDOW_MSECS,
		};

		scram->own_throttle = vault_throttle_create(&tset);
		scram->throttle = scram->own_throttle;
	}
	memcpy(scram->fake_salt_key, fake_salt_key, VAULT_SCRAM_KEY_LEN);
	scram->pool = pool_create("vault-scram", 512);
	return scram;
}

static void vault_scram_session_free(struct vault_scram *scram,
				     struct vault_scram_session *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		scram->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	i_assert(scram->session_count > 0);
	scram->session_count--;
	if (s->secrets != NULL) {
		sodium_memzero(s->secrets,
			       sizeof(*s->secrets) * s->secret_count);
		i_free(s->secrets);
	}
	i_free(s->username);
	i_free(s->service);
	i_free(s->ip);
	i_free(s->gs2_header);
	i_free(s->client_first_bare);
	i_free(s->server_first);
	i_free(s->nonce);
	i_free(s);
}

void vault_scram_destroy(struct vault_scram **_scram)
{
	struct vault_scram *scram = *_scram;

	*_scram = NULL;
	if (scram == NULL)
		return;
	while (scram->sessions != NULL)
		vault_scram_session_free(scram, scram->sessions);
	sodium_memzero(scram->fake_salt_key, sizeof(scram->fake_salt_key));
	vault_throttle_destroy(&scram->own_throttle);
	pool_unref(&scram->pool);
	i_free(scram);
}

unsigned int vault_scram_session_count(const struct vault_scram *scram)
{
	return scram->session_count;
}

void vault_scram_forget_owner(struct vault_scram *scram, void *owner)
{
	struct vault_scram_session *s, *next;

	for (s = scram->sessions; s != NULL; s = next) {
		next = s->next;
		if (s->owner == owner)
			vault_scram_session_free(scram, s);
	}
}

static bool vault_scram_expired(struct vault_scram *scram,
				const struct vault_scram_session *s,
				uint64_t now)
{
	return now - s->created_ms >= scram->ttl_msecs;
}

static void vault_scram_expire(struct vault_scram *scram)
{
	uint64_t now = ioloop_now_ms(scram->ioloop);
	struct vault_scram_session *s, *next;

	for (s = scram->sessions; s != NULL; s = next) {
		next = s->next;
		if (vault_scram_expired(scram, s, now))
			vault_scram_session_free(scram, s);
	}
}

void vault_scram_set_throttle(struct vault_scram *scram,
			      struct vault_throttle *throttle)
{
	scram->throttle = throttle != NULL ? throttle : scram->own_throttle;
}

/* The salt for a user without secrets: HMAC-SHA-256(key, name), cut. */
static void vault_scram_fake_salt(struct vault_scram *scram, const char *name,
				  uint8_t salt_r[SCRAM_SALT_LEN])
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned int len = sizeof(mac);

	if (HMAC(EVP_sha256(), scram->fake_salt_key,
		 sizeof(scram->fake_salt_key), (const uint8_t *)name,
		 strlen(name), mac, &len) == NULL)
		i_panic("HMAC-SHA-256 failed");
	memcpy(salt_r, mac, SCRAM_SALT_LEN);
}

static uint32_t vault_scram_new_id(struct vault_scram *scram)
{
	for (;;) {
		uint32_t id = randombytes_random();
		struct vault_scram_session *s;

		if (id == 0)
			continue;
		for (s = scram->sessions; s != NULL; s = s->next) {
			if (s->id == id)
				break;
		}
		if (s == NULL)
			return id;
	}
}

/* Fills the account part of a new session. Returns 0, -1 on a database
   error. */
static int vault_scram_load(struct vault_scram *scram,
			    struct vault_scram_session *s,
			    const char *normalized,
			    uint8_t salt_r[SCRAM_SALT_LEN],
			    unsigned int *iterations_r)
{
	struct directory_account account;
	struct directory_scram secrets;
	const char *error;
	int ret = 0;

	if (normalized != NULL) {
		ret = directory_account_lookup(scram->dir, normalized, &account,
					       &error);
	}
	if (ret >= 0 && (ret == 0 || account.zero_access)) {
		/* A secrets lookup as for a real account (id 0 has no
		   row), so that the time tells them apart less. */
		if (ret > 0) {
			s->zero_access = true;
			s->account_id = account.id;
		}
		ret = directory_scram_lookup(scram->dir, 0, &secrets, &error);
		if (ret > 0)
			ret = 0;
	} else if (ret > 0) {
		s->account_id = account.id;
		s->version = account.credential_version;
		ret = directory_scram_lookup(scram->dir, account.id, &secrets,
					     &error);
		if (ret > 0 && secrets.secret_count > 0) {
			s->known = true;
			memcpy(salt_r, secrets.salt, SCRAM_SALT_LEN);
			*iterations_r = secrets.iterations;
			/* The same bound as for PLAIN (vault-auth.h): the
			   password and the oldest app passwords. */
			s->secret_count =
				secrets.secret_count > VAULT_SCRAM_MAX_SECRETS
					? VAULT_SCRAM_MAX_SECRETS
					: secrets.secret_count;
			s->secrets =
				i_new(struct scram_secret, s->secret_count);
			memcpy(s->secrets, secrets.secrets,
			       sizeof(*s->secrets) * s->secret_count);
			sodium_memzero(secrets.secrets,
				       sizeof(*secrets.secrets) *
					       secrets.secret_count);
			return 0;
		}
		if (ret > 0) {
			/* A salt but no secret (only an app password made
			   before schema 3, or a password SCRAM cannot
			   prepare): answer with the real salt anyway. */
			memcpy(salt_r, secrets.salt, SCRAM_SALT_LEN);
			*iterations_r = secrets.iterations;
			return 0;
		}
	}
	if (ret < 0) {
		log_error(NULL, "scram.db_error", "error=%s",
			  log_value(0, error));
		return -1;
	}
	/* RFC 5802 5.1 (e=unknown-user) allows saying so, but only after
	   the whole exchange; we never do: a made-up, stable salt. */
	vault_scram_fake_salt(scram, s->username, salt_r);
	*iterations_r = SCRAM_DEFAULT_ITERATIONS;
	return 0;
}

static void vault_scram_result_init(struct vault_scram *scram,
				    struct vault_scram_result *result_r)
{
	pool_clear(scram->pool);
	memset(result_r, 0, sizeof(*result_r));
	result_r->result = AUTH_RESULT_FAILED;
	result_r->address = "";
	result_r->username = "";
	result_r->service = "";
	result_r->ip = "";
}

enum auth_result vault_scram_start(struct vault_scram *scram, void *owner,
				   const char *service, const char *ip,
				   const char *client_first,
				   uint32_t *session_id_r,
				   struct buf *server_first,
				   struct vault_scram_result *result_r)
{
	struct scram_client_first first;
	struct vault_scram_session *s;
	uint8_t salt[SCRAM_SALT_LEN];
	char nonce[SCRAM_SERVER_NONCE_LEN + 1];
	unsigned int iterations = SCRAM_DEFAULT_ITERATIONS;
	const char *normalized, *error;
	pool_t dir_pool = directory_pool(scram->dir);
	struct buf msg = BUF_INIT;
	int ret;

	vault_scram_result_init(scram, result_r);
	result_r->service = service;
	result_r->ip = ip;
	*session_id_r = 0;
	if (scram_parse_client_first(scram->pool, span_from_cstr(client_first),
				     &first, &error) < 0) {
		result_r->reason = error;
		return AUTH_RESULT_FAILED;
	}
	/* RFC 5802 5.1 a=: acting as another identity is not allowed (as
	   for PLAIN: no proxy logins). */
	normalized = mail_address_normalize(scram->pool, first.username, NULL,
					    NULL, &error);
	result_r->username = normalized != NULL ? normalized : first.username;
	if (first.authzid != NULL) {
		const char *authz = mail_address_normalize(
			scram->pool, first.authzid, NULL, NULL, &error);

		if (normalized == NULL || authz == NULL ||
		    strcmp(authz, normalized) != 0) {
			result_r->reason = "invalid-authzid";
			return AUTH_RESULT_FAILED;
		}
	}
	if (vault_throttle_blocked(scram->throttle, ip, result_r->username,
				   ioloop_now_ms(scram->ioloop),
				   &result_r->reason))
		return AUTH_RESULT_TEMPFAIL;
	if (scram->session_count >= scram->max_sessions)
		vault_scram_expire(scram);
	if (scram->session_count >= scram->max_sessions) {
		result_r->reason = "too_many_sessions";
		log_warning(NULL, "scram.overload", "sessions=%u",
			    scram->session_count);
		return AUTH_RESULT_TEMPFAIL;
	}

	s = i_new(struct vault_scram_session, 1);
	s->owner = owner;
	s->created_ms = ioloop_now_ms(scram->ioloop);
	s->username = i_strdup(result_r->username);
	s->service = i_strdup(service);
	s->ip = i_strdup(ip);
	s->next = scram->sessions;
	if (s->next != NULL)
		s->next->prev = s;
	scram->sessions = s;
	scram->session_count++;

	pool_clear(dir_pool);
	ret = vault_scram_load(scram, s, normalized, salt, &iterations);
	pool_clear(dir_pool);
	if (ret < 0) {
		vault_scram_session_free(scram, s);
		result_r->reason = "db_error";
		return AUTH_RESULT_TEMPFAIL;
	}
	s->id = vault_scram_new_id(scram);
	s->gs2_header = i_strndup(first.gs2_header.p, first.gs2_header.len);
	s->client_first_bare = i_strndup(first.bare.p, first.bare.len);
	scram_server_nonce(nonce);
	scram_build_server_first(&msg, first.client_nonce,
				 span_from_cstr(nonce), salt, sizeof(salt),
				 iterations);
	s->server_first = i_strdup(buf_cstr(&msg));
	/* "r=" c-nonce s-nonce "," ... */
	s->nonce = i_strndup(msg.data + 2,
			     first.client_nonce.len + SCRAM_SERVER_NONCE_LEN);
	buf_append_span(server_first, buf_span(&msg));
	buf_free(&msg);
	*session_id_r = s->id;
	result_r->result = AUTH_RESULT_OK;
	return AUTH_RESULT_OK;
}

static struct vault_scram_session *vault_scram_find(struct vault_scram *scram,
						    uint32_t id)
{
	for (struct vault_scram_session *s = scram->sessions; s != NULL;
	     s = s->next) {
		if (s->id == id)
			return s;
	}
	return NULL;
}

/* Checks the proof against every secret; returns the index of the
   matching one or -1. Without secrets, one check against a stand-in key
   keeps the work alike. */
static int vault_scram_match(const struct vault_scram_session *s,
			     struct span auth_message,
			     const uint8_t proof[SCRAM_KEY_LEN])
{
	static const uint8_t standin[SCRAM_KEY_LEN];
	int match = -1;

	if (s->secret_count == 0) {
		(void)scram_verify_proof(standin, auth_message, proof);
		return -1;
	}
	for (unsigned int i = 0; i < s->secret_count; i++) {
		if (scram_verify_proof(s->secrets[i].stored_key, auth_message,
				       proof) &&
		    match < 0)
			match = (int)i;
	}
	return match;
}

/* The account must still be the one the session started with. */
static enum auth_result vault_scram_recheck(struct vault_scram *scram,
					    struct vault_scram_session *s,
					    struct vault_scram_result *result_r)
{
	struct directory_account account;
	const char *error;
	int ret;

	pool_clear(directory_pool(scram->dir));
	ret = directory_account_lookup_id(scram->dir, s->account_id, &account,
					  &error);
	if (ret < 0) {
		log_error(NULL, "scram.db_error", "error=%s",
			  log_value(0, error));
		result_r->reason = "db_error";
		return AUTH_RESULT_TEMPFAIL;
	}
	if (ret == 0 || account.credential_version != s->version ||
	    strcmp(account.address, s->username) != 0) {
		result_r->reason = "changed";
		return AUTH_RESULT_FAILED;
	}
	result_r->account_id = account.id;
	result_r->address = p_strdup(scram->pool, account.address);
	if (account.disabled) {
		/* Only now, after a correct proof (ipc.h auth_result). */
		result_r->reason = "disabled";
		return AUTH_RESULT_DISABLED;
	}
	return AUTH_RESULT_OK;
}

void vault_scram_finish(struct vault_scram *scram, void *owner,
			uint32_t session_id, const char *client_final,
			struct buf *server_final,
			struct vault_scram_result *result_r)
{
	struct vault_scram_session *s;
	struct scram_client_first first;
	struct scram_client_final final;
	struct buf auth = BUF_INIT;
	uint8_t signature[SCRAM_KEY_LEN];
	const char *error;
	int match;

	vault_scram_result_init(scram, result_r);
	s = vault_scram_find(scram, session_id);
	if (s == NULL || s->owner != owner) {
		result_r->reason = "no_session";
		return;
	}
	result_r->username = p_strdup(scram->pool, s->username);
	result_r->service = p_strdup(scram->pool, s->service);
	result_r->ip = p_strdup(scram->pool, s->ip);
	if (vault_scram_expired(scram, s, ioloop_now_ms(scram->ioloop))) {
		result_r->reason = "expired";
		goto end;
	}
	if (scram_parse_client_final(span_from_cstr(client_final), &final,
				     &error) < 0) {
		result_r->reason = error;
		goto end;
	}
	memset(&first, 0, sizeof(first));
	first.gs2_header = span_from_cstr(s->gs2_header);
	if (scram_client_final_check(&first, &final, span_from_cstr(s->nonce),
				     &error) < 0) {
		result_r->reason = error;
		goto end;
	}
	/* RFC 5802 3: AuthMessage */
	scram_auth_message(&auth, span_from_cstr(s->client_first_bare),
			   span_from_cstr(s->server_first),
			   final.without_proof);
	match = vault_scram_match(s, buf_span(&auth), final.proof);
	if (match < 0) {
		result_r->reason = s->zero_access       ? "zero_access"
				   : s->known           ? "invalid-proof"
				   : s->account_id != 0 ? "no_secret"
							: "unknown_user";
	} else {
		result_r->result = vault_scram_recheck(scram, s, result_r);
		if (result_r->result == AUTH_RESULT_OK) {
			/* RFC 5802 3: ServerSignature */
			scram_server_signature(s->secrets[match].server_key,
					       buf_span(&auth), signature);
			scram_build_server_final(server_final, signature);
		} else if (result_r->result == AUTH_RESULT_FAILED) {
			result_r->account_id = 0;
			result_r->address = "";
		}
	}
end:
	/* Every failed finish counts against the IP and the name, whatever
	   the cause. */
	if (result_r->result == AUTH_RESULT_FAILED)
		vault_throttle_failure(scram->throttle, s->ip, s->username,
				       ioloop_now_ms(scram->ioloop));
	buf_free(&auth);
	vault_scram_session_free(scram, s);
}
