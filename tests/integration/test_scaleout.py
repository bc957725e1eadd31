"""Several instances behind a TCP balancer (SPEC section 11, issue 11):
Debian's haproxy in TCP mode with send-proxy-v2 and health checks, in
front of two certgate instances that share a session ticket key file and
one FastCGI application over TCP.

HAProxy listens on three loopback ports: `main` balances over both
instances, `via_a` and `via_b` reach one instance each (so a session made
on A can be offered to B). The client connects from 127.0.0.2, so its
address cannot be mistaken for the balancer's (127.0.0.1, the only trusted
source of PROXY headers).
"""

import base64
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import (CERTGATE, App, Gateway, IO_TIMEOUT, build_request, client_context,
                      free_port, line_of, read_final_response, response_from_bytes,
                      wait_for)

CLIENT_ADDR = "127.0.0.2"       # the client; the balancer connects from 127.0.0.1
CHECK_INTER_MS = 300


def need(tool):
    path = shutil.which(tool)
    assert path, f"{tool} is not installed (./configure --install-deps installs it)"
    return path


def new_key():
    """A ticket key file's content, as `openssl rand -base64 64` writes it."""
    r = subprocess.run(["openssl", "rand", "-base64", "64"], capture_output=True,
                       check=True, timeout=30)
    assert len(base64.b64decode(r.stdout)) == 64
    return r.stdout


def write_key(path, content):
    """Replace the key file at once, as the documented rotation does."""
    tmp = str(path) + ".new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    os.replace(tmp, path)


def configure_instance(gw, key_file):
    """One certgate instance: only a PROXY-protocol https listener, client
    certificates required and mapped one-to-one, the shared key file."""
    pki = gw.pki.dir
    gw.config["workers"] = 1
    gw.config["log_level"] = "debug"      # LOCAL health checks show at debug only
    gw.config["tls"]["ticket_key_file"] = str(key_file)
    listener = f"https://127.0.0.1:{gw.https_port}"
    gw.config["proxy_protocol"] = {
        "listeners": [listener],
        "trusted": ["127.0.0.1/32", "::1/128"],
        "header_timeout": 3,
    }
    gw.config["trust"] = {"corp": {
        "ca": [str(pki / "root.pem"), str(pki / "issuing.pem")],
        "crl": [str(pki / "issuing.crl"), str(pki / "root.crl")],
    }}
    gw.config["accounts"] = {"one_to_one": [
        {"user": "alice", "certificate": str(pki / "alice.pem")},
    ]}
    gw.config["policies"]["staff"] = {
        "client_certificate": "require",
        "mapping": ["one_to_one"],
        "require_account": True,
        "export": ["ssl", "iis"],
    }
    site = gw.site
    site["listen"] = [listener]
    site["client_trust"] = "corp"
    site["policy"] = "staff"
    # Many connections at once under load: the application's 4 processes
    # each serve one kept connection; the rest waits in the queue.
    gw.config["backends"]["app"]["max_connections"] = 2


class HAProxy:
    def __init__(self, workdir, a_port, b_port):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.main_port, self.a_port, self.b_port = free_port(), free_port(), free_port()
        self.cfg_path = self.dir / "haproxy.cfg"
        self.log_path = self.dir / "haproxy.log"
        self.cfg_path.write_text(f"""
global
    log stdout format raw local0 info
    maxconn 1000

defaults
    mode tcp
    log global
    option tcplog
    option redispatch
    retries 3
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    default-server send-proxy-v2 check inter {CHECK_INTER_MS}ms fall 2 rise 2

frontend main
    bind 127.0.0.1:{self.main_port}
    default_backend certgate

frontend via_a
    bind 127.0.0.1:{self.a_port}
    default_backend only_a

frontend via_b
    bind 127.0.0.1:{self.b_port}
    default_backend only_b

backend certgate
    balance roundrobin
    server a 127.0.0.1:{a_port}
    server b 127.0.0.1:{b_port}

backend only_a
    server a 127.0.0.1:{a_port} proxy-v2-options crc32c

backend only_b
    server b 127.0.0.1:{b_port}
""")
        self.proc = None

    def start(self):
        r = subprocess.run([need("haproxy"), "-c", "-f", str(self.cfg_path)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(self.cfg_path)],
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        for port in (self.main_port, self.a_port, self.b_port):
            wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close()
                     or True, 10, what=f"haproxy on port {port}")
        return self

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


class Cluster:
    def __init__(self, a, b, hap, app, keys):
        self.a, self.b, self.hap, self.app, self.keys = a, b, hap, app, keys


@pytest.fixture(scope="module")
def cluster(pki, printenv_bin, tmp_path_factory):
    need("haproxy")
    root = tmp_path_factory.mktemp("scaleout")
    app = App(printenv_bin, root / "app", kind="tcp", processes=4)
    app.start()
    key = new_key()
    # One file per instance, as on two machines: copies of one key.
    keys = {"a": root / "a-ticket.key", "b": root / "b-ticket.key"}
    gws = {}
    hap = None
    try:
        for name in ("a", "b"):
            write_key(keys[name], key)
            gw = Gateway(root / name, pki, app.address)
            configure_instance(gw, keys[name])
            gws[name] = gw.start()
        hap = HAProxy(root / "haproxy", gws["a"].https_port, gws["b"].https_port).start()
        # Both servers up: the health checks go through.
        wait_for(lambda: all(f"PROXY v2 LOCAL from 127.0.0.1" in g.error_log()
                             for g in gws.values()), 10, what="health checks on both")
        yield Cluster(gws["a"], gws["b"], hap, app, keys)
    finally:
        if hap is not None:
            hap.stop()
        for g in gws.values():
            g.close()
        app.stop()


# ---------------------------------------------------------------- clients

def client_socket(port, timeout=IO_TIMEOUT):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.bind((CLIENT_ADDR, 0))
        s.connect(("127.0.0.1", port))
    except Exception:
        s.close()
        raise
    return s


def request(pki, port, target="/", cert="alice"):
    """One request on a new TLS connection from CLIENT_ADDR; (response,
    the client's own source port)."""
    ctx = client_context(pki, cert=cert)
    raw = client_socket(port)
    src_port = raw.getsockname()[1]
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(build_request("GET", target, headers=[("Connection", "close")]))
        resp = read_final_response(s.makefile("rb"))
    return resp, src_port


def s_client(cluster, port, sess_out=None, sess_in=None, target="/"):
    """openssl s_client through the balancer with alice's certificate;
    (whether the session was reused, the response)."""
    pki = cluster.a.pki
    args = [need("openssl"), "s_client", "-connect", f"127.0.0.1:{port}",
            "-servername", "localhost", "-CAfile", pki.ca_chain,
            "-cert", pki.path("alice.pem"), "-key", pki.path("alice.key"),
            "-tls1_3", "-ign_eof"]
    if sess_out:
        args += ["-sess_out", str(sess_out)]
    if sess_in:
        args += ["-sess_in", str(sess_in)]
    req = build_request("GET", target, headers=[("Connection", "close")])
    r = subprocess.run(args, input=req, capture_output=True, timeout=30)
    out = r.stdout
    m = re.search(rb"^(New|Reused), (TLSv[\d.]+)", out, re.M)
    assert m, out.decode(errors="replace") + r.stderr.decode(errors="replace")
    start = out.find(b"HTTP/1.1 ")
    assert start >= 0, out.decode(errors="replace") + r.stderr.decode(errors="replace")
    return m.group(1) == b"Reused", response_from_bytes(out[start:])


def problems(log):
    """Error-log lines at warn or error level."""
    return [l for l in log.splitlines() if "[warn]" in l or "[error]" in l]


# ---------------------------------------------------------------- tests

def test_requests_carry_the_client_address(cluster):
    seen = set()
    for i in range(6):
        resp, src_port = request(cluster.a.pki, cluster.hap.main_port, f"/req{i}")
        assert resp.status == 200, resp
        v = resp.vars
        assert v["REMOTE_ADDR"] == CLIENT_ADDR
        assert v["REMOTE_PORT"] == str(src_port)
        assert v["SERVER_ADDR"] == "127.0.0.1"
        assert v["SERVER_PORT"] == str(cluster.hap.main_port)
        assert v["REMOTE_USER"] == "alice"
        assert v["SSL_CLIENT_VERIFY"] == "SUCCESS"
        seen.add(v["REQUEST_URI"])
    # Round robin: both instances served, and logged the client's address.
    for gw in (cluster.a, cluster.b):
        wait_for(lambda: re.search(rf"^{re.escape(CLIENT_ADDR)} - - .*\"GET /req\d ",
                                   gw.access_log(), re.M), 5, what="an access log line")
        assert re.search(rf"PROXY v2 from 127\.0\.0\.1:\d+: client {re.escape(CLIENT_ADDR)}:\d+ "
                         rf"to 127\.0\.0\.1:{cluster.hap.main_port}", gw.error_log())
        assert "127.0.0.1 - - " not in gw.access_log()
    assert len(seen) == 6


def test_health_checks_cause_no_errors(cluster):
    # Let a few more rounds of checks happen (every CHECK_INTER_MS).
    time.sleep(1.0)
    for gw in (cluster.a, cluster.b):
        log = gw.error_log()
        assert log.count("PROXY v2 LOCAL from 127.0.0.1") >= 3
        assert problems(log) == [], "\n".join(problems(log))
        assert "refused" not in log, log[-3000:]
    assert "DOWN" not in cluster.hap.log(), cluster.hap.log()


def test_session_from_a_resumes_on_b(cluster, tmp_path):
    sess = tmp_path / "a.sess"
    reused, first = s_client(cluster, cluster.hap.a_port, sess_out=sess, target="/first")
    assert not reused and first.status == 200, first
    assert first.vars["SSL_SESSION_RESUMED"] == "Initial"
    assert sess.exists() and sess.stat().st_size > 0
    reused, second = s_client(cluster, cluster.hap.b_port, sess_in=sess, target="/second")
    assert reused, "B did not resume A's session"
    v1, v2 = first.vars, second.vars
    assert second.status == 200, second
    assert v2["SSL_SESSION_RESUMED"] == "Resumed"
    assert v2["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert v2["REMOTE_USER"] == "alice"
    assert v2["CERT_MAP_METHOD"] == "one-to-one"
    assert v2["SSL_CLIENT_S_DN"] == "CN=Alice,OU=Engineering,O=Corp,C=US"
    for k in ("SSL_CLIENT_S_DN", "SSL_CLIENT_I_DN", "SSL_CLIENT_M_SERIAL",
              "SSL_CLIENT_FINGERPRINT_SHA256", "CERT_COOKIE", "REMOTE_USER"):
        assert v2[k] == v1[k], k
    # A's header came with HAProxy's CRC32C, which certgate checked.
    assert re.search(rf"PROXY v2 from 127\.0\.0\.1:\d+: client 127\.0\.0\.1:\d+ "
                     rf"to 127\.0\.0\.1:{cluster.hap.a_port} \(CRC32C checked\)",
                     cluster.a.error_log())
    # It really was B: its access log has the request.
    wait_for(lambda: '"GET /second ' in cluster.b.access_log(), 5, what="B's access log")
    assert '"GET /second ' not in cluster.a.access_log()


def reloaded_on_change(gw, before):
    """Wait until gw noticed its key file changed and reloaded."""
    wait_for(lambda: gw.error_log().count("reloaded: generation") > before, 15,
             what="the reload on the key file change")
    time.sleep(0.5)     # the old generation has stopped accepting


def test_different_keys_do_not_resume_then_rotation(cluster, tmp_path):
    a, b = cluster.a, cluster.b
    before_b = b.error_log().count("reloaded: generation")
    write_key(cluster.keys["b"], new_key())
    reloaded_on_change(b, before_b)
    assert "changed: reloading" in b.error_log()

    sess = tmp_path / "a.sess"
    reused, _ = s_client(cluster, cluster.hap.a_port, sess_out=sess, target="/k1")
    assert not reused
    reused, resp = s_client(cluster, cluster.hap.b_port, sess_in=sess, target="/k2")
    assert not reused, "B resumed a session under another key"
    # A full handshake instead: the client is still served, as itself.
    assert resp.status == 200
    assert resp.vars["SSL_SESSION_RESUMED"] == "Initial"
    assert resp.vars["REMOTE_USER"] == "alice"

    # Rotation completed: A gets B's new key; sessions cross again.
    before_a = a.error_log().count("reloaded: generation")
    write_key(cluster.keys["a"], cluster.keys["b"].read_bytes())
    reloaded_on_change(a, before_a)
    sess2 = tmp_path / "a2.sess"
    reused, _ = s_client(cluster, cluster.hap.a_port, sess_out=sess2, target="/k3")
    assert not reused
    reused, resp = s_client(cluster, cluster.hap.b_port, sess_in=sess2, target="/k4")
    assert reused and resp.vars["REMOTE_USER"] == "alice"


def test_bad_key_file_keeps_the_key_in_use(cluster, tmp_path):
    b = cluster.b
    good = cluster.keys["b"].read_bytes()
    before = b.error_log().count("reload failed")
    write_key(cluster.keys["b"], b"not a key\n")
    wait_for(lambda: b.error_log().count("reload failed") > before, 15,
             what="the refused key file")
    assert "is not 64 bytes in base64" in b.error_log()
    resp, _ = request(b.pki, cluster.hap.b_port, "/still")
    assert resp.status == 200
    # Refused once, not again every few seconds.
    time.sleep(6)
    assert b.error_log().count("reload failed") == before + 1
    before_ok = b.error_log().count("reloaded: generation")
    write_key(cluster.keys["b"], good)
    reloaded_on_change(b, before_ok)


def test_untrusted_source_is_refused(cluster):
    gw = cluster.a
    # A client that speaks the PROXY protocol itself, from outside `trusted`.
    s = client_socket(gw.https_port)
    try:
        s.sendall(b"PROXY TCP4 203.0.113.9 127.0.0.1 4242 443\r\n")
        s.settimeout(5)
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        assert data == b""
    finally:
        s.close()
    wait_for(lambda: re.search(rf"\[warn\] #\d+ connection from {re.escape(CLIENT_ADDR)}:\d+ "
                               rf"to https://127\.0\.0\.1:{gw.https_port} refused: not a "
                               "trusted source", gw.error_log()), 5, what="the refusal")
    assert "203.0.113.9" not in gw.access_log() + gw.error_log()
    # TLS straight to an instance, without a header, from a trusted source: refused too.
    ctx = client_context(gw.pki, cert="alice")
    raw = socket.create_connection(("127.0.0.1", gw.https_port), timeout=5)
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        with ctx.wrap_socket(raw, server_hostname="localhost") as t:
            t.sendall(build_request("GET", "/direct"))
            t.recv(100)
    wait_for(lambda: "PROXY header from 127.0.0.1" in gw.error_log() and
             "refused: not a PROXY protocol header" in gw.error_log(), 5,
             what="the refused header")


def test_stopping_one_instance_under_load(cluster):
    """Clients hammer the balancer; instance B stops in the middle. HAProxy
    moves the traffic to A; the failed requests are counted and printed."""
    a, b, hap = cluster.a, cluster.b, cluster.hap
    stop = threading.Event()
    lock = threading.Lock()
    results = []            # (time, ok, error)
    a_problems = len(problems(a.error_log()))

    def client():
        while not stop.is_set():
            t = time.monotonic()
            try:
                resp, _ = request(a.pki, hap.main_port, "/load", cert="alice")
                ok, err = resp.status == 200, None if resp.status == 200 else resp.status
            except Exception as e:   # a failed request, whatever the failure
                ok, err = False, repr(e)
            with lock:
                results.append((t, ok, err))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(2.0)
        a_before = a.access_log().count('"GET /load ')
        b_before = b.access_log().count('"GET /load ')
        stopped_at = time.monotonic()
        b.stop(timeout=15)
        time.sleep(3.0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    total = len(results)
    failed = [r for r in results if not r[1]]
    after = [r for r in results if r[0] > stopped_at + 1.0]
    print(f"\nscale-out: {total} requests, {len(failed)} failed while instance B "
          f"stopped (before the stop: A {a_before}, B {b_before} served)")
    for f in failed[:10]:
        print("  failed:", f[2])
    assert a_before > 0 and b_before > 0, "the load was not balanced over both"
    assert len(after) > 20, "too little traffic after the stop"
    assert all(ok for _, ok, _ in after), [e for _, ok, e in after if not ok][:5]
    assert len(failed) <= total // 20, f"{len(failed)} of {total} failed"
    wait_for(lambda: re.search(r"Server certgate/b is DOWN", hap.log()), 5,
             what="haproxy marking B down")
    # Everything after the stop went to A.
    assert a.access_log().count('"GET /load ') - a_before >= len(after)
    assert problems(a.error_log())[a_problems:] == [], problems(a.error_log())


# ---------------------------------------------------------------- configuration and examples

TOP = Path(__file__).resolve().parents[2]


def check_config(gw, text=None):
    """`certgate -t` of gw's configuration; (exit code, stderr)."""
    path = gw.write_config(text)
    r = subprocess.run([CERTGATE, "-t", "-c", path], capture_output=True, text=True,
                       timeout=60)
    return r.returncode, r.stderr, path


@pytest.fixture
def offline_gw(pki, tmp_path):
    """An instance's configuration, not started."""
    key = tmp_path / "ticket.key"
    write_key(key, new_key())
    gw = Gateway(tmp_path / "gw", pki, "tcp:127.0.0.1:9")
    configure_instance(gw, key)
    return gw


def test_config_checks(offline_gw, tmp_path):
    gw = offline_gw
    rc, err, _ = check_config(gw)
    assert rc == 0, err
    # A listener that no site has, at the line of proxy_protocol.listeners.
    gw.config["proxy_protocol"]["listeners"].append("https://127.0.0.1:1")
    text = gw.config_text()
    rc, err, path = check_config(gw, text)
    assert rc == 1
    assert f'{path}:{line_of(text, "listeners = ")}: proxy_protocol.listeners: ' \
           f'"https://127.0.0.1:1" is not in any site\'s "listen"' in err, err
    gw.config["proxy_protocol"]["listeners"].pop()
    for bad, why in (("10.1.2.3/16", "address bits set after the /16 prefix"),
                     ("10.0.0.0/33", "is not an address or ADDRESS/BITS network"),
                     ("balancer.example", "is not an address or ADDRESS/BITS network")):
        gw.config["proxy_protocol"]["trusted"] = [bad]
        text = gw.config_text()
        rc, err, path = check_config(gw, text)
        assert rc == 1 and f'{path}:{line_of(text, "trusted = ")}: ' in err, err
        assert why in err, err
    gw.config["proxy_protocol"]["trusted"] = []
    rc, err, _ = check_config(gw)
    assert rc == 1 and "proxy_protocol.trusted is empty" in err, err


@pytest.mark.parametrize("content,mode,why", [
    (None, 0o644, "is open to other users"),
    (b"c2hvcnQ=\n", 0o600, "is not 64 bytes in base64"),
    (b"!!!! not base64 !!!!\n", 0o600, "is not 64 bytes in base64"),
    (b"", 0o600, "is not 64 bytes in base64"),
])
def test_ticket_key_file_checks(offline_gw, content, mode, why):
    gw = offline_gw
    key = Path(gw.config["tls"]["ticket_key_file"])
    if content is not None:
        write_key(key, content)
    os.chmod(key, mode)
    text = gw.config_text()
    rc, err, path = check_config(gw, text)
    assert rc == 1
    assert f'{path}:{line_of(text, "ticket_key_file = ")}: tls.ticket_key_file: ' in err, err
    assert why in err, err
    # Line breaks anywhere are ignored: the key as one line is the same key.
    write_key(key, new_key().replace(b"\n", b"") + b"\n")
    assert check_config(gw)[0] == 0


def test_example_haproxy_cfg_is_valid():
    r = subprocess.run([need("haproxy"), "-c", "-f", str(TOP / "examples" / "haproxy.cfg")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    text = (TOP / "examples" / "haproxy.cfg").read_text()
    assert "send-proxy-v2 check" in text and "mode tcp" in text


def test_example_instance_config_is_valid(pki, tmp_path):
    """The certgate configuration of examples/scale-out.md passes -t with
    this test's files in place of /etc/certgate's."""
    md = (TOP / "examples" / "scale-out.md").read_text()
    m = re.search(r"```libconfig\n(.*?)```", md, re.S)
    assert m, "no libconfig block in scale-out.md"
    key = tmp_path / "ticket.key"
    write_key(key, new_key())
    text = m.group(1)
    for old, new in (("/etc/certgate/ticket.key", str(key)),
                     ("/etc/certgate/pki/", str(pki.dir) + "/"),
                     ("/etc/certgate/users/", str(pki.dir) + "/"),
                     ("/etc/certgate/tls/intranet.pem", pki.server_cert),
                     ("/etc/certgate/tls/intranet.key", pki.server_key),
                     ("/var/log/certgate/access.log", str(tmp_path / "access.log"))):
        assert old in text, old
        text = text.replace(old, new)
    conf = tmp_path / "instance.conf"
    conf.write_text(text)
    r = subprocess.run([CERTGATE, "-t", "-c", str(conf)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------- headers sent by hand

def v2_header(src, sport, dst, dport, command=0x21, tlvs=b""):
    """A PROXY v2 header for TCP over IPv4."""
    body = (socket.inet_aton(src) + socket.inet_aton(dst) + sport.to_bytes(2, "big")
            + dport.to_bytes(2, "big") + tlvs)
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([command, 0x11])
            + len(body).to_bytes(2, "big") + body)


@pytest.fixture
def direct_gw(make_gateway, app):
    """One instance with a PROXY-protocol http and https listener, reached
    without a balancer from 127.0.0.1 (trusted)."""
    def configure(gw):
        gw.config["proxy_protocol"] = {
            "listeners": [f"https://127.0.0.1:{gw.https_port}",
                          f"http://127.0.0.1:{gw.http_port}"],
            "trusted": ["127.0.0.0/8"],
            "header_timeout": 1,
        }
        gw.config["log_level"] = "debug"
    return make_gateway(app.address, configure)


def plain_exchange(gw, header, target="/x", pieces=1):
    """header (in `pieces` sends, a pause between), then a request."""
    s = socket.create_connection(("127.0.0.1", gw.http_port), timeout=IO_TIMEOUT)
    try:
        step = -(-len(header) // pieces)
        for i in range(0, len(header), step):
            s.sendall(header[i:i + step])
            time.sleep(0.02)
        s.sendall(build_request("GET", target, headers=[("Connection", "close")]))
        return read_final_response(s.makefile("rb"))
    finally:
        s.close()


def test_v1_and_v2_by_hand_over_http(direct_gw):
    gw = direct_gw
    r = plain_exchange(gw, b"PROXY TCP4 198.51.100.7 203.0.113.10 51234 8080\r\n")
    v = r.vars
    assert (r.status, v["REMOTE_ADDR"], v["REMOTE_PORT"]) == (200, "198.51.100.7", "51234")
    assert (v["SERVER_ADDR"], v["SERVER_PORT"]) == ("203.0.113.10", "8080")
    r = plain_exchange(gw, b"PROXY TCP6 2001:db8::7 2001:db8::1 4242 443\r\n")
    assert (r.vars["REMOTE_ADDR"], r.vars["SERVER_ADDR"]) == ("2001:db8::7", "2001:db8::1")
    # Sent a few bytes at a time: the header is put together, never over-read.
    hdr = v2_header("192.0.2.44", 40000, "192.0.2.1", 443, tlvs=b"\x01\x00\x02h2")
    r = plain_exchange(gw, hdr, pieces=7)
    assert (r.vars["REMOTE_ADDR"], r.vars["REMOTE_PORT"]) == ("192.0.2.44", "40000")
    # LOCAL, and UNKNOWN: the connection is the balancer's own.
    for hdr in (v2_header("192.0.2.44", 1, "192.0.2.1", 2, command=0x20),
                b"PROXY UNKNOWN\r\n"):
        r = plain_exchange(gw, hdr)
        assert r.status == 200 and r.vars["REMOTE_ADDR"] == "127.0.0.1"
    wait_for(lambda: re.search(r'^198\.51\.100\.7 - - .*"GET /x ', gw.access_log(), re.M), 5,
             what="the client's address in the access log")
    assert problems(gw.error_log()) == [], problems(gw.error_log())


def closed_by_gateway(gw, data, port=None, wait=5):
    """Sends data and returns True when the gateway closes without a byte."""
    s = socket.create_connection(("127.0.0.1", port or gw.http_port), timeout=wait)
    try:
        if data:
            s.sendall(data)
        try:
            return s.recv(100) == b""
        except ConnectionResetError:
            return True
    finally:
        s.close()


@pytest.mark.parametrize("data,why", [
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not a PROXY protocol header"),
    (b"PROXY TCP4 198.51.100.7 203.0.113.10 51234\r\n", "malformed version 1 line"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", "bad version 1 address or port"),
    (b"PROXY UNKNOWN " + b"x" * 100 + b"\r\n", "version 1 line too long"),
    (b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff", "header too long"),
    (b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x13" + bytes(12) + b"\x03\x00\x04\x00\x00\x00\x01",
     "CRC32C mismatch"),
])
def test_bad_headers_are_refused(direct_gw, data, why):
    gw = direct_gw
    started = time.monotonic()
    assert closed_by_gateway(gw, data)
    assert time.monotonic() - started < 1.0     # at once, not at the timeout
    wait_for(lambda: re.search(r"\[info\] #\d+ PROXY header from 127\.0\.0\.1:\d+ refused: "
                               + re.escape(why), gw.error_log()), 5, what=why)


def test_header_timeout(direct_gw):
    gw = direct_gw
    for data in (b"", b"PROXY TCP4 198.51"):
        started = time.monotonic()
        assert closed_by_gateway(gw, data, port=gw.https_port, wait=5)
        took = time.monotonic() - started
        assert 0.8 < took < 3.0, took
    wait_for(lambda: gw.error_log().count("no complete PROXY header from 127.0.0.1") == 2, 5,
             what="the timeouts in the log")
