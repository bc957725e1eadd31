/*
 * policy.c: policies (the keys of a `policies` entry) and the decisions of
 * SPEC section 4 that they drive, with IIS's sub-status codes. Facts in,
 * decision out: no sockets, no TLS sessions.
 */
#include <stddef.h>
#include <string.h>

#include "policies/policies.h"

const char *const pol_client_cert_names[POL_CERT__MAX] = { "ignore", "accept", "require" };
static const char *const client_cert_choices[] = { "ignore", "accept", "require", NULL };

#define K(f) offsetof(struct pol_policy_conf, f)

static const struct cg_conf_key policy_keys[] = {
	{ "client_certificate", CG_CONF_ENUM, K(client_certificate), "ignore", 0, 0, 0,
	  client_cert_choices, NULL, NULL },
	{ "export", CG_CONF_STRINGS, K(export), "ssl,iis", 0, 0, 0, NULL, NULL, NULL },
};

const struct cg_conf_schema pol_policy_schema = {
	"policy", sizeof(struct pol_policy_conf), policy_keys, CG_NELEM(policy_keys),
	K(src), K(name),
};

const struct pol_policy pol_default_policy = {
	"(default)", POL_CERT_IGNORE, POL_EXPORT_SSL | POL_EXPORT_IIS,
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
	p->client_certificate = (enum pol_client_cert)c->client_certificate;
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

struct pol_decision
pol_decide(const struct pol_policy *p, const struct pol_request *rq)
{
	struct pol_decision d = { 0, NULL };

	if (p->client_certificate == POL_CERT_IGNORE)
		return d;
	if (!rq->cert_presented) {
		if (p->client_certificate == POL_CERT_REQUIRE) {
			d.status = 403;
			d.detail = "7";
		}
		return d;
	}
	/* A presented certificate is judged even under "accept": a bad one is
	 * refused, never taken for no certificate. */
	switch (rq->verdict) {
	case CA_VERDICT_OK:
		return d;
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
