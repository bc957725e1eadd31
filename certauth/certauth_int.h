/*
 * certauth_int.h: what certauth's own files share and nothing outside
 * certauth uses: the interface between trust.c and crl.c.
 */
#ifndef CERTAUTH_INT_H
#define CERTAUTH_INT_H

#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "certauth/certauth.h"

/* ---- crl.c ---- */

struct ca_crl_file;

/* Reads a whole file; st is that of the open file, so a file replaced while
 * it is read is seen as changed at the next check. 0, or -1 with err. */
int ca_file_read(const char *path, gnutls_datum_t *out, struct stat *st, char *err,
    size_t errlen);
struct ca_crl_file *ca_crl_file_load(const char *path, const gnutls_x509_crt_t *cas,
    size_t ncas, char *err, size_t errlen);
struct ca_crl_file *ca_crl_file_ref(struct ca_crl_file *f);
void ca_crl_file_unref(struct ca_crl_file *f);
const char *ca_crl_file_path(const struct ca_crl_file *f);
int ca_crl_file_changed(const struct ca_crl_file *f);
enum ca_verdict ca_crl_check(struct ca_crl_file *const *files, size_t nfiles,
    gnutls_x509_crt_t cert, gnutls_x509_crt_t issuer, ssize_t issuer_idx, time_t now,
    int crl_missing, int crl_expired, char *reason, size_t rlen);
/* Narrows [*from, *until) to the times every CRL in files is current:
 * from its latest thisUpdate to its earliest nextUpdate (an absent
 * nextUpdate leaves until as it was). */
void ca_crl_files_window(struct ca_crl_file *const *files, size_t nfiles, time_t *from,
    time_t *until);

#endif
