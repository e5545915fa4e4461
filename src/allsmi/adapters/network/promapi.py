"""A Prometheus server's HTTP query API, as far as replaying its history needs it
(docs/architecture.md §3.2): the series a selector names, ``query_range``, and the targets'
scrape intervals. Prometheus, Thanos, Mimir and VictoriaMetrics all answer it.

Rules this module obeys:
- One kept-alive connection (:class:`~allsmi.adapters.network.client.HttpOrigin`), one
  request at a time, each within :data:`REQUEST_TIMEOUT_S` and an answer of at most
  :data:`MAX_ANSWER_BYTES`; a bearer token is sent when given.
- Every failure is one :class:`~allsmi.domain.errors.SourceUnavailable` line naming the
  server: unreachable, an HTTP status with the server's own ``error`` text (a bad selector,
  a query refused for size), an answer that is not the API's JSON.
- Times on the wire are seconds (fractions allowed); here they are ms.
"""

from __future__ import annotations

import ssl
from typing import Any, Final, NamedTuple
from urllib.parse import urlencode

import anyio
import orjson

from allsmi.adapters.network.client import HttpFailed, HttpOrigin
from allsmi.adapters.prometheus.history import RangeSeries
from allsmi.domain.errors import SourceUnavailable, UsageError
from allsmi.domain.parse import parse_duration_ms

REQUEST_TIMEOUT_S: Final = 30.0
MAX_ANSWER_BYTES: Final = 256 * 1024 * 1024
MAX_POINTS_PER_SERIES: Final = 11_000  # Prometheus refuses a query_range past it


class Target(NamedTuple):
    interval_ms: int
    labels: frozenset[str]  # the names of the labels its series get from the target


class PromApi:
    """The query API at ``base`` (``http://prom:9090``, or with a path prefix)."""

    def __init__(
        self,
        base: str,
        token: str | None,
        tls: ssl.SSLContext | None = None,
        *,
        timeout_s: float | None = None,
    ) -> None:
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self.base = base.rstrip("/")
        try:
            self._origin = HttpOrigin(base, headers, MAX_ANSWER_BYTES, tls)
        except HttpFailed as err:
            raise SourceUnavailable(f"Prometheus {base}: {err}") from None
        self.requests = 0  # answered so far (tests and benchmarks read it)
        self.timeout_s = REQUEST_TIMEOUT_S if timeout_s is None else timeout_s

    async def aclose(self) -> None:
        await self._origin.aclose()

    async def series(self, selector: str, start_ms: int, end_ms: int) -> list[dict[str, str]]:
        """The label sets of the series ``selector`` names between the two times."""
        data = await self._get(
            "/api/v1/series",
            [("match[]", selector), ("start", _s(start_ms)), ("end", _s(end_ms))],
        )
        if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
            raise self._odd("series")
        return [{str(k): str(v) for k, v in x.items()} for x in data]

    async def query_range(
        self, query: str, start_ms: int, end_ms: int, step_ms: int
    ) -> list[RangeSeries]:
        """``query``'s value at ``start + k × step`` up to ``end``, per series."""
        params = [("query", query), ("start", _s(start_ms)), ("end", _s(end_ms))]
        data = await self._get("/api/v1/query_range", [*params, ("step", _s(step_ms))])
        if not isinstance(data, dict) or data.get("resultType") != "matrix":
            raise self._odd("query_range")
        found: list[RangeSeries] = []
        result = data.get("result") or []
        if type(result) is not list:
            raise self._odd("query_range")
        for item in result:
            # labels must be strings; points are left as parsed (a point not [number,
            # "text"] is no value where it is read: history.RangeSeries.value_at)
            labels = item.get("metric") if type(item) is dict else None
            points = item.get("values") if type(item) is dict else None
            if type(labels) is not dict or type(points) is not list:
                raise self._odd("query_range")
            if not all(type(v) is str for v in labels.values()):
                raise self._odd("query_range")
            found.append(RangeSeries(labels, points))
        return found

    async def targets(self) -> dict[str, Target]:
        """The active targets by their ``instance`` label: scrape interval and the names of
        the labels Prometheus gives their series; empty when the server does not say (Thanos,
        Mimir: no targets of their own)."""
        try:
            data = await self._get("/api/v1/targets", [("state", "active")])
        except SourceUnavailable:
            return {}
        listed = data.get("activeTargets") if isinstance(data, dict) else None
        found: dict[str, Target] = {}
        for target in listed if isinstance(listed, list) else []:
            try:
                labels = target["labels"]
                instance = str(labels["instance"])
                interval = parse_duration_ms(str(target["scrapeInterval"]))
                names = frozenset(str(k) for k in labels) - {"instance"}
            except (KeyError, TypeError, ValueError, AttributeError, UsageError):
                continue
            if interval > 0:
                known = found.get(instance)
                if known is not None:
                    interval = min(interval, known.interval_ms)
                    names |= known.labels
                found[instance] = Target(interval, names)
        return found

    # ----------------------------------------------------------------- one request

    async def _get(self, path: str, params: list[tuple[str, str]]) -> Any:
        target = f"{path}?{urlencode(params)}"
        try:
            with anyio.fail_after(self.timeout_s):
                reply = await self._origin.get(target)
        except TimeoutError:
            await self._origin.aclose()
            raise SourceUnavailable(
                f"Prometheus {self.base}: no answer within {self.timeout_s:g} s"
            ) from None
        except HttpFailed as err:
            raise SourceUnavailable(f"Prometheus {self.base}: {err}") from None
        try:
            body = orjson.loads(reply.body)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            if reply.status != 200:
                hint = " (is this a Prometheus query API?)" if reply.status == 404 else ""
                raise SourceUnavailable(
                    f"Prometheus {self.base}: HTTP {reply.status} on {path}{hint}"
                )
            raise self._odd(path)
        if body.get("status") != "success":
            reason = body.get("error") or body.get("errorType") or "no reason given"
            raise SourceUnavailable(
                f"Prometheus {self.base}: {path} refused (HTTP {reply.status}): {reason}"
            )
        self.requests += 1
        return body.get("data")

    def _odd(self, what: str) -> SourceUnavailable:
        return SourceUnavailable(f"Prometheus {self.base}: {what}: not the query API's answer")


def _s(ms: int) -> str:
    """ms as the API's seconds."""
    return f"{ms / 1000:.3f}"
