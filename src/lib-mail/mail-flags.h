#ifndef MARMOT_MAIL_FLAGS_H
#define MARMOT_MAIL_FLAGS_H
/* IMAP system flags (RFC 9051 2.3.2) as bits, for the mailbox formats
   (mbox.h, maildir.h) that lib-mail reads and writes. The values are
   those of enum store_flag in src/lib-store/store.h, so callers pass them
   through unchanged (cli-store.c checks this at compile time). */

enum mail_flag {
	MAIL_FLAG_SEEN = 0x01,
	MAIL_FLAG_ANSWERED = 0x02,
	MAIL_FLAG_FLAGGED = 0x04,
	MAIL_FLAG_DELETED = 0x08,
	MAIL_FLAG_DRAFT = 0x10,
};
#define MAIL_FLAGS_MASK 0x1fu

#endif
