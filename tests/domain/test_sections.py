"""The one section table drives every list of sections: the model, the wire, --include, the
builder, the remote scrape, the simulator and the commands' include tuples."""

from __future__ import annotations

import typing
from types import GenericAlias

import attrs
import orjson
import pytest

from allsmi.adapters import wire
from allsmi.adapters.network.scrape import HOST_LIMITS, SECTION_KEYS, RemoteConfig, read_snapshot
from allsmi.adapters.prometheus.parser import HostRows
from allsmi.adapters.simulation.simulator import NODE_ROWS, ClusterSimulator, ClusterSpec
from allsmi.app import demo, view
from allsmi.app.cli import build_parser
from allsmi.app.mock import node_frame
from allsmi.domain.errors import UsageError
from allsmi.domain.model import (
    DEFAULT_SECTIONS,
    SECTION_TABLE,
    SECTIONS,
    Chassis,
    Cpu,
    Frame,
    Gpu,
    GpuProcess,
    Memory,
    Row,
    Section,
    Storage,
)
from allsmi.domain.sections import (
    ALIASES,
    REMOTE_SECTIONS,
    SECTION_BY_NAME,
    build_frame,
    include_help,
    parse_include,
    rows_of,
)

T0 = 1_776_513_600_000
ACCEPTED = ",".join(SECTIONS)
# One row of each section, on host "h:1".
ROWS: dict[str, Row] = {
    "gpu": Gpu(
        uuid="GPU-1", name="H200", device_type="GPU", host_id="h:1", hostname="h", instance="h"
    ),
    "cpu": Cpu(host_id="h:1", hostname="h", instance="h", utilization=12.5),
    "memory": Memory(host_id="h:1", hostname="h", instance="h", total_bytes=2**30),
    "chassis": Chassis(host_id="h:1", hostname="h", instance="h", total_power_watts=800.0),
    "process": GpuProcess(host_id="h:1", hostname="h", device_id=0, device_uuid="GPU-1", pid=7),
    "storage": Storage(host_id="h:1", hostname="h", mount_point="/", total_bytes=2**40),
}
BY_NAME = pytest.mark.parametrize("section", SECTION_TABLE, ids=lambda s: s.name)


# --------------------------------------------------------------------------- the table


def test_every_row_field_of_frame_is_one_section_of_the_table() -> None:
    hints = typing.get_type_hints(Frame)
    row_fields = [
        f.name for f in attrs.fields(Frame) if f.name not in {"t_ms", "seq", "source", "errors"}
    ]
    assert [s.attr for s in SECTION_TABLE] == row_fields  # the table's order is Frame's
    for section in SECTION_TABLE:
        assert hints[section.attr] == GenericAlias(tuple, (section.row_type, ...)) | None


def test_names_keys_and_aliases_are_each_unique() -> None:
    spellings = [*SECTIONS, *ALIASES]
    assert len(set(spellings)) == len(spellings)
    assert len({s.key for s in SECTION_TABLE}) == len(SECTION_TABLE)
    assert set(ROWS) == set(SECTIONS)


def test_derived_lists_follow_the_table() -> None:
    assert SECTIONS == ("gpu", "cpu", "memory", "chassis", "process", "storage")
    assert tuple(s.name for s in SECTION_TABLE if s.default) == DEFAULT_SECTIONS
    assert tuple(s.name for s in SECTION_TABLE if s.remote) == REMOTE_SECTIONS
    assert "process" not in REMOTE_SECTIONS and "process" not in DEFAULT_SECTIONS
    assert SECTION_BY_NAME["storage"].aliases == ("disk",)


def test_the_commands_include_tuples_come_from_the_table() -> None:
    assert view.LOCAL_SECTIONS == demo.DEMO_INCLUDE == SECTIONS
    assert RemoteConfig(hosts=("h:1",)).include == DEFAULT_SECTIONS
    assert {s.name: s.key for s in SECTION_TABLE} == SECTION_KEYS


def test_frame_hosts_counts_the_per_host_sections_only() -> None:
    procs = (attrs.evolve(ROWS["process"], host_id="elsewhere"),)
    frame = build_frame(T0, {"memory": (ROWS["memory"],), "process": procs})
    assert frame.hosts() == ("h:1",)
    for section in SECTION_TABLE:
        only = build_frame(T0, {section.name: (ROWS[section.name],)})
        assert only.hosts() == (("h:1",) if section.per_host else ())


# --------------------------------------------------------------------------- the builder


@BY_NAME
def test_the_builder_places_each_sections_rows_on_its_attribute(section: Section) -> None:
    row = ROWS[section.name]
    frame = build_frame(T0, {section.name: [row]}, seq=3, source="remote", errors=["e"])
    assert rows_of(frame, section) == (row,)
    assert getattr(frame, section.attr) == (row,)
    others = [rows_of(frame, s) for s in SECTION_TABLE if s is not section]
    assert others == [None] * (len(SECTION_TABLE) - 1)
    assert (frame.t_ms, frame.seq, frame.source, frame.errors) == (T0, 3, "remote", ("e",))


def test_the_builder_tells_not_collected_from_empty() -> None:
    frame = build_frame(T0, {"gpu": None, "cpu": [], "memory": (ROWS["memory"],)})
    assert frame.gpus is None and frame.cpus == () and frame.memory == (ROWS["memory"],)
    assert frame.chassis is None and frame.processes is None and frame.storage is None


def test_the_builder_drops_sections_not_included() -> None:
    rows = {name: (row,) for name, row in ROWS.items()}
    frame = build_frame(T0, rows, include=("cpu", "storage"))
    assert [s.name for s in SECTION_TABLE if rows_of(frame, s) is not None] == ["cpu", "storage"]


def test_the_builder_refuses_a_name_that_is_no_section() -> None:
    with pytest.raises(KeyError, match="no section 'gpus'"):
        build_frame(T0, {"gpus": ()})


def test_a_frame_rebuilt_from_its_rows_by_name_is_equal() -> None:
    frame = ClusterSimulator(ClusterSpec(nodes=2, gpus_per_node=2)).frame(T0, SECTIONS)
    rows = {s.name: rows_of(frame, s) for s in SECTION_TABLE}
    rebuilt = build_frame(frame.t_ms, rows, seq=frame.seq, source=frame.source, errors=frame.errors)
    assert rebuilt == frame


# --------------------------------------------------------------------------- the wire


@BY_NAME
def test_every_section_round_trips_through_the_wire_under_its_key(section: Section) -> None:
    frame = build_frame(T0, {section.name: (ROWS[section.name],)}, seq=1)
    line = wire.encode_line(frame)
    obj = orjson.loads(line)
    assert [k for k in obj if k in SECTION_KEYS.values()] == [section.key]
    assert wire.decode_line(line, 1) == frame


def test_a_data_line_holds_the_sections_in_table_order() -> None:
    frame = build_frame(T0, {name: (row,) for name, row in ROWS.items()})
    keys = [k for k in orjson.loads(wire.encode_line(frame)) if k in SECTION_KEYS.values()]
    assert keys == [s.key for s in SECTION_TABLE]
    assert wire.decode_line(wire.encode_line(frame), 1) == frame


# --------------------------------------------------------------------------- --include


@BY_NAME
def test_include_accepts_each_name_and_alias_in_any_case(section: Section) -> None:
    for spelling in (section.name, *section.aliases):
        assert parse_include(spelling) == (section.name,)
        assert parse_include(f"  {spelling.upper()} ") == (section.name,)


def test_include_deduplicates_into_table_order() -> None:
    assert parse_include("disk,processes,gpus,cpu,gpu,storage") == (
        "gpu",
        "cpu",
        "process",
        "storage",
    )
    assert parse_include(",".join(reversed([*SECTIONS, *ALIASES]))) == SECTIONS


@pytest.mark.parametrize("text", ["nope", "gpu,nope", "gpu,,cpu", "", " ", "proc", "gpu;cpu"])
def test_include_rejects_anything_else_with_one_line_naming_it(text: str) -> None:
    bad = next(p.strip() for p in text.split(",") if p.strip().lower() not in [*SECTIONS, *ALIASES])
    with pytest.raises(UsageError) as caught:
        parse_include(text)
    assert str(caught.value) == f"unknown section {bad!r} in --include: use {ACCEPTED}"


def test_the_cli_parses_include_with_the_domain_and_its_messages(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser()
    assert parser.parse_args(["record"]).include is None  # record fills in every section
    assert parser.parse_args(["snapshot"]).include == DEFAULT_SECTIONS
    assert parser.parse_args(["record", "--include", "disk,gpus"]).include == ("gpu", "storage")
    assert parser.parse_args(["snapshot", "--include", "processes"]).include == ("process",)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["record", "--include", "gpu,nope"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"unknown section 'nope' in --include: use {ACCEPTED}" in err
    assert err.count("\n") == 1


def test_include_help_names_every_section_alias_and_the_default() -> None:
    text = include_help("gpu,cpu")
    assert ACCEPTED in text and "(default gpu,cpu;" in text
    assert all(alias in text for alias in ALIASES)


# --------------------------------------------------------------------------- the sources


def test_the_remote_scrape_reads_every_section_of_a_snapshot_by_its_key() -> None:
    frame = build_frame(T0, {name: (row,) for name, row in ROWS.items()})
    body = wire.encode_line(frame)
    wanted = frozenset(SECTION_KEYS.values())
    sections = read_snapshot(body, "target:9090", wanted, HOST_LIMITS, True)
    assert list(sections) == [s.key for s in SECTION_TABLE]
    for section in SECTION_TABLE:
        (row,) = sections[section.key]
        assert row == attrs.evolve(ROWS[section.name], host_id="target:9090")


def test_the_prometheus_rows_carry_every_section_under_its_frame_attribute() -> None:
    fields = {f.name for f in attrs.fields(HostRows)}
    assert {s.attr for s in SECTION_TABLE} <= fields


def test_the_simulator_makes_every_section_and_only_the_included_ones() -> None:
    assert list(NODE_ROWS) == list(SECTIONS)
    sim = ClusterSimulator(ClusterSpec(nodes=2, gpus_per_node=2))
    for section in SECTION_TABLE:
        frame = sim.frame(T0, (section.name,))
        assert [s.name for s in SECTION_TABLE if rows_of(frame, s) is not None] == [section.name]
    with pytest.raises(ValueError, match="unknown sections"):
        sim.frame(T0, ("gpus",))


def test_a_mock_node_serves_every_section_of_its_reading() -> None:
    reading = ClusterSimulator(ClusterSpec(nodes=1, gpus_per_node=2)).node_frame_parts(0, T0)
    assert reading is not None
    frame = node_frame(reading, T0)
    assert frame.source == "local"
    for section in SECTION_TABLE:
        assert rows_of(frame, section) == getattr(reading, section.attr)
