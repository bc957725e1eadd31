"""Certificates to accounts through the real server (SPEC sections 2, 3, 4,
6 and 8; issue 4): one-to-one entries of every key kind, many-to-one
mappings, the order of SPEC section 4, the policy keys `mapping`,
`require_account`, `require_strong_mapping` and `allow_users` (403.12),
the variables the application receives (REMOTE_USER, AUTH_TYPE,
CERT_MAP_METHOD, CERT_MAP_NAME, CERT_MAP_STRENGTH, LOGON_USER, AUTH_USER),
the access log, `certgate explain` against the live server, `certgate -t`
on 100,000 entries, and a smart card (a SoftHSM2 token made by
tests/smartcard/softhsm-token.sh) presented by gnutls-cli through pkcs11:
URIs.

Every key value is computed here with `cryptography` from the PEM files
that tests/pki/mkpki.sh wrote, never taken from certgate's output.
"""

import base64
import datetime
import hashlib
import re
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtensionOID, NameOID

from conftest import (CERTGATE, TOP, Gateway, HTTPSConn, build_request, get,
                      parse_vars, response_from_bytes, run_gnutls_cli, wait_for)

TOKEN_SCRIPT = TOP / "tests" / "smartcard" / "softhsm-token.sh"

MS_UPN = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")
MS_SID_EXT = x509.ObjectIdentifier("1.3.6.1.4.1.311.25.2")

ACCOUNT_VARS = ("REMOTE_USER", "AUTH_TYPE", "CERT_MAP_METHOD", "CERT_MAP_NAME",
                "CERT_MAP_STRENGTH", "LOGON_USER", "AUTH_USER")

ALL_SOURCES = ["one_to_one", "many_to_one"]


# ---------------------------------------------------------------- certificate facts

def load_cert(pki, name):
    with open(pki.path(f"{name}.pem"), "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def der_of(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def colon_hex(data):
    """"5F:3A:..." as certtool and Windows dialogs write fingerprints."""
    return ":".join(f"{b:02X}" for b in data)


def sha256_of(cert):
    fp = cert.fingerprint(hashes.SHA256())
    assert fp == hashlib.sha256(der_of(cert)).digest()
    return fp


def spki_sha256(cert):
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


def ski_of(cert):
    return cert.extensions.get_extension_for_oid(
        ExtensionOID.SUBJECT_KEY_IDENTIFIER).value.digest


def serial_certtool(cert):
    """The serial's DER content bytes in hex, as certtool prints them
    (a leading 00 where the high bit is set)."""
    n = cert.serial_number
    assert n > 0
    return n.to_bytes(n.bit_length() // 8 + 1, "big").hex()


def der_utf8string(der):
    assert der[0] == 0x0C, der
    n, off = der[1], 2
    if n & 0x80:
        k = n & 0x7F
        n, off = int.from_bytes(der[2:2 + k], "big"), 2 + k
    return der[off:off + n].decode("utf-8")


def san_of(cert):
    try:
        return cert.extensions.get_extension_for_oid(
            ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        return []


def upns_of(cert):
    return [der_utf8string(g.value) for g in san_of(cert)
            if isinstance(g, x509.OtherName) and g.type_id == MS_UPN]


def emails_of(cert):
    return [g.value for g in san_of(cert) if isinstance(g, x509.RFC822Name)]


def sid_of(cert):
    """The SID string inside the AD security extension (its DER holds the
    text as an OCTET STRING)."""
    ext = cert.extensions.get_extension_for_oid(MS_SID_EXT).value
    m = re.search(rb"S-1-[0-9]+(?:-[0-9]+)+", ext.value)
    assert m, ext.value
    return m.group(0).decode("ascii")


def dn(name):
    return name.rfc4514_string()


SHORT = {NameOID.COMMON_NAME: "cn", NameOID.ORGANIZATION_NAME: "o",
         NameOID.ORGANIZATIONAL_UNIT_NAME: "ou", NameOID.COUNTRY_NAME: "c"}


def lower_types_dn(name):
    """"cn=Corp Issuing CA, o=Corp, c=US": RFC 4514 order, lower-case
    types, a space after each comma."""
    return ", ".join(f"{SHORT[a.oid]}={a.value}" for rdn in reversed(name.rdns) for a in rdn)


# ---------------------------------------------------------------- set-up

def corp_trust(pki):
    return {
        "ca": [pki.path("root.pem"), pki.path("issuing.pem")],
        "crl": [pki.path("issuing.crl"), pki.path("root.crl")],
        "crl_check": "chain",
        "crl_missing": "deny",
        "crl_expired": "deny",
    }


def policy(cert="require", mapping=ALL_SOURCES, **over):
    p = {"client_certificate": cert, "mapping": list(mapping)}
    p.update(over)
    return p


def configure_mapping(gw, accounts, policies, locations):
    """trust corp, `accounts`, the policies (added beside "open") and a
    location for each (path, policy name)."""
    gw.config["trust"] = {"corp": corp_trust(gw.pki)}
    gw.config["accounts"] = accounts
    gw.config["policies"].update(policies)
    gw.site["client_trust"] = "corp"
    gw.site["locations"] = [{"path": "/", "backend": "app"}] + [
        {"path": path, "backend": "app", "policy": pol} for path, pol in locations]


def mapped_gw(make_gateway, app, accounts, policies, locations):
    return make_gateway(app.address,
                        lambda gw: configure_mapping(gw, accounts, policies, locations))


def page_text(r):
    text = re.sub(r"<[^>]*>", " ", r.body.decode("utf-8", "replace"))
    return " ".join(text.split())


def full_status(r):
    """"200", or the full code of an error page ("403.12")."""
    if r.status == 200:
        return "200"
    m = re.match(r"(\d{3}(?:\.\d+)?) ", page_text(r))
    assert m and m.group(1).split(".")[0] == str(r.status), (r, page_text(r))
    return m.group(1)


def assert_403_12(r):
    assert r.status == 403, r
    assert page_text(r).startswith("403.12 "), page_text(r)
    assert "REMOTE_USER" not in r.body.decode("utf-8", "replace")


def ok_vars(r):
    assert r.status == 200, r
    return r.vars


def assert_account(v, user, method, name, strength, iis=True):
    got = {k: v.get(k) for k in ACCOUNT_VARS}
    want = {"REMOTE_USER": user, "AUTH_TYPE": "Certificate", "CERT_MAP_METHOD": method,
            "CERT_MAP_NAME": name, "CERT_MAP_STRENGTH": strength,
            "LOGON_USER": user if iis else None, "AUTH_USER": user if iis else None}
    assert got == want


def assert_no_account(v):
    got = {k: v[k] for k in ACCOUNT_VARS if k in v}
    assert got == {}, got


def log_line(gw, needle):
    def find():
        for line in gw.access_log().split("\n"):
            if needle in line:
                return line
        return None
    return wait_for(find, 5, what=f"an access log line with {needle!r}")


# ---------------------------------------------------------------- one-to-one key kinds

# Entry keys as functions of (pki, certificate, tmp_path).
def _cert_pem(pki, c, tmp):
    path = pki.path("alice.pem")
    assert load_cert(pki, "alice") == c
    return {"certificate": path}


def _cert_der_file(pki, c, tmp):
    p = tmp / "client.der"
    p.write_bytes(der_of(c))
    return {"certificate": str(p)}


def _cert_b64(pki, c, tmp):
    return {"certificate": base64.b64encode(der_of(c)).decode("ascii")}


KINDS = [
    # id, cert, keys, strong
    ("certificate_pem", "alice", _cert_pem, True),
    ("certificate_der_file", "noeku", _cert_der_file, True),
    ("certificate_base64", "bob", _cert_b64, True),
    ("sha256", "rsa", lambda p, c, t: {"sha256": colon_hex(sha256_of(c))}, True),
    ("sha256_lower_nocolon", "multiou", lambda p, c, t: {"sha256": sha256_of(c).hex()}, True),
    ("issuer_serial", "highserial",
     lambda p, c, t: {"issuer": dn(c.issuer), "serial": serial_certtool(c)}, True),
    ("issuer_serial_dn_spelling", "multiou",
     # attribute-type case, spaces after separators and hex case and colons
     # do not matter
     lambda p, c, t: {"issuer": lower_types_dn(c.issuer),
                      "serial": colon_hex(bytes.fromhex(serial_certtool(c))).lower()}, True),
    ("ski", "utf8", lambda p, c, t: {"ski": colon_hex(ski_of(c))}, True),
    ("public_key_sha256", "ed25519",
     lambda p, c, t: {"public_key_sha256": spki_sha256(c).hex().upper()}, True),
    ("sid", "sid", lambda p, c, t: {"sid": sid_of(c)}, True),
    ("upn", "upn", lambda p, c, t: {"upn": upns_of(c)[0]}, False),
    ("email", "alice", lambda p, c, t: {"email": emails_of(c)[0]}, False),
    ("email_second_san", "multiou", lambda p, c, t: {"email": emails_of(c)[1]}, False),
    ("subject", "bob", lambda p, c, t: {"subject": dn(c.subject)}, False),
    ("subject_issuer", "mallory",
     lambda p, c, t: {"subject": dn(c.subject), "issuer": dn(c.issuer)}, False),
]


def test_key_values_are_what_mkpki_made(pki):
    """The independent computations agree with what mkpki.sh says it made."""
    assert serial_certtool(load_cert(pki, "highserial")) == "00c0ffee0042"
    assert serial_certtool(load_cert(pki, "alice")) == "2001"
    assert sid_of(load_cert(pki, "sid")) == "S-1-5-21-1004336348-1177238915-682003330-1105"
    assert upns_of(load_cert(pki, "upn")) == ["frank@corp.example"]
    assert emails_of(load_cert(pki, "alice")) == ["alice@corp.example"]
    assert emails_of(load_cert(pki, "multiou"))[1] == "m.user@corp.example"
    assert dn(load_cert(pki, "alice").issuer) == "CN=Corp Issuing CA,O=Corp,C=US"


@pytest.mark.parametrize("kind,name,keys,strong", KINDS, ids=[k[0] for k in KINDS])
def test_one_to_one_key_kind(make_gateway, app, pki, tmp_path, kind, name, keys, strong):
    c = load_cert(pki, name)
    user = f"u-{kind}"
    entry = {"user": user}
    entry.update(keys(pki, c, tmp_path))
    # A decoy for another certificate keeps "matches anything" from passing.
    decoy_cert = load_cert(pki, "selfsigned")
    accounts = {"one_to_one": [
        {"user": "decoy", "sha256": sha256_of(decoy_cert).hex()},
        entry,
    ]}
    gw = mapped_gw(make_gateway, app, accounts, {
        "m": policy(mapping=["one_to_one"], require_account=True),
        "m-ssl": policy(mapping=["one_to_one"], export=["ssl"]),
    }, [("/m/", "m"), ("/m-ssl/", "m-ssl")])

    v = ok_vars(get(gw, f"/m/{kind}", cert=name))
    assert v["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert v["CERT_COOKIE"] == sha256_of(c).hex().upper()    # it is that certificate
    assert_account(v, user, "one-to-one", user, "strong" if strong else "weak")
    line = log_line(gw, f"GET /m/{kind} HTTP/1.1")
    assert f" user={user} map=one-to-one:{user} status=200 " in line, line

    # Without the iis set: no LOGON_USER/AUTH_USER, the rest as before.
    v = ok_vars(get(gw, f"/m-ssl/{kind}", cert=name))
    assert_account(v, user, "one-to-one", user, "strong" if strong else "weak", iis=False)

    # Another certificate of the same issuer has no account.
    other = "bob" if name != "bob" else "upn"
    r = get(gw, f"/m/other-{kind}", cert=other)
    assert_403_12(r)
    line = log_line(gw, f"GET /m/other-{kind} HTTP/1.1")
    assert " user=- map=- status=403.12 " in line, line


# ---------------------------------------------------------------- many-to-one

def rule(field, subfield, match, **kw):
    r = {"field": field, "subfield": subfield, "match": match}
    r.update(kw)
    return r


def m2o_accounts(case_sensitive_deny=False):
    return {"many_to_one": [
        {"name": "contractors-blocked", "permission": "deny",
         "rules": [rule("subject", "O", "contractor*",
                        case_sensitive=case_sensitive_deny)]},
        # Both rules must match: no certificate here has CN=Alice with OU=Sales.
        {"name": "alice-sales", "permission": "allow", "user": "wrong",
         "rules": [rule("subject", "CN", "Alice"), rule("subject", "OU", "Sales")]},
        {"name": "bob-only", "permission": "allow", "user": "bob-m2o",
         "rules": [rule("subject", "CN", "Bob"), rule("subject", "OU", "Engineering")]},
        {"name": "engineering", "permission": "allow", "user": "eng",
         "rules": [rule("subject", "OU", "Engineering"),
                   rule("issuer", "CN", "Corp Issuing CA*")]},
        {"name": "everyone", "permission": "allow", "user": "corp-user",
         "rules": [rule("subject", "C", "US")]},
    ]}


@pytest.fixture
def m2o_gw(make_gateway, app):
    return mapped_gw(make_gateway, app, m2o_accounts(), {
        "m": policy(mapping=["many_to_one"]),
    }, [("/m/", "m")])


@pytest.mark.parametrize("name,user,mapping", [
    ("alice", "eng", "engineering"),          # alice-sales: only one of its two rules
    ("bob", "bob-m2o", "bob-only"),           # first match wins over engineering, everyone
    ("multiou", "eng", "engineering"),        # OU=Platform,OU=Engineering: any value
    ("upn", "corp-user", "everyone"),         # OU=Sales: engineering's first rule fails
    ("noeku", "eng", "engineering"),
])
def test_many_to_one_allow(m2o_gw, name, user, mapping):
    gw = m2o_gw
    v = ok_vars(get(gw, f"/m/{name}", cert=name))
    assert_account(v, user, "many-to-one", mapping, "weak")
    line = log_line(gw, f"GET /m/{name} HTTP/1.1")
    assert f" user={user} map=many-to-one:{mapping} status=200 " in line, line


def test_many_to_one_deny_before_broader_allow(m2o_gw):
    """mallory (O=Contractor Inc, C=US) matches the case-blind deny before
    "everyone" (C=US) would have allowed it."""
    gw = m2o_gw
    assert_403_12(get(gw, "/m/mallory", cert="mallory"))
    line = log_line(gw, "GET /m/mallory HTTP/1.1")
    assert '"GET /m/mallory HTTP/1.1" 403 ' in line, line
    assert " map=many-to-one:contractors-blocked status=403.12 " in line, line
    assert " user=- " in line, line


def test_many_to_one_no_match_is_no_account(m2o_gw):
    """utf8 (O=Société Générale, C=FR) matches no mapping: no account, and
    without require_account the request goes on anonymously."""
    v = ok_vars(get(m2o_gw, "/m/utf8", cert="utf8"))
    assert v["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert_no_account(v)


def test_many_to_one_case_sensitive_default(make_gateway, app):
    """The same deny with case_sensitive true: "contractor*" does not match
    "Contractor Inc", so mallory falls through to "everyone"."""
    gw = mapped_gw(make_gateway, app, m2o_accounts(case_sensitive_deny=True),
                   {"m": policy(mapping=["many_to_one"])}, [("/m/", "m")])
    v = ok_vars(get(gw, "/m/mallory", cert="mallory"))
    assert_account(v, "corp-user", "many-to-one", "everyone", "weak")


def test_many_to_one_san_rule(make_gateway, app):
    """A san rule with a '*' in the middle; multi-valued SANs match on any."""
    accounts = {"many_to_one": [
        {"name": "upn-corp", "permission": "allow", "user": "upn-user",
         "rules": [rule("san", "upn", "*@corp.*")]},
        {"name": "eng-mail", "permission": "allow", "user": "eng-mail",
         "rules": [rule("san", "email", "*@eng.corp.example")]},
    ]}
    gw = mapped_gw(make_gateway, app, accounts, {
        "m": policy(mapping=["many_to_one"], require_account=True)}, [("/m/", "m")])
    assert_account(ok_vars(get(gw, "/m/u", cert="upn")),
                   "upn-user", "many-to-one", "upn-corp", "weak")
    # multiou's third email is mu@eng.corp.example.
    assert_account(ok_vars(get(gw, "/m/mu", cert="multiou")),
                   "eng-mail", "many-to-one", "eng-mail", "weak")
    assert_403_12(get(gw, "/m/a", cert="alice"))      # alice@corp.example only


# ---------------------------------------------------------------- order

@pytest.fixture
def order_gw(make_gateway, app, pki):
    alice, bob, upn, noeku = (load_cert(pki, n) for n in ("alice", "bob", "upn", "noeku"))
    accounts = {
        "one_to_one": [
            {"user": "alice-email", "email": emails_of(alice)[0]},             # weak, first
            {"user": "alice-disabled", "sha256": sha256_of(alice).hex(), "enabled": False},
            {"user": "alice-strong", "ski": ski_of(alice).hex()},              # strong, later
            {"user": "bob-subject", "subject": dn(bob.subject)},               # weak
            {"user": "bob-disabled", "certificate": pki.path("bob.pem"), "enabled": False},
            {"user": "frank-subject", "subject": dn(upn.subject)},             # weak, first
            {"user": "frank-upn", "upn": upns_of(upn)[0]},                     # weak, later
            {"user": "noeku-disabled", "sha256": sha256_of(noeku).hex(), "enabled": False},
        ],
        "many_to_one": [
            {"name": "engineering", "permission": "allow", "user": "eng",
             "rules": [rule("subject", "OU", "Engineering")]},
        ],
    }
    return mapped_gw(make_gateway, app, accounts, {
        "o2m": policy(mapping=["one_to_one", "many_to_one"]),
        "m2o": policy(mapping=["many_to_one", "one_to_one"]),
        "o2o": policy(mapping=["one_to_one"]),
        "dflt": policy(mapping=[]),
    }, [("/o2m/", "o2m"), ("/m2o/", "m2o"), ("/o2o/", "o2o"), ("/none/", "dflt")])


@pytest.mark.parametrize("path,name,want", [
    # strong before weak (file order would pick alice-email); disabled ignored
    ("/o2m/", "alice", ("alice-strong", "one-to-one", "alice-strong", "strong")),
    # one-to-one before many-to-one (bob is also OU=Engineering)
    ("/o2m/", "bob", ("bob-subject", "one-to-one", "bob-subject", "weak")),
    # among weak entries, file order
    ("/o2m/", "upn", ("frank-subject", "one-to-one", "frank-subject", "weak")),
    # no one-to-one entry (its only one is disabled): many-to-one
    ("/o2m/", "noeku", ("eng", "many-to-one", "engineering", "weak")),
    # policy mapping order ["many_to_one", "one_to_one"]: the other wins
    ("/m2o/", "alice", ("eng", "many-to-one", "engineering", "weak")),
    ("/m2o/", "bob", ("eng", "many-to-one", "engineering", "weak")),
    ("/m2o/", "upn", ("frank-subject", "one-to-one", "frank-subject", "weak")),
    ("/o2o/", "alice", ("alice-strong", "one-to-one", "alice-strong", "strong")),
    # a disabled entry is ignored: no account
    ("/o2o/", "noeku", None),
    # mapping [] (the default): nobody is mapped
    ("/none/", "alice", None),
])
def test_mapping_order(order_gw, path, name, want):
    v = ok_vars(get(order_gw, f"{path}{name}", cert=name))
    assert v["SSL_CLIENT_VERIFY"] == "SUCCESS"
    if want is None:
        assert_no_account(v)
    else:
        assert_account(v, *want)


def test_mapping_order_per_location_on_one_connection(order_gw):
    """Mapped once per connection, but each location's `mapping` order
    still decides: alternate on one keep-alive connection."""
    conn = HTTPSConn(order_gw, cert="alice")
    ports = set()
    try:
        for i in range(3):
            for path, user in (("/o2m/", "alice-strong"), ("/m2o/", "eng"),
                               ("/none/", None), ("/o2o/", "alice-strong")):
                conn.request("GET", f"{path}k{i}")
                resp = conn.getresponse()
                body = resp.read()
                assert resp.status == 200, body
                v = parse_vars(body)
                assert v.get("REMOTE_USER") == user, (path, i, v.get("REMOTE_USER"))
                assert v.get("CERT_MAP_METHOD") == {
                    None: None, "eng": "many-to-one"}.get(user, "one-to-one")
                ports.add(v["REMOTE_PORT"])
    finally:
        conn.close()
    assert len(ports) == 1, f"not one connection: client ports {ports}"


# ---------------------------------------------------------------- 403.12

@pytest.fixture
def deny_gw(make_gateway, app, pki):
    alice, bob, rsa_ = (load_cert(pki, n) for n in ("alice", "bob", "rsa"))
    accounts = {"one_to_one": [
        {"user": "alice", "sha256": colon_hex(sha256_of(alice))},     # strong
        {"user": "bob", "subject": dn(bob.subject)},                   # weak
        {"user": "rsa-user", "ski": colon_hex(ski_of(rsa_))},         # strong
    ]}
    return mapped_gw(make_gateway, app, accounts, {
        "need-acct": policy(mapping=["one_to_one"], require_account=True),
        "need-strong": policy(mapping=["one_to_one"], require_strong_mapping=True),
        "only-alice": policy(mapping=["one_to_one"], allow_users=["alice"]),
        "acc-acct": policy(cert="accept", mapping=["one_to_one"], require_account=True),
        "acc": policy(cert="accept", mapping=["one_to_one"]),
    }, [("/acct/", "need-acct"), ("/strong/", "need-strong"), ("/users/", "only-alice"),
        ("/acc-acct/", "acc-acct"), ("/acc/", "acc")])


def test_require_account(deny_gw):
    gw = deny_gw
    assert_account(ok_vars(get(gw, "/acct/alice", cert="alice")),
                   "alice", "one-to-one", "alice", "strong")
    assert_account(ok_vars(get(gw, "/acct/bob", cert="bob")),
                   "bob", "one-to-one", "bob", "weak")
    assert_403_12(get(gw, "/acct/upn", cert="upn"))          # no entry for frank
    line = log_line(gw, "GET /acct/alice HTTP/1.1")
    assert '"GET /acct/alice HTTP/1.1" 200 ' in line, line
    assert " user=alice map=one-to-one:alice status=200 " in line, line
    line = log_line(gw, "GET /acct/upn HTTP/1.1")
    assert '"GET /acct/upn HTTP/1.1" 403 ' in line, line
    assert ' cert="CN=Frank,OU=Sales,O=Corp,C=US" user=- map=- status=403.12 ' in line, line


def test_require_strong_mapping(deny_gw):
    gw = deny_gw
    assert_account(ok_vars(get(gw, "/strong/alice", cert="alice")),
                   "alice", "one-to-one", "alice", "strong")
    assert_account(ok_vars(get(gw, "/strong/rsa", cert="rsa")),
                   "rsa-user", "one-to-one", "rsa-user", "strong")
    assert_403_12(get(gw, "/strong/bob", cert="bob"))        # subject: weak
    line = log_line(gw, "GET /strong/bob HTTP/1.1")
    assert " user=bob map=one-to-one:bob status=403.12 " in line, line
    # No account at all, but neither require_account nor allow_users: on.
    assert_no_account(ok_vars(get(gw, "/strong/upn", cert="upn")))


def test_allow_users(deny_gw):
    gw = deny_gw
    assert_account(ok_vars(get(gw, "/users/alice", cert="alice")),
                   "alice", "one-to-one", "alice", "strong")
    assert_403_12(get(gw, "/users/rsa", cert="rsa"))         # strong, not listed
    assert_403_12(get(gw, "/users/bob", cert="bob"))
    assert_403_12(get(gw, "/users/upn", cert="upn"))         # no account: not listed
    line = log_line(gw, "GET /users/rsa HTTP/1.1")
    assert " user=rsa-user map=one-to-one:rsa-user status=403.12 " in line, line


def test_accept_without_certificate(deny_gw):
    gw = deny_gw
    r = get(gw, "/acc-acct/anon")
    assert_403_12(r)
    line = log_line(gw, "GET /acc-acct/anon HTTP/1.1")
    assert ' cert="-" user=- map=- status=403.12 ' in line, line
    assert_account(ok_vars(get(gw, "/acc-acct/alice", cert="alice")),
                   "alice", "one-to-one", "alice", "strong")
    # accept without require_account: anonymous, no account variables
    v = ok_vars(get(gw, "/acc/anon"))
    assert v["SSL_CLIENT_VERIFY"] == "NONE"
    assert_no_account(v)


# ---------------------------------------------------------------- spoofing

SPOOF_HEADERS = [
    [("Remote-User", "evil")],
    [("REMOTE_USER", "evil")],
    [("Remote_User", "evil"), ("Auth-Type", "Basic"), ("Cert-Map-Method", "one-to-one"),
     ("LOGON_USER", "evil"), ("Auth-User", "evil"), ("CERT_MAP_NAME", "evil")],
]


@pytest.mark.parametrize("headers", SPOOF_HEADERS, ids=["Remote-User", "REMOTE_USER", "several"])
def test_client_cannot_set_remote_user(deny_gw, headers, request):
    gw = deny_gw
    tag = request.node.callspec.id
    # No certificate, no account.
    assert_no_account(ok_vars(get(gw, f"/acc/{tag}-anon", headers=headers)))
    # A certificate without an account.
    assert_no_account(ok_vars(get(gw, f"/acc/{tag}-upn", cert="upn", headers=headers)))
    # Plain HTTP on the "open" policy.
    assert_no_account(ok_vars(get(gw, f"/app/{tag}-http", scheme="http", headers=headers)))
    # A mapped certificate: certgate's values, not the header's.
    v = ok_vars(get(gw, f"/acc/{tag}-alice", cert="alice", headers=headers))
    assert_account(v, "alice", "one-to-one", "alice", "strong")
    # The header itself reaches the application only as HTTP_*, and a name
    # with "_" not at all.
    if headers[0][0] == "Remote-User":
        assert v["HTTP_REMOTE_USER"] == "evil"
    else:
        assert "HTTP_REMOTE_USER" not in v
    assert "evil" not in gw.access_log()
    line = log_line(gw, f"GET /acc/{tag}-alice HTTP/1.1")
    assert " user=alice map=one-to-one:alice status=200 " in line, line
    line = log_line(gw, f"GET /acc/{tag}-upn HTTP/1.1")
    assert " user=- map=- status=200 " in line, line


# ---------------------------------------------------------------- explain

def explain(conf, cert_files, host="localhost", path="/m/x", when=None):
    args = [CERTGATE, "explain", "-c", conf, "--host", host, "--path", path]
    if when is not None:
        args += ["--time", when]
    p = subprocess.run(args + list(cert_files), capture_output=True, timeout=30)
    out = p.stdout.decode("utf-8", "replace")
    fields, variables = {"tried": []}, {}
    for line in out.split("\n"):
        if not line:
            continue
        m = re.match(r"^([a-z_]+): (.*)$", line)
        if m and m.group(1) == "tried":
            # One line per mapping tried, in order: fields["tried"] is a list.
            assert "mapping" not in fields, f"tried after mapping:\n{out}"
            fields["tried"].append(m.group(2))
            continue
        if m:
            assert m.group(1) not in fields, f"{m.group(1)} twice:\n{out}"
            fields[m.group(1)] = m.group(2)
            continue
        name, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z][A-Za-z0-9_]*", name), f"bad line {line!r}:\n{out}"
        variables[name] = value
    return p.returncode, fields, variables, out + p.stderr.decode("utf-8", "replace")


@pytest.fixture
def explain_gw(make_gateway, app, pki):
    alice = load_cert(pki, "alice")
    accounts = {
        "one_to_one": [{"user": "alice", "sha256": sha256_of(alice).hex()}],
        "many_to_one": [{"name": "contractors-blocked", "permission": "deny",
                         "rules": [rule("subject", "O", "Contractor*",
                                        case_sensitive=False)]}],
    }
    return mapped_gw(make_gateway, app, accounts, {
        "m": policy(mapping=ALL_SOURCES, require_account=True),
        "o": policy(mapping=ALL_SOURCES)}, [("/m/", "m"), ("/o/", "o")])


EXPLAIN_CASES = [
    # cert, path, live status, decision, exit code
    ("alice", "/m/x", "200", "allow", 0),
    ("mallory", "/m/x", "403.12", "deny", 1),        # deny mapping
    ("bob", "/m/x", "403.12", "deny", 1),            # no account, require_account
    # Without require_account only the deny mapping refuses.
    ("mallory", "/o/x", "403.12", "deny", 1),
    ("bob", "/o/x", "200", "allow", 0),
    ("alice", "/o/x", "200", "allow", 0),
]


def explain_files(pki, name):
    return [pki.path(f"{name}.pem"), pki.path("issuing.pem")]


@pytest.mark.parametrize("name,path,status,decision,rc", EXPLAIN_CASES,
                         ids=[f"{c[0]}-{c[1].strip('/x')}" for c in EXPLAIN_CASES])
def test_explain_agrees_with_live_server(explain_gw, pki, name, path, status, decision, rc):
    gw = explain_gw
    live = full_status(get(gw, path, cert=name))
    assert live == status, (name, live)
    got_rc, f, _, out = explain(gw.conf_path, explain_files(pki, name), path=path)
    assert f.get("verify") == "SUCCESS", out
    assert (f.get("decision"), f.get("status")) == (decision, live), \
        f"{name}: the server answered {live}, explain says:\n{out}"
    assert got_rc == rc, f"{name}: exit {got_rc}\n{out}"


@pytest.mark.parametrize("name,mapping,account", [
    ("alice", "one-to-one:alice (strong)", "alice"),
    ("bob", "none", None),
])
def test_explain_mapping_and_variables(explain_gw, pki, name, mapping, account):
    """SPEC 2: `mapping: METHOD:NAME (strong|weak)` or `mapping: none`,
    `account: NAME`, and the variables the application would get."""
    rc, f, v, out = explain(explain_gw.conf_path, explain_files(pki, name))
    assert f.get("mapping") == mapping, out
    if account is not None:
        assert f.get("account") == account, out
        live = ok_vars(get(explain_gw, "/m/x", cert=name))
        for k in ACCOUNT_VARS:
            assert v.get(k) == live[k], (k, out)
        assert v.get("REMOTE_USER") == account


def test_explain_deny_mapping_named(explain_gw, pki):
    rc, f, v, out = explain(explain_gw.conf_path, explain_files(pki, "mallory"))
    assert f.get("mapping", "").startswith("many-to-one:contractors-blocked"), out
    assert "REMOTE_USER" not in v, out


def test_explain_tried_lines_for_no_mapping(make_gateway, app, pki):
    """utf8 (CN=Zo\u00eb \u00c5ngstr\u00f6m,O=Soci\u00e9t\u00e9 G\u00e9n\u00e9rale,C=FR) matches no
    entry and no mapping: with require_account the server refuses it
    (403.12), and explain names each one-to-one key kind looked up and the
    first failing rule of every mapping, certificate values escaped."""
    utf8 = load_cert(pki, "utf8")
    accounts = dict(m2o_accounts(), one_to_one=[
        {"user": "alice", "sha256": sha256_of(load_cert(pki, "alice")).hex()}])
    gw = mapped_gw(make_gateway, app, accounts, {
        "m": policy(mapping=ALL_SOURCES, require_account=True),
        "n": policy(mapping=[], require_account=False)}, [("/m/", "m"), ("/n/", "n")])
    assert_403_12(get(gw, "/m/x", cert="utf8"))
    rc, f, v, out = explain(gw.conf_path, explain_files(pki, "utf8"))
    assert (f.get("decision"), f.get("status"), f.get("mapping")) == \
        ("deny", "403.12", "none"), out
    assert rc == 1, out

    looked_up = ["sha256", "public_key_sha256"]
    try:
        ski_of(utf8)
        looked_up.append("ski")
    except x509.ExtensionNotFound:
        pass
    looked_up.append("issuer+serial")
    looked_up += [f'upn "{u}"' for u in upns_of(utf8)]
    looked_up += [f'email "{e}"' for e in emails_of(utf8)]
    looked_up += ["subject", "subject+issuer"]
    org = "Soci\\xc3\\xa9t\\xc3\\xa9 G\\xc3\\xa9n\\xc3\\xa9rale"
    cn = "Zo\\xc3\\xab \\xc3\\x85ngstr\\xc3\\xb6m"
    assert f["tried"] == [
        "one-to-one: no entry for " + ", ".join(looked_up),
        'many-to-one contractors-blocked: rule 1 (subject O = "contractor*", '
        f'case-insensitive) matched no value (the certificate\'s: "{org}")',
        'many-to-one alice-sales: rule 1 (subject CN = "Alice") matched no value '
        f'(the certificate\'s: "{cn}")',
        'many-to-one bob-only: rule 1 (subject CN = "Bob") matched no value '
        f'(the certificate\'s: "{cn}")',
        'many-to-one engineering: rule 1 (subject OU = "Engineering") matched no '
        "value (the certificate has no subject OU)",
        'many-to-one everyone: rule 1 (subject C = "US") matched no value '
        '(the certificate\'s: "FR")',
    ], out
    # A certificate the third mapping takes: the earlier ones' failing
    # rules, then the one that decided, as mapping_why says.
    rc, f, v, out = explain(gw.conf_path, explain_files(pki, "bob"))
    assert f.get("mapping") == "many-to-one:bob-only (weak)", out
    assert f["tried"][1:] == [
        'many-to-one contractors-blocked: rule 1 (subject O = "contractor*", '
        'case-insensitive) matched no value (the certificate\'s: "Corp")',
        'many-to-one alice-sales: rule 1 (subject CN = "Alice") matched no value '
        '(the certificate\'s: "Bob")',
        f["mapping_why"],
    ], out
    # No tried lines where the policy does not map.
    rc, f, v, out = explain(gw.conf_path, explain_files(pki, "utf8"), path="/n/x")
    assert f["tried"] == [] and f.get("mapping") == "none", out


def test_explain_time(explain_gw, pki):
    """--time a year ahead: alice's certificate (365 days) has expired."""
    alice = load_cert(pki, "alice")
    now = datetime.datetime.utcnow().replace(microsecond=0)
    later = now + datetime.timedelta(days=366)
    assert alice.not_valid_after < later
    rc, f, v, out = explain(explain_gw.conf_path, explain_files(pki, "alice"),
                            when=later.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert f.get("verify", "").startswith("FAILED"), out
    assert (f.get("decision"), f.get("status")) == ("deny", "403.17"), out
    assert rc == 1, out
    assert "REMOTE_USER" not in v
    # Next month the card still works.
    soon = now + datetime.timedelta(days=30)
    rc, f, v, out = explain(explain_gw.conf_path, explain_files(pki, "alice"),
                            when=soon.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert f.get("verify") == "SUCCESS", out
    # An expired certificate: the live server agrees with explain.
    rc, f, v, out = explain(explain_gw.conf_path, explain_files(pki, "expired"))
    assert (f.get("decision"), f.get("status")) == ("deny", "403.17"), out
    assert full_status(get(explain_gw, "/m/x", cert="expired")) == "403.17"


def test_explain_usage_errors(explain_gw, pki, tmp_path):
    p = subprocess.run([CERTGATE, "explain", "-c", explain_gw.conf_path],
                       capture_output=True, timeout=30)
    assert p.returncode == 2, p
    bad = tmp_path / "bad.conf"
    bad.write_text("this is = not libconfig\n")
    p = subprocess.run([CERTGATE, "explain", "-c", str(bad), pki.path("alice.pem")],
                       capture_output=True, timeout=30)
    assert p.returncode == 2, p


# ---------------------------------------------------------------- scale

N_ENTRIES = 100_000


def test_check_100k_one_to_one(pki, tmp_path, capsys):
    g = Gateway(tmp_path / "big", pki, f"unix:{tmp_path}/app.sock")
    configure_mapping(g, {}, {"m": policy(mapping=["one_to_one"])}, [("/m/", "m")])
    del g.config["accounts"]            # written below, as text
    text = g.config_text()
    alice_fp = sha256_of(load_cert(pki, "alice")).hex()
    lines = [text, "accounts = {\n  one_to_one = (\n"]
    entries = []
    for i in range(N_ENTRIES - 1):
        h = hashlib.sha256(b"entry %d" % i).hexdigest()
        entries.append(f'    {{ user = "user{i}"; sha256 = "{h}"; }}')
    entries.append(f'    {{ user = "alice"; sha256 = "{alice_fp}"; }}')
    lines.append(",\n".join(entries))
    lines.append("\n  );\n};\n")
    path = tmp_path / "big.conf"
    path.write_text("".join(lines))
    assert path.read_text().count("sha256 =") == N_ENTRIES

    started = time.monotonic()
    p = subprocess.run([CERTGATE, "-t", "-c", str(path)], capture_output=True, timeout=60)
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\n[certgate -t with {N_ENTRIES} one-to-one entries: {elapsed:.3f} s wall]")
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    # The figure is reported, not asserted: speed is measured by benchmarks,
    # and this suite also runs under sanitizers (about 0.55 s here, -O2).

    # A duplicate among them is found, at its line.
    dup = path.read_text()
    text2 = dup.replace(f'{{ user = "user7"; sha256 = "{hashlib.sha256(b"entry 7").hexdigest()}"; }}',
                        f'{{ user = "user7"; sha256 = "{hashlib.sha256(b"entry 5").hexdigest()}"; }}')
    assert text2 != dup
    path2 = tmp_path / "dup.conf"
    path2.write_text(text2)
    p = subprocess.run([CERTGATE, "-t", "-c", str(path2)], capture_output=True, timeout=60)
    err = p.stderr.decode()
    assert p.returncode == 1, err
    line7 = next(i for i, l in enumerate(text2.split("\n"), 1) if '"user7"' in l)
    assert re.search(rf"^{re.escape(str(path2))}:{line7}: .*duplicate", err, re.M), err


def test_serve_100k_one_to_one(make_gateway, app, pki):
    """The server with 100,000 entries maps alice (the last entry) and
    nobody else."""
    alice_fp = sha256_of(load_cert(pki, "alice")).hex()
    entries = [{"user": f"user{i}", "sha256": hashlib.sha256(b"entry %d" % i).hexdigest()}
               for i in range(N_ENTRIES - 1)]
    entries.append({"user": "alice", "sha256": alice_fp})
    gw = mapped_gw(make_gateway, app, {"one_to_one": entries},
                   {"m": policy(mapping=["one_to_one"], require_account=True)},
                   [("/m/", "m")])
    assert_account(ok_vars(get(gw, "/m/a", cert="alice")),
                   "alice", "one-to-one", "alice", "strong")
    assert_403_12(get(gw, "/m/b", cert="bob"))


# ---------------------------------------------------------------- smart card

def make_token(tmp_path, pki, name, label):
    p = subprocess.run(["sh", str(TOKEN_SCRIPT), str(tmp_path / "token"),
                        pki.path(f"{name}.pem"), pki.path(f"{name}.key"), label],
                       capture_output=True, timeout=90)
    assert p.returncode == 0, p.stderr.decode()
    out = {}
    for line in p.stdout.decode().strip().split("\n"):
        k, _, v = line.partition("=")
        out[k] = v.strip("'")
    return out


def smartcard_gw(make_gateway, app, accounts):
    return mapped_gw(make_gateway, app, accounts, {
        "sc": policy(mapping=["one_to_one"], require_account=True),
        "strong": policy(mapping=["one_to_one"], require_strong_mapping=True),
    }, [("/sc/", "sc"), ("/strong/", "strong")])


def gnutls_card_get(gw, tok, target):
    req = build_request("GET", target, host=f"localhost:{gw.https_port}",
                        headers=[("Connection", "close")])
    args = [f"--x509certfile={tok['CERT_URI']}", f"--x509keyfile={tok['KEY_URI']}",
            f"--x509cafile={gw.pki.ca_chain}", "--sni-hostname=localhost",
            "--verify-hostname=localhost", "-p", str(gw.https_port), "127.0.0.1"]
    rc, out, log = run_gnutls_cli(args, req, timeout=30)
    assert b"HTTP/1.1 " in out, f"gnutls-cli (exit {rc}) got no response:\n{log}"
    return response_from_bytes(out), rc, log


def test_smartcard_upn_and_issuer_serial(make_gateway, app, pki, tmp_path, monkeypatch):
    label = "frank-card"
    tok = make_token(tmp_path, pki, "upn", label)
    assert tok["CERT_URI"] == f"pkcs11:token={label};object={label};type=cert"
    assert tok["KEY_URI"] == f"pkcs11:token={label};object={label};type=private"
    # Idempotent: the same lines again, the token not made anew.
    token_files = sorted(p.name for p in (tmp_path / "token" / "tokens").iterdir())
    assert make_token(tmp_path, pki, "upn", label) == tok
    assert sorted(p.name for p in (tmp_path / "token" / "tokens").iterdir()) == token_files

    monkeypatch.setenv("SOFTHSM2_CONF", tok["SOFTHSM2_CONF"])
    monkeypatch.setenv("GNUTLS_PIN", tok["PIN"])
    # GnuTLS finds SoftHSM2 through p11-kit (no --provider anywhere).
    p = subprocess.run(["p11tool", "--list-tokens"], capture_output=True, timeout=30)
    assert f"token={label}" in p.stdout.decode(), \
        "p11-kit does not load SoftHSM2 (no /usr/share/p11-kit/modules/softhsm2.module?):\n" \
        + p.stdout.decode() + p.stderr.decode()
    # The token's certificate is the upn certificate.
    p = subprocess.run(["p11tool", "--export", tok["CERT_URI"]], capture_output=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    card = x509.load_pem_x509_certificate(p.stdout)
    upn = load_cert(pki, "upn")
    assert card == upn

    # By upn: weak.
    gw = smartcard_gw(make_gateway, app, {"one_to_one": [
        {"user": "frank", "upn": upns_of(upn)[0]}]})
    r, rc, log = gnutls_card_get(gw, tok, "/sc/upn")
    v = ok_vars(r)
    assert v["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert v["SSL_CLIENT_S_DN"] == "CN=Frank,OU=Sales,O=Corp,C=US"
    assert v["SSL_CLIENT_SAN_OTHER_msUPN_0"] == "frank@corp.example"
    assert v["CERT_COOKIE"] == sha256_of(upn).hex().upper()
    assert_account(v, "frank", "one-to-one", "frank", "weak")
    assert rc == 0, log
    r, rc, log = gnutls_card_get(gw, tok, "/strong/upn")
    assert_403_12(r)

    # By issuer + serial: strong.
    gw2 = smartcard_gw(make_gateway, app, {"one_to_one": [
        {"user": "frank-s", "issuer": dn(upn.issuer), "serial": serial_certtool(upn)}]})
    r, rc, log = gnutls_card_get(gw2, tok, "/sc/serial")
    v = ok_vars(r)
    assert v["SSL_CLIENT_M_SERIAL"] == serial_certtool(upn).upper()
    assert_account(v, "frank-s", "one-to-one", "frank-s", "strong")
    assert rc == 0, log
    r, rc, log = gnutls_card_get(gw2, tok, "/strong/serial")
    assert_account(ok_vars(r), "frank-s", "one-to-one", "frank-s", "strong")
    line = log_line(gw2, "GET /strong/serial HTTP/1.1")
    assert " user=frank-s map=one-to-one:frank-s status=200 " in line, line
