"""Storage-node metrics (DESIGN.md §6), next to the code that moves them."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FSYNC_SECONDS = Histogram(
    "tristore_node_fsync_seconds",
    "Time of one group commit: the RocksDB write and the fdatasync of its log.",
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
RELAYED_CALLS = Counter(
    "tristore_node_relayed_calls_total",
    "Door calls (small writes) this node handed to a write coordinator "
    "([node] write_coordinators), by outcome: answered (the coordinator's answer, "
    "whatever it was), deadline (none came within the call's deadline), broken "
    "(the coordinator went away with the call, or left it unanswered for twice "
    "replica_timeout_s: the client is told UNAVAILABLE, outcome unknown, and "
    "resends it) or refused (the coordinator ran nothing: the call ran here).",
    ["outcome"],
)
HINTS_HANDED_OFF = Counter(
    "tristore_node_hints_handed_off_total",
    "Hinted writes handed back to their home node.",
)
HINTS_STUCK = Gauge(
    "tristore_node_hints_stuck",
    "Hinted writes whose last hand-off failed though their home answered (the "
    "node log names each once); tried again, with backoff, while the others go on.",
)
CONDITIONAL_AZ_REFUSALS = Counter(
    "tristore_node_conditional_az_refusals_total",
    "Conditional changes this node refused as the key's home because of another "
    "node of its AZ, by reason: newer_in_az (it held a newer record of the key, "
    "a write taken while this home was away) or unheard (it did not answer, nor did "
    "every node of the key's other AZs).",
    ["reason"],
)
REMOVED_VERSION_REFUSALS = Counter(
    "tristore_node_removed_version_refusals_total",
    "Conditional writes of a record of a version whose removal this node holds "
    "(the version below a deleted current one made current again, or an edit) it "
    "refused as the key's home: a DELETE of that version got here first.",
)
CONDITIONAL_AZ_CHECKS_ELSEWHERE = Counter(
    "tristore_node_conditional_az_checks_elsewhere_total",
    "Conditional changes this node decided for the key's first AZ while another node "
    "of its AZ did not answer, after hearing every node of the key's other AZs instead.",
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
CHANGE_LOG_ENTRIES = Gauge(
    "tristore_node_changelog_entries",
    "Entries this node's change log holds (it is trimmed past the retention and "
    "every replicator's cursor).",
)
CHANGE_LOG_TRIMMED = Counter(
    "tristore_node_changelog_trimmed_total",
    "Change-log entries trimmed (older than [node] changelog_retention_s and read "
    "by every replicator that needs them).",
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
TOMBSTONES = Gauge(
    "tristore_node_tombstones",
    "Tombstones this node holds: markers of removed versions and current records that are "
    "removals (collected [node] tombstone_retention_s after the removal, once every node of "
    "the key's AZs agrees: node/tombstones.py).",
)
TOMBSTONES_CHECKED = Counter(
    "tristore_node_tombstones_checked_total",
    "Tombstones old enough to collect that this node looked at "
    "(each asks every node of the key's AZs what it holds of the key).",
)
TOMBSTONES_COLLECTED = Counter(
    "tristore_node_tombstones_collected_total",
    "Tombstones (markers of removed versions, removals) this node collected.",
)
REMOVALS_FINISHED = Counter(
    "tristore_node_removals_finished_total",
    "Removed versions this node found still held by a node of the key's AZs "
    "tombstone_retention_s after their removal (a DELETE that missed that AZ), "
    "and removed there (node/tombstones.py).",
)
MULTIPART_EXPIRED = Counter(
    "tristore_node_multipart_uploads_expired_total",
    "Multipart uploads this node aborted because they were older than [node] multipart_expiry_s.",
)
MULTIPART_ORPHANED = Counter(
    "tristore_node_multipart_uploads_orphaned_total",
    "Unfinished multipart uploads (and their parts) this node removed because their bucket "
    "was deleted after they began.",
)
DISK_FREE_BYTES = Gauge(
    "tristore_node_disk_free_bytes",
    "Bytes free on the filesystem of this node's data directory (at the last check).",
)
DISK_FULL = Gauge(
    "tristore_node_disk_full",
    "1 while this node refuses new data for lack of disk space ([node] disk_reserve_bytes).",
)
DISK_REFUSALS = Counter(
    "tristore_node_disk_refusals_total",
    "Commits and staged bodies this node refused for lack of disk space.",
)
PUT_RESENDS = Counter(
    "tristore_put_resends_total",
    "PUTs resent after an attempt of unknown outcome, by what the node found: "
    "found (the earlier attempt took effect; answered with it), none (it did not; "
    "written now), unknown (cannot be told; OutcomeUnknown).",
    ["outcome"],
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
CREATES_REFUSED = Counter(
    "tristore_creates_refused_total",
    "PUTs (and replicas applied) of a key the witness majority did not know, tried as "
    "a create and refused or left undecided (the key was there, or the first AZ could "
    "not tell): written as before, after reading the key from every node.",
)
WRITES_ABOVE_CONDITIONS = Counter(
    "tristore_writes_above_conditions_total",
    "Plain writes stamped again, as a new version, because the key's first AZ had "
    "taken a conditional write (If-Match, If-None-Match) whose condition read a record "
    "older than them before they got there: committed again above it, so the "
    "conditional write is not acknowledged over them.",
)
WRITES_ABOVE_OLDER = Counter(
    "tristore_writes_above_older_total",
    "Writes of a new version stamped again because an AZ held a record of an older "
    "version stamped above them (an edit of its tags or replication status, or a "
    "DELETE of a version, that the key's first AZ took before the write got there): "
    "committed again above it, so the new version is current when acknowledged.",
)
READS_OVERTAKEN = Counter(
    "tristore_reads_overtaken_total",
    "Reads that were finishing a write no one finished (its coordinator gone) and met, "
    "in some AZ, a record of an older version stamped above it (an edit the key's "
    "first AZ took after the read looked): nothing returned or recorded, the key "
    "read again.",
)
WRITES_YIELDED = Counter(
    "tristore_writes_yielded_total",
    "Writes stamped again above a record of an older version that then met, in some "
    "AZ, a newer version written at the same time: kept as a version (the older of "
    "two concurrent writes), not recorded at the witness; the key was read.",
)
EDITS_YIELDED = Counter(
    "tristore_edits_yielded_total",
    "Edits of a version (tags, ACL, a replication status) that some AZ kept as that "
    "version's record only, a newer version being current there: not recorded as the "
    "key's current record; the key was read (which makes the newer version current "
    "above the edit where it was not).",
)
READS_PROMOTED = Counter(
    "tristore_reads_promoted_total",
    "Reads that found the key's newest record standing for an older version than "
    "a version some node holds (an edit above a write whose coordinator died, or "
    "whose write landed on a fallback while the home holding the edit was down): "
    "the newer version was made current, stamped again above, before the read "
    "returned it.",
)
UPDATE_GUESSES = Counter(
    "tristore_update_guesses_total",
    "Replication statuses whose first try edited the record the key's first AZ home "
    "holds instead of reading the key, by outcome: taken (written), refused (the "
    "home had moved on, or held a record the edit could not judge: the key was then "
    "read) or none (no usable record there: the key was read at once).",
    ["outcome"],
)
VERSION_EDITS_REFUSED = Counter(
    "tristore_version_edits_refused_total",
    "Edits of a noncurrent version's record (tags, ACL, a replication status) the "
    "key's first AZ refused because another edit of that version got there first; "
    "each was read again and made on top of it, so neither change is lost.",
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
AUTH_REFUSED = Counter(
    "tristore_node_auth_refused_total",
    "Calls of the public services refused before their handler ran, by S3 code "
    "(AccessDenied, SignatureDoesNotMatch, InvalidAccessKeyId, RequestTimeTooSkewed).",
    ["code"],
)
AUTH_TABLE_READS = Counter(
    "tristore_node_auth_table_reads_total",
    "Reads of the user table (node/iam.py): one per [auth] cache_s at most while "
    "the keys in use are known, none per request.",
)
KMS_CALLS = Counter(
    "tristore_node_kms_calls_total",
    "Calls to the master-key provider (tristore/kms.py) by operation: open and "
    "seal of bucket keys, rewrap and rotate (node/encryption.py).",
    ["op"],
)
S3_REQUESTS = Counter(
    "tristore_s3_requests_total",
    "Requests the S3 HTTP API answered, by S3 operation and HTTP status.",
    ["operation", "status"],
)
S3_SECONDS = Histogram(
    "tristore_s3_request_seconds",
    "Time from an S3 HTTP request's arrival to the end of its answer, by operation.",
    ["operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60),
)
S3_BYTES = Counter(
    "tristore_s3_bytes_total",
    "Object bytes through the S3 HTTP API: received (PUT, UploadPart) and sent (GET).",
    ["direction"],
)
CORRUPT_READS = Counter(
    "tristore_node_corrupt_reads_total",
    "Stored values that failed their checksum (or RocksDB's block checksum) when "
    "read here, by kind (record: an object or version record; chunk: a body chunk; "
    "log: a change-log entry; hint; marker: a removal or staging marker).",
    ["kind"],
)
CORRUPT_REPAIRED = Counter(
    "tristore_node_corrupt_repaired_total",
    "Damaged copies a read or a scrub wrote a sound value over (from another holder; "
    "a hint or marker from what is known without it), by kind.",
    ["kind"],
)
SCRUB_CHECKED = Counter(
    "tristore_node_scrub_checked_total",
    "Values a scrub of this node read and verified, by kind (record, chunk, log, hint, marker).",
    ["kind"],
)
SCRUB_CHECKED_BYTES = Counter(
    "tristore_node_scrub_checked_bytes_total",
    "Bytes of stored values a scrub of this node read and verified.",
)
SCRUB_CORRUPT = Counter(
    "tristore_node_scrub_corrupt_total",
    "Damaged values a scrub of this node found, by kind (record, chunk, log, hint, marker).",
    ["kind"],
)
SCRUB_PASSES = Counter(
    "tristore_node_scrub_passes_total",
    "Whole passes of the background scrub over this node's records and chunks.",
)
