"""The recording's map from a background pass: per-bucket summaries of every frame
(:class:`allsmi.domain.summary.Summary`) for files that store none (gzip, plain, all-smi's,
crash-cut and older files; docs/recording-format.md §7.7).

Two parts:

- :func:`summary_inputs` reads what :meth:`Summary.add_readings` takes straight from the
  orjson-parsed object of a data line, without structuring a :class:`Frame` (cattrs would
  cost several times the parse). It gives exactly what ``Summary.add(wire.decode_line(line))``
  counts: the same time, the same host ids (the per-host sections' ``host_id`` as the
  decoder leaves them: ours as written, all-smi's normalised), the same quantized readings
  (the quantizers of :mod:`allsmi.domain.summary`, after the decoder's conversions: an
  integer in a float field is a float, all-smi's ``-1``/``0`` sentinels are no reading) and
  the same errors (all-smi's error objects become ``"<section>: <message>"``). Anything it
  does not read as the decoder would — a value of another JSON type in a field it reads, a
  required key missing, a schema other than 1, an unparsable time — is settled by the
  decoder itself on a copy of the object (exact, slow, rare). ``None``: the line gives no
  frame (a header, an index line, a later kind, or one the decoder refuses).
  One limit: a field the map does not read (a fan's name, a process row's ``pid``) is not
  checked, so a hand-edited line the decoder refuses for such a field is counted with its
  readings, where the exact reader shows an errors-only frame (``RecordingSource.frame``).
- :class:`MapScan`: a daemon thread reading a recording (one file or a rotated set) front to
  back — the same decoding as every reader (``decode_with_restarts``), lines split in C
  (``fast_lines``) — that hands the UI thread, through a queue, a *new* :class:`Summary` of
  the frames met since the last hand-over about every :data:`BATCH_S` seconds or
  :data:`BATCH_FRAMES` frames. Merged in order (``map.merge(batch)``), the batches equal
  ``Summary.of`` every frame the exact reader returns: a data line that will not structure
  counts as it does there, an errors-only frame at its time; a line that is no recording
  line (not JSON, no time) counts nothing, as there.

Rules of the thread: it never blocks the UI — it yields the GIL (``time.sleep(0)``) every
:data:`YIELD_S` of work, between lines (orjson holds the GIL for a whole line: ~10 ms for a
100-host frame); it stops promptly on :meth:`MapScan.close` (checked before every line); what
goes wrong in it (a segment that vanished, a read error) reaches the caller as one
:class:`RecordingUnreadable` from :meth:`MapScan.poll`, one line, after the batches that came
before it. Progress is the fraction of the set's stored bytes behind the scan; segments
given in ``skip_segments`` (their summaries were stored) count as read at once, unread.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final

import attrs
import orjson

from allsmi.adapters import wire
from allsmi.adapters.recording.decoding import (
    LineStats,
    Start,
    decode_with_restarts,
    fast_lines,
    sniff,
)
from allsmi.adapters.recording.discovery import discover, open_segment
from allsmi.adapters.recording.files import describe_os_error
from allsmi.adapters.recording.index import parse_header
from allsmi.domain.errors import RecordingCorrupt, RecordingUnreadable, UnsupportedSchema
from allsmi.domain.model import SCHEMA_VERSION, SECTION_TABLE, Frame, normalise_host_id
from allsmi.domain.parse import parse_rfc3339_ms
from allsmi.domain.summary import (
    BUCKET_MS,
    Summary,
    gpu_readings,
    host_readings,
    known,
    quantize,
    share,
)

BATCH_S: Final = 0.25  # a batch is handed over at least this often while frames come
BATCH_FRAMES: Final = 4096  # ... or after this many frames
YIELD_S: Final = 0.002  # work between two yields of the GIL

GpuReadings = dict[tuple[str, str], tuple[int | None, ...]]
HostReadings = dict[str, tuple[int | None, int | None]]
SummaryInputs = tuple[int, tuple[str, ...], GpuReadings, HostReadings, tuple[str, ...]]

# An errors-only frame, as RecordingSource.frame makes of a line that will not structure:
# its text names no host (the part before ": " is no host of the frame).
UNREADABLE: Final = ("unreadable frame: line not structured",)

SECTION_KEYS: Final = tuple(s.key for s in SECTION_TABLE)
HOST_KEYS: Final = tuple(s.key for s in SECTION_TABLE if s.per_host)
# Keys a row must have for the decoder to structure it (fields without a default).
REQUIRED: Final = {
    s.key: frozenset(f.name for f in attrs.fields(s.row_type) if f.default is attrs.NOTHING)
    for s in SECTION_TABLE
}
# all-smi's process rows get host_id and hostname from the line (wire._from_all_smi).
_REQUIRED_FOREIGN: Final = {
    **REQUIRED,
    "processes": REQUIRED["processes"] - {"host_id", "hostname"},
}


class Slow(Exception):
    """A value the fast path does not read as the decoder would: let the decoder decide."""


def summary_inputs(obj: dict[str, Any]) -> SummaryInputs | None:
    """``(t_ms, hosts with rows, GPU readings, host readings, errors)`` of a parsed line, as
    ``Summary.add(wire.decode_line(line))`` would count them; None when the line gives no
    frame (module header). ``obj`` is never changed."""
    try:
        return _fast(obj)
    except Slow:
        return _decoded(obj)


def hosts_and_errors(obj: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """``(hosts with rows, errors)`` of a parsed data line, as :func:`summary_inputs` reads
    them, without its readings (verify's per-host report: a fifth of its cost). Only our
    own lines, read as they are written (every row a dict with its required keys, ``host_id``
    and errors strings); anything else, and a line that gives no frame, is None: the caller
    asks :func:`summary_inputs`. Like it, it checks no value it does not read: a line the
    decoder would refuse for a reading of another type is taken with its hosts."""
    get = obj.get
    if get("schema") != SCHEMA_VERSION or type(get("schema")) is not int or "t" not in obj:
        return None
    if get("header") is True or get("index") is True or type(obj["t"]) is not str:
        return None
    errors = get("errors") or []
    if type(errors) is not list or not all(type(e) is str for e in errors):
        return None
    seen: dict[str, None] = {}
    for key in SECTION_KEYS:
        rows = get(key)
        if rows is None:
            continue
        if not structured(rows, REQUIRED[key]):
            return None
        if key in HOST_KEYS:
            for row in rows:
                host = row["host_id"]
                if type(host) is not str:
                    return None
                seen[host] = None
    return tuple(seen), tuple(errors)


def structured(rows: object, need: frozenset[str]) -> bool:
    """Whether a section's value is what the decoder structures: a list of objects, each
    with the keys it requires (``need``)."""
    return type(rows) is list and all(type(row) is dict and row.keys() >= need for row in rows)


def _decoded(obj: dict[str, Any]) -> SummaryInputs | None:
    """The exact path: the decoder on a copy (it rewrites all-smi objects in place)."""
    try:
        record = wire.decode_object(orjson.loads(orjson.dumps(obj)), 0)
    except (RecordingCorrupt, UnsupportedSchema, orjson.JSONEncodeError):
        return None
    if not isinstance(record, Frame):
        return None
    return (
        record.t_ms,
        record.hosts(),
        gpu_readings(record),
        host_readings(record),
        record.errors,
    )


def as_float(value: object) -> float | None:
    """A float field as the decoder structures it (``float(int)``); other types: slow."""
    kind = type(value)
    if kind is float:
        return value  # type: ignore[return-value]
    if value is None:
        return None
    if kind is int:
        return float(value)  # type: ignore[arg-type]
    raise Slow


def _int(value: object) -> int | None:
    if value is None or type(value) is int:
        return value
    raise Slow


def _error_text(error: object) -> str:
    """all-smi's error object as the decoder words it (docs/recording-format.md Appendix A)."""
    if type(error) is str:
        return error
    if type(error) is dict:
        section = error.get("section") or error.get("kind") or "error"
        return f"{section}: {error.get('message', '')}"
    raise Slow


def _fast(obj: dict[str, Any]) -> SummaryInputs | None:
    get = obj.get
    schema = get("schema")
    if type(schema) is not int or schema != SCHEMA_VERSION:
        raise Slow
    if get("header") is True or get("index") is True:
        return None
    if "t" in obj:
        stamp, foreign = obj["t"], False
    elif "timestamp" in obj:
        stamp, foreign = obj["timestamp"], True
    else:
        return None
    if type(stamp) is not str:
        raise Slow
    try:
        t_ms = parse_rfc3339_ms(stamp)
    except ValueError:
        raise Slow from None
    seq = get("seq")
    if seq is not None and type(seq) is not int:
        raise Slow
    raw_errors = get("errors") or []
    if type(raw_errors) is not list:
        raise Slow
    if foreign:
        errors = tuple([_error_text(e) for e in raw_errors])
    else:
        for error in raw_errors:
            if type(error) is not str:
                raise Slow
        errors = tuple(raw_errors)
    required = _REQUIRED_FOREIGN if foreign else REQUIRED
    seen: dict[str, None] = {}
    gpus: GpuReadings = {}
    hosts: HostReadings = {}
    for key in SECTION_KEYS:
        rows = get(key)
        if rows is None:
            continue
        if not structured(rows, required[key]):
            raise Slow
        if not rows or key not in HOST_KEYS:
            continue
        if key == "gpus":
            _gpus(rows, foreign, seen, gpus)
            continue
        for row in rows:
            host = row["host_id"]
            if type(host) is not str:
                raise Slow
            seen[normalise_host_id(host) if foreign else host] = None
        if key == "cpus":
            _cpus(rows, foreign, hosts)
        elif key == "memory":
            _memory(rows, foreign, hosts)
    return t_ms, tuple(seen), gpus, hosts, errors


def _gpus(
    rows: list[dict[str, Any]], foreign: bool, seen: dict[str, None], out: GpuReadings
) -> None:
    """summary.gpu_readings over wire rows: the first row of each ``(host_id, uuid)``."""
    for row in rows:
        host, uuid = row["host_id"], row["uuid"]
        if type(host) is not str or type(uuid) is not str:
            raise Slow
        if foreign:
            host = normalise_host_id(host)
        seen[host] = None
        get = row.get
        util, power = get("utilization"), get("power_consumption")
        temp, freq = get("temperature"), get("frequency")
        used, total = get("used_memory"), get("total_memory")
        if foreign:  # all-smi's sentinels (wire._from_all_smi)
            if util == -1:
                util = None
            if power == -1:
                power = None
            if temp == 0:
                temp = None
            if freq == 0:
                freq = None
        # float fields take an int as the decoder does (float(v)); int fields only ints
        if type(util) is not float:
            util = as_float(util)
        if type(power) is not float:
            power = as_float(power)
        if (
            (temp is not None and type(temp) is not int)
            or (freq is not None and type(freq) is not int)
            or (used is not None and type(used) is not int)
            or (total is not None and type(total) is not int)
        ):
            raise Slow
        key = (host, uuid)
        if key in out:  # the first row counts; later ones were checked as the decoder would
            continue
        out[key] = (
            None if util is None else quantize(util, 2, 200),
            None if used is None or total is None else share(used, total),
            None if temp is None else quantize(temp, 1, 255),
            None if power is None else quantize(power, 1, 0xFFFF),
            None if freq is None else quantize(freq, 1, 0xFFFF),
        )


def _cpus(rows: list[dict[str, Any]], foreign: bool, out: HostReadings) -> None:
    """The ``cpu`` of summary.host_readings over wire rows: the mean of a host's rows."""
    cpu: dict[str, list[float]] = {}
    for row in rows:
        host = normalise_host_id(row["host_id"]) if foreign else row["host_id"]
        values = cpu.get(host)
        if values is None:
            values = cpu[host] = []
        util = as_float(row.get("utilization"))
        if util is not None and known(util):
            values.append(util)
    for host, found in cpu.items():
        out[host] = (quantize(sum(found) / len(found), 2, 200) if found else None, None)


def _memory(rows: list[dict[str, Any]], foreign: bool, out: HostReadings) -> None:
    """The ``ram`` of summary.host_readings over wire rows (used and total summed over the
    rows that know both, else the mean utilization), joined to ``out``'s cpu."""
    sizes: dict[str, list[int]] = {}
    shares: dict[str, list[float]] = {}
    for row in rows:
        host = normalise_host_id(row["host_id"]) if foreign else row["host_id"]
        used, total = _int(row.get("used_bytes")), _int(row.get("total_bytes"))
        util = as_float(row.get("utilization"))
        size = sizes.get(host)
        if size is None:
            size = sizes[host] = [0, 0]
        if share(used, total) is not None:
            assert used is not None and total is not None
            size[0] += used
            size[1] += total
        elif util is not None and known(util):
            shares.setdefault(host, []).append(util)
    for host, (used_sum, total_sum) in sizes.items():
        ram = share(used_sum, total_sum) if total_sum else None
        if ram is None and host in shares:
            found = shares[host]
            ram = quantize(sum(found) / len(found), 10, 1_000)
        cpu = out.get(host)
        out[host] = (None if cpu is None else cpu[0], ram)


# --------------------------------------------------------------------------- the scan


def summary_of_lines(lines: Iterable[bytes], like: Summary) -> Summary:
    """The summary of raw recording lines (a chunk's), in ``like``'s width, expected hosts
    and interval: each line read as :func:`summary_inputs` reads it."""
    part = Summary(like.width_ms, like.expected_hosts, like.interval_ms)
    for line in lines:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        found = summary_inputs(obj) if type(obj) is dict else None
        if found is not None:
            part.add_readings(*found)
    return part


@attrs.frozen(eq=False)
class MapBatch:
    """The frames met since the last batch, and how far the scan is."""

    summary: Summary  # a new summary: merge it into the map (``map.merge(batch.summary)``)
    frames: int  # frames counted in it
    progress: float  # fraction of the set's stored bytes behind the scan, 0..1
    done: bool  # the last batch: the whole set is read


def segment_lines(fh: BinaryIO, codec: str) -> Iterator[bytes]:
    """Every complete line of one segment, decoded front to back (what the scan reads; a
    test may pace it)."""
    stats = LineStats()
    blocks = decode_with_restarts(fh, codec, Start(0), stats, restarts=False, judge_end=False)
    return fast_lines((block.data for block in blocks), stats)


def as_one_line(err: Exception, path: Path, what: str) -> RecordingUnreadable:
    """What a background pass over the recording at ``path`` says when ``err`` stopped it:
    one line, for the UI thread to show (never a traceback)."""
    if isinstance(err, RecordingUnreadable):
        return err
    if isinstance(err, OSError):
        return RecordingUnreadable(describe_os_error(err, path))
    return RecordingUnreadable(f"{what} of {path.name} stopped: {type(err).__name__}: {err}")


class _Stopped(Exception):
    """close() was called: the thread ends without another batch."""


class MapScan:
    """The background pass over the recording at ``path`` (module header). ``expected_hosts``
    and ``interval_ms``: those of the recording's header; None (the default) takes them from
    the first header line the scan meets."""

    def __init__(
        self,
        path: Path,
        *,
        skip_segments: Collection[int] = (),
        expected_hosts: Iterable[str] | None = None,
        interval_ms: int | None = None,
        width_ms: int = BUCKET_MS,
    ) -> None:
        self.path = Path(path)
        self.width_ms = width_ms
        self._skip = frozenset(skip_segments)
        self._hosts = None if expected_hosts is None else tuple(expected_hosts)
        self._interval = interval_ms
        self._queue: queue.SimpleQueue[MapBatch | RecordingUnreadable] = queue.SimpleQueue()
        self.stopping = threading.Event()  # set by close(): the thread ends before its next line
        self._pending_error: RecordingUnreadable | None = None
        self.progress = 0.0  # as of the last batch poll() returned
        self.done = False  # poll() has returned the last batch
        self.frames = 0  # frames in the batches poll() returned
        self._thread = threading.Thread(target=self._run, name="allsmi-mapscan", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the UI thread

    def poll(self) -> list[MapBatch]:
        """The batches handed over since the last call, oldest first; never blocks. An error
        in the thread is raised (one-line :class:`RecordingUnreadable`) once the batches
        before it have been returned."""
        return self._take(None)

    def wait(self, timeout: float | None = None) -> list[MapBatch]:
        """Like :meth:`poll`, but first waits up to ``timeout`` seconds (None: for ever) for
        something to be handed over (a CLI or a test without a UI loop); [] when done."""
        if self._pending_error is not None:
            return self._take(None)
        if self.done:
            return []
        try:
            first = self._queue.get(timeout=timeout)
        except queue.Empty:
            return []
        return self._take(first)

    def _take(self, first: MapBatch | RecordingUnreadable | None) -> list[MapBatch]:
        if self._pending_error is not None:
            error, self._pending_error = self._pending_error, None
            raise error
        out: list[MapBatch] = []
        while True:
            if first is not None:
                item, first = first, None
            else:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if isinstance(item, RecordingUnreadable):
                if out:
                    self._pending_error = item
                    break
                raise item
            out.append(item)
            self.progress, self.frames = item.progress, self.frames + item.frames
            self.done = item.done
        return out

    def close(self) -> None:
        """Stop the thread (it checks before every line) and wait for it."""
        self.stopping.set()
        self._thread.join()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        try:
            self._scan()
        except _Stopped:
            return
        except Exception as err:  # one line to the UI, never a traceback
            self._queue.put(as_one_line(err, self.path, "map"))

    def _scan(self) -> None:
        files = discover(self.path)
        sizes = [_size(f) for f in files]
        total = max(1, sum(sizes))
        behind = sum(size for i, size in enumerate(sizes) if i in self._skip)
        self._batch = self._new_summary()
        self._batch_frames = 0
        self._last_put = self._last_yield = time.perf_counter()
        for number, (file, size) in enumerate(zip(files, sizes, strict=True)):
            if number in self._skip:
                continue
            with open_segment(file) as fh:
                codec = sniff(fh.read(8))
                fh.seek(0)
                self._read_segment(fh, codec, behind, total)
            behind += size
            self._hand_over(behind / total, done=False, force=True)
        self._hand_over(1.0, done=True, force=True)

    def _new_summary(self) -> Summary:
        return Summary(self.width_ms, self._hosts or (), self._interval)

    def _read_segment(self, fh: BinaryIO, codec: str, behind: int, total: int) -> None:
        stop, clock, loads = self.stopping, time.perf_counter, orjson.loads
        decode_error = orjson.JSONDecodeError
        for raw in segment_lines(fh, codec):
            if stop.is_set():
                raise _Stopped
            try:
                obj = loads(raw)
            except decode_error:
                obj = None
            inputs = summary_inputs(obj) if type(obj) is dict else None
            if inputs is not None:
                self._batch.add_readings(*inputs)
                self._batch_frames += 1
            else:
                self._other_line(raw)
            now = clock()
            if now - self._last_yield >= YIELD_S:
                time.sleep(0)  # let the UI thread take the GIL
                self._last_yield = now = clock()
            if now - self._last_put >= BATCH_S or self._batch_frames >= BATCH_FRAMES:
                self._hand_over((behind + fh.tell()) / total, done=False, force=False)

    def _other_line(self, raw: bytes) -> None:
        """A line that gives no frame by itself: a header (the first one sets the expected
        hosts and interval), a data line that will not structure (an errors-only frame, as
        the exact reader shows it), or none."""
        info = wire.slice_line(raw)
        if info is None:
            return
        if info.kind == wire.KIND_HEADER and self._hosts is None:
            header = parse_header(raw, [])
            if header is not None:
                self._hosts = header.hosts
                if self._interval is None:
                    self._interval = header.interval_ms
                if not self._batch_frames:  # nothing counted yet: the batch takes them too
                    self._batch = self._new_summary()
        elif info.kind == wire.KIND_DATA and info.t_ms is not None:
            self._batch.add_readings(info.t_ms, (), {}, {}, UNREADABLE)
            self._batch_frames += 1

    def _hand_over(self, progress: float, *, done: bool, force: bool) -> None:
        if self._batch_frames or force:
            self._queue.put(MapBatch(self._batch, self._batch_frames, min(1.0, progress), done))
            self._batch = self._new_summary()
            self._batch_frames = 0
        self._last_put = time.perf_counter()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as err:
        raise RecordingUnreadable(describe_os_error(err, path)) from None
