"""Large objects: MiB/s of one PUT, one GET and one multipart upload.

    python -m bench.large                     # 64 MiB and 1 GiB, starts one local cluster
    python -m bench.large --quick             # 64 MiB only
    python -m bench.large --sizes 256MiB --repeat 3
    python -m bench.large --quick --sse       # each phase also into an SSE-S3 bucket

Starts ``tristore dev up`` in a temporary directory, writes a random file of
each size, then for each size: a single PUT of the file (the SDK, one stream),
a GET of it (the SDK's streaming GET, the bytes discarded but counted), and a
multipart upload of the same file through ``tristore cp`` (the CLI's path:
``--part-size`` parts, ``--parallel`` at a time, then CompleteMultipartUpload).
Each phase reports MiB/s, the CPU seconds of all node processes, and the peak
RSS of the node processes during that phase (VmHWM, reset before each phase
through /proc/PID/clear_refs). With ``--sse`` each size is run again into a
bucket whose default encryption is SSE-S3 (rows with ``"sse": "AES256"``), so
the cost of encryption at rest shows beside the plain figures of the same run.
Objects are deleted after each size; the cluster and the files go at the end.
Results go to bench/results/large.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

from bench import tlsenv
from bench.idle import TICKS, cpu_ticks
from tristore import errors
from tristore.client import AsyncClient
from tristore.model import MultipartUpload

RESULTS = Path(__file__).resolve().parent / "results"
BUCKET = "bench-large"
MIB = 1024 * 1024


def parse_size(text: str) -> int:
    units = {"kib": 1024, "mib": MIB, "gib": 1024 * MIB}
    low = text.lower()
    for unit, factor in units.items():
        if low.endswith(unit):
            return int(float(low[: -len(unit)]) * factor)
    return int(text)


def label(size: int) -> str:
    return f"{size // (1024 * MIB)} GiB" if size % (1024 * MIB) == 0 else f"{size // MIB} MiB"


def _hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _reset_hwm(pid: int) -> None:
    # "5" resets the peak RSS the kernel keeps for the process (proc(5)).
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


class PhaseFailed(Exception):
    """A phase finished with a wrong result (reported, not raised)."""


def write_random_file(path: Path, size: int) -> str:
    """A file of ``size`` random bytes; returns its MD5."""
    md5 = hashlib.md5()
    block = os.urandom(MIB)
    with path.open("wb") as f:
        for i in range(0, size, MIB):
            # Each MiB differs (a counter in front), so no layer can dedupe.
            piece = (i.to_bytes(8, "big") + block[8:])[: min(MIB, size - i)]
            md5.update(piece)
            f.write(piece)
    return md5.hexdigest()


async def timed(
    nodes: list[dict[str, Any]], size: int, fn: Callable[[], Awaitable[None]]
) -> dict[str, Any]:
    pids = [p["pid"] for p in nodes]
    for pid in pids:
        _reset_hwm(pid)
    ticks = sum(cpu_ticks(pid) for pid in pids)
    started = time.perf_counter()
    error = None
    try:
        await fn()
    except (errors.TristoreError, PhaseFailed) as exc:
        error = str(exc)
    elapsed = time.perf_counter() - started
    cpu_s = (sum(cpu_ticks(pid) for pid in pids) - ticks) / TICKS
    return {
        "error": error,
        "seconds": round(elapsed, 3),
        "mib_s": None if error else round(size / MIB / elapsed, 1),
        "node_cpu_s": round(cpu_s, 2),
        "peak_rss_mib": round(max(_hwm_kib(pid) for pid in pids) / 1024, 1),
    }


async def bench_size(
    endpoint: str,
    nodes: list[dict[str, Any]],
    path: Path,
    size: int,
    md5: str,
    part_size: int,
    parallel: int,
    sse: str = "",
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    key = f"large-{size}"
    bucket = f"{BUCKET}-sse" if sse else BUCKET

    async with AsyncClient(endpoint) as c:
        with contextlib.suppress(errors.BucketAlreadyExists):
            await c.create_bucket(bucket)
        if sse:
            await c.put_bucket_encryption(bucket, sse)

        async def put() -> None:
            with path.open("rb") as f:
                info = await c.put_object(bucket, key, f)
            if info.etag != md5:
                raise PhaseFailed(f"PUT {key}: ETag {info.etag}, the file's MD5 is {md5}")

        async def get() -> None:
            got = 0
            async with c.get_object_stream(bucket, key) as s:
                async for piece in s:
                    got += len(piece)
            if got != size:
                raise PhaseFailed(f"GET {key}: {got} bytes, not {size}")

        rows.append({"op": "put", "size": size, "sse": sse, **await timed(nodes, size, put)})
        rows.append({"op": "get", "size": size, "sse": sse, **await timed(nodes, size, get)})

        async def multipart() -> None:
            cp = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tristore", "cp", str(path), f"s3://{bucket}/{key}-mpu",
                "--endpoint", endpoint, "--multipart-threshold", "1",
                "--part-size", str(part_size), "--parallel", str(parallel), "--no-progress",
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
            _, err = await cp.communicate()
            if cp.returncode != 0:
                raise PhaseFailed(f"tristore cp (multipart) failed: {err.decode()}")

        row = await timed(nodes, size, multipart)
        rows.append({"op": "multipart", "size": size, "sse": sse, **row})
        if row["error"] is None:
            info = await c.head_object(bucket, f"{key}-mpu")
            if info.size != size:
                raise SystemExit(f"multipart {key}: {info.size} bytes, not {size}")
        for k in (key, f"{key}-mpu"):
            await c.delete_object(bucket, k)
        async for upload in _uploads(c, bucket):
            await c.abort_multipart_upload(bucket, upload.key, upload.upload_id)
    return rows


async def _uploads(c: AsyncClient, bucket: str) -> AsyncIterator[MultipartUpload]:
    """Uploads a failed multipart phase left (their parts hold disk)."""
    page = await c.list_multipart_uploads(bucket)
    for upload in page.uploads:
        yield upload


def _dev(dev: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tristore", "dev", *args, "--dir", str(dev)],
        capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip


def run(
    sizes: list[int],
    base_port: int,
    part_size: int,
    parallel: int,
    repeat: int,
    sse: bool = False,
) -> list[dict[str, Any]]:
    root = Path(tempfile.mkdtemp(prefix="tristore-bench-large-"))
    dev = root / "dev"
    rows: list[dict[str, Any]] = []
    try:
        _dev(dev, "up", "--base-port", str(base_port), "--replicators", "0", *tlsenv.setup())
        status = json.loads(_dev(dev, "status", "--json").stdout)
        nodes = [p for p in status if p["role"] == "node"]
        endpoint = nodes[0]["grpc"]
        for size in sizes:
            path = root / f"body-{size}"
            md5 = write_random_file(path, size)
            for _ in range(repeat):
                for mode in ("", "AES256") if sse else ("",):
                    rows += uvloop.run(
                        bench_size(endpoint, nodes, path, size, md5, part_size, parallel, mode)
                    )
            path.unlink()
    finally:
        subprocess.run(
            [sys.executable, "-m", "tristore", "dev", "down", "--dir", str(dev)],
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'op':<10} {'size':>7} {'sse':>6} {'MiB/s':>8} {'seconds':>8} "
        f"{'node CPU s':>10} {'peak RSS MiB':>12}"
    )
    for r in rows:
        rate = "failed" if r["error"] else f"{r['mib_s']:.1f}"
        print(
            f"{r['op']:<10} {label(r['size']):>7} {r.get('sse') or '-':>6} {rate:>8} "
            f"{r['seconds']:>8.2f} {r['node_cpu_s']:>10.2f} {r['peak_rss_mib']:>12.1f}"
        )
    for r in rows:
        if r["error"]:
            print(f"{r['op']} {label(r['size'])}: {r['error']}")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="64 MiB only")
    p.add_argument("--sizes", help="comma-separated sizes (e.g. 64MiB,1GiB)")
    p.add_argument("--repeat", type=int, default=1, help="runs of each size")
    p.add_argument("--part-size", type=parse_size, default=8 * MIB, help="multipart part size")
    p.add_argument("--parallel", type=int, default=4, help="multipart parts in flight")
    p.add_argument("--base-port", type=int, default=26700)
    p.add_argument("--out", type=Path, default=RESULTS / "large.json")
    p.add_argument(
        "--sse", action="store_true", help="run each size into an SSE-S3 bucket too (its cost)"
    )
    args = p.parse_args()
    if args.sizes:
        sizes = [parse_size(s) for s in args.sizes.split(",")]
    else:
        sizes = [64 * MIB] if args.quick else [64 * MIB, 1024 * MIB]
    rows = run(sizes, args.base_port, args.part_size, args.parallel, args.repeat, args.sse)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print_table(rows)
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
