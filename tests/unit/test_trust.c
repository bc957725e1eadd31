/*
 * test_trust.c: `trust` entries and ca_verify (certauth/trust.c, crl.c).
 * Each fixture of tests/pki/mkcrl.sh (in $CG_TEST_CRL) must give its exact
 * verdict and reason, and each setting must change the verdict where the
 * SPEC says it does; CRL reloads and load errors (FILE:LINE) too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "certauth/certauth.h"

static const char *fx;		/* the fixtures: $CG_TEST_CRL */
static char tmp[] = "/tmp/certgate-test-trust.XXXXXX";

/* A configuration holding only `trust`, as the gateway embeds it. */
struct top {
	struct cg_vec trust;
};
static const struct cg_conf_key top_keys[] = {
	{ "trust", CG_CONF_MAP, offsetof(struct top, trust), NULL, 0, 0, 0, NULL,
	  &ca_trust_schema, NULL },
};
static const struct cg_conf_schema top_schema = {
	"the configuration", sizeof(struct top), top_keys, CG_NELEM(top_keys), -1, -1,
};

static char *
write_file(const char *name, const void *data, size_t len)
{
	char *path = cg_printf("%s/%s", tmp, name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return path;
}

static char *
read_fixture(const char *name, size_t *len)
{
	char *path = cg_printf("%s/%s", fx, name), *buf;
	FILE *f = fopen(path, "rb");
	long n;

	if (f == NULL)
		fail_msg("cannot open %s", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = cg_malloc((size_t)n);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	free(path);
	*len = (size_t)n;
	return buf;
}

static int
have_fixture(const char *name)
{
	char *path = cg_printf("%s/%s", fx, name);
	int ok = access(path, R_OK) == 0;

	free(path);
	return ok;
}

/* Parses "trust = { corp = { BODY }; };" from a file (so errors carry
 * FILE:LINE), with relative paths taken from dir, and loads the entry.
 * The errors, joined by newlines, go to *errtext when it is not NULL. */
static struct ca_trust *
load_in(const char *dir, const char *body, char **errtext)
{
	struct cg_errors errs = { NULL, 0 };
	struct top top;
	struct ca_trust *t = NULL;
	char *text = cg_printf("trust = {\n  corp = {\n%s\n  };\n};\n", body);
	char *path = write_file("t.conf", text, strlen(text)), *all = cg_strdup("");
	config_t cfg;
	size_t i;

	memset(&top, 0, sizeof(top));
	if (cg_conf_read_file(&cfg, path, &errs) == 0 &&
	    cg_conf_parse(config_root_setting(&cfg), &top_schema, &top, dir, &errs) == 0) {
		assert_int_equal(top.trust.n, 1);
		t = ca_trust_new(CG_VEC_AT(top.trust, struct ca_trust_conf, 0), &errs);
	}
	assert_true((t == NULL) == (errs.n > 0));
	for (i = 0; i < errs.n; i++) {
		char *n = cg_printf("%s%s\n", all, errs.v[i]);

		free(all);
		all = n;
	}
	if (errtext)
		*errtext = all;
	else if (errs.n)
		fail_msg("unexpected errors:\n%s", all);
	else
		free(all);
	cg_errors_free(&errs);
	cg_conf_free(&top_schema, &top);
	config_destroy(&cfg);
	free(text);
	free(path);
	return t;
}

static struct ca_trust *
load(const char *body)
{
	return load_in(fx, body, NULL);
}

/* The certificates of a PEM file, as a client sends them (DER). */
struct chain {
	gnutls_datum_t d[8];
	size_t n;
};

static void
chain_load(struct chain *c, const char *name)
{
	gnutls_x509_crt_t *list = NULL;
	gnutls_datum_t pem;
	size_t len;
	unsigned n = 0, i;

	pem.data = (unsigned char *)read_fixture(name, &len);
	pem.size = (unsigned)len;
	assert_int_equal(gnutls_x509_crt_list_import2(&list, &n, &pem, GNUTLS_X509_FMT_PEM, 0), 0);
	free(pem.data);
	assert_true(n >= 1 && n + c->n <= CG_NELEM(c->d));
	for (i = 0; i < n; i++) {
		assert_int_equal(gnutls_x509_crt_export2(list[i], GNUTLS_X509_FMT_DER,
		    &c->d[c->n++]), 0);
		gnutls_x509_crt_deinit(list[i]);
	}
	gnutls_free(list);
}

static void
chain_free(struct chain *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		gnutls_free(c->d[i].data);
	c->n = 0;
}

static const char *
vname(enum ca_verdict v)
{
	return v < CA_VERDICT__MAX ? ca_verdict_names[v] : "?";
}

static void
expect_chain(const struct ca_trust *t, const struct chain *c, const char *what, time_t now,
    enum ca_verdict want, const char *reason)
{
	struct ca_result r;
	enum ca_verdict v;

	memset(&r, 0x5a, sizeof(r));
	v = ca_verify(t, c->d, c->n, now, &r);
	if (v != r.verdict)
		fail_msg("%s: returned %s, result says %s", what, vname(v), vname(r.verdict));
	if (v != want || strcmp(r.reason, reason) != 0)
		fail_msg("%s: got %s \"%s\", want %s \"%s\"", what, vname(v), r.reason, vname(want),
		    reason);
}

/* Verifies the certificates of fixture file at now. */
static void
expect_at(const struct ca_trust *t, const char *file, time_t now, enum ca_verdict want,
    const char *reason)
{
	struct chain c = { .n = 0 };

	chain_load(&c, file);
	expect_chain(t, &c, file, now, want, reason);
	chain_free(&c);
}

static void
expect(const struct ca_trust *t, const char *file, enum ca_verdict want, const char *reason)
{
	expect_at(t, file, time(NULL), want, reason);
}

static int
untrusted(const struct ca_trust *t, const char *file)
{
	struct chain c = { .n = 0 };
	struct ca_result r;

	chain_load(&c, file);
	ca_verify(t, c.d, c.n, time(NULL), &r);
	chain_free(&c);
	return r.issuer_untrusted;
}

/* The usual entry: the root as anchor, the client sends its intermediate. */
#define STD "ca = [ \"root.pem\" ]; crl = [ \"int.crl\", \"root.crl\" ];"

/* ---- tests ---- */

static void
test_schema_defaults(void **state)
{
	struct cg_errors errs = { NULL, 0 };
	struct top top;
	struct ca_trust_conf *c;
	config_t cfg;
	const char *text = "trust = { corp = { ca = [ \"root.pem\" ]; }; };\n";
	char *path = write_file("d.conf", text, strlen(text));

	memset(&top, 0, sizeof(top));
	assert_int_equal(cg_conf_read_file(&cfg, path, &errs), 0);
	assert_int_equal(cg_conf_parse(config_root_setting(&cfg), &top_schema, &top, "/pki", &errs),
	    0);
	c = CG_VEC_AT(top.trust, struct ca_trust_conf, 0);
	assert_string_equal(c->name, "corp");
	assert_int_equal(c->ca.n, 1);
	assert_string_equal(c->ca.v[0], "/pki/root.pem");
	assert_int_equal(c->crl.n, 0);
	assert_int_equal(c->crl_check, CA_CRL_CHAIN);
	assert_int_equal(c->crl_missing, CA_DENY);
	assert_int_equal(c->crl_expired, CA_DENY);
	assert_int_equal(c->crl_reload, 60);
	assert_int_equal(c->depth, 4);
	assert_int_equal(c->key_purpose, CA_KP_CLIENT);
	assert_int_equal(c->advertise.n, 0);
	assert_non_null(cg_conf_setting(&c->src, "ca"));
	cg_conf_free(&top_schema, &top);
	config_destroy(&cfg);
	free(path);
}

/* Loading body (relative paths from dir) fails with an error that holds
 * "t.conf:LINE: " and fragment. */
static void
expect_error_in(const char *dir, const char *body, int line, const char *fragment)
{
	char *errs = NULL, *want = cg_printf("%s/t.conf:%d: ", tmp, line);

	assert_null(load_in(dir, body, &errs));
	if (strstr(errs, want) == NULL || strstr(errs, fragment) == NULL)
		fail_msg("expected \"%s...%s\", got:\n%s", want, fragment, errs);
	free(want);
	free(errs);
}

static void
expect_conf_error(const char *body, int line, const char *fragment)
{
	expect_error_in(fx, body, line, fragment);
}

static void
test_schema_errors(void **state)
{
	expect_conf_error("    ca = [ \"root.pem\" ];\n    depth = 17;", 4,
	    "depth: 17 is out of range (1..16)");
	expect_conf_error("    ca = [ \"root.pem\" ];\n    depth = 0;", 4, "out of range");
	expect_conf_error("    ca = [ \"root.pem\" ];\n    crl_reload = 86401;", 4, "out of range");
	expect_conf_error("    ca = [ \"root.pem\" ];\n    crl_check = \"all\";", 4,
	    "crl_check: \"all\" is not one of \"none\", \"leaf\", \"chain\"");
	expect_conf_error("    ca = [ \"root.pem\" ];\n    crl_missing = \"maybe\";", 4,
	    "not one of \"deny\", \"allow\"");
	expect_conf_error("    ca = [ \"root.pem\" ];\n    key_purpose = \"server\";", 4,
	    "not one of \"client\", \"any\"");
	expect_conf_error("    crl = [ \"int.crl\" ];", 2, "missing required key \"ca\"");
	expect_conf_error("    ca = [ \"root.pem\" ];\n    cert = 1;", 4, "unknown key \"cert\"");
}

/* ca_trust_new's errors carry the file and the line of the setting, in
 * the form "FILE:LINE: trust \"corp\": cannot load CA \"path\": reason". */
static void
test_load_errors(void **state)
{
	char *body, *msg;
	const char *pem = "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";

	free(write_file("garbage.pem", pem, strlen(pem)));
	free(write_file("garbage.der", "\x30\x03\x02\x01", 4));
	free(write_file("garbage.crl", "this is not a CRL", 17));

	/* Lines: 1 trust, 2 corp, 3 first body line. */
	body = cg_printf("    crl_check = \"none\";\n    ca = [ \"%s/root.pem\",\n"
	    "      \"missing.pem\" ];", fx);
	msg = cg_printf("trust \"corp\": cannot load CA \"%s/missing.pem\": "
	    "No such file or directory", tmp);
	expect_error_in(tmp, body, 4, msg);
	free(body);
	free(msg);

	body = cg_printf("    ca = [ \"garbage.pem\" ];");
	msg = cg_printf("trust \"corp\": cannot load CA \"%s/garbage.pem\": ", tmp);
	expect_error_in(tmp, body, 3, msg);
	free(body);
	free(msg);

	body = cg_printf("    ca = [ \"garbage.der\" ];");
	msg = cg_printf("trust \"corp\": cannot load CA \"%s/garbage.der\": ", tmp);
	expect_error_in(tmp, body, 3, msg);
	free(body);
	free(msg);

	body = cg_printf("    ca = [ \"%s/root.pem\" ];\n\n    crl = [ \"garbage.crl\" ];", fx);
	msg = cg_printf("trust \"corp\": cannot load CRL \"%s/garbage.crl\": ", tmp);
	expect_error_in(tmp, body, 5, msg);
	free(body);
	free(msg);

	body = cg_printf("    ca = [ \"%s/root.pem\" ];\n    crl = [ \"nothere.crl\" ];", fx);
	msg = cg_printf("trust \"corp\": cannot load CRL \"%s/nothere.crl\": "
	    "No such file or directory", tmp);
	expect_error_in(tmp, body, 4, msg);
	free(body);
	free(msg);

	body = cg_printf("    ca = [ \"%s/root.pem\" ];\n    advertise = [ \"nothere.pem\" ];", fx);
	msg = cg_printf("trust \"corp\": cannot load advertised CA \"%s/nothere.pem\": ", tmp);
	expect_error_in(tmp, body, 4, msg);
	free(body);
	free(msg);

	expect_error_in(tmp, "    ca = [ ];", 3, "trust \"corp\": no CA certificate");
	/* A CRL file is not a CA file, nor the other way round. */
	body = cg_printf("    ca = [ \"%s/int.crl\" ];", fx);
	expect_error_in(tmp, body, 3, "cannot load CA");
	free(body);
	body = cg_printf("    ca = [ \"%s/root.pem\" ];\n    crl = [ \"%s/int.pem\" ];", fx, fx);
	expect_error_in(tmp, body, 4, "cannot load CRL");
	free(body);
}

static void
test_good(void **state)
{
	struct ca_trust *t = load(STD), *t2;
	struct chain c = { .n = 0 };

	expect(t, "good-chain.pem", CA_VERDICT_OK, "");
	assert_int_equal(untrusted(t, "good-chain.pem"), 0);
	/* Without its intermediate the leaf reaches no anchor. */
	expect(t, "good.pem", CA_VERDICT_INVALID, "unknown issuer");
	assert_int_equal(untrusted(t, "good.pem"), 1);
	/* The client may send the root too, and intermediates in any order. */
	chain_load(&c, "good-chain.pem");
	chain_load(&c, "root.pem");
	expect_chain(t, &c, "good, int, root", time(NULL), CA_VERDICT_OK, "");
	chain_free(&c);
	ca_trust_unref(t);

	/* Intermediates may come from the CA files: separate files, one PEM
	 * with both, or a DER root. */
	t = load("ca = [ \"root.pem\", \"int.pem\" ]; crl = [ \"int.crl\", \"root.crl\" ];");
	expect(t, "good.pem", CA_VERDICT_OK, "");
	expect(t, "good-chain.pem", CA_VERDICT_OK, "");
	ca_trust_unref(t);
	t = load("ca = [ \"ca-bundle.pem\" ]; crl = [ \"int.crl\", \"root.crl\" ];");
	expect(t, "good.pem", CA_VERDICT_OK, "");
	t2 = ca_trust_ref(t);
	ca_trust_unref(t);
	expect(t2, "good.pem", CA_VERDICT_OK, "");
	ca_trust_unref(t2);
	t = load("ca = [ \"root.der\", \"int.pem\" ]; crl = [ \"int.crl\", \"root.crl\" ];");
	expect(t, "good.pem", CA_VERDICT_OK, "");
	/* The intermediate in the CA files is no anchor: the chain goes on to
	 * the root and the root's CRL is needed. */
	ca_trust_unref(t);
	t = load("ca = [ \"root.pem\", \"int.pem\" ]; crl = [ \"int.crl\" ];");
	expect(t, "good.pem", CA_VERDICT_INVALID, "no CRL for issuer");
	ca_trust_unref(t);
	/* An intermediate alone is an anchor. */
	t = load("ca = [ \"int.pem\" ]; crl = [ \"int.crl\" ];");
	expect(t, "good.pem", CA_VERDICT_OK, "");
	expect(t, "revoked.pem", CA_VERDICT_REVOKED, "revoked");
	ca_trust_unref(t);
	ca_trust_unref(NULL);
}

static void
test_no_certificate(void **state)
{
	struct ca_trust *t = load(STD);
	struct ca_result r;
	gnutls_datum_t junk = { (unsigned char *)"\x30\x03\x02\x01\x01", 5 };

	assert_int_equal(ca_verify(t, NULL, 0, time(NULL), &r), CA_VERDICT_NONE);
	assert_string_equal(r.reason, "");
	assert_int_equal(ca_verify(t, &junk, 1, time(NULL), &r), CA_VERDICT_INVALID);
	assert_string_equal(r.reason, "malformed certificate");
	assert_int_equal(ca_verify(NULL, &junk, 1, time(NULL), &r), CA_VERDICT_INVALID);
	ca_trust_unref(t);
}

static void
test_revoked_leaf(void **state)
{
	struct ca_trust *t = load(STD);

	expect(t, "revoked-chain.pem", CA_VERDICT_REVOKED, "revoked");
	ca_trust_unref(t);
	t = load(STD " crl_check = \"leaf\";");
	expect(t, "revoked-chain.pem", CA_VERDICT_REVOKED, "revoked");
	ca_trust_unref(t);
	t = load(STD " crl_check = \"none\";");
	expect(t, "revoked-chain.pem", CA_VERDICT_OK, "");
	ca_trust_unref(t);
}

static void
test_revoked_intermediate(void **state)
{
	const char *crls = "ca = [ \"root.pem\" ]; crl = [ \"revca.crl\", \"root.crl\" ];";
	struct ca_trust *t;
	char *body;

	t = load(crls);
	expect(t, "revca-leaf-chain.pem", CA_VERDICT_REVOKED, "revoked");
	ca_trust_unref(t);
	body = cg_printf("%s crl_check = \"leaf\";", crls);
	t = load(body);
	expect(t, "revca-leaf-chain.pem", CA_VERDICT_OK, "");
	ca_trust_unref(t);
	free(body);
	body = cg_printf("%s crl_check = \"none\";", crls);
	t = load(body);
	expect(t, "revca-leaf-chain.pem", CA_VERDICT_OK, "");
	ca_trust_unref(t);
	free(body);
}

static void
test_no_crl(void **state)
{
	struct ca_trust *t = load(STD);

	expect(t, "nocrl-leaf-chain.pem", CA_VERDICT_INVALID, "no CRL for issuer");
	ca_trust_unref(t);
	t = load(STD " crl_missing = \"allow\";");
	expect(t, "nocrl-leaf-chain.pem", CA_VERDICT_OK, "");
	ca_trust_unref(t);
	t = load(STD " crl_check = \"none\";");
	expect(t, "nocrl-leaf-chain.pem", CA_VERDICT_OK, "");
	ca_trust_unref(t);
	/* The root's CRL is needed for the intermediate under "chain" only. */
	t = load("ca = [ \"root.pem\" ]; crl = [ \"int.crl\" ];");
	expect(t, "good-chain.pem", CA_VERDICT_INVALID, "no CRL for issuer");
	ca_trust_unref(t);
	t = load("ca = [ \"root.pem\" ]; crl = [ \"int.crl\" ]; crl_check = \"leaf\";");
	expect(t, "good-chain.pem", CA_VERDICT_OK, "");
	ca_trust_unref(t);
	t = load("ca = [ \"root.pem\" ]; crl_check = \"leaf\";");
	expect(t, "good-chain.pem", CA_VERDICT_INVALID, "no CRL for issuer");
	ca_trust_unref(t);
	t = load("ca = [ \"root.pem\" ]; crl_missing = \"allow\";");
	expect(t, "good-chain.pem", CA_VERDICT_OK, "");
	ca_trust_unref(t);
}

static void
test_crl_bad_signature(void **state)
{
	const char *crls = "ca = [ \"root.pem\" ]; crl = [ \"badsig.crl\", \"root.crl\" ];";
	struct ca_trust *t = load(crls);
	char *body;

	expect(t, "good-chain.pem", CA_VERDICT_INVALID, "CRL signature");
	ca_trust_unref(t);
	/* A CRL that fails is not a missing one. */
	body = cg_printf("%s crl_missing = \"allow\"; crl_expired = \"allow\";", crls);
	t = load(body);
	expect(t, "good-chain.pem", CA_VERDICT_INVALID, "CRL signature");
	ca_trust_unref(t);
	free(body);
	body = cg_printf("%s crl_check = \"none\";", crls);
	t = load(body);
	expect(t, "good-chain.pem", CA_VERDICT_OK, "");
	ca_trust_unref(t);
	free(body);
	/* Beside the issuer's real CRL, the forged one is not used. */
	t = load("ca = [ \"root.pem\" ]; crl = [ \"badsig.crl\", \"int.crl\", \"root.crl\" ];");
	expect(t, "good-chain.pem", CA_VERDICT_OK, "");
	expect(t, "revoked-chain.pem", CA_VERDICT_REVOKED, "revoked");
	ca_trust_unref(t);
}

static void
test_crl_wrong_issuer(void **state)
{
	struct ca_trust *t;

	t = load("ca = [ \"root.pem\" ]; crl = [ \"wrongissuer.crl\", \"root.crl\" ];");
	expect(t, "good-chain.pem", CA_VERDICT_INVALID, "CRL issuer");
	ca_trust_unref(t);
	t = load("ca = [ \"root.pem\" ]; crl = [ \"wrongissuer.crl\", \"root.crl\" ]; "
	    "crl_check = \"none\";");
	expect(t, "good-chain.pem", CA_VERDICT_OK, "");
	ca_trust_unref(t);
}

static void
test_crl_no_crlsign(void **state)
{
	const char *crls = "ca = [ \"root.pem\" ]; crl = [ \"nocrlsign.crl\", \"root.crl\" ];";
	struct ca_trust *t = load(crls);
	char *body;

	expect(t, "nocrlsign-leaf-chain.pem", CA_VERDICT_INVALID, "CRL signer lacks cRLSign");
	ca_trust_unref(t);
	body = cg_printf("%s crl_check = \"leaf\";", crls);
	t = load(body);
	expect(t, "nocrlsign-leaf-chain.pem", CA_VERDICT_INVALID, "CRL signer lacks cRLSign");
	ca_trust_unref(t);
	free(body);
	body = cg_printf("%s crl_check = \"none\";", crls);
	t = load(body);
	expect(t, "nocrlsign-leaf-chain.pem", CA_VERDICT_OK, "");
	ca_trust_unref(t);
	free(body);
}

static void
test_crl_expired(void **state)
{
	const char *crls = "ca = [ \"root.pem\" ]; crl = [ \"expired.crl\", \"root.crl\" ];";
	struct ca_trust *t = load(crls);
	char *body;

	expect(t, "good-chain.pem", CA_VERDICT_INVALID, "CRL expired");
	/* A serial listed in a stale but authentic CRL stays revoked. */
	expect(t, "revoked-chain.pem", CA_VERDICT_REVOKED, "revoked");
	ca_trust_unref(t);
	body = cg_printf("%s crl_expired = \"allow\";", crls);
	t = load(body);
	expect(t, "good-chain.pem", CA_VERDICT_OK, "");
	expect(t, "revoked-chain.pem", CA_VERDICT_REVOKED, "revoked");
	ca_trust_unref(t);
	free(body);
	/* crl_missing does not cover a stale CRL. */
	body = cg_printf("%s crl_missing = \"allow\";", crls);
	t = load(body);
	expect(t, "good-chain.pem", CA_VERDICT_INVALID, "CRL expired");
	ca_trust_unref(t);
	free(body);
	/* A current CRL beside the stale one is enough. */
	t = load("ca = [ \"root.pem\" ]; crl = [ \"expired.crl\", \"int.crl\", \"root.crl\" ];");
	expect(t, "good-chain.pem", CA_VERDICT_OK, "");
	ca_trust_unref(t);
}

static void
test_crl_critical_extension(void **state)
{
	struct ca_trust *t;

	if (!have_fixture("critical.crl")) {
		fprintf(stderr, "critical.crl not made (no openssl): skipped\n");
		skip();
	}
	t = load("ca = [ \"root.pem\" ]; crl = [ \"critical.crl\", \"root.crl\" ];");
	expect(t, "good-chain.pem", CA_VERDICT_INVALID, "CRL critical extension");
	ca_trust_unref(t);
	t = load("ca = [ \"root.pem\" ]; crl = [ \"critical.crl\", \"root.crl\" ]; "
	    "crl_check = \"none\";");
	expect(t, "good-chain.pem", CA_VERDICT_OK, "");
	ca_trust_unref(t);
}

static void
test_depth(void **state)
{
	const char *crls = "ca = [ \"root.pem\" ]; crl = [ \"int.crl\", \"int2.crl\", \"root.crl\" ];";
	struct chain c = { .n = 0 };
	struct ca_trust *t;
	char *body;

	t = load(crls);
	expect(t, "deep-leaf-chain.pem", CA_VERDICT_OK, "");
	/* Intermediates in any order. */
	chain_load(&c, "deep-leaf.pem");
	chain_load(&c, "int.pem");
	chain_load(&c, "int2.pem");
	expect_chain(t, &c, "deep-leaf, int, int2", time(NULL), CA_VERDICT_OK, "");
	chain_free(&c);
	ca_trust_unref(t);
	body = cg_printf("%s depth = 3;", crls);
	t = load(body);
	expect(t, "deep-leaf-chain.pem", CA_VERDICT_OK, "");
	ca_trust_unref(t);
	free(body);
	body = cg_printf("%s depth = 2;", crls);
	t = load(body);
	expect(t, "deep-leaf-chain.pem", CA_VERDICT_INVALID, "chain too long");
	expect(t, "good-chain.pem", CA_VERDICT_OK, "");
	ca_trust_unref(t);
	free(body);
	body = cg_printf("%s depth = 1;", crls);
	t = load(body);
	expect(t, "good-chain.pem", CA_VERDICT_INVALID, "chain too long");
	ca_trust_unref(t);
	free(body);
	/* Intermediates from the CA files count too. */
	t = load("ca = [ \"root.pem\", \"int.pem\" ]; crl = [ \"int.crl\", \"root.crl\" ]; depth = 1;");
	expect(t, "good.pem", CA_VERDICT_INVALID, "chain too long");
	ca_trust_unref(t);
}

static void
test_key_purpose(void **state)
{
	struct ca_trust *t = load(STD);

	expect(t, "serveronly-chain.pem", CA_VERDICT_INVALID, "wrong key purpose");
	ca_trust_unref(t);
	t = load(STD " key_purpose = \"any\";");
	expect(t, "serveronly-chain.pem", CA_VERDICT_OK, "");
	expect(t, "good-chain.pem", CA_VERDICT_OK, "");
	ca_trust_unref(t);
}

static void
test_validity(void **state)
{
	struct ca_trust *t = load(STD);

	expect(t, "expired-leaf-chain.pem", CA_VERDICT_EXPIRED, "expired");
	expect(t, "notyet-leaf-chain.pem", CA_VERDICT_EXPIRED, "not yet valid");
	/* Revoked wins over expired (SPEC section 4 row order). */
	expect(t, "revoked-expired-chain.pem", CA_VERDICT_REVOKED, "revoked");
	ca_trust_unref(t);
	/* Expired wins over any other failure (here: no CRL). */
	t = load("ca = [ \"root.pem\" ];");
	expect(t, "expired-leaf-chain.pem", CA_VERDICT_EXPIRED, "expired");
	expect(t, "good-chain.pem", CA_VERDICT_INVALID, "no CRL for issuer");
	ca_trust_unref(t);
	/* Even over an unknown issuer. */
	t = load("ca = [ \"unknown-ca.pem\" ]; crl_check = \"none\";");
	expect(t, "expired-leaf-chain.pem", CA_VERDICT_EXPIRED, "expired");
	ca_trust_unref(t);
}

static void
test_bad_signature(void **state)
{
	struct ca_trust *t = load(STD);

	expect(t, "forged-chain.pem", CA_VERDICT_INVALID, "bad signature");
	assert_int_equal(untrusted(t, "forged-chain.pem"), 0);
	ca_trust_unref(t);
}

static void
test_unknown_issuer(void **state)
{
	struct ca_trust *t = load(STD);
	struct chain c = { .n = 0 };

	expect(t, "selfsigned.pem", CA_VERDICT_INVALID, "unknown issuer");
	assert_int_equal(untrusted(t, "selfsigned.pem"), 1);
	expect(t, "unknown-leaf-chain.pem", CA_VERDICT_INVALID, "unknown issuer");
	assert_int_equal(untrusted(t, "unknown-leaf-chain.pem"), 1);
	expect(t, "unknown-leaf.pem", CA_VERDICT_INVALID, "unknown issuer");
	/* A CA with int's name but another key is not int. */
	chain_load(&c, "good.pem");
	chain_load(&c, "impostor.pem");
	expect_chain(t, &c, "good, impostor", time(NULL), CA_VERDICT_INVALID, "unknown issuer");
	chain_free(&c);
	ca_trust_unref(t);
	/* A self-signed certificate listed in `ca` is its own anchor. */
	t = load("ca = [ \"selfsigned.pem\" ];");
	expect(t, "selfsigned.pem", CA_VERDICT_OK, "");
	ca_trust_unref(t);
}

/* Validity is judged at `now`, not at the clock. */
static void
test_now(void **state)
{
	struct ca_trust *t = load(STD), *t2;
	gnutls_x509_crt_t crt;
	gnutls_datum_t pem;
	size_t len;
	time_t from, until, now = time(NULL);

	pem.data = (unsigned char *)read_fixture("good.pem", &len);
	pem.size = (unsigned)len;
	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM), 0);
	from = gnutls_x509_crt_get_activation_time(crt);
	until = gnutls_x509_crt_get_expiration_time(crt);
	gnutls_x509_crt_deinit(crt);
	free(pem.data);

	/* The first answer is remembered (trust.c's cache of good chains); each
	 * later question falls outside the window it is good for, and must get
	 * the answer a full verification gives. */
	expect_at(t, "good-chain.pem", now, CA_VERDICT_OK, "");
	expect_at(t, "good-chain.pem", now + 1, CA_VERDICT_OK, "");
	expect_at(t, "revoked-chain.pem", now, CA_VERDICT_REVOKED, "revoked");
	expect_at(t, "good-chain.pem", now + 10 * 365 * 86400L, CA_VERDICT_EXPIRED, "expired");
	expect_at(t, "good-chain.pem", until + 1, CA_VERDICT_EXPIRED, "expired");
	expect_at(t, "good-chain.pem", from - 1, CA_VERDICT_EXPIRED, "not yet valid");
	/* Past the CRLs' nextUpdate (90 days) but within the leaf's year. */
	expect_at(t, "good-chain.pem", now + 100 * 86400L, CA_VERDICT_INVALID, "CRL expired");
	ca_trust_unref(t);

	/* Certificates valid only in 2020 or 2040 are OK then; the CRLs were
	 * not issued yet in 2020 and are stale in 2040. */
	t = load(STD " crl_check = \"none\";");
	expect_at(t, "expired-leaf-chain.pem", 1590969600 /* 2020-06-01 */, CA_VERDICT_OK, "");
	expect_at(t, "notyet-leaf-chain.pem", 2222208000 /* 2040-06-01 */, CA_VERDICT_OK, "");
	ca_trust_unref(t);
	t = load(STD);
	expect_at(t, "expired-leaf-chain.pem", 1590969600, CA_VERDICT_INVALID, "CRL not yet valid");
	expect_at(t, "notyet-leaf-chain.pem", 2222208000, CA_VERDICT_INVALID, "CRL expired");
	t2 = load(STD " crl_expired = \"allow\";");
	expect_at(t2, "notyet-leaf-chain.pem", 2222208000, CA_VERDICT_OK, "");
	ca_trust_unref(t2);
	ca_trust_unref(t);
}

static void
bump_mtime(const char *path, int seconds)
{
	struct timespec ts[2];
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	ts[1].tv_sec += seconds;
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void
test_reload(void **state)
{
	struct ca_trust *t, *t2, *t3;
	char *crl, *body, *data;
	size_t len;

	data = read_fixture("int.crl", &len);
	crl = write_file("int.crl", data, len);
	free(data);
	body = cg_printf("ca = [ \"root.pem\" ]; crl = [ \"%s\", \"root.crl\" ];", crl);
	t = load(body);
	expect(t, "good-chain.pem", CA_VERDICT_OK, "");
	/* Nothing changed: nothing to swap in. */
	assert_null(ca_trust_reload_crls(t));

	data = read_fixture("int-revokes-good.crl", &len);
	free(write_file("int.crl", data, len));
	free(data);
	bump_mtime(crl, 10);
	t2 = ca_trust_reload_crls(t);
	assert_non_null(t2);
	expect(t2, "good-chain.pem", CA_VERDICT_REVOKED, "revoked");
	/* A connection still holding the old trust sees the old CRL. */
	expect(t, "good-chain.pem", CA_VERDICT_OK, "");
	assert_null(ca_trust_reload_crls(t2));
	ca_trust_unref(t);
	expect(t2, "good-chain.pem", CA_VERDICT_REVOKED, "revoked");
	/* The unchanged root.crl is still in force. */
	expect(t2, "revca-leaf-chain.pem", CA_VERDICT_REVOKED, "revoked");

	/* A broken file keeps the loaded CRLs (and is logged). */
	free(write_file("int.crl", "garbage", 7));
	bump_mtime(crl, 20);
	assert_null(ca_trust_reload_crls(t2));
	expect(t2, "good-chain.pem", CA_VERDICT_REVOKED, "revoked");
	/* So does a file that went away. */
	assert_int_equal(unlink(crl), 0);
	assert_null(ca_trust_reload_crls(t2));
	expect(t2, "good-chain.pem", CA_VERDICT_REVOKED, "revoked");

	/* Back to the first CRL: the next reload picks it up. */
	data = read_fixture("int.crl", &len);
	free(write_file("int.crl", data, len));
	free(data);
	t3 = ca_trust_reload_crls(t2);
	assert_non_null(t3);
	expect(t3, "good-chain.pem", CA_VERDICT_OK, "");
	expect(t3, "revoked-chain.pem", CA_VERDICT_REVOKED, "revoked");
	ca_trust_unref(t2);
	ca_trust_unref(t3);
	free(body);
	free(crl);
}

static unsigned
count_cas(gnutls_x509_trust_list_t list)
{
	gnutls_x509_trust_list_iter_t iter = NULL;
	gnutls_x509_crt_t crt;
	unsigned n = 0;

	while (gnutls_x509_trust_list_iter_get_ca(list, &iter, &crt) == 0) {
		gnutls_x509_crt_deinit(crt);
		n++;
	}
	gnutls_x509_trust_list_iter_deinit(iter);
	return n;
}

static void
test_advertised(void **state)
{
	struct ca_trust *t;

	t = load("ca = [ \"ca-bundle.pem\", \"int2.pem\" ]; crl_check = \"none\";");
	assert_non_null(ca_trust_advertised(t));
	assert_int_equal(count_cas(ca_trust_advertised(t)), 3);
	ca_trust_unref(t);
	t = load("ca = [ \"ca-bundle.pem\" ]; advertise = [ \"int.pem\" ]; crl_check = \"none\";");
	assert_int_equal(count_cas(ca_trust_advertised(t)), 1);
	ca_trust_unref(t);
}

/* The fixtures are made once (mkcrl.sh is idempotent); their CRLs last
 * 90 days. */
static int
fixtures_stale(void)
{
	gnutls_x509_crl_t crl;
	gnutls_datum_t pem;
	size_t len;
	int stale = 1;

	pem.data = (unsigned char *)read_fixture("int.crl", &len);
	pem.size = (unsigned)len;
	if (gnutls_x509_crl_init(&crl) == 0) {
		if (gnutls_x509_crl_import(crl, &pem, GNUTLS_X509_FMT_PEM) == 0)
			stale = gnutls_x509_crl_get_next_update(crl) < time(NULL) + 3600;
		gnutls_x509_crl_deinit(crl);
	}
	free(pem.data);
	return stale;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schema_defaults),
		cmocka_unit_test(test_schema_errors),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_no_certificate),
		cmocka_unit_test(test_revoked_leaf),
		cmocka_unit_test(test_revoked_intermediate),
		cmocka_unit_test(test_no_crl),
		cmocka_unit_test(test_crl_bad_signature),
		cmocka_unit_test(test_crl_wrong_issuer),
		cmocka_unit_test(test_crl_no_crlsign),
		cmocka_unit_test(test_crl_expired),
		cmocka_unit_test(test_crl_critical_extension),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_key_purpose),
		cmocka_unit_test(test_validity),
		cmocka_unit_test(test_bad_signature),
		cmocka_unit_test(test_unknown_issuer),
		cmocka_unit_test(test_now),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_advertised),
	};
	char *cmd;
	int rc;

	fx = getenv("CG_TEST_CRL");
	if (fx == NULL || !have_fixture("root.pem")) {
		fprintf(stderr, "test_trust: set CG_TEST_CRL to a directory made by "
		    "sh tests/pki/mkcrl.sh DIR\n");
		return 1;
	}
	if (fixtures_stale()) {
		fprintf(stderr, "test_trust: the CRLs in %s are past their nextUpdate: "
		    "remake them (rm -rf %s; sh tests/pki/mkcrl.sh %s)\n", fx, fx, fx);
		return 1;
	}
	if (mkdtemp(tmp) == NULL)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	cmd = cg_printf("rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		rc = 1;
	free(cmd);
	return rc;
}
