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
- Memory and time: a run's answer is kept as parsed; a frame is built only for the instant
  asked for (:class:`Run`), each series' value found by bisection on its points.
"""

from __future__ import annotations

import bisect
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
    points as the API gives them, ``[seconds, "value"]`` in time order (left as parsed: a
    replay converts only the instant it shows)."""

    labels: dict[str, str]
    points: Sequence[Sequence[object]]

    @property
    def name(self) -> str:
        return self.labels.get("__name__", "")

    @property
    def host(self) -> str | None:
        return self.labels.get(HOST_LABEL)

    def value_at(self, t_ms: int) -> str | None:
        return value_at(self.points, t_ms)


def value_at(points: Sequence[Sequence[object]], t_ms: int) -> str | None:
    """The value ``points`` hold for the instant ``t_ms``, if any (a point that is not
    ``[number, "text"]`` is none)."""
    t_s = t_ms / 1000  # both sides the double nearest the decimal the API wrote
    try:
        at = bisect.bisect_left(points, t_s, key=_seconds)
        if at < len(points) and points[at][0] == t_s:
            value = points[at][1]
            return value if type(value) is str else None
    except (TypeError, IndexError, KeyError):
        return None
    return None


def _seconds(point: Sequence[object]) -> float:
    return point[0]  # type: ignore[return-value]  # a non-number fails the comparison


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


class Run:
    """The series of one fetched run of instants, ready to give the frame at any of them:
    each series' page labels worked out once, its value found by bisection, so showing one
    instant costs one instant's conversion (module rules)."""

    def __init__(
        self,
        series: Sequence[RangeSeries],
        up: Sequence[RangeSeries],
        hosts: Sequence[str],
        include: Collection[str],
        limits: PageLimits,
        added: Collection[str] = TARGET_LABELS,
    ) -> None:
        known = set(hosts)
        self.hosts = tuple(hosts)
        self.include = tuple(include)
        self.limits = limits
        # name, page labels and points of each series: its answer's labels are not kept
        self._series: dict[str, list[tuple[str, dict[str, str], Sequence[Sequence[object]]]]] = {
            h: [] for h in hosts
        }
        for one in series:
            host = one.host
            if host in known:
                self._series[host].append((one.name, page_labels(one.labels, added), one.points))
        self._up = [(u.host, u.points) for u in up if u.host in known and u.host is not None]

    def frame(self, t_ms: int) -> Frame:
        """The frame at the instant ``t_ms``."""
        down = {host for host, points in self._up if _is_zero(value_at(points, t_ms))}
        errors: list[str] = []
        merged: dict[str, list[Any]] = {key: [] for key in _SECTION_KEYS.values()}
        processes = "process" in self.include
        for host in self.hosts:
            if host in down:
                errors.append(f"{host}: down in Prometheus (up == 0)")
                continue
            samples: list[Sample] = []
            for name, labels, points in self._series[host]:
                text = value_at(points, t_ms)
                if text is None:
                    continue
                value = sample_value(text)
                if value is not None:
                    samples.append((name, labels, value))
            if not samples:
                continue
            try:
                rows = rows_from_samples(samples, host, self.limits, processes=processes)
            except OverLimit as err:
                errors.append(f"{host}: {err}")
                continue
            for section in SECTION_TABLE:
                merged[section.key].extend(getattr(rows, section.attr))
        by_name = {name: merged[key] for name, key in _SECTION_KEYS.items()}
        return build_frame(t_ms, by_name, include=self.include, source="remote", errors=errors)


def frames_of(
    series: Sequence[RangeSeries],
    up: Sequence[RangeSeries],
    instants: Iterable[int],
    hosts: Sequence[str],
    include: Collection[str],
    limits: PageLimits,
    added: Collection[str] = TARGET_LABELS,
) -> Iterator[Frame]:
    """The frame at each of ``instants`` (ms) of the window's ``series`` and ``up`` series,
    for ``hosts`` in that order; ``added``: the names of the labels Prometheus gave the
    targets (module rules)."""
    run = Run(series, up, hosts, include, limits, added)
    for t_ms in instants:
        yield run.frame(t_ms)


def _is_zero(text: str | None) -> bool:
    return text is not None and sample_value(text) == 0
