"""The family table (``allsmi.adapters.prometheus.families``) read both ways: every family we
write comes back through the parser into the field it was written from, every family we only
read is read, and neither the writer nor the parser knows a family the table does not.

A family's samples are compared as the writer sees them — each row of its entity with its
base label values, its extra labels and its value — on ``sample_frame()`` and on what the
parser makes of that frame's page, so the check is the same for every row of the table.
"""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from allsmi.adapters.prometheus import parser
from allsmi.adapters.prometheus.conversions import Labels, to_int
from allsmi.adapters.prometheus.entities import ENTITIES, Context
from allsmi.adapters.prometheus.families import (
    BY_NAME,
    FAMILIES,
    Detail,
    Family,
    Field,
    Presence,
)
from allsmi.adapters.prometheus.parser import parse_metrics
from allsmi.adapters.prometheus.writer import render_metrics
from allsmi.domain.model import Frame

from .prometheus_frames import SAMPLE_TARGET, sample_frame

VERSION = "9.9.9"
WRITTEN = [family for family in FAMILIES if family.writable]
READ_ONLY = [family for family in FAMILIES if not family.writable]
# Families whose samples carry no field of their own: the baseline only names the host, and
# the maximum power limit is a detail value that all_smi_gpu_info also carries as a label
# (which wins when both are on the page).
NOTHING_OF_THEIR_OWN = frozenset(
    {f.name for f in FAMILIES if isinstance(f.read, Presence)}
    | {"all_smi_gpu_power_limit_max_watts"}
)

Sample = tuple[tuple[str, ...], Labels | None, type, Any]


def by_name(families: list[Family[Any]]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("family", families, ids=[f.name for f in families])


def samples(family: Family[Any], frame: Frame) -> list[Sample]:
    """What the writer takes from ``frame`` for ``family``: per row of its entity, the base
    label values, the extra labels, and the value with its type (``61`` is not ``61.0``);
    for a family of several samples a row, each of them."""
    context = Context(ready=True, version=VERSION)
    out: list[Sample] = []
    for row, values in family.entity.rows(frame, context):
        if family.each is not None:
            out.extend((values, more, type(raw), raw) for more, raw in family.each(row))
            continue
        get = family.value
        assert get is not None
        extra = None if family.extra is None else family.extra(row)
        out.append((values, extra, type(get(row)), get(row)))
    return out


def family_name(family: Family[Any]) -> str:
    """The family's name as ``prometheus_client`` gives it: a counter's without ``_total``."""
    return family.name.removesuffix("_total") if family.type == "counter" else family.name


def read_back(page: str, t_ms: int) -> Frame:
    rows = parse_metrics(page, SAMPLE_TARGET)
    assert rows.skipped_lines == 0
    return Frame(
        t_ms=t_ms,
        gpus=rows.gpus,
        cpus=rows.cpus,
        memory=rows.memory,
        chassis=rows.chassis,
        processes=rows.processes,
        storage=rows.storage,
    )


def without(page: str, name: str) -> str:
    """``page`` less the family ``name`` (its HELP, TYPE and samples)."""
    dropped = (f"# HELP {name} ", f"# TYPE {name} ", f"{name}{{")
    return "".join(line for line in page.splitlines(keepends=True) if not line.startswith(dropped))


# --- the families we write -------------------------------------------------------------


@by_name(WRITTEN)
def test_a_family_we_write_reads_back_into_the_field_it_was_written_from(
    family: Family[Any],
) -> None:
    frame = sample_frame()
    written = samples(family, frame)
    assert any(value is not None for *_, value in written), "the sample frame has no reading"
    back = read_back(render_metrics(frame, version=VERSION), frame.t_ms)
    assert samples(family, back) == written


@by_name([f for f in WRITTEN if f.name not in NOTHING_OF_THEIR_OWN])
def test_a_family_we_write_is_what_brings_its_field_back(family: Family[Any]) -> None:
    """Without the family's samples the page does not give its field back: it is read from
    them, not from some other family's."""
    frame = sample_frame()
    page = without(render_metrics(frame, version=VERSION), family.name)
    assert samples(family, read_back(page, frame.t_ms)) != samples(family, frame)


def test_our_page_read_back_and_written_again_is_the_same_page() -> None:
    frame = sample_frame()
    page = render_metrics(frame, version=VERSION)
    assert render_metrics(read_back(page, frame.t_ms), version=VERSION) == page


def test_the_writer_writes_every_family_we_write_and_no_other() -> None:
    page = render_metrics(sample_frame(), version=VERSION)
    written = [str(f.name) for f in text_string_to_metric_families(page)]
    assert written == [family_name(f) for entity in ENTITIES for f in WRITTEN if f.entity is entity]


@by_name(WRITTEN)
def test_a_sample_has_its_entitys_labels_then_the_familys_own(family: Family[Any]) -> None:
    page = render_metrics(sample_frame(), version=VERSION)
    (parsed,) = [f for f in text_string_to_metric_families(page) if f.name == family_name(family)]
    assert parsed.type == family.type
    assert parsed.documentation == family.help
    base = len(family.entity.labels)
    for sample in parsed.samples:
        names = list(sample.labels)
        assert tuple(names[:base]) == family.entity.labels
        own = names[base:]
        declared = [name for name in family.labels if name in own]
        if family.more_labels:  # the declared ones first, then the open-ended rest
            assert own[: len(declared)] == declared and own[: len(family.labels)] == list(
                family.labels
            )
        else:
            assert own == declared


# --- the families we only read ---------------------------------------------------------


@by_name(READ_ONLY)
def test_a_family_we_only_read_is_read(family: Family[Any]) -> None:
    """Its sample puts something into its row beyond what names the row: compared with the
    same labels on a family of the same entity whose reading is NaN (nothing)."""
    names = (*family.entity.labels, *family.labels)
    block = ",".join(f'{name}="{i}"' for i, name in enumerate(names, 1))
    bare = next(
        f.name for f in WRITTEN if f.entity is family.entity and not f.name.endswith("_info")
    )
    read = parse_metrics(f"{family.name}{{{block}}} 5\n", SAMPLE_TARGET)
    assert read != parse_metrics(f"{bare}{{{block}}} NaN\n", SAMPLE_TARGET)


# --- the table -------------------------------------------------------------------------


def test_every_family_has_one_name_and_is_all_smis() -> None:
    assert len(BY_NAME) == len(FAMILIES)
    assert all(f.name.startswith("all_smi_") for f in FAMILIES)


@by_name(list(FAMILIES))
def test_a_family_is_a_gauge_or_a_counter_named_total(family: Family[Any]) -> None:
    """The Prometheus naming rules: a counter's name ends in ``_total``, and only a counter's."""
    assert family.type in ("gauge", "counter")
    assert family.name.endswith("_total") == (family.type == "counter")


def test_the_parser_reads_exactly_the_families_of_the_table() -> None:
    assert set(parser._ROUTES) == set(BY_NAME)
    assert all(parser._ROUTES[f.name][1] is f.read for f in FAMILIES)


def test_a_read_the_parser_has_no_way_for_fails_when_the_table_is_loaded() -> None:
    """Not on the first page that carries it: _ROUTES is built from the table at import."""
    with pytest.raises(ValueError, match="no way to read Detail"):
        parser._handler("disk", Detail("x"))
    with pytest.raises(ValueError, match="into a memory row"):
        parser._handler("memory", Field("used_bytes", to_int, fallback=True))


def test_every_family_is_about_an_entity_the_writer_knows() -> None:
    assert {f.entity for f in FAMILIES} <= set(ENTITIES)
    assert len({entity.key for entity in ENTITIES}) == len(ENTITIES)
