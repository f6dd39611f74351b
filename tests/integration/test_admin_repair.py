"""``tristore admin repair``: a node that lost its objects gets back, from the
other AZs, every version it was home to (anti-entropy within one cluster); a
node started on a new, empty data directory rebuilds itself the same way."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from collections import defaultdict
from typing import Any

import pytest
import rocksdict

from node import keys
from tests.integration.cluster import DevCluster, all_versions, wait_until
from tristore import errors
from tristore.model import ObjectVersion

pytestmark = pytest.mark.integration

PLAIN = "repair-plain"  # never versioned: overwrites, unversioned deletes
VERS = "repair-vers"  # versioned: versions, delete markers, versions deleted for good
VICTIM = "b1"
MARKER = None  # a delete marker's "body"
#: A rebuild tries again after this many seconds (30 by default).
REBUILD_RETRY = {"TRISTORE_NODE_REPAIR_REBUILD_RETRY_S": "1"}


def _md5(body: bytes) -> str:
    return hashlib.md5(body).hexdigest()


class Writer(threading.Thread):
    """Writes new keys while the repair runs, recording what was acknowledged."""

    def __init__(self, cluster: DevCluster, limit: int, seconds: float) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.limit = limit
        self.deadline = time.monotonic() + seconds
        self.acked: dict[str, bytes] = {}
        self.failed: list[str] = []
        self.stop_flag = threading.Event()

    def run(self) -> None:
        with self.cluster.client() as c:
            for i in range(self.limit):
                if self.stop_flag.is_set() or time.monotonic() > self.deadline:
                    return
                key = f"during/{i:04d}"
                body = f"written during the repair {i}".encode() * (1 + i % 7)
                try:
                    c.put_object(PLAIN, key, body)
                except errors.TristoreError as exc:
                    self.failed.append(f"{key}: {exc.code}: {exc}")
                else:
                    self.acked[key] = body


def _fill(cluster: DevCluster) -> tuple[dict[str, bytes | None], dict[tuple[str, str], Any]]:
    """~150 objects in two buckets. Returns the plain bucket's keys (body, None
    when deleted) and the versioned bucket's versions ((key, version id) ->
    body, MARKER for a delete marker, or "removed" for one deleted for good),
    with the tags of the versions tagged after they stopped being current."""
    plain: dict[str, bytes | None] = {}
    vers: dict[tuple[str, str], Any] = {}
    with cluster.client() as c:
        c.create_bucket(PLAIN)
        c.create_bucket(VERS)
        c.put_bucket_versioning(VERS, "Enabled")
        for i in range(70):
            key = f"p/{i:03d}"
            body = f"plain {i} ".encode() * (1 + i % 9)
            if i in (3, 41):
                body = body * 20_000  # staged in chunks: its body is copied chunk by chunk
            c.put_object(PLAIN, key, body)
            plain[key] = body
        for i in range(10):  # overwritten: the older null version is gone for good
            body = f"plain {i}, second".encode()
            c.put_object(PLAIN, f"p/{i:03d}", body)
            plain[f"p/{i:03d}"] = body
        for i in range(60, 70):  # unversioned deletes: a tombstone is all that is left
            c.delete_object(PLAIN, f"p/{i:03d}")
            plain[f"p/{i:03d}"] = None
        for i in range(30):
            key = f"v/{i:03d}"
            for n in range(2 + i % 2):
                body = f"version {n} of {key}".encode() * (1 + n)
                if i == 7 and n == 0:
                    body = body * 40_000
                vers[(key, c.put_object(VERS, key, body).version_id)] = body
            ids = [vid for k, vid in vers if k == key]
            if i < 8:
                vers[(key, c.delete_object(VERS, key).version_id)] = MARKER
            elif i < 13:
                c.delete_object(VERS, key, version_id=ids[0])
                vers[(key, ids[0])] = "removed"
            elif i < 18:
                c.put_object_tagging(VERS, key, {"state": "old"}, version_id=ids[0])
    return plain, vers


def _repair(cluster: DevCluster, *flags: str) -> dict[str, Any]:
    proc = cluster.cli("admin", "repair", "--json", *flags, timeout=60)
    doc = json.loads(proc.stdout)
    assert isinstance(doc, dict)
    return doc


def _records(
    cluster: DevCluster, name: str
) -> tuple[dict[tuple[str, str], ObjectVersion], dict[tuple[str, str, str], ObjectVersion]]:
    """A node's current records by (bucket, key) and version records by (bucket,
    key, version id), read from its RocksDB."""
    heads = cluster.node_versions(name)
    versions = {(v.bucket, v.key, v.version_id): v for v in cluster.node_versions_all(name)}
    return heads, versions


def _expected_missing(cluster: DevCluster, az: str) -> int:
    """Records the lost node's AZ lacks: for each key it was home to, what the
    key's home in another AZ holds (version records, and the current record
    when it is not one of them)."""
    cfg = cluster.config
    az_of = {n.name: n.az for n in cfg.nodes}
    by_node: dict[str, Any] = {}
    total = 0
    for name in (n.name for n in cfg.nodes if n.az != az):
        by_node[name] = _records(cluster, name)
    for name, (heads, versions) in by_node.items():
        per_key: dict[tuple[str, str], set[str]] = defaultdict(set)
        for b, k, vid in versions:
            per_key[(b, k)].add(vid)
        for (b, k), head in heads.items():
            homes = cluster.homes(b, k)
            other = next(h for h in homes if az_of[h] != az)
            if VICTIM not in homes or other != name:
                continue  # counted once, from the first home outside the lost AZ
            total += len(per_key[(b, k)]) + (0 if head.version_id in per_key[(b, k)] else 1)
    return total


def _lose_objects(cluster: DevCluster, name: str) -> None:
    """Delete every object record, body and hint from a stopped node's RocksDB
    (as a restore from an old backup would), keeping the rest: the node does
    not start as new, so only `admin repair` brings them back."""
    db = rocksdict.Rdict(str(cluster.config.data_dir_for(name)), rocksdict.Options(raw_mode=True))
    try:
        lost = [
            k
            for family in (keys.OBJECT, keys.VERSION, keys.REMOVED, keys.NULL, keys.DATA, keys.HINT)
            for k in db.keys(from_key=family)
            if k.startswith(family)
        ]
        for k in lost:
            del db[k]
        db.flush()
    finally:
        db.close()


def test_repair_restores_lost_objects(own_cluster: DevCluster) -> None:
    cluster = own_cluster
    plain, vers = _fill(cluster)
    victim_az = next(n.az for n in cluster.config.nodes if n.name == VICTIM)
    assert any(VICTIM in cluster.homes(PLAIN, k) for k in plain)
    assert any(VICTIM in cluster.homes(VERS, k) for k, _ in vers)

    # Objects lost: SIGKILL, the records gone, the node started again.
    cluster.kill(VICTIM)
    _lose_objects(cluster, VICTIM)
    cluster.start(VICTIM)
    wait_until(lambda: VICTIM in cluster.up_names(), 30, what=f"{VICTIM} to come back")
    with cluster.client() as c:
        n_nodes = len(cluster.config.nodes)
        wait_until(lambda: c.cluster_status().nodes_up == n_nodes, 30, what="every node up")
    cluster.wait_every_node_seen_up()
    expected = _expected_missing(cluster, victim_az)
    assert expected > 50

    # A dry run counts what the lost AZ lacks and writes nothing.
    dry = _repair(cluster, "--dry-run")
    assert dry["dry_run"] is True
    assert dry["keys_failed"] == 0
    assert dry["versions_written"] == 0
    assert dry["missing_by_az"][victim_az] == expected, dry
    assert all(n == 0 for az, n in dry["missing_by_az"].items() if az != victim_az), dry
    assert dry["keys_repaired"] > 0
    assert {b["bucket"] for b in dry["buckets"]} == {keys.BUCKETS, PLAIN, VERS, keys.UPLOADS}
    heads, versions = _records(cluster, VICTIM)
    assert not [h for h in heads if h[0] in (PLAIN, VERS)]
    assert not [v for v in versions if v[0] in (PLAIN, VERS)]

    # The repair, with a writer going on meanwhile.
    writer = Writer(cluster, limit=150, seconds=20)
    writer.start()
    wait_until(lambda: len(writer.acked) >= 5, 15, what="the writer to start")
    done = _repair(cluster)
    writer.stop_flag.set()
    writer.join(30)
    assert not writer.is_alive()
    assert done["dry_run"] is False
    assert done["keys_failed"] == 0, done
    assert done["missing_by_az"][victim_az] >= expected, done
    assert done["versions_written"] == sum(done["missing_by_az"].values()), done
    assert done["keys_repaired"] >= dry["keys_repaired"]
    assert len(writer.acked) >= 5 and not writer.failed, writer.failed

    cluster.wait_hints_drained(30)
    again = _repair(cluster)
    assert again["keys_failed"] == 0
    assert again["versions_written"] == 0, again
    assert again["keys_repaired"] == 0, again
    assert set(again["missing_by_az"].values()) == {0}, again
    table = cluster.cli("admin", "repair", "--bucket", f"s3://{VERS}").stdout.decode()
    assert table.splitlines()[0].split() == ["BUCKET", "KEYS", "REPAIRED", "WRITTEN", "FAILED"]
    assert table.splitlines()[1].split() == [VERS, "30", "0", "0", "0"]
    missing = cluster.cli("admin", "repair", "--bucket", "no-such-bucket", check=False)
    assert missing.returncode == 1
    assert missing.stderr.decode().startswith("NoSuchBucket: "), missing.stderr

    # Every acknowledged version is on the home node of each of its AZs.
    records = {n.name: _records(cluster, n.name) for n in cluster.config.nodes}
    for key, body in {**plain, **writer.acked}.items():
        for home in cluster.homes(PLAIN, key):
            head = records[home][0].get((PLAIN, key))
            assert head is not None, f"{home} lacks {PLAIN}/{key}"
            if body is None:
                assert head.deleted, (home, key)
            else:
                assert not head.deleted and head.etag == _md5(body), (home, key)
                assert (PLAIN, key, "null") in records[home][1], (home, key)
    for (key, vid), body in vers.items():
        for home in cluster.homes(VERS, key):
            held = records[home][1].get((VERS, key, vid))
            if body == "removed":
                assert held is None, f"{home} brought back {key}@{vid}, deleted for good"
                continue
            assert held is not None, f"{home} lacks {VERS}/{key}@{vid}"
            if body is MARKER:
                assert held.delete_marker, (home, key, vid)
            else:
                assert held.etag == _md5(body), (home, key, vid)
        first = next(vid for k, vid in vers if k == key)
        if 13 <= int(key[2:]) < 18:
            for home in cluster.homes(VERS, key):
                assert records[home][1][(VERS, key, first)].tags == {"state": "old"}, home

    # And everything reads back, bodies included.
    with cluster.client() as c:
        for key, body in {**plain, **writer.acked}.items():
            if body is None:
                with pytest.raises(errors.NoSuchKey):
                    c.get_object(PLAIN, key)
            else:
                assert c.get_object(PLAIN, key) == body, key
        for (key, vid), body in vers.items():
            if isinstance(body, bytes):
                assert c.get_object(VERS, key, version_id=vid) == body, (key, vid)
        listed = {(k, vid) for k, vid, _ in all_versions(c, VERS)}
        assert listed == {kv for kv, body in vers.items() if body != "removed"}

    # A whole AZ down: its keys cannot be compared, and the repair says so.
    lost_az = max({n.az for n in cluster.config.nodes} - {victim_az})
    for name in (n.name for n in cluster.config.nodes if n.az == lost_az):
        cluster.kill(name)
    failed = cluster.cli("admin", "repair", "--json", check=False, timeout=60)
    assert failed.returncode == 1, failed.stderr
    doc = json.loads(failed.stdout)
    assert doc["keys_failed"] == doc["keys_checked"] > 0
    assert doc["versions_written"] == 0
    assert "repair again when every AZ answers" in failed.stderr.decode()


def test_a_node_on_a_new_data_directory_rebuilds_itself(own_cluster: DevCluster) -> None:
    cluster = own_cluster
    plain, vers = _fill(cluster)
    victim = "c2"
    cluster.kill(victim)
    shutil.rmtree(cluster.config.data_dir_for(victim))  # a replaced disk
    # A rebuild that could not compare every key (a peer slow to answer on a
    # loaded machine) tries again after 30 s by default: a second here.
    cluster.start(victim, extra_env=REBUILD_RETRY)
    log = cluster.dir / "logs" / f"{victim}.log"
    wait_until(lambda: "rebuilt: " in log.read_text(), 60, what=f"{victim} to rebuild")
    assert "rebuilding this AZ's copies" in log.read_text()
    with cluster.client() as c:
        wait_until(
            lambda: all(
                n.status is not None and n.status.handoffs_pending == 0
                for n in c.cluster_status().nodes
            ),
            30,
            what="no handoff pending",
        )
    # Nothing is left for a repair to do, and the node holds its keys again.
    # (A peer that still takes the victim for down reads its AZ from the
    # fallback, which holds none of its keys: wait until every node saw it.)
    cluster.wait_every_node_seen_up()
    dry = _repair(cluster, "--dry-run")
    assert dry["keys_failed"] == 0 and set(dry["missing_by_az"].values()) == {0}, dry
    heads, versions = _records(cluster, victim)
    mine = [k for k, body in plain.items() if victim in cluster.homes(PLAIN, k)]
    assert mine
    for key in mine:
        head = heads.get((PLAIN, key))
        assert head is not None, key
        assert head.deleted if plain[key] is None else head.etag == _md5(plain[key]), key
    for (key, vid), body in vers.items():
        if victim in cluster.homes(VERS, key) and body != "removed":
            assert (VERS, key, vid) in versions, (key, vid)
    # Restarted, it does not rebuild again: a rebuild would show as a handoff
    # pending from the node's start until it had logged "rebuilt: " again.
    cluster.kill(victim, "TERM")
    cluster.start(victim)
    with cluster.client() as c:
        wait_until(
            lambda: any(
                n.name == victim and n.status is not None and n.status.handoffs_pending == 0
                for n in c.cluster_status().nodes
            ),
            30,
            what=f"{victim} to have no handoff pending",
        )
    assert log.read_text().count("rebuilt: ") == 1


def test_a_new_cluster_does_not_rebuild(cluster: DevCluster) -> None:
    # The worker's shared cluster: new when it started, and no node of it may
    # lose its data directory (that would change a pid, which its fixture checks).
    log = (cluster.dir / "logs" / "a1.log").read_text()
    wait_until(
        lambda: "nothing to rebuild" in (cluster.dir / "logs" / "a1.log").read_text(),
        15,
        what="a1 to find the cluster new",
    )
    assert "rebuilding" not in log
