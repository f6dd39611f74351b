"""The SDK's ``upload_file`` resumed across runs on a real cluster: an upload
interrupted part-way (by its own progress callback, or by SIGKILL of the
process running it) is resumed by the next call for the same file and key,
which sends only the parts the store lacks (counted by the nodes' UploadPart
metric); a file changed between runs starts a new upload; one changed during
the upload is aborted; ``resume=False`` leaves nothing behind."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import DevCluster, cli_env
from tristore import errors
from tristore.client import Client
from tristore.client.parts import multipart_etag

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
PART = 5 * MIB
#: 6 parts: five of 5 MiB and a short last one.
SIZE = 5 * PART + 12345
PARTS = 6


class Stop(Exception):
    """What the progress callback raises to interrupt an upload."""


class StopAfter:
    """A progress callback that raises Stop once, when ``limit`` bytes are done."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.raised = False
        self.seen: list[int] = []

    def __call__(self, done: int) -> None:
        self.seen.append(done)
        if done >= self.limit and not self.raised:
            self.raised = True
            raise Stop(f"stopped at {done} bytes")


@pytest.fixture(scope="module")
def bucket(cluster: DevCluster) -> str:
    with cluster.client() as c:
        c.create_bucket("sdkresume")
    return "sdkresume"


@pytest.fixture
def notices() -> Iterator[list[str]]:
    """What upload_file logs (resumes, uploads gone, changed files)."""
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger = logging.getLogger("tristore.client.files")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def write_file(path: Path, size: int = SIZE) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def etag_of(data: bytes) -> str:
    return multipart_etag(
        hashlib.md5(data[i : i + PART]).hexdigest() for i in range(0, len(data), PART)
    )


def parts_sent(cluster: DevCluster) -> float:
    """UploadPart calls the cluster's nodes handled (whatever their outcome)."""
    total = 0.0
    for n in cluster.config.nodes:
        with urllib.request.urlopen(f"http://{n.metrics}/metrics", timeout=5) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith("tristore_rpc_handled_total{") and 'method="UploadPart"' in line:
                    total += float(line.rsplit(" ", 1)[1])
    return total


def records(state_dir: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted(state_dir.glob("*.json"))]


def interrupted_upload(
    c: Client, path: Path, bucket: str, key: str, state_dir: Path, parallel: int = 2
) -> str:
    """Start an upload of ``path`` and stop it after three parts' worth of
    bytes; returns its upload id (from the resume record left behind)."""
    stop = StopAfter(3 * PART)
    with pytest.raises(Stop):
        c.upload_file(
            path, bucket, key, "application/x-first", {"run": "1"},
            multipart_threshold=PART, part_size=PART, parallel=parallel,
            progress=stop, state_dir=state_dir,
        )  # fmt: skip
    [record] = records(state_dir)
    assert (record["bucket"], record["key"], record["part_size"]) == (bucket, key, PART)
    upload_id = record["upload_id"]
    assert isinstance(upload_id, str)
    return upload_id


def test_an_interrupted_upload_resumes_sending_only_the_missing_parts(
    cluster: DevCluster, bucket: str, tmp_path: Path, notices: list[str]
) -> None:
    path, state_dir, key = tmp_path / "big.bin", tmp_path / "state", "resume/big.bin"
    data = write_file(path)
    with cluster.client() as c:
        upload_id = interrupted_upload(c, path, bucket, key, state_dir)
        # The parts in flight when it stopped were let finish or dropped whole:
        # the store holds some of the parts, each byte for byte.
        held = c.list_parts(bucket, key, upload_id).parts
        assert 1 <= len(held) < PARTS, [p.part_number for p in held]
        for p in held:
            piece = data[(p.part_number - 1) * PART : p.part_number * PART]
            assert (p.size, p.etag.strip('"')) == (len(piece), hashlib.md5(piece).hexdigest())

        before = parts_sent(cluster)
        seen: list[int] = []
        # Other fields than the first run's: the upload keeps those it began with.
        info = c.upload_file(
            path, bucket, key, "text/x-second", {"run": "2"},
            part_size=6 * MIB, progress=seen.append, state_dir=state_dir,
        )  # fmt: skip
        sent = parts_sent(cluster) - before

        assert sent == PARTS - len(held), f"{sent} parts sent again; the store had {len(held)}"
        assert f"resuming upload {upload_id}: {len(held)} of {PARTS} parts already uploaded" in (
            notices
        )
        # The progress callback counted the parts the store had at once.
        assert seen[0] == sum(p.size for p in held) and seen[-1] == SIZE
        assert seen == sorted(seen)
        assert (info.size, info.etag) == (SIZE, etag_of(data))
        head = c.head_object(bucket, key)
        assert (head.content_type, head.metadata) == ("application/x-first", {"run": "1"})
        assert c.get_object(bucket, key) == data
        with pytest.raises(errors.NoSuchUpload):
            c.list_parts(bucket, key, upload_id)
    assert records(state_dir) == [], "the resume record was not removed"


def test_a_file_changed_between_runs_starts_a_new_upload(
    cluster: DevCluster, bucket: str, tmp_path: Path, notices: list[str]
) -> None:
    path, state_dir, key = tmp_path / "changed.bin", tmp_path / "state", "resume/changed.bin"
    write_file(path)
    with cluster.client() as c:
        old = interrupted_upload(c, path, bucket, key, state_dir, parallel=1)
        data = write_file(path)  # the same size, other bytes, a new mtime
        before = parts_sent(cluster)
        info = c.upload_file(
            path, bucket, key, multipart_threshold=PART, part_size=PART, state_dir=state_dir
        )
        assert parts_sent(cluster) - before == PARTS, "parts of the old bytes were reused"
        assert info.etag == etag_of(data)
        assert c.get_object(bucket, key) == data
        assert not any("resuming upload" in n for n in notices)
        assert any(f"changed since upload {old} of it began" in n for n in notices), notices
        # The old upload is left for the caller to discard (tristore mpu abort).
        assert [u.upload_id for u in c.list_multipart_uploads(bucket, key).uploads] == [old]
        c.abort_multipart_upload(bucket, key, old)
    assert records(state_dir) == []


def test_a_file_changed_during_the_upload_aborts_it(
    cluster: DevCluster, bucket: str, tmp_path: Path
) -> None:
    path, state_dir, key = tmp_path / "growing.bin", tmp_path / "state", "resume/growing.bin"
    write_file(path)

    def grow(done: int) -> None:
        if done >= PART:
            with path.open("ab") as f:
                f.write(b"more")

    with cluster.client() as c:
        with pytest.raises(errors.FileChanged, match=r"changed during the upload.*aborted"):
            c.upload_file(
                path, bucket, key, multipart_threshold=PART, part_size=PART, parallel=1,
                progress=grow, state_dir=state_dir,
            )  # fmt: skip
        assert not c.list_multipart_uploads(bucket, key).uploads
        with pytest.raises(errors.NoSuchKey):
            c.head_object(bucket, key)
    assert records(state_dir) == []


def test_without_resume_a_failed_upload_leaves_nothing(
    cluster: DevCluster, bucket: str, tmp_path: Path
) -> None:
    path, state_dir, key = tmp_path / "once.bin", tmp_path / "state", "resume/once.bin"
    write_file(path)
    with cluster.client() as c:
        with pytest.raises(Stop):
            c.upload_file(
                path, bucket, key, multipart_threshold=PART, part_size=PART,
                progress=StopAfter(2 * PART), resume=False, state_dir=state_dir,
            )  # fmt: skip
        assert not c.list_multipart_uploads(bucket, key).uploads
    assert not state_dir.exists() or records(state_dir) == []


#: A program that uploads a file with the SDK, one part at a time.
UPLOADER = f"""
import sys
from tristore import Client
path, bucket, key, state_dir = sys.argv[1:]
with Client() as c:
    c.upload_file(path, bucket, key, multipart_threshold={PART}, part_size={PART},
                  parallel=1, state_dir=state_dir)
"""


def test_an_upload_killed_with_sigkill_resumes_from_what_the_store_holds(
    cluster: DevCluster, bucket: str, tmp_path: Path, notices: list[str]
) -> None:
    """No chance to save anything at the end: the record written when the upload
    began, and the store's part list, are enough."""
    path, state_dir, key = tmp_path / "killed.bin", tmp_path / "state", "resume/killed.bin"
    data = write_file(path)
    env = cli_env() | {"TRISTORE_ENDPOINT": cluster.endpoint}
    argv = [sys.executable, "-c", UPLOADER, str(path), bucket, key, str(state_dir)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def step_until(done: Callable[[], object], what: str) -> None:
        """Let the uploader run 20 ms at a time until ``done()``, and leave it
        stopped there (a fast upload cannot end between the look and the kill)."""
        for _ in range(3000):
            proc.send_signal(signal.SIGSTOP)
            if done():
                return
            assert proc.poll() is None, f"the upload ended before {what}"
            proc.send_signal(signal.SIGCONT)
            time.sleep(0.02)
        raise AssertionError(f"no {what} within 60 s of running")

    try:
        step_until(lambda: records(state_dir), "a resume record")
        upload_id = str(records(state_dir)[0]["upload_id"])
        with cluster.client() as c:
            step_until(lambda: c.list_parts(bucket, key, upload_id).parts, "a first part")
        proc.kill()
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode()

    with cluster.client() as c:
        held = c.list_parts(bucket, key, upload_id).parts
        assert 1 <= len(held) < PARTS
        before = parts_sent(cluster)
        info = c.upload_file(
            path, bucket, key, multipart_threshold=PART, part_size=PART, state_dir=state_dir
        )
        assert parts_sent(cluster) - before == PARTS - len(held)
        assert f"resuming upload {upload_id}: {len(held)} of {PARTS} parts already uploaded" in (
            notices
        )
        assert info.etag == etag_of(data)
        assert c.get_object(bucket, key) == data
        assert not c.list_multipart_uploads(bucket, key).uploads
    assert records(state_dir) == []
