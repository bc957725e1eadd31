/*
 * policy.c: policies (the keys of a `policies` entry) and the decisions of
 * SPEC section 4 that they drive, with IIS's sub-status codes. Facts in,
 * decision out: no sockets, no TLS sessions.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policies/policies.h"

const char *const pol_client_cert_names[POL_CERT__MAX] = { "ignore", "accept", "require" };
static const char *const client_cert_choices[] = { "ignore", "accept", "require", NULL };

#define K(f) offsetof(struct pol_policy_conf, f)

static const char *const tls_choices[] = { "required", "optional", NULL };

static const struct cg_conf_key policy_keys[] = {
	{ "tls", CG_CONF_ENUM, K(tls), "required", 0, 0, 0, tls_choices, NULL, NULL },
	{ "http_redirect", CG_CONF_BOOL, K(http_redirect), "false", 0, 0, 0, NULL, NULL, NULL },
	{ "min_cipher_bits", CG_CONF_INT, K(min_cipher_bits), "0", 0, 0, 1024, NULL, NULL, NULL },
	{ "client_certificate", CG_CONF_ENUM, K(client_certificate), "ignore", 0, 0, 0,
	  client_cert_choices, NULL, NULL },
	{ "mapping", CG_CONF_STRINGS, K(mapping), NULL, 0, 0, 0, NULL, NULL, NULL },
	{ "require_account", CG_CONF_BOOL, K(require_account), "false", 0, 0, 0, NULL, NULL, NULL },
	{ "require_strong_mapping", CG_CONF_BOOL, K(require_strong_mapping), "false", 0, 0, 0,
	  NULL, NULL, NULL },
	{ "allow_users", CG_CONF_STRINGS, K(allow_users), NULL, 0, 0, 0, NULL, NULL, NULL },
	{ "allow_groups", CG_CONF_STRINGS, K(allow_groups), NULL, 0, 0, 0, NULL, NULL, NULL },
	{ "authorizer", CG_CONF_STRING, K(authorizer), NULL, 0, 0, 0, NULL, NULL, NULL },
	{ "hsts", CG_CONF_INT, K(hsts), "0", 0, 0, INT64_C(1000000000), NULL, NULL, NULL },
	{ "secure_cookies", CG_CONF_BOOL, K(secure_cookies), "false", 0, 0, 0, NULL, NULL, NULL },
	{ "export", CG_CONF_STRINGS, K(export), "ssl,iis", 0, 0, 0, NULL, NULL, NULL },
};

const struct cg_conf_schema pol_policy_schema = {
	"policy", sizeof(struct pol_policy_conf), policy_keys, CG_NELEM(policy_keys),
	K(src), K(name),
};

static const struct cg_strv no_users = { NULL, 0 };

const struct pol_policy pol_default_policy = {
	.name = "(default)",
	.tls = POL_TLS_REQUIRED,
	.client_certificate = POL_CERT_IGNORE,
	.allow_users = &no_users,
	.allow_groups = &no_users,
	.authorizer = "",
	.export = POL_EXPORT_SSL | POL_EXPORT_IIS,
};

int
pol_policy_build(struct pol_policy *p, const struct pol_policy_conf *c, struct cg_errors *errs)
{
	static const struct { const char *name; unsigned bit; } sets[] = {
		{ "ssl", POL_EXPORT_SSL }, { "iis", POL_EXPORT_IIS },
		{ "certificate", POL_EXPORT_CERT }, { "chain", POL_EXPORT_CHAIN },
	};
	size_t before = errs->n, i, j;

	p->name = c->name;
	p->tls = (enum pol_tls)c->tls;
	p->http_redirect = c->http_redirect;
	p->min_cipher_bits = (unsigned)c->min_cipher_bits;
	p->client_certificate = (enum pol_client_cert)c->client_certificate;
	p->require_account = c->require_account;
	p->require_strong_mapping = c->require_strong_mapping;
	p->allow_users = &c->allow_users;
	p->allow_groups = &c->allow_groups;
	p->authorizer = c->authorizer;
	p->hsts = c->hsts;
	p->secure_cookies = c->secure_cookies;
	p->nmapping = 0;
	for (i = 0; i < c->mapping.n; i++) {
		const char *m = c->mapping.v[i], *dir = NULL;
		enum ca_map_source src;

		if (strcmp(m, "one_to_one") == 0)
			src = CA_SRC_ONE_TO_ONE;
		else if (strcmp(m, "many_to_one") == 0)
			src = CA_SRC_MANY_TO_ONE;
		else if (strncmp(m, "directory:", 10) == 0 && m[10] != '\0') {
			src = CA_SRC_DIRECTORY;
			dir = m + 10;	/* the gateway resolves the name */
		} else {
			cg_error_add(errs, cg_conf_setting(&c->src, "mapping"),
			    "policy \"%s\": mapping \"%s\" is not \"one_to_one\", "
			    "\"many_to_one\" or \"directory:NAME\"", c->name, m);
			continue;
		}
		for (j = 0; j < p->nmapping; j++)
			if (p->mapping[j] == src && (dir == NULL ||
			    strcmp(p->map_directory[j], dir) == 0))
				break;
		if (j < p->nmapping) {
			cg_error_add(errs, cg_conf_setting(&c->src, "mapping"),
			    "policy \"%s\": mapping \"%s\" is listed twice", c->name, m);
			continue;
		}
		if (p->nmapping == POL_MAPPING_MAX) {
			cg_error_add(errs, cg_conf_setting(&c->src, "mapping"),
			    "policy \"%s\": more than %d mappings", c->name, POL_MAPPING_MAX);
			break;
		}
		p->map_directory[p->nmapping] = dir;
		p->mapping[p->nmapping++] = src;
	}
	if ((p->require_account || p->require_strong_mapping || c->allow_users.n ||
	    c->allow_groups.n) &&
	    p->client_certificate == POL_CERT_IGNORE)
		cg_error_add(errs, cg_conf_setting(&c->src, "client_certificate"),
		    "policy \"%s\": accounts come from client certificates, which "
		    "client_certificate = \"ignore\" never looks at", c->name);
	if (p->nmapping > 0 && p->client_certificate == POL_CERT_IGNORE)
		cg_error_add(errs, cg_conf_setting(&c->src, "mapping"),
		    "policy \"%s\": mapping needs client_certificate \"accept\" or "
		    "\"require\"", c->name);
	p->export = 0;
	for (i = 0; i < c->export.n; i++) {
		for (j = 0; j < CG_NELEM(sets); j++)
			if (strcmp(c->export.v[i], sets[j].name) == 0)
				break;
		if (j == CG_NELEM(sets)) {
			cg_error_add(errs, cg_conf_setting(&c->src, "export"),
			    "policy \"%s\": export \"%s\" is not one of \"ssl\", \"iis\", "
			    "\"certificate\", \"chain\"", c->name, c->export.v[i]);
			continue;
		}
		p->export |= sets[j].bit;
	}
	return errs->n == before ? 0 : -1;
}

static struct pol_decision
refuse(int status, const char *detail)
{
	struct pol_decision d = { status, detail };

	return d;
}

/* Whether one of the account's directory groups is named in allow_groups,
 * by its CN or its whole DN, letter case aside. */
static int
in_allowed_group(const struct cg_strv *allowed, const struct cg_strv *groups)
{
	size_t i, j;
	int found = 0;

	for (j = 0; groups != NULL && j < groups->n && !found; j++) {
		char *cn = ca_dn_group_name(groups->v[j]);

		for (i = 0; i < allowed->n && !found; i++)
			found = strcasecmp(allowed->v[i], cn) == 0 ||
			    strcasecmp(allowed->v[i], groups->v[j]) == 0;
		free(cn);
	}
	return found;
}

/* After verification: the account the mapping found, against the policy. */
static struct pol_decision
decide_account(const struct pol_policy *p, const struct ca_mapping *m)
{
	struct pol_decision ok = { 0, NULL };
	size_t i;

	if (m == NULL || m->method == CA_MAP_NONE)
		return p->require_account || p->allow_users->n || p->allow_groups->n ?
		    refuse(403, "12") : ok;
	if (m->deny)
		return refuse(403, "12");
	if (!m->strong && p->require_strong_mapping)
		return refuse(403, "12");
	if (p->allow_groups->n > 0 && !in_allowed_group(p->allow_groups, m->groups))
		return refuse(403, "12");
	if (p->allow_users->n == 0)
		return ok;
	for (i = 0; i < p->allow_users->n; i++)
		if (m->user != NULL && strcmp(p->allow_users->v[i], m->user) == 0)
			return ok;
	return refuse(403, "12");
}

struct pol_decision
pol_decide(const struct pol_policy *p, const struct pol_request *rq)
{
	struct pol_decision d = { 0, NULL };

	if (!rq->tls && p->tls == POL_TLS_REQUIRED)
		return p->http_redirect ? refuse(301, NULL) : refuse(403, "4");
	if (rq->tls && rq->cipher_bits < p->min_cipher_bits)
		return refuse(403, "5");
	if (p->client_certificate == POL_CERT_IGNORE)
		return d;
	if (!rq->cert_presented) {
		if (p->client_certificate == POL_CERT_REQUIRE)
			return refuse(403, "7");
		return decide_account(p, NULL);
	}
	/* A presented certificate is judged even under "accept": a bad one is
	 * refused, never taken for no certificate. */
	switch (rq->verdict) {
	case CA_VERDICT_OK:
		return decide_account(p, rq->mapping);
	case CA_VERDICT_REVOKED:
		d.detail = "13";
		break;
	case CA_VERDICT_EXPIRED:
		d.detail = "17";
		break;
	case CA_VERDICT_NONE:
	case CA_VERDICT_INVALID:
	case CA_VERDICT__MAX:
		d.detail = "16";
		break;
	}
	d.status = 403;
	return d;
}

const char *
pol_detail_text(int status, const char *detail)
{
	static const struct { int status; const char *detail, *text; } texts[] = {
		{ 403, "4", "SSL required" },
		{ 403, "5", "SSL 128 required" },
		{ 403, "7", "Client certificate required" },
		{ 403, "12", "Mapper denied access" },
		{ 403, "13", "Client certificate revoked" },
		{ 403, "16", "Client certificate is untrusted or invalid" },
		{ 403, "17", "Client certificate has expired or is not yet valid" },
	};
	size_t i;

	if (detail == NULL)
		return NULL;
	for (i = 0; i < CG_NELEM(texts); i++)
		if (texts[i].status == status && strcmp(texts[i].detail, detail) == 0)
			return texts[i].text;
	return NULL;
}
