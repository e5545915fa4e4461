"""``allsmi api``: this machine as an exporter (docs/architecture.md §3.2).

Collection runs on its own fixed-rate cadence and publishes each frame; requests only read
the latest one. Binds 127.0.0.1 unless told otherwise; with ``--token-file`` or
``ALLSMI_TOKEN`` every request needs ``Authorization: Bearer <token>``. Request size, header
count and concurrent connections are bounded; SIGTERM, SIGINT and SIGHUP shut it down.
Under systemd (``Type=notify``) it says ready once it listens and pets the watchdog after
each collection (:mod:`allsmi.adapters.machine.service`).
"""

from __future__ import annotations

import argparse
import ipaddress
import sys

import anyio

from allsmi import __version__
from allsmi.adapters.machine.service import Notifier, notifier_from_env
from allsmi.adapters.network.endpoints import FrameEndpoints, FrameFeed
from allsmi.adapters.network.server import Limits, serve_tcp
from allsmi.app.clock import Clock, RealClock, run_every
from allsmi.app.local import build_local_source
from allsmi.app.remote import read_token
from allsmi.app.signals import STOP_SIGNALS, wait_for_signal
from allsmi.domain.errors import SourceUnavailable
from allsmi.domain.model import SECTIONS
from allsmi.domain.ports import FrameSource
from allsmi.domain.sections import REMOTE_SECTIONS

# Up to 64 /events subscribers (FrameEndpoints' cap), the rest of the slots for scrapes.
API_LIMITS = Limits(max_connections=256)


async def collect_forever(
    source: FrameSource,
    feed: FrameFeed,
    clock: Clock,
    interval_ms: int,
    notifier: Notifier | None = None,
) -> None:
    """Collect every ``interval_ms`` and publish each frame; a service manager's watchdog
    is petted after each one (a hung collector gets the service restarted)."""

    async def publish(_missed: int) -> None:
        feed.publish(await source.collect(clock.wall_ms()))
        if notifier is not None:
            notifier.pet()

    await source.start()
    try:
        await run_every(clock, interval_ms, publish)
    finally:
        with anyio.CancelScope(shield=True):
            await source.aclose()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run(args: argparse.Namespace) -> int:
    token = read_token(args.token_file)
    if not _is_loopback(args.bind) and token is None:
        sys.stderr.write(
            f"allsmi api: warning: serving on {args.bind} without a token; anyone who can "
            "reach it can read this machine's metrics (set ALLSMI_TOKEN or --token-file)\n"
        )
    source = build_local_source(SECTIONS if args.processes else REMOTE_SECTIONS)
    feed = FrameFeed()
    endpoints = FrameEndpoints(feed, version=__version__)
    anyio.run(_main, args, source, feed, endpoints, token)
    return 0


async def _main(
    args: argparse.Namespace,
    source: FrameSource,
    feed: FrameFeed,
    endpoints: FrameEndpoints,
    token: str | None,
) -> None:
    async with anyio.create_task_group() as tg:
        try:
            port = await tg.start(
                serve_tcp, args.bind, args.port, endpoints.handle, API_LIMITS, token
            )
        except OSError as err:
            message = f"cannot listen on {args.bind}:{args.port}: {err.strerror}"
            raise SourceUnavailable(message) from None
        notifier = notifier_from_env()
        notifier.need_watchdog(args.interval_ms)
        tg.start_soon(collect_forever, source, feed, RealClock(), args.interval_ms, notifier)
        serving = f"serving http://{args.bind}:{port}/metrics /snapshot /events"
        sys.stderr.write(
            f"allsmi api: {serving}{' (token required)' if token else ''}; Ctrl-C stops\n"
        )
        sys.stderr.flush()
        notifier.ready(serving)
        await wait_for_signal(*STOP_SIGNALS)
        notifier.stopping()
        notifier.close()
        tg.cancel_scope.cancel()
