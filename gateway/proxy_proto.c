/*
 * proxy_proto.c: the PROXY protocol header a TCP balancer puts before the
 * client's bytes (version 1: one text line; version 2: binary, with TLVs
 * and an optional CRC32C), and the trusted-source networks it may come
 * from. Pure functions: bytes in, a result and a reason out.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/proxy_proto.h"

const char *const gw_pp_err_names[GW_PP_E__MAX] = {
	"none", "not a PROXY protocol header", "malformed version 1 line",
	"bad version 1 address or port", "version 1 line too long", "unsupported version",
	"unknown command", "unknown address family or transport", "header too long",
	"header too short for its addresses", "malformed TLV", "CRC32C mismatch",
};

static const uint8_t v1_sig[6] = { 'P', 'R', 'O', 'X', 'Y', ' ' };
static const uint8_t v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
};

#define PP2_TYPE_CRC32C 0x03

enum v2_family { FAM_UNSPEC, FAM_INET, FAM_INET6, FAM_UNIX };
enum v2_transport { TP_UNSPEC, TP_STREAM, TP_DGRAM };

/* ---- CRC32C ---- */

/* Written here because no library certgate already depends on offers
 * CRC32C: zlib has CRC32 only, and GnuTLS and libev nothing of the kind.
 * Bitwise, reflected polynomial 0x82F63B78: a header is at most
 * GW_PP_V2_MAX bytes, so a table would buy nothing that matters. */
static uint32_t
crc32c_update(uint32_t crc, const uint8_t *p, size_t n)
{
	size_t i;
	int k;

	for (i = 0; i < n; i++) {
		crc ^= p[i];
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
	}
	return crc;
}

uint32_t
gw_pp_crc32c(const uint8_t *buf, size_t n)
{
	return ~crc32c_update(0xFFFFFFFFu, buf, n);
}

/* ---- version 1 ---- */

/* A port: decimal, 0 to 65535, no sign, no leading zero. */
static int
v1_port(const char *s, size_t len, uint16_t *port)
{
	unsigned long v = 0;
	size_t i;

	if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* Sets ss to the address s (family af) and port. */
static int
v1_addr(int af, const char *s, size_t len, uint16_t port, struct sockaddr_storage *ss)
{
	char tmp[64];

	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (af == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, tmp, &in->sin_addr) != 1)
			return -1;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, tmp, &in6->sin6_addr) != 1)
			return -1;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
	}
	return 0;
}

/* The fields of "PROXY TCP4 SRC DST SPORT DPORT" after "PROXY ", split at
 * single spaces; line[0..len) holds no CR or LF. */
static enum gw_pp_err
v1_fields(const char *line, size_t len, struct gw_pp_header *h)
{
	const char *f[5];
	size_t fl[5], nf = 0, i, start = 0;
	uint16_t sport, dport;
	int af;

	/* "UNKNOWN", alone or followed by anything: no addresses to use. */
	if (len >= 7 && memcmp(line, "UNKNOWN", 7) == 0 && (len == 7 || line[7] == ' ')) {
		h->family = AF_UNSPEC;
		return GW_PP_E_NONE;
	}
	for (i = 0; i <= len; i++) {
		if (i < len && line[i] != ' ')
			continue;
		if (nf == 5 || i == start)
			return GW_PP_E_V1_SYNTAX;	/* too many fields, or an empty one */
		f[nf] = line + start;
		fl[nf++] = i - start;
		start = i + 1;
	}
	if (nf != 5)
		return GW_PP_E_V1_SYNTAX;
	if (fl[0] == 4 && memcmp(f[0], "TCP4", 4) == 0)
		af = AF_INET;
	else if (fl[0] == 4 && memcmp(f[0], "TCP6", 4) == 0)
		af = AF_INET6;
	else
		return GW_PP_E_V1_SYNTAX;
	if (v1_port(f[3], fl[3], &sport) < 0 || v1_port(f[4], fl[4], &dport) < 0 ||
	    v1_addr(af, f[1], fl[1], sport, &h->src) < 0 ||
	    v1_addr(af, f[2], fl[2], dport, &h->dst) < 0)
		return GW_PP_E_V1_ADDRESS;
	h->family = af;
	return GW_PP_E_NONE;
}

static enum gw_pp_status
parse_v1(const uint8_t *buf, size_t n, struct gw_pp_header *h, enum gw_pp_err *err)
{
	size_t i, lim = n < GW_PP_V1_MAX ? n : GW_PP_V1_MAX;

	for (i = 0; i < lim; i++) {
		if (buf[i] == '\r') {
			if (i + 1 >= GW_PP_V1_MAX) {
				*err = GW_PP_E_V1_TOO_LONG;
				return GW_PP_ERROR;
			}
			if (i + 1 >= n)
				return GW_PP_MORE;
			if (buf[i + 1] != '\n')
				break;
			*err = v1_fields((const char *)buf + sizeof(v1_sig), i - sizeof(v1_sig), h);
			if (*err != GW_PP_E_NONE)
				return GW_PP_ERROR;
			h->version = 1;
			h->command = GW_PP_PROXY;
			h->len = i + 2;
			return GW_PP_DONE;
		}
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			break;			/* a bare LF, a control byte, binary */
	}
	if (i < lim) {
		*err = GW_PP_E_V1_SYNTAX;
		return GW_PP_ERROR;
	}
	if (n >= GW_PP_V1_MAX) {
		*err = GW_PP_E_V1_TOO_LONG;
		return GW_PP_ERROR;
	}
	return GW_PP_MORE;
}

/* ---- version 2 ---- */

static uint16_t
be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Walks the TLVs in buf[off..end); checks a CRC32C TLV over the whole
 * header with its value taken as zero. */
static enum gw_pp_err
v2_tlvs(const uint8_t *buf, size_t off, size_t end, struct gw_pp_header *h)
{
	static const uint8_t zero[4];
	size_t crc_at = 0, tlen;
	uint32_t want, got;

	while (off < end) {
		if (end - off < 3)
			return GW_PP_E_TLV;
		tlen = be16(buf + off + 1);
		if (end - off - 3 < tlen)
			return GW_PP_E_TLV;
		if (buf[off] == PP2_TYPE_CRC32C) {
			if (tlen != 4 || crc_at != 0)
				return GW_PP_E_TLV;
			crc_at = off + 3;
		}
		off += 3 + tlen;
	}
	if (crc_at == 0)
		return GW_PP_E_NONE;
	want = (uint32_t)buf[crc_at] << 24 | (uint32_t)buf[crc_at + 1] << 16 |
	    (uint32_t)buf[crc_at + 2] << 8 | buf[crc_at + 3];
	got = crc32c_update(0xFFFFFFFFu, buf, crc_at);
	got = crc32c_update(got, zero, sizeof(zero));
	got = ~crc32c_update(got, buf + crc_at + 4, end - crc_at - 4);
	if (got != want)
		return GW_PP_E_CRC;
	h->has_crc = 1;
	return GW_PP_E_NONE;
}

static void
v2_addresses(const uint8_t *a, enum v2_family fam, struct gw_pp_header *h)
{
	memset(&h->src, 0, sizeof(h->src));
	memset(&h->dst, 0, sizeof(h->dst));
	if (fam == FAM_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&h->src;
		struct sockaddr_in *d = (struct sockaddr_in *)&h->dst;

		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, a, 4);
		memcpy(&d->sin_addr, a + 4, 4);
		memcpy(&s->sin_port, a + 8, 2);		/* both in network order */
		memcpy(&d->sin_port, a + 10, 2);
		h->family = AF_INET;
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&h->src;
		struct sockaddr_in6 *d = (struct sockaddr_in6 *)&h->dst;

		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, a, 16);
		memcpy(&d->sin6_addr, a + 16, 16);
		memcpy(&s->sin6_port, a + 32, 2);
		memcpy(&d->sin6_port, a + 34, 2);
		h->family = AF_INET6;
	}
}

static enum gw_pp_status
parse_v2(const uint8_t *buf, size_t n, struct gw_pp_header *h, enum gw_pp_err *err)
{
	static const size_t addr_len[] = { 0, 12, 36, 216 };
	unsigned ver, cmd, fam, tp;
	size_t len;

	if (n < GW_PP_V2_FIXED)
		return GW_PP_MORE;
	ver = buf[12] >> 4;
	cmd = buf[12] & 0x0f;
	fam = buf[13] >> 4;
	tp = buf[13] & 0x0f;
	len = be16(buf + 14);
	if (ver != 2)
		*err = GW_PP_E_VERSION;
	else if (cmd > 1)
		*err = GW_PP_E_COMMAND;
	else if (fam > FAM_UNIX || tp > TP_DGRAM ||
	    /* relayed for a client over TCP: a stream, nothing else */
	    (cmd == 1 && (fam == FAM_INET || fam == FAM_INET6) && tp != TP_STREAM))
		*err = GW_PP_E_FAMILY;
	else if (len > GW_PP_V2_MAX - GW_PP_V2_FIXED)
		*err = GW_PP_E_TOO_LONG;
	else if (len < addr_len[fam])
		*err = GW_PP_E_SHORT;
	if (*err != GW_PP_E_NONE)
		return GW_PP_ERROR;
	if (n < GW_PP_V2_FIXED + len)
		return GW_PP_MORE;
	*err = v2_tlvs(buf, GW_PP_V2_FIXED + addr_len[fam], GW_PP_V2_FIXED + len, h);
	if (*err != GW_PP_E_NONE)
		return GW_PP_ERROR;
	h->version = 2;
	h->command = cmd == 1 ? GW_PP_PROXY : GW_PP_LOCAL;
	h->len = GW_PP_V2_FIXED + len;
	/* LOCAL: the addresses, if any, are to be ignored; a UNIX-socket
	 * origin has none that REMOTE_ADDR could carry. */
	if (h->command == GW_PP_PROXY && (fam == FAM_INET || fam == FAM_INET6))
		v2_addresses(buf + GW_PP_V2_FIXED, (enum v2_family)fam, h);
	else
		h->family = AF_UNSPEC;
	return GW_PP_DONE;
}

enum gw_pp_status
gw_pp_parse(const uint8_t *buf, size_t n, struct gw_pp_header *h, enum gw_pp_err *err)
{
	memset(h, 0, sizeof(*h));
	h->family = AF_UNSPEC;
	*err = GW_PP_E_NONE;
	if (n == 0)
		return GW_PP_MORE;
	if (memcmp(buf, v1_sig, n < sizeof(v1_sig) ? n : sizeof(v1_sig)) == 0)
		return n < sizeof(v1_sig) ? GW_PP_MORE : parse_v1(buf, n, h, err);
	if (memcmp(buf, v2_sig, n < sizeof(v2_sig) ? n : sizeof(v2_sig)) == 0)
		return n < sizeof(v2_sig) ? GW_PP_MORE : parse_v2(buf, n, h, err);
	*err = GW_PP_E_SIGNATURE;
	return GW_PP_ERROR;
}

/* ---- trusted sources ---- */

int
gw_cidr_parse(const char *s, struct gw_cidr *c, char *err, size_t errlen)
{
	char host[64];
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s), i, full;
	unsigned long bits;
	char *end;

	memset(c, 0, sizeof(*c));
	if (hl == 0 || hl >= sizeof(host))
		goto bad;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, c->addr) == 1)
		c->family = AF_INET;
	else if (inet_pton(AF_INET6, host, c->addr) == 1)
		c->family = AF_INET6;
	else
		goto bad;
	full = c->family == AF_INET ? 32 : 128;
	bits = full;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9')
			goto bad;
		bits = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || bits > full)
			goto bad;
	}
	c->bits = (unsigned)bits;
	for (i = c->bits; i < full; i++)
		if (c->addr[i / 8] & (0x80u >> (i % 8))) {
			snprintf(err, errlen, "\"%s\": address bits set after the /%u prefix", s,
			    c->bits);
			return -1;
		}
	return 0;
bad:
	snprintf(err, errlen, "\"%s\" is not an address or ADDRESS/BITS network", s);
	return -1;
}

static int
prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;
	uint8_t mask = (uint8_t)(0xFFu << (8 - rest));

	if (memcmp(a, b, whole) != 0)
		return 0;
	return rest == 0 || ((a[whole] ^ b[whole]) & mask) == 0;
}

int
gw_cidr_match(const struct gw_cidr *nets, size_t n, const struct sockaddr *sa)
{
	const uint8_t *a4 = NULL, *a6 = NULL;
	size_t i;

	if (sa->sa_family == AF_INET) {
		a4 = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *in6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		a6 = in6->s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(in6))
			a4 = a6 + 12;
	}
	for (i = 0; i < n; i++) {
		if (nets[i].family == AF_INET && a4 != NULL && prefix_eq(nets[i].addr, a4, nets[i].bits))
			return 1;
		if (nets[i].family == AF_INET6 && a6 != NULL && prefix_eq(nets[i].addr, a6, nets[i].bits))
			return 1;
	}
	return 0;
}
