/*
 * auth.c: the client certificate of a connection: verified once, when the
 * handshake brings it (or when a resumed session does), with certauth; its
 * facts kept for every request on the connection; and the TLS and
 * certificate variables each request's policy lets the application see.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/gateway_int.h"

#define MAX_CHAIN 16

enum ca_verdict
gw_auth_verify(struct gw_conn *c)
{
	struct gw_auth *a = &c->auth;
	const gnutls_datum_t *peers;
	unsigned n = 0, i;
	char err[160], esc[512];

	if (a->done)
		return a->result.verdict;
	a->done = 1;
	memset(&a->result, 0, sizeof(a->result));
	a->result.verdict = CA_VERDICT_NONE;
	peers = c->tls ? gnutls_certificate_get_peers(c->tls, &n) : NULL;
	if (peers == NULL || n == 0)
		return CA_VERDICT_NONE;
	a->presented = 1;
	a->nchain = n < MAX_CHAIN ? n : MAX_CHAIN;
	a->chain = cg_calloc(a->nchain, sizeof(*a->chain));
	for (i = 0; i < a->nchain; i++) {
		a->chain[i].data = cg_malloc(peers[i].size);
		memcpy(a->chain[i].data, peers[i].data, peers[i].size);
		a->chain[i].size = peers[i].size;
	}
	if (ca_facts_from_der(a->chain[0].data, a->chain[0].size, &a->facts, err, sizeof(err)) == 0)
		a->have_facts = 1;
	if (c->site->trust < 0 || gw_worker->cfg->trusts[c->site->trust] == NULL) {
		a->result.verdict = CA_VERDICT_INVALID;
		snprintf(a->result.reason, sizeof(a->result.reason), "no trust for this site");
	} else if (n > MAX_CHAIN) {
		a->result.verdict = CA_VERDICT_INVALID;
		snprintf(a->result.reason, sizeof(a->result.reason), "chain too long");
	} else {
		a->trust = ca_trust_ref(gw_worker->cfg->trusts[c->site->trust]);
		ca_verify(a->trust, a->chain, a->nchain, time(NULL), &a->result);
	}
	cg_log(a->result.verdict == CA_VERDICT_OK ? CG_LOG_DEBUG : CG_LOG_INFO, c->id,
	    "client certificate \"%s\": %s%s%s",
	    a->have_facts ? cg_escape(esc, sizeof(esc), a->facts.subject.rfc4514,
	    strlen(a->facts.subject.rfc4514)) : "(unparsable)",
	    ca_verdict_names[a->result.verdict], a->result.reason[0] ? ": " : "",
	    a->result.reason);
	return a->result.verdict;
}

void
gw_auth_free(struct gw_auth *a)
{
	size_t i;

	for (i = 0; i < a->nchain; i++)
		free(a->chain[i].data);
	free(a->chain);
	if (a->have_facts)
		ca_facts_free(&a->facts);
	ca_trust_unref(a->trust);
	memset(a, 0, sizeof(*a));
}

const struct ca_mapping *
gw_auth_map(struct gw_conn *c, const struct pol_policy *p)
{
	struct gw_auth *a = &c->auth;

	if (p->nmapping == 0 || !a->have_facts || a->result.verdict != CA_VERDICT_OK ||
	    gw_worker->cfg->mapper == NULL)
		return NULL;
	if (a->mapped && a->map_norder == p->nmapping &&
	    memcmp(a->map_order, p->mapping, p->nmapping * sizeof(*p->mapping)) == 0)
		return &a->mapping;
	ca_map(gw_worker->cfg->mapper, &a->facts, p->mapping, p->nmapping, &a->mapping);
	memcpy(a->map_order, p->mapping, p->nmapping * sizeof(*p->mapping));
	a->map_norder = p->nmapping;
	a->mapped = 1;
	cg_log(CG_LOG_DEBUG, c->id, "mapping: %s%s%s (%s)", ca_map_method_names[a->mapping.method],
	    a->mapping.user ? " to " : "", a->mapping.user ? a->mapping.user : "",
	    a->mapping.why);
	return &a->mapping;
}

/* ---- variables ---- */

static void
var(ca_var_fn fn, void *ctx, const char *name, const char *value)
{
	fn(ctx, name, value, strlen(value));
}

static void
var_num(ca_var_fn fn, void *ctx, const char *name, unsigned long v)
{
	char num[24];

	snprintf(num, sizeof(num), "%lu", v);
	var(fn, ctx, name, num);
}

/* A PEM variable, capped like every certificate value. */
static void
pem_var(ca_var_fn fn, void *ctx, const char *name, const gnutls_datum_t *der)
{
	char *pem = ca_pem(der->data, der->size);
	size_t len = strlen(pem);

	if (len > CA_VAR_CAP) {
		cg_log(CG_LOG_WARN, 0, "%s is %zu bytes: exported as TOO_LARGE", name, len);
		var(fn, ctx, name, "TOO_LARGE");
	} else {
		fn(ctx, name, pem, len);
	}
	free(pem);
}

/* REMOTE_USER and friends: only ever from the mapping's result. */
void
gw_auth_export_account(const struct ca_mapping *m, const struct pol_policy *p, ca_var_fn fn,
    void *ctx)
{
	if (m == NULL || m->method == CA_MAP_NONE || m->deny || m->user == NULL)
		return;
	var(fn, ctx, "REMOTE_USER", m->user);
	var(fn, ctx, "AUTH_TYPE", "Certificate");
	var(fn, ctx, "CERT_MAP_METHOD", ca_map_method_names[m->method]);
	var(fn, ctx, "CERT_MAP_NAME", m->name ? m->name : m->user);
	var(fn, ctx, "CERT_MAP_STRENGTH", m->strong ? "strong" : "weak");
	if (p->export & POL_EXPORT_IIS) {
		var(fn, ctx, "LOGON_USER", m->user);
		var(fn, ctx, "AUTH_USER", m->user);
	}
}

void
gw_auth_export(struct gw_conn *c, const struct pol_policy *p, ca_var_fn fn, void *ctx)
{
	const struct gw_auth *a = &c->auth;
	const struct gw_site *site = c->site;
	int client = a->presented && a->have_facts && p->client_certificate != POL_CERT_IGNORE &&
	    a->result.verdict == CA_VERDICT_OK;
	unsigned keybits;
	char buf[256], sni[256];
	size_t len, i;
	unsigned type;

	if (c->tls == NULL)
		return;
	if (client)
		gw_auth_export_account(gw_auth_map(c, p), p, fn, ctx);
	keybits = (unsigned)gnutls_cipher_get_key_size(gnutls_cipher_get(c->tls)) * 8;
	if (p->export & POL_EXPORT_SSL) {
		var(fn, ctx, "SSL_PROTOCOL", gw_tls_protocol(c->tls));
		var(fn, ctx, "SSL_CIPHER", gw_tls_cipher(c->tls));
		var_num(fn, ctx, "SSL_CIPHER_USEKEYSIZE", keybits);
		var_num(fn, ctx, "SSL_CIPHER_ALGKEYSIZE", keybits);
		{
			gnutls_datum_t id = { NULL, 0 };
			static const char hex[] = "0123456789ABCDEF";

			if (gnutls_session_get_id2(c->tls, &id) == 0 && id.size <= 64) {
				for (i = 0; i < id.size; i++) {
					buf[2 * i] = hex[id.data[i] >> 4];
					buf[2 * i + 1] = hex[id.data[i] & 15];
				}
				buf[2 * id.size] = '\0';
				var(fn, ctx, "SSL_SESSION_ID", buf);
			}
		}
		var(fn, ctx, "SSL_SESSION_RESUMED",
		    gnutls_session_is_resumed(c->tls) ? "Resumed" : "Initial");
		len = sizeof(sni);
		if (gnutls_server_name_get(c->tls, sni, &len, &type, 0) == 0 &&
		    type == GNUTLS_NAME_DNS)
			var(fn, ctx, "SSL_TLS_SNI", sni);
		snprintf(buf, sizeof(buf), "GnuTLS/%s", gnutls_check_version(NULL));
		var(fn, ctx, "SSL_VERSION_LIBRARY", buf);
		if (client)
			var(fn, ctx, "SSL_CLIENT_VERIFY", "SUCCESS");
		else
			var(fn, ctx, "SSL_CLIENT_VERIFY", "NONE");
		if (site->server_subject)
			var(fn, ctx, "SSL_SERVER_S_DN", site->server_subject);
		if (site->server_issuer)
			var(fn, ctx, "SSL_SERVER_I_DN", site->server_issuer);
		if (client)
			ca_export_ssl(&a->facts, time(NULL), fn, ctx);
	}
	if (p->export & POL_EXPORT_IIS) {
		var_num(fn, ctx, "CERT_FLAGS", client ? 1u | (a->result.issuer_untrusted ? 2u : 0u) : 0u);
		var_num(fn, ctx, "CERT_KEYSIZE", keybits);
		var_num(fn, ctx, "HTTPS_KEYSIZE", keybits);
		var_num(fn, ctx, "CERT_SECRETKEYSIZE", site->server_key_bits);
		var_num(fn, ctx, "HTTPS_SECRETKEYSIZE", site->server_key_bits);
		if (site->server_subject_iis) {
			var(fn, ctx, "CERT_SERVER_SUBJECT", site->server_subject_iis);
			var(fn, ctx, "HTTPS_SERVER_SUBJECT", site->server_subject_iis);
		}
		if (site->server_issuer_iis) {
			var(fn, ctx, "CERT_SERVER_ISSUER", site->server_issuer_iis);
			var(fn, ctx, "HTTPS_SERVER_ISSUER", site->server_issuer_iis);
		}
		if (client)
			ca_export_iis(&a->facts, fn, ctx);
	}
	if (client && (p->export & POL_EXPORT_CERT))
		pem_var(fn, ctx, "SSL_CLIENT_CERT", &a->chain[0]);
	if (client && (p->export & POL_EXPORT_CHAIN))
		for (i = 1; i < a->nchain; i++) {
			snprintf(buf, sizeof(buf), "SSL_CLIENT_CERT_CHAIN_%zu", i - 1);
			pem_var(fn, ctx, buf, &a->chain[i]);
		}
}

static void
on_crl_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gw_config *cfg = gw_worker->cfg;
	struct ca_trust *nt;
	size_t i;

	for (i = 0; i < cfg->ntrusts; i++) {
		if (cfg->trusts[i] == NULL)
			continue;
		/* Connections keep their reference to the trust they used. */
		if ((nt = ca_trust_reload_crls(cfg->trusts[i])) != NULL) {
			ca_trust_unref(cfg->trusts[i]);
			cfg->trusts[i] = nt;
		}
	}
}

void
gw_auth_crl_timer_start(void)
{
	const struct gw_config *cfg = gw_worker->cfg;
	int64_t every = 0;
	size_t i;

	for (i = 0; i < cfg->raw.trust.n; i++) {
		int64_t r = CG_VEC_AT(cfg->raw.trust, struct ca_trust_conf, i)->crl_reload;

		if (r > 0 && (every == 0 || r < every))
			every = r;
	}
	if (every == 0)
		return;
	ev_timer_init(&gw_worker->crl_timer, on_crl_timer, (ev_tstamp)every, (ev_tstamp)every);
	ev_timer_start(gw_worker->loop, &gw_worker->crl_timer);
	ev_unref(gw_worker->loop);	/* never keeps a draining worker alive */
}
