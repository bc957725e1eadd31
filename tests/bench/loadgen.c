/*
 * loadgen.c: the HTTPS load generator of `make bench`. One process, one
 * thread, N non-blocking GnuTLS connections on epoll, presenting a client
 * certificate, for a fixed duration; prints one line of key=value results.
 *
 * Modes:
 *   keepalive  each connection sends request after request
 *   handshake  each request on a new connection with a full handshake
 *   resume     each request on a new connection resuming the session ticket
 *              the previous connection of the same slot received
 *   idle       open N connections (at most --concurrency handshakes at a
 *              time), send one request on each, then hold them all idle
 *              for --duration seconds (for measuring a server's memory)
 *
 * Every wait is bounded: the run ends at the deadline (plus, in idle mode,
 * --setup-timeout for opening the connections), and each connection's
 * operation fails after --timeout seconds.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EXPECT 8
#define RBUF_SIZE 16384
#define BODY_KEEP 65536		/* body bytes kept for --expect checks */
#define PATTERN "0123456789abcdef"

enum mode { MODE_KEEPALIVE, MODE_HANDSHAKE, MODE_RESUME, MODE_IDLE, MODE__MAX };
static const char *const mode_names[MODE__MAX] = {
	"keepalive", "handshake", "resume", "idle"
};

enum cstate {
	CS_FREE,	/* no socket */
	CS_CONNECTING,
	CS_HANDSHAKE,
	CS_SENDING,
	CS_RECEIVING,
	CS_IDLE,	/* idle mode: holding an established connection */
	CS__MAX
};

/* Where a response's body ends. */
enum framing { FR_LENGTH, FR_CHUNKED, FR_CLOSE };

/* Chunked-body decoder states. */
enum chunk_state { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF,
	CH_TRAILER, CH_DONE };

struct conn {
	int fd;
	enum cstate state;
	gnutls_session_t tls;
	gnutls_datum_t ticket;		/* resume mode: session data to offer */
	int64_t op_start;		/* ns: request (or connection) start */
	int64_t op_deadline;		/* ns: the current operation fails then */
	size_t sent;			/* bytes of head + body sent */
	int hs_done;
	int keep;
	int setting_up;			/* idle mode: counted in setup_inflight */
	int want_write;			/* blocked on writing, not reading */
	uint32_t events;		/* registered with epoll */			/* the server keeps the connection open */
	/* response parsing */
	char rbuf[RBUF_SIZE];
	size_t rlen;
	int head_done;
	int status;
	enum framing framing;
	uint64_t remaining;		/* FR_LENGTH */
	enum chunk_state chs;
	uint64_t chunk_left;
	char *body;			/* first BODY_KEEP bytes when checking */
	size_t body_len;
};

struct opts {
	const char *host, *port, *sni, *cafile, *cert, *key, *path, *priority;
	const char *ready_file;
	const char *expect[MAX_EXPECT];
	int nexpect;
	int conns, concurrency;
	double duration, timeout, setup_timeout;
	long long body_size, max_requests;
	enum mode mode;
	int verbose;
};

struct stats {
	uint64_t requests, errors, rx, tx, full, resumed, identity_fail;
	uint64_t err_connect, err_tls, err_status, err_proto, err_timeout;
	uint64_t established;
	int status_seen;		/* last unexpected status, for the report */
	char tls_desc[160];
};

/* Latency histogram in microseconds: exact below 128, then 64 buckets per
 * power of two (under 1.6% error), up to 2^40 µs. */
#define HSUB 64
#define HBUCKETS (128 + 33 * HSUB)
static uint64_t hist[HBUCKETS];

static struct opts o;
static struct stats st;
static struct addrinfo *addr;
static gnutls_certificate_credentials_t cred;
static gnutls_priority_t prio;
static int ep;
static struct conn *conns;
static char *head;		/* the request head */
static size_t head_len;
static char body_block[16384];	/* the request body pattern */
static int64_t t_start, t_end;
static int measuring;		/* requests count only while measuring */
static int setup_inflight;	/* idle mode: connections being opened */

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
hist_add(uint64_t us)
{
	size_t i;

	if (us < 128) {
		i = us;
	} else {
		int msb = 63 - __builtin_clzll(us);
		int shift = msb - 6;

		if (msb > 39) {
			msb = 39;
			shift = msb - 6;
			us = (1ULL << 40) - 1;
		}
		i = 128 + (size_t)(msb - 7) * HSUB + ((us >> shift) & (HSUB - 1));
	}
	hist[i]++;
}

static uint64_t
hist_value(size_t i)
{
	size_t octave, sub;

	if (i < 128)
		return i;
	octave = (i - 128) / HSUB + 7;
	sub = (i - 128) % HSUB;
	/* the middle of the bucket */
	return ((HSUB + sub) << (octave - 6)) + (1ULL << (octave - 6)) / 2;
}

static uint64_t
hist_percentile(double p)
{
	uint64_t total = 0, want, seen = 0;
	size_t i;

	for (i = 0; i < HBUCKETS; i++)
		total += hist[i];
	if (total == 0)
		return 0;
	want = (uint64_t)(p * (double)total + 0.5);
	if (want < 1)
		want = 1;
	for (i = 0; i < HBUCKETS; i++) {
		seen += hist[i];
		if (seen >= want)
			return hist_value(i);
	}
	return hist_value(HBUCKETS - 1);
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen --port PORT --cert CHAIN.pem --key KEY.pem [options]\n"
	    "  --host ADDR          server address [127.0.0.1]\n"
	    "  --port PORT          server port (required)\n"
	    "  --sni NAME           server name sent [localhost]\n"
	    "  --cafile FILE        verify the server against FILE (default: no check)\n"
	    "  --cert FILE          client certificate chain (PEM)\n"
	    "  --key FILE           client private key (PEM)\n"
	    "  --connections N      connections [16]\n"
	    "  --duration S         measured seconds (idle mode: hold time) [5]\n"
	    "  --mode M             keepalive | handshake | resume | idle [keepalive]\n"
	    "  --path P             request target [/]\n"
	    "  --body N             POST a body of N bytes [GET]\n"
	    "  --expect TEXT        a response body must contain TEXT (repeatable)\n"
	    "  --requests N         stop after N requests\n"
	    "  --timeout S          one operation's limit [10]\n"
	    "  --concurrency N      idle mode: handshakes in flight [64]\n"
	    "  --setup-timeout S    idle mode: time to open the connections [120]\n"
	    "  --ready-file F       idle mode: created once all connections are open\n"
	    "  --priority P         GnuTLS priority string\n"
	    "  --verbose            log each error to stderr\n");
	exit(2);
}

static double
num_arg(const char *s, double lo, double hi, const char *name)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		die("bad value for --%s: %s", name, s);
	return v;
}

static void
parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "sni", required_argument, NULL, 's' },
		{ "cafile", required_argument, NULL, 'A' },
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "connections", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "mode", required_argument, NULL, 'm' },
		{ "path", required_argument, NULL, 'P' },
		{ "body", required_argument, NULL, 'b' },
		{ "expect", required_argument, NULL, 'e' },
		{ "requests", required_argument, NULL, 'r' },
		{ "timeout", required_argument, NULL, 't' },
		{ "concurrency", required_argument, NULL, 'C' },
		{ "setup-timeout", required_argument, NULL, 'S' },
		{ "ready-file", required_argument, NULL, 'R' },
		{ "priority", required_argument, NULL, 'y' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, '?' },
		{ NULL, 0, NULL, 0 }
	};
	int c, i;

	o.host = "127.0.0.1";
	o.sni = "localhost";
	o.path = "/";
	o.priority = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
	o.conns = 16;
	o.concurrency = 64;
	o.duration = 5;
	o.timeout = 10;
	o.setup_timeout = 120;
	o.body_size = -1;
	o.mode = MODE_KEEPALIVE;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'h': o.host = optarg; break;
		case 'p': o.port = optarg; break;
		case 's': o.sni = optarg; break;
		case 'A': o.cafile = optarg; break;
		case 'c': o.cert = optarg; break;
		case 'k': o.key = optarg; break;
		case 'n': o.conns = (int)num_arg(optarg, 1, 1000000, "connections"); break;
		case 'd': o.duration = num_arg(optarg, 0.1, 86400, "duration"); break;
		case 'P': o.path = optarg; break;
		case 'b': o.body_size = (long long)num_arg(optarg, 0, 1e12, "body"); break;
		case 'r': o.max_requests = (long long)num_arg(optarg, 1, 1e15, "requests"); break;
		case 't': o.timeout = num_arg(optarg, 0.01, 3600, "timeout"); break;
		case 'C': o.concurrency = (int)num_arg(optarg, 1, 1000000, "concurrency"); break;
		case 'S': o.setup_timeout = num_arg(optarg, 1, 86400, "setup-timeout"); break;
		case 'R': o.ready_file = optarg; break;
		case 'y': o.priority = optarg; break;
		case 'v': o.verbose = 1; break;
		case 'e':
			if (o.nexpect == MAX_EXPECT)
				die("at most %d --expect", MAX_EXPECT);
			o.expect[o.nexpect++] = optarg;
			break;
		case 'm':
			for (i = 0; i < MODE__MAX; i++)
				if (strcmp(optarg, mode_names[i]) == 0)
					break;
			if (i == MODE__MAX)
				die("unknown mode %s", optarg);
			o.mode = (enum mode)i;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || o.port == NULL)
		usage();
	if ((o.cert == NULL) != (o.key == NULL))
		die("--cert and --key go together");
}

static void
setup(void)
{
	struct addrinfo hints;
	const char *err_pos;
	size_t cap;
	int rc, i;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(o.host, o.port, &hints, &addr);
	if (rc != 0)
		die("%s:%s: %s", o.host, o.port, gai_strerror(rc));

	rc = gnutls_global_init();
	if (rc < 0)
		die("gnutls_global_init: %s (%d)", gnutls_strerror(rc), rc);
	rc = gnutls_certificate_allocate_credentials(&cred);
	if (rc < 0)
		die("credentials: %s (%d)", gnutls_strerror(rc), rc);
	if (o.cafile != NULL) {
		rc = gnutls_certificate_set_x509_trust_file(cred, o.cafile,
		    GNUTLS_X509_FMT_PEM);
		if (rc <= 0)
			die("%s: no CA loaded: %s (%d)", o.cafile,
			    rc < 0 ? gnutls_strerror(rc) : "empty", rc);
	}
	if (o.cert != NULL) {
		rc = gnutls_certificate_set_x509_key_file(cred, o.cert, o.key,
		    GNUTLS_X509_FMT_PEM);
		if (rc < 0)
			die("%s, %s: %s (%d)", o.cert, o.key, gnutls_strerror(rc), rc);
	}
	rc = gnutls_priority_init2(&prio, o.priority, &err_pos, 0);
	if (rc < 0)
		die("priority \"%s\" at \"%s\": %s (%d)", o.priority,
		    err_pos ? err_pos : "", gnutls_strerror(rc), rc);

	cap = strlen(o.path) + strlen(o.sni) + 256;
	head = malloc(cap);
	if (head == NULL)
		die("out of memory");
	if (o.body_size >= 0)
		rc = snprintf(head, cap, "POST %s HTTP/1.1\r\nHost: %s\r\n"
		    "User-Agent: certgate-loadgen\r\n"
		    "Content-Type: application/octet-stream\r\n"
		    "Content-Length: %lld\r\n\r\n", o.path, o.sni, o.body_size);
	else
		rc = snprintf(head, cap, "GET %s HTTP/1.1\r\nHost: %s\r\n"
		    "User-Agent: certgate-loadgen\r\n\r\n", o.path, o.sni);
	if (rc < 0 || (size_t)rc >= cap)
		die("request head too long");
	head_len = (size_t)rc;
	for (i = 0; i < (int)sizeof(body_block); i++)
		body_block[i] = PATTERN[i % 16];

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1: %s", strerror(errno));
	conns = calloc((size_t)o.conns, sizeof(*conns));
	if (conns == NULL)
		die("out of memory for %d connections", o.conns);
	for (i = 0; i < o.conns; i++)
		conns[i].fd = -1;
}

static void
vlog(struct conn *c, const char *what, const char *detail)
{
	if (o.verbose)
		fprintf(stderr, "loadgen: conn %ld: %s: %s\n", (long)(c - conns),
		    what, detail);
}

/* Closes the socket and the TLS session; keeps the slot's ticket. */
static void
conn_close(struct conn *c, int polite)
{
	if (c->tls != NULL) {
		if (polite && c->hs_done)
			(void)gnutls_bye(c->tls, GNUTLS_SHUT_WR);
		gnutls_deinit(c->tls);
		c->tls = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	free(c->body);
	c->body = NULL;
	c->state = CS_FREE;
	if (c->setting_up) {
		c->setting_up = 0;
		setup_inflight--;
	}
}

enum errkind { E_CONNECT, E_TLS, E_STATUS, E_PROTO, E_TIMEOUT };

static void
conn_fail(struct conn *c, enum errkind k, const char *detail)
{
	static const char *const kn[] = { "connect", "tls", "status", "protocol",
		"timeout" };

	if (measuring) {
		st.errors++;
		switch (k) {
		case E_CONNECT: st.err_connect++; break;
		case E_TLS: st.err_tls++; break;
		case E_STATUS: st.err_status++; break;
		case E_PROTO: st.err_proto++; break;
		case E_TIMEOUT: st.err_timeout++; break;
		}
	}
	vlog(c, kn[k], detail);
	conn_close(c, 0);
}

static void
conn_open(struct conn *c, int64_t now)
{
	struct epoll_event ev;
	int one = 1, rc;

	c->fd = socket(addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_fail(c, E_CONNECT, strerror(errno));
		return;
	}
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->op_start = now;
	c->op_deadline = now + (int64_t)(o.timeout * 1e9);
	c->hs_done = 0;
	c->keep = 1;
	rc = connect(c->fd, addr->ai_addr, addr->ai_addrlen);
	if (rc < 0 && errno != EINPROGRESS) {
		conn_fail(c, E_CONNECT, strerror(errno));
		return;
	}
	c->state = CS_CONNECTING;
	if (o.mode == MODE_IDLE) {
		c->setting_up = 1;
		setup_inflight++;
	}
	/* Level-triggered: GnuTLS may swallow a readiness (a post-handshake
	 * message answered with GNUTLS_E_AGAIN) that an edge would not
	 * report again. */
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLOUT;
	ev.data.ptr = c;
	c->events = ev.events;
	c->want_write = 1;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
}

/* Listens for what the connection waits for: writability only while a
 * write is blocked (or the connection is being made). */
static void
update_interest(struct conn *c)
{
	struct epoll_event ev;
	uint32_t want;

	if (c->state == CS_FREE || c->fd < 0)
		return;
	want = EPOLLIN;
	if (c->state == CS_CONNECTING || c->want_write)
		want |= EPOLLOUT;
	if (want == c->events)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = want;
	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
	c->events = want;
}

static int
tls_start(struct conn *c)
{
	int rc;

	rc = gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK);
	if (rc < 0)
		goto fail;
	rc = gnutls_priority_set(c->tls, prio);
	if (rc < 0)
		goto fail;
	rc = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, cred);
	if (rc < 0)
		goto fail;
	rc = gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, o.sni, strlen(o.sni));
	if (rc < 0)
		goto fail;
	if (o.cafile != NULL)
		gnutls_session_set_verify_cert(c->tls, o.sni, 0);
	if (o.mode == MODE_RESUME && c->ticket.data != NULL) {
		rc = gnutls_session_set_data(c->tls, c->ticket.data, c->ticket.size);
		if (rc < 0)
			goto fail;
	}
	gnutls_transport_set_int(c->tls, c->fd);
	gnutls_handshake_set_timeout(c->tls, 0);
	c->state = CS_HANDSHAKE;
	return 0;
fail:
	conn_fail(c, E_TLS, gnutls_strerror(rc));
	return -1;
}

static void
request_start(struct conn *c, int64_t now)
{
	if (c->state == CS_RECEIVING || c->state == CS_IDLE)
		c->op_start = now;	/* keep-alive: time from the request */
	c->op_deadline = now + (int64_t)(o.timeout * 1e9);
	c->sent = 0;
	c->rlen = 0;
	c->head_done = 0;
	c->status = 0;
	c->body_len = 0;
	c->state = CS_SENDING;
}

static void
describe_tls(struct conn *c)
{
	char *desc;

	if (st.tls_desc[0] != '\0')
		return;
	desc = gnutls_session_get_desc(c->tls);
	if (desc != NULL) {
		size_t i;

		snprintf(st.tls_desc, sizeof(st.tls_desc), "%s", desc);
		for (i = 0; st.tls_desc[i] != '\0'; i++)
			if (st.tls_desc[i] == ' ')
				st.tls_desc[i] = '_';
		gnutls_free(desc);
	}
}

/* Sends the head, then the body; 1 when all is sent, 0 on EAGAIN, -1 on
 * error (connection failed). */
static int
do_send(struct conn *c)
{
	uint64_t total = head_len + (o.body_size > 0 ? (uint64_t)o.body_size : 0);

	while (c->sent < total) {
		const char *p;
		size_t n;
		ssize_t w;

		if (c->sent < head_len) {
			p = head + c->sent;
			n = head_len - c->sent;
		} else {
			uint64_t left = total - c->sent;

			p = body_block;
			n = left < sizeof(body_block) ? (size_t)left : sizeof(body_block);
		}
		w = gnutls_record_send(c->tls, p, n);
		if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED) {
			c->want_write = 1;
			return 0;
		}
		if (w < 0) {
			conn_fail(c, E_TLS, gnutls_strerror((int)w));
			return -1;
		}
		c->sent += (size_t)w;
		if (measuring)
			st.tx += (uint64_t)w;
	}
	return 1;
}

static void
keep_body(struct conn *c, const char *p, size_t n)
{
	if (o.nexpect == 0 || c->body_len >= BODY_KEEP)
		return;
	if (c->body == NULL) {
		c->body = malloc(BODY_KEEP + 1);
		if (c->body == NULL)
			die("out of memory");
	}
	if (n > BODY_KEEP - c->body_len)
		n = BODY_KEEP - c->body_len;
	memcpy(c->body + c->body_len, p, n);
	c->body_len += n;
}

/* Parses the head in c->rbuf[0..rlen); 1 when complete (the body bytes
 * after it are left at the start of rbuf), 0 when more is needed, -1 on
 * error. */
static int
parse_head(struct conn *c)
{
	char *end, *line, *eol;
	size_t hlen;
	int chunked = 0, have_len = 0;

	end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
	if (end == NULL) {
		if (c->rlen == sizeof(c->rbuf))
			return -1;
		return 0;
	}
	hlen = (size_t)(end - c->rbuf) + 4;
	*end = '\0';
	if (strncmp(c->rbuf, "HTTP/1.", 7) != 0 || c->rlen < 12)
		return -1;
	c->status = atoi(c->rbuf + 9);
	c->keep = c->rbuf[7] == '1';
	line = strstr(c->rbuf, "\r\n");
	while (line != NULL) {
		line += 2;
		eol = strstr(line, "\r\n");
		if (eol != NULL)
			*eol = '\0';
		if (strncasecmp(line, "content-length:", 15) == 0) {
			c->remaining = strtoull(line + 15, NULL, 10);
			have_len = 1;
		} else if (strncasecmp(line, "transfer-encoding:", 18) == 0) {
			chunked = strcasestr(line + 18, "chunked") != NULL;
		} else if (strncasecmp(line, "connection:", 11) == 0) {
			if (strcasestr(line + 11, "close") != NULL)
				c->keep = 0;
			else if (strcasestr(line + 11, "keep-alive") != NULL)
				c->keep = 1;
		}
		line = eol;
	}
	if (chunked) {
		c->framing = FR_CHUNKED;
		c->chs = CH_SIZE;
		c->chunk_left = 0;
	} else if (have_len) {
		c->framing = FR_LENGTH;
	} else {
		c->framing = FR_CLOSE;
		c->keep = 0;
	}
	memmove(c->rbuf, c->rbuf + hlen, c->rlen - hlen);
	c->rlen -= hlen;
	c->head_done = 1;
	return 1;
}

/* Consumes body bytes; 1 when the body is complete, 0 for more, -1 on a
 * framing error. */
static int
eat_body(struct conn *c, const char *p, size_t n)
{
	size_t i = 0, take;

	if (c->framing == FR_LENGTH) {
		take = n < c->remaining ? n : (size_t)c->remaining;
		keep_body(c, p, take);
		c->remaining -= take;
		return c->remaining == 0 ? 1 : 0;
	}
	if (c->framing == FR_CLOSE) {
		keep_body(c, p, n);
		return 0;
	}
	while (i < n) {
		char ch = p[i];

		switch (c->chs) {
		case CH_SIZE:
			if (ch >= '0' && ch <= '9')
				c->chunk_left = c->chunk_left * 16 + (uint64_t)(ch - '0');
			else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
				c->chunk_left = c->chunk_left * 16 + (uint64_t)((ch | 0x20) - 'a' + 10);
			else if (ch == ';')
				c->chs = CH_EXT;
			else if (ch == '\r')
				c->chs = CH_SIZE_LF;
			else
				return -1;
			if (c->chunk_left > (1ULL << 48))
				return -1;
			i++;
			break;
		case CH_EXT:
			if (ch == '\r')
				c->chs = CH_SIZE_LF;
			i++;
			break;
		case CH_SIZE_LF:
			if (ch != '\n')
				return -1;
			i++;
			c->chs = c->chunk_left == 0 ? CH_TRAILER : CH_DATA;
			break;
		case CH_DATA:
			take = n - i < c->chunk_left ? n - i : (size_t)c->chunk_left;
			keep_body(c, p + i, take);
			c->chunk_left -= take;
			i += take;
			if (c->chunk_left == 0)
				c->chs = CH_DATA_CR;
			break;
		case CH_DATA_CR:
			if (ch != '\r')
				return -1;
			c->chs = CH_DATA_LF;
			i++;
			break;
		case CH_DATA_LF:
			if (ch != '\n')
				return -1;
			c->chs = CH_SIZE;
			c->chunk_left = 0;
			i++;
			break;
		case CH_TRAILER:
			/* no trailers expected: "\r\n" ends the body */
			if (ch == '\r') {
				i++;
				break;
			}
			if (ch == '\n') {
				c->chs = CH_DONE;
				return 1;
			}
			return -1;
		case CH_DONE:
			return 1;
		}
	}
	return c->chs == CH_DONE ? 1 : 0;
}

static int
body_has(const struct conn *c, const char *text)
{
	size_t n = strlen(text);

	return c->body != NULL && memmem(c->body, c->body_len, text, n) != NULL;
}

/* A complete response: accounts for it and starts what comes next. */
static void
response_done(struct conn *c, int64_t now)
{
	int i, ok = 1;

	if (c->status != 200) {
		char d[32];

		snprintf(d, sizeof(d), "HTTP status %d", c->status);
		st.status_seen = c->status;
		conn_fail(c, E_STATUS, d);
		return;
	}
	for (i = 0; i < o.nexpect; i++)
		if (!body_has(c, o.expect[i]))
			ok = 0;
	if (measuring) {
		st.requests++;
		if (!ok) {
			st.identity_fail++;
			st.errors++;
		}
		hist_add((uint64_t)(now - c->op_start) / 1000);
	}
	if (!ok)
		vlog(c, "expect", "response body lacks an --expect text");
	if (o.mode == MODE_RESUME) {
		gnutls_datum_t d = { NULL, 0 };

		if ((gnutls_session_get_flags(c->tls) & GNUTLS_SFLAGS_SESSION_TICKET) &&
		    gnutls_session_get_data2(c->tls, &d) == 0) {
			gnutls_free(c->ticket.data);
			c->ticket = d;
		}
	}
	if (o.max_requests > 0 && (long long)st.requests >= o.max_requests)
		t_end = now;	/* stops the main loop */
	if (o.mode == MODE_IDLE) {
		c->state = CS_IDLE;
		st.established++;
		if (c->setting_up) {
			c->setting_up = 0;
			setup_inflight--;
		}
		return;
	}
	if (o.mode == MODE_KEEPALIVE && c->keep) {
		request_start(c, now);
		return;
	}
	conn_close(c, 1);
}

/* Reads what there is; returns 0 on EAGAIN or when the response is done. */
static void
do_recv(struct conn *c, int64_t now)
{
	for (;;) {
		ssize_t r;
		int rc;

		if (!c->head_done) {
			r = gnutls_record_recv(c->tls, c->rbuf + c->rlen,
			    sizeof(c->rbuf) - c->rlen);
		} else {
			r = gnutls_record_recv(c->tls, c->rbuf, sizeof(c->rbuf));
		}
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			c->want_write = gnutls_record_get_direction(c->tls);
			return;
		}
		if (r == GNUTLS_E_PREMATURE_TERMINATION || r == 0) {
			if (c->head_done && c->framing == FR_CLOSE) {
				response_done(c, now);
				if (c->state != CS_FREE)
					conn_close(c, 0);
				return;
			}
			conn_fail(c, E_PROTO, c->rlen == 0 && !c->head_done
			    ? "closed before the response" : "closed mid-response");
			return;
		}
		if (r < 0) {
			conn_fail(c, E_TLS, gnutls_strerror((int)r));
			return;
		}
		if (measuring)
			st.rx += (uint64_t)r;
		if (c->state == CS_SENDING) {
			/* an early answer: the rest of the request is moot */
			c->state = CS_RECEIVING;
		}
		if (c->state == CS_IDLE) {
			conn_fail(c, E_PROTO, "data on an idle connection");
			return;
		}
		if (!c->head_done) {
			c->rlen += (size_t)r;
			rc = parse_head(c);
			if (rc < 0) {
				conn_fail(c, E_PROTO, "bad response head");
				return;
			}
			if (rc == 0)
				continue;
			rc = c->rlen > 0 ? eat_body(c, c->rbuf, c->rlen) :
			    (c->framing == FR_LENGTH && c->remaining == 0);
			c->rlen = 0;
		} else {
			rc = eat_body(c, c->rbuf, (size_t)r);
		}
		if (rc < 0) {
			conn_fail(c, E_PROTO, "bad chunked body");
			return;
		}
		if (rc == 1) {
			response_done(c, now);
			return;
		}
	}
}

/* Drives one connection as far as it can go without blocking. */
static void
step(struct conn *c, int64_t now)
{
	int rc, turns = 0;

	for (;;) {
		if (++turns > 64) {
			/* let the others run; writability calls us back at once */
			c->want_write = 1;
			return;
		}
		switch (c->state) {
		case CS_FREE:
			return;
		case CS_CONNECTING: {
			int err = 0;
			socklen_t len = sizeof(err);

			if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
				err = errno;
			if (err == EINPROGRESS || err == EALREADY)
				return;
			if (err != 0) {
				conn_fail(c, E_CONNECT, strerror(err));
				return;
			}
			if (tls_start(c) < 0)
				return;
			break;
		}
		case CS_HANDSHAKE:
			rc = gnutls_handshake(c->tls);
			if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
				c->want_write = gnutls_record_get_direction(c->tls);
				return;
			}
			if (rc < 0) {
				conn_fail(c, E_TLS, gnutls_strerror(rc));
				return;
			}
			c->hs_done = 1;
			describe_tls(c);
			if (measuring) {
				if (gnutls_session_is_resumed(c->tls))
					st.resumed++;
				else
					st.full++;
			}
			request_start(c, now);
			break;
		case CS_SENDING:
			/* drain what arrived first: an early error answer */
			do_recv(c, now);
			if (c->state != CS_SENDING)
				break;
			c->want_write = 0;
			rc = do_send(c);
			if (rc <= 0)
				return;
			c->want_write = 0;
			c->state = CS_RECEIVING;
			break;
		case CS_RECEIVING:
		case CS_IDLE: {
			enum cstate before = c->state;
			int fd = c->fd;

			do_recv(c, now);
			/* stop unless a new request began on the same connection */
			if (c->state == before || c->state == CS_FREE ||
			    c->fd != fd || c->state == CS_IDLE)
				return;
			break;
		}
		case CS__MAX:
			return;
		}
	}
}

static void
touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	close(fd);
}

/* Fails every connection whose operation is over its time. */
static void
sweep_timeouts(int64_t now)
{
	int i;

	for (i = 0; i < o.conns; i++) {
		struct conn *c = &conns[i];

		if (c->state != CS_FREE && c->state != CS_IDLE &&
		    now > c->op_deadline)
			conn_fail(c, E_TIMEOUT, "operation timed out");
	}
}

static void
loop(void)
{
	struct epoll_event evs[256];
	int64_t now = now_ns(), next_sweep = now + 100000000;
	int i, n, opened = 0, ready = 0;

	if (o.mode == MODE_IDLE) {
		/* not measured as a rate: count from the start */
		t_end = now + (int64_t)(o.setup_timeout * 1e9);
	} else {
		t_end = now + (int64_t)(o.duration * 1e9);
	}
	t_start = now;
	measuring = 1;

	while (now < t_end) {
		int64_t wait_ms;

		/* (re)open free slots */
		if (o.mode == MODE_IDLE) {
			for (i = opened; i < o.conns && setup_inflight < o.concurrency; i++) {
				conn_open(&conns[i], now);
				step(&conns[i], now);
				update_interest(&conns[i]);
				opened++;
			}
			/* failed slots are retried at the end of the pass */
			if (opened == o.conns && !ready) {
				int busy = 0;

				for (i = 0; i < o.conns; i++) {
					if (conns[i].state == CS_FREE) {
						conn_open(&conns[i], now);
						step(&conns[i], now);
						update_interest(&conns[i]);
					}
					if (conns[i].state != CS_IDLE)
						busy = 1;
				}
				if (!busy) {
					ready = 1;
					if (o.ready_file != NULL)
						touch(o.ready_file);
					t_end = now + (int64_t)(o.duration * 1e9);
				}
			}
		} else {
			for (i = 0; i < o.conns; i++) {
				if (conns[i].state == CS_FREE) {
					conn_open(&conns[i], now);
					step(&conns[i], now);
					update_interest(&conns[i]);
				}
			}
		}
		wait_ms = (t_end - now) / 1000000;
		if (wait_ms > 100)
			wait_ms = 100;
		if (wait_ms < 0)
			wait_ms = 0;
		n = epoll_wait(ep, evs, 256, (int)wait_ms);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		now = now_ns();
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			step(c, now);
			update_interest(c);
		}
		if (now >= next_sweep) {
			sweep_timeouts(now);
			next_sweep = now + 100000000;
		}
	}
	measuring = 0;
	if (o.mode == MODE_IDLE && !ready)
		st.errors++;	/* not all connections could be opened */
	t_end = now;
	for (i = 0; i < o.conns; i++) {
		conn_close(&conns[i], 0);
		gnutls_free(conns[i].ticket.data);
	}
}

int
main(int argc, char **argv)
{
	struct rlimit rl;
	double secs;

	parse_args(argc, argv);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)o.conns + 64) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < (rlim_t)o.conns + 64)
			die("%d connections need more open files than the limit %llu "
			    "(raise ulimit -n)", o.conns, (unsigned long long)rl.rlim_cur);
	}
	setup();
	loop();

	secs = (double)(t_end - t_start) / 1e9;
	if (secs <= 0)
		secs = 1e-9;
	printf("mode=%s conns=%d duration_s=%.3f requests=%llu errors=%llu "
	    "rps=%.1f p50_us=%llu p99_us=%llu rx_bytes=%llu tx_bytes=%llu "
	    "bytes_per_s=%.0f full=%llu resumed=%llu identity_fail=%llu "
	    "err_connect=%llu err_tls=%llu err_status=%llu err_proto=%llu "
	    "err_timeout=%llu established=%llu last_bad_status=%d tls=%s\n",
	    mode_names[o.mode], o.conns, secs,
	    (unsigned long long)st.requests, (unsigned long long)st.errors,
	    (double)st.requests / secs,
	    (unsigned long long)hist_percentile(0.50),
	    (unsigned long long)hist_percentile(0.99),
	    (unsigned long long)st.rx, (unsigned long long)st.tx,
	    (double)(st.rx + st.tx) / secs,
	    (unsigned long long)st.full, (unsigned long long)st.resumed,
	    (unsigned long long)st.identity_fail,
	    (unsigned long long)st.err_connect, (unsigned long long)st.err_tls,
	    (unsigned long long)st.err_status, (unsigned long long)st.err_proto,
	    (unsigned long long)st.err_timeout,
	    (unsigned long long)st.established, st.status_seen,
	    st.tls_desc[0] ? st.tls_desc : "-");
	fflush(stdout);
	gnutls_priority_deinit(prio);
	gnutls_certificate_free_credentials(cred);
	freeaddrinfo(addr);
	free(conns);
	free(head);
	gnutls_global_deinit();
	return st.requests > 0 || (o.mode == MODE_IDLE && st.established > 0) ? 0 : 1;
}
