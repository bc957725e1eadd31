"""Client certificates (SPEC sections 3, 4 and 6): `trust`, the policies'
client_certificate and export, the site's client_trust and tls_client_auth;
the 403.7/13/16/17 refusals; and the ssl, iis, certificate and chain
variable sets, each value computed here independently with `cryptography`.

The gateway under test has trust "corp" (root + issuing CA, both CRLs) and
the locations /req/ (require, every set exported), /acc/ (accept, the
default sets), /pem/ (require, only the certificate and chain sets) and /
(the default policy: ignore).
"""

import datetime
import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtensionOID, NameOID, SignatureAlgorithmOID

from conftest import (CERTGATE, IO_TIMEOUT, Gateway, build_request, client_context,
                      curl_tls_args, line_of, read_final_response,
                      response_from_bytes, run_curl, run_gnutls_cli, tls_connect, wait_for)

ALL_SETS = ["ssl", "iis", "certificate", "chain"]

# Certificates that verify (tests/pki/mkpki.sh). multiou, utf8, noeku and
# rsa come with the second version of mkpki.sh: a missing one fails.
GOOD_CERTS = ["alice", "bob", "mallory", "upn", "multiou", "utf8", "noeku", "rsa"]

# A presented certificate that fails verification, and its refusal.
BAD_CERTS = [
    ("revoked", "403.13"),
    ("expired", "403.17"),
    ("notyet", "403.17"),
    ("rogue", "403.16"),        # issued by a CA outside the trust
    ("serveronly", "403.16"),   # EKU serverAuth only: key_purpose "client"
    ("selfsigned", "403.16"),
]

REASONS = {
    "403.7": "Client certificate required",
}


# ---------------------------------------------------------------- set-up

def corp_trust(pki_dir, **over):
    d = str(pki_dir)
    t = {
        "ca": [os.path.join(d, "root.pem"), os.path.join(d, "issuing.pem")],
        "crl": [os.path.join(d, "issuing.crl"), os.path.join(d, "root.crl")],
        "crl_check": "chain",
        "crl_missing": "deny",
        "crl_expired": "deny",
        "crl_reload": 60,
        "depth": 4,
        "key_purpose": "client",
        "advertise": [],
    }
    t.update(over)
    return t


def configure_client_cert(gw, pki_dir=None, site_auth=None, **trust_over):
    """trust corp, the policies req/acc/pem and their locations."""
    gw.config["trust"] = {"corp": corp_trust(pki_dir or gw.pki.dir, **trust_over)}
    gw.config["policies"].update({
        "req": {"client_certificate": "require", "export": list(ALL_SETS)},
        "acc": {"client_certificate": "accept"},
        "pem": {"client_certificate": "require", "export": ["certificate", "chain"]},
    })
    site = gw.site
    site["client_trust"] = "corp"
    if site_auth is not None:
        site["tls_client_auth"] = site_auth
    site["locations"] = [
        {"path": "/", "backend": "app"},
        {"path": "/app/", "backend": "app"},
        {"path": "/req/", "backend": "app", "policy": "req"},
        {"path": "/acc/", "backend": "app", "policy": "acc"},
        {"path": "/pem/", "backend": "app", "policy": "pem"},
    ]


@pytest.fixture(scope="module")
def cc_gw(pki, shared_app, tmp_path_factory):
    """One gateway for the tests that do not change it (tls_client_auth
    left out: "request", since policies accept or require certificates)."""
    g = Gateway(tmp_path_factory.mktemp("ccgw"), pki, shared_app.address)
    configure_client_cert(g)
    try:
        g.start()
        yield g
    finally:
        g.close()


def need_cert(pki, name):
    path = pki.path(f"{name}.pem")
    assert os.path.exists(path), \
        f"tests/pki/mkpki.sh makes no {name!r} certificate (yet): {path}"
    return path


# ---------------------------------------------------------------- client side

class Fetched:
    """A response, and what the Python side saw of the TLS connection."""

    def __init__(self, resp, sock):
        self.resp = resp
        self.status = resp.status
        self.body = resp.body
        self.version = sock.version()
        self.cipher = sock.cipher()     # (name, protocol, secret bits)
        self.reused = sock.session_reused
        self.session = sock.session

    def __repr__(self):
        return f"<Fetched {self.version} reused={self.reused} {self.resp!r}>"


def client_files(pki, name):
    """(chain file, key file); a self-signed certificate has no chain file."""
    chain, key = pki.client(name)
    if not os.path.exists(chain):
        chain = need_cert(pki, name)
    return chain, key


def make_ctx(gw, cert=None, tls12=False):
    ctx = client_context(gw.pki)
    if cert is not None:
        ctx.load_cert_chain(*client_files(gw.pki, cert))
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def fetch(gw, target, cert=None, ctx=None, session=None, headers=(), tls12=False,
          timeout=IO_TIMEOUT):
    """One GET on a new TLS connection (SNI localhost)."""
    if ctx is None:
        ctx = make_ctx(gw, cert, tls12)
    sock = socket.create_connection(("127.0.0.1", gw.https_port), timeout=timeout)
    try:
        s = ctx.wrap_socket(sock, server_hostname="localhost", session=session)
    except Exception:
        sock.close()
        raise
    with s:
        s.sendall(build_request("GET", target, f"localhost:{gw.https_port}", headers))
        with s.makefile("rb") as rf:
            resp = read_final_response(rf)
        return Fetched(resp, s)


def json_vars(r):
    """printenv's ?json output; a parameter sent twice fails."""
    assert r.status == 200, r

    def pairs_hook(pairs):
        names = [k for k, _ in pairs]
        twice = sorted({k for k in names if names.count(k) > 1})
        assert not twice, f"parameters sent twice: {twice}"
        return dict(pairs)
    return json.loads(r.body, object_pairs_hook=pairs_hook)


def page_text(r):
    text = re.sub(r"<[^>]*>", " ", r.body.decode("utf-8", "replace"))
    return " ".join(text.split())


def assert_refused(r, code):
    """403 whose page text begins with the full code (and its reason)."""
    assert r.status == 403, r
    text = page_text(r)
    assert text.startswith(code + " "), text
    if code in REASONS:
        assert text.startswith(f"{code} {REASONS[code]}"), text


def log_line(gw, needle):
    def find():
        for line in gw.access_log().split("\n"):
            if needle in line:
                return line
        return None
    return wait_for(find, 5, what=f"an access log line with {needle!r}")


def assert_logged(gw, target, code):
    line = log_line(gw, f"GET {target} HTTP/1.1")
    assert f'"GET {target} HTTP/1.1" {code.split(".")[0]} ' in line, line
    assert f" status={code} " in line, line


# ---------------------------------------------------------------- expectations

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
          "Nov", "Dec"]

# mod_ssl's SSL_CLIENT_S_DN_x suffixes (SPEC section 6).
DN_PARTS = [
    (NameOID.COUNTRY_NAME, "C"),
    (NameOID.STATE_OR_PROVINCE_NAME, "ST"),
    (NameOID.LOCALITY_NAME, "L"),
    (NameOID.ORGANIZATION_NAME, "O"),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "OU"),
    (NameOID.COMMON_NAME, "CN"),
    (NameOID.TITLE, "T"),
    (x509.ObjectIdentifier("2.5.4.43"), "I"),       # initials
    (NameOID.GIVEN_NAME, "G"),
    (NameOID.SURNAME, "S"),
    (x509.ObjectIdentifier("2.5.4.13"), "D"),       # description
    (NameOID.USER_ID, "UID"),
    (NameOID.EMAIL_ADDRESS, "Email"),
]

# The algorithm names OpenSSL (so mod_ssl) prints.
SIG_NAMES = {
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: "ecdsa-with-SHA256",
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: "ecdsa-with-SHA384",
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: "ecdsa-with-SHA512",
    SignatureAlgorithmOID.RSA_WITH_SHA256: "sha256WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA384: "sha384WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA512: "sha512WithRSAEncryption",
    SignatureAlgorithmOID.RSASSA_PSS: "rsassaPss",
    SignatureAlgorithmOID.ED25519: "ED25519",
}

MS_UPN = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")

TLS13_KEY_BITS = {"TLS_AES_256_GCM_SHA384": 256, "TLS_AES_128_GCM_SHA256": 128,
                  "TLS_CHACHA20_POLY1305_SHA256": 256}


def _load_all(path):
    with open(path, "rb") as f:
        data = f.read()
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?",
                        data, re.S)
    return [x509.load_pem_x509_certificate(b) for b in blocks]


def load_chain(pki, name):
    """The certificates of NAME-chain.pem: the leaf, then its issuers."""
    return _load_all(client_files(pki, name)[0])


def pem_of(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def openssl_time(dt):
    """ASN1_TIME_print: "Nov  5 09:03:07 2026 GMT" (day padded by a space)."""
    return (f"{MONTHS[dt.month - 1]} {dt.day:2d} {dt.hour:02d}:{dt.minute:02d}:"
            f"{dt.second:02d} {dt.year} GMT")


def hex_upper(data):
    return data.hex().upper()


def serial_bytes(cert):
    n = cert.serial_number
    h = f"{n:X}"
    if len(h) % 2:
        h = "0" + h
    return h


# Attribute types cryptography writes as dotted OIDs: mod_ssl (OpenSSL)
# writes emailAddress and title, IIS (CertNameToStr) E and T.
SSL_DN_NAMES = {NameOID.EMAIL_ADDRESS: "emailAddress", NameOID.TITLE: "title"}
IIS_DN_NAMES = {NameOID.EMAIL_ADDRESS: "E", NameOID.TITLE: "T"}


def ssl_dn(name):
    """RFC 4514: most specific first, "CN=Alice,OU=Eng,O=Corp,C=US"."""
    return name.rfc4514_string(SSL_DN_NAMES)


def iis_dn(name):
    """Certificate order, ", " between RDNs: "C=US, O=Corp, OU=Eng, CN=Alice"."""
    return ", ".join(rdn.rfc4514_string(IIS_DN_NAMES) for rdn in name.rdns)


def dn_parts(prefix, name):
    out = {}
    for oid, short in DN_PARTS:
        values = [a.value for a in name if a.oid == oid]    # certificate order
        for i, v in enumerate(values):
            out[f"{prefix}_{short}" + (f"_{i}" if i else "")] = v
    return out


def der_utf8string(der):
    """The text of a DER UTF8String (an otherName's value)."""
    assert der[0] == 0x0C, der
    n = der[1]
    off = 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(der[2:2 + k], "big")
        off = 2 + k
    return der[off:off + n].decode("utf-8")


def key_alg(cert):
    k = cert.public_key()
    if isinstance(k, ec.EllipticCurvePublicKey):
        return "id-ecPublicKey"
    if isinstance(k, rsa.RSAPublicKey):
        return "rsaEncryption"
    raise AssertionError(f"no mod_ssl name known here for {k!r}")


def expected_client_vars(cert, chain_rest):
    """Every client variable of the four sets, but V_REMAIN (time-dependent)
    and SSL_CLIENT_VERIFY (the verdict)."""
    v = {}
    v["SSL_CLIENT_S_DN"] = ssl_dn(cert.subject)
    v["SSL_CLIENT_I_DN"] = ssl_dn(cert.issuer)
    v.update(dn_parts("SSL_CLIENT_S_DN", cert.subject))
    v.update(dn_parts("SSL_CLIENT_I_DN", cert.issuer))
    v["SSL_CLIENT_M_SERIAL"] = serial_bytes(cert)
    v["SSL_CLIENT_M_VERSION"] = str(cert.version.value + 1)
    v["SSL_CLIENT_V_START"] = openssl_time(cert.not_valid_before)
    v["SSL_CLIENT_V_END"] = openssl_time(cert.not_valid_after)
    assert cert.signature_algorithm_oid in SIG_NAMES, cert.signature_algorithm_oid
    v["SSL_CLIENT_A_SIG"] = SIG_NAMES[cert.signature_algorithm_oid]
    v["SSL_CLIENT_A_KEY"] = key_alg(cert)
    try:
        san = cert.extensions.get_extension_for_oid(
            ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        san = []
    emails = [g.value for g in san if isinstance(g, x509.RFC822Name)]
    dnss = [g.value for g in san if isinstance(g, x509.DNSName)]
    upns = [der_utf8string(g.value) for g in san
            if isinstance(g, x509.OtherName) and g.type_id == MS_UPN]
    for i, e in enumerate(emails):
        v[f"SSL_CLIENT_SAN_Email_{i}"] = e
    for i, d in enumerate(dnss):
        v[f"SSL_CLIENT_SAN_DNS_{i}"] = d
    for i, u in enumerate(upns):
        v[f"SSL_CLIENT_SAN_OTHER_msUPN_{i}"] = u
    fp = hex_upper(cert.fingerprint(hashes.SHA256()))
    assert fp == hex_upper(hashlib.sha256(
        cert.public_bytes(serialization.Encoding.DER)).digest())
    v["SSL_CLIENT_FINGERPRINT_SHA256"] = fp
    v["CERT_COOKIE"] = fp
    v["CERT_SUBJECT"] = iis_dn(cert.subject)
    v["CERT_ISSUER"] = iis_dn(cert.issuer)
    v["CERT_SERIALNUMBER"] = "-".join(re.findall("..", serial_bytes(cert)))
    v["SSL_CLIENT_CERT"] = pem_of(cert)
    for i, c in enumerate(chain_rest):
        v[f"SSL_CLIENT_CERT_CHAIN_{i}"] = pem_of(c)
    return v


def remain_days(cert, at):
    return int((cert.not_valid_after - at).total_seconds() // 86400)


def utcnow():
    """Whole seconds, as the gateway's clock (time(NULL)) counts them."""
    return datetime.datetime.utcnow().replace(microsecond=0)


def server_cert(pki):
    return _load_all(pki.path("server.pem"))[0]


def client_names(v):
    return {k for k in v if k.startswith("SSL_CLIENT_") or k.startswith("CERT_")}


SERVER_CERT_VARS = {"CERT_FLAGS", "CERT_KEYSIZE", "CERT_SECRETKEYSIZE",
                    "CERT_SERVER_SUBJECT", "CERT_SERVER_ISSUER", "SSL_CLIENT_VERIFY"}


def assert_tls_vars(v, f, pki):
    """The connection's part of the ssl and iis sets, against what the
    Python side negotiated."""
    name, _, bits = f.cipher
    assert v["HTTPS"] == "on"
    assert v["SSL_PROTOCOL"] == f.version
    assert v["SSL_CIPHER"] == name
    if name in TLS13_KEY_BITS:
        assert bits == TLS13_KEY_BITS[name]
    if "AES256" in name or "AES_256" in name:
        assert bits == 256
    for k in ("SSL_CIPHER_USEKEYSIZE", "SSL_CIPHER_ALGKEYSIZE", "CERT_KEYSIZE",
              "HTTPS_KEYSIZE"):
        assert v[k] == str(bits), (k, v[k], f.cipher)
    assert v["SSL_SESSION_RESUMED"] == ("Resumed" if f.reused else "Initial")
    assert v["SSL_TLS_SNI"] == "localhost"
    assert v["SSL_VERSION_LIBRARY"].startswith("GnuTLS/"), v["SSL_VERSION_LIBRARY"]
    assert re.fullmatch(r"GnuTLS/\d+\.\d+\.\d+\S*", v["SSL_VERSION_LIBRARY"]), \
        v["SSL_VERSION_LIBRARY"]
    if "SSL_SESSION_ID" in v:
        assert re.fullmatch(r"(?:[0-9A-F]{2}){1,32}", v["SSL_SESSION_ID"]), v["SSL_SESSION_ID"]
    sc = server_cert(pki)
    assert v["SSL_SERVER_S_DN"] == ssl_dn(sc.subject) == "CN=localhost,O=Corp,C=US"
    assert v["SSL_SERVER_I_DN"] == ssl_dn(sc.issuer)
    assert v["CERT_SERVER_SUBJECT"] == v["HTTPS_SERVER_SUBJECT"] == iis_dn(sc.subject) \
        == "C=US, O=Corp, CN=localhost"
    assert v["CERT_SERVER_ISSUER"] == v["HTTPS_SERVER_ISSUER"] == iis_dn(sc.issuer)
    key_bits = str(sc.public_key().key_size)
    assert key_bits == "256"
    assert v["CERT_SECRETKEYSIZE"] == v["HTTPS_SECRETKEYSIZE"] == key_bits


def check_client_vars(v, pki, name, before, after, sets=ALL_SETS):
    """Every client variable of `sets` is exactly what `cryptography`
    computes for NAME's certificate, and no other client variable is there."""
    chain = load_chain(pki, name)
    cert = chain[0]
    exp = expected_client_vars(cert, chain[1:])
    want = {}
    for k, val in exp.items():
        if k in ("SSL_CLIENT_CERT",):
            inset = "certificate" in sets
        elif k.startswith("SSL_CLIENT_CERT_CHAIN_"):
            inset = "chain" in sets
        elif k.startswith("CERT_"):
            inset = "iis" in sets
        else:
            inset = "ssl" in sets
        if inset:
            want[k] = val
    for k, val in want.items():
        assert k in v, f"{k} missing (expected {val!r})"
        if k == "SSL_CLIENT_CERT" or k.startswith("SSL_CLIENT_CERT_CHAIN_"):
            # PEM: the same DER, in the standard 64-column text.
            got = x509.load_pem_x509_certificate(v[k].encode("ascii"))
            assert got == x509.load_pem_x509_certificate(val.encode("ascii")), k
            assert v[k].strip("\n") == val.strip("\n"), (k, v[k], val)
        else:
            assert v[k] == val, f"{k}: {v[k]!r} != expected {val!r}"
    names = set(want)
    if "ssl" in sets:
        names |= {"SSL_CLIENT_VERIFY", "SSL_CLIENT_V_REMAIN"}
        assert v["SSL_CLIENT_VERIFY"] == "SUCCESS"
        assert v["SSL_CLIENT_V_REMAIN"] in {str(remain_days(cert, before)),
                                            str(remain_days(cert, after))}, \
            (v["SSL_CLIENT_V_REMAIN"], cert.not_valid_after, before, after)
    if "iis" in sets:
        names |= {"CERT_FLAGS", "CERT_KEYSIZE", "CERT_SECRETKEYSIZE",
                  "CERT_SERVER_SUBJECT", "CERT_SERVER_ISSUER"}
        assert v["CERT_FLAGS"] == "1"
    extra = client_names(v) - names
    missing = names - client_names(v)
    assert not extra, f"unexpected variables: {sorted(extra)}"
    assert not missing, f"missing variables: {sorted(missing)}"
    return cert


# ---------------------------------------------------------------- variables

def test_alice_variables_literal(cc_gw):
    """The values for alice spelled out, so the computations above are
    checked too."""
    gw = cc_gw
    before = utcnow()
    f = fetch(gw, "/req/lit?json", cert="alice")
    after = utcnow()
    v = json_vars(f.resp)
    assert v["SCRIPT_NAME"] == "/req"
    assert v["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert v["CERT_FLAGS"] == "1"
    assert v["SSL_CLIENT_S_DN"] == "CN=Alice,OU=Engineering,O=Corp,C=US"
    assert v["SSL_CLIENT_S_DN_CN"] == "Alice"
    assert v["SSL_CLIENT_S_DN_OU"] == "Engineering"
    assert v["SSL_CLIENT_S_DN_O"] == "Corp"
    assert v["SSL_CLIENT_S_DN_C"] == "US"
    assert v["SSL_CLIENT_I_DN"] == "CN=Corp Issuing CA,O=Corp,C=US"
    assert v["SSL_CLIENT_I_DN_CN"] == "Corp Issuing CA"
    assert v["SSL_CLIENT_I_DN_O"] == "Corp"
    assert v["SSL_CLIENT_I_DN_C"] == "US"
    assert v["SSL_CLIENT_M_SERIAL"] == "2001"
    assert v["SSL_CLIENT_M_VERSION"] == "3"
    assert re.fullmatch(r"[A-Z][a-z]{2} [ 123]\d \d\d:\d\d:\d\d \d{4} GMT",
                        v["SSL_CLIENT_V_START"]), v["SSL_CLIENT_V_START"]
    assert v["SSL_CLIENT_V_REMAIN"] in ("364", "365")
    assert v["SSL_CLIENT_A_SIG"] == "ecdsa-with-SHA256"
    assert v["SSL_CLIENT_A_KEY"] == "id-ecPublicKey"
    assert v["SSL_CLIENT_SAN_Email_0"] == "alice@corp.example"
    assert re.fullmatch(r"[0-9A-F]{64}", v["SSL_CLIENT_FINGERPRINT_SHA256"])
    assert v["CERT_COOKIE"] == v["SSL_CLIENT_FINGERPRINT_SHA256"]
    assert v["CERT_SUBJECT"] == "C=US, O=Corp, OU=Engineering, CN=Alice"
    assert v["CERT_ISSUER"] == "C=US, O=Corp, CN=Corp Issuing CA"
    assert v["CERT_SERIALNUMBER"] == "20-01"
    assert v["SSL_CLIENT_CERT"].startswith("-----BEGIN CERTIFICATE-----\n")
    assert v["SSL_CLIENT_CERT"].rstrip("\n").endswith("\n-----END CERTIFICATE-----")
    with open(gw.pki.path("alice.pem")) as fh:
        assert v["SSL_CLIENT_CERT"].strip() == fh.read().strip()
    with open(gw.pki.path("issuing.pem")) as fh:
        assert v["SSL_CLIENT_CERT_CHAIN_0"].strip() == fh.read().strip()
    assert "SSL_CLIENT_CERT_CHAIN_1" not in v
    assert v["SSL_PROTOCOL"] == "TLSv1.3"
    assert v["SSL_SESSION_RESUMED"] == "Initial"
    assert v["SSL_TLS_SNI"] == "localhost"
    assert v["SSL_SERVER_S_DN"] == "CN=localhost,O=Corp,C=US"
    if v["SSL_CIPHER"] == "TLS_AES_256_GCM_SHA384":
        assert v["CERT_KEYSIZE"] == v["HTTPS_KEYSIZE"] == "256"
    assert v["CERT_SECRETKEYSIZE"] == "256"
    check_client_vars(v, gw.pki, "alice", before, after)
    assert_tls_vars(v, f, gw.pki)


@pytest.mark.parametrize("name", GOOD_CERTS)
def test_client_variables(cc_gw, name):
    """/req/ exports all four sets: each value as cryptography computes it."""
    gw = cc_gw
    need_cert(gw.pki, name)
    before = utcnow()
    f = fetch(gw, f"/req/vars-{name}?json", cert=name)
    after = utcnow()
    v = json_vars(f.resp)
    check_client_vars(v, gw.pki, name, before, after)
    assert_tls_vars(v, f, gw.pki)


def test_client_variables_tls12(cc_gw):
    gw = cc_gw
    before = utcnow()
    f = fetch(gw, "/req/tls12?json", cert="alice", tls12=True)
    after = utcnow()
    assert f.version == "TLSv1.2"
    v = json_vars(f.resp)
    assert v["SSL_PROTOCOL"] == "TLSv1.2"
    assert v["SSL_CIPHER"] == f.cipher[0]
    assert "-" in v["SSL_CIPHER"] and "_" not in v["SSL_CIPHER"], v["SSL_CIPHER"]
    check_client_vars(v, gw.pki, "alice", before, after)
    assert_tls_vars(v, f, gw.pki)


def test_upn_variable(cc_gw):
    gw = cc_gw
    v = json_vars(fetch(gw, "/req/upn?json", cert="upn").resp)
    assert v["SSL_CLIENT_SAN_OTHER_msUPN_0"] == "frank@corp.example"
    assert "SSL_CLIENT_SAN_Email_0" not in v
    assert v["SSL_CLIENT_S_DN"] == "CN=Frank,OU=Sales,O=Corp,C=US"


def test_accept_exports_default_sets(cc_gw):
    """/acc/ (export left at its default, ssl and iis) with alice."""
    gw = cc_gw
    before = utcnow()
    f = fetch(gw, "/acc/alice", cert="alice")
    after = utcnow()
    v = f.resp.vars
    check_client_vars(v, gw.pki, "alice", before, after, sets=["ssl", "iis"])
    assert "SSL_CLIENT_CERT" not in v
    assert "SSL_CLIENT_CERT_CHAIN_0" not in v
    assert_tls_vars(v, f, gw.pki)


def test_export_certificate_and_chain_only(cc_gw):
    """/pem/ exports only the certificate and chain sets."""
    gw = cc_gw
    before = utcnow()
    v = json_vars(fetch(gw, "/pem/x?json", cert="alice").resp)
    after = utcnow()
    check_client_vars(v, gw.pki, "alice", before, after, sets=["certificate", "chain"])
    for k in ("SSL_PROTOCOL", "SSL_CIPHER", "SSL_CLIENT_VERIFY", "CERT_FLAGS",
              "CERT_KEYSIZE", "HTTPS_KEYSIZE", "SSL_SERVER_S_DN"):
        assert k not in v, k
    assert v["HTTPS"] == "on"


def test_export_cap_too_large(cc_gw):
    """SPEC 6: a certificate value over 16 KiB is exported as TOO_LARGE, with
    a warning logged (the `large` certificate's CN has 17,000 characters)."""
    gw = cc_gw
    need_cert(gw.pki, "large")
    cert = load_chain(gw.pki, "large")[0]
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert len(cn) == 17000
    v = json_vars(fetch(gw, "/req/large?json", cert="large").resp)
    assert v["SSL_CLIENT_VERIFY"] == "SUCCESS"
    for k in ("SSL_CLIENT_S_DN", "SSL_CLIENT_S_DN_CN", "CERT_SUBJECT", "SSL_CLIENT_CERT"):
        assert v[k] == "TOO_LARGE", (k, v[k][:80])
    assert v["SSL_CLIENT_S_DN_O"] == "Corp"
    assert v["SSL_CLIENT_I_DN"] == "CN=Corp Issuing CA,O=Corp,C=US"
    assert v["SSL_CLIENT_M_SERIAL"] == "201A"
    assert v["SSL_CLIENT_CERT_CHAIN_0"].startswith("-----BEGIN CERTIFICATE-----\n")
    assert all(len(val.encode("utf-8")) <= 16384 for val in v.values())
    wait_for(lambda: "TOO_LARGE" in gw.error_log(), 5, what="a TOO_LARGE warning")
    assert any("TOO_LARGE" in l and "[warn" in l for l in gw.error_log().split("\n")), \
        gw.error_log()[-2000:]


# ---------------------------------------------------------------- policies

def test_require_without_certificate_is_403_7(cc_gw):
    gw = cc_gw
    f = fetch(gw, "/req/nocert-7")
    assert_refused(f.resp, "403.7")
    assert f.resp.header("Content-Type").startswith("text/html"), f.resp
    assert_logged(gw, "/req/nocert-7", "403.7")


def test_accept_without_certificate(cc_gw):
    gw = cc_gw
    f = fetch(gw, "/acc/nocert")
    assert f.status == 200, f
    v = f.resp.vars
    assert v["SSL_CLIENT_VERIFY"] == "NONE"
    assert v["CERT_FLAGS"] == "0"
    assert client_names(v) == SERVER_CERT_VARS, sorted(client_names(v))
    assert_tls_vars(v, f, gw.pki)
    assert_logged(gw, "/acc/nocert", "200")


def test_ignore_with_certificate_exports_nothing(cc_gw):
    gw = cc_gw
    f = fetch(gw, "/ignored", cert="alice")
    assert f.status == 200, f
    v = f.resp.vars
    assert "SSL_CLIENT_S_DN" not in v
    assert v["SSL_CLIENT_VERIFY"] == "NONE"
    assert v["CERT_FLAGS"] == "0"
    assert client_names(v) == SERVER_CERT_VARS, sorted(client_names(v))
    assert_tls_vars(v, f, gw.pki)


@pytest.mark.parametrize("name,code", BAD_CERTS)
@pytest.mark.parametrize("loc", ["req", "acc"])
def test_bad_certificate_refused(cc_gw, name, code, loc):
    """require and accept alike refuse a certificate that fails verification;
    the default policy (ignore) does not look at it."""
    gw = cc_gw
    need_cert(gw.pki, name)
    target = f"/{loc}/bad-{name}"
    f = fetch(gw, target, cert=name)
    assert_refused(f.resp, code)
    assert_logged(gw, target, code)
    f = fetch(gw, f"/bad-{name}-{loc}-ignored", cert=name)
    assert f.status == 200, f
    v = f.resp.vars
    assert v["SSL_CLIENT_VERIFY"] == "NONE"
    assert client_names(v) == SERVER_CERT_VARS, sorted(client_names(v))


# ---------------------------------------------------------------- headers

SPOOF = [
    ("SSL_CLIENT_S_DN", "evil"),
    ("SSL-Client-S-DN", "evil"),
    ("SSL_CLIENT_VERIFY", "SUCCESS-evil"),
    ("Remote-User", "evil"),
    ("REMOTE_USER", "evil"),
    ("Cert-Subject", "evil"),
    ("CERT_SUBJECT", "evil"),
    ("Cert_Flags", "3"),
    ("Proxy", "x"),
]


def test_client_headers_cannot_pose_as_certificate_variables(cc_gw):
    gw = cc_gw
    v = json_vars(fetch(gw, "/req/spoof?json", cert="alice", headers=SPOOF).resp)
    assert v["SSL_CLIENT_S_DN"] == "CN=Alice,OU=Engineering,O=Corp,C=US"
    assert v["CERT_SUBJECT"] == "C=US, O=Corp, OU=Engineering, CN=Alice"
    assert v["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert v["CERT_FLAGS"] == "1"
    assert "REMOTE_USER" not in v       # no account: no mapping configured
    assert "HTTP_PROXY" not in v
    evil = {k for k, val in v.items() if "evil" in val}
    assert evil == {"HTTP_SSL_CLIENT_S_DN", "HTTP_REMOTE_USER", "HTTP_CERT_SUBJECT"}, evil
    for k in evil:
        assert v[k] == "evil"


def test_client_headers_without_certificate(cc_gw):
    gw = cc_gw
    r = fetch(gw, "/acc/spoof", headers=SPOOF).resp
    assert r.status == 200, r
    v = r.vars      # parse_vars fails on a parameter sent twice
    assert v["SSL_CLIENT_VERIFY"] == "NONE"
    assert v["CERT_FLAGS"] == "0"
    assert "SSL_CLIENT_S_DN" not in v
    assert "CERT_SUBJECT" not in v
    assert "REMOTE_USER" not in v
    assert "HTTP_PROXY" not in v
    assert client_names(v) == SERVER_CERT_VARS, sorted(client_names(v))
    r = fetch(gw, "/req/spoof-7", headers=SPOOF).resp
    assert_refused(r, "403.7")


# ---------------------------------------------------------------- other clients

def test_curl_client_certificate(cc_gw, tmp_path):
    gw = cc_gw
    chain, key = client_files(gw.pki, "alice")
    out = tmp_path / "body"
    p = run_curl(curl_tls_args(gw) + ["--cert", chain, "--key", key,
                                      "-o", str(out), "-w", "%{http_code}",
                                      gw.url("/req/curl?json")])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"200", p
    v = json_vars(response_from_bytes(
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % out.stat().st_size
        + out.read_bytes()))
    assert v["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert v["SSL_CLIENT_S_DN"] == "CN=Alice,OU=Engineering,O=Corp,C=US"
    p = run_curl(curl_tls_args(gw) + ["-o", str(out), "-w", "%{http_code}",
                                      gw.url("/req/curl-nocert")])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"403", p
    assert page_text(response_from_bytes(
        b"HTTP/1.1 403 X\r\nContent-Length: %d\r\n\r\n" % out.stat().st_size
        + out.read_bytes())).startswith("403.7 ")


def gnutls_cli_args(gw, cert=None):
    args = [f"--x509cafile={gw.pki.ca_chain}", "--sni-hostname=localhost",
            "--verify-hostname=localhost", "-p", str(gw.https_port), "127.0.0.1"]
    if cert is not None:
        chain, key = client_files(gw.pki, cert)
        args = [f"--x509certfile={chain}", f"--x509keyfile={key}"] + args
    return args


def test_gnutls_cli_client_certificate(cc_gw):
    gw = cc_gw
    req = build_request("GET", "/req/gnutls?json", host="localhost",
                        headers=[("Connection", "close")])
    rc, out, log = run_gnutls_cli(gnutls_cli_args(gw, "alice"), req)
    r = response_from_bytes(out)
    v = json_vars(r)
    assert v["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert v["SSL_CLIENT_S_DN"] == "CN=Alice,OU=Engineering,O=Corp,C=US"
    assert v["CERT_FLAGS"] == "1"
    assert rc == 0, log


# ---------------------------------------------------------------- tls_client_auth require

@pytest.fixture
def require_gw(make_gateway, app):
    return make_gateway(app.address,
                        lambda gw: configure_client_cert(gw, site_auth="require"))


def handshake_refusal(gw, cert=None, tls12=False):
    """The error a refused client gets: ssl.SSLError (an alert, or an EOF
    in violation of the protocol) or a reset; never an HTTP answer. Under
    TLS 1.3 the client's side of the handshake ends before the server has
    judged its certificate: the refusal arrives with the first read."""
    ctx = make_ctx(gw, cert, tls12)
    sock = socket.create_connection(("127.0.0.1", gw.https_port), timeout=5)
    try:
        try:
            s = ctx.wrap_socket(sock, server_hostname="localhost",
                                suppress_ragged_eofs=False)
            with s:
                data = s.recv(1)
        except (ssl.SSLError, ConnectionResetError) as e:
            return e
        raise AssertionError(f"cert={cert} tls12={tls12}: no TLS error, the handshake "
                             f"succeeded and the first read gave {data!r}")
    finally:
        sock.close()


@pytest.mark.parametrize("tls12", [False, True], ids=["tls13", "tls12"])
def test_require_handshake(require_gw, tls12):
    gw = require_gw
    f = fetch(gw, "/req/ok?json", cert="alice", tls12=tls12)
    assert f.version == ("TLSv1.2" if tls12 else "TLSv1.3")
    v = json_vars(f.resp)
    assert v["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert v["SSL_CLIENT_S_DN"] == "CN=Alice,OU=Engineering,O=Corp,C=US"
    for cert in (None, "rogue", "revoked"):
        handshake_refusal(gw, cert, tls12)
    # The gateway is still there.
    assert fetch(gw, "/req/ok2", cert="alice", tls12=tls12).status == 200


def test_require_handshake_failure_is_an_alert(require_gw):
    """SPEC 3: "require makes the handshake itself fail (TLS alert)"."""
    gw = require_gw
    for cert in (None, "rogue", "revoked"):
        for tls12 in (False, True):
            e = handshake_refusal(gw, cert, tls12)
            assert isinstance(e, ssl.SSLError) and "ALERT" in str(e).upper(), \
                f"cert={cert} tls12={tls12}: no TLS alert but {e!r}"


def test_require_gnutls_cli(require_gw):
    gw = require_gw
    req = build_request("GET", "/req/g", host="localhost", headers=[("Connection", "close")])
    rc, out, log = run_gnutls_cli(gnutls_cli_args(gw), req)
    assert rc != 0, log
    assert b"HTTP/1.1" not in out, out
    rc, out, log = run_gnutls_cli(gnutls_cli_args(gw, "alice"), req)
    assert response_from_bytes(out).status == 200, log
    assert rc == 0, log


# ---------------------------------------------------------------- resumption

@pytest.mark.parametrize("tls12", [False, True], ids=["tls13", "tls12"])
def test_resumed_session_keeps_certificate(cc_gw, tls12):
    gw = cc_gw
    ctx = make_ctx(gw, "alice", tls12)
    first = fetch(gw, "/req/first?json", ctx=ctx)
    v1 = json_vars(first.resp)
    assert not first.reused
    assert v1["SSL_SESSION_RESUMED"] == "Initial"
    assert v1["SSL_CLIENT_VERIFY"] == "SUCCESS"
    session = first.session
    assert session is not None
    if not tls12:
        assert session.has_ticket
    second = fetch(gw, "/req/second?json", ctx=ctx, session=session)
    assert second.reused, "the session was not resumed"
    assert second.version == first.version
    v2 = json_vars(second.resp)
    assert v2["SSL_SESSION_RESUMED"] == "Resumed"
    assert v2["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert v2["CERT_FLAGS"] == "1"
    for k in ("SSL_CLIENT_S_DN", "SSL_CLIENT_I_DN", "SSL_CLIENT_M_SERIAL",
              "SSL_CLIENT_FINGERPRINT_SHA256", "CERT_SUBJECT", "CERT_COOKIE",
              "SSL_CLIENT_CERT"):
        assert v2[k] == v1[k], k
    assert v2["SSL_CLIENT_S_DN"] == "CN=Alice,OU=Engineering,O=Corp,C=US"
    # The resumed session is judged by each location's policy as well.
    r = fetch(gw, "/resumed-ignored", ctx=ctx, session=second.session)
    assert r.reused
    assert r.resp.vars["SSL_CLIENT_VERIFY"] == "NONE"
    assert "SSL_CLIENT_S_DN" not in r.resp.vars


CRL_TEMPLATE = "crl_next_update = 90\ncrl_number = 2\n"


@pytest.mark.parametrize("tls12", [False, True], ids=["tls13", "tls12"])
def test_crl_reload_refuses_resumed_session(make_gateway, app, pki, tmp_path, tls12):
    """A new CRL on disk revoking alice is picked up (crl_reload = 1)
    without a restart or SIGHUP, and a resumed session of hers is refused."""
    mypki = tmp_path / "pki"
    mypki.mkdir()
    for fn in ("root.pem", "issuing.pem", "issuing.crl", "root.crl"):
        shutil.copy(pki.path(fn), mypki / fn)
    gw = make_gateway(app.address,
                      lambda g: configure_client_cert(g, pki_dir=mypki, crl_reload=1))
    pid = gw.proc.pid
    ctx = make_ctx(gw, "alice", tls12)
    f = fetch(gw, "/req/before?json", ctx=ctx)
    assert json_vars(f.resp)["SSL_CLIENT_VERIFY"] == "SUCCESS"
    f = fetch(gw, "/req/before-resumed?json", ctx=ctx, session=f.session)
    assert f.reused
    assert json_vars(f.resp)["SSL_SESSION_RESUMED"] == "Resumed"
    session = f.session

    # A new issuing CRL revoking alice (and revoked, as before).
    work = tmp_path / "crlwork"
    work.mkdir()
    (work / "crl.tmpl").write_text(CRL_TEMPLATE)
    with open(work / "revoke.pem", "wb") as out:
        for fn in ("alice.pem", "revoked.pem"):
            with open(pki.path(fn), "rb") as src:
                out.write(src.read())
    subprocess.run(["certtool", "--generate-crl",
                    "--load-ca-privkey", pki.path("issuing.key"),
                    "--load-ca-certificate", pki.path("issuing.pem"),
                    "--load-certificate", str(work / "revoke.pem"),
                    "--template", str(work / "crl.tmpl"), "--no-text",
                    "--outfile", str(work / "issuing.crl")],
                   check=True, capture_output=True, timeout=30)
    os.replace(work / "issuing.crl", mypki / "issuing.crl")
    replaced = time.monotonic()

    state = {"session": session, "last": None}

    def refused():
        r = fetch(gw, "/req/after?json", ctx=ctx, session=state["session"])
        state["last"] = r
        if r.session is not None:
            state["session"] = r.session
        return r.status == 403 and r.reused
    wait_for(refused, 10, interval=0.2,
             what="a resumed session of alice's refused after the CRL change")
    assert time.monotonic() - replaced < 10
    assert_refused(state["last"].resp, "403.13")
    # Every worker has the new CRL within the reload period: from now on
    # resumed and full handshakes alike are refused.
    time.sleep(1.5)
    for i in range(4):
        r = fetch(gw, f"/req/after-{i}", ctx=ctx, session=state["session"])
        assert_refused(r.resp, "403.13")
        r = fetch(gw, f"/acc/after-full-{i}", cert="alice", tls12=tls12)
        assert_refused(r.resp, "403.13")
    assert fetch(gw, "/req/bob?json", cert="bob", tls12=tls12).status == 200
    assert gw.running() and gw.proc.pid == pid


# ---------------------------------------------------------------- -t

def certgate_t(path):
    return subprocess.run([CERTGATE, "-t", "-c", path], capture_output=True, timeout=20)


def check_config_error(tmp_path, gw, needle, words):
    text = gw.config_text()
    path = str(tmp_path / "cc.conf")
    with open(path, "w") as f:
        f.write(text)
    line = line_of(text, needle)
    p = certgate_t(path)
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 1, err
    lines = [l for l in err.strip().split("\n") if l]
    assert lines, "no error printed"
    for l in lines:
        assert re.match(rf"^{re.escape(path)}:\d+: \S", l), f"not FILE:LINE: message: {l!r}"
    at = [l for l in lines if l.startswith(f"{path}:{line}:")]
    assert at, f"no error at line {line} ({needle!r}):\n{err}\n{text}"
    for w in words:
        assert any(w in l for l in at), f"{w!r} not in the error at line {line}:\n{err}"
    return err


@pytest.fixture
def cfg(pki, tmp_path):
    """An unstarted gateway configured like cc_gw: only its text is used."""
    g = Gateway(tmp_path / "cfg", pki, f"unix:{tmp_path}/app.sock")
    configure_client_cert(g)
    return g


def test_config_valid(cfg, tmp_path):
    path = str(tmp_path / "ok.conf")
    with open(path, "w") as f:
        f.write(cfg.config_text())
    p = certgate_t(path)
    assert p.returncode == 0, p.stderr.decode()


def test_config_request_without_client_trust(cfg, tmp_path):
    del cfg.site["client_trust"]
    cfg.site["tls_client_auth"] = "request"
    check_config_error(tmp_path, cfg, "tls_client_auth", ["client_trust"])


def test_config_dangling_client_trust(cfg, tmp_path):
    cfg.site["client_trust"] = "nosuchtrust"
    check_config_error(tmp_path, cfg, '"nosuchtrust"', ["nosuchtrust"])


def test_config_dangling_location_policy(cfg, tmp_path):
    cfg.site["locations"].append({"path": "/np/", "backend": "app", "policy": "nosuchpolicy"})
    check_config_error(tmp_path, cfg, '"nosuchpolicy"', ["nosuchpolicy"])


def test_config_unknown_export_set(cfg, tmp_path):
    cfg.config["policies"]["req"]["export"] = ["ssl", "bogusset"]
    check_config_error(tmp_path, cfg, '"bogusset"', ["bogusset"])


def test_config_missing_ca_file(cfg, tmp_path):
    cfg.config["trust"]["corp"]["ca"] = [cfg.pki.path("root.pem"),
                                         str(tmp_path / "missing-ca.pem")]
    check_config_error(tmp_path, cfg, "missing-ca.pem", ["missing-ca.pem"])


def test_config_unparsable_ca_file(cfg, tmp_path):
    bad = tmp_path / "garbage-ca.pem"
    bad.write_text("this is not a certificate\n")
    cfg.config["trust"]["corp"]["ca"] = [str(bad)]
    check_config_error(tmp_path, cfg, "garbage-ca.pem", ["garbage-ca.pem"])


def test_variables_follow_the_policy_on_one_connection(cc_gw):
    """A keep-alive connection keeps its encoded certificate variables from
    one request to the next (issue 7): requests on one connection that
    alternate between locations of different export sets each get their
    own policy's variables, never the previous request's."""
    gw = cc_gw
    s = tls_connect(gw, ctx=make_ctx(gw, "alice"))
    with s, s.makefile("rb") as rf:
        for i, path in enumerate(["/req/", "/pem/", "/req/", "/req/", "/pem/", "/pem/", "/req/"]):
            s.sendall(build_request("GET", f"{path}{i}?json", f"localhost:{gw.https_port}"))
            v = json_vars(read_final_response(rf))
            assert v["PATH_INFO"] == f"/{i}", v
            if path == "/req/":
                assert v["SSL_CLIENT_S_DN"] == "CN=Alice,OU=Engineering,O=Corp,C=US", v
                assert v["CERT_SUBJECT"], v
                assert int(v["SSL_CLIENT_V_REMAIN"]) > 0, v
            else:
                assert "SSL_CLIENT_S_DN" not in v and "CERT_SUBJECT" not in v, v
                assert v["SSL_CLIENT_CERT"].startswith("-----BEGIN CERTIFICATE-----"), v
