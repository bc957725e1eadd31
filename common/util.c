/*
 * util.c: allocation that cannot fail quietly, small string helpers, and
 * reading a whole file (also a secret one).
 * Out of memory in a gateway is not a recoverable state: we log and exit,
 * and the master starts a new worker.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"

void
cg_fatal(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cg_log(CG_LOG_ERROR, 0, "fatal: %s", msg);
	exit(70);
}

void *
cg_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		cg_fatal("out of memory (%zu bytes)", n);
	return p;
}

void *
cg_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		cg_fatal("out of memory (%zu x %zu bytes)", n, size);
	return p;
}

void *
cg_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		cg_fatal("out of memory (%zu bytes)", n);
	return q;
}

char *
cg_strdup(const char *s)
{
	return cg_strndup(s, strlen(s));
}

char *
cg_strndup(const char *s, size_t n)
{
	char *p = cg_malloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
cg_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (rc < 0)
		cg_fatal("out of memory (printf)");
	return s;
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

int
cg_strcaseeq(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i;

	if (alen != blen)
		return 0;
	for (i = 0; i < alen; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return 0;
	return 1;
}

int
cg_parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

int
cg_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void
cg_strv_push(struct cg_strv *sv, char *s)
{
	sv->v = cg_realloc(sv->v, (sv->n + 1) * sizeof(*sv->v));
	sv->v[sv->n++] = s;
}

void
cg_strv_free(struct cg_strv *sv)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = 0;
}

uint8_t *
cg_read_file(const char *path, size_t max, size_t *len, int *err, struct stat *stp)
{
	struct stat st;
	uint8_t *data = NULL;
	size_t n = 0;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		*err = errno;
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		*err = errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		*err = S_ISDIR(st.st_mode) ? EISDIR : !S_ISREG(st.st_mode) ? EINVAL : EFBIG;
		goto fail;
	}
	data = cg_malloc((size_t)st.st_size + 1);
	while (n < (size_t)st.st_size) {
		if ((r = read(fd, data + n, (size_t)st.st_size - n)) < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			*err = r < 0 ? errno : EIO;
			goto fail;
		}
		n += (size_t)r;
	}
	close(fd);
	data[n] = '\0';
	*len = n;
	if (stp != NULL)
		*stp = st;
	return data;
fail:
	if (data != NULL)
		cg_wipe_free(data, (size_t)st.st_size + 1);
	close(fd);
	return NULL;
}

void
cg_wipe_free(void *p, size_t n)
{
	if (p == NULL)
		return;
	explicit_bzero(p, n);
	free(p);
}

void
cg_hex_upper(char *out, const uint8_t *p, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * n] = '\0';
}

size_t
cg_fmt_u64(char *out, uint64_t v)
{
	char tmp[20];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
	return n;
}
