"""Random key and tick sequences through the core and the real reader on a real file,
checked after every step against a plain list-of-frames model."""

from __future__ import annotations

import bisect
import shutil
import tempfile
from pathlib import Path

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from allsmi.adapters import wire
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.app.replay_driver import ReplayDriver
from allsmi.domain import replay as r
from allsmi.domain.model import Frame, Header, Memory

T0 = 1_776_513_600_000
TIME_KEYS = ("space", "+", "-", "L")


class ReplayAgainstList(RuleBasedStateMachine):
    """The model: the list of frame times (duplicates, uneven gaps, a long gap)."""

    driver: ReplayDriver
    keys: list[int]

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp())
        self.exact: int | None = None  # the index a step must have shown

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    @initialize(
        gaps=st.lists(
            st.sampled_from([0, 0, 400, 1000, 1000, 1700, 25_000]), min_size=0, max_size=120
        ),
        kind=st.sampled_from(list(Codec)),
        loop=st.booleans(),
    )
    def open_recording(self, gaps: list[int], kind: Codec, loop: bool) -> None:
        path = self.tmp / "m.ndjson"
        sink = RecordingSink(
            SinkConfig(path=path, codec=kind, chunk_max_frames=17), Header(interval_ms=1000)
        )
        t, self.keys = T0, []
        for seq, gap in enumerate([0, *gaps]):
            t += gap
            mem = Memory(host_id="h", hostname="h", instance="h", used_bytes=seq)
            sink.append(wire.encode_line(Frame(t_ms=t, seq=seq, memory=(mem,))), seq, t)
            self.keys.append(t)
        sink.close()
        self.driver = ReplayDriver.open(path, loop=loop)
        self.exact = 0  # opens on the first frame, even when others share its time

    def expected_by_time(self) -> int:
        target = self.driver.state.first_key_ms + self.driver.state.position_ms
        return max(0, bisect.bisect_right(self.keys, target) - 1)

    def expected_landing(self, window: tuple[int, int]) -> int:
        """The first frame whose key lies in the window (offsets), else the last before it."""
        first = self.driver.state.first_key_ms
        start, until = first + window[0], first + window[1]
        inside = [i for i, key in enumerate(self.keys) if start <= key < until]
        return inside[0] if inside else max(0, bisect.bisect_left(self.keys, start) - 1)

    def feed(self, event: r.Event) -> None:
        """Feed the driver; a seek replaces any exact step as what must be on screen."""
        seeks = self.driver.seeks
        self.driver.feed(event)
        if self.driver.seeks != seeks:
            self.exact = None

    @rule(key=st.sampled_from(TIME_KEYS))
    def press(self, key: str) -> None:
        before = self.driver.state
        on_last = before.mode is r.Mode.PAUSED and self.driver.shown_index == len(self.keys) - 1
        restarts = key == "space" and (
            before.mode is r.Mode.END or (on_last and len(self.keys) > 1)
        )
        self.feed(r.KeyPressed(key))
        if restarts:  # one SPACE at the end or on the last frame plays from the first
            assert self.driver.state.mode is r.Mode.PLAYING
            self.exact = 0

    @rule(forward=st.booleans())
    def step_frame(self, forward: bool) -> None:
        shown = self.driver.shown_index
        last = len(self.keys) - 1
        if forward:
            expected = (
                shown + 1 if shown < last else (0 if self.driver.state.loop and last else shown)
            )
        else:
            expected = max(0, shown - 1)
        self.driver.feed(r.KeyPressed("]" if forward else "["))
        assert self.driver.shown_index == expected
        self.exact = expected

    @rule(back=st.booleans())
    def ten_seconds(self, back: bool) -> None:
        state = self.driver.state
        last = r.label_s(state.duration_ms)
        second = r.label_s(state.position_ms) + (-10 if back else 10)
        expected = self.expected_landing(r.second_window(min(max(0, second), last)))
        self.driver.feed(r.KeyPressed("j" if back else "k"))
        assert self.driver.shown_index == expected
        self.exact = expected

    @rule(dt=st.integers(0, 5000))
    def tick(self, dt: int) -> None:
        self.feed(r.TickElapsed(dt))

    @rule(seconds=st.integers(0, 400))
    def type_timecode(self, seconds: int) -> None:
        expected = self.expected_landing(r.second_window(seconds))
        for key in ["g", *f"{seconds // 60:02d}:{seconds % 60:02d}", "enter"]:
            self.driver.feed(r.KeyPressed(key))
        assert self.driver.shown_index == expected  # the frame labelled so, or the one before
        shown_offset = self.keys[expected] - self.keys[0]
        assert r.label_s(shown_offset) == seconds or shown_offset < r.second_window(seconds)[0]
        self.exact = expected

    @invariant()
    def shows_the_frame_the_list_says(self) -> None:
        if not hasattr(self, "driver"):
            return
        shown = self.driver.shown_index
        if self.exact is not None:
            assert shown == self.exact
        else:
            assert shown == self.expected_by_time()
        mem = self.driver.frame().memory
        assert mem is not None and mem[0].used_bytes == shown
        assert (
            self.keys[shown] <= self.driver.state.first_key_ms + self.driver.state.position_ms
            or self.exact is not None
        )


TestReplayAgainstList = ReplayAgainstList.TestCase
