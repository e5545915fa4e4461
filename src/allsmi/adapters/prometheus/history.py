"""Frames from the series a Prometheus server stored (docs/architecture.md §3.3).

A Prometheus server (or Thanos, Mimir, VictoriaMetrics: anything answering its HTTP query
API) that scraped all-smi's exporters or ours holds their pages as series. ``query_range``
gives each series' value at the instants ``start + k × step``; this module turns one such
window back into the frames a recorder scraping the same exporters would have written, by the
one parser every page goes through (:func:`~allsmi.adapters.prometheus.parser.
rows_from_samples`): at each instant, each host's samples are folded into rows as if they
were its page.

Rules this module obeys:
- A host is a series' ``instance`` label: the target Prometheus scraped (``10.0.0.5:9090``),
  the same id a recorder scraping that target gives its rows. The labels Prometheus added to
  the page's (the target's labels: ``job``, and any its configuration attaches) are dropped,
  and a page label it renamed for clashing with one of them (``exported_instance``: the
  exporter's own ``instance``, its hostname) is given back its name: the parser sees the
  labels the page had. With ``honor_labels`` the exporter's ``instance`` was kept and is the
  host.
- ``up`` (Prometheus's own series for each target) of 0 at an instant makes that host one
  ``errors`` entry there (``"10.0.0.5:9090: down in Prometheus (up == 0)"``), as a failed
  scrape is; ``up`` is read only for hosts that have rows in the window's series.
- A value the API writes that is no number is left out; ``NaN`` and ``±Inf`` are no reading,
  as on a page. A host with no sample at an instant has no rows there (``no data``).
- Sections: those the series' families belong to (``sections_of``), the same for every frame
  of a recording, so a section without rows at an instant is "none", not "not collected".
- Memory: one window's parsed answer, walked instant by instant with one cursor per series;
  nothing is copied per instant but the samples of that instant.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any, Final

import attrs

from allsmi.adapters.prometheus.exposition import Sample, sample_value
from allsmi.adapters.prometheus.families import FAMILIES
from allsmi.adapters.prometheus.parser import OverLimit, PageLimits, rows_from_samples
from allsmi.domain.model import SECTION_TABLE, Frame
from allsmi.domain.sections import build_frame

HOST_LABEL: Final = "instance"
UP: Final = "up"
# An entity of the family table → the section its rows are in.
_SECTION_OF_ENTITY: Final = {
    "gpu": "gpu",
    "process": "process",
    "cpu": "cpu",
    "socket": "cpu",
    "core": "cpu",
    "memory": "memory",
    "disk": "storage",
    "chassis": "chassis",
    "fan": "chassis",
}
_SECTION_OF_FAMILY: Final = {
    f.name: _SECTION_OF_ENTITY[f.entity.key] for f in FAMILIES if f.entity.key in _SECTION_OF_ENTITY
}
_SECTION_KEYS: Final = {s.name: s.key for s in SECTION_TABLE}


@attrs.frozen
class RangeSeries:
    """One series of a ``query_range`` answer: its labels (``__name__`` included) and its
    points in time order, values as the API writes them."""

    labels: dict[str, str]
    times_ms: Sequence[int]
    values: Sequence[str]

    @property
    def name(self) -> str:
        return self.labels.get("__name__", "")

    @property
    def host(self) -> str | None:
        return self.labels.get(HOST_LABEL)


def sections_of(names: Iterable[str]) -> tuple[str, ...]:
    """The sections whose families are among the metric ``names``, in the table's order."""
    found = {_SECTION_OF_FAMILY[n] for n in names if n in _SECTION_OF_FAMILY}
    return tuple(s.name for s in SECTION_TABLE if s.name in found)


TARGET_LABELS: Final = frozenset({"job"})  # what every Prometheus adds (and instance)
_EXPORTED: Final = "exported_"


def page_labels(labels: dict[str, str], added: Collection[str] = TARGET_LABELS) -> dict[str, str]:
    """A series' labels as the exporter's page had them: ``__name__`` and the target's
    labels ``added`` by Prometheus (``instance`` apart: module rules) left out, the page's
    labels it renamed ``exported_*`` given back their names."""
    out = {k: v for k, v in labels.items() if k != "__name__" and k not in added}
    for key in [k for k in out if k.startswith(_EXPORTED)]:
        out[key.removeprefix(_EXPORTED)] = out.pop(key)
    return out


def family_regex(include: Collection[str]) -> str:
    """A ``__name__`` regex of the families of the sections ``include`` (the host's own,
    ``all_smi_up`` and build info, always): only what will be recorded is asked for."""
    names = sorted(
        f.name for f in FAMILIES if _SECTION_OF_FAMILY.get(f.name, "host") in {*include, "host"}
    )
    return "|".join(names)


class _Cursor:
    """A series walked instant by instant."""

    __slots__ = ("at", "host", "labels", "name", "series")

    def __init__(self, series: RangeSeries, host: str, added: Collection[str]) -> None:
        self.series = series
        self.host = host
        self.name = series.name
        self.labels = page_labels(series.labels, added)
        self.at = 0

    def value_at(self, t_ms: int) -> str | None:
        times, at = self.series.times_ms, self.at
        while at < len(times) and times[at] < t_ms:
            at += 1
        self.at = at
        return self.series.values[at] if at < len(times) and times[at] == t_ms else None


def frames_of(
    series: Sequence[RangeSeries],
    up: Sequence[RangeSeries],
    instants: Iterable[int],
    hosts: Sequence[str],
    include: Collection[str],
    limits: PageLimits,
    added: Collection[str] = TARGET_LABELS,
) -> Iterator[Frame]:
    """The frame at each of ``instants`` (ms, ascending) of the window's ``series`` and ``up``
    series, for ``hosts`` in that order; ``added``: the names of the labels Prometheus gave
    the targets (module rules)."""
    known = set(hosts)
    cursors: dict[str, list[_Cursor]] = {h: [] for h in hosts}
    for one in series:
        host = one.host
        if host in known:
            cursors[host].append(_Cursor(one, host, added))
    up_cursors = [_Cursor(u, u.host, added) for u in up if u.host in known and u.host is not None]
    processes = "process" in include
    for t_ms in instants:
        down = {c.host for c in up_cursors if _is_zero(c.value_at(t_ms))}
        errors: list[str] = []
        merged: dict[str, list[Any]] = {key: [] for key in _SECTION_KEYS.values()}
        for host in hosts:
            if host in down:
                errors.append(f"{host}: down in Prometheus (up == 0)")
                continue
            samples: list[Sample] = []
            for cursor in cursors[host]:
                text = cursor.value_at(t_ms)
                if text is None:
                    continue
                value = sample_value(text)
                if value is not None:
                    samples.append((cursor.name, cursor.labels, value))
            if not samples:
                continue
            try:
                rows = rows_from_samples(samples, host, limits, processes=processes)
            except OverLimit as err:
                errors.append(f"{host}: {err}")
                continue
            for section in SECTION_TABLE:
                merged[section.key].extend(getattr(rows, section.attr))
        by_name = {name: merged[key] for name, key in _SECTION_KEYS.items()}
        yield build_frame(t_ms, by_name, include=include, source="remote", errors=errors)


def _is_zero(text: str | None) -> bool:
    return text is not None and sample_value(text) == 0
