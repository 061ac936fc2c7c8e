#ifndef MARMOT_SCRAM_CLIENT_H
#define MARMOT_SCRAM_CLIENT_H
/* The client side of SCRAM-SHA-256 (RFC 5802 3, 7) without I/O, on top of
   scram.h: builds the client-first and client-final messages and checks
   the server signature. The tests log in with it; a future outbound AUTH
   could too. Channel binding is never requested ("n" or "y"). */

#include "lib.h"
#include "buf.h"
#include "scram.h"

struct scram_client {
	struct buf bare; /* client-first-message-bare */
	struct buf first; /* client-first-message */
	struct buf final; /* client-final-message */
	struct buf auth; /* AuthMessage */
	char cbind_flag;
	uint8_t salted[SCRAM_KEY_LEN];
	uint8_t salt[64];
	size_t salt_len;
	unsigned int iterations;
	struct span nonce; /* into server_first */
	struct buf server_first;
};

/* cbind_flag is 'n' or 'y'; authzid may be NULL; nonce is the client
   nonce (printable, no ','), e.g. from scram_server_nonce(). */
void scram_client_init(struct scram_client *client, char cbind_flag,
		       const char *authzid, const char *username,
		       const char *nonce);
void scram_client_deinit(struct scram_client *client);
/* The client-first-message. */
const char *scram_client_first_message(const struct scram_client *client);
/* Reads the server-first-message (which must extend our nonce, carry a
   salt and an iteration count of at least SCRAM_MIN_ITERATIONS), then
   computes the proof with password (used as given: prepare it first) and
   builds the client-final-message. Returns 0, or -1 with *error_r set. */
int scram_client_server_first(struct scram_client *client,
			      const char *server_first, struct span password,
			      const char **error_r);
/* The client-final-message (after scram_client_server_first). */
const char *scram_client_final_message(const struct scram_client *client);
/* RFC 5802 3: true when server_final is "v=" and the ServerSignature we
   expect, compared in constant time. */
bool scram_client_verify_server_final(const struct scram_client *client,
				      const char *server_final);

#endif
