"""``tristore dev``: a whole cluster on loopback, one background process per node.

Everything the launcher knows lives in the dev directory ``D`` (default
``$TRISTORE_DEV_DIR`` or ``./.tristore``), so any later ``dev`` command (from any
shell) can find the processes again::

    D/cluster.toml      the cluster map the processes run with (tristore.config)
    D/launcher.json     the launcher's state: options and the process list
    D/run/NAME.pid      pid of a running process (removed once it stopped)
    D/logs/NAME.log     stdout and stderr of NAME, appended across restarts
    D/data/NAME/        NAME's RocksDB (kept by ``dev down``)
    D/tls/ca.crt, ca.key  the cluster CA (``--ca-dir`` names another one; key 0600)
    D/tls/NAME.crt, NAME.key  NAME's certificate, naming its role and cluster,
                        and its key (0600); issued once, renewed by replacing them
    D/prometheus-targets.json   every process's metrics address, as Prometheus
                        file_sd targets (deploy/prometheus/dev.yml reads it)

With ``--clusters 2`` the directory holds two clusters, ``east`` and ``west``,
each laid out as above in its own subdirectory (``D/east/cluster.toml``,
``D/east/run``, ``D/east/logs``, ``D/east/data``; the same under ``D/west``),
with one ``D/launcher.json`` for both. Their processes are named
``CLUSTER/NAME`` (``east/a1``, ``west/r2``) wherever the launcher takes or
shows a name; inside each cluster map they keep their plain names.

Processes run detached (their own session), so they outlive the command that
started them; ``up`` and ``start`` return once every process answers
``GET /healthz`` with 200.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import string
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tristore import credentials, sigv4, tls
from tristore.cli import launch, processes
from tristore.cli.serve import find_role
from tristore.cli.util import CliError, format_table, print_doc, print_json
from tristore.config import (
    AuthSection,
    ClusterConfig,
    ClusterSection,
    NodeSection,
    NodeSpec,
    RemoteSpec,
    ReplicatorSpec,
    TlsSection,
    WitnessSpec,
    dump,
    load,
)
from tristore.config import load as load_config
from tristore.errors import InvalidArgument
from tristore.kms import LocalKeyFile

HOST = processes.LOOPBACK
DEFAULT_DIR = ".tristore"
DEFAULT_BASE_PORT = 7100
#: Process i (1-based) serves gRPC on base+i and metrics on base+100+i.
METRICS_OFFSET = 100
#: Cluster k (0-based) of a two-cluster dir uses the port plan above shifted by
#: k*200: east gRPC base+1.., metrics base+101..; west gRPC base+201.., metrics base+301..
CLUSTER_PORT_STRIDE = 2 * METRICS_OFFSET
#: Each process's internal (mutual TLS) listener: its gRPC port + this.
INTERNAL_OFFSET = TlsSection.internal_port_offset
#: Each node's and witness's pipe port: its gRPC port + this (the internal
#: port of the metrics port, which has none: inside the cluster's block).
PIPE_OFFSET = TlsSection.pipe_port_offset
#: Each node's door port (tristore/door.py): its gRPC port + this.
DOOR_OFFSET = TlsSection.door_port_offset
#: Each node's S3 HTTP endpoint: its gRPC port + this (inside the gap below the
#: internal ports, so a cluster's ports stay in one block).
S3_OFFSET = 500
MAX_PROCESSES = 100
DEFAULT_WITNESSES = 3
WITNESS_GROUP_SIZE = 3
#: Replicators a cluster gets by default when it has witnesses.
DEFAULT_REPLICATORS = 2
#: Name and id of the cluster of a one-cluster dir: the config's defaults.
ONE_CLUSTER = (ClusterSection.name, ClusterSection.id)
#: Names and ids of the clusters of a two-cluster dir, in port order.
TWO_CLUSTERS = (("east", 1), ("west", 2))
#: A CA directory (ca.crt, ca.key) ``dev up`` issues from instead of ``D/tls``.
CA_DIR_ENV = "TRISTORE_DEV_CA_DIR"
HEALTH_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
#: After one process failed to start, how long the others get to show their state.
FAILURE_GRACE_S = 2.0
STATE_VERSION = 1
LOG_TAIL_LINES = 20
#: How often ``dev`` looks whether its launcher has started every process.
LAUNCH_POLL_S = 0.02
#: How long ``dev up`` waits for the nodes to see each other once all are healthy.
CONNECT_TIMEOUT_S = 10.0
#: Signals after which a process is expected to keep running: do not wait for it.
_NO_WAIT = {
    signal.SIGSTOP,
    signal.SIGTSTP,
    signal.SIGCONT,
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
}


def split_name(name: str) -> tuple[str | None, str]:
    """``west/a1`` -> (``west``, ``a1``); ``a1`` (a one-cluster dir) -> (None, ``a1``)."""
    cluster, _, local = name.rpartition("/")
    return (cluster or None), local


@dataclass(frozen=True)
class Proc:
    #: Unique in the dev dir: ``a1``, or ``west/a1`` in a two-cluster dir.
    name: str
    role: str
    cluster: str
    #: The node's AZ, ``group-G`` for a witness, None for a replicator.
    az: str | None
    grpc: str
    metrics: str

    @property
    def local_name(self) -> str:
        """The name in its cluster map (``tristore serve --name``)."""
        return split_name(self.name)[1]


@dataclass(frozen=True)
class Layout:
    """Options ``dev up`` was given, and the processes they produce."""

    clusters: int = 1
    azs: int = 3
    nodes_per_az: int = 2
    witnesses: int = 0
    base_port: int = DEFAULT_BASE_PORT
    processes: tuple[Proc, ...] = field(default=())
    #: Per cluster, like ``witnesses``.
    replicators: int = 0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["version"] = STATE_VERSION
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Layout:
        if raw.get("version") != STATE_VERSION:
            raise InvalidArgument(f"launcher state version {raw.get('version')!r} is not supported")
        procs = tuple(Proc(**p) for p in raw["processes"])
        opts = {k: raw[k] for k in ("clusters", "azs", "nodes_per_az", "witnesses", "base_port")}
        # A dir made before replicators existed keeps running without them.
        return cls(processes=procs, replicators=raw.get("replicators", 0), **opts)

    @property
    def cluster_names(self) -> list[str]:
        """The clusters' names, in port order."""
        return list(dict.fromkeys(p.cluster for p in self.processes))

    def proc(self, name: str, where: Path) -> Proc:
        for p in self.processes:
            if p.name == name:
                return p
        names = ", ".join(p.name for p in self.processes)
        same = [p.name for p in self.processes if p.local_name == name]
        if same:
            raise CliError(
                "NoSuchProcess",
                f"{name!r} is in each cluster of {where}; say which: {', '.join(same)}",
            )
        raise CliError(
            "NoSuchProcess", f"no process named {name!r} in {where}; valid names: {names}"
        )


@dataclass(frozen=True)
class DevDir:
    root: Path

    @property
    def config(self) -> Path:
        """The cluster map of a one-cluster dir."""
        return self.root / "cluster.toml"

    @property
    def state(self) -> Path:
        return self.root / "launcher.json"

    @property
    def data(self) -> Path:
        """Where the processes of a one-cluster dir keep their data."""
        return self.root / "data"

    def cluster_home(self, cluster: str | None) -> Path:
        """The directory of a cluster of a two-cluster dir; the root for None."""
        return self.root if cluster is None else self.root / cluster

    def home(self, name: str) -> Path:
        """The directory of the cluster process ``name`` belongs to."""
        return self.cluster_home(split_name(name)[0])

    @property
    def prometheus_targets(self) -> Path:
        """Prometheus file_sd targets of every process of the dir (both clusters)."""
        return self.root / "prometheus-targets.json"

    def config_of(self, name: str) -> Path:
        return self.home(name) / "cluster.toml"

    def log(self, name: str) -> Path:
        return self.home(name) / "logs" / f"{split_name(name)[1]}.log"

    def pid_file(self, name: str) -> Path:
        return self.home(name) / "run" / f"{split_name(name)[1]}.pid"


def resolve_dir(arg: str | None) -> DevDir:
    raw = arg or os.environ.get("TRISTORE_DEV_DIR") or DEFAULT_DIR
    return DevDir(Path(raw).expanduser().resolve())


# --- planning -----------------------------------------------------------------


def _check_options(
    clusters: int, azs: int, nodes_per_az: int, base_port: int, witnesses: int, replicators: int
) -> None:
    if clusters not in (1, 2):
        raise InvalidArgument(f"--clusters must be 1 or 2 (got {clusters})")
    if not 3 <= azs <= 26:
        raise InvalidArgument(f"--azs must be between 3 and 26 (got {azs})")
    n = azs * nodes_per_az
    if nodes_per_az < 1 or n > MAX_PROCESSES:
        raise InvalidArgument(f"--azs x --nodes-per-az must be between 3 and {MAX_PROCESSES}")
    if witnesses < 0 or n + witnesses > MAX_PROCESSES:
        raise InvalidArgument(f"--witnesses must be between 0 and {MAX_PROCESSES - n}")
    if witnesses > 1 and witnesses % WITNESS_GROUP_SIZE:
        raise InvalidArgument(
            f"--witnesses must be 0, 1 or a multiple of {WITNESS_GROUP_SIZE} "
            f"(groups of {WITNESS_GROUP_SIZE}, majority reads and writes; got {witnesses})"
        )
    if replicators < 0 or n + witnesses + replicators > MAX_PROCESSES:
        raise InvalidArgument(
            f"--replicators must be between 0 and {MAX_PROCESSES - n - witnesses}"
        )
    last = base_port + (clusters - 1) * CLUSTER_PORT_STRIDE + INTERNAL_OFFSET
    if base_port < 1 or last + n + witnesses + replicators > 65535:
        per = n + witnesses + replicators
        raise InvalidArgument(
            f"--base-port {base_port} leaves no room for {clusters} x {per} processes"
        )


def plan_cluster(
    name: str,
    cluster_id: int,
    azs: int,
    nodes_per_az: int,
    base_port: int,
    data_dir: Path,
    witnesses: int = 0,
    replicators: int = 0,
    tls_section: TlsSection | None = None,
) -> ClusterConfig:
    """One cluster's map: nodes a1, a2, b1, ... in AZs az-a, az-b, ..., then
    witnesses w1.. and replicators r1..; process i of that order serves gRPC on
    base+i (internal: base+1000+i) and metrics on base+100+i; node i also
    serves S3 over HTTP on base+500+i."""
    ports = iter(range(base_port + 1, base_port + METRICS_OFFSET + 1))

    def addrs() -> dict[str, str]:
        port = next(ports)
        return {"grpc": f"{HOST}:{port}", "metrics": f"{HOST}:{port + METRICS_OFFSET}"}

    specs: list[NodeSpec] = []
    for a in range(azs):
        letter = string.ascii_lowercase[a]
        for j in range(1, nodes_per_az + 1):
            addr = addrs()
            s3 = f"{HOST}:{int(addr['grpc'].rpartition(':')[2]) + S3_OFFSET}"
            specs.append(
                NodeSpec(name=f"{letter}{j}", id=len(specs) + 1, az=f"az-{letter}", s3=s3, **addr)
            )
    # Witnesses come after the nodes, in groups of three (the last may be smaller).
    wspecs = [
        WitnessSpec(name=f"w{k}", group=(k - 1) // WITNESS_GROUP_SIZE, **addrs())
        for k in range(1, witnesses + 1)
    ]
    rspecs = [ReplicatorSpec(name=f"r{k}", **addrs()) for k in range(1, replicators + 1)]
    return ClusterConfig(
        cluster=ClusterSection(name=name, id=cluster_id, data_dir=str(data_dir)),
        node=NodeSection(write_coordinators=shared_host_coordinators(len(specs))),
        nodes=tuple(specs),
        witnesses=tuple(wspecs),
        replicators=tuple(rspecs),
        tls=tls_section or TlsSection(),
    )


def shared_host_coordinators(nodes: int, cpus: int | None = None) -> int:
    """``[node] write_coordinators`` for ``nodes`` nodes that share this
    host's cores: half the cores (at least one), so that small writes share
    each round's messages (node/relay.py); 0 (each node coordinates its own)
    when that would be every node anyway."""
    cores = cpus if cpus is not None else (os.cpu_count() or 1)
    count = max(1, cores // 2)
    return 0 if count >= nodes else count


def dev_tls(
    root: Path, home: Path, ca_dir: Path | None = None, insecure: bool = False
) -> TlsSection:
    """``[tls]`` of a dev cluster: the CA in ``ca_dir`` (default ``root/tls``,
    shared by both clusters of a dir), certificates in ``home/tls``."""
    return TlsSection(
        insecure=insecure,
        ca_file=str((ca_dir or root / "tls") / "ca.crt"),
        cert_file=str(home / "tls" / "{name}.crt"),
        key_file=str(home / "tls" / "{name}.key"),
    )


def _procs(cfg: ClusterConfig, prefix: str) -> tuple[Proc, ...]:
    name = cfg.cluster.name
    return (
        *(Proc(prefix + s.name, "node", name, s.az, s.grpc, s.metrics) for s in cfg.nodes),
        *(
            Proc(prefix + w.name, "witness", name, f"group-{w.group}", w.grpc, w.metrics)
            for w in cfg.witnesses
        ),
        *(
            Proc(prefix + r.name, "replicator", name, None, r.grpc, r.metrics)
            for r in cfg.replicators
        ),
    )


def plan_dir(
    d: DevDir,
    clusters: int = 1,
    azs: int = 3,
    nodes_per_az: int = 2,
    base_port: int = DEFAULT_BASE_PORT,
    witnesses: int = 0,
    replicators: int = 0,
    ca_dir: Path | None = None,
    insecure: bool = False,
) -> tuple[dict[Path, ClusterConfig], Layout]:
    """Every cluster map of a dev dir (by the path it is written to) and the
    process list. Two clusters name each other in ``[[remotes]]``. Both share
    one CA (``ca_dir``, default ``D/tls``): each trusts the other's nodes."""
    _check_options(clusters, azs, nodes_per_az, base_port, witnesses, replicators)
    named = (ONE_CLUSTER,) if clusters == 1 else TWO_CLUSTERS
    cfgs: list[ClusterConfig] = []
    procs: list[Proc] = []
    paths: list[Path] = []
    for k, (name, cluster_id) in enumerate(named):
        home = d.cluster_home(None if clusters == 1 else name)
        cfg = plan_cluster(
            name,
            cluster_id,
            azs,
            nodes_per_az,
            base_port + k * CLUSTER_PORT_STRIDE,
            home / "data",
            witnesses,
            replicators,
            dev_tls(d.root, home, ca_dir, insecure),
        )
        cfgs.append(cfg)
        paths.append(home / "cluster.toml")
        procs += _procs(cfg, "" if clusters == 1 else f"{name}/")
    cfgs = [
        replace(
            cfg,
            remotes=tuple(
                RemoteSpec(o.cluster.name, ",".join(n.grpc for n in o.nodes))
                for o in cfgs
                if o is not cfg
            ),
        )
        for cfg in cfgs
    ]
    layout = Layout(
        clusters=clusters,
        azs=azs,
        nodes_per_az=nodes_per_az,
        witnesses=witnesses,
        base_port=base_port,
        processes=tuple(procs),
        replicators=replicators,
    )
    return dict(zip(paths, cfgs, strict=True)), layout


def plan(
    azs: int,
    nodes_per_az: int,
    base_port: int,
    data_dir: Path,
    witnesses: int = 0,
    replicators: int = 0,
) -> tuple[ClusterConfig, Layout]:
    """The cluster map and process list of a one-cluster dir, data in ``data_dir``."""
    _check_options(1, azs, nodes_per_az, base_port, witnesses, replicators)
    root = data_dir.parent
    cfg = plan_cluster(
        *ONE_CLUSTER,
        azs,
        nodes_per_az,
        base_port,
        data_dir,
        witnesses,
        replicators,
        dev_tls(root, root),
    )
    layout = Layout(
        clusters=1,
        azs=azs,
        nodes_per_az=nodes_per_az,
        witnesses=witnesses,
        base_port=base_port,
        processes=_procs(cfg, ""),
        replicators=replicators,
    )
    return cfg, layout


def load_layout(d: DevDir) -> Layout:
    try:
        raw = json.loads(d.state.read_text())
    except FileNotFoundError:
        raise CliError(
            "NoDevCluster",
            f"no dev cluster in {d.root} (start one with: tristore dev up --dir {d.root})",
        ) from None
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CliError("InvalidArgument", f"{d.state} is damaged ({e}); remove {d.root}") from None
    return Layout.from_json(raw)


def prometheus_targets(layout: Layout) -> list[dict[str, Any]]:
    """One Prometheus file_sd target group a process, labelled as the compose
    deployment labels its targets (deploy/prometheus/prometheus.yml): cluster,
    role, process (its name in the cluster map) and az (none for a replicator)."""
    groups = []
    for p in layout.processes:
        labels = {"cluster": p.cluster, "role": p.role, "process": p.local_name}
        if p.az is not None:
            labels["az"] = p.az
        groups.append({"targets": [p.metrics], "labels": labels})
    return groups


def _requested(args: argparse.Namespace) -> dict[str, int]:
    """The topology options given on the command line (None means 'not given')."""
    names = ("clusters", "azs", "nodes_per_az", "witnesses", "replicators", "base_port")
    return {k: getattr(args, k) for k in names if getattr(args, k) is not None}


def default_replicators(witnesses: int) -> int:
    """Replicators a cluster gets unless ``--replicators`` says: none without
    witnesses, or while the replicator role is not built."""
    if witnesses == 0:
        return 0
    try:
        find_role("replicator")
    except (CliError, ImportError):
        return 0
    return DEFAULT_REPLICATORS


def _layout_for_up(d: DevDir, args: argparse.Namespace) -> Layout:
    """Reuse the layout recorded in D (its data is laid out for it), or plan a new one."""
    asked = _requested(args)
    if d.state.exists():
        layout = load_layout(d)
        differs = {k: v for k, v in asked.items() if getattr(layout, k) != v}
        if differs:
            have = " ".join(f"--{k.replace('_', '-')} {getattr(layout, k)}" for k in differs)
            raise CliError(
                "InvalidArgument",
                f"{d.root} already holds a dev cluster made with {have}; use another --dir, "
                f"or `tristore dev down --dir {d.root}` and remove {d.root} first",
            )
        return layout
    witnesses = asked.get("witnesses", DEFAULT_WITNESSES)
    _, layout = plan_dir(
        d,
        clusters=asked.get("clusters", 1),
        azs=asked.get("azs", 3),
        nodes_per_az=asked.get("nodes_per_az", 2),
        base_port=asked.get("base_port", DEFAULT_BASE_PORT),
        witnesses=witnesses,
        replicators=asked.get("replicators", default_replicators(witnesses)),
    )
    return layout


ROOT_SECRET_FILE = "auth/root.secret"
REPLICATION_SECRET_FILE = "auth/replication.secret"


def _remote_secret_file(remote: str) -> str:
    return f"auth/remote-{remote}.secret"


def _root_pair() -> tuple[str, str]:
    """The root key of a new dev dir: the one exported in this shell, if any
    (so that ``eval "$(tristore dev up | grep ^export)"`` in a new dir keeps
    the shell's credentials working), else a fresh one."""
    akid = os.environ.get(credentials.ACCESS_KEY_ENV, "")
    secret = os.environ.get(credentials.SECRET_KEY_ENV, "")
    if akid and secret and akid.isalnum() and 8 <= len(akid) <= 128:
        return akid, secret
    return credentials.new_access_key()


def _with_auth(cfgs: dict[Path, ClusterConfig]) -> dict[Path, ClusterConfig]:
    """Give new cluster maps their keys: one root key for the dir, a
    replication principal per cluster, and in each ``[[remotes]]`` entry the
    other cluster's replication key (secrets sealed under the master key of
    the cluster that reads them)."""
    root_akid, root_secret = _root_pair()
    repl: dict[str, tuple[str, str]] = {}
    out: dict[Path, ClusterConfig] = {}
    for path, cfg in cfgs.items():
        home = path.parent
        kms = LocalKeyFile.create(cfg.kms_key_file)
        credentials.write_sealed_file(home / ROOT_SECRET_FILE, kms, root_akid, root_secret)
        akid, secret = credentials.new_access_key()
        repl[cfg.cluster.name] = (akid, secret)
        credentials.write_sealed_file(home / REPLICATION_SECRET_FILE, kms, akid, secret)
        auth = AuthSection(
            root_access_key_id=root_akid,
            root_secret_file=ROOT_SECRET_FILE,
            replication_access_key_id=akid if cfg.remotes else "",
            replication_secret_file=REPLICATION_SECRET_FILE if cfg.remotes else "",
        )
        out[path] = replace(cfg, auth=auth)
    for path, cfg in out.items():
        kms = LocalKeyFile(cfg.kms_key_file)
        remotes = []
        for r in cfg.remotes:
            akid, secret = repl[r.name]
            credentials.write_sealed_file(
                path.parent / _remote_secret_file(r.name), kms, akid, secret
            )
            remotes.append(replace(r, access_key_id=akid, secret_file=_remote_secret_file(r.name)))
        out[path] = replace(cfg, remotes=tuple(remotes))
    return out


def _save_layout(
    d: DevDir, layout: Layout, ca_dir: Path | None = None, insecure: bool = False
) -> None:
    """Write D/launcher.json, and each cluster.toml unless it exists (it may be
    edited); create the CA and the certificates that are missing."""
    cfgs, _ = plan_dir(
        d,
        clusters=layout.clusters,
        azs=layout.azs,
        nodes_per_az=layout.nodes_per_az,
        base_port=layout.base_port,
        witnesses=layout.witnesses,
        replicators=layout.replicators,
        ca_dir=ca_dir,
        insecure=insecure,
    )
    for cfg in cfgs.values():
        # Every process of a cluster shares its master keys (tristore.kms).
        LocalKeyFile.create(cfg.kms_key_file)
    new = {path: cfg for path, cfg in cfgs.items() if not path.exists()}
    for path, cfg in _with_auth(new).items() if len(new) == len(cfgs) else new.items():
        processes.write_atomic(path, dump(cfg))
    for path in cfgs:
        try:
            written = load(path)
        except InvalidArgument:
            continue  # an edited file gone wrong: each process says so in its log
        issue_certificates(written)
    processes.write_atomic(d.state, json.dumps(layout.to_json(), indent=2) + "\n")
    processes.write_atomic(
        d.prometheus_targets, json.dumps(prometheus_targets(layout), indent=2) + "\n"
    )


def issue_certificates(
    cfg: ClusterConfig, ca_dir: Path | None = None, node_hosts: Sequence[str] = ()
) -> list[str]:
    """The CA (if missing) and a certificate for every process of ``cfg`` that
    has none yet, naming its role and cluster (``tristore://CLUSTER/ROLE/NAME``)
    and the host it serves on (with 127.0.0.1 and localhost; a node also with
    ``node_hosts``: the names clients reach the nodes by besides their own).
    The CA lives in ``[tls] ca_file``'s directory, or in ``ca_dir`` when given:
    then only its certificate is copied to ``ca_file``, so the CA key stays
    out of the processes' reach. Nothing in plaintext mode. Returns the names
    of the processes it issued a certificate to."""
    if cfg.tls.insecure:
        return []
    ca = cfg.tls_files("-").ca
    if ca_dir is None:
        ca_dir = ca.parent
    ca_crt = tls.ensure_ca(ca_dir, cfg.cluster.name)
    if not ca.exists():
        tls.write_public(ca, ca_crt.read_bytes())
    procs = [
        *(("node", n.name, n.grpc) for n in cfg.nodes),
        *(("witness", w.name, w.grpc) for w in cfg.witnesses),
        *(("replicator", r.name, r.grpc) for r in cfg.replicators),
    ]
    issued = []
    for role, name, grpc_addr in procs:
        files = cfg.tls_files(name)
        assert files.cert is not None and files.key is not None
        if files.cert.exists() and files.key.exists():
            continue
        hosts = [tls.host_of(grpc_addr), "127.0.0.1", "localhost"]
        if role == "node":
            hosts += node_hosts
        ident = tls.Identity(cfg.cluster.name, role, name)
        tls.issue(ca_dir, files.cert, files.key, hosts, ident)
        issued.append(name)
    return issued


# --- processes ----------------------------------------------------------------


def is_ours(pid: int, d: DevDir, name: str) -> bool:
    """Is ``pid`` alive and the process NAME of this dev dir (not a zombie, not a
    reused pid)? Where /proc is missing, alive is all we can check."""
    if not processes.alive(pid):
        return False
    argv = processes.argv_of(pid)
    if argv is None:
        return True
    try:
        i = argv.index("--name")
    except ValueError:
        return False
    return argv[i + 1 : i + 2] == [split_name(name)[1]] and str(d.config_of(name)) in argv


def running_pid(d: DevDir, name: str) -> int | None:
    try:
        pid = int(d.pid_file(name).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if is_ours(pid, d, name) else None


def serving(pid: int, p: Proc, timeout_s: float = 1.0) -> bool:
    """Up: /healthz answers 200, from ``pid`` itself."""
    return processes.healthy(p.metrics, timeout_s) and processes.owns_port(pid, p.metrics)


def check_ports(procs: Iterable[Proc], fix: str) -> None:
    """Fail naming the first busy port; ``fix`` says what the user can do about it."""
    for p in procs:
        internal = tls.internal_address(p.grpc, INTERNAL_OFFSET)
        pipes = tls.internal_address(p.grpc, PIPE_OFFSET)
        ports = [("gRPC", p.grpc), ("metrics", p.metrics), ("internal", internal), ("pipe", pipes)]
        if p.role == "node":
            ports.append(("door", tls.internal_address(p.grpc, DOOR_OFFSET)))
        for kind, addr in ports:
            if not processes.port_free(addr):
                port = addr.rpartition(":")[2]
                raise CliError(
                    "PortInUse", f"port {port} ({kind} of {p.name}) is already in use; {fix}"
                )


def _ports_fix(d: DevDir, fresh: bool) -> str:
    if fresh:
        return "pick another range with --base-port"
    return (
        f"stop what holds it, or use another --dir with another --base-port "
        f"({d.root} is set up for its ports)"
    )


def spawn(d: DevDir, procs: Sequence[Proc], timeout_s: float) -> dict[str, processes.Child]:
    """Start ``procs`` detached, each one's output appended to its log and its
    pid in its pid file, through one launcher (tristore/cli/launch.py: each
    role imported once, its processes forked from it). The processes started,
    by name; one missing did not start (its log says why)."""
    launches = [
        launch.Launch(p.role, d.config_of(p.name), p.local_name, d.log(p.name), d.pid_file(p.name))
        for p in procs
    ]
    for x in launches:
        x.pid_file.unlink(missing_ok=True)
    log = d.root / "logs" / "launcher.log"
    names = ", ".join(p.name for p in procs)
    launcher = processes.spawn_detached(
        launch.command(launches), log, f"--- tristore dev: launching {names} at {time.ctime()} ---"
    )
    deadline = time.monotonic() + timeout_s
    while (code := launcher.poll()) is None:
        if time.monotonic() > deadline:
            processes.send(launcher.pid, signal.SIGKILL)
            raise CliError(
                "StartFailed",
                f"the launcher of {names} did not finish within {timeout_s:g} s; its log: {log}",
            )
        time.sleep(LAUNCH_POLL_S)
    if code:
        # What it could not start says why in its own log; anything before that here.
        print(f"--- the launcher of {names} failed ({code}); last lines of {log}:", file=sys.stderr)
        print(_tail(log), file=sys.stderr)
    started = {}
    for p in procs:
        with contextlib.suppress(FileNotFoundError, ValueError):
            started[p.name] = processes.Child(int(d.pid_file(p.name).read_text().strip()))
    return started


def _tail(path: Path, n: int = LOG_TAIL_LINES) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(lines[-n:])


def _poll_health(
    started: dict[str, processes.Child], pending: dict[str, Proc], failed: dict[str, str]
) -> None:
    """One round: move exited processes to ``failed`` and healthy ones out of ``pending``."""
    for name, p in list(pending.items()):
        code = started[name].poll()
        if code is not None:
            # A process the launcher forked is not ours to reap: its status is unknown.
            failed[name] = f"exited with status {code}" if code >= 0 else "exited"
            del pending[name]
        elif serving(started[name].pid, p, 0.5):
            del pending[name]


def wait_healthy(
    d: DevDir, started: dict[str, processes.Child], procs: Sequence[Proc], timeout_s: float
) -> None:
    """Return once every process answers /healthz; else show their logs and fail.

    A process that exits fails the wait at once (after a moment for the others
    to show whether they share its fate), rather than after the whole timeout.
    """
    pending = {p.name: p for p in procs if p.name in started}
    failed = {p.name: "did not start" for p in procs if p.name not in started}
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        _poll_health(started, pending, failed)
        if failed:
            deadline = min(deadline, time.monotonic() + FAILURE_GRACE_S)
        if pending:
            time.sleep(0.1)
    why = (
        "not healthy yet when another process failed"
        if failed
        else (f"no 200 from /healthz within {timeout_s:g} s")
    )
    failed.update({name: why for name in pending})
    if not failed:
        return
    for name, reason in sorted(failed.items()):
        print(f"--- {name}: {reason}; last lines of {d.log(name)}:", file=sys.stderr)
        print(_tail(d.log(name)), file=sys.stderr)
    raise CliError(
        "StartFailed",
        f"{', '.join(sorted(failed))} did not come up (logs above); "
        f"`tristore dev status --dir {d.root}` shows the rest, `tristore dev down --dir {d.root}` "
        "stops it",
    )


def _wait_gone(d: DevDir, names: Iterable[str], pids: dict[str, int], timeout_s: float) -> set[str]:
    """Wait until the processes exit, every thread of them (their ports are
    free then); return the names still running."""
    left = set(names)
    deadline = time.monotonic() + timeout_s
    while left:
        left = {n for n in left if is_ours(pids[n], d, n) or processes.exiting(pids[n])}
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return left


def stop(d: DevDir, names: Sequence[str], sig: signal.Signals, timeout_s: float) -> set[str]:
    """Signal the running processes among ``names`` and wait for them to exit.
    Returns the names still running after ``timeout_s``."""
    pids = {n: pid for n in names if (pid := running_pid(d, n)) is not None}
    for pid in pids.values():
        processes.send(pid, sig)
    if sig in _NO_WAIT:
        return set(pids)
    left = _wait_gone(d, pids, pids, timeout_s)
    for n in set(pids) - left:
        d.pid_file(n).unlink(missing_ok=True)
    return left


def status_rows(d: DevDir, layout: Layout) -> list[dict[str, Any]]:
    def one(p: Proc) -> dict[str, Any]:
        pid = running_pid(d, p.name)
        up = pid is not None and serving(pid, p)
        return {
            "name": p.name,
            "role": p.role,
            "cluster": p.cluster,
            "az": p.az,
            "pid": pid,
            "grpc": p.grpc,
            "metrics": p.metrics,
            "up": up,
        }

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(one, layout.processes))


def _table(rows: Sequence[dict[str, Any]]) -> str:
    cols = ["name", "role", "cluster", "az", "pid", "grpc", "metrics", "up"]
    body = [[r[c] if c != "up" else ("up" if r["up"] else "DOWN") for c in cols] for r in rows]
    body = [[("-" if v is None else v) for v in row] for row in body]
    return format_table([c.upper() for c in cols], body)


def _dir_flag(d: DevDir) -> str:
    default = resolve_dir(None)
    return "" if d == default else f" --dir {d.root}"


def _endpoints(layout: Layout, cluster: str) -> str:
    return ",".join(p.grpc for p in layout.processes if p.role == "node" and p.cluster == cluster)


def _security_export(d: DevDir, layout: Layout) -> str:
    """The export line that lets the CLI and SDK reach the cluster: the CA to
    trust, or the insecure switch for a plaintext cluster."""
    first = next(p for p in layout.processes if p.role == "node")
    path = d.config_of(first.name)
    section = load(path).tls if path.exists() else dev_tls(d.root, d.home(first.name))
    if section.insecure:
        return "export TRISTORE_INSECURE=1"
    ca = Path(section.ca_file)
    return f"export TRISTORE_CA_BUNDLE={ca if ca.is_absolute() else path.parent / ca}"


def _print_ready(d: DevDir, layout: Layout) -> None:
    print(_table(status_rows(d, layout)))
    flag = _dir_flag(d)
    if layout.clusters > 1:
        _print_ready_clusters(d, layout, flag)
        return
    print(f"\nexport TRISTORE_ENDPOINT={_endpoints(layout, layout.cluster_names[0])}")
    print(_security_export(d, layout))
    _print_credentials(d)
    _print_s3(d)
    print()
    print("next steps:")
    print("  tristore mb s3://demo")
    print("  echo hello | tristore cp - s3://demo/hello.txt && tristore ls s3://demo")
    print("  tristore admin status")
    print(f"  tristore dev kill a1{flag} --signal KILL   # then: tristore dev start a1{flag}")
    print(f"  tristore dev down{flag}                    # logs: {d.root / 'logs'}")


def _print_ready_clusters(d: DevDir, layout: Layout, flag: str) -> None:
    """The ready message of a two-cluster dir: one export line per cluster."""
    names = layout.cluster_names
    print()
    for name in names:
        print(f"export TRISTORE_ENDPOINT={_endpoints(layout, name)}   # cluster {name}")
    print(_security_export(d, layout) + "   # both clusters")
    _print_credentials(d, names[0])
    _print_s3(d, names[0])
    first, other = names[0], names[-1]
    logs = ", ".join(str(d.cluster_home(n) / "logs") for n in names)
    print(f"\nnext steps (with the {first} line exported; for {other}, export its line instead):")
    print("  tristore mb s3://demo")
    print("  tristore admin status")
    print(
        f"  tristore dev kill {other}/a1{flag} --signal KILL   "
        f"# then: tristore dev start {other}/a1{flag}"
    )
    print(f"  tristore dev down{flag}   # logs: {logs}")


def _print_credentials(d: DevDir, cluster: str | None = None) -> None:
    """The export lines of the dir's root credentials (every cluster of a dir
    shares them)."""
    try:
        cfg = load_config(d.cluster_home(cluster) / "cluster.toml")
        creds = credentials.root_credentials(cfg)
    except InvalidArgument as e:
        print(f"warning: the root credentials cannot be read: {e}", file=sys.stderr)
        return
    if creds is None:
        return
    print(f"export {credentials.ACCESS_KEY_ENV}={creds.access_key_id}")
    print(f"export {credentials.SECRET_KEY_ENV}={creds.secret_access_key}")


def s3_exports(cfg: ClusterConfig, creds: credentials.Credentials | None) -> list[str]:
    """The export lines that point boto3 and the aws CLI at a cluster's S3
    endpoint (its first node's): endpoint, keys, region and, with TLS, the CA."""
    node = next((n for n in cfg.nodes if n.s3), None)
    if node is None:
        return []
    scheme = "http" if cfg.tls.insecure else "https"
    lines = [f"export AWS_ENDPOINT_URL={scheme}://{node.s3}"]
    if creds is not None:
        lines.append(f"export AWS_ACCESS_KEY_ID={creds.access_key_id}")
        lines.append(f"export AWS_SECRET_ACCESS_KEY={creds.secret_access_key}")
    lines.append(f"export AWS_DEFAULT_REGION={sigv4.DEFAULT_REGION}")
    if not cfg.tls.insecure:
        lines.append(f"export AWS_CA_BUNDLE={cfg.relative(cfg.tls.ca_file)}")
    return lines


def _print_s3(d: DevDir, cluster: str | None = None) -> None:
    try:
        cfg = load_config(d.cluster_home(cluster) / "cluster.toml")
        creds = credentials.root_credentials(cfg)
    except InvalidArgument:
        return  # _print_credentials said why
    for line in s3_exports(cfg, creds):
        print(line + (f"   # cluster {cluster}" if cluster else ""))


def wait_connected(procs: Sequence[Proc], timeout_s: float) -> None:
    """Wait (bounded) until every node sees every other node of its cluster as up.

    A node that probed a peer before the peer was listening takes it for down
    until its next probe, and writes meanwhile go to hints; a cluster handed to
    a user (or a test) right after ``dev up`` should not start that way. On
    timeout it only warns: the cluster works, it is just not settled yet.
    """
    nodes = [p for p in procs if p.role == "node"]
    size = {c: sum(1 for p in nodes if p.cluster == c) for c in {p.cluster for p in nodes}}
    deadline = time.monotonic() + timeout_s
    unsettled = [p.name for p in nodes]
    while unsettled and time.monotonic() < deadline:
        sees = {p: processes.metric_sum(p.metrics, "tristore_cluster_nodes_up") for p in nodes}
        unsettled = [p.name for p, n in sees.items() if n is None or n < size[p.cluster]]
        if unsettled:
            time.sleep(0.1)
    if unsettled:
        print(
            f"warning: {', '.join(unsettled)} do not see every peer yet; writes go to hints "
            "until they do",
            file=sys.stderr,
        )


# --- commands -----------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    d = resolve_dir(args.dir)
    fresh = not d.state.exists()
    layout = _layout_for_up(d, args)
    to_start = [p for p in layout.processes if running_pid(d, p.name) is None]
    if not to_start:
        if not args.json:
            print(f"the dev cluster in {d.root} is already running")
    else:
        check_ports(to_start, _ports_fix(d, fresh))
        ca_dir = args.ca_dir or os.environ.get(CA_DIR_ENV) or None
        _save_layout(d, layout, Path(ca_dir).resolve() if ca_dir else None, args.insecure)
        started = spawn(d, to_start, args.timeout)
        wait_healthy(d, started, to_start, args.timeout)
        wait_connected(layout.processes, CONNECT_TIMEOUT_S)
    if args.json:
        print_doc("dev up", _up_json(d, layout, [p.name for p in to_start]))
    else:
        _print_ready(d, layout)
    return 0


def _pairs(lines: Iterable[str]) -> dict[str, str]:
    """``{NAME: VALUE}`` of ``export NAME=VALUE`` lines."""
    pairs = (line.removeprefix("export ").partition("=") for line in lines)
    return {name: value for name, _, value in pairs}


def cluster_env(d: DevDir, layout: Layout, cluster: str) -> dict[str, str]:
    """The variables ``dev up`` prints ``export`` lines for, of one cluster:
    what the CLI, the SDK, boto3 and the aws CLI need to reach it."""
    env = {"TRISTORE_ENDPOINT": _endpoints(layout, cluster)}
    env |= _pairs([_security_export(d, layout)])
    try:
        cfg = load_config(d.cluster_home(cluster if layout.clusters > 1 else None) / "cluster.toml")
        creds = credentials.root_credentials(cfg)
    except InvalidArgument as e:
        print(f"warning: the root credentials cannot be read: {e}", file=sys.stderr)
        return env
    if creds is not None:
        env[credentials.ACCESS_KEY_ENV] = creds.access_key_id
        env[credentials.SECRET_KEY_ENV] = creds.secret_access_key
    return env | _pairs(s3_exports(cfg, creds))


def _up_json(d: DevDir, layout: Layout, started: Sequence[str]) -> dict[str, Any]:
    """``dev up --json``: the dir, what was started, every process, and each
    cluster's environment (the ``export`` lines as an object)."""
    return {
        "dir": str(d.root),
        "started": list(started),
        "processes": status_rows(d, layout),
        "clusters": [
            {"name": name, "env": cluster_env(d, layout, name)} for name in layout.cluster_names
        ],
    }


def cmd_status(args: argparse.Namespace) -> int:
    d = resolve_dir(args.dir)
    rows = status_rows(d, load_layout(d))
    if args.json:
        print_json(rows)
    else:
        print(_table(rows))
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    d = resolve_dir(args.dir)
    p = load_layout(d).proc(args.name, d.root)
    pid = running_pid(d, p.name)
    doc = {"name": p.name, "pid": pid, "signal": args.signal.name, "exited": False}
    if pid is None:
        print(f"{p.name} is not running", file=sys.stderr)
        if args.json:
            print_doc("dev kill", doc)
        return 0
    left = stop(d, [p.name], args.signal, STOP_TIMEOUT_S)
    if left and args.signal not in _NO_WAIT:
        raise CliError(
            "Timeout",
            f"{p.name} (pid {pid}) still runs {STOP_TIMEOUT_S:.0f} s after "
            f"{args.signal.name}; try --signal KILL",
        )
    if args.json:
        print_doc("dev kill", doc | {"exited": not left})
    else:
        print(f"sent {args.signal.name} to {p.name} (pid {pid})" + ("" if left else "; it exited"))
    return 0


def _start_one(d: DevDir, p: Proc, timeout_s: float, quiet: bool = False) -> int:
    """Start ``p`` and wait until it is healthy; its pid."""
    check_ports([p], _ports_fix(d, fresh=False))
    started = spawn(d, [p], timeout_s)
    wait_healthy(d, started, [p], timeout_s)
    pid = started[p.name].pid
    if not quiet:
        print(f"started {p.name} (pid {pid}), healthy on http://{p.metrics}/healthz")
    return pid


def cmd_start(args: argparse.Namespace) -> int:
    d = resolve_dir(args.dir)
    p = load_layout(d).proc(args.name, d.root)
    pid = running_pid(d, p.name)
    started = pid is None
    if pid is not None:
        if not args.json:
            print(f"{p.name} is already running (pid {pid})")
    else:
        pid = _start_one(d, p, args.timeout, quiet=args.json)
    if args.json:
        print_doc("dev start", {"name": p.name, "pid": pid, "started": started})
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    d = resolve_dir(args.dir)
    p = load_layout(d).proc(args.name, d.root)
    if args.signal in _NO_WAIT:
        raise InvalidArgument(
            f"restart needs a signal that ends the process, not {args.signal.name}"
        )
    pid = running_pid(d, p.name)
    if stop(d, [p.name], args.signal, STOP_TIMEOUT_S):
        print(f"{p.name} still runs after {args.signal.name}; sending SIGKILL", file=sys.stderr)
        stop(d, [p.name], signal.SIGKILL, STOP_TIMEOUT_S)
    if running_pid(d, p.name) is not None:
        raise CliError("Timeout", f"{p.name} is still running; not started again")
    if pid is not None and not args.json:
        print(f"stopped {p.name} (pid {pid}) with {args.signal.name}")
    new_pid = _start_one(d, p, args.timeout, quiet=args.json)
    if args.json:
        doc = {"name": p.name, "stopped_pid": pid, "signal": args.signal.name, "pid": new_pid}
        print_doc("dev restart", doc)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    d = resolve_dir(args.dir)
    if not d.state.exists():
        print(f"no dev cluster in {d.root}; nothing to stop", file=sys.stderr)
        if args.json:
            print_doc("dev down", {"dir": str(d.root), "stopped": [], "data": []})
        return 0
    layout = load_layout(d)
    names = [p.name for p in layout.processes]
    running = [n for n in names if running_pid(d, n) is not None]
    # Replicators first: one that outlives the nodes only retries against them.
    first = {p.name for p in layout.processes if p.role == "replicator"}
    left = stop(d, [n for n in running if n in first], signal.SIGTERM, STOP_TIMEOUT_S)
    left |= stop(d, [n for n in running if n not in first], signal.SIGTERM, STOP_TIMEOUT_S)
    if left:
        print(f"killing {', '.join(sorted(left))} (still running after SIGTERM)", file=sys.stderr)
        left = stop(d, sorted(left), signal.SIGKILL, STOP_TIMEOUT_S)
    for n in names:
        if n not in left:
            d.pid_file(n).unlink(missing_ok=True)
    if left:
        raise CliError("Timeout", f"{', '.join(sorted(left))} did not exit even after SIGKILL")
    data = [str(h / "data") for h in dict.fromkeys(d.home(n) for n in names)]
    if args.json:
        print_doc("dev down", {"dir": str(d.root), "stopped": running, "data": data})
    else:
        print(f"stopped {len(running)} processes; data kept in {', '.join(data)}")
    return 0


# --- parsers ------------------------------------------------------------------


def parse_signal(text: str) -> signal.Signals:
    t = text.strip().upper()
    try:
        return (
            signal.Signals(int(t))
            if t.isdigit()
            else signal.Signals[t if t.startswith("SIG") else "SIG" + t]
        )
    except (KeyError, ValueError):
        raise argparse.ArgumentTypeError(
            f"unknown signal {text!r} (use a name like TERM, KILL, STOP, CONT, or a number)"
        ) from None


def _int_in(lo: int, hi: int) -> Any:
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{v} is not between {lo} and {hi}")
        return v

    return parse


def _dir_parent() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--dir", metavar="D", help=f"dev directory (default: $TRISTORE_DEV_DIR or ./{DEFAULT_DIR})"
    )
    return p


def _timeout_parent() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--timeout",
        type=float,
        default=HEALTH_TIMEOUT_S,
        metavar="S",
        help=f"seconds to wait for /healthz (default {HEALTH_TIMEOUT_S:.0f})",
    )
    return p


#: ``--json`` of each dev command: one document, ``{"schema": 1, "command": "dev ..."}`` and:
_JSON_HELP = {
    "up": "print one JSON object: dir, started, processes (as dev status --json), "
    "clusters (name, env: the variables of the export lines)",
    "kill": "print one JSON object: name, pid, signal, exited",
    "start": "print one JSON object: name, pid, started (false: it was running)",
    "restart": "print one JSON object: name, stopped_pid, signal, pid",
    "down": "print one JSON object: dir, stopped (names), data (directories kept)",
}


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    dev = sub.add_parser(
        "dev",
        help="run a local cluster on loopback",
        description="Start, inspect, fault and stop a whole cluster on 127.0.0.1, one "
        "background process per node; state, logs and data live in the dev directory.",
    )
    actions = dev.add_subparsers(dest="dev_command", metavar="COMMAND", required=True)
    dirp, tmo = _dir_parent(), _timeout_parent()
    _register_up(actions, [dirp, tmo])

    p = actions.add_parser(
        "status",
        parents=[dirp],
        help="every process: pid, ports, up/down",
        description="Show every process of the dev cluster; up means its pid "
        "is alive and its /healthz answers 200.",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="a JSON list of {name, role, cluster, az, pid, grpc, metrics, up} "
        "(az: null for a replicator)",
    )
    p.set_defaults(func=cmd_status)

    for name, func, what, parents in (
        (
            "kill",
            cmd_kill,
            "send a signal to one process (default TERM, waits for it to exit)",
            [dirp],
        ),
        ("start", cmd_start, "start one stopped process and wait until it is healthy", [dirp, tmo]),
        (
            "restart",
            cmd_restart,
            "stop one process (with --signal) and start it again",
            [dirp, tmo],
        ),
    ):
        p = actions.add_parser(
            name, parents=parents, help=what, description=what[0].upper() + what[1:] + "."
        )
        p.add_argument(
            "name",
            metavar="NAME",
            help="process name, e.g. a1, or west/a1 with two clusters (see dev status)",
        )
        p.add_argument("--json", action="store_true", help=_JSON_HELP[name])
        if name != "start":
            p.add_argument(
                "--signal",
                type=parse_signal,
                default=signal.SIGTERM,
                metavar="SIG",
                help="signal to send: TERM (default), KILL, STOP, CONT, ...",
            )
        p.set_defaults(func=func)

    p = actions.add_parser(
        "down",
        parents=[dirp],
        help="stop every process (data is kept)",
        description="SIGTERM every process, SIGKILL those still running "
        f"after {STOP_TIMEOUT_S:.0f} s; keeps data and logs.",
    )
    p.add_argument("--json", action="store_true", help=_JSON_HELP["down"])
    p.set_defaults(func=cmd_down)


def _register_up(actions: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = actions.add_parser(
        "up",
        parents=parents,
        help="create and start a dev cluster (idempotent)",
        description="Write D/cluster.toml, start every process in the background and wait "
        "until all are healthy. Nodes are a1,a2,b1,b2,c1,c2 (AZs az-a, az-b, az-c), "
        "then witnesses w1,w2,w3, then replicators r1,r2; process i serves gRPC on "
        "BASE+i and metrics on BASE+100+i, and node i the S3 HTTP API on BASE+500+i. "
        "With --clusters 2: clusters east (id 1, "
        "D/east, ports from BASE) and west (id 2, D/west, ports from BASE+200), each "
        "naming the other in [[remotes]], processes named east/a1, west/a1, ... "
        "Running it again starts whatever is not running.",
    )
    p.add_argument(
        "--clusters",
        type=int,
        choices=[1, 2],
        metavar="{1,2}",
        help="1 (default), or 2: clusters east and west, each a remote of the other",
    )
    p.add_argument("--azs", type=_int_in(3, 26), metavar="N", help="number of AZs (default 3)")
    p.add_argument(
        "--nodes-per-az",
        type=_int_in(1, MAX_PROCESSES // 3),
        metavar="M",
        help="storage nodes in each AZ (default 2)",
    )
    p.add_argument(
        "--witnesses",
        type=_int_in(0, 99),
        metavar="N",
        help=f"witness processes, in groups of {WITNESS_GROUP_SIZE} "
        f"(default {DEFAULT_WITNESSES}; 0 runs without the read barrier)",
    )
    p.add_argument(
        "--replicators",
        type=_int_in(0, 99),
        metavar="N",
        help=f"replicator processes per cluster (default {DEFAULT_REPLICATORS}, "
        "or 0 without witnesses)",
    )
    p.add_argument(
        "--base-port",
        type=_int_in(1, 65535 - 2 * MAX_PROCESSES),
        metavar="P",
        help=f"port base (default {DEFAULT_BASE_PORT}: gRPC 7101.., metrics 7201..; "
        f"a second cluster: +{CLUSTER_PORT_STRIDE})",
    )
    p.add_argument(
        "--ca-dir",
        metavar="DIR",
        help="issue the certificates from the CA in DIR (ca.crt and ca.key, created if "
        f"missing) instead of D/tls (default: ${CA_DIR_ENV})",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        help="plaintext, no certificates, internal services open ([tls] insecure = true); "
        "for experiments only",
    )
    p.add_argument("--json", action="store_true", help=_JSON_HELP["up"])
    p.set_defaults(func=cmd_up)
