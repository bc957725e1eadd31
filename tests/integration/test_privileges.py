"""Started as root, certgate binds and reads its keys, then the processes
that talk to clients run as `user`: not root, no way back, and unable to
open the private key afterwards."""

import os
import shutil
import subprocess

import tempfile

import pytest

from conftest import App, get, wait_for


@pytest.fixture
def open_app(printenv_bin):
    """An application whose socket `nobody` can reach: pytest's own temporary
    directories are closed to other users."""
    top = tempfile.mkdtemp(prefix="certgate-priv-", dir="/tmp")
    os.chmod(top, 0o755)
    a = App(printenv_bin, os.path.join(top, "app")).start()
    yield a
    a.stop()
    shutil.rmtree(top, ignore_errors=True)


def workers_of(gw):
    """The master's children that are workers (not spawned applications)."""
    out = subprocess.run(["pgrep", "-P", str(gw.proc.pid)], capture_output=True, text=True)
    kids = [int(p) for p in out.stdout.split()]
    return [p for p in kids if "certgate" in open(f"/proc/{p}/cmdline", "rb").read().decode(
        "latin-1")]


def ids(pid):
    uid = gid = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                uid = [int(x) for x in line.split()[1:]]
            if line.startswith("Gid:"):
                gid = [int(x) for x in line.split()[1:]]
    return uid, gid


def test_workers_run_as_user_and_cannot_read_the_key(make_gateway, open_app, tmp_path):
    assert os.getuid() == 0, "this test needs root, as the suite runs in CI"
    key = tmp_path / "server.key"

    def as_nobody(gw):
        shutil.copy(gw.pki.server_key, key)
        os.chmod(key, 0o600)                 # root's alone
        gw.config["user"] = "nobody"
        gw.config["group"] = "nogroup"
        gw.site["key"] = str(key)
    gw = make_gateway(open_app.address, as_nobody)
    assert get(gw, "/app/").status == 200    # the key was read at start, as root
    workers = wait_for(lambda: workers_of(gw), 5, what="the workers")
    nobody = int(subprocess.run(["id", "-u", "nobody"], capture_output=True,
                                text=True).stdout)
    for pid in workers:
        uid, gid = ids(pid)
        assert uid == [nobody] * 4, uid      # real, effective, saved, filesystem
        assert gid[0] != 0 and gid[1] != 0, gid
    # The master keeps root (it spawns applications as their users).
    assert ids(gw.proc.pid)[0][0] == 0
    # A process with a worker's credentials cannot open the key file.
    r = subprocess.run(["setpriv", f"--reuid={nobody}", f"--regid={ids(workers[0])[1][0]}",
                        "--clear-groups", "cat", str(key)], capture_output=True)
    assert r.returncode != 0 and b"Permission denied" in r.stderr


def status_fields(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def test_workers_are_confined(make_gateway, open_app):
    """A worker runs under a seccomp filter with no_new_privs, and is not
    dumpable: its /proc files belong to root, not to the worker's user, so no
    process of that user can read its memory or trace it."""
    def as_nobody(gw):
        gw.config["user"] = "nobody"
        gw.config["group"] = "nogroup"
    gw = make_gateway(open_app.address, as_nobody)
    assert get(gw, "/app/").status == 200
    workers = wait_for(lambda: workers_of(gw), 5, what="the workers")
    nobody = int(subprocess.run(["id", "-u", "nobody"], capture_output=True,
                                text=True).stdout)
    for pid in workers:
        st = status_fields(pid)
        assert st["Seccomp"].strip() == "2", st["Seccomp"]         # filter mode
        assert st["NoNewPrivs"].strip() == "1"
        assert int(st["Uid"].split()[0]) == nobody
        assert os.stat(f"/proc/{pid}/mem").st_uid == 0             # not dumpable
        r = subprocess.run(["setpriv", f"--reuid={nobody}", f"--regid={nobody}",
                            "--clear-groups", "cat", f"/proc/{pid}/environ"],
                           capture_output=True)
        assert r.returncode != 0 and b"Permission denied" in r.stderr, r
    # The master, which spawns applications, is not confined.
    assert status_fields(gw.proc.pid)["Seccomp"].strip() == "0"
    assert get(gw, "/app/").status == 200
