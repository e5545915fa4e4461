"""``domain`` imports the standard library's pure parts and ``attrs`` only
(docs/architecture.md §2.2, §2.5)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "src" / "allsmi" / "domain"

# Impure or outward: I/O, clocks, randomness, threads, vendors, and the outer layers.
FORBIDDEN = {
    "anyio",
    "asyncio",
    "os",
    "sys",
    "time",
    "random",
    "secrets",
    "socket",
    "subprocess",
    "threading",
    "multiprocessing",
    "io",
    "pathlib",
    "shutil",
    "signal",
    "select",
    "uuid",
    "pynvml",
    "psutil",
    "zstandard",
    "gzip",
    "zlib",
    "asciimatics",
    "httpx",
    "h11",
    "orjson",
    "cattrs",
    "hypothesis",
    "allsmi.adapters",
    "allsmi.app",
}
ALLOWED_THIRD_PARTY = {"attrs", "attr"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _is_forbidden(name: str) -> bool:
    return any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)


def _domain_modules() -> list[Path]:
    return sorted(DOMAIN.glob("*.py"))


def test_domain_has_modules() -> None:
    assert len(_domain_modules()) >= 3


@pytest.mark.parametrize("module", _domain_modules(), ids=lambda p: p.name)
def test_domain_module_imports_only_pure_modules(module: Path) -> None:
    bad = sorted(n for n in _imports(module) if _is_forbidden(n))
    assert not bad, f"{module.name} imports impure modules: {bad}"


@pytest.mark.parametrize("module", _domain_modules(), ids=lambda p: p.name)
def test_domain_module_third_party_imports_are_attrs_only(module: Path) -> None:
    import sys

    stdlib = sys.stdlib_module_names
    outside = sorted(
        n
        for n in _imports(module)
        if n.split(".")[0] not in stdlib
        and n.split(".")[0] not in ALLOWED_THIRD_PARTY
        and not n.startswith("allsmi.domain")
        and n != "__future__"
    )
    assert not outside, f"{module.name} imports outside stdlib+attrs: {outside}"


def test_purity_check_catches_an_impure_import(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text("import time\nfrom allsmi.adapters import codec\nimport attrs\n")
    assert sorted(n for n in _imports(sample) if _is_forbidden(n)) == [
        "allsmi.adapters",
        "time",
    ]
