"""A recorder and a follower interleaved at random, checked against a list model.

The recorder is the real :class:`RecordingSink` with a tiny ``max_size`` (so it rotates every
few flushes), a small ``max_files`` (so it evicts) and small chunks. The follower is the real
:class:`FollowingSource`, driven through its public methods only (``poll``, ``frame_count``,
``frame``, ``time_at``, ``close``), the way the replay driver drives it: after each poll it
*reports* the frames past the ones it reported before (``dropped`` moves that mark back).

The model is the list of recorded frames (frame ``i`` has ``seq`` ``i``, a unique time, and
``i`` in its memory row) with, for each, the segment of the run it was written to (the
sink's ``stats.segments`` after the append: 1 for the first file, +1 per rotation). With
``S`` segments opened so far and ``keep = max_files``, the files of segments ``<= S - keep``
have been deleted: *evicted*.

The invariant, checked at every poll (``R`` = the ids reported so far, ``F`` = the frames
flushed by then, ``E`` = the segments evicted by then):

1. ``R`` is strictly increasing (in order, no duplicates), every id in it was recorded, and
   the frame reported under it is that frame (seq, time, content).
2. Every recorded id below ``max(max(R) + 1, F)`` that is not in ``R`` belongs to a segment
   in ``E`` *at the poll that passed it*: a frame may be missing only because its file was
   deleted before the follower read it. In particular every flushed frame is reported
   unless evicted, and nothing is skipped in a file that still exists.
3. The follower's timeline is exactly the recorded frames ``<= max(R)`` whose segment is not
   in ``E``, in order: what was evicted left the timeline, nothing else did.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from allsmi.adapters import wire
from allsmi.adapters.recording.follow import FollowingSource
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.domain.errors import RecordingUnreadable
from allsmi.domain.model import Frame, Header, Memory

T0 = 1_776_513_600_000
NAMES = {Codec.ZSTD: "f.ndjson.zst", Codec.GZIP: "f.ndjson.gz", Codec.NONE: "f.ndjson"}
# Stored bytes per segment: a few flushes' worth of frames (a plain line is ~200 bytes, a
# compressed flush of one frame some 100).
MAX_SIZE = {Codec.ZSTD: 500, Codec.GZIP: 500, Codec.NONE: 900}


def frame_line(ident: int, t_ms: int) -> bytes:
    mem = Memory(host_id="h", hostname="h", instance="h", used_bytes=ident, total_bytes=2**34)
    return wire.encode_line(Frame(t_ms=t_ms, seq=ident, memory=(mem,)))


class FollowAgainstList(RuleBasedStateMachine):
    """See the module docstring for the model and the invariant."""

    sink: RecordingSink
    path: Path
    keep: int

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp())
        self.follower: FollowingSource | None = None
        self.times: list[int] = []  # recorded frame i: its time
        self.segment: list[int] = []  # recorded frame i: the segment it was written to
        self.flushed = 0  # frames handed to the OS by a flush
        self.reported: list[int] = []  # ids, in the order the follower reported them
        self.reported_set: set[int] = set()
        self.next_index = 0  # the follower's first index not reported yet
        self.checked = 0  # ids below this have passed invariant 2
        self.polls = 0

    def teardown(self) -> None:
        if self.follower is not None:
            self.follower.close()
        if hasattr(self, "sink"):
            self.sink.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ----------------------------------------------------------------- the recorder

    @initialize(
        kind=st.sampled_from(list(Codec)),
        keep=st.integers(1, 3),
        chunk_frames=st.integers(1, 4),
    )
    def start_recording(self, kind: Codec, keep: int, chunk_frames: int) -> None:
        self.path = self.tmp / NAMES[kind]
        self.keep = keep
        config = SinkConfig(
            path=self.path,
            codec=kind,
            max_size=MAX_SIZE[kind],
            max_files=keep,
            chunk_max_frames=chunk_frames,
        )
        self.sink = RecordingSink(config, Header(interval_ms=1000, hosts=("h",)))

    @rule(count=st.integers(1, 5), gap_ms=st.sampled_from([1, 1000, 1700]))
    def append(self, count: int, gap_ms: int) -> None:
        for _ in range(count):
            ident = len(self.times)
            t_ms = (self.times[-1] + gap_ms) if self.times else T0
            self.sink.append(frame_line(ident, t_ms), ident, t_ms)
            self.times.append(t_ms)
            self.segment.append(self.sink.stats.segments)

    @rule()
    def flush(self) -> None:
        self.sink.flush()  # may close a full segment: rotated (and evicted) at the next append
        self.flushed = len(self.times)

    # ----------------------------------------------------------------- the follower

    def evicted(self, ident: int) -> bool:
        return self.segment[ident] <= self.sink.stats.segments - self.keep

    @rule()
    def poll(self) -> None:
        self.polls += 1
        if self.follower is None:
            try:
                self.follower = FollowingSource(self.path, cache_bytes=4096)
            except RecordingUnreadable:  # no file or no complete frame yet
                self.check_nothing_skipped(until=self.flushed)
                return
        else:
            update = self.follower.poll()
            assert not update.rebuilt  # nothing here damages, truncates or replaces a file
            self.next_index = max(0, self.next_index - update.dropped)
        follower = self.follower
        assert self.next_index <= follower.frame_count
        for index in range(self.next_index, follower.frame_count):
            frame = follower.frame(index)
            ident = frame.seq
            assert ident is not None and 0 <= ident < len(self.times)
            assert not self.reported or ident > self.reported[-1], "out of order or doubled"
            assert frame.t_ms == self.times[ident] == follower.time_at(index)
            assert frame.memory is not None and frame.memory[0].used_bytes == ident
            self.reported.append(ident)
            self.reported_set.add(ident)
        self.next_index = follower.frame_count
        high = self.reported[-1] + 1 if self.reported else 0
        self.check_nothing_skipped(until=max(high, self.flushed))
        self.check_timeline(high)

    def check_nothing_skipped(self, until: int) -> None:
        """Invariant 2 for ids up to ``until``, against what is evicted now."""
        for ident in range(self.checked, until):
            assert ident in self.reported_set or self.evicted(ident), (
                f"frame {ident} of segment {self.segment[ident]} was skipped, but its file "
                f"is still there ({self.sink.stats.segments} segments, keep {self.keep})"
            )
        self.checked = max(self.checked, until)

    def check_timeline(self, high: int) -> None:
        """Invariant 3: the timeline is the surviving recorded frames up to ``high``."""
        assert self.follower is not None
        survivors = [self.times[i] for i in range(high) if not self.evicted(i)]
        timeline = [self.follower.time_at(i) for i in range(self.follower.frame_count)]
        assert timeline == survivors

    @invariant()
    def reported_ids_are_the_recording_in_order(self) -> None:
        """Invariant 1, between steps as well."""
        assert all(a < b for a, b in zip(self.reported, self.reported[1:], strict=False))
        assert all(0 <= ident < len(self.times) for ident in self.reported)

    @rule()
    def flush_then_poll(self) -> None:
        """The follower right after a flush: the newest frame is reported unless evicted."""
        self.flush()
        self.poll()
        if self.flushed:
            newest = self.flushed - 1
            assert self.reported[-1:] == [newest] or self.evicted(newest)


TestFollowAgainstList = FollowAgainstList.TestCase
# One failure shrunk at a time: shrinking several distinct ones at once takes minutes here.
TestFollowAgainstList.settings = settings(
    TestFollowAgainstList.settings, report_multiple_bugs=False
)
