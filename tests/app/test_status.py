"""``allsmi status``'s verdict as plain data, a recorder that holds the lock before its first
frame, and the recorder's retention estimate under an age limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from allsmi.adapters.recording.lock import RecordingLock
from allsmi.adapters.recording.sink import Codec, SinkConfig
from allsmi.app.record import projected_retention_s
from allsmi.app.status import Facts, State, gather, judge, report_lines, stale_after_ms
from allsmi.domain.errors import RecordingUnreadable

NOW = 1_776_513_600_000


@pytest.mark.parametrize(
    ("pid", "age_ms", "interval_ms", "state"),
    [
        (42, 0, 3000, State.OK),
        (42, 8999, 3000, State.OK),
        (42, 9000, 3000, State.STALE),  # three intervals old
        (42, 2999, 100, State.OK),  # sub-second intervals: at least 3 s (flushes batch)
        (42, 3000, 100, State.STALE),
        (0, 10, 3000, State.OK),  # held, pid unreadable: still a recorder
        (None, 10, 3000, State.STOPPED),  # fresh but nobody holds the lock
        (None, 10**9, 3000, State.STOPPED),
    ],
)
def test_the_verdict(pid: int | None, age_ms: int, interval_ms: int, state: State) -> None:
    facts = Facts(
        pid=pid, lock_file=True, frames=5, last_t_ms=NOW - age_ms, interval_ms=interval_ms
    )
    assert judge(facts, NOW) is state
    assert state.exit_code == (0 if state is State.OK else 1)


def test_the_stale_limit_is_three_intervals_and_at_least_three_seconds() -> None:
    assert [stale_after_ms(i) for i in (100, 1000, 3000, 60_000)] == [3000, 3000, 9000, 180_000]


def test_a_recorder_holding_the_lock_before_any_frame_is_stale_not_unreadable(
    tmp_path: Path,
) -> None:
    active = tmp_path / "r.ndjson.zst"
    with RecordingLock.acquire(active):  # started; its first frame not written yet
        facts = gather(active)
        assert facts.pid is not None and facts.last_t_ms is None
        assert judge(facts, NOW) is State.STALE
        lines = report_lines(active, facts, NOW)
        assert lines[-1] == "STALE: no frame yet, over 9 s, though a recorder holds the lock"
    with pytest.raises(RecordingUnreadable, match="no such recording"):
        gather(active)  # released: nothing there is a recording


def test_the_retention_estimate_is_the_age_when_size_and_count_hold_more() -> None:
    path = Path("r.ndjson.zst")
    big = SinkConfig(path, Codec.NONE, max_size=1 << 30, max_files=10, max_age_ms=3_600_000)
    assert projected_retention_s(big, 1000, 1000) == 3600
    small = SinkConfig(path, Codec.NONE, max_size=1 << 20, max_files=2, max_age_ms=3_600_000)
    assert projected_retention_s(small, 1024, 1000) == 2048  # the size bites first
    unbounded = SinkConfig(path, Codec.NONE, max_size=0, max_age_ms=3_600_000)
    assert projected_retention_s(unbounded, 1000, 1000) == 3600
    assert projected_retention_s(SinkConfig(path, Codec.NONE, max_size=0), 1000, 1000) is None


def test_a_last_frame_ahead_of_the_clock_is_aged_by_the_last_write() -> None:
    """The clock was set back: the recorder stamps at its last time until the clock catches
    up, so the frame's time says nothing of a hang; the file's last write does."""
    ahead = NOW + 3_600_000
    hung = Facts(pid=7, lock_file=True, last_t_ms=ahead, written_ms=NOW - 60_000)
    alive = Facts(pid=7, lock_file=True, last_t_ms=ahead, written_ms=NOW - 500)
    assert judge(hung, NOW) is State.STALE and judge(alive, NOW) is State.OK
    assert "(ahead of this clock: aged by the last write)" in report_lines(Path("r"), hung, NOW)[2]
