"""The map of a replayed recording, as the replay screen draws it (docs/architecture.md §5.6).

The map is a :class:`~allsmi.domain.summary.Summary` of the whole recording, built from what
the file stores (our zstd files keep a summary after each chunk) and from a background pass
over the rest (:class:`MapBuild`): the strip fills in as the pass goes, and keys never wait
for it. This module keeps what the screen needs between paints:

- the strip's cells, cut from the map once per (tab, width, span, map version): cutting a map
  of 100,000 buckets into cells takes a tenth of a second, a paint must take milliseconds;
- the bucket holding the frame on screen, built from that bucket's frames up to it (at most
  :data:`PARTIAL_FRAMES`), so a paused replay's sparklines end exactly where the live view's
  ended at that instant (the map's own bucket also counts the frames after it).

Where the map comes from (:func:`open_map`, :class:`MapBuild`), all of it behind the replay
(the first frame is on screen before any of it is read): a segment whose chunks all carry a
stored summary that passed its checks (``adapters/recording/summaries.py``) gives its part
without decoding a frame; one that lacks at most :data:`FEW_MISSING` of them (a crash-cut file:
the chunk being written has none yet) gives the rest from those chunks' frames; any other
segment is read by the background pass (:class:`~allsmi.adapters.recording.mapscan.MapScan`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Collection, Sequence
from typing import Final

from allsmi.adapters.recording.discovery import discover
from allsmi.adapters.recording.eventscan import EventScan
from allsmi.adapters.recording.follow import FollowingSource
from allsmi.adapters.recording.index import Chunk, SegmentInfo
from allsmi.adapters.recording.mapscan import MapScan, summary_of_lines
from allsmi.adapters.recording.merged import MergedSource
from allsmi.adapters.recording.source import RecordingSource
from allsmi.adapters.recording.summaries import stored_events, stored_summaries
from allsmi.domain.errors import AllsmiError, RecordingUnreadable
from allsmi.domain.events import Event
from allsmi.domain.history import MapView
from allsmi.domain.summary import Cell, Summary, bucket_of

PARTIAL_FRAMES: Final = 256  # frames read back for the bucket on screen, at most
FEW_MISSING: Final = 2  # chunks of a segment without a stored summary read at open, at most


class ReplayMap:
    """The map of one replayed recording, and the caches a paint needs."""

    def __init__(self, summary: Summary, feed: MapBuild | MergedBuild | None = None) -> None:
        self.summary = summary
        self.feed = feed
        self.version = 0  # bumps whenever the map changed
        self.problem: str | None = None  # why the map stopped short (the replay goes on)
        self._stopped_at: int | None = None  # ...and how far it had got
        self._stored_of: dict[Chunk, Summary] = {}  # a finished build's stored summaries
        self.scanned = False  # the background pass read some of the recording
        self._cells: dict[tuple[str | None, int, int, int], Sequence[Cell]] = {}
        self._partial: tuple[tuple[int, int], Summary | None] | None = None
        self._checked: set[Chunk] = set()  # chunks whose stored summary met their frames
        self._distrusted: set[Chunk] = set()  # ...and those whose did not

    @property
    def building(self) -> bool:
        return self.feed is not None

    def poll(self) -> bool:
        """Take in what the background pass built; True when the map changed."""
        feed = self.feed
        if feed is None:
            return False
        try:
            parts = feed.poll()
        except (AllsmiError, OSError) as err:  # the map stops where it is; the replay goes on
            self.problem = f"map incomplete: {err}"
            first = self.summary.bucket_range()
            self._stopped_at = (
                feed.built_to_ms
                if feed.built_to_ms is not None
                else (-1 if first is None else first[0] * self.summary.width_ms - 1)
            )
            self.close()
            self.version += 1
            self._cells.clear()
            return True
        for part in parts:
            self.summary.merge(part)
        changed = bool(parts)
        if feed.done:
            if isinstance(feed, MergedBuild) and feed.problems:  # the others' maps are in
                self.problem = "map incomplete: " + "; ".join(feed.problems)
            self.close()  # keeps what it took from storage, to check later
            changed = True
        if changed:
            self.version += 1
            self._cells.clear()
        return changed

    def close(self) -> None:
        if self.feed is not None:
            self._stored_of = self.feed.stored_of  # what it took from storage, to check later
            self.scanned = self.scanned or self.feed.scan is not None
            self.feed.close()
            self.feed = None

    def view(
        self, source: RecordingSource | FollowingSource | MergedSource, cursor: int
    ) -> MapView:
        """What the screen draws for the frame at ``cursor`` (its chunk, decoded for the
        screen anyway, first checked against its stored summary: :meth:`_check`)."""
        if isinstance(source, RecordingSource):
            self._check(source, cursor)
        first = source.time_at(0)
        whole = getattr(source, "whole_duration_ms", None)
        length = whole if whole is not None else source.duration_ms
        span = (first, first + max(0, length))
        t_ms = source.time_at(cursor)
        feed = self.feed
        if feed is not None:
            built: int | None = feed.built_to_ms or first - 1
        else:
            built = self._stopped_at  # None: the map is whole
        version = self.version

        def strip(host: str | None, ncells: int) -> Sequence[Cell]:
            key = (host, ncells, span[1], version)
            cells = self._cells.get(key)
            if cells is None:
                cells = self._cells[key] = self.summary.cells(span[0], span[1] + 1, ncells, host)
            return cells

        partial = self._partial_of(source, cursor, t_ms)
        return MapView(self.summary, t_ms, partial, span, strip, built)

    def _check(self, source: RecordingSource, cursor: int) -> None:
        """The chunk of the frame at ``cursor`` against the summary stored for it, once: a
        summary that contradicts the frames (damage, forgery) is no longer trusted — the map
        is built again without it, that chunk from its frames — and the message line says
        so."""
        feed = self.feed
        stored_of = feed.stored_of if feed is not None else self._stored_of
        at = source.timeline.chunk_of(cursor)
        chunk = source.chunks[at]
        stored = stored_of.get(chunk)
        if stored is None or chunk in self._checked:
            return
        self._checked.add(chunk)
        if summary_of_lines(source.chunk_lines(at), self.summary) == stored:
            return
        self._distrusted.add(chunk)
        segment = source.segments[chunk.segment].path.name
        self.problem = f"the stored summary of a chunk of {segment} disagrees with its frames: "
        self.problem += "the map is drawn from the frames"
        self.close()
        like = self.summary
        self.summary = Summary(like.width_ms, like.expected_hosts, like.interval_ms)
        self.feed = MapBuild(source, self.summary, frozenset(self._distrusted))
        self._stored_of = {}
        self._stopped_at = None
        self.version += 1
        self._cells.clear()
        self.poll()

    def _partial_of(
        self, source: RecordingSource | FollowingSource | MergedSource, cursor: int, t_ms: int
    ) -> Summary | None:
        """The bucket of the frame at ``cursor``, of its frames up to that one."""
        key = (cursor, source.generation)
        if self._partial is not None and self._partial[0] == key:
            return self._partial[1]
        start = bucket_of(t_ms, self.summary.width_ms) * self.summary.width_ms
        if isinstance(source, MergedSource):
            partial = _merged_partial(source, cursor, start, self.summary.width_ms)
            self._partial = (key, partial)
            return partial
        first = cursor
        while first > 0 and cursor - first < PARTIAL_FRAMES and source.time_at(first - 1) >= start:
            first -= 1
        partial = Summary(
            self.summary.width_ms, self.summary.expected_hosts, self.summary.interval_ms
        )
        for index in range(first, cursor + 1):
            frame = source.frame(index)
            if frame.t_ms >= start:
                partial.add(frame)
        self._partial = (key, partial)
        return partial


class MapBuild:
    """What builds a replay's map behind it: a thread reads the stored summaries of each segment
    that has them (a file's summaries are read in one go, without decoding a frame); the
    segments they do not cover are then read by the background pass (:class:`MapScan`).
    Chunks of a stored segment left without a summary (at most :data:`FEW_MISSING`: a
    crash-cut file's last) are read from their frames on the caller's thread, which alone
    touches the source."""

    def __init__(
        self, source: RecordingSource, like: Summary, distrust: Collection[Chunk] = ()
    ) -> None:
        self.source = source
        self.like = like
        self.distrust = distrust  # chunks whose stored summary contradicted their frames
        self.stored_of: dict[Chunk, Summary] = {}  # the stored summaries taken, by chunk
        self._stored: queue.SimpleQueue[tuple[int, list[Summary | None]] | BaseException]
        self._stored = queue.SimpleQueue()
        self._jobs: list[tuple[int, SegmentInfo, list[Chunk]]] = []
        self._scan_segments: list[int] = []
        for seg_index, segment in enumerate(source.segments):
            span = source.timeline.segment_span(seg_index)
            if span is None or not segment.summaries:
                self._scan_segments.append(seg_index)
            else:
                chunks = list(source.chunks[span[0] : span[1] + 1])
                self._jobs.append((seg_index, segment, chunks))
        # segments the source has not opened yet (indexed behind): the pass reads them
        self._scan_segments += range(len(source.segments), _segment_count(source))
        self._waiting = len(self._jobs)  # stored results not yet taken in
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="allsmi-summaries", daemon=True)
        self._thread.start()
        self.scan: MapScan | None = None
        self._built: int | None = None
        self._done = False

    def _read(self) -> None:
        for seg_index, segment, chunks in self._jobs:
            if self._stop.is_set():
                return
            try:
                self._stored.put((seg_index, stored_summaries(segment.path, segment, chunks)))
            except BaseException as err:  # handed to the caller's thread
                self._stored.put(err)
                return

    @property
    def done(self) -> bool:
        return self._done

    @property
    def built_to_ms(self) -> int | None:
        return self._built

    def poll(self) -> list[Summary]:
        parts: list[Summary] = []
        while self._waiting:
            try:
                found = self._stored.get_nowait()
            except queue.Empty:
                break
            if isinstance(found, BaseException):
                raise found
            self._waiting -= 1
            parts += self._stored_parts(*found)
        if not self._waiting and self.scan is None and self._scan_segments:
            every = range(max(_segment_count(self.source), max(self._scan_segments) + 1))
            self.scan = MapScan(
                self.source.path,
                skip_segments=[n for n in every if n not in self._scan_segments],
                expected_hosts=self.like.expected_hosts,
                interval_ms=self.like.interval_ms,
            )
        if self.scan is not None:
            parts += [batch.summary for batch in self.scan.poll()]
        self._done = not self._waiting and (self.scan is None or self.scan.done)
        for part in parts:
            reached = part.bucket_range()
            if reached is not None:
                # built up to the last bucket a part reached, that one excluded: the pass
                # hands its batches over by time, so a later one may add to that bucket
                end = reached[1] * part.width_ms - 1
                self._built = end if self._built is None else max(self._built, end)
        return parts

    def _stored_parts(self, seg_index: int, stored: list[Summary | None]) -> list[Summary]:
        """The parts of a segment with stored summaries: each chunk's, or (at most
        :data:`FEW_MISSING` of them) its frames'; none when the pass must read it."""
        span = self.source.timeline.segment_span(seg_index)
        if span is None or span[1] - span[0] + 1 != len(stored):  # it changed: read it
            self._scan_segments.append(seg_index)
            return []
        first = span[0]
        chunks = self.source.chunks[first : first + len(stored)]
        stored = [None if c in self.distrust else p for c, p in zip(chunks, stored, strict=True)]
        missing = [n for n, part in enumerate(stored) if part is None]
        if len(missing) > FEW_MISSING or len(missing) == len(stored):
            self._scan_segments.append(seg_index)
            return []
        parts: list[Summary] = []
        for n, (chunk, part) in enumerate(zip(chunks, stored, strict=True)):
            if part is None:
                part = summary_of_lines(self.source.chunk_lines(first + n), self.like)
            else:
                self.stored_of[chunk] = part
            parts.append(part)
        return parts

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.scan is not None:
            self.scan.close()


def open_map(source: RecordingSource) -> ReplayMap:
    """The map of ``source``'s recording, built behind the replay (:class:`MapBuild`)."""
    header = source.header
    summary = Summary(
        expected_hosts=header.hosts if header else (),
        interval_ms=header.interval_ms if header else None,
    )
    replay_map = ReplayMap(summary, MapBuild(source, summary))
    replay_map.poll()  # what is there already (nothing to wait for)
    return replay_map


def _segment_count(source: RecordingSource) -> int:
    """The files of the recording now (those the source opened, if it cannot be listed: the
    background pass then says why)."""
    try:
        return len(discover(source.path))
    except AllsmiError:
        return len(source.segments)


def open_events(source: RecordingSource) -> EventScan:
    """The search for ``source``'s events, started behind the replay: those the recorder
    stored when it stored them all (read behind, without a frame), else a scan."""
    header = source.header
    parts = stored_parts(source)
    return EventScan(
        source.path,
        expected_hosts=header.hosts if header else (),
        interval_ms=header.interval_ms if header else None,
        stored=None if parts is None else lambda: stored_events(parts),
    )


def stored_parts(source: RecordingSource) -> list[tuple[SegmentInfo, list[Chunk]]] | None:
    """Each segment of ``source`` with its chunks, for :func:`stored_events`; None while the
    source has not opened every file of the recording (indexing behind)."""
    if len(source.segments) != _segment_count(source):
        return None
    parts: list[tuple[SegmentInfo, list[Chunk]]] = []
    for seg_index, segment in enumerate(source.segments):
        span = source.timeline.segment_span(seg_index)
        chunks = [] if span is None else list(source.chunks[span[0] : span[1] + 1])
        parts.append((segment, chunks))
    return parts


def _merged_partial(source: MergedSource, cursor: int, start: int, width_ms: int) -> Summary:
    """The bucket of merged frame ``cursor``: each input's frames in it up to that instant
    (at most :data:`PARTIAL_FRAMES` each), counted as that input's own map counts them."""
    partial = Summary(width_ms)
    for number, last in source.input_frames(cursor):
        recording = source.inputs[number]
        first = last
        while first >= 0 and last - first < PARTIAL_FRAMES and recording.time_at(first) >= start:
            first -= 1
        if first == last:
            continue
        own = _like(recording, width_ms)
        for index in range(first + 1, last + 1):
            own.add(source.input_frame(number, index))
        partial.merge(own)
    return partial


def _like(source: RecordingSource | MergedSource | object, width_ms: int) -> Summary:
    """An empty map shaped for ``source``: its header's hosts and interval."""
    header = getattr(source, "header", None)
    return Summary(
        width_ms,
        expected_hosts=header.hosts if header else (),
        interval_ms=header.interval_ms if header else None,
    )


POLL_BUDGET_S: Final = 0.02  # a merged map or search waits this long a poll for its next input


class MergedBuild:
    """The map of a merged replay: each input's own :class:`MapBuild`, one input at a time
    (so one input's files are read at once, however many inputs), its map handed over whole
    when it is built (one join per input, not one per part). A poll goes on to the next input
    within :data:`POLL_BUDGET_S` (1,000 inputs are not 1,000 polls apart). An input whose map
    cannot be built (a file gone since it was opened) is left out and named in
    :attr:`problems`; the others are still built."""

    def __init__(self, source: MergedSource, like: Summary) -> None:
        self.source = source
        self.like = like
        self.stored_of: dict[Chunk, Summary] = {}  # not checked against frames here
        self.scan: MapScan | None = None
        self.problems: list[str] = []
        self._next = 0
        self._build: MapBuild | None = None
        self._own: Summary | None = None
        self._done = False
        self._start()

    def _start(self) -> None:
        while self._next < len(self.source.inputs):
            recording = self.source.inputs[self._next]
            self._next += 1
            if isinstance(recording, RecordingSource):
                self._own = _like(recording, self.like.width_ms)
                self._build = MapBuild(recording, self._own)
                return
        self._build = None
        self._done = True

    @property
    def done(self) -> bool:
        return self._done

    @property
    def built_to_ms(self) -> int | None:
        return None  # each input covers the whole time: the map is partial until all are in

    def poll(self) -> list[Summary]:
        parts: list[Summary] = []
        deadline = time.monotonic() + POLL_BUDGET_S
        fresh = False  # an input was started in this poll: its thread is given a moment
        while self._build is not None:
            build, own = self._build, self._own
            assert own is not None
            try:
                found = build.poll()
            except (AllsmiError, OSError) as err:  # this input's map is left out
                build.close()
                self.problems.append(f"{self.source.names[self._next - 1]}: {err}")
                self._start()
                fresh = True
                continue
            for part in found:
                own.merge(part)
            if not build.done:
                if not fresh or time.monotonic() >= deadline:
                    break
                time.sleep(0.002)  # its thread has just begun: a moment, then look again
                continue
            self.scan = self.scan or build.scan
            build.close()
            parts.append(own)
            self._start()
            fresh = True
        return parts

    def close(self) -> None:
        if self._build is not None:
            self._build.close()
            self._build = None


def open_merged_map(source: MergedSource) -> ReplayMap:
    """The map of a merged replay (:class:`MergedBuild`), built behind it."""
    summary = _like(source, Summary().width_ms)
    replay_map = ReplayMap(summary, MergedBuild(source, summary))
    replay_map.poll()
    return replay_map


class MergedEvents:
    """The events of a merged replay: each input's search (:func:`open_events`), one input at
    a time; those found so far, in time order (an input's own events keep their order). A
    poll goes on to the next input within :data:`POLL_BUDGET_S`. An input whose search fails
    is left out and the others searched; the failure is raised once all are done, so the
    screen says the search stopped short and why, with every other input's events."""

    def __init__(self, source: MergedSource) -> None:
        self.source = source
        self.found: list[Event] = []
        self.done = False
        self._problems: list[str] = []
        self._next = 0
        self._taken: list[Event] = []  # the finished inputs' events
        self._scan: EventScan | None = None
        self._start()

    def _start(self) -> None:
        while self._next < len(self.source.inputs):
            recording = self.source.inputs[self._next]
            self._next += 1
            if isinstance(recording, RecordingSource):
                self._scan = open_events(recording)
                return
        self._scan = None
        self.done = not self._problems  # a failure is raised by the next poll, then done

    def poll(self) -> bool:
        if self._scan is None and not self.done:
            self.done = True  # every other input's events were taken in before
            raise RecordingUnreadable("; ".join(self._problems))
        came = False
        deadline = time.monotonic() + POLL_BUDGET_S
        fresh = False  # an input was started in this poll: its thread is given a moment
        while self._scan is not None:
            scan = self._scan
            try:
                got = scan.poll()
            except AllsmiError as err:  # this input's search stops; the others go on
                scan.close()
                self._problems.append(f"{self.source.names[self._next - 1]}: {err}")
                self._start()
                came = fresh = True
                continue
            if got:
                came = True
                self.found = sorted([*self._taken, *scan.found], key=lambda e: e.t_ms)
            if not scan.done:
                if not fresh or time.monotonic() >= deadline:
                    break
                time.sleep(0.002)  # its thread has just begun: a moment, then look again
                continue
            scan.close()
            self._taken = self.found = sorted([*self._taken, *scan.found], key=lambda e: e.t_ms)
            self._start()
            came = fresh = True
        return came

    def close(self) -> None:
        if self._scan is not None:
            self._scan.close()
            self._scan = None
