"""The remote source: one frame per cycle from many hosts' exporters (DESIGN.md §6).

Each host is scraped concurrently, at most ``max_in_flight`` requests at a time, each with
its own timeout, and the whole cycle with a deadline — one hanging host never delays a frame.
``/snapshot`` JSON (allsmi's exporter and mock) is preferred: it costs a fraction of parsing
Prometheus text; ``/metrics`` (ours or all-smi's) is the fallback, and which one works is
remembered per host. Bodies are read in pieces and capped. Every row's ``host_id`` becomes
the scrape target (normalised), so rows from different hosts never collide; a host that
failed becomes one ``errors`` entry naming it and contributes no rows (drawn ``no data``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import anyio
import attrs
import orjson

from allsmi.adapters import codec
from allsmi.adapters.httpclient import HttpFailed, HttpOrigin
from allsmi.adapters.prometheus_parse import parse_metrics
from allsmi.domain.errors import AllsmiError
from allsmi.domain.model import Frame, normalise_host_id

SNAPSHOT: Final = "snapshot"
METRICS: Final = "metrics"
SECTION_KEYS: Final = {
    "gpu": "gpus",
    "cpu": "cpus",
    "memory": "memory",
    "chassis": "chassis",
    "process": "processes",
    "storage": "storage",
}


class ScrapeFailed(Exception):
    """One host's scrape went wrong; the message is what the frame's ``errors`` says."""


@attrs.frozen
class RemoteConfig:
    hosts: tuple[str, ...]
    include: tuple[str, ...] = ("gpu", "cpu", "memory", "chassis")
    request_timeout_s: float = 5.0
    cycle_deadline_s: float = 8.0
    max_in_flight: int = 64
    max_body_bytes: int = 32 * 1024 * 1024
    token: str | None = None


@attrs.define
class HostResult:
    sections: dict[str, list[Any]] | None = None
    error: str | None = None


def base_url(host: str) -> str:
    return host if "://" in host else f"http://{host}"


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
        # identity: the cap counts the bytes that arrive, and a small body may inflate hugely
        headers = {"Accept": "application/json, text/plain;q=0.5", "Accept-Encoding": "identity"}
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        self._headers = headers
        self._wanted = frozenset(SECTION_KEYS[s] for s in config.include)

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
                    tg.start_soon(self._scrape_into, host, results)
        return self._assemble(t_ms, results)

    # ----------------------------------------------------------------- one host

    async def _scrape_into(self, host: str, results: dict[str, HostResult]) -> None:
        if self._limiter is None:
            await self._scrape_one(host, results)
        else:
            async with self._limiter:
                await self._scrape_one(host, results)

    async def _scrape_one(self, host: str, results: dict[str, HostResult]) -> None:
        try:
            results[host] = HostResult(sections=await self._scrape(host))
        except ScrapeFailed as err:
            results[host] = HostResult(error=f"{host}: {err}")

    async def _scrape(self, host: str) -> dict[str, list[Any]]:
        if self._mode.get(host) == METRICS:
            return await self._metrics(host)
        try:
            sections = await self._snapshot(host)
        except _NotSnapshot:
            sections = await self._metrics(host)
            self._mode[host] = METRICS
            return sections
        self._mode[host] = SNAPSHOT
        return sections

    async def _snapshot(self, host: str) -> dict[str, list[Any]]:
        status, body = await self._get(host, "/snapshot")
        if status == 404:
            raise _NotSnapshot()
        _check_status(status)
        with codec.collector_paused():
            try:
                obj = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise _NotSnapshot() from None  # an all-smi exporter answers any path with text
            if not isinstance(obj, dict):
                raise ScrapeFailed("invalid /snapshot (not a JSON object)")
            return _snapshot_rows(obj, normalise_host_id(host), self._wanted)

    async def _metrics(self, host: str) -> dict[str, list[Any]]:
        status, body = await self._get(host, "/metrics")
        _check_status(status)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ScrapeFailed("invalid /metrics (not UTF-8)") from None
        rows = parse_metrics(text, normalise_host_id(host))
        found = (rows.gpus, rows.cpus, rows.memory, rows.chassis, rows.processes, rows.storage)
        if not any(found):
            bad = (
                f" ({rows.skipped_lines} lines not in the exposition format)"
                if (rows.skipped_lines)
                else ""
            )
            raise ScrapeFailed(f"invalid /metrics: no all-smi metrics{bad}")
        return {
            "gpus": list(rows.gpus),
            "cpus": list(rows.cpus),
            "memory": list(rows.memory),
            "chassis": list(rows.chassis),
            "processes": list(rows.processes),
            "storage": list(rows.storage),
        }

    async def _get(self, host: str, path: str) -> tuple[int, bytes]:
        """GET with a whole-request deadline (a trickling peer cannot stretch it) and a cap
        on the body, read in pieces so a 100 MB answer never sits in memory."""
        try:
            with anyio.fail_after(self.config.request_timeout_s):
                reply = await self._origin(host).get(path)
        except TimeoutError:
            raise ScrapeFailed(f"timeout after {self.config.request_timeout_s:g}s") from None
        except HttpFailed as err:
            raise ScrapeFailed(str(err)) from None
        return reply.status, reply.body

    # ----------------------------------------------------------------- the frame

    def _assemble(self, t_ms: int, results: dict[str, HostResult]) -> Frame:
        errors: list[str] = []
        merged: dict[str, list[Any]] = {key: [] for key in SECTION_KEYS.values()}
        for host in self.config.hosts:
            result = results.get(host)
            if result is None:
                errors.append(f"{host}: no answer within {self.config.cycle_deadline_s:g}s")
            elif result.error is not None:
                errors.append(result.error)
            elif result.sections is not None:
                for key, rows in result.sections.items():
                    merged[key].extend(rows)
        wanted = {SECTION_KEYS[s] for s in self.config.include}

        def section(key: str) -> tuple[Any, ...] | None:
            return tuple(merged[key]) if key in wanted else None

        return Frame(
            t_ms=t_ms,
            source="remote",
            gpus=section("gpus"),
            cpus=section("cpus"),
            memory=section("memory"),
            chassis=section("chassis"),
            processes=section("processes"),
            storage=section("storage"),
            errors=tuple(errors),
        )


class _NotSnapshot(Exception):
    """The host has no ``/snapshot``: try ``/metrics``."""


def _check_status(status: int) -> None:
    if status == 401:
        raise ScrapeFailed("HTTP 401 (token missing or wrong)")
    if status != 200:
        raise ScrapeFailed(f"HTTP {status}")


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
        frame = codec.decode_object(obj, 0)
    except AllsmiError as err:
        raise ScrapeFailed(f"invalid /snapshot ({_reason(err)})") from None
    if not isinstance(frame, Frame):
        raise ScrapeFailed("invalid /snapshot (not a data frame)")
    return {key: list(getattr(frame, key) or ()) for key in SECTION_KEYS.values()}


def _reason(err: AllsmiError) -> str:
    text = str(err)
    return text.split(": ", 1)[1] if text.startswith("line ") else text
