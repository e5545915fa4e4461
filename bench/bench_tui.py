"""Cost of one TUI frame at 200×60 for a 100-host × 8-GPU cluster, and the key-to-screen
latency of the real program (the issue's target: under 60 ms per frame, so 8x playback of
a 1 s recording stays smooth).

1. View-model build: ``render(frame, ViewState(), 200, 60, status, expected_hosts=hosts)``,
   min / median over N runs, on the All tab (top and scrolled to the end) and a host tab,
   and on the Users page (the All tab, and drilled into a user) and the Topology page (the
   All tab and a host tab, every GPU with 18 NVLink links to a switch);
   plus ``RecordingSource.frame(i)`` of a 100-host recording, which replay pays (inside
   ``ReplayModel.lines``) for every frame it shows for the first time.
2. Paint: a REAL asciimatics screen opened in-process on a pty of 60×200 (the slave dup2'd
   onto fds 0 and 1, a reader thread draining the master so writes never block,
   TERM=xterm-256color), then ``AsciimaticsTerminal.paint(lines)`` (``print_at`` per span +
   ``screen.refresh``) timed for the same frame repainted, two successive frames alternated
   (playback), the All tab alternated with a host tab (half the cells change), with the
   Users page and with the Topology page, and a
   ``reopen()`` before each paint (what the TUI loop does on every turn while
   ``has_resized()`` keeps answering True; the paint then rewrites every cell); plus the
   bytes written to the pty per paint. The fds are restored afterwards.
3. Key-to-screen latency of ``allsmi view --replay PATH`` run as a child on a pty of 200×60,
   its output fed into a ``pyte.Screen`` by a reader thread: ``]`` is written to the master
   and the time until the status line shows the next ``frame N/`` is measured, polling every
   1 ms ("seen", which includes pyte's parsing in this process) and by the arrival time of
   the chunk that completed it ("arrived"). Done for the demo recording (4 nodes × 8 GPUs)
   and for a short 100-host × 8-GPU recording; then the bytes written per second while
   paused with no keys (a still screen should write nothing), ``q`` and the exit status.

Run: ``.venv/bin/python bench/bench_tui.py [runs]`` (runs: build runs, default 50; paints
are 30 each). Prints a table; asserts nothing (docs/architecture.md §9: figures go to
the README, never into tests). Needs a Linux pty; no terminal of its own.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import os
import pty
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import attrs
import pyte

from allsmi.adapters.recording.source import RecordingSource
from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.adapters.terminal.painter import AsciimaticsTerminal
from allsmi.app.demo import DEMO_INCLUDE, write_demo
from allsmi.domain.model import NvLinkRemoteDevice
from allsmi.domain.screen import SCROLL_END, ReplayStatus, Status, StyledLine, ViewState, render
from common import T0, write_recording

WIDTH: Final = 200
HEIGHT: Final = 60
TARGET_MS: Final = 60.0
PAINTS: Final = 30
KEY_PRESSES: Final = 20
IDLE_S: Final = 2.5  # seconds of paused, key-less watching after the key presses
BIG_FRAMES: Final = 30  # frames in the 100-host recording for the key-latency run
REPO: Final = Path(__file__).resolve().parent.parent
ALLSMI: Final = REPO / ".venv" / "bin" / "allsmi"
FRAME_RE: Final = re.compile(r"frame (\d+)/")


def _stats(samples: Sequence[float]) -> tuple[float, float, float]:
    return min(samples), statistics.median(samples), max(samples)


def _time_ms(action: Callable[[], object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _changed_cells(a: tuple[StyledLine, ...], b: tuple[StyledLine, ...]) -> float:
    """Fraction of cells whose character differs between two renders (styles not counted)."""

    def text(lines: tuple[StyledLine, ...]) -> str:
        return "".join("".join(span.text for span in line) for line in lines)

    ta, tb = text(a), text(b)
    return sum(x != y for x, y in zip(ta, tb, strict=False)) / max(len(ta), 1)


# --------------------------------------------------------------------------- 1. build


def bench_build(runs: int) -> tuple[dict[str, list[float]], dict[str, tuple[StyledLine, ...]]]:
    sim = ClusterSimulator(ClusterSpec(nodes=100, gpus_per_node=8))
    frame_a = sim.frame(T0, DEMO_INCLUDE)
    sim.advance(1000)
    frame_b = sim.frame(T0 + 1000, DEMO_INCLUDE)
    hosts = sim.hosts
    replay = ReplayStatus(754_000, 3_600_000, 8.0, "playing", False, 755, 3600, "2026-04-18", 0)
    status = Status(replay=replay, message=None, keys_help="SPACE:Play q:Exit")

    user = sorted({p.user or "?" for p in frame_a.processes or ()})[0]
    # NVLink as an NVSwitch system lists it: 18 links a GPU, every one to a switch
    links = tuple(NvLinkRemoteDevice(i, "switch", 26_562) for i in range(18))
    gpus = tuple(attrs.evolve(g, nvlink_remote_devices=links) for g in frame_a.gpus or ())
    frame_links = attrs.evolve(frame_a, gpus=gpus)

    def build(frame: object, view: ViewState) -> Callable[[], tuple[StyledLine, ...]]:
        return lambda: render(frame, view, WIDTH, HEIGHT, status, expected_hosts=hosts)  # type: ignore[arg-type]

    cases = {
        "All tab, top": build(frame_a, ViewState()),
        "All tab, end": build(frame_a, ViewState(scroll=SCROLL_END)),
        "host tab 50": build(frame_a, ViewState(tab=50)),
        "Users, All tab": build(frame_a, ViewState(page="users")),
        "Users, drilled to a user": build(frame_a, ViewState(page="users", drill=(user,))),
        "Topology, All tab": build(frame_links, ViewState(page="topology")),
        "Topology, host tab 50": build(frame_links, ViewState(page="topology", tab=50)),
    }
    timings = {name: _time_ms(make, runs) for name, make in cases.items()}
    lines = {
        "a": cases["All tab, top"](),
        "b": build(frame_b, ViewState())(),
        "host": cases["host tab 50"](),
        "users": cases["Users, All tab"](),
        "topology": cases["Topology, host tab 50"](),
        "topology all": cases["Topology, All tab"](),
    }
    return timings, lines


def bench_decode(recording: Path) -> list[float]:
    """``RecordingSource.frame(i)`` for every frame of a fresh source, in order: what the
    replay driver pays (inside ``ReplayModel.lines``) for each frame it has not shown yet."""
    with RecordingSource(recording) as source:
        return [
            ms
            for index in range(source.frame_count)
            for ms in _time_ms(functools.partial(source.frame, index), 1)
        ]


# --------------------------------------------------------------------------- 2. paint


class _Drain(threading.Thread):
    """Reads the pty master until EIO/EOF, counting bytes; never parses (keeps the GIL free)."""

    def __init__(self, fd: int) -> None:
        super().__init__(daemon=True)
        self.fd = fd
        self.count = 0
        self.last = time.perf_counter()

    def run(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            self.count += len(data)
            self.last = time.perf_counter()

    def settle(self, quiet_s: float = 0.02, limit_s: float = 2.0) -> int:
        """Wait until nothing arrived for ``quiet_s``; the byte count then."""
        end = time.perf_counter() + limit_s
        while time.perf_counter() < end and time.perf_counter() - self.last < quiet_s:
            time.sleep(quiet_s / 4)
        return self.count


class PaintResult:
    def __init__(self) -> None:
        self.cases: dict[str, tuple[list[float], list[int]]] = {}
        self.reopen_ms: list[float] = []
        self.first_size = (0, 0)
        self.resized_after_reopen = False


def bench_paint(lines: dict[str, tuple[StyledLine, ...]]) -> PaintResult:
    master, slave = pty.openpty()
    _set_size(slave, HEIGHT, WIDTH)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(0), os.dup(1))
    saved_streams = (sys.stdin, sys.stdout)
    saved_env = {k: os.environ.get(k) for k in ("TERM", "LINES", "COLUMNS", "ESCDELAY")}
    drain = _Drain(master)
    drain.start()
    terminal = AsciimaticsTerminal()
    result = PaintResult()
    try:
        os.dup2(slave, 0)
        os.dup2(slave, 1)
        sys.stdin = os.fdopen(0, "r", closefd=False)
        sys.stdout = os.fdopen(1, "w", encoding="utf-8", closefd=False)
        os.environ["TERM"] = "xterm-256color"
        os.environ["ESCDELAY"] = "25"
        os.environ.pop("LINES", None)
        os.environ.pop("COLUMNS", None)
        terminal.open()
        result.first_size = terminal.size
        # As the TUI loop does first thing: curses.use_env(False) in open() makes ncurses
        # take terminfo's 80x24 rather than the pty's size, and has_resized() then sees the
        # mismatch and reopen() calls resizeterm with the real size.
        if terminal.has_resized():
            terminal.reopen()
        size = terminal.size
        if size != (WIDTH, HEIGHT):
            raise RuntimeError(f"screen opened at {size}, not {WIDTH}x{HEIGHT}")
        # The loop's next turn: read_keys, then has_resized again (a reopen that leaves a
        # KEY_RESIZE in curses' input queue makes the loop reopen on every turn).
        terminal.read_keys()
        result.resized_after_reopen = terminal.has_resized()
        cases = {
            "same frame": (lines["a"], lines["a"]),
            "next frame (alt)": (lines["a"], lines["b"]),
            "All <-> host tab": (lines["a"], lines["host"]),
            "All <-> Users": (lines["a"], lines["users"]),
            "All <-> Topology": (lines["a"], lines["topology"]),
            "All <-> Topology All": (lines["a"], lines["topology all"]),
        }
        for name, (first, second) in cases.items():
            terminal.paint(second)  # start from the other picture
            drain.settle()
            times: list[float] = []
            sizes: list[int] = []
            for i in range(PAINTS):
                picture = first if i % 2 == 0 else second
                before = drain.settle()
                start = time.perf_counter()
                terminal.paint(picture)
                times.append((time.perf_counter() - start) * 1000.0)
                sizes.append(drain.settle() - before)
            result.cases[name] = (times, sizes)
        # What each loop turn costs while has_resized() keeps answering True: a reopen, then
        # a paint onto an empty double buffer (every cell is written again).
        times, sizes = [], []
        for i in range(PAINTS):
            picture = lines["a"] if i % 2 == 0 else lines["b"]
            before = drain.settle()
            start = time.perf_counter()
            terminal.reopen()
            reopened = time.perf_counter()
            terminal.paint(picture)
            times.append((time.perf_counter() - reopened) * 1000.0)
            result.reopen_ms.append((reopened - start) * 1000.0)
            sizes.append(drain.settle() - before)
        result.cases["after reopen (alt)"] = (times, sizes)
    finally:
        terminal.close()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        sys.stdin, sys.stdout = saved_streams
        os.dup2(saved[0], 0)
        os.dup2(saved[1], 1)
        os.close(saved[0])
        os.close(saved[1])
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        os.close(slave)
        drain.settle(limit_s=0.5)
        os.close(master)
        drain.join(timeout=1.0)
    return result


# --------------------------------------------------------------------------- 3. key latency


class _PyteReader(threading.Thread):
    """Reads a child's pty output and stamps each chunk with its arrival time; a second
    thread feeds the chunks into a pyte screen and, after each, notes the status line's
    ``frame N`` and the arrival time of the chunk that first showed each N. Reading apart
    from parsing keeps pyte's cost out of the arrival stamps."""

    def __init__(self, fd: int) -> None:
        super().__init__(daemon=True)
        self.fd = fd
        self.screen = pyte.Screen(WIDTH, HEIGHT)
        self.stream = pyte.ByteStream(self.screen)
        self.lock = threading.Lock()
        self.chunks: list[tuple[float, bytes]] = []
        self.ready = threading.Condition()
        self.done = False
        self.frame_no = 0
        self.arrived: dict[int, float] = {}
        self.last = time.perf_counter()
        self.bytes = 0
        self.parser = threading.Thread(target=self._parse, daemon=True)
        self.parser.start()

    def run(self) -> None:
        try:
            while True:
                try:
                    data = os.read(self.fd, 65536)
                except OSError as err:  # EIO once the child has exited, the slave closed
                    if err.errno != errno.EIO:
                        raise
                    return
                if not data:
                    return
                arrived = time.perf_counter()
                with self.ready:
                    self.chunks.append((arrived, data))
                    self.bytes += len(data)
                    self.last = arrived
                    self.ready.notify()
        finally:
            with self.ready:
                self.done = True
                self.ready.notify()

    def _parse(self) -> None:
        while True:
            with self.ready:
                while not self.chunks and not self.done:
                    self.ready.wait()
                if not self.chunks:
                    return
                arrived, data = self.chunks.pop(0)
            with self.lock:
                self.stream.feed(data)
                n = self._status_frame()
                if n and n != self.frame_no:
                    self.frame_no = n
                    self.arrived.setdefault(n, arrived)

    def _status_frame(self) -> int:
        buffer = self.screen.buffer
        for y in range(HEIGHT - 1, HEIGHT - 5, -1):
            row = buffer[y]
            text = "".join(row[x].data for x in range(WIDTH))
            match = FRAME_RE.search(text)
            if match:
                return int(match.group(1))
        return 0

    def wait_frame(self, n: int, limit_s: float) -> float | None:
        """Poll every 1 ms until the status shows frame ``n``; the time it was seen."""
        end = time.perf_counter() + limit_s
        while time.perf_counter() < end:
            with self.lock:
                if self.frame_no == n:
                    return time.perf_counter()
            time.sleep(0.001)
        return None

    def wait_quiet(self, quiet_s: float, limit_s: float = 3.0) -> None:
        end = time.perf_counter() + limit_s
        while time.perf_counter() < end:
            with self.ready:
                idle = not self.chunks and time.perf_counter() - self.last >= quiet_s
            if idle:
                with self.lock:  # the parser has finished its last chunk
                    return
            time.sleep(0.005)


class KeyLatency:
    def __init__(self) -> None:
        self.seen: list[float] = []
        self.arrived: list[float] = []
        self.rc: int | None = None
        self.startup_ms = 0.0
        self.bytes_per_step = 0.0
        self.idle_bytes_s = 0.0
        self.error: str | None = None


def bench_keys(recording: Path) -> KeyLatency:
    result = KeyLatency()
    master, slave = pty.openpty()
    _set_size(slave, HEIGHT, WIDTH)
    env = {k: v for k, v in os.environ.items() if k not in ("LINES", "COLUMNS")}
    env.update(TERM="xterm-256color", LANG="C.UTF-8", ESCDELAY="25", TZ="UTC")
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)  # the reader thread gets the GIL back quickly from pyte
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(ALLSMI), "view", "--replay", str(recording)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    reader = _PyteReader(master)
    reader.start()
    try:
        if reader.wait_frame(1, limit_s=30.0) is None:
            result.error = "never showed frame 1"
            return result
        result.startup_ms = (time.perf_counter() - started) * 1000.0
        reader.wait_quiet(0.2)
        current = 1
        bytes_before = reader.bytes
        for _ in range(KEY_PRESSES):
            target = current + 1
            sent = time.perf_counter()
            os.write(master, b"]")
            seen = reader.wait_frame(target, limit_s=5.0)
            if seen is None:
                result.error = f"frame {target} never shown"
                break
            result.seen.append((seen - sent) * 1000.0)
            result.arrived.append((reader.arrived[target] - sent) * 1000.0)
            current = target
            reader.wait_quiet(0.03)
        if result.seen:
            result.bytes_per_step = (reader.bytes - bytes_before) / len(result.seen)
        idle_before = reader.bytes  # paused, no keys: a quiet screen should write nothing
        time.sleep(IDLE_S)
        result.idle_bytes_s = (reader.bytes - idle_before) / IDLE_S
        os.write(master, b"q")
        result.rc = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=2.0)
        reader.parser.join(timeout=5.0)
        os.close(master)
        sys.setswitchinterval(switch)
    return result


# --------------------------------------------------------------------------- report


def _ms(samples: Sequence[float]) -> str:
    lo, mid, hi = _stats(samples)
    return f"{lo:8.2f} {mid:8.2f} {hi:8.2f}"


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    with tempfile.TemporaryDirectory(prefix="allsmi-bench-tui-") as tmp:
        demo = Path(tmp) / "demo" / "cluster-incident.ndjson.zst"
        start = time.perf_counter()
        demo_frames = write_demo(demo)
        demo_s = time.perf_counter() - start
        big = Path(tmp) / "big" / "cluster-100.ndjson.zst"
        big.parent.mkdir()
        _, big_s = write_recording(
            big, ClusterSpec(nodes=100, gpus_per_node=8), DEMO_INCLUDE, BIG_FRAMES, 1000, "remote"
        )
        build, lines = bench_build(runs)
        decode = bench_decode(big)
        paint = bench_paint(lines)
        keys = {
            f"demo 4x8 GPUs ({demo_frames} fr)": bench_keys(demo),
            f"100x8 GPUs ({BIG_FRAMES} fr)": bench_keys(big),
        }

    print(f"allsmi TUI at {WIDTH}x{HEIGHT}, 100 hosts x 8 GPUs, sections {','.join(DEMO_INCLUDE)}")
    print(f"recordings: demo {demo_s:.1f} s to write; 100-host {BIG_FRAMES} frames {big_s:.1f} s")
    print()
    print(f"1. view-model build, render(), {runs} runs          min   median      max")
    for name, samples in build.items():
        print(f"   {name:<42} {_ms(samples)}")
    print(f"   {'decode RecordingSource.frame(i), 100 hosts':<42} {_ms(decode)}")
    print()
    print(f"2. paint (print_at + refresh) on a pty, {PAINTS} paints each")
    print(f"   {'case':<22} {'cells chg':>9}       min   median      max   bytes/paint")
    changed = {
        "same frame": 0.0,
        "next frame (alt)": _changed_cells(lines["a"], lines["b"]),
        "All <-> host tab": _changed_cells(lines["a"], lines["host"]),
        "All <-> Users": _changed_cells(lines["a"], lines["users"]),
        "All <-> Topology": _changed_cells(lines["a"], lines["topology"]),
        "All <-> Topology All": _changed_cells(lines["a"], lines["topology all"]),
        "after reopen (alt)": 1.0,
    }
    for name, (times, sizes) in paint.cases.items():
        chg = f"{changed[name]:>8.1%}" if name != "after reopen (alt)" else "     all"
        median_bytes = statistics.median(sizes)
        print(f"   {name:<22} {chg}  {_ms(times)}   {median_bytes:>11,.0f}")
    print(f"   {'reopen() itself':<22} {'':>8}  {_ms(paint.reopen_ms)}")
    print(
        f"   first open() size {paint.first_size[0]}x{paint.first_size[1]};"
        f" has_resized() after reopen + read_keys: {paint.resized_after_reopen}"
        + ("  (the loop reopens every turn)" if paint.resized_after_reopen else "")
    )
    print()
    print("3. key-to-screen, `]` -> status shows next frame (child on a pty, pyte)")
    print(
        f"   {'recording':<26} {'':<8}      min   median      max"
        "   startup  bytes/key  idle B/s  rc"
    )
    for name, lat in keys.items():
        if not lat.seen:
            print(f"   {name:<26} ERROR: {lat.error}")
            continue
        tail = (
            f"{lat.startup_ms:7.0f}ms {lat.bytes_per_step:>9,.0f}"
            f" {lat.idle_bytes_s:>9,.0f}  {lat.rc}"
        )
        print(f"   {name:<26} {'seen':<8} {_ms(lat.seen)}  {tail}")
        print(f"   {'':<26} {'arrived':<8} {_ms(lat.arrived)}")
        if lat.error:
            print(f"   {'':<26} ERROR: {lat.error}")
    print()
    print(f"per-frame total (median), target {TARGET_MS:.0f} ms; 8x of a 1 s recording = 8 fps")
    med = statistics.median
    build_ms = med(build["All tab, top"])
    rows = [
        ("build + paint next frame", build_ms + med(paint.cases["next frame (alt)"][0])),
        ("build + paint All<->host tab", build_ms + med(paint.cases["All <-> host tab"][0])),
        (
            "build + paint Users (All tab)",
            med(build["Users, All tab"]) + med(paint.cases["All <-> Users"][0]),
        ),
        (
            "build + paint Topology (host tab)",
            med(build["Topology, host tab 50"]) + med(paint.cases["All <-> Topology"][0]),
        ),
        (
            "build + paint Topology (All tab)",
            med(build["Topology, All tab"]) + med(paint.cases["All <-> Topology All"][0]),
        ),
        (
            "decode + build + paint next frame",
            med(decode) + build_ms + med(paint.cases["next frame (alt)"][0]),
        ),
        (
            "decode + build + reopen + full paint",
            med(decode)
            + build_ms
            + med(paint.reopen_ms)
            + med(paint.cases["after reopen (alt)"][0]),
        ),
    ]
    for label, total in rows:
        verdict = "OK" if total < TARGET_MS else "OVER"
        print(
            f"   {label:<38} {total:7.2f} ms  vs {TARGET_MS:.0f} ms  {verdict:<4}"
            f"  max smooth {1000.0 / total:6.1f} fps"
        )


if __name__ == "__main__":
    main()
