"""The TUI loop in-process: scripted keys on a simulated clock, a fake terminal (no tty)."""

from __future__ import annotations

from pathlib import Path

import anyio
import attrs
import pytest

from allsmi.adapters.recording.sink import Codec
from allsmi.app.clock import SimClock
from allsmi.app.replay_driver import ReplayDriver
from allsmi.app.tui import ReplayModel, run_tui
from allsmi.domain import replay as core
from allsmi.domain.screen import StyledLine

from ..adapters import recordings as rec

UTC_TZ = __import__("datetime").timezone.utc


@attrs.define
class FakeTerminal:
    """Keys arrive at scripted simulated times; waiting moves the simulated clock."""

    clock: SimClock
    script: list[tuple[int, str]]
    resize_at: int | None = None
    width: int = 100
    height: int = 30
    opened: int = 0
    closed: int = 0
    painted: list[tuple[StyledLine, ...]] = attrs.field(factory=list)

    def open(self) -> None:
        self.opened += 1

    def close(self) -> None:
        self.closed += 1

    def reopen(self) -> None:
        self.close()
        self.width, self.height = 60, 20
        self.open()

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def has_resized(self) -> bool:
        if self.resize_at is not None and self.clock.monotonic_ms() >= self.resize_at:
            self.resize_at = None
            return True
        return False

    def read_keys(self) -> list[str]:
        now = self.clock.monotonic_ms()
        due = [k for at, k in self.script if at <= now]
        self.script = [(at, k) for at, k in self.script if at > now]
        return due

    def paint(self, lines: tuple[StyledLine, ...]) -> None:
        self.painted.append(lines)

    async def wait_input(self, timeout_ms: int) -> None:
        now = self.clock.monotonic_ms()
        next_key = min((at for at, _ in self.script), default=now + timeout_ms)
        self.clock.advance(max(1, min(timeout_ms, next_key - now)))
        await anyio.lowlevel.checkpoint()


def text(lines: tuple[StyledLine, ...]) -> str:
    return "\n".join("".join(span.text for span in line) for line in lines)


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "t.ndjson.zst"
    rec.write_sink(path, 120, Codec.ZSTD)
    return path


def play(
    path: Path, script: list[tuple[int, str]], **kw: object
) -> tuple[ReplayModel, FakeTerminal]:
    clock = SimClock(0)
    terminal = FakeTerminal(clock, script, **kw)  # type: ignore[arg-type]
    model = ReplayModel(driver=ReplayDriver.open(path, tz=UTC_TZ), tz=UTC_TZ)
    anyio.run(run_tui, terminal, model, clock)
    return model, terminal


def test_space_plays_at_one_x_on_the_loop_clock(recording: Path) -> None:
    model, terminal = play(recording, [(0, "space"), (5000, "q")])
    assert model.driver.state.position_ms == 5000
    assert model.driver.shown_index == 5
    assert "00:00:04 / 00:01:59 | 1.0x | playing" in text(terminal.painted[-1])


def test_speed_changes_the_rate(recording: Path) -> None:
    model, _ = play(recording, [(0, "+"), (0, "space"), (5000, "q")])
    assert model.driver.state.speed == 2.0 and model.driver.state.position_ms == 10_000


def test_fast_playback_drops_frames_instead_of_queueing(recording: Path) -> None:
    script = [(0, "+"), (0, "+"), (0, "+"), (0, "space"), (10_000, "q")]
    model, terminal = play(recording, script)
    assert model.driver.state.position_ms == 80_000  # 8x for 10 s
    assert len(terminal.painted) <= 10_000 // 100 + 5  # ~10 Hz, not one paint per frame


def test_the_terminal_is_restored_when_the_model_fails(recording: Path) -> None:
    clock = SimClock(0)
    terminal = FakeTerminal(clock, [(0, "space")])

    class Broken(ReplayModel):
        def key(self, name: str) -> None:
            raise RuntimeError("boom")

    model = Broken(driver=ReplayDriver.open(recording, tz=UTC_TZ), tz=UTC_TZ)
    with pytest.raises(ExceptionGroup) as caught:
        anyio.run(run_tui, terminal, model, clock)
    assert caught.group_contains(RuntimeError, match="boom")
    assert terminal.opened == terminal.closed == 1


def test_a_resize_reopens_the_screen_and_keeps_the_position(recording: Path) -> None:
    script = [(0, "g"), *((0, c) for c in "00:00:15"), (0, "enter"), (3000, "q")]
    model, terminal = play(recording, script, resize_at=1000)
    assert terminal.opened == 2 and terminal.closed == 2
    assert model.driver.state.position_ms == 15_000
    last = terminal.painted[-1]
    assert len(last) == 20 and "00:00:15" in text(last)


def test_q_quits_and_closes_once(recording: Path) -> None:
    model, terminal = play(recording, [(0, "q")])
    assert model.quit and terminal.closed == 1
    assert model.driver.state.mode is core.Mode.PAUSED
