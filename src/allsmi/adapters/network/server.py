"""A small, strict HTTP/1.1 server core shared by ``allsmi api`` and ``allsmi mock``
(docs/architecture.md §3.2).

Rules this module obeys:
- h11 does all the parsing and framing (docs/architecture.md §3.2: no hand-written HTTP); this
  module only moves bytes between an anyio byte stream and an ``h11.Connection``, applies
  limits and dispatches.
- Every input is bounded (:class:`Limits`): the request head and body together (431 for the
  head, 413 for the body), the header count (431), the time to send a head (connection closed),
  the idle time between keep-alive requests (closed), the time each write may take (closed),
  and the number of connections served at once.
- Idle connections never starve requests: the listener is always accepting, and when every
  slot is held, the connection idle the longest is shed (closed unanswered) for the newcomer.
  Idle means waiting for the client: for a whole request (silent since the accept, trickling a
  head, or between keep-alive requests) or for its close after a last reply. A connection whose
  request is being handled or whose reply is being written — an ``/events`` stream included —
  is never shed; only when all are such does a newcomer wait.
- Only ``GET`` and ``HEAD`` are served; other methods get 405 with ``Allow``. A ``HEAD``
  reply carries the ``GET`` reply's headers and no body (RFC 9110 §9.3.2).
- With a token, ``Authorization: Bearer <token>`` is required, compared with
  ``hmac.compare_digest``; otherwise 401 with ``WWW-Authenticate: Bearer`` (RFC 6750 §3).
- A handler that raises gives a 500 and is logged; the connection and the server live on.
- A :class:`Stream` body is never buffered: its chunks are pulled one at a time and each is
  written before the next is pulled; a write that does not finish within ``write_timeout_s``
  (a subscriber that stopped reading) closes the connection. The iterator is always closed.

Theory of operation: :func:`serve_connection` loops over request cycles. Each cycle reads
events from h11 until the request's ``EndOfMessage`` under one deadline: the first request of
a connection must arrive whole within ``header_timeout_s`` of the accept; later ones may idle
for ``keep_alive_timeout_s``, then get ``header_timeout_s`` from their first byte. A limit
breach or a protocol error answers 4xx with ``Connection: close``. A good request goes
through auth, the method check and the handler; then h11 says whether both sides are ``DONE``
(next cycle) or the connection must close. A close after a complete reply half-closes and
drains for a while (RFC 9112 §9.6), so the client reads the reply instead of a reset.
:func:`serve_tcp` serves at most ``max_connections`` connections, each holding a slot
(:class:`_Slots`). Each listener accepts one connection at a time and finds it a slot: a free
one, else that of the longest-idle holder, whose idle wait (the same cancel scope as its idle
or header deadline) is cancelled, so it closes as if its deadline had passed. Oldest first
means a flood of silent clients, even one that reconnects whenever it is closed, sheds its own
connections before a request that has just arrived; a client shed between keep-alive requests
reconnects, as after any idle close. With every holder busy the accepted connection waits
unread for a slot, the rest in the kernel's backlog, so the open sockets stay bounded:
``max_connections``, one waiting per listener, and those just shed, which close at their next
turn. Cancel the task that runs :func:`serve_tcp` to shut down: the listener and every
connection close, streams are closed.
"""

from __future__ import annotations

import contextlib
import hmac
import http
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Final

import anyio
import anyio.abc
import attrs
import h11

__all__ = [
    "DEFAULT_LIMITS",
    "Handler",
    "Headers",
    "Limits",
    "Request",
    "Response",
    "Stream",
    "serve_connection",
    "serve_tcp",
]

_log = logging.getLogger(__name__)

SERVER: Final = b"allsmi"
ALLOWED_METHODS: Final = ("GET", "HEAD")
_READ_SIZE: Final = 4096  # bytes per receive; h11 checks its buffer after each one
_ACCEPT_RETRY_S: Final = 0.1  # pause after a failed accept (EMFILE) before trying again
# Headers the server owns: a handler sets the type through `content_type`, never framing.
_RESERVED: Final = frozenset(
    {"content-length", "content-type", "transfer-encoding", "connection", "server"}
)


Headers = tuple[tuple[str, str], ...]  # (name, value) pairs, in order


def _no_reserved_headers(_: object, attribute: attrs.Attribute[Headers], value: Headers) -> None:
    for name, _value in value:
        if name.lower() in _RESERVED:
            raise ValueError(f"{attribute.name}: {name!r} is set by the server")


_final_status = [attrs.validators.ge(200), attrs.validators.le(599)]  # h11 sends 1xx apart


@attrs.frozen
class Request:
    """A request as the handler sees it. Header names are lower-case, values latin-1 text."""

    method: str
    path: str  # the request target before ``?``, not percent-decoded
    query: str  # after ``?``, without it; "" when absent
    headers: Headers

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)


@attrs.frozen
class Response:
    """A whole reply; sent with ``Content-Length``."""

    status: int = attrs.field(validator=_final_status)
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: Headers = attrs.field(default=(), validator=_no_reserved_headers)


@attrs.frozen
class Stream:
    """A reply whose body is pulled chunk by chunk (server-sent events); sent chunked.

    The server owns ``chunks`` once the handler returns it and always closes it (``aclose``)
    when done, including for ``HEAD`` (never iterated), a client gone, or shutdown.
    """

    content_type: str
    chunks: AsyncIterator[bytes]
    status: int = attrs.field(default=200, validator=_final_status)
    headers: Headers = attrs.field(default=(), validator=_no_reserved_headers)


Handler = Callable[[Request], Awaitable[Response | Stream]]

_count = attrs.validators.gt(0)
_seconds = attrs.validators.gt(0.0)


@attrs.frozen
class Limits:
    """What one client may cost the server; every breach ends in a 4xx or a closed connection."""

    max_request_bytes: int = attrs.field(default=16 * 1024, validator=_count)  # head + body
    max_headers: int = attrs.field(default=64, validator=_count)
    # Per serve_tcp; when all are held the longest-idle connection is shed for a new one.
    max_connections: int = attrs.field(default=256, validator=_count)
    header_timeout_s: float = attrs.field(default=10.0, validator=_seconds)
    keep_alive_timeout_s: float = attrs.field(default=30.0, validator=_seconds)
    write_timeout_s: float = attrs.field(default=10.0, validator=_seconds)


DEFAULT_LIMITS: Final = Limits()

# A connection that ends without a reply: peer gone, reset, or a write that timed out.
_TRANSPORT_ERRORS: Final = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    TimeoutError,
    OSError,
)


async def serve_tcp(
    host: str,
    port: int,
    handler: Handler,
    limits: Limits = DEFAULT_LIMITS,
    token: str | None = None,
    *,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``handler`` on ``host:port`` (0 = ephemeral) until cancelled; reports the port."""
    multi = await anyio.create_tcp_listener(local_host=host, local_port=port)
    slots = _Slots(limits.max_connections)
    async with multi, anyio.create_task_group() as tg:
        listeners = [lst for lst in multi.listeners if isinstance(lst, anyio.abc.SocketListener)]
        bound: int = listeners[0].extra(anyio.abc.SocketAttribute.local_port)

        async def serve_one(client: anyio.abc.SocketStream, slot: _Slot) -> None:
            try:
                await _serve(_Channel(client, limits, slot), handler, token)
            except Exception:  # a bug on one connection must not end the server
                _log.exception("HTTP connection failed")
            finally:
                slot.release()

        async def accept_loop(listener: anyio.abc.SocketListener) -> None:
            while True:
                try:
                    client = await listener.accept()
                except OSError as err:  # e.g. EMFILE: keep serving those we have
                    _log.warning("accept failed on port %d: %s", bound, err)
                    await anyio.sleep(_ACCEPT_RETRY_S)
                    continue
                try:
                    slot = await slots.take()  # sheds the longest-idle connection if full
                except BaseException:
                    await anyio.aclose_forcefully(client)
                    raise
                tg.start_soon(serve_one, client, slot)

        for listener in listeners:
            tg.start_soon(accept_loop, listener)
        task_status.started(bound)


async def serve_connection(
    stream: anyio.abc.ByteStream,
    handler: Handler,
    limits: Limits = DEFAULT_LIMITS,
    token: str | None = None,
) -> None:
    """Serve HTTP/1.1 requests on one connection until either side ends it; closes ``stream``."""
    await _serve(_Channel(stream, limits), handler, token)


async def _serve(channel: _Channel, handler: Handler, token: str | None) -> None:
    async with channel.stream:
        with contextlib.suppress(*_TRANSPORT_ERRORS):  # the peer is gone: nothing to answer
            await channel.run(handler, token)


class _Slots:
    """The ``max_connections`` slots of one :func:`serve_tcp`, and which holders are idle.

    A holder is idle while it waits for input the server can do without: a whole request
    (from the accept, or from the end of the previous reply) or the client's close after a
    last reply (``_Channel.linger``). Handling a request and writing its reply — an
    ``/events`` stream included — is never idle.
    """

    def __init__(self, size: int) -> None:
        self.free = size
        self.idle: dict[_Slot, anyio.CancelScope] = {}  # insertion order: longest idle first
        self._changed = anyio.Event()

    async def take(self) -> _Slot:
        """A slot for a connection just accepted: a free one, else the longest-idle holder's,
        which is shed (its wait is cancelled, so it closes unanswered, as at its deadline);
        when every holder is busy, wait until one is idle or gone."""
        while not self.free and not self.idle:
            await self._changed.wait()
        if self.free:
            self.free -= 1
        else:
            shed, scope = next(iter(self.idle.items()))
            del self.idle[shed]
            shed.shed = True  # its slot is the newcomer's now
            scope.cancel()
        return _Slot(self)

    def changed(self) -> None:
        self._changed.set()  # wakes every waiter, which then checks again
        self._changed = anyio.Event()


class _Slot:
    """One connection's hold on a slot of :class:`_Slots`."""

    def __init__(self, slots: _Slots) -> None:
        self.slots = slots
        self.shed = False

    @contextlib.contextmanager
    def idle(self, scope: anyio.CancelScope) -> Iterator[None]:
        """Within the block, the holder may be shed by cancelling ``scope``."""
        if self.shed:  # its read completed as it was shed, so it went on: it waits no more
            scope.cancel()
            yield
            return
        self.slots.idle[self] = scope
        self.slots.changed()
        try:
            yield
        finally:
            self.slots.idle.pop(self, None)

    def release(self) -> None:
        if not self.shed:
            self.slots.free += 1
            self.slots.changed()


class _Channel:
    """One connection: an anyio byte stream driven through one ``h11.Connection``."""

    def __init__(
        self, stream: anyio.abc.ByteStream, limits: Limits, slot: _Slot | None = None
    ) -> None:
        self.stream = stream
        self.limits = limits
        self.slot = slot  # None: a connection served alone, never shed
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_request_bytes)
        self.method = ""  # of the request being answered; "" before one is parsed

    async def run(self, handler: Handler, token: str | None) -> None:
        first = True
        while True:
            outcome = await self.read_request(first)
            if outcome is None:
                return  # client closed, went idle, or too slow: nothing to answer
            if isinstance(outcome, int):
                await self.send_reply(_plain(outcome), close=True)
                await self.linger()
                return
            complete = await self.send_reply(await _dispatch(outcome, handler, token))
            if not complete:
                return
            if self.conn.our_state is not h11.DONE or self.conn.their_state is not h11.DONE:
                await self.linger()  # Connection: close, HTTP/1.0, or an unread body
                return
            self.conn.start_next_cycle()
            first = False

    async def read_request(self, first: bool) -> Request | int | None:
        """The next whole request; a status code for a bad one; None when nothing will come."""
        conn, limits = self.conn, self.limits
        self.method = ""
        wait_s = limits.header_timeout_s if first else limits.keep_alive_timeout_s
        started = first  # the first request's deadline runs from the accept, not its first byte
        request: Request | None = None
        budget = limits.max_request_bytes
        with (
            anyio.CancelScope(deadline=anyio.current_time() + wait_s) as scope,
            self.idle(scope),
        ):
            try:
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        if not started and conn.trailing_data[0]:
                            started = True
                            scope.deadline = anyio.current_time() + limits.header_timeout_s
                        conn.receive_data(await self.receive())
                    elif isinstance(event, h11.Request):
                        self.method = event.method.decode("ascii")
                        parsed = self.check_head(event)
                        if isinstance(parsed, int):
                            return parsed
                        request, budget = parsed, budget - _head_bytes(event)
                    elif isinstance(event, h11.Data):
                        budget -= len(event.data)
                        if budget < 0:
                            return 413
                    elif isinstance(event, h11.EndOfMessage):
                        return request
                    else:  # ConnectionClosed between requests (PAUSED cannot occur here)
                        return None
            except h11.RemoteProtocolError as err:
                return err.error_status_hint
        return None  # the deadline passed, or the connection was shed

    def idle(self, scope: anyio.CancelScope) -> contextlib.AbstractContextManager[None]:
        """While in this block the connection may be shed (``scope`` cancelled) for another."""
        return contextlib.nullcontext() if self.slot is None else self.slot.idle(scope)

    def check_head(self, event: h11.Request) -> Request | int:
        """The handler's view of ``event``, or the status that refuses it."""
        limits = self.limits
        if len(event.headers) > limits.max_headers:
            return 431
        head = _head_bytes(event)
        if head > limits.max_request_bytes:
            return 431  # h11 only checks its buffer between reads, so a head can overshoot
        declared = dict(event.headers).get(b"content-length")
        if declared is not None and head + int(declared) > limits.max_request_bytes:
            return 413  # refuse before reading it; h11 has validated the digits
        # h11 admits only visible ASCII in the target (RFC 9112 §3.2), obs-text in values.
        path, _, query = event.target.decode("ascii").partition("?")
        headers = tuple((k.decode("ascii"), v.decode("latin-1")) for k, v in event.headers)
        return Request(self.method, path, query, headers)

    async def send_reply(self, reply: Response | Stream, *, close: bool = False) -> bool:
        """Send ``reply``; False when the connection must end at once (the body was cut)."""
        head = self.method == "HEAD"
        if isinstance(reply, Response):
            fields = _fields(reply.content_type, reply.headers, len(reply.body), close)
            events: list[h11.Event] = [_head(reply.status, fields)]
            if reply.body and not head:
                events.append(h11.Data(data=reply.body))
            events.append(h11.EndOfMessage())
            await self.send(*events)  # one write: the client wakes once, not three times
            return True
        chunks = reply.chunks
        try:
            await self.send(_head(reply.status, _fields(reply.content_type, reply.headers, None)))
            while not head:
                try:
                    chunk = await anext(chunks)  # one at a time: the previous one is written
                except StopAsyncIteration:
                    break
                except Exception:
                    _log.exception("stream body failed after its head was sent")
                    return False
                if chunk:
                    await self.send(h11.Data(data=chunk))
            await self.send(h11.EndOfMessage())
            return True
        finally:
            await _close_chunks(chunks, self.limits.write_timeout_s)

    async def send(self, *events: h11.Event) -> None:
        data = b"".join(self.conn.send(event) or b"" for event in events)
        if data:
            with anyio.fail_after(self.limits.write_timeout_s):
                await self.stream.send(data)

    async def receive(self) -> bytes:
        try:
            return await self.stream.receive(_READ_SIZE)
        except anyio.EndOfStream:
            return b""  # h11's signal for end of input

    async def linger(self) -> None:
        """Half-close, then drop what the client still sends until it closes or for at most
        ``write_timeout_s``: closing with unread input makes the kernel send a reset, which can
        destroy the reply before the client has read it (RFC 9112 §9.6). Bounded by time, not
        bytes, like nginx's ``lingering_time``: a byte cap would reset a client that is still
        sending the body we refused."""
        with anyio.move_on_after(self.limits.write_timeout_s) as scope:
            await self.stream.send_eof()
            # The reply is out: shedding now resets at worst a client still sending what was
            # refused; a client that reads and closes, as clients do, loses nothing.
            with self.idle(scope):
                while await self.receive():
                    pass


async def _dispatch(request: Request, handler: Handler, token: str | None) -> Response | Stream:
    if token is not None and not _authorized(request.header("authorization"), token):
        return _plain(401, (("www-authenticate", "Bearer"),))
    if request.method not in ALLOWED_METHODS:
        return _plain(405, (("allow", ", ".join(ALLOWED_METHODS)),))
    try:
        return await handler(request)
    except Exception:
        _log.exception("handler failed on %s %s", request.method, request.path)
        return _plain(500)


def _authorized(value: str | None, token: str) -> bool:
    if value is None:
        return False
    scheme, _, credentials = value.strip().partition(" ")
    # The scheme is case-insensitive (RFC 9110 §11.1); latin-1 gives back the bytes received.
    given = credentials.strip().encode("latin-1")
    return scheme.lower() == "bearer" and hmac.compare_digest(given, token.encode())


def _plain(status: int, headers: Headers = ()) -> Response:
    return Response(status, f"{status} {_reason(status).decode()}\n".encode(), headers=headers)


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


def _head(status: int, fields: list[tuple[bytes, bytes]]) -> h11.Response:
    return h11.Response(status_code=status, headers=fields, reason=_reason(status))


def _fields(
    content_type: str,
    extra: Headers,
    length: int | None,
    close: bool = False,
) -> list[tuple[bytes, bytes]]:
    """Response header fields; without a length h11 frames the body chunked."""
    fields = [(b"server", SERVER), (b"content-type", content_type.encode("latin-1"))]
    if length is not None:
        fields.append((b"content-length", str(length).encode("ascii")))
    fields += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra]
    if close:
        fields.append((b"connection", b"close"))
    return fields


def _head_bytes(event: h11.Request) -> int:
    """Size of the request head as written canonically: request line, fields, blank line."""
    line = len(event.method) + len(event.target) + len(b"  HTTP/1.1\r\n")
    return line + sum(len(k) + len(v) + 4 for k, v in event.headers) + 2


async def _close_chunks(chunks: AsyncIterator[bytes], timeout_s: float) -> None:
    """Close an async generator (or anything with ``aclose``), even while cancelled."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is None:
        return
    with anyio.move_on_after(timeout_s, shield=True):
        try:
            await aclose()
        except Exception:
            _log.exception("closing a stream body failed")
