/*
 * fuzz_proxy.c: libFuzzer target for gateway/proxy_proto.c: any input
 * gives a consistent answer, a complete header never depends on the bytes
 * after it, and its every prefix only asks for more; the trusted-source
 * parser takes the input as text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/proxy_proto.h"

static void
check_header(const uint8_t *data, const struct gw_pp_header *h)
{
	struct gw_pp_header h2;
	enum gw_pp_err err;

	if (h->version != 1 && h->version != 2)
		abort();
	if (h->version == 1 ? h->len > GW_PP_V1_MAX : h->len < GW_PP_V2_FIXED ||
	    h->len > GW_PP_V2_MAX)
		abort();
	if (h->family != 0 && h->family != h->src.ss_family)
		abort();
	if (h->family != 0 && h->command != GW_PP_PROXY)
		abort();
	/* The header alone, exactly as long, says the same. */
	if (gw_pp_parse(data, h->len, &h2, &err) != GW_PP_DONE || memcmp(h, &h2, sizeof(h2)))
		abort();
	/* One byte short: more is needed, nothing is refused yet. */
	if (gw_pp_parse(data, h->len - 1, &h2, &err) != GW_PP_MORE || err != GW_PP_E_NONE)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_pp_header h;
	enum gw_pp_err err;
	struct gw_cidr c;
	char *s, msg[160];

	switch (gw_pp_parse(data, size, &h, &err)) {
	case GW_PP_MORE:
		if (err != GW_PP_E_NONE || size >= GW_PP_MAX)
			abort();
		break;
	case GW_PP_DONE:
		if (err != GW_PP_E_NONE || h.len > size)
			abort();
		check_header(data, &h);
		break;
	case GW_PP_ERROR:
		if (err == GW_PP_E_NONE || err >= GW_PP_E__MAX)
			abort();
		break;
	default:
		abort();
	}

	if ((s = malloc(size + 1)) == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	if (gw_cidr_parse(s, &c, msg, sizeof(msg)) == 0) {
		if ((c.family != AF_INET || c.bits > 32) && (c.family != AF_INET6 || c.bits > 128))
			abort();
		if (size >= GW_PP_V2_FIXED + 12 && h.family != 0)
			(void)gw_cidr_match(&c, 1, (const struct sockaddr *)&h.src);
	}
	free(s);
	return 0;
}
