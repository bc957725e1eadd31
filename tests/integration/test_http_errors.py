"""Malformed, oversized and smuggling requests get the right status and an
error page that names it, and the gateway keeps serving afterwards.

The limits come from the test configuration (conftest.Gateway):
max_header_size 8192, max_uri_size 2048, max_headers 50,
max_body_size 8 MiB."""

import socket

import pytest

from conftest import assert_works, get, read_response, tls_connect

H = b"Host: localhost\r\n"

CASES = [
    # name, raw request, status
    ("malformed_request_line", b"this is not http\r\n\r\n", 400),
    ("cl_and_te",
     b"POST /app/?echo HTTP/1.1\r\n" + H +
     b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("header_block_too_large",
     b"GET /app/ HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 10000 + b"\r\n\r\n", 431),
    ("uri_too_long",
     b"GET /app/" + b"a" * 3000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    ("too_many_headers",
     b"GET /app/ HTTP/1.1\r\n" + H +
     b"".join(b"X-H%d: v\r\n" % i for i in range(60)) + b"\r\n", 431),
    ("body_too_large",
     b"POST /app/?echo HTTP/1.1\r\n" + H + b"Content-Length: 9000000\r\n\r\n", 413),
    ("transfer_encoding_gzip",
     b"POST /app/?echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n", 501),
    ("http_2_0", b"GET /app/ HTTP/2.0\r\n" + H + b"\r\n", 505),
    ("http_3_0", b"GET /app/ HTTP/3.0\r\n" + H + b"\r\n", 505),
    ("encoded_dotdot_above_root",
     b"GET /a/%2e%2e/%2e%2e/x HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("bare_cr_in_header",
     b"GET /app/ HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", 400),
    # The other smuggling shapes of SPEC section 5.
    ("differing_content_lengths",
     b"POST /app/?echo HTTP/1.1\r\n" + H +
     b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    ("obsolete_line_folding",
     b"GET /app/ HTTP/1.1\r\n" + H + b"X-A: a\r\n b\r\n\r\n", 400),
    ("whitespace_before_colon",
     b"GET /app/ HTTP/1.1\r\n" + H + b"X-A : a\r\n\r\n", 400),
    ("malformed_chunk_size",
     b"POST /app/?echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
    ("dotdot_above_root", b"GET /../x HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("encoded_slash", b"GET /app/a%2fb HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("encoded_nul", b"GET /app/a%00b HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("backslash", b"GET /app/a\\b HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("encoded_backslash", b"GET /app/a%5cb HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("path_parameter", b"GET /app/a;jsessionid=1 HTTP/1.1\r\n" + H + b"\r\n", 400),
]


@pytest.mark.parametrize("name,raw,status", CASES, ids=[c[0] for c in CASES])
def test_http_error(shared_gw, name, raw, status):
    gw = shared_gw
    with tls_connect(gw) as s, s.makefile("rb") as rf:
        s.sendall(raw)
        r = read_response(rf)
    assert r.status == status, r
    assert str(status).encode() in r.body, r
    assert_works(gw)


def test_errors_then_keep_serving_plain_http(shared_gw):
    gw = shared_gw
    with socket.create_connection(("127.0.0.1", gw.http_port), timeout=10) as s, \
            s.makefile("rb") as rf:
        s.sendall(b"GET /app/ HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n")
        r = read_response(rf)
    assert r.status == 400, r
    assert b"400" in r.body
    assert_works(gw, scheme="http")


def test_normalized_path_reaches_app(shared_gw):
    """Dot segments, merged slashes and encoded unreserved characters are
    normalized once; the application sees the normalized path."""
    r = get(shared_gw, "/x/../app//%7Euser/./b?q=%2e")
    assert r.status == 200, r
    v = r.vars
    assert v["SCRIPT_NAME"] == "/app"
    assert v["PATH_INFO"] == "/~user/b"
    assert v["REQUEST_URI"] == "/app/~user/b?q=%2e"
    assert v["QUERY_STRING"] == "q=%2e"
