"""Integration test fixtures: the real certgate binary on ephemeral loopback
ports, a certtool PKI made once per session, the example FastCGI
application (examples/printenv) started by the tests themselves, and small
HTTP/1.1 helpers over Python's ssl so every byte on the wire is ours.

Environment: CERTGATE (default: certgate at the top of the tree),
PRINTENV (default examples/printenv, built here when missing).
"""

import http.client
import io
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
CERTGATE = os.environ.get("CERTGATE", str(TOP / "certgate"))
PRINTENV = os.environ.get("PRINTENV", str(TOP / "examples" / "printenv"))
MKPKI = TOP / "tests" / "pki" / "mkpki.sh"

# Every test is bounded; a hung test fails instead of hanging the suite.
TEST_TIMEOUT = 120
READY_TIMEOUT = 10.0
IO_TIMEOUT = 10.0

PATTERN = b"0123456789abcdef"


def pattern(n):
    """The body printenv sends for ?size=N."""
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


# ---------------------------------------------------------------- basics

_ports_given = set()


def free_port():
    """A loopback TCP port that was free a moment ago, and never given
    before in this run: the kernel may hand the port it just freed out
    again, and two listeners of one gateway must not share it."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def wait_for(predicate, timeout, interval=0.05, what="condition"):
    """Poll predicate() until it returns a true value; fail after timeout."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the thing polled may not be up yet
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                         + (f" (last error: {last_exc!r})" if last_exc else ""))


def parse_vars(body):
    """printenv's default output (NAME=value lines) as a dict."""
    out = {}
    for line in body.decode("utf-8", "replace").split("\n"):
        if line == "":
            continue
        name, sep, value = line.partition("=")
        assert sep == "=", f"not a NAME=value line: {line!r}"
        # A parameter sent twice is ambiguous (libfcgi returns the first).
        assert name not in out, f"parameter {name} sent twice"
        out[name] = value
    return out


@pytest.fixture(autouse=True)
def _bounded_test():
    """Fail any test that runs longer than TEST_TIMEOUT seconds."""
    def on_alarm(signum, frame):
        raise AssertionError(f"test exceeded {TEST_TIMEOUT}s")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------- PKI

class PKI:
    def __init__(self, root):
        self.dir = Path(root)
        self.ca_chain = str(self.dir / "ca-chain.pem")
        self.server_cert = str(self.dir / "server-chain.pem")
        self.server_key = str(self.dir / "server.key")
        self.other_cert = str(self.dir / "other-chain.pem")
        self.other_key = str(self.dir / "other.key")

    def path(self, name):
        return str(self.dir / name)

    def client(self, name):
        """(chain file, key file) of a client certificate."""
        return (self.path(f"{name}-chain.pem"), self.path(f"{name}.key"))


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("pki")
    started = time.monotonic()
    subprocess.run(["sh", str(MKPKI), str(root)], check=True, timeout=60)
    assert time.monotonic() - started < 30
    return PKI(root)


# ---------------------------------------------------------------- printenv

@pytest.fixture(scope="session")
def printenv_bin():
    """The example application, built from examples/printenv.c if missing."""
    path = Path(PRINTENV)
    src = TOP / "examples" / "printenv.c"
    if "PRINTENV" not in os.environ and src.exists() and (
            not path.exists() or path.stat().st_mtime < src.stat().st_mtime):
        subprocess.run(["gcc", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra",
                        "-Werror", "-O2", str(src), "-lfcgi", "-o", str(path)],
                       check=True, timeout=120)
    assert path.exists(), f"PRINTENV {path} does not exist"
    return str(path)


class App:
    """printenv processes sharing one listening socket given as fd 0.

    kind "unix": a unix socket in a 0777 directory, mode 0666;
    kind "tcp": 127.0.0.1 on a free port. stop() kills the processes and
    closes the socket, so the gateway's connect is refused; start() makes
    the same address listen again.
    """

    def __init__(self, binary, workdir, kind="unix", processes=2):
        self.binary = binary
        self.kind = kind
        self.processes = processes
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o777)
        self.log_path = self.dir / "app-stderr.log"
        if kind == "unix":
            self.path = str(self.dir / "app.sock")
            self.address = "unix:" + self.path
        elif kind == "tcp":
            self.port = free_port()
            self.address = f"tcp:127.0.0.1:{self.port}"
        else:
            raise ValueError(kind)
        self.procs = []

    def _listen(self):
        if self.kind == "unix":
            if os.path.exists(self.path):
                os.unlink(self.path)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(self.path)
            os.chmod(self.path, 0o666)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", self.port))
        s.listen(128)
        return s

    def start(self):
        assert not self.running(), "app already running"
        sock = self._listen()
        try:
            with open(self.log_path, "ab") as log:
                for _ in range(self.processes):
                    self.procs.append(subprocess.Popen(
                        [self.binary], stdin=sock.fileno(),
                        stdout=subprocess.DEVNULL, stderr=log,
                        env={"PATH": "/usr/bin:/bin", "LANG": "C"}))
        finally:
            # Only the children hold the socket: when they die, connect fails.
            sock.close()
        return self

    def running(self):
        return any(p.poll() is None for p in self.procs)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        self.procs = []
        if self.kind == "unix" and os.path.exists(self.path):
            os.unlink(self.path)

    def restart(self):
        self.stop()
        return self.start()


@pytest.fixture
def app(printenv_bin, tmp_path):
    a = App(printenv_bin, tmp_path / "app")
    try:
        yield a.start()
    finally:
        a.stop()


@pytest.fixture(scope="module")
def shared_app(printenv_bin, tmp_path_factory):
    a = App(printenv_bin, tmp_path_factory.mktemp("app"))
    try:
        yield a.start()
    finally:
        a.stop()


# ---------------------------------------------------------------- libconfig

class Raw(str):
    """Text copied into a rendered configuration as it is."""


def _cfg_string(s):
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _is_scalar(v):
    return isinstance(v, (str, bool, int, float))


def _render_value(v, indent):
    pad = "  " * indent
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return _cfg_string(v)
    if isinstance(v, dict):
        simple = all(_is_scalar(x) or (isinstance(x, list) and all(map(_is_scalar, x)))
                     for x in v.values())
        if simple and len(v) <= 6:
            inner = " ".join(f"{k} = {_render_value(x, 0)};" for k, x in v.items())
            return "{ " + inner + " }" if inner else "{ }"
        lines = ["{"]
        for k, x in v.items():
            lines.append(f"{pad}  {k} = {_render_value(x, indent + 1)};")
        lines.append(pad + "}")
        return "\n".join(lines)
    if isinstance(v, (list, tuple)):
        if all(_is_scalar(x) for x in v):
            return "[ " + ", ".join(_render_value(x, 0) for x in v) + " ]"
        items = [pad + "  " + _render_value(x, indent + 1) for x in v]
        return "(\n" + ",\n".join(items) + "\n" + pad + ")"
    raise TypeError(f"cannot render {v!r}")


def render_config(cfg):
    """A dict as libconfig text: dicts are groups, lists of scalars arrays,
    lists of groups lists. Small groups (locations) go on one line, so a
    test can find the line of a setting by searching the text."""
    lines = []
    for k, v in cfg.items():
        lines.append(f"{k} = {_render_value(v, 0)};")
    return "\n".join(lines) + "\n"


def line_of(text, needle):
    """1-based number of the first line of text containing needle."""
    for i, line in enumerate(text.split("\n"), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in configuration")


# ---------------------------------------------------------------- gateway

class Gateway:
    """certgate started in the foreground with a configuration it writes.

    self.config is a dict (see default_config) that a test may change
    before start() or before reload(). Logs go to files in the work dir.
    """

    def __init__(self, workdir, pki, backend_address):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pki = pki
        self.https_port = free_port()
        self.http_port = free_port()
        self.conf_path = str(self.dir / "certgate.conf")
        self.error_log_path = str(self.dir / "error.log")
        self.access_log_path = str(self.dir / "access.log")
        self.stdout_path = str(self.dir / "stdout.log")
        self.stderr_path = str(self.dir / "stderr.log")
        self.proc = None
        self.config = self.default_config(backend_address)

    def default_config(self, backend_address):
        return {
            "daemon": False,
            "workers": 2,
            "user": "root",
            "group": "root",
            "error_log": self.error_log_path,
            "access_log": self.access_log_path,
            "access_log_format": "combined+",
            "log_level": "info",
            "shutdown_timeout": 5,
            "limits": {
                "handshake_timeout": 10,
                "header_timeout": 10,
                "body_timeout": 30,
                "keepalive_timeout": 60,
                "send_timeout": 60,
                "max_header_size": 8192,
                "max_uri_size": 2048,
                "max_headers": 50,
                "max_body_size": 8 * 1024 * 1024,
                "max_connections": 1000,
            },
            "tls": {
                "priorities": "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
                "session_tickets": True,
            },
            # Plain HTTP reaches the application in most tests; the
            # default policy (TLS required) is tested in test_policies.py.
            "policies": {
                "open": {"tls": "optional"},
            },
            "backends": {
                "app": {
                    "connect": [backend_address],
                    "connect_timeout": 2,
                    "timeout": 30,
                    "keep_connections": True,
                    # printenv runs 2 processes, each serving one kept
                    # connection at a time: 2 workers x 1 connection.
                    "max_connections": 1,
                    "queue": 256,
                },
            },
            "sites": [
                {
                    "name": "main",
                    "listen": [f"https://127.0.0.1:{self.https_port}",
                               f"http://127.0.0.1:{self.http_port}"],
                    "hosts": ["localhost", "intranet.test"],
                    "default": True,
                    "certificate": self.pki.server_cert,
                    "key": self.pki.server_key,
                    "policy": "open",
                    "locations": [
                        {"path": "/", "backend": "app"},
                        {"path": "/app/", "backend": "app"},
                    ],
                },
            ],
        }

    @property
    def site(self):
        return self.config["sites"][0]

    def config_text(self):
        return render_config(self.config)

    def write_config(self, text=None):
        """Write the configuration atomically (a reload never sees half)."""
        if text is None:
            text = self.config_text()
        tmp = self.conf_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.conf_path)
        return self.conf_path

    # -- process

    def start(self, wait=True, text=None):
        """Start with self.config, or with the configuration text given."""
        self.write_config(text)
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [CERTGATE, "-f", "-c", self.conf_path],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=True)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"certgate exited with {self.proc.returncode} at start\n"
                    + self.diagnostics())
            try:
                with socket.create_connection(("127.0.0.1", self.https_port),
                                              timeout=1):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("certgate did not listen within "
                                     f"{READY_TIMEOUT}s\n" + self.diagnostics())
            time.sleep(0.05)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def stop(self, timeout=15):
        """SIGTERM, wait, and assert a clean exit."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"certgate did not stop within {timeout}s")
        assert rc == 0, f"certgate exited with {rc}\n" + self.diagnostics()
        return rc

    def close(self):
        """Teardown: a graceful stop when still running (so sanitizers get
        to report at exit), then SIGKILL whatever is left of the group."""
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def kill(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    # -- logs

    @staticmethod
    def _read(path):
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def error_log(self):
        return self._read(self.error_log_path)

    def access_log(self):
        return self._read(self.access_log_path)

    def diagnostics(self):
        return ("--- stderr:\n" + self._read(self.stderr_path)[-4000:]
                + "\n--- error log:\n" + self.error_log()[-4000:])

    # -- addresses

    def url(self, path="/", scheme="https", host="localhost"):
        port = self.https_port if scheme == "https" else self.http_port
        return f"{scheme}://{host}:{port}{path}"


@pytest.fixture
def make_gateway(pki, tmp_path):
    """make_gateway(backend_address, configure=None, start=True) -> Gateway.

    configure(gw) may change gw.config before the start. Every gateway is
    killed (its whole process group) at teardown."""
    made = []

    def make(backend_address, configure=None, start=True):
        gw = Gateway(tmp_path / f"gw{len(made)}", pki, backend_address)
        made.append(gw)
        if configure is not None:
            configure(gw)
        if start:
            gw.start()
        return gw

    yield make
    for gw in made:
        gw.close()


@pytest.fixture
def gw(make_gateway, app):
    """A started gateway in front of a fresh app (function scope)."""
    return make_gateway(app.address)


@pytest.fixture(scope="module")
def shared_gw(pki, shared_app, tmp_path_factory):
    """One gateway per test module for tests that do not change it."""
    g = Gateway(tmp_path_factory.mktemp("gw"), pki, shared_app.address)
    try:
        g.start()
        yield g
    finally:
        g.close()


# ---------------------------------------------------------------- clients

def client_context(pki, cert=None, check_hostname=True, strict_eof=True):
    """An ssl context trusting the test CA; cert is a client name (alice)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.ca_chain)
    ctx.check_hostname = check_hostname
    if cert is not None:
        chain, key = pki.client(cert)
        ctx.load_cert_chain(chain, key)
    if not strict_eof:
        ctx.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    return ctx


def tcp_connect(port, timeout=IO_TIMEOUT):
    """A TCP connection to 127.0.0.1:port with TCP_NODELAY, as curl and
    browsers open theirs: without it, the request that follows a TLS
    handshake's last flight waits for the server's delayed ACK (40 ms)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def tls_connect(gw, sni="localhost", ctx=None, cert=None, timeout=IO_TIMEOUT):
    """A TLS socket to the gateway's https port (127.0.0.1), SNI as given
    (None: no SNI, and no hostname check)."""
    if ctx is None:
        ctx = client_context(gw.pki, cert=cert, check_hostname=sni is not None)
    sock = tcp_connect(gw.https_port, timeout)
    try:
        return ctx.wrap_socket(sock, server_hostname=sni)
    except Exception:
        sock.close()
        raise


def plain_connect(gw, timeout=IO_TIMEOUT):
    return tcp_connect(gw.http_port, timeout)


class Response:
    def __init__(self, version, status, reason, headers, body, chunked):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers        # [(name, value)] in wire order
        self.body = body
        self.chunked = chunked

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def vars(self):
        return parse_vars(self.body)

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return (f"<Response {self.version} {self.status} {self.reason!r} "
                f"headers={self.headers!r} body={self.body[:300]!r}>")


def _readline(rfile, limit=65536):
    line = rfile.readline(limit + 1)
    if len(line) > limit:
        raise AssertionError("response line too long")
    return line


def read_response(rfile, method="GET"):
    """One HTTP/1.x response from a buffered binary reader. 1xx responses
    are returned as they are (the caller reads on). A body without length
    is read to the end of the connection."""
    line = _readline(rfile)
    if not line:
        raise EOFError("connection closed before a response")
    m = re.match(rb"^(HTTP/\d\.\d) (\d{3})(?: (.*))?\r\n$", line)
    assert m, f"bad status line {line!r}"
    version, status, reason = m.group(1).decode(), int(m.group(2)), \
        (m.group(3) or b"").decode("latin-1")
    headers = []
    while True:
        h = _readline(rfile)
        if h in (b"\r\n", b""):
            break
        assert h.endswith(b"\r\n"), f"bad header line {h!r}"
        name, sep, value = h[:-2].decode("latin-1").partition(":")
        assert sep and name == name.strip(), f"bad header line {h!r}"
        headers.append((name, value.strip(" \t")))
    resp = Response(version, status, reason, headers, b"", False)
    if 100 <= status < 200 or method == "HEAD" or status in (204, 304):
        return resp
    te = resp.header("Transfer-Encoding")
    cl = resp.header("Content-Length")
    if te is not None:
        assert te.lower() == "chunked", f"unexpected Transfer-Encoding {te!r}"
        resp.chunked = True
        chunks = []
        while True:
            size_line = _readline(rfile, 1024)
            assert size_line.endswith(b"\r\n"), f"bad chunk size {size_line!r}"
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                break
            data = rfile.read(size)
            assert len(data) == size, "connection closed inside a chunk"
            chunks.append(data)
            assert rfile.read(2) == b"\r\n", "chunk not followed by CRLF"
        while True:  # trailers
            t = _readline(rfile)
            if t in (b"\r\n", b""):
                break
        resp.body = b"".join(chunks)
    elif cl is not None:
        n = int(cl)
        data = rfile.read(n)
        assert len(data) == n, f"body truncated: {len(data)} of {n} bytes"
        resp.body = data
    else:
        resp.body = rfile.read()
    return resp


def read_final_response(rfile, method="GET"):
    """Skip 1xx responses, return the final one."""
    while True:
        r = read_response(rfile, method)
        if r.status >= 200:
            return r


def build_request(method, target, host="localhost", headers=(), body=None,
                  version="HTTP/1.1"):
    lines = [f"{method} {target} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    names = {k.lower() for k, _ in headers}
    for k, v in headers:
        lines.append(f"{k}: {v}")
    if body is not None and "content-length" not in names and \
            "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (body or b"")


def request(gw, method, target, headers=(), body=None, sni="localhost",
            host=None, cert=None, scheme="https", version="HTTP/1.1"):
    """One request on a new connection; returns the Response."""
    if host is None:
        port = gw.https_port if scheme == "https" else gw.http_port
        host = f"localhost:{port}"
    if scheme == "https":
        sock = tls_connect(gw, sni=sni, cert=cert)
    else:
        sock = plain_connect(gw)
    with sock:
        sock.sendall(build_request(method, target, host, headers, body, version))
        with sock.makefile("rb") as rfile:
            return read_final_response(rfile, method)


def get(gw, target, **kw):
    return request(gw, "GET", target, **kw)


def assert_works(gw, scheme="https"):
    """A fresh connection still gets a 200 from the application."""
    r = get(gw, "/app/still-works", scheme=scheme)
    assert r.status == 200, r
    assert r.vars["PATH_INFO"] == "/still-works"


def run_gnutls_cli(args, data, timeout=IO_TIMEOUT):
    """gnutls-cli with data on stdin, stdin kept open until the server
    closes (gnutls-cli stops reading at stdin's end). Returns
    (returncode, stdout bytes, log text: its --logfile, then stderr)."""
    with tempfile.NamedTemporaryFile(prefix="gnutls-cli-", suffix=".log",
                                     delete=False) as lf:
        logpath = lf.name
    try:
        with tempfile.TemporaryFile() as err:
            p = subprocess.Popen(["gnutls-cli", f"--logfile={logpath}"] + args,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=err)
            timer = threading.Timer(timeout, p.kill)
            timer.start()
            try:
                try:
                    p.stdin.write(data)
                    p.stdin.flush()
                except BrokenPipeError:
                    pass
                out = p.stdout.read()
                try:
                    p.stdin.close()
                except BrokenPipeError:
                    pass
                rc = p.wait()
            finally:
                timer.cancel()
            err.seek(0)
            errtext = err.read().decode("utf-8", "replace")
        with open(logpath, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        return rc, out, log + errtext
    finally:
        os.unlink(logpath)


def run_curl(args, timeout=60):
    """curl -sS with args; returns CompletedProcess (bytes)."""
    return subprocess.run(["curl", "-sS"] + args, capture_output=True,
                          timeout=timeout)


def curl_tls_args(gw):
    return ["--http1.1", "--cacert", gw.pki.ca_chain,
            "--resolve", f"localhost:{gw.https_port}:127.0.0.1"]


def parse_curl_headers(raw):
    """The last response's status and headers from curl -D output."""
    blocks = [b for b in raw.decode("latin-1").split("\r\n\r\n") if b.strip()]
    last = blocks[-1].split("\r\n")
    status = int(last[0].split()[1])
    headers = []
    for line in last[1:]:
        k, _, v = line.partition(":")
        headers.append((k, v.strip()))
    return status, headers


def response_from_bytes(data, method="GET"):
    return read_final_response(io.BufferedReader(io.BytesIO(data)), method)


class HTTPSConn(http.client.HTTPSConnection):
    """http.client over TLS to 127.0.0.1, with SNI and Host = host."""

    def __init__(self, gw, host="localhost", cert=None, timeout=IO_TIMEOUT):
        super().__init__(host, gw.https_port, timeout=timeout,
                         context=client_context(gw.pki, cert=cert))

    def connect(self):
        sock = tcp_connect(self.port, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
