/*
 * master.c: the master process. It binds the listeners, opens the logs,
 * starts the workers and supervises them; it reloads (SIGHUP) by starting a
 * new generation of workers on the new snapshot and letting the old one
 * drain, so listening sockets never close and no connection is refused.
 * A changed tls.ticket_key_file reloads the same way.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gateway/gateway_int.h"

/* Seconds between looks at tls.ticket_key_file for a change. */
#define TICKET_KEY_CHECK 5.0

struct worker_slot {
	pid_t pid;
	unsigned gen;
	ev_tstamp started;
};

static struct {
	struct ev_loop *loop;
	const char *path;
	struct gw_config *cfg;
	unsigned gen;
	struct worker_slot *w;		/* current and draining workers */
	size_t nw;
	int stopping, apps_stopping;
	ev_signal sig_hup, sig_term, sig_int, sig_usr1;
	ev_child child;
	ev_timer stop_timer, respawn_timer, key_timer;
	struct gw_file_id key_seen;	/* the ticket key file last acted on */
} m;

gnutls_datum_t gw_ticket_key;

static int
bind_listener(struct gw_listener *l)
{
	int fd, on = 1;

	fd = socket(l->addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (l->addr.ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	/* Accepted connections inherit it (Linux): replies are never held
	 * back for a delayed ACK, and accept costs no setsockopt. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&l->addr.ss, l->addr.len) < 0 || listen(fd, 1024) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	l->fd = fd;
	return 0;
}

/* Gives cfg its listening sockets: taken over from old where the address
 * is the same, bound anew otherwise. On failure nothing changes. */
static int
take_listeners(struct gw_config *cfg, struct gw_config *old)
{
	size_t i, j;

	for (i = 0; i < cfg->nlisteners; i++) {
		struct gw_listener *l = &cfg->listeners[i];

		for (j = 0; old && j < old->nlisteners; j++) {
			struct gw_listener *o = &old->listeners[j];

			if (o->fd >= 0 && o->addr.len == l->addr.len &&
			    memcmp(&o->addr.ss, &l->addr.ss, l->addr.len) == 0) {
				l->fd = o->fd;
				break;
			}
		}
		if (l->fd < 0 && bind_listener(l) < 0) {
			cg_log(CG_LOG_ERROR, 0, "cannot listen on %s: %s", l->name, strerror(errno));
			goto fail;
		}
	}
	/* Committed: the old snapshot lets go of what cfg took, closes the rest. */
	for (j = 0; old && j < old->nlisteners; j++) {
		struct gw_listener *o = &old->listeners[j];
		int taken = 0;

		for (i = 0; i < cfg->nlisteners; i++)
			taken |= cfg->listeners[i].fd == o->fd;
		if (!taken && o->fd >= 0)
			close(o->fd);
		o->fd = -1;
	}
	return 0;
fail:
	for (i = 0; i < cfg->nlisteners; i++) {
		int shared = 0;

		for (j = 0; old && j < old->nlisteners; j++)
			shared |= old->listeners[j].fd == cfg->listeners[i].fd;
		if (!shared && cfg->listeners[i].fd >= 0)
			close(cfg->listeners[i].fd);
		cfg->listeners[i].fd = -1;
	}
	return -1;
}

static void
close_listeners(struct gw_config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->nlisteners; i++)
		if (cfg->listeners[i].fd >= 0) {
			close(cfg->listeners[i].fd);
			cfg->listeners[i].fd = -1;
		}
}

static void
chown_log(const char *target, const struct gw_config *cfg)
{
	if (getuid() != 0 || target[0] != '/')
		return;
	if (chown(target, cfg->uid, cfg->gid) < 0)
		cg_log(CG_LOG_WARN, 0, "cannot chown %s: %s", target, strerror(errno));
}

static int
open_logs(struct gw_config *cfg)
{
	cg_log_level = (enum cg_log_level)cfg->raw.log_level;
	if (cg_log_open(cfg->raw.error_log) < 0) {
		cg_log(CG_LOG_ERROR, 0, "cannot open error log %s: %s", cfg->raw.error_log,
		    strerror(errno));
		return -1;
	}
	if (gw_alog_open(cfg->raw.access_log) < 0) {
		cg_log(CG_LOG_ERROR, 0, "cannot open access log %s: %s", cfg->raw.access_log,
		    strerror(errno));
		return -1;
	}
	chown_log(cfg->raw.error_log, cfg);
	chown_log(cfg->raw.access_log, cfg);
	return 0;
}

static void
spawn_worker(size_t slot)
{
	pid_t pid;

	pid = fork();
	if (pid < 0) {
		cg_log(CG_LOG_ERROR, 0, "fork: %s", strerror(errno));
		m.w[slot].pid = 0;
		return;
	}
	if (pid == 0) {
		/* libev keeps signal watchers in process-wide tables: stop the
		 * master's before the worker makes its own loop. */
		ev_loop_fork(m.loop);
		ev_signal_stop(m.loop, &m.sig_hup);
		ev_signal_stop(m.loop, &m.sig_term);
		ev_signal_stop(m.loop, &m.sig_int);
		ev_signal_stop(m.loop, &m.sig_usr1);
		ev_child_stop(m.loop, &m.child);
		ev_loop_destroy(m.loop);
		gw_worker_run(m.cfg);
	}
	m.w[slot].pid = pid;
	m.w[slot].gen = m.gen;
	m.w[slot].started = ev_now(m.loop);
}

static void
start_generation(void)
{
	int i;

	m.gen++;
	for (i = 0; i < m.cfg->workers; i++) {
		m.w = cg_realloc(m.w, (m.nw + 1) * sizeof(*m.w));
		memset(&m.w[m.nw], 0, sizeof(m.w[m.nw]));
		spawn_worker(m.nw++);
	}
}

static void
signal_workers(int sig, int old_only)
{
	size_t i;

	for (i = 0; i < m.nw; i++)
		if (m.w[i].pid > 0 && (!old_only || m.w[i].gen != m.gen))
			kill(m.w[i].pid, sig);
}

/* 0 when the new configuration runs, -1 when the old one stays. */
static int
reload(void)
{
	struct cg_errors errs = { NULL, 0 };
	struct gw_config *cfg, *old = m.cfg;
	size_t i;

	cg_log(CG_LOG_INFO, 0, "reloading %s", m.path);
	cfg = gw_config_load(m.path, &errs);
	if (cfg == NULL) {
		for (i = 0; i < errs.n; i++)
			cg_log(CG_LOG_ERROR, 0, "reload: %s", errs.v[i]);
		cg_log(CG_LOG_ERROR, 0, "reload failed: the running configuration stays");
		cg_errors_free(&errs);
		return -1;
	}
	if (take_listeners(cfg, old) < 0) {
		cg_log(CG_LOG_ERROR, 0, "reload failed: the running configuration stays");
		gw_config_free(cfg);
		return -1;
	}
	if (open_logs(cfg) < 0)
		cg_log(CG_LOG_WARN, 0, "reload: keeping the previous log files");
	m.cfg = cfg;
	if (gw_spawn_apply(cfg, m.loop) < 0)
		cg_log(CG_LOG_ERROR, 0, "reload: some applications could not be started");
	/* New workers start before the old ones stop accepting. */
	start_generation();
	signal_workers(SIGQUIT, 1);
	gw_config_free(old);
	m.key_seen = cfg->ticket_key_id;
	cg_log(CG_LOG_INFO, 0, "reloaded: generation %u", m.gen);
	return 0;
}

/* A new ticket key file (written in place or moved over the old one) is a
 * reload: the new generation of workers issues and accepts tickets under
 * the new key. A file that fails to load is tried again only once it
 * changes again. */
static void
on_key_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	const char *path = m.cfg->raw.tls.ticket_key_file;
	struct gw_file_id now;

	if (m.stopping || path[0] == '\0')
		return;
	if (gw_file_id_get(path, &now) < 0) {
		if (m.key_seen.ino != 0)
			cg_log(CG_LOG_WARN, 0, "tls.ticket_key_file %s: %s (the key in use stays)",
			    path, strerror(errno));
		memset(&m.key_seen, 0, sizeof(m.key_seen));
		return;
	}
	if (memcmp(&now, &m.key_seen, sizeof(now)) == 0)
		return;
	cg_log(CG_LOG_INFO, 0, "tls.ticket_key_file %s changed: reloading", path);
	/* A file that fails to load is tried again only once it changes again. */
	if (reload() < 0)
		m.key_seen = now;
}

/* Stopping: workers first (they finish their requests), then the
 * applications they were talking to. */
static void
maybe_exit(void)
{
	size_t i;

	for (i = 0; i < m.nw; i++)
		if (m.w[i].pid > 0)
			return;
	if (!m.apps_stopping) {
		m.apps_stopping = 1;
		gw_spawn_stop_all(SIGTERM);
	}
	if (gw_spawn_running() == 0)
		ev_break(m.loop, EVBREAK_ALL);
}

static void
on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	switch (w->signum) {
	case SIGHUP:
		if (!m.stopping)
			(void)reload();	/* logged; the old configuration stays */
		break;
	case SIGUSR1:
		if (open_logs(m.cfg) < 0)
			cg_log(CG_LOG_ERROR, 0, "log reopen failed");
		signal_workers(SIGUSR1, 0);
		break;
	case SIGTERM:
	case SIGINT:
		if (m.stopping)
			break;
		m.stopping = 1;
		cg_log(CG_LOG_INFO, 0, "stopping (signal %d)", w->signum);
		close_listeners(m.cfg);
		signal_workers(SIGQUIT, 0);
		ev_timer_set(&m.stop_timer, (ev_tstamp)m.cfg->raw.shutdown_timeout + 1, 0);
		ev_timer_start(loop, &m.stop_timer);
		maybe_exit();
		break;
	}
}

static void
on_stop_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	cg_log(CG_LOG_WARN, 0, "shutdown_timeout passed: killing the remaining processes");
	signal_workers(SIGKILL, 0);
	gw_spawn_stop_all(SIGKILL);
}

static void
respawn_missing(void)
{
	size_t i;

	for (i = 0; i < m.nw; i++)
		if (m.w[i].pid == 0 && m.w[i].gen == m.gen)
			spawn_worker(i);
}

static void
on_respawn_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	if (!m.stopping)
		respawn_missing();
}

/* libev reaps children for its child watchers; one watcher for any pid. */
static void
on_child(struct ev_loop *loop, ev_child *w, int revents)
{
	pid_t pid = w->rpid;
	int status = w->rstatus;
	size_t i, j;

	if (gw_spawn_child_exited(pid, status)) {
		if (m.stopping)
			maybe_exit();
		return;
	}
	for (i = 0; i < m.nw; i++)
		if (m.w[i].pid == pid)
			break;
	if (i < m.nw) {
		m.w[i].pid = 0;
		if (m.w[i].gen == m.gen && !m.stopping) {
			cg_log(CG_LOG_ERROR, 0, "worker %d died (%s %d): starting another", (int)pid,
			    WIFSIGNALED(status) ? "signal" : "exit",
			    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
			/* A worker dying at once is not restarted in a tight loop. */
			if (ev_now(loop) - m.w[i].started < 1.0) {
				if (!ev_is_active(&m.respawn_timer)) {
					ev_timer_set(&m.respawn_timer, 1.0, 0);
					ev_timer_start(loop, &m.respawn_timer);
				}
			} else {
				spawn_worker(i);
			}
		} else {
			cg_log(CG_LOG_DEBUG, 0, "worker %d of generation %u exited", (int)pid,
			    m.w[i].gen);
		}
	}
	/* Drop the slots of finished generations; when the last old worker is
	 * gone, the applications only it used may stop. */
	for (i = j = 0; i < m.nw; i++)
		if (m.w[i].pid > 0 || m.w[i].gen == m.gen)
			m.w[j++] = m.w[i];
	m.nw = j;
	for (i = 0; i < m.nw; i++)
		if (m.w[i].gen != m.gen)
			break;
	if (i == m.nw && !m.stopping)
		gw_spawn_release();
	if (m.stopping)
		maybe_exit();
}

static int
daemonize(void)
{
	pid_t pid;
	int fd;

	if ((pid = fork()) < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	if ((pid = fork()) < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		if (strcmp(m.cfg->raw.error_log, "stderr") != 0)
			dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	return 0;
}

static void
write_pid_file(const char *path)
{
	FILE *f;

	if (path[0] == '\0')
		return;
	if ((f = fopen(path, "w")) == NULL) {
		cg_log(CG_LOG_ERROR, 0, "cannot write pid file %s: %s", path, strerror(errno));
		return;
	}
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
}

/* Each connection costs a descriptor (two with an application): take
 * what the hard limit allows, as max_connections expects. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			cg_log(CG_LOG_WARN, 0, "cannot raise the descriptor limit: %s",
			    strerror(errno));
	}
}

int
gw_master_run(const char *path, struct gw_config *cfg)
{
	char *pid_file;
	int rc;

	m.path = path;
	m.cfg = cfg;
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	if (open_logs(cfg) < 0)
		return 1;
	if (take_listeners(cfg, NULL) < 0)
		return 1;
	/* One ticket key for all workers and generations, so a session resumes
	 * whichever worker accepts the connection, before and after reloads. */
	if ((rc = gnutls_session_ticket_key_generate(&gw_ticket_key)) < 0) {
		cg_log(CG_LOG_ERROR, 0, "gnutls_session_ticket_key_generate: %s (%d)",
		    gnutls_strerror(rc), rc);
		return 1;
	}
	if (cfg->raw.daemon && daemonize() < 0) {
		cg_log(CG_LOG_ERROR, 0, "cannot detach: %s", strerror(errno));
		return 1;
	}
	pid_file = cg_strdup(cfg->raw.pid_file);
	write_pid_file(pid_file);

	m.loop = ev_default_loop(EVFLAG_AUTO);
	ev_signal_init(&m.sig_hup, on_signal, SIGHUP);
	ev_signal_init(&m.sig_term, on_signal, SIGTERM);
	ev_signal_init(&m.sig_int, on_signal, SIGINT);
	ev_signal_init(&m.sig_usr1, on_signal, SIGUSR1);
	ev_child_init(&m.child, on_child, 0, 0);
	ev_timer_init(&m.stop_timer, on_stop_timer, 0, 0);
	ev_timer_init(&m.respawn_timer, on_respawn_timer, 0, 0);
	ev_timer_init(&m.key_timer, on_key_timer, TICKET_KEY_CHECK, TICKET_KEY_CHECK);
	m.key_seen = cfg->ticket_key_id;
	ev_signal_start(m.loop, &m.sig_hup);
	ev_signal_start(m.loop, &m.sig_term);
	ev_signal_start(m.loop, &m.sig_int);
	ev_signal_start(m.loop, &m.sig_usr1);
	ev_child_start(m.loop, &m.child);
	/* Runs always: a reload may add a ticket key file. */
	ev_timer_start(m.loop, &m.key_timer);

	cg_log(CG_LOG_INFO, 0, "certgate %s started: %zu listener(s), %d worker(s)", CG_VERSION,
	    cfg->nlisteners, cfg->workers);
	if (gw_spawn_apply(cfg, m.loop) < 0)
		return 1;
	start_generation();
	ev_run(m.loop, 0);
	gw_spawn_free_all();

	cg_log(CG_LOG_INFO, 0, "stopped");
	if (pid_file[0])
		unlink(pid_file);
	free(pid_file);
	gw_config_free(m.cfg);
	free(m.w);
	gnutls_memset(gw_ticket_key.data, 0, gw_ticket_key.size);
	gnutls_free(gw_ticket_key.data);
	ev_loop_destroy(m.loop);
	return 0;
}
