/*
 * directory.c: the pure half of directory mapping (SPEC section 10): the
 * keys of a `directories` entry, the values Active Directory stores in
 * altSecurityIdentities for a certificate and the RFC 4515 filter that
 * finds them, objectSid as text, group names, and the strong-binding
 * verdict on an entry. Asking the directory is the gateway's
 * (gateway/directory.c); nothing here touches the network.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/gnutls.h>

#include "certauth/certauth.h"

#define NOSRC -1
#define PASSWORD_MAX 1024

const char *const ca_dir_lookup_names[CA_LOOKUP__MAX] = {
	"altSecurityIdentities", "userPrincipalName",
};
const char *const ca_dir_binding_names[CA_BIND__MAX] = { "full", "compatibility", "off" };
const char *const ca_dir_verdict_names[CA_DIR_VERDICT__MAX] = {
	"strong", "weak", "weak match refused (strong_binding full)",
	"the certificate's SID is not the entry's objectSid",
};

/* ---- the `directories` keys ---- */

static const char *const scopes[] = { "sub", "one", "base", NULL };
static const char *const bindings[] = { "full", "compatibility", "off", NULL };
_Static_assert(CA_SCOPE_SUB == 0 && CA_SCOPE_ONE == 1 && CA_SCOPE_BASE == 2,
    "scope choices follow enum ca_dir_scope");
_Static_assert(CA_BIND_FULL == 0 && CA_BIND_COMPAT == 1 && CA_BIND_OFF == 2,
    "binding choices follow enum ca_dir_binding");

#define K(f) offsetof(struct ca_directory_conf, f)

static const struct cg_conf_key directory_keys[] = {
	{ "uri", CG_CONF_STRINGS, K(uri), NULL, CG_CONF_REQUIRED, 0, 0, NULL, NULL,
	  "ldap:// or ldaps:// URIs, tried in order" },
	{ "start_tls", CG_CONF_BOOL, K(start_tls), "true", 0, 0, 0, NULL, NULL,
	  "StartTLS on ldap:// URIs" },
	{ "ca", CG_CONF_STRINGS, K(ca), NULL, CG_CONF_PATH, 0, 0, NULL, NULL,
	  "the CA file that verifies the directory's certificate" },
	{ "bind_dn", CG_CONF_STRING, K(bind_dn), NULL, 0, 0, 0, NULL, NULL,
	  "simple bind as this DN; empty: anonymous" },
	{ "bind_password_file", CG_CONF_STRING, K(bind_password_file), NULL, CG_CONF_PATH, 0, 0,
	  NULL, NULL, "the bind password: the file's first line" },
	{ "base", CG_CONF_STRING, K(base), NULL, CG_CONF_REQUIRED, 0, 0, NULL, NULL,
	  "search base" },
	{ "scope", CG_CONF_ENUM, K(scope), "sub", 0, 0, 0, scopes, NULL, NULL },
	{ "account_attribute", CG_CONF_STRING, K(account_attribute), "sAMAccountName", 0, 0, 0,
	  NULL, NULL, "its value becomes the account" },
	{ "groups_attribute", CG_CONF_STRING, K(groups_attribute), NULL, 0, 0, 0, NULL, NULL,
	  "its values (DNs) become the account's groups; empty: none" },
	{ "lookups", CG_CONF_STRINGS, K(lookups), "altSecurityIdentities,userPrincipalName", 0,
	  0, 0, NULL, NULL, "in this order" },
	{ "strong_binding", CG_CONF_ENUM, K(strong_binding), "full", 0, 0, 0, bindings, NULL,
	  NULL },
	{ "cache_ttl", CG_CONF_INT, K(cache_ttl), "300", 0, 0, 86400, NULL, NULL,
	  "seconds a found account is remembered" },
	{ "negative_ttl", CG_CONF_INT, K(negative_ttl), "30", 0, 0, 86400, NULL, NULL,
	  "seconds a miss is remembered" },
	{ "timeout", CG_CONF_INT, K(timeout), "3", 0, 1, 300, NULL, NULL,
	  "seconds for one lookup, connect included" },
};

const struct cg_conf_schema ca_directory_schema = {
	"directory", sizeof(struct ca_directory_conf), directory_keys, CG_NELEM(directory_keys),
	K(src), K(name),
};

/* The first line of a password file, without its line end. */
static char *
read_password(const char *path, char *err, size_t errlen)
{
	char buf[PASSWORD_MAX + 2];
	FILE *fp = fopen(path, "r");
	size_t n;
	char *pw;

	if (fp == NULL) {
		snprintf(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	n = strcspn(buf, "\r\n");
	if (n == 0 || n > PASSWORD_MAX) {
		snprintf(err, errlen, "\"%s\": %s", path, n == 0 ? "empty first line" :
		    "password longer than 1024 bytes");
		gnutls_memset(buf, 0, sizeof(buf));
		return NULL;
	}
	pw = cg_strndup(buf, n);
	gnutls_memset(buf, 0, sizeof(buf));
	return pw;
}

/* The CA file must hold at least one certificate GnuTLS can read: libldap
 * would otherwise fail only at the first lookup. */
static int
check_ca_file(const char *path, char *err, size_t errlen)
{
	gnutls_datum_t file = { NULL, 0 };
	gnutls_x509_crt_t *crts = NULL;
	unsigned n = 0, i;
	int rc;

	if ((rc = gnutls_load_file(path, &file)) < 0) {
		snprintf(err, errlen, "cannot read \"%s\": %s (%d)", path, gnutls_strerror(rc), rc);
		return -1;
	}
	rc = gnutls_x509_crt_list_import2(&crts, &n, &file, GNUTLS_X509_FMT_PEM, 0);
	gnutls_free(file.data);
	if (rc < 0 || n == 0) {
		snprintf(err, errlen, "\"%s\": no PEM certificate: %s (%d)", path,
		    rc < 0 ? gnutls_strerror(rc) : "empty", rc);
		return -1;
	}
	for (i = 0; i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	return 0;
}

int
ca_directory_build(struct ca_directory *d, const struct ca_directory_conf *c,
    struct cg_errors *errs)
{
	size_t before = errs->n, i, j, k;
	int tls = 0;
	char err[300];

	memset(d, 0, sizeof(*d));
	d->conf = c;
	if (c->uri.n == 0)
		cg_error_add(errs, cg_conf_setting(&c->src, "uri"), "directory \"%s\": \"uri\" is "
		    "empty", c->name);
	for (i = 0; i < c->uri.n; i++) {
		if (strncasecmp(c->uri.v[i], "ldaps://", 8) == 0)
			tls = 1;
		else if (strncasecmp(c->uri.v[i], "ldap://", 7) == 0)
			tls |= c->start_tls;
		else
			cg_error_add(errs, cg_conf_setting(&c->src, "uri"), "directory \"%s\": "
			    "\"%s\" is not an ldap:// or ldaps:// URI", c->name, c->uri.v[i]);
	}
	/* libldap takes one CA file (LDAP_OPT_X_TLS_CACERTFILE). */
	if (tls && c->ca.n != 1)
		cg_error_add(errs, cg_conf_setting(&c->src, "ca"), "directory \"%s\": TLS needs "
		    "\"ca\": exactly one PEM file (concatenate several)", c->name);
	for (i = 0; i < c->ca.n; i++)
		if (check_ca_file(c->ca.v[i], err, sizeof(err)) < 0)
			cg_error_add(errs, cg_conf_setting(&c->src, "ca"), "directory \"%s\": %s",
			    c->name, err);
	if (c->bind_dn[0] != '\0' && c->bind_password_file[0] == '\0')
		cg_error_add(errs, cg_conf_setting(&c->src, "bind_dn"), "directory \"%s\": "
		    "\"bind_dn\" needs \"bind_password_file\"", c->name);
	if (c->bind_password_file[0] != '\0' &&
	    (d->password = read_password(c->bind_password_file, err, sizeof(err))) == NULL)
		cg_error_add(errs, cg_conf_setting(&c->src, "bind_password_file"),
		    "directory \"%s\": %s", c->name, err);
	if (c->account_attribute[0] == '\0')
		cg_error_add(errs, cg_conf_setting(&c->src, "account_attribute"),
		    "directory \"%s\": \"account_attribute\" is empty", c->name);
	for (i = 0; i < c->lookups.n; i++) {
		for (j = 0; j < CA_LOOKUP__MAX; j++)
			if (strcmp(c->lookups.v[i], ca_dir_lookup_names[j]) == 0)
				break;
		if (j == CA_LOOKUP__MAX) {
			cg_error_add(errs, cg_conf_setting(&c->src, "lookups"), "directory \"%s\": "
			    "lookup \"%s\" is not \"altSecurityIdentities\" or "
			    "\"userPrincipalName\"", c->name, c->lookups.v[i]);
			continue;
		}
		for (k = 0; k < d->nlookups; k++)
			if (d->lookups[k] == (enum ca_dir_lookup)j)
				break;
		if (k < d->nlookups) {
			cg_error_add(errs, cg_conf_setting(&c->src, "lookups"), "directory \"%s\": "
			    "lookup \"%s\" is listed twice", c->name, c->lookups.v[i]);
			continue;
		}
		d->lookups[d->nlookups++] = (enum ca_dir_lookup)j;
	}
	if (c->lookups.n == 0)
		cg_error_add(errs, cg_conf_setting(&c->src, "lookups"), "directory \"%s\": "
		    "\"lookups\" is empty", c->name);
	return errs->n == before ? 0 : -1;
}

void
ca_directory_free(struct ca_directory *d)
{
	if (d == NULL)
		return;
	if (d->password != NULL) {
		gnutls_memset(d->password, 0, strlen(d->password));
		free(d->password);
	}
	d->password = NULL;
}

/* ---- filters ---- */

char *
ca_ldap_escape(const char *v, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char *out = cg_malloc(len * 3 + 1), *o = out;
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (ch == '*' || ch == '(' || ch == ')' || ch == '\\' || ch == 0 || ch >= 0x80) {
			*o++ = '\\';
			*o++ = hex[ch >> 4];
			*o++ = hex[ch & 15];
		} else {
			*o++ = (char)ch;
		}
	}
	*o = '\0';
	return out;
}

static void
add_value(struct ca_dir_query *q, const char *format, int strong, char *value)
{
	q->v = cg_realloc(q->v, (q->n + 1) * sizeof(*q->v));
	q->v[q->n].value = value;
	q->v[q->n].format = format;
	q->v[q->n].strong = strong;
	q->n++;
}

/*
 * altSecurityIdentities as Active Directory writes it (the "Name Mappings"
 * dialog, KB5014754's table): DNs in certificate order, most general
 * first, "," between RDNs and Windows' X.500 keys (S= for ST, E= for
 * emailAddress); the serial as Windows keeps it, little-endian: the DER
 * INTEGER's bytes reversed (a leading 00 byte ends up last); hex upper
 * case (the directory compares case-insensitively anyway).
 *
 * <SHA1-PUKEY> is, despite its name, the SHA-1 of the whole DER
 * certificate (its "thumbprint"), not of the public key: Microsoft's own
 * Microsoft.Entra.CertificateBasedAuthentication module builds
 * "X509:<SHA1-PUKEY>" from X509Certificate2.Thumbprint (its test vector
 * 34BE02DC... is the certificate's SHA-1; the SPKI's would be F2F4D2E7...),
 * and so do BloodHound's ESC14 instructions (openssl x509 -fingerprint
 * -sha1) and powershellYK's ConvertTo-AltSecurity.
 */
static void
altsecid_values(const struct ca_facts *f, struct ca_dir_query *q)
{
	char hex[2 * 64 + 1];
	uint8_t rev[64];
	size_t i;

	for (i = 0; i < f->serial_len; i++)
		rev[i] = f->serial[f->serial_len - 1 - i];
	cg_hex_upper(hex, rev, f->serial_len);
	add_value(q, "X509:<I><SR>", 1, cg_printf("X509:<I>%s<SR>%s", f->issuer.ad, hex));
	if (f->ski_len > 0) {
		cg_hex_upper(hex, f->ski, f->ski_len);
		add_value(q, "X509:<SKI>", 1, cg_printf("X509:<SKI>%s", hex));
	}
	cg_hex_upper(hex, f->sha1, sizeof(f->sha1));
	add_value(q, "X509:<SHA1-PUKEY>", 1, cg_printf("X509:<SHA1-PUKEY>%s", hex));
	if (f->subject.ad[0] != '\0') {
		add_value(q, "X509:<I><S>", 0, cg_printf("X509:<I>%s<S>%s", f->issuer.ad,
		    f->subject.ad));
		add_value(q, "X509:<S>", 0, cg_printf("X509:<S>%s", f->subject.ad));
	}
	for (i = 0; i < f->san_email.n; i++)
		add_value(q, "X509:<RFC822>", 0, cg_printf("X509:<RFC822>%s", f->san_email.v[i]));
}

void
ca_dir_query_build(const struct ca_facts *f, enum ca_dir_lookup l, struct ca_dir_query *q)
{
	struct cg_buf b = { NULL, 0, 0, 0 };
	size_t i;

	memset(q, 0, sizeof(*q));
	q->lookup = l;
	q->attribute = ca_dir_lookup_names[l];
	if (l == CA_LOOKUP_ALTSECID)
		altsecid_values(f, q);
	else
		for (i = 0; i < f->san_upn.n; i++)
			add_value(q, "UPN", 0, cg_strdup(f->san_upn.v[i]));
	if (q->n == 0)
		return;
	if (q->n > 1)
		cg_buf_append(&b, "(|", 2);
	for (i = 0; i < q->n; i++) {
		char *esc = ca_ldap_escape(q->v[i].value, strlen(q->v[i].value));

		cg_buf_printf(&b, "(%s=%s)", q->attribute, esc);
		free(esc);
	}
	if (q->n > 1)
		cg_buf_append(&b, ")", 1);
	q->filter = cg_strndup((const char *)cg_buf_head(&b), cg_buf_avail(&b));
	cg_buf_free(&b);
}

void
ca_dir_query_free(struct ca_dir_query *q)
{
	size_t i;

	if (q == NULL)
		return;
	for (i = 0; i < q->n; i++)
		free(q->v[i].value);
	free(q->v);
	free(q->filter);
	memset(q, 0, sizeof(*q));
}

/* ---- what comes back ---- */

int
ca_sid_to_string(const uint8_t *b, size_t len, char *out, size_t outsize)
{
	uint64_t auth = 0;
	size_t i, n, off;
	int w;

	if (len < 8 || b[0] != 1 || b[1] > 15 || len != 8 + 4 * (size_t)b[1])
		return -1;
	n = b[1];
	for (i = 2; i < 8; i++)
		auth = auth << 8 | b[i];
	w = snprintf(out, outsize, "S-1-%llu", (unsigned long long)auth);
	if (w < 0 || (size_t)w >= outsize)
		return -1;
	off = (size_t)w;
	for (i = 0; i < n; i++) {
		const uint8_t *s = b + 8 + 4 * i;
		uint32_t v = (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 |
		    (uint32_t)s[3] << 24;

		w = snprintf(out + off, outsize - off, "-%lu", (unsigned long)v);
		if (w < 0 || (size_t)w >= outsize - off)
			return -1;
		off += (size_t)w;
	}
	return 0;
}

char *
ca_dn_group_name(const char *dn)
{
	const char *p = dn;
	char *out, *o;

	while (*p == ' ')
		p++;
	if (strncasecmp(p, "CN=", 3) == 0)
		p += 3;
	else if (strncmp(p, "2.5.4.3=", 8) == 0)
		p += 8;
	else
		return cg_strdup(dn);
	out = o = cg_malloc(strlen(p) + 1);
	for (; *p != '\0' && *p != ',' && *p != '+'; p++) {
		if (*p != '\\') {
			*o++ = *p;
			continue;
		}
		if (cg_hexval((unsigned char)p[1]) >= 0 && cg_hexval((unsigned char)p[2]) >= 0) {
			*o++ = (char)(cg_hexval((unsigned char)p[1]) << 4 |
			    cg_hexval((unsigned char)p[2]));
			p += 2;
		} else if (p[1] != '\0') {
			*o++ = *++p;
		}
	}
	*o = '\0';
	return out;
}

enum ca_dir_verdict
ca_dir_judge(enum ca_dir_binding mode, int strong, const char *cert_sid, const char *entry_sid)
{
	/* Windows refuses a SID extension naming another account whatever the
	 * mode; an entry without objectSid cannot confirm it: refused too. */
	if (cert_sid != NULL && (entry_sid == NULL || strcmp(cert_sid, entry_sid) != 0))
		return CA_DIR_REFUSED_SID;
	if (strong || cert_sid != NULL)
		return CA_DIR_STRONG;
	return mode == CA_BIND_FULL ? CA_DIR_REFUSED_WEAK : CA_DIR_WEAK;
}
