/*
 * fcgi.c: the FastCGI client (responder role): per backend and worker, a
 * pool of kept connections (FCGI_KEEP_CONN), new connections up to
 * max_connections, a bounded wait queue, and the streaming of STDIN and
 * STDOUT with flow control both ways. Records are encoded and parsed by
 * fcgi_proto.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/gateway_int.h"

#define STDIN_HIGH (64 * 1024)		/* stop reading the client's body above */
#define READ_CHUNK 65536
#define REQUEST_ID 1
/* A pooled connection pins one process of a libfcgi application (which
 * serves one connection at a time), so idle ones are given back soon. */
#define POOL_IDLE_SECONDS 2
#define DOWN_SECONDS 10		/* a failed address is passed over this long */

const char *const gw_up_state_names[GW_UP__MAX] = { "queued", "connecting", "idle", "active" };

static void on_io(struct ev_loop *loop, ev_io *w, int revents);
static void on_timer(struct ev_loop *loop, ev_timer *w, int revents);
static void unpool(struct gw_upstream *u);
static void retry(struct gw_upstream *u);
static void count_out(struct gw_upstream *u);
static void fail(struct gw_upstream *u, int status, const char *why);
static void dequeue(struct gw_backend *be);

static void
up_timer(struct gw_upstream *u, int64_t seconds)
{
	ev_timer_stop(gw_worker->loop, &u->timer);
	if (seconds > 0) {
		ev_timer_set(&u->timer, (ev_tstamp)seconds, 0);
		ev_timer_start(gw_worker->loop, &u->timer);
	}
}

static void
up_events(struct gw_upstream *u)
{
	int ev = 0;

	if (u->fd < 0)
		return;
	if (u->state == GW_UP_CONNECTING)
		ev = EV_WRITE;
	else {
		if (!u->paused || u->state == GW_UP_IDLE)
			ev |= EV_READ;
		if (cg_buf_avail(&u->wbuf) > 0)
			ev |= EV_WRITE;
	}
	if (ev_is_active(&u->io) && (u->io.events & (EV_READ | EV_WRITE)) == ev)
		return;
	ev_io_stop(gw_worker->loop, &u->io);
	if (ev) {
		ev_io_set(&u->io, u->fd, ev);
		ev_io_start(gw_worker->loop, &u->io);
	}
}

/* Closes and frees u; its slot may go to a queued request. */
static void
up_close(struct gw_upstream *u)
{
	struct gw_backend *be = u->be;

	ev_io_stop(gw_worker->loop, &u->io);
	ev_timer_stop(gw_worker->loop, &u->timer);
	count_out(u);
	if (u->fd >= 0) {
		close(u->fd);
		be->nopen--;
	}
	cg_buf_free(&u->wbuf);
	free(u);
	dequeue(be);
}

static struct gw_upstream *
up_new(struct gw_backend *be)
{
	struct gw_upstream *u = cg_calloc(1, sizeof(*u));

	u->be = be;
	u->fd = -1;
	ev_init(&u->io, on_io);
	u->io.data = u;
	ev_init(&u->timer, on_timer);
	u->timer.data = u;
	return u;
}

/* The address for u's next attempt: one this request has not tried, up
 * before down, then the fewest requests in flight (ties rotate). -1 when
 * every address was tried. */
static ssize_t
choose_addr(struct gw_upstream *u)
{
	struct gw_backend *be = u->be;
	size_t n = be->def->naddrs, i, k, start = be->rr++;
	ev_tstamp now = ev_now(gw_worker->loop);
	ssize_t best = -1;
	int best_down = 0;

	for (k = 0; k < n; k++) {
		int down;

		i = (start + k) % n;
		if (u->tried & (UINT64_C(1) << i))
			continue;
		down = be->addrs[i].down_until > now;
		if (best < 0 || (best_down && !down) || (best_down == down &&
		    be->addrs[i].inflight < be->addrs[best].inflight)) {
			best = (ssize_t)i;
			best_down = down;
		}
	}
	return best;
}

/* A failed address is passed over for a while; it gets traffic again
 * when it is the only one left, or after DOWN_SECONDS. */
static void
mark_down(struct gw_backend *be, size_t i, const char *why)
{
	if (be->addrs[i].down_until <= ev_now(gw_worker->loop))
		cg_log(CG_LOG_WARN, 0, "backend %s: %s is down for %d s (%s)", be->def->conf->name,
		    be->def->addrs[i].name, DOWN_SECONDS, why);
	be->addrs[i].down_until = ev_now(gw_worker->loop) + DOWN_SECONDS;
}

static void
count_in(struct gw_upstream *u)
{
	if (!u->counted) {
		u->be->addrs[u->addr].inflight++;
		u->counted = 1;
	}
}

static void
count_out(struct gw_upstream *u)
{
	if (u->counted) {
		u->be->addrs[u->addr].inflight--;
		u->counted = 0;
	}
}

/* Opens a connection to the best address that takes it. 0 (connected or
 * connecting) or -1 when every address refused. */
static int
up_connect(struct gw_upstream *u)
{
	struct gw_backend *be = u->be;
	const struct gw_backend_def *def = be->def;
	ssize_t i;
	int fd;

	/* Each address at most once per request, across callbacks too. */
	while ((i = choose_addr(u)) >= 0) {
		const struct gw_addr *a = &def->addrs[i];

		u->tried |= UINT64_C(1) << i;
		fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			cg_log(CG_LOG_ERROR, 0, "backend %s: socket: %s", def->conf->name,
			    strerror(errno));
			return -1;
		}
		if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0 || errno == EINPROGRESS) {
			u->fd = fd;
			u->addr = (size_t)i;
			u->state = errno == EINPROGRESS ? GW_UP_CONNECTING : GW_UP_ACTIVE;
			be->nopen++;
			count_in(u);
			up_timer(u, u->state == GW_UP_CONNECTING ? def->conf->connect_timeout :
			    def->conf->timeout);
			up_events(u);
			return 0;
		}
		mark_down(be, (size_t)i, strerror(errno));
		close(fd);
	}
	return -1;
}

/* An idle pooled connection that the application has not closed. An
 * idle connection's watcher waits for reading: any event means the
 * application closed it (or wrote out of turn), and one this turn of the
 * loop has not delivered yet is pending. That costs no system call, where
 * a recv(MSG_PEEK) per request did; a close that comes later still is
 * the application failing the request (502), as it would be after a peek. */
static struct gw_upstream *
take_idle(struct gw_backend *be)
{
	struct gw_upstream *u;

	while ((u = be->idle) != NULL) {
		be->idle = u->next;
		u->next = NULL;
		if (!ev_is_pending(&u->io))
			return u;
		up_close(u);	/* closed by the application while idle */
	}
	return NULL;
}

/* Gives a request's upstream (queued, with its records buffered) a
 * connection: a pooled one or a new one. 0, or -1 when none can be had. */
static int
up_attach(struct gw_upstream *u)
{
	struct gw_backend *be = u->be;
	struct gw_upstream *idle = take_idle(be);

	if (idle != NULL) {
		ev_io_stop(gw_worker->loop, &idle->io);
		ev_timer_stop(gw_worker->loop, &idle->timer);
		/* u takes over the idle watcher itself: a stopped watcher is plain
		 * data, and one that keeps its descriptor and mask starts again
		 * without an epoll_ctl (ev_io_set on the same descriptor would
		 * make libev ask the kernel again). */
		u->io = idle->io;
		u->io.data = u;
		u->fd = idle->fd;
		u->addr = idle->addr;
		count_in(u);
		u->state = GW_UP_ACTIVE;
		cg_buf_free(&idle->wbuf);
		free(idle);
		up_timer(u, be->def->conf->timeout);
		/* A kept connection is writable: the request goes out from the
		 * callback now, and the socket keeps its mask unless the send
		 * would block. */
		ev_io_start(gw_worker->loop, &u->io);
		ev_feed_event(gw_worker->loop, &u->io, EV_WRITE);
		return 0;
	}
	return up_connect(u);
}

static void up_dispatch(struct gw_upstream *u);

int
gw_fcgi_start(struct gw_request *r)
{
	const struct gw_backend_def *def = r->authorizing ? r->loc->authorizer : r->loc->backend;
	struct gw_backend *be = &gw_worker->backends[def->index];
	struct gw_upstream *u = up_new(be);
	uint8_t begin[16];

	u->req = r;
	r->up = u;
	gw_fcgi_parser_init(&u->parser);
	gw_fcgi_begin_request(begin, REQUEST_ID, r->authorizing ? GW_FCGI_AUTHORIZER :
	    GW_FCGI_RESPONDER, be->keep);
	cg_buf_append(&u->wbuf, begin, sizeof(begin));
	gw_request_params(r, &u->wbuf, REQUEST_ID);
	if (r->body_done || r->authorizing)
		gw_fcgi_stdin_end(u);	/* an authorizer never sees the body */
	/* A body is gathered before the application is asked, until it ends or
	 * STDIN_HIGH of it waits: an upload that trickles in holds a client
	 * connection, never one of the application's (as nginx buffers). */
	if (!u->stdin_done) {
		u->held = 1;
		return 0;
	}
	up_dispatch(u);
	return 0;
}

/* Sends u's request on a connection, or queues it, or answers 503 when the
 * queue is full. */
static void
up_dispatch(struct gw_upstream *u)
{
	struct gw_request *r = u->req;
	struct gw_backend *be = u->be;
	const struct gw_backend_conf *bc = be->def->conf;

	if (be->idle != NULL || be->nopen < be->max_conns) {
		if (up_attach(u) != 0)
			gw_request_fail(r, 502, "no address accepted the connection");
		return;
	}
	if (be->qlen >= (size_t)bc->queue) {
		cg_log(CG_LOG_WARN, r->conn->id, "backend %s: queue full (%zu)", bc->name, be->qlen);
		r->up = NULL;
		free(u->wbuf.data);
		free(u);
		gw_http_error(r->conn, 503, NULL, 0);
		return;
	}
	r->queued = 1;
	if (be->qtail)
		be->qtail->qnext = r;
	else
		be->qhead = r;
	be->qtail = r;
	be->qlen++;
	up_timer(u, bc->timeout);	/* waiting in the queue counts as slowness */
}

static void
unqueue(struct gw_request *r)
{
	struct gw_backend *be = r->up->be;
	struct gw_request **pp;

	for (pp = &be->qhead; *pp != NULL; pp = &(*pp)->qnext)
		if (*pp == r) {
			*pp = r->qnext;
			if (be->qtail == r) {
				struct gw_request *q;

				be->qtail = NULL;
				for (q = be->qhead; q != NULL; q = q->qnext)
					be->qtail = q;
			}
			be->qlen--;
			break;
		}
	r->queued = 0;
	r->qnext = NULL;
}

/* A connection slot freed up: the longest-waiting request takes it. */
static void
dequeue(struct gw_backend *be)
{
	struct gw_request *r;

	while ((r = be->qhead) != NULL &&
	    (be->idle != NULL || be->nopen < be->max_conns)) {
		unqueue(r);
		if (up_attach(r->up) < 0)
			gw_request_fail(r, 502, "no address accepted the connection");
	}
}

void
gw_fcgi_nv_put(void *buf, const char *name, const char *value, size_t vlen)
{
	struct cg_buf *b = buf;
	size_t nlen = strlen(name);

	b->len += gw_fcgi_nv_encode(cg_buf_reserve(b, gw_fcgi_nv_len(nlen, vlen)), name, nlen,
	    value, vlen);
}

void
gw_fcgi_stdin(struct gw_upstream *u, const uint8_t *p, size_t n)
{
	u->wbuf.len += gw_fcgi_frame(cg_buf_reserve(&u->wbuf, gw_fcgi_frame_len(n)), GW_FCGI_STDIN,
	    REQUEST_ID, p, n);
	/* Dispatched from u's own callback, not from inside the HTTP parser. */
	if (u->fd >= 0 || (u->held && (u->stdin_done || gw_fcgi_congested(u))))
		ev_feed_event(gw_worker->loop, &u->io, EV_WRITE);
}

void
gw_fcgi_stdin_end(struct gw_upstream *u)
{
	if (u->stdin_done)
		return;
	u->stdin_done = 1;
	gw_fcgi_stdin(u, NULL, 0);	/* the empty record ends the stream */
}

int
gw_fcgi_congested(const struct gw_upstream *u)
{
	return cg_buf_avail(&u->wbuf) >= STDIN_HIGH;
}

void
gw_fcgi_resume(struct gw_upstream *u)
{
	if (!u->paused)
		return;
	u->paused = 0;
	up_timer(u, u->be->def->conf->timeout);
	up_events(u);
	ev_feed_event(gw_worker->loop, &u->io, EV_READ);	/* data may be waiting */
}

void
gw_fcgi_release(struct gw_request *r, int reusable)
{
	struct gw_upstream *u = r->up;
	struct gw_backend *be;

	if (u == NULL)
		return;
	be = u->be;
	r->up = NULL;
	u->req = NULL;
	if (r->queued) {
		unqueue(r);
		up_close(u);
		return;
	}
	if (!reusable || !be->keep || u->fd < 0 || !u->stdin_done || u->dirty ||
	    cg_buf_avail(&u->wbuf) > 0 || gw_worker->draining) {
		up_close(u);
		return;
	}
	/* Back to the pool: an event now means the application closed it. */
	count_out(u);
	u->state = GW_UP_IDLE;
	u->paused = 0;
	cg_buf_free(&u->wbuf);
	gw_fcgi_parser_init(&u->parser);
	up_timer(u, POOL_IDLE_SECONDS);
	up_events(u);
	u->next = be->idle;
	be->idle = u;
	dequeue(be);
}

static void
fail(struct gw_upstream *u, int status, const char *why)
{
	gw_request_fail(u->req, status, why);
}

/* Writes buffered records; 0, or -1 when the connection failed. */
static int
up_write(struct gw_upstream *u)
{
	ssize_t n;
	int progress = 0;

	while (cg_buf_avail(&u->wbuf) > 0) {
		n = send(u->fd, cg_buf_head(&u->wbuf), cg_buf_avail(&u->wbuf), MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n < 0) {
			cg_log(CG_LOG_ERROR, u->req->conn->id, "backend %s: send: %s",
			    u->be->def->conf->name, strerror(errno));
			return -1;
		}
		cg_buf_consume(&u->wbuf, (size_t)n);
		u->sent += (size_t)n;
		progress = 1;
	}
	if (progress) {
		struct gw_conn *c = u->req->conn;

		up_timer(u, u->be->def->conf->timeout);
		/* The client's body may flow again; once it is all read, there is
		 * nothing to resume (a pipelined request raises its own event). */
		if (!gw_fcgi_congested(u) && (!u->req->body_done || cg_buf_avail(&c->rbuf) > 0))
			gw_conn_resume_input(c);
	}
	return 0;
}

static void
log_stderr(struct gw_upstream *u, const uint8_t *p, size_t n)
{
	char esc[1024];

	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	if (n > 0)
		cg_log(CG_LOG_WARN, u->req->conn->id, "backend %s stderr: %s", u->be->def->conf->name,
		    cg_escape(esc, sizeof(esc), p, n));
}

/* Reads and handles the application's records. 1 when u is gone (the
 * request ended or failed), 0 otherwise. */
static int
up_read(struct gw_upstream *u)
{
	static uint8_t buf[READ_CHUNK];
	struct gw_fcgi_event ev;
	struct gw_request *r = u->req;
	const uint8_t *p;
	ssize_t n;
	size_t used, left;

	while (!u->paused) {
		n = recv(u->fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0) {
			fail(u, 502, n == 0 ? "closed the connection before the end of the request" :
			    strerror(errno));
			return 1;
		}
		up_timer(u, u->be->def->conf->timeout);
		p = buf;
		left = (size_t)n;
		while (left > 0) {
			used = gw_fcgi_parse(&u->parser, REQUEST_ID, p, left, &ev);
			p += used;
			left -= used;
			switch (ev.type) {
			case GW_FCGI_EV_NONE:
				break;
			case GW_FCGI_EV_STDOUT:
				if (gw_request_stdout(r, ev.data, ev.len) < 0) {
					fail(u, 502, "bad CGI response header");
					return 1;
				}
				break;
			case GW_FCGI_EV_STDERR:
				log_stderr(u, ev.data, ev.len);
				break;
			case GW_FCGI_EV_END:
				if (ev.protocol_status != GW_FCGI_REQUEST_COMPLETE) {
					fail(u, 503, "refused the request (overloaded or unknown role)");
					return 1;
				}
				if (left > 0)	/* bytes after the end: not reusable */
					u->dirty = 1;
				gw_request_end(r);
				return 1;
			case GW_FCGI_EV_ERROR:
				fail(u, 502, ev.error);
				return 1;
			case GW_FCGI_EV__MAX:
				break;
			}
		}
		if (gw_conn_congested(r->conn)) {
			/* The client is slower than the application: wait for it. */
			u->paused = 1;
			up_timer(u, 0);
			up_events(u);
		}
		if ((size_t)n < sizeof(buf))
			break;	/* the socket is empty: its next event says when not */
	}
	return 0;
}

/* Drops u's connection and tries the next address with the same records. */
static void
retry(struct gw_upstream *u)
{
	ev_io_stop(gw_worker->loop, &u->io);
	count_out(u);
	close(u->fd);
	u->fd = -1;
	u->be->nopen--;
	if (up_connect(u) < 0)
		fail(u, 502, "no address accepted the connection");
}

static void
on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gw_upstream *u = w->data;
	int err = 0;
	socklen_t len = sizeof(err);

	if (u->held) {
		u->held = 0;	/* the body is all here, or enough of it */
		up_dispatch(u);
		return;
	}
	if (u->state == GW_UP_IDLE) {
		/* The application closed (or wrote to) an idle connection. */
		unpool(u);
		up_close(u);
		return;
	}
	if (u->state == GW_UP_CONNECTING) {
		if (!(revents & EV_WRITE))
			return;
		if (getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
			mark_down(u->be, u->addr, strerror(err));
			retry(u);
			return;
		}
		u->state = GW_UP_ACTIVE;
		up_timer(u, u->be->def->conf->timeout);
	}
	if (cg_buf_avail(&u->wbuf) > 0 && up_write(u) < 0) {
		/* Nothing of the request reached the application: another may
		 * take it whole. Once bytes went out, retrying could run it twice. */
		if (u->sent == 0) {
			retry(u);
			return;
		}
		fail(u, 502, "the connection failed while sending the request");
		return;
	}
	if ((revents & EV_READ) && up_read(u))
		return;
	up_events(u);
}

static void
unpool(struct gw_upstream *u)
{
	struct gw_upstream **pp;

	for (pp = &u->be->idle; *pp != NULL; pp = &(*pp)->next)
		if (*pp == u) {
			*pp = u->next;
			break;
		}
}

static void
on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gw_upstream *u = w->data;

	if (u->state == GW_UP_IDLE) {
		unpool(u);
		up_close(u);
		return;
	}
	if (u->state == GW_UP_CONNECTING) {
		cg_log(CG_LOG_ERROR, u->req->conn->id, "backend %s: connect to %s timed out",
		    u->be->def->conf->name, u->be->def->addrs[u->addr].name);
		fail(u, 504, "connect timeout");
		return;
	}
	fail(u, 504, u->req->queued ? "timed out in the queue" : "timed out");
}

void
gw_fcgi_worker_free(void)
{
	struct gw_upstream *u;
	size_t i;

	for (i = 0; i < gw_worker->cfg->nbackends; i++)
		while ((u = take_idle(&gw_worker->backends[i])) != NULL)
			up_close(u);
}
