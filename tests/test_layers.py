"""The import contracts of pyproject.toml ([tool.importlinter], run by ``make lint``) hold on
the real tree, and each of them can fail.

A contract that cannot fail guards nothing: a misspelt module, a wildcard that matches nothing
or an ``ignore_imports`` that is too wide would keep it green for ever. So the real contracts,
read from pyproject.toml unchanged, are run against a small fake ``allsmi`` tree in a temporary
directory: clean, it passes (so the allowed edges really are allowed); with one forbidden
import added, exactly the contracts that import breaks are reported broken.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports_command() -> str:
    beside = Path(sys.executable).with_name("lint-imports")  # the venv's, as make lint runs it
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    if found is None:
        pytest.fail("lint-imports is not installed (import-linter, a test dependency)")
    return found


# The fake tree: every package the contracts name, each module with the imports it holds, and
# among them every edge the architecture allows.
FAKE_TREE: dict[str, tuple[str, ...]] = {
    "__init__.py": (),
    "app/__init__.py": (),
    "app/cli.py": (
        "import allsmi.adapters.network.scrape",
        "import allsmi.adapters.recording.sink",
        "import allsmi.domain.model",
    ),
    "adapters/__init__.py": (),
    "adapters/wire.py": (
        "import cattrs",
        "import allsmi.adapters.rowhooks",
        "import allsmi.domain.model",
    ),
    "adapters/rowhooks.py": ("import allsmi.domain.model",),
    "adapters/csv_out.py": ("import allsmi.domain.model",),
    "adapters/network/__init__.py": (),
    "adapters/network/scrape.py": (
        "import anyio",
        "import allsmi.adapters.prometheus.parser",
        "import allsmi.adapters.wire",
        "import allsmi.domain.model",
    ),
    "adapters/prometheus/__init__.py": (),
    "adapters/prometheus/parser.py": (
        "import allsmi.adapters.rowhooks",
        "import allsmi.domain.model",
    ),
    "adapters/recording/__init__.py": (),
    "adapters/recording/sink.py": ("import zstandard", "import allsmi.adapters.wire"),
    "adapters/machine/__init__.py": (),
    "adapters/machine/nvml.py": ("import pynvml", "import allsmi.domain.model"),
    "adapters/terminal/__init__.py": (),
    "adapters/terminal/painter.py": ("import asciimatics", "import allsmi.domain.model"),
    "adapters/simulation/__init__.py": (),
    "adapters/simulation/simulator.py": (
        "import allsmi.domain.model",
        "import allsmi.adapters.csv_out",
    ),
    "domain/__init__.py": (),
    "domain/model.py": ("import attrs", "import re"),
}


class Break(NamedTuple):
    module: str  # path in FAKE_TREE that gets the forbidden import
    line: str
    broken: frozenset[str]  # contract ids


BREAKS: dict[str, Break] = {
    # The targets import no vendor and no edge, so only the layer contract breaks (importing
    # allsmi.app.cli would also reach, through the cycle, every vendor and every edge).
    "domain-imports-app": Break("domain/model.py", "import allsmi.app", frozenset({"layers"})),
    "domain-imports-adapter": Break(
        "domain/model.py", "from allsmi.adapters import rowhooks", frozenset({"layers"})
    ),
    "adapter-imports-app": Break(
        "adapters/machine/nvml.py", "import allsmi.app", frozenset({"layers"})
    ),
    "prometheus-imports-network": Break(
        "adapters/prometheus/parser.py",
        "import allsmi.adapters.network.scrape",
        frozenset({"adapter-edges"}),
    ),
    "recording-imports-machine": Break(
        "adapters/recording/sink.py",
        "from allsmi.adapters.machine import nvml",
        frozenset({"adapter-edges"}),
    ),
    "network-imports-recording": Break(
        "adapters/network/scrape.py",
        "import allsmi.adapters.recording.sink",
        frozenset({"adapter-edges"}),
    ),
    # wire is shared: an edge below it reaches every user of wire, so the edges break too.
    "shared-imports-edge": Break(
        "adapters/wire.py",
        "import allsmi.adapters.simulation.simulator",
        frozenset({"adapter-shared", "adapter-edges"}),
    ),
    "domain-imports-vendor": Break(
        "domain/model.py", "import orjson", frozenset({"domain-vendors"})
    ),
    "domain-imports-vendor-submodule": Break(
        "domain/model.py", "from psutil import cpu_count", frozenset({"domain-vendors"})
    ),
}


class Outcome(NamedTuple):
    returncode: int
    output: str
    kept: frozenset[str]  # contract names
    broken: frozenset[str]


def _importlinter_options() -> dict[str, Any]:
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert isinstance(options, dict)
    return options


def _contracts() -> list[dict[str, Any]]:
    contracts = _importlinter_options()["contracts"]
    assert isinstance(contracts, list)
    return contracts


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | list):
        return json.dumps(value)  # strings and lists of strings: the same syntax in TOML
    raise TypeError(f"no TOML for {value!r}")


def _write_config(path: Path) -> None:
    """pyproject.toml's [tool.importlinter] section, copied without change."""
    options = _importlinter_options()
    lines = ["[tool.importlinter]"]
    lines += [f"{key} = {_toml_value(v)}" for key, v in options.items() if key != "contracts"]
    for contract in _contracts():
        lines += ["", "[[tool.importlinter.contracts]]"]
        lines += [f"{key} = {_toml_value(v)}" for key, v in contract.items()]
    path.write_text("\n".join(lines) + "\n")


def _write_tree(root: Path, extra: Break | None = None) -> None:
    for relative, imports in FAKE_TREE.items():
        lines = (
            [*imports, extra.line] if extra is not None and extra.module == relative else imports
        )
        text = "".join(line + "\n" for line in lines)
        target = root / "allsmi" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def _fake_module_count() -> int:
    """The fake tree's files plus the outside packages they import (each one node)."""
    imported = {line.split()[1].split(".")[0] for lines in FAKE_TREE.values() for line in lines}
    return len(FAKE_TREE) + len(imported - {"allsmi"})


def _lint_imports(cwd: Path, *config: Path) -> Outcome:
    # lint-imports puts its working directory first on sys.path, so it finds the ``allsmi``
    # found there: the fake tree in a temp dir, the editable install's src/ from ROOT.
    done = subprocess.run(
        [_lint_imports_command(), "--no-cache", "--no-logo", *map(str, config)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    verdicts = dict(
        (match["name"], match["verdict"])
        for match in re.finditer(r"^(?P<name>.+?) (?P<verdict>KEPT|BROKEN)\b", output, re.M)
    )
    return Outcome(
        done.returncode,
        output,
        frozenset(name for name, verdict in verdicts.items() if verdict == "KEPT"),
        frozenset(name for name, verdict in verdicts.items() if verdict == "BROKEN"),
    )


def _names(ids: frozenset[str]) -> frozenset[str]:
    by_id = {contract["id"]: contract["name"] for contract in _contracts()}
    return frozenset(by_id[contract_id] for contract_id in ids)


def _all_names() -> frozenset[str]:
    return frozenset(contract["name"] for contract in _contracts())


def test_the_real_tree_keeps_every_contract() -> None:
    outcome = _lint_imports(ROOT)
    assert outcome.returncode == 0, outcome.output
    assert outcome.kept == _all_names(), outcome.output
    assert not outcome.broken


def test_the_fake_tree_without_a_forbidden_import_keeps_every_contract(tmp_path: Path) -> None:
    _write_tree(tmp_path)
    config = tmp_path / "contracts.toml"
    _write_config(config)
    outcome = _lint_imports(tmp_path, config)
    assert outcome.returncode == 0, outcome.output
    # the fake tree was analysed, not the installed allsmi
    assert f"Analyzed {_fake_module_count()} files" in outcome.output, outcome.output
    assert outcome.kept == _all_names(), outcome.output


@pytest.mark.parametrize("case", sorted(BREAKS))
def test_a_forbidden_import_breaks_its_contract(tmp_path: Path, case: str) -> None:
    forbidden = BREAKS[case]
    _write_tree(tmp_path, forbidden)
    config = tmp_path / "contracts.toml"
    _write_config(config)
    outcome = _lint_imports(tmp_path, config)
    assert outcome.returncode != 0, outcome.output
    assert outcome.broken == _names(forbidden.broken), outcome.output
    assert outcome.kept == _all_names() - outcome.broken, outcome.output


def test_every_contract_has_a_forbidden_import_that_breaks_it() -> None:
    covered = frozenset().union(*(forbidden.broken for forbidden in BREAKS.values()))
    assert covered == {contract["id"] for contract in _contracts()}
