"""No spelling of a path reaches a location under another location's
policy (SPEC section 5), and the decisions of SPEC section 4 come in their
order: one configuration with locations of different policies, walked with
real clients over a table of (scheme, SNI, Host, path, certificate)."""

import pytest

from conftest import build_request, get, read_final_response, tls_connect
from test_client_cert import corp_trust


@pytest.fixture(scope="module")
def table_gw(pki, shared_app, tmp_path_factory):
    from conftest import Gateway
    g = Gateway(tmp_path_factory.mktemp("bypass"), pki, shared_app.address)
    c = g.config
    c["trust"] = {"corp": corp_trust(pki.dir)}
    c["accounts"] = {
        "one_to_one": [{"user": "alice", "subject": "CN=Alice,OU=Engineering,O=Corp,C=US"}],
        "many_to_one": [{"name": "eng", "permission": "allow", "user": "eng",
                         "rules": [{"field": "subject", "subfield": "OU",
                                    "match": "Engineering"}]}],
    }
    c["policies"].update({
        "public": {"tls": "optional"},
        "secure": {},                                    # TLS required
        "redirect": {"http_redirect": True},
        "strong": {"min_cipher_bits": 256},
        "admin": {"client_certificate": "require", "mapping": ["one_to_one"],
                  "require_account": True},
        "eng": {"client_certificate": "accept", "mapping": ["one_to_one", "many_to_one"],
                "allow_users": ["eng"]},
    })
    g.site["policy"] = "secure"
    g.site["client_trust"] = "corp"
    g.site["locations"] = [
        {"path": "/", "backend": "app", "policy": "public"},
        {"path": "/public/", "backend": "app", "policy": "public"},
        {"path": "/secure/", "backend": "app"},
        {"path": "/redirect/", "backend": "app", "policy": "redirect"},
        {"path": "/strong/", "backend": "app", "policy": "strong"},
        {"path": "/admin/", "backend": "app", "policy": "admin"},
        {"path": "/eng/", "backend": "app", "policy": "eng"},
    ]
    c["backends"]["other"] = {"connect": [shared_app.address], "params": {"SITE": "other"}}
    c["sites"].append({
        "name": "other", "listen": [f"https://127.0.0.1:{g.https_port}"],
        "hosts": ["other.test"], "policy": "public",
        "certificate": pki.other_cert, "key": pki.other_key,
        "locations": [{"path": "/", "backend": "other"}],
    })
    try:
        g.start()
        yield g
    finally:
        g.close()


def code_of(r):
    """The full code: the status, plus the sub-status the page begins with."""
    if r.status == 403:
        text = r.body.decode("utf-8", "replace")
        start = text.index("<h1>") + 4
        return text[start:].split(" ", 1)[0]
    return str(r.status)


# (scheme, path, cert, expected full code), in the order of SPEC section 4.
TABLE = [
    ("http", "/public/x", None, "200"),
    ("http", "/secure/x", None, "403.4"),
    ("http", "/redirect/x?a=1", None, "301"),
    ("https", "/secure/x", None, "200"),
    ("https", "/strong/x", None, "200"),             # AES-256 negotiated
    ("https", "/admin/x", None, "403.7"),
    ("http", "/admin/x", None, "403.4"),              # TLS before certificates
    ("https", "/admin/x", "revoked", "403.13"),
    ("https", "/admin/x", "expired", "403.17"),
    ("https", "/admin/x", "rogue", "403.16"),
    ("https", "/admin/x", "bob", "403.12"),           # no one-to-one account
    ("https", "/admin/x", "alice", "200"),
    ("https", "/eng/x", None, "403.12"),              # accept, but allow_users
    ("https", "/eng/x", "bob", "200"),                # many-to-one eng
    ("https", "/eng/x", "alice", "403.12"),           # one-to-one first: alice
    ("https", "/eng/x", "revoked", "403.13"),         # accept refuses bad certs
    ("https", "/nothing-here", None, "200"),          # "/" catches it
]


@pytest.mark.parametrize("scheme,path,cert,want", TABLE)
def test_decision_table(table_gw, scheme, path, cert, want):
    r = get(table_gw, path, scheme=scheme, cert=cert)
    assert code_of(r) == want, r
    if want == "301":
        assert r.header("location") == f"https://localhost:{table_gw.https_port}{path}"


# Each spelling must land under /admin/'s policy (403.7 without a
# certificate) or be refused (400); none may reach "/" or "/public/".
BYPASS = [
    ("/admin", "403.7"),
    ("/admin/", "403.7"),
    ("//admin/", "403.7"),
    ("/./admin/", "403.7"),
    ("/public/../admin/", "403.7"),
    ("/public/%2e%2e/admin/", "403.7"),
    ("/public/%2E%2E/admin/", "403.7"),
    ("/public/..%2fadmin/", "400"),
    ("/%61dmin/", "403.7"),
    ("/admin%00/", "400"),
    ("/admin;x/", "400"),
    ("/admin/..;/admin/", "400"),
    ("/ADMIN/", "400"),             # case: a case-only match elsewhere is refused
    ("/Admin/x", "400"),
    ("/admin\\x", "400"),
    ("/admin%5cx", "400"),
]


@pytest.mark.parametrize("path,want", BYPASS)
def test_bypass_attempts(table_gw, path, want):
    r = get(table_gw, path)
    assert code_of(r) == want, r


def raw(gw, sni, data):
    with tls_connect(gw, sni=sni) as s:
        s.sendall(data)
        with s.makefile("rb") as f:
            return read_final_response(f, "GET")


def test_host_naming_another_site_is_421(table_gw):
    r = raw(table_gw, "localhost", build_request("GET", "/admin/", "other.test", [], None))
    assert r.status == 421
    r = raw(table_gw, "other.test", build_request("GET", "/admin/", "localhost", [], None))
    assert r.status == 421


def test_absolute_form_naming_another_host_is_421(table_gw):
    req = (b"GET https://other.test/admin/ HTTP/1.1\r\nHost: localhost\r\n"
           b"Connection: close\r\n\r\n")
    assert raw(table_gw, "localhost", req).status == 421
    # The absolute form wins over Host, for the site the SNI chose too.
    req = (b"GET https://localhost/admin/x HTTP/1.1\r\nHost: other.test\r\n"
           b"Connection: close\r\n\r\n")
    r = raw(table_gw, "localhost", req)
    assert code_of(r) == "403.7"
