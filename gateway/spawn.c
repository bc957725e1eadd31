/*
 * spawn.c: FastCGI applications that certgate starts and supervises (a
 * backend's `spawn` block), in the master process, which keeps the
 * privileges to start them as their users. The libfcgi convention: the
 * listening socket is file descriptor 0. Children that exit are restarted
 * with a growing delay; a reload restarts only changed blocks.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gateway/gateway_int.h"

#define DELAY_MIN 0.5
#define DELAY_MAX 30.0
#define STABLE_SECONDS 10.0	/* a child that ran this long restarts at once */

#define ERR_LINE 2048		/* longest stderr line logged whole */

struct proc {
	struct gw_spawn *sp;
	pid_t pid;
	ev_tstamp started;
	ev_tstamp delay;
	ev_timer restart;
	ev_io err;		/* the child's stderr, read into the error log */
	char line[ERR_LINE];
	size_t linelen;
};

struct gw_spawn {
	char *name;
	char *key;			/* the block as text: changed means restart */
	const struct gw_spawn_conf *conf;	/* in the master's current snapshot */
	char *path;			/* the socket */
	int fd;
	uid_t uid;
	gid_t gid, sock_gid;
	struct proc *procs;
	size_t nprocs;
	int retiring;
	int term_pending;		/* retired: SIGTERM once old workers are gone */
	ev_timer kill_timer;		/* retired: SIGKILL after shutdown_timeout */
	struct gw_spawn *next;
};

static struct gw_spawn *spawns;
static struct ev_loop *loop;
static ev_tstamp kill_after;	/* shutdown_timeout */

static char *
block_key(const struct gw_backend_def *b)
{
	const struct gw_spawn_conf *s = b->conf->spawn;
	char *key = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&key, &len);

	if (f == NULL)
		cg_fatal("open_memstream");
	fprintf(f, "%s|%lld|%s|%s|%s", b->addrs[0].name, (long long)s->processes, s->user,
	    s->group, s->working_directory);
	for (i = 0; i < s->command.n; i++)
		fprintf(f, "|c=%s", s->command.v[i]);
	for (i = 0; i < s->environment.n; i++)
		fprintf(f, "|e=%s=%s", s->environment.names[i], s->environment.values[i]);
	fclose(f);
	return key;
}

static void start_proc(struct proc *p);

static void
on_restart(struct ev_loop *l, ev_timer *w, int revents)
{
	struct proc *p = w->data;

	if (!p->sp->retiring)
		start_proc(p);
}

static void
child(const struct gw_spawn *sp, int errfd)
{
	const struct gw_spawn_conf *s = sp->conf;
	char **argv;
	sigset_t all;
	size_t i;
	int fd;

	setpgid(0, 0);	/* a ^C meant for certgate is not the application's */
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (i = 1; i < NSIG; i++)
		signal((int)i, SIG_DFL);
	if (dup2(sp->fd, 0) < 0)
		_exit(127);
	if ((fd = open("/dev/null", O_WRONLY)) >= 0) {
		dup2(fd, 1);
		close(fd);
	}
	if (errfd >= 0)
		dup2(errfd, 2);
	for (fd = 3; fd < 1024; fd++)
		close(fd);
	if (getuid() == 0 && s->user[0] != '\0') {
		if (initgroups(s->user, sp->gid) < 0 || setgid(sp->gid) < 0 || setuid(sp->uid) < 0) {
			cg_log(CG_LOG_ERROR, 0, "backend %s: cannot become %s: %s", sp->name, s->user,
			    strerror(errno));
			_exit(127);
		}
	}
	if (chdir(s->working_directory) < 0) {
		cg_log(CG_LOG_ERROR, 0, "backend %s: chdir %s: %s", sp->name, s->working_directory,
		    strerror(errno));
		_exit(127);
	}
	clearenv();
	for (i = 0; i < s->environment.n; i++)
		setenv(s->environment.names[i], s->environment.values[i], 1);
	argv = cg_calloc(s->command.n + 1, sizeof(*argv));
	for (i = 0; i < s->command.n; i++)
		argv[i] = s->command.v[i];
	execv(argv[0], argv);
	cg_log(CG_LOG_ERROR, 0, "backend %s: cannot run %s: %s", sp->name, argv[0], strerror(errno));
	_exit(127);
}

/* Logs the child's stderr line by line, escaped, with the backend's name. */
static void
flush_line(struct proc *p)
{
	char esc[ERR_LINE * 4 + 8];

	if (p->linelen > 0)
		cg_log(CG_LOG_WARN, 0, "backend %s[%d]: %s", p->sp->name, (int)p->pid,
		    cg_escape(esc, sizeof(esc), p->line, p->linelen));
	p->linelen = 0;
}

static void
on_stderr(struct ev_loop *l, ev_io *w, int revents)
{
	struct proc *p = w->data;
	char buf[4096];
	ssize_t n, i;

	n = read(w->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		flush_line(p);
		ev_io_stop(l, w);
		close(w->fd);
		return;
	}
	for (i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			flush_line(p);
			continue;
		}
		if (p->linelen == sizeof(p->line))
			flush_line(p);
		p->line[p->linelen++] = buf[i];
	}
}

static void
start_proc(struct proc *p)
{
	int errpipe[2] = { -1, -1 };
	pid_t pid;

	if (ev_is_active(&p->err)) {	/* the previous child's pipe */
		ev_io_stop(loop, &p->err);
		close(p->err.fd);
	}
	if (pipe2(errpipe, O_CLOEXEC) < 0)
		cg_log(CG_LOG_WARN, 0, "backend %s: pipe: %s", p->sp->name, strerror(errno));
	pid = fork();
	if (pid < 0) {
		cg_log(CG_LOG_ERROR, 0, "backend %s: fork: %s", p->sp->name, strerror(errno));
		if (errpipe[0] >= 0) {
			close(errpipe[0]);
			close(errpipe[1]);
		}
		return;
	}
	if (pid == 0)
		child(p->sp, errpipe[1]);
	if (errpipe[0] >= 0) {
		close(errpipe[1]);
		fcntl(errpipe[0], F_SETFL, O_NONBLOCK);
		ev_io_init(&p->err, on_stderr, errpipe[0], EV_READ);
		p->err.data = p;
		p->linelen = 0;
		ev_io_start(loop, &p->err);
	}
	p->pid = pid;
	p->started = ev_now(loop);
	cg_log(CG_LOG_INFO, 0, "backend %s: started %s (pid %d)", p->sp->name,
	    p->sp->conf->command.v[0], (int)pid);
}

static int
make_socket(struct gw_spawn *sp, const struct gw_config *cfg)
{
	struct sockaddr_un sun;
	struct stat st;
	char dir[sizeof(sun.sun_path)];
	const char *slash;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, sp->path);	/* length checked when the address was parsed */
	/* The socket's directory is ours alone: someone else's directory (in
	 * /tmp, say) could swap the socket for theirs. */
	slash = strrchr(sp->path, '/');
	if (slash != NULL && slash != sp->path) {
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - sp->path), sp->path);
		if (mkdir(dir, 0711) == 0)
			cg_log(CG_LOG_DEBUG, 0, "created %s", dir);
		if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
		    (st.st_uid != geteuid() && st.st_uid != 0) || (st.st_mode & 022) != 0) {
			cg_log(CG_LOG_ERROR, 0, "backend %s: %s must be a directory owned by "
			    "certgate's user or root and closed to others' writes", sp->name, dir);
			return -1;
		}
	}
	if (lstat(sp->path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(sp->path);
	sp->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sp->fd < 0 || bind(sp->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(sp->fd, 1024) < 0) {
		cg_log(CG_LOG_ERROR, 0, "backend %s: cannot listen on %s: %s", sp->name, sp->path,
		    strerror(errno));
		if (sp->fd >= 0)
			close(sp->fd);
		sp->fd = -1;
		return -1;
	}
	/* The application's user owns it; certgate's workers reach it by group.
	 * The mode first: once the owner changed, only CAP_FOWNER could. */
	if (chmod(sp->path, 0660) < 0 ||
	    (getuid() == 0 && chown(sp->path, sp->uid, cfg->gid) < 0)) {
		cg_log(CG_LOG_ERROR, 0, "backend %s: cannot give %s to the application: %s",
		    sp->name, sp->path, strerror(errno));
		close(sp->fd);
		sp->fd = -1;
		unlink(sp->path);
		return -1;
	}
	return 0;
}

static void
on_kill_timer(struct ev_loop *l, ev_timer *w, int revents)
{
	struct gw_spawn *sp = w->data;
	size_t i;

	for (i = 0; i < sp->nprocs; i++)
		if (sp->procs[i].pid > 0) {
			cg_log(CG_LOG_WARN, 0, "backend %s: pid %d still running: SIGKILL", sp->name,
			    (int)sp->procs[i].pid);
			kill(sp->procs[i].pid, SIGKILL);
		}
}

static void
terminate(struct gw_spawn *sp, int sig)
{
	size_t i;

	sp->term_pending = 0;
	for (i = 0; i < sp->nprocs; i++)
		if (sp->procs[i].pid > 0)
			kill(sp->procs[i].pid, sig);
	if (sig != SIGKILL && !ev_is_active(&sp->kill_timer)) {
		ev_timer_init(&sp->kill_timer, on_kill_timer, kill_after, 0);
		sp->kill_timer.data = sp;
		ev_timer_start(loop, &sp->kill_timer);
	}
}

/* A block stops taking connections at once; its processes are told to stop
 * only when no worker can still be talking to them (gw_spawn_release). */
static void
retire(struct gw_spawn *sp)
{
	size_t i;

	sp->retiring = 1;
	sp->term_pending = 1;
	for (i = 0; i < sp->nprocs; i++)
		ev_timer_stop(loop, &sp->procs[i].restart);
	if (sp->fd >= 0)
		close(sp->fd);
	sp->fd = -1;
}

static void
spawn_free(struct gw_spawn *sp)
{
	size_t i;

	ev_timer_stop(loop, &sp->kill_timer);
	for (i = 0; i < sp->nprocs; i++)
		if (ev_is_active(&sp->procs[i].err)) {
			ev_io_stop(loop, &sp->procs[i].err);
			close(sp->procs[i].err.fd);
		}
	free(sp->name);
	free(sp->key);
	free(sp->path);
	free(sp->procs);
	free(sp);
}

/* Drops retired blocks whose children are all gone. */
static void
reap_retired(void)
{
	struct gw_spawn **pp = &spawns, *sp;
	size_t i;
	int alive;

	while ((sp = *pp) != NULL) {
		alive = 0;
		for (i = 0; i < sp->nprocs; i++)
			alive |= sp->procs[i].pid > 0;
		if (sp->retiring && !alive) {
			*pp = sp->next;
			spawn_free(sp);
		} else {
			pp = &sp->next;
		}
	}
}

int
gw_spawn_apply(const struct gw_config *cfg, struct ev_loop *l)
{
	struct gw_spawn *sp, *old;
	size_t i, j;
	int rc = 0;

	loop = l;
	kill_after = (ev_tstamp)cfg->raw.shutdown_timeout;
	/* Blocks that went away or changed retire first, freeing their sockets. */
	for (old = spawns; old != NULL; old = old->next) {
		int keep = 0;

		if (old->retiring)
			continue;
		for (i = 0; i < cfg->nbackends; i++) {
			const struct gw_backend_def *b = &cfg->backends[i];
			char *key;

			if (b->conf->spawn == NULL || strcmp(b->conf->name, old->name) != 0)
				continue;
			key = block_key(b);
			if (strcmp(key, old->key) == 0) {
				keep = 1;
				old->conf = b->conf->spawn;
			}
			free(key);
		}
		if (!keep) {
			cg_log(CG_LOG_INFO, 0, "backend %s: retiring its processes (changed or removed)",
			    old->name);
			retire(old);
			unlink(old->path);	/* a changed block binds it anew below */
		}
	}
	for (i = 0; i < cfg->nbackends; i++) {
		const struct gw_backend_def *b = &cfg->backends[i];
		const struct gw_spawn_conf *s = b->conf->spawn;
		struct passwd *pw;
		struct group *gr;

		if (s == NULL)
			continue;
		for (old = spawns; old != NULL; old = old->next)
			if (!old->retiring && strcmp(old->name, b->conf->name) == 0)
				break;
		if (old != NULL)
			continue;	/* unchanged and running */
		sp = cg_calloc(1, sizeof(*sp));
		sp->name = cg_strdup(b->conf->name);
		sp->key = block_key(b);
		sp->conf = s;
		sp->path = cg_strdup(b->addrs[0].name + 5);
		sp->uid = getuid();
		sp->gid = getgid();
		if (s->user[0] && (pw = getpwnam(s->user)) != NULL) {
			sp->uid = pw->pw_uid;
			sp->gid = pw->pw_gid;
		}
		if (s->group[0] && (gr = getgrnam(s->group)) != NULL)
			sp->gid = gr->gr_gid;
		sp->next = spawns;
		spawns = sp;
		if (make_socket(sp, cfg) < 0) {
			sp->retiring = 1;
			rc = -1;
			continue;
		}
		sp->nprocs = (size_t)s->processes;
		sp->procs = cg_calloc(sp->nprocs, sizeof(*sp->procs));
		for (j = 0; j < sp->nprocs; j++) {
			struct proc *p = &sp->procs[j];

			p->sp = sp;
			p->delay = DELAY_MIN;
			ev_timer_init(&p->restart, on_restart, 0, 0);
			p->restart.data = p;
			start_proc(p);
		}
	}
	reap_retired();
	return rc;
}

int
gw_spawn_child_exited(pid_t pid, int status)
{
	struct gw_spawn *sp;
	struct proc *p;
	size_t i;

	for (sp = spawns; sp != NULL; sp = sp->next)
		for (i = 0; i < sp->nprocs; i++) {
			p = &sp->procs[i];
			if (p->pid != pid)
				continue;
			p->pid = 0;
			if (sp->retiring) {
				reap_retired();
				return 1;
			}
			if (ev_now(loop) - p->started >= STABLE_SECONDS)
				p->delay = DELAY_MIN;
			cg_log(CG_LOG_WARN, 0, "backend %s: pid %d %s %d; restarting in %.1f s",
			    sp->name, (int)pid, WIFSIGNALED(status) ? "killed by signal" : "exited with",
			    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), p->delay);
			ev_timer_set(&p->restart, p->delay, 0);
			ev_timer_start(loop, &p->restart);
			p->delay = p->delay * 2 > DELAY_MAX ? DELAY_MAX : p->delay * 2;
			return 1;
		}
	return 0;
}

void
gw_spawn_release(void)
{
	struct gw_spawn *sp;

	for (sp = spawns; sp != NULL; sp = sp->next)
		if (sp->retiring && sp->term_pending)
			terminate(sp, SIGTERM);
	reap_retired();
}

void
gw_spawn_stop_all(int sig)
{
	struct gw_spawn *sp;

	for (sp = spawns; sp != NULL; sp = sp->next) {
		if (!sp->retiring) {
			retire(sp);
			unlink(sp->path);
		}
		terminate(sp, sig);
	}
}

size_t
gw_spawn_running(void)
{
	struct gw_spawn *sp;
	size_t i, n = 0;

	for (sp = spawns; sp != NULL; sp = sp->next)
		for (i = 0; i < sp->nprocs; i++)
			n += sp->procs[i].pid > 0;
	return n;
}

void
gw_spawn_free_all(void)
{
	struct gw_spawn *sp;

	while ((sp = spawns) != NULL) {
		spawns = sp->next;
		spawn_free(sp);
	}
}
