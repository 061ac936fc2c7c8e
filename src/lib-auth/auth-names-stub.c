/* auth-names-stub.c - TRANSITIONAL: the result-name functions of spf.c,
   dkim-verify.c and arc.c, built (by meson.build) only while those files
   are not in the tree yet, so authres.c links. Each is guarded by a macro
   meson sets when the real file is missing. Delete once all three
   exist. */

#include "spf.h"
#include "dkim.h"
#include "arc.h"

#ifdef AUTH_STUB_SPF
const char *spf_result_name(enum spf_result r)
{
	static const char *const names[] = { "none",     "neutral",
					     "pass",     "fail",
					     "softfail", "temperror",
					     "permerror" };

	return (unsigned int)r < N_ELEMENTS(names) ? names[r] : "permerror";
}
#endif

#ifdef AUTH_STUB_DKIM
const char *dkim_result_name(enum dkim_result r)
{
	static const char *const names[] = { "none",     "pass",    "fail",
					     "policy",   "neutral", "temperror",
					     "permerror" };

	return (unsigned int)r < N_ELEMENTS(names) ? names[r] : "permerror";
}
#endif

#ifdef AUTH_STUB_ARC
const char *arc_chain_name(enum arc_chain cv)
{
	static const char *const names[] = { "none", "pass", "fail" };

	return (unsigned int)cv < N_ELEMENTS(names) ? names[cv] : "fail";
}
#endif
