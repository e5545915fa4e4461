"""Run one benchmark on an earlier revision and on the working tree, alternately, in one run.

The machines' speed varies by half between runs, so "within 1.1× of before" is only
meaningful when before and after are measured side by side. This exports ``REV`` with
``git archive`` into a temporary folder, links its ``bench/out`` and ``.venv`` to this
tree's (the cached recordings are shared: the recording format is the same on both sides),
then runs the named benchmark there and here, ``--rounds`` times, each in a fresh process
with ``PYTHONPATH`` pointing at that side's ``src`` (child commands such as ``allsmi
record`` inherit it), and prints each side's output under a header.

Run: ``.venv/bin/python bench/ab.py REV [--rounds N] -- bench_reader.py 1m --passes 3``
Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def export(rev: str, into: Path) -> None:
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    (HERE / "out").mkdir(exist_ok=True)
    out = into / "bench" / "out"
    if not out.exists():
        out.symlink_to(HERE / "out")
    # benchmarks that run the installed `allsmi` find this tree's venv; PYTHONPATH then
    # makes its entry point import the earlier revision's code
    venv = into / ".venv"
    if (REPO / ".venv").exists() and not venv.exists():
        venv.symlink_to(REPO / ".venv")


def run_side(label: str, root: Path, script: list[str]) -> None:
    env = dict(os.environ, PYTHONPATH=str(root / "src"))
    print(f"\n===== {label}: {root} =====", flush=True)
    argv = [sys.executable, str(root / "bench" / script[0]), *script[1:]]
    subprocess.run(argv, cwd=root, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", help="the earlier revision (a commit, tag or branch)")
    parser.add_argument("--rounds", type=int, default=2, help="before/after pairs (default 2)")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut])
    script = argv[cut + 1 :]
    if not script:
        parser.error("name a benchmark after --, e.g. -- bench_reader.py 1m")
    with tempfile.TemporaryDirectory(prefix="allsmi-ab-") as tmp:
        before = Path(tmp)
        export(args.rev, before)
        for n in range(args.rounds):
            print(f"\n######## round {n + 1}/{args.rounds}", flush=True)
            run_side(f"before ({args.rev})", before, script)
            run_side("after (working tree)", REPO, script)


if __name__ == "__main__":
    main()
