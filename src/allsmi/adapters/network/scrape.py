"""The remote source: one frame per cycle from many hosts' exporters (docs/architecture.md §3.2).

Each host is scraped concurrently, at most ``max_in_flight`` requests at a time, each with
its own timeout, and the whole cycle with a deadline — one hanging host never delays a frame.
``/snapshot`` JSON (allsmi's exporter and mock) is preferred: it costs a fraction of parsing
Prometheus text; ``/metrics`` (ours or all-smi's) is the fallback, and which one works is
remembered per host. Every row's ``host_id`` becomes the scrape target (normalised), so rows
from different hosts never collide; a host that failed becomes one ``errors`` entry naming
it and contributes no rows (drawn ``no data``).

Per-host limits (the constants below, quoted by the README) bound what one host can cost,
whatever it sends, and are applied while its answer is read: the body is cut at
``MAX_BODY_BYTES``; a ``/metrics`` page is read a sample at a time and stops at the first
line, series, GPU or process past its cap; a ``/snapshot``'s GPU and process lists are
counted before a row is structured; and a host whose rows would take more than
``MAX_HOST_ROWS_BYTES`` of the frame is refused. A host past a limit becomes its own error
(``"10.0.0.5:9090: over 256 GPUs"``); every other host is recorded.

Parsing a large answer (over ``inline_parse_bytes``) runs in a worker thread, so the event
loop keeps reading the other hosts meanwhile, and within the host's request deadline from
the caller's side: at the deadline the host fails and the thread is left to finish alone.
A thread cannot be cancelled — the caps are what bound it — and a host still being parsed
is not scraped again until its thread is done, so a hostile host holds at most one thread.
Small answers, the everyday case, are parsed inline: the hop to a thread (and the measuring
of the rows) would cost more than the parse — ~0.2 ms a host, a third of a 100-host
``/snapshot`` cycle (bench/bench_hostile.py).

Exporters' pages (docs/architecture.md §3.2): a ``/metrics`` page is read by its families, no
flag needed — ``DCGM_FI_*`` samples by :mod:`allsmi.adapters.prometheus.dcgm` (GPU rows),
``node_cpu_seconds_total``/``node_memory_*`` by :mod:`allsmi.adapters.prometheus.node` (CPU,
memory, storage rows), anything else by the all-smi reader. Which kind a host serves is
remembered; a node_exporter host is then asked for ``node.NODE_PATH`` (only the collectors
read), and for the plain ``/metrics`` for good once it answers that with an error. What the
exporters' readers need from the previous scrape (CPU and PCIe counters, the last XID) is kept
per host, replaced by each page's (one entry per GPU or core on it, so it is bounded and what
left the page is dropped), and dropped when the host serves another kind of page.

Pairing: two targets that are the only two of their host part in the host list
(:func:`allsmi.domain.hosts.host_part`: ``gpu-01:9400`` and ``gpu-01:9100``) are one host when
they serve exporter pages: the rows of a dcgm-exporter or node_exporter page carry the id of
the pair's first target in the list (:func:`frame_host_ids` lists the ids frames carry, for a
recording's header). An all-smi or allsmi page keeps its own id (two mock nodes on one address
stay two hosts). Errors still name the target that failed. Two targets of one id giving rows of
the same section (an all-smi exporter and a node_exporter on one host part) would collide: the
later target's rows of that section are dropped, with an error naming it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, Final, Generic, NoReturn, TypeVar

import anyio
import anyio.to_thread
import attrs
import orjson

from allsmi.adapters import wire
from allsmi.adapters.network.client import HttpFailed, HttpOrigin, size_text
from allsmi.adapters.prometheus import dcgm, node
from allsmi.adapters.prometheus.parser import OverLimit, PageLimits, fold_page, parse_metrics
from allsmi.domain.errors import AllsmiError
from allsmi.domain.hosts import claim_rows, host_part
from allsmi.domain.model import DEFAULT_SECTIONS, SECTION_TABLE, Frame, normalise_host_id
from allsmi.domain.sections import build_frame, rows_of

# Sections whose rows share MAX_OTHER_ROWS: every section but the GPUs and processes, which
# have caps of their own.
_OTHER_ROW_KEYS: Final = tuple(s.key for s in SECTION_TABLE if s.name not in ("gpu", "process"))

# Per-host limits: the one source of these numbers (the README quotes them).
MAX_BODY_BYTES: Final = 8 * 1024 * 1024  # one answer, as it arrives
MAX_SERIES: Final = 100_000  # samples on one /metrics page
MAX_PAGE_LINES: Final = 2 * MAX_SERIES  # lines of any kind (HELP, TYPE, blank) on one page
MAX_GPUS: Final = 256  # per host: all-smi's cap
MAX_PROCESSES: Final = 50_000  # per host: all-smi's cap
MAX_OTHER_ROWS: Final = 8192  # per host: CPUs, cores, sockets, memory, disks, chassis, fans
MAX_HOST_ROWS_BYTES: Final = 8 * 1024 * 1024  # one host's rows, encoded: half a 16 MiB frame
HOST_LIMITS: Final = PageLimits(
    lines=MAX_PAGE_LINES,
    series=MAX_SERIES,
    gpus=MAX_GPUS,
    processes=MAX_PROCESSES,
    rows=MAX_OTHER_ROWS,
)
# Answers up to this size are parsed on the event loop (~4 ms for a 256 KiB page; the hop to a
# thread costs more than parsing an everyday 15-40 KB answer). Their rows need no measuring:
# at most ~15x the answer (absent fields become nulls), far below MAX_HOST_ROWS_BYTES.
INLINE_PARSE_BYTES: Final = 256 * 1024
BYTES_PER_CONTAINER: Final = 32  # a large /snapshot with more objects per byte is refused
BYTES_PER_VALUE: Final = 8  # … or with more values (commas) per byte
PARSE_THREADS: Final = 2  # larger answers parsed at once (parsing holds the GIL anyway)
_MEASURE_BATCH: Final = 512  # rows encoded at a time to measure a host's share of the frame

SNAPSHOT: Final = "snapshot"
METRICS: Final = "metrics"
# The kinds of /metrics page, found by their families.
ALLSMI_PAGE: Final = "allsmi"
DCGM_PAGE: Final = "dcgm"
NODE_PAGE: Final = "node"
# Section name → its key in a /snapshot answer and in the rows a host yields.
SECTION_KEYS: Final = {s.name: s.key for s in SECTION_TABLE}


T = TypeVar("T")


class ScrapeFailed(Exception):
    """One host's scrape went wrong; the message is what the frame's ``errors`` says."""


@attrs.frozen
class RemoteConfig:
    hosts: tuple[str, ...]
    include: tuple[str, ...] = DEFAULT_SECTIONS
    request_timeout_s: float = 5.0
    cycle_deadline_s: float = 8.0
    max_in_flight: int = 64
    max_body_bytes: int = MAX_BODY_BYTES
    limits: PageLimits = HOST_LIMITS
    inline_parse_bytes: int = INLINE_PARSE_BYTES
    token: str | None = None


@attrs.define
class HostResult:
    sections: dict[str, list[Any]] | None = None
    error: str | None = None


def base_url(host: str) -> str:
    return host if "://" in host else f"http://{host}"


def pair_ids(targets: tuple[str, ...]) -> dict[str, str]:
    """Each target → the id its exporter page's rows carry: the first target's id when it
    and one other target are the only two of their host part, else its own id."""
    parts: dict[str, list[str]] = {}
    for target in targets:
        parts.setdefault(host_part(target), []).append(target)
    paired: dict[str, str] = {}
    for target in targets:
        group = parts[host_part(target)]
        paired[target] = normalise_host_id(group[0] if len(group) == 2 else target)
    return paired


def frame_host_ids(targets: tuple[str, ...]) -> tuple[str, ...]:
    """The host ids frames of these targets carry, in host-list order: a pair's once (the
    header's ``hosts``; see the module docstring)."""
    return tuple(dict.fromkeys(pair_ids(targets).values()))


class RemoteSource:
    """Scrapes ``config.hosts`` once per ``collect`` (the recorder's and the view's source)."""

    def __init__(
        self,
        config: RemoteConfig,
        origin_factory: Callable[[str, dict[str, str], int], HttpOrigin],
    ) -> None:
        self.config = config
        # One kept-alive connection per host (hosts are scraped concurrently, each once a cycle).
        self._new_origin = origin_factory
        self._origins: dict[str, HttpOrigin] = {}
        # No limiter when it could never make a host wait (one request per host a cycle).
        bounded = config.max_in_flight < len(config.hosts)
        self._limiter = anyio.CapacityLimiter(max(1, config.max_in_flight)) if bounded else None
        self._mode: dict[str, str] = {}  # host → the endpoint that worked last time
        self._kind: dict[str, str] = {}  # host → the kind of /metrics page it served last
        self._plain_only: set[str] = set()  # node_exporter hosts that refused NODE_PATH
        # host → what its exporter page's reader needs from the previous scrape
        self._states: dict[str, dcgm.DcgmState | node.NodeState] = {}
        self._pair = pair_ids(config.hosts)
        # identity: the cap counts the bytes that arrive, and a small body may inflate hugely
        headers = {"Accept": "application/json, text/plain;q=0.5", "Accept-Encoding": "identity"}
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        self._headers = headers
        self._wanted = frozenset(SECTION_KEYS[s] for s in config.include)
        self._parse_slots = anyio.CapacityLimiter(PARSE_THREADS)
        # Hosts whose answer a worker thread is parsing; shared with those threads.
        self._parsing: set[str] = set()
        self._parsing_lock = threading.Lock()

    def hosts(self) -> tuple[str, ...]:
        return self.config.hosts

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        origins, self._origins = list(self._origins.values()), {}
        for origin in origins:
            await origin.aclose()

    def _origin(self, host: str) -> HttpOrigin:
        origin = self._origins.get(host)
        if origin is None:
            origin = self._new_origin(base_url(host), self._headers, self.config.max_body_bytes)
            self._origins[host] = origin
        return origin

    async def collect(self, t_ms: int) -> Frame:
        results: dict[str, HostResult] = {}
        with anyio.move_on_after(self.config.cycle_deadline_s):
            async with anyio.create_task_group() as tg:
                for host in self.config.hosts:
                    tg.start_soon(self._scrape_into, host, results, t_ms)
        return self._assemble(t_ms, results)

    # ----------------------------------------------------------------- one host

    async def _scrape_into(self, host: str, results: dict[str, HostResult], t_ms: int) -> None:
        if self._limiter is None:
            await self._scrape_one(host, results, t_ms)
        else:
            async with self._limiter:
                await self._scrape_one(host, results, t_ms)

    async def _scrape_one(self, host: str, results: dict[str, HostResult], t_ms: int) -> None:
        try:
            results[host] = HostResult(sections=await self._scrape(host, t_ms))
        except ScrapeFailed as err:
            results[host] = HostResult(error=f"{host}: {err}")

    async def _scrape(self, host: str, t_ms: int) -> dict[str, list[Any]]:
        if host in self._parsing:  # its last answer overran the deadline: one thread is enough
            raise ScrapeFailed("still parsing its previous answer")
        if self._mode.get(host) == METRICS:
            return await self._metrics(host, t_ms)
        try:
            sections = await self._snapshot(host)
        except _NotSnapshot as err:
            text_page = err.text_page
        else:
            self._mode[host] = SNAPSHOT
            return sections
        if text_page:  # all-smi's exporter: asking /snapshot again would only read it twice
            self._mode[host] = METRICS
        # Out of the except block: the first answer is not kept alive while this one is read.
        sections = await self._metrics(host, t_ms)
        self._mode[host] = METRICS
        return sections

    async def _snapshot(self, host: str) -> dict[str, list[Any]]:
        with self._deadline():
            status, body = await self._get(host, "/snapshot")
            if status == 404:
                raise _NotSnapshot(text_page=False)
            _check_status(status)
            wanted, limits = self._wanted, self.config.limits
            job = _Job(partial(read_snapshot, body, normalise_host_id(host), wanted, limits))
            size = len(body)
            del body  # the job holds it now, and only the job (see _Job)
            return await self._parse(host, size, job)

    async def _metrics(self, host: str, t_ms: int) -> dict[str, list[Any]]:
        with self._deadline():
            filtered = self._kind.get(host) == NODE_PAGE and host not in self._plain_only
            status, body = await self._get(host, node.NODE_PATH if filtered else "/metrics")
            if filtered and status not in (200, 401):  # an exporter without those collectors
                self._plain_only.add(host)
                del body
                status, body = await self._get(host, "/metrics")
            _check_status(status)
            # Decoded here (a few ms even at the cap) and the bytes let go at once: the
            # parse then holds the page once, not twice.
            size = len(body)
            page = _Page(host, self._pair[host], self._wanted, self.config.limits, t_ms)
            job = _Job(partial(page.read, _decode(body), self._states))
            del body
            kind, sections = await self._parse(host, size, job)
            self._kind[host] = kind
            return sections

    @contextlib.contextmanager
    def _deadline(self) -> Iterator[None]:
        """One request and the parsing of its answer, within the request timeout (a
        trickling peer cannot stretch it, nor can a slow parse)."""
        try:
            with anyio.fail_after(self.config.request_timeout_s):
                yield
        except TimeoutError:
            raise ScrapeFailed(f"timeout after {self.config.request_timeout_s:g}s") from None

    async def _get(self, host: str, path: str) -> tuple[int, bytes | bytearray]:
        """GET with a cap on the body, read in pieces so a 100 MB answer never sits in
        memory."""
        try:
            reply = await self._origin(host).get(path)
        except HttpFailed as err:
            raise ScrapeFailed(str(err)) from None
        return reply.status, reply.body

    async def _parse(self, host: str, size: int, job: _Job[T]) -> T:
        """The job inline for an everyday answer, else in a worker thread, where the rows are
        also measured against ``MAX_HOST_ROWS_BYTES``."""
        if size <= self.config.inline_parse_bytes:
            read = job.take()
            assert read is not None, "a job runs once"
            return read(False)
        return await self._in_worker(host, job)

    async def _in_worker(self, host: str, job: _Job[T]) -> T:
        """The job in a worker thread. If the caller stops waiting (the host's deadline, the
        cycle's), the thread finishes alone and only then frees the host for its next scrape;
        a job abandoned before its thread took it never runs."""
        with self._parsing_lock:
            if host in self._parsing:
                raise ScrapeFailed("still parsing its previous answer")
            self._parsing.add(host)

        def run() -> T | _Failure:
            read = job.take()
            if read is None:  # the caller dropped it, and freed the host
                return _Failure(ScrapeFailed("abandoned"))
            try:
                return read(True)
            except (ScrapeFailed, _NotSnapshot) as err:
                return _Failure(err)
            finally:
                with self._parsing_lock:
                    self._parsing.discard(host)

        try:
            outcome = await anyio.to_thread.run_sync(
                run, limiter=self._parse_slots, abandon_on_cancel=True
            )
        finally:
            if job.take() is not None:  # abandoned before a thread took it: drop it here
                with self._parsing_lock:
                    self._parsing.discard(host)
        if isinstance(outcome, _Failure):
            outcome.raise_it()
        return outcome

    # ----------------------------------------------------------------- the frame

    def _assemble(self, t_ms: int, results: dict[str, HostResult]) -> Frame:
        errors: list[str] = []
        merged: dict[str, list[Any]] = {key: [] for key in SECTION_KEYS.values()}
        given: dict[tuple[str, str], str] = {}  # (host id, section key) → the target giving it
        for host in self.config.hosts:
            result = results.get(host)
            if result is None:
                errors.append(f"{host}: no answer within {self.config.cycle_deadline_s:g}s")
            elif result.error is not None:
                errors.append(result.error)
            elif result.sections is not None:
                paired = self._pair[host] != normalise_host_id(host)
                for key, rows in result.sections.items():
                    merged[key].extend(claim_rows(given, host, paired, key, rows))
        by_name = {name: merged[key] for name, key in SECTION_KEYS.items()}
        include = self.config.include
        return build_frame(t_ms, by_name, include=include, source="remote", errors=errors)


class _NotSnapshot(Exception):
    """The host has no ``/snapshot``: try ``/metrics``. ``text_page``: it answered 200 with
    something that is no JSON — all-smi's exporter, which answers every path with its page."""

    def __init__(self, *, text_page: bool) -> None:
        super().__init__()
        self.text_page = text_page


class _Job(Generic[T]):
    """One answer's parse, handed over whole: whoever runs it takes the answer with it. A
    caller that stopped waiting is kept alive a while by its cancellation (asyncio caches the
    exception on the future, whose traceback holds the caller's frames: a reference cycle,
    freed only by the cycle collector); it must not keep the page alive too — 3 MB a cycle
    piled up in a recorder before the caller's frames held only this."""

    __slots__ = ("_lock", "_read")

    def __init__(self, read: Callable[[bool], T]) -> None:
        self._read: Callable[[bool], T] | None = read
        self._lock = threading.Lock()

    def take(self) -> Callable[[bool], T] | None:
        """The parse (``read(measure)``) for the first to ask — a worker thread, or the caller
        dropping it; None after."""
        with self._lock:
            read, self._read = self._read, None
        return read


class _Failure:
    """A worker thread's exception, handed back as a value without its traceback. Raised
    through the thread's future it would sit in a reference cycle (future → exception →
    traceback → frame → future) holding the answer and its text, freed only by the cycle
    collector: 19 MB a cycle piled up in a recorder until a collection ran."""

    __slots__ = ("error",)

    def __init__(self, error: ScrapeFailed | _NotSnapshot) -> None:
        self.error: ScrapeFailed | _NotSnapshot | None = error.with_traceback(None)
        error.__context__ = None  # its cause may hold the page (a decode error holds it all)

    def raise_it(self) -> NoReturn:
        error, self.error = self.error, None
        assert error is not None, "raised twice"
        try:
            raise error
        finally:
            del error  # no frame that the traceback holds may hold the exception: no cycle


def _decode(body: bytes | bytearray) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass  # raised below: the decode error holds the whole body
    raise ScrapeFailed("invalid /metrics (not UTF-8)")


def _check_status(status: int) -> None:
    if status == 401:
        raise ScrapeFailed("HTTP 401 (token missing or wrong)")
    if status != 200:
        raise ScrapeFailed(f"HTTP {status}")


def read_snapshot(
    body: bytes | bytearray,
    host_id: str,
    wanted: frozenset[str],
    limits: PageLimits,
    measure: bool,
) -> dict[str, list[Any]]:
    """The wanted rows of one host's ``/snapshot`` answer; ``measure``: refuse them if they
    would take more than ``MAX_HOST_ROWS_BYTES`` of the frame. Raises :class:`ScrapeFailed`
    (``_NotSnapshot`` when the body is no JSON: an all-smi exporter answers any path with
    its text page)."""
    if len(body) > INLINE_PARSE_BYTES:
        if body[:4096].lstrip()[:1] != b"{":
            raise _NotSnapshot(text_page=True)  # all-smi's exporter answers any path with text
        check_snapshot_density(body)
    with wire.collector_paused():
        json = True
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            json = False  # raised below, so that no exception holds the error (and its doc)
        if not json:
            raise _NotSnapshot(text_page=True)  # all-smi's exporter answers any path with text
        if not isinstance(obj, dict):
            raise ScrapeFailed("invalid /snapshot (not a JSON object)")
        for key, cap, what in (
            ("gpus", limits.gpus, "GPUs"),
            ("processes", limits.processes, "processes"),
        ):
            rows = obj.get(key)
            if key in wanted and isinstance(rows, list) and len(rows) > cap:
                raise ScrapeFailed(f"over {cap} {what}")  # before a row is structured
        others = [obj.get(key) for key in _OTHER_ROW_KEYS]
        if sum(len(rows) for rows in others if isinstance(rows, list)) > limits.rows:
            raise ScrapeFailed(f"over {limits.rows} CPU, core, memory, disk or chassis rows")
        sections = _snapshot_rows(obj, host_id, wanted)
        if measure:
            _check_share(sections, wanted)
        return sections


def check_snapshot_density(body: bytes | bytearray) -> None:
    """Refuse a ``/snapshot`` whose values are far denser than any exporter's before it is
    parsed: parsing costs memory by the value, not by the byte (8 MiB of ``{},`` are 2.7M
    dicts, ~300 MB). An exporter's rows carry one object per ~125 bytes and one ``,`` per
    ~22; the limits leave 4x and 2.7x of room."""
    if body.count(b"{") + body.count(b"[") > len(body) // BYTES_PER_CONTAINER:
        raise ScrapeFailed(f"/snapshot denser than one object per {BYTES_PER_CONTAINER} bytes")
    if body.count(b",") > len(body) // BYTES_PER_VALUE:
        raise ScrapeFailed(f"/snapshot denser than one value per {BYTES_PER_VALUE} bytes")


@attrs.frozen
class _Page:
    """How one host's ``/metrics`` answer is read: by the kind its families show."""

    host: str  # the scrape target
    pair_id: str  # the id its exporter page's rows carry (see pair_ids)
    wanted: frozenset[str]
    limits: PageLimits
    t_ms: int  # the cycle's instant: rates are differences over these

    def read(
        self,
        text: str,
        states: dict[str, dcgm.DcgmState | node.NodeState],
        measure: bool,
    ) -> tuple[str, dict[str, list[Any]]]:
        """``(kind, rows)`` of the page, :func:`read_metrics`'s for an all-smi one. The host's
        entry of ``states`` is used and replaced (only this host's: a host is read by one
        thread at a time). Raises :class:`ScrapeFailed`."""
        own_id = normalise_host_id(self.host)
        if dcgm.is_dcgm_page(text):
            kind = DCGM_PAGE
        elif node.is_node_page(text):
            kind = NODE_PAGE
        else:
            states.pop(self.host, None)
            return ALLSMI_PAGE, read_metrics(text, own_id, self.wanted, self.limits, measure)
        failure = ""
        try:
            sections = self._exporter_rows(kind, text, states)
        except OverLimit as err:
            failure = str(err)
        except (ValueError, OverflowError, ArithmeticError) as err:  # a value no reader takes
            failure = f"invalid /metrics ({type(err).__name__})"  # this host's error alone
        if failure:  # raised outside the except block: see read_metrics
            raise ScrapeFailed(failure)
        for key in sections:
            if key not in self.wanted:
                sections[key] = []
        if measure:
            _check_share(sections, self.wanted)
        return kind, sections

    def _exporter_rows(
        self, kind: str, text: str, states: dict[str, dcgm.DcgmState | node.NodeState]
    ) -> dict[str, list[Any]]:
        sections: dict[str, list[Any]] = {s.key: [] for s in SECTION_TABLE}
        instance, hostname = normalise_host_id(self.host), host_part(self.host)
        if kind == DCGM_PAGE:
            gpus = fold_page(text, self.limits, partial(dcgm.fold_dcgm, limits=self.limits),
                             dcgm.DCGM_NAMES)  # fmt: skip
            if not gpus.gpus:
                raise ScrapeFailed("invalid /metrics: a dcgm-exporter page without GPU series")
            state = states.get(self.host)
            if not isinstance(state, dcgm.DcgmState):
                state = states[self.host] = dcgm.DcgmState()
            sections["gpus"] = list(gpus.rows(self.pair_id, instance, hostname, state, self.t_ms))
            return sections
        fold = partial(node.fold_node, limits=self.limits)
        read = fold_page(text, self.limits, fold, node.NODE_NAMES)
        node_state = states.get(self.host)
        if not isinstance(node_state, node.NodeState):
            node_state = states[self.host] = node.NodeState()
        sections.update(read.rows_of(self.pair_id, instance, hostname, node_state))
        if not any(sections.values()):
            raise ScrapeFailed("invalid /metrics: a node_exporter page without CPU or memory")
        return sections


def read_metrics(
    text: str,
    host_id: str,
    wanted: frozenset[str],
    limits: PageLimits,
    measure: bool,
) -> dict[str, list[Any]]:
    """The rows of one host's ``/metrics`` page, as :func:`read_snapshot`. A cap is raised
    outside the ``except`` block: its traceback holds the page, which the new exception would
    keep alive as its context."""
    failure = ""
    try:
        rows = parse_metrics(text, host_id, limits, processes="processes" in wanted)
    except OverLimit as err:
        failure = str(err)
    if failure:
        raise ScrapeFailed(failure)
    sections: dict[str, list[Any]] = {s.key: list(getattr(rows, s.attr)) for s in SECTION_TABLE}
    if not any(sections.values()):
        bad = (
            f" ({rows.skipped_lines} lines not in the exposition format)"
            if rows.skipped_lines
            else ""
        )
        raise ScrapeFailed(f"invalid /metrics: no all-smi metrics{bad}")
    if measure:
        _check_share(sections, wanted)
    return sections


def _check_share(sections: dict[str, list[Any]], wanted: frozenset[str]) -> None:
    """Refuse rows that would take more than ``MAX_HOST_ROWS_BYTES`` of the frame: the frame
    as a whole is capped (16 MiB), and one host's rows must not push the others out. Encoded
    a batch at a time, stopping past the cap: 100,000 rows encoded at once took 150 MB."""
    size = 0
    with wire.collector_paused():
        for section in SECTION_TABLE:
            rows = sections[section.key] if section.key in wanted else []
            for start in range(0, len(rows), _MEASURE_BATCH):
                part = {section.name: rows[start : start + _MEASURE_BATCH]}
                batch = build_frame(0, part, source="remote")
                try:
                    size += len(wire.encode_line(batch))
                except (TypeError, ValueError) as err:  # orjson: a value JSON cannot carry
                    raise ScrapeFailed(f"rows not recordable ({err})") from None
                if size > MAX_HOST_ROWS_BYTES:
                    raise ScrapeFailed(f"rows over {size_text(MAX_HOST_ROWS_BYTES)} once recorded")


def _snapshot_rows(
    obj: dict[str, Any], host_id: str, wanted: frozenset[str]
) -> dict[str, list[Any]]:
    """The wanted rows of one host's ``/snapshot`` frame, re-keyed to the scrape target
    (sections not recorded are dropped before they cost a structuring)."""
    for key in SECTION_KEYS.values():
        rows = obj.get(key)
        if key not in wanted:
            obj.pop(key, None)
        elif isinstance(rows, list):
            for row in rows:
                if isinstance(row, dict):
                    row["host_id"] = host_id
    try:
        frame = wire.decode_object(obj, 0)
    except AllsmiError as err:
        raise ScrapeFailed(f"invalid /snapshot ({_reason(err)})") from None
    if not isinstance(frame, Frame):
        raise ScrapeFailed("invalid /snapshot (not a data frame)")
    return {s.key: list(rows_of(frame, s) or ()) for s in SECTION_TABLE}


def _reason(err: AllsmiError) -> str:
    text = str(err)
    return text.split(": ", 1)[1] if text.startswith("line ") else text
