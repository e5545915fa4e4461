"""Parsers and formatters for what users type and what recordings carry (docs/architecture.md
§4.3, §7.2; docs/recording-format.md §2).

Rules this module obeys:
- Pure: the standard library and attrs only. No clock, no I/O, and no local zone: the shell
  passes a ``tzinfo`` to :func:`resolve_timecode`.
- Time is integer milliseconds: since the Unix epoch (UTC) for instants, since the first frame
  for offsets.
- Decimal text goes through :class:`~fractions.Fraction`, never ``float``, so ``0.1`` s is
  exactly 100 ms and ``1.5M`` exactly 1572864 bytes.
- Every malformed input raises :class:`UsageError` with one line that quotes the input (as
  ``repr``, so a stray newline cannot break the line) and says what is accepted.

Theory of the RFC 3339 hot path: every line of a recording carries ``t``, so parsing and
formatting it must be cheap. Both directions split a time at the minute: the minute half
(``YYYY-MM-DDTHH:MM``) changes at most once a minute, so its conversion (Howard Hinnant's
civil-date algorithms, http://howardhinnant.github.io/date_algorithms.html) is memoised; the
rest is two small ints. The shapes recordings carry (``…SS.fffZ`` as we write it, ``…SSZ`` as
all-smi writes it) take that path after one regex; offsets, other fraction lengths, leap
seconds and every error take a general path that computes the same by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, tzinfo
from fractions import Fraction
from functools import lru_cache
from typing import Final, TypeAlias, assert_never

import attrs

from allsmi.domain.errors import UsageError

MS_PER_SECOND: Final = 1000
MS_PER_DAY: Final = 86_400_000
MAX_RFC3339_MS: Final = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last 4-digit year

# Longer input is junk anyway; the cap also keeps int() below Python's digit limit.
_MAX_INPUT_CHARS: Final = 64
_NUMBER: Final = r"(\d+(?:\.\d+)?|\.\d+)"
_BARE_NUMBER: Final = re.compile(_NUMBER, re.ASCII)

_DURATION_HINT: Final = "use 30s, 5m, 1h, 1d, 1h30m or bare seconds"
_SIZE_HINT: Final = "use bare bytes or 1K, 10M, 2G, 1T (any case, optional B or iB; powers of 1024)"
_INTERVAL_HINT: Final = "use seconds of at least 0.1, e.g. 0.5, 2 or 3s"
_TIMECODE_HINT: Final = "use HH:MM:SS, MM:SS, SS, @HH:MM[:SS] or @2026-04-18T14:32:00Z"
_RFC3339_HINT: Final = "use RFC 3339 like 2026-04-18T12:00:00.000Z or with a ±HH:MM offset"


class InvalidTimestamp(UsageError, ValueError):
    """A malformed RFC 3339 time: a usage error on the command line, a ValueError to readers."""


def _invalid(kind: str, text: str, hint: str) -> UsageError:
    return UsageError(f"invalid {kind} {text!r}: {hint}")


def _clean(text: str, kind: str, hint: str) -> str:
    """Trim blanks; reject empty and absurdly long input before any regex or int() sees it."""
    clean = text.strip()
    if not clean or len(clean) > _MAX_INPUT_CHARS:
        raise _invalid(kind, text, hint)
    return clean


def _seconds_to_ms(seconds: Fraction) -> int:
    return round(seconds * MS_PER_SECOND)


# --- durations, sizes, intervals (docs/architecture.md §7.2) ------------------------------

# Units in descending order, each at most once: "1h1h" and "30m1h" do not match.
_DURATION: Final = re.compile(
    r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?",
    re.I | re.A,
)
_DURATION_UNIT_MS: Final = (86_400_000, 3_600_000, 60_000, 1_000)


def parse_duration_ms(text: str) -> int:
    """``30s 5m 1h 1d 1h30m 2d3h 0.5s 1.5h`` or bare seconds (``90``, ``1.5``) → ms; ``0``
    is 0.

    Callers read 0 as "unlimited". Units are any case, in d-h-m-s order, each at most once.
    """
    clean = _clean(text, "duration", _DURATION_HINT)
    if _BARE_NUMBER.fullmatch(clean):
        return _seconds_to_ms(Fraction(clean))
    match = _DURATION.fullmatch(clean)
    if match is None:
        raise _invalid("duration", text, _DURATION_HINT)
    parts = zip(match.groups(), _DURATION_UNIT_MS, strict=True)
    total = sum(Fraction(count) * unit_ms for count, unit_ms in parts if count is not None)
    return round(total)


_INSTANT_HINT: Final = "use now, now-2h (or -2h), or RFC 3339 like 2026-04-18T12:00:00Z"


def parse_instant_ms(text: str, now_ms: int) -> int:
    """An instant on the command line (``record --from/--to``): ``now``, ``now-DURATION`` or
    ``-DURATION`` (that long before ``now_ms``: :func:`parse_duration_ms`), or an RFC 3339
    time, ``@`` before it allowed (as in a timecode)."""
    clean = _clean(text, "time", _INSTANT_HINT)
    if clean == "now":
        return now_ms
    if clean.startswith(("now-", "-")):
        before = clean.removeprefix("now").removeprefix("-")
        try:
            return now_ms - parse_duration_ms(before)
        except UsageError:
            raise _invalid("time", text, _INSTANT_HINT) from None
    try:
        return parse_rfc3339_ms(clean.removeprefix("@"))
    except UsageError:
        raise _invalid("time", text, _INSTANT_HINT) from None


MIN_MAX_AGE_MS: Final = 60_000
MAX_MAX_AGE_MS: Final = 100 * 365 * 86_400_000  # a century: beyond it, say 0


def parse_max_age_ms(text: str) -> int:
    """``record --max-age``: a duration (:func:`parse_duration_ms`) of at least a minute and
    at most a century, or 0 (no age limit)."""
    value = parse_duration_ms(text)
    if value and not MIN_MAX_AGE_MS <= value <= MAX_MAX_AGE_MS:
        raise UsageError(f"max age {text.strip()!r} must be 0 or between 1m and 36500d")
    return value


# "10M", "10MB", "10MiB" and "10 m" all mean 10 * 1024**2; a bare "B" means bytes.
_SIZE: Final = re.compile(_NUMBER + r"\s*(?:([kmgt])(?:i?b)?|b)?", re.I | re.A)
_SIZE_MULTIPLIER: Final = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size_bytes(text: str) -> int:
    """``1K 10M 2G 1T`` (any case, optional ``B``/``iB``, powers of 1024) or bare bytes.

    ``0`` means no rotation. A fraction needs a unit (``1.5M``); a bare byte count is whole.
    """
    clean = _clean(text, "size", _SIZE_HINT)
    match = _SIZE.fullmatch(clean)
    if match is None:
        raise _invalid("size", text, _SIZE_HINT)
    number, unit = match.groups()
    if unit is None:
        if "." in number:
            raise _invalid("size", text, _SIZE_HINT)
        return int(number)
    return round(Fraction(number) * _SIZE_MULTIPLIER[unit.lower()])


_INTERVAL: Final = re.compile(_NUMBER + r"\s*s?", re.I | re.A)
_MIN_INTERVAL_S: Final = Fraction(1, 10)


def parse_interval_ms(text: str) -> int:
    """Seconds, fractional allowed, optional ``s`` (``0.5``, ``3``, ``2.25s``) → ms; ≥ 0.1 s."""
    clean = _clean(text, "interval", _INTERVAL_HINT)
    match = _INTERVAL.fullmatch(clean)
    if match is None:
        raise _invalid("interval", text, _INTERVAL_HINT)
    seconds = Fraction(match[1])
    if seconds < _MIN_INTERVAL_S:
        raise UsageError(f"invalid interval {text!r}: the shortest interval is 0.1 s")
    return _seconds_to_ms(seconds)


# --- timecodes (docs/architecture.md §7.2: --start and the g key) --------------------------


@attrs.frozen
class Offset:
    """``HH:MM:SS``, ``MM:SS`` or ``SS``: a position after the first frame."""

    ms: int = attrs.field(validator=attrs.validators.ge(0))  # ms after the first frame


@attrs.frozen
class TimeOfDay:
    """``@HH:MM[:SS]``: a wall-clock time in the local zone, on one of the recording's dates."""

    hour: int = attrs.field(validator=[attrs.validators.ge(0), attrs.validators.lt(24)])
    minute: int = attrs.field(validator=[attrs.validators.ge(0), attrs.validators.lt(60)])
    second: int = attrs.field(
        default=0, validator=[attrs.validators.ge(0), attrs.validators.lt(60)]
    )


@attrs.frozen
class Instant:
    """``@2026-04-18T14:32:00Z``: an absolute instant."""

    ms: int  # ms since the Unix epoch, UTC


Timecode: TypeAlias = Offset | TimeOfDay | Instant

_OFFSET_PART: Final = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_TIME_OF_DAY: Final = re.compile(r"@(\d{1,2}):(\d{2})(?::(\d{2}))?", re.ASCII)


def parse_timecode(text: str) -> Timecode:
    """``HH:MM:SS``/``MM:SS``/``SS`` → :class:`Offset`; ``@HH:MM[:SS]`` → :class:`TimeOfDay`;
    ``@`` + RFC 3339 → :class:`Instant`."""
    clean = _clean(text, "timecode", _TIMECODE_HINT)
    if not clean.startswith("@"):
        return _parse_offset(text, clean)
    match = _TIME_OF_DAY.fullmatch(clean)
    if match is not None:
        return _time_of_day(text, match)
    try:
        return Instant(parse_rfc3339_ms(clean[1:]))
    except UsageError:
        raise _invalid("timecode", text, _TIMECODE_HINT) from None


def _parse_offset(text: str, clean: str) -> Offset:
    """The first component may be any size (``90`` s, ``75:00``); later ones are below 60."""
    parts = clean.split(":")
    well_formed = len(parts) <= 3 and all(_OFFSET_PART.fullmatch(part) for part in parts)
    if not well_formed or any("." in part for part in parts[:-1]):
        raise _invalid("timecode", text, _TIMECODE_HINT)
    values = [Fraction(part) for part in parts]
    if any(value >= 60 for value in values[1:]):
        raise UsageError(f"invalid timecode {text!r}: minutes and seconds must be below 60")
    seconds = Fraction()
    for value in values:  # hours, minutes, seconds: each step is sixty of the next
        seconds = seconds * 60 + value
    return Offset(_seconds_to_ms(seconds))


def _time_of_day(text: str, match: re.Match[str]) -> TimeOfDay:
    hour, minute, second = (int(group or 0) for group in match.groups())
    if hour >= 24 or minute >= 60 or second >= 60:
        raise UsageError(f"invalid timecode {text!r}: a time of day runs from @00:00 to @23:59:59")
    return TimeOfDay(hour, minute, second)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)


def resolve_timecode(tc: Timecode, first_t_ms: int, last_t_ms: int, tz: tzinfo) -> int:
    """The target as ms after the first frame; it may lie before 0 or past the end (the
    caller clamps). ``tz`` is the local zone, passed in by the shell."""
    match tc:
        case Offset():
            return tc.ms
        case Instant():
            return tc.ms - first_t_ms
        case TimeOfDay():
            return _resolve_time_of_day(tc, first_t_ms, max(first_t_ms, last_t_ms), tz) - first_t_ms
        case _:
            assert_never(tc)


def _resolve_time_of_day(tod: TimeOfDay, first_ms: int, last_ms: int, tz: tzinfo) -> int:
    """The first candidate inside [first, last], else the one nearest to that range.

    Candidates never decrease from one date to the next, so the first one at or after
    ``first_ms`` decides: inside the range it wins; past the end it competes with the one
    before it (earlier wins a tie). Hence at most a few dates are ever looked at.
    """
    before: int | None = None
    for candidate in _candidates_ms(tod, first_ms, last_ms, tz):
        if candidate >= first_ms:
            if candidate <= last_ms or before is None:
                return candidate
            return before if first_ms - before <= candidate - last_ms else candidate
        before = candidate
    assert before is not None  # the first frame's date always yields a candidate
    return before


def _candidates_ms(tod: TimeOfDay, first_ms: int, last_ms: int, tz: tzinfo) -> Iterator[int]:
    """``tod`` on each local date from the first frame's to the last frame's, as epoch ms.

    ``fold=0`` (the datetime default) picks the earlier reading of a repeated hour and reads
    a skipped hour with the offset in force before the change (PEP 495).
    """
    first_day = _local_date(first_ms, tz)
    for days in range((_local_date(last_ms, tz) - first_day).days + 1):
        day = first_day + timedelta(days=days)
        local = datetime(day.year, day.month, day.day, tod.hour, tod.minute, tod.second, tzinfo=tz)
        yield (local - _EPOCH) // _ONE_MS


def _local_date(ms: int, tz: tzinfo) -> date:
    return (_EPOCH + ms * _ONE_MS).astimezone(tz).date()


# --- RFC 3339 (the recording's `t`, docs/recording-format.md §2) ----------------------------


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's ``days_from_civil``)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day number since 1970-01-01 (Hinnant's ``civil_from_days``)."""
    shifted = days + 719_468
    era = shifted // 146_097
    day_of_era = shifted - era * 146_097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153  # 0 = March, so leap days fall last
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = shifted_month + 3 if shifted_month < 10 else shifted_month - 9
    return year_of_era + era * 400 + (month <= 2), month, day


@lru_cache(maxsize=4096)
def _minute_prefix(minutes: int) -> str:
    """``YYYY-MM-DDTHH:MM:`` of a minute number; memoised: consecutive frames share it."""
    days, minute_of_day = divmod(minutes, 1440)
    year, month, day = _civil_from_days(days)
    hour, minute = divmod(minute_of_day, 60)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:"


def format_rfc3339_ms(ms: int) -> str:
    """Epoch ms → ``2026-04-18T12:00:00.000Z``: UTC, exactly 3 fraction digits, ``Z``."""
    if not 0 <= ms <= MAX_RFC3339_MS:
        raise ValueError(f"time {ms} ms is outside 1970..9999 and has no RFC 3339 form here")
    minutes, ms_of_minute = divmod(ms, 60_000)
    second, millis = divmod(ms_of_minute, MS_PER_SECOND)
    return f"{_minute_prefix(minutes)}{second:02d}.{millis:03d}Z"


_DAYS_IN_MONTH: Final = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _day_start_ms(year: int, month: int, day: int) -> int:
    """Epoch ms of a date's midnight, UTC; ValueError for a date RFC 3339 §5.7 rules out."""
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= month <= 12:
        raise ValueError(f"no month {month:02d}")
    if not 1 <= day <= _DAYS_IN_MONTH[month - 1] + (month == 2 and leap):
        raise ValueError(f"no day {day:02d} in {year:04d}-{month:02d}")
    return _days_from_civil(year, month, day) * MS_PER_DAY


@lru_cache(maxsize=4096)
def _minute_start_ms(head: str) -> int:
    """``YYYY-MM-DDTHH:MM`` (digits already checked) → epoch ms; memoised like the prefix."""
    hour, minute = int(head[11:13]), int(head[14:16])
    if hour > 23 or minute > 59:
        raise ValueError("hour or minute out of range")
    start = _day_start_ms(int(head[:4]), int(head[5:7]), int(head[8:10])) + hour * 3_600_000
    return start + minute * 60_000


# The shapes recordings carry, ours (…SS.fffZ) and all-smi's (…SSZ); seconds 00..59.
_COMMON_RFC3339: Final = re.compile(
    r"(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d):([0-5]\d)(?:\.(\d{3}))?[Zz]", re.ASCII
)


def parse_rfc3339_ms(text: str) -> int:
    """RFC 3339 date-time → epoch ms (fraction truncated); ``Z`` or ``±HH:MM``; from 1970.

    The common shapes cost one regex and a memoised minute (see the module docstring); any
    other shape, and every error, goes through :func:`_parse_rfc3339_general`.
    """
    match = _COMMON_RFC3339.fullmatch(text)
    if match is None:
        return _parse_rfc3339_general(text)
    head, second, millis = match.groups()
    try:
        minute_ms = _minute_start_ms(head)
    except ValueError:
        return _parse_rfc3339_general(text)
    return _non_negative(text, minute_ms + int(second) * MS_PER_SECOND + int(millis or 0))


# RFC 3339 §5.6 date-time; "T"/"Z" may be lowercase and "T" a space (§5.6 NOTE).
_RFC3339: Final = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:[Zz]|([+-])(\d\d):(\d\d))",
    re.ASCII,
)

_NUMERIC: Final = (1, 2, 3, 4, 5, 6, 9, 10)  # _RFC3339 groups read as integers


def _parse_rfc3339_general(text: str) -> int:
    match = _RFC3339.fullmatch(text) if len(text) <= _MAX_INPUT_CHARS else None
    if match is None:
        raise InvalidTimestamp(f"invalid time {text!r}: {_RFC3339_HINT}")
    year, month, day, h, m, s, off_h, off_m = (int(g or 0) for g in match.group(*_NUMERIC))
    millis = int((match[7] or "").ljust(3, "0")[:3])  # truncate any number of digits to ms
    if s == 60:  # RFC 3339 §5.7 leap second; POSIX time has none, so hold at its last ms
        s, millis = 59, 999
    if h > 23 or m > 59 or s > 59 or off_h > 23 or off_m > 59:
        raise InvalidTimestamp(f"invalid time {text!r}: a field is out of range")
    try:
        day_ms = _day_start_ms(year, month, day)
    except ValueError as error:
        raise InvalidTimestamp(f"invalid time {text!r}: {error}") from None
    # RFC 3339 §4.2: local time = UTC + offset, so UTC = local time - offset.
    offset_ms = (off_h * 60 + off_m) * 60_000 * (-1 if match[8] == "-" else 1)
    return _non_negative(
        text, day_ms + ((h * 60 + m) * 60 + s) * MS_PER_SECOND + millis - offset_ms
    )


def _non_negative(text: str, ms: int) -> int:
    if ms < 0:
        raise InvalidTimestamp(f"invalid time {text!r}: times before 1970 are not supported")
    return ms


# --- human forms of offsets and gaps -------------------------------------------------------


def format_offset(ms: int) -> str:
    """ms after the first frame → ``HH:MM:SS`` (whole seconds; hours may exceed 99)."""
    sign = "-" if ms < 0 else ""
    minutes, second = divmod(abs(ms) // MS_PER_SECOND, 60)
    hours, minute = divmod(minutes, 60)
    return f"{sign}{hours:02d}:{minute:02d}:{second:02d}"


_GAP_UNITS: Final = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))


def format_gap(ms: int) -> str:
    """``1d2h``, ``3h12m``, ``2m05s``, ``45s``: the two largest units, truncated to seconds.

    The output is itself a valid :func:`parse_duration_ms` input.
    """
    seconds = abs(ms) // MS_PER_SECOND
    sign = "-" if ms < 0 and seconds else ""
    if seconds == 0:
        return "0s"
    index = next(i for i, (_, size) in enumerate(_GAP_UNITS) if seconds >= size)
    name, size = _GAP_UNITS[index]
    lead, rest = divmod(seconds, size)
    text = f"{sign}{lead}{name}"
    if index + 1 < len(_GAP_UNITS):
        next_name, next_size = _GAP_UNITS[index + 1]
        if part := rest // next_size:
            # Minutes and seconds read like a clock (2m05s); hours after days need no pad.
            text += f"{part:02d}{next_name}" if next_name in "ms" else f"{part}{next_name}"
    return text


def format_elapsed(seconds: float) -> str:
    """Elapsed time as ``SS``, ``MM:SS`` or ``HH:MM:SS`` (hours may exceed 99); never negative."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours:02d}:{minutes:02d}:{secs:02d}"
    if minutes:
        return f"{minutes:02d}:{secs:02d}"
    return f"{secs:02d}"
