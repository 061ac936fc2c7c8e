/* fuzz-smtp-command.c - libFuzzer target for smtp-command.c. The input is
   taken as a command line, as a path under every combination of flags and
   as an ESMTP parameter list, and as xtext. Checks: an accepted path
   reparses from its canonical address to the same address (so relay and
   delivery checks see one spelling), it never exceeds the RFC 5321
   4.5.3.1 limits, and xtext decoding inverts encoding. abort() otherwise.
   Replayed over tests/fuzz-corpus/fuzz-smtp-command/ in every build. */

#include "lib.h"
#include "smtp-command.h"

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_path(struct span in, unsigned int flags)
{
	struct smtp_path path, again;
	const char *error = NULL;
	char canon[sizeof(path.address) + 2];

	if (smtp_parse_path(in, flags, &path, &error) < 0) {
		if (error == NULL)
			abort();
		return;
	}
	if (path.length > in.len || path.length > SMTP_MAX_PATH ||
	    strlen(path.local) > SMTP_MAX_LOCAL_PART ||
	    strlen(path.domain) > SMTP_MAX_DOMAIN)
		abort();
	if (path.had_route && (flags & SMTP_PATH_ALLOW_ROUTE) == 0)
		abort();
	if (path.utf8 && (flags & SMTP_PATH_ALLOW_UTF8) == 0)
		abort();
	if (path.null_path || path.postmaster)
		return;
	snprintf(canon, sizeof(canon), "<%s>", path.address);
	if (smtp_parse_path(span_from_cstr(canon),
			    flags & ~SMTP_PATH_ALLOW_ROUTE, &again,
			    &error) < 0 ||
	    strcmp(again.address, path.address) != 0 ||
	    strcmp(again.local, path.local) != 0 ||
	    strcmp(again.domain, path.domain) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct span in = span_make(data, size);
	struct smtp_command cmd;
	struct smtp_param params[SMTP_MAX_PARAMS];
	unsigned int count;
	const char *error;
	char out[1024], back[1024];

	if (size > 8192)
		return 0;
	if (smtp_command_parse(in, &cmd, &error) == 0) {
		if (cmd.verb.len == 0 || cmd.verb.len > 16 ||
		    cmd.args.p < in.p ||
		    cmd.args.p + cmd.args.len > in.p + size)
			abort();
	}
	for (unsigned int flags = 0; flags < 16; flags++)
		fuzz_path(in, flags);
	for (int utf8 = 0; utf8 < 2; utf8++) {
		if (smtp_parse_params(in, utf8 != 0, params, SMTP_MAX_PARAMS,
				      &count, &error) == 0) {
			if (count > SMTP_MAX_PARAMS)
				abort();
			for (unsigned int i = 0; i < count; i++) {
				if (params[i].keyword.len == 0 ||
				    (params[i].has_value &&
				     params[i].value.len == 0))
					abort();
			}
		}
	}
	if (smtp_xtext_decode(in, out, sizeof(out)) == 0) {
		if (smtp_xtext_encode(span_from_cstr(out), back,
				      sizeof(back)) == 0 &&
		    (smtp_xtext_decode(span_from_cstr(back), back,
				       sizeof(back)) != 0 ||
		     strcmp(back, out) != 0))
			abort();
	}
	if (smtp_xtext_encode(in, out, sizeof(out)) == 0) {
		if (smtp_xtext_decode(span_from_cstr(out), back,
				      sizeof(back)) == 0) {
			/* Decoding refuses controls; otherwise it inverts. */
			if (strlen(back) != size || memcmp(back, data, size))
				abort();
		}
	}
	return 0;
}
