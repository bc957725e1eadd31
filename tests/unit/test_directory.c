/*
 * test_directory.c: certauth/directory.c: RFC 4515 escaping, the
 * altSecurityIdentities values of the test PKI's certificates in Active
 * Directory's formats, objectSid as text, group names and the
 * strong-binding verdicts. Certificates come from CG_TEST_PKI.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>

#include "certauth/certauth.h"

static const char *pki;

static void
load_facts(const char *name, struct ca_facts *f, gnutls_datum_t *der)
{
	gnutls_datum_t pem;
	char *path = cg_printf("%s/%s.pem", pki, name), err[256];

	if (gnutls_load_file(path, &pem) < 0)
		fail_msg("cannot read %s", path);
	if (gnutls_pem_base64_decode2("CERTIFICATE", &pem, der) < 0)
		fail_msg("%s: not a PEM certificate", path);
	gnutls_free(pem.data);
	if (ca_facts_from_der(der->data, der->size, f, err, sizeof(err)) < 0)
		fail_msg("%s: %s", path, err);
	free(path);
}

static const char *
value_of(const struct ca_dir_query *q, const char *format)
{
	size_t i;

	for (i = 0; i < q->n; i++)
		if (strcmp(q->v[i].format, format) == 0)
			return q->v[i].value;
	return NULL;
}

static void
test_escape(void **state)
{
	char *e;

	(void)state;
	e = ca_ldap_escape("CN=a*)(uid=*", 12);
	assert_string_equal(e, "CN=a\\2a\\29\\28uid=\\2a");
	free(e);
	e = ca_ldap_escape("a\\b\0c", 5);
	assert_string_equal(e, "a\\5cb\\00c");
	free(e);
	e = ca_ldap_escape("Zo\xc3\xab", 4);
	assert_string_equal(e, "Zo\\c3\\ab");
	free(e);
	e = ca_ldap_escape("X509:<I>C=US<SR>01", 18);
	assert_string_equal(e, "X509:<I>C=US<SR>01");	/* < > = , are plain in a filter */
	free(e);
}

static void
test_altsecid_formats(void **state)
{
	struct ca_facts f;
	struct ca_dir_query q;
	gnutls_datum_t der;
	uint8_t sha1[20];
	char hex[41], *want;
	size_t i;

	(void)state;
	load_facts("sid", &f, &der);
	ca_dir_query_build(&f, CA_LOOKUP_ALTSECID, &q);
	assert_string_equal(q.attribute, "altSecurityIdentities");
	/* Serial 0x2014 is stored as bytes 20 14: AD writes them reversed. */
	assert_string_equal(value_of(&q, "X509:<I><SR>"),
	    "X509:<I>C=US,O=Corp,CN=Corp Issuing CA<SR>1420");
	assert_string_equal(value_of(&q, "X509:<I><S>"),
	    "X509:<I>C=US,O=Corp,CN=Corp Issuing CA<S>C=US,O=Corp,OU=Engineering,CN=Sid User");
	assert_string_equal(value_of(&q, "X509:<S>"),
	    "X509:<S>C=US,O=Corp,OU=Engineering,CN=Sid User");
	/* <SHA1-PUKEY>: the SHA-1 of the DER certificate (its thumbprint). */
	assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA1, der.data, der.size, sha1), 0);
	for (i = 0; i < 20; i++)
		snprintf(hex + 2 * i, 3, "%02X", sha1[i]);
	want = cg_printf("X509:<SHA1-PUKEY>%s", hex);
	assert_string_equal(value_of(&q, "X509:<SHA1-PUKEY>"), want);
	free(want);
	assert_non_null(value_of(&q, "X509:<SKI>"));
	assert_int_equal(strlen(value_of(&q, "X509:<SKI>")), 10 + 2 * f.ski_len);
	assert_null(value_of(&q, "X509:<RFC822>"));	/* no SAN email */
	/* Strong first, then weak: the order of SPEC section 10. */
	for (i = 0; i < q.n; i++)
		assert_int_equal(q.v[i].strong, i < 3);
	assert_true(strncmp(q.filter, "(|(altSecurityIdentities=X509:<I>C=US,O=Corp,CN=Corp "
	    "Issuing CA<SR>1420)(altSecurityIdentities=X509:<SKI>", 97) == 0);
	assert_int_equal(q.filter[strlen(q.filter) - 1], ')');
	ca_dir_query_free(&q);
	ca_dir_query_free(NULL);
	ca_facts_free(&f);
	gnutls_free(der.data);
}

static void
test_serial_and_email(void **state)
{
	struct ca_facts f;
	struct ca_dir_query q;
	gnutls_datum_t der;

	(void)state;
	/* 00 C0 FF EE 00 42: the DER's leading 00 ends up last. */
	load_facts("highserial", &f, &der);
	ca_dir_query_build(&f, CA_LOOKUP_ALTSECID, &q);
	assert_string_equal(value_of(&q, "X509:<I><SR>"),
	    "X509:<I>C=US,O=Corp,CN=Corp Issuing CA<SR>4200EEFFC000");
	ca_dir_query_free(&q);
	ca_facts_free(&f);
	gnutls_free(der.data);

	load_facts("alice", &f, &der);
	ca_dir_query_build(&f, CA_LOOKUP_ALTSECID, &q);
	assert_string_equal(value_of(&q, "X509:<RFC822>"), "X509:<RFC822>alice@corp.example");
	ca_dir_query_free(&q);
	ca_dir_query_build(&f, CA_LOOKUP_UPN, &q);
	assert_int_equal(q.n, 0);	/* no UPN: nothing to ask */
	assert_null(q.filter);
	ca_dir_query_free(&q);
	ca_facts_free(&f);
	gnutls_free(der.data);

	load_facts("upn", &f, &der);
	ca_dir_query_build(&f, CA_LOOKUP_UPN, &q);
	assert_int_equal(q.n, 1);
	assert_int_equal(q.v[0].strong, 0);
	assert_string_equal(q.filter, "(userPrincipalName=frank@corp.example)");
	ca_dir_query_free(&q);
	ca_facts_free(&f);
	gnutls_free(der.data);
}

/* A subject with filter metacharacters stays one escaped value. */
static void
test_escape_in_filter(void **state)
{
	struct ca_facts f;
	struct ca_dir_query q;
	gnutls_datum_t der;

	(void)state;
	load_facts("escape", &f, &der);
	ca_dir_query_build(&f, CA_LOOKUP_ALTSECID, &q);
	assert_null(strstr(q.filter, "*"));
	assert_int_equal(q.filter[0], '(');
	for (const char *p = q.filter + 1; *p; p++)
		if (*p == '(' || *p == ')')
			assert_true(p[-1] != '\\');
	ca_dir_query_free(&q);
	ca_facts_free(&f);
	gnutls_free(der.data);
}

static void
test_sid(void **state)
{
	/* S-1-5-21-1004336348-1177238915-682003330-1105 as AD stores it. */
	static const uint32_t sub[] = { 21, 1004336348u, 1177238915u, 682003330u, 1105 };
	uint8_t b[8 + 4 * 5];
	char out[128];
	size_t i;

	(void)state;
	b[0] = 1;
	b[1] = 5;
	memcpy(b + 2, "\0\0\0\0\0\5", 6);
	for (i = 0; i < 5; i++) {
		b[8 + 4 * i] = (uint8_t)sub[i];
		b[9 + 4 * i] = (uint8_t)(sub[i] >> 8);
		b[10 + 4 * i] = (uint8_t)(sub[i] >> 16);
		b[11 + 4 * i] = (uint8_t)(sub[i] >> 24);
	}
	assert_int_equal(ca_sid_to_string(b, sizeof(b), out, sizeof(out)), 0);
	assert_string_equal(out, "S-1-5-21-1004336348-1177238915-682003330-1105");
	assert_int_equal(ca_sid_to_string(b, sizeof(b) - 1, out, sizeof(out)), -1);
	assert_int_equal(ca_sid_to_string(b, 7, out, sizeof(out)), -1);
	assert_int_equal(ca_sid_to_string(b, sizeof(b), out, 10), -1);
	b[0] = 2;
	assert_int_equal(ca_sid_to_string(b, sizeof(b), out, sizeof(out)), -1);
}

static void
test_group_name(void **state)
{
	static const char *const cases[][2] = {
		{ "CN=Domain Admins,OU=Groups,DC=corp,DC=example", "Domain Admins" },
		{ "cn=a\\,b,ou=x", "a,b" },
		{ "CN=caf\\c3\\a9+OU=x,DC=y", "caf\xc3\xa9" },
		{ "OU=Staff,DC=corp", "OU=Staff,DC=corp" },
		{ "CN=", "" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *g = ca_dn_group_name(cases[i][0]);

		assert_string_equal(g, cases[i][1]);
		free(g);
	}
}

static void
test_judge(void **state)
{
	static const char *sid = "S-1-5-21-1-2-3-1105", *other = "S-1-5-21-1-2-3-1106";

	(void)state;
	/* Strong matches stand alone in every mode. */
	assert_int_equal(ca_dir_judge(CA_BIND_FULL, 1, NULL, NULL), CA_DIR_STRONG);
	assert_int_equal(ca_dir_judge(CA_BIND_FULL, 1, sid, sid), CA_DIR_STRONG);
	/* full: weak only when the SID confirms it, which makes it strong. */
	assert_int_equal(ca_dir_judge(CA_BIND_FULL, 0, NULL, sid), CA_DIR_REFUSED_WEAK);
	assert_int_equal(ca_dir_judge(CA_BIND_FULL, 0, sid, sid), CA_DIR_STRONG);
	assert_int_equal(ca_dir_judge(CA_BIND_COMPAT, 0, NULL, sid), CA_DIR_WEAK);
	assert_int_equal(ca_dir_judge(CA_BIND_OFF, 0, NULL, NULL), CA_DIR_WEAK);
	/* A SID naming another account: refused in every mode, strong or not. */
	for (int m = 0; m < CA_BIND__MAX; m++) {
		assert_int_equal(ca_dir_judge((enum ca_dir_binding)m, 0, sid, other),
		    CA_DIR_REFUSED_SID);
		assert_int_equal(ca_dir_judge((enum ca_dir_binding)m, 1, sid, other),
		    CA_DIR_REFUSED_SID);
		assert_int_equal(ca_dir_judge((enum ca_dir_binding)m, 1, sid, NULL),
		    CA_DIR_REFUSED_SID);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_altsecid_formats),
		cmocka_unit_test(test_serial_and_email),
		cmocka_unit_test(test_escape_in_filter),
		cmocka_unit_test(test_sid),
		cmocka_unit_test(test_group_name),
		cmocka_unit_test(test_judge),
	};

	pki = getenv("CG_TEST_PKI");
	if (pki == NULL) {
		fprintf(stderr, "CG_TEST_PKI is not set (run make check-unit)\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
