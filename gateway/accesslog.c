/*
 * accesslog.c: where access-log lines go: stdout, syslog, a file, or
 * nowhere. The line itself is composed by request.c.
 *
 * Lines are gathered and written once per turn of the worker's event loop
 * (gw_alog_flush, called before the loop waits), not one write(2) each:
 * under load one turn serves many requests, and the write was a tenth of a
 * keep-alive request's system calls. A line is thus on disk before the
 * worker sleeps, never later. Each write holds whole lines only, and at
 * most PIPE_BUF bytes when the target is not a regular file, so lines from
 * several workers never interleave (O_APPEND keeps a file's writes whole).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "gateway/gateway_int.h"

#define BATCH_FILE (32 * 1024)	/* one write's bytes into a regular file */

static int alog_fd = 1;
static int alog_syslog;
static char batch[BATCH_FILE];
static size_t batch_len, batch_cap = PIPE_BUF;

static void
write_all(const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(alog_fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;		/* a full disk loses the lines, not the worker */
		p += n;
		len -= (size_t)n;
	}
}

void
gw_alog_flush(void)
{
	if (batch_len > 0 && alog_fd >= 0)
		write_all(batch, batch_len);
	batch_len = 0;
}

int
gw_alog_open(const char *target)
{
	struct stat st;
	int fd;

	gw_alog_flush();	/* what is gathered belongs to the old target */
	alog_syslog = 0;
	if (strcmp(target, "stdout") == 0) {
		fd = 1;
	} else if (strcmp(target, "off") == 0) {
		fd = -1;
	} else if (strcmp(target, "syslog") == 0) {
		openlog("certgate", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		alog_syslog = 1;
		fd = -1;
	} else {
		fd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0)
			return -1;
	}
	if (alog_fd > 2)
		close(alog_fd);
	alog_fd = fd;
	batch_cap = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? BATCH_FILE : PIPE_BUF;
	return 0;
}

void
gw_alog_write(const char *line, size_t len)
{
	if (alog_syslog) {
		syslog(LOG_INFO, "%.*s", (int)(len && line[len - 1] == '\n' ? len - 1 : len), line);
		return;
	}
	if (alog_fd < 0)
		return;
	if (batch_len + len > batch_cap)
		gw_alog_flush();
	if (len > batch_cap) {
		write_all(line, len);	/* cannot happen: lines are 4 KiB at most */
		return;
	}
	memcpy(batch + batch_len, line, len);
	batch_len += len;
}
