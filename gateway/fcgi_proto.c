/*
 * fcgi_proto.c: the FastCGI 1.0 wire format (record framing, name-value
 * pairs, the incremental parser of an application's record stream) and the
 * CGI response header parser. Pure functions over caller buffers: no I/O.
 */
#include "gateway/fcgi_proto.h"

#include <string.h>

#define FCGI_KEEP_CONN		1	/* BEGIN_REQUEST flags bit */
#define FCGI_NULL_REQUEST_ID	0	/* id of management records */
#define FCGI_END_BODY_LEN	8
#define FCGI_NV_MAX		0x7fffffffUL	/* 31-bit length field */

const char *const gw_fcgi_ev_names[GW_FCGI_EV__MAX] = {
	[GW_FCGI_EV_NONE] = "NONE",
	[GW_FCGI_EV_STDOUT] = "STDOUT",
	[GW_FCGI_EV_STDERR] = "STDERR",
	[GW_FCGI_EV_END] = "END",
	[GW_FCGI_EV_ERROR] = "ERROR",
};

/*
 * Parser states, kept in gw_fcgi_parser.state. Never logged (errors carry
 * their own text), so no name table.
 */
enum fcgi_state {
	FCGI_ST_HEADER,		/* collecting the 8 header bytes */
	FCGI_ST_CONTENT,	/* inside the content of a checked record */
	FCGI_ST_PADDING,	/* skipping padding */
	FCGI_ST_DONE,		/* END or ERROR reported; needs re-init */
	FCGI_ST__MAX
};

/* ---- encoding ---- */

static void
fcgi_header(uint8_t *out, enum gw_fcgi_type type, uint16_t id, size_t clen,
    size_t plen)
{
	out[0] = GW_FCGI_VERSION;
	out[1] = (uint8_t)type;
	out[2] = (uint8_t)(id >> 8);
	out[3] = (uint8_t)id;
	out[4] = (uint8_t)(clen >> 8);
	out[5] = (uint8_t)clen;
	out[6] = (uint8_t)plen;
	out[7] = 0;
}

/* Padding that brings content to a multiple of 8, as the spec recommends. */
static size_t
fcgi_pad(size_t clen)
{
	return (8 - (clen & 7)) & 7;
}

size_t
gw_fcgi_begin_request(uint8_t out[16], uint16_t id, enum gw_fcgi_role role,
    int keep_conn)
{
	fcgi_header(out, GW_FCGI_BEGIN_REQUEST, id, 8, 0);
	out[8] = (uint8_t)((unsigned)role >> 8);
	out[9] = (uint8_t)role;
	out[10] = keep_conn ? FCGI_KEEP_CONN : 0;
	memset(out + 11, 0, 5);
	return 16;
}

static size_t
fcgi_nv_lenlen(size_t n)
{
	return n < 128 ? 1 : 4;
}

/*
 * Returns 0 when a length does not fit the 31-bit field: the caller broke
 * the contract, and writing nothing beats writing a corrupt stream.
 */
size_t
gw_fcgi_nv_len(size_t nlen, size_t vlen)
{
	if (nlen > FCGI_NV_MAX || vlen > FCGI_NV_MAX)
		return 0;
	/* size_t may be 32 bits: the sum of two 31-bit lengths can wrap */
	if (nlen > SIZE_MAX - 8 - vlen)
		return 0;
	return fcgi_nv_lenlen(nlen) + fcgi_nv_lenlen(vlen) + nlen + vlen;
}

static uint8_t *
fcgi_nv_putlen(uint8_t *out, size_t n)
{
	if (n < 128) {
		*out++ = (uint8_t)n;
		return out;
	}
	*out++ = (uint8_t)((n >> 24) | 0x80);
	*out++ = (uint8_t)(n >> 16);
	*out++ = (uint8_t)(n >> 8);
	*out++ = (uint8_t)n;
	return out;
}

size_t
gw_fcgi_nv_encode(uint8_t *out, const void *name, size_t nlen,
    const void *value, size_t vlen)
{
	size_t total;
	uint8_t *p;

	if ((total = gw_fcgi_nv_len(nlen, vlen)) == 0)
		return 0;
	p = fcgi_nv_putlen(out, nlen);
	p = fcgi_nv_putlen(p, vlen);
	if (nlen > 0)
		memcpy(p, name, nlen);
	p += nlen;
	if (vlen > 0)
		memcpy(p, value, vlen);
	return total;
}

size_t
gw_fcgi_frame_len(size_t len)
{
	size_t full, rest, n;

	if (len == 0)
		return GW_FCGI_HEADER_LEN;
	full = len / GW_FCGI_MAX_CONTENT;
	rest = len % GW_FCGI_MAX_CONTENT;
	n = full * (GW_FCGI_HEADER_LEN + GW_FCGI_MAX_CONTENT +
	    fcgi_pad(GW_FCGI_MAX_CONTENT));
	if (rest > 0)
		n += GW_FCGI_HEADER_LEN + rest + fcgi_pad(rest);
	return n;
}

size_t
gw_fcgi_frame(uint8_t *out, enum gw_fcgi_type type, uint16_t id,
    const void *data, size_t len)
{
	const uint8_t *src = data;
	size_t n, pad, off = 0;

	if (len == 0) {
		fcgi_header(out, type, id, 0, 0);
		return GW_FCGI_HEADER_LEN;
	}
	while (len > 0) {
		n = len < GW_FCGI_MAX_CONTENT ? len : GW_FCGI_MAX_CONTENT;
		pad = fcgi_pad(n);
		fcgi_header(out + off, type, id, n, pad);
		off += GW_FCGI_HEADER_LEN;
		memcpy(out + off, src, n);
		off += n;
		/* zeroed so no stale caller memory leaks to the application */
		memset(out + off, 0, pad);
		off += pad;
		src += n;
		len -= n;
	}
	return off;
}

/* ---- decoding: name-value pairs ---- */

/* Reads one 1- or 4-byte length at in[*off]; -1 when truncated. */
static int
fcgi_nv_getlen(const uint8_t *in, size_t len, size_t *off, size_t *n)
{
	size_t o = *off;

	if (o >= len)
		return -1;
	if ((in[o] & 0x80) == 0) {
		*n = in[o];
		*off = o + 1;
		return 0;
	}
	if (len - o < 4)
		return -1;
	*n = ((size_t)(in[o] & 0x7f) << 24) | ((size_t)in[o + 1] << 16) |
	    ((size_t)in[o + 2] << 8) | (size_t)in[o + 3];
	*off = o + 4;
	return 0;
}

int
gw_fcgi_nv_decode(const uint8_t *in, size_t len, size_t *off,
    const uint8_t **name, size_t *nlen, const uint8_t **value, size_t *vlen)
{
	size_t o = *off, nl, vl;

	if (in == NULL || o > len)
		return -1;
	if (fcgi_nv_getlen(in, len, &o, &nl) == -1 ||
	    fcgi_nv_getlen(in, len, &o, &vl) == -1)
		return -1;
	/* compared against what is left, so no sum can wrap */
	if (nl > len - o || vl > len - o - nl)
		return -1;
	*name = in + o;
	*nlen = nl;
	*value = in + o + nl;
	*vlen = vl;
	*off = o + nl + vl;
	return 0;
}

/* ---- decoding: the record stream ---- */

void
gw_fcgi_parser_init(struct gw_fcgi_parser *p)
{
	memset(p, 0, sizeof(*p));
	p->state = FCGI_ST_HEADER;
}

static size_t
fcgi_fail(struct gw_fcgi_parser *p, struct gw_fcgi_event *ev, size_t off,
    const char *why)
{
	p->state = FCGI_ST_DONE;
	ev->type = GW_FCGI_EV_ERROR;
	ev->error = why;
	return off;
}

/*
 * Checks a complete header against what an application may send us; sets
 * up the record's content and padding. Returns NULL or the error.
 */
static const char *
fcgi_check_header(struct gw_fcgi_parser *p, uint16_t id)
{
	const uint8_t *h = p->hdr;

	if (h[0] != GW_FCGI_VERSION)
		return "FastCGI record with a version other than 1";
	p->type = h[1];
	p->id = (uint16_t)((h[2] << 8) | h[3]);
	p->content_left = (size_t)((h[4] << 8) | h[5]);
	p->padding_left = h[6];
	p->body_len = 0;

	switch (p->type) {
	case GW_FCGI_STDOUT:
	case GW_FCGI_STDERR:
		break;
	case GW_FCGI_END_REQUEST:
		if (p->content_left != FCGI_END_BODY_LEN)
			return "FastCGI END_REQUEST record of the wrong size";
		break;
	case GW_FCGI_GET_VALUES_RESULT:
	case GW_FCGI_UNKNOWN_TYPE:
		/* answers to management records; they belong to no request */
		if (p->id != FCGI_NULL_REQUEST_ID)
			return "FastCGI management record with a request id";
		return NULL;
	default:
		return "FastCGI record of a type an application may not send";
	}
	if (p->id != id)
		return "FastCGI record for another request id";
	return NULL;
}

size_t
gw_fcgi_parse(struct gw_fcgi_parser *p, uint16_t id, const uint8_t *buf,
    size_t len, struct gw_fcgi_event *ev)
{
	const char *why;
	size_t off = 0, n;

	memset(ev, 0, sizeof(*ev));
	ev->type = GW_FCGI_EV_NONE;

	if (p->state < 0 || p->state >= FCGI_ST_DONE) {
		/* keeps reporting the error rather than parse a dead stream */
		return fcgi_fail(p, ev, 0,
		    "FastCGI parser used after END or ERROR");
	}

	for (;;) {
		/* record boundaries are crossed without input: 0-length parts */
		if (p->state == FCGI_ST_CONTENT && p->content_left == 0)
			p->state = FCGI_ST_PADDING;
		if (p->state == FCGI_ST_PADDING && p->padding_left == 0) {
			if (p->type == GW_FCGI_END_REQUEST) {
				/* reported only once its padding is consumed,
				 * so a kept connection resumes on a boundary */
				p->state = FCGI_ST_DONE;
				ev->type = GW_FCGI_EV_END;
				ev->app_status = (uint32_t)p->body[0] << 24 |
				    (uint32_t)p->body[1] << 16 |
				    (uint32_t)p->body[2] << 8 |
				    (uint32_t)p->body[3];
				ev->protocol_status = p->body[4];
				return off;
			}
			p->state = FCGI_ST_HEADER;
			p->hdr_len = 0;
		}
		if (off == len)
			return off;

		n = len - off;
		switch (p->state) {
		case FCGI_ST_HEADER:
			if (n > GW_FCGI_HEADER_LEN - p->hdr_len)
				n = GW_FCGI_HEADER_LEN - p->hdr_len;
			memcpy(p->hdr + p->hdr_len, buf + off, n);
			p->hdr_len += n;
			off += n;
			if (p->hdr_len < GW_FCGI_HEADER_LEN)
				break;
			if ((why = fcgi_check_header(p, id)) != NULL)
				return fcgi_fail(p, ev, off, why);
			p->state = FCGI_ST_CONTENT;
			break;
		case FCGI_ST_CONTENT:
			if (n > p->content_left)
				n = p->content_left;
			if (p->type == GW_FCGI_STDOUT ||
			    p->type == GW_FCGI_STDERR) {
				ev->type = p->type == GW_FCGI_STDOUT ?
				    GW_FCGI_EV_STDOUT : GW_FCGI_EV_STDERR;
				ev->data = buf + off;
				ev->len = n;
				p->content_left -= n;
				return off + n;
			}
			if (p->type == GW_FCGI_END_REQUEST) {
				/* content_left was checked to be 8 at most */
				memcpy(p->body + p->body_len, buf + off, n);
				p->body_len += n;
			}
			p->content_left -= n;
			off += n;
			break;
		case FCGI_ST_PADDING:
			if (n > p->padding_left)
				n = p->padding_left;
			p->padding_left -= n;
			off += n;
			break;
		default:
			return fcgi_fail(p, ev, off,
			    "FastCGI parser in an impossible state");
		}
	}
}

/* ---- the CGI response header ---- */

/* RFC 9110 5.6.2 tchar */
static int
cgi_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
cgi_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int
cgi_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* ASCII-only so the locale cannot change what a header name matches. */
static int
cgi_name_is(const struct gw_span *s, const char *want)
{
	size_t i, n = strlen(want);
	unsigned char a, b;

	if (s->len != n)
		return 0;
	for (i = 0; i < n; i++) {
		a = (unsigned char)s->p[i];
		b = (unsigned char)want[i];
		if (a >= 'A' && a <= 'Z')
			a += 'a' - 'A';
		if (b >= 'A' && b <= 'Z')
			b += 'a' - 'A';
		if (a != b)
			return 0;
	}
	return 1;
}

/* "3 digits in 100..599", then optionally blanks and a reason phrase. */
static int
cgi_status(const struct gw_span *v, struct gw_cgi_response *r)
{
	const char *s = v->p;
	size_t i;

	if (v->len < 3 || !cgi_digit(s[0]) || !cgi_digit(s[1]) ||
	    !cgi_digit(s[2]))
		return -1;
	r->status = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (r->status < 100 || r->status > 599)
		return -1;
	if (v->len == 3)
		return 0;
	if (!cgi_blank(s[3]))
		return -1;
	/* trailing blanks are already trimmed, so the rest is non-empty */
	for (i = 3; i < v->len && cgi_blank(s[i]); i++)
		;
	r->reason.p = s + i;
	r->reason.len = v->len - i;
	return 0;
}

/* All digits, at least one, fitting int64_t. */
static int
cgi_content_length(const struct gw_span *v, int64_t *out)
{
	int64_t n = 0;
	size_t i;
	int d;

	if (v->len == 0)
		return -1;
	for (i = 0; i < v->len; i++) {
		if (!cgi_digit(v->p[i]))
			return -1;
		d = v->p[i] - '0';
		if (n > (INT64_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*out = n;
	return 0;
}

/* RFC 3986 scheme ":" -- what makes a Location a client redirect. */
static int
cgi_absolute_url(const struct gw_span *v)
{
	size_t i;
	char c;

	if (v->len == 0 || !((v->p[0] >= 'a' && v->p[0] <= 'z') ||
	    (v->p[0] >= 'A' && v->p[0] <= 'Z')))
		return 0;
	for (i = 1; i < v->len; i++) {
		c = v->p[i];
		if (c == ':')
			return 1;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    cgi_digit(c) || c == '+' || c == '-' || c == '.'))
			return 0;
	}
	return 0;
}

struct cgi_seen {
	int status;
	int location;
	struct gw_span loc;
};

/* One header line without its line end; -1 when malformed. */
static int
cgi_line(const char *line, size_t len, struct gw_cgi_response *r,
    struct cgi_seen *seen)
{
	struct gw_span name, value;
	const char *colon;
	unsigned char c;
	int64_t cl;
	size_t i;

	if ((colon = memchr(line, ':', len)) == NULL)
		return -1;
	name.p = line;
	name.len = (size_t)(colon - line);
	if (name.len == 0)
		return -1;
	for (i = 0; i < name.len; i++)
		if (!cgi_tchar((unsigned char)name.p[i]))
			return -1;

	value.p = colon + 1;
	value.len = len - name.len - 1;
	for (i = 0; i < value.len; i++) {
		c = (unsigned char)value.p[i];
		/* CR included: a bare CR is how responses get split */
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -1;
	}
	while (value.len > 0 && cgi_blank(value.p[0])) {
		value.p++;
		value.len--;
	}
	while (value.len > 0 && cgi_blank(value.p[value.len - 1]))
		value.len--;

	if (cgi_name_is(&name, "Status")) {
		/* two Status lines leave the real status a guess */
		if (seen->status)
			return -1;
		seen->status = 1;
		return cgi_status(&value, r);
	}
	if (cgi_name_is(&name, "Content-Length")) {
		if (cgi_content_length(&value, &cl) == -1)
			return -1;
		if (r->content_length != -1 && r->content_length != cl)
			return -1;
		r->content_length = cl;
	} else if (cgi_name_is(&name, "Location")) {
		/* two Locations leave the redirect target a guess */
		if (seen->location)
			return -1;
		seen->location = 1;
		seen->loc = value;
	}
	if (r->nheaders == GW_CGI_MAX_HEADERS)
		return -1;
	r->headers[r->nheaders].name = name;
	r->headers[r->nheaders].value = value;
	r->nheaders++;
	return 0;
}

int
gw_cgi_parse(const char *buf, size_t len, struct gw_cgi_response *r)
{
	struct cgi_seen seen;
	const char *lf;
	size_t off = 0, end;

	memset(&seen, 0, sizeof(seen));
	r->status = 0;
	r->reason.p = "";	/* never NULL, even when empty */
	r->reason.len = 0;
	r->nheaders = 0;
	r->content_length = -1;
	r->head_len = 0;

	if (buf == NULL || len == 0)
		return 0;
	for (;;) {
		if ((lf = memchr(buf + off, '\n', len - off)) == NULL)
			return 0;
		end = (size_t)(lf - buf);
		if (end > off && buf[end - 1] == '\r')
			end--;
		if (end == off)
			break;
		if (cgi_line(buf + off, end - off, r, &seen) == -1)
			return -1;
		off = (size_t)(lf - buf) + 1;
	}
	r->head_len = (size_t)(lf - buf) + 1;

	if (!seen.status) {
		/* RFC 3875 6.2.2/6.2.3: both redirect forms answer 302 here;
		 * a local redirect is not re-dispatched inside the gateway */
		if (seen.location && seen.loc.len > 0 &&
		    (seen.loc.p[0] == '/' || cgi_absolute_url(&seen.loc)))
			r->status = 302;
		else
			r->status = 200;
	}
	return 1;
}
