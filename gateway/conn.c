/*
 * conn.c: client connections: accept, a balancer's PROXY protocol header,
 * the TLS handshake, reading and
 * writing (plain or TLS), the one timer every wait has, lingering close,
 * and the single exit door gw_conn_close(). Writes are deferred to the
 * connection's own callback (ev_feed_event), so code that produces output
 * never frees the connection under its caller.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/gateway_int.h"

#define READ_CHUNK 16384
#define TLS_WRITE_MAX 16384
#define WBUF_HIGH (256 * 1024)		/* stop reading the application above */
#define PIPELINE_MAX (64 * 1024)	/* unparsed pipelined input we hold */
#define RBUF_MAX (64 * 1024)		/* input read ahead of the parser */
#define LINGER_SECONDS 2.0
#define TRIM_SECONDS 0.25		/* idle this long, a connection lets go of its buffers */
#define REAUTH_BUFFER_MAX (64 * 1024)	/* request bytes held during a deferred
					   certificate exchange; more is 413 */

const char *const gw_conn_state_names[GW_CONN__MAX] = {
	"proxy", "handshake", "head", "active", "linger", "reauth",
};

const char *const gw_close_reason_names[GW_CLOSE__MAX] = {
	"done", "handshake failed", "timeout", "I/O error", "TLS error", "response aborted",
	"shutdown", "PROXY header refused",
};

enum timer_mode {
	TM_NONE, TM_PROXY, TM_HANDSHAKE, TM_TRIM, TM_IDLE, TM_HEAD, TM_BODY, TM_SEND, TM_LINGER
};

static void on_io(struct ev_loop *loop, ev_io *w, int revents);
static void on_timer(struct ev_loop *loop, ev_timer *w, int revents);
static void trim_if_idle(struct gw_conn *c);

void
gw_sockaddr_name(const struct sockaddr_storage *ss, char *out, size_t outlen, int *port)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)outlen);
		*port = ntohs(in6->sin6_port);
	} else if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &in->sin_addr, out, (socklen_t)outlen);
		*port = ntohs(in->sin_port);
	} else {
		snprintf(out, outlen, "unix");
		*port = 0;
	}
}

static void
set_timer(struct gw_conn *c, enum timer_mode mode, int restart)
{
	const struct gw_limits_conf *lim = &gw_worker->cfg->raw.limits;
	ev_tstamp t = 0;

	if ((int)mode == c->timer_mode && !restart)
		return;
	switch (mode) {
	case TM_NONE: break;
	case TM_PROXY: t = (ev_tstamp)gw_worker->cfg->raw.proxy.header_timeout; break;
	case TM_HANDSHAKE: t = (ev_tstamp)lim->handshake_timeout; break;
	case TM_TRIM: t = TRIM_SECONDS; break;
	case TM_IDLE: t = (ev_tstamp)lim->keepalive_timeout; break;
	case TM_HEAD: t = (ev_tstamp)lim->header_timeout; break;
	case TM_BODY: t = (ev_tstamp)lim->body_timeout; break;
	case TM_SEND: t = (ev_tstamp)lim->send_timeout; break;
	case TM_LINGER: t = LINGER_SECONDS; break;
	}
	c->timer_mode = mode;
	ev_timer_stop(gw_worker->loop, &c->timer);
	if (mode != TM_NONE) {
		ev_timer_set(&c->timer, t, 0);
		ev_timer_start(gw_worker->loop, &c->timer);
	}
}

/* Whether the connection should read from its socket now. */
static int
want_read(const struct gw_conn *c)
{
	const struct gw_request *r = c->req;

	switch (c->state) {
	case GW_CONN_PROXY:
	case GW_CONN_HANDSHAKE:
	case GW_CONN_LINGER:
		return 1;
	case GW_CONN_REAUTH:
		return 0;	/* gw_tls_reauth_step reads */
	case GW_CONN_HEAD:
		return !c->closing && cg_buf_avail(&c->rbuf) < RBUF_MAX;
	case GW_CONN_ACTIVE:
		/* Never read further ahead of the parser than RBUF_MAX: the
		 * socket's buffers, not certgate's memory, hold the rest. */
		if (c->closing || c->read_eof || cg_buf_avail(&c->rbuf) >= RBUF_MAX)
			return 0;
		if (r != NULL && !r->body_done && !c->input_paused)
			return !r->authorizing && !r->mapping_wait &&
			    (r->up == NULL || !gw_fcgi_congested(r->up));
		return cg_buf_avail(&c->rbuf) < PIPELINE_MAX;
	case GW_CONN__MAX:
		break;
	}
	return 0;
}

/* Chooses the timer for what the connection now waits for. progress:
 * bytes moved, which restarts the body and send timers. */
static void
arm(struct gw_conn *c, int progress)
{
	const struct gw_request *r = c->req;

	if (c->state == GW_CONN_PROXY || c->state == GW_CONN_HANDSHAKE ||
	    c->state == GW_CONN_REAUTH)
		return;			/* one deadline for the whole header or handshake */
	if (c->state == GW_CONN_LINGER)
		set_timer(c, TM_LINGER, 0);
	else if (cg_buf_avail(&c->wbuf) > 0)
		set_timer(c, TM_SEND, progress);
	else if (c->state == GW_CONN_HEAD && (c->head_started || c->nreq == 0))
		/* A head begun, or a new connection's first request, is owed
		 * within header_timeout. */
		set_timer(c, TM_HEAD, 0);
	else if (c->state == GW_CONN_HEAD && c->timer_mode == TM_IDLE)
		/* Keep-alive runs already, and no record without a request in it
		 * restarts it; what reading one took is let go at once. */
		trim_if_idle(c);
	else if (c->state == GW_CONN_HEAD)
		/* Between requests keep-alive applies until a byte comes; it
		 * begins with the trim step. */
		set_timer(c, TM_TRIM, 0);
	else if (r != NULL && !r->body_done && want_read(c))
		set_timer(c, TM_BODY, progress);
	else
		set_timer(c, TM_NONE, 0);
}

static void
update_io(struct gw_conn *c)
{
	int ev = 0;

	if (c->state == GW_CONN_HANDSHAKE || c->state == GW_CONN_REAUTH) {
		ev = gnutls_record_get_direction(c->tls) ? EV_WRITE : EV_READ;
	} else {
		if (want_read(c) && !c->read_eof)
			ev |= EV_READ;
		if (cg_buf_avail(&c->wbuf) > 0)
			ev |= EV_WRITE;
	}
	/* Input GnuTLS holds (decrypted, or read ahead by tls.c) raises no
	 * event on the socket. GnuTLS also stops with GNUTLS_E_AGAIN after a
	 * record when a handshake message continues in the next one, whether
	 * or not the socket is empty. */
	if (c->tls != NULL && (ev & EV_READ) && gw_tls_pending(c) > 0)
		ev_feed_event(gw_worker->loop, &c->io, EV_READ);
	if (ev == (c->io.events & (EV_READ | EV_WRITE)) && ev_is_active(&c->io))
		return;
	ev_io_stop(gw_worker->loop, &c->io);
	if (ev) {
		ev_io_modify(&c->io, ev);
		ev_io_start(gw_worker->loop, &c->io);
	}
}

/* The client's protocol begins: the TLS handshake or the first request.
 * -1 when c was closed. */
static int
start_protocol(struct gw_conn *c)
{
	if (c->lst->tls) {
		if (gw_tls_session_new(c) < 0) {
			gw_conn_close(c, GW_CLOSE_HANDSHAKE);
			return -1;
		}
		c->state = GW_CONN_HANDSHAKE;
		set_timer(c, TM_HANDSHAKE, 1);
	} else {
		c->state = GW_CONN_HEAD;
		gw_http_init(c);
		set_timer(c, TM_HEAD, 1);
	}
	return 0;
}

int
gw_listener_is_wildcard(const struct gw_listener *l)
{
	const struct sockaddr_storage *ss = &l->addr.ss;

	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return 0;
}

void
gw_conn_accept(struct gw_listener *l, int fd, const struct sockaddr_storage *ss)
{
	struct gw_conn *c = cg_calloc(1, sizeof(*c));

	c->id = gw_worker->next_id++;
	c->fd = fd;
	c->lst = l;
	c->site = l->default_site;
	gw_sockaddr_name(ss, c->peer_addr, sizeof(c->peer_addr), &c->peer_port);
	ev_io_init(&c->io, on_io, fd, EV_READ);
	c->io.data = c;
	ev_timer_init(&c->timer, on_timer, 0, 0);
	c->timer.data = c;
	c->next = gw_worker->conns;
	if (c->next)
		c->next->prev = c;
	gw_worker->conns = c;
	gw_worker->nconns++;
	cg_log(CG_LOG_DEBUG, c->id, "accepted %s:%d on %s", c->peer_addr, c->peer_port, l->name);
	if (l->proxy) {
		/* The source is checked before a byte of the header is read. */
		if (!gw_cidr_match(gw_worker->cfg->proxy_trusted, gw_worker->cfg->nproxy_trusted,
		    (const struct sockaddr *)ss)) {
			cg_log(CG_LOG_WARN, c->id, "connection from %s:%d to %s refused: not a "
			    "trusted source of PROXY headers (proxy_protocol.trusted)", c->peer_addr,
			    c->peer_port, l->name);
			gw_conn_close(c, GW_CLOSE_PROXY);
			return;
		}
		c->state = GW_CONN_PROXY;
		set_timer(c, TM_PROXY, 1);
	} else if (start_protocol(c) < 0) {
		return;
	}
	ev_io_start(gw_worker->loop, &c->io);
}

void
gw_conn_close(struct gw_conn *c, enum gw_close_reason why)
{
	struct gw_request *r = c->req;

	/* Refused PROXY headers were logged with their reason already. */
	cg_log(why == GW_CLOSE_DONE || why == GW_CLOSE_HANDSHAKE || why == GW_CLOSE_PROXY ?
	    CG_LOG_DEBUG : CG_LOG_INFO,
	    c->id, "closed (%s) in state %s", gw_close_reason_names[why],
	    gw_conn_state_names[c->state]);
	if (r != NULL) {
		if (!r->resp_done && r->method != NULL) {
			if (r->status == 0)
				r->status = 499;	/* the client went away first */
			gw_request_log(r);
		}
		gw_request_free(r);
		c->req = NULL;
	}
	ev_io_stop(gw_worker->loop, &c->io);
	ev_timer_stop(gw_worker->loop, &c->timer);
	if (c->tls)
		gnutls_deinit(c->tls);
	gw_auth_free(&c->auth);
	close(c->fd);
	cg_buf_free(&c->tin);
	cg_buf_free(&c->rbuf);
	cg_buf_free(&c->wbuf);
	cg_buf_free(&c->hbuf);
	cg_arena_free(&c->arena);
	if (c->prev)
		c->prev->next = c->next;
	else
		gw_worker->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	gw_worker->nconns--;
	free(c);
	gw_worker_conn_closed();
}

/*
 * Whole TLS records of a large write go from the caller's buffer straight
 * into GnuTLS when nothing waits in wbuf before them: a 1 MiB response is
 * not copied into wbuf first (that copy was ~4% of a worker's time on
 * 1 MiB GETs). The rest, and whatever the socket does not take, is
 * buffered; a record GnuTLS has sealed but could not send stays at the
 * head of wbuf, where the flush offers it again as GnuTLS requires. This
 * never closes c: an error is met again, and acted on, by the flush.
 */
void
gw_conn_write(struct gw_conn *c, const void *p, size_t n)
{
	const uint8_t *q = p;
	ssize_t rc;

	if (c->tls != NULL && c->state == GW_CONN_ACTIVE && cg_buf_avail(&c->wbuf) == 0)
		while (n >= TLS_WRITE_MAX) {
			rc = gnutls_record_send(c->tls, q, TLS_WRITE_MAX);
			if (rc <= 0)
				break;
			q += rc;
			n -= (size_t)rc;
		}
	if (n > 0)
		cg_buf_append(&c->wbuf, q, n);
	ev_feed_event(gw_worker->loop, &c->io, EV_WRITE);	/* events merge */
}

int
gw_conn_congested(const struct gw_conn *c)
{
	return cg_buf_avail(&c->wbuf) >= WBUF_HIGH;
}

void
gw_conn_resume_input(struct gw_conn *c)
{
	ev_feed_event(gw_worker->loop, &c->io, EV_READ);
}

/*
 * A keep-alive connection idle for TRIM_SECONDS holds no buffer: an idle
 * connection then costs its struct and its TLS session only, which is what
 * lets one worker keep thousands of them. A busy one keeps its buffers and
 * its encoded variables from one request to the next (freeing them after
 * every response was a tenth of a worker's time on small requests). A new
 * connection holds nothing while its first request has not come.
 */
static void
trim_if_idle(struct gw_conn *c)
{
	if (c->state != GW_CONN_HEAD || c->req != NULL || c->head_started ||
	    cg_buf_avail(&c->rbuf) != 0 || cg_buf_avail(&c->wbuf) != 0 ||
	    cg_buf_avail(&c->tin) != 0)
		return;
	cg_buf_free(&c->tin);
	cg_buf_free(&c->rbuf);
	cg_buf_free(&c->wbuf);
	cg_buf_free(&c->hbuf);
	cg_arena_free(&c->arena);
	gw_auth_trim(&c->auth);
}

static void
start_linger(struct gw_conn *c)
{
	if (c->tls)
		gnutls_bye(c->tls, GNUTLS_SHUT_WR);	/* best effort, non-blocking */
	shutdown(c->fd, SHUT_WR);
	c->state = GW_CONN_LINGER;
	c->closing = 0;
	cg_buf_clear(&c->rbuf);
}

int
gw_conn_flush(struct gw_conn *c)
{
	size_t avail, n;
	ssize_t rc;
	int progress = 0;

	while ((avail = cg_buf_avail(&c->wbuf)) > 0) {
		if (c->tls) {
			n = avail < TLS_WRITE_MAX ? avail : TLS_WRITE_MAX;
			rc = gnutls_record_send(c->tls, cg_buf_head(&c->wbuf), n);
			if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
				break;
			if (rc < 0) {
				cg_log(CG_LOG_DEBUG, c->id, "TLS send: %s (%d)",
				    gnutls_strerror((int)rc), (int)rc);
				gw_conn_close(c, GW_CLOSE_TLS);
				return -1;
			}
		} else {
			rc = send(c->fd, cg_buf_head(&c->wbuf), avail, MSG_NOSIGNAL);
			if (rc < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (rc < 0) {
				cg_log(CG_LOG_DEBUG, c->id, "send: %s", strerror(errno));
				gw_conn_close(c, GW_CLOSE_IO);
				return -1;
			}
		}
		cg_buf_consume(&c->wbuf, (size_t)rc);
		progress = 1;
	}
	if (cg_buf_avail(&c->wbuf) == 0 && c->closing) {
		if (c->req == NULL || c->req->resp_done || c->rst_to_linger) {
			start_linger(c);
		} else {
			/* Aborted mid-response: the client must see a cut, not an end. */
			gw_conn_close(c, GW_CLOSE_ABORT);
			return -1;
		}
	}
	if (progress && c->req != NULL && c->req->up != NULL && !gw_conn_congested(c))
		gw_fcgi_resume(c->req->up);
	arm(c, progress);
	return 0;
}

/* Reads what the socket has; 1 bytes came, 0 nothing (would block), -1 c
 * was closed. */
static int
conn_read(struct gw_conn *c)
{
	ssize_t rc;
	int got = 0;
	uint8_t *p;

	while (want_read(c) && !c->read_eof) {
		p = cg_buf_reserve(&c->rbuf, READ_CHUNK);
		if (c->tls) {
			rc = gnutls_record_recv(c->tls, p, READ_CHUNK);
			if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
				break;
			if (rc == GNUTLS_E_REHANDSHAKE)
				continue;	/* a client's renegotiation is refused silently */
			if (rc < 0) {
				if (c->state == GW_CONN_LINGER ||
				    (c->state == GW_CONN_HEAD && !c->head_started)) {
					gw_conn_close(c, GW_CLOSE_DONE);
				} else {
					cg_log(CG_LOG_DEBUG, c->id, "TLS recv: %s (%d)",
					    gnutls_strerror((int)rc), (int)rc);
					gw_conn_close(c, GW_CLOSE_TLS);
				}
				return -1;
			}
		} else {
			rc = recv(c->fd, p, READ_CHUNK, 0);
			if (rc < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (rc < 0) {
				gw_conn_close(c, c->state == GW_CONN_LINGER ? GW_CLOSE_DONE :
				    GW_CLOSE_IO);
				return -1;
			}
		}
		if (rc == 0) {
			c->read_eof = 1;
			break;
		}
		if (c->state != GW_CONN_LINGER) {	/* else discarded */
			c->rbuf.len += (size_t)rc;
			got = 1;
		}
		/* A short read emptied the socket (GnuTLS reads exactly a record,
		 * and says what it decrypted ahead): asking again would only
		 * return EAGAIN. The loop's epoll is level-triggered, so whatever
		 * comes next raises an event. */
		if (rc < READ_CHUNK && (c->tls == NULL || gw_tls_pending(c) == 0))
			break;
	}
	if (c->nreq == 0)
		trim_if_idle(c);	/* nothing asked yet: nothing held */
	if (c->read_eof) {
		if (c->state == GW_CONN_LINGER ||
		    (c->state == GW_CONN_HEAD && cg_buf_avail(&c->rbuf) == 0)) {
			gw_conn_close(c, GW_CLOSE_DONE);
			return -1;
		}
		if (c->state == GW_CONN_ACTIVE && c->req && !c->req->body_done &&
		    cg_buf_avail(&c->rbuf) == 0) {
			/* The client gave up in the middle of its body. */
			gw_conn_close(c, GW_CLOSE_IO);
			return -1;
		}
	}
	return got;
}

/* The balancer's header applies: the client's addresses replace the
 * balancer's, for the variables and every log line after this one. */
static void
proxy_apply(struct gw_conn *c, const struct gw_pp_header *h)
{
	char via[64], dst[64];
	int via_port, dst_port;

	if (h->command == GW_PP_LOCAL || h->family == AF_UNSPEC) {
		/* A health check, or a header without usable addresses: the
		 * connection is the balancer's own. */
		cg_log(CG_LOG_DEBUG, c->id, "PROXY v%d %s from %s:%d: served as the balancer's own",
		    h->version, h->command == GW_PP_LOCAL ? "LOCAL" : "without addresses",
		    c->peer_addr, c->peer_port);
		return;
	}
	memcpy(via, c->peer_addr, sizeof(via));
	via_port = c->peer_port;
	gw_sockaddr_name(&h->src, c->peer_addr, sizeof(c->peer_addr), &c->peer_port);
	c->local = h->dst;
	c->has_local = 1;
	gw_sockaddr_name(&h->dst, dst, sizeof(dst), &dst_port);
	cg_log(CG_LOG_INFO, c->id, "PROXY v%d from %s:%d: client %s:%d to %s:%d%s", h->version,
	    via, via_port, c->peer_addr, c->peer_port, dst, dst_port,
	    h->has_crc ? " (CRC32C checked)" : "");
}

/* Reads the PROXY header, never a byte past it: what is peeked is taken
 * only as far as the parser says the header goes, so the TLS layer (or
 * the HTTP parser) reads the client's first byte from the socket itself. */
static void
proxy_io(struct gw_conn *c)
{
	size_t have = cg_buf_avail(&c->rbuf), take = 0;
	struct gw_pp_header h;
	enum gw_pp_status st;
	enum gw_pp_err err = GW_PP_E_NONE;
	uint8_t *p = cg_buf_reserve(&c->rbuf, GW_PP_MAX - have);
	ssize_t n;

	n = recv(c->fd, p, GW_PP_MAX - have, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* A balancer's plain TCP check connects and leaves: not news. */
		if (have > 0 || n < 0)
			cg_log(CG_LOG_INFO, c->id, "PROXY header from %s:%d cut short: %s",
			    c->peer_addr, c->peer_port, n < 0 ? strerror(errno) : "end of stream");
		gw_conn_close(c, n == 0 && have == 0 ? GW_CLOSE_DONE : GW_CLOSE_PROXY);
		return;
	}
	st = gw_pp_parse(cg_buf_head(&c->rbuf), have + (size_t)n, &h, &err);
	if (st == GW_PP_DONE && h.len < have) {
		st = GW_PP_ERROR;	/* cannot happen: MORE promised the bytes were the header's */
		err = GW_PP_E_SIGNATURE;
	}
	if (st == GW_PP_MORE)
		take = (size_t)n;
	else if (st == GW_PP_DONE)
		take = h.len - have;
	if (take > 0 && recv(c->fd, p, take, 0) != (ssize_t)take) {
		cg_log(CG_LOG_INFO, c->id, "PROXY header from %s:%d: read failed: %s", c->peer_addr,
		    c->peer_port, strerror(errno));
		gw_conn_close(c, GW_CLOSE_PROXY);
		return;
	}
	c->rbuf.len += take;
	if (st == GW_PP_MORE)
		return;
	if (st == GW_PP_ERROR) {
		cg_log(CG_LOG_INFO, c->id, "PROXY header from %s:%d refused: %s", c->peer_addr,
		    c->peer_port, gw_pp_err_names[err]);
		gw_conn_close(c, GW_CLOSE_PROXY);
		return;
	}
	cg_buf_clear(&c->rbuf);
	proxy_apply(c, &h);
	if (start_protocol(c) < 0)
		return;
	update_io(c);
}

static int
has_peer_cert(struct gw_conn *c)
{
	unsigned n = 0;

	return gnutls_certificate_get_peers(c->tls, &n) != NULL && n > 0;
}

/* A deferred certificate request in progress. Data the client sends
 * meanwhile (its body, or the next request) is held, up to a bound. */
static void
reauth_io(struct gw_conn *c)
{
	ssize_t n;
	int rc;

	if (c->timer_mode != TM_HANDSHAKE)
		set_timer(c, TM_HANDSHAKE, 1);
	for (;;) {
		rc = gw_tls_reauth_step(c);
		if (rc == 0) {
			update_io(c);
			return;
		}
		if (rc == 1)
			break;
		if (rc != GNUTLS_E_GOT_APPLICATION_DATA) {
			gw_conn_close(c, GW_CLOSE_TLS);
			return;
		}
		n = gnutls_record_recv(c->tls, cg_buf_reserve(&c->rbuf, READ_CHUNK), READ_CHUNK);
		if (n > 0)
			c->rbuf.len += (size_t)n;
		else if (n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED) {
			cg_log(CG_LOG_DEBUG, c->id, "TLS recv during the certificate request: %s (%d)",
			    gnutls_strerror((int)n), (int)n);
			gw_conn_close(c, GW_CLOSE_TLS);
			return;
		}
		if (cg_buf_avail(&c->rbuf) > REAUTH_BUFFER_MAX) {
			c->state = GW_CONN_ACTIVE;
			gw_http_error(c, 413, NULL, 1);
			update_io(c);
			return;
		}
	}
	/* Whatever came (a certificate or none), certauth decides now. */
	gw_auth_free(&c->auth);
	gw_auth_verify(c);
	c->timer_mode = TM_NONE;
	ev_timer_stop(gw_worker->loop, &c->timer);
	if (gw_request_resume(c) < 0)
		return;
	if (cg_buf_avail(&c->rbuf) > 0 && gw_http_process(c) < 0)
		return;
	if (cg_buf_avail(&c->wbuf) > 0 && gw_conn_flush(c) < 0)
		return;
	arm(c, 1);
	update_io(c);
}

static void
on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gw_conn *c = w->data;
	int rc, got;

	if (c->state == GW_CONN_PROXY) {
		proxy_io(c);
		return;
	}
	if (c->state == GW_CONN_REAUTH) {
		reauth_io(c);
		return;
	}
	if (c->state == GW_CONN_HANDSHAKE) {
		rc = gw_tls_handshake(c);
		if (rc < 0) {
			gw_conn_close(c, GW_CLOSE_HANDSHAKE);
			return;
		}
		if (rc == 0) {
			update_io(c);
			return;
		}
		c->state = GW_CONN_HEAD;
		/* A resumed session brings its certificate without a handshake
		 * callback: verified here, against today's CRLs. A deferred site
		 * has asked for nothing yet, unless the session carries one. */
		if (c->site->client_auth == GW_CA_REQUEST || c->site->client_auth == GW_CA_REQUIRE ||
		    (c->site->client_auth == GW_CA_DEFERRED && has_peer_cert(c)))
			gw_auth_verify(c);
		gw_http_init(c);
		set_timer(c, TM_HEAD, 1);	/* the first request is expected now */
		revents |= EV_READ;		/* GnuTLS may hold early data already */
	}
	/* A closing connection is finished by the flush, even with nothing left
	 * to write. */
	if ((revents & EV_WRITE) || cg_buf_avail(&c->wbuf) > 0 || c->closing)
		if (gw_conn_flush(c) < 0)
			return;
	if (revents & EV_READ) {
		got = conn_read(c);
		if (got < 0)
			return;
		if (cg_buf_avail(&c->rbuf) > 0 && gw_http_process(c) < 0)
			return;
		if (cg_buf_avail(&c->wbuf) > 0 && gw_conn_flush(c) < 0)
			return;
		if (c->read_eof && c->state == GW_CONN_HEAD && cg_buf_avail(&c->rbuf) == 0 &&
		    cg_buf_avail(&c->wbuf) == 0) {
			gw_conn_close(c, GW_CLOSE_DONE);
			return;
		}
		arm(c, got);
	}
	update_io(c);
}

static void
on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gw_conn *c = w->data;
	ev_tstamp t;

	switch (c->timer_mode) {
	case TM_PROXY:
		cg_log(CG_LOG_INFO, c->id, "no complete PROXY header from %s:%d within %lld s",
		    c->peer_addr, c->peer_port, (long long)gw_worker->cfg->raw.proxy.header_timeout);
		gw_conn_close(c, GW_CLOSE_PROXY);
		return;
	case TM_HEAD:
		if (c->req == NULL) {
			gw_conn_close(c, GW_CLOSE_TIMEOUT);	/* nothing to answer */
			return;
		}
		/* FALLTHROUGH */
	case TM_BODY:
		c->timer_mode = TM_NONE;
		if (!c->req->head_sent) {
			cg_log(CG_LOG_INFO, c->id, "%s timeout from %s",
			    c->state == GW_CONN_HEAD ? "header" : "body", c->peer_addr);
			gw_http_error(c, 408, NULL, 1);
			if (gw_conn_flush(c) == 0)
				update_io(c);
			return;
		}
		break;
	case TM_TRIM:
		/* Keep-alive still counts from the end of the response. */
		trim_if_idle(c);
		c->timer_mode = TM_IDLE;
		t = (ev_tstamp)gw_worker->cfg->raw.limits.keepalive_timeout - TRIM_SECONDS;
		ev_timer_set(&c->timer, t > 0 ? t : 0, 0);
		ev_timer_start(gw_worker->loop, &c->timer);
		return;
	case TM_IDLE:
	case TM_LINGER:
		gw_conn_close(c, GW_CLOSE_DONE);
		return;
	default:
		break;
	}
	gw_conn_close(c, GW_CLOSE_TIMEOUT);
}

void
gw_conn_request_done(struct gw_conn *c)
{
	struct gw_request *r = c->req;

	gw_request_log(r);
	c->nreq++;
	if (!r->body_done || !c->keepalive || gw_worker->draining) {
		c->keepalive = 0;
		c->closing = 1;
		c->rst_to_linger = 1;
		ev_feed_event(gw_worker->loop, &c->io, EV_WRITE);
		return;
	}
	gw_request_free(r);
	c->req = NULL;
	cg_arena_reset(&c->arena);
	c->state = GW_CONN_HEAD;
	c->head_started = cg_buf_avail(&c->rbuf) > 0;
	c->input_paused = 0;
	c->timer_mode = TM_NONE;	/* keep-alive counts from this response */
	arm(c, 0);
	/* Pipelined input is parsed from the callback, not from here; with
	 * nothing buffered, the socket's next event starts the next request. */
	ev_feed_event(gw_worker->loop, &c->io, cg_buf_avail(&c->rbuf) > 0 ||
	    (c->tls && gw_tls_pending(c) > 0) ? EV_READ | EV_WRITE : EV_WRITE);
}

void
gw_conn_close_idle_all(void)
{
	struct gw_conn *c, *next;

	for (c = gw_worker->conns; c != NULL; c = next) {
		next = c->next;
		/* Idle between requests: close. A new connection still gets its
		 * first request served, since its client cannot know to retry. */
		if (c->state == GW_CONN_HEAD && !c->head_started && c->nreq > 0 &&
		    cg_buf_avail(&c->wbuf) == 0)
			gw_conn_close(c, GW_CLOSE_SHUTDOWN);
		else
			c->keepalive = 0;
	}
}
