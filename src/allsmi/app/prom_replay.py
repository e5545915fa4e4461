"""``allsmi view --replay prometheus+http://HOST:9090``: a Prometheus server's history played
in the replay TUI, fetched in windows around the playhead (docs/architecture.md §7.1).

Theory of operation. The window is planned as ``record --from-prometheus`` plans it
(:func:`~allsmi.app.from_prometheus.plan`: series listed and bounded, hosts, sections, step);
its instants — the epoch-aligned multiples of the step — are the replay's frames, so the
timeline, every seek and every time on screen is known before any value is fetched. A frame
is fetched with the run of :data:`VIEW_POINTS_PER_QUERY`-bounded instants that holds it
(two ``query_range`` calls), when it is first shown; the run after it is then fetched behind,
so playing on never waits. A run is kept as the server's answer, parsed
(:class:`~allsmi.adapters.prometheus.history.Run`), and only the frame shown is built from
it: a seek pays for one frame, not a run's. A parsed answer is large (its labels are
repeated in every run: ~2 KiB a series, ~45 MB a run of 100 hosts × 8 GPUs), so only the
last :data:`RUNS_KEPT` are kept; the frames built are kept in a cache bounded in bytes
(:data:`CACHE_BYTES`, estimated at :data:`ROW_BYTES` a row), the least recently shown
evicted first, and a frame of a run no longer kept is fetched again. A seek to a run not
fetched yet cancels what is being fetched behind: the run on screen never waits for one
nobody asked for.

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
- Exporters' counters (dcgm-exporter's PCIe and XID, node_exporter's CPU seconds): each run
  is fetched with the instant before it and folded in order from there
  (:class:`~allsmi.adapters.prometheus.history.Run`), so a run's first frame has its rates
  whichever run is shown first; a seek back within a run folds it again up to the frame. A
  run's XID counts begin at that instant (a recording's, at the window's start).
"""

from __future__ import annotations

import collections
import contextlib
import threading
from concurrent.futures import CancelledError, Future
from typing import Final

import anyio
import anyio.from_thread

from allsmi.adapters.network.promapi import PromApi
from allsmi.adapters.prometheus.history import Run
from allsmi.adapters.recording.source import IndexUpdate
from allsmi.app.from_prometheus import History, Window, api_for, history_header, plan
from allsmi.domain.errors import AllsmiError
from allsmi.domain.model import SECTION_TABLE, Frame, Header
from allsmi.domain.sections import rows_of

VIEW_POINTS_PER_QUERY: Final = 100_000  # a run shown within a second on a local server
VIEW_TIMEOUT_S: Final = 10.0
CACHE_BYTES: Final = 256 * 1024 * 1024
RUNS_KEPT: Final = 3  # answers kept as parsed: the run shown, the one behind, one more
ROW_BYTES: Final = 1400  # what a row of a built frame holds in memory (measured: ~1.3 KiB)


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
        self._ahead: dict[int, Future[Run]] = {}
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
        self._runs: collections.OrderedDict[int, Run] = collections.OrderedDict()
        self._built: collections.OrderedDict[int, tuple[Frame, int]] = collections.OrderedDict()
        self._held = 0  # bytes of the built frames kept

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
        with self._guard:
            built = self._built.get(index)
            if built is not None:
                self._built.move_to_end(index)
                return built[0]
        per = self.history.per_query
        number = index // per
        run = self._run(number)
        if number + 1 < -(-self.frame_count // per):
            self._fetch_behind(number + 1)
        t_ms = self.history.grid[index]
        if isinstance(run, str):  # it could not be fetched: say why, ask again next time
            return Frame(t_ms=t_ms, source="remote", errors=(run,))
        frame = run.frame(t_ms)
        size = ROW_BYTES * sum(len(rows_of(frame, s) or ()) for s in SECTION_TABLE)
        with self._guard:
            self._built[index] = (frame, size)
            self._held += size
            while self._held > self._cache_bytes and len(self._built) > 1:
                _, (_, freed) = self._built.popitem(last=False)
                self._held -= freed
        return frame

    def _instants(self, number: int) -> range:
        per = self.history.per_query
        return self.history.grid[number * per : (number + 1) * per]

    def _run(self, number: int) -> Run | str:
        """Run ``number``, fetched now if it is not cached or being fetched behind; the
        reason, when it cannot be fetched."""
        with self._guard:
            cached = self._runs.get(number)
            if cached is not None:
                self._runs.move_to_end(number)
                return cached
            ahead = self._ahead.pop(number, None)
            stale = list(self._ahead.values()) if ahead is None else []
            if ahead is None:
                self._ahead.clear()
        for future in stale:
            future.cancel()  # a seek elsewhere: what was fetched behind can wait
        run: Run | None = None
        try:
            if ahead is not None:
                run = ahead.result()
        except CancelledError:
            pass  # cancelled under us (a seek elsewhere, just before): ask for it now
        except AllsmiError as err:
            self.warnings.append(str(err))
            return str(err)
        if run is None:
            try:
                run = self._portal.call(self._fetch, number)
            except AllsmiError as err:
                self.warnings.append(str(err))
                return str(err)
        self._keep(number, run)
        return run

    def _fetch_behind(self, number: int) -> None:
        with self._guard:
            if number in self._runs or number in self._ahead:
                return
            self._ahead[number] = self._portal.start_task_soon(self._fetch, number)

    async def _fetch(self, number: int) -> Run:
        if self._lock is None:
            self._lock = anyio.Lock()  # made on the portal's loop, used only there
        async with self._lock:
            run = await self.history.fetch(self._api, self._instants(number))
        self.fetches += 1
        return run

    def _keep(self, number: int, run: Run) -> None:
        with self._guard:
            self._runs[number] = run
            self._runs.move_to_end(number)
            while len(self._runs) > RUNS_KEPT:
                self._runs.popitem(last=False)

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
