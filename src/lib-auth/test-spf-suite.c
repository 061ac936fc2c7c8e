/* test-spf-suite.c - the open SPF test suite (pyspf's rfc7208-tests.yml,
   release 2014.04, converted once by scripts/spf-suite-convert.py into
   testdata/spf-suite.json; license in testdata/spf-suite.LICENSE) run
   against spf_check_start() over the stub resolver: one TAP test per
   case, each loading its scenario's zone into a fresh stub (with
   auth_dns_stub_set_any_names(), as the suite queries names like
   "foo:bar/baz.example.com") and comparing the result with the accepted
   ones and, where the case gives one, the explanation ("DEFAULT": no
   exp= explanation). */

#include "auth-dns-stub.h"
#include "spf.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/socket.h>
#include <cmocka.h>

#define SPF_TYPE_SPF 99

/* cmocka's TAP output drops fail_msg()'s text: print it as a comment. */
#define case_fail(...)                        \
	do {                                  \
		fprintf(stdout, "# ");        \
		fprintf(stdout, __VA_ARGS__); \
		fprintf(stdout, "\n");        \
		fflush(stdout);               \
		fail();                       \
	} while (0)

struct suite_case {
	json_t *zone;
	json_t *test;
	char *name;
};

struct seen {
	unsigned int calls;
	bool started;
	enum spf_result result;
	char *explanation;
	char *reason;
};

static uint16_t type_of(const char *type)
{
	static const struct {
		const char *name;
		uint16_t type;
	} types[] = {
		{ "A", DNS_TYPE_A },     { "AAAA", DNS_TYPE_AAAA },
		{ "MX", DNS_TYPE_MX },   { "PTR", DNS_TYPE_PTR },
		{ "TXT", DNS_TYPE_TXT }, { "CNAME", DNS_TYPE_CNAME },
		{ "SPF", SPF_TYPE_SPF },
	};

	for (unsigned int i = 0; i < N_ELEMENTS(types); i++) {
		if (strcmp(types[i].name, type) == 0)
			return types[i].type;
	}
	fail_msg("unknown type %s", type);
	return 0;
}

static void load_zone(struct auth_dns_stub *stub, json_t *zone)
{
	size_t i;
	json_t *rr;

	json_array_foreach(zone, i, rr)
	{
		const char *name =
			json_string_value(json_object_get(rr, "name"));
		const char *type =
			json_string_value(json_object_get(rr, "type"));
		json_t *data = json_object_get(rr, "data");

		assert_non_null(name);
		assert_non_null(type);
		if (strcmp(type, "TEMPFAIL") == 0) {
			size_t j;
			json_t *t;

			json_array_foreach(json_object_get(rr, "rrtypes"), j, t)
				auth_dns_stub_set_status(
					stub, name,
					type_of(json_string_value(t)),
					DNS_STATUS_TEMPFAIL);
			continue;
		}
		assert_true(json_is_string(data));
		const char *text = json_string_value(data);
		size_t len = json_string_length(data);

		switch (type_of(type)) {
		case DNS_TYPE_TXT:
			auth_dns_stub_add_txt(stub, name, text, len);
			break;
		case SPF_TYPE_SPF: {
			/* RFC 7208 3.3 / RFC 1035 3.3.14 character-strings */
			uint8_t wire[4096];
			size_t wlen = 0;

			assert_true(len < 3000);
			for (size_t pos = 0; pos < len || pos == 0;) {
				size_t n = len - pos > 255 ? 255 : len - pos;

				wire[wlen++] = (uint8_t)n;
				memcpy(wire + wlen, text + pos, n);
				wlen += n;
				pos += n;
				if (n == 0)
					break;
			}
			auth_dns_stub_add_raw(stub, name, SPF_TYPE_SPF, wire,
					      wlen);
			break;
		}
		case DNS_TYPE_A:
			assert_int_equal(auth_dns_stub_add_a(stub, name, text),
					 0);
			break;
		case DNS_TYPE_AAAA:
			assert_int_equal(
				auth_dns_stub_add_aaaa(stub, name, text), 0);
			break;
		case DNS_TYPE_MX:
			auth_dns_stub_add_mx(
				stub, name,
				(uint16_t)json_integer_value(
					json_object_get(rr, "preference")),
				text);
			break;
		case DNS_TYPE_PTR:
			auth_dns_stub_add_ptr(stub, name, text);
			break;
		case DNS_TYPE_CNAME:
			auth_dns_stub_add_cname(stub, name, text);
			break;
		}
	}
}

static void spf_cb(void *context, const struct spf_outcome *outcome)
{
	struct seen *s = context;

	assert_true(s->started);
	s->calls++;
	s->result = outcome->result;
	s->explanation = outcome->explanation == NULL
				 ? NULL
				 : strdup(outcome->explanation);
	s->reason = outcome->reason == NULL ? NULL : strdup(outcome->reason);
}

static void test_case(void **state)
{
	const struct suite_case *sc = *state;
	struct auth_dns_stub *stub = auth_dns_stub_create();
	struct spf_request req;
	struct seen seen;
	json_t *expected = json_object_get(sc->test, "result");
	json_t *exp = json_object_get(sc->test, "explanation");
	const char *host = json_string_value(json_object_get(sc->test, "host"));
	bool ok = false;
	size_t i;
	json_t *r;

	auth_dns_stub_set_any_names(stub, true);
	load_zone(stub, sc->zone);
	memset(&req, 0, sizeof(req));
	memset(&seen, 0, sizeof(seen));
	if (inet_pton(AF_INET, host, req.addr) == 1)
		req.family = AF_INET;
	else {
		assert_int_equal(inet_pton(AF_INET6, host, req.addr), 1);
		req.family = AF_INET6;
	}
	req.identity = SPF_IDENTITY_MAILFROM;
	req.sender = json_string_value(json_object_get(sc->test, "mailfrom"));
	req.helo = json_string_value(json_object_get(sc->test, "helo"));
	req.receiver = "receiver.example";

	struct spf_check *check =
		spf_check_start(auth_dns_stub_dns(stub), &req, spf_cb, &seen);
	assert_non_null(check);
	assert_int_equal(seen.calls, 0);
	seen.started = true;
	(void)auth_dns_stub_run(stub);
	assert_int_equal(seen.calls, 1);
	assert_int_equal(auth_dns_stub_pending(stub), 0);

	json_array_foreach(expected, i, r)
	{
		if (strcmp(json_string_value(r),
			   spf_result_name(seen.result)) == 0)
			ok = true;
	}
	if (!ok) {
		char *want = json_dumps(expected, JSON_COMPACT);

		case_fail("%s: got %s (%s), expected %s", sc->name,
			  spf_result_name(seen.result),
			  seen.reason == NULL ? "" : seen.reason, want);
	}
	if (exp != NULL) {
		const char *want = json_string_value(exp);

		if (strcmp(want, "DEFAULT") == 0) {
			if (seen.explanation != NULL)
				case_fail("%s: explanation '%s', expected none",
					  sc->name, seen.explanation);
		} else if (seen.explanation == NULL ||
			   strcmp(seen.explanation, want) != 0) {
			case_fail("%s: explanation '%s', expected '%s'",
				  sc->name,
				  seen.explanation == NULL ? "(none)"
							   : seen.explanation,
				  want);
		}
	}
	free(seen.explanation);
	free(seen.reason);
	auth_dns_stub_destroy(&stub);
}

int main(void)
{
	const char *srcdir = getenv("MARMOT_SOURCE_DIR");
	char path[4096];
	json_error_t error;
	json_t *root, *scenarios, *scenario;
	struct CMUnitTest *tests;
	struct suite_case *cases;
	size_t count = 0, n = 0, i, j;
	int ret;

	(void)snprintf(path, sizeof(path), "%s/testdata/spf-suite.json",
		       srcdir == NULL ? "." : srcdir);
	root = json_load_file(path, JSON_ALLOW_NUL, &error);
	if (root == NULL) {
		fprintf(stderr, "%s: %s (line %d)\n", path, error.text,
			error.line);
		return 1;
	}
	scenarios = json_object_get(root, "scenarios");
	json_array_foreach(scenarios, i, scenario) count +=
		json_array_size(json_object_get(scenario, "tests"));
	tests = calloc(count, sizeof(*tests));
	cases = calloc(count, sizeof(*cases));
	json_array_foreach(scenarios, i, scenario)
	{
		json_t *t;

		json_array_foreach(json_object_get(scenario, "tests"), j, t)
		{
			cases[n].zone = json_object_get(scenario, "zone");
			cases[n].test = t;
			cases[n].name = i_strdup_printf(
				"%s: %s",
				json_string_value(json_object_get(
					scenario, "description")),
				json_string_value(json_object_get(t, "name")));
			tests[n].name = cases[n].name;
			tests[n].test_func = test_case;
			tests[n].initial_state = &cases[n];
			n++;
		}
	}
	ret = _cmocka_run_group_tests("spf-suite", tests, n, NULL, NULL);
	for (i = 0; i < n; i++)
		i_free(cases[i].name);
	free(cases);
	free(tests);
	json_decref(root);
	return ret;
}
