"""The HTTP endpoints shared by the exporter (``allsmi api``) and the mock cluster.

``/metrics`` (Prometheus text, all-smi names), ``/snapshot`` (the frame JSON, one line of
the recording format), ``/events`` (server-sent events: one frame per collection, with
keep-alive comments) and ``/-/ready``. Requests only read the latest published frame; the
text of each view is rendered once per frame, however many scrapers ask. An ``/events``
subscriber is handed the newest frame each time, never a queue: one that stops reading is
dropped by the server's write timeout rather than buffered without bound.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Final

import anyio

from allsmi.adapters import wire
from allsmi.adapters.network.server import Request, Response, Stream
from allsmi.adapters.prometheus.writer import render_metrics
from allsmi.domain.model import Frame
from allsmi.domain.parse import format_rfc3339_ms

METRICS_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
JSON_TYPE: Final = "application/json"
EVENTS_TYPE: Final = "text/event-stream"
INDEX: Final = b"allsmi exporter: /metrics /snapshot /events /-/ready\n"


class FrameFeed:
    """The newest frame, its version, and a way to wait for the next one."""

    def __init__(self) -> None:
        self.frame: Frame | None = None
        self.version = 0
        self._changed = anyio.Event()
        self._rendered: dict[str, tuple[int, bytes]] = {}

    def publish(self, frame: Frame) -> None:
        self.frame = frame
        self.version += 1
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    async def wait_newer(self, version: int, timeout_s: float) -> bool:
        """Wait until a frame newer than ``version`` is published (False on timeout)."""
        with anyio.move_on_after(timeout_s):
            while self.version <= version:
                await self._changed.wait()
            return True
        return False

    def rendered(self, kind: str, render: Callable[[Frame], bytes]) -> bytes | None:
        """``render(frame)`` for the current frame, computed once per version."""
        frame = self.frame
        if frame is None:
            return None
        cached = self._rendered.get(kind)
        if cached is not None and cached[0] == self.version:
            return cached[1]
        body = render(frame)
        self._rendered[kind] = (self.version, body)
        return body


class _Subscription:
    """An ``/events`` stream that leaves the subscriber count when closed — also when it
    was never pulled (a HEAD request), which an async generator's ``finally`` would miss."""

    def __init__(self, owner: FrameEndpoints, chunks: AsyncGenerator[bytes, None]) -> None:
        self._owner = owner
        self._chunks = chunks
        self._open = True

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> bytes:
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        if self._open:
            self._open = False
            self._owner.subscribers -= 1
            await self._chunks.aclose()


class FrameEndpoints:
    """Routes a request to the view of the feed's latest frame."""

    def __init__(
        self,
        feed: FrameFeed,
        *,
        version: str,
        keepalive_s: float = 15.0,
        max_subscribers: int = 64,
    ) -> None:
        self.feed = feed
        self.version = version
        self.keepalive_s = keepalive_s
        # Streams hold a connection for good: capped well below the server's connection
        # bound, so subscribers can never starve the scrapers of /metrics.
        self.max_subscribers = max_subscribers
        self.subscribers = 0

    async def handle(self, request: Request) -> Response | Stream:
        match request.path:
            case "/metrics":
                return self._view("metrics", METRICS_TYPE, self._metrics)
            case "/snapshot":
                return self._view("snapshot", JSON_TYPE, wire.encode_line)
            case "/events":
                if self.subscribers >= self.max_subscribers:
                    return Response(
                        503, b"too many /events subscribers\n", headers=(("retry-after", "10"),)
                    )
                self.subscribers += 1  # counted now: a burst cannot slip past the cap
                return Stream(
                    content_type=EVENTS_TYPE,
                    chunks=self._counted(self.events()),
                    headers=(("cache-control", "no-cache"),),
                )
            case "/-/ready":
                ready = self.feed.frame is not None
                return Response(200 if ready else 503, b"ready\n" if ready else b"starting\n")
            case "/":
                return Response(200, INDEX)
            case _:
                return Response(404, b"not found: try /metrics /snapshot /events\n")

    def _metrics(self, frame: Frame) -> bytes:
        return render_metrics(frame, version=self.version).encode()

    def _view(self, kind: str, content_type: str, render: Callable[[Frame], bytes]) -> Response:
        body = self.feed.rendered(kind, render)
        if body is None:
            return Response(503, b"no collection yet\n")
        return Response(200, body, content_type=content_type)

    def _counted(self, chunks: AsyncGenerator[bytes, None]) -> _Subscription:
        return _Subscription(self, chunks)

    async def events(self) -> AsyncGenerator[bytes, None]:
        """One ``snapshot`` event per published frame, a comment when nothing is new."""
        seen = 0
        while True:
            if self.feed.version > seen and self.feed.frame is not None:
                seen = self.feed.version
                body = self.feed.rendered("snapshot", wire.encode_line)
                assert body is not None
                stamp = format_rfc3339_ms(self.feed.frame.t_ms)
                yield (
                    b"event: snapshot\nid: "
                    + stamp.encode()
                    + b"\ndata: "
                    + body.rstrip(b"\n")
                    + b"\n\n"
                )
            elif not await self.feed.wait_newer(seen, self.keepalive_s):
                yield b": keep-alive\n\n"
