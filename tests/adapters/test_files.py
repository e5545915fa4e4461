"""Paths allsmi writes or reads must be regular files: a FIFO or a device is refused, not opened."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from allsmi.adapters.recording.files import require_regular_file
from allsmi.domain.errors import UsageError


def test_a_regular_file_and_a_missing_path_pass(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    require_regular_file(tmp_path / "f", "output")
    require_regular_file(tmp_path / "missing", "output")  # the caller decides about absence


def test_a_fifo_is_refused_naming_its_kind(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UsageError) as refused:
        require_regular_file(tmp_path / "pipe", "output")
    assert str(refused.value) == f"output {tmp_path / 'pipe'}: not a regular file (a FIFO)"
    assert refused.value.exit_code == 2


def test_a_symlink_to_a_fifo_is_refused_by_what_it_points_at(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "link").symlink_to(tmp_path / "pipe")
    with pytest.raises(UsageError, match=r"not a regular file \(a FIFO\)"):
        require_regular_file(tmp_path / "link", "recording")


@pytest.mark.parametrize(
    ("path", "kind"), [("/dev/null", "a character device"), ("/", "a directory")]
)
def test_devices_and_directories_are_refused(path: str, kind: str) -> None:
    with pytest.raises(UsageError, match=rf"^recording {path}: not a regular file \({kind}\)$"):
        require_regular_file(Path(path), "recording")


def test_a_socket_is_refused(tmp_path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tmp_path / "sock"))
        with pytest.raises(UsageError, match=r"not a regular file \(a socket\)"):
            require_regular_file(tmp_path / "sock", "output")
    finally:
        server.close()


def test_a_block_device_is_refused_when_there_is_one() -> None:
    devices = [p for p in Path("/dev").iterdir() if p.is_block_device()]
    if not devices:
        pytest.skip("no block device under /dev here")
    with pytest.raises(UsageError, match=r"not a regular file \(a block device\)"):
        require_regular_file(devices[0], "output")
