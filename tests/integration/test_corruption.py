"""Damaged data on one node (issue 14): bytes flipped inside a stored record,
inside a body chunk, and inside a RocksDB SST file (after a flush, where
RocksDB's own block checksum catches it). Reads through the cluster
still return the right bytes (another AZ serves them), the node counts the
damaged read, and its copy is sound again afterwards, written back by the read
or by ``tristore admin scrub``.

Each test stops one node with SIGKILL, opens its RocksDB with rocksdict,
damages a value and starts the node again; reads go through that node as the
coordinator, whose metadata cache is empty after the restart, so it reads the
records of the key's three AZs (itself first).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import rocksdict

from node import keys, records
from tests.integration.cluster import DevCluster, all_versions, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600), pytest.mark.private_cluster]

BUCKET = "damaged"
MiB = 1024 * 1024


def _flip(raw: bytes, at: int) -> bytes:
    b = bytearray(raw)
    b[at] ^= 0x5A
    return bytes(b)


def _open(cluster: DevCluster, name: str) -> rocksdict.Rdict:
    """The node's RocksDB, opened for writing. A node just SIGKILLed may still
    be exiting (its files, RocksDB's LOCK among them, close as it goes): the
    lock is asked for again for up to 10 s before that is a failure."""
    deadline = time.monotonic() + 10.0
    while True:
        try:
            return rocksdict.Rdict(
                str(cluster.config.data_dir_for(name)), rocksdict.Options(raw_mode=True)
            )
        except Exception as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _with_node_stopped(
    cluster: DevCluster, name: str, change: Callable[[rocksdict.Rdict], None]
) -> None:
    """SIGKILL ``name``, apply ``change`` to its RocksDB, start it again."""
    cluster.kill(name)
    db = _open(cluster, name)
    try:
        change(db)
    finally:
        db.close()
    cluster.start(name)


def _inspect(cluster: DevCluster, name: str, look: Callable[[rocksdict.Rdict], None]) -> None:
    _with_node_stopped(cluster, name, look)


def _node_endpoint(cluster: DevCluster, name: str) -> str:
    return next(n.grpc for n in cluster.config.nodes if n.name == name)


def _metric(cluster: DevCluster, name: str, metric: str) -> float:
    return cluster.metric(name, metric)


@pytest.fixture(scope="module")
def bucket(cluster: DevCluster) -> str:
    with cluster.client() as c:
        c.create_bucket(BUCKET)
    return BUCKET


def test_a_damaged_record_is_read_from_another_az_and_written_back(
    cluster: DevCluster, bucket: str
) -> None:
    key, body = "small", os.urandom(2000)
    with cluster.client() as c:
        c.put_object(bucket, key, body)
    victim = cluster.homes(bucket, key)[0]
    okey = keys.object_key(bucket, key)

    def damage(db: rocksdict.Rdict) -> None:
        raw = db[okey]
        db[okey] = _flip(raw, len(raw) - 100)  # inside the inline body
        with pytest.raises(Exception, match="checksum"):
            records.decode_version(db[okey])

    _with_node_stopped(cluster, victim, damage)
    before = _metric(cluster, victim, "tristore_node_corrupt_reads_total")
    with cluster.client(_node_endpoint(cluster, victim)) as c:
        assert c.head_object(bucket, key).size == len(body)
        assert c.get_object(bucket, key) == body
    assert _metric(cluster, victim, "tristore_node_corrupt_reads_total") > before
    wait_until(
        lambda: _metric(cluster, victim, "tristore_node_corrupt_repaired_total") >= 1,
        30,
        what="the record written back",
    )

    def sound(db: rocksdict.Rdict) -> None:
        v = records.decode_version(db[okey])
        assert v.inline == body

    _inspect(cluster, victim, sound)


def test_a_damaged_chunk_is_read_from_another_holder_and_mended(
    cluster: DevCluster, bucket: str
) -> None:
    key, body = "big", os.urandom(3 * MiB + 1234)
    with cluster.client() as c:
        c.put_object(bucket, key, body)
    victim = cluster.homes(bucket, key)[0]
    found: dict[str, bytes] = {}

    def damage(db: rocksdict.Rdict) -> None:
        v = records.decode_version(db[keys.object_key(bucket, key)])
        assert v.data_id and v.chunk_size == MiB
        found["data_id"] = v.data_id
        ck = keys.chunk_key(v.data_id, 1)
        db[ck] = _flip(db[ck], 4321)

    _with_node_stopped(cluster, victim, damage)
    before = _metric(cluster, victim, "tristore_node_corrupt_reads_total")
    with cluster.client(_node_endpoint(cluster, victim)) as c:
        assert c.get_object(bucket, key) == body
    assert _metric(cluster, victim, "tristore_node_corrupt_reads_total") > before
    wait_until(
        lambda: _metric(cluster, victim, "tristore_node_corrupt_repaired_total") >= 1,
        30,
        what="the chunk mended",
    )

    def sound(db: rocksdict.Rdict) -> None:
        raw = db[keys.chunk_key(found["data_id"], 1)]
        assert records.chunk_payload(raw, strict=True) == body[MiB : 2 * MiB]

    _inspect(cluster, victim, sound)


def _keys_homed_on(cluster: DevCluster, bucket: str, node: str, prefix: str, n: int) -> list[str]:
    """``n`` keys of which ``node`` is the home in its AZ."""
    out = [k for i in range(500) if node in cluster.homes(bucket, k := f"{prefix}{i}")]
    return out[:n]


def _scrub(
    cluster: DevCluster, *extra: str, runs: list[dict[str, dict[str, object]]] | None = None
) -> dict[str, dict[str, object]]:
    """One ``admin scrub --json``, by node, once every node sees every other
    up (a node just restarted is taken for down by its peers until their next
    probe). Run again (for at most 30 s) while a node could not be scrubbed
    at all. Every run's answer goes into ``runs``: each counts in the nodes'
    scrub metrics."""
    cluster.wait_every_node_seen_up()
    deadline = time.monotonic() + 30
    while True:
        proc = cluster.cli("admin", "scrub", "--json", *extra, check=False)
        assert proc.stdout, proc.stderr
        doc = json.loads(proc.stdout)
        assert doc["command"] == "admin scrub"
        nodes = {str(n["node"]): n for n in doc["nodes"]}
        if runs is not None:
            runs.append(nodes)
        assert set(nodes) == {n.name for n in cluster.config.nodes}
        assert proc.returncode == (
            1 if doc["unrepaired"] or any(n["error"] for n in nodes.values()) else 0
        )
        unreached = [
            n for n in nodes.values()
            if n["error"] and not n["records_checked"] and not n["chunks_checked"]
        ]  # fmt: skip
        if not unreached or time.monotonic() > deadline:
            return nodes
        time.sleep(0.5)


def test_admin_scrub_finds_and_repairs_damaged_records_and_chunks(
    cluster: DevCluster, bucket: str
) -> None:
    victim = cluster.config.nodes[-1].name
    small, big = _keys_homed_on(cluster, bucket, victim, "scrub/", 2)
    small_body, big_body = os.urandom(3000), os.urandom(2 * MiB + 77)
    with cluster.client() as c:
        c.put_object(bucket, small, small_body)
        c.put_object(bucket, big, big_body)
    assert all(n["corrupt_records"] == n["corrupt_chunks"] == 0 for n in _scrub(cluster).values())

    def damage(db: rocksdict.Rdict) -> None:
        okey = keys.object_key(bucket, small)
        db[okey] = _flip(db[okey], 20)
        v = records.decode_version(db[keys.object_key(bucket, big)])
        ck = keys.chunk_key(v.data_id, 2)
        db[ck] = _flip(db[ck], 30)

    _with_node_stopped(cluster, victim, damage)
    nodes = _scrub(cluster, "--bucket", bucket)
    mine = nodes[victim]
    assert (mine["corrupt_records"], mine["corrupt_chunks"]) == (1, 1), mine
    assert mine["repaired"] == 2 and mine["unrepaired"] == 0 and not mine["error"], mine
    assert mine["chunks_checked"] >= 3 and mine["records_checked"] >= 2
    assert all(
        n["corrupt_records"] == n["corrupt_chunks"] == 0 for k, n in nodes.items() if k != victim
    )
    assert cluster.metric(victim, "tristore_node_scrub_corrupt_total") == 2
    assert cluster.metric(victim, "tristore_node_scrub_checked_total") >= 5
    # Repaired on disk: a second pass finds nothing, and reads are right.
    again = _scrub(cluster)
    assert again[victim]["corrupt_records"] == again[victim]["corrupt_chunks"] == 0, again[victim]
    with cluster.client(_node_endpoint(cluster, victim)) as c:
        assert c.get_object(bucket, small) == small_body
        assert c.get_object(bucket, big) == big_body


def test_admin_scrub_of_a_missing_bucket_is_no_such_bucket(cluster: DevCluster) -> None:
    """As `admin repair --bucket` of one: one line naming the error, exit 1
    (not a table of zeros, exit 0)."""
    for extra in ((), ("--json",)):
        missing = cluster.cli("admin", "scrub", "--bucket", "no-such-bucket", *extra, check=False)
        assert missing.returncode == 1, missing
        assert missing.stdout == b"", missing.stdout
        assert missing.stderr.decode().startswith("NoSuchBucket: "), missing.stderr


def _flip_in_sst(path: Path, needle: bytes) -> None:
    """Flip a byte of ``needle`` where it lies in one of the SST files of ``path``."""
    for sst in sorted(path.glob("*.sst")):
        data = bytearray(sst.read_bytes())
        at = data.find(needle)
        if at >= 0:
            data[at + len(needle) // 2] ^= 0x01
            sst.write_bytes(bytes(data))
            return
    raise AssertionError(f"{needle[:8].hex()}... is in no SST file of {path}")


def test_a_damaged_sst_file_is_read_around_and_scrubbed(cluster: DevCluster, bucket: str) -> None:
    victim = cluster.config.nodes[1].name
    read_key, scrub_key = _keys_homed_on(cluster, bucket, victim, "sst/", 2)
    bodies = {read_key: os.urandom(2 * MiB + 5), scrub_key: os.urandom(MiB + 9)}
    with cluster.client() as c:
        for key, body in bodies.items():
            c.put_object(bucket, key, body)

    cluster.kill(victim)
    db = _open(cluster, victim)
    try:
        db.flush()  # the chunks leave the write-ahead log for an SST file
    finally:
        db.close()
    path = cluster.config.data_dir_for(victim)
    _flip_in_sst(path, bodies[read_key][MiB + 1000 : MiB + 1064])  # chunk 1
    _flip_in_sst(path, bodies[scrub_key][500:564])  # chunk 0
    cluster.start(victim)

    # A read meets RocksDB's own checksum error: another holder serves the body.
    before = _metric(cluster, victim, "tristore_node_corrupt_reads_total")
    with cluster.client(_node_endpoint(cluster, victim)) as c:
        assert c.get_object(bucket, read_key) == bodies[read_key]
    assert _metric(cluster, victim, "tristore_node_corrupt_reads_total") > before
    wait_until(
        lambda: _metric(cluster, victim, "tristore_node_corrupt_repaired_total") >= 1,
        30,
        what="the chunk mended",
    )
    # The scrub finds the other one and mends it (and the first again, when
    # the scrub came before its mend was written: both are counted then).
    mine = _scrub(cluster, "--bucket", bucket)[victim]
    assert mine["corrupt_records"] == 0 and mine["corrupt_chunks"] in (1, 2), mine
    assert mine["repaired"] == mine["corrupt_chunks"] and not mine["unrepaired"], mine
    assert not mine["error"]
    assert _scrub(cluster, "--bucket", bucket)[victim]["corrupt_chunks"] == 0
    with cluster.client(_node_endpoint(cluster, victim)) as c:
        for key, body in bodies.items():
            assert c.get_object(bucket, key) == body


def test_damaged_version_records_listings_and_reads_by_version_id(cluster: DevCluster) -> None:
    """In a versioned bucket: a damaged record of an older version, and a
    damaged current record of another key, on one node. Listings through that
    node scan another AZ, a read by version id is served elsewhere and writes
    the version back, and the scrub repairs what is left."""
    vb = "damaged-versions"
    victim = cluster.config.nodes[2].name
    with cluster.client() as c:
        c.create_bucket(vb)
        c.put_bucket_versioning(vb, "Enabled")
    old_key, cur_key = _keys_homed_on(cluster, vb, victim, "v/", 2)
    old_body = os.urandom(900)
    with cluster.client() as c:
        old_id = c.put_object(vb, old_key, old_body).version_id
        c.put_object(vb, old_key, b"newer")
        c.put_object(vb, cur_key, b"current")
        versions_before = all_versions(c, vb)

    def damage(db: rocksdict.Rdict) -> None:
        vk = keys.version_key(vb, old_key, bytes.fromhex(old_id))
        db[vk] = _flip(db[vk], len(db[vk]) - 50)
        okey = keys.object_key(vb, cur_key)
        db[okey] = _flip(db[okey], 12)

    _with_node_stopped(cluster, victim, damage)
    with cluster.client(_node_endpoint(cluster, victim)) as c:
        listed = {o.key for o in c.list_objects(vb).contents}
        assert listed == {old_key, cur_key}
        assert all_versions(c, vb) == versions_before
        assert c.get_object(vb, old_key, version_id=old_id) == old_body
    wait_until(
        lambda: _metric(cluster, victim, "tristore_node_corrupt_repaired_total") >= 1,
        30,
        what="the version written back",
    )
    mine = _scrub(cluster, "--bucket", vb)[victim]
    assert mine["unrepaired"] == 0 and not mine["error"], mine
    assert _scrub(cluster, "--bucket", vb)[victim]["corrupt_records"] == 0
    with cluster.client(_node_endpoint(cluster, victim)) as c:
        assert c.get_object(vb, cur_key) == b"current"
        assert c.get_object(vb, old_key, version_id=old_id) == old_body


def test_a_damaged_hint_and_change_log_entry_are_counted_and_scrubbed(
    cluster: DevCluster, bucket: str
) -> None:
    """Change-log entries and hints carry a CRC-32C too: a damaged hint is
    counted when the handoff reads it and the write still goes home; a damaged
    change-log entry is found (and reported, not made up) by a scrub."""
    key, body = "hinted", os.urandom(1500)
    home = cluster.homes(bucket, key)[1]
    stand_in = next(
        n.name
        for n in cluster.config.nodes
        if n.az == cluster.config.node_named(home).az and n.name != home
    )
    cluster.kill(home)
    with cluster.client() as c:
        c.put_object(bucket, key, body)
    hk = keys.hint_key(home, bucket, key)
    damaged: dict[str, bytes] = {}

    def damage(db: rocksdict.Rdict) -> None:
        db[hk] = _flip(db[hk], 10)
        with pytest.raises(Exception, match="checksum"):
            records.decode_hint(db[hk])
        it = db.iter()
        it.seek_for_prev(keys.LOG + b"\xff" * 8)
        lk, raw = bytes(it.key()), bytes(it.value())
        del it
        assert records.decode_change(raw).key == key  # the hinted write's entry
        db[lk] = _flip(raw, len(raw) // 2)
        damaged["log"] = lk

    _with_node_stopped(cluster, stand_in, damage)
    wait_until(lambda: stand_in in cluster.up_names(), 60, what=f"{stand_in} up")
    # The home is back: the damaged hint is read (counted) and taken for the
    # oldest, so everything held for the key is handed over, then dropped.
    cluster.start(home)
    cluster.wait_hints_drained(120)
    assert _metric(cluster, stand_in, "tristore_node_corrupt_reads_total") >= 1
    with cluster.client(_node_endpoint(cluster, home)) as c:
        assert c.get_object(bucket, key) == body

    runs: list[dict[str, dict[str, object]]] = []
    nodes = _scrub(cluster, runs=runs)
    mine = nodes[stand_in]
    assert (mine["corrupt_records"], mine["repaired"]) == (1, 0), mine  # the log entry
    assert all(n["corrupt_records"] == 0 for k, n in nodes.items() if k != stand_in)
    # Not repaired: every run that reached the stand-in counted it again.
    found = sum(int(str(run[stand_in]["corrupt_records"])) for run in runs)
    assert cluster.metric(stand_in, "tristore_node_scrub_corrupt_total") == found >= 1

    def still(db: rocksdict.Rdict) -> None:
        assert not records.value_sound(records.LOG, db[damaged["log"]])
        assert db.get(hk) is None

    _inspect(cluster, stand_in, still)
