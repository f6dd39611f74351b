"""What an idle cluster costs: CPU of every process while nothing is asked of it.

    python -m bench.idle                      # starts one local cluster
    python -m bench.idle --settle 20 --seconds 10 --base-port 24300

Starts ``tristore dev up`` in a temporary directory (6 nodes, 3 witnesses, the
replicators), waits ``--settle`` seconds for start-up work to end, then reads
utime+stime of every process from /proc over ``--seconds`` and reports each as
a percentage of one core, by process and by kind. The goal (DESIGN.md §7): the
whole idle cluster under 3% of one core. Results go to bench/results/idle.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import tlsenv

RESULTS = Path(__file__).resolve().parent / "results"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _dev(dev: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tristore", "dev", *args, "--dir", str(dev)],
        capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip


def measure(processes: list[dict[str, Any]], seconds: float) -> list[dict[str, Any]]:
    """Each process's CPU over ``seconds``, as a percentage of one core."""
    before = {p["name"]: cpu_ticks(p["pid"]) for p in processes}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    rows = []
    for p in processes:
        used = (cpu_ticks(p["pid"]) - before[p["name"]]) / TICKS
        rows.append(
            {"name": p["name"], "role": p["role"], "cpu_pct": round(100 * used / elapsed, 2)}
        )
    return rows


def run(settle_s: float, seconds: float, base_port: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="tristore-bench-idle-"))
    dev = root / "dev"
    try:
        _dev(dev, "up", "--base-port", str(base_port), *tlsenv.setup())
        time.sleep(settle_s)
        processes = json.loads(_dev(dev, "status", "--json").stdout)
        rows = measure(processes, seconds)
    finally:
        subprocess.run(
            [sys.executable, "-m", "tristore", "dev", "down", "--dir", str(dev)],
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
    kinds: dict[str, list[float]] = {}
    for r in rows:
        kinds.setdefault(r["role"], []).append(r["cpu_pct"])
    return {
        "settle_s": settle_s,
        "seconds": seconds,
        "processes": rows,
        "by_kind": {
            k: {
                "count": len(v),
                "total_pct": round(sum(v), 2),
                "mean_pct": round(sum(v) / len(v), 2),
            }
            for k, v in kinds.items()
        },
        "total_pct": round(sum(r["cpu_pct"] for r in rows), 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--settle", type=float, default=20.0, help="seconds to wait after start")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds to measure")
    p.add_argument("--base-port", type=int, default=24300)
    args = p.parse_args()
    result = run(args.settle, args.seconds, args.base_port)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "idle.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'process':<10} {'kind':<11} {'% of a core':>11}")
    for r in result["processes"]:
        print(f"{r['name']:<10} {r['role']:<11} {r['cpu_pct']:>11.2f}")
    for kind, k in result["by_kind"].items():
        print(f"{'all ' + str(k['count']):<10} {kind:<11} {k['total_pct']:>11.2f}")
    print(f"{'cluster':<10} {'':<11} {result['total_pct']:>11.2f}   (goal: < 3)")


if __name__ == "__main__":
    main()
