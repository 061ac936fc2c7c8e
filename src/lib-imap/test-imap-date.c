/* test-imap-date.c - unit tests for RFC 9051 9 date-time: both day forms,
   zones east and west, leap days and seconds, and a table of malformed
   dates that must be refused. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "imap-date.h"

static const struct {
	const char *input;
	int ret;
	int64_t time;
} cases[] = {
	/* RFC 9051 6.3.12's example. */
	{ "17-Jul-1996 02:44:25 -0700", 0, 837596665 },
	{ " 7-Jul-1996 02:44:25 +0000", 0, 836707465 },
	{ "07-jul-1996 02:44:25 +0000", 0, 836707465 },
	{ "05-Mar-2026 14:30:00 +0100", 0, 1772717400 },
	{ "01-Jan-1970 00:00:00 +0000", 0, 0 },
	{ "29-Feb-2024 12:00:00 +0000", 0, 1709208000 },
	{ "31-Dec-2026 23:59:60 +0000", 0, 1798761600 },
	{ "01-Jan-1970 01:30:00 +0130", 0, 0 },
	{ "29-Feb-2026 12:00:00 +0000", -1, 0 },
	{ "31-Apr-2026 12:00:00 +0000", -1, 0 },
	{ "00-Jan-2026 12:00:00 +0000", -1, 0 },
	{ "01-Foo-2026 12:00:00 +0000", -1, 0 },
	{ "01-Jan-2026 24:00:00 +0000", -1, 0 },
	{ "01-Jan-2026 12:60:00 +0000", -1, 0 },
	{ "01-Jan-2026 12:00:00 +0060", -1, 0 },
	{ "01-Jan-2026 12:00:00 0000", -1, 0 },
	{ "01-Jan-2026 12:00:00 *0000", -1, 0 },
	{ "1-Jan-2026 12:00:00 +0000", -1, 0 },
	{ "01-Jan-2026 12:00:00 +00000", -1, 0 },
	{ "01-Jan-2026  2:00:00 +0000", -1, 0 },
	{ "01-Jan-+026 12:00:00 +0000", -1, 0 },
	{ "", -1, 0 },
	{ "01-Jan-1899 12:00:00 +0000", -1, 0 },
};

static void test_table(void **state ATTR_UNUSED)
{
	for (unsigned int i = 0; i < N_ELEMENTS(cases); i++) {
		int64_t t = -12345;
		int ret = imap_date_parse_datetime(cases[i].input, &t);

		if (ret != cases[i].ret || (ret == 0 && t != cases[i].time))
			fail_msg("'%s': ret %d time %lld", cases[i].input, ret,
				 (long long)t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
