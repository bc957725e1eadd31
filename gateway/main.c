/*
 * main.c: certgate's command line: check (-t) or print (-p) a
 * configuration, show versions (-V), or start the master process.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <libconfig.h>
#include <llhttp.h>

#include "gateway/gateway_int.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: certgate [-c FILE] [-f] [-t] [-p] [-V] [-h]\n"
	    "       certgate explain -c FILE [--host NAME] [--path PATH] [--time ISO8601]"
	    " CERT.pem [CHAIN.pem ...]\n"
	    "  -c FILE  configuration file (default %s/certgate/certgate.conf)\n"
	    "  -f       stay in the foreground\n"
	    "  -t       check the configuration and exit\n"
	    "  -p       print the effective configuration and exit\n"
	    "  -V       print versions and exit\n", CG_SYSCONFDIR);
}

static void
versions(void)
{
	printf("certgate %s\n", CG_VERSION);
	printf("GnuTLS %s\n", gnutls_check_version(NULL));
	printf("libconfig %d.%d.%d\n", LIBCONFIG_VER_MAJOR, LIBCONFIG_VER_MINOR,
	    LIBCONFIG_VER_REVISION);
	printf("llhttp %d.%d.%d\n", LLHTTP_VERSION_MAJOR, LLHTTP_VERSION_MINOR,
	    LLHTTP_VERSION_PATCH);
	printf("libev %d.%d\n", ev_version_major(), ev_version_minor());
}

int
gw_main(int argc, char **argv)
{
	const char *path = CG_SYSCONFDIR "/certgate/certgate.conf";
	struct cg_errors errs = { NULL, 0 };
	struct gw_config *cfg;
	int ch, check = 0, print = 0, foreground = 0;

	if (argc > 1 && strcmp(argv[1], "explain") == 0) {
		if (gnutls_global_init() < 0)
			return 2;
		return gw_explain(argc - 1, argv + 1);
	}
	while ((ch = getopt(argc, argv, "c:ftpVh")) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 'f': foreground = 1; break;
		case 't': check = 1; break;
		case 'p': print = 1; break;
		case 'V': versions(); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (gnutls_global_init() < 0) {
		fprintf(stderr, "certgate: gnutls_global_init failed\n");
		return 1;
	}
	cfg = gw_config_load(path, &errs);
	if (cfg == NULL) {
		cg_errors_print(&errs, stderr);
		cg_errors_free(&errs);
		return 1;
	}
	if (check) {
		fprintf(stderr, "%s: configuration is valid\n", path);
		gw_config_free(cfg);
		return 0;
	}
	if (print) {
		gw_config_print(cfg, stdout);
		gw_config_free(cfg);
		return 0;
	}
	if (foreground)
		cfg->raw.daemon = 0;
	return gw_master_run(path, cfg);
}

int
main(int argc, char **argv)
{
	return gw_main(argc, argv);
}
