"""RocksDB options every store of a tristore process shares."""

from __future__ import annotations

import rocksdict

from tristore.config import NodeSection


def options(cfg: NodeSection) -> rocksdict.Options:
    """Options for a store opened with raw (bytes) keys, created if missing.

    RocksDB's own info log (``LOG`` in the store's directory) is rolled at
    ``cfg.rocksdb_log_max_bytes`` and ``cfg.rocksdb_log_files`` rolled files
    are kept: every open rolls one and RocksDB keeps 1,000 by default, so a
    process restarted often would fill its disk with them."""
    opts = rocksdict.Options(raw_mode=True)
    opts.create_if_missing(True)
    opts.set_max_log_file_size(cfg.rocksdb_log_max_bytes)
    opts.set_keep_log_file_num(cfg.rocksdb_log_files)
    return opts
