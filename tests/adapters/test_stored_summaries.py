"""Stored chunk summaries (src/allsmi/adapters/recording/summaries.py): the sink writes one
after each zstd chunk, a reader finds them by the footer's table or the markers without
decoding a frame, refuses any that do not fit their chunk (placement, bounds, times, counts,
zip bombs) and ``allsmi verify`` compares every one with its chunk's frames.

Files are written by the real sink; ``zstd`` is the real tool.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs
import pytest
import zstandard

from allsmi.adapters import wire
from allsmi.adapters.recording import seektable, summaries
from allsmi.adapters.recording.index import Chunk, SegmentInfo
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.recording.source import RecordingSource
from allsmi.adapters.recording.summaries import read_stored, stored_summaries, summary_of
from allsmi.app.verify import build_report
from allsmi.domain.events import Event
from allsmi.domain.model import Cpu, Frame, Gpu, Header, Memory
from allsmi.domain.summary import KeyList, Summary, SummaryInvalid

from ..fixtures import make_format_fixtures as fx

T0 = 1_776_513_600_000
HOSTS = ("n1:9090", "n2:9090")
HEADER = Header(source="remote", interval_ms=1000, hosts=HOSTS)


def cluster_frame(i: int, rng: random.Random, t_ms: int | None = None) -> Frame:
    """A frame of two hosts with two GPUs each, readings that move, an error now and then."""
    gpus = tuple(
        Gpu(
            uuid=f"GPU-{h}-{g}",
            name="H100",
            device_type="GPU",
            host_id=host,
            hostname=host.split(":")[0],
            instance=host,
            utilization=rng.choice([None, rng.uniform(0, 100)]),
            temperature=rng.randint(30, 90),
            used_memory=rng.randint(0, 80 << 30),
            total_memory=80 << 30,
            frequency=rng.randint(200, 1980),
            power_consumption=rng.uniform(50, 700),
        )
        for h, host in enumerate(HOSTS)
        for g in range(2)
        if not (host == "n2:9090" and i % 7 == 3)  # n2 is missing now and then
    )
    cpus = tuple(
        Cpu(host_id=host, hostname=host, instance=host, utilization=rng.uniform(0, 100))
        for host in HOSTS
    )
    memory = tuple(
        Memory(host_id=host, hostname=host, instance=host, used_bytes=i, total_bytes=2**34)
        for host in HOSTS
    )
    errors = ("http://n2:9090: HTTP 503",) if i % 7 == 3 else ()
    t = T0 + i * 1000 if t_ms is None else t_ms
    return Frame(t_ms=t, seq=i, source="remote", gpus=gpus, cpus=cpus, memory=memory, errors=errors)


def cluster_frames(n: int, seed: int = 1) -> list[Frame]:
    rng = random.Random(seed)
    return [cluster_frame(i, rng) for i in range(n)]


def write(
    path: Path,
    frames: list[Frame],
    *,
    codec: Codec = Codec.ZSTD,
    chunk_frames: int = 10,
    close: bool = True,
    given: list[Frame] | None = None,
) -> None:
    """Record ``frames`` with the sink, each given structured (``given``: other structures
    than the lines, a forger's)."""
    config = SinkConfig(path=path, codec=codec, max_size=0, chunk_max_frames=chunk_frames)
    sink = RecordingSink(config, HEADER)
    for n, frame in enumerate(frames):
        assert frame.seq is not None
        structured = frame if given is None else given[n]
        sink.append(wire.encode_line(frame), frame.seq, frame.t_ms, frame=structured)
        sink.flush()
    if close:
        sink.close()


def opened(path: Path) -> tuple[RecordingSource, SegmentInfo, list[Chunk]]:
    source = RecordingSource(path)
    segment = source.segments[0]
    return source, segment, [c for c in source.chunks if c.segment == 0]


def chunk_frames(source: RecordingSource, chunk: Chunk) -> Iterator[Frame]:
    assert chunk.count is not None
    return (source.frame(i) for i in range(chunk.first_index, chunk.first_index + chunk.count))


def merged(parts: list[Summary | None]) -> Summary:
    whole = summaries.new_summary(HEADER)
    for part in parts:
        assert part is not None
        whole.merge(part)
    return whole


def summary_frames(path: Path) -> list[tuple[int, bytes]]:
    """(offset, whole frame) of every summary frame, found by walking the zstd layout."""
    data = path.read_bytes()
    found, at = [], 0
    while at < len(data):
        if data[at : at + 4] == seektable.ZSTD_MAGIC:
            dobj = zstandard.ZstdDecompressor().decompressobj()
            dobj.decompress(data[at:])
            at = len(data) - len(dobj.unused_data)
            continue
        head = seektable.read_head(data[at : at + 8])
        assert head is not None
        if head[0] == seektable.SUMMARY_MAGIC:
            found.append((at, data[at : at + 8 + head[1]]))
        at += 8 + head[1]
    return found


def report_of(path: Path) -> tuple[str, int, list[str]]:
    """(the summaries row, the exit status, the damage) of ``allsmi verify``."""
    report = build_report(RecordingSource(path), deep=False)
    return report.summaries, report.status, report.damage


# --------------------------------------------------------------------------- round trips


def test_every_chunk_stores_the_summary_a_scan_of_its_frames_computes(tmp_path: Path) -> None:
    path = tmp_path / "r.ndjson.zst"
    frames = cluster_frames(95)
    write(path, frames)
    source, segment, chunks = opened(path)
    assert segment.opened_by == "footer" and len(chunks) == 10
    stored = stored_summaries(path, segment, chunks)
    for chunk, summary in zip(chunks, stored, strict=True):
        assert summary == summary_of(chunk_frames(source, chunk), HEADER)
    assert merged(stored) == summary_of(frames, HEADER)


def test_a_crash_cut_file_finds_by_its_markers_every_complete_chunks_summary(
    tmp_path: Path,
) -> None:
    path = tmp_path / "crashed.ndjson.zst"
    frames = cluster_frames(45)
    write(path, frames, close=False)  # kill -9: flushed frames, no footer
    source, segment, chunks = opened(path)
    assert segment.opened_by == "markers" and len(chunks) == 5
    stored = stored_summaries(path, segment, chunks)
    assert stored[-1] is None  # the chunk being written when the recorder died has none yet
    for chunk, summary in zip(chunks[:-1], stored[:-1], strict=True):
        assert summary == summary_of(chunk_frames(source, chunk), HEADER)
    assert merged(stored[:-1]) == summary_of(frames[:40], HEADER)
    row, status, _ = report_of(path)
    assert (row, status) == ("stored for 4 of 5 chunks, all consistent", 0)


def test_a_chunk_with_a_frame_given_unstructured_stores_no_summary(tmp_path: Path) -> None:
    """Never a summary missing frames: chunk 1 has one frame appended without its frame."""
    path = tmp_path / "r.ndjson.zst"
    frames = cluster_frames(30)
    sink = RecordingSink(
        SinkConfig(path=path, codec=Codec.ZSTD, max_size=0, chunk_max_frames=10), HEADER
    )
    for frame in frames:
        assert frame.seq is not None
        sink.append(
            wire.encode_line(frame), frame.seq, frame.t_ms, frame=None if frame.seq == 15 else frame
        )
    sink.close()
    _, segment, chunks = opened(path)
    stored = stored_summaries(path, segment, chunks)
    assert [s is not None for s in stored] == [True, False, True]
    assert report_of(path)[0] == "stored for 2 of 3 chunks, all consistent"


# --------------------------------------------------------------------------- forgeries


def test_another_chunks_summary_put_in_place_is_refused_by_its_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forger stores chunk 0's (valid) summary after every chunk."""
    real = summaries.summary_frame
    first: list[bytes] = []

    def forged(
        summary: Summary,
        cctx: zstandard.ZstdCompressor,
        shared: tuple[int, KeyList] | None,
        events: Sequence[Event] | None,
    ) -> bytes:
        first.append(real(summary, cctx, shared, events))
        return first[0]

    monkeypatch.setattr(summaries, "summary_frame", forged)
    path = tmp_path / "forged.ndjson.zst"
    write(path, cluster_frames(30))
    _, segment, chunks = opened(path)
    found = read_stored(path, segment, chunks)
    assert [f.summary is not None for f in found] == [True, False, False]
    assert all(f.present and f.problem and "outside" in f.problem for f in found[1:])
    row, status, damage = report_of(path)
    assert row == (
        "stored for 3 of 3 chunks; 2 inconsistent "
        "(chunks forged.ndjson.zst #1, forged.ndjson.zst #2)"
    )
    assert status == 1 and any("summar" in d for d in damage)


def test_changed_values_pass_the_reading_checks_and_verify_finds_them(tmp_path: Path) -> None:
    """Summaries of other readings at the same times and counts: only the frames tell."""
    path = tmp_path / "forged.ndjson.zst"
    frames = cluster_frames(30)
    others = cluster_frames(30, seed=2)
    write(path, frames, given=others)
    _, segment, chunks = opened(path)
    assert all(s is not None for s in stored_summaries(path, segment, chunks))
    row, status, damage = report_of(path)
    assert row == (
        "stored for 3 of 3 chunks; 3 inconsistent "
        "(chunks forged.ndjson.zst #0, forged.ndjson.zst #1, forged.ndjson.zst #2)"
    )
    assert status == 1
    assert "3 stored chunk summary(ies) inconsistent with the chunk" in damage


def test_verify_deep_finds_the_same_inconsistent_summaries(tmp_path: Path) -> None:
    path = tmp_path / "forged.ndjson.zst"
    frames = cluster_frames(30)
    write(path, frames, given=[*frames[:10], *cluster_frames(30, seed=2)[10:20], *frames[20:]])
    report = build_report(RecordingSource(path), deep=True)
    assert (
        report.summaries == "stored for 3 of 3 chunks; 1 inconsistent (chunks forged.ndjson.zst #1)"
    )
    assert report.status == 1


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (zstandard.ZstdCompressor().compress(bytes(100 << 20)), "past its bound"),
        (
            zstandard.ZstdCompressor(write_content_size=False).compress(bytes(1 << 20)),
            "past its bound",
        ),
        (zstandard.ZstdCompressor().compress(b"ASUM" + bytes(60))[:-9], "does not decompress"),
        (
            zstandard.ZstdCompressor().compress(b"not a summary, though longer than its header"),
            "bad magic",
        ),
        (b"\x00" * 40, "does not decompress"),
    ],
    ids=["bomb", "bomb-unsized", "truncated", "not-a-summary", "garbage"],
)
def test_a_hostile_payload_is_refused_for_its_chunk_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload: bytes, why: str
) -> None:
    real = summaries.summary_frame
    calls: list[None] = []

    def hostile(
        summary: Summary,
        cctx: zstandard.ZstdCompressor,
        shared: tuple[int, KeyList] | None,
        events: Sequence[Event] | None,
    ) -> bytes:
        calls.append(None)
        if len(calls) == 2:
            return seektable.encode_summary(payload)
        return real(summary, cctx, shared, events)

    monkeypatch.setattr(summaries, "summary_frame", hostile)
    path = tmp_path / "hostile.ndjson.zst"
    write(path, cluster_frames(30))
    _, segment, chunks = opened(path)
    found = read_stored(path, segment, chunks)
    assert [f.summary is not None for f in found] == [True, False, True]
    assert found[1].present and found[1].problem is not None and why in found[1].problem
    assert report_of(path)[1] == 1


def test_a_table_naming_a_summary_where_there_is_none_is_refused(tmp_path: Path) -> None:
    """Entries that point one byte off, or before their own chunk: placement and magic are
    checked before anything is read."""
    path = tmp_path / "r.ndjson.zst"
    write(path, cluster_frames(20))
    _, segment, chunks = opened(path)
    first, second = segment.summaries
    assert first is not None and second is not None
    segment.summaries = [
        attrs.evolve(first, offset=first.offset + 1),
        attrs.evolve(second, offset=chunks[1].start.offset - 1),
    ]
    found = read_stored(path, segment, chunks)
    assert [f.problem for f in found] == [
        f"no summary frame at {first.offset + 1:,}",
        f"summary frame at {chunks[1].start.offset - 1:,} is outside its chunk",
    ]
    assert [f.summary for f in found] == [None, None]


# --------------------------------------------------------------------------- compatibility


def test_zstd_dc_still_reads_every_line(tmp_path: Path) -> None:
    path = tmp_path / "r.ndjson.zst"
    frames = cluster_frames(25)
    write(path, frames)
    assert summary_frames(path)  # the file does hold summary frames
    out = subprocess.run(["zstd", "-dc", str(path)], capture_output=True, check=True).stdout
    if shutil.which("jq"):
        out = subprocess.run(["jq", "-c", "."], input=out, capture_output=True, check=True).stdout
    objs = [json.loads(line) for line in out.splitlines()]
    data = [o for o in objs if "t" in o and not o.get("index") and not o.get("header")]
    assert [o["seq"] for o in data] == list(range(25))


def test_a_summary_frame_lies_right_after_its_chunk_and_is_located_by_table_and_marker(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.ndjson.zst"
    write(path, cluster_frames(20))
    data = path.read_bytes()
    (table_at,) = [seektable.decode_trailer(data[-16:])]
    assert table_at is not None
    table = seektable.decode_table(data[table_at + 8 : len(data) - 16])
    assert table is not None
    located = [(at, len(frame)) for at, frame in summary_frames(path)]
    assert list(table.summaries) == located
    marker_at = located[0][0] + located[0][1]  # the next chunk's marker follows at once
    head = seektable.read_head(data[marker_at : marker_at + 8])
    assert head is not None and head[0] == seektable.MARKER_MAGIC
    second = seektable.decode_marker(data[marker_at + 8 : marker_at + 8 + head[1]])
    assert second is not None and second.sum == located[0][0]


def test_the_new_keys_pass_todays_table_and_marker_decoders() -> None:
    """§10.1, 3: ``summaries`` and ``sum`` are keys the 1.0 decoders ignore; the rows of
    ``chunks`` are as they were (§10.2, 4)."""
    entry = seektable.ChunkEntry(offset=58, seq=0, t_ms=T0, frames=3)
    plain = seektable.Table(chunks=(entry,), last_seq=2, last_t_ms=T0 + 2000)
    with_key = seektable.Table(
        chunks=(entry,), last_seq=2, last_t_ms=T0 + 2000, summaries=((900, 120),)
    )
    decoded = seektable.decode_table(seektable.encode_table(with_key)[8:])
    assert decoded == with_key
    assert decoded is not None and decoded.chunks == plain.chunks
    payload = json.loads(seektable.encode_table(with_key)[8:])
    assert payload["chunks"] == [[58, 0, T0, 3]] and payload["summaries"] == [[900, 120]]
    marker = seektable.Marker(seq=3, t_ms=T0, prev=0, sum=700)
    raw = seektable.encode_marker(marker)
    assert len(raw) - 8 <= seektable.MAX_MARKER_PAYLOAD
    assert seektable.decode_marker(raw[8:]) == marker
    bad = seektable.decode_table(
        json.dumps(
            {"chunks": [[58, 0, T0, 3]], "last_seq": 2, "last_t": T0, "summaries": 7}
        ).encode()
    )
    assert bad is not None and bad.summaries == ()  # a broken key never costs the table


def test_the_file_written_before_summaries_opens_by_its_footer_with_none(tmp_path: Path) -> None:
    _, segment, chunks = opened(fx.V1)
    assert segment.opened_by == "footer"
    assert stored_summaries(fx.V1, segment, chunks) == [None] * len(chunks)
    assert report_of(fx.V1) == ("none (written before summaries)", 0, [])


@pytest.mark.parametrize(("codec", "name"), [(Codec.GZIP, "gzip"), (Codec.NONE, "plain")])
def test_gzip_and_plain_files_carry_none(tmp_path: Path, codec: Codec, name: str) -> None:
    path = tmp_path / "r.ndjson"
    write(path, cluster_frames(20), codec=codec)
    _, segment, chunks = opened(path)
    assert stored_summaries(path, segment, chunks) == [None] * len(chunks)
    assert report_of(path) == (f"none ({name})", 0, [])


def test_verify_prints_the_summaries_row(tmp_path: Path) -> None:
    path = tmp_path / "r.ndjson.zst"
    write(path, cluster_frames(20))
    out = subprocess.run(
        [sys.executable, "-m", "allsmi", "verify", str(path)], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "summaries:  stored for 2 of 2 chunks, all consistent\n" in out.stdout


def _payload(frame: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompress(frame[8:])


def test_later_summary_frames_refer_to_the_first_ones_keys_and_read_back_whole(
    tmp_path: Path,
) -> None:
    """A chunk whose keys are those of an earlier summary frame stores a reference to it
    (docs/recording-format.md §7.10), not its keys again: smaller, and read back the same."""
    path = tmp_path / "refs.ndjson.zst"
    frames = cluster_frames(30)
    write(path, frames)
    found = summary_frames(path)
    payloads = [_payload(frame) for _, frame in found]
    first_at = found[0][0]
    assert Summary.keys_ref(payloads[0]) is None
    assert [Summary.keys_ref(p) for p in payloads[1:]] == [first_at, first_at]
    sizes = [len(p) - len(Summary.events_of(p) or b"") for p in payloads]  # keys, columns
    assert sizes[1] < sizes[0]
    source, segment, chunks = opened(path)
    stored = stored_summaries(path, segment, chunks)
    for chunk, summary in zip(chunks, stored, strict=True):
        assert summary == summary_of(chunk_frames(source, chunk), HEADER)
    with pytest.raises(SummaryInvalid, match="not read"):
        Summary.from_bytes(payloads[1])


def test_a_reference_to_a_damaged_key_list_leaves_its_chunks_to_be_rescanned(
    tmp_path: Path,
) -> None:
    """The frame listing the keys is damaged: the chunks that refer to it have no summary
    (the map computes them from their frames), never one with other keys."""
    path = tmp_path / "refs.ndjson.zst"
    write(path, cluster_frames(30))
    at, frame = summary_frames(path)[0]
    data = bytearray(path.read_bytes())
    data[at + 8 : at + len(frame)] = bytes(len(frame) - 8)  # zeros: no zstd frame
    path.write_bytes(bytes(data))
    _, segment, chunks = opened(path)
    found = read_stored(path, segment, chunks)
    assert [f.summary for f in found] == [None, None, None]
    assert all(f.present and f.problem for f in found)
    assert found[1].problem is not None and "not read" in found[1].problem
