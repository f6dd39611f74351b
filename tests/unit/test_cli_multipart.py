"""cp's multipart uploads and the mpu commands without a cluster: size parsing,
part planning, the resume state file, the resume decision, reading parts."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import hashlib
import inspect
import itertools
import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.multipart import multipart_etag as node_multipart_etag
from tristore.cli import mpu, multipart
from tristore.cli.main import build_parser, run
from tristore.cli.util import parse_size
from tristore.client import Client, parts, upload_state
from tristore.client._body import make_body
from tristore.client.parts import PartSpec, plan_parts, resume_candidates, reusable_parts
from tristore.client.upload_state import LocalFile, PartRecord, StateFile, UploadState
from tristore.errors import FileChanged, InvalidArgument
from tristore.model import MultipartUpload, Part
from tristore.validation import MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, choose_part_size

pytestmark = pytest.mark.unit

MiB = 1024**2
GiB = 1024**3
T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
UPLOAD = "0123456789abcdef0123456789ab"


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# --- sizes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("0", 0),
        ("4096", 4096),
        ("8MiB", 8 * MiB),
        ("8mib", 8 * MiB),
        ("8M", 8 * MiB),
        ("8 MiB", 8 * MiB),
        ("100MB", 100_000_000),
        ("1.5GiB", 3 * GiB // 2),
        ("1.1GB", 1_100_000_000),
        (".5K", 512),
        ("2TiB", 2 * 1024**4),
        ("3KB", 3000),
        ("7B", 7),
    ],
)
def test_parse_size(text: str, n: int) -> None:
    assert parse_size(text) == n


@pytest.mark.parametrize("text", ["", "MiB", "-1", "1e6", "8XB", "8MiBs", "8 M B", "0x10"])
def test_parse_size_refuses_what_is_not_a_size(text: str) -> None:
    with pytest.raises(InvalidArgument, match="is not a size"):
        parse_size(text)


# --- cp's flags -------------------------------------------------------------------


def test_cp_multipart_flags() -> None:
    args = parse(
        "cp", "f", "s3://b/k",
        "--multipart-threshold", "100MB", "--part-size", "16MiB", "--parallel", "8",
    )  # fmt: skip
    assert (args.multipart_threshold, args.part_size, args.parallel) == (10**8, 16 * MiB, 8)
    assert multipart.TransferOptions.from_args(args) == multipart.TransferOptions(
        10**8, 16 * MiB, 8
    )


def test_cp_multipart_defaults() -> None:
    args = parse("cp", "f", "s3://b/k")
    # None, so that cp can tell a given flag from its default.
    assert (args.multipart_threshold, args.part_size, args.parallel) == (None, None, None)
    options = multipart.TransferOptions.from_args(args)
    assert options == multipart.TransferOptions(64 * MiB, 8 * MiB, 4)
    # cp's defaults are the SDK's upload_file's.
    defaults = inspect.signature(Client.upload_file).parameters
    assert (options.threshold, options.part_size, options.parallel) == (
        defaults["multipart_threshold"].default,
        defaults["part_size"].default,
        defaults["parallel"].default,
    )


def test_etag_parts() -> None:
    assert parts.etag_parts('"9b2cf535f27731c974343645a3985328-16"') == 16
    assert parts.etag_parts("9b2cf535f27731c974343645a3985328") is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--part-size", "4MiB"], "at least 5 MiB"),
        (["--part-size", "5242879"], "at least 5 MiB"),
        (["--part-size", "6GiB"], "at most 5 GiB"),
        (["--part-size", "lots"], "is not a size"),
        (["--multipart-threshold", "big"], "is not a size"),
        (["--parallel", "0"], "between 1 and 64"),
        (["--parallel", "65"], "between 1 and 64"),
        (["--parallel", "two"], "not an integer"),
    ],
)
def test_cp_multipart_flags_refuse_bad_values(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        parse("cp", "f", "s3://b/k", *argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert argv[0] in err and message in err, err


def test_cp_part_size_of_exactly_5_mib_is_fine() -> None:
    assert parse("cp", "f", "s3://b/k", "--part-size", "5MiB").part_size == MIN_PART_SIZE


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cp", "s3://bkt/k", "out", "--part-size", "8MiB"], "--part-size: only when DST"),
        (
            ["cp", "s3://bkt/a", "s3://bkt/b", "--parallel", "2"],
            "--parallel: only for uploads, not s3:// copies",
        ),
        (["cp", "-", "s3://bkt/k", "--multipart-threshold", "1"], "not of stdin"),
        (
            ["cp", "f", "s3://bkt/k", "--if-match", "e", "--part-size", "8MiB"],
            "--part-size: not with --if-none-match or --if-match",
        ),
    ],
)
def test_multipart_flags_refused_before_connecting(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRISTORE_ENDPOINT", raising=False)
    assert run(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize(
    ("size", "multipart_"), [(0, False), (64 * MiB - 1, False), (64 * MiB, True), (GiB, True)]
)
def test_use_multipart_from_the_threshold_on(size: int, multipart_: bool) -> None:
    assert multipart.TransferOptions().use_multipart(size) is multipart_


def test_an_empty_file_is_never_multipart() -> None:
    assert not multipart.TransferOptions(threshold=0).use_multipart(0)
    assert multipart.TransferOptions(threshold=0).use_multipart(1)


# --- planning -----------------------------------------------------------------------


def test_part_size_stays_when_the_file_fits() -> None:
    assert choose_part_size(10 * GiB, 8 * MiB) == 8 * MiB
    assert choose_part_size(MAX_PARTS * 8 * MiB, 8 * MiB) == 8 * MiB


def test_part_size_grows_to_whole_mib_to_stay_within_10000_parts() -> None:
    # One byte more than 10,000 parts of 8 MiB hold: the next whole MiB.
    assert choose_part_size(MAX_PARTS * 8 * MiB + 1, 8 * MiB) == 9 * MiB
    # 100 GiB needs 10.24 MiB parts: 11 MiB.
    assert choose_part_size(100 * GiB, 8 * MiB) == 11 * MiB
    # S3's largest object, 5 TiB, fits in 525 MiB parts.
    size = 5 * 1024**4
    grown = choose_part_size(size, 8 * MiB)
    assert grown == 525 * MiB and len(plan_parts(size, grown)) <= MAX_PARTS


def test_part_size_cannot_grow_past_5_gib() -> None:
    with pytest.raises(InvalidArgument, match="too large"):
        choose_part_size(MAX_PARTS * MAX_PART_SIZE + 1, 8 * MiB)
    assert choose_part_size(MAX_PARTS * MAX_PART_SIZE, 8 * MiB) == MAX_PART_SIZE


def test_part_size_below_5_mib_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="at least 5 MiB"):
        choose_part_size(GiB, MIN_PART_SIZE - 1)


@given(
    size=st.integers(1, 5 * 1024**4),
    requested=st.integers(MIN_PART_SIZE, MAX_PART_SIZE),
)
def test_chosen_part_size_always_makes_a_valid_plan(size: int, requested: int) -> None:
    part_size = choose_part_size(size, requested)
    assert MIN_PART_SIZE <= part_size <= MAX_PART_SIZE
    assert part_size >= requested
    assert part_size == requested or part_size % MiB == 0
    count = -(-size // part_size)
    assert 1 <= count <= MAX_PARTS
    # Growing is a last resort: the smaller whole MiB would not have fit.
    if part_size != requested:
        assert -(-size // (part_size - MiB)) > MAX_PARTS or part_size - MiB < requested


def test_plan_all_parts_full_but_the_last() -> None:
    plan = plan_parts(23 * MiB + 5, 5 * MiB)
    assert plan == [
        PartSpec(1, 0, 5 * MiB),
        PartSpec(2, 5 * MiB, 5 * MiB),
        PartSpec(3, 10 * MiB, 5 * MiB),
        PartSpec(4, 15 * MiB, 5 * MiB),
        PartSpec(5, 20 * MiB, 3 * MiB + 5),
    ]


def test_plan_of_an_exact_multiple_has_a_full_last_part() -> None:
    plan = plan_parts(16 * MiB, 8 * MiB)
    assert [p.size for p in plan] == [8 * MiB, 8 * MiB]


def test_plan_of_a_small_file_is_one_part() -> None:
    assert plan_parts(10, 8 * MiB) == [PartSpec(1, 0, 10)]
    assert plan_parts(0, 8 * MiB) == []


def test_plan_refuses_more_than_10000_parts() -> None:
    with pytest.raises(InvalidArgument, match="10000"):
        plan_parts(MAX_PARTS * MIN_PART_SIZE + 1, MIN_PART_SIZE)


@given(size=st.integers(0, 10**12), part_size=st.integers(MIN_PART_SIZE, 10**9))
def test_plan_covers_the_file_exactly(size: int, part_size: int) -> None:
    if -(-size // part_size) > MAX_PARTS:
        return
    plan = plan_parts(size, part_size)
    assert sum(p.size for p in plan) == size
    assert [p.number for p in plan] == list(range(1, len(plan) + 1))
    assert all(b.offset == a.offset + a.size for a, b in itertools.pairwise(plan))
    assert all(p.size == part_size for p in plan[:-1])
    assert all(0 < p.size <= part_size for p in plan)


def test_multipart_etag_is_the_one_the_node_computes() -> None:
    bodies = [b"a" * 100, b"b" * 7, b""]
    md5s = [md5(p) for p in bodies]
    expect = md5(b"".join(hashlib.md5(p).digest() for p in bodies)) + "-3"
    assert parts.multipart_etag(md5s) == expect == node_multipart_etag(md5s)
    assert parts.multipart_etag(f'"{m.upper()}"' for m in md5s) == expect


# --- the resume decision ------------------------------------------------------------


def remote_part(number: int, data: bytes, etag: str | None = None) -> Part:
    return Part(number, etag if etag is not None else md5(data), len(data), T0)


def test_resume_skips_exactly_the_parts_the_store_has_byte_for_byte() -> None:
    data = bytes(range(256)) * 100  # 25,600 bytes
    plan = plan_parts(len(data), 6000)  # parts of 6000, 6000, 6000, 6000, 1600
    local = {p.number: md5(data[p.offset : p.offset + p.size]) for p in plan}
    chunk = {p.number: data[p.offset : p.offset + p.size] for p in plan}
    remote = {
        1: remote_part(1, chunk[1]),  # the same bytes: skipped
        2: remote_part(2, chunk[2], etag=md5(b"x" * 6000)),  # other bytes: sent again
        3: remote_part(3, chunk[3][:-1]),  # another size: sent again, not even hashed
        # 4 was never uploaded: sent
        5: remote_part(5, chunk[5], etag=f'"{local[5].upper()}"'),  # quoted, upper case
        9: remote_part(9, b"beyond the plan"),  # left out of the Complete
    }
    assert [p.number for p in resume_candidates(plan, remote)] == [1, 2, 5]
    assert reusable_parts(plan, remote, local) == {1: local[1], 5: local[5]}


def test_resume_without_local_hashes_skips_nothing() -> None:
    plan = plan_parts(12, 6)
    remote = {1: Part(1, md5(b"x" * 6), 6, T0)}
    assert reusable_parts(plan, remote, {}) == {}


def test_resume_of_an_upload_with_no_parts_sends_everything() -> None:
    plan = plan_parts(12, 6)
    assert resume_candidates(plan, {}) == []
    assert reusable_parts(plan, {}, {1: md5(b"x")}) == {}


# --- the state file -------------------------------------------------------------------


def state(**changes: object) -> UploadState:
    base = UploadState(
        source="/data/disk.img",
        size=20 * MiB,
        mtime_ns=1_700_000_000_123_456_789,
        bucket="backups",
        key="img/disk.img",
        upload_id=UPLOAD,
        part_size=8 * MiB,
        parts=(PartRecord(1, md5(b"1"), 8 * MiB), PartRecord(2, md5(b"2"), 8 * MiB)),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_state_round_trip(tmp_path: Path) -> None:
    s = state()
    path = tmp_path / "uploads" / "x.json"
    upload_state.save_state(path, s)
    assert upload_state.load_state(path) == s
    data = json.loads(path.read_text())
    assert data["format"] == upload_state.STATE_FORMAT
    assert data["parts"][0] == {"part_number": 1, "etag": md5(b"1"), "size": 8 * MiB}
    # Nothing about where the cluster is: any endpoint may resume.
    assert not {"endpoint", "endpoints"} & set(data)
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.json"]  # no temporary left


def test_a_missing_state_is_none(tmp_path: Path) -> None:
    assert upload_state.load_state(tmp_path / "none.json") is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        json.dumps({**state().to_json(), "format": 99}),
        json.dumps({**state().to_json(), "size": "20"}),
        json.dumps({**state().to_json(), "part_size": True}),
        json.dumps({k: v for k, v in state().to_json().items() if k != "upload_id"}),
        json.dumps({**state().to_json(), "parts": [{"part_number": 1}]}),
    ],
)
def test_an_unreadable_state_is_a_value_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError):
        upload_state.load_state(path)


def test_state_dir_follows_xdg_state_home(monkeypatch: pytest.MonkeyPatch) -> None:
    assert upload_state.state_dir({"XDG_STATE_HOME": "/st"}) == Path("/st/tristore/uploads")
    monkeypatch.setenv("HOME", "/home/u")
    default = Path("/home/u/.local/state/tristore/uploads")
    assert upload_state.state_dir({}) == default
    assert upload_state.state_dir({"XDG_STATE_HOME": ""}) == default
    # The XDG spec: a relative path is ignored.
    assert upload_state.state_dir({"XDG_STATE_HOME": "rel"}) == default


def test_state_path_names_file_contents_and_destination(tmp_path: Path) -> None:
    src = LocalFile(Path("/data/disk.img"), 20 * MiB, 1_700_000_000_123_456_789)

    def name(f: LocalFile = src, bucket: str = "backups", key: str = "img/disk.img") -> Path:
        return upload_state.state_path(f, bucket, key, tmp_path)

    path = name()
    assert path.parent == tmp_path and path.suffix == ".json"
    assert name() == path
    others = {
        name(LocalFile(Path("/data/other.img"), src.size, src.mtime_ns)),
        name(LocalFile(src.path, src.size + 1, src.mtime_ns)),
        name(LocalFile(src.path, src.size, src.mtime_ns + 1)),
        name(bucket="backups2"),
        name(key="img/disk2.img"),
    }
    assert path not in others and len(others) == 5


def test_local_file_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    monkeypatch.chdir(tmp_path)
    src = LocalFile.from_stat(Path("f"), os.stat("f"))
    assert src.path == tmp_path / "f" and src.size == 3


def test_state_is_for_its_file_and_destination_only() -> None:
    s = state()
    src = LocalFile(Path(s.source), s.size, s.mtime_ns)
    assert s.is_for(src, s.bucket, s.key)
    assert not s.is_for(LocalFile(src.path, s.size, s.mtime_ns + 1), s.bucket, s.key)
    assert not s.is_for(src, s.bucket, "other")


def test_state_file_saves_at_most_once_an_interval(tmp_path: Path) -> None:
    now = [0.0]
    path = tmp_path / "s.json"
    store = StateFile(path, state(parts=()), clock=lambda: now[0], interval_s=1.0)
    store.reset([])
    assert upload_state.load_state(path) == state(parts=())
    store.record(PartRecord(2, md5(b"2"), 8 * MiB))
    assert upload_state.load_state(path) == state(parts=())  # too soon to write
    now[0] = 1.5
    store.record(PartRecord(1, md5(b"1"), 8 * MiB))
    assert upload_state.load_state(path) == state()  # both, in part order
    store.record(PartRecord(3, md5(b"3"), 4 * MiB))
    store.save()  # what cp does when it stops
    assert [p.number for p in upload_state.load_state(path).parts] == [1, 2, 3]  # type: ignore[union-attr]
    store.remove()
    assert not path.exists()


def test_forget_upload_removes_only_that_uploads_state(tmp_path: Path) -> None:
    keep = state(upload_id="f" * 28)
    upload_state.save_state(tmp_path / "a.json", state())
    upload_state.save_state(tmp_path / "b.json", keep)
    (tmp_path / "broken.json").write_text("{")
    assert upload_state.forget_upload("backups", "img/disk.img", UPLOAD, tmp_path) == [
        tmp_path / "a.json"
    ]
    assert [s for _, s in upload_state.saved_states(tmp_path)] == [keep]
    assert (tmp_path / "broken.json").exists()


def test_resume_hint_says_how_to_resume_and_abort() -> None:
    hint = multipart.resume_hint(state(key="my dir/disk.img"))
    assert "run the same command again" in hint
    assert f"tristore mpu abort 's3://backups/my dir/disk.img' {UPLOAD}" in hint


# --- reading parts ----------------------------------------------------------------------


@pytest.fixture
def data_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(3 * MiB + 12345)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    return path, data


def test_a_part_reads_as_its_own_seekable_file(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    spec = PartSpec(2, MiB + 7, MiB + 100)
    expect = data[spec.offset : spec.offset + spec.size]
    with parts.open_part(path, spec) as f:
        assert f.seekable() and f.tell() == 0
        assert f.seek(0, os.SEEK_END) == spec.size
        f.seek(0)
        assert f.read() == expect
        f.seek(10)
        assert f.read(5) == expect[10:15]
    assert parts.part_md5(path, spec) == md5(expect)


def test_the_sdk_sends_a_part_and_no_more(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    spec = plan_parts(len(data), MiB)[-1]
    with parts.open_part(path, spec) as f:
        body = make_body(f)
        assert (body.size, body.replayable) == (spec.size, True)

        async def read_all() -> bytes:
            return b"".join([c async for c in body.chunks()])

        assert asyncio.run(read_all()) == data[spec.offset :]
        assert asyncio.run(read_all()) == data[spec.offset :]  # a retry sends it all again


def test_a_file_shorter_than_planned_is_a_changed_file(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    spec = PartSpec(1, len(data) - 10, 20)
    with pytest.raises(FileChanged, match="changed during the upload"):
        parts.part_md5(path, spec)


def test_check_unchanged(data_file: tuple[Path, bytes]) -> None:
    path, _ = data_file
    src = LocalFile.from_stat(path, os.stat(path))
    parts.check_unchanged(src)
    os.utime(path, ns=(src.mtime_ns, src.mtime_ns + 1))
    with pytest.raises(FileChanged):
        parts.check_unchanged(src)


def test_parts_progress_adds_parts_in_flight() -> None:
    seen: list[int] = []
    tracker = parts.PartsProgress(seen.append)
    tracker.skip(100)
    first, second = tracker.for_part(2), tracker.for_part(3)
    first(10)
    second(5)
    first(30)
    assert tracker.total == 135
    second(0)  # a retry starts the part again
    tracker.finish(2, 50)
    assert tracker.total == 150
    assert seen == [100, 110, 115, 135, 130, 150]


# --- mpu -----------------------------------------------------------------------------


def test_mpu_arguments() -> None:
    args = parse("mpu", "ls", "s3://bkt/pre", "--json")
    assert (args.func, args.url, args.json) == (mpu.cmd_ls, "s3://bkt/pre", True)
    args = parse("mpu", "parts", "s3://bkt/k", UPLOAD)
    assert (args.func, args.url, args.upload_id, args.json) == (
        mpu.cmd_parts,
        "s3://bkt/k",
        UPLOAD,
        False,
    )
    args = parse("mpu", "abort", "s3://bkt/k", UPLOAD, "--endpoint", "h:1")
    assert (args.func, args.upload_id, args.endpoint) == (mpu.cmd_abort, UPLOAD, "h:1")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["mpu", "parts", "s3://bkt", UPLOAD], "no key"),
        (["mpu", "abort", "s3://bkt/", UPLOAD], "no key"),
        (["mpu", "ls", "bkt"], "s3://BUCKET"),
    ],
)
def test_mpu_refused_before_connecting(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRISTORE_ENDPOINT", raising=False)
    assert run(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_mpu_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse("mpu")
    assert info.value.code == 2


def test_mpu_lines() -> None:
    u = MultipartUpload("bkt", "dir/a file", UPLOAD, T0)
    line = mpu.upload_line(u)
    assert line == f"{T0.astimezone():%Y-%m-%d %H:%M:%S} {UPLOAD} dir/a file"
    line = mpu.part_line(Part(7, md5(b"x"), 5 * MiB, T0))
    assert line.startswith("    7 ") and line.endswith(f" {5 * MiB:>10} {md5(b'x')}")


def test_complete_deadline_grows_with_the_object() -> None:
    # A Complete copies the parts on the cluster: 1 GiB must get far more than
    # the client's 15 s default, a small object no less than that default.
    from tristore.client.aio import DEFAULT_TIMEOUT_S

    assert parts.complete_timeout(1024**3) >= 4 * DEFAULT_TIMEOUT_S
    assert parts.complete_timeout(5 * 1024**2) < DEFAULT_TIMEOUT_S  # the client's wins
