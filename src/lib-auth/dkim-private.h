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

/* The canonical bodies of one message, each made once when first
   needed. Zero-initialize; dkim_bodies_free() when done. */
struct dkim_bodies {
	struct buf body[2]; /* by enum dkim_canon */
	bool done[2];
};
const struct buf *dkim_bodies_get(struct dkim_bodies *bodies,
				  enum dkim_canon canon, struct span body);
void dkim_bodies_free(struct dkim_bodies *bodies);

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
   (for base64) when break_anywhere, else only before value (a tag; a
   leading SP of value then starts the continuation line). */
void dkim_fold_append(struct buf *out, size_t *col, struct span value,
		      bool break_anywhere);

/* Can fields be prepended to m (it has a header end and does not start
   with a continuation line)? Returns 0, or -1 (error_r static). */
int dkim_message_check_prepend(const struct dkim_message *m,
			       const char **error_r);
/* Builds a signature field "<head> a=...; c=relaxed/relaxed; d=...;
   s=...; [t=...;] h=...; bh=...; b=" over m (dkim.h's fixed field list,
   oversigned; with arc also each DKIM-Signature present, RFC 8617 4.1.2)
   and the digest to sign; head is e.g. "DKIM-Signature: v=1;". Returns 0,
   or -1 (error_r static) without From or with bad params. */
int dkim_sign_build(pool_t pool, const struct dkim_message *m, const char *head,
		    bool arc, const struct dkim_sign_params *params,
		    struct dkim_sign_request *req_r, const char **error_r);

/* For verifiers of DKIM-like fields (dkim-verify.c, arc.c). Each returns
   0, or -1 with error_r a static reason. */
/* RFC 6376 3.5 c= (default simple for an absent body part) */
int dkim_canon_parse(struct span s, enum dkim_canon *h_r, enum dkim_canon *b_r,
		     const char **error_r);
/* a=: rsa-sha256 or ed25519-sha256; rsa-sha1 refused (RFC 8301 3.1) */
int dkim_algorithm_parse(struct span a, enum dkim_key_type *type_r,
			 const char **error_r);
/* h=: the names (FWS removed) into names[DKIM_H_MAX] */
int dkim_h_parse(pool_t pool, struct span h, struct span *names,
		 unsigned int *count_r, const char **error_r);
/* The body hash of a canonical body, l= applied (has_l): -1 when l=
   exceeds it. *covered_all_r tells whether l= left nothing out. */
int dkim_body_hash(const struct buf *canon_body, bool has_l, uint64_t l,
		   uint8_t hash_r[32], bool *covered_all_r,
		   const char **error_r);
/* The digest of a signature field (raw, b= still in it) over m: the
   fields of names, then the field with b= emptied (RFC 6376 3.7). */
int dkim_header_digest(pool_t pool, const struct dkim_message *m,
		       enum dkim_canon canon, const struct span *names,
		       unsigned int count, const struct dkim_field *field,
		       uint8_t digest_r[32]);
/* Removes FWS (SP, HTAB, CR, LF) from s (a copy in pool). */
struct span dkim_strip_fws(pool_t pool, struct span s);
/* Parses a decimal (saturating at UINT64_MAX). Returns 0 or -1. */
int dkim_decimal_parse(struct span s, uint64_t *num_r);

#endif
