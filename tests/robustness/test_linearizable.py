"""Histories of concurrent clients under faults, checked for linearizability.

Clients are pinned to different coordinators and work a few hot keys (some
writes go through multipart upload), recording
each operation's invocation and completion; a nemesis SIGKILLs and restarts
nodes (with clocks skewed by seconds) and witnesses. Every history must check,
and the same workload against the deliberately broken mode (reads served from
the cache without asking the witness) must be caught.

Bounded: a fixed number of operations per client and a time limit; longer runs
with TRISTORE_LONG=1.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import DevCluster, start_cluster
from tests.linearizability import READ, WRITE, Op, check, echo_of
from tristore import errors
from tristore.client import Client, RetryPolicy
from tristore.model import ObjectInfo

pytestmark = [pytest.mark.robustness, pytest.mark.timeout(600)]

LONG = os.environ.get("TRISTORE_LONG") == "1"
BUCKET = "lin"
KEYS = ("x", "y", "z")


class Recorder:
    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        #: Error codes of the calls that failed, by kind (READ, WRITE).
        self.failed: dict[str, Counter[str]] = {READ: Counter(), WRITE: Counter()}
        #: (what, from, to): the windows during which a fault was on.
        self.faults: list[tuple[str, float, float]] = []
        #: Clients still running their loop.
        self.running = 0
        #: Set when the clients are to stop (the run's time is up and the
        #: nemesis, if any, has done its steps).
        self.stop = threading.Event()
        #: Set once the nemesis has done its steps (at once without one): the
        #: clients may stop at their operation count only then.
        self.nemesis_done = threading.Event()
        #: ETag -> the value written with it, so that HEAD and LIST (which
        #: answer ETags, not bodies) read values too.
        self.etags: dict[str, str] = {}
        #: (kind, invoked, completed) of every call, failed ones included: how
        #: long each took (a call must end by its deadline, never hang). The
        #: kind is READ, WRITE or MULTIPART.
        self.calls: list[tuple[str, float, float]] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def add(self, op: Op) -> None:
        with self.lock:
            self.ops.append(op)

    def will_write(self, value: str) -> None:
        """Learn the ETags ``value`` gets: its MD5 (PUT), or one part's (multipart)."""
        md5 = hashlib.md5(value.encode())
        with self.lock:
            self.etags[md5.hexdigest()] = value
            self.etags[hashlib.md5(md5.digest()).hexdigest() + "-1"] = value

    def value_of(self, etag: str) -> str:
        """The value an ETag was written with; an ETag no client wrote reads
        as a value nobody wrote, which the checker refuses."""
        return self.etags.get(etag, f"unknown ETag {etag}")

    def fail(self, kind: str, exc: errors.TristoreError) -> None:
        with self.lock:
            self.failed[kind][exc.code] += 1

    def took(self, kind: str, started: float) -> None:
        with self.lock:
            self.calls.append((kind, started, self.now()))

    def kill_and_restart(
        self, cluster: DevCluster, name: str, down_s: float, env: dict[str, str] | None = None
    ) -> bool:
        """SIGKILL a process, start it again ``down_s`` later (with ``env``),
        and remember the window the fault was on (until it serves again).
        False, and nothing done, once the clients have stopped: a fault nobody
        runs into proves nothing."""
        return self.fault(
            name,
            lambda: cluster.kill(name, "KILL"),
            lambda: cluster.start(name, extra_env=env),
            down_s,
        )

    def fault(
        self, what: str, inject: Callable[[], None], heal: Callable[[], None], on_s: float
    ) -> bool:
        """Inject a fault, heal it ``on_s`` later, and remember the window it
        was on; False, and nothing done, once the clients have stopped."""
        if not self.running:
            return False
        began = self.now()
        inject()
        time.sleep(on_s)
        heal()
        with self.lock:
            self.faults.append((what, began, self.now()))
        return True


#: How much longer than its ``seconds`` a run may last for its nemesis to finish.
NEMESIS_SLACK_S = 240.0

#: A client makes its ``ops`` operations, and more, up to this many times as
#: many, while the nemesis still has steps to do: a fault nobody runs into
#: proves nothing, and restarts are slow on a loaded machine.
OPS_STRETCH = 4

#: How long a writer waits after a write that failed before its next operation.
FAILED_WRITE_PAUSE_S = 0.3

#: How long a reader waits after a read that failed before its next operation.
FAILED_READ_PAUSE_S = 0.1

#: The kind of a call that wrote by multipart upload: three SDK calls in a row,
#: each with its own deadline (Recorder.calls).
MULTIPART = "multipart"

#: What a call may fail with while a process is down or just restarted: the
#: cluster says it cannot answer now (a caller retries). Anything else is a bug.
FAULT_CODES = {"ServiceUnavailable", "QuorumUnavailable", "SlowDown"}


def assert_faults_were_felt(rec: Recorder, ops: list[Op]) -> None:
    """Operations overlapped every fault (else the run proved nothing about
    it), reads mostly succeeded, and the failures are the ones faults explain."""
    for what, began, healed in rec.faults:
        during = [o for o in ops if o.ok and o.invoked < healed and o.completed > began]
        assert during, f"no operation overlapped the fault on {what} ({began:.1f}-{healed:.1f} s)"
    for kind, codes in rec.failed.items():
        assert set(codes) <= FAULT_CODES, f"{kind}s failed with {dict(codes)}"
    reads = sum(1 for o in ops if o.kind == READ)
    failed_reads = sum(rec.failed[READ].values())
    assert failed_reads <= reads, f"{failed_reads} reads failed, {reads} answered"


@dataclasses.dataclass(frozen=True)
class CountedRetries(RetryPolicy):
    """The SDK's retry policy, counting the failed attempts it is asked about
    (:meth:`RetryPolicy.backoff` is asked after each): a call whose count
    moved was sent more than once."""

    failed: list[int] = dataclasses.field(default_factory=lambda: [0], compare=False)

    def backoff(self, failures: int) -> float:
        self.failed[0] += 1
        return super().backoff(failures)


def client_loop(
    cluster: DevCluster,
    endpoint: str,
    ident: int,
    rec: Recorder,
    ops: int,
    writer: bool,
    bucket: str = BUCKET,
    acked: dict[str, str] | None = None,
    retries: bool = True,
    stretch: int = OPS_STRETCH,
    timeout: float | None = None,
) -> None:
    try:
        # A plain PUT or DELETE the SDK sends again after an attempt that may
        # have taken effect is at least once (as in S3): the node writes it
        # again unless that attempt is still current, and a reader may have
        # seen the attempt, then a concurrent write above it, then the resend.
        # So a write whose call was retried is recorded with its earlier
        # attempt (Op.echo), which may have taken effect within the call too.
        policy = CountedRetries() if retries else CountedRetries(max_attempts=1)
        kw = {} if timeout is None else {"timeout": timeout}
        with cluster.client(endpoint, retry=policy, **kw) as c:
            for seq in range(ops * stretch):
                if rec.stop.is_set() or (seq >= ops and rec.nemesis_done.is_set()):
                    return
                key = KEYS[seq % len(KEYS)]
                started = rec.now()
                failed_before = policy.failed[0]
                if writer and seq % 2 == 0:
                    deleting = seq % 10 == 4
                    multipart = not deleting and seq % 6 == 2
                    value = None if deleting else f"{ident}-{seq}"
                    try:
                        if deleting:
                            c.delete_object(bucket, key)
                        else:
                            assert value is not None
                            rec.will_write(value)
                            info = (
                                multipart_put(c, bucket, key, value.encode())
                                if multipart
                                else c.put_object(bucket, key, value.encode())
                            )
                            if acked is not None:
                                acked[info.version_id] = f"{key}={value}"
                    except errors.TristoreError as exc:
                        rec.took(MULTIPART if multipart else WRITE, started)
                        rec.fail(WRITE, exc)
                        rec.add(Op(key, WRITE, value, started, ok=False, client=ident))
                        # Back off, as a caller without retries would: every
                        # write of unknown outcome stays pending to the end of
                        # the history, and a few hundred of them (an AZ down
                        # for seconds) are more than the checker can search.
                        rec.stop.wait(FAILED_WRITE_PAUSE_S)
                    else:
                        rec.took(MULTIPART if multipart else WRITE, started)
                        op = Op(key, WRITE, value, started, rec.now(), client=ident)
                        rec.add(op)
                        if policy.failed[0] != failed_before:
                            rec.add(echo_of(op))
                else:
                    try:
                        got = read_value(c, rec, bucket, key, seq)
                    except errors.TristoreError as exc:
                        rec.took(READ, started)
                        rec.fail(READ, exc)  # constrains nothing, but is counted
                        # Back off too: a client of a killed node would spin.
                        rec.stop.wait(FAILED_READ_PAUSE_S)
                        continue
                    rec.took(READ, started)
                    rec.add(Op(key, READ, got, started, rec.now(), client=ident))
    finally:
        with rec.lock:
            rec.running -= 1


def read_value(c: Client, rec: Recorder, bucket: str, key: str, seq: int) -> str | None:
    """A read of ``key`` by GET, HEAD or LIST in turn: all three are linearizable."""
    how = (seq // 2) % 3
    try:
        if how == 0:
            return c.get_object(bucket, key).decode()
        if how == 1:
            return rec.value_of(c.head_object(bucket, key).etag)
    except errors.NoSuchKey:
        return None
    listed = [o for o in c.list_objects(bucket, prefix=key).contents if o.key == key]
    return rec.value_of(listed[0].etag) if listed else None


def multipart_put(c: Client, bucket: str, key: str, body: bytes) -> ObjectInfo:
    """A write through multipart upload: one (last, so small) part, then complete."""
    up = c.create_multipart_upload(bucket, key)
    part = c.upload_part(bucket, key, up.upload_id, 1, body)
    return c.complete_multipart_upload(bucket, key, up.upload_id, [(1, part.etag)])


def run_workload(
    cluster: DevCluster,
    seconds: float,
    ops_per_client: int,
    nemesis: Callable[[float, Recorder], None] | None = None,
    bucket: str = BUCKET,
    acked: dict[str, str] | None = None,
    retries: bool = True,
    stretch: int = OPS_STRETCH,
    timeout: float | None = None,
) -> tuple[list[Op], Recorder]:
    """Eight clients for at least ``seconds``, and on until ``nemesis`` has done
    its steps (restarts are slow on a loaded machine: a run that ended on the
    clock would leave faults out), but never past ``seconds`` + NEMESIS_SLACK_S, the
    deadline the nemesis is given. Each client also stops after
    ``ops_per_client`` operations once the nemesis is done, and after
    ``OPS_STRETCH`` times as many in any case. ``timeout``: each call's deadline
    (the SDK's default when None)."""
    rec = Recorder()
    nodes = [n.grpc for n in cluster.config.nodes]
    started = time.monotonic()
    hard_deadline = started + seconds + NEMESIS_SLACK_S
    threads = [
        threading.Thread(
            target=client_loop,
            args=(
                cluster,
                nodes[i % len(nodes)],
                i,
                rec,
                ops_per_client,
                i % 2 == 0,
                bucket,
                acked,
                retries,
                stretch,
                timeout,
            ),
            daemon=True,
        )
        for i in range(8)
    ]
    rec.running = len(threads)
    for t in threads:
        t.start()
    try:
        if nemesis is not None:
            nemesis(hard_deadline, rec)
        rec.nemesis_done.set()
        time.sleep(max(0.0, started + seconds - time.monotonic()))
    finally:
        rec.stop.set()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "a client did not stop by itself"
    return rec.ops, rec


def assert_linearizable(ops: list[Op], where: Path) -> None:
    """Check a history; on failure keep it whole beside the cluster's logs."""
    verdict = check(ops)
    if verdict.ok:
        return
    where.mkdir(parents=True, exist_ok=True)
    dump = where / f"history-{int(time.time())}.json"
    dump.write_text(json.dumps([dataclasses.asdict(o) for o in ops]))
    raise AssertionError(
        f"{verdict.explanation}\nwhole history: {dump}\n" + "\n".join(map(str, verdict.ops[:40]))
    )


#: The nemesis runs node clocks up to 7 s apart, beyond the default bound on how
#: far ahead a stamp may be ([cluster] max_clock_skew_ms): every process of this
#: cluster gets a wider one.
WIDE_SKEW = {"TRISTORE_CLUSTER_MAX_CLOCK_SKEW_MS": "15000"}


@pytest.fixture
def lin_cluster(tmp_path: Path) -> Iterator[DevCluster]:
    cluster = start_cluster(tmp_path, extra_env=WIDE_SKEW)
    try:
        with cluster.client() as c:
            c.create_bucket(BUCKET)
        yield cluster
    finally:
        cluster.down()


def test_histories_under_node_witness_kills_and_clock_skew_are_linearizable(
    lin_cluster: DevCluster,
) -> None:
    cluster = lin_cluster
    rounds: list[str] = []

    def nemesis(deadline: float, rec: Recorder) -> None:
        # One fault at a time, each healed before the next; skewed clocks stay.
        steps = [
            ("a1", {**WIDE_SKEW, "TRISTORE_NODE_CLOCK_OFFSET_MS": "3000"}),
            ("w1", WIDE_SKEW),
            ("b2", {**WIDE_SKEW, "TRISTORE_NODE_CLOCK_OFFSET_MS": "-4000"}),
            ("w2", WIDE_SKEW),
            ("c1", {**WIDE_SKEW, "TRISTORE_NODE_CLOCK_OFFSET_MS": "2500"}),
            ("w3", WIDE_SKEW),
        ]
        for name, env in steps * (3 if LONG else 1):
            if time.monotonic() > deadline - 2:
                return
            time.sleep(1.0)
            if not rec.kill_and_restart(cluster, name, 0.5, env):
                return
            rounds.append(name)

    ops, rec = run_workload(cluster, 60 if LONG else 25, 4000 if LONG else 1000, nemesis)
    assert len(rounds) == 6 * (3 if LONG else 1), rounds
    assert_faults_were_felt(rec, ops)
    writes = [o for o in ops if o.kind == WRITE and o.ok]
    reads = [o for o in ops if o.kind == READ]
    assert len(writes) > 50 and len(reads) > 50, (len(writes), len(reads))
    assert_linearizable(ops, cluster.dir)

    # Durable: the last acknowledged state of every key is still readable.
    with cluster.client() as c:
        final = []
        for key in KEYS:
            try:
                got: str | None = c.get_object(BUCKET, key).decode()
            except errors.NoSuchKey:
                got = None
            final.append(Op(key, READ, got, 1e9, 1e9 + 1))
    assert check([*ops, *final]).ok


def test_histories_under_a_pause_a_lost_az_and_overlapping_faults_are_linearizable(
    lin_cluster: DevCluster,
) -> None:
    """Faults beyond one kill at a time: a node paused (SIGSTOP: its
    connections stay open and answer nothing), a whole AZ killed, and a node
    and a witness killed together while a second node runs 3 s ahead."""
    cluster = lin_cluster
    nodes = cluster.config.nodes
    paused = nodes[0].name
    lost_az = [n.name for n in nodes if n.az == nodes[-1].az]
    node, witness = nodes[2].name, cluster.config.witnesses[0].name
    ahead = {**WIDE_SKEW, "TRISTORE_NODE_CLOCK_OFFSET_MS": "3000"}

    def pause() -> None:
        cluster.kill(paused, "STOP")

    def resume() -> None:
        cluster.kill(paused, "CONT")

    def lose_az() -> None:
        for n in lost_az:
            cluster.kill(n, "KILL")

    def bring_az_back() -> None:
        for n in lost_az:
            cluster.start(n, extra_env=WIDE_SKEW)

    def kill_both() -> None:
        cluster.kill(node, "KILL")
        cluster.kill(witness, "KILL")

    def start_both() -> None:
        cluster.start(node, extra_env=ahead)
        cluster.start(witness, extra_env=WIDE_SKEW)

    def nemesis(deadline: float, rec: Recorder) -> None:
        steps = [
            (f"{paused} paused", pause, resume),
            (f"the AZ of {', '.join(lost_az)}", lose_az, bring_az_back),
            (f"{node} and {witness} together", kill_both, start_both),
        ]
        for what, inject, heal in steps:
            if time.monotonic() > deadline - 3:
                return
            time.sleep(1.0)
            if not rec.fault(what, inject, heal, 2.0):
                return

    # No stretch: without retries every failed write stays pending to the end
    # of the history, and a longer run makes more than the checker can search.
    ops, rec = run_workload(cluster, 20, 1200, nemesis, retries=False, stretch=1)
    assert len(rec.faults) == 3, rec.faults
    assert_faults_were_felt(rec, ops)
    assert_linearizable(ops, cluster.dir)


def test_versioned_histories_are_linearizable_and_keep_every_version(
    lin_cluster: DevCluster,
) -> None:
    """In a versioned bucket DELETE makes delete markers and every PUT a version:
    GET latest must still behave as one register (never a superseded version),
    and every acknowledged version must stay readable by its id."""
    cluster = lin_cluster
    bucket = "lin-versioned"
    with cluster.client() as c:
        c.create_bucket(bucket)
        c.put_bucket_versioning(bucket, "Enabled")
    acked: dict[str, str] = {}

    def nemesis(deadline: float, rec: Recorder) -> None:
        for name in ("b1", "w2"):
            if time.monotonic() > deadline - 2:
                return
            time.sleep(1.5)
            if not rec.kill_and_restart(cluster, name, 0.5):
                return

    ops, rec = run_workload(
        cluster, 40 if LONG else 15, 2000 if LONG else 300, nemesis, bucket, acked
    )
    assert rec.faults, "the nemesis must have done something"
    assert_faults_were_felt(rec, ops)
    assert sum(1 for o in ops if o.kind == WRITE and o.ok) > 30
    assert_linearizable(ops, cluster.dir)
    with cluster.client() as c:
        for vid, kv in acked.items():
            key, value = kv.split("=", 1)
            assert c.get_object(bucket, key, version_id=vid).decode() == value, (vid, kv)
        listed = {v.version_id for p in c.iter_object_versions(bucket) for v in p.versions}
    assert set(acked) <= listed


def _caught(cluster: DevCluster, rounds: int) -> bool:
    """Whether one of ``rounds`` workloads of 10 s makes a history the checker
    refuses. Each round has a bucket of its own: a history starts from keys
    nobody wrote, as the checker assumes."""
    for i in range(rounds):
        bucket = f"{BUCKET}-mutant-{i}"
        with cluster.client() as c:
            c.create_bucket(bucket)
        ops, _ = run_workload(cluster, 10, 300, bucket=bucket)
        if not check(ops).ok:
            return True
    return False


def test_the_checker_catches_reads_that_skip_the_witness(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path, extra_env={"TRISTORE_NODE_UNSAFE_SKIP_WITNESS": "true"})
    try:
        # Stale cache entries show up within a few rounds; bounded all the same.
        assert _caught(cluster, rounds=5), (
            "reads that skip the witness must produce a non-linearizable history"
        )
    finally:
        cluster.down()


def test_the_checker_catches_writes_that_skip_the_floor(tmp_path: Path) -> None:
    """The stamp floor's own mutant: a coordinator whose clock is 5 s behind
    stamps its writes below acknowledged ones; without the floor they are
    acknowledged and never current, which the checker must see."""
    mutant = {**WIDE_SKEW, "TRISTORE_NODE_UNSAFE_SKIP_FLOOR": "true"}
    cluster = start_cluster(tmp_path, extra_env=mutant)
    try:
        behind = cluster.config.nodes[0].name
        cluster.kill(behind, "KILL")
        cluster.start(behind, extra_env={**mutant, "TRISTORE_NODE_CLOCK_OFFSET_MS": "-5000"})
        assert _caught(cluster, rounds=5), (
            "writes stamped without the floor must produce a non-linearizable history"
        )
    finally:
        cluster.down()
