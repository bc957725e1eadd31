"""Hostile clients (bounded in time): while each misbehaves, a well-behaved
client beside it keeps getting answers, and the gateway's memory stays
bounded (the peak RSS of master and workers is printed)."""

import os
import socket
import ssl
import threading
import time

import pytest

from conftest import (build_request, client_context, get, read_final_response, tls_connect,
                      wait_for)
from test_failures import gateway_pids, rss_kib


class Watch:
    """Runs good requests and samples RSS in the background."""

    def __init__(self, gw):
        self.gw, self.failures, self.ok, self.peak = gw, [], 0, 0
        self.pids = gateway_pids(gw)
        self.base = rss_kib(self.pids)
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run)

    def run(self):
        while not self.stop.is_set():
            try:
                r = get(self.gw, "/app/good")
                if r.status == 200:
                    self.ok += 1
                else:
                    self.failures.append(r.status)
            except Exception as e:
                self.failures.append(repr(e))
            self.peak = max(self.peak, rss_kib(self.pids))
            time.sleep(0.05)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        # The good client must have been answered a few times meanwhile.
        deadline = time.monotonic() + 15
        while self.ok < 3 and not self.failures and time.monotonic() < deadline:
            time.sleep(0.05)
        self.stop.set()
        self.t.join(30)

    def check(self, name, bound_kib=64 * 1024):
        growth = self.peak - self.base
        print(f"\n[{name}: {self.ok} good requests, peak RSS {self.peak} KiB "
              f"(+{growth} KiB)]")
        assert not self.failures, self.failures[:5]
        assert self.ok >= 3
        assert growth < bound_kib, growth


def in_threads(fn, n=8, timeout=60):
    """Runs fn in n threads at once and waits for them (bounded)."""
    ts = [threading.Thread(target=fn) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout)


def test_slowloris(gw, capsys):
    socks = []
    with Watch(gw) as w:
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", gw.http_port), timeout=5)
            socks.append(s)
        head = b"GET /app/ HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 30
        deadline = time.monotonic() + 3
        i = 0
        while time.monotonic() < deadline and i < len(head):
            for s in socks:
                try:
                    s.send(head[i:i + 1])
                except OSError:
                    pass
            i += 1
            time.sleep(0.1)
    for s in socks:
        s.close()
    with capsys.disabled():
        w.check("slowloris, 200 connections")


@pytest.fixture
def short_send_gw(make_gateway, app):
    def configure(gw):
        gw.config["limits"]["send_timeout"] = 2
    return make_gateway(app.address, configure)


def test_client_that_never_reads(short_send_gw, capsys):
    """Responses are not buffered beyond the flow-control window: a client
    that never reads holds its application connection until send_timeout,
    and others wait that long (the good client's answers come late, not
    never)."""
    gw = short_send_gw
    socks = []
    with Watch(gw) as w:
        # Each holds one of the application's two kept connections for
        # send_timeout (2 s here) at a time; the good client queues behind.
        for _ in range(4):
            s = tls_connect(gw)
            s.sendall(build_request("GET", "/app/?size=20000000", f"localhost:{gw.https_port}",
                                    [], None))
            socks.append(s)
        time.sleep(3)
    for s in socks:
        s.close()
    with capsys.disabled():
        w.check("4 clients never reading 20 MB responses")


@pytest.fixture
def roomy_gw(make_gateway, app):
    def configure(gw):
        gw.config["limits"]["max_connections"] = 5000     # per worker
    return make_gateway(app.address, configure)


def sockets_held(pids):
    """Sockets open in the given processes (the gateway's side of each
    connection, plus a few listeners and pipes)."""
    n = 0
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    n += 1
            except OSError:
                pass
    return n


def test_five_thousand_idle_connections(roomy_gw, capsys):
    """5,000 idle connections at once: 1,000 TLS keep-alive connections,
    each after one answered request, and 4,000 that connected and said
    nothing. All are held by the workers, the good client is served, and
    memory stays bounded."""
    gw = roomy_gw
    ctx = client_context(gw.pki)
    socks = []
    with Watch(gw) as w:
        for _ in range(1000):
            s = tls_connect(gw, ctx=ctx)
            s.sendall(build_request("GET", "/app/?size=16", f"localhost:{gw.https_port}",
                                    [], None))
            with s.makefile("rb") as f:
                assert read_final_response(f).status == 200
            socks.append(s)
        for _ in range(4000):
            socks.append(socket.create_connection(("127.0.0.1", gw.http_port), timeout=5))
        held = wait_for(lambda: (n := sockets_held(w.pids)) >= 5000 and n, 20,
                        what="5,000 connections held by the gateway")
        time.sleep(1)
        w.peak = max(w.peak, rss_kib(w.pids))
    for s in socks:
        s.close()
    with capsys.disabled():
        print(f"\n[{held} sockets held by master and workers]")
        w.check("5,000 idle connections (1,000 TLS)")


def test_slow_post_bodies(gw, capsys):
    """100 uploads announcing 10,000 bytes and sending a byte every 0.1 s:
    none holds an application connection (a body is gathered before the
    application is asked), the good client is served beside them, memory
    stays bounded."""
    socks = []
    with Watch(gw) as w:
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", gw.http_port), timeout=5)
            s.sendall(build_request("POST", "/app/?echo", "localhost", [
                ("Content-Length", "10000"), ("Content-Type", "application/octet-stream")],
                None))
            socks.append(s)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            for s in socks:
                try:
                    s.send(b"x")
                except OSError:
                    pass
            time.sleep(0.1)
    for s in socks:
        s.close()
    with capsys.disabled():
        w.check("100 slow POST bodies")


def test_oversized_headers(gw, capsys):
    """Requests with 64 KiB of headers (max_header_size is 16 KiB) from 8
    threads: each is answered 431 and closed; nobody else notices."""
    statuses = []
    big = [("X-Big-%d" % i, "v" * 4000) for i in range(16)]

    def send_big():
        for _ in range(25):
            try:
                r = get(gw, "/app/big", headers=big)
                statuses.append(r.status)
            except (ConnectionResetError, BrokenPipeError) as e:
                statuses.append(repr(e))

    with Watch(gw) as w:
        in_threads(send_big)
    assert len(statuses) == 200
    # The 431 may be cut by the close while the client still sends; never
    # anything else.
    assert statuses.count(431) >= 100, statuses[:5]
    assert set(statuses) - {431} <= {repr(ConnectionResetError(104, "Connection reset by peer")),
                                     repr(BrokenPipeError(32, "Broken pipe"))}, set(statuses)
    with capsys.disabled():
        w.check("200 requests with 64 KiB of headers")


def test_garbage_and_plain_http_on_the_tls_port(gw, capsys):
    """Each is refused at once (an alert, then the close). The garbage
    starts with a byte that is no TLS record type: random bytes with the
    high bit set would read as an SSLv2 hello announcing more than was sent,
    which waits for handshake_timeout instead."""
    garbage = b"\x00" + os.urandom(4095)
    with Watch(gw) as w:
        for payload in (garbage, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n") * 20:
            s = socket.create_connection(("127.0.0.1", gw.https_port), timeout=5)
            s.sendall(payload)
            s.settimeout(5)
            t = time.monotonic()
            try:
                while s.recv(4096):
                    pass
            except ConnectionResetError:
                pass
            assert time.monotonic() - t < 2, "not refused at once"
            s.close()
    with capsys.disabled():
        w.check("garbage and plain HTTP on the TLS port")


def test_handshake_flood(gw, capsys):
    errors = []

    def flood():
        for _ in range(30):
            try:
                tls_connect(gw).close()
            except Exception as e:
                errors.append(repr(e))

    with Watch(gw) as w:
        in_threads(flood)
    assert not errors, errors[:3]
    with capsys.disabled():
        w.check("240 handshakes from 8 threads")


def test_a_thousand_pipelined_requests(gw):
    reqs = b"".join(build_request("GET", f"/app/{i}", f"localhost:{gw.https_port}", [], None)
                    for i in range(1000))
    with tls_connect(gw, timeout=60) as s:
        sender = threading.Thread(target=s.sendall, args=(reqs,))
        sender.start()
        f = s.makefile("rb")
        for i in range(1000):
            r = read_final_response(f, "GET")
            assert r.status == 200
            assert r.vars["PATH_INFO"] == f"/{i}"
        sender.join(30)
