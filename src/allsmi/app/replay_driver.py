"""The replay composition root: the pure core driven against a recording.

The driver feeds events into :func:`allsmi.domain.replay.step`, performs the commands it
returns against the :class:`RecordingSource` (``Seek`` → the last frame at or before a seek
key, ``Land`` → the first frame of a second, else the last before it, ``ShowIndex`` → one
frame by position) and feeds each outcome back as ``FrameShown``.
When the recording changes under it — a followed file grew, was rotated, truncated or
replaced, or reading found that a seek table lied — the core hears of it (``TimelineGrew``,
``TimelineRebuilt``), so its frame count is never stale. Only the frame on screen is ever
structured, and only when it is drawn, so fast playback skips frames instead of queueing
them. The terminal shell (``allsmi view --replay``) and the tests
use the same driver; tests simply never attach a screen.
"""

from __future__ import annotations

import os
import zoneinfo
from collections import deque
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from allsmi.adapters.recording.follow import FollowingSource, FollowUpdate
from allsmi.adapters.recording.lock import recorder_running
from allsmi.adapters.recording.merged import MergedSource
from allsmi.adapters.recording.source import RecordingSource
from allsmi.domain import replay as core
from allsmi.domain.model import Frame

if TYPE_CHECKING:  # imported only to replay from a Prometheus server (view.open_replay)
    from allsmi.app.prom_replay import PrometheusSource


def local_zone() -> tzinfo:
    """The local time zone, DST rules included (``TZ``, else ``/etc/localtime``)."""
    name = os.environ.get("TZ", "").lstrip(":")
    try:
        if name:
            return zoneinfo.ZoneInfo(name)
        with open("/etc/localtime", "rb") as fh:
            return zoneinfo.ZoneInfo.from_file(fh, key="localtime")
    except (OSError, ValueError, zoneinfo.ZoneInfoNotFoundError):
        zone = datetime.now().astimezone().tzinfo
        assert zone is not None
        return zone


@attrs.define
class ReplayDriver:
    """The core, the recording, and what the screen should show next."""

    source: RecordingSource | FollowingSource | PrometheusSource | MergedSource
    state: core.ReplayState
    view_keys: list[str] = attrs.field(factory=list)  # keys for tabs, scrolling, help
    dirty: bool = True
    quit: bool = False
    seeks: int = 0  # seeks performed so far (tests and benchmarks read it)
    _shown: Frame | None = None
    _shown_index: int = -1
    _dropped: int = 0  # frames evicted while the timeline was empty, not yet told
    _generation: int = 0  # the source's generation the core was last told of
    _running: bool | None = None  # following: the recorder as the core was last told of it
    _indexed: int | None = None  # the index's percent as the core was last told of it

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        speed: float = 1.0,
        start: str | None = None,
        loop: bool = False,
        follow: bool = False,
        tz: tzinfo | None = None,
        background: bool = False,
    ) -> ReplayDriver:
        """``background``: a recording with no seek table is indexed in a thread while it
        is shown (:meth:`RecordingSource.poll_index`; not when following)."""
        path = Path(path)
        source: RecordingSource | FollowingSource = (
            FollowingSource(path) if follow else RecordingSource(path, background=background)
        )
        return cls.of(source, speed=speed, start=start, loop=loop, follow=follow, tz=tz)

    @classmethod
    def of(
        cls,
        source: RecordingSource | FollowingSource | PrometheusSource | MergedSource,
        *,
        speed: float = 1.0,
        start: str | None = None,
        loop: bool = False,
        follow: bool = False,
        tz: tzinfo | None = None,
    ) -> ReplayDriver:
        """The driver over a source already open (:meth:`open`'s, a Prometheus server's
        window, :mod:`allsmi.app.prom_replay`, or many recordings merged,
        :mod:`allsmi.adapters.recording.merged`)."""
        indexed, whole = None, None
        if isinstance(source, RecordingSource):
            indexed, whole = _percent(source.indexing), source.whole_duration_ms
        header = source.header
        state, commands = core.initial(
            source.frame_count,
            source.key_at(0),
            source.duration_ms,
            start=start,
            speed=speed,
            loop=loop,
            follow=follow,
            interval_ms=header.interval_ms if header else None,
            tz=tz or local_zone(),
            live=follow and not start,
            indexing=indexed,
            whole_ms=whole,
        )
        driver = cls(source=source, state=state, generation=source.generation, indexed=indexed)
        driver.perform(commands)
        if isinstance(source, FollowingSource):
            driver._running = True  # what the core assumes of a followed recording
            driver._tell_recorder(recorder_running(source.path), caught_up=True)
        return driver

    @property
    def polling(self) -> bool:
        """Whether the recording can still change under the replay (followed, or indexed)."""
        return self.state.follow or self.state.indexing is not None

    def poll(self) -> bool:
        """Follow mode: bring in what the recorder added (or evicted), and whether it still
        runs; indexing: what the background index found. True if the core was told
        anything."""
        if not isinstance(self.source, FollowingSource):
            return self._poll_index(self.source)
        running = recorder_running(self.source.path)  # before reading: all it wrote is there
        if running:
            self._tell_recorder(running, caught_up=True)  # first, so the edge is live again
        told = len(self.source.warnings)
        update = self.source.poll()
        changed = self._take(update, told)
        if running is False:
            changed = self._tell_recorder(running, caught_up=update.caught_up) or changed
        return changed

    def _poll_index(self, source: RecordingSource | PrometheusSource | MergedSource) -> bool:
        """Take in what the background index found; tell the core of the frames and of
        the percent indexed (once it changes)."""
        if self._indexed is None:
            return False
        update = source.poll_index()
        told = False
        if update.added or update.rebuilt:
            self._generation = source.generation
            count, duration, first = self._timeline()
            if update.rebuilt:
                self.feed(core.TimelineRebuilt(count, duration, first))
            else:
                self.feed(core.TimelineGrew(count, duration))
            told = True
        percent = _percent(source.indexing)
        if percent != self._indexed:
            self._indexed = percent
            self.feed(
                core.IndexProgress(percent, source.estimated_frames(), source.whole_duration_ms)
            )
            told = True
        return told

    def _tell_recorder(self, running: bool | None, *, caught_up: bool) -> bool:
        """Tell the core the recorder stopped (once every frame it wrote has been read: the
        lock was sampled before the read that caught up) or started again."""
        if running is None or running == self._running or not (running or caught_up):
            return False
        self._running = running
        self.feed(core.RecorderChanged(running))
        return True

    def _take(self, update: FollowUpdate, told: int) -> bool:
        """Tell the core what a poll brought in; True if anything."""
        assert isinstance(self.source, FollowingSource)
        self._dropped += update.dropped
        if len(self.source.warnings) != told:
            self.dirty = True  # a message to show (damage, truncation, a replaced file)
        if not (update.added or update.dropped or update.rebuilt):
            return False
        if self.source.frame_count == 0:
            # Every frame read was evicted (or the file replaced) and none has come yet:
            # the screen keeps what it shows until the timeline has a frame again.
            self.dirty = True
            return False
        dropped, self._dropped = self._dropped, 0
        self._generation = self.source.generation
        count, duration, first = self._timeline()
        if update.rebuilt:
            self.feed(core.TimelineRebuilt(count, duration, first, dropped=dropped))
        else:
            self.feed(core.TimelineGrew(count, duration, dropped=dropped, first_key_ms=first))
        return True

    def _timeline(self) -> tuple[int, int, int]:
        """Frame count, duration and first seek key, as the core is told them."""
        return self.source.frame_count, self.source.duration_ms, self.source.key_at(0)

    def _tell_rebuilt(self) -> None:
        """Reading counted frames anew (a chunk that held fewer frames than its seek table
        said, a segment rescanned): the core finds the frame to show again."""
        source = self.source
        if source.generation == self._generation or source.frame_count == 0:
            return
        self._generation = source.generation
        self.feed(core.TimelineRebuilt(*self._timeline()))

    def feed(self, event: core.Event) -> None:
        self.state, commands = core.step(self.state, event)
        self.perform(commands)

    def perform(self, commands: tuple[core.Command, ...]) -> None:
        queue = deque(commands)
        while queue:
            command = queue.popleft()
            match command:
                case core.Seek(position_ms=position):
                    self.seeks += 1
                    index = self.source.index_at_or_before(self.state.first_key_ms + position)
                    queue.extend(self._show(index, stepped=False))
                case core.Land(from_ms=start, until_ms=until):
                    self.seeks += 1
                    index, inside = self._landing(start, until)
                    queue.extend(self._show(index, stepped=inside))
                case core.ShowIndex(index=index):
                    queue.extend(self._show(index, stepped=True))
                case core.Render():
                    self.dirty = True
                case core.PassToView(key=key):
                    self.view_keys.append(key)
                case core.Quit():
                    self.quit = True
        self._tell_rebuilt()

    def _landing(self, start_ms: int, until_ms: int) -> tuple[int, bool]:
        """The frame a ``Land`` shows, and whether it lies inside the window: the first frame
        whose key is in [first + start, first + until), else the last one before it."""
        first = self.state.first_key_ms
        before = self.source.index_at_or_before(first + start_ms - 1)
        if self.source.key_at(before) >= first + start_ms:  # no frame before the window
            return before, self.source.key_at(before) < first + until_ms
        after = before + 1
        if after < self.source.frame_count and self.source.key_at(after) < first + until_ms:
            return after, True
        return before, False

    def _show(self, index: int, *, stepped: bool) -> tuple[core.Command, ...]:
        count = self.source.frame_count
        index = min(max(0, index), count - 1)
        key = self.source.key_at(index)
        following = self.source.key_at(index + 1) if index + 1 < count else None
        event = core.FrameShown(
            index=index,
            key_ms=key,
            next_key_ms=following,
            t_ms=self.source.time_at(index),
            stepped=stepped,
        )
        self.state, commands = core.step(self.state, event)
        return commands

    def close(self) -> None:
        """Stop what the source runs in the background (an index, a follower's files)."""
        self.source.close()

    @property
    def shown_index(self) -> int:
        return self.state.cursor

    def frame(self) -> Frame:
        """The structured frame on screen (structured once per change of frame)."""
        if self._shown is None or self._shown_index != self.state.cursor:
            self._shown = self.source.frame(self.state.cursor)
            self._shown_index = self.state.cursor
        return self._shown


def _percent(fraction: float | None) -> int | None:
    return None if fraction is None else int(fraction * 100)
