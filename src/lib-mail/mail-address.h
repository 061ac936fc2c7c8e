#ifndef MARMOT_MAIL_ADDRESS_H
#define MARMOT_MAIL_ADDRESS_H
/* Mailbox addresses as Marmot stores them: "local@domain".

   Validation for addresses that the directory holds (accounts, aliases,
   alias targets): the local part is a dot-atom (RFC 5322 3.4.1 / RFC 5321
   4.1.2) of atext, extended with UTF-8 (RFC 6531 3.3), at most 64 octets
   (RFC 5321 4.5.3.1.1); quoted local parts are refused for accounts. The
   domain is a host name of LDH labels (RFC 5321 4.1.2 Domain), each 1..63
   octets, at most 255 octets in all; U-labels are converted to A-labels
   with libidn2 (IDNA2008/TR46); no address literals, no trailing dot.

   Normalisation: the domain is lower-cased; the local part is lower-cased
   in ASCII (Marmot treats local parts case-insensitively, as almost every
   provider does; RFC 5321 2.4 allows the receiving host to decide). */

#include "lib.h"

struct pool;

/* Validates and normalises a domain. Returns the normalised A-label form
   allocated from pool, or NULL with *error_r set. */
char *mail_domain_normalize(struct pool *pool, const char *domain,
			    const char **error_r);
/* Validates and normalises "local@domain". local_r and domain_r (may be
   NULL) receive the normalised parts. Returns the normalised address, or
   NULL with *error_r set. */
char *mail_address_normalize(struct pool *pool, const char *address,
			     char **local_r, char **domain_r,
			     const char **error_r);
/* Splits a normalised local part at the first sub-address separator
   ('+'): "user+tag" -> "user". Returns false if there is no tag (or the
   part before it would be empty). */
bool mail_local_strip_tag(const char *local, size_t *base_len_r);

#endif
