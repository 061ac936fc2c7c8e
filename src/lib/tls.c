/* tls.c - OpenSSL 3 contexts for servers and clients, and the self-signed
   certificate that `marmot init` writes until ACME takes over. Owns the
   SSL_CTX and its reference count; the SSL objects it hands out belong to
   stream.c, which is its only caller besides the config loader and the CLI.
   Security stance: TLS 1.2 is the floor, TLS 1.2 suites are limited to
   ECDHE with AEAD ciphers, renegotiation is off, and an unexpected EOF stays
   an error (SSL_OP_IGNORE_UNEXPECTED_EOF is never set) so truncation is
   visible. Error strings live in thread-local buffers. */

#include "lib.h"
#include "tls.h"
#include "fsutil.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* Mozilla "intermediate" (v5.7) TLS 1.2 suites, ECDHE only: forward secret
   AEAD ciphers. TLS 1.3 keeps OpenSSL's default suites. */
#define TLS_CIPHERS_TLS12                                            \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

#define TLS_SELF_SIGNED_DAYS 3652 /* 10 years */

struct tls_ctx {
	SSL_CTX *ssl_ctx;
	/* atomic: event-loop threads share one context */
	atomic_int refcount;
	bool server;
};

static _Thread_local char tls_error_buf[256];
static _Thread_local char tls_message_buf[1024];

const char *tls_last_error(void)
{
	unsigned long err = ERR_peek_last_error();

	if (err == 0) {
		snprintf(tls_error_buf, sizeof(tls_error_buf), "unknown error");
	} else {
		ERR_error_string_n(err, tls_error_buf, sizeof(tls_error_buf));
	}
	ERR_clear_error();
	return tls_error_buf;
}

static const char *ATTR_FORMAT(1, 2) tls_msg(const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(tls_message_buf, sizeof(tls_message_buf), fmt, args);
	va_end(args);
	return tls_message_buf;
}

static int tls_ctx_init_common(SSL_CTX *ssl_ctx, const char **error_r)
{
	/* TLS 1.0 and 1.1 are deprecated (RFC 8996 2). */
	if (SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION) != 1) {
		*error_r = tls_msg("Can't set minimum TLS version: %s",
				   tls_last_error());
		return -1;
	}
	if (SSL_CTX_set_cipher_list(ssl_ctx, TLS_CIPHERS_TLS12) != 1) {
		*error_r =
			tls_msg("Can't set cipher list: %s", tls_last_error());
		return -1;
	}
	SSL_CTX_set_options(ssl_ctx,
			    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	/* Client preference: every offered suite is strong, and clients know
	   whether they have AES hardware (Mozilla intermediate, v5.x). */
	SSL_CTX_clear_options(ssl_ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
					       SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* stream.c retries SSL_write() with its output buffer, which may have
	   been reallocated and grown in the meantime. RELEASE_BUFFERS gives
	   back the ~34 KiB of record buffers while a connection is idle (as
	   nginx does): thousands of IMAP IDLE connections are mostly idle. */
	SSL_CTX_set_mode(ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
					  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
					  SSL_MODE_RELEASE_BUFFERS);
	return 0;
}

static struct tls_ctx *tls_ctx_alloc(SSL_CTX *ssl_ctx, bool server)
{
	struct tls_ctx *ctx = i_new(struct tls_ctx, 1);

	ctx->ssl_ctx = ssl_ctx;
	atomic_init(&ctx->refcount, 1);
	ctx->server = server;
	return ctx;
}

static int tls_check_readable(const char *path, const char *what,
			      const char **error_r)
{
	if (access(path, R_OK) < 0) {
		*error_r = tls_msg("Can't read %s %s: %s", what, path,
				   strerror(errno));
		return -1;
	}
	return 0;
}

struct tls_ctx *tls_ctx_server_create(const char *cert_file,
				      const char *key_file,
				      const char **error_r)
{
	SSL_CTX *ssl_ctx;

	ERR_clear_error();
	if (tls_check_readable(cert_file, "certificate", error_r) < 0 ||
	    tls_check_readable(key_file, "private key", error_r) < 0)
		return NULL;

	ssl_ctx = SSL_CTX_new(TLS_server_method());
	if (ssl_ctx == NULL) {
		*error_r =
			tls_msg("SSL_CTX_new() failed: %s", tls_last_error());
		return NULL;
	}
	if (tls_ctx_init_common(ssl_ctx, error_r) < 0) {
		SSL_CTX_free(ssl_ctx);
		return NULL;
	}
	/* No server-side session cache: resumption uses stateless tickets
	   (RFC 8446 4.6.1), and the cache kept every connection's session
	   in memory (up to 20,480 of them). */
	SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(ssl_ctx, cert_file) != 1) {
		*error_r = tls_msg("Can't load certificate chain %s: %s",
				   cert_file, tls_last_error());
		SSL_CTX_free(ssl_ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ssl_ctx, key_file, SSL_FILETYPE_PEM) !=
	    1) {
		*error_r = tls_msg("Can't load private key %s "
				   "(does it match certificate %s?): %s",
				   key_file, cert_file, tls_last_error());
		SSL_CTX_free(ssl_ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ssl_ctx) != 1) {
		*error_r = tls_msg("Private key %s does not match "
				   "certificate %s: %s",
				   key_file, cert_file, tls_last_error());
		SSL_CTX_free(ssl_ctx);
		return NULL;
	}
	return tls_ctx_alloc(ssl_ctx, true);
}

struct tls_ctx *tls_ctx_client_create(bool verify, const char **error_r)
{
	SSL_CTX *ssl_ctx;

	ERR_clear_error();
	ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (ssl_ctx == NULL) {
		*error_r =
			tls_msg("SSL_CTX_new() failed: %s", tls_last_error());
		return NULL;
	}
	if (tls_ctx_init_common(ssl_ctx, error_r) < 0) {
		SSL_CTX_free(ssl_ctx);
		return NULL;
	}
	if (verify) {
		if (SSL_CTX_set_default_verify_paths(ssl_ctx) != 1) {
			*error_r = tls_msg("Can't load the system trust "
					   "store: %s",
					   tls_last_error());
			SSL_CTX_free(ssl_ctx);
			return NULL;
		}
		SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, NULL);
	} else {
		/* Opportunistic TLS (RFC 7435 3): encrypt without
		   authenticating rather than send in plaintext. */
		SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
	}
	return tls_ctx_alloc(ssl_ctx, false);
}

struct tls_ctx *tls_ctx_client_create_ca(const char *ca_file,
					 const char **error_r)
{
	struct tls_ctx *ctx;

	if (ca_file == NULL)
		return tls_ctx_client_create(true, error_r);
	ctx = tls_ctx_client_create(false, error_r);
	if (ctx == NULL)
		return NULL;
	ERR_clear_error();
	if (SSL_CTX_load_verify_locations(ctx->ssl_ctx, ca_file, NULL) != 1) {
		*error_r = tls_msg("Can't load CA certificates %s: %s", ca_file,
				   tls_last_error());
		tls_ctx_unref(&ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

struct tls_ctx *tls_ctx_client_create_dane(const char **error_r)
{
	struct tls_ctx *ctx = tls_ctx_client_create(false, error_r);

	if (ctx == NULL)
		return NULL;
	ERR_clear_error();
	/* The trust store stays empty: with DANE-TA(2) and DANE-EE(3)
	   (RFC 7672 3.1.3) only the TLSA records authenticate. */
	if (SSL_CTX_dane_enable(ctx->ssl_ctx) <= 0) {
		*error_r = tls_msg("SSL_CTX_dane_enable() failed: %s",
				   tls_last_error());
		tls_ctx_unref(&ctx);
		return NULL;
	}
	/* RFC 7672 3.1.1: with DANE-EE(3) the name in the certificate is
	   not checked. */
	(void)SSL_CTX_dane_set_flags(ctx->ssl_ctx,
				     DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

void tls_ctx_ref(struct tls_ctx *ctx)
{
	int old = atomic_fetch_add(&ctx->refcount, 1);

	i_assert(old > 0);
}

void tls_ctx_unref(struct tls_ctx **_ctx)
{
	struct tls_ctx *ctx = *_ctx;
	int old;

	if (ctx == NULL)
		return;
	*_ctx = NULL;
	old = atomic_fetch_sub(&ctx->refcount, 1);
	i_assert(old > 0);
	if (old > 1)
		return;
	SSL_CTX_free(ctx->ssl_ctx);
	i_free(ctx);
}

SSL *tls_ctx_new_ssl(struct tls_ctx *ctx)
{
	/* The SSL object holds its own reference to the SSL_CTX, so a
	   reloaded context can be unreffed while connections still run. */
	return SSL_new(ctx->ssl_ctx);
}

bool tls_ctx_is_server(const struct tls_ctx *ctx)
{
	return ctx->server;
}

bool tls_ctx_verifies(const struct tls_ctx *ctx)
{
	return (SSL_CTX_get_verify_mode(ctx->ssl_ctx) & SSL_VERIFY_PEER) != 0;
}

/* Self-signed certificate */

static bool tls_hostname_is_valid(const char *hostname)
{
	size_t len = strlen(hostname);

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = hostname[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		      c == '*'))
			return false;
	}
	return true;
}

static int tls_add_ext(X509 *x509, int nid, const char *value)
{
	X509V3_CTX v3ctx;
	X509_EXTENSION *ext;
	int ret;

	X509V3_set_ctx_nodb(&v3ctx);
	X509V3_set_ctx(&v3ctx, x509, x509, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3ctx, nid, value);
	if (ext == NULL)
		return -1;
	ret = X509_add_ext(x509, ext, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(ext);
	return ret;
}

static int tls_add_san(X509 *x509, const char *hostname)
{
	GENERAL_NAMES *names = GENERAL_NAMES_new();
	GENERAL_NAME *name = GENERAL_NAME_new();
	ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
	int ret = -1;

	if (names == NULL || name == NULL || ia5 == NULL ||
	    ASN1_STRING_set(ia5, hostname, (int)strlen(hostname)) != 1) {
		GENERAL_NAME_free(name);
		ASN1_IA5STRING_free(ia5);
		GENERAL_NAMES_free(names);
		return -1;
	}
	/* Built as a structure, not a config string, so the host name
	   cannot inject further names. */
	GENERAL_NAME_set0_value(name, GEN_DNS, ia5);
	if (sk_GENERAL_NAME_push(names, name) <= 0) {
		GENERAL_NAME_free(name);
	} else if (X509_add1_ext_i2d(x509, NID_subject_alt_name, names, 0,
				     X509V3_ADD_DEFAULT) == 1) {
		ret = 0;
	}
	GENERAL_NAMES_free(names);
	return ret;
}

static int tls_set_random_serial(X509 *x509)
{
	unsigned char bytes[16];
	BIGNUM *bn;
	int ret = -1;

	if (RAND_bytes(bytes, sizeof(bytes)) != 1)
		return -1;
	/* RFC 5280 4.1.2.2: positive, at most 20 octets. */
	bytes[0] &= 0x7f;
	bytes[0] |= 0x01;
	bn = BN_bin2bn(bytes, sizeof(bytes), NULL);
	if (bn != NULL &&
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x509)) != NULL)
		ret = 0;
	BN_free(bn);
	return ret;
}

static X509 *tls_make_cert(EVP_PKEY *pkey, const char *hostname)
{
	X509 *x509 = X509_new();
	X509_NAME *name;

	if (x509 == NULL)
		return NULL;
	name = X509_get_subject_name(x509);
	/* RFC 5280 4.1.2.1: v3, because extensions follow. */
	if (X509_set_version(x509, X509_VERSION_3) != 1 ||
	    tls_set_random_serial(x509) < 0 ||
	    X509_gmtime_adj(X509_getm_notBefore(x509), -3600) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x509), TLS_SELF_SIGNED_DAYS, 0,
			     NULL) == NULL ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				       (const unsigned char *)hostname, -1, -1,
				       0) != 1 ||
	    X509_set_issuer_name(x509, name) != 1 ||
	    X509_set_pubkey(x509, pkey) != 1 ||
	    /* RFC 6125 6.4.4: clients match the SAN, not the CN. */
	    tls_add_san(x509, hostname) < 0 ||
	    tls_add_ext(x509, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    tls_add_ext(x509, NID_key_usage, "critical,digitalSignature") < 0 ||
	    tls_add_ext(x509, NID_ext_key_usage, "serverAuth") < 0 ||
	    tls_add_ext(x509, NID_subject_key_identifier, "hash") < 0 ||
	    X509_sign(x509, pkey, EVP_sha256()) == 0) {
		X509_free(x509);
		return NULL;
	}
	return x509;
}

/* Writes the BIO's contents to a new file (O_EXCL), fsyncs it. */
static int tls_write_bio_file(BIO *bio, const char *path, mode_t mode,
			      const char **error_r)
{
	char *data;
	long len = BIO_get_mem_data(bio, &data);
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		*error_r =
			tls_msg("open(%s) failed: %s", path, strerror(errno));
		return -1;
	}
	while (len > 0) {
		ssize_t n = write(fd, data, (size_t)len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*error_r = tls_msg("write(%s) failed: %s", path,
					   n < 0 ? strerror(errno)
						 : "short write");
			goto fail;
		}
		data += n;
		len -= n;
	}
	if (fsync(fd) < 0) {
		*error_r =
			tls_msg("fsync(%s) failed: %s", path, strerror(errno));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		*error_r =
			tls_msg("close(%s) failed: %s", path, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	(void)unlink(path);
	return -1;
}

int tls_write_self_signed(const char *hostname, const char *cert_file,
			  const char *key_file, const char **error_r)
{
	EVP_PKEY *pkey = NULL;
	X509 *x509 = NULL;
	BIO *key_bio = NULL, *cert_bio = NULL;
	int ret = -1;

	ERR_clear_error();
	if (!tls_hostname_is_valid(hostname)) {
		*error_r = tls_msg("Invalid host name for a certificate: %s",
				   hostname);
		return -1;
	}
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (pkey == NULL) {
		*error_r = tls_msg("EC key generation failed: %s",
				   tls_last_error());
		goto out;
	}
	x509 = tls_make_cert(pkey, hostname);
	if (x509 == NULL) {
		*error_r = tls_msg("Building the certificate failed: %s",
				   tls_last_error());
		goto out;
	}
	/* Secure heap memory for the key's PEM: wiped when freed. */
	key_bio = BIO_new(BIO_s_secmem());
	cert_bio = BIO_new(BIO_s_mem());
	if (key_bio == NULL || cert_bio == NULL ||
	    PEM_write_bio_PrivateKey(key_bio, pkey, NULL, NULL, 0, NULL,
				     NULL) != 1 ||
	    PEM_write_bio_X509(cert_bio, x509) != 1) {
		*error_r = tls_msg("PEM encoding failed: %s", tls_last_error());
		goto out;
	}
	if (tls_write_bio_file(key_bio, key_file, 0600, error_r) < 0)
		goto out;
	if (tls_write_bio_file(cert_bio, cert_file, 0644, error_r) < 0) {
		(void)unlink(key_file);
		goto out;
	}
	if (fsync_parent_dir(key_file) < 0 || fsync_parent_dir(cert_file) < 0) {
		*error_r = tls_msg("fsync of the directory of %s failed: %s",
				   key_file, strerror(errno));
		(void)unlink(key_file);
		(void)unlink(cert_file);
		goto out;
	}
	ret = 0;
out:
	BIO_free(key_bio);
	BIO_free(cert_bio);
	X509_free(x509);
	EVP_PKEY_free(pkey);
	return ret;
}
