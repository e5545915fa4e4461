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
TIME_KEYS = ("space", "j", "k", "+", "-", "L")


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

    def feed(self, event: r.Event) -> None:
        """Feed the driver; a seek replaces any exact step as what must be on screen."""
        seeks = self.driver.seeks
        self.driver.feed(event)
        if self.driver.seeks != seeks:
            self.exact = None

    @rule(key=st.sampled_from(TIME_KEYS))
    def press(self, key: str) -> None:
        self.feed(r.KeyPressed(key))

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

    @rule(dt=st.integers(0, 5000))
    def tick(self, dt: int) -> None:
        self.feed(r.TickElapsed(dt))

    @rule(seconds=st.integers(0, 400))
    def type_timecode(self, seconds: int) -> None:
        for key in ["g", *f"{seconds // 60:02d}:{seconds % 60:02d}", "enter"]:
            self.feed(r.KeyPressed(key))
        assert self.driver.state.position_ms == min(seconds * 1000, self.driver.state.duration_ms)
        self.exact = None

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
