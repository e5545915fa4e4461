"""Build real recordings of every kind the reader must open, with the truth about them.

Each builder writes files with the real sink (or the real ``zstd`` tool, or by hand where the
file is foreign) and returns the frames a reader must find, in order, as (t, id) pairs:
``id`` is carried in the frame's memory ``used_bytes`` so frames are recognisable even
where ``seq`` is absent or has gaps.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from allsmi.adapters import wire
from allsmi.adapters.recording import source as source_module
from allsmi.adapters.recording.bulk import Batch, bulk_scan
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.domain.model import Frame, Header, Memory
from allsmi.domain.parse import format_rfc3339_ms

T0 = 1_776_513_600_000
Truth = list[tuple[int, int]]  # (t_ms, id) per frame, in file order


def make_frame(ident: int, t_ms: int, seq: int | None) -> Frame:
    mem = Memory(host_id="h", hostname="h", instance="h", used_bytes=ident, total_bytes=2**34)
    return Frame(t_ms=t_ms, seq=seq, memory=(mem,))


def times(n: int, step: int = 1000, dup: int = 1) -> list[int]:
    """``n`` frame times ``step`` apart; with ``dup`` > 1, that many frames share each time."""
    return [T0 + (i // dup) * step for i in range(n)]


def write_sink(
    path: Path,
    n: int,
    kind: Codec,
    *,
    close: bool = True,
    dup: int = 1,
    first_seq: int = 0,
    max_size: int = 0,
    max_files: int = 100,
    chunk_frames: int = 100,
) -> Truth:
    config = SinkConfig(
        path=path, codec=kind, max_size=max_size, max_files=max_files, chunk_max_frames=chunk_frames
    )
    sink = RecordingSink(config, Header(interval_ms=1000, hosts=("h",)))
    truth = []
    for i, t in enumerate(times(n, dup=dup)):
        seq = first_seq + i
        sink.append(wire.encode_line(make_frame(i, t, seq)), seq, t)
        sink.flush()
        truth.append((t, i))
    if close:
        sink.close()
    return truth


def crash_cut(path: Path, n: int, kind: Codec, cut_into_last: float | None = None) -> Truth:
    """A file as ``kill -9`` leaves it: flushed frames, no footer; optionally cut further
    into its last bytes. The truth is what the real ``zstd``/``gzip`` tool still decodes."""
    truth = write_sink(path, n, kind, close=False)
    if cut_into_last is None:
        return truth
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) - 40 * cut_into_last)])
    tool = {Codec.ZSTD: ["zstd", "-dc"], Codec.GZIP: ["gzip", "-dc"], Codec.NONE: ["cat"]}[kind]
    out = subprocess.run([*tool, str(path)], capture_output=True, check=False).stdout
    complete = out[: out.rfind(b"\n") + 1]
    objs = [orjson.loads(x) for x in complete.splitlines()]
    seqs = [o["seq"] for o in objs if "seq" in o and not o.get("index")]
    assert 0 < len(seqs) < n
    return truth[: len(seqs)]


def recompressed_without_markers(path: Path, n: int) -> Truth:
    """Our lines, but one zstd frame written by the zstd tool: no markers, no footer."""
    plain = path.with_suffix(".plain")
    truth = write_sink(plain, n, Codec.NONE)
    subprocess.run(["zstd", "-q", "-f", "-o", str(path), str(plain)], check=True)
    plain.unlink()
    return truth


def headerless(path: Path, n: int) -> Truth:
    truth = write_sink(path, n, Codec.NONE)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(
        b"".join(x for x in lines if b'"header":true' not in x and b'"index":true' not in x)
    )
    return truth


def jq_filtered(path: Path, n: int) -> Truth:
    """Every third data frame dropped (as ``jq -c 'select(…)'`` would), offsets now stale."""
    truth = write_sink(path, n, Codec.NONE)
    kept_lines, kept = [], []
    data_no = 0
    for line in path.read_bytes().splitlines(keepends=True):
        obj = orjson.loads(line)
        if "seq" in obj and not obj.get("index"):
            data_no += 1
            if data_no % 3 == 0:
                continue
            kept.append(truth[data_no - 1])
        kept_lines.append(orjson.dumps(obj) + b"\n")  # jq rewrites every line
    path.write_bytes(b"".join(kept_lines))
    return kept


def concatenated(path: Path, n: int, *, back_in_time: bool = False) -> Truth:
    """Two recordings, ``cat``-ed together: a header mid-file starts a new run."""
    first, second = path.with_suffix(".a"), path.with_suffix(".b")
    truth = write_sink(first, n, Codec.ZSTD)
    config = SinkConfig(path=second, codec=Codec.ZSTD, chunk_max_frames=100)
    sink = RecordingSink(config, Header())
    offset = -3_600_000 if back_in_time else n * 1000 + 5000
    for i in range(n):
        t = T0 + offset + i * 1000
        sink.append(wire.encode_line(make_frame(n + i, t, i)), i, t)
    sink.close()
    truth += [(T0 + offset + i * 1000, n + i) for i in range(n)]
    path.write_bytes(first.read_bytes() + second.read_bytes())
    first.unlink()
    second.unlink()
    return truth


def all_smi_file(path: Path, n: int, *, compress: bool = True) -> Truth:
    """all-smi's shape: sorted keys, whole-second ``timestamp`` last, index lines after
    every 1000th frame with uncompressed offsets, one zstd frame behind a .ndjson name."""
    lines = [
        orjson.dumps(
            {
                "all_smi_version": "0.25.0",
                "header": True,
                "hosts": ["h"],
                "interval_ms": 1000,
                "schema": 1,
            },
            option=orjson.OPT_SORT_KEYS,
        )
    ]
    written = len(lines[0]) + 1
    truth = []
    for i in range(n):
        t = T0 + i * 1000
        stamp = format_rfc3339_ms(t).replace(".000Z", "Z")
        obj = {
            "hostname": "h",
            "memory": [
                {
                    "available_bytes": 1,
                    "buffers_bytes": 0,
                    "cached_bytes": 0,
                    "free_bytes": 0,
                    "host_id": "h",
                    "hostname": "h",
                    "index": 0,
                    "instance": "h",
                    "swap_free_bytes": 0,
                    "swap_total_bytes": 0,
                    "swap_used_bytes": 0,
                    "time": "x",
                    "total_bytes": 2**34,
                    "used_bytes": i,
                    "utilization": 1.0,
                }
            ],
            "schema": 1,
            "timestamp": stamp,
        }
        line = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
        lines.append(line)
        written += len(line) + 1
        truth.append((t, i))
        if i and i % 1000 == 0:
            index = {"byte_offset": written, "index": True, "schema": 1, "seq": i}
            line = orjson.dumps(index, option=orjson.OPT_SORT_KEYS)
            lines.append(line)
            written += len(line) + 1
    raw = b"\n".join(lines) + b"\n"
    if compress:
        import zstandard

        raw = zstandard.ZstdCompressor(level=3).compress(raw)
    path.write_bytes(raw)
    return truth


Builder = Callable[[Path], tuple[Path, Truth]]


class PacedIndex:
    """The real bulk scan of the background index, held after each batch until ``go`` is
    set: the pace, not the data, is the test's (docs/architecture.md §3.1). ``batches``
    counts those handed over; ``finished`` is set when the scan has none left."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.go = threading.Event()
        self.batches = 0
        self.finished = False
        real = bulk_scan  # the real scan, wrapped below

        def paced(*args: Any, **kwargs: Any) -> Iterator[Batch]:
            for batch in real(*args, **kwargs):
                self.batches += 1
                yield batch
                self.go.wait()
            self.finished = True

        monkeypatch.setattr(source_module, "bulk_scan", paced)
