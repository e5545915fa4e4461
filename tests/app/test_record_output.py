"""What ``record -o`` may name: checked before anything reads, locks or rotates the path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from allsmi.app.record import prepare_output
from allsmi.domain.errors import UsageError


def test_a_character_device_is_refused_before_it_could_be_rotated_aside() -> None:
    """As root, a restart on ``-o /dev/null`` used to rename /dev/null to /dev/null.0001."""
    with pytest.raises(UsageError, match=r"^output /dev/null: not a regular file \(a character"):
        prepare_output(Path("/dev/null"))
    assert Path("/dev/null").is_char_device()


def test_a_fifo_is_refused_without_being_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UsageError, match=r"not a regular file \(a FIFO\)"):
        prepare_output(tmp_path / "pipe")


def test_a_regular_file_or_a_new_name_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "old.ndjson").write_text("")
    prepare_output(tmp_path / "old.ndjson")
    prepare_output(tmp_path / "new" / "t.ndjson.zst")
    assert (tmp_path / "new").is_dir()
