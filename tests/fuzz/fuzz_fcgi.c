/*
 * fuzz_fcgi.c: libFuzzer target for gateway/fcgi_proto.c. Feeds the input
 * to the record-stream parser (whole and split), the CGI header parser and
 * the name-value decoder, and checks what must hold whatever the bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/fcgi_proto.h"

#define FUZZ_ID 1

#define CHECK(c) do { if (!(c)) abort(); } while (0)

struct outcome {
	uint8_t *out;		/* STDOUT pieces, concatenated */
	size_t outlen;
	size_t errlen;
	enum gw_fcgi_ev last;
	uint32_t app_status;
	uint8_t protocol_status;
	const char *error;
	size_t consumed;
};

/* Feeds buf until it is used up or the stream ends; returns 1 when ended. */
static int
feed(struct gw_fcgi_parser *p, const uint8_t *buf, size_t len,
    struct outcome *o)
{
	struct gw_fcgi_event ev;
	size_t off = 0, n;

	while (off < len) {
		n = gw_fcgi_parse(p, FUZZ_ID, buf + off, len - off, &ev);
		CHECK(n <= len - off);
		CHECK(ev.type >= GW_FCGI_EV_NONE && ev.type < GW_FCGI_EV__MAX);
		off += n;
		o->consumed += n;
		o->last = ev.type;
		switch (ev.type) {
		case GW_FCGI_EV_NONE:
			CHECK(off == len);
			break;
		case GW_FCGI_EV_STDOUT:
		case GW_FCGI_EV_STDERR:
			CHECK(ev.len > 0 && ev.len <= n);
			/* the piece is the tail of what was consumed */
			CHECK(ev.data == buf + off - ev.len);
			if (ev.type == GW_FCGI_EV_STDOUT) {
				memcpy(o->out + o->outlen, ev.data, ev.len);
				o->outlen += ev.len;
			} else
				o->errlen += ev.len;
			break;
		case GW_FCGI_EV_END:
			o->app_status = ev.app_status;
			o->protocol_status = ev.protocol_status;
			return 1;
		case GW_FCGI_EV_ERROR:
			CHECK(ev.error != NULL);
			o->error = ev.error;
			return 1;
		default:
			abort();
		}
	}
	return 0;
}

static int
in_span(const char *base, size_t len, struct gw_span s)
{
	return s.p >= base && s.len <= len && s.p - base <= (ptrdiff_t)(len - s.len);
}

static void
check_cgi(const char *buf, size_t len, size_t cut)
{
	static struct gw_cgi_response r, rp;
	size_t i, j;
	int rc, rcp;

	rc = gw_cgi_parse(buf, len, &r);
	CHECK(rc == -1 || rc == 0 || rc == 1);
	if (rc == 1) {
		CHECK(r.head_len >= 1 && r.head_len <= len);
		CHECK(buf[r.head_len - 1] == '\n');
		CHECK(r.status >= 100 && r.status <= 599);
		CHECK(r.nheaders <= GW_CGI_MAX_HEADERS);
		CHECK(r.content_length >= -1);
		CHECK(r.reason.p != NULL);
		CHECK(r.reason.len == 0 ||
		    in_span(buf, r.head_len, r.reason));
		for (i = 0; i < r.nheaders; i++) {
			CHECK(r.headers[i].name.len > 0);
			CHECK(in_span(buf, r.head_len, r.headers[i].name));
			CHECK(r.headers[i].value.len == 0 ||
			    in_span(buf, r.head_len, r.headers[i].value));
			for (j = 0; j < r.headers[i].value.len; j++) {
				unsigned char c = (unsigned char)
				    r.headers[i].value.p[j];
				CHECK(c >= 0x20 || c == '\t');
				CHECK(c != 0x7f);
			}
		}
	}

	/* more bytes never turn a verdict around */
	if (cut > len)
		cut = len;
	rcp = gw_cgi_parse(buf, cut, &rp);
	if (rcp == 1)
		CHECK(rc == 1 && rp.head_len == r.head_len &&
		    rp.status == r.status && rp.nheaders == r.nheaders);
	if (rcp == -1)
		CHECK(rc == -1);
}

static void
check_nv(const uint8_t *data, size_t size)
{
	const uint8_t *name, *value, *n2, *v2;
	size_t off = 0, prev, nlen, vlen, nl2, vl2, elen, o2;
	uint8_t *enc;

	for (;;) {
		prev = off;
		if (gw_fcgi_nv_decode(data, size, &off, &name, &nlen, &value,
		    &vlen) == -1) {
			CHECK(off == prev);
			break;
		}
		CHECK(off >= prev + 2 && off <= size);
		CHECK(name >= data && name + nlen <= data + size);
		CHECK(value == name + nlen && value + vlen == data + off);

		/* re-encoding decodes to the same pair */
		elen = gw_fcgi_nv_len(nlen, vlen);
		CHECK(elen >= 2 && elen <= off - prev);
		enc = malloc(elen);
		CHECK(enc != NULL);
		CHECK(gw_fcgi_nv_encode(enc, name, nlen, value, vlen) == elen);
		o2 = 0;
		CHECK(gw_fcgi_nv_decode(enc, elen, &o2, &n2, &nl2, &v2,
		    &vl2) == 0);
		CHECK(o2 == elen && nl2 == nlen && vl2 == vlen);
		CHECK(memcmp(n2, name, nlen) == 0);
		CHECK(memcmp(v2, value, vlen) == 0);
		free(enc);
	}
}

/* Framing the input as STDOUT and parsing it back gives the input. */
static void
check_frame(const uint8_t *data, size_t size)
{
	static const uint8_t end[16] = {
		1, GW_FCGI_END_REQUEST, 0, FUZZ_ID, 0, 8, 0, 0,
		0, 0, 0, 42, GW_FCGI_REQUEST_COMPLETE, 0, 0, 0
	};
	struct gw_fcgi_parser p;
	struct outcome o;
	uint8_t *buf;
	size_t n, flen;

	flen = gw_fcgi_frame_len(size);
	buf = malloc(flen + sizeof(end));
	CHECK(buf != NULL);
	n = gw_fcgi_frame(buf, GW_FCGI_STDOUT, FUZZ_ID, data, size);
	CHECK(n == flen && n % 8 == 0);
	memcpy(buf + n, end, sizeof(end));

	memset(&o, 0, sizeof(o));
	o.out = malloc(size + 1);
	CHECK(o.out != NULL);
	gw_fcgi_parser_init(&p);
	CHECK(feed(&p, buf, n + sizeof(end), &o) == 1);
	CHECK(o.last == GW_FCGI_EV_END && o.app_status == 42);
	CHECK(o.consumed == n + sizeof(end));
	CHECK(o.outlen == size && memcmp(o.out, data, size) == 0);
	free(o.out);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_fcgi_parser p;
	struct outcome whole, split;
	size_t cut;

	/* where to split, taken from the first byte, so records break
	 * at every place the fuzzer cares to try */
	cut = size > 0 ? (size_t)data[0] * size / 255 : 0;

	memset(&whole, 0, sizeof(whole));
	memset(&split, 0, sizeof(split));
	whole.out = malloc(size + 1);
	split.out = malloc(size + 1);
	CHECK(whole.out != NULL && split.out != NULL);

	gw_fcgi_parser_init(&p);
	feed(&p, data, size, &whole);

	memset(&p, 0, sizeof(p));	/* zeroed works like inited */
	if (!feed(&p, data, cut, &split))
		feed(&p, data + cut, size - cut, &split);

	/* where the input is cut must not change what it means */
	CHECK(whole.last == split.last);
	CHECK(whole.consumed == split.consumed);
	CHECK(whole.outlen == split.outlen);
	CHECK(memcmp(whole.out, split.out, whole.outlen) == 0);
	CHECK(whole.errlen == split.errlen);
	CHECK(whole.error == split.error);
	CHECK(whole.app_status == split.app_status);
	CHECK(whole.protocol_status == split.protocol_status);

	check_cgi((const char *)whole.out, whole.outlen, cut);
	check_cgi((const char *)data, size, cut);
	check_nv(data, size);
	check_frame(data, size);

	free(whole.out);
	free(split.out);
	return 0;
}
