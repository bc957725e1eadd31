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

	if (len > 64)
		len = 64;
	cg_hex_upper(hex, p, len);
	put(fn, ctx, name, hex);
}

static void
two_digits(char **o, int v, char sep)
{
	*(*o)++ = (char)('0' + v / 10 % 10);
	*(*o)++ = (char)('0' + v % 10);
	*(*o)++ = sep;
}

/* OpenSSL's ASN1_TIME_print: "Jan  1 00:00:00 2026 GMT". */
static void
put_time(ca_var_fn fn, void *ctx, const char *name, time_t t)
{
	static const char mon[12][4] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	char out[40], *o = out;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_mon < 0 || tm.tm_mon > 11 ||
	    tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 99999) {
		put(fn, ctx, name, "");
		return;
	}
	/* By hand: this runs for every request that exports the variables. */
	memcpy(o, mon[tm.tm_mon], 3);
	o += 3;
	*o++ = ' ';
	*o++ = tm.tm_mday < 10 ? ' ' : (char)('0' + tm.tm_mday / 10);
	*o++ = (char)('0' + tm.tm_mday % 10);
	*o++ = ' ';
	two_digits(&o, tm.tm_hour, ':');
	two_digits(&o, tm.tm_min, ':');
	two_digits(&o, tm.tm_sec, ' ');
	o += cg_fmt_u64(o, (uint64_t)(tm.tm_year + 1900));
	memcpy(o, " GMT", 5);
	put(fn, ctx, name, out);
}

/* PREFIX, then _SUFFIX when there is one, then _N when n >= 0; 0 when it
 * does not fit. Not snprintf: this names every variable of every request,
 * and snprintf costs ten times as much. */
static int
var_name(char *out, size_t size, const char *prefix, const char *suffix, long long n)
{
	size_t pl = strlen(prefix), sl = suffix ? strlen(suffix) : 0, o = pl;

	if (pl + 1 + sl + 1 + 21 > size)
		return 0;
	memcpy(out, prefix, pl);
	if (suffix != NULL) {
		out[o++] = '_';
		memcpy(out + o, suffix, sl);
		o += sl;
	}
	if (n >= 0) {
		out[o++] = '_';
		o += cg_fmt_u64(out + o, (uint64_t)n);
	}
	out[o] = '\0';
	return 1;
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
		/* The first of a type unnumbered, then _1, _2 ... */
		if (!var_name(name, sizeof(name), prefix, dn_parts[k].suffix,
		    count[k] == 0 ? -1 : (long long)count[k]))
			continue;
		count[k]++;
		put(fn, ctx, name, dn->attrs[i].value);
	}
}

static void
put_list(ca_var_fn fn, void *ctx, const char *prefix,
    const struct cg_strv *sv)
{
	char name[64];
	size_t i;

	for (i = 0; i < sv->n; i++)
		if (var_name(name, sizeof(name), prefix, NULL, (long long)i))
			put(fn, ctx, name, sv->v[i]);
}

long long
ca_days_remaining(const struct ca_facts *f, time_t now)
{
	/* mod_ssl: whole days left (ASN1_TIME_diff), 0 once expired. */
	return f->not_after > now ? ((long long)f->not_after - (long long)now) / 86400 : 0;
}

void
ca_export_ssl(const struct ca_facts *f, time_t now, ca_var_fn fn, void *ctx)
{
	char num[32];

	if (f == NULL || f->der == NULL)
		return;
	put_dn(fn, ctx, "SSL_CLIENT_S_DN", &f->subject);
	put_dn(fn, ctx, "SSL_CLIENT_I_DN", &f->issuer);
	cg_fmt_u64(num, (uint64_t)(f->version > 0 ? f->version : 0));
	put(fn, ctx, "SSL_CLIENT_M_VERSION", num);
	put(fn, ctx, "SSL_CLIENT_M_SERIAL", f->serial_hex);
	put_time(fn, ctx, "SSL_CLIENT_V_START", f->not_before);
	put_time(fn, ctx, "SSL_CLIENT_V_END", f->not_after);
	cg_fmt_u64(num, (uint64_t)ca_days_remaining(f, now));
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
