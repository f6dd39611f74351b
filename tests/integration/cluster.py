"""A local cluster for tests, started through the same launcher users run
(``tristore dev up``), on loopback ports no other test uses.

``start_cluster(tmp, "--clusters", "2")`` starts two clusters, east and west, in
one dev dir; it returns east, and ``cluster.clusters["west"]`` (or
``cluster.cluster("west")``) is west: each has its own config, endpoint and
client, and the dev commands of either act on the whole dir.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import rocksdict

from node import keys, records
from tristore import config
from tristore.cli import processes
from tristore.client import Client
from tristore.model import ObjectVersion
from tristore.placement import Placer

REPO = Path(__file__).resolve().parents[2]
PORTS_PER_CLUSTER = 200


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_low() -> int:
    """Where the kernel starts handing out ports to outgoing connections: a
    block above it could be taken by one between the check and the start."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_base_port(clusters: int = 1) -> int:
    """A base port whose whole block (grpc and metrics ports of each cluster) is
    free, below the ephemeral range."""
    span = PORTS_PER_CLUSTER * clusters
    top = max(20_000 + span + PORTS_PER_CLUSTER, min(40_000, _ephemeral_low()))
    for _ in range(50):
        base = random.randrange(20_000, top - span, PORTS_PER_CLUSTER)
        if all(_free(base + i) for i in range(1, span)):
            return base
    raise RuntimeError("no free block of loopback ports")


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("TRISTORE_ENDPOINT", None)
    return env


def run_cli(
    *args: str, input: bytes | None = None, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "tristore", *args],
        input=input,
        capture_output=True,
        timeout=timeout,
        env=env or cli_env(),
        check=False,
    )


@dataclass
class DevCluster:
    dir: Path
    base_port: int
    #: Which cluster of a two-cluster dir this is (``east``, ``west``); None in a
    #: one-cluster dir.
    name: str | None = None

    def cli(
        self,
        *args: str,
        input: bytes | None = None,
        timeout: float = 120,
        check: bool = True,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        env = cli_env()
        env["TRISTORE_ENDPOINT"] = self.endpoint
        env.update(extra_env or {})
        proc = run_cli(*args, input=input, timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"tristore {' '.join(args)} exited {proc.returncode}\n"
                f"stdout: {proc.stdout.decode(errors='replace')[-2000:]}\n"
                f"stderr: {proc.stderr.decode(errors='replace')[-2000:]}"
            )
        return proc

    def dev(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 120,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """``tristore dev ...``; processes it starts inherit ``extra_env``."""
        return self.cli(
            "dev", *args, "--dir", str(self.dir), check=check, timeout=timeout, extra_env=extra_env
        )

    @property
    def config_path(self) -> Path:
        return self.dir / (self.name or "") / "cluster.toml"

    @property
    def config(self) -> config.ClusterConfig:
        return config.load(self.config_path)

    def cluster(self, name: str) -> DevCluster:
        """Another cluster of the same two-cluster dir."""
        return DevCluster(self.dir, self.base_port, name)

    @property
    def clusters(self) -> dict[str, DevCluster]:
        """Every cluster of the dir by name (just this one in a one-cluster dir)."""
        state = json.loads((self.dir / "launcher.json").read_text())
        if state["clusters"] == 1:
            return {self.config.cluster.name: self}
        names = dict.fromkeys(str(p["cluster"]) for p in state["processes"])
        return {n: self.cluster(n) for n in names}

    def proc_name(self, name: str) -> str:
        """The launcher's name for this cluster's process ``name`` (``west/a1``)."""
        return f"{self.name}/{name}" if self.name else name

    @property
    def endpoint(self) -> str:
        return ",".join(n.grpc for n in self.config.nodes)

    def client(self, endpoint: str | None = None) -> Client:
        return Client(endpoint or self.endpoint)

    def status(self) -> list[dict[str, object]]:
        """``dev status --json``: every process of the dir (of both clusters)."""
        out = json.loads(self.dev("status", "--json").stdout)
        assert isinstance(out, list)
        return out

    def up_names(self, role: str = "node") -> set[str]:
        """Names (in this cluster's map) of this cluster's processes that are up."""
        mine = self.config.cluster.name
        return {
            str(p["name"]).rpartition("/")[2]
            for p in self.status()
            if p["up"] and p["role"] == role and p["cluster"] == mine
        }

    def kill(self, name: str, signal: str = "KILL") -> None:
        self.dev("kill", self.proc_name(name), "--signal", signal)

    def start(self, name: str, extra_env: dict[str, str] | None = None) -> None:
        self.dev("start", self.proc_name(name), extra_env=extra_env)

    def down(self) -> None:
        self.dev("down", check=False)

    def _records(self, name: str, family: bytes) -> list[ObjectVersion]:
        """Every record of one key family in a node's own RocksDB, read from disk."""
        path = self.config.data_dir_for(name)
        db = rocksdict.Rdict(
            str(path),
            rocksdict.Options(raw_mode=True),
            access_type=rocksdict.AccessType.read_only(),
        )
        try:
            out = []
            for k, v in db.items(from_key=family):
                if not k.startswith(family):
                    break
                out.append(records.decode_version(v))
            return out
        finally:
            db.close()

    def node_versions(self, name: str) -> dict[tuple[str, str], ObjectVersion]:
        """Every current record in a node's own RocksDB, read directly from disk."""
        return {(r.bucket, r.key): r for r in self._records(name, keys.OBJECT)}

    def node_versions_all(self, name: str) -> list[ObjectVersion]:
        """Every version record (current and noncurrent) in a node's own RocksDB."""
        return self._records(name, keys.VERSION)

    def homes(self, bucket: str, key: str) -> list[str]:
        placer = Placer(self.config)
        return [azr.home.name for azr in placer.place(bucket, key).azs]

    def hints_pending(self) -> int:
        """Hints held across the cluster, as `admin status` reports them."""
        with self.client() as c:
            return c.cluster_status().hints_pending

    def wait_hints_drained(self, timeout: float = 60) -> None:
        wait_until(lambda: self.hints_pending() == 0, timeout, interval=0.3, what="hints to drain")

    def metric(self, name: str, metric: str) -> float:
        """Sum of one metric's samples on one process's /metrics."""
        cfg = self.config
        addr = {p.name: p.metrics for p in (*cfg.nodes, *cfg.witnesses, *cfg.replicators)}[name]
        total = processes.metric_sum(addr, metric, timeout_s=5)
        if total is None:
            raise AssertionError(f"could not read /metrics of {name} ({addr})")
        return total


def all_versions(c: Client, bucket: str) -> set[tuple[str, str, str]]:
    """(key, version id, ETag) of every version and delete marker of a bucket."""
    out: set[tuple[str, str, str]] = set()
    key_marker, id_marker = "", ""
    for _ in range(1000):
        page = c.list_object_versions(bucket, key_marker=key_marker, version_id_marker=id_marker)
        out |= {(v.key, v.version_id, v.etag) for v in page.versions}
        if not page.is_truncated:
            break
        key_marker, id_marker = page.next_key_marker or "", page.next_version_id_marker or ""
    return out


def wait_until(pred, timeout: float, interval: float = 0.2, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def start_cluster(tmp: Path, *extra: str, extra_env: dict[str, str] | None = None) -> DevCluster:
    """``dev up`` in ``tmp/dev`` with ``extra`` flags; with ``--clusters 2``, returns east."""
    two = ("--clusters", "2") in itertools.pairwise(extra) or "--clusters=2" in extra
    base = free_base_port(2 if two else 1)
    cluster = DevCluster(tmp / "dev", base, "east" if two else None)
    env = cli_env()
    env.update(extra_env or {})
    proc = run_cli(
        "dev",
        "up",
        "--dir",
        str(cluster.dir),
        "--base-port",
        str(base),
        *extra,
        timeout=120,
        env=env,
    )
    if proc.returncode != 0:
        run_cli("dev", "down", "--dir", str(cluster.dir))
        raise AssertionError(
            f"dev up failed ({proc.returncode}):\n{proc.stdout.decode()}\n{proc.stderr.decode()}"
        )
    return cluster


def cluster_fixture(tmp: Path) -> Iterator[DevCluster]:
    cluster = start_cluster(tmp)
    try:
        yield cluster
    finally:
        cluster.down()
