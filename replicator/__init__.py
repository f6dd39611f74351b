"""Cross-cluster replicator (issue 6)."""
