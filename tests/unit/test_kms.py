"""The local key-file master-key provider: seal, open, bind to a purpose, rotate."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tristore import errors
from tristore.cli.main import run
from tristore.kms import LocalKeyFile

pytestmark = pytest.mark.unit


def test_seal_opens_only_for_its_context(tmp_path: Path) -> None:
    kf = LocalKeyFile.create(tmp_path / "master.key")
    blob = kf.seal(b"secret", b"user:alice")
    assert b"secret" not in blob
    assert kf.open(blob, b"user:alice") == b"secret"
    with pytest.raises(errors.KeyUnavailable):
        kf.open(blob, b"user:bob")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(errors.KeyUnavailable):
        kf.open(tampered, b"user:alice")


def test_file_is_private(tmp_path: Path) -> None:
    LocalKeyFile.create(tmp_path / "master.key")
    assert os.stat(tmp_path / "master.key").st_mode & 0o777 == 0o600


def test_rotation_keeps_old_blobs_open_and_rewraps(tmp_path: Path) -> None:
    kf = LocalKeyFile.create(tmp_path / "master.key")
    old = kf.seal(b"bucket key", b"bk")
    assert kf.rotate() == "k2"
    # Another process sharing the file sees the new key.
    other = LocalKeyFile(tmp_path / "master.key")
    assert other.current_key_id() == "k2"
    assert other.open(old, b"bk") == b"bucket key"
    new = other.rewrap(old, b"bk")
    assert other.key_id_of(new) == "k2" and other.key_id_of(old) == "k1"
    assert kf.open(new, b"bk") == b"bucket key"


def test_missing_or_malformed_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidArgument, match="does not exist"):
        LocalKeyFile(tmp_path / "nope.key")
    (tmp_path / "bad.key").write_text("{}")
    with pytest.raises(errors.InvalidArgument, match="malformed"):
        LocalKeyFile(tmp_path / "bad.key")


def test_a_blob_under_an_unknown_key(tmp_path: Path) -> None:
    a = LocalKeyFile.create(tmp_path / "a.key")
    b = LocalKeyFile.create(tmp_path / "b.key")
    with pytest.raises(errors.KeyUnavailable):
        b.open(a.seal(b"x", b""), b"")  # same id "k1", different key
    with pytest.raises(errors.KeyUnavailable, match="bad header"):
        a.open(b"garbage", b"")


def test_cli_init_creates_once_and_keeps_what_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tristore admin kms init` (the compose stack's init container): the file
    a config names, made once; a second run leaves the keys as they are."""
    key_file = tmp_path / "keys" / "master.key"
    cfg = Path(__file__).resolve().parents[2] / "deploy" / "compose" / "east.toml"
    monkeypatch.setenv("TRISTORE_KMS_KEY_FILE", str(key_file))  # [kms] key_file
    assert run(["admin", "kms", "init", "--config", str(cfg), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first == {"key_file": str(key_file), "key_id": "k1", "created": True}
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    sealed = LocalKeyFile(key_file).seal(b"x", b"")
    assert run(["admin", "kms", "init", "--key-file", str(key_file)]) == 0
    assert "left as it is" in capsys.readouterr().out
    assert LocalKeyFile(key_file).open(sealed, b"") == b"x"  # the same key, not a new one


def test_rotation_that_cannot_write_the_file_is_a_clear_error(tmp_path: Path) -> None:
    """A read-only key file (a Kubernetes Secret) refuses a rotation by name
    and keeps serving the keys it has."""
    kf = LocalKeyFile.create(tmp_path / "master.key")
    blob = kf.seal(b"x", b"")
    (tmp_path / "master.key.tmp").mkdir()  # the file cannot be written (even as root)
    with pytest.raises(errors.KeyUnavailable, match=r"cannot add a master key to .*master\.key"):
        kf.rotate()
    assert kf.current_key_id() == "k1" and kf.open(blob, b"") == b"x"
