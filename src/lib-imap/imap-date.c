/* imap-date.c - IMAP date-time parsing (RFC 9051 9). See imap-date.h. */

#include "imap-date.h"

#include <strings.h>
#include <time.h>

static const char *const imap_months[] = { "Jan", "Feb", "Mar", "Apr",
					   "May", "Jun", "Jul", "Aug",
					   "Sep", "Oct", "Nov", "Dec" };

/* n decimal digits at p (no sign, no spaces). */
static bool imap_date_digits(const char *p, unsigned int n,
			     unsigned int *value_r)
{
	unsigned int v = 0;

	for (unsigned int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (unsigned int)(p[i] - '0');
	}
	*value_r = v;
	return true;
}

static bool imap_date_leap(unsigned int year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int imap_date_parse_datetime(const char *str, int64_t *time_r)
{
	static const unsigned int mdays[] = { 31, 28, 31, 30, 31, 30,
					      31, 31, 30, 31, 30, 31 };
	unsigned int day, mon, year, hour, min, sec, zone;
	struct tm tm;
	int64_t offset;
	time_t t;

	/* date-day-fixed = (SP DIGIT) / 2DIGIT; "-" date-month "-" date-year
	   SP time SP zone: 26 octets exactly. */
	if (strlen(str) != 26)
		return -1;
	if (str[0] == ' ') {
		if (!imap_date_digits(str + 1, 1, &day))
			return -1;
	} else if (!imap_date_digits(str, 2, &day)) {
		return -1;
	}
	if (str[2] != '-' || str[6] != '-' || str[11] != ' ' ||
	    str[14] != ':' || str[17] != ':' || str[20] != ' ' ||
	    (str[21] != '+' && str[21] != '-'))
		return -1;
	for (mon = 0; mon < 12; mon++) {
		/* RFC 9051 9 date-month: case-insensitive like all of
		   IMAP's literal strings. */
		if (strncasecmp(str + 3, imap_months[mon], 3) == 0)
			break;
	}
	if (mon == 12 || !imap_date_digits(str + 7, 4, &year) ||
	    !imap_date_digits(str + 12, 2, &hour) ||
	    !imap_date_digits(str + 15, 2, &min) ||
	    !imap_date_digits(str + 18, 2, &sec) ||
	    !imap_date_digits(str + 22, 4, &zone))
		return -1;
	if (day < 1 ||
	    day > mdays[mon] + (mon == 1 && imap_date_leap(year) ? 1 : 0) ||
	    year < 1900 || hour > 23 || min > 59 || sec > 60 || zone % 100 > 59)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (int)year - 1900;
	tm.tm_mon = (int)mon;
	tm.tm_mday = (int)day;
	tm.tm_hour = (int)hour;
	tm.tm_min = (int)min;
	tm.tm_sec = (int)sec;
	t = timegm(&tm);
	offset = (int64_t)(zone / 100) * 3600 + (int64_t)(zone % 100) * 60;
	/* "+0100" is one hour ahead of UTC: subtract it. */
	*time_r = (int64_t)t - (str[21] == '+' ? offset : -offset);
	return 0;
}
