"""RocksDB's own info log stays bounded: every open rolls it, and a node (or
a replicator) restarted often must not fill its data directory with the
rolled files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node.replica_store import ReplicaStore
from replicator.state import ReplicatorState
from tristore import config
from tristore.config import NodeSection
from tristore.errors import InvalidArgument

pytestmark = pytest.mark.unit


def test_restarts_keep_only_the_configured_number_of_rolled_info_logs(tmp_path: Path) -> None:
    cfg = NodeSection(rocksdb_log_files=3)
    for _ in range(8):
        ReplicaStore(tmp_path / "n", cfg, lambda: 1_000).close()
    rolled = sorted(p.name for p in (tmp_path / "n").glob("LOG.old.*"))
    assert 1 <= len(rolled) <= 3, rolled
    assert (tmp_path / "n" / "LOG").exists()
    # Without the bound RocksDB keeps every one (1,000 by default): the
    # same loop under its default leaves a file a start.
    for _ in range(8):
        ReplicaStore(tmp_path / "m", NodeSection(rocksdb_log_files=1000), lambda: 1_000).close()
    assert len(list((tmp_path / "m").glob("LOG.old.*"))) >= 7


def test_a_replicators_state_keeps_them_bounded_too(tmp_path: Path) -> None:
    for _ in range(8):
        ReplicatorState(tmp_path / "r", NodeSection(rocksdb_log_files=2)).close()
    assert 1 <= len(list((tmp_path / "r").glob("LOG.old.*"))) <= 2


@pytest.mark.parametrize("key, value", [("rocksdb_log_files", 0), ("rocksdb_log_max_bytes", 10)])
def test_an_unbounded_or_tiny_info_log_setting_is_refused(
    raw_config: dict[str, Any], key: str, value: int
) -> None:
    raw_config["node"] = {key: value}
    with pytest.raises(InvalidArgument, match=key):
        config.parse(raw_config, env={})
