/*
 * facts.c: reads a client certificate once, with GnuTLS's X.509 API, into
 * struct ca_facts: names spelled as mod_ssl and IIS spell them, serial,
 * validity, SANs, digests, the AD SID, algorithm names and key purposes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <gnutls/x509-ext.h>

#include "certauth/certauth.h"

/*
 * Bounds on untrusted input. A client certificate is a few KiB; these are
 * far above any real one, and keep what a hostile one costs small.
 */
#define MAX_DER		65536	/* bytes of DER */
#define MAX_AVAS	128	/* attributes in one DN */
#define MAX_SANS	256	/* entries in subjectAltName */
#define MAX_EKUS	64	/* key purposes read */
#define MAX_SID		190	/* characters in a SID string */

#define OID_SAN		"2.5.29.17"
#define OID_EKU		"2.5.29.37"
#define OID_SID_EXT	"1.3.6.1.4.1.311.25.2"
#define OID_UPN		"1.3.6.1.4.1.311.20.2.3"
#define OID_CLIENT_AUTH	"1.3.6.1.5.5.7.3.2"

/* An undecodable byte: kept, and printed as "\XX". */
#define RAWBYTE		0x80000000u

/*
 * Attribute types: OpenSSL's short name (what mod_ssl prints, from
 * `openssl`'s object table) and CertNameToStr's X.500 key (what IIS
 * prints; NULL: IIS writes "OID.<dotted>").
 */
struct attr_type {
	const char	*oid;
	const char	*sn;
	const char	*iis;
};

static const struct attr_type attr_types[] = {
	{ "2.5.4.6", "C", "C" },
	{ "2.5.4.8", "ST", "S" },
	{ "2.5.4.7", "L", "L" },
	{ "2.5.4.10", "O", "O" },
	{ "2.5.4.11", "OU", "OU" },
	{ "2.5.4.3", "CN", "CN" },
	{ "2.5.4.12", "title", "T" },
	{ "2.5.4.42", "GN", "G" },
	{ "2.5.4.4", "SN", "SN" },
	{ "2.5.4.43", "initials", "I" },
	{ "0.9.2342.19200300.100.1.25", "DC", "DC" },
	{ "0.9.2342.19200300.100.1.1", "UID", NULL },
	{ "1.2.840.113549.1.9.1", "emailAddress", "E" },
	{ "2.5.4.5", "serialNumber", "SERIALNUMBER" },
	{ "2.5.4.9", "street", "STREET" },
	{ "2.5.4.17", "postalCode", "PostalCode" },
	{ "2.5.4.18", "postOfficeBox", "POBox" },
	{ "2.5.4.20", "telephoneNumber", "Phone" },
	{ "2.5.4.13", "description", "Description" },
	{ "2.5.4.46", "dnQualifier", "dnQualifier" },
	{ "2.5.4.41", "name", NULL },
	{ "2.5.4.44", "generationQualifier", NULL },
	{ "2.5.4.65", "pseudonym", NULL },
	{ "2.5.4.15", "businessCategory", NULL },
	{ "2.5.4.97", "organizationIdentifier", NULL },
	{ "2.5.4.72", "role", NULL },
	{ "1.2.840.113549.1.9.2", "unstructuredName", NULL },
	{ "1.3.6.1.4.1.311.60.2.1.1", "jurisdictionL", NULL },
	{ "1.3.6.1.4.1.311.60.2.1.2", "jurisdictionST", NULL },
	{ "1.3.6.1.4.1.311.60.2.1.3", "jurisdictionC", NULL },
};

/* OpenSSL's long names, which mod_ssl prints for A_KEY and A_SIG. */
struct alg_name {
	const char	*oid;
	const char	*ln;
};

static const struct alg_name key_algs[] = {
	{ "1.2.840.113549.1.1.1", "rsaEncryption" },
	{ "1.2.840.113549.1.1.10", "rsassaPss" },
	{ "1.2.840.10045.2.1", "id-ecPublicKey" },
	{ "1.2.840.10040.4.1", "dsaEncryption" },
	{ "1.3.101.110", "X25519" },
	{ "1.3.101.111", "X448" },
	{ "1.3.101.112", "ED25519" },
	{ "1.3.101.113", "ED448" },
	{ "1.2.643.2.2.19", "GOST R 34.10-2001" },
	{ "1.2.643.7.1.1.1.1", "GOST R 34.10-2012 with 256 bit modulus" },
	{ "1.2.643.7.1.1.1.2", "GOST R 34.10-2012 with 512 bit modulus" },
};

static const struct alg_name sig_algs[] = {
	{ "1.2.840.113549.1.1.2", "md2WithRSAEncryption" },
	{ "1.2.840.113549.1.1.4", "md5WithRSAEncryption" },
	{ "1.2.840.113549.1.1.5", "sha1WithRSAEncryption" },
	{ "1.2.840.113549.1.1.10", "rsassaPss" },
	{ "1.2.840.113549.1.1.11", "sha256WithRSAEncryption" },
	{ "1.2.840.113549.1.1.12", "sha384WithRSAEncryption" },
	{ "1.2.840.113549.1.1.13", "sha512WithRSAEncryption" },
	{ "1.2.840.113549.1.1.14", "sha224WithRSAEncryption" },
	{ "1.2.840.113549.1.1.15", "sha512-224WithRSAEncryption" },
	{ "1.2.840.113549.1.1.16", "sha512-256WithRSAEncryption" },
	{ "2.16.840.1.101.3.4.3.13", "RSA-SHA3-224" },
	{ "2.16.840.1.101.3.4.3.14", "RSA-SHA3-256" },
	{ "2.16.840.1.101.3.4.3.15", "RSA-SHA3-384" },
	{ "2.16.840.1.101.3.4.3.16", "RSA-SHA3-512" },
	{ "1.2.840.10045.4.1", "ecdsa-with-SHA1" },
	{ "1.2.840.10045.4.3.1", "ecdsa-with-SHA224" },
	{ "1.2.840.10045.4.3.2", "ecdsa-with-SHA256" },
	{ "1.2.840.10045.4.3.3", "ecdsa-with-SHA384" },
	{ "1.2.840.10045.4.3.4", "ecdsa-with-SHA512" },
	{ "2.16.840.1.101.3.4.3.9", "ecdsa_with_SHA3-224" },
	{ "2.16.840.1.101.3.4.3.10", "ecdsa_with_SHA3-256" },
	{ "2.16.840.1.101.3.4.3.11", "ecdsa_with_SHA3-384" },
	{ "2.16.840.1.101.3.4.3.12", "ecdsa_with_SHA3-512" },
	{ "1.2.840.10040.4.3", "dsaWithSHA1" },
	{ "2.16.840.1.101.3.4.3.1", "dsa_with_SHA224" },
	{ "2.16.840.1.101.3.4.3.2", "dsa_with_SHA256" },
	{ "2.16.840.1.101.3.4.3.3", "dsa_with_SHA384" },
	{ "2.16.840.1.101.3.4.3.4", "dsa_with_SHA512" },
	{ "1.3.101.112", "ED25519" },
	{ "1.3.101.113", "ED448" },
	{ "1.2.643.2.2.3", "GOST R 34.11-94 with GOST R 34.10-2001" },
	{ "1.2.643.7.1.1.3.2",
	    "GOST R 34.10-2012 with GOST R 34.11-2012 (256 bit)" },
	{ "1.2.643.7.1.1.3.3",
	    "GOST R 34.10-2012 with GOST R 34.11-2012 (512 bit)" },
};

/* How the bytes of a string type encode characters. */
enum charset { CS_LATIN1, CS_UTF8, CS_BMP, CS_UCS4, CS__MAX };

/* How a decoded value is written out. */
enum style {
	ST_PLAIN,	/* mod_ssl's per-attribute value: controls as \XX */
	ST_RFC4514,	/* also RFC 4514's escapes, as OpenSSL writes them */
	ST__MAX
};

/* One attribute as read, before the DN strings are assembled. */
struct ava {
	const struct attr_type	*type;	/* NULL: unknown OID */
	char			*oid;	/* dotted */
	char			*plain;	/* ST_PLAIN, or "#hex" */
	char			*rfc;	/* ST_RFC4514, or "#hex" */
	int			 rdn;	/* index of its RDN */
};

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static const char *
alg_lookup(const struct alg_name *t, size_t n, const char *oid)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(t[i].oid, oid) == 0)
			return t[i].ln;
	return "UNKNOWN";	/* what mod_ssl prints for NID_undef */
}

static const struct attr_type *
attr_lookup(const char *oid)
{
	size_t i;

	for (i = 0; i < CG_NELEM(attr_types); i++)
		if (strcmp(attr_types[i].oid, oid) == 0)
			return &attr_types[i];
	return NULL;
}

static void
buf_str(struct cg_buf *b, const char *s)
{
	cg_buf_append(b, s, strlen(s));
}

/* Takes b's bytes as a NUL-terminated string; b is left empty. */
static char *
buf_take(struct cg_buf *b)
{
	char *s;

	cg_buf_append(b, "", 1);	/* nothing is consumed: off is 0 */
	/* Down to its size: a connection keeps its facts as long as it lives. */
	s = cg_realloc(b->data, b->len);
	memset(b, 0, sizeof(*b));
	return s;
}

static void
put_hexbyte(struct cg_buf *b, unsigned v)
{
	static const char hex[] = "0123456789ABCDEF";
	char s[2];

	s[0] = hex[(v >> 4) & 0xf];
	s[1] = hex[v & 0xf];
	cg_buf_append(b, s, 2);
}

static void
put_utf8(struct cg_buf *b, uint32_t c)
{
	uint8_t s[4];
	size_t n;

	if (c < 0x80) {
		s[0] = (uint8_t)c;
		n = 1;
	} else if (c < 0x800) {
		s[0] = (uint8_t)(0xc0 | c >> 6);
		s[1] = (uint8_t)(0x80 | (c & 0x3f));
		n = 2;
	} else if (c < 0x10000) {
		s[0] = (uint8_t)(0xe0 | c >> 12);
		s[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
		s[2] = (uint8_t)(0x80 | (c & 0x3f));
		n = 3;
	} else {
		s[0] = (uint8_t)(0xf0 | c >> 18);
		s[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3f));
		s[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
		s[3] = (uint8_t)(0x80 | (c & 0x3f));
		n = 4;
	}
	cg_buf_append(b, s, n);
}

/* Length of the valid UTF-8 sequence at p (shortest form, no surrogates,
 * at most U+10FFFF) and its code point in *cp; 0 when invalid. */
static size_t
utf8_one(const uint8_t *p, size_t len, uint32_t *cp)
{
	uint32_t c, min;
	size_t n, i;

	c = p[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		c &= 0x07;
		min = 0x10000;
	} else
		return 0;
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/*
 * Decodes a string's bytes into code points (*n of them, at most len).
 * Nothing is refused: a byte that does not decode is kept as
 * RAWBYTE | byte, so a value never loses or invents characters silently.
 */
static uint32_t *
decode(const uint8_t *p, size_t len, enum charset cs, size_t *n)
{
	uint32_t *out, c, lo;
	size_t i, k, j, w;

	out = cg_calloc(len + 1, sizeof(*out));
	for (i = 0, k = 0; i < len; i += w) {
		switch (cs) {
		case CS_UTF8:
			if ((w = utf8_one(p + i, len - i, &c)) == 0) {
				out[k++] = RAWBYTE | p[i];
				w = 1;
				continue;
			}
			break;
		case CS_BMP:
			w = 2;
			if (len - i < 2)
				goto raw;
			c = (uint32_t)p[i] << 8 | p[i + 1];
			if (c >= 0xd800 && c <= 0xdbff && len - i >= 4) {
				/* A UTF-16 pair, as Windows writes them. */
				lo = (uint32_t)p[i + 2] << 8 | p[i + 3];
				if (lo >= 0xdc00 && lo <= 0xdfff) {
					c = 0x10000 + ((c - 0xd800) << 10) +
					    (lo - 0xdc00);
					w = 4;
					break;
				}
			}
			if (c >= 0xd800 && c <= 0xdfff)
				goto raw;
			break;
		case CS_UCS4:
			w = 4;
			if (len - i < 4)
				goto raw;
			c = (uint32_t)p[i] << 24 | (uint32_t)p[i + 1] << 16 |
			    (uint32_t)p[i + 2] << 8 | p[i + 3];
			if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
				goto raw;
			break;
		default:
			/* OpenSSL reads the one-byte types as Latin-1. */
			c = p[i];
			w = 1;
			break;
		}
		out[k++] = c;
		continue;
raw:
		w = w < len - i ? w : len - i;
		for (j = 0; j < w; j++)
			out[k++] = RAWBYTE | p[i + j];
	}
	*n = k;
	return out;
}

/*
 * Controls and undecodable bytes become "\XX", as OpenSSL's ESC_CTRL
 * writes them for mod_ssl: no value carries a NUL (which would cut a
 * C string short and let "admin\0x" match "admin") or a line break.
 */
static void
render(struct cg_buf *b, const uint32_t *cp, size_t n, enum style st)
{
	uint32_t c;
	size_t i;

	for (i = 0; i < n; i++) {
		c = cp[i];
		if (c & RAWBYTE || c < 0x20 || c == 0x7f) {
			cg_buf_append(b, "\\", 1);
			put_hexbyte(b, c & 0xff);
			continue;
		}
		if (st == ST_RFC4514 && c < 0x80 &&
		    (strchr(",+\"\\<>;", (int)c) != NULL ||
		    (i == 0 && (c == '#' || c == ' ')) ||
		    (i == n - 1 && c == ' ')))
			cg_buf_append(b, "\\", 1);
		put_utf8(b, c);
	}
}

/* The charset of an ASN.1 universal string tag; CS__MAX: not a string. */
static enum charset
tag_charset(unsigned long tag)
{
	switch (tag) {
	case 12:		/* UTF8String */
		return CS_UTF8;
	case 18:		/* NumericString */
	case 19:		/* PrintableString */
	case 20:		/* TeletexString */
	case 22:		/* IA5String */
	case 26:		/* VisibleString */
		return CS_LATIN1;
	case 28:		/* UniversalString */
		return CS_UCS4;
	case 30:		/* BMPString */
		return CS_BMP;
	default:
		return CS__MAX;
	}
}

/* "#" and the hex of the value's DER, as RFC 4514 writes what it cannot
 * write as a string. GnuTLS gives the tag number, not its class: read it
 * as universal, constructed for SEQUENCE and SET. */
static char *
hex_value(unsigned long tag, const uint8_t *p, size_t len)
{
	struct cg_buf b = { 0 };
	uint8_t t[8];
	size_t i, n;

	cg_buf_append(&b, "#", 1);
	if (tag < 31)
		put_hexbyte(&b, (unsigned)tag | (tag == 16 || tag == 17 ?
		    0x20 : 0));
	else {
		put_hexbyte(&b, 0x1f);
		for (n = 0; n == 0 || (tag && n < sizeof(t)); tag >>= 7)
			t[n++] = (uint8_t)(tag & 0x7f);
		while (n-- > 0)
			put_hexbyte(&b, t[n] | (n > 0 ? 0x80 : 0));
	}
	if (len < 0x80)
		put_hexbyte(&b, (unsigned)len);
	else {
		for (n = 0, i = len; i > 0; i >>= 8)
			n++;
		put_hexbyte(&b, 0x80 | (unsigned)n);
		while (n-- > 0)
			put_hexbyte(&b, (unsigned)(len >> (8 * n)) & 0xff);
	}
	for (i = 0; i < len; i++)
		put_hexbyte(&b, p[i]);
	return buf_take(&b);
}

/* A byte string as a plain value (SAN entries): controls as \XX. */
static char *
plain_string(const uint8_t *p, size_t len, enum charset cs)
{
	struct cg_buf b = { 0 };
	uint32_t *cp;
	size_t n;

	cp = decode(p, len, cs, &n);
	render(&b, cp, n, ST_PLAIN);
	free(cp);
	return buf_take(&b);
}

/*
 * IIS's value, as CertNameToStr writes it: in double quotes (inner ones
 * doubled) when empty, with leading or trailing white space, or holding
 * one of , + = " < > # ; or a line break (already written as \0A).
 */
static void
put_iis_value(struct cg_buf *b, const char *v)
{
	size_t len = strlen(v);
	const char *s;

	if (len > 0 && v[0] != ' ' && v[len - 1] != ' ' &&
	    strpbrk(v, ",+=\"<>#;") == NULL && strstr(v, "\\0A") == NULL &&
	    strstr(v, "\\0D") == NULL) {
		cg_buf_append(b, v, len);
		return;
	}
	cg_buf_append(b, "\"", 1);
	for (s = v; *s != '\0'; s++) {
		if (*s == '"')
			cg_buf_append(b, "\"", 1);
		cg_buf_append(b, s, 1);
	}
	cg_buf_append(b, "\"", 1);
}

/*
 * Attribute i of a DN as Windows' CertNameToStr writes it (X.500 keys,
 * certificate order, quoted values) after sep, or plus inside a
 * multi-valued RDN: IIS separates with ", ", Active Directory's
 * altSecurityIdentities with "," alone.
 */
static void
put_windows_ava(struct cg_buf *b, const struct ava *avas, size_t i, const char *sep,
    const char *plus)
{
	if (i > 0)
		buf_str(b, avas[i].rdn == avas[i - 1].rdn ? plus : sep);
	if (avas[i].type != NULL && avas[i].type->iis != NULL)
		buf_str(b, avas[i].type->iis);
	else {
		buf_str(b, "OID.");
		buf_str(b, avas[i].oid);
	}
	cg_buf_append(b, "=", 1);
	put_iis_value(b, avas[i].plain);
}

static void
avas_free(struct ava *a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(a[i].oid);
		free(a[i].plain);
		free(a[i].rfc);
	}
	free(a);
}

/* Reads one AVA of dn into a. 1 done, 0 read, -1 error. */
static int
read_ava(gnutls_x509_dn_t dn, int irdn, int iava, struct ava *a,
    char *err, size_t errlen)
{
	gnutls_x509_ava_st av;
	struct cg_buf b = { 0 };
	enum charset cs;
	uint32_t *cp;
	size_t n;
	int rc;

	memset(a, 0, sizeof(*a));
	rc = gnutls_x509_dn_get_rdn_ava(dn, irdn, iava, &av);
	if (rc == GNUTLS_E_ASN1_ELEMENT_NOT_FOUND)
		return 1;
	if (rc < 0) {
		seterr(err, errlen, "name: %s (%d)", gnutls_strerror(rc), rc);
		return -1;
	}
	if (av.oid.size == 0 || av.oid.size > 128 ||
	    av.value.size > MAX_DER) {
		seterr(err, errlen, "name: attribute out of bounds");
		return -1;
	}
	a->rdn = irdn;
	/* libtasn1 counts the OID's terminating NUL; a NUL anywhere else
	 * would let a bogus type alias a known name. */
	n = av.oid.size;
	if (av.oid.data[n - 1] == '\0')
		n--;
	a->oid = cg_strndup((const char *)av.oid.data, n);
	if (n == 0 || strlen(a->oid) != n) {
		seterr(err, errlen, "name: bad attribute type");
		return -1;
	}
	a->type = attr_lookup(a->oid);
	cs = tag_charset(av.value_tag);
	if (cs == CS__MAX) {
		a->plain = hex_value(av.value_tag, av.value.data,
		    av.value.size);
		a->rfc = cg_strdup(a->plain);
		return 0;
	}
	cp = decode(av.value.data, av.value.size, cs, &n);
	render(&b, cp, n, ST_PLAIN);
	a->plain = buf_take(&b);
	/* RFC 4514 section 2.4: a dotted type takes the hex form. */
	if (a->type == NULL)
		a->rfc = hex_value(av.value_tag, av.value.data, av.value.size);
	else {
		render(&b, cp, n, ST_RFC4514);
		a->rfc = buf_take(&b);
	}
	free(cp);
	return 0;
}

/*
 * Reads a DN: its attributes in certificate order, the RFC 4514 string
 * (OpenSSL's XN_FLAG_RFC2253 without ESC_MSB, as mod_ssl prints it: last
 * attribute first, '+' inside a multi-valued RDN) and IIS's string.
 */
static int
read_dn(gnutls_x509_dn_t dn, struct ca_dn *out, char *err, size_t errlen)
{
	struct cg_buf rfc = { 0 }, iis = { 0 }, ad = { 0 };
	struct ava *avas;
	size_t n = 0, i, vlen;
	int irdn, iava, rc;
	char *v;

	avas = cg_calloc(MAX_AVAS + 1, sizeof(*avas));
	for (irdn = 0;; irdn++) {
		for (iava = 0;; iava++) {
			rc = read_ava(dn, irdn, iava, &avas[n], err, errlen);
			if (rc > 0)
				break;
			n++;	/* a failed read may hold allocations */
			if (rc < 0)
				goto fail;
			if (n > MAX_AVAS) {
				seterr(err, errlen, "name: more than %d "
				    "attributes", MAX_AVAS);
				goto fail;
			}
		}
		if (iava == 0)
			break;
	}

	out->attrs = cg_calloc(n, sizeof(*out->attrs));
	for (i = 0; i < n; i++) {
		/*
		 * name is const in the API; an unknown type's dotted OID
		 * lives in the value's allocation, after its NUL, so one
		 * free releases both.
		 */
		vlen = strlen(avas[i].plain);
		if (avas[i].type != NULL) {
			out->attrs[i].value = cg_strdup(avas[i].plain);
			out->attrs[i].name = avas[i].type->sn;
		} else {
			v = cg_malloc(vlen + 1 + strlen(avas[i].oid) + 1);
			memcpy(v, avas[i].plain, vlen + 1);
			strcpy(v + vlen + 1, avas[i].oid);
			out->attrs[i].value = v;
			out->attrs[i].name = v + vlen + 1;
		}
		out->n++;
		put_windows_ava(&iis, avas, i, ", ", " + ");
		put_windows_ava(&ad, avas, i, ",", "+");
	}
	for (i = n; i-- > 0;) {
		if (i + 1 < n)
			cg_buf_append(&rfc, avas[i].rdn == avas[i + 1].rdn ?
			    "+" : ",", 1);
		buf_str(&rfc, avas[i].type != NULL ? avas[i].type->sn :
		    avas[i].oid);
		cg_buf_append(&rfc, "=", 1);
		buf_str(&rfc, avas[i].rfc);
	}
	out->rfc4514 = buf_take(&rfc);
	out->iis = buf_take(&iis);
	out->ad = buf_take(&ad);
	avas_free(avas, n);
	return 0;

fail:
	avas_free(avas, n);
	return -1;
}

/*
 * One DER TLV from [*p, end): tag byte, content, and *p moved past it.
 * Definite lengths up to 4 bytes only, low tag numbers only: enough for
 * the two structures walked by hand below.
 */
static int
der_next(const uint8_t **p, const uint8_t *end, uint8_t *tag,
    const uint8_t **val, size_t *len)
{
	const uint8_t *q = *p;
	size_t n, nb, i;

	if (end - q < 2)
		return -1;
	*tag = *q++;
	if ((*tag & 0x1f) == 0x1f)
		return -1;
	n = *q++;
	if (n & 0x80) {
		nb = n & 0x7f;
		if (nb == 0 || nb > 4 || (size_t)(end - q) < nb)
			return -1;
		for (n = 0, i = 0; i < nb; i++)
			n = n << 8 | *q++;
	}
	if (n > (size_t)(end - q))
		return -1;
	*val = q;
	*len = n;
	*p = q + n;
	return 0;
}

/*
 * The SubjectPublicKeyInfo's bytes exactly as in the certificate. GnuTLS
 * can export the key only by re-encoding it (and not for algorithms it
 * does not know), and a pin must hash the bytes the CA signed, so the
 * already-parsed certificate is walked by hand to that element.
 */
static int
find_spki(const uint8_t *der, size_t len, const uint8_t **spki,
    size_t *spkilen)
{
	const uint8_t *p = der, *end = der + len, *v, *start;
	uint8_t tag;
	size_t n;
	int i;

	if (der_next(&p, end, &tag, &v, &n) < 0 || tag != 0x30 || p != end)
		return -1;
	p = v;
	end = v + n;
	if (der_next(&p, end, &tag, &v, &n) < 0 || tag != 0x30)
		return -1;
	p = v;
	end = v + n;
	/* [0] version (optional), serial, signature, issuer, validity,
	 * subject, then the key. */
	if (der_next(&p, end, &tag, &v, &n) < 0)
		return -1;
	if (tag == 0xa0 && der_next(&p, end, &tag, &v, &n) < 0)
		return -1;
	if (tag != 0x02)
		return -1;
	for (i = 0; i < 4; i++)
		if (der_next(&p, end, &tag, &v, &n) < 0 || tag != 0x30)
			return -1;
	start = p;
	if (der_next(&p, end, &tag, &v, &n) < 0 || tag != 0x30)
		return -1;
	*spki = start;
	*spkilen = (size_t)(p - start);
	return 0;
}

/* "S-1-5-21-..." and nothing else: revision, authority, 1..15
 * sub-authorities, decimal. */
static int
sid_valid(const uint8_t *s, size_t len)
{
	size_t i, digits = 0, groups = 0;

	if (len < 2 || len > MAX_SID || s[0] != 'S' || s[1] != '-')
		return 0;
	for (i = 2; i < len; i++) {
		if (s[i] >= '0' && s[i] <= '9') {
			if (++digits > 15)
				return 0;
			continue;
		}
		if (s[i] != '-' || digits == 0)
			return 0;
		groups++;
		digits = 0;
	}
	if (digits == 0)
		return 0;
	groups++;
	return groups >= 3 && groups <= 17;
}

/*
 * The SID in szOID_NTDS_CA_SECURITY_EXT (MS-WCCE 2.2.2.7.7.4):
 *
 *	SEQUENCE { [0] { OID 1.3.6.1.4.1.311.25.2.1,
 *	                 [0] { OCTET STRING "S-1-5-..." } } }
 *
 * GnuTLS has no decoder for it and libtasn1 is not linked here, so this
 * one fixed shape is walked by hand, inside the extension's bounds.
 */
static char *
read_sid(const uint8_t *p, size_t len)
{
	static const uint8_t oid[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82,
	    0x37, 0x19, 0x02, 0x01 };
	const uint8_t *end = p + len, *v, *q, *qend, *w;
	uint8_t tag;
	size_t n, m;

	if (der_next(&p, end, &tag, &v, &n) < 0 || tag != 0x30 || p != end)
		return NULL;
	for (p = v, end = v + n; p < end;) {
		if (der_next(&p, end, &tag, &v, &n) < 0)
			return NULL;
		if (tag != 0xa0)	/* not an otherName */
			continue;
		q = v;
		qend = v + n;
		if (der_next(&q, qend, &tag, &w, &m) < 0 || tag != 0x06 ||
		    m != sizeof(oid) || memcmp(w, oid, m) != 0)
			continue;
		if (der_next(&q, qend, &tag, &w, &m) < 0 || tag != 0xa0 ||
		    q != qend)
			return NULL;
		q = w;
		qend = w + m;
		if (der_next(&q, qend, &tag, &w, &m) < 0 || tag != 0x04 ||
		    q != qend || !sid_valid(w, m))
			return NULL;
		return cg_strndup((const char *)w, m);
	}
	return NULL;
}

static int
read_sans(gnutls_x509_crt_t crt, struct ca_facts *f, char *err,
    size_t errlen)
{
	gnutls_subject_alt_names_t sans = NULL;
	gnutls_datum_t ext = { NULL, 0 }, san, oid, virt;
	unsigned int crit, type, vtype, i;
	int rc, ret = -1;

	rc = gnutls_x509_crt_get_extension_by_oid2(crt, OID_SAN, 0, &ext,
	    &crit);
	if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		return 0;
	if (rc < 0)
		goto gnutls_fail;
	if ((rc = gnutls_subject_alt_names_init(&sans)) < 0 ||
	    (rc = gnutls_x509_ext_import_subject_alt_names(&ext, sans,
	    0)) < 0)
		goto gnutls_fail;
	for (i = 0;; i++) {
		rc = gnutls_subject_alt_names_get(sans, i, &type, &san, &oid);
		if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (rc < 0)
			goto gnutls_fail;
		if (i == MAX_SANS) {
			seterr(err, errlen, "subjectAltName: more than %d "
			    "names", MAX_SANS);
			goto fail;
		}
		switch (type) {
		case GNUTLS_SAN_RFC822NAME:
			cg_strv_push(&f->san_email, plain_string(san.data,
			    san.size, CS_LATIN1));
			break;
		case GNUTLS_SAN_DNSNAME:
			cg_strv_push(&f->san_dns, plain_string(san.data,
			    san.size, CS_LATIN1));
			break;
		case GNUTLS_SAN_URI:
			cg_strv_push(&f->san_uri, plain_string(san.data,
			    san.size, CS_LATIN1));
			break;
		case GNUTLS_SAN_OTHERNAME:
			if (oid.data == NULL || oid.size != strlen(OID_UPN) ||
			    memcmp(oid.data, OID_UPN, oid.size) != 0)
				break;
			/* As mod_ssl: a UPN that is not a UTF8String is
			 * skipped, not an error. */
			if (gnutls_x509_othername_to_virtual(OID_UPN, &san,
			    &vtype, &virt) < 0)
				break;
			if (vtype == GNUTLS_SAN_OTHERNAME_MSUSERPRINCIPAL)
				cg_strv_push(&f->san_upn, plain_string(virt.data,
				    virt.size, CS_UTF8));
			gnutls_free(virt.data);
			break;
		default:
			break;
		}
	}
	ret = 0;
	goto done;

gnutls_fail:
	seterr(err, errlen, "subjectAltName: %s (%d)", gnutls_strerror(rc),
	    rc);
fail:
done:
	if (sans != NULL)
		gnutls_subject_alt_names_deinit(sans);
	gnutls_free(ext.data);
	return ret;
}

/* Extended key usage; a purpose list that does not parse counts as
 * present without clientAuth (fail closed). */
static void
read_eku(gnutls_x509_crt_t crt, struct ca_facts *f)
{
	gnutls_datum_t ext = { NULL, 0 };
	unsigned int crit;
	char oid[128];
	size_t sz;
	int rc;
	unsigned i;

	rc = gnutls_x509_crt_get_extension_by_oid2(crt, OID_EKU, 0, &ext,
	    &crit);
	gnutls_free(ext.data);
	if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		return;
	f->has_eku = 1;
	if (rc < 0)
		return;
	for (i = 0; i < MAX_EKUS; i++) {
		sz = sizeof(oid);
		rc = gnutls_x509_crt_get_key_purpose_oid(crt, i, oid, &sz,
		    &crit);
		if (rc == GNUTLS_E_SHORT_MEMORY_BUFFER)
			continue;
		if (rc < 0)
			return;
		if (strcmp(oid, OID_CLIENT_AUTH) == 0) {
			f->eku_client = 1;
			return;
		}
	}
}

/*
 * Serial numbers, two ways. mod_ssl prints the INTEGER's value (OpenSSL's
 * BN_bn2hex): no leading 00 bytes, a '-' for the negative serials some
 * CAs wrote. IIS prints the DER bytes as they are, 00 included.
 */
static int
format_serial(struct ca_facts *f)
{
	uint8_t mag[sizeof(f->serial)];
	size_t i, o = 0, len = f->serial_len;
	unsigned carry;
	int neg;

	neg = len > 0 && (f->serial[0] & 0x80);
	memcpy(mag, f->serial, len);
	if (neg) {
		/* Two's complement: invert, add one. */
		for (i = 0; i < len; i++)
			mag[i] = (uint8_t)~mag[i];
		for (i = len, carry = 1; i-- > 0 && carry;) {
			carry = mag[i] == 0xff;
			mag[i]++;
		}
	}
	for (i = 0; i + 1 < len && mag[i] == 0; i++)
		;
	if (len == 0 || (neg ? 1 : 0) + 2 * (len - i) + 1 >
	    sizeof(f->serial_hex))
		return -1;
	if (neg)
		f->serial_hex[o++] = '-';
	for (; i < len; i++, o += 2)
		snprintf(f->serial_hex + o, 3, "%02X", mag[i]);
	f->serial_hex[o] = '\0';

	for (i = 0, o = 0; i < len; i++, o += 2) {
		if (i > 0)
			f->serial_iis[o++] = '-';
		snprintf(f->serial_iis + o, 3, "%02X", f->serial[i]);
	}
	return 0;
}

int
ca_facts_from_der(const uint8_t *der, size_t len, struct ca_facts *f,
    char *err, size_t errlen)
{
	gnutls_x509_crt_t crt = NULL;
	gnutls_x509_dn_t dn;
	gnutls_datum_t d, ext = { NULL, 0 };
	const uint8_t *spki;
	size_t spkilen, sz;
	unsigned int bits = 0, crit;
	char oid[128];
	int rc;

	memset(f, 0, sizeof(*f));
	seterr(err, errlen, "%s", "");
	if (der == NULL || len == 0 || len > MAX_DER) {
		seterr(err, errlen, "certificate: size %zu out of bounds", len);
		return -1;
	}
	f->der = cg_malloc(len);
	memcpy(f->der, der, len);
	f->der_len = len;

	if ((rc = gnutls_x509_crt_init(&crt)) < 0)
		goto gnutls_fail;
	d.data = f->der;
	d.size = (unsigned int)len;
	if ((rc = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER)) < 0)
		goto gnutls_fail;
	/* The digests are of exactly one certificate: no trailing bytes. */
	if (find_spki(f->der, len, &spki, &spkilen) < 0) {
		seterr(err, errlen, "certificate: unexpected DER layout");
		goto fail;
	}

	if ((rc = gnutls_x509_crt_get_subject(crt, &dn)) < 0 ||
	    read_dn(dn, &f->subject, err, errlen) < 0)
		goto dn_fail;
	if ((rc = gnutls_x509_crt_get_issuer(crt, &dn)) < 0 ||
	    read_dn(dn, &f->issuer, err, errlen) < 0)
		goto dn_fail;

	rc = gnutls_x509_crt_get_version(crt);
	if (rc < 1 || rc > 3) {
		seterr(err, errlen, "certificate: version %d", rc);
		goto fail;
	}
	f->version = rc;

	sz = sizeof(f->serial);
	if ((rc = gnutls_x509_crt_get_serial(crt, f->serial, &sz)) < 0)
		goto gnutls_fail;
	f->serial_len = sz;
	if (format_serial(f) < 0) {
		seterr(err, errlen, "certificate: serial number of %zu bytes",
		    sz);
		goto fail;
	}

	/* (time_t)-1 is GnuTLS's error; 99991231235959Z comes back as
	 * 253402300799, a real time. */
	f->not_before = gnutls_x509_crt_get_activation_time(crt);
	f->not_after = gnutls_x509_crt_get_expiration_time(crt);
	if (f->not_before == (time_t)-1 || f->not_after == (time_t)-1) {
		seterr(err, errlen, "certificate: unreadable validity");
		goto fail;
	}

	if (read_sans(crt, f, err, errlen) < 0)
		goto fail;

	if ((rc = gnutls_hash_fast(GNUTLS_DIG_SHA256, f->der, len,
	    f->sha256)) < 0 ||
	    (rc = gnutls_hash_fast(GNUTLS_DIG_SHA256, spki, spkilen,
	    f->spki_sha256)) < 0 ||
	    (rc = gnutls_hash_fast(GNUTLS_DIG_SHA1, f->der, len,
	    f->sha1)) < 0)
		goto gnutls_fail;

	/* Informational: an oversized or broken SKI counts as absent. */
	sz = sizeof(f->ski);
	if (gnutls_x509_crt_get_subject_key_id(crt, f->ski, &sz, &crit) == 0)
		f->ski_len = sz;

	rc = gnutls_x509_crt_get_extension_by_oid2(crt, OID_SID_EXT, 0, &ext,
	    &crit);
	if (rc == 0)
		f->sid = read_sid(ext.data, ext.size);
	gnutls_free(ext.data);

	sz = sizeof(oid);
	f->key_alg = gnutls_x509_crt_get_pk_oid(crt, oid, &sz) < 0 ?
	    "UNKNOWN" : alg_lookup(key_algs, CG_NELEM(key_algs), oid);
	sz = sizeof(oid);
	f->sig_alg = gnutls_x509_crt_get_signature_oid(crt, oid, &sz) < 0 ?
	    "UNKNOWN" : alg_lookup(sig_algs, CG_NELEM(sig_algs), oid);
	rc = gnutls_x509_crt_get_pk_algorithm(crt, &bits);
	f->key_bits = rc < 0 ? 0 : bits;

	read_eku(crt, f);

	gnutls_x509_crt_deinit(crt);
	return 0;

dn_fail:
	if (rc < 0)
		seterr(err, errlen, "name: %s (%d)", gnutls_strerror(rc), rc);
	goto fail;
gnutls_fail:
	seterr(err, errlen, "certificate: %s (%d)", gnutls_strerror(rc), rc);
fail:
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	ca_facts_free(f);
	return -1;
}

static void
dn_free(struct ca_dn *dn)
{
	size_t i;

	for (i = 0; i < dn->n; i++)
		free(dn->attrs[i].value);
	free(dn->attrs);
	free(dn->rfc4514);
	free(dn->iis);
	free(dn->ad);
}

void
ca_facts_free(struct ca_facts *f)
{
	if (f == NULL)
		return;
	free(f->der);
	dn_free(&f->subject);
	dn_free(&f->issuer);
	cg_strv_free(&f->san_email);
	cg_strv_free(&f->san_dns);
	cg_strv_free(&f->san_uri);
	cg_strv_free(&f->san_upn);
	free(f->sid);
	memset(f, 0, sizeof(*f));
}

char *
ca_pem(const uint8_t *der, size_t len)
{
	gnutls_datum_t in, out = { NULL, 0 };
	char *pem;
	int rc;

	if (der == NULL || len == 0 || len > MAX_DER)
		return NULL;
	in.data = (unsigned char *)der;
	in.size = (unsigned int)len;
	if ((rc = gnutls_pem_base64_encode2("CERTIFICATE", &in, &out)) < 0) {
		cg_log(CG_LOG_ERROR, 0, "certificate to PEM: %s (%d)",
		    gnutls_strerror(rc), rc);
		return NULL;
	}
	pem = cg_strndup((const char *)out.data, out.size);
	gnutls_free(out.data);
	return pem;
}
