/* front-http.c - the HTTP listeners' wiring: reads one request head
   (RFC 9112 2-5), answers GET and HEAD of /.well-known/mta-sts.txt for
   Host mta-sts.<domain> over TLS with our MTA-STS policy (RFC 8461 3.3,
   from src/lib-auth/mtasts-policy.h), any other path with a short
   plain-text page that says the server is up, and closes. JMAP, DAV, the
   webmail and ACME replace this with src/lib-http in later issues.

   SECURITY: the request head is bounded (HTTP_MAX_HEADERS lines); bare CR,
   obs-fold and malformed request lines get 400 and a close, so nothing
   ambiguous is ever forwarded anywhere. */

#include "lib.h"
#include "front-private.h"
#include "mtasts-policy.h"
#include "pool.h"

#include <ctype.h>
#include <strings.h>
#include <stdio.h>
#include <time.h>

#define HTTP_MAX_HEADERS 100

struct http_state {
	bool have_request_line;
	bool head_only;
	bool allowed;
	bool mta_sts_path; /* the target is /.well-known/mta-sts.txt */
	unsigned int headers;
	char host[256]; /* the Host header, lowercase, without port */
};

#define HTTP_MTA_STS_PATH "/.well-known/mta-sts.txt"

static void http_greet(struct front_conn *conn)
{
}

static void http_respond(struct front_conn *conn, unsigned int status,
			 const char *reason, const char *extra_headers,
			 const char *body, bool head_only)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	/* RFC 9110 5.6.7: IMF-fixdate */
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	front_conn_printf(conn,
			  "HTTP/1.1 %u %s\r\n"
			  "Date: %s\r\n"
			  "Server: Marmot\r\n"
			  "Content-Type: text/plain; charset=utf-8\r\n"
			  "Content-Length: %zu\r\n"
			  "Cache-Control: no-store\r\n"
			  "X-Content-Type-Options: nosniff\r\n"
			  "%s"
			  "Connection: close\r\n\r\n",
			  status, reason, date, strlen(body), extra_headers);
	if (!head_only)
		front_conn_write(conn, body, strlen(body));
}

static int http_bad_request(struct front_conn *conn)
{
	http_respond(conn, 400, "Bad Request", "", "Bad request\n", false);
	return -1;
}

static bool http_token_char(uint8_t c)
{
	/* RFC 9110 5.6.2 tchar */
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int http_request_line(struct front_conn *conn, struct http_state *state,
			     struct span line)
{
	struct span method, rest, target, version;
	size_t i;

	/* RFC 9112 3: method SP request-target SP HTTP-version */
	if (!span_split(line, ' ', &method, &rest) ||
	    !span_split(rest, ' ', &target, &version) || method.len == 0 ||
	    target.len == 0)
		return http_bad_request(conn);
	for (i = 0; i < method.len; i++) {
		if (!http_token_char(method.p[i]))
			return http_bad_request(conn);
	}
	for (i = 0; i < target.len; i++) {
		if (target.p[i] <= 0x20 || target.p[i] >= 0x7f)
			return http_bad_request(conn);
	}
	if (!span_eq(version, SPAN_LIT("HTTP/1.1")) &&
	    !span_eq(version, SPAN_LIT("HTTP/1.0")))
		return http_bad_request(conn);
	state->have_request_line = true;
	state->head_only = span_eq(method, SPAN_LIT("HEAD"));
	state->allowed = state->head_only || span_eq(method, SPAN_LIT("GET"));
	state->mta_sts_path = span_eq(target, SPAN_LIT(HTTP_MTA_STS_PATH));
	return 0;
}

/* Keeps the Host header's host (RFC 9110 7.2), lowercased, port cut;
   anything that is not a plain name leaves state->host empty. */
static void http_header(struct http_state *state, struct span line)
{
	size_t colon = (size_t)span_find_byte(line, ':'), start, end, len;

	if (colon != 4 || strncasecmp((const char *)line.p, "Host", 4) != 0)
		return;
	for (start = colon + 1; start < line.len &&
				(line.p[start] == ' ' || line.p[start] == '\t');
	     start++)
		;
	for (end = start; end < line.len && line.p[end] != ':' &&
			  line.p[end] != ' ' && line.p[end] != '\t';
	     end++)
		;
	len = end - start;
	state->host[0] = '\0';
	if (len == 0 || len >= sizeof(state->host))
		return;
	for (size_t i = 0; i < len; i++)
		state->host[i] = (char)tolower(line.p[start + i]);
	state->host[len] = '\0';
}

/* RFC 8461 3.3: our policy, text/plain, for GET over HTTPS of
   https://mta-sts.<domain>/.well-known/mta-sts.txt. Every domain of this
   server has the same policy (our host name as the one MX), so the Host
   only has to be mta-sts.<a domain name>. Returns false when this is not
   such a request. */
static bool http_mta_sts(struct front_conn *conn, struct http_state *state)
{
	const char *text, *id, *error;
	pool_t pool;

	if (!state->mta_sts_path || !front_conn_is_tls(conn) ||
	    strncmp(state->host, "mta-sts.", 8) != 0 ||
	    strchr(state->host + 8, '.') == NULL)
		return false;
	pool = pool_create("http mta-sts", 512);
	if (mtasts_policy_ours(pool, front_global->set, &text, &id, &error) <
	    0) {
		http_respond(conn, 500, "Internal Server Error", "",
			     "No MTA-STS policy\n", state->head_only);
	} else {
		http_respond(conn, 200, "OK", "", text, state->head_only);
	}
	pool_unref(&pool);
	return true;
}

static int http_line(struct front_conn *conn, struct span line)
{
	struct http_state *state = conn->proto_state;
	char body[256];

	if (span_find_byte(line, '\r') >= 0)
		return http_bad_request(conn); /* RFC 9112 2.2: bare CR */
	if (!state->have_request_line) {
		/* RFC 9112 2.2: ignore at least one empty line before the
		   request line. */
		if (line.len == 0)
			return 0;
		return http_request_line(conn, state, line);
	}
	if (line.len > 0) {
		/* RFC 9112 5.2: obs-fold is rejected with 400 */
		if (line.p[0] == ' ' || line.p[0] == '\t' ||
		    span_find_byte(line, ':') <= 0 ||
		    ++state->headers > HTTP_MAX_HEADERS)
			return http_bad_request(conn);
		http_header(state, line);
		return 0;
	}
	if (!state->allowed) {
		http_respond(conn, 405, "Method Not Allowed",
			     "Allow: GET, HEAD\r\n", "Method not allowed\n",
			     false);
		return -1;
	}
	if (http_mta_sts(conn, state))
		return -1;
	snprintf(body, sizeof(body),
		 "Marmot %s on %s is running.\n"
		 "Webmail, JMAP and DAV will be served here.\n",
		 MARMOT_VERSION, front_global->set->hostname);
	http_respond(conn, 200, "OK", "", body, state->head_only);
	return -1;
}

static void http_line_too_long(struct front_conn *conn)
{
	/* RFC 6585 5 */
	http_respond(conn, 431, "Request Header Fields Too Large", "",
		     "Request header too large\n", false);
}

static void http_tls_ready(struct front_conn *conn)
{
}

static void http_goodbye(struct front_conn *conn, bool idle)
{
}

const struct front_protocol front_protocol_http = {
	.name = "http",
	.greet = http_greet,
	.line = http_line,
	.line_too_long = http_line_too_long,
	.tls_ready = http_tls_ready,
	.goodbye = http_goodbye,
	.state_size = sizeof(struct http_state),
};
