/*
 * fuzz_http.c: the request path as a client drives it: bytes arrive on a
 * real (socketpair) connection of a worker set up on a small configuration
 * and go through llhttp, certgate's header checks and limits, path
 * normalization, routing and the decisions, up to a FastCGI connect that
 * fails (502); pipelined requests included.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/gateway_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gw_config *cfg;
static struct gw_worker w;

static void
setup(void)
{
	static const char text[] =
	    "workers = 1;\nuser = \"root\";\ngroup = \"root\";\nerror_log = \"/dev/null\";\n"
	    "access_log = \"off\";\n"
	    "limits = { max_header_size = 4096; max_uri_size = 1024; max_headers = 20;"
	    " max_body_size = 100000; };\n"
	    "policies = { open = { tls = \"optional\"; }; locked = { }; };\n"
	    "backends = { app = { connect = [ \"unix:/nonexistent/certgate-fuzz.sock\" ]; }; };\n"
	    "sites = ( { name = \"s\"; listen = [ \"http://127.0.0.1:1\" ]; hosts = [ \"*\" ];"
	    " policy = \"open\"; locations = ( { path = \"/\"; backend = \"app\"; },"
	    " { path = \"/admin/\"; backend = \"app\"; policy = \"locked\"; } ); } );\n";
	struct cg_errors errs = { NULL, 0 };
	char path[] = "/tmp/certgate-fuzz-http.XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, text, sizeof(text) - 1) != (ssize_t)(sizeof(text) - 1))
		abort();
	close(fd);
	gnutls_global_init();
	cfg = gw_config_load(path, &errs);
	unlink(path);
	if (cfg == NULL) {
		cg_errors_print(&errs, stderr);
		abort();
	}
	cg_log_open("/dev/null");
	gw_worker_init(&w, cfg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	int sv[2], i;

	if (cfg == NULL)
		setup();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		return 0;
	memset(&ss, 0, sizeof(ss));
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(0x7f000001);
	gw_conn_accept(&cfg->listeners[0], sv[0], &ss);
	if (w.conns != NULL) {
		cg_buf_append(&w.conns->rbuf, data, size);
		if (gw_http_process(w.conns) == 0)
			/* Let the deferred writes and pipelined requests run. */
			for (i = 0; i < 8 && w.conns != NULL; i++)
				ev_run(w.loop, EVRUN_NOWAIT);
	}
	while (w.conns != NULL)
		gw_conn_close(w.conns, GW_CLOSE_SHUTDOWN);
	close(sv[1]);
	return 0;
}
