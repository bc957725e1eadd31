/*
 * worker.c: a worker process: drops privileges, accepts connections on the
 * inherited listeners and runs them on its libev loop. SIGQUIT from the
 * master drains it: stop accepting, let requests in flight finish (bounded by
 * shutdown_timeout), exit.
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/gateway_int.h"

struct gw_worker *gw_worker;

static void
accept_stop_all(void)
{
	size_t i;

	for (i = 0; i < gw_worker->cfg->nlisteners; i++)
		ev_io_stop(gw_worker->loop, &gw_worker->accept_io[i]);
}

static void
accept_start_all(void)
{
	size_t i;

	for (i = 0; i < gw_worker->cfg->nlisteners; i++)
		ev_io_start(gw_worker->loop, &gw_worker->accept_io[i]);
}

static void
on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gw_listener *l = w->data;
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, n;

	/* A bounded batch: other listeners and connections get their turn. */
	for (n = 0; n < 64; n++) {
		if (gw_worker->nconns >= gw_worker->max_conns) {
			accept_stop_all();
			return;
		}
		len = sizeof(ss);
		fd = accept4(w->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return;
			cg_log(CG_LOG_ERROR, 0, "accept on %s: %s", l->name, strerror(errno));
			return;
		}
		gw_conn_accept(l, fd, &ss);
	}
}

void
gw_worker_conn_closed(void)
{
	if (gw_worker->draining) {
		if (gw_worker->nconns == 0)
			ev_break(gw_worker->loop, EVBREAK_ALL);
		return;
	}
	if (gw_worker->nconns + 1 == gw_worker->max_conns)
		accept_start_all();
}

static void
on_stop_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	cg_log(CG_LOG_WARN, 0, "worker %d: shutdown_timeout passed with %zu connection(s) open",
	    (int)getpid(), gw_worker->nconns);
	ev_break(loop, EVBREAK_ALL);
}

static void
on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	size_t i;

	if (w->signum == SIGUSR1) {
		if (cg_log_reopen() < 0 || gw_alog_open(gw_worker->cfg->raw.access_log) < 0)
			cg_log(CG_LOG_ERROR, 0, "worker %d: cannot reopen logs: %s", (int)getpid(),
			    strerror(errno));
		return;
	}
	if (gw_worker->draining)
		return;
	gw_worker->draining = 1;
	accept_stop_all();
	for (i = 0; i < gw_worker->cfg->nlisteners; i++) {
		close(gw_worker->cfg->listeners[i].fd);
		gw_worker->cfg->listeners[i].fd = -1;
	}
	gw_conn_close_idle_all();
	/* Pooled application connections pin application processes that the
	 * next generation of workers needs. */
	gw_fcgi_worker_free();
	if (gw_worker->nconns == 0) {
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	ev_timer_set(&gw_worker->stop_timer, (ev_tstamp)gw_worker->cfg->raw.shutdown_timeout, 0);
	ev_timer_start(loop, &gw_worker->stop_timer);
}

/* Each turn of the loop ends here, before it waits for events. */
static void
on_before_wait(struct ev_loop *loop, ev_prepare *w, int revents)
{
	gw_alog_flush();
}

static void
drop_privileges(const struct gw_config *cfg)
{
	if (getuid() != 0)
		return;
	if (setgroups(1, &cfg->gid) < 0 || setgid(cfg->gid) < 0 || setuid(cfg->uid) < 0)
		cg_fatal("cannot drop privileges to %s:%s: %s", cfg->raw.user, cfg->raw.group,
		    strerror(errno));
	if (cfg->uid != 0 && setuid(0) == 0)
		cg_fatal("privileges were not dropped");
}

void
gw_worker_init(struct gw_worker *w, struct gw_config *cfg)
{
	size_t i;

	gw_worker = w;
	w->cfg = cfg;
	w->loop = ev_default_loop(EVFLAG_AUTO);
	w->max_conns = (size_t)cfg->raw.limits.max_connections;
	w->next_id = ((uint64_t)getpid() << 24) + 1;
	w->accept_io = cg_calloc(cfg->nlisteners, sizeof(*w->accept_io));
	for (i = 0; i < cfg->nlisteners; i++) {
		ev_io_init(&w->accept_io[i], on_accept, cfg->listeners[i].fd, EV_READ);
		w->accept_io[i].data = &cfg->listeners[i];
	}
	w->backends = cg_calloc(cfg->nbackends, sizeof(*w->backends));
	for (i = 0; i < cfg->nbackends; i++) {
		const struct gw_backend_conf *bc = cfg->backends[i].conf;
		size_t share = (size_t)bc->max_connections;

		/* A spawned libfcgi process serves one connection at a time: the
		 * workers together keep no more connections than there are
		 * processes, else one worker's pooled connection starves another's
		 * request. */
		if (bc->spawn != NULL && (size_t)(bc->spawn->processes / cfg->workers) < share)
			share = (size_t)(bc->spawn->processes / cfg->workers);
		w->backends[i].def = &cfg->backends[i];
		w->backends[i].max_conns = share > 0 ? share : 1;
		/* Fewer processes than workers: a connection kept by one worker
		 * would hold a process another worker's request waits for. */
		w->backends[i].keep = bc->keep_connections &&
		    (bc->spawn == NULL || bc->spawn->processes >= (int64_t)cfg->workers);
		w->backends[i].addrs = cg_calloc(cfg->backends[i].naddrs,
		    sizeof(*w->backends[i].addrs));
	}
	ev_timer_init(&w->stop_timer, on_stop_timer, 0, 0);
	ev_prepare_init(&w->before_wait, on_before_wait);
	ev_prepare_start(w->loop, &w->before_wait);
	ev_unref(w->loop);	/* the loop ends without waiting on it */
}

void
gw_worker_run(struct gw_config *cfg)
{
	static struct gw_worker w;
	sigset_t none;
	size_t i;

	/* The master's loop may have blocked signals it watches (signalfd). */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	drop_privileges(cfg);
	gw_worker_init(&w, cfg);
	/* Only the master stops a worker (SIGQUIT), also when it dies; a ^C or
	 * a SIGTERM sent to the whole process group is the master's to handle. */
	ev_signal_init(&w.sig_quit, on_signal, SIGQUIT);
	ev_signal_init(&w.sig_usr1, on_signal, SIGUSR1);
	ev_signal_start(w.loop, &w.sig_quit);
	ev_signal_start(w.loop, &w.sig_usr1);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGQUIT);
	if (getppid() == 1)
		raise(SIGQUIT);	/* the master died before prctl */
	gw_sandbox_worker();
	gw_auth_crl_timer_start();
	gw_dir_worker_start();
	accept_start_all();

	ev_run(w.loop, 0);

	/* Whatever is left after shutdown_timeout is cut here. */
	while (w.conns != NULL)
		gw_conn_close(w.conns, GW_CLOSE_SHUTDOWN);
	gw_alog_flush();
	gw_dir_worker_stop();
	gw_fcgi_worker_free();
	gw_auth_worker_free();
	for (i = 0; i < cfg->nbackends; i++)
		free(w.backends[i].addrs);
	free(w.backends);
	free(w.accept_io);
	gw_config_free(cfg);
	ev_loop_destroy(w.loop);
	exit(0);
}
