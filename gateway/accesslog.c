/*
 * accesslog.c: where access-log lines go: stdout, syslog, a file, or
 * nowhere. The line itself is composed by request.c; one write(2) per line
 * keeps lines from several workers whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "gateway/gateway_int.h"

static int alog_fd = 1;
static int alog_syslog;

int
gw_alog_open(const char *target)
{
	int fd;

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
	while (write(alog_fd, line, len) < 0 && errno == EINTR)
		;
}
