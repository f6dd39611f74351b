"""Replication latency under the bench PUT load.

    python -m bench.replication                  # starts two local clusters
    python -m bench.replication --ops 2000 --conc 16 --size 1024

Starts ``tristore dev up --clusters 2`` in a temporary directory, puts a rule
east/bench-src -> west/bench-dst, runs a fixed number of PUTs at a fixed
concurrency on east, waits (bounded) until the replicators report every version
applied, and reads p50/p99 from the replicators' latency histograms (write on
east to commit on west), interpolated within buckets the way Prometheus's
``histogram_quantile`` does. Results go to bench/results/replication.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import uvloop

from tristore import config
from tristore.client import AsyncClient, Client
from tristore.replication import Destination, Rule

RESULTS = Path(__file__).resolve().parent / "results"
METRIC = "tristore_replication_latency_seconds"


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


async def _load(endpoints: list[str], ops: int, conc: int, size: int) -> float:
    body = os.urandom(size)

    async def worker(w: int) -> None:
        async with AsyncClient(endpoints[w % len(endpoints)]) as c:
            for i in range(w, ops, conc):
                await c.put_object("bench-src", f"k{i:08d}", body)

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(conc)))
    return time.perf_counter() - started


def run(ops: int, conc: int, size: int, base_port: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="tristore-bench-") as tmp:
        d = Path(tmp) / "dev"
        up = [sys.executable, "-m", "tristore", "dev", "up", "--dir", str(d), "--clusters", "2"]
        subprocess.run([*up, "--base-port", str(base_port)], check=True, stdout=subprocess.DEVNULL)
        try:
            east = config.load(d / "east" / "cluster.toml")
            west = config.load(d / "west" / "cluster.toml")
            east_eps = [n.grpc for n in east.nodes]
            with Client(east_eps) as e, Client([n.grpc for n in west.nodes]) as w:
                for c, bucket in ((e, "bench-src"), (w, "bench-dst")):
                    c.create_bucket(bucket)
                    c.put_bucket_versioning(bucket, "Enabled")
                e.put_bucket_replication(
                    "bench-src", [Rule("bench", (Destination("west", "bench-dst"),))]
                )
            seconds = uvloop.run(_load(east_eps, ops, conc, size))
            addrs = [r.metrics for r in east.replicators]
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                buckets = histogram(addrs)
                if buckets and buckets[-1][1] >= ops:
                    break
                time.sleep(0.5)
            buckets = histogram(addrs)
            return {
                "ops": ops,
                "conc": conc,
                "size": size,
                "put_per_s": round(ops / seconds, 1),
                "replicated": int(buckets[-1][1]) if buckets else 0,
                "lag_p50_ms": round(quantile(buckets, 0.5) * 1000, 1),
                "lag_p99_ms": round(quantile(buckets, 0.99) * 1000, 1),
            }
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
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--conc", type=int, default=16)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--base-port", type=int, default=27600)
    args = parser.parse_args()
    result = run(args.ops, args.conc, args.size, args.base_port)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "replication.json").write_text(json.dumps(result, indent=2) + "\n")
    heads = ("ops", "conc", "size", "put/s", "replicated", "p50 ms", "p99 ms")
    print(" ".join(f"{h:>10}" for h in heads))
    keys = ("ops", "conc", "size", "put_per_s", "replicated", "lag_p50_ms", "lag_p99_ms")
    print(" ".join(f"{result[k]!s:>10}" for k in keys))


if __name__ == "__main__":
    main()
