/*
 * fuzz_cert.c: libFuzzer target for certauth/facts.c and export.c: any
 * bytes either fail with a reason and empty facts, or give facts whose
 * every exported variable is bounded, NUL-free and named.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "certauth/certauth.h"

/* 2027-01-15: a fixed "now", so runs replay. */
#define NOW	((time_t)1800000000)

static void
sink(void *ctx, const char *name, const char *value, size_t vlen)
{
	size_t *count = ctx;

	if (name == NULL || name[0] == '\0' || value == NULL ||
	    strlen(value) != vlen || vlen > CA_VAR_CAP)
		abort();
	(*count)++;
}

static void
check_dn(const struct ca_dn *dn)
{
	size_t i;

	if (dn->rfc4514 == NULL || dn->iis == NULL ||
	    (dn->n > 0 && dn->attrs == NULL))
		abort();
	for (i = 0; i < dn->n; i++)
		if (dn->attrs[i].name == NULL || dn->attrs[i].name[0] == '\0' ||
		    dn->attrs[i].value == NULL)
			abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* TOO_LARGE warnings would drown libFuzzer's output. */
	cg_log_level = CG_LOG_ERROR;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ca_facts zero;
	struct ca_facts f;
	char err[160], *pem;
	size_t n = 0;

	if (ca_facts_from_der(data, size, &f, err, sizeof(err)) != 0) {
		if (err[0] == '\0' || memcmp(&f, &zero, sizeof(f)) != 0)
			abort();
		ca_facts_free(&f);
		return 0;
	}
	if (f.der_len != size || memcmp(f.der, data, size) != 0 ||
	    f.version < 1 || f.version > 3 || f.serial_len == 0 ||
	    f.serial_len > sizeof(f.serial) || f.serial_hex[0] == '\0' ||
	    strlen(f.serial_iis) != 3 * f.serial_len - 1 ||
	    f.key_alg == NULL || f.sig_alg == NULL ||
	    f.ski_len > sizeof(f.ski) || (f.eku_client && !f.has_eku) ||
	    (f.sid != NULL && strncmp(f.sid, "S-", 2) != 0))
		abort();
	check_dn(&f.subject);
	check_dn(&f.issuer);

	ca_export_ssl(&f, NOW, sink, &n);
	ca_export_iis(&f, sink, &n);
	/* Always: the two DNs, version, serial, two dates, days left, two
	 * algorithms, the fingerprint, and IIS's four. */
	if (n < 14)
		abort();

	if ((pem = ca_pem(f.der, f.der_len)) == NULL ||
	    strncmp(pem, "-----BEGIN CERTIFICATE-----\n", 28) != 0)
		abort();
	free(pem);
	ca_facts_free(&f);
	return 0;
}
