"""How long the ``tristore`` command takes to answer before it does any work.

    python -m bench.cli_startup                     # 10 runs of each case
    python -m bench.cli_startup --runs 20 --source /tmp/old-checkout

Runs ``python -m tristore ARGS`` for each case ``--runs`` times and reports the
median wall time, and the median of what ``-X importtime`` says the imports
took (less noisy than wall time on a shared machine), and how many modules were
imported. The network case points at a closed port, so it times start-up, the
import of the SDK and one refused connection. The goal (issue 15): ``--help``,
``--version``, ``CMD --help`` and usage errors under 0.3 s. ``--source`` times
another checkout's ``tristore`` package instead (put first on PYTHONPATH), to
compare before and after a change on the same machine at the same load.
Results go to bench/results/cli_startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
SOURCE = Path(__file__).resolve().parents[1]
GOAL_S = 0.3

CASES: dict[str, list[str]] = {
    "--help": ["--help"],
    "--version": ["--version"],
    "ls --help": ["ls", "--help"],
    "cp (usage error)": ["cp"],
    "ls s3://bench (refused)": ["ls", "s3://bench"],
}


def _env(source: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(source), os.environ.get("PYTHONPATH", "")) if p)
    # A closed port and plaintext: the network case fails fast, with no CA file to read.
    return {
        **os.environ,
        "PYTHONPATH": path,
        "TRISTORE_ENDPOINT": "127.0.0.1:1",
        "TRISTORE_INSECURE": "1",
    }


def import_ms(stderr: str) -> tuple[float, int]:
    """The total of ``-X importtime``'s top-level imports (ms), and how many
    modules were imported."""
    total_us, count = 0, 0
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        count += 1
        _, cumulative, name = line.split("|")
        if not name.startswith("  "):  # depth 0: one space after the bar
            total_us += int(cumulative)
    return total_us / 1000, count


def measure(args: list[str], runs: int, source: Path) -> dict[str, Any]:
    env = _env(source)
    walls, imports, modules, code = [], [], 0, 0
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "tristore", *args],
            env=env, capture_output=True, text=True, timeout=60, cwd="/",
        )  # fmt: skip
        walls.append(time.perf_counter() - started)
        traced = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "tristore", *args],
            env=env, capture_output=True, text=True, timeout=60, cwd="/",
        )  # fmt: skip
        ms, modules = import_ms(traced.stderr)
        imports.append(ms)
        code = done.returncode
    return {
        "args": args,
        "exit": code,
        "wall_s": round(statistics.median(walls), 3),
        "wall_min_s": round(min(walls), 3),
        "imports_ms": round(statistics.median(imports), 1),
        "modules": modules,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of each case (default 10)")
    parser.add_argument(
        "--source", type=Path, default=SOURCE, help="checkout whose tristore package to time"
    )
    opts = parser.parse_args()
    started = time.perf_counter()
    bare = []
    for _ in range(opts.runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - t)
    rows = {name: measure(args, opts.runs, opts.source) for name, args in CASES.items()}
    result = {
        "source": str(opts.source),
        "runs": opts.runs,
        "python_bare_s": round(statistics.median(bare), 3),
        "goal_s": GOAL_S,
        "cases": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cli_startup.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'tristore ...':<24} {'wall s':>7} {'imports ms':>10} {'modules':>7}")
    for name, r in rows.items():
        print(f"{name:<24} {r['wall_s']:>7.3f} {r['imports_ms']:>10.1f} {r['modules']:>7}")
    print(f"{'(python -c pass)':<24} {result['python_bare_s']:>7.3f}   (goal: < {GOAL_S} s)")


if __name__ == "__main__":
    main()
