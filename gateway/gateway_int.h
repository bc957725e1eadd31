/*
 * gateway_int.h: declarations shared by the gateway's files, grouped by the
 * file that defines them, so this header reads as the module's table of
 * contents. Raw configuration (config.c) is kept apart from live state
 * (worker.c, conn.c, fcgi.c).
 */
#ifndef GATEWAY_INT_H
#define GATEWAY_INT_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <ev.h>
#include <gnutls/gnutls.h>
#include <llhttp.h>

#include "common/common.h"
#include "gateway/gateway.h"
#include "gateway/fcgi_proto.h"
#include "gateway/proxy_proto.h"
#include "certauth/certauth.h"
#include "policies/policies.h"

/* ---- config.c: raw configuration (as written) and the built snapshot ---- */

enum gw_log_format { GW_ALOG_COMBINED_PLUS, GW_ALOG_JSON, GW_ALOG__MAX };
enum gw_role { GW_ROLE_RESPONDER, GW_ROLE_AUTHORIZER, GW_ROLE__MAX };
/* A site's tls_client_auth; AUTO is the default, resolved by config.c. */
enum gw_client_auth { GW_CA_OFF, GW_CA_REQUEST, GW_CA_REQUIRE, GW_CA_DEFERRED, GW_CA_AUTO,
	GW_CA__MAX };
extern const char *const gw_client_auth_names[GW_CA__MAX];

struct gw_limits_conf {
	int64_t handshake_timeout, header_timeout, body_timeout;
	int64_t keepalive_timeout, send_timeout;
	int64_t max_header_size, max_uri_size, max_headers, max_body_size;
	int64_t max_connections;
};

struct gw_tls_conf {
	char *priorities;
	int session_tickets;
	char *ticket_key_file;
};

/* proxy_protocol: listeners behind a TCP balancer (SPEC section 11). */
struct gw_proxy_conf {
	struct cg_strv listeners;	/* names as written in a site's `listen` */
	struct cg_strv trusted;		/* CIDRs the headers may come from */
	int64_t header_timeout;
};

struct gw_spawn_conf {
	struct cg_conf_src src;
	struct cg_strv command;
	int64_t processes;
	char *user, *group;
	struct cg_strmap environment;
	char *working_directory;
};

struct gw_backend_conf {
	struct cg_conf_src src;
	char *name;
	struct cg_strv connect;
	int role;			/* enum gw_role */
	struct gw_spawn_conf *spawn;	/* NULL: not spawned by certgate */
	int64_t connect_timeout, timeout;
	int keep_connections;
	int64_t max_connections, queue;
	struct cg_strmap params;
};

struct gw_location_conf {
	struct cg_conf_src src;
	char *path;
	char *backend;
	char *policy;			/* "": the site's */
	char *document_root;		/* DOCUMENT_ROOT; "" for none */
	char *script_filename;		/* SCRIPT_FILENAME; "": document_root + path */
};

struct gw_site_conf {
	struct cg_conf_src src;
	char *name;
	struct cg_strv listen, hosts;
	int is_default;
	char *certificate, *key;
	char *client_trust;		/* a `trust` entry, "" for none */
	int tls_client_auth;		/* enum gw_client_auth */
	char *policy;			/* "": every key at its default */
	struct cg_vec locations;	/* struct gw_location_conf */
};

struct gw_conf {
	int daemon;
	int64_t workers;		/* -1: one per CPU */
	char *user, *group, *pid_file;
	char *error_log, *access_log;
	int access_log_format;		/* enum gw_log_format */
	int log_level;			/* enum cg_log_level */
	int64_t shutdown_timeout;
	struct gw_limits_conf limits;
	struct gw_tls_conf tls;
	struct gw_proxy_conf proxy;
	struct cg_vec trust;		/* struct ca_trust_conf */
	struct ca_accounts_conf accounts;
	struct cg_vec directories;	/* struct ca_directory_conf */
	struct cg_vec policies;		/* struct pol_policy_conf */
	struct cg_vec backends;		/* struct gw_backend_conf */
	struct cg_vec sites;		/* struct gw_site_conf */
};

extern const struct cg_conf_schema gw_conf_schema;

/* Enough of a file's stat to tell that it changed or was replaced. */
struct gw_file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

struct gw_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char *name;			/* as written: "unix:/run/app.sock" */
};

struct gw_backend_def {
	const struct gw_backend_conf *conf;
	struct gw_addr *addrs;
	size_t naddrs;
	size_t index;			/* in gw_config.backends */
};

struct gw_location {
	const struct gw_location_conf *conf;
	const struct pol_policy *policy;
	struct gw_backend_def *backend;
	struct gw_backend_def *authorizer;	/* the policy's, or NULL */
	char *script_name;		/* path without its trailing '/' */
};

struct gw_site {
	const struct gw_site_conf *conf;
	gnutls_certificate_credentials_t cred;	/* NULL when no https listener */
	enum gw_client_auth client_auth;	/* resolved: never AUTO */
	ssize_t trust;			/* index in gw_config.trusts, -1: none */
	const struct pol_policy *policy;
	struct gw_location *locs;
	size_t nlocs;
	const char **loc_paths;		/* for pol_location_match */
	size_t *loc_lens;
	int https_port;			/* first https listener's port, 0: none */
	char *server_subject, *server_issuer;	/* of its certificate (RFC 4514) */
	char *server_subject_iis, *server_issuer_iis;	/* the same, IIS order */
	unsigned server_key_bits;
};

struct gw_listener {
	char *name;			/* as written in `listen` */
	int tls;
	struct gw_addr addr;
	char host[64];			/* numeric, for SERVER_ADDR */
	int port;
	int proxy;			/* expects a PROXY protocol header */
	int fd;				/* -1 until bound (master) */
	struct gw_site **sites;
	size_t nsites;
	struct gw_site *default_site;
};

struct gw_config {
	struct gw_conf raw;
	char *path;
	gnutls_priority_t priority;
	struct ca_trust **trusts;	/* one per raw.trust; swapped on CRL reload */
	size_t ntrusts;
	struct pol_policy *policies;	/* one per raw.policies */
	size_t npolicies;
	struct ca_mapper *mapper;	/* the `accounts` section */
	struct ca_directory *directories;	/* one per raw.directories */
	size_t ndirectories;
	struct gw_backend_def *backends;
	size_t nbackends;
	struct gw_site *sites;
	size_t nsites;
	struct gw_listener *listeners;
	size_t nlisteners;
	int workers;			/* resolved "auto" */
	int any_deferred;		/* a site has tls_client_auth "deferred" */
	struct gw_cidr *proxy_trusted;	/* proxy_protocol.trusted, parsed */
	size_t nproxy_trusted;
	/* tls.ticket_key_file's key (size 0: none, the master's own key is
	 * used), and the file as it was when read, to notice a change. */
	gnutls_datum_t ticket_key;
	struct gw_file_id ticket_key_id;
	uid_t uid;			/* workers drop to these (when root) */
	gid_t gid;
};

/* Parses "unix:PATH" or "tcp:HOST:PORT"; 0 or -1 with a message in err. */
int gw_addr_parse(const char *s, struct gw_addr *a, char *err, size_t errlen);
/* Parses "https://HOST:PORT" / "http://HOST:PORT" (host may be [v6]). */
int gw_listen_parse(const char *s, struct gw_addr *a, int *tls, char *err, size_t errlen);
/* The key the workers encrypt session tickets with: the file's, or the
 * master's own (gw_ticket_key). */
const gnutls_datum_t *gw_config_ticket_key(const struct gw_config *cfg);
/* Fills id from the file at path (stat); 0, or -1 with errno. */
int gw_file_id_get(const char *path, struct gw_file_id *id);
/* Site for a host name among a listener's sites (exact, "*.x", "*");
 * the listener's default site when none matches. */
struct gw_site *gw_site_for_host(const struct gw_listener *l, const char *host, size_t len);
/* Whether a site lists the name (same rules, no default). */
int gw_site_has_host(const struct gw_site *s, const char *host, size_t len);

/* ---- explain.c ---- */

/* `certgate explain ...` (argv[0] is "explain"); the exit code. */
int gw_explain(int argc, char **argv);

/* ---- master.c: the master process ---- */

int gw_master_run(const char *path, struct gw_config *cfg);

/* ---- spawn.c: applications started and supervised by the master ---- */

struct gw_spawn;
/* Starts the spawn blocks of cfg that are not running yet, retires those
 * that changed or went away. 0, or -1 when a socket could not be made. */
int gw_spawn_apply(const struct gw_config *cfg, struct ev_loop *loop);
/* 1 when pid was a spawned child (then restarted as needed), else 0. */
int gw_spawn_child_exited(pid_t pid, int status);
/* The workers that used retired blocks are gone: stop their processes. */
void gw_spawn_release(void);
void gw_spawn_stop_all(int sig);
size_t gw_spawn_running(void);
void gw_spawn_free_all(void);

/* ---- worker.c: a worker process ---- */

struct gw_conn;
struct gw_backend;

struct gw_worker {
	struct ev_loop *loop;
	struct gw_config *cfg;
	ev_io *accept_io;		/* one per listener */
	ev_signal sig_quit, sig_usr1;
	ev_timer stop_timer, crl_timer;
	int draining;
	size_t nconns, max_conns;
	struct gw_conn *conns;		/* doubly linked */
	struct gw_backend *backends;	/* one per gw_config.backends */
	uint64_t next_id;
	ev_prepare before_wait;		/* flushes the access log */
};

extern struct gw_worker *gw_worker;
extern gnutls_datum_t gw_ticket_key;

/* Sets up w as this process's worker on cfg (loop, backends, listeners'
 * watchers, not started). */
void gw_worker_init(struct gw_worker *w, struct gw_config *cfg);
/* Runs a worker on cfg with the listeners already bound; never returns. */
void gw_worker_run(struct gw_config *cfg) __attribute__((noreturn));
/* Accepting resumes when a connection slot frees up. */
void gw_worker_conn_closed(void);

/* ---- sandbox.c: a worker's confinement ---- */

/* Refuses, from now on, the system calls a worker never needs; exits (cg_fatal)
 * when the kernel will not take the filter. */
void gw_sandbox_worker(void);

/* ---- tls.c: GnuTLS sessions ---- */

int gw_tls_session_new(struct gw_conn *c);
/* Input GnuTLS can give without reading the socket: decrypted records and
 * the raw bytes read ahead (c->tin). */
size_t gw_tls_pending(struct gw_conn *c);
/* Deferred client authentication: asks for a certificate now, by TLS 1.3
 * post-handshake authentication or TLS 1.2 renegotiation. 0 when asked,
 * -1 when the client cannot be asked (no PHA, other protocol). */
int gw_tls_reauth_start(struct gw_conn *c);
/* Advances it: 1 done, 0 waiting for I/O, -1 failed (logged),
 * GNUTLS_E_GOT_APPLICATION_DATA when the client sent data meanwhile. */
int gw_tls_reauth_step(struct gw_conn *c);
/* Verify callback of credentials whose site asks for client certificates. */
int gw_tls_verify(gnutls_session_t s);
/* Runs the handshake; 1 done, 0 wants more I/O, -1 failed (logged). */
int gw_tls_handshake(struct gw_conn *c);
const char *gw_tls_protocol(gnutls_session_t s);	/* "TLSv1.3" */
const char *gw_tls_cipher(gnutls_session_t s);		/* mod_ssl style name */

/* ---- directory.c: directory lookups off the event loop ---- */

enum gw_dir_outcome { GW_DIR_FOUND, GW_DIR_NOT_FOUND, GW_DIR_REFUSED, GW_DIR_UNAVAILABLE,
	GW_DIR__MAX };
extern const char *const gw_dir_outcome_names[GW_DIR__MAX];

/* What a directory said about a certificate. Shared by the cache and the
 * connections that use it (reference counted, loop thread only). */
struct gw_dir_answer {
	int refs;
	enum gw_dir_outcome outcome;
	struct ca_mapping mapping;	/* FOUND: the account; REFUSED: a deny */
	char *account, *name;		/* mapping.user, mapping.name ("corp:lookup") */
	struct cg_strv groups;		/* groups_attribute's values (DNs) */
	struct cg_strv trace;		/* filters sent, entries returned (explain) */
	int weak_logged;		/* a weak match accepted under "compatibility" */
};
struct gw_dir_job;

struct gw_dir_answer *gw_dir_answer_ref(struct gw_dir_answer *a);
void gw_dir_answer_unref(struct gw_dir_answer *a);	/* NULL accepted */
/* Starts (stops, joins) this worker's lookup threads, one pool per directory. */
void gw_dir_worker_start(void);
void gw_dir_worker_stop(void);
/* The answer of directory `index` for f: the cached one (a reference for
 * the caller), an UNAVAILABLE one when too many lookups wait, or NULL
 * when a lookup has started for c: c->auth.dir_job is set, and its end
 * (answer or timeout) sets c->auth.dir_answer and calls
 * gw_request_mapped(c). */
struct gw_dir_answer *gw_dir_lookup(struct gw_conn *c, size_t index, const struct ca_facts *f);
/* The connection no longer waits for j (it is closing). */
void gw_dir_cancel(struct gw_dir_job *j);
/* explain: the same lookup on the calling thread (network 0: only the
 * filters, answered UNAVAILABLE); error lines appended to notes. */
struct gw_dir_answer *gw_dir_lookup_sync(const struct ca_directory *d, const struct ca_facts *f,
    int network, struct cg_strv *notes);

/* ---- auth.c: the client certificate of a connection ---- */

struct gw_auth;

/* Verifies the peer's chain once (cached in c->auth); the verdict. */
enum ca_verdict gw_auth_verify(struct gw_conn *c);
void gw_auth_free(struct gw_auth *a);
/* Lets go of the certificates' facts the worker keeps. */
void gw_auth_worker_free(void);
enum gw_map_state {
	GW_MAP_DONE,		/* *out is the mapping (NULL: p maps nothing) */
	GW_MAP_PENDING,		/* a directory is being asked: gw_request_mapped follows */
	GW_MAP_UNAVAILABLE,	/* a directory cannot answer and nothing is cached: 503 */
	GW_MAP__MAX
};
/* The account of the connection's certificate under policy p, mapped once
 * per connection and policy, trying p's sources in order; *out is NULL
 * when p maps nothing or there is no verified certificate. */
enum gw_map_state gw_auth_map(struct gw_conn *c, const struct pol_policy *p,
    const struct ca_mapping **out);
/* REMOTE_USER, AUTH_TYPE, CERT_MAP_* (and LOGON_USER, AUTH_USER with the
 * iis set) of an allowing mapping; nothing for none or a deny. */
void gw_auth_export_account(const struct ca_mapping *m, const struct pol_policy *p,
    ca_var_fn fn, void *ctx);
/* Exports the TLS and certificate variables that policy p allows. */
void gw_auth_export(struct gw_conn *c, const struct pol_policy *p, ca_var_fn fn, void *ctx);
/* The same as FastCGI name-value pairs appended to out, built once for a
 * busy connection and policy (see auth.c). */
void gw_auth_export_nv(struct gw_conn *c, const struct pol_policy *p, struct cg_buf *out);
/* Lets go of what an idle connection need not keep. */
void gw_auth_trim(struct gw_auth *a);
/* The CRL check timer of a worker: re-reads changed CRL files. */
void gw_auth_crl_timer_start(void);

/* ---- conn.c: client connections ---- */

enum gw_conn_state {
	GW_CONN_PROXY,		/* reading the balancer's PROXY protocol header */
	GW_CONN_HANDSHAKE,	/* TLS handshake in progress */
	GW_CONN_HEAD,		/* waiting for, or reading, a request head */
	GW_CONN_ACTIVE,		/* a request is being served */
	GW_CONN_LINGER,		/* response sent, draining input before close */
	GW_CONN_REAUTH,		/* asking for a certificate after the handshake */
	GW_CONN__MAX
};
extern const char *const gw_conn_state_names[GW_CONN__MAX];

enum gw_close_reason {
	GW_CLOSE_DONE,		/* client closed between requests, or keep-alive over */
	GW_CLOSE_HANDSHAKE,	/* TLS handshake failed */
	GW_CLOSE_TIMEOUT,	/* a timer ran out */
	GW_CLOSE_IO,		/* read or write error */
	GW_CLOSE_TLS,		/* TLS record error */
	GW_CLOSE_ABORT,		/* response cut: the application failed mid-body */
	GW_CLOSE_SHUTDOWN,	/* worker stopping */
	GW_CLOSE_PROXY,		/* PROXY header refused, or its source untrusted */
	GW_CLOSE__MAX
};
extern const char *const gw_close_reason_names[GW_CLOSE__MAX];

struct gw_header {
	const char *name, *value;
	size_t nlen, vlen;
};

struct gw_request {
	struct gw_conn *conn;
	struct timespec start;
	/* head, from llhttp */
	const char *method;
	int method_id;			/* enum llhttp_method */
	const char *target;		/* as received */
	size_t target_len;
	const char *path;		/* normalized */
	const char *query;		/* after '?', or "" */
	int has_query;
	int major, minor;
	struct gw_header *headers;
	size_t nheaders, cap_headers;
	size_t head_bytes;
	const char *host;		/* Host header or absolute-form authority, no port */
	size_t host_len;
	int64_t content_length;		/* -1: none */
	int chunked, expect_continue, is_head, keepalive;
	/* routing */
	struct gw_site *site;
	struct gw_location *loc;
	/* body */
	int body_done;
	uint64_t body_bytes;
	/* backend */
	struct gw_upstream *up;
	int authorizing;		/* the authorizer is being asked */
	int mapping_wait;		/* a directory is being asked */
	int authz_ok;			/* it answered 200 */
	struct gw_header *authz_vars;	/* its Variable-NAME headers */
	size_t nauthz_vars;
	struct gw_request *qnext;	/* in a backend's wait queue */
	int queued;
	/* response */
	int status;
	const char *status_detail;	/* "7" of 403.7, or NULL */
	const char *redirect;		/* Location of a 301 certgate answers */
	int head_sent, resp_chunked, resp_done, resp_nobody;
	int64_t resp_length;
	uint64_t resp_bytes;
	struct cg_buf cgi_head;		/* STDOUT until the CGI header is complete */
};

/* What the connection's client certificate is worth (auth.c): decided once
 * per connection, at the handshake or from a resumed session. */
struct gw_auth {
	int done;
	int presented;
	struct ca_result result;
	const struct ca_facts *facts;	/* when presented and parsable; shared */
	struct gw_shared_facts *shared;	/* what facts belongs to (auth.c) */
	gnutls_datum_t *chain;		/* DER copies, leaf first */
	size_t nchain;
	struct ca_trust *trust;		/* what it was verified with (a reference) */
	/* The last mapping made, for the policy it was made with: a
	 * connection's requests usually share one policy. */
	int mapped;
	int map_unavailable;		/* a directory could not answer */
	const struct pol_policy *map_policy;
	size_t map_step;		/* the source of map_policy being tried */
	struct ca_mapping mapping;
	struct gw_dir_job *dir_job;	/* a lookup in progress */
	struct gw_dir_answer *dir_answer;	/* the answer of map_step's directory */
	/* gw_auth_export_nv's last answer, for export_policy and the days
	 * SSL_CLIENT_V_REMAIN counted; let go when the connection idles. */
	struct cg_buf export_nv;
	const struct pol_policy *export_policy;
	long long export_days;
};

/* Where the last header-value piece ended, to catch obsolete folding. */
struct gw_fold {
	const char *exec_start, *exec_end;	/* the buffer given to llhttp */
	const char *end;
	int seen, cont;
};

struct gw_conn {
	uint64_t id;
	int fd;
	struct gw_listener *lst;
	struct gw_site *site;		/* chosen by SNI (TLS) */
	gnutls_session_t tls;
	enum gw_conn_state state;
	ev_io io;
	ev_timer timer;
	int timer_mode;
	struct cg_buf rbuf, wbuf;
	llhttp_t parser;
	struct cg_buf hbuf;		/* header field/value being collected */
	struct cg_buf tin;		/* TLS bytes read, not yet GnuTLS's (tls.c) */
	size_t hname_len;		/* length of the field part in hbuf */
	struct gw_request *req;
	struct cg_arena arena;
	char peer_addr[64];		/* the client: from the PROXY header if any */
	int peer_port;
	struct sockaddr_storage local;	/* where the client connected: the PROXY
					   header's destination, or the socket's */
	int has_local;			/* local is known (request.c asks once) */
	int keepalive;			/* may serve another request */
	int closing;			/* close once wbuf is flushed */
	int head_started;
	int input_paused;		/* parser paused until the response is done */
	int read_eof;
	int rst_to_linger;
	unsigned nreq;			/* requests served */
	int reauth_tls12;		/* REAUTH by renegotiation, not TLS 1.3 PHA */
	int reauth_sent;		/* TLS 1.2: the HelloRequest is out */
	int deferred_asked;		/* a deferred certificate request was made */
	struct gw_auth auth;
	int parser_event;
	struct gw_fold fold;		/* why llhttp stopped (http.c) */
	struct gw_conn *next, *prev;
};

void gw_conn_accept(struct gw_listener *l, int fd, const struct sockaddr_storage *ss);
/* Numeric address and port of an IPv4 or IPv6 socket address ("unix", 0
 * for anything else). */
void gw_sockaddr_name(const struct sockaddr_storage *ss, char *out, size_t outlen, int *port);
/* Whether l listens on every address (0.0.0.0, ::): its connections' local
 * address is then the socket's own, not the listener's. */
int gw_listener_is_wildcard(const struct gw_listener *l);
/* The one exit door: logs once (by reason), frees everything. */
void gw_conn_close(struct gw_conn *c, enum gw_close_reason why);
/* Queues bytes for the client and tries to send them. */
void gw_conn_write(struct gw_conn *c, const void *p, size_t n);
/* Flushes wbuf; -1 when the connection died (it has been closed). */
int gw_conn_flush(struct gw_conn *c);
/* After the response is complete: next request, linger, or close. */
void gw_conn_request_done(struct gw_conn *c);
/* More client input may be read (backend drained its STDIN buffer). */
void gw_conn_resume_input(struct gw_conn *c);
/* Whether the client's send buffer is too full to take more response. */
int gw_conn_congested(const struct gw_conn *c);
void gw_conn_close_idle_all(void);

/* ---- http.c: HTTP/1.1 with llhttp ---- */

void gw_http_init(struct gw_conn *c);
/* Feeds buffered input to the parser; returns -1 when c was closed. */
int gw_http_process(struct gw_conn *c);
/* Sends a complete error page (SPEC: text begins with the full code) and
 * marks the connection to close when `close` or the request is unfinished. */
void gw_http_error(struct gw_conn *c, int status, const char *detail, int close);
/* The same with the page's text given ("Directory unavailable"). */
void gw_http_error_text(struct gw_conn *c, int status, const char *detail, const char *text,
    int close);
/* Sends a redirect or other header-only response. */
const char *gw_http_reason(int status);
/* Starts the response head: status line and certgate's own headers. */
void gw_http_head_begin(struct gw_conn *c, struct gw_request *r, int status,
    const char *reason, size_t reason_len);

/* ---- request.c: routing, CGI variables, response translation ---- */

/* A complete request head arrived: route it and start it. -1: c closed. */
int gw_request_start(struct gw_conn *c, struct gw_request *r);
/* A deferred certificate request has ended: decide and go on. */
int gw_request_resume(struct gw_conn *c);
/* A directory lookup the request waited for has ended: decide and go on. */
void gw_request_mapped(struct gw_conn *c);
/* Body bytes for the application. */
void gw_request_body(struct gw_request *r, const uint8_t *p, size_t n);
void gw_request_body_end(struct gw_request *r);
/* Fills the FastCGI PARAMS stream of r into out (records framed). */
void gw_request_params(struct gw_request *r, struct cg_buf *out, uint16_t id);
/* Bytes of the application's STDOUT; -1 on a bad CGI header (then the
 * caller answers 502). */
int gw_request_stdout(struct gw_request *r, const uint8_t *p, size_t n);
/* The application ended the request (END_REQUEST). */
void gw_request_end(struct gw_request *r);
/* The application failed: 502/504 when no header was sent, else abort. */
void gw_request_fail(struct gw_request *r, int status, const char *why);
/* Writes the access-log line of a finished request. */
void gw_request_log(struct gw_request *r);
void gw_request_free(struct gw_request *r);

/* ---- fcgi.c: the FastCGI client ---- */

enum gw_up_state { GW_UP_QUEUED, GW_UP_CONNECTING, GW_UP_IDLE, GW_UP_ACTIVE, GW_UP__MAX };
extern const char *const gw_up_state_names[GW_UP__MAX];

struct gw_upstream {
	struct gw_backend *be;
	int fd;
	size_t addr;
	uint64_t tried;			/* addresses tried for this request (bits) */
	size_t sent;			/* bytes of the request written */
	int counted;			/* in addrs[addr].inflight */
	enum gw_up_state state;
	ev_io io;
	ev_timer timer;
	struct cg_buf wbuf;
	struct gw_fcgi_parser parser;
	struct gw_request *req;
	int paused, stdin_done;
	int held;			/* gathering the body before dispatch */
	int dirty;			/* bytes after END_REQUEST: never reuse */
	struct gw_upstream *next;	/* idle list */
};

struct gw_addr_state {
	size_t inflight;		/* requests on this address (this worker) */
	ev_tstamp down_until;
};

struct gw_backend {
	struct gw_backend_def *def;
	struct gw_addr_state *addrs;	/* one per def->addrs */
	struct gw_upstream *idle;
	size_t nopen;			/* connections open (any state) */
	size_t max_conns;		/* this worker's share (worker.c) */
	int keep;			/* connections are kept for reuse (worker.c) */
	struct gw_request *qhead, *qtail;
	size_t qlen;
	size_t rr;
};

/* Starts talking to r->loc's backend (or queues r); -1 when c was closed. */
int gw_fcgi_start(struct gw_request *r);
/* Appends a FastCGI name-value pair to the cg_buf buf (a ca_var_fn). */
void gw_fcgi_nv_put(void *buf, const char *name, const char *value, size_t vlen);
void gw_fcgi_stdin(struct gw_upstream *u, const uint8_t *p, size_t n);
void gw_fcgi_stdin_end(struct gw_upstream *u);
/* Whether the STDIN buffer is too full to take more client body. */
int gw_fcgi_congested(const struct gw_upstream *u);
/* The client drained its buffer: read the application again. */
void gw_fcgi_resume(struct gw_upstream *u);
/* The request is over (done, failed or its client gone): keep or close. */
void gw_fcgi_release(struct gw_request *r, int reusable);
void gw_fcgi_worker_free(void);

/* ---- accesslog.c ---- */

int gw_alog_open(const char *target);
/* Adds a line (with its newline) to what gw_alog_flush writes. */
void gw_alog_write(const char *line, size_t len);
/* Writes the gathered lines; the worker calls it before its loop waits. */
void gw_alog_flush(void);

#endif
