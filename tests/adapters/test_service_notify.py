"""The systemd notify protocol, spoken to a real datagram socket the test owns."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from allsmi.adapters.machine import service
from allsmi.adapters.machine.service import Notifier


@pytest.fixture(autouse=True)
def _closed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every notifier a test makes is closed after it (its socket with it)."""
    made: list[Notifier] = []
    real = service.notifier_from_env

    def tracked(environ: dict[str, str]) -> Notifier:
        made.append(real(environ))
        return made[-1]

    monkeypatch.setattr(service, "notifier_from_env", tracked)
    yield
    for notifier in made:
        notifier.close()


def notifier_from_env(environ: dict[str, str]) -> Notifier:
    return service.notifier_from_env(environ)


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def received(sock: socket.socket) -> list[str]:
    sock.settimeout(0)
    found = []
    while True:
        try:
            found.append(sock.recv(4096).decode())
        except BlockingIOError:
            return found


def test_without_a_socket_nothing_is_active() -> None:
    notifier = notifier_from_env({})
    assert not notifier.active and notifier.watchdog_us is None
    notifier.ready("x")  # sends nowhere
    notifier.pet()


def test_ready_status_and_stopping_reach_a_path_socket(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    notifier = notifier_from_env({"NOTIFY_SOCKET": path})
    notifier.ready("recording /var/lib/allsmi/a.zst\nsecond line")
    notifier.ready("12 frames")
    notifier.stopping()
    assert received(sock) == [
        "READY=1\nSTATUS=recording /var/lib/allsmi/a.zst second line",
        "READY=1\nSTATUS=12 frames",
        "STOPPING=1",
    ]


def test_an_abstract_socket_is_reached_by_its_at_name() -> None:
    name = f"allsmi-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    try:
        notifier_from_env({"NOTIFY_SOCKET": "@" + name}).ready("up")
        sock.settimeout(5)
        assert sock.recv(4096) == b"READY=1\nSTATUS=up"
    finally:
        sock.close()


def test_the_watchdog_is_petted_only_when_it_watches_this_process(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    mine = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid())}
    notifier_from_env(mine).pet()
    notifier_from_env({**mine, "WATCHDOG_PID": str(os.getpid() + 1)}).pet()  # another's
    notifier_from_env({"NOTIFY_SOCKET": path}).pet()  # no watchdog at all
    notifier_from_env({**mine, "WATCHDOG_USEC": "0"}).pet()
    assert received(sock) == ["WATCHDOG=1"]


def test_a_watchdog_shorter_than_three_intervals_is_raised_never_lowered(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "60000000"}
    slow = notifier_from_env(env)
    slow.need_watchdog(60_000)  # a pet every minute under a 60 s watchdog
    fast = notifier_from_env(env)
    fast.need_watchdog(3_000)
    assert received(sock) == ["WATCHDOG_USEC=180000000"]
    assert slow.watchdog_us == 180_000_000 and fast.watchdog_us == 60_000_000


def test_a_socket_that_went_away_is_dropped_silently(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    notifier = notifier_from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})
    sock.close()
    os.unlink(path)
    notifier.pet()  # ENOENT / ECONNREFUSED: the recorder records on
    notifier.ready("still here")
    assert notifier.active


def test_unspoken_addresses_and_a_closed_notifier_send_nothing(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    assert not notifier_from_env({"NOTIFY_SOCKET": "vsock:2:1234"}).active
    assert not notifier_from_env({"NOTIFY_SOCKET": "@"}).active
    notifier = notifier_from_env({"NOTIFY_SOCKET": path})
    notifier.close()
    notifier.ready("after close")
    assert received(sock) == []
