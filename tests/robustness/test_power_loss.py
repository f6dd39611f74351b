"""A power cut loses nothing a node acknowledged (issue 14, point 7).

SIGKILL leaves the page cache intact, so the kill tests cannot tell an fsync
from none. Here one AZ's nodes keep their data on lazy filesystems
(tests/lazyfs.py: a FUSE passthrough that drops every write not yet fsynced
when the test pulls the plug). Clients write many objects concurrently (so
group commits batch); then that AZ's nodes are SIGKILLed and the plug pulled,
and every acknowledged version must still be in its home node's store there,
read straight from disk before the node starts again (not through the
cluster, which the other AZs would serve). The same run with ``[node]
unsafe_no_fsync`` on those nodes must lose acknowledged writes: proof that
the test can tell.

Needs FUSE (/dev/fuse, libfuse3, mfusepy, root); skipped where it cannot mount.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import DevCluster, cli_env, start_cluster
from tests.lazyfs import LazyMount, MountRefused

pytestmark = [pytest.mark.robustness, pytest.mark.timeout(900)]

BUCKET = "power"
WRITES = 300
CONCURRENCY = 24
NO_FSYNC = {"TRISTORE_NODE_UNSAFE_NO_FSYNC": "true"}


def _mount(backing: Path, mountpoint: Path, log: Path) -> LazyMount:
    m = LazyMount(backing, mountpoint, log)
    try:
        m.mount()
    except MountRefused as exc:
        pytest.skip(f"cannot mount the lazy filesystem here: {exc}")
    return m


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a new Python process (a power cut must not find the test's own files open)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(),
        check=False,
    )


# -- the lazy filesystem itself, through the kernel -------------------------


def test_lazyfs_keeps_synced_data_and_drops_the_rest(tmp_path: Path) -> None:
    backing, mnt = tmp_path / "disk", tmp_path / "mnt"
    backing.mkdir()
    lazy = _mount(backing, mnt, tmp_path / "lazyfs.log")
    try:
        done = _run(
            """
            import os, signal, sys
            d = sys.argv[1]
            def put(name, *steps):
                fd = os.open(os.path.join(d, name), os.O_CREAT | os.O_RDWR, 0o644)
                for step in steps:
                    step(fd)
            # Written, synced, then overwritten in part and extended.
            put("a", lambda fd: os.pwrite(fd, b"A" * 10000, 0), os.fsync,
                lambda fd: os.pwrite(fd, b"B" * 100, 4090),
                lambda fd: os.pwrite(fd, b"C" * 5000, 10000))
            # Synced, then cut short and written past its old end.
            put("b", lambda fd: os.pwrite(fd, b"D" * 9000, 0), os.fdatasync,
                lambda fd: os.ftruncate(fd, 100), lambda fd: os.pwrite(fd, b"E", 20000))
            # Synced, extended, synced again, changed.
            put("c", lambda fd: os.pwrite(fd, b"F" * 10, 0), os.fsync,
                lambda fd: os.pwrite(fd, b"G" * 10, 10), os.fsync,
                lambda fd: os.pwrite(fd, b"H" * 20, 0))
            # Never synced.
            put("d", lambda fd: os.pwrite(fd, b"I" * 50, 0))
            # Fully synced.
            put("e", lambda fd: os.pwrite(fd, b"J" * 3, 0), os.fsync)
            os.kill(os.getpid(), signal.SIGKILL)
            """,
            str(mnt),
        )
        assert done.returncode == -9, done.stderr
        # Before the cut everything reads as written (the page cache's view).
        assert (mnt / "a").stat().st_size == 15000
        report = lazy.pull_plug()
        assert "4 files reverted" in report, report
        lazy = _mount(backing, mnt, tmp_path / "lazyfs.log")
        assert (mnt / "a").read_bytes() == b"A" * 10000
        assert (mnt / "b").read_bytes() == b"D" * 9000
        assert (mnt / "c").read_bytes() == b"F" * 10 + b"G" * 10
        assert (mnt / "d").read_bytes() == b""  # metadata survives, data does not
        assert (mnt / "e").read_bytes() == b"J" * 3
    finally:
        lazy.stop()


def test_rocksdb_on_lazyfs_keeps_what_walsync_synced(tmp_path: Path) -> None:
    """RocksDB opens, writes, flushes and reopens on the lazy filesystem (no
    fallocate, POSIX locks kept by the kernel), and after a power cut holds
    exactly the writes node.wal.WalSync synced."""
    backing, mnt = tmp_path / "disk", tmp_path / "mnt"
    backing.mkdir()
    lazy = _mount(backing, mnt, tmp_path / "lazyfs.log")
    try:
        done = _run(
            """
            import os, signal, sys
            from pathlib import Path
            import rocksdict
            from node.wal import WalSync
            path = Path(sys.argv[1]) / "db"
            opts = rocksdict.Options(raw_mode=True)
            opts.create_if_missing(True)
            db = rocksdict.Rdict(str(path), opts)
            nosync, wal = rocksdict.WriteOptions(), WalSync(path)
            for i in range(300):
                db.put(b"k%04d" % i, b"v" * 100, nosync)
                wal.sync()
            db.flush()  # table files, which RocksDB syncs itself
            for i in range(300, 400):
                db.put(b"k%04d" % i, b"v", nosync)
            wal.sync()
            for i in range(400, 500):
                db.put(b"k%04d" % i, b"v", nosync)
            os.kill(os.getpid(), signal.SIGKILL)
            """,
            str(mnt),
        )
        assert done.returncode == -9, done.stderr
        lazy.pull_plug()
        lazy = _mount(backing, mnt, tmp_path / "lazyfs.log")
        done = _run(
            """
            import sys
            import rocksdict
            db = rocksdict.Rdict(sys.argv[1] + "/db", rocksdict.Options(raw_mode=True))
            print(sorted(int(k[1:]) for k in db.keys()) == list(range(400)))
            db.put(b"after", b"1")
            db.close()
            """,
            str(mnt),
        )
        assert done.stdout.strip() == "True", done.stdout + done.stderr
    finally:
        lazy.stop()


# -- a cluster whose AZ loses power ------------------------------------------


class PowerCut:
    """A cluster whose first AZ's nodes keep their data on lazy filesystems."""

    def __init__(self, tmp: Path, cluster: DevCluster, node_env: dict[str, str]) -> None:
        self.tmp, self.cluster, self.node_env = tmp, cluster, node_env
        cfg = cluster.config
        self.az = cfg.nodes[0].az
        self.names = [n.name for n in cfg.nodes if n.az == self.az]
        self.mounts: dict[str, LazyMount] = {}

    def _mount(self, name: str) -> None:
        data = self.cluster.config.data_dir_for(name)
        self.mounts[name] = _mount(
            data.with_name(name + ".disk"), data, self.tmp / f"lazyfs-{name}.log"
        )

    def move_to_lazy_disks(self) -> None:
        for name in self.names:
            self.cluster.kill(name, "TERM")
            data = self.cluster.config.data_dir_for(name)
            data.rename(data.with_name(name + ".disk"))
            try:
                self._mount(name)
            except BaseException:
                data.with_name(name + ".disk").rename(data)
                raise
            self.cluster.start(name, extra_env=self.node_env)

    def pull_plug(self) -> list[str]:
        """SIGKILL the AZ's nodes and drop what their disks had not synced."""
        for name in self.names:
            self.cluster.kill(name, "KILL")
        return [self.mounts.pop(name).pull_plug() for name in self.names]

    def power_on(self) -> None:
        """The disks back (the nodes not started)."""
        for name in self.names:
            self._mount(name)

    def home_here(self, key: str) -> str:
        return next(h for h in self.cluster.homes(BUCKET, key) if h in self.names)

    def lost(self, acked: dict[str, str]) -> list[str]:
        """Acknowledged keys whose version is not in its home node's store in
        this AZ, read from disk."""
        held = {name: self.cluster.node_versions(name) for name in self.names}
        out = []
        for key, etag in acked.items():
            v = held[self.home_here(key)].get((BUCKET, key))
            if v is None or v.etag != etag:
                out.append(key)
        return out

    def close(self) -> None:
        self.cluster.down()
        for m in self.mounts.values():
            m.stop()


@pytest.fixture
def power_cut(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[PowerCut]:
    cluster = start_cluster(tmp_path)
    cut = PowerCut(tmp_path, cluster, getattr(request, "param", {}))
    try:
        cut.move_to_lazy_disks()
        yield cut
    finally:
        cut.close()


def _write_many(cluster: DevCluster) -> dict[str, str]:
    """WRITES objects from CONCURRENCY clients at once; key -> acknowledged ETag."""
    with cluster.client() as c:
        c.create_bucket(BUCKET)

    def writer(first: int) -> Callable[[], dict[str, str]]:
        def run() -> dict[str, str]:
            out = {}
            with cluster.client() as c:
                for i in range(first, WRITES, CONCURRENCY):
                    key = f"k{i:05d}"
                    out[key] = c.put_object(BUCKET, key, f"body of {key}".encode()).etag
            return out

        return run

    acked: dict[str, str] = {}
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        for part in pool.map(lambda f: f(), [writer(i) for i in range(CONCURRENCY)]):
            acked |= part
    assert len(acked) == WRITES
    return acked


def _cut_power(cut: PowerCut) -> dict[str, str]:
    """Write, then cut the AZ's power and bring its disks back; returns what was acknowledged."""
    acked = _write_many(cut.cluster)
    # Every write at its home (none waiting as a hint on the AZ's other node).
    cut.cluster.wait_hints_drained(120)
    # Concurrent writes shared fsyncs there: some group commit carried several.
    batched = sum(
        cut.cluster.metric(n, "tristore_node_write_batch_size_sum")
        - cut.cluster.metric(n, "tristore_node_write_batch_size_count")
        for n in cut.names
    )
    assert batched > 0, "no group commit in the AZ carried more than one write"
    reports = cut.pull_plug()
    assert all("plug pulled" in r for r in reports), reports
    cut.power_on()
    return acked


def test_a_power_cut_loses_no_acknowledged_write(power_cut: PowerCut) -> None:
    cut = power_cut
    acked = _cut_power(cut)
    lost = cut.lost(acked)
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged writes lost in {cut.az}: {lost[:5]}"

    # The nodes start again on what their disks kept, and serve.
    for name in cut.names:
        cut.cluster.start(name)
    with cut.cluster.client() as c:
        for key, etag in list(acked.items())[:50]:
            assert c.head_object(BUCKET, key).etag == etag


@pytest.mark.parametrize("power_cut", [NO_FSYNC], indirect=True, ids=["unsafe_no_fsync"])
def test_without_fsync_a_power_cut_loses_acknowledged_writes(power_cut: PowerCut) -> None:
    """The mutant: the AZ's nodes acknowledge without fsync. The test must see
    the loss (the other AZs still hold every write)."""
    cut = power_cut
    acked = _cut_power(cut)
    lost = cut.lost(acked)
    print(f"unsafe_no_fsync: {len(lost)} of {len(acked)} acknowledged writes lost in {cut.az}")
    assert lost, "the power cut lost nothing: the test cannot tell an fsync from none"

    for name in cut.names:
        cut.cluster.start(name)
    with cut.cluster.client() as c:
        for key in lost[:20]:
            assert c.head_object(BUCKET, key).etag == acked[key]
