"""The FastCGI authorizer role (SPEC section 7): after mapping, a policy's
authorizer is asked first; its 200 lets the request on with its
Variable-NAME headers as parameters (never over certgate's own), and any
other answer reaches the client as the authorizer wrote it."""

import os

import pytest

from conftest import TOP, get, request, wait_for
from test_client_cert import corp_trust

AUTHORIZER = os.environ.get("AUTHORIZER", str(TOP / "examples" / "authorizer"))


@pytest.fixture
def authz_gw(make_gateway, app):
    def configure(gw):
        gw.config["trust"] = {"corp": corp_trust(gw.pki.dir)}
        gw.config["accounts"] = {"one_to_one": [
            {"user": "alice", "subject": "CN=Alice,OU=Engineering,O=Corp,C=US"},
            {"user": "bob", "subject": "CN=Bob,OU=Engineering,O=Corp,C=US"},
        ]}
        gw.config["backends"]["authz"] = {
            "role": "authorizer",
            "spawn": {"command": [AUTHORIZER], "processes": 2,
                      "environment": {"ALLOW_USERS": "alice,carol"}},
        }
        gw.config["policies"]["guarded"] = {
            "client_certificate": "require", "mapping": ["one_to_one"],
            "require_account": True, "authorizer": "authz",
        }
        gw.site["client_trust"] = "corp"
        gw.site["locations"].append({"path": "/guarded/", "backend": "app",
                                     "policy": "guarded"})
    return make_gateway(app.address, configure)


def test_allowed_request_gets_the_authorizers_variables(authz_gw):
    r = get(authz_gw, "/guarded/x", cert="alice")
    assert r.status == 200, r
    v = r.vars
    assert v["REMOTE_USER"] == "alice"            # certgate's, not the authorizer's
    assert v["AUTHZ_USER"] == "alice"
    assert v["AUTHZ_REASON"] == "listed in ALLOW_USERS"
    assert v["PATH_INFO"] == "/x"
    wait_for(lambda: "Variable-REMOTE_USER ignored" in authz_gw.error_log(), 5,
             what="the ignored variable in the error log")


def test_refusal_is_passed_through(authz_gw):
    r = get(authz_gw, "/guarded/x", cert="bob")
    assert r.status == 403
    assert r.body == b"denied by the authorizer: bob\n"
    assert r.header("x-authorizer") == "example"
    assert r.header("content-type") == "text/plain"


def test_body_waits_for_the_authorizer(authz_gw):
    body = os.urandom(1 << 20)
    r = request(authz_gw, "POST", "/guarded/?echo", body=body, cert="alice",
                headers=[("Content-Type", "application/octet-stream")])
    assert r.status == 200
    assert r.body == body
    r = request(authz_gw, "POST", "/guarded/?echo", body=body, cert="bob")
    assert r.status == 403


def test_authorizer_must_exist_and_be_one(make_gateway, app, tmp_path):
    def bad(gw):
        gw.config["policies"]["guarded"] = {"authorizer": "app"}
        gw.site["locations"].append({"path": "/g/", "backend": "app", "policy": "guarded"})
    gw = make_gateway(app.address, bad, start=False)
    gw.write_config()
    import subprocess
    from conftest import CERTGATE
    p = subprocess.run([CERTGATE, "-t", "-c", gw.conf_path], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 1
    assert 'no backend "app" with role "authorizer"' in p.stderr
