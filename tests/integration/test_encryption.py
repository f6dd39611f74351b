"""Encryption at rest on real clusters: no plaintext of an encrypted object in
any file under the data directories (RocksDB WAL and SST files, staged
chunks, hints, change log) after puts, overwrites, copies, multipart uploads,
hinted handoff and replication to a second cluster (SSE-S3 sealed again
there, SSE-C shipped and stored as it is); ranged reads that cross
chunk boundaries; SSE-C refusals as S3 answers them; default bucket
encryption; master-key rotation (the old master key can go afterwards); the
key provider called once per bucket and node, not per object; file modes."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from tests.integration.cluster import DevCluster, signed_channel, start_cluster, wait_until
from tristore import errors, sse
from tristore.client import Client
from tristore.convert import version_to_pb
from tristore.model import CopySource, ObjectInfo, ObjectVersion
from tristore.pb import objects_pb2, objects_pb2_grpc
from tristore.replication import Destination, Rule
from tristore.stamps import Stamp

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CHUNK = 64 * 1024
ENV = {"TRISTORE_NODE_CHUNK_SIZE": str(CHUNK)}
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """One cluster (small chunks) for the tests of this module that look at
    their own buckets only and leave every process running."""
    c = start_cluster(tmp_path_factory.mktemp("enc"), extra_env=ENV)
    try:
        yield c
    finally:
        c.down()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[DevCluster]:
    """A cluster for one test alone: it scans every file of the cluster,
    restarts every node, or counts every bucket."""
    c = start_cluster(tmp_path, extra_env=ENV)
    try:
        yield c
    finally:
        c.down()


def _marker() -> bytes:
    return b"PLAIN-" + os.urandom(12).hex().encode() + b"-TEXT"


def _body(marker: bytes, size: int) -> bytes:
    """``size`` bytes in which ``marker`` recurs (so any stored piece holds it)."""
    unit = marker + os.urandom(200)
    return (unit * (size // len(unit) + 1))[:size]


def _files(root: Path) -> Iterator[Path]:
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if p.is_file() and not p.is_symlink():
                yield p


def _plaintext_in(root: Path, markers: list[bytes]) -> list[str]:
    """Files under ``root`` that hold any marker (every file: WAL, SST, logs, ...)."""
    found = []
    for p in _files(root):
        data = p.read_bytes()
        found += [f"{p} holds {m.decode()}" for m in markers if m in data]
    return found


def _data_dirs(cluster: DevCluster) -> list[Path]:
    cfg = cluster.config
    return [cfg.data_dir_for(n.name) for n in cfg.nodes] + [
        cfg.data_dir_for(r.name) for r in cfg.replicators
    ]


def _flush_to_sst(cluster: DevCluster) -> None:
    """Restart every node (SIGTERM): RocksDB flushes memtables to SST files on close."""
    for n in cluster.config.nodes:
        cluster.kill(n.name, "TERM")
        cluster.start(n.name, extra_env=ENV)
    wait_until(
        lambda: cluster.up_names() == {n.name for n in cluster.config.nodes}, 60, what="nodes up"
    )


def test_no_plaintext_on_disk_after_puts_overwrites_copies_multipart_and_handoff(
    fresh: DevCluster,
) -> None:
    cluster = fresh
    markers: list[bytes] = []
    expect: dict[str, bytes] = {}
    ssec = os.urandom(32)
    with cluster.client() as c:
        c.create_bucket("enc")
        c.create_bucket("dflt")
        c.put_bucket_encryption("dflt", "AES256")

        def put(bucket: str, key: str, size: int, **kw: object) -> ObjectInfo:
            m = _marker()
            markers.append(m)
            data = _body(m, size)
            info = c.put_object(bucket, key, data, **kw)  # type: ignore[arg-type]
            expect[f"{bucket}/{key}"] = data
            return info

        small = put("enc", "small", 300, sse="AES256")
        assert small.sse == "AES256"
        assert small.etag == hashlib.md5(expect["enc/small"]).hexdigest()  # as S3: MD5 of plaintext
        big = put("enc", "big", 5 * CHUNK + 77, sse="AES256")
        assert big.etag == hashlib.md5(expect["enc/big"]).hexdigest()
        put("enc", "big", 3 * CHUNK + 1, sse="AES256")  # an overwrite
        put("enc", "empty", 0, sse="AES256")
        assert put("dflt", "by-default", 2 * CHUNK + 5).sse == "AES256"
        assert put("dflt", "small-by-default", 100).sse == "AES256"
        put("enc", "customer", 3 * CHUNK, sse_customer_key=ssec)
        c.copy_object(CopySource("enc", "big"), "enc", "copied", sse="AES256")
        expect["enc/copied"] = expect["enc/big"]

        # A multipart upload (its parts are encrypted too, while they wait).
        m = _marker()
        markers.append(m)
        parts_data = [_body(m, 5 * MIB), _body(m, 1000)]
        up = c.create_multipart_upload("enc", "mpu", sse="AES256")
        etags = [
            c.upload_part("enc", "mpu", up.upload_id, i + 1, d).etag
            for i, d in enumerate(parts_data)
        ]
        mpu = c.complete_multipart_upload("enc", "mpu", up.upload_id, list(enumerate(etags, 1)))
        assert mpu.sse == "AES256" and mpu.etag.endswith("-2")
        expect["enc/mpu"] = b"".join(parts_data)

        # Hinted handoff: a home node down during writes, its writes held as hints.
        victim = cluster.homes("enc", "hinted-0")[0]
        cluster.kill(victim)
        for i in range(4):
            put("enc", f"hinted-{i}", 2 * CHUNK + i if i % 2 else 500, sse="AES256")
        assert cluster.hints_pending() > 0
        assert _plaintext_in(cluster.dir, markers) == []  # hints and staged chunks
        cluster.start(victim, extra_env=ENV)
        cluster.wait_hints_drained()

        for name, data in expect.items():
            bucket, _, key = name.partition("/")
            kw = {"sse_customer_key": ssec} if key == "customer" else {}
            assert c.get_object(bucket, key, **kw) == data, name  # type: ignore[arg-type]
    _flush_to_sst(cluster)
    assert any(p.suffix == ".sst" for p in _files(cluster.dir))  # SST files were scanned too
    assert _plaintext_in(cluster.dir, markers) == []
    # The check can fail: an unencrypted body is found.
    m = _marker()
    with cluster.client() as c:
        c.put_object("enc", "plain", _body(m, 1000))
    assert _plaintext_in(cluster.dir, [m]) != []


def test_ranged_reads_open_only_the_chunks_they_need(cluster: DevCluster) -> None:
    data = os.urandom(9 * CHUNK + 123)
    homes = set(cluster.homes("rng", "r"))
    other = next(n.grpc for n in cluster.config.nodes if n.name not in homes)
    with cluster.client(other) as c:
        c.create_bucket("rng")
        c.put_object("rng", "r", data, sse="AES256")
        assert c.get_object("rng", "r") == data
        for first, last in [
            (0, 0),
            (CHUNK - 1, CHUNK),  # the last byte of one chunk, the first of the next
            (CHUNK - 5, 3 * CHUNK + 5),  # across several chunks
            (2 * CHUNK, 3 * CHUNK - 1),  # exactly one chunk
            (4 * CHUNK + 1, 4 * CHUNK + 2),  # inside one chunk
            (len(data) - 130, len(data) - 1),  # into the short last chunk
        ]:
            got = c.get_object("rng", "r", range=f"bytes={first}-{last}")
            assert got == data[first : last + 1], (first, last)
        assert c.get_object("rng", "r", range="bytes=-200") == data[-200:]
        with c.get_object_stream("rng", "r", range=f"bytes={CHUNK // 2}-") as s:
            assert b"".join(s) == data[CHUNK // 2 :]
        small = os.urandom(700)
        c.put_object("rng", "small", small, sse="AES256")
        assert c.get_object("rng", "small", range="bytes=10-19") == small[10:20]


def test_sse_c_refusals_copy_and_multipart(cluster: DevCluster) -> None:
    key, other = os.urandom(32), os.urandom(32)
    data = os.urandom(2 * CHUNK + 9)
    with cluster.client() as c:
        c.create_bucket("ssec")
        info = c.put_object("ssec", "k", data, sse_customer_key=key)
        md5 = base64.b64encode(hashlib.md5(key).digest()).decode()
        assert (info.sse_customer_algorithm, info.sse_customer_key_md5) == ("AES256", md5)
        assert info.sse == ""
        # No key: 400 InvalidRequest, as S3, told apart from other InvalidRequests by class.
        with pytest.raises(errors.SSECustomerKeyRequired) as refused:
            c.get_object("ssec", "k")
        assert refused.value.code == "InvalidRequest"
        with pytest.raises(errors.SSECustomerKeyRequired):
            c.head_object("ssec", "k")
        with pytest.raises(errors.AccessDenied):
            c.get_object("ssec", "k", sse_customer_key=other)  # wrong key: 403
        with pytest.raises(errors.AccessDenied):
            c.head_object("ssec", "k", sse_customer_key=other)
        assert c.get_object("ssec", "k", sse_customer_key=key) == data
        got = c.get_object(
            "ssec", "k", range=f"bytes={CHUNK - 3}-{CHUNK + 3}", sse_customer_key=key
        )
        assert got == data[CHUNK - 3 : CHUNK + 4]
        head = c.head_object("ssec", "k", sse_customer_key=key)
        assert head.sse_customer_key_md5 == md5 and head.size == len(data)
        c.put_object("ssec", "plain", b"not encrypted")
        for call in (c.get_object, c.head_object):
            with pytest.raises(errors.InvalidRequest) as refused:
                call("ssec", "plain", sse_customer_key=key)
            # Its message names SSE-C too, but no key is missing.
            assert not isinstance(refused.value, errors.SSECustomerKeyRequired)
        with pytest.raises(errors.InvalidArgument):
            c.put_object("ssec", "short", b"x", sse_customer_key=b"too short")
        with pytest.raises(errors.InvalidArgument):
            c.put_object("ssec", "both", b"x", sse="AES256", sse_customer_key=key)

        # Copy: the source's key to read it, the new object's own encryption.
        with pytest.raises(errors.SSECustomerKeyRequired):
            c.copy_object(CopySource("ssec", "k"), "ssec", "copy")
        c.copy_object(
            CopySource("ssec", "k"), "ssec", "copy", sse="AES256", copy_source_sse_customer_key=key
        )
        assert c.get_object("ssec", "copy") == data
        c.copy_object(
            CopySource("ssec", "k"),
            "ssec",
            "copy2",
            sse_customer_key=other,
            copy_source_sse_customer_key=key,
        )
        assert c.get_object("ssec", "copy2", sse_customer_key=other) == data
        # Re-keying an object in place (copy onto itself with a new key) is allowed.
        c.copy_object(
            CopySource("ssec", "copy2"),
            "ssec",
            "copy2",
            sse_customer_key=key,
            copy_source_sse_customer_key=other,
        )
        assert c.get_object("ssec", "copy2", sse_customer_key=key) == data

        # Multipart: every part and the complete give the upload's key.
        up = c.create_multipart_upload("ssec", "mpu", sse_customer_key=key)
        with pytest.raises(errors.SSECustomerKeyRequired):
            c.upload_part("ssec", "mpu", up.upload_id, 1, b"x" * 100)
        with pytest.raises(errors.AccessDenied):
            c.upload_part("ssec", "mpu", up.upload_id, 1, b"x" * 100, sse_customer_key=other)
        p1, p2 = os.urandom(5 * MIB), os.urandom(100)
        e1 = c.upload_part("ssec", "mpu", up.upload_id, 1, p1, sse_customer_key=key).etag
        e2 = c.upload_part("ssec", "mpu", up.upload_id, 2, p2, sse_customer_key=key).etag
        with pytest.raises(errors.SSECustomerKeyRequired):
            c.complete_multipart_upload("ssec", "mpu", up.upload_id, [(1, e1), (2, e2)])
        done = c.complete_multipart_upload(
            "ssec", "mpu", up.upload_id, [(1, e1), (2, e2)], sse_customer_key=key
        )
        assert done.sse_customer_algorithm == "AES256"
        assert c.get_object("ssec", "mpu", sse_customer_key=key) == p1 + p2
        with pytest.raises(errors.InvalidRequest):
            c.get_object("ssec", "mpu")


def test_default_bucket_encryption(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("dflt")
        with pytest.raises(errors.ServerSideEncryptionConfigurationNotFoundError):
            c.get_bucket_encryption("dflt")
        assert c.put_object("dflt", "before", b"x").sse == ""
        c.put_bucket_encryption("dflt", "AES256")
        assert c.get_bucket_encryption("dflt") == "AES256"
        assert c.put_object("dflt", "after", b"y").sse == "AES256"
        assert c.head_object("dflt", "after").sse == "AES256"
        assert c.get_object("dflt", "after") == b"y"
        assert c.head_object("dflt", "before").sse == ""
        with pytest.raises(errors.InvalidArgument):
            c.put_bucket_encryption("dflt", "ROT13")
        with pytest.raises(errors.NoSuchBucket):
            c.put_bucket_encryption("no-such-bucket", "AES256")
        c.delete_bucket_encryption("dflt")
        with pytest.raises(errors.ServerSideEncryptionConfigurationNotFoundError):
            c.get_bucket_encryption("dflt")
        assert c.put_object("dflt", "later", b"z").sse == ""
        assert c.get_object("dflt", "after") == b"y"


def _kms_calls(cluster: DevCluster) -> float:
    return sum(
        cluster.metric(n.name, "tristore_node_kms_calls_total") for n in cluster.config.nodes
    )


def test_bucket_keys_spare_the_key_provider(cluster: DevCluster) -> None:
    puts = 1000
    nodes = [n.grpc for n in cluster.config.nodes]
    with cluster.client() as c:
        c.create_bucket("many")
    before = _kms_calls(cluster)
    clients = [Client(ep) for ep in nodes]  # every node coordinates some of the PUTs
    try:
        with ThreadPoolExecutor(16) as pool:
            infos = list(
                pool.map(
                    lambda i: clients[i % len(clients)].put_object(
                        "many", f"k{i}", b"v%d" % i, sse="AES256"
                    ),
                    range(puts),
                )
            )
        assert all(i.sse == "AES256" for i in infos)
        calls = _kms_calls(cluster) - before
        # The bucket key was sealed when the bucket was made; each node opens
        # it once: not one call per object.
        assert 1 <= calls <= len(nodes), calls
        assert calls <= puts * 0.01
        assert clients[0].get_object("many", "k7") == b"v7"
    finally:
        for cl in clients:
            cl.close()


def test_master_key_rotation_rewraps_bucket_keys_and_old_objects_still_read(
    fresh: DevCluster,
) -> None:
    cluster = fresh
    data = {f"k{i}": os.urandom(100 if i % 2 else 3 * CHUNK) for i in range(6)}
    with cluster.client() as c:
        for b in ("rot-a", "rot-b", "rot-plain"):
            c.create_bucket(b)
        for k, v in data.items():
            c.put_object("rot-a", k, v, sse="AES256")
            c.put_object("rot-b", k, v, sse="AES256")
        c.put_object("rot-plain", "p", b"plain")
    key_file = cluster.config.kms_key_file
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    old = json.loads(key_file.read_text())
    out = cluster.cli("admin", "kms", "rotate", "--json").stdout
    rotation = json.loads(out)
    assert rotation["key_id"] != old["current"]
    # Every bucket got its key when it was made, used or not.
    assert (rotation["rewrapped"], rotation["unchanged"]) == (3, 0)
    new = json.loads(key_file.read_text())
    assert new["current"] == rotation["key_id"] and set(old["keys"]) < set(new["keys"])
    with cluster.client() as c:
        assert c.rotate_master_key(keep_key=True).unchanged == 3  # nothing left to re-wrap
        c.put_object("rot-a", "after", b"written after the rotation", sse="AES256")
    # The old master key can go: the bucket keys are all under the new one now.
    # Nodes restarted with it gone (no key opened in memory) still read everything.
    del new["keys"][old["current"]]
    key_file.write_text(json.dumps(new))
    _flush_to_sst(cluster)
    with cluster.client() as c:
        for k, v in data.items():
            assert c.get_object("rot-a", k) == v
            assert c.get_object("rot-b", k, range="bytes=5-9") == v[5:10]
        assert c.get_object("rot-a", "after") == b"written after the rotation"
        assert c.get_object("rot-plain", "p") == b"plain"


def test_data_files_are_private(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("modes")
        c.put_object("modes", "k", os.urandom(3 * CHUNK), sse="AES256")
    checked = 0
    for d in _data_dirs(cluster):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
        assert stat.S_IMODE(d.parent.stat().st_mode) == 0o700, d.parent
        for dirpath, dirs, files in os.walk(d):
            for name in dirs:
                p = Path(dirpath) / name
                assert stat.S_IMODE(p.stat().st_mode) == 0o700, p
            for name in files:
                p = Path(dirpath) / name
                assert stat.S_IMODE(p.lstat().st_mode) & 0o077 == 0, p
                checked += 1
    assert checked > 10  # RocksDB's files (CURRENT, MANIFEST, WAL, OPTIONS, ...) were seen
    # An existing directory left open by an older version is tightened at start.
    node = cluster.config.nodes[0].name
    d = cluster.config.data_dir_for(node)
    cluster.kill(node, "TERM")
    d.chmod(0o755)
    cluster.start(node, extra_env=ENV)
    wait_until(lambda: stat.S_IMODE(d.stat().st_mode) == 0o700, 30, what="data dir tightened")


#: The destination stores with other sizes than the source (1 MiB chunks,
#: bodies inline up to 4 KiB): an SSE-C replica keeps its source's framing.
WEST_ENV = {"TRISTORE_NODE_CHUNK_SIZE": str(MIB), "TRISTORE_NODE_INLINE_MAX": "4096"}


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevCluster, DevCluster]]:
    """Two clusters, east (64 KiB chunks) replicating to west (restarted with WEST_ENV)."""
    east = start_cluster(tmp_path_factory.mktemp("enc2"), "--clusters", "2", extra_env=ENV)
    west = east.cluster("west")
    try:
        names = [n.name for n in west.config.nodes]
        for name in names:
            west.kill(name, "TERM")
            west.start(name, extra_env=WEST_ENV)
        wait_until(lambda: west.up_names() == set(names), 60, what="west's nodes up")
        yield east, west
    finally:
        east.down()


def test_replicas_are_encrypted_under_the_destination_keys(
    two: tuple[DevCluster, DevCluster],
) -> None:
    east, west = two
    markers: list[bytes] = []
    sent: dict[str, tuple[ObjectInfo, bytes]] = {}
    with east.client() as e, west.client() as w:
        for c, b in ((e, "rep-src"), (w, "rep-dst")):
            c.create_bucket(b)
            c.put_bucket_versioning(b, "Enabled")
        e.put_bucket_replication("rep-src", [Rule("all", (Destination("west", "rep-dst"),))])
        for i, size in enumerate((200, 3000, 4 * CHUNK + 3, 0)):
            m = _marker()
            markers.append(m)
            data = _body(m, size)
            sent[f"k{i}"] = (e.put_object("rep-src", f"k{i}", data, sse="AES256"), data)

        def arrived() -> bool:
            try:
                return all(
                    w.head_object("rep-dst", k, version_id=i.version_id).etag == i.etag
                    for k, (i, _) in sent.items()
                )
            except errors.TristoreError:
                return False

        wait_until(arrived, 90, what="replicas at the destination")
        for k, (_info, data) in sent.items():
            head = w.head_object("rep-dst", k)
            assert head.sse == "AES256" and head.replication_status == "REPLICA"
            assert w.get_object("rep-dst", k) == data
    # Each cluster has its own master keys.
    assert east.config.kms_key_file.read_bytes() != west.config.kms_key_file.read_bytes()
    assert _plaintext_in(east.dir, markers) == []


def _stored(cluster: DevCluster, bucket: str) -> dict[str, ObjectVersion]:
    """The newest version record of each key of ``bucket``, read from the nodes' disks."""
    out: dict[str, ObjectVersion] = {}
    for n in cluster.config.nodes:
        for v in cluster.node_versions_all(n.name):
            if v.bucket != bucket or v.delete_marker:
                continue
            if v.key not in out or out[v.key].vstamp < v.vstamp:
                out[v.key] = v
    return out


def test_sse_c_versions_are_replicated_as_stored(two: tuple[DevCluster, DevCluster]) -> None:
    """An SSE-C version reaches the destination as its ciphertext, wrapped data
    key and key HMAC, stored as they are: the replica reads with the same key
    and is refused without it or with another, as at the source; no plaintext
    anywhere; the source's chunk framing kept over the destination's own."""
    east, west = two
    key, wrong = os.urandom(32), os.urandom(32)
    markers: list[bytes] = []

    def body(size: int) -> bytes:
        m = _marker()
        markers.append(m)
        return _body(m, size)

    sent: dict[str, tuple[ObjectInfo, bytes]] = {}
    with east.client() as e, west.client() as w:
        for c, b in ((e, "ssec-src"), (w, "ssec-dst")):
            c.create_bucket(b)
            c.put_bucket_versioning(b, "Enabled")
        rule = Rule("all", (Destination("west", "ssec-dst"),), delete_markers=True)
        e.put_bucket_replication("ssec-src", [rule])
        # In its change-log entry (a batched apply); inline at the source but not
        # in the entry (read sealed; chunked at west, whose inline_max is 4 KiB);
        # empty; many chunks of the source's 64 KiB.
        for name, size in (("tiny", 200), ("inline", 20_000), ("empty", 0), ("big", 3 * MIB + 5)):
            data = body(size)
            sent[name] = (e.put_object("ssec-src", name, data, sse_customer_key=key), data)
        # Multipart: the complete seals the whole object under one data key.
        p1, p2 = body(5 * MIB), body(MIB + 7)
        up = e.create_multipart_upload("ssec-src", "multi", sse_customer_key=key)
        e1 = e.upload_part("ssec-src", "multi", up.upload_id, 1, p1, sse_customer_key=key).etag
        e2 = e.upload_part("ssec-src", "multi", up.upload_id, 2, p2, sse_customer_key=key).etag
        done = e.complete_multipart_upload(
            "ssec-src", "multi", up.upload_id, [(1, e1), (2, e2)], sse_customer_key=key
        )
        sent["multi"] = (done, p1 + p2)

        def completed() -> bool:
            statuses = {
                k: e.head_object(
                    "ssec-src", k, version_id=i.version_id, sse_customer_key=key
                ).replication_status
                for k, (i, _) in sent.items()
            }
            assert "FAILED" not in statuses.values(), statuses
            return set(statuses.values()) == {"COMPLETED"}

        wait_until(completed, 120, what="every SSE-C version COMPLETED at the source")
        for k, (info, data) in sent.items():
            head = w.head_object("ssec-dst", k, sse_customer_key=key)
            assert (head.version_id, head.etag, head.size) == (
                info.version_id,
                info.etag,
                len(data),
            )
            assert head.replication_status == "REPLICA"
            assert (head.sse_customer_algorithm, head.sse) == ("AES256", "")
            assert head.sse_customer_key_md5 == info.sse_customer_key_md5
            assert w.get_object("ssec-dst", k, sse_customer_key=key) == data, k
            for c, b in ((e, "ssec-src"), (w, "ssec-dst")):
                with pytest.raises(errors.InvalidRequest):
                    c.get_object(b, k)
                with pytest.raises(errors.InvalidRequest):
                    c.head_object(b, k)
                with pytest.raises(errors.AccessDenied):
                    c.get_object(b, k, sse_customer_key=wrong)
                with pytest.raises(errors.AccessDenied):
                    c.head_object(b, k, sse_customer_key=wrong)
        # Ranged reads across the source's chunk boundaries and the parts' seam.
        big, multi, inline = (sent[k][1] for k in ("big", "multi", "inline"))
        span = f"bytes={CHUNK - 3}-{3 * CHUNK + 3}"
        assert (
            w.get_object("ssec-dst", "big", range=span, sse_customer_key=key)
            == big[CHUNK - 3 : 3 * CHUNK + 4]
        )
        seam = 5 * MIB - 10
        got = w.get_object(
            "ssec-dst", "multi", range=f"bytes={seam}-{seam + 19}", sse_customer_key=key
        )
        assert got == multi[seam : seam + 20]
        assert (
            w.get_object("ssec-dst", "inline", range="bytes=-100", sse_customer_key=key)
            == (inline[-100:])
        )

        # Stored as the source stored it: the same wrapped data key and HMAC
        # (not sealed again), bound to the source's bucket, in its chunks.
        src, dst = _stored(east, "ssec-src"), _stored(west, "ssec-dst")
        for k in sent:
            assert dst[k].sse_key == src[k].sse_key and dst[k].sse_key, k
            assert dst[k].sse_customer_hmac == src[k].sse_customer_hmac, k
            assert (dst[k].sse_bucket, src[k].sse_bucket) == ("ssec-src", ""), k
        for k in ("big", "multi"):
            assert dst[k].chunk_size == src[k].chunk_size == CHUNK + 16, k
        assert dst["tiny"].data_id == b"" and dst["empty"].data_id == b""
        assert src["inline"].data_id == b"" and dst["inline"].data_id != b""
        assert dst["inline"].chunk_size == 20_000 + 16

        # Delete markers replicate as before.
        e.delete_object("ssec-src", "tiny")

        def marked() -> bool:
            try:
                w.head_object("ssec-dst", "tiny", sse_customer_key=key)
            except errors.NoSuchKey:
                return True
            return False

        wait_until(marked, 60, what="the delete marker at west")
        tiny = sent["tiny"]
        assert (
            w.get_object("ssec-dst", "tiny", version_id=tiny[0].version_id, sse_customer_key=key)
            == tiny[1]
        )
    assert _plaintext_in(east.dir, markers) == []


def _forged(v: ObjectVersion) -> objects_pb2.ApplyReplicaHeader:
    return objects_pb2.ApplyReplicaHeader(
        version=version_to_pb(v, with_inline=False), origin_cluster="east"
    )


def test_sse_c_replicas_are_checked_for_form_and_opened_by_aes_gcm(
    two: tuple[DevCluster, DevCluster],
) -> None:
    """What a replicator ships is stored only if well formed (lengths, chunk
    framing) and, having no key, as it is: a chunk altered on the way is stored
    but refused when read (its AES-GCM tag), and only the chunks a read touches
    are opened."""
    _east, west = two
    key = os.urandom(32)
    ck = sse.customer_key("AES256", key, "")
    assert ck is not None
    with west.client() as w:
        w.create_bucket("forge-dst")
        w.put_bucket_versioning("forge-dst", "Enabled")
    plain_chunk = 4096
    plain = os.urandom(3 * plain_chunk + 5)
    dk = sse.new_key()
    cipher = sse.ChunkCipher(dk, "forge-src", "k")
    chunks = [cipher.seal(i, plain[i * plain_chunk : (i + 1) * plain_chunk]) for i in range(4)]
    now = int(time.time() * 1000)

    def version(n: int, size: int, chunk_size: int) -> ObjectVersion:
        return ObjectVersion(
            "forge-dst",
            "k",
            Stamp(now + n, 0, 1, 1),
            size=size,
            etag=hashlib.md5(plain[:size]).hexdigest(),
            chunk_size=chunk_size,
            sse_key=sse.wrap_data_key(sse.SCHEME_CUSTOMER_KEY, key, dk, "forge-src", "k"),
            sse_customer_hmac=sse.customer_hmac(ck),
            sse_bucket="forge-src",
        )

    stored = plain_chunk + 16
    intact, altered, short = (version(n, len(plain), stored) for n in (1, 2, 3))
    flipped = [*chunks]
    flipped[2] = flipped[2][:100] + bytes([flipped[2][100] ^ 1]) + flipped[2][101:]
    stub = objects_pb2_grpc.ObjectServiceStub(signed_channel(west.config.nodes[0].grpc))

    def apply(v: ObjectVersion, pieces: list[bytes]) -> None:
        msgs = [objects_pb2.ApplyReplicaRequest(header=_forged(v))]
        msgs += [objects_pb2.ApplyReplicaRequest(data=p) for p in pieces]
        stub.ApplyReplica(iter(msgs), timeout=30)

    apply(intact, [b"".join(chunks)])  # framing is the receiver's: one piece is fine
    apply(altered, flipped)
    with pytest.raises(grpc.RpcError) as refused:
        apply(short, [b"".join(chunks)[:-5]])
    assert errors.from_rpc_error(refused.value).code == "IncompleteBody"
    # One chunk, too short, in a batched apply; a data key wrapped otherwise.
    small = version(4, 100, 0)
    items = objects_pb2.ApplyReplicasRequest(
        items=[
            objects_pb2.ApplyReplicaItem(
                header=_forged(small), data=cipher.seal(0, plain[:100])[:-1]
            ),
            objects_pb2.ApplyReplicaItem(
                header=_forged(replace(small, sse_key=b"S" + small.sse_key[1:])),
                data=cipher.seal(0, plain[:100]),
            ),
        ]
    )
    answers = stub.ApplyReplicas(items, timeout=30).results
    assert [a.error.code for a in answers] == ["IncompleteBody", "InvalidArgument"]

    with west.client() as w:
        assert w.get_object(
            "forge-dst", "k", version_id=intact.version_id, sse_customer_key=key
        ) == (plain)
        with pytest.raises(errors.KeyUnavailable):
            w.get_object("forge-dst", "k", version_id=altered.version_id, sse_customer_key=key)
        # The altered chunk is the third: a read of the first two opens only them.
        head = w.get_object(
            "forge-dst",
            "k",
            range=f"bytes=0-{2 * plain_chunk - 1}",
            version_id=altered.version_id,
            sse_customer_key=key,
        )
        assert head == plain[: 2 * plain_chunk]
        for v in (short, small):
            with pytest.raises(errors.NoSuchVersion):
                w.head_object("forge-dst", "k", version_id=v.version_id, sse_customer_key=key)


def test_cli_sse_c_and_default_encryption(cluster: DevCluster, tmp_path: Path) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    src = tmp_path / "secret.bin"
    data = os.urandom(3 * CHUNK + 11)
    src.write_bytes(data)
    cluster.cli("mb", "s3://cli-enc")
    cluster.cli("cp", str(src), "s3://cli-enc/s", "--sse-c-key", key, "--no-progress")
    refused = cluster.cli("cat", "s3://cli-enc/s", check=False)
    assert refused.returncode == 1 and refused.stderr.startswith(b"InvalidRequest:")
    wrong = base64.b64encode(os.urandom(32)).decode()
    refused = cluster.cli("cat", "s3://cli-enc/s", "--sse-c-key", wrong, check=False)
    assert refused.returncode == 1 and refused.stderr.startswith(b"AccessDenied:")
    assert cluster.cli("cat", "s3://cli-enc/s", "--sse-c-key", key).stdout == data
    got = cluster.cli("cat", "s3://cli-enc/s", "--sse-c-key", key, "--range", "bytes=5-9")
    assert got.stdout == data[5:10]
    shown = cluster.cli("stat", "s3://cli-enc/s", "--sse-c-key", key, "--json").stdout
    stat_json = json.loads(shown)
    md5 = base64.b64encode(hashlib.md5(base64.b64decode(key)).digest()).decode()
    assert (stat_json["sse_customer_algorithm"], stat_json["sse_customer_key_md5"]) == (
        "AES256",
        md5,
    )
    out = tmp_path / "back.bin"
    cluster.cli("cp", "s3://cli-enc/s", str(out), "--sse-c-key", key, "--no-progress")
    assert out.read_bytes() == data
    cluster.cli(
        "cp", "s3://cli-enc/s", "s3://cli-enc/t", "--sse-c-copy-source-key", key, "--sse", "AES256"
    )
    assert cluster.cli("cat", "s3://cli-enc/t").stdout == data

    assert cluster.cli("encryption", "status", "s3://cli-enc").stdout == b"none\n"
    cluster.cli("encryption", "set", "s3://cli-enc")
    shown = json.loads(cluster.cli("encryption", "status", "s3://cli-enc", "--json").stdout)
    assert shown == {"bucket": "cli-enc", "sse": "AES256"}
    cluster.cli("cp", "-", "s3://cli-enc/d", input=b"by default")
    assert json.loads(cluster.cli("stat", "s3://cli-enc/d", "--json").stdout)["sse"] == "AES256"
    cluster.cli("encryption", "rm", "s3://cli-enc")
    assert cluster.cli("encryption", "status", "s3://cli-enc").stdout == b"none\n"


def test_cli_replication_status_of_an_sse_c_version(cluster: DevCluster) -> None:
    """``replication status`` needs no SSE-C key: the node refuses the HEAD
    with SSECustomerKeyRequired (InvalidRequest to S3) and the CLI reads the
    version's status from the listing instead; no rule sent it anywhere."""
    key = base64.b64encode(os.urandom(32)).decode()
    cluster.cli("mb", "s3://cli-enc-status")
    cluster.cli("version", "enable", "s3://cli-enc-status")
    cluster.cli("cp", "-", "s3://cli-enc-status/s", "--sse-c-key", key, input=b"sealed")
    cluster.cli("cp", "-", "s3://cli-enc-status/p", input=b"plain")
    refused = cluster.cli("stat", "s3://cli-enc-status/s", check=False)
    assert refused.returncode == 1 and refused.stderr.startswith(b"InvalidRequest: ")
    assert cluster.cli("replication", "status", "s3://cli-enc-status/s").stdout == b"none\n"
    shown = json.loads(
        cluster.cli("replication", "status", "s3://cli-enc-status/s", "--json").stdout
    )
    vid = json.loads(cluster.cli("ls", "s3://cli-enc-status/s", "--versions", "--json").stdout)
    assert shown["version_id"] == vid["versions"][0]["version_id"]
    counted = cluster.cli("replication", "status", "s3://cli-enc-status", "--json")
    assert json.loads(counted.stdout)["counts"]["none"] == 2, counted.stdout
