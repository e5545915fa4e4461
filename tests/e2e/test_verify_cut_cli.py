"""``allsmi verify`` as a user runs it on a recording the recorder left unclosed, and on the
same recording cut inside a block with ``truncate`` (docs/recording-format.md §9): the first
is a note (exit 0), the second damage (exit 1) named in one stderr line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from allsmi.adapters.recording.sink import Codec

from ..app.test_verify_cut import COMPRESSED, PREMATURE, TOOL, cut_file
from .conftest import assert_one_line_error, run_allsmi


@pytest.mark.parametrize("kind", COMPRESSED)
def test_verify_notes_an_unclosed_recording_and_fails_one_cut_inside_a_block(
    tmp_path: Path, kind: Codec
) -> None:
    path, sizes = cut_file(tmp_path, kind)
    whole = path.read_bytes()
    os.truncate(path, sizes[40])
    at_flush = run_allsmi("verify", str(path))
    assert at_flush.returncode == 0, at_flush.stderr
    assert "frames:     41\n" in at_flush.stdout and "torn tail:  no\n" in at_flush.stdout
    assert "unclosed:   not closed cleanly" in at_flush.stdout
    assert at_flush.stdout.endswith("\nOK\n") and at_flush.stderr == ""

    lost = (sizes[41] - sizes[40]) // 2
    path.write_bytes(whole[: sizes[40] + lost])
    test = subprocess.run([TOOL[kind], "-t", str(path)], capture_output=True, text=True)
    assert test.returncode != 0 and PREMATURE[kind] in test.stderr  # the tool agrees: cut
    inside = run_allsmi("verify", str(path))
    finding = (
        f"cut inside a compressed block: the {lost} stored byte(s) after the last decodable "
        f"point lost ({path.name} at {sizes[40]:,}, 41 complete frame(s) kept)"
    )
    line = assert_one_line_error(inside, 1)
    assert line == f"allsmi verify: damage found in {path}: {finding}"
    assert "frames:     41\n" in inside.stdout and "unclosed:" not in inside.stdout
    assert f"torn tail:  yes: cut inside a compressed block, {lost} stored byte(s) lost\n" in (
        inside.stdout
    )
    assert inside.stdout.endswith(f"\nDAMAGED: {finding}\n")
