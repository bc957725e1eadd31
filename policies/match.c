/*
 * match.c: which location a normalized path falls under (SPEC section 3,
 * "Locations match"): longest prefix at a segment boundary, case-sensitive,
 * and a refusal when ignoring case would choose another location.
 */
#include "policies/policies.h"

#include <limits.h>
#include <string.h>

/* ASCII only: the locale must not decide which policy applies. */
static unsigned char
lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int
same(const char *a, const char *b, size_t n, int icase)
{
	size_t i;

	if (!icase)
		return memcmp(a, b, n) == 0;
	for (i = 0; i < n; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return 0;
	return 1;
}

/*
 * A location "/a/" covers "/a" and everything starting with "/a/"; a
 * location "/a" covers "/a" and everything starting with "/a/", never "/ab".
 */
static int
covers(const char *loc, size_t ll, const char *path, size_t len, int icase)
{
	if (ll == 0)
		return 0;
	if (loc[ll - 1] == '/') {
		if (len == ll - 1)
			return same(loc, path, len, icase);
		return len >= ll && same(loc, path, ll, icase);
	}
	return len >= ll && same(loc, path, ll, icase) &&
	    (len == ll || path[ll] == '/');
}

/*
 * Any location covering path when case is ignored, other than the chosen
 * one, that is at least as long as the chosen one means the two readings
 * disagree. An equally long location that covers it can only differ from
 * the chosen one by case ("/admin/" beside "/ADMIN/"): that is ambiguous
 * too, unless it is a byte-for-byte duplicate.
 */
int
pol_location_match(const char *const *paths, const size_t *lens, size_t n,
    const char *path, size_t len)
{
	size_t i;
	int best = -1;

	if (n > INT_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		if (!covers(paths[i], lens[i], path, len, 0))
			continue;
		if (best == -1 || lens[i] > lens[best])
			best = (int)i;
	}
	for (i = 0; i < n; i++) {
		if ((int)i == best ||
		    !covers(paths[i], lens[i], path, len, 1))
			continue;
		if (best == -1 || lens[i] > lens[best])
			return -2;
		if (lens[i] == lens[best] &&
		    memcmp(paths[i], paths[best], lens[i]) != 0)
			return -2;
	}
	return best;
}
