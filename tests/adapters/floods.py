"""Idle-connection floods over real loopback sockets, shared by the HTTP server tests and the
exporter's end-to-end tests: silent clients that connect and never send a byte, clients that
reconnect as soon as the server closes them, and a timed request on a fresh connection.

Every loop here is bounded in count, and every wait in time.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import socket
from collections.abc import Iterator
from typing import Final

import anyio
import anyio.abc
import h11
import pytest

FLOOD: Final = 2000  # silent connections, far more than the 256 a server holds at once
RECONNECTING: Final = 256  # exactly enough to hold every one of the exporter's slots
REQUESTS: Final = 50
# Answered well before the 10 s header timeout that used to be the only way a silent client's
# slot came free (requests waited 9-30 s); generous, for a shared and noisy machine.
ANSWER_S: Final = 5.0
CONNECT_S: Final = 5.0
MAX_RECONNECTS: Final = 2000  # per client: the flood's work is bounded whatever the server does
# File descriptors a flood test needs in one process: the flood, the server's side of what it
# holds (in-process servers), the requests, and the interpreter's own.
NEEDED_FILES: Final = FLOOD + 2 * RECONNECTING + 256
_LAST: Final = (h11.EndOfMessage, h11.ConnectionClosed)  # nothing more comes after either


@contextlib.contextmanager
def open_file_limit(needed: int = NEEDED_FILES) -> Iterator[None]:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit for the block, then put it back;
    skip the test when even the hard limit is below ``needed``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    infinite = resource.RLIM_INFINITY
    if hard != infinite and hard < needed:
        pytest.skip(f"needs {needed} open files; RLIMIT_NOFILE's hard limit is {hard}")
    if soft == infinite or soft >= needed:
        yield
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed if hard == infinite else hard, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def connect(port: int) -> socket.socket:
    """A non-blocking socket connected to ``127.0.0.1:port``. On loopback the kernel completes
    the handshake from the listen backlog, whether or not the server ever accepts it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        code = sock.connect_ex(("127.0.0.1", port))
        if code == errno.EINPROGRESS:
            with anyio.fail_after(CONNECT_S):
                await anyio.wait_writable(sock)
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise OSError(code, os.strerror(code))
    except BaseException:
        sock.close()
        raise
    return sock


async def silent_flood(port: int, count: int, held: contextlib.ExitStack) -> None:
    """``count`` connections that never send a byte, closed when ``held`` closes."""
    for _ in range(count):
        held.enter_context(await connect(port))


async def reconnect_when_closed(port: int) -> None:
    """A silent client that reconnects as soon as the server closes it (MAX_RECONNECTS times
    at most); cancel it to stop it."""
    for _ in range(MAX_RECONNECTS):
        with await connect(port) as sock:
            while True:  # it never sends, so the only thing to read is the end
                await anyio.wait_readable(sock)
                try:
                    if not sock.recv(4096):
                        break
                except BlockingIOError:
                    continue
                except OSError:  # reset
                    break


async def timed_get(port: int, path: str) -> tuple[int, float]:
    """``GET path`` on a fresh connection: (status, seconds to the whole answer); status 0
    when the answer did not arrive whole within ANSWER_S."""
    started = anyio.current_time()
    conn = h11.Connection(h11.CLIENT)
    status = 0
    with anyio.move_on_after(ANSWER_S):
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            request = h11.Request(method="GET", target=path, headers=[("host", "t")])
            try:
                await stream.send(conn.send(request) + conn.send(h11.EndOfMessage()))
                while not isinstance(event := conn.next_event(), _LAST):
                    if event is h11.NEED_DATA:
                        conn.receive_data(await _receive(stream))
                    elif isinstance(event, h11.Response):
                        status = event.status_code
            except (h11.RemoteProtocolError, anyio.BrokenResourceError):  # closed unanswered
                pass
    answered = conn.their_state is h11.DONE
    return (status if answered else 0), anyio.current_time() - started


async def _receive(stream: anyio.abc.ByteStream) -> bytes:
    try:
        return await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return b""


async def requests_during(port: int, path: str) -> list[tuple[int, float]]:
    """REQUESTS sequential ``GET path``, each on a fresh connection; stops at the first one
    that is not answered 200 within ANSWER_S (the rest would wait as long)."""
    answers = []
    for _ in range(REQUESTS):
        status, seconds = await timed_get(port, path)
        answers.append((status, seconds))
        if status != 200:
            break
    return answers


def assert_all_answered(answers: list[tuple[int, float]]) -> None:
    statuses = [status for status, _ in answers]
    worst = max(seconds for _, seconds in answers)
    assert statuses == [200] * REQUESTS, f"answers {statuses}, the slowest after {worst:.1f} s"
    assert worst < ANSWER_S
