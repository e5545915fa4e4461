"""A frame as Prometheus text exposition 0.0.4 with all-smi's metric names and labels.

The names and label sets are those of all-smi's exporter, so dashboards built for
``all-smi api`` work unchanged (docs/architecture.md §3.3). The writing is stricter
than all-smi's own exporter:

- Each family's ``# HELP`` and ``# TYPE`` lines appear exactly once, and all of its samples
  follow them contiguously (all-smi repeats them per device row).
- Label values escape ``\\``, ``"`` and newline, the only escapes the format defines. Other
  control characters (CR, tab, ESC, C1) are dropped, as all-smi drops them — except that
  all-smi writes CR as ``\\r``, an escape the Go parser rejects. Lone surrogates
  (undecodable process names) become ``?``.
- Label names are valid (``[a-zA-Z_][a-zA-Z0-9_]*``, never the reserved ``__`` prefix, never
  twice on one sample); free-form ``detail`` keys are sanitised the way all-smi does it
  (``"Source: Fan"`` → ``source__fan``, ``"3D Engine"`` → ``_3d_engine``).
- A reading that is ``None``, NaN or ±Inf produces no sample. Integers are written plain,
  floats in their shortest round-trip form without an exponent (``1e-05`` → ``0.00001``),
  because all-smi's own scraper drops exponent values.
- Every family is a ``gauge``, but for cumulative counts: ``counter`` families named
  ``…_total`` (the table's rules, :mod:`.families`).

Theory of operation: the families are the table of :mod:`.families`, the rows and their base
labels the entities of :mod:`.entities`. Worked out once, at import: each family's HELP/TYPE
lines, the families to write about each entity (the table's rows with a ``value``, in table
order) and its base label block as a template. For each entity in order, its rows are listed
with their base label block, filled with the escaped values once and reused by every family
about it; each family then gets one sample per row that has a reading (a family of several
samples per row, ``each``, gets them all, each with its own labels). A family with no
sample is left out entirely.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final, NamedTuple

from allsmi.adapters.prometheus.conversions import Labels, Samples, Value
from allsmi.adapters.prometheus.entities import ENTITIES, Context, Entity
from allsmi.adapters.prometheus.families import FAMILIES
from allsmi.domain.model import Frame

__all__ = ["render_metrics"]


class _Written(NamedTuple):
    """A family as the writer needs it."""

    name: str
    header: str  # its # HELP and # TYPE lines
    value: Callable[[Any], Value] | None  # None: `each` gives the row's samples
    extra: Callable[[Any], Labels] | None
    each: Callable[[Any], Samples] | None


def _header(name: str, help_text: str, kind: str) -> str:
    help_text = help_text.replace("\\", "\\\\").replace("\n", "\\n")
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"


class _Plan(NamedTuple):
    """An entity as the writer needs it."""

    entity: Entity[Any]
    block: str  # its base label block, a str.format template for the escaped values
    families: tuple[_Written, ...]  # the families we write about it, in table order


_PLAN: Final = tuple(
    _Plan(
        entity,
        ",".join(f'{name}="{{}}"' for name in entity.labels),  # names are valid: no escaping
        tuple(
            _Written(f.name, _header(f.name, f.help, f.type), f.value, f.extra, f.each)
            for f in FAMILIES
            if f.entity is entity and f.writable
        ),
    )
    for entity in ENTITIES
)


# --- text primitives -------------------------------------------------------------------

_LABEL_ESCAPES: Final[dict[int, str | None]] = {
    **{c: None for c in (*range(0x20), *range(0x7F, 0xA0))},
    ord("\\"): "\\\\",
    ord('"'): '\\"',
    ord("\n"): "\\n",
}


@lru_cache(maxsize=8192)
def _escape(value: str) -> str:
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value.translate(_LABEL_ESCAPES)


def _block(labels: Labels) -> str:
    return ",".join(f'{name}="{_escape(value)}"' for name, value in labels)


def _format_value(value: int | float) -> str | None:
    if isinstance(value, int):
        return str(int(value))
    if not math.isfinite(value):
        return None
    text = repr(value)
    if "e" in text:
        text = format(Decimal(text), "f")
    return text


# --- rendering -------------------------------------------------------------------------


def _render_entity(plan: _Plan, frame: Frame, context: Context, out: list[str]) -> None:
    fill = plan.block.format
    rows = [(row, fill(*map(_escape, values))) for row, values in plan.entity.rows(frame, context)]
    for name, header, value, extra, each in plan.families:
        lines: list[str] = []
        if value is None:
            assert each is not None  # the table's rows are writable
            _render_each(name, each, rows, lines)
        else:
            for row, block in rows:
                raw = value(row)
                text = None if raw is None else _format_value(raw)
                if text is None:
                    continue
                if extra is not None and (more := extra(row)):
                    lines.append(f"{name}{{{block},{_block(more)}}} {text}\n")
                else:
                    lines.append(f"{name}{{{block}}} {text}\n")
        if lines:
            out.append(header)
            out.extend(lines)


def _render_each(
    name: str, each: Callable[[Any], Samples], rows: list[tuple[Any, str]], lines: list[str]
) -> None:
    """The samples of a family of several per row, each with its own labels."""
    for row, block in rows:
        for more, raw in each(row):
            text = None if raw is None else _format_value(raw)
            if text is not None:
                lines.append(f"{name}{{{block},{_block(more)}}} {text}\n")


def render_metrics(frame: Frame, *, ready: bool = True, version: str) -> str:
    """The ``/metrics`` page for ``frame``: all-smi's families, strictly written.

    ``ready`` is ``all_smi_up`` (False before the first collection); ``version`` goes into
    ``all_smi_build_info``. Baseline families get one sample per host of the frame, or one
    for this machine when the frame has no rows.
    """
    context = Context(ready=ready, version=version)
    out: list[str] = []
    for plan in _PLAN:
        _render_entity(plan, frame, context, out)
    return "".join(out)
