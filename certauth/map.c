/*
 * map.c: client certificates to accounts (SPEC sections 3 and 4): the
 * `accounts` keys, the one-to-one hash table and many-to-one rules built
 * from them with their `-t` checks, and the lookup made once per connection.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>

#include "certauth/certauth.h"

#define K(st, f)	offsetof(struct st, f)
#define NOSRC		-1
#define CERT_FILE_MAX	(1024 * 1024)

/* The schema's choice tables are indexed by these enums. */
_Static_assert(CA_FIELD_SUBJECT == 0 && CA_FIELD_ISSUER == 1 && CA_FIELD_SAN == 2,
    "field choices follow enum ca_map_field");
_Static_assert(CA_PERM_DENY == 1, "permission choices follow enum ca_permission");

const char *const ca_map_method_names[CA_MAP__MAX] = {
	"none", "one-to-one", "many-to-one", "directory",
};

/* ---- the `accounts` keys ---- */

static const char *const fields[] = { "subject", "issuer", "san", NULL };
static const char *const permissions[] = { "allow", "deny", NULL };

static const struct cg_conf_key one_keys[] = {
	{ "user", CG_CONF_STRING, K(ca_one_to_one_conf, user), NULL, CG_CONF_REQUIRED, 0, 0, NULL, NULL, "the account" },
	{ "certificate", CG_CONF_STRING, K(ca_one_to_one_conf, certificate), NULL, 0, 0, 0, NULL, NULL, "PEM or DER file, or base64 DER" },
	{ "sha256", CG_CONF_STRING, K(ca_one_to_one_conf, sha256), NULL, 0, 0, 0, NULL, NULL, "SHA-256 of the certificate, hex" },
	{ "issuer", CG_CONF_STRING, K(ca_one_to_one_conf, issuer), NULL, 0, 0, 0, NULL, NULL, "issuer DN, with serial or subject" },
	{ "serial", CG_CONF_STRING, K(ca_one_to_one_conf, serial), NULL, 0, 0, 0, NULL, NULL, "serial number, hex" },
	{ "ski", CG_CONF_STRING, K(ca_one_to_one_conf, ski), NULL, 0, 0, 0, NULL, NULL, "subject key identifier, hex" },
	{ "public_key_sha256", CG_CONF_STRING, K(ca_one_to_one_conf, public_key_sha256), NULL, 0, 0, 0, NULL, NULL, "SHA-256 of the SubjectPublicKeyInfo, hex" },
	{ "sid", CG_CONF_STRING, K(ca_one_to_one_conf, sid), NULL, 0, 0, 0, NULL, NULL, "S-1-5-..." },
	{ "upn", CG_CONF_STRING, K(ca_one_to_one_conf, upn), NULL, 0, 0, 0, NULL, NULL, "SAN user principal name" },
	{ "email", CG_CONF_STRING, K(ca_one_to_one_conf, email), NULL, 0, 0, 0, NULL, NULL, "SAN rfc822Name" },
	{ "subject", CG_CONF_STRING, K(ca_one_to_one_conf, subject), NULL, 0, 0, 0, NULL, NULL, "subject DN (RFC 4514)" },
	{ "enabled", CG_CONF_BOOL, K(ca_one_to_one_conf, enabled), "true", 0, 0, 0, NULL, NULL, NULL },
};
static const struct cg_conf_schema one_schema = {
	"one-to-one entry", sizeof(struct ca_one_to_one_conf), one_keys, CG_NELEM(one_keys),
	K(ca_one_to_one_conf, src), NOSRC,
};

static const struct cg_conf_key rule_keys[] = {
	{ "field", CG_CONF_ENUM, K(ca_rule_conf, field), NULL, CG_CONF_REQUIRED, 0, 0, fields, NULL, NULL },
	{ "subfield", CG_CONF_STRING, K(ca_rule_conf, subfield), NULL, CG_CONF_REQUIRED, 0, 0, NULL, NULL, "CN, OU ... or email, dns, upn, uri" },
	{ "match", CG_CONF_STRING, K(ca_rule_conf, match), NULL, CG_CONF_REQUIRED, 0, 0, NULL, NULL, "whole value, '*' for any run" },
	{ "case_sensitive", CG_CONF_BOOL, K(ca_rule_conf, case_sensitive), "true", 0, 0, 0, NULL, NULL, NULL },
};
static const struct cg_conf_schema rule_schema = {
	"rule", sizeof(struct ca_rule_conf), rule_keys, CG_NELEM(rule_keys),
	K(ca_rule_conf, src), NOSRC,
};

static const struct cg_conf_key many_keys[] = {
	{ "name", CG_CONF_STRING, K(ca_many_to_one_conf, name), NULL, CG_CONF_REQUIRED, 0, 0, NULL, NULL, NULL },
	{ "permission", CG_CONF_ENUM, K(ca_many_to_one_conf, permission), "allow", 0, 0, 0, permissions, NULL, NULL },
	{ "user", CG_CONF_STRING, K(ca_many_to_one_conf, user), NULL, 0, 0, 0, NULL, NULL, "the account (allow only)" },
	{ "rules", CG_CONF_LIST, K(ca_many_to_one_conf, rules), NULL, 0, 0, 0, NULL, &rule_schema, "all must match" },
};
static const struct cg_conf_schema many_schema = {
	"many-to-one mapping", sizeof(struct ca_many_to_one_conf), many_keys, CG_NELEM(many_keys),
	K(ca_many_to_one_conf, src), NOSRC,
};

static const struct cg_conf_key accounts_keys[] = {
	{ "one_to_one", CG_CONF_LIST, K(ca_accounts_conf, one_to_one), NULL, 0, 0, 0, NULL, &one_schema, NULL },
	{ "many_to_one", CG_CONF_LIST, K(ca_accounts_conf, many_to_one), NULL, 0, 0, 0, NULL, &many_schema, NULL },
};
const struct cg_conf_schema ca_accounts_schema = {
	"accounts", sizeof(struct ca_accounts_conf), accounts_keys, CG_NELEM(accounts_keys),
	NOSRC, NOSRC,
};

/* ---- attribute types ---- */

/*
 * The names a DN may spell a type with: RFC 4514 and OpenSSL (what
 * mod_ssl, and so facts.c, print), and Windows' (S, E, T, G, I), since
 * IIS administrators paste DNs from Windows dialogs.
 */
struct attr_type {
	const char *name;	/* canonical: SPEC section 4's spelling */
	const char *oid;
	const char *alias[3];
	int rule;		/* allowed as a many-to-one subfield */
};

static const struct attr_type attr_types[] = {
	{ "CN", "2.5.4.3", { "commonName" }, 1 },
	{ "SN", "2.5.4.4", { "surname" }, 1 },
	{ "serialNumber", "2.5.4.5", { NULL }, 1 },
	{ "C", "2.5.4.6", { "countryName" }, 1 },
	{ "L", "2.5.4.7", { "localityName" }, 1 },
	{ "ST", "2.5.4.8", { "stateOrProvinceName", "S" }, 1 },
	{ "street", "2.5.4.9", { "streetAddress" }, 0 },
	{ "O", "2.5.4.10", { "organizationName" }, 1 },
	{ "OU", "2.5.4.11", { "organizationalUnitName" }, 1 },
	{ "title", "2.5.4.12", { "T" }, 1 },
	{ "description", "2.5.4.13", { NULL }, 0 },
	{ "businessCategory", "2.5.4.15", { NULL }, 0 },
	{ "postalCode", "2.5.4.17", { NULL }, 0 },
	{ "postOfficeBox", "2.5.4.18", { "POBox" }, 0 },
	{ "telephoneNumber", "2.5.4.20", { "Phone" }, 0 },
	{ "name", "2.5.4.41", { NULL }, 0 },
	{ "GN", "2.5.4.42", { "givenName", "G" }, 1 },
	{ "initials", "2.5.4.43", { "I" }, 0 },
	{ "generationQualifier", "2.5.4.44", { NULL }, 0 },
	{ "dnQualifier", "2.5.4.46", { NULL }, 0 },
	{ "pseudonym", "2.5.4.65", { NULL }, 0 },
	{ "role", "2.5.4.72", { NULL }, 0 },
	{ "organizationIdentifier", "2.5.4.97", { NULL }, 0 },
	{ "unstructuredName", "1.2.840.113549.1.9.2", { NULL }, 0 },
	{ "DC", "0.9.2342.19200300.100.1.25", { "domainComponent" }, 1 },
	{ "UID", "0.9.2342.19200300.100.1.1", { "userid" }, 1 },
	{ "E", "1.2.840.113549.1.9.1", { "emailAddress", "EMAIL" }, 1 },
	{ "jurisdictionL", "1.3.6.1.4.1.311.60.2.1.1", { "jurisdictionLocalityName" }, 0 },
	{ "jurisdictionST", "1.3.6.1.4.1.311.60.2.1.2", { "jurisdictionStateOrProvinceName" }, 0 },
	{ "jurisdictionC", "1.3.6.1.4.1.311.60.2.1.3", { "jurisdictionCountryName" }, 0 },
};

enum san_kind { SAN_EMAIL, SAN_DNS, SAN_UPN, SAN_URI, SAN__MAX };
static const char *const san_kinds[SAN__MAX] = { "email", "dns", "upn", "uri" };

/* The index in attr_types of a name, alias or dotted OID; -1 if unknown. */
static int
attr_lookup(const char *s, size_t len)
{
	size_t i, j;

	for (i = 0; i < CG_NELEM(attr_types); i++) {
		const struct attr_type *t = &attr_types[i];

		if (cg_strcaseeq(s, len, t->name, strlen(t->name)) ||
		    (len == strlen(t->oid) && memcmp(s, t->oid, len) == 0))
			return (int)i;
		for (j = 0; j < CG_NELEM(t->alias) && t->alias[j]; j++)
			if (cg_strcaseeq(s, len, t->alias[j], strlen(t->alias[j])))
				return (int)i;
	}
	return -1;
}

static int
isdigit_(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int
isalpha_(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ASCII only: the locale must not decide who a client is. */
static unsigned char
fold(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* ---- distinguished names ---- */

/*
 * Canonical form of a DN, shared by the configuration and certificates:
 * RDNs most specific first, each "TYPE=value" joined by ','; TYPE is the
 * table's name for a known type (so "cn", "commonName", "2.5.4.3" and
 * "OID.2.5.4.3" agree), an unknown keyword in upper case, an unknown OID
 * as written; the value is raw bytes with only ',', '+', '\' and NUL
 * written \XX, which is enough to make the form unambiguous. A multi-valued
 * RDN (A+B) counts as its attributes in the order written: facts.c lists
 * attributes without their RDN grouping, so it cannot be compared as a set.
 */
static void
canon_type(struct cg_buf *out, const char *s, size_t len)
{
	int t = attr_lookup(s, len);
	uint8_t *p;
	size_t i;

	if (t >= 0) {
		cg_buf_append(out, attr_types[t].name, strlen(attr_types[t].name));
		return;
	}
	p = cg_buf_reserve(out, len);
	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 'a' + 'A' : s[i]);
	out->len += len;
}

static void
canon_value(struct cg_buf *out, const uint8_t *v, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	uint8_t *p = cg_buf_reserve(out, len * 3);
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		if (v[i] == ',' || v[i] == '+' || v[i] == '\\' || v[i] == '\0') {
			p[n++] = '\\';
			p[n++] = (uint8_t)hex[v[i] >> 4];
			p[n++] = (uint8_t)hex[v[i] & 0xf];
		} else
			p[n++] = v[i];
	}
	out->len += n;
}

static void
canon_ava(struct cg_buf *out, const char *type, size_t tlen, const uint8_t *v, size_t vlen,
    int first)
{
	if (!first)
		cg_buf_append(out, ",", 1);
	canon_type(out, type, tlen);
	cg_buf_append(out, "=", 1);
	canon_value(out, v, vlen);
}

/* A certificate's DN: facts.c lists it most general first. */
static void
dn_canon_attrs(const struct ca_dn *dn, struct cg_buf *out)
{
	const struct ca_dn_attr *a;
	size_t i;

	for (i = dn->n; i > 0; i--) {
		a = &dn->attrs[i - 1];
		canon_ava(out, a->name ? a->name : "", a->name ? strlen(a->name) : 0,
		    (const uint8_t *)(a->value ? a->value : ""), a->value ? strlen(a->value) : 0,
		    i == dn->n);
	}
}

/*
 * "#hex" is the BER of the value; a string type's contents stand for the
 * string itself, so "CN=#0C05416C696365" is "CN=Alice". Other types stay
 * as their encoding.
 */
static void
ber_unwrap(struct cg_buf *val)
{
	const uint8_t *p = val->data;
	size_t len = val->len, hl, cl;

	if (len < 2)
		return;
	switch (p[0]) {
	case 0x0c: case 0x12: case 0x13: case 0x14: case 0x16: case 0x1a:
		break;
	default:
		return;
	}
	if (p[1] < 0x80) {
		hl = 2;
		cl = p[1];
	} else if (p[1] == 0x81 && len >= 3) {
		hl = 3;
		cl = p[2];
	} else if (p[1] == 0x82 && len >= 4) {
		hl = 4;
		cl = (size_t)p[2] << 8 | p[3];
	} else
		return;
	if (hl + cl != len)
		return;
	memmove(val->data, p + hl, cl);
	val->len = cl;
}

/* After a backslash at s[*i]: a hex pair or one escaped character. */
static int
dn_escape(const char *s, size_t len, size_t *i, struct cg_buf *val)
{
	unsigned char c;
	int hi, lo;

	if (*i + 1 >= len)
		return -1;
	c = (unsigned char)s[*i + 1];
	if (*i + 2 < len && (hi = cg_hexval(c)) >= 0 && (lo = cg_hexval((unsigned char)s[*i + 2])) >= 0) {
		c = (unsigned char)(hi << 4 | lo);
		*i += 3;
	} else if (c > 0x20 && c < 0x7f && !isalpha_(c) && !isdigit_(c)) {
		*i += 2;
	} else if (c == ' ') {
		*i += 2;
	} else
		return -1;
	cg_buf_append(val, &c, 1);
	return 0;
}

/*
 * Parses an RFC 4514 DN into its canonical form (appended to out).
 * Lenient where a name is still the same name: spaces around ',', '+' and
 * '=' and trailing unescaped spaces are dropped, values may be quoted as
 * Windows writes them, any punctuation may be escaped, "OID." prefixes.
 * Untrusted-safe: one pass, no recursion, output a few bytes per input
 * byte at most. 0, or -1 with *err set.
 */
static int
dn_canon(const char *s, size_t len, struct cg_buf *out, const char **err)
{
	struct cg_buf val = { NULL, 0, 0, 0 };
	size_t i = 0, t0, tlen, keep;
	int n = 0, hi, lo;

	while (i < len && s[i] == ' ')
		i++;
	if (i == len)
		return 0;
	for (;;) {
		while (i < len && s[i] == ' ')
			i++;
		t0 = i;
		if (i + 4 < len && cg_strcaseeq(s + i, 4, "oid.", 4) &&
		    isdigit_((unsigned char)s[i + 4]))
			t0 = i += 4;
		if (i < len && isdigit_((unsigned char)s[i])) {
			while (i < len && (isdigit_((unsigned char)s[i]) || s[i] == '.')) {
				if (s[i] == '.' && (i + 1 == len ||
				    !isdigit_((unsigned char)s[i + 1]))) {
					*err = "bad OID";
					goto fail;
				}
				i++;
			}
		} else if (i < len && isalpha_((unsigned char)s[i])) {
			while (i < len && (isalpha_((unsigned char)s[i]) ||
			    isdigit_((unsigned char)s[i]) || s[i] == '-'))
				i++;
		} else {
			*err = "expected an attribute type";
			goto fail;
		}
		tlen = i - t0;
		while (i < len && s[i] == ' ')
			i++;
		if (i == len || s[i] != '=') {
			*err = "expected '=' after the attribute type";
			goto fail;
		}
		i++;
		while (i < len && s[i] == ' ')
			i++;
		cg_buf_clear(&val);
		if (i < len && s[i] == '#') {
			for (i++; i + 1 < len && (hi = cg_hexval((unsigned char)s[i])) >= 0 &&
			    (lo = cg_hexval((unsigned char)s[i + 1])) >= 0; i += 2) {
				uint8_t b = (uint8_t)(hi << 4 | lo);

				cg_buf_append(&val, &b, 1);
			}
			if (val.len == 0 || (i < len && cg_hexval((unsigned char)s[i]) >= 0)) {
				*err = "bad #hex value";
				goto fail;
			}
			ber_unwrap(&val);
		} else if (i < len && s[i] == '"') {
			for (i++;;) {
				if (i == len || s[i] == '\0') {
					*err = "unterminated quoted value";
					goto fail;
				}
				if (s[i] == '"')
					break;
				if (s[i] == '\\') {
					if (dn_escape(s, len, &i, &val) < 0) {
						*err = "bad escape";
						goto fail;
					}
					continue;
				}
				cg_buf_append(&val, s + i, 1);
				i++;
			}
			i++;
		} else {
			keep = 0;
			while (i < len && s[i] != ',' && s[i] != '+') {
				if (s[i] == '\\') {
					if (dn_escape(s, len, &i, &val) < 0) {
						*err = "bad escape";
						goto fail;
					}
					keep = val.len;
					continue;
				}
				if (s[i] == '\0' || s[i] == '"') {
					*err = s[i] ? "unescaped '\"' in a value" : "NUL in a value";
					goto fail;
				}
				cg_buf_append(&val, s + i, 1);
				if (s[i++] != ' ')
					keep = val.len;
			}
			val.len = keep;
		}
		canon_ava(out, s + t0, tlen, val.data, val.len, n++ == 0);
		while (i < len && s[i] == ' ')
			i++;
		if (i == len)
			break;
		if (s[i] != ',' && s[i] != '+') {
			*err = "expected ',' or '+' after a value";
			goto fail;
		}
		i++;
	}
	cg_buf_free(&val);
	return 0;
fail:
	cg_buf_free(&val);
	return -1;
}

/* ---- '*' patterns ---- */

/*
 * Whether the whole of v matches p, where '*' is any run of bytes. The
 * piece before the first '*' must start v, the piece after the last must
 * end it, and each piece between is taken at its leftmost place after the
 * previous one: an earlier place never leaves the later pieces less room,
 * so nothing is ever retried. memmem finds each piece in linear time
 * (glibc: two-way, or a bounded shift table for short pieces), so a
 * hostile value costs O(len(v) + len(p)) per piece, never backtracking.
 */
static int
glob_exact(const char *p, size_t plen, const char *v, size_t vlen)
{
	const char *first, *last, *at, *end;
	size_t pre, suf, i, j;

	if ((first = memchr(p, '*', plen)) == NULL)
		return plen == vlen && memcmp(p, v, plen) == 0;
	last = memrchr(p, '*', plen);
	pre = (size_t)(first - p);
	suf = plen - (size_t)(last - p) - 1;
	if (pre + suf > vlen || memcmp(p, v, pre) != 0 ||
	    memcmp(last + 1, v + vlen - suf, suf) != 0)
		return 0;
	at = v + pre;
	end = v + vlen - suf;
	for (i = pre + 1; i < (size_t)(last - p); i = j + 1) {
		for (j = i; p[j] != '*'; j++)
			;
		if (j == i)
			continue;
		if ((at = memmem(at, (size_t)(end - at), p + i, j - i)) == NULL)
			return 0;
		at += j - i;
	}
	return 1;
}

/* Case-blind matching folds both sides (ASCII only) and matches exactly. */
static int
glob_match(const char *p, size_t plen, const char *v, size_t vlen, int icase)
{
	char *buf;
	size_t i;
	int r;

	if (!icase)
		return glob_exact(p, plen, v, vlen);
	buf = cg_malloc(plen + vlen + 1);
	for (i = 0; i < plen; i++)
		buf[i] = (char)fold((unsigned char)p[i]);
	for (i = 0; i < vlen; i++)
		buf[plen + i] = (char)fold((unsigned char)v[i]);
	r = glob_exact(buf, plen, buf + plen, vlen);
	free(buf);
	return r;
}

/* ---- hex values and other keys ---- */

/*
 * Hex digits of either case, with or without a ':' or ' ' between bytes
 * (certtool writes colons, Windows spaces). 0, or -1: not hex, or longer
 * than cap bytes.
 */
static int
hex_decode(const char *s, uint8_t *out, size_t cap, size_t *outlen)
{
	size_t n = 0;
	int hi, lo;

	while (*s) {
		if (n > 0 && (*s == ':' || *s == ' '))
			s++;
		if ((hi = cg_hexval((unsigned char)s[0])) < 0 ||
		    (lo = cg_hexval((unsigned char)s[1])) < 0 || n == cap)
			return -1;
		out[n++] = (uint8_t)(hi << 4 | lo);
		s += 2;
	}
	*outlen = n;
	return n > 0 ? 0 : -1;
}

static int
sid_valid(const char *s)
{
	size_t i, digits = 0, parts = 0;

	if ((s[0] != 'S' && s[0] != 's') || s[1] != '-')
		return 0;
	for (i = 2;; i++) {
		if (isdigit_((unsigned char)s[i])) {
			if (++digits > 10)
				return 0;
			continue;
		}
		if (digits == 0 || (s[i] != '-' && s[i] != '\0'))
			return 0;
		parts++;
		digits = 0;
		if (s[i] == '\0')
			break;
	}
	return parts >= 2;
}

/* Case-insensitive strings (sid, upn, email) are keyed folded. */
static void
append_folded(struct cg_buf *b, const char *s, size_t len)
{
	uint8_t *p = cg_buf_reserve(b, len);
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = fold((unsigned char)s[i]);
	b->len += len;
}

/* Serials are integers: a leading 00 the DER needed for the sign is not
 * part of the number, and certtool prints it while others do not. */
static void
append_serial(struct cg_buf *b, const uint8_t *s, size_t len)
{
	uint8_t n;

	while (len > 1 && s[0] == 0) {
		s++;
		len--;
	}
	n = (uint8_t)len;
	cg_buf_append(b, &n, 1);
	cg_buf_append(b, s, len);
}

/*
 * `certificate`: a file (PEM, first certificate, or DER) if one is there,
 * else the base64 of the DER as IIS stores it. Its SHA-256 is the key, as
 * for `sha256`. 0, or -1 with a message in err.
 */
static int
certificate_sha256(const char *v, const char *dir, uint8_t md[32], char *err, size_t errlen)
{
	gnutls_datum_t in, der = { NULL, 0 };
	gnutls_x509_crt_t crt = NULL;
	char *path, *b64 = NULL;
	uint8_t *data;
	size_t len = 0, i, n;
	int rc, ferr = 0, ret = -1;

	path = v[0] == '/' || dir == NULL ? cg_strdup(v) : cg_printf("%s/%s", dir, v);
	if ((data = cg_read_file(path, CERT_FILE_MAX, &len, &ferr, NULL)) != NULL) {
		data[len] = '\0';
		in.data = data;
		in.size = (unsigned)len;
		if (memmem(data, len, "-----BEGIN", 10) != NULL) {
			if ((rc = gnutls_pem_base64_decode2("CERTIFICATE", &in, &der)) < 0) {
				snprintf(err, errlen, "%s: no PEM certificate: %s (%d)", path,
				    gnutls_strerror(rc), rc);
				goto out;
			}
		} else {
			der.data = gnutls_malloc(len ? len : 1);
			if (der.data == NULL)
				cg_fatal("out of memory");
			memcpy(der.data, data, len);
			der.size = (unsigned)len;
		}
	} else if (ferr == ENOENT || ferr == ENOTDIR || ferr == ENAMETOOLONG) {
		/* Not a file: base64, line breaks and spaces allowed. */
		b64 = cg_malloc(strlen(v) + 1);
		for (i = n = 0; v[i]; i++)
			if (v[i] != ' ' && v[i] != '\n' && v[i] != '\r' && v[i] != '\t')
				b64[n++] = v[i];
		in.data = (unsigned char *)b64;
		in.size = (unsigned)n;
		if (n == 0 || (rc = gnutls_base64_decode2(&in, &der)) < 0) {
			snprintf(err, errlen, "neither a file (%s: %s) nor base64", path,
			    strerror(ferr));
			goto out;
		}
	} else {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(ferr));
		goto out;
	}
	if ((rc = gnutls_x509_crt_init(&crt)) < 0)
		cg_fatal("gnutls_x509_crt_init: %s (%d)", gnutls_strerror(rc), rc);
	if ((rc = gnutls_x509_crt_import(crt, &der, GNUTLS_X509_FMT_DER)) < 0) {
		snprintf(err, errlen, "%s is not a certificate: %s (%d)",
		    data ? path : "the base64 value", gnutls_strerror(rc), rc);
		goto out;
	}
	if ((rc = gnutls_hash_fast(GNUTLS_DIG_SHA256, der.data, der.size, md)) < 0) {
		snprintf(err, errlen, "SHA-256: %s (%d)", gnutls_strerror(rc), rc);
		goto out;
	}
	ret = 0;
out:
	if (crt)
		gnutls_x509_crt_deinit(crt);
	gnutls_free(der.data);
	free(data);
	free(b64);
	free(path);
	return ret;
}

/* ---- the mapper ---- */

/* How an entry is keyed, in the order of SPEC section 3: strong first. */
enum o2o_key {
	O2O_CERTIFICATE, O2O_SHA256, O2O_SERIAL, O2O_SKI, O2O_SPKI, O2O_SID,
	O2O_UPN, O2O_EMAIL, O2O_SUBJECT, O2O_SUBJECT_ISSUER, O2O__MAX
};
static const char *const o2o_key_names[O2O__MAX] = {
	"certificate", "sha256", "issuer+serial", "ski", "public_key_sha256", "sid",
	"upn", "email", "subject", "subject+issuer",
};
#define O2O_STRONG(k)	((k) <= O2O_SID)

/*
 * The table's key spaces. `certificate` and `sha256` share one: both name
 * a certificate by its SHA-256, so the same certificate twice is a
 * duplicate whichever way it is written.
 */
enum key_space {
	KS_SHA256, KS_SERIAL, KS_SKI, KS_SPKI, KS_SID, KS_UPN, KS_EMAIL, KS_SUBJECT,
	KS_SUBJECT_ISSUER, KS__MAX
};
static const uint8_t key_space[O2O__MAX] = {
	KS_SHA256, KS_SHA256, KS_SERIAL, KS_SKI, KS_SPKI, KS_SID, KS_UPN, KS_EMAIL,
	KS_SUBJECT, KS_SUBJECT_ISSUER,
};

struct o2o_entry {
	size_t user;		/* offset in pool */
	size_t index;		/* 0-based position in one_to_one */
	enum o2o_key how;
};

/* Open addressing, linear probing, at most half full. */
struct slot {
	uint64_t hash;
	size_t key, keylen;	/* in pool */
	size_t entry;		/* 1 + index in entries; 0: empty */
};

struct rule {
	enum ca_map_field field;
	int sub;		/* attr_types index, or SAN_* */
	char *pat;
	size_t plen;
	int icase;
};

struct m2o {
	char *name, *user;
	int deny, valid;
	struct rule *rules;
	size_t nrules;
};

struct ca_mapper {
	struct o2o_entry *entries;
	size_t nentries;
	struct slot *slots;
	size_t nslots;		/* a power of two */
	struct cg_buf pool;	/* keys and user names */
	struct m2o *maps;
	size_t nmaps;
};

/* FNV-1a with a final mix: the keys are the administrator's, a probe is
 * the client's, so clusters stay as short as the load factor makes them. */
static uint64_t
hash(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

/* The entry keyed by key, or NULL. */
static const struct o2o_entry *
lookup(const struct ca_mapper *m, const uint8_t *key, size_t len)
{
	uint64_t h;
	size_t i;
	const struct slot *s;

	if (m->nslots == 0)
		return NULL;
	h = hash(key, len);
	for (i = h & (m->nslots - 1);; i = (i + 1) & (m->nslots - 1)) {
		s = &m->slots[i];
		if (s->entry == 0)
			return NULL;
		if (s->hash == h && s->keylen == len &&
		    memcmp(m->pool.data + s->key, key, len) == 0)
			return &m->entries[s->entry - 1];
	}
}

/* Adds key for entry e; the entry already there on a duplicate. */
static const struct o2o_entry *
insert(struct ca_mapper *m, const uint8_t *key, size_t len, size_t e)
{
	const struct o2o_entry *dup;
	struct slot *s;
	uint64_t h;
	size_t i;

	if ((dup = lookup(m, key, len)) != NULL)
		return dup;
	h = hash(key, len);
	for (i = h & (m->nslots - 1); m->slots[i].entry != 0; i = (i + 1) & (m->nslots - 1))
		;
	s = &m->slots[i];
	s->hash = h;
	s->key = m->pool.len;
	s->keylen = len;
	s->entry = e + 1;
	cg_buf_append(&m->pool, key, len);
	return NULL;
}

static void
where(const config_setting_t *s, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%d", s && config_setting_source_file(s) ?
	    config_setting_source_file(s) : "(config)",
	    s ? (int)config_setting_source_line(s) : 0);
}

/* The key names of enum o2o_key, as written (subject+issuer is subject). */
static const char *const o2o_conf_keys[] = {
	"certificate", "sha256", "serial", "ski", "public_key_sha256", "sid", "upn",
	"email", "subject",
};

static char *
o2o_value(const struct ca_one_to_one_conf *e, size_t k)
{
	char *const v[] = {
		e->certificate, e->sha256, e->serial, e->ski, e->public_key_sha256, e->sid,
		e->upn, e->email, e->subject,
	};
	_Static_assert(CG_NELEM(v) == CG_NELEM(o2o_conf_keys), "one value a key");
	return v[k] ? v[k] : "";
}

/* The table key of entry e into key; 0, or -1 after adding an error. */
static int
entry_key(const struct ca_one_to_one_conf *e, enum o2o_key how, const char *dir,
    struct cg_buf *key, struct cg_errors *errs)
{
	const char *v = o2o_value(e, how == O2O_SUBJECT_ISSUER ? O2O_SUBJECT : (size_t)how);
	const char *k = o2o_conf_keys[how == O2O_SUBJECT_ISSUER ? O2O_SUBJECT : how];
	const char *derr = NULL;
	uint8_t bin[64];
	char msg[512];
	size_t n;
	uint8_t ks = key_space[how];

#define HEXERR(what) cg_error_add(errs, cg_conf_setting(&e->src, k), \
	    "%s: \"%s\" is not %s", k, v, what)
	cg_buf_clear(key);
	cg_buf_append(key, &ks, 1);
	switch (how) {
	case O2O_CERTIFICATE:
		if (certificate_sha256(v, dir, bin, msg, sizeof(msg)) < 0) {
			cg_error_add(errs, cg_conf_setting(&e->src, k), "certificate: %s", msg);
			return -1;
		}
		cg_buf_append(key, bin, 32);
		return 0;
	case O2O_SHA256:
	case O2O_SPKI:
		if (hex_decode(v, bin, sizeof(bin), &n) < 0 || n != 32) {
			HEXERR("a SHA-256 in hex (32 bytes)");
			return -1;
		}
		cg_buf_append(key, bin, n);
		return 0;
	case O2O_SKI:
		if (hex_decode(v, bin, sizeof(bin), &n) < 0) {
			HEXERR("hex (1 to 64 bytes)");
			return -1;
		}
		cg_buf_append(key, bin, n);
		return 0;
	case O2O_SERIAL:
		if (hex_decode(v, bin, sizeof(bin), &n) < 0) {
			HEXERR("hex (1 to 64 bytes)");
			return -1;
		}
		append_serial(key, bin, n);
		if (dn_canon(e->issuer, strlen(e->issuer), key, &derr) < 0) {
			cg_error_add(errs, cg_conf_setting(&e->src, "issuer"),
			    "issuer: not a distinguished name: %s", derr);
			return -1;
		}
		return 0;
	case O2O_SID:
		if (!sid_valid(v)) {
			cg_error_add(errs, cg_conf_setting(&e->src, k),
			    "sid: \"%s\" is not a SID (S-1-5-21-...)", v);
			return -1;
		}
		append_folded(key, v, strlen(v));
		return 0;
	case O2O_UPN:
	case O2O_EMAIL:
		append_folded(key, v, strlen(v));
		return 0;
	case O2O_SUBJECT:
	case O2O_SUBJECT_ISSUER:
		if (dn_canon(v, strlen(v), key, &derr) < 0) {
			cg_error_add(errs, cg_conf_setting(&e->src, k),
			    "subject: not a distinguished name: %s", derr);
			return -1;
		}
		if (how == O2O_SUBJECT)
			return 0;
		/* The canonical form escapes NUL, so it cannot be confused. */
		cg_buf_append(key, "", 1);
		if (dn_canon(e->issuer, strlen(e->issuer), key, &derr) < 0) {
			cg_error_add(errs, cg_conf_setting(&e->src, "issuer"),
			    "issuer: not a distinguished name: %s", derr);
			return -1;
		}
		return 0;
	case O2O__MAX:
		break;
	}
#undef HEXERR
	cg_fatal("map: bad key kind %d", how);
}

/*
 * One entry: exactly one kind of key (issuer only beside serial or
 * subject). A disabled entry is checked like the others, so a typo is
 * found before someone enables it, but it is not in the table and so is
 * never a duplicate.
 */
static void
add_one(struct ca_mapper *m, const struct ca_accounts_conf *c, size_t idx, const char *dir,
    struct cg_buf *key, struct cg_errors *errs)
{
	const struct ca_one_to_one_conf *e = CG_VEC_AT(c->one_to_one, struct ca_one_to_one_conf,
	    idx), *first;
	const struct o2o_entry *dup;
	struct o2o_entry *ent;
	enum o2o_key how = O2O__MAX;
	char at[300];
	size_t k;

	for (k = 0; k < CG_NELEM(o2o_conf_keys); k++) {
		if (o2o_value(e, k)[0] == '\0')
			continue;
		if (how != O2O__MAX) {
			cg_error_add(errs, cg_conf_setting(&e->src, o2o_conf_keys[k]),
			    "one-to-one entry has two keys: %s and %s",
			    o2o_conf_keys[how == O2O_SUBJECT_ISSUER ? O2O_SUBJECT : how],
			    o2o_conf_keys[k]);
			return;
		}
		how = (enum o2o_key)k;
	}
	if (how == O2O__MAX) {
		cg_error_add(errs, e->src.setting, "one-to-one entry has no key: one of "
		    "certificate, sha256, issuer+serial, ski, public_key_sha256, sid, upn, "
		    "email, subject");
		return;
	}
	if (e->user == NULL || e->user[0] == '\0') {
		cg_error_add(errs, cg_conf_setting(&e->src, "user"), "user: empty");
		return;
	}
	if (e->issuer && e->issuer[0] != '\0') {
		if (how == O2O_SUBJECT)
			how = O2O_SUBJECT_ISSUER;
		else if (how != O2O_SERIAL) {
			cg_error_add(errs, cg_conf_setting(&e->src, "issuer"),
			    "issuer: only with serial or subject");
			return;
		}
	} else if (how == O2O_SERIAL) {
		cg_error_add(errs, cg_conf_setting(&e->src, "serial"),
		    "serial needs issuer: serial numbers are unique per issuer only");
		return;
	}
	if (entry_key(e, how, dir, key, errs) < 0 || !e->enabled)
		return;
	if ((dup = insert(m, key->data, key->len, m->nentries)) != NULL) {
		first = CG_VEC_AT(c->one_to_one, struct ca_one_to_one_conf, dup->index);
		where(cg_conf_setting(&first->src, o2o_conf_keys[dup->how ==
		    O2O_SUBJECT_ISSUER ? O2O_SUBJECT : dup->how]), at, sizeof(at));
		cg_error_add(errs, cg_conf_setting(&e->src, o2o_conf_keys[how ==
		    O2O_SUBJECT_ISSUER ? O2O_SUBJECT : how]),
		    "duplicate one-to-one key: %s here is the same as %s of entry %zu (%s) at %s",
		    o2o_key_names[how], o2o_key_names[dup->how], dup->index + 1,
		    (const char *)m->pool.data + dup->user, at);
		return;
	}
	ent = &m->entries[m->nentries++];
	ent->index = idx;
	ent->how = how;
	ent->user = m->pool.len;
	cg_buf_append(&m->pool, e->user, strlen(e->user) + 1);
}

static int
subfield_index(enum ca_map_field field, const char *s)
{
	size_t i;
	int t;

	if (field == CA_FIELD_SAN) {
		for (i = 0; i < CG_NELEM(san_kinds); i++)
			if (cg_strcaseeq(s, strlen(s), san_kinds[i], strlen(san_kinds[i])))
				return (int)i;
		return -1;
	}
	t = attr_lookup(s, strlen(s));
	return t >= 0 && attr_types[t].rule ? t : -1;
}

static void
add_many(struct m2o *mm, const struct ca_many_to_one_conf *mc, struct cg_errors *errs)
{
	const struct ca_rule_conf *rc;
	struct rule *r;
	size_t i, before = errs->n;

	mm->name = cg_strdup(mc->name ? mc->name : "");
	mm->deny = mc->permission == CA_PERM_DENY;
	mm->user = cg_strdup(mc->user ? mc->user : "");
	if (mm->deny && mm->user[0] != '\0')
		cg_error_add(errs, cg_conf_setting(&mc->src, "user"),
		    "mapping \"%s\": a deny mapping has no user", mm->name);
	if (!mm->deny && mm->user[0] == '\0')
		cg_error_add(errs, cg_conf_setting(&mc->src, "user"),
		    "mapping \"%s\": an allow mapping needs a user", mm->name);
	if (mc->rules.n == 0)
		cg_error_add(errs, cg_conf_setting(&mc->src, "rules"),
		    "mapping \"%s\" has no rules: it would match every certificate", mm->name);
	mm->rules = cg_calloc(mc->rules.n ? mc->rules.n : 1, sizeof(*mm->rules));
	for (i = 0; i < mc->rules.n; i++) {
		rc = CG_VEC_AT(mc->rules, struct ca_rule_conf, i);
		r = &mm->rules[mm->nrules++];
		r->field = (enum ca_map_field)rc->field;
		r->pat = cg_strdup(rc->match ? rc->match : "");
		r->plen = strlen(r->pat);
		r->icase = !rc->case_sensitive;
		if ((r->sub = subfield_index(r->field, rc->subfield ? rc->subfield : "")) < 0)
			cg_error_add(errs, cg_conf_setting(&rc->src, "subfield"),
			    "subfield \"%s\" is not one of %s", rc->subfield ? rc->subfield : "",
			    r->field == CA_FIELD_SAN ? "email, dns, upn, uri" :
			    "CN, OU, O, L, ST, C, DC, UID, E, serialNumber, title, GN, SN");
	}
	mm->valid = errs->n == before;
}

/*
 * Whether rule a matches every certificate that rule b matches. Exact for
 * '*' patterns: with b's pattern read as plain text, each '*' of it is a
 * byte that a's literals cannot match (they hold no '*'), just like a run
 * of characters chosen to differ from them, so a matches that text iff it
 * matches everything b does. Case: an a that is case-blind, or has no
 * ASCII letter, is matched blind, which is exact; a case-sensitive a with
 * letters is only decided against a case-sensitive b or one without
 * letters, else taken not to cover b (assumed reachable, never reported).
 */
static int
has_alpha(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (isalpha_((unsigned char)s[i]))
			return 1;
	return 0;
}

static int
rule_covers(const struct rule *a, const struct rule *b)
{
	int blind;

	if (a->field != b->field || a->sub != b->sub)
		return 0;
	blind = a->icase || !has_alpha(a->pat, a->plen);
	if (!blind && b->icase && has_alpha(b->pat, b->plen))
		return 0;
	return glob_match(a->pat, a->plen, b->pat, b->plen, blind);
}

/*
 * Mapping b can never match when an earlier mapping a matches every
 * certificate b matches: each rule of a covers some rule of b. That is
 * also necessary (bar the case-blind corner of rule_covers): a
 * certificate can hold, for each rule of b, one value of its own chosen
 * outside every a rule that does not cover it. So the check decides
 * exactly for rules of the same field and subfield; rules on different
 * fields never cover each other.
 */
static void
check_preempted(const struct ca_mapper *m, const struct ca_accounts_conf *c,
    struct cg_errors *errs)
{
	const struct m2o *a, *b;
	const struct ca_many_to_one_conf *ac, *bc;
	char at[300];
	size_t i, j, ra, rb;

	for (j = 1; j < m->nmaps; j++) {
		b = &m->maps[j];
		if (!b->valid)
			continue;
		for (i = 0; i < j; i++) {
			a = &m->maps[i];
			if (!a->valid)
				continue;
			for (ra = 0; ra < a->nrules; ra++) {
				for (rb = 0; rb < b->nrules; rb++)
					if (rule_covers(&a->rules[ra], &b->rules[rb]))
						break;
				if (rb == b->nrules)
					break;
			}
			if (ra < a->nrules)
				continue;
			ac = CG_VEC_AT(c->many_to_one, struct ca_many_to_one_conf, i);
			bc = CG_VEC_AT(c->many_to_one, struct ca_many_to_one_conf, j);
			where(ac->src.setting, at, sizeof(at));
			cg_error_add(errs, bc->src.setting, "mapping \"%s\" can never match: "
			    "mapping \"%s\" (%s) at %s matches whenever it does", b->name, a->name,
			    a->deny ? "deny" : "allow", at);
			break;
		}
	}
}

struct ca_mapper *
ca_mapper_new(const struct ca_accounts_conf *c, const char *dir, struct cg_errors *errs)
{
	struct ca_mapper *m = cg_calloc(1, sizeof(*m));
	struct cg_buf key = { NULL, 0, 0, 0 };
	size_t before = errs->n, i;

	if (c->one_to_one.n > 0) {
		m->entries = cg_calloc(c->one_to_one.n, sizeof(*m->entries));
		for (m->nslots = 16; m->nslots < 2 * c->one_to_one.n; m->nslots *= 2)
			;
		m->slots = cg_calloc(m->nslots, sizeof(*m->slots));
	}
	for (i = 0; i < c->one_to_one.n; i++)
		add_one(m, c, i, dir, &key, errs);
	cg_buf_free(&key);
	if (c->many_to_one.n > 0)
		m->maps = cg_calloc(c->many_to_one.n, sizeof(*m->maps));
	for (i = 0; i < c->many_to_one.n; i++, m->nmaps++)
		add_many(&m->maps[i], CG_VEC_AT(c->many_to_one, struct ca_many_to_one_conf, i),
		    errs);
	check_preempted(m, c, errs);
	if (errs->n != before) {
		ca_mapper_free(m);
		return NULL;
	}
	return m;
}

void
ca_mapper_free(struct ca_mapper *m)
{
	size_t i, j;

	if (m == NULL)
		return;
	for (i = 0; i < m->nmaps; i++) {
		for (j = 0; j < m->maps[i].nrules; j++)
			free(m->maps[i].rules[j].pat);
		free(m->maps[i].rules);
		free(m->maps[i].name);
		free(m->maps[i].user);
	}
	free(m->maps);
	free(m->entries);
	free(m->slots);
	cg_buf_free(&m->pool);
	free(m);
}

/* ---- mapping a certificate ---- */

/*
 * explain's trace: ca_map and ca_map_trace run the same code, which only
 * writes lines when given a trace. Lines hold certificate values, so each
 * value is escaped and cut at TRACE_VALUE bytes and a line at TRACE_LINE
 * (ending "..."), however many values the certificate carries.
 */
#define TRACE_LINE	1024
#define TRACE_VALUE	96

struct tbuf {
	char s[TRACE_LINE];
	size_t len;
	int full;
};

struct trace {
	ca_map_trace_fn fn;
	void *ctx;
	struct tbuf line;
	struct tbuf miss;	/* the one-to-one lookups that found nothing */
	size_t nmiss;
};

static void tb_printf(struct tbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
tb_printf(struct tbuf *b, const char *fmt, ...)
{
	size_t room = sizeof(b->s) - b->len;
	va_list ap;
	int n;

	if (b->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->s + b->len, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n < room) {
		b->len += (size_t)n;
		return;
	}
	memcpy(b->s + sizeof(b->s) - 4, "...", 4);
	b->len = sizeof(b->s) - 1;
	b->full = 1;
}

/* Untrusted (or merely odd) text, escaped and cut; quoted if asked. */
static void
tb_text(struct tbuf *b, const char *v, int quote)
{
	char esc[TRACE_VALUE];

	cg_escape(esc, sizeof(esc), v, strlen(v));
	tb_printf(b, quote ? "\"%s\"" : "%s", esc);
}

static void
tb_clear(struct tbuf *b)
{
	b->s[0] = '\0';
	b->len = 0;
	b->full = 0;
}

static void
trace_emit(struct trace *t)
{
	t->fn(t->ctx, t->line.s);
	tb_clear(&t->line);
}

/* Notes a one-to-one lookup that found nothing; returns e. */
static const struct o2o_entry *
missed(struct trace *t, const struct o2o_entry *e, enum o2o_key how, const char *v)
{
	if (t == NULL || e != NULL)
		return e;
	tb_printf(&t->miss, "%s%s", t->nmiss++ ? ", " : "", o2o_key_names[how]);
	if (v != NULL) {
		tb_printf(&t->miss, " ");
		tb_text(&t->miss, v, 1);
	}
	return e;
}

/* The one-to-one line: what decided (why, or NULL), then the misses. */
static void
trace_one(struct trace *t, const char *why)
{
	if (why != NULL) {
		tb_printf(&t->line, "%s", why);
		if (t->nmiss > 0)
			tb_printf(&t->line, "; no entry for %s", t->miss.s);
	} else if (t->nmiss > 0)
		tb_printf(&t->line, "one-to-one: no entry for %s", t->miss.s);
	else
		tb_printf(&t->line, "one-to-one: no entries");
	trace_emit(t);
	tb_clear(&t->miss);
	t->nmiss = 0;
}

/* Keeps the better of best and e: strong first, then file order. */
static void
consider(const struct o2o_entry **best, const struct o2o_entry *e)
{
	if (e == NULL)
		return;
	if (*best == NULL || (O2O_STRONG(e->how) && !O2O_STRONG((*best)->how)) ||
	    (O2O_STRONG(e->how) == O2O_STRONG((*best)->how) && e->index < (*best)->index))
		*best = e;
}

static const struct o2o_entry *
probe(const struct ca_mapper *m, struct cg_buf *key, enum key_space ks, const void *v,
    size_t len, int folded)
{
	uint8_t k = (uint8_t)ks;

	cg_buf_clear(key);
	cg_buf_append(key, &k, 1);
	if (folded)
		append_folded(key, v, len);
	else
		cg_buf_append(key, v, len);
	return lookup(m, key->data, key->len);
}

static const struct o2o_entry *
map_one(const struct ca_mapper *m, const struct ca_facts *f, struct trace *t)
{
	const struct o2o_entry *best = NULL;
	struct cg_buf key = { NULL, 0, 0, 0 };
	uint8_t k;
	size_t i;

	if (m->nentries == 0)
		return NULL;
	consider(&best, missed(t, probe(m, &key, KS_SHA256, f->sha256, sizeof(f->sha256), 0),
	    O2O_SHA256, NULL));
	consider(&best, missed(t, probe(m, &key, KS_SPKI, f->spki_sha256,
	    sizeof(f->spki_sha256), 0), O2O_SPKI, NULL));
	if (f->ski_len > 0 && f->ski_len <= sizeof(f->ski))
		consider(&best, missed(t, probe(m, &key, KS_SKI, f->ski, f->ski_len, 0), O2O_SKI,
		    NULL));
	if (f->sid != NULL)
		consider(&best, missed(t, probe(m, &key, KS_SID, f->sid, strlen(f->sid), 1),
		    O2O_SID, f->sid));
	if (f->serial_len > 0 && f->serial_len <= sizeof(f->serial)) {
		cg_buf_clear(&key);
		k = KS_SERIAL;
		cg_buf_append(&key, &k, 1);
		append_serial(&key, f->serial, f->serial_len);
		dn_canon_attrs(&f->issuer, &key);
		consider(&best, missed(t, lookup(m, key.data, key.len), O2O_SERIAL, NULL));
	}
	/* A strong entry wins whatever weak ones match. */
	if (best != NULL)
		goto out;
	for (i = 0; i < f->san_upn.n; i++)
		consider(&best, missed(t, probe(m, &key, KS_UPN, f->san_upn.v[i],
		    strlen(f->san_upn.v[i]), 1), O2O_UPN, f->san_upn.v[i]));
	for (i = 0; i < f->san_email.n; i++)
		consider(&best, missed(t, probe(m, &key, KS_EMAIL, f->san_email.v[i],
		    strlen(f->san_email.v[i]), 1), O2O_EMAIL, f->san_email.v[i]));
	cg_buf_clear(&key);
	k = KS_SUBJECT;
	cg_buf_append(&key, &k, 1);
	dn_canon_attrs(&f->subject, &key);
	consider(&best, missed(t, lookup(m, key.data, key.len), O2O_SUBJECT, NULL));
	key.data[0] = KS_SUBJECT_ISSUER;
	cg_buf_append(&key, "", 1);
	dn_canon_attrs(&f->issuer, &key);
	consider(&best, missed(t, lookup(m, key.data, key.len), O2O_SUBJECT_ISSUER, NULL));
out:
	cg_buf_free(&key);
	return best;
}

/*
 * The values of r's field and subfield, one a call from *i (0 to start);
 * NULL after the last. A field with several values (OU, DC, SANs) has
 * them all, in the certificate's order.
 */
static const char *
field_value(const struct rule *r, const struct ca_facts *f, size_t *i)
{
	const struct cg_strv *sans[SAN__MAX] = {
		&f->san_email, &f->san_dns, &f->san_upn, &f->san_uri,
	};
	const struct ca_dn *dn;
	const struct ca_dn_attr *a;
	const struct cg_strv *sv;

	switch (r->field) {
	case CA_FIELD_SUBJECT:
	case CA_FIELD_ISSUER:
		dn = r->field == CA_FIELD_SUBJECT ? &f->subject : &f->issuer;
		while (*i < dn->n) {
			a = &dn->attrs[(*i)++];
			if (a->name != NULL && a->value != NULL &&
			    attr_lookup(a->name, strlen(a->name)) == r->sub)
				return a->value;
		}
		return NULL;
	case CA_FIELD_SAN:
		if (r->sub < 0 || r->sub >= SAN__MAX)
			return NULL;
		sv = sans[r->sub];
		while (*i < sv->n)
			if (sv->v[(*i)++] != NULL)
				return sv->v[*i - 1];
		return NULL;
	case CA_FIELD__MAX:
		break;
	}
	return NULL;
}

/* A field with several values matches when any does. */
static int
rule_matches(const struct rule *r, const struct ca_facts *f)
{
	const char *v;
	size_t i = 0;

	while ((v = field_value(r, f, &i)) != NULL)
		if (glob_match(r->pat, r->plen, v, strlen(v), r->icase))
			return 1;
	return 0;
}

/* The line for mapping mm, which failed at rule j (nrules: it has none):
 * the rule, then the values the certificate has for its field. */
static void
trace_rule(struct trace *t, const struct m2o *mm, size_t j, const struct ca_facts *f)
{
	const struct rule *r;
	const char *v, *sub;
	size_t i = 0, n = 0;

	tb_printf(&t->line, "many-to-one ");
	tb_text(&t->line, mm->name, 0);
	if (j == mm->nrules) {
		tb_printf(&t->line, ": no rules");
		trace_emit(t);
		return;
	}
	r = &mm->rules[j];
	sub = r->field == CA_FIELD_SAN ? san_kinds[r->sub] : attr_types[r->sub].name;
	tb_printf(&t->line, ": rule %zu (%s %s = ", j + 1, fields[r->field], sub);
	tb_text(&t->line, r->pat, 1);
	tb_printf(&t->line, "%s) matched no value", r->icase ? ", case-insensitive" : "");
	while (!t->line.full && (v = field_value(r, f, &i)) != NULL) {
		tb_printf(&t->line, n++ ? ", " : " (the certificate's: ");
		tb_text(&t->line, v, 1);
	}
	if (n > 0)
		tb_printf(&t->line, ")");
	else
		tb_printf(&t->line, " (the certificate has no %s %s)", fields[r->field], sub);
	trace_emit(t);
}

static const struct m2o *
map_many(const struct ca_mapper *m, const struct ca_facts *f, struct trace *t)
{
	const struct m2o *mm;
	size_t i, j;

	for (i = 0; i < m->nmaps; i++) {
		mm = &m->maps[i];
		for (j = 0; j < mm->nrules; j++)
			if (!rule_matches(&mm->rules[j], f))
				break;
		if (mm->nrules > 0 && j == mm->nrules)
			return mm;
		if (t != NULL)
			trace_rule(t, mm, j, f);
	}
	return NULL;
}

/* ca_map, and with t the trace of how it decided. */
static void
map(const struct ca_mapper *m, const struct ca_facts *f, const enum ca_map_source *order,
    size_t norder, struct ca_mapping *out, struct trace *t)
{
	const struct o2o_entry *e;
	const struct m2o *mm;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->method = CA_MAP_NONE;
	if (m == NULL || f == NULL || order == NULL)
		return;
	for (i = 0; i < norder; i++) {
		switch (order[i]) {
		case CA_SRC_ONE_TO_ONE:
			if ((e = map_one(m, f, t)) != NULL) {
				out->method = CA_MAP_ONE_TO_ONE;
				out->strong = O2O_STRONG(e->how);
				out->user = out->name = (const char *)m->pool.data + e->user;
				snprintf(out->why, sizeof(out->why), "one-to-one %s of entry %zu (%s)",
				    o2o_key_names[e->how], e->index + 1, out->user);
			}
			if (t != NULL)
				trace_one(t, e != NULL ? out->why : NULL);
			if (e != NULL)
				return;
			break;
		case CA_SRC_MANY_TO_ONE:
			if ((mm = map_many(m, f, t)) == NULL) {
				if (t != NULL && m->nmaps == 0) {
					tb_printf(&t->line, "many-to-one: no mappings");
					trace_emit(t);
				}
				break;
			}
			out->method = CA_MAP_MANY_TO_ONE;
			out->name = mm->name;
			out->deny = mm->deny;
			out->user = mm->deny ? NULL : mm->user;
			if (mm->nrules == 1)
				snprintf(out->why, sizeof(out->why), "many-to-one %s (%s): its rule "
				    "matched", mm->name, mm->deny ? "deny" : "allow");
			else
				snprintf(out->why, sizeof(out->why), "many-to-one %s (%s): all %zu "
				    "rules matched", mm->name, mm->deny ? "deny" : "allow",
				    mm->nrules);
			if (t != NULL) {
				tb_printf(&t->line, "%s", out->why);
				trace_emit(t);
			}
			return;
		case CA_SRC_DIRECTORY:	/* the gateway asks directories */
		case CA_SRC__MAX:
			break;
		}
	}
}

void
ca_map(const struct ca_mapper *m, const struct ca_facts *f, const enum ca_map_source *order,
    size_t norder, struct ca_mapping *out)
{
	map(m, f, order, norder, out, NULL);
}

void
ca_map_trace(const struct ca_mapper *m, const struct ca_facts *f,
    const enum ca_map_source *order, size_t norder, ca_map_trace_fn fn, void *ctx)
{
	struct ca_mapping out;
	struct trace *t;

	if (fn == NULL)
		return;
	t = cg_calloc(1, sizeof(*t));
	t->fn = fn;
	t->ctx = ctx;
	map(m, f, order, norder, &out, t);
	free(t);
}
