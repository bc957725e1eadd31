/*
 * http.c: HTTP/1.1 requests with llhttp (strict: its lenient flags stay
 * off), the limits of SPEC section 4 while the head arrives, the body path
 * (Content-Length or chunked), and the responses certgate writes itself:
 * status lines and error pages.
 */
#include <string.h>
#include <time.h>

#include "gateway/gateway_int.h"

static int on_message_begin(llhttp_t *p);
static int on_url(llhttp_t *p, const char *at, size_t len);
static int on_url_complete(llhttp_t *p);
static int on_header_field(llhttp_t *p, const char *at, size_t len);
static int on_header_field_complete(llhttp_t *p);
static int on_header_value(llhttp_t *p, const char *at, size_t len);
static int on_header_value_complete(llhttp_t *p);
static int on_headers_complete(llhttp_t *p);
static int on_body(llhttp_t *p, const char *at, size_t len);
static int on_message_complete(llhttp_t *p);

static llhttp_settings_t settings;

/* Why the parser was paused or stopped by a callback. */
enum { PEV_NONE, PEV_HEAD, PEV_END, PEV_LIMIT };

void
gw_http_init(struct gw_conn *c)
{
	if (settings.on_message_begin == NULL) {
		llhttp_settings_init(&settings);
		settings.on_message_begin = on_message_begin;
		settings.on_url = on_url;
		settings.on_url_complete = on_url_complete;
		settings.on_header_field = on_header_field;
		settings.on_header_field_complete = on_header_field_complete;
		settings.on_header_value = on_header_value;
		settings.on_header_value_complete = on_header_value_complete;
		settings.on_headers_complete = on_headers_complete;
		settings.on_body = on_body;
		settings.on_message_complete = on_message_complete;
	}
	llhttp_init(&c->parser, HTTP_REQUEST, &settings);
	c->parser.data = c;
	c->keepalive = 1;
}

static struct gw_conn *
conn_of(llhttp_t *p)
{
	return p->data;
}

/* A limit was crossed or a header is malformed: remember the answer, stop
 * the parser. */
static int
limit(struct gw_conn *c, int status)
{
	c->req->status = status;
	c->parser_event = PEV_LIMIT;
	return HPE_USER;
}

static int
count_head(struct gw_conn *c, size_t len)
{
	struct gw_request *r = c->req;

	r->head_bytes += len;
	if (r->head_bytes > (size_t)gw_worker->cfg->raw.limits.max_header_size)
		return limit(c, 431);
	return 0;
}

static int
on_message_begin(llhttp_t *p)
{
	struct gw_conn *c = conn_of(p);
	struct gw_request *r = cg_arena_alloc(&c->arena, sizeof(*r));

	memset(r, 0, sizeof(*r));
	r->conn = c;
	r->content_length = -1;
	r->resp_length = -1;
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	c->req = r;
	c->head_started = 1;
	cg_buf_clear(&c->hbuf);
	return 0;
}

static int
on_url(llhttp_t *p, const char *at, size_t len)
{
	struct gw_conn *c = conn_of(p);

	if (c->hbuf.len + len > (size_t)gw_worker->cfg->raw.limits.max_uri_size)
		return limit(c, 414);
	cg_buf_append(&c->hbuf, at, len);
	return count_head(c, len);
}

static int
on_url_complete(llhttp_t *p)
{
	struct gw_conn *c = conn_of(p);

	c->req->target = cg_arena_strndup(&c->arena, (const char *)c->hbuf.data, c->hbuf.len);
	c->req->target_len = c->hbuf.len;
	cg_buf_clear(&c->hbuf);
	return 0;
}

static int
on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct gw_conn *c = conn_of(p);

	cg_buf_append(&c->hbuf, at, len);
	return count_head(c, len);
}

static int
on_header_field_complete(llhttp_t *p)
{
	struct gw_conn *c = conn_of(p);

	c->hname_len = c->hbuf.len;
	return 0;
}

static int
on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct gw_conn *c = conn_of(p);
	struct gw_fold *f = &c->fold;

	/* A value comes in one span, or in pieces that abut: at a read
	 * boundary, or right after the previous piece. Anything else is llhttp
	 * having skipped a CRLF: obsolete line folding. */
	if (f->seen && at != f->end && !(at == f->exec_start && f->cont))
		return limit(c, 400);
	f->seen = 1;
	f->end = at + len;
	f->cont = f->end == f->exec_end;
	cg_buf_append(&c->hbuf, at, len);
	return count_head(c, len);
}

/* RFC 9110 token characters. llhttp lets a space before the colon and
 * obsolete line folding through; both can smuggle, so they stop here. */
static int
is_token(const char *p, size_t n)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || (ch != 0 && strchr(extra, ch) != NULL)))
			return 0;
	}
	return 1;
}

static int
is_field_value(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return 0;
	}
	return 1;
}

static int
on_header_value_complete(llhttp_t *p)
{
	struct gw_conn *c = conn_of(p);
	struct gw_request *r = c->req;
	struct gw_header *h;
	const char *v;
	size_t vlen;

	if (r->nheaders >= (size_t)gw_worker->cfg->raw.limits.max_headers)
		return limit(c, 431);
	if (r->nheaders == r->cap_headers) {
		size_t cap = r->cap_headers ? r->cap_headers * 2 : 16;
		struct gw_header *nh = cg_arena_alloc(&c->arena, cap * sizeof(*nh));

		if (r->nheaders)
			memcpy(nh, r->headers, r->nheaders * sizeof(*nh));
		r->headers = nh;
		r->cap_headers = cap;
	}
	v = (const char *)c->hbuf.data + c->hname_len;
	vlen = c->hbuf.len - c->hname_len;
	if (!is_token((const char *)c->hbuf.data, c->hname_len) || !is_field_value(v, vlen))
		return limit(c, 400);
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	h = &r->headers[r->nheaders++];
	h->name = cg_arena_strndup(&c->arena, (const char *)c->hbuf.data, c->hname_len);
	h->nlen = c->hname_len;
	h->value = cg_arena_strndup(&c->arena, v, vlen);
	h->vlen = vlen;
	c->fold.seen = 0;
	cg_buf_clear(&c->hbuf);
	c->hname_len = 0;
	return 0;
}

static int
on_headers_complete(llhttp_t *p)
{
	struct gw_conn *c = conn_of(p);
	struct gw_request *r = c->req;

	r->method_id = llhttp_get_method(p);
	r->method = llhttp_method_name((llhttp_method_t)r->method_id);
	r->major = llhttp_get_http_major(p);
	r->minor = llhttp_get_http_minor(p);
	r->keepalive = llhttp_should_keep_alive(p);
	r->chunked = (p->flags & F_CHUNKED) != 0;
	if (p->flags & F_CONTENT_LENGTH)
		r->content_length = (int64_t)p->content_length;
	r->is_head = r->method_id == HTTP_HEAD;
	if (!r->chunked && r->content_length <= 0)
		return 0;	/* started at message end: no body to stream */
	c->parser_event = PEV_HEAD;
	return HPE_PAUSED;
}

static int
on_body(llhttp_t *p, const char *at, size_t len)
{
	struct gw_conn *c = conn_of(p);
	struct gw_request *r = c->req;

	r->body_bytes += len;
	if (r->body_bytes > (uint64_t)gw_worker->cfg->raw.limits.max_body_size)
		return limit(c, 413);
	gw_request_body(r, (const uint8_t *)at, len);
	return 0;
}

static int
on_message_complete(llhttp_t *p)
{
	struct gw_conn *c = conn_of(p);

	c->req->body_done = 1;
	if (c->state == GW_CONN_ACTIVE) {
		gw_request_body_end(c->req);
		c->parser_event = PEV_END;
	} else {
		c->parser_event = PEV_HEAD;	/* a request without a body */
	}
	return HPE_PAUSED;
}

/* The status for a parse error llhttp reported. */
static int
error_status(llhttp_errno_t e)
{
	switch (e) {
	case HPE_INVALID_VERSION:
		return 505;
	case HPE_INVALID_TRANSFER_ENCODING:
		return 501;
	default:
		return 400;
	}
}

int
gw_http_process(struct gw_conn *c)
{
	const char *start, *stop;
	llhttp_errno_t e;
	char why[128];

	while (cg_buf_avail(&c->rbuf) > 0 && !c->input_paused && !c->closing) {
		struct gw_request *r = c->req;

		if (c->state == GW_CONN_REAUTH)
			break;		/* the body waits for the certificate exchange */
		if (c->state == GW_CONN_ACTIVE && (r == NULL || r->body_done))
			break;		/* pipelined: waits for the response */
		if (c->state == GW_CONN_ACTIVE && (r->authorizing || r->mapping_wait ||
		    (r->up != NULL && gw_fcgi_congested(r->up))))
			break;		/* the body waits for the authorizer, or the application */
		start = (const char *)cg_buf_head(&c->rbuf);
		c->parser_event = PEV_NONE;
		c->fold.end = NULL;
		c->fold.exec_start = start;
		c->fold.exec_end = start + cg_buf_avail(&c->rbuf);
		e = llhttp_execute(&c->parser, start, cg_buf_avail(&c->rbuf));
		if (e == HPE_OK) {
			cg_buf_consume(&c->rbuf, cg_buf_avail(&c->rbuf));
			break;
		}
		stop = llhttp_get_error_pos(&c->parser);
		if (e == HPE_PAUSED) {
			cg_buf_consume(&c->rbuf, (size_t)(stop - start));
			llhttp_resume(&c->parser);
			if (c->parser_event == PEV_HEAD) {
				c->state = GW_CONN_ACTIVE;
				c->input_paused = c->req->body_done;
				if (gw_request_start(c, c->req) < 0)
					return -1;
			} else if (c->parser_event == PEV_END) {
				c->input_paused = 1;
			}
			continue;
		}
		/* A parse error or a limit: answer it and close. */
		if (c->req == NULL)
			on_message_begin(&c->parser);
		if (c->parser_event == PEV_LIMIT) {
			gw_http_error(c, c->req->status, NULL, 1);
		} else {
			cg_log(CG_LOG_INFO, c->id, "bad request from %s: %s (%s)", c->peer_addr,
			    llhttp_errno_name(e),
			    cg_escape(why, sizeof(why), llhttp_get_error_reason(&c->parser),
			    strlen(llhttp_get_error_reason(&c->parser))));
			gw_http_error(c, error_status(e), NULL, 1);
		}
		cg_buf_clear(&c->rbuf);
		break;
	}
	return 0;
}

const char *
gw_http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 417: return "Expectation Failed";
	case 421: return "Misdirected Request";
	case 431: return "Request Header Fields Too Large";
	case 499: return "Client Closed Request";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return status < 300 ? "OK" : status < 400 ? "Redirect" :
	    status < 500 ? "Client Error" : "Server Error";
	}
}

static void
http_date(char out[40])
{
	static time_t cached;
	static char buf[40];
	time_t now = (time_t)ev_now(gw_worker->loop);
	struct tm tm;

	if (now != cached) {
		gmtime_r(&now, &tm);
		strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		cached = now;
	}
	memcpy(out, buf, sizeof(buf));
}

void
gw_http_head_begin(struct gw_conn *c, struct gw_request *r, int status, const char *reason,
    size_t reason_len)
{
	char date[40], num[24];

	http_date(date);
	if (reason == NULL) {
		reason = gw_http_reason(status);
		reason_len = strlen(reason);
	}
	/* Appended piece by piece: this is every response's first line. */
	cg_buf_append_lit(&c->wbuf, "HTTP/1.1 ");
	cg_buf_append(&c->wbuf, num, cg_fmt_u64(num, (uint64_t)(status > 0 ? status : 0)));
	cg_buf_append_lit(&c->wbuf, " ");
	cg_buf_append(&c->wbuf, reason, reason_len);
	cg_buf_append_lit(&c->wbuf, "\r\nServer: certgate\r\nDate: ");
	cg_buf_append(&c->wbuf, date, strlen(date));
	cg_buf_append_lit(&c->wbuf, "\r\n");
	r->status = status;
	r->head_sent = 1;
}

void
gw_http_error(struct gw_conn *c, int status, const char *detail, int close)
{
	gw_http_error_text(c, status, detail, NULL, close);
}

void
gw_http_error_text(struct gw_conn *c, int status, const char *detail, const char *text,
    int close)
{
	struct gw_request *r = c->req;
	char code[16], body[512];
	int n;

	if (r->head_sent) {
		/* Too late for a page: the client sees the response cut, once
		 * what was already queued has gone out (gw_conn_flush). */
		c->keepalive = 0;
		c->closing = 1;
		ev_feed_event(gw_worker->loop, &c->io, EV_WRITE);
		return;
	}
	if (r->up != NULL)
		gw_fcgi_release(r, 0);
	if (detail)
		snprintf(code, sizeof(code), "%d.%s", status, detail);
	else
		snprintf(code, sizeof(code), "%d", status);
	if (text == NULL)
		text = pol_detail_text(status, detail);
	if (text == NULL)
		text = gw_http_reason(status);
	n = snprintf(body, sizeof(body),
	    "<!DOCTYPE html>\n<html><head><title>%s %s</title></head>"
	    "<body><h1>%s %s</h1></body></html>\n", code, text, code, text);
	if (close || !r->body_done)
		c->keepalive = 0;
	gw_http_head_begin(c, r, status, NULL, 0);
	r->status_detail = detail;
	if (r->redirect != NULL)
		cg_buf_printf(&c->wbuf, "Location: %s\r\n", r->redirect);
	cg_buf_printf(&c->wbuf, "Content-Type: text/html; charset=utf-8\r\n"
	    "Content-Length: %d\r\n%s\r\n", n, c->keepalive ? "" : "Connection: close\r\n");
	if (!r->is_head)
		cg_buf_append(&c->wbuf, body, (size_t)n);
	r->resp_bytes = r->is_head ? 0 : (uint64_t)n;
	r->resp_done = 1;
	gw_conn_request_done(c);
}
