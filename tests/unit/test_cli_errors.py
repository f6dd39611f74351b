"""How the CLI reports what goes wrong before any cluster answers: usage
errors, local files it cannot use and flags given empty, each one
``Code: message`` line on stderr (docs/commands.md, "Exit status")."""

from __future__ import annotations

import pytest

from tristore.cli.main import run

pytestmark = pytest.mark.unit


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
        (["presign", "s3://bkt/k", "--method", "POST"], ["invalid choice: 'POST'"]),
        (["version", "bogus", "s3://bkt"], ["invalid choice: 'bogus'"]),
        (["tag"], ["required: s3://BUCKET/KEY", "'tristore tag --help'"]),
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
