/*
 * buf.c: byte queues for socket I/O. Data is appended at the end and
 * consumed from the front; the consumed prefix is reclaimed lazily, when
 * room is needed, so streaming costs one memmove per refill at most.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

uint8_t *
cg_buf_reserve(struct cg_buf *b, size_t n)
{
	size_t need;

	if (b->cap - b->len >= n)
		return b->data + b->len;
	if (b->off > 0) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->cap - b->len >= n)
			return b->data + b->len;
	}
	need = b->len + n;
	if (need < b->len)
		cg_fatal("buffer overflow");
	if (b->cap == 0)
		b->cap = 1024;
	while (b->cap < need)
		b->cap *= 2;
	b->data = cg_realloc(b->data, b->cap);
	return b->data + b->len;
}

void
cg_buf_append(struct cg_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	memcpy(cg_buf_reserve(b, n), p, n);
	b->len += n;
}

void
cg_buf_printf(struct cg_buf *b, const char *fmt, ...)
{
	va_list ap;
	size_t room;
	int n;

	/* Format in place: one pass when it fits, which it nearly always does. */
	cg_buf_reserve(b, 128);
	room = b->cap - b->len;
	va_start(ap, fmt);
	n = vsnprintf((char *)b->data + b->len, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		cg_fatal("buf printf: bad format");
	if ((size_t)n >= room) {
		cg_buf_reserve(b, (size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

void
cg_buf_consume(struct cg_buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

void
cg_buf_clear(struct cg_buf *b)
{
	b->off = b->len = 0;
}

void
cg_buf_free(struct cg_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->off = b->len = b->cap = 0;
}
