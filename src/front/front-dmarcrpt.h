#ifndef MARMOT_FRONT_DMARCRPT_H
#define MARMOT_FRONT_DMARCRPT_H
/* DMARC aggregate reports we send (RFC 7489 7.2): the port-25 DMARC
   results counted per policy domain in memory (bounded), and every
   dmarc_report_interval one report (dmarc-report.c) per domain mailed
   through the outbound queue to the rua= mailto: addresses that pass
   the external destination check (RFC 7489 7.1). */

#include "lib.h"
#include "dmarc.h"
#include "spf.h"
#include "dkim.h"

struct front;
struct dns;

void front_dmarcrpt_init(struct front *front, struct dns *dns,
			 const psl_ctx_t *psl);
void front_dmarcrpt_deinit(void);
/* One message's evaluation; ignored without a record with rua=. */
void front_dmarcrpt_add(const char *client_ip,
			const struct dmarc_outcome *outcome,
			const struct spf_outcome *spf,
			const struct dkim_verify_result *dkim);

#endif
