"""Planning of the bulk commands without a cluster: filters, prefixes, the
local tree, safe download paths, the sync comparison, plans, and the flags
refused before any connection."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from tristore.cli import bulk
from tristore.cli.bulk import Entry, Side
from tristore.cli.main import build_parser, run
from tristore.cli.objects import ls_delimiter
from tristore.cli.util import S3Url
from tristore.errors import InvalidArgument, KeyTooLongError

pytestmark = pytest.mark.unit

MD5_A = "0cc175b9c0f1b6a831c399e269772661"  # md5(b"a")
MD5_B = "92eb5ffee6ae2fec3ad71c777531578f"  # md5(b"b")


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def no_md5(path: Path) -> str:
    raise AssertionError(f"{path} should not be hashed")


# --- filters and prefixes ------------------------------------------------------------


def test_filters_keep_their_order_and_the_last_match_wins() -> None:
    args = parse("sync", "d", "s3://b", "--exclude", "*", "--include", "*.txt", "--exclude", "x/*")
    assert args.filters == [("exclude", "*"), ("include", "*.txt"), ("exclude", "x/*")]
    assert bulk.included("a/b.txt", args.filters)
    assert not bulk.included("a/b.bin", args.filters)
    assert not bulk.included("x/b.txt", args.filters)
    assert bulk.included("anything", [])


@pytest.mark.parametrize(
    ("key", "prefix"), [("", ""), ("dir", "dir/"), ("dir/", "dir/"), ("a/b", "a/b/")]
)
def test_s3_prefix_is_taken_as_a_folder(key: str, prefix: str) -> None:
    assert bulk.s3_prefix(S3Url("b", key)) == prefix


@pytest.mark.parametrize(
    ("delimiter", "recursive", "want"), [(None, False, "/"), (None, True, None), ("-", False, "-")]
)
def test_ls_is_one_level_by_default(delimiter: str | None, recursive: bool, want: str) -> None:
    assert ls_delimiter(delimiter, recursive) == want


def test_ls_refuses_recursive_with_a_delimiter() -> None:
    with pytest.raises(InvalidArgument, match="--recursive"):
        ls_delimiter("/", True)


# --- the local side ------------------------------------------------------------------


def test_local_entries_walk_nested_dirs_and_skip_empty_ones(tmp_path: Path) -> None:
    (tmp_path / "a/b/c").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    (tmp_path / "a/b/c/deep").write_bytes(b"123")
    (tmp_path / "top").write_bytes(b"")
    os.symlink(tmp_path / "a", tmp_path / "link-to-dir")
    got = bulk.local_entries(tmp_path)
    assert [(e.rel, e.size) for e in got] == [("a/b/c/deep", 3), ("top", 0)]
    assert got[0].path == tmp_path / "a/b/c/deep"


def test_local_entries_need_a_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(InvalidArgument, match="not a directory"):
        bulk.local_entries(tmp_path / "f")


@pytest.mark.parametrize(
    ("rel", "want"),
    [("a/b", "a/b"), ("a//b", "a/b"), ("/lead", "lead"), ("x///y//z", "x/y/z")],
)
def test_local_path_collapses_slash_runs(tmp_path: Path, rel: str, want: str) -> None:
    assert bulk.local_path(tmp_path, rel) == tmp_path / want


@pytest.mark.parametrize("rel", ["../x", "a/../../x", "a/./b", "..", "a/..", "dir/", ""])
def test_local_path_refuses_what_would_leave_the_destination(tmp_path: Path, rel: str) -> None:
    with pytest.raises(InvalidArgument):
        bulk.local_path(tmp_path / "dest", rel)


def test_local_path_refuses_a_symlink_out(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(tmp_path, dest / "out")
    with pytest.raises(InvalidArgument, match="outside"):
        bulk.local_path(dest, "out/x")


# --- the sync comparison ---------------------------------------------------------------


def remote(rel: str, size: int, etag: str, mtime: float = 100.0) -> Entry:
    return Entry(rel, size, mtime, etag)


def local(tmp_path: Path, rel: str, body: bytes, mtime: float = 100.0) -> Entry:
    path = tmp_path / rel
    path.write_bytes(body)
    return Entry(rel, len(body), mtime, path=path)


def test_differs_missing_and_size(tmp_path: Path) -> None:
    src = local(tmp_path, "f", b"a")
    assert bulk.differs(src, None, no_md5) == bulk.NEW
    assert bulk.differs(src, remote("f", 2, MD5_A), no_md5) == bulk.SIZE


def test_differs_by_md5_when_the_etag_is_one(tmp_path: Path) -> None:
    src = local(tmp_path, "f", b"a", mtime=500.0)
    assert bulk.differs(src, remote("f", 1, f'"{MD5_A}"'), bulk.file_md5) == ""  # same bytes
    assert bulk.differs(src, remote("f", 1, MD5_B, mtime=900.0), bulk.file_md5) == bulk.ETAG
    # and the other way round: a download compares the local file's MD5
    assert bulk.differs(remote("f", 1, MD5_B), src, bulk.file_md5) == bulk.ETAG


def test_differs_by_mtime_when_the_etag_is_multipart(tmp_path: Path) -> None:
    multi = "9b2cf535f27731c974343645a3985328-3"
    newer = local(tmp_path, "f", b"a", mtime=200.0)
    older = local(tmp_path, "g", b"a", mtime=50.0)
    assert bulk.differs(newer, remote("f", 1, multi, 100.0), no_md5) == bulk.NEWER
    assert bulk.differs(older, remote("g", 1, multi, 100.0), no_md5) == ""


def test_differs_between_two_objects_compares_etags() -> None:
    assert bulk.differs(remote("k", 1, MD5_A), remote("k", 1, MD5_A, 900.0), no_md5) == ""
    assert bulk.differs(remote("k", 1, MD5_A), remote("k", 1, MD5_B), no_md5) == bulk.ETAG


@pytest.mark.parametrize(
    ("etag", "md5"),
    [(MD5_A, True), (f'"{MD5_A}"', True), (MD5_A + "-2", False), ("xyz", False), ("", False)],
)
def test_is_md5_etag(etag: str, md5: bool) -> None:
    assert bulk.is_md5_etag(etag) is md5


# --- plans -----------------------------------------------------------------------------


def test_plan_sync_up_with_delete_and_filters(tmp_path: Path) -> None:
    src = Side(
        path=tmp_path,
        entries=[
            local(tmp_path, "same", b"a"),
            local(tmp_path, "changed", b"b"),
            local(tmp_path, "new", b"n"),
            local(tmp_path, "skip.tmp", b"t"),
        ],
    )
    dst = Side(
        url=S3Url("b", "p"),
        prefix="p/",
        entries=[
            remote("same", 1, MD5_A),
            remote("changed", 1, MD5_A),
            remote("extra", 5, MD5_A),
            remote("old.tmp", 1, MD5_A),
        ],
    )
    filters = [("exclude", "*.tmp")]
    ops = bulk.plan_sync(src, dst, filters, delete=True, md5=bulk.file_md5)
    assert [(o.kind, o.reason, o.dst or o.src) for o in ops] == [
        ("upload", "etag", "s3://b/p/changed"),
        ("upload", "new", "s3://b/p/new"),
        ("delete", "extra", "s3://b/p/extra"),
    ]
    assert ops[2].key == "p/extra" and ops[2].bucket == "b"
    assert not bulk.plan_sync(src, dst, [*filters, ("exclude", "*")], True, bulk.file_md5)


def test_plan_copy_down_refuses_escapes_and_collisions_and_skips_markers(tmp_path: Path) -> None:
    src = Side(
        url=S3Url("b"),
        prefix="",
        entries=[
            remote("a/b", 1, MD5_A),
            remote("a//b", 1, MD5_A),
            remote("../up", 1, MD5_A),
            remote("dir/", 0, MD5_A),
            remote("", 0, MD5_A),  # the key that is the prefix itself: a marker too
        ],
    )
    dest = tmp_path / "d"
    ops = bulk.plan_copy(src, Side(path=dest), [])
    assert [(o.kind, o.src, o.refused is None) for o in ops] == [
        ("download", "s3://b/a/b", True),
        ("download", "s3://b/a//b", False),
        ("download", "s3://b/../up", False),
    ]
    assert ops[0].path == dest / "a/b" and ops[0].key == "a/b"
    assert ops[1].refused is not None and "already written" in ops[1].refused[1]


def test_plan_copy_up_refuses_a_key_too_long_before_any_work(tmp_path: Path) -> None:
    src = Side(path=tmp_path, entries=[local(tmp_path, "f", b"x")])
    with pytest.raises(KeyTooLongError):
        bulk.plan_copy(src, Side(url=S3Url("b", "k" * 1030), prefix="k" * 1030 + "/"), [])


def test_op_lines_as_aws_prints_them() -> None:
    op = bulk.Op(bulk.UPLOAD, "a.txt", "s3://b/a.txt")
    assert op.line() == "upload: a.txt to s3://b/a.txt"
    assert op.line(dryrun=True) == "(dryrun) upload: a.txt to s3://b/a.txt"
    assert op.line(verb="move") == "move: a.txt to s3://b/a.txt"
    assert bulk.Op(bulk.DELETE, "s3://bkt/k").line() == "delete: s3://bkt/k"


def test_batches_of_at_most_n() -> None:
    ops = [bulk.Op(bulk.DELETE, str(i)) for i in range(2501)]
    assert [len(b) for b in bulk.batches(ops, 1000)] == [1000, 1000, 501]


# --- refused before connecting -------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cp", "--recursive", "d", "s3://bkt/p", "--tag", "a=1"], "--tag: one object's flags"),
        (["cp", "--recursive", "d", "s3://bkt/p", "--version-id", "x"], "--version-id"),
        (["cp", "f", "s3://bkt/k", "--exclude", "*"], "only with --recursive"),
        (["cp", "f", "s3://bkt/k", "--dryrun"], "--dryrun: only with --recursive"),
        (["rm", "s3://bkt/k", "--include", "*"], "only with --recursive"),
        (["rm", "--recursive", "s3://bkt/p", "--version-id", "x"], "not with --recursive"),
        (["ls", "s3://bkt", "--recursive", "--delimiter", "/"], "--recursive"),
        (["du", "b"], "s3://BUCKET"),
        (["rb", "s3://bkt/k", "--force"], "expected a bucket"),
        (["sync", "a", "b"], "must be an s3:// URL"),
        (["mv", "a", "b"], "must be an s3:// URL"),
        (["mv", "s3://bkt/k", "x", "--exclude", "*"], "only with --recursive"),
        (["cp", "--recursive", "-", "s3://bkt/p"], "'-'"),
        (["cp", "s3://bkt/k", "-", "--json"], "--json: not when DST is '-'"),
    ],
)
def test_refused_before_connecting(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRISTORE_ENDPOINT", "127.0.0.1:1")  # nothing listens there
    assert run(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert message in err, err
    assert "ServiceUnavailable" not in err


def test_parallel_is_bounded() -> None:
    with pytest.raises(SystemExit):
        parse("sync", "d", "s3://b", "--parallel", "0")
    assert parse("rm", "--recursive", "s3://b", "--parallel", "4").parallel == 4


def test_dryrun_prints_the_plan_and_finish_reports_refused_ops(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tristore.cli import bulk_commands as bc
    from tristore.cli.util import CliError

    ops = [
        bulk.Op(bulk.DOWNLOAD, "s3://bkt/a", "d/a", 3),
        bulk.Op(bulk.DOWNLOAD, "s3://bkt/../x", "d", 1, refused=("InvalidArgument", "outside")),
    ]
    options = bc.RunOptions(dryrun=True)
    outcomes = bc.run_ops(None, ops, options)
    captured = capsys.readouterr()
    assert captured.out == "(dryrun) download: s3://bkt/a to d/a\n"
    assert "download failed: s3://bkt/../x: InvalidArgument: outside" in captured.err
    with pytest.raises(CliError) as info:
        bc.finish("cp", outcomes, options)
    assert info.value.code == "InvalidArgument"
    assert info.value.message.startswith("1 of 2 operations failed; first: download s3://bkt/../x")


def test_a_move_whose_source_stays_is_a_failure() -> None:
    from tristore.cli import bulk_commands as bc

    op = bulk.Op(bulk.UPLOAD, "f", "s3://bkt/f", 1)
    assert bc._moved(bc.Outcome(op), {}) == bc.Outcome(op)
    failed = bc._moved(bc.Outcome(op), {"f": ("PermissionError", "denied")})
    assert failed.error == ("PermissionError", "copied, but the source was not removed: denied")
