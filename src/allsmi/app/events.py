"""``allsmi events PATH…``: what happened in recordings, a line an event (README "Events";
the detection is :mod:`allsmi.domain.events`).

Rules: the events the recorder stored with its summaries are taken as they are when every
chunk of the recording carries them (a zstd recording of one run closed by its recorder:
:func:`~allsmi.adapters.recording.summaries.stored_events`). Otherwise the recording is read
as the replay's search reads it (:func:`~allsmi.adapters.recording.eventscan.events_by_line`:
each header told, so a concatenated run's new recorder start is a ``restart`` too; a line
that does not structure skipped), and so agrees with ``n``; ``--follow`` feeds the same
:class:`~allsmi.domain.events.Detector` each frame the reader gives, each segment's header
first (a line that does not structure is the errors-only frame the replay shows for it).
Events are printed in time order, each once, after
the filters (``--host`` by id or shown name, ``--kind``, ``--from`` and ``--to`` as ``g``
reads a time). Text: offset, recorded wall time in the local zone, host, GPU, kind and
message, tab-free and aligned, a character that does not print (a hostile host id's ESC or
newline) shown as its escape; ``--format json``: one object per line with ``t`` (RFC 3339),
``offset_ms``, ``host``, ``gpu`` (its index, its uuid where it has none, or null), ``kind``
and ``message``.

Several PATHs are separate recordings: each is detected on its own (its own detector, its
offsets and ``--from``/``--to`` from its own first frame, its own host names), then all their
events are printed merged in time order (ties in the order the paths were given). Then a text
line begins with the PATH as given, and a JSON object with ``file`` (the PATH as given) before
``t``; with one PATH neither appears. A PATH that is a directory stands for the recordings in
it (:func:`~allsmi.adapters.recording.merged.recordings_in`: each rotated set once, by its
active name, in name order), each named ``DIR/NAME`` — a directory's lines always name their
file, however many it holds — and one that holds none is the one error line. Every PATH is
read before anything is printed: one that cannot be read is the one error line, and nothing
is printed.

``--follow`` (one recording: a directory that holds one is that one): the events already
recorded, then, polling every :data:`POLL_S` through
:class:`~allsmi.adapters.recording.follow.FollowingSource` (rotation, eviction and a restarted
recorder included), each new frame fed to the same detector and each event printed as it is
confirmed, stdout flushed a line at a time. What only the end of a recording
confirms (:meth:`~allsmi.domain.events.Detector.finish`: a gap or a power-drop still open) is
not printed until a later frame confirms it. Offsets count from the first frame there was
when following began. SIGTERM, SIGINT (Ctrl-C) and SIGHUP end it with exit 0 and nothing on
stderr; so does its reader going away (a closed pipe). Exit 0 (events or none), 2 for an
unreadable recording, a bad filter or ``--follow`` with several PATHs, always one line on
stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import select
import signal
import sys
import time
from collections.abc import Callable, Iterator
from datetime import tzinfo
from pathlib import Path
from types import FrameType
from typing import Final, TextIO

import attrs
import orjson

from allsmi.adapters.recording.eventscan import events_by_line
from allsmi.adapters.recording.follow import FollowingSource, FollowUpdate
from allsmi.adapters.recording.merged import recordings_in
from allsmi.adapters.recording.source import RecordingSource
from allsmi.adapters.recording.summaries import stored_events
from allsmi.app.replay_driver import local_zone
from allsmi.app.replay_map import stored_parts
from allsmi.app.signals import STOP_SIGNALS
from allsmi.domain.errors import UsageError
from allsmi.domain.events import KINDS, Detector, Event
from allsmi.domain.hosts import host_names
from allsmi.domain.model import normalise_host_id
from allsmi.domain.parse import (
    Timecode,
    format_offset,
    format_rfc3339_ms,
    parse_timecode,
    resolve_timecode,
)
from allsmi.domain.screen import format_local

POLL_S: Final = 0.2  # --follow looks for new frames this often (an event within 2 s)

Source = RecordingSource | FollowingSource


class _Feed:
    """One recording's frames fed to one :class:`Detector` in order, each once; a segment's
    header is told before its first frame (``restart``)."""

    def __init__(self, source: Source) -> None:
        header = source.header
        self.detector = Detector(
            expected_hosts=header.hosts if header else (),
            interval_ms=header.interval_ms if header else None,
        )
        self.next = 0  # the index of the next frame to feed
        self._segment: int | None = None  # the segment of the last frame fed
        self._key: int | None = None  # the seek key of the last frame fed

    def take(self, source: Source, stop: Callable[[], bool] = lambda: False) -> list[Event]:
        """The events the frames not fed yet confirm, ordered by time."""
        found: list[Event] = []
        while self.next < source.frame_count and not stop():  # the count is re-read: reading
            segment = source.segment_of(self.next)  # may recount frames
            if segment != self._segment:
                self._segment = segment
                found += self.detector.segment(source.segments[segment].header)
            found += self.detector.feed(source.frame(self.next))
            self._key = source.key_at(self.next)
            self.next += 1
        found.sort(key=lambda event: event.t_ms)
        return found

    def moved(self, source: Source, update: FollowUpdate) -> None:
        """Frames were evicted from the start, or counted anew: find the next one again (by
        the key of the last fed, so nothing is fed twice)."""
        if update.rebuilt and self._key is not None:
            at = source.index_at_or_before(self._key)
            self.next = at + 1 if source.key_at(at) <= self._key else at
        elif update.dropped:
            self.next = max(0, self.next - update.dropped)


def events_of(source: RecordingSource) -> list[Event]:
    """Every event of the recording, in time order: those the recorder stored, when it
    stored them all (no frame read), else detected from every frame."""
    parts = stored_parts(source)
    stored = None if parts is None else stored_events(parts)
    if stored is not None:
        return stored
    header = source.header
    detector = Detector(
        expected_hosts=header.hosts if header else (),
        interval_ms=header.interval_ms if header else None,
    )
    found = [event for line in events_by_line(source.path, detector) for event in line]
    found += detector.finish()
    found.sort(key=lambda event: event.t_ms)
    return found


@attrs.frozen
class _Filters:
    """The filters and the format, as given."""

    kinds: frozenset[str]
    hosts: tuple[str, ...]
    start: Timecode | None
    end: Timecode | None
    form: str


class _Lines:
    """One recording's events as the lines printed (None: filtered out)."""

    def __init__(self, source: Source, filters: _Filters, tz: tzinfo, file: str | None) -> None:
        first, last = source.first_t_ms, source.last_t_ms
        self.first = first
        self.start = (
            None if filters.start is None else resolve_timecode(filters.start, first, last, tz)
        )
        self.end = None if filters.end is None else resolve_timecode(filters.end, first, last, tz)
        self.names = _names(source)
        self.hosts = _hosts(filters.hosts, self.names)
        self.kinds = filters.kinds
        self.form = filters.form
        self.tz = tz
        self.file = file

    def line(self, event: Event) -> str | None:
        offset = event.t_ms - self.first
        if (self.start is not None and offset < self.start) or (
            self.end is not None and offset > self.end
        ):
            return None
        if self.kinds and event.kind not in self.kinds:
            return None
        if self.hosts is not None and event.host not in self.hosts:
            return None
        return _format(event, offset, self.names, self.form, self.tz, self.file)


def run(args: argparse.Namespace) -> int:
    given: list[str] = args.path
    if args.follow and len(given) > 1:
        raise UsageError(f"--follow follows one recording; {len(given)} PATHs given")
    paths = _expanded(given)
    if args.follow and len(paths) > 1:
        raise UsageError(f"--follow follows one recording; {given[0]} holds {len(paths)}")
    filters = _Filters(
        kinds=_kinds(args.kind),
        hosts=tuple(args.host or ()),
        start=None if args.start is None else parse_timecode(args.start),
        end=None if args.end is None else parse_timecode(args.end),
        form=args.format,
    )
    tz = local_zone()
    if args.follow:
        return _follow(Path(paths[0]), filters, tz, sys.stdout)
    several = len(paths) > 1 or any(Path(p).is_dir() for p in given)
    found: list[tuple[int, int, str]] = []  # (time, path's place, line), as printed
    known: set[str] = set()  # every host id and shown name of the recordings
    for place, path in enumerate(paths):
        with RecordingSource(Path(path)) as source:
            lines = _Lines(source, filters, tz, path if several else None)
            events = events_of(source)
            known.update(
                lines.names, lines.names.values(), source.header.hosts if source.header else ()
            )
            known.update(event.host for event in events if event.host is not None)
            for event in events:
                line = lines.line(event)
                if line is not None:
                    found.append((event.t_ms, place, line))
    unknown = [h for h in filters.hosts if normalise_host_id(h) not in known and h not in known]
    if unknown:  # a typo must not read as "no events"
        where = "recordings" if several else "recording"
        raise UsageError(
            f"--host {unknown[0]!r}: no host by that id or name in the {where} "
            "(its header, first and last frames, and events)"
        )
    found.sort(key=lambda item: item[:2])  # stable: each recording's own order kept
    sys.stdout.writelines(line for _, _, line in found)
    return 0


def _expanded(given: list[str]) -> list[str]:
    """Each PATH as given, a directory as the recordings in it (module rules)."""
    if not any(Path(path).is_dir() for path in given) and len(set(given)) == len(given):
        return given  # as typed: each line names its PATH as given
    return [str(p) for p in recordings_in([Path(path) for path in given])]  # each once


def _follow(path: Path, filters: _Filters, tz: tzinfo, out: TextIO) -> int:
    """``--follow`` (module rules): until a stop signal, or the reader goes away."""
    with _stop_signals() as stopped, FollowingSource(path) as source:
        lines = _Lines(source, filters, tz, None)
        feed = _Feed(source)
        while not stopped():
            for event in feed.take(source, stopped):
                line = lines.line(event)
                if line is not None:
                    out.write(line)
                    out.flush()
            if _reader_gone(out):
                raise BrokenPipeError  # the CLI's quiet exit for a closed pipe
            time.sleep(POLL_S)  # a signal's handler runs at once; the flag is seen next
            if not stopped():
                feed.moved(source, source.poll())
    return 0


@contextlib.contextmanager
def _stop_signals() -> Iterator[Callable[[], bool]]:
    """While inside, :data:`STOP_SIGNALS` set a flag (no KeyboardInterrupt): whether one
    came. The handlers before are put back on the way out."""
    came: list[int] = []

    def note(signum: int, _: FrameType | None) -> None:
        came.append(signum)

    before = {signum: signal.signal(signum, note) for signum in STOP_SIGNALS}
    try:
        yield lambda: bool(came)
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def _reader_gone(out: TextIO) -> bool:
    """Whether ``out`` is a pipe or socket whose other end was closed (no write needed)."""
    try:
        fd = out.fileno()
    except (OSError, ValueError):
        return False
    poller = select.poll()
    poller.register(fd, 0)  # only the conditions always reported: an error, a hang-up
    return any(mask & (select.POLLERR | select.POLLHUP) for _, mask in poller.poll(0))


def _format(
    event: Event,
    offset: int,
    names: dict[str, str],
    form: str,
    tz: tzinfo,
    file: str | None,
) -> str:
    host = names.get(event.host, event.host) if event.host is not None else None
    index = event.gpu is not None and event.gpu.isascii() and event.gpu.isdecimal()
    if form == "json":  # orjson escapes what JSON must
        record: dict[str, object] = {} if file is None else {"file": file}
        record.update(
            t=format_rfc3339_ms(event.t_ms),
            offset_ms=offset,
            host=host,
            gpu=int(event.gpu) if index and event.gpu is not None else event.gpu,
            kind=event.kind,
            message=event.message,
        )
        return orjson.dumps(record).decode() + "\n"
    when = format_local(event.t_ms, tz)
    gpu = f"GPU{event.gpu}" if index else event.gpu
    where = "" if file is None else f"{_shown(file)}  "
    return (
        f"{where}{format_offset(offset)}  {when}  {_shown(host or '-'):<16} "
        f"{_shown(gpu or '-'):<6} {event.kind:<14}  {_shown(event.message)}\n"
    )


def _shown(text: str) -> str:
    """``text`` safe on a terminal, a line an event: a character that does not print (a
    newline, a tab, an escape sequence's ESC, a recording's hostile host id) as its escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _kinds(given: list[str] | None) -> frozenset[str]:
    kinds = frozenset(k.strip() for text in given or () for k in text.split(",") if k.strip())
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise UsageError(f"unknown event kind {unknown[0]!r}: one of {', '.join(sorted(KINDS))}")
    return kinds


def _names(source: Source) -> dict[str, str]:
    """Each host id → the name the replay shows it by (in the first and the last frame)."""
    header = source.header
    expected = header.hosts if header else ()
    names: dict[str, str] = {}
    for index in sorted({0, source.frame_count - 1}):
        names.update(host_names(source.frame(index), expected).shown)
    return names


def _hosts(given: tuple[str, ...], names: dict[str, str]) -> frozenset[str] | None:
    """The host ids ``--host`` names (by id, with or without a scheme, or by shown name)."""
    if not given:
        return None
    wanted: set[str] = set()
    for text in given:
        host = normalise_host_id(text)
        ids = [h for h, name in names.items() if host in (h, name)]
        wanted.update(ids or [host])
    return frozenset(wanted)
