/* imap-thread.c - THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256
   3) and the THREAD response (RFC 5256 4). Containers live in one array
   sized up front (messages + references + grouping dummies + the top);
   links are indexes. Every walk is iterative. */

#include "imap-thread.h"
#include "imap-sort.h"
#include "buf.h"
#include "pool.h"

#include <stdlib.h>
#include <strings.h>

#define NONE IMAP_THREAD_NONE

struct thread_ctx {
	struct pool *pool;
	const struct imap_thread_msg *msgs;
	struct imap_thread_node *nodes;
	unsigned int count, alloc;
	/* Message-ID -> container (open addressing, power of two). */
	uint32_t *table;
	size_t table_size;
};

bool imap_thread_algorithm_parse(const char *name,
				 enum imap_thread_algorithm *algo_r)
{
	if (strcasecmp(name, "ORDEREDSUBJECT") == 0)
		*algo_r = IMAP_THREAD_ORDEREDSUBJECT;
	else if (strcasecmp(name, "REFERENCES") == 0)
		*algo_r = IMAP_THREAD_REFERENCES;
	else
		return false;
	return true;
}

static uint32_t node_new(struct thread_ctx *ctx, const char *id)
{
	struct imap_thread_node *n;

	i_assert(ctx->count < ctx->alloc);
	n = &ctx->nodes[ctx->count];
	n->msg = n->parent = n->first_child = NONE;
	n->next_sibling = n->prev_sibling = NONE;
	n->id = id;
	return ctx->count++;
}

static bool is_dummy(const struct thread_ctx *ctx, uint32_t n)
{
	return ctx->nodes[n].msg == NONE;
}

static void unlink_node(struct thread_ctx *ctx, uint32_t c)
{
	struct imap_thread_node *n = &ctx->nodes[c];

	if (n->parent == NONE)
		return;
	if (n->prev_sibling != NONE)
		ctx->nodes[n->prev_sibling].next_sibling = n->next_sibling;
	else
		ctx->nodes[n->parent].first_child = n->next_sibling;
	if (n->next_sibling != NONE)
		ctx->nodes[n->next_sibling].prev_sibling = n->prev_sibling;
	n->parent = n->next_sibling = n->prev_sibling = NONE;
}

/* Makes c (without a parent) the first child of p. */
static void link_node(struct thread_ctx *ctx, uint32_t p, uint32_t c)
{
	struct imap_thread_node *n = &ctx->nodes[c];

	i_assert(n->parent == NONE);
	n->parent = p;
	n->prev_sibling = NONE;
	n->next_sibling = ctx->nodes[p].first_child;
	if (n->next_sibling != NONE)
		ctx->nodes[n->next_sibling].prev_sibling = c;
	ctx->nodes[p].first_child = c;
}

/* Puts c's children in c's place in its parent's list and drops c.
   Returns the first of them (NONE when c had none). */
static uint32_t promote_children(struct thread_ctx *ctx, uint32_t c)
{
	struct imap_thread_node *n = &ctx->nodes[c];
	uint32_t first = n->first_child, last = NONE, k;

	for (k = first; k != NONE; k = ctx->nodes[k].next_sibling) {
		ctx->nodes[k].parent = n->parent;
		last = k;
	}
	if (first == NONE) {
		unlink_node(ctx, c);
		return NONE;
	}
	ctx->nodes[first].prev_sibling = n->prev_sibling;
	if (n->prev_sibling != NONE)
		ctx->nodes[n->prev_sibling].next_sibling = first;
	else
		ctx->nodes[n->parent].first_child = first;
	ctx->nodes[last].next_sibling = n->next_sibling;
	if (n->next_sibling != NONE)
		ctx->nodes[n->next_sibling].prev_sibling = last;
	n->parent = n->first_child = n->next_sibling = n->prev_sibling = NONE;
	return first;
}

static unsigned int child_count(const struct thread_ctx *ctx, uint32_t p)
{
	unsigned int n = 0;

	for (uint32_t k = ctx->nodes[p].first_child; k != NONE;
	     k = ctx->nodes[k].next_sibling)
		n++;
	return n;
}

/* true if a is b or one of b's ancestors: linking b -> a (a as b's
   child) would close a loop (RFC 5256 3 REFERENCES (1)(B)). */
static bool is_ancestor(const struct thread_ctx *ctx, uint32_t a, uint32_t b)
{
	for (; b != NONE; b = ctx->nodes[b].parent) {
		if (b == a)
			return true;
	}
	return false;
}

/* ---- Message-ID table ---- */

static size_t id_hash(const char *id)
{
	size_t h = 2166136261u;

	for (; *id != '\0'; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h;
}

/* The container for id, created if missing. */
static uint32_t id_container(struct thread_ctx *ctx, const char *id)
{
	size_t i = id_hash(id) & (ctx->table_size - 1);

	/* The table is at least twice the possible ids: there is room. */
	while (ctx->table[i] != NONE) {
		if (strcmp(ctx->nodes[ctx->table[i]].id, id) == 0)
			return ctx->table[i];
		i = (i + 1) & (ctx->table_size - 1);
	}
	ctx->table[i] = node_new(ctx, id);
	return ctx->table[i];
}

/* ---- Sorting siblings by sent date (RFC 5256 2.2, REFERENCES (6)) ---- */

static int cmp_nodes(const void *p1, const void *p2, void *context)
{
	const struct thread_ctx *ctx = context;
	const struct imap_thread_node *a = &ctx->nodes[*(const uint32_t *)p1];
	const struct imap_thread_node *b = &ctx->nodes[*(const uint32_t *)p2];

	if (a->key_date != b->key_date)
		return a->key_date < b->key_date ? -1 : 1;
	/* Equal dates: mailbox order. */
	return a->key_seq < b->key_seq ? -1 : a->key_seq > b->key_seq ? 1 : 0;
}

/* Sorts the children of every node under top, bottom-up, so that a
   dummy takes the key of its first child (RFC 5256 3 REFERENCES (6)). */
static void sort_all(struct thread_ctx *ctx, uint32_t top)
{
	uint32_t *order = p_new(ctx->pool, uint32_t, ctx->count);
	uint32_t *kids = p_new(ctx->pool, uint32_t, ctx->count);
	unsigned int n = 0, head = 0;

	/* Breadth-first order; processed backwards, children come before
	   their parents. */
	order[n++] = top;
	while (head < n) {
		uint32_t p = order[head++];

		for (uint32_t k = ctx->nodes[p].first_child; k != NONE;
		     k = ctx->nodes[k].next_sibling)
			order[n++] = k;
	}
	while (n > 0) {
		uint32_t p = order[--n], k;
		struct imap_thread_node *node = &ctx->nodes[p];
		unsigned int kc = 0;

		for (k = node->first_child; k != NONE;
		     k = ctx->nodes[k].next_sibling)
			kids[kc++] = k;
		if (kc > 1)
			qsort_r(kids, kc, sizeof(*kids), cmp_nodes, ctx);
		node->first_child = kc > 0 ? kids[0] : NONE;
		for (unsigned int i = 0; i < kc; i++) {
			ctx->nodes[kids[i]].prev_sibling =
				i > 0 ? kids[i - 1] : NONE;
			ctx->nodes[kids[i]].next_sibling =
				i + 1 < kc ? kids[i + 1] : NONE;
		}
		if (node->msg != NONE) {
			node->key_date = ctx->msgs[node->msg].date;
			node->key_seq = ctx->msgs[node->msg].seq;
		} else if (kc > 0) {
			node->key_date = ctx->nodes[kids[0]].key_date;
			node->key_seq = ctx->nodes[kids[0]].key_seq;
		} else {
			node->key_date = 0;
			node->key_seq = 0;
		}
	}
}

/* ---- REFERENCES ---- */

/* RFC 5256 3 REFERENCES (1): the containers and their links. */
static void refs_link(struct thread_ctx *ctx, unsigned int count)
{
	for (unsigned int i = 0; i < count; i++) {
		const struct imap_thread_msg *m = &ctx->msgs[i];
		uint32_t c = NONE, prev = NONE, r;

		/* (A) A duplicate or missing Message-ID gets a container of
		   its own, as if it had a unique id. */
		if (m->message_id[0] != '\0')
			c = id_container(ctx, m->message_id);
		if (c == NONE || ctx->nodes[c].msg != NONE)
			c = node_new(ctx, NULL);
		ctx->nodes[c].msg = i;

		/* (B) Chain the references, parent before child, unless the
		   child has a parent already or the link would loop. */
		for (unsigned int j = 0; m->references[j] != NULL; j++) {
			if (m->references[j][0] == '\0')
				continue;
			r = id_container(ctx, m->references[j]);
			if (prev != NONE && ctx->nodes[r].parent == NONE &&
			    !is_ancestor(ctx, r, prev))
				link_node(ctx, prev, r);
			prev = r;
		}
		/* (C) The last reference is the parent: it replaces an
		   earlier one (NIL if there are no references), unless that
		   would loop. */
		if (ctx->nodes[c].parent == prev)
			continue;
		if (prev != NONE && is_ancestor(ctx, c, prev))
			continue;
		unlink_node(ctx, c);
		if (prev != NONE)
			link_node(ctx, prev, c);
	}
}

/* RFC 5256 3 REFERENCES (4): empty dummies go; a dummy's children take
   its place, except that a dummy at the top with several children stays
   (its children would become separate threads). */
static void refs_prune(struct thread_ctx *ctx, uint32_t top)
{
	uint32_t *stack = p_new(ctx->pool, uint32_t, ctx->count);
	unsigned int depth = 0;

	stack[depth++] = top;
	while (depth > 0) {
		uint32_t p = stack[--depth];
		uint32_t c = ctx->nodes[p].first_child, next, first;

		while (c != NONE) {
			next = ctx->nodes[c].next_sibling;
			if (!is_dummy(ctx, c)) {
				stack[depth++] = c;
				c = next;
			} else if (ctx->nodes[c].first_child == NONE) {
				unlink_node(ctx, c);
				c = next;
			} else if (p != top || child_count(ctx, c) == 1) {
				/* The promoted children are looked at in
				   turn: they may be dummies too. */
				first = promote_children(ctx, c);
				c = first;
			} else {
				stack[depth++] = c;
				c = next;
			}
		}
	}
}

/* The subject and reply flag a top-level thread is grouped by: its
   message's, or a dummy's first child's (sorted already). */
static const struct imap_thread_msg *root_msg(const struct thread_ctx *ctx,
					      uint32_t r)
{
	while (r != NONE && ctx->nodes[r].msg == NONE)
		r = ctx->nodes[r].first_child;
	return r == NONE ? NULL : &ctx->msgs[ctx->nodes[r].msg];
}

struct subject_slot {
	const char *subject;
	uint32_t node;
};

static struct subject_slot *subject_slot(struct subject_slot *table,
					 size_t size, const char *subject)
{
	size_t i = id_hash(subject) & (size - 1);

	while (table[i].subject != NULL &&
	       strcmp(table[i].subject, subject) != 0)
		i = (i + 1) & (size - 1);
	return &table[i];
}

/* RFC 5256 3 REFERENCES (5): top-level threads with the same base
   subject are gathered. */
static void refs_group(struct thread_ctx *ctx, uint32_t top)
{
	const struct imap_thread_msg *rm, *tm;
	struct subject_slot *table, *slot;
	size_t size = 16;
	unsigned int roots = child_count(ctx, top);
	uint32_t r, next, t, d;

	while (size < (size_t)roots * 2 + 2)
		size *= 2;
	table = p_new(ctx->pool, struct subject_slot, size);

	/* (A) The subject table: a dummy wins over a message, a message
	   that is not a reply over a reply. */
	for (r = ctx->nodes[top].first_child; r != NONE;
	     r = ctx->nodes[r].next_sibling) {
		rm = root_msg(ctx, r);
		if (rm == NULL || rm->base_subject[0] == '\0')
			continue;
		slot = subject_slot(table, size, rm->base_subject);
		if (slot->subject == NULL) {
			slot->subject = rm->base_subject;
			slot->node = r;
			continue;
		}
		t = slot->node;
		tm = root_msg(ctx, t);
		if (is_dummy(ctx, t))
			continue;
		if (is_dummy(ctx, r) ||
		    (tm->subject_is_reply && !rm->subject_is_reply))
			slot->node = r;
	}

	/* (B) Merge every other thread of the subject into the table's. */
	for (r = ctx->nodes[top].first_child; r != NONE; r = next) {
		next = ctx->nodes[r].next_sibling;
		rm = root_msg(ctx, r);
		if (rm == NULL || rm->base_subject[0] == '\0')
			continue;
		slot = subject_slot(table, size, rm->base_subject);
		t = slot->node;
		if (t == r)
			continue;
		tm = root_msg(ctx, t);
		unlink_node(ctx, r);
		if (is_dummy(ctx, t) && is_dummy(ctx, r)) {
			/* Both dummies: r's children join t's. */
			uint32_t k, knext;

			for (k = ctx->nodes[r].first_child; k != NONE;
			     k = knext) {
				knext = ctx->nodes[k].next_sibling;
				unlink_node(ctx, k);
				link_node(ctx, t, k);
			}
		} else if (is_dummy(ctx, t)) {
			link_node(ctx, t, r);
		} else if (is_dummy(ctx, r)) {
			/* Not reached: (A) prefers dummies. */
			unlink_node(ctx, t);
			link_node(ctx, r, t);
			link_node(ctx, top, r);
			slot->node = r;
		} else if (!tm->subject_is_reply && rm->subject_is_reply) {
			link_node(ctx, t, r);
		} else {
			/* Siblings under a new dummy in t's place. */
			d = node_new(ctx, NULL);
			unlink_node(ctx, t);
			link_node(ctx, top, d);
			link_node(ctx, d, t);
			link_node(ctx, d, r);
			slot->node = d;
		}
	}
}

/* RFC 5256 3 REFERENCES; returns the top. */
static uint32_t thread_references(struct thread_ctx *ctx, unsigned int count)
{
	uint32_t i, top;

	refs_link(ctx, count);
	/* (2) The root set: containers without a parent. (3) The id table
	   is not needed any more. */
	top = node_new(ctx, NULL);
	for (i = 0; i < top; i++) {
		if (ctx->nodes[i].parent == NONE)
			link_node(ctx, top, i);
	}
	refs_prune(ctx, top);
	/* Sorted first so that grouping meets the earliest thread of a
	   subject first and dummies know their first child. */
	sort_all(ctx, top);
	refs_group(ctx, top);
	/* (6) Siblings by sent date at every level. */
	sort_all(ctx, top);
	return top;
}

/* ---- ORDEREDSUBJECT ---- */

static int cmp_subject(const void *p1, const void *p2, void *context)
{
	const struct imap_thread_msg *msgs = context;
	const struct imap_thread_msg *a = &msgs[*(const uint32_t *)p1];
	const struct imap_thread_msg *b = &msgs[*(const uint32_t *)p2];
	int ret = imap_ascii_casemap_cmp(a->base_subject, b->base_subject);

	if (ret != 0)
		return ret;
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq ? 1 : 0;
}

/* RFC 5256 3 ORDEREDSUBJECT: sorted by base subject then sent date; the
   first message of each subject is the root, the others its children;
   threads in order of their roots' sent dates. */
static void thread_orderedsubject(struct thread_ctx *ctx, unsigned int count,
				  uint32_t top)
{
	uint32_t *order = p_new(ctx->pool, uint32_t, count + 1);
	uint32_t root = NONE;

	for (uint32_t i = 0; i < count; i++) {
		order[i] = i;
		ctx->nodes[i].msg = i;
	}
	if (count > 1)
		qsort_r(order, count, sizeof(*order), cmp_subject,
			(void *)ctx->msgs);
	for (unsigned int i = 0; i < count; i++) {
		if (root != NONE &&
		    imap_ascii_casemap_cmp(
			    ctx->msgs[order[i]].base_subject,
			    ctx->msgs[ctx->nodes[root].msg].base_subject) ==
			    0) {
			link_node(ctx, root, order[i]);
		} else {
			root = order[i];
			link_node(ctx, top, root);
		}
	}
	sort_all(ctx, top);
}

void imap_thread_build(struct pool *pool, const struct imap_thread_msg *msgs,
		       unsigned int count, enum imap_thread_algorithm algo,
		       struct imap_thread *thread_r)
{
	struct thread_ctx ctx = { .pool = pool, .msgs = msgs };
	size_t refs = 0;
	uint32_t top, i;

	for (i = 0; i < count && algo == IMAP_THREAD_REFERENCES; i++) {
		for (unsigned int j = 0; msgs[i].references[j] != NULL; j++)
			refs++;
	}
	/* Messages, referenced ids, grouping dummies, the top. */
	ctx.alloc = (unsigned int)i_size_add(i_size_mul(count, 2), refs) + 1;
	ctx.nodes = p_new(pool, struct imap_thread_node, ctx.alloc);
	if (algo == IMAP_THREAD_REFERENCES) {
		ctx.table_size = 16;
		while (ctx.table_size < i_size_mul(count + refs, 2))
			ctx.table_size *= 2;
		ctx.table = p_new(pool, uint32_t, ctx.table_size);
		memset(ctx.table, 0xff, ctx.table_size * sizeof(*ctx.table));
		top = thread_references(&ctx, count);
	} else {
		for (i = 0; i < count; i++)
			(void)node_new(&ctx, NULL);
		top = node_new(&ctx, NULL);
		thread_orderedsubject(&ctx, count, top);
	}
	thread_r->nodes = ctx.nodes;
	thread_r->node_count = ctx.count;
	thread_r->top = top;
}

/* ---- The response ---- */

static void write_num(struct buf *out, const struct imap_thread *thread,
		      const struct imap_thread_msg *msgs, uint32_t n, bool uid)
{
	const struct imap_thread_msg *m = &msgs[thread->nodes[n].msg];

	buf_printf(out, "%u", uid ? m->uid : m->seq);
}

/* One thread, "(" ... ")" (RFC 5256 4: thread-list = "(" (thread-members
   / thread-nested) ")", thread-members = nz-number *(SP nz-number) [SP
   thread-nested], thread-nested = 2*thread-list): a single child
   continues the member list, several children are each a nested list.
   stack holds, per open nested level, the next sibling to write. */
static void write_thread(struct buf *out, const struct imap_thread *thread,
			 const struct imap_thread_msg *msgs, uint32_t root,
			 bool uid, uint32_t *stack)
{
	const struct imap_thread_node *nodes = thread->nodes;
	unsigned int depth = 0;
	uint32_t cur = root, c;

	buf_append_c(out, '(');
	for (;;) {
		for (;;) {
			bool wrote = nodes[cur].msg != NONE;

			if (wrote)
				write_num(out, thread, msgs, cur, uid);
			c = nodes[cur].first_child;
			if (c == NONE)
				break;
			if (wrote)
				buf_append_c(out, ' ');
			if (nodes[c].next_sibling != NONE) {
				stack[depth++] = nodes[c].next_sibling;
				buf_append_c(out, '(');
			}
			cur = c;
		}
		/* Close finished nested lists; open the next sibling. */
		for (;;) {
			if (depth == 0) {
				buf_append_c(out, ')');
				return;
			}
			buf_append_c(out, ')');
			c = stack[depth - 1];
			if (c != NONE) {
				stack[depth - 1] = nodes[c].next_sibling;
				buf_append_c(out, '(');
				cur = c;
				break;
			}
			depth--;
		}
	}
}

void imap_thread_write(struct buf *out, const struct imap_thread *thread,
		       const struct imap_thread_msg *msgs, bool uid)
{
	uint32_t *stack = i_new(uint32_t, thread->node_count + 1);

	buf_append_str(out, "* THREAD");
	if (thread->nodes[thread->top].first_child != NONE)
		buf_append_c(out, ' ');
	for (uint32_t r = thread->nodes[thread->top].first_child; r != NONE;
	     r = thread->nodes[r].next_sibling)
		write_thread(out, thread, msgs, r, uid, stack);
	i_free(stack);
	buf_append_str(out, "\r\n");
}
