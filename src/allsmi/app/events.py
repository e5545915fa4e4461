"""``allsmi events PATH``: what happened in a recording, a line an event
(README "Events"; the detection is :mod:`allsmi.domain.events`).

Rules: every frame of the recording (a file or a rotated set) is read in order and fed to one
:class:`~allsmi.domain.events.Detector`, the same detection the replay uses; a line that does
not structure is the errors-only frame the replay shows for it. Events are printed in time
order, each once, after the filters (``--host`` by id or shown name, ``--kind``, ``--from`` and
``--to`` as ``g`` reads a time). Text: offset, recorded wall time in the local zone, host,
GPU, kind and message, tab-free and aligned; ``--format json``: one object per line with
``t`` (RFC 3339), ``offset_ms``, ``host``, ``gpu`` (its index, its uuid where it has none, or
null), ``kind`` and ``message``. Exit 0 (events
or none), 2 for an unreadable recording or a bad filter, always one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from datetime import tzinfo
from pathlib import Path
from typing import TextIO

import orjson

from allsmi.adapters.recording.source import RecordingSource
from allsmi.app.replay_driver import local_zone
from allsmi.domain.errors import UsageError
from allsmi.domain.events import KINDS, Detector, Event
from allsmi.domain.hosts import host_names
from allsmi.domain.model import normalise_host_id
from allsmi.domain.parse import (
    format_offset,
    format_rfc3339_ms,
    parse_timecode,
    resolve_timecode,
)
from allsmi.domain.screen import format_local


def events_of(source: RecordingSource) -> list[Event]:
    """Every event of the recording, in time order."""
    header = source.header
    detector = Detector(
        expected_hosts=header.hosts if header else (),
        interval_ms=header.interval_ms if header else None,
    )
    found: list[Event] = []
    index = 0
    while index < source.frame_count:  # reading may recount frames: the count is re-read
        found += detector.feed(source.frame(index))
        index += 1
    found += detector.finish()
    found.sort(key=lambda event: event.t_ms)
    return found


def run(args: argparse.Namespace) -> int:
    kinds = _kinds(args.kind)
    with RecordingSource(Path(args.path)) as source:
        first, last = source.first_t_ms, source.last_t_ms
        tz = local_zone()
        start = _bound(args.start, first, last, tz)
        end = _bound(args.end, first, last, tz)
        names = _names(source)
        hosts = _hosts(args.host, names)
        out = sys.stdout
        for event in events_of(source):
            offset = event.t_ms - first
            if (start is not None and offset < start) or (end is not None and offset > end):
                continue
            if kinds and event.kind not in kinds:
                continue
            if hosts is not None and event.host not in hosts:
                continue
            _write(out, event, offset, names, args.format, tz)
    return 0


def _write(
    out: TextIO,
    event: Event,
    offset: int,
    names: dict[str, str],
    form: str,
    tz: tzinfo,
) -> None:
    host = names.get(event.host, event.host) if event.host is not None else None
    if form == "json":
        record = {
            "t": format_rfc3339_ms(event.t_ms),
            "offset_ms": offset,
            "host": host,
            "gpu": int(event.gpu) if event.gpu is not None and event.gpu.isdigit() else event.gpu,
            "kind": event.kind,
            "message": event.message,
        }
        out.write(orjson.dumps(record).decode() + "\n")
        return
    when = format_local(event.t_ms, tz)
    gpu = f"GPU{event.gpu}" if event.gpu is not None and event.gpu.isdigit() else event.gpu
    out.write(
        f"{format_offset(offset)}  {when}  {host or '-':<16} {gpu or '-':<6} "
        f"{event.kind:<14} {event.message}\n"
    )


def _kinds(given: list[str] | None) -> frozenset[str]:
    kinds = frozenset(k.strip() for text in given or () for k in text.split(",") if k.strip())
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise UsageError(f"unknown event kind {unknown[0]!r}: one of {', '.join(sorted(KINDS))}")
    return kinds


def _bound(text: str | None, first: int, last: int, tz: tzinfo) -> int | None:
    if text is None:
        return None
    return resolve_timecode(parse_timecode(text), first, last, tz)


def _names(source: RecordingSource) -> dict[str, str]:
    """Each host id → the name the replay shows it by (in the first and the last frame)."""
    header = source.header
    expected = header.hosts if header else ()
    names: dict[str, str] = {}
    for index in sorted({0, source.frame_count - 1}):
        names.update(host_names(source.frame(index), expected).shown)
    return names


def _hosts(given: list[str] | None, names: dict[str, str]) -> frozenset[str] | None:
    """The host ids ``--host`` names (by id, with or without a scheme, or by shown name)."""
    if not given:
        return None
    wanted: set[str] = set()
    for text in given:
        host = normalise_host_id(text)
        ids = [h for h, name in names.items() if host in (h, name)]
        wanted.update(ids or [host])
    return frozenset(wanted)
