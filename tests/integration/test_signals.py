"""Signals: SIGHUP reloads without failing a single request (a bad file
keeps the old configuration), SIGTERM and SIGINT stop gracefully."""

import os
import signal
import socket
import threading
import time

import pytest

from conftest import build_request, get, read_response, tls_connect, wait_for


def script_name(gw, target):
    r = get(gw, target)
    assert r.status == 200, r
    return r.vars["SCRIPT_NAME"]


def reloaded(gw, i):
    r = get(gw, f"/new{i}/x")
    return (r.status == 200 and r.vars["SCRIPT_NAME"] == f"/new{i}"
            and r.vars["GENERATION"] == str(i))


def test_reload_under_load(gw):
    stop = threading.Event()
    ok = [0]
    failures = []

    def client():
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                r = get(gw, "/app/load")
                if r.status == 200 and r.vars.get("PATH_INFO") == "/load":
                    ok[0] += 1
                else:
                    failures.append(repr(r)[:300])
            except Exception as exc:
                failures.append(repr(exc))

    assert script_name(gw, "/new1/x") == ""
    t = threading.Thread(target=client, daemon=True)
    t.start()
    try:
        time.sleep(0.5)
        for i in (1, 2, 3):
            gw.site["locations"].append({"path": f"/new{i}/", "backend": "app"})
            gw.config["backends"]["app"]["params"] = {"GENERATION": str(i)}
            gw.write_config()
            gw.reload()
            # Every worker has the new configuration: several requests on
            # new connections in a row all see it.
            wait_for(lambda: all(reloaded(gw, i) for _ in range(4)), 5,
                     what=f"location /new{i}/ after reload {i}")
            time.sleep(0.7)

        before = len(gw.error_log())
        gw.write_config(gw.config_text() + "bogus_key = 1;\n")
        gw.reload()
        base = os.path.basename(gw.conf_path)
        wait_for(lambda: ("bogus_key" in gw.error_log()[before:]
                          or base in gw.error_log()[before:]), 5,
                 what="the failed reload in the error log")
        time.sleep(0.7)
        # The old configuration keeps serving.
        assert gw.running()
        for _ in range(4):
            assert reloaded(gw, 3)
        time.sleep(0.5)
    finally:
        stop.set()
        t.join(40)
    assert not t.is_alive()
    assert failures == []
    assert ok[0] >= 20, ok[0]
    gw.write_config()
    gw.stop()


def test_sigterm_lets_request_in_flight_finish(gw):
    result = {}

    def slow():
        try:
            result["r"] = get(gw, "/app/slow?sleep=1000")
        except Exception as exc:
            result["e"] = exc

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    time.sleep(0.4)
    gw.proc.send_signal(signal.SIGTERM)
    t.join(15)
    assert not t.is_alive()
    assert "e" not in result, result.get("e")
    r = result["r"]
    assert r.status == 200, r
    assert r.vars["PATH_INFO"] == "/slow"
    rc = gw.proc.wait(timeout=15)
    assert rc == 0, gw.diagnostics()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", gw.https_port), timeout=2).close()


def test_sigterm_does_not_wait_for_idle_keepalive(gw):
    with tls_connect(gw) as s, s.makefile("rb") as rf:
        s.sendall(build_request("GET", "/app/idle"))
        assert read_response(rf).status == 200
        started = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        rc = gw.proc.wait(timeout=15)
        elapsed = time.monotonic() - started
    assert rc == 0, gw.diagnostics()
    # shutdown_timeout is 5 s: an idle connection is no request in flight.
    assert elapsed < 4, elapsed


def test_sigint_stops(gw):
    assert get(gw, "/app/").status == 200
    gw.proc.send_signal(signal.SIGINT)
    rc = gw.proc.wait(timeout=15)
    assert rc == 0, gw.diagnostics()


def test_sigterm_exit_code(gw):
    assert get(gw, "/app/").status == 200
    gw.stop()


def test_twenty_reloads_under_load_lose_nothing(gw):
    """Issue 8: 20 SIGHUPs while clients run, new connections and kept
    ones alike: zero failed requests, zero refused connections."""
    stop = threading.Event()
    counts = {"ok": 0}
    failures = []

    def new_connections():
        while not stop.is_set():
            try:
                r = get(gw, "/app/load")
                if r.status == 200:
                    counts["ok"] += 1
                else:
                    failures.append(r.status)
            except Exception as exc:
                failures.append(repr(exc))

    threads = [threading.Thread(target=new_connections, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(20):
            gw.config["backends"]["app"]["params"] = {"GENERATION": str(i)}
            gw.write_config()
            gw.reload()
            time.sleep(0.25)
        wait_for(lambda: get(gw, "/app/x").vars.get("GENERATION") == "19", 10,
                 what="the 20th configuration")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    print(f"\n[20 reloads: {counts['ok']} requests, {len(failures)} failed]")
    assert failures == [], failures[:5]
    assert counts["ok"] >= 50
    assert "reload failed" not in gw.error_log()
