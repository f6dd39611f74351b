"""tristore against etcd and the Python gRPC ceiling, on this machine, in one run.

    make bench-compare                          # the full run (several minutes)
    make bench-compare ARGS=--quick             # tiny counts, c1 and c16: < ~60 s
    python -m bench.compare --quick --out /tmp/cmp   # what CI runs

Starts, in a temporary directory, a three-member etcd (``etcd`` on PATH, Debian's
``etcd-server`` 3.4, members on 127.0.0.1, default fsync), a tristore dev
cluster through the real launcher (``python -m tristore dev up``: TLS, signed
calls) and a grpc.aio echo server (``python -m bench.echo``), and drives all
three with the same client: asyncio on uvloop, N concurrent workers, each with
its own gRPC channel (the tristore SDK's channel options), a fixed number of
operations per phase that also stops at a time limit, 1 KiB values. Beside
them, for what TLS and signing cost, their twins: ``etcd-tls`` (three members
with TLS for clients and peers, client certificates required: certificates
from tristore.tls) and ``tristore-plain`` (``dev up --insecure`` with
``TRISTORE_AUTH_ENABLED=false``: plaintext, unsigned calls). The phases:

- ``put``: etcd ``KV.Put``, tristore ``put_object``; concurrency 1, 4, 16, 64, 256.
- ``get``: linearizable reads of keys written before the sweep: etcd ``KV.Range``
  (default, linearizable), tristore ``get_object``; same sweep.
- ``get_hot`` at c64: reads of a 16-key hot set in each system's cheapest read.
  etcd: ``serializable=True`` (member-local, may be stale). tristore has **no**
  non-linearizable read mode: its row is the same linearizable GET, which for
  hot keys is served from the coordinator's metadata cache.
- ``echo``: 1 KiB in, 1 KiB out to a server that does nothing else, over the same
  sweep: no Python gRPC server answers faster, so it is the ceiling.
- ``s3-put``, ``s3-get`` at c1 and c64 (``pair_conc``; c16 with ``--quick``):
  the same PUT and GET through a node's S3 HTTP door (node/s3/), workers
  spread over the nodes as the gRPC ones are, with bench/s3client.py: aiohttp,
  one pool of keep-alive connections sized to the concurrency, SigV4 as boto3
  signs by default over HTTPS (PUT: aws-chunked, STREAMING-UNSIGNED-PAYLOAD-
  TRAILER with a CRC32 trailer, Expect: 100-continue). On tristore-plain at
  ``pair_conc`` too (plain HTTP, unsigned).
- at ``pair_conc``, ``put`` and ``get`` on etcd-tls and tristore-plain. Before
  the GET sweep every key is read once through every node of both tristore
  clusters (not measured), so that neither meets colder metadata caches.

Phases of one operation and concurrency run back to back for the systems
(each plain twin right after its secure one, the S3 door right after the gRPC
one), so load from elsewhere on the machine hits them alike. For every
phase, CPU milliseconds per operation are summed over every server process of
that system (utime+stime from /proc/PID/stat): tristore's from ``dev status
--json``, etcd's and the echo server's from their Popen. After the load, and a
pause for it to settle, the idle CPU of each system over 10 s (% of one core).
Every row also has the load generator's own CPU a request and the mean lag of
its event loop: a client whose loop lags tens of ms limited that phase itself.

Output: a table on stdout, ``OUT/compare.json`` and ``OUT/compare.png``
(``--out``, default bench/results/). compare.json is an object:

    {"meta":  {"started", "quick", "machine": {"cpus", "uptime_before",
               "uptime_after"}, "etcd_version", "value_bytes", "notes": [...]},
     "rows":  [{"system", "op", "mode", "conc", "ops", "errors", "seconds",
                "per_s", "p50_ms", "p99_ms", "p999_ms", "cpu_ms_per_op",
                "cpu_ms_per_op_by_role", "client_cpu_ms_per_op", "client_lag_ms",
                "ok", "error"}],
     "ratios": [{"op", "conc", "tristore_vs_etcd", "tristore_vs_echo",
                 "p50_tristore_vs_etcd", "p99_tristore_vs_etcd",
                 "cpu_tristore_vs_etcd"}],
     "s3":     [{"system", "op", "conc", "s3_per_s", "grpc_per_s", "s3_vs_grpc",
                 "p50_ms_s3", "p50_ms_grpc", "p99_ms_s3", "p99_ms_grpc",
                 "cpu_ms_per_op_s3", "cpu_ms_per_op_grpc", "client_lag_ms_s3",
                 "client_lag_ms_grpc", "meets_goal"}],
     "security": [{"system", "op", "conc", "plain_per_s", "secure_per_s",
                   "secure_vs_plain", "plain_p50_ms", "secure_p50_ms",
                   "plain_cpu_ms_per_op", "secure_cpu_ms_per_op",
                   "cpu_secure_minus_plain_ms",
                   "tristore_vs_etcd_plain", "tristore_vs_etcd_secure"}],
     "idle_cpu_pct": {"seconds", "etcd", "etcd-tls", "tristore", "tristore-plain",
                      "echo", "tristore_by_role"}}

Row ``system`` is etcd, etcd-tls, tristore, tristore-plain or echo; the S3
door's rows are its cluster's (op ``s3-put`` / ``s3-get``). ``ratios`` compare
throughput (per_s) unless named otherwise; tristore_vs_echo uses the echo row
at the same concurrency. ``s3`` sets each S3 row beside the gRPC row of the
same cluster, op and concurrency (``meets_goal``: s3_vs_grpc >= 0.7, issue
15). ``security`` sets each system's secure row beside its plain twin at
``pair_conc`` (tristore secure = TLS + signing; the tristore entries of put and
get add the like-for-like tristore/etcd ratios, plain with plain and secure
with secure; ``tristore_vs_etcd_*`` only on those). The command exits 1 if any phase
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
from bench.systems import Session, System, Tristore, TristoreS3

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
    #: The concurrency of the S3 phases (beside c1) and of the plain-vs-TLS
    #: pairs (etcd-tls, tristore-plain); one of ``concs``.
    pair_conc: int

    @classmethod
    def full(cls) -> Settings:
        return cls((1, 4, 16, 64, 256), 5000, 1000, 1000, 15.0, 10.0, 5.0, 64)

    @classmethod
    def quick(cls) -> Settings:
        return cls((1, 16), 150, 50, 100, 5.0, 2.0, 1.0, 16)


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
    #: The load generator itself (this process): its CPU a request, and how
    #: late its event loop ran a timer, on average (a client that lags is
    #: what limited the phase, not the servers).
    client_cpu_ms_per_op: float = 0.0
    client_lag_ms: float = 0.0
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
    sessions = system.sessions(conc)
    latencies: list[float] = []
    counter = iter(range(ops))
    failures: list[BaseException] = []
    lags: list[float] = []
    client_cpu = 0.0
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
        client_before = _own_cpu()
        started = time.perf_counter()
        probe = asyncio.create_task(_lag_probe(lags))
        try:
            # Bounded twice: workers stop at the deadline, and one call at its own.
            async with asyncio.timeout(limit_s + 2 * systems.CALL_TIMEOUT_S):
                await asyncio.gather(*(worker(s) for s in sessions))
        finally:
            probe.cancel()
        row.seconds = round(time.perf_counter() - started, 3)
        cpu_after = cpu_by_role(pids)
        client_cpu = _own_cpu() - client_before
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
        row.client_cpu_ms_per_op = round(1000 * client_cpu / row.ops, 4)
        row.client_lag_ms = round(1000 * sum(lags) / len(lags), 2) if lags else 0.0
    return row


LAG_PROBE_S = 0.01


async def _lag_probe(lags: list[float]) -> None:
    """How late the event loop wakes a sleeper, every LAG_PROBE_S."""
    while True:
        t = time.perf_counter()
        await asyncio.sleep(LAG_PROBE_S)
        lags.append(max(0.0, time.perf_counter() - t - LAG_PROBE_S))


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def _key(i: int, keys: int) -> str:
    return f"bench/k{i % keys:06d}"


async def load_keys(system: System, keys: int, value: bytes, conc: int = 16) -> None:
    """Write every key the GET phases read (not measured)."""
    sessions = system.sessions(conc)
    counter = iter(range(keys))

    async def worker(s: Session) -> None:
        for i in counter:
            await s.put(_key(i, keys), value)

    try:
        async with asyncio.timeout(120):
            await asyncio.gather(*(worker(s) for s in sessions))
    finally:
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)


async def warm_reads(system: Tristore, keys: int, per_node: int = 4) -> None:
    """Read every key through every node once (not measured): ``per_node``
    workers a node (worker w reads on node w mod n), each a share of the keys."""
    n = len(system.endpoints)
    sessions = system.sessions(n * per_node)

    async def worker(w: int, s: Session) -> None:
        for i in range(w // n, keys, per_node):
            await s.get(_key(i, keys), VALUE_BYTES)

    try:
        async with asyncio.timeout(180):
            await asyncio.gather(*(worker(w, s) for w, s in enumerate(sessions)))
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


@dataclass(frozen=True)
class Systems:
    """Everything one run drives."""

    etcd: System
    tri: Tristore
    echo: System
    #: etcd with TLS, clients and peers (the like-for-like pair of ``tri``).
    etcd_tls: System
    #: tristore plaintext with signatures off (the pair of ``tri``).
    tri_plain: Tristore
    #: The S3 HTTP doors of ``tri`` and ``tri_plain``.
    s3: TristoreS3
    s3_plain: TristoreS3

    def all(self) -> list[System]:
        return [self.etcd, self.etcd_tls, self.tri, self.tri_plain, self.s3, self.s3_plain]


async def run_all(
    sy: Systems, cfg: Settings, log: Callable[[str], None]
) -> tuple[list[Row], dict[str, Any]]:
    value = os.urandom(VALUE_BYTES)
    for s in [*sy.all(), sy.echo]:
        await s.ready()
    for s in (sy.etcd, sy.etcd_tls, sy.tri, sy.tri_plain):
        try:
            await load_keys(s, cfg.keys, value)
        except Exception as e:
            raise RuntimeError(f"loading {cfg.keys} keys into {s.name}: {e!r}") from e
    log(f"ready; {cfg.keys} keys loaded into etcd, etcd-tls, tristore and tristore-plain")

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
            f"{name:>7} c{conc:<3} {system.name:>14}: {row.ops:6d} ops {row.per_s:9.1f}/s "
            f"p50 {row.p50_ms:7.2f} ms p99 {row.p99_ms:7.2f} ms "
            f"cpu {row.cpu_ms_per_op:.3f} ms/op client lag {row.client_lag_ms:.1f} ms  {status}"
        )
        await asyncio.sleep(SETTLE_S)

    async def sweep(name: str, op: Op) -> None:
        """The concurrency sweep of one operation, each pair back to back:
        plain beside TLS, the S3 door beside the gRPC one (PUTs: the echo
        ceiling too)."""
        for conc in cfg.concs:
            paired = conc == cfg.pair_conc
            await phase(sy.etcd, name, "linearizable", conc, op)
            if paired:
                await phase(sy.etcd_tls, name, "linearizable", conc, op)
            await phase(sy.tri, name, "linearizable", conc, op)
            if conc in (1, cfg.pair_conc):
                await phase(sy.s3, f"s3-{name}", sy.s3.target.mode, conc, op)
            if paired:
                await phase(sy.tri_plain, name, "linearizable", conc, op)
                await phase(sy.s3_plain, f"s3-{name}", sy.s3_plain.target.mode, conc, op)
            if name == "put":
                await phase(sy.echo, "echo", "echo", conc, op)

    await sweep("put", put)
    # The PUTs made new versions; the twin's GETs run only at pair_conc. So
    # that neither meets colder metadata caches, read every key through every
    # node of both clusters first.
    for t in (sy.tri, sy.tri_plain):
        try:
            await warm_reads(t, cfg.keys)
        except Exception as e:
            raise RuntimeError(f"reading {cfg.keys} keys through every {t.name} node: {e!r}") from e
    await sweep("get", get)
    await phase(sy.etcd, "get_hot", sy.etcd.hot_mode, HOT_CONC, get_hot)
    await phase(sy.tri, "get_hot", sy.tri.hot_mode, HOT_CONC, get_hot)
    if HOT_CONC not in cfg.concs:
        await phase(sy.echo, "echo", "echo", HOT_CONC, put)

    log(f"settling {cfg.settle_s:.0f} s, then idle CPU over {cfg.idle_s:.0f} s")
    await asyncio.sleep(cfg.settle_s)
    idle = await measure_idle([sy.etcd, sy.etcd_tls, sy.tri, sy.tri_plain, sy.echo], cfg.idle_s)
    return rows, idle


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if a and b else None


def ratios(rows: list[Row]) -> list[dict[str, Any]]:
    by = {(r.system, r.op, r.conc): r for r in rows if r.ok}
    out = []
    for r in rows:
        if r.system != "tristore" or r.op not in ("put", "get", "get_hot"):
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


#: Issue 15's goal: the S3 door's throughput over the gRPC door's, same run.
S3_GOAL = 0.7


def s3_ratios(rows: list[Row]) -> list[dict[str, Any]]:
    """The S3 door against the gRPC door of the same cluster, same op and
    concurrency: throughput, latency and CPU a request."""
    by = {(r.system, r.op, r.conc): r for r in rows if r.ok}
    out = []
    for r in rows:
        if not r.op.startswith("s3-"):
            continue
        op = r.op.removeprefix("s3-")
        s, g = by.get((r.system, r.op, r.conc)), by.get((r.system, op, r.conc))
        vs = _ratio(s.per_s, g.per_s) if s and g else None
        out.append(
            {
                "system": r.system,
                "op": op,
                "conc": r.conc,
                "s3_per_s": s.per_s if s else None,
                "grpc_per_s": g.per_s if g else None,
                "s3_vs_grpc": vs,
                "p50_ms_s3": s.p50_ms if s else None,
                "p50_ms_grpc": g.p50_ms if g else None,
                "p99_ms_s3": s.p99_ms if s else None,
                "p99_ms_grpc": g.p99_ms if g else None,
                "cpu_ms_per_op_s3": s.cpu_ms_per_op if s else None,
                "cpu_ms_per_op_grpc": g.cpu_ms_per_op if g else None,
                "client_lag_ms_s3": s.client_lag_ms if s else None,
                "client_lag_ms_grpc": g.client_lag_ms if g else None,
                "meets_goal": None if vs is None else vs >= S3_GOAL,
            }
        )
    return out


#: (system with TLS, its plaintext twin) for each op the pairs run.
PAIRS = (
    ("etcd-tls", "etcd", ("put", "get")),
    ("tristore", "tristore-plain", ("put", "get", "s3-put", "s3-get")),
)


def security(rows: list[Row], conc: int) -> list[dict[str, Any]]:
    """What TLS (and, for tristore, signing) costs: each system plain against
    secure at ``conc``, throughput and CPU a request, and the like-for-like
    tristore/etcd ratios (plain against plain, secure against secure)."""
    by = {(r.system, r.op, r.conc): r for r in rows if r.ok}
    out = []
    for secure_name, plain_name, ops in PAIRS:
        for op in ops:
            sec, pl = by.get((secure_name, op, conc)), by.get((plain_name, op, conc))
            if sec is None and pl is None:
                continue
            entry: dict[str, Any] = {
                "system": "etcd" if secure_name.startswith("etcd") else "tristore",
                "op": op,
                "conc": conc,
                "plain_per_s": pl.per_s if pl else None,
                "secure_per_s": sec.per_s if sec else None,
                "secure_vs_plain": _ratio(sec.per_s, pl.per_s) if sec and pl else None,
                "plain_p50_ms": pl.p50_ms if pl else None,
                "secure_p50_ms": sec.p50_ms if sec else None,
                "plain_cpu_ms_per_op": pl.cpu_ms_per_op if pl else None,
                "secure_cpu_ms_per_op": sec.cpu_ms_per_op if sec else None,
                "cpu_secure_minus_plain_ms": (
                    round(sec.cpu_ms_per_op - pl.cpu_ms_per_op, 4) if sec and pl else None
                ),
            }
            if entry["system"] == "tristore" and op in ("put", "get"):
                ep, es = by.get(("etcd", op, conc)), by.get(("etcd-tls", op, conc))
                entry["tristore_vs_etcd_plain"] = _ratio(pl.per_s, ep.per_s) if pl and ep else None
                entry["tristore_vs_etcd_secure"] = (
                    _ratio(sec.per_s, es.per_s) if sec and es else None
                )
            out.append(entry)
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
    lines = _grid(head, body)
    lines.append("(e|t|x: etcd | tristore | echo at the same concurrency)")
    roles = ", ".join(f"{r} {v:.1f}%" for r, v in idle.get("tristore_by_role", {}).items())
    lines.append(
        f"idle CPU over {idle.get('seconds', 0):.0f} s (% of one core): "
        f"etcd {idle.get('etcd', 0):.1f}%, tristore {idle.get('tristore', 0):.1f}% "
        f"({roles}), echo {idle.get('echo', 0):.1f}%; etcd-tls "
        f"{idle.get('etcd-tls', 0):.1f}%, tristore-plain {idle.get('tristore-plain', 0):.1f}%"
    )
    lines.append(
        "get_hot: etcd serializable Range vs tristore linearizable GET of hot keys "
        "(metadata cache); tristore has no non-linearizable read mode."
    )
    return "\n".join(lines)


def _grid(head: list[str], body: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return lines


def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def s3_table(s3: list[dict[str, Any]]) -> str:
    head = ["door", "op", "conc", "s3/s", "grpc/s", "s3/grpc", "p50 s3|grpc ms",
            "p99 s3|grpc ms", "cpu ms/op s3|grpc", "client lag s3|grpc ms"]  # fmt: skip
    body = [
        [
            e["system"],
            e["op"],
            str(e["conc"]),
            _f(e["s3_per_s"], ".0f"),
            _f(e["grpc_per_s"], ".0f"),
            _f(e["s3_vs_grpc"], ".2f"),
            f"{_f(e['p50_ms_s3'], '.2f')}|{_f(e['p50_ms_grpc'], '.2f')}",
            f"{_f(e['p99_ms_s3'], '.1f')}|{_f(e['p99_ms_grpc'], '.1f')}",
            f"{_f(e['cpu_ms_per_op_s3'], '.3f')}|{_f(e['cpu_ms_per_op_grpc'], '.3f')}",
            f"{_f(e['client_lag_ms_s3'], '.1f')}|{_f(e['client_lag_ms_grpc'], '.1f')}",
        ]
        for e in s3
    ]
    lines = ["S3 HTTP door vs gRPC door (same cluster, same run):", *_grid(head, body)]
    lines.append(f"(goal, issue 15: s3/grpc >= {S3_GOAL} for PUT and GET at c64)")
    return "\n".join(lines)


def security_table(sec: list[dict[str, Any]]) -> str:
    head = ["system", "op", "conc", "plain/s", "secure/s", "secure/plain", "p50 plain|sec ms",
            "cpu ms/op plain|sec", "+cpu ms/op", "tri/etcd plain|sec"]  # fmt: skip
    body = []
    for e in sec:
        like = "-"
        if "tristore_vs_etcd_plain" in e:
            like = (
                f"{_f(e['tristore_vs_etcd_plain'], '.2f')}|"
                f"{_f(e['tristore_vs_etcd_secure'], '.2f')}"
            )
        body.append(
            [
                e["system"],
                e["op"],
                str(e["conc"]),
                _f(e["plain_per_s"], ".0f"),
                _f(e["secure_per_s"], ".0f"),
                _f(e["secure_vs_plain"], ".2f"),
                f"{_f(e['plain_p50_ms'], '.2f')}|{_f(e['secure_p50_ms'], '.2f')}",
                f"{_f(e['plain_cpu_ms_per_op'], '.3f')}|{_f(e['secure_cpu_ms_per_op'], '.3f')}",
                _f(e["cpu_secure_minus_plain_ms"], "+.3f"),
                like,
            ]
        )
    lines = ["What TLS and signing cost (plain vs secure, same run):", *_grid(head, body)]
    lines.append(
        "(etcd secure: TLS for clients and peers, client certificates; tristore secure: the "
        "default dev cluster, TLS everywhere, mutual TLS inside, SigV4-signed calls; "
        "tristore plain: [tls] insecure, [auth] enabled = false, unsigned calls)"
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
    parser.add_argument(
        "--nodes-per-az",
        type=int,
        choices=(1, 2),
        default=2,
        help="storage nodes in each AZ of both tristore clusters (default 2, as dev up)",
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
        "tristore_nodes_per_az": args.nodes_per_az,
        "settings": asdict(cfg),
        "notes": [
            "tristore has no non-linearizable read mode; its get_hot row is a "
            "linearizable GET of 16 hot keys, served from the coordinator's metadata cache",
            "etcd get_hot is Range(serializable=True): member-local and possibly stale",
            "echo rows: 1 KiB in and out to a grpc.aio server that does nothing else",
            "cpu_ms_per_op: utime+stime of every server process of that system per op",
            "s3-put / s3-get rows: the S3 HTTP door of the same cluster (aiohttp client, "
            "one pool of keep-alive connections sized to the concurrency); see 's3'",
            "etcd-tls: etcd with TLS for clients and peers and client certificates required; "
            "tristore-plain: dev up --insecure with [auth] enabled = false, unsigned calls; "
            "tristore: the default dev cluster (TLS, SigV4-signed calls); see 'security'",
            f"tristore clusters: {args.nodes_per_az} storage node(s) an AZ "
            "(tristore_nodes_per_az; dev up's default is 2)",
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
            (tmp / "etcd-tls").mkdir()
            etcd_tls = stack.enter_context(
                systems.etcd_cluster(tmp / "etcd-tls", pb, pb_grpc, secure=True)
            )
            echo = stack.enter_context(systems.echo_server(tmp))
            log("starting tristore (dev up), then tristore-plain (dev up --insecure, auth off)")
            layout = {"nodes_per_az": args.nodes_per_az}
            tri = stack.enter_context(systems.tristore_cluster(tmp / "tristore", **layout))
            plain = stack.enter_context(
                systems.tristore_cluster(tmp / "plain", plain=True, **layout)
            )
            meta["security"] = {
                "tristore": tri.security,
                "tristore-plain": plain.security,
                "s3": systems.TristoreS3(tri).target.mode,
                "s3_plain": systems.TristoreS3(plain).target.mode,
            }
            sy = Systems(
                etcd, tri, echo, etcd_tls, plain, systems.TristoreS3(tri), systems.TristoreS3(plain)
            )
            rows, idle = uvloop.run(run_all(sy, cfg, log))
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
    s3 = s3_ratios(rows)
    sec = security(rows, cfg.pair_conc)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "meta": meta | ({"failed": failed_start} if failed_start else {}),
        "rows": [asdict(r) for r in rows],
        "ratios": rats,
        "s3": s3,
        "security": sec,
        "idle_cpu_pct": idle,
    }
    (args.out / "compare.json").write_text(json.dumps(result, indent=2) + "\n")
    if rows:
        print()
        print(table(rows, rats, idle))
        if s3:
            print()
            print(s3_table(s3))
        if sec:
            print()
            print(security_table(sec))
        plot(result, args.out / "compare.png")
    print(f"\nwritten to {args.out / 'compare.json'} and {args.out / 'compare.png'}")
    failed = [f"{r.system} {r.op} c{r.conc}" for r in rows if not r.ok]
    if failed_start or failed or not rows:
        sys.exit(f"bench.compare: failed: {failed_start or ', '.join(failed) or 'no phase ran'}")


if __name__ == "__main__":
    main()
