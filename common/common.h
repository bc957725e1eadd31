/*
 * common.h: the base every module stands on: arenas, byte buffers, the
 * error log, and the table-driven configuration reader that turns libconfig
 * settings into plain structs (parsing, defaults, checks, `-t` and `-p`).
 * Prefix cg_. Nothing here knows about sockets, TLS or HTTP.
 */
#ifndef CG_COMMON_H
#define CG_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <libconfig.h>

#define CG_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- util.c ---- */

/* Out-of-memory and impossible states end the process through here. */
void cg_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
#define CG_NONNULL __attribute__((returns_nonnull))
void *cg_malloc(size_t n) CG_NONNULL;
void *cg_calloc(size_t n, size_t size) CG_NONNULL;
void *cg_realloc(void *p, size_t n) CG_NONNULL;
char *cg_strdup(const char *s) CG_NONNULL;
char *cg_strndup(const char *s, size_t n) CG_NONNULL;
/* asprintf that cannot fail (cg_fatal on out of memory). */
char *cg_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2))) CG_NONNULL;
int cg_strcaseeq(const char *a, size_t alen, const char *b, size_t blen);
/* The value of a hex digit, or -1. */
int cg_hexval(unsigned char c);
/* Writes the n bytes at p as 2n upper-case hex digits and a NUL. */
void cg_hex_upper(char *out, const uint8_t *p, size_t n);
/* Writes v in decimal and a NUL into out (21 bytes suffice); its length.
 * Per-request variables are formatted with these, not snprintf. */
size_t cg_fmt_u64(char *out, uint64_t v);
/* Parses a whole decimal number into *out; 0 or -1. */
int cg_parse_u64(const char *s, size_t len, uint64_t *out);
/* A whole regular file of at most max bytes, NUL-terminated, in one
 * allocation of *len + 1 bytes (never reallocated, so a secret read this way
 * leaves no copy behind once cg_wipe_free'd); NULL with *err = errno on
 * failure (EFBIG: over max, EISDIR, EINVAL: not a regular file). st, when
 * not NULL, gets the open file's stat, so a file replaced while it is read
 * is seen as changed later. */
uint8_t *cg_read_file(const char *path, size_t max, size_t *len, int *err, struct stat *st);
/* Zeroes n bytes at p (in a way the compiler cannot drop), then frees p. */
void cg_wipe_free(void *p, size_t n);

/* ---- arena.c: per-request scratch memory, freed in one call ---- */

struct cg_arena_chunk;
struct cg_arena {
	struct cg_arena_chunk *head;
	size_t used, size;	/* in head */
};
void *cg_arena_alloc(struct cg_arena *a, size_t n);
char *cg_arena_strndup(struct cg_arena *a, const char *s, size_t n);
char *cg_arena_printf(struct cg_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Frees every chunk but the first (kept for the next request). */
void cg_arena_reset(struct cg_arena *a);
void cg_arena_free(struct cg_arena *a);

/* ---- buf.c: a byte queue: append at the end, consume from the front ---- */

struct cg_buf {
	uint8_t *data;
	size_t off;	/* first unconsumed byte */
	size_t len;	/* end of data */
	size_t cap;
};
static inline size_t cg_buf_avail(const struct cg_buf *b) { return b->len - b->off; }
static inline uint8_t *cg_buf_head(const struct cg_buf *b) { return b->data + b->off; }
/* Makes room for n more bytes at the end and returns where they go. */
uint8_t *cg_buf_reserve(struct cg_buf *b, size_t n);
void cg_buf_append(struct cg_buf *b, const void *p, size_t n);
/* Appends a string literal (its length counted by the compiler). */
#define cg_buf_append_lit(b, lit) cg_buf_append((b), "" lit, sizeof(lit) - 1)
void cg_buf_printf(struct cg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cg_buf_consume(struct cg_buf *b, size_t n);
void cg_buf_clear(struct cg_buf *b);
void cg_buf_free(struct cg_buf *b);

/* ---- log.c: the error log ---- */

enum cg_log_level { CG_LOG_ERROR, CG_LOG_WARN, CG_LOG_INFO, CG_LOG_DEBUG, CG_LOG__MAX };
extern const char *const cg_log_level_names[CG_LOG__MAX];
extern enum cg_log_level cg_log_level;

/* target: "stderr", "syslog" or a file path. 0, or -1 with errno. */
int cg_log_open(const char *target);
/* Reopens a file target (SIGUSR1); 0 or -1. */
int cg_log_reopen(void);
int cg_log_fd(void);
/* A line: UTC timestamp, level, connection id (0: none), message. */
void cg_log(enum cg_log_level lvl, uint64_t conn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define cg_log_enabled(lvl) ((lvl) <= cg_log_level)
/* Escapes untrusted bytes for a log line (\xNN for controls, '"', '\\'
 * and bytes >= 0x7f) into out (NUL-terminated, truncated with "..."). */
const char *cg_escape(char *out, size_t outsize, const void *in, size_t len);
/* The same for a JSON string (\u00NN). */
const char *cg_escape_json(char *out, size_t outsize, const void *in, size_t len);
/* Formats the current time as ISO 8601 UTC ("2026-01-01T00:00:00Z"). */
void cg_time_iso(char out[32]);

/* ---- conf.c: table-driven configuration ---- */

enum cg_conf_type {
	CG_CONF_BOOL,		/* int */
	CG_CONF_INT,		/* int64_t, within [min, max] */
	CG_CONF_INT_OR_AUTO,	/* int64_t; "auto" is -1 */
	CG_CONF_STRING,		/* char * */
	CG_CONF_ENUM,		/* int: index into choices */
	CG_CONF_STRINGS,	/* struct cg_strv: an array or list of strings */
	CG_CONF_STRMAP,		/* struct cg_strmap: a group of NAME = "value" */
	CG_CONF_GROUP,		/* an embedded struct described by sub */
	CG_CONF_OPTGROUP,	/* a pointer to a struct described by sub; NULL if absent */
	CG_CONF_LIST,		/* struct cg_vec of sub structs: a list of groups */
	CG_CONF_MAP,		/* struct cg_vec of sub structs: a group of named groups */
	CG_CONF__MAX
};

/* key flags */
#define CG_CONF_REQUIRED 0x1	/* must be present */
#define CG_CONF_PATH     0x2	/* a file path: relative ones are taken from the
				   main configuration file's directory */

struct cg_strv { char **v; size_t n; };
/* Appends s (taken over) to sv; frees every string and the vector. */
void cg_strv_push(struct cg_strv *sv, char *s);
void cg_strv_free(struct cg_strv *sv);
struct cg_strmap { char **names; char **values; size_t n; };
struct cg_vec { void *v; size_t n; };

/* Where a struct was read from; valid while the config_t is alive (during
 * loading and checking), NULL in structs made from defaults. */
struct cg_conf_src { const config_setting_t *setting; };

struct cg_conf_schema;
struct cg_conf_key {
	const char *name;
	enum cg_conf_type type;
	size_t offset;
	const char *def;		/* default, written as in a file ("30", "true",
					   "\"stderr\"" is written stderr); NULL: none */
	int flags;
	int64_t min, max;		/* CG_CONF_INT bounds (both 0: any) */
	const char *const *choices;	/* CG_CONF_ENUM: NULL-terminated */
	const struct cg_conf_schema *sub;	/* groups, lists and maps */
	const char *doc;		/* one line, for -p comments */
};

struct cg_conf_schema {
	const char *what;		/* "site", "backend" ... for messages */
	size_t size;			/* sizeof the struct */
	const struct cg_conf_key *keys;
	size_t nkeys;
	ssize_t src_offset;		/* struct cg_conf_src in the struct, or -1 */
	ssize_t name_offset;		/* CG_CONF_MAP: char * for the group's name, or -1 */
};

/* Errors, each "FILE:LINE: message", in the order found. */
struct cg_errors { char **v; size_t n; };
void cg_error_add(struct cg_errors *e, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cg_error_at(struct cg_errors *e, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void cg_errors_print(const struct cg_errors *e, FILE *f);
void cg_errors_free(struct cg_errors *e);

/* Reads the libconfig file at path into cfg (the caller owns cfg and must
 * config_destroy it), with @include relative to the file's directory.
 * 0, or -1 with the parse error added to errs. */
int cg_conf_read_file(config_t *cfg, const char *path, struct cg_errors *errs);
/* Fills out (schema->size bytes, zeroed by the caller) from group g (NULL:
 * all defaults). dir resolves relative CG_CONF_PATH values. Unknown keys,
 * wrong types and values out of range are added to errs; returns errs->n
 * == 0 ? 0 : -1 for this call's errors. */
int cg_conf_parse(const config_setting_t *g, const struct cg_conf_schema *schema,
                  void *out, const char *dir, struct cg_errors *errs);
/* Frees what cg_conf_parse allocated inside obj (not obj itself). */
void cg_conf_free(const struct cg_conf_schema *schema, void *obj);
/* Prints obj as libconfig settings at the given indent (-p). */
void cg_conf_print(FILE *f, const struct cg_conf_schema *schema, const void *obj, int indent);
/* The line of key `name` inside the struct's group, else the group's line. */
const config_setting_t *cg_conf_setting(const struct cg_conf_src *src, const char *name);

#define CG_VEC_AT(vec, type, i) (&((type *)(vec).v)[i])

#endif
