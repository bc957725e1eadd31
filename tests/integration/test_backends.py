"""The FastCGI side: the application's status and headers pass through,
its stderr reaches the error log, and an application that is down,
crashes, answers garbage or is too slow gives 502 or 504."""

import time

from conftest import App, assert_works, get, wait_for


def test_status_and_headers_pass_through(shared_gw):
    r = get(shared_gw, "/app/?status=201&header=X-App:%20yes&cookie")
    assert r.status == 201, r
    assert r.reason == "Created"
    assert r.header("X-App") == "yes"
    assert r.header_all("Set-Cookie") == ["a=b"]
    assert r.header("Content-Type") == "text/plain"
    assert r.header("Status") is None
    r = get(shared_gw, "/app/?status=404")
    assert r.status == 404, r
    assert b"QUERY_STRING=status=404\n" in r.body


def test_json_output(shared_gw):
    r = get(shared_gw, "/app/j?json", headers=[("X-Quote", 'say "hi" \\ there')])
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/json"
    v = r.json()
    assert v["PATH_INFO"] == "/j"
    assert v["HTTP_X_QUOTE"] == 'say "hi" \\ there'


def test_app_stderr_goes_to_error_log(shared_gw):
    r = get(shared_gw, "/app/?stderr=hello-from-the-app")
    assert r.status == 200, r
    wait_for(lambda: "hello-from-the-app" in shared_gw.error_log(), 5,
             what="the application's stderr in the error log")


def test_app_stopped_502_then_started_200(gw, app):
    assert get(gw, "/app/before").status == 200
    app.stop()
    for i in range(4):  # new connections, so both workers answer
        r = get(gw, f"/app/down{i}")
        assert r.status == 502, r
        assert b"502" in r.body
    app.start()
    for i in range(6):
        r = get(gw, f"/app/up{i}")
        assert r.status == 200, r
        assert r.vars["PATH_INFO"] == f"/up{i}"
    assert gw.running()


def test_crash_is_502(gw, app):
    r = get(gw, "/app/?crash")
    assert r.status == 502, r
    assert b"502" in r.body
    app.restart()
    assert_works(gw)


def test_garbage_is_502(gw):
    r = get(gw, "/app/?garbage")
    assert r.status == 502, r
    assert b"502" in r.body
    assert_works(gw)


def test_slow_app_is_504(make_gateway, app):
    def configure(g):
        g.config["backends"]["slow"] = {"connect": [app.address], "timeout": 1}
        g.site["locations"].append({"path": "/slow/", "backend": "slow"})
    gw = make_gateway(app.address, configure)
    started = time.monotonic()
    r = get(gw, "/slow/?sleep=3000")
    elapsed = time.monotonic() - started
    assert r.status == 504, r
    assert b"504" in r.body
    assert 0.9 <= elapsed < 2.9, elapsed
    # A quick answer on the same backend is fine.
    r = get(gw, "/slow/quick")
    assert r.status == 200, r
    assert r.vars["SCRIPT_NAME"] == "/slow"
    assert_works(gw)


def test_tcp_backend(make_gateway, printenv_bin, tmp_path):
    tcp_app = App(printenv_bin, tmp_path / "tcpapp", kind="tcp").start()
    try:
        gw = make_gateway(tcp_app.address)
        r = get(gw, "/app/tcp?t=1")
        assert r.status == 200, r
        v = r.vars
        assert v["PATH_INFO"] == "/tcp"
        assert v["QUERY_STRING"] == "t=1"
        tcp_app.stop()
        assert get(gw, "/app/tcp").status == 502
        tcp_app.start()
        assert get(gw, "/app/tcp").status == 200
    finally:
        tcp_app.stop()


def test_backend_params(make_gateway, app):
    def configure(g):
        g.config["backends"]["app"]["params"] = {"APP_ENV": "test", "OTHER": "x y"}
    gw = make_gateway(app.address, configure)
    r = get(gw, "/app/")
    assert r.status == 200, r
    assert r.vars["APP_ENV"] == "test"
    assert r.vars["OTHER"] == "x y"
