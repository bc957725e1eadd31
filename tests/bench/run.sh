#!/bin/bash
# run.sh: the side-by-side benchmark behind `make bench`. Sets up, on
# loopback only, the test PKI, certgate, nginx and lighttpd with mod_gnutls
# (the two installed from Debian when missing) configured alike, each in
# front of its own examples/printenv processes on a unix socket; runs every
# scenario against every server, interleaved, BENCH_REPEAT times; prints a
# table and keeps the raw lines in $BENCH_DIR/results.txt.
#
# Environment (all optional):
#   BENCH_DURATION   seconds per measured run [5]
#   BENCH_REPEAT     interleaved repetitions, at least 3 advised [3]
#   BENCH_IDLE_CONNS idle keep-alive connections [10000]
#   BENCH_IDLE_HOLD  seconds the idle connections are held [2]
#   BENCH_SCENARIOS  subset of: keepalive handshake resume get1m post1m idle
#                    map100k
#   BENCH_MAP_ENTRIES one-to-one entries of the map100k scenario [100000]
#   BENCH_SERVERS    subset of: certgate nginx lighttpd [all that are there]
#   BENCH_WORKERS    worker processes of each server [number of CPUs]
#   BENCH_APP_PROCS  printenv processes behind each server [72]
#   BENCH_PORT       first of three loopback ports [18443]
#   BENCH_LIGHTTPD BENCH_LIGHTTPD_MODULES  another lighttpd binary and its
#                    module directory [/usr/sbin/lighttpd, /usr/lib/lighttpd]
#   BENCH_INSTALL    "no" to never apt-get install nginx, lighttpd and
#                    lighttpd-mod-gnutls when missing [yes when root]
#   BENCH_CLIENT_PRIORITY  the load generator's GnuTLS priorities [TLS 1.3,
#                    X25519 only: one key share, as browsers send; offered
#                    P-256 too, GnuTLS computes a second share on every
#                    handshake, client work (~14% of a resumed handshake's)
#                    that is the same for every server and only blurs them]
#   CERTGATE PRINTENV LOADGEN BENCH_DIR   set by the Makefile
#
# usage: run.sh            run everything (make bench)
#        run.sh --table    print the table again from results.txt
#
# Alike means: TLS 1.3 only, the PKI's ECDSA P-256 server certificate, a
# client certificate required and verified against root + issuing CA and
# their CRLs, alice mapped to REMOTE_USER=Alice, the mod_ssl-style SSL_*
# variables, access logs to files, WORKERS workers, and APP_PROCS printenv
# processes with kept FastCGI connections (certgate: spawned by it; the
# others: started here on a unix socket, nginx with upstream keepalive,
# request and response streamed, no temporary files). The load generator
# presents alice's certificate and does not verify the servers after the
# start-up check. The handshake and resume scenarios fetch printenv's
# variable list and count every response without alice's identity as an
# error. Every repetition restarts the servers and swaps their order.
#
# Server CPU is utime+stime of the server's own processes (master and
# workers; not the FastCGI application) over the load generator's whole
# run, its connection set-up included, from /proc; peak RSS is the sum of
# their VmHWM over the run (reset before it); the idle scenario reports the
# growth of their RSS and PSS per connection once all are open.
#
# certgate's configuration maps alice among 10 one-to-one entries. The
# map100k scenario runs certgate only: full handshakes (as "handshake")
# against it and against a second certgate, "cg100k", whose one-to-one
# list has 100,000 entries (alice's the last), interleaved; the table gives
# the ratio 100k/10 of handshakes/s and of CPU per handshake.

set -u

TOP=$(cd "$(dirname "$0")/../.." && pwd)
CERTGATE=${CERTGATE:-$TOP/certgate}
PRINTENV=${PRINTENV:-$TOP/examples/printenv}
B=${BENCH_DIR:-$TOP/build/bench}
LOADGEN=${LOADGEN:-$B/loadgen}
DUR=${BENCH_DURATION:-5}
REPS=${BENCH_REPEAT:-3}
IDLE_N=${BENCH_IDLE_CONNS:-10000}
IDLE_HOLD=${BENCH_IDLE_HOLD:-2}
SCENARIOS=${BENCH_SCENARIOS:-keepalive handshake resume get1m post1m idle map100k}
MAP_N=${BENCH_MAP_ENTRIES:-100000}
NCPU=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
WORKERS=${BENCH_WORKERS:-$NCPU}
APP_PROCS=${BENCH_APP_PROCS:-72}
PORT0=${BENCH_PORT:-18443}
PKI=$B/pki
RESULTS=$B/results.txt
TCK=$(getconf CLK_TCK)
PY=${PYTHON:-python3}

say() { printf '%s\n' "$*" >&2; }
die() { say "bench: $*"; exit 1; }

# ------------------------------------------------------------- table

# print_table: medians, ranges and ratios from $RESULTS.
print_table() {
	local servers scenarios idle_n
	servers=$(awk '/^rep=/ { for (i = 1; i <= NF; i++) if ($i ~ /^server=/) { v = substr($i, 8); if (!(v in s)) { s[v] = 1; o = o " " v } } } END { print o }' "$RESULTS")
	scenarios=$(awk '/^rep=/ { for (i = 1; i <= NF; i++) if ($i ~ /^scenario=/) { v = substr($i, 10); if (!(v in s)) { s[v] = 1; o = o " " v } } } END { print o }' "$RESULTS")
	idle_n=$(awk '/^rep=/ && / scenario=idle / { for (i = 1; i <= NF; i++) if ($i ~ /^conns=/) { print substr($i, 7); exit } }' "$RESULTS")
	# certgate first, then nginx, then the rest
	servers=$(for s in certgate cg100k nginx lighttpd; do case " $servers " in *" $s "*) printf '%s ' "$s" ;; esac; done)
	LC_ALL=C awk -v servers="$servers" -v scenarios="$scenarios" -v idle_n="${idle_n:-0}" '
function median(a, n,    i, j, t) {
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function stat(key, field,    n, i, a, v) {
	n = cnt[key]
	if (n == 0) return ""
	for (i = 1; i <= n; i++) { a[i] = val[key, i, field] + 0 }
	med = median(a, n); lo = a[1]; hi = a[n]
	return med
}
function fmt(x) {
	if (x >= 100) return sprintf("%.0f", x)
	if (x >= 10) return sprintf("%.1f", x)
	return sprintf("%.2f", x)
}
/^#/ { next }
{
	delete kv
	for (i = 1; i <= NF; i++) { p = index($i, "="); kv[substr($i, 1, p - 1)] = substr($i, p + 1) }
	key = kv["scenario"] SUBSEP kv["server"]
	n = ++cnt[key]
	for (f in kv) val[key, n, f] = kv[f]
	val[key, n, "mbps"] = kv["bytes_per_s"] / 1e6
	val[key, n, "rss_kib"] = kv["rss_per_conn_b"] / 1024
	val[key, n, "pss_kib"] = kv["pss_per_conn_b"] / 1024
	val[key, n, "peak_mib"] = kv["peak_rss_kib"] / 1024
	errs[key] += kv["errors"]
	idf[key] += kv["identity_fail"]
	res[key] += kv["resumed"]; full[key] += kv["full"]
}
END {
	ns = split(servers, S, " "); nsc = split(scenarios, SC, " ")
	title["keepalive"] = "keep-alive GET x64"; unit["keepalive"] = "req/s"; mf["keepalive"] = "rps"
	title["handshake"] = "full handshake x16"; unit["handshake"] = "req/s"; mf["handshake"] = "rps"
	title["resume"] = "resumed hs x16"; unit["resume"] = "req/s"; mf["resume"] = "rps"
	title["get1m"] = "1 MiB GET x8"; unit["get1m"] = "MB/s"; mf["get1m"] = "mbps"
	title["post1m"] = "1 MiB POST x8"; unit["post1m"] = "MB/s"; mf["post1m"] = "mbps"
	title["idle"] = idle_n " idle conns"; unit["idle"] = "KiB/conn"; mf["idle"] = "rss_kib"
	title["map100k"] = "1:1 map, 100k vs 10"; unit["map100k"] = "req/s"; mf["map100k"] = "rps"
	printf "\n%-20s %-9s %-9s %-26s %8s %8s %10s %9s %7s  %s\n", "scenario", "server", "unit", "median (min-max)", "p50 us", "p99 us", "CPU us/req", "peak MiB", "errors", "notes"
	for (k = 1; k <= nsc; k++) {
		sc = SC[k]
		for (j = 1; j <= ns; j++) {
			sv = S[j]; key = sc SUBSEP sv
			if (cnt[key] == 0) continue
			m = stat(key, mf[sc]); l = lo; h = hi
			M[sc, sv] = m
			p50 = stat(key, "p50_us"); p99 = stat(key, "p99_us")
			cpu = stat(key, "cpu_us_per_req"); C[sc, sv] = cpu
			pk = stat(key, "peak_mib")
			note = ""
			if (sc == "resume") note = sprintf("resumed %d/%d, identity missing %d", res[key], res[key] + full[key], idf[key])
			if (sc == "handshake" || sc == "map100k") note = sprintf("identity missing %d", idf[key])
			if (sc == "map100k") note = note (sv == "cg100k" ? ", 100,000 entries" : ", 10 entries")
			if (sc == "idle") note = sprintf("PSS %s KiB/conn", fmt(stat(key, "pss_kib")))
			printf "%-20s %-9s %-9s %-26s %8s %8s %10s %9s %7d  %s\n", (j == 1 ? title[sc] : ""), sv, unit[sc],
			    sprintf("%s (%s-%s)", fmt(m), fmt(l), fmt(h)), fmt(p50), fmt(p99), fmt(cpu), fmt(pk), errs[key], note
		}
		for (j = 1; j <= ns; j++) {
			sv = S[j]
			if (sv == "certgate" || cnt[sc SUBSEP "certgate"] == 0 || cnt[sc SUBSEP sv] == 0 || M[sc, sv] <= 0)
				continue
			if (sv == "cg100k") {	# the big map against the small one
				r = M[sc, sv] / M[sc, "certgate"]
				rc = C[sc, "certgate"] > 0 ? sprintf("%.3f", C[sc, sv] / C[sc, "certgate"]) : "-"
				printf "%-20s %-9s %-9s %-26s %8s %8s %10s\n", "", "100k/10", unit[sc], sprintf("%.3f", r), "", "", rc
				continue
			}
			r = M[sc, "certgate"] / M[sc, sv]
			rc = C[sc, sv] > 0 ? sprintf("%.2f", C[sc, "certgate"] / C[sc, sv]) : "-"
			printf "%-20s %-9s %-9s %-26s %8s %8s %10s\n", "", "cg/" substr(sv, 1, 6), unit[sc], sprintf("%.2f", r), "", "", rc
		}
	}
	printf "\nCPU us/req: server CPU (utime+stime of master and workers, not the FastCGI app) per request; idle: per connection opened.\n"
	printf "peak MiB: sum of VmHWM of those processes over the run. Raw lines: results.txt.\n"
}' "$RESULTS"
}

if [ "${1:-}" = --table ]; then
	[ -f "$RESULTS" ] || die "no $RESULTS yet"
	print_table
	exit 0
fi


for f in "$CERTGATE" "$PRINTENV" "$LOADGEN"; do
	[ -x "$f" ] || die "$f is missing (run make first)"
done
command -v "$PY" >/dev/null || die "python3 is needed to start the FastCGI application for nginx and lighttpd"

# ------------------------------------------------------------- packages

find_nginx() { command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; }; }
find_lighttpd() { command -v lighttpd || { [ -x /usr/sbin/lighttpd ] && echo /usr/sbin/lighttpd; }; }
LIGHTTPD_MODS=${BENCH_LIGHTTPD_MODULES:-/usr/lib/lighttpd}

# The servers certgate is measured against, from Debian when missing.
missing=
[ -n "$(find_nginx)" ] || missing="nginx"
[ -n "${BENCH_LIGHTTPD:-}" ] || { [ -n "$(find_lighttpd)" ] && [ -f $LIGHTTPD_MODS/mod_gnutls.so ]; } ||
	missing="$missing lighttpd lighttpd-mod-gnutls"
if [ -n "$missing" ] && [ "${BENCH_INSTALL:-yes}" != no ] && [ "$(id -u)" = 0 ] &&
    command -v apt-get >/dev/null; then
	say "bench: installing$missing with apt-get"
	# The packages must not start system servers on port 80 (policy-rc.d(8)).
	made_policy=no
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d &&
			chmod 755 /usr/sbin/policy-rc.d && made_policy=yes
	fi
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null &&
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	    $missing >/dev/null || say "bench: apt-get install$missing failed"
	[ $made_policy = yes ] && rm -f /usr/sbin/policy-rc.d
fi
NGINX=$(find_nginx)
LIGHTTPD=${BENCH_LIGHTTPD:-$(find_lighttpd)}
if [ -n "$LIGHTTPD" ] && [ ! -f $LIGHTTPD_MODS/mod_gnutls.so ]; then
	say "bench: lighttpd found without mod_gnutls (apt-get install lighttpd-mod-gnutls): skipped"
	LIGHTTPD=
fi

ALL_SERVERS="certgate"
[ -n "$NGINX" ] && ALL_SERVERS="$ALL_SERVERS nginx" ||
	say "bench: nginx not found (apt-get install nginx): certgate runs alone"
[ -n "$LIGHTTPD" ] && ALL_SERVERS="$ALL_SERVERS lighttpd"
SERVERS=
for s in ${BENCH_SERVERS:-$ALL_SERVERS}; do
	case " $ALL_SERVERS " in
	*" $s "*) SERVERS="$SERVERS $s" ;;
	*) say "bench: server $s not available, skipped" ;;
	esac
done
[ -n "$SERVERS" ] || die "no server to measure"

# ------------------------------------------------------------- limits

# 10,000 idle connections need as many descriptors in the load generator
# and in the server, plus the server's own.
want=$((IDLE_N * 2 + 4096))
ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
have=$(ulimit -n)
NOFILE=$have
[ "$NOFILE" = unlimited ] && NOFILE=$want
case " $SCENARIOS " in
*" idle "*)
	if [ "$have" != unlimited ] && [ "$have" -lt $((IDLE_N + 512)) ]; then
		IDLE_N=$((have - 512))
		say "bench: open files limited to $have: idle scenario uses $IDLE_N connections"
	fi ;;
esac

# ------------------------------------------------------------- setup

mkdir -p "$B" || die "cannot create $B"
rm -rf "$B/run"
mkdir -p "$B/run"
chmod 755 "$B" "$B/run"
RUN=$B/run
sh "$TOP/tests/pki/mkpki.sh" "$PKI" >/dev/null || die "making the PKI failed"
cat "$PKI/issuing.crl" "$PKI/root.crl" >"$RUN/crls.pem"
chmod 755 "$PKI"

port_of() {
	case $1 in
	certgate) echo "$PORT0" ;;
	nginx) echo $((PORT0 + 1)) ;;
	lighttpd) echo $((PORT0 + 2)) ;;
	cg100k) echo $((PORT0 + 3)) ;;
	esac
}

# The big-map certgate runs beside the others when its scenario is asked.
case " $SCENARIOS " in
*" map100k "*) case " $SERVERS " in *" certgate "*) SERVERS="$SERVERS cg100k" ;; esac ;;
esac

for s in $SERVERS; do
	p=$(port_of "$s")
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		die "port $p is in use (set BENCH_PORT)"
	fi
done

# The account the mapping gives alice, as each server reports it.
USER_NAME=Alice
ALICE_DN="CN=Alice,OU=Engineering,O=Corp,C=US"

# one_to_one_entries N: N-1 entries by SHA-256 (of no certificate anyone
# has), then alice's, one per line.
one_to_one_entries() {
	awk -v n="$1" 'BEGIN {
		srand(7)
		for (i = 1; i < n; i++) {
			h = ""
			for (k = 0; k < 8; k++) h = h sprintf("%08x", int(rand() * 4294967296))
			printf "    { user = \"user%d\"; sha256 = \"%s\"; },\n", i, h
		}
	}'
	printf '    { user = "%s"; certificate = "%s"; }\n' "$USER_NAME" "$PKI/alice.pem"
}

# write_certgate_conf NAME ENTRIES: RUN/NAME/certgate.conf, listening on
# NAME's port, with ENTRIES one-to-one entries.
write_certgate_conf() {
	local d=$RUN/$1
	mkdir -p "$d"
	{
	cat <<EOF
# certgate for the benchmark: TLS 1.3 only, a client certificate required
# and verified against the two-level chain and its CRLs, mapped one-to-one.
daemon = false;
workers = $WORKERS;
error_log = "$d/error.log";
access_log = "$d/access.log";
log_level = "warn";
shutdown_timeout = 2;
limits = {
  keepalive_timeout = 60;
  max_body_size = 10485760;
  max_connections = $((IDLE_N + 4096));
};
tls = {
  priorities = "NORMAL:-VERS-ALL:+VERS-TLS1.3";
  session_tickets = true;
};
trust = {
  corp = {
    ca = [ "$PKI/root.pem", "$PKI/issuing.pem" ];
    crl = [ "$PKI/issuing.crl", "$PKI/root.crl" ];
    depth = 3;
  };
};
accounts = {
  one_to_one = (
EOF
	one_to_one_entries "$2"
	cat <<EOF
  );
};
policies = {
  bench = {
    client_certificate = "require";
    mapping = [ "one_to_one" ];
    export = [ "ssl" ];
  };
};
backends = {
  app = {
    spawn = {
      command = [ "$PRINTENV" ];
      processes = $APP_PROCS;
      environment = { LANG = "C"; };
      working_directory = "/";
    };
    keep_connections = true;
    max_connections = 64;
    queue = 4096;
  };
};
sites = (
  { name = "bench";
    listen = [ "https://127.0.0.1:$(port_of "$1")" ];
    hosts = [ "localhost" ];
    default = true;
    certificate = "$PKI/server-chain.pem";
    key = "$PKI/server.key";
    client_trust = "corp";
    tls_client_auth = "require";
    policy = "bench";
    locations = ( { path = "/"; backend = "app"; } );
  }
);
EOF
	} >"$d/certgate.conf"
}

# FastCGI parameters nginx sends: the CGI set and the mod_ssl-style
# variables certgate's "ssl" export sends.
FCGI_PARAMS='
      fastcgi_param QUERY_STRING $query_string;
      fastcgi_param REQUEST_METHOD $request_method;
      fastcgi_param CONTENT_TYPE $content_type;
      fastcgi_param CONTENT_LENGTH $content_length;
      fastcgi_param SCRIPT_NAME $fastcgi_script_name;
      fastcgi_param REQUEST_URI $request_uri;
      fastcgi_param DOCUMENT_URI $document_uri;
      fastcgi_param SERVER_PROTOCOL $server_protocol;
      fastcgi_param REQUEST_SCHEME $scheme;
      fastcgi_param HTTPS on;
      fastcgi_param GATEWAY_INTERFACE CGI/1.1;
      fastcgi_param SERVER_SOFTWARE nginx/$nginx_version;
      fastcgi_param REMOTE_ADDR $remote_addr;
      fastcgi_param REMOTE_PORT $remote_port;
      fastcgi_param SERVER_ADDR $server_addr;
      fastcgi_param SERVER_PORT $server_port;
      fastcgi_param SERVER_NAME $server_name;
      fastcgi_param REMOTE_USER $cert_user;
      fastcgi_param AUTH_TYPE $cert_auth_type;
      fastcgi_param SSL_PROTOCOL $ssl_protocol;
      fastcgi_param SSL_CIPHER $ssl_cipher;
      fastcgi_param SSL_SESSION_ID $ssl_session_id;
      fastcgi_param SSL_SESSION_RESUMED $ssl_session_reused;
      fastcgi_param SSL_TLS_SNI $ssl_server_name;
      fastcgi_param SSL_CLIENT_VERIFY $ssl_client_verify;
      fastcgi_param SSL_CLIENT_S_DN $ssl_client_s_dn;
      fastcgi_param SSL_CLIENT_I_DN $ssl_client_i_dn;
      fastcgi_param SSL_CLIENT_M_SERIAL $ssl_client_serial;
      fastcgi_param SSL_CLIENT_V_START $ssl_client_v_start;
      fastcgi_param SSL_CLIENT_V_END $ssl_client_v_end;
      fastcgi_param SSL_CLIENT_V_REMAIN $ssl_client_v_remain;
      fastcgi_param SSL_CLIENT_FINGERPRINT_SHA1 $ssl_client_fingerprint;'

write_nginx_conf() {
	local user=www-data
	getent passwd www-data >/dev/null || user=nobody
	mkdir -p "$RUN/nginx/tmp"
	chmod 777 "$RUN/nginx/tmp"
	cat >"$RUN/nginx/nginx.conf" <<EOF
# nginx for the benchmark, configured as certgate is: TLS 1.3 only, a
# client certificate required and verified against the two-level chain and
# its CRLs, REMOTE_USER from the certificate, kept FastCGI connections.
user $user;
worker_processes $WORKERS;
worker_rlimit_nofile $NOFILE;
pid $RUN/nginx/nginx.pid;
daemon off;
error_log $RUN/nginx/error.log warn;
events { worker_connections $((IDLE_N + 4096)); }
http {
  access_log $RUN/nginx/access.log combined;
  client_body_temp_path $RUN/nginx/tmp/body;
  fastcgi_temp_path $RUN/nginx/tmp/fastcgi;
  proxy_temp_path $RUN/nginx/tmp/proxy;
  uwsgi_temp_path $RUN/nginx/tmp/uwsgi;
  scgi_temp_path $RUN/nginx/tmp/scgi;
  default_type application/octet-stream;
  keepalive_timeout 60;
  keepalive_requests 100000000;
  client_max_body_size 10m;
  map \$ssl_client_s_dn \$cert_user {
    default "";
    "$ALICE_DN" "$USER_NAME";
  }
  map \$cert_user \$cert_auth_type {
    default "";
    "~." "SSL";
  }
  upstream app {
    server unix:$RUN/nginx/app.sock;
    keepalive 32;
  }
  server {
    listen 127.0.0.1:$(port_of nginx) ssl;
    server_name localhost;
    ssl_certificate $PKI/server-chain.pem;
    ssl_certificate_key $PKI/server.key;
    ssl_protocols TLSv1.3;
    ssl_client_certificate $PKI/ca-chain.pem;
    ssl_crl $RUN/crls.pem;
    ssl_verify_client on;
    ssl_verify_depth 2;
    ssl_session_tickets on;
    location / {
      fastcgi_pass app;
      fastcgi_keep_conn on;
      fastcgi_request_buffering off;
      fastcgi_buffer_size 64k;
      fastcgi_buffers 4 64k;
      fastcgi_max_temp_file_size 0;$FCGI_PARAMS
    }
  }
}
EOF
}

write_lighttpd_conf() {
	mkdir -p "$RUN/lighttpd/docroot"
	cat >"$RUN/lighttpd/lighttpd.conf" <<EOF
# lighttpd with mod_gnutls for the benchmark, configured as certgate is.
server.modules = ( "mod_gnutls", "mod_fastcgi" )
server.bind = "127.0.0.1"
server.port = $(port_of lighttpd)
server.document-root = "$RUN/lighttpd/docroot"
server.pid-file = "$RUN/lighttpd/lighttpd.pid"
server.errorlog = "$RUN/lighttpd/error.log"
server.max-worker = $WORKERS
server.max-fds = $NOFILE
server.max-connections = $((IDLE_N + 4096))
server.max-keep-alive-requests = 100000000
server.max-keep-alive-idle = 60
server.max-request-size = 10240
server.stream-request-body = 2
server.stream-response-body = 2
server.feature-flags = ( "server.h2proto" => "disable" )
ssl.engine = "enable"
ssl.pemfile = "$PKI/server-chain.pem"
ssl.privkey = "$PKI/server.key"
ssl.ca-file = "$PKI/ca-chain.pem"
ssl.ca-crl-file = "$RUN/crls.pem"
ssl.verifyclient.activate = "enable"
ssl.verifyclient.enforce = "enable"
ssl.verifyclient.depth = 2
ssl.verifyclient.username = "SSL_CLIENT_S_DN_CN"
ssl.openssl.ssl-conf-cmd = ( "MinProtocol" => "TLSv1.3" )
fastcgi.server = ( "/" => ( ( "socket" => "$RUN/lighttpd/app.sock",
                              "check-local" => "disable" ) ) )
EOF
}

# start_app DIR: APP_PROCS printenv processes sharing a unix socket
# DIR/app.sock as their fd 0; their PIDs in DIR/app.pids.
start_app() {
	"$PY" - "$1" "$PRINTENV" "$APP_PROCS" <<'EOF' || die "starting printenv failed"
import os, socket, subprocess, sys
d, prog, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
path = os.path.join(d, "app.sock")
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o666)
s.listen(1024)
pids = []
for _ in range(n):
    p = subprocess.Popen([prog], stdin=s.fileno(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env={"LANG": "C"},
                         start_new_session=True)
    pids.append(str(p.pid))
with open(os.path.join(d, "app.pids"), "w") as f:
    f.write(" ".join(pids) + "\n")
EOF
}

SERVER_PID_certgate= SERVER_PID_cg100k= SERVER_PID_nginx= SERVER_PID_lighttpd=

start_server() {
	case $1 in
	certgate | cg100k)
		if [ "$1" = certgate ]; then write_certgate_conf "$1" 10
		else write_certgate_conf "$1" "$MAP_N"; fi
		"$CERTGATE" -t -c "$RUN/$1/certgate.conf" >"$RUN/$1/check.log" 2>&1 ||
			{ cat "$RUN/$1/check.log" >&2; die "$1 refuses its configuration"; }
		"$CERTGATE" -f -c "$RUN/$1/certgate.conf" >>"$RUN/$1/stdout.log" 2>&1 &
		eval "SERVER_PID_$1=\$!" ;;
	nginx)
		write_nginx_conf
		start_app "$RUN/nginx"
		"$NGINX" -t -q -c "$RUN/nginx/nginx.conf" -p "$RUN/nginx" 2>"$RUN/nginx/check.log" ||
			{ cat "$RUN/nginx/check.log" >&2; die "nginx refuses its configuration"; }
		"$NGINX" -c "$RUN/nginx/nginx.conf" -p "$RUN/nginx" >"$RUN/nginx/stdout.log" 2>&1 &
		SERVER_PID_nginx=$! ;;
	lighttpd)
		# optional: a lighttpd that will not start is left out
		write_lighttpd_conf
		"$LIGHTTPD" -tt -m "$LIGHTTPD_MODS" -f "$RUN/lighttpd/lighttpd.conf" \
		    >"$RUN/lighttpd/check.log" 2>&1 || {
			cat "$RUN/lighttpd/check.log" >&2
			say "bench: lighttpd refuses its configuration: left out"
			return 1
		}
		start_app "$RUN/lighttpd"
		# its own session: lighttpd signals its whole process group
		setsid "$LIGHTTPD" -D -m "$LIGHTTPD_MODS" -f "$RUN/lighttpd/lighttpd.conf" \
		    >"$RUN/lighttpd/stdout.log" 2>&1 &
		SERVER_PID_lighttpd=$! ;;
	esac
}

server_pid() { eval "echo \${SERVER_PID_$1}"; }

# pids_of NAME: the server's master and every descendant that is not the
# FastCGI application.
pids_of() {
	local root
	root=$(server_pid "$1")
	[ -n "$root" ] || return 0
	ps -e -o pid=,ppid=,comm= | awk -v root="$root" '
	    { pp[$1] = $2; cm[$1] = $3 }
	    END {
		in_[root] = 1; changed = 1
		while (changed) {
			changed = 0
			for (p in pp)
				if (!(p in in_) && (pp[p] in in_)) { in_[p] = 1; changed = 1 }
		}
		for (p in in_) if (cm[p] != "printenv") printf "%s\n", p
	    }' | sort -n | tr '\n' ' '
}

# app_pids NAME: the FastCGI application's processes behind the server.
app_pids() {
	if [ "$1" = certgate ] || [ "$1" = cg100k ]; then
		local root
		root=$(server_pid "$1")
		ps -e -o pid=,ppid=,comm= | awk -v root="$root" '
		    { pp[$1] = $2; cm[$1] = $3 }
		    END { for (p in pp) if (cm[p] == "printenv") {
			q = p; n = 0
			while (q in pp && q != root && n++ < 10) q = pp[q]
			if (q == root) printf "%s ", p } }'
	else
		cat "$RUN/$1/app.pids" 2>/dev/null
	fi
}

# cpu_ticks PID...: utime+stime of the processes, in clock ticks.
cpu_ticks() {
	local p t=0 f
	for p in "$@"; do
		f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		f=${f##*) }
		set -- $f
		t=$((t + ${12} + ${13}))
	done
	echo $t
}

# cpu_each PID...: "PID:TICKS" for each process.
cpu_each() {
	local p f
	for p in "$@"; do
		f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		f=${f##*) }
		set -- $f
		printf '%s:%s ' "$p" $((${12} + ${13}))
	done
}

# split BEFORE AFTER: the ticks each process used, as "T1/T2/...", the
# master first.
split_ticks() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		n = split(a, A, " "); for (i = 1; i <= n; i++) { split(A[i], x, ":"); t0[x[1]] = x[2] }
		m = split(b, B, " "); out = ""
		for (i = 1; i <= m; i++) { split(B[i], x, ":"); out = out (out == "" ? "" : "/") (x[2] - t0[x[1]]) }
		print (out == "" ? "-" : out) }'
}

# mem_kib FIELD PID...: the sum of FIELD (VmHWM, VmRSS) from status, or of
# Pss from smaps_rollup, in KiB.
mem_kib() {
	local field=$1 p t=0 v
	shift
	for p in "$@"; do
		if [ "$field" = Pss ]; then
			v=$(awk '/^Pss:/ { print $2; exit }' "/proc/$p/smaps_rollup" 2>/dev/null)
		else
			v=$(awk -v f="$field:" '$1 == f { print $2; exit }' "/proc/$p/status" 2>/dev/null)
		fi
		t=$((t + ${v:-0}))
	done
	echo $t
}

# stop_server NAME: stops the server we started and its application.
stop_server() {
	local p
	p=$(server_pid "$1")
	[ -n "$p" ] && kill -TERM "$p" 2>/dev/null
	if [ -f "$RUN/$1/app.pids" ]; then
		# shellcheck disable=SC2046
		kill -TERM $(cat "$RUN/$1/app.pids") 2>/dev/null
		rm -f "$RUN/$1/app.pids"
	fi
	[ -n "$p" ] && wait "$p" 2>/dev/null
	eval "SERVER_PID_$1="
}

stop_servers() {
	local s
	for s in certgate cg100k nginx lighttpd; do stop_server "$s"; done
}
trap 'stop_servers' EXIT
trap 'exit 130' INT TERM

LG_TLS=(--host 127.0.0.1 --sni localhost --cert "$PKI/alice-chain.pem" --key "$PKI/alice.key"
	--priority "${BENCH_CLIENT_PRIORITY:-NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-X25519}")
IDENT=(--expect "SSL_CLIENT_S_DN=" --expect "CN=Alice" --expect $'\nREMOTE_USER='"$USER_NAME"$'\n')

# wait_ready NAME: the server answers a verified request with alice's
# identity, within 15 s.
wait_ready() {
	local i out
	for i in $(seq 1 150); do
		out=$("$LOADGEN" "${LG_TLS[@]}" --port "$(port_of "$1")" --cafile "$PKI/ca-chain.pem" \
		    --mode handshake --connections 1 --requests 1 --duration 1 --path / \
		    "${IDENT[@]}" 2>/dev/null)
		case $out in *" requests=1 errors=0 "*) return 0 ;; esac
		if ! kill -0 "$(server_pid "$1")" 2>/dev/null; then
			say "bench: $1 exited; its logs:"
			tail -n 20 "$RUN/$1"/*.log >&2
			break
		fi
		sleep 0.1
	done
	say "bench: $1 does not answer as expected: $out"
	"$LOADGEN" "${LG_TLS[@]}" --port "$(port_of "$1")" --cafile "$PKI/ca-chain.pem" \
	    --mode handshake --connections 1 --requests 1 --duration 1 "${IDENT[@]}" --verbose >&2
	[ "$1" = lighttpd ] || die "$1 is not ready"
	say "bench: lighttpd left out"
	return 1
}

# ------------------------------------------------------------- scenarios

# scenario_args NAME: the load generator's options for a scenario.
scenario_args() {
	case $1 in
	keepalive) echo "--mode keepalive --connections 64 --path /?size=64&length" ;;
	handshake | map100k) echo "--mode handshake --connections 16 --path / IDENT" ;;
	resume) echo "--mode resume --connections 16 --path / IDENT" ;;
	get1m) echo "--mode keepalive --connections 8 --path /?size=1048576&length" ;;
	post1m) echo "--mode keepalive --connections 8 --path /?echo --body 1048576" ;;
	idle) echo "--mode idle --connections $IDLE_N --concurrency 64 --path /?size=64&length" ;;
	esac
}

scenario_title() {
	case $1 in
	keepalive) echo "keep-alive GET, 64 conns" ;;
	handshake) echo "full handshake/req, 16" ;;
	resume) echo "resumed handshake/req, 16" ;;
	get1m) echo "1 MiB GET, 8 conns" ;;
	post1m) echo "1 MiB POST (echo), 8" ;;
	idle) echo "$IDLE_N idle keep-alive" ;;
	map100k) echo "full handshake/req, 16, 100,000 vs 10 one-to-one entries" ;;
	esac
}

# measure REP SCENARIO SERVER: one run; appends a line to $RESULTS.
measure() {
	local rep=$1 sc=$2 srv=$3 port pids apps c0 c1 a0 a1 line args p
	local rss0=0 pss0=0 rss1=0 pss1=0 extra= reqs lg ready e0 e1
	port=$(port_of "$srv")
	# shellcheck disable=SC2207
	pids=($(pids_of "$srv"))
	# shellcheck disable=SC2207
	apps=($(app_pids "$srv"))
	for p in "${pids[@]}"; do echo 5 >"/proc/$p/clear_refs" 2>/dev/null; done
	args=$(scenario_args "$sc")
	local -a la=()
	for a in $args; do
		if [ "$a" = IDENT ]; then la+=("${IDENT[@]}"); else la+=("$a"); fi
	done
	if [ "$sc" = idle ]; then
		rss0=$(mem_kib VmRSS "${pids[@]}")
		pss0=$(mem_kib Pss "${pids[@]}")
		ready=$RUN/idle.ready
		rm -f "$ready"
		e0=$(cpu_each "${pids[@]}")
		c0=$(cpu_ticks "${pids[@]}"); a0=$(cpu_ticks "${apps[@]}")
		"$LOADGEN" "${LG_TLS[@]}" --port "$port" "${la[@]}" --duration "$IDLE_HOLD" \
		    --setup-timeout 120 --ready-file "$ready" >"$RUN/idle.out" 2>"$RUN/idle.err" &
		lg=$!
		while kill -0 "$lg" 2>/dev/null && [ ! -f "$ready" ]; do sleep 0.1; done
		if [ -f "$ready" ]; then
			c1=$(cpu_ticks "${pids[@]}"); a1=$(cpu_ticks "${apps[@]}")
			e1=$(cpu_each "${pids[@]}")
			sleep 0.5
			rss1=$(mem_kib VmRSS "${pids[@]}")
			pss1=$(mem_kib Pss "${pids[@]}")
		fi
		wait "$lg"
		[ -f "$ready" ] || { c1=$(cpu_ticks "${pids[@]}"); a1=$(cpu_ticks "${apps[@]}")
			e1=$(cpu_each "${pids[@]}"); }
		line=$(cat "$RUN/idle.out")
		reqs=$(printf '%s\n' "$line" | sed -n 's/.* established=\([0-9]*\).*/\1/p')
		extra="rss_before_kib=$rss0 rss_idle_kib=$rss1 pss_before_kib=$pss0 pss_idle_kib=$pss1"
		if [ -f "$ready" ] && [ "${reqs:-0}" -gt 0 ]; then
			extra="$extra rss_per_conn_b=$(( (rss1 - rss0) * 1024 / reqs ))"
			extra="$extra pss_per_conn_b=$(( (pss1 - pss0) * 1024 / reqs ))"
		fi
	else
		e0=$(cpu_each "${pids[@]}")
		c0=$(cpu_ticks "${pids[@]}"); a0=$(cpu_ticks "${apps[@]}")
		line=$("$LOADGEN" "${LG_TLS[@]}" --port "$port" "${la[@]}" --duration "$DUR" 2>"$RUN/lg.err")
		c1=$(cpu_ticks "${pids[@]}"); a1=$(cpu_ticks "${apps[@]}")
		e1=$(cpu_each "${pids[@]}")
		reqs=$(printf '%s\n' "$line" | sed -n 's/.* requests=\([0-9]*\).*/\1/p')
	fi
	[ -n "$line" ] || line="mode=failed requests=0 errors=1"
	local peak
	peak=$(mem_kib VmHWM "${pids[@]}")
	reqs=${reqs:-0}
	local cpu_us=0 app_us=0
	if [ "$reqs" -gt 0 ]; then
		cpu_us=$(( (c1 - c0) * 1000000 / TCK / reqs ))
		app_us=$(( (a1 - a0) * 1000000 / TCK / reqs ))
	fi
	printf 'rep=%s scenario=%s server=%s %s server_cpu_ticks=%s app_cpu_ticks=%s cpu_us_per_req=%s app_cpu_us_per_req=%s peak_rss_kib=%s nproc=%s cpu_split_ticks=%s %s\n' \
	    "$rep" "$sc" "$srv" "$line" $((c1 - c0)) $((a1 - a0)) "$cpu_us" "$app_us" \
	    "$peak" "${#pids[@]}" "$(split_ticks "$e0" "$e1")" "$extra" >>"$RESULTS"
	printf '  rep %s %-10s %-9s %s\n' "$rep" "$sc" "$srv" \
	    "$(printf '%s\n' "$line" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^(rps|p50_us|p99_us|errors|resumed|bytes_per_s|established)=/) printf "%s ", $i }') cpu_us/req=$cpu_us" >&2
}

# ------------------------------------------------------------- run

: >"$RESULTS"
{
	echo "# certgate bench $(date -u +%Y-%m-%dT%H:%M:%SZ) duration=$DUR reps=$REPS workers=$WORKERS app_procs=$APP_PROCS cpus=$NCPU"
	echo "# $(uname -srm); $("$CERTGATE" -V 2>&1 | tr '\n' ' ')"
	[ -n "$NGINX" ] && echo "# $($NGINX -v 2>&1)"
	[ -n "$LIGHTTPD" ] && echo "# $($LIGHTTPD -v 2>&1 | head -1)"
} >>"$RESULTS"

say "bench: servers:$SERVERS; scenarios: $SCENARIOS; $REPS x ${DUR}s each"
# Every repetition starts the servers afresh, so that the memory one run
# leaves behind (10,000 idle connections) does not count in the next.
order=($SERVERS)
for rep in $(seq 1 "$REPS"); do
	started=
	for s in "${order[@]}"; do
		if start_server "$s"; then
			started="$started $s"
		elif [ "$rep" -gt 1 ]; then
			die "$s did not start again"
		fi
	done
	up=()
	for s in $started; do
		if wait_ready "$s"; then
			up+=("$s")
		else
			stop_server "$s"
			[ "$rep" -gt 1 ] && die "$s did not answer again"
		fi
	done
	[ ${#up[@]} -gt 0 ] || die "no server answers"
	order=("${up[@]}")
	say "bench: repetition $rep of $REPS:${order[*]/#/ }"
	for sc in $SCENARIOS; do
		for srv in "${order[@]}"; do
			# cg100k runs the map scenario only, and nothing else does
			case $sc:$srv in
			map100k:certgate | map100k:cg100k) ;;
			map100k:* | *:cg100k) continue ;;
			esac
			measure "$rep" "$sc" "$srv"
			sleep 0.5
		done
	done
	stop_servers
	# the next repetition takes the servers in the opposite order
	rev=()
	for ((i = ${#order[@]} - 1; i >= 0; i--)); do rev+=("${order[$i]}"); done
	order=("${rev[@]}")
done

print_table
