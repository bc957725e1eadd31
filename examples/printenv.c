/*
 * printenv.c: an example FastCGI responder (libfcgi) that prints the
 * parameters it receives, and the test application of the integration
 * suite: its query string selects behaviours (echo, large or slow
 * answers, errors, crashes) that exercise the gateway's FastCGI client.
 *
 * It follows the libfcgi convention: started with a listening socket as
 * file descriptor 0, it answers requests one at a time, for ever.
 *
 * Query string words, separated by '&' (values are percent-decoded):
 *   json          the parameters as one JSON object
 *   echo          the request body, byte-exact, with a Content-Length
 *   size=N        N bytes of "0123456789abcdef" repeated, no Content-Length
 *   length        with size=N: send a Content-Length too
 *   status=NNN    a "Status: NNN Reason" header
 *   sleep=MS      sleep MS milliseconds before answering
 *   stderr=TEXT   write TEXT (and a newline) to the FastCGI stderr stream
 *   crash         exit(1) before writing anything
 *   garbage       answer with a line that is not a CGI header
 *   header=N:V    add the header "N: V" (may be repeated)
 *   cookie        add "Set-Cookie: a=b"
 *   cut=N         with size: exit after N bytes of the body, mid-response
 *   environ       the process's own environment, then PID=, UID= and CWD=
 *                 lines (for checking how it was started)
 * Without json, echo or size the body is every parameter as NAME=value
 * lines sorted by name, as text/plain.
 */
#include <errno.h>
#include <fcgiapp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_EXTRA_HEADERS 16
#define PATTERN "0123456789abcdef"

struct options {
	int json;
	int echo;
	int size_set;
	unsigned long long size;
	int length;
	int status;
	unsigned long sleep_ms;
	char *stderr_text;
	int crash;
	int garbage;
	int cookie;
	int environ_dump;
	int cut_set;
	unsigned long long cut;
	char *headers[MAX_EXTRA_HEADERS];
	int nheaders;
};

/* The query string, copied and decoded in place; freed after the request. */
static char *query_copy;

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode %XX in place; other bytes (including '+') stay as they are. */
static void
percent_decode(char *s)
{
	char *out = s;

	while (*s != '\0') {
		if (s[0] == '%' && hexval((unsigned char)s[1]) >= 0 &&
		    hexval((unsigned char)s[2]) >= 0) {
			*out++ = (char)(hexval((unsigned char)s[1]) * 16 +
			    hexval((unsigned char)s[2]));
			s += 3;
		} else
			*out++ = *s++;
	}
	*out = '\0';
}

static void
parse_options(const char *query, struct options *o)
{
	char *tok, *save = NULL, *val;

	memset(o, 0, sizeof(*o));
	free(query_copy);
	query_copy = strdup(query != NULL ? query : "");
	if (query_copy == NULL)
		return;
	for (tok = strtok_r(query_copy, "&", &save); tok != NULL;
	    tok = strtok_r(NULL, "&", &save)) {
		val = strchr(tok, '=');
		if (val != NULL)
			*val++ = '\0';
		if (val != NULL)
			percent_decode(val);
		if (strcmp(tok, "json") == 0)
			o->json = 1;
		else if (strcmp(tok, "echo") == 0)
			o->echo = 1;
		else if (strcmp(tok, "size") == 0 && val != NULL) {
			o->size_set = 1;
			o->size = strtoull(val, NULL, 10);
		} else if (strcmp(tok, "length") == 0)
			o->length = 1;
		else if (strcmp(tok, "status") == 0 && val != NULL)
			o->status = atoi(val);
		else if (strcmp(tok, "sleep") == 0 && val != NULL)
			o->sleep_ms = strtoul(val, NULL, 10);
		else if (strcmp(tok, "stderr") == 0 && val != NULL)
			o->stderr_text = val;
		else if (strcmp(tok, "crash") == 0)
			o->crash = 1;
		else if (strcmp(tok, "garbage") == 0)
			o->garbage = 1;
		else if (strcmp(tok, "cookie") == 0)
			o->cookie = 1;
		else if (strcmp(tok, "environ") == 0)
			o->environ_dump = 1;
		else if (strcmp(tok, "cut") == 0 && val != NULL) {
			o->cut_set = 1;
			o->cut = strtoull(val, NULL, 10);
		}
		else if (strcmp(tok, "header") == 0 && val != NULL &&
		    strchr(val, ':') != NULL && o->nheaders < MAX_EXTRA_HEADERS)
			o->headers[o->nheaders++] = val;
	}
}

static const char *
reason_phrase(int status)
{
	static const struct {
		int code;
		const char *text;
	} table[] = {
		{ 200, "OK" }, { 201, "Created" }, { 202, "Accepted" },
		{ 204, "No Content" }, { 301, "Moved Permanently" },
		{ 302, "Found" }, { 303, "See Other" },
		{ 304, "Not Modified" }, { 307, "Temporary Redirect" },
		{ 400, "Bad Request" }, { 401, "Unauthorized" },
		{ 403, "Forbidden" }, { 404, "Not Found" },
		{ 409, "Conflict" }, { 418, "I'm a teapot" },
		{ 500, "Internal Server Error" }, { 502, "Bad Gateway" },
		{ 503, "Service Unavailable" },
	};
	size_t i;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].code == status)
			return table[i].text;
	return "Something";
}

static void
sleep_ms(unsigned long ms)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Headers chosen by the query string, shared by every kind of body. */
static void
put_common_headers(const struct options *o, FCGX_Stream *out)
{
	int i;
	char *colon;

	if (o->status > 0)
		FCGX_FPrintF(out, "Status: %d %s\r\n", o->status,
		    reason_phrase(o->status));
	if (o->cookie)
		FCGX_PutS("Set-Cookie: a=b\r\n", out);
	for (i = 0; i < o->nheaders; i++) {
		colon = strchr(o->headers[i], ':');
		FCGX_PutStr(o->headers[i], (int)(colon - o->headers[i]), out);
		FCGX_PutS(": ", out);
		colon++;
		while (*colon == ' ')
			colon++;
		FCGX_PutS(colon, out);
		FCGX_PutS("\r\n", out);
	}
}

static size_t
name_len(const char *env)
{
	const char *eq = strchr(env, '=');

	return eq != NULL ? (size_t)(eq - env) : strlen(env);
}

static int
compare_names(const void *a, const void *b)
{
	const char *x = *(const char *const *)a;
	const char *y = *(const char *const *)b;
	size_t lx = name_len(x), ly = name_len(y);
	int c = memcmp(x, y, lx < ly ? lx : ly);

	if (c != 0)
		return c;
	if (lx != ly)
		return lx < ly ? -1 : 1;
	return strcmp(x, y);
}

/* The parameters sorted by name; the array (not the strings) is malloc'd. */
static char **
sorted_params(char **envp, size_t *count)
{
	size_t n = 0, i;
	char **v;

	while (envp != NULL && envp[n] != NULL)
		n++;
	v = calloc(n + 1, sizeof(*v));
	if (v == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		v[i] = envp[i];
	qsort(v, n, sizeof(*v), compare_names);
	*count = n;
	return v;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t
utf8_len(const unsigned char *s, size_t avail)
{
	size_t n, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (avail < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/*
 * A JSON string. Bytes that are not valid UTF-8 are written as \u00XX,
 * so the output is always valid JSON.
 */
static void
put_json_string(const char *str, size_t len, FCGX_Stream *out)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, n;

	FCGX_PutChar('"', out);
	while (i < len) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\') {
			FCGX_PutChar('\\', out);
			FCGX_PutChar(c, out);
			i++;
		} else if (c == '\n') {
			FCGX_PutS("\\n", out);
			i++;
		} else if (c == '\r') {
			FCGX_PutS("\\r", out);
			i++;
		} else if (c == '\t') {
			FCGX_PutS("\\t", out);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			FCGX_FPrintF(out, "\\u%04x", c);
			i++;
		} else if ((n = utf8_len(s + i, len - i)) == 0) {
			FCGX_FPrintF(out, "\\u%04x", c);
			i++;
		} else {
			FCGX_PutStr((const char *)s + i, (int)n, out);
			i += n;
		}
	}
	FCGX_PutChar('"', out);
}

extern char **environ;

static void
answer_environ(FCGX_Request *req)
{
	char cwd[4096];
	char **e;

	FCGX_PutS("Content-Type: text/plain\r\n\r\n", req->out);
	for (e = environ; *e != NULL; e++)
		FCGX_FPrintF(req->out, "%s\n", *e);
	FCGX_FPrintF(req->out, "PID=%d\nUID=%d\n", (int)getpid(), (int)getuid());
	if (getcwd(cwd, sizeof(cwd)) != NULL)
		FCGX_FPrintF(req->out, "CWD=%s\n", cwd);
}

static void
answer_params(FCGX_Request *req, const struct options *o)
{
	char **v;
	size_t n = 0, i, nl;

	v = sorted_params(req->envp, &n);
	if (v == NULL) {
		FCGX_PutS("Status: 500 Internal Server Error\r\n\r\n", req->out);
		return;
	}
	FCGX_PutS(o->json ? "Content-Type: application/json\r\n" :
	    "Content-Type: text/plain\r\n", req->out);
	put_common_headers(o, req->out);
	FCGX_PutS("\r\n", req->out);
	if (o->json) {
		FCGX_PutChar('{', req->out);
		for (i = 0; i < n; i++) {
			nl = name_len(v[i]);
			if (i > 0)
				FCGX_PutChar(',', req->out);
			put_json_string(v[i], nl, req->out);
			FCGX_PutChar(':', req->out);
			if (v[i][nl] == '=')
				put_json_string(v[i] + nl + 1,
				    strlen(v[i] + nl + 1), req->out);
			else
				put_json_string("", 0, req->out);
		}
		FCGX_PutS("}\n", req->out);
	} else {
		for (i = 0; i < n; i++) {
			FCGX_PutS(v[i], req->out);
			FCGX_PutChar('\n', req->out);
		}
	}
	free(v);
}

/* Read FastCGI stdin to its end: CONTENT_LENGTH may be absent (chunked). */
static void
answer_echo(FCGX_Request *req, const struct options *o)
{
	char *buf = NULL, *nbuf;
	size_t len = 0, cap = 0;
	int got;

	for (;;) {
		if (cap - len < 65536) {
			cap = cap == 0 ? 262144 : cap * 2;
			nbuf = realloc(buf, cap);
			if (nbuf == NULL) {
				free(buf);
				FCGX_PutS("Status: 500 Internal Server Error\r\n"
				    "\r\n", req->out);
				return;
			}
			buf = nbuf;
		}
		got = FCGX_GetStr(buf + len, (int)(cap - len), req->in);
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	FCGX_PutS("Content-Type: application/octet-stream\r\n", req->out);
	FCGX_FPrintF(req->out, "Content-Length: %lu\r\n", (unsigned long)len);
	put_common_headers(o, req->out);
	FCGX_PutS("\r\n", req->out);
	if (len > 0)
		FCGX_PutStr(buf, (int)len, req->out);
	free(buf);
}

static void
answer_size(FCGX_Request *req, const struct options *o)
{
	static char block[65536];
	unsigned long long left = o->size;
	size_t i, chunk;

	if (block[0] == '\0')
		for (i = 0; i < sizeof(block); i++)
			block[i] = PATTERN[i % (sizeof(PATTERN) - 1)];
	FCGX_PutS("Content-Type: application/octet-stream\r\n", req->out);
	if (o->length)
		FCGX_FPrintF(req->out, "Content-Length: %llu\r\n", o->size);
	put_common_headers(o, req->out);
	FCGX_PutS("\r\n", req->out);
	/* The block length is a multiple of the pattern's: it restarts cleanly. */
	while (left > 0) {
		chunk = left < sizeof(block) ? (size_t)left : sizeof(block);
		if (o->cut_set && o->size - left + chunk > o->cut) {
			chunk = (size_t)(o->cut - (o->size - left));
			FCGX_PutStr(block, (int)chunk, req->out);
			FCGX_FFlush(req->out);
			_exit(1);	/* dies mid-response, as a crashing application would */
		}
		if (FCGX_PutStr(block, (int)chunk, req->out) < 0)
			break;
		left -= chunk;
	}
}

int
main(void)
{
	FCGX_Request req;
	struct options o;

	if (FCGX_Init() != 0) {
		fprintf(stderr, "printenv: FCGX_Init failed\n");
		return 1;
	}
	if (FCGX_InitRequest(&req, 0, 0) != 0) {
		fprintf(stderr, "printenv: FCGX_InitRequest failed\n");
		return 1;
	}
	while (FCGX_Accept_r(&req) >= 0) {
		parse_options(FCGX_GetParam("QUERY_STRING", req.envp), &o);
		if (o.crash)
			exit(1);
		if (o.sleep_ms > 0)
			sleep_ms(o.sleep_ms);
		if (o.stderr_text != NULL) {
			FCGX_PutS(o.stderr_text, req.err);
			FCGX_PutChar('\n', req.err);
		}
		if (o.garbage)
			FCGX_PutS("this is not a header\r\n\r\n", req.out);
		else if (o.environ_dump)
			answer_environ(&req);
		else if (o.echo)
			answer_echo(&req, &o);
		else if (o.size_set)
			answer_size(&req, &o);
		else
			answer_params(&req, &o);
		FCGX_Finish_r(&req);
	}
	free(query_copy);
	return 0;
}
