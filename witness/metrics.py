"""Witness metrics (DESIGN.md §6)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

KEYS = Gauge("tristore_witness_keys", "Keys this witness currently knows a stamp for.")
CHECKS = Counter(
    "tristore_witness_checks_total", "Keys asked about (one batched call counts each key)."
)
UNKNOWN = Counter(
    "tristore_witness_unknown_total", "Keys asked about that this witness did not know."
)
RECORDS = Counter(
    "tristore_witness_records_total", "Stamps recorded (one batched call counts each key)."
)
EVICTIONS = Counter(
    "tristore_witness_evictions_total",
    "Keys forgotten to stay within max_keys (they are answered as unknown).",
)
BELOW_FLOOR = Counter(
    "tristore_witness_records_below_floor_total",
    "Stamps of keys this witness had forgotten, left out because they were not "
    "as new as what it forgot (a late record): the key stays unknown.",
)
FORGOTTEN = Counter(
    "tristore_witness_forgotten_total",
    "Keys forgotten on a node's request: removals it collects once every copy agrees "
    "(node/tombstones.py); no record at or below the forgotten stamp is taken again.",
)
INCARNATION = Gauge(
    "tristore_witness_incarnation",
    "Random id of this witness process's lifetime; changes on every restart.",
)
REFUSED = Counter(
    "tristore_witness_records_refused_total",
    "Stamps refused because the sender knew another incarnation of this witness "
    "(a record from before a restart); the sender re-reads the nodes instead.",
)
