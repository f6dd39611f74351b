"""`tristore replication backfill|verify|dlq` on two real clusters (`dev up
--clusters 2`): versions and delete markers written before their rule are
found missing, queued by backfill and then verified on west (a marker only
once a rule sends markers); versions and markers a destination refuses are
FAILED, listed by the dead-letter queue, replayed once the destination is
fixed, and verified too."""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.cluster import DevCluster, two_clusters, wait_until
from tristore.client import AsyncClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

OBJECTS = 50
FAILING = 5
#: The nodes here take fewer items a batched call than backfill's default
#: --batch (1000): its calls are refused for their size and go again halved.
NODE_MAX_BATCH = 600


#: The replicators and nodes of the pair here (and when a test restarts one).
ENV = {
    "TRISTORE_REPLICATOR_MAX_ATTEMPTS": "2",
    "TRISTORE_REPLICATOR_RETRY_BACKOFF_S": "0.1",
    "TRISTORE_NODE_REPLICATION_MAX_BATCH": str(NODE_MAX_BATCH),
    # Versions are requeued here within seconds of their write, and the
    # tails always take turns on them (as with a busy source; off by default).
    "TRISTORE_REPLICATOR_PACED_AFTER_S": "0.2",
    "TRISTORE_REPLICATOR_PACED_BUSY_S": "0.000001",
}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevCluster, DevCluster]]:
    """As conftest's ``pair``, with nodes that take NODE_MAX_BATCH items a call
    and replicators that pace a version requeued 0.2 s after its write, their
    tails taking turns on such batches (ENV)."""
    yield from two_clusters(tmp_path_factory.mktemp("pair"), ENV)


def _json(proc: Any) -> Any:
    return json.loads(proc.stdout)


def _verify(east: DevCluster, west: DevCluster, bucket: str) -> tuple[int, dict[str, Any]]:
    proc = east.cli(
        "replication", "verify", f"s3://{bucket}", "--to-endpoint", f"west={west.endpoint}",
        "--json", check=False,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr.decode()
    assert not proc.stderr, proc.stderr.decode()  # a difference is not an error
    out = _json(proc)
    assert proc.returncode == (1 if out["total"] else 0)
    return proc.returncode, out


def _paced(east: DevCluster) -> float:
    """Batches east's replicators paced (tristore_replication_paced_batches_total)."""
    return sum(
        east.metric(r.name, "tristore_replication_paced_batches_total")
        for r in east.config.replicators
    )


def _clean(east: DevCluster, west: DevCluster, bucket: str) -> bool:
    return _verify(east, west, bucket)[0] == 0


def test_backfill_then_verify(pair: tuple[DevCluster, DevCluster]) -> None:
    east, west = pair
    with east.client() as e, west.client() as w:
        e.create_bucket("cli-src")
        e.put_bucket_versioning("cli-src", "Enabled")
        w.create_bucket("cli-dst")
        w.put_bucket_versioning("cli-dst", "Enabled")
        written = {
            f"k/{i:02d}": e.put_object("cli-src", f"k/{i:02d}", b"x" * i) for i in range(OBJECTS)
        }
        marker = e.delete_object("cli-src", "k/00")  # before the rule, like the versions
    assert marker.delete_marker
    east.cli("replication", "put", "s3://cli-src", "--to", "west/cli-dst")  # no markers

    # verify knows only east's endpoint unless told west's.
    proc = east.cli("replication", "verify", "s3://cli-src", check=False)
    assert proc.returncode == 1
    assert b"--to-endpoint west=" in proc.stderr and proc.stderr.count(b"\n") == 1

    code, out = _verify(east, west, "cli-src")
    assert code == 1
    assert out["counts"] == {"missing": OBJECTS, "different": 0, "pending": 0, "failed": 0}
    assert {d["key"] for d in out["differences"]} == set(written)
    assert out["not_replicated"] == 1  # the marker: the rule does not send markers
    text = east.cli(
        "replication", "verify", "s3://cli-src", "--to-endpoint", f"west={west.endpoint}",
        check=False,
    ).stdout.decode().splitlines()  # fmt: skip
    assert len(text) == OBJECTS + 1 and all(ln.startswith("missing") for ln in text[:-1])
    assert text[-1].startswith(f"{OBJECTS} differences")

    dry = east.cli("replication", "backfill", "s3://cli-src", "--dry-run").stdout.decode()
    assert dry.count("would queue: ") == OBJECTS and "(delete marker" not in dry
    assert "sent nowhere by the rules: 1" in dry.splitlines()
    dry_json = _json(east.cli("replication", "backfill", "s3://cli-src", "--dry-run", "--json"))
    assert dry_json["dry_run"] is True and dry_json["queued"] == OBJECTS
    assert {(w["key"], w["destination"]) for w in dry_json["would_queue"]} == {
        (k, "west/cli-dst") for k in written
    }
    assert _verify(east, west, "cli-src")[1]["counts"]["missing"] == OBJECTS  # nothing queued

    proc = east.cli("replication", "backfill", "s3://cli-src", "--json")
    counts = _json(proc)
    assert (counts["versions"], counts["queued"], counts["delete_markers"]) == (
        OBJECTS + 1,
        OBJECTS,
        1,
    )
    assert (counts["not_matching"], counts["errors"]) == (1, 0)  # the marker: sent nowhere
    assert not proc.stderr
    again = _json(east.cli("replication", "backfill", "s3://cli-src", "--json"))
    assert (again["queued"], again["already"]) == (0, OBJECTS)  # queued once, not twice

    # A rule that sends markers: the marker is missing on west until backfilled.
    east.cli("replication", "put", "s3://cli-src", "--to", "west/cli-dst", "--delete-markers")
    out = _verify(east, west, "cli-src")[1]
    assert [d for d in out["differences"] if d["kind"] == "missing"] == [
        {
            "kind": "missing",
            "key": "k/00",
            "version_id": marker.version_id,
            "destination": "west/cli-dst",
            "delete_marker": True,
            "detail": "never queued: tristore replication backfill",
        }
    ]
    assert out["not_replicated"] == 0
    dry = east.cli("replication", "backfill", "s3://cli-src", "--dry-run").stdout.decode()
    assert [ln for ln in dry.splitlines() if ln.startswith("would queue: ")] == [
        f"would queue: s3://cli-src/k/00 (delete marker {marker.version_id}) to west/cli-dst"
    ]
    proc = east.cli("replication", "backfill", "s3://cli-src", "--json")
    counts = _json(proc)
    assert (counts["versions"], counts["queued"], counts["already"]) == (OBJECTS + 1, 1, OBJECTS)
    assert (counts["delete_markers"], counts["not_matching"], counts["errors"]) == (1, 0, 0)
    again = _json(east.cli("replication", "backfill", "s3://cli-src", "--json"))
    assert (again["queued"], again["already"]) == (0, OBJECTS + 1)

    wait_until(lambda: _clean(east, west, "cli-src"), 60, interval=1, what="verify to be clean")
    with west.client() as w:
        got = {(v.key, v.version_id): v for v in w.list_object_versions("cli-dst").versions}
    want = {(k, i.version_id): (i.etag, False) for k, i in written.items()}
    want[("k/00", marker.version_id)] = ("", True)
    assert {
        kv: (v.etag if not v.delete_marker else "", v.delete_marker) for kv, v in got.items()
    } == want
    assert got[("k/00", marker.version_id)].is_latest  # the marker is k/00's current version there
    summary = east.cli(
        "replication", "verify", "s3://cli-src", "--to-endpoint", f"west={west.endpoint}"
    ).stdout.decode()  # fmt: skip
    assert summary.startswith(f"no differences: {OBJECTS + 1} checks against west/cli-dst")

    # `admin status` shows each replicator and its lag to the destination.
    status = _json(east.cli("admin", "status", "--json"))
    names = {r.name for r in east.config.replicators}
    assert {r["name"] for r in status["replicators"] if r["up"]} == names
    assert "west/cli-dst" in status["replication_lag_seconds"]
    assert all(r["status"]["nodes_tailed"] == len(east.config.nodes) for r in status["replicators"])
    text = east.cli("admin", "status").stdout.decode()
    assert "REPLICATOR" in text and "west/cli-dst" in text


def _dlq(east: DevCluster, bucket: str) -> list[dict[str, Any]]:
    failed = _json(east.cli("replication", "dlq", "list", f"s3://{bucket}", "--json"))["failed"]
    assert isinstance(failed, list)
    return failed


def test_dlq_list_and_replay(pair: tuple[DevCluster, DevCluster]) -> None:
    east, west = pair
    with east.client() as e, west.client() as w:
        e.create_bucket("cli-fail")
        e.put_bucket_versioning("cli-fail", "Enabled")
        w.create_bucket("cli-unversioned")  # refuses replicas until versioning is on
        east.cli(
            "replication", "put", "s3://cli-fail", "--to", "west/cli-unversioned",
            "--delete-markers",
        )  # fmt: skip
        written = {f"f{i}": e.put_object("cli-fail", f"f{i}", b"y" * i) for i in range(FAILING)}
        marker = e.delete_object("cli-fail", "f0")  # refused like the versions
    failing = FAILING + 1

    wait_until(
        lambda: len(_dlq(east, "cli-fail")) == failing, 60, interval=1, what="FAILED versions"
    )
    failed = _dlq(east, "cli-fail")
    assert {(f["key"], f["version_id"], f["delete_marker"]) for f in failed} == {
        (k, i.version_id, False) for k, i in written.items()
    } | {("f0", marker.version_id, True)}
    assert all(f["destination"] == "west/cli-unversioned" and f["error"] for f in failed)
    status = _json(east.cli("admin", "status", "--json"))
    assert sum(r["status"]["dlq_entries"] for r in status["replicators"]) >= failing
    table = east.cli("replication", "dlq", "list", "s3://cli-fail").stdout.decode().splitlines()
    assert table[0].split() == ["KEY", "VERSION", "DESTINATION", "ERROR"]
    assert len(table) == failing + 1
    code, out = _verify(east, west, "cli-fail")
    assert code == 1 and out["counts"]["failed"] == failing

    # A replicator's queue is bounded ([replicator] dlq_max_entries): past the
    # cap its oldest entries go, and nothing is lost, since the versions stay
    # FAILED at the source, where `dlq list` and `dlq replay` read them.
    replicators = [r.name for r in east.config.replicators]
    for r in replicators:
        east.kill(r)
        east.start(r, extra_env={**ENV, "TRISTORE_REPLICATOR_DLQ_MAX_ENTRIES": "1"})
    wait_until(
        lambda: all(east.metric(r, "tristore_replication_dlq_entries") <= 1 for r in replicators),
        30,
        what="each queue cut to its cap",
    )
    dropped = sum(east.metric(r, "tristore_replication_dlq_dropped_total") for r in replicators)
    assert dropped >= failing - len(replicators)
    assert len(_dlq(east, "cli-fail")) == failing
    for r in replicators:
        east.kill(r)
        east.start(r, extra_env=ENV)

    west.cli("version", "enable", "s3://cli-unversioned")
    proc = east.cli("replication", "dlq", "replay", "s3://cli-fail")
    replay = proc.stdout.decode()
    assert replay.count("requeue: s3://cli-fail/") == failing and not proc.stderr
    requeued_marker = (
        f"requeue: s3://cli-fail/f0 (delete marker {marker.version_id}) to west/cli-unversioned"
    )
    assert requeued_marker in replay.splitlines()
    assert f"requeued {failing} of {failing}" in replay

    wait_until(lambda: not _dlq(east, "cli-fail"), 60, interval=1, what="an empty dlq")
    wait_until(lambda: _clean(east, west, "cli-fail"), 60, interval=1, what="verify to be clean")
    with west.client() as w:
        held = {
            (v.key, v.version_id): v.delete_marker
            for v in w.list_object_versions("cli-unversioned").versions
        }
    assert held[("f0", marker.version_id)] is True
    nothing = east.cli("replication", "dlq", "replay", "s3://cli-fail")
    assert b"nothing to replay" in nothing.stderr


LONG = os.environ.get("TRISTORE_LONG") == "1"
#: Objects of the backfill at scale: 10,000 with TRISTORE_LONG=1.
SCALE = 10_000 if LONG else 1_000


@pytest.mark.timeout(1800 if LONG else 600)
def test_backfill_at_scale_then_verify_is_clean(pair: tuple[DevCluster, DevCluster]) -> None:
    """SCALE objects written before the rule: backfill queues every one (in
    calls of its default size, which the nodes here refuse as too large: each
    goes again as two), the replicators bring them all to west, and verify
    ends with zero differences (how long each step took is printed, not
    asserted: bench/ measures speed)."""
    east, west = pair
    with east.client() as e, west.client() as w:
        e.create_bucket("scale-src")
        e.put_bucket_versioning("scale-src", "Enabled")
        w.create_bucket("scale-dst")
        w.put_bucket_versioning("scale-dst", "Enabled")

    async def write_all() -> dict[str, str]:
        gate = asyncio.Semaphore(64)
        async with AsyncClient(east.endpoint) as ae:

            async def one(i: int) -> tuple[str, str]:
                async with gate:
                    info = await ae.put_object("scale-src", f"o/{i:05d}", f"{i}".encode())
                return info.key, info.version_id

            return dict(await asyncio.gather(*(one(i) for i in range(SCALE))))

    started = time.monotonic()
    written = asyncio.run(write_all())
    wrote_s = time.monotonic() - started
    east.cli("replication", "put", "s3://scale-src", "--to", "west/scale-dst")
    paced_before = _paced(east)
    started = time.monotonic()
    counts = _json(east.cli("replication", "backfill", "s3://scale-src", "--json", timeout=1200))
    queued_s = time.monotonic() - started
    assert (counts["versions"], counts["queued"], counts["errors"]) == (SCALE, SCALE, 0)
    started = time.monotonic()
    wait_until(
        lambda: _clean(east, west, "scale-src"),
        1200 if LONG else 400,
        interval=2,
        what=f"verify to be clean after a backfill of {SCALE}",
    )
    replicated_s = time.monotonic() - started
    # The requeues went out a batch at a time (each batch's statuses recorded
    # before the next read), not as fast as the source could queue them.
    assert _paced(east) > paced_before
    summary = east.cli(
        "replication", "verify", "s3://scale-src", "--to-endpoint", f"west={west.endpoint}"
    ).stdout.decode()  # fmt: skip
    assert summary.startswith(f"no differences: {SCALE} checks against west/scale-dst"), summary
    with west.client() as w:
        held: dict[str, str] = {}
        marker = ""
        for _ in range(SCALE // 1000 + 2):
            page = w.list_object_versions("scale-dst", key_marker=marker)
            held.update({v.key: v.version_id for v in page.versions})
            if not page.is_truncated:
                break
            marker = page.next_key_marker or ""
    assert held == written
    print(
        f"\nbackfill of {SCALE}: written in {wrote_s:.1f} s, queued in {queued_s:.1f} s, "
        f"on west and verified in {replicated_s:.1f} s"
    )


def test_batched_backfill_with_a_killed_replicator_converges(
    pair: tuple[DevCluster, DevCluster],
) -> None:
    """A few hundred versions queued many to a call (PutReplicationStatuses),
    sent many to a message (ApplyReplicas) and marked COMPLETED many to a
    message, while east's replicator is killed and started again: verify ends
    clean, and the batched calls carried the work."""
    east, west = pair
    n = 300
    with east.client() as e, west.client() as w:
        e.create_bucket("bf-src")
        e.put_bucket_versioning("bf-src", "Enabled")
        w.create_bucket("bf-dst")
        w.put_bucket_versioning("bf-dst", "Enabled")

        async def fill() -> None:
            async with AsyncClient(east.endpoint) as c:
                for start in range(0, n, 50):
                    await asyncio.gather(
                        *(
                            c.put_object("bf-src", f"b/{i:04d}", b"y" * (i % 7))
                            for i in range(start, min(n, start + 50))
                        )
                    )

        asyncio.run(fill())
    east.cli("replication", "put", "s3://bf-src", "--to", "west/bf-dst")
    replicator = east.config.replicators[0].name  # of east's replicators, one is killed
    east.kill(replicator)
    counts = _json(east.cli("replication", "backfill", "s3://bf-src", "--batch", "64", "--json"))
    assert (counts["queued"], counts["errors"]) == (n, 0)
    # Its share of the keys waits for it (another replicator sends the rest).
    assert _verify(east, west, "bf-src")[1]["counts"]["pending"] > 0
    east.start(replicator, extra_env=ENV)
    wait_until(lambda: _clean(east, west, "bf-src"), timeout=180, what="verify clean")
    assert _handled(west, "ApplyReplicas") > 0 and _handled(east, "PutReplicationStatuses") > 0
    assert _handled(west, "ApplyReplica") == 0  # small bodies: none streamed one a call


def _handled(cluster: DevCluster, method: str) -> float:
    """Calls of one RPC method the cluster's nodes handled."""
    total = 0.0
    for n in cluster.config.nodes:
        with urllib.request.urlopen(f"http://{n.metrics}/metrics", timeout=5) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith("tristore_rpc_handled_total{") and f'method="{method}"' in line:
                    total += float(line.rsplit(" ", 1)[1])
    return total
