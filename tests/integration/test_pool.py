"""Backends with several addresses: requests spread over the live ones, a
dead address is passed over (and logged), and a request is only retried
elsewhere when nothing of it was sent."""

import pytest

from conftest import App, free_port, get, wait_for


@pytest.fixture
def two_apps(printenv_bin, tmp_path):
    a = App(printenv_bin, tmp_path / "a", processes=2).start()
    b = App(printenv_bin, tmp_path / "b", kind="tcp", processes=2).start()
    yield a, b
    a.stop()
    b.stop()


def pid_of(gw):
    r = get(gw, "/app/?environ")
    assert r.status == 200, r
    return dict(l.split("=", 1) for l in r.body.decode().splitlines() if "=" in l)["PID"]


def test_requests_spread_over_addresses(make_gateway, two_apps):
    a, b = two_apps

    def both(gw):
        # New connections choose an address; kept ones stay where they are.
        gw.config["backends"]["app"]["connect"] = [a.address, b.address]
        gw.config["backends"]["app"]["keep_connections"] = False
    gw = make_gateway(a.address, both)
    seen = {pid_of(gw) for _ in range(40)}
    pids_a = {str(p.pid) for p in a.procs}
    pids_b = {str(p.pid) for p in b.procs}
    assert seen & pids_a and seen & pids_b, (seen, pids_a, pids_b)


def test_dead_address_is_passed_over(make_gateway, two_apps):
    a, _ = two_apps
    dead = f"tcp:127.0.0.1:{free_port()}"

    def with_dead(gw):
        gw.config["backends"]["app"]["connect"] = [dead, a.address]
    gw = make_gateway(a.address, with_dead)
    for _ in range(20):
        r = get(gw, "/app/x")
        assert r.status == 200, r
    wait_for(lambda: "is down for" in gw.error_log(), 5, what="the down address in the log")
    # Passed over: one "down" line per worker at most, not one per request.
    assert gw.error_log().count("is down for") <= 2


def test_all_addresses_dead_gives_502(make_gateway, two_apps):
    dead1 = f"tcp:127.0.0.1:{free_port()}"
    dead2 = f"unix:/nonexistent/dir/app.sock"

    def dead(gw):
        gw.config["backends"]["app"]["connect"] = [dead1, dead2]
    gw = make_gateway(dead1, dead)
    for _ in range(3):
        assert get(gw, "/app/").status == 502
