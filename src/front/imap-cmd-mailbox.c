/* imap-cmd-mailbox.c - the IMAP commands about mailboxes rather than
   messages in the selected one: LIST (RFC 9051 6.3.9 with LIST-EXTENDED
   RFC 5258, LIST-STATUS RFC 5819, SPECIAL-USE RFC 6154), LSUB (RFC 3501
   6.3.9), STATUS (6.3.11), CREATE (6.3.4, CREATE-SPECIAL-USE RFC 6154 3),
   DELETE (6.3.5), RENAME (6.3.6), SUBSCRIBE/UNSUBSCRIBE (6.3.7-8),
   GETQUOTA/GETQUOTAROOT/SETQUOTA (RFC 9208), APPEND (6.3.12 with BINARY
   RFC 3516, UIDPLUS RFC 4315, APPENDLIMIT RFC 7889), and COPY / MOVE
   (6.4.7-8, RFC 6851) with COPYUID.

   Mailbox names: the store holds UTF-8 with '/' as the hierarchy
   delimiter. Clients send and receive modified UTF-7 (RFC 3501 5.1.3)
   until they ENABLE UTF8=ACCEPT or IMAP4rev2 (session->write_flags has
   IMAP_WRITE_FLAG_UTF8); then names are UTF-8 both ways (RFC 6855 3).
   Invalid modified UTF-7 is refused with BAD, never guessed at. */

#include "imap-session.h"

#include "front-private.h"
#include "blob.h"
#include "buf.h"
#include "imap-date.h"
#include "imap-match.h"
#include "imap-seqset.h"
#include "imap-write.h"
#include "message-index.h"
#include "pool.h"
#include "store.h"

#include <strings.h>

/* LIST bounds: patterns per command (RFC 5258 3 allows a list), and the
   matching work of one command (imap_match_steps(), tens of ms), so that
   long patterns against many long names cannot hold the loop thread. */
#define IMAP_LIST_MAX_PATTERNS 64
#define IMAP_LIST_MAX_STEPS (20ull * 1000 * 1000)

/* RFC 8474 4 objectid: 1*255 of ALPHA / DIGIT / "_" / "-". The store's
   mailbox id is never reused, so it is a stable MAILBOXID. */
static const char *imap_mailbox_objectid(struct pool *pool, uint64_t id)
{
	return p_strdup_printf(pool, "F%llu", (unsigned long long)id);
}

/* A mailbox name argument (RFC 9051 9 mailbox: an astring) in the
   store's UTF-8 (imap_cmd_mailbox_name() decodes modified UTF-7 unless
   UTF-8 was enabled). Returns 0, or -1 after answering BAD. */
static int imap_cmd_mailbox_arg(struct imap_cmd *cmd,
				const struct imap_arg *arg, const char **name_r)
{
	const char *error;

	*name_r = imap_cmd_mailbox_name(cmd, arg, &error);
	if (*name_r == NULL) {
		imap_cmd_bad(cmd, error);
		return -1;
	}
	/* A literal may hold a NUL, which would cut the name short. */
	if (strlen(arg->str) != arg->len) {
		imap_cmd_bad(cmd, "NUL in a mailbox name");
		return -1;
	}
	return 0;
}

/* A mailbox that must exist: 1 with *box_r, 0 after answering NO (with
   missing_code when it does not exist), -1 after answering a store
   failure. */
static int imap_cmd_mailbox_get(struct imap_cmd *cmd, const char *name,
				const char *missing_code,
				struct store_mailbox *box_r)
{
	const char *error;
	int ret;

	ret = store_mailbox_lookup(cmd->session->store, name, cmd->pool, box_r,
				   &error);
	if (ret < 0) {
		imap_cmd_store_error(cmd, error);
		return -1;
	}
	if (ret == 0)
		imap_cmd_no(cmd, missing_code, "Mailbox does not exist");
	return ret;
}

/* The one argument of DELETE, SUBSCRIBE, GETQUOTAROOT...: an existing
   mailbox. 1 with *box_r, or <= 0 answered. */
static int imap_cmd_one_mailbox(struct imap_cmd *cmd,
				struct store_mailbox *box_r)
{
	const char *name;

	if (cmd->arg_count != 1) {
		imap_cmd_bad(cmd, "Mailbox name expected");
		return 0;
	}
	if (imap_cmd_mailbox_arg(cmd, &cmd->args[0], &name) < 0)
		return 0;
	return imap_cmd_mailbox_get(cmd, name, "NONEXISTENT", box_r);
}

/* ---- STATUS (RFC 9051 6.3.11) ---- */

static const struct {
	const char *name;
	enum imap_status_item item;
} imap_status_items[] = {
	{ "MESSAGES", STATUS_MESSAGES },
	{ "UIDNEXT", STATUS_UIDNEXT },
	{ "UIDVALIDITY", STATUS_UIDVALIDITY },
	{ "UNSEEN", STATUS_UNSEEN },
	{ "DELETED", STATUS_DELETED },
	{ "SIZE", STATUS_SIZE },
	{ "HIGHESTMODSEQ", STATUS_HIGHESTMODSEQ },
	{ "RECENT", STATUS_RECENT },
	{ "APPENDLIMIT", STATUS_APPENDLIMIT },
	{ "MAILBOXID", STATUS_MAILBOXID },
};

static int imap_status_parse(const struct imap_arg *arg, unsigned int *items_r,
			     const char **error_r)
{
	const struct imap_arg *list;
	unsigned int count, i, j, items = 0;

	if (!imap_arg_get_list(arg, &list, &count) || count == 0) {
		*error_r = "STATUS needs a list of items";
		return -1;
	}
	for (i = 0; i < count; i++) {
		for (j = 0; j < N_ELEMENTS(imap_status_items); j++) {
			if (imap_arg_atom_equals(&list[i],
						 imap_status_items[j].name))
				break;
		}
		if (j == N_ELEMENTS(imap_status_items)) {
			*error_r = "Unknown STATUS item";
			return -1;
		}
		items |= imap_status_items[j].item;
	}
	*items_r = items;
	return 0;
}

void imap_status_format(struct imap_session *session, struct buf *out,
			struct pool *pool, const struct store_mailbox *box,
			unsigned int items, uint32_t deleted)
{
	const char *sep = "";

	buf_append_str(out, "* STATUS ");
	if (imap_write_mailbox(out, pool, box->name, session->write_flags) < 0)
		i_unreached(); /* the store holds valid UTF-8 only */
	buf_append_str(out, " (");
#define STATUS_ITEM(bit, fmt, value)                           \
	do {                                                   \
		if ((items & (bit)) != 0) {                    \
			buf_printf(out, "%s" fmt, sep, value); \
			sep = " ";                             \
		}                                              \
	} while (0)
	STATUS_ITEM(STATUS_MESSAGES, "MESSAGES %u", box->messages);
	STATUS_ITEM(STATUS_UIDNEXT, "UIDNEXT %u", box->uidnext);
	STATUS_ITEM(STATUS_UIDVALIDITY, "UIDVALIDITY %u", box->uidvalidity);
	STATUS_ITEM(STATUS_UNSEEN, "UNSEEN %u", box->unseen);
	STATUS_ITEM(STATUS_DELETED, "DELETED %u", deleted);
	STATUS_ITEM(STATUS_SIZE, "SIZE %llu", (unsigned long long)box->size);
	STATUS_ITEM(STATUS_HIGHESTMODSEQ, "HIGHESTMODSEQ %llu",
		    (unsigned long long)box->highestmodseq);
	/* RFC 9051 appendix E: \Recent is gone; a rev1 client gets 0. */
	STATUS_ITEM(STATUS_RECENT, "RECENT %u", box->recent_or_zero);
	STATUS_ITEM(STATUS_APPENDLIMIT, "APPENDLIMIT %u", IMAP_APPEND_LIMIT);
	STATUS_ITEM(STATUS_MAILBOXID, "MAILBOXID (%s)",
		    imap_mailbox_objectid(pool, box->id));
#undef STATUS_ITEM
	buf_append_str(out, ")\r\n");
}

/* Writes "* STATUS name (...)". Returns 0, or -1 after answering a store
   failure (nothing written). */
static int imap_status_write(struct imap_cmd *cmd,
			     const struct store_mailbox *box,
			     unsigned int items)
{
	uint32_t deleted = 0;
	const char *error;

	if ((items & STATUS_DELETED) != 0 &&
	    store_mailbox_count_flag(cmd->session->store, box->id,
				     STORE_FLAG_DELETED, &deleted,
				     &error) < 0) {
		imap_cmd_store_error(cmd, error);
		return -1;
	}
	imap_status_format(cmd->session, cmd->out, cmd->pool, box, items,
			   deleted);
	return 0;
}

static void cmd_status(struct imap_cmd *cmd)
{
	struct store_mailbox box;
	const char *name, *error;
	unsigned int items;

	if (cmd->arg_count != 2) {
		imap_cmd_bad(cmd, "STATUS needs a mailbox and items");
		return;
	}
	if (imap_cmd_mailbox_arg(cmd, &cmd->args[0], &name) < 0)
		return;
	if (imap_status_parse(&cmd->args[1], &items, &error) < 0) {
		imap_cmd_bad(cmd, error);
		return;
	}
	if (imap_cmd_mailbox_get(cmd, name, "NONEXISTENT", &box) <= 0)
		return;
	if (imap_status_write(cmd, &box, items) < 0)
		return;
	imap_cmd_ok(cmd, NULL, "STATUS completed");
}

/* ---- LIST (RFC 9051 6.3.9, RFC 5258) and LSUB (RFC 3501 6.3.9) ---- */

struct imap_list_box {
	struct store_mailbox box;
	bool has_children;
	/* Some descendant is subscribed (RFC 5258 CHILDINFO, and LSUB's
	   \Noselect parents, RFC 3501 6.3.9). */
	bool subscribed_child;
};

struct imap_list {
	bool lsub;
	bool sel_subscribed, sel_special, sel_recursive;
	/* RETURN (CHILDREN) and (SPECIAL-USE) need no flag: LIST always
	   returns both. */
	bool ret_subscribed;
	unsigned int ret_status; /* enum imap_status_item, 0 = none */
	struct imap_match **patterns;
	unsigned int pattern_count;
	bool any_percent; /* LSUB: some pattern has "%" */
	bool empty_pattern; /* LIST "" "": the delimiter */
	struct imap_list_box *boxes;
	unsigned int box_count;
};

static int imap_list_box_cmp(const void *key, const void *elem)
{
	const struct imap_list_box *box = elem;

	return strcmp(key, box->box.name);
}

/* The entry of name, NULL if there is none (binary search: the store
   lists mailboxes sorted by name, byte-wise). */
static struct imap_list_box *imap_list_find(struct imap_list *list,
					    const char *name)
{
	return bsearch(name, list->boxes, list->box_count,
		       sizeof(list->boxes[0]), imap_list_box_cmp);
}

/* Marks every ancestor of each mailbox: has children, and has a
   subscribed descendant. The store creates missing parents (RFC 9051
   6.3.4), so every ancestor is in the list. */
static void imap_list_mark_ancestors(struct imap_list *list, pool_t pool)
{
	unsigned int i;

	for (i = 0; i < list->box_count; i++) {
		char *name = p_strdup(pool, list->boxes[i].box.name);
		bool subscribed = list->boxes[i].box.subscribed;
		bool first = true;
		char *p;

		while ((p = strrchr(name, IMAP_MAILBOX_SEP)) != NULL) {
			struct imap_list_box *parent;

			*p = '\0';
			parent = imap_list_find(list, name);
			if (parent == NULL)
				continue;
			if (first)
				parent->has_children = true;
			first = false;
			if (subscribed)
				parent->subscribed_child = true;
		}
	}
}

/* 1 if name matches some pattern, 0 if none, -1 when the command has
   used up its matching budget. */
static int imap_list_matches(const struct imap_list *list, const char *name)
{
	uint64_t steps = 0;
	unsigned int i;
	int ret = 0;

	for (i = 0; i < list->pattern_count && ret == 0; i++) {
		if (imap_match(list->patterns[i], name))
			ret = 1;
	}
	for (i = 0; i < list->pattern_count; i++)
		steps += imap_match_steps(list->patterns[i]);
	return steps > IMAP_LIST_MAX_STEPS ? -1 : ret;
}

/* Selection (RFC 5258 3.1): does the mailbox itself qualify? */
static bool imap_list_selected(const struct imap_list *list,
			       const struct imap_list_box *lb)
{
	if ((list->sel_subscribed || list->lsub) && !lb->box.subscribed)
		return false;
	if (list->sel_special &&
	    imap_special_use_attr(lb->box.special_use) == NULL)
		return false;
	return true;
}

static void imap_list_write_box(struct imap_cmd *cmd,
				const struct imap_list *list,
				const struct imap_list_box *lb, bool selected)
{
	const char *attrs[4];
	unsigned int n = 0;
	const char *special = imap_special_use_attr(lb->box.special_use);

	if (!selected && list->lsub) {
		/* RFC 3501 6.3.9: an unsubscribed parent of a subscribed
		   mailbox, matched by "%". */
		attrs[n++] = "\\Noselect";
	} else {
		/* RFC 9051 7.3.1 / RFC 5258 4: children are always
		   reported; it costs nothing here. */
		attrs[n++] =
			lb->has_children ? "\\HasChildren" : "\\HasNoChildren";
		/* RFC 6154 2: special-use attributes may always be
		   returned; clients rely on them. */
		if (special != NULL)
			attrs[n++] = special;
		if (list->ret_subscribed && lb->box.subscribed)
			attrs[n++] = "\\Subscribed";
	}
	buf_append_str(cmd->out, list->lsub ? "* LSUB " : "* LIST ");
	imap_write_atom_list(cmd->out, attrs, n);
	buf_printf(cmd->out, " \"%c\" ", IMAP_MAILBOX_SEP);
	if (imap_write_mailbox(cmd->out, cmd->pool, lb->box.name,
			       cmd->session->write_flags) < 0)
		i_unreached();
	/* RFC 5258 4: CHILDINFO for a parent returned only because a
	   descendant matched the selection. */
	if (!selected && !list->lsub)
		buf_append_str(cmd->out, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	buf_append_str(cmd->out, "\r\n");
}

/* RFC 5258 3: "(" [option *(SP option)] ")" of selection options. */
static int imap_list_parse_select(struct imap_list *list,
				  const struct imap_arg *arg,
				  const char **error_r)
{
	const struct imap_arg *opts;
	unsigned int count, i;
	bool base = false;

	(void)imap_arg_get_list(arg, &opts, &count);
	for (i = 0; i < count; i++) {
		if (imap_arg_atom_equals(&opts[i], "SUBSCRIBED")) {
			list->sel_subscribed = true;
			/* RFC 5258 3.1: implies RETURN (SUBSCRIBED). */
			list->ret_subscribed = true;
			base = true;
		} else if (imap_arg_atom_equals(&opts[i], "SPECIAL-USE")) {
			/* RFC 6154 5.1 */
			list->sel_special = true;
			base = true;
		} else if (imap_arg_atom_equals(&opts[i], "REMOTE")) {
			/* No remote mailboxes here: nothing to add. */
		} else if (imap_arg_atom_equals(&opts[i], "RECURSIVEMATCH")) {
			list->sel_recursive = true;
		} else {
			*error_r = "Unknown LIST selection option";
			return -1;
		}
	}
	/* RFC 5258 3.1: RECURSIVEMATCH needs another option to modify. */
	if (list->sel_recursive && !base) {
		*error_r = "RECURSIVEMATCH needs a selection option";
		return -1;
	}
	return 0;
}

/* RFC 5258 3.2, RFC 5819: RETURN "(" [option *(SP option)] ")". */
static int imap_list_parse_return(struct imap_list *list,
				  const struct imap_arg *arg,
				  const char **error_r)
{
	const struct imap_arg *opts;
	unsigned int count, i;

	if (!imap_arg_get_list(arg, &opts, &count)) {
		*error_r = "RETURN needs a list";
		return -1;
	}
	for (i = 0; i < count; i++) {
		if (imap_arg_atom_equals(&opts[i], "SUBSCRIBED")) {
			list->ret_subscribed = true;
		} else if (imap_arg_atom_equals(&opts[i], "CHILDREN") ||
			   imap_arg_atom_equals(&opts[i], "SPECIAL-USE")) {
			/* RFC 5258 4, RFC 6154 5.1: always returned. */
		} else if (imap_arg_atom_equals(&opts[i], "STATUS") &&
			   i + 1 < count) {
			if (imap_status_parse(&opts[++i], &list->ret_status,
					      error_r) < 0)
				return -1;
		} else {
			*error_r = "Unknown LIST return option";
			return -1;
		}
	}
	return 0;
}

/* Joins the reference and a pattern (RFC 9051 6.3.9: the reference is a
   prefix; a delimiter between them is not doubled). */
static const char *imap_list_join(pool_t pool, const char *ref,
				  const char *pattern)
{
	size_t len = strlen(ref);

	if (len == 0)
		return pattern;
	if (ref[len - 1] == IMAP_MAILBOX_SEP && pattern[0] == IMAP_MAILBOX_SEP)
		pattern++;
	return p_strdup_printf(pool, "%s%s", ref, pattern);
}

static int imap_list_add_pattern(struct imap_cmd *cmd, struct imap_list *list,
				 const char *ref, const struct imap_arg *arg)
{
	const char *pattern;

	if (imap_cmd_mailbox_arg(cmd, arg, &pattern) < 0)
		return -1;
	if (pattern[0] == '\0') {
		/* RFC 9051 6.3.9: "" asks for the delimiter and root. */
		list->empty_pattern = true;
		return 0;
	}
	if (strchr(pattern, '%') != NULL)
		list->any_percent = true;
	list->patterns[list->pattern_count++] = imap_match_init(
		cmd->pool, imap_list_join(cmd->pool, ref, pattern),
		IMAP_MAILBOX_SEP);
	return 0;
}

/* LIST [select-opts] reference mbox-or-pat [RETURN (opts)] (RFC 5258 6);
   LSUB reference pattern. Returns 0, or -1 after answering BAD. */
static int imap_list_parse(struct imap_cmd *cmd, struct imap_list *list)
{
	const struct imap_arg *args = cmd->args, *pats;
	unsigned int count = cmd->arg_count, i, pat_count;
	const char *ref, *error;

	if (!list->lsub && count > 0 && args[0].type == IMAP_ARG_LIST) {
		if (imap_list_parse_select(list, &args[0], &error) < 0) {
			imap_cmd_bad(cmd, error);
			return -1;
		}
		args++;
		count--;
	}
	if (!list->lsub && count == 4 &&
	    imap_arg_atom_equals(&args[2], "RETURN")) {
		if (imap_list_parse_return(list, &args[3], &error) < 0) {
			imap_cmd_bad(cmd, error);
			return -1;
		}
		count = 2;
	}
	if (count != 2) {
		imap_cmd_bad(cmd, "LIST needs a reference and a pattern");
		return -1;
	}
	if (imap_cmd_mailbox_arg(cmd, &args[0], &ref) < 0)
		return -1;
	if (!list->lsub && args[1].type == IMAP_ARG_LIST) {
		/* RFC 5258 3: several patterns. */
		(void)imap_arg_get_list(&args[1], &pats, &pat_count);
		if (pat_count == 0 || pat_count > IMAP_LIST_MAX_PATTERNS) {
			imap_cmd_bad(cmd, "Too many or no patterns");
			return -1;
		}
	} else {
		pats = &args[1];
		pat_count = 1;
	}
	list->patterns = p_new(cmd->pool, struct imap_match *, pat_count);
	for (i = 0; i < pat_count; i++) {
		if (imap_list_add_pattern(cmd, list, ref, &pats[i]) < 0)
			return -1;
	}
	return 0;
}

static void imap_cmd_list_common(struct imap_cmd *cmd, bool lsub)
{
	struct imap_list list;
	struct store_mailbox *boxes;
	unsigned int i;
	const char *error;

	memset(&list, 0, sizeof(list));
	list.lsub = lsub;
	if (imap_list_parse(cmd, &list) < 0)
		return;
	if (list.empty_pattern) {
		/* RFC 9051 6.3.9: the root has no name here (one
		   personal namespace, RFC 2342 NAMESPACE (("" "/"))). */
		buf_printf(cmd->out, "* %s (\\Noselect) \"%c\" \"\"\r\n",
			   lsub ? "LSUB" : "LIST", IMAP_MAILBOX_SEP);
	}
	if (list.pattern_count == 0) {
		imap_cmd_ok(cmd, NULL,
			    lsub ? "LSUB completed" : "LIST completed");
		return;
	}
	if (store_mailbox_list(cmd->session->store, cmd->pool, &boxes,
			       &list.box_count, &error) < 0) {
		imap_cmd_store_error(cmd, error);
		return;
	}
	list.boxes = p_new(cmd->pool, struct imap_list_box, list.box_count);
	for (i = 0; i < list.box_count; i++)
		list.boxes[i].box = boxes[i];
	imap_list_mark_ancestors(&list, cmd->pool);

	for (i = 0; i < list.box_count; i++) {
		struct imap_list_box *lb = &list.boxes[i];
		int match = imap_list_matches(&list, lb->box.name);
		bool selected;

		if (match < 0) {
			imap_cmd_no(cmd, "LIMIT", "Patterns too expensive");
			return;
		}
		if (match == 0)
			continue;
		selected = imap_list_selected(&list, lb);
		if (!selected) {
			/* RFC 5258 3.1 RECURSIVEMATCH, RFC 3501 6.3.9 LSUB
			   with "%": a parent of a subscribed mailbox. */
			if (!lb->subscribed_child ||
			    !((list.sel_recursive && list.sel_subscribed) ||
			      (lsub && list.any_percent)))
				continue;
		}
		imap_list_write_box(cmd, &list, lb, selected);
		/* RFC 5819 2: STATUS after its LIST, for selectable
		   mailboxes only. */
		if (list.ret_status != 0 && !lsub &&
		    imap_status_write(cmd, &lb->box, list.ret_status) < 0)
			return;
	}
	imap_cmd_ok(cmd, NULL, lsub ? "LSUB completed" : "LIST completed");
}

static void cmd_list(struct imap_cmd *cmd)
{
	imap_cmd_list_common(cmd, false);
}

static void cmd_lsub(struct imap_cmd *cmd)
{
	imap_cmd_list_common(cmd, true);
}

/* ---- CREATE, DELETE, RENAME, SUBSCRIBE (RFC 9051 6.3.4-6.3.8) ---- */

/* RFC 6154 3: CREATE name (USE (\Drafts)). One special use per mailbox
   here; anything else is NO [USEATTR]. Returns 0, or -1 answered. */
static int imap_create_parse_use(struct imap_cmd *cmd,
				 const struct imap_arg *arg,
				 enum store_special_use *use_r)
{
	const struct imap_arg *params, *uses;
	unsigned int count, use_count, i, j;

	*use_r = STORE_SPECIAL_NONE;
	if (!imap_arg_get_list(arg, &params, &count)) {
		imap_cmd_bad(cmd, "CREATE parameters must be a list");
		return -1;
	}
	for (i = 0; i < count; i += 2) {
		if (!imap_arg_atom_equals(&params[i], "USE") ||
		    i + 1 >= count ||
		    !imap_arg_get_list(&params[i + 1], &uses, &use_count)) {
			imap_cmd_bad(cmd, "Unknown CREATE parameter");
			return -1;
		}
		if (use_count > 1 || *use_r != STORE_SPECIAL_NONE) {
			imap_cmd_no(cmd, "USEATTR",
				    "One special use per mailbox");
			return -1;
		}
		for (j = STORE_SPECIAL_DRAFTS; j <= STORE_SPECIAL_FLAGGED;
		     j++) {
			if (use_count == 1 &&
			    imap_arg_atom_equals(&uses[0],
						 imap_special_use_attr(j)))
				break;
		}
		if (use_count == 1 && j > STORE_SPECIAL_FLAGGED) {
			imap_cmd_no(cmd, "USEATTR",
				    "Unsupported special-use attribute");
			return -1;
		}
		if (use_count == 1)
			*use_r = (enum store_special_use)j;
	}
	return 0;
}

static void cmd_create(struct imap_cmd *cmd)
{
	enum store_special_use use = STORE_SPECIAL_NONE;
	const char *name, *error;
	uint64_t id;
	size_t len;

	if (cmd->arg_count != 1 && cmd->arg_count != 2) {
		imap_cmd_bad(cmd, "CREATE needs a mailbox name");
		return;
	}
	if (imap_cmd_mailbox_arg(cmd, &cmd->args[0], &name) < 0)
		return;
	if (cmd->arg_count == 2 &&
	    imap_create_parse_use(cmd, &cmd->args[1], &use) < 0)
		return;
	/* RFC 9051 6.3.4: a trailing delimiter only says the client means
	   to create names under it. */
	len = strlen(name);
	if (len > 1 && name[len - 1] == IMAP_MAILBOX_SEP)
		name = p_strndup(cmd->pool, name, len - 1);
	if (strcasecmp(name, "INBOX") == 0) {
		imap_cmd_no(cmd, "ALREADYEXISTS", "INBOX always exists");
		return;
	}
	if (store_mailbox_create(cmd->session->store, name, use, &id, &error) <
	    0) {
		imap_cmd_store_error(cmd, error);
		return;
	}
	/* RFC 8474 4.1 */
	imap_cmd_ok(cmd,
		    p_strdup_printf(cmd->pool, "MAILBOXID (%s)",
				    imap_mailbox_objectid(cmd->pool, id)),
		    "CREATE completed");
}

static void cmd_delete(struct imap_cmd *cmd)
{
	struct imap_session *session = cmd->session;
	struct store_mailbox box;
	const char *error;

	if (imap_cmd_one_mailbox(cmd, &box) <= 0)
		return;
	/* RFC 9051 6.3.5: INBOX cannot be deleted. */
	if (box.special_use == STORE_SPECIAL_INBOX) {
		imap_cmd_no(cmd, "CANNOT", "INBOX cannot be deleted");
		return;
	}
	if (store_mailbox_delete(session->store, box.id, &error) < 0) {
		/* The store refuses a mailbox with children (RFC 9051
		   6.3.5 lets a server refuse instead of making it
		   \Noselect). */
		if (store_last_error(session->store) == STORE_ERROR_INVALID)
			imap_cmd_no(cmd, "CANNOT", error);
		else
			imap_cmd_store_error(cmd, error);
		return;
	}
	front_vault_usage_changed(session->account->account_id);
	if (session->selected && session->mailbox_id == box.id) {
		/* The selected mailbox is gone: leave the selected state
		   and say so (RFC 7162 3.2.11 CLOSED, RFC 9051 7.1). */
		imap_session_unselect(session);
		imap_write_status(cmd->out, NULL, IMAP_STATUS_OK, "CLOSED",
				  "Mailbox deleted");
	}
	imap_cmd_ok(cmd, NULL, "DELETE completed");
}

static void cmd_rename(struct imap_cmd *cmd)
{
	struct imap_session *session = cmd->session;
	struct store_mailbox box;
	const char *old_name, *new_name, *error;
	size_t old_len;

	if (cmd->arg_count != 2) {
		imap_cmd_bad(cmd, "RENAME needs two mailbox names");
		return;
	}
	if (imap_cmd_mailbox_arg(cmd, &cmd->args[0], &old_name) < 0 ||
	    imap_cmd_mailbox_arg(cmd, &cmd->args[1], &new_name) < 0)
		return;
	if (imap_cmd_mailbox_get(cmd, old_name, "NONEXISTENT", &box) <= 0)
		return;
	/* RFC 9051 6.3.6: renaming INBOX moves its messages into the new
	   mailbox and leaves INBOX empty (the store does it). */
	if (store_mailbox_rename(session->store, box.id, new_name, &error) <
	    0) {
		imap_cmd_store_error(cmd, error);
		return;
	}
	/* The selected mailbox (or an ancestor) was renamed: keep its new
	   name. INBOX keeps its name and id. */
	old_len = strlen(box.name);
	if (session->selected && box.special_use != STORE_SPECIAL_INBOX &&
	    strncmp(session->mailbox_name, box.name, old_len) == 0 &&
	    (session->mailbox_name[old_len] == '\0' ||
	     session->mailbox_name[old_len] == IMAP_MAILBOX_SEP)) {
		struct store_mailbox renamed;
		char *name;

		if (store_mailbox_get(session->store, session->mailbox_id,
				      cmd->pool, &renamed, &error) > 0) {
			name = i_strdup(renamed.name);
			i_free(session->mailbox_name);
			session->mailbox_name = name;
		}
	}
	imap_cmd_ok(cmd, NULL, "RENAME completed");
}

static void imap_cmd_subscribe_common(struct imap_cmd *cmd, bool subscribe)
{
	struct store_mailbox box;
	const char *error;

	/* The subscription is a flag of the mailbox: RFC 9051 6.3.7 lets
	   a server refuse names that do not exist. */
	if (imap_cmd_one_mailbox(cmd, &box) <= 0)
		return;
	if (store_mailbox_set_subscribed(cmd->session->store, box.id, subscribe,
					 &error) < 0) {
		imap_cmd_store_error(cmd, error);
		return;
	}
	imap_cmd_ok(cmd, NULL,
		    subscribe ? "SUBSCRIBE completed"
			      : "UNSUBSCRIBE completed");
}

static void cmd_subscribe(struct imap_cmd *cmd)
{
	imap_cmd_subscribe_common(cmd, true);
}

static void cmd_unsubscribe(struct imap_cmd *cmd)
{
	imap_cmd_subscribe_common(cmd, false);
}

/* ---- QUOTA (RFC 9208) ---- */

/* One quota root, "", holding the whole account; STORAGE in KiB (RFC
   9208 5.1), usage rounded up. Returns 0, or -1 answered. */
static int imap_quota_write(struct imap_cmd *cmd)
{
	uint64_t used;
	const char *error;

	if (store_quota_usage(cmd->session->store, &used, &error) < 0) {
		imap_cmd_store_error(cmd, error);
		return -1;
	}
	buf_printf(cmd->out, "* QUOTA \"\" (STORAGE %llu %llu)\r\n",
		   (unsigned long long)((used + 1023) / 1024),
		   (unsigned long long)(cmd->session->quota_bytes / 1024));
	return 0;
}

static void cmd_getquotaroot(struct imap_cmd *cmd)
{
	struct store_mailbox box;

	if (imap_cmd_one_mailbox(cmd, &box) <= 0)
		return;
	buf_append_str(cmd->out, "* QUOTAROOT ");
	if (imap_write_mailbox(cmd->out, cmd->pool, box.name,
			       cmd->session->write_flags) < 0)
		i_unreached();
	/* RFC 9208 4.3: no roots when there is no limit. */
	if (cmd->session->quota_bytes == 0) {
		buf_append_str(cmd->out, "\r\n");
	} else {
		buf_append_str(cmd->out, " \"\"\r\n");
		if (imap_quota_write(cmd) < 0)
			return;
	}
	imap_cmd_ok(cmd, NULL, "GETQUOTAROOT completed");
}

static void cmd_getquota(struct imap_cmd *cmd)
{
	const char *root;

	if (cmd->arg_count != 1 ||
	    !imap_arg_get_astring(&cmd->args[0], &root)) {
		imap_cmd_bad(cmd, "GETQUOTA needs a quota root");
		return;
	}
	if (root[0] != '\0' || cmd->session->quota_bytes == 0) {
		imap_cmd_no(cmd, "NONEXISTENT", "No such quota root");
		return;
	}
	if (imap_quota_write(cmd) < 0)
		return;
	imap_cmd_ok(cmd, NULL, "GETQUOTA completed");
}

static void cmd_setquota(struct imap_cmd *cmd)
{
	/* RFC 9208 4.1: limits are the operator's (marmot user set). */
	imap_cmd_no(cmd, "NOPERM", "Quota is set by the administrator");
}

/* ---- APPEND (RFC 9051 6.3.12) ---- */

struct imap_append_args {
	const char *mailbox;
	const struct imap_arg *flags;
	unsigned int flag_count;
	int64_t internaldate;
	const uint8_t *data;
	size_t size;
};

/* APPEND mailbox [flag-list] [date-time] (literal / literal8 /
   "UTF8" "(" literal8 ")"). Returns 0, or -1 answered BAD. */
static int imap_append_parse(struct imap_cmd *cmd, struct imap_append_args *a)
{
	const struct imap_arg *args = cmd->args, *msg;
	unsigned int count = cmd->arg_count, i = 1, n;
	const char *str;

	memset(a, 0, sizeof(*a));
	if (count < 2) {
		imap_cmd_bad(cmd, "APPEND needs a mailbox and a message");
		return -1;
	}
	if (imap_cmd_mailbox_arg(cmd, &args[0], &a->mailbox) < 0)
		return -1;
	if (i < count && args[i].type == IMAP_ARG_LIST) {
		(void)imap_arg_get_list(&args[i], &a->flags, &a->flag_count);
		i++;
	}
	if (i < count && args[i].type == IMAP_ARG_QUOTED) {
		str = args[i].str;
		if (imap_date_parse_datetime(str, &a->internaldate) < 0) {
			imap_cmd_bad(cmd, "Invalid date-time");
			return -1;
		}
		i++;
	}
	msg = &args[i];
	if (i + 2 == count && imap_arg_atom_equals(&args[i], "UTF8")) {
		/* RFC 6855 4: UTF8 (~{N}) after ENABLE UTF8=ACCEPT. */
		if ((cmd->session->enabled & IMAP_ENABLED_UTF8) == 0 ||
		    !imap_arg_get_list(&args[i + 1], &msg, &n) || n != 1 ||
		    msg->type != IMAP_ARG_LITERAL || !msg->literal8) {
			imap_cmd_bad(cmd, "Invalid UTF8 APPEND data");
			return -1;
		}
		i++;
	}
	if (i + 1 != count || msg->type != IMAP_ARG_LITERAL) {
		imap_cmd_bad(cmd, "APPEND message must be a literal");
		return -1;
	}
	/* RFC 9051 9 CHAR8: NUL only in literal8 (RFC 3516 4.1). */
	if (!msg->literal8 && memchr(msg->str, '\0', msg->len) != NULL) {
		imap_cmd_bad(cmd, "NUL in a literal: use literal8");
		return -1;
	}
	a->data = (const uint8_t *)msg->str;
	a->size = msg->len;
	return 0;
}

static void cmd_append(struct imap_cmd *cmd)
{
	struct imap_session *session = cmd->session;
	struct imap_append_args a;
	struct store_mailbox box;
	struct store_append app;
	struct message_index *index;
	const char *const *keywords;
	const char **kw;
	const char *error;
	uint64_t used, modseq;
	uint32_t flags, uid;

	if (imap_append_parse(cmd, &a) < 0)
		return;
	if (imap_parse_flags(cmd->pool, a.flags, a.flag_count, &flags, &kw,
			     &error) < 0) {
		imap_cmd_bad(cmd, error);
		return;
	}
	keywords = kw;
	if (a.size == 0) {
		imap_cmd_no(cmd, NULL, "Empty message");
		return;
	}
	/* RFC 7889 4: the parser refuses larger literals before reading
	   them; this only holds if the limits are changed. */
	if (a.size > IMAP_APPEND_LIMIT) {
		imap_cmd_no(cmd, "TOOBIG", "Message too large");
		return;
	}
	/* RFC 9051 6.3.12: a missing mailbox is NO [TRYCREATE]. */
	if (imap_cmd_mailbox_get(cmd, a.mailbox, "TRYCREATE", &box) <= 0)
		return;
	/* RFC 9208 4.2: refuse before writing the blob; the store checks
	   again inside its transaction. */
	store_set_quota(session->store, session->quota_bytes);
	if (session->quota_bytes != 0) {
		if (store_quota_usage(session->store, &used, &error) < 0) {
			imap_cmd_store_error(cmd, error);
			return;
		}
		if (used + a.size > session->quota_bytes) {
			imap_cmd_no(cmd, "OVERQUOTA", "Quota exceeded");
			return;
		}
	}

	memset(&app, 0, sizeof(app));
	/* The blob is durable before the commit that references it
	   (blob.h); an orphan left by a failed commit is collected. */
	if (blob_put(session->blobs, a.data, a.size, app.blob_id, NULL,
		     &error) < 0) {
		imap_cmd_no(cmd, "UNAVAILABLE", error);
		return;
	}
	index = p_new(cmd->pool, struct message_index, 1);
	message_index_build(cmd->pool, a.data, a.size, index);
	app.mailbox_id = box.id;
	app.flags = flags;
	/* Keywords stay as the client spelt them (labels). */
	app.keywords = keywords;
	app.internaldate = a.internaldate;
	app.size = a.size;
	app.index = index;
	if (store_append(session->store, &app, &uid, &modseq, &error) < 0) {
		imap_cmd_store_error(cmd, error);
		return;
	}
	front_vault_usage_changed(session->account->account_id);
	/* RFC 4315 3. If box is the selected mailbox, the sync after the
	   command reports the EXISTS. */
	imap_cmd_ok(cmd,
		    p_strdup_printf(cmd->pool, "APPENDUID %u %u",
				    box.uidvalidity, uid),
		    "APPEND completed");
}

/* ---- COPY, MOVE (RFC 9051 6.4.7-8, RFC 6851) ---- */

/* Writes ascending uids as a sequence set (COPYUID, VANISHED). */
static void imap_write_uid_set(struct buf *out, struct pool *pool,
			       const uint32_t *uids, unsigned int count)
{
	struct imap_seq_range *ranges =
		p_new(pool, struct imap_seq_range, count);
	unsigned int i, n = 0;

	for (i = 0; i < count; i++) {
		if (n > 0 && ranges[n - 1].last + 1 == uids[i]) {
			ranges[n - 1].last = uids[i];
		} else {
			ranges[n].first = ranges[n].last = uids[i];
			n++;
		}
	}
	imap_seqset_write(out, ranges, n);
}

/* "COPYUID uidvalidity src-set dst-set" (RFC 4315 3) for the messages
   that were copied (dst_uids[i] != 0), or NULL if none were. Removes the
   uncopied from src_uids/dst_uids in place. */
static const char *imap_copyuid(struct imap_cmd *cmd, uint32_t uidvalidity,
				uint32_t *src_uids, uint32_t *dst_uids,
				unsigned int *count)
{
	struct buf code = BUF_INIT;
	unsigned int i, n = 0;
	const char *ret;

	for (i = 0; i < *count; i++) {
		if (dst_uids[i] != 0) {
			src_uids[n] = src_uids[i];
			dst_uids[n] = dst_uids[i];
			n++;
		}
	}
	*count = n;
	if (n == 0)
		return NULL;
	buf_printf(&code, "COPYUID %u ", uidvalidity);
	imap_write_uid_set(&code, cmd->pool, src_uids, n);
	buf_append_c(&code, ' ');
	imap_write_uid_set(&code, cmd->pool, dst_uids, n);
	ret = p_strdup(cmd->pool, buf_cstr(&code));
	buf_free(&code);
	return ret;
}

static void imap_cmd_copy_common(struct imap_cmd *cmd, bool move)
{
	struct imap_session *session = cmd->session;
	struct store_mailbox box;
	const char *name, *error, *copyuid;
	uint32_t *uids, *dst_uids;
	unsigned int count, copied;
	int ret;

	if (cmd->arg_count != 2) {
		imap_cmd_bad(cmd, "Sequence set and mailbox expected");
		return;
	}
	if (imap_cmd_uids(cmd, &cmd->args[0], &uids, &count, &error) < 0) {
		imap_cmd_bad(cmd, error);
		return;
	}
	if (imap_cmd_mailbox_arg(cmd, &cmd->args[1], &name) < 0)
		return;
	/* RFC 9051 6.4.7: a missing destination is NO [TRYCREATE]. */
	if (imap_cmd_mailbox_get(cmd, name, "TRYCREATE", &box) <= 0)
		return;
	if (count == 0) {
		/* RFC 9051 6.4.9: UID sets naming nothing are not an
		   error. */
		imap_cmd_ok(cmd, NULL,
			    move ? "No messages moved" : "No messages copied");
		return;
	}
	if (move && box.id == session->mailbox_id) {
		imap_cmd_no(cmd, "CANNOT",
			    "Source and destination are the "
			    "same mailbox");
		return;
	}
	dst_uids = p_new(cmd->pool, uint32_t, count);
	store_set_quota(session->store, session->quota_bytes);
	ret = move ? store_move(session->store, session->mailbox_id, uids,
				count, box.id, dst_uids, &error)
		   : store_copy(session->store, session->mailbox_id, uids,
				count, box.id, dst_uids, &error);
	if (ret < 0) {
		imap_cmd_store_error(cmd, error);
		return;
	}
	copied = count;
	copyuid = imap_copyuid(cmd, box.uidvalidity, uids, dst_uids, &copied);
	if (!move) {
		/* (A MOVE keeps the usage as it is.) */
		front_vault_usage_changed(session->account->account_id);
		imap_cmd_ok(cmd, copyuid, "COPY completed");
		return;
	}
	/* RFC 6851 4.3: COPYUID in an untagged OK before the expunges. */
	if (copyuid != NULL)
		imap_write_status(cmd->out, NULL, IMAP_STATUS_OK, copyuid,
				  "Moved UIDs");
	imap_session_report_expunges(session, cmd->out, uids, copied);
	imap_cmd_ok(cmd, NULL, "MOVE completed");
}

static void cmd_copy(struct imap_cmd *cmd)
{
	imap_cmd_copy_common(cmd, false);
}

static void cmd_move(struct imap_cmd *cmd)
{
	imap_cmd_copy_common(cmd, true);
}

const struct imap_cmd_def imap_cmds_mailbox[] = {
	{ "LIST", cmd_list, 0 },
	{ "LSUB", cmd_lsub, 0 },
	{ "STATUS", cmd_status, 0 },
	{ "CREATE", cmd_create, 0 },
	{ "DELETE", cmd_delete, 0 },
	{ "RENAME", cmd_rename, 0 },
	{ "SUBSCRIBE", cmd_subscribe, 0 },
	{ "UNSUBSCRIBE", cmd_unsubscribe, 0 },
	{ "GETQUOTA", cmd_getquota, 0 },
	{ "GETQUOTAROOT", cmd_getquotaroot, 0 },
	{ "SETQUOTA", cmd_setquota, 0 },
	{ "APPEND", cmd_append, 0 },
	{ "COPY", cmd_copy, IMAP_CMD_SELECTED | IMAP_CMD_UID },
	{ "MOVE", cmd_move, IMAP_CMD_SELECTED | IMAP_CMD_UID | IMAP_CMD_WRITE },
	{ NULL, NULL, 0 },
};
