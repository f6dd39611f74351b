"""A refused conditional write is never seen: not as the current object, not as a
version, not after a kill. Compare-and-swap writers (If-Match, If-None-Match)
race plain writers on a few hot keys of a versioned bucket while a nemesis
SIGKILLs and restarts nodes and witnesses and takes a whole AZ down. Each write
carries a body no other write has, so a version's ETag (the body's MD5) tells
which write it came from. Once with one attempt per request (a refusal is the
server's own answer), once with the SDK's retries on: a retry whose earlier
attempt took effect must answer success, never a refusal (the request id).

Bounded: a fixed number of operations per client and a time limit; longer runs
with TRISTORE_LONG=1.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import DevCluster, start_cluster
from tristore import errors
from tristore.client import Client, RetryPolicy

pytestmark = [pytest.mark.robustness, pytest.mark.timeout(600)]

LONG = os.environ.get("TRISTORE_LONG") == "1"
BUCKET = "cas"
KEYS = ("p", "q", "r")
REFUSALS = (errors.PreconditionFailed, errors.ConditionalRequestConflict, errors.NoSuchKey)


@pytest.fixture
def cas_cluster(tmp_path: Path) -> Iterator[DevCluster]:
    cluster = start_cluster(tmp_path)
    try:
        with cluster.client() as c:
            c.create_bucket(BUCKET)
            c.put_bucket_versioning(BUCKET, "Enabled")
        yield cluster
    finally:
        cluster.down()


class Outcomes:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.refused: dict[str, str] = {}  # etag -> what was refused
        self.acked: dict[str, str] = {}
        #: Writes whose outcome the client was not told.
        self.unknown: dict[str, str] = {}
        self.conditional = 0

    def add(self, table: dict[str, str], body: bytes, what: str) -> None:
        with self.lock:
            table[hashlib.md5(body).hexdigest()] = what


def writer(
    cluster: DevCluster,
    endpoint: str,
    ident: int,
    ops: int,
    stop: threading.Event,
    kills_done: threading.Event,
    out: Outcomes,
    retry: RetryPolicy,
) -> None:
    # ``ops`` operations, and more (up to four times as many) while the kills
    # go on: a kill nobody runs into proves nothing.
    with Client(endpoint, retry=retry) as c:
        for seq in range(ops * 4):
            if stop.is_set() or (seq >= ops and kills_done.is_set()):
                return
            key = KEYS[seq % len(KEYS)]
            body = f"{ident}-{seq}-{os.urandom(6).hex()}".encode()
            what = f"{key}: {body.decode()}"
            try:
                if ident % 3 == 0:
                    c.put_object(BUCKET, key, body)  # the plain writer racing them
                    out.add(out.acked, body, what)
                    continue
                try:
                    etag = c.head_object(BUCKET, key).etag
                except errors.NoSuchKey:
                    etag = ""
                except errors.TristoreError:
                    continue
                with out.lock:
                    out.conditional += 1
                if etag:
                    c.put_object(BUCKET, key, body, if_match=etag)
                else:
                    c.put_object(BUCKET, key, body, if_none_match="*")
                out.add(out.acked, body, what)
            except REFUSALS as exc:
                out.add(out.refused, body, f"{what} ({exc.code}: {exc})")
            except errors.TristoreError as exc:
                # Unavailable, timed out, OutcomeUnknown: allowed either way.
                out.add(out.unknown, body, f"{what} ({exc.code})")
                stop.wait(0.2)


@pytest.mark.parametrize(
    "retries",
    [False, True],
    ids=["one-attempt", "sdk-retries"],
)
def test_a_refused_conditional_write_never_becomes_visible(
    cas_cluster: DevCluster, retries: bool
) -> None:
    cluster = cas_cluster
    seconds, ops = (60, 3000) if LONG else (20, 600)
    out = Outcomes()
    nodes = [n.grpc for n in cluster.config.nodes]
    stop = threading.Event()
    kills_done = threading.Event()
    policy = RetryPolicy() if retries else RetryPolicy(max_attempts=1)
    threads = [
        threading.Thread(
            target=writer,
            args=(cluster, nodes[i % len(nodes)], i, ops, stop, kills_done, out, policy),
            daemon=True,
        )
        for i in range(9)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    kills: list[str] = []
    # The first AZ's nodes too (the node that decides a conditional write), the
    # witnesses, and a whole AZ at once. The clients run on until every step
    # is done (restarts are slow on a loaded machine), within ``seconds`` + 240.
    names = [n.name for n in cluster.config.nodes]
    witnesses = [w.name for w in cluster.config.witnesses]
    lost_az = [n.name for n in cluster.config.nodes if n.az == cluster.config.nodes[-1].az]
    steps = [[names[0]], [witnesses[0]], [names[2]], lost_az, [witnesses[1]], [names[1]]]
    try:
        for group in steps * (3 if LONG else 1):
            if time.monotonic() > started + seconds + 240 - 3:
                break
            time.sleep(1.0)
            for name in group:
                cluster.kill(name, "KILL")
            time.sleep(0.5)
            for name in group:
                cluster.start(name)
            kills.append("+".join(group))
        kills_done.set()
        time.sleep(max(0.0, started + seconds - time.monotonic()))
    finally:
        stop.set()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "a client did not stop by itself"

    assert len(kills) == len(steps) * (3 if LONG else 1), kills
    assert out.conditional > 100 and len(out.acked) > 100, (out.conditional, len(out.acked))
    assert out.refused, "the race must have made some conditional writes lose"
    # Every version any node holds, through a listing that merges the AZs.
    with cluster.client() as c:
        seen: dict[str, str] = {}
        marker: tuple[str | None, str | None] = (None, None)
        for _ in range(1000):
            page = c.list_object_versions(
                BUCKET, key_marker=marker[0], version_id_marker=marker[1], max_keys=1000
            )
            seen.update({v.etag: f"{v.key}@{v.version_id}" for v in page.versions})
            if not page.is_truncated:
                break
            marker = (page.next_key_marker, page.next_version_id_marker)
        current = {c.head_object(BUCKET, k).etag for k in KEYS}
    visible = {etag: out.refused[etag] for etag in (set(seen) | current) if etag in out.refused}
    assert not visible, f"refused, then visible: {sorted(visible.values())[:10]}"
    lost = {etag: what for etag, what in out.acked.items() if etag not in seen}
    assert not lost, f"acknowledged, then missing: {sorted(lost.values())[:10]}"
