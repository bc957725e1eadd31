/*
 * test_path.c: unit tests for policies/path.c (request-path normalization)
 * and policies/match.c (location matching); one cmocka test per table row.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policies/policies.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))
#define GUARD		16	/* bytes past outsize, checked unchanged */
#define NAMELEN		96

struct norm_case {
	const char		*in;
	size_t			 len;
	size_t			 outsize;	/* 0: len + 1 */
	enum pol_path_err	 err;
	const char		*want;		/* when err is OK */
};

/* Literal lengths, so a case may hold a NUL byte. */
#define OK(in, want)		{ in, sizeof(in) - 1, 0, POL_PATH_OK, want }
#define OKS(in, size, want) { in, sizeof(in) - 1, size, POL_PATH_OK, want }
#define NO(in, err)		{ in, sizeof(in) - 1, 0, err, NULL }
#define NOS(in, size, err)	{ in, sizeof(in) - 1, size, err, NULL }

static const struct norm_case norm_cases[] = {
	/* slashes */
	OK("/", "/"),
	OK("//", "/"),
	OK("///", "/"),
	OK("//a///b", "/a/b"),
	OK("/a/b/", "/a/b/"),
	OK("/a/b//", "/a/b/"),
	OK("/a//../b", "/b"),

	/* dot segments */
	OK("/.", "/"),
	OK("/./", "/"),
	OK("/./a/./b/.", "/a/b/"),
	OK("/a/b/.", "/a/b/"),
	OK("/a/b/./", "/a/b/"),
	OK("/a/..", "/"),
	OK("/a/b/..", "/a/"),
	OK("/a/b/../", "/a/"),
	OK("/a/b/../../", "/"),
	OK("/a/./b/../c", "/a/c"),
	OK("/admin/../public/x", "/public/x"),
	OK("/...", "/..."),
	OK("/.a/..b/a.", "/.a/..b/a."),
	NO("/..", POL_PATH_ABOVE_ROOT),
	NO("/../", POL_PATH_ABOVE_ROOT),
	NO("/../a", POL_PATH_ABOVE_ROOT),
	NO("/a/b/../../..", POL_PATH_ABOVE_ROOT),
	NO("/a/../../a", POL_PATH_ABOVE_ROOT),
	NO("//..//a", POL_PATH_ABOVE_ROOT),

	/* dots written as escapes count as dots */
	OK("/a/%2e%2E/b", "/b"),
	OK("/a/%2E%2e", "/"),
	OK("/a/.%2e/b", "/b"),
	OK("/a/%2e/b", "/a/b"),
	OK("/%2E", "/"),
	OK("/%2e%2e%2e", "/..."),
	NO("/%2e%2e/x", POL_PATH_ABOVE_ROOT),
	NO("/%2E.", POL_PATH_ABOVE_ROOT),

	/* escapes: unreserved decoded, the rest kept in upper case */
	OK("/%7e", "/~"),
	OK("/%7E", "/~"),
	OK("/%41", "/A"),
	OK("/%61%44%6d%49%6E", "/aDmIn"),
	OK("/%2d%2D%5f%30%39%5A", "/--_09Z"),
	OK("/%20", "/%20"),
	OK("/a%2bb", "/a%2Bb"),
	OK("/%c3%a9", "/%C3%A9"),
	OK("/%C3%a9/", "/%C3%A9/"),
	OK("/%25", "/%25"),
	OK("/%252f", "/%252f"),
	OK("/%252e%252e", "/%252e%252e"),
	OK("/%3f%23", "/%3F%23"),
	OK("/%ff", "/%FF"),

	/* raw bytes kept as they are */
	OK("/caf\xc3\xa9", "/caf\xc3\xa9"),
	OK("/\x80\xff", "/\x80\xff"),
	OK("/a b", "/a b"),
	OK("/ADMIN/x", "/ADMIN/x"),
	OK("/a?b", "/a?b"),

	/* refusals */
	NO("", POL_PATH_NOT_ABSOLUTE),
	NO("a/b", POL_PATH_NOT_ABSOLUTE),
	NO(".", POL_PATH_NOT_ABSOLUTE),
	NO("%2fa", POL_PATH_NOT_ABSOLUTE),
	NO("\\a", POL_PATH_NOT_ABSOLUTE),
	NO("/a%2fb", POL_PATH_ENCODED_SLASH),
	NO("/a%2Fb", POL_PATH_ENCODED_SLASH),
	NO("/a/b%2f..%2f", POL_PATH_ENCODED_SLASH),
	NO("/a%00", POL_PATH_NUL),
	NO("/a\0b", POL_PATH_NUL),
	NO("/\0", POL_PATH_NUL),
	NO("/a\\b", POL_PATH_BACKSLASH),
	NO("/\\", POL_PATH_BACKSLASH),
	NO("/a%5cb", POL_PATH_BACKSLASH),
	NO("/a%5C..%5C", POL_PATH_BACKSLASH),
	NO("/a\tb", POL_PATH_CONTROL),
	NO("/a\r\n", POL_PATH_CONTROL),
	NO("/a\x1f", POL_PATH_CONTROL),
	NO("/a\x7f", POL_PATH_CONTROL),
	NO("/a%09", POL_PATH_CONTROL),
	NO("/a%0a", POL_PATH_CONTROL),
	NO("/a%1F", POL_PATH_CONTROL),
	NO("/a%7f", POL_PATH_CONTROL),
	NO("/a;b", POL_PATH_SEMICOLON),
	NO("/a;jsessionid=1/b", POL_PATH_SEMICOLON),
	NO("/a%3B", POL_PATH_SEMICOLON),
	NO("/a%3b", POL_PATH_SEMICOLON),
	NO("/%", POL_PATH_BAD_ESCAPE),
	NO("/a%", POL_PATH_BAD_ESCAPE),
	NO("/%4", POL_PATH_BAD_ESCAPE),
	NO("/%4/1", POL_PATH_BAD_ESCAPE),
	NO("/%/41", POL_PATH_BAD_ESCAPE),
	NO("/%zz", POL_PATH_BAD_ESCAPE),
	NO("/%g0", POL_PATH_BAD_ESCAPE),
	NO("/%0g", POL_PATH_BAD_ESCAPE),
	NO("/%%41", POL_PATH_BAD_ESCAPE),
	NO("/% 1", POL_PATH_BAD_ESCAPE),

	/* the first refusal met, in input order */
	NO("/../%zz", POL_PATH_ABOVE_ROOT),
	NO("/%zz/..", POL_PATH_BAD_ESCAPE),
	NO("/a;b%2f", POL_PATH_SEMICOLON),
	NO("/a%2f;b", POL_PATH_ENCODED_SLASH),
	NO("/a\\%00", POL_PATH_BACKSLASH),

	/* only the result has to fit, and refusals come first */
	OKS("/abc", 5, "/abc"),
	NOS("/abc", 4, POL_PATH_TOO_LONG),
	NOS("/abc", 1, POL_PATH_TOO_LONG),
	OKS("/%41", 3, "/A"),
	NOS("/%20", 4, POL_PATH_TOO_LONG),
	OKS("/abc/", 6, "/abc/"),
	NOS("/abc/", 5, POL_PATH_TOO_LONG),
	OKS("/", 2, "/"),
	NOS("/", 1, POL_PATH_TOO_LONG),
	OKS("/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/..", 2, "/"),
	OKS("/a/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/../c", 5, "/a/c"),
	NOS("/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa%zz", 4, POL_PATH_BAD_ESCAPE),
	NOS("/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/../..", 2, POL_PATH_ABOVE_ROOT),
};

struct match_case {
	int		 set;
	const char	*path;
	int		 want;
};

static const char *const set0[] = {
	"/", "/admin/", "/public/", "/api", "/api/v1/", "/Docs/", "/\xc3/",
};
static const char *const set1[] = { "/admin/", "/api" };
static const char *const set2[] = { "/admin/", "/ADMIN/", "/" };
static const char *const set3[] = { "/a/", "/a/", "/" };

static const struct {
	const char *const	*paths;
	size_t			 n;
} sets[] = {
	{ set0, nitems(set0) },
	{ set1, nitems(set1) },
	{ set2, nitems(set2) },
	{ set3, nitems(set3) },
	{ NULL, 0 },
};

static const struct match_case match_cases[] = {
	/* longest prefix, at a segment boundary */
	{ 0, "/", 0 },
	{ 0, "/x", 0 },
	{ 0, "/admin/", 1 },
	{ 0, "/admin/x/y", 1 },
	{ 0, "/admin", 1 },
	{ 0, "/adminx", 0 },
	{ 0, "/admi", 0 },
	{ 0, "/public/a/b", 2 },
	{ 0, "/public", 2 },
	{ 0, "/api", 3 },
	{ 0, "/api/", 3 },
	{ 0, "/api/x", 3 },
	{ 0, "/apix", 0 },
	{ 0, "/api/v1", 4 },
	{ 0, "/api/v1/x", 4 },
	{ 0, "/api/v1x", 3 },
	{ 0, "/Docs/x", 5 },
	{ 0, "/\xc3/x", 6 },

	/* case ambiguity */
	{ 0, "/ADMIN/x", -2 },
	{ 0, "/Admin", -2 },
	{ 0, "/aDmin/", -2 },
	{ 0, "/docs/x", -2 },
	{ 0, "/DOCS", -2 },
	{ 0, "/API/V1/x", -2 },
	{ 0, "/api/V1/x", -2 },
	{ 0, "/Api", -2 },
	{ 0, "/ADMINX", 0 },
	{ 0, "/Adminx/y", 0 },
	{ 0, "/Public2", 0 },
	{ 0, "/\xe3/x", 0 },		/* 0xc3 | 0x20: not a letter */

	/* no "/" location */
	{ 1, "/", -1 },
	{ 1, "/x", -1 },
	{ 1, "/admin", 0 },
	{ 1, "/admin/x", 0 },
	{ 1, "/adminx", -1 },
	{ 1, "/apix", -1 },
	{ 1, "/api/x", 1 },
	{ 1, "/ADMIN/x", -2 },
	{ 1, "/aPI", -2 },

	/* locations differing only by case: neither is reachable */
	{ 2, "/admin/x", -2 },
	{ 2, "/ADMIN/x", -2 },
	{ 2, "/AdMiN/x", -2 },
	{ 2, "/other", 2 },

	/* an exact duplicate: the first wins */
	{ 3, "/a/x", 0 },
	{ 3, "/A/x", -2 },
	{ 3, "/b", 2 },

	/* no location at all */
	{ 4, "/", -1 },
};

static char norm_names[nitems(norm_cases)][NAMELEN];
static char match_names[nitems(match_cases)][NAMELEN];

/* A printable test name: escapes every byte outside printable ASCII. */
static void
name_case(char *dst, const char *prefix, size_t idx, const char *in,
    size_t len)
{
	size_t i, n;

	n = (size_t)snprintf(dst, NAMELEN, "%s %03zu \"", prefix, idx);
	for (i = 0; i < len && n + 6 < NAMELEN; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			dst[n++] = (char)c;
		else
			n += (size_t)snprintf(dst + n, NAMELEN - n, "\\x%02x",
			    c);
	}
	if (i < len)
		dst[n++] = '+';
	dst[n++] = '"';
	dst[n] = '\0';
}

/*
 * Runs one normalization, checks that nothing was written past outsize
 * and that the result or the refusal is exactly the expected one.
 */
static void
check_normalize(const char *in, size_t len, size_t outsize,
    enum pol_path_err want_err, const char *want)
{
	enum pol_path_err e;
	char *buf;
	size_t outlen = 12345, i;

	buf = malloc(outsize + GUARD);
	assert_non_null(buf);
	memset(buf, 'Z', outsize + GUARD);
	e = pol_path_normalize(in, len, buf, outsize, &outlen);
	assert_string_equal(pol_path_err_names[e],
	    pol_path_err_names[want_err]);
	for (i = outsize; i < outsize + GUARD; i++)
		assert_int_equal(buf[i], 'Z');
	if (e != POL_PATH_OK) {
		assert_int_equal(outlen, 0);
		if (outsize > 0)
			assert_int_equal(buf[0], '\0');
		free(buf);
		return;
	}
	assert_int_equal(outlen, strlen(want));
	assert_memory_equal(buf, want, outlen + 1);
	free(buf);
}

static void
test_normalize_case(void **state)
{
	const struct norm_case *c = *state;
	size_t outsize = c->outsize ? c->outsize : c->len + 1;
	char out[256];
	size_t outlen;

	check_normalize(c->in, c->len, outsize, c->err, c->want);
	if (c->err != POL_PATH_OK)
		return;
	/* The result is its own normal form. */
	assert_int_equal(pol_path_normalize(c->want, strlen(c->want), out,
	    sizeof(out), &outlen), POL_PATH_OK);
	assert_string_equal(out, c->want);
}

static void
test_normalize_outsize_zero(void **state)
{
	(void)state;
	check_normalize("/", 1, 0, POL_PATH_TOO_LONG, NULL);
	check_normalize("a", 1, 0, POL_PATH_NOT_ABSOLUTE, NULL);
	check_normalize("/%zz", 4, 0, POL_PATH_BAD_ESCAPE, NULL);
}

/* A long path, and a deep one that climbs back down to "/". */
static void
test_normalize_long(void **state)
{
	enum { DEPTH = 4000 };
	char *in, *p;
	size_t len, i;

	(void)state;
	len = 1 + 8192;
	in = malloc(len + 1);
	assert_non_null(in);
	in[0] = '/';
	memset(in + 1, 'a', len - 1);
	in[len] = '\0';
	check_normalize(in, len, 64, POL_PATH_TOO_LONG, NULL);
	check_normalize(in, len, len, POL_PATH_TOO_LONG, NULL);
	check_normalize(in, len, len + 1, POL_PATH_OK, in);
	free(in);

	in = malloc(DEPTH * 5 + 4);
	assert_non_null(in);
	p = in;
	for (i = 0; i < DEPTH; i++) {
		memcpy(p, "/a", 2);
		p += 2;
	}
	for (i = 0; i < DEPTH; i++) {
		memcpy(p, "/..", 3);
		p += 3;
	}
	*p = '\0';
	check_normalize(in, (size_t)(p - in), 2, POL_PATH_OK, "/");
	check_normalize(in, (size_t)(p - in), 1, POL_PATH_TOO_LONG, NULL);
	memcpy(p, "/..", 4);
	check_normalize(in, (size_t)(p - in) + 3, 2, POL_PATH_ABOVE_ROOT,
	    NULL);
	free(in);
}

static void
test_err_names(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < POL_PATH__MAX; i++) {
		assert_non_null(pol_path_err_names[i]);
		assert_true(pol_path_err_names[i][0] != '\0');
	}
}

static void
test_match_case(void **state)
{
	const struct match_case *c = *state;
	size_t lens[16], i, n = sets[c->set].n;

	assert_true(n <= nitems(lens));
	for (i = 0; i < n; i++)
		lens[i] = strlen(sets[c->set].paths[i]);
	assert_int_equal(pol_location_match(sets[c->set].paths, lens, n,
	    c->path, strlen(c->path)), c->want);
}

/* Lengths are taken from lens, not from a terminating NUL. */
static void
test_match_lengths(void **state)
{
	const char *const paths[] = { "/admin/XXXX", "/" };
	const size_t lens[] = { 7, 1 };

	(void)state;
	assert_int_equal(pol_location_match(paths, lens, 2, "/admin/xYZ", 7),
	    0);
	assert_int_equal(pol_location_match(paths, lens, 2, "/adminXYZ", 6),
	    0);
	assert_int_equal(pol_location_match(paths, lens, 2, "/adminXYZ", 7),
	    1);
}

int
main(void)
{
	struct CMUnitTest tests[nitems(norm_cases) + nitems(match_cases) + 4];
	size_t i, n = 0;

	for (i = 0; i < nitems(norm_cases); i++) {
		name_case(norm_names[i], "normalize", i, norm_cases[i].in,
		    norm_cases[i].len);
		tests[n++] = (struct CMUnitTest){ norm_names[i],
		    test_normalize_case, NULL, NULL, (void *)&norm_cases[i] };
	}
	for (i = 0; i < nitems(match_cases); i++) {
		name_case(match_names[i], "match", i, match_cases[i].path,
		    strlen(match_cases[i].path));
		tests[n++] = (struct CMUnitTest){ match_names[i],
		    test_match_case, NULL, NULL, (void *)&match_cases[i] };
	}
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
	    test_normalize_outsize_zero);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_normalize_long);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_err_names);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_match_lengths);
	return _cmocka_run_group_tests("test_path", tests, n, NULL, NULL);
}
