"""Idle connections never starve requests: the server core under floods of silent clients,
over real loopback sockets (docs/architecture.md §3.2). The server runs with the exporter's
limits (256 connections, a 10 s header timeout); before idle connections were shed, every
request here waited in the listen backlog until a silent client's header timeout freed a
slot (9-30 s)."""

from __future__ import annotations

import contextlib

import anyio

from allsmi.app.api import API_LIMITS

from .floods import (
    FLOOD,
    assert_all_answered,
    open_file_limit,
    reconnect_when_closed,
    requests_during,
    silent_flood,
)
from .test_httpserver import serving

TEST_S = 120.0  # the whole test, flood included: a hang fails instead of stalling the suite


def test_requests_are_answered_while_2000_silent_connections_are_open() -> None:
    async def main() -> None:
        with anyio.fail_after(TEST_S), contextlib.ExitStack() as held:
            async with serving(limits=API_LIMITS) as port:
                await silent_flood(port, FLOOD, held)
                answers = await requests_during(port, "/")
        assert_all_answered(answers)

    with open_file_limit():
        anyio.run(main)


def test_requests_are_answered_while_256_silent_clients_reconnect_when_closed() -> None:
    async def main() -> None:
        with anyio.fail_after(TEST_S):
            async with serving(limits=API_LIMITS) as port, anyio.create_task_group() as flood:
                for _ in range(API_LIMITS.max_connections):  # every slot
                    flood.start_soon(reconnect_when_closed, port)
                await anyio.sleep(0.5)  # all connected and held
                answers = await requests_during(port, "/")
                flood.cancel_scope.cancel()
        assert_all_answered(answers)

    with open_file_limit():
        anyio.run(main)
