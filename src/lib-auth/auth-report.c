/* The shared parts of the DMARC and TLS-RPT report mails (auth-report.h). */
#include "lib.h"
#include "auth-report.h"

#include <openssl/evp.h>
#include <string.h>
#include <zlib.h>

int auth_report_gzip(const void *data, size_t len, struct buf *out)
{
	z_stream z;
	int ret;

	memset(&z, 0, sizeof(z));
	/* windowBits 15 + 16: a gzip header and trailer (RFC 1952). */
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	z.next_in = (Bytef *)(uintptr_t)data;
	z.avail_in = (uInt)len;
	do {
		uint8_t *p = buf_reserve(out, 16384);

		z.next_out = p;
		z.avail_out = 16384;
		ret = deflate(&z, Z_FINISH);
		buf_commit(out, 16384 - z.avail_out);
	} while (ret == Z_OK);
	deflateEnd(&z);
	return ret == Z_STREAM_END ? 0 : -1;
}

void auth_report_base64(const void *data, size_t len, struct buf *out)
{
	const uint8_t *d = data;

	/* RFC 2045 6.8: lines of at most 76 characters (57 octets each). */
	for (size_t pos = 0; pos < len; pos += 57) {
		size_t n = len - pos < 57 ? len - pos : 57;
		unsigned char line[80];
		int w = EVP_EncodeBlock(line, d + pos, (int)n);

		buf_append(out, line, (size_t)w);
		buf_append_str(out, "\r\n");
	}
}

void auth_report_date(time_t t, char *date, size_t size)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(date, size, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}
