"""Round trips of the parsers and formatters in ``allsmi.domain.parse``
(docs/architecture.md §8, rule 13)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from allsmi.domain.errors import UsageError
from allsmi.domain.parse import (
    MAX_RFC3339_MS,
    Offset,
    format_gap,
    format_offset,
    format_rfc3339_ms,
    parse_duration_ms,
    parse_interval_ms,
    parse_rfc3339_ms,
    parse_size_bytes,
    parse_timecode,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)
UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000}

epoch_ms = st.integers(min_value=0, max_value=MAX_RFC3339_MS)

# RFC 3339 §5.6 time-numoffset: whole minutes, below 24 hours either way.
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# One day of margin at each end keeps every offset inside 1970..9999 in UTC.
aware_datetimes = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
)


@given(epoch_ms)
def test_rfc3339_format_then_parse_returns_the_same_ms(ms: int) -> None:
    assert parse_rfc3339_ms(format_rfc3339_ms(ms)) == ms


@given(epoch_ms)
def test_rfc3339_format_agrees_with_datetime(ms: int) -> None:
    expected = (EPOCH + ms * ONE_MS).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert format_rfc3339_ms(ms) == expected


@given(aware_datetimes, st.integers(min_value=0, max_value=9), st.sampled_from("Tt "))
def test_rfc3339_parse_agrees_with_fromisoformat(
    moment: datetime, digits: int, separator: str
) -> None:
    fraction = f"{moment.microsecond:06d}".ljust(digits, "7")[:digits]
    base = moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if digits else "")
    offset = moment.strftime("%z")
    text = f"{base}{offset[:3]}:{offset[3:]}"
    expected = (datetime.fromisoformat(text) - EPOCH) // ONE_MS
    assert parse_rfc3339_ms(text.replace("T", separator)) == expected


@given(aware_datetimes, st.sampled_from("Zz"))
def test_rfc3339_parse_reads_z_as_utc(moment: datetime, zulu: str) -> None:
    utc = moment.astimezone(UTC)
    text = utc.isoformat(timespec="milliseconds").replace("+00:00", zulu)
    assert parse_rfc3339_ms(text) == (utc - EPOCH) // ONE_MS


@given(st.integers(min_value=0, max_value=10**12))
def test_format_offset_then_parse_timecode_returns_whole_seconds(ms: int) -> None:
    assert parse_timecode(format_offset(ms)) == Offset(ms // 1000 * 1000)


@given(
    st.fixed_dictionaries(
        {},
        optional={unit: st.integers(min_value=0, max_value=10**6) for unit in "dhms"},
    ).filter(bool),
    st.booleans(),
)
def test_duration_of_generated_components_parses_to_their_sum(
    parts: dict[str, int], upper: bool
) -> None:
    text = "".join(f"{parts[unit]}{unit}" for unit in "dhms" if unit in parts)
    expected = sum(count * UNIT_MS[unit] for unit, count in parts.items())
    assert parse_duration_ms(text.upper() if upper else text) == expected


@given(
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=59),
    st.integers(min_value=0, max_value=59),
)
def test_duration_of_hours_minutes_seconds_parses_to_their_ms(h: int, m: int, s: int) -> None:
    assert parse_duration_ms(f"{h}h{m:02d}m{s:02d}s") == ((h * 60 + m) * 60 + s) * 1000


@given(st.integers(min_value=0, max_value=10**12))
def test_format_gap_reads_back_as_a_duration_no_longer_than_the_gap(ms: int) -> None:
    parsed = parse_duration_ms(format_gap(ms))
    assert parsed <= ms
    assert ms - parsed < max(1000, ms // 20)  # only the smaller units were dropped


@given(
    st.integers(min_value=0, max_value=10**9),
    st.sampled_from([("", 0), ("K", 1), ("M", 2), ("G", 3), ("T", 4)]),
    st.sampled_from(["", "B", "iB"]),
    st.booleans(),
)
def test_size_of_number_and_unit_is_number_times_a_power_of_1024(
    n: int, unit: tuple[str, int], suffix: str, lower: bool
) -> None:
    letter, power = unit
    text = f"{n}{letter}{suffix if letter else ''}"
    assert parse_size_bytes(text.lower() if lower else text) == n * 1024**power


PARSERS = [parse_duration_ms, parse_size_bytes, parse_interval_ms, parse_timecode, parse_rfc3339_ms]


@given(
    st.sampled_from(PARSERS),
    st.text(alphabet=st.sampled_from("0123456789:.@-+TZtzdhmsKMGBi ٣\n"), max_size=40)
    | st.text(max_size=80),
)
def test_parsers_answer_any_text_with_a_value_or_a_usage_error(
    parser: Callable[[str], object], text: str
) -> None:
    try:
        parser(text)
    except UsageError as error:
        assert repr(text) in str(error)
        assert "\n" not in str(error)
