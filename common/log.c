/*
 * log.c: the error log. One line per event: UTC timestamp, level, the
 * connection's id, message. Targets: stderr, syslog or a file (reopened on
 * SIGUSR1). Lines go out in one write(2) so processes sharing a file do not
 * interleave.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"

const char *const cg_log_level_names[CG_LOG__MAX] = {
	"error", "warn", "info", "debug",
};

enum cg_log_level cg_log_level = CG_LOG_INFO;

static int log_fd = 2;
static int log_syslog;
static char *log_path;

int
cg_log_open(const char *target)
{
	char *copy = cg_strdup(target);	/* target may be log_path itself */
	int fd;

	if (strcmp(target, "stderr") == 0) {
		if (log_fd > 2)
			close(log_fd);
		log_fd = 2;
		log_syslog = 0;
	} else if (strcmp(target, "syslog") == 0) {
		openlog("certgate", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		log_syslog = 1;
	} else {
		fd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0) {
			free(copy);
			return -1;
		}
		if (log_fd > 2)
			close(log_fd);
		log_fd = fd;
		log_syslog = 0;
	}
	free(log_path);
	log_path = copy;
	return 0;
}

int
cg_log_reopen(void)
{
	if (log_path == NULL || strcmp(log_path, "stderr") == 0 ||
	    strcmp(log_path, "syslog") == 0)
		return 0;
	return cg_log_open(log_path);
}

int
cg_log_fd(void)
{
	return log_syslog ? -1 : log_fd;
}

void
cg_time_iso(char out[32])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void
cg_log(enum cg_log_level lvl, uint64_t conn, const char *fmt, ...)
{
	static const int prio[CG_LOG__MAX] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[2048], ts[32];
	size_t n;
	int k;
	va_list ap;

	if (lvl > cg_log_level)
		return;
	if (log_syslog) {
		n = 0;
		if (conn)
			n = (size_t)snprintf(line, sizeof(line), "#%llu ",
			    (unsigned long long)conn);
		va_start(ap, fmt);
		vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		va_end(ap);
		syslog(prio[lvl], "%s", line);
		return;
	}
	cg_time_iso(ts);
	if (conn)
		k = snprintf(line, sizeof(line), "%s [%s] #%llu ", ts,
		    cg_log_level_names[lvl], (unsigned long long)conn);
	else
		k = snprintf(line, sizeof(line), "%s [%s] ", ts, cg_log_level_names[lvl]);
	n = (size_t)k;
	va_start(ap, fmt);
	k = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (k < 0)
		k = 0;
	n += (size_t)k;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	while (write(log_fd, line, n) < 0 && errno == EINTR)
		;
}

/* Untrusted bytes into a log line: printable ASCII stays, the rest as
 * \xNN (text logs) or \u00NN (JSON). */
static const char *
escape(char *out, size_t outsize, const void *in, size_t len, int json)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = in;
	size_t i, o = 0;

	if (outsize < 10)
		cg_fatal("cg_escape: buffer too small");
	for (i = 0; i < len; i++) {
		if (o + 10 > outsize) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (p[i] < 0x20 || p[i] >= 0x7f || p[i] == '"' || p[i] == '\\') {
			out[o++] = '\\';
			if (json) {
				memcpy(out + o, "u00", 3);
				o += 3;
			} else {
				out[o++] = 'x';
			}
			out[o++] = hex[p[i] >> 4];
			out[o++] = hex[p[i] & 15];
		} else {
			out[o++] = (char)p[i];
		}
	}
	out[o] = '\0';
	return out;
}

const char *
cg_escape(char *out, size_t outsize, const void *in, size_t len)
{
	return escape(out, outsize, in, len, 0);
}

const char *
cg_escape_json(char *out, size_t outsize, const void *in, size_t len)
{
	return escape(out, outsize, in, len, 1);
}
