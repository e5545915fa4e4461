"""``allsmi record``: the flight recorder's composition root (docs/architecture.md §7.1).

One loop, fixed-rate: collect (never two collections in flight: the next starts only after
the previous returned), stamp, encode, append to the sink, flush so every frame reaches
the OS within a second, wait for the next absolute deadline. SIGTERM, SIGINT and SIGHUP
set a stop event: the frame in progress completes, the chunk is closed, the footer written,
exit 0. The whole run holds the set's lock (``PATH.lock``, :mod:`allsmi.adapters.recording.lock`),
taken before the set is read or rotated and dropped by the kernel however the process ends,
so a second recorder on the same path is refused instead of interleaving with the first.
The clock and the source are injected, so tests record thousands of cycles in-process
without sleeping, and ``allsmi demo`` records an hour in seconds.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final, TextIO

import anyio
import attrs

from allsmi import __version__
from allsmi.adapters import wire
from allsmi.adapters.machine.service import Notifier, notifier_from_env
from allsmi.adapters.recording.files import require_writable_output
from allsmi.adapters.recording.lock import RecordingLock
from allsmi.adapters.recording.recovery import last_seq_of_set
from allsmi.adapters.recording.sink import (
    MAX_LINE_BYTES,
    Codec,
    RecordingSink,
    SinkConfig,
    codec_for,
)
from allsmi.app.clock import Clock, RealClock, run_every
from allsmi.app.local import build_local_source
from allsmi.app.progress import format_ibytes
from allsmi.app.signals import STOP_SIGNALS, wait_for_signal
from allsmi.domain.errors import UsageError
from allsmi.domain.hosts import parse_shard, select_shard
from allsmi.domain.model import DEFAULT_SECTIONS, SECTIONS, Frame, Header, Source
from allsmi.domain.oversize import oversize_fallbacks, unrecordable
from allsmi.domain.parse import format_offset
from allsmi.domain.ports import FrameSource
from allsmi.domain.process_rows import cuts, redact_args
from allsmi.domain.schedule import clamp_time, flush_due

MAX_HOSTS = 1024
DEFAULT_INTERVAL_MS = 3000
# What record collects without --include: every section, local and remote, so that a replay
# shows what the live view showed (process command lines included: see --redact-args).
# --from-prometheus keeps the snapshot's default: a server's process series are opt-in.
RECORD_SECTIONS: Final = SECTIONS
FROM_PROMETHEUS_SECTIONS: Final = DEFAULT_SECTIONS
CLEAR_LINE = "\r\x1b[2K"  # a terminal's live status line, erased before another line
# Typical stream compression of metric frames (measured on realistic streams of frames),
# for the retention estimate.
TYPICAL_RATIO = {Codec.ZSTD: 10.0, Codec.GZIP: 6.0, Codec.NONE: 1.0}


@attrs.frozen
class RecordPlan:
    interval_ms: int
    duration_ms: int  # 0 = until stopped
    source: Source
    hosts: tuple[str, ...]
    redact_args: bool = False  # --redact-args: process commands as executable names only


@attrs.define
class RecordResult:
    frames: int = 0
    first_seq: int = 0
    skipped_deadlines: int = 0
    errors: int = 0
    stopped_by: str | None = None


StatusCallback = Callable[[RecordResult, RecordingSink, int], None]


async def record_loop(
    source: FrameSource,
    sink: RecordingSink,
    clock: Clock,
    plan: RecordPlan,
    *,
    first_seq: int = 0,
    stop: anyio.Event | None = None,
    on_frame: StatusCallback | None = None,
) -> RecordResult:
    """Record until ``plan.duration_ms`` has passed or ``stop`` is set; close the sink."""
    result = RecordResult(first_seq=first_seq)
    start = clock.monotonic_ms()
    last_t: int | None = None
    last_flush: int | None = None
    seq = first_seq

    async def cycle(missed: int) -> None:
        nonlocal last_t, last_flush, seq
        result.skipped_deadlines += missed
        note = _skip_note(missed, plan.interval_ms) if missed else None
        t_ms = clamp_time(clock.wall_ms(), last_t)
        frame = await source.collect(t_ms)
        frame = attrs.evolve(frame, seq=seq, errors=_with_note(frame.errors, note))
        if plan.redact_args:  # before anything is encoded: the arguments never reach the disk
            frame = redact_args(frame)
        line, written = fit_frame(frame)
        sink.append(line, seq, t_ms, frame=written)
        now = clock.monotonic_ms()
        if flush_due(now, last_flush, plan.interval_ms):
            sink.flush()
            last_flush = now
        result.frames += 1
        result.errors += len(frame.errors)
        last_t, seq = t_ms, seq + 1
        if on_frame is not None:
            on_frame(result, sink, now - start)

    try:
        result.skipped_deadlines = await run_every(
            clock, plan.interval_ms, cycle, stop=stop, duration_ms=plan.duration_ms
        )
    finally:
        with anyio.CancelScope(shield=True):
            sink.close()
    return result


def _with_note(errors: tuple[str, ...], note: str | None) -> tuple[str, ...]:
    return errors if note is None else (*errors, note)


def _skip_note(missed: int, interval_ms: int) -> str:
    return f"recorder: collection overran, skipped {missed} deadline(s) of {interval_ms} ms"


def fit_line(frame: Frame) -> bytes:
    """Encode a frame within the 16 MiB line cap, lightened as :mod:`allsmi.domain.oversize`
    decides if needed. A frame that cannot be encoded at all still leaves an errors-only frame
    behind."""
    return fit_frame(frame)[0]


def fit_frame(frame: Frame, cap_bytes: int = MAX_LINE_BYTES) -> tuple[bytes, Frame]:
    """:func:`fit_line`'s line and the frame it encodes (what was recorded: the chunk's
    stored summary counts that one, docs/recording-format.md §7.2). A frame over the cap
    first keeps each host's heaviest processes (:mod:`allsmi.domain.process_rows`), then
    drops them (:mod:`allsmi.domain.oversize`)."""
    try:
        line = wire.encode_line(frame)
    except (TypeError, ValueError) as err:  # orjson: a value JSON cannot carry
        errors_only = unrecordable(frame, str(err))
        return wire.encode_line(errors_only), errors_only
    if len(line) <= cap_bytes:
        return line, frame
    written = frame
    cap_text = f"{cap_bytes / (1 << 20):g} MiB"
    for lighter in itertools.chain(cuts(frame, cap_text), oversize_fallbacks(frame, cap_bytes)):
        line, written = wire.encode_line(lighter), lighter
        if len(line) <= cap_bytes:
            break
    return line, written


# ----------------------------------------------------------------------------- the command


def default_output(now_ms: int) -> Path:
    """``<user cache dir>/allsmi/records/allsmi-YYYYmmddTHHMMSSZ.ndjson.zst``."""
    import datetime as dt

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    stamp = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(base) / "allsmi" / "records" / f"allsmi-{stamp}.ndjson.zst"


def build_source(args: argparse.Namespace) -> FrameSource:
    if args.source == "remote":
        from allsmi.app.remote import build_remote_source, read_token, remote_config

        token = read_token(args.token_file)
        return build_remote_source(
            remote_config(tuple(args.hosts), args.include, args.interval_ms, token)
        )
    return build_local_source(args.include)


def prepare_output(path: Path, *, create_parent: bool = True) -> None:
    """Refuse (exit 2) an output that could not be written, before any collection.

    ``create_parent`` only for the default cache directory: a directory the user names
    with ``-o`` must already exist (:func:`require_writable_output`). A FIFO would block
    the first open forever; a device or socket would be renamed aside: both are refused.
    """
    require_writable_output(path, "output", create_parent=create_parent)


def sink_config(args: argparse.Namespace, path: Path) -> SinkConfig:
    """The sink ``record``'s flags ask for: codec, rotation and retention."""
    return SinkConfig(
        path=path,
        codec=codec_for(path, args.compress),
        max_size=args.max_size,
        max_files=args.max_files,
        max_age_ms=args.max_age_ms,
    )


def run(args: argparse.Namespace) -> int:
    if args.from_prometheus:
        from allsmi.app.from_prometheus import run as from_prometheus

        if args.redact_args:
            raise UsageError("--redact-args goes with collection, not --from-prometheus")
        if args.include is None:
            args.include = FROM_PROMETHEUS_SECTIONS
        return from_prometheus(args)
    if args.include is None:
        args.include = RECORD_SECTIONS
    for flag in ("start", "end", "step_ms", "match"):
        if getattr(args, flag) is not None:
            name = {"start": "--from", "end": "--to", "step_ms": "--step"}.get(flag, "--match")
            raise UsageError(f"{name} goes with --from-prometheus")
    if args.interval_ms is None:
        args.interval_ms = DEFAULT_INTERVAL_MS
    clock = RealClock()
    path = Path(args.output) if args.output else default_output(clock.wall_ms())
    hosts = tuple(args.hosts or ())
    if args.source == "remote" and not hosts:
        raise UsageError("--source remote needs --hosts or --hostfile")
    if args.source == "local" and hosts:
        raise UsageError("--hosts and --hostfile go with --source remote")
    if args.shard is not None:
        if not hosts:
            raise UsageError("--shard splits the hosts of --source remote --hosts/--hostfile")
        shard, shards = parse_shard(args.shard)
        every = len(hosts)
        hosts = select_shard(hosts, shard, shards)
        if not hosts:
            raise UsageError(
                f"shard {shard}/{shards} holds none of the {every} hosts given: use fewer shards"
            )
        args.hosts = hosts
    if len(hosts) > MAX_HOSTS:
        raise UsageError(f"{len(hosts)} hosts given; a recording holds at most {MAX_HOSTS}")
    prepare_output(path, create_parent=not args.output)  # only our default dir is made
    source = build_source(args)
    expected = source.hosts()
    if hosts:  # the ids frames carry: a pair of exporter targets is one host (scrape.py)
        from allsmi.adapters.network.scrape import frame_host_ids

        expected = frame_host_ids(hosts)
    plan = RecordPlan(
        args.interval_ms, args.duration_ms, args.source, expected, redact_args=args.redact_args
    )
    config = sink_config(args, path)
    header = Header(
        source=plan.source,
        interval_ms=plan.interval_ms,
        hosts=plan.hosts,
        all_smi_version=__version__,
        started_ms=clock.wall_ms(),  # once per run: the sink reuses the header at rotation
    )
    sink = RecordingSink(config, header)
    with RecordingLock.acquire(path):  # before the set is read or rotated
        first_seq = last_seq_of_set(path) + 1
        sink.prepare_existing()
        _announce(config, plan, first_seq)
        reporter = Reporter(sys.stderr, plan, live=sys.stderr.isatty())
        service = ServiceReport(notifier_from_env(), path, plan)
        try:
            result = anyio.run(
                _record_until_signal, source, sink, clock, plan, first_seq, reporter, service
            )
        finally:
            service.stopping()
        reporter.finish()
    sys.stderr.write(
        f"allsmi record: {result.frames} frame{'' if result.frames == 1 else 's'} written "
        f"to {path}" + (f" (stopped by {result.stopped_by})" if result.stopped_by else "") + "\n"
    )
    return 0


async def _record_until_signal(
    source: FrameSource,
    sink: RecordingSink,
    clock: Clock,
    plan: RecordPlan,
    first_seq: int,
    reporter: Reporter,
    service: ServiceReport | None = None,
) -> RecordResult:
    stop = anyio.Event()
    stopped_by: list[str] = []

    async def watch_signals() -> None:
        stopped_by.append((await wait_for_signal(*STOP_SIGNALS)).name)
        if service is not None:
            service.stopping()
        stop.set()

    def on_frame(result: RecordResult, sink: RecordingSink, elapsed_ms: int) -> None:
        reporter.update(result, sink, elapsed_ms)
        if service is not None:
            service.update(result, sink, elapsed_ms)

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch_signals)
        try:
            await source.start()
            result = await record_loop(
                source,
                sink,
                clock,
                plan,
                first_seq=first_seq,
                stop=stop,
                on_frame=on_frame,
            )
        finally:
            await source.aclose()
        tg.cancel_scope.cancel()
    result.stopped_by = stopped_by[0] if stopped_by else None
    return result


def _announce(config: SinkConfig, plan: RecordPlan, first_seq: int) -> None:
    triggers = [f"at {format_ibytes(config.max_size)}"] if config.max_size else []
    if config.max_age_ms:
        triggers.append(f"every {_human_duration(config.segment_span_ms / 1000)}")
    rotation = (
        f"rotating {' or '.join(triggers)}, keeping {config.max_files} file(s)"
        if triggers
        else "no rotation"
    )
    if config.max_age_ms:
        rotation += f", deleting those older than {_human_duration(config.max_age_ms / 1000)}"
    resumed = f", continuing at frame {first_seq}" if first_seq else ""
    sys.stderr.write(
        f"allsmi record: writing {config.path} ({_codec_words(config.codec)}, every "
        f"{plan.interval_ms / 1000:g} s, {rotation}{resumed})\n"
    )
    sys.stderr.flush()


def _codec_words(kind: Codec) -> str:
    return "uncompressed" if kind is Codec.NONE else kind.value


def projected_retention_s(
    config: SinkConfig, raw_bytes_per_frame: float, interval_ms: int
) -> float | None:
    """Seconds of history the set holds at this rate, or None when nothing bounds it: the
    size and count limits' span, or the age limit where that is shorter."""
    by_age = config.max_age_ms / 1000 if config.max_age_ms else None
    if not config.max_size or raw_bytes_per_frame <= 0:
        return by_age
    stored_per_frame = raw_bytes_per_frame / TYPICAL_RATIO[config.codec]
    frames = config.max_size * config.max_files / stored_per_frame
    by_size = frames * interval_ms / 1000
    return by_size if by_age is None else min(by_size, by_age)


def _human_duration(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


class Reporter:
    """What ``record`` tells the user: the retention estimate after the first frame, and on a
    terminal a one-line live status (elapsed, frames, bytes, ratio, errors)."""

    def __init__(self, stream: TextIO, plan: RecordPlan, *, live: bool) -> None:
        self.stream = stream
        self.plan = plan
        self.live = live
        self._announced = False
        self._notes = 0  # the sink's notes written so far

    def update(self, result: RecordResult, sink: RecordingSink, elapsed_ms: int) -> None:
        stats = sink.stats
        while self._notes < len(stats.notes):  # the sink's word, once each
            erase = CLEAR_LINE if self.live else ""
            self.stream.write(f"{erase}allsmi record: {stats.notes[self._notes]}\n")
            self._notes += 1
        if not self._announced and stats.frames:
            self._announced = True
            self.stream.write(self.retention_line(sink) + "\n")
        if self.live:
            ratio = stats.raw_bytes / stats.stored_bytes if stats.stored_bytes else 0.0
            self.stream.write(
                f"\r\x1b[2K{format_offset(elapsed_ms)}  {result.frames} frames  "
                f"{format_ibytes(stats.stored_bytes)}  ratio {ratio:.1f}x  "
                f"{result.errors} errors  {result.skipped_deadlines} skipped"
            )
        self.stream.flush()

    def retention_line(self, sink: RecordingSink) -> str:
        per_frame = sink.stats.raw_bytes / max(1, sink.stats.frames)
        retention = projected_retention_s(sink.config, per_frame, self.plan.interval_ms)
        if retention is None:
            per_hour = (
                per_frame / TYPICAL_RATIO[sink.config.codec] * 3_600_000 / self.plan.interval_ms
            )
            return f"allsmi record: no rotation; the file grows ≈ {format_ibytes(per_hour)}/h"
        line = f"allsmi record: retention ≈ {_human_duration(retention)} at this rate"
        age_ms = sink.config.max_age_ms
        if age_ms and retention * 1000 < age_ms:
            line += (
                f", short of --max-age {_human_duration(age_ms / 1000)}: raise --max-size "
                "or --max-files to keep it"
            )
        elif age_ms:
            line += " (by --max-age)"
        return line

    def finish(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()


class ServiceReport:
    """What ``record`` tells a service manager (:mod:`allsmi.adapters.machine.service`):
    ready, with a status line (frames, bytes, errors), once the first frame is written and
    again every :data:`STATUS_EVERY_MS`; a watchdog pet after every frame; stopping at the
    end."""

    STATUS_EVERY_MS: Final = 10_000

    def __init__(self, notifier: Notifier, path: Path, plan: RecordPlan) -> None:
        self.notifier = notifier
        self.path = path
        self._status_at: int | None = None
        self._stopping = False
        notifier.need_watchdog(plan.interval_ms)

    def update(self, result: RecordResult, sink: RecordingSink, elapsed_ms: int) -> None:
        if not self.notifier.active:
            return
        if self._status_at is None or elapsed_ms - self._status_at >= self.STATUS_EVERY_MS:
            # READY=1 again with every status: it is idempotent, and a first one the
            # manager's full queue dropped must not leave the unit "activating" for good
            self._status_at = elapsed_ms
            self.notifier.ready(
                f"recording {self.path}: {result.frames} frames, "
                f"{format_ibytes(sink.stats.stored_bytes)} written, {result.errors} errors, "
                f"{result.skipped_deadlines} skipped"
            )
        self.notifier.pet()

    def stopping(self) -> None:
        """Once: the run is ending (a stop signal, or the loop ended)."""
        if not self._stopping:
            self._stopping = True
            self.notifier.stopping()
            self.notifier.close()
