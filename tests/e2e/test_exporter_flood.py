"""``allsmi api`` keeps answering scrapes while idle clients hold its connections
(docs/architecture.md §3.2): 2000 silent connections, or 256 silent clients that
reconnect as soon as they are closed, and 50 ``/metrics`` scrapes on fresh connections,
each answered 200 within seconds. Before idle connections were shed, a scrape waited for a
silent client's 10 s header timeout."""

from __future__ import annotations

import contextlib

import anyio

from ..adapters.floods import (
    FLOOD,
    RECONNECTING,
    assert_all_answered,
    open_file_limit,
    reconnect_when_closed,
    requests_during,
    silent_flood,
)
from .test_exporter import start_api, stop

TEST_S = 120.0  # the flood and the scrapes together


def test_scrapes_are_answered_while_2000_silent_connections_are_open() -> None:
    async def main(port: int) -> list[tuple[int, float]]:
        with anyio.fail_after(TEST_S), contextlib.ExitStack() as held:
            await silent_flood(port, FLOOD, held)
            return await requests_during(port, "/metrics")

    with open_file_limit():
        api, port = start_api("-i", "1")
        answers = anyio.run(main, port)
    assert_all_answered(answers)
    assert stop(api)[0] == 0


def test_scrapes_are_answered_while_256_silent_clients_reconnect_when_closed() -> None:
    async def main(port: int) -> list[tuple[int, float]]:
        with anyio.fail_after(TEST_S):
            async with anyio.create_task_group() as flood:
                for _ in range(RECONNECTING):
                    flood.start_soon(reconnect_when_closed, port)
                await anyio.sleep(0.5)  # all connected and held
                answers = await requests_during(port, "/metrics")
                flood.cancel_scope.cancel()
        return answers

    with open_file_limit():
        api, port = start_api("-i", "1")
        answers = anyio.run(main, port)
    assert_all_answered(answers)
    assert stop(api)[0] == 0
