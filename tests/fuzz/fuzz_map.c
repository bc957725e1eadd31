/*
 * fuzz_map.c: libFuzzer target for certauth/map.c's parsers of rule and DN
 * text, through its public API: '*' patterns against a reference matcher,
 * the "can never match" check for soundness and exactness, arbitrary DNs,
 * and DNs written any valid way, which must map the certificate they name.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certauth/certauth.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))
#define MAXPAT		256	/* keeps the quadratic reference quick */
#define MAXVAL		1024
#define MAXATTRS	8

static const enum ca_map_source order[] = { CA_SRC_ONE_TO_ONE, CA_SRC_MANY_TO_ONE };

static unsigned char
fold(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int
has_alpha(const char *s)
{
	for (; *s; s++)
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))
			return 1;
	return 0;
}

/* The textbook dynamic program: obviously right, quadratic. */
static int
ref_glob(const char *p, const char *v, int icase)
{
	size_t pl = strlen(p), vl = strlen(v), i, j;
	unsigned char *prev, *cur, *t;
	int r;

	if ((prev = calloc(vl + 1, 1)) == NULL || (cur = calloc(vl + 1, 1)) == NULL)
		abort();
	prev[0] = 1;			/* empty pattern, empty value */
	for (i = 1; i <= pl; i++) {
		cur[0] = prev[0] && p[i - 1] == '*';
		for (j = 1; j <= vl; j++) {
			if (p[i - 1] == '*')
				cur[j] = prev[j] || cur[j - 1];
			else if (icase)
				cur[j] = prev[j - 1] && fold((unsigned char)p[i - 1]) ==
				    fold((unsigned char)v[j - 1]);
			else
				cur[j] = prev[j - 1] && p[i - 1] == v[j - 1];
		}
		t = prev;
		prev = cur;
		cur = t;
	}
	r = prev[vl];
	free(prev);
	free(cur);
	return r;
}

/* The next NUL-free piece of the input, up to a 0 byte, at most max long. */
static char *
piece(const uint8_t **data, size_t *size, size_t max)
{
	const uint8_t *end = memchr(*data, 0, *size);
	size_t n = end ? (size_t)(end - *data) : *size;
	char *s;

	if ((s = malloc((n < max ? n : max) + 1)) == NULL)
		abort();
	memcpy(s, *data, n < max ? n : max);
	s[n < max ? n : max] = '\0';
	*data += end ? n + 1 : n;
	*size -= end ? n + 1 : n;
	return s;
}

/* Maps a certificate whose CN and OU are both v: "a", "b", or "". */
static const char *
run(const struct ca_mapper *m, char *v)
{
	struct ca_dn_attr attrs[] = { { "OU", v }, { "CN", v } };
	struct ca_mapping out;
	struct ca_facts f;

	memset(&f, 0, sizeof(f));
	f.subject.attrs = attrs;
	f.subject.n = nitems(attrs);
	ca_map(m, &f, order, nitems(order), &out);
	if (out.method == CA_MAP_NONE && out.user != NULL)
		abort();
	return out.user ? out.user : "";
}

/*
 * Two mappings A ("a", CN) and B ("b", CN or OU), then a value. The
 * mapper must agree with the reference, and B may be refused as
 * unreachable exactly when A matches everything B does: B's own pattern,
 * its stars made a byte found in neither pattern, is a value B matches,
 * so A must match it if and only if B was refused (where that is decided).
 */
static void
fuzz_glob(const uint8_t *data, size_t size, uint8_t flags)
{
	char *pa = piece(&data, &size, MAXPAT), *pb = piece(&data, &size, MAXPAT);
	char *v = piece(&data, &size, MAXVAL), *w;
	int ia = flags & 1, ib = (flags >> 1) & 1, other = (flags >> 2) & 1;
	struct ca_rule_conf ra = { { NULL }, CA_FIELD_SUBJECT, "CN", pa, !ia };
	struct ca_rule_conf rb = { { NULL }, CA_FIELD_SUBJECT, other ? "OU" : "CN", pb, !ib };
	struct ca_many_to_one_conf maps[] = {
		{ { NULL }, "A", CA_PERM_ALLOW, "a", { &ra, 1 } },
		{ { NULL }, "B", CA_PERM_ALLOW, "b", { &rb, 1 } },
	};
	struct ca_accounts_conf both = { { NULL, 0 }, { maps, 2 } };
	struct ca_accounts_conf only_a = { { NULL, 0 }, { &maps[0], 1 } };
	struct ca_accounts_conf only_b = { { NULL, 0 }, { &maps[1], 1 } };
	struct cg_errors errs = { NULL, 0 };
	struct ca_mapper *m, *ma, *mb;
	int hit_a, hit_b, blind, decided;
	unsigned char fresh;
	size_t i;

	hit_a = ref_glob(pa, v, ia);
	hit_b = ref_glob(pb, v, ib);
	if ((ma = ca_mapper_new(&only_a, NULL, &errs)) == NULL ||
	    (mb = ca_mapper_new(&only_b, NULL, &errs)) == NULL)
		abort();
	if (strcmp(run(ma, v), hit_a ? "a" : "") != 0 ||
	    strcmp(run(mb, v), hit_b ? "b" : "") != 0)
		abort();

	m = ca_mapper_new(&both, NULL, &errs);
	if (m == NULL) {
		if (other || errs.n != 1 || strstr(errs.v[0], "can never match") == NULL)
			abort();
		/* Soundness: whatever B matches, A matched first. */
		if (hit_b && !hit_a)
			abort();
	} else if (strcmp(run(m, v), hit_a ? "a" : hit_b ? "b" : "") != 0)
		abort();

	blind = ia || !has_alpha(pa);
	decided = !other && (blind || !ib || !has_alpha(pb));
	for (fresh = 1; fresh < 255 && (strchr(pa, fresh) || strchr(pb, fresh) ||
	    fresh == '*' || (fresh >= 'A' && fresh <= 'Z') || (fresh >= 'a' && fresh <= 'z'));
	    fresh++)
		;
	if (fresh == 255)
		decided = 0;
	if ((w = strdup(pb)) == NULL)
		abort();
	for (i = 0; w[i]; i++)
		if (w[i] == '*')
			w[i] = (char)fresh;
	if (!ref_glob(pb, w, ib))
		abort();
	if (decided && (m == NULL) != ref_glob(pa, w, ia))
		abort();
	/* Undecided cases are never reported. */
	if (!decided && !other && m == NULL && !(blind || !ib || !has_alpha(pb)))
		abort();

	free(w);
	ca_mapper_free(m);
	ca_mapper_free(ma);
	ca_mapper_free(mb);
	cg_errors_free(&errs);
	free(pa);
	free(pb);
	free(v);
}

/* Any text as a subject and as an issuer: refused or accepted, no harm. */
static void
fuzz_dn(const uint8_t *data, size_t size)
{
	char *s = piece(&data, &size, 4096);
	struct ca_one_to_one_conf e[] = {
		{ .user = "u", .subject = s, .enabled = 1 },
		{ .user = "v", .subject = "CN=x", .issuer = s, .enabled = 1 },
		{ .user = "w", .serial = "01", .issuer = s, .enabled = 1 },
	};
	struct ca_accounts_conf acc = { { e, nitems(e) }, { NULL, 0 } };
	struct ca_dn_attr attrs[] = { { "CN", s }, { "O", "Corp" } };
	struct cg_errors errs = { NULL, 0 };
	struct ca_mapping out;
	struct ca_mapper *m;
	struct ca_facts f;

	m = ca_mapper_new(&acc, NULL, &errs);
	if ((m == NULL) != (errs.n > 0) || (s[0] == '\0' && m != NULL))
		abort();
	memset(&f, 0, sizeof(f));
	f.subject.attrs = f.issuer.attrs = attrs;
	f.subject.n = f.issuer.n = nitems(attrs);
	f.serial[0] = 1;
	f.serial_len = 1;
	ca_map(m, &f, order, nitems(order), &out);
	ca_mapper_free(m);
	cg_errors_free(&errs);
	free(s);
}

/* Attribute types as facts.c names them, and other ways to write them. */
static const struct {
	const char *name, *oid, *alias;
} types[] = {
	{ "CN", "2.5.4.3", "commonName" },
	{ "OU", "2.5.4.11", "organizationalUnitName" },
	{ "O", "2.5.4.10", "organizationName" },
	{ "C", "2.5.4.6", "countryName" },
	{ "ST", "2.5.4.8", "S" },
	{ "L", "2.5.4.7", "localityName" },
	{ "DC", "0.9.2342.19200300.100.1.25", "domainComponent" },
	{ "UID", "0.9.2342.19200300.100.1.1", "userid" },
	{ "emailAddress", "1.2.840.113549.1.9.1", "E" },
	{ "serialNumber", "2.5.4.5", "SERIALNUMBER" },
	{ "GN", "2.5.4.42", "G" },
	{ "title", "2.5.4.12", "T" },
	{ "2.5.4.99", "2.5.4.99", "OID.2.5.4.99" },
};

static void
put(char **p, const char *s)
{
	size_t n = strlen(s);

	memcpy(*p, s, n);
	*p += n;
}

static void
put_hex(char **p, unsigned char c, int upper)
{
	*p += sprintf(*p, upper ? "%02X" : "%02x", c);
}

/* One value written in one of the ways RFC 4514 (or Windows) allows. */
static void
put_value(char **p, const char *v, unsigned style)
{
	size_t n = strlen(v), i;
	unsigned char c;

	switch ((style >> 4) & 3) {
	case 0:		/* escape only what must be */
		for (i = 0; i < n; i++) {
			c = (unsigned char)v[i];
			if (strchr("\"+,;<>\\", c) || (i == 0 && (c == ' ' || c == '#')) ||
			    (i == n - 1 && c == ' '))
				*(*p)++ = '\\';
			*(*p)++ = (char)c;
		}
		break;
	case 1:		/* every byte as \XX */
		for (i = 0; i < n; i++) {
			*(*p)++ = '\\';
			put_hex(p, (unsigned char)v[i], style & 0x40);
		}
		break;
	case 2:		/* quoted, as Windows writes names with commas */
		*(*p)++ = '"';
		for (i = 0; i < n; i++) {
			if (v[i] == '"' || v[i] == '\\')
				*(*p)++ = '\\';
			*(*p)++ = v[i];
		}
		*(*p)++ = '"';
		break;
	case 3:		/* #BER of a UTF8String */
		*(*p)++ = '#';
		put_hex(p, 0x0c, style & 0x40);
		if (n >= 256) {
			put_hex(p, 0x82, 1);
			put_hex(p, (unsigned char)(n >> 8), 1);
		} else if (n >= 128)
			put_hex(p, 0x81, 1);
		put_hex(p, (unsigned char)n, 1);
		for (i = 0; i < n; i++)
			put_hex(p, (unsigned char)v[i], style & 0x40);
		break;
	}
}

/*
 * Attributes from the input, written as a DN each its own way: the
 * entry built from that text must map the certificate that has them.
 */
static void
fuzz_dn_round_trip(const uint8_t *data, size_t size)
{
	struct ca_dn_attr attrs[MAXATTRS];
	unsigned styles[MAXATTRS];
	char *vals[MAXATTRS], *dn, *p;
	const uint8_t *end;
	size_t n = 0, i, j, len, total = 0;
	struct ca_one_to_one_conf e = { .user = "u", .enabled = 1 };
	struct ca_accounts_conf acc = { { &e, 1 }, { NULL, 0 } };
	struct cg_errors errs = { NULL, 0 };
	struct ca_mapping out;
	struct ca_mapper *m;
	struct ca_facts f;
	unsigned t, st;

	while (size >= 2 && n < MAXATTRS) {
		t = data[0] % nitems(types);
		styles[n] = data[1];
		data += 2;
		size -= 2;
		end = memchr(data, 0xff, size);
		len = end ? (size_t)(end - data) : size;
		if ((vals[n] = malloc(len + 1)) == NULL)
			abort();
		/* Certificate values are C strings: no NUL. */
		for (i = j = 0; i < len; i++)
			if (data[i] != 0)
				vals[n][j++] = (char)data[i];
		vals[n][j] = '\0';
		total += j;
		attrs[n].name = (char *)types[t].name;
		attrs[n].value = vals[n];
		styles[n] |= t << 8;
		n++;
		data += end ? len + 1 : len;
		size -= end ? len + 1 : len;
	}
	if (n == 0)
		return;
	if ((dn = malloc(total * 8 + n * 64 + 1)) == NULL)
		abort();
	p = dn;
	/* Most specific first: the reverse of the certificate's order. */
	for (i = n; i-- > 0;) {
		st = styles[i];
		t = st >> 8;
		if (i != n - 1)
			put(&p, st & 4 ? ", " : ",");
		switch (st & 3) {
		case 0:
			put(&p, types[t].name);
			break;
		case 1:
			for (j = 0; types[t].name[j]; j++)
				*p++ = (char)fold((unsigned char)types[t].name[j]);
			break;
		case 2:
			put(&p, types[t].oid);
			break;
		case 3:
			put(&p, types[t].alias);
			break;
		}
		put(&p, st & 8 ? " = " : "=");
		put_value(&p, vals[i], st);
	}
	*p = '\0';
	e.subject = dn;
	if ((m = ca_mapper_new(&acc, NULL, &errs)) == NULL) {
		fprintf(stderr, "refused: %s: %s\n", dn, errs.v[0]);
		abort();
	}
	memset(&f, 0, sizeof(f));
	f.subject.attrs = attrs;
	f.subject.n = n;
	ca_map(m, &f, order, nitems(order), &out);
	if (out.user == NULL || strcmp(out.user, "u") != 0 || out.strong) {
		fprintf(stderr, "no match: %s\n", dn);
		abort();
	}
	ca_mapper_free(m);
	free(dn);
	for (i = 0; i < n; i++)
		free(vals[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	switch (data[0] % 3) {
	case 0:
		fuzz_glob(data + 2, size - 2, data[1]);
		break;
	case 1:
		fuzz_dn(data + 2, size - 2);
		break;
	case 2:
		fuzz_dn_round_trip(data + 2, size - 2);
		break;
	}
	return 0;
}
