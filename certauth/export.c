/*
 * export.c: the variables that describe a client certificate to the
 * application, under mod_ssl's names and formats (SSL_CLIENT_*) and IIS's
 * (CERT_*), from facts read once by facts.c. SPEC section 6.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "certauth/certauth.h"

/*
 * mod_ssl's DN suffixes (ssl_var_lookup_ssl_cert_dn_rec, the entries it
 * extracts) by the attribute's short name as facts.c spells it.
 */
static const struct {
	const char	*sn;
	const char	*suffix;
} dn_parts[] = {
	{ "C", "C" },
	{ "ST", "ST" },
	{ "L", "L" },
	{ "O", "O" },
	{ "OU", "OU" },
	{ "CN", "CN" },
	{ "title", "T" },
	{ "initials", "I" },
	{ "GN", "G" },
	{ "SN", "S" },
	{ "description", "D" },
	{ "UID", "UID" },
	{ "emailAddress", "Email" },
};

static void
put(ca_var_fn fn, void *ctx, const char *name, const char *value)
{
	size_t len;

	if (value == NULL)
		value = "";
	len = strlen(value);
	if (len > CA_VAR_CAP) {
		cg_log(CG_LOG_WARN, 0, "certificate variable %s: %zu bytes, "
		    "over the %d byte cap: exported as TOO_LARGE", name, len,
		    CA_VAR_CAP);
		value = "TOO_LARGE";
		len = strlen(value);
	}
	fn(ctx, name, value, len);
}

static void
put_hex(ca_var_fn fn, void *ctx, const char *name, const uint8_t *p,
    size_t len)
{
	char hex[2 * 64 + 1];
	size_t i;

	if (len > 64)
		len = 64;
	for (i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02X", p[i]);
	hex[2 * len] = '\0';
	put(fn, ctx, name, hex);
}

/* OpenSSL's ASN1_TIME_print: "Jan  1 00:00:00 2026 GMT". */
static void
put_time(ca_var_fn fn, void *ctx, const char *name, time_t t)
{
	static const char mon[12][4] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	char out[80];
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_mon < 0 || tm.tm_mon > 11) {
		put(fn, ctx, name, "");
		return;
	}
	snprintf(out, sizeof(out), "%s %2d %02d:%02d:%02d %d GMT",
	    mon[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    tm.tm_year + 1900);
	put(fn, ctx, name, out);
}

/*
 * PREFIX (the DN in RFC 4514), then PREFIX_x for each attribute mod_ssl
 * extracts: the first of a type unsuffixed, later ones _1, _2 ... in the
 * certificate's order, as mod_ssl's extract_dn() numbers them.
 */
static void
put_dn(ca_var_fn fn, void *ctx, const char *prefix, const struct ca_dn *dn)
{
	unsigned count[CG_NELEM(dn_parts)];
	char name[64];
	size_t i, k;

	put(fn, ctx, prefix, dn->rfc4514);
	memset(count, 0, sizeof(count));
	for (i = 0; i < dn->n; i++) {
		for (k = 0; k < CG_NELEM(dn_parts); k++)
			if (strcmp(dn->attrs[i].name, dn_parts[k].sn) == 0)
				break;
		if (k == CG_NELEM(dn_parts))
			continue;
		if (count[k]++ == 0)
			snprintf(name, sizeof(name), "%s_%s", prefix,
			    dn_parts[k].suffix);
		else
			snprintf(name, sizeof(name), "%s_%s_%u", prefix,
			    dn_parts[k].suffix, count[k] - 1);
		put(fn, ctx, name, dn->attrs[i].value);
	}
}

static void
put_list(ca_var_fn fn, void *ctx, const char *prefix,
    const struct cg_strv *sv)
{
	char name[64];
	size_t i;

	for (i = 0; i < sv->n; i++) {
		snprintf(name, sizeof(name), "%s_%zu", prefix, i);
		put(fn, ctx, name, sv->v[i]);
	}
}

void
ca_export_ssl(const struct ca_facts *f, time_t now, ca_var_fn fn, void *ctx)
{
	char num[32];
	long long days = 0;

	if (f == NULL || f->der == NULL)
		return;
	put_dn(fn, ctx, "SSL_CLIENT_S_DN", &f->subject);
	put_dn(fn, ctx, "SSL_CLIENT_I_DN", &f->issuer);
	snprintf(num, sizeof(num), "%d", f->version);
	put(fn, ctx, "SSL_CLIENT_M_VERSION", num);
	put(fn, ctx, "SSL_CLIENT_M_SERIAL", f->serial_hex);
	put_time(fn, ctx, "SSL_CLIENT_V_START", f->not_before);
	put_time(fn, ctx, "SSL_CLIENT_V_END", f->not_after);
	/* mod_ssl: whole days left (ASN1_TIME_diff), 0 once expired. */
	if (f->not_after > now)
		days = ((long long)f->not_after - (long long)now) / 86400;
	snprintf(num, sizeof(num), "%lld", days);
	put(fn, ctx, "SSL_CLIENT_V_REMAIN", num);
	put(fn, ctx, "SSL_CLIENT_A_SIG", f->sig_alg);
	put(fn, ctx, "SSL_CLIENT_A_KEY", f->key_alg);
	put_list(fn, ctx, "SSL_CLIENT_SAN_Email", &f->san_email);
	put_list(fn, ctx, "SSL_CLIENT_SAN_DNS", &f->san_dns);
	put_list(fn, ctx, "SSL_CLIENT_SAN_OTHER_msUPN", &f->san_upn);
	put_hex(fn, ctx, "SSL_CLIENT_FINGERPRINT_SHA256", f->sha256,
	    sizeof(f->sha256));
}

void
ca_export_iis(const struct ca_facts *f, ca_var_fn fn, void *ctx)
{
	if (f == NULL || f->der == NULL)
		return;
	put_hex(fn, ctx, "CERT_COOKIE", f->sha256, sizeof(f->sha256));
	put(fn, ctx, "CERT_SUBJECT", f->subject.iis);
	put(fn, ctx, "CERT_ISSUER", f->issuer.iis);
	put(fn, ctx, "CERT_SERIALNUMBER", f->serial_iis);
}
