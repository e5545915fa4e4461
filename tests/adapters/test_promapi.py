"""The Prometheus query API client against loopback servers that answer as a Prometheus
would, and as one that fails would: each failure is one line naming the server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from urllib.parse import parse_qs

import anyio
import orjson
import pytest

from allsmi.adapters.network import promapi
from allsmi.adapters.network.promapi import PromApi
from allsmi.adapters.network.server import Handler, Limits, Request, Response, Stream, serve_tcp
from allsmi.adapters.prometheus.history import RangeSeries
from allsmi.domain.errors import SourceUnavailable

JSON = "application/json"


def answer(status: int, body: object) -> Handler:
    async def handle(request: Request) -> Response | Stream:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        return Response(status, data, JSON)

    return handle


@asynccontextmanager
async def prometheus(handler: Handler) -> AsyncIterator[str]:
    async with anyio.create_task_group() as tg:
        port: int = await tg.start(partial(serve_tcp, "127.0.0.1", 0, handler, Limits(), None))
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            tg.cancel_scope.cancel()


def failure(handler: Handler, call: Callable[[PromApi], Awaitable[object]]) -> str:
    async def main() -> str:
        async with prometheus(handler) as base:
            api = PromApi(base, None)
            try:
                with pytest.raises(SourceUnavailable) as caught:
                    await call(api)
            finally:
                await api.aclose()
            return str(caught.value).replace(base, "BASE")

    return anyio.run(main)


def query(api: PromApi) -> Awaitable[object]:
    return api.query_range('{__name__=~"all_smi_.+"}', 1000, 61_000, 15_000)


def test_a_matrix_answer_becomes_series_in_ms_and_the_request_says_seconds() -> None:
    asked: list[dict[str, list[str]]] = []

    async def handle(request: Request) -> Response | Stream:
        asked.append(parse_qs(request.query))
        result = [{"metric": {"__name__": "up", "instance": "a:1"}, "values": [[1.5, "1"]]}]
        body = {"status": "success", "data": {"resultType": "matrix", "result": result}}
        return Response(200, orjson.dumps(body), JSON)

    async def main() -> None:
        async with prometheus(handle) as base:
            api = PromApi(base, "s3cret")
            found = await query(api)
            await api.aclose()
        assert found == [RangeSeries({"__name__": "up", "instance": "a:1"}, [[1.5, "1"]])]
        assert found[0].value_at(1500) == "1"

    anyio.run(main)
    assert asked == [
        {
            "query": ['{__name__=~"all_smi_.+"}'],
            "start": ["1.000"],
            "end": ["61.000"],
            "step": ["15.000"],
        }
    ]


def test_a_refused_query_says_the_servers_reason() -> None:
    body = {"status": "error", "errorType": "bad_data", "error": 'parse error: unexpected "}"'}
    line = failure(answer(400, body), query)
    assert line == (
        'Prometheus BASE: /api/v1/query_range refused (HTTP 400): parse error: unexpected "}"'
    )


def test_a_query_refused_for_size_says_so() -> None:
    reason = "exceeded maximum resolution of 11,000 points per timeseries"
    line = failure(answer(400, {"status": "error", "error": reason}), query)
    assert line.endswith(reason)


def test_an_answer_that_is_no_json_is_its_http_status() -> None:
    assert failure(answer(503, b"<html>busy</html>"), query) == (
        "Prometheus BASE: HTTP 503 on /api/v1/query_range"
    )


def test_a_404_asks_whether_this_is_a_prometheus_at_all() -> None:
    assert failure(answer(404, b"404 page not found"), query) == (
        "Prometheus BASE: HTTP 404 on /api/v1/query_range (is this a Prometheus query API?)"
    )


def test_json_that_is_not_the_apis_is_said() -> None:
    body = {"status": "success", "data": {"resultType": "vector", "result": []}}
    assert failure(answer(200, body), query) == (
        "Prometheus BASE: query_range: not the query API's answer"
    )
    results: list[object] = [[{"x": 1}], [{"metric": {"a": 1}, "values": []}], {"metric": {}}]
    for result in [*results, [[]]]:
        odd = {"status": "success", "data": {"resultType": "matrix", "result": result}}
        assert failure(answer(200, odd), query).endswith("not the query API's answer")


def test_a_server_that_never_answers_is_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(promapi, "REQUEST_TIMEOUT_S", 0.3)

    async def hang(request: Request) -> Response | Stream:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    assert failure(hang, query) == "Prometheus BASE: no answer within 0.3 s"


def test_nobody_listening_is_connection_refused() -> None:
    async def main() -> str:
        async with prometheus(answer(200, {})) as base:
            pass  # closed again: nothing listens there now
        api = PromApi(base, None)
        with pytest.raises(SourceUnavailable) as caught:
            await query(api)
        await api.aclose()
        return str(caught.value).replace(base, "BASE")

    assert anyio.run(main) == "Prometheus BASE: connection refused"


def test_targets_give_intervals_and_label_names_and_a_server_without_them_none() -> None:
    targets = {
        "status": "success",
        "data": {
            "activeTargets": [
                {"labels": {"instance": "a:1", "job": "gpu", "rack": "r1"}, "scrapeInterval": "5s"},
                {"labels": {"instance": "a:1", "job": "node"}, "scrapeInterval": "1m"},
                {"labels": {"job": "x"}, "scrapeInterval": "5s"},  # no instance: skipped
                {"labels": {"instance": "b:1"}, "scrapeInterval": "soon"},  # skipped
            ]
        },
    }

    async def main() -> tuple[dict[str, promapi.Target], dict[str, promapi.Target]]:
        async with prometheus(answer(200, targets)) as base:
            api = PromApi(base, None)
            found = await api.targets()
            await api.aclose()
        async with prometheus(answer(404, {"status": "error", "error": "no"})) as base:
            api = PromApi(base, None)
            none = await api.targets()
            await api.aclose()
        return found, none

    found, none = anyio.run(main)
    assert found == {"a:1": promapi.Target(5000, frozenset({"job", "rack"}))}
    assert none == {}


def test_a_query_a_run_keeps_only_a_few_requests_built() -> None:
    """A replay asks for ever new queries: the client's reuse of built requests is bounded."""
    body = {"status": "success", "data": {"resultType": "matrix", "result": []}}

    async def main() -> int:
        async with prometheus(answer(200, body)) as base:
            api = PromApi(base, None)
            for step in range(1, 200):
                await api.query_range("up", 0, 60_000, step * 1000)
            await api.aclose()
        return len(api._origin._requests)

    assert anyio.run(main) <= 16
