"""Two sites on one TLS listener: SNI picks the certificate and the site;
no SNI gets the listener's default site."""

import pytest

from conftest import (build_request, client_context, get, read_final_response,
                      response_from_bytes, run_gnutls_cli, tls_connect)


@pytest.fixture
def sni_gw(make_gateway, app):
    def configure(gw):
        backends = gw.config["backends"]
        backends["app"]["params"] = {"SITE": "main"}
        backends["otherapp"] = {"connect": [app.address], "params": {"SITE": "other"}}
        gw.config["sites"].append({
            "name": "other",
            "listen": [f"https://127.0.0.1:{gw.https_port}"],
            "hosts": ["other.test"],
            "certificate": gw.pki.other_cert,
            "key": gw.pki.other_key,
            "locations": [{"path": "/", "backend": "otherapp"}],
        })
    return make_gateway(app.address, configure)


def subject_cn(cert):
    for rdn in cert["subject"]:
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


def dns_sans(cert):
    return sorted(v for k, v in cert.get("subjectAltName", ()) if k == "DNS")


def peer_cert(gw, sni):
    ctx = client_context(gw.pki, check_hostname=sni is not None)
    with tls_connect(gw, sni=sni, ctx=ctx) as s:
        return s.getpeercert()


def test_sni_selects_certificate_python(sni_gw):
    gw = sni_gw
    c = peer_cert(gw, "other.test")
    assert subject_cn(c) == "other.test"
    assert dns_sans(c) == ["other.test"]
    c = peer_cert(gw, "intranet.test")
    assert subject_cn(c) == "localhost"
    assert dns_sans(c) == ["intranet.test", "localhost"]
    c = peer_cert(gw, "localhost")
    assert subject_cn(c) == "localhost"


def test_no_sni_gets_default_site(sni_gw):
    gw = sni_gw
    # Without SNI the hostname cannot be checked, but the chain still is.
    c = peer_cert(gw, None)
    assert subject_cn(c) == "localhost"
    r = get(gw, "/x", sni=None, host="localhost")
    assert r.status == 200, r
    assert r.vars["SITE"] == "main"


def test_sni_selects_site(sni_gw):
    gw = sni_gw
    r = get(gw, "/y?q", sni="other.test", host="other.test")
    assert r.status == 200, r
    v = r.vars
    assert v["SITE"] == "other"
    assert v["SCRIPT_NAME"] == ""
    assert v["PATH_INFO"] == "/y"
    assert v["HTTP_HOST"] == "other.test"
    r = get(gw, "/app/y", sni="intranet.test", host="intranet.test")
    assert r.status == 200, r
    assert r.vars["SITE"] == "main"
    assert r.vars["SCRIPT_NAME"] == "/app"


def test_sni_and_host_naming_different_sites_is_421(sni_gw):
    gw = sni_gw
    r = get(gw, "/x", sni="other.test", host="localhost")
    assert r.status == 421, r
    assert b"421" in r.body
    r = get(gw, "/x", sni="localhost", host=f"other.test:{gw.https_port}")
    assert r.status == 421, r


def test_sni_gnutls_cli(sni_gw):
    gw = sni_gw
    req = build_request("GET", "/g", host="other.test", headers=[("Connection", "close")])
    rc, out, log = run_gnutls_cli([f"--x509cafile={gw.pki.ca_chain}",
                                   "--sni-hostname=other.test",
                                   "--verify-hostname=other.test",
                                   "-p", str(gw.https_port), "127.0.0.1"], req)
    assert "subject `CN=other.test,O=Corp,C=US'" in log, log
    assert "The certificate is trusted" in log, log
    r = response_from_bytes(out)
    assert r.status == 200, r
    assert r.vars["SITE"] == "other"
    assert rc == 0, log

    req = build_request("GET", "/g", host="intranet.test", headers=[("Connection", "close")])
    rc, out, log = run_gnutls_cli([f"--x509cafile={gw.pki.ca_chain}",
                                   "--sni-hostname=intranet.test",
                                   "--verify-hostname=intranet.test",
                                   "-p", str(gw.https_port), "127.0.0.1"], req)
    assert "subject `CN=localhost,O=Corp,C=US'" in log, log
    assert "The certificate is trusted" in log, log
    r = response_from_bytes(out)
    assert r.status == 200, r
    assert r.vars["SITE"] == "main"
    assert rc == 0, log


def test_sni_gnutls_cli_wrong_name_fails_verification(sni_gw):
    gw = sni_gw
    rc, out, log = run_gnutls_cli([f"--x509cafile={gw.pki.ca_chain}",
                                   "--sni-hostname=localhost",
                                   "--verify-hostname=other.test",
                                   "-p", str(gw.https_port), "127.0.0.1"], b"")
    assert rc != 0
    assert "The certificate is NOT trusted" in log, log


def test_sni_keeps_connection_site(sni_gw):
    """Several requests on one other.test connection all reach that site."""
    gw = sni_gw
    with tls_connect(gw, sni="other.test") as s, s.makefile("rb") as rf:
        for i in range(3):
            s.sendall(build_request("GET", f"/k{i}", host="other.test"))
            r = read_final_response(rf)
            assert r.status == 200
            assert r.vars["SITE"] == "other"
            assert r.vars["PATH_INFO"] == f"/k{i}"
