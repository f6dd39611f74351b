"""The storage node: one AZ, one RocksDB, coordinator of the public API and
replica of the internal one."""
