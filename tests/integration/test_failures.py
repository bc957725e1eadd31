"""The application failing or crawling, and clients crawling: a response
cut mid-body stays cut (never completed or padded), and memory stays
bounded while a slow client reads 100 MiB from a fast application."""

import os
import socket
import subprocess
import time

from conftest import build_request, get, tls_connect, wait_for


def test_cut_mid_response_is_not_completed(gw):
    with tls_connect(gw) as s:
        s.sendall(build_request("GET", "/app/?size=1000000&cut=300000",
                                f"localhost:{gw.https_port}", [], None))
        data = b""
        s.settimeout(10)
        while True:
            try:
                b = s.recv(65536)
            except (ConnectionResetError, OSError):
                break
            if not b:
                break
            data += b
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head[:40]
    assert b"Transfer-Encoding: chunked" in head
    # The last chunk never comes: the client can tell the response is cut.
    assert not body.endswith(b"0\r\n\r\n")
    assert len(body) < 1000000
    # And the gateway goes on serving.
    assert get(gw, "/app/").status == 200


def test_cut_with_content_length_is_not_padded(gw):
    r = subprocess.run(["curl", "-sS", "--cacert", gw.pki.ca_chain, "-o", "/dev/null",
                        "-w", "%{http_code} %{size_download}",
                        f"https://localhost:{gw.https_port}/app/?size=500000&length&cut=100000"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0, "curl saw a complete response"
    code, size = r.stdout.split()
    assert code == "200" and int(size) < 500000


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def gateway_pids(gw):
    out = subprocess.run(["pgrep", "-f", gw.conf_path], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_slow_client_large_response_memory_bounded(gw):
    size = 100 * 1024 * 1024
    pids = gateway_pids(gw)
    assert len(pids) >= 2
    base = rss_kib(pids)
    peak = base
    got = 0
    with tls_connect(gw, timeout=30) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(build_request("GET", f"/app/?size={size}&length",
                                f"localhost:{gw.https_port}", [], None))
        deadline = time.monotonic() + 60
        slow_until = time.monotonic() + 3
        while got < size and time.monotonic() < deadline:
            if time.monotonic() < slow_until:
                b = s.recv(4096)      # a crawling client ...
                time.sleep(0.01)
                peak = max(peak, rss_kib(pids))
            else:
                b = s.recv(1 << 20)   # ... that then reads the rest
            if not b:
                break
            got += len(b)
        peak = max(peak, rss_kib(pids))
    assert got > size, f"only {got} bytes"   # head + body
    growth = peak - base
    print(f"gateway RSS: base {base} KiB, peak {peak} KiB, growth {growth} KiB")
    # Bounded by the flow-control buffers, not by the 100 MiB response.
    assert growth < 16 * 1024, f"RSS grew by {growth} KiB"
