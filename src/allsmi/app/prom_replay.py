"""``allsmi view --replay prometheus+http://HOST:9090``: a Prometheus server's history played
in the replay TUI, fetched in windows around the playhead (docs/architecture.md §7.1).

Theory of operation. The window is planned as ``record --from-prometheus`` plans it
(:func:`~allsmi.app.from_prometheus.plan`: series listed and bounded, hosts, sections, step);
its instants — the epoch-aligned multiples of the step — are the replay's frames, so the
timeline, every seek and every time on screen is known before any value is fetched. A frame
is fetched with the run of :data:`VIEW_POINTS_PER_QUERY`-bounded instants that holds it
(two ``query_range`` calls), when it is first shown; the run after it is then fetched behind,
so playing on never waits. Runs are kept in a cache bounded in bytes (:data:`CACHE_BYTES`,
estimated at :data:`ROW_BYTES` a row), the least recently shown evicted first.

Rules this module obeys:
- The HTTP client runs on an event loop of its own thread (an anyio blocking portal); the
  replay's thread waits for the run it shows, never for the one fetched behind. One request
  at a time (a lock): the client keeps one connection.
- A run that cannot be fetched (unreachable, refused, no answer within
  :data:`VIEW_TIMEOUT_S`) shows its instants as errors-only frames naming the reason, and the
  reason becomes the message line; it is not cached, so the next look asks again.
- An instant at which no host had a sample is a frame without rows: the server's gap shows
  as every host's ``no data``.
- The map and the events are not computed here (they need every frame): the message line
  says so; ``record --from-prometheus`` writes a recording that has both.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from concurrent.futures import Future
from typing import Final

import anyio
import anyio.from_thread

from allsmi.adapters.network.promapi import PromApi
from allsmi.adapters.recording.source import IndexUpdate
from allsmi.app.from_prometheus import History, Window, api_for, history_header, plan
from allsmi.domain.errors import AllsmiError
from allsmi.domain.model import SECTION_TABLE, Frame, Header
from allsmi.domain.sections import rows_of

VIEW_POINTS_PER_QUERY: Final = 100_000  # a run shown within a second on a local server
VIEW_TIMEOUT_S: Final = 10.0
CACHE_BYTES: Final = 256 * 1024 * 1024
ROW_BYTES: Final = 1024  # what a row of a frame holds in memory, about


class PrometheusSource:
    """The replay's source over a server's window (module header). Context manager: the
    portal thread and the connection end on :meth:`close`."""

    def __init__(
        self,
        window: Window,
        token: str | None,
        now_ms: int,
        *,
        cache_bytes: int = CACHE_BYTES,
        points_per_query: int = VIEW_POINTS_PER_QUERY,
    ) -> None:
        self._ahead: dict[int, Future[list[Frame]]] = {}
        self._guard = threading.Lock()  # the cache, between the replay's thread and callbacks
        self._stack = contextlib.ExitStack()
        self._portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())
        self._api: PromApi = api_for(window.base, token, VIEW_TIMEOUT_S)
        self._lock: anyio.Lock | None = None
        try:
            self.history: History = self._portal.call(plan, self._api, window, points_per_query)
        except BaseException:
            self.close()
            raise
        self.header: Header | None = history_header(self.history, now_ms)
        self.warnings: list[str] = [
            f"from Prometheus {window.base}: no map or events here "
            "(record --from-prometheus writes a recording with both)"
        ]
        self.skipped_lines = 0
        self.generation = 0
        self.indexing: float | None = None
        self.fetches = 0  # runs fetched so far (tests and benchmarks read it)
        self._cache_bytes = cache_bytes
        self._runs: collections.OrderedDict[int, tuple[list[Frame], int]] = (
            collections.OrderedDict()
        )
        self._held = 0  # bytes of the cached runs

    # ----------------------------------------------------------------- the timeline

    @property
    def frame_count(self) -> int:
        return len(self.history.grid)

    def time_at(self, index: int) -> int:
        return self.history.grid[index]

    key_at = time_at

    def index_at_or_before(self, key_ms: int) -> int:
        """The last frame at or before ``key_ms`` (the first when none is)."""
        grid = self.history.grid
        return max(0, min(len(grid) - 1, (key_ms - grid.start) // grid.step))

    @property
    def duration_ms(self) -> int:
        grid = self.history.grid
        return grid[-1] - grid[0]

    @property
    def whole_duration_ms(self) -> int:
        return self.duration_ms

    def poll_index(self) -> IndexUpdate:
        return IndexUpdate()  # the timeline is whole from the start

    def estimated_frames(self) -> int:
        return self.frame_count

    # ----------------------------------------------------------------- frames

    def frame(self, index: int) -> Frame:
        per = self.history.per_query
        run = index // per
        frames = self._run(run)
        if run + 1 < -(-self.frame_count // per):
            self._fetch_behind(run + 1)
        return frames[index - run * per]

    def _instants(self, run: int) -> range:
        per = self.history.per_query
        return self.history.grid[run * per : (run + 1) * per]

    def _run(self, run: int) -> list[Frame]:
        with self._guard:
            cached = self._runs.get(run)
            if cached is not None:
                self._runs.move_to_end(run)
                return cached[0]
            ahead = self._ahead.pop(run, None)
        try:
            frames = ahead.result() if ahead is not None else self._portal.call(self._fetch, run)
        except AllsmiError as err:
            self.warnings.append(str(err))
            return [Frame(t_ms=t, source="remote", errors=(str(err),)) for t in self._instants(run)]
        self._keep(run, frames)
        return frames

    def _fetch_behind(self, run: int) -> None:
        with self._guard:
            if run in self._runs or run in self._ahead:
                return
            future = self._portal.start_task_soon(self._fetch, run)
            self._ahead[run] = future

    async def _fetch(self, run: int) -> list[Frame]:
        if self._lock is None:
            self._lock = anyio.Lock()  # made on the portal's loop, used only there
        async with self._lock:
            frames = await self.history.frames(self._api, self._instants(run))
        self.fetches += 1
        return frames

    def _keep(self, run: int, frames: list[Frame]) -> None:
        size = ROW_BYTES * sum(len(rows_of(f, s) or ()) for f in frames for s in SECTION_TABLE)
        with self._guard:
            self._runs[run] = (frames, size)
            self._held += size
            while self._held > self._cache_bytes and len(self._runs) > 1:
                _, (_, freed) = self._runs.popitem(last=False)
                self._held -= freed

    # ----------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Drop what is fetched behind, close the connection, end the portal's thread."""
        with self._guard:
            ahead, self._ahead = list(self._ahead.values()), {}
        for future in ahead:
            future.cancel()
        with contextlib.suppress(Exception):
            self._portal.call(self._api.aclose)
        self._stack.close()

    def __enter__(self) -> PrometheusSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
