/* front-http.c - the HTTP listeners' wiring: reads one request head
   (RFC 9112 2-5), answers GET and HEAD of any path with a short plain-text
   page that says the server is up, and closes. JMAP, DAV, the webmail and
   ACME replace this with src/lib-http in later issues.

   SECURITY: the request head is bounded (HTTP_MAX_HEADERS lines); bare CR,
   obs-fold and malformed request lines get 400 and a close, so nothing
   ambiguous is ever forwarded anywhere. */

#include "lib.h"
#include "front-private.h"

#include <stdio.h>
#include <time.h>

#define HTTP_MAX_HEADERS 100

struct http_state {
	bool have_request_line;
	bool head_only;
	bool allowed;
	unsigned int headers;
};

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
	return 0;
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
		return 0;
	}
	if (!state->allowed) {
		http_respond(conn, 405, "Method Not Allowed",
			     "Allow: GET, HEAD\r\n", "Method not allowed\n",
			     false);
		return -1;
	}
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
