"""What ``allsmi record`` collects and writes of processes: every section by default (local
and remote; ``--include`` narrows it; ``snapshot`` and ``--from-prometheus`` keep theirs),
``--redact-args`` (executable names only, in local and remote rows, before the frame is
written), and the per-host cut of a frame over the line cap (the top N by GPU memory, the cut
noted in ``errors``). In-process: the recorder's loop on a simulated clock, remote rows from
real loopback exporters."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import anyio
import attrs
import pytest

from allsmi.adapters import wire
from allsmi.adapters.network.scrape import RemoteConfig
from allsmi.adapters.network.server import Response
from allsmi.adapters.recording.decoding import iter_file_lines
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.app import record
from allsmi.app.cli import build_parser, run_handler
from allsmi.app.clock import SimClock
from allsmi.app.record import RecordPlan, fit_frame, record_loop
from allsmi.domain.errors import UsageError
from allsmi.domain.model import DEFAULT_SECTIONS, SECTIONS, Frame, GpuProcess, Header, Memory
from allsmi.domain.ports import FrameSource
from allsmi.domain.process_rows import PROCESS_CUTS, executable_name
from tests.adapters.test_remote import PROM_TYPE, always, exporter, remote, serving

T0: Final = 1_776_513_600_000
SECRET: Final = "--token=hunter2"


# ----------------------------------------------------------------------------- defaults


class Collected(UsageError):
    """Raised by a stand-in source builder once it has seen what ``record`` asks for."""


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def _sections_asked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *argv: str) -> Any:
    """The sections ``allsmi record ARGV`` asks its source for (it stops right there)."""
    asked: list[Any] = []

    def local(include: tuple[str, ...]) -> FrameSource:
        asked.append(include)
        raise Collected("collected")

    def remote_source(config: RemoteConfig) -> FrameSource:
        asked.append(config.include)
        raise Collected("collected")

    monkeypatch.setattr(record, "build_local_source", local)
    monkeypatch.setattr("allsmi.app.remote.build_remote_source", remote_source)
    args = _parse("record", "-o", str(tmp_path / "r.ndjson.zst"), *argv)
    assert run_handler(record.run, args) == Collected.exit_code
    (include,) = asked
    return include


def test_record_collects_every_section_by_default_locally(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert _sections_asked(monkeypatch, tmp_path) == SECTIONS
    assert set(SECTIONS) == {"gpu", "cpu", "memory", "chassis", "process", "storage"}


def test_record_collects_every_section_by_default_remotely(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hosts = ("--source", "remote", "--hosts", "10.0.0.1:9090")
    assert _sections_asked(monkeypatch, tmp_path, *hosts) == SECTIONS


def test_include_still_narrows_what_record_collects(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert _sections_asked(monkeypatch, tmp_path, "--include", "cpu,disk") == ("cpu", "storage")


def test_snapshot_keeps_its_default_sections() -> None:
    assert _parse("snapshot").include == DEFAULT_SECTIONS == ("gpu", "cpu", "memory", "chassis")


def test_from_prometheus_keeps_its_default_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, ...]] = []

    def from_prometheus(args: argparse.Namespace) -> int:
        seen.append(args.include)
        return 0

    monkeypatch.setattr("allsmi.app.from_prometheus.run", from_prometheus)
    assert record.run(_parse("record", "--from-prometheus", "http://prom:9090")) == 0
    assert seen == [DEFAULT_SECTIONS]


def test_redact_args_with_from_prometheus_is_one_line_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = _parse("record", "--from-prometheus", "http://prom:9090", "--redact-args")
    assert run_handler(record.run, args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--redact-args" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ("/opt/conda/bin/python3 train.py --lr 3e-4 --token=hunter2", "python3"),
        ("python finetune.py --base mistral-7b", "python"),
        ("torchrun", "torchrun"),
        ("./run.sh  --secret x", "run.sh"),
        ("/usr/local/bin/", "bin"),
        ("   ", ""),
        (None, None),
    ],
)
def test_executable_name_is_the_basename_of_the_first_word(
    command: str | None, name: str | None
) -> None:
    assert executable_name(command) == name


def _process(host: str, pid: int, used: int | None, command: str | None = None) -> GpuProcess:
    return GpuProcess(
        host_id=host,
        hostname=host,
        device_id=pid % 8,
        device_uuid=f"GPU-{host}-{pid % 8}",
        pid=pid,
        process_name="python3",
        used_memory=used,
        user="alice",
        command=command,
    )


@attrs.define
class ProcessSource:
    """Frames of one host with processes whose commands carry a secret argument."""

    clock: SimClock

    async def collect(self, t_ms: int) -> Frame:
        command = f"/opt/conda/bin/python3 train.py {SECRET}"
        mem = Memory(host_id="h", hostname="h", instance="h", used_bytes=1)
        rows = (_process("h", 100, 5 << 30, command), _process("h", 101, 1 << 30, None))
        return Frame(t_ms=t_ms, memory=(mem,), processes=rows)

    async def start(self) -> None:
        return None

    def hosts(self) -> tuple[str, ...]:
        return ("h",)

    async def aclose(self) -> None:
        return None


async def _record_async(
    tmp_path: Path, source: FrameSource, *, redact: bool, frames: int = 2
) -> tuple[list[Frame], bytes]:
    """``frames`` frames recorded through the real loop and sink; the frames and the file."""
    path = tmp_path / f"r-{redact}.ndjson.zst"
    sink = RecordingSink(SinkConfig(path=path, codec=Codec.ZSTD), Header())
    plan = RecordPlan(1000, 1000 * frames - 1, "local", source.hosts(), redact_args=redact)
    try:
        await record_loop(source, sink, SimClock(T0), plan)
    finally:
        await source.aclose()
    lines = list(iter_file_lines(path))
    decoded = [wire.decode_line(raw, n) for n, raw in enumerate(lines, 1)]
    return [f for f in decoded if isinstance(f, Frame)], b"\n".join(lines)


def _record(tmp_path: Path, source: FrameSource, *, redact: bool) -> tuple[list[Frame], bytes]:
    return anyio.run(functools.partial(_record_async, tmp_path, source, redact=redact))


def _commands(frames: Sequence[Frame]) -> set[str | None]:
    return {p.command for f in frames for p in f.processes or ()}


def test_redact_args_writes_executable_names_of_local_rows(tmp_path: Path) -> None:
    frames, raw = _record(tmp_path, ProcessSource(SimClock(T0)), redact=True)
    assert len(frames) == 2
    assert _commands(frames) == {"python3", None}
    assert {p.process_name for f in frames for p in f.processes or ()} == {"python3"}
    assert {p.used_memory for f in frames for p in f.processes or ()} == {5 << 30, 1 << 30}
    assert SECRET.encode() not in raw and b"/opt/conda" not in raw


def test_without_redact_args_the_whole_command_line_is_recorded(tmp_path: Path) -> None:
    frames, raw = _record(tmp_path, ProcessSource(SimClock(T0)), redact=False)
    assert _commands(frames) == {f"/opt/conda/bin/python3 train.py {SECRET}", None}
    assert SECRET.encode() in raw


ALL_SMI_PAGE: Final = (
    "# TYPE all_smi_process_memory_used_bytes gauge\n"
    'all_smi_process_memory_used_bytes{pid="4242",name="python",user="alice",device_id="0",'
    'gpu_index="0",device_uuid="GPU-a-0",command="/usr/bin/python3 serve.py '
    + SECRET
    + '"} 1073741824\n'
).encode()


class Scraped:
    """A remote source scraping loopback exporters, as ``record --source remote`` does."""

    def __init__(self, hosts: Sequence[str]) -> None:
        self.source = remote(hosts)

    async def collect(self, t_ms: int) -> Frame:
        return await self.source.collect(t_ms)

    async def start(self) -> None:
        return None

    def hosts(self) -> tuple[str, ...]:
        return self.source.hosts()

    async def aclose(self) -> None:
        await self.source.aclose()


def _record_remote(tmp_path: Path, *, redact: bool) -> tuple[list[Frame], bytes]:
    with_secret = f"/opt/conda/bin/python3 train.py {SECRET}"
    out: list[tuple[list[Frame], bytes]] = []

    async def main() -> None:
        page = always(Response(200, ALL_SMI_PAGE, content_type=PROM_TYPE))
        node = _served_frame(with_secret)
        async with serving(exporter(node), page) as hosts:
            out.append(await _record_async(tmp_path, Scraped(hosts), redact=redact))

    anyio.run(main)
    return out[0]


def _served_frame(command: str) -> Frame:
    from tests.adapters.test_remote import simulated_node

    node = simulated_node()
    rows = tuple(attrs.evolve(p, command=command) for p in node.processes or ())
    assert rows, "the simulated node serves processes"
    return attrs.evolve(node, processes=rows)


def test_redact_args_writes_executable_names_of_remote_rows(tmp_path: Path) -> None:
    frames, raw = _record_remote(tmp_path, redact=True)
    assert not any(f.errors for f in frames)
    hosts = {p.host_id for f in frames for p in f.processes or ()}
    assert len(hosts) == 2  # our exporter's /snapshot and an all-smi /metrics page
    assert _commands(frames) == {"python3"}
    assert SECRET.encode() not in raw


def test_remote_rows_keep_their_command_lines_without_redact_args(tmp_path: Path) -> None:
    frames, _ = _record_remote(tmp_path, redact=False)
    commands = _commands(frames)
    assert f"/opt/conda/bin/python3 train.py {SECRET}" in commands
    assert f"/usr/bin/python3 serve.py {SECRET}" in commands


# ----------------------------------------------------------------------------- the cut


def _crowded() -> Frame:
    """Host ``a`` with 12 processes (memory in a shuffled order, one unknown), ``b`` with 2."""
    used = [3, 11, None, 7, 1, 12, 5, 9, 2, 10, 4, 8]
    rows = [
        _process("a", 1000 + i, None if u is None else u << 30, "x") for i, u in enumerate(used)
    ]
    rows[6:6] = [_process("b", 2000, 1 << 30, "y"), _process("b", 2001, None, "y")]
    return Frame(t_ms=T0, seq=7, processes=tuple(rows), errors=("h: something",))


def _ranked(frame: Frame, host: str) -> list[int]:
    """The pids of ``host`` from the most GPU memory to the least (unknown last)."""
    rows = [p for p in frame.processes or () if p.host_id == host]
    return [p.pid for p in sorted(rows, key=lambda p: -(p.used_memory or 0))]


def _pids(frame: Frame, host: str) -> list[int]:
    return [p.pid for p in frame.processes or () if p.host_id == host]


def test_a_frame_that_fits_is_written_whole() -> None:
    frame = _crowded()
    line, written = fit_frame(frame, len(wire.encode_line(frame)))
    assert written == frame and wire.decode_line(line.rstrip(b"\n"), 1) == frame


def test_an_oversize_frame_keeps_each_hosts_top_processes_by_gpu_memory() -> None:
    frame = _crowded()
    assert PROCESS_CUTS == (64, 8, 1)
    line, written = fit_frame(frame, len(wire.encode_line(frame)) - 1)  # 64 cuts nothing
    top8 = set(_ranked(frame, "a")[:8])
    assert _pids(written, "a") == [pid for pid in _pids(frame, "a") if pid in top8]  # in order
    assert _pids(written, "b") == _pids(frame, "b")  # under the cut: untouched
    assert written.errors[0] == "h: something"
    (note,) = written.errors[1:]
    assert note.startswith("recorder: frame over ")
    assert "kept each host's 8 processes using the most GPU memory" in note
    assert "dropped 4 of 14 on 1 host)" in note
    assert wire.decode_line(line.rstrip(b"\n"), 1) == written


def test_the_cut_goes_down_to_one_process_a_host_before_dropping_them() -> None:
    frame = _crowded()
    eight = fit_frame(frame, len(wire.encode_line(frame)) - 1)[0]
    _, written = fit_frame(frame, len(eight) - 1)
    assert _pids(written, "a") == _ranked(frame, "a")[:1]
    assert _pids(written, "b") == _ranked(frame, "b")[:1]  # known memory before unknown
    assert "kept each host's 1 process using" in written.errors[-1]
    assert "dropped 12 of 14 on 2 hosts)" in written.errors[-1]


def test_past_the_last_cut_the_processes_are_dropped_as_before() -> None:
    frame = _crowded()
    one = fit_frame(frame, len(wire.encode_line(frame)) - 1)
    one = fit_frame(frame, len(one[0]) - 1)
    _, written = fit_frame(frame, len(one[0]) - 1)
    assert written.processes is None
    assert "dropped processes and per-core lists" in written.errors[-1]
