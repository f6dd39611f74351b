"""How the CLI reports what goes wrong before any cluster answers: usage
errors, local files it cannot use and flags given empty, each one
``Code: message`` line on stderr (docs/commands.md, "Exit status")."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from tristore.cli import bulk_commands, multipart, objects, progress
from tristore.cli.main import run
from tristore.cli.util import CliError, cannot, local_error
from tristore.errors import InvalidArgument

pytestmark = pytest.mark.unit

NOENT = os.strerror(errno.ENOENT)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = run(list(argv))
    return code, capsys.readouterr().err


def _one_line(err: str, code: str) -> str:
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith(f"{code}: "), err
    return err


# --- usage errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        ([], ["required: COMMAND", "'tristore --help'"]),
        (["frobnicate"], ["invalid choice: 'frobnicate'", "'tristore --help'"]),
        (["--frob", "ls"], ["unrecognized arguments: --frob", "'tristore ls --help'"]),
        (["ls", "s3://bkt", "--frob"], ["unrecognized arguments: --frob", "'tristore ls --help'"]),
        (["ls", "--max-keys", "abc"], ["--max-keys: invalid int value: 'abc'"]),
        (["cp", "--parallel", "0", "f", "s3://bkt/k"], ["--parallel: 0 is not between 1 and 64"]),
        (["cp", "--part-size", "1MiB", "f", "s3://bkt/k"], ["--part-size", "at least 5 MiB"]),
        (["presign", "s3://bkt/k", "--method", "PATCH"], ["invalid choice: 'PATCH'"]),
        (["version", "bogus", "s3://bkt"], ["invalid choice: 'bogus'"]),
        (["tag"], ["required: s3://BUCKET[/KEY]", "'tristore tag --help'"]),
        (["acl", "s3://bkt/k", "private", "extra"], ["unrecognized arguments: extra"]),
        (["dev", "up", "--azs", "2"], ["--azs: 2 is not between 3 and 26"]),
        (["replication"], ["required", "'tristore replication --help'"]),
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(
    argv: list[str], fragments: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        run(argv)
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    line = _one_line(err, "InvalidArgument")
    assert "usage:" not in line
    for f in fragments:
        assert f in line, line


# --- local files -------------------------------------------------------------------


def test_a_missing_file_to_upload(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.txt"
    code, err = _run(capsys, "cp", str(missing), "s3://demo/x")
    assert code == 1
    assert err == f"InvalidArgument: cannot read {missing}: {NOENT}\n"


def test_a_rules_file_that_is_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path  # a missing one: tests/unit/test_cli_replication.py
    code, err = _run(capsys, "replication", "put", "s3://demo", "--file", str(path))
    assert code == 1
    assert _one_line(err, "InvalidArgument").startswith(f"InvalidArgument: cannot read {path}: ")


def test_an_sse_c_key_file_that_cannot_be_read(tmp_path: Path) -> None:
    missing = tmp_path / "key.bin"
    with pytest.raises(InvalidArgument) as info:
        objects.sse_c_key(f"fileb://{missing}")
    assert info.value.message == f"cannot read the SSE-C key {missing}: {NOENT}"


def test_a_download_names_its_destination_not_the_temporary_file() -> None:
    # /proc takes no new file (even from root): the temporary file beside the target fails.
    target = Path("/proc/version")
    with pytest.raises(InvalidArgument) as info:
        objects.write_atomically(target, [b"x"], progress.for_stderr(None, enabled=False))
    message = info.value.message
    assert message.startswith("cannot write /proc/version: cannot create a file in /proc ("), (
        message
    )
    assert "tristore-part" not in message


def test_a_full_disk_while_downloading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(objects.os, "fsync", full)
    target = tmp_path / "big.bin"
    with pytest.raises(InvalidArgument) as info:
        objects.write_atomically(target, [b"x" * 10], progress.for_stderr(None, enabled=False))
    assert info.value.message == f"cannot write {target}: {os.strerror(errno.ENOSPC)}"
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary file


def test_a_download_directory_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    dst = f"{tmp_path}/file/sub/"  # under a file: no directory can be made there
    with pytest.raises(InvalidArgument) as info:
        objects.local_target(dst, "dir/k.txt")
    assert info.value.message.startswith(f"cannot write {dst}: ")


def test_a_file_that_fails_while_it_uploads(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x")

    class FailingClient:
        def upload_file(self, *args: Any, **kwargs: Any) -> None:
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    options = multipart.TransferOptions()
    with pytest.raises(InvalidArgument) as info:
        multipart.upload(
            FailingClient(),  # type: ignore[arg-type]
            path,
            path.stat(),
            "bkt",
            "k",
            options,
            lambda n: None,
            {},
        )
    assert info.value.message == f"cannot read {path}: {os.strerror(errno.EIO)}"


def test_other_os_errors_are_invalid_argument(capsys: pytest.CaptureFixture[str]) -> None:
    err = local_error(PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/srv/x"))
    assert (err.code, err.message) == ("InvalidArgument", f"/srv/x: {os.strerror(errno.EACCES)}")
    assert local_error(OSError(errno.EIO, "Input/output error")).message == "Input/output error"
    assert cannot("write", "out.bin", OSError(errno.ENOSPC, "No space left on device")).message == (
        "cannot write out.bin: No space left on device"
    )
    # A bulk command's failed file, in its report and document, the same way.
    failed = bulk_commands._error(FileNotFoundError(errno.ENOENT, NOENT, "photos/a.jpg"))
    assert failed == ("InvalidArgument", f"photos/a.jpg: {NOENT}")
    assert bulk_commands._error(CliError("FileChanged", "x")) == ("FileChanged", "x")


# --- flags given empty ------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--endpoint", "", "ls"], "--endpoint"),
        (["ls", "--endpoint", ""], "--endpoint"),
        (["stat", "s3://bkt/k", "--endpoint", " "], "--endpoint"),
        (["events", "tail", "s3://bkt", "--endpoint", "", "--limit", "1"], "--endpoint"),
        (["presign", "s3://bkt/k", "--s3-endpoint", ""], "--s3-endpoint"),
        (["--ca-bundle", "", "ls"], "--ca-bundle"),
    ],
)
def test_an_empty_flag_is_refused_not_ignored(
    argv: list[str],
    flag: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    refused_endpoint: str,
) -> None:
    # The environment names something usable: an empty flag must not fall back to it.
    monkeypatch.setenv("TRISTORE_ENDPOINT", refused_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://127.0.0.1:7601")
    monkeypatch.setenv("TRISTORE_ACCESS_KEY_ID", "TKEMPTYFLAG00001")
    monkeypatch.setenv("TRISTORE_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("TRISTORE_PROFILE", raising=False)
    code, err = _run(capsys, *argv)
    assert code == 1
    assert _one_line(err, "InvalidArgument").startswith(f"InvalidArgument: {flag} is empty: "), err
