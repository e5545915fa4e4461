"""``verify``'s progress line, driven by a fake clock (no sleeps).

Rules (src/allsmi/app/progress.py): only when enabled (a terminal); one line rewritten in
place (``\\r\\x1b[2K``, never a newline) at most four times a second, the first a quarter
second after the start; erased before the report or an error. It says the phase, the stored
bytes read of the whole set's, frames, the rate and the time left in the phase.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from allsmi.adapters.recording.sink import Codec
from allsmi.adapters.recording.source import RecordingSource
from allsmi.app.progress import (
    CHECKING,
    CLEAR,
    INDEXING,
    STRUCTURING,
    PassProgress,
    ProgressLine,
    format_bytes,
    format_duration,
    format_rate,
)
from allsmi.app.verify import build_report, open_watched, read_report, render

from ..adapters import recordings as rec


class FakeClock:
    """Seconds that move only when the test says, or by ``step`` at every reading."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = 1000.0
        self.step = step

    def __call__(self) -> float:
        now = self.now
        self.now += self.step
        return now


def written(line: ProgressLine) -> str:
    assert isinstance(line.stream, io.StringIO)
    return line.stream.getvalue()


def drawn(line: ProgressLine) -> list[str]:
    """The texts drawn over the line, in order (the empty one of a clear included)."""
    return written(line).split(CLEAR)[1:]


def line_on(clock: FakeClock, *, enabled: bool = True, columns: int = 0) -> ProgressLine:
    return ProgressLine(io.StringIO(), clock, enabled=enabled, columns=lambda: columns)


def test_nothing_is_drawn_before_a_quarter_second_has_passed() -> None:
    clock = FakeClock()
    line = line_on(clock)
    clock.now += 0.24
    assert not line.show("indexing")
    assert written(line) == ""
    clock.now += 0.01
    assert line.show("indexing")
    assert written(line) == CLEAR + "indexing"


def test_the_line_is_redrawn_at_most_four_times_a_second() -> None:
    clock = FakeClock()
    line = line_on(clock)
    shown = 0
    for _ in range(10_000):  # ten seconds, offered every millisecond
        clock.now += 0.001
        shown += line.show("x")
    assert shown == len(drawn(line))
    assert 39 <= shown <= 40


def test_each_draw_rewrites_the_one_line_in_place() -> None:
    clock = FakeClock(step=1.0)
    line = line_on(clock)
    line.show("first")
    line.show("second")
    assert written(line) == f"{CLEAR}first{CLEAR}second"
    assert "\n" not in written(line)


def test_clear_erases_a_shown_line_once_and_nothing_when_none_was_shown() -> None:
    clock = FakeClock(step=1.0)
    line = line_on(clock)
    line.clear()
    assert written(line) == ""
    line.show("checking")
    line.clear()
    line.clear()
    assert written(line) == f"{CLEAR}checking{CLEAR}"


def test_a_disabled_line_writes_nothing_at_all() -> None:
    clock = FakeClock(step=1.0)
    line = line_on(clock, enabled=False)
    progress = PassProgress(line, clock)
    progress.indexing({Path("a"): 10**9})
    progress.opening(Path("a"))
    progress.scanned(0.5)
    progress.opened(1000)
    progress.frames_phase(CHECKING, 1000)
    progress.advanced(500, 1000)
    progress.clear()
    assert written(line) == ""


def test_the_line_is_cut_short_of_the_terminals_last_column() -> None:
    clock = FakeClock(step=1.0)
    line = line_on(clock, columns=10)
    line.show("checking 1,000 / 2,000 frames")
    assert drawn(line) == ["checking "]


@pytest.mark.parametrize(
    ("met", "told"),
    [(None, 250_000), (320_000, 570_000)],
    ids=["frames-of-open-segments", "plus-frames-the-scan-met"],
)
def test_indexing_counts_the_bytes_of_every_segment_and_the_frames_met(
    met: int | None, told: int
) -> None:
    clock = FakeClock()
    line = line_on(clock)
    progress = PassProgress(line, clock)
    progress.indexing({Path("a.0001.gz"): 300_000_000, Path("a.gz"): 700_000_000})
    progress.opening(Path("a.0001.gz"))
    progress.opened(250_000)
    progress.opening(Path("a.gz"))
    clock.now += 10.0
    # half of the second segment: 300 + 350 of 1000 MB in 10 s; its scan has met ``met``
    if met is None:
        progress.scanned(0.5)
    else:
        progress.scanned(0.5, met)
    assert progress.bytes_done == 650_000_000
    assert progress.frames == told
    # 65 MB/s; 350 MB left is 5.4 s, told rounded up
    assert drawn(line) == [f"indexing  650 MB / 1.00 GB  {told:,} frames  ~6 s left  65.0 MB/s"]


def test_checking_frames_shows_frames_of_the_total_their_share_of_bytes_and_the_rate() -> None:
    clock = FakeClock()
    line = line_on(clock)
    progress = PassProgress(line, clock)
    progress.indexing({Path("a.gz"): 2_000_000_000})
    progress.frames_phase(CHECKING, 1_000_000)
    clock.now += 4.0
    progress.advanced(250_000, 1_000_000)  # 62,500 frames/s: 750,000 left is 12 s
    assert drawn(line) == [
        "checking  250,000 / 1,000,000 frames  500 MB / 2.00 GB  ~12 s left  62.5k frames/s"
    ]


def test_a_rescan_while_frames_are_checked_does_not_move_the_line() -> None:
    clock = FakeClock()
    progress = PassProgress(line_on(clock), clock)
    progress.indexing({Path("a.gz"): 1_000_000})
    progress.frames_phase(CHECKING, 100)
    progress.advanced(50, 100)
    before = progress.text()
    progress.scanned(0.1)  # a damaged seek table sends a segment to the scan mid-walk
    assert progress.text() == before


def test_no_rate_or_time_left_before_the_phase_has_done_anything() -> None:
    clock = FakeClock()
    progress = PassProgress(line_on(clock), clock)
    progress.indexing({Path("a.gz"): 5_000_000})
    progress.frames_phase(STRUCTURING, 100)
    clock.now += 1.0
    assert progress.text() == "structuring  0 / 100 frames  0 B / 5.00 MB"


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1_000, "1.00 kB"),
        (41_200, "41.2 kB"),
        (412_000_000, "412 MB"),
        (999_600_000, "1.00 GB"),
        (1_060_000_000, "1.06 GB"),
        (3 * 10**15, "3000 TB"),
    ],
)
def test_sizes_are_decimal_with_three_significant_digits(n: int, text: str) -> None:
    assert format_bytes(n) == text


@pytest.mark.parametrize(
    ("per_s", "text"),
    [
        (850.4, "850 frames/s"),
        (8_500, "8,500 frames/s"),
        (62_500, "62.5k frames/s"),
        (250_000, "250k frames/s"),
        (1_230_000, "1.23M frames/s"),
    ],
)
def test_frame_rates_are_short_with_three_significant_digits(per_s: float, text: str) -> None:
    assert format_rate(per_s) == text


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.2, "1 s"), (12.1, "13 s"), (61, "2 min"), (5400, "1.5 h")]
)
def test_time_left_is_rounded_up(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# ------------------------------------------------------------------- with verify itself


def test_a_multi_segment_set_is_measured_against_the_sum_of_its_segments(
    tmp_path: Path,
) -> None:
    path = tmp_path / "set.ndjson.gz"
    rec.write_sink(path, 600, Codec.GZIP, max_size=4000)
    files = sorted(tmp_path.iterdir())
    assert len(files) >= 3
    clock = FakeClock(step=1.0)  # every reading a second later: every offer is drawn
    line = line_on(clock)
    progress = PassProgress(line, clock)
    open_watched(path, progress)
    total = sum(f.stat().st_size for f in files)
    assert progress.total_bytes == total
    indexing = [t for t in drawn(line) if t.startswith(INDEXING)]
    read = [f.stat().st_size for f in files]  # numbered segments first, as they are read
    assert (
        [t.split("  ")[1] for t in indexing]
        == [  # one draw as each segment is open
            f"{format_bytes(sum(read[: k + 1]))} / {format_bytes(total)}" for k in range(len(files))
        ]
    )
    assert indexing[-1].split("  ")[2] == "600 frames"


def test_verify_reports_checking_then_structuring_frames_of_the_total(tmp_path: Path) -> None:
    path = tmp_path / "r.ndjson.gz"
    rec.write_sink(path, 1000, Codec.GZIP)
    clock = FakeClock(step=1.0)
    line = line_on(clock)
    progress = PassProgress(line, clock)
    source = open_watched(path, progress)
    build_report(source, deep=True, progress=progress)
    phases = [t.split()[0] for t in drawn(line)]
    assert phases == sorted(phases, key=[INDEXING, CHECKING, STRUCTURING].index)
    assert {INDEXING, CHECKING, STRUCTURING} <= set(phases)
    counts = [t.split("  ")[1] for t in drawn(line) if t.startswith(CHECKING)]
    assert counts == [f"{n:,} / 1,000 frames" for n in range(0, 1000, 256)]


def test_the_report_is_the_same_with_the_progress_line_shown(tmp_path: Path) -> None:
    path = tmp_path / "r.ndjson.gz"
    rec.write_sink(path, 700, Codec.GZIP)
    plain, shown = io.StringIO(), io.StringIO()
    render(build_report(RecordingSource(path), deep=True), plain)
    clock = FakeClock(step=1.0)
    line = line_on(clock)
    render(read_report(path, deep=True, progress=PassProgress(line, clock)), shown)
    assert drawn(line)
    assert shown.getvalue() == plain.getvalue()


def test_the_line_is_erased_before_the_report(tmp_path: Path) -> None:
    path = tmp_path / "r.ndjson.gz"
    rec.write_sink(path, 300, Codec.GZIP)
    clock = FakeClock(step=1.0)
    line = line_on(clock)
    read_report(path, deep=False, progress=PassProgress(line, clock))
    assert len(drawn(line)) > 1
    assert written(line).endswith(CLEAR)
    assert not line.shown


def test_an_interrupt_while_frames_are_checked_erases_the_line(tmp_path: Path) -> None:
    path = tmp_path / "r.ndjson.gz"
    rec.write_sink(path, 2000, Codec.GZIP)
    stream = io.StringIO()

    def clock() -> float:  # a second a reading; Ctrl-C once frames are being checked
        ticking.now += 1.0
        if CHECKING in stream.getvalue():
            raise KeyboardInterrupt
        return ticking.now

    ticking = FakeClock()
    line = ProgressLine(stream, clock, enabled=True)
    with pytest.raises(KeyboardInterrupt):
        read_report(path, deep=False, progress=PassProgress(line, clock))
    assert drawn(line)[-2].startswith(CHECKING)
    assert stream.getvalue().endswith(CLEAR)
