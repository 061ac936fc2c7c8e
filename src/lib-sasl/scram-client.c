/* scram-client.c - the client side of SCRAM-SHA-256 (scram-client.h). */

#include "lib.h"
#include "buf.h"
#include "scram-client.h"

#include <openssl/crypto.h>
#include <sodium.h>

void scram_client_init(struct scram_client *client, char cbind_flag,
		       const char *authzid, const char *username,
		       const char *nonce)
{
	i_assert(cbind_flag == 'n' || cbind_flag == 'y');
	memset(client, 0, sizeof(*client));
	client->cbind_flag = cbind_flag;
	/* RFC 5802 7: gs2-header client-first-message-bare */
	buf_append_str(&client->bare, "n=");
	scram_saslname_encode(&client->bare, username);
	buf_append_str(&client->bare, ",r=");
	buf_append_str(&client->bare, nonce);
	buf_append_c(&client->first, (uint8_t)cbind_flag);
	buf_append_c(&client->first, ',');
	if (authzid != NULL) {
		buf_append_str(&client->first, "a=");
		scram_saslname_encode(&client->first, authzid);
	}
	buf_append_c(&client->first, ',');
	buf_append_span(&client->first, buf_span(&client->bare));
}

void scram_client_deinit(struct scram_client *client)
{
	buf_free(&client->bare);
	buf_free(&client->first);
	buf_free(&client->final);
	buf_free(&client->auth);
	buf_free(&client->server_first);
	sodium_memzero(client->salted, sizeof(client->salted));
}

const char *scram_client_first_message(const struct scram_client *client)
{
	return buf_cstr(&client->first);
}

const char *scram_client_final_message(const struct scram_client *client)
{
	return buf_cstr(&client->final);
}

int scram_client_server_first(struct scram_client *client,
			      const char *server_first, struct span password,
			      const char **error_r)
{
	struct span rest, attr, client_nonce, gs2;
	uint8_t proof[SCRAM_KEY_LEN];
	uint64_t iterations;
	char *b64;
	size_t len, b64_len;

	buf_reset(&client->server_first);
	buf_append_str(&client->server_first, server_first);
	rest = buf_span(&client->server_first);
	/* r=<c-nonce><s-nonce>,s=<salt>,i=<count> (RFC 5802 7) */
	if (!span_split(rest, ',', &attr, &rest) || attr.len < 2 ||
	    attr.p[0] != 'r' || attr.p[1] != '=') {
		*error_r = "server-first-message without nonce";
		return -1;
	}
	client->nonce = span_skip(attr, 2);
	client_nonce = span_skip(
		buf_span(&client->bare),
		(size_t)span_find(buf_span(&client->bare), SPAN_LIT(",r=")) +
			3);
	if (client->nonce.len <= client_nonce.len ||
	    memcmp(client->nonce.p, client_nonce.p, client_nonce.len) != 0) {
		*error_r = "server nonce does not extend ours";
		return -1;
	}
	if (!span_split(rest, ',', &attr, &rest))
		rest = SPAN_EMPTY;
	if (attr.len < 2 || attr.p[0] != 's' || attr.p[1] != '=' ||
	    sodium_base642bin(client->salt, sizeof(client->salt),
			      (const char *)attr.p + 2, attr.len - 2, NULL,
			      &client->salt_len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    client->salt_len == 0) {
		*error_r = "bad salt";
		return -1;
	}
	/* extensions after i= are ignored (RFC 5802 5.1) */
	(void)span_split(rest, ',', &attr, &rest);
	if (attr.len < 2 || attr.p[0] != 'i' || attr.p[1] != '=' ||
	    span_to_u64(span_skip(attr, 2), SCRAM_MAX_ITERATIONS, &iterations) <
		    0 ||
	    iterations < SCRAM_MIN_ITERATIONS) {
		*error_r = "bad iteration count";
		return -1;
	}
	client->iterations = (unsigned int)iterations;

	/* client-final-message-without-proof: c=base64(gs2-header),r=nonce */
	gs2 = span_make(client->first.data,
			client->first.used - client->bare.used);
	b64_len = sodium_base64_encoded_len(gs2.len,
					    sodium_base64_VARIANT_ORIGINAL);
	b64 = i_malloc(b64_len);
	sodium_bin2base64(b64, b64_len, gs2.p, gs2.len,
			  sodium_base64_VARIANT_ORIGINAL);
	buf_reset(&client->final);
	buf_append_str(&client->final, "c=");
	buf_append_str(&client->final, b64);
	buf_append_str(&client->final, ",r=");
	buf_append_span(&client->final, client->nonce);
	i_free(b64);

	scram_salted_password(password, client->salt, client->salt_len,
			      client->iterations, client->salted);
	buf_reset(&client->auth);
	scram_auth_message(&client->auth, buf_span(&client->bare),
			   buf_span(&client->server_first),
			   buf_span(&client->final));
	scram_client_proof(client->salted, buf_span(&client->auth), proof);
	len = sodium_base64_encoded_len(sizeof(proof),
					sodium_base64_VARIANT_ORIGINAL);
	b64 = i_malloc(len);
	sodium_bin2base64(b64, len, proof, sizeof(proof),
			  sodium_base64_VARIANT_ORIGINAL);
	buf_append_str(&client->final, ",p=");
	buf_append_str(&client->final, b64);
	i_free(b64);
	return 0;
}

bool scram_client_verify_server_final(const struct scram_client *client,
				      const char *server_final)
{
	struct scram_secret secret;
	uint8_t sig[SCRAM_KEY_LEN];
	struct buf expected = BUF_INIT;
	bool ok;

	if (client->auth.used == 0)
		return false;
	scram_secret_from_salted(client->salted, &secret);
	scram_server_signature(secret.server_key, buf_span(&client->auth), sig);
	scram_build_server_final(&expected, sig);
	ok = strlen(server_final) == expected.used &&
	     CRYPTO_memcmp(server_final, expected.data, expected.used) == 0;
	buf_free(&expected);
	sodium_memzero(&secret, sizeof(secret));
	return ok;
}
