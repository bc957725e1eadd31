"""Requests through TLS reach the application with the CGI/1.1 variables
(Python http.client, curl, gnutls-cli); plain HTTP; keep-alive,
pipelining, HEAD and Expect: 100-continue."""

import socket
import time

from conftest import (HTTPSConn, build_request, curl_tls_args, get,
                      parse_curl_headers, parse_vars, plain_connect,
                      read_final_response, read_response, request,
                      response_from_bytes, run_curl, run_gnutls_cli,
                      tls_connect)


def common_vars(v, gw, method, uri, script, path_info, query):
    assert v["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert v["REQUEST_METHOD"] == method
    assert v["REQUEST_URI"] == uri
    assert v["SCRIPT_NAME"] == script
    assert v["PATH_INFO"] == path_info
    assert v["QUERY_STRING"] == query
    assert v["SERVER_PORT"] == str(gw.https_port)
    assert v["SERVER_ADDR"] == "127.0.0.1"
    assert v["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert v["REMOTE_ADDR"] == "127.0.0.1"
    assert v["HTTPS"] == "on"
    assert v["REQUEST_SCHEME"] == "https"
    assert v["HTTP_HOST"] == f"localhost:{gw.https_port}"


def test_get_python_http_client(shared_gw):
    gw = shared_gw
    conn = HTTPSConn(gw)
    try:
        conn.request("GET", "/app/x?a=1&b=two", headers={"X-Test-Header": "hello"})
        resp = conn.getresponse()
        body = resp.read()
        local_port = conn.sock.getsockname()[1]
    finally:
        conn.close()
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "text/plain"
    v = parse_vars(body)
    common_vars(v, gw, "GET", "/app/x?a=1&b=two", "/app", "/x", "a=1&b=two")
    assert v["REMOTE_PORT"] == str(local_port)
    assert v["HTTP_X_TEST_HEADER"] == "hello"
    assert "SERVER_SOFTWARE" in v
    assert v["SERVER_NAME"] == "localhost"


def test_script_name_and_path_info_per_location(shared_gw):
    gw = shared_gw
    cases = [
        # target, SCRIPT_NAME, PATH_INFO
        ("/", "", "/"),
        ("/other/thing", "", "/other/thing"),
        ("/app/", "/app", "/"),
        ("/app/x", "/app", "/x"),
        ("/app/x/y/z", "/app", "/x/y/z"),
        ("/app", "/app", ""),
        ("/application", "", "/application"),
    ]
    for target, script, info in cases:
        r = get(gw, target)
        assert r.status == 200, (target, r)
        v = r.vars
        assert v["SCRIPT_NAME"] == script, target
        assert v["PATH_INFO"] == info, target
        assert v["REQUEST_URI"] == target
        assert v["QUERY_STRING"] == ""


def test_post_python_http_client(shared_gw):
    gw = shared_gw
    conn = HTTPSConn(gw)
    try:
        conn.request("POST", "/app/form?q=1", body=b"a=b&c=d",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == 200
    v = parse_vars(body)
    common_vars(v, gw, "POST", "/app/form?q=1", "/app", "/form", "q=1")
    assert v["CONTENT_LENGTH"] == "7"
    assert v["CONTENT_TYPE"] == "application/x-www-form-urlencoded"


def test_client_headers_cannot_set_variables(shared_gw):
    r = get(shared_gw, "/app/h", headers=[("X_Evil", "1"), ("Proxy", "http://evil"),
                                          ("Https", "off"), ("X-Ok", "yes")])
    assert r.status == 200
    v = r.vars
    assert "HTTP_X_EVIL" not in v
    assert "HTTP_PROXY" not in v
    assert v["HTTPS"] == "on"
    assert v["HTTP_X_OK"] == "yes"


def test_get_curl(shared_gw):
    gw = shared_gw
    p = run_curl(curl_tls_args(gw) + ["-D", "-", gw.url("/app/curl?x=y")])
    assert p.returncode == 0, p.stderr
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    status, headers = parse_curl_headers(head + b"\r\n\r\n")
    assert status == 200
    v = parse_vars(body)
    common_vars(v, gw, "GET", "/app/curl?x=y", "/app", "/curl", "x=y")
    assert v["HTTP_USER_AGENT"].startswith("curl/")


def test_post_curl(shared_gw):
    gw = shared_gw
    p = run_curl(curl_tls_args(gw) + ["--data", "a=b", gw.url("/app/p")])
    assert p.returncode == 0, p.stderr
    v = parse_vars(p.stdout)
    common_vars(v, gw, "POST", "/app/p", "/app", "/p", "")
    assert v["CONTENT_LENGTH"] == "3"
    assert v["CONTENT_TYPE"] == "application/x-www-form-urlencoded"


def test_get_gnutls_cli(shared_gw):
    gw = shared_gw
    req = build_request("GET", "/app/gnutls?z=1", host=f"localhost:{gw.https_port}",
                        headers=[("Connection", "close")])
    rc, out, log = run_gnutls_cli([f"--x509cafile={gw.pki.ca_chain}",
                                   "-p", str(gw.https_port), "localhost"], req)
    assert "The certificate is trusted" in log, log
    assert "Handshake was completed" in log, log
    r = response_from_bytes(out)
    assert r.status == 200, r
    common_vars(r.vars, gw, "GET", "/app/gnutls?z=1", "/app", "/gnutls", "z=1")
    assert rc == 0, log


def test_plain_http_listener(shared_gw):
    gw = shared_gw
    r = request(gw, "GET", "/app/plain?p=1", scheme="http")
    assert r.status == 200, r
    v = r.vars
    assert "HTTPS" not in v
    assert v["REQUEST_SCHEME"] == "http"
    assert v["SERVER_PORT"] == str(gw.http_port)
    assert v["SCRIPT_NAME"] == "/app"
    assert v["PATH_INFO"] == "/plain"
    assert v["QUERY_STRING"] == "p=1"
    assert v["REMOTE_ADDR"] == "127.0.0.1"
    assert v["HTTP_HOST"] == f"localhost:{gw.http_port}"
    p = run_curl(["--http1.1", f"http://127.0.0.1:{gw.http_port}/app/c"])
    assert p.returncode == 0, p.stderr
    assert parse_vars(p.stdout)["PATH_INFO"] == "/c"


def test_keep_alive(shared_gw):
    gw = shared_gw
    conn = HTTPSConn(gw)
    try:
        ports = set()
        for i in range(5):
            conn.request("GET", f"/app/k{i}")
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200
            assert not resp.will_close
            v = parse_vars(body)
            assert v["PATH_INFO"] == f"/k{i}"
            ports.add(v["REMOTE_PORT"])
            local = conn.sock.getsockname()[1]
        assert ports == {str(local)}, "requests did not share one connection"
    finally:
        conn.close()


def test_pipelining(shared_gw):
    gw = shared_gw
    reqs = []
    for i in range(10):
        if i == 4:
            reqs.append(build_request("POST", "/app/p4?echo", body=b"hello-pipeline"))
        else:
            reqs.append(build_request("GET", f"/app/p{i}"))
    with tls_connect(gw) as s:
        s.sendall(b"".join(reqs))
        with s.makefile("rb") as rf:
            for i in range(10):
                r = read_final_response(rf)
                assert r.status == 200, (i, r)
                if i == 4:
                    assert r.body == b"hello-pipeline"
                else:
                    assert r.vars["PATH_INFO"] == f"/p{i}", i


def test_head(shared_gw):
    gw = shared_gw
    with tls_connect(gw) as s, s.makefile("rb") as rf:
        s.sendall(build_request("HEAD", "/app/head"))
        r = read_response(rf, "HEAD")
        assert r.status == 200
        assert r.header("Content-Type") == "text/plain"
        # Without a length from the app; still no body may follow.
        s.sendall(build_request("HEAD", "/app/head?size=5000"))
        r = read_response(rf, "HEAD")
        assert r.status == 200
        s.sendall(build_request("HEAD", "/app/head?size=5000&length"))
        r = read_response(rf, "HEAD")
        assert r.status == 200
        assert r.header("Content-Length") == "5000"
        # Any stray body bytes would corrupt this response.
        s.sendall(build_request("GET", "/app/after-head"))
        r = read_response(rf)
        assert r.status == 200
        assert r.vars["PATH_INFO"] == "/after-head"
        assert r.vars["REQUEST_METHOD"] == "GET"


def test_expect_100_continue(shared_gw):
    gw = shared_gw
    body = b"hello world"
    head = build_request("POST", "/app/?echo",
                         headers=[("Expect", "100-continue"),
                                  ("Content-Length", str(len(body))),
                                  ("Content-Type", "text/plain")])
    with tls_connect(gw) as s, s.makefile("rb") as rf:
        s.sendall(head)
        r = read_response(rf)
        assert r.status == 100, r
        assert r.version == "HTTP/1.1"
        s.sendall(body)
        r = read_response(rf)
        assert r.status == 200, r
        assert r.body == body
        assert r.header("Content-Length") == str(len(body))


def test_plain_http_keep_alive(shared_gw):
    gw = shared_gw
    with plain_connect(gw) as s, s.makefile("rb") as rf:
        for i in range(3):
            s.sendall(build_request("GET", f"/app/pk{i}", host=f"localhost:{gw.http_port}"))
            r = read_response(rf)
            assert r.status == 200
            assert r.vars["PATH_INFO"] == f"/pk{i}"


def test_server_addr_of_a_wildcard_listener(make_gateway, app):
    """A listener on 0.0.0.0 reports the address the client reached
    (SERVER_ADDR from the socket), one on a single address reports that
    address."""
    def configure(gw):
        gw.site["listen"] = [f"https://127.0.0.1:{gw.https_port}",
                             f"http://0.0.0.0:{gw.http_port}"]
    gw = make_gateway(app.address, configure)
    for host in ("127.0.0.1", "127.0.0.2"):
        s = socket.create_connection((host, gw.http_port), timeout=5)
        with s, s.makefile("rb") as rf:
            s.sendall(build_request("GET", "/app/w", "localhost"))
            r = read_final_response(rf)
        assert r.status == 200, r
        assert r.vars["SERVER_ADDR"] == host, r.vars
        assert r.vars["SERVER_PORT"] == str(gw.http_port)
    s = tls_connect(gw)
    with s, s.makefile("rb") as rf:
        s.sendall(build_request("GET", "/app/s", f"localhost:{gw.https_port}"))
        r = read_final_response(rf)
    assert r.vars["SERVER_ADDR"] == "127.0.0.1"


def test_idle_keepalive_connection_closes_after_keepalive_timeout(make_gateway, app):
    """An idle keep-alive connection is closed keepalive_timeout after its
    last response, also across the step (at 0.25 s) where it lets go of its
    buffers."""
    def configure(gw):
        gw.config["limits"]["keepalive_timeout"] = 1
    gw = make_gateway(app.address, configure)
    s = tls_connect(gw)
    with s, s.makefile("rb") as rf:
        for i in range(2):
            s.sendall(build_request("GET", f"/app/k{i}", f"localhost:{gw.https_port}"))
            assert read_final_response(rf).status == 200
        start = time.monotonic()
        s.settimeout(5)
        assert rf.read() == b""  # the server's close_notify, then its FIN
        waited = time.monotonic() - start
    assert 0.8 <= waited <= 2.5, waited


def test_keepalive_restarts_after_each_response(make_gateway, app):
    """keepalive_timeout counts from the last response, also when certgate
    answers itself (403.4 here, no application involved): requests every
    0.4 s keep a connection with keepalive_timeout = 1 open for 2.4 s."""
    def configure(gw):
        gw.config["limits"]["keepalive_timeout"] = 1
        gw.config["policies"]["strict"] = {}  # TLS required: 403.4 over plain HTTP
        gw.site["locations"].append({"path": "/strict/", "backend": "app",
                                     "policy": "strict"})
    gw = make_gateway(app.address, configure)
    s = plain_connect(gw)
    with s, s.makefile("rb") as rf:
        for i in range(6):
            s.sendall(build_request("GET", f"/strict/{i}", "localhost"))
            r = read_final_response(rf)
            assert r.status == 403, r
            time.sleep(0.4)
        start = time.monotonic()
        s.settimeout(5)
        assert rf.read() == b""
        waited = time.monotonic() - start
    assert waited <= 2.5, waited
