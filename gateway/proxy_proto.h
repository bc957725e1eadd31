/*
 * proxy_proto.h: the PROXY protocol (versions 1 and 2, as HAProxy's
 * proxy-protocol.txt defines them) and the trusted-source lists, as pure
 * functions over buffers: no sockets, no events. A balancer's header is
 * untrusted input until its source is checked; the parser is fuzzed
 * (tests/fuzz/fuzz_proxy.c).
 */
#ifndef GW_PROXY_PROTO_H
#define GW_PROXY_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define GW_PP_V1_MAX 107		/* longest version 1 line, CRLF included */
#define GW_PP_V2_FIXED 16		/* signature, version/command, family, length */
/* Longest version 2 header accepted: addresses and the TLVs a balancer
 * sends (unique id, SSL facts, CRC32C) fit with room; more is refused. */
#define GW_PP_V2_MAX 2048
#define GW_PP_MAX GW_PP_V2_MAX	/* never read more than this for a header */

enum gw_pp_status {
	GW_PP_MORE,		/* a valid beginning: every byte so far is the header's */
	GW_PP_DONE,		/* a complete header of hdr->len bytes */
	GW_PP_ERROR,		/* refused: err says why */
	GW_PP__MAX
};

enum gw_pp_err {
	GW_PP_E_NONE,
	GW_PP_E_SIGNATURE,	/* neither "PROXY " nor the version 2 signature */
	GW_PP_E_V1_SYNTAX,	/* a version 1 line that is not well formed */
	GW_PP_E_V1_ADDRESS,	/* a version 1 address or port that does not parse */
	GW_PP_E_V1_TOO_LONG,	/* no CRLF within GW_PP_V1_MAX bytes */
	GW_PP_E_VERSION,	/* version 2 signature, another version */
	GW_PP_E_COMMAND,	/* neither LOCAL nor PROXY */
	GW_PP_E_FAMILY,		/* unknown address family or transport */
	GW_PP_E_TOO_LONG,	/* version 2 length over GW_PP_V2_MAX */
	GW_PP_E_SHORT,		/* length too small for the address family */
	GW_PP_E_TLV,		/* a TLV that overruns the header, or a bad CRC32C TLV */
	GW_PP_E_CRC,		/* CRC32C present and wrong */
	GW_PP_E__MAX
};
extern const char *const gw_pp_err_names[GW_PP_E__MAX];

enum gw_pp_command {
	GW_PP_LOCAL,		/* the balancer's own connection (health check) */
	GW_PP_PROXY,		/* relayed for a client */
	GW_PP_CMD__MAX
};

struct gw_pp_header {
	int version;			/* 1 or 2 */
	enum gw_pp_command command;
	/* AF_INET or AF_INET6 when src and dst carry the client's addresses;
	 * AF_UNSPEC when there are none to use (LOCAL, UNKNOWN, UNSPEC, a
	 * UNIX-socket origin): the connection stays the balancer's own. */
	int family;
	struct sockaddr_storage src, dst;
	size_t len;			/* bytes of the header, on GW_PP_DONE */
	int has_crc;			/* a CRC32C TLV was present and matched */
};

/* Parses the header at the start of buf[0..n). GW_PP_MORE: all n bytes
 * belong to the header and more are needed (at most GW_PP_MAX in all);
 * GW_PP_DONE: *h is filled and h->len <= n bytes are the header, the rest
 * is not; GW_PP_ERROR: *err says why. Never reads past buf[n - 1]. */
enum gw_pp_status gw_pp_parse(const uint8_t *buf, size_t n, struct gw_pp_header *h,
    enum gw_pp_err *err);

/* CRC32C (Castagnoli) of buf, as version 2's PP2_TYPE_CRC32C carries it. */
uint32_t gw_pp_crc32c(const uint8_t *buf, size_t n);

/* A source network: "192.0.2.0/24", "2001:db8::/32", or one address. */
struct gw_cidr {
	int family;			/* AF_INET or AF_INET6 */
	uint8_t addr[16];		/* network order, host bits zero */
	unsigned bits;
};

/* Parses s into *c; 0, or -1 with a message in err. Host bits set after
 * the prefix are refused (a likely typo). */
int gw_cidr_parse(const char *s, struct gw_cidr *c, char *err, size_t errlen);
/* Whether the address sa is in one of the n networks. An IPv4-mapped IPv6
 * address counts as its IPv4 address. */
int gw_cidr_match(const struct gw_cidr *nets, size_t n, const struct sockaddr *sa);

#endif
