"""The HTTP/1.1 server core over real loopback sockets: httpx as the well-behaved client, raw
sockets (answers read back with an h11 client) for malformed, slow and hostile ones."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial

import anyio
import anyio.abc
import attrs
import h11
import httpx
import pytest

from allsmi.adapters.network.server import (
    DEFAULT_LIMITS,
    Handler,
    Limits,
    Request,
    Response,
    Stream,
    _Slots,
    serve_tcp,
)

WAIT_S = 5.0  # upper bound for anything that should happen at once; never reached when passing
QUICK = Limits(header_timeout_s=0.3, keep_alive_timeout_s=0.3, write_timeout_s=0.3)


async def app(request: Request) -> Response | Stream:
    if request.path == "/":
        return Response(200, b"hello\n", headers=(("x-answer", "42"),))
    if request.path == "/boom":
        raise RuntimeError("handler bug")
    return Response(404, b"no such page\n")


@asynccontextmanager
async def serving(
    handler: Handler = app, limits: Limits = DEFAULT_LIMITS, token: str | None = None
) -> AsyncIterator[int]:
    async with anyio.create_task_group() as tg:
        port: int = await tg.start(partial(serve_tcp, "127.0.0.1", 0, handler, limits, token))
        try:
            yield port
        finally:
            tg.cancel_scope.cancel()


def client(port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=WAIT_S)


def run(test: Callable[[], Awaitable[None]]) -> None:
    anyio.run(test)


@attrs.frozen
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class Raw:
    """A raw client: writes bytes exactly as given, reads the answers with an h11 client."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)

    def expect(self, method: str = "GET") -> None:
        """Tell our h11 side that a ``method`` request went out, so it can read the answer."""
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        self.conn.send(h11.Request(method=method, target="/", headers=[("host", "t")]))
        self.conn.send(h11.EndOfMessage())

    async def send(self, data: bytes, method: str = "GET") -> None:
        self.expect(method)
        await self.stream.send(data)

    async def read(self) -> Reply:
        status, headers, body = 0, {}, bytearray()
        with anyio.fail_after(WAIT_S):
            while True:
                event = self.conn.next_event()
                if event is h11.NEED_DATA:
                    self.conn.receive_data(await receive(self.stream))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    headers = {k.decode(): v.decode() for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    return Reply(status, headers, bytes(body))
                else:
                    raise AssertionError(f"unexpected {event!r}")

    async def request(self, data: bytes, method: str = "GET") -> Reply:
        await self.send(data, method)
        return await self.read()


async def receive(stream: anyio.abc.SocketStream) -> bytes:
    try:
        return await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return b""


async def wait_closed(stream: anyio.abc.SocketStream) -> None:
    """Read until the server ends the connection (fails the test after WAIT_S)."""
    with anyio.fail_after(WAIT_S):
        while await receive(stream):
            pass


def get(path: str = "/", *extra: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: t", *extra, "", ""]
    return "\r\n".join(lines).encode()


def test_get_answers_body_with_content_length_and_server_header() -> None:
    async def main() -> None:
        async with serving() as port, client(port) as http:
            reply = await http.get("/")
        assert reply.status_code == 200
        assert reply.content == b"hello\n"
        assert reply.headers["content-length"] == "6"
        assert reply.headers["content-type"] == "text/plain; charset=utf-8"
        assert reply.headers["server"] == "allsmi"
        assert reply.headers["x-answer"] == "42"

    run(main)


def test_handler_sees_path_query_and_lower_case_headers() -> None:
    seen: list[Request] = []

    async def record(request: Request) -> Response:
        seen.append(request)
        return Response(204)

    async def main() -> None:
        async with serving(record) as port, client(port) as http:
            await http.get("/metrics?x=1&y=%20", headers={"X-Mixed-Case": "Value"})

    run(main)
    [request] = seen
    assert (request.method, request.path, request.query) == ("GET", "/metrics", "x=1&y=%20")
    assert ("x-mixed-case", "Value") in request.headers
    assert request.header("X-MIXED-CASE") == "Value"
    assert request.header("absent") is None


def test_two_requests_share_one_keep_alive_connection() -> None:
    async def main() -> None:
        async with serving() as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
            raw = Raw(stream)
            first = await raw.request(get("/"))
            second = await raw.request(get("/missing"))
            assert (first.status, first.body) == (200, b"hello\n")
            assert second.status == 404
            assert "connection" not in second.headers

    run(main)


def test_pipelined_requests_are_answered_in_order() -> None:
    async def main() -> None:
        async with serving() as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
            raw = Raw(stream)
            await raw.send(get("/missing") + get("/"))
            assert (await raw.read()).status == 404
            raw.expect()  # the second request went out with the first
            assert (await raw.read()).status == 200

    run(main)


def test_connection_close_is_honoured() -> None:
    async def main() -> None:
        async with serving() as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
            reply = await Raw(stream).request(get("/", "Connection: close"))
            assert reply.status == 200
            assert reply.headers["connection"] == "close"
            await wait_closed(stream)

    run(main)


def test_head_sends_get_headers_without_body() -> None:
    async def main() -> None:
        async with serving() as port, client(port) as http:
            reply = await http.head("/")
            after = await http.get("/")  # the connection is still in step
        assert reply.status_code == 200
        assert reply.headers["content-length"] == "6"
        assert reply.content == b""
        assert after.content == b"hello\n"

    run(main)


def test_other_methods_get_405_with_allow_and_connection_stays_usable() -> None:
    async def main() -> None:
        async with serving() as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
            raw = Raw(stream)
            post = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
            refused = await raw.request(post, method="POST")
            assert refused.status == 405
            assert refused.headers["allow"] == "GET, HEAD"
            assert (await raw.request(get("/"))).status == 200  # the body was read and dropped

    run(main)


def test_handler_status_is_passed_through() -> None:
    async def main() -> None:
        async with serving() as port, client(port) as http:
            reply = await http.get("/missing")
        assert (reply.status_code, reply.content) == (404, b"no such page\n")

    run(main)


@pytest.mark.parametrize("size", [17_000, 40_000])  # caught by our head count, by h11's buffer
def test_oversized_head_gets_431(size: int) -> None:
    async def main() -> None:
        async with serving() as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
            reply = await Raw(stream).request(get("/", "X-Big: " + "a" * size))
            assert reply.status == 431
            assert reply.headers["connection"] == "close"
            await wait_closed(stream)

    run(main)


def test_too_many_headers_get_431() -> None:
    async def main() -> None:
        many = [f"X-H{i}: v" for i in range(DEFAULT_LIMITS.max_headers)]  # + Host = one too many
        async with serving() as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
            assert (await Raw(stream).request(get("/", *many))).status == 431

    run(main)


@pytest.mark.parametrize(
    "data",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
        b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n",
        b"GET /\xc3\xa9 HTTP/1.1\r\nHost: t\r\n\r\n",  # a target that is not ASCII
    ],
)
def test_malformed_request_gets_400_and_close(data: bytes) -> None:
    async def main() -> None:
        async with serving() as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
            reply = await Raw(stream).request(data)
            assert reply.status == 400
            await wait_closed(stream)

    run(main)


CHUNK_4K = b"1000\r\n" + b"x" * 0x1000 + b"\r\n"


@pytest.mark.parametrize(
    "data",
    [
        get("/", "Content-Length: 100000"),  # refused before it is read
        get("/", "Transfer-Encoding: chunked") + CHUNK_4K * 5,  # counted as it arrives
    ],
)
def test_body_over_the_limit_gets_413(data: bytes) -> None:
    async def main() -> None:
        async with serving() as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
            reply = await Raw(stream).request(data)
            assert reply.status == 413
            await wait_closed(stream)

    run(main)


def test_token_is_required_when_set() -> None:
    async def main() -> None:
        async with serving(token="s3cret") as port, client(port) as http:
            missing = await http.get("/")
            wrong = await http.get("/", headers={"Authorization": "Bearer nope"})
            longer = await http.get("/", headers={"Authorization": "Bearer s3cret-and-more"})
            basic = await http.get("/", headers={"Authorization": "Basic s3cret"})
            right = await http.get("/", headers={"Authorization": "Bearer s3cret"})
            any_case = await http.get("/", headers={"Authorization": "bearer s3cret"})
        for refused in (missing, wrong, longer, basic):
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
            assert b"hello" not in refused.content
        assert (right.status_code, right.content) == (200, b"hello\n")
        assert any_case.status_code == 200

    run(main)


def test_handler_error_gives_500_and_the_server_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with serving() as port, client(port) as http:
            failed = await http.get("/boom")
            after = await http.get("/")
        assert failed.status_code == 500
        assert b"handler bug" not in failed.content  # no internals leak to the client
        assert after.status_code == 200

    run(main)
    assert "handler failed on GET /boom" in caplog.text
    assert "RuntimeError: handler bug" in caplog.text


def test_stream_chunks_reach_the_client_as_they_are_produced() -> None:
    go = anyio.Event()

    async def events() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"
        await go.wait()  # the client must see event 1 before event 2 exists
        yield b": keep-alive\n\n"
        yield b"data: 2\n\n"

    async def handler(request: Request) -> Stream:
        return Stream("text/event-stream", events(), headers=(("cache-control", "no-cache"),))

    async def main() -> None:
        async with (
            serving(handler) as port,
            client(port) as http,
            http.stream("GET", "/events") as reply,
        ):
            assert reply.headers["transfer-encoding"] == "chunked"
            assert reply.headers["content-type"] == "text/event-stream"
            assert reply.headers["cache-control"] == "no-cache"
            lines = reply.aiter_lines()
            with anyio.fail_after(WAIT_S):
                assert await anext(lines) == "data: 1"
            go.set()
            rest = [line async for line in lines]
        assert rest == ["", ": keep-alive", "", "data: 2", ""]

    run(main)


def test_head_of_a_stream_sends_headers_and_never_pulls_it() -> None:
    pulls = 0

    async def events() -> AsyncIterator[bytes]:
        nonlocal pulls
        pulls += 1
        yield b"data: 1\n\n"

    async def handler(request: Request) -> Stream:
        return Stream("text/event-stream", events())

    async def main() -> None:
        async with serving(handler) as port, client(port) as http:
            reply = await http.head("/events")
        assert reply.status_code == 200
        assert reply.content == b""

    run(main)
    assert pulls == 0


def test_a_subscriber_that_stops_reading_is_dropped_without_buffering() -> None:
    chunk = b"x" * 16 * 1024
    pulls = 0
    closed = anyio.Event()

    async def flood() -> AsyncIterator[bytes]:
        nonlocal pulls
        try:
            while True:
                pulls += 1
                yield chunk
        finally:
            closed.set()

    async def handler(request: Request) -> Response | Stream:
        if request.path == "/events":
            return Stream("text/event-stream", flood())
        return await app(request)

    async def main() -> None:
        async with serving(handler, QUICK) as port:
            # A plain blocking socket, outside the event loop, so nothing reads it; its receive
            # buffer is set before connecting, which fixes the window it advertises.
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as stuck:
                stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                stuck.connect(("127.0.0.1", port))  # loopback: completes at once
                stuck.sendall(get("/events"))  # a few bytes: never blocks
                with anyio.fail_after(WAIT_S):
                    await closed.wait()
            async with client(port) as http:
                assert (await http.get("/")).status_code == 200

    run(main)
    # Pulled only while writes completed: what the server's kernel send buffer takes (Linux
    # tcp_wmem, 4 MiB at most by default) plus one chunk; a producer that is not back-pressured
    # would be pulled without end while the connection lives.
    assert pulls * len(chunk) < 8 * 1024 * 1024


def test_connections_over_the_bound_wait_while_every_one_is_busy() -> None:
    limits = Limits(max_connections=2)
    go = anyio.Event()

    async def held(request: Request) -> Response | Stream:
        if request.path == "/held":
            await go.wait()  # busy: being handled, so never shed
            return Response(200, b"held\n")
        return await app(request)

    async def main() -> None:
        async with (
            serving(held, limits) as port,
            await anyio.connect_tcp("127.0.0.1", port) as first,
            await anyio.connect_tcp("127.0.0.1", port) as second,
        ):
            busy = [Raw(first), Raw(second)]
            for raw in busy:
                await raw.send(get("/held"))
            async with await anyio.connect_tcp("127.0.0.1", port) as third:
                waiting = Raw(third)
                await waiting.send(get("/"))  # connected, but no slot: no answer
                with anyio.move_on_after(0.3) as scope:
                    await waiting.read()
                assert scope.cancelled_caught
                go.set()  # both are answered, then idle: one is shed for the third
                assert [(await raw.read()).status for raw in busy] == [200, 200]
                assert (await waiting.read()).status == 200

    run(main)


def test_the_longest_idle_connection_is_shed_for_a_new_one() -> None:
    limits = Limits(max_connections=2)

    async def main() -> None:
        async with (
            serving(limits=limits) as port,
            await anyio.connect_tcp("127.0.0.1", port) as kept_alive,
        ):
            assert (await Raw(kept_alive).request(get("/"))).status == 200  # idle from now
            async with await anyio.connect_tcp("127.0.0.1", port) as silent:
                await anyio.sleep(0.1)  # idle since its accept: less long than kept_alive
                async with await anyio.connect_tcp("127.0.0.1", port) as newcomer:
                    assert (await Raw(newcomer).request(get("/"))).status == 200
                    await wait_closed(kept_alive)  # shed, unanswered
                    # Next the silent one goes: idle longer than the newcomer, since its reply.
                    async with await anyio.connect_tcp("127.0.0.1", port) as next_one:
                        assert (await Raw(next_one).request(get("/"))).status == 200
                        await wait_closed(silent)
                        assert (await Raw(newcomer).request(get("/"))).status == 200

    run(main)


def test_a_shed_slot_passes_to_the_newcomer_and_its_holder_never_waits_again() -> None:
    async def main() -> None:
        slots = _Slots(1)
        holder = await slots.take()
        with anyio.CancelScope() as waiting, holder.idle(waiting):
            newcomer = await slots.take()  # no free slot: the idle holder's
            assert waiting.cancel_called and holder.shed
        # A holder whose read won the race with its shedding serves on, but at its next wait
        # it is cancelled at once, and its release frees nothing: the slot is the newcomer's.
        with anyio.CancelScope() as again, holder.idle(again):
            assert again.cancel_called
        holder.release()
        assert (slots.free, slots.idle) == (0, {})
        newcomer.release()
        assert slots.free == 1

    run(main)


def test_a_lingering_connection_is_shed_for_a_new_one() -> None:
    limits = attrs.evolve(DEFAULT_LIMITS, max_connections=1)  # lingers up to 10 s

    async def main() -> None:
        async with (
            serving(limits=limits) as port,
            await anyio.connect_tcp("127.0.0.1", port) as closing,
        ):
            reply = await Raw(closing).request(get("/", "Connection: close"))
            assert reply.headers["connection"] == "close"  # answered; the server now lingers
            with anyio.fail_after(WAIT_S):  # well before the linger would end
                async with await anyio.connect_tcp("127.0.0.1", port) as newcomer:
                    assert (await Raw(newcomer).request(get("/"))).status == 200

    run(main)


def test_an_events_subscriber_is_never_shed() -> None:
    limits = Limits(max_connections=1)
    beats = 0

    async def events() -> AsyncIterator[bytes]:
        nonlocal beats
        for _ in range(int(2 * WAIT_S / 0.05)):  # bounded: ends the stream if never closed
            beats += 1
            yield b": keep-alive\n\n"
            await anyio.sleep(0.05)

    async def handler(request: Request) -> Response | Stream:
        if request.path == "/events":
            return Stream("text/event-stream", events())
        return await app(request)

    async def main() -> None:
        async with serving(handler, limits) as port:
            subscriber = await anyio.connect_tcp("127.0.0.1", port)
            await subscriber.send(get("/events"))
            async with await anyio.connect_tcp("127.0.0.1", port) as newcomer:
                waiting = Raw(newcomer)
                await waiting.send(get("/"))
                before = beats
                with anyio.move_on_after(0.5) as scope:
                    await waiting.read()
                assert scope.cancelled_caught  # the only slot stays the subscriber's
                assert beats > before  # and its stream goes on
                await subscriber.aclose()  # the next write fails: the slot frees
                assert (await waiting.read()).status == 200

    run(main)


def test_a_half_sent_head_is_closed_after_the_header_timeout() -> None:
    async def main() -> None:
        async with serving(limits=QUICK) as port, await anyio.connect_tcp("127.0.0.1", port) as s:
            start = anyio.current_time()
            await s.send(b"GET / HTTP/1.1\r\nHost: t\r\n")
            await wait_closed(s)
            assert anyio.current_time() - start >= QUICK.header_timeout_s * 0.9

    run(main)


def test_a_trickling_head_is_closed_at_its_deadline_not_reset_by_each_byte() -> None:
    async def main() -> None:
        async with serving(limits=QUICK) as port, await anyio.connect_tcp("127.0.0.1", port) as s:

            async def trickle() -> None:
                with contextlib.suppress(anyio.BrokenResourceError, OSError):  # once closed
                    for i in range(100):  # one header line every 0.05 s, for 5 s
                        await s.send(f"X-{i}: v\r\n".encode())
                        await anyio.sleep(0.05)

            start = anyio.current_time()
            await s.send(b"GET / HTTP/1.1\r\nHost: t\r\n")
            async with anyio.create_task_group() as tg:
                tg.start_soon(trickle)
                with anyio.fail_after(2.0):  # well before the trickle would end
                    await wait_closed(s)
                tg.cancel_scope.cancel()
            # not before the deadline either: the trickle is cut at it, not at its first line
            assert anyio.current_time() - start >= QUICK.header_timeout_s * 0.9

    run(main)


def test_a_later_head_gets_the_header_timeout_from_its_first_byte() -> None:
    limits = attrs.evolve(QUICK, keep_alive_timeout_s=2 * WAIT_S)

    async def main() -> None:
        async with serving(limits=limits) as port, await anyio.connect_tcp("127.0.0.1", port) as s:
            assert (await Raw(s).request(get("/"))).status == 200
            await anyio.sleep(2 * limits.header_timeout_s)  # idle: only the idle timeout runs
            start = anyio.current_time()
            await s.send(b"GET / HTTP/1.1\r\n")  # then stalls: closed long before idle ends
            await wait_closed(s)
            assert anyio.current_time() - start >= limits.header_timeout_s * 0.9

    run(main)


def test_a_refusal_survives_the_unread_rest_of_the_request() -> None:
    async def flood(s: anyio.abc.SocketStream) -> None:
        with contextlib.suppress(anyio.BrokenResourceError, OSError):  # once the server is gone
            await s.send(b"x" * 4 * 1024 * 1024)

    async def main() -> None:
        async with (
            serving() as port,
            await anyio.connect_tcp("127.0.0.1", port) as s,
            anyio.create_task_group() as tg,
        ):
            raw = Raw(s)
            await raw.send(get("/", "X-Big: " + "a" * 40_000))
            tg.start_soon(flood, s)  # more than the server will ever read
            await anyio.sleep(0.2)  # the server has answered and closed before we read
            assert (await raw.read()).status == 431
            tg.cancel_scope.cancel()

    run(main)


def test_a_silent_new_connection_is_closed_after_the_header_timeout() -> None:
    limits = attrs.evolve(QUICK, keep_alive_timeout_s=2 * WAIT_S)  # not the idle timeout

    async def main() -> None:
        async with serving(limits=limits) as port, await anyio.connect_tcp("127.0.0.1", port) as s:
            start = anyio.current_time()
            await wait_closed(s)  # within WAIT_S, so before keep_alive_timeout_s
            assert anyio.current_time() - start >= limits.header_timeout_s * 0.9

    run(main)


def test_an_idle_keep_alive_connection_is_closed() -> None:
    async def main() -> None:
        async with serving(limits=QUICK) as port, await anyio.connect_tcp("127.0.0.1", port) as s:
            assert (await Raw(s).request(get("/"))).status == 200
            start = anyio.current_time()
            await wait_closed(s)
            assert anyio.current_time() - start >= QUICK.keep_alive_timeout_s * 0.9

    run(main)


def test_cancelling_the_server_closes_listener_connections_and_streams() -> None:
    started, closed = anyio.Event(), anyio.Event()

    async def forever() -> AsyncIterator[bytes]:
        try:
            started.set()
            yield b": hello\n\n"
            await anyio.sleep_forever()
        finally:
            closed.set()

    async def handler(request: Request) -> Stream:
        return Stream("text/event-stream", forever())

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            port: int = await tg.start(partial(serve_tcp, "127.0.0.1", 0, handler))
            stream = await anyio.connect_tcp("127.0.0.1", port)
            await stream.send(get("/events"))
            with anyio.fail_after(WAIT_S):
                await started.wait()
            tg.cancel_scope.cancel()
        assert closed.is_set()
        async with stream:
            await wait_closed(stream)
        with pytest.raises(OSError):
            await anyio.connect_tcp("127.0.0.1", port)

    run(main)


def test_values_reject_what_the_server_owns() -> None:
    with pytest.raises(ValueError, match="Content-Length"):
        Response(200, b"x", headers=(("Content-Length", "1"),))
    with pytest.raises(ValueError, match="max_connections"):
        Limits(max_connections=0)
    with pytest.raises(ValueError, match="status"):
        Response(101)
