/*
 * arena.c: per-request scratch memory. Parsed headers, FastCGI parameters
 * and policy scratch are allocated here and released together when the
 * request ends, so the request path has no free() to forget.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

#define ARENA_CHUNK 8192

struct cg_arena_chunk {
	struct cg_arena_chunk *next;
	size_t size;
	max_align_t data[];
};

void *
cg_arena_alloc(struct cg_arena *a, size_t n)
{
	struct cg_arena_chunk *c;
	size_t size;
	void *p;

	n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	if (a->head == NULL || a->size - a->used < n) {
		size = n > ARENA_CHUNK / 2 ? n : ARENA_CHUNK;
		c = cg_malloc(sizeof(*c) + size);
		c->size = size;
		c->next = a->head;
		a->head = c;
		a->used = 0;
		a->size = size;
	}
	p = (char *)a->head->data + a->used;
	a->used += n;
	return p;
}

char *
cg_arena_strndup(struct cg_arena *a, const char *s, size_t n)
{
	char *p = cg_arena_alloc(a, n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
cg_arena_printf(struct cg_arena *a, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	char *p;
	int n;

	/* Most strings fit the stack buffer: one formatting pass. */
	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		cg_fatal("arena printf: bad format");
	p = cg_arena_alloc(a, (size_t)n + 1);
	if ((size_t)n < sizeof(small)) {
		memcpy(p, small, (size_t)n + 1);
		return p;
	}
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

void
cg_arena_reset(struct cg_arena *a)
{
	struct cg_arena_chunk *c, *next;

	if (a->head == NULL)
		return;
	/* Keep the oldest chunk (the last in the list): requests usually fit. */
	for (c = a->head; c->next != NULL; c = next) {
		next = c->next;
		free(c);
	}
	a->head = c;
	a->size = c->size;
	a->used = 0;
}

void
cg_arena_free(struct cg_arena *a)
{
	struct cg_arena_chunk *c, *next;

	for (c = a->head; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	a->head = NULL;
	a->used = a->size = 0;
}
