"""``allsmi verify PATH [--deep]``: integrity and coverage of a recording
(docs/architecture.md §7.1).

Reads the whole recording once (every frame's time and ``seq``; with ``--deep`` every frame
is also structured) and reports segments, frames, time span, hosts, gaps longer than twice
the interval, and its *findings*. What each finding is and what it does to the exit status
is one table, :data:`FINDINGS`, that the README reproduces: 0 when nothing was lost (notes,
such as a recording that was not closed cleanly but whose flushed frames are all intact: it
ends where a flush ended), 1 when damage lost data (a file cut inside a compressed block: the
stored bytes after its last complete block are counted, with the complete frames kept) or
the recording contradicts itself, 2 (raised before any report) when the file cannot be read
at all, is not a recording or has another schema (docs/recording-format.md §9).

On a terminal, stderr carries a progress line while the recording is read (indexing, then
checking frames, then with ``--deep`` structuring them): :mod:`allsmi.app.progress`. It is
erased before the report or an error is written; without a terminal nothing is drawn.

Stored chunk summaries (our zstd files, docs/recording-format.md §7.2): each one found is read
as the replay reads it (:mod:`allsmi.adapters.recording.summaries`: placement, bounds, counts,
times) and compared with the summary of its chunk's frames, structured for it (with
``--deep`` in the same pass that structures them all). Only chunks that have one are
structured: a file without them costs what it did. One that fails either check is damage
(``summary``); the ``summaries`` row says how many were stored and whether all held.

Hosts. A sound file can still hold a cluster that was not: the report counts the frames with
any error and lists every host that *failed* (an error names it, as the summaries match
errors to hosts: :func:`allsmi.domain.summary.error_host` against the header's hosts and the
frame's own) or was *missing* (an expected host — the header's, or one with rows in some
frame — with no rows in a frame) in at least one frame: frames failed, frames missing, and
the time of the first and last such frame in file order. The worst
:data:`MAX_FAILED_LISTED` are listed (most frames failed or missing first), then how many
more. This is no finding: the exit status stays what the file's soundness makes it, but the
verdict says it (``OK (file sound; 3 of 20 hosts failed in every frame)``). Each frame's
hosts and errors are read from its stored line as the map scan reads it (orjson and
:func:`~allsmi.adapters.recording.mapscan.summary_inputs`, exact and without structuring);
a line that will not structure counts as the errors-only frame the replay shows. They are
read in the same pass as the times: a scanned segment's by the scan itself (its log keeps
each line's facts, once per distinct value), a segment opened by its seek table in the
walk; no segment is decoded twice for them.

Several recordings (``allsmi verify A B C…``, or a directory: each recording in it, each
rotated set once by its active name, :func:`~allsmi.adapters.recording.merged.recordings_in`;
a recording named twice is verified once). One PATH that is not a directory is verified as
above, its output unchanged. Otherwise each recording is verified in turn, ``--deep`` applying
to each, its report under a line ``==> PATH <==`` (a blank line between reports); one that
cannot be read is reported there as ``unreadable:`` with the reason and the others are still
verified. Then the merged summary (:func:`render_merged`) over the ones read: how many, the
merged span (the earliest first time to the latest last time), the union of their hosts, the
recordings that overlap no other in time and the hosts two recordings list over overlapping
spans — the rules of the merged replay's warnings (docs/architecture.md §5.8), each span a
recording's first..last frame time — and a verdict line. The exit status is the worst of the
recordings' (2 for an unreadable one), each damaged or unreadable one a line on stderr once
everything is printed. A single directory that holds no recording is the one error line.
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final, TextIO, cast

import attrs
import orjson

from allsmi.adapters import wire
from allsmi.adapters.recording.damage import Damage, DamageKind
from allsmi.adapters.recording.index import FrameLog, SegmentInfo
from allsmi.adapters.recording.mapscan import (
    UNREADABLE,
    SummaryInputs,
    hosts_and_errors,
    summary_inputs,
)
from allsmi.adapters.recording.merged import recordings_in
from allsmi.adapters.recording.source import RecordingSource, discover
from allsmi.adapters.recording.summaries import new_summary, read_stored
from allsmi.app.progress import (
    CHECKING,
    STRUCTURING,
    PassProgress,
    ProgressLine,
    terminal_columns,
)
from allsmi.domain.errors import AllsmiError, RecordingUnreadable
from allsmi.domain.model import Frame
from allsmi.domain.parse import format_gap, format_offset, format_rfc3339_ms
from allsmi.domain.summary import Summary, error_host

MAX_GAPS_LISTED = 10
MAX_HOSTS_LISTED = 8
MAX_FAILED_LISTED: Final = 20  # hosts listed in the failed row, worst first
MAX_CHUNKS_LISTED = 5  # inconsistent stored summaries named in the summaries row
PROGRESS_EVERY: Final = 256  # frames between two looks at the progress line's clock
DAMAGE: Final = 1  # exit status of a finding that lost data or contradicts the recording
NOTE: Final = 0  # reported, exit status unchanged


@attrs.frozen
class Rule:
    name: str
    status: int  # DAMAGE or NOTE
    text: str  # formatted with the finding's count


FINDINGS: Final = (
    Rule("corrupt", DAMAGE, "{n} corrupt line(s) skipped"),
    Rule("oversized", DAMAGE, "{n} line(s) over 16 MiB skipped"),
    Rule("torn", DAMAGE, "torn last line"),
    Rule(
        "cut",
        DAMAGE,
        "cut inside a compressed block: the {n} stored byte(s) after the last decodable point "
        "lost ({where})",
    ),
    Rule("undecodable", DAMAGE, "{n} undecodable byte(s) skipped ({where})"),
    Rule("table", DAMAGE, "seek table points at the wrong bytes (scanned instead)"),
    Rule("short", DAMAGE, "{n} chunk(s) held fewer frames than their seek table said"),
    Rule("unstructured", DAMAGE, "{n} frame(s) that do not structure"),
    Rule("duplicate", DAMAGE, "{n} duplicate or reused seq(s) (two writers?)"),
    Rule("backwards", DAMAGE, "time goes back {n} time(s) within a run"),
    Rule("overlap", DAMAGE, "{n} segment(s) overlap the one before in time (two writers?)"),
    Rule("summary", DAMAGE, "{n} stored chunk summary(ies) inconsistent with the chunk"),
    Rule("zeros", NOTE, "{n} zero byte(s) after the end ({where}): nothing lost"),
    Rule(
        "unclosed", NOTE, "not closed cleanly (a crash, or still recording): flushed frames intact"
    ),
    Rule("runs", NOTE, "{n} concatenated recordings"),
    Rule("clock", NOTE, "time goes back {n} time(s) between concatenated recordings"),
)
_RULES: Final = {rule.name: rule for rule in FINDINGS}
# The finding each kind of damage the reader records is counted under.
RULE_OF_DAMAGE: Final = {
    DamageKind.CORRUPT_LINE: "corrupt",
    DamageKind.OVERSIZED_LINE: "oversized",
    DamageKind.TORN_TAIL: "torn",
    DamageKind.CUT_INSIDE: "cut",
    DamageKind.UNDECODABLE: "undecodable",
    DamageKind.TABLE_DAMAGED: "table",
    DamageKind.SHORT_CHUNK: "short",
    DamageKind.UNSTRUCTURED: "unstructured",
    DamageKind.SUMMARY_MISMATCH: "summary",
    DamageKind.ZEROS: "zeros",
    DamageKind.CUT_SHORT: "unclosed",
}


@attrs.frozen
class Finding:
    rule: Rule
    n: int = 1
    where: str = ""

    @property
    def text(self) -> str:
        return self.rule.text.format(n=f"{self.n:,}", where=self.where)


@attrs.frozen
class HostTrouble:
    """A host that failed or was missing in at least one frame (module header)."""

    host: str
    failed: int  # frames with an error naming it
    missing: int  # frames without its rows
    first_t_ms: int  # time of the first frame, in file order, in which it failed or was missing
    last_t_ms: int  # ... and of the last


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
    findings: list[Finding]
    deep: bool
    unreadable_frames: int = 0
    summaries: str = "none"  # the summaries row
    error_frames: int = 0  # frames with any error
    troubled: list[HostTrouble] = attrs.field(factory=list)  # every one, worst first

    def count(self, name: str) -> int:
        return sum(f.n for f in self.findings if f.rule.name == name)

    @property
    def damage(self) -> list[str]:
        return [f.text for f in self.findings if f.rule.status == DAMAGE]

    @property
    def notes(self) -> list[Finding]:
        return [f for f in self.findings if f.rule.status == NOTE]

    @property
    def status(self) -> int:
        return max((f.rule.status for f in self.findings), default=0)


@attrs.define
class _Walk:
    """What one pass over every frame learns: times, and seq/time order per run."""

    times: list[int] = attrs.field(factory=list)
    per_segment: dict[int, int] = attrs.field(factory=dict)  # frames of each segment
    duplicates: int = 0
    backwards: int = 0  # within a run of one writer
    between_runs: int = 0  # at the start of a concatenated run
    overlaps: int = 0
    error_frames: int = 0  # frames with any error
    hosts: dict[str, _HostWatch] = attrs.field(factory=dict)  # expected, in first-seen order

    def take_hosts(self, index: int, facts: LineFacts, header: frozenset[str]) -> None:
        """Count frame ``index`` (its hosts with rows and its errors: :func:`line_facts`)
        into every host's faults."""
        present, errors = facts
        hosts = self.hosts
        for host in present:
            watch = hosts.get(host)
            if watch is None:
                watch = hosts[host] = _HostWatch()
            watch.present(index)
        if errors:
            self.error_frames += 1
            expected = header.union(present) if present else header
            named = {error_host(e, expected) for e in errors}
            for host in sorted(h for h in named if h is not None):
                watch = hosts.get(host)
                if watch is None:  # a header host
                    watch = hosts[host] = _HostWatch()
                watch.failed += 1
                watch.mark(index)

    def troubled(self) -> list[HostTrouble]:
        """Every host that failed or was missing in some frame, worst first (most frames
        failed or missing; as bad as each other: the header's order, then first seen)."""
        frames = len(self.times)
        found = []
        for host, watch in self.hosts.items():
            first, last = watch.first, watch.last
            if watch.last_present < frames - 1:  # the frames after its last rows missed it
                after = watch.last_present + 1
                first = after if first is None else min(first, after)
                last = frames - 1
            if first is not None:
                found.append(
                    HostTrouble(
                        host, watch.failed, frames - watch.seen, self.times[first], self.times[last]
                    )
                )
        return sorted(found, key=lambda h: -(h.failed + h.missing))


@attrs.define
class _HostWatch:
    """One host over the walk: frames failed and seen, and the first and last frame (by
    index) in which it failed or was missing."""

    failed: int = 0
    seen: int = 0
    last_present: int = -1
    first: int | None = None
    last: int = -1

    def present(self, index: int) -> None:
        """The host has rows in frame ``index``: the frames since its last rows missed it."""
        if self.last_present < index - 1:
            self.mark(self.last_present + 1)
            self.mark(index - 1)
        self.last_present = index
        self.seen += 1

    def mark(self, index: int) -> None:
        self.first = index if self.first is None else min(self.first, index)
        self.last = max(self.last, index)


@attrs.define
class _Pending:
    """A stored summary that passed its reading checks, and the summary of its chunk's
    frames as they are structured."""

    name: str  # "<segment> #<chunk within it>"
    segment: int
    first: int
    count: int
    stored: Summary
    built: Summary


@attrs.define
class _Summaries:
    """What the stored chunk summaries of the recording turned out to be."""

    without: list[str] = attrs.field(factory=list)  # why segments have none
    chunks: int = 0  # chunks of the zstd segments
    stored: int = 0  # of those, with a summary frame
    bad: list[tuple[int, str]] = attrs.field(factory=list)  # (segment, name) inconsistent
    pending: list[_Pending] = attrs.field(factory=list)

    def take(self, index: int, found: Frame | Damage | SummaryInputs | None) -> None:
        """Count frame ``index`` (structured, or what :func:`summary_inputs` reads of its
        line; a Damage or None counts nothing) into the summary its chunk's is compared
        with; a chunk complete is compared. Frames come in increasing order."""
        while self.pending and index >= self.pending[0].first + self.pending[0].count:
            self._compare(self.pending.pop(0))
        if self.pending and index >= self.pending[0].first:
            if isinstance(found, Frame):
                self.pending[0].built.add(found)
            elif isinstance(found, tuple):
                self.pending[0].built.add_readings(*found)

    def finish(self) -> None:
        while self.pending:
            self._compare(self.pending.pop(0))

    def _compare(self, check: _Pending) -> None:
        if check.built != check.stored:
            self.bad.append((check.segment, check.name))

    def text(self) -> str:
        if not self.stored:
            return f"none ({', '.join(sorted(set(self.without)))})"
        listed = ", ".join(name for _, name in self.bad[:MAX_CHUNKS_LISTED])
        more = f", … {len(self.bad) - MAX_CHUNKS_LISTED} more" if len(self.bad) > 5 else ""
        held = f"stored for {self.stored:,} of {self.chunks:,} chunks"
        if self.bad:
            return f"{held}; {len(self.bad):,} inconsistent (chunks {listed}{more})"
        return f"{held}, all consistent"


def _stored_summaries(source: RecordingSource) -> _Summaries:
    """Every stored summary of the recording read and checked as the replay reads them; the
    ones that pass wait for their chunk's frames."""
    found = _Summaries()
    for seg_index, segment in enumerate(source.segments):
        chunks = [c for c in source.chunks if c.segment == seg_index]
        if segment.codec != "zstd":
            found.without.append("plain" if segment.codec == "none" else segment.codec)
            continue
        found.chunks += len(chunks)
        stored = read_stored(segment.path, segment, chunks)
        if not any(s.present for s in stored):
            seek = segment.opened_by in ("footer", "markers")
            found.without.append("written before summaries" if seek else "no usable seek table")
        header = segment.header or source.header
        for n, (chunk, one) in enumerate(zip(chunks, stored, strict=True)):
            if not one.present:
                continue
            found.stored += 1
            name = f"{segment.path.name} #{n}"
            if one.summary is None or chunk.count is None:
                found.bad.append((seg_index, name))
                continue
            found.pending.append(
                _Pending(
                    name,
                    seg_index,
                    chunk.first_index,
                    chunk.count,
                    one.summary,
                    new_summary(header),
                )
            )
    return found


def build_report(
    source: RecordingSource, *, deep: bool, progress: PassProgress | None = None
) -> Report:
    header = source.header
    interval = header.interval_ms if header else None
    walk = _walk(source, progress)
    hosts: dict[str, None] = dict.fromkeys(header.hosts if header else ())
    unstructured: list[Damage] = []
    summaries = _stored_summaries(source)
    if deep and progress is not None:
        progress.frames_phase(STRUCTURING, source.frame_count)
    if deep or not hosts:
        for i in range(source.frame_count) if deep else range(min(1, source.frame_count)):
            if progress is not None and not i % PROGRESS_EVERY:
                progress.advanced(i, source.frame_count)
            found = source.structure(i)
            if deep:
                summaries.take(i, found)
            if isinstance(found, Damage):
                unstructured.append(found)
            else:
                hosts.update(dict.fromkeys(found.hosts()))
        if deep:
            summaries.finish()  # every frame was taken: every chunk is complete
    _compare_summaries(source, summaries, progress)
    hosts.update(dict.fromkeys(walk.hosts))  # every host with rows in some frame
    segments = source.segments
    times = walk.times
    return Report(
        path=source.path,
        segments=[s.path.name for s in segments],
        codecs=sorted({s.codec for s in segments}),
        opened_by=[s.opened_by for s in segments],
        frames=len(times),
        first_t_ms=times[0],
        last_t_ms=times[-1],
        duration_ms=source.duration_ms,
        interval_ms=interval,
        hosts=tuple(hosts),
        gaps=_gaps(times, interval),
        findings=_findings(segments, walk, unstructured),
        deep=deep,
        unreadable_frames=len(unstructured),
        summaries=summaries.text(),
        error_frames=walk.error_frames,
        troubled=walk.troubled(),
    )


def _compare_summaries(
    source: RecordingSource, summaries: _Summaries, progress: PassProgress | None
) -> None:
    """Read the frames of every chunk with a stored summary not yet compared (those left by
    a pass that was not ``--deep``), compare, and note each inconsistent one on its segment
    as damage. A frame is read as the map scan reads it (orjson and
    :func:`~allsmi.adapters.recording.mapscan.summary_inputs`: exactly what its structured
    frame counts, at a fraction of structuring's cost)."""
    total = sum(p.count for p in summaries.pending)
    if total and progress is not None:
        progress.frames_phase(STRUCTURING, total)
    done = 0
    for check in list(summaries.pending):
        last = min(check.first + check.count, source.frame_count)
        for i in range(check.first, last):
            if progress is not None and not done % PROGRESS_EVERY:
                progress.advanced(done, total)
            try:
                obj = orjson.loads(source.raw(i))
            except orjson.JSONDecodeError:
                obj = None
            summaries.take(i, summary_inputs(obj) if type(obj) is dict else None)
            done += 1
    summaries.finish()
    for seg_index, _ in summaries.bad:
        source.segments[seg_index].note(Damage(DamageKind.SUMMARY_MISMATCH))


def _findings(segments: list[SegmentInfo], walk: _Walk, frames: list[Damage]) -> list[Finding]:
    """Every finding: the reader's damage records counted by kind (regions of stored bytes
    also say where they are), then what the walk over the frames saw."""
    counts = dict.fromkeys((rule.name for rule in FINDINGS), 0)
    regions: dict[str, list[tuple[SegmentInfo, Damage]]] = {
        "undecodable": [],
        "cut": [],
        "zeros": [],
    }
    kept = {s.path: walk.per_segment.get(i, 0) for i, s in enumerate(segments)}
    for segment in segments:
        for damage in segment.damage:
            name = RULE_OF_DAMAGE[damage.kind]
            if name in regions:
                regions[name].append((segment, damage))
            elif name != "unclosed":  # once per segment, however it shows: _unclosed
                counts[name] += damage.count
    for damage in frames:
        counts[RULE_OF_DAMAGE[damage.kind]] += damage.count
    counts["unclosed"] = sum(_unclosed(s) for s in segments)
    counts["duplicate"] = walk.duplicates
    counts["backwards"] = walk.backwards
    counts["overlap"] = walk.overlaps
    counts["runs"] = sum(s.runs for s in segments) if any(s.runs > 1 for s in segments) else 0
    counts["clock"] = walk.between_runs
    found = [Finding(_RULES[name], n) for name, n in counts.items() if n]
    for name, listed in regions.items():
        if listed:
            where = ", ".join(
                f"{s.path.name} at {d.offset:,}"
                + (f", {kept[s.path]:,} complete frame(s) kept" if name == "cut" else "")
                for s, d in listed[:3]
            )
            more = f", … {len(listed) - 3} more" if len(listed) > 3 else ""
            found.append(Finding(_RULES[name], sum(d.count for _, d in listed), where + more))
    order = {rule.name: i for i, rule in enumerate(FINDINGS)}
    return sorted(found, key=lambda f: order[f.rule.name])


def _unclosed(segment: SegmentInfo) -> bool:
    """Our zstd file without its footer, or a compressed unit cut short at the end — unless
    the end is cut inside a block: that lost bytes, and is damage instead."""
    if segment.count(DamageKind.CUT_INSIDE):
        return False
    return segment.opened_by == "markers" or bool(segment.count(DamageKind.CUT_SHORT))


def _walk(source: RecordingSource, progress: PassProgress | None = None) -> _Walk:
    """Every frame once, in order: time and seq checked within each writer's run, and each
    segment or concatenated run against everything before it; its hosts and errors counted
    into each host's faults (module header)."""
    header = source.header
    expected = tuple(header.hosts) if header else ()
    walk = _Walk(hosts={host: _HostWatch() for host in expected})
    header_hosts = frozenset(expected)
    prev_t: int | None = None  # the previous frame's time in this run
    prev_seq: int | None = None
    latest: int | None = None  # the latest time so far
    if progress is not None:
        progress.frames_phase(CHECKING, source.frame_count)
    for done, (segment, frame_in_segment, t_ms, seq, facts) in enumerate(
        _frames(source, ShapeFacts())
    ):
        if progress is not None and not done % PROGRESS_EVERY:
            progress.advanced(done, source.frame_count)
        walk.take_hosts(done, facts, header_hosts)
        info = source.segments[segment]
        if frame_in_segment == 0 or frame_in_segment in info.run_starts:
            behind = latest is not None and t_ms < latest
            if frame_in_segment == 0:  # a rotated segment, or a restart: numbering goes on
                walk.overlaps += behind
                walk.duplicates += _reused(seq, prev_seq)
            else:  # a concatenated recording: its own clock and numbering
                walk.between_runs += behind
        else:
            if prev_t is not None and t_ms < prev_t:
                if info.ours:  # our writer never lets time go back within a run
                    walk.backwards += 1
                else:
                    walk.between_runs += 1
            walk.duplicates += _reused(seq, prev_seq)
        prev_t = t_ms
        prev_seq = seq if seq is not None else prev_seq
        latest = t_ms if latest is None else max(latest, t_ms)
        walk.times.append(t_ms)
        walk.per_segment[segment] = frame_in_segment + 1
    return walk


def _reused(seq: int | None, before: int | None) -> bool:
    return seq is not None and before is not None and seq <= before


LineFacts = tuple[tuple[str, ...], tuple[str, ...]]  # (hosts with rows, errors) of a frame


_HOST_ID: Final = re.compile(rb'"host_id":"([^"\\]*)"')
_HOST_ID_KEY: Final = b'"host_id":"'
_OURS: Final = b'{"schema":1,"t":"'
_NO_ERRORS: Final = b',"errors":[]}'
_PROCESS_ROWS: Final = b'"processes":[{'
MAX_SHAPES: Final = 4096  # line shapes whose facts one walk remembers


class ShapeFacts:
    """:func:`line_facts` remembered by line shape. One of our lines without errors and
    without process rows (whose ``host_id`` names no per-host row) has the facts of any
    other with the same ``host_id`` values in the same order, found in C, far cheaper than
    the parse: a recording's frames come in a handful of such shapes, so most lines are
    never parsed. Only a line the quick read took whole sets a shape's facts (a damaged
    line never does). A line whose ids the search cannot read whole (an escape in one),
    with errors or process rows, or not ours, is parsed. The price: a line of a known shape
    damaged in the middle counts as its shape; ``--deep`` structures every frame and
    reports those that do not structure."""

    def __init__(self) -> None:
        self.shapes: dict[tuple[bytes, ...], LineFacts] = {}

    def __call__(self, raw: bytes) -> LineFacts:
        if not raw.startswith(_OURS) or not raw.endswith(_NO_ERRORS) or _PROCESS_ROWS in raw:
            return line_facts(raw)
        ids = tuple(_HOST_ID.findall(raw))
        if raw.count(_HOST_ID_KEY) != len(ids):
            return line_facts(raw)
        found = self.shapes.get(ids)
        if found is None:
            quick = _quick_facts(raw)
            if quick is None:
                return line_facts(raw)
            found = quick
            if len(self.shapes) < MAX_SHAPES:
                self.shapes[ids] = found
        return found


def _quick_facts(raw: bytes) -> LineFacts | None:
    """:func:`line_facts` when the quick read takes the line whole, else None."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return hosts_and_errors(obj) if type(obj) is dict else None


def line_facts(raw: bytes) -> LineFacts:
    """The hosts with rows and the errors of a frame's stored line, as the map scan reads
    them (:func:`~allsmi.adapters.recording.mapscan.summary_inputs`); a line that will not
    structure is the errors-only frame the replay shows."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return (), UNREADABLE
    if type(obj) is not dict:
        return (), UNREADABLE
    quick = hosts_and_errors(obj)
    if quick is not None:
        return quick
    found = summary_inputs(obj)
    return ((), UNREADABLE) if found is None else (tuple(found[1]), tuple(found[4]))


def _frames(
    source: RecordingSource, facts: ShapeFacts
) -> Iterator[tuple[int, int, int, int | None, LineFacts]]:
    """(segment, frame within it, t, seq, :func:`line_facts`) of every frame. A segment the
    source scanned takes them from the scan's log of its frames (the scan read each line's
    facts as it went: the segment is decoded once); any other is read chunk by chunk, its
    count re-read each step, since a chunk that held fewer frames than its table said
    shrinks the timeline."""
    index = 0
    segment, within = -1, 0
    while index < source.frame_count:
        at = source.segment_of(index)
        log = _log_of(source, at) if at != segment else None
        if log is not None:
            for within, (t_ms, seq) in enumerate(zip(log.times, log.seqs, strict=True)):
                logged = cast(LineFacts, log.value(within))
                yield at, within, t_ms, seq if seq >= 0 else None, logged
            index += len(log.times)
            segment, within = at, len(log.times)
            continue
        raw = source.raw(index)
        if at != segment:
            segment, within = at, 0
        info = wire.slice_line(raw)
        number = info.seq if info is not None else None
        yield segment, within, source.time_at(index), number, facts(raw)
        within += 1
        index += 1


def _log_of(source: RecordingSource, segment: int) -> FrameLog | None:
    """The scan's log of ``segment`` when it holds exactly the frames the timeline counts."""
    log = (source.frame_logs or {}).get(segment)
    span = source.timeline.segment_span(segment)
    if log is None or not isinstance(log.read, ShapeFacts) or span is None:
        return None
    first, last = source.chunks[span[0]], source.chunks[span[1]]
    if last.count is None or last.first_index + last.count - first.first_index != len(log.times):
        return None
    return log


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
        ("skipped", f"{report.count('corrupt')} corrupt, {report.count('oversized')} oversized"),
        ("torn tail", _torn_text(report)),
        ("summaries", report.summaries),
    ]
    if report.deep:
        rows.append(("deep", f"every frame structured; {report.unreadable_frames} failed"))
    rows += [(note.rule.name, note.text) for note in report.notes]
    rows.append(("errors", f"{report.error_frames:,} frame(s) with an error"))
    if report.troubled:
        rows.append(("failed", _failed_head(report)))
    for key, value in rows:
        out.write(f"{key + ':':<12}{value}\n")
    for line in _failed_lines(report.troubled):
        out.write(f"  {line}\n")
    out.write(verdict(report) + "\n")


def verdict(report: Report) -> str:
    """The last line: the file's soundness, and whether hosts failed (module header)."""
    damage = report.damage
    hosts = _failed_count(report)
    if damage:
        return "DAMAGED: " + "; ".join(damage) + (f" (and {hosts})" if hosts else "")
    return f"OK (file sound; {hosts})" if hosts else "OK"


def _failed_count(report: Report) -> str:
    """``3 of 20 hosts failed, 1 of 20 hosts missing in some frames`` (``in every frame``
    when each of them was so in every frame); empty when none."""
    total = len(report.hosts)
    failed = sum(1 for h in report.troubled if h.failed)
    missing = sum(1 for h in report.troubled if h.missing)
    parts = [f"{failed:,} of {total:,} hosts failed"] if failed else []
    parts += [f"{missing:,} of {total:,} hosts missing"] if missing else []
    always = all(
        h.failed in (0, report.frames) and h.missing in (0, report.frames) for h in report.troubled
    )
    return ", ".join(parts) + (" in every frame" if always else " in some frames") if parts else ""


def _failed_head(report: Report) -> str:
    shown = min(len(report.troubled), MAX_FAILED_LISTED)
    worst = f"the {shown} worst" if shown < len(report.troubled) else "worst first"
    return f"{_failed_count(report)} (frames failed, frames missing, first – last; {worst}):"


def _failed_lines(troubled: list[HostTrouble]) -> list[str]:
    """One line per host listed, then how many more there are."""
    listed = troubled[:MAX_FAILED_LISTED]
    width = max((len(h.host) for h in listed), default=0)
    lines = [
        f"{h.host:<{width}}  failed {h.failed:,}, missing {h.missing:,}; "
        f"{format_rfc3339_ms(h.first_t_ms)} – {format_rfc3339_ms(h.last_t_ms)}"
        for h in listed
    ]
    if len(troubled) > len(listed):
        lines.append(f"… and {len(troubled) - len(listed):,} more hosts (only the worst listed)")
    return lines


def _torn_text(report: Report) -> str:
    """A torn last line (plain), or a compressed file cut inside a block: both end in
    bytes that are no complete frame, and both are damage."""
    if report.count("cut"):
        return f"yes: cut inside a compressed block, {report.count('cut'):,} stored byte(s) lost"
    return "yes" if report.count("torn") else "no"


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
        f"{len(report.hosts)} host(s), {len(report.gaps)} gap(s): " + verdict(report)
    )


class _WatchedSource(RecordingSource):
    """A recording source that tells ``progress`` which segment it opens: the reader's
    progress callback is a fraction of the bytes of the segment being scanned."""

    def __init__(self, path: Path, progress: PassProgress) -> None:
        self._watch = progress
        super().__init__(path, progress=progress.scanned, log_frames=True, log_lines=ShapeFacts())

    def open_segment(self, path: Path) -> None:
        self._watch.opening(path)
        super().open_segment(path)
        self._watch.opened(self.frame_count)


def open_watched(path: Path, progress: PassProgress) -> RecordingSource:
    """The recording at ``path``, its opening told to ``progress`` against the stored size of
    every segment of the set (a missing or unreadable one counts 0: the source says why)."""
    sizes: dict[Path, int] = {}
    for segment in discover(path):
        try:
            sizes[segment] = segment.stat().st_size
        except OSError:
            sizes[segment] = 0
    progress.indexing(sizes)
    return _WatchedSource(path, progress)


def read_report(path: Path, *, deep: bool, progress: PassProgress) -> Report:
    """The report on the recording at ``path``, read with ``progress`` shown; the line is
    erased however this ends, so the report or the one error line (an unreadable file, an
    interrupt: docs/architecture.md §7.3) is all the terminal keeps."""
    try:
        with open_watched(path, progress) as source:
            return build_report(source, deep=deep, progress=progress)
    finally:
        progress.clear()


def run(args: argparse.Namespace) -> int:
    given: list[str] = [args.path] if isinstance(args.path, str) else list(args.path)
    stderr = sys.stderr
    line = ProgressLine(
        stderr,
        time.monotonic,
        enabled=stderr.isatty(),
        columns=lambda: terminal_columns(stderr),
    )
    if len(given) > 1 or Path(given[0]).is_dir():
        return _run_several(given, deep=args.deep, line=line)
    progress = PassProgress(line, time.monotonic)
    report = read_report(Path(given[0]), deep=args.deep, progress=progress)
    render(report, sys.stdout)
    if report.status:
        sys.stdout.flush()
        sys.stderr.write(f"allsmi verify: damage found in {given[0]}: {'; '.join(report.damage)}\n")
    return report.status


# ----------------------------------------------------------------- several recordings

UNREADABLE_STATUS: Final = 2  # a recording that cannot be read (the CLI's status for one)


@attrs.frozen
class Verified:
    """What the merged summary keeps of one recording's verify (module header): its name, its
    status (0, 1 damage, 2 unreadable), its span and hosts, and why it failed (a damaged
    one's findings, an unreadable one's reason), empty when it did not."""

    name: str
    status: int
    first_t_ms: int = 0
    last_t_ms: int = 0
    hosts: tuple[str, ...] = ()
    problem: str = ""

    @property
    def span(self) -> tuple[int, int]:
        """First..last frame time, in order even where the clock went back."""
        return min(self.first_t_ms, self.last_t_ms), max(self.first_t_ms, self.last_t_ms)


def recordings_given(given: Sequence[str]) -> list[tuple[str, str]]:
    """(name, why it cannot be read — empty when it may) of each recording ``given`` names: a
    directory as the recordings in it (module header), each once; a directory that cannot be
    listed or holds none is itself one that cannot be read."""
    found: list[tuple[str, str]] = []
    seen: set[Path] = set()
    for path in given:
        try:
            names = [str(p) for p in recordings_in([Path(path)])]
        except AllsmiError as err:
            found.append((path, str(err)))
            continue
        for name in names:
            real = Path(name).resolve()
            if real not in seen:
                seen.add(real)
                found.append((name, ""))
    return found


def verify_one(name: str, *, deep: bool, line: ProgressLine, out: TextIO) -> Verified:
    """Verify the recording ``name`` and print its report (or why it cannot be read) under
    its heading line."""
    out.write(f"==> {name} <==\n")
    try:
        report = read_report(Path(name), deep=deep, progress=PassProgress(line, time.monotonic))
    except AllsmiError as err:
        return _unreadable(name, str(err), out)
    render(report, out)
    return Verified(
        name,
        report.status,
        report.first_t_ms,
        report.last_t_ms,
        report.hosts,
        "; ".join(report.damage),
    )


def _unreadable(name: str, reason: str, out: TextIO) -> Verified:
    told = reason if name in reason else f"{name}: {reason}"
    out.write(f"{'unreadable:':<12}{reason}\n")
    return Verified(name, UNREADABLE_STATUS, problem=told)


def _run_several(given: Sequence[str], *, deep: bool, line: ProgressLine) -> int:
    inputs = recordings_given(given)
    if len(given) == 1 and inputs[0][1]:  # a lone directory without a recording
        raise RecordingUnreadable(inputs[0][1])
    out = sys.stdout
    verified: list[Verified] = []
    for n, (name, reason) in enumerate(inputs):
        if n:
            out.write("\n")
        if reason:
            out.write(f"==> {name} <==\n")
            verified.append(_unreadable(name, reason, out))
        else:
            verified.append(verify_one(name, deep=deep, line=line, out=out))
    out.write("\n")
    render_merged(verified, out)
    out.flush()
    for one in verified:
        if one.status == UNREADABLE_STATUS:
            sys.stderr.write(f"allsmi verify: {one.problem}\n")
        elif one.status:
            sys.stderr.write(f"allsmi verify: damage found in {one.name}: {one.problem}\n")
    return max(one.status for one in verified)


def render_merged(verified: Sequence[Verified], out: TextIO) -> None:
    """The merged summary (module header) of the recordings verified, in the order given:
    the ``shared`` row counts the hosts, then a line for each pair of recordings that share
    any, naming them and their hosts."""
    read = [v for v in verified if v.status != UNREADABLE_STATUS]
    counts = [
        (sum(1 for v in verified if v.status == 0), "OK"),
        (sum(1 for v in verified if v.status == DAMAGE), "damaged"),
        (len(verified) - len(read), "unreadable"),
    ]
    told = ", ".join(f"{n:,} {word}" for n, word in counts if n)
    rows = [("recordings", f"{len(verified):,} ({told})")]
    if read:
        first = min(v.span[0] for v in read)
        last = max(v.span[1] for v in read)
        hosts: dict[str, None] = {}
        for v in read:
            hosts.update(dict.fromkeys(v.hosts))
        rows += [
            ("first", format_rfc3339_ms(first)),
            ("last", format_rfc3339_ms(last)),
            ("span", format_offset(last - first)),
            ("hosts", _hosts(tuple(hosts))),
        ]
    spans = [v.span for v in read]
    alone = [
        f"{read[n].name} ({format_offset(spans[n][1] - spans[n][0])} long)"
        for n in overlapping_none(spans)
    ]
    pairs: dict[tuple[int, int], list[str]] = {}
    shared = shared_hosts([v.hosts for v in read], spans)
    for host, pair in shared.items():
        pairs.setdefault(pair, []).append(host)
    rows += [
        ("alone", _listed(alone)),
        ("shared", f"{len(shared):,} host(s) in two recordings at once" if shared else "none"),
    ]
    out.write(f"==> merged: {len(verified):,} recordings <==\n")
    for key, value in rows:
        out.write(f"{key + ':':<12}{value}\n")
    for (a, b), listed in sorted(pairs.items())[:MAX_HOSTS_LISTED]:
        out.write(f"  {read[a].name} and {read[b].name}: {_listed(listed, counted=False)}\n")
    if len(pairs) > MAX_HOSTS_LISTED:
        out.write(f"  … and {len(pairs) - MAX_HOSTS_LISTED:,} more pairs\n")
    out.write(merged_verdict(verified) + "\n")


def merged_verdict(verified: Sequence[Verified]) -> str:
    """``OK``, or which recordings were damaged and which could not be read."""
    parts = []
    for status, word in ((DAMAGE, "DAMAGED"), (UNREADABLE_STATUS, "UNREADABLE")):
        bad = [v.name for v in verified if v.status == status]
        if bad:
            listed = _listed(bad, counted=False)
            parts.append(f"{word}: {len(bad):,} of {len(verified):,} recordings ({listed})")
    return "; ".join(parts) or "OK"


def _listed(items: Sequence[str], *, counted: bool = True) -> str:
    """``none``, or (how many, and) the first :data:`MAX_HOSTS_LISTED` of them."""
    if not items:
        return "none"
    more = len(items) - MAX_HOSTS_LISTED
    return (
        (f"{len(items):,}: " if counted else "")
        + ", ".join(items[:MAX_HOSTS_LISTED])
        + (f", … {more:,} more" if more > 0 else "")
    )


def overlapping_none(spans: Sequence[tuple[int, int]]) -> list[int]:
    """The indexes of the spans (first, last; inclusive) that overlap no other, when there
    are two or more: one sweep in order of start."""
    if len(spans) < 2:
        return []
    order = sorted(range(len(spans)), key=lambda n: spans[n])
    alone: list[int] = []
    reach: int | None = None  # the latest end of the spans before in that order
    for k, n in enumerate(order):
        first, last = spans[n]
        before = reach is not None and reach >= first
        after = k + 1 < len(order) and spans[order[k + 1]][0] <= last
        if not before and not after:
            alone.append(n)
        reach = last if reach is None else max(reach, last)
    return sorted(alone)


def shared_hosts(
    hosts: Sequence[tuple[str, ...]], spans: Sequence[tuple[int, int]]
) -> dict[str, tuple[int, int]]:
    """Each host two recordings list over overlapping spans → the first such pair found (in
    the order given), hosts in first-listed order."""
    owners: dict[str, list[int]] = {}
    for n, listed in enumerate(hosts):
        for host in dict.fromkeys(listed):
            owners.setdefault(host, []).append(n)
    found: dict[str, tuple[int, int]] = {}
    for host, ns in owners.items():
        if len(ns) < 2:
            continue
        holder: int | None = None  # of those before, in order of start, the latest to end
        for n in sorted(ns, key=lambda m: spans[m]):
            if holder is not None and spans[n][0] <= spans[holder][1]:
                found[host] = (min(holder, n), max(holder, n))
                break
            if holder is None or spans[n][1] > spans[holder][1]:
                holder = n
    return found
