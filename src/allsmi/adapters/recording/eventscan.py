"""The events of a recording found behind the replay (README "Events"; the detection is
:mod:`allsmi.domain.events`).

Rules: a daemon thread takes the events the recorder stored with its summaries when every
chunk carries them (``stored``: :func:`~allsmi.adapters.recording.summaries.stored_events`),
reading no frame; otherwise it reads the recording (a file or a rotated set) front to back, as the
map's background pass does (:func:`~allsmi.adapters.recording.mapscan.segment_lines`),
reads every data line as the decoder structures it (below: what detection reads) and feeds one
:class:`~allsmi.domain.events.Detector`, told of each header met (a segment's, or a
concatenated run's: a new recorder start time is a ``restart``); a line that does not
structure is skipped (it is damage, and the reader counts it). What it finds is handed to
the UI thread through a queue, at least every
:data:`~allsmi.adapters.recording.mapscan.BATCH_S`, so ``n`` answers with the events found
so far; the thread gives up the interpreter every few milliseconds, and
:meth:`EventScan.close` stops it before its next line. A failure is one
:class:`RecordingUnreadable` line from :meth:`EventScan.poll`, never a traceback.

One of our data lines is not structured into a frame: :func:`detection_readings` reads what
:meth:`Detector.feed_readings` takes (the time, the errors, the per-host rows' ``host_id``, the
GPU fields the detection reads) straight from its orjson-parsed object, by the map's rule
(:mod:`allsmi.adapters.recording.mapscan`, whose key tables and checks it shares): the JSON
types of exactly the fields it reads (an integer in a float field is a float, as the decoder
makes it) and every key a row requires; anything it does not read as the decoder would — a
value of another type in a field it reads, a required key missing, a schema other than 1, an
unparsable time, a header or index line, any all-smi line — is left to the decoder (the full
path above). One limit, the map's: a field the detection does not read (a fan's speed, a
process row's ``pid``, an NVLink row) is not checked, so a hand-edited line the decoder refuses
for such a field is read with its readings, where the exact reader skips it as damage.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import orjson

from allsmi.adapters import wire
from allsmi.adapters.recording.decoding import sniff
from allsmi.adapters.recording.discovery import discover, open_segment
from allsmi.adapters.recording.index import parse_header
from allsmi.adapters.recording.mapscan import (
    BATCH_S,
    HOST_KEYS,
    REQUIRED,
    SECTION_KEYS,
    YIELD_S,
    Slow,
    as_float,
    as_one_line,
    segment_lines,
    structured,
)
from allsmi.domain.errors import RecordingCorrupt, RecordingUnreadable, UnsupportedSchema
from allsmi.domain.events import Detector, Event, GpuReading
from allsmi.domain.model import SCHEMA_VERSION, Frame
from allsmi.domain.parse import parse_rfc3339_ms

_OURS_DATA: Final = b'{"schema":1,"t":"'  # how each of our data lines begins
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
        stopping, clock = self._stop.is_set, time.perf_counter
        last_put = last_yield = clock()
        for found in events_by_line(self.path, self._detector):
            if stopping():
                return
            if found:
                pending += found
            now = clock()
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
    loads, lean, feed = orjson.loads, _lean, detector.feed_readings
    for file in discover(path):
        with open_segment(file) as fh:
            codec = sniff(fh.read(8))
            fh.seek(0)
            for raw in segment_lines(fh, codec):
                line_no += 1
                # One of our data lines (slice_line calls each line starting so a data line):
                # what detection reads, without a frame (module header).
                if raw.startswith(_OURS_DATA):  # parsed, an object
                    try:
                        readings = lean(loads(raw))
                    except (orjson.JSONDecodeError, Slow):
                        pass
                    else:
                        yield feed(*readings)
                        continue
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


# --------------------------------------------------------------------------- lean reading

# What Detector.feed_readings takes of a data line: its time, its GPU rows, the host ids of
# its per-host rows (None: no per-host section) and its errors.
Readings = tuple[int, list[GpuReading] | None, set[str] | None, list[str]]


def detection_readings(raw: bytes) -> Readings | None:
    """What the detection reads of one of our data lines, the values
    ``wire.decode_line(raw)``'s frame holds (module header: the fields it does not read are
    not checked); None when this does not read the line as the decoder would, or it is no
    data line: decode it."""
    try:
        obj = orjson.loads(raw)
        return _lean(obj) if type(obj) is dict else None
    except (orjson.JSONDecodeError, Slow):
        return None


def _lean(obj: dict[str, Any]) -> Readings:
    """:func:`detection_readings` of a parsed line; ``Slow`` where it leaves it to the
    decoder."""
    get = obj.get
    schema = get("schema")
    if type(schema) is not int or schema != SCHEMA_VERSION:
        raise Slow
    if get("header") is True or get("index") is True:
        raise Slow  # no frame: the full path tells a header to the detector
    stamp = get("t")
    if type(stamp) is not str:
        raise Slow
    t_ms = _time(stamp)
    seq = get("seq")
    if seq is not None and type(seq) is not int:
        raise Slow
    errors = get("errors") or []
    if type(errors) is not list:
        raise Slow
    for error in errors:
        if type(error) is not str:
            raise Slow
    gpus: list[GpuReading] | None = None
    present: set[str] | None = None
    for key in SECTION_KEYS:
        rows = get(key)
        if rows is None:
            continue
        if type(rows) is not list:
            raise Slow
        if key not in HOST_KEYS:
            if not structured(rows, REQUIRED[key]):
                raise Slow
            continue
        if present is None:
            present = set()
        if key == "gpus":
            gpus = _gpus(rows, present)
            continue
        need = REQUIRED[key]
        for row in rows:
            if type(row) is not dict or not row.keys() >= need:
                raise Slow
            host = row["host_id"]
            if type(host) is not str:
                raise Slow
            present.add(host)
    return t_ms, gpus, present, errors


def _gpus(rows: list[Any], present: set[str]) -> list[GpuReading]:
    """The GPU rows' readings (each row's ``host_id`` added to ``present``), as the decoder
    structures them: every required key present, float fields an integer as a float, integer
    fields only integers (not bounded here: orjson reads an integer past
    ``INT_MIN..INT_MAX`` as a float), ``detail`` only strings; anything else raises
    ``Slow``."""
    need = REQUIRED["gpus"]
    out = []
    for row in rows:
        if type(row) is not dict or not row.keys() >= need:
            raise Slow
        host, uuid = row["host_id"], row["uuid"]
        if type(host) is not str or type(uuid) is not str:
            raise Slow
        if "health" in row:
            raise Slow  # health signals: the decoder reads them (docs/recording-format.md §5.3.3)
        present.add(host)
        get = row.get
        util, power = get("utilization"), get("power_consumption")
        temp, used, total = get("temperature"), get("used_memory"), get("total_memory")
        slowdown = get("temperature_threshold_slowdown")
        shutdown = get("temperature_threshold_shutdown")
        if type(util) is not float:
            util = as_float(util)
        if type(power) is not float:
            power = as_float(power)
        if (
            (temp is not None and type(temp) is not int)
            or (used is not None and type(used) is not int)
            or (total is not None and type(total) is not int)
            or (slowdown is not None and type(slowdown) is not int)
            or (shutdown is not None and type(shutdown) is not int)
        ):
            raise Slow
        detail = get("detail", _NO_DETAIL)
        if type(detail) is not dict:
            raise Slow
        for value in detail.values():
            if type(value) is not str:
                raise Slow
        out.append(
            GpuReading(uuid, host, util, temp, used, total, power, slowdown, shutdown, detail)
        )
    return out


_NO_DETAIL: Final[dict[str, str]] = {}  # a row without ``detail``: the decoder's default ({})

# The minute of a time as written (``YYYY-MM-DDTHH:MM:``) → its epoch ms, learnt from
# parse_rfc3339_ms; seconds and milliseconds as written → their ms.
_MINUTES: Final[dict[str, int]] = {}
_SECONDS: Final = {f"{s:02d}": s * 1000 for s in range(60)}
_MILLIS: Final = {f"{m:03d}": m for m in range(1000)}


def _time(stamp: str) -> int:
    """``parse_rfc3339_ms(stamp)`` (``Slow`` where it fails); a time in the recorder's shape
    (``…:SS.mmmZ``) of a minute already parsed is read from its digits."""
    if len(stamp) == 24 and stamp[19] == "." and stamp[23] == "Z":
        base = _MINUTES.get(stamp[:17])
        second, milli = _SECONDS.get(stamp[17:19]), _MILLIS.get(stamp[20:23])
        if second is None or milli is None:
            base = None
        elif base is not None:
            return base + second + milli
    else:
        second = milli = None
    try:
        t_ms = parse_rfc3339_ms(stamp)
    except ValueError:
        raise Slow from None
    if second is not None and milli is not None:
        if len(_MINUTES) >= 10_000:
            _MINUTES.clear()
        _MINUTES[stamp[:17]] = t_ms - second - milli
    return t_ms
