"""Replication under load: lag at half the cluster's own maximum PUT rate,
and backfill throughput.

    python -m bench.replication                  # starts two local clusters
    python -m bench.replication --max-ops 3000 --lag-seconds 10 --backfill 10000

Starts ``tristore dev up --clusters 2`` in a temporary directory and, in turn:

1. **max PUT rate**: ``--max-ops`` PUTs at ``--conc`` on east, into a bucket
   no rule replicates (the cluster's own ceiling);
2. **lag**: PUTs at half that rate (open loop: each PUT starts at its
   scheduled time) for ``--lag-seconds`` into a bucket with a rule
   east/bench-src -> west/bench-dst; waits (bounded) until the replicators
   report every version applied, and reads p50/p99 from their latency
   histograms (write on east to commit on west), interpolated within buckets
   the way Prometheus's ``histogram_quantile`` does; then the same at each
   fraction of the max rate ``--sweep`` names (0.1 and 0.25 by default: where
   the lag stands when the machine is not saturated), each into keys of its
   own, with how busy the whole machine was (``/proc/stat``) while it ran;
3. **backfill**: ``--backfill`` objects written before their rule, then
   ``tristore replication backfill`` timed (versions queued a second), then
   ``tristore replication verify`` until it is clean (bounded).

Beside each phase's figures, CPU milliseconds a version summed over every
server process of both clusters, by cluster and role (utime+stime from
/proc, as ``bench.compare`` counts them): for the lag phase, from its first
PUT until every version is applied and its status is back; for the backfill,
while the command runs (the replication it queues goes on after). For the
lag phase also, by cluster, what a version cost its nodes in messages to
other nodes and to witnesses, and in group commits (:data:`MESSAGES`).

Results go to bench/results/replication.json and a table is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import uvloop

from bench import tlsenv
from bench.compare import cpu_by_role
from tristore import config
from tristore.client import AsyncClient, Client
from tristore.replication import Destination, Rule

RESULTS = Path(__file__).resolve().parent / "results"
METRIC = "tristore_replication_latency_seconds"
#: Longest wait for the replicators to catch up, and for verify to be clean.
CATCH_UP_S = 300.0


def _scrape(addr: str) -> str:
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def histogram(addrs: list[str]) -> list[tuple[float, float]]:
    """Cumulative (upper bound, count) of the latency histogram, summed over processes."""
    counts: dict[float, float] = {}
    for addr in addrs:
        for line in _scrape(addr).splitlines():
            if line.startswith(f"{METRIC}_bucket"):
                le = line.split('le="', 1)[1].split('"', 1)[0]
                bound = float("inf") if le == "+Inf" else float(le)
                counts[bound] = counts.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    return sorted(counts.items())


def quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Prometheus-style: linear within the bucket the rank falls in."""
    if not buckets or buckets[-1][1] == 0:
        return 0.0
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower


def rpc_counts(addrs: list[str]) -> dict[str, float]:
    """``tristore_rpc_handled_total`` by method, summed over processes."""
    out: dict[str, float] = {}
    for addr in addrs:
        for line in _scrape(addr).splitlines():
            if line.startswith("tristore_rpc_handled_total{"):
                method = line.split('method="', 1)[1].split('"', 1)[0]
                out[method] = out.get(method, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


#: What a version costs inside a cluster, from its nodes' metrics: messages
#: a node sent to other nodes and to witnesses (each carries every operation
#: one event-loop turn had for that peer), and group commits (one fsync each).
MESSAGES = {
    "to_nodes": 'tristore_node_peer_batch_size_count{peer="node"}',
    "to_witnesses": 'tristore_node_peer_batch_size_count{peer="witness"}',
    "fsyncs": "tristore_node_fsync_seconds_count",
}


def message_counts(addrs: list[str]) -> dict[str, float]:
    """The :data:`MESSAGES` counters, summed over the nodes at ``addrs``."""
    out = dict.fromkeys(MESSAGES, 0.0)
    for addr in addrs:
        for line in _scrape(addr).splitlines():
            for name, series in MESSAGES.items():
                if line.startswith(series + " "):
                    out[name] += float(line.rsplit(" ", 1)[1])
    return out


async def _load(
    endpoints: list[str],
    bucket: str,
    ops: int,
    conc: int,
    size: int,
    rate: float = 0.0,
    prefix: str = "k",
) -> float:
    """``ops`` PUTs; with a ``rate``, each starts at its scheduled time (open loop)."""
    body = os.urandom(size)
    ticket = itertools.count()
    started = time.perf_counter()

    async def worker(w: int) -> None:
        async with AsyncClient(endpoints[w % len(endpoints)]) as c:
            while (i := next(ticket)) < ops:
                if rate:
                    delay = started + i / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                await c.put_object(bucket, f"{prefix}{i:08d}", body)

    await asyncio.gather(*(worker(w) for w in range(conc)))
    return time.perf_counter() - started


def _pids(d: Path) -> dict[int, str]:
    """Every server process of both clusters: pid -> "cluster/role"."""
    st = subprocess.run(
        [sys.executable, "-m", "tristore", "dev", "status", "--dir", str(d), "--json"],
        capture_output=True,
        check=True,
    )
    return {int(p["pid"]): f"{p['cluster']}/{p['role']}" for p in json.loads(st.stdout) if p["pid"]}


def _cpu_ms_per(pids: dict[int, str], before: dict[str, float], count: float) -> dict[str, float]:
    """CPU ms per item by cluster and role since ``before`` (cpu_by_role)."""
    now = cpu_by_role(pids)
    out = {r: round((now[r] - before.get(r, 0.0)) * 1000 / count, 2) for r in sorted(now)}
    out["total"] = round(sum(out.values()), 2)
    return out


def _cli(d: Path, cluster: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    cfg = d / cluster / "cluster.toml"
    eps = ",".join(n.grpc for n in config.load(cfg).nodes)
    return subprocess.run(
        [sys.executable, "-m", "tristore", *args, "--endpoint", eps],
        capture_output=True,
        check=False,
    )


def _buckets(e: Client, w: Client, src: str, dst: str) -> None:
    for c, bucket in ((e, src), (w, dst)):
        c.create_bucket(bucket)
        c.put_bucket_versioning(bucket, "Enabled")


def _wait_replicated(addrs: list[str], count: float) -> list[tuple[float, float]]:
    deadline = time.monotonic() + CATCH_UP_S
    while time.monotonic() < deadline:
        buckets = histogram(addrs)
        if buckets and buckets[-1][1] >= count:
            return buckets
        time.sleep(0.5)
    return histogram(addrs)


def _backfill(
    d: Path, east_eps: list[str], west: config.ClusterConfig, n: int, size: int
) -> dict[str, object]:
    with Client(east_eps) as e, Client([x.grpc for x in west.nodes]) as w:
        _buckets(e, w, "bench-bf", "bench-bf-dst")
    uvloop.run(_load(east_eps, "bench-bf", n, 32, size))
    with Client(east_eps) as e:
        e.put_bucket_replication("bench-bf", [Rule("bf", (Destination("west", "bench-bf-dst"),))])
    pids = _pids(d)
    cpu_before = cpu_by_role(pids)
    started = time.perf_counter()
    proc = _cli(d, "east", "replication", "backfill", "s3://bench-bf", "--no-progress", "--json")
    took = time.perf_counter() - started
    cpu = _cpu_ms_per(pids, cpu_before, n)
    out = json.loads(proc.stdout) if proc.stdout else {}
    queued = int(out.get("queued", 0))
    west_ep = ",".join(x.grpc for x in west.nodes)
    deadline = time.monotonic() + CATCH_UP_S
    verify = None
    while time.monotonic() < deadline:
        verify = _cli(
            d, "east", "replication", "verify", "s3://bench-bf", "--to-endpoint",
            f"west={west_ep}", "--json",
        )  # fmt: skip
        if verify.returncode == 0:
            break
        time.sleep(2)
    clean_after = time.perf_counter() - started
    summary = json.loads(verify.stdout) if verify is not None and verify.stdout else {}
    return {
        "backfill_objects": n,
        "backfill_queued": queued,
        "backfill_s": round(took, 2),
        "backfill_per_s": round(queued / took, 1) if took else 0.0,
        "backfill_errors": int(out.get("errors", 0)),
        "backfill_cpu_ms_per_version": cpu,
        "verify_clean": verify is not None and verify.returncode == 0,
        "verify_differences": summary.get("total"),
        "verify_clean_after_s": round(clean_after, 1),
    }


def _busy() -> tuple[float, float]:
    """(busy, all) CPU time of the machine so far, from /proc/stat's first line."""
    ticks = [float(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return sum(ticks) - idle, sum(ticks)


#: The lag phase's figures as the result's top level names them (the
#: headline phase, at half the max rate; the sweep's keep their own names).
_HEADLINE = {
    "put_per_s": "lag_put_per_s",
    "ops": "lag_ops",
    "p50_ms": "lag_p50_ms",
    "p99_ms": "lag_p99_ms",
    "machine_busy_pct": "lag_machine_busy_pct",
}


class _Lag:
    """Lag phases on the two clusters of ``d``: open-loop PUTs into
    bench-src at a rate, then the wait until every version is applied."""

    def __init__(
        self,
        d: Path,
        east: config.ClusterConfig,
        west: config.ClusterConfig,
        args: argparse.Namespace,
    ) -> None:
        self.args = args
        self.endpoints = [n.grpc for n in east.nodes]
        self.replicators = [r.metrics for r in east.replicators]
        self.procs = [n.metrics for n in (*east.nodes, *west.nodes)] + self.replicators
        self.nodes = {
            "east": [n.metrics for n in east.nodes],
            "west": [n.metrics for n in west.nodes],
        }
        self.pids = _pids(d)

    def phase(self, rate: float, prefix: str) -> dict[str, object]:
        """One phase at ``rate`` PUT/s for ``--lag-seconds``; its keys start with ``prefix``."""
        args = self.args
        ops = max(1, int(rate * args.lag_seconds))
        rpcs_before = rpc_counts(self.procs)
        messages_before = {c: message_counts(a) for c, a in self.nodes.items()}
        lag_before = dict(histogram(self.replicators))
        done_before = max(lag_before.values(), default=0.0)
        cpu_before = cpu_by_role(self.pids)
        busy_before = _busy()
        seconds = uvloop.run(
            _load(self.endpoints, "bench-src", ops, args.conc, args.size, rate=rate, prefix=prefix)
        )
        buckets = [
            (le, n - lag_before.get(le, 0.0))
            for le, n in _wait_replicated(self.replicators, done_before + ops)
        ]
        time.sleep(2.0)  # the last statuses recorded
        busy = [b - a for a, b in zip(busy_before, _busy(), strict=True)]
        rpcs = {
            m: round((n - rpcs_before.get(m, 0.0)) / ops, 2)
            for m, n in rpc_counts(self.procs).items()
            if n - rpcs_before.get(m, 0.0) >= ops / 10 or "Replica" in m
        }
        messages = {
            c: {
                k: round((n - messages_before[c][k]) / ops, 2) for k, n in message_counts(a).items()
            }
            for c, a in self.nodes.items()
        }
        return {
            "offered_per_s": round(rate, 1),
            "put_per_s": round(ops / seconds, 1),
            "ops": ops,
            "replicated": int(buckets[-1][1]) if buckets else 0,
            "p50_ms": round(quantile(buckets, 0.5) * 1000, 1),
            "p99_ms": round(quantile(buckets, 0.99) * 1000, 1),
            "machine_busy_pct": round(100 * busy[0] / busy[1], 1) if busy[1] else 0.0,
            "rpcs_per_version": dict(sorted(rpcs.items())),
            "messages_per_version": messages,
            "cpu_ms_per_version": _cpu_ms_per(self.pids, cpu_before, ops),
        }


def run(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="tristore-bench-") as tmp:
        d = Path(tmp) / "dev"
        up = [sys.executable, "-m", "tristore", "dev", "up", "--dir", str(d), "--clusters", "2"]
        up += tlsenv.setup()
        subprocess.run(
            [*up, "--base-port", str(args.base_port)], check=True, stdout=subprocess.DEVNULL
        )
        try:
            east = config.load(d / "east" / "cluster.toml")
            west = config.load(d / "west" / "cluster.toml")
            east_eps = [n.grpc for n in east.nodes]
            with Client(east_eps) as e, Client([n.grpc for n in west.nodes]) as w:
                _buckets(e, w, "bench-max", "bench-unused")
                _buckets(e, w, "bench-src", "bench-dst")
                e.put_bucket_replication(
                    "bench-src", [Rule("bench", (Destination("west", "bench-dst"),))]
                )
            seconds = uvloop.run(_load(east_eps, "bench-max", args.max_ops, args.conc, args.size))
            max_rate = args.max_ops / seconds
            rate = args.rate or max_rate / 2
            lag = _Lag(d, east, west, args)
            headline = lag.phase(rate, "k")
            phases = [{"fraction": round(rate / max_rate, 3), **headline}]
            phases += [
                {"fraction": f, **lag.phase(max_rate * f, f"s{i}-")}
                for i, f in enumerate(args.sweep)
            ]
            result: dict[str, object] = {
                "size": args.size,
                "conc": args.conc,
                "max_put_per_s": round(max_rate, 1),
                **{_HEADLINE.get(k, k): v for k, v in headline.items()},
                "lag_phases": phases,
            }
            if args.backfill:
                result |= _backfill(d, east_eps, west, args.backfill, args.size)
            return result
        finally:
            subprocess.run(
                [sys.executable, "-m", "tristore", "dev", "down", "--dir", str(d)],
                stdout=subprocess.DEVNULL,
                check=False,
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-ops", type=int, default=3000, help="PUTs of the max-rate phase")
    parser.add_argument("--conc", type=int, default=64)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--lag-seconds", type=float, default=10.0)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="PUT/s of the lag phase (default: half the max)"
    )
    parser.add_argument(
        "--sweep",
        type=lambda v: [float(f) for f in v.split(",") if f],
        default=[0.1, 0.25],
        help="fractions of the max rate for more lag phases, comma-separated ('': none)",
    )
    parser.add_argument("--backfill", type=int, default=10_000, help="objects backfilled (0: none)")
    parser.add_argument("--base-port", type=int, default=27600)
    args = parser.parse_args()
    result = run(args)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "replication.json").write_text(json.dumps(result, indent=2) + "\n")
    for k, v in result.items():
        if k != "lag_phases":
            print(f"{k:>22}  {v}")
    print(sweep_table(result["lag_phases"]))  # type: ignore[arg-type]


def sweep_table(phases: list[dict[str, Any]]) -> str:
    """Lag against load: every lag phase, by the fraction of the max rate offered."""
    lines = ["of max  offered/s  reached/s  p50 ms  p99 ms  machine busy %  CPU ms/version"]
    for p in sorted(phases, key=lambda p: float(p["fraction"])):
        lines.append(
            f"{p['fraction']:6.2f}  {p['offered_per_s']:9.1f}  {p['put_per_s']:9.1f}  "
            f"{p['p50_ms']:6.1f}  {p['p99_ms']:6.1f}  {p['machine_busy_pct']:14.1f}  "
            f"{p['cpu_ms_per_version']['total']:14.2f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
