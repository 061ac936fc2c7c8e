/* imap-notify.c - the NOTIFY command (RFC 5465 3) and the notifications
   it asks for about mailboxes other than the selected one (imap-notify.h).

   Threads: the loop thread only, like the session. */

#include "lib.h"
#include "buf.h"
#include "log.h"
#include "pool.h"
#include "store.h"
#include "imap-write.h"
#include "front-private.h"
#include "imap-session.h"
#include "imap-notify.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Bounds of one NOTIFY command (memory and the matching work of every
   later change): event groups, and mailbox names in one group. */
#define IMAP_NOTIFY_MAX_GROUPS 64
#define IMAP_NOTIFY_MAX_MAILBOXES 1000

/* ---- parsing (RFC 5465 8) ---- */

static const struct {
	const char *name;
	unsigned int event; /* 0: known, not supported (BADEVENT) */
} imap_notify_events[] = {
	{ "MessageNew", IMAP_NOTIFY_MESSAGE_NEW },
	{ "MessageExpunge", IMAP_NOTIFY_MESSAGE_EXPUNGE },
	{ "FlagChange", IMAP_NOTIFY_FLAG_CHANGE },
	{ "AnnotationChange", IMAP_NOTIFY_ANNOTATION_CHANGE },
	{ "MailboxName", IMAP_NOTIFY_MAILBOX_NAME },
	{ "SubscriptionChange", IMAP_NOTIFY_SUBSCRIPTION_CHANGE },
	/* RFC 5465 5.6, 5.7: need METADATA (RFC 5464), which we lack. */
	{ "MailboxMetadata", 0 },
	{ "ServerMetadata", 0 },
};

static const struct {
	const char *name;
	enum imap_notify_filter filter;
} imap_notify_filters[] = {
	{ "SELECTED", IMAP_NOTIFY_SELECTED },
	{ "SELECTED-DELAYED", IMAP_NOTIFY_SELECTED_DELAYED },
	{ "PERSONAL", IMAP_NOTIFY_PERSONAL },
	{ "INBOXES", IMAP_NOTIFY_INBOXES },
	{ "SUBSCRIBED", IMAP_NOTIFY_SUBSCRIBED },
	{ "SUBTREE", IMAP_NOTIFY_SUBTREE },
	{ "MAILBOXES", IMAP_NOTIFY_MAILBOXES },
};

/* one-or-more-mailbox = "(" mailbox *(SP mailbox) ")" / mailbox */
static int imap_notify_parse_mailboxes(struct pool *pool,
				       const struct imap_arg *arg, bool utf8,
				       struct imap_notify_group *group,
				       const char **error_r)
{
	const struct imap_arg *list;
	unsigned int n;

	if (!imap_arg_get_list(arg, &list, &n)) {
		list = arg;
		n = 1;
	}
	if (n == 0 || n > IMAP_NOTIFY_MAX_MAILBOXES) {
		*error_r = "Expected one or more mailboxes";
		return -1;
	}
	group->mailboxes = p_new(pool, const char *, n);
	for (unsigned int i = 0; i < n; i++) {
		char norm[STORE_MAILBOX_NAME_MAX + 1];
		const char *name, *reason;

		name = imap_mailbox_name_arg(pool, &list[i], utf8, error_r);
		if (name == NULL)
			return -1;
		/* "inbox/x" is "INBOX/x", as the store spells it. A name
		   the store could not hold matches nothing: RFC 5465 3
		   ignores names of mailboxes that do not exist. */
		group->mailboxes[i] =
			store_mailbox_name_normalize(name, norm, &reason) < 0
				? name
				: p_strdup(pool, norm);
	}
	group->mailbox_count = n;
	return 0;
}

/* events = ( "(" event *(SP event) ")" ) / "NONE" */
static enum imap_notify_parse_result imap_notify_parse_events(
	const struct imap_arg *arg, struct imap_notify_group *group,
	const char **error_r)
{
	const struct imap_arg *list, *atts;
	unsigned int n, natts, events = 0;
	bool badevent = false;
	bool selected = group->filter == IMAP_NOTIFY_SELECTED ||
			group->filter == IMAP_NOTIFY_SELECTED_DELAYED;

	if (imap_arg_atom_equals(arg, "NONE")) {
		group->events = 0;
		return IMAP_NOTIFY_PARSE_OK;
	}
	if (!imap_arg_get_list(arg, &list, &n) || n == 0) {
		*error_r = "Expected a list of events or NONE";
		return IMAP_NOTIFY_PARSE_BAD;
	}
	for (unsigned int i = 0; i < n; i++) {
		const char *atom;
		unsigned int j;

		if (!imap_arg_get_atom(&list[i], &atom)) {
			*error_r = "Expected an event name";
			return IMAP_NOTIFY_PARSE_BAD;
		}
		for (j = 0; j < N_ELEMENTS(imap_notify_events); j++) {
			if (strcasecmp(atom, imap_notify_events[j].name) == 0)
				break;
		}
		/* RFC 5465 3: an event the server does not support is
		   refused with NO [BADEVENT]; an unknown name (event-ext)
		   is one. */
		if (j == N_ELEMENTS(imap_notify_events) ||
		    imap_notify_events[j].event == 0) {
			badevent = true;
			continue;
		}
		events |= imap_notify_events[j].event;
		/* RFC 5465 5.2: MessageNew may carry fetch attributes; they
		   are sent for new messages of the selected mailbox (and
		   ignored for others, which get STATUS). */
		if (imap_notify_events[j].event == IMAP_NOTIFY_MESSAGE_NEW &&
		    i + 1 < n &&
		    imap_arg_get_list(&list[i + 1], &atts, &natts)) {
			if (natts == 0) {
				*error_r = "Empty fetch attribute list";
				return IMAP_NOTIFY_PARSE_BAD;
			}
			group->fetch_att = &list[++i];
		}
	}
	if (badevent)
		return IMAP_NOTIFY_PARSE_BADEVENT;
	/* RFC 5465 5: MessageNew and MessageExpunge go together, and
	   FlagChange or AnnotationChange need both. */
	if ((events & IMAP_NOTIFY_MESSAGE_EVENTS) != 0 &&
	    (events &
	     (IMAP_NOTIFY_MESSAGE_NEW | IMAP_NOTIFY_MESSAGE_EXPUNGE)) !=
		    (IMAP_NOTIFY_MESSAGE_NEW | IMAP_NOTIFY_MESSAGE_EXPUNGE)) {
		*error_r =
			"MessageNew and MessageExpunge must be given together";
		return IMAP_NOTIFY_PARSE_BAD;
	}
	/* RFC 5465 6.1: the selected mailbox has message events only. */
	if (selected && (events & IMAP_NOTIFY_MAILBOX_EVENTS) != 0) {
		*error_r = "Mailbox events are not for SELECTED";
		return IMAP_NOTIFY_PARSE_BAD;
	}
	group->events = events;
	return IMAP_NOTIFY_PARSE_OK;
}

/* event-group = "(" filter-mailboxes SP events ")" */
static enum imap_notify_parse_result imap_notify_parse_group(
	struct pool *pool, const struct imap_arg *arg, bool utf8,
	struct imap_notify_group *group, const char **error_r)
{
	const struct imap_arg *list;
	unsigned int n, j, next = 1;
	const char *atom;

	if (!imap_arg_get_list(arg, &list, &n) || n < 2 ||
	    !imap_arg_get_atom(&list[0], &atom)) {
		*error_r = "Expected an event group";
		return IMAP_NOTIFY_PARSE_BAD;
	}
	for (j = 0; j < N_ELEMENTS(imap_notify_filters); j++) {
		if (strcasecmp(atom, imap_notify_filters[j].name) == 0)
			break;
	}
	if (j == N_ELEMENTS(imap_notify_filters)) {
		*error_r = "Unknown mailbox filter";
		return IMAP_NOTIFY_PARSE_BAD;
	}
	memset(group, 0, sizeof(*group));
	group->filter = imap_notify_filters[j].filter;
	if (group->filter == IMAP_NOTIFY_SUBTREE ||
	    group->filter == IMAP_NOTIFY_MAILBOXES) {
		if (imap_notify_parse_mailboxes(pool, &list[1], utf8, group,
						error_r) < 0)
			return IMAP_NOTIFY_PARSE_BAD;
		next = 2;
	}
	if (n != next + 1) {
		*error_r = "Expected a filter and events";
		return IMAP_NOTIFY_PARSE_BAD;
	}
	return imap_notify_parse_events(&list[next], group, error_r);
}

enum imap_notify_parse_result imap_notify_parse(struct pool *pool,
						const struct imap_arg *args,
						unsigned int count, bool utf8,
						struct imap_notify_spec *spec_r,
						const char **error_r)
{
	enum imap_notify_parse_result ret, result = IMAP_NOTIFY_PARSE_OK;
	unsigned int i = 1;

	memset(spec_r, 0, sizeof(*spec_r));
	if (count == 1 && imap_arg_atom_equals(&args[0], "NONE")) {
		spec_r->none = true;
		return IMAP_NOTIFY_PARSE_OK;
	}
	if (count == 0 || !imap_arg_atom_equals(&args[0], "SET")) {
		*error_r = "Expected NOTIFY SET or NOTIFY NONE";
		return IMAP_NOTIFY_PARSE_BAD;
	}
	if (i < count && imap_arg_atom_equals(&args[i], "STATUS")) {
		spec_r->status = true;
		i++;
	}
	if (count - i > IMAP_NOTIFY_MAX_GROUPS) {
		*error_r = "Too many event groups";
		return IMAP_NOTIFY_PARSE_BAD;
	}
	spec_r->groups = p_new(pool, struct imap_notify_group, count - i + 1);
	for (; i < count; i++) {
		struct imap_notify_group *g =
			&spec_r->groups[spec_r->group_count];

		ret = imap_notify_parse_group(pool, &args[i], utf8, g, error_r);
		if (ret == IMAP_NOTIFY_PARSE_BAD)
			return ret;
		if (ret == IMAP_NOTIFY_PARSE_BADEVENT) {
			result = ret;
			continue;
		}
		/* RFC 5465 6.1: one SELECTED / SELECTED-DELAYED group. */
		for (unsigned int k = 0; k < spec_r->group_count; k++) {
			if (g->filter <= IMAP_NOTIFY_SELECTED_DELAYED &&
			    spec_r->groups[k].filter <=
				    IMAP_NOTIFY_SELECTED_DELAYED) {
				*error_r = "SELECTED is given twice";
				return IMAP_NOTIFY_PARSE_BAD;
			}
		}
		spec_r->group_count++;
	}
	return result;
}

/* ---- matching ---- */

static bool imap_notify_group_matches(const struct imap_notify_group *g,
				      const char *name, bool subscribed)
{
	switch (g->filter) {
	case IMAP_NOTIFY_SELECTED:
	case IMAP_NOTIFY_SELECTED_DELAYED:
		return false;
	case IMAP_NOTIFY_PERSONAL:
		/* RFC 5465 6.3: every mailbox of the personal namespace;
		   ours is the only one (NAMESPACE). */
		return true;
	case IMAP_NOTIFY_INBOXES:
		/* RFC 5465 6.4: the mailboxes new mail is delivered to:
		   deliveries go to INBOX only (sieve is not ours). */
		return strcmp(name, "INBOX") == 0;
	case IMAP_NOTIFY_SUBSCRIBED:
		return subscribed;
	case IMAP_NOTIFY_SUBTREE:
	case IMAP_NOTIFY_MAILBOXES:
		for (unsigned int i = 0; i < g->mailbox_count; i++) {
			const char *m = g->mailboxes[i];
			size_t len = strlen(m);

			if (strcmp(name, m) == 0)
				return true;
			/* RFC 5465 6.6: SUBTREE is the mailboxes and all
			   their descendants. */
			if (g->filter == IMAP_NOTIFY_SUBTREE &&
			    strncmp(name, m, len) == 0 &&
			    name[len] == IMAP_MAILBOX_SEP)
				return true;
		}
		return false;
	}
	return false;
}

unsigned int imap_notify_spec_events(const struct imap_notify_spec *spec,
				     const char *name, bool subscribed)
{
	unsigned int events = 0;

	for (unsigned int i = 0; i < spec->group_count; i++) {
		if (imap_notify_group_matches(&spec->groups[i], name,
					      subscribed))
			events |= spec->groups[i].events;
	}
	return events;
}

bool imap_notify_spec_selected(const struct imap_notify_spec *spec,
			       unsigned int *events_r, bool *delayed_r)
{
	for (unsigned int i = 0; i < spec->group_count; i++) {
		if (spec->groups[i].filter > IMAP_NOTIFY_SELECTED_DELAYED)
			continue;
		*events_r = spec->groups[i].events;
		*delayed_r =
			spec->groups[i].filter == IMAP_NOTIFY_SELECTED_DELAYED;
		return true;
	}
	return false;
}

/* ---- the session's state ---- */

/* A mailbox as the client was last told about it. */
struct imap_notify_box {
	uint64_t id;
	char *name; /* in the snapshot pool */
	bool subscribed;
};

struct imap_notify {
	pool_t pool; /* the spec */
	struct imap_notify_spec spec;
	/* The SELECTED group's MessageNew fetch attributes, or NULL. */
	struct imap_fetch_items *fetch;
	/* Changes up to this modseq have been looked at. */
	uint64_t modseq;
	/* The mailbox list, sorted by id (for MailboxName and
	   SubscriptionChange). */
	pool_t snap_pool;
	struct imap_notify_box *boxes;
	unsigned int box_count;
};

void imap_notify_free(struct imap_notify **_notify)
{
	struct imap_notify *notify = *_notify;

	*_notify = NULL;
	if (notify == NULL)
		return;
	pool_unref(&notify->pool);
	if (notify->snap_pool != NULL)
		pool_unref(&notify->snap_pool);
	i_free(notify);
}

static int imap_notify_box_cmp(const void *a, const void *b)
{
	const struct imap_notify_box *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id ? 1 : 0;
}

/* Reads the mailbox list into a new snapshot (notify->boxes and
   snap_pool; the caller keeps and frees the old ones). */
static int imap_notify_snapshot(struct imap_session *s,
				struct imap_notify *notify)
{
	struct store_mailbox *boxes;
	unsigned int count;
	const char *error;
	pool_t pool = pool_create("imap notify snapshot", 1024);

	if (store_mailbox_list(s->store, pool, &boxes, &count, &error) < 0) {
		log_error(s->conn->id, "imap.notify_list_failed", "error=%s",
			  log_value(0, error));
		pool_unref(&pool);
		return -1;
	}
	notify->boxes = p_new(pool, struct imap_notify_box, count + 1);
	for (unsigned int i = 0; i < count; i++) {
		notify->boxes[i].id = boxes[i].id;
		notify->boxes[i].name = p_strdup(pool, boxes[i].name);
		notify->boxes[i].subscribed = boxes[i].subscribed;
	}
	notify->box_count = count;
	qsort(notify->boxes, count, sizeof(*notify->boxes),
	      imap_notify_box_cmp);
	notify->snap_pool = pool;
	return 0;
}

static const struct imap_notify_box *imap_notify_box_find(
	const struct imap_notify_box *boxes, unsigned int count, uint64_t id)
{
	struct imap_notify_box key = { .id = id };

	return bsearch(&key, boxes, count, sizeof(*boxes), imap_notify_box_cmp);
}

/* ---- writing ---- */

/* RFC 5465 5.1-5.3: "* STATUS" with what a client keeps for a mailbox
   it does not have selected (HIGHESTMODSEQ under CONDSTORE, RFC 7162
   3.1.6). */
static void imap_notify_write_status(struct imap_session *s, struct buf *out,
				     pool_t pool,
				     const struct store_mailbox *box)
{
	/* RFC 5465 3: MESSAGES, UIDNEXT and UIDVALIDITY for MessageNew;
	   5.1: UIDVALIDITY with HIGHESTMODSEQ; UNSEEN for \Seen changes. */
	unsigned int items = STATUS_MESSAGES | STATUS_UIDNEXT |
			     STATUS_UIDVALIDITY | STATUS_UNSEEN;

	if ((s->enabled & IMAP_ENABLED_CONDSTORE) != 0)
		items |= STATUS_HIGHESTMODSEQ;
	imap_status_format(s, out, pool, box, items, 0);
}

/* RFC 5465 5.4, 5.5: "* LIST (attr) "/" name [("OLDNAME" (old))]". */
static void imap_notify_write_list(struct imap_session *s, struct buf *out,
				   pool_t pool, const char *attr,
				   const char *name, const char *oldname)
{
	buf_printf(out, "* LIST (%s) \"%c\" ", attr, IMAP_MAILBOX_SEP);
	if (imap_write_mailbox(out, pool, name, s->write_flags) < 0)
		i_unreached();
	if (oldname != NULL) {
		/* RFC 5465 5.4 with RFC 5258 9 OLDNAME. */
		buf_append_str(out, " (\"OLDNAME\" (");
		if (imap_write_mailbox(out, pool, oldname, s->write_flags) < 0)
			i_unreached();
		buf_append_str(out, "))");
	}
	buf_append_str(out, "\r\n");
}

static bool imap_notify_is_selected(const struct imap_session *s, uint64_t id)
{
	return s->selected && s->mailbox_id == id;
}

/* RFC 5465 5: "The server SHOULD omit notifying the client if the event
   is caused by this client." The session's last command's modseqs; a
   delivery (the vault's merge, another process) may commit inside that
   range, so new messages are reported whatever their modseq. */
static bool imap_notify_is_own(const struct imap_session *s,
			       const struct store_change *change)
{
	return change->modseq >= s->own_lo && change->modseq <= s->own_hi;
}

/* The snapshot's mailbox with this name (len bytes of it), or NULL: a
   scan, as a mailbox list is short and this runs per mailbox change. */
static const struct imap_notify_box *imap_notify_box_named(
	const struct imap_notify *notify, const char *name, size_t len)
{
	for (unsigned int i = 0; i < notify->box_count; i++) {
		const char *n = notify->boxes[i].name;

		if (strncmp(n, name, len) == 0 && n[len] == '\0')
			return &notify->boxes[i];
	}
	return NULL;
}

/* RFC 5465 5.4-5.5 (attributes "accurately computed", \HasChildren or
   \HasNoChildren, RFC 5258 4) of a mailbox in the snapshot. */
static const char *imap_notify_box_attrs(const struct imap_notify *notify,
					 pool_t pool,
					 const struct imap_notify_box *box)
{
	size_t len = strlen(box->name);
	bool children = false;

	for (unsigned int i = 0; i < notify->box_count && !children; i++) {
		const char *n = notify->boxes[i].name;

		children = strncmp(n, box->name, len) == 0 &&
			   n[len] == IMAP_MAILBOX_SEP;
	}
	return p_strdup_printf(pool, "%s%s",
			       children ? "\\HasChildren" : "\\HasNoChildren",
			       box->subscribed ? " \\Subscribed" : "");
}

/* RFC 5465 5.4: "If a mailbox is created or deleted, the mailbox itself
   and its direct parent ... are considered to be affected": the parent
   of name, if it is a mailbox, gets a LIST with its attributes now. A
   parent reported already in this batch (in *done, *done_count) is not
   repeated. */
static void imap_notify_parent(struct imap_session *s,
			       struct imap_notify *notify, struct buf *out,
			       pool_t pool, const char *name,
			       const struct imap_notify_box **done,
			       unsigned int *done_count)
{
	const char *sep = strrchr(name, IMAP_MAILBOX_SEP);
	const struct imap_notify_box *parent;

	if (sep == NULL)
		return;
	parent = imap_notify_box_named(notify, name, (size_t)(sep - name));
	if (parent == NULL ||
	    (imap_notify_spec_events(&notify->spec, parent->name,
				     parent->subscribed) &
	     IMAP_NOTIFY_MAILBOX_NAME) == 0)
		return;
	for (unsigned int i = 0; i < *done_count; i++) {
		if (done[i] == parent)
			return;
	}
	done[(*done_count)++] = parent;
	imap_notify_write_list(s, out, pool,
			       imap_notify_box_attrs(notify, pool, parent),
			       parent->name, NULL);
}

/* Compares the mailbox list with the snapshot and reports created,
   deleted and renamed mailboxes (MailboxName) and subscription changes
   (SubscriptionChange); the list becomes the snapshot. */
static void imap_notify_mailboxes(struct imap_session *s,
				  struct imap_notify *notify, struct buf *out,
				  pool_t pool, bool quiet)
{
	struct imap_notify_box *old = notify->boxes;
	unsigned int old_count = notify->box_count;
	pool_t old_pool = notify->snap_pool;
	const struct imap_notify_box **done;
	unsigned int done_count = 0;

	if (imap_notify_snapshot(s, notify) < 0)
		return;
	done = p_new(pool, const struct imap_notify_box *,
		     notify->box_count + 1);
	for (unsigned int i = 0; i < notify->box_count && !quiet; i++) {
		const struct imap_notify_box *nb = &notify->boxes[i];
		const struct imap_notify_box *ob =
			imap_notify_box_find(old, old_count, nb->id);
		unsigned int events = imap_notify_spec_events(
			&notify->spec, nb->name, nb->subscribed);
		bool named = (events & IMAP_NOTIFY_MAILBOX_NAME) != 0;

		if ((ob == NULL || strcmp(ob->name, nb->name) != 0) && named) {
			/* Reported with its attributes: not again as a
			   parent. */
			if (ob == NULL)
				done[done_count++] = nb;
			imap_notify_write_list(
				s, out, pool,
				imap_notify_box_attrs(notify, pool, nb),
				nb->name, ob == NULL ? NULL : ob->name);
		} else if (ob != NULL && ob->subscribed != nb->subscribed &&
			   (events & IMAP_NOTIFY_SUBSCRIPTION_CHANGE) != 0) {
			/* RFC 5465 5.5: \Subscribed if and only if it is. */
			imap_notify_write_list(
				s, out, pool,
				imap_notify_box_attrs(notify, pool, nb),
				nb->name, NULL);
		}
		if (ob == NULL)
			imap_notify_parent(s, notify, out, pool, nb->name, done,
					   &done_count);
	}
	for (unsigned int i = 0; i < old_count && !quiet; i++) {
		if (imap_notify_box_find(notify->boxes, notify->box_count,
					 old[i].id) != NULL)
			continue;
		/* RFC 5465 5.4: a deleted mailbox is \NonExistent (RFC 5258
		   3.4). */
		if ((imap_notify_spec_events(&notify->spec, old[i].name,
					     old[i].subscribed) &
		     IMAP_NOTIFY_MAILBOX_NAME) != 0)
			imap_notify_write_list(s, out, pool, "\\NonExistent",
					       old[i].name, NULL);
		imap_notify_parent(s, notify, out, pool, old[i].name, done,
				   &done_count);
	}
	if (old_pool != NULL)
		pool_unref(&old_pool);
}

void imap_notify_report(struct imap_session *s, struct buf *out)
{
	struct imap_notify *notify = s->notify;
	struct store_change *changes;
	unsigned int count;
	const char *error;
	bool mailbox_list = false, others = false;
	pool_t pool;

	if (notify == NULL || !s->notify_changed)
		return;
	s->notify_changed = false;
	pool = pool_create("imap notify", 4096);
	if (store_changes_since(s->store, 0, notify->modseq, pool, &changes,
				&count, &error) < 0) {
		log_error(s->conn->id, "imap.notify_failed", "error=%s",
			  log_value(0, error));
		pool_unref(&pool);
		return;
	}
	if (count > 0)
		notify->modseq = changes[count - 1].modseq;
	for (unsigned int i = 0; i < count; i++) {
		if (changes[i].kind != STORE_CHANGE_MAILBOX)
			continue;
		mailbox_list = true;
		others = others || !imap_notify_is_own(s, &changes[i]);
	}
	/* RFC 5465 5: not about this session's own CREATE, RENAME, DELETE
	   or SUBSCRIBE (the snapshot follows them quietly). Changes of
	   several sessions in one batch are all reported. */
	if (mailbox_list)
		imap_notify_mailboxes(s, notify, out, pool, !others);

	/* Message events: one STATUS per mailbox with any, whatever the
	   number of changes. */
	uint64_t *ids = p_new(pool, uint64_t, count + 1);
	unsigned int *kinds = p_new(pool, unsigned int, count + 1);
	unsigned int nids = 0;

	for (unsigned int i = 0; i < count; i++) {
		uint64_t id = changes[i].mailbox_id;
		unsigned int j;

		if (changes[i].kind == STORE_CHANGE_MAILBOX ||
		    imap_notify_is_selected(s, id) ||
		    (changes[i].kind != STORE_CHANGE_ADDED &&
		     imap_notify_is_own(s, &changes[i])))
			continue;
		for (j = 0; j < nids && ids[j] != id; j++)
			;
		if (j == nids)
			ids[nids++] = id;
		kinds[j] |= changes[i].kind == STORE_CHANGE_ADDED
				    ? IMAP_NOTIFY_MESSAGE_NEW
			    : changes[i].kind == STORE_CHANGE_EXPUNGED
				    ? IMAP_NOTIFY_MESSAGE_EXPUNGE
				    : IMAP_NOTIFY_FLAG_CHANGE;
	}
	for (unsigned int j = 0; j < nids; j++) {
		struct store_mailbox box;

		/* A mailbox deleted since is not reported (its LIST
		   \NonExistent was, if asked for). */
		if (store_mailbox_get(s->store, ids[j], pool, &box, &error) <=
		    0)
			continue;
		if ((kinds[j] & imap_notify_spec_events(&notify->spec, box.name,
							box.subscribed)) != 0)
			imap_notify_write_status(s, out, pool, &box);
	}
	pool_unref(&pool);
}

bool imap_notify_selected_sync(const struct imap_session *s,
			       enum imap_notify_when when,
			       bool *allow_expunge_r)
{
	unsigned int events;
	bool delayed;

	if (s->notify == NULL) {
		/* The base protocol: at command ends and in IDLE. */
		return when != IMAP_NOTIFY_BETWEEN;
	}
	/* RFC 5465 3.1: a NOTIFY SET without SELECTED/SELECTED-DELAYED
	   "is the same as specifying SELECTED NONE"; 6.1: (SELECTED
	   NONE): nothing about it, in IDLE too (4). */
	if (!imap_notify_spec_selected(&s->notify->spec, &events, &delayed) ||
	    events == 0)
		return false;
	/* RFC 5465 6.1-6.2: SELECTED may send EXPUNGE when no command is
	   in progress, which RFC 9051 7.5.1 forbids otherwise;
	   SELECTED-DELAYED holds them back until a command allows them. */
	if (when == IMAP_NOTIFY_BETWEEN && delayed)
		*allow_expunge_r = false;
	return true;
}

void imap_notify_sync_point(struct imap_session *s, enum imap_notify_when when,
			    bool allow_expunge, struct buf *out)
{
	if (s->selected && imap_notify_selected_sync(s, when, &allow_expunge))
		(void)imap_session_sync(s, out, allow_expunge);
	/* RFC 5465 3: NOTIFY's responses about other mailboxes too. */
	imap_notify_report(s, out);
}

void imap_notify_new_messages(struct imap_session *s, struct buf *out,
			      const uint32_t *uids, unsigned int count)
{
	if (s->notify == NULL || s->notify->fetch == NULL || count == 0)
		return;
	/* RFC 5465 5.2: the new messages' data after EXISTS. */
	imap_fetch_items_write(s, s->notify->fetch, uids, count, out);
}

/* ---- the command ---- */

static void imap_notify_initial_status(struct imap_cmd *cmd,
				       struct imap_notify *notify)
{
	struct imap_session *s = cmd->session;

	for (unsigned int i = 0; i < notify->box_count; i++) {
		const struct imap_notify_box *b = &notify->boxes[i];
		struct store_mailbox box;
		const char *error;

		if (imap_notify_is_selected(s, b->id) ||
		    (imap_notify_spec_events(&notify->spec, b->name,
					     b->subscribed) &
		     IMAP_NOTIFY_MESSAGE_EVENTS) == 0)
			continue;
		if (store_mailbox_get(s->store, b->id, cmd->pool, &box,
				      &error) > 0)
			imap_notify_write_status(s, cmd->out, cmd->pool, &box);
	}
}

static void imap_cmd_notify(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->session;
	struct imap_notify_spec spec;
	struct imap_notify *notify;
	const char *error;
	pool_t pool = pool_create("imap notify spec", 1024);

	switch (imap_notify_parse(pool, cmd->args, cmd->arg_count,
				  (s->write_flags & IMAP_WRITE_FLAG_UTF8) != 0,
				  &spec, &error)) {
	case IMAP_NOTIFY_PARSE_OK:
		break;
	case IMAP_NOTIFY_PARSE_BAD:
		pool_unref(&pool);
		imap_cmd_bad(cmd, error);
		return;
	case IMAP_NOTIFY_PARSE_BADEVENT:
		/* RFC 5465 3: NO [BADEVENT (the events we support)]; the
		   earlier NOTIFY state stays. */
		pool_unref(&pool);
		imap_cmd_no(cmd, "BADEVENT (" IMAP_NOTIFY_SUPPORTED ")",
			    "Unsupported event");
		return;
	}
	if (spec.none) {
		imap_notify_free(&s->notify);
		pool_unref(&pool);
		imap_cmd_ok(cmd, NULL, "NOTIFY completed");
		return;
	}
	/* RFC 5465 3.1: "a successful NOTIFY SET command implies an
	   implicit NOOP": what the selected mailbox has accumulated comes
	   now, before the new events (maybe SELECTED NONE) apply. */
	if (s->selected && s->changed)
		(void)imap_session_sync(s, cmd->out, true);
	notify = i_new(struct imap_notify, 1);
	notify->pool = pool;
	notify->spec = spec;
	notify->modseq = store_highest_modseq(s->store);
	for (unsigned int i = 0; i < spec.group_count; i++) {
		const struct imap_notify_group *g = &spec.groups[i];

		if (g->filter > IMAP_NOTIFY_SELECTED_DELAYED ||
		    g->fetch_att == NULL)
			continue;
		notify->fetch =
			imap_fetch_items_parse(s, pool, g->fetch_att, &error);
		if (notify->fetch == NULL) {
			error = p_strdup(cmd->pool, error);
			imap_notify_free(&notify);
			imap_cmd_bad(cmd, error);
			return;
		}
	}
	if (imap_notify_snapshot(s, notify) < 0) {
		imap_notify_free(&notify);
		imap_cmd_no(cmd, "UNAVAILABLE", "Cannot list the mailboxes");
		return;
	}
	/* A new NOTIFY replaces the old one (RFC 5465 3). */
	imap_notify_free(&s->notify);
	s->notify = notify;
	s->notify_changed = false;
	/* RFC 5465 3: with STATUS, the state of every mailbox with message
	   events except the selected one, before the OK. */
	if (spec.status)
		imap_notify_initial_status(cmd, notify);
	imap_cmd_ok(cmd, NULL, "NOTIFY completed");
}

const struct imap_cmd_def imap_cmds_notify[] = {
	{ "NOTIFY", imap_cmd_notify, 0 },
	{ NULL, NULL, 0 },
};
