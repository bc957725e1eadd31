/*
 * directory.c: asking LDAP directories for a certificate's account (SPEC
 * section 10) without ever stalling a worker's event loop: per directory,
 * a small pool of lookup threads, each owning one libldap connection
 * (kept between lookups, re-established after a failure); the answers come
 * back to the loop through an ev_async watcher, and a per-worker cache
 * (positive and negative TTLs) answers repeated certificates at once.
 *
 * Why threads and not libldap's asynchronous API on the loop: StartTLS
 * (ldap_start_tls_s), the TLS handshake and the bind are synchronous in
 * libldap, and a directory that accepts and never answers would hold the
 * loop for the whole timeout. A thread may wait on the network; the loop
 * never does: besides the thread's own LDAP timeouts, every lookup has a
 * loop timer that answers 503 when the thread has not answered in time.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <ldap.h>

#include "gateway/gateway_int.h"

#define THREADS_PER_DIRECTORY 2
#define QUEUE_MAX 256		/* lookups waiting for a thread; beyond: 503 */
#define CACHE_BUCKETS 1024
#define CACHE_MAX 10000		/* entries per worker; beyond, expired ones go, then all */
#define LOOP_GRACE 0.25		/* the loop's timer runs this much past the thread's deadline */

const char *const gw_dir_outcome_names[GW_DIR__MAX] = {
	"found", "not found", "refused", "unavailable",
};

struct gw_dir_job {
	struct gw_dir_job *next;
	const struct ca_directory *dir;
	size_t index;			/* in gw_config.directories */
	uint8_t key[32];		/* the certificate's SHA-256 */
	struct ca_dir_query q[CA_LOOKUP__MAX];
	size_t nq;
	char *cert_sid;
	double started, deadline;	/* CLOCK_MONOTONIC seconds */
	struct gw_dir_answer *answer;	/* the thread's; read by the loop once done */
	struct cg_strv notes;		/* log lines the loop writes for the thread */
	/* loop thread only */
	struct gw_conn *conn;		/* waiting; NULL once abandoned */
	ev_timer timer;
};

struct pool {
	const struct ca_directory *dir;
	pthread_t threads[THREADS_PER_DIRECTORY];
	size_t nthreads;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct gw_dir_job *head, *tail;
	size_t queued;
	int stopping;
};

struct cache_entry {
	struct cache_entry *next;
	size_t dir;
	uint8_t key[32];
	ev_tstamp expires;
	struct gw_dir_answer *answer;
};

/* One worker process: one loop thread plus the lookup threads. */
static struct {
	struct pool *pools;
	size_t npools;
	pthread_mutex_t done_mu;
	struct gw_dir_job *done;	/* answered, for the loop */
	ev_async async;
	struct cache_entry *cache[CACHE_BUCKETS];
	size_t ncache;
	int started;
} ds = { .done_mu = PTHREAD_MUTEX_INITIALIZER };

static double
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- answers ---- */

static struct gw_dir_answer *
answer_new(enum gw_dir_outcome o)
{
	struct gw_dir_answer *a = cg_calloc(1, sizeof(*a));

	a->refs = 1;
	a->outcome = o;
	a->mapping.method = CA_MAP_NONE;
	return a;
}

struct gw_dir_answer *
gw_dir_answer_ref(struct gw_dir_answer *a)
{
	a->refs++;
	return a;
}

void
gw_dir_answer_unref(struct gw_dir_answer *a)
{
	if (a == NULL || --a->refs > 0)
		return;
	free(a->account);
	free(a->name);
	cg_strv_free(&a->groups);
	cg_strv_free(&a->trace);
	free(a);
}

static void
trace(struct gw_dir_answer *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
trace(struct gw_dir_answer *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		cg_fatal("out of memory");
	va_end(ap);
	cg_strv_push(&a->trace, s);
}

/* ---- one LDAP connection (a lookup thread's) ---- */

struct ldconn {
	LDAP *ld;
	size_t uri;			/* which URI it is connected to */
};

static void
set_timeouts(LDAP *ld, double remaining)
{
	struct timeval tv;

	if (remaining < 0.001)
		remaining = 0.001;
	tv.tv_sec = (time_t)remaining;
	tv.tv_usec = (suseconds_t)((remaining - (double)tv.tv_sec) * 1e6);
	ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
}

static void
note_ldap(struct gw_dir_job *j, LDAP *ld, const char *uri, const char *what, int rc)
{
	char *diag = NULL;

	ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
	cg_strv_push(&j->notes, cg_printf("directory %s: %s: %s: %s (%d)%s%s", j->dir->conf->name,
	    uri, what, ldap_err2string(rc), rc, diag && diag[0] ? ": " : "", diag ? diag : ""));
	ldap_memfree(diag);
}

static void
ld_close(struct ldconn *lc)
{
	if (lc->ld != NULL)
		ldap_unbind_ext_s(lc->ld, NULL, NULL);
	lc->ld = NULL;
}

/* Connects to the first URI that answers, in order: TLS (StartTLS or
 * ldaps://) verified against `ca`, then the simple bind. 0 or -1. */
static int
ld_open(struct ldconn *lc, struct gw_dir_job *j)
{
	const struct ca_directory_conf *c = j->dir->conf;
	const char *pw = j->dir->password ? j->dir->password : "";
	struct berval cred = { strlen(pw), (char *)pw };
	int v3 = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND, zero = 0, rc;
	size_t i;

	for (i = 0; i < c->uri.n; i++) {
		const char *uri = c->uri.v[i];
		int ldaps = strncasecmp(uri, "ldaps://", 8) == 0;
		double remaining = j->deadline - mono_now();
		LDAP *ld = NULL;

		if (remaining <= 0) {
			cg_strv_push(&j->notes, cg_printf("directory %s: no time left to try %s",
			    c->name, uri));
			return -1;
		}
		if ((rc = ldap_initialize(&ld, uri)) != LDAP_SUCCESS) {
			cg_strv_push(&j->notes, cg_printf("directory %s: %s: %s (%d)", c->name, uri,
			    ldap_err2string(rc), rc));
			continue;
		}
		ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
		ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
		set_timeouts(ld, remaining);
		if (ldaps || c->start_tls) {
			ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, c->ca.v[0]);
			ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
			ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
		}
		if (!ldaps && c->start_tls && (rc = ldap_start_tls_s(ld, NULL, NULL)) != LDAP_SUCCESS) {
			/* libldap says no more than "Connect error" when the
			 * certificate does not verify. */
			note_ldap(j, ld, uri, rc == LDAP_CONNECT_ERROR ? "StartTLS (TLS handshake "
			    "failed: a certificate not signed by ca, or not naming the host?)" :
			    "StartTLS", rc);
			ldap_unbind_ext_s(ld, NULL, NULL);
			continue;
		}
		set_timeouts(ld, j->deadline - mono_now());
		rc = ldap_sasl_bind_s(ld, c->bind_dn[0] ? c->bind_dn : NULL, LDAP_SASL_SIMPLE, &cred,
		    NULL, NULL, NULL);
		if (rc != LDAP_SUCCESS) {
			note_ldap(j, ld, uri, "bind", rc);
			ldap_unbind_ext_s(ld, NULL, NULL);
			continue;
		}
		lc->ld = ld;
		lc->uri = i;
		return 0;
	}
	return -1;
}

/* Errors after which the connection is not to be trusted again. */
static int
conn_error(int rc)
{
	return rc == LDAP_SERVER_DOWN || rc == LDAP_TIMEOUT || rc == LDAP_CONNECT_ERROR ||
	    rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY || rc == LDAP_LOCAL_ERROR ||
	    rc == LDAP_UNWILLING_TO_PERFORM || rc == LDAP_OTHER;
}

static const char *
first_value(LDAP *ld, LDAPMessage *e, const char *attr, struct berval ***keep)
{
	struct berval **v = ldap_get_values_len(ld, e, attr);

	*keep = v;
	return v != NULL && v[0] != NULL ? v[0]->bv_val : NULL;
}

/* Which of the query's values the entry holds: 1 when a strong one, else
 * 0 (also when the server matched by its own rules and we cannot tell
 * which value: the weaker reading). *format names the value. */
static int
matched_strength(LDAP *ld, LDAPMessage *e, const struct ca_dir_query *q, const char **format)
{
	struct berval **v = ldap_get_values_len(ld, e, q->attribute);
	const char *weak = NULL, *strong = NULL;
	size_t i, k;

	for (k = 0; v != NULL && v[k] != NULL; k++)
		for (i = 0; i < q->n; i++) {
			if (strlen(q->v[i].value) != v[k]->bv_len ||
			    strncasecmp(q->v[i].value, v[k]->bv_val, v[k]->bv_len) != 0)
				continue;
			if (q->v[i].strong && strong == NULL)
				strong = q->v[i].format;
			else if (!q->v[i].strong && weak == NULL)
				weak = q->v[i].format;
		}
	ldap_value_free_len(v);
	*format = strong ? strong : weak ? weak : "(a value the server matched)";
	return strong != NULL;
}

/* The one entry a lookup found: account, groups, SID, and how it counts. */
static void
judge_entry(LDAP *ld, LDAPMessage *e, struct gw_dir_job *j, const struct ca_dir_query *q,
    struct gw_dir_answer *a)
{
	const struct ca_directory_conf *c = j->dir->conf;
	struct berval **acct = NULL, **sidv = NULL, **groups = NULL;
	const char *account = first_value(ld, e, c->account_attribute, &acct), *format;
	char sid[200], *dn = ldap_get_dn(ld, e);
	const char *entry_sid = NULL;
	enum ca_dir_verdict v;
	int strong = matched_strength(ld, e, q, &format);
	size_t i;

	sidv = ldap_get_values_len(ld, e, "objectSid");
	if (sidv != NULL && sidv[0] != NULL) {
		if (ca_sid_to_string((const uint8_t *)sidv[0]->bv_val, sidv[0]->bv_len, sid,
		    sizeof(sid)) == 0)
			entry_sid = sid;
		else if (sidv[0]->bv_len < sizeof(sid) && sidv[0]->bv_len > 4 &&
		    strncmp(sidv[0]->bv_val, "S-1-", 4) == 0) {
			memcpy(sid, sidv[0]->bv_val, sidv[0]->bv_len);	/* already text */
			sid[sidv[0]->bv_len] = '\0';
			entry_sid = sid;
		}
	}
	v = ca_dir_judge((enum ca_dir_binding)c->strong_binding, strong, j->cert_sid, entry_sid);
	trace(a, "entry: %s %s=%s objectSid=%s matched %s (%s): %s", dn ? dn : "?",
	    c->account_attribute, account ? account : "(none)", entry_sid ? entry_sid : "(none)",
	    format, strong ? "strong" : "weak", ca_dir_verdict_names[v]);
	a->name = cg_printf("%s:%s", c->name, q->attribute);
	a->mapping.method = CA_MAP_DIRECTORY;
	a->mapping.name = a->name;
	snprintf(a->mapping.why, sizeof(a->mapping.why), "directory %s: %s %s matched %s: %s",
	    c->name, q->attribute, format, dn ? dn : "?", ca_dir_verdict_names[v]);
	if (v == CA_DIR_REFUSED_SID || v == CA_DIR_REFUSED_WEAK || account == NULL) {
		if (account == NULL)
			snprintf(a->mapping.why, sizeof(a->mapping.why), "directory %s: %s matched "
			    "%s, which has no %s", c->name, q->attribute, dn ? dn : "?",
			    c->account_attribute);
		a->outcome = GW_DIR_REFUSED;
		a->mapping.deny = 1;
	} else {
		a->outcome = GW_DIR_FOUND;
		a->account = cg_strdup(account);
		a->mapping.user = a->account;
		a->mapping.strong = v == CA_DIR_STRONG;
		a->weak_logged = v == CA_DIR_WEAK &&
		    c->strong_binding == CA_BIND_COMPAT;	/* the loop warns */
		if (c->groups_attribute[0] != '\0')
			groups = ldap_get_values_len(ld, e, c->groups_attribute);
		for (i = 0; groups != NULL && groups[i] != NULL; i++)
			cg_strv_push(&a->groups, cg_strndup(groups[i]->bv_val, groups[i]->bv_len));
		a->mapping.groups = &a->groups;
	}
	ldap_value_free_len(acct);
	ldap_value_free_len(sidv);
	ldap_value_free_len(groups);
	ldap_memfree(dn);
}

/* One search; LDAP_SUCCESS with *res, or the error. */
static int
search(struct ldconn *lc, struct gw_dir_job *j, const struct ca_dir_query *q, LDAPMessage **res)
{
	static const int scopes[CA_SCOPE__MAX] = { LDAP_SCOPE_SUBTREE, LDAP_SCOPE_ONELEVEL,
	    LDAP_SCOPE_BASE };
	const struct ca_directory_conf *c = j->dir->conf;
	char *attrs[5];
	size_t na = 0;
	double remaining = j->deadline - mono_now();
	struct timeval tv;
	int rc;

	if (remaining <= 0)
		return LDAP_TIMEOUT;
	attrs[na++] = c->account_attribute;
	attrs[na++] = "objectSid";
	attrs[na++] = (char *)q->attribute;
	if (c->groups_attribute[0] != '\0')
		attrs[na++] = c->groups_attribute;
	attrs[na] = NULL;
	set_timeouts(lc->ld, remaining);
	tv.tv_sec = (time_t)remaining;
	tv.tv_usec = (suseconds_t)((remaining - (double)tv.tv_sec) * 1e6);
	/* Two entries are enough to know there is more than one. */
	rc = ldap_search_ext_s(lc->ld, c->base, scopes[c->scope], q->filter, attrs, 0, NULL, NULL,
	    &tv, 2, res);
	if (rc == LDAP_SIZELIMIT_EXCEEDED)
		rc = LDAP_SUCCESS;
	if (rc != LDAP_SUCCESS) {
		note_ldap(j, lc->ld, c->uri.v[lc->uri], "search", rc);
		ldap_msgfree(*res);
		*res = NULL;
	}
	return rc;
}

/* A lookup, on a lookup thread (or explain's): the queries in the order of
 * `lookups`; the first that finds entries decides. */
static struct gw_dir_answer *
lookup(struct ldconn *lc, struct gw_dir_job *j)
{
	struct gw_dir_answer *a = answer_new(GW_DIR_NOT_FOUND);
	size_t i;
	int rc, retried = 0, n;

	for (i = 0; i < j->nq; i++) {
		const struct ca_dir_query *q = &j->q[i];
		LDAPMessage *res = NULL;

		if (q->n == 0) {
			trace(a, "lookup %s: the certificate has no value to look up", q->attribute);
			continue;
		}
		trace(a, "lookup %s: filter %s", q->attribute, q->filter);
		for (;;) {
			if (lc->ld == NULL && ld_open(lc, j) < 0) {
				a->outcome = GW_DIR_UNAVAILABLE;
				return a;
			}
			rc = search(lc, j, q, &res);
			if (rc == LDAP_SUCCESS)
				break;
			ld_close(lc);
			/* A kept connection may have died while idle: one fresh try. */
			if (!conn_error(rc) || retried++ > 0) {
				a->outcome = GW_DIR_UNAVAILABLE;
				return a;
			}
		}
		n = ldap_count_entries(lc->ld, res);
		trace(a, "lookup %s: %d entr%s", q->attribute, n, n == 1 ? "y" : n > 1 ?
		    "ies (or more): refused" : "ies");
		if (n == 1) {
			judge_entry(lc->ld, ldap_first_entry(lc->ld, res), j, q, a);
		} else if (n > 1) {
			a->outcome = GW_DIR_REFUSED;
			a->name = cg_printf("%s:%s", j->dir->conf->name, q->attribute);
			a->mapping.method = CA_MAP_DIRECTORY;
			a->mapping.name = a->name;
			a->mapping.deny = 1;
			snprintf(a->mapping.why, sizeof(a->mapping.why), "directory %s: %s matched "
			    "several entries", j->dir->conf->name, q->attribute);
		}
		ldap_msgfree(res);
		if (n > 0)
			break;
	}
	return a;
}

/* ---- the lookup threads ---- */

/* libldap's global state, set up once before any thread uses it, without
 * ldap.conf or ~/.ldaprc: what certgate's configuration says is all that
 * applies (a system-wide TLS_REQCERT never could weaken it). */
static void
ldap_global_init(void)
{
	int v;

	setenv("LDAPNOINIT", "1", 1);
	ldap_get_option(NULL, LDAP_OPT_PROTOCOL_VERSION, &v);
}

static void *
pool_thread(void *arg)
{
	struct pool *p = arg;
	struct ldconn lc = { NULL, 0 };
	struct gw_dir_job *j;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (p->head == NULL && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stopping) {
			pthread_mutex_unlock(&p->mu);
			break;
		}
		j = p->head;
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		p->queued--;
		pthread_mutex_unlock(&p->mu);

		if (mono_now() >= j->deadline) {
			j->answer = answer_new(GW_DIR_UNAVAILABLE);
			cg_strv_push(&j->notes, cg_printf("directory %s: the lookup waited its whole "
			    "timeout for a thread", j->dir->conf->name));
		} else {
			j->answer = lookup(&lc, j);
		}
		j->next = NULL;
		pthread_mutex_lock(&ds.done_mu);
		j->next = ds.done;
		ds.done = j;
		pthread_mutex_unlock(&ds.done_mu);
		ev_async_send(gw_worker->loop, &ds.async);
	}
	ld_close(&lc);
	return NULL;
}

static void
job_free(struct gw_dir_job *j)
{
	size_t i;

	for (i = 0; i < j->nq; i++)
		ca_dir_query_free(&j->q[i]);
	free(j->cert_sid);
	cg_strv_free(&j->notes);
	gw_dir_answer_unref(j->answer);
	free(j);
}

static struct gw_dir_job *
job_new(const struct ca_directory *d, size_t index, const struct ca_facts *f, double timeout)
{
	struct gw_dir_job *j = cg_calloc(1, sizeof(*j));
	size_t i;

	j->dir = d;
	j->index = index;
	memcpy(j->key, f->sha256, sizeof(j->key));
	for (i = 0; i < d->nlookups; i++)
		ca_dir_query_build(f, d->lookups[i], &j->q[j->nq++]);
	j->cert_sid = f->sid ? cg_strdup(f->sid) : NULL;
	j->started = mono_now();
	j->deadline = j->started + timeout;
	return j;
}

/* ---- the cache (loop thread only) ---- */

static size_t
bucket(size_t dir, const uint8_t key[32])
{
	size_t h;

	memcpy(&h, key, sizeof(h));	/* a SHA-256 is spread enough */
	return (h ^ dir) % CACHE_BUCKETS;
}

static void
cache_drop(struct cache_entry **pp)
{
	struct cache_entry *e = *pp;

	*pp = e->next;
	gw_dir_answer_unref(e->answer);
	free(e);
	ds.ncache--;
}

static void
cache_purge(int all)
{
	ev_tstamp now = ev_now(gw_worker->loop);
	size_t b;

	for (b = 0; b < CACHE_BUCKETS; b++) {
		struct cache_entry **pp = &ds.cache[b];

		while (*pp != NULL)
			if (all || (*pp)->expires <= now)
				cache_drop(pp);
			else
				pp = &(*pp)->next;
	}
}

static struct gw_dir_answer *
cache_get(size_t dir, const uint8_t key[32])
{
	struct cache_entry **pp = &ds.cache[bucket(dir, key)];

	for (; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->dir != dir || memcmp((*pp)->key, key, 32) != 0)
			continue;
		if ((*pp)->expires <= ev_now(gw_worker->loop)) {
			cache_drop(pp);	/* never used past its TTL */
			return NULL;
		}
		return gw_dir_answer_ref((*pp)->answer);
	}
	return NULL;
}

/* Outages are never cached: only the directory's answers, each with its TTL. */
static void
cache_put(size_t dir, const uint8_t key[32], struct gw_dir_answer *a, int64_t ttl)
{
	struct cache_entry *e;
	size_t b = bucket(dir, key);

	if (ttl <= 0 || a->outcome == GW_DIR_UNAVAILABLE)
		return;
	for (e = ds.cache[b]; e != NULL; e = e->next)
		if (e->dir == dir && memcmp(e->key, key, 32) == 0)
			break;
	if (e == NULL) {
		if (ds.ncache >= CACHE_MAX)
			cache_purge(0);
		if (ds.ncache >= CACHE_MAX)
			cache_purge(1);
		e = cg_calloc(1, sizeof(*e));
		e->dir = dir;
		memcpy(e->key, key, 32);
		e->next = ds.cache[b];
		ds.cache[b] = e;
		ds.ncache++;
	} else {
		gw_dir_answer_unref(e->answer);
	}
	e->answer = gw_dir_answer_ref(a);
	e->expires = ev_now(gw_worker->loop) + (ev_tstamp)ttl;
}

/* ---- the loop side ---- */

static void
deliver(struct gw_dir_job *j, struct gw_dir_answer *a)
{
	struct gw_conn *c = j->conn;

	j->conn = NULL;
	ev_timer_stop(gw_worker->loop, &j->timer);
	if (c == NULL)
		return;
	c->auth.dir_job = NULL;
	c->auth.dir_answer = gw_dir_answer_ref(a);
	gw_request_mapped(c);
}

static void
on_done(struct ev_loop *loop, ev_async *w, int revents)
{
	struct gw_dir_job *list, *j;

	pthread_mutex_lock(&ds.done_mu);
	list = ds.done;
	ds.done = NULL;
	pthread_mutex_unlock(&ds.done_mu);
	while ((j = list) != NULL) {
		const struct ca_directory_conf *c = j->dir->conf;
		uint64_t id = j->conn ? j->conn->id : 0;
		size_t i;

		list = j->next;
		cg_log(CG_LOG_DEBUG, id, "directory %s: %s in %.2f ms", c->name,
		    gw_dir_outcome_names[j->answer->outcome], (mono_now() - j->started) * 1e3);
		for (i = 0; i < j->notes.n; i++)
			cg_log(CG_LOG_ERROR, id, "%s", j->notes.v[i]);
		if (j->answer->outcome == GW_DIR_UNAVAILABLE)
			cg_log(CG_LOG_ERROR, id, "directory %s: cannot answer", c->name);
		else if (j->answer->weak_logged)
			cg_log(CG_LOG_WARN, id, "directory %s: weak mapping accepted for %s "
			    "(strong_binding compatibility): %s", c->name, j->answer->account,
			    j->answer->mapping.why);
		cache_put(j->index, j->key, j->answer, j->answer->outcome == GW_DIR_FOUND ?
		    c->cache_ttl : c->negative_ttl);
		deliver(j, j->answer);
		job_free(j);
	}
}

/* The loop's own bound: the thread has not answered in time. The job
 * stays with its thread, which frees nothing of the connection's. */
static void
on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gw_dir_job *j = w->data;
	struct gw_dir_answer *a = answer_new(GW_DIR_UNAVAILABLE);

	cg_log(CG_LOG_ERROR, j->conn ? j->conn->id : 0, "directory %s: no answer within %lld s",
	    j->dir->conf->name, (long long)j->dir->conf->timeout);
	deliver(j, a);
	gw_dir_answer_unref(a);
}

struct gw_dir_answer *
gw_dir_lookup(struct gw_conn *c, size_t index, const struct ca_facts *f)
{
	const struct ca_directory *d = &gw_worker->cfg->directories[index];
	struct pool *p = &ds.pools[index];
	struct gw_dir_answer *a = cache_get(index, f->sha256);
	struct gw_dir_job *j;

	if (a != NULL) {
		cg_log(CG_LOG_DEBUG, c->id, "directory %s: cached answer: %s", d->conf->name,
		    gw_dir_outcome_names[a->outcome]);
		return a;
	}
	pthread_mutex_lock(&p->mu);
	if (p->queued >= QUEUE_MAX) {
		pthread_mutex_unlock(&p->mu);
		cg_log(CG_LOG_ERROR, c->id, "directory %s: %d lookups already wait: refused",
		    d->conf->name, QUEUE_MAX);
		return answer_new(GW_DIR_UNAVAILABLE);
	}
	j = job_new(d, index, f, (double)d->conf->timeout);
	j->conn = c;
	ev_timer_init(&j->timer, on_timeout, (ev_tstamp)d->conf->timeout + LOOP_GRACE, 0);
	j->timer.data = j;
	ev_timer_start(gw_worker->loop, &j->timer);
	c->auth.dir_job = j;
	if (p->tail != NULL)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->queued++;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

void
gw_dir_cancel(struct gw_dir_job *j)
{
	if (j == NULL)
		return;
	j->conn = NULL;
	ev_timer_stop(gw_worker->loop, &j->timer);
}

void
gw_dir_worker_start(void)
{
	const struct gw_config *cfg = gw_worker->cfg;
	size_t i, k;
	int rc;

	if (cfg->ndirectories == 0)
		return;
	ldap_global_init();
	ev_async_init(&ds.async, on_done);
	ev_async_start(gw_worker->loop, &ds.async);
	ev_unref(gw_worker->loop);	/* never keeps a draining worker alive */
	ds.pools = cg_calloc(cfg->ndirectories, sizeof(*ds.pools));
	ds.npools = cfg->ndirectories;
	for (i = 0; i < ds.npools; i++) {
		struct pool *p = &ds.pools[i];

		p->dir = &cfg->directories[i];
		pthread_mutex_init(&p->mu, NULL);
		pthread_cond_init(&p->cv, NULL);
		for (k = 0; k < THREADS_PER_DIRECTORY; k++) {
			if ((rc = pthread_create(&p->threads[k], NULL, pool_thread, p)) != 0)
				cg_fatal("directory %s: pthread_create: %s", p->dir->conf->name,
				    strerror(rc));
			p->nthreads++;
		}
	}
	ds.started = 1;
}

void
gw_dir_worker_stop(void)
{
	size_t i, k;

	if (!ds.started)
		return;
	for (i = 0; i < ds.npools; i++) {
		struct pool *p = &ds.pools[i];

		pthread_mutex_lock(&p->mu);
		p->stopping = 1;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
	/* A thread inside a lookup ends within that lookup's timeout. */
	for (i = 0; i < ds.npools; i++) {
		struct pool *p = &ds.pools[i];
		struct gw_dir_job *j;

		for (k = 0; k < p->nthreads; k++)
			pthread_join(p->threads[k], NULL);
		while ((j = p->head) != NULL) {
			p->head = j->next;
			job_free(j);
		}
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
	}
	on_done(gw_worker->loop, &ds.async, 0);	/* frees what was answered */
	ev_async_stop(gw_worker->loop, &ds.async);
	cache_purge(1);
	free(ds.pools);
	ds.pools = NULL;
	ds.started = 0;
}

/* ---- explain ---- */

struct gw_dir_answer *
gw_dir_lookup_sync(const struct ca_directory *d, const struct ca_facts *f, int network,
    struct cg_strv *notes)
{
	struct gw_dir_job *j = job_new(d, 0, f, (double)d->conf->timeout);
	struct ldconn lc = { NULL, 0 };
	struct gw_dir_answer *a;
	size_t i;

	ldap_global_init();
	if (network) {
		a = lookup(&lc, j);
		ld_close(&lc);
	} else {
		a = answer_new(GW_DIR_UNAVAILABLE);
		for (i = 0; i < j->nq; i++)
			if (j->q[i].n > 0)
				trace(a, "lookup %s: filter %s (not sent: --no-directory)",
				    j->q[i].attribute, j->q[i].filter);
			else
				trace(a, "lookup %s: the certificate has no value to look up",
				    j->q[i].attribute);
	}
	for (i = 0; i < j->notes.n; i++)
		cg_strv_push(notes, cg_strdup(j->notes.v[i]));
	job_free(j);
	return a;
}
