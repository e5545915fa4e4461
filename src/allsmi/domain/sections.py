"""Frame sections by name: the ``--include`` grammar and the one frame builder.

Rules this module obeys:
- Everything here derives from :data:`allsmi.domain.model.SECTION_TABLE`; no section is
  named in this module, so a section added to the table is accepted by ``--include``, placed
  by :func:`build_frame` and known to every list below without another edit.
- Sections are named by their canonical name (``"process"``, not ``"processes"``): the name
  ``--include`` and the sources' include tuples use.
- :func:`build_frame` is the one place that builds a :class:`Frame` from section rows: a
  section given ``None`` or not included is ``None`` (not collected), given no rows is
  ``()`` (collected, empty).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Final

from allsmi.domain.errors import UsageError
from allsmi.domain.model import SECTION_TABLE, SECTIONS, Frame, Row, Section, Source

SECTION_BY_NAME: Final = {s.name: s for s in SECTION_TABLE}
# What the live cluster view scrapes and the exporter serves unless asked for processes.
REMOTE_SECTIONS: Final = tuple(s.name for s in SECTION_TABLE if s.remote)
# Every spelling --include accepts → the canonical name.
_SPELLINGS: Final = {alias: s.name for s in SECTION_TABLE for alias in (s.name, *s.aliases)}
ALIASES: Final = tuple(alias for s in SECTION_TABLE for alias in s.aliases)

SectionRows = Mapping[str, Iterable[Row] | None]  # section name → its rows, None: not collected


def parse_include(text: str) -> tuple[str, ...]:
    """``gpu,cpu,processes`` → the canonical section names, in table order, deduplicated.

    Names and aliases are matched case-insensitively, blanks around them ignored; anything
    else is a :class:`UsageError` naming it and the accepted names.
    """
    wanted: set[str] = set()
    for part in text.split(","):
        name = _SPELLINGS.get(part.strip().lower())
        if name is None:
            raise UsageError(
                f"unknown section {part.strip()!r} in --include: use {','.join(SECTIONS)}"
            )
        wanted.add(name)
    if not wanted:
        raise UsageError("--include needs at least one section")
    return tuple(s for s in SECTIONS if s in wanted)


def include_help(default: str) -> str:
    """The help text of ``--include``, with its default."""
    return f"comma list of {','.join(SECTIONS)} (default {default}; aliases: {', '.join(ALIASES)})"


def build_frame(
    t_ms: int,
    rows: SectionRows,
    *,
    include: Collection[str] | None = None,
    seq: int | None = None,
    source: Source = "local",
    errors: Iterable[str] = (),
) -> Frame:
    """A frame of ``rows`` (section name → rows): sections given ``None``, not given, or not
    in ``include`` (when given) are ``None`` (not collected). Raises ``KeyError`` for a name
    that is no section (a programming error: the callers' names come from the table)."""
    if not rows.keys() <= SECTION_BY_NAME.keys():
        unknown = sorted(rows.keys() - SECTION_BY_NAME.keys())
        raise KeyError(f"no section {unknown[0]!r}; known: {', '.join(SECTIONS)}")
    sections: dict[str, tuple[Row, ...] | None] = {}
    for section in SECTION_TABLE:
        found = rows.get(section.name)
        if found is not None and (include is None or section.name in include):
            sections[section.attr] = tuple(found)
    # The table pairs each attribute with its row type; mypy cannot follow that through **.
    return Frame(t_ms=t_ms, seq=seq, source=source, errors=tuple(errors), **sections)  # type: ignore[arg-type]


def rows_of(frame: Frame, section: Section) -> tuple[Row, ...] | None:
    """``section``'s rows in ``frame`` (``None``: not collected)."""
    found: tuple[Row, ...] | None = getattr(frame, section.attr)
    return found
