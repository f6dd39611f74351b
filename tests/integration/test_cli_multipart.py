"""``tristore cp`` of large files and ``tristore mpu`` on real processes: a
multipart upload through the CLI, a resume from the state an earlier run left
(skipping exactly the parts the store has), an interrupted cp resumed, and the
mpu commands."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.cluster import DevCluster, cli_env
from tristore import errors
from tristore.client import upload_state
from tristore.client.parts import multipart_etag
from tristore.client.upload_state import LocalFile, UploadState

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
SMALL_PARTS = ("--multipart-threshold", "5MiB", "--part-size", "5MiB")


@pytest.fixture(scope="module")
def bucket(cluster: DevCluster) -> str:
    with cluster.client() as c:
        c.create_bucket("climpu")
    return "climpu"


@pytest.fixture
def state_home(tmp_path: Path) -> Path:
    return tmp_path / "state"


def uploads_dir(state_home: Path) -> Path:
    return upload_state.state_dir({"XDG_STATE_HOME": str(state_home)})


def write_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def etag_of(data: bytes, part_size: int) -> str:
    return multipart_etag(
        hashlib.md5(data[i : i + part_size]).hexdigest() for i in range(0, len(data), part_size)
    )


def cp(cluster: DevCluster, state_home: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return cluster.cli("cp", *args, extra_env={"XDG_STATE_HOME": str(state_home)})


def test_cp_uploads_a_large_file_in_parts(
    cluster: DevCluster, bucket: str, tmp_path: Path, state_home: Path
) -> None:
    data = write_file(tmp_path / "big.bin", 12 * MIB + 3)
    out = cp(
        cluster, state_home, str(tmp_path / "big.bin"), f"s3://{bucket}/dir/",
        *SMALL_PARTS, "--parallel", "2",
        "--content-type", "application/x-big", "--meta", "owner=me", "--tag", "t=1",
    ).stdout.decode()  # fmt: skip
    etag = etag_of(data, 5 * MIB)
    assert out.strip() == (
        f"upload: {tmp_path / 'big.bin'} to s3://{bucket}/dir/big.bin "
        f"({len(data)} bytes, etag {etag}, 3 parts)"
    )
    with cluster.client() as c:
        info = c.head_object(bucket, "dir/big.bin")
        assert (info.etag, info.size, info.content_type) == (etag, len(data), "application/x-big")
        assert info.metadata == {"owner": "me"}
        assert c.get_object_tagging(bucket, "dir/big.bin").tags == {"t": "1"}
        assert c.get_object(bucket, "dir/big.bin") == data
        assert not list(c.list_multipart_uploads(bucket).uploads)
    assert not list(uploads_dir(state_home).glob("*.json")), "the state file was not removed"


def test_below_the_threshold_cp_is_one_put(
    cluster: DevCluster, bucket: str, tmp_path: Path, state_home: Path
) -> None:
    data = write_file(tmp_path / "small.bin", 6 * MIB)
    out = cp(cluster, state_home, str(tmp_path / "small.bin"), f"s3://{bucket}/small.bin")
    assert out.stdout.decode().strip().endswith(f"etag {hashlib.md5(data).hexdigest()})")


def test_cp_resumes_skipping_exactly_the_parts_the_store_has(
    cluster: DevCluster, bucket: str, tmp_path: Path, state_home: Path
) -> None:
    path = tmp_path / "resume.bin"
    data = write_file(path, 11 * MIB)
    key = "resume.bin"
    src = LocalFile.from_stat(path, os.stat(path))
    with cluster.client() as c:
        up = c.create_multipart_upload(bucket, key, "application/x-first", {"run": "1"})
        c.upload_part(bucket, key, up.upload_id, 1, data[: 5 * MIB])  # right: skipped
        c.upload_part(bucket, key, up.upload_id, 2, os.urandom(5 * MIB))  # wrong: sent again
    state = UploadState(str(src.path), src.size, src.mtime_ns, bucket, key, up.upload_id, 5 * MIB)
    state_file = upload_state.state_path(src, bucket, key, uploads_dir(state_home))
    upload_state.save_state(state_file, state)

    # No --multipart-threshold: 11 MiB is under the default, but the upload was
    # begun, so it is resumed; and it keeps the part size it began with.
    proc = cp(cluster, state_home, str(path), f"s3://{bucket}/{key}", "--part-size", "6MiB")
    assert f"resuming upload {up.upload_id}: 1 of 3 parts already uploaded" in proc.stderr.decode()
    assert not state_file.exists()
    with cluster.client() as c:
        info = c.head_object(bucket, key)
        assert info.etag == etag_of(data, 5 * MIB)
        assert (info.content_type, info.metadata) == ("application/x-first", {"run": "1"})
        assert c.get_object(bucket, key) == data
        with pytest.raises(errors.NoSuchUpload):
            c.list_parts(bucket, key, up.upload_id)


def test_a_state_naming_a_gone_upload_starts_over(
    cluster: DevCluster, bucket: str, tmp_path: Path, state_home: Path
) -> None:
    path = tmp_path / "gone.bin"
    data = write_file(path, 6 * MIB)
    src = LocalFile.from_stat(path, os.stat(path))
    with cluster.client() as c:
        up = c.create_multipart_upload(bucket, "gone.bin")
        c.abort_multipart_upload(bucket, "gone.bin", up.upload_id)
    state = UploadState(
        str(src.path), src.size, src.mtime_ns, bucket, "gone.bin", up.upload_id, 5 * MIB
    )
    upload_state.save_state(
        upload_state.state_path(src, bucket, "gone.bin", uploads_dir(state_home)), state
    )
    proc = cp(cluster, state_home, str(path), f"s3://{bucket}/gone.bin", *SMALL_PARTS)
    assert f"upload {up.upload_id} no longer exists" in proc.stderr.decode()
    with cluster.client() as c:
        assert c.get_object(bucket, "gone.bin") == data


def test_an_interrupted_cp_resumes_and_mpu_shows_it(
    cluster: DevCluster, bucket: str, tmp_path: Path, state_home: Path
) -> None:
    path = tmp_path / "interrupted.bin"
    data = write_file(path, 80 * MIB)
    key = "interrupted.bin"
    url = f"s3://{bucket}/{key}"
    env = cli_env() | {"TRISTORE_ENDPOINT": cluster.endpoint, "XDG_STATE_HOME": str(state_home)}
    argv = [sys.executable, "-m", "tristore", "cp", str(path), url, *SMALL_PARTS, "--parallel", "1"]
    # SIGINT as an interactive shell leaves it: a process inherits an ignored
    # SIGINT (a pytest-xdist worker may have it ignored), and Python then keeps
    # ignoring it, so the cp ran to its end in `make test`.
    proc = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )

    def step_until(done: Callable[[], object], what: str) -> None:
        """Let the upload run 20 ms at a time (SIGSTOP, look, SIGCONT) until
        ``done()``, and leave it stopped there: an upload that a loaded machine
        runs fast cannot finish between the look and the interruption."""
        for _ in range(3000):
            proc.send_signal(signal.SIGSTOP)
            if done():
                return
            assert proc.poll() is None, f"cp ended before {what}"
            proc.send_signal(signal.SIGCONT)
            time.sleep(0.02)
        raise AssertionError(f"no {what} within 60 s of running")

    try:
        states = uploads_dir(state_home)
        step_until(lambda: any(states.glob("*.json")), "a state file")
        upload_id = json.loads(next(states.glob("*.json")).read_text())["upload_id"]
        with cluster.client() as c:
            step_until(lambda: c.list_parts(bucket, key, upload_id).parts, "a first part")
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGCONT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err.decode()
    assert (
        f"upload {upload_id} is kept: run the same command again to resume it, or discard "
        f"it with: tristore mpu abort {url} {upload_id}"
    ) in err.decode()
    assert any(states.glob("*.json"))

    ls = cluster.cli("mpu", "ls", f"s3://{bucket}/inter").stdout.decode().splitlines()
    assert [line.split()[2:] for line in ls] == [[upload_id, key]]
    parts = json.loads(cluster.cli("mpu", "parts", url, upload_id, "--json").stdout)["parts"]
    assert parts and all(p["size"] == 5 * MIB for p in parts)
    assert [p["part_number"] for p in parts] == list(range(1, len(parts) + 1))

    again = cp(cluster, state_home, str(path), url, *SMALL_PARTS)
    # Only the parts not there yet go up again.
    assert f"resuming upload {upload_id}: {len(parts)} of 16 parts already uploaded" in (
        again.stderr.decode()
    )
    assert again.stdout.decode().strip().endswith(f"etag {etag_of(data, 5 * MIB)}, 16 parts)")
    assert not any(states.glob("*.json"))
    with cluster.client() as c:
        assert c.get_object(bucket, key) == data
    assert cluster.cli("mpu", "ls", f"s3://{bucket}/inter").stdout == b""


def test_mpu_abort_discards_the_upload_and_its_state(
    cluster: DevCluster, bucket: str, tmp_path: Path, state_home: Path
) -> None:
    path = tmp_path / "abort.bin"
    write_file(path, 6 * MIB)
    src = LocalFile.from_stat(path, os.stat(path))
    with cluster.client() as c:
        up = c.create_multipart_upload(bucket, "to abort")
        c.upload_part(bucket, "to abort", up.upload_id, 1, b"x" * 100)
    state_file = upload_state.state_path(src, bucket, "to abort", uploads_dir(state_home))
    upload_state.save_state(
        state_file,
        UploadState(str(path), src.size, src.mtime_ns, bucket, "to abort", up.upload_id, 5 * MIB),
    )
    env = {"XDG_STATE_HOME": str(state_home)}
    url = f"s3://{bucket}/to abort"
    listing = json.loads(cluster.cli("mpu", "ls", f"s3://{bucket}", "--json").stdout)
    assert up.upload_id in {u["upload_id"] for u in listing["uploads"]}
    line = cluster.cli("mpu", "parts", url, up.upload_id).stdout.decode().split()
    assert (line[0], line[3], line[4]) == ("1", "100", hashlib.md5(b"x" * 100).hexdigest())

    out = cluster.cli("mpu", "abort", url, up.upload_id, extra_env=env).stdout.decode()
    assert out.strip() == f"abort: '{url}' (upload {up.upload_id})"
    assert not state_file.exists()
    gone = cluster.cli("mpu", "parts", url, up.upload_id, check=False)
    assert gone.returncode == 1
    assert gone.stderr.decode().startswith("NoSuchUpload: ")
    again = cluster.cli("mpu", "abort", url, up.upload_id, check=False)
    assert again.returncode == 1 and again.stderr.decode().startswith("NoSuchUpload: ")
