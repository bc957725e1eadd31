/*
 * test_map.c: certauth/map.c: each one-to-one key kind, DN and hex
 * comparison, '*' patterns, the order of SPEC section 4, every `-t` error
 * with its line, and the load time of 100,000 entries. Facts are made by hand.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/crypto.h>

#include "certauth/certauth.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

static char dir[] = "/tmp/certgate-test-map.XXXXXX";

/* The smallest configuration that holds `accounts` as the gateway will. */
struct top {
	struct ca_accounts_conf accounts;
};
static const struct cg_conf_key top_keys[] = {
	{ "accounts", CG_CONF_GROUP, 0, NULL, 0, 0, 0, NULL, &ca_accounts_schema, NULL },
};
static const struct cg_conf_schema top_schema = {
	"the configuration", sizeof(struct top), top_keys, nitems(top_keys), -1, -1,
};

static const enum ca_map_source both[] = { CA_SRC_ONE_TO_ONE, CA_SRC_MANY_TO_ONE };

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *
write_file(const char *name, const void *data, size_t len)
{
	char *path = cg_printf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	return path;
}

/*
 * Parses text as a configuration file and builds its mapper; the
 * configuration is freed before returning, so the mapper must not point
 * into it. *errs gets the errors joined by newlines ("" when none).
 */
static struct ca_mapper *
load(const char *text, char **errs)
{
	struct cg_errors e = { NULL, 0 };
	struct ca_mapper *m = NULL;
	struct top top;
	config_t cfg;
	char *path = write_file("c.conf", text, strlen(text)), *all = cg_strdup("");
	size_t i;

	memset(&top, 0, sizeof(top));
	if (cg_conf_read_file(&cfg, path, &e) == 0 &&
	    cg_conf_parse(config_root_setting(&cfg), &top_schema, &top, dir, &e) == 0) {
		m = ca_mapper_new(&top.accounts, dir, &e);
		assert_true((m == NULL) == (e.n > 0));
	}
	cg_conf_free(&top_schema, &top);
	config_destroy(&cfg);
	for (i = 0; i < e.n; i++) {
		char *n = cg_printf("%s%s\n", all, e.v[i]);

		free(all);
		all = n;
	}
	cg_errors_free(&e);
	free(path);
	*errs = all;
	return m;
}

static struct ca_mapper *
load_ok(const char *text)
{
	char *errs;
	struct ca_mapper *m = load(text, &errs);

	if (m == NULL)
		fail_msg("unexpected errors:\n%s\nin:\n%s", errs, text);
	free(errs);
	return m;
}

static void
expect_error(const char *text, int line, const char *fragment)
{
	char *errs, *want = cg_printf("%s/c.conf:%d: ", dir, line);
	struct ca_mapper *m = load(text, &errs);

	if (m != NULL || strstr(errs, want) == NULL || strstr(errs, fragment) == NULL)
		fail_msg("expected \"%s...%s\", got:\n%s\nin:\n%s", want, fragment, errs, text);
	ca_mapper_free(m);
	free(want);
	free(errs);
}

/* ---- facts made by hand ---- */

static struct ca_dn_attr subj_attrs[] = {
	{ "C", "US" }, { "O", "Corp" }, { "OU", "Engineering" }, { "OU", "Ops" },
	{ "CN", "Alice Smith" },
};
static struct ca_dn_attr iss_attrs[] = {
	{ "C", "US" }, { "O", "Corp" }, { "CN", "Corp Issuing CA" },
};
static char *emails[] = { "Alice@Corp.Example", "a.smith@corp.example" };
static char *upns[] = { "alice@corp.example" };
static char *dnss[] = { "alice-pc.corp.example" };
static char *uris[] = { "https://id.corp.example/alice" };
static char sid[] = "S-1-5-21-1004336348-1177238915-682003330-1001";

#define SUBJECT		"CN=Alice Smith,OU=Ops,OU=Engineering,O=Corp,C=US"
#define ISSUER		"CN=Corp Issuing CA,O=Corp,C=US"
#define SHA_HEX		"00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:" \
			"10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D:1E:1F"
#define SPKI_HEX	"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"

static void
facts(struct ca_facts *f)
{
	static const uint8_t serial[] = { 0x00, 0x9a, 0x2b, 0x3c };
	static const uint8_t ski[] = { 0x8c, 0x4f, 0x01, 0x02 };
	size_t i;

	memset(f, 0, sizeof(*f));
	f->subject.attrs = subj_attrs;
	f->subject.n = nitems(subj_attrs);
	f->issuer.attrs = iss_attrs;
	f->issuer.n = nitems(iss_attrs);
	for (i = 0; i < 32; i++) {
		f->sha256[i] = (uint8_t)i;
		f->spki_sha256[i] = (uint8_t)(0x80 + i);
	}
	memcpy(f->ski, ski, sizeof(ski));
	f->ski_len = sizeof(ski);
	/* As the DER holds it: a leading 00 keeps 9A positive. */
	memcpy(f->serial, serial, sizeof(serial));
	f->serial_len = sizeof(serial);
	strcpy(f->serial_hex, "009A2B3C");
	f->sid = sid;
	f->san_email = (struct cg_strv){ emails, nitems(emails) };
	f->san_upn = (struct cg_strv){ upns, nitems(upns) };
	f->san_dns = (struct cg_strv){ dnss, nitems(dnss) };
	f->san_uri = (struct cg_strv){ uris, nitems(uris) };
	f->version = 3;
}

#define O2O(entries)	"accounts = {\n  one_to_one = (\n" entries "\n  );\n};\n"
#define M2O(maps)	"accounts = {\n  many_to_one = (\n" maps "\n  );\n};\n"

/* The user text maps f to: the account, "DENY", or "" for none. */
static const char *
map_with(const struct ca_mapper *m, const struct ca_facts *f, struct ca_mapping *out)
{
	ca_map(m, f, both, nitems(both), out);
	if (out->deny) {
		assert_int_equal(out->method, CA_MAP_MANY_TO_ONE);
		assert_null(out->user);
		return "DENY";
	}
	if (out->method == CA_MAP_NONE) {
		assert_null(out->user);
		return "";
	}
	assert_non_null(out->user);
	return out->user;
}

/* ---- one-to-one kinds ---- */

struct kind_case {
	const char *entry;
	int hit;
	int strong;
	const char *why;
};

static const struct kind_case kind_cases[] = {
	{ "sha256 = \"" SHA_HEX "\";", 1, 1, "one-to-one sha256 of entry 1 (u)" },
	{ "sha256 = \"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\";", 1, 1, "sha256" },
	{ "sha256 = \"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1eFF\";", 0, 0, NULL },
	{ "public_key_sha256 = \"" SPKI_HEX "\";", 1, 1, "public_key_sha256" },
	{ "public_key_sha256 = \"80:81:82:83:84:85:86:87:88:89:8A:8B:8C:8D:8E:8F:"
	  "90:91:92:93:94:95:96:97:98:99:9A:9B:9C:9D:9E:9F\";", 1, 1, "public_key_sha256" },
	{ "public_key_sha256 = \"" SHA_HEX "\";", 0, 0, NULL },
	{ "ski = \"8c:4f:01:02\";", 1, 1, "ski" },
	{ "ski = \"8C4F0102\";", 1, 1, "ski" },
	{ "ski = \"8C 4F 01 02\";", 1, 1, "ski" },
	{ "ski = \"8C4F01\";", 0, 0, NULL },
	{ "issuer = \"" ISSUER "\"; serial = \"9A:2B:3C\";", 1, 1, "issuer+serial" },
	{ "issuer = \"cn=Corp Issuing CA, o=Corp, c=US\"; serial = \"009a2b3c\";", 1, 1, "issuer+serial" },
	{ "issuer = \"" ISSUER "\"; serial = \"9A2B3D\";", 0, 0, NULL },
	{ "issuer = \"CN=Other CA,O=Corp,C=US\"; serial = \"9A2B3C\";", 0, 0, NULL },
	{ "sid = \"s-1-5-21-1004336348-1177238915-682003330-1001\";", 1, 1, "sid" },
	{ "sid = \"S-1-5-21-1004336348-1177238915-682003330-1002\";", 0, 0, NULL },
	{ "upn = \"ALICE@corp.example\";", 1, 0, "one-to-one upn of entry 1 (u)" },
	{ "upn = \"bob@corp.example\";", 0, 0, NULL },
	{ "upn = \"Alice@Corp.Example\"; enabled = true;", 1, 0, "upn" },
	/* The email SAN is not the UPN SAN, nor the other way round. */
	{ "upn = \"a.smith@corp.example\";", 0, 0, NULL },
	{ "email = \"alice@corp.example\";", 1, 0, "email" },
	{ "email = \"A.SMITH@corp.example\";", 1, 0, "email" },
	{ "email = \"alice-pc.corp.example\";", 0, 0, NULL },
	{ "subject = \"" SUBJECT "\";", 1, 0, "one-to-one subject of entry 1 (u)" },
	{ "subject = \"CN=Alice Smith,OU=Ops,O=Corp,C=US\";", 0, 0, NULL },
	{ "subject = \"" SUBJECT "\"; issuer = \"" ISSUER "\";", 1, 0, "subject+issuer" },
	{ "subject = \"" SUBJECT "\"; issuer = \"CN=Other CA,O=Corp,C=US\";", 0, 0, NULL },
};

static void
test_key_kinds(void **state)
{
	struct ca_mapping out;
	struct ca_mapper *m;
	struct ca_facts f;
	const char *u;
	char *text;
	size_t i;

	facts(&f);
	for (i = 0; i < nitems(kind_cases); i++) {
		const struct kind_case *c = &kind_cases[i];

		text = cg_printf(O2O("    { user = \"u\"; %s }"), c->entry);
		m = load_ok(text);
		u = map_with(m, &f, &out);
		if (strcmp(u, c->hit ? "u" : "") != 0)
			fail_msg("case %zu (%s): mapped to \"%s\"", i, c->entry, u);
		if (c->hit) {
			assert_int_equal(out.method, CA_MAP_ONE_TO_ONE);
			assert_int_equal(out.strong, c->strong);
			assert_string_equal(out.name, "u");
			if (strstr(out.why, c->why) == NULL)
				fail_msg("case %zu: why \"%s\" lacks \"%s\"", i, out.why, c->why);
		}
		ca_mapper_free(m);
		free(text);
	}
}

/* A self-signed certificate made for the run, DER and PEM. */
static void
make_cert(gnutls_datum_t *der, gnutls_datum_t *pem, uint8_t md[32])
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	unsigned char serial[] = { 0x01, 0x02 };
	time_t t = time(NULL);

	assert_int_equal(gnutls_x509_privkey_init(&key), 0);
	assert_int_equal(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
	    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0), 0);
	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
	assert_int_equal(gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)), 0);
	assert_int_equal(gnutls_x509_crt_set_activation_time(crt, t - 60), 0);
	assert_int_equal(gnutls_x509_crt_set_expiration_time(crt, t + 3600), 0);
	assert_int_equal(gnutls_x509_crt_set_dn(crt, "CN=Alice", NULL), 0);
	assert_int_equal(gnutls_x509_crt_set_key(crt, key), 0);
	assert_int_equal(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), 0);
	assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, der), 0);
	assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, pem), 0);
	assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA256, der->data, der->size, md), 0);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
}

static void
test_certificate(void **state)
{
	gnutls_datum_t der, pem, b64;
	struct ca_mapping out;
	struct ca_mapper *m;
	struct ca_facts f;
	char *derpath, *pempath, *text, *errs, *folded;
	size_t i, n;

	facts(&f);
	make_cert(&der, &pem, f.sha256);	/* the certificate f stands for */
	pempath = write_file("alice.pem", pem.data, pem.size);
	derpath = write_file("alice.der", der.data, der.size);
	assert_int_equal(gnutls_base64_encode2(&der, &b64), 0);
	/* IIS may store it wrapped: line breaks inside are allowed. */
	folded = cg_malloc(b64.size * 2 + 1);
	for (i = n = 0; i < b64.size; i++) {
		folded[n++] = (char)b64.data[i];
		if (i % 64 == 63)
			folded[n++] = '\n';
	}
	folded[n] = '\0';

	/* A PEM file relative to the configuration's directory. */
	m = load_ok(O2O("{ user = \"pem\"; certificate = \"alice.pem\"; }"));
	assert_string_equal(map_with(m, &f, &out), "pem");
	assert_int_equal(out.strong, 1);
	assert_string_equal(out.why, "one-to-one certificate of entry 1 (pem)");
	ca_mapper_free(m);

	text = cg_printf(O2O("{ user = \"der\"; certificate = \"%s\"; }"), derpath);
	m = load_ok(text);
	assert_string_equal(map_with(m, &f, &out), "der");
	ca_mapper_free(m);
	free(text);

	text = cg_printf(O2O("{ user = \"b64\"; certificate = \"%s\"; }"), folded);
	m = load_ok(text);
	assert_string_equal(map_with(m, &f, &out), "b64");
	/* Another certificate does not match. */
	f.sha256[0] ^= 1;
	assert_string_equal(map_with(m, &f, &out), "");
	f.sha256[0] ^= 1;
	ca_mapper_free(m);
	free(text);

	/* The same certificate as a file and as its SHA-256 is a duplicate. */
	text = cg_printf(O2O("{ user = \"a\"; certificate = \"alice.pem\"; },\n"
	    "{ user = \"b\"; sha256 = \"%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x"
	    "%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x\"; }"),
	    f.sha256[0], f.sha256[1], f.sha256[2], f.sha256[3], f.sha256[4], f.sha256[5],
	    f.sha256[6], f.sha256[7], f.sha256[8], f.sha256[9], f.sha256[10], f.sha256[11],
	    f.sha256[12], f.sha256[13], f.sha256[14], f.sha256[15], f.sha256[16], f.sha256[17],
	    f.sha256[18], f.sha256[19], f.sha256[20], f.sha256[21], f.sha256[22], f.sha256[23],
	    f.sha256[24], f.sha256[25], f.sha256[26], f.sha256[27], f.sha256[28], f.sha256[29],
	    f.sha256[30], f.sha256[31]);
	m = load(text, &errs);
	assert_null(m);
	if (strstr(errs, "c.conf:4: duplicate one-to-one key: sha256 here is the same as "
	    "certificate of entry 1 (a)") == NULL)
		fail_msg("got: %s", errs);
	free(errs);
	free(text);

	free(folded);
	free(pempath);
	free(derpath);
	gnutls_free(b64.data);
	gnutls_free(der.data);
	gnutls_free(pem.data);
}

/* ---- order ---- */

static void
test_strong_before_weak(void **state)
{
	struct ca_mapping out;
	struct ca_mapper *m;
	struct ca_facts f;

	facts(&f);
	/* Weak entries first in the file still lose to a strong one. */
	m = load_ok(O2O("{ user = \"by-email\"; email = \"alice@corp.example\"; },\n"
	    "{ user = \"by-subject\"; subject = \"" SUBJECT "\"; },\n"
	    "{ user = \"by-ski\"; ski = \"8C4F0102\"; }"));
	assert_string_equal(map_with(m, &f, &out), "by-ski");
	assert_int_equal(out.strong, 1);
	ca_mapper_free(m);
	m = load_ok(O2O("{ user = \"by-ski\"; ski = \"8C4F0102\"; },\n"
	    "{ user = \"by-email\"; email = \"alice@corp.example\"; }"));
	assert_string_equal(map_with(m, &f, &out), "by-ski");
	ca_mapper_free(m);
	/* Without the strong one matching, the weak one answers, weakly. */
	f.ski[0] ^= 1;
	m = load_ok(O2O("{ user = \"by-email\"; email = \"alice@corp.example\"; },\n"
	    "{ user = \"by-ski\"; ski = \"8C4F0102\"; }"));
	assert_string_equal(map_with(m, &f, &out), "by-email");
	assert_int_equal(out.strong, 0);
	assert_int_equal(out.method, CA_MAP_ONE_TO_ONE);
	ca_mapper_free(m);
}

static void
test_file_order_among_equals(void **state)
{
	struct ca_mapping out;
	struct ca_mapper *m;
	struct ca_facts f;

	facts(&f);
	m = load_ok(O2O("{ user = \"sid\"; sid = \"" "S-1-5-21-1004336348-1177238915-682003330-1001" "\"; },\n"
	    "{ user = \"sha\"; sha256 = \"" SHA_HEX "\"; },\n"
	    "{ user = \"spki\"; public_key_sha256 = \"" SPKI_HEX "\"; }"));
	assert_string_equal(map_with(m, &f, &out), "sid");
	assert_string_equal(out.why, "one-to-one sid of entry 1 (sid)");
	ca_mapper_free(m);
	m = load_ok(O2O("{ user = \"spki\"; public_key_sha256 = \"" SPKI_HEX "\"; },\n"
	    "{ user = \"sid\"; sid = \"" "S-1-5-21-1004336348-1177238915-682003330-1001" "\"; },\n"
	    "{ user = \"sha\"; sha256 = \"" SHA_HEX "\"; }"));
	assert_string_equal(map_with(m, &f, &out), "spki");
	ca_mapper_free(m);
	/* Among weak ones too; and each SAN value is tried. */
	m = load_ok(O2O("{ user = \"subj\"; subject = \"" SUBJECT "\"; },\n"
	    "{ user = \"mail2\"; email = \"a.smith@corp.example\"; },\n"
	    "{ user = \"upn\"; upn = \"alice@corp.example\"; }"));
	assert_string_equal(map_with(m, &f, &out), "subj");
	ca_mapper_free(m);
	m = load_ok(O2O("{ user = \"upn\"; upn = \"alice@corp.example\"; },\n"
	    "{ user = \"mail2\"; email = \"a.smith@corp.example\"; },\n"
	    "{ user = \"subj\"; subject = \"" SUBJECT "\"; }"));
	assert_string_equal(map_with(m, &f, &out), "upn");
	ca_mapper_free(m);
	m = load_ok(O2O("{ user = \"mail2\"; email = \"a.smith@corp.example\"; },\n"
	    "{ user = \"mail1\"; email = \"alice@corp.example\"; }"));
	assert_string_equal(map_with(m, &f, &out), "mail2");
	assert_string_equal(out.why, "one-to-one email of entry 1 (mail2)");
	ca_mapper_free(m);
}

static void
test_disabled(void **state)
{
	struct ca_mapping out;
	struct ca_mapper *m;
	struct ca_facts f;

	facts(&f);
	m = load_ok(O2O("{ user = \"off\"; sha256 = \"" SHA_HEX "\"; enabled = false; },\n"
	    "{ user = \"on\"; upn = \"alice@corp.example\"; }"));
	assert_string_equal(map_with(m, &f, &out), "on");
	assert_int_equal(out.strong, 0);
	ca_mapper_free(m);
	/* A disabled entry is no duplicate of an enabled one. */
	m = load_ok(O2O("{ user = \"old\"; sha256 = \"" SHA_HEX "\"; enabled = false; },\n"
	    "{ user = \"new\"; sha256 = \"" SHA_HEX "\"; }"));
	assert_string_equal(map_with(m, &f, &out), "new");
	assert_string_equal(out.why, "one-to-one sha256 of entry 2 (new)");
	ca_mapper_free(m);
	m = load_ok(O2O("{ user = \"off\"; sha256 = \"" SHA_HEX "\"; enabled = false; }"));
	assert_string_equal(map_with(m, &f, &out), "");
	ca_mapper_free(m);
}

#define ENG_ALLOW \
	"{ name = \"engineering\"; user = \"eng\";\n" \
	"  rules = ( { field = \"subject\"; subfield = \"OU\"; match = \"Engineering\"; },\n" \
	"            { field = \"issuer\"; subfield = \"CN\"; match = \"Corp Issuing*\"; } ); }"

static void
test_many_to_one_order(void **state)
{
	struct ca_mapping out;
	struct ca_mapper *m;
	struct ca_facts f;
	static const enum ca_map_source many_first[] = { CA_SRC_MANY_TO_ONE, CA_SRC_ONE_TO_ONE };
	static const enum ca_map_source only_one[] = { CA_SRC_ONE_TO_ONE };

	facts(&f);
	/* Deny first in the file: refused. */
	m = load_ok(M2O("{ name = \"corp-blocked\"; permission = \"deny\";\n"
	    "  rules = ( { field = \"subject\"; subfield = \"O\"; match = \"corp\"; case_sensitive = false; } ); },\n"
	    ENG_ALLOW));
	assert_string_equal(map_with(m, &f, &out), "DENY");
	assert_string_equal(out.name, "corp-blocked");
	assert_int_equal(out.strong, 0);
	assert_string_equal(out.why, "many-to-one corp-blocked (deny): its rule matched");
	ca_mapper_free(m);
	/* Allow first: its user. */
	m = load_ok(M2O(ENG_ALLOW ",\n{ name = \"corp-blocked\"; permission = \"deny\";\n"
	    "  rules = ( { field = \"subject\"; subfield = \"O\"; match = \"Corp\"; } ); }"));
	assert_string_equal(map_with(m, &f, &out), "eng");
	assert_int_equal(out.method, CA_MAP_MANY_TO_ONE);
	assert_int_equal(out.strong, 0);
	assert_string_equal(out.name, "engineering");
	assert_string_equal(out.why, "many-to-one engineering (allow): all 2 rules matched");
	ca_mapper_free(m);

	/* One-to-one before many-to-one, unless the policy says otherwise. */
	m = load_ok("accounts = {\n"
	    "  one_to_one = ( { user = \"alice\"; upn = \"alice@corp.example\"; } );\n"
	    "  many_to_one = ( " ENG_ALLOW " );\n};\n");
	assert_string_equal(map_with(m, &f, &out), "alice");
	ca_map(m, &f, many_first, nitems(many_first), &out);
	assert_string_equal(out.user, "eng");
	f.san_upn.n = 0;
	ca_map(m, &f, only_one, nitems(only_one), &out);
	assert_int_equal(out.method, CA_MAP_NONE);
	assert_null(out.user);
	ca_map(m, &f, both, 0, &out);
	assert_int_equal(out.method, CA_MAP_NONE);
	ca_map(m, &f, both, nitems(both), &out);
	assert_string_equal(out.user, "eng");
	ca_mapper_free(m);
}

static void
test_rules_and_multivalued(void **state)
{
	struct ca_mapping out;
	struct ca_mapper *m;
	struct ca_facts f;

	facts(&f);
	/* All rules must match. */
	m = load_ok(M2O("{ name = \"bob-eng\"; user = \"bob\";\n"
	    "  rules = ( { field = \"subject\"; subfield = \"OU\"; match = \"Engineering\"; },\n"
	    "            { field = \"subject\"; subfield = \"CN\"; match = \"Bob*\"; } ); },\n"
	    "{ name = \"alice-eng\"; user = \"alice\";\n"
	    "  rules = ( { field = \"subject\"; subfield = \"OU\"; match = \"Engineering\"; },\n"
	    "            { field = \"subject\"; subfield = \"CN\"; match = \"Alice*\"; } ); }"));
	assert_string_equal(map_with(m, &f, &out), "alice");
	ca_mapper_free(m);
	/* The second OU value counts as much as the first. */
	m = load_ok(M2O("{ name = \"ops\"; user = \"ops\";\n"
	    "  rules = ( { field = \"subject\"; subfield = \"OU\"; match = \"Ops\"; } ); }"));
	assert_string_equal(map_with(m, &f, &out), "ops");
	ca_mapper_free(m);
	/* A field the certificate does not have never matches, even "*". */
	m = load_ok(M2O("{ name = \"dc\"; user = \"dc\";\n"
	    "  rules = ( { field = \"subject\"; subfield = \"DC\"; match = \"*\"; } ); }"));
	assert_string_equal(map_with(m, &f, &out), "");
	ca_mapper_free(m);
	/* Subject, issuer and SAN fields, aliases of subfield names. */
	m = load_ok(M2O("{ name = \"all\"; user = \"all\";\n"
	    "  rules = ( { field = \"issuer\"; subfield = \"cn\"; match = \"Corp Issuing CA\"; },\n"
	    "            { field = \"subject\"; subfield = \"commonName\"; match = \"Alice Smith\"; },\n"
	    "            { field = \"subject\"; subfield = \"C\"; match = \"US\"; },\n"
	    "            { field = \"san\"; subfield = \"email\"; match = \"a.smith@*\"; },\n"
	    "            { field = \"san\"; subfield = \"dns\"; match = \"*.corp.example\"; },\n"
	    "            { field = \"san\"; subfield = \"upn\"; match = \"alice@corp.example\"; },\n"
	    "            { field = \"san\"; subfield = \"uri\"; match = \"https://id.corp.example/*\"; } ); }"));
	assert_string_equal(map_with(m, &f, &out), "all");
	assert_string_equal(out.why, "many-to-one all (allow): all 7 rules matched");
	f.san_uri.n = 0;
	assert_string_equal(map_with(m, &f, &out), "");
	ca_mapper_free(m);
}

/* An E / emailAddress attribute and ST spelled S, in rules and DNs. */
static void
test_attribute_aliases(void **state)
{
	struct ca_dn_attr attrs[] = {
		{ "C", "US" }, { "ST", "WA" }, { "O", "Corp" }, { "CN", "Carol" },
		{ "emailAddress", "carol@corp.example" },
	};
	struct ca_mapping out;
	struct ca_mapper *m;
	struct ca_facts f;

	facts(&f);
	f.subject.attrs = attrs;
	f.subject.n = nitems(attrs);
	m = load_ok(M2O("{ name = \"e\"; user = \"e\";\n"
	    "  rules = ( { field = \"subject\"; subfield = \"E\"; match = \"carol@*\"; },\n"
	    "            { field = \"subject\"; subfield = \"S\"; match = \"WA\"; } ); }"));
	assert_string_equal(map_with(m, &f, &out), "e");
	ca_mapper_free(m);
	m = load_ok(O2O("{ user = \"carol\"; subject = \"E=carol@corp.example,CN=Carol,O=Corp,S=WA,C=US\"; }"));
	assert_string_equal(map_with(m, &f, &out), "carol");
	ca_mapper_free(m);
	m = load_ok(O2O("{ user = \"carol\"; subject = \"emailAddress=carol@corp.example,CN=Carol,"
	    "O=Corp,stateOrProvinceName=WA,countryName=US\"; }"));
	assert_string_equal(map_with(m, &f, &out), "carol");
	ca_mapper_free(m);
}

/* ---- '*' patterns, through a one-rule mapping built by hand ---- */

static int
glob_hits(const char *pattern, const char *value, int case_sensitive)
{
	struct ca_rule_conf rule = { { NULL }, CA_FIELD_SUBJECT, "CN", (char *)pattern,
	    case_sensitive };
	struct ca_many_to_one_conf map = { { NULL }, "g", 0, "u", { &rule, 1 } };
	struct ca_accounts_conf acc = { { NULL, 0 }, { &map, 1 } };
	struct ca_dn_attr attr = { "CN", (char *)value };
	struct cg_errors errs = { NULL, 0 };
	struct ca_mapping out;
	struct ca_mapper *m;
	struct ca_facts f;

	memset(&f, 0, sizeof(f));
	f.subject.attrs = &attr;
	f.subject.n = 1;
	m = ca_mapper_new(&acc, NULL, &errs);
	assert_non_null(m);
	ca_map(m, &f, both, nitems(both), &out);
	ca_mapper_free(m);
	return out.user != NULL;
}

struct glob_case {
	const char *pattern, *value;
	int case_sensitive, hit;
};

static const struct glob_case glob_cases[] = {
	{ "*", "", 1, 1 },
	{ "*", "anything at all", 1, 1 },
	{ "**", "", 1, 1 },
	{ "", "", 1, 1 },
	{ "", "a", 1, 0 },
	{ "abc", "abc", 1, 1 },
	{ "abc", "abcd", 1, 0 },
	{ "abc", "xabc", 1, 0 },
	{ "abc", "ab", 1, 0 },
	/* '*' at the end: anchored at the start, the run may be empty. */
	{ "Eng*", "Engineering", 1, 1 },
	{ "Eng*", "Eng", 1, 1 },
	{ "Eng*", "XEngineering", 1, 0 },
	/* at the start */
	{ "*ing", "Engineering", 1, 1 },
	{ "*ing", "ing", 1, 1 },
	{ "*ing", "Engineeringx", 1, 0 },
	/* in the middle, and in several places */
	{ "E*g", "Eng", 1, 1 },
	{ "E*g", "Eg", 1, 1 },
	{ "E*g", "E", 1, 0 },
	{ "E*g", "Engineeringx", 1, 0 },
	{ "E*i*g", "Engineering", 1, 1 },
	{ "E*x*g", "Engineering", 1, 0 },
	{ "*gin*", "Engineering", 1, 1 },
	{ "*gin*", "gin", 1, 1 },
	{ "*gin*", "gi", 1, 0 },
	{ "a*b*c", "abc", 1, 1 },
	{ "a*b*c", "aXXbYYc", 1, 1 },
	{ "a*b*c", "acb", 1, 0 },
	{ "a*a", "a", 1, 0 },
	{ "a*a", "aa", 1, 1 },
	{ "ab*ab*ab", "abababab", 1, 1 },
	{ "ab*ab*ab", "ababab", 1, 1 },
	{ "ab*ab*ab", "abab", 1, 0 },
	{ "*a*", "bbb", 1, 0 },
	{ "*aab*", "aaaab", 1, 1 },
	{ "Corp Issuing CA*", "Corp Issuing CA 2", 1, 1 },
	/* '?' and brackets are plain characters */
	{ "a?c", "abc", 1, 0 },
	{ "a?c", "a?c", 1, 1 },
	{ "[ab]", "a", 1, 0 },
	/* case */
	{ "eng*", "Engineering", 1, 0 },
	{ "eng*", "Engineering", 0, 1 },
	{ "ENGINEERING", "engineering", 0, 1 },
	{ "ENGINEERING", "engineering", 1, 0 },
	{ "*NEER*", "engineering", 0, 1 },
	/* Only ASCII letters fold: the locale must not choose accounts. */
	{ "\xc3\xa9*", "\xc3\x89t\xc3\xa9", 0, 0 },
	{ "\xc3\xa9*", "\xc3\xa9t\xc3\xa9", 1, 1 },
};

static void
test_glob(void **state)
{
	size_t i;

	for (i = 0; i < nitems(glob_cases); i++) {
		const struct glob_case *c = &glob_cases[i];

		if (glob_hits(c->pattern, c->value, c->case_sensitive) != c->hit)
			fail_msg("\"%s\" against \"%s\" (case_sensitive %d): expected %d",
			    c->pattern, c->value, c->case_sensitive, c->hit);
	}
}

/* Hostile values cost len(value) * len(pattern) at worst. */
static void
test_glob_worst_case(void **state)
{
	char *value = cg_malloc(10001), *pat = cg_malloc(20001);
	size_t i, n;
	double t0, t;

	memset(value, 'a', 10000);
	value[10000] = '\0';
	/* The classic exponential case for a backtracking matcher. */
	for (i = n = 0; i < 500; i++) {
		pat[n++] = '*';
		pat[n++] = 'a';
	}
	memcpy(pat + n, "*b*a", 5);
	t0 = now();
	assert_false(glob_hits(pat, value, 1));
	/* Many pieces that each match, then one that cannot. */
	for (i = n = 0; i < 2000; i++) {
		pat[n++] = '*';
		memcpy(pat + n, "aaaa", 4);
		n += 4;
	}
	memcpy(pat + n, "*ab*a", 6);
	assert_false(glob_hits(pat, value, 0));
	pat[n + 2] = 'a';
	assert_true(glob_hits(pat, value, 0));
	/* One long middle piece that almost matches everywhere. */
	pat[0] = '*';
	memset(pat + 1, 'a', 5000);
	memcpy(pat + 5001, "b*", 3);
	assert_false(glob_hits(pat, value, 0));
	assert_false(glob_hits(pat, value, 1));
	/* The same with pieces short enough for memmem's other algorithm. */
	for (i = n = 0; i < 40; i++) {
		pat[n++] = '*';
		memset(pat + n, 'a', 200);
		n += 200;
		pat[n++] = 'b';
	}
	memcpy(pat + n, "*", 2);
	assert_false(glob_hits(pat, value, 0));
	assert_false(glob_hits(pat, value, 1));
	t = now() - t0;
	printf("glob worst cases (10,000-character value): %.1f ms\n", t * 1e3);
	assert_true(t < 1.0);
	free(value);
	free(pat);
}

/* ---- DN comparison, through a subject entry built by hand ---- */

static int
dn_hits(const char *subject, struct ca_dn_attr *attrs, size_t n, char **err)
{
	struct ca_one_to_one_conf e = {
		.user = "u", .certificate = "", .sha256 = "", .issuer = "", .serial = "",
		.ski = "", .public_key_sha256 = "", .sid = "", .upn = "", .email = "",
		.subject = (char *)subject, .enabled = 1,
	};
	struct ca_accounts_conf acc = { { &e, 1 }, { NULL, 0 } };
	struct cg_errors errs = { NULL, 0 };
	struct ca_mapping out;
	struct ca_mapper *m;
	struct ca_facts f;
	int hit;

	facts(&f);
	f.subject.attrs = attrs;
	f.subject.n = n;
	if ((m = ca_mapper_new(&acc, NULL, &errs)) == NULL) {
		*err = cg_strdup(errs.v[0]);
		cg_errors_free(&errs);
		return -1;
	}
	ca_map(m, &f, both, nitems(both), &out);
	hit = out.user != NULL;
	ca_mapper_free(m);
	return hit;
}

struct dn_case {
	const char *dn;
	int hit;	/* -1: refused as not a DN */
};

static const struct dn_case dn_cases[] = {
	{ SUBJECT, 1 },
	/* attribute types in any case, by name, alias or OID */
	{ "cn=Alice Smith,ou=Ops,Ou=Engineering,o=Corp,c=US", 1 },
	{ "commonName=Alice Smith,organizationalUnitName=Ops,OU=Engineering,"
	  "organizationName=Corp,C=US", 1 },
	{ "2.5.4.3=Alice Smith,2.5.4.11=Ops,OU=Engineering,O=Corp,oid.2.5.4.6=US", 1 },
	/* spaces after separators and around '=' */
	{ "CN=Alice Smith, OU=Ops,  OU=Engineering ,O=Corp , C=US", 1 },
	{ "  CN = Alice Smith,OU=Ops,OU=Engineering,O=Corp,C=US  ", 1 },
	/* escaping */
	{ "CN=Alice\\20Smith,OU=Ops,OU=Engineering,O=Corp,C=US", 1 },
	{ "CN=Alice\\ Smith,OU=Ops,OU=Engineering,O=Corp,C=\\55\\53", 1 },
	{ "CN=\"Alice Smith\",OU=\"Ops\",OU=Engineering,O=Corp,C=US", 1 },
	{ "CN=#0C0B416C69636520536D697468,OU=Ops,OU=Engineering,O=Corp,C=#130255 53", -1 },
	{ "CN=#0C0B416C69636520536D697468,OU=Ops,OU=Engineering,O=Corp,C=#13025553", 1 },
	/* RDN order matters, the value's case and spaces inside it too */
	{ "C=US,O=Corp,OU=Engineering,OU=Ops,CN=Alice Smith", 0 },
	{ "CN=Alice Smith,OU=Engineering,OU=Ops,O=Corp,C=US", 0 },
	{ "CN=alice smith,OU=Ops,OU=Engineering,O=Corp,C=US", 0 },
	{ "CN=Alice  Smith,OU=Ops,OU=Engineering,O=Corp,C=US", 0 },
	{ "CN=Alice Smith,OU=Ops,O=Corp,C=US", 0 },
	{ "CN=Alice Smith,OU=Ops,OU=Engineering,O=Corp,C=US,DC=example", 0 },
	{ "CN=Alice Smith\\20,OU=Ops,OU=Engineering,O=Corp,C=US", 0 },
	/* not DNs */
	{ "CN=Alice Smith,", -1 },
	{ "CN", -1 },
	{ "=Alice", -1 },
	{ "CN=Alice\\", -1 },
	{ "CN=Al\\ice", -1 },
	{ "CN=\"Alice", -1 },
	{ "CN=\"Alice\" x", -1 },
	{ "CN=Ali\"ce", -1 },
	{ "2.5..4=x", -1 },
	{ "CN=#0C0", -1 },
	{ "CN=Alice;O=Corp", 0 },
};

static void
test_dn_compare(void **state)
{
	struct ca_dn_attr comma[] = { { "O", "Corp" }, { "CN", "Smith, Alice + co" } };
	char *err = NULL;
	size_t i;
	int r;

	for (i = 0; i < nitems(dn_cases); i++) {
		r = dn_hits(dn_cases[i].dn, subj_attrs, nitems(subj_attrs), &err);
		if (r != dn_cases[i].hit)
			fail_msg("\"%s\": got %d, expected %d (%s)", dn_cases[i].dn, r,
			    dn_cases[i].hit, r < 0 ? err : "");
		if (r < 0) {
			if (strstr(err, "subject: not a distinguished name") == NULL)
				fail_msg("\"%s\": %s", dn_cases[i].dn, err);
			free(err);
		}
	}
	/* Specials in a value, escaped or quoted any way. */
	assert_int_equal(dn_hits("CN=Smith\\, Alice \\+ co,O=Corp", comma, 2, &err), 1);
	assert_int_equal(dn_hits("CN=Smith\\2C Alice \\2B co,O=Corp", comma, 2, &err), 1);
	assert_int_equal(dn_hits("CN=Smith\\2c Alice \\2b co,O=Corp", comma, 2, &err), 1);
	assert_int_equal(dn_hits("CN=\"Smith, Alice + co\",O=Corp", comma, 2, &err), 1);
	assert_int_equal(dn_hits("CN=Smith\\, Alice,O=Corp", comma, 2, &err), 0);
	/* A multi-valued RDN counts as its attributes in the order written. */
	assert_int_equal(dn_hits("CN=Smith\\, Alice \\+ co+O=Corp", comma, 2, &err), 1);
}

/* ---- -t errors, each at its line ---- */

static void
test_errors_one_to_one(void **state)
{
	expect_error(O2O("    { user = \"a\"; sha256 = \"" SHA_HEX "\"; },\n"
	    "    { user = \"b\"; enabled = true; }"), 4, "one-to-one entry has no key");
	expect_error(O2O("    { user = \"a\"; sha256 = \"" SHA_HEX "\";\n"
	    "      ski = \"01\"; }"), 4, "two keys: sha256 and ski");
	expect_error(O2O("    { user = \"a\"; upn = \"a@b\"; email = \"a@b\"; }"), 3,
	    "two keys: upn and email");
	expect_error(O2O("    { user = \"a\";\n      serial = \"01\"; }"), 4, "serial needs issuer");
	expect_error(O2O("    { user = \"a\"; sha256 = \"" SHA_HEX "\";\n"
	    "      issuer = \"" ISSUER "\"; }"), 4, "issuer: only with serial or subject");
	expect_error(O2O("    { user = \"a\";\n      issuer = \"" ISSUER "\"; }"), 3,
	    "one-to-one entry has no key");
	expect_error(O2O("    { user = \"\"; upn = \"a@b\"; }"), 3, "user: empty");
	expect_error(O2O("    { upn = \"a@b\"; }"), 3, "missing required key \"user\"");
	/* duplicates: the same kind and canonical value */
	expect_error(O2O("    { user = \"a\"; sha256 = \"" SHA_HEX "\"; },\n"
	    "    { user = \"b\"; upn = \"b@corp\"; },\n"
	    "    { user = \"c\";\n"
	    "      sha256 = \"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"; }"),
	    6, "duplicate one-to-one key: sha256 here is the same as sha256 of entry 1 (a) at");
	expect_error(O2O("    { user = \"a\"; upn = \"Bob@Corp\"; },\n"
	    "    { user = \"b\"; upn = \"bob@corp\"; }"), 4, "c.conf:3");
	expect_error(O2O("    { user = \"a\"; subject = \"CN=Bob,O=Corp\"; },\n"
	    "    { user = \"b\"; subject = \"cn=Bob, o=Corp\"; }"), 4, "duplicate one-to-one key: subject");
	expect_error(O2O("    { user = \"a\"; issuer = \"CN=CA\"; serial = \"00:01\"; },\n"
	    "    { user = \"b\"; issuer = \"cn=CA\"; serial = \"01\"; }"), 4,
	    "duplicate one-to-one key: issuer+serial");
	expect_error(O2O("    { user = \"a\"; sid = \"S-1-5-21-1\"; },\n"
	    "    { user = \"b\"; sid = \"s-1-5-21-1\"; }"), 4, "duplicate one-to-one key: sid");
	/* hex */
	expect_error(O2O("    { user = \"a\";\n      sha256 = \"zz\"; }"), 4,
	    "sha256: \"zz\" is not a SHA-256 in hex");
	expect_error(O2O("    { user = \"a\";\n      sha256 = \"0102\"; }"), 4, "32 bytes");
	expect_error(O2O("    { user = \"a\";\n      ski = \"0g\"; }"), 4, "ski: \"0g\" is not hex");
	expect_error(O2O("    { user = \"a\";\n      ski = \"012\"; }"), 4, "is not hex");
	expect_error(O2O("    { user = \"a\";\n      ski = \"01::02\"; }"), 4, "is not hex");
	expect_error(O2O("    { user = \"a\";\n      ski = \":01\"; }"), 4, "is not hex");
	expect_error(O2O("    { user = \"a\";\n      public_key_sha256 = \"" SHA_HEX ":\"; }"), 4,
	    "public_key_sha256:");
	expect_error(O2O("    { user = \"a\"; issuer = \"CN=CA\";\n      serial = \"x1\"; }"), 4,
	    "serial: \"x1\" is not hex");
	expect_error(O2O("    { user = \"a\";\n      sid = \"S-1\"; }"), 4, "is not a SID");
	expect_error(O2O("    { user = \"a\";\n      sid = \"1-5-21\"; }"), 4, "is not a SID");
	/* DNs */
	expect_error(O2O("    { user = \"a\";\n      subject = \"CN=Alice,\"; }"), 4,
	    "subject: not a distinguished name");
	expect_error(O2O("    { user = \"a\"; serial = \"01\";\n      issuer = \"Corp CA\"; }"), 4,
	    "issuer: not a distinguished name");
	expect_error(O2O("    { user = \"a\"; subject = \"CN=a\";\n      issuer = \"CN=\\\"x\"; }"), 4,
	    "issuer: not a distinguished name");
	/* certificates */
	expect_error(O2O("    { user = \"a\";\n      certificate = \"no-such.pem\"; }"), 4,
	    "certificate: neither a file");
	free(write_file("garbage.pem", "-----BEGIN CERTIFICATE-----\nxx\n", 31));
	expect_error(O2O("    { user = \"a\";\n      certificate = \"garbage.pem\"; }"), 4,
	    "no PEM certificate");
	free(write_file("garbage.der", "\x30\x03\x02\x01\x01", 5));
	expect_error(O2O("    { user = \"a\";\n      certificate = \"garbage.der\"; }"), 4,
	    "is not a certificate");
	expect_error(O2O("    { user = \"a\";\n      certificate = \"MIIBAAAA\"; }"), 4,
	    "the base64 value is not a certificate");
	expect_error(O2O("    { user = \"a\";\n      certificate = \".\"; }"), 4, "certificate:");
	/* Every error is reported, not only the first. */
	expect_error(O2O("    { user = \"a\"; ski = \"0g\"; },\n    { user = \"b\"; sid = \"x\"; }"),
	    4, "is not a SID");
}

static void
test_errors_many_to_one(void **state)
{
	expect_error(M2O("    { name = \"d\"; permission = \"deny\";\n      user = \"x\";\n"
	    "      rules = ( { field = \"subject\"; subfield = \"CN\"; match = \"*\"; } ); }"),
	    4, "a deny mapping has no user");
	expect_error(M2O("    { name = \"a\";\n"
	    "      rules = ( { field = \"subject\"; subfield = \"CN\"; match = \"*\"; } ); }"),
	    3, "an allow mapping needs a user");
	expect_error(M2O("    { name = \"a\"; user = \"u\"; }"), 3, "has no rules");
	expect_error(M2O("    { name = \"a\"; user = \"u\";\n      rules = ( ); }"), 4, "has no rules");
	expect_error(M2O("    { name = \"a\"; user = \"u\"; rules = (\n"
	    "      { field = \"subject\"; subfield = \"XX\"; match = \"*\"; } ); }"), 4,
	    "subfield \"XX\" is not one of CN, OU");
	expect_error(M2O("    { name = \"a\"; user = \"u\"; rules = (\n"
	    "      { field = \"subject\"; subfield = \"CN\"; match = \"*\"; },\n"
	    "      { field = \"san\";\n        subfield = \"ip\"; match = \"*\"; } ); }"), 6,
	    "subfield \"ip\" is not one of email, dns, upn, uri");
	expect_error(M2O("    { name = \"a\"; user = \"u\"; rules = (\n"
	    "      { field = \"issuer\"; subfield = \"upn\"; match = \"*\"; } ); }"), 4,
	    "subfield \"upn\"");
	/* street is a DN attribute, but not a rule subfield (SPEC section 4) */
	expect_error(M2O("    { name = \"a\"; user = \"u\"; rules = (\n"
	    "      { field = \"subject\"; subfield = \"street\"; match = \"*\"; } ); }"), 4,
	    "subfield \"street\"");
	expect_error(M2O("    { name = \"a\"; user = \"u\"; rules = (\n"
	    "      { field = \"header\"; subfield = \"CN\"; match = \"*\"; } ); }"), 4,
	    "\"header\" is not one of \"subject\", \"issuer\", \"san\"");
	expect_error(M2O("    { name = \"a\"; user = \"u\"; permission = \"maybe\"; rules = (\n"
	    "      { field = \"subject\"; subfield = \"CN\"; match = \"*\"; } ); }"), 3,
	    "\"maybe\" is not one of \"allow\", \"deny\"");
	expect_error(M2O("    { name = \"a\"; user = \"u\"; rules = (\n"
	    "      { field = \"subject\"; subfield = \"CN\"; } ); }"), 4,
	    "missing required key \"match\"");
}

#define RULE(field, sub, match, cs) \
	"{ field = \"" field "\"; subfield = \"" sub "\"; match = \"" match "\"; case_sensitive = " cs "; }"

/* A mapping that an earlier one always pre-empts is reported at its line. */
static void
test_errors_preempted(void **state)
{
	char *errs;
	struct ca_mapper *m;
	size_t i;
	/* The earlier mapping's rules, the later one's, and whether the later is dead. */
	static const struct {
		const char *a, *b;
		int dead;
	} cases[] = {
		{ RULE("subject", "OU", "Engineering", "true"),
		  RULE("subject", "OU", "Engineering", "true"), 1 },
		{ RULE("subject", "OU", "*", "true"),
		  RULE("subject", "OU", "Engineering", "false"), 1 },
		{ RULE("subject", "OU", "Eng*", "true"),
		  RULE("subject", "CN", "*", "true") ", " RULE("subject", "OU", "Engineering", "true"), 1 },
		{ RULE("subject", "OU", "E*g", "true"),
		  RULE("subject", "OU", "Eng*ing", "true"), 1 },
		{ RULE("subject", "OU", "*x*", "true"),
		  RULE("subject", "OU", "a*x*b", "true"), 1 },
		{ RULE("subject", "OU", "eng*", "false"),
		  RULE("subject", "OU", "Engineering", "true"), 1 },
		{ RULE("subject", "OU", "ENG*", "false"),
		  RULE("subject", "OU", "eng*", "false"), 1 },
		/* aliases name the same subfield */
		{ RULE("subject", "E", "*@corp", "true"),
		  RULE("subject", "emailAddress", "a*@corp", "true"), 1 },
		{ RULE("subject", "OU", "1*", "true"),
		  RULE("subject", "OU", "12*", "false"), 1 },
		{ RULE("subject", "OU", "*-*", "true"),
		  RULE("subject", "OU", "A-*", "false"), 1 },
		/* reachable */
		{ RULE("subject", "OU", "Engineering", "true"),
		  RULE("subject", "OU", "Eng*", "true"), 0 },
		{ RULE("subject", "OU", "Engineering", "true") ", " RULE("subject", "CN", "Bob", "true"),
		  RULE("subject", "OU", "Engineering", "true"), 0 },
		{ RULE("subject", "OU", "Eng*", "true"),
		  RULE("issuer", "OU", "Engineering", "true"), 0 },
		{ RULE("subject", "OU", "Eng*", "true"),
		  RULE("subject", "O", "Engineering", "true"), 0 },
		{ RULE("subject", "OU", "Eng*", "true"),
		  RULE("subject", "OU", "eng*", "false"), 0 },
		{ RULE("subject", "OU", "Eng*", "true"),
		  RULE("subject", "OU", "Eng*", "false"), 0 },
		{ RULE("subject", "OU", "a*b", "true"),
		  RULE("subject", "OU", "a*", "true"), 0 },
		{ RULE("subject", "OU", "*x*", "true"),
		  RULE("subject", "OU", "a*b", "true"), 0 },
		{ RULE("san", "dns", "*.corp", "true"),
		  RULE("san", "email", "a.corp", "true"), 0 },
	};

	for (i = 0; i < nitems(cases); i++) {
		char *text = cg_printf(M2O(
		    "    { name = \"first\"; user = \"u\"; rules = ( %s ); },\n"
		    "    { name = \"second\"; permission = \"deny\";\n"
		    "      rules = ( %s ); }"), cases[i].a, cases[i].b);

		m = load(text, &errs);
		if (cases[i].dead && (m != NULL || strstr(errs, "c.conf:4: mapping \"second\" can "
		    "never match: mapping \"first\" (allow) at ") == NULL))
			fail_msg("case %zu: expected a pre-empted mapping, got:\n%s", i, errs);
		if (!cases[i].dead && m == NULL)
			fail_msg("case %zu: unexpected errors:\n%s", i, errs);
		ca_mapper_free(m);
		free(errs);
		free(text);
	}
	/* A deny mapping pre-empts too; the message names the earlier one's line. */
	expect_error(M2O("    { name = \"no\"; permission = \"deny\"; rules = ( "
	    RULE("subject", "O", "*", "true") " ); },\n"
	    "    { name = \"x\"; user = \"x\"; rules = ( " RULE("subject", "O", "Corp", "true") " ); },\n"
	    "    { name = \"y\"; user = \"y\"; rules = ( " RULE("subject", "O", "Corp", "true") " ); }"),
	    4, "mapping \"x\" can never match: mapping \"no\" (deny) at ");
	expect_error(M2O("    { name = \"no\"; permission = \"deny\"; rules = ( "
	    RULE("subject", "O", "*", "true") " ); },\n"
	    "    { name = \"x\"; user = \"x\"; rules = ( " RULE("subject", "O", "Corp", "true") " ); },\n"
	    "    { name = \"y\"; user = \"y\"; rules = ( " RULE("subject", "O", "Corp", "true") " ); }"),
	    5, "c.conf:3");
}

/* ---- scale ---- */

#define BIG 100000

/*
 * Speed is measured, not asserted (benchmarks measure speed; this suite
 * also runs under sanitizers): the time is printed, and the bound only
 * catches a lookup table that degenerated (a quadratic build of 100,000
 * entries takes hours).
 */
#define BIG_BOUND 60.0

static void
test_load_100k(void **state)
{
	struct cg_buf b = { NULL, 0, 0, 0 };
	struct cg_errors errs = { NULL, 0 };
	struct ca_mapping out;
	struct ca_mapper *m;
	struct ca_facts f;
	struct top top;
	config_t cfg;
	char *big_upn[] = { "USER99993@corp.example" };
	double t0, t1, t2, t3;
	char *path;
	size_t i;

	cg_buf_printf(&b, "accounts = {\n  one_to_one = (\n");
	for (i = 0; i < BIG; i++) {
		unsigned v = (unsigned)i;

		cg_buf_printf(&b, "%s    { user = \"user%u\"; ", i ? ",\n" : "", v);
		switch (i % 8) {
		case 0:
			cg_buf_printf(&b, "sha256 = \"%08X:00112233445566778899AABBCCDDEEFF0011223344"
			    "5566778899AABB\";", v);
			break;
		case 1:
			cg_buf_printf(&b, "upn = \"user%u@corp.example\";", v);
			break;
		case 2:
			cg_buf_printf(&b, "email = \"user%u@corp.example\";", v);
			break;
		case 3:
			cg_buf_printf(&b, "ski = \"%08x0102\";", v);
			break;
		case 4:
			cg_buf_printf(&b, "public_key_sha256 = \"%08x00112233445566778899aabbccddeeff"
			    "00112233445566778899aabb\";", v);
			break;
		case 5:
			cg_buf_printf(&b, "sid = \"S-1-5-21-1004336348-1177238915-682003330-%u\";", v);
			break;
		case 6:
			cg_buf_printf(&b, "issuer = \"CN=Corp Issuing CA,O=Corp,C=US\"; serial = \"%08X\";",
			    v + 1);
			break;
		case 7:
			cg_buf_printf(&b, "subject = \"CN=User %u,OU=Eng,O=Corp,DC=corp,DC=example\";", v);
			break;
		}
		cg_buf_printf(&b, " }");
	}
	cg_buf_printf(&b, "\n  );\n};\n");
	path = write_file("big.conf", b.data, b.len);
	cg_buf_free(&b);

	memset(&top, 0, sizeof(top));
	t0 = now();
	assert_int_equal(cg_conf_read_file(&cfg, path, &errs), 0);
	t1 = now();
	assert_int_equal(cg_conf_parse(config_root_setting(&cfg), &top_schema, &top, dir, &errs), 0);
	t2 = now();
	m = ca_mapper_new(&top.accounts, dir, &errs);
	t3 = now();
	if (m == NULL)
		fail_msg("%s", errs.v[0]);
	printf("%d one-to-one entries: libconfig %.3f s + cg_conf_parse %.3f s + "
	    "ca_mapper_new %.3f s = %.3f s (bound %.0f s)\n", BIG, t1 - t0, t2 - t1, t3 - t2,
	    t3 - t0, BIG_BOUND);
	assert_true(t3 - t0 < BIG_BOUND);
	cg_conf_free(&top_schema, &top);
	config_destroy(&cfg);

	/* The table answers for entries anywhere in the file. */
	facts(&f);
	f.san_upn = (struct cg_strv){ big_upn, 1 };
	f.san_email.n = 0;
	f.sid = NULL;
	f.ski_len = 0;
	memset(f.spki_sha256, 0, sizeof(f.spki_sha256));
	memset(f.sha256, 0, sizeof(f.sha256));
	ca_map(m, &f, both, nitems(both), &out);
	assert_string_equal(out.user, "user99993");
	f.sha256[2] = 0x86;
	f.sha256[3] = 0x98;	/* 99992 = 0x00018698 */
	f.sha256[1] = 0x01;
	for (i = 0; i < 28; i++)
		f.sha256[4 + i] = (uint8_t)((i % 16) * 0x11);
	ca_map(m, &f, both, nitems(both), &out);
	assert_string_equal(out.user, "user99992");
	assert_int_equal(out.strong, 1);
	f.sid = "S-1-5-21-1004336348-1177238915-682003330-5";
	ca_map(m, &f, both, nitems(both), &out);
	assert_string_equal(out.user, "user5");	/* earlier in the file */
	ca_mapper_free(m);
	free(path);
}

/* -p prints `accounts` so that it loads back to the same mapper. */
static void
test_print_round_trip(void **state)
{
	static const char text[] = "accounts = {\n"
	    "  one_to_one = ( { user = \"bob\"; sha256 = \"" SHA_HEX "\"; enabled = false; },\n"
	    "                 { user = \"alice\"; upn = \"alice@corp.example\"; } );\n"
	    "  many_to_one = ( { name = \"no\"; permission = \"deny\";\n"
	    "    rules = ( { field = \"san\"; subfield = \"dns\"; match = \"*.evil\"; } ); } );\n"
	    "};\n";
	struct cg_errors e = { NULL, 0 };
	struct ca_mapping out;
	struct ca_mapper *m;
	struct ca_facts f;
	struct top top;
	config_t cfg;
	char *path, *printed = NULL;
	size_t len = 0;
	FILE *mf;

	path = write_file("p.conf", text, sizeof(text) - 1);
	memset(&top, 0, sizeof(top));
	assert_int_equal(cg_conf_read_file(&cfg, path, &e), 0);
	assert_int_equal(cg_conf_parse(config_root_setting(&cfg), &top_schema, &top, dir, &e), 0);
	mf = open_memstream(&printed, &len);
	cg_conf_print(mf, &top_schema, &top, 0);
	fclose(mf);
	cg_conf_free(&top_schema, &top);
	config_destroy(&cfg);
	free(path);

	m = load_ok(printed);
	facts(&f);
	assert_string_equal(map_with(m, &f, &out), "alice");
	dnss[0] = "x.evil";
	assert_string_equal(map_with(m, &f, &out), "alice");
	f.san_upn.n = 0;
	assert_string_equal(map_with(m, &f, &out), "DENY");
	dnss[0] = "alice-pc.corp.example";
	ca_mapper_free(m);
	free(printed);
}

/* ---- explain's trace ---- */

struct lines {
	char *v[32];
	size_t n;
};

static void
collect(void *ctx, const char *line)
{
	struct lines *l = ctx;

	assert_true(l->n < nitems(l->v));
	l->v[l->n++] = cg_strdup(line);
}

static void
lines_free(struct lines *l)
{
	while (l->n > 0)
		free(l->v[--l->n]);
}

/* Traces f, checking that ca_map decides the same as the trace's end. */
static void
trace(const struct ca_mapper *m, const struct ca_facts *f, const enum ca_map_source *order,
    size_t norder, struct lines *l, struct ca_mapping *out)
{
	memset(l, 0, sizeof(*l));
	ca_map_trace(m, f, order, norder, collect, l);
	ca_map(m, f, order, norder, out);
	if (out->method != CA_MAP_NONE) {
		assert_true(l->n > 0);
		assert_non_null(strstr(l->v[l->n - 1], out->why));
	}
}

#define ONE_MISSES	"sha256, public_key_sha256, ski, sid \"" \
	"S-1-5-21-1004336348-1177238915-682003330-1001\", issuer+serial"
#define WEAK_MISSES	"upn \"alice@corp.example\", email \"Alice@Corp.Example\", " \
	"email \"a.smith@corp.example\", subject, subject+issuer"

static void
test_trace(void **state)
{
	static const enum ca_map_source many_first[] = { CA_SRC_MANY_TO_ONE, CA_SRC_ONE_TO_ONE };
	struct ca_mapping out;
	struct ca_mapper *m;
	struct ca_facts f;
	struct lines l;

	facts(&f);
	/* Misses two mappings (at rule 1, then at rule 2) and matches the third. */
	m = load_ok("accounts = {\n"
	    "  one_to_one = ( { user = \"bob\"; upn = \"bob@corp.example\"; } );\n"
	    "  many_to_one = (\n"
	    "    { name = \"sales\"; user = \"sales\";\n"
	    "      rules = ( { field = \"subject\"; subfield = \"OU\"; match = \"Sales\"; } ); },\n"
	    "    { name = \"eng-bob\"; user = \"bob\";\n"
	    "      rules = ( { field = \"subject\"; subfield = \"OU\"; match = \"engineering\"; case_sensitive = false; },\n"
	    "                { field = \"san\"; subfield = \"upn\"; match = \"bob@*\"; } ); },\n"
	    "    " ENG_ALLOW " );\n};\n");
	trace(m, &f, both, nitems(both), &l, &out);
	assert_string_equal(out.user, "eng");
	assert_int_equal(l.n, 4);
	assert_string_equal(l.v[0], "one-to-one: no entry for " ONE_MISSES ", " WEAK_MISSES);
	assert_string_equal(l.v[1], "many-to-one sales: rule 1 (subject OU = \"Sales\") matched "
	    "no value (the certificate's: \"Engineering\", \"Ops\")");
	assert_string_equal(l.v[2], "many-to-one eng-bob: rule 2 (san upn = \"bob@*\") matched "
	    "no value (the certificate's: \"alice@corp.example\")");
	assert_string_equal(l.v[3], out.why);
	assert_string_equal(l.v[3], "many-to-one engineering (allow): all 2 rules matched");
	lines_free(&l);
	/* The policy's order: many-to-one first stops at the match. */
	trace(m, &f, many_first, nitems(many_first), &l, &out);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.v[2], out.why);
	lines_free(&l);
	/* No match at all: every mapping's failing rule, and no decision. */
	subj_attrs[2].value = "Marketing";
	trace(m, &f, both, nitems(both), &l, &out);
	assert_int_equal(out.method, CA_MAP_NONE);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.v[2], "many-to-one eng-bob: rule 1 (subject OU = \"engineering\", "
	    "case-insensitive) matched no value (the certificate's: \"Marketing\", \"Ops\")");
	assert_string_equal(l.v[3], "many-to-one engineering: rule 1 (subject OU = "
	    "\"Engineering\") matched no value (the certificate's: \"Marketing\", \"Ops\")");
	lines_free(&l);
	subj_attrs[2].value = "Engineering";
	ca_mapper_free(m);

	/* A one-to-one match after the strong kinds missed; a field the
	 * certificate lacks; a source with nothing configured. */
	m = load_ok("accounts = {\n"
	    "  one_to_one = ( { user = \"alice\"; email = \"a.smith@corp.example\"; } );\n"
	    "  many_to_one = ( { name = \"dc\"; user = \"dc\";\n"
	    "    rules = ( { field = \"subject\"; subfield = \"DC\"; match = \"*\"; } ); } );\n};\n");
	trace(m, &f, both, nitems(both), &l, &out);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0], "one-to-one email of entry 1 (alice); no entry for "
	    ONE_MISSES ", upn \"alice@corp.example\", email \"Alice@Corp.Example\", subject, "
	    "subject+issuer");
	lines_free(&l);
	trace(m, &f, many_first, nitems(many_first), &l, &out);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0], "many-to-one dc: rule 1 (subject DC = \"*\") matched no "
	    "value (the certificate has no subject DC)");
	lines_free(&l);
	ca_mapper_free(m);
	m = load_ok("");
	trace(m, &f, both, nitems(both), &l, &out);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0], "one-to-one: no entries");
	assert_string_equal(l.v[1], "many-to-one: no mappings");
	lines_free(&l);
	ca_map_trace(m, &f, both, nitems(both), NULL, NULL);
	ca_map_trace(NULL, &f, both, nitems(both), collect, &l);
	assert_int_equal(l.n, 0);
	ca_mapper_free(m);
}

/* Hostile values: escaped, cut, and the line bounded whatever their number. */
static void
test_trace_bounded(void **state)
{
	static char *many[2000];
	struct ca_dn_attr attrs[3];
	struct ca_mapping out;
	struct ca_mapper *m;
	struct ca_facts f;
	struct lines l;
	char *huge = cg_malloc(100001);
	size_t i, j;

	memset(huge, 'A', 100000);
	huge[100000] = '\0';
	huge[0] = '\n';
	huge[1] = '"';
	huge[2] = (char)0xc3;
	attrs[0] = (struct ca_dn_attr){ "OU", huge };
	attrs[1] = (struct ca_dn_attr){ "OU", "x\ty" };
	attrs[2] = (struct ca_dn_attr){ "CN", "Eve" };
	for (i = 0; i < nitems(many); i++)
		many[i] = huge + 3;
	facts(&f);
	f.subject.attrs = attrs;
	f.subject.n = nitems(attrs);
	f.san_upn = (struct cg_strv){ many, nitems(many) };
	f.sid = huge;
	m = load_ok("accounts = {\n"
	    "  one_to_one = ( { user = \"bob\"; upn = \"bob@corp.example\"; } );\n"
	    "  many_to_one = ( { name = \"sales\"; user = \"sales\";\n"
	    "    rules = ( { field = \"subject\"; subfield = \"OU\"; match = \"Sales\"; } ); },\n"
	    "  { name = \"upn\"; user = \"u\";\n"
	    "    rules = ( { field = \"san\"; subfield = \"upn\"; match = \"bob\"; } ); } );\n};\n");
	trace(m, &f, both, nitems(both), &l, &out);
	assert_int_equal(out.method, CA_MAP_NONE);
	assert_int_equal(l.n, 3);
	for (i = 0; i < l.n; i++) {
		assert_true(strlen(l.v[i]) < 1024);
		for (j = 0; l.v[i][j]; j++)
			assert_true((unsigned char)l.v[i][j] >= 0x20 &&
			    (unsigned char)l.v[i][j] < 0x7f);
	}
	assert_non_null(strstr(l.v[0], "sid \"\\x0a\\x22\\xc3AAA"));
	assert_string_equal(l.v[0] + strlen(l.v[0]) - 3, "...");
	assert_non_null(strstr(l.v[1], "(the certificate's: \"\\x0a\\x22\\xc3AAA"));
	assert_non_null(strstr(l.v[1], "...\", \"x\\x09y\")"));
	assert_string_equal(l.v[2] + strlen(l.v[2]) - 3, "...");
	lines_free(&l);
	ca_mapper_free(m);
	free(huge);
}

static void
test_misc(void **state)
{
	struct ca_accounts_conf empty = { { NULL, 0 }, { NULL, 0 } };
	struct cg_errors errs = { NULL, 0 };
	struct ca_mapping out;
	struct ca_mapper *m;
	struct ca_facts f;

	assert_string_equal(ca_map_method_names[CA_MAP_NONE], "none");
	assert_string_equal(ca_map_method_names[CA_MAP_ONE_TO_ONE], "one-to-one");
	assert_string_equal(ca_map_method_names[CA_MAP_MANY_TO_ONE], "many-to-one");
	ca_mapper_free(NULL);
	facts(&f);
	m = ca_mapper_new(&empty, NULL, &errs);
	assert_non_null(m);
	ca_map(m, &f, both, nitems(both), &out);
	assert_int_equal(out.method, CA_MAP_NONE);
	assert_null(out.user);
	ca_map(m, NULL, both, nitems(both), &out);
	assert_int_equal(out.method, CA_MAP_NONE);
	ca_map(NULL, &f, both, nitems(both), &out);
	assert_int_equal(out.method, CA_MAP_NONE);
	ca_mapper_free(m);
	/* An empty `accounts` group and none at all both load. */
	m = load_ok("accounts = { };\n");
	ca_mapper_free(m);
	m = load_ok("");
	ca_mapper_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_kinds),
		cmocka_unit_test(test_certificate),
		cmocka_unit_test(test_strong_before_weak),
		cmocka_unit_test(test_file_order_among_equals),
		cmocka_unit_test(test_disabled),
		cmocka_unit_test(test_many_to_one_order),
		cmocka_unit_test(test_rules_and_multivalued),
		cmocka_unit_test(test_attribute_aliases),
		cmocka_unit_test(test_glob),
		cmocka_unit_test(test_glob_worst_case),
		cmocka_unit_test(test_dn_compare),
		cmocka_unit_test(test_errors_one_to_one),
		cmocka_unit_test(test_errors_many_to_one),
		cmocka_unit_test(test_errors_preempted),
		cmocka_unit_test(test_load_100k),
		cmocka_unit_test(test_print_round_trip),
		cmocka_unit_test(test_trace),
		cmocka_unit_test(test_trace_bounded),
		cmocka_unit_test(test_misc),
	};
	char *rm;
	int rc;

	if (mkdtemp(dir) == NULL)
		return 1;
	gnutls_global_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	rm = cg_printf("rm -rf '%s'", dir);
	if (system(rm) != 0)
		rc = 1;
	free(rm);
	gnutls_global_deinit();
	return rc;
}
