#ifndef MARMOT_TLS_H
#define MARMOT_TLS_H
/* TLS contexts on OpenSSL 3. A context is reference-counted so that a
   certificate reload (SIGHUP) swaps in a new context for new connections
   while established ones keep the old one until they end. Server contexts
   allow TLS 1.2 and 1.3 with Mozilla's "intermediate" cipher list and set
   SSL_OP_IGNORE_UNEXPECTED_EOF off (a truncation is an error).
   Strings returned through error_r and by tls_last_error() live in
   thread-local buffers, valid until the next tls_* call in the thread. */

#include "lib.h"

struct tls_ctx;
typedef struct ssl_st SSL;

/* Loads a PEM certificate chain and private key. Returns NULL with *error_r
   set (file name and OpenSSL's reason) on failure. */
struct tls_ctx *tls_ctx_server_create(const char *cert_file,
				      const char *key_file,
				      const char **error_r);
/* A client context. verify=true checks the peer against the system trust
   store (and the host name given to stream_start_tls_client()). */
struct tls_ctx *tls_ctx_client_create(bool verify, const char **error_r);
/* A client context that verifies the peer against the CA certificates
   in ca_file (PEM), or against the system trust store when ca_file is
   NULL (MTA-STS, RFC 8461 4.2). */
struct tls_ctx *tls_ctx_client_create_ca(const char *ca_file,
					 const char **error_r);
/* A verifying client context for DANE (RFC 7672): OpenSSL's DANE support
   enabled, no trust store, no name checks for DANE-EE(3) matches. Each
   connection must get its TLSA records on the SSL object
   (SSL_dane_enable, SSL_dane_tlsa_add) before the handshake, through
   stream_start_tls_client_setup(). */
struct tls_ctx *tls_ctx_client_create_dane(const char **error_r);
/* ref/unref are atomic: one context may be shared by several event-loop
   threads. */
void tls_ctx_ref(struct tls_ctx *ctx);
void tls_ctx_unref(struct tls_ctx **ctx);
/* A new SSL object for one connection (used by stream.c). */
SSL *tls_ctx_new_ssl(struct tls_ctx *ctx);
bool tls_ctx_is_server(const struct tls_ctx *ctx);
/* True for a client context created with verify=true. */
bool tls_ctx_verifies(const struct tls_ctx *ctx);

/* Writes a self-signed certificate for hostname (EC P-256, 10 years, SAN =
   hostname) and its key (mode 0600). Used by `marmot init` until ACME. */
int tls_write_self_signed(const char *hostname, const char *cert_file,
			  const char *key_file, const char **error_r);

/* The last OpenSSL error queue entry as text, and clears the queue. */
const char *tls_last_error(void);

#endif
