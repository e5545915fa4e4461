"""The one serializer (docs/architecture.md §3.7): the schema-1 model to compact JSON
lines and back.

Every JSON line allsmi writes or reads goes through this module — ``snapshot``, ``record``,
the exporter's ``/snapshot`` and ``/events``, and the recording reader. It is a single cattrs
converter over orjson.

Rules it obeys:
- Lines are compact, ``\\n``-terminated, with the key order of docs/recording-format.md §3–§6:
  ``schema`` first, then the kind (``header``/``index``) or ``t``, so a reader learns a
  line's kind and time from its first bytes (see :func:`slice_line`).
- NaN and ±Inf are never written (orjson writes them as ``null``; the model's readers never
  produce them anyway).
- Reading accepts all-smi's lines too (docs/recording-format.md Appendix A): ``timestamp``
  and ``hostname`` keys, sorted keys, −1/0 sentinels for missing readings, error objects
  instead of strings, ``http://`` host ids. They become the same model as ours.
- Malformed input raises :class:`RecordingCorrupt` naming the line and the reason; a line
  whose ``schema`` is not 1 raises :class:`UnsupportedSchema` (the caller decides whether
  that is fatal or one corrupt line).
"""

from __future__ import annotations

import contextlib
import gc
import re
import typing
from collections.abc import Callable, Iterator
from types import GenericAlias
from typing import Any, Final, NamedTuple

import cattrs
import orjson
from cattrs.fns import identity
from cattrs.gen import make_dict_unstructure_fn, override

from allsmi.adapters import rowhooks
from allsmi.domain.errors import RecordingCorrupt, UnsupportedSchema
from allsmi.domain.model import (
    SCHEMA_VERSION,
    SECTION_TABLE,
    Frame,
    Gpu,
    GpuHealth,
    Header,
    IndexLine,
    Record,
    Source,
    normalise_host_id,
)
from allsmi.domain.parse import format_rfc3339_ms, parse_rfc3339_ms
from allsmi.domain.sections import build_frame

converter: Final = cattrs.Converter()
# Structuring rows is the hot path of replay and remote recording: a converter without detailed
# validation, with generated row hooks (adapters/rowhooks.py), does a 100-host frame in about
# half the time. When it fails, the detailed converter runs on the same input to say precisely
# what is wrong.
_fast: Final = cattrs.Converter(detailed_validation=False)


def _optional_int(value: Any, _: object) -> int | None:
    return None if value is None else rowhooks.to_int(value)


def _is_row_tuple(kind: Any) -> bool:
    """``tuple[X, ...]``: every section and every nested list of rows in the model."""
    args = typing.get_args(kind)
    return typing.get_origin(kind) is tuple and len(args) == 2 and args[1] is Ellipsis


def _structure_row_tuple(kind: Any) -> Callable[[Any, object], tuple[Any, ...]]:
    """cattrs' generic tuple path looks the element hook up on every call; this binds it once."""
    element = typing.get_args(kind)[0]
    structure = _fast.get_structure_hook(element)

    def rows(value: Any, _: object) -> tuple[Any, ...]:
        return tuple([structure(item, element) for item in value])

    return rows


def _unstructure_row_tuple(kind: Any) -> Callable[[Any], list[Any]]:
    element = typing.get_args(kind)[0]
    unstructure = converter.get_unstructure_hook(element)
    if unstructure is identity:
        return list

    def rows(value: Any) -> list[Any]:
        return [unstructure(item) for item in value]

    return rows


_fast.register_structure_hook_factory(rowhooks.is_plain_row, rowhooks.row_hook_factory(_fast))
_fast.register_structure_hook_factory(_is_row_tuple, _structure_row_tuple)
for _conv in (_fast, converter):
    _conv.register_structure_hook(bool, rowhooks.to_bool)  # before int: bool subclasses it
    _conv.register_structure_hook(int, rowhooks.to_int)
    _conv.register_structure_hook(int | None, _optional_int)
# Writing: optional numbers and strings pass as they are — cattrs then reads them straight off
# the instance instead of calling a hook per field — and row tuples become lists in one pass.
for _plain in (int, float, str):
    converter.register_unstructure_hook(_plain | None, identity)
converter.register_unstructure_hook_factory(_is_row_tuple, _unstructure_row_tuple)
# A GPU's health signals are written only when something was read, and then only the fields
# read (docs/recording-format.md §5.3): a row without them is byte for byte what it was.
converter.register_unstructure_hook(
    GpuHealth,
    make_dict_unstructure_fn(GpuHealth, converter, _cattrs_omit_if_default=True),
)
converter.register_unstructure_hook(
    Gpu, make_dict_unstructure_fn(Gpu, converter, health=override(omit_if_default=True))
)

# (wire key, Frame attribute, section name, ``tuple[row type, ...]``) per section, in the key
# order of a data line: what the converters write and read each section as.
_SECTIONS: Final = tuple(
    (s.key, s.attr, s.name, GenericAlias(tuple, (s.row_type, ...))) for s in SECTION_TABLE
)


# --------------------------------------------------------------------------- writing


def frame_to_dict(frame: Frame) -> dict[str, Any]:
    """The wire object of a data frame, keys in the order of docs/recording-format.md §5.1;
    absent sections omitted."""
    out: dict[str, Any] = {"schema": SCHEMA_VERSION, "t": format_rfc3339_ms(frame.t_ms)}
    if frame.seq is not None:
        out["seq"] = frame.seq
    out["source"] = frame.source
    for key, attr, _, rows_type in _SECTIONS:
        rows = getattr(frame, attr)
        if rows is not None:
            out[key] = converter.unstructure(rows, rows_type)
    out["errors"] = list(frame.errors)
    return out


def header_to_dict(header: Header) -> dict[str, Any]:
    """The header's keys in order; ``started_ms`` last, and only when known (older readers
    ignore it, docs/recording-format.md §10.1)."""
    out: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "header": True,
        "writer": header.writer,
        "format": header.format,
        "all_smi_version": header.all_smi_version,
        "source": header.source,
        "interval_ms": header.interval_ms,
        "hosts": list(header.hosts),
    }
    if header.started_ms is not None:
        out["started_ms"] = header.started_ms
    return out


def index_to_dict(index: IndexLine) -> dict[str, Any]:
    t = None if index.t_ms is None else format_rfc3339_ms(index.t_ms)
    return {
        "schema": SCHEMA_VERSION,
        "index": True,
        "t": t,
        "seq": index.seq,
        "byte_offset": index.byte_offset,
    }


def encode_line(line: Record) -> bytes:
    """One compact JSON line with its ``\\n``."""
    if isinstance(line, Frame):
        with collector_paused():  # a cluster frame's dicts would trigger dozens of collections
            return orjson.dumps(frame_to_dict(line), option=orjson.OPT_APPEND_NEWLINE)
    obj = header_to_dict(line) if isinstance(line, Header) else index_to_dict(line)
    return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)


def encode_pretty(frame: Frame) -> bytes:
    """The indented form ``snapshot --pretty`` prints; same keys, same order."""
    return orjson.dumps(
        frame_to_dict(frame), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
    )


# --------------------------------------------------------------------------- reading


def decode_line(raw: bytes | str, line_no: int) -> Record:
    """Structure one line of a recording (ours or all-smi's) into the model.

    Raises ``RecordingCorrupt(line_no, reason)`` for anything malformed and
    ``UnsupportedSchema`` when the line carries a schema other than 1.
    """
    with collector_paused():
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            raise RecordingCorrupt(line_no, f"invalid JSON ({err.msg})") from None
        if not isinstance(obj, dict):
            raise RecordingCorrupt(line_no, "not a JSON object")
        return decode_object(obj, line_no)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a frame is built: a 100-host frame allocates some
    20,000 containers, which would trigger dozens of collections that can find nothing (a
    decoded frame holds no cycles; refcounting frees it). Restored as it was on exit."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def decode_object(obj: dict[str, Any], line_no: int) -> Record:
    schema = obj.get("schema")
    if schema is None or isinstance(schema, bool):
        raise RecordingCorrupt(line_no, "no schema field")
    if schema != SCHEMA_VERSION:
        raise UnsupportedSchema(schema)
    try:
        if obj.get("header") is True:
            return _structure_header(obj)
        if obj.get("index") is True:
            return _structure_index(obj)
        return _structure_frame(obj)
    except RecordingCorrupt as err:
        raise RecordingCorrupt(line_no, err.reason) from None
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        raise RecordingCorrupt(line_no, f"malformed line ({err})") from None


def _time_of(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, str):
        raise RecordingCorrupt(0, f"missing or non-string {key!r}")
    try:
        return parse_rfc3339_ms(value)
    except ValueError as err:
        raise RecordingCorrupt(0, f"bad time {value!r} ({err})") from None


def _int_or_none(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordingCorrupt(0, f"{what} is not an integer")
    return value


def _structure_header(obj: dict[str, Any]) -> Header:
    hosts = obj.get("hosts") or []
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise RecordingCorrupt(0, "header hosts is not a list of strings")
    source = obj.get("source", "local")
    return Header(
        source="remote" if source == "remote" else "local",
        interval_ms=_int_or_none(obj.get("interval_ms"), "interval_ms"),
        hosts=tuple(normalise_host_id(h) for h in hosts),
        writer=_str_or_none(obj.get("writer")),
        format=_str_or_none(obj.get("format")),
        all_smi_version=_str_or_none(obj.get("all_smi_version")),
        started_ms=_int_or_none(obj.get("started_ms"), "started_ms"),
    )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _structure_index(obj: dict[str, Any]) -> IndexLine:
    seq = _int_or_none(obj.get("seq"), "seq")
    offset = _int_or_none(obj.get("byte_offset"), "byte_offset")
    if seq is None or offset is None or seq < 0 or offset < 0:
        raise RecordingCorrupt(0, "index line needs non-negative seq and byte_offset")
    t_ms = _time_of(obj, "t") if obj.get("t") is not None else None
    return IndexLine(t_ms=t_ms, seq=seq, byte_offset=offset)


def _structure_frame(obj: dict[str, Any]) -> Frame:
    source: Source
    if "t" in obj:
        t_ms = _time_of(obj, "t")
        source = "remote" if obj.get("source") == "remote" else "local"
        errors = obj.get("errors") or []
        if not isinstance(errors, list) or not all(isinstance(e, str) for e in errors):
            raise RecordingCorrupt(0, "errors is not a list of strings")
    elif "timestamp" in obj:
        t_ms = _time_of(obj, "timestamp")
        source = "remote" if obj.get("hostname") == "remote" else "local"
        _from_all_smi(obj)
        errors = obj["errors"]
    else:
        raise RecordingCorrupt(0, "data line has neither 't' nor 'timestamp'")
    sections = {
        name: _structure_rows(obj[key], rows_type, key)
        for key, _, name, rows_type in _SECTIONS
        if obj.get(key) is not None
    }
    seq = _int_or_none(obj.get("seq"), "seq")
    return build_frame(t_ms, sections, seq=seq, source=source, errors=errors)


def _structure_rows(rows: object, target: Any, key: str) -> tuple[Any, ...]:
    if not isinstance(rows, list):
        raise RecordingCorrupt(0, f"{key} is not a list")
    try:
        return _fast.structure(rows, target)
    except Exception:  # any failure: let the detailed converter explain it
        pass
    try:
        return converter.structure(rows, target)
    except cattrs.BaseValidationError as err:
        messages = cattrs.transform_error(err, path=key)
        raise RecordingCorrupt(0, messages[0] if messages else f"bad {key}") from None


# --------------------------------------------------------------------------- all-smi lines

# all-smi writes −1 for "no reading" in these GPU fields and 0 in these (docs/recording-format.md
# Appendix A).
_MINUS_ONE_MEANS_NONE: Final = ("utilization", "power_consumption")
_ZERO_MEANS_NONE: Final = ("temperature", "frequency")
# Sections whose rows carry their host's id (process rows get theirs from the line's hostname).
_HOST_SECTION_KEYS: Final = tuple(s.key for s in SECTION_TABLE if s.per_host)


def _from_all_smi(obj: dict[str, Any]) -> None:
    """Rewrite an all-smi data object in place into our wire shape (sentinels → null)."""
    hostname = obj.get("hostname")
    for gpu in _rows(obj, "gpus"):
        for key in _MINUS_ONE_MEANS_NONE:
            if gpu.get(key) == -1:
                gpu[key] = None
        for key in _ZERO_MEANS_NONE:
            if gpu.get(key) == 0:
                gpu[key] = None
    for cpu in _rows(obj, "cpus"):
        platform = cpu.get("platform_type")
        if isinstance(platform, dict) and len(platform) == 1:
            cpu["platform_type"] = str(next(iter(platform.values())))
    for key in _HOST_SECTION_KEYS:
        for row in _rows(obj, key):
            if isinstance(row.get("host_id"), str):
                row["host_id"] = normalise_host_id(row["host_id"])
    for proc in _rows(obj, "processes"):
        proc.setdefault("host_id", hostname)
        proc.setdefault("hostname", hostname)
    obj["errors"] = [_error_text(e) for e in obj.get("errors") or []]


def _rows(obj: dict[str, Any], key: str) -> list[dict[str, Any]]:
    rows = obj.get(key)
    if rows is None:
        return []
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise RecordingCorrupt(0, f"{key} is not a list of objects")
    return rows


def _error_text(error: object) -> str:
    """all-smi's ``{"kind","message","section"}`` → ``"gpu: <message>"``."""
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        section = error.get("section") or error.get("kind") or "error"
        return f"{section}: {error.get('message', '')}"
    raise RecordingCorrupt(0, "an errors entry is neither a string nor an object")


# --------------------------------------------------------------------------- raw slicing

KIND_DATA: Final = 0
KIND_HEADER: Final = 1
KIND_INDEX: Final = 2
KIND_OTHER: Final = 3  # a schema-1 line of a kind this reader does not know: skipped, not damage


class LineInfo(NamedTuple):
    """What the hot paths need from a raw line: kind, time and (our files) seq."""

    kind: int
    t_ms: int | None
    seq: int | None


_OURS_DATA: Final = b'{"schema":1,"t":"'
_OURS_HEADER: Final = b'{"schema":1,"header":true'
_OURS_INDEX: Final = b'{"schema":1,"index":true,"t":'
_SEQ_KEY: Final = b',"seq":'
_DIGITS: Final = re.compile(rb"[0-9]+")
_TIMESTAMP_KEY: Final = b'"timestamp":"'


def slice_line(raw: bytes) -> LineInfo | None:
    """Kind, ``t`` and ``seq`` of a raw line without parsing the rest of it.

    Our lines carry them in their first bytes; all-smi's sorted keys put ``timestamp`` last.
    Anything else (``jq``-reordered keys, say) falls back to one full parse. ``None`` means
    the line is not a schema-1 recording line at all (the caller counts it as corrupt);
    :data:`KIND_OTHER` is a schema-1 object of a kind this reader does not know (neither a
    header nor an index line, and no ``t`` or ``timestamp``), which readers skip without
    counting (docs/recording-format.md §10.1).
    """
    try:
        if raw.startswith(_OURS_DATA):
            t_ms = data_time(raw)
            if t_ms is None:
                t_ms = parse_rfc3339_ms(raw[17:41].decode())
            return LineInfo(KIND_DATA, t_ms, _seq_after(raw, 41))
        if raw.startswith(_OURS_HEADER):
            return LineInfo(KIND_HEADER, None, None)
        if raw.startswith(_OURS_INDEX):
            end = raw.find(b'"', 30)
            t_ms = parse_rfc3339_ms(raw[30:end].decode()) if raw[29:30] == b'"' else None
            return LineInfo(KIND_INDEX, t_ms, _seq_after(raw, 29))
        at = raw.rfind(_TIMESTAMP_KEY)
        if at > 0 and b'"header":true' not in raw[:64] and raw.find(b'"schema":1', 0) > 0:
            start = at + len(_TIMESTAMP_KEY)
            end = raw.index(b'"', start)
            return LineInfo(KIND_DATA, parse_rfc3339_ms(raw[start:end].decode()), None)
    except (ValueError, UnicodeDecodeError):
        pass
    return _slice_by_parsing(raw)


_MINUTES: dict[bytes, int] = {}  # "2026-04-18T12:00" → its epoch ms (a seek-path cache)


def data_time(raw: bytes) -> int | None:
    """``t`` of one of our data lines read straight from fixed offsets — the seek path runs
    this on every line of a chunk. ``None``: not that common shape; :func:`slice_line` it."""
    if raw.startswith(_OURS_DATA) and raw[40:42] == b'Z"' and raw[36] == 46:
        seconds, millis = raw[34:36], raw[37:40]
        # ASCII digits only (for bytes), seconds 00..59: what slice_line accepts, or a scan
        # and a seek would count a chunk's frames differently
        if seconds.isdigit() and millis.isdigit() and seconds[0] <= 53:
            head = raw[17:33]
            base = _MINUTES.get(head)
            if base is None:
                base = _minute_base(head)
            if base is not None:
                return base + int(seconds) * 1000 + int(millis)
    return None


def _minute_base(head: bytes) -> int | None:
    try:
        base = parse_rfc3339_ms(head.decode() + ":00Z")
    except (ValueError, UnicodeDecodeError):
        return None
    if len(_MINUTES) > 100_000:
        _MINUTES.clear()
    _MINUTES[head] = base
    return base


def _seq_after(raw: bytes, start: int) -> int | None:
    at = raw.find(_SEQ_KEY, start, start + 64)
    if at < 0:
        return None
    digits = _DIGITS.match(raw, at + len(_SEQ_KEY))
    return int(digits.group()) if digits is not None else None


def _slice_by_parsing(raw: bytes) -> LineInfo | None:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or obj.get("schema") != SCHEMA_VERSION:
        return None
    seq = obj.get("seq")
    seq = seq if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0 else None
    if obj.get("header") is True:
        return LineInfo(KIND_HEADER, None, None)
    stamp = obj.get("t", obj.get("timestamp"))
    t_ms = _parse_or_none(stamp, parse_rfc3339_ms)
    if obj.get("index") is True:
        return LineInfo(KIND_INDEX, t_ms, seq)
    if stamp is None and "t" not in obj and "timestamp" not in obj:
        # a later kind (docs/recording-format.md §10.3: no top-level t or timestamp)
        return LineInfo(KIND_OTHER, None, None)
    return None if t_ms is None else LineInfo(KIND_DATA, t_ms, seq)


def _parse_or_none(value: object, parse: Callable[[str], int]) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return parse(value)
    except ValueError:
        return None


def schema_of(raw: bytes) -> object:
    """The ``schema`` value of a raw line (``None`` when absent or unparsable)."""
    if raw.startswith(b'{"schema":1,'):
        return SCHEMA_VERSION
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return obj.get("schema") if isinstance(obj, dict) else None
