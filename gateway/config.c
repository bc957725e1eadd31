/*
 * config.c: the gateway's configuration keys (tables that drive parsing,
 * -t and -p), the checks across them (dangling names, duplicate listeners),
 * and building the immutable snapshot: TLS credentials, parsed addresses,
 * compiled locations, listeners with their sites.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <malloc.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gnutls/x509.h>

#include "gateway/gateway_int.h"

#define K(st, f) offsetof(struct st, f)
#define NOSRC -1

static const char *const log_targets[] = { "stderr", "syslog", NULL };
static const char *const alog_targets[] = { "stdout", "off", "syslog", NULL };
static const char *const alog_formats[] = { "combined+", "json", NULL };
static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };
static const char *const roles[] = { "responder", "authorizer", NULL };
const char *const gw_client_auth_names[GW_CA__MAX] = {
	"off", "request", "require", "deferred", "auto",
};
/* "auto" stands for the default and is printed by -p as resolved. */
static const char *const client_auth_choices_auto[] = { "off", "request", "require", "deferred",
	"auto", NULL };

static const struct cg_conf_key limits_keys[] = {
	{ "handshake_timeout", CG_CONF_INT, K(gw_limits_conf, handshake_timeout), "10", 0, 1, 3600, NULL, NULL, "seconds" },
	{ "header_timeout", CG_CONF_INT, K(gw_limits_conf, header_timeout), "10", 0, 1, 3600, NULL, NULL, "seconds" },
	{ "body_timeout", CG_CONF_INT, K(gw_limits_conf, body_timeout), "30", 0, 1, 86400, NULL, NULL, "seconds" },
	{ "keepalive_timeout", CG_CONF_INT, K(gw_limits_conf, keepalive_timeout), "60", 0, 1, 86400, NULL, NULL, "seconds" },
	{ "send_timeout", CG_CONF_INT, K(gw_limits_conf, send_timeout), "60", 0, 1, 86400, NULL, NULL, "seconds" },
	{ "max_header_size", CG_CONF_INT, K(gw_limits_conf, max_header_size), "16384", 0, 256, 1048576, NULL, NULL, "bytes" },
	{ "max_uri_size", CG_CONF_INT, K(gw_limits_conf, max_uri_size), "8192", 0, 16, 1048576, NULL, NULL, "bytes" },
	{ "max_headers", CG_CONF_INT, K(gw_limits_conf, max_headers), "100", 0, 1, 10000, NULL, NULL, "count" },
	{ "max_body_size", CG_CONF_INT, K(gw_limits_conf, max_body_size), "10485760", 0, 0, INT64_MAX, NULL, NULL, "bytes" },
	{ "max_connections", CG_CONF_INT, K(gw_limits_conf, max_connections), "10000", 0, 1, 10000000, NULL, NULL, "per worker" },
};
static const struct cg_conf_schema limits_schema = {
	"limits", sizeof(struct gw_limits_conf), limits_keys, CG_NELEM(limits_keys), NOSRC, NOSRC,
};

static const struct cg_conf_key tls_keys[] = {
	{ "priorities", CG_CONF_STRING, K(gw_tls_conf, priorities), "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-RSA:-AES-256-CBC:-AES-128-CBC:%SERVER_PRECEDENCE", 0, 0, 0, NULL, NULL, NULL },
	{ "session_tickets", CG_CONF_BOOL, K(gw_tls_conf, session_tickets), "true", 0, 0, 0, NULL, NULL, NULL },
	{ "ticket_key_file", CG_CONF_STRING, K(gw_tls_conf, ticket_key_file), NULL, CG_CONF_PATH, 0, 0, NULL, NULL, NULL },
};
static const struct cg_conf_schema tls_schema = {
	"tls", sizeof(struct gw_tls_conf), tls_keys, CG_NELEM(tls_keys), NOSRC, NOSRC,
};

static const struct cg_conf_key proxy_keys[] = {
	{ "listeners", CG_CONF_STRINGS, K(gw_proxy_conf, listeners), NULL, 0, 0, 0, NULL, NULL, NULL },
	{ "trusted", CG_CONF_STRINGS, K(gw_proxy_conf, trusted), NULL, 0, 0, 0, NULL, NULL, NULL },
	{ "header_timeout", CG_CONF_INT, K(gw_proxy_conf, header_timeout), "5", 0, 1, 3600, NULL, NULL, "seconds" },
};
static const struct cg_conf_schema proxy_schema = {
	"proxy_protocol", sizeof(struct gw_proxy_conf), proxy_keys, CG_NELEM(proxy_keys), NOSRC, NOSRC,
};

static const struct cg_conf_key spawn_keys[] = {
	{ "command", CG_CONF_STRINGS, K(gw_spawn_conf, command), NULL, CG_CONF_REQUIRED, 0, 0, NULL, NULL, NULL },
	{ "processes", CG_CONF_INT, K(gw_spawn_conf, processes), "1", 0, 1, 1024, NULL, NULL, NULL },
	{ "user", CG_CONF_STRING, K(gw_spawn_conf, user), NULL, 0, 0, 0, NULL, NULL, NULL },
	{ "group", CG_CONF_STRING, K(gw_spawn_conf, group), NULL, 0, 0, 0, NULL, NULL, NULL },
	{ "environment", CG_CONF_STRMAP, K(gw_spawn_conf, environment), NULL, 0, 0, 0, NULL, NULL, NULL },
	{ "working_directory", CG_CONF_STRING, K(gw_spawn_conf, working_directory), "/", CG_CONF_PATH, 0, 0, NULL, NULL, NULL },
};
static const struct cg_conf_schema spawn_schema = {
	"spawn", sizeof(struct gw_spawn_conf), spawn_keys, CG_NELEM(spawn_keys),
	K(gw_spawn_conf, src), NOSRC,
};

static const struct cg_conf_key backend_keys[] = {
	{ "connect", CG_CONF_STRINGS, K(gw_backend_conf, connect), NULL, 0, 0, 0, NULL, NULL, NULL },
	{ "role", CG_CONF_ENUM, K(gw_backend_conf, role), "responder", 0, 0, 0, roles, NULL, NULL },
	{ "spawn", CG_CONF_OPTGROUP, K(gw_backend_conf, spawn), NULL, 0, 0, 0, NULL, &spawn_schema, NULL },
	{ "connect_timeout", CG_CONF_INT, K(gw_backend_conf, connect_timeout), "5", 0, 1, 3600, NULL, NULL, NULL },
	{ "timeout", CG_CONF_INT, K(gw_backend_conf, timeout), "60", 0, 1, 86400, NULL, NULL, NULL },
	{ "keep_connections", CG_CONF_BOOL, K(gw_backend_conf, keep_connections), "true", 0, 0, 0, NULL, NULL, NULL },
	{ "max_connections", CG_CONF_INT, K(gw_backend_conf, max_connections), "32", 0, 1, 100000, NULL, NULL, NULL },
	{ "queue", CG_CONF_INT, K(gw_backend_conf, queue), "256", 0, 0, 1000000, NULL, NULL, NULL },
	{ "params", CG_CONF_STRMAP, K(gw_backend_conf, params), NULL, 0, 0, 0, NULL, NULL, NULL },
};
static const struct cg_conf_schema backend_schema = {
	"backend", sizeof(struct gw_backend_conf), backend_keys, CG_NELEM(backend_keys),
	K(gw_backend_conf, src), K(gw_backend_conf, name),
};

static const struct cg_conf_key location_keys[] = {
	{ "path", CG_CONF_STRING, K(gw_location_conf, path), NULL, CG_CONF_REQUIRED, 0, 0, NULL, NULL, NULL },
	{ "backend", CG_CONF_STRING, K(gw_location_conf, backend), NULL, CG_CONF_REQUIRED, 0, 0, NULL, NULL, NULL },
	{ "policy", CG_CONF_STRING, K(gw_location_conf, policy), NULL, 0, 0, 0, NULL, NULL, NULL },
	{ "document_root", CG_CONF_STRING, K(gw_location_conf, document_root), NULL, CG_CONF_PATH, 0, 0, NULL, NULL, NULL },
	{ "script_filename", CG_CONF_STRING, K(gw_location_conf, script_filename), NULL, CG_CONF_PATH, 0, 0, NULL, NULL, NULL },
};
static const struct cg_conf_schema location_schema = {
	"location", sizeof(struct gw_location_conf), location_keys, CG_NELEM(location_keys),
	K(gw_location_conf, src), NOSRC,
};

static const struct cg_conf_key site_keys[] = {
	{ "name", CG_CONF_STRING, K(gw_site_conf, name), NULL, CG_CONF_REQUIRED, 0, 0, NULL, NULL, NULL },
	{ "listen", CG_CONF_STRINGS, K(gw_site_conf, listen), NULL, CG_CONF_REQUIRED, 0, 0, NULL, NULL, NULL },
	{ "hosts", CG_CONF_STRINGS, K(gw_site_conf, hosts), "*", 0, 0, 0, NULL, NULL, NULL },
	{ "default", CG_CONF_BOOL, K(gw_site_conf, is_default), "false", 0, 0, 0, NULL, NULL, NULL },
	{ "certificate", CG_CONF_STRING, K(gw_site_conf, certificate), NULL, CG_CONF_PATH, 0, 0, NULL, NULL, NULL },
	{ "key", CG_CONF_STRING, K(gw_site_conf, key), NULL, CG_CONF_PATH, 0, 0, NULL, NULL, NULL },
	{ "client_trust", CG_CONF_STRING, K(gw_site_conf, client_trust), NULL, 0, 0, 0, NULL, NULL, NULL },
	/* No default in the table: "auto" is resolved from the policies. */
	{ "tls_client_auth", CG_CONF_ENUM, K(gw_site_conf, tls_client_auth), "auto", 0, 0, 0, client_auth_choices_auto, NULL, NULL },
	{ "policy", CG_CONF_STRING, K(gw_site_conf, policy), NULL, 0, 0, 0, NULL, NULL, NULL },
	{ "locations", CG_CONF_LIST, K(gw_site_conf, locations), NULL, 0, 0, 0, NULL, &location_schema, NULL },
};
static const struct cg_conf_schema site_schema = {
	"site", sizeof(struct gw_site_conf), site_keys, CG_NELEM(site_keys),
	K(gw_site_conf, src), NOSRC,
};

static const struct cg_conf_key top_keys[] = {
	{ "daemon", CG_CONF_BOOL, K(gw_conf, daemon), "false", 0, 0, 0, NULL, NULL, NULL },
	{ "workers", CG_CONF_INT_OR_AUTO, K(gw_conf, workers), "auto", 0, 1, 256, NULL, NULL, NULL },
	{ "user", CG_CONF_STRING, K(gw_conf, user), "nobody", 0, 0, 0, NULL, NULL, NULL },
	{ "group", CG_CONF_STRING, K(gw_conf, group), "nogroup", 0, 0, 0, NULL, NULL, NULL },
	{ "pid_file", CG_CONF_STRING, K(gw_conf, pid_file), NULL, CG_CONF_PATH, 0, 0, NULL, NULL, NULL },
	{ "error_log", CG_CONF_STRING, K(gw_conf, error_log), "stderr", CG_CONF_PATH, 0, 0, log_targets, NULL, NULL },
	{ "access_log", CG_CONF_STRING, K(gw_conf, access_log), "stdout", CG_CONF_PATH, 0, 0, alog_targets, NULL, NULL },
	{ "access_log_format", CG_CONF_ENUM, K(gw_conf, access_log_format), "combined+", 0, 0, 0, alog_formats, NULL, NULL },
	{ "log_level", CG_CONF_ENUM, K(gw_conf, log_level), "info", 0, 0, 0, log_levels, NULL, NULL },
	{ "shutdown_timeout", CG_CONF_INT, K(gw_conf, shutdown_timeout), "30", 0, 0, 86400, NULL, NULL, NULL },
	{ "limits", CG_CONF_GROUP, K(gw_conf, limits), NULL, 0, 0, 0, NULL, &limits_schema, NULL },
	{ "tls", CG_CONF_GROUP, K(gw_conf, tls), NULL, 0, 0, 0, NULL, &tls_schema, NULL },
	{ "proxy_protocol", CG_CONF_GROUP, K(gw_conf, proxy), NULL, 0, 0, 0, NULL, &proxy_schema, NULL },
	{ "trust", CG_CONF_MAP, K(gw_conf, trust), NULL, 0, 0, 0, NULL, &ca_trust_schema, NULL },
	{ "accounts", CG_CONF_GROUP, K(gw_conf, accounts), NULL, 0, 0, 0, NULL, &ca_accounts_schema, NULL },
	{ "directories", CG_CONF_MAP, K(gw_conf, directories), NULL, 0, 0, 0, NULL, &ca_directory_schema, NULL },
	{ "policies", CG_CONF_MAP, K(gw_conf, policies), NULL, 0, 0, 0, NULL, &pol_policy_schema, NULL },
	{ "backends", CG_CONF_MAP, K(gw_conf, backends), NULL, 0, 0, 0, NULL, &backend_schema, NULL },
	{ "sites", CG_CONF_LIST, K(gw_conf, sites), NULL, 0, 0, 0, NULL, &site_schema, NULL },
};
const struct cg_conf_schema gw_conf_schema = {
	"the configuration", sizeof(struct gw_conf), top_keys, CG_NELEM(top_keys), NOSRC, NOSRC,
};

/* ---- addresses ---- */

static int
host_port(const char *hp, struct gw_addr *a, char *err, size_t errlen)
{
	char host[256];
	const char *colon, *h = hp;
	size_t hl;
	struct addrinfo hints, *res;
	char *end;
	long port;
	int rc;

	if (hp[0] == '[') {
		colon = strstr(hp, "]:");
		if (colon == NULL)
			goto bad;
		h = hp + 1;
		hl = (size_t)(colon - h);
		colon++;
	} else {
		colon = strrchr(hp, ':');
		if (colon == NULL)
			goto bad;
		hl = (size_t)(colon - hp);
	}
	if (hl == 0 || hl >= sizeof(host))
		goto bad;
	memcpy(host, h, hl);
	host[hl] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || colon[1] == '\0' || port < 0 || port > 65535 || errno)
		goto bad;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
		snprintf(err, errlen, "cannot resolve \"%s\": %s", host, gai_strerror(rc));
		return -1;
	}
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
bad:
	snprintf(err, errlen, "\"%s\" is not HOST:PORT", hp);
	return -1;
}

int
gw_addr_parse(const char *s, struct gw_addr *a, char *err, size_t errlen)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&a->ss;

	memset(a, 0, sizeof(*a));
	if (strncmp(s, "unix:", 5) == 0) {
		if (s[5] == '\0' || strlen(s + 5) >= sizeof(sun->sun_path)) {
			snprintf(err, errlen, "\"%s\": bad or too long socket path", s);
			return -1;
		}
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, s + 5);
		a->len = sizeof(*sun);
	} else if (strncmp(s, "tcp:", 4) == 0) {
		if (host_port(s + 4, a, err, errlen) < 0)
			return -1;
	} else {
		snprintf(err, errlen, "\"%s\": expected \"unix:PATH\" or \"tcp:HOST:PORT\"", s);
		return -1;
	}
	a->name = cg_strdup(s);
	return 0;
}

int
gw_listen_parse(const char *s, struct gw_addr *a, int *tls, char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	if (strncmp(s, "https://", 8) == 0) {
		*tls = 1;
		s += 8;
	} else if (strncmp(s, "http://", 7) == 0) {
		*tls = 0;
		s += 7;
	} else {
		snprintf(err, errlen, "\"%s\": expected \"https://HOST:PORT\" or \"http://HOST:PORT\"", s);
		return -1;
	}
	if (host_port(s, a, err, errlen) < 0)
		return -1;
	return 0;
}

/* ---- host names ---- */

static int
host_matches(const char *pat, const char *host, size_t len)
{
	size_t pl = strlen(pat);
	const char *dot;

	if (strcmp(pat, "*") == 0)
		return 1;
	if (pl > 2 && pat[0] == '*' && pat[1] == '.') {
		/* "*.example.com" matches exactly one more label */
		dot = memchr(host, '.', len);
		if (dot == NULL || dot == host)
			return 0;
		return cg_strcaseeq(dot + 1, len - (size_t)(dot + 1 - host), pat + 2, pl - 2);
	}
	return cg_strcaseeq(pat, pl, host, len);
}

int
gw_site_has_host(const struct gw_site *s, const char *host, size_t len)
{
	size_t i;

	for (i = 0; i < s->conf->hosts.n; i++)
		if (host_matches(s->conf->hosts.v[i], host, len))
			return 1;
	return 0;
}

struct gw_site *
gw_site_for_host(const struct gw_listener *l, const char *host, size_t len)
{
	size_t i, j;

	if (host != NULL && len > 0) {
		/* Exact names win over wildcards, whatever the order in the file. */
		for (i = 0; i < l->nsites; i++)
			for (j = 0; j < l->sites[i]->conf->hosts.n; j++) {
				const char *p = l->sites[i]->conf->hosts.v[j];

				if (p[0] != '*' && cg_strcaseeq(p, strlen(p), host, len))
					return l->sites[i];
			}
		for (i = 0; i < l->nsites; i++)
			if (gw_site_has_host(l->sites[i], host, len))
				return l->sites[i];
	}
	return l->default_site;
}

/* ---- building the snapshot ---- */

static void
build_trusts(struct gw_config *cfg, struct cg_errors *errs)
{
	size_t i;

	cfg->ntrusts = cfg->raw.trust.n;
	cfg->trusts = cg_calloc(cfg->ntrusts, sizeof(*cfg->trusts));
	for (i = 0; i < cfg->ntrusts; i++)
		cfg->trusts[i] = ca_trust_new(CG_VEC_AT(cfg->raw.trust, struct ca_trust_conf, i),
		    errs);
}

static void
build_directories(struct gw_config *cfg, struct cg_errors *errs)
{
	size_t i;

	cfg->ndirectories = cfg->raw.directories.n;
	cfg->directories = cg_calloc(cfg->ndirectories, sizeof(*cfg->directories));
	for (i = 0; i < cfg->ndirectories; i++)
		ca_directory_build(&cfg->directories[i],
		    CG_VEC_AT(cfg->raw.directories, struct ca_directory_conf, i), errs);
}

/* Policies, with their "directory:NAME" mappings resolved. */
static void
build_policies(struct gw_config *cfg, struct cg_errors *errs)
{
	size_t i, j, k;

	cfg->npolicies = cfg->raw.policies.n;
	cfg->policies = cg_calloc(cfg->npolicies, sizeof(*cfg->policies));
	for (i = 0; i < cfg->npolicies; i++) {
		struct pol_policy *p = &cfg->policies[i];
		const struct pol_policy_conf *pc = CG_VEC_AT(cfg->raw.policies,
		    struct pol_policy_conf, i);

		pol_policy_build(p, pc, errs);
		for (j = 0; j < p->nmapping; j++) {
			if (p->mapping[j] != CA_SRC_DIRECTORY)
				continue;
			for (k = 0; k < cfg->ndirectories; k++)
				if (strcmp(cfg->directories[k].conf->name, p->map_directory[j]) == 0)
					break;
			if (k == cfg->ndirectories)
				cg_error_add(errs, cg_conf_setting(&pc->src, "mapping"),
				    "policy \"%s\": no directory named \"%s\"", p->name,
				    p->map_directory[j]);
			p->map_dir_index[j] = k;
		}
	}
}

/* The policy named `name` ("" for the fallback), or NULL when none is. */
static const struct pol_policy *
find_policy(const struct gw_config *cfg, const char *name, const struct pol_policy *fallback)
{
	size_t i;

	if (name[0] == '\0')
		return fallback;
	for (i = 0; i < cfg->npolicies; i++)
		if (strcmp(cfg->policies[i].name, name) == 0)
			return &cfg->policies[i];
	return NULL;
}

static struct gw_backend_def *
find_backend(struct gw_config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->nbackends; i++)
		if (strcmp(cfg->backends[i].conf->name, name) == 0)
			return &cfg->backends[i];
	return NULL;
}

/* A spawned application runs as `user`/`group`, by default the workers'
 * user and group: never as root by omission. */
static void
check_spawn(struct gw_config *cfg, const struct gw_backend_conf *bc, struct cg_errors *errs)
{
	struct gw_spawn_conf *s = bc->spawn;

	if (s->user[0] == '\0') {
		free(s->user);
		s->user = cg_strdup(cfg->raw.user);
	}
	if (s->group[0] == '\0') {
		free(s->group);
		s->group = cg_strdup(cfg->raw.group);
	}
	if (getpwnam(s->user) == NULL)
		cg_error_add(errs, cg_conf_setting(&s->src, "user"),
		    "backend \"%s\": user \"%s\" does not exist", bc->name, s->user);
	if (getgrnam(s->group) == NULL)
		cg_error_add(errs, cg_conf_setting(&s->src, "group"),
		    "backend \"%s\": group \"%s\" does not exist", bc->name, s->group);
	if (s->command.n == 0)
		cg_error_add(errs, cg_conf_setting(&s->src, "command"),
		    "backend \"%s\": \"command\" is empty", bc->name);
}

/* "unix:DIR/NAME-HASH.sock": DIR is the service's runtime directory, HASH
 * tells apart instances started from different configuration files. */
static char *
private_socket(const char *config_path, const char *backend)
{
	char abs[PATH_MAX], dir[PATH_MAX];
	const char *p = realpath(config_path, abs) ? abs : config_path;
	const char *rt = getenv("RUNTIME_DIRECTORY");
	uint32_t h = 2166136261u;

	for (; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	if (rt != NULL && rt[0] == '/')
		snprintf(dir, sizeof(dir), "%s", rt);
	else if (getuid() == 0)
		snprintf(dir, sizeof(dir), "/run/certgate");
	else
		snprintf(dir, sizeof(dir), "/tmp/certgate-%u", (unsigned)getuid());
	return cg_printf("unix:%s/%s-%08x.sock", dir, backend, h);
}

static void
build_backends(struct gw_config *cfg, struct cg_errors *errs)
{
	char err[256];
	size_t i, j;

	cfg->nbackends = cfg->raw.backends.n;
	cfg->backends = cg_calloc(cfg->nbackends, sizeof(*cfg->backends));
	for (i = 0; i < cfg->nbackends; i++) {
		const struct gw_backend_conf *bc = CG_VEC_AT(cfg->raw.backends, struct gw_backend_conf, i);
		struct gw_backend_def *b = &cfg->backends[i];

		b->conf = bc;
		b->index = i;
		if (bc->spawn != NULL)
			check_spawn(cfg, bc, errs);
		if (bc->connect.n == 0 && bc->spawn != NULL) {
			/* A spawned application without `connect`: a private socket. */
			char *addr = private_socket(cfg->path, bc->name);

			b->addrs = cg_calloc(1, sizeof(*b->addrs));
			if (gw_addr_parse(addr, &b->addrs[0], err, sizeof(err)) < 0)
				cg_error_add(errs, bc->src.setting, "backend \"%s\": %s", bc->name, err);
			else
				b->naddrs = 1;
			free(addr);
			continue;
		}
		if (bc->connect.n == 0) {
			cg_error_add(errs, bc->src.setting, "backend \"%s\": \"connect\" lists no address",
			    bc->name);
			continue;
		}
		if (bc->spawn != NULL && (bc->connect.n != 1 || strncmp(bc->connect.v[0], "unix:", 5))) {
			cg_error_add(errs, cg_conf_setting(&bc->src, "connect"),
			    "backend \"%s\": a spawned backend needs exactly one \"unix:\" address",
			    bc->name);
		}
		if (bc->connect.n > 64)
			cg_error_add(errs, cg_conf_setting(&bc->src, "connect"),
			    "backend \"%s\": at most 64 addresses", bc->name);
		b->addrs = cg_calloc(bc->connect.n, sizeof(*b->addrs));
		for (j = 0; j < bc->connect.n; j++) {
			if (gw_addr_parse(bc->connect.v[j], &b->addrs[b->naddrs], err,
			    sizeof(err)) < 0) {
				cg_error_add(errs, cg_conf_setting(&bc->src, "connect"),
				    "backend \"%s\": %s", bc->name, err);
				continue;
			}
			b->naddrs++;
		}
	}
}

static void set_client_ca_names(struct gw_config *cfg, struct gw_site *s,
    struct cg_errors *errs);

/*
 * The certificate chain and its private key, both PEM. certgate reads the
 * files itself rather than through gnutls_certificate_set_x509_key_file2:
 * the key then passes through one buffer of ours, never reallocated, that is
 * wiped before it is freed; GnuTLS's own copy is cleared by GnuTLS when the
 * credentials are freed (gnutls_pk_params_clear). 1, or 0 with the reason
 * (the file's error, or GnuTLS's) added to errs at setting.
 */
#define KEY_FILE_MAX	(1024 * 1024)

static int
set_key_pair(gnutls_certificate_credentials_t cred, const char *cert_path,
    const char *key_path, const char *site, const config_setting_t *setting,
    struct cg_errors *errs)
{
	gnutls_datum_t cert, key;
	size_t clen, klen;
	int rc, err;

	if ((cert.data = cg_read_file(cert_path, KEY_FILE_MAX, &clen, &err, NULL)) == NULL) {
		cg_error_add(errs, setting, "site \"%s\": certificate \"%s\": %s", site, cert_path,
		    strerror(err));
		return 0;
	}
	if ((key.data = cg_read_file(key_path, KEY_FILE_MAX, &klen, &err, NULL)) == NULL) {
		cg_error_add(errs, setting, "site \"%s\": key \"%s\": %s", site, key_path,
		    strerror(err));
		free(cert.data);
		return 0;
	}
	cert.size = (unsigned)clen;
	key.size = (unsigned)klen;
	rc = gnutls_certificate_set_x509_key_mem2(cred, &cert, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
	cg_wipe_free(key.data, klen + 1);
	free(cert.data);
	if (rc < 0) {
		cg_error_add(errs, setting, "site \"%s\": cannot load certificate \"%s\" with key "
		    "\"%s\": %s (%d)", site, cert_path, key_path, gnutls_strerror(rc), rc);
		return 0;
	}
	return 1;
}

static void
load_site_credentials(struct gw_config *cfg, struct gw_site *s, struct cg_errors *errs)
{
	const struct gw_site_conf *sc = s->conf;
	gnutls_x509_crt_t *crts = NULL;
	unsigned ncrts = 0;
	int rc;

	if (sc->certificate[0] == '\0' || sc->key[0] == '\0') {
		cg_error_add(errs, sc->src.setting,
		    "site \"%s\": an https listener needs \"certificate\" and \"key\"", sc->name);
		return;
	}
	if ((rc = gnutls_certificate_allocate_credentials(&s->cred)) < 0)
		cg_fatal("gnutls_certificate_allocate_credentials: %s (%d)", gnutls_strerror(rc), rc);
	if (!set_key_pair(s->cred, sc->certificate, sc->key, sc->name,
	    cg_conf_setting(&sc->src, "certificate"), errs))
		return;
	/* The leaf's names, for SSL_SERVER_S_DN and friends. */
	rc = gnutls_certificate_get_x509_crt(s->cred, 0, &crts, &ncrts);
	if (rc >= 0 && ncrts > 0) {
		gnutls_datum_t der = { NULL, 0 };
		struct ca_facts f;
		char err[128];

		if (gnutls_x509_crt_export2(crts[0], GNUTLS_X509_FMT_DER, &der) >= 0 &&
		    ca_facts_from_der(der.data, der.size, &f, err, sizeof(err)) == 0) {
			s->server_subject = cg_strdup(f.subject.rfc4514);
			s->server_issuer = cg_strdup(f.issuer.rfc4514);
			s->server_subject_iis = cg_strdup(f.subject.iis);
			s->server_issuer_iis = cg_strdup(f.issuer.iis);
			s->server_key_bits = f.key_bits;
			ca_facts_free(&f);
		}
		gnutls_free(der.data);
		for (unsigned i = 0; i < ncrts; i++)
			gnutls_x509_crt_deinit(crts[i]);
		gnutls_free(crts);
	}
	if (s->client_auth != GW_CA_OFF && s->trust >= 0)
		set_client_ca_names(cfg, s, errs);
}

/* The CA names of the CertificateRequest: `advertise`, else `ca`. GnuTLS
 * takes them from the credentials' own trust list; verification itself is
 * certauth's (gw_tls_verify), never GnuTLS's default. */
static void
set_client_ca_names(struct gw_config *cfg, struct gw_site *s, struct cg_errors *errs)
{
	const struct ca_trust_conf *tc = CG_VEC_AT(cfg->raw.trust, struct ca_trust_conf,
	    (size_t)s->trust);
	const struct cg_strv *files = tc->advertise.n ? &tc->advertise : &tc->ca;
	size_t i;
	int rc;

	for (i = 0; i < files->n; i++) {
		rc = gnutls_certificate_set_x509_trust_file(s->cred, files->v[i], GNUTLS_X509_FMT_PEM);
		if (rc < 0)
			rc = gnutls_certificate_set_x509_trust_file(s->cred, files->v[i],
			    GNUTLS_X509_FMT_DER);
		if (rc < 0)
			cg_error_add(errs, cg_conf_setting(&tc->src, tc->advertise.n ? "advertise" : "ca"),
			    "trust \"%s\": cannot load \"%s\": %s (%d)", tc->name, files->v[i],
			    gnutls_strerror(rc), rc);
	}
	gnutls_certificate_set_verify_function(s->cred, gw_tls_verify);
}

static void
build_sites(struct gw_config *cfg, struct cg_errors *errs)
{
	size_t i, j, k;

	cfg->nsites = cfg->raw.sites.n;
	cfg->sites = cg_calloc(cfg->nsites, sizeof(*cfg->sites));
	for (i = 0; i < cfg->nsites; i++) {
		struct gw_site *s = &cfg->sites[i];
		const struct gw_site_conf *sc = CG_VEC_AT(cfg->raw.sites, struct gw_site_conf, i);

		s->conf = sc;
		s->trust = -1;
		s->policy = find_policy(cfg, sc->policy, &pol_default_policy);
		if (s->policy == NULL) {
			cg_error_add(errs, cg_conf_setting(&sc->src, "policy"),
			    "site \"%s\": no policy named \"%s\"", sc->name, sc->policy);
			s->policy = &pol_default_policy;
		}
		for (j = 0; j < cfg->ntrusts; j++)
			if (strcmp(CG_VEC_AT(cfg->raw.trust, struct ca_trust_conf, j)->name,
			    sc->client_trust) == 0)
				s->trust = (ssize_t)j;
		if (sc->client_trust[0] != '\0' && s->trust < 0)
			cg_error_add(errs, cg_conf_setting(&sc->src, "client_trust"),
			    "site \"%s\": no trust named \"%s\"", sc->name, sc->client_trust);
		for (j = 0; j < i; j++)
			if (strcmp(cfg->sites[j].conf->name, sc->name) == 0)
				cg_error_add(errs, cg_conf_setting(&sc->src, "name"),
				    "site \"%s\" is defined twice", sc->name);
		s->nlocs = sc->locations.n;
		s->locs = cg_calloc(s->nlocs, sizeof(*s->locs));
		s->loc_paths = cg_calloc(s->nlocs, sizeof(*s->loc_paths));
		s->loc_lens = cg_calloc(s->nlocs, sizeof(*s->loc_lens));
		for (j = 0; j < s->nlocs; j++) {
			const struct gw_location_conf *lc =
			    CG_VEC_AT(sc->locations, struct gw_location_conf, j);
			struct gw_location *l = &s->locs[j];
			size_t plen = strlen(lc->path);

			l->conf = lc;
			s->loc_paths[j] = lc->path;
			s->loc_lens[j] = plen;
			if (lc->path[0] != '/')
				cg_error_add(errs, cg_conf_setting(&lc->src, "path"),
				    "location path \"%s\" must start with '/'", lc->path);
			for (k = 0; k < j; k++)
				if (cg_strcaseeq(s->loc_paths[k], s->loc_lens[k], lc->path, plen))
					cg_error_add(errs, cg_conf_setting(&lc->src, "path"),
					    "location \"%s\" is defined twice in site \"%s\"%s",
					    lc->path, sc->name, strcmp(s->loc_paths[k], lc->path) ?
					    " (letter case aside: every request under it would be refused)" :
					    "");
			l->script_name = cg_strndup(lc->path,
			    plen > 0 && lc->path[plen - 1] == '/' ? plen - 1 : plen);
			l->policy = find_policy(cfg, lc->policy, s->policy);
			if (l->policy == NULL) {
				cg_error_add(errs, cg_conf_setting(&lc->src, "policy"),
				    "location \"%s\": no policy named \"%s\"", lc->path, lc->policy);
				l->policy = s->policy;
			}
			l->backend = find_backend(cfg, lc->backend);
			if (l->backend != NULL && l->backend->conf->role != GW_ROLE_RESPONDER)
				cg_error_add(errs, cg_conf_setting(&lc->src, "backend"),
				    "location \"%s\": backend \"%s\" is an authorizer, not a "
				    "responder", lc->path, lc->backend);
			if (l->policy->authorizer[0] != '\0') {
				l->authorizer = find_backend(cfg, l->policy->authorizer);
				if (l->authorizer == NULL || l->authorizer->conf->role != GW_ROLE_AUTHORIZER)
					cg_error_add(errs, cg_conf_setting(&lc->src, "policy"),
					    "policy \"%s\": no backend \"%s\" with role \"authorizer\"",
					    l->policy->name, l->policy->authorizer);
			}
			if (l->backend == NULL)
				cg_error_add(errs, cg_conf_setting(&lc->src, "backend"),
				    "location \"%s\": no backend named \"%s\"", lc->path, lc->backend);
		}
	}
}

/* tls_client_auth: "auto" asks for a certificate when a policy of the site
 * accepts or requires one; asking needs a trust to verify against. */
static void
resolve_client_auth(struct gw_config *cfg, struct gw_site *s, struct cg_errors *errs)
{
	struct gw_site_conf *sc = (struct gw_site_conf *)s->conf;
	const config_setting_t *where = cg_conf_setting(&sc->src, "tls_client_auth");
	int wants = s->policy->client_certificate != POL_CERT_IGNORE;
	size_t j;

	for (j = 0; j < s->nlocs; j++)
		wants |= s->locs[j].policy->client_certificate != POL_CERT_IGNORE;
	s->client_auth = (enum gw_client_auth)sc->tls_client_auth;
	if (s->client_auth == GW_CA_AUTO)
		s->client_auth = wants ? GW_CA_REQUEST : GW_CA_OFF;
	sc->tls_client_auth = (int)s->client_auth;	/* -p prints it resolved */
	cfg->any_deferred |= s->client_auth == GW_CA_DEFERRED;
	if (s->client_auth != GW_CA_OFF && s->trust < 0)
		cg_error_add(errs, where, "site \"%s\": asking for client certificates needs "
		    "\"client_trust\"", sc->name);
	if (s->client_auth == GW_CA_OFF && wants)
		cg_error_add(errs, where, "site \"%s\": a policy accepts or requires a client "
		    "certificate but tls_client_auth is \"off\"", sc->name);
	(void)cfg;
}

static struct gw_listener *
listener_for(struct gw_config *cfg, const char *name, const config_setting_t *where,
    struct cg_errors *errs)
{
	struct gw_listener *l;
	struct gw_addr a;
	char err[256];
	size_t i;
	int tls;

	for (i = 0; i < cfg->nlisteners; i++)
		if (strcmp(cfg->listeners[i].name, name) == 0)
			return &cfg->listeners[i];
	if (gw_listen_parse(name, &a, &tls, err, sizeof(err)) < 0) {
		cg_error_add(errs, where, "%s", err);
		return NULL;
	}
	for (i = 0; i < cfg->nlisteners; i++)
		if (cfg->listeners[i].addr.len == a.len &&
		    memcmp(&cfg->listeners[i].addr.ss, &a.ss, a.len) == 0) {
			cg_error_add(errs, where, "\"%s\" is the same address as \"%s\"", name,
			    cfg->listeners[i].name);
			return NULL;
		}
	cfg->listeners = cg_realloc(cfg->listeners, (cfg->nlisteners + 1) * sizeof(*l));
	l = &cfg->listeners[cfg->nlisteners++];
	memset(l, 0, sizeof(*l));
	l->name = cg_strdup(name);
	l->tls = tls;
	l->addr = a;
	l->addr.name = cg_strdup(name);
	l->fd = -1;
	if (a.ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a.ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, l->host, sizeof(l->host));
		l->port = ntohs(in6->sin6_port);
	} else {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&a.ss;

		inet_ntop(AF_INET, &in->sin_addr, l->host, sizeof(l->host));
		l->port = ntohs(in->sin_port);
	}
	return l;
}

static void
build_listeners(struct gw_config *cfg, struct cg_errors *errs)
{
	size_t i, j;

	for (i = 0; i < cfg->nsites; i++) {
		struct gw_site *s = &cfg->sites[i];
		int https = 0;

		for (j = 0; j < s->conf->listen.n; j++) {
			struct gw_listener *l = listener_for(cfg, s->conf->listen.v[j],
			    cg_conf_setting(&s->conf->src, "listen"), errs);

			if (l == NULL)
				continue;
			if (l->tls && s->https_port == 0)
				s->https_port = l->port;
			https |= l->tls;
		}
		resolve_client_auth(cfg, s, errs);
		if (https)
			load_site_credentials(cfg, s, errs);
	}
	/* Sites point into cfg->sites, stable now; listeners were reallocated
	 * above, so the site lists are filled in a second pass. */
	for (i = 0; i < cfg->nsites; i++) {
		struct gw_site *s = &cfg->sites[i];

		for (j = 0; j < s->conf->listen.n; j++) {
			struct gw_listener *l = NULL;
			size_t k;

			for (k = 0; k < cfg->nlisteners; k++)
				if (strcmp(cfg->listeners[k].name, s->conf->listen.v[j]) == 0)
					l = &cfg->listeners[k];
			if (l == NULL)
				continue;
			l->sites = cg_realloc(l->sites, (l->nsites + 1) * sizeof(*l->sites));
			l->sites[l->nsites++] = s;
			if (s->conf->is_default) {
				if (l->default_site != NULL && l->default_site->conf->is_default)
					cg_error_add(errs, cg_conf_setting(&s->conf->src, "default"),
					    "sites \"%s\" and \"%s\" are both the default of %s",
					    l->default_site->conf->name, s->conf->name, l->name);
				l->default_site = s;
			} else if (l->default_site == NULL) {
				l->default_site = s;
			}
		}
	}
	if (cfg->nlisteners == 0)
		cg_error_at(errs, cfg->path, 0, "no site listens anywhere (\"sites\" is empty)");
}

/* proxy_protocol: the listeners it names must exist; the sources they
 * accept headers from must be given, since none would refuse everyone. */
static void
build_proxy(struct gw_config *cfg, const config_t *lc, struct cg_errors *errs)
{
	const struct gw_proxy_conf *pc = &cfg->raw.proxy;
	const config_setting_t *where;
	char err[256];
	size_t i, j;

	where = config_lookup(lc, "proxy_protocol.listeners");
	for (i = 0; i < pc->listeners.n; i++) {
		for (j = 0; j < cfg->nlisteners; j++)
			if (strcmp(cfg->listeners[j].name, pc->listeners.v[i]) == 0)
				break;
		if (j == cfg->nlisteners)
			cg_error_add(errs, where, "proxy_protocol.listeners: \"%s\" is not in any "
			    "site's \"listen\"", pc->listeners.v[i]);
		else
			cfg->listeners[j].proxy = 1;
	}
	where = config_lookup(lc, "proxy_protocol.trusted");
	cfg->proxy_trusted = cg_calloc(pc->trusted.n ? pc->trusted.n : 1,
	    sizeof(*cfg->proxy_trusted));
	for (i = 0; i < pc->trusted.n; i++) {
		if (gw_cidr_parse(pc->trusted.v[i], &cfg->proxy_trusted[cfg->nproxy_trusted], err,
		    sizeof(err)) < 0)
			cg_error_add(errs, where, "proxy_protocol.trusted: %s", err);
		else
			cfg->nproxy_trusted++;
	}
	if (pc->listeners.n > 0 && pc->trusted.n == 0)
		cg_error_add(errs, where ? where : config_lookup(lc, "proxy_protocol"),
		    "proxy_protocol.trusted is empty: every connection to its listeners would "
		    "be refused");
}

/* ---- the shared session ticket key ---- */

#define TICKET_KEY_BYTES 64	/* what gnutls_session_ticket_enable_server takes */
#define TICKET_KEY_FILE_MAX 1024

static void
file_id_of(const struct stat *st, struct gw_file_id *id)
{
	memset(id, 0, sizeof(*id));
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtime = st->st_mtim;
	id->ctime = st->st_ctim;
}

int
gw_file_id_get(const char *path, struct gw_file_id *id)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -1;
	file_id_of(&st, id);
	return 0;
}

const gnutls_datum_t *
gw_config_ticket_key(const struct gw_config *cfg)
{
	return cfg->ticket_key.size > 0 ? &cfg->ticket_key : &gw_ticket_key;
}

/* tls.ticket_key_file: 64 random bytes in base64 (`openssl rand -base64 64`),
 * line breaks and spaces ignored. A secret: refused when others may read
 * or write it; every buffer that held it is wiped. */
static void
load_ticket_key(struct gw_config *cfg, const config_t *lc, struct cg_errors *errs)
{
	const char *path = cfg->raw.tls.ticket_key_file;
	const config_setting_t *where = config_lookup(lc, "tls.ticket_key_file");
	char text[TICKET_KEY_FILE_MAX + 1], b64[TICKET_KEY_FILE_MAX];
	gnutls_datum_t in, out = { NULL, 0 };
	struct stat st;
	size_t i, n = 0;
	ssize_t got;
	int fd, rc;

	if (path[0] == '\0')
		return;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0) {
		cg_error_add(errs, where, "tls.ticket_key_file: cannot read \"%s\": %s", path,
		    strerror(errno));
		goto out;
	}
	file_id_of(&st, &cfg->ticket_key_id);
	if (st.st_mode & (S_IROTH | S_IWOTH)) {
		cg_error_add(errs, where, "tls.ticket_key_file: \"%s\" is open to other users "
		    "(chmod 600 or 640)", path);
		goto out;
	}
	got = read(fd, text, sizeof(text));
	if (got < 0 || (size_t)got > TICKET_KEY_FILE_MAX) {
		cg_error_add(errs, where, "tls.ticket_key_file: \"%s\": %s", path,
		    got < 0 ? strerror(errno) : "too large for a key");
		goto out;
	}
	for (i = 0; i < (size_t)got; i++)
		if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n')
			b64[n++] = text[i];
	in.data = (unsigned char *)b64;
	in.size = (unsigned)n;
	rc = n > 0 ? gnutls_base64_decode2(&in, &out) : GNUTLS_E_BASE64_DECODING_ERROR;
	if (rc < 0 || out.size != TICKET_KEY_BYTES) {
		cg_error_add(errs, where, "tls.ticket_key_file: \"%s\" is not %d bytes in base64 "
		    "(make one with: openssl rand -base64 %d)", path, TICKET_KEY_BYTES,
		    TICKET_KEY_BYTES);
		goto out;
	}
	cfg->ticket_key.data = gnutls_malloc(TICKET_KEY_BYTES);
	if (cfg->ticket_key.data == NULL)
		cg_fatal("out of memory");
	memcpy(cfg->ticket_key.data, out.data, TICKET_KEY_BYTES);
	cfg->ticket_key.size = TICKET_KEY_BYTES;
out:
	if (fd >= 0)
		close(fd);
	if (out.data != NULL) {
		gnutls_memset(out.data, 0, out.size);
		gnutls_free(out.data);
	}
	gnutls_memset(text, 0, sizeof(text));
	gnutls_memset(b64, 0, sizeof(b64));
}

/* An error at a top-level key's line, or at the file when the key is
 * absent (its default is what failed). */
static void
error_at_key(const struct gw_config *cfg, const config_t *lc, const char *key, const char *fmt,
    const char *arg, struct cg_errors *errs)
{
	const config_setting_t *s = config_lookup(lc, key);
	char msg[512];

	snprintf(msg, sizeof(msg), fmt, arg);
	if (s != NULL)
		cg_error_add(errs, s, "%s", msg);
	else
		cg_error_at(errs, cfg->path, 0, "%s", msg);
}

static void
build_process(struct gw_config *cfg, const config_t *lc, struct cg_errors *errs)
{
	const struct gw_conf *c = &cfg->raw;
	struct passwd *pw;
	struct group *gr;
	long n;

	if (c->workers < 0) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		cfg->workers = n > 0 ? (int)n : 1;
	} else {
		cfg->workers = (int)c->workers;
	}
	cfg->uid = getuid();
	cfg->gid = getgid();
	if ((pw = getpwnam(c->user)) == NULL)
		error_at_key(cfg, lc, "user", "user \"%s\" does not exist", c->user, errs);
	else
		cfg->uid = pw->pw_uid;
	if ((gr = getgrnam(c->group)) == NULL)
		error_at_key(cfg, lc, "group", "group \"%s\" does not exist", c->group, errs);
	else
		cfg->gid = gr->gr_gid;
}

struct gw_config *
gw_config_load(const char *path, struct cg_errors *errs)
{
	struct gw_config *cfg = cg_calloc(1, sizeof(*cfg));
	const char *errpos = NULL;
	char *copy, *dir, abs[PATH_MAX];
	config_t lc;
	size_t before = errs->n;
	int rc;

	cfg->path = cg_strdup(path);
	if (cg_conf_read_file(&lc, path, errs) < 0) {
		config_destroy(&lc);
		gw_config_free(cfg);
		return NULL;
	}
	copy = cg_strdup(realpath(path, abs) ? abs : path);
	dir = dirname(copy);
	/* Parse errors leave defaults behind, so the checks across keys still
	 * run: -t lists every error at once. */
	cg_conf_parse(config_root_setting(&lc), &gw_conf_schema, &cfg->raw, dir, errs);
	rc = gnutls_priority_init2(&cfg->priority, cfg->raw.tls.priorities, &errpos, 0);
	if (rc < 0) {
		cg_error_add(errs, config_lookup(&lc, "tls.priorities"),
		    "tls.priorities: %s (%d) at \"%s\"", gnutls_strerror(rc), rc,
		    errpos ? errpos : "");
		cfg->priority = NULL;
	}
	load_ticket_key(cfg, &lc, errs);
	build_trusts(cfg, errs);
	cfg->mapper = ca_mapper_new(&cfg->raw.accounts, dir, errs);
	build_directories(cfg, errs);
	build_policies(cfg, errs);
	build_backends(cfg, errs);
	build_sites(cfg, errs);
	build_listeners(cfg, errs);
	build_proxy(cfg, &lc, errs);
	build_process(cfg, &lc, errs);
	/* Settings point into lc: nothing may use src.setting after this. */
	config_destroy(&lc);
	free(copy);
	if (errs->n != before) {
		gw_config_free(cfg);
		return NULL;
	}
	/* The libconfig tree was the larger part of the load, and its pages
	 * sit between what stays: glibc gives them back only when asked.
	 * With 100,000 one-to-one entries that is half of what master and
	 * workers would otherwise keep. */
	malloc_trim(0);
	return cfg;
}

void
gw_config_print(const struct gw_config *cfg, FILE *f)
{
	fprintf(f, "# certgate %s: effective configuration of %s\n", CG_VERSION, cfg->path);
	cg_conf_print(f, &gw_conf_schema, &cfg->raw, 0);
}

void
gw_config_free(struct gw_config *cfg)
{
	size_t i, j;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->nlisteners; i++) {
		free(cfg->listeners[i].name);
		free(cfg->listeners[i].addr.name);
		free(cfg->listeners[i].sites);
	}
	free(cfg->listeners);
	for (i = 0; i < cfg->nsites; i++) {
		struct gw_site *s = &cfg->sites[i];

		if (s->cred)
			gnutls_certificate_free_credentials(s->cred);
		for (j = 0; j < s->nlocs; j++)
			free(s->locs[j].script_name);
		free(s->locs);
		free(s->loc_paths);
		free(s->loc_lens);
		free(s->server_subject);
		free(s->server_issuer);
		free(s->server_subject_iis);
		free(s->server_issuer_iis);
	}
	free(cfg->sites);
	for (i = 0; i < cfg->nbackends; i++) {
		for (j = 0; j < cfg->backends[i].naddrs; j++)
			free(cfg->backends[i].addrs[j].name);
		free(cfg->backends[i].addrs);
	}
	free(cfg->backends);
	for (i = 0; i < cfg->ntrusts; i++)
		ca_trust_unref(cfg->trusts[i]);
	free(cfg->trusts);
	free(cfg->policies);
	free(cfg->proxy_trusted);
	if (cfg->ticket_key.data != NULL) {
		gnutls_memset(cfg->ticket_key.data, 0, cfg->ticket_key.size);
		gnutls_free(cfg->ticket_key.data);
	}
	ca_mapper_free(cfg->mapper);
	for (i = 0; i < cfg->ndirectories; i++)
		ca_directory_free(&cfg->directories[i]);
	free(cfg->directories);
	if (cfg->priority)
		gnutls_priority_deinit(cfg->priority);
	cg_conf_free(&gw_conf_schema, &cfg->raw);
	free(cfg->path);
	free(cfg);
}
