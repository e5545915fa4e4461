"""Parsers of durations, sizes, intervals, timecodes and RFC 3339 times
(docs/architecture.md §7.2; docs/recording-format.md §2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest

from allsmi.domain.errors import UsageError
from allsmi.domain.parse import (
    MAX_RFC3339_MS,
    Instant,
    Offset,
    Timecode,
    TimeOfDay,
    format_gap,
    format_offset,
    format_rfc3339_ms,
    parse_duration_ms,
    parse_interval_ms,
    parse_rfc3339_ms,
    parse_size_bytes,
    parse_timecode,
    resolve_timecode,
)

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
PLUS_TWO = timezone(timedelta(hours=2))
BERLIN = ZoneInfo("Europe/Berlin")


def utc_ms(text: str) -> int:
    """Reference conversion through datetime, independent of the code under test."""
    return (datetime.fromisoformat(text) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        milliseconds=1
    )


# --- durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", 30 * SECOND),
        ("5m", 5 * MINUTE),
        ("1h", HOUR),
        ("1d", DAY),
        ("0s", 0),
        ("90m", 90 * MINUTE),
    ],
)
def test_duration_accepts_a_single_unit(text: str, expected: int) -> None:
    assert parse_duration_ms(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1h30m", HOUR + 30 * MINUTE),
        ("2d3h", 2 * DAY + 3 * HOUR),
        ("1d2h3m4s", DAY + 2 * HOUR + 3 * MINUTE + 4 * SECOND),
        ("1h05s", HOUR + 5 * SECOND),
        ("3h12m", 3 * HOUR + 12 * MINUTE),
    ],
)
def test_duration_accepts_compound_units_in_descending_order(text: str, expected: int) -> None:
    assert parse_duration_ms(text) == expected


@pytest.mark.parametrize("text", ["1H30M", "1h30M", "2D3H", "5S"])
def test_duration_accepts_suffixes_in_any_case(text: str) -> None:
    assert parse_duration_ms(text) == parse_duration_ms(text.lower())


@pytest.mark.parametrize(
    ("text", "expected"), [("90", 90 * SECOND), ("1.5", 1500), (".5", 500), ("0.001", 1)]
)
def test_duration_accepts_bare_and_fractional_seconds(text: str, expected: int) -> None:
    assert parse_duration_ms(text) == expected


def test_duration_zero_is_zero_which_callers_read_as_unlimited() -> None:
    assert parse_duration_ms("0") == 0


def test_duration_trims_surrounding_whitespace() -> None:
    assert parse_duration_ms("  1h30m\n") == HOUR + 30 * MINUTE


@pytest.mark.parametrize(
    "text",
    ["", "   ", "-5", "-5m", "5x", "h", "1h1h", "5m5m", "30m1h", "1s1m", "1h 30m", "1.h", ".5h",
     "5ms", "1e3", "inf", "nan", "1_000", "٣"],
)  # fmt: skip
def test_duration_rejects_junk_negative_repeated_and_misordered(text: str) -> None:
    with pytest.raises(UsageError, match="invalid duration") as caught:
        parse_duration_ms(text)
    assert repr(text) in str(caught.value)


def test_duration_error_quotes_input_and_lists_accepted_forms() -> None:
    with pytest.raises(UsageError) as caught:
        parse_duration_ms("5x")
    assert str(caught.value) == (
        "invalid duration '5x': use 30s, 5m, 1h, 1d, 1h30m or bare seconds"
    )


def test_duration_error_is_a_usage_error_with_exit_status_2() -> None:
    with pytest.raises(UsageError) as caught:
        parse_duration_ms("soon")
    assert caught.value.exit_code == 2


# --- sizes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1K", 1024),
        ("10M", 10 * 1024**2),
        ("2G", 2 * 1024**3),
        ("1T", 1024**4),
        ("1k", 1024),
        ("10m", 10 * 1024**2),
        ("2g", 2 * 1024**3),
    ],
)
def test_size_accepts_binary_units_in_any_case(text: str, expected: int) -> None:
    assert parse_size_bytes(text) == expected


@pytest.mark.parametrize("text", ["10MB", "10MiB", "10mb", "10mib", "10Mb", "10 M", " 10M "])
def test_size_accepts_optional_b_or_ib_suffix_as_powers_of_1024(text: str) -> None:
    assert parse_size_bytes(text) == 10 * 1024**2


@pytest.mark.parametrize(("text", "expected"), [("512", 512), ("10B", 10), ("10b", 10)])
def test_size_accepts_bare_bytes(text: str, expected: int) -> None:
    assert parse_size_bytes(text) == expected


def test_size_zero_means_no_rotation() -> None:
    assert parse_size_bytes("0") == 0


@pytest.mark.parametrize(
    ("text", "expected"), [("1.5M", 1_572_864), ("0.5K", 512), (".25G", 1024**3 // 4)]
)
def test_size_accepts_fractions_with_a_unit(text: str, expected: int) -> None:
    assert parse_size_bytes(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "-1M", "-1", "1X", "M", "1MM", "1Mi", "1iB", "10 bytes", "1P", "1.5", "1.5B", "1e6",
     "inf", "1,5M"],
)  # fmt: skip
def test_size_rejects_junk_negative_and_fractional_bytes(text: str) -> None:
    with pytest.raises(UsageError, match="invalid size") as caught:
        parse_size_bytes(text)
    assert repr(text) in str(caught.value)


# --- intervals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.5", 500), ("3", 3000), ("2.25", 2250), ("0.1", 100), ("3s", 3000), ("0.25S", 250)],
)
def test_interval_accepts_fractional_seconds_with_optional_s(text: str, expected: int) -> None:
    assert parse_interval_ms(text) == expected


def test_interval_accepts_exactly_the_minimum_of_a_tenth_of_a_second() -> None:
    assert parse_interval_ms(" 0.100 ") == 100


@pytest.mark.parametrize("text", ["0.09", "0.05", "0", "0s"])
def test_interval_rejects_below_a_tenth_of_a_second(text: str) -> None:
    with pytest.raises(UsageError, match=r"the shortest interval is 0\.1 s") as caught:
        parse_interval_ms(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize("text", ["", "-1", "inf", "nan", "1e3", "abc", "1m", "2ss", "1h"])
def test_interval_rejects_junk_and_non_finite(text: str) -> None:
    with pytest.raises(UsageError, match="invalid interval") as caught:
        parse_interval_ms(text)
    assert repr(text) in str(caught.value)


# --- timecodes: parsing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("01:02:03", Offset(HOUR + 2 * MINUTE + 3 * SECOND)),
        ("1:2:3", Offset(HOUR + 2 * MINUTE + 3 * SECOND)),
        ("00:12:34", Offset(12 * MINUTE + 34 * SECOND)),
        ("02:03", Offset(2 * MINUTE + 3 * SECOND)),
        ("45", Offset(45 * SECOND)),
        ("0", Offset(0)),
        ("12.5", Offset(12_500)),
        ("1:30.25", Offset(90_250)),
    ],
)
def test_timecode_reads_offsets_from_the_first_frame(text: str, expected: Offset) -> None:
    assert parse_timecode(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("100:00:00", Offset(100 * HOUR)), ("75:00", Offset(75 * MINUTE)), ("90", Offset(90_000))],
)
def test_timecode_first_component_may_be_any_size(text: str, expected: Offset) -> None:
    assert parse_timecode(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@14:32", TimeOfDay(14, 32, 0)),
        ("@14:32:05", TimeOfDay(14, 32, 5)),
        ("@9:05", TimeOfDay(9, 5, 0)),
        ("@00:00", TimeOfDay(0, 0, 0)),
        ("@23:59:59", TimeOfDay(23, 59, 59)),
    ],
)
def test_timecode_reads_at_time_of_day(text: str, expected: TimeOfDay) -> None:
    assert parse_timecode(text) == expected


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("@2026-04-18T14:32:00Z", "2026-04-18T14:32:00+00:00"),
        ("@2026-04-18T14:32:00+02:00", "2026-04-18T14:32:00+02:00"),
        ("@2026-04-18T14:32:00.250-05:30", "2026-04-18T14:32:00.250-05:30"),
    ],
)
def test_timecode_reads_absolute_instants(text: str, iso: str) -> None:
    assert parse_timecode(text) == Instant(utc_ms(iso))


def test_timecode_trims_surrounding_whitespace() -> None:
    assert parse_timecode("  @14:32 ") == TimeOfDay(14, 32, 0)


def test_timecode_error_quotes_input_and_lists_accepted_forms() -> None:
    with pytest.raises(UsageError) as caught:
        parse_timecode("1:2:3:4")
    assert str(caught.value) == (
        "invalid timecode '1:2:3:4': use HH:MM:SS, MM:SS, SS, @HH:MM[:SS] or @2026-04-18T14:32:00Z"
    )


@pytest.mark.parametrize(
    "text",
    ["", "abc", "-5", "1:2:3:4", "1::2", ":30", "1:", "1.5:00", "1:30:", "12:345", "@", "@12",
     "@12:5", "@123:00", "@2026-04-18T14:32:00", "@2026-04-18", "@2026-13-01T00:00:00Z",
     "@yesterday", "1h", "٣"],
)  # fmt: skip
def test_timecode_rejects_malformed_text(text: str) -> None:
    with pytest.raises(UsageError, match="invalid timecode") as caught:
        parse_timecode(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize(
    "text", ["1:60", "1:00:60", "1:60:00", "0:59.9999:00", "@24:00", "@12:60", "@12:00:60"]
)
def test_timecode_rejects_components_out_of_range(text: str) -> None:
    with pytest.raises(UsageError, match="invalid timecode") as caught:
        parse_timecode(text)
    assert repr(text) in str(caught.value)


def test_timecode_values_refuse_impossible_fields() -> None:
    with pytest.raises(ValueError):
        TimeOfDay(24, 0, 0)
    with pytest.raises(ValueError):
        Offset(-1)


# --- timecodes: resolution ----------------------------------------------------------------


def test_resolve_offset_is_the_offset_itself() -> None:
    first = utc_ms("2026-04-18T12:00:00+00:00")
    assert resolve_timecode(Offset(90_000), first, first + HOUR, UTC) == 90_000


def test_resolve_instant_is_measured_from_the_first_frame() -> None:
    first = utc_ms("2026-04-18T12:00:00+00:00")
    tc = parse_timecode("@2026-04-18T14:32:00+02:00")
    assert resolve_timecode(tc, first, first + HOUR, UTC) == 32 * MINUTE


def test_resolve_instant_outside_the_recording_is_left_for_the_caller_to_clamp() -> None:
    first = utc_ms("2026-04-18T12:00:00+00:00")
    before = parse_timecode("@2026-04-18T11:00:00Z")
    after = parse_timecode("@2026-04-18T15:00:00Z")
    assert resolve_timecode(before, first, first + HOUR, UTC) == -HOUR
    assert resolve_timecode(after, first, first + HOUR, UTC) == 3 * HOUR


def resolve_at(text: str, first_iso: str, last_iso: str, tz: tzinfo) -> int:
    first = utc_ms(first_iso)
    tc: Timecode = parse_timecode(text)
    return resolve_timecode(tc, first, utc_ms(last_iso), tz)


# A recording from 23:00 to 03:00 local time (+02:00), across midnight.
MIDNIGHT = ("2026-04-18T23:00:00+02:00", "2026-04-19T03:00:00+02:00")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@23:30", 30 * MINUTE),  # on the first date
        ("@01:00", 2 * HOUR),  # on the second date
        ("@03:00", 4 * HOUR),  # the last frame exactly
        ("@23:00", 0),  # the first frame exactly
    ],
)
def test_resolve_time_of_day_finds_the_date_inside_a_recording_spanning_midnight(
    text: str, expected: int
) -> None:
    assert resolve_at(text, *MIDNIGHT, PLUS_TWO) == expected


def test_resolve_time_of_day_uses_local_dates_not_utc_dates() -> None:
    # 00:30..01:30 local on the 19th is 22:30..23:30 UTC on the 18th.
    first, last = "2026-04-19T00:30:00+02:00", "2026-04-19T01:30:00+02:00"
    assert resolve_at("@01:00", first, last, PLUS_TWO) == 30 * MINUTE


def test_resolve_time_of_day_outside_picks_the_nearest_candidate_after() -> None:
    # @12:00 is 11 h before the start on the 18th, but 9 h after the end on the 19th.
    assert resolve_at("@12:00", *MIDNIGHT, PLUS_TWO) == 13 * HOUR


def test_resolve_time_of_day_outside_picks_the_nearest_candidate_before() -> None:
    # @20:00 is 3 h before the start on the 18th, but 17 h after the end on the 19th.
    assert resolve_at("@20:00", *MIDNIGHT, PLUS_TWO) == -3 * HOUR


def test_resolve_time_of_day_on_a_one_day_recording_may_fall_outside() -> None:
    first, last = "2026-04-18T10:00:00+00:00", "2026-04-18T11:00:00+00:00"
    assert resolve_at("@09:00", first, last, UTC) == -HOUR
    assert resolve_at("@12:00", first, last, UTC) == 2 * HOUR


def test_resolve_time_of_day_picks_the_first_matching_date_of_a_long_recording() -> None:
    first, last = "2026-04-18T12:00:00+00:00", "2026-04-21T12:00:00+00:00"
    assert resolve_at("@06:00", first, last, UTC) == 18 * HOUR
    assert resolve_at("@13:00", first, last, UTC) == HOUR


def test_resolve_time_of_day_with_a_single_frame() -> None:
    only = "2026-04-18T12:00:00+00:00"
    assert resolve_at("@12:00:30", only, only, UTC) == 30 * SECOND


# Berlin springs forward on 2026-03-29 at 02:00 CET (+01:00) to 03:00 CEST (+02:00).
SPRING = ("2026-03-28T23:00:00+01:00", "2026-03-29T08:00:00+02:00")


def test_resolve_time_of_day_after_a_spring_forward_uses_summer_time() -> None:
    # 03:30 CEST is 01:30 UTC; the first frame is 22:00 UTC.
    assert resolve_at("@03:30", *SPRING, BERLIN) == 3 * HOUR + 30 * MINUTE


def test_resolve_time_of_day_before_a_spring_forward_uses_winter_time() -> None:
    assert resolve_at("@01:00", *SPRING, BERLIN) == 2 * HOUR


def test_resolve_skipped_time_of_day_reads_it_with_the_offset_before_the_change() -> None:
    # 02:30 does not exist that night; fold=0 reads it as 02:30 CET = 03:30 CEST.
    assert resolve_at("@02:30", *SPRING, BERLIN) == resolve_at("@03:30", *SPRING, BERLIN)


# Berlin falls back on 2026-10-25 at 03:00 CEST (+02:00) to 02:00 CET (+01:00).
AUTUMN = ("2026-10-25T00:00:00+02:00", "2026-10-25T05:00:00+01:00")


def test_resolve_repeated_time_of_day_picks_its_first_occurrence() -> None:
    # 02:30 happens twice; fold=0 is the first, 02:30 CEST = 00:30 UTC.
    assert resolve_at("@02:30", *AUTUMN, BERLIN) == 2 * HOUR + 30 * MINUTE


def test_resolve_time_of_day_after_a_fall_back_uses_winter_time() -> None:
    # 04:00 CET is 03:00 UTC; the first frame is 22:00 UTC the day before.
    assert resolve_at("@04:00", *AUTUMN, BERLIN) == 5 * HOUR


# --- RFC 3339 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1, "1970-01-01T00:00:00.001Z"),
        (utc_ms("2026-04-18T12:00:00+00:00"), "2026-04-18T12:00:00.000Z"),
        (utc_ms("2024-02-29T23:59:59.999+00:00"), "2024-02-29T23:59:59.999Z"),
        (utc_ms("2000-03-01T00:00:00+00:00"), "2000-03-01T00:00:00.000Z"),
        (MAX_RFC3339_MS, "9999-12-31T23:59:59.999Z"),
    ],
)
def test_format_rfc3339_writes_utc_with_three_fraction_digits_and_z(ms: int, text: str) -> None:
    assert format_rfc3339_ms(ms) == text


@pytest.mark.parametrize("ms", [-1, MAX_RFC3339_MS + 1])
def test_format_rfc3339_refuses_times_outside_four_digit_years_from_1970(ms: int) -> None:
    with pytest.raises(ValueError):
        format_rfc3339_ms(ms)


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2026-04-18T12:00:00.000Z", "2026-04-18T12:00:00+00:00"),
        ("2026-04-20T12:34:56Z", "2026-04-20T12:34:56+00:00"),  # all-smi's whole seconds
        ("2026-04-18T12:00:00.5Z", "2026-04-18T12:00:00.500+00:00"),
        ("2026-04-18T12:00:00.123456789Z", "2026-04-18T12:00:00.123+00:00"),
        ("2026-04-18T12:00:00.9999Z", "2026-04-18T12:00:00.999+00:00"),  # truncated
        ("2026-04-18T14:32:00+02:00", "2026-04-18T12:32:00+00:00"),
        ("2026-04-18T07:02:00.250-05:30", "2026-04-18T12:32:00.250+00:00"),
        ("2026-04-18T12:00:00-00:00", "2026-04-18T12:00:00+00:00"),
        ("2026-04-19T01:00:00+23:59", "2026-04-18T01:01:00+00:00"),
        ("2026-04-18t12:00:00.000z", "2026-04-18T12:00:00+00:00"),
        ("2026-04-18 12:00:00.000Z", "2026-04-18T12:00:00+00:00"),
        ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00+00:00"),
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00+00:00"),
        ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999+00:00"),
    ],
)
def test_parse_rfc3339_accepts_every_form_recordings_carry(text: str, iso: str) -> None:
    assert parse_rfc3339_ms(text) == utc_ms(iso)


def test_parse_rfc3339_holds_a_leap_second_at_the_last_millisecond_of_its_minute() -> None:
    # RFC 3339 §5.7 allows second 60; POSIX time has none, and t must never go backwards.
    assert parse_rfc3339_ms("2016-12-31T23:59:60Z") == utc_ms("2016-12-31T23:59:59.999+00:00")


@pytest.mark.parametrize(
    "text",
    ["", "junk", "2026-04-18", "2026-04-18T12:00:00", "2026-04-18T12:00Z",
     "2026-04-18T12:00:00.Z", "2026-04-18T12:00:00+2:00", "2026-04-18T12:00:00+0200",
     "2026-04-18X12:00:00Z", " 2026-04-18T12:00:00Z", "2026-04-18T12:00:00Z ",
     "2026-4-18T12:00:00Z", "26-04-18T12:00:00Z", "2026-04-18T12:00:00,5Z",
     "２０２６-04-18T12:00:00Z", "2026-04-18T1٢:00:00Z", "+026-04-18T12:00:00Z"],
)  # fmt: skip
def test_parse_rfc3339_rejects_junk(text: str) -> None:
    with pytest.raises(ValueError, match="invalid time") as caught:
        parse_rfc3339_ms(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize(
    "text",
    ["2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-02-29T00:00:00Z",
     "2026-04-31T00:00:00.000Z", "2026-04-00T00:00:00Z", "2100-02-29T00:00:00Z",
     "2026-04-18T24:00:00Z", "2026-04-18T12:60:00.000Z", "2026-04-18T12:00:61Z",
     "2026-04-18T12:00:00+24:00", "2026-04-18T12:00:00+01:60"],
)  # fmt: skip
def test_parse_rfc3339_rejects_fields_out_of_range(text: str) -> None:
    with pytest.raises(ValueError, match="invalid time"):
        parse_rfc3339_ms(text)


@pytest.mark.parametrize(
    "text", ["1969-12-31T23:59:59.999Z", "1970-01-01T00:30:00+01:00", "0000-01-01T00:00:00Z"]
)
def test_parse_rfc3339_rejects_times_before_1970(text: str) -> None:
    with pytest.raises(ValueError, match="before 1970"):
        parse_rfc3339_ms(text)


def test_parse_rfc3339_error_is_both_a_usage_error_and_a_value_error() -> None:
    with pytest.raises(UsageError) as caught:
        parse_rfc3339_ms("yesterday")
    assert isinstance(caught.value, ValueError)
    assert caught.value.exit_code == 2


# --- human forms --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "00:00:00"),
        (1999, "00:00:01"),
        (12 * MINUTE + 34 * SECOND, "00:12:34"),
        (HOUR + 2 * MINUTE + 3 * SECOND, "01:02:03"),
        (100 * HOUR + 59 * SECOND, "100:00:59"),
    ],
)
def test_format_offset_writes_whole_seconds_as_hh_mm_ss(ms: int, text: str) -> None:
    assert format_offset(ms) == text


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (45 * SECOND, "45s"),
        (2 * MINUTE + 5 * SECOND, "2m05s"),
        (3 * HOUR + 12 * MINUTE + 40 * SECOND, "3h12m"),
        (HOUR + 5 * MINUTE, "1h05m"),
        (DAY + 2 * HOUR + 30 * MINUTE, "1d2h"),
        (3 * HOUR, "3h"),
        (3 * HOUR + 30 * SECOND, "3h"),
        (MINUTE, "1m"),
        (DAY + 5 * MINUTE, "1d"),
        (40 * DAY, "40d"),
        (999, "0s"),
        (0, "0s"),
    ],
)
def test_format_gap_writes_the_two_largest_units(ms: int, text: str) -> None:
    assert format_gap(ms) == text


def test_format_gap_output_reads_back_as_a_duration() -> None:
    assert parse_duration_ms(format_gap(3 * HOUR + 12 * MINUTE)) == 3 * HOUR + 12 * MINUTE


@pytest.mark.parametrize(
    ("text", "ms"), [("0.5s", 500), ("1.5h", 5_400_000), ("1h0.5m", 3_630_000)]
)
def test_duration_accepts_fractions_with_units(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms
