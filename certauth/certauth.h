/*
 * certauth.h: certgate's certificate module: what a client certificate
 * says (facts.c), whether it is to be trusted (trust.c, crl.c), and the
 * mod_ssl and IIS variables that describe it (export.c). Pure: DER and
 * files in, facts and verdicts out; no sockets, no events. Prefix ca_.
 */
#ifndef CERTAUTH_H
#define CERTAUTH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "common/common.h"

/* ---- facts.c: what a certificate says, extracted once ---- */

struct ca_dn_attr {
	const char *name;	/* short name as mod_ssl prints it: "CN", "OU", "emailAddress"...;
				   the dotted OID for unknown types */
	char *value;		/* UTF-8, as in the certificate */
};

struct ca_dn {
	struct ca_dn_attr *attrs;	/* in certificate order (most general first) */
	size_t n;
	char *rfc4514;		/* RFC 4514: most specific first, "CN=Alice,OU=Eng,O=Corp,C=US" */
	char *iis;		/* IIS: certificate order, ", ": "C=US, O=Corp, OU=Eng, CN=Alice" */
	char *ad;		/* Active Directory's altSecurityIdentities: the IIS
				   names and order, "," alone: "C=US,O=Corp,OU=Eng,CN=Alice" */
};

struct ca_facts {
	uint8_t *der;
	size_t der_len;
	struct ca_dn subject, issuer;
	int version;			/* 1..3 */
	char serial_hex[129];		/* uppercase, two digits a byte, no colons */
	char serial_iis[193];		/* "04-67-F3-02" */
	uint8_t serial[64];
	size_t serial_len;
	time_t not_before, not_after;
	struct cg_strv san_email, san_dns, san_uri, san_upn;	/* in certificate order */
	uint8_t sha256[32];		/* of the DER certificate */
	uint8_t spki_sha256[32];	/* of the DER SubjectPublicKeyInfo */
	uint8_t sha1[20];		/* of the DER certificate: AD's X509:<SHA1-PUKEY>
					   (directory.c says why not of the key) */
	uint8_t ski[64];		/* SubjectKeyIdentifier; ski_len 0 when absent */
	size_t ski_len;
	char *sid;			/* "S-1-5-21-...", from 1.3.6.1.4.1.311.25.2; NULL */
	const char *key_alg;		/* mod_ssl names: "rsaEncryption", "id-ecPublicKey" ... */
	const char *sig_alg;		/* "sha256WithRSAEncryption", "ecdsa-with-SHA256" ... */
	unsigned key_bits;
	int has_eku, eku_client;	/* extended key usage present / includes clientAuth */
};

/* Fills f from a DER certificate. 0, or -1 with a reason in err. Untrusted
 * input: every field is bounded and checked. ca_facts_free(NULL) is fine. */
int ca_facts_from_der(const uint8_t *der, size_t len, struct ca_facts *f, char *err,
                      size_t errlen);
void ca_facts_free(struct ca_facts *f);
/* The DER as PEM ("-----BEGIN CERTIFICATE-----\n..."), malloc'd. */
char *ca_pem(const uint8_t *der, size_t len);

/* ---- export.c: the variables that describe a client certificate ---- */

/* Receives each variable; value is NUL-terminated, vlen its length. */
typedef void (*ca_var_fn)(void *ctx, const char *name, const char *value, size_t vlen);

/* Longest exported certificate value; longer ones become "TOO_LARGE". */
#define CA_VAR_CAP 16384

/* The client part of the mod_ssl set (SPEC section 6): SSL_CLIENT_S_DN,
 * SSL_CLIENT_S_DN_x (and _1, _2 ...), SSL_CLIENT_I_DN..., M_SERIAL,
 * M_VERSION, V_START, V_END, V_REMAIN (days left at `now`), A_SIG, A_KEY,
 * SAN_Email_n, SAN_DNS_n, SAN_OTHER_msUPN_n, FINGERPRINT_SHA256.
 * SSL_CLIENT_VERIFY is the caller's (it knows the verdict). */
void ca_export_ssl(const struct ca_facts *f, time_t now, ca_var_fn fn, void *ctx);
/* SSL_CLIENT_V_REMAIN: whole days from now to f's notAfter, 0 once past. */
long long ca_days_remaining(const struct ca_facts *f, time_t now);
/* The client part of the IIS set: CERT_COOKIE, CERT_SUBJECT, CERT_ISSUER,
 * CERT_SERIALNUMBER. CERT_FLAGS and the key sizes are the caller's. */
void ca_export_iis(const struct ca_facts *f, ca_var_fn fn, void *ctx);

/* ---- trust.c / crl.c: verification against a `trust` entry ---- */

enum ca_verdict {
	CA_VERDICT_NONE,	/* no certificate presented */
	CA_VERDICT_OK,
	CA_VERDICT_REVOKED,	/* 403.13 */
	CA_VERDICT_EXPIRED,	/* expired or not yet valid: 403.17 */
	CA_VERDICT_INVALID,	/* anything else: 403.16 */
	CA_VERDICT__MAX
};
extern const char *const ca_verdict_names[CA_VERDICT__MAX];

enum ca_crl_check { CA_CRL_NONE, CA_CRL_LEAF, CA_CRL_CHAIN, CA_CRL_CHECK__MAX };
enum ca_deny_allow { CA_DENY, CA_ALLOW, CA_DENY_ALLOW__MAX };
enum ca_key_purpose { CA_KP_CLIENT, CA_KP_ANY, CA_KP__MAX };

/* A `trust` entry as written (SPEC section 3). */
struct ca_trust_conf {
	struct cg_conf_src src;
	char *name;
	struct cg_strv ca, crl;
	int crl_check;			/* enum ca_crl_check */
	int crl_missing, crl_expired;	/* enum ca_deny_allow */
	int64_t crl_reload;
	int64_t depth;
	int key_purpose;		/* enum ca_key_purpose */
	struct cg_strv advertise;
};
/* Keys of one trust entry; the gateway embeds it as a map ("trust"). */
extern const struct cg_conf_schema ca_trust_schema;

struct ca_trust;

/* Loads the CA and CRL files of c. NULL with errors (FILE:LINE of the
 * offending setting) added to errs. Reference counted: a connection holds
 * the trust it verified with across a CRL reload. */
struct ca_trust *ca_trust_new(const struct ca_trust_conf *c, struct cg_errors *errs);
struct ca_trust *ca_trust_ref(struct ca_trust *t);
void ca_trust_unref(struct ca_trust *t);	/* NULL accepted */

/* Re-reads the CRL files whose mtime or size changed. Returns a new trust
 * (the caller swaps it in and unrefs the old), or NULL when nothing changed
 * or a file failed to parse (then logged, and the old one stays). */
struct ca_trust *ca_trust_reload_crls(struct ca_trust *t);

/* The trust anchors (and intermediates) as a GnuTLS trust list, for the
 * CertificateRequest's CA names (the `advertise` list, else `ca`). Owned
 * by t. */
gnutls_x509_trust_list_t ca_trust_advertised(const struct ca_trust *t);

struct ca_result {
	enum ca_verdict verdict;
	char reason[160];	/* for SSL_CLIENT_VERIFY=FAILED:reason; "" when OK */
	int issuer_untrusted;	/* CERT_FLAGS bit 1 */
};

/* Verifies a client chain (leaf first, DER) at time `now` against t: chain
 * to a trusted CA within `depth`, validity, clientAuth key purpose, and
 * revocation as `crl_check` says, failing closed where GnuTLS does not
 * (SPEC section 4 and NOTES: no CRL for an issuer, bad CRL signature, CRL
 * of another issuer, CRL signer without cRLSign, CRL past nextUpdate, an
 * unknown critical CRL extension). Starts at INVALID and sets OK only when
 * every check passed. Returns the verdict (also in out). */
enum ca_verdict ca_verify(const struct ca_trust *t, const gnutls_datum_t *chain, size_t n,
                          time_t now, struct ca_result *out);

/* ---- map.c: certificates to accounts (SPEC sections 3 and 4) ---- */

enum ca_map_field { CA_FIELD_SUBJECT, CA_FIELD_ISSUER, CA_FIELD_SAN, CA_FIELD__MAX };
enum ca_permission { CA_PERM_ALLOW, CA_PERM_DENY, CA_PERMISSION__MAX };

/* One `one_to_one` entry as written: exactly one key kind set (issuer may
 * accompany serial or subject). Unset strings are "". */
struct ca_one_to_one_conf {
	struct cg_conf_src src;
	char *user;
	char *certificate;	/* PEM or DER file, or base64 DER (IIS) */
	char *sha256, *issuer, *serial, *ski, *public_key_sha256, *sid, *upn, *email, *subject;
	int enabled;
};

struct ca_rule_conf {
	struct cg_conf_src src;
	int field;		/* enum ca_map_field */
	char *subfield;
	char *match;		/* whole value, '*' for any run of characters */
	int case_sensitive;
};

struct ca_many_to_one_conf {
	struct cg_conf_src src;
	char *name;
	int permission;		/* enum ca_permission */
	char *user;
	struct cg_vec rules;	/* struct ca_rule_conf */
};

struct ca_accounts_conf {
	struct cg_vec one_to_one;	/* struct ca_one_to_one_conf */
	struct cg_vec many_to_one;	/* struct ca_many_to_one_conf */
};
/* The `accounts` group; the gateway embeds it (CG_CONF_GROUP). */
extern const struct cg_conf_schema ca_accounts_schema;

/* Where accounts come from, in a policy's `mapping` order. A directory
 * is the gateway's to ask (ca_map skips it); directory.c formats what to
 * ask and judges the answer. */
enum ca_map_source { CA_SRC_ONE_TO_ONE, CA_SRC_MANY_TO_ONE, CA_SRC_DIRECTORY, CA_SRC__MAX };

enum ca_map_method { CA_MAP_NONE, CA_MAP_ONE_TO_ONE, CA_MAP_MANY_TO_ONE, CA_MAP_DIRECTORY,
	CA_MAP__MAX };
/* "none", "one-to-one", "many-to-one", "directory" */
extern const char *const ca_map_method_names[CA_MAP__MAX];

struct ca_mapping {
	enum ca_map_method method;
	int deny;		/* a deny mapping decided: 403.12 */
	int strong;
	const char *user;	/* the account; NULL with none or deny */
	const char *name;	/* the many-to-one mapping's name, or the entry's user;
				   "NAME:lookup" for a directory */
	const struct cg_strv *groups;	/* directory groups (DNs); NULL for file mappings */
	char why[256];		/* for explain: which key or rule matched */
};

struct ca_mapper;

/* Builds the lookup tables (hashes: a lookup does not grow with the
 * entries) and checks the rules: duplicate keys, an entry with no key or
 * two, deny with a user, allow without one, unknown subfields, mappings an
 * earlier one always pre-empts (where decidable), each "FILE:LINE: ..."
 * into errs. dir resolves relative `certificate` files. NULL on errors. */
struct ca_mapper *ca_mapper_new(const struct ca_accounts_conf *c, const char *dir,
                                struct cg_errors *errs);
void ca_mapper_free(struct ca_mapper *m);	/* NULL accepted */

/* Maps f, trying the sources in the order given (SPEC section 4: enabled
 * one-to-one entries, strong before weak then file order; many-to-one in
 * file order, all rules of a mapping must match, a multi-valued field
 * matches when any value does; the first match decides). out->method is
 * CA_MAP_NONE when nothing matched. Pointers in out live as long as m. */
void ca_map(const struct ca_mapper *m, const struct ca_facts *f, const enum ca_map_source *order,
            size_t norder, struct ca_mapping *out);

/* For explain: one line per mapping tried, in the order ca_map tries
 * them, until the one that decides: which one-to-one key kinds were
 * looked up and missed, and for each earlier many-to-one mapping the
 * first rule that failed ("many-to-one sales: rule 1 (subject OU =
 * \"Sales\") matched no value"). */
typedef void (*ca_map_trace_fn)(void *ctx, const char *line);
void ca_map_trace(const struct ca_mapper *m, const struct ca_facts *f,
                  const enum ca_map_source *order, size_t norder,
                  ca_map_trace_fn fn, void *ctx);

/* ---- directory.c: accounts in LDAP or Active Directory (SPEC section 10) ---- */

enum ca_dir_scope { CA_SCOPE_SUB, CA_SCOPE_ONE, CA_SCOPE_BASE, CA_SCOPE__MAX };
enum ca_dir_binding { CA_BIND_FULL, CA_BIND_COMPAT, CA_BIND_OFF, CA_BIND__MAX };
enum ca_dir_lookup { CA_LOOKUP_ALTSECID, CA_LOOKUP_UPN, CA_LOOKUP__MAX };
/* "altSecurityIdentities", "userPrincipalName": the lookup and its attribute */
extern const char *const ca_dir_lookup_names[CA_LOOKUP__MAX];
extern const char *const ca_dir_binding_names[CA_BIND__MAX];

/* A `directories` entry as written. */
struct ca_directory_conf {
	struct cg_conf_src src;
	char *name;
	struct cg_strv uri;
	int start_tls;
	struct cg_strv ca;
	char *bind_dn, *bind_password_file;
	char *base;
	int scope;			/* enum ca_dir_scope */
	char *account_attribute, *groups_attribute;
	struct cg_strv lookups;
	int strong_binding;		/* enum ca_dir_binding */
	int64_t cache_ttl, negative_ttl, timeout;
};
/* Keys of one directory; the gateway embeds it as a map ("directories"). */
extern const struct cg_conf_schema ca_directory_schema;

/* A directory ready to be asked. Points into its conf. */
struct ca_directory {
	const struct ca_directory_conf *conf;
	enum ca_dir_lookup lookups[CA_LOOKUP__MAX];	/* in the order tried */
	size_t nlookups;
	char *password;			/* bind_password_file's first line; wiped when freed */
};

/* Checks c (URIs, lookups, ca, bind) and reads the password file: errors
 * (FILE:LINE) into errs, 0 or -1. d is filled either way and freed with
 * ca_directory_free. */
int ca_directory_build(struct ca_directory *d, const struct ca_directory_conf *c,
                       struct cg_errors *errs);
void ca_directory_free(struct ca_directory *d);

/* The values a lookup searches for, with their strength, and the LDAP
 * filter that finds them (every value escaped per RFC 4515). */
struct ca_dir_value {
	char *value;			/* "X509:<SKI>8C4F..." or a UPN */
	const char *format;		/* "X509:<SKI>" ..., "UPN" */
	int strong;
};
struct ca_dir_query {
	enum ca_dir_lookup lookup;
	const char *attribute;		/* "altSecurityIdentities", "userPrincipalName" */
	struct ca_dir_value *v;
	size_t n;			/* 0: the certificate has nothing to look up */
	char *filter;			/* NULL when n is 0 */
};
/* Fills q for lookup l of certificate f (SPEC section 10: AD's formats,
 * DNs most-general first, serial bytes reversed, hex upper case). */
void ca_dir_query_build(const struct ca_facts *f, enum ca_dir_lookup l, struct ca_dir_query *q);
void ca_dir_query_free(struct ca_dir_query *q);	/* NULL accepted */

/* RFC 4515 escaping of a filter value into a new string: '*', '(', ')',
 * '\\', NUL and bytes >= 0x80 as \XX (so no value can widen a search). */
char *ca_ldap_escape(const char *v, size_t len);
/* The textual form of a binary objectSid (MS-DTYP 2.4.2: revision, count,
 * 48-bit authority big-endian, sub-authorities little-endian): "S-1-5-21-...",
 * written into out. 0, or -1 when b is not a SID. */
int ca_sid_to_string(const uint8_t *b, size_t len, char *out, size_t outsize);
/* The value of a DN's first RDN when its type is CN ("CN=Admins,OU=G,..."
 * gives "Admins", RFC 4514 escapes undone), else the whole DN; malloc'd. */
char *ca_dn_group_name(const char *dn);

/* How an entry found by a lookup counts (strong_binding, SPEC section 10). */
enum ca_dir_verdict {
	CA_DIR_STRONG,		/* a strong value matched, or the SID confirmed a weak one */
	CA_DIR_WEAK,		/* weak, accepted (compatibility: logged, off: silent) */
	CA_DIR_REFUSED_WEAK,	/* full: weak and not confirmed by the SID */
	CA_DIR_REFUSED_SID,	/* the certificate's SID is not the entry's */
	CA_DIR_VERDICT__MAX
};
extern const char *const ca_dir_verdict_names[CA_DIR_VERDICT__MAX];
/* cert_sid: the certificate's SID extension (NULL: none); entry_sid: the
 * entry's objectSid as text (NULL: none, which a SID extension never
 * matches: fail closed). strong: the value that matched was strong. */
enum ca_dir_verdict ca_dir_judge(enum ca_dir_binding mode, int strong, const char *cert_sid,
                                 const char *entry_sid);

#endif
