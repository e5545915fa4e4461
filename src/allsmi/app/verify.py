"""``allsmi verify PATH [--deep]``: integrity and coverage of a recording (DESIGN.md §4).

Reads the whole recording once (every frame's time; with ``--deep`` every frame is also
structured) and reports segments, frames, time span, hosts, gaps longer than twice the
interval, skipped lines, a torn tail and whether a seek table was present. Exit 0 when
clean, 1 when it found damage, 2 when the file cannot be read at all or has another schema.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import TextIO

import attrs

from allsmi.adapters.filesource import RecordingSource
from allsmi.domain.model import Frame
from allsmi.domain.parse import format_gap, format_offset, format_rfc3339_ms

MAX_GAPS_LISTED = 10
MAX_HOSTS_LISTED = 8


@attrs.define
class Report:
    path: Path
    segments: list[str]
    codecs: list[str]
    opened_by: list[str]
    frames: int
    first_t_ms: int
    last_t_ms: int
    duration_ms: int
    interval_ms: int | None
    hosts: tuple[str, ...]
    gaps: list[tuple[int, int]]  # (offset of the frame before, gap length), ms
    corrupt_lines: int
    oversized_lines: int
    torn_tail: bool
    damaged_stream: bool
    unreadable_frames: int
    runs: int
    backwards: int
    warnings: list[str]
    deep: bool

    @property
    def damage(self) -> list[str]:
        found = []
        if self.corrupt_lines:
            found.append(f"{self.corrupt_lines} corrupt line(s) skipped")
        if self.oversized_lines:
            found.append(f"{self.oversized_lines} line(s) over 16 MiB skipped")
        if self.torn_tail:
            found.append("torn last line")
        if self.damaged_stream:
            found.append("damaged compressed data")
        if self.unreadable_frames:
            found.append(f"{self.unreadable_frames} frame(s) that do not structure")
        found += [w for w in self.warnings if "seek table" in w]
        return found


def build_report(source: RecordingSource, *, deep: bool) -> Report:
    header = source.header
    interval = header.interval_ms if header else None
    times = [source.time_at(i) for i in range(source.frame_count)]
    gaps = _gaps(times, interval)
    hosts: dict[str, None] = dict.fromkeys(header.hosts if header else ())
    unreadable = 0
    if deep or not hosts:
        for i in range(source.frame_count) if deep else range(min(1, source.frame_count)):
            frame = source.frame(i)
            unreadable += _unreadable(frame)
            hosts.update(dict.fromkeys(frame.hosts()))
    segments = source.segments
    return Report(
        path=source.path,
        segments=[s.path.name for s in segments],
        codecs=sorted({s.codec for s in segments}),
        opened_by=[s.opened_by for s in segments],
        frames=source.frame_count,
        first_t_ms=times[0],
        last_t_ms=times[-1],
        duration_ms=source.duration_ms,
        interval_ms=interval,
        hosts=tuple(hosts),
        gaps=gaps,
        corrupt_lines=sum(s.corrupt_lines for s in segments),
        oversized_lines=sum(s.oversized_lines for s in segments),
        torn_tail=any(s.torn_tail for s in segments),
        damaged_stream=any(s.damaged for s in segments),
        unreadable_frames=unreadable,
        runs=sum(s.runs for s in segments),
        backwards=sum(s.backwards for s in segments),
        warnings=list(source.warnings),
        deep=deep,
    )


def _unreadable(frame: Frame) -> int:
    return int(any(e.startswith("unreadable frame") for e in frame.errors))


def _gaps(times: list[int], interval_ms: int | None) -> list[tuple[int, int]]:
    """Gaps longer than twice the interval (the median spacing when there is no header)."""
    if len(times) < 2:
        return []
    spacing = (
        interval_ms or sorted(b - a for a, b in itertools.pairwise(times))[(len(times) - 1) // 2]
    )
    limit = 2 * max(spacing, 1)
    return [(a - times[0], b - a) for a, b in itertools.pairwise(times) if b - a > limit]


def render(report: Report, out: TextIO) -> None:
    seek = {"footer": "footer", "markers": "markers (no footer: crash or still recording)"}
    tables = sorted({seek.get(o, "none (scanned)") for o in report.opened_by})
    rows = [
        ("recording", str(report.path)),
        ("segments", _segments(report.segments)),
        ("codec", ", ".join(report.codecs)),
        ("seek table", "; ".join(tables)),
        ("schema", "1"),
        ("frames", f"{report.frames:,}"),
        ("first", format_rfc3339_ms(report.first_t_ms)),
        ("last", format_rfc3339_ms(report.last_t_ms)),
        ("duration", format_offset(report.duration_ms)),
        ("interval", f"{report.interval_ms / 1000:g} s" if report.interval_ms else "unknown"),
        ("hosts", _hosts(report.hosts)),
        ("gaps", _gap_text(report)),
        ("skipped", f"{report.corrupt_lines} corrupt, {report.oversized_lines} oversized"),
        ("torn tail", "yes" if report.torn_tail else "no"),
    ]
    if report.runs > len(report.segments):
        rows.append(("runs", f"{report.runs} (concatenated recordings)"))
    if report.backwards:
        rows.append(("clock", f"time goes back {report.backwards} time(s)"))
    if report.deep:
        rows.append(("deep", f"every frame structured; {report.unreadable_frames} failed"))
    for key, value in rows:
        out.write(f"{key + ':':<12}{value}\n")
    damage = report.damage
    out.write(("DAMAGED: " + "; ".join(damage) if damage else "OK") + "\n")


def _segments(names: list[str]) -> str:
    if len(names) == 1:
        return f"1 ({names[0]})"
    return f"{len(names)} ({names[0]} … {names[-1]})"


def _hosts(hosts: tuple[str, ...]) -> str:
    shown = ", ".join(hosts[:MAX_HOSTS_LISTED])
    more = f", … {len(hosts) - MAX_HOSTS_LISTED} more" if len(hosts) > MAX_HOSTS_LISTED else ""
    return f"{len(hosts)} ({shown}{more})" if hosts else "unknown"


def _gap_text(report: Report) -> str:
    if not report.gaps:
        return "none"
    listed = ", ".join(
        f"at {format_offset(at)} ({format_gap(length)})"
        for at, length in report.gaps[:MAX_GAPS_LISTED]
    )
    more = f", … {len(report.gaps) - MAX_GAPS_LISTED} more" if len(report.gaps) > 10 else ""
    return f"{len(report.gaps)}: {listed}{more}"


def summary(source: RecordingSource) -> str:
    """The short verify summary ``allsmi demo`` prints when there is no terminal."""
    report = build_report(source, deep=False)
    return (
        f"{report.frames:,} frames, {format_offset(report.duration_ms)}, "
        f"{len(report.hosts)} host(s), {len(report.gaps)} gap(s): "
        + ("DAMAGED: " + "; ".join(report.damage) if report.damage else "OK")
    )


def run(args: argparse.Namespace) -> int:
    source = RecordingSource(Path(args.path))
    report = build_report(source, deep=args.deep)
    render(report, sys.stdout)
    if report.damage:
        sys.stdout.flush()
        sys.stderr.write(
            f"allsmi verify: damage found in {args.path}: {'; '.join(report.damage)}\n"
        )
        return 1
    return 0
