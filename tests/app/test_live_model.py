"""The live view in-process: :class:`LiveModel` fed by the live collector
(:func:`allsmi.app.view.collect_into`) inside the real TUI loop, on a simulated clock, with a
fake terminal and a scripted frame source. No tty, no sleeping.

The simulated clock is moved by the collector alone (its waits jump to the next deadline);
the terminal's wait only yields, so the loop runs once per collected frame and a key
scripted at time T is read on the first pass after the clock reaches T.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC

import anyio
import attrs

from allsmi.app.clock import SimClock
from allsmi.app.tui import LiveModel, run_tui
from allsmi.app.view import collect_into
from allsmi.domain.model import Frame, Gpu, Memory
from allsmi.domain.screen import ViewState, format_local
from allsmi.domain.screen_rows import StyledLine

T0 = 1_776_513_600_000  # 2026-04-18T12:00:00Z
INTERVAL_MS = 1000


def gpu(host: str, index: int, utilization: float) -> Gpu:
    return Gpu(
        uuid=f"GPU-{host}-{index}",
        name="H100",
        device_type="GPU",
        host_id=host,
        hostname=host,
        instance=host,
        utilization=utilization,
        temperature=40 + index,
        detail={"index": str(index)},
    )


def frame_of(
    t_ms: int, hosts: dict[str, int], utilization: float, errors: tuple[str, ...] = ()
) -> Frame:
    """``hosts`` maps each host to its GPU count; every GPU shows ``utilization``."""
    gpus = tuple(gpu(h, i, utilization) for h, n in hosts.items() for i in range(n))
    memory = tuple(
        Memory(host_id=h, hostname=h, instance=h, total_bytes=2**34, used_bytes=2**33)
        for h in hosts
    )
    return Frame(t_ms=t_ms, source="remote", gpus=gpus, memory=memory, errors=errors)


Script = Callable[[int, int], Frame]  # (cycle, t_ms) -> the frame collected


@attrs.define
class ScriptedSource:
    """A frame source: cycle ``k`` returns ``script(k, t_ms)``; remembers what it did."""

    script: Script
    started: int = 0
    closed: int = 0
    collected: list[Frame] = attrs.field(factory=list)

    async def start(self) -> None:
        self.started += 1

    async def collect(self, t_ms: int) -> Frame:
        frame = self.script(len(self.collected), t_ms)
        self.collected.append(frame)
        return frame

    def hosts(self) -> tuple[str, ...]:
        return ()

    async def aclose(self) -> None:
        self.closed += 1


@attrs.define
class LiveTerminal:
    """Keys at scripted simulated times; each paint recorded with the frame then held."""

    clock: SimClock
    model: LiveModel
    script: list[tuple[int, str]]
    width: int = 100
    height: int = 30
    opened: int = 0
    closed: int = 0
    painted: list[tuple[Frame | None, ViewState, str]] = attrs.field(factory=list)

    def open(self) -> None:
        self.opened += 1

    def close(self) -> None:
        self.closed += 1

    def reopen(self) -> None:
        raise AssertionError("no resize is scripted")

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def has_resized(self) -> bool:
        return False

    def read_keys(self) -> list[str]:
        now = self.clock.monotonic_ms()
        due = [key for at, key in self.script if at <= now]
        self.script = [(at, key) for at, key in self.script if at > now]
        return due

    def paint(self, lines: tuple[StyledLine, ...]) -> None:
        assert len(lines) == self.height
        text = "\n".join("".join(span.text for span in line) for line in lines)
        self.painted.append((self.model.frame, self.model.view, text))

    async def wait_input(self, timeout_ms: int) -> None:
        await anyio.lowlevel.checkpoint()  # the collector moves the clock


def run_live(
    script: Script,
    keys: list[tuple[int, str]],
    *,
    expected_hosts: tuple[str, ...] = (),
    height: int = 30,
) -> tuple[LiveModel, LiveTerminal, ScriptedSource]:
    clock = SimClock(T0)
    model = LiveModel(label="LIVE 2 hosts", tz=UTC, expected_hosts=expected_hosts)
    terminal = LiveTerminal(clock, model, keys, height=height)
    source = ScriptedSource(script)

    async def collector() -> None:
        await collect_into(model, source, clock, INTERVAL_MS)

    anyio.run(run_tui, terminal, model, clock, collector)
    return model, terminal, source


def lines_of(model: LiveModel, width: int = 100, height: int = 30) -> list[str]:
    return ["".join(span.text for span in line) for line in model.lines(width, height)]


def gpu_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("GPU ") and " @ " in line]


# --------------------------------------------------------------------------- the newest frame


def test_each_collected_frame_is_painted_once_in_order_and_nothing_else() -> None:
    model, terminal, source = run_live(
        lambda k, t: frame_of(t, {"a": 1, "b": 1}, 10.0 * k), [(5000, "q")]
    )

    collected = [frame.t_ms for frame in source.collected]
    assert collected == [T0 + k * INTERVAL_MS for k in range(len(collected))]  # fixed rate
    assert len(collected) == 5  # at 0 … 4000 ms; q is read at 5000, before a sixth
    (before, _, waiting), *shown = terminal.painted
    assert before is None and "LIVE 2 hosts | collecting..." in waiting
    painted = [frame.t_ms for frame, _, _ in shown if frame is not None]
    # one paint per new frame, in order: no frame skipped, none painted twice
    assert painted == collected[: len(painted)] and len(painted) >= len(collected) - 1
    for frame, _, text in shown:
        assert frame is not None and frame.gpus is not None
        status = text.splitlines()[-2]
        assert f"LIVE 2 hosts | {format_local(frame.t_ms, UTC)}" in status
        assert f"{frame.gpus[0].utilization:.1f}%" in gpu_rows(text)[0]
    assert model.frame is source.collected[-1]


def test_quitting_stops_the_collector_and_closes_the_source_and_the_terminal() -> None:
    model, terminal, source = run_live(lambda k, t: frame_of(t, {"a": 1}, 5.0), [(2500, "q")])

    assert model.quit
    assert source.started == source.closed == 1
    assert terminal.opened == terminal.closed == 1
    assert len(source.collected) == 3  # at 0, 1000 and 2000 ms; none after q at 2500


def test_before_the_first_frame_the_status_says_collecting() -> None:
    model = LiveModel(label="LIVE node-7", tz=UTC)

    lines = lines_of(model)

    assert "LIVE node-7 | collecting..." in lines[-2]
    assert not gpu_rows("\n".join(lines))


# --------------------------------------------------------------------------- view state


def test_the_chosen_tab_stays_chosen_as_new_frames_arrive() -> None:
    model, terminal, _ = run_live(
        lambda k, t: frame_of(t, {"a": 2, "b": 2}, 10.0 * k),
        [(1500, "right"), (1500, "right"), (6000, "q")],  # tabs: All, a, b
        expected_hosts=("a", "b"),
    )

    after_key = [(frame, text) for frame, view, text in terminal.painted if view.tab == 2]
    assert len({frame.t_ms for frame, _ in after_key if frame is not None}) >= 3
    assert terminal.painted[-1][1].tab == model.view.tab == 2
    for _, text in after_key:  # tab 2 is host b alone, frame after frame
        rows = gpu_rows(text)
        assert len(rows) == 2 and all("@ b" in row for row in rows)
    before = [text for frame, view, text in terminal.painted if frame and view.tab == 0]
    assert before and all(len(gpu_rows(text)) == 4 for text in before)  # All: both hosts


def test_the_scroll_position_stays_as_new_frames_arrive() -> None:
    model, terminal, _ = run_live(
        lambda k, t: frame_of(t, {"a": 12}, 10.0 * k),
        [(1500, "down"), (1500, "down"), (6000, "q")],
        height=16,
    )

    assert model.view.scroll == 2
    scrolled = [text for _, view, text in terminal.painted if view.scroll == 2]
    assert len(scrolled) >= 3
    for text in scrolled:  # two body lines down = GPU 0's two lines are above the window
        assert gpu_rows(text)[0].startswith("GPU 1 ")
    first_frame = next(text for frame, _, text in terminal.painted if frame is not None)
    assert gpu_rows(first_frame)[0].startswith("GPU 0 ")


def test_help_survives_a_new_frame_and_esc_closes_it_before_quitting() -> None:
    model = LiveModel(label="LIVE a", tz=UTC)
    model.show(frame_of(T0, {"a": 1}, 1.0))
    model.key("h")
    model.show(frame_of(T0 + 1000, {"a": 1}, 2.0))

    assert model.view.help and model.dirty
    model.key("esc")
    assert not model.view.help and not model.quit
    model.key("esc")
    assert model.quit


def test_an_unknown_key_changes_nothing_and_q_quits() -> None:
    model = LiveModel(label="LIVE a", tz=UTC, expected_hosts=("a", "b"))
    model.show(frame_of(T0, {"a": 1, "b": 1}, 1.0))
    model.key("right")
    chosen = model.view

    model.key("x")
    assert model.view == chosen and not model.quit
    model.key("q")
    assert model.quit and model.view == chosen


# --------------------------------------------------------------------------- errors


def test_a_failed_collection_is_shown_and_the_next_good_frame_clears_it() -> None:
    def script(k: int, t: int) -> Frame:
        if k == 1:  # host b did not answer this cycle
            return frame_of(t, {"a": 1}, 10.0, errors=("b: HTTP 503",))
        return frame_of(t, {"a": 1, "b": 1}, 10.0)

    _, terminal, _ = run_live(script, [(3500, "q")], expected_hosts=("a", "b"))

    texts = [text for frame, _, text in terminal.painted if frame is not None]
    assert len(texts) >= 3
    first, failed, recovered = texts[:3]
    assert "b: HTTP 503" in failed and "b: no data" in failed
    assert len(gpu_rows(failed)) == 1  # b's GPU is not drawn from the previous frame
    for good in (first, recovered):
        assert "HTTP 503" not in good and "no data" not in good
        assert len(gpu_rows(good)) == 2


def test_a_message_is_drawn_on_the_line_above_the_status() -> None:
    model = LiveModel(label="LIVE a", tz=UTC, message="psutil: timed out after 5s")
    model.show(frame_of(T0, {"a": 1}, 1.0))

    lines = lines_of(model)

    assert lines[-3].strip() == "psutil: timed out after 5s"
    assert "LIVE a | " in lines[-2]


def test_the_live_view_alerts_on_the_message_line_as_the_replay_finds_events() -> None:
    """The replay's detection runs on every frame shown: a GPU that idles for 30 s is on
    the message line (all-smi's alert footer), with its host, GPU and time, and leaves it
    five minutes later; a collector's own message wins the line."""
    model = LiveModel(label="LIVE a", tz=UTC, expected_hosts=("a",))
    for i in range(40):
        model.show(frame_of(T0 + i * 1000, {"a": 2}, 80.0 if i < 5 else 1.0))
    line = lines_of(model)[-3]
    when = format_local(T0 + 5000, UTC).split()[1]
    assert line.startswith(f"alert {when} a GPU0: utilization: 80%->1%")
    assert "(+1 more)" in line  # GPU1 went idle at the same time
    for i in range(40, 40 + 300):
        model.show(frame_of(T0 + i * 1000, {"a": 2}, 1.0))
    assert not lines_of(model)[-3].startswith("alert")
    busy = LiveModel(label="LIVE a", tz=UTC, expected_hosts=("a",), message="psutil: slow")
    for i in range(40):
        busy.show(frame_of(T0 + i * 1000, {"a": 2}, 80.0 if i < 5 else 1.0))
    assert lines_of(busy)[-3].strip() == "psutil: slow"


def test_of_events_at_one_time_the_alert_line_names_the_gravest() -> None:
    """A host that stops answering: its error and its loss come at one time; the line
    names the loss, and counts the error."""
    model = LiveModel(label="LIVE 2 hosts", tz=UTC, expected_hosts=("a", "b"))
    for i in range(10):
        model.show(frame_of(T0 + i * 1000, {"a": 1, "b": 1}, 80.0))
    for i in range(10, 15):
        model.show(frame_of(T0 + i * 1000, {"a": 1}, 80.0, errors=("b: HTTP 503",)))
    line = lines_of(model)[-3]
    assert line.startswith("alert ") and " b: " in line
    assert "host stopped reporting" in line and line.rstrip().endswith("(+1 more)")
