/*
 * request.c: one HTTP request from its head to its access-log line:
 * checks the head (version, framing, Host), normalizes the path and picks
 * site and location, builds the CGI/1.1 parameters, and turns the
 * application's CGI response into an HTTP response (framing, keep-alive).
 */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gateway/gateway_int.h"
#include "policies/policies.h"

#define CGI_HEAD_MAX 65536	/* most CGI header bytes we wait for */

static const struct gw_header *
header(const struct gw_request *r, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < r->nheaders; i++)
		if (cg_strcaseeq(r->headers[i].name, r->headers[i].nlen, name, n))
			return &r->headers[i];
	return NULL;
}

static size_t
header_count(const struct gw_request *r, const char *name)
{
	size_t i, k = 0, n = strlen(name);

	for (i = 0; i < r->nheaders; i++)
		k += cg_strcaseeq(r->headers[i].name, r->headers[i].nlen, name, n);
	return k;
}

/* Splits "host[:port]" (or "[v6]:port"); returns the host part length,
 * or -1 when malformed. */
static int
host_part(const char *h, size_t len, size_t *hostlen)
{
	size_t i;

	if (len == 0)
		return -1;
	if (h[0] == '[') {
		const char *e = memchr(h, ']', len);

		if (e == NULL)
			return -1;
		*hostlen = (size_t)(e - h) + 1;
	} else {
		for (i = 0; i < len && h[i] != ':'; i++)
			;
		*hostlen = i;
	}
	for (i = 0; i < *hostlen; i++)
		if ((unsigned char)h[i] <= ' ' || h[i] == '/' || h[i] == '@' || h[i] == '\\')
			return -1;
	if (*hostlen < len && (h[*hostlen] != ':' || *hostlen == 0))
		return -1;
	return 0;
}

static int
fail(struct gw_conn *c, int status)
{
	gw_http_error(c, status, NULL, 0);
	return 0;
}

static int start_backend(struct gw_request *r);
static int decide(struct gw_conn *c, struct gw_request *r);

/* Plain HTTP to a TLS-only path, with http_redirect: the same URL over
 * https (SPEC section 4), or 403.4 when the site has no https listener. */
static int
redirect(struct gw_conn *c, struct gw_request *r)
{
	char port[16] = "";

	if (r->site->https_port == 0 || r->host == NULL) {
		gw_http_error(c, 403, "4", 0);
		return 0;
	}
	if (r->site->https_port != 443)
		snprintf(port, sizeof(port), ":%d", r->site->https_port);
	r->redirect = cg_arena_printf(&c->arena, "https://%.*s%s%s%s%s", (int)r->host_len, r->host,
	    port, r->path, r->has_query ? "?" : "", r->query);
	gw_http_error(c, 301, NULL, 0);
	return 0;
}

int
gw_request_start(struct gw_conn *c, struct gw_request *r)
{
	const struct gw_header *h;
	const char *target = r->target, *path, *q;
	size_t plen, hostlen;
	char *norm;
	enum pol_path_err perr;
	int i;

	c->keepalive = r->keepalive && !gw_worker->draining;
	if (r->major != 1 || r->minor > 1)
		return fail(c, 505);
	if ((h = header(r, "Transfer-Encoding")) != NULL &&
	    (header_count(r, "Transfer-Encoding") != 1 ||
	    !cg_strcaseeq(h->value, h->vlen, "chunked", 7)))
		return fail(c, 501);	/* we decode chunked and nothing else */
	if (r->minor == 1 && header_count(r, "Host") != 1)
		return fail(c, 400);
	if (header_count(r, "Host") > 1)
		return fail(c, 400);
	if ((h = header(r, "Expect")) != NULL) {
		if (!cg_strcaseeq(h->value, h->vlen, "100-continue", 12))
			return fail(c, 417);
		r->expect_continue = r->minor == 1;
	}

	/* The target: origin-form, or absolute-form whose authority wins over Host. */
	if (target[0] == '/') {
		path = target;
		if ((h = header(r, "Host")) != NULL) {
			if (host_part(h->value, h->vlen, &hostlen) < 0)
				return fail(c, 400);
			r->host = h->value;
			r->host_len = hostlen;
		}
	} else if (strncasecmp(target, "http://", 7) == 0 || strncasecmp(target, "https://", 8) == 0) {
		const char *auth = strstr(target, "//") + 2;
		const char *end = auth + strcspn(auth, "/?");

		if (host_part(auth, (size_t)(end - auth), &hostlen) < 0)
			return fail(c, 400);
		r->host = auth;
		r->host_len = hostlen;
		path = *end == '/' ? end : "/";
	} else {
		return fail(c, 400);	/* "*" and authority-form are not served here */
	}
	q = strchr(path, '?');
	plen = q ? (size_t)(q - path) : strlen(path);
	if (memchr(path, '#', plen) != NULL)
		return fail(c, 400);
	r->has_query = q != NULL;
	r->query = q ? q + 1 : "";
	norm = cg_arena_alloc(&c->arena, plen + 1);
	perr = pol_path_normalize(path, plen, norm, plen + 1, &plen);
	if (perr != POL_PATH_OK) {
		char esc[256];

		cg_log(CG_LOG_INFO, c->id, "refused path \"%s\": %s",
		    cg_escape(esc, sizeof(esc), path, strlen(path)), pol_path_err_names[perr]);
		return fail(c, 400);
	}
	r->path = norm;

	/* Site: TLS connections belong to their SNI site; Host must agree. */
	if (c->tls) {
		r->site = c->site;
		if (r->host != NULL &&
		    gw_site_for_host(c->lst, r->host, r->host_len) != c->site)
			return fail(c, 421);
	} else {
		r->site = gw_site_for_host(c->lst, r->host, r->host_len);
	}
	i = pol_location_match(r->site->loc_paths, r->site->loc_lens, r->site->nlocs, norm, plen);
	if (i == -2)
		return fail(c, 400);
	if (i < 0)
		return fail(c, 404);
	r->loc = &r->site->locs[i];

	/* tls_client_auth "deferred": the certificate is asked for now, once
	 * per connection, when a location's policy wants one. */
	if (c->site->client_auth == GW_CA_DEFERRED && c->tls != NULL && !c->auth.presented &&
	    r->loc->policy->client_certificate != POL_CERT_IGNORE && !c->deferred_asked) {
		c->deferred_asked = 1;
		if (gw_tls_reauth_start(c) == 0) {
			c->state = GW_CONN_REAUTH;
			gw_conn_resume_input(c);	/* the exchange runs from on_io */
			return 0;
		}
		cg_log(CG_LOG_DEBUG, c->id, "deferred certificate: the client cannot be asked");
	}
	return decide(c, r);
}

int
gw_request_resume(struct gw_conn *c)
{
	c->state = GW_CONN_ACTIVE;
	return decide(c, c->req);
}

void
gw_request_mapped(struct gw_conn *c)
{
	struct gw_request *r = c->req;

	if (r == NULL || !r->mapping_wait)
		return;
	r->mapping_wait = 0;
	if (decide(c, r) < 0)
		return;
	/* The body, or pipelined requests, that waited are read from the
	 * connection's own callback, as after the authorizer. */
	gw_conn_resume_input(c);
}

/* The decisions of SPEC section 4 for a routed request, then the
 * authorizer or the responder. */
static int
decide(struct gw_conn *c, struct gw_request *r)
{
	struct pol_request rq;
	struct pol_decision d;

	rq.tls = c->tls != NULL;
	rq.cipher_bits = c->tls ? (unsigned)gnutls_cipher_get_key_size(gnutls_cipher_get(c->tls)) * 8 :
	    0;
	rq.cert_presented = c->auth.presented;
	rq.verdict = c->auth.result.verdict;
	switch (gw_auth_map(c, r->loc->policy, &rq.mapping)) {
	case GW_MAP_PENDING:
		r->mapping_wait = 1;	/* gw_request_mapped goes on */
		return 0;
	case GW_MAP_UNAVAILABLE:
		if (rq.cert_presented && rq.verdict == CA_VERDICT_OK) {
			gw_http_error_text(c, 503, NULL, "Directory unavailable", 0);
			return 0;
		}
		break;
	case GW_MAP_DONE:
	case GW_MAP__MAX:
		break;
	}
	d = pol_decide(r->loc->policy, &rq);
	if (d.status == 301)
		return redirect(c, r);
	if (d.status != 0) {
		gw_http_error(c, d.status, d.detail, 0);
		return 0;
	}

	if (r->content_length > gw_worker->cfg->raw.limits.max_body_size)
		return fail(c, 413);
	/* The authorizer comes first; the body waits until it has said yes. */
	r->authorizing = r->loc->authorizer != NULL;
	return start_backend(r);
}

static int
start_backend(struct gw_request *r)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

	if (!r->authorizing && r->expect_continue && !r->body_done)
		gw_conn_write(r->conn, cont, sizeof(cont) - 1);
	return gw_fcgi_start(r);
}

void
gw_request_body(struct gw_request *r, const uint8_t *p, size_t n)
{
	if (r->up != NULL && n > 0)
		gw_fcgi_stdin(r->up, p, n);
}

void
gw_request_body_end(struct gw_request *r)
{
	if (r->up != NULL)
		gw_fcgi_stdin_end(r->up);
}

/* ---- CGI parameters ---- */

static struct cg_buf nv;	/* the PARAMS stream being built; one worker thread */

static void
param(const char *name, const char *value, size_t vlen)
{
	gw_fcgi_nv_put(&nv, name, value, vlen);
}

static void
params(const char *name, const char *value)
{
	param(name, value, strlen(value));
}

/* Names certgate sets itself: a configured `params` entry or a client
 * header can never stand in for them. */
static int
reserved(const char *name)
{
	static const char *const prefixes[] = { "HTTP_", "SSL_", "CERT_", "HTTPS", "REMOTE_",
	    "SERVER_", "REQUEST_", "AUTH_", "LOGON_", NULL };
	static const char *const names[] = { "GATEWAY_INTERFACE", "SCRIPT_NAME", "PATH_INFO",
	    "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH", "DOCUMENT_ROOT", "SCRIPT_FILENAME",
	    NULL };
	size_t i;

	for (i = 0; prefixes[i]; i++)
		if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	for (i = 0; names[i]; i++)
		if (strcmp(name, names[i]) == 0)
			return 1;
	return 0;
}

static void
header_params(struct gw_request *r)
{
	char name[300];
	struct cg_buf val = { NULL, 0, 0, 0 };
	size_t i, j, k;

	for (i = 0; i < r->nheaders; i++) {
		const struct gw_header *h = &r->headers[i];

		/* '_' would let "X_Y" pose as "X-Y"; Proxy is httpoxy. */
		if (memchr(h->name, '_', h->nlen) != NULL || h->nlen + 6 > sizeof(name) ||
		    cg_strcaseeq(h->name, h->nlen, "Proxy", 5) ||
		    cg_strcaseeq(h->name, h->nlen, "Content-Type", 12) ||
		    cg_strcaseeq(h->name, h->nlen, "Content-Length", 14))
			continue;
		for (j = 0; j < i; j++)
			if (cg_strcaseeq(r->headers[j].name, r->headers[j].nlen, h->name, h->nlen))
				break;
		if (j < i)
			continue;	/* joined with its first occurrence */
		memcpy(name, "HTTP_", 5);
		for (k = 0; k < h->nlen; k++) {
			char ch = h->name[k];

			name[5 + k] = ch == '-' ? '_' : (ch >= 'a' && ch <= 'z') ? (char)(ch - 32) : ch;
		}
		name[5 + h->nlen] = '\0';
		cg_buf_clear(&val);
		cg_buf_append(&val, h->value, h->vlen);
		for (j = i + 1; j < r->nheaders; j++)
			if (cg_strcaseeq(r->headers[j].name, r->headers[j].nlen, h->name, h->nlen)) {
				if (cg_strcaseeq(h->name, h->nlen, "Cookie", 6))
					cg_buf_append(&val, "; ", 2);
				else
					cg_buf_append(&val, ", ", 2);
				cg_buf_append(&val, r->headers[j].value, r->headers[j].vlen);
			}
		param(name, (const char *)val.data, val.len);
	}
	cg_buf_free(&val);
}

void
gw_request_params(struct gw_request *r, struct cg_buf *out, uint16_t id)
{
	struct gw_conn *c = r->conn;
	const struct gw_backend_conf *bc = (r->authorizing ? r->loc->authorizer :
	    r->loc->backend)->conf;
	const struct gw_header *h;
	const char *sn = r->loc->script_name;
	size_t snlen = strlen(sn), plen = strlen(r->path), i;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char num[32], addr[64];
	int port = 0;

	cg_buf_clear(&nv);
	for (i = 0; i < bc->params.n; i++)
		if (!reserved(bc->params.names[i]))
			params(bc->params.names[i], bc->params.values[i]);
	params("GATEWAY_INTERFACE", "CGI/1.1");
	params("SERVER_SOFTWARE", "certgate/" CG_VERSION);
	if (r->host != NULL)
		param("SERVER_NAME", r->host, r->host_len);
	else
		params("SERVER_NAME", r->site->conf->hosts.n && strcmp(r->site->conf->hosts.v[0], "*") ?
		    r->site->conf->hosts.v[0] : c->lst->host);
	/* Behind a balancer, the address the client connected to is the PROXY
	 * header's, not this socket's; this socket's is the listener's unless
	 * that is a wildcard, when it is asked for once. */
	if (!c->has_local && gw_listener_is_wildcard(c->lst) &&
	    getsockname(c->fd, (struct sockaddr *)&ss, &sslen) == 0 && ss.ss_family != AF_UNIX) {
		c->local = ss;
		c->has_local = 1;
	}
	if (c->has_local) {
		gw_sockaddr_name(&c->local, addr, sizeof(addr), &port);
		params("SERVER_ADDR", addr);
	} else {
		params("SERVER_ADDR", c->lst->host);
		port = c->lst->port;
	}
	snprintf(num, sizeof(num), "%d", port);
	params("SERVER_PORT", num);
	params("SERVER_PROTOCOL", r->minor == 0 ? "HTTP/1.0" : "HTTP/1.1");
	params("REQUEST_METHOD", r->method);
	if (r->has_query) {
		char *uri = cg_arena_printf(&c->arena, "%s?%s", r->path, r->query);

		params("REQUEST_URI", uri);
	} else {
		params("REQUEST_URI", r->path);
	}
	params("REQUEST_SCHEME", c->tls ? "https" : "http");
	params("SCRIPT_NAME", sn);
	params("PATH_INFO", plen > snlen ? r->path + snlen : "");
	params("QUERY_STRING", r->query);
	/* What PHP and other script runners need to find the script. */
	if (r->loc->conf->document_root[0] != '\0')
		params("DOCUMENT_ROOT", r->loc->conf->document_root);
	if (r->loc->conf->script_filename[0] != '\0') {
		params("SCRIPT_FILENAME", r->loc->conf->script_filename);
	} else if (r->loc->conf->document_root[0] != '\0') {
		const char *root = r->loc->conf->document_root;
		size_t rl = strlen(root);
		char *sf = cg_arena_printf(&c->arena, "%.*s%s",
		    (int)(root[rl - 1] == '/' ? rl - 1 : rl), root, r->path);

		params("SCRIPT_FILENAME", sf);
	}
	if ((h = header(r, "Content-Type")) != NULL)
		param("CONTENT_TYPE", h->value, h->vlen);
	if (r->content_length >= 0) {
		snprintf(num, sizeof(num), "%lld", (long long)r->content_length);
		params("CONTENT_LENGTH", num);
	}
	params("REMOTE_ADDR", c->peer_addr);
	snprintf(num, sizeof(num), "%d", c->peer_port);
	params("REMOTE_PORT", num);
	if (c->tls)
		params("HTTPS", "on");
	gw_auth_export_nv(c, r->loc->policy, &nv);
	for (i = 0; !r->authorizing && i < r->nauthz_vars; i++)
		param(r->authz_vars[i].name, r->authz_vars[i].value, r->authz_vars[i].vlen);
	header_params(r);

	out->len += gw_fcgi_frame(cg_buf_reserve(out, gw_fcgi_frame_len(nv.len)), GW_FCGI_PARAMS,
	    id, nv.data, nv.len);
	out->len += gw_fcgi_frame(cg_buf_reserve(out, gw_fcgi_frame_len(0)), GW_FCGI_PARAMS, id,
	    NULL, 0);
}

/* ---- the response ---- */

static int
hop_by_hop(const struct gw_span *n)
{
	return cg_strcaseeq(n->p, n->len, "Connection", 10) ||
	    cg_strcaseeq(n->p, n->len, "Keep-Alive", 10) ||
	    cg_strcaseeq(n->p, n->len, "Transfer-Encoding", 17) ||
	    cg_strcaseeq(n->p, n->len, "Content-Length", 14) ||
	    cg_strcaseeq(n->p, n->len, "Upgrade", 7) ||
	    cg_strcaseeq(n->p, n->len, "Trailer", 7);
}

static void
body(struct gw_request *r, const uint8_t *p, size_t n)
{
	struct gw_conn *c = r->conn;
	char len[24];

	if (r->resp_nobody || n == 0)
		return;
	if (r->resp_length >= 0 && r->resp_bytes + n > (uint64_t)r->resp_length) {
		/* More than the application announced: the rest is not HTTP. */
		n = (size_t)((uint64_t)r->resp_length - r->resp_bytes);
		c->keepalive = 0;
		if (n == 0)
			return;
	}
	if (r->resp_chunked) {
		gw_conn_write(c, len, (size_t)snprintf(len, sizeof(len), "%zx\r\n", n));
		gw_conn_write(c, p, n);
		gw_conn_write(c, "\r\n", 2);
	} else {
		gw_conn_write(c, p, n);
	}
	r->resp_bytes += n;
}

/* Whether a Set-Cookie value already has the Secure attribute. */
static int
cookie_is_secure(const char *v, size_t len)
{
	size_t i = 0, start;

	while (i < len) {
		while (i < len && v[i] != ';')
			i++;
		if (i == len)
			break;
		i++;
		while (i < len && (v[i] == ' ' || v[i] == '\t'))
			i++;
		start = i;
		while (i < len && v[i] != ';' && v[i] != '=' && v[i] != ' ')
			i++;
		if (cg_strcaseeq(v + start, i - start, "Secure", 6))
			return 1;
	}
	return 0;
}

static int
response_head(struct gw_request *r, const struct gw_cgi_response *cr)
{
	struct gw_conn *c = r->conn;
	const struct pol_policy *policy = r->loc->policy;
	int hsts = c->tls != NULL && policy->hsts > 0;
	int secure = c->tls != NULL && policy->secure_cookies;
	size_t i;

	gw_http_head_begin(c, r, cr->status, cr->reason.len ? cr->reason.p : NULL, cr->reason.len);
	for (i = 0; i < cr->nheaders; i++) {
		const struct gw_cgi_header *h = &cr->headers[i];

		/* certgate writes Server and Date itself. */
		if (hop_by_hop(&h->name) || cg_strcaseeq(h->name.p, h->name.len, "Server", 6) ||
		    cg_strcaseeq(h->name.p, h->name.len, "Date", 4) ||
		    (hsts && cg_strcaseeq(h->name.p, h->name.len, "Strict-Transport-Security", 25)))
			continue;
		cg_buf_append(&c->wbuf, h->name.p, h->name.len);
		cg_buf_append_lit(&c->wbuf, ": ");
		cg_buf_append(&c->wbuf, h->value.p, h->value.len);
		if (secure && cg_strcaseeq(h->name.p, h->name.len, "Set-Cookie", 10) &&
		    !cookie_is_secure(h->value.p, h->value.len))
			cg_buf_append(&c->wbuf, "; Secure", 8);
		cg_buf_append(&c->wbuf, "\r\n", 2);
	}
	if (hsts)
		cg_buf_printf(&c->wbuf, "Strict-Transport-Security: max-age=%lld\r\n",
		    (long long)policy->hsts);
	r->resp_nobody = r->is_head || cr->status == 204 || cr->status == 304 ||
	    cr->status < 200;
	if (cr->content_length >= 0) {
		r->resp_length = cr->content_length;
		char num[24];

		cg_buf_append_lit(&c->wbuf, "Content-Length: ");
		cg_buf_append(&c->wbuf, num, cg_fmt_u64(num, (uint64_t)cr->content_length));
		cg_buf_append_lit(&c->wbuf, "\r\n");
	} else if (r->resp_nobody) {
		if (!r->is_head && cr->status != 304)
			r->resp_length = 0;
	} else if (r->minor == 1) {
		r->resp_chunked = 1;
		cg_buf_append(&c->wbuf, "Transfer-Encoding: chunked\r\n", 28);
	} else {
		c->keepalive = 0;	/* HTTP/1.0: the end of the body is the close */
	}
	if (!c->keepalive)
		cg_buf_append(&c->wbuf, "Connection: close\r\n", 19);
	else if (r->minor == 0)
		cg_buf_append(&c->wbuf, "Connection: keep-alive\r\n", 24);
	gw_conn_write(c, "\r\n", 2);
	return 0;
}

/* An authorizer's 200: each Variable-NAME header becomes parameter NAME
 * for the responder, unless certgate sets NAME itself. */
static void
authz_vars(struct gw_request *r, const struct gw_cgi_response *cr)
{
	struct gw_conn *c = r->conn;
	size_t i;
	char esc[128];

	r->authz_ok = 1;
	r->authz_vars = cg_arena_alloc(&c->arena, (cr->nheaders + 1) * sizeof(*r->authz_vars));
	for (i = 0; i < cr->nheaders; i++) {
		const struct gw_cgi_header *h = &cr->headers[i];
		struct gw_header *v;
		char *name;

		if (h->name.len <= 9 || !cg_strcaseeq(h->name.p, 9, "Variable-", 9))
			continue;
		name = cg_arena_strndup(&c->arena, h->name.p + 9, h->name.len - 9);
		if (reserved(name)) {
			cg_log(CG_LOG_WARN, c->id, "authorizer %s: Variable-%s ignored: certgate sets it",
			    r->loc->authorizer->conf->name, cg_escape(esc, sizeof(esc), name,
			    strlen(name)));
			continue;
		}
		v = &r->authz_vars[r->nauthz_vars++];
		v->name = name;
		v->nlen = h->name.len - 9;
		v->value = cg_arena_strndup(&c->arena, h->value.p, h->value.len);
		v->vlen = h->value.len;
	}
}

int
gw_request_stdout(struct gw_request *r, const uint8_t *p, size_t n)
{
	struct gw_cgi_response cr;
	int rc;

	if (r->head_sent) {
		body(r, p, n);
		return 0;
	}
	if (r->authorizing && r->authz_ok)
		return 0;	/* the body of an authorizer's 200 goes nowhere */
	cg_buf_append(&r->cgi_head, p, n);
	rc = gw_cgi_parse((const char *)cg_buf_head(&r->cgi_head), cg_buf_avail(&r->cgi_head), &cr);
	if (rc == 0)
		return cg_buf_avail(&r->cgi_head) > CGI_HEAD_MAX ? -1 : 0;
	if (rc < 0)
		return -1;
	if (r->authorizing && cr.status == 200) {
		authz_vars(r, &cr);
		cg_buf_free(&r->cgi_head);
		return 0;
	}
	response_head(r, &cr);
	body(r, cg_buf_head(&r->cgi_head) + cr.head_len, cg_buf_avail(&r->cgi_head) - cr.head_len);
	cg_buf_free(&r->cgi_head);
	return 0;
}

void
gw_request_end(struct gw_request *r)
{
	struct gw_conn *c = r->conn;

	if (r->authz_ok && r->authorizing) {
		/* Allowed: the same request goes on to the responder. */
		gw_fcgi_release(r, 1);
		r->authorizing = 0;
		start_backend(r);
		gw_conn_resume_input(c);
		return;
	}
	if (!r->head_sent) {
		gw_request_fail(r, 502, "the application ended without a CGI header");
		return;
	}
	if (r->resp_length >= 0 && r->resp_bytes < (uint64_t)r->resp_length && !r->resp_nobody) {
		gw_request_fail(r, 502, "the application sent less than its Content-Length");
		return;
	}
	if (r->resp_chunked)
		gw_conn_write(c, "0\r\n\r\n", 5);
	r->resp_done = 1;
	gw_fcgi_release(r, 1);
	gw_conn_request_done(c);
}

void
gw_request_fail(struct gw_request *r, int status, const char *why)
{
	struct gw_conn *c = r->conn;

	cg_log(CG_LOG_ERROR, c->id, "backend %s: %s", r->authorizing ?
	    r->loc->authorizer->conf->name : r->loc->backend->conf->name, why);
	if (r->up != NULL)
		gw_fcgi_release(r, 0);
	gw_http_error(c, status, NULL, 0);
}

/* ---- the access log ---- */

/* A log line is composed in a fixed buffer, piece by piece: snprintf with
 * twenty arguments was a tenth of a keep-alive request's instructions. */
struct line {
	char *p, *end;
};

static void
put_mem(struct line *l, const char *s, size_t n)
{
	if (n > (size_t)(l->end - l->p))
		n = (size_t)(l->end - l->p);
	memcpy(l->p, s, n);
	l->p += n;
}

static void
put_str(struct line *l, const char *s)
{
	put_mem(l, s, strlen(s));
}

static void
put_num(struct line *l, long long v)
{
	char num[24];

	if (v < 0) {
		put_mem(l, "-", 1);
		v = -v;
	}
	put_mem(l, num, cg_fmt_u64(num, (uint64_t)v));
}

/* The request's time as the combined format writes it, made once a second. */
static const char *
log_time(time_t wall)
{
	static time_t last = -1;
	static char t[64];
	struct tm tm;

	if (wall != last) {
		gmtime_r(&wall, &tm);
		strftime(t, sizeof(t), "%d/%b/%Y:%H:%M:%S +0000", &tm);
		last = wall;
	}
	return t;
}

void
gw_request_log(struct gw_request *r)
{
	struct gw_conn *c = r->conn;
	const struct gw_header *ref = header(r, "Referer"), *ua = header(r, "User-Agent");
	char target[1024], refb[512], uab[512], certb[512], lineb[4096], code[16];
	char userb[256], mapb[300], mapesc[512];
	struct line l = { lineb, lineb + sizeof(lineb) - 1 };
	const struct ca_mapping *m;
	struct timespec now;
	const char *t, *tls = c->tls ? gw_tls_protocol(c->tls) : "-";
	const char *cipher = c->tls ? gw_tls_cipher(c->tls) : "-";
	const char *method = r->method ? r->method : "-";
	long ms;
	int json;
	const char *(*esc)(char *, size_t, const void *, size_t);

	if (strcmp(gw_worker->cfg->raw.access_log, "off") == 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (now.tv_sec - r->start.tv_sec) * 1000 + (now.tv_nsec - r->start.tv_nsec) / 1000000;
	t = log_time(time(NULL));
	{
		struct line cl = { code, code + sizeof(code) - 1 };

		put_num(&cl, r->status);
		if (r->status_detail) {
			put_mem(&cl, ".", 1);
			put_str(&cl, r->status_detail);
		}
		*cl.p = '\0';
	}
	json = gw_worker->cfg->raw.access_log_format == GW_ALOG_JSON;
	esc = json ? cg_escape_json : cg_escape;
	esc(target, sizeof(target), r->target ? r->target : "", r->target ? r->target_len : 0);
	esc(refb, sizeof(refb), ref ? ref->value : "-", ref ? ref->vlen : 1);
	esc(uab, sizeof(uab), ua ? ua->value : "-", ua ? ua->vlen : 1);
	if (c->auth.facts != NULL)
		esc(certb, sizeof(certb), c->auth.facts->subject.rfc4514,
		    strlen(c->auth.facts->subject.rfc4514));
	else
		strcpy(certb, "-");
	m = c->auth.mapped && r->loc != NULL && r->loc->policy->nmapping > 0 ? &c->auth.mapping :
	    NULL;
	if (m != NULL && m->method != CA_MAP_NONE) {
		struct line ml = { mapb, mapb + sizeof(mapb) - 1 };

		esc(userb, sizeof(userb), m->user ? m->user : "-", m->user ? strlen(m->user) : 1);
		put_str(&ml, ca_map_method_names[m->method]);
		put_mem(&ml, ":", 1);
		put_str(&ml, m->name ? m->name : "-");
		*ml.p = '\0';
		esc(mapesc, sizeof(mapesc), mapb, strlen(mapb));
	} else {
		strcpy(userb, "-");
		strcpy(mapesc, "-");
	}
	if (json) {
		put_str(&l, "{\"remote_addr\":\""); put_str(&l, c->peer_addr);
		put_str(&l, "\",\"time\":\""); put_str(&l, t);
		put_str(&l, "\",\"method\":\""); put_str(&l, method);
		put_str(&l, "\",\"target\":\""); put_str(&l, target);
		put_str(&l, "\",\"protocol\":\"HTTP/"); put_num(&l, r->major);
		put_mem(&l, ".", 1); put_num(&l, r->minor);
		put_str(&l, "\",\"status\":\""); put_str(&l, code);
		put_str(&l, "\",\"bytes\":"); put_num(&l, (long long)r->resp_bytes);
		put_str(&l, ",\"referer\":\""); put_str(&l, refb);
		put_str(&l, "\",\"user_agent\":\""); put_str(&l, uab);
		put_str(&l, "\",\"tls\":\""); put_str(&l, tls);
		put_str(&l, "\",\"cipher\":\""); put_str(&l, cipher);
		put_str(&l, "\",\"cert\":\""); put_str(&l, certb);
		put_str(&l, "\",\"user\":\""); put_str(&l, userb);
		put_str(&l, "\",\"map\":\""); put_str(&l, mapesc);
		put_str(&l, "\",\"rt\":"); put_num(&l, ms);
		put_str(&l, "}");
	} else {
		put_str(&l, c->peer_addr);
		put_str(&l, " - - ["); put_str(&l, t);
		put_str(&l, "] \""); put_str(&l, method);
		put_mem(&l, " ", 1); put_str(&l, target);
		put_str(&l, " HTTP/"); put_num(&l, r->major);
		put_mem(&l, ".", 1); put_num(&l, r->minor);
		put_str(&l, "\" "); put_num(&l, r->status);
		put_mem(&l, " ", 1); put_num(&l, (long long)r->resp_bytes);
		put_str(&l, " \""); put_str(&l, refb);
		put_str(&l, "\" \""); put_str(&l, uab);
		put_str(&l, "\" tls="); put_str(&l, tls);
		put_str(&l, " cipher="); put_str(&l, cipher);
		put_str(&l, " cert=\""); put_str(&l, certb);
		put_str(&l, "\" user="); put_str(&l, userb);
		put_str(&l, " map="); put_str(&l, mapesc);
		put_str(&l, " status="); put_str(&l, code);
		put_str(&l, " rt="); put_num(&l, ms);
	}
	*l.p++ = '\n';		/* l.end keeps a byte for it */
	gw_alog_write(lineb, (size_t)(l.p - lineb));
}

void
gw_request_free(struct gw_request *r)
{
	if (r->up != NULL)
		gw_fcgi_release(r, 0);
	cg_buf_free(&r->cgi_head);
}
