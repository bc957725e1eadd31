/*
 * policies.h: certgate's policy module: path normalization, location
 * matching, and (later) the policy model and its decisions. Pure: facts in,
 * decision out; no sockets, no events.
 */
#ifndef POLICIES_H
#define POLICIES_H

#include <stddef.h>

/* ---- path.c: request-path normalization (SPEC section 5) ---- */

enum pol_path_err {
	POL_PATH_OK,
	POL_PATH_NOT_ABSOLUTE,	/* does not start with '/' */
	POL_PATH_ABOVE_ROOT,	/* ".." climbs above "/" */
	POL_PATH_ENCODED_SLASH,	/* %2f or %2F */
	POL_PATH_NUL,		/* %00, or a raw NUL byte */
	POL_PATH_BACKSLASH,	/* '\\' raw or %5c */
	POL_PATH_CONTROL,	/* a control byte, raw or encoded (incl. DEL) */
	POL_PATH_SEMICOLON,	/* ';' raw or %3b */
	POL_PATH_BAD_ESCAPE,	/* '%' not followed by two hex digits */
	POL_PATH_TOO_LONG,	/* result does not fit the output buffer */
	POL_PATH__MAX
};
extern const char *const pol_path_err_names[POL_PATH__MAX];

/*
 * Normalizes the path of a request target (the part before '?', without
 * the query) into out, NUL-terminated: percent-escapes of unreserved
 * characters (ALPHA DIGIT - . _ ~) are decoded, other escapes are kept
 * with their hex digits in upper case; "." and ".." segments are removed
 * (RFC 3986 5.2.4, applied after decoding so "%2e%2e" counts as ".."),
 * runs of '/' merge into one (before dot segments go, so "/a//../b" is
 * "/b"). A trailing '/' is kept, and a last segment "." or ".." leaves one
 * ("/a/b/.." is "/a/"). Raw bytes >= 0x80 are kept as they are. A NUL, raw
 * or encoded, is POL_PATH_NUL. Returns POL_PATH_OK and the length in
 * *outlen, or the first refusal met in input order (the caller answers
 * 400); POL_PATH_TOO_LONG only for a path otherwise accepted, when the
 * result does not fit. On failure *outlen is 0 and out, if outsize > 0,
 * holds "". out must hold outsize bytes; len+1 always suffices. The
 * result is its own normal form.
 */
enum pol_path_err pol_path_normalize(const char *in, size_t len, char *out,
                                     size_t outsize, size_t *outlen);

/* ---- match.c: location matching ---- */

/*
 * Returns the index of the location whose path is the longest prefix of
 * path (case-sensitive, matching at a segment boundary or as a byte prefix
 * when the location ends in '/'; a location "/a/" also matches "/a"
 * exactly), -1 when none matches, or -2 when, ignoring ASCII letter case,
 * the longest match would be a different location (the caller answers 400).
 * Two locations differing only by case make both unreachable (-2), so the
 * configuration should refuse them; an exact duplicate loses to the first.
 * paths[i]/lens[i] are the n location paths, each starting with '/'; path
 * is the normalized path. Case is folded for ASCII letters only.
 */
int pol_location_match(const char *const *paths, const size_t *lens, size_t n,
                       const char *path, size_t len);

#endif
