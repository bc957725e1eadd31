"""Applications certgate spawns and supervises (a backend's `spawn`
block): the libfcgi socket on fd 0, a clean environment, stderr into the
error log, restarts after a crash, a reload that changes the block without
failing requests, and a stop that takes the children and socket along."""

import os
import re
import threading
import time

import pytest

from conftest import PRINTENV, get, wait_for


def environ_of(gw):
    r = get(gw, "/app/?environ")
    assert r.status == 200, r
    env = {}
    for line in r.body.decode().splitlines():
        k, _, v = line.partition("=")
        env[k] = v
    return env


def spawned(processes=2, environment=None, command=None, workdir="/"):
    def configure(gw):
        gw.config["backends"]["app"] = {
            "spawn": {
                "command": command or [PRINTENV],
                "processes": processes,
                "environment": environment or {"FOO": "bar"},
                "working_directory": workdir,
            },
            "timeout": 10,
        }
    return configure


def pids(gw, n=20):
    return {environ_of(gw)["PID"] for _ in range(n)}


def alive(pid):
    try:
        os.kill(int(pid), 0)
        return True
    except ProcessLookupError:
        return False


def test_spawned_app_serves_with_a_clean_environment(make_gateway, tmp_path):
    gw = make_gateway("unix:/unused", spawned(workdir=str(tmp_path)))
    env = environ_of(gw)
    assert env["FOO"] == "bar"
    assert "PATH" not in env and "HOME" not in env, env
    assert env["CWD"] == str(tmp_path)
    assert env["UID"] == "0"        # the tests' `user` is root
    r = get(gw, "/app/x?y=1")
    assert r.status == 200
    assert r.vars["PATH_INFO"] == "/x"
    assert len(pids(gw)) == 2


def test_fewer_processes_than_workers_do_not_stall(make_gateway):
    """One libfcgi process, two workers: a worker that kept its connection
    would hold the only process while the other worker's request waited for
    the kept connection's idle timeout (2 s). Such a backend's connections
    are not kept, so each request is served at once."""
    gw = make_gateway("unix:/unused", spawned(processes=1))
    assert gw.config["workers"] == 2
    slowest = 0.0
    for _ in range(12):
        t = time.monotonic()
        assert get(gw, "/app/").status == 200
        slowest = max(slowest, time.monotonic() - t)
    assert slowest < 1.0, f"a request waited {slowest:.2f} s"


def test_stderr_goes_to_the_error_log(make_gateway):
    cmd = ["/bin/sh", "-c", f"echo 'hello from the app' >&2; exec {PRINTENV}"]
    gw = make_gateway("unix:/unused", spawned(command=cmd))
    wait_for(lambda: re.search(r"backend app\[\d+\]: hello from the app", gw.error_log()), 5,
             what="the child's stderr line in the error log")
    assert get(gw, "/app/").status == 200


def test_crashed_child_is_restarted(make_gateway):
    gw = make_gateway("unix:/unused", spawned())
    before = pids(gw)
    assert get(gw, "/app/?crash").status == 502
    wait_for(lambda: "restarting in" in gw.error_log(), 5, what="the restart log line")
    wait_for(lambda: len(pids(gw)) == 2 and pids(gw) != before, 10,
             what="a new child beside the survivor")
    for _ in range(10):
        assert get(gw, "/app/").status == 200


def test_reload_with_changed_block_loses_no_request(make_gateway):
    gw = make_gateway("unix:/unused", spawned())
    old = pids(gw)
    failures, count = [], [0]
    stop = threading.Event()

    def load():
        deadline = time.monotonic() + 15
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                r = get(gw, "/app/?sleep=20")
                if r.status != 200:
                    failures.append(r.status)
            except Exception as e:      # a refused or cut request
                failures.append(repr(e))
            count[0] += 1

    t = threading.Thread(target=load)
    t.start()
    try:
        time.sleep(0.5)
        gw.config["backends"]["app"]["spawn"]["environment"] = {"FOO": "baz"}
        gw.write_config()
        gw.reload()
        wait_for(lambda: environ_of(gw)["FOO"] == "baz", 10, what="the new children")
        time.sleep(0.5)
    finally:
        stop.set()
        t.join(20)
    assert not failures, failures
    assert count[0] > 10
    wait_for(lambda: not any(alive(p) for p in old), 10, what="the old children to stop")
    assert pids(gw).isdisjoint(old)


def run_dir_socks():
    return {p for p in os.listdir("/run/certgate") if p.startswith("app-")} \
        if os.path.isdir("/run/certgate") else set()


def test_stop_takes_children_and_socket(make_gateway):
    before = run_dir_socks()
    gw = make_gateway("unix:/unused", spawned())
    children = pids(gw)
    socks = run_dir_socks() - before        # this gateway's own
    assert len(socks) == 1, socks
    gw.stop()
    wait_for(lambda: not any(alive(p) for p in children), 5, what="the children to exit")
    left = [p for p in os.listdir("/run/certgate") if p.startswith("app-")]
    assert not (set(socks) & set(left)), left


def test_survives_kill_9_of_a_child(make_gateway):
    gw = make_gateway("unix:/unused", spawned())
    victim = environ_of(gw)["PID"]
    os.kill(int(victim), 9)
    wait_for(lambda: not alive(victim), 5, what="the child to die")
    for _ in range(10):
        assert get(gw, "/app/").status == 200
    wait_for(lambda: len(pids(gw)) == 2, 10, what="a replacement child")
    assert victim not in pids(gw)


def test_crash_loop_delay_grows(make_gateway):
    def crashing(g):
        spawned(processes=1, command=["/bin/sh", "-c", "exit 3"])(g)
        g.config["backends"]["app"]["timeout"] = 2
    gw = make_gateway("unix:/unused", crashing)
    wait_for(lambda: gw.error_log().count("restarting in") >= 4, 10,
             what="four restarts")
    delays = [float(d) for d in re.findall(r"exited with 3; restarting in ([0-9.]+) s",
                                           gw.error_log())]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0], delays
    # The gateway itself is unharmed: with no process to accept them,
    # requests wait in the socket's backlog until `timeout`.
    assert get(gw, "/app/").status == 504
