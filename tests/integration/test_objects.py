"""The object API on a real three-AZ cluster: bodies, ranges, listing, errors."""

from __future__ import annotations

import hashlib
import io
import os
import random
from pathlib import Path

import pytest

from tests.integration.cluster import DevCluster
from tristore import errors
from tristore.model import ByteRange

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bucket(cluster: DevCluster) -> str:
    with cluster.client() as c:
        c.create_bucket("objects")
    return "objects"


@pytest.mark.parametrize("size", [0, 1, 1024 * 1024, 64 * 1024 * 1024 + 1])
def test_round_trip_keeps_bytes_and_etag(cluster: DevCluster, bucket: str, size: int) -> None:
    data = random.randbytes(size)
    key = f"round/{size}"
    with cluster.client() as c:
        # The big one goes up from a file object so it is streamed, not buffered.
        body = io.BytesIO(data) if size > 1024 * 1024 else data
        info = c.put_object(
            bucket, key, body, content_type="application/x-test", metadata={"Size": str(size)}
        )
        assert info.etag == hashlib.md5(data).hexdigest()
        assert info.size == size
        head = c.head_object(bucket, key)
        assert (head.size, head.etag, head.content_type) == (size, info.etag, "application/x-test")
        assert head.metadata == {"size": str(size)}
        assert head.version_id == info.version_id
        got = c.get_object(bucket, key)
        assert len(got) == size
        assert hashlib.md5(got).hexdigest() == info.etag
        assert got == data


def test_streamed_get_of_large_object_comes_in_chunks(cluster: DevCluster, bucket: str) -> None:
    data = os.urandom(5 * 1024 * 1024 + 7)
    with cluster.client() as c:
        c.put_object(bucket, "stream/5m", data)
        pieces = []
        with c.get_object_stream(bucket, "stream/5m") as s:
            assert s.info.size == len(data)
            pieces.extend(s)
        assert len(pieces) > 1
        assert b"".join(pieces) == data


@pytest.mark.parametrize(
    ("spec", "expect"),
    [
        ("bytes=0-0", slice(0, 1)),
        ("bytes=10-19", slice(10, 20)),
        ("bytes=100-", slice(100, None)),
        ("bytes=-7", slice(-7, None)),
        ("bytes=0-999999999", slice(0, None)),
        # Crosses chunk boundaries of the stored body (1 MiB chunks).
        ("bytes=1048570-2097160", slice(1048570, 2097161)),
    ],
)
def test_ranged_reads(cluster: DevCluster, bucket: str, spec: str, expect: slice) -> None:
    data = random.randbytes(3 * 1024 * 1024 + 11)
    with cluster.client() as c:
        c.put_object(bucket, "ranged", data)
        assert c.get_object(bucket, "ranged", range=spec) == data[expect]
        # The same ranges on an inline body, where they are satisfiable.
        small = bytes(range(200))
        c.put_object(bucket, "ranged-small", small)
        if expect.start is None or expect.start < len(small):
            assert c.get_object(bucket, "ranged-small", range=spec) == small[expect]


def test_bad_ranges_are_invalid_range(cluster: DevCluster, bucket: str) -> None:
    with cluster.client() as c:
        c.put_object(bucket, "r", b"abc")
        c.put_object(bucket, "empty", b"")
        with pytest.raises(errors.InvalidRange):
            c.get_object(bucket, "r", range=ByteRange(3, 5))
        with pytest.raises(errors.InvalidRange):
            c.get_object(bucket, "r", range=ByteRange(2, 1))
        with pytest.raises(errors.InvalidRange):
            c.get_object(bucket, "empty", range="bytes=0-0")
        with pytest.raises(errors.InvalidRange):
            c.get_object(bucket, "r", range="bytes=x-y")


def test_overwrite_and_delete(cluster: DevCluster, bucket: str) -> None:
    with cluster.client() as c:
        first = c.put_object(bucket, "ow", b"one")
        second = c.put_object(bucket, "ow", b"two")
        # An unversioned bucket keeps one version of a key, S3's "null" version.
        assert first.version_id == second.version_id == "null"
        assert second.last_modified >= first.last_modified
        versions = c.list_object_versions(bucket, prefix="ow").versions
        assert [(v.version_id, v.etag, v.is_latest) for v in versions] == [
            ("null", second.etag, True)
        ]
        assert c.get_object(bucket, "ow") == b"two"
        c.delete_object(bucket, "ow")
        with pytest.raises(errors.NoSuchKey):
            c.get_object(bucket, "ow")
        with pytest.raises(errors.NoSuchKey):
            c.head_object(bucket, "ow")
        # S3 answers a DELETE of a missing key with success.
        c.delete_object(bucket, "ow")
        assert "ow" not in {e.key for e in c.list_objects(bucket, prefix="ow").contents}


def test_a_conditional_delete_deletes_only_what_it_names(cluster: DevCluster, bucket: str) -> None:
    """The SDK's if_match (the S3 door's If-Match, over gRPC and the door)."""
    with cluster.client() as c:
        old = c.put_object(bucket, "cd", b"one")
        new = c.put_object(bucket, "cd", b"two")
        with pytest.raises(errors.PreconditionFailed):
            c.delete_object(bucket, "cd", if_match=old.etag)
        assert c.get_object(bucket, "cd") == b"two"
        c.delete_object(bucket, "cd", if_match=f'"{old.etag}", "{new.etag}"')
        with pytest.raises(errors.NoSuchKey):
            c.get_object(bucket, "cd")
        with pytest.raises(errors.NoSuchKey):
            c.delete_object(bucket, "cd", if_match="*")


def _model_listing(
    keys: list[str], prefix: str, delimiter: str | None
) -> tuple[list[str], list[str]]:
    contents: list[str] = []
    prefixes: list[str] = []
    for k in sorted(keys, key=lambda s: s.encode()):
        if not k.startswith(prefix):
            continue
        rest = k[len(prefix) :]
        if delimiter and delimiter in rest:
            p = prefix + rest[: rest.index(delimiter) + len(delimiter)]
            if p not in prefixes:
                prefixes.append(p)
        else:
            contents.append(k)
    return contents, prefixes


def test_listing_matches_a_model_over_2600_keys(cluster: DevCluster) -> None:
    rng = random.Random(7)
    keys: list[str] = []
    for i in range(2600):
        depth = rng.choice([0, 1, 2])
        parts = [rng.choice(["photos", "logs", "ünïcode", "a", "a-b", "z"]) for _ in range(depth)]
        keys.append("/".join([*parts, f"obj-{i:05d}"]))
    deleted = set(rng.sample(keys, 100))
    with cluster.client() as c:
        c.create_bucket("listing")

        async def fill() -> None:
            import asyncio

            from tristore.client import AsyncClient

            async with AsyncClient(cluster.endpoint) as ac:
                sem = asyncio.Semaphore(32)

                async def put(k: str) -> None:
                    async with sem:
                        await ac.put_object("listing", k, k.encode())

                await asyncio.gather(*(put(k) for k in keys))
                for k in deleted:
                    await ac.delete_object("listing", k)

        import asyncio

        asyncio.run(fill())
        live = [k for k in keys if k not in deleted]

        for prefix, delimiter, page_size in [
            ("", None, 1000),
            ("", "/", 7),
            ("photos/", "/", 50),
            ("a", None, 333),
            ("ünïcode/", None, 1000),
            ("nothing-here/", "/", 10),
        ]:
            want_contents, want_prefixes = _model_listing(live, prefix, delimiter)
            got_contents: list[str] = []
            got_prefixes: list[str] = []
            token = None
            pages = 0
            while True:
                page = c.list_objects(
                    "listing",
                    prefix=prefix,
                    delimiter=delimiter,
                    max_keys=page_size,
                    continuation_token=token,
                )
                pages += 1
                assert len(page.contents) + len(page.common_prefixes) <= page_size
                got_contents += [e.key for e in page.contents]
                got_prefixes += page.common_prefixes
                if not page.is_truncated:
                    assert page.next_continuation_token is None
                    break
                token = page.next_continuation_token
                assert pages < 1000
            assert got_contents == want_contents, (prefix, delimiter)
            assert got_prefixes == want_prefixes, (prefix, delimiter)
            if prefix == "" and delimiter is None:
                assert pages == 3  # 2500 live keys, 1000 a page

        # start-after skips everything up to and including the given key.
        start = sorted(live, key=lambda s: s.encode())[1234]
        page = c.list_objects("listing", start_after=start, max_keys=5)
        assert [e.key for e in page.contents] == sorted(live, key=lambda s: s.encode())[1235:1240]
        entry = c.list_objects("listing", prefix=live[0], max_keys=1).contents[0]
        assert entry.size == len(live[0].encode())
        assert entry.etag == hashlib.md5(live[0].encode()).hexdigest()


def test_buckets(cluster: DevCluster) -> None:
    with cluster.client() as c:
        c.create_bucket("bkt-life")
        assert "bkt-life" in {b.name for b in c.list_buckets()}
        with pytest.raises(errors.BucketAlreadyOwnedByYou):
            c.create_bucket("bkt-life")
        c.put_object("bkt-life", "x", b"1")
        with pytest.raises(errors.BucketNotEmpty):
            c.delete_bucket("bkt-life")
        c.delete_object("bkt-life", "x")
        c.delete_bucket("bkt-life")
        assert "bkt-life" not in {b.name for b in c.list_buckets()}
        with pytest.raises(errors.NoSuchBucket):
            c.put_object("bkt-life", "x", b"1")
        with pytest.raises(errors.NoSuchBucket):
            c.delete_bucket("bkt-life")


def test_upload_file_and_download_file(cluster: DevCluster, bucket: str, tmp_path: Path) -> None:
    """The SDK's whole-file calls: one PUT for a small file, a multipart upload
    of MD5-checked parts for a large one; a download that fails leaves no file."""
    mib = 1024 * 1024
    small, large = tmp_path / "small.bin", tmp_path / "large.bin"
    small.write_bytes(random.randbytes(100_000))
    large.write_bytes(random.randbytes(12 * mib + 123))
    out = tmp_path / "out"
    out.mkdir()
    with cluster.client() as c:
        info = c.upload_file(small, bucket, "files/small", "text/x-small", {"from": "file"})
        assert info.etag == hashlib.md5(small.read_bytes()).hexdigest()
        got = c.download_file(bucket, "files/small", out / "small")
        assert (out / "small").read_bytes() == small.read_bytes()
        assert (got.content_type, got.metadata) == ("text/x-small", {"from": "file"})

        info = c.upload_file(
            large, bucket, "files/large", multipart_threshold=5 * mib, part_size=5 * mib, parallel=2
        )
        assert info.size == large.stat().st_size and info.etag.endswith("-3"), info.etag
        assert not c.list_multipart_uploads(bucket, prefix="files/").uploads
        got = c.download_file(bucket, "files/large", out / "large")
        assert (out / "large").read_bytes() == large.read_bytes()
        assert got.etag == info.etag
        # Again over an existing file: replaced whole.
        c.download_file(bucket, "files/small", out / "large")
        assert (out / "large").read_bytes() == small.read_bytes()

        with pytest.raises(errors.NoSuchKey):
            c.download_file(bucket, "files/never", out / "never")
        assert sorted(p.name for p in out.iterdir()) == ["large", "small"], "no partial files"
        with pytest.raises(errors.InvalidArgument, match="5 MiB"):
            c.upload_file(large, bucket, "files/x", multipart_threshold=mib, part_size=mib)
        with pytest.raises(errors.InvalidArgument, match="not a file"):
            c.upload_file(tmp_path, bucket, "files/dir")
        with pytest.raises(errors.InvalidArgument, match="directory"):
            c.download_file(bucket, "files/small", out)
