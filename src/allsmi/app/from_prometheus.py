"""``allsmi record --from-prometheus URL``: a window of a Prometheus server's history written as
a recording (docs/architecture.md §7.1), so that replay, ``verify`` and ``events`` work on it
offline as on any recording.

Theory of operation. The series of all-smi's metric families (ours and all-smi's exporters
write the same names) that the server holds for the window, narrowed by ``--match``, are
listed first: their count is bounded (:data:`MAX_SERIES`), their ``instance`` labels are the
hosts and their families the sections. The step is ``--step``, else the shortest scrape
interval the server reports for those hosts, else :data:`DEFAULT_STEP_MS`; the instants are
the epoch-aligned multiples of the step within the window. Then ``query_range`` is asked
window after window, each sized so that no series passes Prometheus's 11,000 points and no
answer :data:`POINTS_PER_QUERY` points, together with ``up`` of the same targets; each window
becomes frames (:mod:`allsmi.adapters.prometheus.history`) written through the recorder's
sink, lock and rotation — stored summaries and events included.

An instant at which no host has a sample and none is down is not written: the recording
shows the server's gap as a gap. A failure (unreachable, a refused query) ends the run with
one line; what was written before stays a readable recording, closed cleanly.
"""

from __future__ import annotations

import argparse
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import anyio
import attrs

from allsmi import __version__
from allsmi.adapters.network.promapi import MAX_POINTS_PER_SERIES, PromApi, Target
from allsmi.adapters.network.scrape import HOST_LIMITS
from allsmi.adapters.prometheus.history import (
    HOST_LABEL,
    TARGET_LABELS,
    family_regex,
    frames_of,
    sections_of,
)
from allsmi.adapters.recording.lock import RecordingLock
from allsmi.adapters.recording.recovery import last_seq_of_set
from allsmi.adapters.recording.sink import RecordingSink, SinkConfig, codec_for
from allsmi.app.clock import RealClock
from allsmi.app.record import default_output, fit_frame, prepare_output
from allsmi.app.remote import read_token
from allsmi.domain.errors import SourceUnavailable, UsageError
from allsmi.domain.model import SECTION_TABLE, Header
from allsmi.domain.parse import format_gap, format_rfc3339_ms, parse_instant_ms
from allsmi.domain.sections import rows_of

MAX_SERIES: Final = 50_000
POINTS_PER_QUERY: Final = 250_000  # ~10 MB of JSON an answer
DEFAULT_STEP_MS: Final = 15_000
DEFAULT_SPAN_MS: Final = 3_600_000  # --from defaults to an hour before --to


def prometheus_base(url: str) -> str:
    """``prometheus+http://h:9090`` or ``http://h:9090`` → ``http://h:9090``; refuses anything
    that is not an http(s) URL."""
    base = url.removeprefix("prometheus+")
    if not base.startswith(("http://", "https://")) or len(base.split("//", 1)[1]) == 0:
        raise UsageError(f"{url!r} is not a Prometheus URL: use http://HOST:9090 or https://…")
    return base.rstrip("/")


def selector(name_regex: str, match: str | None) -> str:
    """``{__name__=~"…"}`` narrowed by ``--match`` (``{job="gpu"}`` or ``job="gpu"``)."""
    inner = (match or "").strip()
    if inner.startswith("{") and inner.endswith("}"):
        inner = inner[1:-1].strip()
    if "{" in inner or "}" in inner:
        raise UsageError(f'--match {match!r}: give label matchers, like {{job="gpu"}}')
    extra = f", {inner}" if inner else ""
    return f'{{__name__=~"{name_regex}"{extra}}}'


def instants(start_ms: int, end_ms: int, step_ms: int) -> range:
    """The epoch-aligned multiples of ``step_ms`` within ``[start_ms, end_ms]``."""
    first = -(-start_ms // step_ms) * step_ms
    return range(first, end_ms + 1, step_ms)


def windows(grid: range, steps_per_query: int) -> Iterator[range]:
    for at in range(0, len(grid), steps_per_query):
        yield grid[at : at + steps_per_query]


def run(args: argparse.Namespace) -> int:
    for flag, value in (("--source remote", args.source == "remote"), ("--hosts", args.hosts)):
        if value:
            raise UsageError(f"{flag} does not go with --from-prometheus")
    if args.interval_ms is not None or args.duration_ms:
        raise UsageError("--interval and --duration do not go with --from-prometheus (see --step)")
    base = prometheus_base(args.from_prometheus)
    clock = RealClock()
    now = clock.wall_ms()
    end = parse_instant_ms(args.end, now) if args.end else now
    start = parse_instant_ms(args.start, now) if args.start else end - DEFAULT_SPAN_MS
    if start >= end:
        raise UsageError(
            f"--from {format_rfc3339_ms(start)} is not before --to {format_rfc3339_ms(end)}"
        )
    path = Path(args.output) if args.output else default_output(now)
    prepare_output(path, create_parent=not args.output)
    token = read_token(args.token_file)
    tls = ssl.create_default_context() if base.startswith("https://") else None
    return anyio.run(_record, args, base, token, tls, start, end, path, now)


async def _record(
    args: argparse.Namespace,
    base: str,
    token: str | None,
    tls: ssl.SSLContext | None,
    start: int,
    end: int,
    path: Path,
    now: int,
) -> int:
    api = PromApi(base, token, tls)
    try:
        ours = selector(family_regex(args.include), args.match)
        listed = await api.series(ours, start, end)
        window_text = f"{format_rfc3339_ms(start)} .. {format_rfc3339_ms(end)}"
        if not listed:
            raise SourceUnavailable(
                f"Prometheus {base}: no all-smi series between {window_text}"
                + (f" matching {args.match}" if args.match else "")
                + " (does it scrape `allsmi api` or all-smi exporters?)"
            )
        if len(listed) > MAX_SERIES:
            raise UsageError(
                f"Prometheus {base}: {len(listed)} series in the window, over {MAX_SERIES}; "
                'narrow it with --match (e.g. --match \'{job="gpu",instance=~"node-0.*"}\')'
            )
        hosts = sorted({s[HOST_LABEL] for s in listed if HOST_LABEL in s})
        include = sections_of({s.get("__name__", "") for s in listed})
        targets = await api.targets()
        step = args.step_ms or _step_of(targets, hosts)
        added = frozenset().union(
            TARGET_LABELS, *(targets[h].labels for h in hosts if h in targets)
        )
        grid = instants(start, end, step)
        if not grid:
            raise UsageError(f"the window {window_text} holds no multiple of the step {step} ms")
        per_query = max(1, min(MAX_POINTS_PER_SERIES - 1, POINTS_PER_QUERY // len(listed)))
        header = Header(
            source="remote",
            interval_ms=step,
            hosts=tuple(hosts),
            all_smi_version=__version__,
            started_ms=now,
        )
        config = SinkConfig(
            path=path,
            codec=codec_for(path, args.compress),
            max_size=args.max_size,
            max_files=args.max_files,
            max_age_ms=args.max_age_ms,
        )
        sys.stderr.write(
            f"allsmi record: reading {len(hosts)} host(s), {len(listed)} series from Prometheus "
            f"{base}, {window_text} every {format_gap(step)}, into {path}\n"
        )
        sys.stderr.flush()
        up = selector("up", args.match)
        written = 0
        sink = RecordingSink(config, header)
        with RecordingLock.acquire(path):
            seq = last_seq_of_set(path) + 1
            sink.prepare_existing()
            try:
                for window in windows(grid, per_query):
                    last = window[-1]
                    series = await api.query_range(ours, window[0], last, step)
                    ups = await api.query_range(up, window[0], last, step)
                    found = frames_of(series, ups, window, hosts, include, HOST_LIMITS, added)
                    for frame in found:
                        if not frame.errors and not any(
                            rows_of(frame, section) for section in SECTION_TABLE
                        ):
                            continue  # nobody had a sample: the server's gap stays a gap
                        line, kept = fit_frame(attrs.evolve(frame, seq=seq))
                        sink.append(line, seq, frame.t_ms, frame=kept)
                        seq += 1
                        written += 1
                    sink.flush()
            finally:
                sink.close()
    finally:
        await api.aclose()
    if not written:
        raise SourceUnavailable(f"Prometheus {base}: no samples between {window_text}")
    sys.stderr.write(
        f"allsmi record: {written} frame{'' if written == 1 else 's'} from {api.requests} "
        f"queries written to {path}\n"
    )
    return 0


def _step_of(targets: dict[str, Target], hosts: list[str]) -> int:
    """The shortest scrape interval among ``hosts``' targets, else the default."""
    known = [targets[h].interval_ms for h in hosts if h in targets]
    return min(known) if known else DEFAULT_STEP_MS
