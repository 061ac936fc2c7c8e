/* fuzz-dns-rdata.c - libFuzzer target for lib-dns's rdata decoding: the
   MX exchange names (RFC 1035 3.3.9), TXT character-strings (3.3.14), TLSA
   fields (RFC 6698 2.1), A/AAAA lengths, and what reaches the callbacks.
   Input: one type byte (0 MX, 1 A, 2 AAAA, 3 TXT, 4 TLSA, else raw), then
   records, each a 2-byte big-endian length and that many bytes (a short
   last record is cut to what is left). Built with -Dfuzz=true, and
   replayed over tests/fuzz-corpus/fuzz-dns-rdata/ by every test run. */

#include "dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_RECORDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t types[] = { DNS_TYPE_MX, DNS_TYPE_A,
					  DNS_TYPE_AAAA, DNS_TYPE_TXT,
					  DNS_TYPE_TLSA };
	char *rdata[FUZZ_MAX_RECORDS + 1];
	int len[FUZZ_MAX_RECORDS + 1];
	unsigned int count = 0;
	size_t pos = 1;

	if (size == 0)
		return 0;
	uint16_t rrtype = data[0] < N_ELEMENTS(types) ? types[data[0]] : 99;
	while (pos + 2 <= size && count < FUZZ_MAX_RECORDS) {
		size_t n = ((size_t)data[pos] << 8) | data[pos + 1];

		pos += 2;
		if (n > size - pos)
			n = size - pos;
		/* Exact-size copies, so ASan sees any read past a record. */
		rdata[count] = i_malloc(n == 0 ? 1 : n);
		memcpy(rdata[count], data + pos, n);
		len[count] = (int)n;
		count++;
		pos += n;
	}
	rdata[count] = NULL;
	len[count] = 0;
	(void)dns_test_decode(rrtype, rdata, len, count);
	for (unsigned int i = 0; i < count; i++)
		i_free(rdata[i]);
	return 0;
}
