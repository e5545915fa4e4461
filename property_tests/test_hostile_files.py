"""Hostile recordings: whatever the bytes, the reader never crashes or hangs, and ``verify``
reports the damage it can see.

Valid files of every codec are mutated by hypothesis (bit flips, truncation, forged seek
tables, inserted junk) and by hand-made nasties (giant lines, a zstd bomb, a 256 MiB zstd
window, deep JSON, wrong types, a million header hosts). The nasties also run through the
installed ``allsmi verify --deep`` in a child process whose peak RSS is measured.
"""

from __future__ import annotations

import functools
import itertools
import signal
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.adapters import recordings as rec

from allsmi.adapters.recording import seektable
from allsmi.adapters.recording.follow import FollowingSource
from allsmi.adapters.recording.sink import Codec
from allsmi.adapters.recording.source import RecordingSource
from allsmi.app.verify import build_report
from allsmi.domain.errors import RecordingUnreadable, UnsupportedSchema

MAX_SECONDS = 30  # a file that takes longer than this to read counts as a hang
RSS_BOUND_MB = 250  # cache (48 MiB) + one 16 MiB line + interpreter, with room to spare


@functools.cache
def base(kind: str) -> bytes:
    """Small valid recordings (100 frames, chunks of 25) to mutate."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "b.ndjson"
        if kind == "allsmi":
            rec.all_smi_file(path, 100)
        elif kind == "zstd-crash":
            rec.crash_cut(path, 100, Codec.ZSTD)
        else:
            rec.write_sink(path, 100, Codec(kind), chunk_frames=25)
        return path.read_bytes()


KINDS = ["zstd", "gzip", "none", "zstd-crash", "allsmi"]


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def hang(signum: int, frame: object) -> None:
        raise TimeoutError(f"reading took over {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def read_everything(data: bytes) -> list[str] | None:
    """Open, seek, step and verify; return verify's damage list (None: refused cleanly)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "h.ndjson"
        path.write_bytes(data)
        with time_limit(MAX_SECONDS):
            try:
                source = RecordingSource(path, cache_bytes=1 << 20)
            except (RecordingUnreadable, UnsupportedSchema):
                return None
            count = source.frame_count
            for i in {0, count // 2, count - 1, *range(0, count, 7)}:
                if i < source.frame_count:
                    source.frame(i)
            for target in (-(10**15), rec.T0, rec.T0 + 50_000, 10**15):
                source.index_at_or_before(target)
            return build_report(source, deep=True).damage


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(KINDS))
    data = bytearray(base(kind))
    action = draw(st.sampled_from(["flip", "truncate", "junk", "trailer", "marker", "table"]))
    if action == "flip":
        for _ in range(draw(st.integers(1, 16))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= 1 << draw(st.integers(0, 7))
    elif action == "truncate":
        del data[draw(st.integers(1, len(data) - 1)) :]
    elif action == "junk":
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=300))
    elif action == "trailer":  # a footer pointing anywhere
        data += struct.pack("<IIQ", seektable.TRAILER_MAGIC, 8, draw(st.integers(0, 2**64 - 1)))
    elif action == "marker":  # a forged marker whose prev points anywhere
        payload = orjson.dumps(
            {
                "seq": draw(st.integers(0, 10**6)),
                "t": "2026-04-18T12:00:00Z",
                "prev": draw(st.integers(-5, len(data) * 2)),
            }
        )
        at = draw(st.integers(0, len(data)))
        data[at:at] = seektable.skippable(seektable.MARKER_MAGIC, payload) + b"\x28\xb5\x2f\xfd"
    else:  # a table whose chunks point anywhere
        offsets = sorted(draw(st.lists(st.integers(0, len(data) * 2), min_size=1, max_size=8)))
        chunks = tuple(seektable.ChunkEntry(o, i * 25, rec.T0, 25) for i, o in enumerate(offsets))
        table_at = len(data)
        data += seektable.encode_table(seektable.Table(chunks, 99, rec.T0 + 99_000))
        data += seektable.encode_trailer(table_at)
    return kind, bytes(data)


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_any_mutation_is_read_without_crash_or_hang(case: tuple[str, bytes]) -> None:
    read_everything(case[1])


def follow_everything(data: bytes, pieces: list[int]) -> None:
    """The same bytes reaching a follower as a recorder would append them: the file grows
    in pieces, each followed by a poll; every frame in the timeline is read each time."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.ndjson"
        cuts = sorted({min(len(data), max(1, p)) for p in pieces} | {len(data)})
        path.write_bytes(data[: cuts[0]])
        with time_limit(MAX_SECONDS):
            try:
                source = FollowingSource(path, cache_bytes=1 << 20)
            except (RecordingUnreadable, UnsupportedSchema):
                return
            try:
                for before, after in itertools.pairwise(cuts):
                    with open(path, "ab") as fh:
                        fh.write(data[before:after])
                    source.poll()
                    i = 0
                    while i < source.frame_count:
                        source.frame(i)
                        i += 1
            finally:
                source.close()


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated(), st.lists(st.integers(1, 8000), min_size=1, max_size=3))
def test_any_mutation_growing_under_a_follower_is_followed_without_crash_or_hang(
    case: tuple[str, bytes], pieces: list[int]
) -> None:
    follow_everything(case[1], pieces)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["zstd", "gzip", "zstd-crash"]),
    st.one_of(st.integers(1, 70_000).map(lambda n: b"\0" * n), st.binary(min_size=1)),
)
def test_bytes_after_the_end_never_cost_a_frame(kind: str, tail: bytes) -> None:
    data = base(kind) + tail
    assert frame_ids(data) == list(range(100))
    damage = read_everything(data)
    assert damage is not None
    if not tail.strip(b"\0"):
        assert damage == []  # zeros (a power cut's tail) are a note, never damage


def frame_ids(data: bytes) -> list[int] | None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.ndjson"
        path.write_bytes(data)
        try:
            source = RecordingSource(path)
        except (RecordingUnreadable, UnsupportedSchema):
            return None
        ids = []
        for i in range(source.frame_count):
            memory = source.frame(i).memory
            assert memory is not None
            ids.append(memory[0].used_bytes or 0)
        return ids


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["zstd", "gzip", "none"]), st.integers(min_value=1, max_value=6000))
def test_a_truncated_file_keeps_every_complete_frame_before_the_cut(
    kind: str, cut_from_end: int
) -> None:
    data = base(kind)
    cut = data[: max(1, len(data) - cut_from_end)]
    ids = frame_ids(cut)
    if ids is not None:
        assert ids == list(range(len(ids)))  # a prefix of what was written, in order
    if kind == "none" and not cut.endswith(b"\n"):
        damage = read_everything(cut)
        assert damage is None or "torn last line" in damage


# --------------------------------------------------------------------------- the nasties

T = "2026-04-18T12:00:00.000Z"


def plain_line(obj: object) -> bytes:
    return orjson.dumps(obj) + b"\n"


def frame_line(i: int) -> bytes:
    return plain_line(
        {
            "schema": 1,
            "t": T.replace(":00.000", f":{i % 60:02d}.000"),
            "seq": i,
            "source": "local",
            "memory": [],
            "errors": [],
        }
    )


def giant_line() -> bytes:
    return b'{"schema":1,"t":"' + T.encode() + b'","seq":5,"gpus":["' + b"x" * (17 << 20) + b'"]}\n'


def zstd_bomb() -> bytes:
    """256 MiB of one byte in ~8 KB: a line that never ends."""
    cctx = zstandard.ZstdCompressor(level=1)
    chunk = b"x" * (1 << 20)
    obj = cctx.compressobj()
    return b"".join([obj.compress(chunk) for _ in range(256)] + [obj.flush()])


def huge_window() -> bytes:
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=28)
    obj = zstandard.ZstdCompressor(compression_params=params).compressobj()
    return obj.compress(b"".join(frame_line(i) for i in range(10))) + obj.flush()


def deep_json() -> bytes:
    return (
        b'{"schema":1,"t":"' + T.encode() + b'","gpus":' + b"[" * 200_000 + b"]" * 200_000 + b"}\n"
    )


def wrong_types() -> bytes:
    bad = {
        "schema": 1,
        "t": T,
        "seq": 3,
        "gpus": [{"uuid": 5, "name": ["x"]}],
        "memory": "lots",
        "errors": "none",
    }
    return plain_line(bad)


def million_hosts() -> bytes:
    header = {
        "schema": 1,
        "header": True,
        "writer": "allsmi",
        "format": "chunked-1",
        "hosts": [f"node-{i}" for i in range(1_000_000)],
    }
    return plain_line(header)


NASTIES: dict[str, Callable[[], bytes]] = {
    "giant-line": lambda: frame_line(0) + giant_line() + frame_line(1),
    "zstd-bomb": lambda: zstandard.ZstdCompressor().compress(frame_line(0)) + zstd_bomb(),
    "huge-window": huge_window,
    "deep-json": lambda: frame_line(0) + deep_json() + frame_line(1),
    "wrong-types": lambda: frame_line(0) + wrong_types() + frame_line(1),
    "million-hosts": lambda: million_hosts() + frame_line(0) + frame_line(1),
}
EXPECTED = {
    "giant-line": "over 16 MiB",
    "zstd-bomb": "over 16 MiB",
    "huge-window": None,  # nothing decodable: refused as unreadable
    "deep-json": "corrupt",
    "wrong-types": "do not structure",
    "million-hosts": None,  # not damage: the header's hosts are cut to 1024, with a warning
}


# The installed command's entry point, reporting its own peak RSS (KiB) on the way out:
# VmHWM of this process image (ru_maxrss would carry the forking parent's peak over exec).
MEASURED_VERIFY = """
import sys
from allsmi.app.cli import main
status = main(sys.argv[1:])
with open("/proc/self/status") as fh:
    peak = next(line.split()[1] for line in fh if line.startswith("VmHWM:"))
sys.stderr.write(f"PEAK {peak}\\n")
sys.exit(status)
"""


@pytest.mark.parametrize("name", sorted(NASTIES))
def test_a_nasty_file_is_read_within_bounds_and_reported(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.ndjson"
    path.write_bytes(NASTIES[name]())
    child = subprocess.run(
        [sys.executable, "-c", MEASURED_VERIFY, "verify", "--deep", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out, err = child.stdout, child.stderr
    assert "Traceback" not in err, err
    peak_mb = int(err.rsplit("PEAK ", 1)[1]) / 1024
    assert peak_mb < RSS_BOUND_MB, f"verify peaked at {peak_mb:.0f} MB"
    expected = EXPECTED[name]
    if expected is None:
        assert child.returncode in (0, 2), err
    else:
        assert child.returncode == 1, out + err
        assert "DAMAGED" in out and expected in out
