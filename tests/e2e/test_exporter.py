"""``allsmi api`` as a user runs it (docs/architecture.md §3.2): scraped by a real
Prometheus, linted by the real ``promtool``, subscribed to over ``/events``, guarded by a
token, bounded, stopped.

Prometheus and promtool come from the Debian ``prometheus`` package (scripts/setup-system);
our Prometheus runs on loopback ports of its own with a temporary data directory.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import anyio
import attrs
import httpx
import psutil
import pytest

from allsmi.adapters import wire
from allsmi.adapters.network.endpoints import FrameEndpoints, FrameFeed
from allsmi.adapters.network.server import Request, Stream
from allsmi.adapters.prometheus.writer import render_metrics
from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.domain.model import SECTIONS, Cpu, Frame, Memory

from .conftest import assert_one_line_error, free_port, poll, run_allsmi, start_allsmi

TOKEN: Final = "s3cret"
# promtool's one complaint we accept: the `_count` suffix on all-smi's legacy gauge names,
# kept so dashboards built for all-smi keep working (docs/architecture.md §3.3).
LEGACY_COUNT_NAMES: Final = frozenset(
    f"all_smi_cpu_{kind}_count"
    for kind in ("core", "socket", "thread", "s_core", "p_core", "e_core", "gpu_core")
)
COUNT_LINT: Final = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*) non-histogram and non-summary metrics should not "
    r'have "_count" suffix$'
)


# --- helpers ---------------------------------------------------------------------------


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (run scripts/setup-system, or make test)")
    return found


def http() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=5.0)


def answers(url: str, proc: subprocess.Popen[Any]) -> bool:
    """Whether ``url`` answers 200; fails at once if ``proc`` died instead."""
    if proc.poll() is not None:
        pytest.fail(f"{proc.args!r} exited with {proc.returncode} before becoming ready")
    try:
        with http() as client:
            return client.get(url).status_code == 200
    except httpx.TransportError:
        return False


def start_api(
    *args: str, env: dict[str, str] | None = None, token: str | None = None
) -> tuple[subprocess.Popen[str], int]:
    """``allsmi api`` on a free loopback port, polled until ``/-/ready`` (asked with
    ``token`` when it needs one)."""
    port = free_port()
    proc = start_allsmi("api", "--port", str(port), *args, env=env)
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def ready() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"allsmi api exited {proc.returncode}: {proc.communicate()[1]}")
        try:
            with http() as client:
                return client.get(url(port, "/-/ready"), headers=headers).status_code == 200
        except httpx.TransportError:
            return False

    poll(ready, what="allsmi api /-/ready")
    return proc, port


def url(port: int, path: str) -> str:
    return f"http://127.0.0.1:{port}{path}"


def stop(proc: subprocess.Popen[str], timeout: float = 10.0) -> tuple[int, str]:
    """SIGTERM, then the exit status and what it wrote on stderr."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


@contextlib.contextmanager
def prometheus(tmp_path: Path, targets: list[str], *, honor_labels: bool = True) -> Iterator[int]:
    """Our own Prometheus scraping ``targets`` every second; yields its port, then stops it
    with SIGTERM (killed if it lingers) whatever happened. ``honor_labels``: keep the
    exporter's ``instance`` label (else Prometheus renames it ``exported_instance``)."""
    binary = tool("prometheus")
    port = free_port()
    data = tmp_path / "prometheus-data"
    data.mkdir()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: allsmi\n"
        f"    honor_labels: {str(honor_labels).lower()}\n"
        "    static_configs:\n"
        f"      - targets: [{', '.join(repr(t) for t in targets)}]\n"
    )
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        poll(lambda: answers(url(port, "/-/ready"), proc), timeout=60, what="prometheus ready")
        yield port
    except BaseException:
        print(log_path.read_text(errors="replace")[-4000:])  # shown by pytest on failure
        raise
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def prom_query(port: int, query: str) -> list[dict[str, Any]]:
    with http() as client:
        reply = client.get(url(port, "/api/v1/query"), params={"query": query})
    reply.raise_for_status()
    body = reply.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def promtool_complaints(text: str) -> list[str]:
    """What ``promtool check metrics`` says about ``text`` (read from stdin), line by line."""
    result = subprocess.run(
        [tool("promtool"), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    # 0: clean; 3: lint findings only. 1 would be a parse error: a broken exposition.
    assert result.returncode in (0, 3), lines
    return lines


def assert_only_legacy_count_lints(text: str) -> None:
    for line in promtool_complaints(text):
        match = COUNT_LINT.match(line)
        assert match is not None, f"promtool: {line}"
        assert match["name"] in LEGACY_COUNT_NAMES, f"promtool: {line}"


def listening_addresses(port: int) -> set[str]:
    """Local IPv4 addresses (dotted) with a socket in LISTEN on ``port``, from /proc/net/tcp."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        address, port_hex = fields[1].split(":")
        if fields[3] == "0A" and int(port_hex, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def raw_status(port: int, request: bytes) -> int:
    """Send ``request`` as is; the status code of the answer, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 "), answer[:200]
    return int(status_line.split()[1])


# --- (a) a real Prometheus scrapes us --------------------------------------------------


def test_a_real_prometheus_scrapes_the_exporter(tmp_path: Path) -> None:
    api, api_port = start_api("-i", "1")
    with http() as client:
        ours = client.get(url(api_port, "/metrics")).text
    hostname = re.search(r'all_smi_up\{instance="([^"]*)"', ours)
    assert hostname is not None, ours[:500]

    with prometheus(tmp_path, [f"127.0.0.1:{api_port}"]) as prom_port:
        found: dict[str, list[dict[str, Any]]] = {}

        def scraped() -> bool:
            for query in ("all_smi_cpu_utilization", "all_smi_memory_total_bytes"):
                found[query] = prom_query(prom_port, query)
            return all(found.values())

        poll(scraped, timeout=60, what="prometheus to hold our series")
        for query, series in found.items():
            for one in series:
                labels = one["metric"]
                assert labels["__name__"] == query
                assert labels["instance"] == hostname[1], labels
                assert labels["hostname"] == hostname[1], labels
                assert labels["index"] == "0", labels
                assert labels["job"] == "allsmi", labels
        (memory,) = found["all_smi_memory_total_bytes"]
        assert int(float(memory["value"][1])) == psutil.virtual_memory().total
        cpu = float(found["all_smi_cpu_utilization"][0]["value"][1])
        assert 0.0 <= cpu <= 100.0

        with http() as client:
            targets = client.get(url(prom_port, "/api/v1/targets")).json()
        (target,) = targets["data"]["activeTargets"]
        assert target["scrapeUrl"] == url(api_port, "/metrics")
        assert target["health"] == "up", target
        assert target["lastError"] == ""
    code, _ = stop(api)
    assert code == 0


# --- (b) promtool finds nothing but the legacy names -----------------------------------


def test_promtool_accepts_our_metrics_but_for_the_legacy_count_names() -> None:
    api, port = start_api("--processes")
    with http() as client:
        reply = client.get(url(port, "/metrics"))
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert_only_legacy_count_lints(reply.text)
    assert stop(api)[0] == 0


def hostile(frame: Frame) -> Frame:
    """``frame`` with quotes, backslashes and newlines in its free-text labels."""
    assert frame.gpus and frame.processes and frame.chassis
    gpu, *gpus = frame.gpus
    proc, *procs = frame.processes
    chassis, *rest = frame.chassis
    return attrs.evolve(
        frame,
        gpus=(attrs.evolve(gpu, name='NVIDIA "H200" \\ 141GB\nHBM3'), *gpus),
        processes=(
            attrs.evolve(proc, process_name='we"ird\\name\n', command='sh -c "echo \\"hi\\""'),
            *procs,
        ),
        chassis=(attrs.evolve(chassis, detail={**chassis.detail, 'Odd "Key"': "a\\b"}), *rest),
    )


def test_promtool_accepts_a_simulated_two_host_gpu_frame() -> None:
    sim = ClusterSimulator(ClusterSpec(nodes=2, gpus_per_node=4))
    sim.advance(3000)
    frame = hostile(sim.frame(1_700_000_000_000, SECTIONS))
    text = render_metrics(frame, version="0.0.0-test")
    for family in (
        "all_smi_gpu_utilization",
        "all_smi_gpu_power_consumption_watts",
        "all_smi_process_memory_used_bytes",
        "all_smi_memory_total_bytes",
    ):
        assert f"\n{family}{{" in text, family
    assert 'name="we\\"ird\\\\name\\n"' in text  # escaped as the format defines
    assert "node-02" in text  # both hosts
    assert_only_legacy_count_lints(text)


# --- (c) /events ------------------------------------------------------------------------


def test_events_stream_one_snapshot_per_collection() -> None:
    api, port = start_api("-i", "0.5")
    frames: list[Frame] = []
    event: str | None = None
    with http() as client, client.stream("GET", url(port, "/events")) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        deadline = time.monotonic() + 20
        for line in reply.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "snapshot":
                frame = wire.decode_line(line.removeprefix("data: "), len(frames) + 1)
                assert isinstance(frame, Frame)
                frames.append(frame)
            if len(frames) >= 3 or time.monotonic() > deadline:
                break
    assert len(frames) >= 2, frames
    times = [frame.t_ms for frame in frames]
    assert times == sorted(set(times)), times  # strictly increasing
    assert all(frame.memory for frame in frames)
    assert stop(api)[0] == 0


def test_events_send_keep_alives_when_nothing_is_new() -> None:
    async def main() -> None:
        feed = FrameFeed()
        endpoints = FrameEndpoints(feed, version="test", keepalive_s=0.2)
        events = endpoints.events()
        try:
            with anyio.fail_after(5):
                started = anyio.current_time()
                assert await anext(events) == b": keep-alive\n\n"  # nothing published yet
                assert anyio.current_time() - started >= 0.15

                cpu = Cpu(host_id="h", hostname="h", instance="h", utilization=12.5)
                feed.publish(Frame(t_ms=1_700_000_000_000, cpus=(cpu,)))
                first = await anext(events)
                assert first.startswith(b"event: snapshot\nid: 2023-11-14T22:13:20")
                data = first.split(b"\ndata: ", 1)[1]
                assert data.endswith(b"\n\n") and data.count(b"\n") == 2
                decoded = wire.decode_line(data.strip(), 1)
                assert isinstance(decoded, Frame) and decoded.cpus == (cpu,)

                started = anyio.current_time()
                assert await anext(events) == b": keep-alive\n\n"
                assert anyio.current_time() - started >= 0.15

                memory = Memory(host_id="h", hostname="h", instance="h", total_bytes=1)
                feed.publish(Frame(t_ms=1_700_000_001_000, memory=(memory,)))
                second = wire.decode_line((await anext(events)).split(b"data: ")[1].strip(), 2)
                assert isinstance(second, Frame) and second.t_ms == 1_700_000_001_000
        finally:
            await events.aclose()

    anyio.run(main)


def test_a_scrape_is_answered_while_many_subscribers_are_held() -> None:
    """Streams are capped (64) below the connection bound: 130 never starve /metrics."""
    api, port = start_api("-i", "1")
    request = b"GET /events HTTP/1.1\r\nHost: t\r\n\r\n"
    with contextlib.ExitStack() as held:
        for _ in range(130):
            sock = held.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
            sock.sendall(request)
        with http() as client:
            scraped = client.get(url(port, "/metrics"), timeout=4.0)
        assert scraped.status_code == 200
    assert stop(api)[0] == 0


# --- (d) the bearer token ---------------------------------------------------------------


def assert_token_required(port: int) -> None:
    with http() as client:
        refused = client.get(url(port, "/metrics"))
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].lower().startswith("bearer")
        wrong = client.get(url(port, "/metrics"), headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        good = client.get(url(port, "/metrics"), headers={"Authorization": f"Bearer {TOKEN}"})
        assert good.status_code == 200
        assert "all_smi_memory_total_bytes" in good.text


def test_token_from_the_environment_is_required() -> None:
    api, port = start_api(env={"ALLSMI_TOKEN": TOKEN}, token=TOKEN)
    assert_token_required(port)
    code, err = stop(api)
    assert code == 0 and "(token required)" in err


def test_token_from_a_file_is_required(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    api, port = start_api("--token-file", str(token_file), token=TOKEN)
    assert_token_required(port)
    code, err = stop(api)
    assert code == 0 and "(token required)" in err


def test_an_empty_token_file_is_a_usage_error(tmp_path: Path) -> None:
    empty = tmp_path / "token"
    empty.write_text("  \n")
    result = run_allsmi("api", "--port", str(free_port()), "--token-file", str(empty))
    line = assert_one_line_error(result, 2)
    assert "empty" in line and str(empty) in line


# --- (e) loopback by default ------------------------------------------------------------


def test_binds_loopback_by_default() -> None:
    api, port = start_api()
    assert listening_addresses(port) == {"127.0.0.1"}
    code, err = stop(api)
    assert code == 0
    assert f"serving http://127.0.0.1:{port}/metrics" in err
    assert "warning" not in err


def test_binding_all_interfaces_without_a_token_warns() -> None:
    api, port = start_api("--bind", "0.0.0.0")
    assert listening_addresses(port) == {"0.0.0.0"}
    code, err = stop(api)
    assert code == 0
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1, err
    assert "0.0.0.0" in warnings[0] and "without a token" in warnings[0]


# --- (f) limits, (g) SIGTERM, (h) port in use ------------------------------------------


def test_too_many_headers_get_431() -> None:
    api, port = start_api()
    fields = b"".join(b"X-Filler-%d: v\r\n" % n for n in range(100))
    request = b"GET /metrics HTTP/1.1\r\nHost: t\r\n" + fields + b"\r\n"
    assert raw_status(port, request) == 431
    with http() as client:  # the server lives on
        assert client.get(url(port, "/metrics")).status_code == 200
    assert stop(api)[0] == 0


def test_a_64_kib_request_head_gets_431() -> None:
    api, port = start_api()
    request = b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"
    assert raw_status(port, request) == 431
    with http() as client:
        assert client.get(url(port, "/metrics")).status_code == 200
    assert stop(api)[0] == 0


def test_sigterm_exits_0_within_seconds() -> None:
    api, _ = start_api()
    started = time.monotonic()
    api.send_signal(signal.SIGTERM)
    api.communicate(timeout=10)
    assert api.returncode == 0
    assert time.monotonic() - started < 5


def test_a_port_in_use_is_one_clear_line() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_allsmi("api", "--port", str(port), timeout=30)
    line = assert_one_line_error(result, 1)
    assert f"127.0.0.1:{port}" in line and "in use" in line, line


def test_subscribers_are_counted_also_when_a_stream_is_never_pulled() -> None:
    async def main() -> None:
        endpoints = FrameEndpoints(FrameFeed(), version="test", max_subscribers=2)
        request = Request(method="HEAD", path="/events", query="", headers=())
        for _ in range(5):  # a HEAD gets the stream's headers; the server closes it unpulled
            stream = await endpoints.handle(request)
            assert isinstance(stream, Stream)
            await stream.chunks.aclose()  # type: ignore[attr-defined]
        assert endpoints.subscribers == 0
        held = [await endpoints.handle(request) for _ in range(3)]
        assert [type(h).__name__ for h in held] == ["Stream", "Stream", "Response"]

    anyio.run(main)
