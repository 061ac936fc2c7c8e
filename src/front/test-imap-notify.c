/* test-imap-notify.c - the NOTIFY argument parser (RFC 5465 8) and the
   mailbox matching of its filters: every filter, events with NONE and
   MessageNew's fetch attributes, the BAD cases (MessageNew without
   MessageExpunge, FlagChange alone, mailbox events for SELECTED, two
   SELECTED groups, bad syntax), BADEVENT for METADATA events and unknown
   names, modified UTF-7 names, and which groups a mailbox falls in. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib.h"
#include "buf.h"
#include "imap-parser.h"
#include "imap-notify.h"
#include "pool.h"

#include <string.h>

struct parsed {
	pool_t pool;
	struct imap_parser *parser;
	struct imap_notify_spec spec;
	const char *error;
	int ret;
};

/* Parses "t NOTIFY args" and runs imap_notify_parse() on its arguments. */
static void parse(struct parsed *p, const char *args, bool utf8)
{
	struct imap_parser_result res;
	struct buf in = BUF_INIT;
	size_t consumed;

	memset(p, 0, sizeof(*p));
	p->pool = pool_create("test", 4096);
	p->parser = imap_parser_create(&imap_parser_limits_auth,
				       IMAP_PARSER_FLAG_LITERAL_PLUS |
					       IMAP_PARSER_FLAG_UTF8);
	buf_printf(&in, "t NOTIFY %s\r\n", args);
	assert_int_equal(
		imap_parser_parse(p->parser, buf_span(&in), &consumed, &res),
		1);
	assert_int_equal(res.event, IMAP_PARSER_EVENT_COMMAND);
	p->error = NULL;
	p->ret = imap_notify_parse(p->pool, res.cmd.args, res.cmd.arg_count,
				   utf8, &p->spec, &p->error);
	buf_free(&in);
}

static void parsed_free(struct parsed *p)
{
	imap_parser_destroy(&p->parser);
	pool_unref(&p->pool);
}

static int parse_ret(const char *args)
{
	struct parsed p;
	int ret;

	parse(&p, args, true);
	ret = p.ret;
	if (ret == IMAP_NOTIFY_PARSE_BAD)
		assert_non_null(p.error);
	parsed_free(&p);
	return ret;
}

static void test_none_and_empty(void **state ATTR_UNUSED)
{
	struct parsed p;

	parse(&p, "NONE", true);
	assert_int_equal(p.ret, IMAP_NOTIFY_PARSE_OK);
	assert_true(p.spec.none);
	parsed_free(&p);

	parse(&p, "set", true);
	assert_int_equal(p.ret, IMAP_NOTIFY_PARSE_OK);
	assert_false(p.spec.none);
	assert_false(p.spec.status);
	assert_int_equal(p.spec.group_count, 0);
	parsed_free(&p);
}

static void test_personal_all_events(void **state ATTR_UNUSED)
{
	struct parsed p;

	parse(&p,
	      "SET STATUS (PERSONAL (MessageNew MessageExpunge FlagChange "
	      "MailboxName SubscriptionChange AnnotationChange))",
	      true);
	assert_int_equal(p.ret, IMAP_NOTIFY_PARSE_OK);
	assert_true(p.spec.status);
	assert_int_equal(p.spec.group_count, 1);
	assert_int_equal(p.spec.groups[0].filter, IMAP_NOTIFY_PERSONAL);
	assert_int_equal(p.spec.groups[0].events,
			 IMAP_NOTIFY_MESSAGE_EVENTS |
				 IMAP_NOTIFY_MAILBOX_EVENTS);
	assert_int_equal(imap_notify_spec_events(&p.spec, "Anything/x", false),
			 IMAP_NOTIFY_MESSAGE_EVENTS |
				 IMAP_NOTIFY_MAILBOX_EVENTS);
	parsed_free(&p);
}

static void test_selected_groups(void **state ATTR_UNUSED)
{
	struct parsed p;
	unsigned int events;
	bool delayed;

	/* RFC 5465 3.1's example (with erratum 1804's parentheses). */
	parse(&p,
	      "set status (selected (MessageNew (uid "
	      "body.peek[header.fields (from to subject)]) MessageExpunge)) "
	      "(subtree Lists (MessageNew MessageExpunge))",
	      true);
	assert_int_equal(p.ret, IMAP_NOTIFY_PARSE_OK);
	assert_int_equal(p.spec.group_count, 2);
	assert_non_null(p.spec.groups[0].fetch_att);
	assert_int_equal(p.spec.groups[0].fetch_att->type, IMAP_ARG_LIST);
	assert_null(p.spec.groups[1].fetch_att);
	assert_true(imap_notify_spec_selected(&p.spec, &events, &delayed));
	assert_int_equal(events,
			 IMAP_NOTIFY_MESSAGE_NEW | IMAP_NOTIFY_MESSAGE_EXPUNGE);
	assert_false(delayed);
	/* SELECTED groups match no other mailbox. */
	assert_int_equal(imap_notify_spec_events(&p.spec, "INBOX", true), 0);
	assert_int_equal(imap_notify_spec_events(&p.spec, "Lists", false),
			 IMAP_NOTIFY_MESSAGE_NEW | IMAP_NOTIFY_MESSAGE_EXPUNGE);
	assert_int_equal(imap_notify_spec_events(&p.spec, "Lists/a/b", false),
			 IMAP_NOTIFY_MESSAGE_NEW | IMAP_NOTIFY_MESSAGE_EXPUNGE);
	assert_int_equal(imap_notify_spec_events(&p.spec, "Listsx", false), 0);
	parsed_free(&p);

	parse(&p, "SET (SELECTED-DELAYED NONE)", true);
	assert_int_equal(p.ret, IMAP_NOTIFY_PARSE_OK);
	assert_true(imap_notify_spec_selected(&p.spec, &events, &delayed));
	assert_int_equal(events, 0);
	assert_true(delayed);
	parsed_free(&p);

	parse(&p, "SET (PERSONAL (MailboxName))", true);
	assert_int_equal(p.ret, IMAP_NOTIFY_PARSE_OK);
	assert_false(imap_notify_spec_selected(&p.spec, &events, &delayed));
	parsed_free(&p);
}

static void test_filters(void **state ATTR_UNUSED)
{
	struct parsed p;

	parse(&p,
	      "SET (INBOXES (MessageNew MessageExpunge)) "
	      "(SUBSCRIBED (SubscriptionChange)) "
	      "(MAILBOXES (inbox/Sub \"Work Stuff\") (MailboxName))",
	      true);
	assert_int_equal(p.ret, IMAP_NOTIFY_PARSE_OK);
	assert_int_equal(p.spec.group_count, 3);
	assert_int_equal(imap_notify_spec_events(&p.spec, "INBOX", false),
			 IMAP_NOTIFY_MESSAGE_NEW | IMAP_NOTIFY_MESSAGE_EXPUNGE);
	assert_int_equal(imap_notify_spec_events(&p.spec, "Other", true),
			 IMAP_NOTIFY_SUBSCRIPTION_CHANGE);
	assert_int_equal(imap_notify_spec_events(&p.spec, "Other", false), 0);
	/* "inbox/Sub" is INBOX's child; MAILBOXES is not a subtree. */
	assert_int_equal(imap_notify_spec_events(&p.spec, "INBOX/Sub", false),
			 IMAP_NOTIFY_MAILBOX_NAME);
	assert_int_equal(imap_notify_spec_events(&p.spec, "INBOX/Sub/x", false),
			 0);
	assert_int_equal(imap_notify_spec_events(&p.spec, "Work Stuff", false),
			 IMAP_NOTIFY_MAILBOX_NAME);
	parsed_free(&p);

	/* A single mailbox without parentheses; modified UTF-7. */
	parse(&p, "SET (SUBTREE &AOk-t&AOk- (MailboxName))", false);
	assert_int_equal(p.ret, IMAP_NOTIFY_PARSE_OK);
	assert_int_equal(
		imap_notify_spec_events(&p.spec, "\xc3\xa9t\xc3\xa9/x", false),
		IMAP_NOTIFY_MAILBOX_NAME);
	parsed_free(&p);

	parse(&p, "SET (SUBTREE &Jjo (MailboxName))", false);
	assert_int_equal(p.ret, IMAP_NOTIFY_PARSE_BAD);
	parsed_free(&p);
}

static void test_bad(void **state ATTR_UNUSED)
{
	/* RFC 5465 5: MessageNew and MessageExpunge together; FlagChange
	   needs both. */
	assert_int_equal(parse_ret("SET (PERSONAL (MessageNew))"),
			 IMAP_NOTIFY_PARSE_BAD);
	assert_int_equal(parse_ret("SET (PERSONAL (MessageExpunge))"),
			 IMAP_NOTIFY_PARSE_BAD);
	assert_int_equal(parse_ret("SET (PERSONAL (FlagChange))"),
			 IMAP_NOTIFY_PARSE_BAD);
	assert_int_equal(parse_ret("SET (SELECTED (MailboxName))"),
			 IMAP_NOTIFY_PARSE_BAD);
	assert_int_equal(parse_ret("SET (SELECTED NONE) (SELECTED-DELAYED "
				   "NONE)"),
			 IMAP_NOTIFY_PARSE_BAD);
	assert_int_equal(parse_ret("SET (PERSONAL ())"), IMAP_NOTIFY_PARSE_BAD);
	assert_int_equal(parse_ret("SET (SELECTED (MessageNew () "
				   "MessageExpunge))"),
			 IMAP_NOTIFY_PARSE_BAD);
	assert_int_equal(parse_ret("SET (PERSONAL)"), IMAP_NOTIFY_PARSE_BAD);
	assert_int_equal(parse_ret("SET (NOWHERE (MailboxName))"),
			 IMAP_NOTIFY_PARSE_BAD);
	assert_int_equal(parse_ret("SET (SUBTREE (MailboxName))"),
			 IMAP_NOTIFY_PARSE_BAD);
	assert_int_equal(parse_ret("SET (SUBTREE () (MailboxName))"),
			 IMAP_NOTIFY_PARSE_BAD);
	assert_int_equal(parse_ret("SET PERSONAL"), IMAP_NOTIFY_PARSE_BAD);
	assert_int_equal(parse_ret("SET (PERSONAL (\"MailboxName\"))"),
			 IMAP_NOTIFY_PARSE_BAD);
	assert_int_equal(parse_ret("NONE x"), IMAP_NOTIFY_PARSE_BAD);
	assert_int_equal(parse_ret("RESET"), IMAP_NOTIFY_PARSE_BAD);
}

static void test_badevent(void **state ATTR_UNUSED)
{
	/* RFC 5465 3, 5.6-5.7: unsupported events are NO [BADEVENT]. */
	assert_int_equal(parse_ret("SET (PERSONAL (MailboxMetadata))"),
			 IMAP_NOTIFY_PARSE_BADEVENT);
	assert_int_equal(parse_ret("SET (PERSONAL (ServerMetadata "
				   "MailboxName))"),
			 IMAP_NOTIFY_PARSE_BADEVENT);
	assert_int_equal(parse_ret("SET (PERSONAL (MessageNew MessageExpunge))"
				   " (INBOXES (NoSuchEvent))"),
			 IMAP_NOTIFY_PARSE_BADEVENT);
	/* Syntax errors still win. */
	assert_int_equal(parse_ret("SET (PERSONAL (ServerMetadata)) "
				   "(PERSONAL)"),
			 IMAP_NOTIFY_PARSE_BAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_none_and_empty),
		cmocka_unit_test(test_personal_all_events),
		cmocka_unit_test(test_selected_groups),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_badevent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
