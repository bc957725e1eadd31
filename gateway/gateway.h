/*
 * gateway.h: the gateway module's public face: loading a configuration
 * into an immutable snapshot, and running certgate (master and workers).
 * Everything about sockets, TLS sessions, HTTP and FastCGI lives behind it.
 */
#ifndef GATEWAY_H
#define GATEWAY_H

#include "common/common.h"

struct gw_config;

/*
 * Reads, checks and builds the configuration at path: every error goes to
 * errs as "FILE:LINE: message". Returns the snapshot (credentials loaded,
 * locations compiled), or NULL when errs holds at least one error.
 * The snapshot is freed with gw_config_free (NULL accepted).
 */
struct gw_config *gw_config_load(const char *path, struct cg_errors *errs);
void gw_config_free(struct gw_config *cfg);
/* Writes the effective configuration (defaults filled in) as libconfig. */
void gw_config_print(const struct gw_config *cfg, FILE *f);

/* certgate's command line; returns the process exit code. */
int gw_main(int argc, char **argv);

#endif
