"""The access log: one combined+ line per request (SPEC section 8)."""

import json
import os
import re
import signal
import threading

from conftest import build_request, get, read_final_response, tls_connect, wait_for

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


def test_access_log_json(make_gateway, app):
    """access_log_format "json": one JSON object per line, with the status
    detail, the client's certificate subject and its mapping."""
    from test_client_cert import configure_client_cert

    def configure(gw):
        configure_client_cert(gw)
        gw.config["access_log_format"] = "json"
        gw.config["accounts"] = {"one_to_one": [
            {"user": "alice", "certificate": gw.pki.path("alice.pem")}]}
        gw.config["policies"]["req"]["mapping"] = ["one_to_one"]
    gw = make_gateway(app.address, configure)
    assert get(gw, "/req/json-a?x=%22", cert="alice",
               headers=[("User-Agent", 'ua"1')]).status == 200
    assert get(gw, "/req/json-none").status == 403
    entries = {}

    def both():
        for line in gw.access_log().split("\n"):
            if line:
                e = json.loads(line)
                entries[e["target"]] = e
        return "/req/json-a?x=%22" in entries and "/req/json-none" in entries
    wait_for(both, 5, what="two JSON access log lines")
    a, n = entries["/req/json-a?x=%22"], entries["/req/json-none"]
    assert a["remote_addr"] == "127.0.0.1" and a["method"] == "GET"
    assert a["protocol"] == "HTTP/1.1" and a["status"] == "200" and a["bytes"] > 0
    assert a["user_agent"] == 'ua"1' and a["referer"] == "-"
    assert a["tls"] == "TLSv1.3" and a["cipher"] != "-"
    assert "CN=Alice" in a["cert"] and a["user"] == "alice"
    assert a["map"] == "one-to-one:alice", a["map"]
    assert isinstance(a["rt"], int) and a["rt"] >= 0
    assert re.fullmatch(r"\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000", a["time"])
    assert n["status"] == "403.7" and n["cert"] == "-" and n["user"] == "-"


def test_lines_stay_whole_under_load(gw):
    """Lines are gathered and written once per turn of a worker's loop:
    1,600 requests from 8 keep-alive clients at once, served by both
    workers, give 1,600 whole lines, each logged once."""
    def client(k):
        s = tls_connect(gw)
        with s, s.makefile("rb") as rf:
            for i in range(200):
                s.sendall(build_request("GET", f"/app/load-{k}-{i}", f"localhost:{gw.https_port}"))
                assert read_final_response(rf).status == 200

    ts = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    want = {f"/app/load-{k}-{i}" for k in range(8) for i in range(200)}

    def all_logged():
        lines = [l for l in gw.access_log().split("\n") if "/app/load-" in l]
        return len(lines) >= len(want) and lines
    lines = wait_for(all_logged, 10, what="1,600 access log lines")
    whole = re.compile(r'^127\.0\.0\.1 - - \[[^\]]+\] "GET (/app/load-\d+-\d+) HTTP/1\.1" '
                       r'200 \d+ "-" "[^"]*" tls=TLSv1\.3 cipher=\S+ cert=\S+ user=\S+ '
                       r'map=\S+ status=200 rt=\d+$')
    seen = []
    for l in lines:
        m = whole.match(l)
        assert m, l
        seen.append(m.group(1))
    assert sorted(seen) == sorted(want)
