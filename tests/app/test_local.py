"""Local collection: each blocking source in its own thread, one call in flight, a timeout."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import anyio
import pytest

from allsmi.adapters.machine.host import HostReader
from allsmi.adapters.machine.processes import ProcessEnricher
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.app.local import GuardedCall, LocalSource
from allsmi.app.record import RecordPlan, RecordResult, Reporter
from allsmi.domain.errors import SourceUnavailable
from allsmi.domain.model import Header, Memory, Storage


def test_a_read_that_overruns_its_timeout_is_reported_not_waited_for() -> None:
    release = threading.Event()
    call = GuardedCall("nvidia", timeout_s=0.2)

    def stuck() -> int:
        release.wait(10)
        return 1

    async def main() -> float:
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match=r"nvidia: timed out after 0\.2s"):
            await call(stuck)
        return time.monotonic() - started

    try:
        assert anyio.run(main) < 2.0
    finally:
        release.set()


def test_no_second_call_while_the_first_is_still_running() -> None:
    release = threading.Event()
    call = GuardedCall("psutil", timeout_s=0.1)

    async def main() -> None:
        with pytest.raises(SourceUnavailable, match="timed out"):
            await call(lambda: release.wait(10))
        with pytest.raises(SourceUnavailable, match="psutil: previous read still running"):
            await call(lambda: True)
        release.set()
        for _ in range(100):  # the abandoned thread finishes: the source is usable again
            await anyio.sleep(0.02)
            try:
                assert await call(lambda: 7) == 7
                return
            except SourceUnavailable:
                continue
        pytest.fail("the source never became usable again")

    anyio.run(main)


class SlowHost(HostReader):
    def read_memory(self) -> tuple[Memory, ...]:
        time.sleep(1.0)
        return super().read_memory()


def test_a_hung_host_reader_becomes_an_errors_entry_and_the_frame_still_comes() -> None:
    source = LocalSource(
        ("memory",),
        hostname="h",
        nvml=None,
        host=SlowHost("h", "h"),
        enricher=ProcessEnricher("h", "h"),
        timeout_s=0.2,
    )

    async def main() -> None:
        frame = await source.collect(1)
        assert frame.memory is None
        assert frame.errors == ("psutil: timed out after 0.2s",)

    anyio.run(main)


def test_without_a_driver_the_gpu_section_is_absent_and_the_error_named() -> None:
    source = LocalSource(
        ("gpu", "memory"),
        hostname="h",
        nvml=None,
        host=HostReader("h", "h"),
        enricher=ProcessEnricher("h", "h"),
    )

    async def main() -> None:
        frame = await source.collect(1)
        assert frame.gpus is None and frame.memory
        assert frame.errors == ("nvidia: NVML not available",)

    anyio.run(main)


def test_the_live_status_line_shows_frames_bytes_ratio_and_errors(tmp_path: Path) -> None:
    sink = RecordingSink(SinkConfig(path=tmp_path / "s.ndjson.zst", codec=Codec.ZSTD), Header())
    from allsmi.adapters import wire
    from tests.adapters import recordings as rec

    for seq in range(3):
        sink.append(wire.encode_line(rec.make_frame(seq, rec.T0, seq)), seq, rec.T0)
        sink.flush()
    stream = io.StringIO()
    reporter = Reporter(stream, RecordPlan(1000, 0, "local", ("h",)), live=True)
    reporter.update(RecordResult(frames=3, errors=2), sink, 61_000)
    text = stream.getvalue()
    assert text.startswith("allsmi record: retention ≈ ")
    assert "00:01:01  3 frames" in text and "ratio" in text and "2 errors" in text
    sink.close()


class BrokenDisks(HostReader):
    def read_storage(self) -> tuple[Storage, ...]:
        raise SourceUnavailable("psutil: disk_partitions: Permission denied")


def test_one_failing_reader_costs_only_its_own_section() -> None:
    source = LocalSource(
        ("cpu", "memory", "storage"),
        hostname="h",
        nvml=None,
        host=BrokenDisks("h", "h"),
        enricher=ProcessEnricher("h", "h"),
    )

    async def main() -> None:
        await source.start()
        frame = await source.collect(1)
        assert frame.cpus and frame.memory and frame.storage is None
        assert frame.errors == ("psutil: disk_partitions: Permission denied",)

    anyio.run(main)


def test_a_call_cancelled_before_its_thread_ran_leaves_the_source_usable() -> None:
    call = GuardedCall("psutil", timeout_s=5)

    async def main() -> None:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await call(lambda: 1)
        assert await call(lambda: 2) == 2

    anyio.run(main)
