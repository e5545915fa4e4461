"""The events of a recording found behind the replay (README "Events"; the detection is
:mod:`allsmi.domain.events`).

Rules: a daemon thread takes the events the recorder stored with its summaries when every
chunk carries them (``stored``: :func:`~allsmi.adapters.recording.summaries.stored_events`),
reading no frame; otherwise it reads the recording (a file or a rotated set) front to back, as the
map's background pass does (:func:`~allsmi.adapters.recording.mapscan.segment_lines`),
structures every data line (the detection reads rows) and feeds one
:class:`~allsmi.domain.events.Detector`, told of each header met (a segment's, or a
concatenated run's: a new recorder start time is a ``restart``); a line that does not
structure is skipped (it is damage, and the reader counts it). What it finds is handed to
the UI thread through a queue, at least every
:data:`~allsmi.adapters.recording.mapscan.BATCH_S`, so ``n`` answers with the events found
so far; the thread gives up the interpreter every few milliseconds, and
:meth:`EventScan.close` stops it before its next line. A failure is one
:class:`RecordingUnreadable` line from :meth:`EventScan.poll`, never a traceback.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from allsmi.adapters import wire
from allsmi.adapters.recording.decoding import sniff
from allsmi.adapters.recording.discovery import discover, open_segment
from allsmi.adapters.recording.index import parse_header
from allsmi.adapters.recording.mapscan import BATCH_S, YIELD_S, as_one_line, segment_lines
from allsmi.domain.errors import RecordingCorrupt, RecordingUnreadable, UnsupportedSchema
from allsmi.domain.events import Detector, Event
from allsmi.domain.model import Frame

_Found = tuple[list[Event], bool]  # events, and whether the scan is done


class EventScan:
    """The events of the recording at ``path``, found in a daemon thread (module rules)."""

    def __init__(
        self,
        path: Path,
        *,
        expected_hosts: Iterable[str] = (),
        interval_ms: int | None = None,
        stored: Callable[[], list[Event] | None] | None = None,
    ) -> None:
        self.path = path
        self._stored = stored  # the events the recorder stored, when it stored them all
        self.found: list[Event] = []  # every event taken in so far, in time order
        self.done = False
        self._detector = Detector(expected_hosts=tuple(expected_hosts), interval_ms=interval_ms)
        self._queue: queue.SimpleQueue[_Found | RecordingUnreadable] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="allsmi-events", daemon=True)
        self._thread.start()

    def poll(self) -> bool:
        """Take in what the thread found (never waits); True when anything came."""
        came = False
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return came
            if isinstance(item, RecordingUnreadable):
                self.done = True
                raise item
            events, done = item
            if events:
                self.found = sorted([*self.found, *events], key=lambda event: event.t_ms)
            self.done = done
            came = True

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            self._scan()
        except Exception as err:  # one line to the UI, never a traceback
            self._queue.put(as_one_line(err, self.path, "events"))

    def _scan(self) -> None:
        stored = self._stored() if self._stored is not None else None
        if stored is not None:  # no frame to read
            self._queue.put((stored, True))
            return
        pending: list[Event] = []
        last_put = last_yield = time.perf_counter()
        for found in events_by_line(self.path, self._detector):
            if self._stop.is_set():
                return
            pending += found
            now = time.perf_counter()
            if now - last_yield >= YIELD_S:
                time.sleep(0)  # let the UI thread take the GIL
                last_yield = now
            if now - last_put >= BATCH_S:
                self._queue.put((pending, False))
                pending, last_put = [], now
        self._queue.put(([*pending, *self._detector.finish()], True))


def events_by_line(path: Path, detector: Detector) -> Iterator[list[Event]]:
    """The recording at ``path`` (a file or a rotated set) read front to back, line by line:
    each header told to ``detector`` (a new recorder start time is a ``restart``), each data
    line that structures fed to it; per line, the events it confirmed (often none).
    :meth:`Detector.finish` is the caller's. The replay's search and ``allsmi events`` both
    read a recording so, and so agree."""
    line_no = 0
    for file in discover(path):
        with open_segment(file) as fh:
            codec = sniff(fh.read(8))
            fh.seek(0)
            for raw in segment_lines(fh, codec):
                line_no += 1
                info = wire.slice_line(raw)
                if info is not None and info.kind == wire.KIND_HEADER:  # a run begins
                    yield detector.segment(parse_header(raw, []))
                    continue
                frame = _frame(raw, info, line_no)
                yield [] if frame is None else detector.feed(frame)


def _frame(raw: bytes, info: wire.LineInfo | None, line_no: int) -> Frame | None:
    """The frame of a data line (``info``: its slice); None for any other line, or one that
    does not structure."""
    if info is None or info.kind != wire.KIND_DATA:
        return None
    try:
        record = wire.decode_line(raw, line_no)
    except (RecordingCorrupt, UnsupportedSchema):
        return None
    return record if isinstance(record, Frame) else None
