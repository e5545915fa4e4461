"""The map of a replayed recording, as the replay screen draws it (docs/architecture.md §5.6).

The map is a :class:`~allsmi.domain.summary.Summary` of the whole recording, built from what
the file stores (our zstd files keep a summary after each chunk) and from a background pass
over the rest (:class:`MapFeed`): the strip fills in as the pass goes, and keys never wait
for it. This module keeps what the screen needs between paints:

- the strip's cells, cut from the map once per (tab, width, span, map version): cutting a map
  of 100,000 buckets into cells takes a tenth of a second, a paint must take milliseconds;
- the bucket holding the frame on screen, built from that bucket's frames up to it (at most
  :data:`PARTIAL_FRAMES`), so a paused replay's sparklines end exactly where the live view's
  ended at that instant (the map's own bucket also counts the frames after it).

Where the map comes from (:func:`open_map`): a segment whose chunks all carry a stored summary
that passed its checks (``adapters/recording/summaries.py``) gives its part at once, without
decoding a frame; one that lacks at most :data:`FEW_MISSING` of them (a crash-cut file: the
chunk being written has none yet) gives the rest from those chunks' frames, read at open; any
other segment is read by the background pass (:class:`~allsmi.adapters.recording.mapscan.MapScan`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

from allsmi.adapters.recording.follow import FollowingSource
from allsmi.adapters.recording.mapscan import MapScan
from allsmi.adapters.recording.source import RecordingSource
from allsmi.adapters.recording.summaries import stored_summaries
from allsmi.domain.history import MapView
from allsmi.domain.summary import Cell, Summary, bucket_of

PARTIAL_FRAMES: Final = 256  # frames read back for the bucket on screen, at most
FEW_MISSING: Final = 2  # chunks of a segment without a stored summary read at open, at most


class MapFeed(Protocol):
    """The background pass that builds the map of what the file does not store."""

    @property
    def done(self) -> bool: ...

    @property
    def built_to_ms(self) -> int | None:
        """The map holds the recording up to this time (None: nothing yet)."""
        ...

    def poll(self) -> list[Summary]:
        """The parts built since the last call, consecutive in time (never waits)."""
        ...

    def close(self) -> None: ...


class ReplayMap:
    """The map of one replayed recording, and the caches a paint needs."""

    def __init__(self, summary: Summary, feed: MapFeed | None = None) -> None:
        self.summary = summary
        self.feed = feed
        self.version = 0  # bumps whenever the map changed
        self._cells: dict[tuple[str | None, int, int, int], Sequence[Cell]] = {}
        self._partial: tuple[tuple[int, int], Summary | None] | None = None

    @property
    def building(self) -> bool:
        return self.feed is not None

    def poll(self) -> bool:
        """Take in what the background pass built; True when the map changed."""
        feed = self.feed
        if feed is None:
            return False
        parts = feed.poll()
        for part in parts:
            self.summary.merge(part)
        changed = bool(parts)
        if feed.done:
            self.feed = None
            changed = True
        if changed:
            self.version += 1
            self._cells.clear()
        return changed

    def close(self) -> None:
        if self.feed is not None:
            self.feed.close()
            self.feed = None

    def view(self, source: RecordingSource | FollowingSource, cursor: int) -> MapView:
        """What the screen draws for the frame at ``cursor``."""
        first = source.time_at(0)
        whole = getattr(source, "whole_duration_ms", None)
        length = whole if whole is not None else source.duration_ms
        span = (first, first + max(0, length))
        t_ms = source.time_at(cursor)
        feed = self.feed
        built = None if feed is None else (feed.built_to_ms or first - 1)
        version = self.version

        def strip(host: str | None, ncells: int) -> Sequence[Cell]:
            key = (host, ncells, span[1], version)
            cells = self._cells.get(key)
            if cells is None:
                cells = self._cells[key] = self.summary.cells(span[0], span[1] + 1, ncells, host)
            return cells

        partial = self._partial_of(source, cursor, t_ms)
        return MapView(self.summary, t_ms, partial, span, strip, built)

    def _partial_of(
        self, source: RecordingSource | FollowingSource, cursor: int, t_ms: int
    ) -> Summary | None:
        """The bucket of the frame at ``cursor``, of its frames up to that one."""
        key = (cursor, source.generation)
        if self._partial is not None and self._partial[0] == key:
            return self._partial[1]
        start = bucket_of(t_ms, self.summary.width_ms) * self.summary.width_ms
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


class ScanFeed:
    """:class:`MapScan` as a :class:`MapFeed`: the map is built up to the end of the last
    bucket its batches reached."""

    def __init__(self, scan: MapScan) -> None:
        self.scan = scan
        self._built: int | None = None

    @property
    def done(self) -> bool:
        return self.scan.done

    @property
    def built_to_ms(self) -> int | None:
        return self._built

    def poll(self) -> list[Summary]:
        parts = [batch.summary for batch in self.scan.poll()]
        for part in parts:
            reached = part.bucket_range()
            if reached is not None:
                end = (reached[1] + 1) * part.width_ms - 1
                self._built = end if self._built is None else max(self._built, end)
        return parts

    def close(self) -> None:
        self.scan.close()


def open_map(source: RecordingSource) -> ReplayMap:
    """The map of ``source``'s recording: what its files store, at once; the rest behind."""
    header = source.header
    summary = Summary(
        expected_hosts=header.hosts if header else (),
        interval_ms=header.interval_ms if header else None,
    )
    scanned: list[int] = []
    for seg_index, segment in enumerate(source.segments):
        span = source.timeline.segment_span(seg_index)
        if span is None:
            scanned.append(seg_index)
            continue
        chunks = source.chunks[span[0] : span[1] + 1]
        stored = stored_summaries(segment.path, segment, chunks)
        missing = [n for n, part in enumerate(stored) if part is None]
        if len(missing) > FEW_MISSING or len(missing) == len(chunks):
            scanned.append(seg_index)
            continue
        for n, part in enumerate(stored):
            if part is None:
                part = _summary_of_chunk(source, span[0] + n, summary)
            summary.merge(part)
    if not scanned:
        return ReplayMap(summary)
    skip = [n for n in range(len(source.segments)) if n not in scanned]
    scan = MapScan(
        source.path,
        skip_segments=skip,
        expected_hosts=summary.expected_hosts,
        interval_ms=summary.interval_ms,
    )
    return ReplayMap(summary, ScanFeed(scan))


def _summary_of_chunk(source: RecordingSource, at: int, like: Summary) -> Summary:
    """The summary of chunk ``at``'s frames, read now."""
    part = Summary(like.width_ms, like.expected_hosts, like.interval_ms)
    chunk = source.chunks[at]
    source.chunk_lines(at)  # reading it learns its count
    first = chunk.first_index
    for index in range(first, first + (chunk.count or 0)):
        part.add(source.frame(index))
    return part
