"""``allsmi status PATH``: is this recording being written, and is it fresh?
(docs/architecture.md §7.7)

For monitoring scripts, cron and a person at a shell: whether a recorder holds the set's lock
(:mod:`allsmi.adapters.recording.lock`; the kernel drops it however the recorder ended, so a
killed recorder is never reported running), the set's frames, files and stored bytes, and
the age of its last frame.

Rules this module obeys:
- The verdict is :func:`judge`'s, pure: ``ok`` (exit 0) while a recorder holds the lock and
  the last frame is younger than three intervals — at least :data:`MIN_STALE_MS`, since a
  recorder faster than one frame a second hands its frames to the disk in batches up to a
  second apart; ``stale`` (exit 1) when a recorder holds the lock but the last frame is older
  (a hung collector, a full disk); ``stopped`` (exit 1) when nobody holds it. The interval is
  the newest segment's header's; a recording without one (all-smi's) is judged by its
  median spacing, or 3 s.
- Exit 2, one line, when the path is not a recording (missing, a directory, not NDJSON,
  another schema) and no recorder holds its lock, and when this user cannot read the lock or
  the set (no permission): nobody can tell then, which is never ``stopped``. A recorder
  holding the lock of a set with no readable frame yet (it has just started, or rotated the
  old file aside) is ``stale``.
- Age: of the last frame; when that frame's time lies ahead of the clock (the clock was set
  back: a recorder stamps at its last time until the clock catches up), of the newest file's
  last write (:func:`age_ms`).
- The set is read as replay reads it: a zstd set through its seek tables and markers, a
  gzip or plain one through (the cost of a full read). A rotation between listing the set and
  reading it is retried, up to :data:`RETRIES` times.
"""

from __future__ import annotations

import argparse
import enum
import itertools
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

import attrs
import orjson

from allsmi.adapters.recording.files import reading_refused
from allsmi.adapters.recording.lock import holder, lock_path
from allsmi.adapters.recording.source import RecordingSource
from allsmi.app.clock import RealClock
from allsmi.app.progress import format_ibytes
from allsmi.domain.errors import AllsmiError, RecordingUnreadable
from allsmi.domain.parse import format_gap, format_rfc3339_ms

STALE_INTERVALS: Final = 3
MIN_STALE_MS: Final = 3000
DEFAULT_INTERVAL_MS: Final = 3000
RETRIES: Final = 3


class State(enum.Enum):
    OK = "ok"
    STALE = "stale"
    STOPPED = "stopped"

    @property
    def exit_code(self) -> int:
        return 0 if self is State.OK else 1


@attrs.frozen
class Facts:
    """What the set and its lock say, read once."""

    pid: int | None  # the recorder holding the lock (0: held, pid unknown); None: nobody
    lock_file: bool  # whether the set has a lock file at all
    frames: int = 0
    files: int = 0
    stored_bytes: int = 0
    last_t_ms: int | None = None  # None: no readable frame
    written_ms: int | None = None  # the newest file's last modification
    interval_ms: int = DEFAULT_INTERVAL_MS
    unreadable: str | None = None  # why no frame could be read, while a recorder holds it


def stale_after_ms(interval_ms: int) -> int:
    return max(STALE_INTERVALS * interval_ms, MIN_STALE_MS)


def age_ms(facts: Facts, now_ms: int) -> int | None:
    """How old the last frame is; when its time lies ahead of ``now_ms`` (the clock was set
    back since: a recorder keeps stamping at the last time until the clock catches up), how
    long ago the newest file was last written instead."""
    if facts.last_t_ms is None:
        return None
    if facts.last_t_ms > now_ms and facts.written_ms is not None:
        return max(0, now_ms - facts.written_ms)
    return max(0, now_ms - facts.last_t_ms)


def judge(facts: Facts, now_ms: int) -> State:
    """The verdict (module rules)."""
    if facts.pid is None:
        return State.STOPPED
    age = age_ms(facts, now_ms)
    if age is None or age >= stale_after_ms(facts.interval_ms):
        return State.STALE
    return State.OK


def gather(path: Path) -> Facts:
    """Read the lock and the set; ``RecordingUnreadable`` when it is no recording and no
    recorder holds its lock, or when either cannot be read (no permission): nobody can tell
    then, and that is no "stopped"."""
    _readable_lock(path)
    try:
        return _gather(path)
    except OSError as err:
        raise RecordingUnreadable(f"cannot read {path}: {err.strerror or err}") from None


def _readable_lock(path: Path) -> None:
    """A lock file this user cannot open would read as "nobody holds it": refuse instead."""
    lock = lock_path(path)
    err = reading_refused(lock)
    if err is not None and not isinstance(err, FileNotFoundError):
        raise RecordingUnreadable(
            f"{lock}: {err.strerror or err}: cannot tell whether a recorder holds it "
            "(run as the recorder's user, or root)"
        ) from None


def _gather(path: Path) -> Facts:
    for attempt in range(RETRIES + 1):
        pid = holder(path)
        try:
            with RecordingSource(path, cache_bytes=1 << 20) as source:
                return _facts(source, pid)
        except AllsmiError as err:
            again = holder(path)
            if again is None:
                if attempt < RETRIES and pid is not None:
                    continue  # it stopped while we read: judge what it left
                raise RecordingUnreadable(str(err)) from None
            if attempt == RETRIES:
                return Facts(pid=again, lock_file=True, unreadable=str(err))
    raise AssertionError("unreachable")  # pragma: no cover


def _facts(source: RecordingSource, pid: int | None) -> Facts:
    segments = source.segments
    header = next((s.header for s in reversed(segments) if s.header is not None), None)
    stated = header.interval_ms if header is not None else None
    interval = stated if stated else _median_spacing(source) or DEFAULT_INTERVAL_MS
    return Facts(
        pid=pid,
        lock_file=lock_path(source.path).exists(),
        frames=source.frame_count,
        files=len(segments),
        stored_bytes=sum(s.size for s in segments),
        last_t_ms=source.last_t_ms,
        written_ms=_written_ms([s.path for s in segments]),
        interval_ms=interval,
    )


def _written_ms(paths: list[Path]) -> int | None:
    times = []
    for path in paths:
        try:
            times.append(path.stat().st_mtime_ns // 1_000_000)
        except OSError:
            continue
    return max(times) if times else None


def _median_spacing(source: RecordingSource) -> int | None:
    count = source.frame_count
    times = [source.time_at(i) for i in range(max(0, count - 101), count)]
    steps = [b - a for a, b in itertools.pairwise(times) if b > a]
    return round(statistics.median(steps)) if steps else None


# ----------------------------------------------------------------------------- output


def report_lines(path: Path, facts: Facts, now_ms: int) -> list[str]:
    state = judge(facts, now_ms)
    if facts.pid is None:
        who = "not recording" + (
            ""
            if facts.lock_file
            else " (no lock beside it: a copy, another tool's, or a rotated file: ask about"
            " the active one)"
        )
    else:
        who = f"recording, pid {facts.pid}" if facts.pid else "recording, pid unknown"
    lines = [f"{path}: {who}"]
    every = _seconds(facts.interval_ms)
    if facts.last_t_ms is None:
        lines.append(f"frames    none readable yet ({facts.unreadable})")
    else:
        size = format_ibytes(facts.stored_bytes)
        plural = "" if facts.files == 1 else "s"
        lines.append(f"frames    {facts.frames:,} in {facts.files} file{plural}, {size} stored")
        ahead = " (ahead of this clock: aged by the last write)" if facts.last_t_ms > now_ms else ""
        lines.append(
            f"last      {format_rfc3339_ms(facts.last_t_ms)}, {_age(facts, now_ms)} ago "
            f"(every {every}){ahead}"
        )
    limit = _seconds(stale_after_ms(facts.interval_ms))
    if state is State.OK:
        verdict = f"OK: the last frame is {_age(facts, now_ms)} old, under {limit}"
    elif state is State.STALE:
        old = (
            "no frame yet"
            if facts.last_t_ms is None
            else f"the last frame is {_age(facts, now_ms)} old"
        )
        verdict = f"STALE: {old}, over {limit}, though a recorder holds the lock"
    else:
        verdict = "STOPPED: no recorder holds the lock"
    return [*lines, verdict]


def report_json(path: Path, facts: Facts, now_ms: int) -> bytes:
    last = facts.last_t_ms
    return orjson.dumps(
        {
            "path": str(path),
            "state": judge(facts, now_ms).value,
            "pid": facts.pid,
            "frames": facts.frames,
            "files": facts.files,
            "stored_bytes": facts.stored_bytes,
            "last_t": None if last is None else format_rfc3339_ms(last),
            "age_ms": age_ms(facts, now_ms),
            "interval_ms": facts.interval_ms,
            "stale_after_ms": stale_after_ms(facts.interval_ms),
        }
    )


def _age(facts: Facts, now_ms: int) -> str:
    age = age_ms(facts, now_ms) or 0
    return format_gap(age) if age >= 1000 else "0s"


def _seconds(ms: int) -> str:
    return f"{ms / 1000:g} s" if ms < 60_000 else format_gap(ms)


def run(args: argparse.Namespace, now_ms: Callable[[], int] | None = None) -> int:
    path = Path(args.path)
    try:
        facts = gather(path)
    except RecordingUnreadable as err:
        if args.format == "json":  # a script reading stdout still gets an object
            out = {"path": str(path), "state": "unreadable", "error": str(err)}
            sys.stdout.write(orjson.dumps(out).decode() + "\n")
            sys.stdout.flush()
        raise
    now = (now_ms or RealClock().wall_ms)()
    if args.format == "json":
        sys.stdout.write(report_json(path, facts, now).decode() + "\n")
    else:
        sys.stdout.write("\n".join(report_lines(path, facts, now)) + "\n")
    sys.stdout.flush()
    return judge(facts, now).exit_code
