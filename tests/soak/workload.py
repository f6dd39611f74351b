"""The soak's traffic: a few client threads, each bounded in operations and
stopped by one event, each recording what it was told so that the end of the
run can check it.

- :class:`Registers`: linearizability clients (the workload of
  tests/robustness/test_linearizable.py: PUT, DELETE, one-part multipart,
  GET, HEAD, LIST of a few hot keys, histories recorded). The keys change
  every ``EPOCH_S`` seconds, alternating between an unversioned and a
  versioned bucket, so one key's history stays small enough to check however
  long the run; a key whose epoch is long over gets a last read (recorded in
  the history) and is deleted, versions and all, so the data stays bounded.
- :class:`Blobs`: large objects (64 KiB - 1 MiB by PUT, 5 MiB + a bit by a
  two-part multipart upload) overwriting a few keys of an unversioned bucket,
  each read back now and then: a read returns the last acknowledged body (or
  one whose write failed after it, which may have landed).
- :class:`Versions`: small and medium objects and delete markers in a
  versioned bucket that replicates to the second cluster, with event
  subscribers on two prefixes. Every acknowledged version is kept in a ledger;
  a pruner keeps the newest ``KEEP`` versions of each key, and before it
  deletes an older one (on both clusters) checks its body at the source and
  its copy at the destination.
- :class:`Subscriber`: a ``subscribe_events`` stream of one prefix, resumed
  from its last cursor if it breaks.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.integration.cluster import DevCluster
from tests.linearizability import READ, WRITE, Op
from tests.robustness.test_linearizable import Recorder, multipart_put, read_value
from tristore import errors
from tristore.client import Client, RetryPolicy
from tristore.events import CREATED_PUT, REMOVED_DELETE, REMOVED_MARKER, Event
from tristore.model import VersionEntry

KiB = 1024
MiB = 1024 * KiB

#: What a call may fail with while a process is down, partitioned or out of
#: disk: the cluster says it cannot answer now. Anything else is a bug.
FAULT_CODES = frozenset({"ServiceUnavailable", "QuorumUnavailable", "SlowDown"})


@dataclass
class Traffic:
    """What every worker shares: the stop event, counts, failures, problems."""

    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Calls made and calls that failed, by worker kind.
    calls: Counter[str] = field(default_factory=Counter)
    #: (worker kind, error code) of every failed call.
    failed: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: What a worker saw that must not happen (a wrong body, a lost version).
    problems: list[str] = field(default_factory=list)
    #: Exceptions that ended a worker thread (each is a failure).
    crashed: list[str] = field(default_factory=list)
    #: The first message of each (worker kind, error code) a fault does not explain.
    first_unexpected: dict[tuple[str, str], str] = field(default_factory=dict)

    def count(self, kind: str, exc: BaseException | None = None) -> None:
        with self.lock:
            self.calls[kind] += 1
            if exc is not None:
                code = exc.code if isinstance(exc, errors.TristoreError) else type(exc).__name__
                self.failed[kind, code] += 1
                if code not in FAULT_CODES:
                    self.first_unexpected.setdefault((kind, code), str(exc)[:500])

    def problem(self, what: str) -> None:
        with self.lock:
            self.problems.append(what)

    def unexpected_failures(self) -> dict[str, str]:
        """``kind: code`` -> how many, and the first one's message."""
        return {
            f"{k}: {c}": f"{n}x, first: {self.first_unexpected.get((k, c), '')}"
            for (k, c), n in self.failed.items()
            if c not in FAULT_CODES
        }

    def thread(self, name: str, target: Callable[[], None]) -> threading.Thread:
        """A daemon thread running ``target``; an exception it raises is kept."""

        def run() -> None:
            try:
                target()
            except Exception as exc:  # noqa: BLE001 - kept and reported by the test
                with self.lock:
                    self.crashed.append(f"{name}: {exc!r}")

        return threading.Thread(target=run, name=name, daemon=True)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def starting_at(cluster: DevCluster, i: int) -> str:
    """The cluster's endpoints from its ``i``-th node on: a client sticks to
    the first that answers, so writers that start at different nodes have
    different coordinators (and the nemesis' clock skew reaches them)."""
    nodes = [n.grpc for n in cluster.config.nodes]
    return ",".join(nodes[i:] + nodes[:i])


def stamp_ms(version_id: str) -> int:
    """The physical time (ms) of the stamp a version id is made of."""
    return int(version_id[:16], 16)


# -- linearizable registers ---------------------------------------------------

LIN_BUCKETS = ("soak-lin", "soak-lin-versioned")
LIN_KEYS = ("x", "y", "z")
#: Keys change this often (and the bucket with them).
EPOCH_S = 15.0
#: An epoch's keys get their last read and are deleted this many epochs later
#: (by then no operation on them can still be running: a call's deadline is
#: far shorter).
RETIRE_AFTER = 3
#: Deadline of one call of a register client (no SDK retries: a call takes
#: effect at most once, as the history assumes).
LIN_TIMEOUT_S = 8.0


class Registers:
    """Linearizability clients, and the retiring of old epochs' keys."""

    def __init__(self, cluster: DevCluster, traffic: Traffic, clients: int, pace_s: float) -> None:
        self.cluster = cluster
        self.traffic = traffic
        self.clients = clients
        self.pace_s = pace_s
        self.rec = Recorder()
        #: Epochs whose keys had their last read and were deleted.
        self.retired: set[int] = set()

    def epoch(self) -> int:
        return int(self.rec.now() // EPOCH_S)

    @staticmethod
    def where(epoch: int, key: str) -> tuple[str, str]:
        """(bucket, key name) of one register of an epoch."""
        return LIN_BUCKETS[epoch % 2], f"e{epoch:05d}/{key}"

    def threads(self) -> list[threading.Thread]:
        nodes = [n.grpc for n in self.cluster.config.nodes]
        out = [
            self.traffic.thread(
                f"register-{i}", functools.partial(self._client, nodes[i % len(nodes)], i)
            )
            for i in range(self.clients)
        ]
        out.append(self.traffic.thread("register-retire", self._retire_loop))
        return out

    def _client(self, endpoint: str, ident: int) -> None:
        rec, stop = self.rec, self.traffic.stop
        writer = ident % 2 == 0
        policy = RetryPolicy(max_attempts=1)
        with self.cluster.client(endpoint, retry=policy, timeout=LIN_TIMEOUT_S) as c:
            for seq in range(10_000_000):
                if stop.wait(self.pace_s):
                    return
                epoch = self.epoch()
                bucket, key = self.where(epoch, LIN_KEYS[seq % len(LIN_KEYS)])
                started = rec.now()
                if writer and seq % 2 == 0:
                    self._write(c, ident, seq, bucket, key, started)
                    continue
                try:
                    got = read_value(c, rec, bucket, key, seq)
                except errors.TristoreError as exc:
                    self.traffic.count("register", exc)
                    stop.wait(0.1)  # a client of a killed node would spin
                    continue
                self.traffic.count("register")
                rec.add(Op(key, READ, got, started, rec.now(), client=ident))

    def _write(
        self, c: Client, ident: int, seq: int, bucket: str, key: str, started: float
    ) -> None:
        rec = self.rec
        deleting = seq % 10 == 4
        value = None if deleting else f"{ident}-{seq}"
        try:
            if value is None:
                c.delete_object(bucket, key)
            else:
                rec.will_write(value)
                if seq % 6 == 2:
                    multipart_put(c, bucket, key, value.encode())
                else:
                    c.put_object(bucket, key, value.encode())
        except errors.TristoreError as exc:
            self.traffic.count("register", exc)
            rec.add(Op(key, WRITE, value, started, ok=False, client=ident))
            # Every write of unknown outcome stays pending to the end of its
            # key's history: back off, as a caller without retries would.
            self.traffic.stop.wait(0.3)
        else:
            self.traffic.count("register")
            rec.add(Op(key, WRITE, value, started, rec.now(), client=ident))

    def _retire_loop(self) -> None:
        with self.cluster.client() as c:
            while not self.traffic.stop.wait(EPOCH_S / 3):
                for epoch in range(self.epoch() - RETIRE_AFTER + 1):
                    if epoch not in self.retired and not self.traffic.stop.is_set():
                        self.retire(c, epoch)

    def retire(self, c: Client, epoch: int) -> bool:
        """The last read of each key of ``epoch`` (into the history: every
        acknowledged write must show through it), then every version of them
        deleted. False if a read failed (the end of the run reads them again)."""
        bucket = LIN_BUCKETS[epoch % 2]
        for name in LIN_KEYS:
            _, key = self.where(epoch, name)
            for attempt in range(5):
                started = self.rec.now()
                try:
                    got = read_value(c, self.rec, bucket, key, 0)  # by GET
                except errors.TristoreError as exc:
                    self.traffic.count("retire", exc)
                    if attempt == 4 or self.traffic.stop.wait(1.0):
                        return False
                    continue
                self.rec.add(Op(key, READ, got, started, self.rec.now(), client=-1))
                break
        try:
            for page in c.iter_object_versions(bucket, prefix=f"e{epoch:05d}/"):
                for v in page.versions:
                    c.delete_object(bucket, v.key, version_id=v.version_id)
        except errors.TristoreError as exc:
            # The reads are in the history: what is left is only disk.
            self.traffic.count("retire", exc)
        self.retired.add(epoch)
        return True


# -- large objects --------------------------------------------------------------

BLOB_BUCKET = "soak-blobs"
BLOB_KEYS = 6


class Blobs:
    """One writer of large objects; it reads one back every third write."""

    def __init__(self, cluster: DevCluster, traffic: Traffic, pace_s: float) -> None:
        self.cluster = cluster
        self.traffic = traffic
        self.pace_s = pace_s
        #: key -> MD5s of the bodies a read may return now: the last
        #: acknowledged one, and those of failed writes after it.
        self.acceptable: dict[str, set[str]] = {}
        self.written = 0
        self.multipart = 0
        self.reads = 0
        self.bytes = 0

    def thread(self) -> threading.Thread:
        return self.traffic.thread("blobs", self._run)

    def _run(self) -> None:
        rnd = random.Random(7)
        with self.cluster.client(starting_at(self.cluster, 4)) as c:
            for i in range(10_000_000):
                if self.traffic.stop.wait(self.pace_s):
                    return
                key = f"blob/{i % BLOB_KEYS}"
                if i % 6 == 5:
                    body = os.urandom(5 * MiB + rnd.randrange(1, 256 * KiB))
                    self._write(c, key, body, multipart=True)
                else:
                    self._write(c, key, os.urandom(rnd.randrange(64 * KiB, MiB)), multipart=False)
                if i % 3 == 2:
                    self._read(c, f"blob/{rnd.randrange(BLOB_KEYS)}")

    def _write(self, c: Client, key: str, body: bytes, multipart: bool) -> None:
        digest = md5(body)
        try:
            if multipart:
                _two_part_upload(c, BLOB_BUCKET, key, body)
            else:
                c.put_object(BLOB_BUCKET, key, body)
        except errors.TristoreError as exc:
            self.traffic.count("blobs", exc)
            self.acceptable.setdefault(key, set()).add(digest)  # it may have landed
            return
        self.traffic.count("blobs")
        self.acceptable[key] = {digest}
        self.written += 1
        self.multipart += multipart
        self.bytes += len(body)

    def _read(self, c: Client, key: str) -> None:
        if key not in self.acceptable:
            return
        try:
            got = md5(c.get_object(BLOB_BUCKET, key))
        except errors.TristoreError as exc:
            self.traffic.count("blobs", exc)
            return
        self.traffic.count("blobs")
        self.reads += 1
        if got not in self.acceptable[key]:
            self.traffic.problem(f"{BLOB_BUCKET}/{key}: read a body (MD5 {got}) never written last")

    def check_final(self, c: Client) -> list[str]:
        """Every key reads back as its last acknowledged body (or a later
        write whose outcome was unknown)."""
        out = []
        for key, ok in sorted(self.acceptable.items()):
            got = md5(c.get_object(BLOB_BUCKET, key))
            if got not in ok:
                out.append(f"{BLOB_BUCKET}/{key}: MD5 {got}, expected one of {sorted(ok)}")
        return out


def _two_part_upload(c: Client, bucket: str, key: str, body: bytes) -> None:
    """A multipart upload of two parts (5 MiB, the rest); aborted if it fails."""
    up = c.create_multipart_upload(bucket, key)
    try:
        cut = 5 * MiB
        first = c.upload_part(bucket, key, up.upload_id, 1, body[:cut])
        second = c.upload_part(bucket, key, up.upload_id, 2, body[cut:])
        c.complete_multipart_upload(bucket, key, up.upload_id, [(1, first.etag), (2, second.etag)])
    except errors.TristoreError:
        with contextlib.suppress(errors.TristoreError):
            c.abort_multipart_upload(bucket, key, up.upload_id)
        raise


# -- versions, replication and events -----------------------------------------

VERSIONS_BUCKET = "soak-versions"
DEST_BUCKET = "soak-versions-copy"
EVENT_PREFIXES = ("ev/", "other/")
VERSION_KEYS = tuple(f"ev/k{i}" for i in range(6)) + tuple(f"other/k{i}" for i in range(3))
#: The pruner keeps this many newest versions (and markers) of each key.
KEEP = 3
#: How far a node's clock may be from the test's (the nemesis' skews, and more).
SKEW_MARGIN_MS = 6000


@dataclass
class Acked:
    """A version (or delete marker) the source acknowledged."""

    key: str
    version_id: str
    md5: str  # "" for a delete marker
    marker: bool
    #: Set once the pruner checked it and deleted it on purpose.
    pruned: bool = False


class Versions:
    """One writer, one pruner, the ledger of what the source acknowledged."""

    def __init__(
        self, east: DevCluster, west: DevCluster, traffic: Traffic, pace_s: float, prune_s: float
    ) -> None:
        self.east = east
        self.west = west
        self.traffic = traffic
        self.pace_s = pace_s
        self.prune_s = prune_s
        self.lock = threading.Lock()
        #: version id -> what was acknowledged, in order of acknowledgement.
        self.acked: dict[str, Acked] = {}
        #: MD5s of every body sent (acknowledged or not): an event or a
        #: version with one of them came from a write of this run.
        self.sent_md5: set[str] = set()
        #: (key, wall ms when sent, wall ms when answered) of every DELETE:
        #: a marker no answer named (a DELETE without one, or an SDK retry
        #: whose first attempt had landed) must be stamped within one of them.
        self.deletes: list[tuple[str, int, int]] = []
        #: Version ids the pruner deleted at the source (acknowledged or not),
        #: or tried to; and those whose deletion was acknowledged.
        self.pruned: set[str] = set()
        self.removed: set[str] = set()
        self.checked = 0

    def threads(self) -> list[threading.Thread]:
        return [
            self.traffic.thread("versions", self._write_loop),
            self.traffic.thread("pruner", self._prune_loop),
        ]

    def _write_loop(self) -> None:
        rnd = random.Random(11)
        with self.east.client(starting_at(self.east, 2)) as c:
            for i in range(10_000_000):
                if self.traffic.stop.wait(self.pace_s):
                    return
                key = VERSION_KEYS[i % len(VERSION_KEYS)]
                if i % 7 == 6:
                    self._delete(c, key)
                    continue
                size = rnd.randrange(8 * KiB, 48 * KiB) if i % 5 == 0 else rnd.randrange(50, 2000)
                body = f"{key} {i} ".encode() + os.urandom(size)
                digest = md5(body)
                with self.lock:
                    self.sent_md5.add(digest)
                try:
                    info = c.put_object(VERSIONS_BUCKET, key, body)
                except errors.TristoreError as exc:
                    self.traffic.count("versions", exc)
                    continue
                self.traffic.count("versions")
                with self.lock:
                    self.acked[info.version_id] = Acked(key, info.version_id, digest, False)

    def _delete(self, c: Client, key: str) -> None:
        sent = int(time.time() * 1000)
        try:
            res = c.delete_object(VERSIONS_BUCKET, key)
        except errors.TristoreError as exc:
            self.traffic.count("versions", exc)
            return
        finally:
            with self.lock:
                self.deletes.append((key, sent, int(time.time() * 1000)))
        self.traffic.count("versions")
        with self.lock:
            self.acked[res.version_id] = Acked(key, res.version_id, "", True)

    def _prune_loop(self) -> None:
        with self.east.client() as e, self.west.client() as w:
            while not self.traffic.stop.wait(self.prune_s):
                for key in VERSION_KEYS:
                    if self.traffic.stop.is_set():
                        return
                    try:
                        self._prune_key(e, w, key)
                    except errors.TristoreError as exc:
                        self.traffic.count("pruner", exc)

    def _prune_key(self, e: Client, w: Client, key: str) -> None:
        old = versions_of(e, VERSIONS_BUCKET, key)[KEEP:]
        if not old:
            return
        there = {(v.version_id, v.etag, v.delete_marker) for v in versions_of(w, DEST_BUCKET, key)}
        self.traffic.count("pruner")
        for v in old:
            if (v.version_id, v.etag, v.delete_marker) not in there:
                continue  # not replicated yet: next pass
            with self.lock:
                acked = self.acked.get(v.version_id)
                tried = v.version_id in self.pruned
            if acked is not None and not tried:
                # Checked once, before its first DELETE. A DELETE that failed
                # may have removed it in some AZs (reads answer NoSuchVersion)
                # and left it in the one this listing scans: it is deleted
                # again, which finishes the removal everywhere.
                self._check_source(e, acked, v)
            with self.lock:
                # Checked: from here on it may be gone (a delete whose answer
                # is lost may still have removed it).
                self.pruned.add(v.version_id)
                if acked is not None:
                    acked.pruned = True
            e.delete_object(VERSIONS_BUCKET, key, version_id=v.version_id)
            with self.lock:
                self.removed.add(v.version_id)
            with contextlib.suppress(errors.NoSuchKey, errors.NoSuchVersion):
                w.delete_object(DEST_BUCKET, key, version_id=v.version_id)

    def _check_source(self, e: Client, acked: Acked, v: VersionEntry) -> None:
        """An acknowledged version about to be pruned: its body at the source
        (its copy at the destination was just listed with the same ETag)."""
        if acked.marker != v.delete_marker or acked.key != v.key:
            self.traffic.problem(f"{acked}: listed as {v}")
        elif not acked.marker:
            got = md5(e.get_object(VERSIONS_BUCKET, acked.key, version_id=acked.version_id))
            if got != acked.md5:
                self.traffic.problem(f"{acked}: the source returns a body with MD5 {got}")
        self.checked += 1

    # -- at the end --------------------------------------------------------

    def kept(self) -> list[Acked]:
        with self.lock:
            return [a for a in self.acked.values() if not a.pruned]

    def check_source(self, e: Client) -> list[str]:
        """Every acknowledged version not pruned reads back, body and all, and
        every acknowledged marker is listed."""
        out: list[str] = []
        listed = {
            v.version_id: v for key in VERSION_KEYS for v in versions_of(e, VERSIONS_BUCKET, key)
        }
        for a in self.kept():
            v = listed.get(a.version_id)
            if v is None or v.delete_marker != a.marker or v.key != a.key:
                out.append(f"source lost {a} (listed: {v})")
            elif not a.marker:
                got = md5(e.get_object(VERSIONS_BUCKET, a.key, version_id=a.version_id))
                if got != a.md5:
                    out.append(f"source: {a} reads with MD5 {got}")
            self.checked += 1
        return out

    def missing_at_destination(self, w: Client) -> list[Acked]:
        """Acknowledged versions not pruned that the destination does not hold
        (same version id, ETag-bearing listing entry, marker flag)."""
        there = {
            (v.key, v.version_id, v.delete_marker)
            for key in VERSION_KEYS
            for v in versions_of(w, DEST_BUCKET, key)
        }
        return [a for a in self.kept() if (a.key, a.version_id, a.marker) not in there]

    # -- events --------------------------------------------------------------

    def expected_events(
        self, prefix: str, home_faulted: Callable[[str, int], bool]
    ) -> set[tuple[str, str, str]]:
        """(key, version id, name) of the acknowledged changes under ``prefix``
        whose events must come: each version's creation, and its removal if
        the pruner removed it; each marker, unless the pruner removed it.

        A version created and removed while its key's first-AZ home was down
        (or cut off, or full) gives only the removal: the home gets the key's
        state back, not each change (see the README). So the creation of a
        removed version is not required when ``home_faulted(key, stamp ms)``
        says a fault hit the key's first-AZ home around its stamp; nor is a
        removed marker's anything."""
        out: set[tuple[str, str, str]] = set()
        with self.lock:
            for a in self.acked.values():
                if not a.key.startswith(prefix):
                    continue
                removed = a.version_id in self.removed
                if a.marker:
                    if not a.pruned:
                        out.add((a.key, a.version_id, REMOVED_MARKER))
                    continue
                if removed:
                    out.add((a.key, a.version_id, REMOVED_DELETE))
                if not removed or not home_faulted(a.key, stamp_ms(a.version_id)):
                    out.add((a.key, a.version_id, CREATED_PUT))
        return out

    def removals_only(self, prefix: str, events: list[Event]) -> int:
        """Acknowledged versions whose removal came but never their creation."""
        seen = {(e.version_id, e.name) for e in events}
        with self.lock:
            return sum(
                1
                for a in self.acked.values()
                if a.key.startswith(prefix)
                and not a.marker
                and (a.version_id, REMOVED_DELETE) in seen
                and (a.version_id, CREATED_PUT) not in seen
            )

    def check_events(self, prefix: str, events: list[Event]) -> list[str]:
        """Nothing unexplained, and each key's acknowledged versions in order of
        their sequencers as they were acknowledged (one writer, one after
        another); arrival order may differ (a home down: see the README)."""
        out: list[str] = []
        with self.lock:
            acked = dict(self.acked)
            pruned = set(self.pruned)
            sent, deletes = set(self.sent_md5), list(self.deletes)
        seq_of: dict[tuple[str, str], str] = {}
        for e in events:
            if not e.key.startswith(prefix):
                out.append(f"an event outside the prefix {prefix!r}: {e.key}")
            known = acked.get(e.version_id)
            if e.name == CREATED_PUT:
                if known is None and e.etag not in sent:
                    out.append(f"an event of a version nobody wrote: {e.key} {e.version_id}")
                seq_of[e.key, e.version_id] = e.sequencer
            elif e.name == REMOVED_MARKER:
                ms = stamp_ms(e.version_id)
                if known is None and not any(
                    k == e.key and t0 - SKEW_MARGIN_MS <= ms <= t1 + SKEW_MARGIN_MS
                    for k, t0, t1 in deletes
                ):
                    out.append(f"an event of a marker nobody made: {e.key} {e.version_id}")
                seq_of[e.key, e.version_id] = e.sequencer
            elif (
                e.name == REMOVED_DELETE
                and e.version_id not in pruned
                # A write's earlier try removed by its retry (new stamp): never
                # acknowledged, and its creation came first.
                and (known is not None or (e.key, e.version_id) not in seq_of)
            ):
                out.append(f"an event of a removal nobody made: {e.key} {e.version_id}")
        for key in {a.key for a in acked.values() if a.key.startswith(prefix)}:
            order = [a.version_id for a in acked.values() if a.key == key]
            by_seq = sorted((v for v in order if (key, v) in seq_of), key=lambda v: seq_of[key, v])
            if by_seq != [v for v in order if (key, v) in seq_of]:
                out.append(f"{key}: sequencers order its versions {by_seq}, acknowledged {order}")
        return out

    def late_arrivals(self, events: list[Event]) -> int:
        """Acknowledged versions whose first event came after that of a version
        acknowledged after them (allowed: a key's first-AZ home was down)."""
        with self.lock:
            rank = {v: i for i, v in enumerate(self.acked)}
        late, newest = 0, dict[str, int]()
        for e in events:
            r = rank.get(e.version_id)
            if r is None or e.name == REMOVED_DELETE:
                continue
            if r < newest.get(e.key, -1):
                late += 1
            newest[e.key] = max(newest.get(e.key, -1), r)
        return late


def versions_of(c: Client, bucket: str, key: str) -> list[VersionEntry]:
    """Every version and marker of one key, newest first (as S3 lists them)."""
    out: list[VersionEntry] = []
    for page in c.iter_object_versions(bucket, prefix=key):
        out += [v for v in page.versions if v.key == key]
    return out


class Subscriber:
    """Events of one prefix of a bucket, kept in arrival order."""

    def __init__(self, cluster: DevCluster, traffic: Traffic, bucket: str, prefix: str) -> None:
        self.cluster = cluster
        self.traffic = traffic
        self.bucket = bucket
        self.prefix = prefix
        self.events: list[Event] = []
        self.cursor: str | None = None
        self.started = threading.Event()
        #: Set to end the stream (after the end of the run has read it dry).
        self.done = threading.Event()
        self.resumed = 0

    def thread(self) -> threading.Thread:
        return self.traffic.thread(f"events-{self.prefix}", self._run)

    def seen(self) -> set[tuple[str, str, str]]:
        return {(e.key, e.version_id, e.name) for e in list(self.events)}

    def _run(self) -> None:
        with self.cluster.client() as c:
            for _ in range(10_000):
                if self.done.is_set():
                    return
                stream = c.subscribe_events(
                    self.bucket, self.prefix, cursor=self.cursor, heartbeats=True, heartbeat_s=1.0
                )
                try:
                    for m in stream:
                        self.cursor = m.cursor
                        self.started.set()
                        if isinstance(m, Event):
                            self.events.append(m)
                        if self.done.is_set():
                            return
                except errors.TristoreError as exc:
                    # The SDK resumes on another node by itself; this is for
                    # when every node it tried failed (a partition, say).
                    self.traffic.count("events", exc)
                    self.resumed += 1
                    self.done.wait(1.0)
                finally:
                    stream.close()  # type: ignore[attr-defined]
            raise AssertionError("the event stream broke 10,000 times")


def wait_for(pred: Callable[[], bool], timeout: float, interval: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
