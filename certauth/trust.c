/*
 * trust.c: `trust` entries: their keys, the CA and CRL files loaded into a
 * reference-counted snapshot, CRL reloads, and ca_verify, which builds the
 * client's chain and decides at a given time (SPEC sections 3 and 4).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <gnutls/crypto.h>

#include "certauth/certauth_int.h"

#define K(f) offsetof(struct ca_trust_conf, f)

/* Most certificates a chain may hold, leaf included, anchor not (the
 * upper bound of `depth`), and most a client may send. */
#define CA_DEPTH_MAX 16
#define CA_PEER_MAX 32

const char *const ca_verdict_names[CA_VERDICT__MAX] = {
	"NONE", "OK", "REVOKED", "EXPIRED", "INVALID",
};

static const char *const crl_checks[] = { "none", "leaf", "chain", NULL };
static const char *const deny_allow[] = { "deny", "allow", NULL };
static const char *const key_purposes[] = { "client", "any", NULL };

static const struct cg_conf_key trust_keys[] = {
	{ "ca", CG_CONF_STRINGS, K(ca), NULL, CG_CONF_REQUIRED | CG_CONF_PATH, 0, 0, NULL, NULL,
	  "trusted CAs and intermediates: PEM (several certificates) or DER files" },
	{ "crl", CG_CONF_STRINGS, K(crl), NULL, CG_CONF_PATH, 0, 0, NULL, NULL,
	  "CRL files, PEM or DER" },
	{ "crl_check", CG_CONF_ENUM, K(crl_check), "chain", 0, 0, 0, crl_checks, NULL,
	  "which certificates must pass a CRL check" },
	{ "crl_missing", CG_CONF_ENUM, K(crl_missing), "deny", 0, 0, 0, deny_allow, NULL,
	  "an issuer with no CRL" },
	{ "crl_expired", CG_CONF_ENUM, K(crl_expired), "deny", 0, 0, 0, deny_allow, NULL,
	  "a CRL past its nextUpdate" },
	{ "crl_reload", CG_CONF_INT, K(crl_reload), "60", 0, 0, 86400, NULL, NULL,
	  "seconds between checks for changed CRL files; 0: only on SIGHUP" },
	{ "depth", CG_CONF_INT, K(depth), "4", 0, 1, CA_DEPTH_MAX, NULL, NULL,
	  "most certificates in the chain, leaf included, trust anchor not counted" },
	{ "key_purpose", CG_CONF_ENUM, K(key_purpose), "client", 0, 0, 0, key_purposes, NULL,
	  "require clientAuth when the certificate has an EKU; \"any\" to skip" },
	{ "advertise", CG_CONF_STRINGS, K(advertise), NULL, CG_CONF_PATH, 0, 0, NULL, NULL,
	  "CA names sent in the CertificateRequest; empty: the ca list" },
};

const struct cg_conf_schema ca_trust_schema = {
	"trust", sizeof(struct ca_trust_conf), trust_keys, CG_NELEM(trust_keys),
	K(src), K(name),
};

/* The CA files, immutable once loaded, shared by a trust and the trusts
 * its CRL reloads make (their CRLs were checked against these certs). */
struct ca_cas {
	atomic_int refs;
	gnutls_x509_crt_t *certs;	/* every certificate of the `ca` files */
	uint8_t *anchor;		/* [n]: 1 for a trust anchor */
	size_t n;
	gnutls_x509_trust_list_t anchors;	/* copies of the anchors, for GnuTLS */
	gnutls_x509_trust_list_t advertised;
};

/*
 * Chains this trust found good, each with the times it stays good: a
 * resumed TLS session brings back the chain of its full handshake, and
 * verifying it again is most of a resumption's cost (two ECDSA
 * verifications). A hit still checks the time against the chain's and the
 * CRLs' windows; new CRLs make a new trust, whose cache starts empty, so a
 * revocation is seen at once. Direct-mapped, bounded, per process.
 */
#define VCACHE_SLOTS 1024

struct vslot {
	uint8_t key[32];		/* SHA-256 over the chain as sent */
	time_t from, until;		/* good while from <= now < until */
	int used, issuer_untrusted;
};

struct vcache {
	struct vslot *slots;		/* allocated at the first good chain */
};

struct ca_trust {
	atomic_int refs;
	struct ca_cas *cas;
	char *name;
	struct ca_crl_file **crls;
	size_t ncrls;
	int crl_check, crl_missing, crl_expired, key_purpose;
	size_t depth;
	struct vcache *vcache;		/* mutable behind a const trust */
};

/* ---- loading ---- */

static void
cas_unref(struct ca_cas *cas)
{
	size_t i;

	if (cas == NULL || atomic_fetch_sub(&cas->refs, 1) > 1)
		return;
	for (i = 0; i < cas->n; i++)
		gnutls_x509_crt_deinit(cas->certs[i]);
	free(cas->certs);
	free(cas->anchor);
	if (cas->anchors)
		gnutls_x509_trust_list_deinit(cas->anchors, 1);
	if (cas->advertised)
		gnutls_x509_trust_list_deinit(cas->advertised, 1);
	free(cas);
}

/* Appends the certificates of a PEM (one or more) or DER file. 0, or -1
 * with err. */
static int
load_certs(const char *path, gnutls_x509_crt_t **certs, size_t *n, char *err, size_t errlen)
{
	gnutls_x509_crt_t *list = NULL;
	gnutls_datum_t data;
	struct stat st;
	unsigned count = 0, i;
	int rc;

	if (ca_file_read(path, &data, &st, err, errlen) < 0)
		return -1;
	rc = gnutls_x509_crt_list_import2(&list, &count, &data,
	    strstr((char *)data.data, "-----BEGIN") ? GNUTLS_X509_FMT_PEM : GNUTLS_X509_FMT_DER,
	    0);
	free(data.data);
	if (rc < 0) {
		snprintf(err, errlen, "%s (%d)", gnutls_strerror(rc), rc);
		return -1;
	}
	if (count == 0) {
		gnutls_free(list);
		snprintf(err, errlen, "no certificate in the file");
		return -1;
	}
	*certs = cg_realloc(*certs, (*n + count) * sizeof(**certs));
	for (i = 0; i < count; i++)
		(*certs)[(*n)++] = list[i];
	gnutls_free(list);
	return 0;
}

/* A copy of cert in list: the list owns what it holds and frees it. */
static int
list_add_copy(gnutls_x509_trust_list_t list, gnutls_x509_crt_t cert, unsigned flags,
    char *err, size_t errlen)
{
	gnutls_x509_crt_t copy = NULL;
	gnutls_datum_t der = { NULL, 0 };
	int rc;

	if ((rc = gnutls_x509_crt_export2(cert, GNUTLS_X509_FMT_DER, &der)) < 0 ||
	    (rc = gnutls_x509_crt_init(&copy)) < 0 ||
	    (rc = gnutls_x509_crt_import(copy, &der, GNUTLS_X509_FMT_DER)) < 0)
		goto fail;
	rc = gnutls_x509_trust_list_add_cas(list, &copy, 1, flags);
	if (rc != 1) {
		rc = rc < 0 ? rc : GNUTLS_E_INTERNAL_ERROR;
		goto fail;
	}
	gnutls_free(der.data);
	return 0;
fail:
	snprintf(err, errlen, "%s (%d)", gnutls_strerror(rc), rc);
	if (copy)
		gnutls_x509_crt_deinit(copy);
	gnutls_free(der.data);
	return -1;
}

/* A key identifier, or 0 when absent (or unreadable: logged, and the
 * signature check still decides). */
static size_t
key_id(gnutls_x509_crt_t crt, int authority, uint8_t *id, size_t size)
{
	unsigned crit;
	int rc;

	rc = authority ? gnutls_x509_crt_get_authority_key_id(crt, id, &size, &crit) :
	    gnutls_x509_crt_get_subject_key_id(crt, id, &size, &crit);
	/* UNSUPPORTED_EXTENSION: an AKI naming issuer and serial only. */
	if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE || rc == GNUTLS_E_X509_UNSUPPORTED_EXTENSION)
		return 0;
	if (rc < 0) {
		cg_log(CG_LOG_ERROR, 0, "gnutls_x509_crt_get_%s_key_id: %s (%d)",
		    authority ? "authority" : "subject", gnutls_strerror(rc), rc);
		return 0;
	}
	return size;
}

static int
key_ids_agree(gnutls_x509_crt_t cert, gnutls_x509_crt_t issuer)
{
	uint8_t aki[64], ski[64];
	size_t alen, slen;

	if ((alen = key_id(cert, 1, aki, sizeof(aki))) == 0 ||
	    (slen = key_id(issuer, 0, ski, sizeof(ski))) == 0)
		return 1;
	return alen == slen && memcmp(aki, ski, alen) == 0;
}

/* Whether issuer may have issued cert: names, and key identifiers when
 * both are there (a CA re-keyed under the same name). The signature is
 * GnuTLS's to check. */
static int
issued_by(gnutls_x509_crt_t cert, gnutls_x509_crt_t issuer)
{
	return gnutls_x509_crt_check_issuer(cert, issuer) && key_ids_agree(cert, issuer);
}

/* A CA file certificate is an anchor when it is self-issued or when no
 * other one in the files issued it; the others are intermediates, so a
 * chain through them goes on to the root and is revocation-checked. */
static void
find_anchors(struct ca_cas *cas)
{
	size_t i, j;

	cas->anchor = cg_calloc(cas->n ? cas->n : 1, 1);
	for (i = 0; i < cas->n; i++) {
		cas->anchor[i] = 1;
		if (issued_by(cas->certs[i], cas->certs[i]))
			continue;
		for (j = 0; j < cas->n; j++)
			if (j != i && issued_by(cas->certs[i], cas->certs[j]) &&
			    !gnutls_x509_crt_equals(cas->certs[i], cas->certs[j])) {
				cas->anchor[i] = 0;
				break;
			}
	}
}

static struct ca_cas *
load_cas(const struct ca_trust_conf *c, const char *name, struct cg_errors *errs)
{
	struct ca_cas *cas = cg_calloc(1, sizeof(*cas));
	gnutls_x509_crt_t *adv = NULL;
	size_t nadv = 0, before = errs->n, i;
	char err[256];
	int rc;

	atomic_init(&cas->refs, 1);
	for (i = 0; i < c->ca.n; i++)
		if (load_certs(c->ca.v[i], &cas->certs, &cas->n, err, sizeof(err)) < 0)
			cg_error_add(errs, cg_conf_setting(&c->src, "ca"),
			    "trust \"%s\": cannot load CA \"%s\": %s", name, c->ca.v[i], err);
	if (errs->n == before && cas->n == 0)
		cg_error_add(errs, cg_conf_setting(&c->src, "ca"),
		    "trust \"%s\": no CA certificate", name);
	for (i = 0; i < c->advertise.n; i++)
		if (load_certs(c->advertise.v[i], &adv, &nadv, err, sizeof(err)) < 0)
			cg_error_add(errs, cg_conf_setting(&c->src, "advertise"),
			    "trust \"%s\": cannot load advertised CA \"%s\": %s", name,
			    c->advertise.v[i], err);
	if (errs->n != before)
		goto fail;

	find_anchors(cas);
	if ((rc = gnutls_x509_trust_list_init(&cas->anchors, 0)) < 0 ||
	    (rc = gnutls_x509_trust_list_init(&cas->advertised, 0)) < 0) {
		cg_error_add(errs, cg_conf_setting(&c->src, "ca"),
		    "trust \"%s\": gnutls_x509_trust_list_init: %s (%d)", name,
		    gnutls_strerror(rc), rc);
		goto fail;
	}
	for (i = 0; i < cas->n; i++)
		if (cas->anchor[i] &&
		    list_add_copy(cas->anchors, cas->certs[i], 0, err, sizeof(err)) < 0) {
			cg_error_add(errs, cg_conf_setting(&c->src, "ca"),
			    "trust \"%s\": gnutls_x509_trust_list_add_cas: %s", name, err);
			goto fail;
		}
	/* GNUTLS_TL_USE_IN_TLS: the list keeps the names a CertificateRequest
	 * carries. */
	for (i = 0; i < (nadv ? nadv : cas->n); i++)
		if (list_add_copy(cas->advertised, nadv ? adv[i] : cas->certs[i],
		    GNUTLS_TL_USE_IN_TLS, err, sizeof(err)) < 0) {
			cg_error_add(errs, cg_conf_setting(&c->src, "advertise"),
			    "trust \"%s\": gnutls_x509_trust_list_add_cas: %s", name, err);
			goto fail;
		}
	for (i = 0; i < nadv; i++)
		gnutls_x509_crt_deinit(adv[i]);
	free(adv);
	return cas;
fail:
	for (i = 0; i < nadv; i++)
		gnutls_x509_crt_deinit(adv[i]);
	free(adv);
	cas_unref(cas);
	return NULL;
}

static void
trust_free(struct ca_trust *t)
{
	size_t i;

	for (i = 0; i < t->ncrls; i++)
		ca_crl_file_unref(t->crls[i]);
	free(t->crls);
	cas_unref(t->cas);
	free(t->name);
	if (t->vcache != NULL)
		free(t->vcache->slots);
	free(t->vcache);
	free(t);
}

struct ca_trust *
ca_trust_new(const struct ca_trust_conf *c, struct cg_errors *errs)
{
	const char *name = c->name ? c->name : "";
	struct ca_trust *t = cg_calloc(1, sizeof(*t));

	t->vcache = cg_calloc(1, sizeof(*t->vcache));
	size_t before = errs->n, i;
	char err[256];

	atomic_init(&t->refs, 1);
	t->name = cg_strdup(name);
	t->crl_check = c->crl_check;
	t->crl_missing = c->crl_missing;
	t->crl_expired = c->crl_expired;
	t->key_purpose = c->key_purpose;
	t->depth = (size_t)c->depth;
	/* A conf built in code bypasses the table's checks. */
	if (c->depth < 1 || c->depth > CA_DEPTH_MAX || c->crl_check < 0 ||
	    c->crl_check >= CA_CRL_CHECK__MAX || c->crl_missing < 0 ||
	    c->crl_missing >= CA_DENY_ALLOW__MAX || c->crl_expired < 0 ||
	    c->crl_expired >= CA_DENY_ALLOW__MAX || c->key_purpose < 0 ||
	    c->key_purpose >= CA_KP__MAX) {
		cg_error_add(errs, cg_conf_setting(&c->src, "depth"),
		    "trust \"%s\": a setting is out of range", name);
		goto fail;
	}
	t->cas = load_cas(c, name, errs);
	if (t->cas == NULL)
		goto fail;
	t->crls = cg_calloc(c->crl.n ? c->crl.n : 1, sizeof(*t->crls));
	for (i = 0; i < c->crl.n; i++) {
		t->crls[t->ncrls] = ca_crl_file_load(c->crl.v[i], t->cas->certs, t->cas->n, err,
		    sizeof(err));
		if (t->crls[t->ncrls] == NULL)
			cg_error_add(errs, cg_conf_setting(&c->src, "crl"),
			    "trust \"%s\": cannot load CRL \"%s\": %s", name, c->crl.v[i], err);
		else
			t->ncrls++;
	}
	if (errs->n != before)
		goto fail;
	return t;
fail:
	trust_free(t);
	return NULL;
}

struct ca_trust *
ca_trust_ref(struct ca_trust *t)
{
	atomic_fetch_add(&t->refs, 1);
	return t;
}

void
ca_trust_unref(struct ca_trust *t)
{
	if (t != NULL && atomic_fetch_sub(&t->refs, 1) == 1)
		trust_free(t);
}

gnutls_x509_trust_list_t
ca_trust_advertised(const struct ca_trust *t)
{
	return t->cas->advertised;
}

struct ca_trust *
ca_trust_reload_crls(struct ca_trust *t)
{
	struct ca_trust *n;
	size_t i, changed = 0;
	char err[256];
	int rc;

	n = cg_calloc(1, sizeof(*n));
	n->vcache = cg_calloc(1, sizeof(*n->vcache));
	atomic_init(&n->refs, 1);
	n->name = cg_strdup(t->name);
	n->crl_check = t->crl_check;
	n->crl_missing = t->crl_missing;
	n->crl_expired = t->crl_expired;
	n->key_purpose = t->key_purpose;
	n->depth = t->depth;
	n->cas = t->cas;
	atomic_fetch_add(&n->cas->refs, 1);
	n->crls = cg_calloc(t->ncrls ? t->ncrls : 1, sizeof(*n->crls));
	for (i = 0; i < t->ncrls; i++) {
		rc = ca_crl_file_changed(t->crls[i]);
		if (rc < 0) {
			cg_log(CG_LOG_ERROR, 0, "trust \"%s\": CRL \"%s\": %s; keeping the loaded "
			    "CRLs", t->name, ca_crl_file_path(t->crls[i]), strerror(errno));
			goto fail;
		}
		if (rc == 0) {
			n->crls[n->ncrls++] = ca_crl_file_ref(t->crls[i]);
			continue;
		}
		n->crls[n->ncrls] = ca_crl_file_load(ca_crl_file_path(t->crls[i]),
		    t->cas->certs, t->cas->n, err, sizeof(err));
		if (n->crls[n->ncrls] == NULL) {
			cg_log(CG_LOG_ERROR, 0, "trust \"%s\": cannot reload CRL \"%s\": %s; keeping "
			    "the loaded CRLs", t->name, ca_crl_file_path(t->crls[i]), err);
			goto fail;
		}
		n->ncrls++;
		changed++;
	}
	if (changed == 0)
		goto fail;
	for (i = 0; i < n->ncrls; i++)
		if (n->crls[i] != t->crls[i])
			cg_log(CG_LOG_INFO, 0, "trust \"%s\": reloaded CRL \"%s\"", t->name,
			    ca_crl_file_path(n->crls[i]));
	return n;
fail:
	trust_free(n);
	return NULL;
}

/* ---- verification ---- */

/* The verdict so far: revoked > expired > any other failure (SPEC section
 * 4, row order); within a rank the first reason found stays. */
struct verdict {
	enum ca_verdict v;
	int rank;
	char reason[160];
};

static int
verdict_rank(enum ca_verdict v)
{
	switch (v) {
	case CA_VERDICT_REVOKED:
		return 3;
	case CA_VERDICT_EXPIRED:
		return 2;
	case CA_VERDICT_OK:
	case CA_VERDICT_NONE:
		return 0;
	default:
		return 1;
	}
}

static void
fail_with(struct verdict *vd, enum ca_verdict v, const char *reason)
{
	if (verdict_rank(v) <= vd->rank)
		return;
	vd->v = v;
	vd->rank = verdict_rank(v);
	snprintf(vd->reason, sizeof(vd->reason), "%s", reason);
}

static const struct {
	unsigned bit;
	enum ca_verdict v;
	const char *reason;
} status_bits[] = {
	{ GNUTLS_CERT_REVOKED, CA_VERDICT_REVOKED, "revoked" },
	{ GNUTLS_CERT_EXPIRED, CA_VERDICT_EXPIRED, "expired" },
	{ GNUTLS_CERT_NOT_ACTIVATED, CA_VERDICT_EXPIRED, "not yet valid" },
	{ GNUTLS_CERT_SIGNER_NOT_FOUND, CA_VERDICT_INVALID, "unknown issuer" },
	{ GNUTLS_CERT_SIGNATURE_FAILURE, CA_VERDICT_INVALID, "bad signature" },
	{ GNUTLS_CERT_PURPOSE_MISMATCH, CA_VERDICT_INVALID, "wrong key purpose" },
	{ GNUTLS_CERT_SIGNER_NOT_CA, CA_VERDICT_INVALID, "issuer not a CA" },
	{ GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE, CA_VERDICT_INVALID, "issuer constraints" },
	{ GNUTLS_CERT_INSECURE_ALGORITHM, CA_VERDICT_INVALID, "insecure algorithm" },
	{ GNUTLS_CERT_UNKNOWN_CRIT_EXTENSIONS, CA_VERDICT_INVALID, "unknown critical extension" },
};

static void
map_status(struct verdict *vd, unsigned status, int *untrusted)
{
	size_t i;

	if (status & GNUTLS_CERT_SIGNER_NOT_FOUND)
		*untrusted = 1;
	for (i = 0; i < CG_NELEM(status_bits); i++)
		if (status & status_bits[i].bit)
			fail_with(vd, status_bits[i].v, status_bits[i].reason);
	if (status != 0)
		fail_with(vd, CA_VERDICT_INVALID, "invalid");
}

/* Validity at now, which GnuTLS cannot be given (it reads the clock). */
static void
check_time(struct verdict *vd, gnutls_x509_crt_t cert, int leaf, time_t now)
{
	time_t from = gnutls_x509_crt_get_activation_time(cert);
	time_t until = gnutls_x509_crt_get_expiration_time(cert);

	if (from == (time_t)-1 || until == (time_t)-1)
		fail_with(vd, CA_VERDICT_INVALID, "bad validity dates");
	else if (now < from)
		fail_with(vd, CA_VERDICT_EXPIRED, leaf ? "not yet valid" : "CA not yet valid");
	else if (now > until)
		fail_with(vd, CA_VERDICT_EXPIRED, leaf ? "expired" : "CA expired");
}

static int
in_path(gnutls_x509_crt_t *path, size_t k, gnutls_x509_crt_t c)
{
	size_t i;

	for (i = 0; i < k; i++)
		if (path[i] == c || gnutls_x509_crt_equals(path[i], c))
			return 1;
	return 0;
}

/* The path from the leaf up: CA-file certificates first (so their
 * precomputed CRL checks apply), then what the client sent, in any order.
 * Sets *anchor (an index into cas->certs, or -1) and returns the number
 * of certificates before the anchor, CA_DEPTH_MAX + 1 when there were
 * more; idx[i] is path[i]'s index into cas->certs, or -1 for a
 * certificate the client sent. */
static size_t
build_path(const struct ca_cas *cas, gnutls_x509_crt_t *peer, size_t npeer,
    gnutls_x509_crt_t *path, ssize_t *idx, ssize_t *anchor)
{
	gnutls_x509_crt_t cur;
	size_t k = 1, i;
	int found;

	path[0] = peer[0];
	idx[0] = -1;
	*anchor = -1;
	/* A leaf that is itself in the CA files (a pinned self-signed
	 * certificate) is its own anchor. */
	for (i = 0; i < cas->n; i++)
		if (cas->anchor[i] && gnutls_x509_crt_equals(cas->certs[i], peer[0])) {
			*anchor = (ssize_t)i;
			return 1;
		}
	for (;;) {
		cur = path[k - 1];
		for (i = 0; i < cas->n; i++)
			if (cas->anchor[i] && issued_by(cur, cas->certs[i])) {
				*anchor = (ssize_t)i;
				return k;
			}
		if (k > CA_DEPTH_MAX)
			return k;
		found = 0;
		for (i = 0; i < cas->n && !found; i++)
			if (!cas->anchor[i] && issued_by(cur, cas->certs[i]) &&
			    !in_path(path, k, cas->certs[i])) {
				idx[k] = (ssize_t)i;
				path[k++] = cas->certs[i];
				found = 1;
			}
		for (i = 1; i < npeer && !found; i++)
			if (issued_by(cur, peer[i]) && !in_path(path, k, peer[i])) {
				idx[k] = -1;
				path[k++] = peer[i];
				found = 1;
			}
		if (!found)
			return k;
	}
}

static enum ca_verdict verify_chain(const struct ca_trust *t, const gnutls_datum_t *chain,
    size_t n, time_t now, struct ca_result *out, const uint8_t *key);

static int
chain_key(const gnutls_datum_t *chain, size_t n, uint8_t key[32])
{
	gnutls_hash_hd_t h;
	uint8_t len[4];
	size_t i;

	if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		len[0] = (uint8_t)(chain[i].size >> 24);
		len[1] = (uint8_t)(chain[i].size >> 16);
		len[2] = (uint8_t)(chain[i].size >> 8);
		len[3] = (uint8_t)chain[i].size;
		gnutls_hash(h, len, sizeof(len));
		gnutls_hash(h, chain[i].data, chain[i].size);
	}
	gnutls_hash_deinit(h, key);
	return 0;
}

static struct vslot *
vcache_slot(const struct ca_trust *t, const uint8_t key[32])
{
	return &t->vcache->slots[((size_t)key[0] << 8 | key[1]) % VCACHE_SLOTS];
}

/* Remembers a chain just found good at now: good from the latest start to
 * the earliest end of its certificates' validity and of the CRLs'. */
static void
vcache_put(const struct ca_trust *t, const uint8_t key[32], gnutls_x509_crt_t *path, size_t k,
    gnutls_x509_crt_t acert, int crls, int issuer_untrusted, time_t now)
{
	time_t from = 0, until = (time_t)INT64_MAX, a, b;
	struct vslot *sl;
	size_t i;

	for (i = 0; i <= k; i++) {
		gnutls_x509_crt_t c = i < k ? path[i] : acert;

		if (c == NULL)
			continue;
		a = gnutls_x509_crt_get_activation_time(c);
		b = gnutls_x509_crt_get_expiration_time(c);
		if (a == (time_t)-1 || b == (time_t)-1)
			return;
		if (a > from)
			from = a;
		if (b < until)
			until = b;	/* check_time accepts now == until: one second lost */
	}
	if (crls)
		ca_crl_files_window(t->crls, t->ncrls, &from, &until);
	if (!(from <= now && now < until))
		return;
	if (t->vcache->slots == NULL)
		t->vcache->slots = cg_calloc(VCACHE_SLOTS, sizeof(*t->vcache->slots));
	sl = vcache_slot(t, key);
	memcpy(sl->key, key, sizeof(sl->key));
	sl->from = from;
	sl->until = until;
	sl->issuer_untrusted = issuer_untrusted;
	sl->used = 1;
}

enum ca_verdict
ca_verify(const struct ca_trust *t, const gnutls_datum_t *chain, size_t n, time_t now,
    struct ca_result *out)
{
	uint8_t key[32];
	const struct vslot *sl;
	int keyed;
	enum ca_verdict v;

	if (n == 0 || t == NULL || n > CA_PEER_MAX)
		return verify_chain(t, chain, n, now, out, NULL);
	keyed = chain_key(chain, n, key) == 0;
	if (keyed && t->vcache->slots != NULL) {
		sl = vcache_slot(t, key);
		if (sl->used && memcmp(sl->key, key, sizeof(key)) == 0 && sl->from <= now &&
		    now < sl->until) {
			out->verdict = CA_VERDICT_OK;
			out->reason[0] = '\0';
			out->issuer_untrusted = sl->issuer_untrusted;
			return CA_VERDICT_OK;
		}
	}
	v = verify_chain(t, chain, n, now, out, keyed ? key : NULL);
	return v;
}

/* ca_verify without the cache; a good chain is remembered under key. */
static enum ca_verdict
verify_chain(const struct ca_trust *t, const gnutls_datum_t *chain, size_t n, time_t now,
    struct ca_result *out, const uint8_t *key)
{
	gnutls_x509_crt_t peer[CA_PEER_MAX], path[CA_DEPTH_MAX + 1], acert, issuer;
	ssize_t idx[CA_DEPTH_MAX + 1], anchor, iidx;
	int pinned;
	struct verdict vd = { CA_VERDICT_OK, 0, "" };
	gnutls_typed_vdata_st purpose = {
		GNUTLS_DT_KEY_PURPOSE_OID, (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0,
	};
	char reason[160];
	size_t npeer = 0, k, i, ncheck;
	unsigned status = 0, flags;
	enum ca_verdict v;
	int rc;

	out->verdict = CA_VERDICT_INVALID;
	snprintf(out->reason, sizeof(out->reason), "invalid");
	out->issuer_untrusted = 0;
	if (n == 0) {
		out->verdict = CA_VERDICT_NONE;
		out->reason[0] = '\0';
		return out->verdict;
	}
	if (t == NULL)
		return out->verdict;
	if (n > CA_PEER_MAX) {
		snprintf(out->reason, sizeof(out->reason), "chain too long");
		return out->verdict;
	}
	for (npeer = 0; npeer < n; npeer++) {
		if ((rc = gnutls_x509_crt_init(&peer[npeer])) < 0) {
			cg_log(CG_LOG_ERROR, 0, "gnutls_x509_crt_init: %s (%d)", gnutls_strerror(rc),
			    rc);
			goto done;
		}
		rc = gnutls_x509_crt_import(peer[npeer], &chain[npeer], GNUTLS_X509_FMT_DER);
		if (rc < 0) {
			/* The client's bytes: worth a debug line, not an error. */
			cg_log(CG_LOG_DEBUG, 0, "client certificate %zu: gnutls_x509_crt_import: "
			    "%s (%d)", npeer, gnutls_strerror(rc), rc);
			gnutls_x509_crt_deinit(peer[npeer]);
			snprintf(out->reason, sizeof(out->reason), "malformed certificate");
			goto done;
		}
	}

	k = build_path(t->cas, peer, npeer, path, idx, &anchor);
	acert = anchor >= 0 ? t->cas->certs[anchor] : NULL;
	pinned = acert != NULL && gnutls_x509_crt_equals(acert, path[0]);
	if (acert == NULL) {
		out->issuer_untrusted = 1;
		fail_with(&vd, CA_VERDICT_INVALID,
		    k > CA_DEPTH_MAX ? "chain too long" : "unknown issuer");
	} else if (k > t->depth)
		fail_with(&vd, CA_VERDICT_INVALID, "chain too long");

	if (acert != NULL) {
		/* Times are checked below against now; CRLs by crl.c. */
		flags = GNUTLS_VERIFY_DISABLE_TIME_CHECKS | GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS |
		    GNUTLS_VERIFY_DISABLE_CRL_CHECKS;
		rc = gnutls_x509_trust_list_verify_crt2(t->cas->anchors, path, (unsigned)k,
		    t->key_purpose == CA_KP_CLIENT ? &purpose : NULL,
		    t->key_purpose == CA_KP_CLIENT ? 1 : 0, flags, &status, NULL);
		if (rc < 0) {
			cg_log(CG_LOG_ERROR, 0, "gnutls_x509_trust_list_verify_crt2: %s (%d)",
			    gnutls_strerror(rc), rc);
			fail_with(&vd, CA_VERDICT_INVALID, "verification error");
		} else
			map_status(&vd, status, &out->issuer_untrusted);
	}

	for (i = 0; i < k; i++)
		check_time(&vd, path[i], i == 0, now);
	if (acert != NULL && !pinned)
		check_time(&vd, acert, 0, now);

	/* The anchor is trusted as configured; below it, every certificate
	 * crl_check covers needs its issuer's word that it is not revoked. */
	if (acert != NULL && !pinned && t->crl_check != CA_CRL_NONE) {
		ncheck = t->crl_check == CA_CRL_LEAF ? 1 : k;
		for (i = 0; i < ncheck; i++) {
			issuer = i + 1 < k ? path[i + 1] : acert;
			iidx = i + 1 < k ? idx[i + 1] : anchor;
			v = ca_crl_check(t->crls, t->ncrls, path[i], issuer, iidx, now,
			    t->crl_missing, t->crl_expired, reason, sizeof(reason));
			if (v != CA_VERDICT_OK)
				fail_with(&vd, v, reason);
		}
	}

	out->verdict = vd.rank ? vd.v : CA_VERDICT_OK;
	snprintf(out->reason, sizeof(out->reason), "%s", vd.reason);
	if (out->verdict == CA_VERDICT_OK && key != NULL)
		vcache_put(t, key, path, k, pinned ? NULL : acert,
		    acert != NULL && !pinned && t->crl_check != CA_CRL_NONE, out->issuer_untrusted,
		    now);
done:
	for (i = 0; i < npeer; i++)
		gnutls_x509_crt_deinit(peer[i]);
	return out->verdict;
}
