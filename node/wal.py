"""Making RocksDB's write-ahead log durable without holding the GIL.

rocksdict holds the GIL for the whole of every call, a ``sync=True`` write's
fsync included: while the group-commit thread waits for the disk (0.5-20 ms
here), the node's event loop cannot run. So the writer writes its batch with
``sync=False`` (RocksDB appends it to the current log file with ``write(2)``:
it is in the page cache when ``write`` returns) and then calls
:meth:`WalSync.sync`, which ``fdatasync``\\ s the log files itself; Python
releases the GIL around ``os.fdatasync``. That is the same system call on the
same file that RocksDB's own synced write makes (``use_fsync`` is off), so an
acknowledged commit is exactly as durable.

Which files: RocksDB names its logs ``<number>.log`` with numbers that only
grow, and starts a new one when a memtable is switched. Only one write group
writes the log at a time, and a switch happens before a group writes, so a
write that finished after the previous sync's listing went to a log whose
number is at least the newest one that listing saw. Each sync therefore lists
the directory and syncs every log from that number up (almost always just one
file), and syncs the directory itself when a new log appeared, so the new
file's name survives a power cut too. A log that vanished in between was
flushed to table files by RocksDB first: there is nothing left to sync.

Listing the directory is most of a sync's own CPU, and the answer rarely
changes: RocksDB installs a new "super version" (its property
``rocksdb.current-super-version-number``) whenever it switches memtables,
which is when it starts a new log, and on every flush and compaction. Read
before the listing, an unchanged number means no log was started since: the
logs listed then are still the ones to sync.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path


class WalSync:
    """fdatasync of a RocksDB's write-ahead logs; used by one thread at a time."""

    def __init__(
        self, wal_dir: Path, fsync: bool = True, generation: Callable[[], int] | None = None
    ) -> None:
        self._dir = wal_dir
        #: False only with ``[node] unsafe_no_fsync``: :meth:`sync` does nothing.
        self._fsync = fsync
        self._fds: dict[int, int] = {}
        #: No log below this number can hold data written since the last sync.
        self._from = 0
        self._newest = -1
        #: The database's super-version number (None: list every time), and
        #: what it was when the logs were last listed, and those logs.
        self._generation = generation
        self._listed_at: int | None = None
        self._listed: list[tuple[int, str]] = []

    def _logs(self) -> list[tuple[int, str]]:
        found = []
        with os.scandir(self._dir) as entries:
            for e in entries:
                name = e.name
                if name.endswith(".log") and name[:-4].isdigit():
                    found.append((int(name[:-4]), name))
        return sorted(found)

    def sync(self) -> None:
        """Make everything written to the logs before this call durable."""
        if not self._fsync:
            return
        gen = self._generation() if self._generation is not None else None
        if gen is None or gen != self._listed_at:
            self._listed = self._logs()
            self._listed_at = gen
        logs = [(n, name) for n, name in self._listed if n >= self._from]
        if not logs:
            return
        for n, name in logs:
            fd = self._fds.get(n)
            if fd is None:
                try:
                    fd = os.open(self._dir / name, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue
                self._fds[n] = fd
            os.fdatasync(fd)
        newest = logs[-1][0]
        if newest > self._newest:
            self._newest = newest
            dfd = os.open(self._dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        self._from = newest
        for n in [n for n in self._fds if n < newest]:
            os.close(self._fds.pop(n))

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
