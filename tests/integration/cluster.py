"""A local cluster for tests, started through the same launcher users run
(``tristore dev up``), on loopback ports no other test uses.

``start_cluster(tmp, "--clusters", "2")`` starts two clusters, east and west, in
one dev dir; it returns east, and ``cluster.clusters["west"]`` (or
``cluster.cluster("west")``) is west: each has its own config, endpoint and
client, and the dev commands of either act on the whole dir.

Clusters speak TLS, as ``dev up`` makes them. Every cluster of a test run is
issued from one CA (``TRISTORE_DEV_CA_DIR``, which ``dev up`` honours), and the
test process trusts it the way a user does, through ``TRISTORE_CA_BUNDLE``: so
the SDK clients tests make, and the CLI they run, need nothing more.

Credentials are used the way a user uses them: this module exports one root
key for the test session (``TRISTORE_ACCESS_KEY_ID`` / ``TRISTORE_SECRET_ACCESS_KEY``
in the test process's environment, before any cluster starts). ``dev up``
makes the exported key the root key of every dir it creates, and prints it in
its ``export`` lines (``start_cluster`` checks that it does); clients and the
CLI read it from the environment.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import itertools
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import rocksdict
from google.protobuf import empty_pb2

from node import keys, records
from tristore import config, credentials, errors, sigv4, tls
from tristore.cli import dev, processes
from tristore.client import Client
from tristore.model import ObjectVersion
from tristore.placement import Placer

REPO = Path(__file__).resolve().parents[2]
PORTS_PER_CLUSTER = 200
#: The internal (mutual TLS) ports sit this far above the gRPC ports.
INTERNAL_OFFSET = config.TlsSection.internal_port_offset
#: A node's S3 HTTP port: its gRPC port + this (``dev up``'s plan).
S3_OFFSET = dev.S3_OFFSET
#: A node's door port (tristore/door.py): its gRPC port + this.
DOOR_OFFSET = dev.DOOR_OFFSET


def _test_ca() -> Path:
    """One CA for every cluster this test run starts; trusted by the test process."""
    ca_dir = Path(tempfile.mkdtemp(prefix="tristore-test-ca-"))
    atexit.register(shutil.rmtree, ca_dir, True)
    crt = tls.ensure_ca(ca_dir, "tristore-tests")
    os.environ["TRISTORE_DEV_CA_DIR"] = str(ca_dir)
    os.environ[tls.CA_BUNDLE_ENV] = str(crt)
    os.environ.pop(tls.INSECURE_ENV, None)
    return ca_dir


TEST_CA_DIR = _test_ca()

if not os.environ.get(credentials.ACCESS_KEY_ENV):
    _akid, _secret = credentials.new_access_key()
    os.environ[credentials.ACCESS_KEY_ENV] = _akid
    os.environ[credentials.SECRET_KEY_ENV] = _secret
ROOT = credentials.Credentials(
    os.environ[credentials.ACCESS_KEY_ENV], os.environ[credentials.SECRET_KEY_ENV]
)


class _Signing(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Signs a blocking channel's calls as the SDK does (a client stream by its
    first message), for tests that talk to a node with raw stubs."""

    def __init__(self, creds: credentials.Credentials) -> None:
        self.signer = credentials.Signer(creds)

    def _details(self, details: Any, message: Any) -> Any:
        md = [*(details.metadata or ()), *self.signer.metadata(details.method, message)]
        return _CallDetails(
            details.method, details.timeout, md, details.credentials, details.wait_for_ready
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details, request), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details, request), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        it = iter(requests)
        first = next(it, None)
        if first is None:  # an empty stream signs an empty payload
            return continuation(self._details(details, empty_pb2.Empty()), iter(()))
        payload = sigv4.payload_of(first, streamed=True)
        return continuation(self._details(details, payload), itertools.chain([first], it))

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return self.intercept_stream_unary(continuation, details, requests)


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: Any


def signed_channel(address: str, creds: credentials.Credentials | None = None) -> grpc.Channel:
    """A blocking channel to ``address`` whose calls are signed with ``creds``
    (default: the session's root key)."""
    return grpc.intercept_channel(user_channel(address), _Signing(creds or ROOT))


def exported(stdout: str) -> dict[str, str]:
    """The ``export NAME=VALUE`` lines of ``dev up``'s output (first wins)."""
    out: dict[str, str] = {}
    for line in stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line[len("export ") :].partition("=")
            out.setdefault(name.strip(), value.split("#", 1)[0].strip())
    return out


def _free(port: int) -> bool:
    """Whether a server could listen on ``port``: as the servers do, with
    SO_REUSEADDR, so that connections of an earlier cluster still in TIME_WAIT
    do not count (without it, after enough tests, no block looked free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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


#: Where the test processes of this machine (every pytest-xdist worker, every
#: run) record the port blocks they have picked: a JSON list beside a lock file.
CLAIMS_DIR = Path(tempfile.gettempdir()) / "tristore-test-ports"
#: How long a picked block is kept for its process though none of its ports is
#: bound (from the pick until ``dev up`` listens, or while a test has its whole
#: cluster down for a moment); afterwards, while a port of it is bound, or until
#: :meth:`DevCluster.down` gives it back.
CLAIM_GRACE_S = 60.0
#: Where ``dev up`` puts a cluster's ports above its base (``dev.plan_dir``),
#: as (offset, width): process i serves gRPC on +i and metrics on +100+i, a
#: node S3 on +500+i and its door on +600+i, and every process its internal
#: port on +1000+i (+1100+i, the internal port of a metrics port, is a pipe
#: port). A cluster of a two-cluster dir is all of it shifted by 200.
BLOCK_RANGES = ((0, 200), (S3_OFFSET, 100), (DOOR_OFFSET, 100), (INTERNAL_OFFSET, 200))


@dataclass(frozen=True)
class PortClaim:
    """The ports of ``clusters`` clusters with base port ``base`` that one test
    process (``pid``) picked at ``at`` (:data:`BLOCK_RANGES`)."""

    base: int
    clusters: int
    pid: int
    at: float

    def ranges(self) -> list[range]:
        return [
            range(
                self.base + k * PORTS_PER_CLUSTER + off + 1,
                self.base + k * PORTS_PER_CLUSTER + off + width,
            )
            for k in range(self.clusters)
            for off, width in BLOCK_RANGES
        ]

    def overlaps(self, other: PortClaim) -> bool:
        return any(
            a.start < b.stop and b.start < a.stop for a in self.ranges() for b in other.ranges()
        )

    def held(self, now: float) -> bool:
        """Whether the block is still in use: its process lives, and it was
        picked just now or a server still listens on one of its ports."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        if now - self.at < CLAIM_GRACE_S:
            return True
        top = self.base + self.clusters * PORTS_PER_CLUSTER
        return not all(_free(p) for p in range(self.base + 1, top))


def _parsed(raw: object) -> list[PortClaim]:
    """The claims of a claims file; entries it cannot read (another form of it) left out."""
    out = []
    for r in raw if isinstance(raw, list) else []:
        with contextlib.suppress(TypeError):
            out.append(PortClaim(**r))
    return out


@contextlib.contextmanager
def _claims() -> Iterator[list[PortClaim]]:
    """The claims still held, under an exclusive lock; what the caller leaves in
    the list is written back."""
    CLAIMS_DIR.mkdir(exist_ok=True)
    path = CLAIMS_DIR / "claims.json"
    with open(CLAIMS_DIR / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            raw = []
        now = time.time()
        claims = [c for c in _parsed(raw) if c.held(now)]
        yield claims
        tmp = path.with_suffix(f".{os.getpid()}")
        tmp.write_text(json.dumps([c.__dict__ for c in claims]))
        tmp.replace(path)


def free_base_port(clusters: int = 1, low: int = 10_000, high: int | None = None) -> int:
    """A base port for ``clusters`` clusters of ``dev up`` whose ports
    (:data:`BLOCK_RANGES`) are all free, below the ephemeral range, in ports
    [low, high).

    The pick is recorded (:data:`CLAIMS_DIR`), so no other test process on the
    machine (another pytest-xdist worker, another run) picks a block that
    overlaps it while this one's cluster starts or runs."""
    top = high or min(40_000, _ephemeral_low())
    reach = (clusters - 1) * PORTS_PER_CLUSTER + max(off + w for off, w in BLOCK_RANGES)
    bases = list(range(low, max(low + 1, top - reach), PORTS_PER_CLUSTER))
    random.shuffle(bases)  # every candidate, in a random order
    with _claims() as claims:
        for base in bases:
            mine = PortClaim(base, clusters, os.getpid(), time.time())
            if any(mine.overlaps(c) for c in claims):
                continue
            if all(_free(p) for r in mine.ranges() for p in r):
                claims.append(mine)
                return base
    raise RuntimeError(
        f"no free block of loopback ports in {low}..{top} "
        f"({len(claims)} held by running tests, in {CLAIMS_DIR})"
    )


def release_base_port(base: int) -> None:
    """Give back this process's pick of ``base`` (its cluster is down)."""
    with _claims() as claims:
        claims[:] = [c for c in claims if (c.base, c.pid) != (base, os.getpid())]


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


def load_config(path: Path) -> config.ClusterConfig:
    """``config.load(path)``, parsed once for each content of the file and
    environment (``parse`` reads TRISTORE_* overrides from it): a test asks
    for its cluster's config per call (``homes``, ``endpoint``, ``metric``),
    and a parse costs 5-15 ms of CPU, which a scan of a few thousand keys for
    their homes turned into half a minute on a loaded machine. The file is
    read every time, so a rewritten config is parsed afresh."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return config.load(path)  # and its error
    return _parsed_config(str(path.resolve()), text, tuple(sorted(os.environ.items())))


@functools.lru_cache(maxsize=256)
def _parsed_config(path: str, text: str, env: tuple[tuple[str, str], ...]) -> config.ClusterConfig:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:  # as config.load says it
        raise errors.InvalidArgument(f"config file {path} is not valid TOML: {e}") from None
    return config.parse(raw, dict(env), path=path)


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
        return load_config(self.config_path)

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

    @property
    def s3_endpoint(self) -> str:
        """The URL of the first node's S3 HTTP API (as ``dev up`` exports it)."""
        cfg = self.config
        scheme = "http" if cfg.tls.insecure else "https"
        return f"{scheme}://{cfg.nodes[0].s3}"

    def client(self, endpoint: str | None = None, **kw: Any) -> Client:
        return Client(endpoint or self.endpoint, **kw)

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
        release_base_port(self.base_port)

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

    def wait_every_node_seen_up(self, timeout: float = 30) -> None:
        """Until every node takes every node for up (a node just restarted is
        taken for down by its peers until their next probe; one whose /metrics
        does not answer yet counts as not seeing them)."""
        names = [n.name for n in self.config.nodes]

        def seen() -> bool:
            try:
                return all(self.metric(n, "tristore_cluster_nodes_up") == len(names) for n in names)
            except AssertionError:
                return False

        wait_until(seen, timeout, what="every node to see every node up")

    def wait_hints_drained(self, timeout: float = 60) -> None:
        wait_until(lambda: self.hints_pending() == 0, timeout, interval=0.3, what="hints to drain")

    @contextlib.contextmanager
    def paused(self, *names: str) -> Iterator[None]:
        """The named processes of this cluster SIGSTOPped for the block
        (SIGCONT after it): what they would do meanwhile waits, so a test can
        look at what was left for them (a version queued for a paused
        replicator stays PENDING) instead of sleeping and finding nothing."""
        stopped: list[str] = []
        try:
            for name in names:
                self.kill(name, "STOP")
                stopped.append(name)
            yield
        finally:
            for name in stopped:
                self.kill(name, "CONT")

    @property
    def replicator_names(self) -> list[str]:
        return [r.name for r in self.config.replicators]

    def replicators_idle(self) -> bool:
        """No replicator of this cluster has a version in flight."""
        return all(
            self.metric(r, "tristore_replication_pending_operations") == 0
            for r in self.replicator_names
        )

    def metric(self, name: str, metric: str) -> float:
        """Sum of one metric's samples on one process's /metrics."""
        cfg = self.config
        addr = {p.name: p.metrics for p in (*cfg.nodes, *cfg.witnesses, *cfg.replicators)}[name]
        total = processes.metric_sum(addr, metric, timeout_s=5)
        if total is None:
            raise AssertionError(f"could not read /metrics of {name} ({addr})")
        return total


#: A test's channel makes its own connections. By default gRPC shares them
#: between channels of the process with the same address and arguments, and a
#: connection to a port an earlier test's cluster used (and stopped) may still
#: be waiting out its reconnect backoff: a call on a new channel to the new
#: cluster on that port then failed at once with the old "Connection refused".
OWN_CONNECTIONS = [("grpc.use_local_subchannel_pool", 1)]


def user_channel(address: str) -> grpc.Channel:
    """A raw (sync) gRPC channel to ``address`` as a user opens it: TLS, the
    server checked against ``TRISTORE_CA_BUNDLE``, no client certificate."""
    ca = Path(os.environ[tls.CA_BUNDLE_ENV]).read_bytes()
    return grpc.secure_channel(
        address, grpc.ssl_channel_credentials(root_certificates=ca), options=OWN_CONNECTIONS
    )


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


def two_clusters(tmp: Path, extra_env: dict[str, str]) -> Iterator[tuple[DevCluster, DevCluster]]:
    """Two clusters (`dev up --clusters 2`) in ``tmp``: east and west, each
    naming the other in [[remotes]]; yields (east, west) and stops both. The
    body of a test module's two-cluster fixture: ``yield from two_clusters(...)``."""
    east = start_cluster(tmp, "--clusters", "2", extra_env=extra_env)
    try:
        yield east, east.clusters["west"]
    finally:
        east.down()


def start_cluster(
    tmp: Path,
    *extra: str,
    extra_env: dict[str, str] | None = None,
    base_port: int | None = None,
) -> DevCluster:
    """``dev up`` in ``tmp/dev`` with ``extra`` flags; with ``--clusters 2``, returns east."""
    two = ("--clusters", "2") in itertools.pairwise(extra) or "--clusters=2" in extra
    base = base_port or free_base_port(2 if two else 1)
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
    printed = exported(proc.stdout.decode())
    assert printed.get(credentials.ACCESS_KEY_ENV) == ROOT.access_key_id, printed
    assert printed.get(credentials.SECRET_KEY_ENV) == ROOT.secret_access_key
    return cluster


def cluster_fixture(tmp: Path) -> Iterator[DevCluster]:
    cluster = start_cluster(tmp)
    try:
        yield cluster
    finally:
        cluster.down()


#: What a test may run on the shared cluster: ``dev`` and ``admin`` commands
#: that only look. Anything else (kill, start, down, drain, decommission,
#: repair, a master-key rotation) changes what the next module finds.
_SHARED_DEV = {("status",)}
_SHARED_ADMIN = {("status",), ("config", "show")}


class SharedClusterMisuse(AssertionError):
    """A test asked the worker's shared cluster for something that changes it."""


@dataclass
class SharedCluster(DevCluster):
    """The plain cluster that the test modules of one pytest-xdist worker share
    (``cluster`` in tests/integration/conftest.py). It refuses the launcher and
    admin commands that would leave it different for the next module: a module
    that needs them marks itself ``private_cluster`` or takes ``own_cluster``."""

    def dev(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 120,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        if tuple(a for a in args if not a.startswith("-")) not in _SHARED_DEV:
            raise SharedClusterMisuse(
                f"`dev {' '.join(args)}` on the cluster this worker's modules share; "
                "mark the module `pytestmark = pytest.mark.private_cluster` or use own_cluster"
            )
        return super().dev(*args, check=check, timeout=timeout, extra_env=extra_env)

    def cli(
        self,
        *args: str,
        input: bytes | None = None,
        timeout: float = 120,
        check: bool = True,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        if args[:1] == ("admin",):
            words = tuple(a for a in args[1:] if not a.startswith("-"))
            if not any(words[: len(ok)] == ok for ok in _SHARED_ADMIN):
                raise SharedClusterMisuse(
                    f"`admin {' '.join(args[1:])}` on the cluster this worker's modules share; "
                    "mark the module `pytestmark = pytest.mark.private_cluster`"
                )
        return super().cli(*args, input=input, timeout=timeout, check=check, extra_env=extra_env)

    def stop(self) -> None:
        """``dev down``, for the fixture that owns it."""
        super().dev("down", check=False)
        release_base_port(self.base_port)


def start_shared_cluster(tmp: Path) -> SharedCluster:
    plain = start_cluster(tmp)
    return SharedCluster(plain.dir, plain.base_port, plain.name)


def health(cluster: DevCluster) -> dict[str, object]:
    """What a module sharing ``cluster`` must leave as it found it: every
    process up with the same pid, the map's epoch, each node's state (not
    draining), the witnesses' incarnations, the config and master-key files."""
    d = dev.resolve_dir(str(cluster.dir))
    rows = dev.status_rows(d, dev.load_layout(d))
    cfg = cluster.config
    with cluster.client() as c:
        st = c.cluster_status()
    return {
        "processes": sorted((str(r["name"]), r["pid"], r["up"]) for r in rows),
        "epoch": st.epoch,
        "nodes": sorted((n.name, n.up, n.status.state if n.status else None) for n in st.nodes),
        "witnesses": sorted((w.name, w.up, w.incarnation) for w in st.witnesses),
        "config": cluster.config_path.read_bytes(),
        "master keys": cfg.kms_key_file.read_bytes() if cfg.kms_key_file.exists() else b"",
    }


def _all_up(h: dict[str, Any]) -> bool:
    return (
        all(up for _name, _pid, up in h["processes"])
        and all(up and state == "active" for _name, up, state in h["nodes"])
        and all(up for _name, up, _inc in h["witnesses"])
    )


def settled_health(
    cluster: DevCluster, like: dict[str, object] | None = None, timeout: float = 20.0
) -> dict[str, object]:
    """``health(cluster)`` once it shows every process up (or, given ``like``,
    once it equals that), else as it is after ``timeout`` seconds: on a loaded
    machine a peer can look down to a node for a moment, which is no change."""
    deadline = time.monotonic() + timeout
    while True:
        h = health(cluster)
        if (h == like) if like is not None else _all_up(h):
            return h
        if time.monotonic() >= deadline:
            return h
        time.sleep(0.5)
