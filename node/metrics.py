"""Storage-node metrics (DESIGN.md §6), next to the code that moves them."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FSYNC_SECONDS = Histogram(
    "tristore_node_fsync_seconds",
    "Time of one synced RocksDB write (one group commit).",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
WRITE_BATCH_SIZE = Histogram(
    "tristore_node_write_batch_size",
    "Writes that shared one group commit (one fsync).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
PEER_BATCH_SIZE = Histogram(
    "tristore_node_peer_batch_size",
    "Operations one message to a peer carried: commits and metadata reads to a "
    "node, checks and records to a witness (tristore/batcher.py).",
    ["peer"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
HINTS_PENDING = Gauge(
    "tristore_node_hints_pending",
    "Writes this node holds for an unreachable home node, not yet handed back.",
)
HINTS_HANDED_OFF = Counter(
    "tristore_node_hints_handed_off_total",
    "Hinted writes handed back to their home node.",
)
KEYS_REHOMED = Counter(
    "tristore_node_keys_rehomed_total",
    "Keys this node found it held for another node of its AZ after a cluster map change.",
)
MAP_EPOCH = Gauge(
    "tristore_node_cluster_map_epoch",
    "Epoch of the cluster map this node places keys by.",
)
CHANGE_LOG_SEQ = Gauge(
    "tristore_node_change_log_sequence",
    "Sequence number of the newest entry in this node's change log.",
)
GC_BODIES = Counter(
    "tristore_node_gc_bodies_total",
    "Superseded or abandoned object bodies deleted after their grace period.",
)
QUORUM_FAILURES = Counter(
    "tristore_quorum_failures_total",
    "Requests (writes, reads, write-backs) that failed because no node of an AZ answered, by AZ.",
    ["az"],
)
NODES_UP = Gauge(
    "tristore_cluster_nodes_up",
    "Nodes this node currently sees as healthy, by AZ (itself included).",
    ["az"],
)
NODES_TOTAL = Gauge(
    "tristore_cluster_nodes",
    "Nodes in the cluster map, by AZ.",
    ["az"],
)
OBJECT_BYTES = Counter(
    "tristore_object_bytes_total",
    "Object body bytes this node coordinated, by direction (in = PUT, out = GET).",
    ["direction"],
)
CACHE_HITS = Counter(
    "tristore_cache_hits_total",
    "Reads served from the coordinator's metadata cache (the witness confirmed it current).",
)
CACHE_MISSES = Counter(
    "tristore_cache_misses_total",
    "Reads that went to the storage replicas instead of the cache.",
)
CACHE_BYTES = Gauge("tristore_cache_bytes", "Bytes held by the coordinator's metadata cache.")
CACHE_ENTRIES = Gauge(
    "tristore_cache_entries", "Versions held by the coordinator's metadata cache."
)
WITNESS_CALLS = Counter(
    "tristore_witness_calls_total",
    "Batched calls this coordinator made to witnesses, by kind (check, record).",
    ["kind"],
)
WITNESS_UNKNOWN = Counter(
    "tristore_witness_unknown_answers_total",
    "Witness majority reads that answered unknown (the read fell back to the replicas).",
)
WITNESS_FENCED = Counter(
    "tristore_witness_records_fenced_total",
    "Records a witness refused because it restarted since the change began; the "
    "coordinator re-read the nodes and recorded what they hold.",
)
WRITE_BACKS = Counter(
    "tristore_write_backs_total",
    "Unfinished versions found by a read and finished (written back to three AZs, recorded).",
)
EVENTS_SENT = Counter(
    "tristore_events_sent_total",
    "Object-created and object-removed events this node sent to subscribers.",
)
EVENT_STREAMS = Gauge(
    "tristore_event_streams",
    "Event subscriptions (EventService.Subscribe streams) this node serves now.",
)
REPAIR_VERSIONS_WRITTEN = Counter(
    "tristore_repair_versions_written_total",
    "Records (versions, current records) anti-entropy repair wrote back to an AZ that "
    "lacked them or held an older record, by AZ.",
    ["az"],
)
REPAIR_KEYS_CHECKED = Counter(
    "tristore_repair_keys_checked_total",
    "Keys anti-entropy repair compared across their three AZs.",
)
