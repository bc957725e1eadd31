/*
 * test_facts.c: certauth/facts.c and certauth/export.c on the test PKI
 * (CG_TEST_PKI, made by tests/pki/mkpki.sh). Every fact is checked against
 * what openssl or certtool say of the same file, or what the template says.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "certauth/certauth.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))
#define MAXVARS		256

static const char *pki;

struct vars {
	char	*name[MAXVARS];
	char	*value[MAXVARS];
	size_t	 n;
};

/* ---- helpers ---- */

static char *
path_of(const char *name)
{
	return cg_printf("%s/%s.pem", pki, name);
}

/* The PEM file NAME.pem as DER. */
static gnutls_datum_t
load_der(const char *name)
{
	gnutls_datum_t pem, der;
	char *path = path_of(name);

	if (gnutls_load_file(path, &pem) < 0)
		fail_msg("cannot read %s", path);
	if (gnutls_pem_base64_decode2("CERTIFICATE", &pem, &der) < 0)
		fail_msg("%s: not a PEM certificate", path);
	gnutls_free(pem.data);
	free(path);
	return der;
}

static void
load_facts(const char *name, struct ca_facts *f)
{
	gnutls_datum_t der = load_der(name);
	char err[256];

	if (ca_facts_from_der(der.data, der.size, f, err, sizeof(err)) != 0)
		fail_msg("%s: %s", name, err);
	assert_int_equal(f->der_len, der.size);
	assert_memory_equal(f->der, der.data, der.size);
	gnutls_free(der.data);
}

/* Runs a shell command; its standard output without the final newline. */
static char *
run(const char *fmt, ...)
{
	struct cg_buf b = { 0 };
	char chunk[4096], *cmd;
	va_list ap;
	size_t n;
	FILE *p;

	va_start(ap, fmt);
	if (vasprintf(&cmd, fmt, ap) < 0)
		fail_msg("vasprintf");
	va_end(ap);
	if ((p = popen(cmd, "r")) == NULL)
		fail_msg("popen %s", cmd);
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		cg_buf_append(&b, chunk, n);
	if (pclose(p) != 0)
		fail_msg("failed: %s", cmd);
	free(cmd);
	while (b.len > 0 && b.data[b.len - 1] == '\n')
		b.len--;
	cg_buf_append(&b, "", 1);
	return (char *)b.data;
}

/* The text after PREFIX on the first line of s that holds it. */
static char *
field(const char *s, const char *prefix)
{
	const char *p = strstr(s, prefix), *e;

	if (p == NULL)
		return NULL;
	p += strlen(prefix);
	e = strchr(p, '\n');
	return cg_strndup(p, e != NULL ? (size_t)(e - p) : strlen(p));
}

static char *
hex(const uint8_t *p, size_t len)
{
	char *s = cg_malloc(2 * len + 1);
	size_t i;

	for (i = 0; i < len; i++)
		snprintf(s + 2 * i, 3, "%02X", p[i]);
	s[2 * len] = '\0';
	return s;
}

static void
collect(void *ctx, const char *name, const char *value, size_t vlen)
{
	struct vars *v = ctx;
	size_t i;

	assert_true(v->n < MAXVARS);
	assert_int_equal(strlen(value), vlen);
	for (i = 0; i < v->n; i++)
		if (strcmp(v->name[i], name) == 0)
			fail_msg("%s exported twice", name);
	v->name[v->n] = cg_strdup(name);
	v->value[v->n] = cg_strdup(value);
	v->n++;
}

static const char *
var(const struct vars *v, const char *name)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		if (strcmp(v->name[i], name) == 0)
			return v->value[i];
	return NULL;
}

#define assert_var(v, name, want) do {					\
	const char *got_ = var((v), (name));				\
	if (got_ == NULL)						\
		fail_msg("%s not exported", (name));			\
	if (strcmp(got_, (want)) != 0)					\
		fail_msg("%s: got \"%s\", want \"%s\"", (name), got_,	\
		    (want));						\
} while (0)

#define assert_no_var(v, name) do {					\
	if (var((v), (name)) != NULL)					\
		fail_msg("%s exported", (name));			\
} while (0)

static void
vars_free(struct vars *v)
{
	size_t i;

	for (i = 0; i < v->n; i++) {
		free(v->name[i]);
		free(v->value[i]);
	}
	v->n = 0;
}

static void
export_all(const struct ca_facts *f, time_t now, struct vars *v)
{
	memset(v, 0, sizeof(*v));
	ca_export_ssl(f, now, collect, v);
	ca_export_iis(f, collect, v);
}

static time_t
utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	return timegm(&tm);
}

/* ---- every certificate against openssl and certtool ---- */

static const char *const all_certs[] = {
	"alice", "bob", "mallory", "expired", "revoked", "upn", "serveronly",
	"rogue", "server", "root", "issuing", "multiou", "utf8", "escape",
	"oddtypes", "sid", "notyet", "selfsigned", "noeku", "rsa", "ed25519",
	"highserial", "negserial", "large",
};

static void
test_against_tools(void **state)
{
	const char *name = *state;
	struct ca_facts f;
	struct vars v;
	char *path, *text, *s, *want, *got, *sdn, *idn;
	size_t i, k;

	load_facts(name, &f);
	path = path_of(name);

	sdn = run("openssl x509 -in '%s' -noout -subject -nameopt "
	    "RFC2253,-esc_msb | sed 's/^subject=//'", path);
	idn = run("openssl x509 -in '%s' -noout -issuer -nameopt "
	    "RFC2253,-esc_msb | sed 's/^issuer=//'", path);
	assert_string_equal(f.subject.rfc4514, sdn);
	assert_string_equal(f.issuer.rfc4514, idn);

	text = run("openssl x509 -in '%s' -noout -text -serial -startdate "
	    "-enddate", path);
	s = field(text, "serial=");
	assert_string_equal(f.serial_hex, s);
	free(s);
	s = field(text, "Version: ");
	assert_int_equal(f.version, atoi(s));
	free(s);
	s = field(text, "Signature Algorithm: ");
	assert_string_equal(f.sig_alg, s);
	free(s);
	s = field(text, "Public Key Algorithm: ");
	assert_string_equal(f.key_alg, s);
	free(s);
	if ((s = field(text, "Public-Key: (")) != NULL)
		assert_int_equal(f.key_bits, atoi(s));
	else
		assert_int_equal(f.key_bits, 256);	/* Ed25519 */
	free(s);

	/* The serial's DER bytes, for IIS: "XX-XX-...". */
	assert_int_equal(strlen(f.serial_iis), 3 * f.serial_len - 1);
	for (i = 0; i < f.serial_len; i++) {
		char b[3];

		snprintf(b, sizeof(b), "%02X", f.serial[i]);
		assert_memory_equal(f.serial_iis + 3 * i, b, 2);
		if (i > 0)
			assert_int_equal(f.serial_iis[3 * i - 1], '-');
	}

	want = run("certtool --fingerprint --hash sha256 --infile '%s'", path);
	got = hex(f.sha256, sizeof(f.sha256));
	assert_int_equal(strcasecmp(got, want), 0);
	free(got);
	free(want);

	want = run("openssl x509 -in '%s' -noout -pubkey | openssl pkey "
	    "-pubin -outform DER | openssl dgst -sha256 -r | cut -c1-64",
	    path);
	got = hex(f.spki_sha256, sizeof(f.spki_sha256));
	assert_int_equal(strcasecmp(got, want), 0);
	free(got);
	free(want);
	/* AD's <SHA1-PUKEY> is the certificate's SHA-1 (directory.c). */
	want = run("openssl x509 -in '%s' -noout -fingerprint -sha1 | cut -d= -f2 | "
	    "tr -d ':'", path);
	got = hex(f.sha1, sizeof(f.sha1));
	assert_int_equal(strcasecmp(got, want), 0);
	free(got);
	free(want);

	want = run("openssl x509 -in '%s' -noout -ext subjectKeyIdentifier | "
	    "sed -n 2p | tr -d ' :'", path);
	got = hex(f.ski, f.ski_len);
	assert_string_equal(got, want);
	free(got);
	free(want);

	export_all(&f, time(NULL), &v);
	if (strlen(sdn) <= CA_VAR_CAP)
		assert_var(&v, "SSL_CLIENT_S_DN", sdn);
	assert_var(&v, "SSL_CLIENT_I_DN", idn);
	s = field(text, "notBefore=");
	assert_var(&v, "SSL_CLIENT_V_START", s);
	free(s);
	s = field(text, "notAfter=");
	assert_var(&v, "SSL_CLIENT_V_END", s);
	free(s);
	assert_var(&v, "SSL_CLIENT_M_SERIAL", f.serial_hex);
	assert_var(&v, "SSL_CLIENT_A_SIG", f.sig_alg);
	assert_var(&v, "SSL_CLIENT_A_KEY", f.key_alg);
	assert_var(&v, "SSL_CLIENT_M_VERSION", "3");
	assert_var(&v, "CERT_SERIALNUMBER", f.serial_iis);
	got = hex(f.sha256, sizeof(f.sha256));
	assert_var(&v, "SSL_CLIENT_FINGERPRINT_SHA256", got);
	assert_var(&v, "CERT_COOKIE", got);
	free(got);

	/* Only names from SPEC section 6, each value within the cap. */
	for (i = 0; i < v.n; i++) {
		static const char *const prefixes[] = {
			"SSL_CLIENT_S_DN", "SSL_CLIENT_I_DN",
			"SSL_CLIENT_M_", "SSL_CLIENT_V_", "SSL_CLIENT_A_",
			"SSL_CLIENT_SAN_Email_", "SSL_CLIENT_SAN_DNS_",
			"SSL_CLIENT_SAN_OTHER_msUPN_",
			"SSL_CLIENT_FINGERPRINT_SHA256", "CERT_COOKIE",
			"CERT_SUBJECT", "CERT_ISSUER", "CERT_SERIALNUMBER",
		};

		for (k = 0; k < nitems(prefixes); k++)
			if (strncmp(v.name[i], prefixes[k],
			    strlen(prefixes[k])) == 0)
				break;
		if (k == nitems(prefixes))
			fail_msg("unexpected variable %s", v.name[i]);
		assert_true(strlen(v.value[i]) <= CA_VAR_CAP);
	}

	vars_free(&v);
	free(sdn);
	free(idn);
	free(text);
	free(path);
	ca_facts_free(&f);
}

/* ---- what the templates say ---- */

struct want_attr {
	const char	*name;
	const char	*value;
};

static void
check_attrs(const struct ca_dn *dn, const struct want_attr *w, size_t n)
{
	size_t i;

	assert_int_equal(dn->n, n);
	for (i = 0; i < n; i++) {
		assert_string_equal(dn->attrs[i].name, w[i].name);
		assert_string_equal(dn->attrs[i].value, w[i].value);
	}
}

static void
test_multiou(void **state)
{
	static const struct want_attr attrs[] = {
		{ "C", "US" }, { "O", "Corp" }, { "OU", "Engineering" },
		{ "OU", "Platform" }, { "title", "Engineer" },
		{ "CN", "Multi User" },
	};
	/* Every variable, in the order exported. */
	static const char *const want[][2] = {
		{ "SSL_CLIENT_S_DN", "CN=Multi User,title=Engineer,"
		    "OU=Platform,OU=Engineering,O=Corp,C=US" },
		{ "SSL_CLIENT_S_DN_C", "US" },
		{ "SSL_CLIENT_S_DN_O", "Corp" },
		{ "SSL_CLIENT_S_DN_OU", "Engineering" },
		{ "SSL_CLIENT_S_DN_OU_1", "Platform" },
		{ "SSL_CLIENT_S_DN_T", "Engineer" },
		{ "SSL_CLIENT_S_DN_CN", "Multi User" },
		{ "SSL_CLIENT_I_DN", "CN=Corp Issuing CA,O=Corp,C=US" },
		{ "SSL_CLIENT_I_DN_C", "US" },
		{ "SSL_CLIENT_I_DN_O", "Corp" },
		{ "SSL_CLIENT_I_DN_CN", "Corp Issuing CA" },
		{ "SSL_CLIENT_M_VERSION", "3" },
		{ "SSL_CLIENT_M_SERIAL", "2010" },
		{ "SSL_CLIENT_V_START", NULL },
		{ "SSL_CLIENT_V_END", NULL },
		{ "SSL_CLIENT_V_REMAIN", "365" },
		{ "SSL_CLIENT_A_SIG", "ecdsa-with-SHA256" },
		{ "SSL_CLIENT_A_KEY", "id-ecPublicKey" },
		{ "SSL_CLIENT_SAN_Email_0", "multi@corp.example" },
		{ "SSL_CLIENT_SAN_Email_1", "m.user@corp.example" },
		{ "SSL_CLIENT_SAN_Email_2", "mu@eng.corp.example" },
		{ "SSL_CLIENT_SAN_DNS_0", "multi.corp.example" },
		{ "SSL_CLIENT_FINGERPRINT_SHA256", NULL },
		{ "CERT_COOKIE", NULL },
		{ "CERT_SUBJECT", "C=US, O=Corp, OU=Engineering, OU=Platform, "
		    "T=Engineer, CN=Multi User" },
		{ "CERT_ISSUER", "C=US, O=Corp, CN=Corp Issuing CA" },
		{ "CERT_SERIALNUMBER", "20-10" },
	};
	struct ca_facts f;
	struct vars v;
	size_t i;

	load_facts("multiou", &f);
	check_attrs(&f.subject, attrs, nitems(attrs));
	assert_string_equal(f.subject.iis, want[24][1]);
	assert_int_equal(f.san_email.n, 3);
	assert_int_equal(f.san_dns.n, 1);
	assert_int_equal(f.san_uri.n, 0);
	assert_int_equal(f.san_upn.n, 0);
	assert_null(f.sid);
	assert_true(f.has_eku);
	assert_true(f.eku_client);
	assert_int_equal(f.serial_len, 2);

	/* At not_before, 365 whole days remain. */
	export_all(&f, f.not_before, &v);
	assert_int_equal(v.n, nitems(want));
	for (i = 0; i < nitems(want); i++) {
		assert_string_equal(v.name[i], want[i][0]);
		if (want[i][1] != NULL)
			assert_string_equal(v.value[i], want[i][1]);
	}
	vars_free(&v);
	ca_facts_free(&f);
}

static void
test_utf8(void **state)
{
	static const struct want_attr attrs[] = {
		{ "C", "FR" },
		{ "O", "Soci\xc3\xa9t\xc3\xa9 G\xc3\xa9n\xc3\xa9rale" },
		{ "CN", "Zo\xc3\xab \xc3\x85ngstr\xc3\xb6m" },
	};
	struct ca_facts f;
	struct vars v;

	load_facts("utf8", &f);
	check_attrs(&f.subject, attrs, nitems(attrs));
	assert_string_equal(f.subject.rfc4514,
	    "CN=Zo\xc3\xab \xc3\x85ngstr\xc3\xb6m,"
	    "O=Soci\xc3\xa9t\xc3\xa9 G\xc3\xa9n\xc3\xa9rale,C=FR");
	assert_string_equal(f.subject.iis,
	    "C=FR, O=Soci\xc3\xa9t\xc3\xa9 G\xc3\xa9n\xc3\xa9rale, "
	    "CN=Zo\xc3\xab \xc3\x85ngstr\xc3\xb6m");
	export_all(&f, time(NULL), &v);
	assert_var(&v, "SSL_CLIENT_S_DN_CN",
	    "Zo\xc3\xab \xc3\x85ngstr\xc3\xb6m");
	assert_var(&v, "SSL_CLIENT_S_DN_O",
	    "Soci\xc3\xa9t\xc3\xa9 G\xc3\xa9n\xc3\xa9rale");
	vars_free(&v);
	ca_facts_free(&f);
}

/* RFC 4514 escapes, IIS quotes, and every mod_ssl suffix. */
static void
test_escape(void **state)
{
	static const struct want_attr attrs[] = {
		{ "C", "US" }, { "O", "Corp; <Ltd>" },
		{ "CN", "#Smith, \"Jr\" + Co " }, { "UID", "jsmith" },
		{ "DC", "corp" }, { "DC", "example" }, { "GN", "John" },
		{ "SN", "Smith" }, { "initials", "JS" }, { "title", "Dr." },
		{ "description", "Team lead" },
		{ "emailAddress", "jsmith@corp.example" },
	};
	struct ca_facts f;
	struct vars v;

	load_facts("escape", &f);
	check_attrs(&f.subject, attrs, nitems(attrs));
	assert_string_equal(f.subject.rfc4514,
	    "emailAddress=jsmith@corp.example,description=Team lead,"
	    "title=Dr.,initials=JS,SN=Smith,GN=John,DC=example,DC=corp,"
	    "UID=jsmith,CN=\\#Smith\\, \\\"Jr\\\" \\+ Co\\ ,"
	    "O=Corp\\; \\<Ltd\\>,C=US");
	assert_string_equal(f.subject.iis,
	    "C=US, O=\"Corp; <Ltd>\", CN=\"#Smith, \"\"Jr\"\" + Co \", "
	    "OID.0.9.2342.19200300.100.1.1=jsmith, DC=corp, DC=example, "
	    "G=John, SN=Smith, I=JS, T=Dr., Description=Team lead, "
	    "E=jsmith@corp.example");

	export_all(&f, time(NULL), &v);
	assert_var(&v, "SSL_CLIENT_S_DN_C", "US");
	assert_var(&v, "SSL_CLIENT_S_DN_O", "Corp; <Ltd>");
	assert_var(&v, "SSL_CLIENT_S_DN_CN", "#Smith, \"Jr\" + Co ");
	assert_var(&v, "SSL_CLIENT_S_DN_UID", "jsmith");
	assert_var(&v, "SSL_CLIENT_S_DN_G", "John");
	assert_var(&v, "SSL_CLIENT_S_DN_S", "Smith");
	assert_var(&v, "SSL_CLIENT_S_DN_I", "JS");
	assert_var(&v, "SSL_CLIENT_S_DN_T", "Dr.");
	assert_var(&v, "SSL_CLIENT_S_DN_D", "Team lead");
	assert_var(&v, "SSL_CLIENT_S_DN_Email", "jsmith@corp.example");
	/* mod_ssl extracts no DC. */
	assert_no_var(&v, "SSL_CLIENT_S_DN_DC");
	assert_no_var(&v, "SSL_CLIENT_S_DN_OU");
	assert_var(&v, "CERT_SUBJECT", f.subject.iis);
	vars_free(&v);
	ca_facts_free(&f);
}

/* BMP, Universal and Teletex strings, a control byte, an unknown type, a
 * value that is no string. */
static void
test_oddtypes(void **state)
{
	static const struct want_attr attrs[] = {
		{ "C", "US" }, { "serialNumber", "#3003020105" },
		{ "1.2.3.4", "odd" }, { "L", "a\\01b" },
		{ "O", "Soci\xc3\xa9t\xc3\xa9" }, { "OU", "Ops" },
		{ "CN", "Zo\xc3\xab" },
	};
	struct ca_facts f;
	struct vars v;

	load_facts("oddtypes", &f);
	check_attrs(&f.subject, attrs, nitems(attrs));
	assert_string_equal(f.subject.rfc4514, "CN=Zo\xc3\xab,OU=Ops,"
	    "O=Soci\xc3\xa9t\xc3\xa9,L=a\\01b,1.2.3.4=#0C036F6464,"
	    "serialNumber=#3003020105,C=US");
	assert_string_equal(f.subject.iis, "C=US, SERIALNUMBER=\"#3003020105\","
	    " OID.1.2.3.4=odd, L=a\\01b, O=Soci\xc3\xa9t\xc3\xa9, OU=Ops, "
	    "CN=Zo\xc3\xab");
	export_all(&f, time(NULL), &v);
	assert_var(&v, "SSL_CLIENT_S_DN_L", "a\\01b");
	assert_var(&v, "SSL_CLIENT_S_DN_CN", "Zo\xc3\xab");
	vars_free(&v);
	ca_facts_free(&f);
}

static void
test_serials(void **state)
{
	static const struct {
		const char	*name;
		const char	*hex, *iis;
		size_t		 len;
	} cases[] = {
		/* The template's 0x00C0FFEE0042: DER keeps the 00. */
		{ "highserial", "C0FFEE0042", "00-C0-FF-EE-00-42", 6 },
		/* 0x8A1B2C3D without a 00 is a negative INTEGER. */
		{ "negserial", "-75E4D3C3", "8A-1B-2C-3D", 4 },
		{ "alice", "2001", "20-01", 2 },
		{ "root", "01", "01", 1 },
	};
	struct ca_facts f;
	struct vars v;
	size_t i;

	for (i = 0; i < nitems(cases); i++) {
		load_facts(cases[i].name, &f);
		assert_string_equal(f.serial_hex, cases[i].hex);
		assert_string_equal(f.serial_iis, cases[i].iis);
		assert_int_equal(f.serial_len, cases[i].len);
		export_all(&f, time(NULL), &v);
		assert_var(&v, "SSL_CLIENT_M_SERIAL", cases[i].hex);
		assert_var(&v, "CERT_SERIALNUMBER", cases[i].iis);
		vars_free(&v);
		ca_facts_free(&f);
	}
}

static void
test_sans_and_sid(void **state)
{
	struct ca_facts f;
	struct vars v;

	load_facts("upn", &f);
	assert_int_equal(f.san_upn.n, 1);
	assert_string_equal(f.san_upn.v[0], "frank@corp.example");
	assert_null(f.sid);
	export_all(&f, time(NULL), &v);
	assert_var(&v, "SSL_CLIENT_SAN_OTHER_msUPN_0", "frank@corp.example");
	assert_no_var(&v, "SSL_CLIENT_SAN_OTHER_msUPN_1");
	assert_no_var(&v, "SSL_CLIENT_SAN_Email_0");
	vars_free(&v);
	ca_facts_free(&f);

	load_facts("alice", &f);
	assert_int_equal(f.san_email.n, 1);
	assert_string_equal(f.san_email.v[0], "alice@corp.example");
	ca_facts_free(&f);

	load_facts("server", &f);
	assert_int_equal(f.san_dns.n, 2);
	assert_string_equal(f.san_dns.v[0], "localhost");
	assert_string_equal(f.san_dns.v[1], "intranet.test");
	ca_facts_free(&f);

	load_facts("sid", &f);
	assert_non_null(f.sid);
	assert_string_equal(f.sid,
	    "S-1-5-21-1004336348-1177238915-682003330-1105");
	ca_facts_free(&f);
}

static void
test_key_purposes(void **state)
{
	static const struct {
		const char	*name;
		int		 has, client;
	} cases[] = {
		{ "alice", 1, 1 },
		{ "noeku", 0, 0 },
		{ "serveronly", 1, 0 },
		{ "root", 0, 0 },
	};
	struct ca_facts f;
	size_t i;

	for (i = 0; i < nitems(cases); i++) {
		load_facts(cases[i].name, &f);
		assert_int_equal(f.has_eku, cases[i].has);
		assert_int_equal(f.eku_client, cases[i].client);
		ca_facts_free(&f);
	}
}

static void
test_algorithms(void **state)
{
	struct ca_facts f;

	load_facts("rsa", &f);
	assert_string_equal(f.key_alg, "rsaEncryption");
	assert_int_equal(f.key_bits, 2048);
	assert_string_equal(f.sig_alg, "ecdsa-with-SHA256");
	ca_facts_free(&f);

	load_facts("selfsigned", &f);
	assert_string_equal(f.key_alg, "rsaEncryption");
	assert_string_equal(f.sig_alg, "sha256WithRSAEncryption");
	assert_string_equal(f.issuer.rfc4514, f.subject.rfc4514);
	assert_string_equal(f.issuer.iis, "C=US, O=Nowhere, CN=Self Signed");
	ca_facts_free(&f);

	load_facts("ed25519", &f);
	assert_string_equal(f.key_alg, "ED25519");
	ca_facts_free(&f);

	load_facts("alice", &f);
	assert_string_equal(f.key_alg, "id-ecPublicKey");
	assert_int_equal(f.key_bits, 256);
	ca_facts_free(&f);
}

/* ASN1_TIME_print's two spaces before a one-digit day; days remaining. */
static void
test_validity(void **state)
{
	struct ca_facts f;
	struct vars v;

	load_facts("notyet", &f);
	assert_int_equal(f.not_before, utc(2040, 1, 1, 0, 0, 0));
	assert_int_equal(f.not_after, utc(2041, 1, 1, 0, 0, 0));
	export_all(&f, utc(2040, 12, 29, 12, 0, 0), &v);
	assert_var(&v, "SSL_CLIENT_V_START", "Jan  1 00:00:00 2040 GMT");
	assert_var(&v, "SSL_CLIENT_V_END", "Jan  1 00:00:00 2041 GMT");
	assert_var(&v, "SSL_CLIENT_V_REMAIN", "2");	/* 2.5 days */
	vars_free(&v);
	export_all(&f, utc(2041, 1, 1, 0, 0, 0), &v);
	assert_var(&v, "SSL_CLIENT_V_REMAIN", "0");
	vars_free(&v);
	ca_facts_free(&f);

	load_facts("expired", &f);
	export_all(&f, time(NULL), &v);
	assert_var(&v, "SSL_CLIENT_V_START", "Jan  1 00:00:00 2020 GMT");
	assert_var(&v, "SSL_CLIENT_V_END", "Jan  1 00:00:00 2021 GMT");
	assert_var(&v, "SSL_CLIENT_V_REMAIN", "0");
	vars_free(&v);
	ca_facts_free(&f);
}

static void
test_too_large(void **state)
{
	struct ca_facts f;
	struct vars v;
	char *big;

	load_facts("large", &f);
	assert_true(strlen(f.subject.rfc4514) > CA_VAR_CAP);
	export_all(&f, time(NULL), &v);
	assert_var(&v, "SSL_CLIENT_S_DN", "TOO_LARGE");
	assert_var(&v, "SSL_CLIENT_S_DN_CN", "TOO_LARGE");
	assert_var(&v, "CERT_SUBJECT", "TOO_LARGE");
	assert_var(&v, "SSL_CLIENT_S_DN_O", "Corp");
	assert_var(&v, "CERT_ISSUER", "C=US, O=Corp, CN=Corp Issuing CA");
	vars_free(&v);
	ca_facts_free(&f);

	/* The boundary: CA_VAR_CAP bytes pass, one more does not. */
	load_facts("alice", &f);
	big = cg_malloc(CA_VAR_CAP + 2);
	memset(big, 'x', CA_VAR_CAP + 1);
	big[CA_VAR_CAP + 1] = '\0';
	free(f.subject.iis);
	f.subject.iis = big;
	free(f.subject.rfc4514);
	f.subject.rfc4514 = cg_strndup(big, CA_VAR_CAP);
	export_all(&f, time(NULL), &v);
	assert_var(&v, "CERT_SUBJECT", "TOO_LARGE");
	assert_int_equal(strlen(var(&v, "SSL_CLIENT_S_DN")), CA_VAR_CAP);
	vars_free(&v);
	ca_facts_free(&f);
}

static void
test_pem(void **state)
{
	gnutls_datum_t der = load_der("alice"), file;
	char *path = path_of("alice"), *pem;

	assert_int_equal(gnutls_load_file(path, &file), 0);
	pem = ca_pem(der.data, der.size);
	assert_non_null(pem);
	assert_int_equal(strlen(pem), file.size);
	assert_memory_equal(pem, file.data, file.size);
	assert_null(ca_pem(der.data, 0));
	free(pem);
	free(path);
	gnutls_free(file.data);
	gnutls_free(der.data);
}

/* A multi-valued RDN: certtool cannot write one, openssl can. */
static void
test_multivalued_rdn(void **state)
{
	char dir[] = "/tmp/certgate-test-facts.XXXXXX", *out, *want, *path;
	gnutls_datum_t der;
	struct ca_facts f;
	char err[256];

	assert_non_null(mkdtemp(dir));
	out = run("cd %s && openssl req -x509 -new -newkey ec -pkeyopt "
	    "ec_paramgen_curve:P-256 -nodes -keyout k.pem -days 2 "
	    "-multivalue-rdn -subj '/C=US/O=Corp/CN=Multi+UID=mv' "
	    "-outform DER -out c.der 2>&1 && openssl x509 -inform DER -in "
	    "c.der -noout -subject -nameopt RFC2253,-esc_msb | "
	    "sed 's/^subject=//'", dir);
	want = strrchr(out, '\n') != NULL ? strrchr(out, '\n') + 1 : out;
	path = cg_printf("%s/c.der", dir);
	assert_int_equal(gnutls_load_file(path, &der), 0);
	free(path);
	if (ca_facts_from_der(der.data, der.size, &f, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(f.subject.rfc4514, want);
	assert_int_equal(f.subject.n, 4);
	assert_string_equal(f.subject.attrs[0].name, "C");
	assert_string_equal(f.subject.attrs[1].name, "O");
	/* DER sorts the set; IIS joins its members with " + ". */
	if (strcmp(f.subject.attrs[2].name, "CN") == 0)
		assert_string_equal(f.subject.iis, "C=US, O=Corp, CN=Multi + "
		    "OID.0.9.2342.19200300.100.1.1=mv");
	else
		assert_string_equal(f.subject.iis, "C=US, O=Corp, "
		    "OID.0.9.2342.19200300.100.1.1=mv + CN=Multi");
	ca_facts_free(&f);
	gnutls_free(der.data);
	free(out);
	free(run("rm -rf %s", dir));
}

/* Untrusted bytes: refused with a reason, facts left empty. */
static void
test_bad_input(void **state)
{
	gnutls_datum_t der = load_der("alice");
	static const uint8_t junk[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };
	struct ca_facts f, zero;
	uint8_t *p;
	char err[128];
	size_t cut;

	memset(&zero, 0, sizeof(zero));
	assert_int_equal(ca_facts_from_der(junk, sizeof(junk), &f, err,
	    sizeof(err)), -1);
	assert_true(err[0] != '\0');
	assert_memory_equal(&f, &zero, sizeof(f));
	assert_int_equal(ca_facts_from_der(NULL, 0, &f, err, sizeof(err)),
	    -1);
	assert_int_equal(ca_facts_from_der(junk, sizeof(junk), &f, NULL, 0),
	    -1);

	for (cut = 1; cut < der.size; cut += 37) {
		assert_int_equal(ca_facts_from_der(der.data, cut, &f, err,
		    sizeof(err)), -1);
		assert_memory_equal(&f, &zero, sizeof(f));
	}
	/* One certificate, nothing after it. */
	p = cg_malloc(der.size + 1);
	memcpy(p, der.data, der.size);
	p[der.size] = 0;
	assert_int_equal(ca_facts_from_der(p, der.size + 1, &f, err,
	    sizeof(err)), -1);
	free(p);

	ca_facts_free(NULL);
	ca_facts_free(&f);
	/* Exporting nothing exports nothing. */
	{
		struct vars v;

		memset(&v, 0, sizeof(v));
		ca_export_ssl(&f, time(NULL), collect, &v);
		ca_export_iis(&f, collect, &v);
		assert_int_equal(v.n, 0);
	}
	gnutls_free(der.data);
}

int
main(void)
{
	struct CMUnitTest tests[nitems(all_certs) + 16];
	char *names[nitems(all_certs)];
	size_t n = 0, i;
	int rc;

	if ((pki = getenv("CG_TEST_PKI")) == NULL || *pki == '\0') {
		fprintf(stderr, "test_facts: set CG_TEST_PKI to a directory "
		    "made by tests/pki/mkpki.sh\n");
		return 1;
	}
	for (i = 0; i < nitems(all_certs); i++) {
		struct CMUnitTest t = cmocka_unit_test_prestate(
		    test_against_tools, (void *)all_certs[i]);

		t.name = names[i] = cg_printf("against_tools(%s)",
		    all_certs[i]);
		tests[n++] = t;
	}
	{
		const struct CMUnitTest more[] = {
			cmocka_unit_test(test_multiou),
			cmocka_unit_test(test_utf8),
			cmocka_unit_test(test_escape),
			cmocka_unit_test(test_oddtypes),
			cmocka_unit_test(test_serials),
			cmocka_unit_test(test_sans_and_sid),
			cmocka_unit_test(test_key_purposes),
			cmocka_unit_test(test_algorithms),
			cmocka_unit_test(test_validity),
			cmocka_unit_test(test_too_large),
			cmocka_unit_test(test_pem),
			cmocka_unit_test(test_multivalued_rdn),
			cmocka_unit_test(test_bad_input),
		};

		for (i = 0; i < nitems(more); i++)
			tests[n++] = more[i];
	}
	rc = _cmocka_run_group_tests("facts", tests, n, NULL, NULL);
	for (i = 0; i < nitems(all_certs); i++)
		free(names[i]);
	return rc;
}
