"""A lazy filesystem for power-loss tests, in the style of Jepsen's LazyFS.

SIGKILL leaves the kernel's page cache intact, so a process killed after a
``write`` and before its ``fsync`` loses nothing, and no kill can tell an
fsync from none. This FUSE passthrough over a backing directory can: it keeps,
for every file with data written since its last ``fsync``/``fdatasync``, the
file's size at that sync and the old content of every page written over since,
and when the test pulls the plug it puts them back. What is left is what a
disk that lost its volatile cache would hold: every synced byte, and nothing
written after the file's last sync.

The model is LazyFS's: data only. Metadata operations (create, rename, unlink,
mkdir) reach the backing directory at once and survive; a new file that was
never synced survives empty. A directory fsync is passed on and changes
nothing here. ``fallocate`` is not offered (callers get EOPNOTSUPP, which
RocksDB takes as "no preallocation").

Run it as its own process, so that the I/O of the processes under test goes
through the kernel's FUSE::

    python -m tests.lazyfs BACKING MOUNTPOINT

SIGUSR1 pulls the plug: every operation from then on fails with EIO, the
unsynced data is dropped from the backing directory, the filesystem is
detached and the process exits 0 at once (a process still holding a file
there gets ENOTCONN). Unmounting it (``umount``) loses nothing and ends the
process. A new process over the same backing directory is the machine after
the power came back. :class:`LazyMount` does all this for a test.

:class:`UnsyncedData` is the bookkeeping alone, on ordinary file descriptors,
for the unit tests (tests/unit/test_lazyfs.py).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PAGE = 4096


@dataclass
class _Dirty:
    """One file with data written since its last sync."""

    #: A read-write descriptor of the file, held until it is synced or the
    #: plug is pulled: it reaches the file through renames and unlinks, and
    #: while it is open the inode number cannot be reused.
    fd: int
    #: The file's size at its last sync (or when it was first written here).
    synced_size: int
    #: Page number -> that page's content at the last sync (cut at synced_size).
    saved: dict[int, bytes] = field(default_factory=dict)


class UnsyncedData:
    """What a power cut would lose: callers report every change to a file's
    content (before making it), and every sync (after it)."""

    def __init__(self) -> None:
        self._files: dict[tuple[int, int], _Dirty] = {}

    @staticmethod
    def _key(st: os.stat_result) -> tuple[int, int]:
        return (st.st_dev, st.st_ino)

    def _dirty(self, fd: int) -> _Dirty:
        st = os.fstat(fd)
        key = self._key(st)
        d = self._files.get(key)
        if d is None:
            # Reopened read-write: the caller's descriptor may be write-only.
            own = os.open(f"/proc/self/fd/{fd}", os.O_RDWR | os.O_CLOEXEC)
            d = self._files[key] = _Dirty(own, st.st_size)
        return d

    def _save(self, d: _Dirty, start: int, end: int) -> None:
        """Keep the synced content of the pages that [start, end) touches."""
        end = min(end, d.synced_size)
        if start >= end:
            return
        for page in range(start // PAGE, (end - 1) // PAGE + 1):
            if page not in d.saved:
                at = page * PAGE
                d.saved[page] = os.pread(d.fd, min(PAGE, d.synced_size - at), at)

    def before_write(self, fd: int, offset: int, length: int) -> None:
        if length > 0:
            self._save(self._dirty(fd), offset, offset + length)

    def before_truncate(self, fd: int, length: int) -> None:
        d = self._dirty(fd)
        self._save(d, length, d.synced_size)

    def synced(self, fd: int) -> None:
        """The file behind ``fd`` was fsynced: all of it is durable now."""
        d = self._files.pop(self._key(os.fstat(fd)), None)
        if d is not None:
            os.close(d.fd)

    def forget(self, path: str | os.PathLike[str]) -> None:
        """``path``'s last name is about to go (unlink, or a rename over it):
        what it held is lost either way."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if st.st_nlink <= 1:
            d = self._files.pop(self._key(st), None)
            if d is not None:
                os.close(d.fd)

    @property
    def dirty_files(self) -> int:
        return len(self._files)

    def pull_plug(self, details: list[str] | None = None) -> tuple[int, int]:
        """Put every unsynced file back as it was at its last sync; returns
        (files reverted, bytes dropped past their synced size), and adds a
        line a file to ``details``."""
        files = dropped = 0
        for d in self._files.values():
            size = os.fstat(d.fd).st_size
            if details is not None:
                details.append(
                    f"{os.readlink(f'/proc/self/fd/{d.fd}')}: size {size} -> {d.synced_size}, "
                    f"{len(d.saved)} pages put back"
                )
            for page, old in sorted(d.saved.items()):
                os.pwrite(d.fd, old, page * PAGE)
            os.ftruncate(d.fd, d.synced_size)
            os.fsync(d.fd)
            os.close(d.fd)
            files += 1
            dropped += max(0, size - d.synced_size)
        self._files.clear()
        return files, dropped


def _stat_dict(st: os.stat_result) -> dict[str, Any]:
    return {
        "st_mode": st.st_mode,
        "st_nlink": st.st_nlink,
        "st_uid": st.st_uid,
        "st_gid": st.st_gid,
        "st_size": st.st_size,
        "st_blocks": st.st_blocks,
        "st_blksize": st.st_blksize,
        "st_atime": st.st_atime_ns,
        "st_mtime": st.st_mtime_ns,
        "st_ctime": st.st_ctime_ns,
    }


def _fs_class() -> type:
    """The FUSE operations class (mfusepy is imported only where it mounts)."""
    import mfusepy

    class LazyFS(mfusepy.Operations):
        use_ns = True

        def __init__(self, backing: Path) -> None:
            self.root = str(backing)
            self.state = UnsyncedData()
            #: Every change to file content, and every sync, holds it: a
            #: write cannot land after the plug was pulled.
            self.mutex = threading.Lock()
            self.off = False

        def _p(self, path: str) -> str:
            return self.root + path

        def _live(self) -> None:
            if self.off:
                raise mfusepy.FuseOSError(errno.EIO)

        # -- metadata: straight through -----------------------------------

        def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
            self._live()
            return _stat_dict(os.fstat(fh) if fh is not None else os.lstat(self._p(path)))

        def readdir(self, path: str, fh: int) -> list[str]:
            self._live()
            return [".", "..", *os.listdir(self._p(path))]

        def statfs(self, path: str) -> dict[str, int]:
            st = os.statvfs(self._p(path))
            return {
                k: getattr(st, k)
                for k in (
                    "f_bsize",
                    "f_frsize",
                    "f_blocks",
                    "f_bfree",
                    "f_bavail",
                    "f_files",
                    "f_ffree",
                    "f_favail",
                    "f_namemax",
                )
            }

        def access(self, path: str, amode: int) -> int:
            self._live()
            if not os.access(self._p(path), amode):
                raise mfusepy.FuseOSError(errno.EACCES)
            return 0

        def mkdir(self, path: str, mode: int) -> int:
            self._live()
            os.mkdir(self._p(path), mode)
            return 0

        def rmdir(self, path: str) -> int:
            self._live()
            os.rmdir(self._p(path))
            return 0

        def unlink(self, path: str) -> int:
            with self.mutex:
                self._live()
                self.state.forget(self._p(path))
                os.unlink(self._p(path))
            return 0

        def rename(self, old: str, new: str) -> int:
            with self.mutex:
                self._live()
                self.state.forget(self._p(new))
                os.rename(self._p(old), self._p(new))
            return 0

        def link(self, target: str, source: str) -> int:
            self._live()
            os.link(self._p(source), self._p(target))
            return 0

        def symlink(self, target: str, source: str) -> int:
            self._live()
            os.symlink(source, self._p(target))
            return 0

        def readlink(self, path: str) -> str:
            self._live()
            return os.readlink(self._p(path))

        def chmod(self, path: str, mode: int) -> int:
            self._live()
            os.chmod(self._p(path), mode)
            return 0

        def chown(self, path: str, uid: int, gid: int) -> int:
            self._live()
            os.lchown(self._p(path), uid, gid)
            return 0

        def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
            self._live()
            if times is None:
                os.utime(self._p(path), follow_symlinks=False)
            else:
                os.utime(self._p(path), ns=times, follow_symlinks=False)
            return 0

        # -- file content: through the bookkeeping ------------------------

        def _open(self, path: str, flags: int, mode: int = 0o644) -> int:
            self._live()
            full = self._p(path)
            # The kernel gives every write its offset (O_APPEND's too).
            flags &= ~os.O_APPEND
            if flags & os.O_TRUNC and os.path.exists(full):
                fd = os.open(full, flags & ~os.O_TRUNC, mode)
                self.truncate(path, 0, fd)
                return fd
            return os.open(full, flags, mode)

        def open(self, path: str, flags: int) -> int:
            return self._open(path, flags)

        def create(self, path: str, mode: int, flags: int = os.O_WRONLY) -> int:
            return self._open(path, flags | os.O_CREAT, mode)

        def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
            self._live()
            return os.pread(fh, size, offset)

        def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
            with self.mutex:
                self._live()
                self.state.before_write(fh, offset, len(data))
                return os.pwrite(fh, data, offset)

        def truncate(self, path: str, length: int, fh: int | None = None) -> int:
            with self.mutex:
                self._live()
                fd = fh if fh is not None else os.open(self._p(path), os.O_RDWR)
                try:
                    self.state.before_truncate(fd, length)
                    os.ftruncate(fd, length)
                finally:
                    if fh is None:
                        os.close(fd)
            return 0

        def fsync(self, path: str, datasync: int, fh: int) -> int:
            with self.mutex:
                self._live()
                (os.fdatasync if datasync else os.fsync)(fh)
                self.state.synced(fh)
            return 0

        def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
            self._live()
            fd = os.open(self._p(path), os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            return 0

        def flush(self, path: str, fh: int) -> int:
            return 0  # close(2) makes nothing durable

        def release(self, path: str, fh: int) -> int:
            os.close(fh)
            return 0

        def pull_plug(self, details: list[str]) -> tuple[int, int]:
            with self.mutex:
                self.off = True
                return self.state.pull_plug(details)

    return LazyFS


def _unmount(mountpoint: str) -> None:
    done = subprocess.run(["umount", "-l", mountpoint], capture_output=True, check=False)
    if done.returncode != 0:
        subprocess.run(["fusermount3", "-u", "-z", mountpoint], capture_output=True, check=False)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m tests.lazyfs BACKING MOUNTPOINT", file=sys.stderr)
        return 2
    backing, mountpoint = Path(argv[0]).resolve(), str(Path(argv[1]).resolve())
    if not backing.is_dir():
        print(f"lazyfs: {backing} is not a directory", file=sys.stderr)
        return 2
    import mfusepy

    fs = _fs_class()(backing)

    def plug_puller() -> None:
        signal.sigwait({signal.SIGUSR1})
        details: list[str] = []
        files, dropped = fs.pull_plug(details)
        for line in details:
            print(f"lazyfs: reverted {line}", file=sys.stderr)
        print(
            f"lazyfs: plug pulled: {files} files reverted to their last sync, "
            f"{dropped} bytes past it dropped",
            file=sys.stderr,
            flush=True,
        )
        _unmount(mountpoint)
        # The machine is off: no clean unmount, which would wait for every
        # descriptor still open on the filesystem. A daemon that is gone fails
        # whatever still uses the mount (ENOTCONN).
        os._exit(0)

    # Blocked here, and so in every thread libfuse starts: only the puller
    # takes SIGUSR1 (the main thread sits in libfuse, where a Python signal
    # handler would never run).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    threading.Thread(target=plug_puller, name="plug", daemon=True).start()
    mfusepy.FUSE(fs, mountpoint, foreground=True, fsname=f"lazyfs:{backing}")
    return 0


class MountRefused(RuntimeError):
    """The lazy filesystem could not be mounted here (no FUSE, not root...)."""


def is_mounted(path: Path) -> bool:
    target = str(path.resolve())
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


class LazyMount:
    """A lazy filesystem over ``backing`` mounted at ``mountpoint``, run by a
    ``python -m tests.lazyfs`` process; log: ``log_path``."""

    def __init__(self, backing: Path, mountpoint: Path, log_path: Path) -> None:
        self.backing, self.mountpoint, self.log_path = backing, mountpoint, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def mount(self, timeout_s: float = 20.0) -> None:
        if is_mounted(self.mountpoint):
            raise RuntimeError(f"{self.mountpoint} is mounted already")
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        repo = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""))
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.lazyfs", str(self.backing), str(self.mountpoint)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + timeout_s
        while not is_mounted(self.mountpoint):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log_path.read_text(errors="replace")[-1500:]
                raise MountRefused(f"lazyfs did not mount {self.mountpoint}: {tail.strip()}")
            time.sleep(0.05)

    def pull_plug(self, timeout_s: float = 30.0) -> str:
        """Lose every unsynced write; the filesystem unmounts. Returns the
        process's report line."""
        assert self.proc is not None, "not mounted"
        self.proc.send_signal(signal.SIGUSR1)
        self.proc.wait(timeout_s)
        self.proc = None
        lines = self.log_path.read_text(errors="replace").splitlines()
        return next((ln for ln in reversed(lines) if "plug pulled" in ln), "")

    def stop(self) -> None:
        """Unmount, losing nothing (a clean shutdown: the process ends by itself)."""
        if is_mounted(self.mountpoint):
            _unmount(str(self.mountpoint))
        if self.proc is not None:
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main(sys.argv[1:]))
