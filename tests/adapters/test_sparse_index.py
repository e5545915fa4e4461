"""A large plain file allsmi wrote is indexed by its index lines alone, one read a stride
(:func:`allsmi.adapters.recording.bulk.bulk_scan`, docs/recording-format.md §6.2-6.3): the
chunks it makes hold exactly the frames the exact scan finds, and any file whose index lines
disagree with it is counted line by line from the last one that agreed. Strides are shrunk
so that small real files take the sparse path."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from allsmi.adapters.recording import bulk as bulk_module
from allsmi.adapters.recording.bulk import Batch, bulk_scan
from allsmi.adapters.recording.sink import Codec
from allsmi.adapters.recording.source import RecordingSource

from . import recordings as rec

STRIDE = 64 * 1024


@pytest.fixture(autouse=True)
def small_stride(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_module, "SPARSE_STRIDE", STRIDE)


def batches(path: Path) -> list[Batch]:
    with open(path, "rb") as fh:
        return list(bulk_scan(fh, "none", 0, key_before=None))


def ours(path: Path, n: int = 4000) -> Path:
    rec.write_sink(path, n, Codec.NONE)  # 100-frame chunks, one index line before each
    assert path.stat().st_size >= bulk_module.SPARSE_MIN_STRIDES * STRIDE
    return path


def opened(path: Path) -> RecordingSource:
    source = RecordingSource(path, background=True)
    while source.indexing is not None:
        source.poll_index()
    return source


def read_every_frame(source: RecordingSource) -> list[bytes]:
    lines, i = [], 0
    while i < source.frame_count:  # reading corrects counts: re-read the total each step
        lines.append(source.raw(i))
        i += 1
    return lines


def assert_same_frames(path: Path) -> RecordingSource:
    """The background index ends with the exact scan's frames, times and lines."""
    exact = RecordingSource(path)
    sampled = opened(path)
    assert read_every_frame(sampled) == read_every_frame(exact)
    assert sampled.frame_count == exact.frame_count
    assert [sampled.time_at(i) for i in range(0, exact.frame_count, 97)] == [
        exact.time_at(i) for i in range(0, exact.frame_count, 97)
    ]
    return sampled


def test_our_plain_file_is_indexed_by_its_index_lines_with_exact_counts(tmp_path: Path) -> None:
    path = ours(tmp_path / "r.ndjson")
    found = batches(path)
    done = found[-1].done
    assert done is not None and done.sampled and done.runs == 1
    chunks = [c for b in found for c in b.chunks]
    assert sum(c.count or 0 for c in chunks) == 4000
    assert chunks[0].count == 100  # the writer's first chunk alone: shown at once
    assert len(chunks) < 4000 // 100  # one read a stride, not one a writer chunk
    first = 0
    for chunk in chunks:  # each begins at an index line, with its first frame's time
        assert chunk.t_first == rec.T0 + first * 1000
        first += chunk.count or 0
    assert len(found) >= 2 and found[0].head  # the first chunk came in a batch of its own
    source = assert_same_frames(path)
    assert source.generation == 0  # no count was corrected: nothing was rebuilt


def test_a_torn_last_line_is_left_out_and_told(tmp_path: Path) -> None:
    path = ours(tmp_path / "t.ndjson")
    path.write_bytes(path.read_bytes()[:-40])  # the last frame cut short
    done = batches(path)[-1].done
    assert done is not None and done.sampled and done.stats.torn_tail
    assert assert_same_frames(path).frame_count == 3999


def _stale(path: Path) -> None:
    """Every offset stale: the recording decompressed from zstd (offsets of zstd frames)."""
    packed = path.with_suffix(".zst")
    rec.write_sink(packed, 4000, Codec.ZSTD)
    path.write_bytes(subprocess.run(["zstd", "-dc", str(packed)], capture_output=True).stdout)


def _filtered(path: Path) -> None:
    rec.jq_filtered(path, 4000)  # lines rewritten, every third frame gone


def _concatenated(path: Path) -> None:
    first, second = path.with_suffix(".a"), path.with_suffix(".b")
    rec.write_sink(first, 3000, Codec.NONE)
    rec.write_sink(second, 1500, Codec.NONE)  # numbered from 0 again: another run
    path.write_bytes(first.read_bytes() + second.read_bytes())


def _edited_mid(path: Path) -> None:
    """A line replaced mid-file by a longer corrupt one: offsets after it are stale."""
    ours(path)
    data = path.read_bytes()
    at = data.index(b"\n", len(data) // 2) + 1
    end = data.index(b"\n", at)
    path.write_bytes(data[:at] + b"{corrupt" * 100 + data[end:])


def _run_in_tail(path: Path) -> None:
    """Another run's header after the last stride's index line."""
    ours(path)
    extra = path.with_suffix(".b")
    rec.write_sink(extra, 3, Codec.NONE)
    path.write_bytes(path.read_bytes() + extra.read_bytes())


@pytest.mark.parametrize(
    ("build", "sampled_at_all"),
    [(_stale, False), (_filtered, False), (_concatenated, True), (_edited_mid, True),
     (_run_in_tail, True)],
    ids=["decompressed-zstd", "jq-filtered", "concatenated", "edited-mid-file", "run-in-tail"],
)  # fmt: skip
def test_a_file_whose_index_lines_disagree_is_counted_from_the_last_that_agreed(
    tmp_path: Path, build: object, sampled_at_all: bool
) -> None:
    path = tmp_path / "x.ndjson"
    assert callable(build)
    build(path)
    found = batches(path)
    done = found[-1].done
    assert done is not None and not done.sampled  # counted, at least from somewhere on
    chunks = [c for b in found for c in b.chunks]
    # sampled up to the disagreement: the first chunk is the writer's (100 frames), where
    # a count from the first byte makes a first chunk of 4 KiB (a dozen frames here)
    assert (chunks[0].count == 100) is sampled_at_all
    exact = RecordingSource(path)
    source = assert_same_frames(path)
    assert source.segments[0].runs == exact.segments[0].runs
    assert source.segments[0].run_starts == exact.segments[0].run_starts
