"""The everyday shape of a Prometheus text page (exposition 0.0.4), read fast.

``prometheus_client``'s parser walks label blocks character by character: ~5.8 ms for one
all-smi node's 33 KB page, 90 % of reading it (bench/bench_prom_parse.py) — a hundred
``/metrics``-only nodes would cost more than a second of CPU per cycle. Exporters write far
less than the grammar allows, so this module reads that everyday shape with a few regular
expressions and gives up (:class:`NotPlain`) on anything else; the caller then hands the
whole page to ``prometheus_client``, which stays the authority on the grammar.

Rules this module obeys:
- It returns exactly what ``prometheus_client`` would (sample names, labels, values), or
  raises :class:`NotPlain` — never a different answer. ``property_tests`` check this on
  generated pages, plain and not.
- Plain means: lines separated by ``\\n`` (surrounding blanks ignored); blank lines; comment
  lines whose only whitespace is the space, without quotes, ``# HELP``/``# TYPE`` naming a
  valid metric name (a ``TYPE`` with one word after it); samples as
  ``name{label="value",…} value [timestamp]`` with spaces as separators, legacy metric and
  label names, no reserved (``__``) or repeated label names, ``\\\\``, ``\\n`` and ``\\"``
  escapes in values, and values that ``int()`` or ``float()`` read as the vendor does.
- As the vendor does, samples of a ``counter`` family named without ``_total`` get it; a
  ``TYPE`` for a family that already has samples (the vendor retypes them) is not plain.
- Each label block read is kept, and each sample name a line without a timestamp was read
  with (:data:`LABEL_BLOCKS_KEPT` of each, the lot dropped when full): a line that splits
  into a kept name, ``{`` a kept block ``}``, blanks and a last token is the same sample line
  for the grammar with that token as its value (a value never holds a blank; a line with a
  timestamp is always read whole). An exporter repeats one block across its families (a
  dcgm-exporter GPU's ten labels on each of ~25 families) and every block from scrape to
  scrape (node_exporter's ``{cpu="12",mode="idle"}`` on every 64-core node), so most lines
  cost two splits and two lookups. The labels of a sample are therefore shared with
  every sample of the same block: readers never change them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Final

from prometheus_client.metrics_core import METRIC_TYPES

__all__ = ["NotPlain", "iter_plain_samples", "plain_samples"]

_NAME: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# Name, optional {label block} (quoted values may hold any of {}",), value, optional timestamp.
# Patterns are "unrolled" (runs of plain characters, then one escape) so that re spends its
# time in character-class runs rather than in one alternation per character.
_QUOTED: Final = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_BLOCK: Final = rf'[^"{{}}]*(?:{_QUOTED}[^"{{}}]*)*'
_SAMPLE_LINE: Final = re.compile(
    rf"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{{({_BLOCK})\}})? +([^ ]+)(?: +([^ ]+))?"
)
_LABEL_PAIR: Final = re.compile(
    r' *([a-zA-Z_][a-zA-Z0-9_]*) *= *"([^"\\]*(?:\\.[^"\\]*)*)" *(?:,|$)'
)
_OTHER_WHITESPACE: Final = re.compile(r"[^\S ]")
_ESCAPE: Final = re.compile(r'\\[\\n"]')
_ESCAPES: Final = {"\\\\": "\\", "\\n": "\n", '\\"': '"'}
LABEL_BLOCKS_KEPT: Final = 16_384  # ~1,300 a cycle at 100 dcgm + node_exporter pages
KEPT_CHARS: Final = 1024  # a longer block or name is read each time: the caches stay < 35 MB
_blocks: dict[str, dict[str, str]] = {}  # label block text → its labels (module rules)
_names: set[str] = set()  # sample names a sample line without a timestamp was read with
_SUFFIXES: Final = {
    "counter": ("",),
    "gauge": ("",),
    "summary": ("_count", "_sum", ""),
    "histogram": ("_count", "_sum", "_bucket"),
}

Sample = tuple[str, dict[str, str], int | float]


class NotPlain(Exception):
    """The page has a line outside the everyday shape: let the full grammar read it."""


def plain_samples(text: str) -> list[Sample]:
    """``(name, labels, value)`` of every sample of a plain page, in page order."""
    return list(iter_plain_samples(text.split("\n")))


def iter_plain_samples(lines: Iterable[str]) -> Iterator[Sample]:
    """The samples of a plain page given as its lines (``text.split("\\n")``), one at a time:
    a caller that stops early — a page past its caps — never pays for the rest. A line
    outside the plain shape raises :class:`NotPlain` where it stands."""
    family, kind = "", "untyped"
    allowed: tuple[str, ...] = ()
    family_samples = 0  # samples of the current family so far
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if line[0] == "#":
            descriptor = _descriptor(line)
            if descriptor is None:
                continue  # a free comment
            what, name, rest = descriptor
            if name == family and family_samples and what == "TYPE":
                raise NotPlain  # the vendor types the family's earlier samples by it too
            if name != family:
                family_samples = 0
            if what == "HELP":
                if name != family:
                    family, kind, allowed = name, "untyped", (name,)
            else:
                family, kind = name, rest
                allowed = tuple(name + suffix for suffix in _SUFFIXES.get(kind, ("",)))
            continue
        head, _, value = line.rpartition(" ")
        name, brace, rest = head.rstrip(" ").partition("{")
        labels: dict[str, str] | None = None
        if value and name in _names:
            if not brace:
                labels = {}
            elif rest[-1:] == "}":
                labels = _blocks.get(rest[:-1])
        if labels is not None:
            number = _number(value)
        else:
            name, labels, number = _sample_line(line)
        if name in allowed:
            family_samples += 1
            if kind == "counter" and not name.endswith("_total"):
                name += "_total"
        else:  # a sample of no declared family: an untyped one of its own
            family, kind, allowed, family_samples = "", "untyped", (), 0
        yield name, labels, number


def _sample_line(line: str) -> tuple[str, dict[str, str], int | float]:
    """A sample line read by the full regular expression; its head kept when it has no
    timestamp (module rules)."""
    match = _SAMPLE_LINE.fullmatch(line)
    if match is None:
        raise NotPlain
    name, block, value, stamp = match.group(1, 2, 3, 4)
    if block:
        labels = _blocks.get(block)
        if labels is None:
            labels = _labels(block)
            if len(block) <= KEPT_CHARS:  # a dcgm GPU's block ~300, node_exporter's ~25
                if len(_blocks) >= LABEL_BLOCKS_KEPT:
                    _blocks.clear()  # a page of ever new blocks: bounded, never slower than none
                _blocks[block] = labels
    else:
        labels = {}
    number = _number(value)
    if stamp is not None:
        try:
            _number(stamp) / 1000  # the vendor parses it (in seconds), so checks it too
        except OverflowError:
            raise NotPlain from None
    elif name not in _names and len(name) <= KEPT_CHARS:
        if len(_names) >= LABEL_BLOCKS_KEPT:
            _names.clear()
        _names.add(name)
    return name, labels, number


def _descriptor(line: str) -> tuple[str, str, str] | None:
    """``(HELP|TYPE, name, rest)`` of a descriptor line; None for a free comment."""
    if '"' in line or _OTHER_WHITESPACE.search(line):
        raise NotPlain  # the vendor splits comments quote-aware, on any ASCII whitespace
    parts = [part for part in line.split(" ") if part]
    if len(parts) < 2 or parts[1] not in ("HELP", "TYPE"):
        return None
    if len(parts) < 3 or _NAME.fullmatch(parts[2]) is None:
        raise NotPlain
    if parts[1] == "HELP":
        return "HELP", parts[2], ""
    if len(parts) != 4 or parts[3] not in METRIC_TYPES:
        raise NotPlain  # no type, a type of several words, or one the vendor refuses
    if parts[3] == "counter" and parts[2] == "_total":
        raise NotPlain  # the vendor's family name would be empty
    return "TYPE", parts[2], parts[3]


def _labels(block: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    position, end = 0, len(block)
    while position < end:
        match = _LABEL_PAIR.match(block, position)
        if match is None:
            raise NotPlain
        name, value = match.group(1, 2)
        if name in labels or name.startswith("__"):
            raise NotPlain  # a repeated or reserved label name: the vendor refuses the line
        labels[name] = _ESCAPE.sub(_unescape, value) if "\\" in value else value
        position = match.end()
    return labels


def _unescape(match: re.Match[str]) -> str:
    return _ESCAPES[match.group(0)]


def sample_value(text: str) -> int | float | None:
    """A sample value written as text (a page's, or the Prometheus API's ``"42"``,
    ``"1.5e+09"``, ``"NaN"``, ``"+Inf"``) as a page's parser reads it; None: not a number."""
    try:
        return _number(text)
    except NotPlain:
        return None


def _number(text: str) -> int | float:
    """The vendor's value rule: ``int()`` if it reads, else ``float()``; no ``_``, no blanks."""
    if "_" in text or text != text.strip():
        raise NotPlain
    digits = text[1:] if text[:1] in "+-" else text
    if digits.isdecimal():  # what int() reads here (no blanks, no "_", base 10)...
        try:
            return int(text)
        except ValueError:  # ...but for its 4,300-digit limit: float() has a say, as before
            pass
    try:
        return float(text)
    except ValueError:
        raise NotPlain from None
