/*
 * crl.c: certificate revocation lists: loading a CRL file into a sorted
 * serial index, and the fail-closed revocation check that GnuTLS's own
 * chain verification does not make (NOTES: it trusts any CRL it is given).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "certauth/certauth_int.h"

/* Why a CRL cannot be used for an issuer, in the order the checks run: a
 * higher value got further, and its reason is the one reported. */
enum crl_fault {
	CRL_FAULT_UNCHECKED = -1,	/* not precomputed: check at verification */
	CRL_FAULT_ISSUER,		/* AKI names another key */
	CRL_FAULT_SIGNATURE,
	CRL_FAULT_CRLSIGN,		/* issuer's key usage lacks cRLSign */
	CRL_FAULT_CRITICAL,		/* an extension this code does not process */
	CRL_FAULT_NONE,
	CRL_FAULT__MAX
};

static const char *const crl_fault_reasons[CRL_FAULT__MAX] = {
	"CRL issuer", "CRL signature", "CRL signer lacks cRLSign",
	"CRL critical extension", "",
};

struct crl_serial {
	uint32_t off;		/* into crl.pool */
	uint16_t len;		/* without leading zero bytes */
};

struct crl {
	gnutls_x509_crl_t crl;
	gnutls_datum_t issuer_dn;	/* raw DER, compared bytewise */
	uint8_t aki[64];
	size_t aki_len;			/* 0: no AuthorityKeyIdentifier */
	int unsupported;		/* an extension that changes the CRL's meaning */
	time_t this_update, next_update;	/* next_update -1: absent */
	struct crl_serial *serials;	/* sorted by (len, bytes) */
	size_t nserials;
	uint8_t *pool;
	int8_t *fault;			/* [ncas]: enum crl_fault against each CA */
};

struct ca_crl_file {
	atomic_int refs;
	char *path;
	struct stat st;			/* of the file as read */
	struct crl *crls;
	size_t n;
	size_t ncas;
};

/* ---- files ---- */

/* Caps what a configured file may make us allocate. */
#define CA_FILE_MAX (256 * 1024 * 1024)

int
ca_file_read(const char *path, gnutls_datum_t *out, struct stat *st, char *err,
    size_t errlen)
{
	size_t len = 0;
	int e = 0;

	out->size = 0;
	if ((out->data = cg_read_file(path, CA_FILE_MAX, &len, &e, st)) == NULL) {
		snprintf(err, errlen, "%s", e == EFBIG ? "file too large" :
		    e == EISDIR || e == EINVAL ? "not a regular file" : strerror(e));
		return -1;
	}
	if (len == 0) {
		free(out->data);
		out->data = NULL;
		snprintf(err, errlen, "empty file");
		return -1;
	}
	out->size = (unsigned)len;	/* NUL-terminated: PEM detection may use strings */
	return 0;
}

/* ---- serial index ---- */

static void
strip_zeros(const uint8_t **p, size_t *len)
{
	/* DER keeps a 0x00 before a high bit; a serial is compared as a number. */
	while (*len > 1 && (*p)[0] == 0) {
		(*p)++;
		(*len)--;
	}
}

static int
serial_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	if (alen != blen)
		return alen < blen ? -1 : 1;
	return memcmp(a, b, alen);
}

static int
serial_sort_cmp(const void *x, const void *y, void *pool)
{
	const struct crl_serial *a = x, *b = y;

	return serial_cmp((uint8_t *)pool + a->off, a->len, (uint8_t *)pool + b->off, b->len);
}

static int
crl_index_serials(struct crl *c, char *err, size_t errlen)
{
	gnutls_x509_crl_iter_t iter = NULL;
	uint8_t buf[128];
	const uint8_t *p;
	size_t len, cap = 0, used = 0, pcap = 0;
	time_t when;
	int rc;

	for (;;) {
		len = sizeof(buf);
		rc = gnutls_x509_crl_iter_crt_serial(c->crl, &iter, buf, &len, &when);
		if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (rc < 0) {
			snprintf(err, errlen, "revoked serial %zu: %s (%d)", c->nserials,
			    gnutls_strerror(rc), rc);
			gnutls_x509_crl_iter_deinit(iter);
			return -1;
		}
		p = buf;
		strip_zeros(&p, &len);
		if (c->nserials == cap) {
			cap = cap ? cap * 2 : 64;
			c->serials = cg_realloc(c->serials, cap * sizeof(*c->serials));
		}
		if (used + len > pcap) {
			pcap = pcap ? pcap * 2 : 1024;
			while (used + len > pcap)
				pcap *= 2;
			if (pcap > UINT32_MAX) {
				snprintf(err, errlen, "too many revoked serials");
				gnutls_x509_crl_iter_deinit(iter);
				return -1;
			}
			c->pool = cg_realloc(c->pool, pcap);
		}
		memcpy(c->pool + used, p, len);
		c->serials[c->nserials].off = (uint32_t)used;
		c->serials[c->nserials].len = (uint16_t)len;
		c->nserials++;
		used += len;
	}
	gnutls_x509_crl_iter_deinit(iter);
	if (c->nserials)
		qsort_r(c->serials, c->nserials, sizeof(*c->serials), serial_sort_cmp, c->pool);
	return 0;
}

static int
crl_lists(const struct crl *c, const uint8_t *serial, size_t len)
{
	size_t lo = 0, hi = c->nserials, mid;
	int r;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		r = serial_cmp(serial, len, c->pool + c->serials[mid].off, c->serials[mid].len);
		if (r == 0)
			return 1;
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return 0;
}

/* ---- one CRL against one issuer ---- */

/*
 * Extensions that may be critical without changing what a CRL means here.
 * IssuingDistributionPoint and DeltaCRLIndicator narrow a CRL's scope (a
 * partition, only CA or only user certificates, indirect entries, a delta);
 * read as a complete CRL they would miss revocations, so they are refused
 * whether or not marked critical.
 */
static const char *const crl_ext_understood[] = {
	"2.5.29.35",	/* authorityKeyIdentifier */
	"2.5.29.20",	/* cRLNumber */
	"2.5.29.18",	/* issuerAltName */
	NULL,
};
static const char *const crl_ext_refused[] = {
	"2.5.29.28",	/* issuingDistributionPoint */
	"2.5.29.27",	/* deltaCRLIndicator */
	NULL,
};

static int
oid_in(const char *oid, const char *const *list)
{
	size_t i;

	for (i = 0; list[i]; i++)
		if (strcmp(oid, list[i]) == 0)
			return 1;
	return 0;
}

static int
crl_scan_extensions(struct crl *c, char *err, size_t errlen)
{
	char oid[128];
	size_t len;
	unsigned i, crit;
	int rc;

	for (i = 0;; i++) {
		len = sizeof(oid);
		rc = gnutls_x509_crl_get_extension_info(c->crl, i, oid, &len, &crit);
		if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			return 0;
		if (rc < 0) {
			snprintf(err, errlen, "extension %u: %s (%d)", i, gnutls_strerror(rc), rc);
			return -1;
		}
		if (oid_in(oid, crl_ext_refused) || (crit && !oid_in(oid, crl_ext_understood)))
			c->unsupported = 1;
	}
}

static enum crl_fault
crl_authenticate(const struct crl *c, gnutls_x509_crt_t issuer)
{
	uint8_t ski[64];
	size_t ski_len = sizeof(ski);
	unsigned st = 0, usage = 0, crit, timebits;
	int rc;

	/* A CA re-keyed under the same name issues CRLs under each key: the
	 * AKI tells which; without one of the two, the signature decides. */
	rc = gnutls_x509_crt_get_subject_key_id(issuer, ski, &ski_len, &crit);
	if (rc < 0 && rc != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		cg_log(CG_LOG_ERROR, 0, "gnutls_x509_crt_get_subject_key_id: %s (%d)",
		    gnutls_strerror(rc), rc);
	if (rc >= 0 && c->aki_len && (ski_len != c->aki_len || memcmp(ski, c->aki, ski_len)))
		return CRL_FAULT_ISSUER;

	/* GnuTLS checks the signature here; its CA and key-usage checks are
	 * skipped (made below, to name the fault) and its time checks, made
	 * against the clock, are ignored: ca_crl_check uses its own `now`. */
	rc = gnutls_x509_crl_verify(c->crl, &issuer, 1, GNUTLS_VERIFY_DISABLE_CA_SIGN, &st);
	if (rc < 0) {
		cg_log(CG_LOG_ERROR, 0, "gnutls_x509_crl_verify: %s (%d)", gnutls_strerror(rc), rc);
		return CRL_FAULT_SIGNATURE;
	}
	timebits = GNUTLS_CERT_REVOCATION_DATA_SUPERSEDED |
	    GNUTLS_CERT_REVOCATION_DATA_ISSUED_IN_FUTURE;
	/* GnuTLS adds INVALID to any other bit, so INVALID alone is a fault
	 * only when no time bit explains it. */
	if ((st & ~(timebits | GNUTLS_CERT_INVALID)) ||
	    ((st & GNUTLS_CERT_INVALID) && !(st & timebits)))
		return CRL_FAULT_SIGNATURE;

	rc = gnutls_x509_crt_get_key_usage(issuer, &usage, &crit);
	if (rc != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
		if (rc < 0) {
			cg_log(CG_LOG_ERROR, 0, "gnutls_x509_crt_get_key_usage: %s (%d)",
			    gnutls_strerror(rc), rc);
			return CRL_FAULT_CRLSIGN;
		}
		if (!(usage & GNUTLS_KEY_CRL_SIGN))
			return CRL_FAULT_CRLSIGN;
	}
	if (c->unsupported)
		return CRL_FAULT_CRITICAL;
	return CRL_FAULT_NONE;
}

/* A CRL names its issuer as the CA's certificate does (a CA copies its
 * subject), so the raw DER names are compared bytewise. */
static int
crl_names(const struct crl *c, const gnutls_datum_t *dn)
{
	return dn->size == c->issuer_dn.size && memcmp(dn->data, c->issuer_dn.data, dn->size) == 0;
}

static int
subject_dn(gnutls_x509_crt_t crt, gnutls_datum_t *dn)
{
	int rc;

	dn->data = NULL;
	dn->size = 0;
	rc = gnutls_x509_crt_get_raw_dn(crt, dn);
	if (rc < 0)
		cg_log(CG_LOG_ERROR, 0, "gnutls_x509_crt_get_raw_dn: %s (%d)", gnutls_strerror(rc),
		    rc);
	return rc < 0 ? -1 : 0;
}

/* ---- loading ---- */

static void
crl_free(struct crl *c)
{
	gnutls_x509_crl_deinit(c->crl);
	gnutls_free(c->issuer_dn.data);
	free(c->serials);
	free(c->pool);
	free(c->fault);
}

static int
crl_prepare(struct crl *c, const gnutls_x509_crt_t *cas, size_t ncas, char *err,
    size_t errlen)
{
	gnutls_datum_t dn;
	size_t i;
	unsigned crit;
	int rc;

	rc = gnutls_x509_crl_get_raw_issuer_dn(c->crl, &c->issuer_dn);
	if (rc < 0) {
		snprintf(err, errlen, "issuer name: %s (%d)", gnutls_strerror(rc), rc);
		return -1;
	}
	c->aki_len = sizeof(c->aki);
	rc = gnutls_x509_crl_get_authority_key_id(c->crl, c->aki, &c->aki_len, &crit);
	/* UNSUPPORTED_EXTENSION: an AKI naming issuer and serial only. */
	if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE || rc == GNUTLS_E_X509_UNSUPPORTED_EXTENSION)
		c->aki_len = 0;
	else if (rc < 0) {
		snprintf(err, errlen, "authority key identifier: %s (%d)", gnutls_strerror(rc), rc);
		return -1;
	}
	c->this_update = gnutls_x509_crl_get_this_update(c->crl);
	c->next_update = gnutls_x509_crl_get_next_update(c->crl);
	if (c->this_update == (time_t)-1) {
		snprintf(err, errlen, "no thisUpdate");
		return -1;
	}
	if (crl_scan_extensions(c, err, errlen) < 0 || crl_index_serials(c, err, errlen) < 0)
		return -1;
	/* Checked once here against the CA files, so a verification whose
	 * issuer comes from them costs no signature check. */
	c->fault = cg_malloc(ncas ? ncas : 1);
	for (i = 0; i < ncas; i++) {
		c->fault[i] = CRL_FAULT_UNCHECKED;
		if (subject_dn(cas[i], &dn) < 0) {
			snprintf(err, errlen, "CA %zu: no subject", i);
			return -1;
		}
		if (crl_names(c, &dn))
			c->fault[i] = (int8_t)crl_authenticate(c, cas[i]);
		gnutls_free(dn.data);
	}
	return 0;
}

struct ca_crl_file *
ca_crl_file_load(const char *path, const gnutls_x509_crt_t *cas, size_t ncas, char *err,
    size_t errlen)
{
	struct ca_crl_file *f = cg_calloc(1, sizeof(*f));
	gnutls_x509_crl_t *list = NULL;
	gnutls_datum_t data;
	unsigned n = 0, i;
	size_t j;
	int rc;

	atomic_init(&f->refs, 1);
	f->path = cg_strdup(path);
	f->ncas = ncas;
	if (ca_file_read(path, &data, &f->st, err, errlen) < 0)
		goto fail;
	rc = gnutls_x509_crl_list_import2(&list, &n, &data,
	    strstr((char *)data.data, "-----BEGIN") ? GNUTLS_X509_FMT_PEM : GNUTLS_X509_FMT_DER,
	    0);
	free(data.data);
	if (rc < 0) {
		snprintf(err, errlen, "%s (%d)", gnutls_strerror(rc), rc);
		goto fail;
	}
	if (n == 0) {
		snprintf(err, errlen, "no CRL in the file");
		goto fail;
	}
	f->crls = cg_calloc(n, sizeof(*f->crls));
	for (i = 0; i < n; i++) {
		f->crls[i].crl = list[i];
		list[i] = NULL;
		f->n++;
		if (crl_prepare(&f->crls[i], cas, ncas, err, errlen) < 0)
			goto fail;
		/* Not an error: the issuer's own CRL may sit in another file,
		 * but the operator should hear that this one will not count. */
		for (j = 0; j < ncas; j++)
			if (f->crls[i].fault[j] > CRL_FAULT_UNCHECKED &&
			    f->crls[i].fault[j] < CRL_FAULT_NONE)
				cg_log(CG_LOG_WARN, 0, "CRL \"%s\" (%u): unusable for CA %zu of the "
				    "trust: %s", path, i + 1, j + 1,
				    crl_fault_reasons[f->crls[i].fault[j]]);
	}
	gnutls_free(list);
	return f;
fail:
	for (i = 0; i < n && list; i++)
		if (list[i])
			gnutls_x509_crl_deinit(list[i]);
	gnutls_free(list);
	ca_crl_file_unref(f);
	return NULL;
}

struct ca_crl_file *
ca_crl_file_ref(struct ca_crl_file *f)
{
	atomic_fetch_add(&f->refs, 1);
	return f;
}

void
ca_crl_file_unref(struct ca_crl_file *f)
{
	size_t i;

	if (f == NULL || atomic_fetch_sub(&f->refs, 1) > 1)
		return;
	for (i = 0; i < f->n; i++)
		crl_free(&f->crls[i]);
	free(f->crls);
	free(f->path);
	free(f);
}

const char *
ca_crl_file_path(const struct ca_crl_file *f)
{
	return f->path;
}

int
ca_crl_file_changed(const struct ca_crl_file *f)
{
	struct stat st;

	if (stat(f->path, &st) < 0)
		return -1;
	/* ctime too: a copy that keeps mtime and size still changes it. */
	return st.st_dev != f->st.st_dev || st.st_ino != f->st.st_ino ||
	    st.st_size != f->st.st_size ||
	    st.st_mtim.tv_sec != f->st.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != f->st.st_mtim.tv_nsec ||
	    st.st_ctim.tv_sec != f->st.st_ctim.tv_sec ||
	    st.st_ctim.tv_nsec != f->st.st_ctim.tv_nsec;
}

/* ---- the check ---- */

/*
 * Revocation of cert, issued by issuer, by the CRLs of the files. Every
 * CRL carrying the issuer's name is considered; one that fails a check is
 * not used, and is a fault unless another one passes. A listed serial in
 * any authentic CRL, current or not, is REVOKED. Returns OK, REVOKED or
 * INVALID with reason (never EXPIRED: a stale CRL is 403.16).
 */
enum ca_verdict
ca_crl_check(struct ca_crl_file *const *files, size_t nfiles, gnutls_x509_crt_t cert,
    gnutls_x509_crt_t issuer, ssize_t issuer_idx, time_t now, int crl_missing,
    int crl_expired, char *reason, size_t rlen)
{
	gnutls_datum_t dn;
	uint8_t serial[128];
	const uint8_t *sp = serial;
	size_t slen = sizeof(serial), i, j;
	int found = 0, authentic = 0, current = 0, early = 0, revoked = 0, rc;
	int worst = CRL_FAULT_UNCHECKED, fault;
	const struct crl *c;

	snprintf(reason, rlen, "revocation check failed");
	rc = gnutls_x509_crt_get_serial(cert, serial, &slen);
	if (rc < 0) {
		cg_log(CG_LOG_ERROR, 0, "gnutls_x509_crt_get_serial: %s (%d)", gnutls_strerror(rc),
		    rc);
		return CA_VERDICT_INVALID;
	}
	strip_zeros(&sp, &slen);
	if (subject_dn(issuer, &dn) < 0)
		return CA_VERDICT_INVALID;

	for (i = 0; i < nfiles; i++) {
		for (j = 0; j < files[i]->n; j++) {
			c = &files[i]->crls[j];
			if (!crl_names(c, &dn))
				continue;
			found = 1;
			fault = CRL_FAULT_UNCHECKED;
			if (issuer_idx >= 0 && (size_t)issuer_idx < files[i]->ncas)
				fault = c->fault[issuer_idx];
			if (fault == CRL_FAULT_UNCHECKED)
				fault = crl_authenticate(c, issuer);
			if (fault != CRL_FAULT_NONE) {
				if (fault > worst)
					worst = fault;
				continue;
			}
			authentic = 1;
			if (crl_lists(c, sp, slen))
				revoked = 1;
			/* No nextUpdate: nothing says until when the CA vouches
			 * for it, so it never counts as current. */
			if (c->this_update <= now && c->next_update != (time_t)-1 &&
			    now <= c->next_update)
				current = 1;
			else if (c->this_update > now)
				early = 1;
		}
	}
	gnutls_free(dn.data);
	if (revoked) {
		snprintf(reason, rlen, "revoked");
		return CA_VERDICT_REVOKED;
	}
	if (!found) {
		if (crl_missing == CA_ALLOW)
			goto ok;
		snprintf(reason, rlen, "no CRL for issuer");
		return CA_VERDICT_INVALID;
	}
	if (!authentic) {
		snprintf(reason, rlen, "%s", crl_fault_reasons[worst]);
		return CA_VERDICT_INVALID;
	}
	if (!current && crl_expired != CA_ALLOW) {
		snprintf(reason, rlen, early ? "CRL not yet valid" : "CRL expired");
		return CA_VERDICT_INVALID;
	}
ok:
	reason[0] = '\0';
	return CA_VERDICT_OK;
}

void
ca_crl_files_window(struct ca_crl_file *const *files, size_t nfiles, time_t *from,
    time_t *until)
{
	size_t i, j;

	for (i = 0; i < nfiles; i++)
		for (j = 0; j < files[i]->n; j++) {
			const struct crl *c = &files[i]->crls[j];

			if (c->this_update > *from)
				*from = c->this_update;
			if (c->next_update != (time_t)-1 && c->next_update < *until)
				*until = c->next_update;
		}
}
