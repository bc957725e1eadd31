"""Real FastCGI applications from Debian behind certgate (issue 6; SPEC
sections 3, 6 and 7), each reached with alice's client certificate
through a location whose policy requires a certificate and maps it one to
one, and each printing what it received:

- php-cgi (php8.2-cgi) spawned by certgate, the script found through the
  location's document_root (DOCUMENT_ROOT, SCRIPT_FILENAME): $_SERVER, a
  url-encoded POST form, a 5 MiB multipart upload;
- php-fpm (php8.2-fpm) started here on a unix socket: $_SERVER and a POST
  form;
- fcgiwrap spawned by certgate running a /bin/sh CGI script named by the
  location's script_filename;
- a Perl FCGI (libfcgi-perl) application spawned by certgate.

The applications live in tests/apps/.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import TOP, request, wait_for

APPS = TOP / "tests" / "apps"
PHP_CGI = "/usr/bin/php-cgi"
PHP_FPM = "/usr/sbin/php-fpm8.2"
FCGIWRAP = "/usr/sbin/fcgiwrap"
PERL = "/usr/bin/perl"

ALICE_DN = "CN=Alice,OU=Engineering,O=Corp,C=US"
EXPECTED = {
    "SSL_CLIENT_S_DN": "CN=Alice,OU=Engineering,O=Corp,C=US",
    "REMOTE_USER": "alice",
    "CERT_SUBJECT": "C=US, O=Corp, OU=Engineering, CN=Alice",
}

# php.ini of the cgi and fpm SAPIs in Debian: upload_max_filesize = 2M and
# post_max_size = 8M; the upload test sends 5 MiB.
PHP_INI = {
    "upload_max_filesize": "16M",
    "post_max_size": "16M",
    "max_file_uploads": "4",
    "display_errors": "stderr",
    "log_errors": "0",
}
UPLOAD_SIZE = 5 * 1024 * 1024


def need(path):
    assert os.access(path, os.X_OK), f"{path} is not installed (see configure's package list)"
    return path


def php_d_args():
    out = []
    for k, v in PHP_INI.items():
        out += ["-d", f"{k}={v}"]
    return out


def corp_trust(pki_dir):
    d = str(pki_dir)
    return {
        "ca": [os.path.join(d, "root.pem"), os.path.join(d, "issuing.pem")],
        "crl": [os.path.join(d, "issuing.crl"), os.path.join(d, "root.crl")],
        "crl_check": "chain",
    }


def cert_site(backend, location):
    """configure(gw): the backend `app` replaced by backend, and one
    location "/" with policy cert (require + one_to_one with alice)."""
    def configure(gw):
        gw.config["trust"] = {"corp": corp_trust(gw.pki.dir)}
        gw.config["accounts"] = {"one_to_one": [{"user": "alice", "subject": ALICE_DN}]}
        gw.config["policies"].update({
            "cert": {"client_certificate": "require", "mapping": ["one_to_one"]},
        })
        gw.config["backends"] = {"app": backend}
        gw.site["client_trust"] = "corp"
        loc = {"path": "/", "backend": "app", "policy": "cert"}
        loc.update(location)
        gw.site["locations"] = [loc]
    return configure


def spawned_backend(command, environment=None, processes=2):
    spawn = {"command": command, "processes": processes}
    if environment:
        spawn["environment"] = environment
    return {"spawn": spawn, "timeout": 20, "connect_timeout": 5}


def diag(gw, extra=""):
    return gw.diagnostics() + extra


def ok_json(gw, r, extra=""):
    assert r.status == 200, f"{r!r}\n" + diag(gw, extra)
    ctype = r.header("Content-Type") or ""
    assert ctype.startswith("application/json"), f"{r!r}\n" + diag(gw, extra)
    try:
        return json.loads(r.body)
    except ValueError:
        raise AssertionError(f"not JSON: {r.body[:2000]!r}\n" + diag(gw, extra))


def assert_cert_vars(got):
    """The three variables, each present and exactly as SPEC section 6 says."""
    assert {k: got.get(k) for k in EXPECTED} == EXPECTED


def refused_without_cert(gw):
    """The policy holds: no certificate, no application."""
    r = request(gw, "GET", "/php/env.php")
    assert r.status == 403, r


# ---------------------------------------------------------------- PHP

def php_get(gw, extra=""):
    r = request(gw, "GET", "/php/env.php?q=1&w=two", cert="alice")
    return ok_json(gw, r, extra)


def check_php_server(gw, out, sapi, extra=""):
    assert out["sapi"] == sapi
    server = out["server"]
    assert_cert_vars(server)
    # What PHP needs to find the script: SCRIPT_FILENAME = document_root +
    # the normalized path, DOCUMENT_ROOT = document_root.
    assert server.get("DOCUMENT_ROOT") == str(APPS), server
    assert server.get("SCRIPT_FILENAME") == str(APPS / "php" / "env.php"), server
    assert server.get("HTTPS") == "on"
    assert server.get("AUTH_TYPE") == "Certificate"
    assert server.get("REQUEST_METHOD") == "GET"
    assert server.get("QUERY_STRING") == "q=1&w=two"
    assert server.get("REQUEST_URI") == "/php/env.php?q=1&w=two"
    assert out["get"] == {"q": "1", "w": "two"}
    assert out["post"] == []


FORM = [
    ("name", "Alice Liddell"),
    ("city", "Oxford & Wonderland"),
    ("note", "line one\r\nline two = 100% \u00e9t\u00e9"),
    ("empty", ""),
]


def php_post_form(gw, extra=""):
    body = urllib.parse.urlencode(FORM).encode("ascii")
    r = request(gw, "POST", "/php/env.php", cert="alice", body=body,
                headers=[("Content-Type", "application/x-www-form-urlencoded")])
    out = ok_json(gw, r, extra)
    server = out["server"]
    assert server.get("REQUEST_METHOD") == "POST"
    assert server.get("CONTENT_TYPE") == "application/x-www-form-urlencoded"
    assert server.get("CONTENT_LENGTH") == str(len(body))
    assert out["post"] == dict(FORM)
    assert_cert_vars(server)
    return out


def multipart(fields, files, boundary):
    parts = []
    for name, value in fields:
        parts.append(
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
            .encode() + value.encode() + b"\r\n")
    for name, filename, ctype, data in files:
        parts.append(
            (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
             f"filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n").encode()
            + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)


def php_upload(gw, extra=""):
    # Random bytes, with CRLFs and a look-alike of the boundary inside, so a
    # byte lost, doubled or reordered anywhere changes the MD5.
    boundary = "certgate-boundary-7f3a9c"
    data = bytearray(os.urandom(UPLOAD_SIZE))
    for off in (0, 65535, 65536, 1 << 20, UPLOAD_SIZE - 64):
        chunk = b"\r\n--" + boundary[:-1].encode() + b"\r\n"
        data[off:off + len(chunk)] = chunk
    data = bytes(data[:UPLOAD_SIZE])
    assert len(data) == UPLOAD_SIZE
    body = multipart([("title", "five mebibytes")],
                     [("upload", "blob.bin", "application/octet-stream", data)], boundary)
    r = request(gw, "POST", "/php/env.php", cert="alice", body=body,
                headers=[("Content-Type", f"multipart/form-data; boundary={boundary}")])
    out = ok_json(gw, r, extra)
    assert out["server"].get("CONTENT_LENGTH") == str(len(body))
    assert out["post"] == {"title": "five mebibytes"}
    assert out["files"] == {"upload": {
        "name": "blob.bin",
        "type": "application/octet-stream",
        "size": UPLOAD_SIZE,
        "error": 0,
        "md5": hashlib.md5(data).hexdigest(),
    }}
    assert_cert_vars(out["server"])


def php_cgi_backend():
    # php-cgi is a FastCGI server when fd 0 is a listening socket.
    # PHP_FCGI_CHILDREN=0: no PHP-side process manager (certgate starts 2);
    # PHP_FCGI_MAX_REQUESTS=0: no exit after 500 requests.
    return spawned_backend(
        [need(PHP_CGI)] + php_d_args(),
        {"PHP_FCGI_CHILDREN": "0", "PHP_FCGI_MAX_REQUESTS": "0"})


@pytest.fixture
def php_cgi_gw(make_gateway):
    return make_gateway("unix:/unused",
                        cert_site(php_cgi_backend(), {"document_root": str(APPS)}))


def test_php_cgi_server_variables(php_cgi_gw):
    gw = php_cgi_gw
    out = php_get(gw)
    check_php_server(gw, out, "cgi-fcgi")
    refused_without_cert(gw)


def test_php_cgi_post_form(php_cgi_gw):
    php_post_form(php_cgi_gw)


def test_php_cgi_upload_5mib(php_cgi_gw):
    php_upload(php_cgi_gw)


def check_php_path_info(gw, extra=""):
    """/php/env.php/extra/info: SCRIPT_FILENAME is document_root + the whole
    path; PHP (cgi.fix_pathinfo=1, its default) finds the script in it and
    splits SCRIPT_NAME and PATH_INFO as Apache would."""
    r = request(gw, "GET", "/php/env.php/extra/info?a=b", cert="alice")
    server = ok_json(gw, r, extra)["server"]
    assert_cert_vars(server)
    assert server.get("ORIG_SCRIPT_FILENAME") == str(APPS) + "/php/env.php/extra/info"
    assert server.get("SCRIPT_FILENAME") == str(APPS / "php" / "env.php")
    assert server.get("SCRIPT_NAME") == "/php/env.php"
    assert server.get("PATH_INFO") == "/extra/info"
    assert server.get("PHP_SELF") == "/php/env.php/extra/info"


def test_php_cgi_path_info(php_cgi_gw):
    check_php_path_info(php_cgi_gw)


def test_php_cgi_requests_in_a_row(php_cgi_gw):
    """Kept connections to php-cgi: many requests, all answered."""
    for i in range(20):
        r = request(php_cgi_gw, "GET", f"/php/env.php?i={i}", cert="alice")
        out = ok_json(php_cgi_gw, r)
        assert out["get"] == {"i": str(i)}
        assert_cert_vars(out["server"])


# ---------------------------------------------------------------- php-fpm

class PhpFpm:
    """php-fpm8.2 in the foreground, as root (-R), one static pool of 2 on
    a unix socket in workdir; its own process group."""

    def __init__(self, workdir):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sock = str(self.dir / "fpm.sock")
        self.conf = str(self.dir / "php-fpm.conf")
        self.log = str(self.dir / "php-fpm.log")
        self.out = str(self.dir / "php-fpm.out")
        self.proc = None

    def config_text(self):
        lines = [
            "[global]",
            f"pid = {self.dir / 'php-fpm.pid'}",
            f"error_log = {self.log}",
            "daemonize = no",
            "log_level = notice",
            "",
            "[certgate]",
            "user = root",
            "group = root",
            f"listen = {self.sock}",
            "listen.mode = 0666",
            "pm = static",
            "pm.max_children = 2",
            "catch_workers_output = yes",
            "clear_env = yes",
        ]
        for k, v in PHP_INI.items():
            lines.append(f"php_admin_value[{k}] = {v}")
        return "\n".join(lines) + "\n"

    def start(self):
        need(PHP_FPM)
        with open(self.conf, "w") as f:
            f.write(self.config_text())
        with open(self.out, "ab") as out:
            self.proc = subprocess.Popen(
                [PHP_FPM, "-F", "-R", "-y", self.conf],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        try:
            wait_for(lambda: self.proc.poll() is not None or os.path.exists(self.sock),
                     10, what="php-fpm's socket")
        except AssertionError:
            raise AssertionError("php-fpm did not listen\n" + self.diagnostics())
        assert self.proc.poll() is None, \
            f"php-fpm exited with {self.proc.returncode}\n" + self.diagnostics()
        return self

    def diagnostics(self):
        text = ""
        for p in (self.out, self.log):
            try:
                with open(p, "rb") as f:
                    text += f"--- {p}:\n" + f.read().decode("utf-8", "replace")[-3000:]
            except FileNotFoundError:
                pass
        return text

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)      # graceful
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the pool's children too
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


@pytest.fixture
def php_fpm(tmp_path):
    fpm = PhpFpm(tmp_path / "fpm")
    try:
        yield fpm.start()
    finally:
        fpm.stop()


@pytest.fixture
def php_fpm_gw(make_gateway, php_fpm):
    backend = {"connect": ["unix:" + php_fpm.sock], "timeout": 20, "connect_timeout": 5,
               "max_connections": 1}
    gw = make_gateway("unix:/unused", cert_site(backend, {"document_root": str(APPS)}))
    return gw, php_fpm


def test_php_fpm_server_variables(php_fpm_gw):
    gw, fpm = php_fpm_gw
    out = php_get(gw, fpm.diagnostics())
    check_php_server(gw, out, "fpm-fcgi", fpm.diagnostics())
    refused_without_cert(gw)


def test_php_fpm_post_form(php_fpm_gw):
    gw, fpm = php_fpm_gw
    php_post_form(gw, fpm.diagnostics())


def test_php_fpm_path_info(php_fpm_gw):
    gw, fpm = php_fpm_gw
    check_php_path_info(gw, fpm.diagnostics())


def test_php_fpm_upload_5mib(php_fpm_gw):
    gw, fpm = php_fpm_gw
    php_upload(gw, fpm.diagnostics())


# ---------------------------------------------------------------- fcgiwrap

def parse_lines(body):
    out = {}
    for line in body.decode("utf-8", "replace").splitlines():
        if line.endswith(" unset"):
            out[line[:-len(" unset")]] = None
            continue
        k, sep, v = line.partition("=")
        assert sep, f"not a NAME=value line: {line!r}"
        assert k not in out, f"{k} printed twice"
        out[k] = v
    return out


def test_fcgiwrap_cgi_shell_script(make_gateway, tmp_path):
    # fcgiwrap runs the file SCRIPT_FILENAME names, which must be
    # executable: a copy with mode 0755 does not depend on how the tree
    # was checked out.
    script = tmp_path / "cgi" / "vars.sh"
    script.parent.mkdir()
    shutil.copyfile(APPS / "cgi" / "vars.sh", script)
    os.chmod(script, 0o755)
    backend = spawned_backend([need(FCGIWRAP)])
    gw = make_gateway("unix:/unused", cert_site(backend, {"script_filename": str(script)}))
    for path in ["/", "/cgi/vars.sh", "/anything/else?x=1"] + [f"/n/{i}" for i in range(10)]:
        r = request(gw, "GET", path, cert="alice")
        assert r.status == 200, f"{r!r}\n" + diag(gw)
        assert r.header("Content-Type") == "text/plain", r
        got = parse_lines(r.body)
        assert got == dict(EXPECTED, GATEWAY_INTERFACE="CGI/1.1", REQUEST_METHOD="GET"), \
            f"{got!r}\n" + diag(gw)
    r = request(gw, "GET", "/")
    assert r.status == 403, r


# ---------------------------------------------------------------- Perl FCGI

def test_perl_fcgi_application(make_gateway):
    backend = spawned_backend([need(PERL), str(APPS / "perl" / "vars.fcgi")])
    gw = make_gateway("unix:/unused", cert_site(backend, {}))
    pids = set()
    for i in range(10):
        r = request(gw, "GET", f"/perl/vars?i={i}", cert="alice")
        out = ok_json(gw, r)
        params = out["params"]
        assert_cert_vars(params)
        assert params.get("QUERY_STRING") == f"i={i}"
        assert params.get("HTTPS") == "on"
        pids.add(out["pid"])
    assert 1 <= len(pids) <= 2, pids
    r = request(gw, "GET", "/perl/vars")
    assert r.status == 403, r
