"""Policies that need no certificate: TLS required (403.4 or a redirect),
the minimum cipher strength (403.5), HSTS and Secure cookies."""

import socket
import ssl

import pytest

from conftest import build_request, client_context, get, read_final_response, wait_for


def policy_gw(make_gateway, app, **policy):
    def configure(gw):
        gw.config["policies"]["p"] = policy
        gw.site["policy"] = "p"
    return make_gateway(app.address, configure)


def test_default_policy_requires_tls(make_gateway, app):
    def default(gw):
        del gw.site["policy"]
    gw = make_gateway(app.address, default)
    r = get(gw, "/app/x", scheme="http")
    assert r.status == 403
    assert r.body.decode().find("403.4 SSL required") >= 0, r.body
    wait_for(lambda: "status=403.4 " in gw.access_log(), 5, what="status=403.4")
    assert get(gw, "/app/x").status == 200          # over TLS


def test_http_redirect(make_gateway, app):
    gw = policy_gw(make_gateway, app, http_redirect=True)
    r = get(gw, "/app/a/../b?x=1&y", scheme="http")
    assert r.status == 301
    assert r.header("location") == f"https://localhost:{gw.https_port}/app/b?x=1&y"
    # Over TLS the same path is served.
    assert get(gw, "/app/b?x=1").status == 200


def tls12_request(gw, cipher):
    ctx = client_context(gw.pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(cipher)
    sock = socket.create_connection(("127.0.0.1", gw.https_port), timeout=10)
    with ctx.wrap_socket(sock, server_hostname="localhost") as s:
        s.sendall(build_request("GET", "/app/", f"localhost:{gw.https_port}", [], None))
        with s.makefile("rb") as f:
            return read_final_response(f, "GET")


def test_min_cipher_bits(make_gateway, app):
    gw = policy_gw(make_gateway, app, min_cipher_bits=256)
    r = tls12_request(gw, "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert r.status == 403 and b"403.5" in r.body
    r = tls12_request(gw, "ECDHE-ECDSA-AES256-GCM-SHA384")
    assert r.status == 200
    assert r.vars["HTTPS_KEYSIZE"] == "256"


def test_hsts_on_tls_only(make_gateway, app):
    gw = policy_gw(make_gateway, app, tls="optional", hsts=31536000)
    r = get(gw, "/app/")
    assert r.header("strict-transport-security") == "max-age=31536000"
    r = get(gw, "/app/", scheme="http")
    assert r.header("strict-transport-security") is None


def test_secure_cookies(make_gateway, app):
    gw = policy_gw(make_gateway, app, tls="optional", secure_cookies=True)
    r = get(gw, "/app/?cookie")
    assert r.header("set-cookie") == "a=b; Secure"
    r = get(gw, "/app/?header=Set-Cookie:c%3Dd%3B%20secure%3B%20Path%3D/")
    assert r.header("set-cookie") == "c=d; secure; Path=/"
    r = get(gw, "/app/?cookie", scheme="http")
    assert r.header("set-cookie") == "a=b"
