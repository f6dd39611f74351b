"""A node whose disk fills refuses new data, keeps serving reads, and takes
writes again by itself once space is freed; meanwhile the AZ's other node takes
its writes with a hint, as for a dead node (node/disk.py).

The two nodes of one AZ run on small tmpfs filesystems the test mounts itself
(root only; skipped where mounting is not allowed), filled with a file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import DevCluster, start_cluster, wait_until
from tristore import errors
from tristore.model import NodeStatus

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

MiB = 1024 * 1024
FS_SIZE = 64 * MiB
RESERVE = 16 * MiB
RESUME = 8 * MiB
DISK_ENV = {
    "TRISTORE_NODE_DISK_RESERVE_BYTES": str(RESERVE),
    "TRISTORE_NODE_DISK_RESUME_BYTES": str(RESUME),
    "TRISTORE_NODE_DISK_CHECK_S": "0.2",
}
BUCKET = "full"


def _mount(path: Path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FS_SIZE}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@pytest.fixture
def small_disks(tmp_path: Path) -> Iterator[tuple[DevCluster, list[str]]]:
    """A cluster whose AZ-b nodes keep their data on 64 MiB filesystems."""
    cluster = start_cluster(tmp_path, extra_env=DISK_ENV)
    mounted: list[Path] = []
    try:
        az_b = [n.name for n in cluster.config.nodes if n.az == cluster.config.nodes[2].az]
        with cluster.client() as c:
            c.create_bucket(BUCKET)
        for name in az_b:
            cluster.kill(name, "TERM")
            data = cluster.config.data_dir_for(name)
            moved = data.with_name(data.name + ".before")
            data.rename(moved)
            if not _mount(data):
                moved.rename(data)
                pytest.skip("mounting a tmpfs is not allowed here (needs root)")
            mounted.append(data)
            shutil.copytree(moved, data, dirs_exist_ok=True)
            cluster.start(name, extra_env=DISK_ENV)
        yield cluster, az_b
    finally:
        cluster.down()
        for path in mounted:
            _umount(path)


def _fill(cluster: DevCluster, name: str) -> Path:
    """Leave the node's filesystem with half its reserve free."""
    data = cluster.config.data_dir_for(name)
    st = os.statvfs(data)
    free = st.f_bavail * st.f_frsize
    filler = data / "filler"
    with filler.open("wb") as f:
        f.write(b"\0" * (free - RESERVE // 2))
    return filler


def _healthz(cluster: DevCluster, name: str) -> str:
    addr = cluster.config.node_named(name).metrics
    with urllib.request.urlopen(f"http://{addr}/healthz", timeout=5) as resp:
        assert resp.status == 200
        return str(resp.read().decode())


def _keys_homed_at(cluster: DevCluster, name: str, n: int) -> list[str]:
    out = [k for k in (f"k{i}" for i in range(2000)) if name in cluster.homes(BUCKET, k)]
    return out[:n]


def _full(cluster: DevCluster, name: str) -> bool:
    """Whether ``name`` says its disk is full; False while its /metrics does
    not answer within 5 s (a loaded machine), so a wait goes on to its end."""
    try:
        return cluster.metric(name, "tristore_node_disk_full") == 1
    except AssertionError:
        return False


def _statuses(cluster: DevCluster, *names: str) -> dict[str, NodeStatus]:
    """The status ``cluster status`` shows of each of ``names``, asked again
    while one is missing (a node that did not answer within the status call's
    deadline on a loaded machine), for up to 30 s."""
    got: dict[str, NodeStatus] = {}

    def shown() -> bool:
        with cluster.client() as c:
            for n in c.cluster_status().nodes:
                if n.name in names and n.status is not None:
                    got[n.name] = n.status
        return all(name in got for name in names)

    wait_until(shown, 30, what=f"the status of {', '.join(names)}")
    return got


def test_a_full_node_refuses_writes_serves_reads_and_recovers_by_itself(
    small_disks: tuple[DevCluster, list[str]],
) -> None:
    cluster, (b1, b2) = small_disks
    keys = _keys_homed_at(cluster, b1, 12)
    with cluster.client() as c:
        for k in keys[:6]:
            c.put_object(BUCKET, k, b"before " + k.encode())

    filler = _fill(cluster, b1)
    wait_until(lambda: _full(cluster, b1), 30, what="b1 full")
    assert "disk full" in _healthz(cluster, b1)
    shown = _statuses(cluster, b1, b2)
    assert shown[b1].disk_state == "full"
    assert shown[b2].disk_state == ""

    with cluster.client() as c:
        # Writes whose home is b1 go to b2 with a hint; a large body is staged there.
        for k in keys[6:]:
            c.put_object(BUCKET, k, b"during " + k.encode())
        c.put_object(BUCKET, "large-" + keys[0], os.urandom(3 * MiB))
        # What b1 held is still served.
        for k in keys[:6]:
            assert c.get_object(BUCKET, k) == b"before " + k.encode()
        for k in keys[6:]:
            assert c.get_object(BUCKET, k) == b"during " + k.encode()
    assert cluster.metric(b1, "tristore_node_disk_refusals_total") >= 1
    assert cluster.metric(b2, "tristore_node_hints_pending") >= 1
    held = cluster.node_versions(b1)
    assert not any((BUCKET, k) in held for k in keys[6:]), "b1 took a write while full"

    # Both nodes of the AZ full: a write there fails, naming them and why.
    filler2 = _fill(cluster, b2)
    wait_until(lambda: _full(cluster, b2), 30, what="b2 full")
    with cluster.client() as c, pytest.raises(errors.QuorumUnavailable) as info:
        c.put_object(BUCKET, keys[1], b"unconfirmed")
    assert "out of disk space" in info.value.message and b1 in info.value.message
    with cluster.client() as c:
        # Reads go on. The failed write reached the other two AZs and may be
        # finished by a read there (its outcome is unknown, as with an AZ down),
        # unless AZ b is the key's first AZ: a finished version must be there.
        assert c.get_object(BUCKET, keys[0]) == b"before " + keys[0].encode()
        # (A coordinator that cached the version before it serves that.)
        b_first = cluster.homes(BUCKET, keys[1])[0].startswith("b")
        try:
            got = c.get_object(BUCKET, keys[1])
        except errors.QuorumUnavailable as refused:
            assert b_first and "its first AZ az-b among them" in refused.message
        else:
            assert got == b"before " + keys[1].encode() or (not b_first and got == b"unconfirmed")

    # Space freed: both take writes again by themselves, and b2 hands b1 its hints.
    filler.unlink()
    filler2.unlink()
    wait_until(lambda: cluster.metric(b1, "tristore_node_disk_full") == 0, 30, what="b1 back")
    assert _healthz(cluster, b1) == "ok\n"
    cluster.wait_hints_drained(120)
    with cluster.client() as c:
        c.put_object(BUCKET, keys[0], b"after")
        assert c.get_object(BUCKET, keys[0]) == b"after"
    held = cluster.node_versions(b1)
    assert all((BUCKET, k) in held for k in keys[6:]), "the hints did not reach b1"


def _pid(cluster: DevCluster, name: str) -> int:
    want = cluster.proc_name(name)
    [pid] = [int(str(p["pid"])) for p in cluster.status() if p["name"] == want]
    return pid


def test_a_store_that_ran_out_of_space_restarts_by_itself_once_space_is_back(
    small_disks: tuple[DevCluster, list[str]],
) -> None:
    """Without a reserve, RocksDB itself meets the full disk, and its error is
    sticky: the node refuses writes ("stuck"), the AZ's other node takes them
    with hints, and once space is back the node restarts in place (the same
    pid), opens its store again and takes writes; nothing acknowledged is lost."""
    cluster, (b1, b2) = small_disks
    cluster.kill(b1, "TERM")
    cluster.start(b1, extra_env={**DISK_ENV, "TRISTORE_NODE_DISK_RESERVE_BYTES": "0"})
    wait_until(lambda: b1 in cluster.up_names(), 60, what="b1 up")
    pid = _pid(cluster, b1)
    keys = _keys_homed_at(cluster, b1, 12)
    with cluster.client() as c:
        c.put_object(BUCKET, keys[0], b"before")

    filler = cluster.config.data_dir_for(b1) / "filler"
    with filler.open("wb") as f, contextlib.suppress(OSError):
        while True:  # to the last byte: the check has no reserve to refuse by
            f.write(b"\0" * MiB)
    with cluster.client() as c:
        for k in keys[1:]:  # acknowledged: a write b1 fails goes to b2 with a hint
            c.put_object(BUCKET, k, b"during " + k.encode())
    wait_until(lambda: _full(cluster, b1), 30, what="b1 stuck")
    assert "restarts by itself" in _healthz(cluster, b1)
    assert cluster.metric(b2, "tristore_node_hints_pending") >= 1
    assert _statuses(cluster, b1)[b1].disk_state == "stuck"
    with cluster.client() as c:
        assert c.get_object(BUCKET, keys[0]) == b"before"  # reads go on

    filler.unlink()

    def taking_writes() -> bool:
        try:
            return cluster.metric(b1, "tristore_node_disk_full") == 0
        except AssertionError:
            return False  # restarting: its /metrics does not answer yet

    wait_until(taking_writes, 60, what="b1 restarted with its store open")
    assert _pid(cluster, b1) == pid, "the node restarts in place"
    assert _healthz(cluster, b1) == "ok\n"
    cluster.wait_hints_drained(120)
    with cluster.client() as c:
        c.put_object(BUCKET, keys[0], b"after")
        assert c.get_object(BUCKET, keys[0]) == b"after"
        for k in keys[1:]:
            assert c.get_object(BUCKET, k) == b"during " + k.encode()
    held = cluster.node_versions(b1)
    assert held[(BUCKET, keys[0])].size == len(b"after")
    assert all((BUCKET, k) in held for k in keys[1:]), "the hints did not reach b1"
