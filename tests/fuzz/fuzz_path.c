/*
 * fuzz_path.c: libFuzzer target for policies/path.c and policies/match.c:
 * any accepted path comes out in normal form, and matching it is sane.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policies/policies.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

/* All lower case, so matching the path folded to lower case must agree. */
static const char *const locs[] = {
	"/", "/admin/", "/admin/secret/", "/api", "/api/v1/", "/public/",
	"/a~b/", "/caf\xc3\xa9/", "/x_y-z.0",
};

static int
ishex_upper(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static int
unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

static unsigned char
hexval(char c)
{
	return (unsigned char)(c <= '9' ? c - '0' : c - 'A' + 10);
}

/* Aborts unless out[0..len) is in the normal form path.c promises. */
static void
check_form(const char *out, size_t len)
{
	size_t i, seg;
	unsigned char c;

	if (len == 0 || out[0] != '/' || out[len] != '\0')
		abort();
	for (i = 0; i < len; i++) {
		c = (unsigned char)out[i];
		if (c < 0x20 || c == 0x7f || c == '\\' || c == ';')
			abort();
		if (c == '/' && i + 1 < len && out[i + 1] == '/')
			abort();
		if (c != '%')
			continue;
		if (len - i < 3 || !ishex_upper(out[i + 1]) ||
		    !ishex_upper(out[i + 2]))
			abort();
		c = (unsigned char)(hexval(out[i + 1]) << 4 |
		    hexval(out[i + 2]));
		/* Covers %2F, %00, %5C and every other refused byte. */
		if (unreserved(c) || c == '/' || c < 0x20 || c == 0x7f ||
		    c == '\\' || c == ';')
			abort();
	}
	/* No "." or ".." segment anywhere, the last one included. */
	for (i = 1; i < len; i = seg + 1) {
		for (seg = i; seg < len && out[seg] != '/'; seg++)
			;
		if ((seg - i == 1 && out[i] == '.') ||
		    (seg - i == 2 && out[i] == '.' && out[i + 1] == '.'))
			abort();
	}
}

static void
check_match(const char *path, size_t len)
{
	size_t lens[nitems(locs)], i;
	char *low;
	int r, rl;

	for (i = 0; i < nitems(locs); i++)
		lens[i] = strlen(locs[i]);
	r = pol_location_match(locs, lens, nitems(locs), path, len);
	if (r < -2 || r >= (int)nitems(locs))
		abort();
	/* "/" is a location, so something matches. */
	if (r == -1)
		abort();
	if ((low = malloc(len + 1)) == NULL)
		abort();
	for (i = 0; i < len; i++)
		low[i] = path[i] >= 'A' && path[i] <= 'Z' ?
		    (char)(path[i] - 'A' + 'a') : path[i];
	/*
	 * The locations are lower case, so folding the path gives what the
	 * case-blind reading chooses: the same location unless r is -2, and
	 * -2 only for a path with an upper-case letter.
	 */
	rl = pol_location_match(locs, lens, nitems(locs), low, len);
	if (rl < 0 || (r != -2 && r != rl) || (r == -2 && memcmp(low, path,
	    len) == 0))
		abort();
	free(low);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum pol_path_err e, e2, es;
	char *out, *out2, *small;
	size_t outlen, outlen2, smalllen, smallsize;

	/* Exact sizes, so AddressSanitizer sees any write past outsize. */
	if ((out = malloc(size + 1)) == NULL)
		abort();
	e = pol_path_normalize((const char *)data, size, out, size + 1,
	    &outlen);
	if (e >= POL_PATH__MAX || e == POL_PATH_TOO_LONG)
		abort();

	/* A smaller buffer changes nothing but whether the result fits. */
	smallsize = size / 2;
	if ((small = malloc(smallsize + 1)) == NULL)
		abort();
	es = pol_path_normalize((const char *)data, size, small, smallsize,
	    &smalllen);
	if (e != POL_PATH_OK) {
		if (es != e || outlen != 0 || out[0] != '\0')
			abort();
	} else if (outlen + 1 <= smallsize) {
		if (es != POL_PATH_OK || smalllen != outlen ||
		    memcmp(small, out, outlen + 1) != 0)
			abort();
	} else if (es != POL_PATH_TOO_LONG || smalllen != 0 ||
	    (smallsize > 0 && small[0] != '\0'))
		abort();
	free(small);

	if (e != POL_PATH_OK) {
		free(out);
		return 0;
	}
	if (outlen > size || memchr(out, '\0', outlen) != NULL)
		abort();
	check_form(out, outlen);

	/* Idempotence: the normal form normalizes to itself. */
	if ((out2 = malloc(outlen + 1)) == NULL)
		abort();
	e2 = pol_path_normalize(out, outlen, out2, outlen + 1, &outlen2);
	if (e2 != POL_PATH_OK || outlen2 != outlen ||
	    memcmp(out, out2, outlen + 1) != 0)
		abort();
	free(out2);

	check_match(out, outlen);
	free(out);
	return 0;
}
