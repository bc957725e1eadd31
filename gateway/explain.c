/*
 * explain.c: `certgate explain`: what certgate would do with a client
 * presenting a certificate (and chain) at a host and path, without a
 * server: verification, decision, status and the variables exported.
 * The same certauth and policies code the workers run decides here.
 */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/gateway_int.h"

/* Reads every certificate of a PEM (or DER) file, appending DER copies. */
static int
read_certs(const char *path, gnutls_datum_t **chain, size_t *n)
{
	gnutls_datum_t file = { NULL, 0 };
	gnutls_x509_crt_t *crts = NULL;
	unsigned ncrts = 0, i;
	int rc;

	if ((rc = gnutls_load_file(path, &file)) < 0) {
		fprintf(stderr, "certgate explain: cannot read %s: %s\n", path, gnutls_strerror(rc));
		return -1;
	}
	rc = gnutls_x509_crt_list_import2(&crts, &ncrts, &file, GNUTLS_X509_FMT_PEM, 0);
	if (rc < 0)
		rc = gnutls_x509_crt_list_import2(&crts, &ncrts, &file, GNUTLS_X509_FMT_DER, 0);
	gnutls_free(file.data);
	if (rc < 0) {
		fprintf(stderr, "certgate explain: %s: %s (%d)\n", path, gnutls_strerror(rc), rc);
		return -1;
	}
	for (i = 0; i < ncrts; i++) {
		gnutls_datum_t der = { NULL, 0 };

		if (gnutls_x509_crt_export2(crts[i], GNUTLS_X509_FMT_DER, &der) >= 0) {
			*chain = cg_realloc(*chain, (*n + 1) * sizeof(**chain));
			(*chain)[*n].data = cg_malloc(der.size);
			memcpy((*chain)[*n].data, der.data, der.size);
			(*chain)[(*n)++].size = der.size;
			gnutls_free(der.data);
		}
		gnutls_x509_crt_deinit(crts[i]);
	}
	gnutls_free(crts);
	return 0;
}

static int
parse_time(const char *s, time_t *out)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, "%Y-%m-%d", &tm);
	}
	if (end == NULL || (*end != '\0' && strcmp(end, "Z") != 0))
		return -1;
	*out = timegm(&tm);
	return 0;
}

static void
print_var(void *ctx, const char *name, const char *value, size_t vlen)
{
	char esc[CA_VAR_CAP * 4 + 16];

	(void)ctx;
	printf("%s=%s\n", name, cg_escape(esc, sizeof(esc), value, vlen));
}

/* A line of ca_map_trace: certauth has escaped the certificate's values. */
static void
print_tried(void *ctx, const char *line)
{
	(void)ctx;
	printf("tried: %s\n", line);
}

/* The policy's sources in order, as a worker tries them (auth.c), with a
 * "tried:" line for each: file mappings by ca_map_trace, directories by
 * the filters sent and what came back. The directory answer that decided
 * is returned (out points into it), or NULL. */
static struct gw_dir_answer *
map(const struct gw_config *cfg, const struct pol_policy *p, const struct ca_facts *f,
    int network, struct ca_mapping *out, int *unavailable)
{
	struct gw_dir_answer *a;
	struct cg_strv notes = { NULL, 0 };
	size_t i, k;

	for (i = 0; i < p->nmapping; i++) {
		const struct ca_directory *d;
		enum ca_map_source src = p->mapping[i];

		if (src != CA_SRC_DIRECTORY) {
			ca_map_trace(cfg->mapper, f, &src, 1, print_tried, NULL);
			ca_map(cfg->mapper, f, &src, 1, out);
			if (out->method != CA_MAP_NONE)
				return NULL;
			continue;
		}
		d = &cfg->directories[p->map_dir_index[i]];
		a = gw_dir_lookup_sync(d, f, network, &notes);
		for (k = 0; k < a->trace.n; k++)
			printf("tried: directory %s: %s\n", d->conf->name, a->trace.v[k]);
		for (k = 0; k < notes.n; k++)
			printf("directory_error: %s\n", notes.v[k]);
		cg_strv_free(&notes);
		printf("tried: directory %s: %s\n", d->conf->name, network ?
		    gw_dir_outcome_names[a->outcome] : "not asked (--no-directory)");
		if (a->outcome == GW_DIR_FOUND || a->outcome == GW_DIR_REFUSED) {
			*out = a->mapping;
			return a;
		}
		if (a->outcome == GW_DIR_UNAVAILABLE) {
			*unavailable = 1;
			memset(out, 0, sizeof(*out));
			gw_dir_answer_unref(a);
			return NULL;
		}
		gw_dir_answer_unref(a);
	}
	return NULL;
}

/* The site a TLS client naming `host` would reach: the first https
 * listener's choice, as the SNI callback makes it. */
static struct gw_site *
site_for(struct gw_config *cfg, const char *host)
{
	size_t i;

	for (i = 0; i < cfg->nlisteners; i++)
		if (cfg->listeners[i].tls)
			return gw_site_for_host(&cfg->listeners[i], host, host ? strlen(host) : 0);
	return cfg->nsites ? &cfg->sites[0] : NULL;
}

int
gw_explain(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "host", required_argument, NULL, 'H' },
		{ "path", required_argument, NULL, 'P' },
		{ "time", required_argument, NULL, 'T' },
		{ "no-directory", no_argument, NULL, 'N' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *host = NULL, *req_path = "/", *when = NULL;
	struct cg_errors errs = { NULL, 0 };
	struct gw_config *cfg;
	struct gw_site *site;
	const struct pol_policy *policy;
	gnutls_datum_t *chain = NULL;
	size_t nchain = 0, i, plen;
	struct ca_result res;
	struct ca_facts facts;
	struct pol_request rq;
	struct pol_decision d;
	struct ca_mapping mapping;
	char *norm, err[160];
	time_t now = time(NULL);
	int ch, loc, have_facts = 0, rc = 2, network = 1, unavailable = 0;
	struct gw_dir_answer *answer = NULL;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 'H': host = optarg; break;
		case 'P': req_path = optarg; break;
		case 'T': when = optarg; break;
		case 'N': network = 0; break;
		default: goto usage;
		}
	}
	if (path == NULL || optind >= argc)
		goto usage;
	if (when != NULL && parse_time(when, &now) < 0) {
		fprintf(stderr, "certgate explain: --time wants YYYY-MM-DDTHH:MM:SS[Z] (UTC)\n");
		return 2;
	}
	cfg = gw_config_load(path, &errs);
	if (cfg == NULL) {
		cg_errors_print(&errs, stderr);
		cg_errors_free(&errs);
		return 2;
	}
	for (i = (size_t)optind; i < (size_t)argc; i++)
		if (read_certs(argv[i], &chain, &nchain) < 0)
			goto out;
	if (nchain == 0) {
		fprintf(stderr, "certgate explain: no certificate in %s\n", argv[optind]);
		goto out;
	}
	if ((site = site_for(cfg, host)) == NULL) {
		fprintf(stderr, "certgate explain: no site\n");
		goto out;
	}
	plen = strlen(req_path);
	norm = cg_malloc(plen + 1);
	if (pol_path_normalize(req_path, plen, norm, plen + 1, &plen) != POL_PATH_OK) {
		printf("site: %s\nverify: -\nmapping: none\naccount: -\ndecision: deny\nstatus: 400\n",
		    site->conf->name);
		free(norm);
		rc = 1;
		goto out;
	}
	loc = pol_location_match(site->loc_paths, site->loc_lens, site->nlocs, norm, plen);
	free(norm);
	policy = loc >= 0 ? site->locs[loc].policy : site->policy;

	memset(&res, 0, sizeof(res));
	if (site->trust < 0 || cfg->trusts[site->trust] == NULL) {
		res.verdict = CA_VERDICT_INVALID;
		snprintf(res.reason, sizeof(res.reason), "site \"%s\" has no client_trust",
		    site->conf->name);
	} else {
		ca_verify(cfg->trusts[site->trust], chain, nchain, now, &res);
	}
	if (ca_facts_from_der(chain[0].data, chain[0].size, &facts, err, sizeof(err)) == 0)
		have_facts = 1;
	memset(&mapping, 0, sizeof(mapping));
	printf("site: %s\n", site->conf->name);
	printf("location: %s\n", loc >= 0 ? site->locs[loc].conf->path : "-");
	printf("policy: %s\n", policy->name);
	printf("client_certificate: %s\n", pol_client_cert_names[policy->client_certificate]);
	if (have_facts)
		printf("subject: %s\nissuer: %s\n", facts.subject.rfc4514, facts.issuer.rfc4514);
	if (res.verdict == CA_VERDICT_OK)
		printf("verify: SUCCESS\n");
	else
		printf("verify: FAILED:%s\n", res.reason[0] ? res.reason :
		    ca_verdict_names[res.verdict]);
	if (have_facts && res.verdict == CA_VERDICT_OK && policy->nmapping > 0)
		answer = map(cfg, policy, &facts, network, &mapping, &unavailable);
	/* explain judges the certificate, not a cipher: TLS is taken as strong
	 * enough (the live server checks min_cipher_bits on the session). */
	memset(&rq, 0, sizeof(rq));
	rq.tls = 1;
	rq.cipher_bits = UINT_MAX;
	rq.cert_presented = 1;
	rq.verdict = res.verdict;
	rq.mapping = policy->nmapping > 0 && res.verdict == CA_VERDICT_OK ? &mapping : NULL;
	d = pol_decide(policy, &rq);
	if (loc < 0 && d.status == 0)
		d.status = 404;
	if (loc == -2)
		d.status = 400;

	if (unavailable) {
		d.status = 503;
		d.detail = NULL;
		printf("mapping: unavailable (the directory cannot answer)\naccount: -\n");
	} else if (mapping.method == CA_MAP_NONE) {
		printf("mapping: none\naccount: -\n");
	} else {
		printf("mapping: %s:%s (%s)%s\n", ca_map_method_names[mapping.method],
		    mapping.name ? mapping.name : "-", mapping.strong ? "strong" : "weak",
		    mapping.deny ? " deny" : "");
		printf("mapping_why: %s\n", mapping.why);
		printf("account: %s\n", mapping.deny || mapping.user == NULL ? "-" : mapping.user);
	}
	printf("decision: %s\n", d.status == 0 ? "allow" : "deny");
	if (d.detail)
		printf("status: %d.%s\n", d.status, d.detail);
	else
		printf("status: %d\n", d.status == 0 ? 200 : d.status);
	if (d.status == 0 && policy->client_certificate != POL_CERT_IGNORE && have_facts) {
		gw_auth_export_account(&mapping, policy, print_var, NULL);
		print_var(NULL, "SSL_CLIENT_VERIFY", "SUCCESS", 7);
		if (policy->export & POL_EXPORT_SSL)
			ca_export_ssl(&facts, now, print_var, NULL);
		if (policy->export & POL_EXPORT_IIS) {
			print_var(NULL, "CERT_FLAGS", res.issuer_untrusted ? "3" : "1", 1);
			ca_export_iis(&facts, print_var, NULL);
		}
	}
	rc = d.status == 0 ? 0 : 1;
out:
	gw_dir_answer_unref(answer);
	if (have_facts)
		ca_facts_free(&facts);
	for (i = 0; i < nchain; i++)
		free(chain[i].data);
	free(chain);
	gw_config_free(cfg);
	return rc;
usage:
	fprintf(stderr, "usage: certgate explain -c FILE [--host NAME] [--path PATH] "
	    "[--time ISO8601] [--no-directory] CERT.pem [CHAIN.pem ...]\n");
	return 2;
}
