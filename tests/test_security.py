"""Guarantees read off the source itself: no shelling out, every write private and safe."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "allsmi"
MODULES = sorted(SRC.rglob("*.py"))
SHELL_MODULES = {"subprocess", "pty", "pexpect", "sh"}
SHELL_CALLS = {
    "system",
    "popen",
    "execv",
    "execve",
    "execvp",
    "execl",
    "spawnv",
    "spawnl",
    "posix_spawn",
    "startfile",
}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_shells_out(module: Path) -> None:
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Import):
            assert not {a.name.split(".")[0] for a in node.names} & SHELL_MODULES
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.module.split(".")[0] not in SHELL_MODULES
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "os":
                assert node.attr not in SHELL_CALLS, f"os.{node.attr} in {module.name}"
        elif isinstance(node, ast.keyword) and node.arg == "shell":
            pytest.fail(f"shell= in {module.name}")


def _write_mode(call: ast.Call) -> str | None:
    """The mode of a builtin ``open(...)`` call if it can write."""
    mode: ast.expr | None = call.args[1] if len(call.args) > 1 else None
    for kw in call.keywords:
        if kw.arg == "mode":
            mode = kw.value
    if mode is None:
        return None
    if not isinstance(mode, ast.Constant) or not isinstance(mode.value, str):
        return "<dynamic>"
    return mode.value if set(mode.value) & set("wax+") else None


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_files_are_only_written_through_the_private_no_symlink_helpers(module: Path) -> None:
    """Every file allsmi creates goes through adapters/files.py: 0600, O_NOFOLLOW."""
    if module.name == "files.py":
        return
    for node in ast.walk(_tree(module)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "open":
            assert _write_mode(node) is None, f"open(..., write) in {module.name}"
        if isinstance(func, ast.Attribute) and func.attr in ("write_text", "write_bytes"):
            pytest.fail(f"Path.{func.attr} in {module.name}")
        if _is_os_call(func, "open"):
            pytest.fail(f"os.open outside files.py in {module.name}")


def _is_os_call(func: ast.expr, name: str) -> bool:
    return (
        isinstance(func, ast.Attribute)
        and func.attr == name
        and isinstance(func.value, ast.Name)
        and func.value.id == "os"
    )


def test_the_write_check_catches_a_plain_write(tmp_path: Path) -> None:
    sample = ast.parse("open(p, 'wb')\nopen(p)\nopen(p, mode='a')\n")
    calls = [n for n in ast.walk(sample) if isinstance(n, ast.Call)]
    assert [_write_mode(c) for c in calls] == ["wb", None, "a"]
