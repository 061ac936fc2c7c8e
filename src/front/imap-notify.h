#ifndef MARMOT_IMAP_NOTIFY_H
#define MARMOT_IMAP_NOTIFY_H
/* IMAP NOTIFY (RFC 5465): which events of which mailboxes a session
   wants to hear about without asking, and the reporting of them.

   The selected mailbox keeps the base protocol's reporting
   (imap_session_sync(): EXISTS, FETCH FLAGS, EXPUNGE/VANISHED); NOTIFY
   only decides when it may run (SELECTED at once, SELECTED-DELAYED with
   expunges held for a command, SELECTED NONE never). Other mailboxes are
   reported here: untagged STATUS for message events (RFC 5465 5.1-5.3)
   and LIST for mailbox events (5.4, 5.5), found from the store's change
   log (store_changes_since() over all mailboxes) and, for names and
   subscriptions, a snapshot of the mailbox list compared with the
   store's. */

#include "lib.h"
#include "imap-parser.h"

struct buf;
struct pool;
struct imap_session;
struct store_mailbox;

/* RFC 5465 5 event names, as bits. */
enum imap_notify_event {
	IMAP_NOTIFY_MESSAGE_NEW = 1u << 0,
	IMAP_NOTIFY_MESSAGE_EXPUNGE = 1u << 1,
	IMAP_NOTIFY_FLAG_CHANGE = 1u << 2,
	IMAP_NOTIFY_ANNOTATION_CHANGE = 1u << 3, /* accepted, never sent */
	IMAP_NOTIFY_MAILBOX_NAME = 1u << 4,
	IMAP_NOTIFY_SUBSCRIPTION_CHANGE = 1u << 5,
};
#define IMAP_NOTIFY_MESSAGE_EVENTS                               \
	(IMAP_NOTIFY_MESSAGE_NEW | IMAP_NOTIFY_MESSAGE_EXPUNGE | \
	 IMAP_NOTIFY_FLAG_CHANGE | IMAP_NOTIFY_ANNOTATION_CHANGE)
#define IMAP_NOTIFY_MAILBOX_EVENTS \
	(IMAP_NOTIFY_MAILBOX_NAME | IMAP_NOTIFY_SUBSCRIPTION_CHANGE)

/* RFC 5465 6 filter-mailboxes. */
enum imap_notify_filter {
	IMAP_NOTIFY_SELECTED,
	IMAP_NOTIFY_SELECTED_DELAYED,
	IMAP_NOTIFY_PERSONAL,
	IMAP_NOTIFY_INBOXES,
	IMAP_NOTIFY_SUBSCRIBED,
	IMAP_NOTIFY_SUBTREE,
	IMAP_NOTIFY_MAILBOXES,
};

struct imap_notify_group {
	enum imap_notify_filter filter;
	/* SUBTREE and MAILBOXES: UTF-8 names, "INBOX" normalised. */
	const char **mailboxes;
	unsigned int mailbox_count;
	unsigned int events; /* enum imap_notify_event; 0 = NONE */
	/* MessageNew's fetch attributes (the list), NULL if none; points
	   into the parsed command. */
	const struct imap_arg *fetch_att;
};

struct imap_notify_spec {
	bool none; /* NOTIFY NONE */
	bool status; /* NOTIFY SET STATUS */
	struct imap_notify_group *groups;
	unsigned int group_count;
};

enum imap_notify_parse_result {
	IMAP_NOTIFY_PARSE_OK = 0,
	IMAP_NOTIFY_PARSE_BAD = -1, /* tagged BAD with *error_r */
	/* An event this server does not support (RFC 5465 3, 5): tagged
	   NO [BADEVENT (IMAP_NOTIFY_SUPPORTED)]. */
	IMAP_NOTIFY_PARSE_BADEVENT = -2,
};
/* The events BADEVENT lists. */
#define IMAP_NOTIFY_SUPPORTED                                                \
	"MessageNew MessageExpunge FlagChange AnnotationChange MailboxName " \
	"SubscriptionChange"

/* Parses the arguments of NOTIFY (RFC 5465 8: "SET" [SP "STATUS"]
   *(SP event-group) / "NONE") into *spec_r (pool memory). Mailbox names
   are decoded from modified UTF-7 unless utf8. */
enum imap_notify_parse_result imap_notify_parse(struct pool *pool,
						const struct imap_arg *args,
						unsigned int count, bool utf8,
						struct imap_notify_spec *spec_r,
						const char **error_r);

/* The events spec asks for about a mailbox other than the selected one
   (union over the groups that match it). */
unsigned int imap_notify_spec_events(const struct imap_notify_spec *spec,
				     const char *name, bool subscribed);

/* For the selected mailbox: false when no SELECTED or SELECTED-DELAYED
   group was given (the base protocol's behaviour); else true with the
   group's events and whether it was SELECTED-DELAYED. */
bool imap_notify_spec_selected(const struct imap_notify_spec *spec,
			       unsigned int *events_r, bool *delayed_r);

/* A session's active NOTIFY state (session->notify). */
struct imap_notify;
void imap_notify_free(struct imap_notify **notify);
/* Writes the notifications of changes since the last call (STATUS and
   LIST for mailboxes other than the selected one). */
void imap_notify_report(struct imap_session *session, struct buf *out);
/* After "* N EXISTS" for the selected mailbox: the FETCH responses
   of its new messages (uids, ascending) when NOTIFY's MessageNew has
   fetch attributes (RFC 5465 5.2). */
void imap_notify_new_messages(struct imap_session *session, struct buf *out,
			      const uint32_t *uids, unsigned int count);

/* When the selected mailbox's changes would be reported. */
enum imap_notify_when {
	IMAP_NOTIFY_AT_COMMAND, /* at the end of a command */
	IMAP_NOTIFY_IN_IDLE, /* while IDLE runs */
	IMAP_NOTIFY_BETWEEN, /* no command is running */
};
/* Whether imap_session_sync() may run now for the selected mailbox;
   *allow_expunge_r (the caller's rule) is narrowed where NOTIFY holds
   expunges back (SELECTED-DELAYED, RFC 5465 6). */
bool imap_notify_selected_sync(const struct imap_session *session,
			       enum imap_notify_when when,
			       bool *allow_expunge_r);
/* What a command's end and IDLE's start and end report: the selected
   mailbox's changes where imap_notify_selected_sync() lets them (expunges
   if allow_expunge too), then NOTIFY's about other mailboxes. */
void imap_notify_sync_point(struct imap_session *session,
			    enum imap_notify_when when, bool allow_expunge,
			    struct buf *out);

#endif
