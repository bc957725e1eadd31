/*
 * auth.c: the client certificate of a connection: verified once, when the
 * handshake brings it (or when a resumed session does), with certauth; its
 * facts kept for every request on the connection, and shared by the
 * connections that present the same certificate; and the TLS and
 * certificate variables each request's policy lets the application see.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/crypto.h>

#include "gateway/gateway_int.h"

#define MAX_CHAIN 16
#define FACTS_SLOTS 256		/* certificates whose facts a worker keeps */

/*
 * The facts of recently presented certificates. Taking a certificate apart
 * (ca_facts_from_der) was a fifth of a worker's time on resumed handshakes,
 * and a client presents the same certificate on every connection it
 * makes. The table is direct-mapped on the SHA-256 of the DER, which the
 * facts are a function of; an entry pushed out while connections use it
 * lives until the last of them lets go.
 */
struct gw_shared_facts {
	unsigned refs;
	uint8_t key[32];		/* SHA-256 of the DER */
	struct ca_facts f;
};

static struct gw_shared_facts *facts_slots[FACTS_SLOTS];

static void
facts_unref(struct gw_shared_facts *s)
{
	if (s != NULL && --s->refs == 0) {
		ca_facts_free(&s->f);
		free(s);
	}
}

/* The facts of a DER certificate, shared, or NULL (err says why) when it
 * cannot be parsed. */
static struct gw_shared_facts *
facts_get(const gnutls_datum_t *der, char *err, size_t errlen)
{
	struct gw_shared_facts *s, **slot;
	uint8_t key[32];

	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, der->data, der->size, key) < 0) {
		snprintf(err, errlen, "cannot hash the certificate");
		return NULL;
	}
	slot = &facts_slots[(key[0] | (unsigned)key[1] << 8) % FACTS_SLOTS];
	if (*slot != NULL && memcmp((*slot)->key, key, sizeof(key)) == 0) {
		(*slot)->refs++;
		return *slot;
	}
	s = cg_calloc(1, sizeof(*s));
	if (ca_facts_from_der(der->data, der->size, &s->f, err, errlen) < 0) {
		free(s);
		return NULL;
	}
	memcpy(s->key, key, sizeof(key));
	s->refs = 2;			/* the table's and the caller's */
	facts_unref(*slot);
	*slot = s;
	return s;
}

void
gw_auth_worker_free(void)
{
	size_t i;

	for (i = 0; i < FACTS_SLOTS; i++) {
		facts_unref(facts_slots[i]);
		facts_slots[i] = NULL;
	}
}

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
	if ((a->shared = facts_get(&a->chain[0], err, sizeof(err))) != NULL)
		a->facts = &a->shared->f;
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
	if (cg_log_enabled(a->result.verdict == CA_VERDICT_OK ? CG_LOG_DEBUG : CG_LOG_INFO))
		cg_log(a->result.verdict == CA_VERDICT_OK ? CG_LOG_DEBUG : CG_LOG_INFO, c->id,
		    "client certificate \"%s\": %s%s%s",
		    a->facts ? cg_escape(esc, sizeof(esc), a->facts->subject.rfc4514,
		    strlen(a->facts->subject.rfc4514)) : "(unparsable)",
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
	facts_unref(a->shared);
	cg_buf_free(&a->export_nv);
	ca_trust_unref(a->trust);
	gw_dir_cancel(a->dir_job);
	gw_dir_answer_unref(a->dir_answer);
	memset(a, 0, sizeof(*a));
}

/* The answer of a directory step: 1 when it decides, 0 to go on to the
 * next source (not found), -1 when the directory cannot answer. */
static int
take_answer(struct gw_auth *a)
{
	struct gw_dir_answer *ans = a->dir_answer;

	switch (ans->outcome) {
	case GW_DIR_FOUND:
	case GW_DIR_REFUSED:
		a->mapping = ans->mapping;	/* points into ans, kept until freed */
		return 1;
	case GW_DIR_NOT_FOUND:
		gw_dir_answer_unref(ans);
		a->dir_answer = NULL;
		return 0;
	case GW_DIR_UNAVAILABLE:
	case GW_DIR__MAX:
		break;
	}
	return -1;
}

static void
map_reset(struct gw_auth *a, const struct pol_policy *p)
{
	gw_dir_cancel(a->dir_job);
	a->dir_job = NULL;
	gw_dir_answer_unref(a->dir_answer);
	a->dir_answer = NULL;
	memset(&a->mapping, 0, sizeof(a->mapping));
	a->mapped = 0;
	a->map_unavailable = 0;
	a->map_step = 0;
	a->map_policy = p;
}

enum gw_map_state
gw_auth_map(struct gw_conn *c, const struct pol_policy *p, const struct ca_mapping **out)
{
	struct gw_auth *a = &c->auth;
	const struct gw_config *cfg = gw_worker->cfg;
	int rc;

	*out = NULL;
	if (p->nmapping == 0 || a->facts == NULL || a->result.verdict != CA_VERDICT_OK)
		return GW_MAP_DONE;
	if (a->map_policy != p)
		map_reset(a, p);
	if (a->dir_job != NULL)
		return GW_MAP_PENDING;
	*out = &a->mapping;
	if (a->mapped)
		return a->map_unavailable ? GW_MAP_UNAVAILABLE : GW_MAP_DONE;
	for (; a->map_step < p->nmapping; a->map_step++) {
		enum ca_map_source src = p->mapping[a->map_step];

		if (src != CA_SRC_DIRECTORY) {
			ca_map(cfg->mapper, a->facts, &src, 1, &a->mapping);
			if (a->mapping.method != CA_MAP_NONE)
				break;
			continue;
		}
		if (a->dir_answer == NULL) {
			a->dir_answer = gw_dir_lookup(c, p->map_dir_index[a->map_step], a->facts);
			if (a->dir_answer == NULL) {
				*out = NULL;
				return GW_MAP_PENDING;
			}
		}
		if ((rc = take_answer(a)) > 0)
			break;
		if (rc < 0) {
			/* Fail closed: a later source must not stand in for an
			 * account the directory might hold. */
			memset(&a->mapping, 0, sizeof(a->mapping));
			a->mapped = a->map_unavailable = 1;
			cg_log(CG_LOG_INFO, c->id, "mapping: directory %s cannot answer: 503",
			    cfg->directories[p->map_dir_index[a->map_step]].conf->name);
			return GW_MAP_UNAVAILABLE;
		}
	}
	a->mapped = 1;
	cg_log(CG_LOG_DEBUG, c->id, "mapping: %s%s%s (%s)", ca_map_method_names[a->mapping.method],
	    a->mapping.user ? " to " : "", a->mapping.user ? a->mapping.user : "",
	    a->mapping.why);
	return GW_MAP_DONE;
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

	cg_fmt_u64(num, v);
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
	if (m->groups != NULL) {
		struct cg_buf b = { NULL, 0, 0, 0 };
		size_t i;

		for (i = 0; i < m->groups->n; i++) {
			char *cn = ca_dn_group_name(m->groups->v[i]);

			if (i > 0)
				cg_buf_append(&b, ";", 1);
			cg_buf_append(&b, cn, strlen(cn));
			free(cn);
		}
		cg_buf_append(&b, "", 1);
		fn(ctx, "REMOTE_GROUPS", (const char *)b.data, b.len - 1);
		cg_buf_free(&b);
	}
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
	int client = a->presented && a->facts != NULL && p->client_certificate != POL_CERT_IGNORE &&
	    a->result.verdict == CA_VERDICT_OK;
	unsigned keybits;
	char buf[256], sni[256];
	size_t len, i;
	unsigned type;

	if (c->tls == NULL)
		return;
	if (client) {
		const struct ca_mapping *m;

		/* Decided before the request went on: never a lookup here. */
		if (gw_auth_map(c, p, &m) == GW_MAP_DONE)
			gw_auth_export_account(m, p, fn, ctx);
	}
	keybits = (unsigned)gnutls_cipher_get_key_size(gnutls_cipher_get(c->tls)) * 8;
	if (p->export & POL_EXPORT_SSL) {
		var(fn, ctx, "SSL_PROTOCOL", gw_tls_protocol(c->tls));
		var(fn, ctx, "SSL_CIPHER", gw_tls_cipher(c->tls));
		var_num(fn, ctx, "SSL_CIPHER_USEKEYSIZE", keybits);
		var_num(fn, ctx, "SSL_CIPHER_ALGKEYSIZE", keybits);
		{
			gnutls_datum_t id = { NULL, 0 };

			if (gnutls_session_get_id2(c->tls, &id) == 0 && id.size <= 64) {
				cg_hex_upper(buf, id.data, id.size);
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
			ca_export_ssl(a->facts, time(NULL), fn, ctx);
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
			ca_export_iis(a->facts, fn, ctx);
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

/*
 * The variables are a function of the connection (its session, its
 * certificate and the mapping made for the policy) and of the policy; the
 * one thing time changes is the days SSL_CLIENT_V_REMAIN counts. A busy
 * keep-alive connection thus encodes them once, not on every request
 * (they were a twentieth of a worker's time on small requests).
 */
void
gw_auth_export_nv(struct gw_conn *c, const struct pol_policy *p, struct cg_buf *out)
{
	struct gw_auth *a = &c->auth;
	long long days = a->facts != NULL ? ca_days_remaining(a->facts, time(NULL)) : 0;

	if (a->export_nv.data == NULL || a->export_policy != p || a->export_days != days) {
		cg_buf_clear(&a->export_nv);
		gw_auth_export(c, p, gw_fcgi_nv_put, &a->export_nv);
		a->export_policy = p;
		a->export_days = days;
	}
	cg_buf_append(out, cg_buf_head(&a->export_nv), cg_buf_avail(&a->export_nv));
}

void
gw_auth_trim(struct gw_auth *a)
{
	cg_buf_free(&a->export_nv);
}
