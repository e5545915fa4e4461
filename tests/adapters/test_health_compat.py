"""A GPU row's health signals are optional in schema 1 (docs/recording-format.md §5.3.3): a
row without them is written byte for byte as before, and a reader that predates them — the
decoder generated for the GPU row as it was, without ``health`` — reads the new lines, and
takes the same row as from a line without them."""

from __future__ import annotations

import functools
from typing import Any

import attrs
import cattrs
import orjson

from allsmi.adapters import rowhooks, wire
from allsmi.domain.model import Frame, Gpu, GpuHealth

BASE = Gpu(
    uuid="GPU-1",
    name="NVIDIA H200",
    device_type="GPU",
    host_id="n1:9400",
    hostname="n1",
    instance="n1",
    utilization=97.5,
    temperature=81,
)
HEALTH = GpuHealth(
    clock_events=("sw_power_cap", "hw_slowdown"),
    sm_clock_mhz=1410,
    ecc_uncorrected=2,
    remap_pending=True,
    pcie_tx_bytes_s=12.5e9,
    xid_counts={"79": 1, "13": 4},
    last_xid=79,
    last_xid_ms=1_800_000_000_000,
)


@functools.cache
def old_gpu_class() -> type:
    """The GPU row as readers before health signals knew it: every field but ``health``."""
    fields = {
        f.name: attrs.field(default=f.default, type=f.type)
        for f in attrs.fields(attrs.resolve_types(Gpu))
        if f.name != "health"
    }
    return attrs.make_class("Gpu", fields, frozen=True)


def old_reader(obj: dict[str, Any]) -> Any:
    """The generated row hook of the old class, as wire builds one per row class."""
    converter = cattrs.Converter(detailed_validation=False)
    converter.register_structure_hook_factory(
        rowhooks.is_plain_row, rowhooks.row_hook_factory(converter)
    )
    old = old_gpu_class()
    return converter.structure(obj, old)


def gpu_object(gpu: Gpu) -> dict[str, Any]:
    line = orjson.loads(wire.encode_line(Frame(t_ms=1000, seq=0, gpus=(gpu,))))
    obj: dict[str, Any] = line["gpus"][0]
    return obj


def test_a_row_without_health_is_written_as_before() -> None:
    obj = gpu_object(BASE)
    assert "health" not in obj
    assert list(obj) == [f.name for f in attrs.fields(Gpu) if f.name != "health"]


def test_only_the_health_fields_read_are_written() -> None:
    obj = gpu_object(attrs.evolve(BASE, health=HEALTH))
    assert list(obj)[-1] == "health"
    written = {k for k, v in attrs.asdict(HEALTH).items() if v is not None}
    assert set(obj["health"]) == written


def test_a_reader_without_health_reads_the_new_line_as_the_old_row() -> None:
    new = old_reader(gpu_object(attrs.evolve(BASE, health=HEALTH)))
    plain = old_reader(gpu_object(BASE))
    assert new == plain
    assert new.utilization == BASE.utilization and new.temperature == BASE.temperature


def test_health_round_trips_through_todays_decoder() -> None:
    gpu = attrs.evolve(BASE, health=HEALTH)
    back = wire.decode_line(wire.encode_line(Frame(t_ms=1000, seq=0, gpus=(gpu,))), 1)
    assert isinstance(back, Frame) and back.gpus == (gpu,)
