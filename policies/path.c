/*
 * path.c: normalization of request paths before location matching (SPEC
 * section 5): every accepted spelling of a path reduces to one form, and
 * spellings that could mean different things to the application are refused.
 */
#include "policies/policies.h"

#include <string.h>

const char *const pol_path_err_names[POL_PATH__MAX] = {
	[POL_PATH_OK] = "OK",
	[POL_PATH_NOT_ABSOLUTE] = "NOT_ABSOLUTE",
	[POL_PATH_ABOVE_ROOT] = "ABOVE_ROOT",
	[POL_PATH_ENCODED_SLASH] = "ENCODED_SLASH",
	[POL_PATH_NUL] = "NUL",
	[POL_PATH_BACKSLASH] = "BACKSLASH",
	[POL_PATH_CONTROL] = "CONTROL",
	[POL_PATH_SEMICOLON] = "SEMICOLON",
	[POL_PATH_BAD_ESCAPE] = "BAD_ESCAPE",
	[POL_PATH_TOO_LONG] = "TOO_LONG",
};

/* What a segment reads as once decoded; never logged, so no name table. */
enum seg_kind {
	SEG_NAME,		/* anything but the two below */
	SEG_DOT,		/* "." */
	SEG_DOTDOT,		/* ".." */
	SEG__MAX
};

/* RFC 3986 unreserved: the escapes whose decoding cannot change meaning. */
static int
unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

/*
 * The refusal for byte c of a segment, raw or decoded from an escape. A NUL
 * is reported as such whichever way it was written.
 */
static enum pol_path_err
byte_check(unsigned char c, int encoded)
{
	if (c == '\0')
		return POL_PATH_NUL;
	if (c < 0x20 || c == 0x7f)
		return POL_PATH_CONTROL;
	if (c == '\\')
		return POL_PATH_BACKSLASH;
	if (c == ';')
		return POL_PATH_SEMICOLON;
	if (c == '/' && encoded)
		return POL_PATH_ENCODED_SLASH;
	return POL_PATH_OK;
}

/*
 * Checks the segment p[0..n) (no '/' in it) and measures it: *olen is its
 * length once normalized, *kind whether it reads "." or "..". Returns the
 * first refusal met in it.
 */
static enum pol_path_err
seg_scan(const unsigned char *p, size_t n, size_t *olen, enum seg_kind *kind)
{
	enum pol_path_err e;
	size_t i, len = 0, nchars = 0, ndots = 0;
	unsigned char c;
	int hi, lo, encoded;

	for (i = 0; i < n; nchars++) {
		if (p[i] == '%') {
			if (n - i < 3 || (hi = cg_hexval(p[i + 1])) == -1 ||
			    (lo = cg_hexval(p[i + 2])) == -1)
				return POL_PATH_BAD_ESCAPE;
			c = (unsigned char)(hi << 4 | lo);
			encoded = 1;
			i += 3;
			len += unreserved(c) ? 1 : 3;
		} else {
			c = p[i];
			encoded = 0;
			i++;
			len++;
		}
		if ((e = byte_check(c, encoded)) != POL_PATH_OK)
			return e;
		if (c == '.')
			ndots++;
	}
	*olen = len;
	if (ndots == nchars && nchars == 1)
		*kind = SEG_DOT;
	else if (ndots == nchars && nchars == 2)
		*kind = SEG_DOTDOT;
	else
		*kind = SEG_NAME;
	return POL_PATH_OK;
}

/* Writes the checked segment p[0..n) in normal form to dst. */
static void
seg_emit(const unsigned char *p, size_t n, char *dst)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;
	unsigned char c;

	for (i = 0; i < n; ) {
		if (p[i] != '%') {
			*dst++ = (char)p[i++];
			continue;
		}
		c = (unsigned char)(cg_hexval(p[i + 1]) << 4 | cg_hexval(p[i + 2]));
		i += 3;
		if (unreserved(c))
			*dst++ = (char)c;
		else {
			*dst++ = '%';
			*dst++ = hex[c >> 4];
			*dst++ = hex[c & 0xf];
		}
	}
}

/*
 * Two passes. The first, left to right, meets refusals in input order and
 * sees a ".." climb above the root the moment it does. The second, right to
 * left, counts pending ".." so it knows which segments survive without a
 * stack, and writes them at the end of out; the result is moved to the
 * front. Only the final result has to fit, never an intermediate one, so
 * POL_PATH_TOO_LONG means exactly that out is too small.
 */
enum pol_path_err
pol_path_normalize(const char *in, size_t len, char *out, size_t outsize,
    size_t *outlen)
{
	const unsigned char *p = (const unsigned char *)in;
	enum pol_path_err e;
	enum seg_kind kind;
	size_t i, j, depth, skip, olen, pos;
	int trailing;

	*outlen = 0;
	if (len == 0 || p[0] != '/') {
		e = POL_PATH_NOT_ABSOLUTE;
		goto fail;
	}

	/*
	 * Slashes merge before dot segments go, so "/a//../b" is "/b". The
	 * result ends in '/' when the input does or its last segment is "."
	 * or "..", as in RFC 3986 5.2.4.
	 */
	depth = 0;
	trailing = 0;
	for (i = 0;; i = j) {
		while (i < len && p[i] == '/')
			i++;
		if (i == len) {
			trailing = 1;
			break;
		}
		for (j = i; j < len && p[j] != '/'; j++)
			;
		if ((e = seg_scan(p + i, j - i, &olen, &kind)) != POL_PATH_OK)
			goto fail;
		if (kind == SEG_DOTDOT) {
			if (depth == 0) {
				e = POL_PATH_ABOVE_ROOT;
				goto fail;
			}
			depth--;
		} else if (kind == SEG_NAME)
			depth++;
		trailing = kind != SEG_NAME;
		if (j == len)
			break;
	}

	/*
	 * Every surviving segment is written as "/seg"; a trailing '/' is
	 * added when wanted. No surviving segment implies trailing (the last
	 * segment of the input survives unless it is "." or ".."), which
	 * makes the result "/".
	 */
	e = POL_PATH_TOO_LONG;
	if (outsize == 0)
		goto fail;
	pos = outsize - 1;
	if (trailing) {
		if (pos < 1)
			goto fail;
		out[--pos] = '/';
	}
	skip = 0;
	for (j = len; j > 0; j = i) {
		while (j > 0 && p[j - 1] == '/')
			j--;
		if (j == 0)
			break;
		for (i = j; i > 0 && p[i - 1] != '/'; i--)
			;
		(void)seg_scan(p + i, j - i, &olen, &kind);
		if (kind == SEG_DOTDOT)
			skip++;
		else if (kind == SEG_NAME && skip > 0)
			skip--;
		else if (kind == SEG_NAME) {
			if (pos < olen + 1)
				goto fail;
			pos -= olen;
			seg_emit(p + i, j - i, out + pos);
			out[--pos] = '/';
		}
	}
	*outlen = outsize - 1 - pos;
	memmove(out, out + pos, *outlen);
	out[*outlen] = '\0';
	return POL_PATH_OK;

fail:
	if (outsize > 0)
		out[0] = '\0';
	return e;
}
