"""S3 object semantics through the ``tristore`` command, on real processes:
``version``, ``ls --versions``, ``tag``, ``acl``, server-side ``cp``, conditional
uploads, and ``rm``/``stat``/``cat --version-id``. The SDK-level checks of the
same features are in test_versioning.py; these check what a user of the CLI
sees: the lines printed, the JSON shapes, the exit codes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import DevCluster

pytestmark = [pytest.mark.integration]


def out(r: subprocess.CompletedProcess[bytes]) -> str:
    return r.stdout.decode()


def as_json(r: subprocess.CompletedProcess[bytes]) -> Any:
    return json.loads(r.stdout)


def error_line(r: subprocess.CompletedProcess[bytes], code: str) -> str:
    """Exit 1 and exactly one ``Code: message`` line on stderr."""
    assert r.returncode == 1, (out(r), r.stderr)
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{code}: "), r.stderr
    return lines[0]


def put(cluster: DevCluster, url: str, body: bytes, *flags: str) -> None:
    cluster.cli("cp", "-", url, *flags, input=body)


def stat(cluster: DevCluster, url: str, *flags: str) -> dict[str, Any]:
    info = as_json(cluster.cli("stat", url, "--json", *flags))
    assert isinstance(info, dict)
    return info


def versioned_bucket(cluster: DevCluster, name: str) -> str:
    cluster.cli("mb", f"s3://{name}")
    cluster.cli("version", "enable", f"s3://{name}")
    return name


# --- version ---------------------------------------------------------------------


def test_version_enable_suspend_status(cluster: DevCluster) -> None:
    cluster.cli("mb", "s3://cli-vers")
    assert out(cluster.cli("version", "status", "s3://cli-vers")) == "Unversioned\n"
    assert as_json(cluster.cli("version", "status", "s3://cli-vers", "--json")) == {
        "bucket": "cli-vers",
        "status": "Unversioned",
    }
    r = cluster.cli("version", "enable", "s3://cli-vers")
    assert out(r) == "versioning: s3://cli-vers Enabled\n"
    assert out(cluster.cli("version", "status", "s3://cli-vers")) == "Enabled\n"
    r = cluster.cli("version", "suspend", "s3://cli-vers", "--json")
    assert as_json(r) == {"bucket": "cli-vers", "status": "Suspended"}
    assert out(cluster.cli("version", "status", "s3://cli-vers")) == "Suspended\n"
    error_line(
        cluster.cli("version", "enable", "s3://cli-no-such-bucket", check=False), "NoSuchBucket"
    )


# --- ls --versions ---------------------------------------------------------------------


def test_ls_versions_lines_json_and_paging(cluster: DevCluster) -> None:
    b = versioned_bucket(cluster, "cli-lsv")
    put(cluster, f"s3://{b}/k", b"one")
    first = stat(cluster, f"s3://{b}/k")["version_id"]
    put(cluster, f"s3://{b}/k", b"two!")
    second = stat(cluster, f"s3://{b}/k")["version_id"]
    put(cluster, f"s3://{b}/other", b"x")
    marker = out(cluster.cli("rm", f"s3://{b}/k"))
    assert marker.startswith(f"delete: s3://{b}/k (delete marker ") and marker.endswith(")\n")
    marker_id = marker.rsplit(" ", 1)[-1].rstrip(")\n")

    lines = out(cluster.cli("ls", f"s3://{b}", "--versions")).splitlines()
    rows = [line.split()[2:] for line in lines]
    assert rows == [
        ["DEL", marker_id, "*", "k"],
        ["4", second, "k"],
        ["3", first, "k"],
        ["1", rows[3][1], "*", "other"],
    ]

    everything = as_json(cluster.cli("ls", f"s3://{b}", "--versions", "--json"))
    assert set(everything) == {
        "versions",
        "common_prefixes",
        "is_truncated",
        "next_key_marker",
        "next_version_id_marker",
    }
    assert [(v["key"], v["version_id"]) for v in everything["versions"]] == [
        ("k", marker_id),
        ("k", second),
        ("k", first),
        ("other", rows[3][1]),
    ]
    assert everything["versions"][0]["delete_marker"] and everything["versions"][0]["is_latest"]
    assert everything["is_truncated"] is False

    # One page at a time, resuming from the markers of the page before.
    seen: list[tuple[str, str]] = []
    flags: list[str] = []
    for _ in range(10):
        page = as_json(
            cluster.cli("ls", f"s3://{b}", "--versions", "--json", "--max-keys", "1", *flags)
        )
        seen += [(v["key"], v["version_id"]) for v in page["versions"]]
        if not page["is_truncated"]:
            break
        flags = [
            "--key-marker",
            page["next_key_marker"],
            "--version-id-marker",
            page["next_version_id_marker"],
        ]
    assert seen == [(v["key"], v["version_id"]) for v in everything["versions"]]

    # Text mode with --max-keys says on stderr how to go on.
    r = cluster.cli("ls", f"s3://{b}", "--versions", "--max-keys", "2")
    assert len(out(r).splitlines()) == 2
    assert f"--key-marker k --version-id-marker {second}" in r.stderr.decode()


# --- rm / stat / cat --version-id ---------------------------------------------------------


def test_rm_stat_cat_by_version(cluster: DevCluster) -> None:
    b = versioned_bucket(cluster, "cli-byvid")
    put(cluster, f"s3://{b}/k", b"old", "--storage-class", "STANDARD_IA", "--tag", "a=1")
    old = stat(cluster, f"s3://{b}/k")
    assert (old["tag_count"], old["storage_class"], old["sse"]) == (1, "STANDARD_IA", "")
    put(cluster, f"s3://{b}/k", b"newer", "--sse", "AES256")
    new = stat(cluster, f"s3://{b}/k")
    assert (new["tag_count"], new["storage_class"], new["sse"]) == (0, "STANDARD", "AES256")

    assert stat(cluster, f"s3://{b}/k", "--version-id", old["version_id"])["size"] == 3
    text = out(cluster.cli("stat", f"s3://{b}/k", "--version-id", old["version_id"]))
    assert "tag_count:" in text and "storage_class:" in text and "STANDARD_IA" in text
    assert cluster.cli("cat", f"s3://{b}/k", "--version-id", old["version_id"]).stdout == b"old"
    assert cluster.cli("cat", f"s3://{b}/k").stdout == b"newer"

    r = cluster.cli("rm", f"s3://{b}/k", "--version-id", new["version_id"])
    assert out(r) == f"delete: s3://{b}/k (version {new['version_id']} removed)\n"
    assert cluster.cli("cat", f"s3://{b}/k").stdout == b"old"  # the older one is current again

    gone = cluster.cli("cat", f"s3://{b}/k", "--version-id", new["version_id"], check=False)
    error_line(gone, "NoSuchVersion")


def test_rm_in_an_unversioned_bucket_prints_no_version(cluster: DevCluster) -> None:
    cluster.cli("mb", "s3://cli-plain")
    put(cluster, "s3://cli-plain/k", b"x")
    assert out(cluster.cli("rm", "s3://cli-plain/k")) == "delete: s3://cli-plain/k\n"


def test_rm_in_a_suspended_bucket_adds_a_null_marker(cluster: DevCluster) -> None:
    b = versioned_bucket(cluster, "cli-susp")
    cluster.cli("version", "suspend", f"s3://{b}")
    put(cluster, f"s3://{b}/k", b"x")
    assert stat(cluster, f"s3://{b}/k")["version_id"] == "null"
    r = cluster.cli("rm", f"s3://{b}/k")
    assert out(r) == f"delete: s3://{b}/k (delete marker null)\n"


# --- tag -------------------------------------------------------------------------------


def test_tag_show_set_delete(cluster: DevCluster) -> None:
    cluster.cli("mb", "s3://cli-tags")
    url = "s3://cli-tags/k"
    put(cluster, url, b"x", "--tag", "team=blue", "--tag", "env=prod")
    assert out(cluster.cli("tag", url)) == "env=prod\nteam=blue\n"
    assert stat(cluster, url)["tag_count"] == 2

    r = cluster.cli("tag", url, "owner=ann", "cost=a+b=c")
    assert out(r).startswith(f"tagging: {url} (2 tags")
    assert as_json(cluster.cli("tag", url, "--json"))["tags"] == {
        "cost": "a+b=c",
        "owner": "ann",
    }

    cluster.cli("tag", url, "--delete")
    assert out(cluster.cli("tag", url)) == ""
    assert as_json(cluster.cli("tag", url, "--json"))["tags"] == {}
    assert stat(cluster, url)["tag_count"] == 0

    error_line(cluster.cli("tag", url, "aws:x=1", check=False), "InvalidTag")
    many = [f"k{i}=v" for i in range(11)]
    error_line(cluster.cli("tag", url, *many, check=False), "InvalidTag")
    error_line(cluster.cli("tag", "s3://cli-tags/missing", check=False), "NoSuchKey")


def test_tag_one_version(cluster: DevCluster) -> None:
    b = versioned_bucket(cluster, "cli-tagv")
    put(cluster, f"s3://{b}/k", b"1")
    first = stat(cluster, f"s3://{b}/k")["version_id"]
    put(cluster, f"s3://{b}/k", b"2")
    r = cluster.cli("tag", f"s3://{b}/k", "old=yes", "--version-id", first, "--json")
    assert as_json(r) == {"version_id": first, "tags": {"old": "yes"}}
    assert out(cluster.cli("tag", f"s3://{b}/k")) == ""  # the current version is untouched
    assert out(cluster.cli("tag", f"s3://{b}/k", "--version-id", first)) == "old=yes\n"


def test_tag_a_bucket(cluster: DevCluster) -> None:
    """``tag s3://BUCKET``: the bucket's own tags (Put/Get/DeleteBucketTagging),
    as the SDK and the other door see them; its objects' tags are untouched."""
    b = "cli-btags"
    url = f"s3://{b}"
    cluster.cli("mb", url)
    put(cluster, f"{url}/k", b"x", "--tag", "obj=1")

    # None yet: S3's NoSuchTagSet, shown as an empty set and said on stderr.
    r = cluster.cli("tag", url)
    assert (out(r), r.stderr.decode()) == ("", f"{url} has no tags\n")
    assert as_json(cluster.cli("tag", url, "--json")) == {"bucket": b, "tags": {}}

    r = cluster.cli("tag", url, "team=blue", "cost=a+b=c", "empty=")
    assert out(r) == f"tagging: {url} (3 tags)\n"
    assert out(cluster.cli("tag", url)) == "cost=a+b=c\nempty=\nteam=blue\n"
    assert out(cluster.cli("tag", f"{url}/")) == "cost=a+b=c\nempty=\nteam=blue\n"
    assert as_json(cluster.cli("tag", url, "--json")) == {
        "bucket": b,
        "tags": {"cost": "a+b=c", "empty": "", "team": "blue"},
    }
    with cluster.client() as c:
        assert c.get_bucket_tagging(b) == {"cost": "a+b=c", "empty": "", "team": "blue"}
    assert out(cluster.cli("tag", f"{url}/k")) == "obj=1\n"

    # A put replaces the whole set; a bucket takes up to 50 (an object 10).
    fifty = [f"k{i:02}=v" for i in range(50)]
    assert out(cluster.cli("tag", url, *fifty)) == f"tagging: {url} (50 tags)\n"
    r = cluster.cli("tag", url, "only=one", "--json")
    assert as_json(r) == {"bucket": b, "tags": {"only": "one"}}

    # Bad input changes nothing.
    error_line(cluster.cli("tag", url, "novalue", check=False), "InvalidArgument")
    error_line(cluster.cli("tag", url, "=v", check=False), "InvalidArgument")
    error_line(cluster.cli("tag", url, "a=1", "a=2", check=False), "InvalidArgument")
    error_line(cluster.cli("tag", url, "aws:x=1", check=False), "InvalidTag")
    error_line(cluster.cli("tag", url, *fifty, "k50=v", check=False), "InvalidTag")
    error_line(cluster.cli("tag", url, "a=1", "--delete", check=False), "InvalidArgument")
    error_line(cluster.cli("tag", url, "--version-id", "null", check=False), "InvalidArgument")
    assert out(cluster.cli("tag", url)) == "only=one\n"

    r = cluster.cli("tag", url, "--delete")
    assert out(r) == f"tagging: {url} (0 tags)\n"
    assert out(cluster.cli("tag", url)) == ""
    cluster.cli("tag", url, "--delete")  # none left: no error, as S3's DeleteBucketTagging
    assert out(cluster.cli("tag", f"{url}/k")) == "obj=1\n"

    error_line(cluster.cli("tag", "s3://cli-btags-missing", check=False), "NoSuchBucket")
    error_line(cluster.cli("tag", "s3://cli-btags-missing", "a=1", check=False), "NoSuchBucket")


# --- acl -------------------------------------------------------------------------------


def test_acl_show_and_set(cluster: DevCluster) -> None:
    cluster.cli("mb", "s3://cli-acl")
    url = "s3://cli-acl/k"
    put(cluster, url, b"x")
    shown = out(cluster.cli("acl", url)).splitlines()
    assert shown[0].startswith("owner:") and shown[1].split() == ["acl:", "private"]
    assert out(cluster.cli("acl", url, "public-read")) == f"acl: {url} public-read\n"
    got = as_json(cluster.cli("acl", url, "--json"))
    assert got["acl"] == "public-read" and set(got) == {"version_id", "owner", "acl"}
    put(cluster, "s3://cli-acl/k2", b"y", "--acl", "bucket-owner-read")
    assert as_json(cluster.cli("acl", "s3://cli-acl/k2", "--json"))["acl"] == "bucket-owner-read"
    error_line(cluster.cli("acl", url, "world-writable", check=False), "InvalidArgument")


# --- cp: server-side copy and conditional uploads -----------------------------------------


def test_server_side_copy(cluster: DevCluster) -> None:
    cluster.cli("mb", "s3://cli-copy-a")
    cluster.cli("mb", "s3://cli-copy-b")
    src = "s3://cli-copy-a/dir/src.txt"
    put(cluster, src, b"body", "--meta", "color=red", "--content-type", "text/plain")
    cluster.cli("tag", src, "t=1")

    r = cluster.cli("cp", src, "s3://cli-copy-b/dst.txt")
    assert out(r).startswith(f"copy: {src} to s3://cli-copy-b/dst.txt (4 bytes, etag ")
    copied = stat(cluster, "s3://cli-copy-b/dst.txt")
    assert copied["metadata"] == {"color": "red"} and copied["content_type"] == "text/plain"
    assert copied["tag_count"] == 1
    assert cluster.cli("cat", "s3://cli-copy-b/dst.txt").stdout == b"body"

    # A directory-like destination takes the source key's last part.
    cluster.cli("cp", src, "s3://cli-copy-b/into/")
    assert cluster.cli("cat", "s3://cli-copy-b/into/src.txt").stdout == b"body"

    # --meta replaces the metadata (and the content type), --tag the tags.
    cluster.cli(
        "cp", src, "s3://cli-copy-b/r.txt", "--meta", "size=L", "--tag", "a=1", "--tag", "b=2"
    )
    replaced = stat(cluster, "s3://cli-copy-b/r.txt")
    assert replaced["metadata"] == {"size": "L"}
    assert replaced["content_type"] == "binary/octet-stream"
    assert replaced["tag_count"] == 2

    # ACL, storage class and encryption are the copy's own.
    cluster.cli(
        "cp", src, "s3://cli-copy-b/g.txt", "--storage-class", "GLACIER", "--sse", "aws:kms"
    )
    g = stat(cluster, "s3://cli-copy-b/g.txt")
    assert (g["storage_class"], g["sse"]) == ("GLACIER", "aws:kms")

    # Onto itself: only with a change.
    error_line(cluster.cli("cp", src, src, check=False), "InvalidRequest")
    cluster.cli("cp", src, src, "--storage-class", "STANDARD_IA")
    assert stat(cluster, src)["storage_class"] == "STANDARD_IA"

    error_line(
        cluster.cli("cp", "s3://cli-copy-a/missing", "s3://cli-copy-b/x", check=False),
        "NoSuchKey",
    )


def test_cp_stores_standard_headers(cluster: DevCluster, tmp_path: Path) -> None:
    cluster.cli("mb", "s3://cli-headers")
    src = tmp_path / "report.csv.gz"
    src.write_bytes(b"\x1f\x8b")
    url = "s3://cli-headers/report.csv.gz"
    cluster.cli(
        "cp", str(src), url, "--cache-control", "max-age=60",
        "--content-disposition", 'attachment; filename="report.csv"',
        "--content-encoding", "gzip", "--content-language", "en",
        "--expires", "Thu, 01 Dec 2044 16:00:00 GMT",
    )  # fmt: skip
    assert stat(cluster, url)["headers"] == {
        "cache-control": "max-age=60",
        "content-disposition": 'attachment; filename="report.csv"',
        "content-encoding": "gzip",
        "content-language": "en",
        "expires": "Thu, 01 Dec 2044 16:00:00 GMT",
    }
    # A copy keeps them; a standard header given on a copy replaces them all
    # (with the metadata and content type: S3's REPLACE directive).
    cluster.cli("cp", url, "s3://cli-headers/kept.gz")
    assert stat(cluster, "s3://cli-headers/kept.gz")["headers"]["content-encoding"] == "gzip"
    cluster.cli("cp", url, "s3://cli-headers/new.gz", "--cache-control", "no-cache")
    assert stat(cluster, "s3://cli-headers/new.gz")["headers"] == {"cache-control": "no-cache"}
    # Not for a download, and a bad value is refused before anything is stored.
    error_line(
        cluster.cli("cp", url, str(tmp_path / "x"), "--cache-control", "x", check=False),
        "InvalidArgument",
    )
    error_line(
        cluster.cli("cp", str(src), "s3://cli-headers/bad", "--expires", "a\tb\x01", check=False),
        "InvalidArgument",
    )
    error_line(cluster.cli("stat", "s3://cli-headers/bad", check=False), "NoSuchKey")


def test_copy_of_an_older_version(cluster: DevCluster) -> None:
    b = versioned_bucket(cluster, "cli-copyv")
    put(cluster, f"s3://{b}/k", b"first")
    first = stat(cluster, f"s3://{b}/k")["version_id"]
    put(cluster, f"s3://{b}/k", b"second")
    cluster.cli("cp", f"s3://{b}/k", f"s3://{b}/restored", "--version-id", first)
    assert cluster.cli("cat", f"s3://{b}/restored").stdout == b"first"
    # Copying an old version onto its own key restores it (S3's documented way).
    cluster.cli("cp", f"s3://{b}/k", f"s3://{b}/k", "--version-id", first)
    assert cluster.cli("cat", f"s3://{b}/k").stdout == b"first"


def test_conditional_uploads(cluster: DevCluster) -> None:
    cluster.cli("mb", "s3://cli-cond")
    url = "s3://cli-cond/k"
    put(cluster, url, b"one", "--if-none-match", "*")
    r = cluster.cli("cp", "-", url, "--if-none-match", "*", input=b"two", check=False)
    error_line(r, "PreconditionFailed")
    assert cluster.cli("cat", url).stdout == b"one"

    etag = stat(cluster, url)["etag"]
    r = cluster.cli("cp", "-", url, "--if-match", "0" * 32, input=b"two", check=False)
    error_line(r, "PreconditionFailed")
    put(cluster, url, b"two", "--if-match", etag)
    assert cluster.cli("cat", url).stdout == b"two"

    r = cluster.cli("cp", "-", url, "--if-none-match", "etag", input=b"x", check=False)
    assert "'*'" in error_line(r, "InvalidArgument")
