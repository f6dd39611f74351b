"""Load generator: fixed numbers of PUT and GET operations at fixed concurrency.

    python -m bench.run                       # starts its own local cluster
    python -m bench.run --endpoint H:P,H:P    # against a running cluster
    python -m bench.run --ops 2000 --size 1024 --conc 1,64

Each worker has its own client (its own channels) and runs its share of the
operations back to back. Results go to bench/results/latest.json as a list of
{"op", "size", "conc", "ops", "per_s", "p50_ms", "p99_ms", "p999_ms"} and are
printed as a table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop

from bench import tlsenv
from tristore import errors, tls
from tristore.client import AsyncClient
from tristore.config import TlsSection

RESULTS = Path(__file__).resolve().parent / "results"
BUCKET = "bench"


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def run_phase(
    name: str,
    size: int,
    conc: int,
    ops: int,
    endpoints: list[str],
    op: Callable[[AsyncClient, int], Awaitable[object]],
) -> dict[str, object]:
    clients = [AsyncClient(endpoints[i % len(endpoints)]) for i in range(conc)]
    latencies: list[float] = []
    counter = iter(range(ops))

    async def worker(client: AsyncClient) -> None:
        for i in counter:
            started = time.perf_counter()
            await op(client, i)
            latencies.append(time.perf_counter() - started)

    try:
        # Warm the channels so connection set-up is not measured.
        await asyncio.gather(*(c.head_bucket(BUCKET) for c in clients))
        started = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in clients))
        elapsed = time.perf_counter() - started
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    latencies.sort()
    return {
        "op": name,
        "size": size,
        "conc": conc,
        "ops": len(latencies),
        "per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
        "p999_ms": round(percentile(latencies, 0.999) * 1000, 3),
    }


async def bench(
    endpoints: list[str], size: int, ops: int, concs: list[int]
) -> list[dict[str, object]]:
    body = os.urandom(size)
    async with AsyncClient(",".join(endpoints)) as admin:
        with contextlib.suppress(errors.BucketAlreadyExists):
            await admin.create_bucket(BUCKET)
    keys = max(64, min(ops, 1000))

    async def put(c: AsyncClient, i: int) -> object:
        return await c.put_object(BUCKET, f"k{i % keys:06d}", body)

    async def get(c: AsyncClient, i: int) -> object:
        return await c.get_object(BUCKET, f"k{i % keys:06d}")

    results = []
    for conc in concs:
        n = max(ops // 10, 200) if conc == 1 else ops
        results.append(await run_phase("put", size, conc, n, endpoints, put))
        results.append(await run_phase("get", size, conc, n, endpoints, get))
    return results


async def bench_witness(
    address: str, keys: int = 100_000, batch: int = 1000, conc: int = 4, seconds: float = 5.0
) -> dict[str, object]:
    """Key checks per second against one witness process, in batched calls."""

    from tristore.pb import witness_pb2, witness_pb2_grpc
    from tristore.stamps import Stamp

    names = [f"bench/key-{i:08d}".encode() for i in range(keys)]
    stamp = Stamp(1, 0, 1, 1).encode()
    internal = tls.internal_address(address, TlsSection.internal_port_offset)
    async with tlsenv.node_channel(internal) as channel:
        stub = witness_pb2_grpc.WitnessServiceStub(channel)
        incarnation = (await stub.Status(witness_pb2.WitnessStatusRequest())).incarnation
        for i in range(0, keys, batch):
            part = names[i : i + batch]
            await stub.Record(
                witness_pb2.RecordRequest(
                    keys=part, stamps=stamp * len(part), incarnations=[incarnation] * len(part)
                )
            )
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds

        async def worker(w: int) -> None:
            i = w * batch
            while time.perf_counter() < deadline:
                part = names[i % keys : i % keys + batch]
                started = time.perf_counter()
                await stub.Check(witness_pb2.CheckRequest(keys=part))
                latencies.append(time.perf_counter() - started)
                i += conc * batch

        started = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(conc)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "op": "witness_check",
        "size": batch,
        "conc": conc,
        "ops": len(latencies) * batch,
        "per_s": round(len(latencies) * batch / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
        "p999_ms": round(percentile(latencies, 0.999) * 1000, 3),
    }


def print_table(rows: list[dict[str, object]]) -> None:
    cols = ["op", "size", "conc", "ops", "per_s", "p50_ms", "p99_ms", "p999_ms"]
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r[c]).rjust(w) for c, w in zip(cols, widths, strict=True)))


def _tristore(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tristore", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoint", help="a running cluster; default: start a local one")
    parser.add_argument(
        "--ops", type=int, default=5000, help="operations per phase at concurrency > 1"
    )
    parser.add_argument("--size", type=int, default=1024, help="object size in bytes")
    parser.add_argument("--conc", default="1,64", help="comma-separated concurrency levels")
    parser.add_argument("--base-port", type=int, default=17100, help="for the local cluster")
    parser.add_argument(
        "--witnesses",
        type=int,
        default=3,
        help="witnesses of the local cluster (0: no read barrier, no cache)",
    )
    parser.add_argument(
        "--cache-bytes",
        type=int,
        default=None,
        help="metadata cache of the local cluster's nodes (0: every read goes to the replicas)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args()
    concs = [int(c) for c in args.conc.split(",")]

    tmp = None
    if args.endpoint:
        endpoints = args.endpoint.split(",")
    else:
        tmp = tempfile.TemporaryDirectory(prefix="tristore-bench-")
        env = None
        if args.cache_bytes is not None:
            env = {**os.environ, "TRISTORE_NODE_CACHE_BYTES": str(args.cache_bytes)}
        up = _tristore(
            "dev",
            "up",
            "--dir",
            tmp.name,
            "--base-port",
            str(args.base_port),
            "--witnesses",
            str(args.witnesses),
            *tlsenv.setup(),
            env=env,
        )
        if up.returncode != 0:
            sys.exit(f"could not start a local cluster:\n{up.stdout}{up.stderr}")
        status = json.loads(_tristore("dev", "status", "--dir", tmp.name, "--json").stdout)
        endpoints = [p["grpc"] for p in status if p["role"] == "node"]
        witnesses = [p["grpc"] for p in status if p["role"] == "witness"]
    try:
        rows = uvloop.run(bench(endpoints, args.size, args.ops, concs))
        if tmp is not None and witnesses:
            rows.append(uvloop.run(bench_witness(witnesses[0])))
    finally:
        if tmp is not None:
            _tristore("dev", "down", "--dir", tmp.name)
            tmp.cleanup()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print_table(rows)
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
