/*
 * test_proxy_proto.c: cmocka tests for gateway/proxy_proto.c: byte-exact
 * version 1 and version 2 headers (TCP4, TCP6, UNKNOWN/UNSPEC, LOCAL,
 * TLVs, CRC32C good and bad), every truncation, oversized and malformed
 * headers, and the trusted-source networks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "gateway/proxy_proto.h"

#define SIG "\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"

/* ---- helpers ---- */

static enum gw_pp_status
parse(const void *buf, size_t n, struct gw_pp_header *h, enum gw_pp_err *err)
{
	return gw_pp_parse(buf, n, h, err);
}

/* Every proper prefix of a complete header asks for more. */
static void
assert_prefixes_want_more(const uint8_t *buf, size_t len)
{
	struct gw_pp_header h;
	enum gw_pp_err err;
	size_t i;

	for (i = 0; i < len; i++) {
		assert_int_equal(parse(buf, i, &h, &err), GW_PP_MORE);
		assert_int_equal(err, GW_PP_E_NONE);
	}
}

static void
assert_addr(const struct sockaddr_storage *ss, int af, const char *addr, int port)
{
	char got[64];

	assert_int_equal(ss->ss_family, af);
	if (af == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &in->sin_addr, got, sizeof(got));
		assert_int_equal(ntohs(in->sin_port), port);
	} else {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, got, sizeof(got));
		assert_int_equal(ntohs(in6->sin6_port), port);
	}
	assert_string_equal(got, addr);
}

static void
assert_error(const void *buf, size_t n, enum gw_pp_err want)
{
	struct gw_pp_header h;
	enum gw_pp_err err;

	assert_int_equal(parse(buf, n, &h, &err), GW_PP_ERROR);
	assert_int_equal(err, want);
}

#define ERR_STR(s, want) assert_error(s, sizeof(s) - 1, want)

/* ---- version 1 ---- */

static void
test_v1_tcp4(void **state)
{
	static const char hdr[] = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
	char buf[128];
	struct gw_pp_header h;
	enum gw_pp_err err;

	/* The TLS bytes that follow are not the header's. */
	snprintf(buf, sizeof(buf), "%s\x16\x03\x01", hdr);
	assert_int_equal(parse(buf, strlen(buf), &h, &err), GW_PP_DONE);
	assert_int_equal(h.len, sizeof(hdr) - 1);
	assert_int_equal(h.len, 45);
	assert_int_equal(h.version, 1);
	assert_int_equal(h.command, GW_PP_PROXY);
	assert_int_equal(h.family, AF_INET);
	assert_addr(&h.src, AF_INET, "192.0.2.1", 56324);
	assert_addr(&h.dst, AF_INET, "198.51.100.2", 443);
	assert_prefixes_want_more((const uint8_t *)hdr, sizeof(hdr) - 1);
}

static void
test_v1_tcp6(void **state)
{
	static const char hdr[] = "PROXY TCP6 2001:db8::1 2001:db8::2:3 65535 0\r\n";
	struct gw_pp_header h;
	enum gw_pp_err err;

	assert_int_equal(parse(hdr, sizeof(hdr) - 1, &h, &err), GW_PP_DONE);
	assert_int_equal(h.len, sizeof(hdr) - 1);
	assert_int_equal(h.family, AF_INET6);
	assert_addr(&h.src, AF_INET6, "2001:db8::1", 65535);
	assert_addr(&h.dst, AF_INET6, "2001:db8::2:3", 0);
	assert_prefixes_want_more((const uint8_t *)hdr, sizeof(hdr) - 1);
}

static void
test_v1_unknown(void **state)
{
	static const char *const ok[] = {
		"PROXY UNKNOWN\r\n",
		"PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n",
	};
	struct gw_pp_header h;
	enum gw_pp_err err;
	size_t i;

	for (i = 0; i < 2; i++) {
		assert_int_equal(parse(ok[i], strlen(ok[i]), &h, &err), GW_PP_DONE);
		assert_int_equal(h.len, strlen(ok[i]));
		assert_int_equal(h.command, GW_PP_PROXY);
		assert_int_equal(h.family, AF_UNSPEC);
	}
	ERR_STR("PROXY UNKNOWNX\r\n", GW_PP_E_V1_SYNTAX);
}

static void
test_v1_malformed(void **state)
{
	ERR_STR("PROXY TCP4 192.0.2.1  198.51.100.2 1 2\r\n", GW_PP_E_V1_SYNTAX);
	ERR_STR("PROXY TCP4 192.0.2.1 198.51.100.2 1 2 \r\n", GW_PP_E_V1_SYNTAX);
	ERR_STR("PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n", GW_PP_E_V1_SYNTAX);
	ERR_STR("PROXY TCP4 192.0.2.1 198.51.100.2 1 2 3\r\n", GW_PP_E_V1_SYNTAX);
	ERR_STR("PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n", GW_PP_E_V1_SYNTAX);
	ERR_STR("PROXY \r\n", GW_PP_E_V1_SYNTAX);
	ERR_STR("PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n", GW_PP_E_V1_SYNTAX);
	ERR_STR("PROXY TCP4 192.0.2.1 198.51.100.2 1 2\rX", GW_PP_E_V1_SYNTAX);
	ERR_STR("PROXY TCP4 192.0.2.1\t198.51.100.2 1 2\r\n", GW_PP_E_V1_SYNTAX);
	/* The family and the addresses must agree; ports are plain decimal. */
	ERR_STR("PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n", GW_PP_E_V1_ADDRESS);
	ERR_STR("PROXY TCP6 192.0.2.1 2001:db8::1 1 2\r\n", GW_PP_E_V1_ADDRESS);
	ERR_STR("PROXY TCP4 192.0.2.256 198.51.100.2 1 2\r\n", GW_PP_E_V1_ADDRESS);
	ERR_STR("PROXY TCP4 192.0.2.1 198.51.100.2 65536 2\r\n", GW_PP_E_V1_ADDRESS);
	ERR_STR("PROXY TCP4 192.0.2.1 198.51.100.2 080 2\r\n", GW_PP_E_V1_ADDRESS);
	ERR_STR("PROXY TCP4 192.0.2.1 198.51.100.2 +80 2\r\n", GW_PP_E_V1_ADDRESS);
	ERR_STR("PROXY TCP4 192.0.2.1 198.51.100.2 123456 2\r\n", GW_PP_E_V1_ADDRESS);
	ERR_STR("proxy TCP4 192.0.2.1 198.51.100.2 1 2\r\n", GW_PP_E_SIGNATURE);
}

static void
test_v1_length_bound(void **state)
{
	char buf[200];
	struct gw_pp_header h;
	enum gw_pp_err err;

	/* 107 bytes with the CRLF: the longest line there may be. */
	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "PROXY UNKNOWN ", 14);
	memcpy(buf + 105, "\r\n", 2);
	assert_int_equal(parse(buf, 107, &h, &err), GW_PP_DONE);
	assert_int_equal(h.len, GW_PP_V1_MAX);
	/* One byte more is refused, with or without its CRLF in sight. */
	memset(buf + 105, 'x', 2);
	memcpy(buf + 106, "\r\n", 2);
	assert_error(buf, 108, GW_PP_E_V1_TOO_LONG);
	assert_error(buf, 107, GW_PP_E_V1_TOO_LONG);
	memset(buf + 14, 'x', sizeof(buf) - 14);
	assert_int_equal(parse(buf, 106, &h, &err), GW_PP_MORE);
	assert_error(buf, 107, GW_PP_E_V1_TOO_LONG);
	assert_error(buf, sizeof(buf), GW_PP_E_V1_TOO_LONG);
}

/* ---- version 2 ---- */

static void
test_v2_tcp4(void **state)
{
	static const uint8_t hdr[] = SIG "\x21\x11\x00\x0c"
	    "\xc0\x00\x02\x01" "\xc6\x33\x64\x02" "\xdc\x04" "\x01\xbb"
	    "\x16\x03\x01";
	struct gw_pp_header h;
	enum gw_pp_err err;

	assert_int_equal(parse(hdr, sizeof(hdr) - 1, &h, &err), GW_PP_DONE);
	assert_int_equal(h.len, 28);
	assert_int_equal(h.version, 2);
	assert_int_equal(h.command, GW_PP_PROXY);
	assert_int_equal(h.family, AF_INET);
	assert_int_equal(h.has_crc, 0);
	assert_addr(&h.src, AF_INET, "192.0.2.1", 56324);
	assert_addr(&h.dst, AF_INET, "198.51.100.2", 443);
	assert_prefixes_want_more(hdr, 28);
}

static void
test_v2_tcp6(void **state)
{
	static const uint8_t hdr[] = SIG "\x21\x21\x00\x24"
	    "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
	    "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02"
	    "\x12\x34" "\x20\xfb";
	struct gw_pp_header h;
	enum gw_pp_err err;

	assert_int_equal(parse(hdr, sizeof(hdr) - 1, &h, &err), GW_PP_DONE);
	assert_int_equal(h.len, 52);
	assert_int_equal(h.family, AF_INET6);
	assert_addr(&h.src, AF_INET6, "2001:db8::1", 0x1234);
	assert_addr(&h.dst, AF_INET6, "2001:db8::2", 8443);
	assert_prefixes_want_more(hdr, 52);
}

static void
test_v2_local(void **state)
{
	/* What HAProxy's check-send-proxy health check sends. */
	static const uint8_t local[] = SIG "\x20\x00\x00\x00" "GET";
	/* LOCAL with addresses: they are ignored. */
	static const uint8_t local4[] = SIG "\x20\x11\x00\x0c"
	    "\xc0\x00\x02\x01" "\xc6\x33\x64\x02" "\xdc\x04" "\x01\xbb";
	struct gw_pp_header h;
	enum gw_pp_err err;

	assert_int_equal(parse(local, sizeof(local) - 1, &h, &err), GW_PP_DONE);
	assert_int_equal(h.len, 16);
	assert_int_equal(h.command, GW_PP_LOCAL);
	assert_int_equal(h.family, AF_UNSPEC);
	assert_prefixes_want_more(local, 16);
	assert_int_equal(parse(local4, sizeof(local4) - 1, &h, &err), GW_PP_DONE);
	assert_int_equal(h.len, 28);
	assert_int_equal(h.command, GW_PP_LOCAL);
	assert_int_equal(h.family, AF_UNSPEC);
}

static void
test_v2_unspec_and_unix(void **state)
{
	static const uint8_t unspec[] = SIG "\x21\x00\x00\x00";
	uint8_t unx[16 + 216];
	struct gw_pp_header h;
	enum gw_pp_err err;

	assert_int_equal(parse(unspec, sizeof(unspec) - 1, &h, &err), GW_PP_DONE);
	assert_int_equal(h.command, GW_PP_PROXY);
	assert_int_equal(h.family, AF_UNSPEC);
	memcpy(unx, SIG "\x21\x31\x00\xd8", 16);
	memset(unx + 16, 0, 216);
	memcpy(unx + 16, "/run/client.sock", 16);
	assert_int_equal(parse(unx, sizeof(unx), &h, &err), GW_PP_DONE);
	assert_int_equal(h.len, sizeof(unx));
	assert_int_equal(h.family, AF_UNSPEC);
}

static void
test_v2_tlvs_skipped(void **state)
{
	/* ALPN "h2", AUTHORITY "a.example", NOOP of 0 bytes, then a custom one. */
	static const uint8_t hdr[] = SIG "\x21\x11\x00\x24"
	    "\x0a\x00\x00\x07" "\x0a\x00\x00\x01" "\x30\x39" "\x01\xbb"
	    "\x01\x00\x02" "h2"
	    "\x02\x00\x09" "a.example"
	    "\x04\x00\x00"
	    "\xe0\x00\x01" "\xff"
	    "\x16";
	struct gw_pp_header h;
	enum gw_pp_err err;

	assert_int_equal(sizeof(hdr) - 1, 16 + 0x24 + 1);
	assert_int_equal(parse(hdr, sizeof(hdr) - 1, &h, &err), GW_PP_DONE);
	assert_int_equal(h.len, 16 + 0x24);
	assert_addr(&h.src, AF_INET, "10.0.0.7", 12345);
	assert_addr(&h.dst, AF_INET, "10.0.0.1", 443);
	assert_int_equal(h.has_crc, 0);
	assert_prefixes_want_more(hdr, 16 + 0x24);
}

static void
test_crc32c_vector(void **state)
{
	/* The check value of CRC-32C (RFC 3720, B.4's parameters). */
	assert_int_equal(gw_pp_crc32c((const uint8_t *)"123456789", 9), 0xE3069283u);
	assert_int_equal(gw_pp_crc32c((const uint8_t *)"", 0), 0);
	/* RFC 3720 B.4: 32 bytes of zeros. */
	{
		uint8_t z[32] = { 0 };

		assert_int_equal(gw_pp_crc32c(z, 32), 0x8A9136AAu);
	}
}

/* TCP4 with a CRC32C TLV and a NOOP after it. */
static size_t
crc_header(uint8_t out[64])
{
	static const uint8_t hdr[] = SIG "\x21\x11\x00\x18"
	    "\x0a\x00\x00\x07" "\x0a\x00\x00\x01" "\x30\x39" "\x01\xbb"
	    "\x03\x00\x04" "\x00\x00\x00\x00"
	    "\x04\x00\x02" "\x00\x00";
	uint32_t crc;

	memcpy(out, hdr, sizeof(hdr) - 1);
	crc = gw_pp_crc32c(out, sizeof(hdr) - 1);	/* over the zeroed field */
	out[31] = (uint8_t)(crc >> 24);
	out[32] = (uint8_t)(crc >> 16);
	out[33] = (uint8_t)(crc >> 8);
	out[34] = (uint8_t)crc;
	return sizeof(hdr) - 1;
}

static void
test_v2_crc_good(void **state)
{
	uint8_t buf[64];
	size_t n = crc_header(buf);
	struct gw_pp_header h;
	enum gw_pp_err err;

	assert_int_equal(n, 40);
	assert_int_equal(parse(buf, n, &h, &err), GW_PP_DONE);
	assert_int_equal(h.len, 40);
	assert_int_equal(h.has_crc, 1);
	assert_addr(&h.src, AF_INET, "10.0.0.7", 12345);
	assert_prefixes_want_more(buf, n);
}

static void
test_v2_crc_bad(void **state)
{
	uint8_t buf[64];
	size_t n = crc_header(buf), i;

	/* Any changed bit is caught: in an address, the CRC, a TLV's value.
	 * (The fixed part and the TLV framing fail other checks first.) */
	for (i = 16; i < n; i++) {
		if ((i >= 28 && i <= 30) || i == 36 || i == 37)
			continue;
		buf[i] ^= 0x01;
		assert_error(buf, n, GW_PP_E_CRC);
		buf[i] ^= 0x01;
	}
	assert_int_equal(parse(buf, n, &(struct gw_pp_header){ 0 }, &(enum gw_pp_err){ 0 }),
	    GW_PP_DONE);
	/* A CRC TLV of the wrong size, and two of them. */
	{
		static const uint8_t short_crc[] = SIG "\x21\x00\x00\x06"
		    "\x03\x00\x03" "\x00\x00\x00";
		static const uint8_t two[] = SIG "\x21\x00\x00\x0e"
		    "\x03\x00\x04" "\x00\x00\x00\x00" "\x03\x00\x04" "\x00\x00\x00\x00";

		assert_error(short_crc, sizeof(short_crc) - 1, GW_PP_E_TLV);
		assert_error(two, sizeof(two) - 1, GW_PP_E_TLV);
	}
}

static void
test_v2_tlv_overrun(void **state)
{
	static const uint8_t over[] = SIG "\x21\x11\x00\x10"
	    "\x0a\x00\x00\x07" "\x0a\x00\x00\x01" "\x30\x39" "\x01\xbb"
	    "\x01\x00\x05" "h";
	static const uint8_t stub[] = SIG "\x21\x11\x00\x0e"
	    "\x0a\x00\x00\x07" "\x0a\x00\x00\x01" "\x30\x39" "\x01\xbb"
	    "\x01\x00";

	assert_error(over, sizeof(over) - 1, GW_PP_E_TLV);
	assert_error(stub, sizeof(stub) - 1, GW_PP_E_TLV);
}

static void
test_v2_malformed(void **state)
{
	static const uint8_t v1[] = SIG "\x11\x11\x00\x0c";
	static const uint8_t cmd[] = SIG "\x22\x11\x00\x0c";
	static const uint8_t fam[] = SIG "\x21\x41\x00\x0c";
	static const uint8_t tp[] = SIG "\x21\x13\x00\x0c";
	static const uint8_t dgram[] = SIG "\x21\x12\x00\x0c";
	static const uint8_t short4[] = SIG "\x21\x11\x00\x0b" "\x0a\x00\x00\x07";
	static const uint8_t short6[] = SIG "\x21\x21\x00\x0c";
	static const uint8_t shortu[] = SIG "\x21\x31\x00\xd7";

	/* Refused from the 16 fixed bytes, without waiting for the rest. */
	assert_error(v1, 16, GW_PP_E_VERSION);
	assert_error(cmd, 16, GW_PP_E_COMMAND);
	assert_error(fam, 16, GW_PP_E_FAMILY);
	assert_error(tp, 16, GW_PP_E_FAMILY);
	assert_error(dgram, 16, GW_PP_E_FAMILY);
	assert_error(short4, 16, GW_PP_E_SHORT);
	assert_error(short6, 16, GW_PP_E_SHORT);
	assert_error(shortu, 16, GW_PP_E_SHORT);
	/* Not the signature: a TLS ClientHello, a request, a near miss. */
	ERR_STR("\x16\x03\x01\x02\x00\x01", GW_PP_E_SIGNATURE);
	ERR_STR("GET / HTTP/1.1\r\n", GW_PP_E_SIGNATURE);
	ERR_STR("\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0b", GW_PP_E_SIGNATURE);
	ERR_STR("\x0d\x0a\x0d\x0b", GW_PP_E_SIGNATURE);
}

static void
test_v2_oversized(void **state)
{
	static const uint8_t huge[] = SIG "\x21\x11\xff\xff";
	static uint8_t big[GW_PP_V2_MAX + 1];
	size_t len = GW_PP_V2_MAX - 16;
	struct gw_pp_header h;
	enum gw_pp_err err;

	assert_error(huge, 16, GW_PP_E_TOO_LONG);
	/* The largest accepted: addresses, then one TLV filling the rest. */
	memset(big, 0, sizeof(big));
	memcpy(big, SIG "\x21\x11", 14);
	big[14] = (uint8_t)(len >> 8);
	big[15] = (uint8_t)len;
	big[28] = 0xe1;
	big[29] = (uint8_t)((len - 15) >> 8);
	big[30] = (uint8_t)(len - 15);
	assert_int_equal(parse(big, GW_PP_V2_MAX - 1, &h, &err), GW_PP_MORE);
	assert_int_equal(parse(big, GW_PP_V2_MAX, &h, &err), GW_PP_DONE);
	assert_int_equal(h.len, GW_PP_V2_MAX);
	len++;
	big[14] = (uint8_t)(len >> 8);
	big[15] = (uint8_t)len;
	assert_error(big, 16, GW_PP_E_TOO_LONG);
}

static void
test_err_names(void **state)
{
	size_t i;

	for (i = 0; i < GW_PP_E__MAX; i++)
		assert_non_null(gw_pp_err_names[i]);
}

/* ---- trusted sources ---- */

static struct sockaddr_storage
sa(const char *addr)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	else
		fail();
	return ss;
}

static int
in(const struct gw_cidr *nets, size_t n, const char *addr)
{
	struct sockaddr_storage ss = sa(addr);

	return gw_cidr_match(nets, n, (const struct sockaddr *)&ss);
}

static void
test_cidr(void **state)
{
	static const char *const specs[] = { "10.1.0.0/16", "127.0.0.1", "2001:db8::/32",
		"192.0.2.128/25" };
	struct gw_cidr nets[4], c;
	char err[128];
	size_t i;

	for (i = 0; i < 4; i++)
		assert_int_equal(gw_cidr_parse(specs[i], &nets[i], err, sizeof(err)), 0);
	assert_int_equal(nets[1].bits, 32);
	assert_true(in(nets, 4, "10.1.0.0"));
	assert_true(in(nets, 4, "10.1.255.255"));
	assert_false(in(nets, 4, "10.2.0.1"));
	assert_true(in(nets, 4, "127.0.0.1"));
	assert_false(in(nets, 4, "127.0.0.2"));
	assert_true(in(nets, 4, "192.0.2.200"));
	assert_false(in(nets, 4, "192.0.2.127"));
	assert_true(in(nets, 4, "2001:db8:ffff::1"));
	assert_false(in(nets, 4, "2001:db9::1"));
	assert_true(in(nets, 4, "::ffff:10.1.2.3"));	/* IPv4-mapped */
	assert_false(in(nets, 4, "::1"));
	assert_false(in(nets, 0, "127.0.0.1"));
	/* Everything, and nothing else. */
	assert_int_equal(gw_cidr_parse("0.0.0.0/0", &c, err, sizeof(err)), 0);
	assert_true(in(&c, 1, "203.0.113.9"));
	assert_false(in(&c, 1, "2001:db8::1"));
	assert_int_equal(gw_cidr_parse("::/0", &c, err, sizeof(err)), 0);
	assert_true(in(&c, 1, "2001:db8::1"));
	/* Refused. */
	assert_int_equal(gw_cidr_parse("10.1.2.3/16", &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bits set"));
	assert_int_equal(gw_cidr_parse("10.1.0.0/33", &c, err, sizeof(err)), -1);
	assert_int_equal(gw_cidr_parse("2001:db8::/129", &c, err, sizeof(err)), -1);
	assert_int_equal(gw_cidr_parse("10.1.0.0/", &c, err, sizeof(err)), -1);
	assert_int_equal(gw_cidr_parse("10.1.0.0/-1", &c, err, sizeof(err)), -1);
	assert_int_equal(gw_cidr_parse("host.example", &c, err, sizeof(err)), -1);
	assert_int_equal(gw_cidr_parse("", &c, err, sizeof(err)), -1);
	assert_int_equal(gw_cidr_parse("/8", &c, err, sizeof(err)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_tcp4),
		cmocka_unit_test(test_v1_tcp6),
		cmocka_unit_test(test_v1_unknown),
		cmocka_unit_test(test_v1_malformed),
		cmocka_unit_test(test_v1_length_bound),
		cmocka_unit_test(test_v2_tcp4),
		cmocka_unit_test(test_v2_tcp6),
		cmocka_unit_test(test_v2_local),
		cmocka_unit_test(test_v2_unspec_and_unix),
		cmocka_unit_test(test_v2_tlvs_skipped),
		cmocka_unit_test(test_crc32c_vector),
		cmocka_unit_test(test_v2_crc_good),
		cmocka_unit_test(test_v2_crc_bad),
		cmocka_unit_test(test_v2_tlv_overrun),
		cmocka_unit_test(test_v2_malformed),
		cmocka_unit_test(test_v2_oversized),
		cmocka_unit_test(test_err_names),
		cmocka_unit_test(test_cidr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
