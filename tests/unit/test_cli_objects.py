"""The S3-semantics commands without a cluster: argument parsing, the checks that
fail before any connection, and the pure formatting helpers."""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
from pathlib import Path

import pytest

from tristore.cli import objects
from tristore.cli.main import build_parser, run
from tristore.cli.util import S3Url
from tristore.errors import InvalidArgument, KeyTooLongError
from tristore.model import DeleteResult, VersionEntry, VersionPage

pytestmark = pytest.mark.unit

VID = "000001a2082a915f0000000000010002"
T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def entry(key: str, vid: str = VID, *, latest: bool = False, marker: bool = False) -> VersionEntry:
    return VersionEntry(key, vid, latest, marker, 0 if marker else 42, "etag", T0)


# --- parsing -----------------------------------------------------------------


@pytest.mark.parametrize("action", ["enable", "suspend", "status"])
def test_version_actions(action: str) -> None:
    args = parse("version", action, "s3://bkt", "--json")
    assert (args.func, args.action, args.bucket, args.json) == (
        objects.cmd_version,
        action,
        "s3://bkt",
        True,
    )


def test_version_rejects_other_actions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse("version", "disable", "s3://bkt")
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_tag_arguments() -> None:
    args = parse("tag", "s3://b/k", "a=1", "b=x=y", "--version-id", "null")
    assert (args.func, args.url, args.tags, args.version_id) == (
        objects.cmd_tag,
        "s3://b/k",
        ["a=1", "b=x=y"],
        "null",
    )
    assert not args.delete and not args.json
    args = parse("tag", "s3://b/k", "--delete")
    assert args.tags == [] and args.delete


def test_tag_takes_a_bucket_url_too() -> None:
    """``tag s3://BUCKET``: the bucket's own tags (the URL decides, as for ``mc tag``)."""
    args = parse("tag", "s3://b", "a=1", "--json")
    assert (args.func, args.url, args.tags, args.json) == (objects.cmd_tag, "s3://b", ["a=1"], True)
    assert parse("tag", "s3://b/", "--delete").delete


def test_acl_arguments() -> None:
    assert parse("acl", "s3://b/k").canned is None
    args = parse("acl", "s3://b/k", "public-read", "--version-id", VID, "--json")
    assert (args.func, args.canned, args.version_id, args.json) == (
        objects.cmd_acl,
        "public-read",
        VID,
        True,
    )


@pytest.mark.parametrize(
    ("between", "attr", "value"),
    [
        (["--version-id", VID], "version_id", VID),
        (["--json"], "json", True),
        (["--endpoint", "127.0.0.1:7101"], "endpoint", "127.0.0.1:7101"),
        (["--delete"], "delete", True),
    ],
)
def test_options_between_the_url_and_the_tags_or_acl(
    between: list[str], attr: str, value: object
) -> None:
    # argparse binds every positional at the URL; intermixed parsing takes the rest after.
    args = parse("tag", "s3://b/k", *between, "x=1", "y=2")
    assert (args.url, args.tags, getattr(args, attr)) == ("s3://b/k", ["x=1", "y=2"], value)
    if attr != "delete":  # acl has no --delete
        args = parse("acl", "s3://b/k", *between, "public-read")
        assert (args.url, args.canned, getattr(args, attr)) == ("s3://b/k", "public-read", value)


def test_tag_delete_with_tags_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["tag", "s3://bkt/k", "--delete", "a=1"]) == 1
    assert capsys.readouterr().err == (
        "InvalidArgument: give K=V tags to set, or --delete to remove them all, not both\n"
    )


def test_ls_versions_arguments() -> None:
    args = parse("ls", "s3://b/p/", "--versions", "--key-marker", "p/a", "--version-id-marker", VID)
    assert (args.versions, args.key_marker, args.version_id_marker) == (True, "p/a", VID)
    plain = parse("ls", "s3://b")
    assert (plain.versions, plain.key_marker, plain.version_id_marker) == (False, None, None)


def test_cp_write_flags() -> None:
    args = parse(
        "cp", "f", "s3://b/k",
        "--tag", "a=1", "--tag", "b=2",
        "--acl", "public-read", "--storage-class", "GLACIER", "--sse", "AES256",
        "--if-none-match", "*", "--if-match", "e1",
    )  # fmt: skip
    assert args.tag == ["a=1", "b=2"]
    assert (args.acl, args.storage_class, args.sse) == ("public-read", "GLACIER", "AES256")
    assert (args.if_none_match, args.if_match) == ("*", "e1")


# --- checks before any connection ------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tag", "s3://bkt/k", "a=1", "--delete"], "not both"),
        (["tag", "s3://bkt/k", "novalue"], "NAME=VALUE"),
        (["tag", "s3://bkt/k", "a=1", "a=2"], "given twice"),
        (["tag", "s3://bkt", "novalue"], "NAME=VALUE"),
        (["tag", "s3://bkt", "=v"], "NAME=VALUE"),
        (["tag", "s3://bkt/", "a=1", "--delete"], "not both"),
        (["tag", "s3://bkt", "--version-id", VID], "--version-id: only with s3://BUCKET/KEY"),
        (["tag", "s3://Bad_Bucket"], "Bad_Bucket"),
        (["acl", "s3://bkt/"], "no key"),
        (["version", "enable", "s3://bkt/k"], "object URL"),
        (["ls", "s3://bkt", "--key-marker", "k"], "--key-marker: only with --versions"),
        (["ls", "s3://bkt", "--version-id-marker", VID], "only with --versions"),
        (["ls", "s3://bkt", "--versions", "--continuation-token", "t"], "--key-marker"),
        (["ls", "--versions"], "need s3://BUCKET"),
        (["cp", "f", "s3://bkt/k", "--version-id", VID], "--version-id: only for downloads"),
        (["cp", "s3://bkt/k", "out", "--tag", "a=1"], "--tag: only when DST"),
        (
            ["cp", "s3://bkt/k", "out", "--acl", "private", "--sse", "AES256"],
            "--acl and --sse: only when DST",
        ),
        (["cp", "s3://bkt/k", "-", "--if-match", "e"], "--if-match: only when DST"),
        (
            ["cp", "s3://bkt/a", "s3://bkt/b", "--if-none-match", "*"],
            "--if-none-match: only for uploads",
        ),
        (["cp", "s3://bkt/a", "s3://bkt/b", "--tag", "bad"], "NAME=VALUE"),
        (["cp", "s3://bkt/", "s3://bkt/b"], "no key"),
    ],
)
def test_refused_before_connecting(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRISTORE_ENDPOINT", raising=False)  # a connection attempt would say so
    assert run(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert message in err, err
    assert "TRISTORE_ENDPOINT" not in err


# --- helpers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "by_version", "line"),
    [
        (DeleteResult(), False, "delete: s3://b/k"),
        (DeleteResult(VID, True), False, f"delete: s3://b/k (delete marker {VID})"),
        (DeleteResult(VID, False), True, f"delete: s3://b/k (version {VID} removed)"),
        (DeleteResult("null", False), True, "delete: s3://b/k (version null removed)"),
        (DeleteResult(VID, True), True, f"delete: s3://b/k (delete marker {VID} removed)"),
        # An unversioned delete that names the null version it removed.
        (DeleteResult("null", False), False, "delete: s3://b/k (version null removed)"),
    ],
)
def test_describe_delete(result: DeleteResult, by_version: bool, line: str) -> None:
    assert objects.describe_delete(S3Url("b", "k"), result, by_version) == line


def test_version_lines() -> None:
    page = VersionPage(
        versions=[
            entry("a", VID, latest=True, marker=True),
            entry("a", "null"),
        ],
        common_prefixes=["dir/"],
        is_truncated=False,
        next_key_marker=None,
        next_version_id_marker=None,
    )
    pre, marker, old = objects.version_lines(page)
    assert pre.split() == ["PRE", "dir/"]
    fields = marker.split()
    assert fields[2:] == ["DEL", VID, "*", "a"]
    assert old.split()[2:] == ["42", "null", "a"]
    # The columns line up: the key starts at the same place in every line.
    assert marker.index(" a") == old.index(" a", len(old) - 2)


def test_merge_version_pages() -> None:
    p1 = VersionPage([entry("a")], ["x/"], True, "a", VID)
    p2 = VersionPage([entry("b")], [], False, None, None)
    merged = objects.merge_version_pages([p1, p2])
    assert [v.key for v in merged.versions] == ["a", "b"]
    assert merged.common_prefixes == ["x/"]
    assert (merged.is_truncated, merged.next_key_marker, merged.next_version_id_marker) == (
        False,
        None,
        None,
    )
    # One page asked for (--max-keys): its markers are kept for the next call.
    assert objects.merge_version_pages([p1]) == p1
    empty = objects.merge_version_pages([]).to_json()
    assert empty == {
        "versions": [],
        "common_prefixes": [],
        "is_truncated": False,
        "next_key_marker": None,
        "next_version_id_marker": None,
    }
    json.dumps(merged.to_json())  # the shape --json prints


@pytest.mark.parametrize(
    ("src_key", "dst", "key"),
    [
        ("a/b.txt", S3Url("d", "c.txt"), "c.txt"),
        ("a/b.txt", S3Url("d", "dir/"), "dir/b.txt"),
        ("a/b.txt", S3Url("d"), "b.txt"),
        ("plain", S3Url("d", ""), "plain"),
    ],
)
def test_copy_target(src_key: str, dst: S3Url, key: str) -> None:
    assert objects.copy_target(src_key, dst) == key


def test_copy_target_needs_a_name() -> None:
    with pytest.raises(InvalidArgument, match="no last part"):
        objects.copy_target("dir/", S3Url("d", "x/"))
    with pytest.raises(KeyTooLongError):
        objects.copy_target("k" * 10, S3Url("d", "p" * 1020 + "/"))


def test_copy_directives_follow_the_flags() -> None:
    args = parse("cp", "s3://a/k", "s3://b/k")
    d = objects.copy_directives(args, {}, {})
    assert d == {
        "metadata_directive": "COPY",
        "content_type": None,
        "metadata": None,
        "headers": None,
        "tagging_directive": "COPY",
        "tags": None,
        "acl": None,
        "storage_class": None,
        "sse": None,
        "sse_customer_key": None,
        "copy_source_sse_customer_key": None,
    }
    args = parse("cp", "s3://a/k", "s3://b/k", "--content-type", "text/plain", "--acl", "private")
    d = objects.copy_directives(args, {}, {})
    assert (d["metadata_directive"], d["content_type"], d["metadata"]) == (
        "REPLACE",
        "text/plain",
        {},
    )
    assert (d["tagging_directive"], d["acl"]) == ("COPY", "private")
    d = objects.copy_directives(args, {"m": "1"}, {"t": "2"})
    assert (d["metadata"], d["tagging_directive"], d["tags"]) == ({"m": "1"}, "REPLACE", {"t": "2"})
    # A standard header alone replaces the content type, metadata and headers too.
    args = parse("cp", "s3://a/k", "s3://b/k", "--cache-control", "no-cache")
    d = objects.copy_directives(args, {}, {})
    assert (d["metadata_directive"], d["headers"], d["metadata"]) == (
        "REPLACE",
        {"cache-control": "no-cache"},
        {},
    )


def test_sse_c_keys_from_the_command_line(tmp_path: Path) -> None:
    key = bytes(range(32))
    assert objects.sse_c_key(None) is None
    assert objects.sse_c_key(base64.b64encode(key).decode()) == key
    f = tmp_path / "k.bin"
    f.write_bytes(key)
    assert objects.sse_c_key(f"fileb://{f}") == key
    with pytest.raises(InvalidArgument, match="32 bytes"):
        objects.sse_c_key(base64.b64encode(b"short").decode())
    with pytest.raises(InvalidArgument, match="base64"):
        objects.sse_c_key("not base64 !")
    with pytest.raises(InvalidArgument, match="cannot read"):
        objects.sse_c_key(f"fileb://{tmp_path / 'missing'}")
    args = parse(
        "cp", "s3://a/k", "s3://b/k", "--sse-c-copy-source-key", base64.b64encode(key).decode()
    )
    assert objects.copy_directives(args, {}, {})["copy_source_sse_customer_key"] == key


def test_format_tags_and_versioning_label() -> None:
    assert objects.format_tags({"b": "2", "a": "x=y", "c": ""}) == "a=x=y\nb=2\nc="
    assert objects.format_tags({}) == ""
    assert objects.versioning_label("") == "Unversioned"
    assert objects.versioning_label("Suspended") == "Suspended"
