/*
 * test_fcgi_proto.c: cmocka tests for gateway/fcgi_proto.c: byte-exact
 * encodings, name-value decoding, the record-stream parser fed whole and
 * byte by byte, and the CGI response header parser.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/fcgi_proto.h"

#define ID 0x1234

/* ---- helpers ---- */

/* Writes one record with explicit padding filled with 0xEE. */
static size_t
rec(uint8_t *out, uint8_t type, uint16_t id, const void *data, size_t len,
    uint8_t pad)
{
	out[0] = 1;
	out[1] = type;
	out[2] = (uint8_t)(id >> 8);
	out[3] = (uint8_t)id;
	out[4] = (uint8_t)(len >> 8);
	out[5] = (uint8_t)len;
	out[6] = pad;
	out[7] = 0;
	if (len > 0)
		memcpy(out + 8, data, len);
	memset(out + 8 + len, 0xee, pad);
	return 8 + len + pad;
}

static size_t
end_rec(uint8_t *out, uint16_t id, uint32_t app, uint8_t proto, uint8_t pad)
{
	uint8_t body[8] = {
		(uint8_t)(app >> 24), (uint8_t)(app >> 16), (uint8_t)(app >> 8),
		(uint8_t)app, proto, 0, 0, 0
	};

	return rec(out, GW_FCGI_END_REQUEST, id, body, 8, pad);
}

/* What a parse run produced, with STDOUT/STDERR pieces concatenated. */
struct run {
	char out[4096];
	size_t outlen;
	char err[4096];
	size_t errlen;
	enum gw_fcgi_ev seq[64];	/* event types, merging repeats */
	size_t nseq;
	enum gw_fcgi_ev last;
	uint32_t app_status;
	uint8_t protocol_status;
	const char *error;
	size_t consumed;
};

static void
run_event(struct run *r, const struct gw_fcgi_event *ev)
{
	if (ev->type == GW_FCGI_EV_NONE)
		return;
	if (r->nseq == 0 || r->seq[r->nseq - 1] != ev->type) {
		assert_true(r->nseq < 64);
		r->seq[r->nseq++] = ev->type;
	}
	r->last = ev->type;
	switch (ev->type) {
	case GW_FCGI_EV_STDOUT:
		assert_true(ev->len > 0);
		assert_true(r->outlen + ev->len <= sizeof(r->out));
		memcpy(r->out + r->outlen, ev->data, ev->len);
		r->outlen += ev->len;
		break;
	case GW_FCGI_EV_STDERR:
		assert_true(ev->len > 0);
		assert_true(r->errlen + ev->len <= sizeof(r->err));
		memcpy(r->err + r->errlen, ev->data, ev->len);
		r->errlen += ev->len;
		break;
	case GW_FCGI_EV_END:
		r->app_status = ev->app_status;
		r->protocol_status = ev->protocol_status;
		break;
	case GW_FCGI_EV_ERROR:
		assert_non_null(ev->error);
		r->error = ev->error;
		break;
	default:
		fail();
	}
}

/* Feeds buf in pieces of `step` bytes until END, ERROR or exhaustion. */
static void
run_parse(const uint8_t *buf, size_t len, size_t step, uint16_t id,
    struct run *r)
{
	struct gw_fcgi_parser p;
	struct gw_fcgi_event ev;
	size_t off = 0, avail, n;

	memset(r, 0, sizeof(*r));
	r->last = GW_FCGI_EV_NONE;
	gw_fcgi_parser_init(&p);
	while (off < len) {
		avail = len - off < step ? len - off : step;
		n = gw_fcgi_parse(&p, id, buf + off, avail, &ev);
		assert_true(n <= avail);
		off += n;
		run_event(r, &ev);
		if (ev.type == GW_FCGI_EV_END || ev.type == GW_FCGI_EV_ERROR)
			break;
		/* NONE means every offered byte was taken */
		if (ev.type == GW_FCGI_EV_NONE)
			assert_int_equal(n, avail);
	}
	r->consumed = off;
}

/* ---- encoding ---- */

static void
test_begin_request(void **state)
{
	uint8_t out[16];
	const uint8_t keep[16] = {
		1, 1, 0x12, 0x34, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0
	};
	const uint8_t nokeep[16] = {
		1, 1, 0xab, 0xcd, 0, 8, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0
	};

	(void)state;
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(gw_fcgi_begin_request(out, 0x1234, GW_FCGI_RESPONDER,
	    1), 16);
	assert_memory_equal(out, keep, 16);
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(gw_fcgi_begin_request(out, 0xabcd, GW_FCGI_FILTER, 0),
	    16);
	assert_memory_equal(out, nokeep, 16);
}

static void
test_nv_encode_short(void **state)
{
	uint8_t out[32];
	const uint8_t want[] = { 4, 3, 'H', 'T', 'T', 'P', 'y', 'e', 's' };
	const uint8_t empty[] = { 1, 0, 'X' };

	(void)state;
	assert_int_equal(gw_fcgi_nv_len(4, 3), sizeof(want));
	assert_int_equal(gw_fcgi_nv_encode(out, "HTTP", 4, "yes", 3),
	    sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	assert_int_equal(gw_fcgi_nv_encode(out, "X", 1, NULL, 0), 3);
	assert_memory_equal(out, empty, 3);
}

static void
test_nv_encode_boundary(void **state)
{
	uint8_t name[128], value[300], *out;
	size_t n;

	(void)state;
	memset(name, 'n', sizeof(name));
	memset(value, 'v', sizeof(value));
	out = malloc(1024);
	assert_non_null(out);

	/* 127: one-byte lengths */
	assert_int_equal(gw_fcgi_nv_len(127, 127), 2 + 127 + 127);
	n = gw_fcgi_nv_encode(out, name, 127, value, 127);
	assert_int_equal(n, 2 + 127 + 127);
	assert_int_equal(out[0], 127);
	assert_int_equal(out[1], 127);
	assert_memory_equal(out + 2, name, 127);
	assert_memory_equal(out + 2 + 127, value, 127);

	/* 128: four-byte lengths with the top bit set */
	assert_int_equal(gw_fcgi_nv_len(128, 128), 8 + 128 + 128);
	n = gw_fcgi_nv_encode(out, name, 128, value, 128);
	assert_int_equal(n, 8 + 128 + 128);
	assert_int_equal(out[0], 0x80);
	assert_int_equal(out[1], 0);
	assert_int_equal(out[2], 0);
	assert_int_equal(out[3], 0x80);
	assert_int_equal(out[4], 0x80);
	assert_int_equal(out[7], 0x80);
	assert_memory_equal(out + 8, name, 128);
	assert_memory_equal(out + 8 + 128, value, 128);

	/* mixed: short name, long value (300 = 0x12c) */
	n = gw_fcgi_nv_encode(out, name, 5, value, 300);
	assert_int_equal(n, 1 + 4 + 5 + 300);
	assert_int_equal(out[0], 5);
	assert_int_equal(out[1], 0x80);
	assert_int_equal(out[2], 0);
	assert_int_equal(out[3], 0x01);
	assert_int_equal(out[4], 0x2c);
	free(out);

	/* 2^31 does not fit the 31-bit field: refused, nothing written */
	assert_int_equal(gw_fcgi_nv_len((size_t)1 << 31, 1), 0);
	assert_int_equal(gw_fcgi_nv_len(1, (size_t)1 << 31), 0);
	assert_int_equal(gw_fcgi_nv_len(0x7fffffff, 0), 4 + 1 + 0x7fffffffUL);
}

static void
check_frame(size_t len, size_t want_total, size_t want_records)
{
	uint8_t *in, *out;
	size_t i, n, off, got = 0, nrec = 0, clen, plen;

	in = malloc(len ? len : 1);
	out = malloc(want_total + 16);
	assert_non_null(in);
	assert_non_null(out);
	for (i = 0; i < len; i++)
		in[i] = (uint8_t)(i * 7 + 3);
	memset(out, 0xaa, want_total + 16);

	assert_int_equal(gw_fcgi_frame_len(len), want_total);
	n = gw_fcgi_frame(out, GW_FCGI_STDIN, 0x0102, in, len);
	assert_int_equal(n, want_total);
	/* nothing written past the announced length */
	assert_int_equal(out[want_total], 0xaa);

	for (off = 0; off < n; nrec++) {
		assert_int_equal(out[off], 1);
		assert_int_equal(out[off + 1], GW_FCGI_STDIN);
		assert_int_equal(out[off + 2], 0x01);
		assert_int_equal(out[off + 3], 0x02);
		clen = (size_t)out[off + 4] << 8 | out[off + 5];
		plen = out[off + 6];
		assert_int_equal(out[off + 7], 0);
		assert_true(clen <= GW_FCGI_MAX_CONTENT);
		assert_int_equal((clen + plen) % 8, 0);
		assert_true(plen < 8);
		if (len > 0)
			assert_true(clen > 0);
		assert_memory_equal(out + off + 8, in + got, clen);
		for (i = 0; i < plen; i++)
			assert_int_equal(out[off + 8 + clen + i], 0);
		got += clen;
		off += 8 + clen + plen;
	}
	assert_int_equal(off, n);
	assert_int_equal(got, len);
	assert_int_equal(nrec, want_records);
	free(in);
	free(out);
}

static void
test_frame_sizes(void **state)
{
	uint8_t out[24];
	const uint8_t empty[8] = { 1, 5, 0, 9, 0, 0, 0, 0 };
	const uint8_t one[16] = { 1, 6, 0, 9, 0, 1, 7, 0, 'x', 0, 0, 0, 0, 0,
	    0, 0 };

	(void)state;
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(gw_fcgi_frame(out, GW_FCGI_STDIN, 9, NULL, 0), 8);
	assert_memory_equal(out, empty, 8);
	assert_int_equal(gw_fcgi_frame_len(0), 8);

	memset(out, 0xaa, sizeof(out));
	assert_int_equal(gw_fcgi_frame(out, GW_FCGI_STDOUT, 9, "x", 1), 16);
	assert_memory_equal(out, one, 16);

	check_frame(0, 8, 1);
	check_frame(1, 16, 1);
	check_frame(8, 16, 1);
	/* 65535 = 7 mod 8: one byte of padding */
	check_frame(65535, 8 + 65535 + 1, 1);
	/* 65536: a full record then one byte padded by 7 */
	check_frame(65536, 65544 + 8 + 1 + 7, 2);
	/* 200000 = 3 * 65535 + 3395; 3395 = 3 mod 8: padding 5 */
	check_frame(200000, 3 * 65544 + 8 + 3395 + 5, 4);
}

/* ---- name-value decoding ---- */

static void
test_nv_round_trip(void **state)
{
	static const size_t lens[][2] = {
		{ 0, 0 }, { 1, 0 }, { 11, 5 }, { 127, 127 }, { 127, 128 },
		{ 128, 127 }, { 200, 1000 },
	};
	uint8_t src[1001], buf[4096];
	const uint8_t *name, *value;
	size_t i, off = 0, total = 0, nlen, vlen;

	(void)state;
	for (i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i ^ 0x5a);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		total += gw_fcgi_nv_encode(buf + total, src, lens[i][0],
		    src + 1, lens[i][1]);

	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		assert_int_equal(gw_fcgi_nv_decode(buf, total, &off, &name,
		    &nlen, &value, &vlen), 0);
		assert_int_equal(nlen, lens[i][0]);
		assert_int_equal(vlen, lens[i][1]);
		assert_memory_equal(name, src, nlen);
		assert_memory_equal(value, src + 1, vlen);
	}
	assert_int_equal(off, total);
	/* at the end: nothing more, offset untouched */
	assert_int_equal(gw_fcgi_nv_decode(buf, total, &off, &name, &nlen,
	    &value, &vlen), -1);
	assert_int_equal(off, total);
}

static void
test_nv_decode_truncated(void **state)
{
	uint8_t buf[512], v[200];
	const uint8_t *name, *value;
	size_t n, cut, off, nlen, vlen;
	const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff, 0x01, 'a' };
	const uint8_t noncanon[] = { 0x80, 0, 0, 2, 1, 'a', 'b', 'c' };

	(void)state;
	memset(v, 'v', sizeof(v));
	n = gw_fcgi_nv_encode(buf, "NAME", 4, v, sizeof(v));
	assert_int_equal(n, 1 + 4 + 4 + 200);
	for (cut = 0; cut < n; cut++) {
		off = 0;
		assert_int_equal(gw_fcgi_nv_decode(buf, cut, &off, &name,
		    &nlen, &value, &vlen), -1);
		assert_int_equal(off, 0);
	}
	off = 0;
	assert_int_equal(gw_fcgi_nv_decode(buf, n, &off, &name, &nlen, &value,
	    &vlen), 0);
	assert_int_equal(off, n);

	/* a length of 2^31-1 claims far more than is there */
	off = 0;
	assert_int_equal(gw_fcgi_nv_decode(huge, sizeof(huge), &off, &name,
	    &nlen, &value, &vlen), -1);
	assert_int_equal(off, 0);

	/* an offset past the end */
	off = n + 1;
	assert_int_equal(gw_fcgi_nv_decode(buf, n, &off, &name, &nlen, &value,
	    &vlen), -1);
	assert_int_equal(off, n + 1);

	/* a 4-byte encoding of a short length is legal */
	off = 0;
	assert_int_equal(gw_fcgi_nv_decode(noncanon, sizeof(noncanon), &off,
	    &name, &nlen, &value, &vlen), 0);
	assert_int_equal(nlen, 2);
	assert_int_equal(vlen, 1);
	assert_memory_equal(name, "ab", 2);
	assert_memory_equal(value, "c", 1);
	assert_int_equal(off, sizeof(noncanon));
}

/* ---- the record stream ---- */

static const char app_head[] =
    "Status: 200 OK\r\nContent-Type: text/html\r\n\r\n";
static const char app_body[] = "<html><body>hello</body></html>\n";
static const char app_warn[] = "PHP Notice: undefined index";

/* STDOUT head, STDERR, STDOUT body, empty STDERR, empty STDOUT, END. */
static size_t
app_response(uint8_t *buf)
{
	size_t n = 0;

	n += rec(buf + n, GW_FCGI_STDOUT, ID, app_head, strlen(app_head), 5);
	n += rec(buf + n, GW_FCGI_STDERR, ID, app_warn, strlen(app_warn), 0);
	n += rec(buf + n, GW_FCGI_STDOUT, ID, app_body, strlen(app_body), 0);
	n += rec(buf + n, GW_FCGI_STDERR, ID, NULL, 0, 0);
	n += rec(buf + n, GW_FCGI_STDOUT, ID, NULL, 0, 0);
	n += end_rec(buf + n, ID, 0, GW_FCGI_REQUEST_COMPLETE, 0);
	return n;
}

static void
check_app_run(const struct run *r, size_t total)
{
	char want[256];
	const enum gw_fcgi_ev seq[] = {
		GW_FCGI_EV_STDOUT, GW_FCGI_EV_STDERR, GW_FCGI_EV_STDOUT,
		GW_FCGI_EV_END
	};

	snprintf(want, sizeof(want), "%s%s", app_head, app_body);
	assert_int_equal(r->outlen, strlen(want));
	assert_memory_equal(r->out, want, r->outlen);
	assert_int_equal(r->errlen, strlen(app_warn));
	assert_memory_equal(r->err, app_warn, r->errlen);
	assert_int_equal(r->nseq, 4);
	assert_memory_equal(r->seq, seq, sizeof(seq));
	assert_int_equal(r->last, GW_FCGI_EV_END);
	assert_int_equal(r->app_status, 0);
	assert_int_equal(r->protocol_status, GW_FCGI_REQUEST_COMPLETE);
	assert_null(r->error);
	assert_int_equal(r->consumed, total);
}

static void
test_stream_whole(void **state)
{
	uint8_t buf[512];
	struct run r;
	size_t n;

	(void)state;
	n = app_response(buf);
	run_parse(buf, n, n, ID, &r);
	check_app_run(&r, n);
}

static void
test_stream_bytewise(void **state)
{
	uint8_t buf[512];
	struct run whole, bytes, sevens;
	size_t n;

	(void)state;
	n = app_response(buf);
	run_parse(buf, n, n, ID, &whole);
	run_parse(buf, n, 1, ID, &bytes);
	run_parse(buf, n, 7, ID, &sevens);
	check_app_run(&bytes, n);
	check_app_run(&sevens, n);
	assert_memory_equal(whole.seq, bytes.seq, sizeof(whole.seq));
	assert_memory_equal(whole.out, bytes.out, whole.outlen);
}

static void
test_stream_stderr(void **state)
{
	uint8_t buf[128];
	struct gw_fcgi_parser p;
	struct gw_fcgi_event ev;
	size_t n, used;

	(void)state;
	n = rec(buf, GW_FCGI_STDERR, ID, "oops", 4, 4);
	gw_fcgi_parser_init(&p);
	used = gw_fcgi_parse(&p, ID, buf, n, &ev);
	assert_int_equal(ev.type, GW_FCGI_EV_STDERR);
	assert_int_equal(ev.len, 4);
	assert_ptr_equal(ev.data, buf + 8);
	assert_int_equal(used, 12);
	/* the padding is then consumed quietly */
	used += gw_fcgi_parse(&p, ID, buf + used, n - used, &ev);
	assert_int_equal(ev.type, GW_FCGI_EV_NONE);
	assert_int_equal(used, n);
}

static void
test_stream_end_status(void **state)
{
	uint8_t buf[64];
	struct gw_fcgi_parser p;
	struct gw_fcgi_event ev;
	size_t n, used;

	(void)state;
	n = end_rec(buf, ID, 0x01020304, GW_FCGI_UNKNOWN_ROLE, 3);
	gw_fcgi_parser_init(&p);
	/* END is held back until its padding is in */
	used = gw_fcgi_parse(&p, ID, buf, n - 1, &ev);
	assert_int_equal(ev.type, GW_FCGI_EV_NONE);
	assert_int_equal(used, n - 1);
	used = gw_fcgi_parse(&p, ID, buf + n - 1, 1, &ev);
	assert_int_equal(ev.type, GW_FCGI_EV_END);
	assert_int_equal(used, 1);
	assert_int_equal(ev.app_status, 0x01020304);
	assert_int_equal(ev.protocol_status, GW_FCGI_UNKNOWN_ROLE);

	/* bytes after END are not taken; the parser must be re-inited */
	n = end_rec(buf, ID, 0xffffffff, GW_FCGI_OVERLOADED, 0);
	memcpy(buf + n, "junk", 4);
	gw_fcgi_parser_init(&p);
	used = gw_fcgi_parse(&p, ID, buf, n + 4, &ev);
	assert_int_equal(ev.type, GW_FCGI_EV_END);
	assert_int_equal(used, n);
	assert_int_equal(ev.app_status, 0xffffffff);
	assert_int_equal(ev.protocol_status, GW_FCGI_OVERLOADED);
	used = gw_fcgi_parse(&p, ID, buf + n, 4, &ev);
	assert_int_equal(ev.type, GW_FCGI_EV_ERROR);
	assert_int_equal(used, 0);
}

static void
test_stream_wrong_id(void **state)
{
	uint8_t buf[64];
	struct run r;
	size_t n;

	(void)state;
	n = rec(buf, GW_FCGI_STDOUT, ID + 1, "x", 1, 7);
	run_parse(buf, n, n, ID, &r);
	assert_int_equal(r.last, GW_FCGI_EV_ERROR);
	assert_int_equal(r.outlen, 0);
	assert_non_null(strstr(r.error, "request id"));

	n = end_rec(buf, 0, 0, 0, 0);
	run_parse(buf, n, n, ID, &r);
	assert_int_equal(r.last, GW_FCGI_EV_ERROR);
}

static void
test_stream_bad_version(void **state)
{
	uint8_t buf[64];
	struct run r;
	size_t n;

	(void)state;
	n = rec(buf, GW_FCGI_STDOUT, ID, "hello", 5, 3);
	buf[0] = 2;
	run_parse(buf, n, 1, ID, &r);
	assert_int_equal(r.last, GW_FCGI_EV_ERROR);
	assert_int_equal(r.outlen, 0);
	assert_non_null(strstr(r.error, "version"));
	/* the error is reported once the header is complete */
	assert_int_equal(r.consumed, 8);

	buf[0] = 0;
	run_parse(buf, n, n, ID, &r);
	assert_int_equal(r.last, GW_FCGI_EV_ERROR);
}

static void
test_stream_end_size(void **state)
{
	uint8_t buf[64], body[9] = { 0 };
	struct run r;
	size_t n;

	(void)state;
	n = rec(buf, GW_FCGI_END_REQUEST, ID, body, 7, 1);
	run_parse(buf, n, n, ID, &r);
	assert_int_equal(r.last, GW_FCGI_EV_ERROR);
	assert_non_null(strstr(r.error, "END_REQUEST"));

	n = rec(buf, GW_FCGI_END_REQUEST, ID, body, 9, 7);
	run_parse(buf, n, n, ID, &r);
	assert_int_equal(r.last, GW_FCGI_EV_ERROR);

	n = rec(buf, GW_FCGI_END_REQUEST, ID, NULL, 0, 0);
	run_parse(buf, n, n, ID, &r);
	assert_int_equal(r.last, GW_FCGI_EV_ERROR);
}

static void
test_stream_padding(void **state)
{
	uint8_t buf[1024];
	struct run r1, r2;
	size_t n = 0;

	(void)state;
	/* maximal padding made of bytes that would look like a header */
	n += rec(buf + n, GW_FCGI_STDOUT, ID, "abc", 3, 255);
	memset(buf + 11, 1, 255);
	n += rec(buf + n, GW_FCGI_STDOUT, ID, "def", 3, 0);
	n += rec(buf + n, GW_FCGI_STDOUT, ID, NULL, 0, 8);
	n += end_rec(buf + n, ID, 7, 0, 8);
	run_parse(buf, n, n, ID, &r1);
	run_parse(buf, n, 1, ID, &r2);
	assert_int_equal(r1.last, GW_FCGI_EV_END);
	assert_int_equal(r1.outlen, 6);
	assert_memory_equal(r1.out, "abcdef", 6);
	assert_int_equal(r1.app_status, 7);
	assert_int_equal(r1.consumed, n);
	assert_int_equal(r2.last, GW_FCGI_EV_END);
	assert_int_equal(r2.outlen, 6);
	assert_memory_equal(r2.out, "abcdef", 6);
	assert_int_equal(r2.consumed, n);
}

static void
test_stream_skipped_records(void **state)
{
	uint8_t buf[256];
	struct run r;
	size_t n = 0, m;

	(void)state;
	/* management answers (id 0) and empty stream records are skipped */
	n += rec(buf + n, GW_FCGI_UNKNOWN_TYPE, 0, "\x63\0\0\0\0\0\0\0", 8, 0);
	n += rec(buf + n, GW_FCGI_GET_VALUES_RESULT, 0, "\x01\x01Xy", 4, 4);
	n += rec(buf + n, GW_FCGI_STDOUT, ID, NULL, 0, 0);
	n += rec(buf + n, GW_FCGI_STDERR, ID, NULL, 0, 0);
	n += rec(buf + n, GW_FCGI_STDOUT, ID, "z", 1, 7);
	n += end_rec(buf + n, ID, 0, 0, 0);
	run_parse(buf, n, n, ID, &r);
	assert_int_equal(r.last, GW_FCGI_EV_END);
	assert_int_equal(r.nseq, 2);
	assert_int_equal(r.seq[0], GW_FCGI_EV_STDOUT);
	assert_int_equal(r.outlen, 1);
	assert_int_equal(r.errlen, 0);

	/* a management answer carrying a request id is not one */
	m = rec(buf, GW_FCGI_UNKNOWN_TYPE, ID, "\x63\0\0\0\0\0\0\0", 8, 0);
	run_parse(buf, m, m, ID, &r);
	assert_int_equal(r.last, GW_FCGI_EV_ERROR);

	/* record types only the web server sends, and unknown types */
	m = rec(buf, GW_FCGI_PARAMS, ID, NULL, 0, 0);
	run_parse(buf, m, m, ID, &r);
	assert_int_equal(r.last, GW_FCGI_EV_ERROR);
	m = rec(buf, GW_FCGI_BEGIN_REQUEST, ID, "\0\1\0\0\0\0\0\0", 8, 0);
	run_parse(buf, m, m, ID, &r);
	assert_int_equal(r.last, GW_FCGI_EV_ERROR);
	m = rec(buf, 12, ID, NULL, 0, 0);
	run_parse(buf, m, m, ID, &r);
	assert_int_equal(r.last, GW_FCGI_EV_ERROR);
}

static void
test_stream_partial_and_dead(void **state)
{
	uint8_t buf[64];
	struct gw_fcgi_parser p;
	struct gw_fcgi_event ev;
	size_t n;

	(void)state;
	n = rec(buf, GW_FCGI_STDOUT, ID, "hello", 5, 3);
	gw_fcgi_parser_init(&p);
	assert_int_equal(gw_fcgi_parse(&p, ID, buf, 0, &ev), 0);
	assert_int_equal(ev.type, GW_FCGI_EV_NONE);
	assert_int_equal(gw_fcgi_parse(&p, ID, buf, 5, &ev), 5);
	assert_int_equal(ev.type, GW_FCGI_EV_NONE);
	/* the rest of the header, then 2 content bytes as one piece */
	assert_int_equal(gw_fcgi_parse(&p, ID, buf + 5, 5, &ev), 5);
	assert_int_equal(ev.type, GW_FCGI_EV_STDOUT);
	assert_int_equal(ev.len, 2);
	assert_memory_equal(ev.data, "he", 2);
	assert_int_equal(gw_fcgi_parse(&p, ID, buf + 10, n - 10, &ev), 3);
	assert_int_equal(ev.type, GW_FCGI_EV_STDOUT);
	assert_memory_equal(ev.data, "llo", 3);

	/* after an error the stream stays dead until re-init */
	buf[0] = 9;
	gw_fcgi_parser_init(&p);
	assert_int_equal(gw_fcgi_parse(&p, ID, buf, n, &ev), 8);
	assert_int_equal(ev.type, GW_FCGI_EV_ERROR);
	buf[0] = 1;
	assert_int_equal(gw_fcgi_parse(&p, ID, buf, n, &ev), 0);
	assert_int_equal(ev.type, GW_FCGI_EV_ERROR);
	gw_fcgi_parser_init(&p);
	assert_int_equal(gw_fcgi_parse(&p, ID, buf, n, &ev), 13);
	assert_int_equal(ev.type, GW_FCGI_EV_STDOUT);

	/* a zeroed parser works like an inited one */
	memset(&p, 0, sizeof(p));
	assert_int_equal(gw_fcgi_parse(&p, ID, buf, n, &ev), 13);
	assert_int_equal(ev.type, GW_FCGI_EV_STDOUT);
	assert_int_equal(ev.len, 5);
}

static void
test_ev_names(void **state)
{
	(void)state;
	assert_string_equal(gw_fcgi_ev_names[GW_FCGI_EV_NONE], "NONE");
	assert_string_equal(gw_fcgi_ev_names[GW_FCGI_EV_STDOUT], "STDOUT");
	assert_string_equal(gw_fcgi_ev_names[GW_FCGI_EV_STDERR], "STDERR");
	assert_string_equal(gw_fcgi_ev_names[GW_FCGI_EV_END], "END");
	assert_string_equal(gw_fcgi_ev_names[GW_FCGI_EV_ERROR], "ERROR");
}

/* ---- the CGI header ---- */

static struct gw_cgi_response cr;

static int
cgi(const char *s)
{
	return gw_cgi_parse(s, strlen(s), &cr);
}

static void
assert_span(struct gw_span s, const char *want)
{
	assert_non_null(s.p);
	assert_int_equal(s.len, strlen(want));
	assert_memory_equal(s.p, want, s.len);
}

static void
test_cgi_complete(void **state)
{
	const char *s = "Content-Type: text/html\r\nX-A:b\r\n\r\n<p>hi</p>\n";

	(void)state;
	assert_int_equal(cgi(s), 1);
	assert_int_equal(cr.status, 200);
	assert_int_equal(cr.reason.len, 0);
	assert_non_null(cr.reason.p);
	assert_int_equal(cr.nheaders, 2);
	assert_span(cr.headers[0].name, "Content-Type");
	assert_span(cr.headers[0].value, "text/html");
	assert_span(cr.headers[1].name, "X-A");
	assert_span(cr.headers[1].value, "b");
	assert_int_equal(cr.content_length, -1);
	assert_int_equal(cr.head_len, strlen(s) - strlen("<p>hi</p>\n"));
	/* spans point into the buffer */
	assert_ptr_equal(cr.headers[0].name.p, s);

	/* a block that is only the blank line */
	assert_int_equal(cgi("\r\nbody"), 1);
	assert_int_equal(cr.head_len, 2);
	assert_int_equal(cr.nheaders, 0);
	assert_int_equal(cr.status, 200);
}

static void
test_cgi_incomplete(void **state)
{
	static const char *const cases[] = {
		"",
		"Content-Type",
		"Content-Type: text/html",
		"Content-Type: text/html\r",
		"Content-Type: text/html\r\n",
		"Content-Type: text/html\r\n\r",
		"Content-Type: text/html\nStatus: 404\n",
		"\r",
	};
	const char *full = "Content-Type: text/html\r\nStatus: 404 Gone\r\n\r\n";
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(cgi(cases[i]), 0);
	}
	/* every strict prefix of a good block needs more */
	for (i = 0; i < strlen(full); i++)
		assert_int_equal(gw_cgi_parse(full, i, &cr), 0);
	assert_int_equal(gw_cgi_parse(full, strlen(full), &cr), 1);
	assert_int_equal(cr.status, 404);
	assert_int_equal(gw_cgi_parse(NULL, 0, &cr), 0);
}

static void
test_cgi_malformed(void **state)
{
	static const char *const cases[] = {
		"Bad Name: x\r\n\r\n",		/* space in the name */
		"Bad\tName: x\r\n\r\n",
		"Name : x\r\n\r\n",		/* blank before the colon */
		": x\r\n\r\n",			/* empty name */
		"NoColon\r\n\r\n",
		"A(b): x\r\n\r\n",		/* '(' is not a tchar */
		"A\x80: x\r\n\r\n",
		" Folded: x\r\n\r\n",		/* obs-fold */
		"A: ok\r\n continued\r\n\r\n",
		"A: b\rc\r\n\r\n",		/* bare CR in a value */
		"A: b\r\r\n\r\n",
		"A: b\r\n\r\r\n",		/* bare CR as the blank line */
		"A: b\x01\r\n\r\n",
		"A: b\x7f\r\n\r\n",
		"A: \x1b[31m\r\n\r\n",
		"Status: 99\r\n\r\n",
		"Status: 600\r\n\r\n",
		"Status: 099 x\r\n\r\n",
		"Status: abc\r\n\r\n",
		"Status: 20\r\n\r\n",
		"Status: 2000\r\n\r\n",
		"Status: 200OK\r\n\r\n",
		"Status: \r\n\r\n",
		"Status: 200\r\nStatus: 200\r\n\r\n",
		"Content-Length: -1\r\n\r\n",
		"Content-Length: +1\r\n\r\n",
		"Content-Length: 1a\r\n\r\n",
		"Content-Length: 1 2\r\n\r\n",
		"Content-Length: \r\n\r\n",
		"Content-Length: 0x10\r\n\r\n",
		"Content-Length: 9223372036854775808\r\n\r\n",
		"Content-Length: 99999999999999999999999\r\n\r\n",
		"Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
		"Location: /a\r\nLocation: /b\r\n\r\n",
		/* malformed before the block is complete: no need to wait */
		"NoColon\r\n",
	};
	static const char nul[] = "A: b\0c\r\n\r\n";
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cgi(cases[i]) != -1)
			fail_msg("case %zu accepted: %s", i, cases[i]);
	}
	assert_int_equal(gw_cgi_parse(nul, sizeof(nul) - 1, &cr), -1);
}

static void
test_cgi_status(void **state)
{
	(void)state;
	assert_int_equal(cgi("Status: 404 Not Found\r\nContent-Type: x/y\r\n"
	    "\r\n"), 1);
	assert_int_equal(cr.status, 404);
	assert_span(cr.reason, "Not Found");
	/* Status is not passed on as a header */
	assert_int_equal(cr.nheaders, 1);
	assert_span(cr.headers[0].name, "Content-Type");

	assert_int_equal(cgi("Status: 204\r\n\r\n"), 1);
	assert_int_equal(cr.status, 204);
	assert_int_equal(cr.reason.len, 0);
	assert_non_null(cr.reason.p);

	assert_int_equal(cgi("status:\t503 \t Slow  Down \t\r\n\r\n"), 1);
	assert_int_equal(cr.status, 503);
	assert_span(cr.reason, "Slow  Down");

	assert_int_equal(cgi("STATUS: 100\r\n\r\n"), 1);
	assert_int_equal(cr.status, 100);
	assert_int_equal(cgi("Status: 599 x\r\n\r\n"), 1);
	assert_int_equal(cr.status, 599);
	/* a header merely starting with "Status" is an ordinary one */
	assert_int_equal(cgi("Status-X: abc\r\n\r\n"), 1);
	assert_int_equal(cr.status, 200);
	assert_int_equal(cr.nheaders, 1);
}

static void
test_cgi_location(void **state)
{
	(void)state;
	assert_int_equal(cgi("Location: https://example.org/x?y=1\r\n\r\n"), 1);
	assert_int_equal(cr.status, 302);
	assert_int_equal(cr.nheaders, 1);
	assert_span(cr.headers[0].value, "https://example.org/x?y=1");

	/* a local redirect is answered with 302 as well */
	assert_int_equal(cgi("location: /other/place\r\n\r\n"), 1);
	assert_int_equal(cr.status, 302);

	/* an explicit Status wins */
	assert_int_equal(cgi("Location: http://a/\r\nStatus: 301 Moved\r\n\r\n"),
	    1);
	assert_int_equal(cr.status, 301);
	assert_span(cr.reason, "Moved");
	assert_int_equal(cgi("Status: 200\r\nLocation: /x\r\n\r\n"), 1);
	assert_int_equal(cr.status, 200);

	/* neither absolute nor local: no redirect */
	assert_int_equal(cgi("Location: relative/path\r\n\r\n"), 1);
	assert_int_equal(cr.status, 200);
	assert_int_equal(cgi("Location: 1http://x\r\n\r\n"), 1);
	assert_int_equal(cr.status, 200);
	assert_int_equal(cgi("Location:\r\n\r\n"), 1);
	assert_int_equal(cr.status, 200);
	assert_int_equal(cgi("Location: z39.50r:x\r\n\r\n"), 1);
	assert_int_equal(cr.status, 302);
}

static void
test_cgi_content_length(void **state)
{
	(void)state;
	assert_int_equal(cgi("Content-Length: 42\r\n\r\n"), 1);
	assert_int_equal(cr.content_length, 42);
	/* kept among the headers */
	assert_int_equal(cr.nheaders, 1);

	assert_int_equal(cgi("content-length: 0\r\n\r\n"), 1);
	assert_int_equal(cr.content_length, 0);

	assert_int_equal(cgi("Content-Length: 7\r\nCONTENT-LENGTH: 007\r\n\r\n"),
	    1);
	assert_int_equal(cr.content_length, 7);
	assert_int_equal(cr.nheaders, 2);

	assert_int_equal(cgi("Content-Length: 9223372036854775807\r\n\r\n"), 1);
	assert_int_equal(cr.content_length, INT64_MAX);
}

static void
test_cgi_lf_only(void **state)
{
	const char *s = "Status: 201 Created\nX-One: 1\r\nX-Two:2\n\nbody\r\n";

	(void)state;
	assert_int_equal(cgi(s), 1);
	assert_int_equal(cr.status, 201);
	assert_span(cr.reason, "Created");
	assert_int_equal(cr.nheaders, 2);
	assert_span(cr.headers[1].value, "2");
	assert_int_equal(cr.head_len, strlen(s) - strlen("body\r\n"));

	/* LF-only blank line ends a CRLF block too */
	assert_int_equal(cgi("A: b\r\n\nrest"), 1);
	assert_int_equal(cr.head_len, 7);
}

static void
test_cgi_values(void **state)
{
	static const char obs[] = "X: caf\xc3\xa9\r\n\r\n";

	(void)state;
	assert_int_equal(cgi("X:   a \t b \t \r\nY:\r\nZ: \t\r\n\r\n"), 1);
	assert_int_equal(cr.nheaders, 3);
	assert_span(cr.headers[0].value, "a \t b");
	assert_int_equal(cr.headers[1].value.len, 0);
	assert_int_equal(cr.headers[2].value.len, 0);
	/* obs-text is allowed in values */
	assert_int_equal(cgi(obs), 1);
	assert_int_equal(cr.headers[0].value.len, 5);
	/* all tchars in a name */
	assert_int_equal(cgi("!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n"), 1);
	assert_int_equal(cr.headers[0].name.len, 21);
}

static void
test_cgi_header_limit(void **state)
{
	char *buf;
	size_t i, n = 0, cap = 4096;

	(void)state;
	buf = malloc(cap);
	assert_non_null(buf);

	for (i = 0; i < GW_CGI_MAX_HEADERS; i++)
		n += (size_t)snprintf(buf + n, cap - n, "X-%zu: v\r\n", i);
	memcpy(buf + n, "\r\n", 2);
	assert_int_equal(gw_cgi_parse(buf, n + 2, &cr), 1);
	assert_int_equal(cr.nheaders, GW_CGI_MAX_HEADERS);
	assert_span(cr.headers[99].name, "X-99");

	/* Status does not take a slot */
	n += (size_t)snprintf(buf + n, cap - n, "Status: 500\r\n");
	memcpy(buf + n, "\r\n", 2);
	assert_int_equal(gw_cgi_parse(buf, n + 2, &cr), 1);
	assert_int_equal(cr.status, 500);

	n += (size_t)snprintf(buf + n, cap - n, "X-100: v\r\n");
	memcpy(buf + n, "\r\n", 2);
	assert_int_equal(gw_cgi_parse(buf, n + 2, &cr), -1);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_begin_request),
		cmocka_unit_test(test_nv_encode_short),
		cmocka_unit_test(test_nv_encode_boundary),
		cmocka_unit_test(test_frame_sizes),
		cmocka_unit_test(test_nv_round_trip),
		cmocka_unit_test(test_nv_decode_truncated),
		cmocka_unit_test(test_stream_whole),
		cmocka_unit_test(test_stream_bytewise),
		cmocka_unit_test(test_stream_stderr),
		cmocka_unit_test(test_stream_end_status),
		cmocka_unit_test(test_stream_wrong_id),
		cmocka_unit_test(test_stream_bad_version),
		cmocka_unit_test(test_stream_end_size),
		cmocka_unit_test(test_stream_padding),
		cmocka_unit_test(test_stream_skipped_records),
		cmocka_unit_test(test_stream_partial_and_dead),
		cmocka_unit_test(test_ev_names),
		cmocka_unit_test(test_cgi_complete),
		cmocka_unit_test(test_cgi_incomplete),
		cmocka_unit_test(test_cgi_malformed),
		cmocka_unit_test(test_cgi_status),
		cmocka_unit_test(test_cgi_location),
		cmocka_unit_test(test_cgi_content_length),
		cmocka_unit_test(test_cgi_lf_only),
		cmocka_unit_test(test_cgi_values),
		cmocka_unit_test(test_cgi_header_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
