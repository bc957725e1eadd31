"""The access log: one combined+ line per request (SPEC section 8)."""

import os
import re
import signal

from conftest import get, wait_for

UA = "certgate-test/1.0"


def line_for(gw, needle):
    def find():
        for line in gw.access_log().split("\n"):
            if needle in line:
                return line
        return None
    return wait_for(find, 5, what=f"an access log line with {needle!r}")


def combined_plus(method, target, status, tls):
    return re.compile(
        r'^127\.0\.0\.1 - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] '
        + re.escape(f'"{method} {target} HTTP/1.1" {status} ')
        + r'(\d+|-) "-" ' + re.escape(f'"{UA}"')
        + rf' tls={re.escape(tls)} cipher=\S+ cert=(-|"-") user=- map=- '
        + rf'status={re.escape(status)} rt=\d+$')


def test_access_log_tls(shared_gw):
    gw = shared_gw
    r = get(gw, "/app/logged?x=1", headers=[("User-Agent", UA)])
    assert r.status == 200
    line = line_for(gw, "/app/logged?x=1")
    assert combined_plus("GET", "/app/logged?x=1", "200", "TLSv1.3").match(line), line
    assert " tls=TLSv1.3 " in line
    assert " status=200 " in line


def test_access_log_error_status(shared_gw):
    gw = shared_gw
    r = get(gw, "/app/logged-404?status=404", headers=[("User-Agent", UA)])
    assert r.status == 404
    line = line_for(gw, "/app/logged-404?status=404")
    assert combined_plus("GET", "/app/logged-404?status=404", "404", "TLSv1.3").match(line), line


def test_access_log_plain_http(shared_gw):
    gw = shared_gw
    r = get(gw, "/app/logged-plain", scheme="http", headers=[("User-Agent", UA)])
    assert r.status == 200
    line = line_for(gw, "/app/logged-plain")
    m = re.search(r" tls=(\S+) cipher=(\S+) ", line)
    assert m, line
    assert m.group(1) == "-"
    assert m.group(2) == "-"
    assert " status=200 " in line


def test_access_log_escapes_untrusted_bytes(shared_gw):
    gw = shared_gw
    # A quote would end the quoted field; 0xff is obs-text, legal in a value.
    r = get(gw, "/app/esc", headers=[("User-Agent", 'evil"agent\xff')])
    assert r.status == 200
    line_for(gw, "/app/esc HTTP/1.1")
    with open(gw.access_log_path, "rb") as f:
        raw = [l for l in f.read().split(b"\n") if b"/app/esc HTTP/1.1" in l][0]
    assert b'evil"agent' not in raw, raw
    assert b"\xff" not in raw, raw
    assert b"evil" in raw, raw


def test_sigusr1_reopens_logs(gw):
    assert get(gw, "/app/before-rotate").status == 200
    line_for(gw, "/app/before-rotate")
    os.rename(gw.access_log_path, gw.access_log_path + ".1")
    gw.proc.send_signal(signal.SIGUSR1)
    # Reopening is asynchronous: ask until a request lands in the new file.
    n = [0]

    def rotated():
        n[0] += 1
        assert get(gw, f"/app/after-rotate{n[0]}").status == 200
        return os.path.exists(gw.access_log_path) and "/app/after-rotate" in gw.access_log()
    wait_for(rotated, 5, interval=0.2, what="a new access log after SIGUSR1")
    with open(gw.access_log_path + ".1") as f:
        assert "/app/before-rotate" in f.read()
