"""Stopping on signals, in-process: a real signal sent to this test process (``os.kill``)
while the composition root runs under ``anyio.run``, and the effect each root promises."""

from __future__ import annotations

import argparse
import io
import os
import signal
import socket
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import anyio
import attrs
import pytest

from allsmi.adapters.network.endpoints import FrameEndpoints, FrameFeed
from allsmi.adapters.recording import seektable
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.app import api, mock
from allsmi.app.clock import SimClock
from allsmi.app.record import RecordPlan, Reporter, _record_until_signal
from allsmi.app.signals import STOP_SIGNALS, TUI_STOP_SIGNALS, wait_for_signal
from allsmi.app.tui import LiveModel, run_tui
from allsmi.domain.model import Frame, Header, Memory
from allsmi.domain.screen import StyledLine

T0 = 1_776_513_600_000


@pytest.fixture(autouse=True)
def unhandled_signals_land_here() -> Iterator[list[int]]:
    """Until anyio's handlers are in, a stray signal is caught here instead of ending the
    test run; the handlers this process had are put back afterwards."""
    caught: list[int] = []
    saved = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda n, _frame: caught.append(n))
    try:
        yield caught
    finally:
        for restored, handler in saved.items():
            signal.signal(restored, handler)


def kill_self(signum: signal.Signals) -> None:
    os.kill(os.getpid(), signum)


@pytest.mark.parametrize("signum", STOP_SIGNALS, ids=lambda s: s.name)
def test_wait_for_signal_returns_the_signal_the_process_received(
    signum: signal.Signals, unhandled_signals_land_here: list[int]
) -> None:
    got: list[signal.Signals] = []

    async def main() -> None:
        async def wait() -> None:
            got.append(await wait_for_signal(*STOP_SIGNALS))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait)
                await anyio.wait_all_tasks_blocked()
                kill_self(signum)

    anyio.run(main)
    assert got == [signum]
    assert unhandled_signals_land_here == []


def test_wait_for_signal_ignores_signals_it_was_not_asked_for(
    unhandled_signals_land_here: list[int],
) -> None:
    got: list[signal.Signals] = []

    async def main() -> None:
        async def wait() -> None:
            got.append(await wait_for_signal(signal.SIGTERM))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait)
                await anyio.wait_all_tasks_blocked()
                kill_self(signal.SIGHUP)  # not waited for: the process's own handler has it
                await anyio.sleep(0.05)
                assert got == []
                kill_self(signal.SIGTERM)

    anyio.run(main)
    assert got == [signal.SIGTERM]
    assert unhandled_signals_land_here == [signal.SIGHUP]


# --------------------------------------------------------------------------- record


@attrs.define
class SignallingSource:
    """A frame source that sends ``signum`` to this process at collection ``at``."""

    clock: SimClock
    signum: signal.Signals
    at: int
    calls: int = 0
    closed: bool = False

    async def start(self) -> None:
        return None

    async def collect(self, t_ms: int) -> Frame:
        if self.calls == self.at:
            kill_self(self.signum)
        self.calls += 1
        self.clock.advance(20)
        await anyio.lowlevel.checkpoint()
        mem = Memory(host_id="h", hostname="h", instance="h", used_bytes=self.calls)
        return Frame(t_ms=t_ms, memory=(mem,))

    def hosts(self) -> tuple[str, ...]:
        return ("h",)

    async def aclose(self) -> None:
        self.closed = True


def test_record_stops_on_sighup_remembers_it_and_closes_the_recording(tmp_path: Path) -> None:
    clock = SimClock(T0)
    source = SignallingSource(clock, signal.SIGHUP, at=5)
    path = tmp_path / "t.ndjson.zst"
    sink = RecordingSink(SinkConfig(path=path, codec=Codec.ZSTD), Header())
    plan = RecordPlan(1000, 3_600_000, "local", ("h",))  # the hour is a bound, not the stop
    reporter = Reporter(io.StringIO(), plan, live=False)
    result = anyio.run(_record_until_signal, source, sink, clock, plan, 0, reporter)
    assert result.stopped_by == "SIGHUP"
    assert 6 <= result.frames < 3600  # the frame in progress completes
    assert source.closed
    assert seektable.decode_trailer(path.read_bytes()[-16:]) is not None  # footer written


def test_record_without_a_signal_says_nothing_stopped_it(tmp_path: Path) -> None:
    clock = SimClock(T0)
    source = SignallingSource(clock, signal.SIGHUP, at=-1)
    sink = RecordingSink(SinkConfig(path=tmp_path / "t.ndjson", codec=Codec.NONE), Header())
    plan = RecordPlan(1000, 10_000, "local", ("h",))
    reporter = Reporter(io.StringIO(), plan, live=False)
    result = anyio.run(_record_until_signal, source, sink, clock, plan, 0, reporter)
    assert result.stopped_by is None and result.frames == 10


# --------------------------------------------------------------------------- tui


@attrs.define
class IdleTerminal:
    """A terminal nobody types into: the loop waits on it until something stops it."""

    opened: int = 0
    closed: int = 0
    painted: int = 0

    def open(self) -> None:
        self.opened += 1

    def close(self) -> None:
        self.closed += 1

    def reopen(self) -> None:
        return None

    @property
    def size(self) -> tuple[int, int]:
        return 80, 24

    def has_resized(self) -> bool:
        return False

    def read_keys(self) -> list[str]:
        return []

    def paint(self, lines: tuple[StyledLine, ...]) -> None:
        self.painted += 1

    async def wait_input(self, timeout_ms: int) -> None:
        await anyio.sleep_forever()


@pytest.mark.parametrize("signum", TUI_STOP_SIGNALS, ids=lambda s: s.name)
def test_the_tui_stops_on_sigterm_and_sighup_and_restores_the_terminal(
    signum: signal.Signals,
) -> None:
    terminal = IdleTerminal()
    model = LiveModel(label="LIVE h", tz=UTC)

    async def main() -> None:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(run_tui, terminal, model, SimClock(T0))
                await anyio.wait_all_tasks_blocked()
                assert terminal.opened == 1 and terminal.closed == 0
                kill_self(signum)

    anyio.run(main)
    assert terminal.painted == 1 and terminal.closed == 1


def test_sigint_is_not_a_tui_stop_signal() -> None:
    """Ctrl-C reaches the TUI as a key (asciimatics reads the terminal raw)."""
    assert signal.SIGINT in STOP_SIGNALS and signal.SIGINT not in TUI_STOP_SIGNALS


# --------------------------------------------------------------------------- api and mock


@attrs.define
class QuietSource:
    collected: int = 0
    closed: bool = False

    async def start(self) -> None:
        return None

    async def collect(self, t_ms: int) -> Frame:
        self.collected += 1
        return Frame(t_ms=t_ms)

    def hosts(self) -> tuple[str, ...]:
        return ("h",)

    async def aclose(self) -> None:
        self.closed = True


@pytest.mark.parametrize("signum", STOP_SIGNALS, ids=lambda s: s.name)
def test_the_exporter_shuts_down_on_each_stop_signal(signum: signal.Signals) -> None:
    source = QuietSource()
    feed = FrameFeed()
    args = argparse.Namespace(bind="127.0.0.1", port=0, interval_ms=3_600_000)

    async def main() -> None:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    api._main, args, source, feed, FrameEndpoints(feed, version="t"), None
                )
                await anyio.wait_all_tasks_blocked()
                kill_self(signum)

    anyio.run(main)
    assert source.collected == 1 and source.closed  # collected once, closed on the way out


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_mock_cluster_shuts_down_on_sigterm(tmp_path: Path) -> None:
    plan = mock.MockPlan(
        nodes=1, base_port=_free_port(), gpus=1, seed=0, failure_nodes=0, interval_ms=3_600_000
    )
    cluster = mock.MockCluster(plan)

    async def main() -> None:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(mock._main, cluster, tmp_path / "hosts")
                await anyio.wait_all_tasks_blocked()
                client = await anyio.connect_tcp("127.0.0.1", plan.base_port)  # serving
                await client.aclose()
                await anyio.wait_all_tasks_blocked()
                kill_self(signal.SIGTERM)

    anyio.run(main)
    with socket.socket() as again:  # the node's listener was closed on the way out
        again.bind(("127.0.0.1", plan.base_port))
