"""A lean HTTP/1.1 GET client for the scraper: h11 over one kept-alive anyio stream per host.

Why not httpx here: scraping a hundred hosts every second is the recorder's whole job, and
httpx's per-request machinery (request/response models, the connection pool, its locks and
traces) cost ~0.75 ms of CPU a request — most of a cycle's budget (bench/bench_cluster.py).
This client does one thing: ``GET`` a path from one origin, again and again, on one
connection. h11 does all the parsing and framing (docs/architecture.md §3.2: no hand-written
HTTP); this module only moves bytes and applies limits.

Rules this module obeys:
- One connection per :class:`HttpOrigin`, reused while both sides say keep-alive; a request
  is never pipelined (one in flight per origin).
- A kept-alive connection is reused only when it is clean: nothing came after the last
  answer, and nothing arrived (nor a close) while it idled — checked with a peek before each
  reuse. One the peer closed unseen is detected on reuse (EOF or a reset before any byte of
  the answer) and the request is sent once more on a fresh connection — safe, because GET is
  idempotent. Any other failure closes the connection; the next request opens a new one.
- The body is read in pieces (into one buffer when its length is declared) and capped
  (:class:`BodyTooLarge`), also when the peer declares a larger ``Content-Length``;
  compressed bodies are refused (we ask for identity).
- Time limits are the caller's: wrap :meth:`HttpOrigin.get` in ``anyio.fail_after``. A
  cancelled request leaves the connection closed (its state is unknown), never reused.
- Every failure is :class:`HttpFailed` (or a subclass) with a short reason, a URL or path it
  cannot ask for included; vendor exceptions (``OSError``, ``h11`` and anyio errors, TLS
  errors) never leave this module. Only cancellation passes through.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
from typing import Final
from urllib.parse import urlsplit

import anyio
import anyio.abc
import h11

__all__ = ["BodyTooLarge", "HttpFailed", "HttpOrigin", "Reply", "size_text"]

_READ_SIZE: Final = 65536
_MAX_HEAD_BYTES: Final = 64 * 1024  # the answer's status line and headers
_KEPT_REQUESTS: Final = 16  # requests built and kept for reuse, per origin


class HttpFailed(Exception):
    """A request failed; the message is the reason, fit for an ``errors`` entry."""


class BodyTooLarge(HttpFailed):
    pass


class Reply:
    __slots__ = ("body", "status")

    def __init__(self, status: int, body: bytes | bytearray) -> None:
        self.status = status
        self.body = body


def size_text(size: int) -> str:
    """A byte count as a cap is written: ``8 MiB``, ``256 KiB``, ``100000 bytes``."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


class _StaleConnection(Exception):
    """A reused connection was closed by the peer before it answered: try a fresh one."""


class HttpOrigin:
    """``scheme://host:port`` plus an optional path prefix; GETs paths below it.

    ``base`` is a URL (``http://dgx-01:9090``, ``https://[::1]:443/allsmi``); ``headers`` are
    sent with every request (after ``Host``). ``tls`` is the context for ``https`` origins.
    """

    def __init__(
        self,
        base: str,
        headers: dict[str, str],
        max_body_bytes: int,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        try:
            parts = urlsplit(base)
            port = parts.port
        except ValueError as err:
            raise HttpFailed(f"not a usable URL: {base!r} ({err})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HttpFailed(f"not an http(s) URL: {base!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = port if port is not None else (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        netloc = parts.netloc.rsplit("@", 1)[-1]
        self._headers = [("Host", netloc), *headers.items()]
        self._limit = max_body_bytes
        self._tls = tls
        self._requests: dict[str, h11.Request] = {}
        self._stream: anyio.abc.ByteStream | None = None
        self._conn: h11.Connection | None = None

    async def get(self, path: str) -> Reply:
        """``GET prefix + path``: the status and the whole (capped) body."""
        try:
            try:
                return await self._exchange(path)
            except _StaleConnection:
                await self.aclose()
                return await self._exchange(path)  # on a fresh connection: no third try
        except HttpFailed:
            await self.aclose()
            raise
        except Exception as err:  # the module's contract: nothing else leaves it
            await self.aclose()
            raise HttpFailed(f"HTTP error ({type(err).__name__})") from None
        except BaseException:
            await self.aclose()  # cancelled: this connection's state is unknown
            raise

    async def aclose(self) -> None:
        stream, self._stream, self._conn = self._stream, None, None
        if stream is not None:
            with anyio.CancelScope(shield=True):
                with contextlib.suppress(OSError, anyio.BrokenResourceError, ssl.SSLError):
                    await stream.aclose()

    # ----------------------------------------------------------------- one exchange

    async def _connect(self) -> tuple[anyio.abc.ByteStream, h11.Connection, bool]:
        """The connection to use, and whether it is a kept-alive one (which may have been
        closed by the peer unseen) rather than a fresh one."""
        if self._stream is not None and self._conn is not None:
            if not _peer_spoke(self._stream):
                return self._stream, self._conn, True
            await self.aclose()  # it closed, or sent something nobody asked for: start afresh
        try:
            if self.https:
                stream: anyio.abc.ByteStream = await anyio.connect_tcp(
                    self.host,
                    self.port,
                    tls=True,
                    ssl_context=self._tls or ssl.create_default_context(),
                    tls_hostname=self.host,
                    tls_standard_compatible=False,
                )
            else:
                stream = await anyio.connect_tcp(self.host, self.port)
        except ssl.SSLError as err:
            raise HttpFailed(f"TLS failed ({err.reason or type(err).__name__})") from None
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            raise HttpFailed("TLS failed (connection closed during the handshake)") from None
        except OSError as err:
            raise HttpFailed(_connect_failure(err)) from None
        self._stream = stream
        self._conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD_BYTES)
        return stream, self._conn, False

    async def _exchange(self, path: str) -> Reply:
        request = self._request(path)
        stream, conn, reused = await self._connect()
        # Nothing of the answer came: on a kept-alive connection the peer closed it unseen
        # (try once more, fresh); on a fresh one, that is the answer.
        nothing: Exception = (
            _StaleConnection() if reused else HttpFailed("connection closed before an answer")
        )
        try:
            await stream.send(conn.send(request) + conn.send(h11.EndOfMessage()))
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise nothing from None
        status = 0
        body = _Body(self._limit)
        answered = False
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    try:
                        data = await stream.receive(_READ_SIZE)
                    except anyio.EndOfStream:
                        data = b""
                    except (OSError, anyio.BrokenResourceError):
                        if not answered:
                            raise nothing from None
                        raise HttpFailed("connection reset mid-answer") from None
                    if not data and not answered:
                        raise nothing
                    answered = True
                    conn.receive_data(data)
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    body.expect(self._check_head(event))
                elif isinstance(event, h11.Data):
                    body.add(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise HttpFailed("connection closed mid-answer")
                # h11.InformationalResponse (1xx): keep reading for the final answer
        except h11.RemoteProtocolError as err:
            raise HttpFailed(f"bad HTTP answer ({err})") from None
        except ssl.SSLError as err:
            raise HttpFailed(f"TLS failed ({err.reason or type(err).__name__})") from None
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE and not _extra(conn):
            conn.start_next_cycle()  # keep-alive: the next request reuses this connection
        else:
            await self.aclose()  # closing, or the peer sent more than its answer
        return Reply(status, body.whole())

    def _request(self, path: str) -> h11.Request:
        """The request for ``path``, built (and validated by h11) once, then reused: a
        scraper asks for the same two paths every cycle. A client asking for ever new ones
        (a Prometheus query a run) keeps at most :data:`_KEPT_REQUESTS`."""
        request = self._requests.get(path)
        if request is None:
            try:
                target = (self.prefix + path).encode("ascii")
                request = h11.Request(method="GET", target=target, headers=self._headers)
            except (h11.LocalProtocolError, UnicodeError, ValueError) as err:
                raise HttpFailed(f"cannot ask for {self.prefix + path!r} ({err})") from None
            if len(self._requests) >= _KEPT_REQUESTS:
                self._requests.clear()
            self._requests[path] = request
        return request

    def _check_head(self, event: h11.Response) -> int:
        """The declared length of the body (0 when none is declared), after the checks."""
        declared = 0
        for name, value in event.headers:
            if name == b"content-length" and value.isdigit():
                declared = int(value)
                if declared > self._limit:
                    limit = size_text(self._limit)
                    raise BodyTooLarge(f"body of {declared} bytes over the {limit} cap")
            if name == b"content-encoding" and value.lower() not in (b"", b"identity"):
                encoding = value.decode("latin-1")
                raise HttpFailed(f"refused a {encoding}-encoded body (asked identity)")
        return declared


class _Body:
    """A body as it arrives. Declared: one buffer of that length, filled in place (h11 holds
    the peer to it). Chunked: the pieces, joined once complete — a body cut at the cap is
    never copied, and no buffer grows by reallocation (which, once glibc has raised its mmap
    threshold, leaves a copy's worth of heap behind: +8 MiB of RSS for a flood cut at 8 MiB).
    """

    __slots__ = ("buffer", "limit", "pieces", "size")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buffer: bytearray | None = None
        self.pieces: list[bytes | bytearray] = []
        self.size = 0

    def expect(self, declared: int) -> None:
        if declared and not self.size:
            self.buffer = bytearray(declared)

    def add(self, data: bytes | bytearray) -> None:
        end = self.size + len(data)
        if end > self.limit:
            raise BodyTooLarge(f"body over the {size_text(self.limit)} cap")
        if self.buffer is None:
            self.pieces.append(data)
        else:  # h11 ends the body at its declared length, never before nor after
            self.buffer[self.size : end] = data
        self.size = end

    def whole(self) -> bytes | bytearray:
        if self.buffer is None:
            return b"".join(self.pieces)
        if self.size < len(self.buffer):  # a 204 or 304 may declare a length and send none
            del self.buffer[self.size :]
        return self.buffer


def _connect_failure(err: OSError) -> str:
    """What went wrong connecting: anyio wraps the attempts' errors (one, or a group of one per
    address tried) as the cause of a generic ``OSError``."""
    causes: list[BaseException] = [err]
    cause = err.__cause__
    if isinstance(cause, BaseExceptionGroup):
        causes = list(cause.exceptions)
    elif cause is not None:
        causes = [cause]
    if all(isinstance(c, ConnectionRefusedError) for c in causes):
        return "connection refused"
    first = causes[0]
    if isinstance(first, socket.gaierror):
        return f"cannot resolve host ({first.strerror})"
    reason = first.strerror if isinstance(first, OSError) and first.strerror else str(first)
    return f"cannot connect ({reason or type(first).__name__})"


def _extra(conn: h11.Connection) -> bool:
    """Bytes after the answer (or its close): the connection is not clean for another one."""
    data, closed = conn.trailing_data
    return bool(data) or closed


def _peer_spoke(stream: anyio.abc.ByteStream) -> bool:
    """Did the peer send anything, or close, while the connection idled? Then an answer read
    from it now could be that, not the answer to the next request. (A zero-timeout poll of
    the socket: readable means a byte or the end is waiting. ``poll``, not ``select``: file
    descriptors of a thousand hosts pass ``FD_SETSIZE``.)"""
    sock = stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))
