"""Names of a rotated recording set (docs/recording-format.md §8.1). Pure string logic.

The active file keeps the ``-o`` name; rotated segments insert a number of at least four
digits before the extension chain (everything from the first dot of the name on):

    trace.ndjson.zst → trace.0001.ndjson.zst      run.gz → run.0001.gz      trace → trace.0001

Higher numbers are newer; numbers grow past 9999 and sort numerically, never by text.
"""

from __future__ import annotations


def split_name(name: str) -> tuple[str, str]:
    """``trace.ndjson.zst`` → (``trace``, ``.ndjson.zst``); a leading dot is part of the stem."""
    dot = name.find(".", 1)
    if dot < 0:
        return name, ""
    return name[:dot], name[dot:]


def segment_name(active_name: str, number: int) -> str:
    """The file name of rotated segment ``number`` (≥ 1) of the set named ``active_name``."""
    if number < 1:
        raise ValueError(f"segment numbers start at 1, got {number}")
    stem, suffix = split_name(active_name)
    return f"{stem}.{number:04d}{suffix}"


def segment_number(active_name: str, candidate: str) -> int | None:
    """The number of ``candidate`` if it is a rotated segment of ``active_name``, else None."""
    stem, suffix = split_name(active_name)
    prefix = stem + "."
    if not (candidate.startswith(prefix) and candidate.endswith(suffix)):
        return None
    digits = candidate[len(prefix) : len(candidate) - len(suffix)]
    if len(digits) < 4 or not digits.isascii() or not digits.isdigit():
        return None
    number = int(digits)
    if number < 1 or segment_name(active_name, number) != candidate:
        return None
    return number


def numbered_segments(active_name: str, names: list[str]) -> list[tuple[int, str]]:
    """The rotated segments among ``names``, oldest (lowest number) first."""
    found = []
    for name in names:
        number = segment_number(active_name, name)
        if number is not None:
            found.append((number, name))
    return sorted(found)
