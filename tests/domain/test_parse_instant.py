"""``record --from/--to``: instants relative to now or absolute."""

from __future__ import annotations

import pytest

from allsmi.domain.errors import UsageError
from allsmi.domain.parse import parse_instant_ms

NOW = 1_776_513_600_000  # 2026-04-18T12:00:00Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        (" now ", NOW),
        ("now-2h", NOW - 7_200_000),
        ("-30m", NOW - 1_800_000),
        ("-1h30m", NOW - 5_400_000),
        ("now-90", NOW - 90_000),
        ("2026-04-18T11:00:00Z", NOW - 3_600_000),
        ("@2026-04-18T13:00:00+01:00", NOW),
    ],
)
def test_instants(text: str, expected: int) -> None:
    assert parse_instant_ms(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "now-", "now+1h", "-x", "2026-13-01T00:00:00Z"])
def test_bad_instants_name_the_forms(text: str) -> None:
    with pytest.raises(UsageError, match="use now, now-2h"):
        parse_instant_ms(text, NOW)
