"""Scrape latency of ``allsmi api`` while idle clients hold its connections
(docs/architecture.md §3.2).

One ``allsmi api -i 1`` on loopback; SCRAPES sequential ``GET /metrics``, each on a fresh
connection (``Connection: close``, read to the end), timed from connect to the last byte.
Three floods, in one run, each from a separate flooder process (this script again, with
``--flood``) so that its work is not the scraper's:

- none: the reference;
- silent: FLOOD connections opened at once that never send a byte; the scrapes start as soon
  as all are connected, while the server is still going through its listen backlog;
- reconnecting: RECONNECTING silent connections (the server's slot count) that reconnect as
  soon as the server closes them.

For each: scrapes answered, p50 / p99 / worst latency, and how many flood connections the
server closed while the scrapes ran. A scrape waits at most SCRAPE_TIMEOUT_S, a flood
FLOOD_BUDGET_S in all (enough to see the old behaviour: a scrape waiting for a silent client's
10 s header timeout). Run: ``.venv/bin/python bench/bench_idle_flood.py [scrapes]`` (default
200). Prints a table; asserts nothing (docs/architecture.md §9).
"""

from __future__ import annotations

import resource
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

ALLSMI: Final = str(Path(sys.executable).with_name("allsmi"))
SCRAPES: Final = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "--flood" else 200
FLOOD: Final = 2000
RECONNECTING: Final = 256
SCRAPE_TIMEOUT_S: Final = 40.0
FLOOD_BUDGET_S: Final = 90.0  # all the scrapes of one flood; the rest are not sent
FLOODER_MAX_S: Final = 300.0  # a flooder ends by itself after this, whatever happens
REQUEST: Final = b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


def raise_open_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(hard, max(needed, soft))
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# --- the flooder (a child process) ------------------------------------------------------


def flooder(mode: str, port: int, count: int) -> None:
    """Open ``count`` silent connections, say ``ready``, then watch them until stdin closes:
    count the ones the server closes and, in ``reconnect`` mode, open a new one for each.
    Prints ``closed N`` at the end."""
    raise_open_file_limit(count + 256)
    selector = selectors.DefaultSelector()

    def open_one() -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)

    for _ in range(count):
        open_one()
    selector.register(sys.stdin, selectors.EVENT_READ)
    print("ready", flush=True)
    closed = 0
    deadline = time.monotonic() + FLOODER_MAX_S
    while time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1.0):
            if key.fileobj is sys.stdin:
                print(f"closed {closed}", flush=True)
                return
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                if sock.recv(4096):
                    continue
            except BlockingIOError:
                continue
            except OSError:
                pass  # reset: closed too
            selector.unregister(sock)
            sock.close()
            closed += 1
            if mode == "reconnect":
                open_one()
    print(f"closed {closed}", flush=True)


# --- the scraper ------------------------------------------------------------------------


def scrape(port: int) -> float | None:
    """Seconds from connect to the whole answer of one ``/metrics``; None if not a 200."""
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=SCRAPE_TIMEOUT_S) as sock:
            sock.sendall(REQUEST)
            answer = bytearray()
            while chunk := sock.recv(65536):
                answer += chunk
    except OSError:
        return None
    ok = answer.startswith(b"HTTP/1.1 200 ")
    return time.perf_counter() - started if ok else None


def scrapes(port: int) -> tuple[list[float], int]:
    """(latencies of the answered scrapes, scrapes that failed)."""
    times: list[float] = []
    failed = 0
    budget_end = time.monotonic() + FLOOD_BUDGET_S
    for _ in range(SCRAPES):
        if time.monotonic() > budget_end:
            break
        seconds = scrape(port)
        if seconds is None:
            failed += 1
        else:
            times.append(seconds)
    return times, failed


def start_api() -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    api = subprocess.Popen(
        [ALLSMI, "api", "--port", str(port), "-i", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while scrape(port) is None:
        if time.monotonic() > deadline or api.poll() is not None:
            raise SystemExit("allsmi api did not start")
        time.sleep(0.1)
    return api, port


def run_flood(mode: str, port: int) -> tuple[list[float], int, str]:
    """The scrapes under one flood: (latencies, failures, flood connections closed)."""
    if mode == "none":
        times, failed = scrapes(port)
        return times, failed, "-"
    count = FLOOD if mode == "silent" else RECONNECTING
    flood = subprocess.Popen(
        [sys.executable, __file__, "--flood", mode, str(port), str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert flood.stdin is not None and flood.stdout is not None
    try:
        if flood.stdout.readline().strip() != "ready":
            raise SystemExit(f"the {mode} flooder did not start")
        times, failed = scrapes(port)
        flood.stdin.close()
        closed = flood.stdout.readline().strip().removeprefix("closed ")
        flood.wait(timeout=60)
    finally:
        if flood.poll() is None:
            flood.kill()
            flood.wait()
    return times, failed, closed


def percentile(values: list[float], pct: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def main() -> None:
    api, port = start_api()
    rows = []
    try:
        for mode in ("none", "silent", "reconnect"):
            times, failed, closed = run_flood(mode, port)
            rows.append((mode, times, failed, closed))
            time.sleep(1.0)  # the server closes what is left of the flood
    finally:
        api.send_signal(signal.SIGTERM)
        try:
            api.wait(timeout=30)
        except subprocess.TimeoutExpired:
            api.kill()
            api.wait()
    print(
        f"allsmi api /metrics, {SCRAPES} sequential scrapes on fresh connections per flood "
        f"(silent = {FLOOD} connections, reconnect = {RECONNECTING})"
    )
    print(
        f"  {'flood':<14}{'answered':>9}{'failed':>8}{'p50 ms':>9}{'p99 ms':>9}{'worst ms':>10}"
        f"{'flood closed':>14}"
    )
    for mode, times, failed, closed in rows:
        ms = [t * 1000 for t in times]
        worst = max(ms) if ms else float("nan")
        p50 = statistics.median(ms) if ms else float("nan")
        print(
            f"  {mode:<14}{len(ms):>9}{failed:>8}{p50:>9.1f}{percentile(ms, 99):>9.1f}"
            f"{worst:>10.1f}{closed:>14}"
        )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--flood":
        flooder(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
