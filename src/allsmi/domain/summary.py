"""Summaries of a recording: per-bucket means (and peaks) of the series an operator scans. Pure.

Buckets. Time is cut into epoch-aligned buckets of ``width_ms`` (:data:`BUCKET_MS` = 10 s):
a frame at ``t_ms`` lies in bucket :func:`bucket_of` ``(t_ms) = t_ms // width_ms``, whatever
chunk it was written in. Live and replay use this one function. Coarser buckets (a cell of a
timeline strip) are derived at draw time from these (:meth:`Summary.cells`).

Readings are quantized to small integers before they are counted, so that counts, sums,
minima and maxima are integers and merging is exact, whatever way the frames were split:

==========  ======================================  =====================  ============
series      reading                                 stored unit            range
==========  ======================================  =====================  ============
``util``    GPU ``utilization``                     half percent           0..200
``mem``     GPU ``used_memory / total_memory``      permille (1/1 000)     0..1 000
``temp``    GPU ``temperature``                     °C                     0..255
``power``   GPU ``power_consumption``               W                      0..65 535
``clock``   GPU ``frequency`` (graphics clock)      MHz                    0..65 535
``cpu``     host: mean of its CPU rows' utilization half percent           0..200
``ram``     host: Σ used_bytes / Σ total_bytes      permille               0..1 000
==========  ======================================  =====================  ============

Values are rounded half up and clamped to the range. ``None``, NaN, ±infinity and negative
values (all-smi writes ``-1`` for "unknown") are no reading: they are not counted, and
neither extend nor break anything. GPU memory is no reading when either size is unknown or
the total is not positive; a host's ``ram`` sums the memory rows that know both sizes (total
positive), else it is the mean of their ``utilization``. One reading per GPU key per frame
(the first row of a ``(host_id, uuid)``), and one per host per frame.

What a summary holds, per bucket that has a frame (buckets without one are not stored):

- cluster: ``frames``; ``errors`` (frames with any error); ``t_first``/``t_last`` (ms);
  ``max_gap`` (the longest interval between consecutive frames both in the bucket).
- per host (by id; docs/recording-format.md §12): ``seen`` (frames in which it has a row in a
  per-host section) and ``errors`` (frames with an error naming it), and the stats of
  ``cpu`` and ``ram``.
- per GPU, keyed by ``(host_id, uuid)``: the stats of ``util``, ``mem``, ``temp``,
  ``power``, ``clock``.

The stats of a series in a bucket are ``n`` (readings) and ``sum``, and, where drawing
reads it (:data:`KEPT`), ``max``: util keeps its ``max`` (a bucket's peak, for a strip
cell); mem, temp, power, clock, cpu and ram only ``n`` and ``sum`` (sparklines and the strip
draw means; no drawing reads a minimum, so none is kept). An unread series is all zeros.
They live in :class:`array.array` columns, bucket-major (bucket ``i`` of key ``j`` at ``i ×
keys + j``), keys kept sorted. Typecodes: ``n``/``max``
and the frame counts ``H`` (a bucket counts at most :data:`MAX_FRAMES` = 65 535 frames, 6.5
kHz at 10 s, 655 times allsmi's fastest interval (0.1 s); a frame past it is not counted);
``sum`` ``I`` (≤ 65 535 × 65 535 < 2³²); times ``q``; ``max_gap`` ``I``; bucket numbers ``q``.

Memory (:meth:`Summary.nbytes`): 32 bytes per GPU-bucket (util 8; mem, temp, power,
clock 6 each), 16 per host-bucket (4 + 2 × 6), 32 per bucket for the cluster. So (a) 1M
frames of one GPU on one host at 1 s: 100 000 buckets × 80 B = 8.0 MB; (b) 100 hosts × 8
GPUs, 2 000 frames at 5 s: 1 000 buckets × (800 × 32 + 100 × 16 + 32) B = 27.2 MB.

Errors name a host. docs/recording-format.md §5.10: an ``errors`` entry is ``"<who>: <what>"``
and a reader must not parse it; a host's entry starts with its scrape target (docs/
recording-format.md §12). So an entry is only *matched*, never read: it names host ``h``
when the text before its first ``": "`` is ``h``'s scrape target (:func:`error_host`) and
``h`` is a host of that frame alone — an expected host (the header's hosts, given at
construction) or one with rows in it. An entry never creates a host (``"nvidia: …"`` is no
host), and what it names does not depend on the other frames: so merging stays exact.

Merging (:meth:`Summary.merge`) adds counts and sums, takes minima and maxima, and joins the
times of a bucket as ``max_gap = max(a.max_gap, b.max_gap, b.t_first − a.t_last)`` with ``a``
the part that starts first. It is exact for any cut of a time-ordered run of frames into
consecutive parts (chunks), merged in any grouping of neighbours — left to right, right to
left, pairwise. Every field but ``max_gap`` is exact for any partition and any order;
``max_gap`` of parts that interleave in time may come out larger. Summaries merged must share
``width_ms`` and should share ``expected_hosts`` (a recording's header: which errors name a
host depends on it); a bucket whose merged frame count would pass :data:`MAX_FRAMES` keeps
the receiver's values (never reached below 6.5 kHz). A frame added out of time order inside a
bucket's span leaves its ``max_gap`` as it was (an upper bound). A summary whose buckets start
at or after the receiver's last (a scan's next batch) is appended: the one shared bucket
joined, the rest copied, in time proportional to it, not to the receiver.

Serialized form (:meth:`Summary.to_bytes`), little-endian, version 3 (versions 1 and 2,
written only by development builds, are refused)::

    header  "<4sHHIIII": magic b"ASUM", version 3, flags, width_ms, buckets B,
            GPU keys G, host keys H; flags bit 0: keys by reference, bit 1: an events
            block follows, no other bit set
    events  (bit 1) "<I" length, then that many bytes: the chunk's events as its writer
            detected them (their form is the reader's business:
            docs/recording-format.md §7.10); read without the columns (events_of)
    keys    listed: H × (u8 expected, u32 length, UTF-8 host id), then
            G × (u32 length, UTF-8 host id, u32 length, UTF-8 uuid); each list sorted;
            or by reference "<Q8s": ref (the writer's name for an earlier payload that lists
            them: the stored file's offset of its summary frame) and the first 8 bytes of
            the BLAKE2b of that payload's key block
    first   "<q": the first bucket (0 when B = 0)
    columns each: u8 width w (1, 2, 4 or 8), then count × w bytes as byte planes (every
            value's lowest byte, then every value's next byte, …), unsigned:
            bucket − previous bucket [max(B − 1, 0)]; frames, errors, t_first − bucket ×
            width_ms, t_last − t_first, max_gap [B]; host seen, host errors [B×H]; cpu then
            ram: their kept stats (:data:`KEPT`, in the order n, sum, max) [B×H];
            util, mem, temp, power, clock likewise [B×G] (bucket-major); nothing after.
            A series that keeps its max stores ``n × max − sum`` for its sum (a small
            number, which compresses); a column's width byte is at most its item's size
            (``n``, max: 2; sum: 4), so it is read straight into its array

:meth:`Summary.from_bytes` refuses anything inconsistent with :class:`SummaryInvalid` (a
one-line reason); a summary it returns passes :meth:`Summary.check` (with ``full`` false,
:meth:`Summary.check_bounds`).
"""

from __future__ import annotations

import hashlib
import math
from array import array
from bisect import bisect_left
from collections.abc import Collection, Iterable, Mapping, Sequence
from itertools import accumulate, pairwise, repeat
from operator import add, eq, le, lt, mul, ne, or_, sub
from struct import Struct
from struct import error as StructError
from typing import Final, TypeVar, cast

import attrs

from allsmi.domain.model import Frame, Gpu, normalise_host_id

K = TypeVar("K", str, tuple[str, str])  # a host key, or a GPU key

BUCKET_MS: Final = 10_000
MAX_FRAMES: Final = 0xFFFF  # frames counted per bucket ('H')
MAX_WIDTH_MS: Final = 0xFFFF_FFFF  # max_gap is an 'I'
VERSION: Final = 3
MAGIC: Final = b"ASUM"

ACTIVE_UTIL: Final = 10  # percent: a GPU at least this busy in a bucket is active (not idle)
GPU_SERIES: Final = ("util", "mem", "temp", "power", "clock")
HOST_SERIES: Final = ("cpu", "ram")
# Stored unit → real unit (percent, °C, W, MHz, percent of memory).
UNITS: Final = {
    "util": 0.5,
    "mem": 0.1,
    "temp": 1.0,
    "power": 1.0,
    "clock": 1.0,
    "cpu": 0.5,
    "ram": 0.1,
}
TOPS: Final = {
    "util": 200,
    "mem": 1_000,
    "temp": 255,
    "power": 0xFFFF,
    "clock": 0xFFFF,
    "cpu": 200,
    "ram": 1_000,
}

# The stats each series keeps: what drawing reads (the strip: util's mean and its peak;
# sparklines: every series' mean).
KEPT: Final = {
    "util": ("n", "sum", "max"),
    "mem": ("n", "sum"),
    "temp": ("n", "sum"),
    "power": ("n", "sum"),
    "clock": ("n", "sum"),
    "cpu": ("n", "sum"),
    "ram": ("n", "sum"),
}

_HEADER: Final = Struct("<4sHHIIII")
_REF: Final = Struct("<Q8s")
_U32: Final = Struct("<I")
_I64: Final = Struct("<q")
_WIDTHS: Final = {1: "B", 2: "H", 4: "I", 8: "Q"}  # column width (bytes) → typecode
_UNSIGNED: Final = frozenset("BHILQ")
_FLAG_KEYS_BY_REF: Final = 1
_FLAG_EVENTS: Final = 2
_FLAGS: Final = _FLAG_KEYS_BY_REF | _FLAG_EVENTS
_INF: Final = math.inf
_LITTLE: Final = array("H", [1]).tobytes() == b"\x01\x00"


class SummaryInvalid(ValueError):
    """A serialized summary that is not consistent; the message is one line saying why."""


def bucket_of(t_ms: int, width_ms: int = BUCKET_MS) -> int:
    """The epoch-aligned bucket holding ``t_ms``: the one bucket function (module header)."""
    return t_ms // width_ms


def error_host(error: str, hosts: Collection[str]) -> str | None:
    """The host id among ``hosts`` that an ``errors`` entry names by its scrape target
    (``"https://n1:443: HTTP 503"`` → ``n1:443``), else None (module header)."""
    target, sep, _ = error.partition(": ")
    if not sep:
        return None
    host = normalise_host_id(target)
    return host if host in hosts else None


def known(value: float | None) -> bool:
    """Whether ``value`` is a reading: not None, NaN, ±infinity or negative."""
    return value is not None and value >= 0 and not (isinstance(value, float) and math.isinf(value))


def quantize(value: float | None, scale: float, top: int) -> int | None:
    """``value × scale`` rounded half up and clamped to ``0..top``; None for no reading
    (:func:`known`)."""
    if value is None or not value >= 0 or value == _INF:  # known(), inlined (NaN: not >= 0)
        return None
    if value >= top / scale:  # compared before multiplying: a huge int never overflows
        return top
    return int(value * scale + 0.5)


def share(used: int | None, total: int | None, top: int = 1_000) -> int | None:
    """``used / total`` in 1/``top`` (the summary's ``mem`` and ``ram``: per mille), rounded
    half up, clamped to 0..``top``; None when either is unknown or negative, or ``total`` is
    not positive."""
    if used is None or total is None or used < 0 or total <= 0:
        return None
    return min(top, (used * 2 * top + total) // (2 * total))


def permyriad(used: int | None, total: int | None) -> int | None:
    """:func:`share` in 1/10 000."""
    return share(used, total, 10_000)


def gpu_readings(frame: Frame) -> dict[tuple[str, str], tuple[int | None, ...]]:
    """Each GPU key of ``frame`` (its first row) → its quantized readings, in
    :data:`GPU_SERIES` order (quantize() and share() inlined, term for term)."""
    out: dict[tuple[str, str], tuple[int | None, ...]] = {}
    inf = _INF
    for gpu in frame.gpus or ():
        key = (gpu.host_id, gpu.uuid)
        if key in out:
            continue
        u, te, pw, ck = gpu.utilization, gpu.temperature, gpu.power_consumption, gpu.frequency
        used, total = gpu.used_memory, gpu.total_memory
        out[key] = (
            None if u is None or not u >= 0 or u == inf else 200 if u >= 100 else int(u * 2 + 0.5),
            None
            if used is None or total is None or used < 0 or total <= 0
            else min(1_000, (used * 2_000 + total) // (2 * total)),
            None if te is None or not te >= 0 or te == inf else 255 if te >= 255 else int(te + 0.5),
            None
            if pw is None or not pw >= 0 or pw == inf
            else 0xFFFF
            if pw >= 0xFFFF
            else int(pw + 0.5),
            None
            if ck is None or not ck >= 0 or ck == inf
            else 0xFFFF
            if ck >= 0xFFFF
            else int(ck + 0.5),
        )
    return out


def host_readings(frame: Frame) -> dict[str, tuple[int | None, int | None]]:
    """Each host with a CPU or memory row in ``frame`` → its quantized ``(cpu, ram)``."""
    cpu: dict[str, list[float]] = {}
    for row in frame.cpus or ():
        values = cpu.setdefault(row.host_id, [])
        if row.utilization is not None and known(row.utilization):
            values.append(row.utilization)
    sizes: dict[str, list[int]] = {}
    shares: dict[str, list[float]] = {}
    for mem in frame.memory or ():
        used, total = sizes.setdefault(mem.host_id, [0, 0]), shares.setdefault(mem.host_id, [])
        if share(mem.used_bytes, mem.total_bytes) is not None:
            assert mem.used_bytes is not None and mem.total_bytes is not None
            used[0] += mem.used_bytes
            used[1] += mem.total_bytes
        elif mem.utilization is not None and known(mem.utilization):
            total.append(mem.utilization)
    out: dict[str, tuple[int | None, int | None]] = {}
    for host in (*cpu, *sizes):
        if host in out:
            continue
        values = cpu.get(host, [])
        cpu_q = quantize(sum(values) / len(values), 2, 200) if values else None
        used_total = sizes.get(host, [0, 0])
        ram_q = share(*used_total) if used_total[1] else None
        if ram_q is None and shares.get(host):
            ram_q = quantize(sum(shares[host]) / len(shares[host]), 10, 1_000)
        out[host] = (cpu_q, ram_q)
    return out


@attrs.frozen
class Cell:
    """One cell of a timeline strip: the buckets whose start falls in it."""

    frames: int  # frames of the cluster
    util_mean: float | None  # percent, over the GPUs drawn (all, or the host's)
    util_max: float | None  # the highest reading
    gap: bool  # an interval between consecutive frames over 2 × the interval overlaps it
    missing: bool  # a known host (or the host drawn) had no rows in some frame of it
    errors: bool  # a frame of it had an error (naming the host drawn)
    active: float | None = None  # share of the GPUs drawn busy (ACTIVE_UTIL), bucket by bucket


def _zeros(code: str, count: int) -> array[int]:
    return array(code, bytes(count * array(code).itemsize))


class _Stats:
    """The kept stats (:data:`KEPT`) of one series, bucket-major over its keys: ``n``,
    ``sum``, and ``max`` where kept (an unkept one stays an empty array)."""

    __slots__ = ("has_hi", "hi", "n", "s")

    def __init__(self, name: str) -> None:
        self.has_hi = "max" in KEPT[name]
        self.n: array[int] = array("H")
        self.s: array[int] = array("I")
        self.hi: array[int] = array("H")

    def columns(self) -> list[array[int]]:
        return [self.n, self.s, *((self.hi,) if self.has_hi else ())]

    def stored(self) -> list[array[int]]:
        """The columns as stored (module header): where the max is kept, ``n × max − sum``
        for the sum, a small number, which compresses."""
        if not self.has_hi:
            return self.columns()
        n, hi = self.n, self.hi
        return [n, array("I", map(sub, map(mul, n, hi), self.s)), hi]

    def restore(self) -> None:
        """Undo :meth:`stored` on columns read back as stored (in place: every column keeps
        its identity); OverflowError when a value leaves its column's range."""
        if self.has_hi:
            self.s[:] = array("I", map(sub, map(mul, self.n, self.hi), self.s))

    def join(self, at: int, other: _Stats, other_at: int) -> None:
        n = other.n[other_at]
        if not n:
            return
        mine = self.n[at]
        self.n[at] = mine + n
        self.s[at] += other.s[other_at]
        if self.has_hi:
            hi = other.hi[other_at]
            if not mine or hi > self.hi[at]:
                self.hi[at] = hi

    def total(self, start: int, stop: int) -> tuple[int, int, int | None]:
        """Σn, Σsum and the max over the positions [start, stop) (None where not kept)."""
        ns = self.n[start:stop]
        n = sum(ns)
        if not n:
            return 0, 0, None
        hi = None
        if self.has_hi:
            hi = max(v for v, c in zip(self.hi[start:stop], ns, strict=True) if c)
        return n, sum(self.s[start:stop]), hi


def _rekey(columns: Iterable[array[int]], old: Sequence[K], new: dict[K, int]) -> None:
    """Re-lay bucket-major ``columns`` of keys ``old`` for the keys ``new`` (key → position),
    a superset; new keys' entries are zero."""
    width, wide = len(old), len(new)
    for column in columns:
        buckets = len(column) // width
        grown = _zeros(column.typecode, buckets * wide)
        for j, key in enumerate(old):
            grown[new[key] :: wide] = column[j::width]
        column[:] = grown


@attrs.frozen(eq=False)
class KeyList:
    """A summary's keys as stored, and the digest of their stored block (the first 8 bytes
    of its BLAKE2b): what a payload that refers to them names (module header)."""

    hosts: tuple[str, ...]
    expected: frozenset[str]
    gpus: tuple[tuple[str, str], ...]
    digest: bytes
    # each key's position, made once: every payload that refers to these copies them
    host_at: dict[str, int] = attrs.field(init=False, repr=False)
    gpu_at: dict[tuple[str, str], int] = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "host_at", {h: i for i, h in enumerate(self.hosts)})
        object.__setattr__(self, "gpu_at", {g: i for i, g in enumerate(self.gpus)})


def _key_block(
    hosts: Sequence[str], expected: Collection[str], gpus: Sequence[tuple[str, str]]
) -> bytes:
    parts: list[bytes] = []
    for host in hosts:
        raw = host.encode("utf-8", "surrogatepass")
        parts += [bytes([host in expected]), _U32.pack(len(raw)), raw]
    for host, uuid in gpus:
        for text in (host, uuid):
            raw = text.encode("utf-8", "surrogatepass")
            parts += [_U32.pack(len(raw)), raw]
    return b"".join(parts)


def _digest(block: bytes) -> bytes:
    return hashlib.blake2b(block, digest_size=8).digest()


def _read_keys(
    data: bytes, view: memoryview, at: int, nh: int, ng: int
) -> tuple[list[str], set[str], list[tuple[str, str]], int]:
    """The key block at ``at``: hosts, the expected ones, GPU keys, and where it ends."""

    def text() -> str:
        nonlocal at
        if at + 4 > len(data):
            raise SummaryInvalid("summary truncated in its keys")
        (size,) = _U32.unpack_from(data, at)
        at += 4
        if at + size > len(data):
            raise SummaryInvalid("summary truncated in its keys")
        try:
            value = bytes(view[at : at + size]).decode("utf-8")
        except UnicodeDecodeError:
            raise SummaryInvalid("summary key is not UTF-8") from None
        at += size
        return value

    hosts: list[str] = []
    expected: set[str] = set()
    for _ in range(nh):
        if at >= len(data):
            raise SummaryInvalid("summary truncated in its keys")
        flag = data[at]
        at += 1
        if flag > 1:
            raise SummaryInvalid(f"summary host flag {flag}")
        hosts.append(text())
        if flag:
            expected.add(hosts[-1])
    gpus = [(text(), text()) for _ in range(ng)]
    return hosts, expected, gpus, at


def _past_events(data: bytes, flags: int) -> int:
    """Where a payload's keys begin: after its header and its events block, if any."""
    if not flags & _FLAG_EVENTS:
        return _HEADER.size
    try:
        (size,) = _U32.unpack_from(data, _HEADER.size)
    except StructError:
        raise SummaryInvalid("summary truncated in its events") from None
    end: int = _HEADER.size + _U32.size + size
    if end > len(data):
        raise SummaryInvalid("summary truncated in its events")
    return end


def _pack(values: Sequence[int]) -> bytes:
    """A column of non-negative integers: its width byte, then its byte planes."""
    return b"".join(_planes(values))


def _planes(values: Sequence[int]) -> list[bytes]:
    """:func:`_pack` in pieces: the width byte with the first plane, then each other. An
    unsigned array is cut into planes as it lies (its zero high planes dropped), no value
    converted one by one."""
    if isinstance(values, array) and values.typecode in _UNSIGNED:
        column = values
    else:
        column = array("Q", values)
    if not _LITTLE:  # pragma: no cover - big-endian hosts
        column = array(column.typecode, column)
        column.byteswap()
    raw, size = column.tobytes(), column.itemsize
    planes = [raw[i::size] for i in range(size)]
    used = max((i + 1 for i, plane in enumerate(planes) if plane.strip(b"\0")), default=1)
    width = 1 if used == 1 else 2 if used == 2 else 4 if used <= 4 else 8
    return [bytes([width]) + planes[0], *planes[1:width]]


def _unpack(view: memoryview, at: int, count: int, code: str) -> tuple[array[int], int]:
    """The column of ``count`` values at ``at`` (:func:`_pack`) as an array of typecode
    ``code`` (its planes laid straight into the wider items, no value converted one by one),
    and where it ends."""
    if at >= len(view):
        raise SummaryInvalid("summary truncated in its columns")
    width = view[at]
    size = array(code).itemsize
    if width not in _WIDTHS or width > size:
        raise SummaryInvalid(f"summary column width {width}")
    at += 1
    end = at + count * width
    if end > len(view):
        raise SummaryInvalid("summary truncated in its columns")
    if width == size == 1:
        raw = bytes(view[at:end])
    else:
        joined = bytearray(count * size)
        for i in range(width):
            joined[i::size] = view[at + i * count : at + (i + 1) * count]
        raw = bytes(joined)
    column = array(code)
    column.frombytes(raw)
    if not _LITTLE:  # pragma: no cover - big-endian hosts
        column.byteswap()
    return column, end


class Summary:
    """A mutable accumulator of buckets (module header). Not thread-safe (the domain has no
    threads); the adapter owns one per chunk or per scan."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(
        self,
        width_ms: int = BUCKET_MS,
        expected_hosts: Iterable[str] = (),
        interval_ms: int | None = None,
    ) -> None:
        if not 1 <= width_ms <= MAX_WIDTH_MS:
            raise ValueError(f"bucket width {width_ms} ms is outside 1..{MAX_WIDTH_MS}")
        self.width_ms = width_ms
        self.interval_ms = interval_ms  # for gaps; not serialized
        self._buckets: array[int] = array("q")
        self._frames: array[int] = array("H")
        self._errors: array[int] = array("H")
        self._t_first: array[int] = array("q")
        self._t_last: array[int] = array("q")
        self._gap: array[int] = array("I")
        self._hosts: list[str] = []
        self._host_at: dict[str, int] = {}
        self._expected: set[str] = set()
        self._seen: array[int] = array("H")
        self._host_errors: array[int] = array("H")
        self._host_stats = {name: _Stats(name) for name in HOST_SERIES}
        self._gpus: list[tuple[str, str]] = []
        self._gpu_at: dict[tuple[str, str], int] = {}
        self._gpu_stats = {name: _Stats(name) for name in GPU_SERIES}
        util, mem, temp, power, clock = (self._gpu_stats[name] for name in GPU_SERIES)
        # the columns _add_gpus writes (every change to a column is in place: they stay)
        self._gpu_flat = (
            *(util.n, util.s, util.hi, mem.n, mem.s, temp.n, temp.s),
            *(power.n, power.s, clock.n, clock.s),
        )
        # bucket means already asked for, by (series, host, gpu): a paint asks for the same
        # hundreds again; a bucket's entries go when it changes
        self._means: dict[tuple[str, str | None, tuple[str, str] | None], dict[int, float | None]]
        self._means = {}
        expected = {normalise_host_id(h) for h in expected_hosts} - {""}
        if expected:
            self._expected = expected
            self._add_keys(expected, ())

    @classmethod
    def of(
        cls,
        frames: Iterable[Frame],
        width_ms: int = BUCKET_MS,
        expected_hosts: Iterable[str] = (),
        interval_ms: int | None = None,
    ) -> Summary:
        """One summary of ``frames``."""
        summary = cls(width_ms, expected_hosts, interval_ms)
        for frame in frames:
            summary.add(frame)
        return summary

    # ------------------------------------------------------------------ shape

    @property
    def hosts(self) -> tuple[str, ...]:
        """The known host ids, sorted: the expected ones and those with rows."""
        return tuple(self._hosts)

    @property
    def expected_hosts(self) -> frozenset[str]:
        return frozenset(self._expected)

    @property
    def gpus(self) -> tuple[tuple[str, str], ...]:
        """The GPU keys ``(host_id, uuid)``, sorted."""
        return tuple(self._gpus)

    @property
    def buckets(self) -> tuple[int, ...]:
        """The buckets that hold a frame, in order."""
        return tuple(self._buckets)

    @property
    def frames(self) -> int:
        """The frames counted, in all buckets."""
        return sum(self._frames)

    def position_of(self, bucket: int) -> int:
        """How many of the buckets holding a frame come before ``bucket``."""
        return bisect_left(self._buckets, bucket)

    def power_sums(self, start: int, stop: int) -> dict[tuple[str, str], int]:
        """Σ GPU power readings (whole watts, as kept) per GPU (host id, uuid) over the
        buckets at positions ``start`` ≤ p < ``stop`` of :attr:`buckets`; GPUs summing to
        0 are left out. The energy the replay shows is built from these."""
        sums = self._gpu_stats["power"].s
        keys = self._gpus
        ng = len(keys)
        stop = min(stop, len(self._buckets))
        out: dict[tuple[str, str], int] = {}
        if ng == 0 or start >= stop:
            return out
        for j, key in enumerate(keys):
            total = sum(sums[start * ng + j : stop * ng : ng])
            if total:
                out[key] = total
        return out

    def bucket_range(self) -> tuple[int, int] | None:
        """The first and last bucket holding a frame (both included); None when empty."""
        return (self._buckets[0], self._buckets[-1]) if self._buckets else None

    def _bucket_columns(self) -> list[array[int]]:
        return [self._buckets, self._frames, self._errors, self._t_first, self._t_last, self._gap]

    def _host_columns(self) -> list[array[int]]:
        stats = [c for name in HOST_SERIES for c in self._host_stats[name].columns()]
        return [self._seen, self._host_errors, *stats]

    def _gpu_columns(self) -> list[array[int]]:
        return [c for name in GPU_SERIES for c in self._gpu_stats[name].columns()]

    def nbytes(self) -> int:
        """Bytes held in the arrays."""
        return sum(len(c) * c.itemsize for c in self._columns())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Summary):
            return NotImplemented
        return (
            self.width_ms == other.width_ms
            and self._expected == other._expected
            and self._hosts == other._hosts
            and self._gpus == other._gpus
            and self._bucket_columns() == other._bucket_columns()
            and self._host_columns() == other._host_columns()
            and self._gpu_columns() == other._gpu_columns()
        )

    def __repr__(self) -> str:
        return (
            f"Summary(width_ms={self.width_ms}, buckets={len(self._buckets)}, "
            f"hosts={len(self._hosts)}, gpus={len(self._gpus)})"
        )

    # ------------------------------------------------------------------ building

    def _add_keys(self, hosts: Iterable[str], gpus: Iterable[tuple[str, str]]) -> None:
        """Make room for new host and GPU keys (each column re-laid once)."""
        grown_hosts = self._grown(self._host_columns(), self._hosts, self._host_at, hosts)
        if grown_hosts is not None:
            self._hosts, self._host_at = grown_hosts
        grown_gpus = self._grown(self._gpu_columns(), self._gpus, self._gpu_at, gpus)
        if grown_gpus is not None:
            self._gpus, self._gpu_at = grown_gpus

    def _grown(
        self, columns: list[array[int]], old: list[K], at: dict[K, int], given: Iterable[K]
    ) -> tuple[list[K], dict[K, int]] | None:
        """The keys ``old`` (positions ``at``) with the new ones of ``given``, sorted, and
        their positions, with ``columns`` re-laid for them; None when none is new."""
        new: set[K] = set(given) - at.keys()
        if not new:
            return None
        keys: list[K] = sorted(set(old) | new)
        positions = {key: i for i, key in enumerate(keys)}
        if old:
            _rekey(columns, old, positions)
        else:
            for column in columns:
                column[:] = _zeros(column.typecode, len(self._buckets) * len(positions))
        return keys, positions

    def _insert_bucket(self, p: int, bucket: int) -> None:
        for column in self._bucket_columns():
            column.insert(p, 0)
        self._buckets[p] = bucket
        for columns, width in (
            (self._host_columns(), len(self._hosts)),
            (self._gpu_columns(), len(self._gpus)),
        ):
            for column in columns:
                column[p * width : p * width] = _zeros(column.typecode, width)

    def _find(self, bucket: int) -> int | None:
        buckets = self._buckets
        if buckets and buckets[-1] == bucket:
            return len(buckets) - 1
        p = bisect_left(buckets, bucket)
        return p if p < len(buckets) and buckets[p] == bucket else None

    def add(self, frame: Frame) -> None:
        """Count ``frame`` in its bucket. Frames normally come in time order; an earlier one
        (even before the first bucket) is counted all the same (module header: gaps).

        This is the recorder's cost per frame. A frame whose GPU keys are all known and each
        once (the usual one) has its rows quantized and counted in one pass
        (:meth:`_add_gpu_rows`); any other goes through :func:`gpu_readings` and
        :meth:`add_readings`, which count the same."""
        gpus = frame.gpus
        if gpus:
            gpu_at = self._gpu_at
            places = [gpu_at.get((gpu.host_id, gpu.uuid)) for gpu in gpus]
            if None not in places and len(set(places)) == len(places):
                at = self._count_frame(
                    frame.t_ms, frame.hosts(), (), host_readings(frame), frame.errors
                )
                if at is not None:
                    self._add_gpu_rows(at * len(self._gpus), cast("list[int]", places), gpus)
                return
        self.add_readings(
            frame.t_ms, frame.hosts(), gpu_readings(frame), host_readings(frame), frame.errors
        )

    def add_readings(
        self,
        t: int,
        seen: Collection[str],
        gpus: dict[tuple[str, str], tuple[int | None, ...]],
        hosts: dict[str, tuple[int | None, int | None]],
        errors: Sequence[str],
    ) -> None:
        """Count a frame given by what :meth:`add` takes from it: its time, the hosts with
        rows in it, its quantized GPU and host readings (:func:`gpu_readings`,
        :func:`host_readings`, or the same read from the wire form) and its errors."""
        at = self._count_frame(t, seen, gpus, hosts, errors)
        if at is not None and gpus:
            self._add_gpus(at * len(self._gpus), gpus)

    def _count_frame(
        self,
        t: int,
        seen: Collection[str],
        gpus: Collection[tuple[str, str]],
        hosts: dict[str, tuple[int | None, int | None]],
        errors: Sequence[str],
    ) -> int | None:
        """Count a frame but for its GPU readings (``gpus``: its GPU keys, added when new);
        the position of its bucket, or None when the bucket is full (it is not counted)."""
        bucket = t // self.width_ms  # bucket_of, inlined
        buckets = self._buckets
        if buckets and buckets[-1] == bucket:
            p, exists = len(buckets) - 1, True
        else:
            p = bisect_left(buckets, bucket)
            exists = p < len(buckets) and buckets[p] == bucket
        host_at, gpu_at = self._host_at, self._gpu_at
        # known keys (the common case) are checked in C, without a generator
        if not (all(map(host_at.__contains__, seen)) and all(map(gpu_at.__contains__, gpus))):
            if exists and self._frames[p] >= MAX_FRAMES:
                return None
            self._add_keys(seen, gpus)
            host_at, gpu_at = self._host_at, self._gpu_at
        if not exists:
            self._insert_bucket(p, bucket)
        if self._means:
            self._forget((bucket,))
        frames_col = self._frames
        frames = frames_col[p]
        if frames >= MAX_FRAMES:
            return None
        frames_col[p] = frames + 1
        if not frames:
            self._t_first[p] = self._t_last[p] = t
        else:
            last = self._t_last[p]
            if t >= last:
                if t - last > self._gap[p]:
                    self._gap[p] = t - last
                self._t_last[p] = t
            elif t < self._t_first[p]:
                first = self._t_first[p]
                if first - t > self._gap[p]:
                    self._gap[p] = first - t
                self._t_first[p] = t
        base = p * len(self._hosts)
        seen_col = self._seen
        for host in seen:
            seen_col[base + host_at[host]] += 1
        if errors:
            self._errors[p] += 1
            candidates = self._expected.union(seen)
            named = {error_host(e, candidates) for e in errors}
            for host in filter(None, named):
                self._host_errors[base + host_at[host]] += 1
        if hosts:
            cpu, ram = self._host_stats["cpu"], self._host_stats["ram"]
            cn, cs, rn, rs = cpu.n, cpu.s, ram.n, ram.s
            for host, (cpu_q, ram_q) in hosts.items():
                at = base + host_at[host]
                if cpu_q is not None:
                    cn[at] += 1
                    cs[at] += cpu_q
                if ram_q is not None:
                    rn[at] += 1
                    rs[at] += ram_q
        return p

    def _add_gpu_rows(self, base: int, places: Sequence[int], gpus: Sequence[Gpu]) -> None:
        """:func:`gpu_readings` and :meth:`_add_gpus` in one pass over a frame's GPU rows, each
        at its key's place (known, and each once): quantize() and share() inlined, term for
        term, as there."""
        un, us, uhi, mn, ms, tn, ts, pn, ps, kn, ks = self._gpu_flat
        inf = _INF
        for place, gpu in zip(places, gpus, strict=True):
            at = base + place
            u = gpu.utilization
            if u is not None and u >= 0 and u != inf:  # NaN is not >= 0
                q = 200 if u >= 100 else int(u * 2 + 0.5)
                un[at] += 1
                us[at] += q
                if q > uhi[at]:
                    uhi[at] = q
            used, total = gpu.used_memory, gpu.total_memory
            if used is not None and total is not None and used >= 0 and total > 0:
                mn[at] += 1
                ms[at] += 1_000 if used >= total else (used * 2_000 + total) // (2 * total)
            te = gpu.temperature
            if te is not None and te >= 0 and te != inf:
                tn[at] += 1
                ts[at] += 255 if te >= 255 else int(te + 0.5)
            pw = gpu.power_consumption
            if pw is not None and pw >= 0 and pw != inf:
                pn[at] += 1
                ps[at] += 0xFFFF if pw >= 0xFFFF else int(pw + 0.5)
            ck = gpu.frequency
            if ck is not None and ck >= 0 and ck != inf:
                kn[at] += 1
                ks[at] += 0xFFFF if ck >= 0xFFFF else int(ck + 0.5)

    def _add_gpus(self, base: int, gpus: dict[tuple[str, str], tuple[int | None, ...]]) -> None:
        """The GPU readings of one frame into the bucket at ``base`` (:data:`KEPT`, inlined:
        this is the map scan's cost per GPU)."""
        un, us, uhi, mn, ms, tn, ts, pn, ps, kn, ks = self._gpu_flat
        gpu_at = self._gpu_at
        for key, (u, m, te, pw, ck) in gpus.items():
            at = base + gpu_at[key]
            if u is not None:
                un[at] += 1
                us[at] += u
                if u > uhi[at]:  # readings are never negative: a fresh max of 0 is none
                    uhi[at] = u
            if m is not None:
                mn[at] += 1
                ms[at] += m
            if te is not None:
                tn[at] += 1
                ts[at] += te
            if pw is not None:
                pn[at] += 1
                ps[at] += pw
            if ck is not None:
                kn[at] += 1
                ks[at] += ck

    def trim_before(self, bucket: int) -> None:
        """Forget the buckets before ``bucket`` (a live ring keeps the last minutes)."""
        p = bisect_left(self._buckets, bucket)
        if not p:
            return
        self._means.clear()
        for column in self._bucket_columns():
            del column[:p]
        for columns, width in (
            (self._host_columns(), len(self._hosts)),
            (self._gpu_columns(), len(self._gpus)),
        ):
            for column in columns:
                del column[: p * width]

    def merge(self, other: Summary) -> None:
        """Add ``other``'s buckets to this one's (exact: module header)."""
        if other.width_ms != self.width_ms:
            raise ValueError(f"bucket widths differ: {self.width_ms} ms, {other.width_ms} ms")
        self._expected |= other._expected
        self._add_keys(other._hosts, other._gpus)
        if other is self or other._hosts != self._hosts or other._gpus != self._gpus:
            other = other.copy()
            other._add_keys(self._hosts, self._gpus)
        mine, theirs = self._buckets, other._buckets
        if theirs and (not mine or theirs[0] >= mine[-1]):
            self._append_buckets(other)  # a scan's next batch: O(batch), not O(map)
        else:
            self._join_buckets(other)
        self._forget(theirs)

    def _append_buckets(self, other: Summary) -> None:
        """``other``'s buckets, which start at or after this one's last (same keys): the
        one shared bucket joined, the rest appended to every column."""
        skip = 0
        if self._buckets and other._buckets[0] == self._buckets[-1]:
            self._join_bucket(len(self._buckets) - 1, other, 0)
            skip = 1
        for own, their, width in (
            (self._bucket_columns(), other._bucket_columns(), 1),
            (self._host_columns(), other._host_columns(), len(self._hosts)),
            (self._gpu_columns(), other._gpu_columns(), len(self._gpus)),
        ):
            for column, source in zip(own, their, strict=True):
                column.extend(source[skip * width :] if skip else source)

    def _forget(self, buckets: Iterable[int]) -> None:
        """Drop the cached means of ``buckets`` (they changed)."""
        if self._means:
            for bucket in buckets:
                for means in self._means.values():
                    means.pop(bucket, None)

    def copy(self) -> Summary:
        """An independent copy."""
        twin = Summary(self.width_ms, (), self.interval_ms)
        twin._expected = set(self._expected)
        twin._hosts, twin._host_at = list(self._hosts), dict(self._host_at)
        twin._gpus, twin._gpu_at = list(self._gpus), dict(self._gpu_at)
        for own, column in zip(twin._columns(), self._columns(), strict=True):
            own[:] = column
        return twin

    def _columns(self) -> list[array[int]]:
        return [*self._bucket_columns(), *self._host_columns(), *self._gpu_columns()]

    def _join_buckets(self, other: Summary) -> None:
        """Lay out the union of both bucket lists, then join the shared buckets. Runs of
        buckets from one side are copied a slice at a time."""
        mine, theirs = self._buckets, other._buckets
        if not theirs:
            return
        runs: list[tuple[bool, int, int]] = []  # (from other, start, stop)
        shared: list[tuple[int, int]] = []  # (position in the result, position in other)
        i = k = out = 0
        while i < len(mine) or k < len(theirs):
            if k == len(theirs) or (i < len(mine) and mine[i] < theirs[k]):
                run, i = (False, i, i + 1), i + 1
            elif i == len(mine) or theirs[k] < mine[i]:
                run, k = (True, k, k + 1), k + 1
            else:
                shared.append((out, k))
                run, i, k = (False, i, i + 1), i + 1, k + 1
            out += 1
            if runs and runs[-1][0] == run[0] and runs[-1][2] == run[1]:
                runs[-1] = (run[0], runs[-1][1], run[2])
            else:
                runs.append(run)
        if any(source for source, _, _ in runs):
            for own, their, width in (
                (self._bucket_columns(), other._bucket_columns(), 1),
                (self._host_columns(), other._host_columns(), len(self._hosts)),
                (self._gpu_columns(), other._gpu_columns(), len(self._gpus)),
            ):
                for column, source in zip(own, their, strict=True):
                    joined = array(column.typecode)
                    for from_other, start, stop in runs:
                        joined.extend(
                            (source if from_other else column)[start * width : stop * width]
                        )
                    column[:] = joined
        for p, k in shared:
            self._join_bucket(p, other, k)

    def _join_bucket(self, p: int, other: Summary, k: int) -> None:
        frames = self._frames[p] + other._frames[k]
        if frames > MAX_FRAMES:
            return
        self._frames[p] = frames
        self._errors[p] += other._errors[k]
        a_first, a_last, a_gap = self._t_first[p], self._t_last[p], self._gap[p]
        b_first, b_last, b_gap = other._t_first[k], other._t_last[k], other._gap[k]
        if b_first < a_first:
            a_first, a_last, b_first, b_last = b_first, b_last, a_first, a_last
        self._gap[p] = max(a_gap, b_gap, b_first - a_last)
        self._t_first[p], self._t_last[p] = a_first, max(a_last, b_last)
        nh = len(self._hosts)
        for j in range(p * nh, (p + 1) * nh):
            o = j - p * nh + k * nh
            self._seen[j] += other._seen[o]
            self._host_errors[j] += other._host_errors[o]
        for name in HOST_SERIES:
            stats, theirs = self._host_stats[name], other._host_stats[name]
            for j in range(nh):
                stats.join(p * nh + j, theirs, k * nh + j)
        ng = len(self._gpus)
        for name in GPU_SERIES:
            stats, theirs = self._gpu_stats[name], other._gpu_stats[name]
            for j in range(ng):
                stats.join(p * ng + j, theirs, k * ng + j)

    # ------------------------------------------------------------------ bytes

    def key_list(self) -> KeyList:
        """This summary's keys as a later payload may refer to them (module header)."""
        hosts, gpus = tuple(self._hosts), tuple(self._gpus)
        expected = frozenset(self._expected)
        return KeyList(hosts, expected, gpus, _digest(_key_block(hosts, expected, gpus)))

    def same_keys(self, keys: KeyList) -> bool:
        """Whether this summary's keys are exactly ``keys``."""
        return (
            len(self._gpus) == len(keys.gpus)
            and tuple(self._hosts) == keys.hosts
            and tuple(self._gpus) == keys.gpus
            and self._expected == keys.expected
        )

    def to_bytes(
        self, shared: tuple[int, KeyList] | None = None, events: bytes | None = None
    ) -> bytes:
        """The serialized form (module header). ``shared``: ``(ref, keys)`` of an earlier
        payload the reader will have read; when this summary's keys are those, the payload
        refers to them (``ref`` and their digest) instead of listing them. ``events``: an
        events block to carry."""
        return b"".join(self.to_pieces(shared, events))

    def to_pieces(
        self, shared: tuple[int, KeyList] | None = None, events: bytes | None = None
    ) -> list[bytes]:
        """:meth:`to_bytes` in pieces of like bytes: the header, events, keys and bucket
        columns, then each byte plane of each wide column (a compressor that ends a block
        after each keeps one set of statistics per plane: a tenth smaller than one for them
        all). ``events``: the events block to carry (:meth:`events_of` gives it back)."""
        flags = 0 if events is None else _FLAG_EVENTS
        carried = b"" if events is None else _U32.pack(len(events)) + events
        if shared is not None and self.same_keys(shared[1]):
            flags |= _FLAG_KEYS_BY_REF
            keys = _REF.pack(shared[0], shared[1].digest)
        else:
            keys = _key_block(self._hosts, self._expected, self._gpus)
        buckets, width = self._buckets, self.width_ms
        starts = [b * width for b in buckets]
        parts = [
            _HEADER.pack(
                MAGIC, VERSION, flags, width, len(buckets), len(self._gpus), len(self._hosts)
            ),
            carried,
            keys,
            _I64.pack(buckets[0] if buckets else 0),
            _pack([b - a for a, b in pairwise(buckets)]),
            _pack(self._frames),
            _pack(self._errors),
            _pack([t - s for t, s in zip(self._t_first, starts, strict=True)]),
            _pack([b - a for a, b in zip(self._t_first, self._t_last, strict=True)]),
            _pack(self._gap),
        ]
        pieces = [b"".join(parts)]
        stats = [*self._host_stats.values(), *self._gpu_stats.values()]
        for column in [self._seen, self._host_errors, *(c for s in stats for c in s.stored())]:
            pieces += _planes(column)
        return pieces

    @staticmethod
    def events_of(data: bytes) -> bytes | None:
        """The events block a payload carries (:meth:`to_pieces`), None when it carries none;
        :class:`SummaryInvalid` (one line) when it is no payload of this version or the
        block runs past it. Read without the rest of the payload."""
        try:
            magic, version, flags, *_ = _HEADER.unpack_from(data, 0)
        except StructError:
            raise SummaryInvalid("summary truncated: no header") from None
        if magic != MAGIC or version != VERSION or flags & ~_FLAGS:
            raise SummaryInvalid(f"summary version {version} (flags {flags}) not supported")
        if not flags & _FLAG_EVENTS:
            return None
        return data[_HEADER.size + _U32.size : _past_events(data, flags)]

    @staticmethod
    def keys_ref(data: bytes) -> int | None:
        """The ``ref`` of the payload whose keys ``data`` refers to; None when it lists its
        own (or is no payload of this version: :meth:`from_bytes` says why)."""
        try:
            magic, version, flags, *_ = _HEADER.unpack_from(data, 0)
            if magic != MAGIC or version != VERSION or flags & ~_FLAGS:
                return None
            if not flags & _FLAG_KEYS_BY_REF:
                return None
            ref: int = _REF.unpack_from(data, _past_events(data, flags))[0]
        except (StructError, SummaryInvalid):
            return None
        return ref

    @classmethod
    def from_bytes(
        cls, data: bytes, known: Mapping[int, KeyList] | None = None, full: bool = True
    ) -> Summary:
        """The summary ``data`` holds; :class:`SummaryInvalid` (one line) if it is not
        consistent (:meth:`check`; with ``full`` false only :meth:`check_bounds`).
        ``known``: key lists of payloads read before (by the ``ref`` their writer gave
        them), for a payload that refers to one."""
        try:
            magic, version, flags, width, nb, ng, nh = _HEADER.unpack_from(data, 0)
        except StructError:
            raise SummaryInvalid("summary truncated: no header") from None
        if magic != MAGIC:
            raise SummaryInvalid("not a summary (bad magic)")
        if version in (1, 2):
            raise SummaryInvalid(f"summary version {version} (a development build's) is not read")
        if version != VERSION or flags & ~_FLAGS:
            raise SummaryInvalid(f"summary version {version} (flags {flags}) not supported")
        if not 1 <= width <= MAX_WIDTH_MS:
            raise SummaryInvalid(f"summary bucket width {width} ms")
        at = _past_events(data, flags)
        view = memoryview(data)
        if flags & _FLAG_KEYS_BY_REF:
            try:
                ref, digest = _REF.unpack_from(data, at)
            except StructError:
                raise SummaryInvalid("summary truncated in its keys") from None
            at += _REF.size
            keys = (known or {}).get(ref)
            if keys is None:
                raise SummaryInvalid(f"summary keys refer to the summary at {ref:,}, not read")
            if keys.digest != digest or (len(keys.hosts), len(keys.gpus)) != (nh, ng):
                raise SummaryInvalid(f"summary keys refer to the summary at {ref:,}: it differs")
            hosts, expected, gpus = list(keys.hosts), set(keys.expected), list(keys.gpus)
            host_at, gpu_at = dict(keys.host_at), dict(keys.gpu_at)
        else:
            hosts, expected, gpus, at = _read_keys(data, view, at, nh, ng)
            host_at = {h: i for i, h in enumerate(hosts)}
            gpu_at = {g: i for i, g in enumerate(gpus)}
        try:
            (first,) = _I64.unpack_from(data, at)
        except StructError:
            raise SummaryInvalid("summary truncated in its columns") from None
        at += _I64.size
        summary = cls(width)
        summary._expected = expected
        summary._hosts, summary._host_at = hosts, host_at
        summary._gpus, summary._gpu_at = gpus, gpu_at
        raw: list[array[int]] = []
        for count in (max(0, nb - 1), nb, nb, nb, nb, nb):
            column, at = _unpack(view, at, count, "Q")
            raw.append(column)
        deltas, frames, errors, offsets, spans, gaps = raw
        try:
            buckets = array("q", accumulate(deltas, initial=first))[:nb]
            t_first = array("q", [b * width + o for b, o in zip(buckets, offsets, strict=True)])
            t_last = array("q", [t + d for t, d in zip(t_first, spans, strict=True)])
            columns = [buckets, frames, errors, t_first, t_last, gaps]
            for own, column in zip(summary._bucket_columns(), columns, strict=True):
                own[:] = array(own.typecode, column)
            # the wide columns are read straight into their own arrays, then restored
            for own, count in (
                *((c, nb * nh) for c in summary._host_columns()),
                *((c, nb * ng) for c in summary._gpu_columns()),
            ):
                column, at = _unpack(view, at, count, own.typecode)
                own[:] = column
            for stats in (*summary._host_stats.values(), *summary._gpu_stats.values()):
                stats.restore()
        except OverflowError:
            raise SummaryInvalid("summary value out of range") from None
        if at != len(data):
            raise SummaryInvalid(f"summary has {len(data) - at} bytes past its columns")
        if full:
            summary.check()
        else:
            summary.check_bounds(keys_checked=bool(flags & _FLAG_KEYS_BY_REF))
        return summary

    def check(self) -> None:
        """Raise :class:`SummaryInvalid` (one line) unless every invariant holds."""
        self._check_keys()
        self._check_buckets()
        nh = len(self._hosts)
        host_limits = self._seen  # each host's frames, bucket by bucket
        gpu_host = [self._host_at[h] for h, _ in self._gpus]
        gpu_limits = array(
            "H", [host_limits[p * nh + h] for p in range(len(self._buckets)) for h in gpu_host]
        )
        for name in HOST_SERIES:
            _check_stats(self._host_stats[name], host_limits, name)
        for name in GPU_SERIES:
            _check_stats(self._gpu_stats[name], gpu_limits, name)

    def check_bounds(self, keys_checked: bool = False) -> None:
        """Raise :class:`SummaryInvalid` (one line) unless the summary is safe to draw and
        to merge: what :meth:`check` proves of its keys (unless ``keys_checked``: they are
        those of a summary checked before), buckets and times, and every count within its
        bucket's frames, every sum within those frames times its series' top, every max
        within the top (one maximum per column, or per bucket's slice of it, in C).
        What it leaves to :meth:`check` — a count over its host's rows, a sum beyond its
        count times its max — a forger could make consistent anyway; means are clamped to
        their range, and the values are checked against the frames whenever their chunk is
        decoded (docs/recording-format.md §7.10). A hundred times quicker than
        :meth:`check` on a 100-host map."""
        if not keys_checked:
            self._check_keys()
        self._check_buckets()
        frames = self._frames
        if not frames:
            return
        groups: list[tuple[int, int, int]]  # (first bucket, stop, most frames) checked at once
        if min(frames) == max(frames):
            groups = [(0, len(frames), frames[0])]
        else:
            groups = [(p, p + 1, f) for p, f in enumerate(frames)]
        for width, counts, sums, tops in (
            (
                len(self._hosts),
                [s.n for s in self._host_stats.values()],  # seen, errors: _check_buckets
                [(s.s, TOPS[name]) for name, s in self._host_stats.items()],
                [],
            ),
            (
                len(self._gpus),
                [s.n for s in self._gpu_stats.values()],
                [(s.s, TOPS[name]) for name, s in self._gpu_stats.items()],
                [(c, TOPS[name]) for name, s in self._gpu_stats.items() for c in s.columns()[2:]],
            ),
        ):
            if not width:
                continue
            for column, top in tops:
                if max(column) > top:
                    raise SummaryInvalid("summary buckets: a max over its top")
            distinct: list[array[int]] = []  # a GPU's series mostly count alike: read once
            for column in counts:
                if not any(column == seen for seen in distinct):
                    distinct.append(column)
            for first, stop, most in groups:
                at, end = first * width, stop * width
                if any(max(column[at:end]) > most for column in distinct):
                    raise SummaryInvalid("summary buckets: a count over its bucket's frames")
                if any(max(column[at:end]) > most * top for column, top in sums):
                    raise SummaryInvalid("summary buckets: a sum over its frames times its top")

    def _check_keys(self) -> None:
        if sorted(set(self._hosts)) != self._hosts:
            raise SummaryInvalid("summary host keys are not sorted and unique")
        if sorted(set(self._gpus)) != self._gpus:
            raise SummaryInvalid("summary GPU keys are not sorted and unique")
        if not self._expected <= self._host_at.keys():
            raise SummaryInvalid("summary expected host is not a host key")
        orphan = next((g for g in self._gpus if g[0] not in self._host_at), None)
        if orphan is not None:
            raise SummaryInvalid(f"summary GPU {orphan[1]!r} of an unknown host")

    def _check_buckets(self) -> None:
        width, buckets = self.width_ms, self._buckets
        if any(a >= b for a, b in pairwise(buckets)):
            raise SummaryInvalid("summary buckets are not increasing")
        frames, t_first, t_last = self._frames, self._t_first, self._t_last
        # every bucket at once, iterated in C (a map of a million frames reads 100,000)
        if buckets and (min(frames) < 1 or max(frames) > MAX_FRAMES):
            raise SummaryInvalid("summary buckets: a frame count of 0 or over the limit")
        if not all(map(le, self._errors, frames)):
            raise SummaryInvalid("summary buckets: more frames with errors than frames")
        starts = [bucket * width for bucket in buckets]
        if not (
            all(map(le, starts, t_first))
            and all(map(le, t_first, t_last))
            and all(map(lt, t_last, map(add, starts, repeat(width))))
        ):
            raise SummaryInvalid("summary buckets: times outside the bucket")
        if not all(map(or_, map(ne, frames, repeat(1)), map(eq, t_first, t_last))):
            raise SummaryInvalid("summary buckets: one frame, two times")
        if not all(map(le, self._gap, map(sub, t_last, t_first))):
            raise SummaryInvalid("summary buckets: a gap longer than its bucket's span")
        nh = len(self._hosts)
        per_host = array("H", [f for f in frames for _ in range(nh)])
        if not (all(map(le, self._seen, per_host)) and all(map(le, self._host_errors, per_host))):
            raise SummaryInvalid("summary buckets: host counts over their frames")

    def check_span(self, t_lo: int, t_hi: int) -> None:
        """:class:`SummaryInvalid` unless every frame counted lies in ``t_lo..t_hi`` (both
        included: the time range of the chunk the summary came with)."""
        if self._buckets and (min(self._t_first) < t_lo or max(self._t_last) > t_hi):
            raise SummaryInvalid(f"summary buckets: frames outside {t_lo}..{t_hi}")

    # ------------------------------------------------------------------ queries

    def interval_estimate(self) -> float | None:
        """The median frame spacing observed (ms): over the mean spacing within each bucket
        of two frames or more, and the spacings between consecutive buckets. None with
        fewer than two frames."""
        spacings = [
            (self._t_last[p] - self._t_first[p]) / (frames - 1)
            for p, frames in enumerate(self._frames)
            if frames > 1
        ]
        spacings += [float(b - a) for a, b in zip(self._t_last, self._t_first[1:], strict=False)]
        if not spacings:
            return None
        spacings.sort()
        mid = len(spacings) // 2
        return spacings[mid] if len(spacings) % 2 else (spacings[mid - 1] + spacings[mid]) / 2

    def _threshold(self, interval_ms: int | None) -> float | None:
        interval = interval_ms if interval_ms is not None else self.interval_ms
        estimate = interval if interval is not None else self.interval_estimate()
        return None if estimate is None else 2 * estimate

    def _gpu_span(self, host: str) -> tuple[int, int]:
        lo = bisect_left(self._gpus, (host, ""))
        hi = lo
        while hi < len(self._gpus) and self._gpus[hi][0] == host:
            hi += 1
        return lo, hi

    def cells(
        self,
        t0_ms: int,
        t1_ms: int,
        ncells: int,
        host: str | None = None,
        interval_ms: int | None = None,
    ) -> list[Cell]:
        """``[t0_ms, t1_ms)`` cut into ``ncells`` equal cells; a cell aggregates the buckets
        whose start falls in it, the first cell also the bucket holding ``t0_ms`` (a strip
        begins at a recording's first frame, seldom on a bucket's start). ``active``: the
        share of the GPUs drawn whose mean utilization in a bucket was :data:`ACTIVE_UTIL`
        or more, over the cell's buckets. A gap: an interval between consecutive frames
        longer than
        twice ``interval_ms`` (else the summary's, else :meth:`interval_estimate`; no gaps
        when none is known) — inside a bucket it marks the bucket's cell, between buckets
        every cell it overlaps."""
        if ncells < 1 or t1_ms <= t0_ms:
            raise ValueError(f"cells: need ncells ≥ 1 and t0 < t1, got {ncells}, {t0_ms}, {t1_ms}")
        span, width = t1_ms - t0_ms, self.width_ms
        threshold = self._threshold(interval_ms)
        frames = [0] * ncells
        n = [0] * ncells
        s = [0] * ncells
        hi: list[int | None] = [None] * ncells
        gap = [False] * ncells
        missing = [False] * ncells
        errors = [False] * ncells
        busy = [0] * ncells  # GPU-buckets active
        read = [0] * ncells  # GPU-buckets with a utilization reading
        active_q = ACTIVE_UTIL * 2  # in the stored unit, half percent
        buckets = self._buckets
        p0 = bisect_left(buckets, t0_ms // width)  # the bucket holding t0, or the next
        p1 = bisect_left(buckets, -(-t1_ms // width))
        nh, ng = len(self._hosts), len(self._gpus)
        hj = self._host_at.get(host) if host is not None else None
        g0, g1 = self._gpu_span(host) if host is not None else (0, ng)
        util = self._gpu_stats["util"]
        for p in range(p0, p1):
            c = max(0, (buckets[p] * width - t0_ms) * ncells // span)
            count = self._frames[p]
            frames[c] += count
            bn, bs, bhi = util.total(p * ng + g0, p * ng + g1)
            if bn:
                ns, ss = util.n[p * ng + g0 : p * ng + g1], util.s[p * ng + g0 : p * ng + g1]
                read[c] += sum(1 for k in ns if k)
                busy[c] += sum(1 for k, v in zip(ns, ss, strict=True) if k and v >= active_q * k)
            if bn:
                n[c] += bn
                s[c] += bs
                if bhi is not None:
                    was_hi = hi[c]
                    hi[c] = bhi if was_hi is None else max(bhi, was_hi)
            if threshold is not None and self._gap[p] > threshold:
                gap[c] = True
            if host is None:
                if any(v < count for v in self._seen[p * nh : (p + 1) * nh]):
                    missing[c] = True
                if self._errors[p]:
                    errors[c] = True
            elif hj is None:
                missing[c] = True
            else:
                if self._seen[p * nh + hj] < count:
                    missing[c] = True
                if self._host_errors[p * nh + hj]:
                    errors[c] = True
        if threshold is not None:
            for p in range(max(1, p0 - 1), min(len(buckets) - 1, p1) + 1):
                a, b = self._t_last[p - 1], self._t_first[p]
                first, last = max(a + 1, t0_ms), min(b - 1, t1_ms - 1)
                if b - a > threshold and first <= last:
                    for c in range(
                        (first - t0_ms) * ncells // span, (last - t0_ms) * ncells // span + 1
                    ):
                        gap[c] = True
        half = UNITS["util"]
        return [
            Cell(
                frames=frames[c],
                util_mean=min(s[c] / n[c], TOPS["util"]) * half if n[c] else None,
                util_max=None if (high := hi[c]) is None else high * half,
                gap=gap[c],
                missing=missing[c],
                errors=errors[c],
                active=busy[c] / read[c] if read[c] else None,
            )
            for c in range(ncells)
        ]

    def _mean(
        self, series: str, bucket: int, host: str | None, gpu: tuple[str, str] | None
    ) -> float | None:
        means = self._means.setdefault((series, host, gpu), {})
        if bucket in means:
            return means[bucket]
        mean = means[bucket] = self._compute_mean(series, bucket, host, gpu)
        return mean

    def _compute_mean(
        self, series: str, bucket: int, host: str | None, gpu: tuple[str, str] | None
    ) -> float | None:
        p = self._find(bucket)
        if p is None:
            return None
        if series in GPU_SERIES:
            ng = len(self._gpus)
            if gpu is not None:
                j = self._gpu_at.get(gpu)
                if j is None:
                    return None
                start, stop = j, j + 1
            elif host is not None:
                start, stop = self._gpu_span(host)
            else:
                start, stop = 0, ng
            stats = self._gpu_stats[series]
            base = p * ng
        else:
            nh = len(self._hosts)
            if host is not None:
                j = self._host_at.get(host)
                if j is None:
                    return None
                start, stop = j, j + 1
            else:
                start, stop = 0, nh
            stats = self._host_stats[series]
            base = p * nh
        n = sum(stats.n[base + start : base + stop])
        if not n:
            return None
        # clamped: a summary read with check_bounds only may hold a sum over n × top
        return min(sum(stats.s[base + start : base + stop]) / n, TOPS[series]) * UNITS[series]

    def history(
        self,
        series: str,
        t_end_ms: int,
        buckets: int,
        *,
        host: str | None = None,
        gpu: tuple[str, str] | None = None,
        partial: Summary | None = None,
    ) -> list[float | None]:
        """The mean of ``series`` (real units: percent, °C, W, MHz) in each of the
        ``buckets`` buckets ending with the one holding ``t_end_ms``, oldest first; None
        where a bucket has no reading. Cluster-wide (Σsum / Σn over every GPU or host), one
        host's (its GPUs, or its own host series) or one GPU's. ``partial``, when given,
        stands for the last bucket (built from its frames up to the playhead, so a paused
        replay shows what the live view showed then)."""
        if series not in UNITS:
            raise ValueError(f"unknown series {series!r}")
        if gpu is not None and series in HOST_SERIES:
            raise ValueError(f"series {series!r} is a host's, not a GPU's")
        if partial is not None and partial.width_ms != self.width_ms:
            raise ValueError("partial summary of another bucket width")
        last = bucket_of(t_end_ms, self.width_ms)
        values = [self._mean(series, b, host, gpu) for b in range(last - buckets + 1, last)]
        if buckets > 0:
            source = partial if partial is not None else self
            values.append(source._mean(series, last, host, gpu))
        return values


def _check_stats(stats: _Stats, limits: array[int], name: str) -> None:
    """:class:`SummaryInvalid` unless every reading count is within its limit (its host's
    frames) and every kept max and sum is consistent with it: ``sum ≤ n × max``, ``max ≤``
    the series' top, and all zero without a reading. Whole columns at
    once, iterated in C: a 100-host summary holds a hundred thousand of them."""
    top = TOPS[name]
    n, s = stats.n, stats.s
    if len(n) != len(limits) or not all(map(le, n, limits)):
        raise SummaryInvalid(f"summary {name}: more readings than frames")
    highs = map(mul, n, stats.hi) if stats.has_hi else map(mul, n, repeat(top))
    if not all(map(le, s, highs)):
        raise SummaryInvalid(f"summary {name}: a sum over its count times its max")
    if stats.has_hi and not all(map(le, stats.hi, map(mul, n, repeat(top)))):
        raise SummaryInvalid(f"summary {name}: a max over its top, or without a reading")
