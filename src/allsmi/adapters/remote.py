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
import httpx
import orjson

from allsmi.adapters import codec
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
        self, config: RemoteConfig, client_factory: Callable[[], httpx.AsyncClient]
    ) -> None:
        self.config = config
        # One small client per host: httpcore's pool scans every pooled connection on each
        # request, which is quadratic with one shared pool over a hundred hosts.
        self._new_client = client_factory
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._limiter = anyio.CapacityLimiter(max(1, config.max_in_flight))
        self._mode: dict[str, str] = {}  # host → the endpoint that worked last time
        # identity: a compressed body would be inflated by httpx before our cap could count it
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
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    def _client(self, host: str) -> httpx.AsyncClient:
        client = self._clients.get(host)
        if client is None:
            client = self._clients[host] = self._new_client()
        return client

    async def collect(self, t_ms: int) -> Frame:
        results: dict[str, HostResult] = {}
        with anyio.move_on_after(self.config.cycle_deadline_s):
            async with anyio.create_task_group() as tg:
                for host in self.config.hosts:
                    tg.start_soon(self._scrape_into, host, results)
        return self._assemble(t_ms, results)

    # ----------------------------------------------------------------- one host

    async def _scrape_into(self, host: str, results: dict[str, HostResult]) -> None:
        async with self._limiter:
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
        status, body = await self._get(host, f"{base_url(host)}/snapshot")
        if status == 404:
            raise _NotSnapshot()
        _check_status(status)
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise _NotSnapshot() from None  # an all-smi exporter answers any path with text
        if not isinstance(obj, dict):
            raise ScrapeFailed("invalid /snapshot (not a JSON object)")
        return _snapshot_rows(obj, normalise_host_id(host), self._wanted)

    async def _metrics(self, host: str) -> dict[str, list[Any]]:
        status, body = await self._get(host, f"{base_url(host)}/metrics")
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

    async def _get(self, host: str, url: str) -> tuple[int, bytes]:
        """GET with a whole-request deadline (a trickling peer cannot stretch it) and a cap
        on the body, read in pieces so a 100 MB answer never sits in memory."""
        limit = self.config.max_body_bytes
        try:
            with anyio.fail_after(self.config.request_timeout_s):
                client = self._client(host)
                async with client.stream("GET", url, headers=self._headers) as response:
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit:
                        raise ScrapeFailed(f"body of {int(declared)} bytes over the {limit} cap")
                    encoding = response.headers.get("content-encoding", "identity").lower()
                    if encoding not in ("", "identity"):
                        raise ScrapeFailed(f"refused a {encoding}-encoded body (asked identity)")
                    chunks, size = [], 0
                    async for chunk in response.aiter_raw():
                        size += len(chunk)
                        if size > limit:
                            raise ScrapeFailed(f"body over the {limit} byte cap")
                        chunks.append(chunk)
                    return response.status_code, b"".join(chunks)
        except TimeoutError:
            raise ScrapeFailed(f"timeout after {self.config.request_timeout_s:g}s") from None
        except httpx.ConnectError:
            raise ScrapeFailed("connection refused") from None
        except httpx.HTTPError as err:
            raise ScrapeFailed(f"HTTP error ({type(err).__name__})") from None

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
