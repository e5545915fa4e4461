"""``allsmi record --from-prometheus URL``: a window of a Prometheus server's history written as
a recording (docs/architecture.md §7.1), so that replay, ``verify`` and ``events`` work on it
offline as on any recording.

Theory of operation. The series of all-smi's metric families (ours and all-smi's exporters
write the same names), and of dcgm-exporter's and node_exporter's families that our readers
map (:mod:`allsmi.adapters.prometheus.history`), that the server holds for the window,
narrowed by ``--match``, are listed first: their count is bounded (:data:`MAX_SERIES`), their
``instance`` labels are the hosts and their families the sections. The step is ``--step``,
else the shortest scrape interval the server reports for those hosts, else
:data:`DEFAULT_STEP_MS`; the instants are the epoch-aligned multiples of the step within the
window. Then ``query_range`` is asked
window after window, each sized so that no series passes Prometheus's 11,000 points and no
answer :data:`POINTS_PER_QUERY` points, together with ``up`` of the same targets; each window
becomes frames (:mod:`allsmi.adapters.prometheus.history`) written through the recorder's
sink, lock and rotation — stored summaries and events included.

Exporter targets (those with dcgm-exporter's or node_exporter's series) are paired as the
scraper pairs a hostfile's (:func:`~allsmi.adapters.network.scrape.pair_ids`: the only two
targets of a host part are one host), the dcgm-exporter target listed first so that the pair's
id is the GPU exporter's (``gpu-01:9400`` with ``gpu-01:9100``, as a hostfile listing the GPU
exporter first has it); the header lists a pair once. When there are exporter targets each
query also asks for the instant a step before its run (the *lead* instant: their counters'
rates need the previous reading), so every frame's rates, the window's first included, are
over the step before it; a recording carries the readers' state from each run into the next,
so XID counts are counted from the window's start, as by a recorder started then.

An instant at which no host has a sample and none is down is not written: the recording
shows the server's gap as a gap. A failure (unreachable, a refused query) ends the run with
one line; what was written before stays a readable recording, closed cleanly.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import anyio
import attrs

from allsmi import __version__
from allsmi.adapters.network.promapi import MAX_POINTS_PER_SERIES, PromApi, Target
from allsmi.adapters.network.scrape import HOST_LIMITS, pair_ids
from allsmi.adapters.prometheus.history import (
    HOST_LABEL,
    TARGET_LABELS,
    Carried,
    Run,
    family_regex,
    is_dcgm_family,
    is_exporter_family,
    sections_of,
)
from allsmi.adapters.recording.lock import RecordingLock
from allsmi.adapters.recording.recovery import last_seq_of_set
from allsmi.adapters.recording.sink import RecordingSink
from allsmi.app.clock import RealClock
from allsmi.app.record import default_output, fit_frame, prepare_output, sink_config
from allsmi.app.remote import read_token
from allsmi.domain.errors import SourceUnavailable, UsageError
from allsmi.domain.model import SECTION_TABLE, Frame, Header
from allsmi.domain.parse import format_gap, format_rfc3339_ms, parse_instant_ms
from allsmi.domain.sections import rows_of
from allsmi.domain.segments import numbered_segments

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


@attrs.frozen
class Window:
    """What a replay or a recording of a server's history asks for."""

    base: str
    start_ms: int
    end_ms: int
    step_ms: int | None  # None: the targets' scrape interval, else the default
    match: str | None
    include: tuple[str, ...]


def window_of(
    url: str,
    start: str | None,
    end: str | None,
    step_ms: int | None,
    match: str | None,
    include: tuple[str, ...],
    now_ms: int,
) -> Window:
    """The window ``--from``/``--to``/``--step``/``--match`` name (usage errors raised here,
    before anything is asked of the server)."""
    base = prometheus_base(url)
    end_ms = parse_instant_ms(end, now_ms) if end else now_ms
    start_ms = parse_instant_ms(start, now_ms) if start else end_ms - DEFAULT_SPAN_MS
    if start_ms >= end_ms:
        raise UsageError(
            f"--from {format_rfc3339_ms(start_ms)} is not before --to {format_rfc3339_ms(end_ms)}"
        )
    selector("up", match)  # a bad --match is a usage error now, not a refused query
    return Window(base, start_ms, end_ms, step_ms, match, include)


@attrs.frozen
class History:
    """A server's history of a window, planned: its series listed (bounded), hosts, sections,
    step and instants; :meth:`frames` fetches one run of instants."""

    window: Window
    ours: str  # the selector of our families
    up: str
    hosts: tuple[str, ...]
    include: tuple[str, ...]
    step_ms: int
    grid: range
    per_query: int  # instants a query_range asks for
    added: frozenset[str]
    series: int
    pairs: dict[str, str] = attrs.field(factory=dict)  # exporter target → its rows' host id
    ids: tuple[str, ...] = ()  # the host ids frames carry (a pair's once): the header's

    @property
    def lead(self) -> bool:
        """Whether a run is fetched with the instant before it (exporters' counters)."""
        return bool(self.pairs)

    @property
    def text(self) -> str:
        return (
            f"{format_rfc3339_ms(self.window.start_ms)} .. {format_rfc3339_ms(self.window.end_ms)}"
        )

    async def fetch(self, api: PromApi, instants: range, carried: Carried | None = None) -> Run:
        """The series of ``instants`` (a run of :attr:`grid`; the lead instant too when
        there are exporter targets), two queries; no frame built. ``carried``: the exporter
        hosts' state the run before ended with (module header)."""
        first, last = instants[0], instants[-1]
        start = first - self.step_ms if self.lead else first
        series = await api.query_range(self.ours, start, last, self.step_ms)
        ups = await api.query_range(self.up, start, last, self.step_ms)
        return Run(
            series, ups, self.hosts, self.include, HOST_LIMITS, self.added,
            pairs=self.pairs, first_ms=first, step_ms=self.step_ms, carried=carried,
        )  # fmt: skip

    async def frames(self, api: PromApi, instants: range) -> list[Frame]:
        """The frame at each of ``instants`` (a run of :attr:`grid`), two queries."""
        run = await self.fetch(api, instants)
        return [run.frame(t_ms) for t_ms in instants]


async def plan(api: PromApi, window: Window, points_per_query: int = POINTS_PER_QUERY) -> History:
    """List the window's series and settle what to fetch (module header); one line when there
    is nothing to fetch or too much."""
    base = window.base
    ours = selector(family_regex(window.include), window.match)
    try:
        listed = await api.series(ours, window.start_ms, window.end_ms)
    except SourceUnavailable as err:
        if window.match and "refused (HTTP 4" in str(err):  # the server's position is in ours
            raise SourceUnavailable(f"{err} (check --match {window.match!r})") from None
        raise
    text = f"{format_rfc3339_ms(window.start_ms)} .. {format_rfc3339_ms(window.end_ms)}"
    if not listed:
        raise SourceUnavailable(
            f"Prometheus {base}: no all-smi series between {text}"
            + (f" matching {window.match}" if window.match else "")
            + " (does it scrape `allsmi api` or all-smi exporters?)"
        )
    if len(listed) > MAX_SERIES:
        raise UsageError(
            f"Prometheus {base}: {len(listed)} series in the window, over {MAX_SERIES}; "
            'narrow it with --match (e.g. --match \'{job="gpu",instance=~"node-0.*"}\')'
        )
    dcgm_targets = {s[HOST_LABEL] for s in listed if is_dcgm_family(s.get("__name__", ""))}
    exporters = {s[HOST_LABEL] for s in listed if is_exporter_family(s.get("__name__", ""))}
    # a pair's id is its dcgm-exporter target's (module header): listed first
    hosts = sorted({s[HOST_LABEL] for s in listed if HOST_LABEL in s},
                   key=lambda h: (h not in dcgm_targets, h))  # fmt: skip
    paired = pair_ids(tuple(hosts))
    pairs = {h: paired[h] for h in hosts if h in exporters}
    targets = await api.targets()
    step = window.step_ms or _step_of(targets, hosts)
    grid = instants(window.start_ms, window.end_ms, step)
    if not grid:
        raise UsageError(f"the window {text} holds no multiple of the step {step} ms")
    return History(
        window=window,
        ours=ours,
        up=selector("up", window.match),
        hosts=tuple(hosts),
        include=sections_of({s.get("__name__", "") for s in listed}),
        step_ms=step,
        grid=grid,
        # the lead instant is one more point a series (module header)
        per_query=max(
            1,
            min(MAX_POINTS_PER_SERIES - 1, points_per_query // len(listed) - (1 if pairs else 0)),
        ),
        added=frozenset().union(TARGET_LABELS, *(targets[h].labels for h in hosts if h in targets)),
        series=len(listed),
        pairs=pairs,
        ids=tuple(dict.fromkeys(pairs.get(h, h) for h in hosts)),
    )


def history_header(history: History, now_ms: int) -> Header:
    return Header(
        source="remote",
        interval_ms=history.step_ms,
        hosts=history.ids or history.hosts,
        all_smi_version=__version__,
        started_ms=now_ms,
    )


def is_empty(frame: Frame) -> bool:
    """No host had a sample and none was down: the server's gap."""
    return not frame.errors and not any(rows_of(frame, section) for section in SECTION_TABLE)


def api_for(base: str, token: str | None, timeout_s: float | None = None) -> PromApi:
    tls = ssl.create_default_context() if base.startswith("https://") else None
    return PromApi(base, token, tls, timeout_s=timeout_s)


def run(args: argparse.Namespace) -> int:
    given = (("--source remote", args.source == "remote"), ("--hosts", args.hosts))
    for flag, value in (*given, ("--shard", getattr(args, "shard", None))):
        if value:
            raise UsageError(f"{flag} does not go with --from-prometheus")
    if args.interval_ms is not None or args.duration_ms:
        raise UsageError("--interval and --duration do not go with --from-prometheus (see --step)")
    now = RealClock().wall_ms()
    window = window_of(
        args.from_prometheus, args.start, args.end, args.step_ms, args.match, args.include, now
    )
    path = Path(args.output) if args.output else default_output(now)
    prepare_output(path, create_parent=not args.output)
    _refuse_existing(path)
    token = read_token(args.token_file)
    return anyio.run(_record, args, window, token, path, now)


async def _record(
    args: argparse.Namespace, window: Window, token: str | None, path: Path, now: int
) -> int:
    api = api_for(window.base, token)
    try:
        history = await plan(api, window)
        config = sink_config(args, path)
        sys.stderr.write(
            f"allsmi record: reading {len(history.hosts)} host(s), {history.series} series "
            f"from Prometheus {window.base}, {history.text} every {_seconds(history.step_ms)}, "
            f"into {path}\n"
        )
        sys.stderr.flush()
        written = 0
        sink = RecordingSink(config, history_header(history, now))
        with RecordingLock.acquire(path):
            seq = last_seq_of_set(path) + 1
            sink.prepare_existing()
            try:
                carried: Carried | None = None
                for run_of in windows(history.grid, history.per_query):
                    run = await history.fetch(api, run_of, carried)
                    for t_ms in run_of:
                        frame = run.frame(t_ms)
                        if is_empty(frame):
                            continue  # nobody had a sample: the server's gap stays a gap
                        line, kept = fit_frame(attrs.evolve(frame, seq=seq))
                        sink.append(line, seq, frame.t_ms, frame=kept)
                        seq += 1
                        written += 1
                    sink.flush()
                    carried = run.carried()  # the exporters' counters go on (module header)
                    del run  # its answer is let go before the next is fetched
            finally:
                sink.close()
    finally:
        await api.aclose()
    if not written:
        raise SourceUnavailable(f"Prometheus {window.base}: no samples between {history.text}")
    sys.stderr.write(
        f"allsmi record: {written} frame{'' if written == 1 else 's'} from {api.requests} "
        f"queries written to {path}\n"
    )
    return 0


def _refuse_existing(path: Path) -> None:
    """An export is a recording of its own: written over an existing set, its window would
    overlap the set's frames (``verify``: two writers). Refused before anything is asked."""
    names = os.listdir(path.parent) if path.parent.is_dir() else []
    if path.exists() or numbered_segments(path.name, names):
        raise UsageError(
            f"{path} exists: an export from Prometheus writes a recording of its own "
            "(remove it, or choose another -o)"
        )


def _seconds(ms: int) -> str:
    return f"{ms / 1000:g} s" if ms < 60_000 else format_gap(ms)


def _step_of(targets: dict[str, Target], hosts: list[str]) -> int:
    """The shortest scrape interval among ``hosts``' targets, else the default."""
    known = [targets[h].interval_ms for h in hosts if h in targets]
    return min(known) if known else DEFAULT_STEP_MS
