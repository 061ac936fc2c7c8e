/* front-dkim.c - DKIM signing of submitted mail through the vault (the
   steps and outcomes are in front-dkim.h). It owns the signing requests
   in flight, keyed by the id of the frame sent to the vault; front.c
   routes the vault's replies here. Security stance: the front holds no
   private key; it sends the vault a domain, selectors and 32-byte
   digests, and parses the vault's replies in full (ipc_end) and bounded:
   a malformed one closes the vault connection. */

#include "lib.h"
#include "front-dkim.h"
#include "front-private.h"
#include "dkim.h"
#include "arc.h"
#include "ioloop.h"
#include "pool.h"

#include <time.h>

/* RFC 6376 3.1 / RFC 1035 2.3.4: longer names are a malformed reply. */
#define FRONT_DKIM_NAME_MAX 255
#define FRONT_DKIM_SIG_MAX 512
/* A rotation between the KEYS and SIGN questions makes the vault answer
   NO_KEY: ask again, this many times at most. */
#define FRONT_DKIM_MAX_ATTEMPTS 2

struct front_dkim_sign {
	struct front_dkim_sign *prev, *next;
	pool_t pool;
	char *domain;
	const uint8_t *msg;
	size_t len;
	front_dkim_callback_t *cb;
	void *context;

	uint32_t id; /* of the question in flight; 0 = none */
	bool signing; /* SIGN asked (else KEYS) */
	unsigned int attempts;
	struct dkim_sign_request reqs[IPC_DKIM_MAX_SIGS];
	const char *selectors[IPC_DKIM_MAX_SIGS];
	uint32_t algs[IPC_DKIM_MAX_SIGS];
	unsigned int req_count;

	/* front_dkim_arc_seal_start(): one key, two signatures in turn. */
	bool arc, arc_as; /* arc_as: the AS digest is being signed */
	const char *authserv_id, *results;
	enum arc_chain cv;
	struct arc_seal_request arc_req;

	struct timeout *later;
	enum front_dkim_result later_result;
	const char *later_error;
};

static struct front_dkim_sign *front_dkim_list;
static uint32_t front_dkim_next_id = 1;

static void front_dkim_free(struct front_dkim_sign *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		front_dkim_list = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	timeout_remove(&s->later);
	pool_unref(&s->pool);
}

/* Frees s, then calls its callback: the caller may start another. */
static void front_dkim_finish(struct front_dkim_sign *s,
			      enum front_dkim_result result, const char *fields,
			      const char *error)
{
	front_dkim_callback_t *cb = s->cb;
	void *context = s->context;
	pool_t pool = s->pool;

	pool_ref(pool); /* keeps fields and error */
	front_dkim_free(s);
	cb(context, result, fields, error);
	pool_unref(&pool);
}

static void front_dkim_later_run(void *context)
{
	struct front_dkim_sign *s = context;

	front_dkim_finish(s, s->later_result, NULL, s->later_error);
}

static void front_dkim_finish_later(struct front_dkim_sign *s,
				    enum front_dkim_result result,
				    const char *error)
{
	s->id = 0;
	s->later_result = result;
	s->later_error = p_strdup(s->pool, error);
	if (s->later == NULL) {
		s->later = timeout_add(front_global->ioloop, 0,
				       front_dkim_later_run, s);
	}
}

static uint32_t front_dkim_new_id(void)
{
	uint32_t id = front_dkim_next_id++;

	if (front_dkim_next_id == 0)
		front_dkim_next_id = 1;
	return id;
}

static void front_dkim_send(struct front_dkim_sign *s, struct buf *out)
{
	if (front_vault_send(front_global, out) < 0) {
		front_dkim_finish_later(s, FRONT_DKIM_TEMPFAIL,
					"the vault is unreachable");
	}
}

static void front_dkim_ask_keys(struct front_dkim_sign *s)
{
	struct buf out = BUF_INIT;
	size_t off;

	s->id = front_dkim_new_id();
	s->signing = false;
	off = ipc_msg_begin(&out, IPC_VAULT_DKIM_KEYS, s->id);
	ipc_put_str(&out, s->domain);
	ipc_msg_finish(&out, off);
	front_dkim_send(s, &out);
	buf_free(&out);
}

struct front_dkim_sign *front_dkim_sign_start(const char *domain,
					      const uint8_t *msg, size_t len,
					      front_dkim_callback_t *cb,
					      void *context)
{
	pool_t pool = pool_create("dkim sign", 2048);
	struct front_dkim_sign *s = p_new(pool, struct front_dkim_sign, 1);

	s->pool = pool;
	s->domain = p_strdup(pool, domain);
	s->msg = msg;
	s->len = len;
	s->cb = cb;
	s->context = context;
	s->next = front_dkim_list;
	if (front_dkim_list != NULL)
		front_dkim_list->prev = s;
	front_dkim_list = s;
	if (strlen(domain) > FRONT_DKIM_NAME_MAX) {
		front_dkim_finish_later(s, FRONT_DKIM_NO_KEYS, NULL);
		return s;
	}
	front_dkim_ask_keys(s);
	return s;
}

struct front_dkim_sign *front_dkim_arc_seal_start(
	const char *domain, const uint8_t *msg, size_t len,
	const char *authserv_id, const char *results, int cv,
	front_dkim_callback_t *cb, void *context)
{
	/* Only the KEYS question is sent here: the fields below are read
	   when its reply comes. */
	struct front_dkim_sign *s =
		front_dkim_sign_start(domain, msg, len, cb, context);

	s->arc = true;
	s->authserv_id = p_strdup(s->pool, authserv_id);
	s->results = p_strdup(s->pool, results);
	s->cv = (enum arc_chain)cv;
	return s;
}

void front_dkim_sign_abort(struct front_dkim_sign **_s)
{
	struct front_dkim_sign *s = *_s;

	*_s = NULL;
	if (s != NULL)
		front_dkim_free(s);
}

static struct front_dkim_sign *front_dkim_find(uint32_t id)
{
	for (struct front_dkim_sign *s = front_dkim_list; s != NULL;
	     s = s->next) {
		if (s->id == id && id != 0)
			return s;
	}
	return NULL;
}

static void front_dkim_send_sign(struct front_dkim_sign *s)
{
	struct buf out = BUF_INIT;
	size_t off;

	s->id = front_dkim_new_id();
	s->signing = true;
	off = ipc_msg_begin(&out, IPC_VAULT_DKIM_SIGN, s->id);
	ipc_put_str(&out, s->domain);
	ipc_put_u32(&out, s->req_count);
	for (unsigned int i = 0; i < s->req_count; i++) {
		ipc_put_str(&out, s->selectors[i]);
		ipc_put_u32(&out, s->algs[i]);
		if (s->arc) {
			ipc_put_bytes(&out, s->arc_req.digest,
				      sizeof(s->arc_req.digest));
		} else {
			ipc_put_bytes(&out, s->reqs[i].digest,
				      sizeof(s->reqs[i].digest));
		}
	}
	ipc_msg_finish(&out, off);
	front_dkim_send(s, &out);
	buf_free(&out);
}

/* ARC: the key is selectors[0]; ask for the AMS signature first. */
static void front_dkim_arc_ask(struct front_dkim_sign *s)
{
	const struct arc_seal_params params = {
		.domain = s->domain,
		.selector = s->selectors[0],
		.algorithm = (enum dkim_algorithm)s->algs[0],
		.timestamp = (int64_t)time(NULL),
		.authserv_id = s->authserv_id,
		.results = s->results,
		.cv = s->cv,
	};
	const char *error;
	int ret;

	s->arc_as = false;
	ret = arc_seal_prepare_ams(s->pool, s->msg, s->len, &params,
				   &s->arc_req, &error);
	if (ret < 0) {
		front_dkim_finish_later(s, FRONT_DKIM_BAD_MESSAGE, error);
		return;
	}
	if (ret == 0) {
		/* RFC 8617 5.1.2: a failed chain gets no new set. */
		front_dkim_finish_later(s, FRONT_DKIM_NO_KEYS, error);
		return;
	}
	front_dkim_send_sign(s);
}

/* The keys are known: prepare one signature per key and ask for them. */
static void front_dkim_ask_sign(struct front_dkim_sign *s)
{
	const char *error;

	if (s->arc) {
		front_dkim_arc_ask(s);
		return;
	}
	for (unsigned int i = 0; i < s->req_count; i++) {
		const struct dkim_sign_params params = {
			.domain = s->domain,
			.selector = s->selectors[i],
			.algorithm = (enum dkim_algorithm)s->algs[i],
			/* RFC 6376 3.5 t=: the signing time. */
			.timestamp = (int64_t)time(NULL),
		};

		if (dkim_sign_prepare(s->pool, s->msg, s->len, &params,
				      &s->reqs[i], &error) < 0) {
			front_dkim_finish_later(s, FRONT_DKIM_BAD_MESSAGE,
						error);
			return;
		}
	}
	front_dkim_send_sign(s);
}

static int front_dkim_keys_reply(struct front_dkim_sign *s,
				 struct ipc_reader *r)
{
	uint32_t status = ipc_get_u32(r), n = ipc_get_u32(r);

	if (r->failed || n > IPC_DKIM_MAX_SIGS)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		s->selectors[i] = ipc_get_str(r, s->pool);
		s->algs[i] = ipc_get_u32(r);
		if (strlen(s->selectors[i]) > FRONT_DKIM_NAME_MAX ||
		    s->algs[i] > DKIM_ALG_ED25519_SHA256)
			return -1;
	}
	if (ipc_end(r) < 0 || status > IPC_DKIM_NO_KEY)
		return -1;
	s->id = 0;
	if (status != IPC_DKIM_OK) {
		front_dkim_finish(s, FRONT_DKIM_TEMPFAIL, NULL,
				  "the vault cannot list the DKIM keys");
	} else if (n == 0) {
		front_dkim_finish(s, FRONT_DKIM_NO_KEYS, NULL, NULL);
	} else if (s->arc) {
		/* One set, with an RSA key when there is one (the vault
		   lists Ed25519 first). */
		for (uint32_t i = 1; i < n; i++) {
			if (s->algs[0] != DKIM_ALG_RSA_SHA256 &&
			    s->algs[i] == DKIM_ALG_RSA_SHA256) {
				s->selectors[0] = s->selectors[i];
				s->algs[0] = s->algs[i];
			}
		}
		s->req_count = 1;
		front_dkim_ask_sign(s);
	} else {
		s->req_count = n;
		front_dkim_ask_sign(s);
	}
	return 0;
}

static int front_dkim_sign_reply(struct front_dkim_sign *s,
				 struct ipc_reader *r)
{
	uint32_t status = ipc_get_u32(r), n = ipc_get_u32(r);
	struct buf fields = BUF_INIT;
	const char *text;

	if (r->failed || status > IPC_DKIM_NO_KEY ||
	    n != (status == IPC_DKIM_OK ? s->req_count : 0))
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		struct span sig = ipc_get_bytes(r);

		if (r->failed || sig.len == 0 || sig.len > FRONT_DKIM_SIG_MAX) {
			buf_free(&fields);
			return -1;
		}
		if (s->arc && !s->arc_as) {
			const char *error;

			if (arc_seal_prepare_as(&s->arc_req, sig.p, sig.len,
						&error) < 0) {
				buf_free(&fields);
				return -1;
			}
		} else if (s->arc) {
			buf_append_str(&fields,
				       arc_seal_finish(s->pool, &s->arc_req,
						       sig.p, sig.len));
		} else {
			buf_append_str(&fields,
				       dkim_sign_finish(s->pool, &s->reqs[i],
							sig.p, sig.len));
		}
	}
	if (ipc_end(r) < 0) {
		buf_free(&fields);
		return -1;
	}
	s->id = 0;
	if (status == IPC_DKIM_OK && s->arc && !s->arc_as) {
		/* RFC 8617 5.1.1: the AS covers the new AMS. */
		buf_free(&fields);
		s->arc_as = true;
		front_dkim_send_sign(s);
	} else if (status == IPC_DKIM_OK) {
		text = p_strdup(s->pool, buf_cstr(&fields));
		buf_free(&fields);
		front_dkim_finish(s, FRONT_DKIM_SIGNED, text, NULL);
	} else if (status == IPC_DKIM_NO_KEY &&
		   ++s->attempts < FRONT_DKIM_MAX_ATTEMPTS) {
		/* The keys changed (dkim activate) between the questions. */
		front_dkim_ask_keys(s);
	} else {
		front_dkim_finish(s, FRONT_DKIM_TEMPFAIL, NULL,
				  "the vault cannot sign");
	}
	return 0;
}

int front_dkim_vault_reply(const struct ipc_frame *frame)
{
	struct front_dkim_sign *s = front_dkim_find(frame->id);
	struct ipc_reader r;

	/* An aborted request is gone from the list: drop its reply. */
	if (s == NULL)
		return 0;
	if (s->signing != (frame->type == IPC_FRONT_DKIM_SIGN_REPLY))
		return -1;
	ipc_reader_init(&r, frame);
	return s->signing ? front_dkim_sign_reply(s, &r)
			  : front_dkim_keys_reply(s, &r);
}

void front_dkim_vault_lost(void)
{
	for (struct front_dkim_sign *s = front_dkim_list; s != NULL;
	     s = s->next) {
		if (s->id != 0) {
			front_dkim_finish_later(s, FRONT_DKIM_TEMPFAIL,
						"the vault connection was "
						"lost");
		}
	}
}
