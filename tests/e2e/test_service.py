"""Running as a systemd service (README "Run it as a service"): the units systemd would
load, their command lines run by the real allsmi, and the notify protocol read from a
datagram socket the test owns, as systemd reads it."""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from allsmi.adapters.recording.source import RecordingSource

from .conftest import allsmi_path, poll, start_allsmi

UNITS = Path(__file__).resolve().parents[2] / "contrib" / "systemd"
FAST = ("--include", "cpu,memory")


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    yield sock
    sock.close()


class Messages:
    """What the service said, datagram by datagram, in order: read by a thread of its own,
    blocked on the socket, as systemd reads it (a test polling now and then could let the
    kernel's queue of datagrams fill on a stalled machine, and the sender drops when full)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._got: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        self.sock.settimeout(0.2)
        while self.sock.fileno() != -1:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return  # the socket was closed: the test is over
            with self._lock:
                self._got.append(data.decode())

    @property
    def got(self) -> list[str]:
        with self._lock:
            return list(self._got)

    def read(self) -> list[str]:
        return self.got

    def wait_for(self, field: str, what: str) -> int:
        """Poll until a datagram carries ``field``; its position."""
        poll(lambda: any(field in m.splitlines() for m in self.got), what=what)
        return next(i for i, m in enumerate(self.got) if field in m.splitlines())

    def count(self, field: str) -> int:
        return sum(field in m.splitlines() for m in self.got)


def env_for(sock: socket.socket, **extra: str) -> dict[str, str]:
    return {"NOTIFY_SOCKET": sock.getsockname(), **extra}


# --- the recorder --------------------------------------------------------------------------


def test_the_recorder_is_ready_after_its_first_frame_and_pets_once_a_frame(
    tmp_path: Path, notify: socket.socket
) -> None:
    out = tmp_path / "r.ndjson.zst"
    env = env_for(notify, WATCHDOG_USEC="10000000")
    proc = start_allsmi("record", "-o", str(out), "-i", "0.2", *FAST, env=env)
    said = Messages(notify)
    ready = said.wait_for("READY=1", "READY=1")
    with RecordingSource(out) as source:  # ready means a frame is on the disk
        assert source.frame_count >= 1
    assert said.got[ready].splitlines()[1].startswith(f"STATUS=recording {out}: 1 frames, ")
    assert not any("WATCHDOG=1" in m for m in said.got[:ready])  # nothing before ready
    poll(lambda: said.count("WATCHDOG=1") >= 10, what="ten watchdog pets")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    frames = int(re.search(r"(\d+) frames? written", err).group(1))  # type: ignore[union-attr]
    assert said.count("WATCHDOG=1") == frames  # one pet a frame written, no more, no less
    assert said.read()[-1] == "STOPPING=1"
    with RecordingSource(out) as source:  # at the cadence: a frame every 0.2 s
        steps = [source.time_at(i + 1) - source.time_at(i) for i in range(frames - 1)]
    # a frame every 0.2 s: a slow machine may skip a deadline or wake late, never bunch
    assert min(steps) >= 100 and 150 <= statistics.median(steps) <= 400, steps


def test_a_watchdog_too_short_for_the_interval_is_raised_before_ready(
    tmp_path: Path, notify: socket.socket
) -> None:
    out = tmp_path / "r.ndjson.zst"
    env = env_for(notify, WATCHDOG_USEC="2000000")  # 2 s, but a frame every 5 s
    proc = start_allsmi("record", "-o", str(out), "-i", "5", *FAST, env=env)
    said = Messages(notify)
    ready = said.wait_for("READY=1", "READY=1")
    assert said.got[:ready] == ["WATCHDOG_USEC=15000000"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_a_notify_socket_nobody_listens_on_never_stops_the_recording(tmp_path: Path) -> None:
    out = tmp_path / "r.ndjson.zst"
    env = {"NOTIFY_SOCKET": str(tmp_path / "gone"), "WATCHDOG_USEC": "10000000"}
    proc = start_allsmi("record", "-o", str(out), "-i", "0.2", "--duration", "1s", *FAST, env=env)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "error" not in err  # every send failed, silently
    with RecordingSource(out) as source:
        assert source.frame_count >= 3


# --- the units -----------------------------------------------------------------------------


def unit_environment(unit: str) -> dict[str, str]:
    """The ``Environment=`` defaults a unit sets."""
    found: dict[str, str] = {}
    for line in (UNITS / unit).read_text().splitlines():
        if line.startswith("Environment="):
            for pair in shlex.split(line.removeprefix("Environment=")):
                key, _, value = pair.partition("=")
                found[key] = value
    return found


def env_file() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in (UNITS / "allsmi.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found[key] = value
    return found


def exec_start(unit: str, env: dict[str, str]) -> list[str]:
    """The unit's ExecStart as systemd runs it: continuation lines joined, ``${VAR}`` one
    word, unbraced ``$VAR`` split into words (systemd.service(5), "Command lines")."""
    text = (UNITS / unit).read_text().replace("\\\n", " ")
    line = next(x for x in text.splitlines() if x.startswith("ExecStart="))
    words: list[str] = []
    for word in line.removeprefix("ExecStart=").split():
        if re.fullmatch(r"\$[A-Z_]+", word):
            words += env.get(word[1:], "").split()
        else:
            words.append(re.sub(r"\$\{([A-Z_]+)\}", lambda m: env.get(m.group(1), ""), word))
    return words


@pytest.mark.parametrize("unit", ["allsmi-record.service", "allsmi-api.service"])
def test_the_example_environment_file_states_the_units_defaults(unit: str) -> None:
    defaults = unit_environment(unit)
    example = env_file()
    assert defaults and all(example[key] == value for key, value in defaults.items())


@pytest.mark.parametrize("unit", ["allsmi-record.service", "allsmi-api.service"])
def test_systemd_accepts_the_unit(tmp_path: Path, unit: str) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here (no systemd)")
    text = (UNITS / unit).read_text().replace("/usr/local/bin/allsmi", allsmi_path())
    (tmp_path / unit).write_text(text)
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(tmp_path / unit)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr  # no warning either


def test_the_recorder_units_command_line_records_and_notifies(
    tmp_path: Path, notify: socket.socket
) -> None:
    words = exec_start("allsmi-record.service", {**unit_environment("allsmi-record.service")})
    assert words[:4] == [
        "/usr/local/bin/allsmi",
        "record",
        "-o",
        "/var/lib/allsmi/allsmi.ndjson.zst",
    ]
    out = tmp_path / "allsmi.ndjson.zst"
    args = [*words[1:3], str(out), *words[4:]]
    proc = start_allsmi(*args, env=env_for(notify, WATCHDOG_USEC="60000000"))
    said = Messages(notify)
    said.wait_for("READY=1", "the recorder ready")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "deleting those older than 14.0 d" in err  # the age limit reached the recorder
    assert said.read()[-1] == "STOPPING=1"


def test_the_api_units_command_line_serves_and_notifies(notify: socket.socket) -> None:
    env = {**unit_environment("allsmi-api.service"), "ALLSMI_API_PORT": "0"}
    words = exec_start("allsmi-api.service", env)
    assert words[:2] == ["/usr/local/bin/allsmi", "api"]
    proc = start_allsmi(*words[1:], env=env_for(notify, WATCHDOG_USEC="60000000"))
    said = Messages(notify)
    ready = said.wait_for("READY=1", "the exporter ready")
    status = next(x for x in said.got[ready].splitlines() if x.startswith("STATUS="))
    assert status.startswith("STATUS=serving http://127.0.0.1:")
    poll(lambda: said.count("WATCHDOG=1") >= 1, what="a pet after a collection")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert said.read()[-1] == "STOPPING=1"
