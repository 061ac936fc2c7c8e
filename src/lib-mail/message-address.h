#ifndef MARMOT_MESSAGE_ADDRESS_H
#define MARMOT_MESSAGE_ADDRESS_H
/* Address-list parsing for header fields (RFC 5322 3.4), enough for IMAP
   ENVELOPE: display names, quoted strings, comments, groups, obsolete
   routes and phrases, all leniently. Never fails; syntax it cannot read
   still yields an entry, with "MISSING_MAILBOX" / "MISSING_DOMAIN" filling
   absent parts as Dovecot's ENVELOPE does.

   Groups (RFC 5322 3.4 group) appear as in IMAP (RFC 9051 7.5.2): a start
   entry with mailbox = group name and domain = NULL, then the members,
   then an end entry with mailbox = NULL and domain = NULL.

   Strings are raw header text (encoded-words are not decoded; use
   rfc2047_decode() for display). Used by imap-envelope.c. */

#include "lib.h"
#include "pool.h"
#include "span.h"

#define MESSAGE_ADDRESS_MISSING_MAILBOX "MISSING_MAILBOX"
#define MESSAGE_ADDRESS_MISSING_DOMAIN "MISSING_DOMAIN"

struct message_address {
	struct message_address *next;
	const char *name; /* display name, or comment; NULL if none */
	const char *route; /* obs-route "@a,@b", NULL if none */
	const char *mailbox; /* local part or group name; NULL at group end */
	const char *domain; /* NULL for group start and end */
	bool invalid; /* a part was missing or unreadable */
};

/* Parses an address-list. Returns the first entry (NULL for an empty
   list); at most max_addresses entries are returned. All memory comes
   from pool. */
struct message_address *message_address_parse(pool_t pool, struct span input,
					      unsigned int max_addresses);

#endif
