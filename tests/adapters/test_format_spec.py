"""The recording format as docs/recording-format.md specifies it, kept honest both ways.

- The committed version-1 file (tests/fixtures/format-v1.ndjson.zst, written by allsmi's sink)
  opens by its footer with the expected frames, and so does a file holding everything a later
  version may add — skippable frames, line kinds and keys a version-1 reader does not know
  (format-v1-extended.ndjson.zst, laid out from the text alone): the same frames (§10.1).
- A walker written from the text alone (§6–§7: struct, zstandard and JSON, nothing of allsmi's
  reader) checks the layout of both fixtures and of what today's writer writes.
- The text's tables — constants, the magic-number registry, the key tables of every line and
  row, segment names — and its byte examples equal the code and the fixtures.

The fixtures are made by tests/fixtures/make_format_fixtures.py and never regenerated to
follow a new writer: what allsmi wrote once, every later allsmi must read.
"""

from __future__ import annotations

import json
import re
import struct
import types
import typing
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any, Final, NamedTuple

import attrs
import orjson
import pytest
import zstandard

from allsmi.adapters import wire
from allsmi.adapters.recording import decoding, seektable, sink
from allsmi.adapters.recording.lock import lock_path
from allsmi.adapters.recording.sink import Codec, RecordingSink, SinkConfig
from allsmi.adapters.recording.source import RecordingSource
from allsmi.domain import model
from allsmi.domain.errors import RecordingUnreadable, UnsupportedSchema
from allsmi.domain.model import Frame, Header, IndexLine
from allsmi.domain.segments import segment_name, segment_number

from ..fixtures import make_format_fixtures as fx

ROOT: Final = Path(__file__).resolve().parents[2]
SPEC: Final = ROOT / "docs" / "recording-format.md"
SKIPPABLE_FIRST: Final = 0x184D2A50
SKIPPABLE_LAST: Final = 0x184D2A5F


# --------------------------------------------------------------------------- the text


def spec() -> str:
    return SPEC.read_text(encoding="utf-8")


def table_after(heading: str) -> list[list[str]]:
    """The rows (cells stripped, header and rule dropped) of the first table after the first
    line of the spec that contains ``heading``."""
    lines = spec().splitlines()
    start = next(i for i, line in enumerate(lines) if heading in line)
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    assert len(rows) > 2, f"no table after {heading!r}"
    return rows[2:]


def unquote(cell: str) -> str:
    return cell.strip("`")


def literal(cell: str) -> object:
    """A value cell of §11: ``1``, ``"chunked-1"``, ``0x184D2A5A`` or ``28 B5 2F FD``."""
    text = unquote(cell)
    if text.startswith("0x"):
        return int(text, 16)
    if re.fullmatch(r"[0-9A-F]{2}( [0-9A-F]{2})+", text):
        return bytes.fromhex(text)
    return json.loads(text)


# --------------------------------------------------------------------------- a walker from the text


class Item(NamedTuple):
    """One frame of a zstd segment (§7.2): a zstd frame (its decoded bytes) or a skippable
    frame (its payload)."""

    offset: int
    size: int
    magic: int | None  # None for a zstd frame
    content: bytes


KINDS: Final = {
    0x184D2A5A: "marker",
    0x184D2A5B: "table",
    0x184D2A5C: "trailer",
    0x184D2A51: "summary",
}  # §7.6


def walk(data: bytes) -> list[Item]:
    """Every frame of a zstd segment, in order (§7.2)."""
    items: list[Item] = []
    at = 0
    while at < len(data):
        if data[at : at + 4] == b"\x28\xb5\x2f\xfd":
            dobj = zstandard.ZstdDecompressor().decompressobj()
            content = dobj.decompress(data[at:])
            assert dobj.eof, f"the zstd frame at {at} does not end"
            size = len(data) - at - len(dobj.unused_data)
            items.append(Item(at, size, None, content))
        else:
            magic, length = struct.unpack_from("<II", data, at)
            assert SKIPPABLE_FIRST <= magic <= SKIPPABLE_LAST, f"no frame at {at}"
            items.append(Item(at, 8 + length, magic, data[at + 8 : at + 8 + length]))
        at += items[-1].size
    assert at == len(data)
    return items


def kind_of(obj: dict[str, Any]) -> str:
    """§3.2, in the order of its table."""
    if obj.get("header") is True:
        return "header"
    if obj.get("index") is True:
        return "index"
    if isinstance(obj.get("t"), str):
        return "data"
    return "other"


def ms(t: str) -> int:
    return int(datetime.fromisoformat(t).timestamp() * 1000)


@attrs.define
class Layout:
    data_lines: list[bytes] = attrs.field(factory=list)
    other_lines: list[bytes] = attrs.field(factory=list)  # kinds version 1 does not define
    foreign: list[int] = attrs.field(factory=list)  # magics of skippable frames not ours
    summaries: list[list[int] | None] = attrs.field(factory=list)  # [offset, size] per chunk


def check_layout(data: bytes) -> Layout:
    """Assert that a closed zstd segment is laid out as §6–§7 say; what it holds."""
    items = walk(data)
    layout = Layout()
    assert items[0].magic == fx.MARKER_MAGIC and items[0].offset == 0  # §7.2
    trailer = items[-1]
    assert trailer.magic == fx.TRAILER_MAGIC and trailer.size == 16  # §7.5
    (table_at,) = struct.unpack("<Q", trailer.content)
    (table_item,) = [i for i in items if i.offset == table_at]
    assert table_item.magic == fx.TABLE_MAGIC and len(table_item.content) <= 64 << 20
    table = json.loads(table_item.content)
    entries: list[list[int]] = []
    prev = -1
    last: dict[str, Any] | None = None
    for n, item in enumerate(items):
        if item.magic is None:
            assert items[n - 1].magic == fx.MARKER_MAGIC, "a chunk without its marker"
            continue
        if item.magic not in KINDS:
            layout.foreign.append(item.magic)
            continue
        if KINDS[item.magic] == "summary":  # right after its chunk; one zstd frame inside
            assert items[n - 1].magic is None, "a summary frame not right after its chunk"
            assert len(item.content) <= 16 << 20
            assert zstandard.ZstdDecompressor().decompress(item.content).startswith(b"ASUM")
            layout.summaries[-1] = [item.offset, item.size]
            continue
        if item.magic != fx.MARKER_MAGIC:
            continue
        assert len(item.content) <= 256
        marker = json.loads(item.content)
        assert marker["prev"] == prev  # §7.3
        if entries:  # the previous chunk's summary frame, when it has one
            assert marker.get("sum", -1) == (layout.summaries[-1] or [-1])[0]
        prev = item.offset
        chunk = items[n + 1]
        assert chunk.magic is None, "a marker not followed by its chunk"
        params = zstandard.get_frame_parameters(data[chunk.offset : chunk.offset + 18])
        assert params.has_checksum and params.window_size <= 128 << 20  # §7.2
        objs = [(raw, orjson.loads(raw)) for raw in chunk.content.splitlines()]
        if not entries:
            assert kind_of(objs[0][1]) == "header"  # §6.1: the first chunk only
            objs = objs[1:]
        index = objs[0][1]
        assert kind_of(index) == "index"
        assert index["byte_offset"] == chunk.offset  # §6.3
        assert (index["seq"], index["t"]) == (marker["seq"], marker["t"])
        frames = 0
        for raw, obj in objs[1:]:
            assert obj["schema"] == 1 and next(iter(obj)) == "schema"
            kind = kind_of(obj)
            if kind == "other":
                layout.other_lines.append(raw)
                continue
            assert kind == "data", f"a {kind} line inside a chunk"
            assert obj["seq"] == marker["seq"] + frames  # §7.4: one more per frame
            assert frames or obj["t"] == marker["t"]
            layout.data_lines.append(raw)
            last = obj
            frames += 1
        assert 1 <= frames <= 1000
        entries.append([chunk.offset, marker["seq"], ms(marker["t"]), frames])
        layout.summaries.append(None)
    assert last is not None
    assert table == {
        **table,
        "chunks": entries,
        "last_seq": last["seq"],
        "last_t": ms(last["t"]),
    }
    assert all(len(entry) == 4 for entry in table["chunks"])
    if any(layout.summaries):
        assert table["summaries"] == layout.summaries
    else:
        assert "summaries" not in table
    return layout


# --------------------------------------------------------------------------- helpers


def read_all(path: Path) -> tuple[RecordingSource, list[Frame]]:
    source = RecordingSource(path)
    return source, [source.frame(i) for i in range(source.frame_count)]


def write_with_sink(path: Path, codec: Codec, chunk_frames: int) -> None:
    config = SinkConfig(path=path, codec=codec, max_size=0, chunk_max_frames=chunk_frames)
    writer = RecordingSink(config, fx.HEADER)
    for frame in fx.expected_frames():
        assert frame.seq is not None
        writer.append(wire.encode_line(frame), frame.seq, frame.t_ms, frame=frame)
        writer.flush()
    writer.close()


# --------------------------------------------------------------------------- (a) version 1


def test_the_v1_fixture_opens_by_its_footer_with_the_expected_frames() -> None:
    source, frames = read_all(fx.V1)
    assert [s.opened_by for s in source.segments] == ["footer"]
    assert frames == fx.expected_frames()
    assert source.header == fx.HEADER
    assert (source.skipped_lines, source.warnings) == (0, [])


def test_the_v1_fixture_is_laid_out_as_the_spec_says() -> None:
    layout = check_layout(fx.V1.read_bytes())
    source = RecordingSource(fx.V1)
    assert layout.data_lines == [source.raw(i) for i in range(source.frame_count)]
    assert (layout.other_lines, layout.foreign) == ([], [])


@pytest.mark.parametrize("chunk_frames", [1, 3, 1000])
def test_todays_writer_lays_out_zstd_as_the_spec_says(tmp_path: Path, chunk_frames: int) -> None:
    path = tmp_path / "today.ndjson.zst"
    write_with_sink(path, Codec.ZSTD, chunk_frames)
    layout = check_layout(path.read_bytes())
    assert [wire.decode_line(raw, 1) for raw in layout.data_lines] == fx.expected_frames()
    assert all(layout.summaries)  # every chunk is followed by its summary frame


@pytest.mark.parametrize("codec", [Codec.GZIP, Codec.NONE])
def test_todays_index_offsets_point_at_their_chunk(tmp_path: Path, codec: Codec) -> None:
    """§6.3: a gzip member's first byte; a plain file's index line itself."""
    path = tmp_path / "today.ndjson"
    write_with_sink(path, codec, 3)
    data = path.read_bytes()
    indexes = [
        line
        for line in map(orjson.loads, decoding.iter_file_lines(path))
        if line.get("index") is True
    ]
    assert len(indexes) == 4
    for n, index in enumerate(indexes):
        at = index["byte_offset"]
        if codec is Codec.GZIP:
            assert data[at : at + 2] == b"\x1f\x8b"
            lines = zlib.decompressobj(31).decompress(data[at:]).splitlines()  # one member
            first = lines[1] if n == 0 else lines[0]  # the header opens the first chunk
        else:
            first = data[at:].split(b"\n", 1)[0]
        assert orjson.loads(first) == index


# --------------------------------------------------------------------------- (b) later versions


def test_unknown_frames_kinds_and_keys_leave_the_footer_and_the_frames_as_they_were() -> None:
    source, frames = read_all(fx.V1_EXTENDED)
    assert [s.opened_by for s in source.segments] == ["footer"]
    assert frames == fx.expected_frames() == read_all(fx.V1)[1]
    assert source.header == fx.HEADER  # unknown header keys ignored
    assert (source.skipped_lines, source.warnings) == (0, [])


def test_the_extended_fixture_holds_what_it_claims() -> None:
    """Unknown skippable frames between chunks, an unknown line kind, unknown keys."""
    layout = check_layout(fx.V1_EXTENDED.read_bytes())
    assert layout.foreign == [fx.FOREIGN_SEEKABLE_MAGIC, fx.FOREIGN_PZSTD_MAGIC]
    assert layout.other_lines == [fx.UNKNOWN_KIND_LINE.rstrip(b"\n")]
    first = orjson.loads(layout.data_lines[0])
    assert {"x_collector", "x_summary"} <= first.keys()
    assert "x_ecc_errors" in first["gpus"][0]


def test_the_extended_file_without_its_footer_opens_by_its_markers(tmp_path: Path) -> None:
    """§9: still being written, or crashed after its last chunk."""
    data = fx.V1_EXTENDED.read_bytes()
    (table_at,) = struct.unpack("<Q", data[-8:])
    path = tmp_path / "cut.ndjson.zst"
    path.write_bytes(data[:table_at])
    source, frames = read_all(path)
    assert [s.opened_by for s in source.segments] == ["markers"]
    assert frames == fx.expected_frames()


def test_a_scanned_file_skips_unknown_line_kinds_without_counting_them(tmp_path: Path) -> None:
    path = tmp_path / "extended.ndjson"
    path.write_bytes(b"".join(line + b"\n" for line in decoding.iter_file_lines(fx.V1_EXTENDED)))
    source, frames = read_all(path)
    assert [s.opened_by for s in source.segments] == ["scan"]
    assert frames == fx.expected_frames()
    assert source.skipped_lines == 0


# --------------------------------------------------------------------------- crash states (§9)


def test_a_file_cut_anywhere_keeps_every_complete_frame_before_the_cut(tmp_path: Path) -> None:
    data = fx.V1.read_bytes()
    expected = fx.expected_frames()
    path = tmp_path / "cut.ndjson.zst"
    kept = 0
    for cut in [*range(0, len(data), 53), len(data) - 16, len(data) - 1]:
        path.write_bytes(data[:cut])
        try:
            _, frames = read_all(path)
        except RecordingUnreadable:
            frames = []
        assert frames == expected[: len(frames)]
        assert len(frames) >= kept
        kept = len(frames)
    assert kept == len(expected)


def test_zero_bytes_after_the_end_are_not_damage(tmp_path: Path) -> None:
    path = tmp_path / "power-cut.ndjson.zst"
    path.write_bytes(fx.V1.read_bytes() + bytes(4096))
    source, frames = read_all(path)
    assert [s.opened_by for s in source.segments] == ["footer"]
    assert frames == fx.expected_frames()


def test_a_schema_other_than_1_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "v2.ndjson"
    header = orjson.loads(wire.encode_line(fx.HEADER))
    frame = orjson.loads(wire.encode_line(fx.expected_frames()[0]))
    path.write_bytes(b"".join(orjson.dumps({**o, "schema": 2}) + b"\n" for o in (header, frame)))
    with pytest.raises(UnsupportedSchema, match="unsupported schema version 2"):
        RecordingSource(path)


def test_a_header_keeps_at_most_1024_hosts(tmp_path: Path) -> None:
    hosts = tuple(f"node-{n:04d}:9090" for n in range(1500))
    path = tmp_path / "many.ndjson"
    first = fx.expected_frames()[0]
    header = Header(source="remote", interval_ms=3000, hosts=hosts)
    path.write_bytes(wire.encode_line(header) + wire.encode_line(first))
    source = RecordingSource(path)
    assert source.header is not None
    assert source.header.hosts == hosts[: const("MAX_HEADER_HOSTS")]


# --------------------------------------------------------------------------- (c) the numbers


CODE_CONSTANTS: Final[dict[str, object]] = {
    "SCHEMA_VERSION": model.SCHEMA_VERSION,
    "FORMAT_CHUNKED": model.FORMAT_CHUNKED,
    "WRITER_NAME": model.WRITER_NAME,
    "ZSTD_MAGIC": seektable.ZSTD_MAGIC,
    "GZIP_MAGIC": decoding.GZIP_MAGIC,
    "MARKER_MAGIC": seektable.MARKER_MAGIC,
    "TABLE_MAGIC": seektable.TABLE_MAGIC,
    "TRAILER_MAGIC": seektable.TRAILER_MAGIC,
    "SUMMARY_MAGIC": seektable.SUMMARY_MAGIC,
    "MAX_SUMMARY_PAYLOAD": seektable.MAX_SUMMARY_PAYLOAD,
    "TRAILER_SIZE": seektable.TRAILER_SIZE,
    "MAX_MARKER_PAYLOAD": seektable.MAX_MARKER_PAYLOAD,
    "MAX_TABLE_PAYLOAD": seektable.MAX_TABLE_PAYLOAD,
    "MAX_CHUNK_FRAMES": seektable.MAX_CHUNK_FRAMES,
    "CHUNK_MAX_BYTES": sink.CHUNK_MAX_BYTES,
    "MAX_LINE": decoding.MAX_LINE,
    "MAX_WINDOW": decoding.MAX_WINDOW,
}


def const(name: str) -> Any:
    """A value of the spec's §11 table."""
    return {unquote(row[0]): literal(row[1]) for row in table_after("## 11.")}[name]


def test_the_constants_of_the_spec_are_the_codes() -> None:
    stated = {unquote(row[0]): literal(row[1]) for row in table_after("## 11.")}
    assert stated.keys() - CODE_CONSTANTS.keys() == {"MAX_HEADER_HOSTS"}  # checked by reading
    assert {name: stated[name] for name in CODE_CONSTANTS} == CODE_CONSTANTS
    assert sink.CHUNK_MAX_FRAMES == seektable.MAX_CHUNK_FRAMES
    assert sink.MAX_LINE_BYTES == decoding.MAX_LINE
    assert (fx.MARKER_MAGIC, fx.TABLE_MAGIC, fx.TRAILER_MAGIC) == (
        seektable.MARKER_MAGIC,
        seektable.TABLE_MAGIC,
        seektable.TRAILER_MAGIC,
    )


def test_the_registry_names_all_sixteen_magics_and_ours_are_the_codes() -> None:
    rows = table_after("### 7.6")
    magics = [int(unquote(row[0]), 16) for row in rows]
    assert magics == list(range(SKIPPABLE_FIRST, SKIPPABLE_LAST + 1))
    kinds = {int(unquote(row[0]), 16): row[1] for row in rows}
    bounds = {int(unquote(row[0]), 16): row[3] for row in rows}
    known = {"marker", "table", "trailer", "summary", "unassigned", "foreign", "reserved"}
    assert set(kinds.values()) <= known
    ours = {m: k for m, k in kinds.items() if k in ("marker", "table", "trailer", "summary")}
    assert ours == {
        seektable.SUMMARY_MAGIC: "summary",
        seektable.MARKER_MAGIC: "marker",
        seektable.TABLE_MAGIC: "table",
        seektable.TRAILER_MAGIC: "trailer",
    }
    assert [int(bounds[m]) for m in ours] == [
        seektable.MAX_SUMMARY_PAYLOAD,
        seektable.MAX_MARKER_PAYLOAD,
        seektable.MAX_TABLE_PAYLOAD,
        seektable.TRAILER_SIZE - 8,
    ]
    assert kinds[fx.FOREIGN_SEEKABLE_MAGIC] == kinds[fx.FOREIGN_PZSTD_MAGIC] == "foreign"


def test_the_byte_examples_of_the_spec_are_the_fixtures_and_the_codes() -> None:
    text = spec()
    data = fx.V1.read_bytes()
    marker = re.search(r"^5A 2A 4D 18  32 00 00 00  (\{.*\})$", text, re.M)
    trailer = re.search(r"^(5C 2A 4D 18  08 00 00 00  [0-9A-F ]+)$", text, re.M)
    assert marker is not None and trailer is not None
    marker_bytes = bytes.fromhex("5A2A4D18 32000000") + marker.group(1).encode()
    trailer_bytes = bytes.fromhex(trailer.group(1))
    assert data.startswith(marker_bytes) and data.endswith(trailer_bytes)
    t0 = fx.T0_MS
    assert marker_bytes == seektable.encode_marker(seektable.Marker(seq=0, t_ms=t0, prev=-1))
    (table_at,) = struct.unpack("<Q", trailer_bytes[8:])
    assert trailer_bytes == seektable.encode_trailer(table_at)
    assert seektable.decode_trailer(trailer_bytes) == table_at == 0x12CE
    head = bytes.fromhex("5A2A4D18 02000000")  # magic, then the payload's size: 2
    assert seektable.skippable(seektable.MARKER_MAGIC, b"{}") == head + b"{}"
    assert seektable.read_head(trailer_bytes[:8]) == (seektable.TRAILER_MAGIC, 8)


def test_the_example_lines_of_the_spec_are_lines_of_the_fixture() -> None:
    examples = re.findall(r"```json\n(\{.*\})\n```", spec())
    lines = set(decoding.iter_file_lines(fx.V1))
    assert len(examples) == 4
    assert [example.encode() in lines for example in examples] == [True, True, True, False]
    assert examples[3].encode() == fx.UNKNOWN_KIND_LINE.rstrip(b"\n")  # §10.3: the extended one


def test_the_annotated_file_of_appendix_b_is_the_fixture() -> None:
    rows = re.findall(r"^ *(\d+) +(\d+)  (marker|zstd frame|table|trailer) ", spec(), re.M)
    items = walk(fx.V1.read_bytes())
    kinds = [KINDS.get(i.magic, "?") if i.magic is not None else "zstd frame" for i in items]
    assert [(int(o), int(s), k) for o, s, k in rows] == [
        (i.offset, i.size, k) for i, k in zip(items, kinds, strict=True)
    ]
    assert f"({fx.V1.stat().st_size:,} bytes)" in spec()


def test_codecs_are_told_by_their_first_bytes() -> None:
    """§7.1: never by the name."""
    assert decoding.sniff(bytes.fromhex("28B52FFD0458")) == "zstd"
    assert decoding.sniff(seektable.encode_trailer(0)[:8]) == "zstd"
    assert decoding.sniff(bytes.fromhex("5E2A4D1804000000")) == "zstd"
    assert decoding.sniff(bytes.fromhex("1F8B0800")) == "gzip"
    assert decoding.sniff(b'{"schema":1,') == "none"


# --------------------------------------------------------------------------- the tables


def spec_type(kind: Any) -> str:
    """How §5 writes a model field's type."""
    args = typing.get_args(kind)
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = (a for a in args if a is not type(None))
        return spec_type(inner) + " or null"
    if origin is tuple:
        return "array"
    if origin is dict or (isinstance(kind, type) and attrs.has(kind)):
        return "object"
    return {int: "integer", float: "number", str: "string", bool: "boolean"}[kind]


def spec_default(field: attrs.Attribute[Any]) -> str:
    """How §5 writes what an absent key means."""
    if field.default is attrs.NOTHING:
        return "required"
    default = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory()  # type: ignore[union-attr]
    if isinstance(default, tuple):
        default = list(default)
    return f"`{json.dumps(default)}`"


ROW_MODELS: Final = sorted(set(re.findall(r"\(model: `(\w+)`\)", spec())))


def test_every_row_class_of_the_model_has_its_table() -> None:
    rows = {model.Gpu, model.Cpu, model.Memory, model.Chassis, model.GpuProcess, model.Storage}
    nested: set[type] = set()
    for cls in rows:
        for field in attrs.fields(attrs.resolve_types(cls)):
            for arg in (*typing.get_args(field.type), field.type):
                inner = typing.get_args(arg)[0] if typing.get_origin(arg) is tuple else arg
                if isinstance(inner, type) and attrs.has(inner):
                    nested.add(inner)
    assert sorted(c.__name__ for c in rows | nested) == ROW_MODELS


@pytest.mark.parametrize("name", ROW_MODELS)
def test_a_row_table_lists_the_models_keys_types_and_defaults(name: str) -> None:
    cls = attrs.resolve_types(getattr(model, name))
    stated = [(unquote(r[0]), r[1], r[2]) for r in table_after(f"(model: `{name}`)")]
    fields = attrs.fields(cls)
    assert stated == [(f.name, spec_type(f.type), spec_default(f)) for f in fields]


def test_the_line_tables_list_the_writers_keys_in_order() -> None:
    def keys(line: Frame | Header | IndexLine) -> list[str]:
        return list(orjson.loads(wire.encode_line(line)))

    every_section = fx.expected_frames()[0]
    assert every_section.processes is not None and every_section.storage
    assert [unquote(r[0]) for r in table_after("## 4. The header line")] == keys(fx.HEADER)
    assert [unquote(r[0]) for r in table_after("### 5.1 Top-level keys")] == keys(every_section)
    index = IndexLine(t_ms=fx.T0_MS, seq=0, byte_offset=58)
    assert [unquote(r[0]) for r in table_after("### 6.2 The index line")] == keys(index)


def test_the_segment_names_of_the_spec_are_the_codes() -> None:
    for row in table_after("### 8.1 Segment names"):
        active = unquote(row[0])
        listed = [unquote(n.strip()) for n in row[1].split(",") if "…" not in n]
        assert listed == [segment_name(active, k) for k in range(1, len(listed) + 1)]
        assert all(segment_number(active, n) == k for k, n in enumerate(listed, 1))
    assert segment_name("trace.ndjson.zst", 10000) == "trace.10000.ndjson.zst"
    assert segment_number("trace.ndjson.zst", "trace.00001.ndjson.zst") is None
    lock = lock_path(Path("trace.ndjson.zst")).name
    assert lock == "trace.ndjson.zst.lock" and segment_number("trace.ndjson.zst", lock) is None
