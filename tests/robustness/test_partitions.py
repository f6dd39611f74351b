"""Partitions and slow links between the processes of a cluster (issue 14, point 4).

The workload and checker of test_linearizable.py run while tests/netfaults.py
cuts or slows the links of one AZ, of the witnesses, or of a replicator to
its destination; then the fault heals, and:

- every history is linearizable, and every acknowledged version reads back;
- every call ended within its deadline (plus a margin), with an error that
  says to retry (ServiceUnavailable, QuorumUnavailable, SlowDown) if it
  failed: nothing hangs;
- queues stay bounded: hints pending never exceed the writes that could have
  made them, and they drain once the fault heals; no node's memory runs away.

One cluster serves every fault (each healed before the next, each with a
bucket of its own, so each history starts from keys nobody wrote); the
replicator's case has two clusters of its own. Each fault
is on for FAULT_S seconds (longer with TRISTORE_LONG=1). Needs root, iptables
and cgroup v2 (tests/netfaults.py); skipped without them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import netfaults
from tests.integration.cluster import DevCluster, start_cluster, wait_until
from tests.linearizability import READ, WRITE, Op
from tests.netfaults import BOTH, INTO, OUT, NetFaults, Side
from tests.robustness.test_linearizable import (
    FAULT_CODES,
    KEYS,
    MULTIPART,
    Recorder,
    assert_linearizable,
    run_workload,
)
from tristore import config, errors
from tristore.cli import processes
from tristore.client import Client
from tristore.replication import Destination, Rule

pytestmark = [pytest.mark.robustness, pytest.mark.timeout(900)]

LONG = os.environ.get("TRISTORE_LONG") == "1"
#: How long each fault is on.
FAULT_S = 30.0 if LONG else 8.0
#: The deadline of each call of the workload's clients (no SDK retries: each
#: call is one attempt, so its deadline bounds it).
CALL_TIMEOUT_S = 8.0
#: How much past its deadline a call may end (a loaded machine's scheduling).
DEADLINE_SLACK_S = 4.0
#: How much a node's resident memory may grow during one fault.
RSS_GROWTH_BYTES = 300 << 20

_WHY = netfaults.unavailable()

#: Where a history that does not check is kept: outside pytest's temporary
#: directories, which later runs on the machine delete.
HISTORIES = Path(os.environ.get("TRISTORE_HISTORIES", "/tmp/tristore-histories"))


def ports_of(proc: dict[str, object]) -> tuple[int, ...]:
    """Every port a process of ``dev up`` listens on: gRPC, internal (mTLS),
    pipe (nodes and witnesses), S3 (nodes) and metrics."""
    grpc = int(str(proc["grpc"]).rpartition(":")[2])
    metrics = int(str(proc["metrics"]).rpartition(":")[2])
    tls = config.TlsSection
    return (
        grpc,
        grpc + tls.internal_port_offset,
        grpc + tls.pipe_port_offset,
        grpc + 500,
        metrics,
    )


def side_of(name: str, procs: list[dict[str, object]]) -> Side:
    return Side(
        name,
        tuple(int(str(p["pid"])) for p in procs),
        tuple(port for p in procs for port in ports_of(p)),
    )


@dataclass
class Net:
    cluster: DevCluster
    faults: NetFaults
    #: Process name -> its status (``dev status --json``).
    procs: dict[str, dict[str, object]]
    #: The AZ whose links are cut or slowed; its nodes.
    az: str
    az_nodes: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    if _WHY:
        pytest.skip(f"cannot inject network faults here: {_WHY}")
    cluster = _start(tmp_path_factory, "partitions")
    try:
        procs = {str(p["name"]): p for p in cluster.status()}
        nodes = cluster.config.nodes
        az = nodes[-1].az
        by_az: dict[str, list[dict[str, object]]] = {}
        for n in nodes:
            by_az.setdefault(n.az, []).append(procs[n.name])
        witnesses = [procs[w.name] for w in cluster.config.witnesses]
        sides = [side_of(a, ps) for a, ps in by_az.items()]
        # One witness (a minority of the group), and the two others (a majority).
        sides += [side_of("w-minority", witnesses[:1]), side_of("w-majority", witnesses[1:])]
        with NetFaults(sides) as nf:
            # Every connection was cut once: wait until the cluster answers again.
            wait_until(answers(cluster), 60, 0.5, "the cluster to answer after the reconnect")
            yield Net(cluster, nf, procs, az, [n.name for n in nodes if n.az == az])
        assert not nf.leftovers(), nf.leftovers()
    finally:
        cluster.down()


def _start(factory: pytest.TempPathFactory, name: str, *flags: str) -> DevCluster:
    """``start_cluster``, tried again on a port another test's cluster took
    between the check and the start (other test runs share the machine)."""
    for attempt in range(3):
        try:
            return start_cluster(factory.mktemp(name), *flags)
        except AssertionError as exc:
            if "PortInUse" not in str(exc) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def answers(cluster: DevCluster) -> Callable[[], bool]:
    """Whether the cluster answers a listing now (for ``wait_until``)."""

    def probe() -> bool:
        try:
            with cluster.client(timeout=3) as c:
                c.list_buckets()
        except errors.TristoreError:
            return False
        return True

    return probe


#: How often the test process checks that it is itself being scheduled.
TICK_S = 0.05


class Watch:
    """Samples, while a fault is on, what must stay bounded: hints pending
    (on every node whose metrics answer) and each node's resident memory.

    And how late this process itself wakes (``stalls``: when, and by how
    much, on time.monotonic()): a call's end is seen only once its client's
    thread runs again, so a machine loaded to the point of not scheduling
    the test for seconds (the CI run of 2026-12-04: 2 cores, another
    worker's cluster under a backfill beside this one) makes a call that
    ended on time look late by as much."""

    def __init__(self, net: Net) -> None:
        self.net = net
        self.hints: list[float] = []
        self.rss: dict[str, list[int]] = {}
        self.stalls: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, daemon=True),
            threading.Thread(target=self._tick, daemon=True),
        ]

    def __enter__(self) -> Watch:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def stalled(self, start: float, done: float) -> float:
        """Seconds this process was not scheduled between two monotonic times."""
        return sum(late for at, late in self.stalls if start < at and at - late < done)

    def _tick(self) -> None:
        due = time.monotonic() + TICK_S
        while not self.stop.wait(max(0.0, due - time.monotonic())):
            now = time.monotonic()
            if now - due > TICK_S:
                self.stalls.append((now, now - due))
            due = now + TICK_S

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            total = 0.0
            for n in self.net.cluster.config.nodes:
                got = processes.metric_sum(n.metrics, "tristore_node_hints_pending", 0.5)
                total += got or 0.0
                pid = int(str(self.net.procs[n.name]["pid"]))
                self.rss.setdefault(n.name, []).append(_rss(pid))
            self.hints.append(total)


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass(frozen=True)
class Fault:
    """A fault of tests/netfaults.py: ``inject`` turns it on."""

    name: str
    inject: Callable[[Net], None]
    #: Whether reads and writes must keep working through it (slow links, a
    #: witness minority); otherwise they may fail with FAULT_CODES.
    available: bool = False


FAULTS = [
    Fault("az-two-way", lambda n: n.faults.drop(n.az, direction=BOTH)),
    Fault("witness-minority", lambda n: n.faults.drop("w-minority"), available=True),
    Fault("witness-majority", lambda n: n.faults.drop("w-majority")),
    Fault("az-requests-vanish", lambda n: n.faults.drop(n.az, direction=INTO)),
    Fault("az-answers-vanish", lambda n: n.faults.drop(n.az, direction=OUT)),
    Fault("az-latency", lambda n: n.faults.delay(n.az, 50, 100), available=True),
    Fault("az-loss", lambda n: n.faults.drop(n.az, probability=0.08)),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_a_network_fault_loses_nothing_and_hangs_nothing(net: Net, fault: Fault) -> None:
    cluster = net.cluster
    bucket = f"part-{fault.name}"
    with cluster.client() as c:
        c.create_bucket(bucket)
        c.put_bucket_versioning(bucket, "Enabled")
    acked: dict[str, str] = {}
    baseline = {n: _rss(int(str(net.procs[n]["pid"]))) for n in net.procs if "pid" in net.procs[n]}

    def nemesis(deadline: float, rec: Recorder) -> None:
        time.sleep(1.5)
        rec.fault(fault.name, lambda: fault.inject(net), net.faults.heal, FAULT_S)

    with Watch(net) as watch:
        ops, rec = run_workload(
            cluster,
            FAULT_S + 5,
            10_000,
            nemesis,
            bucket,
            acked,
            retries=False,
            stretch=1,
            timeout=CALL_TIMEOUT_S,
        )
    assert net.faults.fault is None
    assert rec.faults, "the fault was never on"
    _, began, healed = rec.faults[0]
    _report(fault, ops, rec, watch)

    # Nothing hung: every call ended by its deadline (a multipart write makes
    # three calls, each with its own), and a failure said to retry.
    for kind, start, done in rec.calls:
        stalled = watch.stalled(rec.t0 + start, rec.t0 + done)
        bound = (3 if kind == MULTIPART else 1) * CALL_TIMEOUT_S + DEADLINE_SLACK_S + stalled
        assert done - start <= bound, (
            f"a {kind} took {done - start:.1f} s (at {start:.1f} s; this process was not "
            f"scheduled for {stalled:.1f} s of it)"
        )
    for kind, codes in rec.failed.items():
        assert set(codes) <= FAULT_CODES, f"{kind}s failed with {dict(codes)}"
    during = [o for o in ops if o.ok and o.invoked < healed and o.completed > began]
    if fault.available:
        assert during, "nothing succeeded while the fault was on"
        reads = [o for o in during if o.kind == READ]
        assert reads, "no read succeeded while the fault was on"
    writes = [o for o in ops if o.kind == WRITE and o.ok]
    assert len(writes) > 10, len(writes)

    assert_linearizable(ops, HISTORIES)

    # Nothing lost: every acknowledged version reads back, listed and by id.
    wait_until(answers(cluster), 60, 0.5, "the cluster to answer after the heal")
    with cluster.client(timeout=30) as c:
        for vid, kv in acked.items():
            key, value = kv.split("=", 1)
            assert c.get_object(bucket, key, version_id=vid).decode() == value, (vid, kv)
        listed = {v.version_id for p in c.iter_object_versions(bucket) for v in p.versions}
        assert set(acked) <= listed, set(acked) - listed
        final = []
        for key in KEYS:
            try:
                got: str | None = c.get_object(bucket, key).decode()
            except errors.NoSuchKey:
                got = None
            final.append(Op(key, READ, got, 1e9, 1e9 + 1))
    assert_linearizable([*ops, *final], HISTORIES)

    # Queues bounded: no more hints than writes tried (each a hint per AZ at
    # most), drained after the heal; memory did not run away.
    tried = sum(1 for o in ops if o.kind == WRITE)
    assert max(watch.hints, default=0) <= 3 * tried, (watch.hints, tried)
    cluster.wait_hints_drained(60)
    for name, samples in watch.rss.items():
        grew = max(samples, default=0) - baseline.get(name, 0)
        assert grew < RSS_GROWTH_BYTES, f"{name} grew by {grew >> 20} MiB during {fault.name}"


def _report(fault: Fault, ops: list[Op], rec: Recorder, watch: Watch) -> None:
    """One line a fault in the test's output (-s, or the report of a failure)."""
    longest = {
        kind: max((done - start for k, start, done in rec.calls if k == kind), default=0.0)
        for kind in (READ, WRITE, MULTIPART)
    }
    ok = sum(1 for o in ops if o.ok)
    print(
        f"\n{fault.name}: {len(rec.calls)} calls, {ok} ok, failed "
        f"reads {dict(rec.failed[READ])} writes {dict(rec.failed[WRITE])}, longest "
        + ", ".join(f"{k} {s:.2f} s" for k, s in longest.items())
        + f", hints max {max(watch.hints, default=0):.0f}, test process stalled "
        f"{sum(late for _, late in watch.stalls):.2f} s (longest "
        f"{max((late for _, late in watch.stalls), default=0.0):.2f} s)"
    )


def test_a_replicator_cut_off_from_its_destination_catches_up(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """East's replicators lose every link to west while east takes writes: the
    writes go on, the backlog waits (bounded, nothing parked in the
    dead-letter queue), and once the link heals every version arrives."""
    if _WHY:
        pytest.skip(f"cannot inject network faults here: {_WHY}")
    east = _start(tmp_path_factory, "repl", "--clusters", "2")
    try:
        west = east.clusters["west"]
        status = east.status()
        replicators = [p for p in status if p["cluster"] == "east" and p["role"] == "replicator"]
        west_procs = [p for p in status if p["cluster"] == "west"]
        sides = [side_of("east-replicators", replicators), side_of("west", west_procs)]
        with NetFaults(sides) as nf, east.client() as e, west.client() as w:
            wait_until(answers(east), 60, 0.5, "east to answer after the reconnect")
            for c, name in ((e, "part-src"), (w, "part-dst")):
                c.create_bucket(name)
                c.put_bucket_versioning(name, "Enabled")
            e.put_bucket_replication("part-src", [Rule("all", (Destination("west", "part-dst"),))])
            first = e.put_object("part-src", "before", b"0")
            wait_until(lambda: _has(w, "before", first.version_id), 60, 0.5, "replication to work")

            nf.drop("east-replicators", "west")
            written: dict[str, str] = {}
            began = time.monotonic()
            while time.monotonic() - began < FAULT_S:
                t = time.monotonic()
                key = f"k{len(written) % 20}"
                info = e.put_object("part-src", key, str(len(written)).encode())
                assert time.monotonic() - t < CALL_TIMEOUT_S, "a write waited for replication"
                written[info.version_id] = key
                time.sleep(0.05)
            arrived = sum(_has(w, k, v) for v, k in written.items())
            pending = max(
                east.metric(
                    str(r["name"]).rpartition("/")[2], "tristore_replication_pending_operations"
                )
                for r in replicators
            )
            print(
                f"\nreplicator cut off: {len(written)} writes, {arrived} arrived, pending {pending}"
            )
            assert arrived < len(written), "versions crossed a partition"
            assert pending <= len(written) + 1, pending
            nf.heal()

            wait_until(
                lambda: all(_has(w, k, v) for v, k in written.items()),
                120,
                1.0,
                "every version written during the partition to reach west",
            )
            for r in replicators:
                name = str(r["name"]).rpartition("/")[2]
                assert east.metric(name, "tristore_replication_dlq_entries") == 0, name
    finally:
        east.down()


def _has(w: Client, key: str, version_id: str) -> bool:
    try:
        w.head_object("part-dst", key, version_id=version_id)
    except errors.TristoreError:
        return False
    return True
