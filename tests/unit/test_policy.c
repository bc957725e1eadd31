/*
 * test_policy.c: the decisions of SPEC section 4 in their order
 * (policies/policy.c): each step, and which one answers when several fail.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "policies/policies.h"

static struct cg_strv no_users = { NULL, 0 };

static struct pol_policy
policy(enum pol_client_cert cc)
{
	struct pol_policy p = pol_default_policy;

	p.client_certificate = cc;
	p.allow_users = &no_users;
	p.allow_groups = &no_users;
	return p;
}

static void
expect(struct pol_decision d, int status, const char *detail)
{
	assert_int_equal(d.status, status);
	if (detail == NULL)
		assert_null(d.detail);
	else
		assert_string_equal(d.detail, detail);
}

static void
test_tls_first(void **state)
{
	struct pol_policy p = policy(POL_CERT_REQUIRE);
	struct pol_request rq = { .tls = 0, .cert_presented = 0 };

	p.min_cipher_bits = 256;
	expect(pol_decide(&p, &rq), 403, "4");		/* not 403.7, not 403.5 */
	p.http_redirect = 1;
	expect(pol_decide(&p, &rq), 301, NULL);
	p.tls = POL_TLS_OPTIONAL;
	rq.tls = 0;
	expect(pol_decide(&p, &rq), 403, "7");		/* cipher bits need TLS */
}

static void
test_cipher_before_certificate(void **state)
{
	struct pol_policy p = policy(POL_CERT_REQUIRE);
	struct pol_request rq = { .tls = 1, .cipher_bits = 128 };

	p.min_cipher_bits = 256;
	expect(pol_decide(&p, &rq), 403, "5");
	rq.cipher_bits = 256;
	expect(pol_decide(&p, &rq), 403, "7");
}

static void
test_certificate_verdicts(void **state)
{
	struct pol_policy req = policy(POL_CERT_REQUIRE), acc = policy(POL_CERT_ACCEPT),
	    ign = policy(POL_CERT_IGNORE);
	struct pol_request rq = { .tls = 1, .cipher_bits = 256, .cert_presented = 1 };
	static const struct { enum ca_verdict v; const char *detail; } cases[] = {
		{ CA_VERDICT_REVOKED, "13" }, { CA_VERDICT_EXPIRED, "17" },
		{ CA_VERDICT_INVALID, "16" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rq.verdict = cases[i].v;
		expect(pol_decide(&req, &rq), 403, cases[i].detail);
		expect(pol_decide(&acc, &rq), 403, cases[i].detail);	/* never ignored */
		expect(pol_decide(&ign, &rq), 0, NULL);
	}
	rq.verdict = CA_VERDICT_OK;
	expect(pol_decide(&req, &rq), 0, NULL);
	rq.cert_presented = 0;
	expect(pol_decide(&acc, &rq), 0, NULL);			/* anonymous */
	expect(pol_decide(&req, &rq), 403, "7");
}

static void
test_mapping_order(void **state)
{
	struct pol_policy p = policy(POL_CERT_REQUIRE);
	struct ca_mapping m;
	struct pol_request rq = { .tls = 1, .cipher_bits = 256, .cert_presented = 1,
	    .verdict = CA_VERDICT_OK, .mapping = &m };
	char *users[] = { "alice" };
	struct cg_strv allow = { users, 1 };

	memset(&m, 0, sizeof(m));
	m.method = CA_MAP_MANY_TO_ONE;
	m.deny = 1;
	expect(pol_decide(&p, &rq), 403, "12");			/* deny mapping */
	m.deny = 0;
	m.user = "bob";
	expect(pol_decide(&p, &rq), 0, NULL);
	p.require_strong_mapping = 1;
	expect(pol_decide(&p, &rq), 403, "12");			/* weak */
	m.strong = 1;
	expect(pol_decide(&p, &rq), 0, NULL);
	p.allow_users = &allow;
	expect(pol_decide(&p, &rq), 403, "12");			/* not listed */
	m.user = "alice";
	expect(pol_decide(&p, &rq), 0, NULL);
	m.method = CA_MAP_NONE;
	m.user = NULL;
	p.allow_users = &no_users;
	p.require_strong_mapping = 0;
	expect(pol_decide(&p, &rq), 0, NULL);
	p.require_account = 1;
	expect(pol_decide(&p, &rq), 403, "12");			/* no account */
	rq.verdict = CA_VERDICT_REVOKED;
	expect(pol_decide(&p, &rq), 403, "13");			/* revocation first */
}

static void
test_detail_texts(void **state)
{
	assert_string_equal(pol_detail_text(403, "7"), "Client certificate required");
	assert_string_equal(pol_detail_text(403, "4"), "SSL required");
	assert_null(pol_detail_text(403, "99"));
	assert_null(pol_detail_text(404, NULL));
}

/* allow_groups: a directory group's CN or whole DN, letter case aside;
 * an account without groups (a file mapping) never passes. */
static void
test_allow_groups(void **state)
{
	static char *allowed_v[] = { "staff", "CN=Admins,OU=Groups,DC=corp" };
	static char *groups_v[] = { "cn=Readers,ou=groups,dc=corp", "CN=Staff,OU=Groups,DC=corp" };
	static char *admins_v[] = { "cn=admins,ou=groups,dc=corp" };
	static char *users_v[] = { "isr" };
	struct cg_strv allowed = { allowed_v, 2 }, groups = { groups_v, 2 };
	struct cg_strv admins = { admins_v, 1 }, none = { NULL, 0 }, users = { users_v, 1 };
	struct pol_policy p = policy(POL_CERT_REQUIRE);
	struct pol_request rq = { .tls = 1, .cert_presented = 1, .verdict = CA_VERDICT_OK };
	struct ca_mapping m = { .method = CA_MAP_DIRECTORY, .strong = 1, .user = "isr",
	    .name = "corp:altSecurityIdentities", .groups = &groups };

	rq.mapping = &m;
	p.allow_groups = &allowed;
	expect(pol_decide(&p, &rq), 0, NULL);		/* CN "Staff" */
	m.groups = &admins;
	expect(pol_decide(&p, &rq), 0, NULL);		/* the DN, another case */
	m.groups = &none;
	expect(pol_decide(&p, &rq), 403, "12");
	m.groups = NULL;				/* a file mapping */
	expect(pol_decide(&p, &rq), 403, "12");
	rq.mapping = NULL;
	expect(pol_decide(&p, &rq), 403, "12");		/* no account */
	/* With allow_users too, both must pass. */
	rq.mapping = &m;
	m.groups = &groups;
	p.allow_users = &users;
	expect(pol_decide(&p, &rq), 0, NULL);
	m.user = "other";
	expect(pol_decide(&p, &rq), 403, "12");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_first),
		cmocka_unit_test(test_cipher_before_certificate),
		cmocka_unit_test(test_certificate_verdicts),
		cmocka_unit_test(test_mapping_order),
		cmocka_unit_test(test_detail_texts),
		cmocka_unit_test(test_allow_groups),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
