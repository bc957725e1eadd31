"""Request and response bodies: large uploads, chunked in both
directions, close-delimited answers to HTTP/1.0 clients."""

import os
import ssl

from conftest import (HTTPSConn, build_request, curl_tls_args, pattern,
                      read_final_response, read_response, run_curl,
                      tls_connect)

FIVE_MIB = 5 * 1024 * 1024


def test_large_post_echo_python(shared_gw):
    data = os.urandom(FIVE_MIB)
    conn = HTTPSConn(shared_gw, timeout=60)
    try:
        conn.request("POST", "/app/?echo", body=data,
                     headers={"Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "application/octet-stream"
    assert resp.getheader("Content-Length") == str(FIVE_MIB)
    assert len(body) == FIVE_MIB
    assert body == data


def test_large_post_echo_curl(shared_gw, tmp_path):
    gw = shared_gw
    data = os.urandom(FIVE_MIB)
    src, dst = tmp_path / "in.bin", tmp_path / "out.bin"
    src.write_bytes(data)
    # curl sends "Expect: 100-continue" for a body this large.
    p = run_curl(curl_tls_args(gw) + [
        "--data-binary", f"@{src}", "-H", "Content-Type: application/octet-stream",
        "-o", str(dst), "-w", "%{http_code}", gw.url("/app/?echo")])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"200"
    assert dst.read_bytes() == data


def test_chunked_request_body(shared_gw):
    data = os.urandom(1 + 100 + 4096 + 65536 + 100000 + 7)
    sizes = [1, 100, 4096, 65536, 100000, 7]
    chunks, off = [], 0
    for n in sizes:
        piece = data[off:off + n]
        off += n
        chunks.append(b"%x\r\n" % n + piece + b"\r\n")
    body = b"".join(chunks) + b"0\r\n\r\n"
    head = build_request("POST", "/app/?echo",
                         headers=[("Transfer-Encoding", "chunked"),
                                  ("Content-Type", "application/octet-stream")])
    with tls_connect(shared_gw) as s, s.makefile("rb") as rf:
        s.sendall(head)
        s.sendall(body)
        r = read_final_response(rf)
    assert r.status == 200, r
    assert r.header("Content-Length") == str(len(data))
    assert r.body == data


def test_chunked_request_reaches_app_vars(shared_gw):
    head = build_request("POST", "/app/chunked",
                         headers=[("Transfer-Encoding", "chunked"),
                                  ("Content-Type", "text/plain")])
    with tls_connect(shared_gw) as s, s.makefile("rb") as rf:
        s.sendall(head + b"5\r\nhello\r\n0\r\n\r\n")
        r = read_final_response(rf)
    assert r.status == 200, r
    v = r.vars
    assert v["REQUEST_METHOD"] == "POST"
    assert v["PATH_INFO"] == "/chunked"
    assert v["CONTENT_TYPE"] == "text/plain"


def test_response_without_length_is_chunked_for_http11(shared_gw):
    with tls_connect(shared_gw) as s, s.makefile("rb") as rf:
        s.sendall(build_request("GET", "/app/?size=300000"))
        r = read_response(rf)
        assert r.status == 200
        assert r.chunked, r.headers
        assert r.header("Content-Length") is None
        assert r.body == pattern(300000)
        # The connection stays usable after a chunked response.
        s.sendall(build_request("GET", "/app/?size=10&length"))
        r = read_response(rf)
        assert r.status == 200
        assert not r.chunked
        assert r.header("Content-Length") == "10"
        assert r.body == pattern(10)


def test_response_with_length_passes_through(shared_gw):
    with tls_connect(shared_gw) as s, s.makefile("rb") as rf:
        s.sendall(build_request("GET", "/app/?size=300000&length"))
        r = read_response(rf)
    assert r.status == 200
    assert not r.chunked
    assert r.header("Content-Length") == "300000"
    assert r.body == pattern(300000)


def test_response_without_length_is_close_delimited_for_http10(shared_gw):
    # Strict EOF: the end of a close-delimited body over TLS must be a
    # close_notify, or a truncation could not be told from the end.
    with tls_connect(shared_gw) as s, s.makefile("rb") as rf:
        s.sendall(build_request("GET", "/app/?size=300000", version="HTTP/1.0"))
        try:
            r = read_response(rf)
        except ssl.SSLEOFError as exc:
            raise AssertionError("connection closed without TLS close_notify") from exc
    assert r.status == 200
    assert r.version in ("HTTP/1.0", "HTTP/1.1")
    assert r.header("Transfer-Encoding") is None
    assert r.header("Content-Length") is None
    assert r.body == pattern(300000)
