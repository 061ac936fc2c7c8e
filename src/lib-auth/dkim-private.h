#ifndef MARMOT_DKIM_PRIVATE_H
#define MARMOT_DKIM_PRIVATE_H
/* Internals of DKIM (dkim-canon.c, dkim-verify.c, dkim-sign.c) that ARC
   (arc.c) reuses: the message split into header fields and body, tag-list
   parsing (RFC 6376 3.2), canonicalization (3.4), header hashing in h=
   order (5.4.2), key records (3.6.1) and signature checks over a digest.
   Not for other callers: dkim.h is the interface. */

#include "dkim.h"
#include "buf.h"
#include "span.h"

/* Hard caps on untrusted input, checked before allocating. */
#define DKIM_TAGS_MAX 64
#define DKIM_H_MAX 128
#define DKIM_SIG_MAX 512 /* bytes of a decoded b= (4096-bit RSA) */

enum dkim_canon {
	DKIM_CANON_SIMPLE,
	DKIM_CANON_RELAXED,
};

struct dkim_field {
	struct span name; /* without the colon, as written */
	struct span raw; /* the whole field, without its final CRLF */
};

/* A message with every line ending as CRLF: bare LF is read as CRLF. */
struct dkim_message {
	struct span data; /* the normalized message (the input when it had
			     no bare LF, else a copy in the pool) */
	struct dkim_field *fields;
	unsigned int field_count;
	struct span body; /* after the empty line; empty without one */
	bool header_end; /* the empty line was there */
};

/* Splits msg into header fields and body. Lines without a colon in the
   header are kept as fields with an empty name (they match nothing). */
void dkim_message_parse(pool_t pool, const uint8_t *msg, size_t len,
			struct dkim_message *msg_r);

struct dkim_tag {
	struct span name;
	struct span value; /* FWS around it trimmed; inner FWS kept */
	/* The offset just after the '=' in the parsed text (b= removal). */
	size_t after_eq;
};

struct dkim_tag_list {
	struct dkim_tag tags[DKIM_TAGS_MAX];
	unsigned int count;
};

/* RFC 6376 3.2: tag-list = tag-spec *( ";" tag-spec ) [ ";" ]. Returns 0,
   or -1 (error_r static) on a syntax error, a duplicate tag or more than
   DKIM_TAGS_MAX tags. */
int dkim_tag_list_parse(struct span text, struct dkim_tag_list *list_r,
			const char **error_r);
/* The tag's value, or NULL when absent. */
const struct span *dkim_tag_find(const struct dkim_tag_list *list,
				 const char *name);

/* Base64 with FWS anywhere ignored (RFC 6376 2.11: "whitespace ... MUST
   be ignored"). Returns the decoded length, or -1 on a bad character,
   bad padding or when it would exceed max. */
ssize_t dkim_base64_decode(struct span in, uint8_t *out, size_t max);
/* Appends the base64 of data. */
void dkim_base64_encode(struct buf *out, const uint8_t *data, size_t len);

/* RFC 6376 3.4.2 / 3.4.1: appends the canonical form of one header field
   (raw: without its final CRLF), without a CRLF. */
void dkim_canon_header(struct buf *out, enum dkim_canon canon, struct span raw);
/* RFC 6376 3.4.3 / 3.4.4: appends the canonical body. */
void dkim_canon_body(struct buf *out, enum dkim_canon canon, struct span body);

/* The raw field with the value of its b= tag (everything from after
   "b=" up to the next ';' or the end, RFC 6376 3.5 "including all
   surrounding whitespace") removed. Returns 0, or -1 without a b= tag. */
int dkim_field_strip_b(pool_t pool, struct span raw, struct span *out_r);

/* RFC 6376 5.4.2: hashes (SHA-256 into ctx) the fields named in names
   (count of them), each chosen from the bottom up, a name once more
   than present contributing nothing, each canonicalized followed by
   CRLF. skip: a field never chosen (the signature being verified) or
   NULL. */
void dkim_hash_fields(EVP_MD_CTX *ctx, enum dkim_canon canon,
		      const struct dkim_message *msg, const struct span *names,
		      unsigned int count, const struct dkim_field *skip);
/* Canonicalizes (without CRLF) and hashes one field. */
void dkim_hash_field(EVP_MD_CTX *ctx, enum dkim_canon canon, struct span raw);

enum dkim_key_type {
	DKIM_KEY_RSA,
	DKIM_KEY_ED25519,
};

struct dkim_key {
	enum dkim_key_type type;
	EVP_PKEY *pkey; /* NULL when revoked; EVP_PKEY_free() it */
	bool revoked; /* empty p= (RFC 6376 3.6.1) */
	bool testing; /* t=y */
	bool strict; /* t=s: i= must be d= exactly */
	unsigned int bits; /* RSA modulus size */
};

/* RFC 6376 3.6.1 (with RFC 8463 4.2 for k=ed25519). Returns 0, or -1
   (error_r static) when the record is unusable: wrong v=, unknown k=,
   h= without sha256, s= without email or *, a p= that does not decode. A
   revoked key parses (revoked set). */
int dkim_key_parse(struct span record, struct dkim_key *key_r,
		   const char **error_r);

/* Verifies sig over the 32-byte SHA-256 digest of the signed data: RSA
   PKCS#1 v1.5 with the SHA-256 DigestInfo, or Ed25519 over the digest
   itself (RFC 8463 3). Returns true when it verifies. */
bool dkim_verify_digest(EVP_PKEY *pkey, enum dkim_key_type type,
			const uint8_t digest[32], const uint8_t *sig,
			size_t sig_len);

/* Is item (case-insensitive) in the colon-separated list (FWS around
   the items ignored)? */
bool dkim_colon_list_has(struct span list, struct span item);
/* Case-insensitive: is domain equal to parent or below it? */
bool dkim_domain_within(struct span domain, struct span parent);

/* Appends value folded so that no line exceeds 78 octets, *col being the
   current line length (updated); breaks as "\r\n " anywhere in value
   (for base64) when break_anywhere, else only before value (a tag). */
void dkim_fold_append(struct buf *out, size_t *col, struct span value,
		      bool break_anywhere);

#endif
