"""Configuration: one TOML file per cluster -> frozen dataclasses.

Every default lives here, in the dataclass fields, and nowhere else. Any scalar
field can be overridden from the environment as ``TRISTORE_<SECTION>_<FIELD>``
(for example ``TRISTORE_NODE_CHUNK_SIZE=262144``). The configuration table
of docs/configuration.md is this module, written out.

Example file::

    [cluster]
    name = "local"
    id = 1
    epoch = 1
    data_dir = "/var/lib/tristore"

    [node]
    chunk_size = 1048576

    [[nodes]]
    name = "a1"
    id = 1
    az = "az-a"
    grpc = "127.0.0.1:7101"
    metrics = "127.0.0.1:9101"
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tristore.errors import InvalidArgument
from tristore.tls import DOOR_PORT_OFFSET
from tristore.tls import Files as TlsFiles
from tristore.tls import internal_address as _internal_address

ENV_PREFIX = "TRISTORE_"
#: The largest [node] chunk_size (and so the largest chunk a replica stores).
MAX_CHUNK_SIZE = 4 * 1024 * 1024


@dataclass(frozen=True)
class ClusterSection:
    name: str = "local"
    #: Small integer that makes stamps unique across clusters (0..65535).
    id: int = 1
    #: Version of the cluster map; raised on every change to it.
    epoch: int = 1
    #: Each process keeps its state in ``data_dir/<process name>``.
    data_dir: str = "./data"
    #: Largest distance (ms) a stamp from elsewhere may be ahead of a process's
    #: own clock: a witness refuses to record it and a node refuses to move its
    #: clock to it (InvalidArgument), so one bad clock or forged stamp cannot
    #: drag every later version id into the future. Keep it above the clock
    #: skew between the cluster's hosts.
    max_clock_skew_ms: int = 1000
    #: Run every server process under Linux's SCHED_BATCH policy
    #: (tristore/server.py set_batch_scheduling): a process woken by a
    #: message does not preempt the one that sent it, which finishes its
    #: event-loop turn first, so more work shares each message and fewer
    #: context switches are made. Turn off on a host whose other programs
    #: must not wait for a tristore process's time slice to end.
    sched_batch: bool = True


@dataclass(frozen=True)
class NodeSection:
    #: Bodies are stored and streamed in chunks of this many bytes.
    chunk_size: int = 1024 * 1024
    #: Bodies up to this size travel inline with the metadata (one RPC, one record).
    inline_max: int = 64 * 1024
    #: Largest object a single PUT accepts (S3: 5 GiB).
    max_object_size: int = 5 * 1024**3
    #: Deadline of one node-to-node call.
    replica_timeout_s: float = 5.0
    #: A body stream between nodes (ReadData, Stage) that moves nothing for
    #: this long is given up: a read goes on from another holder, a write
    #: fails (retriable). A frozen peer otherwise held it for a minute or more.
    stream_timeout_s: float = 15.0
    #: Most commits and metadata reads one batched call to a peer carries;
    #: concurrent requests for a peer share a call (see tristore/batcher.py).
    replica_max_batch: int = 512
    #: Batched calls to one peer in flight at once, for commits and for reads
    #: each (apart: see node/peers.py).
    replica_max_inflight: int = 2
    #: How many nodes coordinate the small writes (PutSmallObject and
    #: DeleteObject on the door) of the whole cluster: every other node relays
    #: them there (node/relay.py), so that the writes of many clients share
    #: each round's messages. 0: every node coordinates the writes it takes.
    #: Worth it where the nodes share a host's cores (``tristore dev up`` sets
    #: half of them); with a node per machine, 0 spreads the work.
    write_coordinators: int = 0
    #: Most items one batched replication call (ApplyReplicas,
    #: PutReplicationStatuses) may carry; more is refused with InvalidArgument.
    replication_max_batch: int = 1000
    #: How long a peer that failed a call is skipped before it is tried again.
    peer_down_s: float = 1.0
    #: How often the node probes its peers' health while one is down, marked
    #: down or not connected (while all are up over open connections, the loop
    #: sleeps until an idle probe is due or a connection changes state).
    probe_interval_s: float = 0.5
    #: How long a peer that is up over an open connection may go unheard from
    #: (no probe, no map comparison either way) before it is probed with an
    #: RPC (a peer that dies closes its connection and is probed at the next
    #: ``probe_interval_s``; this bounds how long a hung one goes unseen).
    #: Above ``map_sync_max_interval_s``: an idle cluster's map comparisons
    #: stand in for its probes.
    probe_idle_interval_s: float = 15.0
    #: How often hints are offered back to their home nodes while any are held
    #: (holding none, the loop waits for a write that adds one).
    hint_interval_s: float = 0.5
    #: Superseded bodies are deleted this long after they were replaced, so a
    #: GET that started on them still finishes.
    gc_grace_s: float = 600.0
    #: Staged chunks with no commit after this long are abandoned uploads.
    stage_ttl_s: float = 3600.0
    #: Most writes one group commit (one fsync) carries.
    group_commit_max: int = 512
    #: Added to the wall clock; for tests that inject clock skew.
    clock_offset_ms: int = 0
    #: Bytes of finished versions (metadata, and bodies up to inline_max) the
    #: coordinator keeps; the witness tells it when an entry is still current.
    cache_bytes: int = 64 * 1024 * 1024
    #: DELIBERATELY BROKEN, for tests only: serve reads from the cache without
    #: asking the witness. Reads can then be stale; the linearizability checker
    #: must catch it.
    unsafe_skip_witness: bool = False
    #: DELIBERATELY BROKEN, for tests only: a write does not learn the key's
    #: floor (node/protocol.py), so a node whose clock is behind stamps writes
    #: below acknowledged ones, and they never become current: acknowledged
    #: writes vanish, which the linearizability checker must catch.
    unsafe_skip_floor: bool = False
    #: DELIBERATELY UNSAFE, for benchmarks and tests only (like etcd's
    #: --unsafe-no-fsync): group commits are written but never fsynced, so a
    #: power cut loses acknowledged writes; the power-loss test must catch it.
    unsafe_no_fsync: bool = False
    #: Worker threads for RocksDB reads.
    read_threads: int = 4
    #: RocksDB block cache size.
    block_cache_bytes: int = 64 * 1024 * 1024
    #: RocksDB's own info log (the data directory's LOG): rolled at this size,
    #: and this many rolled files kept (each start rolls one too).
    rocksdb_log_max_bytes: int = 16 * 1024 * 1024
    rocksdb_log_files: int = 5
    #: Times a write is re-stamped when a replica already holds a newer stamp
    #: (and tries of a compare-and-swap on a key that keeps changing).
    restamp_attempts: int = 4
    #: Rounds of "witnesses refused the record; read the nodes and record again".
    confirm_attempts: int = 3
    #: Records each node returns per scan round of a listing.
    list_scan_batch: int = 1000
    #: Keys of one listing page read in full at once when the witness doubts them.
    list_verify_parallel: int = 32
    #: Chunks of a large body queued for each replica it is staged on.
    stage_queue_chunks: int = 4
    #: How often superseded bodies and abandoned staged chunks that are due are
    #: deleted (at most: while none falls due sooner, the collector sleeps until
    #: the first does, at most the shorter of gc_grace_s and stage_ttl_s).
    gc_interval_s: float = 5.0
    #: Change-log entries are kept at least this long (for event subscribers,
    #: whose cursors then expire), and until every replicator has read those
    #: awaiting replication.
    changelog_retention_s: float = 86_400.0
    #: How often the change log is trimmed.
    changelog_trim_interval_s: float = 60.0
    #: Most entries one trim removes (one write batch).
    changelog_trim_batch: int = 10_000
    #: A removed version's marker (which keeps a late copy of the version from
    #: coming back) is collected this long after the removal, once no node of
    #: the key's AZs holds the version (node/tombstones.py).
    tombstone_retention_s: float = 86_400.0
    #: How often the markers are looked through, and how many at most at once.
    tombstone_check_s: float = 60.0
    tombstone_batch: int = 1_000
    #: Free bytes the node keeps on the disk of its data directory: below
    #: this it refuses new data (StorageFull; the AZ's other node takes the
    #: write with a hint) and goes on serving reads (node/disk.py).
    disk_reserve_bytes: int = 128 * 1024 * 1024
    #: Free bytes beyond the reserve before writes are taken again.
    disk_resume_bytes: int = 32 * 1024 * 1024
    #: How often the free space is looked at while the node writes (or is full).
    disk_check_s: float = 1.0
    #: How often it is looked at while the node writes nothing (a write makes
    #: it look at once): how late an idle node sees a disk another process filled.
    disk_idle_check_s: float = 10.0
    #: Hinted keys handed to one home at once.
    handoff_parallel: int = 16
    #: A hinted key that cannot be handed over (the others go on without it)
    #: is tried again after hint_interval_s, then twice as long each time,
    #: at most this long apart.
    handoff_retry_max_s: float = 30.0
    #: Recently changed keys whose last commit the store remembers, so that
    #: hinted handoff drops a stand-in copy only if the key did not change after
    #: it was shipped (a key forgotten counts as changed: its copy is kept and
    #: offered again).
    handoff_touched_remembered: int = 200_000
    #: How often peers compare cluster maps while something changes (a peer
    #: coming up or going down, a new map, handoffs starting here wake the
    #: loop at once; nothing is polled); also the deadline of one comparison.
    map_sync_interval_s: float = 1.0
    #: Longest time between two map comparisons while nothing changes (the
    #: interval doubles from ``map_sync_interval_s`` up to this).
    map_sync_max_interval_s: float = 10.0
    #: Internal reads and deletes one multipart request (list, complete, abort)
    #: runs at once.
    multipart_parallel: int = 32
    #: A multipart upload neither completed nor aborted this long after it was
    #: created is aborted, its parts deleted (as S3's lifecycle rule
    #: AbortIncompleteMultipartUpload, and MinIO's stale upload expiry, do); 0
    #: keeps them until a client ends them.
    multipart_expiry_s: float = 7 * 86_400.0
    #: How often one node of the cluster looks for uploads past multipart_expiry_s.
    multipart_expiry_check_s: float = 3_600.0
    #: Keys repair compares (and writes back) at once.
    repair_parallel_keys: int = 16
    #: Keys between two progress reports of a repair.
    repair_report_every: int = 200
    #: Records each node returns per scan round while repair finds the keys.
    repair_scan_batch: int = 1000
    #: Seconds between two tries of a rebuild (new data directory) that could
    #: not compare every key.
    repair_rebuild_retry_s: float = 30.0
    #: Seconds from the end of one background scrub of a node (every record and
    #: body chunk read and its checksum verified, damaged ones written over
    #: from another holder) to the start of the next; 0: no background scrub
    #: (``tristore admin scrub`` still runs one).
    scrub_interval_s: float = 7 * 86_400.0
    #: Bytes a second the background scrub reads at most (``admin scrub`` is
    #: not paced).
    scrub_bytes_per_s: int = 8 * 1024 * 1024
    #: Bytes one step of a scrub reads on a read thread before it reports,
    #: repairs what it found and is paced.
    scrub_step_bytes: int = 4 * 1024 * 1024
    #: Change-log entries a node reads from RocksDB at once for a subscription.
    events_scan_batch: int = 1024
    #: Most change-log entries one ReadNodeEvents call looks at (then it
    #: answers, so that one call over a long log of other buckets' changes
    #: stays short).
    events_scan_max: int = 16 * 1024
    #: Events one ReadNodeEvents call returns (whole entries: it may overshoot).
    events_read_limit: int = 256
    #: How long a ReadNodeEvents call waits for an event before answering with none.
    events_wait_s: float = 1.0
    #: A node whose events could not be read is asked again after this long,
    #: doubling up to ``events_retry_max_s``.
    events_retry_s: float = 0.25
    #: Longest wait before a node whose events could not be read is asked again.
    events_retry_max_s: float = 2.0
    #: Heartbeat interval of a subscription whose subscriber does not choose one.
    events_heartbeat_s: float = 5.0
    #: Events remembered per subscription, so that a change a log holds twice
    #: (a version handed back that its home already had) is sent once.
    events_dedup_remembered: int = 65_536
    #: A node whose process started less than this before a subscription "from
    #: now" began (while it was down) counts as started after it, and gives
    #: every event since its start: clocks differ, and a few events too many
    #: are harmless where one too few is lost.
    events_boot_margin_ms: int = 60_000
    #: Longest a ReadLog call (a replicator's long poll) waits for a new entry;
    #: the store wakes it as soon as one lands.
    read_log_max_wait_ms: int = 20_000
    #: Deadline of asking one replicator for its status (``admin status``).
    replicator_status_timeout_s: float = 2.0
    #: Chunks of a body a GET fetches ahead of what it has sent, in parallel
    #: ReadData streams of a quarter of them each, spread over the holders
    #: (the bound on a GET's buffered bytes). 1: one stream from one holder,
    #: which reads its next chunk while it sends one; the cheapest in CPU, and
    #: the fastest where the cores are busy (more streams pay off only with
    #: idle cores, or latency, between the nodes).
    read_ahead_chunks: int = 1
    #: The S3 HTTP API's domain for virtual-host addressing: a request to
    #: ``BUCKET.<s3_domain>[:port]`` addresses BUCKET (its path is the key).
    #: Empty: path style only (``/BUCKET/KEY``), which every request may use anyway.
    s3_domain: str = ""


@dataclass(frozen=True)
class WitnessSection:
    #: Keys one witness remembers; past that it forgets the least recently
    #: written ones (and answers "unknown" for them, which is always safe).
    max_keys: int = 5_000_000
    #: Deadline of one coordinator-to-witness call.
    timeout_s: float = 1.0
    #: Most keys one batched witness call carries.
    max_batch: int = 4096
    #: A check goes to a bare majority of the key's group; a member of it that
    #: has not answered after this long is joined by the next member.
    check_hedge_s: float = 0.2


@dataclass(frozen=True)
class ReplicatorSection:
    #: Change-log entries read from a node per call.
    batch: int = 256
    #: How often an idle replicator looks for new changes.
    poll_interval_s: float = 0.2
    #: Refusals retrying cannot change before a version is FAILED and parked (an
    #: unreachable cluster is retried for as long as it takes).
    max_attempts: int = 5
    #: First retry delay; doubles per attempt.
    retry_backoff_s: float = 0.2
    #: A version replicated later than this after its write counts as a threshold miss.
    threshold_s: float = 900.0
    #: Deadline of one call to a node of either cluster.
    timeout_s: float = 30.0
    #: Versions one replicator works on at once.
    parallel: int = 256
    #: Of those, versions with large bodies (streamed by ApplyReplica) at once.
    streams: int = 32
    #: Most small versions one ApplyReplicas call carries, and most status
    #: updates one PutReplicationStatuses call carries.
    max_batch: int = 128
    #: Batched calls to one cluster in flight at once (each of the two kinds).
    max_inflight: int = 4
    #: How long a bucket's replication rules are reused before they are read again.
    rules_ttl_s: float = 2.0
    #: Longest wait between two tries of one version.
    max_backoff_s: float = 5.0
    #: Times a version the source says it does not have is looked for before it is dropped.
    gone_checks: int = 5
    #: Tries of a status update the source answers "retry" to (the version's own
    #: change may still be in flight).
    status_tries: int = 8
    #: How long a read of a change log waits at the node for a new entry (long
    #: poll: the node answers as soon as one is synced).
    log_wait_ms: int = 20_000
    #: After a batch shorter than a full one, wait this long before reading that
    #: log again, so a busy log's entries travel in batches, not an RPC per group
    #: commit (a change after a quiet spell is still read at once: the read is
    #: waiting at the node). Each batch's versions go to the destination in one
    #: ApplyReplicas call, and a destination's apply costs far less a version in
    #: a call of several (at 150 PUT/s, 0.05 against 0.01: 3.6 against 4.1 ms
    #: of destination CPU a version, and half the lag, as the clusters saturate
    #: later).
    log_gather_s: float = 0.05
    #: A status update (COMPLETED, FAILED) waits up to this long for others to
    #: share its PutReplicationStatuses call (one that is full leaves at once):
    #: no one waits on a status, and the source's cost of a status is mostly
    #: the call's and its write's, not the item's (at 65 PUT/s, about one
    #: status a call without it).
    status_linger_s: float = 0.2
    #: Status updates in calls the source has not answered yet, past which
    #: the tails stop reading ahead until some are through: a source too busy
    #: to record them (a backfill's requeues) is not given more replication
    #: to do meanwhile.
    max_owed_statuses: int = 128
    #: Batches of one log whose statuses may be on their way at once: the
    #: tail reads on meanwhile, and waits for the oldest beyond that (what a
    #: replicator holds in memory for a log whose source is slow to answer).
    max_owed_batches: int = 8
    #: A version whose record changed at least this long after its write,
    #: other than by a change of its tags or ACL, was queued again (by a
    #: backfill or a replay): a batch of the change log holding one is
    #: paced, the tail reading on only once its statuses are recorded, so a
    #: source queueing a backfill is not also handed its replication as fast
    #: as it queues (see ``paced_busy_s``). Shorter than this, the change is
    #: a status recorded for one destination while another is still PENDING.
    paced_after_s: float = 5.0
    #: Off (0) by default. Above 0: a paced batch whose statuses took longer
    #: than this to be recorded found the source busy (queueing a backfill),
    #: and the tail's next read waits its turn after the other tails' paced
    #: batches, one at a time, until the source answers faster. The backfill
    #: command then gets more of the source, and a write made during it waits
    #: longer behind the requeues in its log. A backfill of 10,000 on one
    #: 2-core machine, with 0.5: queued at 1,220-1,410/s against 940-1,090/s,
    #: `verify` clean after 24-26 s against 22-27 s, and PUTs at 20/s made
    #: during it replicated with p90 lag 22-26 s against 9.3-9.6 s.
    paced_busy_s: float = 0.0
    #: A small version's apply waits up to this long for others (read from
    #: any log) to share its ApplyReplicas call; a full call leaves at once.
    #: At a moderate rate the destination then writes them together (at 65-130
    #: PUT/s, 0.1-0.4 calls a version against 0.3-0.9, and 10-25% less CPU
    #: there); the lag grows by at most this much.
    apply_linger_s: float = 0.03
    #: How often, at start, a cluster no node of answered is tried again.
    cluster_probe_s: float = 1.0
    #: How often the "waiting for" line is repeated.
    waiting_log_every_s: float = 5.0
    #: How often the source cluster's map is read (nodes that joined or left).
    map_watch_s: float = 5.0
    #: Versions remembered as done, so the other copies of their log entries are skipped.
    done_remembered: int = 100_000
    #: Most entries this replicator's dead-letter queue keeps (the oldest go
    #: first). A dropped entry loses nothing: its version stays FAILED at the
    #: source, where `replication dlq list|replay` find it.
    dlq_max_entries: int = 100_000
    #: Entries parked longer ago than this are dropped from the queue (14 days).
    dlq_retention_s: float = 14 * 86400.0
    #: How often the queue is checked for entries past dlq_retention_s.
    dlq_check_s: float = 60.0


@dataclass(frozen=True)
class KmsSection:
    #: The master-key file of the local key-file provider (``tristore.kms``):
    #: every process of a cluster reads the same keys. Relative paths are
    #: relative to the config file; empty means ``<data_dir>/master.key``.
    #: ``dev up``, ``tristore admin kms init`` and ``admin bootstrap`` (compose:
    #: the init container) create it; a process never creates it itself (two
    #: made separately would not match).
    key_file: str = ""


@dataclass(frozen=True)
class TlsSection:
    #: Serve and dial plaintext, with no certificates and the internal services
    #: open to anyone who can reach the port. For experiments only; every
    #: process logs a WARNING at start.
    insecure: bool = False
    #: The cluster CA's certificate (PEM): what peers' and clients' certificates
    #: are checked against. It may hold several CAs (the other cluster's, for
    #: replication). Relative paths are relative to the config file.
    ca_file: str = "tls/ca.crt"
    #: This process's certificate; ``{name}`` is replaced by the process's
    #: name. Re-read when the file changes (or on SIGHUP): no restart.
    cert_file: str = "tls/{name}.crt"
    #: This process's private key (keep it 0600); ``{name}`` as above.
    key_file: str = "tls/{name}.key"
    #: Every process serves the cluster-internal services (mutual TLS, a
    #: cluster certificate required) on its gRPC port plus this.
    internal_port_offset: int = 1000
    #: Every storage node and witness serves its pipe (the long-lived stream
    #: peers send commits, reads, checks and records on: tristore/framed.py)
    #: on its gRPC port plus this, mutual TLS like the internal port.
    pipe_port_offset: int = 1100
    #: Every storage node serves the door (a client's small calls on one
    #: long-lived TLS stream, no client certificate, every call signed:
    #: tristore/door.py) on its gRPC port plus this; 0: no door (clients use
    #: gRPC). Clients find it at the same offset (``TRISTORE_DOOR_PORT_OFFSET``).
    door_port_offset: int = DOOR_PORT_OFFSET


@dataclass(frozen=True)
class AuthSection:
    #: Every call of the public services must be signed (``tristore.sigv4``);
    #: false lets unsigned calls in as the root user (a trusted test bench only).
    enabled: bool = True
    #: The bootstrap root user's access key id (root has the admin role). ``dev
    #: up`` generates it; other users and keys live in the cluster.
    root_access_key_id: str = ""
    #: A file holding the root secret key, sealed under the cluster master key
    #: (``tristore.kms``, purpose bound to the key id). Relative paths are
    #: relative to this config file.
    root_secret_file: str = ""
    #: The bootstrap replication principal (role ``replication``: it may only
    #: apply replicas, to the buckets it names) that other clusters' replicators
    #: sign as. Empty: none (make one with ``tristore admin user add``).
    replication_access_key_id: str = ""
    #: Its sealed secret, like ``root_secret_file``.
    replication_secret_file: str = ""
    #: Buckets the bootstrap replication principal may apply replicas to,
    #: comma-separated, ``*`` for every bucket.
    replication_buckets: str = "*"
    #: Seconds a node trusts what it read of the user table and of a bucket's
    #: owner and policy: a revoked key, a removed user or a changed policy takes
    #: effect on every node within this bound (at once on the node that took it).
    cache_s: float = 2.0


#: A node takes new writes for the keys it is home to.
ACTIVE = "active"
#: A draining node takes no new writes (unless every active node of its AZ is
#: down) and hands what it holds to the nodes now home to it.
DRAINING = "draining"
NODE_STATES = (ACTIVE, DRAINING)


@dataclass(frozen=True)
class NodeSpec:
    name: str
    id: int
    az: str
    grpc: str
    metrics: str
    #: ``active`` or ``draining`` (``tristore admin drain`` sets it; the map's
    #: epoch rises with every change).
    state: str = ACTIVE
    #: ``HOST:PORT`` of the node's S3 HTTP endpoint (node/s3/); empty: none.
    #: HTTPS with the node's certificate unless ``[tls] insecure``.
    s3: str = ""


@dataclass(frozen=True)
class WitnessSpec:
    name: str
    #: Witness group this member belongs to (majority reads and writes inside it).
    group: int
    grpc: str
    metrics: str


@dataclass(frozen=True)
class ReplicatorSpec:
    name: str
    grpc: str
    metrics: str


@dataclass(frozen=True)
class RemoteSpec:
    """Another cluster replication rules may name as a destination."""

    name: str
    #: Its nodes' gRPC addresses, comma-separated.
    endpoints: str
    #: The access key id replicators sign with there (a replication principal
    #: of that cluster).
    access_key_id: str = ""
    #: The file with its secret, sealed under this cluster's master key
    #: (purpose bound to the key id); relative to this config file.
    secret_file: str = ""

    @property
    def endpoint_list(self) -> list[str]:
        return [e.strip() for e in self.endpoints.split(",") if e.strip()]


@dataclass(frozen=True)
class ClusterConfig:
    cluster: ClusterSection = field(default_factory=ClusterSection)
    node: NodeSection = field(default_factory=NodeSection)
    witness: WitnessSection = field(default_factory=WitnessSection)
    replicator: ReplicatorSection = field(default_factory=ReplicatorSection)
    kms: KmsSection = field(default_factory=KmsSection)
    tls: TlsSection = field(default_factory=TlsSection)
    auth: AuthSection = field(default_factory=AuthSection)
    nodes: tuple[NodeSpec, ...] = ()
    witnesses: tuple[WitnessSpec, ...] = ()
    replicators: tuple[ReplicatorSpec, ...] = ()
    remotes: tuple[RemoteSpec, ...] = ()
    #: Where the file was read from, if it was.
    path: str = ""

    def node_named(self, name: str) -> NodeSpec:
        for n in self.nodes:
            if n.name == name:
                return n
        raise InvalidArgument(
            f"no node named {name!r} in the cluster map "
            f"(nodes: {', '.join(n.name for n in self.nodes)})"
        )

    def witness_named(self, name: str) -> WitnessSpec:
        for w in self.witnesses:
            if w.name == name:
                return w
        raise InvalidArgument(
            f"no witness named {name!r} in the cluster map "
            f"(witnesses: {', '.join(w.name for w in self.witnesses) or 'none'})"
        )

    @property
    def witness_groups(self) -> tuple[tuple[WitnessSpec, ...], ...]:
        """Members of each witness group, groups in id order."""
        ids = sorted({w.group for w in self.witnesses})
        return tuple(tuple(w for w in self.witnesses if w.group == g) for g in ids)

    def replicator_named(self, name: str) -> ReplicatorSpec:
        for r in self.replicators:
            if r.name == name:
                return r
        raise InvalidArgument(
            f"no replicator named {name!r} in the cluster map "
            f"(replicators: {', '.join(r.name for r in self.replicators) or 'none'})"
        )

    def remote_named(self, name: str) -> RemoteSpec:
        for r in self.remotes:
            if r.name == name:
                return r
        raise InvalidArgument(
            f"no remote cluster named {name!r} in the cluster map "
            f"(remotes: {', '.join(r.name for r in self.remotes) or 'none'})"
        )

    @property
    def azs(self) -> tuple[str, ...]:
        return tuple(sorted({n.az for n in self.nodes}))

    @property
    def kms_key_file(self) -> Path:
        """Where the master keys are (``[kms] key_file``, relative to this
        config file like every other file it names; or its default)."""
        if self.kms.key_file:
            return self.relative(self.kms.key_file)
        return Path(self.cluster.data_dir) / "master.key"

    def relative(self, path: str) -> Path:
        """``path`` as given in this config (relative to the file's directory)."""
        p = Path(path)
        if not p.is_absolute() and self.path:
            p = Path(self.path).parent / p
        return p

    def tls_files(self, name: str) -> TlsFiles:
        """The CA, certificate and key files of process ``name`` (``[tls]``)."""
        return TlsFiles(
            self.relative(self.tls.ca_file),
            self.relative(self.tls.cert_file.replace("{name}", name)),
            self.relative(self.tls.key_file.replace("{name}", name)),
        )

    def internal_address(self, public: str) -> str:
        """The internal (mutual TLS) listener of the process serving ``public``."""
        return _internal_address(public, self.tls.internal_port_offset)

    def pipe_address(self, public: str) -> str:
        """The pipe port (mutual TLS, framed messages) of the process serving ``public``."""
        return _internal_address(public, self.tls.pipe_port_offset)

    def door_address(self, public: str) -> str | None:
        """The door port of the node serving ``public`` (None: no door)."""
        if not self.tls.door_port_offset:
            return None
        return _internal_address(public, self.tls.door_port_offset)

    def data_dir_for(self, name: str) -> Path:
        base = Path(self.cluster.data_dir)
        if not base.is_absolute() and self.path:
            base = Path(self.path).parent / base
        return base / name


T = TypeVar("T")


def _coerce(value: Any, typ: Any, where: str) -> Any:
    origin = typing.get_origin(typ)
    if typ is bool:
        if isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise InvalidArgument(f"{where}: expected a boolean, got {value!r}")
        if isinstance(value, bool):
            return value
    elif typ is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise InvalidArgument(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise InvalidArgument(f"{where}: expected an integer, got {value!r}") from None
    elif typ is float:
        if isinstance(value, bool):
            raise InvalidArgument(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise InvalidArgument(f"{where}: expected a number, got {value!r}") from None
    elif typ is str:
        if isinstance(value, str):
            return value
    elif origin in (types.UnionType, typing.Union):
        return value
    else:
        return value
    raise InvalidArgument(f"{where}: expected {getattr(typ, '__name__', typ)}, got {value!r}")


def _section(cls: type[T], raw: Mapping[str, Any], name: str, env: Mapping[str, str]) -> T:
    if not isinstance(raw, Mapping):
        raise InvalidArgument(f"[{name}] must be a table")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(raw) - known
    if unknown:
        raise InvalidArgument(
            f"[{name}] has unknown keys {sorted(unknown)}; known keys: {sorted(known)}"
        )
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        env_key = f"{ENV_PREFIX}{name.upper()}_{f.name.upper()}"
        if env_key in env:
            values[f.name] = _coerce(env[env_key], hints[f.name], env_key)
        elif f.name in raw:
            values[f.name] = _coerce(raw[f.name], hints[f.name], f"[{name}] {f.name}")
    return cls(**values)


def _spec(cls: type[T], raw: Any, where: str) -> T:
    """One ``[[nodes]]`` or ``[[witnesses]]`` entry: every field without a default required."""
    if not isinstance(raw, Mapping):
        raise InvalidArgument(f"{where} must be a table")
    hints = typing.get_type_hints(cls)
    all_fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    fields = [f.name for f in all_fields]
    required = [f.name for f in all_fields if f.default is dataclasses.MISSING]
    missing = [k for k in required if k not in raw]
    if missing:
        raise InvalidArgument(f"{where} is missing {', '.join(missing)}")
    unknown = set(raw) - set(fields)
    if unknown:
        raise InvalidArgument(f"{where} has unknown keys {sorted(unknown)}; known keys: {fields}")
    return cls(**{k: _coerce(raw[k], hints[k], f"{where} {k}") for k in fields if k in raw})


SECTIONS: dict[str, type] = {
    "cluster": ClusterSection,
    "node": NodeSection,
    "witness": WitnessSection,
    "replicator": ReplicatorSection,
    "kms": KmsSection,
    "tls": TlsSection,
    "auth": AuthSection,
}
LISTS: dict[str, type] = {
    "nodes": NodeSpec,
    "witnesses": WitnessSpec,
    "replicators": ReplicatorSpec,
    "remotes": RemoteSpec,
}


def _check_env(env: Mapping[str, str]) -> None:
    """A mistyped TRISTORE_<SECTION>_<KEY> must not be ignored silently."""
    for var in env:
        for section, cls in SECTIONS.items():
            head = f"{ENV_PREFIX}{section.upper()}_"
            if not var.startswith(head):
                continue
            known = sorted(f.name for f in dataclasses.fields(cls))
            if var[len(head) :].lower() not in known:
                raise InvalidArgument(
                    f"environment variable {var} names no [{section}] setting; known: {known}"
                )


def parse(
    raw: Mapping[str, Any], env: Mapping[str, str] | None = None, path: str = ""
) -> ClusterConfig:
    env = os.environ if env is None else env
    allowed = {*SECTIONS, *LISTS}
    unknown = set(raw) - allowed
    if unknown:
        raise InvalidArgument(f"unknown sections {sorted(unknown)}; known: {sorted(allowed)}")
    _check_env(env)
    lists: dict[str, Any] = {
        name: tuple(
            _spec(cls, item, f"[[{name}]] #{i + 1}") for i, item in enumerate(raw.get(name, []))
        )
        for name, cls in LISTS.items()
    }
    sections: dict[str, Any] = {
        name: _section(cls, raw.get(name, {}), name, env) for name, cls in SECTIONS.items()
    }
    cfg = ClusterConfig(**sections, **lists, path=path)
    validate(cfg)
    return cfg


def validate(cfg: ClusterConfig) -> None:
    names = [n.name for n in cfg.nodes]
    if len(set(names)) != len(names):
        raise InvalidArgument("node names must be unique")
    ids = [n.id for n in cfg.nodes]
    if len(set(ids)) != len(ids) or any(not 0 < i < 65536 for i in ids):
        raise InvalidArgument("node ids must be unique integers in 1..65535")
    procs: list[NodeSpec | WitnessSpec | ReplicatorSpec] = [
        *cfg.nodes,
        *cfg.witnesses,
        *cfg.replicators,
    ]
    addrs = [a for p in procs for a in (p.grpc, p.metrics)]
    addrs += [n.s3 for n in cfg.nodes if n.s3]
    if len(set(addrs)) != len(addrs):
        raise InvalidArgument("every process needs its own grpc, metrics and s3 address")
    for n in cfg.nodes:
        if n.s3:
            _check_host_port(n.s3, f"node {n.name!r} s3")
    for group in cfg.witness_groups:
        if len(group) % 2 == 0:
            raise InvalidArgument(
                f"witness group {group[0].group} has {len(group)} members; use an odd number "
                "(a group of two needs both members and survives no failure)"
            )
    wnames = [w.name for w in cfg.witnesses]
    if len(set(wnames)) != len(wnames) or set(wnames) & set(names):
        raise InvalidArgument("witness names must be unique and differ from node names")
    rnames = [r.name for r in cfg.replicators]
    if len(set(rnames)) != len(rnames) or set(rnames) & {*names, *wnames}:
        raise InvalidArgument("replicator names must be unique and differ from other processes'")
    remotes = [r.name for r in cfg.remotes]
    if len(set(remotes)) != len(remotes) or cfg.cluster.name in remotes:
        raise InvalidArgument("remote cluster names must be unique and differ from [cluster] name")
    for r in cfg.remotes:
        if not r.endpoint_list:
            raise InvalidArgument(f"remote {r.name!r} lists no endpoints")
    if not 0 <= cfg.cluster.id < 65536:
        raise InvalidArgument("[cluster] id must be in 0..65535")
    if cfg.nodes and len(cfg.azs) < 3:
        raise InvalidArgument(
            f"a cluster needs nodes in at least three AZs; this map has {list(cfg.azs)}"
        )
    for n in cfg.nodes:
        if n.state not in NODE_STATES:
            raise InvalidArgument(
                f"node {n.name!r} has state {n.state!r}; states: {', '.join(NODE_STATES)}"
            )
    for az in cfg.azs:
        if not any(n.state == ACTIVE for n in cfg.nodes if n.az == az):
            raise InvalidArgument(
                f"every node of {az} is draining; an AZ needs an active node to take its writes"
            )
    if cfg.node.rocksdb_log_files < 1 or cfg.node.rocksdb_log_max_bytes < 64 * 1024:
        raise InvalidArgument(
            "[node] rocksdb_log_files must be 1 or more and rocksdb_log_max_bytes 65536 or more"
        )
    rc = cfg.replicator
    if rc.dlq_max_entries < 1 or rc.dlq_retention_s <= 0 or rc.dlq_check_s <= 0:
        raise InvalidArgument(
            "[replicator] dlq_max_entries must be 1 or more, dlq_retention_s and "
            "dlq_check_s above 0"
        )
    if cfg.auth.cache_s < 0 or cfg.auth.cache_s > 60:
        raise InvalidArgument("[auth] cache_s must be between 0 and 60 seconds")
    if bool(cfg.auth.root_access_key_id) != bool(cfg.auth.root_secret_file):
        raise InvalidArgument("[auth] root_access_key_id and root_secret_file go together")
    if bool(cfg.auth.replication_access_key_id) != bool(cfg.auth.replication_secret_file):
        raise InvalidArgument(
            "[auth] replication_access_key_id and replication_secret_file go together"
        )
    if cfg.cluster.epoch < 1:
        raise InvalidArgument("[cluster] epoch must be 1 or more")
    if cfg.node.chunk_size < 4096 or cfg.node.chunk_size > MAX_CHUNK_SIZE:
        raise InvalidArgument("[node] chunk_size must be between 4 KiB and 4 MiB")
    if cfg.node.inline_max > cfg.node.chunk_size:
        raise InvalidArgument("[node] inline_max must not exceed chunk_size")
    if cfg.cluster.max_clock_skew_ms < 1:
        raise InvalidArgument("[cluster] max_clock_skew_ms must be 1 or more")
    if not 1 <= cfg.tls.internal_port_offset < 65535:
        raise InvalidArgument("[tls] internal_port_offset must be between 1 and 65534")
    if not 1 <= cfg.tls.pipe_port_offset < 65535:
        raise InvalidArgument("[tls] pipe_port_offset must be between 1 and 65534")
    if cfg.tls.pipe_port_offset == cfg.tls.internal_port_offset:
        raise InvalidArgument("[tls] pipe_port_offset must differ from internal_port_offset")
    if not 0 <= cfg.tls.door_port_offset < 65535:
        raise InvalidArgument("[tls] door_port_offset must be between 0 (no door) and 65534")
    if cfg.tls.door_port_offset in (cfg.tls.internal_port_offset, cfg.tls.pipe_port_offset):
        raise InvalidArgument(
            "[tls] door_port_offset must differ from internal_port_offset and pipe_port_offset"
        )
    if cfg.nodes or cfg.witnesses or cfg.replicators:
        publics = {p.grpc for p in procs} | {p.metrics for p in procs}
        for what, address in (
            ("internal port", cfg.internal_address),
            ("pipe port", cfg.pipe_address),
        ):
            clash = [p.name for p in procs if address(p.grpc) in publics]
            if clash:
                offset = what.replace(" ", "_") + "_offset"
                raise InvalidArgument(
                    f"the {what} of {', '.join(clash)} (gRPC port + [tls] "
                    f"{offset}) is another process's gRPC or metrics port"
                )
    if not 1 <= cfg.node.read_ahead_chunks <= 64:
        raise InvalidArgument("[node] read_ahead_chunks must be between 1 and 64")
    if cfg.node.disk_reserve_bytes < 0 or cfg.node.disk_resume_bytes < 0:
        raise InvalidArgument("[node] disk_reserve_bytes and disk_resume_bytes must be 0 or more")
    if cfg.node.tombstone_retention_s < 0 or cfg.node.tombstone_check_s <= 0:
        raise InvalidArgument(
            "[node] tombstone_retention_s must be 0 or more and tombstone_check_s above 0"
        )
    if cfg.node.scrub_interval_s < 0 or cfg.node.scrub_bytes_per_s <= 0:
        raise InvalidArgument(
            "[node] scrub_interval_s must be 0 (never) or more and scrub_bytes_per_s above 0"
        )
    if cfg.node.scrub_step_bytes < 1:
        raise InvalidArgument("[node] scrub_step_bytes must be 1 or more")
    if cfg.node.tombstone_batch < 1:
        raise InvalidArgument("[node] tombstone_batch must be 1 or more")
    if cfg.node.multipart_expiry_s < 0 or cfg.node.multipart_expiry_check_s <= 0:
        raise InvalidArgument(
            "[node] multipart_expiry_s must be 0 (never) or more and multipart_expiry_check_s "
            "above 0"
        )
    if cfg.node.disk_check_s <= 0:
        raise InvalidArgument("[node] disk_check_s must be above 0")
    if cfg.node.stream_timeout_s <= 0:
        raise InvalidArgument("[node] stream_timeout_s must be above 0")
    if cfg.node.write_coordinators < 0:
        raise InvalidArgument(
            "[node] write_coordinators must be 0 (every node coordinates its own writes) or more"
        )


def _check_host_port(addr: str, what: str) -> None:
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(f"{what} address {addr!r} is not HOST:PORT (port 1..65535)")


def load(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> ClusterConfig:
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise InvalidArgument(f"config file {p} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise InvalidArgument(f"config file {p} is not valid TOML: {e}") from None
    return parse(raw, env, path=str(p.resolve()))


def dump(cfg: ClusterConfig) -> str:
    """Write a config back as TOML (only what the launcher needs to write)."""

    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        # A JSON string is a valid TOML basic string, control characters included.
        return json.dumps(str(v))

    lines: list[str] = []
    for name in SECTIONS:
        section = getattr(cfg, name)
        lines.append(f"[{name}]")
        for f in dataclasses.fields(section):
            lines.append(f"{f.name} = {fmt(getattr(section, f.name))}")
        lines.append("")
    for name in LISTS:
        for item in getattr(cfg, name):
            lines.append(f"[[{name}]]")
            for f in dataclasses.fields(item):
                lines.append(f"{f.name} = {fmt(getattr(item, f.name))}")
            lines.append("")
    return "\n".join(lines)
