"""The remote source against real exporters on loopback: each test starts ``serve_tcp`` servers
on ephemeral ports with its own handler (an all-smi page, our ``FrameEndpoints``, or a
misbehaving peer) and scrapes them with the real HTTP client ``build_remote_source`` wires."""

from __future__ import annotations

import collections
import gzip
import ssl
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Final

import anyio
import anyio.abc
import attrs
import orjson
import pytest
import trustme
from anyio.streams.tls import TLSListener

from allsmi.adapters.network.endpoints import FrameEndpoints, FrameFeed
from allsmi.adapters.network.scrape import (
    INLINE_PARSE_BYTES,
    MAX_BODY_BYTES,
    MAX_GPUS,
    MAX_OTHER_ROWS,
    MAX_PROCESSES,
    MAX_SERIES,
    RemoteConfig,
    RemoteSource,
    check_snapshot_density,
)
from allsmi.adapters.network.server import (
    Handler,
    Limits,
    Request,
    Response,
    Stream,
    serve_connection,
    serve_tcp,
)
from allsmi.adapters.prometheus.writer import render_metrics
from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.app.mock import GARBAGE, node_frame
from allsmi.app.remote import build_remote_source
from allsmi.domain.model import Frame

FIXTURE: Final = Path(__file__).parent.parent / "fixtures" / "all-smi-exporter-cpu-host.prom"
ALL_SMI_PAGE: Final = FIXTURE.read_bytes()
T0: Final = 1_776_513_600_000  # 2026-04-18T12:00:00Z
ALL_SECTIONS: Final = ("gpu", "cpu", "memory", "chassis", "process", "storage")
GPUS_PER_NODE: Final = 2
SLACK_S: Final = 1.5  # a shared CI machine may stall; the bounds tested are far below the hang
LIMITS: Final = Limits(write_timeout_s=1.0, keep_alive_timeout_s=5.0)
PROM_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


def simulated_node() -> Frame:
    """One simulated node's own frame, as its exporter publishes it (host_id ``node-01``)."""
    sim = ClusterSimulator(ClusterSpec(nodes=1, gpus_per_node=GPUS_PER_NODE, cores_per_node=4))
    reading = sim.node_frame_parts(0, T0)
    assert reading is not None
    return node_frame(reading, T0)


def exporter(frame: Frame | None = None) -> Handler:
    """Our exporter's routes (``/snapshot``, ``/metrics``…) over a feed holding ``frame``."""
    feed = FrameFeed()  # made inside the event loop: it holds an anyio.Event
    feed.publish(frame or simulated_node())
    return FrameEndpoints(feed, version="test").handle


@attrs.define
class Counted:
    """A handler that counts the requests it gets, per path, then answers with ``respond``."""

    respond: Handler
    paths: collections.Counter[str] = attrs.field(factory=collections.Counter)

    async def handle(self, request: Request) -> Response | Stream:
        self.paths[request.path] += 1
        return await self.respond(request)


def always(response: Response) -> Handler:
    async def handle(request: Request) -> Response | Stream:
        return response

    return handle


async def hang(request: Request) -> Response | Stream:
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


@asynccontextmanager
async def serving(*handlers: Handler, token: str | None = None) -> AsyncIterator[list[str]]:
    """One loopback server per handler; yields their scrape targets ``127.0.0.1:PORT``."""
    async with anyio.create_task_group() as tg:
        hosts = []
        for handler in handlers:
            serve = partial(serve_tcp, "127.0.0.1", 0, handler, LIMITS, token)
            port: int = await tg.start(serve)
            hosts.append(f"127.0.0.1:{port}")
        try:
            yield hosts
        finally:
            tg.cancel_scope.cancel()


def remote(
    hosts: Sequence[str],
    *,
    request_timeout_s: float = 3.0,
    cycle_deadline_s: float = 5.0,
    max_in_flight: int = 8,
    max_body_bytes: int = MAX_BODY_BYTES,
    token: str | None = None,
) -> RemoteSource:
    config = RemoteConfig(
        hosts=tuple(hosts),
        include=ALL_SECTIONS,
        request_timeout_s=request_timeout_s,
        cycle_deadline_s=cycle_deadline_s,
        max_in_flight=max_in_flight,
        max_body_bytes=max_body_bytes,
        token=token,
    )
    return build_remote_source(config)


def run(test: Callable[[], Awaitable[None]]) -> None:
    anyio.run(test)


def host_ids(frame: Frame) -> set[str]:
    """The hosts that have rows, in any section, in ``frame``."""
    ids = {row.host_id for row in frame.gpus or ()}
    ids |= {row.host_id for row in frame.cpus or ()}
    ids |= {row.host_id for row in frame.memory or ()}
    ids |= {row.host_id for row in frame.chassis or ()}
    ids |= {row.host_id for row in frame.processes or ()}
    return ids | {row.host_id for row in frame.storage or ()}


# --------------------------------------------------------------------------- endpoint choice


def test_an_all_smi_exporter_is_read_through_metrics_and_remembered() -> None:
    async def main() -> None:
        # all-smi's exporter answers every path with its text page, /snapshot included.
        allsmi = Counted(always(Response(200, ALL_SMI_PAGE, content_type=PROM_TYPE)))
        async with serving(allsmi.handle) as (host,):
            source = remote([host])
            try:
                frame = await source.collect(T0)
                assert frame.errors == ()
                assert frame.cpus is not None and len(frame.cpus) == 1
                assert frame.cpus[0].total_cores == 3
                assert frame.memory is not None and len(frame.memory) == 1
                assert frame.memory[0].total_bytes == 4_294_967_296
                assert frame.storage is not None and len(frame.storage) == 2
                assert host_ids(frame) == {host}
                assert allsmi.paths == {"/snapshot": 1, "/metrics": 1}

                again = await source.collect(T0 + 1000)
                assert again.errors == ()
                assert again.cpus is not None and again.cpus[0].total_cores == 3
                assert allsmi.paths == {"/snapshot": 1, "/metrics": 2}  # no second /snapshot
            finally:
                await source.aclose()

    run(main)


def test_our_exporter_is_read_through_snapshot_with_rows_rekeyed_to_the_target() -> None:
    async def main() -> None:
        node = Counted(exporter())
        async with serving(node.handle) as (host,):
            source = remote([host])
            try:
                for cycle in range(2):
                    frame = await source.collect(T0 + cycle * 1000)
                    assert frame.errors == ()
                    assert frame.source == "remote"
                    assert frame.gpus is not None and len(frame.gpus) == GPUS_PER_NODE
                    assert frame.cpus and frame.memory and frame.processes and frame.storage
                    assert host_ids(frame) == {host}  # not the node's own "node-01"
                    assert frame.gpus[0].hostname == "node-01"  # its name is kept
                assert node.paths == {"/snapshot": 2}  # never /metrics
            finally:
                await source.aclose()

    run(main)


def test_a_host_without_snapshot_falls_back_to_metrics_and_stays_there() -> None:
    page = render_metrics(simulated_node(), version="test").encode()

    async def old_exporter(request: Request) -> Response | Stream:
        if request.path == "/metrics":
            return Response(200, page, content_type=PROM_TYPE)
        return Response(404, b"not found\n")

    async def main() -> None:
        node = Counted(old_exporter)
        async with serving(node.handle) as (host,):
            source = remote([host])
            try:
                frame = await source.collect(T0)
                assert frame.errors == ()
                assert frame.gpus is not None and len(frame.gpus) == GPUS_PER_NODE
                assert host_ids(frame) == {host}
                await source.collect(T0 + 1000)
                assert node.paths == {"/snapshot": 1, "/metrics": 2}
            finally:
                await source.aclose()

    run(main)


# --------------------------------------------------------------------------- failing hosts


def test_a_hanging_host_does_not_delay_the_frame_past_the_cycle_deadline() -> None:
    async def main() -> None:
        async with serving(exporter(), hang, exporter(), exporter()) as hosts:
            stuck = hosts[1]
            # The request timeout is far longer: only the cycle deadline can end the wait.
            source = remote(hosts, request_timeout_s=30.0, cycle_deadline_s=0.5)
            try:
                started = time.monotonic()
                frame = await source.collect(T0)
                elapsed = time.monotonic() - started
            finally:
                await source.aclose()
        assert elapsed < 0.5 + SLACK_S
        assert frame.errors == (f"{stuck}: no answer within 0.5s",)
        good = set(hosts) - {stuck}
        assert host_ids(frame) == good
        assert frame.gpus is not None and len(frame.gpus) == GPUS_PER_NODE * len(good)

    run(main)


def test_a_503_becomes_one_error_naming_the_host() -> None:
    async def main() -> None:
        async with serving(always(Response(503, b"busy\n")), exporter()) as (sick, well):
            source = remote([sick, well])
            try:
                frame = await source.collect(T0)
            finally:
                await source.aclose()
        assert frame.errors == (f"{sick}: HTTP 503",)
        assert host_ids(frame) == {well}

    run(main)


def test_a_declared_body_over_the_cap_is_refused_unread() -> None:
    cap = 100_000
    big = b" " * 2_000_000

    async def main() -> None:
        async with serving(always(Response(200, big, content_type="application/json"))) as hosts:
            source = remote(hosts, max_body_bytes=cap)
            try:
                frame = await source.collect(T0)
            finally:
                await source.aclose()
        assert frame.errors == (f"{hosts[0]}: body of 2000000 bytes over the {cap} bytes cap",)

    run(main)


async def endless(chunk: bytes, pause_s: float) -> AsyncIterator[bytes]:
    while True:
        yield chunk
        await anyio.sleep(pause_s)


async def traced(measure: Callable[[], Awaitable[Frame]]) -> tuple[Frame, int]:
    """``measure()`` and the most bytes it held allocated at once (tracemalloc)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        frame = await measure()
        return frame, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_a_chunked_body_that_never_ends_is_cut_at_the_cap_in_bounded_memory() -> None:
    cap = 256 * 1024

    async def flood(request: Request) -> Response | Stream:
        return Stream("application/json", endless(b"[" * 16 * 1024, 0.001))

    async def main() -> None:
        async with serving(flood) as hosts:
            source = remote(hosts, max_body_bytes=cap, request_timeout_s=10.0)
            try:
                frame, peak = await traced(partial(source.collect, T0))
            finally:
                await source.aclose()
        assert frame.errors == (f"{hosts[0]}: body over the 256 KiB cap",)
        assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while reading a capped body"

    run(main)


def test_a_compressed_body_that_inflates_past_the_cap_stays_in_bounded_memory() -> None:
    cap = 256 * 1024
    bomb = gzip.compress(b"\0" * (256 * 1024 * 1024), compresslevel=9)  # ~250 KiB on the wire

    async def zipped(request: Request) -> Response | Stream:
        return Response(
            200, bomb, content_type="application/json", headers=(("content-encoding", "gzip"),)
        )

    async def main() -> None:
        async with serving(zipped) as hosts:
            source = remote(hosts, max_body_bytes=cap)
            try:
                frame, peak = await traced(partial(source.collect, T0))
            finally:
                await source.aclose()
        assert len(frame.errors) == 1 and frame.errors[0].startswith(f"{hosts[0]}: ")
        assert "refused a gzip-encoded body" in frame.errors[0]  # never inflated at all
        assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while reading a capped body"

    run(main)


def test_a_trickling_host_hits_the_request_timeout() -> None:
    async def trickle(request: Request) -> Response | Stream:
        return Stream("application/json", endless(b" ", 0.1))

    async def main() -> None:
        async with serving(trickle, exporter()) as (slow, well):
            source = remote([slow, well], request_timeout_s=0.5, cycle_deadline_s=10.0)
            try:
                started = time.monotonic()
                frame = await source.collect(T0)
                elapsed = time.monotonic() - started
            finally:
                await source.aclose()
        assert frame.errors == (f"{slow}: timeout after 0.5s",)
        assert host_ids(frame) == {well}
        assert elapsed < 0.5 + SLACK_S

    run(main)


BAD_BODIES: Final = {
    "invalid UTF-8": (GARBAGE, "invalid /metrics (not UTF-8)"),
    "gpus not a list": (
        b'{"schema":1,"t":"2026-04-18T12:00:00.000Z","gpus":"x"}',
        "invalid /snapshot (gpus is not a list)",
    ),
    "bad time": (b'{"schema":1,"t":"...","gpus":"x"}', "invalid /snapshot (bad time '...'"),
    "not an object": (b"[1, 2, 3]", "invalid /snapshot (not a JSON object)"),
    "row without a key": (
        b'{"schema":1,"t":"2026-04-18T12:00:00.000Z","gpus":[{"name":"x"}]}',
        "invalid /snapshot (required field missing @ gpus[0].uuid)",
    ),
    "a header, not a frame": (
        b'{"schema":1,"header":{"source":"remote"}}',
        "invalid /snapshot (",
    ),
    "text that is no exposition": (
        b"<html><body>502 Bad Gateway</body></html>\n",
        "invalid /metrics",
    ),
}


@pytest.mark.parametrize(
    ("body", "expected"),
    [pytest.param(*value, id=key) for key, value in BAD_BODIES.items()],
)
def test_a_garbage_answer_becomes_one_error_and_no_rows(body: bytes, expected: str) -> None:
    async def main() -> None:
        bad = always(Response(200, body, content_type="application/json"))
        async with serving(bad, exporter()) as (liar, well):
            source = remote([liar, well])
            try:
                frame = await source.collect(T0)
            finally:
                await source.aclose()
        assert len(frame.errors) == 1, frame.errors
        assert frame.errors[0].startswith(f"{liar}: {expected}"), frame.errors
        assert host_ids(frame) == {well}

    run(main)


# --------------------------------------------------------------------------- auth and load


@pytest.mark.parametrize(
    ("token", "ok"), [("secret", True), (None, False), ("wrong", False)], ids=str
)
def test_the_bearer_token_is_sent_and_a_refusal_is_named(token: str | None, ok: bool) -> None:
    async def main() -> None:
        async with serving(exporter(), token="secret") as (host,):
            source = remote([host], token=token)
            try:
                frame = await source.collect(T0)
            finally:
                await source.aclose()
        if ok:
            assert frame.errors == ()
            assert frame.gpus is not None and len(frame.gpus) == GPUS_PER_NODE
        else:
            assert frame.errors == (f"{host}: HTTP 401 (token missing or wrong)",)
            assert host_ids(frame) == set()

    run(main)


def test_requests_in_flight_never_exceed_the_bound() -> None:
    in_flight, most = [0], [0]

    async def main() -> None:
        answer = exporter()

        async def slow(request: Request) -> Response | Stream:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
            try:
                await anyio.sleep(0.2)
                return await answer(request)
            finally:
                in_flight[0] -= 1

        async with serving(*[slow] * 6) as hosts:
            source = remote(hosts, max_in_flight=2, cycle_deadline_s=10.0)
            try:
                frame = await source.collect(T0)
            finally:
                await source.aclose()
        assert frame.errors == ()
        assert host_ids(frame) == set(hosts)
        assert most[0] == 2

    run(main)


def test_a_closed_port_is_named_connection_refused() -> None:
    async def main() -> None:
        async with serving(exporter()) as (host,):
            pass  # the server is gone: its port now refuses
        source = remote([host])
        try:
            frame = await source.collect(T0)
        finally:
            await source.aclose()
        assert frame.errors == (f"{host}: connection refused",)

    run(main)


def test_an_https_target_is_scraped_over_verified_tls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``https://`` in the host list means TLS, verified against the default trust store —
    here a test CA, handed over the standard ``SSL_CERT_FILE`` way."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))

    async def main() -> None:
        handle = exporter()
        listener = TLSListener(
            await anyio.create_tcp_listener(local_host="127.0.0.1"),
            server_context,
            standard_compatible=False,
        )
        port = listener.listener.extra(anyio.abc.SocketAttribute.local_port)

        async def serve(stream: anyio.abc.ByteStream) -> None:
            await serve_connection(stream, handle, LIMITS, None)

        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, serve)
            target = f"https://127.0.0.1:{port}"
            source = remote([target])
            plain = remote([f"127.0.0.1:{port}"])  # the same port without TLS
            try:
                frame = await source.collect(T0)
                refused = await plain.collect(T0)
            finally:
                await source.aclose()
                await plain.aclose()
            tg.cancel_scope.cancel()
        assert frame.errors == ()
        assert host_ids(frame) == {f"127.0.0.1:{port}"}
        assert len(frame.gpus or ()) == GPUS_PER_NODE
        (error,) = refused.errors
        assert error.startswith(f"127.0.0.1:{port}: ")

    run(main)


# --------------------------------------------------------------------------- per-host limits


def many_gpus_snapshot(gpus: int = 0, processes: int = 0) -> bytes:
    """A ``/snapshot`` listing ``gpus`` GPUs and ``processes`` (empty) process rows: the
    lists are counted before a row is structured, so the rows need not even be valid."""
    gpu = {"name": "H100", "device_type": "GPU", "host_id": "x", "hostname": "x", "instance": "x"}
    frame = {
        "schema": 1,
        "t": "2026-04-18T12:00:00.000Z",
        "gpus": [{"uuid": f"GPU-{i}", **gpu} for i in range(gpus)],
        "processes": [{}] * processes,
    }
    return orjson.dumps(frame)


def gpu_page(gpus: int) -> bytes:
    line = 'all_smi_gpu_utilization{gpu="H100",gpu_uuid="GPU-%d",gpu_index="%d"} 1\n'
    return b"".join((line % (i, i)).encode() for i in range(gpus))


def escaping_page(chars: int) -> bytes:
    """One GPU whose info label holds ``chars`` control characters: a byte each on the
    page, six once JSON escapes them (``\\u0001``)."""
    junk = "\x01" * chars
    return f'all_smi_gpu_info{{gpu_uuid="GPU-0",gpu="H100",junk="{junk}"}} 1\n'.encode()


CAPPED: Final = {
    "GPUs on /snapshot (inline)": (
        many_gpus_snapshot(gpus=MAX_GPUS + 1),
        "application/json",
        f"over {MAX_GPUS} GPUs",
    ),
    "processes on /snapshot": (
        many_gpus_snapshot(processes=MAX_PROCESSES + 1),
        "application/json",
        f"over {MAX_PROCESSES} processes",
    ),
    "GPUs on /metrics (in a thread)": (gpu_page(20_000), PROM_TYPE, f"over {MAX_GPUS} GPUs"),
    "series": (b"up 1\n" * (MAX_SERIES + 1), PROM_TYPE, f"over {MAX_SERIES} series"),
    "lines": (b"#\n" * 1_000_000, PROM_TYPE, "over 200000 lines"),
    "CPU rows on /metrics": (
        b"".join(b'all_smi_cpu_utilization{index="%d"} 1\n' % i for i in range(9000)),
        PROM_TYPE,
        f"over {MAX_OTHER_ROWS} CPU, core, memory, disk or chassis rows",
    ),
    "CPU rows on /snapshot": (
        orjson.dumps({"schema": 1, "cpus": [{"index": i} for i in range(MAX_OTHER_ROWS + 1)]}),
        "application/json",
        f"over {MAX_OTHER_ROWS} CPU, core, memory, disk or chassis rows",
    ),
    "objects packed denser than an exporter's": (
        b'{"schema":1,"x":[' + b"{}," * 200_000 + b"{}]}",
        "application/json",
        "/snapshot denser than one object per 32 bytes",
    ),
    "values packed denser than an exporter's": (
        b'{"schema":1,"x":[' + b"0," * 200_000 + b"0]}",
        "application/json",
        "/snapshot denser than one value per 8 bytes",
    ),
    "rows that escape past 8 MiB": (
        escaping_page(1_500_000),
        PROM_TYPE,
        "rows over 8 MiB once recorded",
    ),
}


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [pytest.param(*value, id=key) for key, value in CAPPED.items()],
)
def test_a_host_past_a_cap_is_its_own_error_and_the_other_host_is_recorded(
    body: bytes, content_type: str, expected: str
) -> None:
    async def main() -> None:
        hostile = always(Response(200, body, content_type=content_type))
        async with serving(hostile, exporter()) as (bad, well):
            source = remote([bad, well], request_timeout_s=10.0, cycle_deadline_s=20.0)
            try:
                frames = [await source.collect(T0 + i * 1000) for i in range(2)]
            finally:
                await source.aclose()
        for frame in frames:  # the second cycle goes straight to the endpoint that answered
            assert frame.errors == (f"{bad}: {expected}",)
            assert host_ids(frame) == {well}
            assert len(frame.gpus or ()) == GPUS_PER_NODE

    run(main)


def test_a_large_snapshot_in_an_exporter_s_shape_passes_the_density_check() -> None:
    process = {
        "pid": 123456,
        "user": "alice",
        "name": "python3",
        "command": "python3 train.py --epochs 90 --batch 512",
        "gpu_memory_bytes": 12884901888,
        "cpu_percent": 97.5,
        "device_id": 0,
        "device_uuid": "GPU-00000000-0000-0000-0000-000000000000",
    }
    body = orjson.dumps({"schema": 1, "processes": [process] * 3000})
    assert len(body) > INLINE_PARSE_BYTES  # the check applies to it
    check_snapshot_density(body)  # no refusal


def test_processes_past_the_cap_are_no_error_when_processes_are_not_recorded() -> None:
    page = gpu_page(1) + b"".join(
        b'all_smi_process_cpu_percent{pid="%d",device_id="0"} 1\n' % pid
        for pid in range(MAX_PROCESSES + 1)
    )

    async def main() -> None:
        async with serving(always(Response(200, page, content_type=PROM_TYPE))) as (host,):
            config = RemoteConfig(hosts=(host,), include=("gpu",), request_timeout_s=10.0)
            source = build_remote_source(config)
            try:
                frame = await source.collect(T0)
            finally:
                await source.aclose()
        assert frame.errors == ()
        assert len(frame.gpus or ()) == 1
        assert frame.processes is None

    run(main)


def test_a_parse_past_the_deadline_fails_the_host_on_time_and_holds_one_thread() -> None:
    """A page parsed in a worker thread (~0.5 s: 100,000 series through the vendor's grammar)
    against a 0.2 s timeout: the host fails on time while the thread finishes alone; the next
    cycle does not start a second parse of the same host but says why."""
    slow = b'up{a="b"}\t1\n' * MAX_SERIES

    async def main() -> None:
        async with serving(always(Response(200, slow, content_type=PROM_TYPE)), exporter()) as (
            bad,
            well,
        ):
            source = remote([bad, well], request_timeout_s=0.2, cycle_deadline_s=5.0)
            try:
                started = time.monotonic()
                first = await source.collect(T0)
                elapsed = time.monotonic() - started
                second = await source.collect(T0 + 1000)
            finally:
                await source.aclose()
        assert first.errors == (f"{bad}: timeout after 0.2s",)
        assert elapsed < 0.2 + SLACK_S
        assert second.errors == (f"{bad}: still parsing its previous answer",)
        assert host_ids(first) == host_ids(second) == {well}

    run(main)


def test_a_text_answer_to_snapshot_is_remembered_even_when_the_page_is_refused() -> None:
    """all-smi's exporter answers /snapshot with its page: once is enough, also when the page
    is refused (a hostile host is not read twice a cycle). A 404 is retried while /metrics
    fails — the host may be one of ours, starting."""
    refused = b"up 1\n" * (MAX_SERIES + 1)

    async def missing(request: Request) -> Response | Stream:
        return Response(404 if request.path == "/snapshot" else 503, b"")

    async def main() -> None:
        text, absent = Counted(always(Response(200, refused))), Counted(missing)
        async with serving(text.handle, absent.handle) as hosts:
            source = remote(hosts, request_timeout_s=10.0, cycle_deadline_s=20.0)
            try:
                for cycle in range(3):
                    frame = await source.collect(T0 + cycle * 1000)
                    assert frame.errors == (
                        f"{hosts[0]}: over {MAX_SERIES} series",
                        f"{hosts[1]}: HTTP 503",
                    )
            finally:
                await source.aclose()
        assert text.paths == {"/snapshot": 1, "/metrics": 3}
        assert absent.paths == {"/snapshot": 3, "/metrics": 3}

    run(main)
