"""The scraper's HTTP client against scripted peers on loopback: each test starts a raw anyio
TCP listener whose handler reads the request bytes and answers with exactly the bytes the
test chose (well-formed, closing, truncated, garbage), and counts the connections it got."""

from __future__ import annotations

import math
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final

import anyio
import anyio.abc
import attrs
import pytest
import trustme
from anyio.streams.tls import TLSListener

from allsmi.adapters.network.client import BodyTooLarge, HttpFailed, HttpOrigin

HEADERS: Final = {"Accept": "application/json", "Accept-Encoding": "identity"}
CAP: Final = 1024 * 1024


def ok(body: bytes, *extra: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n" % len(body)
    return head + b"".join(h + b"\r\n" for h in extra) + b"\r\n" + body


@attrs.define
class Peer:
    """What the scripted peer saw: connections accepted and the requests' heads, in order."""

    connections: int = 0
    requests: list[bytes] = attrs.field(factory=list)


Script = Callable[[anyio.abc.SocketStream, Peer, int], Awaitable[None]]


async def read_request(stream: anyio.abc.SocketStream, peer: Peer) -> bool:
    """One request head (GETs carry no body); False when the client closed instead."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            data += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return False
    peer.requests.append(data)
    return True


def answering(*replies: bytes, close_after: bool = False) -> Script:
    """Answer the requests of each connection with ``replies`` in turn (the last repeats)."""

    async def script(stream: anyio.abc.SocketStream, peer: Peer, number: int) -> None:
        served = 0
        while await read_request(stream, peer):
            await stream.send(replies[min(served, len(replies) - 1)])
            served += 1
            if close_after:
                return

    return script


@asynccontextmanager
async def peer_at(script: Script) -> AsyncIterator[tuple[str, Peer]]:
    peer = Peer()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def handle(stream: anyio.abc.SocketStream) -> None:
        peer.connections += 1
        async with stream:
            await script(stream, peer, peer.connections)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        try:
            yield f"http://127.0.0.1:{port}", peer
        finally:
            tg.cancel_scope.cancel()


def run(test: Callable[[], Awaitable[None]]) -> None:
    anyio.run(test)


def test_requests_reuse_one_kept_alive_connection() -> None:
    async def main() -> None:
        async with peer_at(answering(ok(b"{}"))) as (base, peer):
            origin = HttpOrigin(base, HEADERS, CAP)
            replies = [await origin.get("/snapshot") for _ in range(5)]
            await origin.aclose()
        assert [(r.status, r.body) for r in replies] == [(200, b"{}")] * 5
        assert peer.connections == 1
        assert len(peer.requests) == 5

    run(main)


def test_the_request_names_the_host_the_path_below_the_prefix_and_the_headers() -> None:
    async def main() -> None:
        async with peer_at(answering(ok(b"x"))) as (base, peer):
            origin = HttpOrigin(base + "/allsmi/", {"Authorization": "Bearer t0k"}, CAP)
            await origin.get("/metrics")
            await origin.aclose()
        head = peer.requests[0].decode()
        assert head.startswith("GET /allsmi/metrics HTTP/1.1\r\n")
        assert f"\r\nHost: {base.removeprefix('http://')}\r\n" in head
        assert "\r\nAuthorization: Bearer t0k\r\n" in head

    run(main)


def test_a_kept_alive_connection_the_peer_closed_is_replaced_once() -> None:
    async def main() -> None:
        # the peer answers with keep-alive framing, then hangs up while the client idles
        async with peer_at(answering(ok(b"1"), close_after=True)) as (base, peer):
            origin = HttpOrigin(base, HEADERS, CAP)
            first = await origin.get("/snapshot")
            await anyio.sleep(0.05)  # the peer's close reaches us
            second = await origin.get("/snapshot")
            await origin.aclose()
        assert (first.body, second.body) == (b"1", b"1")
        assert peer.connections == 2

    run(main)


def test_connection_close_opens_a_new_connection_for_the_next_request() -> None:
    async def main() -> None:
        reply = ok(b"bye", b"Connection: close")
        async with peer_at(answering(reply, close_after=True)) as (base, peer):
            origin = HttpOrigin(base, HEADERS, CAP)
            bodies = [(await origin.get("/snapshot")).body for _ in range(3)]
            await origin.aclose()
        assert bodies == [b"bye"] * 3
        assert peer.connections == 3

    run(main)


def test_a_body_delimited_by_the_close_is_read_whole() -> None:
    async def main() -> None:
        reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"a" * 100_000
        async with peer_at(answering(reply, close_after=True)) as (base, _):
            origin = HttpOrigin(base, HEADERS, CAP)
            got = await origin.get("/metrics")
            await origin.aclose()
        assert got.body == b"a" * 100_000

    run(main)


def test_a_chunked_body_is_reassembled() -> None:
    async def main() -> None:
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        reply = head + b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        async with peer_at(answering(reply)) as (base, peer):
            origin = HttpOrigin(base, HEADERS, CAP)
            bodies = [(await origin.get("/snapshot")).body for _ in range(2)]
            await origin.aclose()
        assert bodies == [b"abcde"] * 2
        assert peer.connections == 1

    run(main)


def test_an_informational_answer_is_skipped_for_the_final_one() -> None:
    async def main() -> None:
        reply = b"HTTP/1.1 103 Early Hints\r\n\r\n" + ok(b"final")
        async with peer_at(answering(reply)) as (base, _):
            origin = HttpOrigin(base, HEADERS, CAP)
            got = await origin.get("/snapshot")
            await origin.aclose()
        assert (got.status, got.body) == (200, b"final")

    run(main)


def test_a_fresh_connection_closed_before_an_answer_fails_without_a_retry() -> None:
    async def main() -> None:
        async def hang_up(stream: anyio.abc.SocketStream, peer: Peer, number: int) -> None:
            await read_request(stream, peer)

        async with peer_at(hang_up) as (base, peer):
            origin = HttpOrigin(base, HEADERS, CAP)
            with pytest.raises(HttpFailed, match="connection closed before an answer"):
                await origin.get("/snapshot")
        assert peer.connections == 1

    run(main)


def test_an_answer_cut_mid_body_fails() -> None:
    async def main() -> None:
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10
        async with peer_at(answering(reply, close_after=True)) as (base, _):
            origin = HttpOrigin(base, HEADERS, CAP)
            with pytest.raises(HttpFailed, match="bad HTTP answer"):
                await origin.get("/snapshot")

    run(main)


@pytest.mark.parametrize(
    "reply",
    [b"SSH-2.0-OpenSSH_9.2\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n", b"\x00\xff" * 40 + b"\r\n\r\n"],
)
def test_garbage_instead_of_http_fails_with_a_reason(reply: bytes) -> None:
    async def main() -> None:
        async with peer_at(answering(reply)) as (base, _):
            origin = HttpOrigin(base, HEADERS, CAP)
            with pytest.raises(HttpFailed, match="bad HTTP answer"):
                await origin.get("/snapshot")

    run(main)


def test_a_head_without_end_is_cut_at_its_limit() -> None:
    async def main() -> None:
        async def endless_head(stream: anyio.abc.SocketStream, peer: Peer, number: int) -> None:
            await read_request(stream, peer)
            await stream.send(b"HTTP/1.1 200 OK\r\n")
            with anyio.move_on_after(10):
                while True:
                    await stream.send(b"X-Filler: " + b"f" * 1000 + b"\r\n")

        async with peer_at(endless_head) as (base, _):
            origin = HttpOrigin(base, HEADERS, CAP)
            with pytest.raises(HttpFailed, match="bad HTTP answer"):
                await origin.get("/snapshot")

    run(main)


def test_bodies_over_the_cap_are_refused_declared_or_not() -> None:
    async def main() -> None:
        declared = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"
        streamed = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"y" * 5000
        for reply, reason in ((declared, "body of 5000 bytes"), (streamed, "body over the")):
            async with peer_at(answering(reply, close_after=True)) as (base, _):
                origin = HttpOrigin(base, HEADERS, 4096)
                with pytest.raises(BodyTooLarge, match=reason):
                    await origin.get("/snapshot")

    run(main)


def test_a_compressed_body_is_refused() -> None:
    async def main() -> None:
        async with peer_at(answering(ok(b"\x1f\x8b", b"Content-Encoding: gzip"))) as (base, _):
            origin = HttpOrigin(base, HEADERS, CAP)
            with pytest.raises(HttpFailed, match="refused a gzip-encoded body"):
                await origin.get("/snapshot")

    run(main)


def test_a_cancelled_request_leaves_no_half_used_connection() -> None:
    async def main() -> None:
        async def slow_then_fast(stream: anyio.abc.SocketStream, peer: Peer, number: int) -> None:
            while await read_request(stream, peer):
                if number == 1:
                    await anyio.sleep(math.inf)
                await stream.send(ok(b"late" if number == 1 else b"fresh"))

        async with peer_at(slow_then_fast) as (base, peer):
            origin = HttpOrigin(base, HEADERS, CAP)
            with anyio.move_on_after(0.2):
                await origin.get("/snapshot")
            got = await origin.get("/snapshot")
            await origin.aclose()
        assert got.body == b"fresh"
        assert peer.connections == 2

    run(main)


def test_a_closed_port_is_connection_refused() -> None:
    async def main() -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        await listener.aclose()
        origin = HttpOrigin(f"http://127.0.0.1:{port}", HEADERS, CAP)
        with pytest.raises(HttpFailed, match=r"^connection refused$"):
            await origin.get("/snapshot")

    run(main)


@pytest.mark.parametrize(
    "base", ["ftp://host:21", "http://", "http://host:99999", "host:9090", "http://[::1"]
)
def test_a_base_that_is_not_an_http_url_is_refused(base: str) -> None:
    with pytest.raises(HttpFailed):
        HttpOrigin(base, HEADERS, CAP)


def test_https_origins_verify_the_peer_and_reuse_the_tls_connection() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)

    async def main() -> None:
        peer = Peer()
        plain = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = plain.extra(anyio.abc.SocketAttribute.local_port)
        listener = TLSListener(plain, server_context, standard_compatible=False)
        script = answering(ok(b"secret"))

        async def handle(stream: anyio.abc.ByteStream) -> None:
            peer.connections += 1
            async with stream:
                await script(stream, peer, peer.connections)  # type: ignore[arg-type]

        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            base = f"https://127.0.0.1:{port}"
            origin = HttpOrigin(base, HEADERS, CAP, trusting)
            bodies = [(await origin.get("/snapshot")).body for _ in range(3)]
            await origin.aclose()
            untrusting = HttpOrigin(base, HEADERS, CAP, ssl.create_default_context())
            with pytest.raises(HttpFailed, match="TLS failed"):
                await untrusting.get("/snapshot")
            tg.cancel_scope.cancel()
        assert bodies == [b"secret"] * 3
        assert peer.connections == 1  # the three requests; the refused handshake never got in

    run(main)


def test_a_peer_that_hangs_up_during_the_tls_handshake_is_a_tls_failure() -> None:
    async def main() -> None:
        async def hang_up(stream: anyio.abc.SocketStream, peer: Peer, number: int) -> None:
            await stream.receive()  # the ClientHello, then close

        async with peer_at(hang_up) as (base, _):
            https = base.replace("http://", "https://")
            origin = HttpOrigin(https, HEADERS, CAP, ssl.create_default_context())
            with pytest.raises(HttpFailed, match="TLS failed"):
                await origin.get("/snapshot")

    run(main)


@pytest.mark.parametrize("path", ["/a b", "/n\u0153ud", "/x\r\nInjected: 1"])
def test_a_path_that_cannot_be_asked_for_fails_before_connecting(path: str) -> None:
    async def main() -> None:
        async with peer_at(answering(ok(b"x"))) as (base, peer):
            origin = HttpOrigin(base, HEADERS, CAP)
            with pytest.raises(HttpFailed, match="cannot ask for"):
                await origin.get(path)
        assert peer.connections == 0

    run(main)


def test_bytes_after_an_answer_are_never_read_as_the_next_answer() -> None:
    async def stray(stream: anyio.abc.SocketStream, peer: Peer, number: int) -> None:
        while await read_request(stream, peer):
            if number == 1:  # an answer with a second, unasked-for one glued to it
                await stream.send(ok(b"first") + ok(b"stray"))
            else:
                await stream.send(ok(b"fresh"))

    async def main() -> None:
        async with peer_at(stray) as (base, peer):
            origin = HttpOrigin(base, HEADERS, CAP)
            bodies = [(await origin.get("/snapshot")).body for _ in range(2)]
            await origin.aclose()
        assert bodies == [b"first", b"fresh"]
        assert peer.connections == 2

    run(main)


def test_an_answer_sent_while_the_connection_idled_is_not_taken_for_the_next() -> None:
    timeout_answer = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n"

    async def unsolicited(stream: anyio.abc.SocketStream, peer: Peer, number: int) -> None:
        while await read_request(stream, peer):
            await stream.send(ok(b"%d" % number))
            if number == 1:
                await stream.send(timeout_answer)  # a server giving up on the idle client

    async def main() -> None:
        async with peer_at(unsolicited) as (base, peer):
            origin = HttpOrigin(base, HEADERS, CAP)
            first = await origin.get("/snapshot")
            await anyio.sleep(0.1)  # the stray 408 arrives
            second = await origin.get("/snapshot")
            await origin.aclose()
        assert (first.status, first.body) == (200, b"1")
        assert (second.status, second.body) == (200, b"2")
        assert peer.connections == 2

    run(main)
