/*
 * policies.h: certgate's policy module: path normalization, location
 * matching, and (later) the policy model and its decisions. Pure: facts in,
 * decision out; no sockets, no events.
 */
#ifndef POLICIES_H
#define POLICIES_H

#include <stddef.h>

#include "common/common.h"
#include "certauth/certauth.h"

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

/* ---- policy.c: policies and the decisions of SPEC section 4 ---- */

enum pol_client_cert { POL_CERT_IGNORE, POL_CERT_ACCEPT, POL_CERT_REQUIRE, POL_CERT__MAX };
extern const char *const pol_client_cert_names[POL_CERT__MAX];

/* Variable sets a policy exports (bits). */
#define POL_EXPORT_SSL   0x1
#define POL_EXPORT_IIS   0x2
#define POL_EXPORT_CERT  0x4
#define POL_EXPORT_CHAIN 0x8

/* A policy as written. */
struct pol_policy_conf {
	struct cg_conf_src src;
	char *name;
	int tls;			/* enum pol_tls */
	int http_redirect;
	int64_t min_cipher_bits;
	int client_certificate;		/* enum pol_client_cert */
	struct cg_strv mapping;
	int require_account, require_strong_mapping;
	struct cg_strv allow_users;
	struct cg_strv allow_groups;
	char *authorizer;		/* a backend with role "authorizer"; "" none */
	int64_t hsts;
	int secure_cookies;
	struct cg_strv export;
};

enum pol_tls { POL_TLS_REQUIRED, POL_TLS_OPTIONAL, POL_TLS__MAX };
/* Keys of one policy; the gateway embeds it as a map ("policies"). */
extern const struct cg_conf_schema pol_policy_schema;

/* Most entries in a policy's `mapping` list. */
#define POL_MAPPING_MAX 8

/* A policy ready for decisions. */
struct pol_policy {
	const char *name;
	enum pol_tls tls;
	int http_redirect;
	unsigned min_cipher_bits;
	enum pol_client_cert client_certificate;
	enum ca_map_source mapping[POL_MAPPING_MAX];	/* in the order tried */
	const char *map_directory[POL_MAPPING_MAX];	/* CA_SRC_DIRECTORY: its name */
	size_t map_dir_index[POL_MAPPING_MAX];	/* ... its index (the gateway's) */
	size_t nmapping;
	int require_account, require_strong_mapping;
	const struct cg_strv *allow_users;	/* empty: any account */
	const struct cg_strv *allow_groups;	/* empty: any; else a group's CN or DN */
	const char *authorizer;		/* backend name, "" for none (the gateway's) */
	int64_t hsts;
	int secure_cookies;
	unsigned export;		/* POL_EXPORT_* */
};

/* The policy of a location or site that names none: every key at its default. */
extern const struct pol_policy pol_default_policy;

/* Compiles c into p; errors (FILE:LINE) into errs. 0 or -1. */
int pol_policy_build(struct pol_policy *p, const struct pol_policy_conf *c,
                     struct cg_errors *errs);

/* What a request brings to the decision. */
struct pol_request {
	int tls;
	unsigned cipher_bits;		/* of the negotiated cipher's key */
	int cert_presented;
	enum ca_verdict verdict;	/* of the presented certificate */
	const struct ca_mapping *mapping;	/* NULL when the policy maps nothing */
};

/* An answer: status 0 to let the request on, else the HTTP status (301:
 * redirect to https) and the IIS sub-status ("7" of 403.7, NULL for none). */
struct pol_decision {
	int status;
	const char *detail;
};

/* The decisions of SPEC section 4, in order, up to the authorizer. A
 * directory that could not answer is the caller's 503, before this. */
struct pol_decision pol_decide(const struct pol_policy *p, const struct pol_request *rq);
/* The text of a status for error pages and logs: "Client certificate
 * required" for 403 "7"; NULL when the sub-status has no name. */
const char *pol_detail_text(int status, const char *detail);

#endif
