"""The soak's nemesis: one fault at a time, each healed before the next, in a
fixed rotation of kinds, each kind taking its targets in turn.

- ``kill``: SIGKILL an east node, start it again a few seconds later;
- ``witness``: SIGKILL a witness and start it again (it comes back knowing nothing);
- ``partition``: cut every link of one east AZ both ways (tests/netfaults.py:
  root, iptables, cgroup v2), then heal;
- ``skew``: SIGKILL an east node and start it with its clock seconds off
  (``TRISTORE_NODE_CLOCK_OFFSET_MS``); the skew stays until its next restart;
- ``replicator``: SIGKILL an east replicator and start it again;
- ``disk-full``: fill the small filesystem (tmpfs) of one east node's data
  directory until the node refuses writes, then free it;
- ``west-kill``: SIGKILL a node of the destination cluster and start it again.

Some processes are never touched (one node of each AZ, one witness, one
replicator): their resource series run the whole soak without a restart.
A kind this machine cannot do (no root for iptables or mount) is left out,
with the reason in the report.
"""

from __future__ import annotations

import errno
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.cluster import DevCluster
from tests.netfaults import NetFaults
from tests.soak.resources import FILLER, Sampler

KINDS = ("kill", "witness", "partition", "skew", "replicator", "disk-full", "west-kill")
#: What each kind may hit (names in its cluster's map).
KILLED_NODES = ("a1", "b1", "c1")
KILLED_WITNESSES = ("w1", "w2")
KILLED_REPLICATORS = ("r1",)
#: Clock offsets (ms) a skewed restart gives a node, in turn: the first
#: skewed nodes are the coordinators of the register writers (a1, b1) and of
#: the large objects (c1), and the first two skews put clocks behind, which
#: is what a write's stamp floor must make up for.
SKEWS = (-2500, -4000, 3000, 1500, 0)
MiB = 1024 * 1024


@dataclass(frozen=True)
class Fault:
    kind: str
    target: str
    began_s: float
    healed_s: float
    #: For ``disk-full``: whether the node said its disk was full.
    felt: bool = True

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "target": self.target,
            "began_s": round(self.began_s, 1),
            "healed_s": round(self.healed_s, 1),
            "felt": self.felt,
        }


@dataclass
class DiskFull:
    """The node whose data directory is a small tmpfs, and the reserve it keeps."""

    node: str
    path: Path
    reserve_bytes: int


@dataclass
class Nemesis:
    east: DevCluster
    west: DevCluster
    sampler: Sampler
    #: Environment every process is started with (the cluster's overrides).
    env: dict[str, str]
    #: How long a process stays down, and a fault stays on.
    down_s: float
    fault_s: float
    #: Pause between two faults.
    gap_s: float
    netfaults: NetFaults | None
    disk: DiskFull | None
    #: Kinds left out, and why.
    unavailable: dict[str, str] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    #: Errors of the nemesis itself (a start that failed): each fails the run.
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        cfg = self.east.config
        self.az_of = {n.name: n.az for n in cfg.nodes}
        self.skew_ms: dict[str, int] = {}
        self._skews = itertools.cycle(SKEWS)
        self._targets: dict[str, itertools.cycle[str]] = {
            "kill": itertools.cycle(KILLED_NODES),
            "skew": itertools.cycle(("b1", "a1", "c1")),
            "witness": itertools.cycle(KILLED_WITNESSES),
            "replicator": itertools.cycle(KILLED_REPLICATORS),
            "west-kill": itertools.cycle(KILLED_NODES[2:] + KILLED_NODES[:2]),
            "partition": itertools.cycle(sorted({n.az for n in cfg.nodes})),
            "disk-full": itertools.cycle([self.disk.node if self.disk else ""]),
        }
        if self.netfaults is None:
            self.unavailable.setdefault("partition", "no network faults here")
        if self.disk is None:
            self.unavailable.setdefault("disk-full", "no tmpfs here")
        self.kinds = [k for k in KINDS if k not in self.unavailable]

    def run(self, until: float, hard_deadline: float) -> None:
        """Faults in rotation until ``until`` (monotonic) once every kind ran
        at least once, and never past ``hard_deadline``."""
        for step in itertools.count():
            kind = self.kinds[step % len(self.kinds)]
            now = time.monotonic()
            if now >= hard_deadline or (now >= until and step >= len(self.kinds)):
                return
            self.fault(kind, next(self._targets[kind]))
            time.sleep(self.gap_s)

    def fault(self, kind: str, target: str) -> None:
        began = self.sampler.now()
        felt = True
        try:
            if kind in ("kill", "skew"):
                if kind == "skew":
                    self.skew_ms[target] = next(self._skews)
                self._restart(self.east, target, self.down_s if kind == "kill" else 0.0)
            elif kind == "witness":
                self._restart(self.east, target, self.down_s / 2)
            elif kind == "replicator":
                self._restart(self.east, target, self.down_s)
            elif kind == "west-kill":
                self._restart(self.west, target, self.down_s)
            elif kind == "partition":
                assert self.netfaults is not None
                self.netfaults.drop(target)
                try:
                    time.sleep(self.fault_s)
                finally:
                    self.netfaults.heal()
            elif kind == "disk-full":
                assert self.disk is not None
                felt = self._fill_disk(self.disk)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(f"{kind} {target}: {exc!r}")
        self.faults.append(Fault(kind, target, began, self.sampler.now(), felt))

    def _restart(self, cluster: DevCluster, name: str, down_s: float) -> None:
        full = cluster.proc_name(name)
        self.sampler.handling(full)
        try:
            cluster.kill(name, "KILL")
            time.sleep(down_s)
        finally:
            env = dict(self.env)
            if cluster is self.east and name in self.skew_ms:
                env["TRISTORE_NODE_CLOCK_OFFSET_MS"] = str(self.skew_ms[name])
            cluster.start(name, extra_env=env)
            self.sampler.handled(full)
        if cluster is self.east and name in self.az_of and self.netfaults is not None:
            pid = self.sampler.pid_of(full)
            if pid is not None:
                # A new process: into its AZ's cgroup, so a partition cuts it too.
                self.netfaults.adopt(self.az_of[name], pid)

    def _fill_disk(self, disk: DiskFull) -> bool:
        """Leave half the reserve free until the node says it is full (or
        ``fault_s`` has passed), hold it ``fault_s``, free it, and wait for the
        node to take writes again. Whether it said it was full."""
        filler = disk.path / FILLER
        st = os.statvfs(disk.path)
        free = st.f_bavail * st.f_frsize
        full = False
        try:
            with filler.open("wb", buffering=0) as f:
                left = max(0, free - disk.reserve_bytes // 2)
                chunk = b"\0" * MiB
                try:
                    while left > 0:
                        f.write(chunk[: min(left, MiB)])
                        left -= MiB
                except OSError as exc:
                    # The node wrote meanwhile (its log, a compaction) and
                    # the disk filled before the filler did: fuller than
                    # planned, to the last byte, which the node must ride
                    # out too (docs/architecture.md: disk full mid-write).
                    if exc.errno != errno.ENOSPC:
                        raise
            full = _wait(lambda: self._disk_full(disk.node), 20)
            time.sleep(self.fault_s)
        finally:
            filler.unlink(missing_ok=True)
        if not _wait(lambda: not self._disk_full(disk.node), 30):
            self.errors.append(f"{disk.node} still full 30 s after its disk was freed")
        return full

    def _disk_full(self, node: str) -> bool:
        try:
            return self.east.metric(node, "tristore_node_disk_full") == 1
        except AssertionError:
            return False  # /metrics did not answer (a loaded machine): ask again


def _wait(pred: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.3)
    return pred()
