/*
 * conf.c: the configuration reader shared by every module. Each module
 * describes the keys it owns in a table (name, type, default, bounds); this
 * file walks libconfig settings against those tables, so unknown keys,
 * wrong types, defaults, `-t` messages and `-p` output follow one set of rules.
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

#define FIELD(obj, k, type) ((type *)((char *)(obj) + (k)->offset))
#define CFIELD(obj, k, type) ((const type *)((const char *)(obj) + (k)->offset))

static void
error_vadd(struct cg_errors *e, const char *file, int line, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	e->v = cg_realloc(e->v, (e->n + 1) * sizeof(*e->v));
	e->v[e->n++] = cg_printf("%s:%d: %s", file ? file : "(config)", line, msg);
}

void
cg_error_at(struct cg_errors *e, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vadd(e, file, line, fmt, ap);
	va_end(ap);
}

void
cg_error_add(struct cg_errors *e, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vadd(e, s ? config_setting_source_file(s) : NULL,
	    s ? (int)config_setting_source_line(s) : 0, fmt, ap);
	va_end(ap);
}

void
cg_errors_print(const struct cg_errors *e, FILE *f)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		fprintf(f, "%s\n", e->v[i]);
}

void
cg_errors_free(struct cg_errors *e)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
	e->v = NULL;
	e->n = 0;
}

int
cg_conf_read_file(config_t *cfg, const char *path, struct cg_errors *errs)
{
	char *copy = cg_strdup(path);

	config_init(cfg);
	config_set_include_dir(cfg, dirname(copy));
	free(copy);
	if (config_read_file(cfg, path) == CONFIG_TRUE)
		return 0;
	if (config_error_type(cfg) == CONFIG_ERR_FILE_IO)
		cg_error_at(errs, path, 0, "cannot read: %s", strerror(errno));
	else
		cg_error_at(errs, config_error_file(cfg) ? config_error_file(cfg) : path,
		    config_error_line(cfg), "%s", config_error_text(cfg));
	return -1;
}

const config_setting_t *
cg_conf_setting(const struct cg_conf_src *src, const char *name)
{
	const config_setting_t *s;

	if (src == NULL || src->setting == NULL)
		return NULL;
	s = config_setting_get_member(src->setting, name);
	return s ? s : src->setting;
}

/* A value of a CG_CONF_PATH key is a path unless it is one of the key's
 * special words or a URI (pkcs11:..., scheme before any slash). */
static char *
resolve_path(const struct cg_conf_key *k, const char *v, const char *dir)
{
	const char *colon, *slash;
	size_t i;

	if (!(k->flags & CG_CONF_PATH) || dir == NULL || v[0] == '\0' || v[0] == '/')
		return cg_strdup(v);
	for (i = 0; k->choices && k->choices[i]; i++)
		if (strcmp(v, k->choices[i]) == 0)
			return cg_strdup(v);
	colon = strchr(v, ':');
	slash = strchr(v, '/');
	if (colon && (slash == NULL || colon < slash))
		return cg_strdup(v);
	return cg_printf("%s/%s", dir, v);
}

static const char *
type_name(enum cg_conf_type t)
{
	static const char *const names[CG_CONF__MAX] = {
		"a boolean", "an integer", "an integer or \"auto\"", "a string",
		"a string", "an array of strings", "a group of strings", "a group",
		"a group", "a list of groups", "a group of named groups",
	};
	return names[t];
}

static int
enum_index(const struct cg_conf_key *k, const char *v)
{
	int i;

	for (i = 0; k->choices[i]; i++)
		if (strcmp(k->choices[i], v) == 0)
			return i;
	return -1;
}

static void
bad_choice(struct cg_errors *errs, const config_setting_t *s, const struct cg_conf_key *k,
    const char *v)
{
	char list[512];
	size_t n = 0;
	int i;

	list[0] = '\0';
	for (i = 0; k->choices[i] && n < sizeof(list) - 64; i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s\"%s\"",
		    i ? ", " : "", k->choices[i]);
	cg_error_add(errs, s, "%s: \"%s\" is not one of %s", k->name, v, list);
}

static int parse_group(const config_setting_t *g, const struct cg_conf_schema *sc,
    void *out, const char *dir, struct cg_errors *errs);
static void set_default(const struct cg_conf_key *k, void *obj, const char *dir,
    struct cg_errors *errs);

/* One key present in the file. */
static void
parse_key(const config_setting_t *s, const struct cg_conf_key *k, void *obj,
    const char *dir, struct cg_errors *errs)
{
	int type = config_setting_type(s);
	const config_setting_t *e;
	long long v;
	unsigned i, n;

	switch (k->type) {
	case CG_CONF_BOOL:
		if (type != CONFIG_TYPE_BOOL)
			goto bad_type;
		*FIELD(obj, k, int) = config_setting_get_bool(s);
		return;
	case CG_CONF_INT_OR_AUTO:
		if (type == CONFIG_TYPE_STRING) {
			if (strcmp(config_setting_get_string(s), "auto") != 0)
				goto bad_type;
			*FIELD(obj, k, int64_t) = -1;
			return;
		}
		/* FALLTHROUGH */
	case CG_CONF_INT:
		if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
			goto bad_type;
		v = config_setting_get_int64(s);
		if ((k->min || k->max) && (v < k->min || v > k->max)) {
			cg_error_add(errs, s, "%s: %lld is out of range (%" PRId64 "..%" PRId64 ")",
			    k->name, v, k->min, k->max);
			set_default(k, obj, dir, errs);
			return;
		}
		*FIELD(obj, k, int64_t) = v;
		return;
	case CG_CONF_STRING:
		if (type != CONFIG_TYPE_STRING)
			goto bad_type;
		free(*FIELD(obj, k, char *));
		*FIELD(obj, k, char *) = resolve_path(k, config_setting_get_string(s), dir);
		return;
	case CG_CONF_ENUM:
		if (type != CONFIG_TYPE_STRING)
			goto bad_type;
		if (enum_index(k, config_setting_get_string(s)) < 0) {
			bad_choice(errs, s, k, config_setting_get_string(s));
			set_default(k, obj, dir, errs);
			return;
		}
		*FIELD(obj, k, int) = enum_index(k, config_setting_get_string(s));
		return;
	case CG_CONF_STRINGS:
		if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
			goto bad_type;
		n = (unsigned)config_setting_length(s);
		for (i = 0; i < n; i++) {
			e = config_setting_get_elem(s, i);
			if (config_setting_type(e) != CONFIG_TYPE_STRING) {
				cg_error_add(errs, e, "%s: element %u must be a string", k->name, i);
				continue;
			}
			cg_strv_push(FIELD(obj, k, struct cg_strv),
			    resolve_path(k, config_setting_get_string(e), dir));
		}
		return;
	case CG_CONF_STRMAP: {
		struct cg_strmap *m = FIELD(obj, k, struct cg_strmap);

		if (type != CONFIG_TYPE_GROUP)
			goto bad_type;
		n = (unsigned)config_setting_length(s);
		m->names = cg_calloc(n, sizeof(char *));
		m->values = cg_calloc(n, sizeof(char *));
		for (i = 0; i < n; i++) {
			e = config_setting_get_elem(s, i);
			if (config_setting_type(e) != CONFIG_TYPE_STRING) {
				cg_error_add(errs, e, "%s.%s: must be a string", k->name,
				    config_setting_name(e));
				continue;
			}
			m->names[m->n] = cg_strdup(config_setting_name(e));
			m->values[m->n++] = cg_strdup(config_setting_get_string(e));
		}
		return;
	}
	case CG_CONF_GROUP:
		if (type != CONFIG_TYPE_GROUP)
			goto bad_type;
		parse_group(s, k->sub, FIELD(obj, k, char), dir, errs);
		return;
	case CG_CONF_OPTGROUP:
		if (type != CONFIG_TYPE_GROUP)
			goto bad_type;
		*FIELD(obj, k, void *) = cg_calloc(1, k->sub->size);
		parse_group(s, k->sub, *FIELD(obj, k, void *), dir, errs);
		return;
	case CG_CONF_LIST:
	case CG_CONF_MAP: {
		struct cg_vec *vec = FIELD(obj, k, struct cg_vec);
		char *elem;

		if (k->type == CG_CONF_LIST && type != CONFIG_TYPE_LIST)
			goto bad_type;
		if (k->type == CG_CONF_MAP && type != CONFIG_TYPE_GROUP)
			goto bad_type;
		n = (unsigned)config_setting_length(s);
		vec->v = cg_calloc(n, k->sub->size);
		for (i = 0; i < n; i++) {
			e = config_setting_get_elem(s, i);
			if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
				cg_error_add(errs, e, "%s: element %u must be a group { ... }",
				    k->name, i);
				continue;
			}
			elem = (char *)vec->v + vec->n * k->sub->size;
			if (k->sub->name_offset >= 0)
				*(char **)(elem + k->sub->name_offset) =
				    cg_strdup(config_setting_name(e) ? config_setting_name(e) : "");
			parse_group(e, k->sub, elem, dir, errs);
			vec->n++;
		}
		return;
	}
	case CG_CONF__MAX:
		break;
	}
	cg_fatal("conf: bad key type %d", k->type);
bad_type:
	cg_error_add(errs, s, "%s: must be %s", k->name, type_name(k->type));
	/* The struct stays whole (defaults), so -t can go on checking. */
	set_default(k, obj, dir, errs);
}

static void
set_default(const struct cg_conf_key *k, void *obj, const char *dir, struct cg_errors *errs)
{
	const char *d = k->def ? k->def : "";
	char *copy, *tok, *save;

	switch (k->type) {
	case CG_CONF_BOOL:
		*FIELD(obj, k, int) = strcmp(d, "true") == 0;
		break;
	case CG_CONF_INT:
		*FIELD(obj, k, int64_t) = strtoll(d, NULL, 10);
		break;
	case CG_CONF_INT_OR_AUTO:
		*FIELD(obj, k, int64_t) = strcmp(d, "auto") == 0 ? -1 : strtoll(d, NULL, 10);
		break;
	case CG_CONF_STRING:
		*FIELD(obj, k, char *) = k->def ? resolve_path(k, d, dir) : cg_strdup("");
		break;
	case CG_CONF_ENUM:
		*FIELD(obj, k, int) = k->def ? enum_index(k, d) : 0;
		if (*FIELD(obj, k, int) < 0)
			cg_fatal("conf: default \"%s\" of %s is not a choice", d, k->name);
		break;
	case CG_CONF_STRINGS:
		/* Defaults of string lists are written "a,b". */
		copy = cg_strdup(d);
		for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			cg_strv_push(FIELD(obj, k, struct cg_strv), cg_strdup(tok));
		free(copy);
		break;
	case CG_CONF_GROUP:
		parse_group(NULL, k->sub, FIELD(obj, k, char), dir, errs);
		break;
	case CG_CONF_STRMAP:
	case CG_CONF_OPTGROUP:
	case CG_CONF_LIST:
	case CG_CONF_MAP:
	case CG_CONF__MAX:
		break;
	}
}

static int
parse_group(const config_setting_t *g, const struct cg_conf_schema *sc, void *out,
    const char *dir, struct cg_errors *errs)
{
	const config_setting_t *s;
	size_t before = errs->n, i;
	unsigned j, n;
	const char *name;

	if (sc->src_offset >= 0)
		((struct cg_conf_src *)((char *)out + sc->src_offset))->setting = g;
	for (i = 0; i < sc->nkeys; i++) {
		const struct cg_conf_key *k = &sc->keys[i];

		s = g ? config_setting_get_member(g, k->name) : NULL;
		if (s != NULL) {
			parse_key(s, k, out, dir, errs);
			continue;
		}
		set_default(k, out, dir, errs);
		if ((k->flags & CG_CONF_REQUIRED) && g != NULL)
			cg_error_add(errs, g, "%s: missing required key \"%s\"", sc->what, k->name);
	}
	if (g == NULL)
		return 0;
	n = (unsigned)config_setting_length(g);
	for (j = 0; j < n; j++) {
		s = config_setting_get_elem(g, j);
		name = config_setting_name(s);
		for (i = 0; i < sc->nkeys; i++)
			if (name && strcmp(name, sc->keys[i].name) == 0)
				break;
		if (i == sc->nkeys)
			cg_error_add(errs, s, "unknown key \"%s\" in %s", name ? name : "?",
			    sc->what);
	}
	return errs->n == before ? 0 : -1;
}

int
cg_conf_parse(const config_setting_t *g, const struct cg_conf_schema *schema, void *out,
    const char *dir, struct cg_errors *errs)
{
	return parse_group(g, schema, out, dir, errs);
}

void
cg_conf_free(const struct cg_conf_schema *sc, void *obj)
{
	size_t i, j;

	if (obj == NULL)
		return;
	if (sc->name_offset >= 0)
		free(*(char **)((char *)obj + sc->name_offset));
	for (i = 0; i < sc->nkeys; i++) {
		const struct cg_conf_key *k = &sc->keys[i];

		switch (k->type) {
		case CG_CONF_STRING:
			free(*FIELD(obj, k, char *));
			break;
		case CG_CONF_STRINGS:
			cg_strv_free(FIELD(obj, k, struct cg_strv));
			break;
		case CG_CONF_STRMAP: {
			struct cg_strmap *m = FIELD(obj, k, struct cg_strmap);

			for (j = 0; j < m->n; j++) {
				free(m->names[j]);
				free(m->values[j]);
			}
			free(m->names);
			free(m->values);
			break;
		}
		case CG_CONF_GROUP:
			cg_conf_free(k->sub, FIELD(obj, k, char));
			break;
		case CG_CONF_OPTGROUP:
			cg_conf_free(k->sub, *FIELD(obj, k, void *));
			free(*FIELD(obj, k, void *));
			break;
		case CG_CONF_LIST:
		case CG_CONF_MAP: {
			struct cg_vec *vec = FIELD(obj, k, struct cg_vec);

			for (j = 0; j < vec->n; j++)
				cg_conf_free(k->sub, (char *)vec->v + j * k->sub->size);
			free(vec->v);
			break;
		}
		default:
			break;
		}
	}
}

/* ---- -p ---- */

static void
print_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		switch (*s) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\t': fputs("\\t", f); break;
		case '\r': fputs("\\r", f); break;
		case '\f': fputs("\\f", f); break;
		default:
			if ((unsigned char)*s < 0x20)
				fprintf(f, "\\x%02x", (unsigned char)*s);
			else
				fputc(*s, f);
		}
	}
	fputc('"', f);
}

static void
print_fields(FILE *f, const struct cg_conf_schema *sc, const void *obj, int indent);

static void
print_value(FILE *f, const struct cg_conf_key *k, const void *obj, int indent)
{
	size_t i;

	switch (k->type) {
	case CG_CONF_BOOL:
		fputs(*CFIELD(obj, k, int) ? "true" : "false", f);
		break;
	case CG_CONF_INT_OR_AUTO:
		if (*CFIELD(obj, k, int64_t) < 0) {
			fputs("\"auto\"", f);
			break;
		}
		/* FALLTHROUGH */
	case CG_CONF_INT:
		fprintf(f, "%" PRId64, *CFIELD(obj, k, int64_t));
		if (*CFIELD(obj, k, int64_t) > INT32_MAX || *CFIELD(obj, k, int64_t) < INT32_MIN)
			fputc('L', f);
		break;
	case CG_CONF_STRING:
		print_string(f, *CFIELD(obj, k, char *));
		break;
	case CG_CONF_ENUM:
		print_string(f, k->choices[*CFIELD(obj, k, int)]);
		break;
	case CG_CONF_STRINGS: {
		const struct cg_strv *sv = CFIELD(obj, k, struct cg_strv);

		fputs("[ ", f);
		for (i = 0; i < sv->n; i++) {
			if (i)
				fputs(", ", f);
			print_string(f, sv->v[i]);
		}
		fputs(sv->n ? " ]" : "]", f);
		break;
	}
	case CG_CONF_STRMAP: {
		const struct cg_strmap *m = CFIELD(obj, k, struct cg_strmap);

		fputs("{", f);
		for (i = 0; i < m->n; i++) {
			fprintf(f, " %s = ", m->names[i]);
			print_string(f, m->values[i]);
			fputc(';', f);
		}
		fputs(" }", f);
		break;
	}
	case CG_CONF_GROUP:
		fputs("{\n", f);
		print_fields(f, k->sub, CFIELD(obj, k, char), indent + 1);
		fprintf(f, "%*s}", indent * 2, "");
		break;
	case CG_CONF_OPTGROUP:
		fputs("{\n", f);
		print_fields(f, k->sub, *CFIELD(obj, k, void *), indent + 1);
		fprintf(f, "%*s}", indent * 2, "");
		break;
	case CG_CONF_LIST: {
		const struct cg_vec *vec = CFIELD(obj, k, struct cg_vec);

		fputs("(", f);
		for (i = 0; i < vec->n; i++) {
			fprintf(f, "%s\n%*s{\n", i ? "," : "", (indent + 1) * 2, "");
			print_fields(f, k->sub, (const char *)vec->v + i * k->sub->size,
			    indent + 2);
			fprintf(f, "%*s}", (indent + 1) * 2, "");
		}
		fprintf(f, vec->n ? "\n%*s)" : ")", indent * 2, "");
		break;
	}
	case CG_CONF_MAP: {
		const struct cg_vec *vec = CFIELD(obj, k, struct cg_vec);

		fputs("{\n", f);
		for (i = 0; i < vec->n; i++) {
			const char *elem = (const char *)vec->v + i * k->sub->size;

			fprintf(f, "%*s%s = {\n", (indent + 1) * 2, "",
			    *(char *const *)(elem + k->sub->name_offset));
			print_fields(f, k->sub, elem, indent + 2);
			fprintf(f, "%*s};\n", (indent + 1) * 2, "");
		}
		fprintf(f, "%*s}", indent * 2, "");
		break;
	}
	case CG_CONF__MAX:
		break;
	}
}

static void
print_fields(FILE *f, const struct cg_conf_schema *sc, const void *obj, int indent)
{
	size_t i;

	for (i = 0; i < sc->nkeys; i++) {
		const struct cg_conf_key *k = &sc->keys[i];

		if (k->type == CG_CONF_OPTGROUP && *CFIELD(obj, k, void *) == NULL)
			continue;
		fprintf(f, "%*s%s = ", indent * 2, "", k->name);
		print_value(f, k, obj, indent);
		fputs(";\n", f);
	}
}

void
cg_conf_print(FILE *f, const struct cg_conf_schema *sc, const void *obj, int indent)
{
	print_fields(f, sc, obj, indent);
}
