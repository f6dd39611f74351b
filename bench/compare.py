"""tristore against etcd and the Python gRPC ceiling, on this machine, in one run.

    make bench-compare                          # the full run (a few minutes)
    make bench-compare ARGS=--quick             # tiny counts, c1 and c16: < ~60 s
    python -m bench.compare --quick --out /tmp/cmp   # what CI runs

Starts, in a temporary directory, a three-member etcd (``etcd`` on PATH, Debian's
``etcd-server`` 3.4, members on 127.0.0.1, default fsync), a tristore dev
cluster through the real launcher (``python -m tristore dev up``) and a grpc.aio
echo server (``python -m bench.echo``), and drives all three with the same
client: asyncio on uvloop, N concurrent workers, each with its own gRPC channel
(the tristore SDK's channel options), a fixed number of operations per phase
that also stops at a time limit, 1 KiB values. The phases:

- ``put``: etcd ``KV.Put``, tristore ``put_object``; concurrency 1, 4, 16, 64, 256.
- ``get``: linearizable reads of keys written before the sweep: etcd ``KV.Range``
  (default, linearizable), tristore ``get_object``; same sweep.
- ``get_hot`` at c64: reads of a 16-key hot set in each system's cheapest read.
  etcd: ``serializable=True`` (member-local, may be stale). tristore has **no**
  non-linearizable read mode: its row is the same linearizable GET, which for
  hot keys is served from the coordinator's metadata cache.
- ``echo``: 1 KiB in, 1 KiB out to a server that does nothing else, over the same
  sweep: no Python gRPC server answers faster, so it is the ceiling.

Phases of one operation and concurrency run back to back for the three
systems, so load from elsewhere on the machine hits them alike. For every
phase, CPU milliseconds per operation are summed over every server process of
that system (utime+stime from /proc/PID/stat): tristore's from ``dev status
--json``, etcd's and the echo server's from their Popen. After the load, and a
pause for it to settle, the idle CPU of each system over 10 s (% of one core).

Output: a table on stdout, ``OUT/compare.json`` and ``OUT/compare.png``
(``--out``, default bench/results/). compare.json is an object:

    {"meta":  {"started", "quick", "machine": {"cpus", "uptime_before",
               "uptime_after"}, "etcd_version", "value_bytes", "notes": [...]},
     "rows":  [{"system", "op", "mode", "conc", "ops", "errors", "seconds",
                "per_s", "p50_ms", "p99_ms", "p999_ms", "cpu_ms_per_op",
                "cpu_ms_per_op_by_role", "ok", "error"}],
     "ratios": [{"op", "conc", "tristore_vs_etcd", "tristore_vs_echo",
                 "p50_tristore_vs_etcd", "p99_tristore_vs_etcd",
                 "cpu_tristore_vs_etcd"}],
     "idle_cpu_pct": {"seconds", "etcd", "tristore", "echo", "tristore_by_role"}}

``ratios`` compare throughput (per_s) unless named otherwise; tristore_vs_echo
uses the echo row at the same concurrency. The command exits 1 if any phase
failed (an error, a wrong answer, or no operation done) or a system did not
start. Absolute numbers swing between machines; only ratios from one run count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import uvloop

from bench import systems
from bench.compare_plot import plot
from bench.run import percentile
from bench.systems import Session, System

RESULTS = Path(__file__).resolve().parent / "results"
VALUE_BYTES = 1024
HOT_KEYS = 16
HOT_CONC = 64
SETTLE_S = 0.5
CLK_TCK = os.sysconf("SC_CLK_TCK")

Op = Callable[[Session, int], Awaitable[None]]


@dataclass(frozen=True)
class Settings:
    concs: tuple[int, ...]
    ops: int
    ops_c1: int
    keys: int
    phase_limit_s: float
    idle_s: float
    settle_s: float

    @classmethod
    def full(cls) -> Settings:
        return cls((1, 4, 16, 64, 256), 5000, 1000, 1000, 15.0, 10.0, 5.0)

    @classmethod
    def quick(cls) -> Settings:
        return cls((1, 16), 150, 50, 100, 5.0, 2.0, 1.0)


@dataclass
class Row:
    system: str
    op: str
    mode: str
    conc: int
    ops: int = 0
    errors: int = 0
    seconds: float = 0.0
    per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    p999_ms: float = 0.0
    cpu_ms_per_op: float = 0.0
    cpu_ms_per_op_by_role: dict[str, float] = field(default_factory=dict)
    ok: bool = False
    error: str = ""


# -- CPU -----------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime+stime of a process, all its threads, in seconds (0 if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # Fields after the command name, which may itself hold spaces and ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_by_role(pids: dict[int, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for pid, role in pids.items():
        out[role] = out.get(role, 0.0) + cpu_seconds(pid)
    return out


def _gone(pids: dict[int, str]) -> list[int]:
    return [pid for pid in pids if not Path(f"/proc/{pid}").exists()]


# -- one phase -----------------------------------------------------------------


async def run_phase(
    system: System, op_name: str, mode: str, conc: int, ops: int, limit_s: float, op: Op
) -> Row:
    """``ops`` operations by ``conc`` workers, each with its own session; stops
    early at ``limit_s``. A worker stops at its first failure."""
    row = Row(system.name, op_name, mode, conc)
    sessions = [system.session(w) for w in range(conc)]
    latencies: list[float] = []
    counter = iter(range(ops))
    failures: list[BaseException] = []
    pids = system.pids()
    try:
        async with asyncio.timeout(systems.READY_TIMEOUT_S):
            await asyncio.gather(*(s.warm() for s in sessions))
        deadline = time.perf_counter() + limit_s

        async def worker(s: Session) -> None:
            for i in counter:
                if time.perf_counter() > deadline:
                    return
                started = time.perf_counter()
                try:
                    await op(s, i)
                except Exception as e:  # noqa: BLE001 - recorded as the phase's failure
                    failures.append(e)
                    return
                latencies.append(time.perf_counter() - started)

        cpu_before = cpu_by_role(pids)
        started = time.perf_counter()
        # Bounded twice: workers stop at the deadline, and one call at its own.
        async with asyncio.timeout(limit_s + 2 * systems.CALL_TIMEOUT_S):
            await asyncio.gather(*(worker(s) for s in sessions))
        row.seconds = round(time.perf_counter() - started, 3)
        cpu_after = cpu_by_role(pids)
    except Exception as e:  # noqa: BLE001 - a phase that cannot run is a failed phase
        failures.append(e)
    finally:
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
    row.ops, row.errors = len(latencies), len(failures)
    gone = _gone(pids)
    if failures:
        row.error = f"{type(failures[0]).__name__}: {failures[0]}"[:300]
    elif gone:
        row.error = f"server processes exited: {gone}"
    elif not latencies:
        row.error = "no operation completed"
    else:
        row.ok = True
    if row.seconds and latencies:
        latencies.sort()
        row.per_s = round(len(latencies) / row.seconds, 1)
        row.p50_ms = round(percentile(latencies, 0.50) * 1000, 3)
        row.p99_ms = round(percentile(latencies, 0.99) * 1000, 3)
        row.p999_ms = round(percentile(latencies, 0.999) * 1000, 3)
        by_role = {r: 1000 * (cpu_after[r] - cpu_before.get(r, 0.0)) / row.ops for r in cpu_after}
        row.cpu_ms_per_op_by_role = {r: round(v, 4) for r, v in sorted(by_role.items())}
        row.cpu_ms_per_op = round(sum(by_role.values()), 4)
    return row


def _key(i: int, keys: int) -> str:
    return f"bench/k{i % keys:06d}"


async def load_keys(system: System, keys: int, value: bytes, conc: int = 16) -> None:
    """Write every key the GET phases read (not measured)."""
    sessions = [system.session(w) for w in range(conc)]
    counter = iter(range(keys))

    async def worker(s: Session) -> None:
        for i in counter:
            await s.put(_key(i, keys), value)

    try:
        async with asyncio.timeout(120):
            await asyncio.gather(*(worker(s) for s in sessions))
    finally:
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)


# -- the whole run -------------------------------------------------------------


async def measure_idle(syss: list[System], seconds: float) -> dict[str, Any]:
    pids = {s.name: s.pids() for s in syss}
    before = {n: cpu_by_role(p) for n, p in pids.items()}
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    wall = time.perf_counter() - started
    after = {n: cpu_by_role(p) for n, p in pids.items()}

    def pct(n: str, role: str) -> float:
        return round(100 * (after[n][role] - before[n].get(role, 0.0)) / wall, 2)

    out: dict[str, Any] = {"seconds": round(wall, 2)}
    for n in pids:
        out[n] = round(sum(pct(n, r) for r in after[n]), 2)
    if "tristore" in after:
        out["tristore_by_role"] = {r: pct("tristore", r) for r in sorted(after["tristore"])}
    return out


async def run_all(
    etcd: System, tri: System, echo: System, cfg: Settings, log: Callable[[str], None]
) -> tuple[list[Row], dict[str, Any]]:
    value = os.urandom(VALUE_BYTES)
    for s in (etcd, tri, echo):
        await s.ready()
    for s in (etcd, tri):
        try:
            await load_keys(s, cfg.keys, value)
        except Exception as e:
            raise RuntimeError(f"loading {cfg.keys} keys into {s.name}: {e!r}") from e
    log(f"ready; {cfg.keys} keys loaded into etcd and tristore")

    async def put(s: Session, i: int) -> None:
        await s.put(_key(i, cfg.keys), value)

    async def get(s: Session, i: int) -> None:
        await s.get(_key(i, cfg.keys), VALUE_BYTES)

    async def get_hot(s: Session, i: int) -> None:
        await s.get_hot(_key(i, HOT_KEYS), VALUE_BYTES)

    rows: list[Row] = []

    async def phase(system: System, name: str, mode: str, conc: int, op: Op) -> None:
        n = cfg.ops_c1 if conc == 1 else cfg.ops
        row = await run_phase(system, name, mode, conc, n, cfg.phase_limit_s, op)
        rows.append(row)
        status = "ok" if row.ok else f"FAILED {row.error}"
        log(
            f"{name:>7} c{conc:<3} {system.name:>8}: {row.ops:6d} ops {row.per_s:9.1f}/s "
            f"p50 {row.p50_ms:7.2f} ms p99 {row.p99_ms:7.2f} ms "
            f"cpu {row.cpu_ms_per_op:.3f} ms/op  {status}"
        )
        await asyncio.sleep(SETTLE_S)

    for conc in cfg.concs:
        await phase(etcd, "put", "linearizable", conc, put)
        await phase(tri, "put", "linearizable", conc, put)
        await phase(echo, "echo", "echo", conc, put)
    for conc in cfg.concs:
        await phase(etcd, "get", "linearizable", conc, get)
        await phase(tri, "get", "linearizable", conc, get)
    await phase(etcd, "get_hot", etcd.hot_mode, HOT_CONC, get_hot)
    await phase(tri, "get_hot", tri.hot_mode, HOT_CONC, get_hot)
    if HOT_CONC not in cfg.concs:
        await phase(echo, "echo", "echo", HOT_CONC, put)

    log(f"settling {cfg.settle_s:.0f} s, then idle CPU over {cfg.idle_s:.0f} s")
    await asyncio.sleep(cfg.settle_s)
    idle = await measure_idle([etcd, tri, echo], cfg.idle_s)
    return rows, idle


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if a and b else None


def ratios(rows: list[Row]) -> list[dict[str, Any]]:
    by = {(r.system, r.op, r.conc): r for r in rows if r.ok}
    out = []
    for r in rows:
        if r.system != "tristore":
            continue
        e, x = by.get(("etcd", r.op, r.conc)), by.get(("echo", "echo", r.conc))
        t = by.get(("tristore", r.op, r.conc))
        out.append(
            {
                "op": r.op,
                "conc": r.conc,
                "tristore_vs_etcd": _ratio(t.per_s, e.per_s) if t and e else None,
                "tristore_vs_echo": _ratio(t.per_s, x.per_s) if t and x else None,
                "p50_tristore_vs_etcd": _ratio(t.p50_ms, e.p50_ms) if t and e else None,
                "p99_tristore_vs_etcd": _ratio(t.p99_ms, e.p99_ms) if t and e else None,
                "cpu_tristore_vs_etcd": (
                    _ratio(t.cpu_ms_per_op, e.cpu_ms_per_op) if t and e else None
                ),
            }
        )
    return out


def table(rows: list[Row], rats: list[dict[str, Any]], idle: dict[str, Any]) -> str:
    by = {(r.system, r.op, r.conc): r for r in rows}
    head = [
        "op", "conc", "etcd/s", "tri/s", "echo/s", "tri/etcd", "tri/echo",
        "p50 e|t|x ms", "p99 e|t|x ms", "cpu ms/op e|t|x",
    ]  # fmt: skip
    body = []
    for rat in rats:
        op, conc = rat["op"], rat["conc"]
        trio = [by.get(("etcd", op, conc)), by.get(("tristore", op, conc))]
        trio.append(by.get(("echo", "echo", conc)))

        def col(attr: str, fmt: str, trio: list[Row | None] = trio) -> str:
            return "|".join(
                "-" if r is None else ("FAIL" if not r.ok else format(getattr(r, attr), fmt))
                for r in trio
            )

        body.append(
            [
                op,
                str(conc),
                *(col("per_s", ".0f").split("|")),
                "-" if rat["tristore_vs_etcd"] is None else f"{rat['tristore_vs_etcd']:.2f}",
                "-" if rat["tristore_vs_echo"] is None else f"{rat['tristore_vs_echo']:.2f}",
                col("p50_ms", ".2f"),
                col("p99_ms", ".1f"),
                col("cpu_ms_per_op", ".3f"),
            ]
        )
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    lines.append("(e|t|x: etcd | tristore | echo at the same concurrency)")
    roles = ", ".join(f"{r} {v:.1f}%" for r, v in idle.get("tristore_by_role", {}).items())
    lines.append(
        f"idle CPU over {idle.get('seconds', 0):.0f} s (% of one core): "
        f"etcd {idle.get('etcd', 0):.1f}%, tristore {idle.get('tristore', 0):.1f}% "
        f"({roles}), echo {idle.get('echo', 0):.1f}%"
    )
    lines.append(
        "get_hot: etcd serializable Range vs tristore linearizable GET of hot keys "
        "(metadata cache); tristore has no non-linearizable read mode."
    )
    return "\n".join(lines)


def _uptime() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    return ""


def _etcd_version() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["etcd", "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.splitlines()[0] if out.stdout else ""
    return ""


def _on_sigterm(signum: int, frame: Any) -> None:
    # Turn SIGTERM into SystemExit so that every `finally` stops its processes.
    raise SystemExit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny counts, c1 and c16, idle 2 s")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for the results")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (logs, data)"
    )
    args = parser.parse_args()
    cfg = Settings.quick() if args.quick else Settings.full()
    if shutil.which("etcd") is None:
        sys.exit("bench.compare: `etcd` is not on PATH (Debian: apt-get install etcd-server)")
    signal.signal(signal.SIGTERM, _on_sigterm)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    meta: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": args.quick,
        "machine": {"cpus": os.cpu_count(), "uptime_before": _uptime()},
        "etcd_version": _etcd_version(),
        "value_bytes": VALUE_BYTES,
        "settings": asdict(cfg),
        "notes": [
            "tristore has no non-linearizable read mode; its get_hot row is a "
            "linearizable GET of 16 hot keys, served from the coordinator's metadata cache",
            "etcd get_hot is Range(serializable=True): member-local and possibly stale",
            "echo rows: 1 KiB in and out to a grpc.aio server that does nothing else",
            "cpu_ms_per_op: utime+stime of every server process of that system per op",
        ],
    }
    tmp = Path(tempfile.mkdtemp(prefix="tristore-compare-"))
    log(f"working in {tmp}; {'quick' if args.quick else 'full'} run")
    rows: list[Row] = []
    idle: dict[str, Any] = {}
    failed_start = ""
    try:
        with contextlib.ExitStack() as stack:
            pb, pb_grpc = systems.load_etcd_stubs(tmp)
            (tmp / "etcd").mkdir()
            etcd = stack.enter_context(systems.etcd_cluster(tmp / "etcd", pb, pb_grpc))
            echo = stack.enter_context(systems.echo_server(tmp))
            log("starting tristore (dev up)")
            tri = stack.enter_context(systems.tristore_cluster(tmp / "tristore"))
            rows, idle = uvloop.run(run_all(etcd, tri, echo, cfg, log))
    except (RuntimeError, OSError, TimeoutError) as e:
        failed_start = f"{type(e).__name__}: {e}"
        log(f"FAILED: {failed_start}")
        for f in sorted(tmp.rglob("*.log")):
            log(f"--- {f.name}\n{systems._tail(f)}")
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    meta["machine"]["uptime_after"] = _uptime()
    rats = ratios(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "meta": meta | ({"failed": failed_start} if failed_start else {}),
        "rows": [asdict(r) for r in rows],
        "ratios": rats,
        "idle_cpu_pct": idle,
    }
    (args.out / "compare.json").write_text(json.dumps(result, indent=2) + "\n")
    if rows:
        print()
        print(table(rows, rats, idle))
        plot(result, args.out / "compare.png")
    print(f"\nwritten to {args.out / 'compare.json'} and {args.out / 'compare.png'}")
    failed = [f"{r.system} {r.op} c{r.conc}" for r in rows if not r.ok]
    if failed_start or failed or not rows:
        sys.exit(f"bench.compare: failed: {failed_start or ', '.join(failed) or 'no phase ran'}")


if __name__ == "__main__":
    main()
