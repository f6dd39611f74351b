"""Replicator metrics (DESIGN.md §6), by destination ("cluster/bucket")."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LAG = Gauge(
    "tristore_replication_lag_seconds",
    "Age of the oldest change still to replicate to a destination (0 when caught up).",
    ["destination"],
)
PENDING = Gauge(
    "tristore_replication_pending_operations",
    "Versions this replicator is working on for a destination.",
    ["destination"],
)
PENDING_BYTES = Gauge(
    "tristore_replication_pending_bytes",
    "Body bytes of the versions this replicator is working on for a destination.",
    ["destination"],
)
REPLICATED = Counter(
    "tristore_replication_replicated_total",
    "Versions applied at a destination (copies found there already do not count).",
    ["destination"],
)
FAILED = Counter(
    "tristore_replication_failed_total",
    "Attempts to replicate a version that failed (each retry counts).",
    ["destination"],
)
LATENCY = Histogram(
    "tristore_replication_latency_seconds",
    "From a version's write on the source to its replica's commit on the destination.",
    ["destination"],
    buckets=(
        *(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75),
        *(1, 1.5, 2.5, 5, 10, 30, 60, 300, 900, 3600),
    ),
)
THRESHOLD_MISSES = Counter(
    "tristore_replication_threshold_misses_total",
    "Versions replicated later than [replicator] threshold_s after their write.",
    ["destination"],
)
DLQ_DROPPED = Counter(
    "tristore_replication_dlq_dropped_total",
    "Entries dropped from the dead-letter queue, by reason: age ([replicator] "
    "dlq_retention_s) or cap (dlq_max_entries). Their versions stay FAILED at the source.",
    ["reason"],
)
DLQ = Gauge(
    "tristore_replication_dlq_entries",
    "Versions parked in this replicator's dead-letter queue after max_attempts.",
)
PACED = Counter(
    "tristore_replication_paced_batches_total",
    "Batches of a node's change log whose next read waited until their statuses were "
    "recorded: they held versions queued again (by a backfill or a replay), which "
    "replicate at the pace the source records them.",
    ["node"],
)
LOG_BEHIND = Gauge(
    "tristore_replication_log_entries_behind",
    "Change-log entries of a source node not read yet.",
    ["node"],
)
