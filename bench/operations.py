"""How fast the operator's actions move data: drain, undrain, repair, rebuild.

    python -m bench.operations                   # starts one local cluster
    python -m bench.operations --objects 5000 --size 1024

Starts ``tristore dev up`` in a temporary directory, writes ``--objects``
objects, then times, each through the CLI as an operator runs it:
``admin drain a1`` (until a1 holds nothing), ``admin undrain a1`` (until every
handoff is done), ``admin repair`` over the whole cluster (nothing to fix), and
the rebuild of a node started on an empty data directory (``b1``, SIGKILLed and
wiped). Results go to bench/results/operations.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import uvloop

from bench import tlsenv
from tristore import config
from tristore.client import AsyncClient, Client

RESULTS = Path(__file__).resolve().parent / "results"
BUCKET = "bench-ops"


def _cli(root: Path, endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TRISTORE_ENDPOINT=endpoint)
    return subprocess.run(
        [sys.executable, "-m", "tristore", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
        cwd=root,
    )


def _wait(pred: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def _settled(c: Client) -> bool:
    return all(
        n.status is not None and n.status.handoffs_pending == 0 and n.status.hints_pending == 0
        for n in c.cluster_status().nodes
    )


async def _fill(endpoint: str, objects: int, size: int, conc: int) -> float:
    async with AsyncClient(endpoint) as c:
        await c.create_bucket(BUCKET)
        gate = asyncio.Semaphore(conc)
        body = os.urandom(size)

        async def put(i: int) -> None:
            async with gate:
                await c.put_object(BUCKET, f"k/{i:07d}", body)

        started = time.monotonic()
        await asyncio.gather(*(put(i) for i in range(objects)))
        return time.monotonic() - started


def run(objects: int, size: int, conc: int, base_port: int) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="tristore-bench-ops-"))
    dev = root / "dev"
    subprocess.run(
        [sys.executable, "-m", "tristore", "dev", "up", "--dir", str(dev),
         "--base-port", str(base_port), *tlsenv.setup()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    try:
        cfg = config.load(dev / "cluster.toml")
        endpoint = ",".join(n.grpc for n in cfg.nodes)
        put_s = uvloop.run(_fill(endpoint, objects, size, conc))
        out: dict[str, object] = {"objects": objects, "size": size, "put_s": round(put_s, 2)}
        with Client(endpoint) as c:
            _wait(lambda: _settled(c), 60, "the cluster to settle")
            held = next(n for n in c.cluster_status().nodes if n.name == "a1").status
            assert held is not None
            moved = held.objects

            started = time.monotonic()
            _cli(root, endpoint, "admin", "drain", "a1", "--json")
            drain_s = time.monotonic() - started
            started = time.monotonic()
            _cli(root, endpoint, "admin", "undrain", "a1", "--json")
            _wait(lambda: _settled(c), 600, "the undrain to finish")
            undrain_s = time.monotonic() - started

            started = time.monotonic()
            repair = json.loads(_cli(root, endpoint, "admin", "repair", "--json").stdout)
            repair_s = time.monotonic() - started

            subprocess.run(
                [sys.executable, "-m", "tristore", "dev", "kill", "b1", "--signal", "KILL",
                 "--dir", str(dev)],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
            shutil.rmtree(cfg.data_dir_for("b1"))
            started = time.monotonic()
            subprocess.run(
                [sys.executable, "-m", "tristore", "dev", "start", "b1", "--dir", str(dev)],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
            log = dev / "logs" / "b1.log"
            _wait(lambda: "rebuilt: " in log.read_text(), 3600, "b1 to rebuild")
            rebuild_s = time.monotonic() - started
            line = next(ln for ln in log.read_text().splitlines() if "rebuilt: " in ln)
        out.update(
            drain_keys=moved,
            drain_s=round(drain_s, 2),
            drain_keys_per_s=round(moved / drain_s, 1),
            undrain_s=round(undrain_s, 2),
            undrain_keys_per_s=round(moved / undrain_s, 1),
            repair_keys=repair["keys_checked"],
            repair_s=round(repair_s, 2),
            repair_keys_per_s=round(repair["keys_checked"] / repair_s, 1),
            rebuild_s=round(rebuild_s, 2),
            rebuild_log=line.split("rebuilt: ", 1)[1],
        )
        return out
    finally:
        subprocess.run(
            [sys.executable, "-m", "tristore", "dev", "down", "--dir", str(dev)],
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--objects", type=int, default=5000)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--conc", type=int, default=32)
    p.add_argument("--base-port", type=int, default=24100)
    args = p.parse_args()
    result = run(args.objects, args.size, args.conc, args.base_port)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "operations.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = [
        ("write", f"{result['objects']} objects", f"{result['put_s']} s"),
        ("admin drain a1", f"{result['drain_keys']} keys", f"{result['drain_s']} s"),
        ("admin undrain a1", f"{result['drain_keys']} keys", f"{result['undrain_s']} s"),
        ("admin repair", f"{result['repair_keys']} keys", f"{result['repair_s']} s"),
        ("rebuild of b1", str(result["rebuild_log"]), f"{result['rebuild_s']} s"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, what, took in rows:
        print(f"{name:<{width}}  {what:<55}  {took}")


if __name__ == "__main__":
    main()
