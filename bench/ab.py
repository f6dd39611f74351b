"""Two trees of tristore, interleaved on one machine: what a change costs or saves.

    make bench-ab ARGS="HEAD~3"                        # HEAD~3 against the working tree
    python -m bench.ab 43e6565 HEAD --rounds 5         # two commits
    python -m bench.ab HEAD --rounds 1 --phases put:1:20 --out /tmp/ab   # what CI runs

On this machine absolute rates swing by a third between runs a few minutes
apart (other load, the disk, the scheduler), so a change is never judged by
one run against a figure from earlier. This runs the two trees in turn, A then
B, for ``--rounds`` rounds: each turn starts a fresh dev cluster through the
real launcher (``python -m tristore dev up``, TLS and signed calls) with that
tree's code first on ``PYTHONPATH``, runs every phase against it with that
tree's own client, and stops it. A tree given as a git ref is checked out into
a temporary worktree (``git worktree add --detach``), removed at the end; no
ref for B means the working tree as it is.

A phase is ``op:concurrency:operations`` (``--phases``, comma-separated;
default ``put:64:6000,get:64:15000,put:1:1000``): ``put`` writes 1 KiB values
over 200 keys (``--keys``), ``get`` reads them (they are written first, not
measured). For each phase it measures operations a second, p50 and p99, and
the **CPU milliseconds per operation summed over every process of the
cluster** (utime+stime from /proc, by role: node, witness, replicator), the
figure a change to the hot path is judged by.

Output: a table of each side's mean, B/A, and every round's value; and
``OUT/ab.json`` (``--out``, default bench/results/): ``{"a", "b", "rounds",
"phases": [{"phase", "a": [ROUND...], "b": [ROUND...], "mean_a", "mean_b"}]}``,
a ROUND being ``{"per_s", "p50_ms", "p99_ms", "cpu_ms_per_op",
"cpu_ms_per_op_by_role"}`` and the means over the ``per_s``, ``p99_ms`` and
``cpu_ms_per_op`` of the rounds. Exits non-zero if a turn failed.

The load runs as this file executed as a script under each tree's
``PYTHONPATH`` (``--turn``), so it imports nothing from ``bench``: only the
tree's ``tristore`` client and the standard library.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_PHASES = "put:64:6000,get:64:15000,put:1:1000"
BUCKET = "bench-ab"
VALUE = 1024
#: Seconds one phase may run before it is stopped (a turn fails then).
PHASE_LIMIT_S = 300
#: The figures a round reports and the ones averaged.
MEANS = ("per_s", "p99_ms", "cpu_ms_per_op")


# --- one turn: runs under the tree's PYTHONPATH --------------------------------


def _proc_cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


async def _phase(status: dict[str, Any], op: str, conc: int, ops: int, keys: int) -> dict[str, Any]:
    from tristore.client import AsyncClient

    procs = status["processes"]
    nodes = [p["grpc"] for p in procs if p["role"] == "node"]
    clients = [AsyncClient(nodes[i % len(nodes)]) for i in range(conc)]
    value = os.urandom(VALUE)
    try:
        await asyncio.gather(*(c.head_bucket(BUCKET) for c in clients))
        if op == "get":
            for i in range(keys):
                await clients[0].put_object(BUCKET, f"k{i}", value)
        before = {p["pid"]: _proc_cpu_ticks(p["pid"]) for p in procs}
        latencies: list[float] = []
        tickets = iter(range(ops))

        async def worker(c: AsyncClient) -> None:
            for i in tickets:
                started = time.perf_counter()
                if op == "put":
                    await c.put_object(BUCKET, f"k{i % keys}", value)
                else:
                    await c.get_object(BUCKET, f"k{i % keys}")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        async with asyncio.timeout(PHASE_LIMIT_S):
            await asyncio.gather(*(worker(c) for c in clients))
        elapsed = time.perf_counter() - started
        by_role: dict[str, float] = {}
        for p in procs:
            ms = (_proc_cpu_ticks(p["pid"]) - before[p["pid"]]) * 1000 / os.sysconf("SC_CLK_TCK")
            by_role[p["role"]] = by_role.get(p["role"], 0.0) + ms / len(latencies)
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    latencies.sort()
    return {
        "per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
        "cpu_ms_per_op": round(sum(by_role.values()), 3),
        "cpu_ms_per_op_by_role": {k: round(v, 3) for k, v in sorted(by_role.items())},
    }


def _turn(status_file: Path, phases: list[tuple[str, int, int]], keys: int) -> None:
    """Every phase against the running cluster of ``status_file``; one JSON line each."""
    import uvloop

    status = json.loads(status_file.read_text())
    for name, value in status["clusters"][0]["env"].items():
        os.environ[name] = value

    async def go() -> None:
        from tristore.client import AsyncClient

        async with AsyncClient(status["processes"][0]["grpc"]) as c:
            await c.create_bucket(BUCKET)
        for op, conc, ops in phases:
            print(json.dumps(await _phase(status, op, conc, ops, keys)), flush=True)

    uvloop.run(go())


# --- the driver ----------------------------------------------------------------


def parse_phases(text: str) -> list[tuple[str, int, int]]:
    """``op:concurrency:operations,...`` as tuples; ValueError names a bad one."""
    out = []
    for spec in text.split(","):
        parts = spec.strip().split(":")
        if (
            len(parts) != 3
            or parts[0] not in ("put", "get")
            or not all(p.isdigit() for p in parts[1:])
        ):
            raise ValueError(f"phase {spec!r}: give put|get:CONCURRENCY:OPERATIONS")
        conc, ops = int(parts[1]), int(parts[2])
        if conc < 1 or ops < conc:
            raise ValueError(f"phase {spec!r}: concurrency >= 1 and operations >= concurrency")
        out.append((parts[0], conc, ops))
    return out


def _checkout(ref: str, into: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(into), ref],
        check=True,
        capture_output=True,
    )
    return into


def _tristore(tree: Path, *args: str, out: Any = subprocess.DEVNULL) -> int:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    # From the tree itself: ``python -m`` puts the current directory first on
    # the path, before PYTHONPATH, so run from another checkout it would
    # start that checkout's code.
    return subprocess.run(
        [sys.executable, "-m", "tristore", *args], env=env, stdout=out, check=False, cwd=tree
    ).returncode


def _one_turn(
    tree: Path, work: Path, phases: list[tuple[str, int, int]], keys: int, base_port: int
) -> list[dict[str, Any]]:
    d = work / "dev"
    status = work / "dev.json"
    with status.open("w") as f:
        rc = _tristore(
            tree, "dev", "up", "--dir", str(d), "--json", "--base-port", str(base_port), out=f
        )
    try:
        if rc != 0:
            raise RuntimeError(f"dev up of {tree} failed (exit {rc}); see {d}/logs")
        proc = subprocess.run(
            [sys.executable, __file__, "--turn", str(status), "--phases", _spec(phases),
             "--keys", str(keys)],
            env={**os.environ, "PYTHONPATH": str(tree)},
            capture_output=True,
            text=True,
            check=False,
            timeout=PHASE_LIMIT_S * len(phases) + 60,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"load against {tree} failed: {proc.stderr.strip()[-800:]}")
        return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    finally:
        _tristore(tree, "dev", "down", "--dir", str(d))
        subprocess.run(["rm", "-rf", str(d)], check=False)


def _spec(phases: list[tuple[str, int, int]]) -> str:
    return ",".join(f"{op}:{conc}:{ops}" for op, conc, ops in phases)


def _mean(rounds: list[dict[str, Any]]) -> dict[str, float]:
    return {k: round(statistics.fmean(r[k] for r in rounds), 3) for k in MEANS}


def run(args: argparse.Namespace) -> dict[str, Any]:
    phases = parse_phases(args.phases)
    with tempfile.TemporaryDirectory(prefix="tristore-ab-") as tmp:
        work = Path(tmp)
        trees = {"a": _checkout(args.a, work / "tree-a")}
        trees["b"] = _checkout(args.b, work / "tree-b") if args.b else ROOT
        results: dict[str, list[list[dict[str, Any]]]] = {"a": [], "b": []}
        try:
            for r in range(args.rounds):
                for side in ("a", "b"):
                    got = _one_turn(trees[side], work, phases, args.keys, args.base_port)
                    results[side].append(got)
                    line = "  ".join(
                        f"{op}c{conc} {g['per_s']}/s {g['cpu_ms_per_op']} ms"
                        for (op, conc, _), g in zip(phases, got, strict=True)
                    )
                    print(f"round {r + 1} {side.upper()}: {line}", flush=True)
        finally:
            for side in ("a", "b"):
                if trees[side] != ROOT:
                    subprocess.run(
                        ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(trees[side])],
                        check=False,
                        capture_output=True,
                    )
    out: list[dict[str, Any]] = []
    for i, (op, conc, ops) in enumerate(phases):
        a = [rounds[i] for rounds in results["a"]]
        b = [rounds[i] for rounds in results["b"]]
        out.append(
            {"phase": f"{op}:{conc}:{ops}", "a": a, "b": b, "mean_a": _mean(a), "mean_b": _mean(b)}
        )
    return {"a": args.a, "b": args.b or "working tree", "rounds": args.rounds, "phases": out}


def table(result: dict[str, Any]) -> str:
    lines = [f"A = {result['a']}, B = {result['b']}, {result['rounds']} interleaved rounds"]
    lines.append(
        f"{'phase':>14}  {'figure':>13}  {'A mean':>9}  {'B mean':>9}  {'B/A':>5}  rounds A | B"
    )
    for p in result["phases"]:
        for k in MEANS:
            a, b = p["mean_a"][k], p["mean_b"][k]
            ratio = f"{b / a:.2f}" if a else "-"
            each = " ".join(str(r[k]) for r in p["a"]) + " | " + " ".join(str(r[k]) for r in p["b"])
            lines.append(f"{p['phase']:>14}  {k:>13}  {a:>9}  {b:>9}  {ratio:>5}  {each}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("a", nargs="?", help="tree A: a git ref")
    parser.add_argument(
        "b", nargs="?", default="", help="tree B: a git ref (default: the working tree)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--phases", default=DEFAULT_PHASES)
    parser.add_argument("--keys", type=int, default=200, help="keys the phases use")
    parser.add_argument("--base-port", type=int, default=28100)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--turn", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.turn is not None:
        _turn(args.turn, parse_phases(args.phases), args.keys)
        return
    if not args.a:
        parser.error("give tree A (a git ref), and optionally tree B")
    try:
        parse_phases(args.phases)
    except ValueError as exc:
        parser.error(str(exc))
    if args.rounds < 1 or args.keys < 1:
        parser.error("--rounds and --keys are at least 1")
    try:
        result = run(args)
    except (RuntimeError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        detail = getattr(exc, "stderr", None)
        said = f": {detail.decode()[-400:]}" if isinstance(detail, bytes) else ""
        print(f"bench.ab: {exc}{said}", file=sys.stderr)
        sys.exit(1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ab.json").write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))


if __name__ == "__main__":
    main()
