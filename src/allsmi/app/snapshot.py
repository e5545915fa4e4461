"""``allsmi snapshot``: read this machine once and print it (docs/architecture.md §7.1).

JSON goes through the one serializer, so a compact snapshot is a valid one-frame recording.
Exit 1 when no requested section yielded a single row (e.g. ``--include gpu`` on a machine
without an NVIDIA driver), with the readers' errors on the one stderr line. An ``-o`` that
could not be written is refused before anything is read (exit 2, in a directory that must
already exist); a write that fails after reading exits 1, naming the ``-o`` path.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import anyio

from allsmi import __version__
from allsmi.adapters import wire
from allsmi.adapters.csv_out import render_csv
from allsmi.adapters.prometheus.writer import render_metrics
from allsmi.adapters.recording.files import atomic_write, require_writable_output
from allsmi.app.local import LocalSource, build_local_source
from allsmi.domain.errors import SourceUnavailable
from allsmi.domain.model import Frame


def run(args: argparse.Namespace) -> int:
    output = Path(args.output) if args.output and args.output != "-" else None
    if output is not None:
        require_writable_output(output)  # exit 2, before reading anything
    source = build_local_source(args.include)
    frame = anyio.run(_collect_once, source)
    _require_something(frame)
    data = render(frame, args.format, pretty=args.pretty)
    if output is not None:
        atomic_write(output, data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0


async def _collect_once(source: LocalSource) -> Frame:
    try:
        await source.start()
        return await source.collect(int(time.time() * 1000))
    finally:
        await source.aclose()


def _require_something(frame: Frame) -> None:
    sections = (frame.gpus, frame.cpus, frame.memory, frame.chassis, frame.processes, frame.storage)
    if any(rows for rows in sections) or frame.processes is not None:
        return
    detail = "; ".join(frame.errors) or "every requested section came back empty"
    raise SourceUnavailable(f"nothing could be read ({detail})")


def render(frame: Frame, fmt: str, *, pretty: bool) -> bytes:
    if fmt == "csv":
        return render_csv(frame).encode()
    if fmt == "prometheus":
        return render_metrics(frame, version=__version__).encode()
    return wire.encode_pretty(frame) if pretty else wire.encode_line(frame)
