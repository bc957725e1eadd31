"""TLS: both protocol versions, the priority string, session resumption
with tickets (across workers and reloads), and the handshake and header
timeouts."""

import socket
import ssl
import time

import pytest

from conftest import build_request, client_context, read_final_response, wait_for


def tls_request(gw, ctx, session=None, target="/app/tls"):
    """One GET on a new TLS connection; returns (response, ssl socket info)."""
    sock = socket.create_connection(("127.0.0.1", gw.https_port), timeout=10)
    with ctx.wrap_socket(sock, server_hostname="localhost", session=session) as s:
        s.sendall(build_request("GET", target, f"localhost:{gw.https_port}",
                                [("Connection", "close")], None))
        with s.makefile("rb") as f:
            r = read_final_response(f, "GET")
        return r, s.version(), s.session, s.session_reused


def ctx_for(gw, version):
    ctx = client_context(gw.pki)
    ctx.minimum_version = version
    ctx.maximum_version = version
    return ctx


@pytest.mark.parametrize("version,name", [
    (ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
    (ssl.TLSVersion.TLSv1_3, "TLSv1.3"),
])
def test_both_versions(gw, version, name):
    r, got, _, _ = tls_request(gw, ctx_for(gw, version))
    assert got == name
    assert r.status == 200
    assert r.vars["HTTPS"] == "on"
    wait_for(lambda: f"tls={name} " in gw.access_log(), 5, what="the access log line")


def test_priorities_are_honoured(make_gateway, app):
    def tls13_only(gw):
        gw.config["tls"]["priorities"] = "NORMAL:-VERS-ALL:+VERS-TLS1.3"
    gw = make_gateway(app.address, tls13_only)
    with pytest.raises(ssl.SSLError):
        tls_request(gw, ctx_for(gw, ssl.TLSVersion.TLSv1_2))
    r, got, _, _ = tls_request(gw, ctx_for(gw, ssl.TLSVersion.TLSv1_3))
    assert (r.status, got) == (200, "TLSv1.3")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_resumption_with_tickets(gw, version):
    ctx = ctx_for(gw, version)
    r, _, session, reused = tls_request(gw, ctx)
    assert r.status == 200 and not reused
    assert session is not None
    # Several times: the connections land on both workers, which share the key.
    for _ in range(6):
        r, _, session2, reused = tls_request(gw, ctx, session=session)
        assert r.status == 200
        assert reused, "the session was not resumed"
        if version == ssl.TLSVersion.TLSv1_3:
            session = session2   # TLS 1.3 tickets are single-use by intent


def test_resumption_survives_reload(gw):
    ctx = ctx_for(gw, ssl.TLSVersion.TLSv1_3)
    _, _, session, _ = tls_request(gw, ctx)
    gw.site["locations"].append({"path": "/after-reload/", "backend": "app"})
    gw.write_config()
    gw.reload()
    wait_for(lambda: tls_request(gw, ctx, target="/after-reload/x")[0].status == 200,
             10, what="the reloaded configuration")
    _, _, _, reused = tls_request(gw, ctx, session=session)
    assert reused


def test_without_tickets_no_resumption(make_gateway, app):
    def no_tickets(gw):
        gw.config["tls"]["session_tickets"] = False
    gw = make_gateway(app.address, no_tickets)
    ctx = ctx_for(gw, ssl.TLSVersion.TLSv1_3)
    _, _, session, _ = tls_request(gw, ctx)
    r, _, _, reused = tls_request(gw, ctx, session=session)
    assert r.status == 200 and not reused


def closed_within(sock, seconds):
    """Seconds until the peer closed sock (reading and discarding)."""
    start = time.monotonic()
    sock.settimeout(seconds)
    data = b""
    while True:
        try:
            b = sock.recv(4096)
        except ConnectionResetError:
            break
        if not b:
            break
        data += b
    return time.monotonic() - start, data


def test_handshake_timeout(make_gateway, app):
    def short(gw):
        gw.config["limits"]["handshake_timeout"] = 1
    gw = make_gateway(app.address, short)
    with socket.create_connection(("127.0.0.1", gw.https_port), timeout=10) as s:
        elapsed, data = closed_within(s, 8)
    assert 0.5 < elapsed < 4, elapsed
    assert data == b""
    # A half-sent ClientHello is cut off the same way.
    with socket.create_connection(("127.0.0.1", gw.https_port), timeout=10) as s:
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        elapsed, _ = closed_within(s, 8)
    assert 0.5 < elapsed < 4, elapsed
    r, _, _, _ = tls_request(gw, client_context(gw.pki))
    assert r.status == 200


def test_header_timeout_gets_408(make_gateway, app):
    def short(gw):
        gw.config["limits"]["header_timeout"] = 1
    gw = make_gateway(app.address, short)
    with socket.create_connection(("127.0.0.1", gw.http_port), timeout=10) as s:
        s.sendall(b"GET /app/slow HTTP/1.1\r\nHost: localhost\r\n")
        elapsed, data = closed_within(s, 8)
    assert 0.5 < elapsed < 4, elapsed
    assert data.startswith(b"HTTP/1.1 408 "), data[:60]
    assert b"408 Request Timeout" in data
    # A connection that sends nothing is closed without a response.
    with socket.create_connection(("127.0.0.1", gw.http_port), timeout=10) as s:
        elapsed, data = closed_within(s, 8)
    assert 0.5 < elapsed < 4 and data == b""
