"""``allsmi view``: the live TUI of this machine, and ``--replay`` of a recording.

Both go through the one TUI loop (:mod:`allsmi.app.tui`); this module wires the real
terminal, the OS clock, the local collector or the recording, and maps the flags.
``--replay`` opens the recording before it asks for a terminal, so what is wrong with the
file is what the user hears first (docs/architecture.md §7.3).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import anyio

from allsmi.adapters.recording.eventscan import EventScan
from allsmi.adapters.recording.merged import MergedSource
from allsmi.adapters.recording.source import RecordingSource
from allsmi.adapters.terminal.painter import AsciimaticsTerminal, require_terminal
from allsmi.app.clock import Clock, RealClock, run_every
from allsmi.app.local import build_local_source
from allsmi.app.replay_driver import ReplayDriver, local_zone
from allsmi.app.replay_map import (
    MergedEvents,
    ReplayMap,
    open_events,
    open_map,
    open_merged_map,
)
from allsmi.app.tui import LiveModel, ReplayModel, run_tui
from allsmi.domain.errors import UsageError
from allsmi.domain.model import SECTIONS
from allsmi.domain.ports import FrameSource
from allsmi.domain.sections import REMOTE_SECTIONS

LOCAL_SECTIONS = SECTIONS  # the cluster view scrapes REMOTE_SECTIONS (no process rows)


class ScreenTerminal(AsciimaticsTerminal):
    """The asciimatics terminal, waiting on stdin the anyio way (docs/architecture.md §5.6)."""

    async def wait_input(self, timeout_ms: int) -> None:
        with anyio.move_on_after(max(0, timeout_ms) / 1000):
            await anyio.wait_readable(self.fileno())


def replay_paths(args: argparse.Namespace) -> list[str]:
    """What ``--replay`` names: one or more paths (or one Prometheus URL)."""
    given: str | list[str] | None = args.replay
    if given is None:
        return []
    return [given] if isinstance(given, str) else list(given)


def run(args: argparse.Namespace) -> int:
    window = (args.window_start, args.window_end, args.step_ms, args.match)
    paths = replay_paths(args)
    prometheus = len(paths) == 1 and is_prometheus(paths[0])
    if any(value is not None for value in window) and not prometheus:
        raise UsageError("--from, --to, --step and --match go with --replay prometheus+http://…")
    if args.replay:
        if args.hosts or args.interval_ms:
            raise UsageError(
                "--hosts, --hostfile and --interval are for the live view, not --replay"
            )
        return run_replay(args)
    if args.follow or args.loop or args.start or args.speed != 1.0:
        raise UsageError("--speed, --start, --loop and --follow go with --replay PATH")
    return run_live(args)


def is_prometheus(replay: str | None) -> bool:
    return replay is not None and replay.startswith(("prometheus+http://", "prometheus+https://"))


def open_replay(args: argparse.Namespace) -> ReplayDriver:
    """The recording, the recordings merged, or the Prometheus server's window, opened: every
    failure to open is one line before a terminal is asked for."""
    paths = replay_paths(args)
    if any(is_prometheus(path) for path in paths) and len(paths) > 1:
        raise UsageError("--replay takes one Prometheus URL, alone")
    if len(paths) > 1 or Path(paths[0]).is_dir():
        if args.follow:
            raise UsageError("--follow follows one recording, not several merged")
        merged = MergedSource.open([Path(path) for path in paths])
        try:
            return ReplayDriver.of(merged, speed=args.speed, start=args.start, loop=args.loop)
        except BaseException:
            merged.close()
            raise
    if is_prometheus(paths[0]):
        if args.follow:
            raise UsageError("--follow is for a recording still being written, not Prometheus")
        from allsmi.app.from_prometheus import window_of
        from allsmi.app.prom_replay import PrometheusSource
        from allsmi.app.remote import read_token

        now = RealClock().wall_ms()
        window = window_of(
            paths[0],
            args.window_start,
            args.window_end,
            args.step_ms,
            args.match,
            REMOTE_SECTIONS,
            now,
        )
        source = PrometheusSource(window, read_token(args.token_file), now)
        try:
            return ReplayDriver.of(source, speed=args.speed, start=args.start, loop=args.loop)
        except BaseException:
            source.close()
            raise
    return ReplayDriver.open(
        Path(paths[0]),
        speed=args.speed,
        start=args.start,
        loop=args.loop,
        follow=args.follow,
        background=True,  # a recording with no seek table is shown while it is indexed
    )


def run_replay(args: argparse.Namespace) -> int:
    """The recording is opened first, once: a missing, unreadable, non-regular or empty one
    is reported as such (exit 2) wherever this runs; only then is a terminal required."""
    driver = open_replay(args)
    with driver.source:
        require_terminal()
        source = driver.source
        replay_map: ReplayMap | None = None
        events: EventScan | MergedEvents | None = None
        if isinstance(source, RecordingSource):
            replay_map, events = open_map(source), open_events(source)
        elif isinstance(source, MergedSource):
            replay_map = open_merged_map(source)
            try:
                events = MergedEvents(source)
            except BaseException:
                replay_map.close()
                raise
        model = ReplayModel(
            driver=driver, tz=driver.state.tz or local_zone(), map=replay_map, events=events
        )
        model.poll_events()  # `n` says the search is on from the first key
        try:
            anyio.run(run_tui, ScreenTerminal(), model, RealClock())
        finally:
            if replay_map is not None:
                replay_map.close()
            if model.events is not None:
                model.events.close()
    return 0


def run_live(args: argparse.Namespace) -> int:
    require_terminal()
    source: FrameSource
    if args.hosts:
        from allsmi.adapters.network.scrape import frame_host_ids
        from allsmi.app.remote import build_remote_source, read_token, remote_config

        interval = args.interval_ms or 3000
        config = remote_config(
            tuple(args.hosts), REMOTE_SECTIONS, interval, read_token(args.token_file)
        )
        source = build_remote_source(config)
        model = LiveModel(
            label=f"LIVE {len(args.hosts)} hosts",
            tz=local_zone(),
            expected_hosts=frame_host_ids(tuple(args.hosts)),  # a paired host's once
        )
    else:
        interval = args.interval_ms or 2000
        local = build_local_source(LOCAL_SECTIONS)
        source = local
        model = LiveModel(label=f"LIVE {local.hostname}", tz=local_zone())
    clock = RealClock()

    async def collect() -> None:
        await collect_into(model, source, clock, interval)

    anyio.run(run_tui, ScreenTerminal(), model, clock, collect)
    return 0


async def collect_into(
    model: LiveModel, source: FrameSource, clock: Clock, interval_ms: int
) -> None:
    """The live collector: fixed-rate frames into the model until cancelled."""

    async def show(_missed: int) -> None:
        model.show(await source.collect(clock.wall_ms()))

    await source.start()
    try:
        await run_every(clock, interval_ms, show)
    finally:
        with anyio.CancelScope(shield=True):
            await source.aclose()
