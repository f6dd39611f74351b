"""Bulk work on real processes: the SDK's delete_objects (batched DeleteObjects,
authorized key by key) and the CLI's rm --recursive, rb --force, ls, cp
--recursive, sync, mv and du."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.cluster import DevCluster, wait_until
from tristore import errors
from tristore.client import Client, Credentials

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def alice(cluster: DevCluster) -> Iterator[Credentials]:
    with cluster.client() as root:
        root.create_user("alice", "user")
        k = root.create_access_key("alice")
    yield Credentials(k.access_key_id, k.secret_access_key)


def _put_all(c: Client, bucket: str, keys: list[str], body: bytes) -> None:
    """Setup: the keys written 16 at a time (a Client takes calls from many threads)."""
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: c.put_object(bucket, k, body), keys))


def _keys(c: Client, bucket: str, prefix: str = "") -> list[str]:
    return [e.key for page in c.iter_objects(bucket, prefix) for e in page.contents]


# --- SDK: delete_objects ---------------------------------------------------------


def test_delete_objects_batches_and_answers_per_key(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("bulkdel")
        keys = [f"d/{i:04d}" for i in range(1203)]  # two calls: 1000 + 203
        _put_all(c, "bulkdel", keys, b"x")
        c.put_object("bulkdel", "keep", b"k")
        results = c.delete_objects("bulkdel", keys)
        assert [r.key for r in results] == keys
        assert all(r.deleted and not r.delete_marker for r in results)
        assert _keys(c, "bulkdel") == ["keep"]
        # a key that is not there is deleted too (S3's DeleteObject answers it so)
        assert c.delete_objects("bulkdel", ["gone"], quiet=True) == []


def test_delete_objects_versions_and_markers(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("bulkver")
        c.put_bucket_versioning("bulkver", "Enabled")
        v1 = c.put_object("bulkver", "a", b"1").version_id
        c.put_object("bulkver", "a", b"2")
        c.put_object("bulkver", "b", b"b")
        results = c.delete_objects("bulkver", [("a", v1), "b"])
        assert (results[0].key, results[0].version_id, results[0].deleted) == ("a", v1, True)
        assert not results[0].delete_marker
        marker = results[1]
        assert marker.key == "b" and marker.delete_marker and marker.delete_marker_version_id
        assert c.get_object("bulkver", "a") == b"2"
        with pytest.raises(errors.NoSuchKey):
            c.head_object("bulkver", "b")
        # the marker deleted by its version id: b is back
        again = c.delete_objects("bulkver", [("b", marker.delete_marker_version_id)])
        assert again[0].deleted and again[0].delete_marker
        assert c.get_object("bulkver", "b") == b"b"
        versions = c.list_object_versions("bulkver").versions
        assert sorted(v.key for v in versions) == ["a", "b"]


def test_delete_objects_refuses_bad_input_before_deleting(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("bulkbad")
        c.put_object("bulkbad", "a", b"1")
        with pytest.raises(errors.KeyTooLongError):
            c.delete_objects("bulkbad", ["a", "k" * 2000])
        with pytest.raises(errors.InvalidArgument):
            c.delete_objects("bulkbad", ["a", 7])  # type: ignore[list-item]
        assert _keys(c, "bulkbad") == ["a"]
        assert c.delete_objects("bulkbad", []) == []
        with pytest.raises(errors.NoSuchBucket):  # the whole call, as S3's 404
            c.delete_objects("nosuchbucketbulk", ["a"])


def test_delete_objects_authorizes_each_key(cluster: DevCluster, alice: Credentials) -> None:
    with cluster.client() as root:
        root.create_bucket("rootsbulk")
        root.put_object("rootsbulk", "r", b"root's")
    with Client(cluster.endpoint, credentials=alice) as a:
        a.create_bucket("alicebulk")
        a.put_object("alicebulk", "mine", b"m")
        # None of the keys may go: the call is refused whole, nothing changes.
        with pytest.raises(errors.AccessDenied):
            a.delete_objects("rootsbulk", ["r"])
        assert a.delete_objects("alicebulk", ["mine"])[0].deleted
    policy = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["alice"]},'
        '"Action":"s3:DeleteObject","Resource":"arn:aws:s3:::rootsbulk/open/*"}]}'
    )
    with cluster.client() as root:
        root.put_object("rootsbulk", "open/x", b"x")
        root.put_bucket_policy("rootsbulk", policy)

    # The node that took the policy knows at once; the others within [auth]
    # cache_s: each node is asked to delete a key the policy lets alice delete
    # and that does not exist (nothing visible changes) until it lets her.
    def lets_her(c: Client) -> bool:
        try:
            return c.delete_objects("rootsbulk", ["open/absent"])[0].deleted
        except errors.AccessDenied:  # the whole call: no key of it is hers to delete
            return False

    for n in cluster.config.nodes:
        with Client(n.grpc, credentials=alice) as one:
            wait_until(
                lambda one=one: lets_her(one),
                cluster.config.auth.cache_s + 5,
                what=f"the policy on {n.name}",
            )
    with Client(cluster.endpoint, credentials=alice) as a:
        got = {r.key: r.error_code for r in a.delete_objects("rootsbulk", ["open/x", "r"])}
    assert got == {"open/x": "", "r": "AccessDenied"}
    with cluster.client() as root:
        assert _keys(root, "rootsbulk") == ["r"]


# --- CLI ---------------------------------------------------------------------------


def _out(r: subprocess.CompletedProcess[bytes]) -> str:
    return r.stdout.decode()


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "top.txt": b"top",
        "a/one.txt": b"one",
        "a/b/c/deep.bin": os.urandom(3000),
        "a/b/two.txt": b"two!",
        "x y/space name.txt": b"spaces",
    }
    for rel, body in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
    (root / "empty-dir").mkdir()
    return files


def test_ls_is_one_level_unless_recursive(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("clils")
        for k in ("top", "a/1", "a/b/2", "z/3"):
            c.put_object("clils", k, b"x")
    lines = _out(cluster.cli("ls", "s3://clils")).splitlines()
    assert [line.split()[-1] for line in lines] == ["a/", "z/", "top"]
    assert lines[0].split()[0] == "PRE"
    nested = _out(cluster.cli("ls", "s3://clils/a/")).splitlines()
    assert [line.split()[-1] for line in nested] == ["a/b/", "a/1"]
    every = _out(cluster.cli("ls", "s3://clils", "--recursive")).splitlines()
    assert [line.split()[-1] for line in every] == ["a/1", "a/b/2", "top", "z/3"]
    listing = json.loads(cluster.cli("ls", "s3://clils", "--json").stdout)
    assert listing["common_prefixes"] == ["a/", "z/"]
    assert [e["key"] for e in listing["contents"]] == ["top"]
    r = cluster.cli("ls", "s3://clils", "--recursive", "--delimiter", "/", check=False)
    assert r.returncode == 1 and r.stderr.decode().startswith("InvalidArgument: --recursive")


def test_rm_recursive_dryrun_then_for_real(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("clirm")
        keys = [f"logs/{i:04d}.log" for i in range(1005)] + ["logs/sub/x.log", "logsmore", "keep"]
        _put_all(c, "clirm", keys, b"l")
    dry = _out(cluster.cli("rm", "--recursive", "--dryrun", "s3://clirm/logs"))
    assert dry.count("(dryrun) delete: s3://clirm/logs/") == 1006
    with cluster.client() as c:
        assert len(_keys(c, "clirm")) == len(keys)  # a dry run changes nothing
    out = _out(cluster.cli("rm", "--recursive", "s3://clirm/logs", "--exclude", "0001.log"))
    assert "delete: s3://clirm/logs/sub/x.log\n" in out and out.count("\n") == 1005
    with cluster.client() as c:
        assert _keys(c, "clirm") == ["keep", "logs/0001.log", "logsmore"]
    doc = json.loads(cluster.cli("rm", "--recursive", "s3://clirm", "--json").stdout)
    assert doc["schema"] == 1 and doc["command"] == "rm" and doc["summary"]["failed"] == 0
    assert sorted(o["src"] for o in doc["operations"]) == [
        "s3://clirm/keep",
        "s3://clirm/logs/0001.log",
        "s3://clirm/logsmore",
    ]
    cluster.cli("rb", "s3://clirm")


def test_rb_force_removes_versions_markers_and_uploads(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("clirb")
        c.put_bucket_versioning("clirb", "Enabled")
        c.put_object("clirb", "k", b"1")
        c.put_object("clirb", "k", b"2")
        c.delete_object("clirb", "k")
        c.put_object("clirb", "d/e", b"e")
        c.create_multipart_upload("clirb", "big")
    r = cluster.cli("rb", "s3://clirb", check=False)
    assert r.returncode == 1 and r.stderr.decode().startswith("BucketNotEmpty:")
    doc = json.loads(cluster.cli("rb", "s3://clirb", "--force", "--json").stdout)
    assert doc == {
        "schema": 1,
        "command": "rb",
        "bucket": "clirb",
        "deleted_versions": 4,
        "aborted_uploads": 1,
    }
    with cluster.client() as c, pytest.raises(errors.NoSuchBucket):
        c.head_bucket("clirb")
    # unversioned, nested keys: the text form
    with cluster.client() as c:
        c.create_bucket("clirb2")
        c.put_object("clirb2", "a/b/c", b"1")
        c.put_object("clirb2", "top", b"2")
    out = _out(cluster.cli("rb", "s3://clirb2", "--force"))
    assert out.splitlines() == [
        "delete: s3://clirb2/a/b/c",
        "delete: s3://clirb2/top",
        "remove_bucket: clirb2",
    ]


def test_one_object_json_forms(cluster: DevCluster, tmp_path: Path) -> None:
    assert json.loads(cluster.cli("mb", "s3://clijson", "--json").stdout) == {
        "schema": 1,
        "command": "mb",
        "bucket": "clijson",
    }
    f = tmp_path / "f.txt"
    f.write_bytes(b"hello")
    up = json.loads(cluster.cli("cp", str(f), "s3://clijson/", "--json").stdout)
    assert up == {
        "schema": 1,
        "command": "cp",
        "op": "upload",
        "src": str(f),
        "dst": "s3://clijson/f.txt",
        "size": 5,
        "etag": "5d41402abc4b2a76b9719d911017c592",
        "version_id": "null",  # as head_object says of an unversioned bucket's object
        "parts": None,
    }
    down = json.loads(cluster.cli("cp", "s3://clijson/f.txt", str(tmp_path / "g"), "--json").stdout)
    assert (down["op"], down["dst"], down["size"]) == ("download", str(tmp_path / "g"), 5)
    stale = cluster.cli("rm", "s3://clijson/f.txt", "--if-match", "0" * 32, check=False)
    assert stale.returncode != 0 and b"PreconditionFailed" in stale.stderr
    rm = json.loads(
        cluster.cli(
            "rm", "s3://clijson/f.txt", "--json", "--if-match", "5d41402abc4b2a76b9719d911017c592"
        ).stdout
    )
    assert rm == {
        "schema": 1,
        "command": "rm",
        "url": "s3://clijson/f.txt",
        "version_id": None,
        "delete_marker": False,
    }
    rb = json.loads(cluster.cli("rb", "s3://clijson", "--json").stdout)
    assert rb["command"] == "rb" and rb["bucket"] == "clijson" and rb["deleted_versions"] == 0


def test_cp_recursive_up_down_and_across(cluster: DevCluster, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = _make_tree(src)
    cluster.cli("mb", "s3://clicp")
    out = _out(cluster.cli("cp", "--recursive", str(src), "s3://clicp/up", "--parallel", "3"))
    assert f"upload: {src / 'a/b/c/deep.bin'} to s3://clicp/up/a/b/c/deep.bin\n" in out
    with cluster.client() as c:
        assert _keys(c, "clicp") == sorted(f"up/{k}" for k in files)
        assert c.get_object("clicp", "up/a/b/c/deep.bin") == files["a/b/c/deep.bin"]
    down = tmp_path / "down"
    cluster.cli("cp", "--recursive", "s3://clicp/up/", str(down))
    assert _tree(down) == files
    doc = json.loads(
        cluster.cli("cp", "--recursive", "s3://clicp/up", "s3://clicp/copy", "--json").stdout
    )
    assert doc["schema"] == 1 and {o["op"] for o in doc["operations"]} == {"copy"}
    assert doc["summary"] == {"operations": 5, "failed": 0, "bytes": sum(map(len, files.values()))}
    with cluster.client() as c:
        assert c.get_object("clicp", "copy/x y/space name.txt") == b"spaces"
    only = tmp_path / "only"
    cluster.cli(
        "cp", "--recursive", "s3://clicp/up", str(only), "--exclude", "*", "--include", "a/*.txt"
    )
    assert _tree(only) == {"a/one.txt": b"one", "a/b/two.txt": b"two!"}
    r = cluster.cli("cp", "--recursive", str(src), "s3://clicp/x", "--tag", "a=1", check=False)
    assert r.returncode == 1 and "not with --recursive" in r.stderr.decode()


def test_download_never_writes_outside_the_destination(cluster: DevCluster, tmp_path: Path) -> None:
    with cluster.client() as c:
        c.create_bucket("clievil")
        c.put_object("clievil", "p/../../escape.txt", b"evil")
        c.put_object("clievil", "p/ok//runs///file.txt", b"ok")
        c.put_object("clievil", "p/dirmarker/", b"")
    dest = tmp_path / "inner" / "dest"
    r = cluster.cli("cp", "--recursive", "s3://clievil/p", str(dest), check=False)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "download failed: s3://clievil/p/../../escape.txt: InvalidArgument" in err
    assert err.splitlines()[-1].startswith("InvalidArgument: 1 of 2 operations failed")
    assert _tree(dest) == {"ok/runs/file.txt": b"ok"}
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "inner/escape.txt").exists()


def test_sync_up_down_delete_and_dryrun(cluster: DevCluster, tmp_path: Path) -> None:
    src = tmp_path / "site"
    files = _make_tree(src)
    cluster.cli("mb", "s3://clisync")
    first = _out(cluster.cli("sync", str(src), "s3://clisync/www"))
    assert first.count("upload: ") == len(files)
    assert _out(cluster.cli("sync", str(src), "s3://clisync/www")) == ""  # nothing differs
    # same size, other bytes: the MD5 ETag tells them apart
    (src / "top.txt").write_bytes(b"TOP")
    (src / "new.txt").write_bytes(b"new")
    (src / "a/one.txt").unlink()
    dry = json.loads(
        cluster.cli("sync", str(src), "s3://clisync/www", "--delete", "--dryrun", "--json").stdout
    )
    planned = {(o["op"], o["reason"], o["src"].rsplit("/", 1)[-1]) for o in dry["operations"]}
    assert planned == {
        ("upload", "etag", "top.txt"),
        ("upload", "new", "new.txt"),
        ("delete", "extra", "one.txt"),
    }
    with cluster.client() as c:
        assert c.get_object("clisync", "www/top.txt") == b"top"  # the dry run did nothing
    cluster.cli("sync", str(src), "s3://clisync/www", "--delete")
    with cluster.client() as c:
        assert c.get_object("clisync", "www/top.txt") == b"TOP"
        assert "www/a/one.txt" not in _keys(c, "clisync")
    down = tmp_path / "mirror"
    cluster.cli("sync", "s3://clisync/www", str(down))
    assert _tree(down) == _tree(src)
    assert _out(cluster.cli("sync", "s3://clisync/www", str(down))) == ""
    (down / "stray.txt").write_bytes(b"stray")
    out = _out(cluster.cli("sync", "s3://clisync/www", str(down), "--delete"))
    assert out == f"delete: {down / 'stray.txt'}\n"
    assert _tree(down) == _tree(src)


def test_mv_one_object_and_recursive(cluster: DevCluster, tmp_path: Path) -> None:
    cluster.cli("mb", "s3://climv")
    f = tmp_path / "f.txt"
    f.write_bytes(b"moving")
    assert (
        _out(cluster.cli("mv", str(f), "s3://climv/in/")) == f"move: {f} to s3://climv/in/f.txt\n"
    )
    assert not f.exists()
    cluster.cli("mv", "s3://climv/in/f.txt", "s3://climv/there.txt")
    cluster.cli("mv", "s3://climv/there.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_bytes() == b"moving"
    with cluster.client() as c:
        assert _keys(c, "climv") == []
    src = tmp_path / "tree"
    files = _make_tree(src)
    cluster.cli("mv", "--recursive", str(src), "s3://climv/t")
    assert _tree(src) == {}
    cluster.cli("mv", "--recursive", "s3://climv/t", "s3://climv/u")
    with cluster.client() as c:
        assert _keys(c, "climv") == sorted(f"u/{k}" for k in files)


def test_du_counts_and_sums(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("clidu")
        c.put_object("clidu", "a/1", b"x" * 100)
        c.put_object("clidu", "a/2/3", b"y" * 28)
        c.put_object("clidu", "ab", b"z" * 5)
    doc = json.loads(cluster.cli("du", "s3://clidu/a", "--json").stdout)
    assert doc == {"schema": 1, "command": "du", "url": "s3://clidu/a/", "objects": 2, "bytes": 128}
    assert _out(cluster.cli("du", "s3://clidu")).split("\t") == [
        "133", "133 B", "3 objects", "s3://clidu/\n"
    ]  # fmt: skip
    r = cluster.cli("du", "s3://nosuchdu", check=False)
    assert r.returncode == 1 and r.stderr.decode().startswith("NoSuchBucket:")
